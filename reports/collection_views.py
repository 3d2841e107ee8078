"""Views of the collection checkers' results for a run's page: the bank total over time,
the set-full per-element table, the lock holds timeline.

:func:`collection_views` reads the results of :mod:`checkers.collections` checkers (by
their ``checker`` name) and returns what ``_collections.html.j2`` shows. The drawings are
inline SVG made here, in Python — no script and nothing fetched, so the report's
Content-Security-Policy is untouched; every text in them is escaped. Fault windows (on the
page's time axis, seconds) are drawn as grey bands behind the data.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape

__all__ = [
    "MAX_BANK_POINTS",
    "MAX_ELEMENT_ROWS_SHOWN",
    "MAX_ERROR_ROWS",
    "MAX_HOLDS_DRAWN",
    "MAX_HOLD_ROWS",
    "MAX_PAIR_ROWS",
    "MAX_UNEXPECTED_SHOWN",
    "MAX_VALUE_CHARS",
    "collection_views",
]

#: Rows of the set-full element table shown on the page (results.json keeps more).
MAX_ELEMENT_ROWS_SHOWN = 500
#: Reads drawn in the bank chart: the wrong totals first (up to half, sampled evenly if
#: more), then the right ones sampled evenly; the page says how many of how many.
MAX_BANK_POINTS = 2_000
#: Rows of the bank checker's error summary (one per kind of error).
MAX_ERROR_ROWS = 50
#: Set-full elements read but never added that are listed.
MAX_UNEXPECTED_SHOWN = 200
#: Longest text of one such element (cut with "…").
MAX_VALUE_CHARS = 200
#: Processes drawn in the lock timeline.
MAX_HOLD_ROWS = 60
#: Holds drawn in the lock timeline (the overlapping ones first; the page says how many).
MAX_HOLDS_DRAWN = 2_000
#: Rows of overlapping lock holds listed (results.json keeps them all).
MAX_PAIR_ROWS = 200

_W, _H, _PAD_L, _PAD_R, _PAD_T, _PAD_B = 900, 240, 56, 12, 14, 30
_FAULT_FILL = "#d9d9d9"
_OK, _BAD = "#1f5fa8", "#c62828"

ToX = Callable[[int], float]


def _scale(lo: float, hi: float, a: float, b: float) -> Callable[[float], float]:
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _bands(
    faults: list[dict[str, Any]],
    sx: Callable[[float], float],
    top: float,
    bottom: float,
    x0: float,
    x1: float,
) -> list[str]:
    out = []
    for w in faults:
        start, stop = w.get("start"), w.get("stop")
        if not isinstance(start, int | float):
            continue
        stop = stop if isinstance(stop, int | float) else None
        a = max(x0, sx(float(start)))
        b = min(x1, sx(float(stop))) if stop is not None else x1
        if b <= a:
            continue
        label = escape(str(w.get("f", "fault")))
        out.append(
            f'<rect x="{a:.1f}" y="{top:.1f}" width="{b - a:.1f}" height="{bottom - top:.1f}" '
            f'fill="{_FAULT_FILL}" opacity="0.6"><title>{label}</title></rect>'
            f'<text x="{a + 2:.1f}" y="{top + 10:.1f}" font-size="9" fill="#555">{label}</text>'
        )
    return out


def _axis(sx: Callable[[float], float], lo: float, hi: float, y: float, unit: str) -> list[str]:
    out = [f'<line x1="{_PAD_L}" y1="{y}" x2="{_W - _PAD_R}" y2="{y}" stroke="#888"/>']
    for k in range(6):
        v = lo + (hi - lo) * k / 5
        x = sx(v)
        out.append(
            f'<text x="{x:.1f}" y="{y + 14}" font-size="10" text-anchor="middle">{v:.1f}</text>'
        )
    out.append(
        f'<text x="{_W - _PAD_R}" y="{y + 26}" font-size="10" text-anchor="end">'
        f"{escape(unit)}</text>"
    )
    return out


def _even(indices: list[int], k: int) -> list[int]:
    """At most ``k`` of ``indices``, evenly spread (the first and last kept)."""
    if len(indices) <= k:
        return indices
    if k <= 1:
        return indices[:k]
    n = len(indices) - 1
    return [indices[round(j * n / (k - 1))] for j in range(k)]


def _drawn_points(points: list[tuple[float, Any, Any]], expected: Any) -> list[int]:
    """Indices of the bank reads drawn, in order: at most :data:`MAX_BANK_POINTS`, the
    wrong totals first (up to half of them, evenly spread if more), then right ones."""
    if len(points) <= MAX_BANK_POINTS:
        return list(range(len(points)))
    checked = isinstance(expected, int | float)
    wrong = [i for i, p in enumerate(points) if checked and p[1] != expected]
    right = [i for i, p in enumerate(points) if not (checked and p[1] != expected)]
    wrong = _even(wrong, max(MAX_BANK_POINTS // 2, MAX_BANK_POINTS - len(right)))
    return sorted(wrong + _even(right, MAX_BANK_POINTS - len(wrong)))


def _bank_summary(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The first :data:`MAX_ERROR_ROWS` rows of the bank checker's error summary."""
    errors = res.get("errors") or {}
    return [
        {"type": k, "count": v.get("count"), "first": v.get("first", {}).get("index")}
        for k, v in itertools.islice(errors.items(), MAX_ERROR_ROWS)
    ]


def _bank_view(
    res: dict[str, Any], to_x: ToX, faults: list[dict[str, Any]], unit: str
) -> dict[str, Any]:
    points = [(to_x(int(t)), total, idx) for t, total, idx in res.get("totals") or []]
    expected = res.get("total")
    view: dict[str, Any] = {
        "kind": "bank",
        "title": "Bank total over time",
        "svg": None,
        "summary": _bank_summary(res),
        "total_errors": len(res.get("errors") or {}),
        "expected": expected,
        "reads": 0,
        "wrong": 0,
        "drawn": 0,
        "points": len(points),
    }
    if not points:
        return view
    xs = [p[0] for p in points]
    ys = [p[1] for p in points] + ([expected] if isinstance(expected, int | float) else [])
    xlo, xhi = (
        min(xs + [w["start"] for w in faults if isinstance(w.get("start"), int | float)]),
        max(xs),
    )
    ylo, yhi = min(ys), max(ys)
    if ylo == yhi:
        ylo, yhi = ylo - 1, yhi + 1
    sx = _scale(xlo, xhi, _PAD_L, _W - _PAD_R)
    sy = _scale(ylo, yhi, _H - _PAD_B, _PAD_T)
    parts = _bands(faults, sx, _PAD_T, _H - _PAD_B, _PAD_L, _W - _PAD_R)
    if isinstance(expected, int | float):
        y = sy(expected)
        parts.append(
            f'<line x1="{_PAD_L}" y1="{y:.1f}" x2="{_W - _PAD_R}" y2="{y:.1f}" '
            f'stroke="#2e7d32" stroke-dasharray="4 3"><title>expected total '
            f"{escape(str(expected))}</title></line>"
        )
    for v in (ylo, yhi):
        parts.append(
            f'<text x="{_PAD_L - 4}" y="{sy(v) + 3:.1f}" font-size="10" '
            f'text-anchor="end">{escape(str(v))}</text>'
        )
    drawn = [points[i] for i in _drawn_points(points, expected)]
    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in drawn)
    parts.append(f'<polyline points="{path}" fill="none" stroke="{_OK}" stroke-width="1"/>')
    for x, y, idx in drawn:
        bad = isinstance(expected, int | float) and y != expected
        parts.append(
            f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{3 if bad else 1.6}" '
            f'fill="{_BAD if bad else _OK}"><title>op {escape(str(idx))}: total {escape(str(y))}'
            f"</title></circle>"
        )
    parts += _axis(sx, xlo, xhi, _H - _PAD_B, unit)
    view["svg"] = Markup(
        f'<svg class="coll-chart" viewBox="0 0 {_W} {_H}" width="100%" role="img" '
        f'aria-label="bank total over time">{"".join(parts)}</svg>'
    )
    view["wrong"] = sum(
        1 for _, y, _ in points if isinstance(expected, int | float) and y != expected
    )
    view["reads"] = res.get("read_count")
    view["drawn"] = len(drawn)
    return view


def _clip(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """``text``, cut to at most ``limit`` characters (the last one "…" if cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _set_full_view(res: dict[str, Any]) -> dict[str, Any]:
    rows = list(res.get("elements") or [])
    unexpected = list(res.get("unexpected") or [])
    counts = {
        k: res.get(f"{k}_count")
        for k in ("attempt", "stable", "lost", "never_read", "stale", "duplicated", "unexpected")
    }
    return {
        "kind": "set-full",
        "title": "Set-full: every element",
        "rows": rows[:MAX_ELEMENT_ROWS_SHOWN],
        "total_rows": len(rows),
        "counts": counts,
        "stable_latencies": res.get("stable_latencies"),
        "lost_latencies": res.get("lost_latencies"),
        "unexpected": [_clip(str(x)) for x in unexpected[:MAX_UNEXPECTED_SHOWN]],
        "total_unexpected": len(unexpected),
    }


def _hold_rows(holds: list[Any]) -> dict[Any, int]:
    """The row of each of the first :data:`MAX_HOLD_ROWS` processes holding the lock, in
    the order they first hold it."""
    rows: dict[Any, int] = {}
    for h in holds:
        if len(rows) >= MAX_HOLD_ROWS:
            break
        rows.setdefault(h[0], len(rows))
    return rows


def _drawn_holds(holds: list[Any], rows: dict[Any, int], bad: set[tuple[Any, Any]]) -> list[int]:
    """Indices of the holds drawn: of the processes with a row, at most
    :data:`MAX_HOLDS_DRAWN`, the overlapping ones first, in order."""
    mine = [i for i, h in enumerate(holds) if h[0] in rows]
    first = [i for i in mine if (holds[i][0], holds[i][1]) in bad][:MAX_HOLDS_DRAWN]
    rest = [i for i in mine if (holds[i][0], holds[i][1]) not in bad]
    return sorted(first + rest[: MAX_HOLDS_DRAWN - len(first)])


def _lock_view(
    res: dict[str, Any], to_x: ToX, faults: list[dict[str, Any]], unit: str
) -> dict[str, Any]:
    holds = res.get("holds") or []
    pairs = res.get("overlaps") or []
    overlap_starts = {(h[0], h[1]) for h in (o for pair in pairs for o in pair)}
    rows = _hold_rows(holds)
    view: dict[str, Any] = {
        "kind": "lock",
        "title": "Lock holds",
        "svg": None,
        "holds": len(holds),
        "drawn": 0,
        "overlaps": res.get("overlap_count", 0),
        "pairs": pairs[:MAX_PAIR_ROWS],
        "total_pairs": len(pairs),
    }
    if not holds:
        return view
    spans = [(to_x(int(h[3])), to_x(int(h[4]))) for h in holds]
    xlo = min(
        [a for a, _ in spans]
        + [w["start"] for w in faults if isinstance(w.get("start"), int | float)]
    )
    xhi = max(b for _, b in spans)
    row_h = 14
    height = _PAD_T + row_h * len(rows) + _PAD_B
    sx = _scale(xlo, xhi, _PAD_L, _W - _PAD_R)
    parts = _bands(faults, sx, _PAD_T, height - _PAD_B, _PAD_L, _W - _PAD_R)
    for p, i in rows.items():
        y = _PAD_T + i * row_h
        parts.append(
            f'<text x="{_PAD_L - 4}" y="{y + 10}" font-size="10" text-anchor="end">'
            f"p{escape(str(p))}</text>"
        )
    drawn = _drawn_holds(holds, rows, overlap_starts)
    for k in drawn:
        h, (a, b) = holds[k], spans[k]
        y = _PAD_T + rows[h[0]] * row_h + 2
        bad = (h[0], h[1]) in overlap_starts
        end = "never released" if h[2] is None else f"release invoked at op {escape(str(h[2]))}"
        parts.append(
            f'<rect x="{sx(a):.1f}" y="{y}" width="{max(1.5, sx(b) - sx(a)):.1f}" '
            f'height="{row_h - 4}" fill="{_BAD if bad else _OK}"><title>process '
            f"{escape(str(h[0]))}: acquired at op {escape(str(h[1]))}, {end}</title></rect>"
        )
    parts += _axis(sx, xlo, xhi, height - _PAD_B, unit)
    view["drawn"] = len(drawn)
    view["svg"] = Markup(
        f'<svg class="coll-chart" viewBox="0 0 {_W} {height}" width="100%" '
        f'role="img" aria-label="lock holds">{"".join(parts)}</svg>'
    )
    return view


def collection_views(
    checkers: dict[str, Any],
    *,
    to_x: ToX | None = None,
    faults: list[dict[str, Any]] | None = None,
    unit: str = "s",
) -> list[dict[str, Any]]:
    """The views of every bank, set-full and lock result in ``checkers`` (name -> result
    dict), in that order. ``to_x`` maps a history time to the page's x axis (default:
    nanoseconds to seconds); ``faults`` are the page's fault windows on that axis."""
    if to_x is None:

        def to_x(t: int) -> float:
            return t / 1e9

    windows = list(faults or [])
    out = []
    for res in checkers.values():
        if not isinstance(res, dict):
            continue
        kind = res.get("checker")
        try:
            if kind == "bank":
                out.append(_bank_view(res, to_x, windows, unit))
            elif kind == "set-full":
                out.append(_set_full_view(res))
            elif kind == "lock":
                out.append(_lock_view(res, to_x, windows, unit))
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError):
            continue  # a damaged results.json: the page shows the result's JSON, not a view
    return out
