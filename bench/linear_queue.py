"""The FIFO queue model (``linearizable-queue``, the queue checker's second half) on
histories with concurrent enqueues whose order only later dequeues reveal.

Generates queue histories of 5 clients in rounds: each round the five invoke together
(an enqueue of a fresh value with probability ``1 - dequeue share``, else a dequeue), then
complete in a shuffled order, each taking effect at its completion; then one client
dequeues what is left, one value at a time. Every history is linearizable. Prints, per
history, the values left queued, the verdict, the seconds and the search steps of
``clew check -m linearizable-queue`` (in process, Numba warmed up first).

    .venv/bin/python bench/linear_queue.py [--ops 200,500,990] [--time-limit 30]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rounds_history(ops: int, dequeue_share: float, seed: int) -> tuple[list[dict[str, Any]], int]:
    """A linearizable queue history of about ``ops`` ops (see the module docs) and how
    many values were still queued before its final drain."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    queue: list[int] = []
    value = 0
    while len(out) < 2 * ops:
        batch = []
        for p in range(5):
            if rng.random() < dequeue_share:
                batch.append((p, "dequeue", None))
            else:
                value += 1
                batch.append((p, "enqueue", value))
        out += [{"type": "invoke", "process": p, "f": f, "value": v} for p, f, v in batch]
        rng.shuffle(batch)
        for p, f, v in batch:
            if f == "enqueue":
                queue.append(v)  # type: ignore[arg-type]
            else:
                v = queue.pop(0) if queue else None
            out.append({"type": "ok", "process": p, "f": f, "value": v})
    left = len(queue)
    for v in queue:
        out += [{"type": "invoke", "process": 9, "f": "dequeue", "value": None},
                {"type": "ok", "process": 9, "f": "dequeue", "value": v}]  # fmt: skip
    for i, op in enumerate(out):
        op["time"] = i * 1000
    return out, left


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", default="200,500,990", help="history sizes, comma-separated")
    ap.add_argument("--time-limit", type=float, default=30.0)
    a = ap.parse_args()

    from checkers.linear import check
    from harness.history import History

    check(History.from_ops(rounds_history(20, 0.4, 0)[0]), "linearizable-queue")  # compile
    print(f"{'ops':>5} {'dequeues':>8} {'seed':>4} {'left':>5} {'verdict':>8} {'seconds':>8} "
          f"{'steps':>12}")  # fmt: skip
    for ops in (int(x) for x in a.ops.split(",")):
        for share in (0.2, 0.4, 0.5):
            for seed in (1, 2):
                history, left = rounds_history(ops, share, seed)
                t0 = time.perf_counter()
                r = check(History.from_ops(history), "linearizable-queue",
                          time_limit=a.time_limit)  # fmt: skip
                took = time.perf_counter() - t0
                steps = int(r.details.get("steps", 0) or 0)
                print(f"{ops:>5} {share:>8} {seed:>4} {left:>5} {r.valid!s:>8} {took:>8.2f} "
                      f"{steps:>12,}")  # fmt: skip


if __name__ == "__main__":
    main()
