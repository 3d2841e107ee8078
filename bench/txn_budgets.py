"""How quickly the transactional checker answers when its budgets are tiny.

A ring of N concurrent transactions (one strongly connected component with an N-cycle of
rw edges; ``tests/unit/test_txn_budgets.py``'s ``ring``) checked with a per-component
time limit of 1 ns (the cycle search gives up: unknown), then with an overall limit and a
memory budget that run out; prints the verdict, the cause and the seconds of each.

    .venv/bin/python bench/txn_budgets.py            # ring of 300
    .venv/bin/python bench/txn_budgets.py -n 3000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checkers.txn import check
from harness.history import History


def ring(n: int) -> History:
    """n concurrent transactions, each reading the key the next one appends, and a final
    read of every key (an n-cycle of rw edges: G2-item)."""
    mops = [[["r", i, None], ["append", (i + 1) % n, 1]] for i in range(n)]
    ops: list[dict[str, Any]] = []
    ops += [{"process": p, "type": "invoke", "f": "txn", "value": mops[p]} for p in range(n)]
    ops += [{"process": p, "type": "ok", "f": "txn", "value": mops[p]} for p in range(n)]
    final = [["r", i, [1]] for i in range(n)]
    ops.append({"process": n, "type": "invoke", "f": "txn", "value": final})
    ops.append({"process": n, "type": "ok", "f": "txn", "value": final})
    return History.from_ops(ops)


def main() -> None:
    """Print verdict, cause and seconds for each tiny budget."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=300)
    args = ap.parse_args()
    h = ring(args.n)
    check(ring(10))  # compile / load the kernels
    for label, kw in (("scc_time_limit=1e-9", {"scc_time_limit": 1e-9}),
                      ("time_limit=1e-3", {"time_limit": 1e-3}),
                      ("max_memory=1", {"max_memory": 1}),
                      ("defaults", {})):  # fmt: skip
        t = time.perf_counter()
        r = check(h, "list-append", "serializable", **kw)
        print(f"ring {args.n:,} {label:<20} valid={r.valid!s:<8} {time.perf_counter() - t:.3f} s"
              f"  ({(r.cause or '')[:100]})")  # fmt: skip


if __name__ == "__main__":
    main()
