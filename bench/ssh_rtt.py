"""Round-trip time of one SSH command (``true``) over one reused connection, per backend.

Starts a throwaway sshd on 127.0.0.1 (see :mod:`harness.control.loopback`), or uses the
node you name, runs ``true`` N times one after the other on a single connection and prints
the median, p95 and max. Target: median under 20 ms for asyncssh on loopback.

    .venv/bin/python bench/ssh_rtt.py                  # loopback sshd, both backends
    .venv/bin/python bench/ssh_rtt.py --runs 500 --backend asyncssh
    .venv/bin/python bench/ssh_rtt.py --host 10.77.0.11 --key ~/.clew/id_ed25519 \\
        --known-hosts ~/.clew/known_hosts               # a real node
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time

from clusters.base import Node
from harness.control import BACKENDS, connect
from harness.control.loopback import LoopbackSshd


async def measure(node: Node, backend: str, runs: int) -> tuple[float, list[float]]:
    """Seconds to connect, and the round trip of each of ``runs`` ``true`` commands."""
    start = time.perf_counter()
    remote = await connect(node, backend=backend)
    connected = time.perf_counter() - start
    try:
        await remote.run(["true"])  # warm-up, not counted
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            await remote.run(["true"])
            times.append(time.perf_counter() - t)
    finally:
        await remote.close()
    return connected, times


def report(backend: str, connected: float, times: list[float]) -> str:
    """One line: the median, p95 and max round trip in milliseconds."""
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return (
        f"{backend:<9} runs={len(ms)}  connect={connected * 1000:6.1f} ms  "
        f"median={statistics.median(ms):6.2f} ms  p95={p95:6.2f} ms  max={ms[-1]:6.2f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--backend", choices=BACKENDS, action="append")
    parser.add_argument("--host", help="a node to measure instead of a loopback sshd")
    parser.add_argument("--port", type=int, default=22)
    parser.add_argument("--user", default="root")
    parser.add_argument("--key")
    parser.add_argument("--known-hosts")
    args = parser.parse_args()
    backends = args.backend or list(BACKENDS)

    def run_all(node: Node) -> None:
        print(f"target {node.user}@{node.host}:{node.port}, `true` on one connection")
        for backend in backends:
            connected, times = asyncio.run(measure(node, backend, args.runs))
            print(report(backend, connected, times))

    if args.host:
        run_all(
            Node(
                name=args.host,
                host=args.host,
                port=args.port,
                user=args.user,
                key_file=args.key,
                known_hosts=args.known_hosts,
            )
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="clew-ssh-rtt-") as d, LoopbackSshd(d) as sshd:
        run_all(sshd.node("loopback"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
