"""ldfi with node agents on a real 3-node local cluster running bugkv (issue 21).

One run of ``--scheduler ldfi`` over partitions, with node agents (a step that never
fires hands every node a slice, so every node watches its server's log and journals).
ldfi watches the load for 1 s, then strikes its two cheapest hypotheses: cut the leader
off (the reads' class), then cut a follower off and, while it is cut, the leader (the
``behind`` class). The first cut makes bugkv elect a successor, whose ``term N: elected
leader ...`` line its agent journals; the second hypothesis's leader is then the node the
agents saw elected, and the test checks, from the run's own records, that its cut struck
the node the agents' journals say led at that moment, and that the ledger says why.
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
from nemeses.lineage import agent_marks, leader_at, reigns_of
from nemeses.schedulers.ldfi import agent_journals, isolated_node

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(shutil.which("python3") is None, reason="the nodes need python3"),
]

CLUSTER = {"subnet": "10.77.229.0/24", "prefix": "lda-", "bridge": "lda-br0"}
NODES = ("n1", "n2", "n3")
TIME_LIMIT = 18.0  # room for the second hypothesis when fault ops take 1-2 s under load
#: Never fires (no server writes this line): the run has agents, watching and journaling.
QUIET = {"node": "n1", "f": "start-pause", "on": {"log_regex": "^no server logs this$"},
         "hold": 0.5}  # fmt: skip


@pytest.fixture(scope="module")
def cluster_state(local_cluster: Any) -> Iterator[Path]:
    with local_cluster("ldfi-agents", len(NODES), CLUSTER) as state:
        yield state


def test_ldfi_strikes_the_leader_the_agents_saw_elected(
    cluster_state: Path, tmp_path: Path
) -> None:
    spec = load_spec(
        suite="bugkv", workload="register", nodes=len(NODES), time_limit=TIME_LIMIT,
        faults="partition", scheduler="ldfi", interval=1.0, seed=3, store=str(tmp_path),
        cluster_state_dir=str(cluster_state), cluster_options=CLUSTER, recovery_time=1.0,
        agent=[QUIET], fault_lease=3.0,
    )  # fmt: skip
    outcome = run_test(spec)
    run = outcome.run_dir
    assert outcome.results["heal_verified"] is True
    ledger = [json.loads(line) for line in (run / "faults.jsonl").read_text().splitlines()]
    (summary,) = [r for r in ledger if r.get("event") == "scheduler"]
    hyps = summary["hypotheses"]
    reigns = reigns_of(agent_marks(agent_journals(run)))
    why = {r["seq"]: r.get("why", "") for r in ledger if r.get("event") == "intent"}
    cuts = [r for r in ledger if r.get("event") == "applied" and r.get("f") == "start-partition"
            and r.get("source") != "agent"]  # fmt: skip
    by_agents = [h for h in hyps if h.get("leader_from") == "agents"]
    assert by_agents, (hyps, reigns)
    for h in by_agents:
        # the op that cut this hypothesis's leader off: its first cut of that node
        cut = next(r for r in cuts if isolated_node(r["value"]) == h["leader"]
                   and h["from"] <= r["time"] / 1e9)  # fmt: skip
        t = cut["time"] / 1e9
        # the agents' own record: that node was the one elected last, and still led
        assert leader_at(reigns, t) == h["leader"], (t, h, reigns)
        assert f"{h['leader']} leads by the agents' records" in why[cut["seq"]], why[cut["seq"]]
    # the leadership moved under ldfi's first cut, and its later cut followed it
    assert hyps[0]["leader"] != by_agents[-1]["leader"], hyps
    print(f"\nhypotheses: {[(h['class'], h['leader'], h.get('leader_from')) for h in hyps]}; "
          f"reigns by the agents: {[(r.node, round(r.start, 2)) for r in reigns]}; "
          f"valid {outcome.results['valid']}; load {os.getloadavg()[0]:.1f}")  # fmt: skip
