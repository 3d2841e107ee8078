"""Disk images for the qemu provider, built from Debian's archive without a registry.

``clew image build --vm`` runs ``mmdebstrap --variant=minbase`` with what a VM node needs
(a kernel, systemd, sshd, python3, iproute2, iptables, nftables: :data:`VM_PACKAGES` and
the container image's base packages) and the chosen suites' database packages, into a
directory, and makes an ext4 file system of it with ``mkfs.ext4 -d``. The kernel and the
initramfs are copied out next to it, so QEMU boots them with ``-kernel``/``-initrd`` (no
boot loader, no partition table). Everything lands in ``<cache>/vm/<digest>/``:

``rootfs.raw`` (sparse ext4), ``vmlinuz``, ``initrd.img``, ``manifest.json``

and ``<cache>/vm/latest`` points at the newest build. The digest is a hash of the inputs
(release, architecture, apt sources, packages, disk size, this recipe): an image with that
digest in the cache is not built again. One build at a time per cache (a lock).

Inside the image, nothing is node-specific. At boot, ``clew-node-setup.service`` (before
the network and sshd) unpacks the tar archive QEMU hands the guest as the fw_cfg file
``opt/clew/node.tar``: the node's hostname, ``/etc/hosts``, its systemd-networkd address
(matched by MAC), its own SSH host key and the cluster's login key. The database services
the packages would start are disabled (the suites start their own), and so are timers that
would wake an idle guest (apt, fstrim, e2scrub), and boot steps a test node does without
(gettys, binfmt, debug file systems); the journal stays in memory. The initramfs holds
only the virtio and ext4 modules (``MODULES=list``): it unpacks quickly under emulation.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from clusters.container_image import (
    ImageInputs,
    build_lock,
    default_cache_dir,
    image_inputs,
    run_logged,
)
from clusters.doctor import find_binary, run_tool
from harness.errors import ClusterError, ConfigError

__all__ = [
    "DEFAULT_DISK_SIZE",
    "VM_PACKAGES",
    "VmImage",
    "VmImageInputs",
    "build_vm_image",
    "find_vm_image",
    "vm_cache_dir",
    "vm_image_inputs",
]

#: Bumped when the recipe below changes in a way the other inputs do not show.
VM_RECIPE = 1
#: What a VM needs beyond a container node: a kernel and its initramfs tools, an init,
#: udev and kmod (modules), ping (to measure netem).
VM_PACKAGES = (
    "linux-image-amd64",
    "initramfs-tools",
    "systemd",
    "systemd-sysv",
    "udev",
    "kmod",
    "iputils-ping",
)
#: The ext4 file system's size (sparse: only what is written takes space).
DEFAULT_DISK_SIZE = "3G"
#: Seconds mmdebstrap may take (downloading ~100 MB and installing ~250 packages).
BUILD_TIMEOUT = 1800.0
#: Seconds mkfs.ext4 may take to copy the tree into the image.
MKFS_TIMEOUT = 600.0
#: Image directories kept in the cache (the newest; older ones are removed after a build).
KEEP_IMAGES = 2
#: The file names of an image directory.
ROOTFS, KERNEL, INITRD, MANIFEST = "rootfs.raw", "vmlinuz", "initrd.img", "manifest.json"
#: The fw_cfg name under which the qemu provider hands each node its configuration.
FW_CFG_NAME = "opt/clew/node.tar"

_DPKG_EXCLUDES = (
    "path-exclude=/usr/share/doc/*",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
)
#: Database services Debian's packages enable; the suites start their own.
_DB_SERVICES = ("etcd", "redis-server", "redis-sentinel", "postgresql", "mariadb")
#: Units that only wake an idle guest (CPU the host does not have to spare under TCG).
_QUIET_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "man-db.timer",
    "dpkg-db-backup.timer",
    "systemd-timesyncd.service",
    "getty@tty1.service",
    # Boot work a test node does without (each costs seconds under TCG).
    "getty-static.service",
    "serial-getty@ttyS0.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "systemd-update-utmp-runlevel.service",
    "modprobe@dm_mod.service",
    "modprobe@fuse.service",
    "modprobe@drm.service",
    "modprobe@efi_pstore.service",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "dev-hugepages.mount",
)

_SETUP_SCRIPT = f"""#!/bin/sh
# clew: unpack this node's configuration (hostname, address, keys) from QEMU's fw_cfg.
set -eu
modprobe qemu_fw_cfg 2>/dev/null || true
f=/sys/firmware/qemu_fw_cfg/by_name/{FW_CFG_NAME}/raw
i=0
while [ ! -e "$f" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -e "$f" ]; then echo "clew-node-setup: no $f (not started by clew?)" >&2; exit 1; fi
tar -x -C / -f "$f"
hostname -F /etc/hostname
"""

_SETUP_UNIT = """[Unit]
Description=clew: this node's name, address and keys (from QEMU fw_cfg)
DefaultDependencies=no
After=local-fs.target systemd-remount-fs.service
Before=sysinit.target network-pre.target systemd-networkd.service ssh.service
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/clew-node-setup

[Install]
WantedBy=sysinit.target
"""


#: The modules the initramfs holds (MODULES=list): the virtio devices, ext4, fw_cfg.
_MODULES_LINE = (
    "printf 'virtio_pci\\nvirtio_blk\\nvirtio_net\\next4\\nqemu_fw_cfg\\n'"
    ' >> "$root/etc/initramfs-tools/modules"'
)


def _hook_script() -> str:
    """The shell script mmdebstrap runs on the finished tree (``$1``)."""
    quiet = " ".join(_QUIET_UNITS)
    dbs = " ".join(_DB_SERVICES)
    return f"""set -eu
root="$1"
rm -f "$root"/etc/ssh/ssh_host_*
echo '/dev/vda / ext4 rw,relatime 0 1' > "$root/etc/fstab"
cat > "$root/usr/local/sbin/clew-node-setup" <<'CLEW_EOF'
{_SETUP_SCRIPT}CLEW_EOF
chmod 755 "$root/usr/local/sbin/clew-node-setup"
cat > "$root/etc/systemd/system/clew-node-setup.service" <<'CLEW_EOF'
{_SETUP_UNIT}CLEW_EOF
chroot "$root" systemctl enable clew-node-setup.service systemd-networkd.service
chroot "$root" systemctl mask {quiet}
for u in {dbs}; do chroot "$root" systemctl disable "$u.service" >/dev/null 2>&1 || true; done
{_MODULES_LINE}
sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
mkdir -p "$root/etc/systemd/journald.conf.d"
printf '[Journal]\\nStorage=volatile\\nRuntimeMaxUse=32M\\n' \\
  > "$root/etc/systemd/journald.conf.d/clew.conf"
chroot "$root" update-initramfs -u -k all
: > "$root/etc/machine-id"
"""


@dataclass(frozen=True, slots=True)
class VmImageInputs:
    """Everything a VM image is built from; its hash names the image directory."""

    base: ImageInputs
    disk_size: str = DEFAULT_DISK_SIZE
    recipe: int = VM_RECIPE

    @property
    def digest(self) -> str:
        """A 16-hex-digit hash of the inputs (and of the recipe's scripts)."""
        text = json.dumps(
            {**asdict(self), "hook": _hook_script(), "vm": True}, sort_keys=True, default=str
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class VmImage:
    """A built VM image: its directory and files."""

    directory: Path
    digest: str

    @property
    def rootfs(self) -> Path:
        return self.directory / ROOTFS

    @property
    def kernel(self) -> Path:
        return self.directory / KERNEL

    @property
    def initrd(self) -> Path:
        return self.directory / INITRD

    @property
    def disk_bytes(self) -> int:
        """Bytes the image's files take on disk (the root file system is sparse)."""
        return sum(p.stat().st_blocks * 512 for p in (self.rootfs, self.kernel, self.initrd))

    def complete(self) -> bool:
        """Whether every file of the image is there (a build writes the manifest last)."""
        return (
            all(p.is_file() for p in (self.rootfs, self.kernel, self.initrd))
            and (self.directory / MANIFEST).is_file()
        )


@dataclass(frozen=True, slots=True)
class VmBuildResult:
    """What :func:`build_vm_image` did."""

    image: VmImage
    built: bool
    seconds: float


def vm_cache_dir(cache_dir: Path | None = None) -> Path:
    """Where VM images live: ``<image cache>/vm``."""
    return (cache_dir or default_cache_dir()) / "vm"


def vm_image_inputs(
    suites: Sequence[str],
    *,
    release: str | None = None,
    mirrors: Sequence[str] = (),
    extra_packages: Sequence[str] = (),
    disk_size: str = DEFAULT_DISK_SIZE,
) -> VmImageInputs:
    """The inputs of the VM image for ``suites`` (see :func:`image_inputs`); a
    :class:`ConfigError` for an unknown suite, no mirror, or a malformed ``disk_size``."""
    if not disk_size or not disk_size[:-1].isdigit() or disk_size[-1] not in "MG":
        raise ConfigError(f"--disk-size {disk_size!r}: write a size such as 3G or 2048M")
    base = image_inputs(
        suites, release=release, mirrors=mirrors, extra_packages=(*VM_PACKAGES, *extra_packages)
    )
    return VmImageInputs(base=base, disk_size=disk_size)


def find_vm_image(name: str | None = None, *, cache_dir: Path | None = None) -> VmImage:
    """The VM image ``name`` (a digest in the cache, or a directory), else the newest
    build (``<cache>/vm/latest``); :class:`ClusterError` saying how to build one."""
    vm = vm_cache_dir(cache_dir)
    if name and ("/" in name or Path(name).is_dir()):
        directory = Path(name).resolve()
    elif name:
        directory = vm / name
    else:
        latest = vm / "latest"
        if not latest.exists():
            raise ClusterError(
                f"no VM image in {vm}; build one with `clew image build --vm` "
                "(root, the mmdebstrap package; about 2 minutes)"
            )
        directory = latest.resolve()
    image = VmImage(directory=directory, digest=directory.name)
    if not image.complete():
        raise ClusterError(
            f"{directory} is not a complete VM image (it needs {ROOTFS}, {KERNEL}, {INITRD} "
            f"and {MANIFEST}); build one with `clew image build --vm`"
        )
    return image


def _newest(boot: Path, pattern: str) -> Path:
    found = sorted(boot.glob(pattern))
    if not found:
        raise ClusterError(f"the built tree has no {boot}/{pattern} (did linux-image install?)")
    return found[-1]


def _prune(vm: Path, keep: int, current: Path) -> None:
    """Remove all but the ``keep`` newest image directories (never ``current``)."""
    dirs = [d for d in vm.iterdir() if d.is_dir() and not d.is_symlink() and len(d.name) == 16]
    dirs.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for old in dirs[keep:]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)


def build_vm_image(
    inputs: VmImageInputs,
    *,
    cache_dir: Path | None = None,
    force: bool = False,
    timeout: float = BUILD_TIMEOUT,
    keep: int = KEEP_IMAGES,
    say: Callable[[str], None] = lambda _: None,
) -> VmBuildResult:
    """Make the VM image for ``inputs`` exist in the cache and point ``latest`` at it:
    nothing to do if it is there (unless ``force``), else mmdebstrap, mkfs.ext4 and the
    kernel copied out. Needs root. :class:`ClusterError` naming the step that failed; a
    failed build leaves no half image."""
    start = time.monotonic()
    vm = vm_cache_dir(cache_dir)
    target = vm / inputs.digest
    b = inputs.base
    say(f"VM image {inputs.digest}: {b.release}/{b.architecture}, {len(b.packages)} packages, "
        f"{inputs.disk_size} disk, {len(b.mirrors)} apt sources")  # fmt: skip
    with build_lock(vm, say):
        image = VmImage(directory=target, digest=inputs.digest)
        built = False
        if force or not image.complete():
            _build(inputs, vm, target, timeout, say)
            built = True
            _prune(vm, keep, target)
        else:
            say(f"{target} is already built; nothing to do")
        latest = vm / "latest"
        tmp = vm / "latest.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(inputs.digest)
        os.replace(tmp, latest)
    seconds = time.monotonic() - start
    say(f"VM image {inputs.digest} ready in {seconds:.1f} s ({image.disk_bytes / 1e6:.0f} MB)")
    return VmBuildResult(image=image, built=built, seconds=seconds)


def _build(
    inputs: VmImageInputs, vm: Path, target: Path, timeout: float, say: Callable[[str], None]
) -> None:
    if os.geteuid() != 0:
        raise ClusterError("building a VM image needs root (mmdebstrap, mkfs.ext4 -d); use sudo")
    tools = {t: find_binary(t) for t in ("mmdebstrap", "mkfs.ext4")}
    missing = [t for t, p in tools.items() if p is None]
    if missing:
        pkgs = " ".join("e2fsprogs" if t == "mkfs.ext4" else t for t in missing)
        raise ClusterError(f"{', '.join(missing)} not installed; install: apt-get install {pkgs}")
    work = Path(tempfile.mkdtemp(prefix=f".build-{inputs.digest}-", dir=vm))
    try:
        tree, hook = work / "tree", work / "hook.sh"
        hook.write_text(_hook_script())
        b = inputs.base
        say(f"building the root file system with mmdebstrap into {tree}")
        run_logged(
            [
                str(tools["mmdebstrap"]),
                "--variant=minbase",
                "--format=directory",
                f"--architectures={b.architecture}",
                "--include=" + ",".join(b.packages),
                '--aptopt=Acquire::Languages "none"',
                *[f"--dpkgopt={x}" for x in _DPKG_EXCLUDES],
                f'--customize-hook=sh {hook} "$1"',
                b.release,
                str(tree),
                *b.mirrors,
            ],
            timeout,
            say,
            "mmdebstrap",
        )
        out = work / "image"
        out.mkdir()
        shutil.copyfile(_newest(tree / "boot", "vmlinuz-*"), out / KERNEL)
        shutil.copyfile(_newest(tree / "boot", "initrd.img-*"), out / INITRD)
        say(f"making the ext4 file system ({inputs.disk_size}) with mkfs.ext4 -d")
        res = run_tool(
            [str(tools["mkfs.ext4"]), "-q", "-F", "-L", "clew-root", "-E", "root_owner=0:0",
             "-d", str(tree), str(out / ROOTFS), inputs.disk_size],
            timeout=MKFS_TIMEOUT,
        )  # fmt: skip
        if not res.ok:
            raise ClusterError(f"mkfs.ext4 -d {tree} failed: {res.tail()}")
        manifest = {**asdict(inputs), "digest": inputs.digest, "built": time.time()}
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str) + "\n")
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
