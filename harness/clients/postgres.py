"""A list-append client for PostgreSQL over asyncpg: transactions of appends and reads.

The data is one table, :data:`TABLE`, of keys with an integer-array value::

    CREATE TABLE clew_append (k bigint PRIMARY KEY, v bigint[] NOT NULL)

An operation is ``{"f": "txn", "value": [["append", k, v], ["r", k, None], ...]}``; the
client runs its micro-ops in order in one transaction at the isolation level it was made
with, and completes with the same list, each read's ``None`` replaced by the list it read
(``[]`` for a key never written) — the format :mod:`checkers.txn` reads. An append is one
upsert, so it never reads the list it extends::

    INSERT INTO clew_append AS t (k, v) VALUES ($1, ARRAY[$2])
    ON CONFLICT (k) DO UPDATE SET v = t.v || EXCLUDED.v

Every worker's client talks to the server on :func:`harness.dbs.postgres.primary_node`,
whatever node the worker is bound to.

Outcomes — what each error means for the history:

* **Any error before COMMIT is sent** (a statement fails — serialization failure 40001,
  deadlock 40P01, lock timeout — the connection breaks, or the transaction runs past
  ``txn_timeout``) → ``fail``: the transaction is rolled back (or the connection is
  closed, which rolls it back); PostgreSQL never shows uncommitted writes, so it definitely
  had no effect.
* **COMMIT answered with an error** of class 40 (transaction rollback, e.g. a serializable
  transaction that cannot commit), 23 (integrity) or 25 (invalid transaction state) →
  ``fail``: the server says it rolled back. Not 40003 ("statement completion unknown",
  which a proxy may send): ``info``.
* **COMMIT with no answer** (the connection broke, ``commit_timeout`` passed) or any other
  error at COMMIT (an administrator shutdown, an internal error) → ``info``: it may have
  committed.
* **Cannot connect** → ``fail``, after a short pause (``reconnect_delay``).

After a timeout or a broken connection the connection is dropped (closing the socket) and
the next transaction opens a new one. The interpreter's own op timeout cancels the client
too; the connection is then dropped as well (and the op recorded as ``info`` by clew).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from harness.dbs.postgres import DEFAULT_PORT, primary_node
from harness.errors import ConfigError
from harness.workloads.list_append import normalize_isolation

if TYPE_CHECKING:
    import asyncpg

    from clusters.base import Node
    from harness.api import Op, TestContext

__all__ = [
    "DEFAULT_COMMIT_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_RECONNECT_DELAY",
    "DEFAULT_TXN_TIMEOUT",
    "SCHEMA",
    "TABLE",
    "Body",
    "PostgresAppendClient",
    "Refused",
    "describe_error",
]

#: The table of lists.
TABLE = "clew_append"
#: Statements that create the table (run once by the DB's setup).
SCHEMA = (f"CREATE TABLE IF NOT EXISTS {TABLE} (k bigint PRIMARY KEY, v bigint[] NOT NULL)",)
#: Seconds to open a connection (then the transaction fails: it never started).
DEFAULT_CONNECT_TIMEOUT = 1.0
#: Seconds from BEGIN to the end of the last micro-op; past it the transaction fails (it is
#: abandoned before COMMIT). Keep it below clew's op timeout (5 s by default).
DEFAULT_TXN_TIMEOUT = 2.0
#: Seconds to wait for COMMIT's answer; past it the outcome is unknown.
DEFAULT_COMMIT_TIMEOUT = 2.0
#: Seconds a worker waits after a failed connect before answering ``fail``, so that a
#: killed server is not hammered (and the history not flooded) while it is down.
DEFAULT_RECONNECT_DELAY = 0.2

_APPEND = (
    f"INSERT INTO {TABLE} AS t (k, v) VALUES ($1, ARRAY[$2::bigint]) "
    "ON CONFLICT (k) DO UPDATE SET v = t.v || EXCLUDED.v"
)
_READ = f"SELECT v FROM {TABLE} WHERE k = $1"
#: asyncpg's names of the SQL isolation levels.
_ASYNCPG_ISOLATION = {
    "serializable": "serializable",
    "repeatable-read": "repeatable_read",
    "read-committed": "read_committed",
}
#: SQLSTATE classes of a COMMIT error after which the transaction is known not to exist.
_DEFINITE_COMMIT_CLASSES = ("40", "23", "25")


def _mops(op: Op) -> list[list[Any]]:
    value = op.get("value")
    if op.get("f") != "txn" or not isinstance(value, list | tuple):
        raise ConfigError(f"the postgres list-append client runs f=txn ops, got {op!r}")
    out = []
    for mop in value:
        if not isinstance(mop, list | tuple) or len(mop) != 3 or mop[0] not in ("append", "r"):
            raise ConfigError(f"a micro-op must be [append|r, key, value], got {mop!r}")
        f, k, v = mop
        if isinstance(k, bool) or not isinstance(k, int):
            raise ConfigError(f"list-append keys must be integers, got {k!r}")
        if f == "append" and (isinstance(v, bool) or not isinstance(v, int)):
            raise ConfigError(f"list-append values must be integers, got {v!r}")
        out.append([f, k, v])
    return out


def _describe(e: BaseException) -> str:
    state = getattr(e, "sqlstate", None)
    name = type(e).__name__
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    head = f"{state} {name}" if state else name
    return f"{head}: {text}" if text else head


#: A transaction's work: ``body(conn)`` runs inside it; its result is the ok op's value.
Body = Callable[["asyncpg.Connection"], Awaitable[Any]]


class Refused(Exception):
    """Raised inside a transaction body: roll back, and the op fails with this error."""


class PostgresAppendClient:
    """List-append transactions at ``isolation`` (serializable, repeatable-read or
    read-committed) against the primary's server; see the module docstring for outcomes.
    ``connect_timeout``, ``txn_timeout``, ``commit_timeout`` and ``reconnect_delay`` (the
    pause after a failed connect) are in seconds; ``port``, ``database`` and ``user`` say
    where to connect."""

    def __init__(
        self,
        *,
        isolation: str = "serializable",
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        txn_timeout: float = DEFAULT_TXN_TIMEOUT,
        commit_timeout: float = DEFAULT_COMMIT_TIMEOUT,
        reconnect_delay: float = DEFAULT_RECONNECT_DELAY,
        port: int = DEFAULT_PORT,
        database: str = "postgres",
        user: str = "postgres",
    ) -> None:
        self.isolation = normalize_isolation(isolation)
        for what, v in (("connect_timeout", connect_timeout), ("txn_timeout", txn_timeout),
                        ("commit_timeout", commit_timeout)):  # fmt: skip
            if not v > 0:
                raise ConfigError(f"postgres client {what} must be positive, got {v!r}")
        self.connect_timeout = connect_timeout
        self.txn_timeout = txn_timeout
        self.commit_timeout = commit_timeout
        self.reconnect_delay = max(0.0, reconnect_delay)
        self.port = port
        self.database = database
        self.user = user
        self.host: str | None = None
        self._conn: asyncpg.Connection | None = None

    # ---- Client protocol --------------------------------------------------------------------

    async def open(self, ctx: TestContext, node: Node) -> None:
        """Connect to the primary's server (``node`` is the worker's node; every worker
        talks to the one server). No writes."""
        self.host = primary_node(ctx).peer_address
        await self._connection()

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Run the transaction ``op``; return its completion (see the module docstring)."""
        mops = _mops(op)
        try:
            conn = await self._connection()
        except Exception as e:
            await asyncio.sleep(self.reconnect_delay)
            return {"type": "fail", "error": f"connect: {_describe(e)}"}
        try:
            return await self._transact(conn, mops)
        except BaseException:  # cancelled by clew's op timeout, or a bug: never reuse
            self._drop()
            raise

    async def close(self, ctx: TestContext) -> None:
        """Close the connection."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await conn.close()
            except Exception:
                conn.terminate()

    # ---- one transaction --------------------------------------------------------------------

    async def _transact(self, conn: asyncpg.Connection, mops: list[list[Any]]) -> Op:
        async def body(conn: asyncpg.Connection) -> list[list[Any]]:
            done: list[list[Any]] = []
            for f, k, v in mops:
                if f == "append":
                    await conn.execute(_APPEND, k, v)
                    done.append([f, k, v])
                else:
                    got = await conn.fetchval(_READ, k)
                    done.append([f, k, list(got) if got is not None else []])
            return done

        return await self._run(conn, body, False, self.isolation)

    async def _run(
        self, conn: asyncpg.Connection, body: Body, keep_value: bool, isolation: str
    ) -> Op:
        """Run ``body(conn)`` as one transaction at ``isolation`` and map its outcome (see
        the module docstring): ``ok`` with the body's result as value (without one when
        ``keep_value``: the invocation's value stays), ``fail`` when it surely did not
        commit (:class:`Refused`, a statement error, a definite commit error), ``info``
        when the commit's outcome is unknown."""
        import asyncpg

        tx = conn.transaction(isolation=_ASYNCPG_ISOLATION[isolation])
        try:
            async with asyncio.timeout(self.txn_timeout):
                await tx.start()
                value = await body(conn)
        except Refused as e:
            await self._rollback(tx)
            return {"type": "fail", "error": str(e)}
        except asyncpg.PostgresError as e:
            await self._rollback(tx)
            return {"type": "fail", "error": _describe(e)}
        except (TimeoutError, OSError, asyncpg.InterfaceError) as e:
            self._drop()  # closing the connection rolls the transaction back
            what = "timeout" if isinstance(e, TimeoutError) else _describe(e)
            return {"type": "fail", "error": f"before commit: {what}"}
        try:
            async with asyncio.timeout(self.commit_timeout):
                await tx.commit()
        except asyncpg.PostgresError as e:
            state = str(getattr(e, "sqlstate", "") or "")
            if state[:2] in _DEFINITE_COMMIT_CLASSES and state != "40003":
                await self._rollback(tx)
                return {"type": "fail", "error": f"commit: {_describe(e)}"}
            self._drop()
            return {"type": "info", "error": f"commit: {_describe(e)}"}
        except (TimeoutError, OSError, asyncpg.InterfaceError) as e:
            self._drop()
            what = "timeout" if isinstance(e, TimeoutError) else _describe(e)
            return {"type": "info", "error": f"commit: {what}"}
        return {"type": "ok"} if keep_value else {"type": "ok", "value": value}

    async def _rollback(self, tx: Any) -> None:
        """Roll back after a statement error; drop the connection if even that fails."""
        conn = self._conn
        try:
            async with asyncio.timeout(self.txn_timeout):
                await tx.rollback()
        except Exception:
            self._drop()
            return
        if conn is not None and conn.is_in_transaction():
            self._drop()

    # ---- the connection ---------------------------------------------------------------------

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        import asyncpg

        if self.host is None:
            raise ConfigError("postgres client used before open()")
        lock_ms = int(self.txn_timeout * 1000)
        self._conn = await asyncpg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            database=self.database,
            timeout=self.connect_timeout,
            # Server-side bounds, so an abandoned transaction cannot hold locks for long.
            server_settings={
                "lock_timeout": str(lock_ms),
                "idle_in_transaction_session_timeout": str(4 * lock_ms),
            },
        )
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()


#: The error wording, for the other PostgreSQL clients
#: (:mod:`harness.clients.postgres_workloads`), which share it.
describe_error = _describe
