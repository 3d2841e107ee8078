"""A campaign with a fault triggered by etcd's own log line against offset-based random
strikes. Needs root and etcd.

Both campaigns are ``clew campaign``'s (:func:`harness.campaign.run_campaign`) on a 3-node
local cluster (10.77.251.0/24, brought up here and taken down after), etcd's register
workload, ``--runs`` runs each of ``--time-limit`` seconds:

* ``random``: the seeded random scheduler kills random targets (one, a minority, a
  majority, all, the primaries) every ``--interval`` seconds, restarting them after as
  long (offset-based strikes);
* ``agent``: every node's agent kills its member at ``--interval`` seconds (each restarted
  1 s later by its node), so that a fresh election follows; from then on every node's
  agent kills its own member the moment etcd logs that it became leader
  (``became-leader``), once per run, restarting it 1 s later: each new leader dies right
  after its election.

Prints, per campaign, the runs, the runs to the first invalid one (none: etcd 3.4 is not
known to lose anything to kills), and for the agent campaign how many triggered kills
struck and how long after etcd stamped the election line.

    sudo .venv/bin/python bench/agent_campaign.py [--runs 3] [--time-limit 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from clusters import ClusterSpec, get_provider
from harness.campaign import run_campaign
from harness.spec import load_spec

OPTIONS = {"subnet": "10.77.251.0/24", "prefix": "nab-", "bridge": "nab-br0"}


def agent_steps(interval: float) -> list[dict[str, Any]]:
    """The agent campaign's steps (see the module docstring)."""
    steps: list[dict[str, Any]] = []
    for n in ("n1", "n2", "n3"):
        steps += [
            {"node": n, "f": "start-kill", "at": interval, "hold": 1.0},
            {"node": n, "f": "start-kill", "on": {"log": "became-leader"}, "from": interval,
             "hold": 1.0},
        ]  # fmt: skip
    return steps


def _ts_ns(line: str) -> int:
    ts = json.loads(line)["ts"]
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1e9)


def triggered_strikes(campaign_dir: Path) -> list[float]:
    """Milliseconds from etcd's stamp on the election line to the agent's kill, for every
    log-triggered strike of the campaign's runs."""
    out = []
    for journal in sorted(campaign_dir.glob("runs/*/*/nodes/*/agent.jsonl")):
        if journal.parents[2].is_symlink():
            continue  # runs/<test>/latest: the last run again
        for line in journal.read_text().splitlines():
            r = json.loads(line)
            if r.get("e") == "strike" and r.get("trigger") == "log" and "skipped" not in r:
                out.append((r["start_wall"] - _ts_ns(r["line"])) / 1e6)
    return out


def _kill_windows(run_dir: Path) -> int:
    """The kill windows (targets of each) in a run's results."""
    results = json.loads((run_dir / "results.json").read_text())
    return sum(len(w["targets"]) for w in results.get("faults", []) if w["kind"] == "kill")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=8.0)
    ap.add_argument("--interval", type=float, default=2.0)
    args = ap.parse_args()
    provider = get_provider("local")
    with tempfile.TemporaryDirectory(prefix="clew-bench-agent-campaign-") as tmp:
        state = Path(tmp) / "state"
        provider.up(ClusterSpec(nodes=3, name="bench-agents", state_dir=str(state),
                                options=OPTIONS))  # fmt: skip
        try:
            common = {
                "suite": "etcd", "nodes": 3, "time_limit": args.time_limit, "seed": 1,
                "interval": args.interval, "cluster_state_dir": str(state),
                "cluster_options": OPTIONS, "recovery_time": 1.0, "fault_lease": 3.0,
            }  # fmt: skip
            for name, extra in (
                ("random", {"faults": "kill"}),
                ("agent", {"faults": "none", "agent": agent_steps(args.interval)}),
            ):
                spec = load_spec(**common, **extra, store=str(Path(tmp) / name))
                result = run_campaign(spec, runs=args.runs, budget=3600)
                data = result.to_json()
                found = data.get("runs_to_detection")
                verdicts = Counter(str(r["valid"]) for r in data["runs"])
                windows = sum(_kill_windows(result.directory / r["run_dir"]) for r in data["runs"])
                line = (f"{name:6}: {data['runs_made']} runs ({dict(verdicts)}), runs to the "
                        f"first invalid: {found if found is not None else 'none'}; {windows} "
                        "kill windows on the ledger")  # fmt: skip
                if name == "agent":
                    lags = triggered_strikes(result.directory)
                    if lags:
                        line += (f"; {len(lags)} kills triggered by an election line, "
                                 f"{statistics.median(lags):.1f} ms (median; max "
                                 f"{max(lags):.1f}) after etcd stamped it")  # fmt: skip
                print(f"{line}; load {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            provider.down(state)


if __name__ == "__main__":
    main()
