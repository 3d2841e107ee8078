"""What the providers whose nodes sit on a host bridge of clew's own share (the local
provider's namespaces, the qemu provider's VMs): the network options (name prefix, subnet,
bridge, its address, the nodes' first address), validated with errors naming the option,
and the checks of a state directory before ``up`` (whose cluster it is, whether the one
up there is the one asked for, whether the subnet is free on this host).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusters import _netns
from clusters._ledger import LOCK_FILE
from clusters.base import Cluster, ClusterSpec, down_command
from harness.errors import ClusterConflictError, ClusterError, ConfigError

__all__ = [
    "IFNAMSIZ",
    "BridgeOptions",
    "bridge_options",
    "check_addresses_fit",
    "check_config",
    "check_foreign_files",
    "check_provider",
    "check_subnet_free",
]

#: Linux interface names hold at most 15 characters.
IFNAMSIZ = 15
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeOptions:
    """A bridged cluster's network: every host object's name starts with ``prefix``."""

    prefix: str
    subnet: ipaddress.IPv4Network
    bridge: str
    bridge_address: ipaddress.IPv4Address


def bridge_options(
    spec: ClusterSpec,
    *,
    provider: str,
    accepted: Iterable[str],
    default_prefix: str,
    default_subnet: str,
    link: Callable[[str, int], str],
    link_what: str,
) -> BridgeOptions:
    """The network options of ``spec`` for ``provider``, validated after refusing options
    it does not accept, a node count below 1 and a login other than root.
    ``link(prefix, i)`` names node ``n<i>``'s host interface (``link_what``: "tap name",
    "interface name"), which must fit Linux's 15 characters for the last node.
    :class:`ConfigError` naming the bad option."""
    opts: Mapping[str, Any] = spec.options
    accepted = tuple(accepted)
    unknown = sorted(set(opts) - set(accepted))
    if unknown:
        raise ConfigError(
            f"unknown cluster option(s) {', '.join(unknown)} for the {provider} provider; "
            f"it accepts {', '.join(accepted)}"
        )
    if not isinstance(spec.nodes, int) or spec.nodes < 1:
        raise ConfigError(f"`nodes` must be a positive integer, not {spec.nodes!r}")
    if spec.user != "root":
        raise ConfigError(
            f"the {provider} provider's nodes log in as root; `user` is {spec.user!r}"
        )
    prefix = opts.get("prefix", default_prefix)
    if not isinstance(prefix, str) or not _NAME_RE.match(prefix):
        raise ConfigError(
            "cluster option `prefix` must be lowercase letters, digits and '-', starting with a "
            f"letter (e.g. {default_prefix!r}), not {prefix!r}"
        )
    longest = link(prefix, spec.nodes)
    if len(longest) > IFNAMSIZ:
        raise ConfigError(
            f"cluster option `prefix` {prefix!r} is too long for {spec.nodes} nodes: {link_what} "
            f"{longest!r} exceeds {IFNAMSIZ} characters"
        )
    try:
        subnet = ipaddress.IPv4Network(str(opts.get("subnet", default_subnet)), strict=True)
    except ValueError as e:
        raise ConfigError(f"cluster option `subnet` is not an IPv4 network: {e}") from None
    bridge = opts.get("bridge") or f"{prefix}br0"
    if (
        not isinstance(bridge, str)
        or not bridge.startswith(prefix)
        or not _NAME_RE.match(bridge)
        or len(bridge) > IFNAMSIZ
    ):
        raise ConfigError(
            f"cluster option `bridge` must be an interface name starting with the prefix "
            f"{prefix!r} "
            f"(lowercase letters, digits and '-', at most {IFNAMSIZ} characters), not {bridge!r}"
        )
    try:
        bridge_address = ipaddress.IPv4Address(
            str(opts.get("bridge_address") or subnet.network_address + 1)
        )
    except ValueError as e:
        raise ConfigError(f"cluster option `bridge_address` is not an IPv4 address: {e}") from None
    return BridgeOptions(prefix=prefix, subnet=subnet, bridge=bridge, bridge_address=bridge_address)


def check_addresses_fit(
    net: BridgeOptions, node_ips: list[ipaddress.IPv4Address], first_host: int
) -> None:
    """:class:`ConfigError` unless the bridge's and every node's address are distinct
    usable addresses of the subnet."""
    subnet, bridge_address = net.subnet, net.bridge_address
    for h in [bridge_address, *node_ips]:
        if h not in subnet or h in (subnet.network_address, subnet.broadcast_address):
            raise ConfigError(
                f"subnet {subnet} is too small for the bridge address {bridge_address} "
                f"and {len(node_ips)} nodes from .{first_host} (address {h} does not fit); "
                "choose a larger `subnet` or a smaller `first_host`"
            )
    if bridge_address in node_ips:
        raise ConfigError(
            f"cluster option `bridge_address` {bridge_address} is also a node's address"
        )


def check_provider(state: Path, provider: str) -> None:
    """:class:`ClusterConflictError` if the cluster recorded in ``state`` is another
    provider's (nothing if none is recorded there, or it cannot be read)."""
    try:
        other = Cluster.load(state).provider
    except ClusterError:
        return  # nothing readable is up there: nothing to clash with
    if other != provider:
        raise ClusterConflictError(
            f"the cluster in {state} was made by the {other!r} provider, not "
            f"{provider!r}; use it with --provider {other}, or use another state directory"
        )


def check_config(
    state: Path, provider: str, up: Mapping[str, Any], wanted: Mapping[str, Any], how: str
) -> None:
    """:class:`ClusterConflictError` naming each difference if the cluster up in ``state`` (its
    ledger's config ``up``) is not the one ``wanted``; ``how`` says how else to get one
    (e.g. "use another state directory")."""
    if dict(up) != dict(wanted):
        diff = ", ".join(
            f"{k}: {up.get(k)!r} is up, {v!r} asked" for k, v in wanted.items() if up.get(k) != v
        )
        raise ClusterConflictError(
            f"a different {provider} cluster is already up in {state} ({diff}); bring it "
            f"down first with `{down_command(state)}`, or {how}"
        )


def check_subnet_free(subnet: ipaddress.IPv4Network, how: str) -> None:
    """:class:`ClusterConflictError` if ``subnet`` overlaps an address or route of this host;
    ``how`` says how to choose another (e.g. "with --option subnet=...")."""
    used = _netns.overlaps(subnet)
    if used:
        raise ClusterConflictError(
            f"subnet {subnet} is already in use on this host: {'; '.join(used)}. "
            f"Choose a free one {how}"
        )


def check_foreign_files(state: Path, provider: str, names: Iterable[str]) -> None:
    """:class:`ClusterConflictError` if ``state`` (which has no ledger) holds any of ``names``, the
    files a ``provider`` cluster keeps there (its lock aside, which taking it made): no
    cluster of ours made them, so clew will not overwrite them."""
    foreign = [n for n in names if n != LOCK_FILE and (state / n).exists()]
    if foreign:
        raise ClusterConflictError(
            f"the state directory {state} already holds {', '.join(foreign)}, which no "
            f"{provider} cluster there created (it has no ledger); clew will not overwrite "
            "them. Choose an empty or new state directory"
        )
