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

from harness.errors import ClewError, InputError
from harness.record import remove_stale_temporaries, replace_file
from harness.store import special_files
from reports.index_cache import CACHE_NAME, CachedRow, RowCache, run_key
from reports.index_rows import EDGE_BYTES, IndexRow, name_start, read_row, row_dict
from reports.render import render
from reports.run_report import REPORT_NAME

__all__ = ["DEFAULT_INDEX_RUNS", "EDGE_BYTES", "INDEX_NAME", "list_runs", "render_index",
           "write_index"]  # fmt: skip

#: The index's file name at the top of the store.
INDEX_NAME = "index.html"
#: Runs the page lists by default (the newest): about 550 bytes of page each, at most
#: about 1.6 KB (:data:`reports.index_rows.MAX_TEXT_CHARS`).
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


#: A run as the store's walk finds it: its place (``test/run``) and its row, read from its
#: files or still as the cache keeps it.
_Found = tuple[str, IndexRow | CachedRow]


def _read(
    root: Path, rel: str, cache: RowCache | None, key: tuple[int, int] | None = None
) -> IndexRow | None:
    """The row of the run at ``rel``, read from its files and kept in ``cache`` under
    ``key`` (that of the files before the reading; default: taken now); None when it is
    not a run, or holds a FIFO."""
    run = root / rel
    if cache is not None and key is None:
        key = run_key(str(run), with_dir=name_start(run.name) is None)
    if not any((run / n).exists() for n in _RUN_FILES) or not _plain(run):
        return None
    row = read_row(run)
    if cache is not None:
        cache.put(rel, key, row)
    return row


def _rows(
    root: Path, cache: RowCache | None, found: list[tuple[str, str]] | None = None
) -> list[_Found]:
    """Every run of ``root`` (those ``found`` by :func:`_run_dirs`, default: looked for
    now) with its row, newest first: from ``cache`` while the run's files are as they
    were (:func:`reports.index_cache.run_key`), else read."""
    rows: list[_Found] = []
    for rel, path in _run_dirs(root) if found is None else found:
        key = None
        if cache is not None:
            key = run_key(path, with_dir=name_start(os.path.basename(path)) is None)
            hit = cache.get(rel, key) if key is not None else None
            if hit is not None:
                rows.append((rel, hit))
                continue
        row = _read(root, rel, cache, key)
        if row is not None:
            rows.append((rel, row))
    rows.sort(key=lambda r: (r[1].sort, r[0]), reverse=True)
    return rows


def _listed(root: Path, rows: list[_Found], cache: RowCache | None) -> list[dict[str, Any]]:
    """The page's rows of ``rows``: those the cache kept decoded, and read again from their
    files if the cache's copy is damaged."""
    out = []
    for rel, found in rows:
        row = found if isinstance(found, IndexRow) else None
        if isinstance(found, CachedRow) and cache is not None:
            row = cache.decode(rel, found)
            if row is None:
                row = _read(root, rel, cache)
        if row is not None:
            out.append(row_dict(root, rel, row))
    return out


def list_runs(store: str | Path) -> list[dict[str, Any]]:
    """Every run in ``store``, newest first, each read from its files (no cache)."""
    root = Path(store)
    return _listed(root, _rows(root, None), None) if root.is_dir() else []


def _by_test(rows: list[_Found], listed: int) -> list[dict[str, Any]]:
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


def _render(root: Path, rows: list[_Found], max_runs: int, cache: RowCache | None) -> str:
    listed = len(rows) if max_runs <= 0 else min(max_runs, len(rows))
    return render(
        "index.html.j2", title="clew runs", payload={},
        runs=_listed(root, rows[:listed], cache), total=len(rows),
        tests=_by_test(rows, listed) if listed < len(rows) else [],
    )  # fmt: skip


def render_index(store: str | Path, max_runs: int = DEFAULT_INDEX_RUNS) -> str:
    """The HTML of the store's index: its newest ``max_runs`` runs (0: every run), each
    read from its files (no cache)."""
    root = Path(store)
    return _render(root, _rows(root, None) if root.is_dir() else [], max_runs, None)


#: What every page clew writes carries in its head (reports/templates/base.html.j2).
GENERATOR = b'<meta name="generator" content="clew">'


def _not_ours(page: Path) -> str | None:
    """Why clew may not replace ``page`` (it is a link, not a file, or a page clew did not
    write), or None if it may (also when there is none)."""
    if page.is_symlink():
        return "is a symbolic link"
    if not page.is_file():  # (nothing there; or a directory, which the write names)
        return None
    try:
        with page.open("rb") as f:
            head = f.read(4096)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    return None if GENERATOR in head else "is a page clew did not write"


def write_index(store: str | Path, max_runs: int = DEFAULT_INDEX_RUNS) -> Path:
    """Write ``index.html`` at the top of ``store`` (atomically) listing its newest
    ``max_runs`` runs (0: every run), and return its path. Only the runs whose files
    changed since the last write are read; the others' rows come from the store's row
    cache, which is then updated (:mod:`reports.index_cache`). Temporary files that a
    writer killed mid-write left beside the page or the cache are removed once stale.
    :class:`InputError`, writing nothing, if an ``index.html`` is there that clew did not
    write (a web site's page above a run that was copied into it)."""
    root = Path(store)
    why = _not_ours(root / INDEX_NAME)
    if why is not None:
        raise InputError(f"{root / INDEX_NAME}: {why}; clew writes a store's index only over "
                         "its own: move it away if this is a store")  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    found = _run_dirs(root)
    cache = RowCache.load(root, runs=len(found))
    rows = _rows(root, cache, found)
    page = _render(root, rows, max_runs, cache)
    cache.save(root)
    for name in (INDEX_NAME, CACHE_NAME):  # what a writer killed mid-write left
        remove_stale_temporaries(root / name)
    return replace_file(root / INDEX_NAME, page.encode("utf-8"))
