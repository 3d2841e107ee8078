"""Benchmark of what the tests only check for correctness: ``up`` of a local cluster that is
already up (nothing rebuilt), and the restart of a killed etcd member until it is healthy
(the kill nemesis's heal). Needs root and etcd.

    sudo .venv/bin/python bench/restart.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from clusters import Cluster, ClusterSpec, get_provider
from harness.api import TestContext
from harness.control import connect_all
from harness.dbs.etcd import EtcdDB
from nemeses.process import ProcessNemesis

OPTIONS = {"subnet": "10.77.189.0/24", "prefix": "cbr-", "bridge": "cbr-br0"}


def _summary(samples: list[float]) -> str:
    each = ", ".join(f"{x:.2f}" for x in samples)
    return f"{each} s (median {statistics.median(samples):.2f} s)"


async def _restarts(cluster: Cluster, repeat: int) -> list[float]:
    ctx = TestContext(name="bench-restart", cluster=cluster, options={}, rng=random.Random(1),
                      run_dir=Path(cluster.state_dir), concurrency=1, time_limit=60)  # fmt: skip
    db = EtcdDB()
    async with await connect_all(cluster.nodes) as remotes:
        await asyncio.gather(*(db.setup(ctx, n, remotes[n.name]) for n in cluster.nodes))
        try:
            nemesis = ProcessNemesis("kill", db)
            await nemesis.setup(ctx, remotes)
            times = []
            for _ in range(repeat):
                await nemesis.invoke(ctx, {"f": "start-kill", "value": ["n3"]})
                t = time.perf_counter()
                await nemesis.invoke(ctx, {"f": "stop-kill", "value": None})
                times.append(time.perf_counter() - t)
            return times
        finally:
            await asyncio.gather(*(db.teardown(ctx, n, remotes[n.name]) for n in cluster.nodes))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    provider = get_provider("local")
    with tempfile.TemporaryDirectory(prefix="clew-bench-") as tmp:
        state = Path(tmp) / "state"
        spec = ClusterSpec(nodes=3, name="bench-restart", state_dir=str(state), options=OPTIONS)
        try:
            cluster = provider.up(spec)
            again = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                provider.up(spec)
                again.append(time.perf_counter() - t)
            print(f"up of a running 3-node cluster: {_summary(again)}")
            restarts = asyncio.run(_restarts(cluster, args.repeat))
            print(f"etcd member killed, restarted until healthy: {_summary(restarts)}")
        finally:
            provider.down(state)


if __name__ == "__main__":
    main()
