"""Node addresses and names as the network nemeses need them: literal IPs split by family,
names resolved on a node, and the shape of tags and host names they accept."""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from harness.errors import NemesisError

if TYPE_CHECKING:
    from harness.api import Node

__all__ = [
    "HOSTNAME_RE",
    "TAG_RE",
    "is_literal",
    "peer_addresses",
    "resolve_script",
    "split_families",
]

#: What a tag (the name of clew's tables, chains and directories) may look like.
TAG_RE = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
#: What a peer's host name may look like (before it is resolved on a node).
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")


def split_families(addresses: Iterable[str]) -> tuple[list[str], list[str]]:
    """The IPv4 and IPv6 literals among ``addresses``, each sorted and deduplicated;
    ``ValueError`` for anything that is not a literal address."""
    v4: set[str] = set()
    v6: set[str] = set()
    for a in addresses:
        ip = ipaddress.ip_address(a)  # ValueError for anything but a literal address
        (v4 if ip.version == 4 else v6).add(str(ip))
    return sorted(v4, key=ipaddress.IPv4Address), sorted(v6, key=ipaddress.IPv6Address)


def resolve_script(names: Iterable[str]) -> str:
    """A shell script printing, per name, the name and every address it resolves to on
    the node where it runs (one line each)."""
    # One line per name: the name, then every address it resolves to on this node.
    quoted = " ".join(shlex.quote(n) for n in names)
    return (
        f"for n in {quoted}; do printf '%s' \"$n\"; "
        "getent ahosts \"$n\" | awk '{print $1}' | sort -u | "
        "while read -r a; do printf ' %s' \"$a\"; done; echo; done\n"
    )


def is_literal(address: str) -> bool:
    """Whether ``address`` is a literal IPv4/IPv6 address (not a name)."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


async def peer_addresses(
    node: str, peers: Iterable[Node], run: Callable[[str], Awaitable[str]]
) -> dict[str, tuple[str, ...]]:
    """Every peer's addresses as ``node`` sees them: a literal address as it is, a name
    resolved on ``node`` (``run`` runs a shell script there and returns its output).
    :class:`NemesisError`, naming the node and the peer, for a name that is not a host
    name or does not resolve to a literal address."""
    peers = list(peers)
    names = sorted({p.peer_address for p in peers if not is_literal(p.peer_address)})
    bad = [n for n in names if not HOSTNAME_RE.match(n)]
    if bad:
        raise NemesisError(f"peer address(es) {', '.join(bad)} are neither IPs nor hostnames")
    resolved: dict[str, tuple[str, ...]] = {}
    if names:
        for line in (await run(resolve_script(names))).splitlines():
            name, *found = line.split()
            resolved[name] = tuple(a for a in found if is_literal(a))
    addresses: dict[str, tuple[str, ...]] = {}
    for p in peers:
        addrs = (p.peer_address,) if is_literal(p.peer_address) else resolved.get(p.peer_address)
        if not addrs:
            raise NemesisError(
                f"on {node}: peer {p.name}'s address {p.peer_address!r} does not resolve"
            )
        addresses[p.name] = addrs
    return addresses
