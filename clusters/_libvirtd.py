"""A libvirt daemon of a cluster's own, for the vagrant provider's libvirt boxes.

Debian's ``libvirt-daemon-system`` defines and starts a NAT network (``virbr0``, with its
firewall rules) on install, and runs libvirtd under systemd. clew uses neither: it runs
``libvirtd`` from ``libvirt-daemon`` itself, one per cluster, by PID, in a private mount
namespace (``unshare -m``) where libvirt's directories are bind mounts of the cluster's
state directory:

``/etc/libvirt``  ``libvirtd.conf`` (a socket in the state directory, no TCP, no auth)
                  and ``qemu.conf`` (QEMU as root, no security driver, no cgroups, logs
                  to files rather than through virtlogd); no networks are defined, so
                  nothing touches the host's firewall
``/var/lib/libvirt``, ``/var/cache/libvirt``, ``/var/log/libvirt``, ``/run/libvirt``
                  the daemon's state, empty at start
``/etc/passwd``, ``/etc/group``  copies with a ``libvirt-qemu`` user: Debian's libvirt
                  looks that user up before it reads ``qemu.conf`` (whose ``user = "root"``
                  then applies), and only ``libvirt-daemon-system`` creates it

So nothing of libvirt's is left on the host when the daemon stops, apart from the empty
mount points (created if missing, recorded, removed again). Clients reach the daemon at
:func:`uri`. Stopping it leaves its QEMU processes running: :func:`stop` therefore first
destroys every domain, deletes every volume and pool, then ends the daemon, then any
QEMU whose command line names the cluster's directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from clusters.doctor import find_binary, run_tool
from harness.errors import ClusterError

__all__ = ["MOUNT_POINTS", "libvirtd_pid", "start", "stop", "uri", "virsh"]

#: The directories bind-mounted from the cluster's state in the daemon's namespace.
MOUNT_POINTS = ("/var/lib/libvirt", "/var/cache/libvirt", "/var/log/libvirt", "/run/libvirt")
#: Seconds the daemon may take to open its socket.
START_TIMEOUT = 60.0
#: Seconds one virsh command may take.
VIRSH_TIMEOUT = 120.0
_SOCKET = "sock/libvirt-sock"
_QEMU_CONF = """# clew: QEMU as root, no security labels, cgroups or namespaces, logs to files.
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
stdio_handler = "file"
cgroup_controllers = [ ]
namespaces = [ ]
"""


def uri(root: Path) -> str:
    """The libvirt URI of the daemon kept in ``root``."""
    return f"qemu:///system?socket={root / _SOCKET}"


def _conf(root: Path) -> Path:
    return root / "etc" / "libvirtd.conf"


def libvirtd_pid(root: Path, pid: int | None) -> int | None:
    """``pid`` if it is the running libvirtd of ``root`` (its command line names the
    daemon's configuration there), else ``None``."""
    if not pid:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if os.fsencode(str(_conf(root))) in cmdline else None


def start(root: Path) -> tuple[int, list[str]]:
    """Start the cluster's libvirtd with its files in ``root``; its PID and the mount
    points this call created on the host (to remove at :func:`stop`). Needs root,
    ``libvirtd`` and ``unshare``; :class:`ClusterError` quoting the daemon's log if it
    does not open its socket within :data:`START_TIMEOUT`."""
    libvirtd, unshare = find_binary("libvirtd"), find_binary("unshare")
    if libvirtd is None or unshare is None:
        raise ClusterError(
            "the vagrant provider's libvirt boxes need libvirtd and unshare: apt-get install "
            "--no-install-recommends libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients "
            "(not libvirt-daemon-system, which starts a NAT network)"
        )
    for sub in ("etc", "lib", "cache", "log", "run", "sock"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "sock").chmod(0o700)
    _conf(root).write_text(
        "# clew: a private daemon on a socket of its own, nothing over the network.\n"
        f'unix_sock_dir = "{root / "sock"}"\nunix_sock_rw_perms = "0700"\n'
        'auth_unix_rw = "none"\nauth_unix_ro = "none"\n'
        f'log_outputs = "3:file:{root / "libvirtd.log"}"\n'
    )
    (root / "etc" / "qemu.conf").write_text(_QEMU_CONF)
    passwd, group = Path("/etc/passwd").read_text(), Path("/etc/group").read_text()
    if not any(line.startswith("libvirt-qemu:") for line in passwd.splitlines()):
        passwd += "libvirt-qemu:x:64055:64055:libvirt (clew namespace):/nonexistent:/bin/false\n"
    if not any(line.startswith("libvirt-qemu:") for line in group.splitlines()):
        group += "libvirt-qemu:x:64055:\n"
    (root / "passwd").write_text(passwd)
    (root / "group").write_text(group)
    created = []
    for mp in MOUNT_POINTS:
        if not os.path.isdir(mp):
            os.makedirs(mp)
            created.append(mp)
    binds = [
        ("etc", "/etc/libvirt"),
        ("lib", "/var/lib/libvirt"),
        ("cache", "/var/cache/libvirt"),
        ("log", "/var/log/libvirt"),
        ("run", "/run/libvirt"),
        ("passwd", "/etc/passwd"),
        ("group", "/etc/group"),
    ]
    script = "set -e\n" + "".join(f"mount --bind '{root / s}' '{t}'\n" for s, t in binds)
    script += f"exec '{libvirtd}' -f '{_conf(root)}' -p '{root / 'libvirtd.pid'}'\n"
    (root / "start.sh").write_text(script)
    with open(root / "libvirtd.out", "ab") as out:
        proc = subprocess.Popen(
            [unshare, "-m", "--propagation", "private", "sh", str(root / "start.sh")],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ClusterError(f"libvirtd exited at start (status {proc.returncode}): "
                               f"{_log_tail(root)}")  # fmt: skip
        if (root / _SOCKET).exists() and virsh(root, "version", check=False)[0]:
            return proc.pid, created
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    raise ClusterError(f"libvirtd did not open {root / _SOCKET} within {START_TIMEOUT:g} s: "
                       f"{_log_tail(root)}")  # fmt: skip


def virsh(root: Path, *args: str, check: bool = True) -> tuple[bool, str]:
    """Run ``virsh -c <uri> args``; (ok, stdout). With ``check``, a failure is a
    :class:`ClusterError` quoting virsh."""
    exe = find_binary("virsh")
    if exe is None:
        raise ClusterError("virsh not found: apt-get install libvirt-clients")
    res = run_tool([exe, "-q", "-c", uri(root), *args], timeout=VIRSH_TIMEOUT)
    if check and not res.ok:
        raise ClusterError(f"virsh {' '.join(args)} failed: {res.tail()}")
    return res.ok, res.stdout


def stop(root: Path, pid: int | None, created: list[str]) -> list[str]:
    """Destroy and undefine every domain of the daemon in ``root``, delete every volume
    and pool, stop the daemon (SIGTERM, then SIGKILL), kill any QEMU left whose command
    line names ``root``'s parent (the cluster's state directory), remove the mount points
    in ``created`` if empty. Returns what could not be done (empty when all went)."""
    problems: list[str] = []
    if libvirtd_pid(root, pid) is not None:
        ok, out = virsh(root, "list", "--all", "--name", check=False)
        for dom in [d.strip() for d in out.splitlines() if d.strip()] if ok else []:
            virsh(root, "destroy", dom, check=False)
            ok_u, _ = virsh(root, "undefine", dom, "--nvram", check=False)
            if not ok_u:
                ok_u, _ = virsh(root, "undefine", dom, check=False)
            if not ok_u:
                problems.append(f"cannot undefine domain {dom}")
        ok, out = virsh(root, "pool-list", "--all", "--name", check=False)
        for pool in [p.strip() for p in out.splitlines() if p.strip()] if ok else []:
            virsh(root, "pool-refresh", pool, check=False)
            _, vols = virsh(root, "vol-list", pool, check=False)
            for line in vols.splitlines():
                if line.split():
                    vol = line.split()[0]
                    if not virsh(root, "vol-delete", "--pool", pool, vol, check=False)[0]:
                        problems.append(f"cannot delete volume {vol} of pool {pool}")
            virsh(root, "pool-destroy", pool, check=False)
            virsh(root, "pool-undefine", pool, check=False)
        _end(pid)
    for leftover in _qemu_pids(root.parent):
        _end(leftover)
    for mp in created:
        with contextlib.suppress(OSError):
            os.rmdir(mp)
    return problems


def _end(pid: int | None, wait: float = 10.0) -> None:
    if not pid:
        return
    for sig, seconds in ((signal.SIGTERM, wait), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists():
                return
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)


def _qemu_pids(state: Path) -> list[int]:
    """QEMU processes whose command line names a file under ``state`` (only the
    cluster's VMs: their fw_cfg archive lives there)."""
    needle = os.fsencode(str(state) + "/")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"qemu-system" in cmd.split(b"\0", 1)[0] and needle in cmd:
            found.append(int(entry.name))
    return found


def _log_tail(root: Path, lines: int = 4) -> str:
    texts = []
    for name in ("libvirtd.out", "libvirtd.log"):
        with contextlib.suppress(OSError):
            texts += [ln for ln in (root / name).read_text(errors="replace").splitlines()
                      if " error : " in ln or name == "libvirtd.out"]  # fmt: skip
    return " | ".join(texts[-lines:]) or f"(nothing in {root}/libvirtd.log)"
