"""One run at a time on a cluster: the lock a run holds on its cluster's state directory.

Two ``clew test`` (or ``clew campaign``) commands given the same cluster (the default one,
or the same ``--cluster-state-dir``) would otherwise both install the database on the same
nodes, restart and kill each other's processes, and report each other's interference as
the database's anomalies. A run holds an exclusive ``flock`` on the state directory
itself (not on a file in it, so ``down`` can still remove the directory once empty) from
before the cluster comes up until after it goes down; a second run is refused at once,
naming the directory and what to do. The kernel drops the lock when its holder dies, so a
killed run never leaves the cluster locked. Within one process the hold nests: a campaign
holds its cluster for all its runs, and each run inside it holds it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from clusters.base import check_state_dir
from harness.errors import ConfigError

__all__ = ["cluster_in_use"]

#: The state directories this process holds (resolved), and how deep the holds nest.
_held: dict[str, int] = {}


@contextlib.contextmanager
def cluster_in_use(state_dir: Path, *, busy: str = "") -> Iterator[None]:
    """Hold the cluster in ``state_dir`` for one run (creating the directory if need be,
    and removing what this made again if it is still empty at the end); a
    :class:`ConfigError` at once if another run holds it (``busy``: what to tell the
    person instead of the default, which is for a second run), or if ``state_dir`` is a
    file (:func:`clusters.base.check_state_dir`)."""
    check_state_dir(state_dir)
    key = str(state_dir.resolve())
    if _held.get(key):  # this process holds it already (a campaign, for its runs)
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    made = [p for p in (state_dir, *state_dir.parents) if not p.exists()]
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another clew run is using the cluster in {state_dir}: "
                + (busy or "two runs on the same nodes would disturb each other's databases "
                   "and report it as anomalies. Wait for it, or give this run a cluster of its "
                   "own: --cluster-state-dir DIR with --cluster-option subnet=10.77.N.0/24 "
                   "--cluster-option prefix=NAME-")
            ) from None  # fmt: skip
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
    finally:
        os.close(fd)
        for p in made:  # the directory first, then the parents this made
            try:
                p.rmdir()  # only if empty: never what is not ours
            except OSError:
                break
