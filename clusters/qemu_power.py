"""Power faults of the qemu provider: a VM switched off hard and started again from its disk.

:func:`power_off` kills a VM's QEMU with SIGKILL, as pulling the plug would: the guest
gets no shutdown, and whatever its kernel had not written to the virtual disk (its page
cache) is gone. What QEMU itself had passed to the host's file (``cache=writeback``) stays,
as a disk's own cache survives on a drive that honours flushes. :func:`power_on` starts the
same VM again from its disk, cold (the command line ``up`` used, without ``-loadvm``), and
waits until its sshd answers; it does nothing to a VM that runs. Both act only on a VM of
the cluster's ledger, by the PID whose command line names that VM's pidfile.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

from clusters.base import Cluster
from clusters.qemu_vm import VmFiles, launch, vm_pid
from harness.errors import ClusterError

__all__ = ["DEFAULT_POWER_ON_TIMEOUT", "power_off", "power_on", "vm_files"]

#: Seconds a cold start after a power-off may take to reach sshd (a cold boot of one VM
#: under TCG took 86 s here at load 11).
DEFAULT_POWER_ON_TIMEOUT = 600.0
#: Seconds a SIGKILLed QEMU may take to be gone.
_KILL_WAIT = 10.0


def vm_files(cluster: Cluster, node: str) -> VmFiles:
    """Where node ``node``'s VM keeps its files; :class:`ClusterError` for a node the
    cluster does not have."""
    if node not in {n.name for n in cluster.nodes}:
        raise ClusterError(f"the cluster in {cluster.state_dir} has no node {node!r}")
    return VmFiles(dir=Path(cluster.state_dir) / "nodes" / node)


def power_off(cluster: Cluster, node: str) -> bool:
    """Kill ``node``'s VM with SIGKILL and wait until its QEMU is gone; whether it was
    running. :class:`ClusterError` if it survives."""
    files = vm_files(cluster, node)
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
    return True


def power_on(cluster: Cluster, node: str, *, within: float = DEFAULT_POWER_ON_TIMEOUT) -> bool:
    """Start ``node``'s VM again from its disk unless it runs, and wait until its sshd
    answers (at most ``within`` seconds); whether it had to be started.
    :class:`ClusterError` quoting the console if it does not come up."""
    from clusters.qemu import _wait_ready

    files = vm_files(cluster, node)
    if vm_pid(files.pidfile) is None:
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
        started = True
    else:
        started = False
    host = next(n.host for n in cluster.nodes if n.name == node)
    _wait_ready([node], [host], [files], within, "powered-on")
    return started


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")
