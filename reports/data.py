"""The data behind a report, computed from a columnar :class:`~harness.history.History`.

Everything here is vectorised over the history's numpy columns, so a million-op history
costs a few hundred milliseconds, and every series handed to the page is **capped**: the
browser gets at most :data:`MAX_LATENCY_POINTS` latency points, :data:`THROUGHPUT_BUCKETS`
throughput buckets and :data:`QUANTILE_BUCKETS` quantile buckets, whatever the history's
size. (Every op, for the timeline, goes as compact columns: :mod:`reports.columns`.)
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
    "MAX_VALUE_CHARS",
    "QUANTILES",
    "QUANTILE_BUCKETS",
    "THROUGHPUT_BUCKETS",
    "TimeAxis",
    "fault_windows",
    "latency_quantiles",
    "latency_series",
    "nemesis_records",
    "op_counts",
    "short_json",
    "throughput_series",
    "time_axis",
]

#: Most latency points drawn (failed and indeterminate ops are kept first, then a sample of ok).
MAX_LATENCY_POINTS = 20_000
#: Buckets of the throughput chart.
THROUGHPUT_BUCKETS = 400
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


def fault_windows(
    records: list[dict[str, Any]], axis: TimeAxis, end_time: int | None
) -> list[dict[str, Any]]:
    """Fault windows of fault ledger records (or of records made from a history's nemesis
    ops), paired by the record's one rule (:func:`harness.record.fault_windows`), on the
    page's time axis: ``{"f": kind, "value", "start", "stop", "open"}``; a window still
    open at the end runs to ``end_time``."""
    out = []
    # Records that name no fault (the scheduler's bookkeeping) are not faults acting.
    named = (r for r in records if isinstance(r, dict) and (r.get("kind") or r.get("f")))
    for w in record_fault_windows(named):
        stop = w.stop if w.stop is not None else end_time
        out.append(
            {
                "f": w.kind,
                "targets": list(w.targets),
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


#: Time buckets of the latency quantile chart.
QUANTILE_BUCKETS = 120
#: The latency quantiles drawn over time (Jepsen's quantiles plot).
QUANTILES = (0.5, 0.95, 0.99)


def latency_quantiles(
    history: History, axis: TimeAxis, buckets: int = QUANTILE_BUCKETS
) -> dict[str, Any]:
    """Latency quantiles (:data:`QUANTILES`) of completed client ops over time, for all ops
    and per ``f``: ``{"x": bucket centres, "unit", "quantiles": [0.5, ...], "series": [{"f":
    "all" | name, "q": [[p50 per bucket], [p95 ...], ...]}]}``; a bucket without ops of an
    ``f`` is ``None``. Latency in ms (ops for position-only histories), by invocation time.
    Vectorised: a plain integer sort per group, whatever the history's size."""
    inv, comp = _client_pairs(history)
    done = comp >= 0
    inv, comp = inv[done], comp[done]
    if len(inv) == 0:
        return {"x": [], "unit": "ms", "quantiles": list(QUANTILES), "series": []}
    x = axis.x(history.time[inv])
    lat = history.time[comp] - history.time[inv]  # integers: exact, and one key with the bucket
    lo, hi = float(x.min()), float(x.max())
    nb = int(max(1, min(buckets, len(inv) // 20 or 1)))
    width = max(hi - lo, 1e-9) / nb
    b = np.minimum(((x - lo) / width).astype(np.int64), nb - 1)
    # Sorting (bucket, latency) as one int64 key (a plain sort, not a lexsort of two).
    base = min(int(lat.min()), 0)
    span = int(lat.max()) - base + 1
    if nb * span >= 2**62:  # absurd latencies: two keys
        order = np.lexsort((lat, b))
        keyed = None
    else:
        keyed = b * span + (lat - base)
    fs = history.f[inv]
    groups: list[tuple[str, npt.NDArray[np.bool_] | None]] = [("all", None)]
    groups += [(history.f_names[k], fs == k) for k in np.unique(fs).tolist()]
    series = []
    for name, mask in groups:
        if keyed is not None:
            gk = np.sort(keyed if mask is None else keyed[mask])
            gb, gl = gk // span, gk % span + base
        else:
            sel = order if mask is None else order[mask[order]]
            gb, gl = b[sel], lat[sel]
        starts = np.searchsorted(gb, np.arange(nb), side="left")
        ends = np.searchsorted(gb, np.arange(nb), side="right")
        count = ends - starts
        qs = []
        for q in QUANTILES:
            pos = starts + np.floor(q * np.maximum(count - 1, 0)).astype(np.int64)
            picked = gl[np.minimum(pos, len(gl) - 1)].astype(np.float64)
            vals = np.round(picked if axis.positions else picked / 1e6, 3)
            pairs = zip(count.tolist(), vals.tolist(), strict=True)
            qs.append([None if c == 0 else float(v) for c, v in pairs])
        series.append({"f": name, "q": qs})
    return {
        "x": np.round(lo + (np.arange(nb) + 0.5) * width, 6).tolist(),
        "unit": "ops" if axis.positions else "ms",
        "quantiles": list(QUANTILES),
        "series": series,
    }
