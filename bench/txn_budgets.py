"""How quickly the transactional checker answers when its budgets are tiny, and whether
``clew check``'s budgets hold on big strict-serializable histories (issue 11).

A ring of N concurrent transactions (one strongly connected component with an N-cycle of
rw edges; ``tests/unit/test_txn_budgets.py``'s ``ring``) checked with a per-component
time limit of 1 ns (the cycle search gives up: unknown), then with an overall limit and a
memory budget that run out; prints the verdict, the cause and the seconds of each.

    .venv/bin/python bench/txn_budgets.py            # ring of 300
    .venv/bin/python bench/txn_budgets.py -n 3000

With ``--strict N[,N...]``: list-append histories of N transactions in waves (``bench/txn.py
--waves``: M invoked, then all M complete; real-time edges M² without barriers), written to
JSONL once, then ``clew check --model list-append --consistency strict-serializable
--time-limit L`` in a fresh process each; prints the verdict, ``seconds`` (every phase,
reading the file included) against ``L × 1.1 + 1``, the wall time and the peak RSS::

    .venv/bin/python bench/txn_budgets.py --strict 20000,200000 --time-limit 5 --time-limit 60
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.linear_budgets import run as run_clew
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


def strict_file(directory: Path, n: int) -> Path:
    """The JSONL file of ``n`` list-append transactions in waves (generated once): waves
    of n/20 transactions, n/40 active keys, a key retired after 16 appends."""
    from bench.txn import generate
    from harness.formats import write_history

    path = directory / f"waves-{n}.jsonl"
    if not path.exists():
        h = generate(n, keys=max(n // 40, 10), max_writes=16, waves=max(n // 20, 1))
        write_history(h, str(path), "jsonl")
    return path


def strict(sizes: list[int], limits: list[float], directory: Path) -> None:
    """``clew check`` of each strict-serializable file under each time limit."""
    directory.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        path = strict_file(directory, n)
        for limit in limits:
            rec, wall, rss = run_clew(["--model", "list-append", "--consistency",
                                       "strict-serializable", "--time-limit", str(limit),
                                       str(path)])  # fmt: skip
            secs = float(str(rec.get("seconds") or 0))
            bound = limit * 1.1 + 1
            print(f"{n:,} txns, --time-limit {limit:g}: {rec.get('valid')}; seconds {secs:.2f} "
                  f"(bound {bound:.2f}: {'within' if secs <= bound else 'OVER'}), wall "
                  f"{wall:.2f} s, peak RSS {rss:,.0f} MiB", flush=True)  # fmt: skip
            if rec.get("cause"):
                print(f"    cause: {str(rec['cause'])[:200]}", flush=True)


def main() -> None:
    """Print verdict, cause and seconds for each tiny budget."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--strict", default=None, help="comma-separated transaction counts")
    ap.add_argument("--time-limit", type=float, action="append", help="for --strict")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/clew-txn-budgets"))
    args = ap.parse_args()
    if args.strict:
        strict([int(x) for x in args.strict.split(",")], args.time_limit or [5.0], args.dir)
        return
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
