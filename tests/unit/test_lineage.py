"""Lineage and hitting sets (nemeses/lineage.py) and the LDFI loop (nemeses/schedulers/
ldfi.py) on hand-made histories and ledgers."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from nemeses.lineage import (
    OutcomeClass,
    candidate_actions,
    classes_of_history,
    minimal_hitting_sets,
    raft_supports,
    removed_by,
)
from nemeses.scheduler import (
    FaultOp,
    FaultSpace,
    Observations,
    RunView,
    SchedulerArgs,
    make_scheduler,
)
from nemeses.schedulers.ldfi import LdfiScheduler, LdfiState, learn

NODES = ("n1", "n2", "n3", "n4", "n5")
S = 1_000_000_000


def ok(p: int, f: str, node: str, t: float, value: Any = None) -> dict[str, Any]:
    return {"process": p, "type": "ok", "f": f, "node": node, "time": int(t * S), "value": value}


def hitting(kind: str, leader: str, k: int, kinds=("kill", "partition", "pause")) -> list:
    actions = candidate_actions(kinds, NODES)
    removes = {a: removed_by(a, leader, NODES) for a in actions}
    return minimal_hitting_sets(raft_supports(kind, leader, NODES), actions, removes, k)


def test_classes_of_a_history_by_serving_node():
    h = [
        {"process": 0, "type": "invoke", "f": "write", "node": "n3", "time": 0},
        ok(0, "write", "n1", 0.1), ok(1, "read", "n1", 0.2), ok(2, "add", "n2", 3.0),
        {"process": 3, "type": "info", "f": "write", "node": "n1", "time": 1},
        {"process": "nemesis", "type": "ok", "f": "start-kill", "time": 1},
        ok(4, "read", "n1", 0.3),
    ]  # fmt: skip
    classes = classes_of_history(h)
    assert {k: c.outcomes for k, c in classes.items()} == {"write@n1": 1, "read@n1": 2,
                                                            "write@n2": 1}  # fmt: skip


def test_supports_of_a_write_and_a_read():
    w = raft_supports("write", "n1", NODES)
    assert frozenset({"copy:n1"}) in w and frozenset({"repl:n1>n3", "copy:n3"}) in w
    assert len(w) == 5
    r = raft_supports("read", "n1", NODES)
    assert len(r) == 6 and frozenset({"hb:n1>n2", "hb:n1>n5"}) in r  # C(4, 2) quorums


def test_minimal_hitting_sets_of_a_write_and_a_read():
    # A write survives while any holder keeps it: kill all, or cut replication and kill
    # the leader (early-ack's and commit-unchecked's shape).
    assert hitting("write", "n1", 2) == [
        (("kill", "all"),), (("partition", "node:n1"), ("kill", "node:n1"))
    ]  # fmt: skip
    # A read is fresh while the leader hears a majority: isolate it (stale-leader-read).
    assert hitting("read", "n1", 2) == [(("partition", "node:n1"),)]
    # ... or, with three faults, cut three of its four followers by pauses/partitions.
    three = hitting("read", "n1", 3)
    assert (("partition", "node:n2"), ("partition", "node:n3"), ("partition", "node:n4")) in three
    assert all(len(h) <= 3 for h in three)
    # minimality: no found set contains another
    assert not any(set(a) < set(b) for a in three for b in three)


def test_no_hitting_set_when_a_support_is_out_of_reach():
    assert hitting("write", "n1", 2, kinds=("partition",)) == []  # nothing removes copy:n1
    c = OutcomeClass(kind="write", leader="n1", learned={"disk:n1": "seen"})
    actions = candidate_actions(("kill", "partition"), NODES)
    removes = {a: removed_by(a, "n1", NODES) for a in actions}
    assert minimal_hitting_sets(c.supports(NODES), actions, removes, 3) == []


def test_a_hand_made_brute_force_agrees():
    supports = [frozenset({"a", "b"}), frozenset({"b", "c"}), frozenset({"c", "d"})]
    removes = {("x", "a"): frozenset({"a"}), ("x", "b"): frozenset({"b"}),
               ("x", "c"): frozenset({"c"}), ("x", "d"): frozenset({"d"})}  # fmt: skip
    got = minimal_hitting_sets(supports, list(removes), removes, 3)
    assert sorted(tuple(t for _k, t in h) for h in got) == [("a", "c"), ("b", "c"), ("b", "d")]


def test_a_valid_run_teaches_disk_and_lease():
    state = LdfiState()
    h = [ok(0, "write", "n1", 0.5, 7), ok(1, "read", "n1", 0.6), ok(2, "write", "n2", 4.0),
         ok(3, "read", "n2", 4.1, 7)]  # fmt: skip
    # n2 was not leading when cut: nothing learned about its reads
    vacuous = LdfiState()
    vacuous.observe(h)
    cut_n2 = [{"kind": "partition", "event": "applied", "time": 1 * S},
              {"kind": "partition", "event": "healed", "time": 3 * S}]  # fmt: skip
    assert learn(vacuous, [("partition", "node:n2")], h, cut_n2)[0].startswith("none:")
    assert vacuous.classes["read@n2"].learned == {}
    state.observe(h)
    ledger = [
        {"kind": "partition", "event": "applied", "time": 1 * S},
        {"kind": "kill", "event": "applied", "time": 2 * S},
        {"kind": "kill", "event": "healed", "time": 3 * S},
        {"kind": "partition", "event": "healed", "time": 3 * S},
    ]
    lessons = learn(state, [("partition", "node:n1"), ("kill", "node:n1")], h, ledger)
    assert len(lessons) == 2
    assert "disk:n1" in state.classes["write@n1"].learned
    assert "lease:n1" in state.classes["read@n1"].learned
    assert state.classes["write@n2"].learned == {}
    # no read after the restart saw n1's write: nothing learned about its disk
    blind = LdfiState()
    h3 = [ok(0, "write", "n1", 0.5, 7), ok(1, "read", "n1", 0.6), ok(3, "read", "n2", 4.1, 8)]
    blind.observe(h3)
    assert learn(blind, [("kill", "all")], h3, ledger)[0].startswith("none: no read after n1")
    assert blind.classes["write@n1"].learned == {}
    # n1 served a read during the cut: no lease lesson
    state2 = LdfiState()
    h2 = [*h, ok(5, "read", "n1", 2.5)]
    state2.observe(h2)
    learn(state2, [("partition", "node:n1")], h2, ledger)
    assert state2.classes["read@n1"].learned == {}


def _view(state_space: FaultSpace) -> RunView:
    return RunView(now=0.0, space=state_space, active={}, ledger=[], observed=Observations(),
                   rng=random.Random(1))  # fmt: skip


def _store_run(store: Path, name: str, ledger: list[dict[str, Any]],
               history: list[dict[str, Any]], valid: bool) -> None:  # fmt: skip
    run = store / "bugkv-register" / name
    run.mkdir(parents=True)
    (run / "faults.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ledger))
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    (run / "results.json").write_text(json.dumps({"valid": valid}))


def test_the_loop_observes_tries_each_hypothesis_once_and_ends_exhausted(tmp_path: Path):
    """Scripted runs: n1 always leads, every run is valid, and each fault run shows the
    lesson (n1's writes survive a kill; n1 serves no read while cut off)."""
    store = tmp_path / "store"
    space = FaultSpace.of(["partition", "kill"], NODES, roles=True, interval=1.0, time_limit=5)
    history = [ok(0, "write", "n1", 0.5), ok(1, "read", "n1", 0.6)]
    struck: list[list[Any]] = []
    for i in range(8):
        sched = make_scheduler("ldfi", SchedulerArgs(seed=i, store=str(store), suite="bugkv"))
        assert isinstance(sched, LdfiScheduler)
        view = _view(space)
        ops: list[FaultOp] = []
        while (op := sched.next_op(view)) is not None:
            assert isinstance(op, FaultOp)  # ldfi never waits
            ops.append(op)
        summary = sched.summary(view)
        if summary["exhausted"]:
            break
        struck.append(summary["hypothesis"])
        ledger: list[dict[str, Any]] = []
        for o in ops:
            kind = o.f.split("-", 1)[1]
            ledger.append({"kind": kind, "event": "applied" if o.f.startswith("start") else
                           "healed", "time": int(o.at * S)})  # fmt: skip
        ledger.append({"event": "scheduler", **summary})
        _store_run(store, f"r{i}", ledger, history, True)
    assert struck[0] == []  # the first run observes
    assert [["partition", "node:n1"]] in struck and [["kill", "all"]] in struck
    assert i < 7 and summary["exhausted"].startswith(
        "exhausted: no combination of ≤ 2 faults of kinds kill, partition removes every "
        "support of an acknowledged write or read, within this model"
    )
    assert len(struck) == len({json.dumps(h) for h in struck})  # never twice


def test_an_invalid_run_ends_the_search(tmp_path: Path):
    store = tmp_path / "store"
    space = FaultSpace.of(["partition", "kill"], NODES, roles=True, interval=1.0, time_limit=5)
    state = LdfiState()
    state.observe([ok(0, "read", "n1", 0.1)])
    s = LdfiScheduler(state)
    ops = [o for o in iter(lambda: s.next_op(_view(space)), None) if isinstance(o, FaultOp)]
    assert [o.f for o in ops] == ["start-partition", "stop-partition"]
    assert ops[0].value["n1"] == ["n2", "n3", "n4", "n5"] and ops[0].value["n2"] == ["n1"]
    args = SchedulerArgs(seed=1, store=str(store), suite="s")
    first = make_scheduler("ldfi", args)
    summary = first.summary(_view(space))  # type: ignore[attr-defined]
    _store_run(store, "r0", [{"event": "scheduler", **summary}], [], False)
    second = make_scheduler("ldfi", args)
    assert isinstance(second, LdfiScheduler) and second.state.found
    assert second.next_op(_view(space)) is None
