"""Debian virtual machines made by Vagrant: the ``vagrant`` provider.

``up`` writes ``<state>/Vagrantfile`` for boxes ``n1..nN`` on a private network, runs
``vagrant up`` there, and turns ``vagrant ssh-config`` (read with :class:`paramiko.SSHConfig`)
into nodes. ``down`` runs ``vagrant destroy -f`` and removes the files it wrote.

Needs Vagrant (https://developer.hashicorp.com/vagrant/install) and a hypervisor it
supports (VirtualBox, or libvirt with the ``vagrant-libvirt`` plugin).

Options (``spec.options``, from ``--option KEY=VALUE``):

``box``             the base box (default ``debian/bookworm64``)
``first_ip``        the first private address (default ``192.168.56.11``; then .12, .13 ...)
``ips``             explicit private addresses, one per node (a list or ``a,b,c``)
``memory``, ``cpus``  per VM (default 1024 MB, 1 CPU)
``vagrant_provider``  passed to ``vagrant up --provider`` (default: Vagrant's choice)
``vagrant``         the ``vagrant`` executable (else ``$CLEW_VAGRANT``, else ``vagrant``)
``timeout``         seconds ``vagrant up`` may take (default 1800)

Nodes are reached the way ``vagrant ssh`` reaches them (usually a forwarded port on
127.0.0.1, user ``vagrant`` with sudo, Vagrant's generated key). Vagrant's ssh-config turns
host-key checking off (``StrictHostKeyChecking no``); clew then records
``check_host_key=False`` and says so in the capability ``host-key-check``. The private
addresses, which the nodes use to talk to each other, are in ``cluster.extra["addresses"]``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import re
import shutil
from pathlib import Path
from typing import Any

import paramiko

from clusters._ledger import LEDGER_FILE
from clusters._ruby import ruby_str
from clusters.base import (
    CLUSTER_FILE,
    Capability,
    Cluster,
    ClusterSpec,
    ClusterStatus,
    Node,
    check_options,
    down_command,
)
from clusters.doctor import check_nodes, find_binary, run_tool
from clusters.static import host_key_capability, remote_capabilities
from clusters.vagrant_libvirt import check_bridged, down_bridged, up_bridged
from harness.errors import ClusterConflictError, ClusterError, ConfigError

__all__ = ["VagrantProvider", "nodes_from_ssh_config", "render_vagrantfile"]

DEFAULT_BOX = "debian/bookworm64"
DEFAULT_FIRST_IP = "192.168.56.11"
#: Seconds ``vagrant up`` may take (downloading a box can be slow).
UP_TIMEOUT = 1800.0
#: Seconds ``vagrant ssh-config`` and ``vagrant destroy`` may take.
TOOL_TIMEOUT = 600.0

_OPTIONS = frozenset(
    {
        "box",
        "first_ip",
        "ips",
        "memory",
        "cpus",
        "vagrant_provider",
        "vagrant",
        "timeout",
        "network",
        "prefix",
        "subnet",
        "first_host",
        "image",
        "accel",
    }
)
#: Options only ``network=bridge`` takes, and options it does not take.
_BRIDGE_ONLY = frozenset({"prefix", "subnet", "first_host", "image", "accel"})
_PRIVATE_ONLY = frozenset({"box", "first_ip", "ips", "vagrant_provider"})
_INSTALL_HINT = (
    "install Vagrant (https://developer.hashicorp.com/vagrant/install) and a hypervisor "
    "(VirtualBox, or libvirt with `vagrant plugin install vagrant-libvirt`), or point "
    "CLEW_VAGRANT / --option vagrant=PATH at the executable"
)
_OUR_FILES = ("Vagrantfile", CLUSTER_FILE)


#: What status says about a cluster whose ``up`` never finished.
_UNFINISHED = (
    "an earlier `clew cluster up` did not finish in {0}; remove what it made with "
    "`clew cluster down --state-dir {0}`"
)


def _int(opts: dict[str, Any], key: str, default: int) -> int:
    value = opts.get(key, default)
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"cluster option {key}={value!r} must be a whole number") from None
    if n <= 0:
        raise ConfigError(f"cluster option {key}={n} must be positive")
    return n


def _addresses(opts: dict[str, Any], count: int) -> list[str]:
    """The private addresses of the ``count`` nodes, validated."""
    ips = opts.get("ips")
    try:
        if ips:
            items = ips.split(",") if isinstance(ips, str) else list(ips)
            addrs = [str(ipaddress.IPv4Address(str(a).strip())) for a in items]
            if len(addrs) != count:
                raise ConfigError(
                    f"cluster option ips lists {len(addrs)} addresses for {count} nodes"
                )
            return addrs
        first = ipaddress.IPv4Address(str(opts.get("first_ip", DEFAULT_FIRST_IP)))
    except ipaddress.AddressValueError as e:
        raise ConfigError(f"bad private address: {e}") from None
    return [str(first + i) for i in range(count)]


def render_vagrantfile(
    names: list[str], addresses: list[str], *, box: str, memory: int, cpus: int
) -> str:
    """The Vagrantfile for boxes ``names`` with private ``addresses`` (same order)."""
    nodes = ",\n".join(
        f"  [{ruby_str(n)}, {ruby_str(a)}]" for n, a in zip(names, addresses, strict=True)
    )
    return f"""# Written by clew for `clew cluster up --provider vagrant`.
# `clew cluster down` runs `vagrant destroy -f` here and removes this file.
NODES = [
{nodes}
]

Vagrant.configure("2") do |config|
  config.vm.box = {ruby_str(box)}
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.provider "virtualbox" do |vb|
    vb.memory = {memory}
    vb.cpus = {cpus}
  end
  config.vm.provider "libvirt" do |lv|
    lv.memory = {memory}
    lv.cpus = {cpus}
  end
  NODES.each do |name, ip|
    config.vm.define name do |node|
      node.vm.hostname = name
      node.vm.network "private_network", ip: ip
    end
  end
end
"""


def nodes_from_ssh_config(text: str, names: list[str]) -> list[Node]:
    """The nodes ``names`` as described by ``vagrant ssh-config`` output ``text`` (parsed
    with :class:`paramiko.SSHConfig`): HostName, Port, User and the first IdentityFile.
    ``StrictHostKeyChecking no`` gives ``check_host_key=False``; a ``UserKnownHostsFile``
    other than ``/dev/null`` is kept. :class:`ClusterError` if a box is missing."""
    config = paramiko.SSHConfig.from_text(text)
    listed = config.get_hostnames()
    nodes = []
    for name in names:
        if name not in listed:
            raise ClusterError(
                f"`vagrant ssh-config` says nothing about box {name!r} "
                f"(it lists {', '.join(sorted(listed - {'*'})) or 'no boxes'}); "
                "run `vagrant status` in the state directory to see why"
            )
        entry = config.lookup(name)
        keys = entry.get("identityfile") or []
        known = entry.get("userknownhostsfile")
        nodes.append(
            Node(
                name=name,
                host=entry.get("hostname", name),
                port=int(entry.get("port", 22)),
                user=entry.get("user", "vagrant"),
                key_file=keys[0] if keys else None,
                known_hosts=None if known in (None, "/dev/null") else known.split()[0],
                check_host_key=entry.get("stricthostkeychecking", "yes").lower() != "no",
            )
        )
    return nodes


#: A Vagrant box name: ``name`` or ``org/name`` (it goes into the Vagrantfile, which is Ruby).
_BOX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def _box_name(opts: dict[str, Any]) -> str:
    """The ``box`` option (default :data:`DEFAULT_BOX`), a plain box name: anything else
    in a Ruby string of the Vagrantfile (``#{...}``) would run as code."""
    box = str(opts.get("box", DEFAULT_BOX))
    if not _BOX.match(box):
        raise ConfigError(f"cluster option box={box!r}: a box is named `name` or `org/name` "
                          "(letters, digits, ., _ and -)")  # fmt: skip
    return box


class VagrantProvider:
    """Vagrant boxes ``n1..nN`` on a private network. See the module docstring."""

    name = "vagrant"
    makes_nodes = True

    def _vagrant(self, opts: dict[str, Any]) -> str:
        """The vagrant executable; :class:`ClusterError` telling how to install it."""
        wanted = str(opts.get("vagrant") or os.environ.get("CLEW_VAGRANT") or "vagrant")
        path = find_binary(wanted)
        if path is None:
            raise ClusterError(f"vagrant not found (looked for {wanted!r}); {_INSTALL_HINT}")
        return path

    def check_spec(self, spec: ClusterSpec) -> None:
        """Refuse the options ``up`` would refuse (nothing is made or contacted)."""
        opts = dict(spec.options)
        check_options("vagrant", opts, _OPTIONS)
        if spec.nodes < 1:
            raise ConfigError(f"--nodes must be at least 1, not {spec.nodes}")
        network = str(opts.get("network", "private"))
        if network not in ("private", "bridge"):
            raise ConfigError(f"cluster option network={network!r}: use private or bridge")
        wrong = sorted(set(opts) & (_PRIVATE_ONLY if network == "bridge" else _BRIDGE_ONLY))
        if wrong:
            raise ConfigError(
                f"cluster option(s) {', '.join(wrong)} do not apply to network={network}"
            )
        _int(opts, "timeout", int(UP_TIMEOUT))
        if network == "bridge":
            check_bridged(spec, opts)
        else:
            _addresses(opts, spec.nodes)
            _int(opts, "memory", 1024), _int(opts, "cpus", 1)
            _box_name(opts)

    def up(self, spec: ClusterSpec) -> Cluster:
        """Write the Vagrantfile, run ``vagrant up`` and ``vagrant ssh-config``, save the
        cluster and return it. If a vagrant cluster with the same boxes is already saved
        there it is returned as is. On failure the boxes are destroyed again and
        :class:`ClusterError` carries the tail of Vagrant's output."""
        self.check_spec(spec)
        opts = dict(spec.options)
        if opts.get("network") == "bridge":
            timeout = float(_int(opts, "timeout", int(UP_TIMEOUT)))
            return up_bridged(spec, opts, self._vagrant(opts), timeout, self.name)
        names = [f"n{i}" for i in range(1, spec.nodes + 1)]
        addresses = _addresses(opts, spec.nodes)
        box = _box_name(opts)
        memory, cpus = _int(opts, "memory", 1024), _int(opts, "cpus", 1)
        timeout = float(_int(opts, "timeout", int(UP_TIMEOUT)))
        state_dir = spec.resolved_state_dir()
        vagrantfile = render_vagrantfile(names, addresses, box=box, memory=memory, cpus=cpus)

        if (state_dir / CLUSTER_FILE).exists():
            old = Cluster.load(state_dir)
            same = (
                old.provider == self.name
                and old.nodes
                and (state_dir / "Vagrantfile").is_file()
                and (state_dir / "Vagrantfile").read_text() == vagrantfile
            )
            if same:
                return old
            if old.provider == self.name and not old.nodes:
                raise ClusterError(_UNFINISHED.format(state_dir))
            raise ClusterConflictError(
                f"a different {old.provider} cluster is up in {state_dir}; take it down "
                f"first (`{down_command(state_dir)}`) or use another --name"
            )
        if (state_dir / "Vagrantfile").exists():
            raise ClusterConflictError(
                f"{state_dir} already has a Vagrantfile that is not part of a clew cluster; "
                "use another --state-dir or --name"
            )
        vagrant = self._vagrant(opts)
        extra = {
            "box": box,
            "vagrant": vagrant,
            "addresses": dict(zip(names, addresses, strict=True)),
        }
        # Saved first (with no nodes), so that `clew cluster down` can destroy the boxes
        # even if this process dies during `vagrant up`.
        Cluster(
            provider=self.name, name=spec.name, nodes=(), state_dir=str(state_dir), extra=extra
        ).save()
        (state_dir / "Vagrantfile").write_text(vagrantfile)
        try:
            argv = [vagrant, "up"]
            if opts.get("vagrant_provider"):
                argv.append(f"--provider={opts['vagrant_provider']}")
            self._run(argv, state_dir, timeout, "bring the boxes up")
            res = self._run([vagrant, "ssh-config"], state_dir, TOOL_TIMEOUT, "read ssh-config")
            private = dict(zip(names, addresses, strict=True))
            nodes = tuple(
                dataclasses.replace(n, address=private[n.name])
                for n in nodes_from_ssh_config(res, names)
            )
        except BaseException:
            with contextlib.suppress(ClusterError):
                self.down(state_dir)
            raise
        cluster = Cluster(
            provider=self.name,
            name=spec.name,
            nodes=nodes,
            state_dir=str(state_dir),
            capabilities=(
                host_key_capability(nodes, "Vagrant's ssh-config says StrictHostKeyChecking no"),
                *self.capabilities(),
            ),
            extra=extra,
        )
        cluster.save()
        return cluster

    def _run(self, argv: list[str], cwd: Path, timeout: float, what: str) -> str:
        """Run a vagrant command in ``cwd``; its stdout, or :class:`ClusterError`."""
        res = run_tool(argv, cwd=cwd, timeout=timeout)
        if not res.ok:
            status = "timed out" if res.timed_out else f"exited with status {res.returncode}"
            raise ClusterError(
                f"`vagrant {' '.join(argv[1:])}` (to {what}) {status} in {cwd}: {res.tail()}"
            )
        return res.stdout

    def down(self, state_dir: Path) -> None:
        """Destroy the boxes (``vagrant destroy -f``) and remove the files clew wrote in
        ``state_dir`` (the Vagrantfile, Vagrant's ``.vagrant`` directory, ``cluster.json``).
        Harmless if nothing is up; :class:`ClusterError` (state kept) if Vagrant is missing
        or the destroy fails."""
        state_dir = Path(state_dir)
        if (state_dir / LEDGER_FILE).is_file():
            saved = find_binary(os.environ.get("CLEW_VAGRANT") or "vagrant")
            down_bridged(state_dir.absolute(), saved)
            return
        if not (state_dir / CLUSTER_FILE).is_file():
            return  # nothing of ours is there (the Vagrantfile is only ours with it)
        if (state_dir / "Vagrantfile").is_file():
            saved = Cluster.load(state_dir).extra.get("vagrant")
            vagrant = self._vagrant({"vagrant": saved} if saved and find_binary(saved) else {})
            self._run([vagrant, "destroy", "-f"], state_dir, TOOL_TIMEOUT, "destroy the boxes")
        shutil.rmtree(state_dir / ".vagrant", ignore_errors=True)
        for f in _OUR_FILES:
            (state_dir / f).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # absent, or holds files that are not ours
            state_dir.rmdir()

    def status(self, state_dir: Path) -> ClusterStatus:
        """Per box, ``"up"`` if its SSH port answers a TCP connect, else why not. (Whether
        host keys are verified is in the cluster's ``host-key-check`` capability.)"""
        try:
            cluster = Cluster.load(state_dir)
        except ClusterError as e:
            return ClusterStatus(cluster=None, problems=(str(e),))
        if not cluster.nodes:
            return ClusterStatus(cluster=cluster, problems=(_UNFINISHED.format(state_dir),))
        return ClusterStatus(cluster=cluster, nodes=check_nodes(cluster.nodes))

    def capabilities(self) -> tuple[Capability, ...]:
        """What Vagrant VMs offer: each has its own kernel and clock, so every fault kind
        is possible once the tools are on the boxes (checked when a test starts)."""
        return remote_capabilities("the boxes")
