"""ldfi hands the node agents the ``tail`` class's kill of the successor
(nemeses/schedulers/ldfi.py ``LdfiScheduler.agent_steps``, ``tail_kill_timing``): when it
does and when it does not (hand-made fault spaces and states), the run it then drives (the
controller's cut and heal, then a wait for the agents' kill), and what a run with an
agent-struck kill teaches (``learn``: the ledger's agent strike is the hypothesis's
fault)."""

from __future__ import annotations

import json
from typing import Any

from nemeses.agent import validate_agent_steps
from nemeses.lineage import OutcomeClass, Reign
from nemeses.scheduler import FaultOp, FaultSpace, Observations
from nemeses.schedulers.ldfi import (
    AGENT_HYPOTHESIS,
    INCONCLUSIVE,
    SETTLE,
    LdfiScheduler,
    LdfiState,
    learn,
    tail_kill_timing,
)
from tests.unit.scripted_run import ScriptedRun, served

NODES = ("n1", "n2", "n3")
S = 1_000_000_000
TRIGGERS = ("became-leader", "leader-changed", "stepped-down")


def space(*, agents: bool = True, triggers: tuple[str, ...] = TRIGGERS,
          kinds: tuple[str, ...] = ("kill", "partition"), time_limit: float = 20.0
          ) -> FaultSpace:  # fmt: skip
    return FaultSpace.of(list(kinds), NODES, roles=True, interval=1.0, time_limit=time_limit,
                         agents=agents, agent_triggers=triggers)  # fmt: skip


def state(*classes: str, takeover: float = 0.8, op: float = 0.4) -> LdfiState:
    st = LdfiState()
    st.observe({c: OutcomeClass(c, "n1", 10) for c in classes})
    st.timing.update(takeover=takeover, op=op)
    return st


def test_the_timing_puts_the_kill_after_the_heal_and_disarms_before_a_next_election():
    t = tail_kill_timing(space(), takeover=0.8, op_seconds=0.4)
    assert (t.delay, t.hold) == (3.2, 1.8)  # 0.8 + 2 * 1 + 0.4; 0.8 + 1
    # strikes of the election lines logged in the hypothesis's first delay seconds (from
    # the interval): an agent checks its window when it strikes
    assert (t.start, t.until) == (1.0 + 3.2, 1.0 + 2 * 3.2)
    # the cut lands one op after the start and holds takeover + interval; the heal takes an
    # op: even a successor elected the moment the cut landed strikes an interval after it
    heal_landed = 1.0 + 0.4 + (0.8 + 1.0) + 0.4
    assert 1.0 + 0.4 + t.delay >= heal_landed + 1.0
    # expected over once the successor, elected a takeover after the cut, was killed and
    # restarted and the store settled
    assert t.end == round(1.0 + 0.4 + 0.8 + t.delay + t.hold + SETTLE, 3)


def test_steps_handed_over_only_with_agents_that_name_elections():
    sched = LdfiScheduler(state("read", "write", "tail"))
    steps = sched.agent_steps(space())
    assert [s.step["node"] for s in steps] == list(NODES)
    step = steps[0].step
    assert step == {"node": "n1", "f": "start-kill", "on": {"log": "became-leader"},
                    "from": 4.2, "until": 7.4, "delay": 3.2, "hold": 1.8}  # fmt: skip
    assert steps[0].why.startswith("ldfi: tail outcomes, hypothesis [['kill', 'successor']] "
                                   "removes every support; struck by the node agents")  # fmt: skip
    # the runner checks them as it checks the user's: they pass
    assert len(validate_agent_steps([dict(s.step) for s in steps], "test", NODES)) == 3
    for sp in (
        space(agents=False),  # no agents: none, and nothing planned
        space(triggers=("leader-changed",)),  # the adapter does not name elections
        space(kinds=("partition",)),  # no kills in the run's kinds
        space(kinds=("kill",)),  # no cut to make the tail
        space(time_limit=8.0),  # the hypothesis (over at 8.2 s) does not fit
    ):
        plain = LdfiScheduler(state("read", "write", "tail"))
        assert plain.agent_steps(sp) == [] and plain._agent_plan is None, sp
    # no tail class yet (no run cut a leader), or its kill of the successor already tried
    assert LdfiScheduler(state("read", "write")).agent_steps(space()) == []
    tried = state("tail")
    tried.tried.append({"key": json.dumps(["tail", [["kill", "successor"]]])})
    assert LdfiScheduler(tried).agent_steps(space()) == []
    assert LdfiScheduler(LdfiState()).agent_steps(space()) == []  # the suite's first run


def drive(sched: LdfiScheduler, sp: FaultSpace, *, elected: tuple[str, float] | None,
          until: float = 16.0) -> list[Any]:  # fmt: skip
    """The decisions of ``sched`` over a scripted run: n1 serves every acknowledged op; each
    fault op takes 0.3 s; ``elected`` (node, seconds after the first cut landed): the agent
    record of its election line, seen once that time has passed."""
    obs = Observations()
    for p in range(20):
        served(obs, p, p * 0.05, fs=("write",))
    fed = False

    def election(run: ScriptedRun, now: float) -> None:
        nonlocal fed
        cut_at = run.first_start_landed
        if elected and cut_at is not None and not fed and now >= cut_at + elected[1]:
            obs.record_agent(elected[0], {"e": "log", "run": round(cut_at + elected[1], 3),
                                          "patterns": ["term-changed", "became-leader"]})
            fed = True

    return list(ScriptedRun(sched, sp, obs, feed=election).step(until=until).decisions)


def test_with_agents_the_tail_kill_is_the_first_hypothesis_and_the_controller_waits():
    sp = space()
    sched = LdfiScheduler(state("tail"))
    assert sched.agent_steps(sp)
    got = drive(sched, sp, elected=("n2", 0.5))
    ops = [d for d in got if isinstance(d, FaultOp)]
    # the controller cuts the leader off (landed at 1.3 s), holds the cut takeover +
    # interval and heals it; no kill of its own
    assert [(o.f, o.at) for o in ops[:2]] == [("start-partition", 1.0), ("stop-partition", 3.1)]
    assert sorted(ops[0].value["n1"]) == ["n2", "n3"]
    assert ops[0].why.endswith("the successor's kill is the node agents' (handed over before "
                               "the run)")  # fmt: skip
    first = sched.struck[0]
    assert (first["class"], first["hypothesis"]) == ("tail", [["kill", "successor"]])
    assert first["moves"] == [["start-partition", "leader"], ["stop-partition", ""]]
    assert first["agents"] == {"start": 4.2, "until": 7.4, "delay": 3.2, "hold": 1.8}
    # the agents saw n2 elected 0.5 s after the cut landed (1.3 s): the hypothesis ends
    # once its kill (3.2 s later) has held 1.8 s and the store settled
    assert first["successor"] == "n2" and first["leader"] == "n1"
    assert first["to"] == round(1.8 + 3.2 + 1.8 + SETTLE, 3)
    # then the next one, struck by the controller: the other tail hypothesis
    assert sched.struck[1]["hypothesis"] == [["partition", "successor"]]
    assert ops[2].f == "start-partition" and ops[2].at >= first["to"]


def test_without_agents_the_run_is_the_one_it_was():
    asked = LdfiScheduler(state("tail"))
    assert asked.agent_steps(space(agents=False)) == []
    never = LdfiScheduler(state("tail"))
    a = drive(asked, space(agents=False), elected=None)
    b = drive(never, space(agents=False), elected=None)
    assert a == b and a
    assert never.struck[0]["hypothesis"] == [["partition", "successor"]]  # the usual order
    assert not any("agents" in h for h in never.struck)
    assert not any("agents'" in d.why for d in b if isinstance(d, FaultOp))


def test_with_agents_and_no_election_line_it_waits_the_longest_it_can_take():
    sp = space()
    sched = LdfiScheduler(state("tail"))
    sched.agent_steps(sp)
    drive(sched, sp, elected=None)
    first = sched.struck[0]
    assert "successor" not in first
    assert first["to"] >= round(7.4 + 1.8 + SETTLE, 3)  # the last strike, its hold, settle


def agent_kill(node: str, at: float) -> list[dict[str, Any]]:
    return [
        {"event": "applied", "kind": "kill", "f": "start-kill", "source": "agent",
         "node": node, "trigger": "log", "time": int(at * S), "targets": [node]},
        {"event": "healed", "kind": "kill", "f": "stop-kill", "source": "agent",
         "node": node, "time": int((at + 1.8) * S), "targets": [node]},
    ]  # fmt: skip


CUT = {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}
STRUCK = {"class": "tail", "hypothesis": [["kill", "successor"]], "leader": "n1",
          "from": 1.0, "to": 9.0, "agents": {"start": 4.2, "until": 7.4, "delay": 3.2,
                                              "hold": 1.8}}  # fmt: skip
LEDGER = [{"event": "applied", "kind": "partition", "value": CUT, "time": int(1.3 * S)},
          {"event": "healed", "kind": "partition", "time": int(4.4 * S)}]  # fmt: skip
REIGNS = [Reign("n1", float("-inf"), 1.8), Reign("n2", 1.8, 5.02), Reign("n1", 6.0)]


def test_learn_counts_the_agents_kill_of_the_successor_as_the_fault():
    lessons = learn(state("tail"), STRUCK, [], [*LEDGER, *agent_kill("n2", 5.0)], reigns=REIGNS)
    assert "the agents killed the successor n2 at 5.00 s, 3.2 s after its election line and " \
        "0.60 s after the cut of n1 was healed: valid without it" in lessons, lessons  # fmt: skip
    assert not any(x.startswith(INCONCLUSIVE) for x in lessons)


def test_learn_an_agent_kill_that_tested_nothing_is_inconclusive():
    def one(ledger: list[dict[str, Any]], reigns: list[Reign] = REIGNS) -> str:
        lessons = learn(state("tail"), STRUCK, [], ledger, reigns=reigns)
        (x,) = [x for x in lessons if x.startswith(INCONCLUSIVE)]
        return x

    assert "the agents killed no successor" in one(list(LEDGER))  # no election line came
    early = [LEDGER[0], {**LEDGER[1], "time": int(5.5 * S)}, *agent_kill("n2", 5.0)]
    assert "before the cut of n1 was healed" in one(early)
    # the node killed was not the one the agents' records say led then
    assert "the successor of n1 then was n2" in one([*LEDGER, *agent_kill("n3", 5.0)])
    # a controller kill in the window is not the agents' strike
    ctl = [{**r, "source": "ldfi"} for r in agent_kill("n2", 5.0)]
    assert "the agents killed no successor" in one([*LEDGER, *ctl])


def test_the_agent_hypothesis_is_one_of_ldfis_own():
    st = state("tail")
    assert AGENT_HYPOTHESIS in st.hypotheses(("kill", "partition"), 2)
