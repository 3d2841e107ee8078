"""Machines that already exist, reached over SSH: the ``static`` provider.

``up`` creates nothing: it describes the hosts you name and saves the description
(``cluster.json``) so that ``clew cluster status``, ``clew test`` and ``clew cluster down``
find it again. ``status`` checks that each node's SSH port answers; ``down`` forgets the
cluster (it removes the state, never anything on the hosts).

Hosts come from ``spec.options["hosts"]`` (a list, or a comma-separated string) or from
``spec.options["nodes_file"]``, a text file with one node per line::

    # name=  and  key=  are optional; user and port default to the options below
    db1.example.com
    admin@db2.example.com:2222
    db3.example.com  name=n3  key=~/.ssh/db3_ed25519
    [2001:db8::4]:22 name=n4

Each host is written ``[name=][user@]host[:port]`` (an IPv6 address in brackets when a port
follows). Nodes are called ``n1``, ``n2``, ... in order unless named.

Other options: ``user`` (default ``spec.user``), ``port`` (22), ``key_file`` (a private
key; default: the SSH agent), ``password_env`` (the *name* of an environment variable that
holds the password; the password itself is never stored — :func:`with_passwords` reads it
again), ``known_hosts`` (default: the user's ``~/.ssh/known_hosts``) and
``insecure_host_keys`` (true: do not verify host keys; only for throwaway machines).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from clusters.base import (
    CLUSTER_FILE,
    Capability,
    Cluster,
    ClusterSpec,
    ClusterStatus,
    Node,
    check_options,
    option_flag,
)
from clusters.doctor import check_nodes
from harness.errors import ClusterError, ConfigError

__all__ = [
    "StaticProvider",
    "host_key_capability",
    "parse_host",
    "read_nodes_file",
    "remote_capabilities",
    "with_passwords",
]

_OPTIONS = frozenset(
    {"hosts", "nodes_file", "user", "port", "key_file", "password_env", "known_hosts",
     "insecure_host_keys"}
)  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _port(value: Any, where: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: port {value!r} is not a number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{where}: port {port} is out of range (1-65535)")
    return port


def parse_host(text: str, *, where: str = "host") -> dict[str, Any]:
    """Split ``[name=][user@]host[:port]`` into its parts (``name``, ``user``, ``host``,
    ``port``; absent parts are left out). :class:`ConfigError` naming ``where`` if it is
    malformed."""
    entry = text.strip()
    out: dict[str, Any] = {}
    if "=" in entry:
        name, _, entry = entry.partition("=")
        out["name"] = name
    if "@" in entry:
        user, _, entry = entry.rpartition("@")
        if not user:
            raise ConfigError(f"{where}: empty user in {text!r}; write user@host")
        out["user"] = user
    if entry.startswith("["):  # [v6] or [v6]:port
        host, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"{where}: cannot read {text!r}; write [2001:db8::1]:22")
        if rest:
            out["port"] = _port(rest[1:], where)
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
        out["port"] = _port(port, where)
    else:  # a name, an IPv4 address, or a bare IPv6 address
        host = entry
    if not host or any(c.isspace() for c in host):
        raise ConfigError(f"{where}: no host in {text!r}; write [user@]host[:port]")
    out["host"] = host
    return out


def read_nodes_file(path: str | Path) -> list[dict[str, Any]]:
    """The nodes listed in a nodes file (format in the module docstring), as
    :func:`parse_host` dicts, plus ``key`` where given. :class:`ConfigError` naming the
    file and line for anything it cannot read."""
    p = Path(path).expanduser()
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the nodes file {path}: {e.strerror or e}") from None
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        lineno = raw[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{lineno}: the nodes file is not UTF-8 text (byte {raw[e.start]:#04x}); "
            "it holds one [user@]host[:port] a line"
        ) from None
    entries: list[dict[str, Any]] = []
    for i, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{path}:{i}"
        entry = parse_host(words[0], where=where)
        for word in words[1:]:
            key, sep, value = word.partition("=")
            if not sep or key not in ("name", "key", "user", "port") or not value:
                raise ConfigError(
                    f"{where}: unknown field {word!r}; after the host, only name=, key=, "
                    "user= and port= may follow"
                )
            entry[key] = _port(value, where) if key == "port" else value
        entries.append(entry)
    if not entries:
        raise ConfigError(f"{path}: no hosts in the nodes file (one [user@]host[:port] a line)")
    return entries


def _node_settings(spec: ClusterSpec) -> tuple[str, int, Any, Any, bool, str | None]:
    """What ``spec``'s options say of every node (user, port, key file, known_hosts file,
    whether host keys go unchecked, password), validated: :class:`ConfigError` naming the
    bad one."""
    opts = spec.options
    check_options("static", opts, _OPTIONS)
    user = str(opts.get("user") or spec.user)
    port = _port(opts.get("port", 22), "cluster option port")
    key_file = opts.get("key_file")
    if key_file:
        key_file = _existing_file(str(key_file), "key file (--key)")
    known_hosts = opts.get("known_hosts")
    if known_hosts:
        known_hosts = _existing_file(str(known_hosts), "known_hosts file (--known-hosts)")
    insecure = option_flag(opts, "insecure_host_keys", False)
    password = None
    if opts.get("password_env"):
        password = _password(str(opts["password_env"]))
    return user, port, key_file, known_hosts, insecure, password


def _nodes_from_spec(spec: ClusterSpec) -> list[Node]:
    """The nodes ``spec`` describes; :class:`ConfigError` for anything wrong."""
    opts = spec.options
    user, port, key_file, known_hosts, insecure, password = _node_settings(spec)
    hosts, nodes_file = opts.get("hosts"), opts.get("nodes_file")
    if hosts and nodes_file:
        raise ConfigError("give the hosts either with --nodes a,b,c or with --nodes-file, not both")
    if nodes_file:
        entries = read_nodes_file(nodes_file)
    elif hosts:
        items = hosts.split(",") if isinstance(hosts, str) else list(hosts)
        items = [str(h).strip() for h in items if str(h).strip()]
        entries = [parse_host(h, where=f"host {h!r}") for h in items]
    else:
        raise ConfigError(
            "the static provider needs hosts: --nodes host1,host2,host3 or --nodes-file FILE "
            "(one [user@]host[:port] a line)"
        )

    nodes: list[Node] = []
    for i, e in enumerate(entries, 1):
        name = e.get("name") or f"n{i}"
        if not _NAME.match(name):
            raise ConfigError(f"node name {name!r} must be letters, digits, '.', '_' or '-'")
        node_key = e.get("key")
        if node_key:
            node_key = _existing_file(node_key, f"key file of node {name}")
        nodes.append(
            Node(
                name=name,
                host=e["host"],
                port=e.get("port", port),
                user=e.get("user", user),
                key_file=node_key or key_file,
                password=password,
                known_hosts=known_hosts,
                check_host_key=not insecure,
            )
        )
    names = [n.name for n in nodes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"node names must be unique; repeated: {', '.join(dupes)}")
    seen: dict[tuple[str, int], list[str]] = {}
    for n in nodes:
        seen.setdefault((_host_key(n.host), n.port), []).append(n.name)
    same = [
        f"{_show(n.host)}:{n.port} ({', '.join(names)})"
        for n in nodes
        if len(names := seen.pop((_host_key(n.host), n.port), [])) > 1
    ]
    if same:
        raise ConfigError(
            f"each node must be a different host (or port); given more than once: {'; '.join(same)}"
        )
    return nodes


def _host_key(host: str) -> str:
    """``host`` as written, but one spelling per IP address and case-blind for names (no
    name is resolved)."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.lower().rstrip(".")


def _show(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _existing_file(path: str, what: str) -> str:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{what} {path} does not exist or is not a file")
    return str(p.resolve())


def _password(var: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise ConfigError(
            f"--password-env {var}: the environment variable {var} is not set or empty; "
            f"set it first (e.g. `read -s {var} && export {var}`)"
        )
    return value


def with_passwords(cluster: Cluster) -> Cluster:
    """``cluster`` with each node's password read again from the environment variable
    named in ``cluster.extra["password_env"]`` (passwords are never saved).
    :class:`ConfigError` if that variable is no longer set; unchanged if none is named."""
    var = cluster.extra.get("password_env")
    if not var:
        return cluster
    password = _password(str(var))
    return replace(cluster, nodes=tuple(replace(n, password=password) for n in cluster.nodes))


def remote_capabilities(where: str, *, own_clock: bool = True) -> tuple[Capability, ...]:
    """The fault capabilities of nodes reached over SSH (``where`` names them, e.g. "the
    hosts"), under the names the local provider uses. They are possible but not verified
    here: each needs a tool on the nodes (and root or sudo), checked when a test starts.
    ``own_clock`` is false when the nodes share this machine's clock (containers)."""

    def cap(name: str, needs: str) -> Capability:
        return Capability(name=name, available=True, detail=f"needs {needs} on {where}")

    return (
        cap("partition", "iptables or nft"),
        cap("pause", "kill (SIGSTOP/SIGCONT)"),
        cap("kill", "kill (SIGKILL)"),
        cap("packet-netem", "tc and a kernel with sch_netem"),
        cap("packet-loss-iptables", "iptables with the statistic match"),
        cap("packet-delay-nfqueue", "iptables with the NFQUEUE target, and python3"),
        cap("clock-system", "date and root")
        if own_clock
        else Capability(
            name="clock-system",
            available=False,
            detail=f"{where} share this machine's clock; use clock-libfaketime",
        ),
        cap("clock-libfaketime", "libfaketime (not for Go programs such as etcd)"),
    )


def host_key_capability(nodes: tuple[Node, ...], why_not: str) -> Capability:
    """``host-key-check``: whether every node's host key is verified; ``why_not`` says
    why they are not (shown by ``clew cluster up`` and ``status``)."""
    if all(n.check_host_key for n in nodes):
        return Capability(name="host-key-check", available=True, detail="host keys are verified")
    return Capability(
        name="host-key-check", available=False, detail=f"host keys are NOT verified: {why_not}"
    )


class StaticProvider:
    """Existing hosts over SSH. ``up`` only describes and saves them; ``down`` only forgets
    them. See the module docstring for the options and the nodes-file format."""

    name = "static"
    makes_nodes = False

    def check_spec(self, spec: ClusterSpec) -> None:
        """Refuse the hosts and options ``up`` would refuse (nothing is contacted). With
        no hosts named, only the options that apply to every node: a run may use the
        hosts of a cluster already up (``clew cluster up --provider static``)."""
        if spec.options.get("hosts") or spec.options.get("nodes_file"):
            _nodes_from_spec(spec)
        else:
            _node_settings(spec)

    def up(self, spec: ClusterSpec) -> Cluster:
        """Describe the hosts in ``spec`` as a cluster, save it and return it. Nothing is
        created or contacted; :class:`ConfigError` for bad options, :class:`ClusterError`
        if another provider's cluster is up in the state directory."""
        nodes = tuple(_nodes_from_spec(spec))
        state_dir = spec.resolved_state_dir()
        if (state_dir / CLUSTER_FILE).exists():
            old = Cluster.load(state_dir)
            if old.provider != self.name:
                raise ClusterError(
                    f"a {old.provider} cluster is up in {state_dir}; take it down first "
                    f"(`clew cluster down --state-dir {state_dir}`) or use another --name"
                )
        extra: dict[str, Any] = {}
        if spec.options.get("password_env"):
            extra["password_env"] = str(spec.options["password_env"])
        cluster = Cluster(
            provider=self.name,
            name=spec.name,
            nodes=nodes,
            state_dir=str(state_dir),
            capabilities=(
                host_key_capability(nodes, "--insecure-host-keys was given"),
                *self.capabilities(),
            ),
            extra=extra,
        )
        cluster.save()
        return cluster

    def down(self, state_dir: Path) -> None:
        """Forget the cluster in ``state_dir``: remove ``cluster.json`` (and the directory,
        if that leaves it empty). The hosts are not touched. Harmless if nothing is up."""
        state_dir = Path(state_dir)
        (state_dir / CLUSTER_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # absent, or holds files that are not ours
            state_dir.rmdir()

    def status(self, state_dir: Path) -> ClusterStatus:
        """Per node, ``"up"`` if its SSH port answers a TCP connect within a short timeout,
        else why not. (An SSH login is not attempted.)"""
        try:
            cluster = Cluster.load(state_dir)
        except ClusterError as e:
            return ClusterStatus(cluster=None, problems=(str(e),))
        # Unverified host keys are shown by the CLI from the capabilities; they are a
        # warning, not a failure: only unreachable nodes make a cluster unhealthy.
        nodes = check_nodes(cluster.nodes)
        return ClusterStatus(cluster=cluster, nodes=nodes)

    def capabilities(self) -> tuple[Capability, ...]:
        """The fault capabilities of existing hosts: possible, checked when a test starts."""
        return remote_capabilities("the hosts")
