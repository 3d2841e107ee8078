"""bugkv on nodes: upload the one-file server, start, kill, pause and restart it by pidfile.

The server (:mod:`harness.dbs.bugkv_server`, standard-library Python) is written to
``<directory>/bugkv_server.py`` on every node at setup and started detached, like etcd::

    setsid nohup [env LD_PRELOAD=libfaketime ...] python3 /opt/bugkv/bugkv_server.py \\
        --id n1 --peers n1=10.0.0.2,n2=... --data-dir /opt/bugkv/data ... \\
        >>/opt/bugkv/bugkv.log 2>&1 </dev/null &
    echo $! >/opt/bugkv/bugkv.pid

so :meth:`BugkvDB.kill`, :meth:`~BugkvDB.pause` and :meth:`~BugkvDB.resume` signal exactly
that process. On the local provider the server runs under libfaketime (when this machine
has it), so clock faults shift its wall clock (it reads the time through libc);
``clock_reads`` says so. Its monotonic clock, which elections and correct leases use, is
never shifted.

Layout on a node (``directory``, ``/opt/bugkv`` by default; ``/opt`` is per node on the
local provider): ``bugkv_server.py``, ``data/`` (term, vote and log), ``bugkv.log`` (the
server's own log of elections, terms, replication and commits) and ``bugkv.pid``.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

import httpx

from clusters.base import Node
from harness.dbs.pidfile import (
    launch_script,
    log_tail,
    running_pid,
    signal_script,
    stop_script,
)
from harness.errors import ClusterError, ConfigError

if TYPE_CHECKING:
    from harness.api import TestContext
    from harness.control import Remote

__all__ = [
    "CLIENT_PORT",
    "DEFAULT_DIRECTORY",
    "DEFAULT_READY_TIMEOUT",
    "LOG_PATTERNS",
    "PEER_PORT",
    "BugkvDB",
    "Timescale",
]

DEFAULT_DIRECTORY = "/opt/bugkv"
PEER_PORT = 7070
CLIENT_PORT = 7071
#: Seconds setup waits for every node to know a leader, and a restart for the server to answer
#: (at a load average of 40 on two cores, 20 s was not always enough).
DEFAULT_READY_TIMEOUT = 45.0
#: Seconds one ``GET /status`` may take (generous: a loaded machine answers slowly, and
#: a leader that does not answer in time is not named by :meth:`BugkvDB.primaries`).
STATUS_TIMEOUT = 2.0
#: Seconds to wait for a killed process to be gone.
DEFAULT_STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.05
DEFAULT_LOG_TAIL_LINES = 30
COMMAND_TIMEOUT = 30.0

#: Lines of the server's own log (``bugkv_server.log``: ``<wall> term <n>: ...``) that node
#: agents watch for (see :attr:`BugkvDB.log_patterns`).
LOG_PATTERNS = {
    # This server won an election: it leads from now on.
    "became-leader": r"term \d+: elected leader with log \d+",
    # This server learned of a new leader (the first, or a change).
    "leader-changed": r"term \d+: following \S+",
    # This server led and stepped down (it saw a higher term).
    "stepped-down": r"term \d+: step down \(was leader\)",
    # This server started an election (a candidate, in a new term).
    "campaign": r"term \d+: campaign \(",
    # This server's term rose (by its own campaign or a peer's higher term).
    "term-changed": r"term \d+: term changed from \d+",
    # This server dropped entries of its log that the leader's log contradicts.
    "log-truncated": r"term \d+: truncated log to \d+ \(conflict\)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Timescale:
    """The server's timing flags, milliseconds (see ``bugkv_server.py --help``)."""

    heartbeat_ms: float = 50
    election_ms: float = 400
    election_step_ms: float = 150
    jitter_ms: float = 50
    lease_ms: float = 250
    rpc_timeout_ms: float = 100
    propose_timeout_ms: float = 500

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if not getattr(self, name) > 0:
                raise ConfigError(f"bugkv {name} must be positive, got {getattr(self, name)!r}")
        if self.lease_ms >= self.election_ms:
            raise ConfigError(
                f"bugkv lease_ms ({self.lease_ms:g}) must be below election_ms "
                f"({self.election_ms:g}): leases rely on followers ignoring votes that long"
            )

    def flags(self) -> list[str]:
        """The server's command-line flags for this timescale."""
        return [f"--{k.replace('_', '-')}={getattr(self, k):g}" for k in self.__dataclass_fields__]


def server_source() -> str:
    """The server's source text, as uploaded to the nodes."""
    return resources.files("harness.dbs").joinpath("bugkv_server.py").read_text()


@dataclass(slots=True, kw_only=True)
class BugkvDB:
    """bugkv as a :class:`harness.api.DB`: one server per node, all started at setup.

    ``bug`` is a seeded bug's name (``None``: the correct server); ``reads`` is ``lease``
    or ``log``; ``timescale`` the timing flags; ``python`` the interpreter on the nodes;
    ``faketime`` the path of ``libfaketime.so.1`` on the nodes to start the server under
    (``None``: without; then clock faults are refused on the local provider).
    """

    name: str = "bugkv"
    bug: str | None = None
    reads: str = "lease"
    timescale: Timescale = field(default_factory=Timescale)
    python: str = "python3"
    directory: str = DEFAULT_DIRECTORY
    faketime: str | None = None
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    peer_port: int = PEER_PORT
    client_port: int = CLIENT_PORT

    def __post_init__(self) -> None:
        from harness.dbs.bugkv_server import BUGS

        if self.bug is not None and self.bug not in BUGS:
            raise ConfigError(f"unknown bugkv bug {self.bug!r}; known: {', '.join(BUGS)}")
        if self.reads not in ("lease", "log"):
            raise ConfigError(f"bugkv reads must be lease or log, got {self.reads!r}")

    @property
    def clock_reads(self) -> str:
        """Python reads the wall clock through libc: libfaketime shifts it when used."""
        return "libc" if self.faketime else "unknown"

    # ---- paths -----------------------------------------------------------------------------

    @property
    def server_path(self) -> str:
        return f"{self.directory}/bugkv_server.py"

    @property
    def data_dir(self) -> str:
        return f"{self.directory}/data"

    @property
    def log_file(self) -> str:
        return f"{self.directory}/bugkv.log"

    @property
    def pid_file(self) -> str:
        return f"{self.directory}/bugkv.pid"

    # ---- scripts ---------------------------------------------------------------------------

    def command_line(self, ctx: TestContext, node: Node) -> list[str]:
        """The server's argv on ``node`` (nodes in the cluster's order are its election
        priority: the first node tends to lead)."""
        peers = ",".join(f"{n.name}={n.peer_address}" for n in ctx.nodes)
        argv = [
            self.python, self.server_path, "--id", node.name, "--peers", peers,
            "--listen", node.peer_address, "--peer-port", str(self.peer_port),
            "--client-port", str(self.client_port), "--data-dir", self.data_dir,
            "--reads", self.reads, *self.timescale.flags(),
        ]  # fmt: skip
        if self.bug:
            argv += ["--bug", self.bug]
        if self.faketime:
            from nemeses.clock import faketime_argv

            argv = faketime_argv(argv, library=self.faketime)
        return argv

    def start_script(self, ctx: TestContext, node: Node) -> str:
        """A shell script that starts the server (keeping its data) unless it runs; for
        :meth:`start` and the node-side fault guard."""
        return launch_script(
            self.directory, self.log_file, self.pid_file, self.command_line(ctx, node)
        )

    def _signal_script(self, signal: str) -> str:
        return signal_script(self.pid_file, signal, "bugkv")

    def _stop_script(self) -> str:
        return stop_script(self.pid_file, self.stop_timeout, "bugkv")

    # ---- DB protocol -----------------------------------------------------------------------

    async def setup(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Upload the server, start it with an empty data directory and wait until this
        node knows a leader."""
        await remote.run(self._stop_script(), timeout=COMMAND_TIMEOUT)
        d, data, log = (shlex.quote(p) for p in (self.directory, self.data_dir, self.log_file))
        await remote.run(
            f"mkdir -p {d} && rm -rf {data} && : >{log} && cat >{shlex.quote(self.server_path)}",
            stdin=server_source(),
            timeout=COMMAND_TIMEOUT,
        )
        await self.start(ctx, node, remote)
        await self._wait(ctx, node, remote, within=self.ready_timeout, leader=True)

    async def teardown(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Kill the server and remove its data and pidfile (the log is kept)."""
        await remote.run(self._stop_script(), timeout=COMMAND_TIMEOUT)
        await remote.run(["rm", "-rf", "--", self.data_dir, self.pid_file], timeout=COMMAND_TIMEOUT)

    async def start(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Start the server on its existing data (nothing if it runs); does not wait."""
        await remote.run(self.start_script(ctx, node), timeout=COMMAND_TIMEOUT)

    async def kill(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGKILL the server (also when paused) and wait until it is gone."""
        await remote.run(self.kill_script(ctx, node), timeout=COMMAND_TIMEOUT)

    async def pause(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGSTOP the server."""
        await remote.run(self.pause_script(ctx, node), timeout=COMMAND_TIMEOUT)

    async def resume(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGCONT the server."""
        await remote.run(self.resume_script(ctx, node), timeout=COMMAND_TIMEOUT)

    def kill_script(self, ctx: TestContext, node: Node) -> str:
        """The shell script :meth:`kill` runs on the node (a node agent runs it too)."""
        return self._stop_script()

    def pause_script(self, ctx: TestContext, node: Node) -> str:
        """The shell script :meth:`pause` runs on the node (a node agent runs it too)."""
        return self._signal_script("STOP")

    def resume_script(self, ctx: TestContext, node: Node) -> str:
        """The shell script :meth:`resume` runs on the node (a node agent runs it too)."""
        return self._signal_script("CONT")

    def log_files(self, ctx: TestContext, node: Node) -> list[str]:
        """The server's own log."""
        return [self.log_file]

    @property
    def log_patterns(self) -> dict[str, str]:
        """Lines of the server's own log that node agents watch for (name -> regex):
        ``became-leader``, ``leader-changed``, ``stepped-down``, ``campaign``,
        ``term-changed``, ``log-truncated``."""
        return dict(LOG_PATTERNS)

    async def running(self, ctx: TestContext, node: Node, remote: Remote) -> bool:
        """Whether the server process is alive on ``node``."""
        return await self.pid(remote) is not None

    async def primaries(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> list[str]:
        """The nodes that say they lead in the highest term any node reports as led (a
        leader cut off in an older term is not a primary); empty if none answers."""
        by_name = {n.name: n for n in ctx.nodes}
        names = [n for n in remotes if n in by_name]
        async with httpx.AsyncClient(timeout=STATUS_TIMEOUT, trust_env=False) as http:
            answers = await asyncio.gather(*(self.status(http, by_name[n]) for n in names))
        leaders = [(s["term"], n) for n, s in zip(names, answers, strict=True)
                   if s is not None and s.get("role") == "leader"]  # fmt: skip
        if not leaders:
            return []
        top = max(t for t, _ in leaders)
        return sorted(n for t, n in leaders if t == top)

    async def wait_healthy(
        self, ctx: TestContext, node: Node, remote: Remote, *, within: float = DEFAULT_READY_TIMEOUT
    ) -> None:
        """Wait until the server answers ``GET /status`` (a restarted node cut off by a
        partition cannot know a leader, so that is not asked)."""
        await self._wait(ctx, node, remote, within=within, leader=False)

    # ---- helpers ---------------------------------------------------------------------------

    async def status(self, http: httpx.AsyncClient, node: Node) -> dict[str, Any] | None:
        """The node's ``/status`` answer, or None."""
        try:
            resp = await http.get(f"http://{node.peer_address}:{self.client_port}/status")
            data = resp.json()
        except (httpx.HTTPError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    async def pid(self, remote: Remote) -> int | None:
        """The PID of the running server on the node, or None."""
        return await running_pid(remote, self.pid_file, COMMAND_TIMEOUT)

    async def log_tail(self, remote: Remote, lines: int = DEFAULT_LOG_TAIL_LINES) -> str:
        """The last lines of the server's log (or why they cannot be read)."""
        return await log_tail(remote, self.log_file, lines, COMMAND_TIMEOUT)

    async def _wait(
        self, ctx: TestContext, node: Node, remote: Remote, *, within: float, leader: bool
    ) -> None:
        deadline = time.monotonic() + within
        last = "no answer yet"
        probes = 0
        async with httpx.AsyncClient(timeout=STATUS_TIMEOUT, trust_env=False) as http:
            while True:
                data = await self.status(http, node)
                if data is not None:
                    if not leader or data.get("leader"):
                        return
                    last = f"no leader known yet (term {data.get('term')})"
                probes += 1
                if probes % 20 == 1 and await self.pid(remote) is None:
                    await asyncio.sleep(0.2)
                    raise ClusterError(
                        f"bugkv on {node.name} ({node.peer_address}) is not running: it exited "
                        f"after starting. Last lines of {self.log_file}:\n"
                        f"{await self.log_tail(remote)}"
                    )
                if time.monotonic() >= deadline:
                    raise ClusterError(
                        f"bugkv on {node.name} was not ready within {within:g} s ({last}). "
                        f"Last lines of {self.log_file}:\n{await self.log_tail(remote)}"
                    )
                await asyncio.sleep(POLL_INTERVAL)
