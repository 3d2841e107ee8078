"""Cutting the connection between request and response: does every workload client map
what it cannot know to ``info`` and what surely did not happen to ``fail``?

One real node (a network namespace) runs both etcd and PostgreSQL. Each client talks to
it through a small TCP proxy on this machine's loopback that, once armed, cuts one
connection when the client sends a chosen request: ``after`` forwards the request to the
server and closes only the client's side (the server does the work, its answer is thrown
away: the client must say ``info``, and we check the effect is really there), ``before``
closes both sides without forwarding (nothing happened). A stopped proxy refuses
connections (the client must say ``fail``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from clusters import Cluster, ClusterSpec, get_provider
from harness.api import TestContext as Ctx  # (a `Test*` name would be collected)
from harness.clients.etcd import (
    EtcdBankClient,
    EtcdLockClient,
    EtcdSetClient,
    EtcdUniqueIdsClient,
)
from harness.clients.postgres import SCHEMA
from harness.clients.postgres_workloads import (
    WORKLOAD_SCHEMA,
    PostgresBankClient,
    PostgresCounterClient,
    PostgresLockClient,
    PostgresLongForkClient,
    PostgresQueueClient,
    PostgresSetClient,
    PostgresUniqueIdsClient,
)
from harness.control import connect_all
from harness.dbs.etcd import DEFAULT_BINARY, EtcdDB
from harness.dbs.postgres import VERSIONS_GLOB, PostgresDB

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(not os.path.exists(DEFAULT_BINARY), reason="etcd is not installed"),
    pytest.mark.skipif(
        not list(Path("/").glob(VERSIONS_GLOB.lstrip("/") + "/postgres")),
        reason="PostgreSQL is not installed",
    ),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 missing"),
]

PREFIX = "cwc-"
CLUSTER = {"subnet": "10.77.176.0/24", "prefix": PREFIX, "bridge": f"{PREFIX}br0"}


class CutProxy:
    """A loopback TCP proxy to ``host:port`` that can cut one connection on a request."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.listen_port = 0
        self._server: asyncio.Server | None = None
        self._pattern: bytes | None = None
        self._mode = "after"
        self.cut = asyncio.Event()
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.listen_port)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening (new connections are refused) and break the open ones."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._clients):
            w.transport.abort()
        await asyncio.sleep(0.05)

    def arm(self, pattern: bytes, mode: str) -> None:
        """Cut the next connection whose client sends ``pattern``: ``after`` or ``before``
        forwarding that request."""
        self._pattern, self._mode = pattern, mode
        self.cut.clear()

    async def _serve(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            sr, sw = await asyncio.open_connection(self.host, self.port)
        except OSError:
            cw.close()
            return

        async def down() -> None:  # server -> client
            with contextlib.suppress(Exception):
                while data := await sr.read(65536):
                    if not cw.is_closing():
                        cw.write(data)
                        await cw.drain()
            cw.close()

        relay = asyncio.create_task(down())
        self._clients.add(cw)
        try:
            while data := await cr.read(65536):
                if self._pattern is not None and self._pattern in data:
                    self._pattern = None
                    if self._mode == "after":
                        sw.write(data)
                        await sw.drain()
                    else:
                        sw.close()
                    cw.transport.abort()  # the client sees its connection break
                    self.cut.set()
                    await asyncio.sleep(1.0)  # let the server finish and answer nobody
                    break
                sw.write(data)
                await sw.drain()
        except (Exception, asyncio.CancelledError):
            pass  # the proxy's own cut, or the test stopping it
        finally:
            self._clients.discard(cw)
            cw.close()
            sw.close()
            relay.cancel()


@dataclasses.dataclass
class Env:
    cluster: Cluster
    ctx: Ctx
    address: str


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    state = tmp_path_factory.mktemp("cut-cluster")
    provider = get_provider("local")
    cluster = provider.up(
        ClusterSpec(provider="local", nodes=1, name="cut", state_dir=str(state), options=CLUSTER)
    )
    ctx = Ctx(name="cut", cluster=cluster, options={}, rng=random.Random(14),
              run_dir=Path(state), concurrency=1, time_limit=30.0)  # fmt: skip
    etcd, pg = EtcdDB(), PostgresDB(init_sql=SCHEMA + WORKLOAD_SCHEMA)
    node = cluster.nodes[0]

    async def up() -> None:
        remotes = await connect_all(cluster.nodes)
        try:
            await etcd.setup(ctx, node, remotes[node.name])
            await pg.setup(ctx, node, remotes[node.name])
        finally:
            await remotes.close()

    async def down() -> None:
        remotes = await connect_all(cluster.nodes)
        try:
            await pg.teardown(ctx, node, remotes[node.name])
            await etcd.teardown(ctx, node, remotes[node.name])
        finally:
            await remotes.close()

    try:
        asyncio.run(up())
        yield Env(cluster=cluster, ctx=ctx, address=node.peer_address)
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(down())
        provider.down(state)
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert PREFIX not in netns


def _via(env: Env, proxy: CutProxy) -> tuple[Ctx, Any]:
    """A context whose only node is reached at the proxy (loopback), and that node."""
    node = dataclasses.replace(env.cluster.nodes[0], address="127.0.0.1")
    cluster = dataclasses.replace(env.cluster, nodes=(node,))
    return dataclasses.replace(env.ctx, cluster=cluster), node


def _run(coro: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, 60)

    return asyncio.run(bounded())


# ---- etcd -----------------------------------------------------------------------------------


async def _etcd(env: Env, make: Callable[..., Any], body: Callable[..., Awaitable[None]]) -> None:
    proxy = CutProxy(env.address, 2379)
    await proxy.start()
    ctx, node = _via(env, proxy)
    client = make(port=proxy.listen_port, read_timeout=2.0)
    direct = make(read_timeout=2.0)
    await client.open(ctx, node)
    await direct.open(env.ctx, env.cluster.nodes[0])
    try:
        await body(proxy, client, direct, ctx)
    finally:
        await client.close(ctx)
        await direct.close(env.ctx)
        await proxy.stop()


def test_etcd_bank_transfer(env: Env) -> None:
    async def body(proxy: CutProxy, c: Any, direct: Any, ctx: Ctx) -> None:
        read = {"f": "read"}
        assert (await c.invoke(ctx, read))["type"] == "ok"  # creates the accounts
        start = (await direct.invoke(ctx, read))["value"]
        t = {"f": "transfer", "value": {"from": 0, "to": 1, "amount": 2}}
        proxy.arm(b"/v3/kv/txn", "after")  # the txn reached etcd; its answer is lost
        done = await c.invoke(ctx, t)
        assert proxy.cut.is_set() and done["type"] == "info", done
        await asyncio.sleep(0.3)  # the server may still be applying it
        after = (await direct.invoke(ctx, read))["value"]
        assert (after["0"], after["1"]) == (start["0"] - 2, start["1"] + 2)  # it happened
        proxy.arm(b"/v3/kv/range", "before")  # reading the balances fails: nothing written
        done = await c.invoke(ctx, t)
        assert proxy.cut.is_set() and done["type"] == "fail", done
        assert (await direct.invoke(ctx, read))["value"] == after
        await proxy.stop()  # refused: definitely nothing
        assert (await c.invoke(ctx, t))["type"] == "fail"
        assert (await c.invoke(ctx, read))["type"] == "fail"
        assert (await direct.invoke(ctx, read))["value"] == after

    _run(_etcd(env, lambda **kw: EtcdBankClient(balances={0: 10, 1: 10}, **kw), body))


def test_etcd_set_add(env: Env) -> None:
    async def body(proxy: CutProxy, c: Any, direct: Any, ctx: Ctx) -> None:
        proxy.arm(b"/v3/kv/put", "after")
        done = await c.invoke(ctx, {"f": "add", "value": 1401})
        assert proxy.cut.is_set() and done["type"] == "info", done
        await asyncio.sleep(0.3)
        assert 1401 in (await direct.invoke(ctx, {"f": "read"}))["value"]
        proxy.arm(b"/v3/kv/put", "before")  # never reached etcd, but the client can't know
        done = await c.invoke(ctx, {"f": "add", "value": 1402})
        assert done["type"] == "info", done
        assert 1402 not in (await direct.invoke(ctx, {"f": "read"}))["value"]
        proxy.arm(b"/v3/kv/range", "after")  # a read changes nothing: fail
        assert (await c.invoke(ctx, {"f": "read"}))["type"] == "fail"
        await proxy.stop()
        assert (await c.invoke(ctx, {"f": "add", "value": 1403}))["type"] == "fail"

    _run(_etcd(env, EtcdSetClient, body))


def test_etcd_unique_ids(env: Env) -> None:
    async def body(proxy: CutProxy, c: Any, direct: Any, ctx: Ctx) -> None:
        first = (await direct.invoke(ctx, {"f": "generate"}))["value"]
        proxy.arm(b"/v3/kv/put", "after")
        done = await c.invoke(ctx, {"f": "generate"})
        assert done["type"] == "info", done
        await asyncio.sleep(0.3)
        # The lost answer's revision was used: the next id skips it.
        assert (await direct.invoke(ctx, {"f": "generate"}))["value"] == first + 2
        await proxy.stop()
        assert (await c.invoke(ctx, {"f": "generate"}))["type"] == "fail"

    _run(_etcd(env, EtcdUniqueIdsClient, body))


def test_etcd_lock(env: Env) -> None:
    async def body(proxy: CutProxy, c: Any, direct: Any, ctx: Ctx) -> None:
        proxy.arm(b"/v3/lock/lock", "after")  # etcd grants the lock; the answer is lost
        done = await c.invoke(ctx, {"f": "acquire"})
        assert done["type"] == "info", done
        # The client revoked its lease, so the lock is free long before the TTL (5 s).
        got = await asyncio.wait_for(direct.invoke(ctx, {"f": "acquire"}), 2.5)
        assert got["type"] == "ok", got
        assert (await c.invoke(ctx, {"f": "release"}))["type"] == "fail"  # holds nothing
        proxy.arm(b"/v3/lock/unlock", "after")
        assert (await c.invoke(ctx, {"f": "acquire"}))["type"] == "info"  # direct holds it
        assert (await direct.invoke(ctx, {"f": "release"}))["type"] == "ok"
        assert (await c.invoke(ctx, {"f": "acquire"}))["type"] == "ok"
        done = await c.invoke(ctx, {"f": "release"})  # the unlock's answer is lost
        assert proxy.cut.is_set() and done["type"] == "info", done
        await asyncio.sleep(0.3)
        assert (await direct.invoke(ctx, {"f": "acquire"}))["type"] == "ok"  # it was unlocked
        assert (await direct.invoke(ctx, {"f": "release"}))["type"] == "ok"
        await proxy.stop()
        assert (await c.invoke(ctx, {"f": "acquire"}))["type"] == "fail"

    _run(_etcd(env, lambda **kw: EtcdLockClient(lease_ttl=5, acquire_timeout=1.5, **kw), body))


# ---- PostgreSQL -----------------------------------------------------------------------------


async def _pg(env: Env, make: Callable[..., Any], body: Callable[..., Awaitable[None]]) -> None:
    proxy = CutProxy(env.address, 5432)
    await proxy.start()
    ctx, node = _via(env, proxy)
    client = make(port=proxy.listen_port)
    await client.open(ctx, node)
    sql = await asyncpg.connect(host=env.address, port=5432, user="postgres", database="postgres")
    try:
        await body(proxy, client, sql, ctx)
    finally:
        await client.close(ctx)
        await sql.close()
        await proxy.stop()


async def _fresh(client: Any) -> None:
    """Drop the client's connection, so its next statements are sent with their text."""
    client._drop()


@pytest.mark.parametrize(
    ("make", "op", "effect"),
    [
        (PostgresSetClient, {"f": "add", "value": 77},
         "SELECT count(*) FROM clew_set WHERE v = 77"),
        (PostgresCounterClient, {"f": "add", "value": 5}, "SELECT v FROM clew_counter"),
        (PostgresQueueClient, {"f": "enqueue", "value": 78}, "SELECT count(*) FROM clew_queue"),
        (PostgresLongForkClient, {"f": "write", "value": [["w", 79, 1]]},
         "SELECT count(*) FROM clew_lf"),
        (lambda **kw: PostgresBankClient(balances={0: 10, 1: 10}, **kw),
         {"f": "transfer", "value": {"from": 0, "to": 1, "amount": 1}},
         "SELECT balance FROM clew_bank WHERE id = 1"),
        (PostgresUniqueIdsClient, {"f": "generate"},
         "SELECT last_value + is_called::int FROM clew_ids"),
    ],
)  # fmt: skip
def test_pg_writes(env: Env, make: Callable[..., Any], op: dict[str, Any], effect: str) -> None:
    """A statement cut before COMMIT -> fail, and nothing changed; COMMIT cut after it
    reached the server -> info, and the change is there; a refused connection -> fail."""

    async def body(proxy: CutProxy, c: Any, sql: asyncpg.Connection, ctx: Ctx) -> None:
        if isinstance(c, PostgresBankClient):  # create the accounts first
            assert (await c.invoke(ctx, {"f": "read"}))["type"] == "ok"
        await _fresh(c)
        before = await sql.fetchval(effect)
        # Cut on the statement itself: it is the first message after BEGIN with SQL text.
        keyword = {PostgresSetClient: b"clew_set", PostgresCounterClient: b"clew_counter",
                   PostgresQueueClient: b"clew_queue", PostgresLongForkClient: b"clew_lf",
                   PostgresUniqueIdsClient: b"nextval"}.get(type(c), b"clew_bank")  # fmt: skip
        proxy.arm(keyword, "before")
        done = await c.invoke(ctx, op)
        assert proxy.cut.is_set() and done["type"] == "fail", done
        if not isinstance(c, PostgresUniqueIdsClient):  # (a sequence ignores rollbacks)
            assert await sql.fetchval(effect) == before
        await _fresh(c)
        proxy.arm(b"COMMIT", "after")
        done = await c.invoke(ctx, op)
        assert proxy.cut.is_set() and done["type"] == "info", done
        await asyncio.sleep(0.3)
        assert await sql.fetchval(effect) != before  # it committed: info was the right call
        await proxy.stop()
        done = await c.invoke(ctx, op)
        assert done["type"] == "fail" and "connect" in done["error"], done

    _run(_pg(env, make, body))


def test_pg_reads_cut_at_commit_are_info_and_queue_dequeue_really_removed(env: Env) -> None:
    async def body(proxy: CutProxy, c: Any, sql: asyncpg.Connection, ctx: Ctx) -> None:
        await sql.execute("DELETE FROM clew_queue")
        assert (await c.invoke(ctx, {"f": "enqueue", "value": 90}))["type"] == "ok"
        await _fresh(c)
        proxy.arm(b"COMMIT", "after")
        done = await c.invoke(ctx, {"f": "dequeue"})
        assert done["type"] == "info", done
        await asyncio.sleep(0.3)
        assert await sql.fetchval("SELECT count(*) FROM clew_queue") == 0  # 90 was taken
        assert (await c.invoke(ctx, {"f": "drain"})) == {"type": "ok", "value": []}

    _run(_pg(env, PostgresQueueClient, body))


def test_pg_advisory_lock(env: Env) -> None:
    async def body(proxy: CutProxy, c: Any, sql: asyncpg.Connection, ctx: Ctx) -> None:
        held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        await _fresh(c)
        proxy.arm(b"pg_advisory_lock", "before")
        done = await c.invoke(ctx, {"f": "acquire"})
        assert done["type"] == "info", done  # the client cannot tell it was never sent
        assert await sql.fetchval(held) == 0
        assert (await c.invoke(ctx, {"f": "acquire"}))["type"] == "ok"
        assert await sql.fetchval(held) == 1
        # Another session holds it while we wait: lock_timeout answers -> fail.
        other = PostgresLockClient(txn_timeout=0.5)
        await other.open(env.ctx, env.cluster.nodes[0])
        try:
            busy = await other.invoke(env.ctx, {"f": "acquire"})
            assert busy["type"] == "fail" and "55P03" in busy["error"], busy
        finally:
            await other.close(env.ctx)
        assert (await c.invoke(ctx, {"f": "release"}))["type"] == "ok"
        assert (await c.invoke(ctx, {"f": "release"})) == {"type": "fail", "error": "not-held"}
        await proxy.stop()
        assert (await c.invoke(ctx, {"f": "acquire"}))["type"] == "fail"

    _run(_pg(env, PostgresLockClient, body))
