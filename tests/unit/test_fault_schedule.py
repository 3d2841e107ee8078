"""Fault schedules: seeded planning, the ledger round trip that replay relies on, targets."""

from __future__ import annotations

import json
import random

import pytest

from harness.errors import ConfigError, NemesisError
from harness.generator.testing import simulate
from harness.record import fault_windows
from nemeses.ledger import FaultLedger, read_ledger, targets_of
from nemeses.schedule import (
    plan_schedule,
    schedule_from_ledger,
    schedule_generator,
    validate_schedule,
)
from nemeses.targets import resolve_targets, symbolic, target_nodes

NODES = ["n1", "n2", "n3", "n4", "n5"]
KINDS = ["partition", "pause", "kill"]


def plan(seed: int, **kw: object) -> list[dict[str, object]]:
    args = {"seed": seed, "time_limit": 120.0, "interval": 5.0, **kw}
    return plan_schedule(KINDS, NODES, **args)  # type: ignore[arg-type]


def test_same_seed_same_schedule_and_different_seed_differs() -> None:
    a, b = plan(7), plan(7)
    assert a == b
    assert json.loads(json.dumps(a)) == a  # plain JSON data
    assert plan(8) != a


def test_schedule_alternates_start_and_stop_every_interval() -> None:
    steps = plan(3)
    assert len(steps) == 2 * 12  # 120 s at 5 s: start at 5, 15, ..., 115
    for i, (start, stop) in enumerate(zip(steps[::2], steps[1::2], strict=True)):
        assert start["at"] == 5.0 + 10 * i and stop["at"] == start["at"] + 5.0
        kind = str(start["f"]).removeprefix("start-")
        assert stop["f"] == f"stop-{kind}" and kind in KINDS
    assert {str(s["f"]) for s in steps} >= {"start-partition", "start-pause", "start-kill"}


def test_planned_values_are_concrete_except_primaries() -> None:
    for step in plan(11) + plan(12):
        f, value = step["f"], step["value"]
        if f == "start-partition":
            assert value == "primaries" or (
                isinstance(value, dict) and set(value) <= set(NODES) and any(value.values())
            )
        elif f in ("start-pause", "start-kill"):
            assert isinstance(value, dict)
            if value["targets"] == "primaries":
                assert "nodes" not in value and symbolic(value)
            else:
                assert value["nodes"] and set(value["nodes"]) <= set(NODES)


def test_without_roles_no_primaries_are_planned() -> None:
    for seed in range(20):
        for step in plan(seed, roles=False):
            assert "primaries" not in json.dumps(step["value"])


def test_adding_a_kind_does_not_change_other_randomness() -> None:
    # The schedule has its own random stream: the workload's rng is untouched.
    rng = random.Random(5)
    before = rng.random()
    plan(5)
    assert random.Random(5).random() == before


def test_validate_schedule_names_the_step() -> None:
    assert validate_schedule(plan(1), "x") == [{**s, "at": float(s["at"])} for s in plan(1)]
    with pytest.raises(ConfigError, match="step 2"):
        validate_schedule([{"at": 5, "f": "start-pause"}, {"at": 1, "f": "stop-pause"}], "x")
    with pytest.raises(ConfigError, match=r"step 1.*start-/stop-"):
        validate_schedule([{"at": 5, "f": "start-flood"}], "x")


def test_generator_issues_each_op_at_its_offset() -> None:
    steps = plan(2, time_limit=40.0)
    history = simulate(schedule_generator(steps), concurrency=1, nemesis=True, latency=0.5)
    invokes = [o for o in history if o["type"] == "invoke"]
    assert [o["f"] for o in invokes] == [s["f"] for s in steps]
    for o, s in zip(invokes, steps, strict=True):
        assert o["time"] == pytest.approx(s["at"] * 1e9)  # no drift from op latency
        assert o["at"] == s["at"] and o["process"] == "nemesis"


def test_replay_schedule_comes_from_what_the_ledger_says_was_applied(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ledger = FaultLedger(tmp_path / "faults.jsonl")
    steps = [
        {"at": 5.0, "f": "start-pause", "value": {"targets": "primaries"}},
        {"at": 10.0, "f": "stop-pause", "value": None},
        {"at": 15.0, "f": "start-partition", "value": {"n1": ["n2"], "n2": ["n1"]}},
        {"at": 20.0, "f": "stop-partition", "value": None},
    ]
    applied = [{"targets": "primaries", "nodes": ["n3"], "pids": {"n3": [21]}}, "resumed",
               {"n1": ["n2"], "n2": ["n1"]}, "network-healed"]  # fmt: skip
    for step, value in zip(steps, applied, strict=True):
        seq = ledger.next_seq()
        base = {"seq": seq, "kind": step["f"].split("-", 1)[1], "f": step["f"]}  # type: ignore[union-attr]
        ledger.write({**base, "event": "intent", "value": step["value"], "at": step["at"]})
        starting = str(step["f"]).startswith("start-")
        ledger.write({**base, "event": "applied" if starting else "healed",
                      "phase": "start" if starting else "stop", "value": value,
                      "targets": targets_of(value) if starting else []})  # fmt: skip
    ledger.write({"seq": ledger.next_seq(), "kind": "pause", "f": "stop-pause",
                  "event": "intent", "reason": "final"})  # fmt: skip
    ledger.close()
    with open(tmp_path / "faults.jsonl", "a") as f:
        f.write('{"seq": 99, "event": "inte')  # a torn last line (crash mid-write)
    records = read_ledger(tmp_path / "faults.jsonl")
    replay = schedule_from_ledger(records)
    assert replay == [
        {"at": 5.0, "f": "start-pause", "value": applied[0]},
        {"at": 10.0, "f": "stop-pause", "value": None},
        {"at": 15.0, "f": "start-partition", "value": applied[2]},
        {"at": 20.0, "f": "stop-partition", "value": None},
    ]
    windows = [w.to_json() for w in fault_windows(records) if not w.instant]
    assert [(w["kind"], w["targets"]) for w in windows] == [
        ("pause", ["n3"]),
        ("partition", ["n1", "n2"]),
    ]
    assert all(w["stop"] is not None and w["stop"] >= w["start"] for w in windows)


def test_a_malformed_ledger_line_is_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "faults.jsonl"
    p.write_text('{"seq": 1}\nnot json\n{"seq": 2}\n')
    with pytest.raises(Exception, match=r"faults.jsonl:2"):
        read_ledger(p)


def test_targets_resolve_by_size() -> None:
    rng = random.Random(1)
    assert len(resolve_targets("one", NODES, rng)) == 1
    assert len(resolve_targets("minority", NODES, rng)) == 2
    assert len(resolve_targets("majority", NODES, rng)) == 3
    assert resolve_targets("all", NODES, rng) == NODES
    with pytest.raises(NemesisError, match="during the run"):
        resolve_targets("primaries", NODES, rng)
    with pytest.raises(NemesisError, match="unknown fault target"):
        resolve_targets("most", NODES, rng)
    assert target_nodes({"nodes": ["n2", "n1"]}, NODES) == ["n1", "n2"]
    with pytest.raises(NemesisError, match="n9"):
        target_nodes(["n9"], NODES)
