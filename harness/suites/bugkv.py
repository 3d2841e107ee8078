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
``ops_per_key``, ``threads_per_key``, ``values``  shape of the register workload (1000,
                        3, 50: values 0-49, so that a stale read rarely looks current)
"""

from __future__ import annotations

import dataclasses
import os
import random
from typing import Any

from harness.api import Op, Suite, TestContext, Workload
from harness.clients.bugkv import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    BugkvClient,
    BugkvSetClient,
)
from harness.dbs.bugkv import BugkvDB, Timescale
from harness.workloads import CHECK_OPTIONS, option_float, option_int
from harness.workloads.register import (
    REGISTER_OPTIONS,
    RegisterGenerator,
    register_phases,
    register_workload,
    set_workload,
)

__all__ = ["DEFAULT_OPS_PER_KEY", "DEFAULT_VALUES", "SUITE", "WideRegisterGenerator", "db"]

#: Ops per key before the register workload retires it (failed ops not counted): keys
#: live long, so a node that lost or resurrected writes is read while the key is still in
#: use.
DEFAULT_OPS_PER_KEY = 1000
#: Register values are 0 .. DEFAULT_VALUES - 1.
DEFAULT_VALUES = 50


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


class WideRegisterGenerator(RegisterGenerator):
    """:class:`~harness.workloads.register.RegisterGenerator` drawing values from
    ``range(values)`` instead of 0-4: a stale read then rarely returns, by chance, the
    value the register holds now, so the checker sees it."""

    def __init__(self, rng: random.Random, *, keys_at_once: int, ops_per_key: int,
                 values: int) -> None:  # fmt: skip
        super().__init__(rng, keys_at_once=keys_at_once, ops_per_key=ops_per_key)
        self.values = values

    def __call__(self, *_args: Any) -> Op:
        """The next invocation."""
        op = super().__call__()
        if op["f"] == "write":
            op["value"] = self.rng.randrange(self.values)
        elif op["f"] == "cas":
            op["value"] = [self.rng.randrange(self.values), self.rng.randrange(self.values)]
        return op


def register(ctx: TestContext) -> Workload:
    """Linearizable read/write/cas registers (etcd model), checked key by key; values
    0 .. ``values`` - 1 (option, default :data:`DEFAULT_VALUES`)."""
    connect, read = _timeouts(ctx)
    options = {"ops_per_key": DEFAULT_OPS_PER_KEY, **ctx.options}
    values = option_int(options, "values", DEFAULT_VALUES)
    ops_per_key = option_int(options, "ops_per_key", DEFAULT_OPS_PER_KEY)
    keys = max(1, ctx.concurrency // option_int(options, "threads_per_key", 3))
    workload = register_workload(
        dataclasses.replace(ctx, options=options),
        client=lambda: BugkvClient(connect_timeout=connect, read_timeout=read),
    )
    generator, final = register_phases(
        lambda c: WideRegisterGenerator(
            c.rng, keys_at_once=keys, ops_per_key=ops_per_key, values=values
        )
    )
    return dataclasses.replace(
        workload,
        generator=generator,
        final_generator=final,
        description=(
            f"read/write/cas of values 0-{values - 1} on {keys} key(s) at a time, "
            f"{ops_per_key} ops per key, then a final read of each key in use; "
            "linearizability per key (etcd model)"
        ),
    )


def set_(ctx: TestContext) -> Workload:
    """Unique adds, then a final read by every worker: no acknowledged add lost."""
    connect, read = _timeouts(ctx)
    return set_workload(
        ctx, client=lambda: BugkvSetClient(connect_timeout=connect, read_timeout=read)
    )


#: What the options of the module docstring set (``-o NAME=VALUE``).
DB_OPTIONS = {
    "bug": "a seeded bug (docs/bugkv.md; none)",
    "reads": "lease or log (lease)",
    **{
        f.name: f"the server's {f.name.removesuffix('_ms').replace('_', ' ')}, ms ({f.default:g})"
        for f in dataclasses.fields(Timescale)
    },
    "python": "the interpreter on the nodes (python3)",
    "faketime": "libfaketime's path, or true/false (on for local clusters that have it)",
    "connect_timeout": f"client connect timeout, seconds ({DEFAULT_CONNECT_TIMEOUT:g})",
    "read_timeout": f"client read timeout, seconds ({DEFAULT_READ_TIMEOUT:g})",
}

SUITE = Suite(
    name="bugkv",
    description="bugkv, a Raft-style store with seeded bugs of known depth: registers and sets",
    db=db,
    workloads={"register": register, "set": set_},
    default_workload="register",
    options={**DB_OPTIONS, **CHECK_OPTIONS},
    workload_options={
        "register": {
            **REGISTER_OPTIONS,
            "ops_per_key": f"ops on a key before it is retired ({DEFAULT_OPS_PER_KEY})",
            "values": f"register values are 0 .. values - 1 ({DEFAULT_VALUES})",
        },
    },
)
