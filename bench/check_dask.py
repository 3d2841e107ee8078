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
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checkers.linear import check, resolve_model
from checkers.txn import check as txn_check
from harness.check_dask import DaskUnitMap, check_linear_on_dask, dask_check_client
from harness.formats import read_history


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", type=int, default=1_000_000, help="ops of the linear history")
    p.add_argument("--keys", type=int, default=100)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--info", type=float, default=0.02,
                   help="fraction of writes that end info (more: a costlier search)")  # fmt: skip
    p.add_argument("--txns", type=int, default=1_000_000, help="transactions (0: skip)")
    p.add_argument("--no-linear", action="store_true", help="skip the linear history")
    p.add_argument("--time-limit", type=float, default=600.0)
    p.add_argument("--cache", type=Path, default=Path("/tmp/clew-bench-histories"))
    a = p.parse_args()
    here = Path(__file__).resolve().parent
    gen = _load("clew_bench_lin_histories", here / "lin_histories.py")
    txn = _load("clew_bench_txn", here / "txn.py")

    if not a.no_linear:
        _linear(a, gen)
    if a.txns:
        _txn(a, txn)
    return 0


def _linear(a: argparse.Namespace, gen: Any) -> None:
    shape = gen.Shape(ops=a.ops, clients=a.clients, keys=a.keys, info=a.info)
    path = gen.cached_history(shape, a.cache)
    print(f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    t = time.perf_counter()
    h = read_history(str(path), "jsonl")
    print(f"linear: {path.name}: read in {time.perf_counter() - t:.2f} s", flush=True)
    base = None
    one: dict[int, float] = {}
    for threads in (1, 2):
        t, c = time.perf_counter(), _cpu()
        base = check(h, resolve_model(h, "cas-register"), time_limit=a.time_limit,
                     threads=threads)  # fmt: skip
        one[threads] = time.perf_counter() - t
        phases = " ".join(f"{k} {v:.2f}" for k, v in base.details["phases"].items())
        print(f"linear: one process, {threads} thread(s): {base.valid} in {one[threads]:.2f} s, "
              f"CPU {_cpu() - c:.2f} s ({phases})", flush=True)  # fmt: skip
    assert base is not None
    times: dict[tuple[int, bool], float] = {}
    for workers in (1, 2):
        t = time.perf_counter()
        with dask_check_client(workers=workers) as client:
            print(f"linear: {workers} worker(s): cluster up in {time.perf_counter() - t:.2f} s")
            for share in (False, True):
                w0 = client.run(_cpu)
                t, c = time.perf_counter(), _cpu()
                r = check_linear_on_dask(client, h, "cas-register", time_limit=a.time_limit,
                                         max_bytes=2 * 2**30, max_steps=0,
                                         counterexample_time_limit=30, started=t,
                                         share=share)  # fmt: skip
                wall = times[workers, share] = time.perf_counter() - t
                ctl = _cpu() - c
                w1 = client.run(_cpu)
                wcpu = sum(w1[w] - w0.get(w, 0.0) for w in w1)
                d = r.details
                ws = d["worker_seconds"]
                agree = "agrees" if r.valid == base.valid else "DISAGREES"
                print(
                    f"linear: {workers} worker(s), {d['shipped']}: {r.valid} ({agree}) in "
                    f"{wall:.2f} s, {d['units']} units; controller: split+ship "
                    f"{d['phases']['split']:.2f} s, waiting {d['phases']['units']:.2f} s, "
                    f"CPU {ctl:.2f} s; workers: taking rows {ws['take']:.2f} s, checking "
                    f"{ws['check']:.2f} s, CPU in units {ws['cpu']:.2f} s, CPU all told "
                    f"{wcpu:.2f} s; overhead (wall not spent checking on the busiest "
                    f"worker's share) {1 - ws['check'] / workers / wall:.0%}",
                    flush=True,
                )  # fmt: skip
    for share in (False, True):
        how = "shared memory" if share else "sub-histories"
        print(f"linear ({how}): speed-up with 2 workers {one[2] / times[2, share]:.2f}x "
              f"against one process of 2 threads, {one[1] / times[2, share]:.2f}x against one "
              f"thread; 1 worker against no Dask {times[1, share] / one[1]:.2f}x the time "
              f"(load average {os.getloadavg()[0]:.1f})")  # fmt: skip


def _txn(a: argparse.Namespace, txn: Any) -> None:
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


if __name__ == "__main__":
    sys.exit(main())
