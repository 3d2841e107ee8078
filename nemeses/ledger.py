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
from typing import Any

from harness.progress import note_fault

__all__ = ["FaultLedger", "count_records", "read_ledger", "read_ledger_lines", "targets_of"]


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


def read_ledger(path: str | Path, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The records of a ``faults.jsonl`` (``[]`` if absent), the first ``limit`` of them
    if given; a torn last line (a crash mid-write) is skipped, any other malformed line
    (not UTF-8, not a JSON object, or a numeric ``time`` that is not a finite 64-bit
    count of nanoseconds) raises :class:`~harness.errors.InputError` naming the line."""
    return [rec for _, rec in read_ledger_lines(path, limit=limit)[0]]


def read_ledger_lines(
    path: str | Path, *, limit: int | None = None
) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
    """As :func:`read_ledger`, each record with its line number (1-based), and the number
    of the torn last line that was skipped (``None``: none was). The file is read a line
    at a time, and no further than its ``limit``-th record."""
    from harness.errors import InputError

    p = Path(path)
    out: list[tuple[int, dict[str, Any]]] = []
    try:
        with p.open("rb") as f:
            for i, raw in enumerate(f, 1):
                if limit is not None and len(out) >= limit:
                    break
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as e:
                    raise InputError(f"{p}:{i}: not UTF-8 text (byte {e.start})") from None
                except ValueError as e:
                    if not any(f):  # nothing after it, blank lines included: torn
                        return out, i
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
        return [], None
    except OSError as e:
        raise InputError(f"{p}: cannot read it: {e.strerror}") from None
    return out, None


def count_records(path: str | Path) -> int:
    """The records (non-blank lines) of a ``faults.jsonl``, counted without parsing them
    (0 if absent)."""
    try:
        with Path(path).open("rb") as f:
            return sum(1 for raw in f if raw.strip())
    except OSError:
        return 0
