"""The collection checkers (``checkers/collections/``, ``checkers/set.py``) on small
hand-made histories, for promises the older tests left open.

Written for a mutation audit of these checkers: each test kills mutants of the code that
the other tests let live, and states the promise it checks. Expectations follow the
modules' docstrings and Jepsen's checkers, not the code's output.
"""

from __future__ import annotations

import time
from typing import Any, cast

import pytest

from checkers import set as set_checker
from checkers.collections import (
    CHECKERS,
    _budget,
    bank,
    counter,
    lock,
    long_fork,
    queue,
    set_full,
    unique_ids,
    within_budget,
)
from harness.errors import HistoryError
from harness.history import History
from tests.unit.test_collections_budget import SMALL
from tests.unit.test_collections_checkers import (
    A_,
    R_PLUS,
    A,
    R,
    _lf_read,
    _read,
    fail,
    hist,
    info,
    inv,
    ok,
)
from tests.unit.test_set_checker import _ops

# ---------------------------------------------------------------- every checker


#: Histories that end a check early or on another branch: (model, history, verdict).
OTHER_ENDINGS = [
    ("bank", hist(inv(0, "read"), fail(0, "read")), "unknown"),
    ("long-fork", hist(*_lf_read(0, {0: 1, 1: None}), *_lf_read(1, {0: None, 1: 1})), False),
    ("long-fork", hist(inv(0, "write", [["w", 0, 1], ["w", 1, 1]])), "unknown"),
    ("long-fork", hist(inv(0, "write", [["w", 0, 1]])), "unknown"),
]


@pytest.mark.parametrize(
    ("model", "history", "verdict"),
    [(m, h, True) for m, h in sorted(SMALL.items())] + OTHER_ENDINGS,
)
def test_seconds_is_the_time_the_check_took(model: str, history: History, verdict: Any) -> None:
    """``seconds`` in a checker's result is the time it took: within the call's wall time,
    whatever the verdict."""
    t0 = time.perf_counter()
    r = CHECKERS[model](history)
    took = time.perf_counter() - t0
    assert r.valid == verdict
    assert 0 <= r.seconds <= took


class _Looks:
    """A budget that records each look at it (the phase named)."""

    def __init__(self) -> None:
        self.looks: list[str] = []

    def check(self, phase: str) -> None:
        """Record a look."""
        self.looks.append(phase)


def test_meter_looks_at_the_budget_once_every_check_every_units(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A meter looks at its budget when ``CHECK_EVERY`` units of work have been counted
    since the last look (the first after ``CHECK_EVERY``), not sooner; ``check()`` looks at
    once, naming the phase."""
    monkeypatch.setattr(_budget, "CHECK_EVERY", 4)
    looks = _Looks()
    meter = _budget.Meter(cast(Any, looks), "set-full")
    for n in range(1, 13):
        meter.add()
        assert len(looks.looks) == n // 4, n
    meter.add(3)
    assert len(looks.looks) == 3
    meter.add(5)  # 20 units: a look, and the next one 4 units later
    assert len(looks.looks) == 4
    meter.add(3)
    assert len(looks.looks) == 4
    meter.check()
    assert looks.looks == ["set-full"] * 5


def test_linear_limits_stay_inside_the_collection_checkers_budget() -> None:
    """The linearizability check a collection checker runs gets its own time limit, cut
    to what is left of the budget (at least 1 ms), and the budget's memory, else the
    linearizability checker's default."""
    from checkers.linear.budget import DEFAULT_MAX_BYTES

    now = time.perf_counter()
    assert _budget.linear_limits(None, 10.0) == (10.0, DEFAULT_MAX_BYTES)
    assert _budget.linear_limits(_budget.Budget(now, None, 123), 10.0) == (10.0, 123)
    seconds, max_bytes = _budget.linear_limits(_budget.Budget(now, 2.0, None), 10.0)
    assert 1.0 < seconds <= 2.0 and max_bytes == DEFAULT_MAX_BYTES
    assert _budget.linear_limits(_budget.Budget(now, 60.0, None), 10.0)[0] == 10.0
    assert _budget.linear_limits(_budget.Budget(now - 100, 5.0, None), 10.0)[0] == 1e-3


def test_within_budget_turns_a_failed_allocation_into_unknown() -> None:
    """A check whose allocation fails answers unknown, naming the checker and memory, in
    the time it took; never the MemoryError."""

    def check(budget: Any) -> Any:
        raise MemoryError

    t0 = time.perf_counter()
    r = within_budget("bank", check, time_limit=None, max_memory=None)
    took = time.perf_counter() - t0
    assert r.valid == "unknown" and r.checker == "bank"
    assert r.details["unknown"] == [{"type": "budget", "phase": "bank", "resource": "memory"}]
    assert 0 <= r.seconds <= took


# ---------------------------------------------------------------- bank


def test_bank_accounts_given_are_the_accounts() -> None:
    """``accounts``, when given, are the accounts (named as strings): a read's other
    accounts are unexpected keys, even those of the first read."""
    h = hist(*_read(0, {"0": 5, "1": 5, "2": 0}))
    r = bank.check(h, accounts=[0, 1])
    assert r.valid is False
    assert r.details["accounts"] == ["0", "1"]
    assert r.details["errors"]["unexpected-key"]["first"]["unexpected"] == ["2"]


def test_bank_lists_are_sorted_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unexpected and nil accounts are listed sorted; ``accounts`` lists at most
    ``MAX_LISTED`` of them, the smallest; a valid history has no cause."""
    monkeypatch.setattr(bank, "MAX_LISTED", 2)
    r = bank.check(hist(*_read(0, {"c": 5, "b": 5, "a": 0})))
    assert r.valid is True and r.cause is None and r.details["accounts"] == ["a", "b"]
    h = hist(*_read(0, {"c": 5, "b": 5, "a": 0}), *_read(0, {"z": 0, "y": 0, "c": None,
                                                            "b": None, "a": 10}))  # fmt: skip
    errors = bank.check(h, accounts=["a", "b", "c"]).details["errors"]
    assert errors["unexpected-key"]["first"]["unexpected"] == ["y", "z"]
    assert errors["nil-balance"]["first"]["nils"] == ["b", "c"]


def test_bank_thinned_totals_are_evenly_spread_and_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thinning keeps the reads at whole multiples of len/``MAX_SERIES_POINTS`` (rounded
    down), plus the wrong ones, in history order."""
    monkeypatch.setattr(bank, "MAX_SERIES_POINTS", 3)
    h = hist(*(op for _ in range(5) for op in _read(0, {"a": 10})))
    assert [p[2] for p in bank.check(h).details["totals"]] == [1, 3, 7]  # reads 0, 1, 3
    monkeypatch.setattr(bank, "MAX_SERIES_POINTS", 2)
    totals = [13 if i == 3 else 10 for i in range(20)]
    h = hist(*_read(0, {"a": 10}), *(op for t in totals for op in _read(0, {"a": t})))
    assert [p[2] for p in bank.check(h).details["totals"]] == [1, 9, 21]  # reads 0, 4, 10


def test_bank_worst_wrong_total_of_a_zero_total_is_the_farthest_off() -> None:
    """With a total of 0 the worst wrong total is the one farthest from 0, wherever it
    comes in the history."""
    h = hist(*_read(0, {"a": 0, "b": 0}), *_read(0, {"a": 1, "b": 0}), *_read(0, {"a": 0, "b": 5}))
    worst = bank.check(h).details["errors"]["wrong-total"]["worst"]
    assert (worst["index"], worst["total"]) == (5, 5)


# ---------------------------------------------------------------- counter


def test_counter_an_add_that_never_completed_may_count_whatever_ends_the_history() -> None:
    """An add whose invocation never completed may have happened, so a read may include
    it, even when the history's last op is some other op's ``fail``."""
    h = hist(
        inv(0, "add", 1),  # never completes
        inv(1, "read"),
        ok(1, "read", 1),
        inv(2, "add", 5),
        fail(2, "add", 5),
    )
    r = counter.check(h)
    assert r.valid is True
    assert r.details["reads"] == [[0, 1, 1, 2]]


# ---------------------------------------------------------------- long-fork


def test_long_fork_values_that_are_not_micro_ops_are_skipped() -> None:
    """A read whose value holds something other than ``[f, k, v]`` micro-ops with a
    string ``f`` (a number, a string of three letters, a list as ``f``) is not a
    transaction: skipped, not read and not a crash."""
    ops = [
        inv(0, "read", [7]),
        ok(0, "read", [7]),
        inv(0, "read", ["abc"]),
        ok(0, "read", ["abc"]),
        inv(0, "read", [[["r"], 0, None]]),
        ok(0, "read", [[["r"], 0, 1]]),
        *_lf_read(0, {0: 1}),
    ]
    r = long_fork.check(hist(*ops))
    assert r.valid is True
    assert (r.details["read_count"], r.details["group_count"]) == (1, 1)


def test_long_fork_any_mix_of_read_or_write_kinds() -> None:
    """A read may name its micro-ops ``r`` or ``read``, mixed; a write transaction of
    several keys is illegal whatever kinds of write it mixes."""
    mixed = [["r", 0, None], ["read", 1, None]]
    r = long_fork.check(
        hist(inv(0, "read", mixed), ok(0, "read", [["r", 0, 1], ["read", 1, None]]))
    )
    assert r.valid is True and r.details["read_count"] == 1
    writes = [["w", 0, 1], ["write", 1, 1], ["append", 2, 1]]
    r = long_fork.check(hist(inv(0, "txn", writes), *_lf_read(1, {0: 1})))
    assert r.valid == "unknown" and "writes 3 keys" in (r.cause or "")


def test_long_fork_micro_ops_may_be_tuples() -> None:
    """A history built in Python may give transactions as tuples of tuples: they are
    read like lists, and a fork among them is found."""
    x, y = ("r", 0, None), ("r", 1, None)
    ops = [
        inv(0, "read", (x, y)),
        inv(1, "read", (x, y)),
        ok(0, "read", (("r", 0, 1), ("r", 1, None))),
        ok(1, "read", (("r", 0, None), ("r", 1, 1))),
    ]
    r = long_fork.check(hist(*ops))
    assert r.valid is False
    assert (r.details["read_count"], r.details["fork_count"]) == (2, 1)


# ---------------------------------------------------------------- lock


def test_lock_releasing_one_key_keeps_the_others_held() -> None:
    """A release of one key ends the process's hold of that key only: its hold of another
    key goes on, and a second process acquiring that other key overlaps it. (The first key
    the history names is the one released.)"""
    h = hist(
        (0, "invoke", "acquire", None, "a"),
        (0, "ok", "acquire", None, "a"),
        (0, "invoke", "acquire", None, "b"),
        (0, "ok", "acquire", None, "b"),
        (0, "invoke", "release", None, "a"),
        (0, "ok", "release", None, "a"),
        (1, "invoke", "acquire", None, "b"),
        (1, "ok", "acquire", None, "b"),
    )
    r = lock.check(h, linear_max_ops=0)
    assert r.valid is False and r.details["overlap_count"] == 1
    (pa, ia, ea, *_, ka), (pb, ib, eb, *_, kb) = r.details["overlaps"][0]
    assert (pa, ia, ea, ka, pb, ib, eb, kb) == (0, 3, None, "b", 1, 7, None, "b")


def test_lock_a_release_of_a_key_ends_a_hold_of_no_key() -> None:
    """A release that names a key also ends the process's hold taken without a key, so a
    later acquire without a key by another process does not overlap it."""
    h = hist(
        inv(0, "acquire"),
        ok(0, "acquire"),
        (0, "invoke", "release", None, "a"),
        (0, "ok", "release", None, "a"),
        inv(1, "acquire"),
        ok(1, "acquire"),
    )
    r = lock.check(h, linear_max_ops=0)
    assert r.valid is True and r.details["overlap_count"] == 0
    assert [hold[:3] for hold in r.details["holds"]] == [[0, 1, 2], [1, 5, None]]


def test_lock_a_release_without_the_lock_is_invalid_though_no_acquire_succeeded() -> None:
    """The mutex model's verdict stands when no acquire succeeded: a release that succeeds
    while nobody holds the lock is invalid, not unknown."""
    r = lock.check(hist(inv(0, "release"), ok(0, "release")))
    assert r.valid is False
    assert r.details["hold_count"] == 0 and r.details["linearizable"]["valid"] is False
    assert "no acquire succeeded" not in (r.cause or "")


def test_lock_lists_a_bounded_number_of_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most ``MAX_HOLDS_LISTED`` holds are listed, the earliest; ``hold_count`` stays
    exact."""
    monkeypatch.setattr(lock, "MAX_HOLDS_LISTED", 1)
    h = hist(*(op for p in (0, 1) for op in (inv(p, "acquire"), ok(p, "acquire"),
                                              inv(p, "release"), ok(p, "release"))))  # fmt: skip
    r = lock.check(h, linear_max_ops=0)
    assert r.valid is True and r.details["hold_count"] == 2
    assert [hold[:3] for hold in r.details["holds"]] == [[0, 1, 2]]


# ---------------------------------------------------------------- total-queue


def test_total_queue_an_unknown_drain_may_explain_any_number_of_lost_values() -> None:
    """A drain of unknown outcome may have taken any number of values, so lost values are
    unknown rather than invalid, however many, with no unknown dequeue at all."""
    h = hist(
        *(op for v in (1, 2, 3) for op in (inv(0, "enqueue", v), ok(0, "enqueue", v))),
        inv(1, "drain"),
        info(1, "drain"),
        inv(2, "drain"),
        ok(2, "drain", [1]),
    )
    r = queue.check_total(h)
    assert r.valid == "unknown"
    assert (r.details["unknown_dequeue_count"], r.details["unknown_drain_count"]) == (0, 1)
    assert r.details["lost"] == [2, 3]


def test_total_queue_an_ok_drain_may_be_a_tuple() -> None:
    """A history built in Python may give a drain's values as a tuple: read like a list."""
    h = hist(inv(0, "enqueue", 1), ok(0, "enqueue", 1), inv(1, "drain"), ok(1, "drain", (1,)))
    r = queue.check_total(h)
    assert r.valid is True and r.details["ok_count"] == 1


def test_expand_drains_keeps_only_ok_drains_of_lists_and_the_nemesis() -> None:
    """Only a client's ``ok`` drain with a list (or tuple) of values becomes dequeues: a
    drain of unknown outcome is dropped even when its completion carries a list, so is an
    ``ok`` drain without a list, and a nemesis op named ``drain`` is kept as it is."""
    h = hist(
        inv(0, "enqueue", 1),
        ok(0, "enqueue", 1),
        inv(1, "drain"),
        info(1, "drain", [2]),
        inv(2, "drain"),
        ok(2, "drain", None),
        inv("nemesis", "drain", "n1"),
        info("nemesis", "drain", "n1"),
        inv(3, "drain"),
        ok(3, "drain", (1,)),
    )
    e = queue.expand_drains(h)
    assert [(e[i].process, e[i].type, e[i].f, e[i].value) for i in range(len(e))] == [
        (0, "invoke", "enqueue", 1),
        (0, "ok", "enqueue", 1),
        ("nemesis", "invoke", "drain", "n1"),
        ("nemesis", "info", "drain", "n1"),
        (4, "invoke", "dequeue", None),
        (5, "invoke", "dequeue", None),
        (4, "ok", "dequeue", 1),
        (5, "ok", "dequeue", None),  # (and the queue was empty: a drain ends so)
    ]


# ---------------------------------------------------------------- set-full


def _adds_then_reads(added: list[Any], *reads: list[Any]) -> History:
    """Each element of ``added`` added ``ok`` by process 0, then each of ``reads`` read
    ``ok`` by process 1."""
    adds = [op for x in added for op in (inv(0, "add", x), ok(0, "add", x))]
    return hist(*adds, *(op for r in reads for op in (inv(1, "read"), ok(1, "read", r))))


def test_set_full_integers_at_and_beyond_the_64_bit_bounds() -> None:
    """Integer elements at the 64-bit bounds are found in reads; integers just beyond
    them, read or added, are elements like any other (never a crash)."""
    lo, hi = -(2**63), 2**63 - 1
    r = set_full.check(_adds_then_reads([lo, hi, 0], [lo - 1], [hi + 1], [lo, hi, 0]))
    assert r.valid is False
    assert r.details["stable_count"] == 3 and r.details["unexpected"] == [lo - 1, hi + 1]
    r = set_full.check(_adds_then_reads([lo - 1, hi + 1, 0], [0], [lo - 1, hi + 1, 0]))
    assert r.valid is True and r.details["stable_count"] == 3


def test_set_full_reads_when_nothing_was_added() -> None:
    """With no add at all, every element read is unexpected and nothing is stable."""
    r = set_full.check(_adds_then_reads([], [1, 2]))
    assert r.valid is False
    assert r.details["unexpected"] == [1, 2] and r.details["attempt_count"] == 0


def test_set_full_an_add_that_failed_or_crashed_does_not_make_its_element_known() -> None:
    """Only an ``ok`` add (or a read) makes an element known: an element whose add failed
    or crashed, absent from every later read, is never-read, not lost."""
    for end in (fail, info):
        h = hist(A, A_, inv(0, "add", 1), end(0, "add", 1), R, R_PLUS, R, R_PLUS)
        r = set_full.check(h)
        assert r.valid is True, end
        assert r.details["never_read"] == [1] and r.details["lost"] == []
        rows = {row["element"]: row for row in r.details["elements"]}
        assert rows[1]["add"] == end.__name__
        assert (rows[1]["known_index"], rows[1]["known_time"]) == (None, None)


def test_set_full_reads_may_be_tuples() -> None:
    """A history built in Python may give a read's elements as a tuple: read like a list."""
    r = set_full.check(hist(A, A_, R, ok(1, "read", (0,))))
    assert r.valid is True and r.details["stable_count"] == 1 and r.cause is None


def test_set_full_lists_are_bounded_and_counts_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most 100 elements are listed per category (the smallest), and at most
    ``MAX_ELEMENT_ROWS`` rows of the element table; the counts stay exact."""
    monkeypatch.setattr(set_full, "MAX_ELEMENT_ROWS", 3)
    r = set_full.check(_adds_then_reads(list(range(101)), [], []))
    assert r.valid is False
    assert r.details["lost_count"] == 101 and r.details["lost"] == list(range(100))
    assert [row["element"] for row in r.details["elements"]] == [0, 1, 2]


def test_set_full_a_duplicated_element_heads_the_element_table() -> None:
    """The element table puts duplicated elements first, with the lost ones, before
    never-read and stable ones."""
    h = hist(inv(2, "add", 1), A, A_, R, ok(1, "read", [0, 0]))  # 1: never read
    r = set_full.check(h)
    assert r.valid is False and r.details["duplicated"] == [[0, 2]]
    assert [row["element"] for row in r.details["elements"]] == [0, 1]


def _timed(*rows: tuple[Any, ...]) -> History:
    """``(process, type, f, value, time_ns)`` rows."""
    return History.from_ops(
        [{"process": p, "type": t, "f": f, "value": v, "time": tm} for p, t, f, v, tm in rows]
    )


def _known_at_1ns_then_read(ns: int, first: list[Any], then: list[Any]) -> History:
    """Element 1 added (known at 1 ns), then a read invoked at ``ns - 1`` that saw
    ``first``, then one invoked at ``ns + 1`` that saw ``then``."""
    return _timed((0, "invoke", "add", 1, 0), (0, "ok", "add", 1, 1),
                  (1, "invoke", "read", None, ns - 1), (1, "ok", "read", first, ns),
                  (1, "invoke", "read", None, ns + 1), (1, "ok", "read", then, ns + 2))  # fmt: skip


def test_set_full_stable_latency_is_in_whole_milliseconds() -> None:
    """The stable latency runs from when the element was known to just after the last read
    that lacked it was invoked, in whole milliseconds rounded down; but a read invoked
    999,999 ns after the element was known that lacked it is stale all the same (counting
    only whole ms, as Jepsen, called a linearizable set that lost it for 1 ms valid)."""
    r = set_full.check(_known_at_1ns_then_read(1_000_000, [], [1]), linearizable=True)
    assert r.valid is False and r.details["stale"] == [1]
    assert r.details["stable_latencies"]["1.0"] == 0
    # A read that lacked it, invoked before it was known (concurrent with its add), is not.
    early = _timed((0, "invoke", "add", 1, 0), (1, "invoke", "read", None, 1),
                   (0, "ok", "add", 1, 2), (1, "ok", "read", [], 3),
                   (1, "invoke", "read", None, 4), (1, "ok", "read", [1], 5))  # fmt: skip
    r = set_full.check(early, linearizable=True)
    assert r.valid is True and r.details["stale"] == []
    r = set_full.check(_known_at_1ns_then_read(1_000_001, [], [1]), linearizable=True)
    assert r.valid is False and r.details["stale"] == [1]
    assert r.details["stable_latencies"]["1.0"] == 1


def test_set_full_lost_latency_is_in_whole_milliseconds() -> None:
    """The lost latency runs from when the element was known to just after the last read
    that saw it was invoked, in whole milliseconds rounded down."""
    r = set_full.check(_known_at_1ns_then_read(1_000_000, [1], []))
    assert r.valid is False and r.details["lost"] == [1]
    assert r.details["lost_latencies"]["1.0"] == 0
    r = set_full.check(_known_at_1ns_then_read(1_000_001, [1], []))
    assert r.details["lost_latencies"]["1.0"] == 1


# ---------------------------------------------------------------- unique-ids


def _generated(*ids: Any) -> History:
    """One ``ok`` generate of each of ``ids``, by process 0."""
    return hist(*(op for i in ids for op in (inv(0, "generate"), ok(0, "generate", i))))


def test_unique_ids_sets_and_tuples_of_lists_are_ids_too() -> None:
    """Ids that are sets (equal whatever their order) or tuples holding lists (a history
    built in Python) are counted like any other: equal ones are duplicates."""
    r = unique_ids.check(_generated({1, 2}, {2, 1}, {3}, ([1],), ([1],), ([2],)))
    assert r.valid is False
    assert r.details["duplicated"] == [[frozenset({1, 2}), 2], [((1,),), 2]]


@pytest.mark.parametrize(("low", "high"), [(9, 10), (9.5, 10.5), ("a", "b'"), ({"a": 1}, {"b": 2})])
def test_unique_ids_range_orders_values_of_a_type_by_value(low: Any, high: Any) -> None:
    """``range`` is the lowest and highest id: numbers and strings by value (10 after 9),
    other values (maps) by their printed form, never a crash."""
    r = unique_ids.check(_generated(high, low))
    assert r.valid is True and r.details["range"] == [low, high]


def test_nemesis_ops_never_count_whatever_their_f() -> None:
    """Ops of the nemesis are not client ops, even with a client op's ``f``: a nemesis
    ``generate`` is no id handed out."""
    h = hist(inv("nemesis", "generate"), ok("nemesis", "generate", 1), inv(0, "generate"),
             ok(0, "generate", 1))  # fmt: skip
    r = unique_ids.check(h)
    assert r.valid is True
    assert (r.details["attempted_count"], r.details["acknowledged_count"]) == (1, 1)


def test_unique_ids_lists_a_bounded_number_of_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most ``MAX_DUPLICATES_LISTED`` duplicated ids are listed (the most frequent
    first); ``duplicated_count`` stays exact."""
    monkeypatch.setattr(unique_ids, "MAX_DUPLICATES_LISTED", 2)
    ids = (1, 1, 1, 2, 2, 3, 3, 4)
    h = hist(*(op for i in ids for op in (inv(0, "generate"), ok(0, "generate", i))))
    r = unique_ids.check(h)
    assert r.valid is False
    assert r.details["duplicated_count"] == 3
    assert r.details["duplicated"] == [[1, 3], [2, 2]]


# ---------------------------------------------------------------- set


def test_set_the_final_read_is_found_wherever_it_is() -> None:
    """The final read is the last client ``ok`` read, wherever it is in the history (here
    the op at position 1, followed by an add still running), never a nemesis op."""
    h = _ops(
        ("invoke", "nemesis", "add", 8), ("ok", "nemesis", "add", 8),
        ("invoke", 0, "read", None), ("ok", 0, "read", (9,)),
        ("invoke", 1, "add", 9),
        ("invoke", "nemesis", "read", None), ("ok", "nemesis", "read", []),
    )  # fmt: skip
    t0 = time.perf_counter()
    r = set_checker.check(h)
    assert 0 <= r.seconds <= time.perf_counter() - t0
    assert r.valid is True and r.details["final_read_index"] == 3
    assert r.details["recovered"] == [9] and r.details["attempt_count"] == 1


def test_set_a_final_read_of_nil_reads_nothing() -> None:
    """A final read that completed ``ok`` with nil (no list) read no element: the adds
    acknowledged before it are lost. Adds acknowledged after it began may be missing, and
    both kinds are counted as acknowledged."""
    h = _ops(
        ("invoke", 0, "add", 1), ("ok", 0, "add", 1),
        ("invoke", 1, "read", None),
        ("invoke", 0, "add", 2), ("ok", 0, "add", 2),
        ("ok", 1, "read", None),
    )  # fmt: skip
    r = set_checker.check(h)
    assert r.valid is False and r.details["lost"] == [1]
    assert r.details["acknowledged_count"] == 2 and r.details["read_count"] == 0


@pytest.mark.parametrize("element", [[1], {"a": 1}])
def test_set_an_element_that_is_a_list_or_a_map_names_its_line(element: Any) -> None:
    """A set element is a number or a string: a list or a map, added or read, is an input
    error naming the op's line."""
    added = _ops(("invoke", 0, "add", element), ("ok", 0, "add", element))
    with pytest.raises(HistoryError, match=r":1:.*a set element must be a number or a string"):
        set_checker.check(added)
    read = _ops(("invoke", 0, "read", None), ("ok", 0, "read", [element]))
    with pytest.raises(HistoryError, match=r":2:.*a set element must be a number or a string"):
        set_checker.check(read)


def test_set_lists_are_bounded_and_counts_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most ``MAX_LISTED`` elements are listed per category (the smallest); the counts
    stay exact."""
    monkeypatch.setattr(set_checker, "MAX_LISTED", 2)
    adds = [row for x in (3, 1, 2) for row in (("invoke", 0, "add", x), ("ok", 0, "add", x))]
    r = set_checker.check(_ops(*adds, ("invoke", 1, "read", None), ("ok", 1, "read", [7, 5, 6])))
    assert r.valid is False
    assert (r.details["lost_count"], r.details["lost"]) == (3, [1, 2])
    assert (r.details["unexpected_count"], r.details["unexpected"]) == (3, [5, 6])


def test_set_counts_each_outcome_of_the_final_read() -> None:
    """In the final read: ``ok_count`` counts the attempted elements present; recovered
    are the present elements of unknown outcome only; failed-but-present are failed adds
    present and never acknowledged (before or after the read began). A valid history has
    no cause."""
    h = _ops(
        ("invoke", 0, "add", 1), ("ok", 0, "add", 1),
        ("invoke", 0, "add", 2), ("info", 0, "add", 2),
        ("invoke", 0, "add", 3), ("fail", 0, "add", 3),
        ("invoke", 0, "add", 4), ("fail", 0, "add", 4),
        ("invoke", 0, "add", 5), ("fail", 0, "add", 5),
        ("invoke", 0, "add", 6), ("fail", 0, "add", 6),
        ("invoke", 0, "add", 6), ("ok", 0, "add", 6),
        ("invoke", 1, "read", None),
        ("invoke", 0, "add", 5), ("ok", 0, "add", 5),
        ("ok", 1, "read", [1, 2, 4, 5, 6]),
    )  # fmt: skip
    r = set_checker.check(h)
    assert r.valid is False and r.details["failed_but_present"] == [4]
    assert (r.details["ok_count"], r.details["recovered"]) == (5, [2])
    h = _ops(("invoke", 0, "add", 1), ("ok", 0, "add", 1), ("invoke", 0, "add", 2),
             ("invoke", 1, "read", None), ("ok", 1, "read", [1, 9]))  # fmt: skip
    assert set_checker.check(h).details["ok_count"] == 1
    h = _ops(("invoke", 0, "add", 1), ("ok", 0, "add", 1),
             ("invoke", 1, "read", None), ("ok", 1, "read", [1]))  # fmt: skip
    assert set_checker.check(h).cause is None


def test_set_seconds_is_the_time_the_check_took_even_without_a_final_read() -> None:
    """``seconds`` is the time the check took, also when it ends early (no final read)."""
    t0 = time.perf_counter()
    r = set_checker.check(_ops(("invoke", 0, "add", 1), ("ok", 0, "add", 1)))
    assert r.valid == "unknown" and 0 <= r.seconds <= time.perf_counter() - t0
