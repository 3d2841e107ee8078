"""A pool of local-cluster slots: a distinct subnet, prefix and bridge for each campaign
process (a Dask worker, or bench/bugs.py itself), taken on first use and given back at the end.

Several processes on one machine run campaigns at once (the workers of a Dask cluster,
other people's benches): each needs a namespace cluster of its own, on a subnet nobody
else uses. A slot is one subnet of the pool; a process takes the first slot whose lock
file it can lock (``flock``, so the kernel gives it back when the process dies) and whose
subnet the local provider accepts (it refuses a subnet in use on the host), brings a
cluster up there (state in ``<state root>/<slot name>/``), and keeps it until
:meth:`PoolSlot.release`. A slot whose previous holder died with its cluster up is
cleaned up (the provider's ``down`` from that state dir) before it is used again.

Names derive from the subnet's third octet, so two pools never give the same subnet two
names: ``10.77.233.0/24`` is slot ``cp233`` with prefix ``cp233-`` and bridge
``cp233-br0``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusters import ClusterSpec, get_provider
from harness.errors import ClusterError, ConfigError

__all__ = ["DEFAULT_SUBNETS", "ClusterPool", "PoolSlot", "parse_subnets"]

log = logging.getLogger("clew.campaign")

#: Subnets campaign processes take slots from unless told otherwise.
DEFAULT_SUBNETS = tuple(f"10.77.{n}.0/24" for n in range(232, 238))
#: Where slot state dirs and lock files live unless told otherwise.
DEFAULT_STATE_ROOT = Path(tempfile.gettempdir()) / "clew-pool"


def parse_subnets(text: str) -> tuple[str, ...]:
    """``"10.77.232.0/24,10.77.233.0/24"`` as a tuple; :class:`ConfigError` for an entry
    that is not an IPv4 /24 (slot names come from its third octet)."""
    subnets = tuple(s.strip() for s in text.split(",") if s.strip())
    if not subnets:
        raise ConfigError("the cluster pool needs at least one subnet")
    for s in subnets:
        parts = s.removesuffix("/24").split(".")
        if not s.endswith("/24") or len(parts) != 4 or not all(p.isdigit() for p in parts):
            raise ConfigError(f"cluster pool subnet {s!r} is not an IPv4 /24 "
                              "such as 10.77.232.0/24")
    return subnets


def _slot_name(subnet: str) -> str:
    return f"cp{subnet.split('.')[2]}"


@dataclass(frozen=True, slots=True)
class ClusterPool:
    """Where a campaign process may bring its cluster up: the subnets (one slot each), the
    node count and provider options every slot's cluster gets, and the state root."""

    subnets: tuple[str, ...] = DEFAULT_SUBNETS
    nodes: int = 5
    state_root: str = str(DEFAULT_STATE_ROOT)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[Any, ...]:
        """What identifies the pool (hashable)."""
        return (self.subnets, self.nodes, self.state_root,
                json.dumps(self.options, sort_keys=True, default=str))  # fmt: skip

    def slot_options(self, subnet: str) -> dict[str, Any]:
        """The local provider's options of the slot on ``subnet``."""
        name = _slot_name(subnet)
        return {**self.options, "subnet": subnet, "prefix": f"{name}-", "bridge": f"{name}-br0"}

    def take(self) -> PoolSlot:
        """Lock the first free slot, clean up what a dead holder left there, bring a
        cluster up on it and return it. :class:`ClusterError` naming every subnet tried
        when none could be had."""
        root = Path(self.state_root)
        root.mkdir(parents=True, exist_ok=True)
        provider = get_provider("local")
        tried: list[str] = []
        for subnet in self.subnets:
            name = _slot_name(subnet)
            fd = os.open(root / f"{name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                tried.append(f"{subnet}: taken by another process")
                continue
            state = root / name
            try:
                provider.down(state)  # a holder that died left its cluster: remove it
                provider.up(ClusterSpec(provider="local", nodes=self.nodes, name=name,
                                        state_dir=str(state),
                                        options=self.slot_options(subnet)))  # fmt: skip
            except ClusterError as e:
                with contextlib.suppress(Exception):
                    provider.down(state)
                os.close(fd)
                tried.append(f"{subnet}: {e}")
                continue
            log.info("cluster slot %s (%s) up in %s", name, subnet, state)
            return PoolSlot(name=name, subnet=subnet, state_dir=state,
                            options=self.slot_options(subnet), _lock_fd=fd)  # fmt: skip
        raise ClusterError("no free cluster slot in the pool:\n  " + "\n  ".join(tried))

    def sweep(self) -> list[str]:
        """Take down the cluster of every slot nobody holds (a holder killed before it
        could); the names of the slots cleaned. For the end of a local Dask cluster."""
        cleaned = []
        root = Path(self.state_root)
        for subnet in self.subnets:
            name = _slot_name(subnet)
            lock, state = root / f"{name}.lock", root / name
            if not lock.exists() or not state.exists():
                continue
            fd = os.open(lock, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                if any(state.iterdir()):
                    get_provider("local").down(state)
                    cleaned.append(name)
            finally:
                os.close(fd)
        return cleaned


@dataclass(slots=True)
class PoolSlot:
    """A taken slot: its cluster is up in ``state_dir`` with ``options``."""

    name: str
    subnet: str
    state_dir: Path
    options: dict[str, Any]
    _lock_fd: int | None = None

    def release(self) -> None:
        """Take the slot's cluster down and unlock the slot (idempotent)."""
        if self._lock_fd is None:
            return
        try:
            get_provider("local").down(self.state_dir)
            log.info("cluster slot %s down", self.name)
        finally:
            os.close(self._lock_fd)
            self._lock_fd = None
