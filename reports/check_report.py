"""A self-contained HTML page for the results of ``clew check --report OUT``.

One file, CSS inlined, nothing fetched from the network. For each history: the verdict and
its reason; for an invalid one, the end of the longest linearizable prefix (with the state
after every op) and the ops that could not follow it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["render_check_report", "write_check_report"]

#: Linearized ops shown before the point where the search got stuck.
PREFIX_TAIL = 25

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("reports", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)


def render_check_report(entries: list[dict[str, Any]], *, title: str = "clew check") -> str:
    """The HTML of a report over ``entries`` (one per file, as ``clew check --json`` prints
    them, plus ``counterexample`` for invalid files)."""
    counts = {"valid": 0, "invalid": 0, "unknown": 0, "error": 0}
    for e in entries:
        v = e.get("valid")
        counts[{True: "valid", False: "invalid", "unknown": "unknown"}.get(v, "error")] += 1
    return _ENV.get_template("check.html.j2").render(
        title=title,
        entries=entries,
        counts=counts,
        prefix_tail=PREFIX_TAIL,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


def write_check_report(path: str | Path, entries: list[dict[str, Any]]) -> None:
    """Write the report to ``path`` (parent directories are created)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_check_report(entries), encoding="utf-8")
