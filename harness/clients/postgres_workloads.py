"""PostgreSQL clients for the bank, counter, set-full, unique-ids, long-fork, queue and
lock workloads, over asyncpg, each talking to the primary's server.

They share :class:`~harness.clients.postgres.PostgresAppendClient`'s connection handling
and its mapping of outcomes, which is the heart of a correct history:

* **cannot connect** → ``fail`` (after ``reconnect_delay``);
* **any error before COMMIT is sent** (a statement error such as a serialization failure
  40001, a lock timeout 55P03, a broken connection, ``txn_timeout``) → ``fail``: the
  transaction is rolled back (a dropped connection rolls it back too), and PostgreSQL never
  shows uncommitted writes;
* **COMMIT answered with an error** of class 40, 23 or 25 → ``fail``; **COMMIT with no
  answer** (broken connection, ``commit_timeout``) or another error → ``info``.

Every op runs in one transaction at the client's isolation level, except the lock
client's, which are single statements on a session (advisory locks belong to the
session): there a statement error is ``fail`` and a statement with no answer ``info``.

The tables (:data:`WORKLOAD_SCHEMA`, created by the suite's DB setup)::

    clew_bank (id int PRIMARY KEY, balance bigint)       -- rows made by the first client
    clew_counter (id int PRIMARY KEY, v bigint)          -- one row, id 0, v 0
    clew_set (v bigint PRIMARY KEY)
    SEQUENCE clew_ids
    clew_lf (k bigint PRIMARY KEY, v bigint)
    clew_queue (id bigserial PRIMARY KEY, v bigint)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from harness.clients.postgres import (
    Body,
    PostgresAppendClient,
    Refused,
)
from harness.clients.postgres import describe_error as _describe
from harness.errors import ConfigError

if TYPE_CHECKING:
    import asyncpg

    from harness.api import Op, TestContext

__all__ = [
    "WORKLOAD_SCHEMA",
    "PostgresBankClient",
    "PostgresCounterClient",
    "PostgresLockClient",
    "PostgresLongForkClient",
    "PostgresQueueClient",
    "PostgresSetClient",
    "PostgresUniqueIdsClient",
]

WORKLOAD_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS clew_bank (id int PRIMARY KEY, balance bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS clew_counter (id int PRIMARY KEY, v bigint NOT NULL)",
    "INSERT INTO clew_counter VALUES (0, 0) ON CONFLICT DO NOTHING",
    "CREATE TABLE IF NOT EXISTS clew_set (v bigint PRIMARY KEY)",
    "CREATE SEQUENCE IF NOT EXISTS clew_ids",
    "CREATE TABLE IF NOT EXISTS clew_lf (k bigint PRIMARY KEY, v bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS clew_queue (id bigserial PRIMARY KEY, v bigint NOT NULL)",
)

class _PostgresTxnClient(PostgresAppendClient):
    """Runs one op as one transaction (see the module docstring for outcomes)."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform ``op``; return its completion."""
        raise NotImplementedError

    async def _in_txn(
        self, body: Body, *, keep_value: bool = False, isolation: str | None = None
    ) -> Op:
        """Run ``body(conn)`` in a transaction (at ``isolation``, default the client's);
        ``ok`` with its result as value (unless ``keep_value``: the invocation's value
        stays)."""
        try:
            conn = await self._connection()
        except Exception as e:
            await asyncio.sleep(self.reconnect_delay)
            return {"type": "fail", "error": f"connect: {_describe(e)}"}
        try:
            return await self._run(conn, body, keep_value, isolation or self.isolation)
        except BaseException:  # cancelled by clew's op timeout, or a bug: never reuse
            self._drop()
            raise


def _f(op: Op, *allowed: str) -> str:
    f = op.get("f")
    if f not in allowed:
        raise ConfigError(f"this postgres client does f in {allowed}, got {op!r}")
    return str(f)


class PostgresBankClient(_PostgresTxnClient):
    """Bank accounts as rows of ``clew_bank``. A transfer reads both balances and writes
    the new ones as values (read, then ``SET balance = <value>``), so an isolation level
    that allows lost updates loses money; a source with too little money → ``fail``
    (``insufficient``). A read selects every row in one statement. The first op of each
    client first inserts the opening ``balances`` (``ON CONFLICT DO NOTHING``)."""

    def __init__(self, *, balances: dict[int, int], **kw: Any) -> None:
        super().__init__(**kw)
        self.balances = balances
        self._ready = False

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform a read or a transfer; return its completion."""
        from harness.workloads.bank import INSUFFICIENT

        f = _f(op, "read", "transfer")
        if not self._ready:
            ids, amounts = list(self.balances), list(self.balances.values())

            async def create(conn: asyncpg.Connection) -> None:
                await conn.execute(
                    "INSERT INTO clew_bank (id, balance) SELECT * FROM "
                    "unnest($1::int[], $2::bigint[]) ON CONFLICT DO NOTHING",
                    ids,
                    amounts,
                )

            # Idempotent, so read committed: no serialization failures among the creators.
            made = await self._in_txn(create, isolation="read-committed")
            if made["type"] != "ok":
                return {"type": "fail", "error": f"creating the accounts: {made.get('error')}"}
            self._ready = True
        if f == "read":

            async def read(conn: asyncpg.Connection) -> dict[str, int]:
                rows = await conn.fetch("SELECT id, balance FROM clew_bank")
                return {str(r["id"]): int(r["balance"]) for r in rows}

            return await self._in_txn(read)
        v = op.get("value")
        if not isinstance(v, dict) or not {"from", "to", "amount"} <= v.keys():
            raise ConfigError(f"a transfer value must be {{from, to, amount}}, got {v!r}")
        src, dst, amount = int(v["from"]), int(v["to"]), int(v["amount"])

        async def transfer(conn: asyncpg.Connection) -> None:
            get = "SELECT balance FROM clew_bank WHERE id = $1"
            a, b = await conn.fetchval(get, src), await conn.fetchval(get, dst)
            if a is None or b is None:
                raise Refused("no such account")
            if a < amount:
                raise Refused(INSUFFICIENT)
            put = "UPDATE clew_bank SET balance = $2 WHERE id = $1"
            await conn.execute(put, src, a - amount)
            await conn.execute(put, dst, b + amount)

        return await self._in_txn(transfer, keep_value=True)


class PostgresCounterClient(_PostgresTxnClient):
    """``add`` n: ``UPDATE clew_counter SET v = v + n``; ``read``: the value."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform an add or a read; return its completion."""
        if _f(op, "add", "read") == "read":

            async def read(conn: asyncpg.Connection) -> int:
                return int(await conn.fetchval("SELECT v FROM clew_counter WHERE id = 0"))

            return await self._in_txn(read)
        n = int(op["value"])

        async def add(conn: asyncpg.Connection) -> None:
            await conn.execute("UPDATE clew_counter SET v = v + $1 WHERE id = 0", n)

        return await self._in_txn(add, keep_value=True)


class PostgresSetClient(_PostgresTxnClient):
    """``add`` x: ``INSERT INTO clew_set``; ``read``: every element, sorted."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform an add or a read; return its completion."""
        if _f(op, "add", "read") == "read":

            async def read(conn: asyncpg.Connection) -> list[int]:
                return [int(r["v"]) for r in await conn.fetch("SELECT v FROM clew_set ORDER BY v")]

            return await self._in_txn(read)
        x = int(op["value"])

        async def add(conn: asyncpg.Connection) -> None:
            await conn.execute("INSERT INTO clew_set (v) VALUES ($1)", x)

        return await self._in_txn(add, keep_value=True)


class PostgresUniqueIdsClient(_PostgresTxnClient):
    """``generate``: ``nextval('clew_ids')`` (a sequence never hands a value out twice,
    even to transactions that roll back)."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Generate an id; return its completion."""
        _f(op, "generate")

        async def generate(conn: asyncpg.Connection) -> int:
            return int(await conn.fetchval("SELECT nextval('clew_ids')"))

        return await self._in_txn(generate)


class PostgresLongForkClient(_PostgresTxnClient):
    """``write`` ``[["w", k, v]]``: insert row k; ``read`` ``[["r", k, None], ...]``: one
    SELECT of the group's rows, answered in the order asked (None for absent)."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform a write or a read transaction; return its completion."""
        f = _f(op, "write", "read")
        mops = op.get("value")
        if not isinstance(mops, list) or not all(isinstance(m, list) and len(m) == 3 for m in mops):
            raise ConfigError(f"a long-fork op's value is a list of [f, k, v], got {mops!r}")
        if f == "write":
            (_, k, v), *rest = mops
            if rest:
                raise ConfigError("a long-fork write inserts one key")

            async def write(conn: asyncpg.Connection) -> None:
                await conn.execute("INSERT INTO clew_lf (k, v) VALUES ($1, $2)", int(k), int(v))

            return await self._in_txn(write, keep_value=True)
        keys = [int(m[1]) for m in mops]

        async def read(conn: asyncpg.Connection) -> list[list[Any]]:
            rows = await conn.fetch("SELECT k, v FROM clew_lf WHERE k = ANY($1::bigint[])", keys)
            seen = {int(r["k"]): int(r["v"]) for r in rows}
            return [["r", k, seen.get(k)] for k in keys]

        return await self._in_txn(read)


class PostgresQueueClient(_PostgresTxnClient):
    """A queue table: ``enqueue`` x inserts a row; ``dequeue`` deletes the oldest row that
    no other transaction has locked (``FOR UPDATE SKIP LOCKED``) and returns its value, or
    None when there is none; ``drain`` deletes every row and returns the values, oldest
    first. FIFO is not promised under concurrent consumers (a locked head is skipped)."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform an enqueue, a dequeue or a drain; return its completion."""
        f = _f(op, "enqueue", "dequeue", "drain")
        if f == "enqueue":
            x = int(op["value"])

            async def enqueue(conn: asyncpg.Connection) -> None:
                await conn.execute("INSERT INTO clew_queue (v) VALUES ($1)", x)

            return await self._in_txn(enqueue, keep_value=True)
        if f == "dequeue":

            async def dequeue(conn: asyncpg.Connection) -> int | None:
                v = await conn.fetchval(
                    "DELETE FROM clew_queue WHERE id = (SELECT id FROM clew_queue ORDER BY id "
                    "FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING v"
                )
                return None if v is None else int(v)

            return await self._in_txn(dequeue)

        async def drain(conn: asyncpg.Connection) -> list[int]:
            rows = await conn.fetch(
                "WITH d AS (DELETE FROM clew_queue RETURNING id, v) SELECT v FROM d ORDER BY id"
            )
            return [int(r["v"]) for r in rows]

        return await self._in_txn(drain)


class PostgresLockClient(_PostgresTxnClient):
    """Session-level advisory lock ``key`` (``pg_advisory_lock``), one statement per op on
    the client's own connection. ``acquire`` waits up to the server's ``lock_timeout``
    (``txn_timeout``): timing out (55P03) or another statement error → ``fail``; no
    answer, or a connection exception (SQLSTATE class 08) → ``info`` (the connection is
    dropped, which ends the session and so frees any lock it got). ``release``:
    ``pg_advisory_unlock`` → ``ok`` if it was held, else ``fail`` (``not-held``); no
    answer, or an error (the connection is then closed, which frees the lock) → ``info``.
    A release without a held lock → ``fail`` at once.
    """

    def __init__(self, *, key: int = 14, **kw: Any) -> None:
        super().__init__(**kw)
        self.key = key
        self._held = False

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Acquire or release the lock; return the completion."""
        from harness.workloads.lock import NOT_HELD

        f = _f(op, "acquire", "release")
        if f == "release" and not self._held:
            return {"type": "fail", "error": NOT_HELD}
        if f == "acquire" and self._held:
            return {"type": "fail", "error": "already-held"}
        sql = "SELECT pg_advisory_lock($1)" if f == "acquire" else "SELECT pg_advisory_unlock($1)"
        if f == "release":
            self._held = False  # whatever happens next, this client no longer relies on it
        done = await self._statement(sql)
        if f == "release" and done["type"] == "fail":
            # The unlock failed, so the session still holds the lock; ending the session
            # releases it — at an unknown moment from the history's point of view: info.
            self._drop()
            return {"type": "info", "error": f"{done.get('error')}; session closed"}
        if done["type"] == "ok":
            if f == "acquire":
                self._held = True
            elif done.pop("value") is not True:
                return {"type": "fail", "error": NOT_HELD}
        return done

    async def _statement(self, sql: str) -> Op:
        import asyncpg

        try:
            conn = await self._connection()
        except Exception as e:
            await asyncio.sleep(self.reconnect_delay)
            return {"type": "fail", "error": f"connect: {_describe(e)}"}
        try:
            # A little past the server's lock_timeout, so the server's definite answer wins.
            async with asyncio.timeout(self.txn_timeout * 1.5):
                value = await conn.fetchval(sql, self.key)
        except asyncpg.PostgresError as e:
            if str(getattr(e, "sqlstate", "") or "").startswith("08"):
                # Connection exception (asyncpg raises 08003 when the socket breaks mid-
                # statement): the statement may have run.
                self._drop()
                return {"type": "info", "error": _describe(e)}
            return {"type": "fail", "error": _describe(e)}
        except (TimeoutError, OSError, asyncpg.InterfaceError) as e:
            self._drop()
            what = "timeout" if isinstance(e, TimeoutError) else _describe(e)
            return {"type": "info", "error": what}
        except BaseException:
            self._drop()
            raise
        return {"type": "ok", "value": value}
