"""Clients of MariaDB with Galera over aiomysql: list-append, rw-register and bank.

aiomysql is asyncio's MySQL driver built on PyMySQL (pure Python, the driver SQLAlchemy
and most tools use): every server error arrives as PyMySQL's ``MySQLError`` with MariaDB's
own error number, which is what the mapping below needs, and the asyncio API fits clew's
workers without threads. Each worker's client talks to its own node's server (Galera is
multi-primary: every node takes writes).

Tables (made by the DB's setup, :data:`SCHEMA`)::

    clew_append (k BIGINT PRIMARY KEY, v TEXT NOT NULL)     -- "1,2,3"
    clew_register (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)
    clew_bank (id INT PRIMARY KEY, balance BIGINT NOT NULL)

A transaction runs at ``isolation`` (``REPEATABLE READ``, MariaDB's default and the level
Galera documents, unless told otherwise). An append is one statement that does not read
the list it extends in the transaction's snapshot (``INSERT … ON DUPLICATE KEY UPDATE v =
CONCAT(v, ',', …)``); a register write is ``INSERT … ON DUPLICATE KEY UPDATE``; a transfer
reads both balances and writes the new values.

Outcomes:

* **Cannot connect** → ``fail`` after ``reconnect_delay``.
* **Any error before COMMIT is sent** → ``fail``: a statement's error (deadlock or a
  Galera certification conflict, both error 1213; lock wait timeout 1205; a node not in
  the primary component, 1047), a broken connection, or the transaction running past
  ``txn_timeout``. MariaDB rolls back a transaction whose connection closes, and Galera
  replicates nothing before COMMIT, so it had no effect.
* **COMMIT refused** with 1213 (certification failed: Galera aborted it) or 1047 (the node
  is not in the primary component, nothing replicated) → ``fail``.
* **COMMIT unanswered** (the connection broke — error 2013/2006 — or ``commit_timeout``
  passed) or any other COMMIT error → ``info``: it may have committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from harness.dbs.galera import DATABASE, PASSWORD, PORT, USER
from harness.errors import ConfigError

if TYPE_CHECKING:
    import aiomysql

    from clusters.base import Node
    from harness.api import Op, TestContext

__all__ = [
    "DEFAULT_COMMIT_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_ISOLATION",
    "DEFAULT_TXN_TIMEOUT",
    "DEFINITE_COMMIT_ERRORS",
    "ISOLATION_SQL",
    "SCHEMA",
    "GaleraAppendClient",
    "GaleraBankClient",
    "GaleraRegisterClient",
    "Refused",
    "parse_list",
]

DEFAULT_CONNECT_TIMEOUT = 1.0
#: Seconds from BEGIN to the last statement; past it the transaction fails (abandoned).
DEFAULT_TXN_TIMEOUT = 2.0
#: Seconds to wait for COMMIT's answer; past it the outcome is unknown.
DEFAULT_COMMIT_TIMEOUT = 2.0
DEFAULT_RECONNECT_DELAY = 0.2
DEFAULT_ISOLATION = "repeatable-read"
#: clew's isolation names in MariaDB's words.
ISOLATION_SQL = {
    "serializable": "SERIALIZABLE",
    "repeatable-read": "REPEATABLE READ",
    "read-committed": "READ COMMITTED",
}
#: MariaDB error numbers after which a COMMIT surely did not commit: 1213 (deadlock;
#: Galera's certification failure and brute-force abort say so too) and 1047 (WSREP has
#: not yet prepared node for application use: not in the primary component).
DEFINITE_COMMIT_ERRORS = (1213, 1047)
#: The tables, ``{db}`` standing for clew's database.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {db}.clew_append (k BIGINT PRIMARY KEY, v TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {db}.clew_register (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {db}.clew_bank (id INT PRIMARY KEY, balance BIGINT NOT NULL)",
)


class Refused(Exception):
    """Raised inside a transaction body: roll back, and the op fails with this error."""


#: A transaction's work: ``body(cursor)`` runs inside it; its result is the ok op's value.
Body = Callable[["aiomysql.Cursor"], Awaitable[Any]]


def parse_list(text: str | None) -> list[int]:
    """A list-append value as stored (``"1,2,3"``; ``None`` when the row is absent)."""
    if not text:
        return []
    return [int(x) for x in text.split(",")]


def _describe(e: BaseException) -> str:
    args: tuple[Any, ...] = getattr(e, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        return f"{args[0]} {type(e).__name__}: {str(args[1]).strip()}"
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _errno(e: BaseException) -> int | None:
    args: tuple[Any, ...] = getattr(e, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class _GaleraClient:
    """One connection to the worker's node and one transaction runner with the fail/info
    mapping of the module docstring."""

    def __init__(
        self,
        *,
        isolation: str = DEFAULT_ISOLATION,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        txn_timeout: float = DEFAULT_TXN_TIMEOUT,
        commit_timeout: float = DEFAULT_COMMIT_TIMEOUT,
        reconnect_delay: float = DEFAULT_RECONNECT_DELAY,
        port: int = PORT,
    ) -> None:
        if isolation not in ISOLATION_SQL:
            raise ConfigError(
                f"galera isolation must be one of {', '.join(ISOLATION_SQL)}, got {isolation!r}"
            )
        for what, v in (("connect_timeout", connect_timeout), ("txn_timeout", txn_timeout),
                        ("commit_timeout", commit_timeout)):  # fmt: skip
            if not v > 0:
                raise ConfigError(f"galera client {what} must be positive, got {v!r}")
        self.isolation = isolation
        self.connect_timeout = connect_timeout
        self.txn_timeout = txn_timeout
        self.commit_timeout = commit_timeout
        self.reconnect_delay = max(0.0, reconnect_delay)
        self.port = port
        self.host: str | None = None
        self._conn: aiomysql.Connection | None = None

    async def open(self, ctx: TestContext, node: Node) -> None:
        """Remember the worker's node; connect lazily (a node still joining is no error)."""
        self.host = node.peer_address

    async def close(self, ctx: TestContext) -> None:
        """Close the connection."""
        self._drop()

    async def _connection(self) -> aiomysql.Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        import aiomysql

        if self.host is None:
            raise ConfigError("galera client used before open()")
        level = ISOLATION_SQL[self.isolation]
        self._conn = await asyncio.wait_for(
            aiomysql.connect(
                host=self.host, port=self.port, user=USER, password=PASSWORD, db=DATABASE,
                connect_timeout=self.connect_timeout, autocommit=False,
                init_command=f"SET SESSION TRANSACTION ISOLATION LEVEL {level}",
            ),
            self.connect_timeout * 2,
        )  # fmt: skip
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()  # closes the socket: the server rolls back what was open

    async def _in_txn(self, body: Body, *, keep_value: bool = False) -> Op:
        """Run ``body(cursor)`` as one transaction; map the outcome (module docstring):
        ``ok`` with the body's result as value (none when ``keep_value``), ``fail`` when it
        surely did not commit, ``info`` when COMMIT's outcome is unknown."""
        import pymysql

        try:
            conn = await self._connection()
        except Exception as e:
            self._drop()
            await asyncio.sleep(self.reconnect_delay)
            return {"type": "fail", "error": f"connect: {_describe(e)}"}
        try:
            return await self._transact(conn, body, keep_value, pymysql)
        except BaseException:  # cancelled by clew's op timeout, or a bug: never reuse
            self._drop()
            raise

    async def _transact(self, conn: aiomysql.Connection, body: Body, keep_value: bool,
                        pymysql: Any) -> Op:  # fmt: skip
        try:
            async with asyncio.timeout(self.txn_timeout):
                await conn.begin()
                async with conn.cursor() as cur:
                    value = await body(cur)
        except Refused as e:
            await self._rollback(conn)
            return {"type": "fail", "error": str(e)}
        except pymysql.err.MySQLError as e:
            if _errno(e) in (2013, 2006, 2003) or isinstance(e, pymysql.err.InterfaceError):
                self._drop()
            else:
                await self._rollback(conn)
            return {"type": "fail", "error": _describe(e)}
        except (TimeoutError, OSError) as e:
            self._drop()  # closing the connection rolls the transaction back
            what = "timeout" if isinstance(e, TimeoutError) else _describe(e)
            return {"type": "fail", "error": f"before commit: {what}"}
        try:
            async with asyncio.timeout(self.commit_timeout):
                await conn.commit()
        except pymysql.err.MySQLError as e:
            if _errno(e) in DEFINITE_COMMIT_ERRORS:
                await self._rollback(conn)
                return {"type": "fail", "error": f"commit: {_describe(e)}"}
            self._drop()
            return {"type": "info", "error": f"commit: {_describe(e)}"}
        except (TimeoutError, OSError) as e:
            self._drop()
            what = "timeout" if isinstance(e, TimeoutError) else _describe(e)
            return {"type": "info", "error": f"commit: {what}"}
        return {"type": "ok"} if keep_value else {"type": "ok", "value": value}

    async def _rollback(self, conn: aiomysql.Connection) -> None:
        """Roll back after an error; drop the connection if even that fails."""
        try:
            async with asyncio.timeout(self.txn_timeout):
                await conn.rollback()
        except Exception:
            self._drop()


def _key(k: Any, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise ConfigError(f"{what} keys must be integers, got {k!r}")
    return k


def _mops(op: Op, writes: str) -> list[list[Any]]:
    value = op.get("value")
    if op.get("f") != "txn" or not isinstance(value, list | tuple):
        raise ConfigError(f"the galera transaction clients run f=txn ops, got {op!r}")
    out = []
    for mop in value:
        if not isinstance(mop, list | tuple) or len(mop) != 3 or mop[0] not in (writes, "r"):
            raise ConfigError(f"a micro-op must be [{writes}|r, key, value], got {mop!r}")
        f, k, v = mop
        _key(k, "transaction")
        if f == writes and (isinstance(v, bool) or not isinstance(v, int)):
            raise ConfigError(f"written values must be integers, got {v!r}")
        out.append([f, k, v])
    return out


class GaleraAppendClient(_GaleraClient):
    """List-append transactions (``append``/``r`` micro-ops) on ``clew_append``."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Run the transaction ``op``; return its completion."""
        mops = _mops(op, "append")

        async def body(cur: aiomysql.Cursor) -> list[list[Any]]:
            done: list[list[Any]] = []
            for f, k, v in mops:
                if f == "append":
                    await cur.execute(
                        "INSERT INTO clew_append (k, v) VALUES (%s, %s) "
                        "ON DUPLICATE KEY UPDATE v = CONCAT(v, ',', VALUES(v))",
                        (k, str(v)),
                    )
                    done.append([f, k, v])
                else:
                    await cur.execute("SELECT v FROM clew_append WHERE k = %s", (k,))
                    row = await cur.fetchone()
                    done.append([f, k, parse_list(row[0] if row else None)])
            return done

        return await self._in_txn(body)


class GaleraRegisterClient(_GaleraClient):
    """rw-register transactions (``w``/``r`` micro-ops) on ``clew_register``."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Run the transaction ``op``; return its completion."""
        mops = _mops(op, "w")

        async def body(cur: aiomysql.Cursor) -> list[list[Any]]:
            done: list[list[Any]] = []
            for f, k, v in mops:
                if f == "w":
                    await cur.execute(
                        "INSERT INTO clew_register (k, v) VALUES (%s, %s) "
                        "ON DUPLICATE KEY UPDATE v = VALUES(v)",
                        (k, v),
                    )
                    done.append([f, k, v])
                else:
                    await cur.execute("SELECT v FROM clew_register WHERE k = %s", (k,))
                    row = await cur.fetchone()
                    done.append([f, k, int(row[0]) if row else None])
            return done

        return await self._in_txn(body)


class GaleraBankClient(_GaleraClient):
    """Bank accounts as rows of ``clew_bank`` (made with their opening balances by the
    DB's setup). A transfer reads both balances and writes the new values (so a lost
    update loses or makes money); a source with too little → ``fail`` (``insufficient``).
    A read selects every row in one statement."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform a read or a transfer; return its completion."""
        from harness.workloads.bank import INSUFFICIENT

        f = op.get("f")
        if f == "read":

            async def read(cur: aiomysql.Cursor) -> dict[str, int]:
                await cur.execute("SELECT id, balance FROM clew_bank")
                return {str(r[0]): int(r[1]) for r in await cur.fetchall()}

            return await self._in_txn(read)
        if f != "transfer":
            raise ConfigError(f"the galera bank client does read and transfer, not {f!r}")
        v = op.get("value")
        if not isinstance(v, dict) or not {"from", "to", "amount"} <= v.keys():
            raise ConfigError(f"a transfer value must be {{from, to, amount}}, got {v!r}")
        src, dst, amount = int(v["from"]), int(v["to"]), int(v["amount"])

        async def transfer(cur: aiomysql.Cursor) -> None:
            get = "SELECT balance FROM clew_bank WHERE id = %s"
            await cur.execute(get, (src,))
            a = await cur.fetchone()
            await cur.execute(get, (dst,))
            b = await cur.fetchone()
            if a is None or b is None:
                raise Refused("no such account")
            if a[0] < amount:
                raise Refused(INSUFFICIENT)
            put = "UPDATE clew_bank SET balance = %s WHERE id = %s"
            await cur.execute(put, (int(a[0]) - amount, src))
            await cur.execute(put, (int(b[0]) + amount, dst))

        return await self._in_txn(transfer, keep_value=True)
