"""Reports in a real browser: headless Chromium loads them with no console errors, the
failure view is drawn, and hostile values are shown as text without executing.

How: Chromium's ``--dump-dom`` loads the page, runs its scripts and prints the DOM; with
``--enable-logging=stderr --v=0`` every console message and uncaught exception is logged to
stderr as ``…:CONSOLE…] "message", source: …``. A clew report logs nothing when all is
well, so any CONSOLE line is a failure. The page also marks itself:
``<html data-rendered="ok" data-errors="0">`` once its scripts have run. Screenshots go to
``$CLEW_TEST_ARTIFACTS`` (default ``build/test-artifacts``).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.formats import read_history, write_history
from harness.history import History
from reports.run_report import write_run_report

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data" / "porcupine"
VALID = DATA / "jepsen" / "etcd_002.log"
INVALID = DATA / "jepsen" / "etcd_000.log"
ARTIFACTS = Path(os.environ.get("CLEW_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))
CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
    None,
)
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed "
        "(scripts/setup installs it as root: apt-get install chromium)",
    ),
]

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_ATTR = '"><img src=x onerror=alert(1)>'
#: Installed before the page's own scripts (and before its CSP), so an alert() that runs
#: leaves a mark in the DOM instead of blocking.
ALERT_HOOK = (
    "<script>window.alert=function(m){document.documentElement"
    ".setAttribute('data-alerted',String(m));};</script>"
)


def browse(url: str, *, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """Load ``url`` in headless Chromium: the DOM after the scripts ran, and the console."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        args = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
                "--v=0", "--window-size=1400,1000", "--dump-dom", url]  # fmt: skip
        run = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as profile:
            args = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1400,3200",
                    "--hide-scrollbars", f"--screenshot={screenshot}", url]  # fmt: skip
            subprocess.run(args, capture_output=True, timeout=120, check=True)
        assert screenshot.stat().st_size > 10_000
    return run.stdout, console


def make_run(store: Path, history: History, name: str, **extra: Any) -> Path:
    """A run directory with a checked history (and a counterexample when invalid)."""
    from checkers.linear import check, get_model

    run = store / name / "20250102T030405"
    run.mkdir(parents=True)
    write_history(history, str(run / "history.jsonl"), "jsonl")
    r = check(history, get_model(extra.pop("model", "etcd")))
    checker: dict[str, Any] = {"valid": r.valid, "cause": extra.pop("cause", r.cause)}
    if r.details.get("counterexample") is not None:
        checker["counterexample"] = r.details["counterexample"]
    checkers = {"linearizable": checker, **extra.pop("checkers", {})}
    (run / "results.json").write_text(json.dumps({"valid": r.valid, "checkers": checkers}))
    spec = {"name": name, "seed": 7, "nodes": ["n1", "n2", "n3"], **extra.pop("spec", {})}
    (run / "spec.json").write_text(json.dumps(spec))
    faults = extra.pop("faults", [
        {"time": 30, "phase": "start", "f": "start-partition", "value": "majority"},
        {"time": 90, "phase": "stop", "f": "stop-partition"},
    ])  # fmt: skip
    (run / "faults.jsonl").write_text("".join(json.dumps(f) + "\n" for f in faults))
    (run / "nodes" / "n1").mkdir(parents=True)
    (run / "nodes" / "n1" / "db.log").write_text("started\n")
    assert not extra
    return run


@pytest.mark.parametrize(("source", "valid"), [(VALID, True), (INVALID, False)])
def test_report_loads_without_console_errors(tmp_path: Path, source: Path, valid: bool) -> None:
    run = make_run(tmp_path, read_history(str(source)), "etcd")
    report = write_run_report(run)
    shot = ARTIFACTS / f"report-{source.stem}.png"
    dom, console = browse(report.as_uri(), screenshot=shot)
    assert console == []
    assert 'data-rendered="ok"' in dom and 'data-errors="0"' in dom
    assert dom.count('class="uplot') == 3  # latency, quantile and throughput charts
    assert 'class="timeline-canvas"' in dom and 'data-ops="' in dom
    if valid:
        assert 'class="failure-svg"' not in dom
    else:
        # The failure view: swim lanes, the ops that could not follow, linearization points.
        assert 'class="failure-svg"' in dom
        assert 'data-role="illegal"' in dom and 'data-role="linearized"' in dom
        assert "<circle" in dom and "<polyline" in dom
        assert "stuck: op #84" in dom


def test_a_broken_page_is_caught(tmp_path: Path) -> None:
    """The console check above can fail: a page that throws is seen."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>null.x;</script></body></html>")
    _, console = browse(page.as_uri())
    assert any("Uncaught TypeError" in line for line in console)


def test_check_report_of_several_files_loads_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "check.html"
    from click.testing import CliRunner

    from harness.cli import cli

    CliRunner().invoke(cli, ["check", "--report", str(out), str(VALID), str(INVALID)])
    dom, console = browse(out.as_uri())
    assert console == [] and 'data-errors="0"' in dom and 'class="failure-svg"' in dom


def hostile_run(store: Path) -> tuple[Path, int]:
    ops = [
        {"type": "invoke", "process": 0, "f": "write", "value": XSS_SCRIPT, "time": 0},
        {"type": "ok", "process": 0, "f": "write", "value": XSS_SCRIPT, "time": 10},
        {"type": "invoke", "process": 1, "f": "read", "value": None, "time": 20},
        {"type": "ok", "process": 1, "f": "read", "value": XSS_ATTR, "time": 30},
    ]
    both = XSS_SCRIPT + XSS_ATTR
    run = make_run(
        store, History.from_ops(ops), "hostile", model="register", cause=both,
        checkers={both: {"valid": False, "cause": both}}, spec={"workload": both},
        faults=[{"time": 5, "phase": "start", "f": both, "value": both}],
    )  # fmt: skip
    return run, 2  # op #2 read the hostile value


@pytest.mark.parametrize("csp", [True, False], ids=["as-shipped", "without-csp"])
def test_hostile_values_are_text_and_nothing_executes(tmp_path: Path, csp: bool) -> None:
    run, op = hostile_run(tmp_path)
    html = write_run_report(run).read_text()
    if not csp:  # escaping alone must hold, without the Content-Security-Policy's help
        html, n = re.subn(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
        assert n == 1
    page = tmp_path / "page.html"
    page.write_text(html.replace("<head>", "<head>" + ALERT_HOOK, 1))
    # The permalink pins op #2, so its details (and the model states) are drawn too.
    dom, console = browse(page.as_uri() + f"#f0-op-{op}")
    assert 'data-alerted="' not in dom
    assert console == []
    assert 'data-rendered="ok"' in dom and 'data-errors="0"' in dom
    assert "<img" not in dom
    assert dom.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # shown, as text
    assert dom.count('"&gt;&lt;img src=x onerror=alert(1)&gt;') >= 3
    details = dom.split('class="fv-details"', 1)[1].split("</div>", 1)[0]
    assert "op #2" in details and "&lt;img src=x onerror=alert(1)&gt;" in details


def test_fault_kinds_named_as_object_properties_are_drawn(tmp_path: Path) -> None:
    """A fault kind "constructor" (or "__proto__") in a foreign faults.jsonl met Object's
    own property in the colour table: "hex.slice is not a function", no charts."""
    ops = [{"type": "invoke", "process": 0, "f": "write", "value": 1, "time": 0},
           {"type": "ok", "process": 0, "f": "write", "value": 1, "time": 10}]  # fmt: skip
    faults = []
    for i, kind in enumerate(("constructor", "__proto__", "toString")):
        faults += [{"time": 2 + i, "kind": kind, "phase": "start", "f": f"start-{kind}",
                    "event": "applied", "targets": ["n1"]},
                   {"time": 5 + i, "kind": kind, "phase": "stop", "f": f"stop-{kind}",
                    "event": "healed"}]  # fmt: skip
    run = make_run(tmp_path / "store", History.from_ops(ops), "protos", faults=faults)
    for node in ("__proto__", "constructor"):  # node names from the run's nodes/ too
        (run / "nodes" / node).mkdir()
        (run / "nodes" / node / "db.log").write_text("2025-01-02T03:04:05.000Z hello\n")
    dom, console = browse(write_run_report(run).as_uri())
    assert console == [] and 'data-rendered="ok"' in dom and 'data-errors="0"' in dom


def test_failure_view_names_the_stuck_read_and_labels_processes(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from harness.cli import cli
    from tests.unit.test_reports import nil_read

    out = tmp_path / "check.html"
    res = CliRunner().invoke(
        cli, ["check", "--model", "etcd", "--report", str(out), str(nil_read(tmp_path))]
    )
    assert res.exit_code == 1, res.output
    dom, console = browse(out.as_uri(), screenshot=ARTIFACTS / "failure-nil-read.png")
    assert console == [] and 'data-errors="0"' in dom
    svg = dom.split('class="failure-svg"', 1)[1].split("</svg>", 1)[0]
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "read → nil" in labels  # the stuck op's bar names the value it read
    assert "write 1" in labels
    assert "process" in labels and "p0" in labels and "p1" in labels  # lanes are labelled


def legends(dom: str) -> list[list[tuple[str, str]]]:
    """Every uPlot legend of the page: per chart, its (series label, value text) pairs."""
    out = []
    for table in re.findall(r'<table class="u-legend[^"]*">(.*?)</table>', dom, re.S):
        rows = re.findall(
            r'<div class="u-label">([^<]*)</div></th><td class="u-value">([^<]*)</td>', table
        )
        out.append([(html.unescape(a), html.unescape(b)) for a, b in rows])
    return out


def chart_axes(dom: str) -> list[dict[str, str]]:
    """Per uPlot chart, what its axes drew (the data-x-*/data-y-* attributes of its root)."""
    roots = re.findall(r'<div class="uplot[^"]*"([^>]*)>', dom)
    return [{k: html.unescape(v) for k, v in re.findall(r'data-([xy]-[a-z]+)="([^"]*)"', r)}
            for r in roots]  # fmt: skip


def test_legends_hold_text_before_any_hover(tmp_path: Path) -> None:
    """Loaded and never hovered: every chart's legend names its series with a summary (no
    uPlot "--"), the fault bands have a legend with kinds, totals and targets, and the
    timeline and the merged node view say their units."""
    from tests.integration.test_report_big_run import generate_run

    run = generate_run(tmp_path, ops=2_000)  # spans ~0.75 s: the axis is in ms
    dom, console = browse(write_run_report(run).as_uri(), screenshot=ARTIFACTS / "legends.png")
    assert console == [] and 'data-errors="0"' in dom
    charts = legends(dom)
    assert len(charts) == 3
    for chart in charts:
        assert chart and all(value.strip() and value != "--" for _, value in chart), chart
    latency, quantiles, throughput = (dict(c) for c in charts)
    assert latency["time (ms)"].startswith("0–") and latency["time (ms)"].endswith(" ms")
    for kind in ("ok", "fail", "info"):
        assert re.fullmatch(r"\d+ ops?, median [\d.]+ ms", latency[kind]), latency[kind]
    assert set(quantiles) >= {"all p50", "all p95", "all p99", "read p50", "write p99"}
    assert all(re.fullmatch(r"whole run [\d.]+ ms", v) for k, v in quantiles.items() if " p" in k)
    assert re.fullmatch(r"mean [\d.]+k? ops/s", throughput["ok"]), throughput["ok"]
    bands = dom.split('data-legend="faults"', 1)[1].split("</div>", 1)[0]
    text = html.unescape(re.sub(r"<[^>]+>", "", bands))
    assert "Fault bands:" in text
    assert re.search(r"partition ×1, [\d.]+ ms in all, on n1 n2 n3 n4 n5", text), text
    assert re.search(r"kill ×1, [\d.]+ ms in all, on n2", text), text
    timeline = dom.split('class="tl-controls"', 1)[1].split("<canvas", 1)[0]
    assert "fault: partition ×1" in html.unescape(timeline)
    assert '<span class="nv-t">time (ms)</span>' in dom  # the merged view's column says its unit


def test_a_nanosecond_span_history_draws_labelled_axes(tmp_path: Path) -> None:
    """Times 0…23 ns: every chart and the timeline draw distinct ticks in ns (once they
    were 0.000000 s, every point at 0, the charts empty)."""
    run = ns_run(tmp_path)
    dom, console = browse(write_run_report(run).as_uri(), screenshot=ARTIFACTS / "report-ns.png")
    assert console == [] and 'data-errors="0"' in dom
    axes = chart_axes(dom)
    assert len(axes) == 3
    for a in axes:
        assert a["x-label"] == "time since the first op (ns)"
        xs = [float(v.replace(",", "")) for v in a["x-ticks"].split()]
        assert len(set(xs)) >= 3 and max(xs) >= 10, a  # distinct ns, not 0.000000 s
        assert a["y-ticks"].split(), a
    assert [a["y-label"] for a in axes] == ["latency (ns)", "latency (ns)", "ops/s"]
    latency = dict(legends(dom)[0])
    assert latency["ok"] == "4 ops, median 3 ns" and latency["time (ns)"] == "0–20 ns"
    m = re.search(r'<canvas class="timeline-canvas"([^>]*)>', dom)
    assert m is not None
    attrs = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', m.group(1)))
    ticks = [float(v) for v in attrs["data-ticks"].split()]
    assert attrs["data-axis-unit"] == "ns" and len(set(ticks)) >= 5 and max(ticks) >= 20
    assert "kill ×1, 9 ns in all, on n2" in html.unescape(dom)


def ns_run(store: Path) -> Path:
    """A run whose history spans 23 ns: ops at 0, 5, 12 and 20 ns taking 3, 4, 2 and 3 ns;
    n2 killed from 5 to 14 ns."""
    starts, lats = [0, 5, 12, 20], [3, 4, 2, 3]
    ops: list[dict[str, Any]] = []
    for i, (t, lat) in enumerate(zip(starts, lats, strict=True)):
        ops.append({"type": "invoke", "process": i % 2, "f": "write", "value": i, "time": t})
        ops.append({"type": "ok", "process": i % 2, "f": "write", "value": i, "time": t + lat})
    ops.sort(key=lambda o: o["time"])
    faults = [{"time": 5, "kind": "kill", "f": "start-kill", "phase": "start", "targets": ["n2"]},
              {"time": 14, "kind": "kill", "f": "stop-kill", "phase": "stop"}]  # fmt: skip
    return make_run(store, History.from_ops(ops), "ns", model="register", faults=faults)


_LEGEND = """JSON.stringify(Array.prototype.map.call(
  document.querySelectorAll(".uplot")[0].querySelectorAll(".u-legend .u-value"),
  function (td) { return td.textContent; }))"""
_OVER = """(function () {
  var o = document.querySelectorAll(".uplot")[0].querySelector(".u-over");
  o.scrollIntoView({ block: "center" });
  var r = o.getBoundingClientRect();
  return JSON.stringify([r.left, r.top, r.width, r.height]);
})()"""


def test_the_legend_gives_values_under_the_pointer_and_its_summary_before_and_after(
    tmp_path: Path,
) -> None:
    """Driven over the DevTools pipe with real mouse events: the latency legend summarises
    before any hover, gives the op's latency with the pointer on its point, and summarises
    again once the pointer leaves the chart."""
    from bench.browser_timing import Browser

    assert CHROMIUM is not None
    url = write_run_report(ns_run(tmp_path)).as_uri()
    b = Browser(CHROMIUM)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]

        def js(expr: str) -> Any:
            res = b.send("Runtime.evaluate", {"expression": expr, "returnByValue": True},
                         session=session)  # fmt: skip
            return res.get("result", {}).get("value")

        def mouse(x: float, y: float) -> None:
            b.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y},
                   session=session)  # fmt: skip

        def legend_until(want: Callable[[list[str]], bool]) -> list[str]:
            for _ in range(100):
                seen = json.loads(js(_LEGEND))
                if want(seen):
                    break
                time.sleep(0.05)
            return seen

        b.send("Page.navigate", {"url": url}, session=session)
        for _ in range(600):
            if js("document.documentElement.getAttribute('data-rendered')") == "ok":
                break
            time.sleep(0.05)
        before = json.loads(js(_LEGEND))
        assert before == ["0–20 ns", "4 ops, median 3 ns", "no ops", "no ops"]
        left, top, width, height = json.loads(js(_OVER))
        mouse(left + width * 5 / 20, top + height / 2)  # on the op invoked at 5 ns
        during = legend_until(lambda v: v != before)
        assert during == ["5 ns", "4 ns", "—", "—"]
        mouse(5, 5)  # off the chart
        after = legend_until(lambda v: v == before)
        assert after == before
        assert js("document.documentElement.getAttribute('data-errors')") == "0"
    finally:
        b.close()


_VIEWS = """JSON.stringify({
  charts: Array.prototype.map.call(document.querySelectorAll(".uplot"),
    function (r) { return r.getAttribute("data-x-ticks"); }),
  timeline: document.querySelector(".timeline-canvas").getAttribute("data-view")
})"""


def test_a_zoom_on_one_chart_is_followed_by_the_others_and_the_timeline(
    tmp_path: Path,
) -> None:
    """A drag across the latency chart (mouse events over the DevTools pipe) zooms it, the
    other two charts and the timeline to the same range; a double-click restores the whole
    run (with its margin)."""
    from bench.browser_timing import Browser

    assert CHROMIUM is not None
    from tests.integration.test_report_big_run import generate_run

    url = write_run_report(generate_run(tmp_path, ops=2_000)).as_uri()
    b = Browser(CHROMIUM)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]

        def js(expr: str) -> Any:
            res = b.send("Runtime.evaluate", {"expression": expr, "returnByValue": True},
                         session=session)  # fmt: skip
            return res.get("result", {}).get("value")

        def mouse(kind: str, x: float, y: float, clicks: int = 0) -> None:
            b.send("Input.dispatchMouseEvent",
                   {"type": kind, "x": x, "y": y, "button": "left", "clickCount": clicks},
                   session=session)  # fmt: skip

        b.send("Page.navigate", {"url": url}, session=session)
        for _ in range(600):
            if js("document.documentElement.getAttribute('data-rendered')") == "ok":
                break
            time.sleep(0.05)
        whole = json.loads(js(_VIEWS))
        left, top, width, height = json.loads(js(_OVER))
        y = top + height / 2
        mouse("mouseMoved", left + width * 0.25, y)
        mouse("mousePressed", left + width * 0.25, y, 1)
        for f in (0.3, 0.4, 0.5):
            mouse("mouseMoved", left + width * f, y)
        mouse("mouseReleased", left + width * 0.5, y, 1)
        for _ in range(100):
            zoomed = json.loads(js(_VIEWS))
            if zoomed != whole:
                break
            time.sleep(0.05)
        lo, hi = (float(v) for v in zoomed["timeline"].split(","))
        wlo, whi = (float(v) for v in whole["timeline"].split(","))
        assert 0.15 < (lo - wlo) / (whi - wlo) < 0.35 and 0.4 < (hi - wlo) / (whi - wlo) < 0.6
        for ticks in zoomed["charts"]:
            xs = [float(v.replace(",", "")) for v in ticks.split()]
            assert lo - 1e-6 <= min(xs) and max(xs) <= hi + 1e-6, (ticks, lo, hi)
        mouse("mousePressed", left + width * 0.5, y, 2)
        mouse("mouseReleased", left + width * 0.5, y, 2)
        for _ in range(100):
            back = json.loads(js(_VIEWS))
            if back["charts"] == whole["charts"]:
                break
            time.sleep(0.05)
        assert back["charts"] == whole["charts"]
        assert js("document.documentElement.getAttribute('data-errors')") == "0"
    finally:
        b.close()


def test_a_history_without_real_times_says_so_and_draws_positions(tmp_path: Path) -> None:
    ops: list[dict[str, Any]] = []
    for i in range(6):
        ops.append({"type": "invoke", "process": i % 2, "f": "write", "value": i, "time": 0})
        ops.append({"type": "ok", "process": i % 2, "f": "write", "value": i, "time": 0})
    run = make_run(tmp_path, History.from_ops(ops), "zero", model="register", faults=[])
    dom, console = browse(
        write_run_report(run).as_uri(), screenshot=ARTIFACTS / "report-no-times.png"
    )
    assert console == [] and 'data-errors="0"' in dom
    assert "This history has no real times (every op carries the same time (0))" in dom
    for a in chart_axes(dom):
        assert a["x-label"] == "history position"
        assert len(set(a["x-ticks"].split())) >= 3, a


_NODE_VIEW = """JSON.stringify((function () {
  var nv = document.getElementById("node-view");
  var rows = Array.prototype.filter.call(nv.querySelectorAll(".nv-row"),
    function (r) { return r.style.display !== "none"; });
  return { shown: nv.getAttribute("data-shown"), lines: nv.getAttribute("data-lines"),
    agent: nv.getAttribute("data-agent-lines"),
    rows: rows.map(function (r) {
      return [r.className, r.childNodes[1].textContent, r.childNodes[2].textContent]; }) };
})())"""


def test_the_agents_records_appear_in_the_node_view_and_filter(tmp_path: Path) -> None:
    """A run with two nodes' agent journals: the merged node view has an "agents" source
    whose lines read in words, on the run's clock, and filter by source, node and text
    (the boxes and the search box driven in the page over the DevTools pipe)."""
    from bench.browser_timing import Browser
    from tests.unit.test_report_agents import agent_run

    assert CHROMIUM is not None
    report = write_run_report(agent_run(tmp_path))
    dom, console = browse(report.as_uri(), screenshot=ARTIFACTS / "report-agents.png")
    assert console == [] and 'data-rendered="ok"' in dom and 'data-errors="0"' in dom
    assert 'data-source="agent"' in dom and 'data-agent-lines="14"' in dom
    assert "agent: slice armed: 1 step(s): start-kill on log 'became-leader'" in dom
    assert 'id="agent-alignment"' in dom
    b = Browser(CHROMIUM)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]

        def js(expr: str) -> Any:
            res = b.send("Runtime.evaluate", {"expression": expr, "returnByValue": True},
                         session=session)  # fmt: skip
            return res.get("result", {}).get("value")

        def view_after(action: str, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
            js(action)
            for _ in range(100):
                v: dict[str, Any] = json.loads(js(_NODE_VIEW))
                if until(v):
                    return v
                time.sleep(0.05)
            return v

        b.send("Page.navigate", {"url": report.as_uri()}, session=session)
        for _ in range(600):
            if js("document.documentElement.getAttribute('data-rendered')") == "ok":
                break
            time.sleep(0.05)
        whole = json.loads(js(_NODE_VIEW))
        total = int(whole["lines"])
        assert whole["agent"] == "14" and int(whole["shown"]) == total
        search = (
            "(function (q) { var s = document.querySelector('#node-view input[type=search]');"
            " s.value = q; s.dispatchEvent(new Event('input')); })"
        )
        struck = view_after(search + "('agent: struck')", lambda v: v["shown"] == "1")
        assert struck["shown"] == "1"
        (cls, node, text), = struck["rows"]  # fmt: skip
        assert "nv-agent" in cls and "nv-agent-act" in cls and node == "n1"
        assert text.startswith("agent: struck start-kill (on log 'became-leader', 2.1 ms after")
        # Every agent line, then without node n2's.
        agents = view_after(search + "('agent:')", lambda v: v["shown"] == "14")
        assert agents["shown"] == "14" and all("nv-agent" in r[0] for r in agents["rows"])
        click = "document.querySelector('#node-view input[data-{}=\"{}\"]').click()"
        no_n2 = view_after(click.format("node", "n2"), lambda v: v["shown"] == "10")
        assert no_n2["shown"] == "10" and {r[1] for r in no_n2["rows"]} == {"n1"}
        # The agents source off: no agent line is left, whatever the search.
        js(click.format("node", "n2"))
        off = view_after(
            click.format("source", "agent") + ";" + search + "('')",
            lambda v: v["shown"] == str(total - 14),
        )
        assert off["shown"] == str(total - 14)
        assert off["rows"] and not any("nv-agent" in r[0] for r in off["rows"])
        assert js("document.documentElement.getAttribute('data-errors')") == "0"
    finally:
        b.close()
