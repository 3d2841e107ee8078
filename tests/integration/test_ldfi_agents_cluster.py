"""ldfi with node agents on a real 3-node local cluster running bugkv (issue 21).

One run of ``--scheduler ldfi`` over partitions and pauses, with node agents (a step that
never fires hands every node a slice, so every node watches its server's log and
journals). ldfi watches the load for 1 s, then strikes its two cheapest hypotheses of the
``behind`` class: cut a follower off and, while it is cut, the leader (which tests the
reads' class, "cut the leader off", within it); then cut a follower off and pause the
leader. The leader's cut makes bugkv elect a successor, whose ``term N: elected leader
...`` line its agent journals; the second hypothesis's leader is then the node the agents
saw elected, and the test checks, from the run's own records, that the op striking each
hypothesis's leader struck the node the agents' journals say led at that moment, and that
the ledger says why.

And the seam by which a scheduler hands the agents steps before the run
(:class:`nemeses.scheduler.PlansAgentSteps`): a scheduler registered here strikes nothing
itself and hands over "n1 kills its server at 1.5 s, restarted 1 s later" and, on every
node, "kill your server 0.5 s after it logs that it was elected (from 2 s), restarted 1 s
later"; the ledger records each step with the scheduler and its reason before the run,
and the nodes' own records show the election line's kill struck.
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
from nemeses.scheduler import AgentStep, Decision, FaultSpace, RunView, register_scheduler
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
TIME_LIMIT = 28.0  # room for the second hypothesis when fault ops take 1-2 s under load


@pytest.fixture(scope="module")
def cluster_state(local_cluster: Any) -> Iterator[Path]:
    with local_cluster("ldfi-agents", len(NODES), CLUSTER) as state:
        yield state


def test_ldfi_strikes_the_leader_the_agents_saw_elected(
    cluster_state: Path, tmp_path: Path
) -> None:
    spec = load_spec(
        suite="bugkv", workload="register", nodes=len(NODES), time_limit=TIME_LIMIT,
        faults="partition,pause", scheduler="ldfi", interval=1.0, seed=3, store=str(tmp_path),
        cluster_state_dir=str(cluster_state), cluster_options=CLUSTER, recovery_time=1.0,
        agent_watch=True, fault_lease=3.0,
    )  # fmt: skip
    outcome = run_test(spec)
    run = outcome.run_dir
    assert outcome.results["heal_verified"] is True
    ledger = [json.loads(line) for line in (run / "faults.jsonl").read_text().splitlines()]
    (summary,) = [r for r in ledger if r.get("event") == "scheduler"]
    hyps = summary["hypotheses"]
    reigns = reigns_of(agent_marks(agent_journals(run)))
    why = {r["seq"]: r.get("why", "") for r in ledger if r.get("event") == "intent"}
    intent_time = {r["seq"]: r["time"] / 1e9 for r in ledger if r.get("event") == "intent"}
    strikes = [r for r in ledger if r.get("event") == "applied"
               and r.get("f") in ("start-partition", "start-pause")
               and r.get("source") != "agent"]  # fmt: skip
    by_agents = [h for h in hyps if h.get("leader_from") == "agents"]
    assert by_agents, (hyps, reigns)
    for h in by_agents:
        # the op that struck this hypothesis's leader: its first cut or pause of that node
        hit = next(r for r in strikes if struck_node(r) == h["leader"]
                   and h["from"] <= r["time"] / 1e9)  # fmt: skip
        # when ldfi named the node (a pause ends the reign in the agents' records as it
        # lands, before the ledger's `applied`)
        t = intent_time[hit["seq"]]
        # the agents' own record: that node was the one elected last, and still led
        assert leader_at(reigns, t) == h["leader"], (t, h, reigns)
        assert f"{h['leader']} leads by the agents' records" in why[hit["seq"]], why[hit["seq"]]
    # the leadership moved under ldfi's first cut of the leader, and its later strike
    # followed it
    assert hyps[0]["leader"] != by_agents[-1]["leader"], hyps
    print(f"\nhypotheses: {[(h['class'], h['leader'], h.get('leader_from')) for h in hyps]}; "
          f"reigns by the agents: {[(r.node, round(r.start, 2)) for r in reigns]}; "
          f"valid {outcome.results['valid']}; load {os.getloadavg()[0]:.1f}")  # fmt: skip


def struck_node(applied: dict[str, Any]) -> str | None:
    """The one node a ledger's ``applied`` record cut off or paused, if one."""
    value = applied.get("value")
    if applied.get("f") == "start-pause" and isinstance(value, dict):
        nodes = value.get("nodes")
        return str(nodes[0]) if isinstance(nodes, list) and len(nodes) == 1 else None
    return isolated_node(value)


class TriggerPlan:
    """Strikes nothing itself; hands the node agents a kill of the first leader at 1.5 s
    and a kill of whichever node is elected next, 0.5 s after its election line."""

    name = "test-trigger-plan"

    def agent_steps(self, space: FaultSpace) -> list[AgentStep]:
        first = AgentStep({"node": space.nodes[0], "f": "start-kill", "at": 1.5, "hold": 1.0},
                          why="the first node tends to lead: kill it")  # fmt: skip
        return [first] + [
            AgentStep({"node": n, "f": "start-kill", "on": {"log": "became-leader"},
                       "from": 2.0, "delay": 0.5, "hold": 1.0},
                      why="kill the next leader 0.5 s after its election line")
            for n in space.nodes
        ]  # fmt: skip

    def next_op(self, view: RunView) -> Decision:
        return None


def test_a_scheduler_hands_the_agents_trigger_strikes(cluster_state: Path, tmp_path: Path) -> None:
    register_scheduler(TriggerPlan.name, lambda args: TriggerPlan())
    spec = load_spec(
        suite="bugkv", workload="register", nodes=len(NODES), time_limit=6.0,
        faults="kill", scheduler=TriggerPlan.name, seed=4, store=str(tmp_path),
        cluster_state_dir=str(cluster_state), cluster_options=CLUSTER, recovery_time=1.0,
        fault_lease=3.0,
    )  # fmt: skip
    outcome = run_test(spec)
    run = outcome.run_dir
    assert outcome.results["heal_verified"] is True
    ledger = [json.loads(line) for line in (run / "faults.jsonl").read_text().splitlines()]
    handed = [r for r in ledger if r.get("event") == "agent-step"]
    assert [(r["source"], r["step"]["node"], r["why"]) for r in handed] == [
        (TriggerPlan.name, "n1", "the first node tends to lead: kill it"),
        *((TriggerPlan.name, n, "kill the next leader 0.5 s after its election line")
          for n in NODES),
    ]  # fmt: skip
    assert handed[1]["step"]["on"] == {"log": "became-leader"}
    strikes = [r for rs in agent_journals(run).values() for r in rs
               if r.get("e") == "strike" and "skipped" not in r]  # fmt: skip
    (timed,) = [r for r in strikes if r["trigger"] == "at"]
    assert timed["status"] == 0
    triggered = [r for r in strikes if r["trigger"] == "log"]
    assert triggered and all("elected leader" in r["line"] for r in triggered), strikes
    kills = [r for r in ledger if r.get("event") == "applied" and r.get("kind") == "kill"]
    assert len(kills) == len(strikes) and all(r["source"] == "agent" for r in kills), kills
    print(f"\n{len(handed)} steps handed over; {len(triggered)} kill(s) on an election line, "
          f"{[round(r['late_ms'], 2) for r in triggered]} ms after the line + 0.5 s; "
          f"valid {outcome.results['valid']}; load {os.getloadavg()[0]:.1f}")  # fmt: skip
