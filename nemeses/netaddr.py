"""Node addresses and names as the network nemeses need them: literal IPs split by family,
names resolved on a node, and the shape of tags and host names they accept."""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable

__all__ = ["HOSTNAME_RE", "TAG_RE", "is_literal", "resolve_script", "split_families"]

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
