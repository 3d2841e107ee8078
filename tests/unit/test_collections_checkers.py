"""The collection checkers on hand-made histories (each anomaly they name, and valid
ones), and on cases transcribed from Jepsen's own checker tests (tests/data/jepsen)."""

from __future__ import annotations

from typing import Any

import pytest

from checkers.collections import (
    CHECKERS,
    bank,
    counter,
    lock,
    long_fork,
    queue,
    set_full,
    unique_ids,
)
from harness.errors import HistoryError
from harness.history import History

MS = 1_000_000


def hist(*ops: tuple[Any, ...]) -> History:
    """``(process, type, f, value[, key])`` tuples; op i at time i ms (Jepsen's spacing)."""
    rows = []
    for i, (p, t, f, v, *rest) in enumerate(ops):
        d = {"process": p, "type": t, "f": f, "value": v, "time": i * MS}
        if rest:
            d["key"] = rest[0]
        rows.append(d)
    return History.from_ops(rows)


def inv(p: Any, f: str, v: Any = None) -> tuple[Any, ...]:
    return (p, "invoke", f, v)


def ok(p: Any, f: str, v: Any = None) -> tuple[Any, ...]:
    return (p, "ok", f, v)


def fail(p: Any, f: str, v: Any = None) -> tuple[Any, ...]:
    return (p, "fail", f, v)


def info(p: Any, f: str, v: Any = None) -> tuple[Any, ...]:
    return (p, "info", f, v)


def test_registry_names_every_model() -> None:
    assert set(CHECKERS) >= {
        "bank",
        "counter",
        "set-full",
        "unique-ids",
        "long-fork",
        "queue",
        "total-queue",
        "lock",
    }


# ---------------------------------------------------------------- bank


def _read(p: int, balances: dict[Any, Any]) -> list[tuple[Any, ...]]:
    return [inv(p, "read"), ok(p, "read", balances)]


def test_bank_valid_with_transfers() -> None:
    h = hist(
        *_read(0, {"a": 10, "b": 0}),
        inv(1, "transfer", {"from": "a", "to": "b", "amount": 3}),
        *_read(0, {"a": 10, "b": 0}),
        ok(1, "transfer", {"from": "a", "to": "b", "amount": 3}),
        *_read(0, {"a": 7, "b": 3}),
    )
    r = bank.check(h)
    assert r.valid is True
    assert r.details["total"] == 10 and [p[1] for p in r.details["totals"]] == [10, 10, 10]


def test_bank_wrong_total_negative_unexpected_and_nil() -> None:
    h = hist(
        *_read(0, {"a": 10, "b": 0}),
        *_read(0, {"a": 10, "b": 3}),
        *_read(0, {"a": 12, "b": -2}),
        *_read(0, {"a": 10, "b": 0, "z": 0}),
        *_read(0, {"a": 10, "b": None}),
    )
    r = bank.check(h)
    assert r.valid is False
    errors = r.details["errors"]
    assert set(errors) == {"wrong-total", "negative-value", "unexpected-key", "nil-balance"}
    assert errors["wrong-total"]["count"] == 1 and errors["wrong-total"]["first"]["total"] == 13
    assert errors["negative-value"]["first"]["negative"] == [-2]
    assert errors["unexpected-key"]["first"]["unexpected"] == ["z"]
    assert errors["nil-balance"]["first"]["nils"] == ["b"]
    assert r.details["first_error"]["index"] == 3


def test_bank_negative_allowed_and_explicit_total() -> None:
    h = hist(*_read(0, {"a": 12, "b": -2}))
    assert bank.check(h, negative_balances=True).valid is True
    assert bank.check(h).valid is False
    assert bank.check(h, total=20, negative_balances=True).details["errors"]["wrong-total"]


def test_bank_no_read_is_unknown_and_bad_value_names_line() -> None:
    r = bank.check(hist(inv(0, "read"), fail(0, "read")))
    assert r.valid == "unknown" and r.details["read_count"] == 0
    with pytest.raises(HistoryError, match=r":2:.*map of account"):
        bank.check(hist(inv(0, "read"), ok(0, "read", [1, 2])))
    for balance in ("7", True):
        with pytest.raises(HistoryError, match=r":2:.*balance of account 'a' .* not a number"):
            bank.check(hist(inv(0, "read"), ok(0, "read", {"a": balance})))


def test_bank_error_summary_first_worst_last_lowest_highest() -> None:
    h = hist(
        *_read(0, {"a": 10, "b": 0}),
        *_read(0, {"a": 10, "b": 3}),  # total 13, index 3: 30% off
        *_read(0, {"a": 5, "b": 0}),  # total 5, index 5: 50% off, the worst
        *_read(0, {"a": 10, "b": 1}),  # total 11, index 7: 10% off
    )
    r = bank.check(h)
    assert r.cause == "3 read(s) with wrong-total"
    wrong = r.details["errors"]["wrong-total"]
    assert wrong["count"] == 3
    assert [wrong[k]["index"] for k in ("first", "worst", "last", "lowest", "highest")] == [
        3,
        5,
        7,
        5,
        3,
    ]


def test_bank_worst_of_each_other_error_type() -> None:
    h = hist(
        *_read(0, {"a": 10, "b": 0}),
        *_read(0, {"a": 10, "b": 0, "z": 0}),  # index 3: one unexpected key
        *_read(0, {"a": 10, "b": 0, "y": 0, "z": 0}),  # index 5: two, the worst
        *_read(0, {"a": None, "b": 10}),  # index 7: one nil
        *_read(0, {"a": None, "b": None}),  # index 9: two nils, the worst
        *_read(0, {"a": 12, "b": -2}),  # index 11
        *_read(0, {"a": 15, "b": -5}),  # index 13: the most negative
        *_read(0, {"a": 11, "b": -1}),  # index 15
    )
    errors = bank.check(h).details["errors"]
    assert errors["unexpected-key"]["worst"]["index"] == 5
    assert errors["nil-balance"]["worst"]["index"] == 9
    assert errors["negative-value"]["worst"]["index"] == 13


def test_bank_totals_series_is_thinned_keeping_wrong_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bank, "MAX_SERIES_POINTS", 2)
    # Five reads (completions at indices 1, 3, 5, 7, 9): every 2.5th is kept (the 1st and
    # 3rd), plus the wrong one.
    h = hist(*(op for t in (10, 10, 10, 10, 13) for op in _read(0, {"a": t})))
    assert [p[2] for p in bank.check(h).details["totals"]] == [1, 5, 9]
    # Wrong reads are kept up to the same bound again: two of the three.
    h = hist(*(op for t in (10, 13, 13, 13, 10) for op in _read(0, {"a": t})))
    assert [p[2] for p in bank.check(h).details["totals"]] == [1, 3, 5]
    h = hist(*(op for t in (10, 10) for op in _read(0, {"a": t})))
    assert [p[1:] for p in bank.check(h).details["totals"]] == [[10, 1], [10, 3]]


def test_bank_worst_wrong_total_when_total_is_zero_or_negative() -> None:
    # Relative error is undefined for a total of 0: the absolute difference ranks instead.
    h = hist(*_read(0, {"a": 0, "b": 0}), *_read(0, {"a": 3, "b": 0}), *_read(0, {"a": 0, "b": 1}))
    assert bank.check(h).details["errors"]["wrong-total"]["worst"]["index"] == 3
    # Total -10: a read of 5 is 15 off, one of -17 only 7.
    h = hist(*_read(0, {"a": 5, "b": 0}), *_read(0, {"a": -17, "b": 0}))
    r = bank.check(h, total=-10, negative_balances=True)
    assert r.details["errors"]["wrong-total"]["worst"]["index"] == 1


# ---------------------------------------------------------------- counter


def test_counter_bounds_with_concurrency_and_failures() -> None:
    h = hist(
        inv(0, "add", 1),
        ok(0, "add", 1),
        inv(1, "add", 5),
        fail(1, "add", 5),
        inv(2, "add", 2),
        inv(0, "read"),
        ok(0, "read", 3),
        info(2, "add", 2),
        inv(0, "read"),
        ok(0, "read", 1),
    )
    r = counter.check(h)
    assert r.valid is True
    assert [x[:3] for x in r.details["reads"]] == [[1, 3, 3], [1, 1, 3]]


def test_counter_read_outside_bounds() -> None:
    h = hist(
        inv(0, "add", 1),
        ok(0, "add", 1),
        inv(0, "read"),
        ok(0, "read", 0),
        inv(0, "read"),
        ok(0, "read", 2),
    )
    r = counter.check(h)
    assert r.valid is False and r.details["error_count"] == 2
    assert [e[:3] for e in r.details["errors"]] == [[1, 0, 1], [1, 2, 1]]


def test_counter_decrements() -> None:
    h = hist(
        inv(0, "add", 5),
        ok(0, "add", 5),
        inv(1, "add", -3),
        inv(0, "read"),
        ok(0, "read", 2),
        ok(1, "add", -3),
        inv(0, "read"),
        ok(0, "read", 5),
    )
    r = counter.check(h)
    assert [x[:3] for x in r.details["reads"]] == [[2, 2, 5], [2, 5, 2]]
    assert r.valid is False  # the decrement was done before the second read began


def test_counter_ok_add_counts_its_own_invocations_value() -> None:
    # Two adds in flight; the first to complete is the add of 1, so a read between the
    # completions surely sees 1 (not the 2 invoked last) and may see 3.
    h = hist(
        inv(0, "add", 1),
        inv(1, "add", 2),
        ok(0, "add", 1),
        inv(2, "read"),
        ok(2, "read", 1),
        ok(1, "add", 2),
        inv(2, "read"),
        ok(2, "read", 3),
    )
    r = counter.check(h)
    assert r.valid is True
    assert [x[:3] for x in r.details["reads"]] == [[1, 1, 3], [3, 3, 3]]


def test_counter_float_adds_summed_in_another_order_still_fit() -> None:
    """Both bounds were 0.6 exactly (every add done before the read), but the lower one was
    summed in completion order (0.6000000000000001) and the upper in invocation order
    (0.6): no read could fit."""
    adds = [inv(0, "add", 0.3), inv(1, "add", 0.2), inv(2, "add", 0.1),
            ok(2, "add", 0.1), ok(1, "add", 0.2), ok(0, "add", 0.3)]  # fmt: skip
    for read in (0.6, 0.1 + 0.2 + 0.3, 0.3 + 0.2 + 0.1):
        assert counter.check(hist(*adds, inv(0, "read"), ok(0, "read", read))).valid is True
    # A read off by more than rounding is still caught.
    assert counter.check(hist(*adds, inv(0, "read"), ok(0, "read", 0.61))).valid is False
    assert counter.check(hist(*adds, inv(0, "read"), ok(0, "read", 0.5))).valid is False


def test_bank_float_balances_total_up_to_rounding() -> None:
    moved = [
        inv(0, "read"), ok(0, "read", {"a": 0.3, "b": 0.3}),
        inv(1, "transfer", {"from": "a", "to": "b", "amount": 0.1}),
        ok(1, "transfer", {"from": "a", "to": "b", "amount": 0.1}),
    ]  # fmt: skip
    assert bank.check(hist(*moved, inv(0, "read"), ok(0, "read", {"a": 0.2, "b": 0.4}))).valid
    wrong = bank.check(hist(*moved, inv(0, "read"), ok(0, "read", {"a": 0.2, "b": 0.3})))
    assert wrong.valid is False and wrong.details["errors"]["wrong-total"]["count"] == 1
    # A balance rounded just below zero is not negative (0.3 - 0.1 - 0.2 = -2.8e-17).
    drained = [inv(0, "read"), ok(0, "read", {"a": 0.3, "b": 0.7}),
               inv(0, "read"), ok(0, "read", {"a": 0.3 - 0.1 - 0.2, "b": 1.0})]  # fmt: skip
    assert bank.check(hist(*drained)).valid is True
    # The slack is rounding's, not a share of the total: 1000 off a trillion is wrong.
    big = [inv(0, "read"), ok(0, "read", {"a": 5e11, "b": 5e11}),
           inv(0, "read"), ok(0, "read", {"a": 5e11, "b": 5e11 + 1000.0})]  # fmt: skip
    assert bank.check(hist(*big)).valid is False


def test_counter_adds_past_a_floats_range_are_summed_exactly() -> None:
    """Σ|add| began as 0.0, so an add of 10**400 raised OverflowError."""
    h = hist(inv(0, "add", 10**400), ok(0, "add", 10**400), inv(0, "read"),
             ok(0, "read", 10**400))  # fmt: skip
    assert counter.check(h).valid is True
    h = hist(inv(0, "add", 10**400), ok(0, "add", 10**400), inv(0, "read"),
             ok(0, "read", 10**400 + 1))  # fmt: skip
    assert counter.check(h).valid is False  # (integers are exact: no slack)
    # A read of a float against them is compared exactly; a float add beside them is a
    # clear error, not an OverflowError; and no slack is infinite.
    big = [inv(0, "add", 10**400), ok(0, "add", 10**400)]
    assert counter.check(hist(*big, inv(0, "read"), ok(0, "read", 1.5))).valid is False
    mixed = [inv(0, "add", 10**400), ok(0, "add", 10**400), inv(0, "add", 0.5),
             ok(0, "add", 0.5)]  # fmt: skip
    with pytest.raises(HistoryError, match="past a float's range"):
        counter.check(hist(*mixed, inv(0, "read"), ok(0, "read", 1.5)))
    huge = [inv(0, "add", 1e308), ok(0, "add", 1e308), inv(0, "add", -1e308),
            ok(0, "add", -1e308)]  # fmt: skip
    assert counter.check(hist(*huge, inv(0, "read"), ok(0, "read", 12345.0))).valid is False


def test_bank_an_infinite_balance_hides_no_negative_one() -> None:
    r = bank.check(hist(inv(0, "read"), ok(0, "read", {"a": float("inf"), "b": -5.0})))
    assert r.valid is False and r.details["errors"]["negative-value"]["count"] == 1


def test_counter_fractional_adds_count_as_positive() -> None:
    # An add of 0.5 can only raise the counter: concurrent with a read it widens the upper
    # bound, completed before one it raises both.
    h = hist(
        inv(0, "add", 0.5),
        inv(1, "read"),
        ok(1, "read", 0),
        ok(0, "add", 0.5),
        inv(1, "read"),
        ok(1, "read", 0.5),
    )
    r = counter.check(h)
    assert r.valid is True
    assert [x[:3] for x in r.details["reads"]] == [[0, 0, 0.5], [0.5, 0.5, 0.5]]


def test_counter_non_numbers_are_input_errors() -> None:
    with pytest.raises(HistoryError, match=r":2:.*counter read needs a number"):
        counter.check(hist(inv(0, "read"), ok(0, "read", None)))
    with pytest.raises(HistoryError, match=r":1:.*counter add needs a number"):
        counter.check(hist(inv(0, "add", True), ok(0, "add", True)))


def test_counter_counts_are_exact_and_lists_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counter, "MAX_LISTED_READS", 1)
    h = hist(
        inv(0, "read"),
        ok(0, "read", 0),
        inv(0, "read"),
        ok(0, "read", 5),
        inv(0, "read"),
        ok(0, "read", -1),
    )
    r = counter.check(h)
    assert r.valid is False
    assert (r.details["read_count"], r.details["error_count"]) == (3, 2)
    assert r.details["reads"] == [[0, 0, 0, 1]] and r.details["errors"] == [[0, 5, 0, 3]]
    assert r.cause == "2 read(s) outside the possible range; first: op 3 read 5, possible 0..0"


# Transcribed from jepsen checker_test.clj counter-test.
@pytest.mark.parametrize(
    ("ops", "valid", "reads"),
    [
        ([], True, []),
        ([inv(0, "read"), ok(0, "read", 0)], True, [[0, 0, 0]]),
        (
            [inv(0, "add", 1), fail(0, "add", 1), inv(0, "read"), ok(0, "read", 0)],
            True,
            [[0, 0, 0]],
        ),
        (
            [inv(0, "add", 1), inv(1, "read"), ok(1, "read", 0), inv(1, "read"), ok(1, "read", 1)],
            True,
            [[0, 0, 1], [0, 1, 1]],
        ),
        ([inv(0, "read"), ok(0, "read", 1)], False, [[0, 1, 0]]),
        (
            [
                inv(0, "read"),
                inv(1, "add", 1),
                inv(2, "read"),
                inv(3, "add", 2),
                inv(4, "read"),
                inv(5, "add", 4),
                inv(6, "read"),
                inv(7, "add", 8),
                inv(8, "read"),
                ok(0, "read", 6),
                ok(1, "add", 1),
                ok(2, "read", 0),
                ok(3, "add", 2),
                ok(4, "read", 3),
                ok(5, "add", 4),
                ok(6, "read", 100),
                ok(7, "add", 8),
                ok(8, "read", 15),
            ],
            False,
            [[0, 6, 15], [0, 0, 15], [0, 3, 15], [0, 100, 15], [0, 15, 15]],
        ),
        (
            [
                inv(0, "read"),
                inv(1, "add", 1),
                ok(0, "read", 0),
                inv(0, "read"),
                ok(1, "add", 1),
                inv(1, "add", 2),
                ok(0, "read", 3),
                inv(0, "read"),
                ok(1, "add", 2),
                ok(0, "read", 5),
            ],
            False,
            [[0, 0, 1], [0, 3, 3], [1, 5, 3]],
        ),
    ],
)
def test_counter_jepsen_cases(ops: list[Any], valid: bool, reads: list[list[int]]) -> None:
    r = counter.check(hist(*ops)) if ops else counter.check(History.from_ops([]))
    assert r.valid is valid
    assert [x[:3] for x in r.details["reads"]] == reads


# ---------------------------------------------------------------- set-full


A, A_ = inv(0, "add", 0), ok(0, "add", 0)
R = inv(1, "read")
R_PLUS, R_MINUS = ok(1, "read", [0]), ok(1, "read", [])


@pytest.mark.parametrize(
    "ops",
    [
        [R, A, R_PLUS, A_],
        [R, A, A_, R_PLUS],
        [A, R, R_PLUS, A_],
        [A, R, A_, R_PLUS],
        [A, A_, R, R_PLUS],
    ],
)
def test_set_full_jepsen_read_concurrently_or_after_is_stable(ops: list[Any]) -> None:
    r = set_full.check(hist(*ops))
    assert r.valid is True and r.details["stable_count"] == 1
    assert r.details["stable_latencies"] == dict.fromkeys(["0.0", "0.5", "0.95", "0.99", "1.0"], 0)


@pytest.mark.parametrize(
    "ops",
    [
        [R, A, R_MINUS, A_],
        [R, A, A_, R_MINUS],
        [A, R, R_MINUS, A_],
        [A, R, A_, R_MINUS],
        [A, A_],
        [A, R, R_MINUS],
    ],
)
def test_set_full_jepsen_absent_concurrently_or_never_read(ops: list[Any]) -> None:
    r = set_full.check(hist(*ops))
    assert r.valid == "unknown" and r.details["never_read"] == [0]
    assert r.cause == "no element is stable: no add was ever confirmed by a later read"


def test_set_full_jepsen_absent_read_after_is_lost() -> None:
    r = set_full.check(hist(A, A_, R, R_MINUS))
    assert r.valid is False and r.details["lost"] == [0]
    assert r.details["lost_latencies"]["1.0"] == 0


def test_set_full_jepsen_write_present_missing() -> None:
    a0, a0_, a1, a1_ = inv(0, "add", 0), ok(0, "add", 0), inv(1, "add", 1), ok(1, "add", 1)
    r2 = inv(2, "read")
    h = hist(
        a0,
        a1,
        r2,
        ok(2, "read", [1]),
        a0_,
        a1_,
        r2,
        ok(2, "read", [0, 1]),
        r2,
        ok(2, "read", [0]),
        r2,
        ok(2, "read", []),
    )
    r = set_full.check(h)
    assert r.valid is False and r.details["lost"] == [0, 1]
    assert r.details["lost_latencies"] == {"0.0": 3, "0.5": 4, "0.95": 4, "0.99": 4, "1.0": 4}


def test_set_full_jepsen_flutter_stale_and_lost() -> None:
    a0, a0_, a1, a1_ = inv(0, "add", 0), ok(0, "add", 0), inv(1, "add", 1), ok(1, "add", 1)
    h = hist(
        a0,
        a0_,
        a1,
        inv(2, "read"),
        ok(2, "read", [1]),
        a1_,
        inv(2, "read"),
        inv(3, "read"),
        ok(3, "read", [1]),
        ok(2, "read", [0]),
    )
    r = set_full.check(h)
    assert r.valid is False
    assert r.details["lost"] == [0] and r.details["stale"] == [1]
    assert r.details["lost_latencies"]["1.0"] == 5 and r.details["stable_latencies"]["1.0"] == 2
    worst = r.details["worst_stale"][0]
    assert (worst["element"], worst["known_index"], worst["last_absent_index"]) == (1, 4, 6)
    assert set_full.check(h, linearizable=True).details["stale_count"] == 1


def test_set_full_stale_is_invalid_only_when_linearizable() -> None:
    h = hist(A, A_, R, R_MINUS, R, R_PLUS)
    assert set_full.check(h).valid is True
    assert set_full.check(h).details["stale"] == [0]
    r = set_full.check(h, linearizable=True)
    assert r.valid is False and "stale" in (r.cause or "")


def test_set_full_duplicated_and_unexpected() -> None:
    r = set_full.check(hist(A, A_, R, ok(1, "read", [0, 0])))
    assert r.valid is False and r.details["duplicated"] == [[0, 2]]
    r = set_full.check(hist(A, A_, R, ok(1, "read", [0, 9])))
    assert r.valid is False and r.details["unexpected"] == [9]


def test_set_full_element_table_puts_problems_first() -> None:
    h = hist(A, A_, inv(0, "add", 1), ok(0, "add", 1), R, ok(1, "read", [1]))
    rows = set_full.check(h).details["elements"]
    assert [(row["element"], row["outcome"]) for row in rows] == [(0, "lost"), (1, "stable")]


def test_set_full_reads_before_an_add_is_invoked_do_not_count_for_it() -> None:
    h = hist(
        inv(1, "read"),
        ok(1, "read", [0]),  # before 0's add: not present, but unexpected (from the future)
        A,
        A_,
        inv(1, "read"),
        ok(1, "read", [0, 1]),  # before 1's add: 1 does not count, but is unexpected
        inv(0, "add", 1),
        ok(0, "add", 1),
    )
    r = set_full.check(h)
    assert r.valid is False and r.details["read_count"] == 2
    assert (r.details["stable_count"], r.details["never_read"]) == (1, [1])
    assert r.details["unexpected"] == [0, 1]
    assert "2 element(s) read that were never added, or not yet" in (r.cause or "")
    row = next(row for row in r.details["elements"] if row["element"] == 0)
    assert (row["outcome"], row["known_index"], row["last_present_index"]) == ("stable", 3, 4)


def test_set_full_a_duplicate_is_counted_whenever_the_read_ran() -> None:
    """A read that ended before the element's add began, with the element twice, was
    called valid: its elements were dropped before duplicates were counted."""
    h = hist(inv(0, "read"), ok(0, "read", [1, 1]), inv(1, "add", 1), ok(1, "add", 1),
             inv(0, "read"), ok(0, "read", [1]))  # fmt: skip
    r = set_full.check(h)
    assert r.valid is False and r.details["duplicated"] == [[1, 2]]
    never = set_full.check(hist(A, A_, inv(0, "read"), ok(0, "read", [0, 9, 9])))
    assert never.valid is False and never.details["duplicated"] == [[9, 2]]
    assert never.details["unexpected"] == [9]


def test_set_full_a_repeated_add_does_not_overwrite_the_first() -> None:
    h = hist(A, A_, inv(0, "add", 0), fail(0, "add", 0), R, R_PLUS)
    (row,) = set_full.check(h).details["elements"]
    assert (row["add"], row["add_index"], row["known_index"]) == ("ok", 0, 1)


def test_set_full_duplicates_name_only_the_repeated_elements() -> None:
    h = hist(A, A_, inv(0, "add", 1), ok(0, "add", 1), R, ok(1, "read", [0, 1, 0]))
    r = set_full.check(h)
    assert r.valid is False and r.details["duplicated"] == [[0, 2]]
    assert r.details["duplicated_count"] == 1


def test_set_full_integer_elements_and_other_values_in_one_read() -> None:
    h = hist(A, A_, R, ok(1, "read", [0, "x", 2**70]))
    r = set_full.check(h)
    assert r.valid is False and r.details["unexpected"] == [2**70, "x"]
    assert r.details["stable_count"] == 1


def test_set_full_an_element_visible_at_once_is_not_stale() -> None:
    h = hist(A, A_, R, R_PLUS, inv(0, "add", 1), ok(0, "add", 1))
    r = set_full.check(h, linearizable=True)
    assert r.valid is True and r.details["stale"] == [] and r.details["never_read"] == [1]
    assert r.details["lost_latencies"] is None
    rows = {row["element"]: row for row in r.details["elements"]}
    assert (rows[0]["stale"], rows[0]["latency_ms"], rows[0]["duplicated"]) == (False, 0, 0)
    assert (rows[1]["outcome"], rows[1]["latency_ms"]) == ("never-read", None)


def test_set_full_element_table_order_lost_stale_never_read_stable() -> None:
    h = hist(
        A,
        A_,
        inv(0, "add", 2),
        ok(0, "add", 2),
        inv(0, "add", 3),
        ok(0, "add", 3),
        inv(1, "read"),
        ok(1, "read", [0, 3]),  # 2 missing 3 ms after it was known
        inv(1, "read"),
        ok(1, "read", [0, 2]),  # 3 missing after it was seen: lost
        inv(0, "add", 1),
        ok(0, "add", 1),  # never read
    )
    r = set_full.check(h)
    assert r.valid is False and r.details["lost"] == [3] and r.details["stale"] == [2]
    rows = r.details["elements"]
    assert [(row["element"], row["outcome"]) for row in rows] == [
        (3, "lost"),
        (2, "stable"),
        (1, "never-read"),
        (0, "stable"),
    ]
    assert [row["latency_ms"] for row in rows] == [1, 3, None, 0]


def test_set_full_reads_invoked_first_are_named_by_index_zero() -> None:
    (row,) = set_full.check(hist(R, A, R_MINUS, A_)).details["elements"]
    assert (row["last_absent_index"], row["last_present_index"]) == (0, None)
    (row,) = set_full.check(hist(R, A, R_PLUS, A_)).details["elements"]
    assert (row["last_absent_index"], row["last_present_index"]) == (None, 0)


def test_set_full_worst_stale_are_the_eight_slowest() -> None:
    adds = [op for k in range(9) for op in (inv(0, "add", k), ok(0, "add", k))]
    h = hist(*adds, R, ok(1, "read", []), R, ok(1, "read", list(range(9))))
    r = set_full.check(h)
    assert r.details["stale_count"] == 9
    # Element k was known at 2k+1 ms and last missing from a read invoked at 18 ms.
    assert [(w["element"], w["latency_ms"]) for w in r.details["worst_stale"]] == [
        (k, 17 - 2 * k) for k in range(8)
    ]


def test_set_full_read_without_a_list_names_its_line() -> None:
    with pytest.raises(HistoryError, match=r":4:.*set-full read must complete with a list"):
        set_full.check(hist(A, A_, R, ok(1, "read", 5)))


# ---------------------------------------------------------------- unique-ids


def test_unique_ids_jepsen_dups() -> None:
    h = hist(
        inv(0, "generate"),
        ok(0, "generate", 0),
        inv(1, "generate"),
        ok(1, "generate", 1),
        inv(2, "generate"),
        ok(2, "generate", 0),
        inv(3, "generate"),
        ok(3, "generate", 0),
        inv(4, "generate"),
        info(4, "generate"),
    )
    r = unique_ids.check(h)
    assert r.valid is False
    assert (r.details["attempted_count"], r.details["acknowledged_count"]) == (5, 4)
    assert r.details["duplicated"] == [[0, 3]] and r.details["range"] == [0, 1]


def test_unique_ids_duplicates_most_frequent_first_then_by_value() -> None:
    ids = (3, 7, 5, 3, 7, 5, 3, 9)
    h = hist(*(op for i in ids for op in (inv(0, "generate"), ok(0, "generate", i))))
    r = unique_ids.check(h)
    assert r.valid is False
    assert r.details["duplicated"] == [[3, 3], [5, 2], [7, 2]]
    assert r.details["range"] == [3, 9]
    assert r.cause == "3 id(s) handed out more than once; e.g. 3 3 times"


def test_unique_ids_valid_and_empty() -> None:
    h = hist(inv(0, "generate"), ok(0, "generate", 7), inv(0, "generate"), ok(0, "generate", 8))
    assert unique_ids.check(h).valid is True
    r = unique_ids.check(History.from_ops([]))
    assert r.valid is True and r.details["range"] == [None, None]


# ---------------------------------------------------------------- long-fork


def _lf_read(p: int, seen: dict[int, Any]) -> list[tuple[Any, ...]]:
    return [
        inv(p, "read", [["r", k, None] for k in seen]),
        ok(p, "read", [["r", k, v] for k, v in seen.items()]),
    ]


def test_long_fork_jepsen_case() -> None:
    r1, r1_ = _lf_read(0, {0: 1, 1: 1, 2: None})
    r2, r2_ = _lf_read(1, {2: 1, 0: 1, 1: None})
    r = long_fork.check(hist(r1, r2, r1_, r2_), group_size=3)
    assert r.valid is False and r.details["fork_count"] == 1
    assert (r.details["early_read_count"], r.details["late_read_count"]) == (0, 0)
    assert {op["index"] for op in r.details["forks"][0]} == {2, 3}


def test_long_fork_ordered_reads_are_valid() -> None:
    ops = [
        inv(0, "write", [["w", 0, 1]]),
        ok(0, "write", [["w", 0, 1]]),
        *_lf_read(1, {0: None, 1: None}),
        *_lf_read(1, {0: 1, 1: None}),
        inv(0, "write", [["w", 1, 1]]),
        ok(0, "write", [["w", 1, 1]]),
        *_lf_read(1, {1: 1, 0: 1}),
    ]
    r = long_fork.check(hist(*ops), group_size=2)
    assert r.valid is True
    assert (r.details["early_read_count"], r.details["late_read_count"]) == (1, 1)


def test_long_fork_illegal_histories_are_unknown() -> None:
    twice = [
        inv(0, "write", [["w", 0, 1]]),
        ok(0, "write", [["w", 0, 1]]),
        inv(0, "write", [["w", 0, 2]]),
        ok(0, "write", [["w", 0, 2]]),
    ]
    assert "more than once" in (long_fork.check(hist(*twice)).cause or "")
    r = long_fork.check(hist(*_lf_read(0, {0: 1, 1: None})), group_size=3)
    assert r.valid == "unknown" and "group of 3" in (r.cause or "")
    overlap = [*_lf_read(0, {0: 1, 1: None}), *_lf_read(0, {1: 1, 2: None})]
    assert "overlap" in (long_fork.check(hist(*overlap)).cause or "")
    wide = [inv(0, "write", [["w", 0, 1], ["w", 1, 1]]), ok(0, "write", [["w", 0, 1], ["w", 1, 1]])]
    r = long_fork.check(hist(*wide, *_lf_read(1, {0: 1, 1: 1})))
    assert r.valid == "unknown" and "writes 2 keys" in (r.cause or "")
    # Key 0 read as 1 and as 2: it was written twice, though no write is in the history.
    differ = [*_lf_read(0, {0: 1, 1: None}), *_lf_read(0, {0: 2, 1: 1})]
    r = long_fork.check(hist(*differ))
    assert r.valid == "unknown" and "different values of key 0" in (r.cause or "")


def test_long_fork_values_differing_between_reads_far_apart_are_illegal() -> None:
    # Sorted by how much they see, the reads reading key 0 as 1 and as 2 are not next to
    # each other (the fork between the first two lies between them): still illegal.
    ops = [
        *_lf_read(0, {0: 1, 1: None}),
        *_lf_read(1, {0: None, 1: 1}),
        *_lf_read(2, {0: 2, 1: 1}),
    ]
    r = long_fork.check(hist(*ops), group_size=2)
    assert r.valid == "unknown" and "different values of key 0 (1, 2)" in (r.cause or "")


def test_long_fork_keys_may_be_maps_or_nested_lists() -> None:
    """A map key, or a list holding a list, was unhashable: a TypeError, a crash."""
    for k in ({"k": 1}, [[1], 2]):
        h = hist(inv(0, "write", [["w", k, 1]]), ok(0, "write", [["w", k, 1]]),
                 inv(1, "read", [["r", k, None]]), ok(1, "read", [["r", k, 1]]))  # fmt: skip
        assert long_fork.check(h).valid is True


def test_long_fork_write_attempts_count_whatever_their_outcome() -> None:
    # As in Jepsen (it looks at invocations): a write that may have happened (info) and a
    # second write of the same key make the history illegal.
    ops = [
        inv(0, "write", [["w", 0, 1]]),
        info(0, "write", [["w", 0, 1]]),
        inv(1, "write", [["w", 0, 2]]),
        ok(1, "write", [["w", 0, 2]]),
        *_lf_read(2, {0: 2}),
    ]
    r = long_fork.check(hist(*ops))
    assert r.valid == "unknown" and "more than once" in (r.cause or "")


def test_long_fork_counts_reads_by_what_they_see() -> None:
    # Reads are ordered by what they see, not by when they ran: these four are ordered.
    ops = [
        *_lf_read(0, {0: 1, 1: 1}),
        *_lf_read(1, {0: None, 1: None}),
        *_lf_read(0, {0: 1, 1: None}),
        *_lf_read(1, {0: None, 1: None}),
    ]
    r = long_fork.check(hist(*ops), group_size=2)
    assert r.valid is True
    d = r.details
    assert (d["read_count"], d["early_read_count"], d["late_read_count"]) == (4, 2, 1)
    assert (d["group_count"], d["fork_count"]) == (1, 0)


def test_long_fork_without_reads_is_unknown() -> None:
    r = long_fork.check(hist(inv(0, "write", [["w", 0, 1]]), ok(0, "write", [["w", 0, 1]])))
    assert r.valid == "unknown" and r.cause == "no read transaction completed"


def test_long_fork_skips_ops_that_are_not_transactions_and_takes_list_keys() -> None:
    x, y = [1, "a"], [2, "b"]
    ops = [
        inv(5, "read"),  # no value at all
        info(5, "read"),
        inv(6, "write", [["w", 9, 1]]),
        fail(6, "write", [["w", 9, 1]]),
        inv(7, "read", [["r", 0]]),  # a micro-op of two elements
        ok(7, "read", [["r", 0]]),
        inv(8, "read", 7),  # not a list
        ok(8, "read", 7),
        inv(0, "read", [["r", x, None], ["r", y, None]]),
        inv(1, "read", [["r", x, None], ["r", y, None]]),
        ok(0, "read", [["r", x, 1], ["r", y, None]]),
        ok(1, "read", [["r", x, None], ["r", y, 1]]),
    ]
    r = long_fork.check(hist(*ops))
    assert r.valid is False
    assert (r.details["read_count"], r.details["fork_count"]) == (2, 1)
    assert {op["index"] for op in r.details["forks"][0]} == {10, 11}


def test_long_fork_lists_a_bounded_number_of_forks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(long_fork, "MAX_FORKS_LISTED", 1)
    ops = [
        *_lf_read(0, {0: 1, 1: None}),
        *_lf_read(0, {0: None, 1: 1}),
        *_lf_read(0, {2: 1, 3: None}),
        *_lf_read(0, {2: None, 3: 1}),
    ]
    r = long_fork.check(hist(*ops), group_size=2)
    assert r.valid is False and r.details["fork_count"] == 2 and len(r.details["forks"]) == 1


# ---------------------------------------------------------------- queue / total-queue


def test_total_queue_jepsen_sane() -> None:
    h = hist(
        inv(1, "enqueue", 1),
        inv(2, "enqueue", 2),
        ok(2, "enqueue", 2),
        inv(3, "dequeue"),
        ok(3, "dequeue", 1),
        inv(3, "dequeue"),
        ok(3, "dequeue", 2),
    )
    r = queue.check_total(h)
    assert r.valid is True
    d = r.details
    assert (d["attempt_count"], d["acknowledged_count"], d["ok_count"]) == (2, 1, 2)
    assert d["recovered"] == [1] and d["lost"] == d["duplicated"] == d["unexpected"] == []


def test_total_queue_jepsen_pathological() -> None:
    h = hist(
        inv(1, "enqueue", "hung"),
        inv(2, "enqueue", "enqueued"),
        ok(2, "enqueue", "enqueued"),
        inv(3, "enqueue", "dup"),
        ok(3, "enqueue", "dup"),
        inv(4, "dequeue"),
        inv(5, "dequeue"),
        ok(5, "dequeue", "wtf"),
        inv(6, "dequeue"),
        ok(6, "dequeue", "dup"),
        inv(7, "dequeue"),
        ok(7, "dequeue", "dup"),
    )
    r = queue.check_total(h)
    d = r.details
    assert r.valid is False
    assert (d["lost"], d["unexpected"], d["duplicated"], d["recovered"]) == (
        ["enqueued"],
        ["wtf"],
        ["dup"],
        [],
    )
    assert (d["attempt_count"], d["acknowledged_count"], d["ok_count"]) == (3, 2, 1)


def test_total_queue_duplicates_fail_unless_allowed() -> None:
    h = hist(
        inv(0, "enqueue", 1),
        ok(0, "enqueue", 1),
        inv(1, "dequeue"),
        ok(1, "dequeue", 1),
        inv(1, "dequeue"),
        ok(1, "dequeue", 1),
    )
    assert queue.check_total(h).valid is False
    assert queue.check_total(h, duplicates_allowed=True).valid is True


def test_total_queue_lost_is_unknown_when_unknown_dequeues_could_explain_it() -> None:
    base = [inv(0, "enqueue", 1), ok(0, "enqueue", 1), inv(0, "enqueue", 2), ok(0, "enqueue", 2)]
    lost = hist(*base, inv(1, "drain"), ok(1, "drain", [2]))
    assert queue.check_total(lost).valid is False
    explained = hist(
        *base, inv(2, "dequeue"), info(2, "dequeue"), inv(1, "drain"), ok(1, "drain", [2])
    )
    r = queue.check_total(explained)
    assert r.valid == "unknown" and "may have taken them" in (r.cause or "")


def test_total_queue_counts_dequeues_and_drains_of_unknown_outcome() -> None:
    h = hist(
        *(op for v in (1, 2, 3) for op in (inv(0, "enqueue", v), ok(0, "enqueue", v))),
        inv(1, "dequeue"),
        info(1, "dequeue"),
        inv(2, "drain"),
        info(2, "drain"),
        inv(5, "dequeue"),
        ok(5, "dequeue", 1),
        inv(6, "dequeue"),
        fail(6, "dequeue"),
        inv(3, "dequeue"),  # never completes
        inv(7, "dequeue"),  # never completes
        inv(4, "drain"),  # never completes
    )
    r = queue.check_total(h)
    d = r.details
    assert (d["unknown_dequeue_count"], d["unknown_drain_count"]) == (3, 2)
    assert d["lost"] == [2, 3] and r.valid == "unknown"


def test_total_queue_lost_is_definite_with_fewer_unknown_dequeues_than_lost() -> None:
    base = [op for v in (1, 2, 3) for op in (inv(0, "enqueue", v), ok(0, "enqueue", v))]
    drain = [inv(1, "drain"), ok(1, "drain", [1])]  # 2 and 3 are lost
    one = hist(*base, inv(2, "dequeue"), info(2, "dequeue"), *drain)
    assert queue.check_total(one).valid is False
    two = [inv(2, "dequeue"), info(2, "dequeue"), inv(3, "dequeue"), info(3, "dequeue")]
    assert queue.check_total(hist(*base, *two, *drain)).valid == "unknown"
    # Unexpected values are a definite anomaly whatever the unknown dequeues.
    odd = hist(*base, *two, inv(1, "drain"), ok(1, "drain", [1, 9]))
    assert queue.check_total(odd).valid is False
    # So are duplicates, unless they are allowed.
    dup = hist(*base, *two, inv(1, "drain"), ok(1, "drain", [1, 1]))
    assert queue.check_total(dup).valid is False
    assert queue.check_total(dup, duplicates_allowed=True).valid == "unknown"


def test_queue_runs_the_linear_model_up_to_linear_max_ops() -> None:
    h = hist(inv(0, "enqueue", 1), ok(0, "enqueue", 1), inv(1, "dequeue"), ok(1, "dequeue", 1))
    r = queue.check(h, linear_max_ops=4)
    assert r.valid is True and r.cause is None
    assert r.details["linearizable"]["valid"] is True
    skipped = queue.check(h, linear_max_ops=3).details["linearizable"]
    assert skipped == {"skipped": "4 client ops > linear_max_ops=3"}
    one = queue.check(hist(inv(0, "enqueue", 1)), linear_max_ops=1)
    assert one.details["linearizable"]["valid"] is True
    empty = queue.check(History.from_ops([]), linear_max_ops=0).details["linearizable"]
    assert empty == {"skipped": "0 client ops > linear_max_ops=0"}
    # Duplicates are invalid by default, here as in total-queue.
    dup = hist(
        inv(0, "enqueue", 1),
        ok(0, "enqueue", 1),
        inv(1, "dequeue"),
        ok(1, "dequeue", 1),
        inv(1, "dequeue"),
        ok(1, "dequeue", 1),
    )
    assert queue.check(dup, linear_max_ops=0).valid is False


def test_total_queue_ok_drain_without_a_list_names_its_line() -> None:
    with pytest.raises(HistoryError, match=r":2:.*ok drain must complete with a list"):
        queue.check_total(hist(inv(0, "drain"), ok(0, "drain", 5)))


def test_expand_drains_makes_concurrent_dequeues_by_fresh_processes() -> None:
    h = hist(
        inv(0, "drain"),  # drain is the first f (code 0)
        ok(0, "drain", []),
        inv(1, "enqueue", 1),
        ok(1, "enqueue", 1),
        inv(1, "enqueue", 2),
        ok(1, "enqueue", 2),
        inv(0, "drain"),
        inv(3, "drain"),
        info(3, "drain"),
        ok(0, "drain", [2, 1]),
        inv(1, "enqueue", 3),
        ok(1, "enqueue", 3),
        inv(2, "drain"),
        ok(2, "drain", [3]),  # the next fresh process
    )
    e = queue.expand_drains(h)
    # Each ok drain also becomes a dequeue that found the queue empty (its last one).
    assert [(e[i].process, e[i].type, e[i].f, e[i].value) for i in range(len(e))] == [
        (4, "invoke", "dequeue", None),
        (4, "ok", "dequeue", None),
        (1, "invoke", "enqueue", 1),
        (1, "ok", "enqueue", 1),
        (1, "invoke", "enqueue", 2),
        (1, "ok", "enqueue", 2),
        (5, "invoke", "dequeue", None),
        (6, "invoke", "dequeue", None),
        (7, "invoke", "dequeue", None),
        (5, "ok", "dequeue", 2),
        (6, "ok", "dequeue", 1),
        (7, "ok", "dequeue", None),
        (1, "invoke", "enqueue", 3),
        (1, "ok", "enqueue", 3),
        (8, "invoke", "dequeue", None),
        (9, "invoke", "dequeue", None),
        (8, "ok", "dequeue", 3),
        (9, "ok", "dequeue", None),
    ]


def test_a_drain_says_the_queue_was_empty() -> None:
    """`drain -> []` (and a drain that returned some values) dropped out of the FIFO check:
    a value enqueued before it and dequeued after it was called valid."""
    h = hist(inv(0, "enqueue", 1), ok(0, "enqueue", 1), inv(1, "drain"), ok(1, "drain", []),
             inv(0, "dequeue"), ok(0, "dequeue", 1))  # fmt: skip
    assert queue.check(h).valid is False
    h = hist(inv(0, "enqueue", 1), ok(0, "enqueue", 1), inv(0, "enqueue", 2),
             ok(0, "enqueue", 2), inv(1, "drain"), ok(1, "drain", [1]), inv(0, "dequeue"),
             ok(0, "dequeue", 2))  # fmt: skip
    assert queue.check(h).valid is False
    # A value enqueued while the drain ran may have come after its last dequeue.
    h = hist(inv(1, "drain"), inv(0, "enqueue", 1), ok(0, "enqueue", 1), ok(1, "drain", []),
             inv(0, "dequeue"), ok(0, "dequeue", 1))  # fmt: skip
    assert queue.check(h).valid is True


def test_a_loss_an_unknown_dequeue_may_explain_is_unknown_wherever_it_was() -> None:
    """An info dequeue may take effect after its info was recorded (a request held up by a
    partition): one recorded before the value was enqueued may still have taken it. (A
    version that counted it as ended at its info line called this a definite loss.)"""
    before = [inv(0, "dequeue"), info(0, "dequeue")]
    lost = [inv(1, "enqueue", 1), ok(1, "enqueue", 1), inv(1, "drain"), ok(1, "drain", [])]
    assert queue.check_total(hist(*before, *lost)).valid == "unknown"
    assert queue.check_total(hist(inv(0, "drain"), info(0, "drain"), *lost)).valid == "unknown"
    # Two values lost, one unknown dequeue: not enough; an unknown drain is.
    two = [inv(1, "enqueue", 1), ok(1, "enqueue", 1), inv(1, "enqueue", 2), ok(1, "enqueue", 2)]
    assert queue.check_total(hist(*two, inv(0, "dequeue"), info(0, "dequeue"))).valid is False
    assert queue.check_total(hist(*two, inv(0, "drain"), info(0, "drain"))).valid == "unknown"

def test_queue_jepsen_model_cases_and_linearizability() -> None:
    assert queue.check(hist(inv(1, "enqueue", 1))).valid is True
    assert (
        queue.check(hist(inv(2, "dequeue"), inv(1, "enqueue", 1), ok(2, "dequeue", 1))).valid
        is True
    )
    r = queue.check(hist(inv(1, "dequeue"), ok(1, "dequeue", 1)))
    assert r.valid is False and r.details["unexpected"] == [1]
    # FIFO order broken: total-queue is happy, the linearizable queue model is not.
    h = hist(
        inv(0, "enqueue", 1),
        ok(0, "enqueue", 1),
        inv(0, "enqueue", 2),
        ok(0, "enqueue", 2),
        inv(1, "dequeue"),
        ok(1, "dequeue", 2),
        inv(1, "drain"),
        ok(1, "drain", [1]),
    )
    assert queue.check_total(h).valid is True
    r = queue.check(h)
    assert r.valid is False and r.details["linearizable"]["valid"] is False
    assert (r.cause or "").startswith("linearizable queue: ")
    assert queue.check(h, linear_max_ops=0).details["linearizable"]["skipped"]


def test_queue_a_drain_of_unknown_outcome_may_have_taken_the_head() -> None:
    """A drain that crashed may have taken 1 before the dequeue of 2: a valid FIFO queue.
    Dropped from the FIFO model's history, it made the dequeue of 2 look like one that
    skipped 1 (invalid). It becomes dequeues of unknown outcome, so the FIFO model finds
    the history linearizable, and total-queue's verdict (unknown: the drain may have taken
    the lost 1) stands."""
    base = [inv(0, "enqueue", 1), ok(0, "enqueue", 1), inv(0, "enqueue", 2), ok(0, "enqueue", 2)]
    for drain in ([inv(1, "drain"), info(1, "drain")], [inv(1, "drain")]):
        r = queue.check(hist(*base, *drain, inv(2, "dequeue"), ok(2, "dequeue", 2)))
        assert r.valid == "unknown", r.cause
        assert r.details["linearizable"]["valid"] is True
    # A failed drain did nothing: the FIFO model still runs, and finds 1 skipped.
    h = hist(*base, inv(1, "drain"), fail(1, "drain"), inv(2, "dequeue"), ok(2, "dequeue", 2))
    r = queue.check(h)
    assert r.valid is False and r.details["linearizable"]["valid"] is False


# ---------------------------------------------------------------- lock


def test_lock_sequential_holds_are_valid() -> None:
    h = hist(
        inv(0, "acquire"),
        ok(0, "acquire"),
        inv(0, "release"),
        inv(1, "acquire"),
        ok(0, "release"),
        ok(1, "acquire"),
        inv(1, "release"),
        ok(1, "release"),
    )
    r = lock.check(h)
    assert r.valid is True and r.details["hold_count"] == 2 and r.details["overlap_count"] == 0
    assert r.details["linearizable"]["valid"] is True


def test_lock_overlapping_holds() -> None:
    h = hist(
        inv(0, "acquire"),
        ok(0, "acquire"),
        inv(1, "acquire"),
        ok(1, "acquire"),
        inv(0, "release"),
        ok(0, "release"),
        inv(1, "release"),
        ok(1, "release"),
    )
    r = lock.check(h, linear_max_ops=0)
    assert r.valid is False and r.details["overlap_count"] == 1
    (pa, ia, ea, *_), (pb, ib, eb, *_) = r.details["overlaps"][0]
    assert (pa, ia, ea, pb, ib, eb) == (0, 1, 4, 1, 3, 6)
    assert lock.check(h).details["linearizable"]["valid"] is False


def test_lock_hold_without_release_lasts_to_the_end() -> None:
    h = hist(
        inv(0, "acquire"),
        ok(0, "acquire"),
        inv(0, "release"),
        info(0, "release"),
        inv(1, "acquire"),
        ok(1, "acquire"),
        inv(2, "acquire"),
        ok(2, "acquire"),
    )
    r = lock.check(h, linear_max_ops=0)
    assert r.valid is False and r.details["overlap_count"] == 1
    assert r.details["holds"][-1][2] is None  # never released


def test_lock_keys_are_independent_and_no_acquire_is_unknown() -> None:
    h = hist(
        (0, "invoke", "acquire", None, "a"),
        (0, "ok", "acquire", None, "a"),
        (1, "invoke", "acquire", None, "b"),
        (1, "ok", "acquire", None, "b"),
    )
    assert lock.check(h, linear_max_ops=0).valid is True
    r = lock.check(hist(inv(0, "acquire"), fail(0, "acquire")), linear_max_ops=0)
    assert r.valid == "unknown" and r.cause == "no acquire succeeded"


def test_lock_keys_may_be_lists_or_maps() -> None:
    """A key that is a list was used as a dict key: TypeError, a crash of clew check (found
    by bench/fuzz.py, seed 29)."""
    h = hist(
        (0, "invoke", "acquire", None, [1, 2]),
        (0, "ok", "acquire", None, [1, 2]),
        (1, "invoke", "acquire", None, {"lock": "b"}),
        (1, "ok", "acquire", None, {"lock": "b"}),
        (2, "invoke", "acquire", None, [1, 2]),
        (2, "ok", "acquire", None, [1, 2]),  # overlaps process 0's hold of [1, 2]
        (0, "invoke", "release", None, [1, 2]),
        (0, "ok", "release", None, [1, 2]),
    )
    r = lock.check(h, linear_max_ops=0)
    assert r.valid is False and r.details["hold_count"] == 3 and r.details["overlap_count"] == 1
    assert sorted(map(repr, (hold[5] for hold in r.details["holds"]))) == [
        "[1, 2]", "[1, 2]", "{'lock': 'b'}"]  # fmt: skip


def test_lock_overlaps_are_found_in_order_of_acquisition() -> None:
    h = hist(
        inv(0, "acquire"),
        ok(0, "acquire"),  # 1: process 0 holds until its release at 4
        inv(2, "acquire"),
        ok(2, "acquire"),  # 3: process 2 holds until 10
        inv(0, "release"),
        ok(0, "release"),
        inv(1, "acquire"),
        ok(1, "acquire"),  # 7: process 1 holds until 8, inside process 2's hold
        inv(1, "release"),
        ok(1, "release"),
        inv(2, "release"),
        ok(2, "release"),
    )
    r = lock.check(h, linear_max_ops=0)
    assert r.valid is False and r.details["overlap_count"] == 2
    assert [[a[1], b[1]] for a, b in r.details["overlaps"]] == [[1, 3], [3, 7]]
    assert r.details["holds"] == [
        [0, 1, 4, 1 * MS, 4 * MS, None],
        [2, 3, 10, 3 * MS, 10 * MS, None],
        [1, 7, 8, 7 * MS, 8 * MS, None],
    ]
    assert r.cause == (
        "2 overlapping hold(s): e.g. process 0 (acquired at op 1) and process 2 (acquired "
        "at op 3) held the lock at once"
    )
    r = lock.check(h)
    assert (r.cause or "").endswith(f"linearizable mutex: {r.details['linearizable']['cause']}")


def test_lock_holds_never_released_end_with_the_history(monkeypatch: pytest.MonkeyPatch) -> None:
    h = hist(
        inv(0, "acquire"),
        ok(0, "acquire"),
        inv(1, "acquire"),
        ok(1, "acquire"),
        inv(2, "acquire"),
        ok(2, "acquire"),
    )
    r = lock.check(h, linear_max_ops=0)
    assert r.details["holds"] == [
        [0, 1, None, 1 * MS, 5 * MS, None],
        [1, 3, None, 3 * MS, 5 * MS, None],
        [2, 5, None, 5 * MS, 5 * MS, None],
    ]
    # Each later hold overlaps the first (which ends no earlier than they do).
    assert [[a[1], b[1]] for a, b in r.details["overlaps"]] == [[1, 3], [1, 5]]
    monkeypatch.setattr(lock, "_MAX_OVERLAPS_LISTED", 1)
    r = lock.check(h, linear_max_ops=0)
    assert r.details["overlap_count"] == 2 and len(r.details["overlaps"]) == 1


def test_lock_runs_the_mutex_model_up_to_linear_max_ops() -> None:
    h = hist(
        inv(0, "acquire"),
        ok(0, "acquire"),
        inv(0, "release"),
        ok(0, "release"),
        inv(1, "acquire"),
        ok(1, "acquire"),
        inv(1, "release"),
        ok(1, "release"),
    )
    r = lock.check(h, linear_max_ops=8)
    assert r.valid is True and r.cause is None and r.details["linearizable"]["valid"] is True
    skipped = lock.check(h, linear_max_ops=7).details["linearizable"]
    assert skipped == {"skipped": "8 client ops > linear_max_ops=7"}
    one = lock.check(hist(inv(0, "acquire")), linear_max_ops=1)
    assert one.details["linearizable"]["valid"] is True
    empty = lock.check(History.from_ops([]), linear_max_ops=0).details["linearizable"]
    assert empty == {"skipped": "0 client ops > linear_max_ops=0"}


def test_lock_a_second_acquire_does_not_restart_or_drop_a_hold() -> None:
    """Holds were keyed by process alone: a process holding "a" that acquired "b" lost
    its hold of "a", so another process's hold of "a" overlapping it went unseen; and a
    second acquire of a held lock restarted the hold."""
    h = hist(
        (0, "invoke", "acquire", None, "a"),
        (0, "ok", "acquire", None, "a"),  # 1: process 0 holds a until the end
        (0, "invoke", "acquire", None, "b"),
        (0, "ok", "acquire", None, "b"),  # 3: and b until its release at 4
        (0, "invoke", "release", None, "b"),
        (0, "ok", "release", None, "b"),
        (1, "invoke", "acquire", None, "a"),
        (1, "ok", "acquire", None, "a"),  # 7: process 1 holds a too
    )
    assert lock.holds(h) == [(1, 8, 0, "a"), (3, 4, 0, "b"), (7, 8, 1, "a")]
    assert lock.check(h, linear_max_ops=0).valid is False
    again = hist(inv(0, "acquire"), ok(0, "acquire"), inv(0, "acquire"), ok(0, "acquire"),
                 inv(0, "release"), ok(0, "release"))  # fmt: skip
    assert lock.holds(again) == [(1, 4, 0, None)]


def test_queue_a_drain_of_unknown_outcome_does_not_hide_values_dequeued_out_of_order() -> None:
    """Skipping the FIFO model for a history with a crashed drain (as clew did) called
    this valid: 2 was dequeued before 1, whatever the drain took afterwards."""
    h = [
        inv(0, "enqueue", 1), ok(0, "enqueue", 1), inv(0, "enqueue", 2), ok(0, "enqueue", 2),
        inv(1, "dequeue"), ok(1, "dequeue", 2), inv(1, "dequeue"), ok(1, "dequeue", 1),
    ]  # fmt: skip
    for drain in ([inv(2, "drain"), info(2, "drain")], [inv(2, "drain")]):
        r = queue.check(hist(*h, *drain))
        assert r.valid is False, r.cause
        assert r.details["linearizable"]["valid"] is False


def test_queue_expand_drains_gives_a_crashed_drain_one_unknown_dequeue_per_value_unseen() -> None:
    h = hist(
        inv(0, "enqueue", 1), ok(0, "enqueue", 1), inv(0, "enqueue", 2), info(0, "enqueue"),
        inv(3, "enqueue", 3), ok(3, "enqueue", 3), inv(1, "dequeue"), ok(1, "dequeue", 1),
        inv(2, "drain"), info(2, "drain"), inv(4, "drain"), fail(4, "drain"),
    )  # fmt: skip
    out = queue.expand_drains(h)
    dequeues = [(op.type, op.process) for op in out if op.f == "dequeue" and op.process > 4]
    # three enqueues tried, one dequeued: the drain may have taken two; the failed one none
    assert dequeues == [("invoke", 5), ("invoke", 6), ("info", 5), ("info", 6)]
