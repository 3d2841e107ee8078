"""Benchmark of `clew test etcd` on a real 5-node local cluster: throughput and latency.

Runs the register workload for --time-limit seconds without faults and with partitions,
then prints ops/s (completions per second of load) and the latency of ok operations
(p50 / p99 / max) from the journaled history. Needs root and etcd.

    sudo .venv/bin/python bench/etcd.py [--time-limit 20] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from harness.formats import read_history
from harness.history import INVOKE, OK
from harness.runner import run_test
from harness.spec import load_spec

CLUSTER = {"subnet": "10.77.98.0/24", "prefix": "cbe-", "bridge": "cbe-br0"}


def _latencies(history_path: Path) -> tuple[int, float, np.ndarray]:
    h = read_history(str(history_path), "jsonl")
    inv = np.flatnonzero((h.type == INVOKE) & (h.process >= 0))
    comp = h.pair[inv]
    done = comp >= 0
    inv, comp = inv[done], comp[done]
    ok = h.type[comp] == OK
    lat = (h.time[comp] - h.time[inv])[ok] / 1e6
    span = (h.time[comp].max() - h.time[inv].min()) / 1e9 if len(inv) else 1.0
    return len(comp), span, lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--concurrency", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="clew-bench-etcd-") as tmp:
        for faults in ("none", "partition"):
            spec = load_spec(
                suite="etcd", nodes=5, time_limit=args.time_limit, faults=faults,
                concurrency=args.concurrency, seed=1, store=str(Path(tmp) / "store"),
                cluster_state_dir=str(Path(tmp) / "cluster"), cluster_options=CLUSTER,
            )  # fmt: skip
            outcome = run_test(spec)
            n, span, lat = _latencies(outcome.run_dir / "history.jsonl")
            p50, p99 = np.percentile(lat, [50, 99]) if len(lat) else (0.0, 0.0)
            print(
                f"faults={faults:<9} valid={outcome.valid!s:<5} {n} ops in {span:.1f} s = "
                f"{n / span:.0f} ops/s; ok latency p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                f"max {lat.max() if len(lat) else 0:.0f} ms (concurrency {args.concurrency})"
            )


if __name__ == "__main__":
    main()
