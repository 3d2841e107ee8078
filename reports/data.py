"""The data behind a report, computed from a columnar :class:`~harness.history.History`.

Everything here is vectorised over the history's numpy columns, so a million-op history
costs a few hundred milliseconds, and every series handed to the page is **capped**: the
browser gets at most :data:`MAX_LATENCY_POINTS` latency points, :data:`THROUGHPUT_BUCKETS`
throughput buckets and :data:`MAX_TIMELINE_OPS` timeline bars, whatever the history's size.
When a cap applies, the payload says how many were shown of how many, and the page says so.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.history import FAIL, INFO, INVOKE, OK, History
from harness.record import fault_windows as record_fault_windows

__all__ = [
    "MAX_LATENCY_POINTS",
    "MAX_TIMELINE_OPS",
    "MAX_VALUE_CHARS",
    "THROUGHPUT_BUCKETS",
    "TimeAxis",
    "fault_windows",
    "latency_series",
    "nemesis_records",
    "op_counts",
    "short_json",
    "throughput_series",
    "time_axis",
    "timeline",
]

#: Most latency points drawn (failed and indeterminate ops are kept first, then a sample of ok).
MAX_LATENCY_POINTS = 20_000
#: Buckets of the throughput chart.
THROUGHPUT_BUCKETS = 400
#: Most ops drawn on the timeline.
MAX_TIMELINE_OPS = 2_000
#: Longest value text put in the page for one op; longer ones are abbreviated.
MAX_VALUE_CHARS = 200


def short_json(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """``value`` as compact JSON text, abbreviated in the middle beyond ``limit`` chars."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) <= limit:
        return text
    keep = limit // 2 - 2
    return f"{text[:keep]}…{text[-keep:]} ({len(text)} chars)"


class TimeAxis:
    """How history times map to the x axis: seconds since the first op, or, for histories
    without real times (their times are just positions), op positions."""

    def __init__(self, history: History) -> None:
        t = history.time
        n = len(t)
        self.positions = bool(n == 0 or np.array_equal(t, np.arange(n, dtype=t.dtype)))
        self.origin = int(t.min()) if n else 0
        self.scale = 1.0 if self.positions else 1e-9
        self.unit = "op position" if self.positions else "s"

    def x(self, times: npt.NDArray[Any] | int) -> Any:
        """``times`` (history time units) on the axis."""
        return (np.asarray(times, dtype=np.float64) - self.origin) * self.scale

    def describe(self) -> dict[str, Any]:
        """The axis as JSON for the page."""
        return {"unit": self.unit, "positions": self.positions}


def time_axis(history: History) -> TimeAxis:
    """The :class:`TimeAxis` of ``history``."""
    return TimeAxis(history)


def _client_pairs(history: History) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Positions of client invocations and of their completions (-1 for none)."""
    inv = np.flatnonzero((history.type == INVOKE) & (history.process >= 0))
    return inv, history.pair[inv]


def op_counts(history: History) -> dict[str, Any]:
    """Counts of client ops: ``by_type`` (invoke, ok, fail, info, pending) and ``by_f``
    (one row per ``f``: its completions by type, and pending invocations)."""
    inv, comp = _client_pairs(history)
    done = comp >= 0
    ctype = history.type[comp[done]].astype(np.int64)
    nf = len(history.f_names)
    by_type = np.bincount(ctype, minlength=4)
    pending = int((~done).sum())
    grid = np.bincount(history.f[inv[done]].astype(np.int64) * 4 + ctype, minlength=4 * nf)
    grid = grid.reshape(nf, 4)
    pend_f = np.bincount(history.f[inv[~done]].astype(np.int64), minlength=nf)
    rows: list[dict[str, Any]] = [
        {
            "f": history.f_names[k],
            "ok": int(grid[k, OK]),
            "fail": int(grid[k, FAIL]),
            "info": int(grid[k, INFO]),
            "pending": int(pend_f[k]),
            "total": int(grid[k].sum() + pend_f[k]),
        }
        for k in range(nf)
        if grid[k].sum() + pend_f[k] > 0
    ]
    rows.sort(key=lambda r: -r["total"])
    nemesis = int((history.process < 0).sum())
    return {
        "entries": len(history),
        "invocations": len(inv),
        "by_type": {
            "ok": int(by_type[OK]),
            "fail": int(by_type[FAIL]),
            "info": int(by_type[INFO]),
            "pending": pending,
        },
        "by_f": rows,
        "nemesis_entries": nemesis,
    }


def latency_series(
    history: History, axis: TimeAxis, cap: int = MAX_LATENCY_POINTS
) -> dict[str, Any]:
    """Latency of every completed client op at its invocation time, by outcome.

    Returns ``{"x": [...], "ok": [...], "fail": [...], "info": [...], "shown", "total"}``:
    one shared, sorted x column (uPlot's layout) and, per outcome, the latency in ms or
    ``None`` where a point belongs to another outcome. Above ``cap`` points, all fail and info
    ops are kept first (up to half the cap), and ok ops are sampled evenly.
    """
    inv, comp = _client_pairs(history)
    done = comp >= 0
    inv, comp = inv[done], comp[done]
    total = len(inv)
    kind = history.type[comp]
    if total > cap:
        bad = np.flatnonzero(kind != OK)
        good = np.flatnonzero(kind == OK)
        if len(bad) > cap // 2:
            bad = bad[np.linspace(0, len(bad) - 1, cap // 2).astype(np.int64)]
        room = cap - len(bad)
        if len(good) > room:
            good = good[np.linspace(0, len(good) - 1, room).astype(np.int64)]
        keep = np.sort(np.concatenate([bad, good]))
        inv, comp, kind = inv[keep], comp[keep], kind[keep]
    x = axis.x(history.time[inv])
    lat = (history.time[comp] - history.time[inv]).astype(np.float64)
    lat = lat if axis.positions else lat / 1e6  # ns -> ms
    order = np.argsort(x, kind="stable")
    x, lat, kind = x[order], lat[order], kind[order]
    out: dict[str, Any] = {
        "x": np.round(x, 6).tolist(),
        "shown": len(x),
        "total": total,
        "unit": "ops" if axis.positions else "ms",
    }
    lat = np.round(lat, 4)
    for code, name in ((OK, "ok"), (FAIL, "fail"), (INFO, "info")):
        col = np.where(kind == code, lat, np.nan)
        out[name] = [None if v != v else v for v in col.tolist()]
    return out


def throughput_series(
    history: History, axis: TimeAxis, buckets: int = THROUGHPUT_BUCKETS
) -> dict[str, Any]:
    """Completed client ops per second (per op for position-only histories) in equal time
    buckets, by outcome: ``{"x": bucket starts, "ok", "fail", "info", "width"}``."""
    _, comp = _client_pairs(history)
    comp = comp[comp >= 0]
    if len(comp) == 0:
        return {"x": [], "ok": [], "fail": [], "info": [], "width": 0}
    x = axis.x(history.time[comp])
    lo, hi = float(x.min()), float(x.max())
    span = max(hi - lo, 1e-9)
    nb = int(max(1, min(buckets, len(comp) // 2 or 1)))
    width = span / nb
    b = np.minimum(((x - lo) / width).astype(np.int64), nb - 1)
    kind = history.type[comp].astype(np.int64)
    grid = np.bincount(b * 4 + kind, minlength=nb * 4).reshape(nb, 4)
    rate = 1.0 / width
    out: dict[str, Any] = {"x": np.round(lo + np.arange(nb) * width, 6).tolist(), "width": width}
    for code, name in ((OK, "ok"), (FAIL, "fail"), (INFO, "info")):
        out[name] = np.round(grid[:, code] * rate, 3).tolist()
    return out


def timeline(
    history: History, axis: TimeAxis, cap: int = MAX_TIMELINE_OPS, centre: int | None = None
) -> dict[str, Any]:
    """Client ops as bars per process: ``{"ops": [[lane, start, end, kind, f, value,
    output, index], ...], "lanes": [process labels], "shown", "total", "from", "to"}``.

    ``kind`` is 0 ok, 1 fail, 2 info, 3 pending (no completion; drawn to the end). Above
    ``cap`` ops, a contiguous window of ``cap`` invocations is shown: around history
    position ``centre`` (e.g. where a checker got stuck), or the first ``cap``.
    """
    inv, comp = _client_pairs(history)
    total = len(inv)
    lo = 0
    if total > cap:
        if centre is not None:
            at = int(np.searchsorted(inv, centre))
            lo = max(0, min(total - cap, at - cap // 2))
        inv, comp = inv[lo : lo + cap], comp[lo : lo + cap]
    end_time = int(history.time.max()) if len(history) else 0
    done = comp >= 0
    start = axis.x(history.time[inv])
    end = axis.x(np.where(done, history.time[np.where(done, comp, 0)], end_time))
    kind = np.full(len(inv), 3, dtype=np.int64)
    ctype = history.type[comp[done]]
    kind[done] = np.select([ctype == OK, ctype == FAIL], [0, 1], 2)
    procs = history.process[inv]
    lanes_p = np.unique(procs)
    lane = np.searchsorted(lanes_p, procs)
    values = history.values
    ops = []
    for k in range(len(inv)):
        i = int(inv[k])
        j = int(comp[k])
        ops.append(
            [
                int(lane[k]),
                round(float(start[k]), 6),
                round(float(end[k]), 6),
                int(kind[k]),
                history.f_names[history.f[i]],
                short_json(values[history.value[i]]),
                short_json(values[history.value[j]]) if j >= 0 else None,
                int(history.index[i]),
            ]
        )
    return {
        "ops": ops,
        "lanes": [history.process_label(int(inv[np.flatnonzero(procs == p)[0]])) for p in lanes_p],
        "shown": len(ops),
        "total": total,
        "from": lo,
    }


def fault_windows(
    records: list[dict[str, Any]], axis: TimeAxis, end_time: int | None
) -> list[dict[str, Any]]:
    """Fault windows of fault ledger records (or of records made from a history's nemesis
    ops), paired by the record's one rule (:func:`harness.record.fault_windows`), on the
    page's time axis: ``{"f": kind, "value", "start", "stop", "open"}``; a window still
    open at the end runs to ``end_time``."""
    out = []
    for w in record_fault_windows(r for r in records if isinstance(r, dict)):
        stop = w.stop if w.stop is not None else end_time
        out.append(
            {
                "f": w.kind,
                "value": short_json(w.value),
                "start": round(float(axis.x(w.start)), 6),
                "stop": None if stop is None else round(float(axis.x(int(stop))), 6),
                "open": w.stop is None,
            }
        )
    return out


def nemesis_records(history: History) -> list[dict[str, Any]]:
    """Fault ledger records derived from the nemesis's ops in the history (for runs with no
    ``faults.jsonl``): completions of ``start…`` / ``stop…`` ops."""
    pos = np.flatnonzero((history.process < 0) & (history.type != INVOKE))
    out = []
    for i in pos.tolist():
        f = history.f_names[history.f[i]]
        phase = "start" if f.startswith("start") else "stop" if f.startswith("stop") else None
        out.append({"time": int(history.time[i]), "phase": phase, "f": f,
                    "value": history.value_of(i)})  # fmt: skip
    return out
