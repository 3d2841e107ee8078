"""Does the adaptive agent's memory, carried across campaigns, make later campaigns faster
on bugs it did not train on? (root; its own local cluster, 10.77.242.0/24 unless
``--subnet``)

Train: a fresh memory, then ``--train-campaigns`` campaigns on each ``--train`` bug, the
memory carried from campaign to campaign (it learns bugkv, not one trigger). Test: for each
``--test`` bug and each seed, two campaigns with the same seed — one starting from the
trained memory (restored before each campaign, so test campaigns do not teach each other),
one from a fresh memory. Every campaign has the yardstick's parameters (``YARDSTICK`` in
``harness/dbs/bugkv_bugs.py``: every local fault kind, an op a second, 10 fault ops and 12 s
per run, the bug's workload; ``docs/bugkv.md``) and a cap of ``--runs`` runs; a campaign
that finds nothing counts as ``runs + 1``.

It prints, per test bug, the median runs and seconds to detection of each arm with their
spread, the detections per run and a one-sided Mann-Whitney U (trained < fresh) as a
Markdown table (:func:`table`),
and writes the rows,
the trained memory's size and the trained memory itself to
``bench/results/adaptive-memory-<time>-<subnet's third octet>.json``.

    sudo .venv/bin/python bench/adaptive_memory.py --train lease-wall-clock,vote-ignores-log \\
        --test commit-unchecked,stepdown-applies-tail --test-campaigns 3 --runs 6

To test on two clusters at once, train once (``--test ''``), then run one process per test
bug, each on its own subnet, from that file's memory: ``--trained FILE --subnet
10.77.243.0/24``. ``--table FILE... [--against BUGS_FILE...]`` prints the test campaigns of
several results files as one Markdown table (and the random and reset-adaptive campaigns
of ``bench/bugs.py`` results on the same bugs), without a cluster; docs/schedulers.md
has the figure of 2026-12-05 and its commands.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clusters import ClusterSpec, get_provider
from harness.campaign import run_campaign
from harness.campaign_table import detections_per_run
from harness.dbs.bugkv_bugs import BUG_CATALOG, NODES, YARDSTICK
from harness.spec import load_spec
from nemeses.schedulers import memory
from nemeses.schedulers.adaptive import settle_memory


def cluster_options(subnet: str) -> dict[str, str]:
    """The local cluster's options on ``subnet`` (its names derived from the subnet's third
    octet, so that two processes on two subnets do not collide)."""
    tag = subnet.split(".")[2]
    return {"subnet": subnet, "prefix": f"hm{tag}-", "bridge": f"hm{tag}-br0"}


def campaign(bug_name: str, seed: int, store: Path, state: Path, runs: int,
             cluster: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """One adaptive campaign on ``bug_name`` (the memory as it is in ``store``); its row."""
    bug = BUG_CATALOG[bug_name]
    spec = load_spec(**YARDSTICK.spec_args(bug), scheduler="adaptive", seed=seed,
                     store=str(store), cluster_state_dir=str(state),
                     cluster_options=cluster)  # fmt: skip
    res = run_campaign(spec, runs=runs, budget=3600)
    data = res.to_json()
    return {
        "bug": bug_name, "depth": bug.depth, "seed": seed, "config_hash": res.config_hash,
        "clew_commit": res.commit, "runs_to_detection": res.runs_to_detection,
        "seconds_to_detection": res.seconds_to_detection,
        "fault_ops_to_detection": data.get("fault_ops_to_detection"), "cap_runs": runs,
        "runs": len(res.runs), "fault_ops": sum(r.fault_ops for r in res.runs),
        "run_seconds": [r.wall_seconds for r in res.runs],
    }  # fmt: skip


def _quartiles(xs: list[float]) -> str:
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
    return f"{q[1]:g} [{q[0]:g}-{q[2]:g}]"


def table(results: Sequence[dict[str, Any]], against: Sequence[Path] = ()) -> list[str]:
    """A Markdown table of the test campaigns in ``results`` (this benchmark's results, as
    its files hold them): per test bug, the fresh arm (every result's, pooled: a fresh
    memory is the same treatment in each) and each result's trained arm, labelled by the
    runs and anomalies its memory was trained on; and the campaigns of ``bench/bugs.py``
    results files ``against`` on the same bugs (random, adaptive with its memory reset).
    Median [IQR] runs to detection (a campaign that found nothing counts ``cap + 1``) and
    seconds (one that found nothing counts the seconds it ran), with one-sided
    Mann-Whitney U tests of each trained arm against the pooled fresh one (where no
    result has a fresh arm, against the yardstick's campaigns with the memory reset: the
    same treatment) and against ``random``."""
    from scipy.stats import mannwhitneyu

    arms: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for data in results:
        mem = data.get("trained_memory") or {}
        label = f"trained ({mem.get('judged')} runs, {mem.get('anomalies')} invalid)"
        for r in data["rows"]:
            if r["phase"] == "test":
                arms.setdefault((r["bug"], "fresh" if r["arm"] == "fresh" else label),
                                []).append(r)  # fmt: skip
    tested = {b for b, _ in arms}
    for f in against:
        for r in json.loads(f.read_text()):
            if r["bug"] in tested and r["scheduler"] in ("random", "adaptive"):
                name = "random" if r["scheduler"] == "random" else "adaptive, reset (yardstick)"
                arms.setdefault((r["bug"], name), []).append(r)

    def runs(r: dict[str, Any]) -> int:
        return r["runs_to_detection"] or r["cap_runs"] + 1

    def secs(r: dict[str, Any]) -> float:
        return r["seconds_to_detection"] or sum(x or 0 for x in r["run_seconds"])

    def p_less(rs: list[dict[str, Any]], other: list[dict[str, Any]]) -> str:
        if not rs or not other:
            return "-"
        u = mannwhitneyu([runs(r) for r in rs], [runs(r) for r in other], alternative="less")
        return f"{u.pvalue:.2g}"

    order = ["random", "adaptive, reset (yardstick)", "fresh"]
    out = ["| test bug | arm | campaigns | not found | runs to detection | seconds "
           "| detections per run | p (U < fresh) | p (U < random) |",
           "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for bug in sorted(tested):
        fresh, rand = arms.get((bug, "fresh"), []), arms.get((bug, "random"), [])
        fresh = fresh or arms.get((bug, "adaptive, reset (yardstick)"), [])
        keys = sorted((a for b, a in arms if b == bug),
                      key=lambda a: (order.index(a) if a in order else len(order), a))  # fmt: skip
        for arm in keys:
            rs = arms[bug, arm]
            trained = arm.startswith("trained")
            out.append(f"| {bug} | {arm} | {len(rs)} | "
                       f"{sum(1 for r in rs if not r['runs_to_detection'])} | "
                       f"{_quartiles([runs(r) for r in rs])} | "
                       f"{_quartiles([round(secs(r)) for r in rs])} | "
                       f"{detections_per_run(rs):.3f} | "
                       f"{p_less(rs, fresh) if trained else '-'} | "
                       f"{p_less(rs, rand) if arm != 'random' else '-'} |")  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", default="lease-wall-clock,vote-ignores-log,buffered-log")
    p.add_argument("--test", default="commit-unchecked,stepdown-applies-tail,lease-ticks")
    p.add_argument("--train-campaigns", type=int, default=1, help="per train bug")
    p.add_argument("--test-campaigns", type=int, default=3, help="seeds per test bug and arm")
    p.add_argument("--runs", type=int, default=6, help="cap on runs per campaign")
    p.add_argument("--subnet", default="10.77.242.0/24", help="the local cluster's subnet")
    p.add_argument("--trained", type=Path, default=None,
                   help="skip training: test from the memory in this results file")
    p.add_argument("--first-seed", type=int, default=0, help="test seeds: N*1000 from here")
    p.add_argument("--arms", default="trained,fresh",
                   help="which test arms to run (a fresh arm is the memory-reset campaign of "
                        "the yardstick: another file's may serve)")
    p.add_argument("--table", type=Path, nargs="+", default=None, metavar="FILE",
                   help="print the test campaigns of these results files as a table, and exit")
    p.add_argument("--against", type=Path, nargs="*", default=[], metavar="FILE",
                   help="with --table: bench/bugs.py results files whose random and adaptive "
                        "campaigns on the same bugs join the table")
    args = p.parse_args(argv)
    if args.table:
        print("\n".join(table([json.loads(f.read_text()) for f in args.table],
                               args.against)))  # fmt: skip
        return 0
    if os.geteuid() != 0:
        sys.exit("bench/adaptive_memory.py needs root (a local namespace cluster)")
    logging.basicConfig(level=logging.WARNING)
    cluster = cluster_options(args.subnet)
    base = Path(tempfile.mkdtemp(prefix="clew-adaptive-memory-"))
    state = base / "cluster"
    store = base / "store"
    path = memory.memory_path("adaptive", store, "bugkv")
    provider = get_provider("local")
    provider.up(ClusterSpec(nodes=len(NODES), name="admem", state_dir=str(state),
                            options=cluster))  # fmt: skip
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    tag = args.subnet.split(".")[2]
    out = out_dir / f"adaptive-memory-{time.strftime('%Y%m%dT%H%M%S')}-{tag}.json"
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    result: dict[str, Any] = {"args": {**vars(args), "trained": str(args.trained or "")},
                              "rows": rows}  # fmt: skip
    try:
        memory.reset(path)
        if args.trained is not None:
            trained = json.loads(args.trained.read_text())["memory"]
        else:
            for name in [n for n in args.train.split(",") if n]:
                for c in range(args.train_campaigns):
                    row = campaign(name, 100_000 + c * 1000, store, state, args.runs, cluster)
                    rows.append({**row, "phase": "train", "arm": "training"})
                    print(f"train {name} campaign {c}: runs to detection "
                          f"{row['runs_to_detection']}", flush=True)  # fmt: skip
                    out.write_text(json.dumps(result, indent=1) + "\n")
            # the last campaign's last run (invalid, when it found its bug) is still pending
            settle_memory(store, "bugkv")
            trained = memory.load(path)
        result["memory"] = trained
        result["trained_memory"] = {"states": len(trained.get("visits", {})),
                                    "runs": trained.get("runs"),
                                    "judged": trained.get("judged"),
                                    "anomalies": trained.get("anomalies")}  # fmt: skip
        print(f"trained memory: {result['trained_memory']}", flush=True)
        for name in [n for n in args.test.split(",") if n]:
            for c in range(args.first_seed, args.first_seed + args.test_campaigns):
                for arm in args.arms.split(","):
                    memory.reset(path)
                    if arm == "trained":
                        memory.save(path, trained)
                    row = campaign(name, c * 1000, store, state, args.runs, cluster)
                    rows.append({**row, "phase": "test", "arm": arm})
                    print(f"test {name} seed {c * 1000} {arm}: runs to detection "
                          f"{row['runs_to_detection']}", flush=True)  # fmt: skip
                    out.write_text(json.dumps(result, indent=1) + "\n")
        lines = table([result]) if any(r["phase"] == "test" for r in rows) else []
        result["table"] = lines
        result["seconds"] = round(time.monotonic() - t0)
        out.write_text(json.dumps(result, indent=1) + "\n")
        for line in lines:
            print(line)
    finally:
        provider.down(state)
        shutil.rmtree(base, ignore_errors=True)
        print(f"results: {out}; {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
