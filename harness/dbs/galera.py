"""MariaDB with Galera on nodes: three (or more) primaries in one synchronous cluster.

Each node runs its own ``mariadbd`` (Debian's ``mariadb-server``) with the Galera 4
provider (``galera-4``), started detached over SSH through a pidfile
(:mod:`harness.dbs.pidfile`), so signals reach exactly that process.

Layout on a node (``directory``, ``/opt/galera`` by default; ``/opt`` is per node on the
local provider): ``my.cnf`` (clew's whole configuration, the wsrep settings included; the
host's ``/etc/mysql`` is not read), ``data/`` (the data directory, with Galera's
``grastate.dat``, ``gvwstate.dat`` and its cache), ``mariadbd.log`` (the error log:
startup, state transfers, cluster views), ``mariadbd.sock`` and the pidfile.

Setup: every node gets a fresh data directory (``mariadb-install-db``); the first node
starts with ``--wsrep-new-cluster`` (a new cluster of one); once it is ``Synced`` it gets
clew's user, database and tables, and the other nodes start and join it, each receiving a
full state transfer (SST, by ``rsync`` — ``wsrep_sst_method``, option ``sst_method``) from
the first node (:func:`sst_donor`; it serves one transfer at a time). Setup returns
once every node is ``Synced`` in a primary component of all nodes.

Faults act on ``mariadbd``: ``kill`` SIGKILLs it; ``start`` starts it again *without*
``--wsrep-new-cluster``: it rejoins the running cluster (an incremental state transfer,
IST, from Galera's cache), or, when every node was killed, the nodes re-form the last
primary component from their saved view (``pc.recovery``, on by default) — Galera's own
recovery after a whole-cluster crash. ``pause``/``resume`` are SIGSTOP/SIGCONT.

Durability settings are options (:data:`DEFAULT_SETTINGS`): ``innodb_flush_log_at_trx_commit``
defaults to 0 (the redo log written and flushed once a second), the value MariaDB's
"Configuring MariaDB Galera Cluster" recommends with Galera; set
``-o mysqld.innodb_flush_log_at_trx_commit=1`` for a flush at every commit.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clusters.base import Node
from harness.dbs.pidfile import launch_script, running_pid, signal_script, stop_script
from harness.errors import ClusterError

if TYPE_CHECKING:
    from harness.api import TestContext
    from harness.control import Remote

__all__ = [
    "DATABASE",
    "DEFAULT_DIRECTORY",
    "DEFAULT_READY_TIMEOUT",
    "DEFAULT_SETTINGS",
    "GALERA_PROVIDER",
    "INSTALL_DB",
    "MARIADBD",
    "PASSWORD",
    "PORT",
    "USER",
    "GaleraDB",
    "sst_donor",
]

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
MARIADB_CLIENT = "/usr/bin/mariadb"
GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"
DEFAULT_DIRECTORY = "/opt/galera"
PORT = 3306
#: The system user ``mariadbd`` runs as (from Debian's package). Not root: the rsync daemon
#: of a state transfer, started by the server, would then write as ``nobody``.
SERVER_USER = "mysql"
#: clew's account and database (made on the first node; Galera replicates them).
USER = "clew"
PASSWORD = "clew"
DATABASE = "clew"
#: Seconds setup (and wait_healthy) waits for a node to be Synced.
DEFAULT_READY_TIMEOUT = 120.0
#: Seconds each control command may take on the node.
COMMAND_TIMEOUT = 60.0
#: The program each state-transfer method (``sst_method``) runs, and its Debian package.
SST_TOOLS = {
    "rsync": ("rsync", "rsync"),
    "mariabackup": ("mariadb-backup", "mariadb-backup"),
    "mysqldump": ("mariadb-dump", "mariadb-client"),
}
#: Seconds a killed process may take to be gone.
STOP_TIMEOUT = 10.0
#: Lines of the error log quoted when a node does not come up.
LOG_TAIL_LINES = 25
#: Server settings clew changes from MariaDB's defaults (each can be overridden with an
#: option ``mysqld.<name>=<value>``). Small buffers: several servers share one machine.
DEFAULT_SETTINGS: dict[str, str] = {
    "innodb_flush_log_at_trx_commit": "0",
    "innodb_buffer_pool_size": "32M",
    "innodb_log_file_size": "16M",
    "performance_schema": "OFF",
    "max_connections": "200",
    "wsrep_sync_wait": "0",
    "innodb_lock_wait_timeout": "5",
}


@dataclass(slots=True, kw_only=True)
class GaleraDB:
    """MariaDB + Galera as a :class:`harness.api.DB` (see the module docstring).
    ``settings`` are server settings on top of :data:`DEFAULT_SETTINGS`; ``init_sql`` the
    statements run once on the first node after clew's database exists."""

    clock_reads = "unknown"  # not started under libfaketime: clock faults are refused
    name: str = "galera"
    directory: str = DEFAULT_DIRECTORY
    sst_method: str = "rsync"
    settings: dict[str, str] = field(default_factory=dict)
    init_sql: tuple[str, ...] = ()
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    port: int = PORT

    # ---- paths -----------------------------------------------------------------------------

    @property
    def data_dir(self) -> str:
        """The server's data directory."""
        return f"{self.directory}/data"

    def _path(self, name: str) -> str:
        return f"{self.directory}/{name}"

    # ---- configuration ---------------------------------------------------------------------

    def config(self, ctx: TestContext, node: Node) -> str:
        """``my.cnf`` for ``node``: the server, InnoDB and wsrep (Galera) settings."""
        members = ",".join(n.peer_address for n in ctx.nodes)
        settings = {**DEFAULT_SETTINGS, **self.settings}
        lines = [
            "[mysqld]",
            f"user = {SERVER_USER}",
            f"datadir = {self.data_dir}",
            f"socket = {self._path('mariadbd.sock')}",
            f"pid-file = {self._path('mariadbd.ownpid')}",
            f"log-error = {self._path('mariadbd.log')}",
            f"bind-address = {node.peer_address}",
            f"port = {self.port}",
            "skip-name-resolve",
            "binlog_format = ROW",
            "default_storage_engine = InnoDB",
            "innodb_autoinc_lock_mode = 2",
            *(f"{k} = {v}" for k, v in sorted(settings.items())),
            "wsrep_on = ON",
            f"wsrep_provider = {GALERA_PROVIDER}",
            "wsrep_cluster_name = clew",
            f"wsrep_cluster_address = gcomm://{members}",
            f"wsrep_node_address = {node.peer_address}",
            f"wsrep_node_name = {node.name}",
            f"wsrep_sst_method = {self.sst_method}",
            # Short timeouts, so that a dead or cut-off member leaves the view in seconds.
            'wsrep_provider_options = "gcache.size=64M; evs.suspect_timeout=PT3S; '
            'evs.inactive_timeout=PT6S; evs.install_timeout=PT5S; pc.recovery=TRUE"',
            "",
            "[client]",
            f"socket = {self._path('mariadbd.sock')}",
            "user = root",
        ]
        return "\n".join(lines) + "\n"

    # ---- scripts ---------------------------------------------------------------------------

    def _launch(self, *, new_cluster: bool = False, donor: str | None = None) -> str:
        argv = [MARIADBD, f"--defaults-file={self._path('my.cnf')}"]
        if new_cluster:
            argv.append("--wsrep-new-cluster")
        if donor:
            argv.append(f"--wsrep-sst-donor={donor}")
        return launch_script(
            self.directory, self._path("mariadbd.stdout"), self._path("mariadbd.pid"), argv
        )

    def _sql(self, statements: str) -> str:
        """A shell command running ``statements`` as root through the node's socket,
        printing tab-separated rows without headers."""
        return (
            f"{MARIADB_CLIENT} --defaults-file={shlex.quote(self._path('my.cnf'))} -N -B "
            f"-e {shlex.quote(statements)}"
        )

    # ---- DB protocol -----------------------------------------------------------------------

    async def setup(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """A fresh data directory; the first node bootstraps a new cluster and gets clew's
        user, database and tables; every other node waits for it, then joins by SST.
        Returns when ``node`` is Synced in a primary component of every node."""
        tool, package = SST_TOOLS.get(self.sst_method, (None, None))
        if tool is not None:  # (else Galera's own error names the unknown method)
            r = await remote.run(f"command -v {tool}", check=False, timeout=COMMAND_TIMEOUT)
            if not r.ok:  # the joiners would wait out the setup limit for a transfer
                raise ClusterError(
                    f"galera on {node.name}: sst_method={self.sst_method} needs {tool} on "
                    f"every node, and {node.name} has none; install it there (apt-get "
                    f"install {package}) or leave sst_method out (rsync)"
                )
        await remote.run(self._stop(), timeout=COMMAND_TIMEOUT)
        d = shlex.quote(self.directory)
        await remote.run(
            f"mkdir -p {d} && rm -rf {shlex.quote(self.data_dir)} {d}/my.cnf {d}/*.log "
            f"{d}/mariadbd.stdout && mkdir -p {shlex.quote(self.data_dir)} && "
            f"chown -R {SERVER_USER}: {d}",
            timeout=COMMAND_TIMEOUT,
        )
        await remote.run(f"cat >{d}/my.cnf", stdin=self.config(ctx, node),
                         timeout=COMMAND_TIMEOUT)  # fmt: skip
        first = node.name == ctx.nodes[0].name
        if first:
            await remote.run(
                f"{INSTALL_DB} --defaults-file={d}/my.cnf --user={SERVER_USER} "
                f"--skip-test-db --auth-root-authentication-method=socket "
                f">{d}/install-db.log 2>&1 || {{ tail -n 20 {d}/install-db.log; "
                # The server's own reason (an unknown -o mysqld.<name>) is in its error
                # log, not in install-db's, which ends in its help text: shown last.
                f"grep -h '\\[ERROR\\]' {d}/mariadbd.log 2>/dev/null | tail -n 3; exit 1; }}",
                timeout=COMMAND_TIMEOUT,
            )
            await remote.run(self._launch(new_cluster=True), timeout=COMMAND_TIMEOUT)
            await self._wait(node, remote, within=self.ready_timeout, size=1)
            await remote.run(self._sql(self._bootstrap_sql()), timeout=COMMAND_TIMEOUT)
        else:
            await self._wait_for_first(ctx)
            await remote.run(self._launch(donor=sst_donor(ctx, node)), timeout=COMMAND_TIMEOUT)
        await self._wait(node, remote, within=self.ready_timeout, size=len(ctx.nodes))

    def _bootstrap_sql(self) -> str:
        return ";\n".join(
            [
                f"CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'",
                f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
                f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'%'",
                *(s.replace("{db}", DATABASE) for s in self.init_sql),
            ]
        )

    async def _wait_for_first(self, ctx: TestContext) -> None:
        """Wait until the first node's setup made clew's database (its marker below)."""
        first = ctx.nodes[0]
        deadline = time.monotonic() + self.ready_timeout
        while True:
            try:
                _reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(first.peer_address, self.port), 2.0
                )
                writer.close()
                await writer.wait_closed()
                return
            except (OSError, TimeoutError):
                pass
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"galera: the first node {first.name} did not start serving within "
                    f"{self.ready_timeout:g} s, so {ctx.nodes[1].name}.. cannot join"
                )
            await asyncio.sleep(0.5)

    async def teardown(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Kill ``mariadbd`` and remove the data directory, config and pidfile (logs are
        kept, to be downloaded). Safe after a failed setup."""
        await remote.run(self._stop(), timeout=COMMAND_TIMEOUT)
        await remote.run(
            ["rm", "-rf", "--", self.data_dir, self._path("my.cnf"), self._path("mariadbd.pid")],
            timeout=COMMAND_TIMEOUT,
        )

    def log_files(self, ctx: TestContext, node: Node) -> list[str]:
        """The server's error log, its stdout, clew's config and Galera's saved state."""
        return [
            self._path("mariadbd.log"),
            self._path("mariadbd.stdout"),
            self._path("my.cnf"),
            f"{self.data_dir}/grastate.dat",
        ]

    # ---- abilities -------------------------------------------------------------------------

    def _stop(self) -> str:
        return stop_script(self._path("mariadbd.pid"), STOP_TIMEOUT, "mariadbd")

    async def kill(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGKILL ``mariadbd`` (also when paused) and wait until it is gone."""
        await remote.run(self._stop(), timeout=COMMAND_TIMEOUT)

    async def start(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Start ``mariadbd`` again, joining the cluster (never a new one); nothing if it
        runs. Does not wait (see :meth:`wait_healthy`)."""
        await remote.run(self._launch(new_cluster=False), timeout=COMMAND_TIMEOUT)

    async def pause(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGSTOP ``mariadbd``."""
        await remote.run(signal_script(self._path("mariadbd.pid"), "STOP", "mariadbd"),
                         timeout=COMMAND_TIMEOUT)  # fmt: skip

    async def resume(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGCONT ``mariadbd``."""
        await remote.run(signal_script(self._path("mariadbd.pid"), "CONT", "mariadbd"),
                         timeout=COMMAND_TIMEOUT)  # fmt: skip

    def start_script(self, ctx: TestContext, node: Node) -> str:
        """A shell script starting ``mariadbd`` again as :meth:`start` does."""
        return self._launch(new_cluster=False)

    async def running(self, ctx: TestContext, node: Node, remote: Remote) -> bool:
        """Whether ``mariadbd`` is alive on ``node``."""
        return await running_pid(remote, self._path("mariadbd.pid"), COMMAND_TIMEOUT) is not None

    async def primaries(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> list[str]:
        """Every node (Galera is multi-primary): the nodes whose server is Synced in a
        primary component."""
        names = [n for n in ctx.nodes if n.name in remotes]
        states = await asyncio.gather(*(self._state(remotes[n.name]) for n in names))
        return [n.name for n, s in zip(names, states, strict=True) if _serving(s)]

    async def wait_healthy(
        self, ctx: TestContext, node: Node, remote: Remote, *, within: float = DEFAULT_READY_TIMEOUT
    ) -> None:
        """Return once ``mariadbd`` on ``node`` is Synced in a primary component (after a
        restart: rejoined); :class:`ClusterError` naming the node and quoting its error log
        otherwise."""
        await self._wait(node, remote, within=within, size=1)

    # ---- helpers ---------------------------------------------------------------------------

    async def _state(self, remote: Remote) -> dict[str, str]:
        """The node's wsrep status variables; ``{"error": why}`` when the client cannot
        ask the server (not running, not yet listening)."""
        r = await remote.run(
            self._sql("SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state_comment',"
                      "'wsrep_cluster_status','wsrep_cluster_size','wsrep_ready')"),
            check=False, timeout=COMMAND_TIMEOUT,
        )  # fmt: skip
        if not r.ok:
            return {"error": (r.stderr or r.stdout).strip()[-200:]}
        rows = (line.split("\t", 1) for line in r.stdout.splitlines() if "\t" in line)
        return {k: v.strip() for k, v in rows}

    async def _wait(self, node: Node, remote: Remote, *, within: float, size: int) -> None:
        deadline = time.monotonic() + within
        while True:
            state = await self._state(remote)
            if _serving(state) and int(state.get("wsrep_cluster_size", "0") or 0) >= size:
                return
            pid = self._path("mariadbd.pid")
            if "error" in state and await running_pid(remote, pid, COMMAND_TIMEOUT) is None:
                # Exited (an unknown -o mysqld.<name>, a missing SST tool): say so now, not
                # at the time limit.
                raise ClusterError(
                    f"galera on {node.name} ({node.peer_address}): mariadbd exited while "
                    f"starting. Last lines of {self._path('mariadbd.log')}:\n"
                    f"{await self._tail(remote)}"
                )
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"galera on {node.name} ({node.peer_address}) not Synced within "
                    f"{within:g} s (last state {state or 'none'}). Last lines of "
                    f"{self._path('mariadbd.log')}:\n{await self._tail(remote)}"
                )
            await asyncio.sleep(0.5)

    async def _tail(self, remote: Remote) -> str:
        try:
            r = await remote.run(["tail", "-n", str(LOG_TAIL_LINES), self._path("mariadbd.log")],
                                 check=False, timeout=COMMAND_TIMEOUT)  # fmt: skip
        except Exception as e:  # diagnostics only: never hide the real error
            return f"(cannot read: {e})"
        return r.stdout


def sst_donor(ctx: TestContext, node: Node) -> str | None:
    """The donor ``node`` asks for its first state transfer at setup
    (``--wsrep-sst-donor``): the first node, and only it (no trailing comma: Galera would
    then take any node while the first is busy giving another transfer); ``None`` for the
    first node itself. The joiners thus take turns, rather than take their state from a
    node that itself just joined by a full transfer — its cache lacks the write sets the
    joiner's incremental transfer needs ("IST didn't contain all write sets", seen on 5
    nodes). A restart after a fault chooses its donor freely (the config names none)."""
    first = ctx.nodes[0].name
    return None if node.name == first else first


def _serving(state: Mapping[str, str]) -> bool:
    """Whether wsrep status ``state`` says the node serves: Synced, primary, ready."""
    return (
        state.get("wsrep_local_state_comment") == "Synced"
        and state.get("wsrep_cluster_status") == "Primary"
        and state.get("wsrep_ready") == "ON"
    )
