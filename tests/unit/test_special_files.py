"""A foreign run holding a FIFO (or a socket, or a device) is refused, not read: opening a
FIFO waits for a writer forever, so clew report / analyze hung, and so did the store's
index (harness.store.special_files)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.store import refuse_special_files, special_files

OPS = [
    {"type": "invoke", "f": "write", "value": 1, "process": 0, "time": 1, "index": 0},
    {"type": "ok", "f": "write", "value": 1, "process": 0, "time": 2, "index": 1},
]


def run_dir(root: Path, name: str) -> Path:
    run = root / "etcd-register" / name
    run.mkdir(parents=True)
    (run / "spec.json").write_text(json.dumps({"suite": "etcd", "workload": "register"}))
    (run / "history.jsonl").write_text("".join(json.dumps(o) + "\n" for o in OPS))
    return run


def test_special_files_are_found_a_few_levels_down(tmp_path: Path) -> None:
    run = run_dir(tmp_path, "20260101T000000")
    assert special_files(run) == []
    (run / "nodes" / "n1").mkdir(parents=True)
    os.mkfifo(run / "nodes" / "n1" / "db.log")
    (run / "dangling").symlink_to(tmp_path / "nowhere")  # absent: not special
    assert special_files(run) == [run / "nodes" / "n1" / "db.log"]
    with pytest.raises(InputError, match="not a regular file"):
        refuse_special_files(run)


@pytest.mark.parametrize("fifo", ["history.jsonl", "results.json", "nodes/n1/clock.jsonl"])
@pytest.mark.parametrize("command", ["report", "analyze", "replay", "shrink"])
def test_a_run_with_a_fifo_is_refused_not_hung_on(tmp_path: Path, command: str, fifo: str) -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    run = run_dir(tmp_path, "20260101T000000")
    (run / fifo).parent.mkdir(parents=True, exist_ok=True)
    (run / fifo).unlink(missing_ok=True)
    os.mkfifo(run / fifo)
    result = CliRunner().invoke(cli, [command, str(run)], catch_exceptions=False)
    assert result.exit_code == 254, result.output
    assert "not a regular file (a FIFO, socket or device): " in result.output
    assert fifo in result.output


def test_the_index_leaves_out_a_run_with_a_fifo(tmp_path: Path) -> None:
    from reports.index import list_runs

    run_dir(tmp_path, "20260101T000000")
    bad = run_dir(tmp_path, "20260101T000001")
    os.mkfifo(bad / "results.json")
    assert [r["name"] for r in list_runs(tmp_path)] == ["etcd-register/20260101T000000"]


def test_a_run_padded_past_the_search_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.store

    monkeypatch.setattr(harness.store, "_SPECIAL_LIMIT", 50)
    run = run_dir(tmp_path, "20260101T000000")
    pad = run / "pad"
    pad.mkdir()
    for i in range(60):  # the FIFO lies beyond the entries the search would look at
        (pad / f"{i}.txt").write_text("")
    with pytest.raises(InputError, match="holds more than 50 entries"):
        special_files(run)
