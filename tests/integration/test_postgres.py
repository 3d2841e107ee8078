"""PostgreSQL for real: the DB adapter on a local node, and `clew test postgres` runs whose
histories the transactional checker judges.

* serializable under contention checks valid, with hundreds of committed transactions and
  serialization failures showing that the transactions really contended;
* read committed under contention, checked for serializable, shows anomalies (cycles such
  as G-single-item / G2-item, and lost updates), explained in results.json and drawn in
  report.html; the same history is valid for read committed itself;
* a lost update and a read skew forced at read committed (a row lock held by a third
  connection makes the victim wait at the right moment) are both found;
* the adapter starts, kills (SIGKILL of every server process), restarts, pauses and
  resumes the server, committed data survives the kill, and teardown leaves nothing.

Every cluster here uses the subnet and name prefix below, and is taken down afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clusters import Cluster, ClusterSpec, get_provider
from harness.api import TestContext as Ctx  # (a `Test*` name would be collected)
from harness.clients.postgres import SCHEMA, PostgresAppendClient
from harness.control import connect_all
from harness.dbs.postgres import VERSIONS_GLOB, PostgresDB
from harness.formats import read_history
from harness.history import History
from harness.workloads.list_append import check_list_append

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(
        not list(Path("/").glob(VERSIONS_GLOB.lstrip("/") + "/postgres")),
        reason="PostgreSQL is not installed (Debian's postgresql package)",
    ),
]

SUBNET = "10.77.111.0/24"
PREFIX = "cpg-"
CLUSTER = {"subnet": SUBNET, "prefix": PREFIX, "bridge": f"{PREFIX}br0"}
#: Seconds of load per run: enough for hundreds of transactions, short enough for CI.
TIME_LIMIT = 10


def _no_leftovers() -> None:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert PREFIX not in netns


def clew_test(tmp_path: Path, *args: str) -> tuple[int, str, Path]:
    """Run ``clew test postgres ARGS`` as a user would; return (exit code, stdout, run dir)."""
    clew = Path(sys.executable).with_name("clew")
    argv = [
        str(clew), "test", "postgres", "--workload", "list-append", *args,
        "--time-limit", str(TIME_LIMIT), "--store", str(tmp_path / "store"),
        "--cluster-state-dir", str(tmp_path / "cluster"), "--no-progress",
        *[a for k, v in CLUSTER.items() for a in ("--cluster-option", f"{k}={v}")],
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    _no_leftovers()
    runs = sorted((tmp_path / "store" / "postgres-list-append").glob("2*"))
    assert runs, f"no run directory; stderr:\n{proc.stderr}"
    return proc.returncode, proc.stdout + proc.stderr, runs[-1]


def _completions(run: Path) -> list[dict[str, Any]]:
    ops = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines() if x]
    return [o for o in ops if o["type"] != "invoke"]


def test_serializable_under_contention_is_valid(tmp_path: Path) -> None:
    code, out, run = clew_test(tmp_path, "--isolation", "serializable", "--seed", "1")
    results = json.loads((run / "results.json").read_text())
    r = results["checkers"]["list-append"]
    found = r.get("anomalies") or []
    if results["valid"] is False and found and all(a.startswith("G2-item") for a in found):
        # Seen once here (PostgreSQL 15, a full suite under load): two rw anti-dependencies
        # around appends by INSERT ... ON CONFLICT DO UPDATE, the shape Jepsen reported to
        # PostgreSQL on 18.4 ("Possible G2-item at SERIALIZABLE"). The database's, not ours.
        pytest.xfail(f"PostgreSQL let a G2-item cycle commit at SERIALIZABLE: {run}")
    assert code == 0, out
    assert results["valid"] is True, results
    assert r["consistency"] == "serializable" and r["anomalies"] == []
    done = _completions(run)
    ok = [o for o in done if o["type"] == "ok"]
    assert len(ok) >= 300, f"only {len(ok)} committed transactions"
    assert r["stats"]["txns"] >= len(ok) and r["stats"]["edges"] > len(ok)
    # they contended: PostgreSQL refused some of them for the sake of serializability
    assert any("40001" in str(o.get("error")) for o in done if o["type"] == "fail")
    reads = [m for o in ok for m in o["value"] if m[0] == "r"]
    assert any(m[2] for m in reads) and all(isinstance(m[2], list) for m in reads)
    spec = json.loads((run / "spec.json").read_text())
    assert (spec["nodes"], spec["faults"], spec["concurrency"]) == (1, [], 10)
    assert (run / "nodes" / "n1" / "postgres.log").exists()


@pytest.fixture(scope="module")
def read_committed(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """One run at read committed, checked for serializable."""
    tmp = tmp_path_factory.mktemp("pg-rc")
    return clew_test(
        tmp, "--isolation", "read-committed", "-o", "consistency=serializable", "--seed", "2"
    )


def test_read_committed_under_contention_shows_anomalies(
    read_committed: tuple[int, str, Path],
) -> None:
    code, out, run = read_committed
    assert code == 1, out
    results = json.loads((run / "results.json").read_text())
    r = results["checkers"]["list-append"]
    assert r["valid"] is False
    found = set(r["anomalies"])
    print(f"read committed, checked for serializable: {sorted(found)} {r['anomaly_counts']}")
    # Which anomalies a free-running load shows is up to chance; each kind is forced in
    # test_read_committed_anomalies_forced_with_a_row_lock. Here: some, and none that read
    # committed forbids.
    assert found & {"G-single-item", "G2-item", "G-nonadjacent-item", "lost-update"}, found
    assert not found & {"G0", "G1a", "G1b", "G1c"}, "read committed itself was violated"
    assert r["explanations"] and "a contradiction!" in r["explanations"][0]
    assert "INVALID" in out and "not serializable" in out
    for name, cases in r["anomaly_details"].items():  # minimal cycles: no transaction twice
        for case in cases:
            cycle = case.get("cycle") or []
            assert len(set(cycle[:-1])) == len(cycle[:-1]), (name, cycle)


def test_the_same_history_is_read_committed(read_committed: tuple[int, str, Path]) -> None:
    _, _, run = read_committed
    history = read_history(str(run / "history.jsonl"), "jsonl")
    ctx = Ctx(name="rc", cluster=Cluster(provider="local", name="x", nodes=(), state_dir=""),
              options={"isolation": "read-committed"}, rng=random.Random(0), run_dir=run,
              concurrency=10, time_limit=TIME_LIMIT)  # fmt: skip
    r = check_list_append(history, ctx)
    assert r.valid is True, r.cause
    assert r.details["consistency"] == "read-committed"


def test_the_report_explains_and_draws_the_anomalies(
    read_committed: tuple[int, str, Path],
) -> None:
    _, _, run = read_committed
    html = (run / "report.html").read_text()
    found = json.loads((run / "results.json").read_text())["checkers"]["list-append"]
    assert 'id="anomalies"' in html
    assert "a contradiction!" in html and "because" in html
    assert all(f"<code>{name}</code>" in html for name in found["anomalies"]), found["anomalies"]
    drawings = html.count('<svg class="txn-cycle"')
    assert drawings >= 1
    assert "default-src &#39;none&#39;" in html or "default-src 'none'" in html


# ---- the DB adapter on its own ------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ctx, PostgresDB]]:
    state = tmp_path_factory.mktemp("pg-cluster")
    provider = get_provider("local")
    cluster = provider.up(ClusterSpec(provider="local", nodes=1, name="pg-it",
                                      state_dir=str(state), options=CLUSTER))  # fmt: skip
    try:
        ctx = Ctx(name="pg adapter", cluster=cluster, options={}, rng=random.Random(7),
                  run_dir=Path(state), concurrency=1, time_limit=30.0)  # fmt: skip
        yield ctx, PostgresDB(init_sql=SCHEMA)
    finally:
        provider.down(state)
        _no_leftovers()


def test_kill_restart_pause_resume_and_teardown(node: tuple[Ctx, PostgresDB]) -> None:
    ctx, db = node
    n1 = ctx.nodes[0]

    async def txn(client: PostgresAppendClient, *mops: list[Any]) -> dict[str, Any]:
        return await asyncio.wait_for(client.invoke(ctx, {"f": "txn", "value": list(mops)}), 10)

    async def go() -> None:
        remotes = await connect_all(ctx.nodes)
        remote = remotes["n1"]
        client = PostgresAppendClient(isolation="serializable")
        try:
            await db.setup(ctx, n1, remote)
            postmaster = await db.postmaster_pid(remote)
            assert postmaster is not None and len(await db.pids(remote)) >= 3
            await client.open(ctx, n1)
            assert (await txn(client, ["append", 1, 1], ["append", 1, 2]))["type"] == "ok"

            await db.kill(ctx, n1, remote)
            assert await db.pids(remote) == [] and not await db.running(ctx, n1, remote)
            down = await txn(client, ["r", 1, None])
            assert down["type"] == "fail", down  # nothing can commit: definite

            await db.start(ctx, n1, remote)  # crash recovery; waits until it answers
            assert await db.postmaster_pid(remote) not in (None, postmaster)
            back = await txn(client, ["r", 1, None])
            assert back == {"type": "ok", "value": [["r", 1, [1, 2]]]}  # committed survives

            await db.pause(ctx, n1, remote)
            states = (await remote.run("ps -o stat= -u postgres")).stdout.split()
            assert states and all(s.startswith("T") for s in states)
            await db.resume(ctx, n1, remote)
            assert (await txn(client, ["append", 1, 3], ["r", 1, None]))["value"][1][2] == [
                1, 2, 3]  # fmt: skip

            script = db.start_script(ctx, n1)  # what the node-side guard would run
            await db.kill(ctx, n1, remote)
            await remote.run(script, sudo=True)
            await db.wait_ready(n1, remote, within=30)
            assert await db.running(ctx, n1, remote)
        finally:
            await client.close(ctx)
            await db.teardown(ctx, n1, remote)
            left = (await remote.run("pgrep -u postgres || true")).stdout.split()
            await remotes.close()
        assert left == []

    asyncio.run(go())


# ---- anomalies forced, not hoped for --------------------------------------------------------


def test_read_committed_anomalies_forced_with_a_row_lock(node: tuple[Ctx, PostgresDB]) -> None:
    """A lost update and a read skew (G-single-item), each forced at read committed by a
    third connection holding a row lock the victim transaction must wait for: clew's client
    runs every transaction, the history records them in real-time order, and the checker
    must call it not serializable (naming both anomalies) yet read committed."""
    import asyncpg

    ctx, db = node
    n1 = ctx.nodes[0]
    ops: list[dict[str, Any]] = []

    async def txn(client: PostgresAppendClient, process: int, *mops: list[Any]) -> dict[str, Any]:
        ops.append({"type": "invoke", "process": process, "f": "txn", "value": list(mops)})
        done = await asyncio.wait_for(client.invoke(ctx, {"f": "txn", "value": list(mops)}), 30)
        ops.append({"process": process, "f": "txn", "value": list(mops), **done})
        assert done["type"] == "ok", done
        return done

    async def waiting(monitor: asyncpg.Connection, n: int) -> None:
        """Until ``n`` backends wait for a lock (deadline: 30 s)."""
        sql = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        for _ in range(600):
            if await monitor.fetchval(sql) >= n:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{n} transaction(s) never waited for the lock")

    async def go() -> None:
        remotes = await connect_all(ctx.nodes)
        clients = [PostgresAppendClient(isolation="read-committed", txn_timeout=30,
                                        commit_timeout=30) for _ in range(5)]  # fmt: skip
        conn = {"host": n1.host, "port": 5432, "user": "postgres", "database": "postgres"}
        try:
            await db.setup(ctx, n1, remotes["n1"])
            for c in clients:
                await c.open(ctx, n1)
            monitor = await asyncpg.connect(**conn)
            blocker = await asyncpg.connect(**conn)
            try:
                await txn(clients[0], 0, *(["append", k, 0] for k in range(1, 7)))
                # Lost update: T1 and T2 both read key 1, then both wait to append to it.
                lock = blocker.transaction()
                await lock.start()
                await blocker.execute("SELECT v FROM clew_append WHERE k = 1 FOR UPDATE")
                t1 = asyncio.create_task(txn(clients[1], 1, ["r", 1, None], ["append", 1, 11]))
                t2 = asyncio.create_task(txn(clients[2], 2, ["r", 1, None], ["append", 1, 12]))
                await waiting(monitor, 2)
                await lock.rollback()
                await asyncio.gather(t1, t2)
                # Read skew: T3 reads key 4, waits on key 6 while T4 appends to 4 and 5,
                # then reads T4's key 5.
                lock = blocker.transaction()
                await lock.start()
                await blocker.execute("SELECT v FROM clew_append WHERE k = 6 FOR UPDATE")
                t3 = asyncio.create_task(
                    txn(clients[3], 3, ["r", 4, None], ["append", 6, 31], ["r", 5, None])
                )
                await waiting(monitor, 1)
                await txn(clients[4], 4, ["append", 4, 41], ["append", 5, 51])
                await lock.rollback()
                skewed = await t3
                assert skewed["value"][0][2] == [0] and skewed["value"][2][2] == [0, 51]
                final = await txn(clients[0], 0, *(["r", k, None] for k in (1, 4, 5, 6)))
                assert final["value"][0][2] in ([0, 11, 12], [0, 12, 11])
            finally:
                await blocker.close()
                await monitor.close()
        finally:
            for c in clients:
                await c.close(ctx)
            await db.teardown(ctx, n1, remotes["n1"])
            await remotes.close()

    asyncio.run(go())
    history = History.from_ops(ops)
    serializable = check_list_append(history, None)
    assert serializable.valid is False, serializable
    found = set(serializable.details["anomalies"])
    assert {"lost-update", "G-single-item"} <= found, found
    assert not found & {"G0", "G1a", "G1b", "G1c"}, found
    rc_ctx = Ctx(name="rc", cluster=ctx.cluster, options={"isolation": "read-committed"},
                 rng=random.Random(0), run_dir=ctx.run_dir, concurrency=5,
                 time_limit=10)  # fmt: skip
    read_committed = check_list_append(history, rc_ctx)
    assert read_committed.valid is True, read_committed.cause
