"""The PostgreSQL workloads for real: `clew test postgres` runs of bank (serializable and
read committed), counter, set-full, unique-ids, long-fork, queue and lock on a one-node
local cluster, and read committed's lost update made to happen on purpose.

Every run reuses one cluster (its state dir).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from checkers.collections import bank as bank_checker
from clusters import Cluster, ClusterSpec, get_provider
from harness.api import TestContext as Ctx  # (a `Test*` name would be collected)
from harness.clients.postgres import SCHEMA
from harness.clients.postgres_workloads import WORKLOAD_SCHEMA, PostgresBankClient
from harness.control import connect_all
from harness.dbs.postgres import VERSIONS_GLOB, PostgresDB
from harness.history import History
from harness.runner import run_test
from harness.spec import load_spec

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

PREFIX = "cwp-"
CLUSTER = {"subnet": "10.77.179.0/24", "prefix": PREFIX, "bridge": f"{PREFIX}br0"}
#: Seconds of load per run.
TIME_LIMIT = 8


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path]]:
    state = tmp_path_factory.mktemp("pg-cluster")
    provider = get_provider("local")
    c = provider.up(
        ClusterSpec(provider="local", nodes=1, name="wlp", state_dir=str(state), options=CLUSTER)
    )
    try:
        yield c, state
    finally:
        provider.down(state)
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert PREFIX not in netns


def _run(cluster: tuple[Cluster, Path], tmp_path: Path, workload: str, **options: Any) -> Any:
    spec = load_spec(
        suite="postgres",
        workload=workload,
        time_limit=TIME_LIMIT,
        seed=14,
        store=str(tmp_path / "store"),
        cluster_state_dir=str(cluster[1]),
        cluster_options=CLUSTER,
        options=options,
    )
    outcome = run_test(spec)
    result = outcome.results["checkers"][workload]
    summary = {k: v for k, v in result.items() if isinstance(v, int | float | str | bool)}
    print(f"postgres {workload} {options}: valid={outcome.valid}, {outcome.ops} ops, {summary}")
    return outcome, result


def test_bank_at_serializable_is_valid(cluster: Any, tmp_path: Path) -> None:
    outcome, result = _run(cluster, tmp_path, "bank", isolation="serializable", accounts=4)
    assert outcome.valid is True, result
    assert result["read_count"] > 50 and {p[1] for p in result["totals"]} == {100}


def test_bank_at_read_committed(cluster: Any, tmp_path: Path) -> None:
    """Transfers read balances and write new values: read committed loses updates, and
    the total drifts. Reported as seen (the next test makes it happen for certain)."""
    outcome, result = _run(cluster, tmp_path, "bank", isolation="read-committed", accounts=4)
    totals = sorted({p[1] for p in result["totals"]})
    print("read committed bank totals seen:", totals[:5], "...", totals[-5:])
    assert outcome.valid in (True, False), result
    if outcome.valid is False:
        assert "wrong-total" in result["errors"]


@pytest.mark.parametrize(
    ("isolation", "drifts"),
    [("read-committed", True), ("repeatable-read", False), ("serializable", False)],
)
def test_a_lost_update_made_on_purpose(
    cluster: Any, tmp_path: Path, isolation: str, drifts: bool
) -> None:
    """Two transfers out of account 0 both read its balance while a third session holds
    the row's lock; when it lets go, both write. Read committed overwrites one transfer
    with the other (the total grows); the stronger levels abort the second."""
    c, state = cluster
    ctx = Ctx(
        name="lost-update",
        cluster=c,
        options={},
        rng=random.Random(2),
        run_dir=state,
        concurrency=2,
        time_limit=30.0,
    )
    node = c.nodes[0]
    db = PostgresDB(init_sql=SCHEMA + WORKLOAD_SCHEMA)
    ops: list[dict[str, Any]] = []

    def record(p: int, op: dict[str, Any], done: dict[str, Any] | None) -> None:
        if done is None:
            ops.append({"process": p, "type": "invoke", **op})
        else:
            ops.append(
                {
                    "process": p,
                    "type": done["type"],
                    "f": op["f"],
                    "value": done.get("value", op.get("value")),
                }
            )

    async def run(p: int, client: PostgresBankClient, op: dict[str, Any]) -> dict[str, Any]:
        record(p, op, None)
        done = await client.invoke(ctx, op)
        record(p, op, done)
        return done

    async def go() -> list[dict[str, Any]]:
        remotes = await connect_all(c.nodes)
        clients = [
            PostgresBankClient(
                balances={0: 10, 1: 10, 2: 10}, isolation=isolation, txn_timeout=10.0
            )
            for _ in range(3)
        ]
        try:
            await db.setup(ctx, node, remotes[node.name])
            for client in clients:
                await client.open(ctx, node)
            for p, client in enumerate(clients):  # creates the accounts
                await run(p, client, {"f": "read"})
            blocker = await asyncpg.connect(host=node.peer_address, user="postgres")
            try:
                await blocker.execute("BEGIN")
                await blocker.execute("SELECT 1 FROM clew_bank WHERE id = 0 FOR UPDATE")
                transfers = [
                    asyncio.create_task(
                        run(
                            p,
                            clients[p],
                            {"f": "transfer", "value": {"from": 0, "to": p, "amount": 1}},
                        )
                    )
                    for p in (1, 2)
                ]
                await asyncio.sleep(1.0)  # both have read account 0 and wait on its lock
                await blocker.execute("COMMIT")
                results = await asyncio.gather(*transfers)
            finally:
                await blocker.close()
            await run(0, clients[0], {"f": "read"})
            return results
        finally:
            for client in clients:
                await client.close(ctx)
            await db.teardown(ctx, node, remotes[node.name])
            await remotes.close()

    results = asyncio.run(go())
    checked = bank_checker.check(History.from_ops(ops), total=30)
    print(f"{isolation}: transfers {[r['type'] for r in results]}, final read {ops[-1]['value']}")
    if drifts:
        assert [r["type"] for r in results] == ["ok", "ok"]
        assert (
            checked.valid is False
            and checked.details["errors"]["wrong-total"]["last"]["total"] == 31
        )
    else:
        assert sorted(r["type"] for r in results) == ["fail", "ok"], results
        assert "40001" in next(r["error"] for r in results if r["type"] == "fail")
        assert checked.valid is True


@pytest.mark.parametrize(
    ("workload", "options"),
    [
        ("counter", {}),
        ("unique-ids", {}),
        ("queue", {}),
        ("set-full", {}),
        ("long-fork", {"isolation": "serializable"}),
        ("lock", {}),
    ],
)
def test_valid_runs(cluster: Any, tmp_path: Path, workload: str, options: dict[str, Any]) -> None:
    outcome, result = _run(cluster, tmp_path, workload, **options)
    assert outcome.valid is True, result
    if workload == "counter":
        assert result["read_count"] > 50
    elif workload == "unique-ids":
        assert result["acknowledged_count"] > 200
    elif workload == "queue":
        assert result["acknowledged_count"] > 50 and result["lost_count"] == 0
    elif workload == "lock":
        assert result["hold_count"] > 10
