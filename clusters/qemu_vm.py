"""One QEMU VM of the qemu provider: its command line, its monitor, starting and stopping it.

Each VM boots the image's kernel and initramfs directly (``-kernel``/``-initrd``) from a
qcow2 overlay on the image's ext4 root file system, with one virtio NIC on a tap of clew's
own (MAC chosen by the provider), a virtio RNG (sshd starts without waiting for entropy),
its console in a file, its configuration as the fw_cfg file ``opt/clew/node.tar``, and a
QMP socket. QEMU daemonizes and writes a pidfile; a VM is stopped by that PID, only after
checking that the process's command line names the VM's own pidfile.

Acceleration: KVM when ``/dev/kvm`` is usable *and* a probe VM with ``-cpu host`` starts
(on nested hosts without hardware virtualization, QEMU aborts there), else TCG, software
emulation, with ``tb-size`` as its translation cache. :func:`choose_accel` says which and
why; ``clew doctor`` shows it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusters.doctor import find_binary, run_tool
from harness.errors import ClusterError

__all__ = [
    "QEMU",
    "SNAPSHOT",
    "Accel",
    "Qmp",
    "VmFiles",
    "choose_accel",
    "kvm_usable",
    "launch",
    "qemu_command",
    "qemu_version",
    "stop_vm",
    "vm_pid",
]

QEMU = "qemu-system-x86_64"
#: The name of the internal snapshot a saved state is kept under.
SNAPSHOT = "clew-ready"
#: Seconds the KVM probe VM must stay up to count as working.
KVM_PROBE_SECONDS = 1.5
#: Seconds QEMU may take to start and daemonize (a ``-loadvm`` reads the saved RAM first).
LAUNCH_TIMEOUT = 120.0
#: Seconds a VM gets to exit after SIGTERM before SIGKILL.
STOP_TIMEOUT = 5.0
#: The kernel command line: root on the virtio disk, the console on the serial port,
#: classic interface names (eth0); no Spectre mitigations and no crypto self-tests (both
#: cost seconds under TCG).
KERNEL_ARGS = "root=/dev/vda rw console=ttyS0 net.ifnames=0 mitigations=off cryptomgr.notests quiet"


@dataclass(frozen=True, slots=True)
class Accel:
    """The accelerator to use and why."""

    name: str  # "kvm" or "tcg"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VmFiles:
    """Where one VM's files live (a directory in the cluster's state)."""

    dir: Path

    @property
    def disk(self) -> Path:
        return self.dir / "disk.qcow2"

    @property
    def config(self) -> Path:
        return self.dir / "node.tar"

    @property
    def console(self) -> Path:
        return self.dir / "console.log"

    @property
    def pidfile(self) -> Path:
        return self.dir / "qemu.pid"

    @property
    def qmp(self) -> Path:
        return self.dir / "qmp.sock"

    @property
    def argv(self) -> Path:
        """QEMU's command line for a cold start from the VM's disk (JSON)."""
        return self.dir / "argv.json"


@functools.cache
def qemu_version() -> str:
    """QEMU's version line (part of a saved state's key: states do not move between
    versions); empty if QEMU is not installed."""
    path = find_binary(QEMU)
    if path is None:
        return ""
    res = run_tool([path, "--version"], timeout=10)
    return res.stdout.splitlines()[0].strip() if res.ok and res.stdout else ""


def kvm_usable() -> tuple[bool, str]:
    """Whether KVM works for QEMU here, and the reason: ``/dev/kvm`` must open read-write
    and a probe VM (``-accel kvm -cpu host``, stopped before its first instruction) must
    stay up for :data:`KVM_PROBE_SECONDS`."""
    qemu = find_binary(QEMU)
    if qemu is None:
        return False, f"{QEMU} is not installed (apt-get install qemu-system-x86)"
    if not os.path.exists("/dev/kvm"):
        return False, "there is no /dev/kvm (no hardware virtualization, or kvm not loaded)"
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError as e:
        return False, f"/dev/kvm cannot be opened read-write: {e.strerror}"
    argv = [qemu, "-accel", "kvm", "-cpu", "host", "-machine", "pc", "-nodefaults", "-S",
            "-no-user-config", "-display", "none", "-monitor", "none",
            "-serial", "none"]  # fmt: skip
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        _, err = proc.communicate(timeout=KVM_PROBE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return True, "/dev/kvm works: a probe VM with -cpu host started"
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    why = " | ".join(lines[:2]) or f"exit status {proc.returncode}"
    return False, f"a probe VM with -accel kvm -cpu host failed ({why})"


@functools.cache
def _kvm_usable_cached() -> tuple[bool, str]:
    return kvm_usable()


def choose_accel(wanted: str) -> Accel:
    """KVM or TCG for ``wanted`` (``auto``, ``kvm``, ``tcg``): ``auto`` takes KVM if
    :func:`kvm_usable`, else TCG saying why; ``kvm`` when it is not usable is a
    :class:`ClusterError`. The probe runs once per process."""
    if wanted == "tcg":
        return Accel("tcg", "asked for (accel=tcg)")
    ok, why = _kvm_usable_cached()
    if ok:
        return Accel("kvm", why)
    if wanted == "kvm":
        raise ClusterError(f"accel=kvm was asked for, but KVM is not usable here: {why}")
    return Accel("tcg", f"software emulation (TCG), because KVM is not usable: {why}")


def qemu_command(
    *,
    name: str,
    files: VmFiles,
    image_kernel: Path,
    image_initrd: Path,
    accel: Accel,
    memory: int,
    cpus: int,
    tb_size: int,
    tap: str,
    mac: str,
    fw_cfg: str,
    loadvm: bool,
) -> list[str]:
    """The argv that starts VM ``name`` daemonized (see the module docstring). The devices
    must not change between saving a state and loading it: only ``loadvm`` differs."""
    qemu = find_binary(QEMU) or QEMU
    if accel.name == "kvm":
        acc = ["-accel", "kvm", "-cpu", "host"]
    else:
        acc = ["-accel", f"tcg,tb-size={tb_size}"]
    argv = [
        qemu, "-name", f"{name},process={name}", "-machine", "pc", *acc,
        "-m", str(memory), "-smp", str(cpus),
        "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
        "-kernel", str(image_kernel), "-initrd", str(image_initrd), "-append", KERNEL_ARGS,
        "-drive", f"file={files.disk},if=virtio,format=qcow2,cache=writeback",
        "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=net0,mac={mac}",
        "-device", "virtio-rng-pci",
        "-fw_cfg", f"name={fw_cfg},file={files.config}",
        "-serial", f"file:{files.console}",
        "-qmp", f"unix:{files.qmp},server=on,wait=off",
        "-pidfile", str(files.pidfile), "-daemonize",
    ]  # fmt: skip
    if loadvm:
        argv += ["-loadvm", SNAPSHOT]
    return argv


def launch(argv: list[str], what: str) -> int:
    """Run ``argv`` (QEMU with ``-daemonize``) and return the VM's PID from its pidfile;
    :class:`ClusterError` quoting QEMU if it fails to start."""
    pidfile = Path(argv[argv.index("-pidfile") + 1])
    res = run_tool(argv, timeout=LAUNCH_TIMEOUT)
    if not res.ok:
        status = "timed out" if res.timed_out else f"exited with status {res.returncode}"
        raise ClusterError(f"QEMU could not start {what} ({status}): {res.tail(3)}")
    pid = vm_pid(pidfile)
    if pid is None:
        raise ClusterError(f"QEMU started {what} but wrote no PID to {pidfile}")
    return pid


def vm_pid(pidfile: Path) -> int | None:
    """The PID of the running QEMU that writes ``pidfile``, if it runs: the process's
    command line must name that very pidfile (a reused PID is not ours)."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if os.fsencode(str(pidfile)) in cmdline else None


def stop_vm(pidfile: Path, *, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the VM of ``pidfile`` (SIGTERM, then SIGKILL after ``timeout``) and wait until
    it is gone; whether one was running. :class:`ClusterError` if it survives SIGKILL."""
    pid = vm_pid(pidfile)
    if pid is None:
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                return True
            time.sleep(0.05)
    raise ClusterError(f"QEMU (PID {pid}, {pidfile}) did not exit after SIGKILL")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] in "ZX"
    except (OSError, IndexError):
        return True


def rss_mb(pid: int) -> float | None:
    """The resident set of process ``pid`` in MB (``VmRSS``), if it runs."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class Qmp:
    """A QMP connection to one VM's monitor socket (JSON lines; events are skipped)."""

    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError as e:
            self.sock.close()
            raise ClusterError(
                f"cannot connect to QEMU's monitor {path}: {e.strerror or e}"
            ) from None
        self._buf = b""
        self._read()  # the greeting
        self.command("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        while b"\n" not in self._buf:
            try:
                chunk = self.sock.recv(65536)
            except OSError as e:
                raise ClusterError(f"QEMU's monitor {self.path}: {e}") from None
            if not chunk:
                raise ClusterError(f"QEMU's monitor {self.path} closed the connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        data: dict[str, Any] = json.loads(line)
        return data

    def command(self, name: str, **arguments: Any) -> Any:
        """Run QMP command ``name``; its ``return`` value, or :class:`ClusterError`."""
        msg: dict[str, Any] = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                err = reply["error"]
                raise ClusterError(f"QEMU monitor command {name} failed: {err.get('desc', err)}")

    def hmp(self, line: str) -> str:
        """Run a human monitor command (``savevm``); :class:`ClusterError` if it prints
        anything (those commands print only errors)."""
        out = str(self.command("human-monitor-command", **{"command-line": line}) or "")
        if out.strip():
            raise ClusterError(f"QEMU monitor `{line}`: {out.strip()}")
        return out

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Qmp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
