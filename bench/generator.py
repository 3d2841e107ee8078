"""Throughput of the generator + interpreter, with no-op clients and the real journal.

Runs ``clients(time_limit(S, mix([read, write, cas])))`` (or ``limit(N, ...)`` with
``--ops``) through :func:`harness.interpreter.interpret` with clients that answer ``ok``
at once, journaling every op to a ``history.jsonl`` with the run's
:class:`harness.store.Journal` – each invocation written to the file before its client
sees it, each completion as it is taken – several times, and prints the operations per
second of each run, the best and the median (one operation = an invocation and its
completion: two journal lines). Target: a median of at least 50,000 operations/s on a
2-core machine with the default 10 threads (the default concurrency of ``clew test``).

    .venv/bin/python bench/generator.py                        # 5 runs of 3 s, 10 threads
    .venv/bin/python bench/generator.py --runs 3 --seconds 5 --concurrency 20
    .venv/bin/python bench/generator.py --ops 200000           # a number of ops per run
    .venv/bin/python bench/generator.py --runs 1 --profile     # the top of a cProfile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from clusters.base import Cluster, Node
from harness.api import Op, TestContext
from harness.generator import GenContext, clients, limit, mix, time_limit
from harness.interpreter import interpret
from harness.store import Journal

#: Operations per second (median of the runs) the bench must reach on a 2-core machine.
TARGET_OPS_PER_S = 50_000
#: Defaults: runs, seconds per run, client threads (clew test's default concurrency).
RUNS = 5
SECONDS = 3.0
CONCURRENCY = 10
NODES = 5


class NoopClient:
    """Answers every op ``ok`` at once (reads read 0)."""

    async def open(self, ctx: TestContext, node: Node) -> None:
        """Nothing to open."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """``ok``."""
        return {"type": "ok", "value": 0} if op["f"] == "read" else {"type": "ok"}

    async def close(self, ctx: TestContext) -> None:
        """Nothing to close."""


def read(ctx: GenContext) -> Op:
    """A read of a random key."""
    return {"f": "read", "key": ctx.rng.randrange(10)}


def write(ctx: GenContext) -> Op:
    """A write of a random value to a random key."""
    return {"f": "write", "key": ctx.rng.randrange(10), "value": ctx.rng.randrange(5)}


def cas(ctx: GenContext) -> Op:
    """A compare-and-set on a random key."""
    r = ctx.rng
    return {"f": "cas", "key": r.randrange(10), "value": [r.randrange(5), r.randrange(5)]}


def make_ctx(concurrency: int, run_dir: Path) -> TestContext:
    """A test context over a cluster of fake nodes (never contacted)."""
    cluster = Cluster(
        provider="bench",
        name="bench",
        nodes=tuple(Node(name=f"n{i + 1}", host="127.0.0.1") for i in range(NODES)),
        state_dir=str(run_dir),
    )
    return TestContext(
        name="bench",
        cluster=cluster,
        options={},
        rng=random.Random(0),
        run_dir=run_dir,
        concurrency=concurrency,
        time_limit=0,
    )


async def run(
    ops: int | None, seconds: float, concurrency: int, path: Path
) -> tuple[int, float, float]:
    """One run (``ops`` operations, or ``seconds`` of them); return (operations
    completed, wall seconds, CPU seconds)."""
    body: Any = mix([read, write, cas])
    gen = clients(limit(ops, body) if ops else time_limit(seconds, body))
    ctx = make_ctx(concurrency, path.parent)
    # The run's real journal: every history op appended as a JSON line and written out.
    journal = Journal(path)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        progress = await interpret(
            gen,
            ctx=ctx,
            clients=[NoopClient() for _ in range(concurrency)],
            nemesis=None,
            journal=journal,
            seed=1,
        )
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    finally:
        journal.close()
    return progress.ok + progress.fail + progress.info, elapsed, cpu


def one_run(args: argparse.Namespace, profile: cProfile.Profile | None) -> tuple[float, str]:
    """Run once in a fresh directory; return (operations/s, a line describing the run)."""
    with tempfile.TemporaryDirectory(prefix="clew-bench-") as tmp:
        path = Path(tmp) / "history.jsonl"
        coro = run(args.ops, args.seconds, args.concurrency, path)
        if profile is not None:
            n, elapsed, cpu = profile.runcall(asyncio.run, coro)
        else:
            n, elapsed, cpu = asyncio.run(coro)
        lines = sum(1 for _ in path.open(encoding="utf-8"))
    if lines != 2 * n:
        raise SystemExit(f"the journal has {lines} lines for {n} operations, not {2 * n}")
    rate = n / elapsed
    return rate, (
        f"{n:,} operations ({lines:,} journal lines) in {elapsed:.2f} s: {rate:,.0f} "
        f"operations/s ({2 * rate:,.0f} history ops/s), CPU {cpu / elapsed:.0%}"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print each run, the best and the median; exit 1 if the median
    is below the target."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=RUNS, help=f"runs (default {RUNS})")
    ap.add_argument(
        "--seconds", type=float, default=SECONDS, help=f"seconds per run (default {SECONDS:g})"
    )
    ap.add_argument("--ops", type=int, help="operations per run, instead of --seconds")
    ap.add_argument(
        "--concurrency",
        type=int,
        default=CONCURRENCY,
        help=f"client threads (default {CONCURRENCY})",
    )
    ap.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    args = ap.parse_args(argv)
    print(
        f"generator + interpreter + journal, no-op clients, {args.concurrency} threads, "
        f"{args.runs} runs of "
        + (f"{args.ops:,} operations" if args.ops else f"{args.seconds:g} s")
    )
    profile = cProfile.Profile() if args.profile else None
    rates = []
    for i in range(args.runs):
        rate, line = one_run(args, profile)
        rates.append(rate)
        print(f"  run {i + 1}: {line}", flush=True)
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    median = statistics.median(rates)
    print(
        f"operations/s: best {max(rates):,.0f}, median {median:,.0f} "
        f"(target: median >= {TARGET_OPS_PER_S:,}) -> "
        + ("PASS" if median >= TARGET_OPS_PER_S else "FAIL")
    )
    return 0 if median >= TARGET_OPS_PER_S else 1


if __name__ == "__main__":
    sys.exit(main())
