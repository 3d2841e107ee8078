"""The report with node agents' journals at their cap: how long reading and aligning them
takes, how big the page gets, and how long headless Chromium takes to draw it.

Builds a run directory whose every node has an ``agent.jsonl`` of ``--journal-mib`` MiB
(the agent's default cap is 4 MiB) made of what a busy agent journals: watched log lines
(most of it, at the agent's 200 a second rate cap), process changes, pressure once a
second, a strike and a heal now and then, with ``clock.jsonl`` samples; and a history of
``--ops`` ops. Prints the figures and the load average.

    .venv/bin/python bench/report_agents.py [--nodes 3] [--journal-mib 4] [--ops 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.formats import write_history
from harness.history import History
from reports.agent_journal import agent_lines
from reports.run_report import write_run_report

S = 1_000_000_000
C0 = 7_000 * S
WALL0 = 1_796_299_200 * S


def journal(node: int, size: int, quiet: bool = False) -> tuple[str, int]:
    """An agent journal of about ``size`` bytes and the seconds it spans (``quiet``: a
    pressure sample a second and nothing else, a long quiet run)."""
    out: list[str] = []
    n = 0
    t = 0.0
    off = (node + 1) * 3_000_000
    base = {
        "e": "slice",
        "state": "armed",
        "id": "agent",
        "origin_ns": C0 + off,
        "strikes": [{"id": "s1", "f": "start-kill", "on": {"log": "became-leader"}}],
    }
    out.append(json.dumps({**base, "mono": C0 + off - S, "wall": WALL0 - S, "run": -1.0}))
    n = len(out[0])
    i = 0
    while n < size:
        t += 1.0 if quiet else 1 / 200  # a second apart, or the agent's default rate cap
        mono, wall = C0 + off + round(t * S), WALL0 + round(t * S)
        stamp = {"mono": mono, "wall": wall, "run": round(t, 6)}
        if quiet or i % 200 == 0:
            rec: dict[str, Any] = {
                "e": "pressure",
                **stamp,
                "load1": 1.0 + (i % 7) / 10,
                "mem_avail_kb": 300_000,
                "db_pid": 40,
                "db_rss_kb": 45_000,
                "db_cpu_ms": i,
            }
        elif i % 3001 == 0:
            rec = {
                "e": "strike",
                **stamp,
                "id": "s1",
                "f": "start-kill",
                "trigger": "log",
                "start_mono": mono,
                "start_wall": wall,
                "late_ms": 0.1,
                "done_ms": 9.0,
                "status": 0,
                "line": f"{wall / S:.3f} raft: elected leader at term {i}",
            }
        elif i % 997 == 0:
            rec = {"e": "process", **stamp, "change": "exit", "pid": None, "before": 40}
        else:
            rec = {
                "e": "log",
                **stamp,
                "seen_mono": mono,
                "patterns": ["leader-changed"],
                "line": f"{wall / S:.3f} raft.node: {node} elected leader {i % 5} at "
                f"term {i} " + "x" * 60,
            }
        line = json.dumps(rec, separators=(",", ":"))
        out.append(line)
        n += len(line) + 1
        i += 1
    return "\n".join(out) + "\n", round(t)


def build(root: Path, nodes: int, mib: float, ops: int, quiet: bool = False) -> Path:
    """The run directory (see the module docstring)."""
    run = root / "bench-agents" / "20261203T120000"
    run.mkdir(parents=True)
    span = 1.0
    for k in range(nodes):
        d = run / "nodes" / f"n{k + 1}"
        d.mkdir(parents=True)
        text, span = journal(k, int(mib * 1024 * 1024), quiet)
        (d / "agent.jsonl").write_text(text)
        (d / "clock.jsonl").write_text(
            "".join(
                json.dumps(
                    {
                        "controller_ns": C0 + j * S,
                        "offset_ns": (k + 1) * 3_000_000 + 1000 * j,
                        "rtt_ns": 20_000_000 + 1_000_000 * (j % 9),
                    }
                )
                + "\n"
                for j in range(0, span, max(1, span // 1000))
            )
        )
    (run / "agents.json").write_text(json.dumps({"origin_controller_ns": C0, "offsets": {}}))
    (run / "clock.json").write_text(json.dumps({"origin_unix_ns": WALL0}))
    (run / "spec.json").write_text(json.dumps({"suite": "etcd", "concurrency": 10}))
    (run / "results.json").write_text(json.dumps({"valid": True, "checkers": {}}))
    hist = []
    for i in range(ops):
        t = round(i * span * S / ops)
        hist.append({"type": "invoke", "process": i % 10, "f": "read", "value": None, "time": t})
        hist.append({"type": "ok", "process": i % 10, "f": "read", "value": i, "time": t + 1000})
    write_history(History.from_ops(hist), str(run / "history.jsonl"), "jsonl")
    return run


def main() -> int:
    """Build the run, time the report's parts, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--journal-mib", type=float, default=4.0)
    ap.add_argument("--ops", type=int, default=20_000)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument(
        "--quiet", action="store_true", help="journals of pressure samples only (a long quiet run)"
    )
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="clew-bench-report-agents-"))
    try:
        run = build(root, args.nodes, args.journal_mib, args.ops, args.quiet)
        t0 = time.process_time()
        d = agent_lines(run)
        read_cpu = time.process_time() - t0
        assert d is not None
        t0 = time.process_time()
        page = write_run_report(run)
        page_cpu = time.process_time() - t0
        print(
            f"{'quiet ' if args.quiet else ''}{args.nodes} nodes x {args.journal_mib:g} MiB "
            f"journals: {d['total']} records, "
            f"{d['shown']} lines shown (pressure summarised on {d['summarised'] or 'none'})"
        )
        print(
            f"agent_lines: {read_cpu:.2f} s CPU; whole report: {page_cpu:.2f} s CPU, "
            f"{page.stat().st_size / 1e6:.1f} MB page"
        )
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium and not args.no_browser:
            from bench.browser_timing import open_page

            fig = open_page(page.as_uri(), chromium)
            print(
                f"chromium: drawn in {fig['wall_s']:.2f} s wall (errors {fig['errors']}); "
                f"{fig['timings']}"
            )
        print(
            f"load average: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} on "
            f"{os.cpu_count()} cores"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
