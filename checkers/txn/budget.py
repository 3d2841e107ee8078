"""The transactional checker's time and memory budget, checked in every phase.

Memory is counted as resident memory added since the check started (the process's base,
the history included, is not counted), like the linearizability checker's ``--max-memory``.

One :class:`Budget` is made when a check starts; each phase calls :meth:`Budget.check`
(at its end, and inside its long loops) and :meth:`Budget.reserve` before a large
allocation. Running out raises :class:`OutOfBudget` naming the phase, which the checker
turns into an ``unknown`` verdict.
"""

from __future__ import annotations

import os
import time

__all__ = ["Budget", "OutOfBudget", "rss_bytes"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: Seconds between two reads of the resident size when nothing large is being reserved.
RSS_EVERY = 0.05


def rss_bytes() -> int:
    """This process's resident memory now, in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class OutOfBudget(Exception):
    """A phase ran out of time or memory."""

    def __init__(self, phase: str, resource: str, detail: str) -> None:
        super().__init__(f"ran out of {resource} in the {phase} phase ({detail})")
        self.phase = phase
        self.resource = resource


class Budget:
    """Seconds since ``started`` (a ``time.perf_counter()``) and bytes of resident memory
    the check may add to what the process held when the budget was made (its base: the
    history and everything before; as ``--max-memory`` of the linearizability checker)."""

    def __init__(self, started: float, time_limit: float | None, max_memory: int | None) -> None:
        self.started = started
        self.time_limit = time_limit
        self.max_memory = max_memory
        self._rss = 0
        self._rss_at = -1.0
        self.base = self._resident(fresh=True) if max_memory is not None else 0

    def _resident(self, fresh: bool) -> int:
        """RSS, read again at most every :data:`RSS_EVERY` seconds unless ``fresh``."""
        now = time.perf_counter()
        if fresh or self._rss_at < 0 or now - self._rss_at > RSS_EVERY:
            self._rss, self._rss_at = rss_bytes(), now
        return self._rss

    def elapsed(self) -> float:
        """Seconds since the check started."""
        return time.perf_counter() - self.started

    def left(self) -> float | None:
        """Seconds left (may be negative), or ``None`` without a time limit."""
        return None if self.time_limit is None else self.time_limit - self.elapsed()

    def deadline(self) -> float | None:
        """The time limit as a ``time.monotonic()`` instant."""
        left = self.left()
        return None if left is None else time.monotonic() + left

    def check(self, phase: str) -> None:
        """Raise :class:`OutOfBudget` if the time or the memory is spent."""
        left = self.left()
        if left is not None and left < 0:
            raise OutOfBudget(phase, "time", f"time limit {self.time_limit:g} s")
        self.reserve(phase, 0)

    def reserve(self, phase: str, nbytes: int) -> None:
        """Raise :class:`OutOfBudget` if ``nbytes`` more would pass the memory budget."""
        if self.max_memory is None:
            return
        used = self._resident(fresh=nbytes > 2**24) - self.base
        if used + nbytes > self.max_memory:
            need = f", {nbytes / 2**20:,.0f} MiB more needed" if nbytes else ""
            raise OutOfBudget(phase, "memory", f"{used / 2**20:,.0f} MiB used{need}, budget "
                              f"{self.max_memory / 2**20:,.0f} MiB above the process's "
                              f"{self.base / 2**20:,.0f} MiB at the start")  # fmt: skip
