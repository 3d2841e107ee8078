"""The vagrant provider with ``network=bridge``: libvirt boxes made from clew's VM image,
on a bridge of clew's own, with no NAT network anywhere.

``up``, as root:

1. the box ``clew/vm-<image hash>`` is made from the VM image of ``clew image build --vm``
   and added to Vagrant if it is not there (:mod:`clusters.vagrant_box`);
2. the ledger (:mod:`clusters._ledger`) is written, then the bridge ``<prefix>br0``
   (host ``.1``) is recorded and created, as the qemu provider does;
3. each node gets an SSH host key, the cluster's login key and a configuration archive
   (name, ``/etc/hosts``, its static address for its MAC), the same the qemu provider
   hands its VMs: here through ``libvirt.qemuargs`` (``-fw_cfg``);
4. a libvirtd of the cluster's own starts (:mod:`clusters._libvirtd`; recorded first);
5. ``<state>/Vagrantfile`` asks vagrant-libvirt for domains ``<prefix>n<i>`` with no
   management network (``mgmt_attach = false``), one ``public_network`` of type bridge on
   clew's bridge with the node's MAC, the box's kernel booted directly, TCG unless KVM
   works, a serial console in ``<state>/n<i>.console``, a storage pool ``default`` in
   ``<state>/pool``, and Vagrant logging in as root with the cluster's key
   (``ssh.insert_key = false``, ``ssh.sudo_command = "%c"``: the image has no sudo);
6. ``vagrant up`` runs. vagrant-libvirt finds a node's address in the host's ARP table
   (``/proc/net/arp``) when there is no libvirt network, so clew sends each node a UDP
   datagram (port 9) meanwhile: the host's ARP request fills that table as soon as the guest's
   network is up.

``down`` runs ``vagrant destroy -f``, then removes what libvirt still holds (domains, the
box's volume in the pool, the pool), stops the daemon, deletes the bridge and the state
files: nothing is left, also after a crashed ``up``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusters import _libvirtd, _netns, _sshd
from clusters._bridged import check_subnet_free
from clusters._ledger import LEDGER_FILE, LOCK_FILE, Ledger, state_lock
from clusters._ruby import ruby_str
from clusters.base import CLUSTER_FILE, Capability, Cluster, ClusterSpec, Node, down_command
from clusters.doctor import run_tool
from clusters.qemu import TCG_FAULT_LEASE, TCG_FAULT_TIMEOUT, _node_archive
from clusters.qemu_vm import choose_accel
from clusters.static import remote_capabilities
from clusters.vagrant_box import add_box
from clusters.vm_image import find_vm_image
from harness.errors import ClusterConflictError, ClusterError, ConfigError
from nemeses.base import DEFAULT_FAULT_LEASE, DEFAULT_FAULT_TIMEOUT

__all__ = ["BridgeNet", "bridge_net", "down_bridged", "render_libvirt_vagrantfile", "up_bridged"]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "clewv-"
DEFAULT_SUBNET = "10.77.243.0/24"
DEFAULT_MEMORY = 512
KEY_FILE = "id_ed25519"
KNOWN_HOSTS = "known_hosts"
SSH_CONFIG = "ssh_config"
LIBVIRT_DIR = "libvirt"
_FILES = ("Vagrantfile", CLUSTER_FILE, KEY_FILE, KEY_FILE + ".pub", KNOWN_HOSTS, SSH_CONFIG,
          "vagrant-up.log")  # fmt: skip
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,9}$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True, slots=True)
class BridgeNet:
    """The bridged cluster's names and addresses."""

    prefix: str
    subnet: ipaddress.IPv4Network
    first_host: int

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br0"

    @property
    def host_address(self) -> str:
        return str(self.subnet.network_address + 1)

    def ip(self, i: int) -> str:
        """Node ``n<i>``'s address: ``.first_host + i - 1``."""
        return str(self.subnet.network_address + self.first_host + i - 1)

    def mac(self, i: int) -> str:
        """Node ``n<i>``'s MAC: ``52:54:00`` and the last three bytes of its address."""
        return "52:54:00:" + ":".join(
            f"{b:02x}" for b in ipaddress.IPv4Address(self.ip(i)).packed[1:]
        )


def bridge_net(opts: dict[str, Any], count: int) -> BridgeNet:
    """The network options (``prefix``, ``subnet``, ``first_host``), validated;
    :class:`ConfigError` naming the bad one."""
    prefix = str(opts.get("prefix", DEFAULT_PREFIX))
    if not _PREFIX_RE.match(prefix):
        raise ConfigError(
            f"cluster option prefix={prefix!r}: lowercase letters, digits and '-', starting with a "
            "letter, at most 10 characters (the bridge is <prefix>br0)"
        )
    try:
        subnet = ipaddress.IPv4Network(str(opts.get("subnet", DEFAULT_SUBNET)), strict=True)
    except ValueError as e:
        raise ConfigError(f"cluster option subnet: {e}") from None
    try:
        first = int(opts.get("first_host", 11))
    except (TypeError, ValueError):
        raise ConfigError(
            f"cluster option first_host={opts.get('first_host')!r} must be a number"
        ) from None
    net = BridgeNet(prefix=prefix, subnet=subnet, first_host=first)
    last = ipaddress.IPv4Address(net.subnet.network_address + first + count - 1)
    if first < 2 or last >= subnet.broadcast_address:
        raise ConfigError(
            f"subnet {subnet} has no room for {count} nodes from .{first} (the host is .1)"
        )
    return net


def render_libvirt_vagrantfile(
    net: BridgeNet, names: list[str], *, box: str, memory: int, cpus: int, state: Path,
    libvirt_uri: str, kvm: bool, boot_timeout: int,
) -> str:  # fmt: skip
    """The Vagrantfile of a bridged cluster (see the module docstring); every value is
    written as a Ruby literal that cannot run code (:func:`clusters._ruby.ruby_str`)."""
    nodes = ",\n".join(
        f"  [{ruby_str(n)}, {ruby_str(net.ip(i))}, {ruby_str(net.mac(i))}]"
        for i, n in enumerate(names, start=1)
    )
    cpu = ('lv.cpu_mode = "host-passthrough"' if kvm
           else 'lv.cpu_mode = "custom"\n    lv.cpu_model = "qemu64"')  # fmt: skip
    return f"""# Written by clew for `clew cluster up --provider vagrant --option network=bridge`.
# `clew cluster down` runs `vagrant destroy -f` here, then removes what libvirt still
# holds, stops the cluster's libvirtd and deletes the bridge {net.bridge}.
STATE = {ruby_str(state)}
NODES = [
{nodes}
]

Vagrant.configure("2") do |config|
  config.vm.box = {ruby_str(box)}
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.boot_timeout = {boot_timeout}
  # The image has root's login key from its fw_cfg archive, no vagrant user, no sudo.
  config.ssh.username = "root"
  config.ssh.private_key_path = File.join(STATE, {ruby_str(KEY_FILE)})
  config.ssh.insert_key = false
  config.ssh.sudo_command = "%c"
  config.vm.provider "libvirt" do |lv|
    lv.uri = {ruby_str(libvirt_uri)}
    lv.driver = "{"kvm" if kvm else "qemu"}"
    {cpu}
    lv.memory = {memory}
    lv.cpus = {cpus}
    lv.mgmt_attach = false
    lv.default_prefix = {ruby_str(net.prefix)}
    lv.graphics_type = "none"
    lv.video_type = "none"
    lv.storage_pool_name = "default"
    lv.storage_pool_path = File.join(STATE, "pool")
  end
  NODES.each do |name, ip, mac|
    config.vm.define name do |node|
      node.vm.network :public_network, dev: {ruby_str(net.bridge)}, type: "bridge", mode: "bridge",
        mac: mac, auto_config: false
      node.vm.provider "libvirt" do |lv|
        lv.qemuargs value: "-fw_cfg"
        lv.qemuargs value: "name=opt/clew/node.tar,file=#{{File.join(STATE, name + ".tar")}}"
        lv.serial type: "file", source: {{ path: File.join(STATE, name + ".console") }}
      end
    end
  end
end
"""


def _int(opts: dict[str, Any], key: str, default: int) -> int:
    try:
        n = int(opts.get(key, default))
    except (TypeError, ValueError):
        raise ConfigError(
            f"cluster option {key}={opts.get(key)!r} must be a whole number"
        ) from None
    if n <= 0:
        raise ConfigError(f"cluster option {key}={n} must be positive")
    return n


def check_bridged(spec: ClusterSpec, opts: dict[str, Any]) -> None:
    """Refuse the options :func:`up_bridged` would refuse (nothing is made)."""
    bridge_net(opts, spec.nodes)
    _int(opts, "memory", DEFAULT_MEMORY), _int(opts, "cpus", 1)


def up_bridged(
    spec: ClusterSpec, opts: dict[str, Any], vagrant: str, timeout: float, provider: str
) -> Cluster:
    """Bring up a bridged libvirt cluster (module docstring); on failure everything made
    is removed again and :class:`ClusterError` says what failed."""
    if os.geteuid() != 0:
        raise ClusterError(
            "--option network=bridge needs root (a bridge of clew's own and a libvirtd)"
        )
    names = [f"n{i}" for i in range(1, spec.nodes + 1)]
    net = bridge_net(opts, spec.nodes)
    memory, cpus = _int(opts, "memory", DEFAULT_MEMORY), _int(opts, "cpus", 1)
    state = spec.resolved_state_dir().absolute()
    image = find_vm_image(opts.get("image"))
    state.mkdir(parents=True, exist_ok=True)
    # What makes two clusters the same (the name aside: `clew test` names its own).
    config = {"provider": provider, "network": "bridge", "nodes": spec.nodes,
              "prefix": net.prefix, "subnet": str(net.subnet), "first_host": net.first_host,
              "memory": memory, "cpus": cpus, "image": image.digest}  # fmt: skip
    ledger = Ledger.load(state) if (state / CLUSTER_FILE).exists() else None
    if ledger is not None and ledger.config == config:
        return Cluster.load(state)  # the same cluster is up: `clew test` reuses it
    if (state / LEDGER_FILE).exists() or (state / "Vagrantfile").exists():
        raise ClusterConflictError(
            f"{state} already holds a cluster (or a Vagrantfile); bring it down first "
            f"(`clew cluster down --provider vagrant --state-dir {state}`) or use another --name"
        )
    check_subnet_free(net.subnet, "with --option subnet=...")
    if net.bridge in _netns.existing_links():
        raise ClusterError(
            f"interface {net.bridge} already exists: another cluster with the prefix "
            f"{net.prefix!r} may be up. Choose another --option prefix=..."
        )
    t0 = time.monotonic()
    box = add_box(vagrant, image, say=log.info)
    t_box = time.monotonic()
    accel = choose_accel(str(opts.get("accel", "auto")))
    with state_lock(state):
        ledger = Ledger(state_dir=state, config=config)
        ledger.save()
        try:
            cluster = _build(
                spec,
                opts,
                vagrant,
                timeout,
                provider,
                ledger,
                net,
                names,
                box=box,
                memory=memory,
                cpus=cpus,
                kvm=accel.name == "kvm",
            )
        except BaseException as e:
            log.info("bringing the boxes up failed (%s); removing what was made", e)
            problems = _teardown(state, vagrant)
            if problems:
                raise ClusterError(f"{e}. Cleaning up also failed: {'; '.join(problems)}") from e
            _remove_dir(state)
            raise
    cluster.extra["seconds"]["box"] = round(t_box - t0, 2)
    cluster.extra["accel"] = accel.name
    cluster.extra["accel_reason"] = accel.reason
    cluster.save()
    return cluster


def _build(
    spec: ClusterSpec, opts: dict[str, Any], vagrant: str, timeout: float, provider: str,
    ledger: Ledger, net: BridgeNet, names: list[str], *, box: str, memory: int, cpus: int,
    kvm: bool,
) -> Cluster:  # fmt: skip
    state = ledger.state_dir
    t0 = time.monotonic()
    ips = [net.ip(i) for i in range(1, len(names) + 1)]
    # Checked again right before creating the bridge: building the box takes a while.
    check_subnet_free(net.subnet, "with --option subnet=...")
    ledger.intend("bridge", net.bridge)
    _netns.create_bridge(net.bridge, net.host_address, net.subnet.prefixlen)
    for ip in ips:
        dev = _netns.route_device(ip)
        if dev != net.bridge:
            raise ClusterError(f"after creating bridge {net.bridge}, the host routes {ip} "
                               f"through {dev}; choose another --option subnet=...")  # fmt: skip
    keys_dir = state / "keys"
    keys_dir.mkdir(exist_ok=True)
    host_keys = [keys_dir / f"{n}_host_ed25519" for n in names]
    _sshd.generate_keys(
        [(state / KEY_FILE, f"clew-{spec.name}")]
        + [(k, f"clew-{spec.name}-{n}") for k, n in zip(host_keys, names, strict=True)]
    )
    pub = (state / (KEY_FILE + ".pub")).read_bytes()
    hosts = _sshd.hosts_file(list(zip(names, ips, strict=True)))
    for i, (name, hk) in enumerate(zip(names, host_keys, strict=True), start=1):
        (state / f"{name}.tar").write_bytes(_node_archive(
            name=name, ip=net.ip(i), prefixlen=net.subnet.prefixlen, mac=net.mac(i),
            hosts=hosts, host_key=hk.read_bytes(),
            host_pub=hk.with_name(hk.name + ".pub").read_bytes(), authorized=pub,
        ))  # fmt: skip
    pubs = [(keys_dir / f"{n}_host_ed25519.pub").read_text() for n in names]
    (state / KNOWN_HOSTS).write_text(_sshd.known_hosts(list(zip(names, ips, pubs, strict=True))))
    (state / SSH_CONFIG).write_text(_sshd.client_config(
        nodes=list(zip(names, ips, strict=True)), key=state / KEY_FILE, known=state / KNOWN_HOSTS,
    ).replace("(local provider)", "(vagrant provider, network=bridge)"))  # fmt: skip

    root = state / LIBVIRT_DIR
    ledger.intend("libvirtd", str(root))
    pid, created = _libvirtd.start(root)
    ledger.pids["libvirtd"] = {"pid": pid}
    for mp in created:
        ledger.intend("mountpoint", mp)
    t_libvirt = time.monotonic()

    (state / "Vagrantfile").write_text(render_libvirt_vagrantfile(
        net, names, box=box, memory=memory, cpus=cpus, state=state,
        libvirt_uri=_libvirtd.uri(root), kvm=kvm, boot_timeout=int(timeout),
    ))  # fmt: skip
    stop = threading.Event()
    knocker = threading.Thread(target=_knock, args=(net, len(names), stop), daemon=True)
    knocker.start()
    try:
        res = run_tool([vagrant, "up", "--provider=libvirt"], cwd=state, timeout=timeout)
        t_up = time.monotonic()
        seen = run_tool([vagrant, "ssh-config"], cwd=state, timeout=120)
    finally:
        stop.set()
        knocker.join()
    (state / "vagrant-up.log").write_text(_clean(res.stdout + res.stderr))
    if not res.ok:
        status = "timed out" if res.timed_out else f"exited with status {res.returncode}"
        tail = " | ".join(_clean(res.stdout + res.stderr).strip().splitlines()[-6:])
        raise ClusterError(f"`vagrant up --provider=libvirt` {status} in {state}: {tail}")
    for name, ip in zip(names, ips, strict=True):
        if f"Host {name}\n  HostName {ip}\n" not in seen.stdout:
            raise ClusterError(f"`vagrant ssh-config` does not give {name} the address {ip}: "
                               f"{seen.tail()}")  # fmt: skip
    nodes = tuple(
        Node(name=n, host=ip, user="root", key_file=str(state / KEY_FILE),
             known_hosts=str(state / KNOWN_HOSTS))
        for n, ip in zip(names, ips, strict=True)
    )  # fmt: skip
    caps = {c.name: c for c in remote_capabilities("the boxes", own_clock=True)}
    caps["clock-system"] = Capability(
        name="clock-system", available=True,
        detail="each box is a VM with its own kernel clock (date -s as root over SSH)",
    )  # fmt: skip
    cluster = Cluster(
        provider=provider,
        name=spec.name,
        nodes=nodes,
        state_dir=str(state),
        capabilities=tuple(caps.values()),
        extra={
            "network": "bridge",
            "box": box,
            "vagrant": vagrant,
            "prefix": net.prefix,
            "subnet": str(net.subnet),
            "bridge": net.bridge,
            "addresses": dict(zip(names, ips, strict=True)),
            "domains": [f"{net.prefix}{n}" for n in names],
            "libvirt_uri": _libvirtd.uri(root),
            "libvirtd_pid": pid,
            "fault_timeout": DEFAULT_FAULT_TIMEOUT if kvm else TCG_FAULT_TIMEOUT,
            "fault_lease": DEFAULT_FAULT_LEASE if kvm else TCG_FAULT_LEASE,
            "ssh_config": str(state / SSH_CONFIG),
            "seconds": {
                "network_keys_libvirtd": round(t_libvirt - t0, 2),
                "vagrant_up": round(t_up - t_libvirt, 2),
                "total": round(time.monotonic() - t0, 2),
            },
        },
    )
    ledger.save()
    cluster.save()
    return cluster


def _knock(net: BridgeNet, count: int, stop: threading.Event) -> None:
    """Until ``stop``, every 2 s, send a UDP datagram to port 9 of each node the host's ARP
    table (``/proc/net/arp``, where vagrant-libvirt looks) does not hold yet: the host's ARP
    request puts it there as soon as the node's network is up. (Not a TCP connection to
    port 22: each one starts an sshd on the node, which under emulation takes seconds of
    its CPU.)"""
    while not stop.is_set():
        known = _arp_table()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(1, count + 1):
                if known.get(net.ip(i)) != net.mac(i):
                    with contextlib.suppress(OSError):
                        s.sendto(b"clew", (net.ip(i), 9))
        stop.wait(2.0)


def _arp_table() -> dict[str, str]:
    """The host's complete ARP entries: address -> MAC."""
    table = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/arp").read_text().splitlines()[1:]:
            f = line.split()
            if len(f) >= 4 and f[2] != "0x0":
                table[f[0]] = f[3].lower()
    return table


def _clean(text: str) -> str:
    """Vagrant's output without its progress lines and terminal escapes."""
    lines = []
    for line in text.replace("\r", "\n").splitlines():
        line = _ANSI.sub("", line)
        if line.strip() and not line.lstrip().startswith("Progress:"):
            lines.append(line)
    return "\n".join(lines) + "\n"


def down_bridged(state: Path, vagrant: str | None) -> None:
    """Remove everything the bridged cluster in ``state`` made (module docstring);
    :class:`ClusterError` (the ledger kept, so a retry can finish) if something stays."""
    if os.geteuid() != 0:
        raise ClusterError("bringing down a network=bridge vagrant cluster needs root")
    with state_lock(state):
        problems = _teardown(state, vagrant)
    if problems:
        raise ClusterError(
            f"could not remove everything of the cluster in {state}: {'; '.join(problems)}. "
            f"Its ledger {state / LEDGER_FILE} is kept so `{down_command(state)}` can retry"
        )
    _remove_dir(state)


def _remove_dir(state: Path) -> None:
    """Remove the lock and the state directory if nothing else is in it."""
    with contextlib.suppress(FileNotFoundError):
        (state / LOCK_FILE).unlink()
    with contextlib.suppress(OSError):
        state.rmdir()


def _teardown(state: Path, vagrant: str | None) -> list[str]:
    ledger = Ledger.load(state)
    if ledger is None:
        return []
    problems: list[str] = []
    root = state / LIBVIRT_DIR
    pid = _libvirtd.libvirtd_pid(root, ledger.pids.get("libvirtd", {}).get("pid"))
    if pid is not None and vagrant and (state / "Vagrantfile").is_file():
        res = run_tool([vagrant, "destroy", "-f"], cwd=state, timeout=600)
        if not res.ok:  # what it left, the daemon's own cleanup below removes
            log.warning("`vagrant destroy -f` in %s failed: %s", state, res.tail())
    if ledger.names("libvirtd"):
        problems += _libvirtd.stop(root, pid, ledger.names("mountpoint"))
    for name in reversed(ledger.names("bridge")):
        try:
            _netns.delete_link(name)
        except ClusterError as e:
            problems.append(str(e))
    if problems:
        return problems
    for d in (root, state / "pool", state / "keys", state / ".vagrant"):
        shutil.rmtree(d, ignore_errors=True)
    for f in [*_FILES, *(p.name for p in state.glob("n*.tar")),
              *(p.name for p in state.glob("n*.console"))]:  # fmt: skip
        with contextlib.suppress(FileNotFoundError):
            (state / f).unlink()
    with contextlib.suppress(FileNotFoundError):
        (state / LEDGER_FILE).unlink()
    return []
