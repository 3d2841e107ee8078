"""etcd on nodes: start a cluster over SSH, kill, pause and restart members by pidfile.

Every member is started detached, in its own session, by a shell line of the form::

    setsid nohup /usr/bin/etcd --name n1 ... >>/opt/etcd/etcd.log 2>&1 </dev/null &
    echo $! >/opt/etcd/etcd.pid

so that the SSH command returns at once and neither a closed connection nor a command
deadline touches the daemon. ``$!`` is etcd's own PID (``setsid`` and ``nohup`` both exec),
so :meth:`EtcdDB.kill`, :meth:`~EtcdDB.pause` and :meth:`~EtcdDB.resume` signal exactly that
process and nothing else.

Layout on a node (``directory``, ``/opt/etcd`` by default; ``/opt`` is per node on the local
provider): ``data/`` (the member's data), ``etcd.log`` and ``etcd.pid``. On the local
provider the binary is the host's ``/usr/bin/etcd`` (nodes share the host's filesystem);
on VMs pass ``binary=`` (a path on the node).

Flags (see the reference ``local-cluster.md`` §5): peer and client URLs on the node's
:attr:`~clusters.base.Node.peer_address`, ``--initial-cluster`` over every node, a cluster
token derived from the test name, ``--initial-cluster-state new`` at setup and ``existing``
when a member is started again, and ``--pre-vote`` (on by default: without it a healed
minority forces an election, about 2 s without progress after every heal).
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
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
from harness.errors import ClusterError

if TYPE_CHECKING:
    from harness.api import TestContext
    from harness.control import Remote

__all__ = [
    "CLIENT_PORT",
    "DEFAULT_BINARY",
    "DEFAULT_DIRECTORY",
    "DEFAULT_HEALTH_REQUEST_TIMEOUT",
    "DEFAULT_LOG_TAIL_LINES",
    "DEFAULT_READY_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "PEER_PORT",
    "EtcdDB",
]

#: The etcd binary on the node. The local provider's nodes share the host's filesystem, so
#: Debian's ``etcd-server`` package provides it there.
DEFAULT_BINARY = "/usr/bin/etcd"
#: Where a member keeps its data, log and pidfile on the node.
DEFAULT_DIRECTORY = "/opt/etcd"
#: Seconds :meth:`EtcdDB.setup` (and :meth:`EtcdDB.wait_healthy`) waits for a member to
#: report itself healthy (it needs a quorum, so every member is set up at once).
DEFAULT_READY_TIMEOUT = 30.0
#: Seconds one ``GET /health`` may take while waiting.
DEFAULT_HEALTH_REQUEST_TIMEOUT = 1.0
#: Seconds to wait for a killed process to be gone.
DEFAULT_STOP_TIMEOUT = 10.0
#: Seconds between two health probes.
HEALTH_POLL_INTERVAL = 0.1
#: Lines of ``etcd.log`` quoted when a member does not come up.
DEFAULT_LOG_TAIL_LINES = 30
#: Seconds each control command (start, signal, cleanup) may take on the node.
COMMAND_TIMEOUT = 30.0

CLIENT_PORT = 2379
PEER_PORT = 2380

#: etcd's raft log lines worth observing (see :attr:`EtcdDB.log_patterns`).
LOG_PATTERNS = {
    # This member learned of a new leader (the first, or a change): "the leader changed".
    "leader-changed": r"raft\.node: [0-9a-f]+ (elected leader|changed leader from [0-9a-f]+ to) "
    r"[0-9a-f]+ at term \d+",
    "leader-lost": r"raft\.node: [0-9a-f]+ lost leader [0-9a-f]+ at term \d+",
    "became-leader": r"[0-9a-f]+ became leader at term \d+",
    "term-changed": r"[0-9a-f]+ became (follower|candidate|leader) at term \d+",
}


# A shell function: is PID $1 a live process (not a zombie)? Killed members are orphans of
# the node's PID 1, which may not reap them at once, and `kill -0` succeeds on a zombie.
def _token(test_name: str) -> str:
    """The ``--initial-cluster-token`` for a test: its name, reduced to safe characters."""
    return "clew-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name).strip("-") or "test")


@dataclass(slots=True, kw_only=True)
class EtcdDB:
    """etcd 3.4+ as a :class:`harness.api.DB`: one member per node, all started at setup.

    ``binary`` is the etcd executable on the node; ``directory`` holds the member's data,
    log and pidfile; ``pre_vote`` sets ``--pre-vote``; ``client_port`` and ``peer_port``
    are the member's ports (2379, 2380); ``extra_args`` are appended to every
    command line (e.g. ``("--heartbeat-interval=50",)``); ``ready_timeout`` bounds the wait
    for health at setup. ``clock_reads``: etcd is Go and reads the time through the vDSO.
    """

    clock_reads = "go-vdso"  # libfaketime cannot shift it (see nemeses.clock)
    name: str = "etcd"
    binary: str = DEFAULT_BINARY
    directory: str = DEFAULT_DIRECTORY
    pre_vote: bool = True
    extra_args: tuple[str, ...] = ()
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    client_port: int = CLIENT_PORT
    peer_port: int = PEER_PORT

    # ---- paths -----------------------------------------------------------------------------

    @property
    def data_dir(self) -> str:
        """The member's data directory on the node."""
        return f"{self.directory}/data"

    @property
    def log_file(self) -> str:
        """The member's log (stdout and stderr) on the node."""
        return f"{self.directory}/etcd.log"

    @property
    def pid_file(self) -> str:
        """The file holding the member's PID on the node."""
        return f"{self.directory}/etcd.pid"

    # ---- command lines ---------------------------------------------------------------------

    def command_line(self, ctx: TestContext, node: Node, *, state: str) -> list[str]:
        """The etcd argv for ``node``; ``state`` is ``"new"`` or ``"existing"``."""
        ip = node.peer_address
        peer, client = self.peer_port, self.client_port
        cluster = ",".join(f"{n.name}=http://{n.peer_address}:{peer}" for n in ctx.nodes)
        return [
            self.binary,
            "--name", node.name,
            "--data-dir", self.data_dir,
            "--listen-peer-urls", f"http://{ip}:{peer}",
            "--initial-advertise-peer-urls", f"http://{ip}:{peer}",
            "--listen-client-urls", f"http://{ip}:{client},http://127.0.0.1:{client}",
            "--advertise-client-urls", f"http://{ip}:{client}",
            "--initial-cluster", cluster,
            "--initial-cluster-state", state,
            "--initial-cluster-token", _token(ctx.name),
            f"--pre-vote={'true' if self.pre_vote else 'false'}",
            "--logger", "zap",
            "--log-outputs", "stderr",
            *self.extra_args,
        ]  # fmt: skip

    def _launch_script(self, argv: list[str]) -> str:
        return launch_script(self.directory, self.log_file, self.pid_file, argv)

    def _signal_script(self, signal: str) -> str:
        return signal_script(self.pid_file, signal, "etcd")

    def _stop_script(self) -> str:
        """SIGCONT then SIGKILL the pidfile's process and wait (bounded) until it is gone."""
        return stop_script(self.pid_file, self.stop_timeout, "etcd")

    # ---- DB protocol -----------------------------------------------------------------------

    async def setup(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Start a fresh member (old data and log removed) and wait until it is healthy."""
        await remote.run(self._stop_script(), timeout=COMMAND_TIMEOUT)
        d, data, log = (shlex.quote(p) for p in (self.directory, self.data_dir, self.log_file))
        await remote.run(f"mkdir -p {d} && rm -rf {data} && : >{log}", timeout=COMMAND_TIMEOUT)
        await self._launch(ctx, node, remote, state="new")
        await self.wait_healthy(ctx, node, remote, within=self.ready_timeout)

    async def teardown(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Kill the member (by pidfile) and remove its data directory and pidfile. The log is
        kept (to be downloaded); safe after a failed or partial setup."""
        await remote.run(self._stop_script(), timeout=COMMAND_TIMEOUT)
        await remote.run(["rm", "-rf", "--", self.data_dir, self.pid_file], timeout=COMMAND_TIMEOUT)

    async def start(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Start a killed member again with ``--initial-cluster-state existing`` (its data
        kept). Does nothing if it is running. Returns without waiting for health (a member
        alone cannot become healthy); use :meth:`wait_healthy` for that."""
        await self._launch(ctx, node, remote, state="existing")

    async def kill(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGKILL the member (also when paused) and wait until it is gone."""
        await remote.run(self.kill_script(ctx, node), timeout=COMMAND_TIMEOUT)

    def kill_script(self, ctx: TestContext, node: Node) -> str:
        """The shell script :meth:`kill` runs on the node (a node agent runs it too)."""
        return self._stop_script()

    async def pause(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGSTOP the member."""
        await remote.run(self.pause_script(ctx, node), timeout=COMMAND_TIMEOUT)

    async def resume(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGCONT the member."""
        await remote.run(self.resume_script(ctx, node), timeout=COMMAND_TIMEOUT)

    def pause_script(self, ctx: TestContext, node: Node) -> str:
        """The shell script :meth:`pause` runs on the node (a node agent runs it too)."""
        return self._signal_script("STOP")

    def resume_script(self, ctx: TestContext, node: Node) -> str:
        """The shell script :meth:`resume` runs on the node (a node agent runs it too)."""
        return self._signal_script("CONT")

    def log_files(self, ctx: TestContext, node: Node) -> list[str]:
        """The member's log on the node."""
        return [self.log_file]

    @property
    def log_patterns(self) -> dict[str, str]:
        """Lines of the member's log that node agents watch for (name -> regex): raft's
        own words (etcd 3.4+, zap JSON logs)."""
        return dict(LOG_PATTERNS)

    # ---- optional parts of the DB protocol, used by the process nemeses ---------------------

    def start_script(self, ctx: TestContext, node: Node) -> str:
        """A shell script that starts a killed member again (as :meth:`start` does), for the
        node-side fault guard to run if the controller is gone."""
        return self._launch_script(self.command_line(ctx, node, state="existing"))

    async def running(self, ctx: TestContext, node: Node, remote: Remote) -> bool:
        """Whether the member's process is alive on ``node``."""
        return await self.pid(remote) is not None

    async def primaries(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> list[str]:
        """The nodes whose member is the leader now, as their members report it (asked
        over the JSON gateway, ``/v3/maintenance/status``); empty if none answers."""
        by_name = {n.name: n for n in ctx.nodes}

        async def status(http: httpx.AsyncClient, node: Node) -> dict[str, Any] | None:
            url = f"http://{node.peer_address}:{self.client_port}/v3/maintenance/status"
            try:
                resp = await http.post(url, json={})
                data = resp.json()
            except (httpx.HTTPError, ValueError):
                return None
            return data if isinstance(data, dict) else None

        names = [n for n in remotes if n in by_name]
        async with httpx.AsyncClient(
            timeout=DEFAULT_HEALTH_REQUEST_TIMEOUT, trust_env=False
        ) as http:
            answers = await asyncio.gather(*(status(http, by_name[n]) for n in names))
        leaders = []
        for name, data in zip(names, answers, strict=True):
            if data is None:
                continue
            member = str(data.get("header", {}).get("member_id", ""))
            if member and member == str(data.get("leader", "")):
                leaders.append(name)
        return sorted(leaders)

    # ---- helpers ---------------------------------------------------------------------------

    async def _launch(self, ctx: TestContext, node: Node, remote: Remote, *, state: str) -> None:
        argv = self.command_line(ctx, node, state=state)
        await remote.run(self._launch_script(argv), timeout=COMMAND_TIMEOUT)

    async def pid(self, remote: Remote) -> int | None:
        """The PID of the running member on the node, or ``None`` if it is not running."""
        return await running_pid(remote, self.pid_file, COMMAND_TIMEOUT)

    async def log_tail(self, remote: Remote, lines: int = DEFAULT_LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the member's log (or why they cannot be read)."""
        return await log_tail(remote, self.log_file, lines, COMMAND_TIMEOUT)

    async def wait_healthy(
        self,
        ctx: TestContext,
        node: Node,
        remote: Remote,
        *,
        within: float = DEFAULT_READY_TIMEOUT,
    ) -> None:
        """Wait until ``GET /health`` on the member's client URL says healthy (it has a
        leader and serves reads). Raises :class:`ClusterError` naming the node, with the
        tail of its log, if the process dies or ``within`` seconds pass."""
        url = f"http://{node.peer_address}:{self.client_port}/health"
        deadline = time.monotonic() + within
        last = "no answer yet"
        probes = 0
        async with httpx.AsyncClient(
            timeout=DEFAULT_HEALTH_REQUEST_TIMEOUT, trust_env=False
        ) as http:
            while True:
                try:
                    resp = await http.get(url)
                    if resp.status_code != 200 or resp.json().get("health") != "true":
                        last = f"HTTP {resp.status_code}: {resp.text.strip()[:200]}"
                    elif await self.pid(remote) is not None:  # and it is ours that answers
                        return
                    else:
                        last = "the port answers, but the process in the pidfile is gone"
                except (httpx.HTTPError, ValueError) as e:
                    last = f"{type(e).__name__}: {e}"
                probes += 1
                # Every so often, make sure the process is still there: a member that
                # exited (bad flag, port in use) will never become healthy.
                if probes % 10 == 1 and await self.pid(remote) is None:
                    await asyncio.sleep(0.2)  # let its last words reach the log
                    raise ClusterError(
                        f"etcd on {node.name} ({node.peer_address}) is not running: it exited "
                        f"after starting ({last}). Last lines of {self.log_file}:\n"
                        f"{await self.log_tail(remote)}"
                    )
                if time.monotonic() >= deadline:
                    raise ClusterError(
                        f"etcd on {node.name} did not become healthy within {within:g} s "
                        f"({url}: {last}). Last lines of {self.log_file}:\n"
                        f"{await self.log_tail(remote)}"
                    )
                await asyncio.sleep(HEALTH_POLL_INTERVAL)
