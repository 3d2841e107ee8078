"""Acknowledgements from nodes cut off from a majority: which nodes are cut off under a
run's active faults (nemeses/topology.py ``cut_off``, nemeses/scheduler.py
``cut_off_nodes``), how the driver counts what they acknowledge, and the adaptive agent's
reward for it (nemeses/schedulers/adaptive.py), on hand-made faults and observations."""

from __future__ import annotations

import random
from typing import Any

import pytest

from nemeses.scheduler import (
    Driver,
    FaultOp,
    FaultSpace,
    Observations,
    RunView,
    cut_off_nodes,
)
from nemeses.schedulers.adaptive import (
    ALPHA,
    CUT_OFF_REWARD,
    AdaptiveScheduler,
    Learner,
    StateTracker,
)
from nemeses.topology import cut_off, grudge_from_json, grudge_to_json, halves, majorities_ring

NODES = ("n1", "n2", "n3", "n4", "n5")


def isolate(node: str) -> dict[str, list[str]]:
    rest = [n for n in NODES if n != node]
    return {node: rest, **{n: [node] for n in rest}}


def test_a_node_is_cut_off_when_it_cannot_reach_a_majority_itself_included():
    assert cut_off(grudge_from_json(isolate("n1")), NODES) == {"n1"}
    two_three = halves(NODES)  # n1 n2 | n3 n4 n5
    assert cut_off(two_three, NODES) == {"n1", "n2"}
    # In a ring of majorities every node hears a majority (though not the same one).
    assert cut_off(majorities_ring(NODES), NODES) == frozenset()
    assert cut_off({}, NODES) == frozenset()


def test_nodes_down_count_for_no_one_and_are_not_themselves_cut_off():
    # Three of five paused: the two left running cannot make a quorum between them.
    assert cut_off({}, NODES, down=["n3", "n4", "n5"]) == {"n1", "n2"}
    # n1 cut off and n3-n5 paused: n2 hears only itself; the paused are not counted.
    assert cut_off(grudge_from_json(isolate("n1")), NODES, down=["n3", "n4", "n5"]) == {
        "n1", "n2"}  # fmt: skip
    assert cut_off({}, NODES, down=["n5"]) == frozenset()


def test_cut_off_nodes_reads_the_active_faults_values():
    assert cut_off_nodes({"partition": isolate("n3")}, NODES) == {"n3"}
    paused = {"targets": "nodes", "nodes": ["n3", "n4"]}
    assert cut_off_nodes({"partition": grudge_to_json(halves(NODES)), "pause": paused},
                         NODES) == {"n1", "n2", "n5"}  # fmt: skip
    assert cut_off_nodes({"kill": {"targets": "all", "nodes": list(NODES)}}, NODES) == set()
    # A clock step removes no support; a value that is not a grudge cuts nothing.
    assert cut_off_nodes({"clock": {"kind": "bump", "offsets": {"n1": -30}}}, NODES) == set()
    assert cut_off_nodes({"partition": "primaries"}, NODES) == set()


def _complete(driver: Driver, p: int, node: str, typ: str = "ok") -> None:
    driver.observe({"process": p, "type": "invoke", "f": "read", "time": 0})
    driver.observe({"process": p, "type": typ, "f": "read", "node": node, "time": 1000})


def test_the_driver_counts_what_a_cut_off_node_acknowledges_while_it_is_cut_off():
    active: dict[str, Any] = {}
    space = FaultSpace.of(["partition"], NODES, roles=True, interval=1.0, time_limit=10.0)
    driver = Driver(AdaptiveScheduler(), space, rng=random.Random(1), active=lambda: active)
    _complete(driver, 0, "n1")
    active["partition"] = isolate("n1")
    _complete(driver, 1, "n1")
    _complete(driver, 2, "n1", "fail")  # refused: not an acknowledgement
    _complete(driver, 3, "n2")  # the majority's side
    active.pop("partition")
    _complete(driver, 4, "n1")
    assert driver.observed.cut_off_ok == {"n1": 1}
    assert driver.observed.by_node("ok") == {"n1": 3, "n2": 1}


def _window(obs: Observations, p0: int, acks: dict[str, int], cut: frozenset[str]) -> int:
    for node, n in acks.items():
        for p in range(p0, p0 + n):
            obs.record({"process": p, "type": "invoke", "f": "read", "time": 0},
                       faulted=bool(cut))  # fmt: skip
            obs.record({"process": p, "type": "ok", "f": "read", "node": node, "time": 9},
                       faulted=bool(cut), cut_off=cut)  # fmt: skip
        p0 += n
    return p0


def test_the_tracker_gives_the_share_of_a_windows_acknowledgements_from_cut_off_nodes():
    obs, tracker = Observations(), StateTracker()
    p = _window(obs, 0, {"n1": 10}, frozenset())
    tracker.state(obs, "")
    assert tracker.cut_off_share == 0 and tracker.cut_off_acks == 0
    p = _window(obs, p, {"n1": 6, "n2": 2}, frozenset({"n1"}))
    tracker.state(obs, "partition@leader")
    assert tracker.cut_off_acks == 6 and tracker.cut_off_share == pytest.approx(0.75)
    _window(obs, p, {"n2": 4}, frozenset({"n1"}))
    tracker.state(obs, "partition@leader")
    assert tracker.cut_off_acks == 0 and tracker.cut_off_share == 0


def _decide(sched: AdaptiveScheduler, obs: Observations, now: float,
            active: dict[str, Any]) -> Any:  # fmt: skip
    space = FaultSpace.of(["partition", "clock"], NODES, roles=True, interval=1.0,
                          time_limit=10.0)  # fmt: skip
    view = RunView(now=now, space=space, active=active, ledger=[], observed=obs,
                   rng=random.Random(int(now)))  # fmt: skip
    return sched.next_op(view)


def _q_after(cut: frozenset[str]) -> tuple[float, str]:
    """The Q-value of the first decision's move once the second decision saw a window of
    8 acknowledgements, 6 of them from n1, cut off or not; and the second's explanation."""
    sched = AdaptiveScheduler(Learner())
    obs = Observations()
    p = _window(obs, 0, {"n1": 10}, frozenset())
    _decide(sched, obs, 1.0, {})
    state, action = sched.pairs[0]
    _window(obs, p, {"n1": 6, "n2": 2}, cut)
    second = _decide(sched, obs, 2.0, {})
    why = second.why if isinstance(second, FaultOp) else sched.holds[-1]["why"]
    return sched.learner.q[state][action], why


def test_acknowledgements_without_a_quorum_are_rewarded_and_explained():
    without, why_without = _q_after(frozenset())
    with_cut, why_with = _q_after(frozenset({"n1"}))
    # Same state, same move, same next state's values: the Q-values differ by α times
    # the reward for the share of acknowledgements without a quorum (6 of 8).
    assert with_cut - without == pytest.approx(ALPHA * CUT_OFF_REWARD * 0.75, abs=1e-5)
    assert "from nodes cut off from a majority" not in why_without
    assert "6 acks (75%) from nodes cut off from a majority (+1.50)" in why_with
