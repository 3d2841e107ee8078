"""The set checker on hand-made histories: lost, unexpected, recovered, never read."""

from __future__ import annotations

from typing import Any

from checkers.set import check
from harness.history import History


def _ops(*rows: tuple[Any, ...]) -> History:
    """Rows of (type, process, f, value)."""
    return History.from_ops([{"type": t, "process": p, "f": f, "value": v} for t, p, f, v in rows])


def test_every_acknowledged_add_read_back_is_valid() -> None:
    h = _ops(
        ("invoke", 0, "add", 0), ("ok", 0, "add", 0),
        ("invoke", 1, "add", 1), ("ok", 1, "add", 1),
        ("invoke", 0, "read", None), ("ok", 0, "read", [0, 1]),
    )  # fmt: skip
    r = check(h)
    assert r.valid is True, r
    assert r.details["lost"] == [] and r.details["ok_count"] == 2


def test_an_acknowledged_add_missing_from_the_final_read_is_lost() -> None:
    h = _ops(
        ("invoke", 0, "add", 0), ("ok", 0, "add", 0),
        ("invoke", 1, "add", 1), ("ok", 1, "add", 1),
        ("invoke", 0, "read", None), ("ok", 0, "read", [1]),
    )  # fmt: skip
    r = check(h)
    assert r.valid is False
    assert r.details["lost"] == [0] and r.details["lost_count"] == 1
    assert "missing" in (r.cause or "")


def test_an_add_still_running_when_the_final_read_began_may_be_absent() -> None:
    h = _ops(
        ("invoke", 1, "add", 1),
        ("invoke", 0, "read", None),
        ("ok", 1, "add", 1),
        ("ok", 0, "read", []),
    )  # fmt: skip
    assert check(h).valid is True


def test_an_element_never_added_is_unexpected() -> None:
    h = _ops(
        ("invoke", 0, "add", 0), ("ok", 0, "add", 0),
        ("invoke", 0, "read", None), ("ok", 0, "read", [0, 7]),
    )  # fmt: skip
    r = check(h)
    assert r.valid is False
    assert r.details["unexpected"] == [7]


def test_info_adds_that_are_present_are_recovered_and_absent_ones_are_fine() -> None:
    h = _ops(
        ("invoke", 0, "add", 0), ("info", 0, "add", 0),
        ("invoke", 1, "add", 1), ("info", 1, "add", 1),
        ("invoke", 2, "add", 2),  # never completed
        ("invoke", 3, "read", None), ("ok", 3, "read", [0, 2]),
    )  # fmt: skip
    r = check(h)
    assert r.valid is True, r
    assert r.details["recovered"] == [0, 2] and r.details["recovered_count"] == 2


def test_a_failed_add_that_is_present_is_invalid() -> None:
    h = _ops(
        ("invoke", 0, "add", 0), ("fail", 0, "add", 0),
        ("invoke", 0, "read", None), ("ok", 0, "read", [0]),
    )  # fmt: skip
    r = check(h)
    assert r.valid is False and r.details["failed_but_present"] == [0]


def test_without_an_ok_read_the_verdict_is_unknown() -> None:
    h = _ops(
        ("invoke", 0, "add", 0), ("ok", 0, "add", 0),
        ("invoke", 1, "read", None), ("fail", 1, "read", None),
    )  # fmt: skip
    r = check(h)
    assert r.valid == "unknown"
    assert "no final read" in (r.cause or "")
    assert r.exit_code == 2


def test_the_last_ok_read_is_the_final_read() -> None:
    h = _ops(
        ("invoke", 0, "read", None), ("ok", 0, "read", []),
        ("invoke", 0, "add", 0), ("ok", 0, "add", 0),
        ("invoke", 1, "read", None), ("ok", 1, "read", [0]),
    )  # fmt: skip
    r = check(h)
    assert r.valid is True
    assert r.details["final_read_index"] == 5


def test_nemesis_ops_are_ignored() -> None:
    h = _ops(
        ("info", "nemesis", "add", 9),
        ("invoke", 0, "read", None), ("ok", 0, "read", []),
    )  # fmt: skip
    assert check(h).valid is True


def test_an_add_completed_without_a_value_is_the_element_its_invocation_added() -> None:
    """Completions carrying no value (null, as some clients write them) read as adds of
    None: a valid history was "lost: [None]", and a lost element went unseen."""
    h = _ops(
        ("invoke", 0, "add", 0), ("ok", 0, "add", None),
        ("invoke", 1, "add", 1), ("info", 1, "add", None),
        ("invoke", 2, "add", 2), ("fail", 2, "add", None),
        ("invoke", 0, "read", None), ("ok", 0, "read", [0, 1]),
    )  # fmt: skip
    r = check(h)
    assert r.valid is True, r.cause
    assert r.details["recovered"] == [1]
    h = _ops(
        ("invoke", 0, "add", 0), ("ok", 0, "add", None),
        ("invoke", 0, "read", None), ("ok", 0, "read", []),
    )  # fmt: skip
    r = check(h)
    assert r.valid is False and r.details["lost"] == [0]
