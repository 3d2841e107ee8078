"""The PostgreSQL suite: list-append transactions at a chosen isolation level.

Run it with ``clew test postgres --workload list-append --isolation read-committed``
(see ``docs/postgres.md``). One server runs on the cluster's first node (a replica set is
not in scope): ``clew test postgres`` therefore defaults to one node, ten workers and no
faults (see ``harness/spec.py``); network partitions mean nothing to a single server.
Options (``--option k=v``, or the ``[options]`` table of a TOML spec):

``isolation``           serializable (default), repeatable-read or read-committed; also
                        ``--isolation``
``consistency``         the model to check for (default: the one the isolation level
                        promises: serializable, snapshot-isolation, read-committed)
``key_count``, ``min_txn_length``, ``max_txn_length``, ``max_writes_per_key``
                        shape of the transactions (see ``harness/workloads/list_append.py``)
``bin_dir``             PostgreSQL's binaries on the node (default: the newest
                        ``/usr/lib/postgresql/*/bin``)
``port``                the server's port (default 5432)
``hba_address``         who may connect (default: the cluster's subnet, else ``samenet``)
``pg.<setting>``        a server setting, e.g. ``-o pg.deadlock_timeout=1s`` (the suite sets
                        ``deadlock_timeout=100ms``)
``connect_timeout``, ``txn_timeout``, ``commit_timeout``
                        client timeouts in seconds (1, 2, 2)

Workloads: ``list-append`` (default), ``bank`` (at ``isolation``; transfers read then
write balances), ``counter``, ``set-full``, ``unique-ids`` (a sequence), ``long-fork``
(at ``isolation``), ``queue`` (a ``SKIP LOCKED`` table) and ``lock`` (advisory locks).
The workloads other than bank, list-append and long-fork run at read committed unless
``isolation`` says otherwise. See ``docs/workloads.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from harness.api import Suite, TestContext, Workload
from harness.clients.postgres import (
    DEFAULT_COMMIT_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TXN_TIMEOUT,
    SCHEMA,
    PostgresAppendClient,
)
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
from harness.dbs.postgres import DEFAULT_PORT, PostgresDB
from harness.workloads import CHECK_OPTIONS, option_float, option_int
from harness.workloads import bank as bank_options
from harness.workloads import counter as counter_options
from harness.workloads import list_append as list_append_options
from harness.workloads import lock as lock_options
from harness.workloads import long_fork as long_fork_options
from harness.workloads import queue as queue_options
from harness.workloads import set_full as set_full_options
from harness.workloads.bank import bank_shape, bank_workload, initial_balances
from harness.workloads.counter import counter_workload
from harness.workloads.list_append import isolation_option, list_append_workload
from harness.workloads.lock import lock_workload
from harness.workloads.long_fork import long_fork_workload
from harness.workloads.queue import queue_workload
from harness.workloads.set_full import set_full_workload
from harness.workloads.unique_ids import unique_ids_workload

#: Server settings of the suite, changeable with ``pg.<name>`` options. Deadlocks are
#: common under contention; PostgreSQL looks for them only after a lock wait of
#: ``deadlock_timeout`` (1 s by default), which would idle workers for most of a short run.
SERVER_SETTINGS = {"deadlock_timeout": "100ms"}


def server_settings(options: Mapping[str, Any]) -> dict[str, str]:
    """:data:`SERVER_SETTINGS` with the ``pg.<name>`` options (``-o pg.work_mem=8MB``, or
    a ``pg`` table in a TOML spec's options) on top."""
    settings = dict(SERVER_SETTINGS)
    table = options.get("pg")
    if isinstance(table, Mapping):
        settings.update({str(k): str(v) for k, v in table.items()})
    settings.update({k[3:]: str(v) for k, v in options.items() if k.startswith("pg.")})
    return settings


def db(ctx: TestContext) -> PostgresDB:
    """The database: one PostgreSQL server on the first node, with the list-append table."""
    bin_dir = ctx.options.get("bin_dir")
    hba = ctx.options.get("hba_address")
    return PostgresDB(
        bin_dir=str(bin_dir) if bin_dir else None,
        port=option_int(ctx.options, "port", DEFAULT_PORT),
        hba_address=str(hba) if hba else None,
        settings=server_settings(ctx.options),
        init_sql=SCHEMA + WORKLOAD_SCHEMA,
        faketime=_faketime(ctx),
    )


def _faketime(ctx: TestContext) -> str | None:
    """libfaketime's path if the server should start under it: option ``faketime`` (a
    path, or true/false); by default on the local provider when this machine has it (the
    nodes share its filesystem), so that ``--faults clock`` can shift the server's clock."""
    value = ctx.options.get("faketime")
    if value is not None and str(value).lower() not in ("true", "1", "yes", "on"):
        return None if str(value).lower() in ("false", "0", "no", "off") else str(value)
    if value is None and ctx.cluster.provider != "local":
        return None
    from nemeses.clock import find_libfaketime

    path = find_libfaketime()
    return path if os.path.exists(path) else None  # not installed: clock faults are refused


def list_append(ctx: TestContext) -> Workload:
    """Transactions of appends to and reads of integer lists, at the ``isolation`` level."""
    o = ctx.options
    isolation = isolation_option(o)
    connect = option_float(o, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    txn = option_float(o, "txn_timeout", DEFAULT_TXN_TIMEOUT)
    commit = option_float(o, "commit_timeout", DEFAULT_COMMIT_TIMEOUT)
    port = option_int(o, "port", DEFAULT_PORT)
    return list_append_workload(
        ctx,
        client=lambda: PostgresAppendClient(
            isolation=isolation,
            connect_timeout=connect,
            txn_timeout=txn,
            commit_timeout=commit,
            port=port,
        ),
    )


def _client_options(ctx: TestContext, *, isolation: str) -> dict[str, Any]:
    """The keyword arguments every PostgreSQL client of this suite takes."""
    o = ctx.options
    return {
        "isolation": isolation,
        "connect_timeout": option_float(o, "connect_timeout", DEFAULT_CONNECT_TIMEOUT),
        "txn_timeout": option_float(o, "txn_timeout", DEFAULT_TXN_TIMEOUT),
        "commit_timeout": option_float(o, "commit_timeout", DEFAULT_COMMIT_TIMEOUT),
        "port": option_int(o, "port", DEFAULT_PORT),
    }


def _isolation(ctx: TestContext, default: str) -> str:
    return isolation_option(ctx.options) if "isolation" in ctx.options else default


def bank(ctx: TestContext) -> Workload:
    """Transfers (read both balances, write the new values) and reads of every balance,
    at the ``isolation`` level."""
    isolation = isolation_option(ctx.options)
    kw = _client_options(ctx, isolation=isolation)
    shape = bank_shape(ctx.options)
    balances = initial_balances(shape.accounts, shape.total)
    return bank_workload(
        ctx, client=lambda: PostgresBankClient(balances=balances, **kw), note=f" at {isolation}"
    )


def counter(ctx: TestContext) -> Workload:
    """``UPDATE ... SET v = v + n`` and reads of one counter row."""
    kw = _client_options(ctx, isolation=_isolation(ctx, "read-committed"))
    return counter_workload(ctx, client=lambda: PostgresCounterClient(**kw))


def set_full(ctx: TestContext) -> Workload:
    """Inserts of unique rows while other workers read the whole table."""
    kw = _client_options(ctx, isolation=_isolation(ctx, "read-committed"))
    return set_full_workload(ctx, client=lambda: PostgresSetClient(**kw))


def unique_ids(ctx: TestContext) -> Workload:
    """Ids from a sequence (``nextval``)."""
    kw = _client_options(ctx, isolation=_isolation(ctx, "read-committed"))
    return unique_ids_workload(
        ctx, client=lambda: PostgresUniqueIdsClient(**kw), source="a PostgreSQL sequence"
    )


def long_fork(ctx: TestContext) -> Workload:
    """Single-row inserts and reads of groups of rows, at the ``isolation`` level."""
    isolation = isolation_option(ctx.options)
    kw = _client_options(ctx, isolation=isolation)
    return long_fork_workload(
        ctx, client=lambda: PostgresLongForkClient(**kw), note=f" at {isolation}"
    )


def queue(ctx: TestContext) -> Workload:
    """A queue table: inserts, ``DELETE ... FOR UPDATE SKIP LOCKED`` dequeues, a drain.
    Not FIFO under concurrent consumers, so only total-queue is checked by default."""
    kw = _client_options(ctx, isolation=_isolation(ctx, "read-committed"))
    return queue_workload(
        ctx, client=lambda: PostgresQueueClient(**kw), linear_max_ops=0,
        note=" on a SKIP LOCKED table",
    )  # fmt: skip


def lock(ctx: TestContext) -> Workload:
    """A session-level advisory lock (``pg_advisory_lock``) per worker connection."""
    kw = _client_options(ctx, isolation="read-committed")
    return lock_workload(ctx, client=lambda: PostgresLockClient(**kw), note=" (pg_advisory_lock)")


#: What the options of the module docstring set (``-o NAME=VALUE``).
DB_OPTIONS = {
    "bin_dir": "PostgreSQL's binaries on the node (the newest /usr/lib/postgresql/*/bin)",
    "port": f"the server's port ({DEFAULT_PORT})",
    "hba_address": "who may connect (the cluster's subnet, else samenet)",
    "pg.": "a server setting, e.g. pg.deadlock_timeout=1s",
    "pg": "a table of server settings (a TOML spec's options)",
    "faketime": "libfaketime's path, or true/false (on for local clusters that have it)",
    "connect_timeout": f"client connect timeout, seconds ({DEFAULT_CONNECT_TIMEOUT:g})",
    "txn_timeout": f"seconds a transaction may take ({DEFAULT_TXN_TIMEOUT:g})",
    "commit_timeout": f"seconds a commit may take ({DEFAULT_COMMIT_TIMEOUT:g})",
}
_ISOLATION = {"isolation": "the isolation level (read-committed here; also --isolation)"}

SUITE = Suite(
    name="postgres",
    description=(
        "PostgreSQL (one server): list-append, bank, counter, set-full, unique-ids, "
        "long-fork, queue and lock"
    ),
    db=db,
    workloads={
        "list-append": list_append,
        "bank": bank,
        "counter": counter,
        "set-full": set_full,
        "unique-ids": unique_ids,
        "long-fork": long_fork,
        "queue": queue,
        "lock": lock,
    },
    default_workload="list-append",
    options={**DB_OPTIONS, **CHECK_OPTIONS},
    workload_options={
        "list-append": list_append_options.OPTIONS,
        "bank": {**bank_options.OPTIONS, **list_append_options.ISOLATION_OPTION},
        "counter": {**counter_options.OPTIONS, **_ISOLATION},
        "set-full": {**set_full_options.OPTIONS, **_ISOLATION},
        "unique-ids": _ISOLATION,
        "long-fork": {**long_fork_options.OPTIONS, **list_append_options.ISOLATION_OPTION},
        "queue": {**queue_options.OPTIONS, **_ISOLATION},
        "lock": lock_options.OPTIONS,
    },
)
