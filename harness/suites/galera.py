"""The Galera suite: MariaDB with Galera 4, every node a primary (``clew test galera``).

Three (or more) nodes, each with its own ``mariadbd`` in one Galera cluster
(``harness/dbs/galera.py``); each worker's client talks to its own node
(``harness/clients/galera.py``). Jepsen's analysis of MariaDB Galera Cluster 12.1.2 (2026)
reports lost updates and stale reads in a healthy cluster, and committed transactions lost
when nodes crash in quick succession: see ``docs/galera.md``.

Options (``--option k=v``):

``isolation``           repeatable-read (default: MariaDB's), serializable, read-committed
``consistency``         the model checked (default: the isolation level's promise;
                        repeatable read → snapshot-isolation)
``key_count``, ``min_txn_length``, ``max_txn_length``, ``max_writes_per_key``
                        shape of the transactions (as list-append's)
``accounts``, ``total``, ``max_transfer``, ``read_fraction``   bank's shape
``mysqld.<setting>``    a server setting in clew's ``my.cnf``, e.g.
                        ``-o mysqld.innodb_flush_log_at_trx_commit=1`` or
                        ``-o mysqld.wsrep_sync_wait=1`` (defaults: ``DEFAULT_SETTINGS``)
``sst_method``          state transfer of a joining node (rsync)
``connect_timeout``, ``txn_timeout``, ``commit_timeout``   client timeouts (1, 2, 2 s)

Workloads: ``list-append`` (default), ``rw-register``, ``bank``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from checkers.result import Result
from harness.api import Suite, TestContext, Workload
from harness.clients.galera import (
    DEFAULT_COMMIT_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_ISOLATION,
    DEFAULT_TXN_TIMEOUT,
    SCHEMA,
    GaleraAppendClient,
    GaleraBankClient,
    GaleraRegisterClient,
)
from harness.dbs.galera import GaleraDB
from harness.history import History
from harness.workloads import CHECK_OPTIONS, option_float
from harness.workloads import bank as bank_options
from harness.workloads import list_append as list_append_options
from harness.workloads import rw_register as rw_register_options
from harness.workloads.bank import bank_shape, bank_workload, initial_balances
from harness.workloads.list_append import list_append_workload, normalize_isolation
from harness.workloads.rw_register import rw_register_workload

#: Nodes the recorded schedules are written for.
NODES = ("n1", "n2", "n3")
#: Every node killed within about a second, twice, each time restarted 3 s later
#: (Jepsen's "crashes in quick succession"); ``recovery_time`` lets the cluster re-form
#: before the final reads.
CRASH_SCHEDULE: tuple[dict[str, Any], ...] = (
    {"at": 3.0, "f": "start-kill", "value": ["n1", "n2", "n3"]},
    {"at": 6.0, "f": "stop-kill", "value": None},
    {"at": 12.0, "f": "start-kill", "value": ["n1", "n2", "n3"]},
    {"at": 15.0, "f": "stop-kill", "value": None},
)
CRASH_TIME_LIMIT = 20.0


def server_settings(options: Mapping[str, Any]) -> dict[str, str]:
    """The ``mysqld.<name>`` options (or a ``mysqld`` table in a TOML spec's options)."""
    settings: dict[str, str] = {}
    table = options.get("mysqld")
    if isinstance(table, Mapping):
        settings.update({str(k): str(v) for k, v in table.items()})
    settings.update({k[7:]: str(v) for k, v in options.items() if k.startswith("mysqld.")})
    return settings


def _isolation(ctx: TestContext) -> str:
    return normalize_isolation(ctx.options.get("isolation", DEFAULT_ISOLATION))


def _with_isolation(ctx: TestContext) -> TestContext:
    """``ctx`` whose options name the isolation level (so list-append's default
    consistency model is the one this suite's default level promises)."""
    if "isolation" in ctx.options:
        return ctx
    return dataclasses.replace(ctx, options={**ctx.options, "isolation": DEFAULT_ISOLATION})


def lost_updates(history: History, result: Result) -> list[dict[str, Any]]:
    """The lost updates ``result`` (a transactional check) found, each with the nodes
    whose clients committed the transactions that read the same version and then wrote
    over it: two different nodes means Galera's certification let both commit; one node,
    that InnoDB's repeatable read did. A pure function of the history and the result."""
    rows = result.details.get("anomaly_details", {}).get("lost-update", [])
    if not rows:
        return []
    node_of = {op.index: str(op.node) for op in history if op.type == "ok"}
    return [
        {"key": r["key"], "read": r["value"], "nodes": [node_of.get(i, "?") for i in r["ops"]]}
        for r in rows
    ]


def _checked_at_isolation(workload: Workload) -> Workload:
    """``workload`` whose check reads the options with this suite's default isolation,
    and names the nodes of each lost update (``lost_updates`` in the details)."""
    base = workload.check

    def check(history: History, ctx: TestContext) -> Result:
        result = base(history, _with_isolation(ctx))
        found = lost_updates(history, result)
        if not found:
            return result
        across = sum(1 for f in found if len(set(f["nodes"])) > 1)
        return dataclasses.replace(
            result,
            cause=f"{result.cause} ({len(found)} lost update(s), {across} between clients "
            "of different nodes)",
            details={**result.details, "lost_updates": found},
        )

    return dataclasses.replace(workload, check=check)


def db(ctx: TestContext) -> GaleraDB:
    """The database: mariadbd with Galera on every node, the first bootstrapping."""
    shape = bank_shape(ctx.options)
    rows = ", ".join(f"({a}, {b})" for a, b in initial_balances(shape.accounts,
                                                                 shape.total).items())  # fmt: skip
    return GaleraDB(
        settings=server_settings(ctx.options),
        sst_method=str(ctx.options.get("sst_method", "rsync")),
        init_sql=(*SCHEMA, f"INSERT IGNORE INTO {{db}}.clew_bank (id, balance) VALUES {rows}"),
    )


def _client_options(ctx: TestContext) -> dict[str, Any]:
    o = ctx.options
    return {
        "isolation": _isolation(ctx),
        "connect_timeout": option_float(o, "connect_timeout", DEFAULT_CONNECT_TIMEOUT),
        "txn_timeout": option_float(o, "txn_timeout", DEFAULT_TXN_TIMEOUT),
        "commit_timeout": option_float(o, "commit_timeout", DEFAULT_COMMIT_TIMEOUT),
    }


def list_append(ctx: TestContext) -> Workload:
    """List-append transactions on every node; checked Elle-style."""
    kw = _client_options(ctx)
    workload = list_append_workload(_with_isolation(ctx), client=lambda: GaleraAppendClient(**kw))
    return _checked_at_isolation(workload)


def rw_register(ctx: TestContext) -> Workload:
    """rw-register transactions on every node; checked Elle-style."""
    kw = _client_options(ctx)
    workload = rw_register_workload(_with_isolation(ctx), client=lambda: GaleraRegisterClient(**kw))
    return _checked_at_isolation(workload)


def bank(ctx: TestContext) -> Workload:
    """Transfers (read both balances, write the new values) and reads of every balance."""
    kw = _client_options(ctx)
    return bank_workload(ctx, client=lambda: GaleraBankClient(**kw),
                         note=f" at {kw['isolation']}")  # fmt: skip


#: What the options of the module docstring set (``-o NAME=VALUE``). The DB reads bank's
#: for every workload: it seeds the bank table at setup.
DB_OPTIONS = {
    **bank_options.OPTIONS,
    "isolation": f"the isolation level ({DEFAULT_ISOLATION}: MariaDB's; also --isolation)",
    "mysqld.": "a server setting in clew's my.cnf, e.g. mysqld.wsrep_sync_wait=1",
    "mysqld": "a table of server settings (a TOML spec's options)",
    "sst_method": "state transfer of a joining node (rsync)",
    "connect_timeout": f"client connect timeout, seconds ({DEFAULT_CONNECT_TIMEOUT:g})",
    "txn_timeout": f"seconds a transaction may take ({DEFAULT_TXN_TIMEOUT:g})",
    "commit_timeout": f"seconds a commit may take ({DEFAULT_COMMIT_TIMEOUT:g})",
}

SUITE = Suite(
    name="galera",
    description="MariaDB with Galera 4 (multi-primary, certification): list-append, "
    "rw-register, bank",
    db=db,
    workloads={"list-append": list_append, "rw-register": rw_register, "bank": bank},
    default_workload="list-append",
    options={**DB_OPTIONS, **CHECK_OPTIONS},
    workload_options={
        "list-append": list_append_options.OPTIONS,
        "rw-register": rw_register_options.OPTIONS,
    },
)
