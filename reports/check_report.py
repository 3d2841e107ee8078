"""A self-contained HTML page for the results of ``clew check --report OUT``.

One file, CSS, JavaScript and data inlined, nothing fetched from the network. With one
history, the page is a full report (summary, latency and throughput over time, timeline,
and for an invalid history the interactive linearizability failure view). With several, it
is a table of verdicts followed by a failure view for each invalid history.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from reports.render import render
from reports.run_report import PREFIX_TAIL, build_page, find_failures
from reports.txn_view import edge_legend, find_anomalies

__all__ = ["render_check_report", "write_check_report"]


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


def _single(e: dict[str, Any], title: str) -> str:
    from harness.errors import ClewError
    from harness.formats import read_history

    path = str(e.get("file", ""))
    history, problem = None, e.get("error")
    if not problem:
        try:
            history = read_history(path)
        except (ClewError, OSError) as err:
            problem = str(err)
    name = f"linearizable ({e['model']})" if e.get("model") else "linearizable"
    if e.get("consistency") is not None:
        name = f"txn ({e.get('model')})"
    ctx = build_page(
        history,
        title=f"{title}: {Path(path).name}",
        results={"valid": e.get("valid"), "checkers": {name: _checker(e)}},
        history_error=problem,
        reproduce=[(f"clew check {shlex.quote(path)}", "check this history again")],
    )
    ctx["facts"].insert(0, ("file", path))
    return render("run.html.j2", **ctx)


def render_check_report(entries: list[dict[str, Any]], *, title: str = "clew check") -> str:
    """The HTML of a report over ``entries`` (one per file, as ``clew check --json`` prints
    them, plus ``counterexample`` for invalid files)."""
    if len(entries) == 1:
        return _single(entries[0], title)
    counts = {"valid": 0, "invalid": 0, "unknown": 0, "error": 0}
    rows = []
    failures: list[dict[str, Any]] = []
    anomalies: list[dict[str, Any]] = []
    for e in entries:
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
            anomalies.extend(find_anomalies({str(e.get("file", "?")): _checker(e)}))
    return render(
        "check.html.j2",
        title=title,
        entries=rows,
        counts=counts,
        failures=failures,
        anomalies=anomalies,
        edge_legend=edge_legend(),
        prefix_tail=PREFIX_TAIL,
        payload={"failures": failures},
    )


def write_check_report(path: str | Path, entries: list[dict[str, Any]]) -> None:
    """Write the report to ``path`` (parent directories are created)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_check_report(entries), encoding="utf-8")
