"""``clew replay`` of a run whose ``faults.jsonl`` is damaged: a planned op it cannot
replay is named by file and line (exit 254, no cluster), and lines skipped as damaged are
counted when nothing is left to replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import InputError
from nemeses.schedule import ledger_schedule

INTENT = {"seq": 1, "kind": "pause", "f": "start-pause", "event": "intent", "at": 5.0,
          "value": {"targets": "one", "nodes": ["n1"]}}  # fmt: skip
APPLIED = {"seq": 1, "kind": "pause", "f": "start-pause", "event": "applied",
           "value": {"targets": "one", "nodes": ["n2"]}}  # fmt: skip


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to bring a cluster up."""
    import harness.runner

    def up(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a cluster was brought up")

    monkeypatch.setattr(harness.runner, "_bring_up", up)


def make_run(tmp_path: Path, lines: list[str]) -> Path:
    run = tmp_path / "store" / "t" / "20250101T000000"
    run.mkdir(parents=True)
    spec = {"suite": "etcd", "workload": "register", "seed": 1, "faults": ["pause"]}
    (run / "spec.json").write_text(json.dumps(spec))
    (run / "faults.jsonl").write_text("".join(line + "\n" for line in lines))
    return run


def replay(run: Path, tmp_path: Path) -> tuple[int, str]:
    args = ["replay", str(run), "--no-progress", "--store", str(tmp_path / "again")]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.output


def test_a_step_at_a_time_that_is_not_seconds_is_named_by_line(tmp_path: Path) -> None:
    run = make_run(tmp_path, [json.dumps(APPLIED), json.dumps({**INTENT, "at": "soon"})])
    code, out = replay(run, tmp_path)
    assert code == 254, out
    assert f"{run / 'faults.jsonl'}:2: `at` must be seconds" in out and "'soon'" in out
    assert "Traceback" not in out
    assert not (tmp_path / "again").exists()


def test_an_unknown_kind_is_named_by_file_and_line(tmp_path: Path) -> None:
    step = {**INTENT, "f": "start-meteor", "kind": "meteor"}
    run = make_run(tmp_path, [json.dumps(step)])
    code, out = replay(run, tmp_path)
    assert code == 254, out
    assert f"{run / 'faults.jsonl'}:1: unknown fault kind 'meteor'" in out


def test_only_damaged_lines_are_counted_with_the_first(tmp_path: Path) -> None:
    run = make_run(tmp_path, ['{"junk": 1}', "", '{"seq": "x", "event": "intent"}', "garbage"])
    code, out = replay(run, tmp_path)
    assert code == 254, out
    assert "records no planned fault to replay" in out
    assert "3 lines were skipped as damaged, the first line 1" in out


def test_good_lines_replay_around_damaged_ones(tmp_path: Path) -> None:
    path = make_run(tmp_path, ['{"junk": 1}', json.dumps(INTENT), json.dumps(APPLIED)])
    read = ledger_schedule(path / "faults.jsonl")
    assert read.steps == [{"at": 5.0, "f": "start-pause", "value": APPLIED["value"]}]
    assert read.damaged == [1]
    assert ledger_schedule(path / "absent.jsonl").steps == []


@pytest.mark.parametrize("at", [-1, float("inf"), True, None])
def test_at_must_be_finite_seconds(tmp_path: Path, at: object) -> None:
    path = make_run(tmp_path, [json.dumps({**INTENT, "at": at})])
    with pytest.raises(InputError, match=r"faults.jsonl:1: `at` must be seconds"):
        ledger_schedule(path / "faults.jsonl")


def test_the_schedulers_summary_record_is_not_damage(tmp_path: Path) -> None:
    summary = {"time": 9, "event": "scheduler", "scheduler": "random", "missed": []}
    run = make_run(tmp_path, [json.dumps(INTENT), json.dumps(APPLIED), json.dumps(summary)])
    read = ledger_schedule(run / "faults.jsonl")
    assert len(read.steps) == 1 and read.damaged == []


def test_a_ledger_past_a_cap_is_refused_by_replay_not_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """replay read every ledger line whole, however long (a planted 99 MB line: 2.67 GB
    before the cluster). A schedule read in part would replay another run, so a line
    longer than any record clew writes, or past the memory cap, is refused, named."""
    import nemeses.ledger

    monkeypatch.setattr(nemeses.ledger, "MAX_LEDGER_LINE_BYTES", 1000)
    long = json.dumps({**APPLIED, "value": [[]] * 2000})
    run = make_run(tmp_path, [json.dumps(INTENT), long, json.dumps(APPLIED)])
    code, out = replay(run, tmp_path)
    assert code == 254, out
    assert f"{run / 'faults.jsonl'}:2: a line longer than" in out and "not read" in out
    assert not (tmp_path / "again").exists()
    # the count of records caps a page, not a replay: a long run's ledger is replayed whole
    path = make_run(tmp_path / "b", [json.dumps(INTENT), json.dumps(APPLIED)] * 2 + [""])
    whole = ledger_schedule(path / "faults.jsonl")
    monkeypatch.setattr(nemeses.ledger, "MAX_LEDGER_RECORDS", 2)
    assert ledger_schedule(path / "faults.jsonl") == whole
    monkeypatch.setattr(nemeses.ledger, "MAX_LEDGER_MEMORY", 1000)  # the memory cap holds
    with pytest.raises(InputError, match=r"faults\.jsonl:\d: decoding the ledger .*not read"):
        ledger_schedule(path / "faults.jsonl")
