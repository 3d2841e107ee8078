"""The report's scales: the time unit follows the history's span (ns, µs, ms, s), latencies
the unit of their median, histories without real times are placed by position and the page
says why, and the legends' summaries (medians, whole-run quantiles, mean rates) are exact."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.formats import write_history
from harness.history import History
from reports import columns, data
from reports.node_logs import node_log_lines
from reports.run_report import render_run_report


def pairs(starts: list[int], lats: list[int], kinds: list[str] | None = None) -> History:
    """One client op per start (process i % 2), completing ``lat`` later."""
    ops: list[dict[str, Any]] = []
    for i, (t, lat) in enumerate(zip(starts, lats, strict=True)):
        kind = kinds[i] if kinds else "ok"
        ops.append({"type": "invoke", "process": i % 2, "f": "write", "value": i, "time": t})
        ops.append({"type": kind, "process": i % 2, "f": "write", "value": i, "time": t + lat})
    ops.sort(key=lambda o: o["time"])
    return History.from_ops(ops)


#: A history whose times span 23 ns: 0.000000023 s, which the page used to round to 0.
NS_STARTS, NS_LATS = [0, 5, 12, 20], [3, 4, 2, 3]


def payload(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="clew-data">(.*?)</script>', html, re.S)
    assert m is not None
    return json.loads(m.group(1))


def run_dir(tmp_path: Path, h: History) -> Path:
    run = tmp_path / "t" / "20261203T120000"
    run.mkdir(parents=True)
    write_history(h, str(run / "history.jsonl"), "jsonl")
    return run


@pytest.mark.parametrize(
    ("span_ns", "unit"),
    [
        (0, "ns"), (1, "ns"), (999, "ns"), (1_000, "µs"), (500_000, "µs"), (10**6, "ms"),
        (250 * 10**6, "ms"), (999_999_999, "ms"), (10**9, "s"), (3600 * 10**9, "s"),
    ],
)  # fmt: skip
def test_the_time_unit_is_the_largest_the_span_fills(span_ns: int, unit: str) -> None:
    name, ns = data.time_unit(span_ns)
    assert name == unit and (span_ns == 0 or span_ns / ns >= 1)


@pytest.mark.parametrize(
    ("step", "unit", "lat_unit"),
    [(1, "ns", "ns"), (100, "µs", "ns"), (10**5, "ms", "µs"), (10**7, "s", "ms")],
)
def test_the_axis_follows_the_span_and_latency_its_median(
    step: int, unit: str, lat_unit: str
) -> None:
    starts = [i * 10 * step for i in range(50)]
    h = pairs(starts, [3 * step] * 50)  # span 493 steps; latency 3 steps
    axis = data.time_axis(h)
    assert not axis.positions and axis.no_times is None
    assert (axis.unit, axis.latency_unit) == (unit, lat_unit)
    x = axis.x(np.asarray(starts))
    assert x[0] == 0 and 1 <= x[-1] < 1000  # readable numbers, whatever the span
    lat = data.latency_series(h, axis)
    assert lat["unit"] == lat_unit and 1 <= lat["ok"][0] < 1000
    assert lat["summary"]["ok"] == {"count": 50, "median": lat["ok"][0]}
    assert axis.label == f"time since the first op ({unit})"


def test_a_nanosecond_span_history_keeps_its_points_apart() -> None:
    h = pairs(NS_STARTS, NS_LATS)
    axis = data.time_axis(h)
    assert (axis.unit, axis.latency_unit) == ("ns", "ns")
    lat = data.latency_series(h, axis)
    assert lat["x"] == [0.0, 5.0, 12.0, 20.0]  # not four zeros
    assert lat["ok"] == [3.0, 4.0, 2.0, 3.0]  # not 0.000003 ms rounded to 0
    assert lat["summary"]["ok"] == {"count": 4, "median": 3.0}
    assert lat["summary"]["fail"] == {"count": 0, "median": None}
    q = data.latency_quantiles(h, axis)
    assert q["unit"] == "ns"
    assert q["series"][0]["overall"] == [3.0, 3.0, 3.0]  # ranks 1, 2, 2 of 2 3 3 4
    tp = data.throughput_series(h, axis, buckets=2)
    assert tp["unit"] == "ops/s"
    # completions at 3, 9, 14 and 23 ns: 4 ops over 20 ns
    assert tp["mean"]["ok"] == pytest.approx(4 / 20e-9) and tp["mean"]["fail"] == 0
    seconds = tp["width"] * axis.ns_per_unit / 1e9
    assert sum(tp["ok"]) * seconds == pytest.approx(4)  # rates integrate to counts
    cols = columns.op_columns(h, axis)
    start = np.frombuffer(base64.b64decode(cols["start"]), "<f4")
    assert start.tolist() == [0.0, 5.0, 12.0, 20.0] and cols["hi"] == 23.0


def test_throughput_is_per_second_whatever_the_unit() -> None:
    starts = [i * 2_000_000 for i in range(300)]  # one op every 2 ms: 500 ops/s
    h = pairs(starts, [1_000_000] * 300)
    axis = data.time_axis(h)
    assert axis.unit == "ms"
    tp = data.throughput_series(h, axis, buckets=10)
    assert tp["mean"]["ok"] == pytest.approx(500, rel=0.01)
    assert np.median(tp["ok"]) == pytest.approx(500, rel=0.05)
    seconds = tp["width"] * axis.ns_per_unit / 1e9
    assert sum(tp["ok"]) * seconds == pytest.approx(300, rel=1e-3)  # rates of 4 digits


def test_legend_summaries_cover_every_op_even_when_the_points_are_sampled() -> None:
    rng = np.random.default_rng(2)
    n = 2000
    lats = rng.integers(1_000_000, 50_000_000, size=n).tolist()
    kinds = ["fail" if i % 7 == 0 else "ok" for i in range(n)]
    h = pairs([i * 60_000_000 for i in range(n)], lats, kinds)
    axis = data.time_axis(h)
    lat = data.latency_series(h, axis, cap=100)
    assert lat["shown"] == 100 and lat["total"] == n
    ok = np.array([v for v, k in zip(lats, kinds, strict=True) if k == "ok"]) / 1e6
    assert lat["summary"]["ok"]["count"] == len(ok)
    assert lat["summary"]["ok"]["median"] == pytest.approx(np.median(ok), rel=1e-3)
    q = data.latency_quantiles(h, axis, buckets=5)
    every = np.sort(np.array(lats)) / 1e6
    want = [every[int(p * (n - 1))] for p in data.QUANTILES]
    assert q["series"][0]["f"] == "all"
    assert q["series"][0]["overall"] == pytest.approx(want, rel=1e-3)


def test_a_history_without_times_is_placed_by_position() -> None:
    ops = [
        {"type": "invoke", "process": 0, "f": "write", "value": 1},
        {"type": "invoke", "process": 1, "f": "read", "value": None},
        {"type": "ok", "process": 0, "f": "write", "value": 1},
        {"type": "ok", "process": 1, "f": "read", "value": 1},
    ]
    axis = data.time_axis(History.from_ops(ops))
    assert axis.positions and axis.no_times == "its ops carry no times"
    assert axis.label == "history position" and axis.latency_unit == "positions"


def test_a_history_whose_ops_share_one_time_is_placed_by_position(tmp_path: Path) -> None:
    h = pairs([7, 7, 7, 7], [0, 0, 0, 0])
    axis = data.time_axis(h)
    assert axis.positions and "same time (7)" in (axis.no_times or "")
    assert axis.times.tolist() == list(range(8))
    lat = data.latency_series(h, axis)
    assert lat["x"] == [0.0, 2.0, 4.0, 6.0] and lat["ok"] == [1.0] * 4  # positions apart
    html = render_run_report(run_dir(tmp_path, h))
    assert 'id="no-times"' in html
    assert "This history has no real times (every op carries the same time (7))" in html
    p = payload(html)
    assert p["axis"]["positions"] and p["axis"]["no_times"].startswith("every op carries")


def test_the_page_names_the_unit_everywhere(tmp_path: Path) -> None:
    run = run_dir(tmp_path, pairs(NS_STARTS, NS_LATS))
    (run / "faults.jsonl").write_text(
        json.dumps({"time": 5, "kind": "kill", "f": "start-kill", "phase": "start"}) + "\n"
    )
    html = render_run_report(run)
    assert 'id="no-times"' not in html
    assert '<th>duration</th><td class="mono">23 ns</td>' in html
    assert "x: time since the first op (ns)." in html
    assert '<th class="num">time (ns)</th>' in html  # the fault ledger's column
    assert '<td class="num">5.000</td>' in html  # 5 ns after the first op
    p = payload(html)
    assert p["axis"]["unit"] == "ns" and p["axis"]["ns_per_unit"] == 1.0
    assert p["faults"][0]["start"] == 5.0


def test_node_logs_follow_the_axis_unit(tmp_path: Path) -> None:
    run = tmp_path / "t" / "20261203T121214"
    (run / "nodes" / "n1").mkdir(parents=True)
    origin = 1796300000 * 10**9
    (run / "clock.json").write_text(json.dumps({"origin_unix_ns": origin}))
    (run / "nodes" / "n1" / "db.log").write_text("1796300000.25 a\n1796300000.5 b\n")
    logs = node_log_lines(run, 0, 1e6)  # the page's axis in ms
    assert logs is not None
    t = np.frombuffer(base64.b64decode(logs["t"]), "<f4")
    assert t.tolist() == [250.0, 500.0]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"), (0.0, "0 ns"), (23e-9, "23 ns"), (4.5e-6, "4.5 µs"), (0.0045, "4.5 ms"),
        (0.75, "750 ms"), (12.34, "12.3 s"), (245, "4m 05s"), (3723, "1h 02m 03s"),
    ],
)  # fmt: skip
def test_durations_for_people(seconds: float | None, text: str) -> None:
    assert data.duration_text(seconds) == text


def test_the_index_gives_short_spans_their_unit_and_positions_none(tmp_path: Path) -> None:
    from reports.index import list_runs

    ns = tmp_path / "ns" / "20261203T120000"
    ns.mkdir(parents=True)
    write_history(pairs(NS_STARTS, NS_LATS), str(ns / "history.jsonl"), "jsonl")
    untimed = tmp_path / "untimed" / "20261203T120000"
    untimed.mkdir(parents=True)
    ops = [{"type": t, "process": 0, "f": "write", "value": 1} for t in ("invoke", "ok") * 3]
    write_history(History.from_ops(ops), str(untimed / "history.jsonl"), "jsonl")
    durations = {r["test"]: r["duration"] for r in list_runs(tmp_path)}
    assert durations == {"ns": "23 ns", "untimed": "—"}  # not "0.0 s" for both
