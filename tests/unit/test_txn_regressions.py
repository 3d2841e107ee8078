"""The four anomaly shapes the checker once missed (issue 23), and what came with them:
proof of validity by a replayed serial order, total version orders tried when few,
``initial_state``, and realtime order through barrier vertices."""

from __future__ import annotations

from typing import Any

import pytest

from checkers.txn import check
from harness.history import History

Mop = list[Any]


def serial(*rows: tuple[str, list[Mop]]) -> History:
    """Transactions one after another (each completes before the next is invoked)."""
    ops: list[dict[str, Any]] = []
    for p, (typ, mops) in enumerate(rows):
        inv = [[f, k, None if f == "r" else v] for f, k, v in mops]
        ops.append({"process": p, "type": "invoke", "f": "txn", "value": inv})
        ops.append({"process": p, "type": typ, "f": "txn", "value": mops})
    return History.from_ops(ops)


def concurrent(*rows: tuple[str, list[Mop]]) -> History:
    """Every transaction invoked before any completes."""
    ops: list[dict[str, Any]] = []
    for p, (_, mops) in enumerate(rows):
        inv = [[f, k, None if f == "r" else v] for f, k, v in mops]
        ops.append({"process": p, "type": "invoke", "f": "txn", "value": inv})
    for p, (typ, mops) in enumerate(rows):
        ops.append({"process": p, "type": typ, "f": "txn", "value": mops})
    return History.from_ops(ops)


LEVELS = ("serializable", "strict-serializable")


@pytest.mark.parametrize("level", LEVELS)
def test_a_rw_register_future_read(level: str) -> None:
    h = concurrent(("ok", [["r", "x", None]]), ("ok", [["r", "x", 1], ["w", "x", 1]]))
    r = check(h, "rw-register", level)
    assert r.valid is False
    assert r.details["anomalies"] == ["future-read"]
    assert r.details["anomaly_details"]["future-read"][0]["value"] == 1


def test_b_stale_read_after_realtime_ordered_writes() -> None:
    h = serial(("ok", [["w", "x", 1]]), ("ok", [["w", "x", 2]]), ("ok", [["r", "x", 1]]))
    r = check(h, "rw-register", "serializable")
    assert r.valid is True  # R may be serialized between the writes
    r = check(h, "rw-register", "strict-serializable")
    assert r.valid is False
    assert r.details["anomalies"] == ["G0-realtime"]
    assert r.details["not"] == ["strict-serializable"]  # nothing weaker is claimed
    text = r.details["explanations"][0]
    assert "strict serializability puts later in the version order" in text
    assert "completed at index 1" in text


@pytest.mark.parametrize("level", LEVELS)
def test_c_every_order_of_blind_writes_has_a_cycle(level: str) -> None:
    h = concurrent(
        ("ok", [["r", "x", None], ["w", "y", 1]]),
        ("ok", [["w", "x", 2], ["w", "y", 3]]),
        ("ok", [["r", "x", 2], ["r", "y", 1]]),
    )
    r = check(h, "rw-register", level)
    assert r.valid is False
    assert r.details["anomalies"] == ["G-single-item"]
    assert r.details["proof"] == {"required": True, "witness": level, "valid": False,
                                  "version_orders": 2, "every_order_cyclic": True}  # fmt: skip
    recs = r.details["anomaly_details"]["G-single-item"]
    assert {tuple(rec["assumed_version_orders"]["'y'"]) for rec in recs} == {
        (None, 1, 3), (None, 3, 1)}  # fmt: skip
    assert all("precedes" not in s["text"] for rec in recs for s in rec["steps"])
    # too many orders to try: unknown with the documented cause, never valid
    r = check(h, "rw-register", level, max_version_orders=1)
    assert r.valid == "unknown"
    assert "version order ambiguous" in (r.cause or "")


@pytest.mark.parametrize("level", LEVELS)
def test_d_own_appends_read_out_of_order(level: str) -> None:
    h = concurrent(
        ("ok", [["append", "x", 1], ["append", "x", 2]]),
        ("ok", [["append", "x", 3]]),
        ("ok", [["r", "x", [2, 1, 3]]]),
    )
    r = check(h, "list-append", level)
    assert r.valid is False
    assert r.details["anomalies"] == ["out-of-order-appends"]
    assert r.details["anomaly_details"]["out-of-order-appends"][0]["appended"] == [1, 2]
    assert r.details["not"] == ["read-uncommitted"]
    # a later append seen without the earlier one is the same anomaly
    h = concurrent(("ok", [["append", "x", 1], ["append", "x", 2]]), ("ok", [["r", "x", [2]]]))
    assert "out-of-order-appends" in check(h, "list-append", level).details["anomalies"]
    # another transaction's append between them: a write cycle through both (G0)
    h = concurrent(("ok", [["append", "x", 1], ["append", "x", 2]]), ("ok", [["append", "x", 3]]),
                   ("ok", [["r", "x", [1, 3, 2]]]))  # fmt: skip
    assert check(h, "list-append", level).details["anomalies"] == ["G0"]
    # in order and contiguous: fine
    h = concurrent(("ok", [["append", "x", 1], ["append", "x", 2]]), ("ok", [["r", "x", [1, 2]]]))
    assert check(h, "list-append", level).valid is True


@pytest.mark.parametrize("model", ["list-append", "rw-register"])
def test_no_dependencies_valid_with_a_replayed_order(model: str) -> None:
    w = "append" if model == "list-append" else "w"
    h = concurrent(("ok", [[w, "x", 1]]), ("ok", [[w, "y", 1]]), ("info", [[w, "z", 1]]))
    r = check(h, model, "strict-serializable")
    assert r.valid is True, r.cause
    assert r.details["proof"]["valid"] is True
    assert r.details["proof"]["serial_order_of"] == 2  # the unread info write left out


def test_blind_writes_resolved_by_trying_orders() -> None:
    # three blind writes and a read of the middle one's value: only an order with the
    # read's writer last among those before it explains the history
    h = concurrent(("ok", [["w", "x", 1]]), ("ok", [["w", "x", 2]]), ("ok", [["w", "x", 3]]),
                   ("ok", [["r", "x", 2]]))  # fmt: skip
    r = check(h, "rw-register", "serializable")
    assert r.valid is True
    assert r.details["proof"]["valid"] is True


def test_initial_state_replaces_nil() -> None:
    h = serial(("ok", [["r", "x", 0]]), ("ok", [["w", "x", 1]]), ("ok", [["r", "x", 1]]))
    assert check(h, "rw-register").details["anomalies"] == ["garbage-read"]
    r = check(h, "rw-register", initial_state={"x": 0})
    assert r.valid is True
    # reading the initial value after a later write completed: stale under strictness
    h = serial(("ok", [["w", "x", 1]]), ("ok", [["r", "x", 0]]))
    r = check(h, "rw-register", "strict-serializable", initial_state={"x": 0})
    assert r.valid is False and r.details["anomalies"] == ["G-single-item-realtime"]
    # the initial value written again breaks the unique-writes rule: unknown, said why
    h = serial(("ok", [["w", "x", 0]]))
    r = check(h, "rw-register", initial_state={"x": 0})
    assert r.valid == "unknown" and "initial state" in (r.cause or "")


def test_realtime_cycle_through_barriers_names_only_transactions() -> None:
    # M transactions complete, then M more begin: realtime goes through one barrier
    m = 4
    ops: list[dict[str, Any]] = []
    first = [[["append", f"k{i}", 1]] for i in range(m)]
    ops += [{"process": i, "type": "invoke", "f": "txn", "value": v} for i, v in enumerate(first)]
    ops += [{"process": i, "type": "ok", "f": "txn", "value": v} for i, v in enumerate(first)]
    later = [[["r", f"k{i}", None]] for i in range(m)]  # stale: nil after the appends
    ops += [{"process": m + i, "type": "invoke", "f": "txn", "value": v}
            for i, v in enumerate(later)]  # fmt: skip
    ops += [{"process": m + i, "type": "ok", "f": "txn", "value": v}
            for i, v in enumerate(later)]  # fmt: skip
    r = check(History.from_ops(ops), "list-append", "strict-serializable")
    assert r.valid is False
    assert r.details["anomalies"] == ["G-single-item-realtime"]
    assert r.details["stats"]["barriers"] == 1
    rec = r.details["anomaly_details"]["G-single-item-realtime"][0]
    assert len(rec["cycle"]) == 3  # T1 -> T2 -> T1, no barrier vertex
    assert all(0 <= i < len(ops) for i in rec["cycle"])
    kinds = [s["type"] for s in rec["steps"]]
    assert sorted(kinds) == ["realtime", "rw"]
    assert check(History.from_ops(ops), "list-append", "serializable").valid is True
