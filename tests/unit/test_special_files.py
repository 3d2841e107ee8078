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
    assert "not a regular file of its own (a FIFO, socket or device, or a link out" in result.output
    assert fifo in result.output


@pytest.mark.parametrize("command", ["report", "analyze", "replay", "shrink"])
def test_a_jepsen_store_whose_history_is_a_fifo_is_named_by_every_command(
    tmp_path: Path, command: str
) -> None:
    """`clew report` said "not a run directory: it holds none of history.jsonl, …" where
    the others named the FIFO."""
    from click.testing import CliRunner

    from harness.cli import cli

    store = tmp_path / "jepsen" / "20250101T000000.000Z"
    store.mkdir(parents=True)
    os.mkfifo(store / "history.edn")
    result = CliRunner().invoke(cli, [command, str(store)], catch_exceptions=False)
    assert result.exit_code == 254, result.output
    assert "not a regular file of its own" in result.output and "history.edn" in result.output


@pytest.mark.parametrize("command", ["report", "analyze", "replay", "shrink"])
def test_a_run_that_is_a_link_to_a_device_is_not_a_directory_to_every_command(
    tmp_path: Path, command: str
) -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    (tmp_path / "run").symlink_to("/dev/null")
    result = CliRunner().invoke(cli, [command, str(tmp_path / "run")], catch_exceptions=False)
    assert result.exit_code == 254, result.output
    assert "not a run directory: not a directory at all" in result.output


@pytest.mark.parametrize("name", ["history.jsonl", "results.json", "spec.json"])
@pytest.mark.parametrize("command", ["report", "analyze", "replay", "shrink"])
def test_a_run_file_linked_out_of_the_run_is_refused(
    tmp_path: Path, command: str, name: str
) -> None:
    """``results.json -> /proc/kmsg`` hung every reader (a kernel file that blocks on
    reading); a link out of the run is refused, whatever it leads to."""
    from click.testing import CliRunner

    from harness.cli import cli

    run = run_dir(tmp_path, "20260101T000000")
    outside = tmp_path / "elsewhere.txt"
    outside.write_text((run / name).read_text() if (run / name).exists() else "{}")
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(outside)
    result = CliRunner().invoke(cli, [command, str(run)], catch_exceptions=False)
    assert result.exit_code == 254, result.output
    assert f"{name} -> {outside}" in result.output


def test_links_within_the_run_are_read(tmp_path: Path) -> None:
    run = run_dir(tmp_path, "20260101T000000")
    (run / "copy.jsonl").symlink_to("history.jsonl")
    (run / "loop").symlink_to("loop")
    assert special_files(run) == []
    refuse_special_files(run / ".." / run.name)  # reached by another path: still its own


def test_the_index_leaves_out_a_run_with_a_fifo(tmp_path: Path) -> None:
    from reports.index import list_runs

    run_dir(tmp_path, "20260101T000000")
    bad = run_dir(tmp_path, "20260101T000001")
    os.mkfifo(bad / "results.json")
    linked = run_dir(tmp_path, "20260101T000002")
    good = tmp_path / "etcd-register" / "20260101T000000"
    (linked / "results.json").symlink_to(good / "spec.json")  # out of its own run
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


@pytest.mark.parametrize("name", ["results.json", "spec.json"])
def test_a_run_file_larger_than_clew_writes_is_not_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A planted 1 GB spec.json or results.json was read into memory whole by the report
    and the index; beyond MAX_RECORD_BYTES it is refused, naming the file."""
    from click.testing import CliRunner

    import harness.record
    from harness.cli import cli
    from reports.index import list_runs

    monkeypatch.setattr(harness.record, "MAX_RECORD_BYTES", 1000)
    run = run_dir(tmp_path, "20260101T000000")
    (run / name).write_text(json.dumps({"suite": "etcd", "workload": "register",
                                        "pad": "x" * 2000}))  # fmt: skip
    result = CliRunner().invoke(cli, ["report", str(run)], catch_exceptions=False)
    assert result.exit_code == 0, result.output  # the report names what it could not read
    assert f"{run / name}: larger than 0.000953674 MiB" in (run / "report.html").read_text()
    assert [r["name"] for r in list_runs(tmp_path)] == ["etcd-register/20260101T000000"]


@pytest.mark.parametrize("name", ["results.json", "spec.json"])
def test_a_run_file_of_many_small_lists_is_not_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A planted 60 MB results.json of empty lists, under MAX_RECORD_BYTES, took 1.5 GB to
    decode (a list costs 64 bytes for its 3 characters); beyond MAX_RECORD_MEMORY it is
    refused, naming the file, and the report and index go on without it."""
    from click.testing import CliRunner

    import harness.record
    from harness.cli import cli
    from reports.index import list_runs

    monkeypatch.setattr(harness.record, "MAX_RECORD_MEMORY", 2**20)
    run = run_dir(tmp_path, "20260101T000000")
    (run / name).write_text(json.dumps({"suite": "etcd", "workload": "register",
                                        "pad": [[]] * 15_000}))  # fmt: skip
    assert (run / name).stat().st_size < 70_000  # small: its size alone is no reason
    result = CliRunner().invoke(cli, ["report", str(run)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    assert f"{run / name}: reading it would take up to 2 MiB of memory (it holds 15,002 " \
        "lists and objects in 0.1 MiB), more than the 1 MiB a file of a run may take: not " \
        "read" in page  # fmt: skip
    assert [r["name"] for r in list_runs(tmp_path)] == ["etcd-register/20260101T000000"]


@pytest.mark.parametrize("item", [
    "[]", "{}", "0.5", '"ab"', "12345", "[[]]", '{"a":0}', "[0]", '{"k1":[],"k2":{}}',
    "[0.5,0.5]", "123456789012345678901234567890", '"x"', '"' + "y" * 40 + '"',
    '"\\ud83d\\ude00"', '"\U0001f600"', '{"aa":1.5,"bb":"cc"}', "-1e300", "true", "null",
    '[{"k":[1.5,-2.5]}]', '{"' + "é" * 9 + '":[]}',
    '"' + "a" * 2000 + "\U0001f600" + '"', '"' + "a" * 2000 + "\\ud83d\\ude00" + '"',
])  # fmt: skip
def test_the_parse_memory_bound_bounds_what_decoding_takes(item: str) -> None:
    """parse_memory_bound is at least what json.loads allocates (tracemalloc's peak), for
    files of one kind of item repeated: what the check of a run file relies on."""
    import tracemalloc

    from harness.record import parse_memory_bound

    data = ("[" + ",".join([item] * 20_000) + "]").encode()
    text = data.decode()
    tracemalloc.start()
    try:
        value = json.loads(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(value) == 20_000
    assert peak <= parse_memory_bound(data), (peak, parse_memory_bound(data))
