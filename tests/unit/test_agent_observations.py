"""The node agents' journal records as scheduler observations (nemeses/scheduler.py
AgentObservations, fed by nemeses/guard.py as it copies the journals), and the adaptive
agent's state built from them (nemeses/schedulers/adaptive.py StateTracker), on hand-made
records shaped as nemeses/guard_agent.py journals them."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from nemeses.guard import _JOURNAL_MARK, FaultGuard
from nemeses.scheduler import (
    AGENT_WINDOW,
    AgentTally,
    Driver,
    FaultSpace,
    Observations,
    RandomScheduler,
)
from nemeses.schedulers.adaptive import StateTracker


def log(pattern: str, run: float = 1.0) -> dict[str, Any]:
    return {"e": "log", "mono": 1, "wall": 1, "run": run, "patterns": [pattern],
            "line": f"... {pattern} ..."}  # fmt: skip


def proc(change: str, run: float = 1.0) -> dict[str, Any]:
    return {"e": "process", "mono": 1, "wall": 1, "run": run, "change": change, "pid": 7,
            "state": "R"}  # fmt: skip


def pressure(load1: float) -> dict[str, Any]:
    return {"e": "pressure", "mono": 1, "wall": 1, "load1": load1, "mem_avail_kb": 1000}


def serve(obs: Observations, p0: int, n: int, node: str, typ: str = "ok") -> None:
    for p in range(p0, p0 + n):
        obs.record({"process": p, "type": "invoke", "f": "read", "time": 0}, faulted=False)
        obs.record({"process": p, "type": typ, "f": "read", "node": node, "time": 1000},
                   faulted=False)  # fmt: skip


def test_the_tally_counts_elections_changes_exits_and_keeps_the_latest_load():
    agents = Observations().agents
    assert agents.tally() == {} and agents.leader is None and agents.elections() == 0
    agents.record("n1", {"e": "start", "mono": 1, "wall": 1})  # counted as a record only
    agents.record("n1", pressure(3.5))
    agents.record("n1", log("term-changed"))
    agents.record("n1", log("became-leader"))
    for n in ("n1", "n2", "n3"):
        agents.record(n, log("leader-changed"))
    agents.record("n2", proc("exit", 2.0))
    agents.record("n2", proc("start", 3.0))
    agents.record("n1", pressure(7.25))
    agents.record("n3", {"e": "log", "patterns": "not-a-list"})  # malformed: nothing counted
    assert agents.records == 11
    assert agents.tally() == {
        "n1": AgentTally(elections=1, leader_changes=1, terms=1, load1=7.25),
        "n2": AgentTally(leader_changes=1, exits=1, starts=1),
        "n3": AgentTally(leader_changes=1),
    }
    assert agents.leader == "n1"
    # One election seen by three nodes is one election.
    assert agents.elections() == 1
    assert list(agents.recent)[-2:] == [("n2", 2.0, "process:exit"), ("n2", 3.0, "process:start")]

    # A window: only what came since an earlier copy of the counts.
    mark = agents.counts.copy()
    agents.record("n2", log("became-leader"))
    agents.record("n3", log("became-leader"))
    assert agents.elections(mark) == 2
    assert agents.tally(mark)["n2"] == AgentTally(elections=1)
    assert agents.tally(mark)["n1"] == AgentTally(load1=7.25)
    assert agents.leader == "n3"


def test_a_database_without_became_leader_lines_counts_leader_changes():
    agents = Observations().agents
    for n in ("n1", "n2"):
        agents.record(n, log("leader-changed"))
    agents.record("n1", log("leader-changed"))
    assert agents.elections() == 2 and agents.leader is None


def test_the_leader_is_forgotten_once_it_exits_stops_or_steps_down():
    for gone in (proc("exit"), proc("stop"), log("stepped-down"), log("leader-lost")):
        agents = Observations().agents
        agents.record("n2", log("became-leader"))
        agents.record("n1", proc("exit"))  # another node: still n2
        agents.record("n1", log("stepped-down"))
        assert agents.leader == "n2"
        agents.record("n2", gone)
        assert agents.leader is None, gone


def test_recent_records_are_bounded():
    agents = Observations().agents
    for i in range(AGENT_WINDOW + 50):
        agents.record("n1", log("term-changed", run=float(i)))
    assert len(agents.recent) == AGENT_WINDOW
    assert agents.recent[0][1] == 50.0
    assert agents.tally()["n1"].terms == AGENT_WINDOW + 50


def _scripted_states(obs: Observations, tracker: StateTracker, agents: bool) -> list[str]:
    """The states of a scripted run; with ``agents``, agent records arrive between windows
    (one election in the second window, two in the fourth, none in the others)."""
    states = []
    if agents:
        obs.record_agent("n1", log("became-leader"))
    serve(obs, 0, 10, "n1")
    states.append(tracker.state(obs, "", agents=agents))
    if agents:
        obs.record_agent("n2", log("became-leader"))
        obs.record_agent("n1", log("leader-changed"))
    serve(obs, 10, 3, "n2")
    serve(obs, 13, 7, "n2", "info")
    states.append(tracker.state(obs, "kill@leader", agents=agents))
    states.append(tracker.state(obs, "", agents=agents))  # nothing served, no election
    if agents:
        obs.record_agent("n3", log("became-leader"))
        obs.record_agent("n1", log("became-leader"))
    serve(obs, 20, 5, "n1")
    states.append(tracker.state(obs, "partition@leader", agents=agents))
    serve(obs, 30, 5, "n3")  # clients moved to n3, but no election: the agents say same
    states.append(tracker.state(obs, "", agents=agents))
    return states


#: The scripted run's states from the clients' view alone.
CLIENTS_VIEW = [
    "lead=same err=none act=-",
    "lead=moved err=high act=kill@leader",
    "lead=none err=idle act=-",
    "lead=moved err=none act=partition@leader",
    "lead=moved err=none act=-",
]


def test_without_agent_records_the_states_are_as_before():
    obs, tracker = Observations(), StateTracker()
    assert _scripted_states(obs, tracker, agents=False) == CLIENTS_VIEW
    assert tracker.leader == "n3"  # the node serving


def test_with_agent_records_lead_buckets_the_elections_and_names_their_leader():
    obs, tracker = Observations(), StateTracker()
    assert _scripted_states(obs, tracker, agents=True) == [
        "lead=moved err=none act=-",  # the first election (before the window's ops)
        "lead=moved err=high act=kill@leader",
        "lead=none err=idle act=-",
        "lead=churn err=none act=partition@leader",
        "lead=same err=none act=-",
    ]
    assert tracker.leader == "n1"  # the database's word, not the node serving (n3)
    obs.record_agent("n1", proc("exit"))
    serve(obs, 40, 5, "n3")
    assert tracker.state(obs, "", agents=True) == "lead=same err=none act=-"
    assert tracker.leader == "n3"  # the agents' leader exited: the node serving again


def test_split_still_comes_from_the_clients_with_agents():
    obs, tracker = Observations(), StateTracker()
    obs.record_agent("n1", pressure(1.0))
    serve(obs, 40, 5, "n1")  # the first window: one node serves (a leader-based database)
    tracker.state(obs, "", agents=True)
    for p0 in (0, 20):
        serve(obs, p0, 5, "n1")
        serve(obs, p0 + 5, 5, "n2")
        obs.record_agent("n1", log("became-leader"))
        state = tracker.state(obs, "", agents=True)
    assert state == "lead=split err=none act=-" and tracker.split


def test_the_guards_own_records_are_not_agents():
    # Every run with faults journals the guard's records ("start", leases): the clients'
    # view must still see the leader move (until 2026-12-05 their arrival turned the
    # agents' view on, with no election ever logged: lead was "same" forever).
    obs, tracker = Observations(), StateTracker()
    obs.record_agent("n1", {"e": "start", "mono": 1, "wall": 1, "pid": 44})
    assert _scripted_states(obs, tracker, agents=False) == CLIENTS_VIEW


def _guard(tmp_path: Path) -> FaultGuard:
    guard = FaultGuard({})
    guard.journal_to = tmp_path / "nodes"
    return guard


def test_the_guard_hands_every_copied_record_to_the_driver(tmp_path: Path):
    guard = _guard(tmp_path)
    space = FaultSpace.of(["kill"], ["n1", "n2"], roles=False, interval=1.0, time_limit=5.0)
    driver = Driver(RandomScheduler(), space, rng=random.Random(1))
    guard.on_journal = driver.observe_agent
    lines = [json.dumps(log("became-leader")), "{torn", json.dumps([1]),
             json.dumps(pressure(2.0))]  # fmt: skip
    # The last line is not whole yet: copied (and handed on) by the next pull.
    out = f"clock 5\n{_JOURNAL_MARK}\n" + "\n".join(lines[:3]) + "\n" + lines[3]
    guard._take_journal("n1", out, 0, 10)
    assert driver.observed.agents.records == 1 and driver.observed.agents.leader == "n1"
    guard._take_journal("n1", f"{_JOURNAL_MARK}\n{lines[3]}\n", 0, 10)
    assert driver.observed.agents.load == {"n1": 2.0}
    copied = (tmp_path / "nodes" / "n1" / "agent.jsonl").read_text().splitlines()
    assert copied == lines  # the copy keeps every line, torn or not


def test_a_failing_listener_does_not_stop_the_copy(tmp_path: Path, caplog: Any):
    guard = _guard(tmp_path)

    def broken(node: str, rec: dict[str, Any]) -> None:
        raise RuntimeError("listener bug")

    guard.on_journal = broken
    guard._take_journal("n1", f"{_JOURNAL_MARK}\n{json.dumps(log('campaign'))}\n", 0, 10)
    assert (tmp_path / "nodes" / "n1" / "agent.jsonl").read_text().count("\n") == 1
    assert "journal listener failed" in caplog.text
