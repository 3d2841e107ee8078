"""The unique-ids checker: did the generator ever hand out the same id twice?

A *unique-ids* workload invokes ``{"f": "generate"}``; each ``ok`` completion's value is
an id. Jepsen's ``unique-ids`` checker: an id acknowledged more than once is a duplicate.
Result: ``attempted_count``, ``acknowledged_count``, ``duplicated_count``, ``duplicated``
(``[id, times]``, the most frequent first, at most 48 as in Jepsen) and ``range`` (lowest
and highest id). Valid iff there is no duplicate (so, as in Jepsen, also when no
id was acknowledged; ``acknowledged_count`` says so).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from checkers.collections._budget import Budget, Meter
from checkers.collections._ops import client_ops, hashable, sort_key
from checkers.result import Result
from harness.history import INVOKE, OK, History

__all__ = ["MAX_DUPLICATES_LISTED", "check"]

#: Duplicates listed in the result (Jepsen's figure); the count is exact.
MAX_DUPLICATES_LISTED = 48


def check(history: History, *, budget: Budget | None = None) -> Result:
    """Check a unique-ids history (see the module docstring); a pure function.
    ``budget``: the time and memory it may take (raises
    :class:`~checkers.txn.budget.OutOfBudget` when spent; see
    :func:`checkers.collections.check_within`).
    """
    t0 = time.perf_counter()
    attempted = 0
    acks: Counter[Any] = Counter()
    meter = Meter(budget, "unique-ids")
    for pos in client_ops(history, "generate"):
        meter.add()
        t = history.type[pos]
        if t == INVOKE:
            attempted += 1
        elif t == OK:
            acks[hashable(history.value_of(pos))] += 1
    meter.check()
    dups = sorted(((x, n) for x, n in acks.items() if n > 1), key=lambda p: (-p[1], sort_key(p[0])))
    ids = sorted(acks, key=sort_key)
    details: dict[str, Any] = {
        "attempted_count": attempted,
        "acknowledged_count": sum(acks.values()),
        "duplicated_count": len(dups),
        "duplicated": [[x, n] for x, n in dups[:MAX_DUPLICATES_LISTED]],
        "range": [ids[0], ids[-1]] if ids else [None, None],
    }
    cause = None
    if dups:
        x, n = dups[0]
        cause = f"{len(dups)} id(s) handed out more than once; e.g. {x!r} {n} times"
    return Result(
        valid=not dups,
        checker="unique-ids",
        cause=cause,
        seconds=time.perf_counter() - t0,
        details=details,
    )
