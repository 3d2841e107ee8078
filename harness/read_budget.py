"""The time and memory budget of reading a history file.

``clew check --time-limit`` and ``--max-memory`` hold from the moment the file is opened,
not only once the checker starts: a reader given a :class:`ReadBudget` checks it as it
goes (every few thousand ops, and inside any long parse), and raises
:class:`ReadBudgetExceeded` naming the file and the line it had reached. The caller turns
that into an ``unknown`` verdict; it is not an input error.

Memory is counted as resident memory added since the budget was made (the process's base
is not counted), as the checkers count ``--max-memory`` -- or, when it is larger, as the
reader's own lower estimate of what the history it has built so far holds. The estimate
matters in a long-lived process: memory freed earlier is reused without growing the
resident set, so resident growth alone can miss a history that is over budget.
"""

from __future__ import annotations

import os
import time

__all__ = ["ReadBudget", "ReadBudgetExceeded", "resident_bytes"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """This process's resident memory now, in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class ReadBudgetExceeded(Exception):
    """Reading a history ran out of time or memory. ``str()`` is the cause, for people."""

    def __init__(self, message: str, *, resource: str, path: str | None, line: int | None):
        super().__init__(message)
        self.resource = resource
        self.path = path
        self.line = line


class ReadBudget:
    """Seconds since ``started`` (a :func:`time.perf_counter` instant) and bytes of
    resident memory that reading may add to what the process held when the budget was
    made. ``None`` means no limit."""

    def __init__(
        self,
        started: float | None = None,
        time_limit: float | None = None,
        max_memory: int | None = None,
    ) -> None:
        self.started = time.perf_counter() if started is None else started
        self.time_limit = time_limit
        self.max_memory = max_memory
        self.base = resident_bytes() if max_memory is not None else 0
        self._deadline = None if time_limit is None else self.started + time_limit

    def left(self) -> float | None:
        """Seconds left (may be negative), or ``None`` without a time limit."""
        return None if self._deadline is None else self._deadline - time.perf_counter()

    def check(
        self,
        path: str | None,
        line: int | None,
        held: int = 0,
        *,
        holding: str = "the history read so far holds",
    ) -> None:
        """Raise :class:`ReadBudgetExceeded` if the time or the memory is spent; ``path``
        and ``line`` say how far reading got (for the message). ``held`` is the caller's
        lower estimate, in bytes, of what it holds so far (or is about to: ``holding``
        says which, for the message); memory used is the larger of it and the resident
        growth."""
        if self._deadline is not None and time.perf_counter() > self._deadline:
            raise ReadBudgetExceeded(
                f"time limit of {self.time_limit:g} s reached while reading "
                f"{_where(path, line)}; raise --time-limit",
                resource="time",
                path=path,
                line=line,
            )
        if self.max_memory is not None:
            grown = resident_bytes() - self.base
            used = max(grown, held)
            if used > self.max_memory:
                how = (
                    (
                        f"{grown / 2**20:,.0f} MiB used above the process's "
                        f"{self.base / 2**20:,.0f} MiB at the start"
                    )
                    if grown >= held
                    else (f"{holding} at least {held / 2**20:,.1f} MiB")
                )
                raise ReadBudgetExceeded(
                    f"memory budget of {self.max_memory / 2**20:,.0f} MiB reached while "
                    f"reading {_where(path, line)} ({how}); raise --max-memory",
                    resource="memory",
                    path=path,
                    line=line,
                )


def _where(path: str | None, line: int | None) -> str:
    name = path or "the history"
    return name if line is None else f"{name} at line {line:,}"
