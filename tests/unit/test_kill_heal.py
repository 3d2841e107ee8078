"""The kill nemesis's heal waits for the nodes it killed, not for every node: a node paused
by another fault never answers, and waiting for it made every stop-kill that overlapped a
pause time out (seen in a run of the adaptive scheduler: pause n3, kill n4, stop-kill
failed after 30 s on n3)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any, cast

import pytest

from clusters.base import Cluster, Node
from harness import api
from harness.control.remote import Remote
from harness.errors import NemesisError
from nemeses.process import ProcessNemesis

NODES = ("n1", "n2", "n3")


class RecordingDB:
    """Kills and starts are recorded; ``wait_healthy`` fails on the nodes in ``stuck``
    (paused: they never answer)."""

    name = "recording"

    def __init__(self, stuck: set[str]) -> None:
        self.stuck = stuck
        self.calls: list[tuple[str, str]] = []

    async def kill(self, ctx: api.TestContext, node: Node, remote: Remote) -> None:
        self.calls.append(("kill", node.name))

    async def start(self, ctx: api.TestContext, node: Node, remote: Remote) -> None:
        self.calls.append(("start", node.name))

    async def wait_healthy(self, ctx: api.TestContext, node: Node, remote: Remote, *,
                           within: float) -> None:  # fmt: skip
        self.calls.append(("wait", node.name))
        if node.name in self.stuck:
            raise NemesisError(f"{node.name} was not ready within {within} s")


def context() -> api.TestContext:
    nodes = tuple(Node(name=n, host="127.0.0.1") for n in NODES)
    cl = Cluster(provider="local", name="kill-heal", nodes=nodes, state_dir="/nonexistent")
    return api.TestContext(name="kill-heal", cluster=cl, options={}, rng=random.Random(1),
                           run_dir=Path("/nonexistent"), concurrency=1, time_limit=10)  # fmt: skip


async def nemesis(db: RecordingDB) -> tuple[api.TestContext, ProcessNemesis]:
    ctx, nem = context(), ProcessNemesis("kill", cast("Any", db))
    await nem.setup(ctx, {n: cast("Remote", object()) for n in NODES})
    return ctx, nem


def test_stop_kill_restarts_every_node_and_waits_for_the_killed_ones_only() -> None:
    async def go() -> list[tuple[str, str]]:
        db = RecordingDB(stuck={"n3"})
        ctx, nem = await nemesis(db)
        await nem.invoke(ctx, {"f": "start-kill", "value": ["n2"]})
        await nem.invoke(ctx, {"f": "stop-kill", "value": None})
        return db.calls

    calls = asyncio.run(go())
    assert ("kill", "n2") in calls
    assert {n for verb, n in calls if verb == "start"} == set(NODES)
    assert [n for verb, n in calls if verb == "wait"] == ["n2"]


def test_a_heal_that_struck_nothing_waits_for_every_node() -> None:
    async def go() -> None:
        db = RecordingDB(stuck={"n3"})
        ctx, nem = await nemesis(db)
        with pytest.raises(NemesisError, match="n3"):
            await nem.heal_all(ctx)

    asyncio.run(go())
