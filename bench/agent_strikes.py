"""How close to its planned moment a kill lands: struck by the node's agent (handed over
before the load) or pushed by the controller over SSH at that moment. Needs root and etcd.

Each run is a real ``clew test etcd`` run on a 3-node local cluster (brought up here, on
10.77.251.0/24, and taken down after): a kill of n1's member at ``--at`` seconds, restarted
one second later. Lateness is measured the same way for both: by n1's agent, which watches
the member's process (every 10 ms) and journals the moment it is gone, on the run's clock
(nodes/n1/agent.jsonl); for agent strikes the agent's own record of when it started the
kill script is printed too. Prints one line per run and the medians.

    sudo .venv/bin/python bench/agent_strikes.py [--runs 3] [--at 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from clusters import ClusterSpec, get_provider
from harness.runner import run_test
from harness.spec import load_spec

OPTIONS = {"subnet": "10.77.251.0/24", "prefix": "nab-", "bridge": "nab-br0"}
#: A step on n3 that never fires: it makes every node watch and journal (n1 included).
WATCH_ONLY = {"node": "n3", "f": "start-kill", "on": {"log_regex": "^never-clew-bench$"}}


def _journal(run: Path, node: str) -> list[dict[str, Any]]:
    text = (run / "nodes" / node / "agent.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def one_run(state: Path, store: Path, how: str, at: float, seed: int) -> dict[str, float]:
    """One run killing n1 at ``at`` (``how``: ``agent`` or ``controller``); lateness in ms."""
    kill = {"node": "n1", "f": "start-kill", "at": at, "hold": 1.0}
    steps = [kill, WATCH_ONLY] if how == "agent" else [WATCH_ONLY]
    schedule = [] if how == "agent" else [
        {"at": at, "f": "start-kill", "value": {"targets": "nodes", "nodes": ["n1"]}},
        {"at": at + 1.0, "f": "stop-kill", "value": None},
    ]  # fmt: skip
    spec = load_spec(
        suite="etcd", nodes=3, time_limit=at + 4.0, faults="none", seed=seed, store=str(store),
        cluster_state_dir=str(state), cluster_options=OPTIONS, recovery_time=1.0,
        agent=steps, fault_lease=3.0,
    )  # fmt: skip
    outcome = run_test(spec, schedule=schedule)
    records = _journal(outcome.run_dir, "n1")
    gone = [r for r in records if r["e"] == "process" and r["change"] == "exit"]
    out = {"gone_ms": (gone[0]["run"] - at) * 1e3 if gone else float("nan")}
    struck = [r for r in records if r["e"] == "strike" and "skipped" not in r]
    if struck:
        out["script_start_ms"] = struck[0]["late_ms"]
    out["valid"] = float(outcome.valid is True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--at", type=float, default=3.0)
    args = ap.parse_args()
    provider = get_provider("local")
    results: dict[str, list[dict[str, float]]] = {"agent": [], "controller": []}
    with tempfile.TemporaryDirectory(prefix="clew-bench-agents-") as tmp:
        state = Path(tmp) / "state"
        provider.up(ClusterSpec(nodes=3, name="bench-agents", state_dir=str(state),
                                options=OPTIONS))  # fmt: skip
        try:
            for i in range(args.runs):
                for how in ("agent", "controller"):
                    r = one_run(state, Path(tmp) / "store", how, args.at, seed=i + 1)
                    results[how].append(r)
                    extra = (f", kill script started {r['script_start_ms']:.3f} ms late"
                             if "script_start_ms" in r else "")  # fmt: skip
                    print(f"run {i + 1} {how:10}: n1's member gone {r['gone_ms']:.1f} ms after "
                          f"its planned time{extra}; valid {bool(r['valid'])}; load "
                          f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        finally:
            provider.down(state)
    for how, rs in results.items():
        gone = statistics.median(r["gone_ms"] for r in rs)
        print(f"{how:10}: median {gone:.1f} ms from the planned time to the member gone "
              f"({len(rs)} runs)")  # fmt: skip


if __name__ == "__main__":
    main()
