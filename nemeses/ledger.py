"""The fault ledger: ``faults.jsonl`` in the run directory, one JSON object per line,
flushed as it is written, so a controller crash still leaves a complete account.

Every fault op leaves two records with the same ``seq``: ``"event": "intent"`` *before* it
acts, then ``"applied"`` (a ``start-…`` op) or ``"healed"`` (a ``stop-…`` op) after, or
``"error"`` if it failed. Fields:

``seq``         sequence number of the op (intent and outcome share it)
``time``        nanoseconds since the run's origin (the history's time axis)
``event``       intent | applied | healed | error | verified | scheduler (its summary:
                ``requested``, ``struck`` and ``missed`` kinds, and ``why``)
``phase``       start | stop, on applied/healed records (what plots draw as windows)
``kind``        partition, pause, kill, clock, packet
``f``, ``value``  the op; on the outcome, ``value`` is what was actually applied
``targets``     the nodes the fault struck, resolved (``primaries`` -> ``n3``)
``at``          the planned offset in seconds (the schedule's), if planned
``source``      the scheduler: random | replay | another registered one
``why``         the scheduler's reason for the op (intent records)
``reason``      planned | final (the end-of-run heal) | heal-all
``commands``    ``[node, command]`` for every command run on a node
``seconds``     how long it took
``error``       what went wrong (error records)

The run's seed and the schedule's origin are in ``spec.json`` and ``schedule.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from harness.progress import note_fault
from harness.read_budget import parse_memory_bound

__all__ = [
    "MAX_LEDGER_LINE_BYTES",
    "MAX_LEDGER_MEMORY",
    "MAX_LEDGER_RECORDS",
    "FaultLedger",
    "LedgerLines",
    "count_records",
    "read_ledger",
    "read_ledger_lines",
    "targets_of",
]


def targets_of(value: Any) -> list[str]:
    """The nodes a fault value strikes: ``nodes`` of a dict value, the keys of a grudge
    (nodes that drop something), a list of names; ``[]`` for anything else."""
    if isinstance(value, dict):
        if isinstance(value.get("nodes"), list):
            return [str(n) for n in value["nodes"]]
        if isinstance(value.get("offsets"), dict):
            return sorted(str(n) for n in value["offsets"])
        if value and all(isinstance(v, list) for v in value.values()):
            return sorted(str(n) for n, v in value.items() if v)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return []


class FaultLedger:
    """Appends records to ``faults.jsonl`` (see the module docstring). Times are measured
    from ``t0`` (a :func:`time.monotonic` value), reset by :meth:`restart_clock`."""

    def __init__(self, path: str | Path, *, t0: float | None = None, source: str = "random"):
        self.path = Path(path)
        self._f = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._t0 = time.monotonic() if t0 is None else t0
        self._seq = 0
        self.source = source
        #: Every record written, in order (a run's faults are few: bounded by its length
        #: over the interval), for schedulers to read during the run.
        self.records: list[dict[str, Any]] = []

    def restart_clock(self) -> None:
        """Measure times from now on (when the interpreter starts)."""
        self._t0 = time.monotonic()

    def now(self) -> int:
        """Nanoseconds since the origin."""
        return int((time.monotonic() - self._t0) * 1e9)

    def next_seq(self) -> int:
        """A fresh sequence number."""
        self._seq += 1
        return self._seq

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` (with ``time`` set to now unless given) and flush."""
        rec = {"time": self.now(), **record}
        self.records.append(rec)
        self._f.write(json.dumps(rec, default=str) + "\n")
        self._f.flush()
        note_fault(rec)  # the live line shows a fault the moment it strikes or heals

    def close(self) -> None:
        """Close the file (further writes are an error)."""
        self._f.close()


#: The longest line of a ledger read (bytes): clew's largest record, a partition's
#: ``applied`` with its grudge and every node's commands, is about 0.75 MiB on 255 nodes
#: (it grows as the square of the nodes), so a longer line was not written by clew.
MAX_LEDGER_LINE_BYTES = 8 * 1024**2

#: The most records of a ledger a page or a run's results read (about four a fault op, so
#: 25,000 ops: one a second for 7 hours). A replay or a scheduler reads them all, within
#: :data:`MAX_LEDGER_MEMORY`.
MAX_LEDGER_RECORDS = 100_000

#: The most memory decoding a ledger's lines may take, summed over the lines read
#: (:func:`harness.read_budget.parse_memory_bound` of each): clew's records need about ten
#: times their size, so only a planted ledger of small lists or objects comes near it.
MAX_LEDGER_MEMORY = 512 * 1024**2

#: The bytes read at a time to pass over a line longer than :data:`MAX_LEDGER_LINE_BYTES`.
_SKIP_CHUNK = 1024**2


class LedgerLines(NamedTuple):
    """What :func:`read_ledger_lines` read: each record with its line number (1-based);
    the torn last line skipped (``None``: none was); the lines skipped as longer than
    :data:`MAX_LEDGER_LINE_BYTES` (``lenient`` reading only); and why reading stopped
    before the end of the file (``None``: it did not, or it stopped at its ``limit``)."""

    rows: list[tuple[int, dict[str, Any]]]
    torn: int | None = None
    skipped: tuple[int, ...] = ()
    cut: str | None = None

    def problems(self, path: str | Path) -> list[str]:
        """What was left out, in words naming the file and lines (``[]``: nothing)."""
        out = []
        if self.skipped:
            n = len(self.skipped)
            out.append(f"{path}:{self.skipped[0]}: {n:,} line{'s' if n != 1 else ''} longer "
                       f"than {MAX_LEDGER_LINE_BYTES / 2**20:g} MiB (no record clew writes is) "
                       f"skipped, the first this one")  # fmt: skip
        if self.cut:
            out.append(self.cut)
        return out


def read_ledger(path: str | Path, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The records of a ``faults.jsonl`` (``[]`` if absent), the first ``limit`` of them
    if given; a torn last line (a crash mid-write) is skipped, any other malformed line
    (not UTF-8, not a JSON object, or a numeric ``time`` that is not a finite 64-bit
    count of nanoseconds) raises :class:`~harness.errors.InputError` naming the line, and
    so does a ledger past the caps (:func:`read_ledger_lines`)."""
    return [rec for _, rec in read_ledger_lines(path, limit=limit).rows]


def read_ledger_lines(
    path: str | Path, *, limit: int | None = None, lenient: bool = False
) -> LedgerLines:
    """As :func:`read_ledger`, each record with its line number (1-based), and the number
    of the torn last line that was skipped. The file is read a line at a time, and no
    further than its ``limit``-th record. A line longer than :data:`MAX_LEDGER_LINE_BYTES`
    or lines whose decoding would take more than :data:`MAX_LEDGER_MEMORY` raise
    :class:`~harness.errors.InputError` naming the file and line (a replay needs every
    record of a run); ``lenient`` (for a page or results), the long line is skipped and
    the reading stops at the memory cap or past :data:`MAX_LEDGER_RECORDS` records
    instead, each said in the result."""
    from harness.errors import InputError

    p = Path(path)
    cap = limit
    if lenient:
        cap = MAX_LEDGER_RECORDS if limit is None else min(limit, MAX_LEDGER_RECORDS)
    out: list[tuple[int, dict[str, Any]]] = []
    skipped: list[int] = []
    memory = 0
    try:
        with p.open("rb") as f:
            i = 0
            while raw := f.readline(MAX_LEDGER_LINE_BYTES + 1):
                i += 1
                if len(raw) <= MAX_LEDGER_LINE_BYTES and not raw.strip():
                    continue
                if cap is not None and len(out) >= cap:
                    if limit is not None and len(out) >= limit:
                        break
                    why = (f"{p}:{i}: more than {MAX_LEDGER_RECORDS:,} records, the most a "
                           "page or results of a run show")  # fmt: skip
                    return LedgerLines(out, None, tuple(skipped), f"{why}: read up to line {i - 1}")
                if len(raw) > MAX_LEDGER_LINE_BYTES:
                    if not raw.endswith(b"\n"):
                        _pass_line(f)
                    if not lenient:
                        raise InputError(f"{p}:{i}: a line longer than "
                                         f"{MAX_LEDGER_LINE_BYTES / 2**20:g} MiB, which no "
                                         "record clew writes is: not read")  # fmt: skip
                    skipped.append(i)
                    continue
                memory += parse_memory_bound(raw)
                if memory > MAX_LEDGER_MEMORY:
                    why = (f"{p}:{i}: decoding the ledger up to this line would take more than "
                           f"{MAX_LEDGER_MEMORY / 2**20:,.0f} MiB of memory")  # fmt: skip
                    if not lenient:
                        raise InputError(f"{why}: not read")
                    return LedgerLines(out, None, tuple(skipped), f"{why}: read up to line {i - 1}")
                try:
                    rec = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as e:
                    raise InputError(f"{p}:{i}: not UTF-8 text (byte {e.start})") from None
                except ValueError as e:
                    if not f.read(1):  # nothing after it, blank lines included: torn
                        return LedgerLines(out, i, tuple(skipped))
                    raise InputError(f"{p}:{i}: not a JSON object: {e}") from None
                except RecursionError:
                    raise InputError(f"{p}:{i}: not a JSON object clew reads: nested too "
                                     "deeply") from None  # fmt: skip
                if not isinstance(rec, dict):
                    raise InputError(f"{p}:{i}: not a JSON object")
                t = rec.get("time")
                # JSON reads 1e400 as inf; fault windows take int(time), the report an
                # int64. The comparison is also false for inf and nan.
                if isinstance(t, int | float) and not abs(t) < 2**63:
                    raise InputError(f"{p}:{i}: `time` must be nanoseconds since the run's "
                                     f"origin, got {t!r}")  # fmt: skip
                out.append((i, rec))
    except FileNotFoundError:
        return LedgerLines([])
    except OSError as e:
        raise InputError(f"{p}: cannot read it: {e.strerror}") from None
    return LedgerLines(out, None, tuple(skipped))


def _pass_line(f: BinaryIO) -> None:
    """Read on to the end of the current line, a chunk at a time."""
    while (chunk := f.readline(_SKIP_CHUNK)) and not chunk.endswith(b"\n"):
        pass


def count_records(path: str | Path) -> int:
    """The records (non-blank lines) of a ``faults.jsonl``, counted without parsing them,
    a chunk of a line at a time (0 if absent)."""
    count, blank = 0, True  # blank: the line so far is
    try:
        with Path(path).open("rb") as f:
            while chunk := f.readline(_SKIP_CHUNK):
                blank = blank and not chunk.strip()
                if chunk.endswith(b"\n"):
                    count, blank = count + (not blank), True
    except OSError:
        return 0
    return count + (not blank)
