"""The asyncssh backend (the default): native asyncio, about 9 ms per command on one
connection. See :mod:`harness.control.remote` for the contract it fulfils."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import asyncssh

from clusters.base import Node
from harness.control._diagnose import describe_transport_error, host_key_problem
from harness.control.remote import (
    CommandTimedOut,
    ConnectionLostError,
    Remote,
    TransientConnectError,
)
from harness.errors import SSHError

__all__ = ["AsyncsshRemote"]

log = logging.getLogger(__name__)

#: Seconds between keepalives; a connection whose peer vanished is noticed after 3 misses.
KEEPALIVE_INTERVAL = 15.0
#: How long to wait, after a channel closed without an exit status, for the connection
#: to be seen as broken.
_LOST_GRACE = 0.5


class AsyncsshRemote(Remote):
    """A :class:`Remote` over one :mod:`asyncssh` connection."""

    backend = "asyncssh"

    def __init__(self, node: Node, **kw: Any) -> None:
        super().__init__(node, **kw)
        self._conn: asyncssh.SSHClientConnection | None = None

    def _known_hosts(self) -> Any:
        if not self.node.check_host_key:
            return None
        path = self.known_hosts_path()
        if self.node.known_hosts is None and not Path(path).is_file():
            return asyncssh.import_known_hosts("")  # no default file: every host is unknown
        try:
            return asyncssh.read_known_hosts(path)
        except (OSError, ValueError) as e:
            raise SSHError(
                f"cannot check the host key of node {self.name} ({self.target()}): "
                f"cannot read known_hosts {path}: {getattr(e, 'strerror', None) or e}",
                node=self.name,
            ) from None

    def _auth(self) -> dict[str, Any]:
        n = self.node
        if n.key_file:
            try:
                key = asyncssh.read_private_key(n.key_file)
            except (OSError, asyncssh.KeyImportError) as e:
                raise SSHError(
                    f"cannot log in to node {self.name} ({self.target()}): cannot load key "
                    f"{n.key_file}: {getattr(e, 'strerror', None) or e}",
                    node=self.name,
                ) from None
            return {"client_keys": [key], "agent_path": None, "password": None}
        if n.password is not None:
            return {"client_keys": None, "agent_path": None, "password": n.password}
        return {}  # asyncssh's defaults: the agent, then ~/.ssh/id_*

    async def _attempt(self) -> None:
        n = self.node
        try:
            self._conn = await asyncssh.connect(
                n.host,
                n.port,
                username=n.user,
                known_hosts=self._known_hosts(),
                connect_timeout=self.connect_timeout,
                keepalive_interval=KEEPALIVE_INTERVAL,
                keepalive_count_max=3,
                config=None,  # the Node says everything; ~/.ssh/config must not change it
                **self._auth(),
            )
        except (asyncssh.HostKeyNotVerifiable, asyncssh.KeyExchangeFailed) as e:
            raise SSHError(host_key_problem(self, e.reason), node=self.name) from None
        except asyncssh.PermissionDenied as e:
            raise SSHError(
                f"node {self.name} ({self.target()}) refused to log in {n.user} with "
                f"{self.describe_auth()}: {e.reason}; check that the key is in the node's "
                "authorized_keys",
                node=self.name,
            ) from None
        except (OSError, TimeoutError, asyncssh.ConnectionLost) as e:
            raise TransientConnectError(describe_transport_error(e, self.connect_timeout)) from e
        except asyncssh.Error as e:
            raise SSHError(
                f"cannot connect to node {self.name} ({self.target()}): {e.reason}",
                node=self.name,
            ) from None

    def _is_connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def _exec(
        self, line: str, stdin: bytes | None, seconds: float
    ) -> tuple[int, bytes, bytes]:
        conn = self._conn
        assert conn is not None
        proc: asyncssh.SSHClientProcess[bytes] | None = None
        done = False
        try:
            async with asyncio.timeout(seconds):
                proc = await conn.create_process(line, encoding=None)
                # A command may exit (and the node close its channel) before taking all of
                # its stdin: that is its own business, and its exit status says how it went.
                # A connection that broke shows below as a missing exit status.
                with contextlib.suppress(BrokenPipeError):
                    if stdin:
                        proc.stdin.write(stdin)
                    proc.stdin.write_eof()
                out, err = await proc.communicate()
            done = True
        except TimeoutError:
            out, err = proc.collect_output() if proc else (b"", b"")
            raise CommandTimedOut(bytes(out or b""), bytes(err or b"")) from None
        except (OSError, asyncssh.Error) as e:
            raise ConnectionLostError(getattr(e, "reason", None) or str(e)) from None
        finally:
            if proc is not None and not done:
                # Timed out, cancelled or broken: ask the command to stop, drop the channel.
                with contextlib.suppress(OSError, asyncssh.Error):
                    proc.terminate()
                proc.close()
        status = proc.returncode
        if status is None:
            # No exit status or signal: the command died oddly, or the connection broke.
            try:
                async with asyncio.timeout(_LOST_GRACE):
                    await conn.wait_closed()
            except TimeoutError:
                return -1, bytes(out), bytes(err)
            raise ConnectionLostError("the connection closed under the command")
        return status, bytes(out), bytes(err)

    async def _put(self, local: Path, remote: str) -> None:
        assert self._conn is not None
        async with self._conn.start_sftp_client() as sftp:
            await sftp.put(str(local), remote)

    async def _get(self, remote: str, local: Path) -> None:
        assert self._conn is not None
        async with self._conn.start_sftp_client() as sftp:
            await sftp.get(remote, str(local))

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()
