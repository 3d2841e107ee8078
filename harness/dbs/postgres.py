"""PostgreSQL on a node: initdb, start, kill, pause and restart one server over SSH.

**One server, on the first node.** clew tests PostgreSQL's isolation levels, which a
single server provides; replication is not in scope (issue 7). :func:`primary_node` — the
cluster's first node — runs the server; on every other node each method does nothing,
so ``--nodes 3`` works but only adds idle nodes. Clients on every worker talk to the
primary (see :mod:`harness.clients.postgres`).

Layout on the primary (``directory``, ``/opt/postgres`` by default; ``/opt`` is per node
on the local provider): ``data/`` (the cluster made by ``initdb``), ``run/`` (the Unix
socket, since ``/var/run/postgresql`` is not the node's), ``postgres.log`` and
``postgres.pid``. Binaries come from Debian's ``postgresql`` package: the newest
``/usr/lib/postgresql/<version>/bin`` on the node, unless ``bin_dir`` says otherwise.

The server runs as the OS user ``os_user`` (``postgres``; ``setpriv`` drops root), started
detached like etcd::

    setsid nohup setpriv --reuid=postgres ... postgres -D /opt/postgres/data -c ... \\
        >>/opt/postgres/postgres.log 2>&1 </dev/null &
    echo $! >/opt/postgres/postgres.pid

It listens on the node's :attr:`~clusters.base.Node.peer_address` (and its own socket
directory), and ``pg_hba.conf`` lets every host of ``hba_address`` in with ``trust``: by
default the local provider's cluster subnet (the controller is the bridge's ``.1``), else
PostgreSQL's ``samenet``. It is a throwaway test database; nothing else can reach it.

**Which processes are "the database".** Every PostgreSQL child process makes itself a
session leader, so the postmaster's process group does not hold its backends. The
database's processes are found instead as those whose executable is ``postgres`` and whose
working directory is the data directory (the postmaster changes into it and every child
inherits it). :meth:`PostgresDB.kill` freezes and SIGKILLs all of them at once (a killed
postmaster alone leaves backends attached to its shared memory, and a new postmaster
refuses to start until they are gone); :meth:`~PostgresDB.pause` and
:meth:`~PostgresDB.resume` SIGSTOP / SIGCONT all of them.

Not handled: after a kill, the server's tiny System V shared memory segment (the big one is
anonymous) is left behind until a server starts on the same data directory, so a kill not
followed by a start leaks one segment of a few dozen bytes until the host reboots.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from clusters.base import Node
from harness.dbs.pidfile import log_tail
from harness.errors import ClusterError, ConfigError

if TYPE_CHECKING:
    from harness.api import TestContext
    from harness.control import Remote

__all__ = [
    "COMMAND_TIMEOUT",
    "DEFAULT_DIRECTORY",
    "DEFAULT_INITDB_TIMEOUT",
    "DEFAULT_LOG_TAIL_LINES",
    "DEFAULT_OS_USER",
    "DEFAULT_PORT",
    "DEFAULT_PROBE_TIMEOUT",
    "DEFAULT_READY_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "PostgresDB",
    "primary_node",
]

#: Where the server keeps its data, socket, log and pidfile on the node.
DEFAULT_DIRECTORY = "/opt/postgres"
#: The OS user the server runs as (Debian's package creates it).
DEFAULT_OS_USER = "postgres"
DEFAULT_PORT = 5432
#: Where Debian installs the server binaries, one directory per major version.
VERSIONS_GLOB = "/usr/lib/postgresql/*/bin"
#: Seconds :meth:`PostgresDB.setup` and :meth:`PostgresDB.start` wait for the server to
#: accept a connection and answer ``SELECT 1`` (after a kill this includes crash recovery).
DEFAULT_READY_TIMEOUT = 30.0
#: Seconds one readiness probe (connect and ``SELECT 1``) may take.
DEFAULT_PROBE_TIMEOUT = 1.0
#: Seconds between two readiness probes.
PROBE_INTERVAL = 0.1
#: Seconds ``initdb`` may take.
DEFAULT_INITDB_TIMEOUT = 120.0
#: Seconds a graceful (fast) shutdown may take at teardown before the processes are killed;
#: also how long to wait for killed processes to be gone.
DEFAULT_STOP_TIMEOUT = 10.0
#: Lines of ``postgres.log`` quoted when the server does not come up.
DEFAULT_LOG_TAIL_LINES = 30
#: Seconds each control command (launch, signal, cleanup) may take on the node.
COMMAND_TIMEOUT = 30.0

#: What ``hba_address`` may be: an address or CIDR, or one of PostgreSQL's keywords.
_HBA_ADDRESS = re.compile(r"^(?:[0-9A-Fa-f:.]+(?:/\d{1,3})?|samenet|samehost|all)$")
_SETTING_NAME = re.compile(r"^[a-z_][a-z0-9_.]*$")

# Shell functions shared by the scripts below; $D is the data directory (resolved; empty if
# it does not exist) and $ROUNDS the number of 50 ms waits allowed.
# alive PID: is PID a live process (not a zombie)?
# pg_pids: the PIDs of this data directory's server processes (exe postgres, cwd $D).
# running: is the pidfile's process our postmaster (then its PID is in $m)?
# kill_all: freeze and SIGKILL them all, again until none is left (fails after $ROUNDS).
_FUNCTIONS = r"""alive() {
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; [ "${s%% *}" != Z ]
}
pg_pids() {
  [ -n "$D" ] || return 0
  for d in /proc/[0-9]*; do
    [ "$(readlink "$d/cwd" 2>/dev/null)" = "$D" ] || continue
    case "$(readlink "$d/exe" 2>/dev/null)" in */postgres) echo "${d#/proc/}";; esac
  done
}
running() { [ -s "$PIDF" ] && m=$(cat "$PIDF") && pg_pids | grep -qx "$m"; }
kill_all() {
  i=0
  while :; do
    p=$(pg_pids); [ -n "$p" ] || return 0
    kill -STOP $p 2>/dev/null; kill -KILL $p 2>/dev/null
    i=$((i+1))
    if [ $i -gt "$ROUNDS" ]; then
      echo "postgres processes" $p "still alive after SIGKILL" >&2; return 1
    fi
    sleep 0.05
  done
}
"""


def primary_node(ctx: TestContext) -> Node:
    """The node that runs the server: the cluster's first node."""
    if not ctx.nodes:
        raise ConfigError("the postgres suite needs at least one node")
    return ctx.nodes[0]


@dataclass(slots=True, kw_only=True)
class PostgresDB:
    """PostgreSQL as a :class:`harness.api.DB`: one server on :func:`primary_node`.

    ``bin_dir`` is the directory of ``initdb`` and ``postgres`` on the node (``None``: the
    newest ``/usr/lib/postgresql/*/bin``); ``directory`` holds data, socket, log and
    pidfile; ``os_user`` runs the server; ``port`` is its TCP port; ``hba_address`` is who
    may connect (``None``: the cluster's subnet if the provider knows it, else
    ``samenet``); ``settings`` are extra server settings (``-c name=value``); ``init_sql``
    is run once at setup, right after the server is ready (e.g. the workload's tables);
    ``database`` and ``db_user`` are what the readiness probe and ``init_sql`` connect as.
    ``faketime`` is the path of ``libfaketime.so.1`` on the node to start the server with
    (``None``: without), so that clock faults (:mod:`nemeses.clock`) can shift its clock;
    PostgreSQL reads the time through libc, so it then declares ``clock_reads = "libc"``.
    """

    name: str = "postgres"
    bin_dir: str | None = None
    directory: str = DEFAULT_DIRECTORY
    os_user: str = DEFAULT_OS_USER
    port: int = DEFAULT_PORT
    hba_address: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    init_sql: Sequence[str] = ()
    database: str = "postgres"
    db_user: str = "postgres"
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT
    initdb_timeout: float = DEFAULT_INITDB_TIMEOUT
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    faketime: str | None = None

    @property
    def clock_reads(self) -> str:
        """How the server reads the wall clock, for clock faults: through libc, and so
        through libfaketime when it was started with it."""
        return "libc" if self.faketime else "unknown"

    def __post_init__(self) -> None:
        if self.hba_address is not None and not _HBA_ADDRESS.match(self.hba_address):
            raise ConfigError(
                f"postgres hba_address {self.hba_address!r} is not an address, a CIDR, "
                "samenet, samehost or all"
            )
        bad = [k for k in self.settings if not _SETTING_NAME.match(k)]
        if bad:
            raise ConfigError(f"postgres settings with bad names: {bad}")
        for what, value in (("ready_timeout", self.ready_timeout),
                            ("probe_timeout", self.probe_timeout),
                            ("initdb_timeout", self.initdb_timeout),
                            ("stop_timeout", self.stop_timeout)):  # fmt: skip
            if not value > 0:
                raise ConfigError(f"postgres {what} must be positive, got {value!r}")

    # ---- paths -----------------------------------------------------------------------------

    @property
    def data_dir(self) -> str:
        """The server's data directory on the node."""
        return f"{self.directory}/data"

    @property
    def socket_dir(self) -> str:
        """The server's Unix socket directory on the node."""
        return f"{self.directory}/run"

    @property
    def log_file(self) -> str:
        """The server's log (stdout and stderr) on the node."""
        return f"{self.directory}/postgres.log"

    @property
    def pid_file(self) -> str:
        """The file holding the postmaster's PID on the node."""
        return f"{self.directory}/postgres.pid"

    # ---- scripts ---------------------------------------------------------------------------

    def _prelude(self) -> str:
        """Shell variables (PGBIN, D, PIDF) and the helper functions."""
        if self.bin_dir:
            find_bin = f"PGBIN={shlex.quote(self.bin_dir)}\n"
        else:
            find_bin = (
                f"PGBIN=$(ls -d {VERSIONS_GLOB} 2>/dev/null | sort -V | tail -n 1)\n"
                f'[ -n "$PGBIN" ] || {{ echo "no PostgreSQL found ({VERSIONS_GLOB}); '
                f"install Debian's postgresql package\" >&2; exit 4; }}\n"
            )
        data = shlex.quote(self.data_dir)
        return (
            find_bin
            + f"D=$(cd {data} 2>/dev/null && pwd -P)\n"
            + f"PIDF={shlex.quote(self.pid_file)}\n"
            + f"ROUNDS={max(1, int(self.stop_timeout / 0.05))}\n"
            + _FUNCTIONS
        )

    def command_line(self, node: Node) -> list[str]:
        """The server's argv on ``node``; its first element, ``$PGBIN/postgres``, stands for
        the binary in the binaries' directory."""
        settings = {
            "listen_addresses": node.peer_address,
            "port": str(self.port),
            "unix_socket_directories": self.socket_dir,
            **self.settings,
        }
        argv = ["$PGBIN/postgres", "-D", self.data_dir]
        for k, v in settings.items():
            argv += ["-c", f"{k}={v}"]
        return argv

    def _as_user(self) -> str:
        u = shlex.quote(self.os_user)
        return f"setpriv --reuid={u} --regid={u} --init-groups --"

    def _stop_script(self, *, graceful: bool) -> str:
        """Stop the server: a fast shutdown first if ``graceful``, then SIGKILL the rest."""
        script = self._prelude()
        if graceful:
            script += (
                "if running; then\n"
                '  p=$(pg_pids); [ -n "$p" ] && kill -CONT $p 2>/dev/null\n'
                '  kill -INT "$m"\n'  # fast shutdown: roll back, checkpoint, exit
                '  i=0; while alive "$m" && [ $i -lt "$ROUNDS" ]; do i=$((i+1)); sleep 0.05; done\n'
                "fi\n"
            )
        return script + "kill_all\n"

    def _signal_script(self, signal: str) -> str:
        return (
            self._prelude()
            + 'p=$(pg_pids)\n[ -n "$p" ] || { echo "postgres is not running" >&2; exit 3; }\n'
            + f"kill -{signal} $p\n"
        )

    def start_script(self, ctx: TestContext, node: Node) -> str:
        """A POSIX sh script, run as root on ``node``, that starts the server again on its
        existing data directory (does nothing if it is running; on a node other than the
        primary, does nothing at all). Processes left from a killed server are killed first
        and its stale ``postmaster.pid`` removed. Returns at once, without waiting for the
        server to be ready."""
        if node.name != primary_node(ctx).name:
            return "exit 0\n"
        sock, log = shlex.quote(self.socket_dir), shlex.quote(self.log_file)
        user = shlex.quote(self.os_user)
        argv = '"$PGBIN"/postgres ' + shlex.join(self.command_line(node)[1:])
        if self.faketime:
            from nemeses.clock import faketime_env

            env = faketime_env(library=self.faketime)
            argv = "env " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + " " + argv
        return (
            self._prelude()
            + '[ -n "$D" ] || { echo "no data directory: set the database up first" >&2; '
            "exit 3; }\n"
            + "if running; then echo already-running; exit 0; fi\n"
            + "kill_all || exit 1\n"
            + 'rm -f "$D/postmaster.pid"\n'
            + f"mkdir -p {sock} && chown {user}: {sock} || exit 1\n"
            + f"{{ setsid nohup {self._as_user()} {argv} >>{log} 2>&1 </dev/null & "
            + 'echo $! >"$PIDF"; }\n'
        )

    def _init_script(self, ctx: TestContext, node: Node) -> str:
        """Fresh data directory (initdb), pg_hba.conf, empty log."""
        d, data, sock = (shlex.quote(p) for p in (self.directory, self.data_dir, self.socket_dir))
        log, user = shlex.quote(self.log_file), shlex.quote(self.os_user)
        hba = (
            "# written by clew: a throwaway test server\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n"
            f"host all all {self._hba_address(ctx)} trust\n"
        )
        return (
            self._prelude()
            + f"rm -rf {data} {sock} && mkdir -p {d} {sock} || exit 1\n"
            + f"chown {user}: {d} {sock} && : >{log} || exit 1\n"
            + f'{self._as_user()} "$PGBIN/initdb" -D {data} -U {shlex.quote(self.db_user)} '
            + "--auth=trust --encoding=UTF8 --locale=C --no-sync --no-instructions "
            + f">>{log} 2>&1 || {{ tail -n {DEFAULT_LOG_TAIL_LINES} {log} >&2; exit 1; }}\n"
            + f"printf %s {shlex.quote(hba)} >{data}/pg_hba.conf\n"
        )

    def _hba_address(self, ctx: TestContext) -> str:
        if self.hba_address:
            return self.hba_address
        subnet = ctx.cluster.extra.get("subnet")
        if isinstance(subnet, str) and _HBA_ADDRESS.match(subnet):
            return subnet
        return "samenet"

    # ---- DB protocol -----------------------------------------------------------------------

    async def primaries(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> list[str]:
        """The names of the nodes that run the server (for faults aimed at primaries): just
        :func:`primary_node`, if it is among ``remotes``."""
        name = primary_node(ctx).name
        return [name] if name in remotes else []

    async def running(self, ctx: TestContext, node: Node, remote: Remote) -> bool:
        """Whether the server is up on ``node`` (always true of a node that runs none)."""
        if not self._is_primary(ctx, node):
            return True
        return await self.postmaster_pid(remote) is not None

    async def wait_healthy(
        self, ctx: TestContext, node: Node, remote: Remote, *, within: float
    ) -> None:
        """On the primary, :meth:`wait_ready`; nothing elsewhere."""
        if self._is_primary(ctx, node):
            await self.wait_ready(node, remote, within=within)

    def _is_primary(self, ctx: TestContext, node: Node) -> bool:
        return node.name == primary_node(ctx).name

    async def setup(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """On the primary: stop any old server, make a fresh data directory with
        ``initdb``, start the server, wait until it answers, run ``init_sql``."""
        if not self._is_primary(ctx, node):
            return
        await remote.run(self._stop_script(graceful=False), sudo=True, timeout=COMMAND_TIMEOUT)
        await remote.run(self._init_script(ctx, node), sudo=True, timeout=self.initdb_timeout)
        await self.start(ctx, node, remote)
        if self.init_sql:
            await self._run_sql(node, self.init_sql)

    async def teardown(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Shut the server down (fast shutdown, then SIGKILL whatever is left) and remove
        its data, socket directory and pidfile. The log is kept (to be downloaded); safe
        after a failed or partial setup."""
        if not self._is_primary(ctx, node):
            return
        await remote.run(self._stop_script(graceful=True), sudo=True, timeout=COMMAND_TIMEOUT)
        await remote.run(
            ["rm", "-rf", "--", self.data_dir, self.socket_dir, self.pid_file],
            sudo=True,
            timeout=COMMAND_TIMEOUT,
        )

    async def start(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Start a stopped or killed server again on its data (crash recovery runs if it
        was killed) and wait until it answers, at most ``ready_timeout`` seconds. Does
        nothing to a running server."""
        if not self._is_primary(ctx, node):
            return
        await remote.run(self.start_script(ctx, node), sudo=True, timeout=COMMAND_TIMEOUT)
        await self.wait_ready(node, remote, within=self.ready_timeout)

    async def kill(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGKILL every server process (also when paused) and wait until they are gone."""
        if not self._is_primary(ctx, node):
            return
        await remote.run(self._stop_script(graceful=False), sudo=True, timeout=COMMAND_TIMEOUT)

    async def pause(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGSTOP every server process."""
        if self._is_primary(ctx, node):
            await remote.run(self._signal_script("STOP"), sudo=True, timeout=COMMAND_TIMEOUT)

    async def resume(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """SIGCONT every server process."""
        if self._is_primary(ctx, node):
            await remote.run(self._signal_script("CONT"), sudo=True, timeout=COMMAND_TIMEOUT)

    def log_files(self, ctx: TestContext, node: Node) -> list[str]:
        """The server's log, on the primary."""
        return [self.log_file] if self._is_primary(ctx, node) else []

    # ---- helpers ---------------------------------------------------------------------------

    async def pids(self, remote: Remote) -> list[int]:
        """The PIDs of the server's processes on the node (empty if it is not running)."""
        r = await remote.run(
            self._prelude() + "pg_pids\n", sudo=True, check=False, timeout=COMMAND_TIMEOUT
        )
        return [int(x) for x in r.stdout.split() if x.isdigit()] if r.ok else []

    async def postmaster_pid(self, remote: Remote) -> int | None:
        """The postmaster's PID if it is running, else ``None``."""
        r = await remote.run(
            self._prelude() + 'running && echo "$m"\n',
            sudo=True,
            check=False,
            timeout=COMMAND_TIMEOUT,
        )
        out = r.stdout.strip()
        return int(out) if r.ok and out.isdigit() else None

    async def log_tail(self, remote: Remote, lines: int = DEFAULT_LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server's log (or why they cannot be read)."""
        return await log_tail(remote, self.log_file, lines, COMMAND_TIMEOUT, sudo=True)

    async def _connect(self, node: Node, seconds: float) -> Any:
        import asyncpg

        return await asyncpg.connect(
            host=node.peer_address,
            port=self.port,
            user=self.db_user,
            database=self.database,
            timeout=seconds,
        )

    async def _probe(self, node: Node) -> None:
        """Connect and ``SELECT 1``, within ``probe_timeout``; raises on any failure."""
        async with asyncio.timeout(self.probe_timeout):
            conn = await self._connect(node, self.probe_timeout)
            try:
                await conn.fetchval("SELECT 1")
            finally:
                conn.terminate()

    async def wait_ready(self, node: Node, remote: Remote, *, within: float) -> None:
        """Wait until the server on ``node`` accepts a connection from here and answers
        ``SELECT 1``. Raises :class:`ClusterError` naming the node, with the tail of its
        log, if the postmaster exits or ``within`` seconds pass."""
        deadline = time.monotonic() + within
        last = "no answer yet"
        probes = 0
        while True:
            try:
                await self._probe(node)
                return
            except Exception as e:  # refused, starting up, recovering, timeout
                last = f"{type(e).__name__}: {e}"
            probes += 1
            # Every so often make sure the postmaster is still there: one that exited
            # (bad setting, port in use) will never answer. Not at once: a postmaster
            # only counts as ours once it has entered its data directory.
            if probes % 10 == 0 and await self.postmaster_pid(remote) is None:
                await asyncio.sleep(0.2)  # let its last words reach the log
                raise ClusterError(
                    f"postgres on {node.name} ({node.peer_address}:{self.port}) is not "
                    f"running: it exited after starting ({last}). Last lines of "
                    f"{self.log_file}:\n{await self.log_tail(remote)}"
                )
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"postgres on {node.name} did not accept connections within {within:g} s "
                    f"({node.peer_address}:{self.port}: {last}). Last lines of "
                    f"{self.log_file}:\n{await self.log_tail(remote)}"
                )
            await asyncio.sleep(PROBE_INTERVAL)

    async def _run_sql(self, node: Node, statements: Sequence[str]) -> None:
        try:
            conn = await self._connect(node, self.ready_timeout)
        except Exception as e:
            raise ClusterError(f"postgres on {node.name}: cannot connect to run the "
                               f"setup SQL: {type(e).__name__}: {e}") from e  # fmt: skip
        try:
            for sql in statements:
                try:
                    await conn.execute(sql)
                except Exception as e:
                    raise ClusterError(
                        f"postgres on {node.name}: setup SQL failed: {sql!r}: "
                        f"{type(e).__name__}: {e}"
                    ) from e
        finally:
            await conn.close()
