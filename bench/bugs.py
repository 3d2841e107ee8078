"""Runs to first detection per (bug, scheduler) cell: bugkv's seeded bugs and real
databases' published bugs (:data:`REAL_BUGS`: Redis with Sentinel losing acknowledged
writes, etcd's lock granted twice), with any scheduler (root).

For every cell it runs ``--campaigns`` campaigns (:mod:`harness.campaign`; campaign ``c``
starts at seed ``c * 1000``), each capped at ``--runs`` runs; no campaign of a cell starts
after ``--cell-budget`` seconds, and a started campaign runs to its end (a detection or
the cap), so that every campaign that found nothing is censored at the cap. Learning
schedulers' memory is fresh at every campaign's start (each campaign has a store root of
its own under ``--store``).

Where the runs are made:

* by default here, on one local cluster (a slot of the cluster pool, 10.77.232-237.0/24);
* ``--workers N``: campaigns in parallel, N at a time, on a local Dask cluster of N
  worker processes, each with a local cluster of its own (a pool slot);
* ``--dask ADDRESS``: the same on an existing Dask scheduler's workers (``--parallel``
  campaigns at a time, default: one per worker).

The campaigns, the learners' memory and the runs stay in this process's store either way.

Ctrl-C (once) starts no further campaign or run and stops the runs in flight, here or on
the workers (each heals its faults and tears its database down; a campaign cut short is
not recorded), then takes the clusters down and prints the table of what was finished
(exit 130); the workers of ``--workers`` ignore the terminal's Ctrl-C, the controller
stops their runs. A second Ctrl-C abandons the runs in flight (the clusters still go down).

It prints, per cell, the median runs, seconds and fault ops to detection with their
interquartile range (campaigns that found nothing count at the cap), how many found
nothing, and for each scheduler but ``random`` a one-sided Mann-Whitney U test against
``random``'s cell (:mod:`harness.campaign_table`), as text and as Markdown; and it writes
one JSON row per campaign, as campaigns finish, to ``bench/results/bugs-<time>.json`` (bug,
depth, scheduler, config and experiment hashes, clew commit, runs, seconds and fault ops
to detection or ``null`` with the cap and what was spent, each run's wall time, the
machine's load average at the campaign's start and end).
``--table FILE...`` prints the table of stored rows (figures from different sittings add
up when their config hashes agree; a file given as ``LABEL=FILE`` keeps its cells apart,
named ``adaptive (LABEL)``: a trial against the version before it).

A seeded bug is measured on the yardstick (``YARDSTICK`` in ``harness/dbs/bugkv_bugs.py``,
``docs/bugkv.md``: every local fault kind, an op every second, at most 2 faults at once,
10 fault ops per run for every scheduler, 12 s runs, the bug's workload and options). A
real bug brings its own suite, fault kinds, interval, run length and recovery time
(``docs/redis.md``). ``--faults``, ``--interval``, ``--overlap`` and ``--fault-ops``
override either. A scheduler named ``adaptive+agents`` is ``adaptive`` with node agents that
watch the database's log and strike nothing (its ``lead`` state and ``leader`` role then
come from the log; docs/agents.md).

    sudo nice .venv/bin/python bench/bugs.py --bugs early-ack --campaigns 20 --runs 10 --workers 2
    .venv/bin/python bench/bugs.py --table bench/results/bugs-*.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.campaign import INTERRUPTED, LocalExecutor, RunExecutor, run_campaign
from harness.campaign_interrupt import stop_on_ctrl_c
from harness.campaign_pool import DEFAULT_SUBNETS, ClusterPool, parse_subnets
from harness.campaign_table import campaign_fields, cells, markdown, read_rows, text
from harness.dbs.bugkv_bugs import BUG_CATALOG, NODES, YARDSTICK
from harness.errors import InputError
from harness.spec import TestSpec, load_spec

#: A scheduler named ``<name>+agents`` runs with node agents that watch the database's log
#: and strike nothing (the spec's ``agent_watch``), for a scheduler that reads them.
AGENTS = "+agents"
#: Seconds a campaign may take at most (a guard: a started campaign should reach its cap).
CAMPAIGN_BUDGET = 7200.0


@dataclass(frozen=True, slots=True)
class RealBug:
    """A published bug of a real database as a case: its suite and workload, the depth of
    its shortest schedule, and the run shape it needs (a failover takes seconds, so the
    faults hold longer than bugkv's, and the final reads wait for the cluster to settle)."""

    name: str
    suite: str
    workload: str
    depth: int
    time_limit: float
    faults: str
    interval: float
    recovery_time: float
    options: dict[str, Any] = field(default_factory=dict)
    op_timeout: float = 5.0  # the spec's default; longer where an op may wait longer

    def suite_options(self) -> dict[str, Any]:
        """The suite options of a run of this case."""
        return dict(self.options)


REAL_BUGS = {
    "redis-lost-writes": RealBug(
        "redis-lost-writes", "redis", "set-full", 1, 14.0, "partition,pause,kill", 4.0, 10.0
    ),
    # A waiter must still be waiting when its paused member resumes (acquire_timeout 10 s,
    # the replay test's), and two pause windows fit in a run (docs/etcd-locks.md).
    "etcd-lock-overlap": RealBug(
        "etcd-lock-overlap",
        "etcd",
        "lock",
        2,
        20.0,
        "pause",
        4.0,
        2.0,
        {"acquire_timeout": 10},
        op_timeout=12.0,
    ),
    # Depth 0: a healthy Galera cluster loses updates between nodes (docs/galera.md).
    "galera-lost-update": RealBug(
        "galera-lost-update", "galera", "list-append", 0, 12.0, "partition,pause,kill", 4.0, 5.0
    ),
}


def campaign_spec(args: argparse.Namespace, name: str, scheduler: str, c: int,
                  store: Path) -> tuple[TestSpec, int]:  # fmt: skip
    """The spec of campaign ``c`` of the (``name``, ``scheduler``) cell, and the bug's depth:
    a seeded bug on the yardstick (:data:`YARDSTICK`), a real bug in its own shape; flags
    given override either."""
    if name in REAL_BUGS:
        real = REAL_BUGS[name]
        fields: dict[str, Any] = {
            "suite": real.suite, "workload": real.workload, "nodes": len(NODES),
            "time_limit": real.time_limit, "faults": real.faults, "interval": real.interval,
            "recovery_time": real.recovery_time, "options": real.suite_options(),
            "op_timeout": real.op_timeout,
        }  # fmt: skip
        depth = real.depth
    else:
        bug = BUG_CATALOG[name]
        fields, depth = YARDSTICK.spec_args(bug), bug.depth
    given = {"faults": args.faults, "interval": args.interval, "overlap": args.overlap,
             "fault_ops": args.fault_ops}  # fmt: skip
    fields.update({k: v for k, v in given.items() if v is not None})
    base, with_agents = scheduler.removesuffix(AGENTS), scheduler.endswith(AGENTS)
    spec = load_spec(**fields, scheduler=base, seed=c * 1000, store=str(store),
                     agent_watch=with_agents)  # fmt: skip
    return spec, depth


@contextlib.contextmanager
def executors(args: argparse.Namespace, pool: ClusterPool) -> Iterator[tuple[RunExecutor, int]]:
    """Where the runs are made, and how many campaigns may run at once."""
    if args.workers or args.dask:
        from harness.campaign_dask import DaskExecutor, dask_client

        with dask_client(address=args.dask, workers=args.workers, pool=pool) as client:
            n = args.parallel or args.workers or len(client.scheduler_info()["workers"])
            yield DaskExecutor(client, pool), max(1, n)
        return
    slot = pool.take()
    try:
        yield _SlotExecutor(str(slot.state_dir), slot.options), 1
    finally:
        slot.release()


@dataclass(slots=True)
class _SlotExecutor:
    """Runs here, on the pool slot's cluster."""

    state_dir: str
    options: dict[str, Any]

    def session(self, spec: TestSpec) -> contextlib.AbstractContextManager[Any]:
        import dataclasses

        return LocalExecutor().session(
            dataclasses.replace(
                spec, cluster_state_dir=self.state_dir, cluster_options=dict(self.options)
            )
        )

    def interrupt(self, how: str = "Ctrl-C") -> None:
        """Stop the run in flight (made in one of this process's threads)."""
        LocalExecutor().interrupt(how)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bugs", default=",".join(BUG_CATALOG),
                   help=f"comma-separated bug names (also {', '.join(REAL_BUGS)})")  # fmt: skip
    p.add_argument("--schedulers", default="random", help="comma-separated schedulers")
    p.add_argument("--campaigns", type=int, default=20, help="campaigns per cell")
    p.add_argument("--first-campaign", type=int, default=0,
                   help="index of the first campaign (its seed is index * 1000)")  # fmt: skip
    p.add_argument("--runs", type=int, default=10, help="cap on runs per campaign")
    p.add_argument("--cell-budget", type=float, default=3600.0,
                   help="seconds after a cell's first campaign started in which its campaigns "
                        "may start")  # fmt: skip
    p.add_argument("--faults", default=None, help="fault kinds (default: the case's)")
    p.add_argument("--interval", type=float, default=None, help="(default: the case's)")
    p.add_argument("--overlap", type=int, default=None,
                   help="faults held at once (default: the yardstick's / the case's)")  # fmt: skip
    p.add_argument("--fault-ops", type=int, default=None,
                   help="fault ops per run, every scheduler (default: the yardstick's)",
                   )  # fmt: skip
    p.add_argument("--interleave", action="store_true",
                   help="campaign by campaign across the cells (every cell grows together) "
                        "instead of cell by cell")  # fmt: skip
    p.add_argument("--store", default=None, help="where campaigns are kept (default: temp)")
    p.add_argument("--workers", type=int, default=0, help="a local Dask cluster of N workers")
    p.add_argument("--dask", default=None, metavar="ADDRESS", help="an existing Dask scheduler")
    p.add_argument("--parallel", type=int, default=0,
                   help="campaigns at once (default: one per worker)")  # fmt: skip
    p.add_argument("--subnets", default=None,
                   help="the cluster pool's /24 subnets (default 10.77.232-237.0/24)")  # fmt: skip
    p.add_argument("--out", default=None,
                   help="results file (default bench/results/bugs-<time>.json)")  # fmt: skip
    p.add_argument("--table", nargs="+", metavar="FILE",
                   help="print the table of stored rows; LABEL=FILE keeps a file's cells "
                        "apart from the others' (named 'adaptive (LABEL)')")  # fmt: skip
    p.add_argument("--resume", default=None, metavar="FILE",
                   help="a results file to continue: its campaigns are not run again, new "
                        "rows are added to it")  # fmt: skip
    args = p.parse_args(argv)
    if args.table:
        try:
            table = cells(read_rows(args.table))
        except InputError as e:
            print(f"bugs.py: {e}", file=sys.stderr)
            return 254
        print("\n".join(text(table)))
        print()
        print(markdown(table), end="")
        return 0
    if os.geteuid() != 0:
        sys.exit("bench/bugs.py needs root (local namespace clusters)")
    if args.workers and args.dask:
        sys.exit("--workers (a local Dask cluster) or --dask ADDRESS, not both")
    logging.basicConfig(level=logging.WARNING)
    import tempfile

    base = Path(args.store or tempfile.mkdtemp(prefix="clew-bugs-"))
    subnets = parse_subnets(args.subnets) if args.subnets else DEFAULT_SUBNETS
    pool = ClusterPool(subnets=subnets, nodes=len(NODES))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = Path(args.out) if args.out else out / f"bugs-{time.strftime('%Y%m%dT%H%M%S')}.json"
    rows: list[dict[str, Any]] = []
    if args.resume:
        path = Path(args.resume)
        rows = read_rows([path], whole=True)  # written again: every field kept
    done = {(r["bug"], r["scheduler"], r.get("campaign_index")) for r in rows}
    lock = threading.Lock()
    cell_start: dict[tuple[str, str], float] = {}
    indices = range(args.first_campaign, args.first_campaign + args.campaigns)
    cells_ = [(name, sched) for name in args.bugs.split(",")
              for sched in args.schedulers.split(",")]  # fmt: skip
    units = ([(name, sched, c) for c in indices for name, sched in cells_] if args.interleave
             else [(name, sched, c) for name, sched in cells_ for c in indices])  # fmt: skip
    units = [u for u in units if u not in done]
    for name, _, _ in units:
        if name not in REAL_BUGS and name not in BUG_CATALOG:
            sys.exit(f"unknown bug {name!r}; known: {', '.join([*BUG_CATALOG, *REAL_BUGS])}")
    t_all = time.monotonic()

    stop = threading.Event()
    abandoned = False

    def one(unit: tuple[str, str, int], executor: RunExecutor) -> None:
        name, sched, c = unit
        with lock:
            t0 = cell_start.setdefault((name, sched), time.monotonic())
        if time.monotonic() - t0 > args.cell_budget or stop.is_set():
            return
        spec, depth = campaign_spec(args, name, sched, c, base / name / sched / f"c{c}")
        started, load_before = time.monotonic(), os.getloadavg()[0]
        try:
            result = run_campaign(spec, runs=args.runs, budget=CAMPAIGN_BUDGET,
                                  executor=executor, should_stop=stop.is_set)  # fmt: skip
        except Exception:
            if stop.is_set():
                return  # its run was interrupted as it started: cut short
            raise
        if result.stopped == INTERRUPTED:
            return  # cut short: it measured nothing
        row = {
            "bug": name, "depth": depth, "scheduler": sched, "campaign_index": c,
            "seed": spec.seed, **campaign_fields(result.to_json()),
            "campaign_wall_seconds": round(time.monotonic() - started, 1),
            "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "unknown_runs": sum(1 for r in result.runs if r.valid not in (True, False)),
            "tainted_runs": sum(1 for r in result.runs if r.tainted),
            "workers": sorted({r.worker or "local" for r in result.runs}),
            "campaign": str(result.directory),
        }  # fmt: skip
        with lock:
            rows.append(row)
            path.write_text(json.dumps(rows, indent=1) + "\n")
        print(f"{name} {sched} campaign {c}: {result.stopped} "
              f"({row['campaign_wall_seconds']:.0f} s)", flush=True)  # fmt: skip

    def say(text: str) -> None:
        print(text, flush=True)

    # Ctrl-C: campaigns not started never start; those running stop their run in flight
    # (healed, torn down) and are not recorded (cut short, they measured nothing); the
    # clusters go down with the executor. A second Ctrl-C abandons the runs in flight.
    made: list[RunExecutor] = []  # the executor, once there is one

    def interrupt_runs(how: str) -> None:
        for e in made:
            e.interrupt(how)

    try:
        with (stop_on_ctrl_c(stop, interrupt_runs, say),
              executors(args, pool) as (executor, parallel)):  # fmt: skip
            made.append(executor)
            threads = ThreadPoolExecutor(max_workers=parallel)
            try:
                futures = {threads.submit(one, u, executor): u for u in units}
                for f, u in futures.items():
                    if (e := f.exception()) is not None and not stop.is_set():
                        print(f"{u[0]} {u[1]} campaign {u[2]}: ERROR {type(e).__name__}: {e}",
                              flush=True)  # fmt: skip
            except KeyboardInterrupt:
                say("abandoned: the runs in flight are cut; taking the clusters down")
                threads.shutdown(wait=False, cancel_futures=True)
                raise
            threads.shutdown(wait=True)
            if stop.is_set():
                say("interrupted: every run in flight has stopped; taking the clusters down")
    except KeyboardInterrupt:
        abandoned = True
    finally:
        wall = time.monotonic() - t_all
        if rows:
            table = cells(rows)
            print("\n".join(text(table)))
            print()
            print(markdown(table), end="")
        print(f"results: {path}; {len(rows)} campaigns in {wall:.0f} s of wall time", flush=True)
    if abandoned:  # a thread may still wait for a run that was cut: do not wait for it
        os._exit(130)
    return 130 if stop.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
