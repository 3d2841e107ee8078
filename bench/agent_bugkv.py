"""A seeded bugkv bug against a fault triggered by the database's own log line, and against
offset-based random strikes. Needs root.

Every campaign is ``clew campaign``'s (:func:`harness.campaign.run_campaign`, until the
first invalid run) on a 3-node local cluster (10.77.249.0/24, brought up here and taken
down after), bugkv's set workload with ``--bug`` (default ``stepdown-applies-tail``: a
leader that steps down applies its whole log, and its state machine then skips the new
leader's real entries at those indices), ``--runs`` runs of ``--time-limit`` seconds:

* ``agent``: n1 (the first leader: the first node campaigns first) pauses its server at
  ``--pause-at`` s for ``--pause-hold`` s (offset-based, struck by the node): clients'
  requests queue up at it, and once resumed it appends them as leader, learns of the new
  leader and steps down; meanwhile n2 or n3 was elected, and **its own agent kills it
  ``--delay`` s after its election line** (``term N: elected leader ...``, bugkv's
  ``became-leader`` pattern), restarting it 1 s later, so the old leader may lead again
  with the state it got wrong;
* ``random``: the seeded random scheduler strikes kills and pauses (random targets: one,
  a minority, a majority, all, the primaries) every ``--interval`` s, offset-based;
* ``aimed``: the same faults struck by the controller at fixed offsets, aimed by hand:
  it pauses the primary at ``--pause-at`` s and resumes it ``--pause-hold`` s later, and
  kills the primary (whoever the nodes say leads then) ``--delay`` + 0.5 s after the pause
  (0.5 s: about when the new leader is elected), restarting it 1 s later (a run of
  :func:`harness.runner.run_test` with that schedule per seed, until the first invalid);
* ``agent-correct``: the agent arm on the correct server (no bug): a control, that the
  schedule alone makes no run invalid.

Each arm is run as ``--campaigns`` campaigns (seeds 1, 101, ...). Prints, per campaign,
its runs and the runs to the first invalid one; for the agent arm, per campaign, how many
runs struck the triggered kill and in how many the old leader applied its tail (its log's
``bug ...: applying`` line). Writes the figures to bench/results/agent_bugkv-<time>.json.

    sudo .venv/bin/python bench/agent_bugkv.py [--runs 5] [--campaigns 2] \
        [--arms agent,random,aimed,agent-correct] [--bug stepdown-applies-tail]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from clusters import ClusterSpec, get_provider
from harness.campaign import run_campaign
from harness.runner import run_test
from harness.spec import load_spec

OPTIONS = {"subnet": "10.77.249.0/24", "prefix": "bab-", "bridge": "bab-br0"}
RESULTS = Path(__file__).parent / "results"


def agent_steps(pause_at: float, pause_hold: float, delay: float) -> list[dict[str, Any]]:
    """The agent arm's steps (see the module docstring)."""
    pause = {"node": "n1", "f": "start-pause", "at": pause_at, "hold": pause_hold}
    kills = [{"node": n, "f": "start-kill", "on": {"log": "became-leader"}, "from": pause_at,
              "delay": delay, "hold": 1.0} for n in ("n2", "n3")]  # fmt: skip
    return [pause, *kills]


def agent_figures(run_dir: Path) -> dict[str, Any]:
    """What the agents did in one run: the triggered kills struck (node, and ms late on
    their planned time: the line seen plus the delay), and whether n1 stepped down and
    applied a tail then."""
    kills = []
    for journal in sorted(run_dir.glob("nodes/*/agent.jsonl")):
        for line in journal.read_text().splitlines():
            r = json.loads(line)
            if r.get("e") == "strike" and r.get("trigger") == "log" and "skipped" not in r:
                kills.append({"node": journal.parent.name, "late_ms": r["late_ms"]})
    n1_log = run_dir / "nodes" / "n1" / "bugkv.log"
    text = n1_log.read_text() if n1_log.exists() else ""
    return {"triggered_kills": kills, "tail_applied": ": applying " in text,
            "stepped_down": "step down (was leader)" in text}  # fmt: skip


def aimed_schedule(pause_at: float, pause_hold: float, delay: float) -> list[dict[str, Any]]:
    """The aimed arm's schedule (``nemeses.schedule`` steps; see the module docstring)."""
    kill_at = pause_at + delay + 0.5
    return [
        {"at": pause_at, "f": "start-pause", "value": {"targets": "primaries"}},
        {"at": pause_at + pause_hold, "f": "stop-pause", "value": None},
        {"at": kill_at, "f": "start-kill", "value": {"targets": "primaries"}},
        {"at": kill_at + 1.0, "f": "stop-kill", "value": None},
    ]


def aimed_campaign(common: dict[str, Any], steps: list[dict[str, Any]], seed: int,
                   runs: int, store: Path) -> dict[str, Any]:  # fmt: skip
    """Runs of ``steps`` (seeds ``seed``, ``seed + 1``, ...) until the first invalid one,
    counted as a campaign counts them."""
    made: list[Any] = []
    started = time.monotonic()
    found, seconds = None, None
    for i in range(runs):
        spec = load_spec(**common, faults="kill,pause", seed=seed + i, store=str(store))
        outcome = run_test(spec, schedule=steps)
        made.append(outcome)
        if outcome.results["valid"] is False:
            found, seconds = i + 1, round(time.monotonic() - started, 3)
            break
    return {
        "runs": len(made),
        "verdicts": dict(Counter(str(o.results["valid"]) for o in made)),
        "runs_to_detection": found, "seconds_to_detection": seconds,
        "causes": [_causes(o.run_dir) for o in made if o.results["valid"] is False],
    }  # fmt: skip


def _causes(run_dir: Path) -> list[str]:
    """The invalid checkers' causes in a run's results."""
    results = json.loads((run_dir / "results.json").read_text())
    return [str(c.get("cause")) for c in results["checkers"].values() if c.get("valid") is False]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--campaigns", type=int, default=2)
    ap.add_argument("--arms", default="agent,random")
    ap.add_argument("--bug", default="stepdown-applies-tail")
    ap.add_argument("--time-limit", type=float, default=8.0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--pause-at", type=float, default=2.0)
    ap.add_argument("--pause-hold", type=float, default=1.5)
    ap.add_argument("--delay", type=float, default=2.0)
    args = ap.parse_args()
    provider = get_provider("local")
    out: dict[str, Any] = {"args": vars(args), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                           time.gmtime()), "campaigns": []}  # fmt: skip
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="clew-bench-agent-bugkv-") as tmp:
        state = Path(tmp) / "state"
        provider.up(ClusterSpec(nodes=3, name="bench-agent-bugkv", state_dir=str(state),
                                options=OPTIONS))  # fmt: skip
        try:
            common = {
                "suite": "bugkv", "workload": "set", "nodes": 3,
                "time_limit": args.time_limit, "cluster_state_dir": str(state),
                "cluster_options": OPTIONS, "recovery_time": 1.0, "fault_lease": 3.0,
                "options": {"bug": args.bug},
            }  # fmt: skip
            arms = {
                "agent": {"faults": "none",
                          "agent": agent_steps(args.pause_at, args.pause_hold, args.delay)},
                "random": {"faults": "kill,pause", "interval": args.interval},
            }  # fmt: skip
            arms["agent-correct"] = {**arms["agent"], "options": {}}
            row: dict[str, Any]
            for c in range(args.campaigns):
                for name in args.arms.split(","):
                    seed = 1 + 100 * c
                    load = os.getloadavg()[0]
                    store = Path(tmp) / f"{name}-{c}"
                    if name == "aimed":
                        steps = aimed_schedule(args.pause_at, args.pause_hold, args.delay)
                        row = {"arm": name, "seed": seed, "schedule": steps,
                               **aimed_campaign(common, steps, seed, args.runs, store),
                               "load_before": round(load, 1),
                               "load_after": round(os.getloadavg()[0], 1)}  # fmt: skip
                        out["campaigns"].append(row)
                        print(json.dumps(row), flush=True)
                        continue
                    spec = load_spec(**{**common, **arms[name]}, seed=seed,
                                     store=str(store))  # fmt: skip
                    result = run_campaign(spec, runs=args.runs, budget=3600)
                    data = result.to_json()
                    verdicts = Counter(str(r["valid"]) for r in data["runs"])
                    row = {
                        "arm": name, "seed": seed, "runs": data["runs_made"],
                        "verdicts": dict(verdicts),
                        "runs_to_detection": data.get("runs_to_detection"),
                        "seconds_to_detection": data.get("seconds_to_detection"),
                        "load_before": round(load, 1), "load_after": round(os.getloadavg()[0], 1),
                    }  # fmt: skip
                    row["causes"] = [_causes(result.directory / r["run_dir"])
                                     for r in data["runs"] if r["valid"] is False]  # fmt: skip
                    if name.startswith("agent"):
                        row["per_run"] = [agent_figures(result.directory / r["run_dir"])
                                          for r in data["runs"]]  # fmt: skip
                    out["campaigns"].append(row)
                    print(json.dumps(row), flush=True)
        finally:
            provider.down(state)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"agent_bugkv-{stamp}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
