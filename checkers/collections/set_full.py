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
* **stale**: stable, but only some time after it was known: a read invoked after it was
  known lacked it. Its *stable latency* — from known to just after the last read that
  lacked it, in whole ms (so under 1 ms it shows 0; Jepsen counts only the ms, which
  missed such a read) — shows how long after the add the element became visible.
  Invalid only with ``linearizable=True``.

Two more anomalies, both invalid: **duplicated** — an element that appears more than once
in one read (Jepsen means to report this, but its test can never fire: it keeps counts
``< 1``; here it is multiplicity ``> 1``); and **unexpected** — an element read that no
add had attempted when the read completed (never, or only later; Jepsen's set-full
ignores these).

Valid iff nothing is lost, duplicated or unexpected (and, with ``linearizable``, nothing is
stale); ``"unknown"`` when no element is stable (nothing was ever confirmed).
``elements`` in the result is the per-element table for the report (lost, duplicated,
stale and never-read elements first; at most :data:`MAX_ELEMENT_ROWS`).

Cost: each ``ok`` read costs its own size plus the number of tracked elements it lacks,
counted against the ``budget`` (:mod:`checkers.collections._budget`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from checkers.collections._budget import Budget, Meter
from checkers.collections._ops import client_ops, hashable, listed, sort_key
from checkers.result import UNKNOWN, Result
from harness.errors import HistoryError
from harness.history import FAIL, INFO, INVOKE, OK, History

__all__ = ["MAX_ELEMENT_ROWS", "QUANTILES", "check"]

#: Most rows of the per-element table kept in the result.
MAX_ELEMENT_ROWS = 2000
#: Quantiles of the latency distributions (Jepsen's points).
QUANTILES = (0.0, 0.5, 0.95, 0.99, 1.0)

_NS_PER_MS = 1_000_000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(slots=True)
class _Element:
    add_invoke: int
    add_type: str = "info"
    known: int = -1  # position of the op that made it known
    last_present: int = -1  # invoke position of the latest read that had it
    last_absent: int = -1  # invoke position of the latest read that lacked it


def _quantiles(xs: list[int]) -> dict[str, int] | None:
    if not xs:
        return None
    s = sorted(xs)
    return {str(q): s[min(len(s) - 1, int(len(s) * q))] for q in QUANTILES}


class _Ids:
    """Element -> dense id (in order of first add invocation). Plain integer elements are
    looked up with numpy (a read of thousands costs a few array operations)."""

    def __init__(self, elements: list[Any]) -> None:
        self.elements = elements
        self.by_value = {x: i for i, x in enumerate(elements)}
        ints = all(type(x) is int and _INT64_MIN <= x <= _INT64_MAX for x in elements)
        self.ints = ints and bool(elements)
        if self.ints:
            values = np.array(elements, dtype=np.int64)
            self.order = np.argsort(values, kind="stable")
            self.sorted = values[self.order]

    def of(self, raw: list[Any] | tuple[Any, ...]) -> npt.NDArray[np.int64]:
        """Ids of the read's elements; -1 for an element never added."""
        arr = None
        if self.ints and all(type(x) is int and _INT64_MIN <= x <= _INT64_MAX for x in raw):
            arr = np.array(raw, dtype=np.int64)
        if arr is not None and arr.ndim == 1:
            at = np.searchsorted(self.sorted, arr)
            at[at >= len(self.sorted)] = 0
            found = self.sorted[at] == arr
            return np.where(found, self.order[at], -1).astype(np.int64)
        get = self.by_value.get
        return np.array([get(hashable(x), -1) for x in raw], dtype=np.int64)


def check(history: History, *, linearizable: bool = False, budget: Budget | None = None) -> Result:
    """Check a set-full history (see the module docstring); a pure function of ``history``.
    ``budget``: the time and memory it may take (raises
    :class:`~checkers.txn.budget.OutOfBudget` when spent; see
    :func:`checkers.collections.check_within`).

    Raises :class:`HistoryError` naming the line for an ok read whose value is not a list.
    """
    t0 = time.perf_counter()
    add_f = history.f_code("add")
    ops = list(client_ops(history, "add", "read"))
    # Pass 1: every element, numbered in order of its first add invocation.
    meter = Meter(budget, "set-full")
    first_add: dict[Any, int] = {}
    for pos in ops:
        meter.add()
        if history.f[pos] == add_f and history.type[pos] == INVOKE:
            first_add.setdefault(hashable(history.value_of(pos)), pos)
    ids = _Ids(list(first_add))
    n = len(ids.elements)
    add_invoke = np.array(list(first_add.values()), dtype=np.int64)
    add_type = ["info"] * n
    known = np.full(n, -1, dtype=np.int64)
    last_present = np.full(n, -1, dtype=np.int64)
    last_absent = np.full(n, -1, dtype=np.int64)
    dups: dict[Any, int] = {}
    unexpected: set[Any] = set()
    tracked = 0  # elements [0, tracked) have had their add invoked by now
    read_count = 0
    for pos in ops:
        meter.add()
        t = int(history.type[pos])
        if history.f[pos] == add_f:
            if t == INVOKE:
                while tracked < n and add_invoke[tracked] <= pos:
                    tracked += 1
                continue
            i = ids.by_value.get(hashable(history.value_of(int(history.pair[pos]))))
            if i is not None and add_invoke[i] == history.pair[pos]:
                add_type[i] = {OK: "ok", FAIL: "fail", INFO: "info"}[t]
                if t == OK and known[i] < 0:
                    known[i] = pos
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
        meter.add(len(raw) + tracked)
        got = ids.of(raw)
        early = (got < 0) | (got >= tracked)  # never added, or its add not yet invoked
        if early.any():
            unexpected.update(hashable(x) for x, e in zip(raw, early.tolist(), strict=True) if e)
        every = np.unique(got)
        if len(every) < len(got):  # a duplicate, or two values never added (rare): by value
            for x, c in Counter(hashable(x) for x in raw).items():
                if c > 1:  # (an added element under the value of its add)
                    x = ids.elements[ids.by_value[x]] if x in ids.by_value else x
                    dups[x] = max(dups.get(x, 0), c)
        uniq = every[(every >= 0) & (every < tracked)]
        fresh = uniq[known[uniq] < 0]
        known[fresh] = pos
        last_present[uniq] = np.maximum(last_present[uniq], inv)
        absent = np.ones(tracked, dtype=bool)
        absent[uniq] = False
        last_absent[:tracked][absent] = np.maximum(last_absent[:tracked][absent], inv)
    elements: dict[Any, _Element] = {}
    for i, x in enumerate(ids.elements):
        meter.add(4)
        elements[x] = _Element(
            add_invoke=int(add_invoke[i]),
            add_type=add_type[i],
            known=int(known[i]),
            last_present=int(last_present[i]),
            last_absent=int(last_absent[i]),
        )
    return _results(history, elements, dups, unexpected, read_count, linearizable, t0, meter)


def _results(
    history: History,
    elements: dict[Any, _Element],
    dups: dict[Any, int],
    unexpected: set[Any],
    read_count: int,
    linearizable: bool,
    t0: float,
    meter: Meter,
) -> Result:
    tm = history.time
    rows: list[dict[str, Any]] = []
    outcomes: dict[str, list[Any]] = {"stable": [], "lost": [], "never-read": []}
    stale: list[Any] = []
    stable_lat: list[int] = []
    lost_lat: list[int] = []
    for x, e in elements.items():
        meter.add(16)  # a row of the table
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
        late = stable and e.known >= 0 and e.last_absent > e.known  # (positions: real time)
        if stable and known_time is not None:
            at = int(tm[e.last_absent]) + 1 if e.last_absent >= 0 else 0
            latency = max(0, at - known_time) // _NS_PER_MS
            stable_lat.append(latency)
            if late:
                stale.append(x)
        elif lost and known_time is not None:
            at = int(tm[e.last_present]) + 1 if e.last_present >= 0 else 0
            latency = max(0, at - known_time) // _NS_PER_MS
            lost_lat.append(latency)
        rows.append(
            {
                "element": x,
                "outcome": outcome,
                "stale": late,
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
        causes.append(f"{len(unexpected)} element(s) read that were never added, or not yet")
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
