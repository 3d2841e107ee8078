"""ddmin and the shrink loop (harness/shrink.py) with scripted oracles (the real shrink of
a bugkv run is tests/integration/test_shrink_bugkv.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.shrink import ddmin, fault_units, reproduction, shrink_run


def test_ddmin_finds_the_needed_elements_in_order():
    calls: list[list[int]] = []

    def fails(xs: list[int]) -> bool:
        calls.append(xs)
        return {3, 7, 9} <= set(xs)

    assert ddmin(list(range(12)), fails) == [3, 7, 9]
    assert len(calls) < 60


def test_ddmin_result_is_one_minimal_for_an_order_dependent_failure():
    def fails(xs: list[str]) -> bool:  # needs a then b later
        return "a" in xs and "b" in xs and xs.index("a") < xs.index("b")

    out = ddmin(list("xaybzw"), fails)
    assert out == ["a", "b"]
    for i in range(len(out)):
        assert not fails(out[:i] + out[i + 1 :])


def test_reproduction_stops_early_both_ways():
    seq = iter([True, True, True, True, True])
    assert reproduction(lambda: next(seq), 5, 0.8) == (True, 4, 4)
    seq2 = iter([False, False, True])
    assert reproduction(lambda: next(seq2), 5, 0.8) == (False, 0, 2)


def _invalid_run(tmp_path: Path, n_ops: int) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    recs = []
    for i in range(n_ops):
        kind = ["partition", "kill", "pause", "clock"][i // 2 % 4]
        f = f"{'start' if i % 2 == 0 else 'stop'}-{kind}"
        recs.append({"seq": i + 1, "event": "intent", "kind": kind, "f": f, "at": float(i),
                     "value": None})  # fmt: skip
        recs.append({"seq": i + 1, "event": "applied" if i % 2 == 0 else "healed",
                     "kind": kind, "f": f, "value": {"n": i}})  # fmt: skip
    (run / "faults.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return run


def test_shrink_of_a_ten_op_schedule_to_its_flaky_three_op_core(tmp_path: Path):
    run = _invalid_run(tmp_path, 10)
    rng = random.Random(5)

    def replay(steps: list[dict[str, Any]]) -> bool:
        fs = [s["f"] for s in steps]
        core = "start-partition" in fs and "start-kill" in fs and "stop-kill" in fs
        return core and rng.random() < 0.95  # a real cluster reproduces most of the time

    result = shrink_run(run, replay, reruns=5, fraction=0.8, max_runs=200)
    assert [s["f"] for s in result.minimal] == ["start-partition", "start-kill", "stop-kill"]
    assert result.minimal[0]["value"] == {"n": 0}  # the applied value, not the intent's
    assert result.reproduced >= 4 and result.stopped == "1-minimal"
    saved = json.loads((run / "shrink.json").read_text())
    assert len(saved["original"]) == 10 and len(saved["minimal"]) == 3


def test_shrink_says_when_the_original_does_not_reproduce_or_the_budget_ends(tmp_path: Path):
    run = _invalid_run(tmp_path, 6)
    r = shrink_run(run, lambda steps: False, reruns=3, fraction=1.0)
    assert r.stopped == "the original schedule does not reproduce the anomaly"
    assert r.minimal == r.original and r.reproduced == 0
    (run / "shrink.json").unlink()
    r2 = shrink_run(run, lambda steps: len(steps) >= 2, reruns=2, fraction=1.0, max_runs=5)
    assert r2.stopped.startswith("out of runs (--max-runs 5)") and len(r2.minimal) < 6
    with pytest.raises(ConfigError):
        shrink_run(run, lambda steps: True, fraction=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no applied fault op"):
        shrink_run(empty, lambda steps: True)


def test_fault_units_pair_each_start_with_the_stop_that_ends_it():
    fs = ["start-pause", "start-partition", "stop-pause", "start-partition", "start-kill",
          "stop-partition", "stop-clock", "start-clock"]  # fmt: skip
    assert fault_units([{"f": f} for f in fs]) == [[0, 2], [1], [3, 5], [4], [6], [7]]


def test_the_fault_pass_drops_whole_faults_and_the_op_pass_the_stops_not_needed(tmp_path: Path):
    """A lease-wall-clock-like core: two starts, their stops not needed; three harmless
    faults around them. The result keeps the two starts; fewer runs than ops-only ddmin."""
    steps = [("start-pause", 0.5), ("stop-pause", 1.0), ("start-partition", 1.5),
             ("start-clock", 2.0), ("start-packet", 2.5), ("stop-packet", 3.0),
             ("stop-clock", 4.0), ("stop-partition", 4.5), ("start-pause", 5.0),
             ("stop-pause", 5.5)]  # fmt: skip
    run = tmp_path / "run"
    run.mkdir()
    ledger = []
    for seq, (f, at) in enumerate(steps, 1):
        ledger.append({"seq": seq, "f": f, "kind": f.split("-")[1], "event": "intent", "at": at})
        ledger.append({"seq": seq, "f": f, "kind": f.split("-")[1],
                       "event": "applied" if f.startswith("start") else "healed"})  # fmt: skip
    (run / "faults.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ledger))

    def replay(sub: list[dict[str, Any]]) -> bool:
        fs = [s["f"] for s in sub]
        return "start-partition" in fs and "start-clock" in fs

    result = shrink_run(run, replay, reruns=5, fraction=0.8)
    assert [s["f"] for s in result.minimal] == ["start-partition", "start-clock"]
    assert result.reproduced == 5 and result.stopped == "1-minimal"
    assert result.runs_made <= 45, result.runs_made


def test_ddmin_asks_to_confirm_the_whole_only_when_no_part_fails():
    asked: list[int] = []

    def confirm(answer: bool) -> bool:
        asked.append(1)
        return answer

    assert ddmin(list(range(8)), lambda xs: 2 in xs, lambda: confirm(True)) == [2]
    assert asked == []  # a half failed: the whole was never in question
    assert ddmin(list(range(8)), lambda xs: {1, 6} <= set(xs), lambda: confirm(True)) == [1, 6]
    assert asked == [1]  # neither half fails alone: the search rests on the whole, asked once
    tested: list[list[int]] = []

    def never(xs: list[int]) -> bool:
        tested.append(xs)
        return False

    assert ddmin(list(range(8)), never, lambda: confirm(False)) == list(range(8))
    assert {tuple(xs) for xs in tested} == {(0, 1, 2, 3), (4, 5, 6, 7)} and asked == [1, 1]


def test_the_original_schedule_is_rerun_only_when_no_half_reproduces(tmp_path: Path):
    run = _invalid_run(tmp_path, 8)

    def replay(steps: list[dict[str, Any]]) -> bool:
        return "start-partition" in [s["f"] for s in steps]

    result = shrink_run(run, replay, reruns=5, fraction=0.8)
    assert [s["f"] for s in result.minimal] == ["start-partition"]
    assert all(len(t["ops"]) < 8 for t in result.tests), result.tests
    (run / "shrink.json").unlink()
    made: list[int] = []

    def nothing(steps: list[dict[str, Any]]) -> bool:
        made.append(len(steps))
        return False

    r = shrink_run(run, nothing, reruns=5, fraction=0.8)
    assert r.stopped == "the original schedule does not reproduce the anomaly"
    assert made == [4, 4, 4, 4, 8, 8] and r.runs_made == 6 and r.reproduced == 0


def test_a_schedule_too_small_to_halve_is_judged_by_its_final_reruns(tmp_path: Path):
    run = _invalid_run(tmp_path, 1)
    r = shrink_run(run, lambda steps: False, reruns=3, fraction=0.6)
    assert r.stopped == "the original schedule does not reproduce the anomaly"
    assert r.reproduced == 0 and r.runs_made == 2 + 3  # the empty schedule, then the reruns
    (run / "shrink.json").unlink()
    r2 = shrink_run(run, lambda steps: bool(steps), reruns=3, fraction=0.6)
    assert r2.stopped == "1-minimal" and r2.reproduced == 3 and len(r2.minimal) == 1


@pytest.mark.parametrize(
    ("results", "why"),
    [
        ({"valid": True}, "the run's verdict is valid"),
        ({"valid": "unknown"}, "the run's verdict is unknown"),
        ({}, "the run's verdict is unknown"),
        (None, "missing, so the run has no verdict"),
        ({"valid": False}, None),
    ],
)
def test_clew_shrink_refuses_a_run_that_is_not_invalid_before_any_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, results: dict[str, Any] | None,
    why: str | None,
) -> None:
    from click.testing import CliRunner

    import harness.runner
    import harness.shrink
    from harness.cli import cli
    from harness.shrink import ShrinkResult

    run = _invalid_run(tmp_path, 2)
    (run / "spec.json").write_text(json.dumps({"suite": "etcd", "seed": 1, "nodes": 3}))
    if results is not None:
        (run / "results.json").write_text(json.dumps(results))
    searched = []

    def no_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a rerun was started")

    def search(run_dir: Any, replay: Any, **kwargs: Any) -> ShrinkResult:
        searched.append(run_dir)
        return ShrinkResult(run_dir=str(run_dir), original=[], minimal=[], reproduced=1)

    monkeypatch.setattr(harness.runner, "run_test", no_run)
    monkeypatch.setattr(harness.shrink, "shrink_run", search)
    out = CliRunner().invoke(cli, ["shrink", str(run)], catch_exceptions=False)
    if why is None:  # an invalid run goes on to the search
        assert out.exit_code == 0 and searched == [run], out.output
        return
    assert out.exit_code == 254, out.output
    assert f"{run / 'results.json'}: {why}; clew shrink needs an invalid run" in out.output
    assert searched == []


def test_shrink_of_latest_writes_to_the_run_latest_named_at_the_start(tmp_path: Path):
    """`clew shrink store/x/latest`: each rerun moves `latest` to itself, and shrink.json
    went to the last rerun, not to the run shrunk."""
    run = _invalid_run(tmp_path, 4)
    latest = tmp_path / "latest"
    latest.symlink_to(run)
    made = 0

    def replay(steps: list[dict[str, Any]]) -> bool:
        nonlocal made
        made += 1
        rerun = tmp_path / f"rerun{made}"
        rerun.mkdir()
        latest.unlink()
        latest.symlink_to(rerun)  # as the store does after every run
        return len(steps) >= 1

    result = shrink_run(latest, replay, reruns=2, fraction=1.0)
    assert result.run_dir == str(run.resolve())
    assert (run / "shrink.json").exists()
    assert not list(tmp_path.glob("rerun*/shrink.json"))


def test_a_ctrl_c_in_a_rerun_stops_clew_shrink_and_writes_no_conclusion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Ctrl-C stopped one rerun, which counted as "not invalid", and the search went
    on: it ended "the original schedule does not reproduce", in shrink.json too."""
    from click.testing import CliRunner

    import harness.runner
    from harness.cli import cli
    from harness.runner import RunOutcome

    run = _invalid_run(tmp_path, 4)
    (run / "spec.json").write_text(json.dumps({"suite": "etcd", "seed": 1, "nodes": 3}))
    (run / "results.json").write_text(json.dumps({"valid": False}))
    made: list[int] = []

    def interrupted(spec: Any, **_kw: Any) -> RunOutcome:
        made.append(1)
        return RunOutcome(run_dir=tmp_path / "rerun", valid="unknown", results={},
                          interrupted="Ctrl-C")  # fmt: skip

    monkeypatch.setattr(harness.runner, "run_test", interrupted)
    out = CliRunner().invoke(cli, ["shrink", str(run), "--store", str(tmp_path / "s")])
    assert out.exit_code == 130 and made == [1], out.output
    assert "interrupted (Ctrl-C) in the rerun" in out.output and "no shrink.json" in out.output
    assert not (run / "shrink.json").exists()
