"""Benchmark of the local cluster: ``up`` and ``down`` of 5 nodes, and SSH round trips.

Needs root. Prints the time of each ``up`` and ``down`` (--repeat times), then the round
trip of a trivial command (``true``) over each SSH backend: sequentially on one node, and
on all nodes at once (one connection per node), as median / p95 / max.

    sudo .venv/bin/python bench/cluster.py [--nodes 5] [--repeat 3] [--commands 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from clusters import Cluster, ClusterSpec, get_provider
from harness.control import connect_all

OPTIONS = {"subnet": "10.77.99.0/24", "prefix": "clb-", "bridge": "clb-br0"}


def _summary(samples: list[float]) -> str:
    s = sorted(samples)
    p95 = s[min(len(s) - 1, int(0.95 * len(s)))]
    return (
        f"median {statistics.median(s) * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms, "
        f"max {s[-1] * 1e3:.1f} ms (n={len(s)})"
    )


async def _round_trips(cluster: Cluster, backend: str, commands: int) -> None:
    t0 = time.perf_counter()
    remotes = await connect_all(cluster.nodes, backend=backend)
    connect = time.perf_counter() - t0
    try:
        first = remotes[cluster.nodes[0].name]
        await first.run(["true"])  # warm the channel path
        seq = []
        for _ in range(commands):
            t = time.perf_counter()
            await first.run(["true"])
            seq.append(time.perf_counter() - t)
        print(f"  {backend:<9} connect all {connect * 1e3:.0f} ms; one node, sequential: "
              f"{_summary(seq)}")  # fmt: skip

        async def burst(remote) -> list[float]:  # type: ignore[no-untyped-def]
            out = []
            for _ in range(commands // 4):
                t = time.perf_counter()
                await remote.run(["true"])
                out.append(time.perf_counter() - t)
            return out

        t = time.perf_counter()
        per_node = await remotes.on_nodes(burst)
        wall = time.perf_counter() - t
        allv = [x for v in per_node.values() if isinstance(v, list) for x in v]
        print(f"  {backend:<9} all {len(per_node)} nodes at once: {_summary(allv)}; "
              f"wall {wall:.2f} s")  # fmt: skip
    finally:
        await remotes.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--commands", type=int, default=200)
    args = ap.parse_args()
    provider = get_provider("local")
    with tempfile.TemporaryDirectory(prefix="clew-bench-") as tmp:
        state = Path(tmp) / "state"
        spec = ClusterSpec(nodes=args.nodes, name="bench", state_dir=str(state), options=OPTIONS)
        ups, downs = [], []
        cluster = None
        for i in range(args.repeat):
            t = time.perf_counter()
            cluster = provider.up(spec)
            ups.append(time.perf_counter() - t)
            if i < args.repeat - 1:
                t = time.perf_counter()
                provider.down(state)
                downs.append(time.perf_counter() - t)
        assert cluster is not None
        try:
            print(f"{args.nodes}-node local cluster:")
            print("  up:   " + ", ".join(f"{x:.2f} s" for x in ups))
            print("SSH round trip of `true`:")
            for backend in ("asyncssh", "paramiko"):
                asyncio.run(_round_trips(cluster, backend, args.commands))
        finally:
            t = time.perf_counter()
            provider.down(state)
            downs.append(time.perf_counter() - t)
        print("  down: " + ", ".join(f"{x:.2f} s" for x in downs))
    sys.exit(0)


if __name__ == "__main__":
    main()
