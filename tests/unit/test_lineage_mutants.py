"""Behaviour of nemeses/lineage.py, and of the lessons nemeses/schedulers/ldfi.py reads off
a run, that test_lineage.py and test_ldfi_*.py left unpinned: each test here kills mutants
that every older test let through (a mutation audit: boundaries of the fault window and of
reigns, the op names of each class, the model's exact action table, the order of equally
cheap hypotheses, round trips; when a cut teaches a lease or a takeover time)."""

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
from nemeses.schedulers.ldfi import (
    INCONCLUSIVE,
    LdfiState,
    isolated_node,
    learn,
    single_ops,
)
from tests.unit.test_ldfi_agent_steps import LEDGER, REIGNS, STRUCK, agent_kill
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


VALID = "valid: every support the hypothesis removed had another that held"
CUT_N1 = {"n1": ["n2", "n3", "n4", "n5"], **{n: ["n1"] for n in ("n2", "n3", "n4", "n5")}}
#: The leader's cut of a read hypothesis: n1 cut off at 2 s, healed at 5 s.
LEASE_STRUCK = {"hypothesis": [["partition", "leader"]], "from": 1.0, "to": 6.0, "leader": "n1"}


def cut_of_n1(healed: float | None) -> list[dict[str, Any]]:
    """The ledger of n1's cut from 2 s to ``healed`` (``None``: never healed)."""
    applied = {"kind": "partition", "event": "applied", "time": 2 * S, "value": CUT_N1}
    if healed is None:
        return [applied]
    return [applied, {"kind": "partition", "event": "healed", "time": int(healed * S)}]


def lease_run(*, read_before: bool = True) -> list[dict[str, Any]]:
    """n1 serves a write (and a read) before its cut at 2 s and no read in it; n2 serves
    0.8 s into the cut: a lease, if the cut is long enough to tell."""
    before = [ok(1, "read", "n1", 1.6)] if read_before else []
    return [ok(0, "write", "n1", 1.5), *before, ok(2, "write", "n2", 2.8),
            ok(3, "read", "n2", 4.1)]  # fmt: skip


def read_state(*classes: str) -> LdfiState:
    """A state that knows ``classes`` (default: ``read``), led by n1."""
    state = LdfiState()
    state.observe({c: OutcomeClass(c, "n1", 2) for c in classes or ("read",)})
    return state


def test_a_cut_too_short_or_never_healed_teaches_the_takeover_but_no_lease():
    """A cut of the leader shorter than ``MIN_CUT`` (1.9 s) or never healed teaches how
    soon a successor served, but not a lease: the leader's silence may be the cut's end."""
    for healed in (3.9, None):
        state = read_state()
        lessons = learn(state, LEASE_STRUCK, lease_run(), cut_of_n1(healed))
        assert lessons == ["a successor served 0.80 s after n1 was cut off"], healed
        assert state.timing["takeover"] == 0.8 and state.classes["read"].learned == {}


def test_the_takeover_counts_only_other_nodes_ops_inside_the_cut():
    """Ops another node served before the cut (a follower's read) are not a successor's:
    the takeover is the time to the first op another node served inside the cut."""
    state = read_state()
    learn(state, LEASE_STRUCK, [ok(4, "read", "n2", 1.0), *lease_run()], cut_of_n1(5.0))
    assert state.timing["takeover"] == 0.8


def test_the_takeover_learned_is_the_longest_seen():
    """A run whose successor took over sooner than an earlier run's does not shorten the
    takeover the state holds."""
    state = read_state()
    state.timing["takeover"] = 1.5
    learn(state, LEASE_STRUCK, lease_run(), cut_of_n1(5.0))
    assert state.timing["takeover"] == 1.5


def test_a_cut_of_exactly_min_cut_teaches_the_lease():
    """A cut of the leader exactly ``MIN_CUT`` (2 s) long is long enough to tell."""
    state = read_state()
    learn(state, LEASE_STRUCK, lease_run(), cut_of_n1(4.0))
    assert "leasetime" in state.classes["read"].learned


def test_with_no_successor_serving_the_lease_is_read_off_the_cuts_second_half():
    """No successor served inside the cut (the load went on through clients whose
    completions name no node): a lease is the leader's last read in the cut's first half
    and none in its second; a read in the second half is no lease. The lookback is
    anchored at the window's first fault, not at one applied before the window."""
    earlier = [{"kind": "pause", "event": "applied", "time": int(0.2 * S)},
               {"kind": "pause", "event": "healed", "time": int(1.2 * S)}]  # fmt: skip
    blind = {"process": 5, "type": "ok", "f": "write", "time": 4 * S}  # no node
    h = [ok(0, "write", "n1", 1.5), ok(1, "read", "n1", 1.6), ok(1, "read", "n1", 2.3),
         ok(1, "read", "n1", 2.5), blind]  # fmt: skip
    state = read_state()
    learn(state, LEASE_STRUCK, h, [*earlier, *cut_of_n1(5.0)])
    assert state.classes["read"].learned["leasetime"] == (
        "n1, cut off from 2.0 s to 5.0 s, served its last read 0.50 s into the cut and none "
        "in its second half: a lease, which n1's clock holds up")  # fmt: skip
    late = read_state()
    learn(late, LEASE_STRUCK, [*h, ok(1, "read", "n1", 3.6)], cut_of_n1(5.0))
    assert late.classes["read"].learned == {}


def test_no_lease_without_a_read_before_the_cut_or_a_read_class():
    """A lease is learned only if the leader served reads just before its cut, and only
    for a read class the state knows (a state of writes alone learns the takeover)."""
    state = read_state()
    learn(state, LEASE_STRUCK, lease_run(read_before=False), cut_of_n1(5.0))
    assert state.classes["read"].learned == {}
    writes = read_state("write")
    learn(writes, LEASE_STRUCK, lease_run(), cut_of_n1(5.0))
    assert writes.timing["takeover"] == 0.8 and "read" not in writes.classes


def test_a_hypothesis_that_showed_nothing_is_valid():
    """With no fault of the leader in its window (a follower's cut, or a cut applied
    before the window began), a hypothesis teaches nothing and is simply valid."""
    cut_n2 = {"n2": ["n1", "n3", "n4", "n5"], **{n: ["n2"] for n in ("n1", "n3", "n4", "n5")}}
    follower = [{**cut_of_n1(5.0)[0], "value": cut_n2}, cut_of_n1(5.0)[1]]
    state = read_state()
    assert learn(state, LEASE_STRUCK, lease_run(), follower) == [VALID]
    n1_led = [Reign("n1", 0.0, float("inf"))]  # the agents agree: n2 was a follower
    assert learn(state, LEASE_STRUCK, lease_run(), follower, reigns=n1_led) == [VALID]
    late = {**LEASE_STRUCK, "from": 3.0}  # n1 was cut at 2 s, before this window
    assert learn(state, late, lease_run(), cut_of_n1(5.0)) == [VALID]
    assert "takeover" not in state.timing and state.classes["read"].learned == {}


def test_agents_without_an_election_in_the_cut_leave_the_takeover_to_the_clients():
    """The agents' election line gives the takeover only if they say the cut node led
    and they saw a successor elected inside the cut; else the clients' first successor
    op does. When they say the cut node led, it need not have served just before."""
    inf = float("inf")
    earlier = [Reign("n2", -inf, 1.0), Reign("n1", 1.0, inf)]  # n2 led before n1, not after
    for reigns in ([Reign("n1", 0.0, inf)], [Reign("n2", 2.6, inf)], earlier):
        state = read_state()
        learn(state, LEASE_STRUCK, lease_run(), cut_of_n1(5.0), reigns=reigns)
        assert state.timing["takeover"] == 0.8, reigns
    quiet = [e for e in lease_run() if e["node"] != "n1"]  # n1 served nothing before
    state = read_state()
    reigns = [Reign("n1", -inf, 2.6), Reign("n2", 2.6, inf)]
    learn(state, LEASE_STRUCK, quiet, cut_of_n1(5.0), reigns=reigns)
    assert state.timing["takeover"] == 0.6


def test_a_kill_of_every_node_before_anything_was_written_is_no_evidence_of_disk():
    """A kill of every node with no key written in the second before it tested nothing:
    inconclusive, and the disk is not learned."""
    state = read_state("write")
    struck = {"hypothesis": [["kill", "all"]], "from": 1.0, "to": 6.0}
    ledger = [{"kind": "kill", "event": "applied", "time": 2 * S},
              {"kind": "kill", "event": "healed", "time": 3 * S}]  # fmt: skip
    (lesson,) = learn(state, struck, [ok(0, "read", "n1", 4.0)], ledger)
    assert lesson.startswith(INCONCLUSIVE) and state.classes["write"].learned == {}


def test_an_agent_kill_is_judged_by_the_first_one_and_by_reigns_only_if_there_are_any():
    """Without reigns, an agents' kill of another node than the hypothesis's leader,
    after the heal, tested it, and one of the leader itself did not; of several kills in
    the window, the first is the hypothesis's fault."""

    def lessons(ledger: list[dict[str, Any]], reigns: list[Reign]) -> list[str]:
        return learn(read_state("tail"), STRUCK, [], [*LEDGER, *ledger], reigns=reigns)

    assert any(x.endswith("valid without it") for x in lessons(agent_kill("n2", 5.0), []))
    itself = lessons(agent_kill("n1", 5.0), [])
    assert any(x.startswith(INCONCLUSIVE) for x in itself), itself
    both = lessons([*agent_kill("n2", 5.0), *agent_kill("n3", 5.5)], REIGNS)
    assert any("killed the successor n2 at 5.00 s" in x for x in both), both
    after = lessons(agent_kill("n2", 9.5), REIGNS)  # after the window (1-9 s)
    assert any("the agents killed no successor" in x for x in after), after


def kill_all_run(*writes: tuple[str, float], classes: tuple[str, ...] = ("write",)) -> list[str]:
    """The lessons of a kill of every node from 2 s to 3 s after ``writes`` (key, time)
    of a register, each key read back at 3.5 s, for a state of ``classes``."""
    state = read_state(*classes)
    struck = {"hypothesis": [["kill", "all"]], "from": 0.5, "to": 6.0}
    ledger = [{"kind": "kill", "event": "applied", "time": 2 * S},
              {"kind": "kill", "event": "healed", "time": 3 * S}]  # fmt: skip
    h = [ok(i, "write", "n1", t, 1, key) for i, (key, t) in enumerate(writes)]
    h += [ok(9, "read", "n1", 3.5, 1, key) for key in {k for k, _t in writes}]
    return learn(state, struck, h, ledger)


def test_a_kill_of_all_puts_at_risk_the_keys_last_written_in_the_second_before_it():
    """A key is at risk if its *last* write came at most ``AT_RISK`` (1 s) before the
    kill, that second's start included; one written only earlier is not."""
    (lesson,) = kill_all_run(("a", 0.5), ("a", 1.5))  # a's last write: 1.5 s
    assert lesson.startswith("1 of 1 keys written"), lesson
    (lesson,) = kill_all_run(("b", 1.0), ("c", 0.9))  # 1.0 s: at risk; 0.9 s: not
    assert lesson.startswith("1 of 1 keys written"), lesson
    (lesson,) = kill_all_run(("a", 1.5), classes=("read",))  # no write class to teach
    assert lesson.startswith("1 of 1 keys written"), lesson


def test_single_ops_keep_a_transaction_whose_value_is_not_a_list():
    """A ``txn`` event whose value is not a list of micro-ops (an invocation's ``None``)
    is kept as it is."""
    e = {"process": 0, "type": "invoke", "f": "txn", "value": None}
    assert single_ops([e]) == [e]


def test_single_ops_of_short_micro_ops():
    """A micro-op ``[f, key]`` without a value gives ``value`` ``None``; one without a key,
    or of an unknown op, gives no single op."""
    txn = ok(0, "txn", "n1", 1.0, [["r", 3], ["r"], ["x", 1, 2], ["append", 4, 5]])
    assert [(e["f"], e["key"], e["value"]) for e in single_ops([txn])] == [
        ("read", 3, None),
        ("add", 4, 5),
    ]


def test_isolated_node_needs_three_names_and_lists():
    """A grudge isolates a node only among three or more nodes (the ``nodes`` given count
    too), and only by a list of the others; halves of two nodes, or values that are not
    lists, name none."""
    assert isolated_node({"n1": ["n2"], "n2": ["n1"]}) is None
    assert isolated_node({"n1": ["n2", "n3"]}, ("n1", "n2", "n3")) == "n1"
    assert isolated_node({"n1": "ab", "n2": ["n1"], "n3": ["n1"]}) is None


def lock_lessons(h: list[dict[str, Any]], value: Any, kind: str = "pause") -> list[str]:
    """The lessons of a ``lock`` hypothesis whose fault (``kind``, ``value``) held from
    2 s to 6 s, on history ``h``."""
    state = read_state("lock")
    ledger = [{"kind": kind, "event": "applied", "time": 2 * S, "value": value},
              {"kind": kind, "event": "healed", "time": 6 * S}]  # fmt: skip
    struck = {"class": "lock", "hypothesis": [[kind, "leader"]], "from": 1.8, "to": 7.0}
    return learn(state, struck, h, ledger)


def op(p: int, f: str, node: str, t0: float, t1: float | None, typ: str = "ok") -> list[dict]:
    """An op of process ``p`` invoked at ``t0`` and completed (``typ``) at ``t1``
    (``None``: never)."""
    done = [] if t1 is None else [{**ok(p, f, node, t1), "type": typ}]
    return [inv(p, f, node, t0), *done]


N3 = {"targets": "nodes", "nodes": ["n3"]}
#: A client of n1 acquires the lock at 4 s, inside the fault, and releases it.
PASSED = [*op(1, "acquire", "n1", 1.5, 4.0), *op(1, "release", "n1", 4.5, 4.6)]


def test_a_lock_hold_across_the_fault_counts_until_its_release():
    """A client of the struck node holding the lock from before the fault to after its
    heal tested the sessions (other ops of that client, and a release by a client that
    holds nothing, change no hold); one that released inside the fault did not."""
    across = [*op(0, "acquire", "n3", 1.0, 1.2), *op(0, "read", "n3", 3.0, 3.1),
              *op(0, "release", "n3", 6.4, 6.5), *op(2, "acquire", "n2", 0.5, 0.6, "fail"),
              *op(2, "release", "n2", 0.7, 0.8), *PASSED]  # fmt: skip
    (lesson,) = lock_lessons(across, N3)
    assert lesson.startswith("0 acquires through n3 waited and 1 holds"), lesson
    inside = [*op(0, "acquire", "n3", 1.0, 1.2), *op(0, "release", "n3", 2.9, 3.0), *PASSED]
    (lesson,) = lock_lessons(inside, N3)
    assert lesson.startswith(INCONCLUSIVE) and "(0 waiting, 0 holding" in lesson, lesson


def test_a_lock_request_or_hold_never_completed_lasts_to_the_end():
    """An acquire through the struck node never answered waited across the fault; a hold
    never released lasted across it."""
    h = [*op(0, "acquire", "n3", 1.0, 1.2), *op(2, "acquire", "n3", 1.1, None), *PASSED]
    (lesson,) = lock_lessons(h, N3)
    assert lesson.startswith("1 acquires through n3 waited and 1 holds"), lesson


def test_a_lock_fault_of_two_nodes_tests_nothing_and_a_cut_of_one_is_read():
    """The lock lessons judge a fault of one node: a pause of two says nothing; a
    partition isolating the node is judged as its pause is."""
    h = [*op(2, "acquire", "n3", 1.1, None), *PASSED]
    assert lock_lessons(h, {"targets": "nodes", "nodes": ["n3", "n1"]}) == [VALID]
    grudge = {"n3": ["n1", "n2"], "n1": ["n3"], "n2": ["n3"]}
    (lesson,) = lock_lessons(h, grudge, "partition")
    assert lesson.startswith("1 acquires through n3 waited"), lesson


def test_only_the_struck_nodes_waiters_count_and_only_other_nodes_acquires_pass_the_lock():
    """Waiting across the fault means a client of the struck node that asked before the
    heal and was not answered by it; the lock passing means an acquire *acknowledged* to a
    client of another node inside the fault. A waiter of another node, one that asked
    after the heal, an acquire of the struck node's own client, and a failed one of
    another node's are none of these."""
    h = [*op(0, "acquire", "n1", 1.0, None), *op(1, "acquire", "n3", 6.5, None),
         *op(2, "acquire", "n3", 2.5, 4.0), *op(3, "acquire", "n2", 2.5, 4.0, "fail")]  # fmt: skip
    (lesson,) = lock_lessons(h, N3)
    assert lesson == (
        f"{INCONCLUSIVE}no client of n3 waited for or held the lock across the pause of n3 "
        "(2.0-6.0 s) while it passed to a client of another node (0 waiting, 0 holding, 0 "
        "handed over); the hypothesis was not tested"
    )
