"""The store's index scales: writing it reads only the runs whose files changed (a row
cache in ``store/.clew-index-cache.json``), and the page lists the newest runs, saying
what it left out.

* a run's row is reused while its files are as they were, read again when one changes,
  and dropped when the run is gone;
* a cache that is damaged, not a file, or came with a copied store is never trusted over
  the files, nor an error: it is rebuilt;
* two writers at once each leave a whole index and a whole cache;
* the page lists ``--index-runs`` runs and counts the others by test.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import reports.index
import reports.index_cache
from harness.cli import cli
from reports.index import INDEX_NAME, write_index
from reports.index_cache import CACHE_FORMAT, CACHE_NAME
from reports.index_rows import ROW_FORMAT


def _run(store: Path, test: str, name: str, valid: bool = True) -> Path:
    run = store / test / name
    run.mkdir(parents=True)
    if not (store / "latest").is_symlink():  # a store, as clew test leaves one
        (store / "latest").symlink_to(run.relative_to(store))
    (run / "spec.json").write_text(json.dumps({"seed": 7, "workload": "register"}))
    (run / "results.json").write_text(json.dumps({"format": 2, "valid": valid, "ops": 10}))
    (run / "history.jsonl").write_text('{"type": "invoke", "f": "read", "process": 0}\n')
    return run


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The runs whose rows will be read from their files (not taken from the cache)."""
    seen: list[str] = []
    real = reports.index.read_row

    def counting(run: Path) -> reports.index.IndexRow:
        seen.append(f"{run.parent.name}/{run.name}")
        return real(run)

    monkeypatch.setattr(reports.index, "read_row", counting)
    return seen


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """:func:`_count_reads`, with rows kept even when read just after their files changed
    (no racy margin: the files here are a second old at most)."""
    monkeypatch.setattr(reports.index_cache, "RACY_SECONDS", 0.0)
    return _count_reads(monkeypatch)


def _store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    _run(store, "etcd", "20260101T000000")
    _run(store, "etcd", "20260101T000001", valid=False)
    _run(store, "kv", "20260101T000002")
    return store


def test_a_row_is_reused_while_its_files_are_unchanged_and_read_again_when_one_changes(
    tmp_path: Path, reads: list[str]
) -> None:
    store = _store(tmp_path)
    write_index(store)
    assert sorted(reads) == ["etcd/20260101T000000", "etcd/20260101T000001", "kv/20260101T000002"]
    assert (store / CACHE_NAME).is_file()
    reads.clear()
    write_index(store)
    assert reads == []  # every row from the cache
    run = store / "kv" / "20260101T000002"
    # Rewritten in place, the same size: its change time and modification time differ.
    (run / "results.json").write_text(json.dumps({"format": 2, "valid": False, "ops": 10}))
    write_index(store)
    assert reads == ["kv/20260101T000002"]
    html = (store / INDEX_NAME).read_text()
    assert html.count('class="badge invalid"') == 2
    reads.clear()
    (run / "report.html").write_text("<p>report</p>")  # the row's files are as they were,
    (run / "clew.log").write_text("log\n")  # but the page links what is there now
    write_index(store)
    assert reads == []
    html = (store / INDEX_NAME).read_text()
    assert 'href="kv/20260101T000002/report.html"' in html
    assert 'href="kv/20260101T000002/clew.log"' in html


def test_a_removed_run_disappears_and_a_new_one_is_read(tmp_path: Path, reads: list[str]) -> None:
    store = _store(tmp_path)
    write_index(store)
    shutil.rmtree(store / "etcd" / "20260101T000001")
    _run(store, "kv", "20260101T000003")
    reads.clear()
    write_index(store)
    assert reads == ["kv/20260101T000003"]
    html = (store / INDEX_NAME).read_text()
    assert "20260101T000001" not in html and "20260101T000003" in html
    cache = json.loads((store / CACHE_NAME).read_text())
    assert sorted(cache["runs"]) == ["etcd/20260101T000000", "kv/20260101T000002",
                                     "kv/20260101T000003"]  # fmt: skip


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "wrong types", "other format", "other rows", "a directory",
     "a fifo", "a link"],
)
def test_a_damaged_cache_is_ignored_and_rebuilt(
    tmp_path: Path, reads: list[str], damage: str
) -> None:
    store = _store(tmp_path)
    write_index(store)
    cache = store / CACHE_NAME
    good = cache.read_text()
    cache.unlink()
    if damage == "garbage":
        cache.write_bytes(b"\x00\xff not json")
    elif damage == "truncated":
        cache.write_text(good[: len(good) // 2])
    elif damage == "wrong types":
        cache.write_text(good.replace('"register"', "12"))
    elif damage == "other format":
        cache.write_text(good.replace(f'"format":{CACHE_FORMAT}', '"format":99'))
    elif damage == "other rows":  # rows made by another version of read_row
        cache.write_text(good.replace(f'"row_format":{ROW_FORMAT}', '"row_format":99'))
    elif damage == "a directory":
        cache.mkdir()
    elif damage == "a fifo":
        os.mkfifo(cache)  # opening it for reading would wait for a writer for ever
    else:
        (tmp_path / "elsewhere.json").write_text(good)
        cache.symlink_to(tmp_path / "elsewhere.json")
    reads.clear()
    write_index(store)
    assert len(reads) == 3  # every run read again
    assert (store / INDEX_NAME).read_text().count("<tr><td><a href=") == 3
    if damage != "a directory":  # (a directory is not replaced by a file)
        assert cache.is_file() and not cache.is_symlink()
        reads.clear()
        write_index(store)
        assert reads == []


def test_a_cache_that_came_with_a_copied_store_is_not_trusted(
    tmp_path: Path, reads: list[str]
) -> None:
    """A store copied with its files' times kept (cp -a, rsync -a, tar): its cache's rows
    match no file of the copy (their change times and inodes differ), so each run is read
    again; a row there that lied about a verdict is not shown."""
    store = _store(tmp_path)
    write_index(store)
    cache = store / CACHE_NAME
    cache.write_text(cache.read_text().replace("false", "true"))  # every run valid, it says
    copy = tmp_path / "copy"
    shutil.copytree(store, copy, symlinks=True)  # copy2: modification times kept
    reads.clear()
    write_index(copy)
    assert len(reads) == 3
    assert 'class="badge invalid"' in (copy / INDEX_NAME).read_text()


def test_a_row_read_just_after_its_files_changed_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within RACY_SECONDS of a change, a file rewritten again in the same tick of the file
    system's clock, with the same size, could keep its key: such a row is not kept."""
    reads = _count_reads(monkeypatch)
    store = _store(tmp_path)
    write_index(store)
    write_index(store)
    assert len(reads) == 6  # the files are younger than RACY_SECONDS: read both times


def test_two_writers_at_once_each_leave_a_whole_index_and_cache(
    tmp_path: Path, reads: list[str]
) -> None:
    store = _store(tmp_path)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        run = store / "kv" / "20260101T000002"
        try:
            for i in range(30):  # a run changes each time: each write reads it, and saves
                (run / "clew.log").write_text(f"{n} {i}\n" * (i + 1))
                write_index(store)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert (store / INDEX_NAME).read_text().rstrip().endswith("</html>")
    json.loads((store / CACHE_NAME).read_text())
    assert not list(store.glob(".*.tmp"))  # no temporary file left behind


def test_a_killed_writers_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    store = _store(tmp_path)
    stale = [store / f".{INDEX_NAME}.0123456789ab.tmp", store / f".{CACHE_NAME}.ba9876543210.tmp"]
    fresh = store / f".{INDEX_NAME}.feedfacecafe.tmp"  # a writer still at work
    mine = store / ".notes.txt.0123456789ab.tmp"  # not the index's
    theirs = store / f".{INDEX_NAME}.bak.tmp"  # not replace_file's name
    for f in (*stale, fresh, mine, theirs):
        f.write_text("half a page")
    two_hours_ago = time.time() - 7200
    for f in (*stale, mine, theirs):
        os.utime(f, (two_hours_ago, two_hours_ago))
    write_index(store)
    assert [f.exists() for f in stale] == [False, False]
    assert fresh.exists() and mine.exists() and theirs.exists()


def test_the_page_lists_the_newest_runs_and_says_what_it_left_out(tmp_path: Path) -> None:
    store = _store(tmp_path)
    html = write_index(store, max_runs=2).read_text()
    assert "The newest 2 of 3 runs" in html and "the 1 older ones are left out" in html
    assert "20260101T000000" not in html.split('id="by-test"')[0]  # the oldest: left out
    by_test = html.split('id="by-test"')[1]
    assert '<a href="etcd/">etcd</a></td><td class="num">2</td><td class="num">1</td>' in by_test
    assert "--index-runs" in html
    every = write_index(store, max_runs=0).read_text()
    assert "3 runs, newest first" in every and 'id="by-test"' not in every
    assert "left out" not in write_index(store).read_text()  # the default lists 1,000


def test_clew_report_and_serve_take_index_runs(tmp_path: Path) -> None:
    store = _store(tmp_path)
    run = store / "kv" / "20260101T000002"
    res = CliRunner().invoke(cli, ["report", str(run), "--index-runs", "1"])
    assert res.exit_code == 0, res.output
    assert "The newest 1 of 3 runs" in (store / INDEX_NAME).read_text()
    for cmd in ("report", "serve"):
        text = " ".join(CliRunner().invoke(cli, [cmd, "--help"]).output.split())
        assert "--index-runs N" in text and "(0: every run)" in text


def test_a_run_holding_a_fifo_is_left_out_every_time_never_opened(
    tmp_path: Path, reads: list[str]
) -> None:
    """A FIFO among a run's files (opening it would wait for a writer for ever) makes its
    key unknown: the run is looked at again each time, and left out, as without a cache."""
    store = _store(tmp_path)
    bad = store / "kv" / "20260101T000009"
    bad.mkdir()
    os.mkfifo(bad / "results.json")
    for _ in range(2):
        html = write_index(store).read_text()
        assert "20260101T000009" not in html and html.count("<tr><td><a href=") == 3
    assert "kv/20260101T000009" not in json.loads((store / CACHE_NAME).read_text())["runs"]


def test_a_page_clew_did_not_write_is_never_replaced_by_an_index(tmp_path: Path) -> None:
    """`clew report site/posts/bobs-run` replaced site/index.html, a web site's own page,
    with a clew index (a run copied two levels under it looks like a store's run)."""
    site = tmp_path / "site"
    run = _run(site, "posts", "bobs-run")
    (site / INDEX_NAME).write_text("<html>MY WEBSITE</html>")
    result = CliRunner().invoke(cli, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert (run / "report.html").is_file()  # the report stands
    assert f"index: not written: {site / INDEX_NAME}: is a page clew did not write" in (
        result.output
    )
    assert (site / INDEX_NAME).read_text() == "<html>MY WEBSITE</html>"
    with pytest.raises(reports.index.InputError, match="move it away"):
        write_index(site)
    # A link (to anything) is not replaced either; clew's own index is, as always.
    (site / INDEX_NAME).unlink()
    (site / INDEX_NAME).symlink_to(run / "report.html")
    with pytest.raises(reports.index.InputError, match="is a symbolic link"):
        write_index(site)
    (site / INDEX_NAME).unlink()
    first = write_index(site).read_text()
    assert "bobs-run" in first and write_index(site).read_text() == first


def test_a_cache_holding_far_more_than_the_store_s_runs_is_ignored(
    tmp_path: Path, reads: list[str]
) -> None:
    """A cache is bounded by the runs the store holds: one of 2,000 entries for a store of
    three (a 44 KB file here; 241 MB took 2.78 GB to decode) is ignored, as a damaged one
    is, and rebuilt (found by a memory audit)."""
    store = _store(tmp_path)
    write_index(store)
    cache = store / CACHE_NAME
    data = json.loads(cache.read_text())
    data["runs"].update({f"gone/{i}": [0, 0, None, 0] for i in range(2_000)})
    cache.write_text(json.dumps(data))
    reads.clear()
    write_index(store)
    assert len(reads) == 3  # every run read again
    assert len(json.loads(cache.read_text())["runs"]) == 3


def test_a_cache_of_a_row_at_its_longest_is_kept(tmp_path: Path, reads: list[str]) -> None:
    """A row whose texts are all cut short, of characters that cost the most to decode
    (a quote: escaped, and counted as a string's start by parse_memory_bound), is kept:
    it stays within the cache's bound per run."""
    from harness.record import parse_memory_bound
    from reports.index_cache import CACHE_BASE_MEMORY, MAX_CACHE_MEMORY_PER_RUN

    store = tmp_path / "store"
    q = '"'
    run = _run(store, q * 255, q * 255)
    spec = {"workload": q * 500, "faults": [q] * 500, "options": {"o": q * 500}}
    (run / "spec.json").write_text(json.dumps(spec))
    anomalies = [f"{i}" + q * 50 for i in range(30)]
    results = {"format": 2, "valid": False, "checkers": {"c": {"anomalies": anomalies}}}
    (run / "results.json").write_text(json.dumps(results))
    write_index(store)
    data = (store / CACHE_NAME).read_bytes()
    assert parse_memory_bound(data) <= CACHE_BASE_MEMORY + MAX_CACHE_MEMORY_PER_RUN
    reads.clear()
    write_index(store)
    assert reads == []
