"""Speed of the collection checkers (checkers/collections) on synthetic histories.

Prints, per checker, the history size and the best of three check times. Histories are
made here (no cluster): set-full with N adds and a read every few ops that sees every
element added so far (concurrency 10), bank with reads and transfers, counter, queue,
unique-ids, lock (the linearizable mutex model off: its cost is the linear checker's).

    .venv/bin/python bench/collections_checkers.py [--ops 200000]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from checkers.collections import CHECKERS
from harness.history import History, HistoryBuilder


def _builder_history(pairs: list[tuple[int, str, Any, Any]]) -> History:
    """Ops as (process, f, invoke value, completion value), each completing ok before the
    next starts on its process; processes interleave round-robin in blocks of 10."""
    b = HistoryBuilder()
    t = 0
    for k in range(0, len(pairs), 10):
        block = pairs[k : k + 10]
        for p, f, v, _ in block:
            b.add(type="invoke", process=p, f=f, value=v, time=t)
            t += 1000
        for p, f, _, out in block:
            b.add(type="ok", process=p, f=f, value=out, time=t)
            t += 1000
    return b.build()


def set_full(n: int) -> History:
    pairs: list[tuple[int, str, Any, Any]] = []
    added = 0
    for i in range(n):
        if i % 20 == 19:
            pairs.append((i % 10, "read", None, list(range(added))))
        else:
            pairs.append((i % 10, "add", added, added))
            added += 1
    return _builder_history(pairs)


def bank(n: int) -> History:
    rng = random.Random(1)
    bal = [10] * 10
    pairs: list[tuple[int, str, Any, Any]] = []
    for i in range(n):
        if i % 2:
            pairs.append((i % 10, "read", None, {str(a): b for a, b in enumerate(bal)}))
        else:
            a, b = rng.sample(range(10), 2)
            v = {"from": a, "to": b, "amount": 1}
            pairs.append((i % 10, "transfer", v, v))
    return _builder_history(pairs)


def counter(n: int) -> History:
    pairs: list[tuple[int, str, Any, Any]] = []
    total = 0
    for i in range(n):
        if i % 2:
            pairs.append((i % 10, "read", None, total))
        else:
            pairs.append((i % 10, "add", 1, 1))
            total += 1
    return _builder_history(pairs)


def queue(n: int) -> History:
    pairs: list[tuple[int, str, Any, Any]] = [(i % 10, "enqueue", i, i) for i in range(n // 2)]
    pairs += [(i % 10, "dequeue", None, i) for i in range(n // 2)]
    return _builder_history(pairs)


def unique_ids(n: int) -> History:
    return _builder_history([(i % 10, "generate", None, i) for i in range(n)])


def lock(n: int) -> History:
    pairs: list[tuple[int, str, Any, Any]] = []
    for i in range(n // 2):
        pairs.append((i % 10, "acquire", None, None))
        pairs.append((i % 10, "release", None, None))
    b = HistoryBuilder()
    for t, (p, f, _, _) in enumerate(pairs):
        b.add(type="invoke", process=p, f=f, time=2 * t)
        b.add(type="ok", process=p, f=f, time=2 * t + 1)
    return b.build()


CASES: dict[str, tuple[Callable[[int], History], dict[str, Any]]] = {
    "set-full": (set_full, {}),
    "bank": (bank, {}),
    "counter": (counter, {}),
    "queue": (queue, {"linear_max_ops": 0}),
    "unique-ids": (unique_ids, {}),
    "lock": (lock, {"linear_max_ops": 0}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=200_000, help="logical ops per history")
    ap.add_argument(
        "--set-full-ops",
        type=int,
        default=20_000,
        help="logical ops of the set-full history (its reads grow with it)",
    )
    args = ap.parse_args()
    for name, (make, options) in CASES.items():
        n = args.set_full_ops if name == "set-full" else args.ops
        h = make(n)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            r = CHECKERS[name](h, **options)
            best = min(best, time.perf_counter() - t0)
        print(f"{name:11s} {len(h):>9,d} history lines  {best:7.3f} s  valid={r.valid}")


if __name__ == "__main__":
    main()
