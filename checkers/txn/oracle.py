"""A brute-force reference for the transactional checker, and random tiny histories for it.

:func:`serializable` decides serializability (or strict serializability) of a tiny
list-append or rw-register history by trying serial orders: every ``ok`` transaction
happens, every ``fail`` one does not, each ``info`` one (or an invocation never completed)
may or may not, at any point after its invocation. Within the chosen order each
transaction sees the state left by those before it and its own earlier writes; the reads of
``ok`` transactions must return exactly that. In strict mode a transaction that completed
``ok`` before another was invoked comes first. It shares no code with the checker (it
reads plain op dicts) and is exponential: keep histories to a handful of transactions.

:func:`random_history` makes the small seeded histories of the differential test and
``bench/txn_oracle.py``: a real serial execution at random points of random overlapping
intervals, then perturbed (reads replaced by other plausible values, outcomes changed).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from itertools import permutations
from typing import Any

__all__ = ["random_history", "serializable"]

MODELS = ("list-append", "rw-register")


def _transactions(ops: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pair invocations with completions by process: ``{status, mops, inv, cmp}``."""
    open_: dict[Any, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for pos, op in enumerate(ops):
        p = op["process"]
        if op["type"] == "invoke":
            t = {"status": "info", "mops": op["value"], "inv": pos, "cmp": None}
            open_[p] = t
            out.append(t)
        else:
            t = open_.pop(p)
            t["status"] = op["type"]
            t["cmp"] = pos
            if op["type"] == "ok":
                t["mops"] = op["value"]
    return out


def _run(txn: dict[str, Any], state: dict[Any, Any], model: str, check_reads: bool) -> bool:
    """Apply ``txn`` to ``state`` in place; False if an ok read disagrees with it."""
    for f, k, v in txn["mops"]:
        if f == "r":
            if not check_reads:
                continue
            cur = state.get(k)
            if model == "list-append":
                if list(cur or ()) != list(v or ()):
                    return False
            elif cur != v:
                return False
        elif model == "list-append":
            state[k] = (*state.get(k, ()), v)
        else:
            state[k] = v
    return True


def serializable(
    ops: Sequence[Mapping[str, Any]],
    model: str,
    *,
    strict: bool = False,
    initial_state: Mapping[Any, Any] | None = None,
) -> bool:
    """Whether some serial order explains ``ops`` (see the module docstring)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}")
    txns = [t for t in _transactions(ops) if t["status"] != "fail"]
    sure = [t for t in txns if t["status"] == "ok"]
    maybe = [t for t in txns if t["status"] != "ok"]
    for mask in range(1 << len(maybe)):
        chosen = sure + [t for i, t in enumerate(maybe) if mask >> i & 1]
        for order in permutations(chosen):
            if strict and not _realtime_ok(order):
                continue
            state = dict(initial_state or {})
            if all(_run(t, state, model, t["status"] == "ok") for t in order):
                return True
    return False


def _realtime_ok(order: Sequence[dict[str, Any]]) -> bool:
    """No transaction placed before one that completed before it was invoked."""
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            if b["cmp"] is not None and b["status"] == "ok" and b["cmp"] < a["inv"]:
                return False
    return True


def random_history(rng: random.Random, model: str, *, max_txns: int = 5,
                   keys: Sequence[str] = ("x", "y")) -> list[dict[str, Any]]:  # fmt: skip
    """A small history of ``model`` transactions as op dicts (see the module docstring)."""
    n = rng.randint(1, max_txns)
    bodies: list[list[list[Any]]] = []
    counter = {k: 0 for k in keys}
    for _ in range(n):
        mops: list[list[Any]] = []
        for _ in range(rng.randint(1, 3)):
            k = rng.choice(keys)
            if rng.random() < 0.5:
                mops.append(["r", k, None])
            else:
                counter[k] += 1
                mops.append(["append" if model == "list-append" else "w", k, counter[k]])
        bodies.append(mops)
    # each transaction: an interval [invoke, complete] and a point inside where it runs
    events: list[tuple[float, int, str]] = []
    for t in range(n):
        a, b = sorted((rng.random(), rng.random()))
        events += [(a, t, "invoke"), (b, t, "complete"), (rng.uniform(a, b), t, "apply")]
    events.sort()
    state: dict[str, Any] = {}
    done: dict[int, list[list[Any]]] = {}
    status = [rng.choices(("ok", "info", "fail"), (0.8, 0.1, 0.1))[0] for _ in range(n)]
    for _, t, what in events:
        if what != "apply" or status[t] == "fail":
            continue
        out: list[list[Any]] = []
        for f, k, v in bodies[t]:
            if f == "r":
                cur = state.get(k)
                out.append(["r", k, list(cur) if model == "list-append" and cur else cur])
            elif model == "list-append":
                state[k] = [*state.get(k, []), v]
                out.append([f, k, v])
            else:
                state[k] = v
                out.append([f, k, v])
        done[t] = out
    if rng.random() < 0.7:  # perturb: another plausible read value, or another outcome
        _perturb(rng, model, done, status, counter)
    ops: list[dict[str, Any]] = []
    for _, t, what in events:
        if what == "apply":
            continue
        if what == "invoke":
            inv = [[f, k, None if f == "r" else v] for f, k, v in bodies[t]]
            ops.append({"process": t, "type": "invoke", "f": "txn", "value": inv})
        elif status[t] != "info" or rng.random() < 0.5:  # an info may never complete
            value = done[t] if status[t] == "ok" else [[f, k, None if f == "r" else v]
                                                       for f, k, v in bodies[t]]  # fmt: skip
            ops.append({"process": t, "type": status[t], "f": "txn", "value": value})
    return ops


def _perturb(rng: random.Random, model: str, done: dict[int, list[list[Any]]],
             status: list[str], counter: dict[str, int]) -> None:  # fmt: skip
    """Change one read or one outcome of a history in the making."""
    reads = [(t, i) for t, mops in done.items() for i, m in enumerate(mops) if m[0] == "r"]
    if reads and rng.random() < 0.7:
        t, i = rng.choice(reads)
        k = done[t][i][1]
        vals = list(range(1, counter[k] + 1))
        if model == "rw-register":
            done[t][i][2] = rng.choice([None, *vals])
        else:
            cur = list(done[t][i][2] or [])
            choice = rng.random()
            if choice < 0.3 and cur:
                cur = cur[:-1]  # a stale prefix
            elif choice < 0.6 and len(cur) > 1:
                a, b = rng.sample(range(len(cur)), 2)  # two elements swapped
                cur[a], cur[b] = cur[b], cur[a]
            else:
                extra = [v for v in vals if v not in cur]
                if extra:
                    cur.append(rng.choice(extra))  # an element read too early, or never written
            done[t][i][2] = cur or None
    else:
        t = rng.randrange(len(status))
        old = status[t]
        status[t] = rng.choice([s for s in ("ok", "info", "fail") if s != old])
        if status[t] == "ok" and t not in done:  # it was failed: it runs at its own point
            status[t] = old
