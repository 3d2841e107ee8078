"""Runs to first detection per (bug, scheduler) cell, learning schedulers' memory reset at
every campaign's start (root; its own local cluster, 10.77.193.0/24).

Every scheduler gets the baseline's parameters (``docs/bugkv.md``: every local fault kind,
``--interval 1``, the bug's run length and workload) and so the same fault-op budget per
run (``adaptive`` strikes at most as often as ``random``; ``ldfi``'s hypotheses have at most
as many strikes). Campaign ``c`` starts at seed ``c * 1000``. Rows (one per campaign: bug,
depth, scheduler, config hash, commit, runs/seconds/fault ops to detection or ``null`` with
the cap) go to ``bench/results/schedulers-<time>.json``; the table prints medians with
min-max, how many campaigns found nothing (counted at the cap), and a one-sided
Mann-Whitney U test of each learning scheduler against ``random`` on capped values.

    sudo .venv/bin/python bench/schedulers.py --bugs buffered-log --campaigns 3 --runs 6
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clusters import ClusterSpec, get_provider
from harness.campaign import run_campaign
from harness.dbs.bugkv_bugs import BUG_CATALOG, NODES
from harness.spec import load_spec
from nemeses.schedulers import memory

CLUSTER = {"subnet": "10.77.193.0/24", "prefix": "hsb-", "bridge": "hsb-br0"}
BASELINE_KINDS = "partition,pause,kill,clock,packet"


def table(rows: list[dict[str, Any]], cap: int) -> list[str]:
    """One line per cell: medians (capped), spread, misses, and U against random."""
    from scipy.stats import mannwhitneyu

    out = []
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["bug"], r["scheduler"]), []).append(r)
    for (bug, sched), rs in cells.items():
        capped = [r["runs_to_detection"] or cap + 1 for r in rs]
        hits = [r["runs_to_detection"] for r in rs if r["runs_to_detection"]]
        ops = [r["fault_ops_to_detection"] for r in rs if r["fault_ops_to_detection"]]
        secs = [r["seconds_to_detection"] for r in rs if r["seconds_to_detection"]]
        med_s = statistics.median(secs) if secs else "-"
        med_ops = statistics.median(ops) if ops else "-"
        line = (f"{bug:20s} {sched:8s} n={len(rs):2d} median runs (capped at {cap + 1}) "
                f"{statistics.median(capped):4g} [{min(capped)}-{max(capped)}] "
                f"not found {len(rs) - len(hits)}  median s {med_s}"
                f"  median fault ops {med_ops}")  # fmt: skip
        base = cells.get((bug, "random"))
        if sched != "random" and base:
            b = [r["runs_to_detection"] or cap + 1 for r in base]
            p = mannwhitneyu(capped, b, alternative="less").pvalue
            line += f"  U vs random p={p:.3f}"
        out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bugs", default="buffered-log")
    p.add_argument("--schedulers", default="random,ldfi,adaptive")
    p.add_argument("--campaigns", type=int, default=3, help="campaigns per cell")
    p.add_argument("--runs", type=int, default=6, help="cap on runs per campaign")
    p.add_argument("--cell-budget", type=float, default=900.0, help="seconds per cell")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    base = Path(tempfile.mkdtemp(prefix="clew-schedulers-"))
    state = base / "cluster"
    provider = get_provider("local")
    provider.up(ClusterSpec(nodes=len(NODES), name="schedulers", state_dir=str(state),
                            options=CLUSTER))  # fmt: skip
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"schedulers-{time.strftime('%Y%m%dT%H%M%S')}.json"
    rows: list[dict[str, Any]] = []
    t_all = time.monotonic()
    try:
        for name in args.bugs.split(","):
            bug = BUG_CATALOG[name]
            for sched in args.schedulers.split(","):
                t0 = time.monotonic()
                for c in range(args.campaigns):
                    left = args.cell_budget - (time.monotonic() - t0)
                    if left <= 0:
                        break
                    store = base / "store"
                    for learner in ("adaptive", "ldfi"):
                        memory.reset(memory.memory_path(learner, store, "bugkv"))
                    spec = load_spec(
                        suite="bugkv", workload=bug.workload, nodes=len(NODES),
                        time_limit=bug.time_limit, faults=BASELINE_KINDS, interval=1.0,
                        scheduler=sched, seed=c * 1000, store=str(store),
                        cluster_state_dir=str(state), cluster_options=CLUSTER,
                        options=bug.suite_options(), recovery_time=1.0,
                    )  # fmt: skip
                    res = run_campaign(spec, runs=args.runs, budget=left)
                    data = res.to_json()
                    rows.append({
                        "bug": name, "depth": bug.depth, "scheduler": sched,
                        "config_hash": res.config_hash, "clew_commit": res.commit,
                        "runs_to_detection": res.runs_to_detection,
                        "seconds_to_detection": res.seconds_to_detection,
                        "fault_ops_to_detection": data["fault_ops_to_detection"],
                        "cap_runs": args.runs, "runs": len(res.runs),
                        "fault_ops": sum(r.fault_ops for r in res.runs),
                        "run_seconds": [r.wall_seconds for r in res.runs],
                    })  # fmt: skip
                    path.write_text(json.dumps(rows, indent=1) + "\n")
                    print(f"{name} {sched} campaign {c}: {res.stopped}", flush=True)
        for line in table(rows, args.runs):
            print(line)
    finally:
        provider.down(state)
        print(f"results: {path}; {time.monotonic() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench/schedulers.py needs root (a local namespace cluster)")
    sys.exit(main())
