"""One run's row of the store's index, read from the run's files.

The start time comes from the run's name (``YYYYmmddTHHMMSS``), else from the directory's
modification time; the duration from ``results.json`` (``duration``/``seconds``), else from
the times of the first and last ops of ``history.jsonl`` (read from the ends of the file,
not parsed whole). From ``spec.json``: the seed, workload and suite options (they can
change what is safe, e.g. ``serializable_reads``); from ``results.json``: the faults that
struck, the ops and the anomaly classes (:meth:`~harness.record.RunResults.read_summary`:
the rest of each checker's result is skipped over, not built).

A row holds only what was read from those files (:data:`SOURCES`): the run's name, test
and links are added from where the run lies, and which of its report, history and log
are there to link is looked at when the page is made, for the runs it lists
(:func:`row_dict`). So a row kept in the index's cache (:mod:`reports.index_cache`)
cannot name another place, and checking that a kept row still holds costs three
``stat`` calls per run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import msgspec

from harness.errors import ClewError
from harness.record import MAX_RESULT_WINDOWS, RunResults, read_record_text
from reports.data import duration_text, options_text
from reports.run_report import REPORT_NAME

__all__ = [
    "EDGE_BYTES",
    "MAX_ANOMALY_CHARS",
    "MAX_ANOMALY_NAMES",
    "MAX_TEXT_CHARS",
    "ROW_FORMAT",
    "SOURCES",
    "IndexRow",
    "name_start",
    "read_row",
    "row_dict",
]

#: The files of a run its row is read from.
SOURCES = ("spec.json", "results.json", "history.jsonl")
#: The files of a run the page links when they are there.
_LINKED = ("history.jsonl", "clew.log")

#: Bytes read from each end of a history for its first and last ops' times: a line longer
#: than that (an op with a huge value, or a file of one line) gives no duration.
EDGE_BYTES = 65536

#: What :func:`read_row` makes of a run's files: change it with the row or its reading (a
#: column added, a text written otherwise), and every row kept in the index's cache is
#: read again (:mod:`reports.index_cache`).
ROW_FORMAT = 3

#: Longest text of the workload, faults and options columns (cut with "…").
MAX_TEXT_CHARS = 60
#: Anomaly classes a row names (``more_anomalies`` counts the rest).
MAX_ANOMALY_NAMES = 20
#: Longest name of one anomaly class in a row (cut with "…").
MAX_ANOMALY_CHARS = 40

_RUN_NAME = re.compile(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)")


class IndexRow(msgspec.Struct, array_like=True, frozen=True):
    """What the index shows of one run, as read from its files (see the module)."""

    seed: int | None
    workload: str
    faults: str
    options: str
    anomalies: list[str]
    more_anomalies: int
    start: str
    sort: float
    duration: str
    wall: str
    ops: int | None
    valid: bool | Literal["unknown"] | None


def name_start(name: str) -> dt.datetime | None:
    """The start time a run's name gives (``YYYYmmddTHHMMSS``, as clew names runs), else
    None (the index then takes the directory's modification time)."""
    m = _RUN_NAME.fullmatch(name)
    if m is None:
        return None
    try:
        y, mo, d, h, mi, sec = map(int, m.groups())
        return dt.datetime(y, mo, d, h, mi, sec)
    except ValueError:
        return None


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


def _clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text``, cut to at most ``limit`` characters (the last one "…" if cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _joined(parts: Iterable[str], limit: int = MAX_TEXT_CHARS) -> str:
    """``parts`` joined by ", ", at most ``limit`` characters (:func:`_clip`): the parts
    past the limit are not looked at."""
    out: list[str] = []
    size = 0
    for part in parts:
        out.append(part)
        size += len(part) + 2
        if size > limit:
            break
    return _clip(", ".join(out), limit)


def _spec(run: Path) -> dict[str, Any]:
    """The run's spec.json as a dict ({} when absent or unreadable)."""
    try:
        data = json.loads(read_record_text(run / "spec.json"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _faults_text(spec: dict[str, Any], results: RunResults | None) -> str:
    """The faults that struck (kind ×count, from the results' windows), else those asked
    for, else ``none``; at most :data:`MAX_TEXT_CHARS`."""
    counts: dict[str, int] = {}
    for w in results.faults if results is not None else []:
        kind = str(w.get("kind", "?"))
        counts[kind] = counts.get(kind, 0) + 1
    if counts:
        more = ""  # results.json holds the first windows only (and says so)
        if results is not None and len(results.faults) >= MAX_RESULT_WINDOWS:
            more = f" in the first {MAX_RESULT_WINDOWS:,} windows"
        return _joined((f"{_clip(k)} ×{n}" for k, n in sorted(counts.items())),
                       MAX_TEXT_CHARS - len(more)) + more  # fmt: skip
    asked = spec.get("faults")
    if isinstance(asked, list) and asked:
        tail = " (none struck)"
        return _joined((str(x) for x in asked), MAX_TEXT_CHARS - len(tail)) + tail
    return "none"


def _options_text(spec: dict[str, Any]) -> str:
    """The suite options the run was given (``serializable_reads=true``, ``isolation=...``),
    as ``-o`` takes them: they can change what is safe, so the index shows them (at most
    :data:`MAX_TEXT_CHARS`)."""
    opts = spec.get("options")
    if not isinstance(opts, dict) or not opts:
        return ""
    return _clip(options_text(opts))


def _anomaly_classes(results: RunResults | None) -> tuple[list[str], int]:
    """The first :data:`MAX_ANOMALY_NAMES` anomaly classes the run's checkers reported
    (G0, G2-item, ...; each at most :data:`MAX_ANOMALY_CHARS`), and for an invalid checker
    that names none, ``<checker>: invalid``; and how many more there are."""
    found: dict[str, None] = {}  # (a dict: each name once, in order, in linear time)
    for name, r in (results.checkers if results is not None else {}).items():
        if not isinstance(r, dict):
            continue
        a = r.get("anomalies")
        names = [str(x) for x in a] if isinstance(a, (list, dict)) else []
        if names:
            found.update(dict.fromkeys(names))
        elif r.get("valid") is False:
            found[f"{name}: invalid"] = None
    shown = [_clip(x, MAX_ANOMALY_CHARS) for x in itertools.islice(found, MAX_ANOMALY_NAMES)]
    return shown, len(found) - len(shown)


def read_row(run: Path) -> IndexRow:
    """The row of the run directory ``run``, read from its files (:data:`SOURCES`), its
    text columns cut short (:data:`MAX_TEXT_CHARS`, :data:`MAX_ANOMALY_NAMES`); a
    file that is absent or unreadable leaves its columns empty, never an error. The caller
    makes sure ``run`` holds no FIFO (:func:`harness.store.special_files`)."""
    results: RunResults | None = None
    with contextlib.suppress(ClewError):
        results = RunResults.read_summary(run)
    started = name_start(run.name) or dt.datetime.fromtimestamp(run.stat().st_mtime)
    seconds = results.duration if results is not None else None
    if seconds is None:
        edges = _edge_times(run / "history.jsonl")
        if edges is not None:
            seconds = (edges[1] - edges[0]) / 1e9
    spec = _spec(run)
    seed = spec.get("seed")
    anomalies, more = _anomaly_classes(results)
    return IndexRow(
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        workload=_clip(str(spec.get("workload") or "")),
        faults=_faults_text(spec, results),
        options=_options_text(spec),
        anomalies=anomalies,
        more_anomalies=more,
        start=started.strftime("%Y-%m-%d %H:%M:%S"),
        sort=started.timestamp(),
        duration=duration_text(seconds),
        wall=duration_text(results.wall_seconds if results is not None else None),
        ops=results.ops if results is not None and results.ops is not None else None,
        valid=results.valid if results is not None else None,
    )


def row_dict(store: Path, rel: str, row: IndexRow) -> dict[str, Any]:
    """The row as the page's template takes it, for the run at ``rel`` (``test/run``,
    relative to ``store``): with its name, test, the files there are to link (its history
    and log) and its link (its report if it has one, else its directory), percent-encoded
    so that a name such as ``javascript:x`` stays a path."""
    run = store / rel
    has_report = (run / REPORT_NAME).exists()
    return {
        **msgspec.structs.asdict(row),
        "name": rel,
        "test": rel.split("/", 1)[0],
        "files": [n for n in _LINKED if (run / n).exists()],
        "dir_href": urllib.parse.quote(rel),
        "href": urllib.parse.quote(f"{rel}/{REPORT_NAME}" if has_report else f"{rel}/"),
    }
