"""``store/index.html``: the newest runs of the store, with their verdicts.

A run is a directory ``<store>/<test>/<run>/`` (``latest`` symlinks are skipped) holding at
least one of ``history.jsonl``, ``results.json`` or ``report.html``; what its row shows is
read from its files (:mod:`reports.index_rows`). The page lists the newest
:data:`DEFAULT_INDEX_RUNS` runs (``--index-runs``), newest first; when that leaves runs
out, it says how many, and a table by test counts every run of each test by verdict and
links the test's directory, which lists them all. The page's filter searches every column
of the runs listed.

Writing the index reads only the runs whose files changed since it was last written: the
other rows come from the store's row cache (:mod:`reports.index_cache`).
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from pathlib import Path
from typing import Any

from harness.errors import ClewError
from harness.record import replace_file
from harness.store import special_files
from reports.index_cache import RowCache, run_key
from reports.index_rows import EDGE_BYTES, IndexRow, name_start, read_row, row_dict
from reports.render import render
from reports.run_report import REPORT_NAME

__all__ = ["DEFAULT_INDEX_RUNS", "EDGE_BYTES", "INDEX_NAME", "list_runs", "render_index",
           "write_index"]  # fmt: skip

#: The index's file name at the top of the store.
INDEX_NAME = "index.html"
#: Runs the page lists by default (the newest): about 550 bytes of page each.
DEFAULT_INDEX_RUNS = 1000
_RUN_FILES = ("history.jsonl", "results.json", REPORT_NAME)


def _plain(run: Path) -> bool:
    """Whether ``run`` holds only files and directories (a FIFO would hang its reading:
    :func:`harness.store.special_files`)."""
    try:
        return not special_files(run)
    except ClewError:
        return False


def _run_dirs(root: Path) -> list[tuple[str, str]]:
    """``(test/run, path)`` of every directory two levels below ``root`` (links skipped: a
    ``latest`` link names a run listed under its own name); unreadable ones are left out."""
    found: list[tuple[str, str]] = []
    with contextlib.suppress(OSError), os.scandir(root) as tests:
        for test in tests:
            if not test.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError), os.scandir(test.path) as runs:
                found.extend((f"{test.name}/{r.name}", r.path) for r in runs
                             if r.is_dir(follow_symlinks=False))  # fmt: skip
    return found


def _rows(root: Path, cache: RowCache | None) -> list[tuple[str, IndexRow]]:
    """Every run of ``root`` with its row, newest first: a row from ``cache`` while the
    run's files are as they were (:func:`reports.index_cache.run_key`), else read."""
    rows: list[tuple[str, IndexRow]] = []
    for rel, path in _run_dirs(root):
        key = run_key(path, with_dir=name_start(os.path.basename(path)) is None)
        if cache is not None and key is not None:
            row = cache.get(rel, key)
            if row is not None:
                rows.append((rel, row))
                continue
        run = Path(path)
        if not any((run / n).exists() for n in _RUN_FILES) or not _plain(run):
            continue
        row = read_row(run)
        if cache is not None:
            cache.put(rel, key, row)
        rows.append((rel, row))
    rows.sort(key=lambda r: (r[1].sort, r[0]), reverse=True)
    return rows


def list_runs(store: str | Path) -> list[dict[str, Any]]:
    """Every run in ``store``, newest first, each read from its files (no cache)."""
    root = Path(store)
    return [row_dict(rel, row) for rel, row in _rows(root, None)] if root.is_dir() else []


def _by_test(rows: list[tuple[str, IndexRow]], listed: int) -> list[dict[str, Any]]:
    """Per test: its runs, how many the page lists, and how many have each verdict."""
    tests: dict[str, dict[str, Any]] = {}
    for i, (rel, row) in enumerate(rows):
        name = rel.split("/", 1)[0]
        t = tests.setdefault(name, {"test": name, "href": urllib.parse.quote(name) + "/",
                                    "runs": 0, "listed": 0, "valid": 0, "invalid": 0,
                                    "unknown": 0, "none": 0})  # fmt: skip
        t["runs"] += 1
        t["listed"] += i < listed
        t[{True: "valid", False: "invalid", "unknown": "unknown"}.get(row.valid, "none")] += 1
    return sorted(tests.values(), key=lambda t: t["test"])


def _render(rows: list[tuple[str, IndexRow]], max_runs: int) -> str:
    listed = len(rows) if max_runs <= 0 else min(max_runs, len(rows))
    return render(
        "index.html.j2", title="clew runs", payload={},
        runs=[row_dict(rel, row) for rel, row in rows[:listed]], total=len(rows),
        tests=_by_test(rows, listed) if listed < len(rows) else [],
    )  # fmt: skip


def render_index(store: str | Path, max_runs: int = DEFAULT_INDEX_RUNS) -> str:
    """The HTML of the store's index: its newest ``max_runs`` runs (0: every run), each
    read from its files (no cache)."""
    root = Path(store)
    return _render(_rows(root, None) if root.is_dir() else [], max_runs)


def write_index(store: str | Path, max_runs: int = DEFAULT_INDEX_RUNS) -> Path:
    """Write ``index.html`` at the top of ``store`` (atomically) listing its newest
    ``max_runs`` runs (0: every run), and return its path. Only the runs whose files
    changed since the last write are read; the others' rows come from the store's row
    cache, which is then updated (:mod:`reports.index_cache`)."""
    root = Path(store)
    root.mkdir(parents=True, exist_ok=True)
    cache = RowCache.load(root)
    rows = _rows(root, cache)
    cache.save(root)
    return replace_file(root / INDEX_NAME, _render(rows, max_runs).encode("utf-8"))
