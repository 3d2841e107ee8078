"""The Redis suite: Redis 7 with Sentinel, clients following failover (``clew test redis``).

One primary (the first node), replicas, a Sentinel on every node (``harness/dbs/redis.py``);
clients find the primary through Sentinel, their own node's first
(``harness/clients/redis.py``). Replication is asynchronous, so a failover can lose
acknowledged writes (Jepsen's Redis analysis, 2013): see ``docs/redis.md``.

Options (``--option k=v``):

``down_after_ms``       Sentinel's down-after-milliseconds (default 2000)
``failover_timeout_ms`` Sentinel's failover-timeout (default 6000)
``connect_timeout``     client connect timeout, seconds (default 0.5)
``read_timeout``        client read timeout, seconds (default 1.0)
``read_fraction``       set-full: the share of reads (0.3)
``ops_per_key``, ``threads_per_key``  shape of the register workload

Workloads: ``set-full`` (default: lost acknowledged adds are what a failover shows) and
``register`` (read/write/cas, linearizability per key).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from checkers.result import Result
from harness.api import Suite, TestContext, Workload
from harness.clients.redis import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    RedisRegisterClient,
    RedisSetClient,
)
from harness.dbs.redis import DEFAULT_DOWN_AFTER_MS, DEFAULT_FAILOVER_TIMEOUT_MS, RedisDB
from harness.history import History
from harness.workloads import CHECK_OPTIONS, option_float, option_int
from harness.workloads import set_full as set_full_options
from harness.workloads.register import REGISTER_OPTIONS, register_workload
from harness.workloads.set_full import set_full_workload

#: Nodes the recorded schedule is written for (the first is the primary at the start).
NODES = ("n1", "n2", "n3")
#: A recorded schedule that loses acknowledged writes (clew's own ``schedule.json`` of a
#: set-full run on 3 local nodes): at 2 s the primary ``n1`` is cut off from the others
#: while its clients keep writing to it; the Sentinels of ``n2`` and ``n3`` (a quorum) fail
#: over within about 3 s; at 10 s the partition heals and Sentinel makes ``n1`` a replica
#: of the new primary, discarding what it acknowledged meanwhile. Run it with
#: ``recovery_time`` >= 8 s so that the final reads come after ``n1`` rejoined.
LOST_WRITES_SCHEDULE: tuple[dict[str, Any], ...] = (
    {"at": 2.0, "f": "start-partition", "value": {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}},
    {"at": 10.0, "f": "stop-partition", "value": None},
)
#: The run length and recovery time the schedule is written for (seconds).
LOST_WRITES_TIME_LIMIT = 14.0
LOST_WRITES_RECOVERY_TIME = 10.0


def db(ctx: TestContext) -> RedisDB:
    """The database: redis-server and redis-sentinel on every node, started over SSH."""
    return RedisDB(
        down_after_ms=option_int(ctx.options, "down_after_ms", DEFAULT_DOWN_AFTER_MS),
        failover_timeout_ms=option_int(
            ctx.options, "failover_timeout_ms", DEFAULT_FAILOVER_TIMEOUT_MS
        ),
    )


def _timeouts(ctx: TestContext) -> tuple[float, float]:
    """The clients' (connect, read) timeouts in seconds."""
    return (
        option_float(ctx.options, "connect_timeout", DEFAULT_CONNECT_TIMEOUT),
        option_float(ctx.options, "read_timeout", DEFAULT_READ_TIMEOUT),
    )


def lost_by_node(history: History, result: Result) -> dict[str, dict[str, Any]]:
    """Who acknowledged the adds ``result`` (a set-full result) calls lost, and when: per
    node that served them, how many and the first and last acknowledgement (seconds from
    the history's start). A pure function of the history and the checker's rows."""
    lost = {r["element"] for r in result.details.get("elements", []) if r["outcome"] == "lost"}
    start = int(history.time[0]) if len(history) else 0
    by_node: dict[str, dict[str, Any]] = {}
    for op in history:
        if op.type != "ok" or op.f != "add" or op.value not in lost:
            continue
        at = round((op.time - start) / 1e9, 3)
        entry = by_node.setdefault(str(op.node), {"count": 0, "first_ack_s": at, "last_ack_s": at})
        entry["count"] += 1
        entry["first_ack_s"] = min(entry["first_ack_s"], at)
        entry["last_ack_s"] = max(entry["last_ack_s"], at)
    return by_node


def set_full(ctx: TestContext) -> Workload:
    """Unique SADDs on the primary while other workers read the whole set (SMEMBERS);
    the set-full checker, plus which node acknowledged the lost adds and when."""
    connect, read = _timeouts(ctx)
    workload = set_full_workload(
        ctx, client=lambda: RedisSetClient(connect_timeout=connect, read_timeout=read)
    )
    base = workload.check

    def check(history: History, c: TestContext) -> Result:
        result = base(history, c)
        if not result.details.get("lost_count"):
            return result
        by_node = lost_by_node(history, result)
        where = "; ".join(
            f"{v['count']} acknowledged by {n} between {v['first_ack_s']:g} s and "
            f"{v['last_ack_s']:g} s"
            for n, v in sorted(by_node.items())
        )
        return dataclasses.replace(
            result,
            cause=f"{result.cause} ({where})",
            details={**result.details, "lost_by_node": by_node},
        )

    return dataclasses.replace(workload, check=check)


def register(ctx: TestContext) -> Workload:
    """GET/SET and a Lua compare-and-set on the primary; linearizability per key."""
    connect, read = _timeouts(ctx)
    return register_workload(
        ctx, client=lambda: RedisRegisterClient(connect_timeout=connect, read_timeout=read)
    )


#: What the options of the module docstring set (``-o NAME=VALUE``).
DB_OPTIONS = {
    "down_after_ms": f"Sentinel's down-after-milliseconds ({DEFAULT_DOWN_AFTER_MS})",
    "failover_timeout_ms": f"Sentinel's failover-timeout ({DEFAULT_FAILOVER_TIMEOUT_MS})",
    "connect_timeout": f"client connect timeout, seconds ({DEFAULT_CONNECT_TIMEOUT:g})",
    "read_timeout": f"client read timeout, seconds ({DEFAULT_READ_TIMEOUT:g})",
}

SUITE = Suite(
    name="redis",
    description="Redis 7 with Sentinel (asynchronous replication, failover): set-full, register",
    db=db,
    workloads={"set-full": set_full, "register": register},
    default_workload="set-full",
    options={**DB_OPTIONS, **CHECK_OPTIONS},
    workload_options={"set-full": set_full_options.OPTIONS, "register": REGISTER_OPTIONS},
)
