"""Campaigns compared side by side: one page, per experiment (the same bug, run shape and
budget), a curve per scheduler of the share of its campaigns that had found the bug by
each run, and the table of :mod:`harness.campaign_table` (medians, campaigns that found
nothing, the one-sided U test against ``random``, detections per run).

The campaigns come from ``clew campaign`` directories (``campaign.json``; a directory
holding campaigns is searched) or from ``bench/bugs.py`` results files (a JSON list of
campaign rows). A campaign that found nothing stays at the cap in the curves, as in the
table: a curve is the share of *all* the cell's campaigns found by run k.
"""

from __future__ import annotations

import bisect
import html
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.campaign_table import (
    Cell,
    campaign_fields,
    cells,
    check_row,
    claim,
    label_rows,
    labelled_path,
    read_rows,
)
from harness.errors import InputError
from harness.record import read_record_text
from reports.data import options_text

__all__ = ["campaign_rows", "found_by_run", "write_comparison"]

#: Colours of the schedulers' curves, in the order they first appear.
COLOURS = ("#7f8c8d", "#c0392b", "#2471a3", "#27ae60", "#8e44ad", "#d68910")


def campaign_rows(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """The campaign rows of ``paths``: each a results file of ``bench/bugs.py`` (a JSON list
    of rows), a ``campaign.json``, or a directory searched for ``campaign.json`` files. A
    campaign of ``clew campaign`` is named by its suite, workload and options (its
    experiment hash added where two experiments would share a name). A path given as
    ``LABEL=PATH`` has its schedulers named ``scheduler (LABEL)``: its campaigns are cells
    of their own, not pooled with another path's of the same scheduler.
    :class:`InputError` naming a path that holds none, or a file that is neither."""
    rows: list[dict[str, Any]] = []
    seen: set[Path] = set()

    def once(files: list[Path]) -> list[Path]:
        return [claim(f, seen) for f in files]

    for arg in paths:
        label, path = labelled_path(arg)
        if path.is_dir():
            found = _campaign_files(path)
            if not found:
                raise InputError(f"{path}: no campaign here (no campaign.json below it)")
            rows.extend(label_rows((_campaign_row(p) for p in once(found)), label))
        elif path.name == "campaign.json":
            rows.extend(label_rows([_campaign_row(p) for p in once([path])], label))
        elif path.is_file():
            rows.extend(label_rows(read_rows(once([path])), label))
        else:
            raise InputError(f"{path}: no such file or directory")
    return _unique_names(rows)


def _campaign_files(root: Path) -> list[Path]:
    """The ``campaign.json`` files below ``root``, not descending into any ``runs/`` (a
    campaign's runs hold no campaign, and a store's runs are most of its files)."""
    found = []
    for where, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "runs")
        if "campaign.json" in files:
            found.append(Path(where) / "campaign.json")
    return sorted(found)


def _campaign_row(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_record_text(path))
        config = data["config"]
        base = f"{config.get('suite')}-{config.get('workload') or 'default'}"
        options = options_text(config.get("options") or {}, sep=" ")
        row = {
            "bug": f"{base} {options}".strip(), "depth": None,
            "scheduler": str(config.get("scheduler") or "random"),
            **campaign_fields(data), "campaign": str(path.parent),
        }  # fmt: skip
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except InputError:
        raise  # (it names the file and says why)
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError) as e:
        raise InputError(f"{path}: not a campaign.json of clew campaign ({e})") from None
    return check_row(row, str(path))


def _unique_names(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Campaigns of different experiments under one name get their experiment hash added."""
    hashes: dict[str, set[Any]] = {}
    for r in rows:
        if "campaign" in r:
            hashes.setdefault(r["bug"], set()).add(r.get("experiment_hash"))
    return [{**r, "bug": f"{r['bug']} [{r.get('experiment_hash')}]"}
            if "campaign" in r and len(hashes[r["bug"]]) > 1 else r for r in rows]  # fmt: skip


def found_by_run(cell: Cell) -> list[float]:
    """The share of ``cell``'s campaigns that had found the bug by run 0, 1, …, cap."""
    n = max(1, cell.campaigns)
    # a campaign that found nothing counts at the cap, no earlier than any detection
    detected = sorted(cell.capped_runs)[: cell.campaigns - cell.not_found]
    return [bisect.bisect_right(detected, k) / n for k in range(cell.cap + 1)]


def _plot(bug: str, group: Sequence[Cell], colours: dict[str, str]) -> str:
    w, h, left, pad, legend = 700, 240, 44, 30, 220
    right = w - legend  # the plot's right edge; the legend to its right
    cap = max(c.cap for c in group) or 1

    def xy(k: float, share: float) -> tuple[float, float]:
        return left + (right - left) * k / cap, h - pad - (h - 2 * pad) * share

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="share of campaigns that found {html.escape(bug)} by each run">',
        f'<line x1="{left}" y1="{h - pad}" x2="{right}" y2="{h - pad}" stroke="#888"/>',
        f'<line x1="{left}" y1="{pad}" x2="{left}" y2="{h - pad}" stroke="#888"/>',
        f'<text x="{(right + left) / 2}" y="{h - 6}" text-anchor="middle" font-size="12">'
        f"runs (cap {cap})</text>",
        f'<text x="4" y="{pad - 10}" font-size="12">share of campaigns that found it</text>',
    ]
    for share in (0.5, 1.0):
        _, y = xy(0, share)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" '
                     f'stroke="#ddd"/><text x="{left - 4}" y="{y + 4:.1f}" font-size="11" '
                     f'text-anchor="end">{share:g}</text>')  # fmt: skip
    for i, c in enumerate(group):
        shares = found_by_run(c)
        # A step curve, level until the run that changes it: points only where it steps
        # (a cap of 100,000 runs made 200,002 points a curve, for a handful of steps).
        points = [xy(0, shares[0])]
        for k in range(1, len(shares)):
            if shares[k] != shares[k - 1]:
                points += [xy(k, shares[k - 1]), xy(k, shares[k])]
        points.append(xy(len(shares) - 1, shares[-1]))
        d = " ".join(f"{'M' if j == 0 else 'L'}{x:.1f},{y:.1f}" for j, (x, y) in
                     enumerate(points))  # fmt: skip
        colour = colours[c.scheduler]
        parts.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"/>')
        label = (f"{c.scheduler} ({_count(c.campaigns, 'campaign')}, "
                 f"{c.campaigns - c.not_found} found)")  # fmt: skip
        parts.append(f'<text x="{right + 12}" y="{pad + 16 * (i + 1)}" font-size="12" '
                     f'fill="{colour}">{html.escape(label)}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _table(group: Sequence[Cell]) -> str:
    e = html.escape
    head = ("<tr><th>scheduler</th><th>campaigns</th><th>not found (cap)</th>"
            "<th>runs to detection</th><th>seconds</th><th>fault ops</th>"
            "<th>one-sided U vs random, p</th><th>detections per run</th></tr>")  # fmt: skip
    rows = "".join(
        f"<tr><td>{e(c.scheduler)}</td><td>{c.campaigns}</td><td>{c.not_found} ({c.cap})</td>"
        f"<td>{e(c.runs.show())}</td><td>{e(c.seconds.show())}</td>"
        f"<td>{e(c.fault_ops.show())}</td>"
        f"<td>{'-' if c.p_vs_random is None else f'{c.p_vs_random:.3g}'}</td>"
        f"<td>{c.found_per_run:.3f}</td></tr>"
        for c in group
    )
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def write_comparison(rows: Sequence[dict[str, Any]], out: str | Path) -> Path:
    """Write the comparison page of ``rows`` (see the module) to ``out``; its path."""
    if not rows:
        raise InputError("no campaigns to compare")
    table = cells(rows)
    colours: dict[str, str] = {}
    for c in table:
        colours.setdefault(c.scheduler, COLOURS[len(colours) % len(COLOURS)])
    by_bug: dict[str, list[Cell]] = {}
    for c in table:
        by_bug.setdefault(c.bug, []).append(c)
    e = html.escape
    sections = "".join(
        f"<section><h2>{e(bug)}{'' if group[0].depth is None else f' (depth {group[0].depth})'}"
        f"</h2>{_plot(bug, group, colours)}{_table(group)}</section>"
        for bug, group in by_bug.items()
    )
    title = f"{_count(len(rows), 'campaign')}, {_count(len(by_bug), 'experiment')}"
    page = f"""<!doctype html>
<html lang="en" data-rendered="ok" data-errors="0"><head><meta charset="utf-8">
<title>clew: campaigns compared</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 8px;text-align:left}}
section{{margin-bottom:2em}}</style></head>
<body><h1>Campaigns compared: {title}</h1>
<p>Per experiment, the share of each scheduler's campaigns that had found the bug by each
run (a campaign that found nothing stays at the cap), and the table: medians [quartiles]
with campaigns that found nothing counted at the cap, a one-sided Mann-Whitney U test
against random, and the campaigns that found it over the runs spent.</p>
{sections}</body></html>
"""
    path = Path(out)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as err:
        raise InputError(f"{path}: cannot write the comparison: {err.strerror}") from None
    return path
