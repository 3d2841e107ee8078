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
import math
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
    "TIME_UNITS",
    "TimeAxis",
    "duration_text",
    "fault_windows",
    "latency_quantiles",
    "latency_series",
    "nemesis_record_count",
    "nemesis_records",
    "op_counts",
    "options_text",
    "short_json",
    "throughput_series",
    "time_axis",
    "time_unit",
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


#: Units of time the page can use, largest first: (name, nanoseconds in one).
TIME_UNITS: tuple[tuple[str, float], ...] = (("s", 1e9), ("ms", 1e6), ("µs", 1e3), ("ns", 1.0))


def time_unit(span_ns: float) -> tuple[str, float]:
    """The largest of :data:`TIME_UNITS` in which ``span_ns`` nanoseconds is at least one
    (``("ns", 1.0)`` for spans under a nanosecond): numbers on the page stay readable
    whether a history spans hours or a few nanoseconds."""
    for name, ns in TIME_UNITS:
        if span_ns >= ns:
            return name, ns
    return TIME_UNITS[-1]


def options_text(options: dict[str, Any], sep: str = ", ") -> str:
    """Suite options as a person gives them with ``-o``, sorted by name:
    ``serializable_reads=true, threads=4`` (not Python's ``True``); a list or a table as
    compact JSON."""

    def value(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), default=str)

    return sep.join(f"{k}={value(v)}" for k, v in sorted(options.items()))


def duration_text(seconds: float | None) -> str:
    """A duration for people: "23 ns", "4.5 ms" below a second (:func:`time_unit`),
    "12.3 s" below two minutes, then "4m 05s" and "1h 02m 03s"; "—" for None, and the
    number as it is when it is not finite (a damaged results.json's Infinity)."""
    if seconds is None:
        return "—"
    if not math.isfinite(seconds):
        return f"{seconds} s"
    if seconds < 1:
        name, ns = time_unit(seconds * 1e9)
        return f"{seconds * 1e9 / ns:.3g} {name}"
    if seconds < 120:
        return f"{seconds:.1f} s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


class TimeAxis:
    """How history times map to the page's axes.

    x: time since the first op in the unit that fits the history's span (:func:`time_unit`:
    s, ms, µs or ns). Histories without real times — their ops carried none (the times are
    just positions) or all carry the same one — are drawn against op positions instead,
    and :attr:`no_times` says why. :attr:`times` holds what the page places each history
    entry by: its time, or its position. Latencies are shown in the unit that fits the
    median completed client op's latency (``positions`` without real times)."""

    def __init__(self, history: History) -> None:
        t = history.time
        n = len(t)
        self.origin = int(t.min()) if n else 0
        span = int(t.max()) - self.origin if n else 0
        #: Why the history has no real times (None when it has them).
        self.no_times: str | None = None
        if n == 0:
            self.no_times = "it is empty"
        elif np.array_equal(t, np.arange(n, dtype=t.dtype)):
            self.no_times = "its ops carry no times"
        elif span == 0:
            self.no_times = f"every op carries the same time ({self.origin})"
        self.positions = self.no_times is not None
        #: Per history entry, where the page places it (history time units or positions).
        self.times: npt.NDArray[np.int64] = t
        if self.positions:
            self.origin = 0
            self.times = np.arange(n, dtype=np.int64)
            self.unit, self.ns_per_unit = "position", 1.0
        else:
            self.unit, self.ns_per_unit = time_unit(span)
        self.scale = 1.0 / self.ns_per_unit
        self.latency_unit, self.ns_per_latency_unit = (
            ("positions", 1.0) if self.positions else time_unit(_median_latency(history))
        )

    def x(self, times: npt.NDArray[Any] | int) -> Any:
        """``times`` (history time units) on the axis."""
        return (np.asarray(times, dtype=np.float64) - self.origin) * self.scale

    def latency(self, durations: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """``durations`` (history time units) in :attr:`latency_unit`."""
        return np.asarray(durations, dtype=np.float64) / self.ns_per_latency_unit

    @property
    def label(self) -> str:
        """The x axis's label, unit included."""
        return "history position" if self.positions else f"time since the first op ({self.unit})"

    def describe(self) -> dict[str, Any]:
        """The axis as JSON for the page."""
        return {
            "unit": self.unit,
            "positions": self.positions,
            "no_times": self.no_times,
            "label": self.label,
            "ns_per_unit": self.ns_per_unit,
            "latency_unit": self.latency_unit,
            "ns_per_latency_unit": self.ns_per_latency_unit,
        }


def time_axis(history: History) -> TimeAxis:
    """The :class:`TimeAxis` of ``history``."""
    return TimeAxis(history)


def _median_latency(history: History) -> float:
    """The median latency of completed client ops (history time units; 0 if none)."""
    inv, comp = _client_pairs(history)
    done = comp >= 0
    if not done.any():
        return 0.0
    return float(np.median(history.time[comp[done]] - history.time[inv[done]]))


def _latencies(axis: TimeAxis, inv: npt.NDArray[np.int64], comp: npt.NDArray[np.int64]) -> Any:
    """Integer latencies (history time units, or positions) of completed ops."""
    return axis.times[comp] - axis.times[inv]


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


def _median(values: npt.NDArray[Any]) -> float | None:
    return float(np.median(values)) if len(values) else None


def _sig(value: float | None, digits: int = 4) -> float | None:
    """``value`` rounded to ``digits`` significant digits (None stays None)."""
    if value is None or value == 0 or not np.isfinite(value):
        return value
    return round(value, digits - 1 - int(np.floor(np.log10(abs(value)))))


def latency_series(
    history: History, axis: TimeAxis, cap: int = MAX_LATENCY_POINTS
) -> dict[str, Any]:
    """Latency of every completed client op at its invocation time, by outcome.

    Returns ``{"x": [...], "ok": [...], "fail": [...], "info": [...], "shown", "total",
    "unit", "summary"}``: one shared, sorted x column (uPlot's layout) and, per outcome, the
    latency in ``unit`` (:attr:`TimeAxis.latency_unit`) or ``None`` where a point belongs to
    another outcome. Above ``cap`` points, all fail and info ops are kept first (up to half
    the cap), and ok ops are sampled evenly. ``summary`` (for the legend) gives, per
    outcome, ``{"count", "median"}`` over every completed op, sampled or not.
    """
    inv, comp = _client_pairs(history)
    done = comp >= 0
    inv, comp = inv[done], comp[done]
    total = len(inv)
    kind = history.type[comp]
    every = axis.latency(_latencies(axis, inv, comp))
    summary = {
        name: {"count": int((kind == code).sum()), "median": _sig(_median(every[kind == code]))}
        for code, name in ((OK, "ok"), (FAIL, "fail"), (INFO, "info"))
    }
    if total > cap:
        bad = np.flatnonzero(kind != OK)
        good = np.flatnonzero(kind == OK)
        if len(bad) > cap // 2:
            bad = bad[np.linspace(0, len(bad) - 1, cap // 2).astype(np.int64)]
        room = cap - len(bad)
        if len(good) > room:
            good = good[np.linspace(0, len(good) - 1, room).astype(np.int64)]
        keep = np.sort(np.concatenate([bad, good]))
        inv, comp, kind, every = inv[keep], comp[keep], kind[keep], every[keep]
    x = axis.x(axis.times[inv])
    order = np.argsort(x, kind="stable")
    x, lat, kind = x[order], every[order], kind[order]
    out: dict[str, Any] = {
        "x": np.round(x, 6).tolist(),
        "shown": len(x),
        "total": total,
        "unit": axis.latency_unit,
        "summary": summary,
    }
    lat = np.round(lat, 4)
    for code, name in ((OK, "ok"), (FAIL, "fail"), (INFO, "info")):
        col = np.where(kind == code, lat, np.nan)
        out[name] = [None if v != v else v for v in col.tolist()]
    return out


def throughput_series(
    history: History, axis: TimeAxis, buckets: int = THROUGHPUT_BUCKETS
) -> dict[str, Any]:
    """Completed client ops per second (per position for histories without real times) in
    equal buckets of the x axis, by outcome: ``{"x": bucket starts, "ok", "fail", "info",
    "width": a bucket's width in x units, "unit": "ops/s" | "ops per position", "mean":
    {outcome: the rate over the whole span, or None when the span is a single instant}}``.
    A bucket's rate times ``width`` (in seconds, or positions) is its count."""
    _, comp = _client_pairs(history)
    comp = comp[comp >= 0]
    unit = "ops per position" if axis.positions else "ops/s"
    if len(comp) == 0:
        return {"x": [], "ok": [], "fail": [], "info": [], "width": 0, "unit": unit, "mean": {}}
    x = axis.x(axis.times[comp])
    lo, hi = float(x.min()), float(x.max())
    span = max(hi - lo, 1e-9)
    nb = int(max(1, min(buckets, len(comp) // 2 or 1)))
    width = span / nb
    b = np.minimum(((x - lo) / width).astype(np.int64), nb - 1)
    kind = history.type[comp].astype(np.int64)
    grid = np.bincount(b * 4 + kind, minlength=nb * 4).reshape(nb, 4)
    per_unit = 1.0 if axis.positions else 1e9 / axis.ns_per_unit  # x units in a second
    rate = per_unit / width
    out: dict[str, Any] = {
        "x": np.round(lo + np.arange(nb) * width, 6).tolist(),
        "width": width,
        "unit": unit,
        "mean": {},
    }
    for code, name in ((OK, "ok"), (FAIL, "fail"), (INFO, "info")):
        out[name] = [_sig(float(v)) for v in (grid[:, code] * rate).tolist()]
        count = int(grid[:, code].sum())
        out["mean"][name] = _sig(count * per_unit / (hi - lo)) if hi > lo else None
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


def _nemesis_positions(history: History) -> npt.NDArray[np.int64]:
    return np.flatnonzero((history.process < 0) & (history.type != INVOKE))


def nemesis_record_count(history: History) -> int:
    """How many records :func:`nemesis_records` makes of ``history`` without a limit."""
    return len(_nemesis_positions(history))


def nemesis_records(
    history: History, axis: TimeAxis | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Fault ledger records derived from the nemesis's ops in the history (for runs with no
    ``faults.jsonl``): completions of ``start…`` / ``stop…`` ops, timed as ``axis`` places
    them (:attr:`TimeAxis.times`; the history's times without an axis); the first
    ``limit`` of them if given."""
    times = history.time if axis is None else axis.times
    pos = _nemesis_positions(history)[:limit]
    out = []
    for i in pos.tolist():
        f = history.f_names[history.f[i]]
        phase = "start" if f.startswith("start") else "stop" if f.startswith("stop") else None
        out.append({"time": int(times[i]), "phase": phase, "f": f,
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
    "all" | name, "q": [[p50 per bucket], [p95 ...], ...], "overall": [p50, p95, p99 of the
    whole run]}]}``; a bucket without ops of an ``f`` is ``None``. Latency in ``unit``
    (:attr:`TimeAxis.latency_unit`), by invocation time; a quantile is the value at
    rank floor(q · (n − 1)) of the sorted latencies. Vectorised: a plain integer sort per
    group, whatever the history's size."""
    inv, comp = _client_pairs(history)
    done = comp >= 0
    inv, comp = inv[done], comp[done]
    if len(inv) == 0:
        return {"x": [], "unit": axis.latency_unit, "quantiles": list(QUANTILES), "series": []}
    x = axis.x(axis.times[inv])
    lat = _latencies(axis, inv, comp)  # integers: exact, and one key with the bucket
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
            vals = np.round(axis.latency(picked), 3)
            pairs = zip(count.tolist(), vals.tolist(), strict=True)
            qs.append([None if c == 0 else float(v) for c, v in pairs])
        mine = lat if mask is None else lat[mask]
        ranks = [int(q * (len(mine) - 1)) for q in QUANTILES]
        overall = axis.latency(np.partition(mine, ranks)[ranks])
        series.append({"f": name, "q": qs, "overall": [_sig(float(v)) for v in overall]})
    return {
        "x": np.round(lo + (np.arange(nb) + 0.5) * width, 6).tolist(),
        "unit": axis.latency_unit,
        "quantiles": list(QUANTILES),
        "series": series,
    }
