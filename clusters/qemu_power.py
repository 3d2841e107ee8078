"""Power faults of the qemu provider: a VM switched off hard and started again from its disk.

:func:`power_off` kills a VM's QEMU with SIGKILL, as pulling the plug would: the guest
gets no shutdown, and whatever its kernel had not written to the virtual disk (its page
cache) is gone. What QEMU itself had passed to the host's file (``cache=writeback``) stays,
as a disk's own cache survives on a drive that honours flushes. :func:`power_on` starts the
same VM again from its disk, cold (the command line ``up`` used, without ``-loadvm``), and
waits until its sshd answers; it does nothing to a VM that runs. Both act only on a VM of
the cluster's ledger, by the PID whose command line names that VM's pidfile.

A power-off may carry a lease (:func:`power_off` with ``lease``): a guard process on this
host (``python -m clusters.qemu_power STATE NODE``, started with ``setsid -f``) powers the
VM on by itself once the lease file ``nodes/<n>/power-lease`` has gone ``lease`` seconds
without a renewal (:func:`renew_power`, which touches it), as the nodes' own fault guard
heals other faults when the controller dies. :func:`power_on` removes the file first, and
the guard ends without acting when the file is gone. A lock per VM (``power.lock``)
keeps the guard and the controller from starting one VM twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from clusters.base import Cluster
from clusters.qemu_vm import VmFiles, launch, vm_pid
from harness.errors import ClusterError

__all__ = [
    "DEFAULT_POWER_ON_TIMEOUT",
    "LEASE_FILE",
    "end_power_lease",
    "power_off",
    "power_on",
    "renew_power",
    "vm_files",
]

#: Seconds a cold start after a power-off may take to reach sshd (a cold boot of one VM
#: under TCG took 86 s here at load 11).
DEFAULT_POWER_ON_TIMEOUT = 600.0
#: Seconds a SIGKILLed QEMU may take to be gone.
_KILL_WAIT = 10.0
#: In a VM's directory: the power-off's lease (its seconds; its mtime is the last renewal),
#: the lock of power-on and power-off, and the host-side guard's log.
LEASE_FILE = "power-lease"
_LOCK_FILE = "power.lock"
_GUARD_LOG = "power-guard.log"


def vm_files(cluster: Cluster, node: str) -> VmFiles:
    """Where node ``node``'s VM keeps its files; :class:`ClusterError` for a node the
    cluster does not have."""
    if node not in {n.name for n in cluster.nodes}:
        raise ClusterError(f"the cluster in {cluster.state_dir} has no node {node!r}")
    return VmFiles(dir=Path(cluster.state_dir) / "nodes" / node)


def power_off(cluster: Cluster, node: str, *, lease: float | None = None) -> bool:
    """Kill ``node``'s VM with SIGKILL and wait until its QEMU is gone; whether it was
    running. With ``lease`` (seconds), start the host-side guard that powers the VM on
    once the lease goes that long without :func:`renew_power`. :class:`ClusterError` if
    the VM survives."""
    files = vm_files(cluster, node)
    with _locked(files.dir):
        pid = vm_pid(files.pidfile)
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + _KILL_WAIT
        # Not vm_pid: a dying process's command line reads empty before it closes the disk.
        while not _gone(pid):
            if time.monotonic() >= deadline:
                raise ClusterError(f"{node}'s QEMU (PID {pid}) did not exit after SIGKILL")
            time.sleep(0.05)
        if lease is not None:
            _start_guard(cluster, node, lease)
    return True


def end_power_lease(directory: Path) -> None:
    """End the lease of the power-off of the VM whose files are in ``directory`` (if any)
    without powering it on: its guard ends without acting (``down`` calls this before
    stopping the VMs, so no guard starts one again)."""
    if directory.is_dir():
        with _locked(directory), contextlib.suppress(FileNotFoundError):
            (directory / LEASE_FILE).unlink()


def renew_power(cluster: Cluster, node: str) -> None:
    """Push the lease of ``node``'s power-off forward (nothing if it has none)."""
    with contextlib.suppress(FileNotFoundError):
        os.utime(vm_files(cluster, node).dir / LEASE_FILE)


def power_on(
    cluster: Cluster, node: str, *, within: float = DEFAULT_POWER_ON_TIMEOUT, wait: bool = True
) -> bool:
    """Start ``node``'s VM again from its disk unless it runs, and wait until its sshd
    answers (at most ``within`` seconds); whether it had to be started. With
    ``wait=False`` a VM that was running already is not waited for. Either way its
    power-off lease ends. :class:`ClusterError` quoting the console if it does not come
    up."""
    from clusters.qemu import _wait_ready

    files = vm_files(cluster, node)
    with _locked(files.dir):
        with contextlib.suppress(FileNotFoundError):
            (files.dir / LEASE_FILE).unlink()  # its guard, if any, ends without acting
        started = vm_pid(files.pidfile) is None
        if started:
            try:
                argv = json.loads(files.argv.read_text())
            except (OSError, ValueError) as e:
                raise ClusterError(
                    f"cannot start {node}'s VM again: its command line {files.argv} is "
                    f"unreadable ({e}); a cluster brought up by an older clew lacks it"
                ) from None
            with contextlib.suppress(FileNotFoundError):
                files.pidfile.unlink()
            launch(argv, f"VM {node} (power-on)")
    if not started and not wait:
        return False
    host = next(n.host for n in cluster.nodes if n.name == node)
    _wait_ready([node], [host], [files], within, "powered-on")
    return started


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold the VM's power lock (an flock, released when its holder dies); no lock where
    the VM has no directory (nothing of it to start or stop)."""
    if not directory.is_dir():
        yield
        return
    with open(directory / _LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _start_guard(cluster: Cluster, node: str, lease: float) -> None:
    """Write the lease file and start its guard, detached (its own session), logging to
    the VM's directory."""
    directory = vm_files(cluster, node).dir
    (directory / LEASE_FILE).write_text(f"{lease:g}\n")
    argv = [sys.executable, "-m", "clusters.qemu_power", str(cluster.state_dir), node]
    with open(directory / _GUARD_LOG, "ab") as log:
        # setsid -f: the guard runs on in a session of its own, not as our child, so it
        # outlives us and nothing here has to reap it.
        res = subprocess.run(["setsid", "-f", *argv], stdin=subprocess.DEVNULL, stdout=log,
                             stderr=log, cwd=str(Path(__file__).resolve().parent.parent),
                             timeout=30, check=False)  # fmt: skip
    if res.returncode != 0:
        raise ClusterError(
            f"could not start the guard of {node}'s power-off lease (setsid exited with "
            f"{res.returncode}; see {directory / _GUARD_LOG})"
        )


def guard(state_dir: str, node: str) -> str:
    """The host-side guard of one power-off (run detached by :func:`power_off`): wait
    while the lease file is renewed; when it goes its seconds without a renewal, power
    the VM on. Ends when the file is gone (the VM was powered on, or the cluster is down).
    Returns what it did."""
    cluster = Cluster.load(state_dir)
    directory = vm_files(cluster, node).dir
    lease_file = directory / LEASE_FILE
    while True:
        try:
            lease = float(lease_file.read_text())
            idle = time.time() - lease_file.stat().st_mtime
        except (OSError, ValueError):
            return "the lease ended: nothing to do"
        if idle > lease:
            break
        time.sleep(max(0.1, min(1.0, lease / 10)))
    try:
        started = power_on(cluster, node)  # removes the lease file
    except ClusterError as e:
        return f"the lease of {node}'s power-off lapsed, but powering it on failed: {e}"
    return f"the lease of {node}'s power-off lapsed ({idle:.1f} s > {lease:g} s): " + (
        "powered on" if started else "it was on already"
    )


if __name__ == "__main__":
    print(time.strftime("%Y-%m-%dT%H:%M:%S"), guard(sys.argv[1], sys.argv[2]), flush=True)
