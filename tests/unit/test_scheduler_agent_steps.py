"""The seam by which a scheduler hands the node agents steps before the run
(nemeses.scheduler.PlansAgentSteps, harness.runplan.scheduler_agent_steps): checked like
the user's steps, added after them, one ledger record each; nothing for a scheduler
without it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.runplan import scheduler_agent_steps
from harness.spec import load_spec
from nemeses.scheduler import AgentStep, FaultSpace, PlansAgentSteps, RandomScheduler, RunView

NODES = ("n1", "n2", "n3")
CTX: Any = SimpleNamespace(nodes=[SimpleNamespace(name=n) for n in NODES])
USER = {"node": "n2", "f": "start-pause", "at": 1.0, "hold": 0.5}


class Plans:
    name = "plans"

    def __init__(self, steps: list[AgentStep]) -> None:
        self.steps = steps
        self.seen: list[FaultSpace] = []

    def agent_steps(self, space: FaultSpace) -> list[AgentStep]:
        self.seen.append(space)
        return self.steps

    def next_op(self, view: RunView) -> None:
        return None


def spec(**kw: Any) -> Any:
    return load_spec(suite="bugkv", workload="register", nodes=3, faults="kill", seed=1, **kw)


def test_the_steps_join_the_users_and_the_ledger_records_each():
    kill = {"node": "n3", "f": "start-kill", "on": {"log": "became-leader"}, "delay": 2}
    sched = Plans([AgentStep(kill, why="the successor, right after its election")])
    assert isinstance(sched, PlansAgentSteps)
    s0 = spec(agent=[USER])
    s1, records = scheduler_agent_steps(s0, CTX, object(), [], sched)
    assert s1.agent[0] == s0.agent[0]
    assert s1.agent[1] == {"node": "n3", "f": "start-kill", "on": {"log": "became-leader"},
                           "delay": 2.0, "times": 1, "from": 0.0}  # fmt: skip
    assert records == [{"event": "agent-step", "source": "plans", "step": s1.agent[1],
                        "why": "the successor, right after its election"}]  # fmt: skip
    (space,) = sched.seen
    assert space.nodes == NODES and list(space.kinds) == ["kill"]


def test_a_bad_step_is_refused_naming_the_scheduler_and_none_change_nothing():
    bad = Plans([AgentStep({"node": "n9", "f": "start-kill", "at": 1.0})])
    with pytest.raises(ConfigError, match=r"scheduler 'plans'.*no node 'n9'"):
        scheduler_agent_steps(spec(), CTX, object(), [], bad)
    s0 = spec(agent=[USER])
    assert scheduler_agent_steps(s0, CTX, object(), [], Plans([])) == (s0, [])
    assert not isinstance(RandomScheduler(), PlansAgentSteps)
    assert scheduler_agent_steps(s0, CTX, object(), [], RandomScheduler()) == (s0, [])
