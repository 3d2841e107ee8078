"""The lock checker: did two clients ever hold the lock at the same time?

A *lock* workload has each client ``{"f": "acquire"}`` a lock, hold it a while, and
``{"f": "release"}`` it (ops may carry a ``key`` to name one of several locks; each key
is checked on its own). What a client may rely on once ``acquire`` completed ``ok`` is
that it holds the lock until it starts to release it. So a client's **hold** is the
stretch of history from its ``ok`` acquire's completion to the invocation of its next
release (whatever that release's outcome), or to the end of the history when it never
released (it crashed or the test ended).

**overlapping holds** (mutual exclusion violated): two holds by different processes that
overlap in real time — one began before the other ended, in history order. Every such
overlap is a definite violation: both clients were told they held the lock at once. This
is how a lease that expires under a paused holder (Jepsen's etcd lock finding) shows.

**linearizable mutex**: when the history has at most ``linear_max_ops`` client ops, it is
also checked with :mod:`checkers.linear`'s ``mutex`` model (which also catches, e.g., a
release that succeeds without the lock being held). ``linear_max_ops=0`` turns that off.

Result details: ``holds`` (``[process, start_index, end_index or None, start_time,
end_time, key]``, at most :data:`MAX_HOLDS_LISTED`, for the timeline), ``hold_count``,
``overlap_count``, ``overlaps`` (pairs of holds), ``linearizable``. Valid iff no holds
overlap (and the mutex model, when run, agrees); ``"unknown"`` when no acquire succeeded.
"""

from __future__ import annotations

import time
from typing import Any

from checkers.collections._budget import Budget, Meter, linear_limits
from checkers.collections._ops import client_ops
from checkers.result import UNKNOWN, Result, merge_validity
from harness.history import INVOKE, OK, History

__all__ = ["DEFAULT_LINEAR_MAX_OPS", "MAX_HOLDS_LISTED", "check", "holds"]

#: Largest history (client ops) also checked with the linearizable mutex model.
DEFAULT_LINEAR_MAX_OPS = 2000
#: Holds listed in the result (the timeline); counts are exact.
MAX_HOLDS_LISTED = 5000
_MAX_OVERLAPS_LISTED = 50


def holds(history: History, meter: Meter | None = None) -> list[tuple[int, int, Any, Any]]:
    """Every hold as ``(start, end, process, key)``: positions of the ok acquire's
    completion and of the invocation of the same process's next release of that key (a
    release without a key ends every hold of its process; ``len(history)`` when there is
    none), sorted by start. A second ok acquire of a lock the process holds does not
    restart its hold. ``meter`` counts the work against a budget."""
    acquire = history.f_code("acquire")
    # Keys by their codes in the history (-1: none), so that any key a history holds (a
    # list, a map) names a lock; decoded for the result.
    open_holds: dict[int, dict[int, int]] = {}  # process -> key code -> start
    coded: list[tuple[int, int, int, int]] = []
    for pos in client_ops(history, "acquire", "release"):
        if meter is not None:
            meter.add()
        p = int(history.process[pos])
        t = history.type[pos]
        code = max(int(history.key[pos]), -1)
        if history.f[pos] == acquire:
            if t == OK:
                open_holds.setdefault(p, {}).setdefault(code, pos)
        elif t == INVOKE and p in open_holds:
            held = open_holds[p]
            # a release of a key ends that hold (and one of no key); one of no key, all
            ended = list(held) if code < 0 else [k for k in (code, -1) if k in held]
            coded.extend((held.pop(k), pos, p, k) for k in ended)
            if not held:
                del open_holds[p]
    coded.extend((start, len(history), p, code) for p, held in open_holds.items()
                 for code, start in held.items())  # fmt: skip
    coded.sort(key=lambda h: h[0])
    return [(start, end, p, None if k < 0 else history.keys[k]) for start, end, p, k in coded]


def check(
    history: History,
    *,
    linear_max_ops: int = DEFAULT_LINEAR_MAX_OPS,
    linear_time_limit: float = 10.0,
    budget: Budget | None = None,
) -> Result:
    """Check a lock history (see the module docstring); a pure function of ``history``.
    ``budget``: the time and memory it may take (raises
    :class:`~checkers.txn.budget.OutOfBudget` when spent; see
    :func:`checkers.collections.check_within`).
    """
    t0 = time.perf_counter()
    meter = Meter(budget, "lock")
    hs = holds(history, meter)
    n = len(history)

    def describe(h: tuple[int, int, Any, Any]) -> list[Any]:
        start, end, _p, key = h
        return [
            history.process_label(start),
            int(history.index[start]),
            int(history.index[end]) if end < n else None,
            int(history.time[start]),
            int(history.time[end]) if end < n else int(history.time[-1]),
            key,
        ]

    overlaps: list[list[list[Any]]] = []
    overlap_count = 0
    by_key: dict[Any, list[tuple[int, int, Any, Any]]] = {}
    for h in hs:
        by_key.setdefault(repr(h[3]), []).append(h)
    for group in by_key.values():
        latest: tuple[int, int, Any, Any] | None = None  # the hold that ends last so far
        for h in group:
            meter.add()
            if latest is not None and h[0] < latest[1] and h[2] != latest[2]:
                overlap_count += 1
                if len(overlaps) < _MAX_OVERLAPS_LISTED:
                    overlaps.append([describe(latest), describe(h)])
            if latest is None or h[1] > latest[1]:
                latest = h
    causes = []
    if overlap_count:
        (pa, ia, *_), (pb, ib, *_) = overlaps[0]
        causes.append(
            f"{overlap_count} overlapping hold(s): e.g. process {pa} (acquired at op {ia}) "
            f"and process {pb} (acquired at op {ib}) held the lock at once"
        )
    valid: Any = not overlap_count
    n_ops = int((history.process >= 0).sum())
    if linear_max_ops <= 0 or n_ops > linear_max_ops:
        linear: dict[str, Any] = {
            "skipped": f"{n_ops} client ops > linear_max_ops={linear_max_ops}"
        }
    else:
        from checkers.linear import check as linear_check

        seconds, max_bytes = linear_limits(budget, linear_time_limit)
        lin = linear_check(history, "mutex", time_limit=seconds, max_bytes=max_bytes)
        linear = lin.to_json()
        valid = merge_validity([valid, lin.valid])
        if lin.valid is not True:
            causes.append(f"linearizable mutex: {lin.cause}")
    if valid is True and not hs:
        valid = UNKNOWN
        causes.append("no acquire succeeded")
    return Result(
        valid=valid,
        checker="lock",
        cause="; ".join(causes) or None,
        seconds=time.perf_counter() - t0,
        details={
            "hold_count": len(hs),
            "overlap_count": overlap_count,
            "overlaps": overlaps,
            "holds": [describe(h) for h in hs[:MAX_HOLDS_LISTED]],
            "linearizable": linear,
        },
    )
