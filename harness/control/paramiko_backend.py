"""The paramiko backend: blocking paramiko calls run in a per-remote thread pool, behind the
same async API as the asyncssh backend. About as fast as asyncssh on loopback once
TCP_NODELAY is set (paramiko leaves Nagle's algorithm on), and independent of it, which
makes it a useful second opinion."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import paramiko

from clusters.base import Node
from harness.control._diagnose import describe_transport_error, host_key_problem
from harness.control.remote import (
    CommandTimedOut,
    ConnectionLostError,
    Remote,
    TransientConnectError,
)
from harness.errors import SSHError

__all__ = ["ParamikoRemote"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_READ = 65536
#: How long to wait, after a channel closed without an exit status, for the connection
#: to be seen as broken.
_LOST_GRACE = 0.5


class _UnknownHost(paramiko.SSHException):
    pass


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        raise _UnknownHost(f"no {key.get_name()} key for {hostname}")


class _AcceptWithoutSaving(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        return None


class ParamikoRemote(Remote):
    """A :class:`Remote` over one :mod:`paramiko` connection, driven from worker threads."""

    backend = "paramiko"

    def __init__(self, node: Node, **kw: Any) -> None:
        super().__init__(node, **kw)
        self._client: paramiko.SSHClient | None = None
        # One thread per channel, plus one for connecting.
        self._pool = ThreadPoolExecutor(
            max_workers=self.max_channels + 1, thread_name_prefix=f"clew-ssh-{node.name}"
        )

    async def _in_thread(
        self, fn: Callable[..., T], *args: Any, on_cancel: Callable[[], None] | None = None
    ) -> T:
        """``fn(*args)`` in this remote's pool; ``on_cancel`` unblocks it if we give up."""
        fut = asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        try:
            return await fut
        except asyncio.CancelledError:
            if on_cancel is not None:
                on_cancel()
            raise

    # ---- connecting -------------------------------------------------------------------

    def _new_client(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if not self.node.check_host_key:
            client.set_missing_host_key_policy(_AcceptWithoutSaving())
            return client
        path = self.known_hosts_path()
        if self.node.known_hosts is not None or Path(path).is_file():
            try:
                client.load_host_keys(path)
            except (OSError, paramiko.SSHException) as e:
                raise SSHError(
                    f"cannot check the host key of node {self.name} ({self.target()}): "
                    f"cannot read known_hosts {path}: {getattr(e, 'strerror', None) or e}",
                    node=self.name,
                ) from None
        client.set_missing_host_key_policy(_RejectUnknown())
        return client

    def _auth(self) -> dict[str, Any]:
        n = self.node
        if n.key_file:
            try:
                key = paramiko.PKey.from_path(n.key_file)
            except (OSError, paramiko.SSHException, ValueError) as e:
                raise SSHError(
                    f"cannot log in to node {self.name} ({self.target()}): cannot load key "
                    f"{n.key_file}: {getattr(e, 'strerror', None) or e}",
                    node=self.name,
                ) from None
            return {"pkey": key, "allow_agent": False, "look_for_keys": False}
        if n.password is not None:
            return {"password": n.password, "allow_agent": False, "look_for_keys": False}
        return {"allow_agent": True, "look_for_keys": True}

    def _connect_blocking(
        self, client: paramiko.SSHClient, auth: dict[str, Any], abandoned: threading.Event
    ) -> None:
        t = self.connect_timeout
        n = self.node
        sock = socket.create_connection((n.host, n.port), timeout=t)
        # Without TCP_NODELAY every command waits ~40 ms on Nagle's algorithm meeting the
        # peer's delayed ACK (47 ms -> 6 ms per command on loopback).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if abandoned.is_set():
            sock.close()
            raise TimeoutError
        client.connect(
            n.host,
            n.port,
            username=n.user,
            sock=sock,
            timeout=t,
            banner_timeout=t,
            auth_timeout=t,
            channel_timeout=t,
            **auth,
        )
        if abandoned.is_set():  # the caller gave up while we finished: do not leak it
            client.close()
            raise TimeoutError

    async def _attempt(self) -> None:
        client = self._new_client()
        auth = self._auth()
        abandoned = threading.Event()

        def give_up() -> None:
            abandoned.set()
            client.close()

        try:
            # paramiko bounds each phase separately; this bounds the whole attempt.
            async with asyncio.timeout(self.connect_timeout):
                await self._in_thread(
                    self._connect_blocking, client, auth, abandoned, on_cancel=give_up
                )
        except TimeoutError as e:
            give_up()
            raise TransientConnectError(describe_transport_error(e, self.connect_timeout)) from e
        except (paramiko.BadHostKeyException, _UnknownHost) as e:
            client.close()
            raise SSHError(host_key_problem(self, str(e)), node=self.name) from None
        except paramiko.AuthenticationException as e:
            client.close()
            raise SSHError(
                f"node {self.name} ({self.target()}) refused to log in {self.node.user} with "
                f"{self.describe_auth()}: {e}; check that the key is in the node's "
                "authorized_keys",
                node=self.name,
            ) from None
        except (OSError, EOFError, paramiko.SSHException) as e:
            client.close()
            text = describe_transport_error(e, self.connect_timeout)
            if "banner" in text:
                text = f"no SSH answer within {self.connect_timeout:g} s ({text})"
            raise TransientConnectError(text) from e
        self._client = client

    def _is_connected(self) -> bool:
        if self._client is None:
            return False
        transport = self._client.get_transport()
        return transport is not None and transport.is_active()

    # ---- commands ---------------------------------------------------------------------

    def _exec_blocking(
        self, line: str, stdin: bytes | None, timeout: float, box: list[paramiko.Channel]
    ) -> tuple[int, bytes, bytes]:
        deadline = time.monotonic() + timeout
        assert self._client is not None
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise ConnectionLostError("the connection is closed")
        out, err = bytearray(), bytearray()
        try:
            chan = transport.open_session(timeout=timeout)
        except (OSError, EOFError, paramiko.SSHException) as e:
            if isinstance(e, paramiko.ChannelException):
                raise ConnectionLostError(f"the node refused a new channel: {e}") from None
            raise ConnectionLostError(str(e) or type(e).__name__) from None
        box.append(chan)
        try:
            chan.settimeout(max(0.001, deadline - time.monotonic()))
            chan.exec_command(line)
            try:
                if stdin:
                    chan.sendall(stdin)
                chan.shutdown_write()
            except TimeoutError:
                raise
            except OSError:
                # A command may exit (and the node close its channel) before taking all of
                # its stdin: its exit status says how it went. A dead transport is lost.
                if not transport.is_active():
                    raise

            def drain() -> None:
                while chan.recv_ready():
                    out.extend(chan.recv(_READ))
                while chan.recv_stderr_ready():
                    err.extend(chan.recv_stderr(_READ))

            # The channel's fileno() is readable when stdout or stderr has data, or at EOF.
            while not chan.eof_received and not chan.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                select.select([chan], [], [], left)
                drain()
            drain()
            if not chan.status_event.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError
            if chan.exit_status == -1:
                # No exit status: either the command died oddly or the connection broke
                # (paramiko closes the channels just before it marks the transport dead).
                limit = time.monotonic() + _LOST_GRACE
                while transport.is_active() and time.monotonic() < limit:
                    time.sleep(0.01)
                if not transport.is_active():
                    raise ConnectionLostError("the connection closed under the command")
            return chan.exit_status, bytes(out), bytes(err)
        except TimeoutError:
            raise CommandTimedOut(bytes(out), bytes(err)) from None
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise ConnectionLostError(str(e) or type(e).__name__) from None
        finally:
            # On a transport that just died, closing the channel raises (EOFError): the
            # outcome above stands, and the next command reconnects.
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                chan.close()

    async def _exec(
        self, line: str, stdin: bytes | None, seconds: float
    ) -> tuple[int, bytes, bytes]:
        box: list[paramiko.Channel] = []

        def close_channel() -> None:
            for chan in box:
                chan.close()

        return await self._in_thread(
            self._exec_blocking, line, stdin, seconds, box, on_cancel=close_channel
        )

    # ---- files ------------------------------------------------------------------------

    async def _sftp(self, op: Callable[[paramiko.SFTPClient], object]) -> None:
        assert self._client is not None
        client = self._client
        box: list[paramiko.SFTPClient] = []

        def work() -> None:
            sftp = client.open_sftp()
            box.append(sftp)
            try:
                op(sftp)
            finally:
                sftp.close()

        def abandon() -> None:
            for sftp in box:
                sftp.close()

        await self._in_thread(work, on_cancel=abandon)

    async def _put(self, local: Path, remote: str) -> None:
        await self._sftp(lambda sftp: sftp.put(str(local), remote))

    async def _get(self, remote: str, local: Path) -> None:
        # No prefetch: paramiko's prefetch thread can still send read requests once the
        # file and channel are closed, and dies of "Socket is closed" (paramiko#2379;
        # seen once in a full suite). Sequential reads cost a round trip per 32 KiB.
        await self._sftp(lambda sftp: sftp.get(remote, str(local), prefetch=False))

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.get_running_loop().run_in_executor(None, client.close)

    async def close(self) -> None:
        """Close the connection and stop this remote's worker threads."""
        await super().close()
        self._pool.shutdown(wait=False, cancel_futures=True)
