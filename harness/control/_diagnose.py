"""Messages for connection failures, shared by the backends: a person reading one should
know which node, what was tried, and what to do next."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import asyncssh

if TYPE_CHECKING:
    from harness.control.remote import Remote

__all__ = ["describe_transport_error", "host_key_problem", "known_host_keys"]


def describe_transport_error(e: BaseException, connect_timeout: float) -> str:
    """A short phrase for a transport failure (refused, reset, timed out, unresolvable)."""
    if isinstance(e, TimeoutError):
        return f"no SSH answer within {connect_timeout:g} s"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    if isinstance(e, ConnectionResetError):
        return "connection reset by the node"
    if isinstance(e, OSError):
        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return f"{e.strerror} (no route to the node)"
        text = e.strerror or str(e) or type(e).__name__
        return f"{text} (errno {e.errno})" if e.errno else text
    reason = getattr(e, "reason", None)
    return str(reason or e) or type(e).__name__


def known_host_keys(path: str, host: str, port: int) -> list[str] | None:
    """Fingerprints of the keys ``path`` holds for ``host`` at ``port`` (``None`` when the
    file cannot be read)."""
    try:
        known = asyncssh.read_known_hosts(path)
    except (OSError, ValueError):
        return None
    keys = known.match(host, host, port if port != 22 else None)[0]
    return [f"{k.get_algorithm()} {k.get_fingerprint()}" for k in keys]


def host_key_problem(remote: Remote, detail: str) -> str:
    """Why ``remote``'s host key was not accepted: a mismatch (the known_hosts file holds
    other keys for that host) or an unknown host, naming the file and the fix."""
    n = remote.node
    path = remote.known_hosts_path()
    entry = n.host if n.port == 22 else f"[{n.host}]:{n.port}"
    keys = known_host_keys(path, n.host, n.port)
    where = f"node {remote.name} ({remote.target()})"
    if keys:
        return (
            f"host key mismatch for {where}: the key it presents is not the one "
            f"{path} holds for {entry} ({', '.join(keys)}). The node may have been "
            f"rebuilt, or something sits in between. If the change is expected, remove the "
            f"old entry: ssh-keygen -R '{entry}' -f {path}"
        )
    return (
        f"host key of {where} is not in known_hosts {path} (no entry for {entry}; "
        f"{detail}). Add it after checking it: ssh-keyscan -p {n.port} {n.host} >> {path}"
    )
