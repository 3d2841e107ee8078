"""A plain-Python linearizability checker, for cross-checking the compiled one.

Deliberately simple and independent of the kernel's integer encoding: a depth-first search
over "which ops are linearized, in which state", memoising dead ends, using only the
models' reference steps. Exponential and slow; for small histories (tests) only.

Semantics: ``ok`` calls are required within their interval; ``info`` and pending calls are
optional with unknown output and may take effect any time after their invocation; ``fail``
calls are ignored unless the model keeps failures (``etcd``), where they are required
observations.
"""

from __future__ import annotations

import sys
from typing import Any

from checkers.linear.calls import FAIL, INFO, extract_calls
from checkers.linear.models import Model, freeze, get_model
from checkers.result import UNKNOWN, Validity
from harness.history import History

__all__ = ["check_reference"]

_INF = float("inf")


def check_reference(
    history: History, model: str | Model, *, partition: bool = True, max_configs: int = 200_000
) -> Validity:
    """True / False, or "unknown" after ``max_configs`` explored configurations."""
    m = model if isinstance(model, Model) else get_model(model)
    calls = extract_calls(history)
    ops = []
    for i in range(len(calls)):
        status = int(calls.status[i])
        if status == FAIL and not m.keeps_failures:
            continue
        optional = status == INFO
        f, st, vin, vout = calls.ref_args(i)
        ret = _INF if optional else int(calls.ret[i])
        key = calls.key_value(i)
        ops.append((int(calls.pos[i]), ret, optional, f, st, vin, None if optional else vout, key))
    if partition:
        groups: dict[Any, list[Any]] = {}
        for op in ops:
            groups.setdefault(freeze(op[7]), []).append(op)
        parts = list(groups.values())
    else:
        parts = [ops]
    budget = [max_configs]
    verdict: Validity = True
    for part in parts:
        v = _check_part(part, m, budget)
        if v is False:
            return False
        if v == UNKNOWN:
            verdict = UNKNOWN
    return verdict


class _OutOfBudget(Exception):
    pass


def _check_part(ops: list[Any], m: Model, budget: list[int]) -> Validity:
    keys = sorted({freeze(op[7]) for op in ops}, key=repr)
    slot = {k: j for j, k in enumerate(keys)}
    init = tuple(m.ref_init() for _ in keys)
    n = len(ops)
    required = frozenset(i for i in range(n) if not ops[i][2])
    dead: set[tuple[frozenset[int], Any]] = set()

    def solve(done: frozenset[int], state: tuple[Any, ...]) -> bool:
        if required <= done:
            return True
        memo = (done, tuple(freeze(s) if not isinstance(s, str) else s for s in state))
        if memo in dead:
            return False
        budget[0] -= 1
        if budget[0] < 0:
            raise _OutOfBudget
        deadline = min(ops[i][1] for i in required - done)
        for i in range(n):
            if i in done or ops[i][0] >= deadline:
                continue
            _, _, _, f, st, vin, vout, key = ops[i]
            j = slot[freeze(key)]
            legal, nxt = m.ref_step(state[j], f, st, vin, vout)
            if legal and solve(done | {i}, (*state[:j], nxt, *state[j + 1 :])):
                return True
        dead.add(memo)
        return False

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * n + 100))
    try:
        return solve(frozenset(), init)
    except _OutOfBudget:
        return UNKNOWN
    finally:
        sys.setrecursionlimit(limit)
