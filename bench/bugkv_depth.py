"""Depth honesty for bugkv's seeded bugs, on a real local cluster (root).

For every seeded bug (``harness/dbs/bugkv_bugs.py``) this runs, with fixed replay schedules:

* its minimal schedule (expected: invalid), and the same without the bug flag (valid);
* its minimal schedule with any one fault op removed, over ``--seeds`` seeds (expected: valid);
* the bug flag with no faults, ``--quiet-runs`` times (expected: valid);

and bugkv with no bug flag under ``--random-runs`` random-fault runs: the yardstick's random
scheduler (``harness/dbs/bugkv_bugs.YARDSTICK``: every fault kind the local provider has,
an op every second, two faults at once, ten fault ops; expected: valid). The removed-op,
quiet and random runs are as long as a yardstick run (``--depth-time``, 12 s), longer than
a replay of a minimal schedule, so that a bug a shorter schedule could still show has time
to. It prints one line per cell with the counts of
valid / invalid / unknown runs and the wall time, and writes them as JSON to
``bench/results/bugkv_depth-<time>.json``.

    .venv/bin/python bench/bugkv_depth.py                      # everything
    .venv/bin/python bench/bugkv_depth.py --bugs early-ack --seeds 5 --quiet-runs 10
    .venv/bin/python bench/bugkv_depth.py --only random --random-runs 50

One cluster (subnet 10.77.172.0/24, prefix ``bkd-``; ``--cluster 1``: 10.77.173.0/24,
``bke-``; ``--cluster 2``: 10.77.174.0/24, ``bkf-``; ``--cluster 3``: 10.77.178.0/24,
``bkg-``) is brought up once and reused; each
run sets the database up afresh.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clusters import ClusterSpec, get_provider
from harness.dbs.bugkv_bugs import BUG_CATALOG, NODES, YARDSTICK, Bug
from harness.errors import ClewError
from harness.runner import RunOutcome, run_test
from harness.spec import load_spec
from nemeses.schedule import schedule_kinds

#: One cluster per ``--cluster`` index, so that two benches can run at once.
CLUSTERS = (
    {"subnet": "10.77.172.0/24", "prefix": "bkd-", "bridge": "bkd-br0"},
    {"subnet": "10.77.173.0/24", "prefix": "bke-", "bridge": "bke-br0"},
    {"subnet": "10.77.174.0/24", "prefix": "bkf-", "bridge": "bkf-br0"},
    {"subnet": "10.77.178.0/24", "prefix": "bkg-", "bridge": "bkg-br0"},
)
#: Fault kinds of the random runs (every kind the local provider has for bugkv).
RANDOM_KINDS = YARDSTICK.kinds


def run_once(
    *,
    options: dict[str, Any],
    workload: str,
    steps: Sequence[dict[str, Any]] | None,
    seed: int,
    time_limit: float,
    store: str,
    cluster_state: str,
    cluster_options: dict[str, Any],
    faults: Sequence[str] = (),
    interval: float = 1.0,
    overlap: int = 1,
    fault_ops: int | None = None,
) -> RunOutcome:
    """One bugkv run with suite ``options`` and the fixed schedule ``steps`` (``None``:
    the random scheduler over ``faults``, with ``overlap`` and ``fault_ops``); its
    outcome."""
    kinds = list(faults) if steps is None else schedule_kinds(steps)
    spec = load_spec(
        suite="bugkv", workload=workload, nodes=len(NODES), time_limit=time_limit,
        faults=",".join(kinds) or "none", interval=interval, seed=seed, store=store,
        cluster_state_dir=cluster_state, cluster_options=cluster_options,
        options=options, recovery_time=YARDSTICK.recovery_time, overlap=overlap,
        fault_ops=fault_ops,
    )  # fmt: skip
    t0 = time.monotonic()
    try:
        return run_test(spec, schedule=None if steps is None else list(steps))
    except ClewError as e:  # a run that could not be made (a node not ready in time, ...)
        return RunOutcome(run_dir=Path(store), valid="unknown", results={"error": str(e)},
                          wall_seconds=time.monotonic() - t0)  # fmt: skip


def _tally(outcomes: list[RunOutcome]) -> dict[str, Any]:
    c = Counter("valid" if o.valid is True else "invalid" if o.valid is False else "unknown"
                for o in outcomes)  # fmt: skip
    return {
        "valid": c["valid"], "invalid": c["invalid"], "unknown": c["unknown"],
        "seconds": [round(o.wall_seconds or 0.0, 1) for o in outcomes],
        "runs": [str(o.run_dir) for o in outcomes if o.valid is not True],
        "errors": [o.results["error"][:300] for o in outcomes if "error" in o.results],
    }  # fmt: skip


def _overlapped(outcome: RunOutcome) -> bool:
    """Whether two of the run's fault windows (of different kinds) were open at once."""
    ws = [(w["start"], w["stop"] if w["stop"] is not None else float("inf"))
          for w in outcome.results.get("faults", []) if w.get("start") is not None]  # fmt: skip
    return any(a0 < b1 and b0 < a1 for i, (a0, a1) in enumerate(ws) for b0, b1 in ws[i + 1 :])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bugs", default=",".join(BUG_CATALOG), help="comma-separated bug names")
    p.add_argument(
        "--only",
        choices=("minimal", "removed", "quiet", "random"),
        action="append",
        help="run only these parts (repeatable)",
    )
    p.add_argument("--seeds", type=int, default=5, help="seeds per removed-op schedule")
    p.add_argument("--quiet-runs", type=int, default=10, help="runs per bug with no faults")
    p.add_argument("--random-runs", type=int, default=50, help="random-fault runs, no bug")
    p.add_argument("--depth-time", type=float, default=YARDSTICK.time_limit,
                   help="seconds of load per removed-op, quiet and random run")  # fmt: skip
    p.add_argument("--first-seed", type=int, default=1, help="seed of the first run of a cell")
    p.add_argument("--without", default=None,
                   help="removed-op cells only for these op numbers (1-based, comma-separated)")
    p.add_argument("--workloads", default="register,set",
                   help="workloads of the random runs (split --random-runs between them)")
    p.add_argument("--store", default=None, help="where runs are kept (default: a temp dir)")
    p.add_argument("--cluster", type=int, choices=range(len(CLUSTERS)), default=0,
                   help="which cluster (subnet, prefix) to use: 0 to 3")  # fmt: skip
    args = p.parse_args(argv)
    parts = set(args.only or ("minimal", "removed", "quiet", "random"))
    bugs = [BUG_CATALOG[b] for b in args.bugs.split(",") if b]
    logging.basicConfig(level=logging.WARNING)
    base = Path(args.store or tempfile.mkdtemp(prefix="bugkv-depth-"))
    cluster_state = str(base / "cluster")
    provider = get_provider("local")
    cluster = CLUSTERS[args.cluster]
    provider.up(ClusterSpec(nodes=len(NODES), name="bugkv-depth", state_dir=cluster_state,
                            options=cluster))  # fmt: skip
    common: dict[str, Any] = {"store": str(base / "store"), "cluster_state": cluster_state,
              "cluster_options": cluster}  # fmt: skip
    rows: list[dict[str, Any]] = []

    def cell(name: str, outcomes: list[RunOutcome], expect: str, t0: float,
             extra: dict[str, Any] | None = None) -> None:  # fmt: skip
        row = {"cell": name, "expect": expect, **_tally(outcomes),
               "wall_seconds": round(time.monotonic() - t0, 1), **(extra or {})}  # fmt: skip
        rows.append(row)
        ok = row[expect] == len(outcomes)
        print(f"{name:58s} valid {row['valid']:3d}  invalid {row['invalid']:3d}  "
              f"unknown {row['unknown']:3d}  expect {expect:7s} {'ok' if ok else 'MISS'}  "
              f"{row['wall_seconds']:7.1f} s", flush=True)  # fmt: skip

    def runs(
        bug: Bug, steps: list[dict[str, Any]], seeds: range, *, with_bug: bool = True,
        time_limit: float | None = None,
    ) -> list[RunOutcome]:
        return [
            run_once(options=bug.suite_options(with_bug=with_bug), workload=bug.workload,
                     steps=steps, seed=seed, time_limit=time_limit or bug.time_limit, **common)
            for seed in seeds
        ]  # fmt: skip

    first = args.first_seed

    try:
        for bug in bugs:
            if "minimal" in parts:
                t0 = time.monotonic()
                cell(f"{bug.name}: minimal schedule", runs(bug, bug.steps(), range(1, 2)),
                     "invalid", t0)  # fmt: skip
                t0 = time.monotonic()
                o = runs(bug, bug.steps(), range(1, 2), with_bug=False)
                cell(f"{bug.name}: minimal schedule, no bug flag", o, "valid", t0)
            if "removed" in parts and bug.depth > 1:
                for i in range(bug.depth):
                    if args.without and str(i + 1) not in args.without.split(","):
                        continue
                    t0 = time.monotonic()
                    o = runs(bug, bug.without(i), range(first, first + args.seeds),
                             time_limit=args.depth_time)  # fmt: skip
                    name = f"{bug.name}: without op {i + 1} ({bug.schedule[i]['f']})"
                    cell(name, o, "valid", t0)
            if "quiet" in parts:
                t0 = time.monotonic()
                o = runs(bug, [], range(first, first + args.quiet_runs), time_limit=args.depth_time)
                cell(f"{bug.name}: no faults", o, "valid", t0)
        if "random" in parts:
            workloads = args.workloads.split(",")
            for i, workload in enumerate(workloads):
                t0 = time.monotonic()
                n = args.random_runs // len(workloads) + (i < args.random_runs % len(workloads))
                o = [
                    run_once(options={}, workload=workload, steps=None, seed=seed,
                             time_limit=args.depth_time, faults=RANDOM_KINDS,
                             interval=YARDSTICK.interval, overlap=YARDSTICK.overlap,
                             fault_ops=YARDSTICK.fault_ops, **common)
                    for seed in range(first, first + n)
                ]  # fmt: skip
                windows = Counter(w["kind"] for r in o for w in r.results.get("faults", []))
                cell(f"no bug: random faults ({workload}, {','.join(RANDOM_KINDS)}, overlap "
                     f"{YARDSTICK.overlap}, {YARDSTICK.fault_ops} ops)", o, "valid", t0,
                     extra={"fault_windows": dict(windows),
                            "runs_with_overlap": sum(map(_overlapped, o))})  # fmt: skip
    finally:
        provider.down(Path(cluster_state))
        out = Path(__file__).parent / "results"
        out.mkdir(exist_ok=True)
        path = out / f"bugkv_depth-{time.strftime('%Y%m%dT%H%M%S')}-{args.cluster}.json"
        path.write_text(json.dumps({"argv": sys.argv[1:], "rows": rows}, indent=1) + "\n")
        print(f"results: {path}")
    return 0 if all(r[r["expect"]] == len(r["seconds"]) for r in rows) else 1


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench/bugkv_depth.py needs root (a local namespace cluster)")
    sys.exit(main())
