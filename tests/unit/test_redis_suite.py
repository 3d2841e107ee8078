"""The Redis suite's own logic: the RESP client's outcome mapping (against a scripted
loopback server: the real servers are in tests/integration/test_redis.py), the primary
found through Sentinel and followed after a failover, configs, the attribution of lost
adds, and failovers read from Sentinel's log."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from checkers.collections import set_full as set_full_checker
from clusters.base import Cluster, Node
from harness.api import TestContext
from harness.clients.redis import RedisRegisterClient, RedisSetClient
from harness.dbs.redis import RedisDB, read_failovers
from harness.history import HistoryBuilder
from harness.suites import load_suite
from harness.suites.redis import lost_by_node
from harness.workloads.register import CAS_MISMATCH
from nemeses import kinds
from nemeses.abilities import ABILITIES, lacking

#: A reply handler: the command's arguments -> the raw RESP bytes to answer (None: stay
#: silent, as a server cut off after reading the request).
Handler = Callable[[list[str]], bytes | None]


async def _read_command(reader: asyncio.StreamReader) -> list[str]:
    n = int((await reader.readuntil(b"\r\n"))[1:-2])
    args = []
    for _ in range(n):
        size = int((await reader.readuntil(b"\r\n"))[1:-2])
        args.append((await reader.readexactly(size + 2))[:-2].decode())
    return args


@asynccontextmanager
async def server(host: str, port: int, handler: Handler) -> AsyncIterator[list[list[str]]]:
    """A scripted RESP server on ``host:port``; yields the commands it received."""
    seen: list[list[str]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                args = await _read_command(reader)
                seen.append(args)
                reply = handler(args)
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, host, port)
    try:
        yield seen
    finally:
        srv.close()
        await srv.wait_closed()


def _bulk(s: str) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(s), s.encode())


def _ctx(nodes: tuple[Node, ...]) -> TestContext:
    cluster = Cluster(provider="local", name="t", nodes=nodes, state_dir="")
    return TestContext(name="t", cluster=cluster, options={}, rng=random.Random(1),
                       run_dir=Path("."), concurrency=1, time_limit=1.0)  # fmt: skip


NODES = (Node(name="n1", host="127.0.0.1"), Node(name="n2", host="127.0.0.2"))
SENTINEL, REDIS = 36379, 16379


def _sentinel(primary: list[str]) -> Handler:
    return lambda args: b"*2\r\n" + _bulk(primary[0]) + _bulk(str(REDIS))


def _redis(answers: dict[str, bytes | None]) -> Handler:
    def handle(args: list[str]) -> bytes | None:
        if args[0] == "ROLE":
            return b"*3\r\n" + _bulk("master") + b":0\r\n*0\r\n"
        return answers[args[0]]

    return handle


def _client(cls: type, **kw: Any) -> Any:
    return cls(port=REDIS, sentinel_port=SENTINEL, read_timeout=0.3, connect_timeout=0.3, **kw)


async def _invoke(cls: type, answers: dict[str, bytes | None], op: dict[str, Any]) -> Any:
    ctx = _ctx(NODES)
    async with (
        server("127.0.0.1", SENTINEL, _sentinel(["127.0.0.1"])),
        server("127.0.0.1", REDIS, _redis(answers)) as seen,
    ):
        client = _client(cls)
        await client.open(ctx, NODES[0])
        try:
            return await client.invoke(ctx, op), seen
        finally:
            await client.close(ctx)


def test_acknowledged_add_and_read_name_the_serving_node() -> None:
    done, seen = asyncio.run(_invoke(RedisSetClient, {"SADD": b":1\r\n"}, {"f": "add", "value": 7}))
    assert done == {"type": "ok", "node": "n1"}
    assert seen == [["ROLE"], ["SADD", "clew-set", "7"]]
    members = b"*2\r\n" + _bulk("3") + _bulk("1")
    done, _ = asyncio.run(_invoke(RedisSetClient, {"SMEMBERS": members}, {"f": "read"}))
    assert done == {"type": "ok", "value": [1, 3], "node": "n1"}


def test_a_write_without_reply_is_info_and_a_read_without_reply_fails() -> None:
    done, _ = asyncio.run(_invoke(RedisSetClient, {"SADD": None}, {"f": "add", "value": 1}))
    assert done["type"] == "info" and "no reply" in done["error"]
    done, _ = asyncio.run(_invoke(RedisSetClient, {"SMEMBERS": None}, {"f": "read"}))
    assert done["type"] == "fail"


def test_an_error_reply_fails_and_a_lost_cas_says_mismatch() -> None:
    readonly = b"-READONLY You can't write against a read only replica.\r\n"
    done, _ = asyncio.run(_invoke(RedisSetClient, {"SADD": readonly}, {"f": "add", "value": 1}))
    assert done["type"] == "fail" and "READONLY" in done["error"]
    op = {"f": "cas", "key": 1, "value": [2, 3]}
    done, _ = asyncio.run(_invoke(RedisRegisterClient, {"EVAL": b":0\r\n"}, op))
    assert done == {"type": "fail", "error": CAS_MISMATCH, "node": "n1"}
    done, _ = asyncio.run(_invoke(RedisRegisterClient, {"EVAL": b":1\r\n"}, op))
    assert done["type"] == "ok"
    done, _ = asyncio.run(
        _invoke(RedisRegisterClient, {"GET": b"$-1\r\n"}, {"f": "read", "key": 1})
    )
    assert done == {"type": "ok", "value": None, "node": "n1"}


def test_no_sentinel_and_no_primary_fail_without_sending() -> None:
    async def go() -> dict[str, Any]:
        ctx = _ctx(NODES)
        client = _client(RedisSetClient)
        await client.open(ctx, NODES[0])
        return await client.invoke(ctx, {"f": "add", "value": 1})  # nothing listens

    done = asyncio.run(go())
    assert done["type"] == "fail" and "no primary" in done["error"] and "node" not in done


def test_the_client_follows_sentinel_to_the_new_primary() -> None:
    """After a failover (the Sentinel names n2) the client moves at its next recheck."""

    async def go() -> list[Any]:
        ctx = _ctx(NODES)
        primary = ["127.0.0.1"]
        answers: dict[str, bytes | None] = {"SADD": b":1\r\n"}
        async with (
            server("127.0.0.1", SENTINEL, _sentinel(primary)),
            server("127.0.0.1", REDIS, _redis(answers)),
            server("127.0.0.2", REDIS, _redis(answers)),
        ):
            client = _client(RedisSetClient, recheck=0.05)
            await client.open(ctx, NODES[0])
            first = await client.invoke(ctx, {"f": "add", "value": 1})
            primary[0] = "127.0.0.2"
            await asyncio.sleep(0.1)
            second = await client.invoke(ctx, {"f": "add", "value": 2})
            await client.close(ctx)
            return [first["node"], second["node"]]

    assert asyncio.run(go()) == ["n1", "n2"]


def test_configs_make_the_first_node_primary_and_every_sentinel_watch_it() -> None:
    nodes = tuple(Node(name=f"n{i}", host=f"10.0.0.{i}") for i in (1, 2, 3))
    ctx = _ctx(nodes)
    db = RedisDB(down_after_ms=1500)
    assert "replicaof" not in db.redis_conf(ctx, nodes[0])
    assert "replicaof 10.0.0.1 6379" in db.redis_conf(ctx, nodes[2])
    conf = db.sentinel_conf(ctx, nodes[1])
    assert "sentinel monitor clew 10.0.0.1 6379 2" in conf
    assert "down-after-milliseconds clew 1500" in conf and "announce-ip 10.0.0.2" in conf


def test_lost_adds_are_attributed_to_the_node_that_acknowledged_them() -> None:
    b = HistoryBuilder()
    ops = [  # (process, type, f, value, time s, node)
        (0, "invoke", "add", 1, 0.0, None), (0, "ok", "add", 1, 0.1, "n1"),
        (1, "invoke", "add", 2, 1.0, None), (1, "ok", "add", 2, 1.1, "n2"),
        (0, "invoke", "add", 3, 2.0, None), (0, "ok", "add", 3, 2.5, "n1"),
        (1, "invoke", "read", None, 3.0, None), (1, "ok", "read", [1, 2, 3], 3.1, "n1"),
        (1, "invoke", "read", None, 4.0, None), (1, "ok", "read", [2], 4.1, "n2"),
    ]  # fmt: skip
    for p, t, f, v, s, n in ops:
        b.add(type=t, process=p, f=f, value=v, time=int(s * 1e9), node=n)
    history = b.build()
    result = set_full_checker.check(history)
    assert result.valid is False
    assert lost_by_node(history, result) == {
        "n1": {"count": 2, "first_ack_s": 0.1, "last_ack_s": 2.5}
    }
    workload = load_suite("redis").workloads["set-full"](_ctx(NODES))
    checked = workload.check(history, _ctx(NODES))
    assert checked.cause == "2 element(s) lost (2 acknowledged by n1 between 0.1 s and 2.5 s)"


def test_failovers_are_read_from_the_sentinels_logs(tmp_path: Path) -> None:
    line = "75:X 03 Dec 2026 11:04:{s} # +switch-master clew 10.0.0.1 6379 10.0.0.3 6379\n"
    for node, s in (("n1", "44.687"), ("n2", "37.923")):
        (tmp_path / "nodes" / node).mkdir(parents=True)
        (tmp_path / "nodes" / node / "sentinel.log").write_text("noise\n" + line.format(s=s))
    names = {"10.0.0.1": "n1", "10.0.0.3": "n3"}
    (f,) = read_failovers(tmp_path, names)
    assert (f.old, f.new, f.logged_by, f.time.second) == ("n1", "n3", "n2", 37)


def test_the_adapter_offers_every_ability_and_every_kind_can_strike_it() -> None:
    db = RedisDB()
    assert lacking(db, list(ABILITIES.values())) == []
    assert db.clock_reads == "unknown"  # not under libfaketime: clock faults are refused
    for kind in kinds.all_kinds():
        assert lacking(db, list(kind.db_needs)) == [], kind.name


def test_a_request_cancelled_at_its_deadline_leaves_no_reply_for_the_next() -> None:
    """The op's deadline cancelled a SET after it was sent; its late "+OK" then answered
    the next GET (a read of another op's reply, a false anomaly)."""

    async def slow_redis(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                args = await _read_command(reader)
                if args[0] == "ROLE":
                    writer.write(b"*3\r\n" + _bulk("master") + b":0\r\n*0\r\n")
                elif args[0] == "SET":
                    await asyncio.sleep(0.15)  # its reply comes after the deadline
                    writer.write(b"+OK\r\n")
                else:
                    writer.write(_bulk("5"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> Any:
        ctx = _ctx(NODES)
        srv = await asyncio.start_server(slow_redis, "127.0.0.1", REDIS)
        try:
            async with server("127.0.0.1", SENTINEL, _sentinel(["127.0.0.1"])):
                client = _client(RedisRegisterClient)
                await client.open(ctx, NODES[0])
                try:
                    write = asyncio.create_task(
                        client.invoke(ctx, {"f": "write", "key": 1, "value": 7}))
                    await asyncio.sleep(0.05)
                    write.cancel()  # (the op's deadline)
                    with contextlib.suppress(asyncio.CancelledError):
                        await write
                    await asyncio.sleep(0.2)  # the SET's late reply has come by now
                    return await client.invoke(ctx, {"f": "read", "key": 1})
                finally:
                    await client.close(ctx)
        finally:
            srv.close()
            await srv.wait_closed()

    done = asyncio.run(main())
    assert done["type"] == "ok" and done["value"] == 5, done
