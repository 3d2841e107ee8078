"""Faults against a real PostgreSQL server: the local provider can shift its clock (it reads
the time through libc and is started under libfaketime), and a `clew test postgres` run
with clock, pause and kill faults stays valid at serializable with a clean heal barrier.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from clusters import Cluster, ClusterSpec, get_provider
from harness.api import TestContext as Ctx  # (a `Test*` name would be collected)
from harness.control import connect_all
from harness.dbs.postgres import VERSIONS_GLOB, PostgresDB
from nemeses.clock import ClockNemesis, find_libfaketime
from nemeses.schedule import plan_schedule

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(
        not list(Path("/").glob(VERSIONS_GLOB.lstrip("/") + "/postgres")),
        reason="PostgreSQL is not installed (Debian's postgresql package)",
    ),
    pytest.mark.skipif(not os.path.exists(find_libfaketime()), reason="needs libfaketime"),
]

CLUSTER = {"subnet": "10.77.112.0/24", "prefix": "cpq-", "bridge": "cpq-br0"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    provider = get_provider("local")
    state = tmp_path / "cluster"
    c = provider.up(ClusterSpec(nodes=1, name="pg-faults", state_dir=str(state), options=CLUSTER))
    try:
        yield c
    finally:
        provider.down(state)


async def server_time(host: str) -> float:
    conn = await asyncpg.connect(host=host, port=5432, user="postgres", database="postgres")
    try:
        return float(await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())"))
    finally:
        await conn.close()


def test_a_clock_bump_shifts_the_servers_clock_and_heal_restores_it(cluster: Cluster) -> None:
    async def go() -> None:
        ctx = Ctx(name="pg-clock", cluster=cluster, options={}, rng=random.Random(1),
                  run_dir=Path(cluster.state_dir), concurrency=1, time_limit=60)  # fmt: skip
        node = cluster.nodes[0]
        db = PostgresDB(faketime=find_libfaketime())
        assert db.clock_reads == "libc"
        async with await connect_all(cluster.nodes) as remotes:
            await db.setup(ctx, node, remotes[node.name])
            try:
                assert abs(await server_time(node.peer_address) - time.time()) < 2
                nemesis = ClockNemesis(db=db)
                await nemesis.setup(ctx, remotes)
                await nemesis.invoke(
                    ctx, {"f": "start-clock", "value": {"kind": "bump", "offsets": {"n1": 3600}}}
                )
                shifted = await server_time(node.peer_address) - time.time()
                assert 3598 < shifted < 3602, shifted
                await nemesis.invoke(ctx, {"f": "stop-clock", "value": None})
                assert abs(await server_time(node.peer_address) - time.time()) < 2
                assert await nemesis.verify_healed(ctx) == {"n1": []}
            finally:
                await db.teardown(ctx, node, remotes[node.name])

    asyncio.run(go())


def test_a_postgres_run_with_clock_pause_and_kill_faults(tmp_path: Path) -> None:
    kinds = ("clock", "pause", "kill")
    seed = next(
        s for s in range(1000)
        if {x["f"] for x in plan_schedule(kinds, ["n1"], seed=s, time_limit=14, interval=2)}
        >= {f"start-{k}" for k in kinds}
    )  # fmt: skip
    clew = Path(sys.executable).with_name("clew")
    argv = [
        str(clew), "test", "postgres", "--workload", "list-append", "--isolation",
        "serializable", "--faults", ",".join(kinds), "--interval", "2", "--time-limit", "14",
        "--seed", str(seed), "--store", str(tmp_path / "store"),
        "--cluster-state-dir", str(tmp_path / "cluster"), "--no-progress",
        *[a for k, v in CLUSTER.items() for a in ("--cluster-option", f"{k}={v}")],
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = next((tmp_path / "store" / "postgres-list-append").glob("2*"))
    results = json.loads((run / "results.json").read_text())
    assert results["valid"] is True and results["heal_verified"] is True, results
    assert {w["kind"] for w in results["faults"]} == set(kinds)
    assert not results["problems"], results["problems"]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "cpq-" not in netns
