"""Behaviour of nemeses/lineage.py that test_lineage.py and test_ldfi_*.py left unpinned:
each test here kills mutants of the module that every older test let through (a mutation
audit: boundaries of the fault window and of reigns, the op names of each class, the
model's exact action table, the order of equally cheap hypotheses, round trips)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from nemeses.lineage import (
    OutcomeClass,
    Reign,
    agent_marks,
    candidate_actions,
    class_supports,
    classes_of_history,
    compose,
    hypothesis_cost,
    leader_at,
    outcome_class,
    reigns_of,
    removed_by,
)
from nemeses.schedulers.ldfi import LdfiState, single_ops
from tests.unit.test_lineage import KINDS, S, inv, ok

FOLLOWER_ROLES = [f"follower:{i}" for i in range(4)]


def test_the_model_names_the_four_followers_of_a_five_node_cluster_by_default():
    """Without a ``followers`` argument the model is a 5-node cluster: four followers in
    the candidate actions and in each class's supports."""
    assert candidate_actions(["pause"]) == [
        ("pause", "leader"), *(("pause", f) for f in FOLLOWER_ROLES)]  # fmt: skip
    assert OutcomeClass("write").supports() == class_supports("write", 4)
    assert len(OutcomeClass("read").supports()) == 6  # C(4, 2) majorities with L
    assert removed_by(("kill", "all")) == {"copy:leader", *(f"copy:{f}" for f in FOLLOWER_ROLES)}


def test_candidate_actions_are_exactly_those_of_the_kinds_asked_for():
    """Each fault kind contributes its own actions and no other kind's (no clock step
    unless ``clock`` is asked for); together they are the union."""
    assert candidate_actions(["clock"]) == [("clock", "leader")]
    assert candidate_actions(["kill"]) == [
        ("kill", "all"), ("kill", "leader"), *(("kill", f) for f in FOLLOWER_ROLES),
        ("kill", "successor")]  # fmt: skip
    assert candidate_actions(["partition"]) == [
        ("partition", "leader"), *(("partition", f) for f in FOLLOWER_ROLES),
        ("partition", "successor")]  # fmt: skip
    assert candidate_actions(["packet"]) == []  # outside the model
    both = candidate_actions(["kill", "clock"])
    assert set(both) == {*candidate_actions(["kill"]), ("clock", "leader")}


def test_the_resources_each_action_removes():
    """The model's table of removals, action by action (the module docstring's list)."""
    cut_l = {f"{r}:{f}" for f in FOLLOWER_ROLES for r in ("repl", "hb")}
    assert removed_by(("partition", "leader")) == {*cut_l, "sticky", "session:leader"}
    assert removed_by(("pause", "leader")) == {"leasetime", "sticky", "session:leader"}
    assert removed_by(("kill", "leader")) == {"copy:leader", "sticky"}
    assert removed_by(("kill", "successor")) == removed_by(("partition", "successor")) == {"succ"}
    # a pause names a leader or a follower; any other role removes nothing
    assert removed_by(("pause", "successor")) == removed_by(("pause", "all")) == frozenset()


def test_the_op_names_of_each_outcome_class():
    """Every op name the model knows is in its class: writes (write, add, cas, append,
    enqueue, transfer), reads (read, read-set), lock acquires; others have none."""
    for f in ("write", "add", "cas", "append", "enqueue", "transfer"):
        assert outcome_class(f) == "write", f
    assert outcome_class("read") == outcome_class("read-set") == "read"
    assert outcome_class("acquire") == "lock"
    assert outcome_class("release") is None and outcome_class("dequeue") is None


def test_micro_ops_by_their_full_names_and_malformed_ones():
    """A transaction's micro-ops may be spelled ``write``/``read`` as well as ``w``/``r``:
    both the class and the lessons' single ops read them so. Micro-ops that are not
    non-empty lists (an empty one, a bare string) write nothing and do not crash."""
    assert outcome_class("txn", [["write", 1, 2]]) == "write"
    assert outcome_class("txn", [["read", 1, None]]) == "read"
    assert outcome_class("txn", [[], ["r", 1, None]]) == "read"
    assert outcome_class("txn", ["w", "append"]) == "read"  # strings, not micro-ops
    txn = ok(0, "txn", "n1", 1.0, [["write", 3, 4], ["read", 3, 4]])
    assert [(e["f"], e["key"], e["value"]) for e in single_ops([txn])] == [
        ("write", 3, 4),
        ("read", 3, 4),
    ]


def test_only_reads_are_windowed_and_the_window_ends_at_until():
    """``until`` ends the fault window for reads alone: a read completed exactly at
    ``until`` is outside it, one just before is inside, and writes count whenever they
    were acknowledged."""
    h = [ok(0, "read", "n1", 8.999), ok(1, "read", "n1", 9.0), ok(2, "write", "n1", 9.5)]
    got = classes_of_history(h, until=9.0)
    assert (got["read"].outcomes, got["write"].outcomes) == (1, 1)


def test_completions_without_a_node_or_a_client_process_are_not_outcomes():
    """An ``ok`` without a ``node`` (nobody is known to have served it) and an event of a
    process that is not a client's (the nemesis's, or none) are skipped."""
    h = [
        {"process": 0, "type": "ok", "f": "write", "time": 1 * S},  # no node
        {"process": "nemesis", "type": "ok", "f": "write", "node": "n2", "time": 1 * S},
        {"type": "ok", "f": "write", "node": "n2", "time": 1 * S},  # no process
        ok(1, "write", "n1", 2.0),
    ]
    got = classes_of_history(h)
    assert {k: (c.leader, c.outcomes) for k, c in got.items()} == {"write": ("n1", 1)}


def test_a_tie_between_serving_nodes_goes_to_the_first_name():
    """When two nodes served as many outcomes of a class, its leader is the one whose
    name sorts first, whichever served first."""
    h = [ok(0, "write", "n2", 1.0), ok(1, "write", "n1", 2.0)]
    assert classes_of_history(h)["write"].leader == "n1"
    assert classes_of_history(h[::-1])["write"].leader == "n1"


def test_a_cut_with_no_unacknowledged_write_of_its_node_makes_no_tail():
    """A cut window makes a ``tail`` class only if writes invoked on the cut node in it
    went unacknowledged; a cut in which every write was acknowledged has none."""
    h = [inv(0, "write", "n1", 2.0), ok(0, "write", "n1", 2.1)]
    assert "tail" not in classes_of_history(h, cuts=[("n1", 1.0, 4.0)])


def test_an_outcome_class_round_trips_through_json_with_no_leader_by_default():
    """A class made from its kind alone names no leader and no outcomes;
    :meth:`OutcomeClass.from_json` reads back every field :meth:`~OutcomeClass.to_json`
    wrote."""
    fresh = OutcomeClass("tail")
    assert (fresh.leader, fresh.outcomes, fresh.learned) == ("", 0, {})
    c = OutcomeClass("read", "n3", 7, {"leasetime": "n3 stopped serving"})
    assert OutcomeClass.from_json(c.to_json()) == c


def test_equally_cheap_hypotheses_come_in_class_order():
    """Among hypotheses whose schedules cost as many fault ops, ``read`` comes before
    ``tail``, ``tail`` before ``write``, ``write`` before ``behind``, ``behind`` before
    ``lock`` (:data:`~nemeses.lineage.CLASS_ORDER`)."""
    state = LdfiState()
    state.observe({c: OutcomeClass(c, "n1", 3) for c in ("lock", "write", "tail", "read")})
    got = [(hypothesis_cost(c, h), c) for c, h in state.hypotheses(KINDS, 2)]
    assert got == [(2, "read"), (2, "write"), (2, "lock"), (2, "lock"), (3, "behind"),
                   (4, "tail"), (4, "tail"), (4, "write"), (4, "behind"),
                   (4, "behind")]  # fmt: skip


def test_the_cost_of_a_hypothesis_is_the_fault_ops_of_its_schedule():
    """:func:`hypothesis_cost` counts the moves of the composed schedule, precondition
    and heals included."""
    assert hypothesis_cost("read", [("partition", "leader")]) == 2
    assert hypothesis_cost("tail", [("kill", "successor")]) == 4
    assert hypothesis_cost("behind", [("partition", "leader")]) == 3


def test_compose_nests_only_the_leaders_time_faults_in_its_cut():
    """A pause of a follower alongside the leader's cut is an ordinary fault (partitions,
    then pauses; heals in reverse), not the leader's pause nested in its cut."""
    assert compose("read", [("pause", "follower:0"), ("partition", "leader")]) == (
        ("start-partition", "leader"), ("start-pause", "follower:0"), ("stop-pause", ""),
        ("stop-partition", ""))  # fmt: skip


def test_a_precondition_alone_is_healed():
    """With no action, a derived class's schedule is its precondition, a cut healed."""
    assert compose("behind", ()) == (("start-partition", "follower:0"), ("stop-partition", ""))
    assert compose("tail", ()) == (("start-partition", "leader"), ("stop-partition", ""))


def test_a_leaders_own_stepped_down_line_ends_its_reign():
    """The reigning node's ``stepped-down`` line ends its reign (as ``leader-lost`` and
    its process exiting do); after it the records name no leader."""
    marks = [("n1", 1.0, "log:became-leader"), ("n1", 4.0, "log:stepped-down")]
    assert reigns_of(marks) == [Reign("n1", 1.0, 4.0)]


def test_a_reign_holds_from_its_start_up_to_but_not_at_its_end():
    """At the moment of an election the elected node leads; at the moment a reign ends
    (with no successor yet) nobody is known to."""
    reigns = [Reign("n1", 1.0, 5.0), Reign("n2", 5.0, 6.0)]
    assert [leader_at(reigns, t) for t in (1.0, 5.0, 6.0)] == ["n1", "n2", None]


def test_reigns_are_values():
    """A reign is immutable and hashable (kept in sets, compared by value)."""
    r = Reign("n1", 1.0)
    assert {r, Reign("n1", 1.0)} == {r}
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.node = "n2"  # type: ignore[misc]


def test_agent_marks_take_log_patterns_and_process_changes_only():
    """Only ``log`` records' pattern lists and ``process`` records' changes become marks;
    a record without a numeric run time is marked with none (not dropped)."""
    journals: dict[str, list[dict[str, Any]]] = {"n1": [
        {"e": "log", "run": 1, "patterns": ["became-leader"]},
        {"e": "log", "run": 2.0, "patterns": "became-leader"},  # not a list
        {"e": "step", "run": 3.0, "patterns": ["stepped-down"]},  # not a log record
        {"e": "process", "run": "late", "change": "exit"},
    ]}  # fmt: skip
    assert agent_marks(journals) == [("n1", 1.0, "log:became-leader"),
                                     ("n1", None, "process:exit")]  # fmt: skip


def test_agent_marks_skip_records_that_say_nothing_of_a_change():
    """A ``process`` record without a string ``change``, a record of another kind with a
    ``change``, and a pattern that is not a string make no mark."""
    journals: dict[str, list[dict[str, Any]]] = {"n2": [
        {"e": "process", "run": 1.0, "change": None},
        {"e": "step", "run": 2.0, "change": "exit"},
        {"e": "log", "run": 3.0, "patterns": [7, "leader-lost"]},
    ]}  # fmt: skip
    assert agent_marks(journals) == [("n2", 3.0, "log:leader-lost")]


def test_a_stepped_down_line_alone_shows_a_reign_from_before_the_records():
    """A ``stepped-down`` line with no election recorded at all shows the reign its node
    had when the records began: from ``-inf`` to that line."""
    assert reigns_of([("n1", 2.0, "log:stepped-down")]) == [Reign("n1", float("-inf"), 2.0)]


def test_a_deposed_leaders_late_stepped_down_line_adds_no_reign():
    """A leader that logs ``stepped-down`` after its successor's election (it learns late
    that it was deposed) already has its reign: the line adds no earlier one."""
    marks = [("n1", 1.0, "log:became-leader"), ("n2", 5.0, "log:became-leader"),
             ("n1", 5.1, "log:stepped-down")]  # fmt: skip
    assert reigns_of(marks) == [Reign("n1", 1.0, 5.0), Reign("n2", 5.0, float("inf"))]


def test_a_reign_from_before_the_records_ends_at_the_first_election_seen():
    """The reign a ``stepped-down`` line shows from before the records ends at the
    earliest election the records show, not a later one."""
    marks = [("n1", 1.0, "log:became-leader"), ("n1", 2.0, "log:leader-lost"),
             ("n2", 3.0, "log:became-leader"), ("n3", 4.0, "log:stepped-down")]  # fmt: skip
    assert reigns_of(marks) == [Reign("n3", float("-inf"), 1.0), Reign("n1", 1.0, 2.0),
                                Reign("n2", 3.0, float("inf"))]  # fmt: skip


def test_a_tuple_micro_op_writes_as_a_list_does():
    """A transaction's micro-op may be a tuple (a value not read from JSON): ``("w", k,
    v)`` writes, as ``single_ops`` also reads it."""
    assert outcome_class("txn", [("w", 1, 2)]) == "write"


def test_a_tail_window_is_half_open_and_names_the_node_at_either_end():
    """A cut ``(node, from, to)`` takes the unacknowledged writes invoked from ``from``
    up to but not at ``to``, on the cut node by their invocation or by their failed
    completion (a client that named no node on invoking)."""
    h = [
        inv(0, "write", "n1", 1.0),  # at the cut's start: in it
        {"process": 0, "type": "info", "f": "write", "time": int(1.5 * S)},
        {"process": 1, "type": "invoke", "f": "write", "time": int(2.0 * S)},  # no node
        {"process": 1, "type": "fail", "f": "write", "node": "n1", "time": int(2.5 * S)},
        inv(2, "write", "n1", 4.0),  # at the cut's end: outside it
        {"process": 2, "type": "info", "f": "write", "time": int(4.5 * S)},
    ]
    assert classes_of_history(h, cuts=[("n1", 1.0, 4.0)])["tail"].outcomes == 2


def test_an_outcome_class_from_json_defaults_what_is_missing():
    """:meth:`OutcomeClass.from_json` of a record that names only its kind is the class
    with no leader, no outcomes and nothing learned."""
    assert OutcomeClass.from_json({"kind": "write"}) == OutcomeClass("write")
