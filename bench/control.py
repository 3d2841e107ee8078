"""Benchmark of the SSH control layer against a loopback OpenSSH sshd, both backends.

Prints, per backend: the wall time of 50 concurrent ``sleep 0.2`` commands over one
connection limited to 10 channels (the floor is 5 waves, 1.0 s), and how long connecting
takes to fail when nothing listens (1 try), when a listener never speaks (1 s connect
timeout) and when the key is refused.

    .venv/bin/python bench/control.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness.control import connect
from harness.control.loopback import LoopbackSshd, free_port
from harness.errors import SSHError


async def _fifty_commands(sshd: LoopbackSshd, backend: str) -> float:
    async with await connect(sshd.node(), backend=backend, max_channels=10) as r:
        t = time.perf_counter()
        await asyncio.gather(*(r.run(["sh", "-c", f"sleep 0.2; echo {i}"]) for i in range(50)))
        return time.perf_counter() - t


async def _fails(sshd: LoopbackSshd, backend: str, *, retries: int, **node: object) -> float:
    """Seconds until connecting to ``sshd.node(**node)`` fails."""
    t = time.perf_counter()
    try:
        await connect(sshd.node("n1", **node), backend=backend, retries=retries, connect_timeout=1)
    except SSHError:
        return time.perf_counter() - t
    raise RuntimeError("the connection was expected to fail")


def _line(label: str, samples: list[float]) -> str:
    return f"    {label:<34} median {statistics.median(samples):.2f} s, max {max(samples):.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    # paramiko's transport thread logs the silent listener's missing banner with a traceback
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="clew-bench-ssh-") as tmp, LoopbackSshd(tmp) as sshd:
        wrong = Path(tmp) / "wrong_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)],
                       check=True)  # fmt: skip
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)
            mute = silent.getsockname()[1]
            for backend in ("asyncssh", "paramiko"):
                print(f"{backend}:")
                runs = [asyncio.run(_fifty_commands(sshd, backend)) for _ in range(args.repeat)]
                print(_line("50 x sleep 0.2, 10 channels:", runs))
                cases = {
                    "refused (1 try):": {"port": free_port(), "retries": 1},
                    "silent listener (1 s timeout):": {"port": mute, "retries": 1},
                    "wrong key:": {"key_file": str(wrong), "retries": 3},
                }
                for label, how in cases.items():
                    fails = [asyncio.run(_fails(sshd, backend, **how)) for _ in range(args.repeat)]
                    print(_line(label, fails))


if __name__ == "__main__":
    main()
