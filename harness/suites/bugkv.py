"""The bugkv suite: a small Raft-style store with seeded bugs of known depth (docs/bugkv.md).

Run it with ``clew test bugkv`` (correct), or ``clew test bugkv -o bug=early-ack`` to switch
on one seeded bug. Options (``--option k=v`` or a spec's ``[options]``):

``bug``                 a seeded bug (see ``docs/bugkv.md``); default none
``reads``               ``lease`` (default) or ``log``
``heartbeat_ms``, ``election_ms``, ``election_step_ms``, ``jitter_ms``, ``lease_ms``,
``rpc_timeout_ms``, ``propose_timeout_ms``  the server's timescale (defaults 50, 400, 150,
                        50, 250, 100, 500)
``python``              the interpreter on the nodes (default ``python3``)
``faketime``            libfaketime's path, or true/false (default: on the local provider
                        when installed, so that ``--faults clock`` works)
``connect_timeout``, ``read_timeout``  the clients' timeouts, seconds (0.5, 1.5)
``ops_per_key``, ``threads_per_key``  shape of the register workload (1000, 3)
"""

from __future__ import annotations

import dataclasses
import os

from harness.api import Suite, TestContext, Workload
from harness.clients.bugkv import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    BugkvClient,
    BugkvSetClient,
)
from harness.dbs.bugkv import BugkvDB, Timescale
from harness.workloads import option_float
from harness.workloads.register import register_workload, set_workload

__all__ = ["DEFAULT_OPS_PER_KEY", "SUITE", "db"]

#: Ops per key before the register workload retires it: keys live long, so a node that
#: lost or resurrected writes is read while the key is still in use.
DEFAULT_OPS_PER_KEY = 1000


def _faketime(ctx: TestContext) -> str | None:
    value = ctx.options.get("faketime")
    if value is not None and str(value).lower() not in ("true", "1", "yes", "on"):
        return None if str(value).lower() in ("false", "0", "no", "off") else str(value)
    if value is None and ctx.cluster.provider != "local":
        return None
    from nemeses.clock import find_libfaketime

    path = find_libfaketime()
    return path if os.path.exists(path) else None


def db(ctx: TestContext) -> BugkvDB:
    """The database: one bugkv server per node."""
    o = ctx.options
    scale = Timescale(
        **{
            f.name: option_float(o, f.name, f.default)  # type: ignore[arg-type]
            for f in dataclasses.fields(Timescale)
        }
    )
    bug = o.get("bug")
    return BugkvDB(
        bug=str(bug) if bug else None,
        reads=str(o.get("reads", "lease")),
        timescale=scale,
        python=str(o.get("python", "python3")),
        faketime=_faketime(ctx),
    )


def _timeouts(ctx: TestContext) -> tuple[float, float]:
    return (
        option_float(ctx.options, "connect_timeout", DEFAULT_CONNECT_TIMEOUT),
        option_float(ctx.options, "read_timeout", DEFAULT_READ_TIMEOUT),
    )


def register(ctx: TestContext) -> Workload:
    """Linearizable read/write/cas registers (etcd model), checked key by key."""
    connect, read = _timeouts(ctx)
    options = {"ops_per_key": DEFAULT_OPS_PER_KEY, **ctx.options}
    return register_workload(
        dataclasses.replace(ctx, options=options),
        client=lambda: BugkvClient(connect_timeout=connect, read_timeout=read),
    )


def set_(ctx: TestContext) -> Workload:
    """Unique adds, then a final read by every worker: no acknowledged add lost."""
    connect, read = _timeouts(ctx)
    return set_workload(
        ctx, client=lambda: BugkvSetClient(connect_timeout=connect, read_timeout=read)
    )


SUITE = Suite(
    name="bugkv",
    description="bugkv, a Raft-style store with seeded bugs of known depth: registers and sets",
    db=db,
    workloads={"register": register, "set": set_},
    default_workload="register",
)
