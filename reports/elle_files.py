"""Elle's files beside a run's report: ``elle/<anomaly>.txt`` and ``elle/<anomaly>/<n>.svg``.

Elle (Jepsen's transactional checker) writes one text file per anomaly type into the test's
``elle/`` directory, every instance explained in words ("Let: T1 = … Then: - T1 < T2,
because …: a contradiction!"), and a drawing of every cycle. clew does the same for the
transactional checkers' results (``anomaly_details`` in ``results.json``): every instance the
checker kept, not only the few the page shows, and one standalone SVG per drawable cycle
(:func:`reports.txn_view.cycle_svg`). The report links to them.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from harness.errors import InputError
from reports.txn_view import cycle_svg, describe_record, meaning

__all__ = [
    "ELLE_DIR",
    "MAX_DRAWINGS",
    "MAX_KINDS_NAMED",
    "MAX_KIND_FILES",
    "MORE_FILE",
    "elle_links",
    "file_name",
    "links_in",
    "write_elle_dir",
    "write_elle_files",
]

#: The directory of Elle's files in a run directory.
ELLE_DIR = "elle"
#: Most cycle drawings written per anomaly type.
MAX_DRAWINGS = 100
#: Most anomaly kinds given a text file (and drawings); :data:`MORE_FILE` counts the rest.
MAX_KIND_FILES = 100
#: The file saying which kinds got no file past :data:`MAX_KIND_FILES` (no kind's file is
#: named so: :func:`file_name` strips a leading ``_``).
MORE_FILE = "_more.txt"
#: Kinds named in :data:`MORE_FILE` (it counts them all).
MAX_KINDS_NAMED = 1_000
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_OURS = {".txt", ".svg"}


def file_name(kind: str) -> str:
    """The file name (without extension) of anomaly ``kind``'s Elle files."""
    return _SAFE.sub("_", kind).strip("._") or "anomaly"


def _details(res: Any) -> dict[str, Any] | None:
    if not isinstance(res, dict):
        return None
    for d in (res, res.get("details")):
        if isinstance(d, dict) and isinstance(d.get("anomaly_details"), dict):
            return d
    return None


def _instance_text(kind: str, i: int, rec: dict[str, Any]) -> str:
    if "cycle" in rec and rec.get("explanation"):
        return str(rec["explanation"])
    return (
        f"{kind} #{i}\n{describe_record(kind, rec)}\n"
        f"record: {json.dumps(rec, default=repr, sort_keys=True)}"
    )


def write_elle_files(run_dir: str | Path, results: dict[str, Any] | None) -> list[Path]:
    """Write ``elle/<anomaly>.txt`` (every instance explained, as Elle does) and
    ``elle/<anomaly>/<n>.svg`` (the drawable cycles) for every transactional checker in
    ``results`` (a ``results.json`` dict) into ``run_dir``; an earlier ``elle/`` is
    replaced. Returns the files written (none, and no directory, for a run without
    transactional anomalies)."""
    return write_elle_dir(Path(run_dir) / ELLE_DIR, results)


def write_elle_dir(out_dir: str | Path, results: dict[str, Any] | None) -> list[Path]:
    """As :func:`write_elle_files`, into ``out_dir`` itself (replaced if it exists).
    :class:`~harness.errors.InputError` if ``out_dir`` holds anything but Elle's files
    (``.txt`` and ``.svg``): clew does not delete what it did not write."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink():
        out_dir.unlink()  # (a link planted in a foreign run: clew writes its own directory)
    if out_dir.is_dir():
        foreign = [p for p in out_dir.rglob("*") if p.is_file() and p.suffix not in _OURS]
        if foreign:
            raise InputError(
                f"{out_dir}: not replaced, it holds files clew did not write "
                f"(e.g. {foreign[0].name}); move them, or write the report elsewhere"
            )
        shutil.rmtree(out_dir)
    checkers = (results or {}).get("checkers")
    if not isinstance(checkers, dict):
        return []
    by_kind = _records_by_kind(checkers)
    kinds = sorted(k for k, recs in by_kind.items() if recs)
    written: list[Path] = []
    for kind in kinds[:MAX_KIND_FILES]:
        out_dir.mkdir(parents=True, exist_ok=True)
        written.extend(_write_kind(out_dir, kind, by_kind[kind]))
    if len(kinds) > MAX_KIND_FILES:
        written.append(_write_more(out_dir, kinds[MAX_KIND_FILES:]))
    return written


def _records_by_kind(checkers: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every transactional checker's anomaly records, by kind."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for res in checkers.values():
        d = _details(res)
        if d is None:
            continue
        for kind, recs in d["anomaly_details"].items():
            if isinstance(recs, list):
                by_kind.setdefault(str(kind), []).extend(r for r in recs if isinstance(r, dict))
    return by_kind


def _write_kind(out_dir: Path, kind: str, recs: list[dict[str, Any]]) -> list[Path]:
    """``<kind>.txt`` (every instance explained) and at most :data:`MAX_DRAWINGS` cycle
    drawings ``<kind>/<n>.svg`` in ``out_dir``; returns the files written."""
    name = file_name(kind)
    txt = out_dir / f"{name}.txt"
    with txt.open("w", encoding="utf-8") as fh:  # an instance at a time: they add up
        fh.write(f"{kind}: {meaning(kind)}\n{len(recs)} instance(s)\n\n")
        for i, r in enumerate(recs):
            fh.write(("\n\n" if i else "") + _instance_text(kind, i, r))
        fh.write("\n")
    written = [txt]
    drawn = 0
    for i, rec in enumerate(recs):
        if drawn >= MAX_DRAWINGS:
            break
        svg = cycle_svg(rec) if "cycle" in rec else None
        if svg is None:
            continue
        (out_dir / name).mkdir(exist_ok=True)
        path = out_dir / name / f"{i}.svg"
        path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n' + str(svg) + "\n")
        written.append(path)
        drawn += 1
    return written


def _write_more(out_dir: Path, rest: list[str]) -> Path:
    """:data:`MORE_FILE` in ``out_dir``: how many kinds with instances got no file, and
    the first :data:`MAX_KINDS_NAMED` of them."""
    path = out_dir / MORE_FILE
    named = rest[:MAX_KINDS_NAMED]
    with path.open("w", encoding="utf-8") as fh:
        fh.write(
            f"{len(rest)} more anomaly kind(s) with instances have no file here (at most "
            f"{MAX_KIND_FILES} kinds get one); results.json holds them all.\n"
        )
        if len(named) < len(rest):
            fh.write(f"showing {len(named)} of {len(rest)}:\n")
        fh.writelines(f"{k}\n" for k in named)
    return path


def elle_links(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The Elle files present in ``run_dir``, by anomaly file name: ``{"txt": href,
    "drawings": n, "dir": href}`` (hrefs relative to the run directory)."""
    return links_in(Path(run_dir) / ELLE_DIR, f"{ELLE_DIR}/")


def links_in(out_dir: str | Path, href: str) -> dict[str, dict[str, Any]]:
    """As :func:`elle_links`, for the Elle files in ``out_dir``, reached at ``href`` (a
    relative URL ending in ``/``) from the page."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return {}
    links: dict[str, dict[str, Any]] = {}
    for txt in sorted(out_dir.glob("*.txt")):
        if txt.name == MORE_FILE:
            continue
        sub = out_dir / txt.stem
        n = len(list(sub.glob("*.svg"))) if sub.is_dir() else 0
        links[txt.stem] = {
            "txt": f"{href}{txt.name}",
            "drawings": n,
            "dir": f"{href}{txt.stem}/" if n else None,
        }
    return links
