"""kv histories with many appends of unknown outcome (issue 17, finding (a)).

Checks --count generated kv histories (50-100 ops, 5 clients, one key, about 30 % of all
ops appends ending ``info``; :func:`bench.lin_histories.kv_info_ops`) with the ``kv``
model and prints the verdicts, the total checker time, the slowest history and its steps, the
most steps any history took, and every history over 0.1 s.
Every one of them is linearizable.

    .venv/bin/python bench/linear_kv_info.py [--count 1000] [--info 0.55]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lin_histories import kv_info_ops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--info", type=float, default=0.55, help="fraction of appends ending info")
    ap.add_argument("--time-limit", type=float, default=10.0)
    a = ap.parse_args()

    from checkers.linear import check
    from harness.history import History

    check(History.from_ops(kv_info_ops(0, 60, info=a.info)), "kv")  # load the kernels
    total = 0.0
    slowest = (0.0, -1, 0, 0)
    most = (0, -1)  # most search steps, seed: the measure that load does not blur
    verdicts: dict[str, int] = {}
    info_share = []
    over: list[tuple[float, int, int, int]] = []
    for seed in range(a.count):
        n = 50 + seed % 51
        ops = kv_info_ops(seed, n, info=a.info)
        info_share.append(sum(o["type"] == "info" for o in ops) / n)
        h = History.from_ops(ops)
        t = time.perf_counter()
        r = check(h, "kv", time_limit=a.time_limit, counterexample=False)
        dt = time.perf_counter() - t
        total += dt
        if dt > 0.1:
            over.append((dt, seed, n, r.details.get("steps", 0)))
        verdicts[str(r.valid)] = verdicts.get(str(r.valid), 0) + 1
        most = max(most, (r.details.get("steps", 0), seed))
        if dt > slowest[0]:
            slowest = (dt, seed, n, r.details.get("steps", 0))
    print(
        f"{a.count} kv histories of 50-100 ops, info appends {min(info_share):.0%}-"
        f"{max(info_share):.0%} of the ops (mean {sum(info_share) / len(info_share):.0%})"
    )
    print(f"verdicts: {verdicts}")
    print(
        f"checker time: total {total:.3f} s, mean {total / a.count * 1e3:.2f} ms, "
        f"slowest {slowest[0] * 1e3:.1f} ms (seed {slowest[1]}, {slowest[2]} ops, "
        f"{slowest[3]:,} steps); over 0.1 s: {len(over)}; load {os.getloadavg()[0]:.1f}"
    )
    print(f"most search steps: {most[0]:,} (seed {most[1]})")
    for dt, seed, n, steps in over:
        print(f"  over 0.1 s: seed {seed}, {n} ops, {dt * 1e3:.1f} ms, {steps:,} steps")


if __name__ == "__main__":
    main()
