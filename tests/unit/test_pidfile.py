"""A server managed through its pidfile (harness/dbs/pidfile.py): launched once, signalled,
its PID read while it lives, stopped for sure, its log's tail read; every script runs for
real with ``sh`` on this machine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest

from harness.control.remote import Remote
from harness.dbs.pidfile import launch_script, log_tail, running_pid, signal_script, stop_script
from harness.errors import CommandError
from tests.unit.local_shell import LocalShell


def test_a_server_through_its_pidfile(tmp_path: Path):
    async def scenario() -> None:
        node = cast("Remote", LocalShell())
        d, log, pid = tmp_path / "srv", str(tmp_path / "srv" / "log"), str(tmp_path / "pid")
        assert await running_pid(node, pid, 5) is None  # no pidfile yet
        argv = ["sh", "-c", "echo started; exec sleep 60"]
        await node.run(launch_script(str(d), log, pid, argv))
        first = await running_pid(node, pid, 5)
        assert first is not None and int((await node.run(["cat", pid])).stdout) == first
        again = await node.run(launch_script(str(d), log, pid, argv))
        assert again.stdout.strip() == "already-running"
        assert await running_pid(node, pid, 5) == first  # not launched twice
        await node.run(signal_script(pid, "STOP", "srv"))
        await node.run(stop_script(pid, 5, "srv"))  # a stopped server is killed too
        assert await running_pid(node, pid, 5) is None
        with pytest.raises(CommandError, match="is not running"):
            await node.run(signal_script(pid, "TERM", "srv"))
        for _ in range(50):  # the log is written by the server as it starts
            if "started" in await log_tail(node, log, 5, 5):
                break
            await asyncio.sleep(0.05)
        assert (await log_tail(node, log, 5, 5)).strip() == "started"

    asyncio.run(scenario())


def test_a_log_that_cannot_be_read_says_why_and_raises_nothing(tmp_path: Path):
    missing = str(tmp_path / "none.log")
    got = asyncio.run(log_tail(cast("Remote", LocalShell()), missing, 5, 5))
    assert got.startswith(f"(cannot read {missing}: ") and "No such file" in got
