"""Inputs the fuzzer (bench/fuzz.py) found crashing the collection checkers: maps as
values, integers beyond 64 bits, nested lists in a set read. Each gets a verdict now, and
the verdict is the right one (maps compare by value)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from checkers.collections import queue, set_full, unique_ids
from harness.cli import cli
from harness.history import History

FUZZ = Path(__file__).resolve().parents[1] / "data" / "fuzz"


def run_check(name: str, model: str) -> tuple[int, dict]:
    result = CliRunner().invoke(
        cli, ["check", "--no-progress", "--json", "-m", model, str(FUZZ / name)],
        catch_exceptions=False,
    )  # fmt: skip
    return result.exit_code, json.loads(result.output.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("name", "model", "exit_code", "cause"),
    [
        ("queue-dict-value.json", "queue", 1, "1 value(s) dequeued that were never enqueued"),
        ("total-queue-dict-value.jsonl", "total-queue", 1, "1 acknowledged enqueue(s) never"),
        ("unique-ids-dict-id.edn", "unique-ids", 0, None),
        ("set-full-int-beyond-64-bits.jsonl", "set-full", 1, "element(s) read that were never"),
        ("set-full-nested-list.jsonl", "set-full", 1, "1 element(s) read that were never added"),
        ("set-full-nested-list.edn", "set-full", 1, "1 element(s) read that were never added"),
    ],
)
def test_fuzz_crash_inputs_get_a_verdict(
    name: str, model: str, exit_code: int, cause: str | None
) -> None:
    code, record = run_check(name, model)
    assert code == exit_code, record
    assert "error" not in record
    if cause is None:
        assert record["cause"] is None
    else:
        assert cause in record["cause"]


def _hist(rows: list[tuple[int, str, str, object]]) -> History:
    return History.from_ops(
        [
            {"process": p, "type": t, "f": f, "value": v, "time": i}
            for i, (p, t, f, v) in enumerate(rows)
        ]
    )


def test_equal_maps_are_the_same_id() -> None:
    h = _hist([
        (0, "invoke", "generate", None), (0, "ok", "generate", {"a": 1, "b": [2]}),
        (1, "invoke", "generate", None), (1, "ok", "generate", {"b": [2], "a": 1}),
    ])  # fmt: skip
    r = unique_ids.check(h)
    assert r.valid is False
    assert r.details["duplicated"] == [[{"a": 1, "b": (2,)}, 2]]


def test_a_map_enqueued_and_dequeued_is_no_anomaly() -> None:
    h = _hist([
        (0, "invoke", "enqueue", {"k": [1, 2]}), (0, "ok", "enqueue", {"k": [1, 2]}),
        (1, "invoke", "dequeue", None), (1, "ok", "dequeue", {"k": [1, 2]}),
    ])  # fmt: skip
    assert queue.check_total(h).valid is True


def test_set_full_big_and_small_integers() -> None:
    big = 2**64
    h = _hist([
        (0, "invoke", "add", big), (0, "ok", "add", big),
        (1, "invoke", "add", 1), (1, "ok", "add", 1),
        (2, "invoke", "read", None), (2, "ok", "read", [1, big]),
        (2, "invoke", "read", None), (2, "ok", "read", [1]),
    ])  # fmt: skip
    r = set_full.check(h)
    assert r.valid is False
    assert r.details["lost"] == [big]
