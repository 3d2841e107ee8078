"""The etcd suite — clew's built-in suite, written exactly as your own suite file would be.

Run it with ``clew test etcd`` (or ``clew test --suite ./mysuite.py`` for a copy of this
file). A suite is one object, ``SUITE``: how to run the database on a node (the DB), and
the workloads that can be run against it. Options come from ``--option k=v`` or the
``[options]`` table of a TOML spec:

``pre_vote``            etcd's ``--pre-vote`` (default true)
``binary``              path of the etcd binary on the nodes (default ``/usr/bin/etcd``)
``ready_timeout``       seconds each member may take to start and answer its health check
                        (default 30; VMs under software emulation on a loaded host need more)
``connect_timeout``     client connect timeout, seconds (default 0.5)
``read_timeout``        client read timeout, seconds (default 1.0)
``serializable_reads``  UNSAFE: serve reads from one member without a quorum (default
                        false); stale reads that the checker should catch
``ops_per_key``, ``threads_per_key``  shape of the register workload
``accounts``, ``total``, ``max_transfer``, ``read_fraction``  shape of the bank workload
``lease_ttl``           the lock workload's lease, seconds (default 2); ``hold`` how long
                        each worker holds the lock (0.2 s); ``lease_keepalive`` renew the
                        lease while waiting and holding (default true); ``acquire_timeout``
                        seconds an acquire waits for the lock (default 3)

Workloads: ``register`` (default), ``single-register``, ``set``, ``set-full``, ``bank``
(a multi-key txn per transfer), ``unique-ids`` (put revisions) and ``lock`` (the v3 lock
API with leases). See ``docs/workloads.md``.
"""

from __future__ import annotations

import dataclasses

from harness.api import Suite, TestContext, Workload
from harness.clients.etcd import (
    DEFAULT_ACQUIRE_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_LEASE_TTL,
    DEFAULT_READ_TIMEOUT,
    EtcdBankClient,
    EtcdClient,
    EtcdLockClient,
    EtcdSetClient,
    EtcdUniqueIdsClient,
)
from harness.dbs.etcd import DEFAULT_BINARY, DEFAULT_READY_TIMEOUT, EtcdDB
from harness.workloads import CHECK_OPTIONS, option_bool, option_float, option_int
from harness.workloads import bank as bank_options
from harness.workloads import lock as lock_options
from harness.workloads import set_full as set_full_options
from harness.workloads.bank import bank_shape, bank_workload, initial_balances
from harness.workloads.lock import lock_workload
from harness.workloads.register import REGISTER_OPTIONS, register_workload, set_workload
from harness.workloads.set_full import set_full_workload
from harness.workloads.unique_ids import unique_ids_workload


def db(ctx: TestContext) -> EtcdDB:
    """The database: one etcd member per node, started over SSH."""
    return EtcdDB(
        binary=str(ctx.options.get("binary", DEFAULT_BINARY)),
        pre_vote=option_bool(ctx.options, "pre_vote", True),
        ready_timeout=option_float(ctx.options, "ready_timeout", DEFAULT_READY_TIMEOUT),
    )


def _timeouts(ctx: TestContext) -> tuple[float, float]:
    """The clients' (connect, read) timeouts in seconds."""
    return (
        option_float(ctx.options, "connect_timeout", DEFAULT_CONNECT_TIMEOUT),
        option_float(ctx.options, "read_timeout", DEFAULT_READ_TIMEOUT),
    )


def register(ctx: TestContext) -> Workload:
    """Linearizable read/write/cas registers; each worker's client talks to its own node."""
    serializable = option_bool(ctx.options, "serializable_reads", False)
    connect, read = _timeouts(ctx)
    # A workload gets a factory: clew calls it once per worker, then opens the client.
    return register_workload(
        ctx,
        client=lambda: EtcdClient(
            connect_timeout=connect, read_timeout=read, serializable_reads=serializable
        ),
    )


def single_register(ctx: TestContext) -> Workload:
    """One register (one key) shared by every worker for the whole run: the hardest
    linearizability check, since nothing can be split by key."""
    options = {**ctx.options, "threads_per_key": ctx.concurrency, "ops_per_key": 10**9}
    workload = register(dataclasses.replace(ctx, options=options))
    return dataclasses.replace(workload, name="single-register")


def set_(ctx: TestContext) -> Workload:
    """Unique adds, then a final read: is every acknowledged add still there?"""
    connect, read = _timeouts(ctx)
    return set_workload(
        ctx, client=lambda: EtcdSetClient(connect_timeout=connect, read_timeout=read)
    )


def set_full(ctx: TestContext) -> Workload:
    """Unique adds while other workers keep reading the whole set (Jepsen's set-full)."""
    connect, read = _timeouts(ctx)
    return set_full_workload(
        ctx, client=lambda: EtcdSetClient(connect_timeout=connect, read_timeout=read)
    )


def bank(ctx: TestContext) -> Workload:
    """Transfers between accounts (one multi-key txn each) and reads of every balance."""
    connect, read = _timeouts(ctx)
    shape = bank_shape(ctx.options)
    balances = initial_balances(shape.accounts, shape.total)
    return bank_workload(
        ctx,
        client=lambda: EtcdBankClient(
            balances=balances, connect_timeout=connect, read_timeout=read
        ),
        note=" (a txn comparing both keys' mod revisions)",
    )


def unique_ids(ctx: TestContext) -> Workload:
    """Ids from the revisions etcd gives to puts."""
    connect, read = _timeouts(ctx)
    return unique_ids_workload(
        ctx,
        client=lambda: EtcdUniqueIdsClient(connect_timeout=connect, read_timeout=read),
        source="etcd put revisions",
    )


def lock(ctx: TestContext) -> Workload:
    """Acquire/hold/release of one lock through etcd's lock API, each hold on a lease."""
    connect, read = _timeouts(ctx)
    ttl = option_int(ctx.options, "lease_ttl", DEFAULT_LEASE_TTL)
    keepalive = option_bool(ctx.options, "lease_keepalive", True)
    acquire = option_float(ctx.options, "acquire_timeout", DEFAULT_ACQUIRE_TIMEOUT)
    return lock_workload(
        ctx,
        client=lambda: EtcdLockClient(
            lease_ttl=ttl,
            keepalive=keepalive,
            acquire_timeout=acquire,
            connect_timeout=connect,
            read_timeout=read,
        ),
        note=f" (etcd lock API, lease TTL {ttl} s{', kept alive' if keepalive else ''})",
    )


#: What the options of the module docstring set (``-o NAME=VALUE``).
DB_OPTIONS = {
    "binary": f"path of the etcd binary on the nodes ({DEFAULT_BINARY})",
    "pre_vote": "etcd's --pre-vote (true)",
    "ready_timeout": f"seconds each member may take to start ({DEFAULT_READY_TIMEOUT:g})",
    "connect_timeout": f"client connect timeout, seconds ({DEFAULT_CONNECT_TIMEOUT:g})",
    "read_timeout": f"client read timeout, seconds ({DEFAULT_READ_TIMEOUT:g})",
}
_SERIALIZABLE = {
    "serializable_reads": "UNSAFE: reads from one member without a quorum (false)",
}
_LOCK = {
    "lease_ttl": f"the lock's lease, seconds ({DEFAULT_LEASE_TTL})",
    "lease_keepalive": "renew the lease while waiting and holding (true)",
    "acquire_timeout": f"seconds an acquire waits ({DEFAULT_ACQUIRE_TIMEOUT:g})",
}

SUITE = Suite(
    name="etcd",
    description="etcd 3.4+ through its v3 JSON gateway: registers, sets, bank, ids, locks",
    db=db,
    workloads={
        "register": register,
        "single-register": single_register,
        "set": set_,
        "set-full": set_full,
        "bank": bank,
        "unique-ids": unique_ids,
        "lock": lock,
    },
    default_workload="register",
    options={**DB_OPTIONS, **CHECK_OPTIONS},
    workload_options={
        "register": {**REGISTER_OPTIONS, **_SERIALIZABLE},
        "single-register": _SERIALIZABLE,
        "set-full": set_full_options.OPTIONS,
        "bank": bank_options.OPTIONS,
        "lock": {**lock_options.OPTIONS, **_LOCK},
    },
)
