"""A report of a 100,000-op run in headless Chromium: the whole timeline is drawn (every op
embedded, the view spanning the whole run, bars from its first to its last pixel), the
latency quantiles and the merged node timeline are there, and it loads with no console
error. The page's own load time (navigation start to everything drawn) is printed.

The history is generated (a keyed register, 10 workers, some failed and indeterminate ops,
two faults with targets, node logs and a clock anchor): no 100k-op cluster run is needed to
check what the report does with 100k ops. Figures for 1M ops: ``bench/report.py``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from reports.run_report import write_run_report
from tests.integration.test_report_browser import ARTIFACTS, CHROMIUM, browse

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup)"),
]

OPS = 100_000
WORKERS = 10
ORIGIN_UNIX_NS = 1_796_300_000 * 10**9


def generate_run(store: Path, ops: int = OPS, seed: int = 3) -> Path:
    """A run directory of ``ops`` client ops (invocation and completion each), with
    faults.jsonl, node logs, clock.json, spec.json and results.json."""
    rng = np.random.default_rng(seed)
    run = store / "gen-register" / "20261203T120000"
    (run / "nodes").mkdir(parents=True)
    per = ops // WORKERS
    gap = rng.integers(100_000, 2_000_000, size=(WORKERS, per))
    dur = rng.integers(200_000, 5_000_000, size=(WORKERS, per))
    inv = np.cumsum(gap + dur, axis=1) - dur
    comp = inv + dur
    outcome = rng.random((WORKERS, per))
    kinds = np.where(outcome < 0.03, 1, np.where(outcome < 0.035, 2, 0))  # fail, info, ok
    # After an info, the worker continues as a new process (Jepsen's rule).
    bumps = np.cumsum(kinds == 2, axis=1) - (kinds == 2)
    process = np.arange(WORKERS)[:, None] + WORKERS * bumps
    f = rng.integers(0, 2, size=(WORKERS, per))
    key = rng.integers(0, 20, size=(WORKERS, per))
    ev = np.concatenate([inv.ravel(), comp.ravel()])
    order = np.argsort(ev, kind="stable")
    n = WORKERS * per
    names = ("ok", "fail", "info")
    fnames = ("read", "write")
    flat_p, flat_f, flat_k = process.ravel(), f.ravel(), key.ravel()
    flat_kind = kinds.ravel()
    lines = []
    for idx, e in enumerate(order.tolist()):
        i = e % n
        typ = "invoke" if e < n else names[flat_kind[i]]
        value = i if flat_f[i] == 1 else ("null" if e < n else i - 1)
        lines.append(
            f'{{"index":{idx},"time":{int(ev[e])},"type":"{typ}","process":{int(flat_p[i])},'
            f'"f":"{fnames[flat_f[i]]}","key":{int(flat_k[i])},"value":{value},'
            f'"node":"n{int(flat_p[i]) % 5 + 1}"}}\n'
        )
    (run / "history.jsonl").write_text("".join(lines))
    end = int(ev.max())
    third = end // 3
    faults = [
        {"time": third, "kind": "partition", "f": "start-partition", "event": "applied",
         "phase": "start", "value": "majority", "targets": ["n1", "n2", "n3", "n4", "n5"]},
        {"time": 2 * third // 1 - third // 2, "kind": "partition", "f": "stop-partition",
         "event": "healed", "phase": "stop"},
        {"time": 2 * third, "kind": "kill", "f": "start-kill", "event": "applied",
         "phase": "start", "value": ["n2"], "targets": ["n2"]},
        {"time": 2 * third + third // 4, "kind": "kill", "f": "stop-kill", "event": "healed",
         "phase": "stop"},
    ]  # fmt: skip
    (run / "faults.jsonl").write_text("".join(json.dumps(r) + "\n" for r in faults))
    (run / "clock.json").write_text(json.dumps({"origin_unix_ns": ORIGIN_UNIX_NS}))
    for k in range(1, 6):
        node = run / "nodes" / f"n{k}"
        node.mkdir()
        stamps = np.sort(rng.integers(0, end, size=400)) + ORIGIN_UNIX_NS
        node.joinpath("db.log").write_text(
            "".join(f"{s / 1e9:.3f} n{k}: raft step {j}\n" for j, s in enumerate(stamps))
        )
    spec = {"name": "gen-register", "seed": seed, "nodes": 5, "concurrency": WORKERS,
            "workload": "register", "faults": ["partition", "kill"]}  # fmt: skip
    (run / "spec.json").write_text(json.dumps(spec))
    results = {"valid": True, "checkers": {"linearizable": {"valid": True}}}
    (run / "results.json").write_text(json.dumps(results))
    return run


def test_a_100k_op_report_shows_the_whole_run_and_loads_in_chromium(tmp_path: Path) -> None:
    run = generate_run(tmp_path)
    t0 = time.perf_counter()
    report = write_run_report(run)
    written = time.perf_counter() - t0
    dom, console = browse(report.as_uri(), screenshot=ARTIFACTS / "report-100k.png")
    assert console == []
    assert 'data-rendered="ok"' in dom and 'data-errors="0"' in dom
    m = re.search(r'<canvas class="timeline-canvas" data-ops="(\d+)"([^>]*)>', dom)
    assert m is not None, "no timeline canvas"
    assert int(m.group(1)) == OPS  # every op is embedded, none capped
    attrs = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', m.group(2)))
    lo, hi = (float(v) for v in attrs["data-view"].split(","))
    text = (run / "history.jsonl").read_text()
    times = [json.loads(line)["time"] for line in text.splitlines()]
    span = (max(times) - min(times)) / 1e9
    assert lo <= 0.0 and hi >= span  # the view is the whole run
    plot0, plot1 = (int(v) for v in attrs["data-plot-extent"].split(","))
    drawn0, drawn1 = (int(v) for v in attrs["data-drawn-extent"].split(","))
    assert drawn0 - plot0 <= 2 and plot1 - drawn1 <= 2  # bars from the first pixel to the last
    assert int(attrs["data-drawn-runs"]) > 1_000
    assert dom.count('class="uplot') == 3  # latency, quantiles, throughput
    lines = re.search(r'id="node-view"[^>]*data-lines="(\d+)"', dom)
    assert lines is not None and int(lines.group(1)) == OPS + 5 * 400 + 4  # ops, logs, ledger
    load_ms = int(re.search(r'data-render-ms="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    size = report.stat().st_size
    print(
        f"\n100k-op report: written in {written:.2f} s, {size / 1e6:.1f} MB, "
        f"drawn in headless Chromium {load_ms / 1000:.2f} s after navigation start"
    )
