"""Choosing a backend and connecting: :func:`connect`."""

from __future__ import annotations

from clusters.base import Node
from harness.control.remote import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CHANNELS,
    DEFAULT_RETRIES,
    Remote,
)
from harness.errors import ConfigError

__all__ = ["BACKENDS", "connect"]

#: The SSH client libraries clew can use, by name. The first is the default.
BACKENDS = ("asyncssh", "paramiko")


def _backend_class(backend: str) -> type[Remote]:
    if backend == "asyncssh":
        from harness.control.asyncssh_backend import AsyncsshRemote

        return AsyncsshRemote
    if backend == "paramiko":
        from harness.control.paramiko_backend import ParamikoRemote

        return ParamikoRemote
    raise ConfigError(f"unknown SSH backend {backend!r}; choose one of {', '.join(BACKENDS)}")


async def connect(
    node: Node,
    *,
    backend: str = "asyncssh",
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    max_channels: int = DEFAULT_MAX_CHANNELS,
) -> Remote:
    """An open :class:`Remote` for ``node``, over the SSH library ``backend``.

    Each try may take ``connect_timeout`` seconds; up to ``retries`` tries are made, with
    exponential backoff, but only after transport failures (refused, reset, timed out).
    Authentication and host-key failures raise at once. Raises :class:`SSHError` naming the
    node, what was tried and why it failed; :class:`ConfigError` for an unknown backend or
    a bad number. At most ``max_channels`` commands run at once on the connection.
    """
    cls = _backend_class(backend)
    remote = cls(node, connect_timeout=connect_timeout, retries=retries, max_channels=max_channels)
    try:
        await remote.open()
    except BaseException:
        await remote.close()
        raise
    return remote
