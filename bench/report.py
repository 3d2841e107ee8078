"""Benchmark of the HTML report for a large run: render time, file size, browser load time.

Generates a run directory with a history of ``--ops`` entries (invocations plus
completions; 2,000,000 by default, i.e. 1,000,000 client ops) of a keyed register
workload (10 client processes, 100 keys, ~5 % failed writes, ~0.5 % indeterminate ones,
and one stale read in the middle, so the run is invalid), checks it with clew's
linearizability checker to get a real ``results.json`` with a counterexample, adds a fault
ledger, then:

* renders ``report.html`` (``write_run_report``: reading ``history.jsonl`` + rendering),
  and prints both parts, and again with the history already in memory (what ``clew test``
  does at the end of a run);
* prints the report's size;
* opens it in headless Chromium over the DevTools pipe (:mod:`bench.browser_timing`) and
  prints the time from navigation to every view drawn, the first contentful paint, when
  the page's scripts began (the HTML and its data parsed) and the page's own parts.
  (``--dump-dom``, which the tests use, also serialises the whole DOM, 16 MB of it for a
  1M-entry history, after the page is drawn: its wall time measured that, not the page.)

``--ops`` counts history entries: 2,000,000 (the default) is 1,000,000 client ops.

    .venv/bin/python bench/report.py [--ops 2000000] [--out bench/out/report-run/<ts>]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np


def generate(run: Path, entries: int, seed: int = 1) -> None:
    """Write history.jsonl, faults.jsonl and spec.json of a synthetic run."""
    rng = np.random.default_rng(seed)
    procs, keys = 10, 100
    per = entries // 2 // procs
    n = per * procs
    gap = rng.integers(50_000, 500_000, size=(procs, per))
    d1 = rng.integers(100_000, 2_000_000, size=(procs, per))
    d2 = rng.integers(100_000, 2_000_000, size=(procs, per))
    inv = np.cumsum(gap + d1 + d2, axis=1) - d1 - d2
    lin = inv + d1
    comp = lin + d2
    key = rng.integers(0, keys, size=(procs, per))
    is_write = rng.random((procs, per)) < 0.5
    outcome = rng.random((procs, per))  # < 0.05 fail (writes), < 0.055 info (writes)
    flat = lambda a: a.reshape(-1)  # noqa: E731
    inv_f, lin_f, comp_f, key_f = flat(inv), flat(lin), flat(comp), flat(key)
    w_f, o_f = flat(is_write), flat(outcome)
    p_f = np.repeat(np.arange(procs), per)
    # Values in linearization order; failed writes take no effect.
    state: list[int | None] = [None] * keys
    value: list[int | None] = [None] * n
    kind = np.zeros(n, dtype=np.int8)  # 0 ok, 1 fail, 2 info
    stale_at, stale_done = n // 2, False
    for rank, i in enumerate(np.argsort(lin_f, kind="stable").tolist()):
        k = int(key_f[i])
        if w_f[i]:
            value[i] = rank + 1
            if o_f[i] < 0.05:
                kind[i] = 1
                continue
            if o_f[i] < 0.055:
                kind[i] = 2
            state[k] = rank + 1
        else:
            value[i] = state[k]
            if rank >= stale_at and not stale_done:  # one impossible read
                value[i], stale_done = -1, True
    # Processes: after an info, the worker continues as a new process (Jepsen's rule).
    proc_id = p_f.copy()
    info = (kind == 2).reshape(procs, per)
    bumps = np.cumsum(info, axis=1) - info  # infos before this op in its chain
    proc_id = p_f + procs * bumps.reshape(-1)
    ev_time = np.concatenate([inv_f, comp_f])
    order = np.argsort(ev_time, kind="stable")
    names = ("ok", "fail", "info")
    with (run / "history.jsonl").open("w") as f:
        for idx, e in enumerate(order.tolist()):
            i = e if e < n else e - n
            is_inv = e < n
            t = int(ev_time[e])
            fname = "write" if w_f[i] else "read"
            if is_inv:
                v = value[i] if w_f[i] else None
                typ = "invoke"
            else:
                v = value[i]
                typ = names[kind[i]] if w_f[i] else "ok"
            f.write(
                f'{{"index":{idx},"time":{t},"type":"{typ}","process":{int(proc_id[i])},'
                f'"f":"{fname}","key":{int(key_f[i])},"value":{json.dumps(v)}}}\n'
            )
    end = int(comp_f.max())
    with (run / "faults.jsonl").open("w") as f:
        rnd = random.Random(seed)
        t = 5_000_000_000
        while t < end:
            f.write(
                json.dumps(
                    {
                        "time": t,
                        "phase": "start",
                        "f": "start-partition",
                        "value": rnd.choice(["majority", "ring", "bridge"]),
                    }
                )
                + "\n"
            )
            f.write(json.dumps({"time": t + 10**10, "phase": "stop", "f": "stop-partition"}) + "\n")
            t += 3 * 10**10
    spec = {"name": "bench-register", "seed": seed, "nodes": ["n1", "n2", "n3", "n4", "n5"],
            "time_limit": round(end / 1e9), "concurrency": procs}  # fmt: skip
    (run / "spec.json").write_text(json.dumps(spec))


def check(run: Path) -> None:
    """results.json from clew's checker (with its counterexample)."""
    from checkers.linear import check, get_model
    from harness.formats import read_history

    h = read_history(str(run / "history.jsonl"), "jsonl")
    r = check(h, get_model("register"), time_limit=300)
    res = {"valid": r.valid, "cause": r.cause, "seconds": r.seconds}
    if r.details.get("counterexample") is not None:
        res["counterexample"] = r.details["counterexample"]
    results = {"valid": r.valid, "checkers": {"linearizable": res}}
    (run / "results.json").write_text(json.dumps(results, default=str))
    print(f"checker: {r.valid} in {r.seconds:.2f} s ({r.cause})")


def main() -> int:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", type=int, default=2_000_000,
                    help="history entries (invocations + completions)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=Path("bench/out/report-run/20250101T000000"))
    ap.add_argument("--repeat", type=int, default=3, help="browser opens (best and median)")
    args = ap.parse_args()
    run: Path = args.out.resolve()
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    t0 = time.perf_counter()
    generate(run, args.ops)
    print(f"generated {args.ops} entries in {time.perf_counter() - t0:.1f} s: {run}")
    check(run)

    from harness.formats import read_history
    from reports.render import render
    from reports.run_report import load_run, write_run_report

    t0 = time.perf_counter()
    history = read_history(str(run / "history.jsonl"), "jsonl")
    t_read = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    write_run_report(run, history=history)  # as `clew test` does: the history in memory
    t_mem, c_mem = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    out = write_run_report(run)
    t_total, c_total = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    ctx = load_run(run)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    render("run.html.j2", **ctx)
    t_render = time.perf_counter() - t0
    size = out.stat().st_size
    hist = (run / "history.jsonl").stat().st_size
    print(f"report: {out}")
    print(f"render (clew report: read history.jsonl + build + render): {t_total:.2f} s "
          f"(CPU {c_total:.2f} s)")  # fmt: skip
    print(f"  of which reading history.jsonl ({hist / 1e6:.0f} MB): {t_read:.2f} s; "
          f"building the data: {t_load - t_read:.2f} s; jinja: {t_render:.2f} s")  # fmt: skip
    print(f"render with the history in memory (as at the end of `clew test`): {t_mem:.2f} s "
          f"(CPU {c_mem:.2f} s: on a busy machine, the wall time waits for a core)")  # fmt: skip
    print(f"report size: {size / 1e6:.2f} MB ({size} bytes)")

    chromium = shutil.which("chromium") or shutil.which("google-chrome")
    if chromium is None:
        print("chromium not found: no load time")
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.browser_timing import open_page

    loads = []
    for _ in range(args.repeat):
        fig = open_page(out.as_uri(), chromium)
        if fig["errors"] != "0" or fig["drawn_ms"] is None:
            print(f"the page did not render cleanly in chromium: {fig}")
            return 1
        loads.append(fig)
        print(f"  open: {fig['wall_s']:.2f} s to all drawn (outside); in-page: first paint "
              f"{fig['first_contentful_paint_ms']} ms, scripts from "
              f"{fig['script_start_ms']:.0f} ms, all drawn {fig['drawn_ms']:.0f} ms; "
              f"parts: {fig['timings']}")  # fmt: skip
    loads.sort(key=lambda f: f["wall_s"])
    best, median = loads[0], loads[len(loads) // 2]
    print(f"chromium open (navigate -> every view drawn, DevTools pipe): "
          f"best {best['wall_s']:.2f} s, median {median['wall_s']:.2f} s; "
          f"first contentful paint (median load) "
          f"{median['first_contentful_paint_ms']} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
