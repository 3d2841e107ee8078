"""The etcd suite — clew's built-in suite, written exactly as your own suite file would be.

Run it with ``clew test etcd`` (or ``clew test --suite ./mysuite.py`` for a copy of this
file). A suite is one object, ``SUITE``: how to run the database on a node (the DB), and
the workloads that can be run against it. Options come from ``--option k=v`` or the
``[options]`` table of a TOML spec:

``pre_vote``            etcd's ``--pre-vote`` (default true)
``binary``              path of the etcd binary on the nodes (default ``/usr/bin/etcd``)
``connect_timeout``     client connect timeout, seconds (default 0.5)
``read_timeout``        client read timeout, seconds (default 1.0)
``serializable_reads``  UNSAFE: serve reads from one member without a quorum (default
                        false); stale reads that the checker should catch
``ops_per_key``, ``threads_per_key``  shape of the register workload
"""

from __future__ import annotations

import dataclasses

from harness.api import Suite, TestContext, Workload
from harness.clients.etcd import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    EtcdClient,
    EtcdSetClient,
)
from harness.dbs.etcd import DEFAULT_BINARY, EtcdDB
from harness.workloads import option_bool, option_float
from harness.workloads.register import register_workload, set_workload


def db(ctx: TestContext) -> EtcdDB:
    """The database: one etcd member per node, started over SSH."""
    return EtcdDB(
        binary=str(ctx.options.get("binary", DEFAULT_BINARY)),
        pre_vote=option_bool(ctx.options, "pre_vote", True),
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


SUITE = Suite(
    name="etcd",
    description="etcd 3.4+ through its v3 JSON gateway: registers and sets",
    db=db,
    workloads={"register": register, "single-register": single_register, "set": set_},
    default_workload="register",
)
