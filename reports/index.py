"""``store/index.html``: every run in the store, newest first, with its verdict.

A run is a directory ``<store>/<test>/<run>/`` (``latest`` symlinks are skipped) holding at
least one of ``history.jsonl``, ``results.json`` or ``report.html``. The start time comes
from the run's name (``YYYYmmddTHHMMSS``), else from the directory's modification time; the
duration from ``results.json`` (``duration``/``seconds``), else from the times of the first
and last ops of ``history.jsonl`` (read from the ends of the file, not parsed whole).
From ``spec.json``: the seed, workload and suite options (they can change what is safe,
e.g. ``serializable_reads``); from ``results.json``: the faults that struck, the ops and
the anomaly classes (:meth:`~harness.record.RunResults.read_summary`: the rest of each
checker's result is skipped over, not built). The page's filter searches every column of
every run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import urllib.parse
from pathlib import Path
from typing import Any

from harness.errors import ClewError
from harness.record import RunResults, read_record_text, write_text_file
from harness.store import special_files
from reports.data import duration_text, options_text
from reports.render import render
from reports.run_report import REPORT_NAME, run_start

__all__ = ["INDEX_NAME", "list_runs", "render_index", "write_index"]

#: The index's file name at the top of the store.
INDEX_NAME = "index.html"
_RUN_FILES = ("history.jsonl", "results.json", REPORT_NAME)


#: Bytes read from each end of a history for its first and last ops' times: a line longer
#: than that (an op with a huge value, or a file of one line) gives no duration.
EDGE_BYTES = 65536


def _edge_times(path: Path) -> tuple[int, int] | None:
    """Times of the first and last ops of a JSONL history, from its first and last lines
    (at most :data:`EDGE_BYTES` of each end); None when unreadable, or when both times are
    just the ops' indexes (a history without real times, as clew writes one)."""
    try:
        with path.open("rb") as f:
            first = f.readline(EDGE_BYTES)
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - EDGE_BYTES))
            tail = [x for x in f.read().splitlines() if x.strip()]
        head = json.loads(first)
        a = head["time"]
        for line in reversed(tail):
            try:
                last = json.loads(line)
                b = last["time"]
                break
            except (ValueError, KeyError, TypeError, RecursionError):
                continue  # a torn last line (RecursionError: nested too deeply)
        else:
            return None
        if head.get("index") == a and last.get("index") == b and b > a:
            return None  # positions, not times
        if isinstance(a, int) and isinstance(b, int):
            return a, b
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        pass
    return None


def _spec(run: Path) -> dict[str, Any]:
    """The run's spec.json as a dict ({} when absent or unreadable)."""
    try:
        data = json.loads(read_record_text(run / "spec.json"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _faults_text(spec: dict[str, Any], results: RunResults | None) -> str:
    """The faults that struck (kind ×count, from the results' windows), else those asked
    for, else ``none``."""
    counts: dict[str, int] = {}
    for w in results.faults if results is not None else []:
        kind = str(w.get("kind", "?"))
        counts[kind] = counts.get(kind, 0) + 1
    if counts:
        return ", ".join(f"{k} ×{n}" for k, n in sorted(counts.items()))
    asked = spec.get("faults")
    if isinstance(asked, list) and asked:
        return ", ".join(str(x) for x in asked) + " (none struck)"
    return "none"


def _options_text(spec: dict[str, Any]) -> str:
    """The suite options the run was given (``serializable_reads=true``, ``isolation=...``),
    as ``-o`` takes them: they can change what is safe, so the index shows them."""
    opts = spec.get("options")
    if not isinstance(opts, dict) or not opts:
        return ""
    return options_text(opts)


def _anomaly_classes(results: RunResults | None) -> list[str]:
    """The anomaly classes the run's checkers reported (G0, G2-item, ...), and for an
    invalid checker that names none, ``<checker>: invalid``."""
    found: list[str] = []
    for name, r in (results.checkers if results is not None else {}).items():
        if not isinstance(r, dict):
            continue
        a = r.get("anomalies")
        names = [str(x) for x in a] if isinstance(a, (list, dict)) else []
        if names:
            found.extend(x for x in names if x not in found)
        elif r.get("valid") is False:
            found.append(f"{name}: invalid")
    return found


def _run_info(store: Path, run: Path) -> dict[str, Any]:
    results: RunResults | None = None
    with contextlib.suppress(ClewError):
        results = RunResults.read_summary(run)
    start = run_start(run)
    started = start or dt.datetime.fromtimestamp(run.stat().st_mtime)
    seconds = results.duration if results is not None else None
    if seconds is None:
        edges = _edge_times(run / "history.jsonl")
        if edges is not None:
            seconds = (edges[1] - edges[0]) / 1e9
    rel = run.relative_to(store).as_posix()
    has_report = (run / REPORT_NAME).exists()
    spec = _spec(run)
    seed = spec.get("seed")
    return {
        "seed": seed if isinstance(seed, int) else None,
        "workload": str(spec.get("workload") or ""),
        "faults": _faults_text(spec, results),
        "options": _options_text(spec),
        "anomalies": _anomaly_classes(results),
        "files": [n for n in ("history.jsonl", "clew.log") if (run / n).exists()],
        "name": rel,
        "test": run.parent.name,
        "dir_href": urllib.parse.quote(rel),  # a name such as javascript:x is a path
        "href": urllib.parse.quote(f"{rel}/{REPORT_NAME}" if has_report else f"{rel}/"),
        "start": started.strftime("%Y-%m-%d %H:%M:%S"),
        "sort": started.timestamp(),
        "duration": duration_text(seconds),
        "wall": duration_text(results.wall_seconds if results is not None else None),
        "ops": results.ops if results is not None and results.ops is not None else None,
        "valid": results.valid if results is not None else None,
    }


def _plain(run: Path) -> bool:
    """Whether ``run`` holds only files and directories (a FIFO would hang its reading:
    :func:`harness.store.special_files`)."""
    try:
        return not special_files(run)
    except ClewError:
        return False


def list_runs(store: str | Path) -> list[dict[str, Any]]:
    """Every run in ``store``, newest first."""
    root = Path(store)
    runs: list[dict[str, Any]] = []
    if not root.is_dir():
        return runs
    for test in sorted(root.iterdir()):
        if not test.is_dir() or test.is_symlink():
            continue
        for run in sorted(test.iterdir()):
            if run.is_symlink() or not run.is_dir():
                continue
            if any((run / n).exists() for n in _RUN_FILES) and _plain(run):
                runs.append(_run_info(root, run))
    runs.sort(key=lambda r: (r["sort"], r["name"]), reverse=True)
    return runs


def render_index(store: str | Path) -> str:
    """The HTML of the store's index."""
    return render("index.html.j2", title="clew runs", runs=list_runs(store), payload={})


def write_index(store: str | Path) -> Path:
    """Write ``index.html`` at the top of ``store`` (atomically) and return its path."""
    root = Path(store)
    root.mkdir(parents=True, exist_ok=True)
    out = root / INDEX_NAME
    return write_text_file(out, render_index(root), root / f".{INDEX_NAME}.tmp")
