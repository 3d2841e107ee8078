"""Benchmark of the transactional checker on a generated list-append history.

Generates a history of N transactions (default 1,000,000) that is serializable (indeed
strict-serializable) by construction: 50 client processes keep 50 transactions in flight;
each transaction applies atomically, at its completion, to an in-memory store. Each has 2
to 6 micro-ops (4 on average), half appends and half reads, over 100 active keys; a key
that reached 32 appends is retired and replaced by a fresh one (as Elle's generator does),
so reads stay short. Then it times ``checkers.txn.check`` (after a small warm-up run that
compiles the Numba kernels) and prints the seconds and the peak RSS.

    .venv/bin/python bench/txn.py                 # 1,000,000 transactions, serializable
    .venv/bin/python bench/txn.py -n 100000 --consistency strict-serializable
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checkers.txn import check
from harness.history import INVOKE, OK, History

#: Generator defaults (the issue's scenario).
TXNS, KEYS, CONCURRENCY, MAX_WRITES_PER_KEY = 1_000_000, 100, 50, 32


def generate(n: int, keys: int = KEYS, concurrency: int = CONCURRENCY,
             max_writes: int = MAX_WRITES_PER_KEY, seed: int = 0) -> History:  # fmt: skip
    """A serializable list-append history of ``n`` transactions (see the module doc)."""
    rng = random.Random(seed)
    active = list(range(keys))
    next_key = keys
    store: dict[int, list[int]] = {}
    values: list[Any] = []
    typ: list[int] = []
    proc: list[int] = []
    inflight: list[tuple[int, list[list[Any]]]] = []

    def new_txn(p: int) -> None:
        mops: list[list[Any]] = []
        for _ in range(rng.randint(2, 6)):
            k = active[rng.randrange(keys)]
            mops.append(["append" if rng.random() < 0.5 else "r", k, None])
        values.append([[f, k, None] for f, k, _ in mops])
        typ.append(INVOKE)
        proc.append(p)
        inflight.append((p, mops))

    started = 0
    for p in range(min(concurrency, n)):
        new_txn(p)
        started += 1
    while inflight:
        i = rng.randrange(len(inflight))
        inflight[i], inflight[-1] = inflight[-1], inflight[i]
        p, mops = inflight.pop()
        done: list[list[Any]] = []
        for f, k, _ in mops:
            cur = store.get(k)
            if f == "r":
                done.append(["r", k, cur])
            else:
                e = 1 if cur is None else len(cur) + 1
                cur = [e] if cur is None else [*cur, e]  # copy on write: readers share lists
                store[k] = cur
                done.append(["append", k, e])
                if e >= max_writes and k in active:
                    active[active.index(k)] = next_key
                    next_key += 1
        values.append(done)
        typ.append(OK)
        proc.append(p)
        if started < n:
            new_txn(p)
            started += 1
    m = len(values)
    process = np.asarray(proc, dtype=np.int64)
    # pair each invocation with the next op of its process (its completion)
    order = np.argsort(process, kind="stable")
    pair = np.empty(m, dtype=np.int64)
    pair[order[0::2]] = order[1::2]
    pair[order[1::2]] = order[0::2]
    return History(
        time=np.arange(m, dtype=np.int64) * 1000, index=np.arange(m, dtype=np.int64),
        type=np.asarray(typ, dtype=np.int8), process=process,
        f=np.zeros(m, dtype=np.int32), value=np.arange(m, dtype=np.int32),
        key=np.full(m, -1, np.int32), node=np.full(m, -1, np.int32),
        error=np.full(m, -1, np.int32), line=np.arange(1, m + 1, dtype=np.int64), pair=pair,
        f_names=["txn"], values=values, keys=[], nodes=[], process_names={},
    )  # fmt: skip


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Generate, check, print timings."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--txns", type=int, default=TXNS)
    ap.add_argument("--consistency", default="serializable")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    check(generate(200), consistency=args.consistency)  # compile / load the kernels
    t = time.perf_counter()
    h = generate(args.txns, seed=args.seed)
    print(f"generated {args.txns:,} transactions ({len(h):,} ops) in "
          f"{time.perf_counter() - t:.1f} s; RSS {_rss_mib():,.0f} MiB")  # fmt: skip
    t = time.perf_counter()
    r = check(h, consistency=args.consistency)
    secs = time.perf_counter() - t
    st = r.details["stats"]
    print(f"check ({args.consistency}): valid={r.valid} in {secs:.2f} s; "
          f"{st['mops']:,} mops, {st['read_elements']:,} read elements, "
          f"{st['edges']:,} edges, {st['sccs']} non-trivial SCCs")  # fmt: skip
    print("  steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in st["timings"].items()))
    print(f"peak RSS {_rss_mib():,.0f} MiB")
    if r.valid is not True:
        print(f"  cause: {r.cause}")
        sys.exit(1)


if __name__ == "__main__":
    main()
