"""The local provider's options, validated: prefix, subnet, bridge, addresses, timeouts.

See :mod:`clusters.local` for what each option means. Everything a person can get wrong
here is a :class:`~harness.errors.ConfigError` naming the option.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from clusters.base import ClusterSpec
from harness.errors import ConfigError

__all__ = ["OPTIONS", "LocalOptions"]

#: The options the local provider accepts in ``ClusterSpec.options``.
OPTIONS = ("prefix", "subnet", "bridge", "bridge_address", "first_host", "ready_timeout")
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]*$")
_IFNAMSIZ = 15  # Linux interface names hold at most 15 characters


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalOptions:
    """The local provider's resolved settings for one cluster (see the module docs)."""

    nodes: int
    prefix: str
    subnet: ipaddress.IPv4Network
    bridge: str
    bridge_address: ipaddress.IPv4Address
    first_host: int
    ready_timeout: float

    @classmethod
    def from_spec(cls, spec: ClusterSpec) -> LocalOptions:
        """The options of ``spec``, validated; :class:`ConfigError` naming the bad one."""
        opts = dict(spec.options)
        unknown = sorted(set(opts) - set(OPTIONS))
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(unknown)} for the local provider; "
                f"it accepts {', '.join(OPTIONS)}"
            )
        if not isinstance(spec.nodes, int) or spec.nodes < 1:
            raise ConfigError(f"`nodes` must be a positive integer, not {spec.nodes!r}")
        if spec.user != "root":
            raise ConfigError(f"the local provider's nodes log in as root; `user` is {spec.user!r}")
        prefix = opts.get("prefix", "clew-")
        if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
            raise ConfigError(
                f"option `prefix` must be lowercase letters, digits and '-', starting with a "
                f"letter (e.g. 'clew-'), not {prefix!r}"
            )
        longest = f"{prefix}v{spec.nodes}"
        if len(longest) > _IFNAMSIZ:
            raise ConfigError(
                f"option `prefix` {prefix!r} is too long for {spec.nodes} nodes: interface "
                f"name {longest!r} exceeds {_IFNAMSIZ} characters"
            )
        try:
            subnet = ipaddress.IPv4Network(str(opts.get("subnet", "10.77.0.0/24")), strict=True)
        except ValueError as e:
            raise ConfigError(f"option `subnet` is not an IPv4 network: {e}") from None
        bridge = opts.get("bridge", f"{prefix}br0")
        if (
            not isinstance(bridge, str)
            or not bridge.startswith(prefix)
            or not _PREFIX_RE.match(bridge)
        ):
            raise ConfigError(
                f"option `bridge` must be an interface name starting with the prefix "
                f"{prefix!r}, not {bridge!r}"
            )
        if len(bridge) > _IFNAMSIZ:
            raise ConfigError(f"option `bridge` {bridge!r} exceeds {_IFNAMSIZ} characters")
        try:
            bridge_address = ipaddress.IPv4Address(
                str(opts.get("bridge_address", subnet.network_address + 1))
            )
        except ValueError as e:
            raise ConfigError(f"option `bridge_address` is not an IPv4 address: {e}") from None
        first_host = opts.get("first_host", 11)
        if not isinstance(first_host, int) or first_host < 1:
            raise ConfigError(f"option `first_host` must be a positive integer, not {first_host!r}")
        ready_timeout = opts.get("ready_timeout", 10.0)
        if not isinstance(ready_timeout, int | float) or ready_timeout <= 0:
            raise ConfigError(f"option `ready_timeout` must be positive, not {ready_timeout!r}")
        self = cls(
            nodes=spec.nodes,
            prefix=prefix,
            subnet=subnet,
            bridge=bridge,
            bridge_address=bridge_address,
            first_host=first_host,
            ready_timeout=float(ready_timeout),
        )
        hosts = [bridge_address] + [self.node_ip(i) for i in range(1, spec.nodes + 1)]
        usable = (subnet.network_address, subnet.broadcast_address)
        for h in hosts:
            if h not in subnet or h in usable:
                raise ConfigError(
                    f"subnet {subnet} is too small for the bridge address {bridge_address} "
                    f"and {spec.nodes} nodes from .{first_host} (address {h} does not fit); "
                    "choose a larger `subnet` or a smaller `first_host`"
                )
        if bridge_address in hosts[1:]:
            raise ConfigError(f"option `bridge_address` {bridge_address} is also a node's address")
        return self

    def node_ip(self, i: int) -> ipaddress.IPv4Address:
        """The address of node ``n<i>``."""
        return self.subnet.network_address + (self.first_host + i - 1)

    def netns(self, i: int) -> str:
        """The network namespace of node ``n<i>``."""
        return f"{self.prefix}n{i}"

    def veth(self, i: int) -> tuple[str, str]:
        """The veth pair of node ``n<i>``: (host end, end created in the namespace)."""
        return f"{self.prefix}v{i}", f"{self.prefix}e{i}"

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON data, as recorded in the ledger."""
        return {
            "nodes": self.nodes,
            "prefix": self.prefix,
            "subnet": str(self.subnet),
            "bridge": self.bridge,
            "bridge_address": str(self.bridge_address),
            "first_host": self.first_host,
        }
