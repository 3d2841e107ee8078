"""ldfi campaigns on bugkv's ``stepdown-applies-tail`` with node agents against without.
Needs root.

Each campaign is ``clew campaign``'s (:func:`harness.campaign.run_campaign`) on a 3-node
local cluster (10.77.53.0/24, brought up here and taken down after), bugkv's set workload
with ``bug=stepdown-applies-tail``, ``--scheduler ldfi`` over kills and partitions (an op
a second, ``--time-limit`` seconds a run), on a fresh store (ldfi's memory starts empty),
until the first invalid run or ``--runs``:

* ``ldfi``: no node agents (ldfi's schedule as it always was);
* ``ldfi+agents``: the same, with node agents (a step that never fires hands every node a
  slice): ldfi hands the agents the ``tail`` class's kill of the successor
  (``nemeses/schedulers/ldfi.py``, ``agent_steps``) once its lineage has that class.

Prints per campaign the runs to the first invalid one, the seconds, how many kills the
agents struck on an election line, and per run its verdict and ldfi's hypotheses (those
handed to the agents marked ``agents``); then the load average. Arms alternate (ldfi,
ldfi+agents, ldfi, ...), seeds ``--first-seed``, +100, ... Rows also go to
``bench/results/ldfi_agents-<time>.json``.

    sudo nice -n 10 .venv/bin/python bench/ldfi_agents.py --campaigns 2 --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from clusters import ClusterSpec, get_provider
from harness.campaign import run_campaign
from harness.spec import load_spec

OPTIONS = {"subnet": "10.77.53.0/24", "prefix": "lab-", "bridge": "lab-br0"}


def agent_kills(campaign_dir: Path) -> list[dict[str, Any]]:
    """The kills the campaign's node agents struck on an election line."""
    out = []
    for journal in sorted(campaign_dir.glob("runs/*/*/nodes/*/agent.jsonl")):
        if journal.parents[2].is_symlink():  # runs/<test>/latest: a run counted already
            continue
        for line in journal.read_text().splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("e") == "strike" and r.get("trigger") == "log" and "skipped" not in r:
                out.append(r)
    return out


def run_rows(campaign_dir: Path, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Per run of a campaign: its verdict and ldfi's hypotheses (class, actions, whether
    handed to the agents, the successor they killed)."""
    out = []
    for r in data["runs"]:
        hyps = []
        for line in (campaign_dir / r["run_dir"] / "faults.jsonl").read_text().splitlines():
            rec = json.loads(line)
            if rec.get("event") == "scheduler":
                hyps = [f"{h['class']} {h['hypothesis']}" + (" (agents)" if "agents" in h else "")
                        for h in rec.get("hypotheses", [])]  # fmt: skip
        out.append({"valid": r["valid"], "hypotheses": hyps})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--campaigns", type=int, default=2, help="campaigns per arm")
    ap.add_argument("--runs", type=int, default=5, help="runs per campaign at most")
    ap.add_argument("--time-limit", type=float, default=12.0)
    ap.add_argument("--first-seed", type=int, default=1)
    args = ap.parse_args()
    provider = get_provider("local")
    rows = []
    with tempfile.TemporaryDirectory(prefix="clew-bench-ldfi-agents-") as tmp:
        state = Path(tmp) / "state"
        provider.up(ClusterSpec(nodes=3, name="bench-ldfi-agents", state_dir=str(state),
                                options=OPTIONS))  # fmt: skip
        try:
            for c in range(args.campaigns):
                for arm in ("ldfi", "ldfi+agents"):
                    seed = args.first_seed + 100 * c
                    spec = load_spec(
                        suite="bugkv", workload="set", nodes=3, time_limit=args.time_limit,
                        seed=seed, faults="kill,partition", scheduler="ldfi", interval=1.0,
                        options={"bug": "stepdown-applies-tail"},
                        cluster_state_dir=str(state), cluster_options=OPTIONS,
                        recovery_time=1.0, fault_lease=3.0,
                        agent_watch=arm == "ldfi+agents",
                        store=str(Path(tmp) / f"{arm}-{c}"),
                    )  # fmt: skip
                    t0 = time.monotonic()
                    result = run_campaign(spec, runs=args.runs, budget=1800)
                    data = result.to_json()
                    kills = agent_kills(result.directory)
                    row = {"arm": arm, "seed": seed, "runs_made": data["runs_made"],
                           "runs_to_detection": data.get("runs_to_detection"),
                           "seconds": round(time.monotonic() - t0, 1),
                           "agent_kills": len(kills),
                           "runs": run_rows(result.directory, data),
                           "load1": round(os.getloadavg()[0], 1)}  # fmt: skip
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            provider.down(state)
            stamp = time.strftime("%Y%m%dT%H%M%S")
            out = Path(__file__).parent / "results" / f"ldfi_agents-{stamp}.json"
            out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1) + "\n")
            print(f"rows in {out}")


if __name__ == "__main__":
    main()
