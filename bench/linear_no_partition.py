"""Several keys in one state (``clew check --no-partition``) on real-shaped histories.

Checks generated cas-register histories (:mod:`bench.lin_histories`: 5 clients, 2 or 4
keys, 2 % or 10 % of writes and cas ending ``info``, two seeds each, 1,000 and 5,000 ops)
with every key in one state, and prints, per history, the verdict, the checker's seconds
and its search steps; then the same shapes with 10 % or 30 % ``info`` and one stale read
injected (``-stale``: not linearizable), checked with the etcd model. Writes of unknown
outcome that no op reads are what the search prunes; a pruning that does not hold across
keys (before 2026-12-07) or none at all (4ccbf4d) shows here as steps and seconds, up to
the time limit.

    .venv/bin/python bench/linear_no_partition.py [--time-limit 60] [--ops 1000,5000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lin_histories import Shape, generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--ops", default="1000,5000", help="history sizes, comma-separated")
    a = ap.parse_args()

    from checkers.linear import check
    from harness.history import History

    check(History.from_ops(generate(Shape(ops=50, keys=2))), "cas-register", partition=False)
    print(f"{'history':<30} {'verdict':>8} {'seconds':>8} {'steps':>12}")
    worst = 0.0
    cases = [(stale, ops, keys, info, seed, model)
             for stale, infos, model in ((False, (0.02, 0.1), "cas-register"),
                                         (True, (0.1, 0.3), "etcd"))
             for ops in (int(x) for x in a.ops.split(",")) for keys in (2, 4)
             for info in infos for seed in (1, 2)]  # fmt: skip
    for stale, ops, keys, info, seed, model in cases:
        shape = Shape(ops=ops, clients=5, keys=keys, info=info, seed=seed,
                      stale=stale)  # fmt: skip
        h = History.from_ops(generate(shape))
        t0 = time.perf_counter()
        r = check(h, model, partition=False, time_limit=a.time_limit)
        took = time.perf_counter() - t0
        worst = max(worst, took)
        steps = int(r.details.get("steps", 0) or 0)
        print(f"{shape.name():<30} {r.valid!s:>8} {took:>8.2f} {steps:>12,}")
    print(f"slowest: {worst:.2f} s")


if __name__ == "__main__":
    main()
