"""The local provider's options, validated: prefix, subnet, bridge, addresses, timeouts.

See :mod:`clusters.local` for what each option means. Everything a person can get wrong
here is a :class:`~harness.errors.ConfigError` naming the option.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any

from clusters._bridged import bridge_options, check_addresses_fit
from clusters.base import ClusterSpec
from harness.errors import ConfigError

__all__ = ["OPTIONS", "LocalOptions"]

#: The options the local provider accepts in ``ClusterSpec.options``.
OPTIONS = ("prefix", "subnet", "bridge", "bridge_address", "first_host", "ready_timeout")


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
        net = bridge_options(
            spec, provider="local", accepted=OPTIONS, default_prefix="clew-",
            default_subnet="10.77.0.0/24", link=lambda prefix, i: f"{prefix}v{i}",
            link_what="interface name",
        )  # fmt: skip
        first_host = spec.options.get("first_host", 11)
        if not isinstance(first_host, int) or first_host < 1:
            raise ConfigError(
                f"cluster option `first_host` must be a positive integer, not {first_host!r}"
            )
        ready_timeout = spec.options.get("ready_timeout", 10.0)
        if (isinstance(ready_timeout, bool) or not isinstance(ready_timeout, int | float)
                or not math.isfinite(ready_timeout) or ready_timeout <= 0):  # (nan passed)
            raise ConfigError(
                f"cluster option `ready_timeout` must be positive, not {ready_timeout!r}"
            )
        self = cls(
            nodes=spec.nodes,
            prefix=net.prefix,
            subnet=net.subnet,
            bridge=net.bridge,
            bridge_address=net.bridge_address,
            first_host=first_host,
            ready_timeout=float(ready_timeout),
        )
        check_addresses_fit(net, [self.node_ip(i) for i in range(1, spec.nodes + 1)], first_host)
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
