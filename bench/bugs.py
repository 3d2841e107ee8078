"""Runs to first detection of bugkv's seeded bugs and real databases' published bugs
(:data:`REAL_BUGS`: Redis with Sentinel losing acknowledged writes, etcd's lock granted
twice), per (bug, scheduler) cell (root).

For every cell it runs ``--campaigns`` campaigns (:mod:`harness.campaign`; campaign ``c``
starts at seed ``c * 1000``), each capped at ``--runs`` runs, on one local cluster, within
``--cell-budget`` seconds of wall time per cell. It prints, per cell, the median runs to
detection with its spread (min-max), how many campaigns found nothing within the cap, and
the median seconds to detection; and it appends one JSON row per campaign to
``bench/results/bugs-<time>.json`` (bug, depth, scheduler, config hash, clew commit, runs
and seconds to detection or ``null`` with the cap, fault ops used, each run's wall time),
so that figures from different sittings add up (compare rows with equal config hashes).

The baseline parameters (``docs/bugkv.md``): every local fault kind, ``--interval 1``,
runs of the bug's own length (``harness/dbs/bugkv_bugs.py``), the bug's workload. A real
bug brings its own suite, fault kinds, interval, run length and recovery time
(``docs/redis.md``); ``--faults`` and ``--interval`` override them.

    sudo .venv/bin/python bench/bugs.py --bugs early-ack --campaigns 20 --runs 10
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clusters import ClusterSpec, get_provider
from harness.campaign import run_campaign
from harness.dbs.bugkv_bugs import BUG_CATALOG, NODES
from harness.spec import load_spec

CLUSTER = {"subnet": "10.77.177.0/24", "prefix": "bkb-", "bridge": "bkb-br0"}
#: The baseline's fault kinds: every kind the local provider has for bugkv.
BASELINE_KINDS = ("partition", "pause", "kill", "clock", "packet")
BASELINE_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class RealBug:
    """A published bug of a real database as a case: its suite and workload, the depth of
    its shortest schedule, and the run shape it needs (a failover takes seconds, so the
    faults hold longer than bugkv's, and the final reads wait for the cluster to settle)."""

    name: str
    suite: str
    workload: str
    depth: int
    time_limit: float
    faults: str
    interval: float
    recovery_time: float
    options: dict[str, Any] = field(default_factory=dict)

    def suite_options(self) -> dict[str, Any]:
        """The suite options of a run of this case."""
        return dict(self.options)


REAL_BUGS = {
    "redis-lost-writes": RealBug(
        "redis-lost-writes", "redis", "set-full", 1, 14.0, "partition,pause,kill", 4.0, 10.0
    ),
    "etcd-lock-overlap": RealBug("etcd-lock-overlap", "etcd", "lock", 2, 14.0, "pause", 4.0, 2.0),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bugs", default=",".join(BUG_CATALOG),
                   help=f"comma-separated bug names (also {', '.join(REAL_BUGS)})")  # fmt: skip
    p.add_argument("--schedulers", default="random", help="comma-separated schedulers")
    p.add_argument("--campaigns", type=int, default=20, help="campaigns per cell")
    p.add_argument("--runs", type=int, default=10, help="cap on runs per campaign")
    p.add_argument("--cell-budget", type=float, default=3600.0, help="seconds per cell")
    p.add_argument("--faults", default=None, help="fault kinds (default: the case's)")
    p.add_argument("--interval", type=float, default=None, help="(default: the case's)")
    p.add_argument("--store", default=None, help="where campaigns are kept (default: temp)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    base = Path(args.store or tempfile.mkdtemp(prefix="bugkv-bugs-"))
    state = base / "cluster"
    provider = get_provider("local")
    provider.up(ClusterSpec(nodes=len(NODES), name="bugkv-bugs", state_dir=str(state),
                            options=CLUSTER))  # fmt: skip
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"bugs-{time.strftime('%Y%m%dT%H%M%S')}.json"
    rows: list[dict[str, Any]] = []
    try:
        for name in args.bugs.split(","):
            bug = REAL_BUGS[name] if name in REAL_BUGS else BUG_CATALOG[name]
            real = bug if isinstance(bug, RealBug) else None
            faults = args.faults or (real.faults if real else ",".join(BASELINE_KINDS))
            interval = args.interval or (real.interval if real else BASELINE_INTERVAL)
            for scheduler in args.schedulers.split(","):
                t0 = time.monotonic()
                found: list[int | None] = []
                seconds: list[float] = []
                for c in range(args.campaigns):
                    left = args.cell_budget - (time.monotonic() - t0)
                    if left <= 0:
                        break
                    spec = load_spec(
                        suite=real.suite if real else "bugkv", workload=bug.workload,
                        nodes=len(NODES), time_limit=bug.time_limit, faults=faults,
                        interval=interval, scheduler=scheduler, seed=c * 1000,
                        store=str(base / "store"), cluster_state_dir=str(state),
                        cluster_options=CLUSTER, options=bug.suite_options(),
                        recovery_time=real.recovery_time if real else 1.0,
                    )  # fmt: skip
                    result = run_campaign(spec, runs=args.runs, budget=left)
                    found.append(result.runs_to_detection)
                    if result.seconds_to_detection is not None:
                        seconds.append(result.seconds_to_detection)
                    rows.append({
                        "bug": name, "depth": bug.depth, "scheduler": scheduler,
                        "config_hash": result.config_hash, "clew_commit": result.commit,
                        "runs_to_detection": result.runs_to_detection,
                        "seconds_to_detection": result.seconds_to_detection,
                        "cap_runs": args.runs, "runs": len(result.runs),
                        "fault_ops": sum(r.fault_ops for r in result.runs),
                        "run_seconds": [r.wall_seconds for r in result.runs],
                        "campaign": str(result.directory),
                    })  # fmt: skip
                    path.write_text(json.dumps(rows, indent=1) + "\n")
                hits = [f for f in found if f is not None]
                spread = f"{min(hits)}-{max(hits)}" if hits else "-"
                median = f"{statistics.median(hits):g}" if hits else "-"
                secs = f"{statistics.median(seconds):.0f}" if seconds else "-"
                missed = len(found) - len(hits)
                cell = time.monotonic() - t0
                print(f"{name:22s} depth {bug.depth} {scheduler:8s} campaigns {len(found):3d}  "
                      f"median runs {median:>4s} ({spread:>5s})  not found {missed:3d} "
                      f"(cap {args.runs})  median s {secs:>5s}  cell {cell:7.0f} s",
                      flush=True)  # fmt: skip
    finally:
        provider.down(state)
        print(f"results: {path}")
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench/bugs.py needs root (a local namespace cluster)")
    sys.exit(main())
