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
from collections.abc import Callable
from typing import Any

__all__ = [
    "JSON_MOST_PER_CHAR",
    "ReadBudget",
    "ReadBudgetExceeded",
    "parse_memory_bound",
    "resident_bytes",
]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """This process's resident memory now, in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def parse_memory_bound(data: bytes | str) -> int:
    """An upper bound, in bytes, of the memory that decoding the JSON ``data`` into Python
    objects takes (measured on CPython 3.11 for lists, objects, strings and numbers of
    every size, with :mod:`json` and with ``msgspec``): the text, plus what each list,
    object, string and item can cost. It counts the characters in strings too, so it is
    high for text-heavy files. A ``str``, and bytes that are not all ASCII or hold a
    ``\\u`` escape, count 4 bytes a character: one character past U+FFFF makes Python keep
    its whole string at 4 bytes a character."""
    if isinstance(data, str):
        size = 4 * len(data)
        n = (data.count("{"), data.count("["), data.count(","), data.count('"'))
    else:
        size = len(data) if data.isascii() and b"\\u" not in data else 4 * len(data)
        n = (data.count(b"{"), data.count(b"["), data.count(b","), data.count(b'"'))
    return size + 200 * n[0] + 80 * n[1] + 48 * n[2] + 32 * n[3]


#: The most :func:`parse_memory_bound` counts for one character (a ``{`` in a ``str``):
#: that many times a text's length bounds what decoding it takes, without counting.
JSON_MOST_PER_CHAR = 204

#: Text whose crude bound (its length times the most a character may cost) is at most
#: this share of the memory budget is decoded without a look at the budget first: the
#: builder's own looks, every thousand ops, cover it.
SMALL_SHARE = 64
#: Nor is text of at most this many characters (one op, or a block of short ones): what
#: decoding it takes, a few MiB at most, is the slack any look between ops leaves.
SMALL_TEXT = 1 << 16


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


    def small_text(self, most_per_char: int, least: int | None = None) -> int:
        """The longest text (in characters) decoded without a look at the budget, for a
        format whose characters cost at most ``most_per_char`` bytes each to decode: at
        least ``least`` (:data:`SMALL_TEXT`), more under a large budget. A reader's hot
        loop compares lengths with it before calling :meth:`check_decoding`."""
        if self.max_memory is None:
            return 1 << 62
        least = SMALL_TEXT if least is None else least
        return max(least, self.max_memory // SMALL_SHARE // most_per_char)

    def check_decoding(
        self,
        path: str | None,
        line: int | None,
        text: bytes | str,
        held: int = 0,
        *,
        bound: Callable[[Any], int] = parse_memory_bound,
        most_per_char: int = JSON_MOST_PER_CHAR,
        what: str = "decoding the line",
    ) -> None:
        """Raise :class:`ReadBudgetExceeded` if decoding ``text`` may take more memory
        than is left of the budget (``bound`` of it, an upper bound of what decoding it
        takes; ``most_per_char`` the most it counts for a character): before anything is
        decoded. ``held`` is the caller's lower estimate of what it holds so far, as in
        :meth:`check`; ``what`` names the step, for the message. A text longer than
        :meth:`small_text` costs a look at the resident memory, and it is counted only
        when its crude bound does not fit in what is left; the caller skips short ones."""
        if self.max_memory is None:
            return
        used = max(resident_bytes() - self.base, held)
        if most_per_char * len(text) <= self.max_memory - used:
            return
        self.check_room(path, line, bound(text), held, what=what)

    def check_room(
        self,
        path: str | None,
        line: int | None,
        need: int,
        held: int = 0,
        *,
        what: str = "decoding the line",
    ) -> None:
        """Raise :class:`ReadBudgetExceeded` if ``need`` more bytes (what ``what`` may
        take) do not fit in what is left of the memory budget; memory in use is counted
        as in :meth:`check`."""
        if self.max_memory is None:
            return
        used = max(resident_bytes() - self.base, held)
        if used + need > self.max_memory:
            raise ReadBudgetExceeded(
                f"memory budget of {self.max_memory / 2**20:,.0f} MiB reached while "
                f"reading {_where(path, line)} ({what} may take up to "
                f"{need / 2**20:,.1f} MiB, and {used / 2**20:,.1f} MiB are in use); "
                "raise --max-memory",
                resource="memory",
                path=path,
                line=line,
            )


def _where(path: str | None, line: int | None) -> str:
    name = path or "the history"
    return name if line is None else f"{name} at line {line:,}"
