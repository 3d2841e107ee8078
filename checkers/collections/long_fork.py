"""The long-fork checker: do reads of a group of keys disagree on the order of writes?

Jepsen's long-fork test (``jepsen.tests.long-fork``), the anomaly that parallel snapshot
isolation allows and snapshot isolation forbids. Write transactions insert one key once
(``{"f": "write", "value": [["w", k, 1]]}``; ``f`` may also be ``txn``); read transactions
read a whole *group* of keys (``{"f": "read", "value": [["r", k1, None], ["r", k2,
None]]}``, completed with the values, ``None`` for absent). Every key is written once, so
the states a read can see only grow: any two reads of one group must be ordered — one
sees a subset of what the other sees. Two reads that each see a write the other misses
(``T3: x=nil y=1``, ``T4: x=1 y=nil``) saw the writes in different orders: a long fork.

The check, per group (the set of keys a read covers): order the reads by how many keys
they see; the order is total iff every read's keys are a subset of the next one's; each
adjacent pair that is not is a fork. O(r log r) per group (Jepsen compares all pairs).

``group_size``, when given, is the number of keys every read must cover (Jepsen requires
it). A history that breaks the test's rules — a key written twice, two reads that see
different values of one key, a read whose group overlaps another's — gives ``"unknown"``
with the reason, like Jepsen's ``:illegal-history``. Result: ``forks`` (pairs of read ops,
at most :data:`MAX_FORKS_LISTED`), ``fork_count``, ``read_count``, ``early_read_count``
(reads that saw nothing), ``late_read_count`` (reads that saw everything), ``group_count``.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from checkers.collections._budget import Budget, Meter
from checkers.collections._ops import client_ops, hashable, op_summary
from checkers.result import UNKNOWN, Result
from harness.history import INVOKE, OK, History

__all__ = ["MAX_FORKS_LISTED", "check"]

#: Fork pairs listed in the result; the count is exact.
MAX_FORKS_LISTED = 20

_READ = {"r", "read"}
_WRITE = {"w", "write", "append"}


def _mops(value: Any) -> list[tuple[str, Any, Any]] | None:
    """The micro-ops of a transaction value, or None if it is not one."""
    if not isinstance(value, list | tuple):
        return None
    out = []
    for m in value:
        if not isinstance(m, list | tuple) or len(m) != 3 or not isinstance(m[0], str):
            return None
        out.append((m[0], hashable(m[1]), m[2]))
    return out


def _unknown(cause: str, t0: float, details: dict[str, Any]) -> Result:
    return Result(
        valid=UNKNOWN,
        checker="long-fork",
        cause=cause,
        seconds=time.perf_counter() - t0,
        details=details,
    )


def check(
    history: History, *, group_size: int | None = None, budget: Budget | None = None
) -> Result:
    """Check a long-fork history (see the module docstring); a pure function.
    ``budget``: the time and memory it may take (raises
    :class:`~checkers.txn.budget.OutOfBudget` when spent; see
    :func:`checkers.collections.check_within`).
    """
    t0 = time.perf_counter()
    written: set[Any] = set()
    groups: dict[frozenset[Any], list[tuple[int, dict[Any, Any]]]] = {}
    key_group: dict[Any, frozenset[Any]] = {}
    # The first value read of each key, and the read: every read of a key must see it.
    value_seen: dict[Any, tuple[Any, int]] = {}
    read_count = early = late = 0
    details: dict[str, Any] = {}
    meter = Meter(budget, "long-fork")
    for pos in client_ops(history, "read", "write", "txn"):
        meter.add()
        t = history.type[pos]
        if t not in (INVOKE, OK):
            continue
        mops = _mops(history.value_of(pos))
        if not mops:
            continue
        meter.add(len(mops))
        kinds = {m[0] for m in mops}
        if t == INVOKE and kinds <= _WRITE:
            if len(mops) != 1:
                return _unknown(
                    f"op {int(history.index[pos])} writes {len(mops)} keys; a "
                    "long-fork write transaction writes one",
                    t0,
                    details,
                )
            if mops[0][1] in written:
                return _unknown(
                    f"key {mops[0][1]!r} is written more than once (op "
                    f"{int(history.index[pos])}); long-fork needs one write per "
                    "key",
                    t0,
                    details,
                )
            written.add(mops[0][1])
            continue
        if t != OK or not kinds <= _READ:
            continue
        seen = {k: v for _, k, v in mops}
        keys = frozenset(seen)
        if group_size is not None and len(keys) != group_size:
            return _unknown(
                f"read op {int(history.index[pos])} covers {len(keys)} keys; every "
                f"read should cover the group of {group_size}",
                t0,
                details,
            )
        # Groups are disjoint: if one key has a group, the read's keys must be all of it.
        # (One comparison per read: a frozenset's != costs as many steps as it has keys.)
        owner = next((key_group[k] for k in keys if k in key_group), None)
        if owner is None:
            key_group.update(dict.fromkeys(keys, keys))
        elif owner is not keys and owner != keys:
            return _unknown(
                f"read op {int(history.index[pos])} covers keys "
                f"{sorted(keys, key=repr)} that overlap another read's group "
                f"{sorted(owner, key=repr)}",
                t0,
                details,
            )
        for k, v in seen.items():
            if v is None:
                continue
            first = value_seen.setdefault(k, (v, pos))
            if first[0] != v:
                return _unknown(
                    f"reads {int(history.index[first[1]])} and {int(history.index[pos])} "
                    f"see different values of key {k!r} ({first[0]!r}, {v!r}); long-fork "
                    "needs one write per key",
                    t0,
                    details,
                )
        read_count += 1
        present = sum(v is not None for v in seen.values())
        early += present == 0
        late += present == len(seen)
        groups.setdefault(keys, []).append((pos, seen))

    forks: list[list[dict[str, Any]]] = []
    fork_count = 0
    for reads in groups.values():
        meter.add(len(reads))
        reads.sort(key=lambda r: sum(v is not None for v in r[1].values()))
        for (pa, a), (pb, b) in itertools.pairwise(reads):
            meter.add(len(a))
            if any(va is not None and b[k] is None for k, va in a.items()):
                fork_count += 1
                if len(forks) < MAX_FORKS_LISTED:
                    forks.append([op_summary(history, pa), op_summary(history, pb)])
    details = {
        "read_count": read_count,
        "early_read_count": early,
        "late_read_count": late,
        "group_count": len(groups),
        "fork_count": fork_count,
        "forks": forks,
    }
    if fork_count:
        a, b = forks[0]
        return Result(
            valid=False,
            checker="long-fork",
            seconds=time.perf_counter() - t0,
            cause=f"{fork_count} long fork(s): e.g. reads {a['index']} and "
            f"{b['index']} each see a write the other does not",
            details=details,
        )
    if read_count == 0:
        return _unknown("no read transaction completed", t0, details)
    return Result(
        valid=True, checker="long-fork", seconds=time.perf_counter() - t0, details=details
    )
