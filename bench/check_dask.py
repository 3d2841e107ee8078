"""Checking on Dask against checking in one process (issue 20's figures).

For a 1M-op, 100-key cas-register history (``bench/lin_histories.py``'s real shape, 20
clients) and a 1M-transaction list-append history (``bench/txn.py``'s generator), it
reads the history once, then prints the check's seconds in one process (the default
threads) and on a local Dask cluster of 1 and of 2 worker processes (the cluster started
beforehand; its start-up printed on its own), with the verdicts, which must agree.

    .venv/bin/python bench/check_dask.py --ops 1000000 --txns 1000000

The speed-up is one process's time over the 2-worker time; the overhead of Dask is the
1-worker time over one process's. Histories are cached under ``--cache``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checkers.linear import check, resolve_model
from checkers.txn import check as txn_check
from harness.check_dask import DaskUnitMap, check_linear_on_dask, dask_check_client
from harness.formats import read_history


def _load(name: str, path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", type=int, default=1_000_000, help="ops of the linear history")
    p.add_argument("--keys", type=int, default=100)
    p.add_argument("--txns", type=int, default=1_000_000, help="transactions (0: skip)")
    p.add_argument("--time-limit", type=float, default=600.0)
    p.add_argument("--cache", type=Path, default=Path("/tmp/clew-bench-histories"))
    a = p.parse_args()
    here = Path(__file__).resolve().parent
    gen = _load("clew_bench_lin_histories", here / "lin_histories.py")
    txn = _load("clew_bench_txn", here / "txn.py")

    shape = gen.Shape(ops=a.ops, clients=20, keys=a.keys)
    path = gen.cached_history(shape, a.cache)
    t = time.perf_counter()
    h = read_history(str(path), "jsonl")
    print(f"linear: {path.name}: read in {time.perf_counter() - t:.2f} s", flush=True)
    t = time.perf_counter()
    base = check(h, resolve_model(h, "cas-register"), time_limit=a.time_limit)
    one_process = time.perf_counter() - t
    print(f"linear: one process: {base.valid} in {one_process:.2f} s", flush=True)
    times = {}
    for workers in (1, 2):
        t = time.perf_counter()
        with dask_check_client(workers=workers) as client:
            client.run(lambda: __import__("checkers.linear.kernel"))  # load the kernels
            print(f"linear: {workers} worker(s): cluster up in {time.perf_counter() - t:.2f} s")
            t = time.perf_counter()
            r = check_linear_on_dask(client, h, "cas-register", time_limit=a.time_limit,
                                     max_bytes=2 * 2**30, max_steps=0,
                                     counterexample_time_limit=30, started=t)  # fmt: skip
            times[workers] = time.perf_counter() - t
        agree = "agrees" if r.valid == base.valid else "DISAGREES"
        print(f"linear: {workers} worker(s): {r.valid} ({agree}) in {times[workers]:.2f} s, "
              f"{r.details['units']} units", flush=True)  # fmt: skip
    print(f"linear: speed-up with 2 workers {one_process / times[2]:.2f}x; "
          f"1 worker against no Dask {times[1] / one_process:.2f}x the time")  # fmt: skip

    if a.txns:
        t = time.perf_counter()
        th = txn.generate(a.txns)
        print(f"txn: {a.txns} transactions generated in {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        tb = txn_check(th, "list-append", "serializable", time_limit=a.time_limit)
        one = time.perf_counter() - t
        print(f"txn: one process: {tb.valid} in {one:.2f} s "
              f"({tb.details['stats']['sccs']} components)", flush=True)  # fmt: skip
        ttimes = {}
        for workers in (1, 2):
            with dask_check_client(workers=workers) as client:
                t = time.perf_counter()
                tr = txn_check(th, "list-append", "serializable", time_limit=a.time_limit,
                               unit_map=DaskUnitMap(client))  # fmt: skip
                ttimes[workers] = time.perf_counter() - t
            agree = "agrees" if tr.valid == tb.valid else "DISAGREES"
            print(f"txn: {workers} worker(s): {tr.valid} ({agree}) in {ttimes[workers]:.2f} s",
                  flush=True)  # fmt: skip
        print(f"txn: speed-up with 2 workers {one / ttimes[2]:.2f}x; "
              f"1 worker against no Dask {ttimes[1] / one:.2f}x the time")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
