"""LDFI's lineage from the node agents' records (nemeses/lineage.py ``reigns_of``,
``leader_at``; nemeses/schedulers/ldfi.py): on the journals and history of a real 5-node
bugkv run (tests/data/agents/bugkv-5-nodes) and on hand-made records; and, live, the
``leader`` and ``successor`` roles resolved from the agents' records, with the clients'
view kept where the agents say nothing."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

from nemeses.lineage import (
    OutcomeClass,
    Reign,
    agent_marks,
    classes_of_history,
    leader_at,
    reigns_of,
)
from nemeses.scheduler import FaultOp, FaultSpace, Observations, RunView
from nemeses.schedulers.ldfi import (
    LdfiScheduler,
    LdfiState,
    absorb,
    agent_cuts,
    agent_journals,
    learn,
)
from tests.unit.scripted_run import ScriptedRun, served

RUN = Path(__file__).resolve().parents[1] / "data" / "agents" / "bugkv-5-nodes"
S = 1_000_000_000
INF = float("inf")


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_reigns_of_the_recorded_run():
    journals = agent_journals(RUN)
    assert sorted(journals) == ["n1", "n2", "n3", "n4", "n5"]
    reigns = reigns_of(agent_marks(journals))
    # n1 led from before the hand-over (its "step down (was leader)" line at 2.17 s says
    # so) until n2's election at 1.66 s; n2 until its process exited at 3.03 s (killed by
    # its agent at 3.0 s); n1 again from its election at 3.45 s.
    assert reigns == [Reign("n1", -INF, 1.659424), Reign("n2", 1.659424, 3.034823),
                      Reign("n1", 3.454227, INF)]  # fmt: skip
    assert [leader_at(reigns, t) for t in (0.5, 2.0, 3.2, 6.0)] == ["n1", "n2", None, "n1"]


def test_reign_rules_on_hand_made_records():
    marks = [
        ("n2", 5.0, "log:became-leader"),  # out of order: sorted by time
        ("n1", 1.0, "log:became-leader"),
        ("n1", None, "log:stepped-down"),  # no run time: skipped
        ("n2", 6.0, "process:stop"),
        ("n3", 7.0, "log:became-leader"),
        ("n3", 8.0, "log:leader-lost"),
        ("n1", 9.0, "log:became-leader"),
        ("n1", 9.5, "log:term-changed"),  # says nothing of who leads
    ]
    assert reigns_of(marks) == [Reign("n1", 1.0, 5.0), Reign("n2", 5.0, 6.0),
                                Reign("n3", 7.0, 8.0), Reign("n1", 9.0, INF)]  # fmt: skip
    assert reigns_of([]) == [] and leader_at([], 1.0) is None
    # A deposed leader and its successor overlap: the latest elected leads.
    overlap = [Reign("n1", 0.0, 3.0), Reign("n2", 2.0, INF)]
    assert leader_at(overlap, 2.5) == "n2" and leader_at(overlap, 1.0) == "n1"


def test_a_cut_of_the_leader_the_agents_saw_is_a_tail_window():
    events = jsonl(RUN / "history.jsonl")
    ledger = jsonl(RUN / "faults.jsonl")
    reigns = reigns_of(agent_marks(agent_journals(RUN)))
    # Without the agents no hypothesis of ldfi's cut a leader: no tail class.
    assert "tail" not in classes_of_history(events)
    cuts = agent_cuts(reigns, ledger, [])
    # The agents' partition sides (five windows isolating n1, one per node) make one cut.
    assert [(n, round(a, 3), round(b, 3)) for n, a, b in cuts] == [("n1", 1.001, 2.15)]
    classes = classes_of_history(events, cuts=cuts, reigns=reigns)
    assert classes["tail"].leader == "n1" and classes["tail"].outcomes == 4
    # A window ldfi already has for that node is not counted twice.
    assert agent_cuts(reigns, ledger, [("n1", 0.5, 3.0)]) == []


def test_the_agents_name_the_leader_of_acknowledged_writes():
    # n3 relays acknowledgements (a proxy names itself) while n2 is the elected leader.
    events = []
    for p, t in enumerate((1.0, 1.5, 2.0, 2.5, 3.0)):
        events += [{"process": p, "type": "invoke", "f": "write", "time": int(t * S)},
                   {"process": p, "type": "ok", "f": "write", "node": "n3",
                    "time": int((t + 0.1) * S)}]  # fmt: skip
    assert classes_of_history(events)["write"].leader == "n3"
    reigns = [Reign("n2", 0.5, INF)]
    assert classes_of_history(events, reigns=reigns)["write"].leader == "n2"
    # outside every reign, the serving node stands
    assert classes_of_history(events, reigns=[Reign("n2", 10.0, INF)])["write"].leader == "n3"


def cut_ledger(node: str, applied: float, healed: float) -> list[dict[str, Any]]:
    grudge = {node: [m for m in ("n1", "n2", "n3") if m != node],
              **{m: [node] for m in ("n1", "n2", "n3") if m != node}}  # fmt: skip
    return [{"kind": "partition", "event": "applied", "time": int(applied * S), "value": grudge},
            {"kind": "partition", "event": "healed", "time": int(healed * S)}]  # fmt: skip


def ok(p: int, f: str, node: str, t: float) -> dict[str, Any]:
    return {"process": p, "type": "ok", "f": f, "node": node, "time": int(t * S)}


def test_learn_takes_the_takeover_from_the_election_line_and_checks_the_leader():
    struck = {"hypothesis": [["partition", "leader"]], "from": 1.0, "to": 6.0, "leader": "n1"}
    ledger = cut_ledger("n1", 2.0, 5.0)
    # the clients: n1 served before the cut; n2 served its first op 1.5 s into it
    h = [ok(0, "write", "n1", 1.5), ok(1, "read", "n1", 1.6), ok(2, "write", "n2", 3.5)]
    plain = LdfiState()
    plain.observe({"read": OutcomeClass("read", "n1", 1)})
    learn(plain, struck, h, ledger)
    assert plain.timing["takeover"] == 1.5
    # the agents: n2 was elected 0.6 s after the cut (its own log line)
    reigns = [Reign("n1", -INF, 2.6), Reign("n2", 2.6, INF)]
    seen = LdfiState()
    seen.observe({"read": OutcomeClass("read", "n1", 1)})
    lessons = learn(seen, struck, h, ledger, reigns=reigns)
    assert seen.timing["takeover"] == 0.6
    assert "the agents saw n2 elected 0.60 s after n1 was cut off" in lessons
    # the agents say n3 led when ldfi cut n1 (it thought n1 led): nothing learned
    other = LdfiState()
    other.observe({"read": OutcomeClass("read", "n1", 1)})
    lessons = learn(other, struck, h, ledger, reigns=[Reign("n3", 0.0, INF)])
    assert lessons[0].startswith("none: the agents' records say n3 led when n1 was cut off")
    assert "takeover" not in other.timing
    # records that say nothing at the cut: the clients' view, as without agents
    blind = LdfiState()
    blind.observe({"read": OutcomeClass("read", "n1", 1)})
    assert learn(blind, struck, h, ledger, reigns=[Reign("n2", 9.0, INF)]) == learn(
        plain, struck, h, ledger)  # fmt: skip


def test_absorb_reads_the_agents_journals_of_the_previous_run(tmp_path: Path):
    run = tmp_path / "bugkv-set" / "r1"
    shutil.copytree(RUN, run)
    (run / "results.json").write_text(json.dumps({"valid": True}))
    state = LdfiState()
    pending = {"episode": "e", "struck": [
        {"key": "k", "class": "read", "hypothesis": [["partition", "leader"]], "from": 0.5,
         "to": 3.0, "leader": "n1"}]}  # fmt: skip
    notes = absorb(state, pending, run)
    assert "the agents' records: n1 led from the start to 1.7 s, n2 led from 1.7 s to 3.0 s, " \
        "n1 led from 3.5 s" in notes, notes  # fmt: skip
    # the cut's window is ldfi's own here (0.5-3.0 s: n1's 6 unacknowledged writes in it),
    # not counted twice
    assert state.classes["tail"].outcomes == 6
    # the takeover: n2's election line 0.66 s after the earliest side of the cut (n3's, 1.0007 s)
    assert state.timing["takeover"] == 0.659
    without = tmp_path / "plain" / "r1"
    shutil.copytree(RUN, without)
    shutil.rmtree(without / "nodes")
    (without / "results.json").write_text(json.dumps({"valid": True}))
    state2 = LdfiState()
    notes2 = absorb(state2, pending, without)
    assert not any("the agents' records" in n for n in notes2), notes2
    # the clients saw no successor serve inside the cut (n2's first acknowledgement came
    # at 2.21 s, after the heal): without the agents, no takeover time is learned at all
    assert "takeover" not in state2.timing
    assert state2.classes["tail"].outcomes == 6 and "tail" in state.classes


def feed(obs: Observations, node: str, run: float, *patterns: str) -> None:
    obs.record_agent(node, {"e": "log", "run": run, "patterns": list(patterns)})


def first_ops(obs: Observations, until: int = 4) -> list[FaultOp]:
    """The first ops ldfi makes in a fresh search over partitions of 3 nodes, where n1
    served every acknowledged op (the clients' view), up to ``until`` or the run's last."""
    space = FaultSpace.of(["partition"], ("n1", "n2", "n3"), roles=True, interval=1.0,
                          time_limit=30.0)  # fmt: skip
    for p in range(20):
        served(obs, p, p * 0.05)
    run = ScriptedRun(LdfiScheduler(LdfiState()), space, obs, op_seconds=0.1)
    return run.step(max_ops=until).ops


def leader_cut(ops: list[FaultOp]) -> FaultOp:
    """The first of ``ops`` that cuts the leader off (the ``behind`` hypothesis, which
    tests the ``read`` one within it, first cuts a follower)."""
    return next(o for o in ops if "start-partition leader" in o.why)


def test_live_the_leader_role_strikes_the_node_the_agents_saw_elected():
    plain = first_ops(Observations())
    cut = leader_cut(plain)
    assert list(cut.value["n1"]) == ["n2", "n3"]
    assert "agents" not in cut.why
    obs = Observations()
    feed(obs, "n1", 0.2, "stepped-down")
    feed(obs, "n3", 0.3, "term-changed", "became-leader")
    ops = first_ops(obs)
    cut = leader_cut(ops)
    assert sorted(cut.value["n3"]) == ["n1", "n2"]
    assert "(n3 leads by the agents' records (elected at 0.3 s))" in cut.why
    # apart from its targets and its why, the schedule is the one without agents
    assert [(o.f, o.at) for o in ops] == [(o.f, o.at) for o in plain]
    # the agents' leader exited: they name none, so the clients' view stands again
    gone = Observations()
    feed(gone, "n3", 0.3, "became-leader")
    gone.record_agent("n3", {"e": "process", "run": 0.4, "change": "exit"})
    assert leader_cut(first_ops(gone)).value == leader_cut(plain).value


def test_live_the_successor_is_the_node_the_agents_saw_elected_after_the_leader():
    space = FaultSpace.of(["kill", "partition"], ("n1", "n2", "n3"), roles=True,
                          interval=1.0, time_limit=30.0)  # fmt: skip
    obs = Observations()
    for p in range(10):  # the clients: n1 served everything
        e = {"process": p, "f": "write", "node": "n1", "time": int(p * 0.1 * S)}
        obs.record({**e, "type": "invoke"}, faulted=False)
        obs.record({**e, "type": "ok"}, faulted=False)

    def successor(o: Observations) -> Any:
        sched = LdfiScheduler(LdfiState())
        sched._current = {"leader": "n1", "follower": None, "class": "tail"}
        sched._leader_now(RunView(now=5.0, space=space, active={}, ledger=[], observed=o,
                                  rng=random.Random(1)))  # fmt: skip
        return sched._value(RunView(now=5.0, space=space, active={}, ledger=[], observed=o,
                                    rng=random.Random(1)), "start-kill", "successor")  # fmt: skip

    # the clients name only n1, the hypothesis's leader: the database is asked
    assert successor(obs) == {"targets": "primaries"}
    feed(obs, "n1", 3.0, "stepped-down")
    feed(obs, "n2", 3.1, "became-leader")
    assert successor(obs) == {"targets": "nodes", "nodes": ["n2"]}
