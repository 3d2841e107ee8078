"""A vagrant-libvirt box made from clew's VM image, locally (no Vagrant Cloud).

``clew image build --vm --vagrant-box`` (or the vagrant provider, when its box is not
there yet) writes ``<image>/vagrant-libvirt.box`` next to the image built by
``clew image build --vm`` (:mod:`clusters.vm_image`): an uncompressed tar of

``box.img``       the image's ext4 root file system converted to qcow2 (``qemu-img convert``)
``vmlinuz``, ``initrd.img``  the image's kernel and initramfs
``metadata.json`` ``{"provider": "libvirt", "format": "qcow2", "virtual_size": <GB>}``
``Vagrantfile``   boots the kernel beside the box (``libvirt.kernel``/``initrd``/``cmd_line``)

and :func:`add_box` registers it as ``clew/vm-<image hash>`` with ``vagrant box add``.
The image has no boot loader, no ``vagrant`` user and no sudo: a node boots the box's
kernel directly and gets its name, address and keys from QEMU's fw_cfg, as a qemu
provider node does (the vagrant provider passes them with ``libvirt.qemuargs``).
"""

from __future__ import annotations

import json
import math
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clusters.doctor import find_binary, run_tool
from clusters.qemu_vm import KERNEL_ARGS
from clusters.vm_image import INITRD, KERNEL, VmImage
from harness.errors import ClusterError

__all__ = ["BOX_FILE", "BoxBuild", "add_box", "box_name", "box_vagrantfile", "build_box"]

BOX_FILE = "vagrant-libvirt.box"
#: Seconds ``qemu-img convert`` may take (a 3 GB sparse image: a few seconds here).
CONVERT_TIMEOUT = 600.0
#: Seconds ``vagrant box add`` and ``vagrant box list`` may take.
BOX_ADD_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class BoxBuild:
    """What :func:`build_box` did: the box file, whether it was made now, how long it took."""

    path: Path
    built: bool
    seconds: float

    @property
    def size(self) -> int:
        """The box file's size in bytes."""
        return self.path.stat().st_size


def box_name(image: VmImage) -> str:
    """The name the box of ``image`` is added to Vagrant under: ``clew/vm-<hash>``."""
    return f"clew/vm-{image.digest}"


def box_vagrantfile() -> str:
    """The box's own Vagrantfile: boot the kernel and initramfs that sit beside it."""
    return f"""# clew's VM image as a vagrant-libvirt box (clusters/vagrant_box.py).
# No boot loader in the image: the kernel and initramfs beside this file are booted
# directly; the node's name, address and keys come from QEMU's fw_cfg (opt/clew/node.tar).
here = File.dirname(__FILE__)
Vagrant.configure("2") do |config|
  config.vm.provider "libvirt" do |lv|
    lv.kernel = File.join(here, "{KERNEL}")
    lv.initrd = File.join(here, "{INITRD}")
    lv.cmd_line = "{KERNEL_ARGS}"
  end
end
"""


def build_box(
    image: VmImage, *, force: bool = False, say: Callable[[str], None] = lambda _: None
) -> BoxBuild:
    """Make ``<image>/vagrant-libvirt.box`` unless it is there (or ``force``); needs
    ``qemu-img``. :class:`ClusterError` naming the step that failed; a failed build leaves
    no box file."""
    start = time.monotonic()
    target = image.directory / BOX_FILE
    if target.is_file() and not force:
        say(f"{target} is already built; nothing to do")
        return BoxBuild(path=target, built=False, seconds=time.monotonic() - start)
    qemu_img = find_binary("qemu-img")
    if qemu_img is None:
        raise ClusterError("qemu-img is not installed; install: apt-get install qemu-utils")
    work = Path(tempfile.mkdtemp(prefix=".box-", dir=image.directory))
    try:
        say(f"converting {image.rootfs} to qcow2")
        res = run_tool(
            [qemu_img, "convert", "-O", "qcow2", str(image.rootfs), str(work / "box.img")],
            timeout=CONVERT_TIMEOUT,
        )
        if not res.ok:
            raise ClusterError(f"qemu-img convert {image.rootfs} failed: {res.tail()}")
        gigabytes = max(1, math.ceil(image.rootfs.stat().st_size / 2**30))
        (work / "metadata.json").write_text(
            json.dumps({"provider": "libvirt", "format": "qcow2", "virtual_size": gigabytes}) + "\n"
        )
        (work / "Vagrantfile").write_text(box_vagrantfile())
        part = work / "box.tar"
        with tarfile.open(part, "w", format=tarfile.GNU_FORMAT) as tar:
            for name in ("metadata.json", "Vagrantfile"):
                tar.add(work / name, arcname=name)
            tar.add(work / "box.img", arcname="box.img")
            tar.add(image.kernel, arcname=KERNEL)
            tar.add(image.initrd, arcname=INITRD)
        part.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - start
    say(f"{target}: {target.stat().st_size / 1e6:.0f} MB in {seconds:.1f} s")
    return BoxBuild(path=target, built=True, seconds=seconds)


def add_box(
    vagrant: str,
    image: VmImage,
    *,
    env: dict[str, str] | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> str:
    """Make sure Vagrant knows the box of ``image`` (built first if needed): ``vagrant box
    add`` unless ``vagrant box list`` shows it. Returns the box's name;
    :class:`ClusterError` quoting Vagrant if a step fails."""
    name = box_name(image)
    listed = run_tool([vagrant, "box", "list"], timeout=BOX_ADD_TIMEOUT, env=env)
    if not listed.ok:
        raise ClusterError(f"`vagrant box list` failed: {listed.tail()}")
    if any(line.split()[:1] == [name] for line in listed.stdout.splitlines()):
        return name
    box = build_box(image, say=say)
    say(f"adding {box.path} to Vagrant as {name}")
    res = run_tool(
        [vagrant, "box", "add", "--force", "--name", name, str(box.path)],
        timeout=BOX_ADD_TIMEOUT,
        env=env,
    )
    if not res.ok:
        raise ClusterError(f"`vagrant box add --name {name} {box.path}` failed: {res.tail()}")
    return name
