"""Knossos's models in clew: an initial value, the multi-register, and refusing to guess."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import edn_format
import pytest

from checkers.linear import check, resolve_model
from checkers.linear.models import get_model, guess_model, with_initial_value
from checkers.linear.reference import check_reference
from harness.errors import ConfigError
from harness.formats.edn import normalise
from harness.history import History

KNOSSOS = Path(__file__).parents[1] / "data" / "knossos"


def knossos(name: str) -> History:
    """A Knossos data file read by edn_format directly (independent of clew's readers)."""
    ops = normalise(edn_format.loads((KNOSSOS / name).read_text()))
    keep = ("type", "process", "f", "value")
    return History.from_ops([{k: v for k, v in op.items() if k in keep} for op in ops])


def hist(*rows: tuple[Any, ...]) -> History:
    return History.from_ops([dict(process=p, type=t, f=f, value=v) for p, t, f, v in rows])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cas-register/good/cas-register-bug.edn", True),
        ("cas-register/good/mongodb-v0-ack-rollback-9.edn", True),
        ("cas-register/bad/bad-analysis.edn", False),
        ("cas-register/bad/immediate-failure.edn", False),
        ("cas-register/bad/rethink-fail-minimal.edn", False),
        ("cas-register/bad/cas-failure.edn", False),
    ],
)
def test_knossos_cas_register_examples_with_initial_value_0(name: str, expected: bool) -> None:
    model = with_initial_value(get_model("cas-register"), 0)
    h = knossos(name)
    assert check(h, model).valid is expected
    if len(h) < 100:
        assert check_reference(h, model) is expected


def test_initial_value_decides_a_first_read() -> None:
    h = hist((1, "invoke", "read", None), (1, "ok", "read", 0))
    assert check(h, "register").valid is False  # starts nil, so reading 0 is impossible
    assert check(h, with_initial_value(get_model("register"), 0)).valid is True
    assert check(h, with_initial_value(get_model("register"), 5)).valid is False
    cas = hist((1, "invoke", "cas", [0, 1]), (1, "ok", "cas", [0, 1]))
    assert check(cas, "cas-register").valid is False
    assert check(cas, resolve_model(cas, None, initial_value=0)).valid is True


def test_initial_value_is_refused_where_it_means_nothing() -> None:
    with pytest.raises(ConfigError, match="no initial value"):
        with_initial_value(get_model("mutex"), 1)
    with pytest.raises(ConfigError, match="single value"):
        with_initial_value(get_model("register"), [1, 2])
    with pytest.raises(ConfigError, match="map of keys"):
        with_initial_value(get_model("multi-register"), 0)


def test_knossos_multi_register_example_is_valid_from_x0_y0() -> None:
    h = knossos("multi-register/good/multi-register.edn")
    model = with_initial_value(get_model("multi-register"), {"x": 0, "y": 0})
    assert check(h, model).valid is True
    assert check_reference(h, model) is True
    # Its first reads see x=0 and y=0, which a multi-register starting empty cannot give.
    assert check(h, "multi-register").valid is False


def test_multi_register_txns_are_atomic() -> None:
    w = [["write", "x", 1], ["write", "y", 1]]
    torn = hist(
        (1, "invoke", "txn", w), (2, "invoke", "txn", [["read", "x", None], ["read", "y", None]]),
        (2, "ok", "txn", [["read", "x", 1], ["read", "y", None]]), (1, "ok", "txn", w),
        (3, "invoke", "txn", [["read", "x", None], ["read", "y", None]]),
        (3, "ok", "txn", [["read", "x", 1], ["read", "y", 0]]),
    )  # fmt: skip
    model = with_initial_value(get_model("multi-register"), {"x": 0, "y": 0})
    assert check(torn, model).valid is False  # x=1 with y=0 is never a state
    assert check_reference(torn, model) is False
    whole = hist(
        (1, "invoke", "txn", w), (2, "invoke", "txn", [["read", "x", None], ["read", "y", None]]),
        (2, "ok", "txn", [["read", "x", 1], ["read", "y", 1]]), (1, "ok", "txn", w),
    )  # fmt: skip
    assert check(whole, model).valid is True


def test_multi_register_read_after_own_write_sees_it() -> None:
    txn = [["write", "x", 2], ["read", "x", 2]]
    assert check(hist((1, "invoke", "txn", txn), (1, "ok", "txn", txn)), "multi-register").valid
    bad = [["write", "x", 2], ["read", "x", 3]]
    h = hist((1, "invoke", "txn", bad), (1, "ok", "txn", bad))
    assert check(h, "multi-register").valid is False
    assert check_reference(h, get_model("multi-register")) is False


def test_multi_register_unknown_outcome_may_or_may_not_apply() -> None:
    w = [["write", "x", 1]]
    r1 = [["read", "x", 1]]
    r0 = [["read", "x", 0]]
    model = with_initial_value(get_model("multi-register"), {"x": 0})
    h = hist(
        (1, "invoke", "txn", w), (1, "info", "txn", w),
        (2, "invoke", "txn", [["read", "x", None]]), (2, "ok", "txn", r0),
        (2, "invoke", "txn", [["read", "x", None]]), (2, "ok", "txn", r1),
    )  # fmt: skip
    assert check(h, model).valid is True
    back = hist(
        (1, "invoke", "txn", w), (1, "info", "txn", w),
        (2, "invoke", "txn", [["read", "x", None]]), (2, "ok", "txn", r1),
        (2, "invoke", "txn", [["read", "x", None]]), (2, "ok", "txn", r0),
    )  # fmt: skip
    assert check(back, model).valid is False


def test_multi_register_bad_txn_names_the_line() -> None:
    h = hist((1, "invoke", "txn", [["cas", "x", 1]]), (1, "ok", "txn", [["cas", "x", 1]]))
    with pytest.raises(ConfigError, match=r"line 1\).*multi-register txn"):
        check(h, "multi-register")


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        # a bank history: reads of maps and transfers
        ([(0, "invoke", "read", None), (0, "ok", "read", {"a": 10, "b": 0})], "reads only|changes"),
        (
            [(0, "invoke", "write", {"a": 1}), (0, "ok", "write", {"a": 1})],
            "not a single value",
        ),
        ([(0, "invoke", "transfer", {"from": 0}), (0, "ok", "transfer", {"from": 0})], "no model"),
        # a counter history is not a set history
        (
            [
                (0, "invoke", "add", 1),
                (0, "ok", "add", 1),
                (1, "invoke", "read", None),
                (1, "ok", "read", 1),
            ],
            "not a collection",
        ),
        # nothing that could change the outcome
        ([(0, "invoke", "read", None), (0, "ok", "read", 3)], "changes any state"),
        ([(0, "invoke", "txn", [["r", 1, None]]), (0, "ok", "txn", [["r", 1, [1]]])], "only read"),
        ([("nemesis", "info", "start", None)], "no client operations"),
    ],
)
def test_refuses_to_guess(rows: list[tuple[Any, ...]], why: str) -> None:
    with pytest.raises(ConfigError, match=why) as e:
        resolve_model(hist(*rows), None, choices="register, bank, counter")
    assert "--model" in str(e.value) and "bank, counter" in str(e.value)


@pytest.mark.parametrize(
    ("rows", "model"),
    [
        ([(0, "invoke", "write", 1), (0, "ok", "write", 1)], "register"),
        ([(0, "invoke", "cas", [1, 2]), (0, "fail", "cas", [1, 2])], "cas-register"),
        (
            [
                (0, "invoke", "add", 1),
                (0, "ok", "add", 1),
                (1, "invoke", "read", None),
                (1, "ok", "read", [1]),
            ],
            "set",
        ),
        (
            [(0, "invoke", "txn", [["append", 1, 2]]), (0, "ok", "txn", [["append", 1, 2]])],
            "list-append",
        ),
        ([(0, "invoke", "txn", [["w", 1, 2]]), (0, "ok", "txn", [["w", 1, 2]])], "rw-register"),
        (
            [(0, "invoke", "txn", [["write", "x", 2]]), (0, "ok", "txn", [["write", "x", 2]])],
            "multi-register",
        ),
    ],
)
def test_guesses_when_only_one_model_fits(rows: list[tuple[Any, ...]], model: str) -> None:
    assert guess_model(hist(*rows)) == model
