"""Node agents on a real 3-node local cluster running bugkv (issue 21).

n1 kills its server 2 s into the run (n1 tends to lead: the first node of the cluster
campaigns first), restarted by n1 itself 1 s later; from 2.5 s every node kills its own
server the moment that server logs ``term N: elected leader ...`` (bugkv's
``became-leader`` pattern), once, restarted 1 s later. So the leader elected after the
first kill dies right after its election line. The run is valid (the correct server) and
ends healed; the nodes' records show the triggered kill struck within 50 ms of the line
(by the server's own stamp on it), every agent saw the election lines, and the ledger has
the agents' kill windows.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.runner import run_test
from harness.spec import load_spec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(shutil.which("python3") is None, reason="the nodes need python3"),
]

CLUSTER = {"subnet": "10.77.248.0/24", "prefix": "bag-", "bridge": "bag-br0"}
NODES = ("n1", "n2", "n3")
TIME_LIMIT = 8.0
STEPS = [{"node": "n1", "f": "start-kill", "at": 2.0, "hold": 1.0}] + [
    {"node": n, "f": "start-kill", "on": {"log": "became-leader"}, "from": 2.5, "until": 7.0,
     "hold": 1.0}
    for n in NODES
]  # fmt: skip


@pytest.fixture(scope="module")
def cluster_state(local_cluster: Any) -> Iterator[Path]:
    with local_cluster("bugkv-agents", len(NODES), CLUSTER) as state:
        yield state


def journal(path: Path) -> list[dict[str, Any]]:
    """The records of a journal file; every line must be a whole JSON object."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_new_leader_dies_right_after_its_election_line(
    cluster_state: Path, tmp_path: Path
) -> None:
    spec = load_spec(
        suite="bugkv", workload="register", nodes=len(NODES), time_limit=TIME_LIMIT,
        faults="none", seed=5, store=str(tmp_path), cluster_state_dir=str(cluster_state),
        cluster_options=CLUSTER, recovery_time=1.0, agent=STEPS, fault_lease=3.0,
    )  # fmt: skip
    outcome = run_test(spec)
    run = outcome.run_dir
    assert outcome.results["valid"] is True, outcome.results.get("valid")
    assert outcome.results["heal_verified"] is True
    records = {n: journal(run / "nodes" / n / "agent.jsonl") for n in NODES}
    strikes = [r for rs in records.values() for r in rs if r["e"] == "strike"]
    struck = [r for r in strikes if "skipped" not in r]
    (timed,) = [r for r in struck if r["trigger"] == "at"]
    assert timed["status"] == 0 and timed["late_ms"] < 20, timed
    triggered = [r for r in struck if r["trigger"] == "log"]
    assert triggered, strikes
    lags = []
    for r in triggered:
        assert r["status"] == 0 and "elected leader" in r["line"], r
        # The server stamps each line with its wall clock (seconds, 3 decimals).
        lags.append((r["start_wall"] - float(r["line"].split()[0]) * 1e9) / 1e6)
    assert max(lags) < 50, lags
    seen = [r for rs in records.values() for r in rs if r["e"] == "log"]
    assert any("became-leader" in r["patterns"] for r in seen), seen
    assert any("term-changed" in r["patterns"] for r in seen), seen
    windows = [(w["kind"], tuple(w["targets"])) for w in outcome.results["faults"]]
    assert windows.count(("kill", ("n1",))) >= 1 and len(windows) == len(struck), windows
    print(f"\n{len(triggered)} kills triggered by an election line, {min(lags):.1f}-"
          f"{max(lags):.1f} ms after the server stamped it (stamped to the ms); offset kill "
          f"{timed['late_ms']:.2f} ms late; load {os.getloadavg()[0]:.1f}")  # fmt: skip
