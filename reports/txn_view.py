"""The transactional anomalies of a checker result, for a page: words and drawn cycles.

:func:`find_anomalies` turns the results of :func:`checkers.txn.check` (``anomaly_details``
in a checker's result, or in its ``details``) into what the templates show: per anomaly
type, a one-line meaning, and per instance the checker's explanation ("T1 < T2 because
…") and, for a dependency cycle, a small drawing of it (:func:`cycle_svg`).

The drawing is inline SVG made here, in Python — no script, nothing fetched, so the
report's Content-Security-Policy (``default-src 'none'``) is untouched. Every piece of
text in it comes from history data (keys, values, explanations) and is escaped.
"""

from __future__ import annotations

import json
import math
from typing import Any

from markupsafe import Markup, escape

__all__ = [
    "ANOMALY_MEANINGS",
    "MAX_CYCLE_DRAWN",
    "MAX_KINDS_SHOWN",
    "MAX_SHOWN_PER_TYPE",
    "MAX_STEPS_SHOWN",
    "MAX_STEP_CHARS",
    "cycle_svg",
    "describe_record",
    "edge_legend",
    "find_anomalies",
    "meaning",
]

#: Instances shown per anomaly type (results.json keeps all the checker kept).
MAX_SHOWN_PER_TYPE = 8
#: Longest cycle (in transactions) drawn; longer ones are explained in words only.
MAX_CYCLE_DRAWN = 12
#: Longest text of one record shown as JSON, and of one cycle's explanation.
MAX_RECORD_CHARS = 2_000
#: Anomaly kinds shown per checker (the page says how many more results.json has).
MAX_KINDS_SHOWN = 100
#: Steps kept per cycle shown (a cycle drawn has at most :data:`MAX_CYCLE_DRAWN`).
MAX_STEPS_SHOWN = 100
#: Longest text of one step of a cycle, and of one transaction's line in a drawing.
MAX_STEP_CHARS = 500

#: One line per anomaly type: what it means, for a person.
ANOMALY_MEANINGS = {
    "G0": "write cycle: transactions overwrote each other's appends in a circle (dirty write)",
    "G1a": "aborted read: a committed read saw a write of a transaction that failed",
    "G1b": "intermediate read: a read saw a value that its writer later overwrote",
    "G1c": "circular information flow: transactions each saw the other's writes",
    "G-single": "read skew: a cycle with exactly one anti-dependency (a missed write)",
    "G-nonadjacent": "a cycle with several anti-dependencies, no two adjacent",
    "G2": "a cycle with adjacent anti-dependencies: each transaction missed another's "
    "write (write skew)",
    "internal": "a transaction's read disagrees with its own earlier reads or writes",
    "future-read": "a transaction read a value it only wrote later",
    "lost-update": "transactions read the same version of a key and all wrote it: "
    "one of the updates was made without seeing the other",
    "dirty-update": "a committed write followed a failed one in a key's order",
    "duplicate-elements": "one read returned the same element twice",
    "incompatible-order": "two reads of a key disagree on the order of its elements",
    "garbage-read": "a read returned a value nobody wrote",
}

_EDGE_COLOURS = {
    "ww": "#1f5fa8",
    "wr": "#2a8a3a",
    "rw": "#c0392b",
    "process": "#6d6d6d",
    "realtime": "#7b4fa6",
}
_EDGE_WORDS = {
    "ww": "write → write",
    "wr": "write → read",
    "rw": "read → write (anti-dependency)",
    "process": "same process, in order",
    "realtime": "completed before invoked",
}
_NODE_R = 17.0
_PAD = 46.0


def meaning(name: str) -> str:
    """What anomaly ``name`` means (its base kind's meaning for ``-item``, ``-process``
    and ``-realtime`` variants)."""
    base = name
    suffix = []
    for part, words in (("-realtime", "ordered by real time"),
                        ("-process", "ordered by each process"),
                        ("-item", "on single keys")):  # fmt: skip
        if base.endswith(part):
            base = base.removesuffix(part)
            suffix.append(words)
    text = ANOMALY_MEANINGS.get(base, "an anomaly the checker reports")
    return text + (f" ({', '.join(reversed(suffix))})" if suffix else "")


def _clip(text: str, limit: int) -> str:
    """``text``, cut to at most ``limit`` characters (the last one "…" if cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(x: Any) -> str:
    return json.dumps(x, default=repr) if not isinstance(x, str) else repr(x)


def _read_value(mop: Any) -> Any:
    """The value of a read mop ``["r", key, value]`` (the mop itself if it is not one)."""
    return mop[2] if isinstance(mop, list | tuple) and len(mop) == 3 else mop


def _internal(rec: dict[str, Any], key: str) -> str:
    """An internal anomaly: the read, the transaction's earlier read and what it expected."""
    op = rec.get("op")
    if "mop" not in rec and "read" in rec:  # rw-register: a read after its own read/write
        return (f"transaction #{op} read key {key} as {_fmt(rec.get('read'))}, but its own "
                f"earlier read or write of that key left {_fmt(rec.get('expected'))}: it "
                f"expected {_fmt(rec.get('expected'))}")  # fmt: skip
    text = f"transaction #{op} read key {key} as {_fmt(_read_value(rec.get('mop')))}"
    if rec.get("earlier") is not None and isinstance(rec.get("expected"), list):
        before = list(_read_value(rec["earlier"]) or [])
        since = rec["expected"][len(before) :]
        then = f" and since appended {_fmt(since)}" if since else ""
        return (f"{text}, but earlier in the same transaction it read {_fmt(before)}{then}: "
                f"it expected {_fmt(rec['expected'])}")  # fmt: skip
    if rec.get("expected_suffix"):
        return (f"{text}, but it had appended {_fmt(rec['expected_suffix'])} to that key itself "
                "(with no read before): it expected a list ending with "
                f"{_fmt(rec['expected_suffix'])}")  # fmt: skip
    return f"{text}, which disagrees with its own earlier reads and appends of that key"


def describe_record(kind: str, rec: dict[str, Any]) -> str:
    """A sentence for a non-cycle anomaly record (op numbers are history indices)."""
    key = _fmt(rec.get("key"))
    if kind == "lost-update":
        ops = ", ".join(f"#{o}" for o in rec.get("ops", []))
        return (f"transactions {ops} all read key {key} as {_fmt(rec.get('value'))} and all "
                "appended to it: each update was made without seeing the others")  # fmt: skip
    if kind == "internal":
        return _internal(rec, key)
    if kind == "future-read":
        return (f"transaction #{rec.get('op')} read {_fmt(rec.get('mop'))} of key {key}, "
                "containing an element it appended only later")  # fmt: skip
    if kind in ("G1a", "G1b"):
        what = "failed transaction" if kind == "G1a" else "transaction (not its final append)"
        return (f"transaction #{rec.get('op')} read element {_fmt(rec.get('element'))} of key "
                f"{key}, written by {what} #{rec.get('writer')}")  # fmt: skip
    if kind == "dirty-update":
        return (f"on key {key}, committed #{rec.get('committed')} appended right after failed "
                f"#{rec.get('failed')} (elements {_fmt(rec.get('elements'))})")  # fmt: skip
    if kind == "duplicate-elements":
        return (f"transaction #{rec.get('op')} read key {key} as {_fmt(rec.get('value'))}, "
                f"with {_fmt(rec.get('duplicates'))} more than once")  # fmt: skip
    if kind == "incompatible-order":
        vals = rec.get("values") or []
        return (f"reads of key {key} disagree: "
                + " vs ".join(_fmt(v) for v in vals[:2]))  # fmt: skip
    if kind == "garbage-read":
        return (f"transaction #{rec.get('op')} read element {_fmt(rec.get('element'))} of key "
                f"{key}, which nobody appended")  # fmt: skip
    return _clip(json.dumps(rec, default=repr), MAX_RECORD_CHARS)


def _names(rec: dict[str, Any]) -> tuple[list[int], dict[int, str], dict[str, str]]:
    """The cycle's distinct ops (history indices) in order, their names T1.., and the
    "Let:" lines of the explanation by name."""
    cycle = [int(x) for x in rec.get("cycle") or [] if isinstance(x, int)]
    if len(cycle) > 1 and cycle[0] == cycle[-1]:
        cycle = cycle[:-1]
    order = list(dict.fromkeys(cycle))
    names = {op: f"T{i + 1}" for i, op in enumerate(order)}
    lets: dict[str, str] = {}
    for line in str(rec.get("explanation", "")).splitlines():
        head, sep, rest = line.strip().partition(" = ")
        if sep and head.startswith("T") and head[1:].isdigit():
            lets[head] = rest
    return cycle, names, lets


def cycle_svg(rec: dict[str, Any]) -> Markup | None:
    """An inline ``<svg>`` of the cycle in ``rec`` (a cycle record of :mod:`checkers.txn`):
    one circle per transaction, named T1, T2, … as in the explanation and labelled with its
    history index, and one arrow per step coloured by kind (ww, wr, rw, process, realtime)
    with the key; hovering shows the step's sentence. ``None`` if the record has no cycle
    or the cycle is longer than :data:`MAX_CYCLE_DRAWN`."""
    cycle, names, lets = _names(rec)
    steps = [s for s in rec.get("steps") or [] if isinstance(s, dict)]
    order = list(names)
    if len(order) < 2 or len(order) > MAX_CYCLE_DRAWN:
        return None
    n = len(order)
    radius = max(62.0, n * 26.0)
    size = 2 * (radius + _PAD)
    c = size / 2
    start = math.pi if n == 2 else -math.pi / 2
    pos = {
        op: (c + radius * math.cos(start + 2 * math.pi * i / n),
             c + radius * math.sin(start + 2 * math.pi * i / n))
        for i, op in enumerate(order)
    }  # fmt: skip
    parts: list[str] = []
    label = f"{rec.get('type', 'cycle')}: " + " → ".join(names[op] for op in [*cycle, cycle[0]])
    for i, a in enumerate(cycle):
        b = cycle[(i + 1) % len(cycle)]
        if a == b:
            continue
        step = steps[i] if i < len(steps) else {}
        parts.append(_edge(pos[a], pos[b], step, names[a], names[b]))
    for op in order:
        x, y = pos[op]
        title = f"{names[op]} = {lets[names[op]]}" if names[op] in lets else f"{names[op]}: #{op}"
        title = _clip(title, MAX_STEP_CHARS)
        parts.append(
            f'<g class="txn-node"><title>{escape(title)}</title>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{_NODE_R:.0f}" fill="#fff" '
            f'stroke="#333" stroke-width="1.5"/>'
            f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="12" '
            f'font-weight="bold">{escape(names[op])}</text>'
            f'<text x="{x:.1f}" y="{y + _NODE_R + 13:.1f}" text-anchor="middle" '
            f'font-size="10" fill="#555" stroke="#fff" stroke-width="3" paint-order="stroke">'
            f"#{escape(str(op))}</text></g>"
        )
    return Markup(
        f'<svg class="txn-cycle" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{size:.0f}" height="{size:.0f}" viewBox="0 0 {size:.0f} {size:.0f}" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>' + "".join(parts) + "</svg>"
    )


def _edge(p: tuple[float, float], q: tuple[float, float], step: dict[str, Any],
          a: str, b: str) -> str:  # fmt: skip
    """One arrow from ``p`` to ``q``, bending to its left (outwards on a clockwise cycle;
    two arrows between the same pair bend apart)."""
    kind = str(step.get("type", "?"))
    colour = _EDGE_COLOURS.get(kind, "#333")
    (x0, y0), (x1, y1) = p, q
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy) or 1.0
    nx, ny = dy / length, -dx / length  # left of the direction, in screen coordinates
    bend = 0.22 * length
    cx, cy = (x0 + x1) / 2 + nx * bend, (y0 + y1) / 2 + ny * bend
    sx, sy = _towards((x0, y0), (cx, cy), _NODE_R)
    ex, ey = _towards((x1, y1), (cx, cy), _NODE_R + 1)
    tx, ty = ex - cx, ey - cy  # the curve's direction at its end
    tl = math.hypot(tx, ty) or 1.0
    ux, uy = tx / tl, ty / tl
    head = (f"{ex:.1f},{ey:.1f} {ex - 9 * ux - 4.5 * uy:.1f},{ey - 9 * uy + 4.5 * ux:.1f} "
            f"{ex - 9 * ux + 4.5 * uy:.1f},{ey - 9 * uy - 4.5 * ux:.1f}")  # fmt: skip
    mx, my = 0.25 * x0 + 0.5 * cx + 0.25 * x1, 0.25 * y0 + 0.5 * cy + 0.25 * y1
    lx, ly = mx + nx * 11, my + ny * 11 + 4
    key = step.get("key")
    text = kind if key is None else f"{kind} {_short(key)}"
    sentence = _clip(str(step.get("text") or f"{a} precedes {b} by {kind}"), MAX_STEP_CHARS)
    dash = ' stroke-dasharray="5 3"' if kind == "rw" else ""
    return (
        f'<g class="txn-edge txn-{escape(kind)}"><title>{escape(f"{a} → {b}: {sentence}")}'
        f"</title>"
        f'<path d="M{sx:.1f},{sy:.1f} Q{cx:.1f},{cy:.1f} {ex:.1f},{ey:.1f}" fill="none" '
        f'stroke="{colour}" stroke-width="1.8"{dash}/>'
        f'<polygon points="{head}" fill="{colour}"/>'
        f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle" font-size="11" '
        f'fill="{colour}" stroke="#fff" stroke-width="3" paint-order="stroke">'
        f"{escape(text)}</text></g>"
    )


def _towards(p: tuple[float, float], q: tuple[float, float], d: float) -> tuple[float, float]:
    """The point ``d`` from ``p`` in the direction of ``q``."""
    dx, dy = q[0] - p[0], q[1] - p[1]
    length = math.hypot(dx, dy) or 1.0
    return p[0] + dx / length * d, p[1] + dy / length * d


def _short(key: Any, limit: int = 16) -> str:
    text = key if isinstance(key, str) else json.dumps(key, default=repr)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _txn_result(res: Any) -> dict[str, Any] | None:
    """The part of a checker result holding ``anomaly_details``, if any."""
    if not isinstance(res, dict):
        return None
    if isinstance(res.get("anomaly_details"), dict):
        return res
    details = res.get("details")
    if isinstance(details, dict) and isinstance(details.get("anomaly_details"), dict):
        return details
    return None


def _kinds(d: dict[str, Any]) -> tuple[list[str], set[str]]:
    """The anomaly kinds with details in ``d``, each once: those in ``anomalies`` (the
    ones ruling out the checked model) first, in their order; and the set of those."""
    details = d["anomaly_details"]
    named = d.get("anomalies") or []
    relevant = dict.fromkeys(a for a in named if isinstance(a, str) and a in details)
    others = [str(a) for a in details if a not in relevant]
    return [*relevant, *others], set(relevant)


def _shown_record(kind: str, i: int, rec: dict[str, Any]) -> dict[str, Any]:
    """Instance ``i`` of ``kind`` as the page shows it: a cycle's explanation (at most
    :data:`MAX_RECORD_CHARS`), its first :data:`MAX_STEPS_SHOWN` steps' text (each at most
    :data:`MAX_STEP_CHARS`) and drawing; another anomaly's sentence."""
    if "steps" in rec and "cycle" in rec:
        steps = rec["steps"] if isinstance(rec["steps"], list) else []
        return {
            "number": i,
            "cycle": True,
            "explanation": _clip(str(rec.get("explanation", "")), MAX_RECORD_CHARS),
            "steps": [_clip(str(s.get("text", "")), MAX_STEP_CHARS)
                      for s in steps[:MAX_STEPS_SHOWN] if isinstance(s, dict)],
            "svg": cycle_svg(rec),
        }  # fmt: skip
    return {"number": i, "cycle": False, "explanation": describe_record(kind, rec),
            "steps": [], "svg": None}  # fmt: skip


def find_anomalies(checkers: dict[str, Any]) -> list[dict[str, Any]]:
    """Per transactional checker result with anomalies: its name, model, consistency,
    models ruled out, and per anomaly type (those that rule out the checked model first;
    each once, at most :data:`MAX_KINDS_SHOWN`, ``more_kinds`` counting the rest) its
    meaning, count and up to :data:`MAX_SHOWN_PER_TYPE` instances, each with its
    explanation, steps and drawing (cycles) or sentence (other anomalies), their text
    capped (:data:`MAX_RECORD_CHARS`, :data:`MAX_STEP_CHARS`)."""
    out = []
    for name, res in checkers.items():
        d = _txn_result(res)
        if d is None or not d["anomaly_details"]:
            continue
        kinds, relevant = _kinds(d)
        counts = d.get("anomaly_counts") or {}
        types = []
        for kind in kinds[:MAX_KINDS_SHOWN]:
            recs = d["anomaly_details"].get(kind) or []
            recs = [r for r in recs if isinstance(r, dict)] if isinstance(recs, list) else []
            types.append({
                "type": kind,
                "relevant": kind in relevant,
                "meaning": meaning(kind),
                "count": int(counts.get(kind, len(recs))),
                "shown": [_shown_record(kind, i, r)
                          for i, r in enumerate(recs[:MAX_SHOWN_PER_TYPE])],
            })  # fmt: skip
        out.append({
            "checker": name,
            "model": d.get("model"),
            "consistency": d.get("consistency"),
            "not": list(d.get("not") or []),
            "types": types,
            "kinds": len(kinds),
            "more_kinds": len(kinds) - len(types),
        })  # fmt: skip
    return out


def edge_legend() -> list[dict[str, str]]:
    """The arrow kinds of the drawings, with their colours, for a legend."""
    return [{"kind": k, "colour": _EDGE_COLOURS[k], "words": w} for k, w in _EDGE_WORDS.items()]
