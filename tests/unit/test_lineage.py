"""Lineage and hitting sets (nemeses/lineage.py) and the LDFI loop (nemeses/schedulers/
ldfi.py) on hand-made histories and ledgers."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from nemeses.lineage import (
    OutcomeClass,
    candidate_actions,
    class_supports,
    classes_of_history,
    compose,
    minimal_hitting_sets,
    outcome_class,
    removed_by,
    symmetric_key,
)
from nemeses.scheduler import (
    FaultOp,
    FaultSpace,
    Observations,
    RunView,
    SchedulerArgs,
    Wait,
    make_scheduler,
)
from nemeses.schedulers.ldfi import (
    INCONCLUSIVE,
    MAX_INCONCLUSIVE,
    LdfiScheduler,
    LdfiState,
    exhausted_statement,
    isolated_node,
    learn,
    single_ops,
)

NODES = ("n1", "n2", "n3", "n4", "n5")
S = 1_000_000_000
KINDS = ("kill", "partition", "pause")


def ok(p: int, f: str, node: str, t: float, value: Any = None, key: Any = 0) -> dict[str, Any]:
    return {"process": p, "type": "ok", "f": f, "node": node, "time": int(t * S),
            "value": value, "key": key}  # fmt: skip


def inv(p: int, f: str, node: str, t: float) -> dict[str, Any]:
    return {"process": p, "type": "invoke", "f": f, "node": node, "time": int(t * S)}


def hitting(kind: str, k: int, kinds=KINDS, learned=None) -> list:
    actions = candidate_actions(kinds)
    removes = {a: removed_by(a) for a in actions}
    return minimal_hitting_sets(class_supports(kind, 4, learned), actions, removes, k)


def test_classes_of_a_history_by_role_window_and_tail():
    h = [
        inv(0, "write", "n3", 0.0), ok(0, "write", "n1", 0.1), ok(1, "read", "n1", 0.2),
        ok(2, "add", "n2", 3.0), ok(5, "write", "n1", 0.4),
        {"process": "nemesis", "type": "ok", "f": "start-kill", "time": 1},
        ok(4, "read", "n1", 0.3), ok(6, "read", "n2", 9.5),  # after the window
        inv(7, "write", "n1", 2.0), {"process": 7, "type": "info", "f": "write", "time": 3 * S},
        inv(8, "write", "n1", 2.5),
        {"process": 8, "type": "fail", "f": "write", "node": "n1", "time": int(2.9 * S)},
        inv(9, "write", "n2", 2.5),  # not on the cut node: not its tail
        {"process": 9, "type": "info", "f": "write", "time": 3 * S},
        inv(10, "write", "n1", 6.0),  # outside the cut
        {"process": 10, "type": "info", "f": "write", "time": 7 * S},
    ]  # fmt: skip
    classes = classes_of_history(h, until=9.0, cuts=[("n1", 1.5, 4.0)])
    got = {k: (c.leader, c.outcomes) for k, c in classes.items()}
    assert got == {"write": ("n1", 3), "read": ("n1", 2), "tail": ("n1", 2)}
    assert "tail" not in classes_of_history(h, until=9.0)  # no cut, no tail


def test_supports_of_each_class():
    w = class_supports("write", 4)
    assert (
        frozenset({"copy:leader"}) in w and frozenset({"repl:follower:2", "copy:follower:2"}) in w
    )
    assert len(w) == 5
    r = class_supports("read", 4)
    assert len(r) == 6 and frozenset({"hb:follower:0", "hb:follower:3"}) in r  # C(4, 2)
    assert frozenset({"leasetime"}) in class_supports("read", 4, {"leasetime": "seen"})
    assert class_supports("read", 4, {"disk": "evidence"}) == r  # evidence is no support
    assert class_supports("tail", 4) == [frozenset({"succ"})]
    assert class_supports("behind", 4) == [frozenset({"sticky"})]


def test_read_supports_are_the_majorities_of_any_cluster_size():
    # 4 nodes (3 followers): a majority is 3, the leader and 2 followers; 3 nodes: 2.
    assert sorted(map(sorted, class_supports("read", 3))) == [
        ["hb:follower:0", "hb:follower:1"],
        ["hb:follower:0", "hb:follower:2"],
        ["hb:follower:1", "hb:follower:2"],
    ]
    assert sorted(map(sorted, class_supports("read", 2))) == [["hb:follower:0"], ["hb:follower:1"]]


def test_only_a_clock_step_of_the_leader_removes_anything_of_a_clock_or_other_fault():
    assert removed_by(("clock", "leader")) == frozenset({"leasetime"})
    assert removed_by(("clock", "follower:0")) == frozenset()
    assert removed_by(("packet", "leader")) == frozenset()  # outside the model


def test_a_fault_of_one_follower_removes_that_follower_s_resources():
    # a kill loses its copy; a cut or a pause stops its replication and heartbeats
    assert removed_by(("kill", "follower:2")) == frozenset({"copy:follower:2"})
    cut = frozenset({"repl:follower:1", "hb:follower:1"})
    assert removed_by(("partition", "follower:1")) == removed_by(("pause", "follower:1")) == cut
    with pytest.raises(ValueError, match="unknown outcome class 'bogus'"):
        class_supports("bogus", 4)


def test_minimal_hitting_sets_of_each_class():
    # A write survives while any holder keeps it: kill all, or cut replication and kill
    # the leader.
    assert hitting("write", 2) == [
        (("kill", "all"),),
        (("partition", "leader"), ("kill", "leader")),
    ]
    # A read is fresh while the leader hears a majority: isolate it.
    assert hitting("read", 2) == [(("partition", "leader"),)]
    # ... once a lease was seen, the lease's clock too: a pause or a clock step inside a cut.
    lease = hitting("read", 2, (*KINDS, "clock"), {"leasetime": "seen"})
    assert lease == [(("partition", "leader"), ("pause", "leader")),
                     (("partition", "leader"), ("clock", "leader"))]  # fmt: skip
    # ... or with three faults, three of the four followers cut.
    three = hitting("read", 3)
    assert (("partition", "follower:0"), ("partition", "follower:1"),
            ("partition", "follower:2")) in three  # fmt: skip
    assert not any(set(a) < set(b) for a in three for b in three)  # minimal
    assert hitting("tail", 2) == [(("partition", "successor"),), (("kill", "successor"),)]
    assert hitting("behind", 2) == [(("partition", "leader"),), (("pause", "leader"),),
                                    (("kill", "leader"),)]  # fmt: skip


def test_no_hitting_set_when_a_support_is_out_of_reach():
    assert hitting("write", 2, kinds=("partition",)) == []  # nothing removes copy:leader
    assert hitting("read", 2, kinds=("kill",)) == []
    assert minimal_hitting_sets([], [("kill", "all")], {("kill", "all"): frozenset()}, 2) == []


def test_the_exact_search_agrees_with_brute_force_on_random_instances():
    rng = random.Random(7)
    for _ in range(200):
        resources = "abcdef"
        supports = [frozenset(rng.sample(resources, rng.randint(1, 3)))
                    for _ in range(rng.randint(1, 4))]  # fmt: skip
        actions = [("x", str(i)) for i in range(rng.randint(1, 6))]
        removes = {a: frozenset(rng.sample(resources, rng.randint(0, 2))) for a in actions}
        k = rng.randint(1, 3)
        hits = [
            set(c)
            for n in range(1, k + 1)
            for c in itertools.combinations(actions, n)
            if all(frozenset().union(*(removes[a] for a in c)) & s for s in supports)
        ]
        minimal = [h for h in hits if not any(o < h for o in hits)]
        got = minimal_hitting_sets(supports, actions, removes, k)
        assert sorted(map(sorted, minimal)) == sorted(map(sorted, map(set, got)))
        assert [len(h) for h in got] == sorted(len(h) for h in got)  # smallest first


def test_compose_orders_and_overlaps_as_the_lineage_says():
    # a pause before the cut it nests in; a clock step after the cut; both end inside it
    assert compose("read", [("partition", "leader"), ("pause", "leader")]) == (
        ("start-pause", "leader"), ("start-partition", "leader"), ("stop-pause", ""),
        ("stop-partition", ""))  # fmt: skip
    assert compose("read", [("partition", "leader"), ("clock", "leader")]) == (
        ("start-partition", "leader"), ("start-clock", "leader"), ("stop-clock", ""),
        ("stop-partition", ""))  # fmt: skip
    # cut replication before the copy is lost; heals in reverse
    assert compose("write", [("kill", "leader"), ("partition", "leader")]) == (
        ("start-partition", "leader"), ("start-kill", "leader"), ("stop-kill", ""),
        ("stop-partition", ""))  # fmt: skip
    # the tail's precondition (cut, heal) before the successor's loss
    assert compose("tail", [("kill", "successor")]) == (
        ("start-partition", "leader"), ("stop-partition", ""), ("start-kill", "successor"),
        ("stop-kill", ""))  # fmt: skip
    # behind: the follower's cut replaced by the leader's (one partition at a time)
    assert compose("behind", [("partition", "leader")]) == (
        ("start-partition", "follower:0"),
        ("start-partition", "leader"),
        ("stop-partition", ""),
    )
    assert compose("behind", [("pause", "leader")])[-1] == ("stop-partition", "")
    # the leader's cut replaces the follower's, and is healed last (after the kill)
    assert compose("behind", [("partition", "leader"), ("kill", "follower:1")]) == (
        ("start-partition", "follower:0"), ("start-partition", "leader"),
        ("start-kill", "follower:1"), ("stop-kill", ""), ("stop-partition", ""))  # fmt: skip
    # partitions, then pauses, then clock steps, then kills, whatever the order given
    acts = [("kill", "follower:1"), ("clock", "leader"), ("pause", "follower:0"),
            ("partition", "follower:2")]  # fmt: skip
    assert compose("write", acts) == (
        ("start-partition", "follower:2"), ("start-pause", "follower:0"),
        ("start-clock", "leader"), ("start-kill", "follower:1"), ("stop-kill", ""),
        ("stop-clock", ""), ("stop-pause", ""), ("stop-partition", ""))  # fmt: skip
    assert symmetric_key([("pause", "follower:2"), ("kill", "follower:0")]) == (
        ("pause", "follower:0"),
        ("kill", "follower:1"),
    )


def test_a_valid_run_teaches_the_lease_and_the_takeover_time():
    state = LdfiState()
    state.observe({"read": OutcomeClass("read", "n1", 2), "write": OutcomeClass("write", "n1", 1)})
    cut = {"n1": ["n2", "n3", "n4", "n5"], "n2": ["n1"], "n3": ["n1"], "n4": ["n1"], "n5": ["n1"]}
    ledger = [{"kind": "partition", "event": "applied", "time": 2 * S, "value": cut},
              {"kind": "partition", "event": "healed", "time": 5 * S}]  # fmt: skip
    h = [ok(0, "write", "n1", 1.5, 7), ok(1, "read", "n1", 1.6), ok(1, "read", "n1", 2.1),
         ok(2, "write", "n2", 2.8), ok(3, "read", "n2", 4.1, 7)]  # fmt: skip
    struck = {"hypothesis": [["partition", "leader"]], "from": 1.0, "to": 6.0, "leader": "n1"}
    lessons = learn(state, struck, h, ledger)
    assert state.timing["takeover"] == 0.8
    assert "leasetime" in state.classes["read"].learned
    assert any("0.10 s into the cut" in x for x in lessons)
    # n1 served a read in the second half of the cut: no lease
    state2 = LdfiState()
    state2.observe({"read": OutcomeClass("read", "n1", 2)})
    learn(state2, struck, [*h, ok(5, "read", "n1", 4.0)], ledger)
    assert "leasetime" not in state2.classes["read"].learned
    # n2 was cut, it served nothing before: nothing learned
    state3 = LdfiState()
    state3.observe({"read": OutcomeClass("read", "n1", 2)})
    cut2 = {"n2": ["n1", "n3", "n4", "n5"], "n1": ["n2"], "n3": ["n2"], "n4": ["n2"], "n5": ["n2"]}
    led2 = [{**ledger[0], "value": cut2}, ledger[1]]
    assert learn(state3, {**struck, "leader": "n2"}, h, led2)[0].startswith("none:")
    assert state3.classes["read"].learned == {} and "takeover" not in state3.timing


def test_the_lease_is_told_by_the_successor_not_by_the_cut_s_length():
    """A lease as long as half the cut (lease-ticks: 1.9 s, and a 3 s cut): the cut-off
    leader serves reads into the cut's second half, but none once a successor served; a
    leader still serving after that has no lease, even early in the cut."""
    cut = {"n1": ["n2", "n3", "n4", "n5"], "n2": ["n1"], "n3": ["n1"], "n4": ["n1"], "n5": ["n1"]}
    ledger = [{"kind": "partition", "event": "applied", "time": 2 * S, "value": cut},
              {"kind": "partition", "event": "healed", "time": 5 * S}]  # fmt: skip
    struck = {"hypothesis": [["partition", "leader"]], "from": 1.0, "to": 6.0, "leader": "n1"}
    base = [ok(0, "write", "n1", 1.5, 7), ok(1, "read", "n1", 1.6),
            ok(2, "write", "n2", 4.6, 8), ok(3, "read", "n2", 4.8, 8)]  # fmt: skip

    def lease(h: list[dict]) -> tuple[bool, list[str]]:
        state = LdfiState()
        state.observe({"read": OutcomeClass("read", "n1", 2)})
        lessons = learn(state, struck, h, ledger)
        return "leasetime" in state.classes["read"].learned, lessons

    # n1's last read 1.9 s into the cut (its second half), the successor's first ack 2.6 s
    got, lessons = lease([*base, ok(4, "read", "n1", 3.9)])
    assert got and any("none after a successor's first acknowledgement 2.60 s" in x
                       for x in lessons)  # fmt: skip
    # n1 served a read after the successor's first acknowledgement: no lease
    assert lease([*base, ok(4, "read", "n1", 4.7)])[0] is False
    # no successor served inside the cut: the second half decides, as before
    alone = [e for e in base if e["node"] == "n1"]
    assert lease([*alone, ok(4, "read", "n1", 3.9)])[0] is False
    # ... or nothing at all once the load is over
    assert lease([*alone, ok(4, "read", "n1", 3.2)])[0] is False


def test_transactions_are_writes_if_they_write_and_reads_if_they_only_read():
    """List-append and rw-register transactions (Galera, PostgreSQL): a committed one with an
    append or a register write is a write outcome, a read-only one a read; one that did not
    commit while its node was cut off is that node's tail."""
    h = [
        ok(0, "txn", "n2", 0.1, [["append", 3, 1], ["r", 4, [7]]]),
        ok(1, "txn", "n2", 0.2, [["w", 5, 2]]),
        ok(2, "txn", "n1", 0.3, [["append", 3, 2]]),
        ok(3, "txn", "n1", 0.4, [["r", 3, [1, 2]], ["r", 4, [7]]]),
        inv(4, "txn", "n2", 2.0),
        {"process": 4, "type": "info", "f": "txn", "value": [["append", 6, 1]], "time": 3 * S},
        inv(5, "txn", "n2", 2.1),  # read-only: nothing to leave in a tail
        {"process": 5, "type": "fail", "f": "txn", "value": [["r", 6, None]], "time": 3 * S},
    ]  # fmt: skip
    classes = classes_of_history(h, cuts=[("n2", 1.5, 4.0)])
    got = {k: (c.leader, c.outcomes) for k, c in classes.items()}
    assert got == {"write": ("n2", 3), "read": ("n1", 1), "tail": ("n2", 1)}
    # The live view counts ops without their values: a transaction is taken for a write.
    assert outcome_class("txn") == "write" and outcome_class("transfer") == "write"
    assert outcome_class("txn", [["r", 1, None]]) == "read"
    assert outcome_class("generate") is None


def test_a_transaction_is_read_as_its_micro_ops_by_the_lessons():
    txn = ok(0, "txn", "n1", 1.5, [["append", 7, 3], ["r", 8, [1]], ["w", 9, 4]])
    assert [(e["f"], e["key"], e["value"], e["node"]) for e in single_ops([txn])] == [
        ("add", 7, 3, "n1"),
        ("read", 8, [1], "n1"),
        ("write", 9, 4, "n1"),
    ]
    # A kill of every node 0.5 s after the transaction, then one that reads the list back
    # (not the register): evidence that the copies persisted, as for a set's add.
    state = LdfiState()
    state.observe({"write": OutcomeClass("write", "n1", 1)})
    ledger = [{"kind": "kill", "event": "applied", "time": 2 * S},
              {"kind": "kill", "event": "healed", "time": 3 * S}]  # fmt: skip
    struck = {"hypothesis": [["kill", "all"]], "from": 1.0, "to": 6.0}
    back = ok(1, "txn", "n2", 4.0, [["r", 7, [3]]])
    assert learn(state, struck, [txn, back], ledger)[0].startswith("1 of 2 keys written")
    assert "disk" in state.classes["write"].learned


def test_a_kill_of_all_with_reads_of_earlier_writes_is_evidence_of_disk():
    state = LdfiState()
    state.observe({"write": OutcomeClass("write", "n1", 1)})
    ledger = [{"kind": "kill", "event": "applied", "time": 2 * S},
              {"kind": "kill", "event": "healed", "time": 3 * S}]  # fmt: skip
    struck = {"hypothesis": [["kill", "all"]], "from": 1.0, "to": 6.0}
    h = [ok(0, "write", "n1", 1.5, 7), ok(1, "read", "n2", 4.0, 7)]
    assert learn(state, struck, h, ledger)[0].startswith("1 of 1 keys written in the 1 s")
    assert "disk" in state.classes["write"].learned
    blind = LdfiState()
    blind.observe({"write": OutcomeClass("write", "n1", 1)})
    assert learn(blind, struck, h[:1], ledger)[0].startswith(INCONCLUSIVE + "none of 1 keys")
    assert blind.classes["write"].learned == {}


def kill_of_all_at_5s() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The ledger of a kill of every node from 5 s to 6 s, and the hypothesis it struck."""
    ledger = [{"kind": "kill", "event": "applied", "time": 5 * S},
              {"kind": "kill", "event": "healed", "time": 6 * S}]  # fmt: skip
    return ledger, {"hypothesis": [["kill", "all"]], "from": 1.0, "to": 9.0}


def writes_seen() -> LdfiState:
    """A fresh ldfi state that has seen acknowledged writes on n1."""
    state = LdfiState()
    state.observe({"write": OutcomeClass("write", "n1", 1)})
    return state


def test_only_reads_of_the_keys_a_kill_of_all_put_at_risk_are_evidence():
    ledger, struck = kill_of_all_at_5s()
    state = writes_seen()
    # Key 0 was written 0.5 s before the kill; key 1 long before (on disk by then): reading
    # key 1 back tests nothing, nor does reading key 0 once it was written again.
    h = [ok(0, "write", "n1", 4.5, 8), ok(1, "write", "n1", 1.0, 9, key=1),
         ok(2, "read", "n2", 7.0, 9, key=1), ok(3, "write", "n2", 7.2, 10),
         ok(4, "read", "n2", 7.5, 10)]  # fmt: skip
    (lesson,) = learn(state, struck, h, ledger)
    assert lesson.startswith(INCONCLUSIVE + "none of 1 keys"), lesson
    read_first = [*h[:3], ok(5, "read", "n2", 7.1, 8), *h[3:]]
    (lesson,) = learn(state, struck, read_first, ledger)
    assert lesson.startswith("1 of 1 keys"), lesson
    # A set keeps every add: any read of the key after the restart tests them.
    adds = [ok(0, "add", "n1", 4.2, 1), ok(1, "add", "n1", 4.6, 2), ok(2, "add", "n1", 7.0, 3),
            ok(3, "read-set", "n2", 7.5, [1, 2, 3])]  # fmt: skip
    (lesson,) = learn(state, struck, adds, ledger)
    assert lesson.startswith("1 of 1 keys"), lesson


def test_a_kill_of_all_tests_the_disk_only_if_the_key_written_last_was_read_back():
    # A store that defers its writes (bugkv's buffered log) loses the newest first: key 0
    # written 0.9 s before the kill was flushed, key 1 written 0.05 s before was not.
    # Reading key 0 back alone says nothing of key 1, so the hypothesis is struck again.
    ledger, struck = kill_of_all_at_5s()
    state = writes_seen()
    h = [ok(0, "write", "n1", 4.1, 8), ok(1, "write", "n1", 4.95, 9, key=1),
         ok(2, "read", "n2", 7.0, 8)]  # fmt: skip
    (lesson,) = learn(state, struck, h, ledger)
    assert lesson.startswith(INCONCLUSIVE + "1 of 2 keys written in the 1 s"), lesson
    assert "not the one written last (0.05 s before the kill" in lesson, lesson
    assert "newest read back 0.90 s before" in lesson, lesson
    assert state.classes["write"].learned == {}
    (lesson,) = learn(state, struck, [*h, ok(3, "read", "n3", 7.2, 9, key=1)], ledger)
    assert lesson.startswith("2 of 2 keys written"), lesson
    assert "the one written last (0.05 s before the kill) among them" in lesson, lesson
    assert "disk" in state.classes["write"].learned
    # The key written last, read back alone, is evidence for every older one.
    (lesson,) = learn(writes_seen(), struck, [*h[:2], ok(3, "read", "n3", 7.2, 9, key=1)], ledger)
    assert lesson.startswith("1 of 2 keys written"), lesson


def test_isolated_node_of_a_grudge():
    assert isolated_node({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}) == "n1"
    assert isolated_node({"n1": ["n2"], "n2": ["n1"]}, NODES) is None  # halves of two
    assert isolated_node("primaries") is None


class World:
    """A scripted cluster for the loop: n1 leads (n2 after n1 is cut off, 0.7 s later);
    reads are served by the leader only while it hears a majority (a correct lease)."""

    def __init__(self, store: Path, kinds: tuple[str, ...], time_limit: float = 10.0) -> None:
        self.store = store
        self.space = FaultSpace.of(list(kinds), NODES, roles=True, interval=1.0,
                                   time_limit=time_limit)  # fmt: skip

    def run(self, i: int, *, invalid: bool = False) -> dict[str, Any]:
        sched = make_scheduler("ldfi", SchedulerArgs(seed=i, store=str(self.store), suite="kv"))
        assert isinstance(sched, LdfiScheduler)
        obs = Observations()
        history: list[dict[str, Any]] = []
        ledger: list[dict[str, Any]] = []
        active: dict[str, Any] = {}
        now, p, cut_at = 0.0, 0, None
        while True:
            # the load: each 0.1 s a write and a read, served by whoever leads
            while p < now * 10:
                t = p / 10
                leader = "n2" if cut_at is not None and t > cut_at + 0.7 else "n1"
                for f in ("write", "read"):
                    if f == "read" and leader == "n1" and cut_at is not None:
                        continue
                    e = ok(p, f, leader, t, p)
                    history += [inv(p, f, leader, t), e]
                    obs.record(inv(p, f, leader, t), faulted=bool(active))
                    obs.record(e, faulted=bool(active))
                if isolated_node(active.get("partition")) == "n1":
                    # n1's own client: a write n1 takes while cut off, never acknowledged
                    q = 10_000 + p
                    history += [inv(q, "write", "n1", t),
                                {"process": q, "type": "info", "f": "write",
                                 "time": int((t + 0.05) * S)}]  # fmt: skip
                p += 1
            view = RunView(now=now, space=self.space, active=dict(active), ledger=list(ledger),
                           observed=obs, rng=random.Random(i))  # fmt: skip
            d = sched.next_op(view)
            if d is None:
                break
            if isinstance(d, Wait):
                now = max(now, d.until)
                continue
            assert isinstance(d, FaultOp) and d.why.startswith("ldfi: ")
            now = max(now, d.at) + 0.3
            kind = d.f.split("-", 1)[1]
            if d.f.startswith("start-"):
                value = d.value
                if value == "primaries":
                    value = {n: ([m for m in NODES if m != n] if n == "n1" else ["n1"])
                             for n in NODES}  # fmt: skip
                elif value == {"targets": "primaries"}:
                    value = {"targets": "primaries", "nodes": ["n1"]}
                active[kind] = value
                if kind == "partition" and isolated_node(value) == "n1":
                    cut_at = now
                ledger.append({"kind": kind, "event": "applied", "time": int(now * S),
                               "value": value})  # fmt: skip
            else:
                active.pop(kind, None)
                ledger.append({"kind": kind, "event": "healed", "time": int(now * S)})
        summary = sched.summary(RunView(now=now, space=self.space, active={}, ledger=ledger,
                                        observed=obs, rng=random.Random(i)))  # fmt: skip
        ledger.append({"event": "scheduler", **summary})
        run = self.store / "kv-register" / f"r{i:02d}"
        run.mkdir(parents=True)
        (run / "faults.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ledger))
        (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
        (run / "results.json").write_text(json.dumps({"valid": not invalid}))
        return summary


def test_the_loop_packs_hypotheses_learns_and_ends_exhausted(tmp_path: Path):
    world = World(tmp_path / "store", ("partition", "kill", "pause"), time_limit=12.0)
    struck: list[str] = []
    for i in range(10):
        summary = world.run(i)
        if summary["exhausted"]:
            break
        struck += [h["key"] for h in summary["hypotheses"]]
        if i == 0:
            # the first run reads its classes off the load, then strikes the cheapest; the
            # read class's cut of the leader within the behind class's, at its place
            first = [(h["class"], h["hypothesis"]) for h in summary["hypotheses"]]
            assert first[:2] == [("write", [["kill", "all"]]),
                                 ("behind", [["partition", "leader"]])]  # fmt: skip
            assert summary["hypotheses"][1]["leader"] == "n1"
            assert [c["class"] for c in summary["hypotheses"][1]["covers"]] == ["read"]
        if i == 1:
            # the lease and the takeover (0.7 s) were learned from run 0
            assert summary["timing"]["takeover"] < 1.0
    assert summary["exhausted"].startswith(
        "exhausted: no combination of ≤ 2 faults of kinds kill, partition, pause removes "
        "every support of an acknowledged write or read, within this model"
    )
    assert i <= 9, i  # bounded: a dozen hypotheses, one to three a run
    # Never twice, but for a hypothesis that tested nothing: in this world every read
    # after the restart follows a new write, so no kill of all tests what it put at risk.
    kill_all = '["write", [["kill", "all"]]]'
    assert struck.count(kill_all) == MAX_INCONCLUSIVE
    rest = [k for k in struck if k != kill_all]
    assert len(rest) == len(set(rest))
    assert any("pause" in k and "read" in k for k in struck)  # the lease's clock was tried
    # the cut-off leader's unacknowledged writes became the tail class, whose hypotheses
    # (the successor's loss after a heal) were struck
    assert "tail" in summary["classes"]
    assert any(k.startswith('["tail"') for k in struck)


def test_an_invalid_run_ends_the_search_and_the_next_starts_anew(tmp_path: Path):
    world = World(tmp_path / "store", ("partition", "kill"), time_limit=12.0)
    first = world.run(0, invalid=True)
    assert first["hypotheses"] and first["found"] is None
    second = world.run(1)
    assert second["found"] and second["found"].startswith("run ")
    assert any(n.startswith("search over: run ") for n in second["notes"])
    # a new search: the same cheapest hypothesis again, with the lineage kept
    assert second["hypotheses"][0]["key"] == first["hypotheses"][0]["key"]
    assert "read" in second["classes"]


def test_the_next_campaign_reads_the_invalid_run_that_ended_the_last_one(tmp_path: Path):
    """Each campaign keeps its runs in a store of its own under the root the memory lives in:
    the next campaign's first run must still find the run that ended the last search."""
    root = tmp_path / "store"
    world = World(root / "campaigns" / "kv-register" / "c1" / "runs", ("partition", "kill"))
    first = world.run(0, invalid=True)
    world.store = root / "campaigns" / "kv-register" / "c2" / "runs"
    second = world.run(1)
    assert second["found"] and second["found"].startswith("run ")
    assert second["hypotheses"][0]["key"] == first["hypotheses"][0]["key"]


def test_hypotheses_cheapest_first_and_behind_predicted_only_with_partitions():
    state = LdfiState()
    state.observe({"read": OutcomeClass("read", "n1", 5), "write": OutcomeClass("write", "n1", 5)})
    got = [(c, [list(a) for a in h]) for c, h in state.hypotheses(KINDS, 2)]
    assert got[:3] == [("read", [["partition", "leader"]]), ("write", [["kill", "all"]]),
                       ("behind", [["partition", "leader"]])]  # fmt: skip
    costs = [len(compose(c, [tuple(a) for a in h])) for c, h in got]
    assert costs == sorted(costs)
    assert all(c != "behind" for c, _h in state.hypotheses(("kill", "pause"), 2))
    # tried ones are left out (followers renumbered: one test for any follower)
    state.tried.append({"key": json.dumps(["read", [["partition", "leader"]]])})
    assert ("read", (("partition", "leader"),)) not in state.hypotheses(KINDS, 2)


def test_the_exhausted_statement_is_precise():
    state = LdfiState()
    state.observe({"write": OutcomeClass("write", "n1", 7)})
    state.runs = 3
    text = exhausted_statement(state, ("kill", "partition", "packet"), 2)
    assert text == (
        "exhausted: no combination of ≤ 2 faults of kinds kill, partition removes every "
        "support of an acknowledged write or read, within this model (classes: write "
        "(7 ops); 0 hypotheses tried, all valid; 3 runs)"
    )


def test_holds_of_composed_moves_stored_as_lists():
    sched = LdfiScheduler(LdfiState())
    moves = [list(m) for m in compose("read", [("partition", "leader"), ("pause", "leader")])]
    holds = [sched._hold(moves, i, 1.0) for i in range(len(moves))]
    assert holds == [0.0, 0.0, 3.0, 1.0]  # pause, cut at once, resumed (timed from the pause)
    moves = [list(m) for m in compose("read", [("partition", "leader"), ("clock", "leader")])]
    assert [sched._hold(moves, i, 1.0) for i in range(4)] == [0.0, 5.0, 1.0, 1.0]


def first_second_of_load(tmp_path: Path, f: str, kinds: list[str]) -> tuple[LdfiScheduler, RunView]:
    """A fresh ldfi scheduler, and the view after a second of load: three ``f`` ops
    acknowledged by n2."""
    space = FaultSpace.of(kinds, NODES, roles=True, interval=1.0, time_limit=10.0)
    sched = make_scheduler("ldfi", SchedulerArgs(seed=1, store=str(tmp_path), suite=f))
    assert isinstance(sched, LdfiScheduler)
    obs = Observations()
    for p in range(3):
        obs.record(inv(p, f, "n2", 0.1 * p), faulted=False)
        obs.record(ok(p, f, "n2", 0.1 * p + 0.05), faulted=False)
    view = RunView(now=1.0, space=space, active={}, ledger=[], observed=obs,
                   rng=random.Random(1))  # fmt: skip
    return sched, view


def test_a_load_outside_the_lineage_model_strikes_nothing_and_says_why(tmp_path: Path):
    """A unique-ids load acknowledges ``generate`` ops: no class of the model, so no
    hypothesis, and the scheduler record says which ops it could not model (on etcd's lock
    bug, before locks had a class, it struck nothing in silence)."""
    sched, view = first_second_of_load(tmp_path, "generate", ["pause"])
    assert sched.next_op(view) is None
    notes = sched.summary(view)["notes"]
    assert notes[0] == "classes from the first 1.0 s of load: none", notes
    assert notes[1].startswith("nothing to strike: the load's acknowledged ops (f generate) "
                               "are outside ldfi's lineage"), notes  # fmt: skip


def test_a_transactional_load_gets_hypotheses_against_the_node_serving_its_commits(
    tmp_path: Path,
):
    """A list-append load (Galera's, PostgreSQL's) commits transactions served by one node:
    they are write outcomes, and ldfi strikes a hypothesis against their supports."""
    sched, view = first_second_of_load(tmp_path, "txn", ["kill", "pause"])
    op = sched.next_op(view)
    assert isinstance(op, FaultOp) and op.f == "start-kill", op
    notes = sched.summary(view)["notes"]
    assert notes[0] == "classes from the first 1.0 s of load: ['write']", notes


def test_a_lock_acquire_rests_on_its_session_which_a_pause_or_cut_of_its_node_ends():
    """Kills end a session too, but its waiters' requests fail with it: no client is told
    it holds a lock it lost, so the model leaves them out."""
    assert class_supports("lock", 4) == [frozenset({"session:leader"})]
    assert hitting("lock", 2, ("kill", "partition", "pause", "clock")) == [
        (("partition", "leader"),), (("pause", "leader"),)]  # fmt: skip
    assert hitting("lock", 2, ("kill",)) == []
    h = [inv(0, "acquire", "n2", 0.1), ok(0, "acquire", "n2", 0.2), inv(0, "release", "n2", 0.3),
         ok(0, "release", "n2", 0.4), inv(1, "acquire", "n3", 0.1), ok(1, "acquire", "n3", 0.5),
         ok(2, "acquire", "n2", 0.9)]  # fmt: skip
    classes = classes_of_history(h)
    assert list(classes) == ["lock"] and classes["lock"].leader == "n2"
    assert classes["lock"].outcomes == 3


def test_ldfi_strikes_a_pause_of_the_node_serving_acquires_held_past_the_lease(tmp_path: Path):
    space = FaultSpace.of(["pause"], NODES, roles=True, interval=4.0, time_limit=20.0)
    sched = make_scheduler("ldfi", SchedulerArgs(seed=1, store=str(tmp_path), suite="etcd"))
    assert isinstance(sched, LdfiScheduler)
    obs = Observations()
    for p, node in enumerate(["n2", "n2", "n3"]):
        obs.record(inv(p, "acquire", node, 0.5 * p), faulted=False)
        obs.record(ok(p, "acquire", node, 0.5 * p + 0.2), faulted=False)
    view = RunView(now=4.0, space=space, active={}, ledger=[], observed=obs,
                   rng=random.Random(1))  # fmt: skip
    op = sched.next_op(view)
    assert isinstance(op, FaultOp) and op.f == "start-pause", op
    assert op.value == {"targets": "nodes", "nodes": ["n2"]}
    assert "lock outcomes" in op.why and "holds 6.0 s" in op.why, op.why  # takeover + interval


def _lock_run(waiter_done: float, other_ok: float) -> list[dict[str, Any]]:
    """A client of n3 asks for the lock at 1.0 s and is answered at ``waiter_done``; a
    client of n1 acquires at ``other_ok`` and releases."""
    return [inv(0, "acquire", "n3", 1.0), inv(1, "acquire", "n1", 1.5),
            ok(1, "acquire", "n1", other_ok), inv(1, "release", "n1", other_ok + 0.5),
            ok(1, "release", "n1", other_ok + 0.6),
            {**ok(0, "acquire", "n3", waiter_done), "type": "fail"}]  # fmt: skip


def test_a_pause_tests_a_lock_session_only_if_a_client_waited_across_it_as_the_lock_passed():
    state = LdfiState()
    state.observe({"lock": OutcomeClass("lock", "n3", 5)})
    ledger = [{"kind": "pause", "event": "applied", "time": 2 * S,
               "value": {"targets": "nodes", "nodes": ["n3"]}},
              {"kind": "pause", "event": "healed", "time": 6 * S}]  # fmt: skip
    struck = {"class": "lock", "hypothesis": [["pause", "leader"]], "from": 1.8, "to": 7.0}
    (lesson,) = learn(state, struck, _lock_run(waiter_done=6.5, other_ok=4.0), ledger)
    assert lesson.startswith("1 acquires through n3 waited and 0 holds"), lesson
    assert "passed 1 times to clients of other nodes" in lesson
    # The waiter gave up before the pause: nothing was tested.
    (lesson,) = learn(state, struck, _lock_run(waiter_done=1.9, other_ok=4.0), ledger)
    assert lesson.startswith(INCONCLUSIVE + "no client of n3 waited"), lesson
    # The lock did not pass to another node's client during the pause.
    (lesson,) = learn(state, struck, _lock_run(waiter_done=6.5, other_ok=6.2), ledger)
    assert lesson.startswith(INCONCLUSIVE), lesson
    # A pause of "primaries": the node comes from the ledger's resolved targets.
    resolved = [{**ledger[0], "value": {"targets": "primaries"}, "targets": ["n3"]}, ledger[1]]
    (lesson,) = learn(state, struck, _lock_run(waiter_done=6.5, other_ok=4.0), resolved)
    assert lesson.startswith("1 acquires through n3"), lesson


def test_the_exhausted_statement_names_lock_acquires():
    state = LdfiState()
    state.observe({"lock": OutcomeClass("lock", "n1", 7)})
    assert "support of an acknowledged lock acquire, within this model (classes: lock (7 ops)" \
        in exhausted_statement(state, ["pause"], 2)  # fmt: skip
    state.observe({"write": OutcomeClass("write", "n1", 2)})
    assert "acknowledged write, read or lock acquire" in exhausted_statement(state, ["pause"], 2)
