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

Issue 11's budget figures: a strict-serializable history in waves (M transactions invoked,
then all M complete, then the next M: quadratic realtime pairs, linear barrier edges),
written to JSONL once, then read back and checked under a time limit; the report gives the
checker's ``seconds`` (every phase, its parse included) against ``limit × 1.1 + 1``::

    .venv/bin/python bench/txn.py -n 200000 --waves 10000 --jsonl /tmp/w200k.jsonl
    .venv/bin/python bench/txn.py -n 200000 --waves 10000 --jsonl /tmp/w200k.jsonl \\
        --consistency strict-serializable --time-limit 5
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checkers.txn import check
from harness.formats import read_history, write_history
from harness.history import INVOKE, OK, History

#: Generator defaults (the issue's scenario).
TXNS, KEYS, CONCURRENCY, MAX_WRITES_PER_KEY = 1_000_000, 100, 50, 32


def generate(n: int, keys: int = KEYS, concurrency: int = CONCURRENCY,
             max_writes: int = MAX_WRITES_PER_KEY, seed: int = 0,
             waves: int = 0) -> History:  # fmt: skip
    """A serializable list-append history of ``n`` transactions (see the module doc).

    With ``waves`` = M > 0, transactions come in waves instead: M are invoked, then all M
    complete (in random order), then the next M are invoked — the shape whose realtime
    order has M² pairs at every wave boundary.
    """
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
    if waves > 0:
        concurrency = waves
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
        if waves > 0:
            if not inflight:  # the wave is over: the next one begins
                for q in range(min(waves, n - started)):
                    new_txn(q)
                    started += 1
        elif started < n:
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
    """Generate (or read), check, print timings, the budget bound and the peak RSS."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--txns", type=int, default=TXNS)
    ap.add_argument("--consistency", default="serializable")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keys", type=int, default=KEYS, help="active keys")
    ap.add_argument("--max-writes", type=int, default=MAX_WRITES_PER_KEY,
                    help="appends after which a key is retired for a fresh one")
    ap.add_argument("--waves", type=int, default=0, metavar="M",
                    help="M transactions invoked, then all M complete, then the next M")
    ap.add_argument("--time-limit", type=float, action="append",
                    help="the checker's time limit in seconds (default: its default); "
                    "repeat to check the same history under several")
    ap.add_argument("--max-memory", type=int, default=None, metavar="MIB",
                    help="the checker's memory budget in MiB (default: its default)")
    ap.add_argument("--jsonl", metavar="FILE",
                    help="write the history here (if missing) and check it as read back")
    args = ap.parse_args()
    check(generate(200), consistency=args.consistency)  # compile / load the kernels
    t, cpu = time.perf_counter(), time.process_time()
    read_secs = None
    if args.jsonl and Path(args.jsonl).exists():
        h = read_history(args.jsonl)
        read_secs = time.perf_counter() - t
        print(f"read {args.jsonl} ({Path(args.jsonl).stat().st_size / 2**20:,.1f} MiB, "
              f"{len(h):,} ops) in {read_secs:.2f} s (CPU {time.process_time() - cpu:.2f} s, "
              f"load {os.getloadavg()[0]:.1f}); RSS {_rss_mib():,.0f} MiB")  # fmt: skip
    else:
        h = generate(args.txns, keys=args.keys, max_writes=args.max_writes, seed=args.seed,
                     waves=args.waves)  # fmt: skip
        print(f"generated {args.txns:,} transactions ({len(h):,} ops) in "
              f"{time.perf_counter() - t:.1f} s; RSS {_rss_mib():,.0f} MiB")  # fmt: skip
        if args.jsonl:
            write_history(h, args.jsonl, "jsonl")
            print(f"wrote {args.jsonl}; run again to check it as read from the file")
            return
    failed = 0
    for limit in args.time_limit or [None]:
        failed |= _check_once(h, args.consistency, limit, args.max_memory, read_secs)
    sys.exit(failed)


def _check_once(h: History, consistency: str, limit: float | None, max_mib: int | None,
                read_secs: float | None) -> int:  # fmt: skip
    """Check ``h`` once under the budget, print the figures; 0 valid, 1 invalid, 2 unknown."""
    kw: dict[str, Any] = {}
    if limit is not None:
        kw["time_limit"] = limit
    if max_mib is not None:
        kw["max_memory"] = max_mib * 2**20
    t, cpu = time.perf_counter(), time.process_time()
    r = check(h, consistency=consistency, **kw)
    secs, cpu = time.perf_counter() - t, time.process_time() - cpu
    st = r.details.get("stats", {})
    print(f"check ({consistency}, time limit {limit}): valid={r.valid}; reported seconds "
          f"{r.seconds:.2f} (wall {secs:.2f} s, CPU {cpu:.2f} s, load "
          f"{os.getloadavg()[0]:.1f}); {st.get('mops', 0):,} mops, "
          f"{st.get('read_elements', 0):,} read elements, {st.get('edges', 0):,} edges, "
          f"{st.get('barriers', 0):,} realtime barriers, {st.get('sccs', 0)} non-trivial "
          "SCCs")  # fmt: skip
    print("  steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in st.get("timings", {}).items()))
    if limit is not None:
        bound = limit * 1.1 + 1
        print(f"  time limit {limit:g} s: bound {bound:.2f} s, "
              f"{'within' if r.seconds <= bound else 'OVER'}")  # fmt: skip
    if read_secs is not None:
        print(f"  file read + check: {read_secs + secs:.2f} s")
    print(f"  peak RSS so far {_rss_mib():,.0f} MiB")
    if r.valid is not True:
        print(f"  cause: {(r.cause or '')[:300]}")
    return 0 if r.valid is True else 1 if r.valid is False else 2


if __name__ == "__main__":
    main()
