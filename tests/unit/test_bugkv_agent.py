"""bugkv as a node agent's database: the log patterns match the lines the real server logs
at each event (and no other event's), and agent steps compile to the adapter's own scripts
(the real cluster run is in tests/integration/test_bugkv_agent.py)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from pathlib import Path
from typing import Any

import pytest

from clusters.base import Cluster, Node
from harness.api import TestContext as Ctx  # (a `Test*` name would be collected)
from harness.dbs import bugkv_server as server
from harness.dbs.bugkv import LOG_PATTERNS, BugkvDB
from harness.errors import ConfigError
from nemeses.agent import compile_slices

PEERS = "n1=127.0.0.1,n2=127.0.0.2,n3=127.0.0.3"


def events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(event, what the real server logged at it) for each event a node agent may watch."""
    args = server.parse_args(["--id", "n2", "--peers", PEERS, "--data-dir", str(tmp_path)])
    n = server.Node(args)
    err: list[str] = []
    monkeypatch.setattr(server, "log", err.append)

    def took(event: str) -> tuple[str, str]:
        lines = list(err)
        err.clear()
        return event, "\n".join(lines)

    out: list[tuple[str, str]] = []

    async def go() -> None:
        vote = {"type": "vote", "term": 3, "candidate": "n3", "last_index": 0, "last_term": 0}
        n.on_vote(vote)  # a peer's higher term, and this node's vote
        out.append(took("vote"))
        n.on_append({"type": "append", "term": 3, "leader": "n3", "prev_index": 0,
                     "prev_term": 0, "entries": [], "commit": 0})  # fmt: skip
        out.append(took("follow"))
        with contextlib.suppress(TimeoutError):  # its line comes before its vote requests
            await asyncio.wait_for(n.campaign(), 0.01)
        out.append(took("campaign"))
        n.become_leader()
        out.append(took("elected"))
        n.become_follower(9, "n1")
        out.append(took("stepdown"))
        n.on_append({"type": "append", "term": 9, "leader": "n1", "prev_index": 0,
                     "prev_term": 0, "entries": [{"term": 9, "op": "noop"}],
                     "commit": 0})  # fmt: skip
        out.append(took("truncate"))  # its own noop of term 4 gives way to the leader's

    asyncio.run(go())
    return out


def test_each_pattern_matches_the_lines_of_its_event_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged = dict(events(tmp_path, monkeypatch))
    matched = {name: sorted(e for e, text in logged.items() if re.search(rx, text))
               for name, rx in LOG_PATTERNS.items()}  # fmt: skip
    assert matched == {
        "became-leader": ["elected"],
        "leader-changed": ["follow", "stepdown"],  # a deposed leader follows the new one
        "stepped-down": ["stepdown"],
        "campaign": ["campaign"],
        "term-changed": ["campaign", "stepdown", "vote"],
        "log-truncated": ["truncate"],
    }, logged
    assert "term 4: elected leader" in logged["elected"]


def ctx() -> Ctx:
    nodes = tuple(Node(name=f"n{i}", host=f"10.0.0.{i}") for i in (1, 2, 3))
    cluster = Cluster(provider="local", name="x", nodes=nodes, state_dir="")
    return Ctx(name="t", cluster=cluster, options={}, rng=random.Random(1),
               run_dir=Path("."), concurrency=1, time_limit=10)  # fmt: skip


def test_agent_steps_compile_to_the_adapters_scripts() -> None:
    db = BugkvDB(bug="stepdown-applies-tail")
    steps: list[dict[str, Any]] = [
        {"node": "n1", "f": "start-kill", "on": {"log": "became-leader"}, "hold": 1},
        {"node": "n2", "f": "start-pause", "at": 2, "hold": 0.5},
    ]
    slices = compile_slices(steps, ctx(), db)
    (kill,) = slices["n1"]["strikes"]
    assert kill["script"] == db.kill_script(ctx(), ctx().nodes[0])
    assert "KILL" in kill["script"]
    assert kill["heal"] == db.start_script(ctx(), ctx().nodes[0])
    assert "--bug stepdown-applies-tail" in kill["heal"]
    (pause,) = slices["n2"]["strikes"]
    assert "STOP" in pause["script"] and "CONT" in pause["heal"]
    watch = slices["n3"]["watch"]
    assert watch["log"] == db.log_file and watch["pidfile"] == db.pid_file
    assert watch["patterns"] == LOG_PATTERNS
    with pytest.raises(ConfigError, match="no log pattern 'leader-lost'"):
        compile_slices([{"node": "n1", "f": "start-kill", "on": {"log": "leader-lost"}}], ctx(),
                       db)  # fmt: skip
