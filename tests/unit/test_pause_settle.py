"""A pause whose SIGSTOP lands late: the scan waits for it, and the node-side guard's lease
heals it even when the scan missed it.

SIGSTOP stops its target when the target is next scheduled; on a loaded host that can be
after ``kill`` has returned and the scan after the pause has run. Here the database's pause
script stops a real local ``sleep`` process a moment *after* it returns, which is that race
made certain; every script runs for real with ``sh`` on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from clusters.base import Cluster, Node
from harness import api
from harness.control.remote import Remote
from nemeses import process
from nemeses.process import ProcessNemesis
from tests.unit.local_shell import LocalShell


class LateStopDB:
    """A database that is one local process; its pause script SIGSTOPs it ``delay`` seconds
    after the script has returned."""

    name = "late-stop"

    def __init__(self, pid: int, delay: float) -> None:
        self.pid, self.delay = pid, delay

    def pause_script(self, ctx: api.TestContext, node: Node) -> str:
        return f"( sleep {self.delay}; kill -STOP {self.pid} ) >/dev/null 2>&1 &\n"

    def resume_script(self, ctx: api.TestContext, node: Node) -> str:
        return f"kill -CONT {self.pid}\n"

    async def pause(self, ctx: api.TestContext, node: Node, remote: Remote) -> None:
        await remote.run(self.pause_script(ctx, node))

    async def resume(self, ctx: api.TestContext, node: Node, remote: Remote) -> None:
        await remote.run(self.resume_script(ctx, node))


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def sleeper() -> Iterator[int]:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def context() -> api.TestContext:
    node = Node(name="n1", host="127.0.0.1")
    cl = Cluster(provider="local", name="pause-settle", nodes=(node,), state_dir="/nonexistent")
    return api.TestContext(name="pause-settle", cluster=cl, options={}, rng=random.Random(1),
                           run_dir=Path("/nonexistent"), concurrency=1, time_limit=10)  # fmt: skip


async def pause_once(db: LateStopDB) -> tuple[ProcessNemesis, dict[str, Any]]:
    ctx, nemesis = context(), ProcessNemesis("pause", cast("Any", db))
    await nemesis.setup(ctx, {"n1": cast("Remote", LocalShell())})
    done = await nemesis.invoke(ctx, {"f": "start-pause", "value": ["n1"]})
    return nemesis, done["value"]


async def wait_for_state(pid: int, want: str, within: float = 3.0) -> str:
    for _ in range(int(within / 0.05)):
        if state(pid) == want:
            break
        await asyncio.sleep(0.05)
    return state(pid)


def test_the_scan_waits_for_a_stop_that_lands_late(sleeper: int) -> None:
    async def go() -> None:
        nemesis, value = await pause_once(LateStopDB(sleeper, delay=0.4))
        try:
            assert value["pids"] == {"n1": [sleeper]}
            assert state(sleeper) == "T"
        finally:
            await nemesis.heal_all(context())
        assert state(sleeper) in ("S", "R")

    asyncio.run(go())


def test_the_lease_heals_a_stop_the_scan_missed(
    sleeper: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "STOP_SETTLE", 0.1)

    async def go() -> None:
        nemesis, value = await pause_once(LateStopDB(sleeper, delay=0.8))
        assert value["pids"] == {"n1": []}  # the scan gave up before the stop landed
        assert await wait_for_state(sleeper, "T") == "T"
        lease = nemesis.applied_lease_scripts(value)["n1"]
        # What the guard runs when the controller is gone and the lease runs out:
        await LocalShell().run(lease)
        assert await wait_for_state(sleeper, "S") in ("S", "R")

    asyncio.run(go())


@pytest.fixture
def sleeper_elsewhere() -> Iterator[int]:
    """A ``sleep`` in a network namespace of its own: another local node's process, as
    this host's /proc shows it."""
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs `unshare --net` (root): a process in another network namespace")
    proc = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        # Until unshare has made its namespace and exec'd sleep, the process is in ours:
        # a SIGSTOP then (seen under load) stopped it here, and the scan rightly saw it.
        ours = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if (os.readlink(f"/proc/{proc.pid}/ns/net") != ours
                        and Path(f"/proc/{proc.pid}/comm").read_text().strip() == "sleep"):
                    break  # fmt: skip
            time.sleep(0.01)
        yield proc.pid  # unshare execs sleep: the same PID
    finally:
        proc.kill()
        proc.wait()


def test_a_scan_skips_stopped_processes_of_other_network_namespaces(
    sleeper: int, sleeper_elsewhere: int
) -> None:
    async def go() -> list[int]:
        out = await LocalShell().run(process._STOPPED_PIDS)
        return [int(p) for p in out.stdout.split()]

    for pid in (sleeper, sleeper_elsewhere):
        subprocess.run(["kill", "-STOP", str(pid)], check=True)
    try:
        assert asyncio.run(wait_for_state(sleeper_elsewhere, "T")) == "T"
        assert asyncio.run(wait_for_state(sleeper, "T")) == "T"
        stopped = asyncio.run(go())
        assert sleeper in stopped and sleeper_elsewhere not in stopped
    finally:
        for pid in (sleeper, sleeper_elsewhere):
            subprocess.run(["kill", "-CONT", str(pid)], check=True)


def test_a_pause_neither_records_nor_resumes_another_nodes_stop(
    sleeper: int, sleeper_elsewhere: int
) -> None:
    # Another node (another cluster) is paused while this pause waits for its own stop.
    async def go() -> None:
        other = await asyncio.create_subprocess_exec(
            "sh", "-c", f"sleep 0.15; kill -STOP {sleeper_elsewhere}")  # fmt: skip
        nemesis, value = await pause_once(LateStopDB(sleeper, delay=0.6))
        await other.wait()
        try:
            assert value["pids"] == {"n1": [sleeper]}
        finally:
            await nemesis.heal_all(context())
        assert state(sleeper) in ("S", "R")
        assert state(sleeper_elsewhere) == "T"  # not this nemesis's to resume

    try:
        asyncio.run(go())
    finally:
        subprocess.run(["kill", "-CONT", str(sleeper_elsewhere)], check=True)
