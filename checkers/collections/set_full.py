"""The set-full checker: when did each added element become visible, and did it stay?

A *set-full* workload adds unique elements (``{"f": "add", "value": x}``) while other
clients keep reading the whole set (``{"f": "read"}`` completing with a list). Jepsen's
``set-full`` semantics, per element (positions are in the history's real-time order):

* it is **known** once its add completed ``ok`` or a read that contains it completed,
  whichever comes first;
* **last present** / **last absent**: the latest-invoked ``ok`` read that contains / lacks
  it, among reads completing after its add was invoked;
* **stable** if some read saw it and no read invoked after that one lacked it
  (``last_absent < last_present``): the element is there for good;
* **lost** if it was known, and a read invoked after the last read that saw it, and after
  it was known, lacks it. (A read concurrent with the add that lacks it does not count.)
* **never-read** otherwise (no read began after it was known, or it was never known).
* **stale**: stable, but only some time after it was known: its *stable latency* — from
  known to just after the last read that lacked it, in ms — is positive. It shows how long
  after the add the element became visible. Invalid only with ``linearizable=True``.

Two more anomalies, both invalid: **duplicated** — an element that appears more than once
in one read (Jepsen means to report this, but its test can never fire: it keeps counts
``< 1``; here it is multiplicity ``> 1``); and **unexpected** — an element read that no
add ever attempted (Jepsen's set-full ignores these).

Valid iff nothing is lost, duplicated or unexpected (and, with ``linearizable``, nothing is
stale); ``"unknown"`` when no element is stable (nothing was ever confirmed).
``elements`` in the result is the per-element table for the report (lost, duplicated,
stale and never-read elements first; at most :data:`MAX_ELEMENT_ROWS`).

Cost: each ``ok`` read costs its own size plus the number of tracked elements it lacks.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from checkers.collections._ops import client_ops, listed, sort_key
from checkers.result import UNKNOWN, Result
from harness.errors import HistoryError
from harness.history import FAIL, INFO, INVOKE, OK, History

__all__ = ["MAX_ELEMENT_ROWS", "QUANTILES", "check"]

#: Most rows of the per-element table kept in the result.
MAX_ELEMENT_ROWS = 2000
#: Quantiles of the latency distributions (Jepsen's points).
QUANTILES = (0.0, 0.5, 0.95, 0.99, 1.0)

_NS_PER_MS = 1_000_000


@dataclass(slots=True)
class _Element:
    add_invoke: int
    add_type: str = "info"
    known: int = -1  # position of the op that made it known
    last_present: int = -1  # invoke position of the latest read that had it
    last_absent: int = -1  # invoke position of the latest read that lacked it


def _hashable(x: Any) -> Any:
    if isinstance(x, list):
        return tuple(_hashable(v) for v in x)
    if isinstance(x, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in x.items()))
    return x


def _quantiles(xs: list[int]) -> dict[str, int] | None:
    if not xs:
        return None
    s = sorted(xs)
    return {str(q): s[min(len(s) - 1, int(len(s) * q))] for q in QUANTILES}


def check(history: History, *, linearizable: bool = False) -> Result:
    """Check a set-full history (see the module docstring); a pure function of ``history``.

    Raises :class:`HistoryError` naming the line for an ok read whose value is not a list.
    """
    t0 = time.perf_counter()
    elements: dict[Any, _Element] = {}
    attempted: set[Any] = set()
    dups: dict[Any, int] = {}
    unexpected: set[Any] = set()
    add_f = history.f_code("add")
    read_count = 0
    for pos in client_ops(history, "add", "read"):
        t = int(history.type[pos])
        if history.f[pos] == add_f:
            if t == INVOKE:
                v = _hashable(history.value_of(pos))
                attempted.add(v)
                if v not in elements:
                    elements[v] = _Element(add_invoke=pos)
            else:
                e = elements.get(_hashable(history.value_of(int(history.pair[pos]))))
                if e is not None:
                    e.add_type = {OK: "ok", FAIL: "fail", INFO: "info"}[t]
                    if t == OK and e.known < 0:
                        e.known = pos
            continue
        if t != OK:
            continue
        read_count += 1
        inv = int(history.pair[pos])
        raw = history.value_of(pos)
        if not isinstance(raw, list | tuple):
            raise HistoryError(
                f"a set-full read must complete with a list of elements, got {raw!r} "
                f"(op index {int(history.index[pos])})",
                path=history.path,
                line=int(history.line[pos]),
            )
        counts = Counter(_hashable(x) for x in raw)
        for x, n in counts.items():
            if n > 1 and n > dups.get(x, 0):
                dups[x] = n
            e = elements.get(x)
            if e is None:
                if x not in attempted:
                    unexpected.add(x)
                continue
            if e.known < 0:
                e.known = pos
            if inv > e.last_present:
                e.last_present = inv
        for x in elements.keys() - counts.keys():
            e = elements[x]
            if inv > e.last_absent:
                e.last_absent = inv
    # Elements read before any add was invoked may be added later: not unexpected then.
    unexpected -= attempted
    return _results(history, elements, dups, unexpected, read_count, linearizable, t0)


def _results(
    history: History,
    elements: dict[Any, _Element],
    dups: dict[Any, int],
    unexpected: set[Any],
    read_count: int,
    linearizable: bool,
    t0: float,
) -> Result:
    tm = history.time
    rows: list[dict[str, Any]] = []
    outcomes: dict[str, list[Any]] = {"stable": [], "lost": [], "never-read": []}
    stale: list[Any] = []
    stable_lat: list[int] = []
    lost_lat: list[int] = []
    for x, e in elements.items():
        stable = e.last_present >= 0 and e.last_absent < e.last_present
        lost = (
            e.known >= 0
            and e.last_absent >= 0
            and e.last_present < e.last_absent
            and e.known < e.last_absent
        )
        outcome = "stable" if stable else "lost" if lost else "never-read"
        outcomes[outcome].append(x)
        known_time = int(tm[e.known]) if e.known >= 0 else None
        latency = None
        if stable and known_time is not None:
            at = int(tm[e.last_absent]) + 1 if e.last_absent >= 0 else 0
            latency = max(0, at - known_time) // _NS_PER_MS
            stable_lat.append(latency)
            if latency > 0:
                stale.append(x)
        elif lost and known_time is not None:
            at = int(tm[e.last_present]) + 1 if e.last_present >= 0 else 0
            latency = max(0, at - known_time) // _NS_PER_MS
            lost_lat.append(latency)
        rows.append(
            {
                "element": x,
                "outcome": outcome,
                "stale": stable and bool(latency),
                "duplicated": dups.get(x, 0),
                "add": e.add_type,
                "add_index": int(history.index[e.add_invoke]),
                "known_index": int(history.index[e.known]) if e.known >= 0 else None,
                "known_time": known_time,
                "last_present_index": int(history.index[e.last_present])
                if e.last_present >= 0
                else None,
                "last_absent_index": int(history.index[e.last_absent])
                if e.last_absent >= 0
                else None,
                "latency_ms": latency,
            }
        )

    def badness(r: dict[str, Any]) -> tuple[int, Any]:
        if r["outcome"] == "lost" or r["duplicated"]:
            rank = 0
        else:
            rank = 1 if r["stale"] else 2 if r["outcome"] == "never-read" else 3
        return (rank, sort_key(r["element"]))

    rows.sort(key=badness)
    causes = []
    if outcomes["lost"]:
        causes.append(f"{len(outcomes['lost'])} element(s) lost")
    if dups:
        causes.append(f"{len(dups)} element(s) duplicated in a read")
    if unexpected:
        causes.append(f"{len(unexpected)} element(s) read that were never added")
    if linearizable and stale:
        causes.append(f"{len(stale)} stale element(s) (linearizable set expected)")
    valid: bool | str = not causes
    if valid and not outcomes["stable"]:
        valid = UNKNOWN
        causes.append("no element is stable: no add was ever confirmed by a later read")
    worst = sorted((r for r in rows if r["stale"]), key=lambda r: -r["latency_ms"])[:8]
    return Result(
        valid=valid,  # type: ignore[arg-type]
        checker="set-full",
        cause="; ".join(causes) or None,
        seconds=time.perf_counter() - t0,
        details={
            "attempt_count": len(elements),
            "read_count": read_count,
            "stable_count": len(outcomes["stable"]),
            "lost_count": len(outcomes["lost"]),
            "lost": listed(outcomes["lost"]),
            "never_read_count": len(outcomes["never-read"]),
            "never_read": listed(outcomes["never-read"]),
            "stale_count": len(stale),
            "stale": listed(stale),
            "worst_stale": worst,
            "duplicated_count": len(dups),
            "duplicated": [[x, dups[x]] for x in listed(dups)],
            "unexpected_count": len(unexpected),
            "unexpected": listed(unexpected),
            "stable_latencies": _quantiles(stable_lat),
            "lost_latencies": _quantiles(lost_lat),
            "elements": rows[:MAX_ELEMENT_ROWS],
        },
    )
