"""bugkv without a cluster: the server's Raft rules and seeded bugs on one Node object, its
storage, the catalog of bugs and their schedules, the adapter's command line, the client's
classification of answers (the real cluster runs are in tests/integration/test_bugkv.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.clients.bugkv import BugkvClient, BugkvSetClient
from harness.dbs import bugkv_server as server
from harness.dbs.bugkv import BugkvDB, Timescale
from harness.dbs.bugkv_bugs import BUG_CATALOG, NODES
from harness.errors import ConfigError
from harness.workloads.register import CAS_MISMATCH
from nemeses.schedule import validate_schedule

PEERS = ",".join(f"{n}=127.0.0.{i + 1}" for i, n in enumerate(NODES))


def node(tmp_path: Path, name: str = "n2", bug: str = "") -> server.Node:
    args = server.parse_args(
        ["--id", name, "--peers", PEERS, "--data-dir", str(tmp_path / name)]
        + (["--bug", bug] if bug else [])
    )
    return server.Node(args)


def in_loop(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` inside an event loop (the node reads the loop's clock)."""

    async def go() -> Any:
        return fn()

    return asyncio.run(go())


def entries(*terms: int) -> list[dict[str, Any]]:
    return [{"term": t, "cmd": {"op": "add", "value": i}} for i, t in enumerate(terms)]


# ---- the catalog --------------------------------------------------------------------------


def test_the_catalog_has_the_depths_the_issue_asks_for() -> None:
    depths = [b.depth for b in BUG_CATALOG.values()]
    assert len(depths) >= 8
    assert depths.count(1) <= 2 and depths.count(2) >= 3 and depths.count(3) >= 3
    assert set(BUG_CATALOG) == set(server.BUGS)


@pytest.mark.parametrize("name", sorted(BUG_CATALOG))
def test_every_minimal_schedule_is_a_valid_schedule_within_its_run(name: str) -> None:
    bug = BUG_CATALOG[name]
    steps = validate_schedule(bug.steps(), name)
    assert len(steps) == bug.depth
    assert steps[-1]["at"] < bug.time_limit
    for i in range(bug.depth):
        without = bug.without(i)
        assert len(without) == bug.depth - 1 and bug.schedule[i] not in without
    assert bug.suite_options()["bug"] == name and "bug" not in bug.suite_options(with_bug=False)


# ---- the server's rules ----------------------------------------------------------------------


def test_a_vote_is_persisted_before_the_answer_and_survives_a_restart(tmp_path: Path) -> None:
    n = node(tmp_path)
    msg = {"type": "vote", "term": 3, "candidate": "n3", "last_index": 0, "last_term": 0}
    assert in_loop(lambda: n.on_vote(msg)) == {"term": 3, "granted": True}
    again = node(tmp_path)
    assert (again.term, again.voted_for) == (3, "n3")
    other = {**msg, "candidate": "n4"}
    assert in_loop(lambda: again.on_vote(other))["granted"] is False  # one vote per term


def test_a_vote_needs_an_up_to_date_log_unless_the_bug_says_otherwise(tmp_path: Path) -> None:
    stale = {"type": "vote", "term": 5, "candidate": "n3", "last_index": 1, "last_term": 1}
    for bug, granted in (("", False), ("vote-ignores-log", True)):
        n = node(tmp_path / (bug or "correct"), bug=bug)
        n.log = entries(1, 2)
        assert in_loop(partial(n.on_vote, stale))["granted"] is granted


def test_a_follower_that_heard_from_its_leader_ignores_votes(tmp_path: Path) -> None:
    n = node(tmp_path)
    append = {"type": "append", "term": 1, "leader": "n1", "prev_index": 0, "prev_term": 0,
              "entries": [], "commit": 0}  # fmt: skip
    vote = {"type": "vote", "term": 2, "candidate": "n3", "last_index": 9, "last_term": 9}

    def go() -> dict[str, Any]:
        n.on_append(append)
        return n.on_vote(vote)

    assert in_loop(go) == {"term": 1, "granted": False, "ignored": True}


def test_append_checks_the_log_truncates_conflicts_and_bounds_the_commit(tmp_path: Path) -> None:
    n = node(tmp_path)
    n.log = entries(1, 1, 1)

    def msg(prev: int, prev_term: int, new: list[dict[str, Any]], commit: int) -> dict[str, Any]:
        return {"type": "append", "term": 2, "leader": "n1", "prev_index": prev,
                "prev_term": prev_term, "entries": new, "commit": commit}  # fmt: skip

    assert in_loop(lambda: n.on_append(msg(3, 2, [], 3)))["success"] is False
    assert n.commit == 0  # a failed check moves nothing
    ok = in_loop(lambda: n.on_append(msg(1, 1, entries(2), 9)))
    assert ok["success"] is True
    assert [e["term"] for e in n.log] == [1, 2]  # entries 2-3 of term 1 truncated
    assert n.commit == 2 and n.applied == 2  # min(leader's commit, last new entry)
    _, _, on_disk = server.Storage(str(tmp_path / "n2"), buffered=False).load()
    assert [e["term"] for e in on_disk] == [1, 2]


def test_commit_unchecked_applies_a_stale_tail_before_the_check(tmp_path: Path) -> None:
    for bug, applied in (("", 0), ("commit-unchecked", 3)):
        n = node(tmp_path / (bug or "correct"), bug=bug)
        n.log = entries(1, 1, 1)  # uncommitted entries of an old leader
        m = {"type": "append", "term": 2, "leader": "n1", "prev_index": 5, "prev_term": 2,
             "entries": [], "commit": 7}  # fmt: skip
        assert in_loop(partial(n.on_append, m))["success"] is False
        assert n.applied == applied and len(n.elements) == applied


def test_stepdown_applies_tail_applies_the_leaders_uncommitted_entries(tmp_path: Path) -> None:
    for bug, applied in (("", 1), ("stepdown-applies-tail", 3)):
        n = node(tmp_path / (bug or "correct"), bug=bug)
        n.log, n.role, n.commit = entries(1, 1, 1), server.LEADER, 1
        in_loop(n.apply_committed)
        in_loop(partial(n.become_follower, 2, "n3"))
        assert n.role == server.FOLLOWER and n.applied == applied


def test_lease_reads_need_a_valid_lease_and_an_entry_of_the_term(tmp_path: Path) -> None:
    n = node(tmp_path)
    n.role, n.term, n.log, n.commit, n.applied = server.LEADER, 2, entries(1, 2), 2, 2

    def check() -> tuple[bool, bool]:
        n.lease_until = n.now() + 1
        fresh = n.read_locally()
        n.lease_until = n.now() - 1
        return fresh, n.read_locally()

    assert in_loop(check) == (True, False)
    n.commit = n.applied = 1  # nothing of term 2 committed yet
    n.lease_until = float("inf")
    assert in_loop(n.read_locally) is False


def test_buffered_log_reaches_the_disk_64_entries_at_a_time(tmp_path: Path) -> None:
    store = server.Storage(str(tmp_path), buffered=True)
    store.append(entries(*([1] * (server.BUFFERED_ENTRIES - 1))))
    assert store.load()[2] == []
    store.append(entries(1))
    assert len(store.load()[2]) == server.BUFFERED_ENTRIES


def test_the_server_refuses_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--id", "n1", "--peers", PEERS, "--data-dir", "/tmp/x"]
    for extra, says in ((["--bug", "nope"], "unknown bug"),
                        (["--lease-ms", "500"], "must be below"),
                        (["--id", "n9"], "not in --peers")):  # fmt: skip
        with pytest.raises(SystemExit):
            server.parse_args(base + extra)
        assert says in capsys.readouterr().err


# ---- the adapter ----------------------------------------------------------------------------


def test_timescale_flags_and_limits() -> None:
    assert "--lease-ms=250" in Timescale().flags()
    with pytest.raises(ConfigError, match="must be below election_ms"):
        Timescale(lease_ms=400, election_ms=400)
    with pytest.raises(ConfigError, match="unknown bugkv bug"):
        BugkvDB(bug="nope")
    db = BugkvDB(bug="early-ack", faketime="/lib/libfaketime.so.1")
    assert db.clock_reads == "libc" and BugkvDB().clock_reads == "unknown"


# ---- the client -----------------------------------------------------------------------------


def answers(status: int, body: dict[str, Any]) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body))


@pytest.mark.parametrize(
    ("f", "status", "body", "expect"),
    [
        ("write", 200, {"ok": True, "node": "n1"}, {"type": "ok", "node": "n1"}),
        ("write", 503, {"error": "no leader known", "node": "n3"}, {"type": "fail"}),
        ("write", 504, {"error": "timeout", "node": "n1"}, {"type": "info"}),
        ("read", 504, {"error": "timeout"}, {"type": "fail"}),
        ("read", 200, {"ok": True, "value": 7, "node": "n1"}, {"type": "ok", "value": 7}),
        ("cas", 200, {"ok": False, "error": "cas-mismatch", "node": "n1"},
         {"type": "fail", "error": CAS_MISMATCH}),
    ],
)  # fmt: skip
def test_the_client_classifies_answers(
    f: str, status: int, body: dict[str, Any], expect: dict[str, Any]
) -> None:
    async def go() -> dict[str, Any]:
        client = BugkvClient()
        client._http = httpx.AsyncClient(base_url="http://n", transport=answers(status, body))
        value = [1, 2] if f == "cas" else 3
        done = await client.invoke(None, {"f": f, "key": 1, "value": value})  # type: ignore[arg-type]
        await client.close(None)  # type: ignore[arg-type]
        return done

    done = asyncio.run(go())
    assert {k: done[k] for k in expect} == expect


def test_the_set_client_reads_every_element() -> None:
    async def go() -> dict[str, Any]:
        client = BugkvSetClient()
        sent: list[Any] = []

        def handler(request: httpx.Request) -> httpx.Response:
            sent.append(json.loads(request.content))
            return httpx.Response(200, json={"ok": True, "value": [1, 2], "node": "n2"})

        client._http = httpx.AsyncClient(
            base_url="http://n", transport=httpx.MockTransport(handler)
        )
        done = await client.invoke(None, {"f": "read"})  # type: ignore[arg-type]
        assert sent == [{"f": "read-set"}]
        return done

    assert asyncio.run(go()) == {"type": "ok", "value": [1, 2], "node": "n2"}
