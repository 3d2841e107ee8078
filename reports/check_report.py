"""A self-contained HTML page for the results of ``clew check --report OUT``.

One file, CSS, JavaScript and data inlined, nothing fetched from the network. With one
history, the page is a full report (summary, latency and throughput over time, timeline,
and for an invalid history the interactive linearizability failure view). With several, it
is a table of verdicts followed by a failure view for each invalid history.

Transactional anomalies also get Elle's files beside the page, as a run's report does
(:mod:`reports.elle_files`): ``elle/<anomaly>.txt`` and ``elle/<anomaly>/<n>.svg`` for one
history, ``elle/<history file>/<anomaly>.txt`` … for several; the page links to them.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from reports.elle_files import ELLE_DIR, file_name, links_in, write_elle_dir
from reports.render import render
from reports.run_report import PREFIX_TAIL, build_page, find_failures
from reports.txn_view import edge_legend, find_anomalies

__all__ = ["render_check_report", "write_check_elle_files", "write_check_report"]

#: Elle's file links of each entry (by position), as :func:`reports.elle_files.links_in`.
ElleLinks = list[dict[str, dict[str, Any]]]


def _checker(e: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = {"valid": e.get("valid"), "cause": e.get("cause") or e.get("error")}
    for k in ("model", "ops", "key_groups", "seconds"):
        if e.get(k) is not None:
            res[k] = e[k]
    if e.get("counterexample") is not None:
        res["counterexample"] = e["counterexample"]
    for k in ("consistency", "anomalies", "also_found", "anomaly_counts", "anomaly_details",
              "not"):  # fmt: skip
        if e.get(k) is not None:  # a transactional check (see reports.txn_view)
            res[k] = e[k]
    return res


def _checker_name(e: dict[str, Any]) -> str:
    name = f"linearizable ({e['model']})" if e.get("model") else "linearizable"
    return f"txn ({e.get('model')})" if e.get("consistency") is not None else name


def _single(e: dict[str, Any], title: str, elle: dict[str, dict[str, Any]]) -> str:
    from harness.errors import ClewError
    from harness.formats import read_history

    path = str(e.get("file", ""))
    history, problem = None, e.get("error")
    if not problem:
        try:
            history = read_history(path)
        except (ClewError, OSError) as err:
            problem = str(err)
    name = _checker_name(e)
    ctx = build_page(
        history,
        title=f"{title}: {Path(path).name}",
        results={"valid": e.get("valid"), "checkers": {name: _checker(e)}},
        history_error=problem,
        reproduce=[(f"clew check {shlex.quote(path)}", "check this history again")],
    )
    ctx["facts"].insert(0, ("file", path))
    ctx["elle"] = elle
    return render("run.html.j2", **ctx)


def render_check_report(
    entries: list[dict[str, Any]], *, title: str = "clew check", elle: ElleLinks | None = None
) -> str:
    """The HTML of a report over ``entries`` (one per file, as ``clew check --json`` prints
    them, plus ``counterexample`` for invalid files); ``elle``: links to each entry's Elle
    files (:func:`write_check_elle_files`), if written."""
    links = elle if elle is not None else [{} for _ in entries]
    if len(entries) == 1:
        return _single(entries[0], title, links[0])
    counts = {"valid": 0, "invalid": 0, "unknown": 0, "error": 0}
    rows = []
    failures: list[dict[str, Any]] = []
    anomalies: list[dict[str, Any]] = []
    for e, e_links in zip(entries, links, strict=True):
        v = e.get("valid")
        counts[{True: "valid", False: "invalid", "unknown": "unknown"}.get(v, "error")] += 1
        found = find_failures({str(e.get("file", "?")): _checker(e)}) if v is False else []
        rows.append(
            {
                "file": e.get("file", "?"),
                "model": e.get("model"),
                "valid": v,
                "error": e.get("error"),
                "cause": e.get("cause"),
                "ops": e.get("ops", ""),
                "key_groups": e.get("key_groups", ""),
                "seconds": e.get("seconds"),
                "failure": len(failures) if found else None,
            }
        )
        failures.extend(found)
        if v is False:
            groups = find_anomalies({str(e.get("file", "?")): _checker(e)})
            anomalies.extend({**g, "elle": e_links} for g in groups)
    return render(
        "check.html.j2",
        title=title,
        entries=rows,
        counts=counts,
        failures=failures,
        anomalies=anomalies,
        edge_legend=edge_legend(),
        elle_name=file_name,
        prefix_tail=PREFIX_TAIL,
        payload={"failures": failures},
    )


def write_check_elle_files(out_dir: str | Path, entries: list[dict[str, Any]]) -> ElleLinks:
    """Write Elle's files of the entries' transactional anomalies under ``out_dir/elle/``
    (replaced if it exists): for one entry ``elle/<anomaly>.txt`` and its cycle drawings,
    for several ``elle/<history file name>/…`` per entry with anomalies. Returns each
    entry's links, relative to ``out_dir``."""
    base = Path(out_dir) / ELLE_DIR
    if len(entries) == 1:
        write_elle_dir(base, {"checkers": {_checker_name(entries[0]): _checker(entries[0])}})
        return [links_in(base, f"{ELLE_DIR}/")]
    write_elle_dir(base, None)  # clears an earlier one
    links: ElleLinks = []
    taken: set[str] = set()
    for e in entries:
        stem = file_name(Path(str(e.get("file", "history"))).name)
        sub, n = stem, 1
        while sub in taken:  # two files of one name, from different directories
            n += 1
            sub = f"{stem}-{n}"
        taken.add(sub)
        written = write_elle_dir(base / sub, {"checkers": {_checker_name(e): _checker(e)}})
        links.append(links_in(base / sub, f"{ELLE_DIR}/{sub}/") if written else {})
    return links


def write_check_report(path: str | Path, entries: list[dict[str, Any]]) -> list[Path]:
    """Write the report to ``path`` (parent directories are created) and Elle's files of
    any transactional anomalies beside it (:func:`write_check_elle_files`). Returns the
    Elle directories written (none without transactional anomalies)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    elle = write_check_elle_files(out.parent, entries)
    out.write_text(render_check_report(entries, elle=elle), encoding="utf-8")
    base = out.parent / ELLE_DIR
    return [base] if base.is_dir() else []
