"""The :class:`Remote` contract, shared by every SSH backend, and :class:`CommandResult`.

A backend supplies four primitives: open one connection (one attempt), run one command line
with a deadline, copy a file each way over SFTP, and close. Everything callers see is built
here, once, so that both backends behave the same: how a command is quoted and wrapped for
``sudo``, ``env`` and ``cwd``; the channel cap; retries with backoff; reconnecting after the
connection was lost; and which exception is raised, with which message.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import shlex
import time
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from clusters.base import Node
from harness.errors import CommandError, ConfigError, SSHError

__all__ = [
    "DEFAULT_COMMAND_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_CHANNELS",
    "DEFAULT_RETRIES",
    "DEFAULT_TRANSFER_TIMEOUT",
    "CommandResult",
    "Remote",
    "recording_commands",
    "shell_command",
]

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT: float = 10.0
"""Seconds one connection attempt may take, from the TCP connect to the end of
authentication. A node that accepts TCP but never speaks SSH fails after this long."""

DEFAULT_COMMAND_TIMEOUT: float = 60.0
"""Seconds a command may run before it is abandoned: its channel is closed, its process
group on the node is sent SIGTERM, and :class:`CommandError` says it timed out. Every
remote command has a deadline, because a carelessly backgrounded daemon keeps the channel
open forever."""

DEFAULT_TRANSFER_TIMEOUT: float = 300.0
"""Seconds an upload or download may take."""

DEFAULT_RETRIES: int = 3
"""How many times :func:`connect` tries to reach a node (1 means a single try). Only
transport failures (refused, reset, timed out) are retried, with exponential backoff;
authentication and host-key failures are final at once."""

#: Where :meth:`Remote.run` notes each command it runs, while a recording is active in the
#: current task (see :func:`recording_commands`).
_command_sink: contextvars.ContextVar[list[list[str]] | None] = contextvars.ContextVar(
    "clew_command_sink", default=None
)


@contextlib.contextmanager
def recording_commands() -> Iterator[list[list[str]]]:
    """Within this block (and in tasks started from it), every command any
    :class:`Remote` runs is appended to the yielded list as ``[node, command line]``, in
    the order they start. Used to put "the commands run" on the fault ledger."""
    sink: list[list[str]] = []
    token = _command_sink.set(sink)
    try:
        yield sink
    finally:
        _command_sink.reset(token)


DEFAULT_MAX_CHANNELS: int = 10
"""How many commands (channels) may be open at once on one connection. OpenSSH's sshd
refuses more than ``MaxSessions`` (default 10); callers beyond the cap wait their turn."""

_BACKOFF_FIRST = 0.25  # seconds before the second try; doubles each time
_BACKOFF_MAX = 4.0


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A command that ran to completion on ``node``.

    ``command`` is the command line as sent (before any ``sudo`` wrapping); ``exit_status``
    is the remote exit status, negative when the process died of a signal (``-N`` for
    signal N with asyncssh; paramiko reports every signal, and a missing status, as -1);
    ``stdout``/``stderr`` are decoded as UTF-8 (undecodable bytes replaced); ``seconds`` is
    the wall time from the channel opening to the exit.
    """

    node: str
    command: str
    exit_status: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether the command exited with status 0."""
        return self.exit_status == 0


class TransientConnectError(Exception):
    """A backend's connection attempt failed in a way that may pass (refused, reset, timed
    out): :meth:`Remote.open` tries again. Anything else a backend raises is final."""


class CommandTimedOut(Exception):
    """Raised by a backend's :meth:`Remote._exec` at its deadline, carrying the output so
    far. The backend has closed the channel before raising it."""

    def __init__(self, stdout: bytes, stderr: bytes) -> None:
        super().__init__("timed out")
        self.stdout = stdout
        self.stderr = stderr


class ConnectionLostError(Exception):
    """Raised by a backend when the connection broke under a command or transfer."""


def shell_command(
    cmd: str | Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> str:
    """The shell command line that runs ``cmd`` (with ``env`` exported and in ``cwd``).

    A sequence is an argv: every element is quoted with :func:`shlex.quote`, so it reaches
    the node literally (``; rm -rf /`` is one argument, not a second command). A string is
    a shell script, passed as it is. The line is run by the user's login shell, which must
    be POSIX (sh, bash, dash, zsh).
    """
    if isinstance(cmd, str):
        script = cmd
    else:
        argv = list(cmd)
        if not argv:
            raise ConfigError("`cmd` must not be an empty argv")
        if not all(isinstance(a, str) for a in argv):
            raise ConfigError(f"`cmd` must be a str or a sequence of str, got {argv!r}")
        script = shlex.join(argv)
    prefix = []
    for key, value in (env or {}).items():
        if not key.isidentifier() or not key.isascii():
            raise ConfigError(f"`env` name {key!r} is not a valid variable name")
        prefix.append(f"export {key}={shlex.quote(value)}\n")
    if cwd is not None:
        prefix.append(f"cd -- {shlex.quote(cwd)} || exit 1\n")
    return "".join(prefix) + script


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


# Every command line starts by writing the process group id of the session's shell to
# stderr (sshd makes that shell a session and group leader), so that a command that times
# out can be stopped whole, not just abandoned. The line is removed from stderr.
_PGID_MARK = b"clew-pgid="
_PGID_REPORT = f"printf '{_PGID_MARK.decode()}%s\\n' \"$$\" >&2\n"
_STOP_TIMEOUT = 5.0


def _split_pgid(stderr: bytes) -> tuple[int | None, bytes]:
    """The process group reported at the start of ``stderr``, and the rest of it."""
    if not stderr.startswith(_PGID_MARK):
        return None, stderr
    head, _, rest = stderr.partition(b"\n")
    try:
        return int(head[len(_PGID_MARK) :]), rest
    except ValueError:
        return None, stderr


class Remote(ABC):
    """One node, reached over one SSH connection that every command reuses.

    Safe to use from many tasks at once: each command gets its own channel, and at most
    ``max_channels`` are open at a time (the rest wait). If the connection is lost, the
    command that was running raises :class:`SSHError` (it may or may not have run) and the
    next call reconnects. Make one with :func:`harness.control.connect`; close it with
    :meth:`close` or ``async with``.
    """

    #: The backend's name, as given to :func:`harness.control.connect`.
    backend: str = ""

    def __init__(
        self,
        node: Node,
        *,
        connect_timeout: float,
        retries: int,
        max_channels: int,
    ) -> None:
        if connect_timeout <= 0:
            raise ConfigError("`connect_timeout` must be positive")
        if retries < 1:
            raise ConfigError("`retries` must be at least 1 (1 means a single try)")
        if max_channels < 1:
            raise ConfigError("`max_channels` must be at least 1")
        self.node = node
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.max_channels = max_channels
        self._channels = asyncio.Semaphore(max_channels)
        self._reconnect_lock = asyncio.Lock()
        self._closed = False

    # ---- what a backend provides ---------------------------------------------------------

    @abstractmethod
    async def _attempt(self) -> None:
        """Open the connection once. Raise :class:`TransientConnectError` for failures
        worth retrying and :class:`SSHError` for final ones (auth, host key, key file)."""

    @abstractmethod
    def _is_connected(self) -> bool:
        """Whether the connection is open and usable."""

    @abstractmethod
    async def _exec(
        self, line: str, stdin: bytes | None, seconds: float
    ) -> tuple[int, bytes, bytes]:
        """Run ``line`` on a new channel, feed it ``stdin`` then EOF, and return
        ``(exit_status, stdout, stderr)``. After ``seconds`` close the channel and raise
        :class:`CommandTimedOut`; on a broken connection raise :class:`ConnectionLostError`."""

    @abstractmethod
    async def _put(self, local: Path, remote: str) -> None:
        """Copy ``local`` to ``remote`` over SFTP."""

    @abstractmethod
    async def _get(self, remote: str, local: Path) -> None:
        """Copy ``remote`` to ``local`` over SFTP."""

    @abstractmethod
    async def _disconnect(self) -> None:
        """Close the connection (harmless if it is closed already)."""

    # ---- connecting -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The node's name."""
        return self.node.name

    def target(self) -> str:
        """``user@host:port``, for messages."""
        n = self.node
        return f"{n.user}@{n.host}:{n.port}"

    def describe_auth(self) -> str:
        """How this remote authenticates, for messages."""
        n = self.node
        if n.key_file:
            return f"key {n.key_file}"
        if n.password is not None:
            return "a password"
        return "the SSH agent and default keys"

    def describe_known_hosts(self) -> str:
        """Which known_hosts file checks the host key, for messages."""
        if not self.node.check_host_key:
            return "host key not checked"
        return f"known_hosts {self.known_hosts_path()}"

    def known_hosts_path(self) -> str:
        """The known_hosts file that is checked: the node's, or the user's default."""
        return self.node.known_hosts or str(Path("~/.ssh/known_hosts").expanduser())

    async def open(self) -> None:
        """Connect, trying up to ``retries`` times with exponential backoff on transport
        failures only. :class:`SSHError` naming the node, what was tried and the last
        cause when it cannot."""
        started = time.monotonic()
        last: BaseException | None = None
        for attempt in range(1, self.retries + 1):
            try:
                await self._attempt()
                log.debug("connected to %s (%s) on try %d", self.name, self.target(), attempt)
                return
            except TransientConnectError as e:
                last = e
                log.info(
                    "cannot reach %s (%s), try %d of %d: %s",
                    self.name,
                    self.target(),
                    attempt,
                    self.retries,
                    e,
                )
                if attempt < self.retries:
                    pause = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (attempt - 1))
                    await asyncio.sleep(pause * random.uniform(0.8, 1.2))
        elapsed = time.monotonic() - started
        tries = "1 try" if self.retries == 1 else f"{self.retries} tries"
        raise SSHError(
            f"cannot reach node {self.name} at {self.target()} over SSH ({self.backend}, "
            f"{self.describe_auth()}, {self.describe_known_hosts()}): {last} "
            f"[{tries} in {elapsed:.1f} s, each limited to {self.connect_timeout:g} s]; "
            "check that the node is up, sshd listens on that port and nothing blocks it",
            node=self.name,
        )

    async def _ensure_connected(self) -> None:
        if self._closed:
            raise SSHError(
                f"the connection to node {self.name} ({self.target()}) was closed by "
                "this program; connect again",
                node=self.name,
            )
        if self._is_connected():
            return
        async with self._reconnect_lock:
            if not self._is_connected():
                log.info("reconnecting to %s (%s)", self.name, self.target())
                await self._disconnect()
                await self.open()

    # ---- the public API ---------------------------------------------------------------

    # The public calls take `timeout=` like asyncssh's and subprocess's: a per-call limit
    # is the API this layer promises (each is enforced with asyncio.timeout inside).
    async def run(
        self,
        cmd: str | Sequence[str],
        *,
        sudo: bool = False,
        stdin: str | bytes | None = None,
        timeout: float = DEFAULT_COMMAND_TIMEOUT,  # noqa: ASYNC109
        check: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        """Run ``cmd`` on the node and wait for it to finish.

        ``cmd`` is an argv (a sequence: each element reaches the node literally, whatever
        characters it holds) or a shell script (a str, passed as is). ``sudo=True`` runs it
        as root through ``sudo -n -- sh -c …`` unless the user is root already. ``stdin``
        is fed to the command, then EOF (no ``stdin`` means an empty one). ``env`` is
        exported and ``cwd`` entered before the command runs.

        Returns a :class:`CommandResult`. Raises :class:`CommandError` if the command
        exits non-zero and ``check`` is true, or if it runs past ``timeout`` seconds (the
        channel is then closed: nothing is left hanging). The timeout counts from the
        moment a channel is free (see ``max_channels``). Raises :class:`SSHError` if the
        connection fails; the command may then have run or not.
        """
        if timeout <= 0:
            raise ConfigError("`timeout` must be positive")
        shown = shell_command(cmd, env=env, cwd=cwd)
        sink = _command_sink.get()
        if sink is not None:
            sink.append([self.name, shown])
        as_root = sudo and self.node.user != "root"
        line = f"sudo -n -- sh -c {shlex.quote(shown)}" if as_root else shown
        data = stdin.encode() if isinstance(stdin, str) else stdin
        async with self._channels:
            await self._ensure_connected()
            started = time.monotonic()
            try:
                # The backend enforces the deadline; this one only catches a backend stuck
                # past it (a wedged thread), with some slack.
                async with asyncio.timeout(timeout + 5):
                    status, out, err = await self._exec(_PGID_REPORT + line, data, timeout)
            except (CommandTimedOut, TimeoutError) as e:
                partial = e if isinstance(e, CommandTimedOut) else CommandTimedOut(b"", b"")
                pgid, err = _split_pgid(partial.stderr)
                if pgid is not None:
                    await self._stop_group(pgid, as_root)
                raise CommandError(
                    node=self.name,
                    command=shown,
                    exit_status=None,
                    stdout=_decode(partial.stdout),
                    stderr=_decode(err),
                    reason=f"timed out after {timeout:g} s",
                ) from None
            except ConnectionLostError as e:
                raise SSHError(
                    f"lost the connection to node {self.name} ({self.target()}) while "
                    f"running `{shown}`: {e}; it may or may not have run",
                    node=self.name,
                ) from None
        err = _split_pgid(err)[1]
        result = CommandResult(
            node=self.name,
            command=shown,
            exit_status=status,
            stdout=_decode(out),
            stderr=_decode(err),
            seconds=time.monotonic() - started,
        )
        log.debug("%s: `%s` -> %d in %.3f s", self.name, shown, status, result.seconds)
        if check and status != 0:
            raise CommandError(
                node=self.name,
                command=shown,
                exit_status=status,
                stdout=result.stdout,
                stderr=result.stderr,
            )
        return result

    async def _stop_group(self, pgid: int, as_root: bool) -> None:
        """Best effort: SIGTERM the process group of a command that timed out, so that a
        hung command does not linger on the node. Daemons it started with ``setsid`` are in
        their own session and are not touched."""
        kill = f"kill -TERM -- -{pgid} 2>/dev/null; exit 0"
        if as_root:
            kill = f"sudo -n -- sh -c {shlex.quote(kill)}"
        try:
            await self._exec(kill, None, _STOP_TIMEOUT)
        except Exception as e:
            log.info("%s: could not stop timed-out process group %d: %r", self.name, pgid, e)

    async def upload(
        self,
        local: str | Path,
        remote: str,
        *,
        timeout: float = DEFAULT_TRANSFER_TIMEOUT,  # noqa: ASYNC109
    ) -> None:
        """Copy the local file ``local`` to the path ``remote`` on the node (over SFTP,
        replacing it). :class:`CommandError` naming the node and both paths if it fails or
        takes longer than ``timeout`` seconds."""
        src = Path(local)
        if not await asyncio.to_thread(src.is_file):
            raise CommandError(
                node=self.name,
                command=f"upload {src} -> {remote}",
                exit_status=None,
                stdout="",
                stderr="",
                reason=f"cannot upload: {src} is not a local file",
            )
        await self._transfer(
            f"upload {src} -> {self.name}:{remote}", self._put(src, remote), timeout
        )

    async def download(
        self,
        remote: str,
        local: str | Path,
        *,
        timeout: float = DEFAULT_TRANSFER_TIMEOUT,  # noqa: ASYNC109
    ) -> None:
        """Copy the file ``remote`` on the node to the local path ``local`` (over SFTP,
        replacing it). :class:`CommandError` naming the node and both paths if it fails or
        takes longer than ``timeout`` seconds."""
        dst = Path(local)
        await self._transfer(
            f"download {self.name}:{remote} -> {dst}", self._get(remote, dst), timeout
        )

    async def _transfer(self, what: str, op: Coroutine[Any, Any, None], seconds: float) -> None:
        try:
            async with self._channels:
                await self._ensure_connected()
                async with asyncio.timeout(seconds):
                    await op
        except TimeoutError:
            reason = f"timed out after {seconds:g} s"
        except ConnectionLostError as e:
            reason = f"lost the connection: {e}"
        except OSError as e:
            reason = f"failed: {e.strerror or e}"
        except SSHError:
            raise
        except Exception as e:  # backend-specific SFTP errors
            reason = f"failed: {e}"
        else:
            return
        finally:
            op.close()  # harmless if it ran; silences "never awaited" if it did not
        raise CommandError(
            node=self.name, command=what, exit_status=None, stdout="", stderr="", reason=reason
        )

    async def close(self) -> None:
        """Close the connection. Later calls raise :class:`SSHError`; closing twice is
        harmless."""
        self._closed = True
        await self._disconnect()

    async def __aenter__(self) -> Remote:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._is_connected() else "down"
        return f"<{type(self).__name__} {self.name} {self.target()} {state}>"
