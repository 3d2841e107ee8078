"""Redis with Sentinel on nodes: one primary, replicas, and a Sentinel on every node.

Each node runs its own ``redis-server`` and ``redis-sentinel`` (Debian's packages; on the
local provider the host's binaries), started detached over SSH as the etcd adapter starts
etcd (``setsid nohup ... & echo $! >pidfile``), so signals reach exactly those processes.

Layout on a node (``directory``, ``/opt/redis`` by default; ``/opt`` is per node on the
local provider): ``redis.conf`` and ``sentinel.conf`` (both rewritten by Sentinel when it
reconfigures), ``data/`` (the append-only file), ``redis.log``, ``sentinel.log`` and the two
pidfiles. The cluster's first node starts as the primary; every other node starts as its
replica (``replicaof``). Every Sentinel monitors the primary under the name ``clew`` with
a quorum of a majority of the nodes, ``down-after-milliseconds`` and ``failover-timeout``
from the suite's options (short, so a test sees a failover within seconds).

Faults act on the database, ``redis-server``: ``kill`` SIGKILLs it and ``start`` starts it
again from its (possibly Sentinel-rewritten) config and its append-only file; ``pause`` and
``resume`` stop and continue it. The Sentinels keep running (they are the cluster's
failure detector, as on real deployments where they run beside the servers); partitions
cut Sentinels off with their nodes. :meth:`RedisDB.primaries` reads Sentinel's view.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clusters.base import Node
from harness.clients.redis import (
    MASTER_NAME,
    REDIS_PORT,
    SENTINEL_PORT,
    RespConnection,
    RespError,
    Unanswered,
    Unsent,
    parse_info,
)
from harness.dbs.pidfile import ALIVE, running_pid, signal_script, stop_script
from harness.errors import ClusterError

if TYPE_CHECKING:
    from harness.api import TestContext
    from harness.control import Remote

__all__ = [
    "DEFAULT_DIRECTORY",
    "DEFAULT_DOWN_AFTER_MS",
    "DEFAULT_FAILOVER_TIMEOUT_MS",
    "DEFAULT_READY_TIMEOUT",
    "REDIS_BINARY",
    "SENTINEL_BINARY",
    "Failover",
    "RedisDB",
    "read_failovers",
]

REDIS_BINARY = "/usr/bin/redis-server"
SENTINEL_BINARY = "/usr/bin/redis-sentinel"
DEFAULT_DIRECTORY = "/opt/redis"
#: Milliseconds without an answer before a Sentinel thinks the primary is down.
DEFAULT_DOWN_AFTER_MS = 2000
#: Sentinel's failover timeout (also the pause before the same primary is failed over again).
DEFAULT_FAILOVER_TIMEOUT_MS = 6000
#: Seconds setup (and wait_healthy) waits for a node to serve and its Sentinel to see all.
DEFAULT_READY_TIMEOUT = 60.0
#: Seconds each control command may take on the node.
COMMAND_TIMEOUT = 30.0
#: Seconds one probe (connect or reply) may take.
PROBE_TIMEOUT = 2.0
#: Seconds a killed process may take to be gone.
STOP_TIMEOUT = 10.0
#: Lines of a log quoted when a node does not come up.
LOG_TAIL_LINES = 20


@dataclass(frozen=True, slots=True)
class Failover:
    """One ``+switch-master`` a Sentinel logged: when (the node's local time, as logged,
    without a zone), from which node to which, and which node's Sentinel logged it."""

    time: datetime
    old: str
    new: str
    logged_by: str


@dataclass(slots=True, kw_only=True)
class RedisDB:
    """Redis + Sentinel as a :class:`harness.api.DB` (see the module docstring)."""

    clock_reads = "unknown"  # not started under libfaketime: clock faults are refused
    name: str = "redis"
    redis_binary: str = REDIS_BINARY
    sentinel_binary: str = SENTINEL_BINARY
    directory: str = DEFAULT_DIRECTORY
    down_after_ms: int = DEFAULT_DOWN_AFTER_MS
    failover_timeout_ms: int = DEFAULT_FAILOVER_TIMEOUT_MS
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    port: int = REDIS_PORT
    sentinel_port: int = SENTINEL_PORT

    # ---- paths -----------------------------------------------------------------------------

    @property
    def data_dir(self) -> str:
        """The directory holding the server's append-only file."""
        return f"{self.directory}/data"

    def _path(self, name: str) -> str:
        return f"{self.directory}/{name}"

    # ---- configuration ---------------------------------------------------------------------

    def redis_conf(self, ctx: TestContext, node: Node) -> str:
        """``redis.conf`` for ``node``: a replica of the first node unless it is it."""
        primary = ctx.nodes[0]
        lines = [
            f"bind {node.peer_address} 127.0.0.1",
            f"port {self.port}",
            "protected-mode no",
            f"dir {self.data_dir}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            f"replica-announce-ip {node.peer_address}",
        ]
        if node.name != primary.name:
            lines.append(f"replicaof {primary.peer_address} {self.port}")
        return "\n".join(lines) + "\n"

    def sentinel_conf(self, ctx: TestContext, node: Node) -> str:
        """``sentinel.conf`` for ``node``: monitor the first node with a majority quorum."""
        quorum = len(ctx.nodes) // 2 + 1
        primary = ctx.nodes[0].peer_address
        return (
            f"port {self.sentinel_port}\n"
            f"bind {node.peer_address} 127.0.0.1\n"
            "protected-mode no\n"
            f"dir {self.directory}\n"
            f"sentinel announce-ip {node.peer_address}\n"
            f"sentinel monitor {MASTER_NAME} {primary} {self.port} {quorum}\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )

    # ---- scripts ---------------------------------------------------------------------------

    def _launch_script(self, which: str) -> str:
        binary = self.redis_binary if which == "redis" else self.sentinel_binary
        conf, log, pid = (self._path(f"{which}.{x}") for x in ("conf", "log", "pid"))
        d, conf, log, pid = (shlex.quote(p) for p in (self.directory, conf, log, pid))
        return (
            f"{ALIVE}"
            f"mkdir -p {shlex.quote(self.data_dir)} || exit 1\n"
            f'if [ -s {pid} ] && alive "$(cat {pid})"; then echo already-running; exit 0; fi\n'
            f"cd {d} && {{ setsid nohup {shlex.quote(binary)} {conf} >>{log} 2>&1 </dev/null & "
            f"echo $! >{pid}; }}\n"
        )

    def _signal_script(self, signal: str) -> str:
        return signal_script(self._path("redis.pid"), signal, "redis-server")

    def _stop_script(self, which: str) -> str:
        return stop_script(self._path(f"{which}.pid"), STOP_TIMEOUT, which)

    # ---- DB protocol -----------------------------------------------------------------------

    async def setup(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Start a fresh server and Sentinel (old data, configs and logs removed) and wait
        until the server serves (a replica: in sync with the primary) and the Sentinel
        sees the primary, every replica and every other Sentinel."""
        for which in ("sentinel", "redis"):
            await remote.run(self._stop_script(which), timeout=COMMAND_TIMEOUT)
        d = shlex.quote(self.directory)
        await remote.run(
            f"mkdir -p {d} && rm -rf {shlex.quote(self.data_dir)} {d}/*.conf && "
            f": >{d}/redis.log && : >{d}/sentinel.log",
            timeout=COMMAND_TIMEOUT,
        )
        await remote.run(f"cat >{d}/redis.conf", stdin=self.redis_conf(ctx, node),
                         timeout=COMMAND_TIMEOUT)  # fmt: skip
        await remote.run(f"cat >{d}/sentinel.conf", stdin=self.sentinel_conf(ctx, node),
                         timeout=COMMAND_TIMEOUT)  # fmt: skip
        await remote.run(self._launch_script("redis"), timeout=COMMAND_TIMEOUT)
        await remote.run(self._launch_script("sentinel"), timeout=COMMAND_TIMEOUT)
        await self.wait_healthy(ctx, node, remote, within=self.ready_timeout, full_view=True)

    async def teardown(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Kill the Sentinel and the server and remove data, configs and pidfiles (logs are
        kept, to be downloaded). Safe after a failed setup."""
        for which in ("sentinel", "redis"):
            await remote.run(self._stop_script(which), timeout=COMMAND_TIMEOUT)
        d = self.directory
        await remote.run(
            ["rm", "-rf", "--", self.data_dir, f"{d}/redis.conf", f"{d}/sentinel.conf",
             f"{d}/redis.pid", f"{d}/sentinel.pid"],
            timeout=COMMAND_TIMEOUT,
        )  # fmt: skip

    def log_files(self, ctx: TestContext, node: Node) -> list[str]:
        """The server's and the Sentinel's logs, and the configs as Sentinel left them."""
        return [self._path(x) for x in ("redis.log", "sentinel.log", "redis.conf",
                                        "sentinel.conf")]  # fmt: skip

    # ---- abilities -------------------------------------------------------------------------

    async def kill(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGKILL ``redis-server`` (also when paused) and wait until it is gone."""
        await remote.run(self._stop_script("redis"), timeout=COMMAND_TIMEOUT)

    async def start(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Start ``redis-server`` again from its config and append-only file; nothing if
        it runs. Does not wait (see :meth:`wait_healthy`)."""
        await remote.run(self._launch_script("redis"), timeout=COMMAND_TIMEOUT)

    async def pause(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGSTOP ``redis-server``."""
        await remote.run(self._signal_script("STOP"), timeout=COMMAND_TIMEOUT)

    async def resume(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGCONT ``redis-server``."""
        await remote.run(self._signal_script("CONT"), timeout=COMMAND_TIMEOUT)

    def start_script(self, ctx: TestContext, node: Node) -> str:
        """A shell script starting ``redis-server`` again as :meth:`start` does."""
        return self._launch_script("redis")

    async def running(self, ctx: TestContext, node: Node, remote: Remote) -> bool:
        """Whether ``redis-server`` is alive on ``node``."""
        return await running_pid(remote, self._path("redis.pid"), COMMAND_TIMEOUT) is not None

    async def primaries(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> list[str]:
        """The node Sentinel names as primary now: of the Sentinels that answer, the view
        with the highest config epoch (empty when none answers)."""
        by_ip = {n.peer_address: n.name for n in ctx.nodes}
        views = await asyncio.gather(
            *(self._sentinel_view(n.peer_address) for n in ctx.nodes if n.name in remotes)
        )
        best = max((v for v in views if v is not None), default=None,
                   key=lambda v: int(v.get("config-epoch", "0")))  # fmt: skip
        if best is None:
            return []
        name = by_ip.get(best.get("ip", ""))
        return [name] if name else []

    async def wait_healthy(
        self,
        ctx: TestContext,
        node: Node,
        remote: Remote,
        *,
        within: float = DEFAULT_READY_TIMEOUT,
        full_view: bool = False,
    ) -> None:
        """Return once ``redis-server`` on ``node`` answers ``PING`` and, as a replica, is
        linked to its primary; with ``full_view`` also once its Sentinel sees a primary,
        every other node's server and every other Sentinel. :class:`ClusterError` naming
        the node and quoting its logs otherwise."""
        deadline = time.monotonic() + within
        others = len(ctx.nodes) - 1
        last = "no answer yet"
        while True:
            try:
                info = parse_info(await self._query(node.peer_address, self.port,
                                                    "INFO", "replication"))  # fmt: skip
                if info.get("role") == "slave" and info.get("master_link_status") != "up":
                    last = f"replica not linked to {info.get('master_host')}"
                elif not full_view:
                    return
                else:
                    view = await self._sentinel_view(node.peer_address)
                    if view is None:
                        last = "sentinel does not answer"
                    elif int(view.get("num-other-sentinels", "0")) < others:
                        last = f"sentinel sees {view.get('num-other-sentinels')} other sentinels"
                    elif int(view.get("num-slaves", "0")) < others:
                        last = f"sentinel sees {view.get('num-slaves')} replicas"
                    else:
                        return
            except (Unsent, Unanswered, RespError, ValueError) as e:
                last = str(e)
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"redis on {node.name} ({node.peer_address}) not ready within {within:g} s "
                    f"({last}). Last lines of {self._path('redis.log')}:\n"
                    f"{await self._tail(remote, 'redis.log')}\nof sentinel.log:\n"
                    f"{await self._tail(remote, 'sentinel.log')}"
                )
            await asyncio.sleep(0.25)

    # ---- helpers ---------------------------------------------------------------------------

    async def _query(self, host: str, port: int, *args: Any) -> Any:
        conn = RespConnection(host, port, read_timeout=PROBE_TIMEOUT)
        try:
            await conn.connect(PROBE_TIMEOUT)
            return await conn.call(*args)
        finally:
            await conn.close()

    async def _sentinel_view(self, host: str) -> dict[str, str] | None:
        """``SENTINEL MASTER clew`` on the Sentinel at ``host`` as a dict, or ``None``."""
        try:
            reply = await self._query(host, self.sentinel_port, "SENTINEL", "MASTER", MASTER_NAME)
        except (Unsent, Unanswered, RespError, ValueError):
            return None
        if not isinstance(reply, list):
            return None
        return {str(k): str(v) for k, v in zip(reply[::2], reply[1::2], strict=False)}

    async def _tail(self, remote: Remote, name: str) -> str:
        try:
            r = await remote.run(["tail", "-n", str(LOG_TAIL_LINES), self._path(name)],
                                 check=False, timeout=COMMAND_TIMEOUT)  # fmt: skip
        except Exception as e:  # diagnostics only: never hide the real error
            return f"(cannot read: {e})"
        return r.stdout


_SWITCH = re.compile(
    r"(\d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3}) # \+switch-master \S+ (\S+) \d+ (\S+) \d+"
)


def read_failovers(run_dir: Path, nodes: Mapping[str, str]) -> list[Failover]:
    """Every failover the Sentinels logged in a run (the downloaded
    ``nodes/<n>/sentinel.log``), one per (time, old, new) even when several Sentinels log
    it, in time order. ``nodes`` maps an address to its node's name. Sentinel logs the
    host's local time; on the local provider that is the controller's clock."""
    seen: dict[tuple[str, str], Failover] = {}
    for log in sorted(run_dir.glob("nodes/*/sentinel.log")):
        for m in _SWITCH.finditer(log.read_text(errors="replace")):
            when = datetime.strptime(m.group(1), "%d %b %Y %H:%M:%S.%f")
            old, new = nodes.get(m.group(2), m.group(2)), nodes.get(m.group(3), m.group(3))
            first = seen.get((old, new))
            if first is None or when < first.time:
                seen[(old, new)] = Failover(when, old, new, log.parent.name)
    return sorted(seen.values(), key=lambda f: f.time)
