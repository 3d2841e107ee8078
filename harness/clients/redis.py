"""Redis clients that find the primary through Sentinel and follow failover.

A tiny RESP2 client over asyncio streams (:class:`RespConnection`): the few commands the
workloads need, with a deadline on every reply, so what happened to a request is always
known to this module — never sent, sent without an answer, or answered.

Each worker's client asks Sentinel for the primary, its own node's Sentinel first and then
the others in node order (so a client on a node cut off with the old primary keeps
writing to it, as a client near it would in production), connects, checks with ``ROLE``
that the server calls itself ``master``, and keeps that connection until an error or
until ``recheck`` seconds pass (then it asks again and moves if Sentinel names another
server, as a Sentinel-aware client library does when told of a failover). A
completion's ``node`` is the node whose Redis served it.

How outcomes are mapped (a wrong mapping is what makes a false verdict):

* no primary found, connection refused, or the request could not be written -> ``fail``
  (nothing reached a server);
* an error reply (``-READONLY``, ``-MASTERDOWN``, ...) -> ``fail``: Redis executes no
  command it answers with an error;
* the request was written and no reply came (timeout, reset) -> ``info`` for a write,
  ``fail`` for a read (a read changes nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from clusters.base import Node
from harness.api import Op, TestContext
from harness.errors import ConfigError
from harness.workloads.register import CAS_MISMATCH

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_RECHECK",
    "MASTER_NAME",
    "REDIS_PORT",
    "SENTINEL_PORT",
    "SET_KEY",
    "NoPrimary",
    "RedisRegisterClient",
    "RedisSetClient",
    "RespConnection",
    "RespError",
    "Unanswered",
    "Unsent",
    "parse_info",
]

REDIS_PORT = 6379
SENTINEL_PORT = 26379
#: The name Sentinel monitors the primary under.
MASTER_NAME = "clew"
#: The set-full workload's set.
SET_KEY = "clew-set"
#: Prefix of the register workload's keys: ``clew-reg/<key>``.
REGISTER_PREFIX = "clew-reg/"
#: Seconds to connect to a server (Sentinel or Redis).
DEFAULT_CONNECT_TIMEOUT = 0.5
#: Seconds to wait for a reply.
DEFAULT_READ_TIMEOUT = 1.0
#: Seconds a client keeps its primary before asking Sentinel again.
DEFAULT_RECHECK = 1.0
#: Bytes of one reply line at most (a bulk string may be longer; it is read by length).
MAX_LINE = 1 << 20

# Compare-and-set in one step on the server: returns 1 if the value was ARGV[1].
_CAS_SCRIPT = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "redis.call('set', KEYS[1], ARGV[2]); return 1 else return 0 end"
)


class RespError(Exception):
    """The server answered with an error reply (the command was not executed)."""


class Unsent(Exception):
    """The request never reached a server (connect failed, or writing it failed)."""


class Unanswered(Exception):
    """The request was written but no reply came: it may or may not have been executed."""


class NoPrimary(Exception):
    """No Sentinel named a primary that calls itself ``master``."""


def _encode(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        data = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


async def _read_reply(reader: asyncio.StreamReader) -> Any:
    line = await reader.readuntil(b"\r\n")
    if len(line) > MAX_LINE:
        raise ValueError("reply line too long")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        return RespError(body.decode(errors="replace"))
    if kind == b":":
        return int(body)
    if kind == b"$":
        n = int(body)
        if n < 0:
            return None
        data = await reader.readexactly(n + 2)
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        n = int(body)
        if n < 0:
            return None
        return [await _read_reply(reader) for _ in range(n)]
    raise ValueError(f"not a RESP reply: {line[:40]!r}")


class RespConnection:
    """One TCP connection to a Redis or Sentinel server; one request at a time."""

    def __init__(self, host: str, port: int, *, read_timeout: float) -> None:
        self.host, self.port, self.read_timeout = host, port, read_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self, timeout: float) -> None:  # noqa: ASYNC109
        """Open the connection; :class:`Unsent` if it cannot be opened within ``timeout``."""
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), timeout
            )
        except (OSError, TimeoutError) as e:
            raise Unsent(f"cannot connect to {self.host}:{self.port}: {_describe(e)}") from e

    async def call(self, *args: Any) -> Any:
        """Send one command and return its reply. An error reply raises
        :class:`RespError`; a request not written raises :class:`Unsent`; a request
        written without a reply within the read timeout raises :class:`Unanswered` (and
        the connection is closed: a late reply must not answer the next request)."""
        if self._reader is None or self._writer is None:
            raise Unsent(f"not connected to {self.host}:{self.port}")
        try:
            try:
                self._writer.write(_encode(args))
                await asyncio.wait_for(self._writer.drain(), self.read_timeout)
            except (OSError, TimeoutError) as e:
                await self.close()
                raise Unsent(f"{self.host}:{self.port}: request not sent: {_describe(e)}") from e
            try:
                reply = await asyncio.wait_for(_read_reply(self._reader), self.read_timeout)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                await self.close()
                raise Unanswered(f"{self.host}:{self.port}: no reply: {_describe(e)}") from e
        except asyncio.CancelledError:  # (the op's deadline): its reply may still come
            self._abort()
            raise
        if isinstance(reply, RespError):
            raise reply
        return reply

    @property
    def connected(self) -> bool:
        """Whether the connection is open (not closed, nor abandoned mid-request)."""
        return self._writer is not None

    def _abort(self) -> asyncio.StreamWriter | None:
        """Close the connection at once, without waiting (a cancelled request's reply
        must not answer the next one); the writer closed, if it was open."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
        return writer

    async def close(self) -> None:
        """Close the connection (idempotent, never raises)."""
        writer = self._abort()
        if writer is not None:
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 0.5)


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def parse_info(text: str) -> dict[str, str]:
    """The ``key:value`` lines of an ``INFO`` (or ``SENTINEL``-style) reply as a dict."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith("#"):
            fields[key.strip()] = value.strip()
    return fields


class _SentinelClient:
    """The primary's connection, found through Sentinel; see the module docstring."""

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        master: str = MASTER_NAME,
        port: int = REDIS_PORT,
        sentinel_port: int = SENTINEL_PORT,
        recheck: float = DEFAULT_RECHECK,
    ) -> None:
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.recheck = recheck
        self._checked = 0.0
        self.master, self.port, self.sentinel_port = master, port, sentinel_port
        self._sentinels: list[str] = []
        self._names: dict[str, str] = {}
        self._conn: RespConnection | None = None
        self._served_by: str | None = None

    async def open(self, ctx: TestContext, node: Node) -> None:
        """Remember the Sentinels to ask (``node``'s first). No connection yet."""
        others = [n.peer_address for n in ctx.nodes if n.name != node.name]
        self._sentinels = [node.peer_address, *others]
        self._names = {n.peer_address: n.name for n in ctx.nodes}

    async def close(self, ctx: TestContext) -> None:
        """Close the primary's connection."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _ask_sentinels(self) -> str:
        """The primary's address per the first Sentinel (in order) that names one."""
        problems = []
        for host in self._sentinels:
            conn = RespConnection(host, self.sentinel_port, read_timeout=self.read_timeout)
            try:
                await conn.connect(self.connect_timeout)
                reply = await conn.call("SENTINEL", "get-master-addr-by-name", self.master)
            except (Unsent, Unanswered, RespError) as e:
                problems.append(str(e))
                continue
            finally:
                await conn.close()
            if isinstance(reply, list) and len(reply) == 2:
                return str(reply[0])
            problems.append(f"sentinel {host}: no primary named ({reply!r})")
        raise NoPrimary("; ".join(problems) or "no sentinels")

    async def _primary(self) -> RespConnection:
        """The connection to the primary; :class:`Unsent` when none can be found or
        reached, so the op was not attempted. Sentinel is asked again when there is no
        connection, and every ``recheck`` seconds while there is one (a connection to a
        server that is still up stays open across a failover otherwise); if no Sentinel
        answers then, the client keeps the server it has."""
        now = time.monotonic()
        if self._conn is not None and not self._conn.connected:  # (a request cancelled)
            self._conn = None
        if self._conn is not None and now - self._checked < self.recheck:
            return self._conn
        try:
            host = await self._ask_sentinels()
        except NoPrimary as e:
            if self._conn is not None:
                self._checked = now
                return self._conn
            self._served_by = None
            raise Unsent(f"no primary: {e}") from e
        self._checked = now
        if self._conn is not None:
            if self._conn.host == host:
                return self._conn
            await self._conn.close()
            self._conn = None
        self._served_by = None
        conn = RespConnection(host, self.port, read_timeout=self.read_timeout)
        await conn.connect(self.connect_timeout)
        try:
            role = await conn.call("ROLE")
        except (Unanswered, RespError) as e:
            await conn.close()
            raise Unsent(f"{host}: ROLE: {e}") from e
        if not (isinstance(role, list) and role and role[0] == "master"):
            await conn.close()
            raise Unsent(f"{host} is not a primary (ROLE: {role!r:.80})")
        self._conn, self._served_by = conn, self._names.get(host, host)
        return conn

    async def _call(self, *args: Any) -> Any:
        """One command on the primary: its reply, or the exceptions of
        :meth:`RespConnection.call` (the connection is dropped after any of them)."""
        conn = await self._primary()
        try:
            return await conn.call(*args)
        except (Unsent, Unanswered, RespError):
            await conn.close()
            self._conn = None
            raise

    def _done(self, op: dict[str, Any]) -> Op:
        if self._served_by is not None:
            op["node"] = self._served_by
        return op

    async def _write(self, *args: Any) -> tuple[Any, Op | None]:
        """A write: (reply, None), or (None, the fail/info completion)."""
        try:
            return await self._call(*args), None
        except (Unsent, RespError) as e:
            return None, self._done({"type": "fail", "error": str(e)})
        except Unanswered as e:
            return None, self._done({"type": "info", "error": str(e)})

    async def _read(self, *args: Any) -> tuple[Any, Op | None]:
        """A read: (reply, None), or (None, the fail completion)."""
        try:
            return await self._call(*args), None
        except (Unsent, Unanswered, RespError) as e:
            return None, self._done({"type": "fail", "error": str(e)})


class RedisSetClient(_SentinelClient):
    """The set-full workload on one Redis set: ``add`` x is ``SADD clew-set x``; ``read``
    is ``SMEMBERS clew-set`` (sorted integers)."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform an add or a read on the primary; return its completion."""
        f = op.get("f")
        if f == "add":
            _, bad = await self._write("SADD", SET_KEY, op["value"])
            return bad or self._done({"type": "ok"})
        if f == "read":
            reply, bad = await self._read("SMEMBERS", SET_KEY)
            if bad:
                return bad
            return self._done({"type": "ok", "value": sorted(int(x) for x in reply or [])})
        raise ConfigError(f"the Redis set client cannot do f={f!r} (add, read)")


class RedisRegisterClient(_SentinelClient):
    """The register workload: ``read`` is ``GET``, ``write`` is ``SET``, ``cas`` a Lua
    script comparing and setting in one step (``fail`` with :data:`CAS_MISMATCH` when the
    value was not ``from``). Keys are ``clew-reg/<key>``."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform a read, write or cas on the primary; return its completion."""
        f, key = op.get("f"), f"{REGISTER_PREFIX}{op.get('key')}"
        if f == "read":
            reply, bad = await self._read("GET", key)
            if bad:
                return bad
            return self._done({"type": "ok", "value": None if reply is None else int(reply)})
        if f == "write":
            _, bad = await self._write("SET", key, op["value"])
            return bad or self._done({"type": "ok"})
        if f == "cas":
            frm, to = op["value"]
            reply, bad = await self._write("EVAL", _CAS_SCRIPT, 1, key, frm, to)
            if bad:
                return bad
            if reply == 1:
                return self._done({"type": "ok"})
            return self._done({"type": "fail", "error": CAS_MISMATCH})
        raise ConfigError(f"the Redis register client cannot do f={f!r} (read, write, cas)")
