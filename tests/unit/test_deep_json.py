"""JSON nested too deeply for Python's parser, in the files clew reads back from a store
(a scheduler's memory, a run's JSON files, a campaign's ledgers), is bad input named by
file, or a damaged line, never a RecursionError crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InputError

DEEP = "[" * 100_000 + "]" * 100_000


def test_a_scheduler_memory_nested_too_deeply_is_named(tmp_path: Path) -> None:
    from nemeses.schedulers import memory

    (tmp_path / "m.json").write_text(DEEP)
    with pytest.raises(InputError, match=r"m\.json:1: not JSON clew reads: nested too deeply"):
        memory.load(tmp_path / "m.json")


def test_a_run_file_nested_too_deeply_is_named(tmp_path: Path) -> None:
    from harness.store import RunDir

    (tmp_path / "results.json").write_text(DEEP)
    with pytest.raises(InputError, match=r"results\.json: not JSON clew reads: nested too deep"):
        RunDir(tmp_path).read_json("results.json")


def test_a_campaign_ledger_line_nested_too_deeply_is_a_damaged_line(tmp_path: Path) -> None:
    from harness.campaign import _schedule_of

    (tmp_path / "faults.jsonl").write_text(DEEP + "\n")
    assert _schedule_of(tmp_path) == ([], 0)


def test_a_replayed_runs_seed_nested_too_deeply_is_no_seed(tmp_path: Path) -> None:
    from harness.cli_test import _seed_of

    (tmp_path / "spec.json").write_text(DEEP)
    assert _seed_of(tmp_path) is None
