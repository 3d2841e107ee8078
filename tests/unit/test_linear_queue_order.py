"""The FIFO queue model's order pruning (checkers/linear/kernel.py, ``qneed``): a value
whose dequeue was called after another's dequeue returned was enqueued after it."""

from __future__ import annotations

from typing import Any

from checkers.linear import check
from checkers.linear.reference import check_reference
from harness.history import History
from tests.bench_module import load_bench

bench = load_bench("linear_queue.py", "clew_bench_linear_queue")


def _h(*rows: tuple[str, int, str, Any]) -> History:
    return History.from_ops([{"type": t, "process": p, "f": f, "value": v} for t, p, f, v in rows])


def test_concurrent_enqueues_take_the_order_their_dequeues_show() -> None:
    h = _h(
        ("invoke", 0, "enqueue", 1), ("invoke", 1, "enqueue", 2),
        ("ok", 0, "enqueue", 1), ("ok", 1, "enqueue", 2),
        ("invoke", 0, "dequeue", None), ("ok", 0, "dequeue", 2),
        ("invoke", 0, "dequeue", None), ("ok", 0, "dequeue", 1),
    )  # fmt: skip
    assert check(h, "linearizable-queue").valid is True
    assert check_reference(h, "linearizable-queue") is True


def test_enqueues_in_real_time_order_cannot_be_dequeued_the_other_way() -> None:
    h = _h(
        ("invoke", 0, "enqueue", 1), ("ok", 0, "enqueue", 1),
        ("invoke", 1, "enqueue", 2), ("ok", 1, "enqueue", 2),
        ("invoke", 0, "dequeue", None), ("ok", 0, "dequeue", 2),
        ("invoke", 0, "dequeue", None), ("ok", 0, "dequeue", 1),
    )  # fmt: skip
    assert check(h, "linearizable-queue").valid is False
    assert check_reference(h, "linearizable-queue") is False


def test_a_value_dequeued_twice_or_never_enqueued_is_left_to_the_model() -> None:
    """Only values enqueued once and dequeued once order the enqueues; the others are
    judged by the model as before (and here make the history invalid)."""
    twice = _h(
        ("invoke", 0, "enqueue", 1), ("invoke", 1, "enqueue", 2),
        ("ok", 0, "enqueue", 1), ("ok", 1, "enqueue", 2),
        ("invoke", 0, "dequeue", None), ("ok", 0, "dequeue", 2),
        ("invoke", 0, "dequeue", None), ("ok", 0, "dequeue", 2),
    )  # fmt: skip
    assert check(twice, "linearizable-queue").valid is False
    stranger = _h(
        ("invoke", 0, "enqueue", 1), ("ok", 0, "enqueue", 1),
        ("invoke", 0, "dequeue", None), ("ok", 0, "dequeue", 7),
    )  # fmt: skip
    assert check(stranger, "linearizable-queue").valid is False


def test_a_queue_history_with_a_long_backlog_is_decided_in_few_steps() -> None:
    """500 ops of five clients in rounds, a backlog of about 100 values: without the
    pruning the search ran out of its memory budget after 1.3 million steps (unknown)."""
    ops, left = bench.rounds_history(500, 0.4, 1)
    assert left > 50
    r = check(History.from_ops(ops), "linearizable-queue")
    assert r.valid is True
    assert r.details["steps"] < 20_000
