"""The qemu provider's options, validated: names, subnet, and every limit of a VM.

See :mod:`clusters.qemu` for what the provider does. Each option has a default here and
can be set with ``--option KEY=VALUE``; anything a person can get wrong is a
:class:`~harness.errors.ConfigError` naming the option.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from clusters._bridged import bridge_options, check_addresses_fit
from clusters.base import ClusterSpec
from harness.errors import ConfigError

__all__ = ["DEFAULTS", "OPTIONS", "QemuOptions"]

#: Every option, with its default (``None``: see the option's description).
DEFAULTS: dict[str, Any] = {
    "prefix": "clewq-",  # every host object: bridge <prefix>br0, taps <prefix>t<i>
    "subnet": "10.77.254.0/24",
    "bridge": None,  # <prefix>br0
    "bridge_address": None,  # the subnet's first address
    "first_host": 11,  # n1 is .11
    "image": None,  # a VM image digest or directory; default: the newest build
    "memory": 512,  # MB of guest RAM per VM
    "cpus": 1,  # guest CPU threads per VM
    "accel": "auto",  # auto (KVM if it works, else TCG), kvm, tcg
    "tb_size": 128,  # MB of TCG's translation cache per VM
    "boot_timeout": 600.0,  # seconds for a cold boot to reach sshd (minutes on a busy host)
    "restore_timeout": 180.0,  # seconds for a restored VM to answer on sshd
    "fault_timeout": None,  # seconds a fault command may take on a VM; default: 120 (TCG), 15
    "saved_states": True,  # restore from (and save) booted states in the image cache
    "memory_headroom": 256,  # MB the host must keep free beyond the VMs' RAM and overhead
}
OPTIONS = tuple(DEFAULTS)
#: MB of host memory a VM takes beyond its guest RAM (QEMU itself, TCG's cache excluded).
QEMU_OVERHEAD_MB = 80
_ACCELS = ("auto", "kvm", "tcg")


def _number(opts: dict[str, Any], key: str, *, low: float, high: float, integer: bool) -> Any:
    value = opts.get(key, DEFAULTS[key])
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            value = None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        what = "a whole number" if integer else "a number"
        raise ConfigError(f"cluster option `{key}` must be {what} from {low:g} to {high:g}, not "
                          f"{opts.get(key)!r}")  # fmt: skip
    return int(value) if integer else float(value)


def _flag(opts: dict[str, Any], key: str) -> bool:
    value = opts.get(key, DEFAULTS[key])
    if isinstance(value, str):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
    if isinstance(value, bool):
        return value
    raise ConfigError(f"cluster option `{key}` must be true or false, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class QemuOptions:
    """The qemu provider's resolved settings for one cluster."""

    nodes: int
    prefix: str
    subnet: ipaddress.IPv4Network
    bridge: str
    bridge_address: ipaddress.IPv4Address
    first_host: int
    image: str | None
    memory: int
    cpus: int
    accel: str
    tb_size: int
    boot_timeout: float
    restore_timeout: float
    fault_timeout: float | None
    saved_states: bool
    memory_headroom: int

    @classmethod
    def from_spec(cls, spec: ClusterSpec) -> QemuOptions:
        """The options of ``spec``, validated; :class:`ConfigError` naming the bad one."""
        net = bridge_options(
            spec, provider="qemu", accepted=OPTIONS, default_prefix=DEFAULTS["prefix"],
            default_subnet=DEFAULTS["subnet"], link=lambda prefix, i: f"{prefix}t{i}",
            link_what="tap name",
        )  # fmt: skip
        opts = dict(spec.options)
        accel = str(opts.get("accel", DEFAULTS["accel"]))
        if accel not in _ACCELS:
            raise ConfigError(
                f"cluster option `accel` must be one of {', '.join(_ACCELS)}, not {accel!r}"
            )
        image = opts.get("image")
        self = cls(
            nodes=spec.nodes,
            prefix=net.prefix,
            subnet=net.subnet,
            bridge=net.bridge,
            bridge_address=net.bridge_address,
            first_host=_number(opts, "first_host", low=1, high=65000, integer=True),
            image=str(image) if image else None,
            memory=_number(opts, "memory", low=128, high=65536, integer=True),
            cpus=_number(opts, "cpus", low=1, high=64, integer=True),
            accel=accel,
            tb_size=_number(opts, "tb_size", low=8, high=2048, integer=True),
            boot_timeout=_number(opts, "boot_timeout", low=1, high=3600, integer=False),
            restore_timeout=_number(opts, "restore_timeout", low=1, high=3600, integer=False),
            fault_timeout=(
                None
                if opts.get("fault_timeout") in (None, "")
                else _number(opts, "fault_timeout", low=1, high=3600, integer=False)
            ),
            saved_states=_flag(opts, "saved_states"),
            memory_headroom=_number(opts, "memory_headroom", low=0, high=1 << 20, integer=True),
        )
        nodes = [self.node_ip(i) for i in range(1, spec.nodes + 1)]
        check_addresses_fit(net, nodes, self.first_host)
        return self

    def node_ip(self, i: int) -> ipaddress.IPv4Address:
        """The address of node ``n<i>``."""
        return self.subnet.network_address + (self.first_host + i - 1)

    def tap(self, i: int) -> str:
        """The host's tap interface of node ``n<i>``."""
        return f"{self.prefix}t{i}"

    def mac(self, i: int) -> str:
        """Node ``n<i>``'s MAC address: QEMU's 52:54:00 and the last three bytes of its
        address, so the guest's network configuration can match it."""
        b = self.node_ip(i).packed
        return "52:54:00:" + ":".join(f"{x:02x}" for x in b[1:])

    def host_mb_needed(self) -> int:
        """MB of host memory the cluster needs: each VM's RAM, QEMU's overhead and TCG's
        translation cache, plus the headroom."""
        per_vm = self.memory + QEMU_OVERHEAD_MB + self.tb_size
        return self.nodes * per_vm + self.memory_headroom

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON data, as recorded in the ledger (to tell clusters apart)."""
        return {
            "nodes": self.nodes,
            "prefix": self.prefix,
            "subnet": str(self.subnet),
            "bridge": self.bridge,
            "bridge_address": str(self.bridge_address),
            "first_host": self.first_host,
            "image": self.image,
            "memory": self.memory,
            "cpus": self.cpus,
            "accel": self.accel,
            "tb_size": self.tb_size,
            "saved_states": self.saved_states,
        }
