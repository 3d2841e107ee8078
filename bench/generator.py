"""Throughput of the generator + interpreter, with no-op clients and a JSONL journal.

Runs ``limit(N, clients(mix([read, write, cas])))`` (or ``time_limit`` with ``--seconds``)
through :func:`harness.interpreter.interpret` with clients that answer ``ok`` at once,
journaling every op as a JSON line (:func:`harness.formats.jsonl.op_to_json_line`) to a
file, and prints ops/s (one op = one invocation and its completion, two journal lines).
Target: at least 50,000 ops/s on a 2-core machine.

    .venv/bin/python bench/generator.py                      # 200,000 ops, 10 threads
    .venv/bin/python bench/generator.py --ops 500000 --concurrency 20
    .venv/bin/python bench/generator.py --seconds 5 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
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

#: Ops per second the bench must reach on a 2-core machine.
TARGET_OPS_PER_S = 50_000
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
    ops: int, seconds: float | None, concurrency: int, path: Path
) -> tuple[int, float, float]:
    """Run the bench; return (ops completed, wall seconds, CPU seconds)."""
    body: Any = mix([read, write, cas])
    gen = clients(time_limit(seconds, body) if seconds else limit(ops, body))
    ctx = make_ctx(concurrency, path.parent)
    # The run's real journal: every history op appended as a JSON line and flushed.
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


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print ops/s; exit 1 below the target."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ops", type=int, default=200_000, help="ops to run (default 200000)")
    ap.add_argument("--seconds", type=float, help="run for this long instead of --ops")
    ap.add_argument("--concurrency", type=int, default=10, help="client threads (default 10)")
    ap.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="clew-bench-") as tmp:
        path = Path(tmp) / "history.jsonl"
        coro = run(args.ops, args.seconds, args.concurrency, path)
        if args.profile:
            prof = cProfile.Profile()
            n, elapsed, cpu = prof.runcall(asyncio.run, coro)
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        else:
            n, elapsed, cpu = asyncio.run(coro)
        lines = sum(1 for _ in path.open(encoding="utf-8"))
    rate = lines / elapsed
    print(
        f"{n} operations = {lines} history ops (an invocation and a completion each, every "
        f"one journaled and flushed) in {elapsed:.2f} s with {args.concurrency} threads:\n"
        f"  {rate:,.0f} history ops/s (target {TARGET_OPS_PER_S:,}), {n / elapsed:,.0f} "
        f"operations/s; per CPU-second (an otherwise idle machine): {lines / cpu:,.0f} "
        f"history ops, {n / cpu:,.0f} operations"
    )
    return 0 if rate >= TARGET_OPS_PER_S else 1


if __name__ == "__main__":
    sys.exit(main())
