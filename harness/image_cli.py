"""``clew image build``: a node image for the docker/podman provider, or with ``--vm`` a
disk image for the qemu provider, from Debian's archive.

The work is in :mod:`clusters.container_image` and :mod:`clusters.vm_image`; this module
is the command line.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from harness.cli import FiniteFloatRange
from harness.errors import ConfigError

__all__ = ["image_cmd"]


@click.group("image", short_help="Build node images for the container and qemu providers.")
def image_cmd() -> None:
    """Node images for `--provider docker` / `--provider podman` (and with --vm, disk
    images for `--provider qemu`), built without a registry."""


@image_cmd.command("build")
@click.option(
    "--suite",
    "suites",
    default=None,
    metavar="NAME[,NAME...]",
    help="The suites whose database packages the image holds "
    "(etcd, postgres, redis, bugkv).  [default: all]",
)
@click.option(
    "--engine",
    default=None,
    metavar="podman|docker|PATH",
    help="The engine to import into.  [default: $CLEW_DOCKER, else the first of "
    "docker, podman whose `info` answers]",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where root-filesystem tarballs are kept.  [default: $CLEW_IMAGE_CACHE, "
    "else ~/.cache/clew/images]",
)
@click.option(
    "--mirror",
    "mirrors",
    multiple=True,
    metavar="URL|'deb URL SUITE COMP'",
    help="An apt source (repeatable).  [default: this machine's Debian sources]",
)
@click.option(
    "--release",
    default=None,
    help="The Debian release.  [default: this machine's, from /etc/os-release]",
)
@click.option(
    "--package",
    "packages",
    multiple=True,
    metavar="NAME",
    help="One more Debian package for the image (repeatable).",
)
@click.option(
    "--vm",
    is_flag=True,
    help="Build a disk image (ext4, kernel, initramfs) for --provider qemu instead of a "
    "container image; no engine is needed.",
)
@click.option(
    "--vagrant-box",
    is_flag=True,
    help="--vm: also make a vagrant-libvirt box of the image (IMAGE/vagrant-libvirt.box) and "
    "add it to Vagrant as clew/vm-<hash>, for --provider vagrant --option network=bridge.",
)
@click.option(
    "--disk-size",
    default="3G",
    show_default=True,
    help="--vm: the size of the root file system (sparse), e.g. 3G or 2048M.",
)
@click.option("--force", is_flag=True, help="Build again even if the image exists.")
@click.option(
    "--timeout",
    type=FiniteFloatRange(min=1),
    default=1800.0,
    show_default=True,
    help="Seconds mmdebstrap may take.",
)
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Tarballs kept in the cache (the newest).",
)
def build_cmd(
    suites: str | None,
    engine: str | None,
    cache_dir: str | None,
    mirrors: tuple[str, ...],
    release: str | None,
    packages: tuple[str, ...],
    vm: bool,
    vagrant_box: bool,
    disk_size: str,
    force: bool,
    timeout: float,
    keep: int,
) -> None:
    """Build the node image `clew-node:<hash>` (also tagged `clew-node:latest`, the docker
    and podman providers' default image) with mmdebstrap --variant=minbase from Debian's
    archive, and import it into podman or docker. The hash covers the release,
    architecture, apt sources and packages: an image with it is not built again, and a
    tarball with it in the cache is only imported. Needs root (mmdebstrap) and the
    `mmdebstrap` package.

    With --vm, builds the qemu provider's disk image instead: an ext4 root file system
    (mkfs.ext4 -d) with a kernel and systemd, plus the kernel and initramfs beside it, in
    CACHE/vm/<hash>/ (CACHE/vm/latest is the newest). Its saved VM states live there too.
    --keep counts image directories then.

    \b
    Examples:
      clew image build --suite etcd --engine podman
      clew image build --vm --suite etcd

    See docs/containers.md (nightly CI with containers) and docs/vms.md.
    """
    from clusters.container_engine import find_engine
    from clusters.container_image import SUITE_PACKAGES, build_image, image_inputs

    names = [s.strip() for s in suites.split(",") if s.strip()] if suites else list(SUITE_PACKAGES)
    if not names:
        raise ConfigError("--suite names no suite")
    if vm:
        if engine:
            raise ConfigError("--engine is for container images; --vm builds a disk image")
        image = _build_vm(
            names, cache_dir, mirrors, release, packages, disk_size, force, timeout, keep
        )
        if vagrant_box:
            _vagrant_box(image, force)
        return
    if vagrant_box:
        raise ConfigError("--vagrant-box goes with --vm (the box is made of the VM image)")
    inputs = image_inputs(names, release=release, mirrors=mirrors, extra_packages=packages)
    eng = find_engine(engine)
    res = build_image(
        eng,
        inputs,
        cache_dir=Path(cache_dir) if cache_dir else None,
        force=force,
        timeout=timeout,
        keep=keep,
        say=lambda line: click.echo(line, err=True),
    )
    size = f"{res.tarball_bytes / 1e6:.0f} MB" if res.tarball_bytes else "no tarball kept"
    click.echo(f"{res.tag} {size} {res.seconds:.1f} s")


def _build_vm(
    names: list[str],
    cache_dir: str | None,
    mirrors: tuple[str, ...],
    release: str | None,
    packages: tuple[str, ...],
    disk_size: str,
    force: bool,
    timeout: float,
    keep: int,
) -> Path:
    """``clew image build --vm``: the qemu provider's disk image; prints its directory,
    its size on disk and the seconds taken, and returns the directory."""
    from clusters.vm_image import build_vm_image, vm_image_inputs

    inputs = vm_image_inputs(
        names, release=release, mirrors=mirrors, extra_packages=packages, disk_size=disk_size
    )
    res = build_vm_image(
        inputs,
        cache_dir=Path(cache_dir) if cache_dir else None,
        force=force,
        timeout=timeout,
        keep=keep,
        say=lambda line: click.echo(line, err=True),
    )
    click.echo(f"{res.image.directory} {res.image.disk_bytes / 1e6:.0f} MB {res.seconds:.1f} s")
    return res.image.directory


def _vagrant_box(directory: Path, force: bool) -> None:
    """``--vagrant-box``: the box of the image at ``directory``, added to Vagrant (when
    it is installed); prints the box file, its size and the seconds taken."""
    from clusters.doctor import find_binary
    from clusters.vagrant_box import add_box, build_box
    from clusters.vm_image import find_vm_image

    image = find_vm_image(str(directory))
    box = build_box(image, force=force, say=lambda line: click.echo(line, err=True))
    vagrant = find_binary(os.environ.get("CLEW_VAGRANT") or "vagrant")
    name = add_box(vagrant, image) if vagrant else None
    added = f"added as {name}" if name else "not added (vagrant not found)"
    click.echo(f"{box.path} {box.size / 1e6:.0f} MB {box.seconds:.1f} s; {added}")
