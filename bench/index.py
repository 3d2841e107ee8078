"""Benchmark of the store's index (``store/index.html``) for a store of many runs.

``generate`` makes a synthetic store of ``--runs`` runs spread over ``--tests`` tests, each
run as the runner leaves it (spec.json, schedule.json, versions.json, history.jsonl,
faults.jsonl, results.json with two checkers, clew.log, report.html, three nodes' logs);
about one run in ten is invalid. ``write`` writes the index once (what every ``clew test``
does at its end); ``add`` adds one new run (the next second after the newest). Time each
step apart, e.g.::

    .venv/bin/python bench/index.py generate --store /tmp/idx-50k --runs 50000
    /usr/bin/time -v .venv/bin/python bench/index.py write --store /tmp/idx-50k   # first
    .venv/bin/python bench/index.py add --store /tmp/idx-50k
    /usr/bin/time -v .venv/bin/python bench/index.py write --store /tmp/idx-50k   # after one run

``write --fresh`` deletes the index's row cache first (a first write).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path

_START = dt.datetime(2026, 1, 1)


def _put(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def make_run(store: Path, test: str, i: int) -> Path:
    """Write the ``i``-th synthetic run of ``test`` (its name is ``i`` seconds after
    2026-01-01) and return its directory."""
    run = store / test / (_START + dt.timedelta(seconds=i)).strftime("%Y%m%dT%H%M%S")
    invalid = i % 10 == 3
    (run / "nodes").mkdir(parents=True)
    spec = {"name": test, "suite": "etcd", "workload": "register", "seed": i,
            "nodes": ["n1", "n2", "n3"], "time_limit": 60, "concurrency": 10,
            "faults": ["partition", "kill"], "options": {"serializable_reads": i % 2 == 0},
            "provider": "local", "store": str(store)}  # fmt: skip
    _put(run / "spec.json", json.dumps(spec, indent=2))
    _put(run / "schedule.json", json.dumps({"source": "random", "seed": i, "steps": []}))
    _put(run / "versions.json", json.dumps({"clew": "0.1", "python": "3.12", "etcd": "3.5"}))
    ops = []
    for k in range(20):
        t = 1_000_000_000 + k * 50_000_000
        ops.append({"index": 2 * k, "type": "invoke", "f": "write", "value": k, "process": k % 5,
                    "time": t})  # fmt: skip
        ops.append({"index": 2 * k + 1, "type": "ok", "f": "write", "value": k, "process": k % 5,
                    "time": t + 2_000_000})  # fmt: skip
    _put(run / "history.jsonl", "".join(json.dumps(o) + "\n" for o in ops))
    _put(run / "faults.jsonl", '{"time": 1, "kind": "partition", "phase": "start"}\n'
                               '{"time": 2, "kind": "partition", "phase": "stop"}\n')  # fmt: skip
    lin = {"valid": not invalid, "cause": "a stale read" if invalid else None,
           "anomalies": ["stale-read"] if invalid else [], "configs": [{"x": j} for j in range(20)]}
    results = {"format": 2, "valid": not invalid, "checkers": {"linearizable": lin,
               "stats": {"valid": True, "count": 40}}, "ops": 20, "history_lines": 40,
               "duration": 1.0, "wall_seconds": 12.5, "check_seconds": 0.01, "tainted": False,
               "heal_residue": {}, "heal_verified": True,
               "faults": [{"kind": "partition", "start": 1.0, "stop": 2.0, "targets": ["n1"],
                           "value": None}], "problems": [], "incomplete": None}  # fmt: skip
    _put(run / "results.json", json.dumps(results, indent=2))
    _put(run / "clew.log", "12:00:00 INFO the run\n" * 20)
    _put(run / "report.html", "<!doctype html><title>report</title>\n")
    for n in ("n1", "n2", "n3"):
        (run / "nodes" / n).mkdir()
        _put(run / "nodes" / n / "etcd.log", f"{n} says hello\n" * 10)
    return run


def generate(store: Path, runs: int, tests: int) -> None:
    """A store of ``runs`` runs over ``tests`` tests (run ``i`` in test ``i % tests``)."""
    for i in range(runs):
        make_run(store, f"etcd-register-{i % tests}", i)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("step", choices=("generate", "write", "add"))
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--runs", type=int, default=50_000)
    p.add_argument("--tests", type=int, default=10)
    p.add_argument("--fresh", action="store_true", help="delete the row cache first")
    a = p.parse_args()
    t0 = time.perf_counter()
    if a.step == "generate":
        generate(a.store, a.runs, a.tests)
        print(f"generated {a.runs} runs in {time.perf_counter() - t0:.1f} s")
    elif a.step == "add":
        newest = max((r for t in a.store.iterdir() if t.is_dir() for r in t.iterdir()),
                     key=lambda r: r.name)  # fmt: skip
        i = int((dt.datetime.strptime(newest.name, "%Y%m%dT%H%M%S") - _START).total_seconds())
        print(f"added {make_run(a.store, newest.parent.name, i + 1)}")
    else:
        from reports.index import INDEX_NAME, write_index

        if a.fresh:
            for cache in a.store.glob(".clew-index-cache*"):
                cache.unlink()
        write_index(a.store)
        size = (a.store / INDEX_NAME).stat().st_size
        print(f"index written in {time.perf_counter() - t0:.2f} s, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
