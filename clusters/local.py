"""The local provider: a real multi-node cluster on this machine, without containers.

Each node ``n<i>`` is a network namespace ``<prefix>n<i>`` joined to a bridge
``<prefix>br0`` by a veth pair, plus its own mount, UTS and PID namespaces, with hostname
``n<i>``, its own ``/etc/hosts`` (listing every node), ``/opt``, ``/tmp`` and an empty
home directory, and **OpenSSH sshd as PID 1**. The rest of clew reaches nodes over SSH
exactly as it would reach real machines; people can too::

    ssh -F <state-dir>/ssh_config n1

Options (``ClusterSpec.options``), all optional:

``prefix``
    Prefix of every host object (``clew-``): namespaces ``<prefix>n<i>``, veths
    ``<prefix>v<i>``, the bridge. Interface names are limited to 15 characters.
``subnet``
    IPv4 subnet of the cluster (``10.77.0.0/24``). It must not overlap anything on the host.
``bridge``
    Name of the bridge (``<prefix>br0``); it must start with the prefix.
``bridge_address``
    The host's address on the bridge (the subnet's first address, ``.1``).
``first_host``
    Host number of ``n1`` in the subnet (11, so nodes are ``.11``, ``.12``, …).
``ready_timeout``
    Seconds to wait for every sshd to answer (10).

Safety: every object carries the prefix; ``up`` refuses to start when the subnet is in use
on the host or a name it would create already exists; it records each object in the state
directory's ledger *before* creating it, and ``down`` deletes exactly those (and kills
exactly the processes inside the cluster's namespaces). The host's interfaces, routes and
firewall are only read, never changed.

Needs root. Without it, the same design would need unprivileged user namespaces *and* a
small asyncssh-based node server (OpenSSH's sshd cannot run there), which clew does not
have yet.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from clusters import _netns, _sshd
from clusters._bridged import (
    check_config,
    check_foreign_files,
    check_provider,
    check_subnet_free,
)
from clusters._ledger import LEDGER_FILE, LOCK_FILE, Ledger, state_lock
from clusters._localcaps import probe_capabilities
from clusters._localopts import LocalOptions
from clusters._run import CommandFailed, run, which
from clusters.base import (
    CLUSTER_FILE,
    Capability,
    Cluster,
    ClusterSpec,
    ClusterStatus,
    Node,
    down_command,
)
from harness.errors import ClusterError, ConfigError

__all__ = ["LocalOptions", "LocalProvider"]

log = logging.getLogger(__name__)

KEY_FILE = "id_ed25519"
SSH_CONFIG = "ssh_config"
KNOWN_HOSTS = "known_hosts"
NODES_DIR = "nodes"
#: Every file the provider writes at the top of a state directory; ``down`` removes these
#: and :data:`NODES_DIR`, and nothing else.
STATE_FILES = (
    CLUSTER_FILE,
    CLUSTER_FILE + ".tmp",
    LEDGER_FILE,
    LEDGER_FILE + ".tmp",
    KEY_FILE,
    KEY_FILE + ".pub",
    KNOWN_HOSTS,
    SSH_CONFIG,
    LOCK_FILE,
)
_REQUIRED_TOOLS = {
    "ip": "iproute2",
    "unshare": "util-linux",
    "mount": "mount",
    "umount": "mount",
    "hostname": "hostname",
    "sshd": "openssh-server",
    "ssh-keygen": "openssh-client",
}
# Run inside the first node's network namespace: can it reach the last node's sshd?
_PROBE = """import socket, sys
try:
    s = socket.create_connection((sys.argv[1], 22), 2)
    s.settimeout(2)
    ok = s.recv(4).startswith(b"SSH-")
except OSError as e:
    sys.exit(f"{type(e).__name__}: {e}")
sys.exit(0 if ok else "no SSH banner")
"""


class LocalProvider:
    """Brings clusters of network namespaces with sshd as PID 1 up and down on this
    machine (as root). Implements :class:`clusters.base.Provider`."""

    name = "local"
    makes_nodes = True

    # --- the Provider protocol ---------------------------------------------------------

    def check_spec(self, spec: ClusterSpec) -> None:
        """Refuse the options ``up`` would refuse (:meth:`LocalOptions.from_spec`)."""
        LocalOptions.from_spec(spec)

    def up(self, spec: ClusterSpec) -> Cluster:
        """Bring up ``spec.nodes`` nodes and save the cluster; return it.

        Returns the running cluster unchanged if the same cluster is already up and
        healthy; cleans a half-built leftover first; refuses (before creating anything)
        when the subnet or a name is already in use on the host. If it fails half-way it
        removes everything it created and raises :class:`ClusterError`.
        """
        opts = LocalOptions.from_spec(spec)
        state = _state_dir(spec.resolved_state_dir())
        _require_root("bring a local cluster up")
        _require_tools()
        made_dir = not state.exists()
        state.mkdir(parents=True, exist_ok=True)
        made_lock = not (state / LOCK_FILE).exists()
        ours = (state / LEDGER_FILE).exists()  # a cluster of ours was (partly) here
        try:
            with state_lock(state):
                current = self._already_up(state, spec, opts)
                if current is not None:
                    log.info("cluster %r is already up in %s", spec.name, state)
                    return current
                self._teardown(state, keep_dir=True)  # a leftover of ours, if any
                check_foreign_files(state, "local", (*STATE_FILES, NODES_DIR))
                try:
                    return self._build(state, spec, opts)
                except BaseException as e:
                    log.info("bringing the cluster up failed (%s); removing what was made", e)
                    try:
                        self._teardown(state, keep_dir=True)
                    except ClusterError as cleanup:
                        raise ClusterError(
                            f"{e}. Cleaning up after that also failed: {cleanup}. Run `clew "
                            f"cluster down` for {state} once the cause is fixed"
                        ) from e
                    raise
        finally:
            if not (state / LEDGER_FILE).exists():  # nothing is up: leave no lock or dir
                if made_lock or ours:
                    with contextlib.suppress(FileNotFoundError):
                        (state / LOCK_FILE).unlink()
                if made_dir or ours:
                    with contextlib.suppress(OSError):
                        state.rmdir()  # only if empty

    def down(self, state_dir: Path) -> None:
        """Remove every trace of the cluster in ``state_dir``: kill exactly the processes in
        its namespaces, delete its namespaces, veths and bridge, and its state files.
        Works after a crashed ``up`` and does nothing when nothing is there."""
        state = _state_dir(state_dir)
        if not (state / LEDGER_FILE).exists() and not (state / CLUSTER_FILE).exists():
            return  # nothing of ours is there (the ledger is the first file `up` writes)
        check_provider(state, LocalProvider.name)
        _require_root("tear the local cluster down")
        with state_lock(state):
            self._teardown(state)

    def status(self, state_dir: Path) -> ClusterStatus:
        """Node by node, ``"up"`` or why not (namespace missing, sshd not answering or
        stopped), plus problems of the cluster as a whole (bridge, routes, firewall)."""
        state = _state_dir(state_dir)
        if not (state / CLUSTER_FILE).exists():
            if (state / LEDGER_FILE).exists():
                why = (
                    f"a half-built cluster is left in {state} (no {CLUSTER_FILE}); "
                    f"`{down_command(state)}` removes it"
                )
            else:
                why = f"no cluster is up in {state}"
            return ClusterStatus(cluster=None, problems=(why,))
        cluster = Cluster.load(state)
        extra = cluster.extra
        namespaces = _netns.existing_netns()
        problems: list[str] = []
        bridge = str(extra.get("bridge", ""))
        if os.geteuid() == 0 and bridge not in _netns.existing_links():
            problems.append(f"bridge {bridge} is missing")

        def check(node: Node) -> str:
            ns = str(extra.get("netns", {}).get(node.name, ""))
            if ns not in namespaces:
                return f"network namespace {ns} is missing"
            pid = extra.get("pids", {}).get(node.name, {}).get("sshd")
            if isinstance(pid, int) and _proc_state(pid) == "T":
                return f"sshd (PID {pid}) is stopped (SIGSTOP); send SIGCONT to resume it"
            if not _ssh_answers(node.host, 1.0):
                return f"sshd is not answering on {node.host}:22"
            return "up"

        with ThreadPoolExecutor(max_workers=min(16, len(cluster.nodes) or 1)) as pool:
            results = list(pool.map(check, cluster.nodes))
        nodes = {n.name: r for n, r in zip(cluster.nodes, results, strict=True)}
        if os.geteuid() == 0 and bridge and not problems:
            for node in cluster.nodes:
                dev = _netns.route_device(node.host)
                if dev != bridge:
                    problems.append(
                        f"the host routes {node.host} ({node.name}) through {dev}, not the "
                        f"cluster's bridge {bridge}"
                    )
            up = [n for n in cluster.nodes if nodes[n.name] == "up"]
            if len(up) >= 2 and _netns.forward_drop_problem():
                unreachable = _internode_problem(extra, up[0], up[-1])
                if unreachable:
                    problems.append(unreachable)
        return ClusterStatus(cluster=cluster, nodes=nodes, problems=tuple(problems))

    def capabilities(self) -> tuple[Capability, ...]:
        """What tests can ask of this provider here: partitions (iptables/nft in the
        nodes' namespaces), pause and kill, libfaketime clocks (not the system clock),
        tc netem and iptables packet loss, each probed in a throwaway namespace."""
        return probe_capabilities()

    # --- building ----------------------------------------------------------------------

    def _already_up(self, state: Path, spec: ClusterSpec, opts: LocalOptions) -> Cluster | None:
        if not (state / CLUSTER_FILE).exists():
            return None
        check_provider(state, LocalProvider.name)
        ledger = Ledger.load(state)
        st = self.status(state)
        if not st.healthy or ledger is None:
            return None  # a broken leftover: the caller cleans it and builds anew
        wanted = {"name": spec.name, **opts.to_json()}
        check_config(state, "local", ledger.config, wanted, "use another state directory")
        assert st.cluster is not None
        return st.cluster

    def _preflight(self, state: Path, opts: LocalOptions) -> None:
        check_subnet_free(opts.subnet, "with the `subnet` option (e.g. 10.77.1.0/24)")
        links = _netns.existing_links()
        namespaces = _netns.existing_netns()
        taken = [f"bridge {opts.bridge}"] if opts.bridge in links else []
        for i in range(1, opts.nodes + 1):
            host_end, _ = opts.veth(i)
            if host_end in links:
                taken.append(f"interface {host_end}")
            if opts.netns(i) in namespaces:
                taken.append(f"network namespace {opts.netns(i)}")
        if taken:
            raise ClusterError(
                f"{', '.join(taken)} already exist(s) and is not part of the cluster in "
                f"{state} (its state does not list them): another cluster with the prefix "
                f"{opts.prefix!r} may be up. Choose another `prefix`, or bring that cluster "
                "down from its own state directory"
            )

    def _build(self, state: Path, spec: ClusterSpec, opts: LocalOptions) -> Cluster:
        t0 = time.monotonic()
        self._preflight(state, opts)
        forward_problem = _netns.forward_drop_problem()
        ledger = Ledger(state_dir=state, config={"name": spec.name, **opts.to_json()})
        ledger.save()  # from here on, `down` knows this cluster is ours to clean

        names = [f"n{i}" for i in range(1, opts.nodes + 1)]
        ips = [str(opts.node_ip(i)) for i in range(1, opts.nodes + 1)]
        files = [_sshd.NodeFiles(dir=state / NODES_DIR / n) for n in names]
        self._write_files(state, spec, names, ips, files)
        t_files = time.monotonic()

        if not _netns.RUN_NETNS.exists():
            ledger.created_run_netns = True
            ledger.save()
            _netns.RUN_NETNS_MARKER.touch()
        ledger.intend("bridge", opts.bridge)
        _netns.create_bridge(opts.bridge, str(opts.bridge_address), opts.subnet.prefixlen)
        for ip in ips:  # before any traffic: our addresses must go through our bridge
            dev = _netns.route_device(ip)
            if dev != opts.bridge:
                raise ClusterError(
                    f"after creating bridge {opts.bridge}, the host routes {ip} through "
                    f"{dev}, not the bridge; a more specific route on the host overrides it. "
                    "Choose another `subnet`"
                )
        for i, ip in enumerate(ips, start=1):
            ledger.intend("netns", opts.netns(i))
            _netns.create_netns(opts.netns(i))
            host_end, peer_end = opts.veth(i)
            ledger.intend("veth", host_end)
            _netns.add_veth(
                host_end=host_end,
                peer_end=peer_end,
                netns=opts.netns(i),
                bridge=opts.bridge,
                address=ip,
                prefixlen=opts.subnet.prefixlen,
            )
        t_net = time.monotonic()

        home = pwd.getpwuid(0).pw_dir
        for i, (name, f) in enumerate(zip(names, files, strict=True), start=1):
            pid = _sshd.launch_node(netns=opts.netns(i), hostname=name, files=f, home=home)
            ledger.pids[name] = {"launcher": pid}
        ledger.save()
        _sshd.wait_ready(
            [
                (n, ip, ledger.pids[n]["launcher"], f)
                for n, ip, f in zip(names, ips, files, strict=True)
            ],
            timeout=opts.ready_timeout,
        )
        for name in names:
            sshd_pid = _first_child(ledger.pids[name]["launcher"])
            if sshd_pid is not None:
                ledger.pids[name]["sshd"] = sshd_pid
        ledger.save()
        t_sshd = time.monotonic()
        if len(names) >= 2:
            why = _probe_internode(opts.netns(1), ips[-1], forward_problem)
            if why:
                raise ClusterError(f"n1 cannot reach {names[-1]} ({ips[-1]}): {why}")

        key = str(state / KEY_FILE)
        known = str(state / KNOWN_HOSTS)
        cluster = Cluster(
            provider=self.name,
            name=spec.name,
            state_dir=str(state),
            nodes=tuple(
                Node(name=n, host=ip, user="root", key_file=key, known_hosts=known)
                for n, ip in zip(names, ips, strict=True)
            ),
            capabilities=self.capabilities(),
            extra={
                "prefix": opts.prefix,
                "subnet": str(opts.subnet),
                "bridge": opts.bridge,
                "bridge_address": str(opts.bridge_address),
                "netns": {n: opts.netns(i) for i, n in enumerate(names, start=1)},
                "veths": {n: opts.veth(i)[0] for i, n in enumerate(names, start=1)},
                "pids": ledger.pids,
                "ssh_config": str(state / SSH_CONFIG),
            },
        )
        cluster.save()
        log.info(
            "local cluster %r up in %.2f s (files %.2f, network %.2f, sshd %.2f); "
            "try: ssh -F %s n1",
            spec.name,
            time.monotonic() - t0,
            t_files - t0,
            t_net - t_files,
            t_sshd - t_net,
            state / SSH_CONFIG,
        )
        return cluster

    def _write_files(
        self,
        state: Path,
        spec: ClusterSpec,
        names: list[str],
        ips: list[str],
        files: list[_sshd.NodeFiles],
    ) -> None:
        for f in files:
            f.make_dirs()
        key = state / KEY_FILE
        _sshd.generate_keys(
            [(key, f"clew-{spec.name}")]
            + [(f.host_key, f"clew-{spec.name}-{n}") for n, f in zip(names, files, strict=True)]
        )
        client_pub = key.with_name(KEY_FILE + ".pub").read_text()
        pubs = [f.host_key.with_name(f.host_key.name + ".pub").read_text() for f in files]
        _write(
            state / KNOWN_HOSTS,
            _sshd.known_hosts(list(zip(names, ips, pubs, strict=True))),
            0o644,
        )
        hosts = _sshd.hosts_file(list(zip(names, ips, strict=True)))
        for ip, f in zip(ips, files, strict=True):
            _write(f.hosts, hosts, 0o644)
            _write(f.authorized_keys, client_pub, 0o600)
            _write(f.sshd_config, _sshd.sshd_config(listen=ip), 0o600)
        _write(
            state / SSH_CONFIG,
            _sshd.client_config(
                nodes=list(zip(names, ips, strict=True)), key=key, known=state / KNOWN_HOSTS
            ),
            0o644,
        )
        _sshd.validate_sshd_configs(state / NODES_DIR, names)

    # --- tearing down ------------------------------------------------------------------

    def _teardown(self, state: Path, *, keep_dir: bool = False) -> None:
        """Kill, delete and remove everything the ledger lists, then the state files
        (keeping the lock and the directory itself with ``keep_dir``)."""
        ledger = Ledger.load(state)
        if ledger is None:
            # Without a ledger nothing here is provably ours, except a cluster file that
            # names this provider (the ledger is removed last, so this is unlikely).
            with contextlib.suppress(ClusterError, FileNotFoundError):
                if Cluster.load(state).provider == self.name:
                    (state / CLUSTER_FILE).unlink()
            return
        errors: list[str] = []
        t0 = time.monotonic()
        try:
            _netns.kill_netns_processes(ledger.names("netns"), reap=_sshd.reap)
        except ClusterError as e:
            errors.append(str(e))
        for entry in ledger.pids.values():
            if "launcher" in entry:
                _sshd.reap(entry["launcher"])
        for obj in reversed(ledger.objects):  # veths, then their namespaces, then bridge
            try:
                if obj["kind"] == "netns":
                    _netns.delete_netns(obj["name"])
                else:
                    _netns.delete_link(obj["name"])
            except ClusterError as e:
                errors.append(str(e))
        if not errors:
            try:
                _netns.release_run_netns()
            except ClusterError as e:
                errors.append(str(e))
        log.info("local cluster in %s torn down in %.2f s", state, time.monotonic() - t0)
        if errors:
            raise ClusterError(
                f"could not remove everything of the cluster in {state}: "
                + "; ".join(errors)
                + f". Its ledger {state / LEDGER_FILE} is kept so `{down_command(state)}` "
                "can retry"
            )
        self._remove_files(state, keep_dir=keep_dir)

    def _remove_files(self, state: Path, *, keep_dir: bool) -> None:
        nodes = state / NODES_DIR
        if nodes.is_dir() and not nodes.is_symlink():
            shutil.rmtree(nodes)
        for name in STATE_FILES:
            if name in (LEDGER_FILE, LOCK_FILE):
                continue
            with contextlib.suppress(FileNotFoundError):
                (state / name).unlink()
        with contextlib.suppress(FileNotFoundError):
            (state / LEDGER_FILE).unlink()  # last: it lists what is ours
        if not keep_dir:
            with contextlib.suppress(FileNotFoundError):
                (state / LOCK_FILE).unlink()
            with contextlib.suppress(OSError):
                state.rmdir()  # only if empty: never remove what is not ours


# --- helpers ----------------------------------------------------------------------------


def _state_dir(path: Path | str) -> Path:
    state = Path(path).absolute()
    bad = sorted({c for c in str(state) if c in '"%\\' or not c.isprintable()})
    if bad:
        raise ConfigError(
            f"the state directory {str(state)!r} contains {' '.join(map(repr, bad))}, which "
            "OpenSSH configuration files cannot hold; choose another state directory"
        )
    return state


def _require_root(doing: str) -> None:
    if os.geteuid() == 0:
        return
    try:
        userns = int(Path("/proc/sys/user/max_user_namespaces").read_text().strip())
    except (OSError, ValueError):
        userns = 0
    without = "enabled here" if userns > 0 else "disabled here"
    raise ClusterError(
        f"to {doing}, the local provider needs root (it creates network namespaces, a "
        f"bridge and runs sshd as each node's PID 1); run clew as root, e.g. with sudo. "
        f"Without root it would need unprivileged user namespaces ({without}) and an "
        "asyncssh-based node server, which clew does not have yet"
    )


def _require_tools() -> None:
    missing = {tool: pkg for tool, pkg in _REQUIRED_TOOLS.items() if not which(tool)}
    if missing:
        raise ClusterError(
            f"the local provider needs {', '.join(missing)}, which is not installed; on "
            f"Debian: apt-get install {' '.join(sorted(set(missing.values())))}"
        )


def _write(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _first_child(pid: int) -> int | None:
    """The first child of ``pid`` (the node's PID 1, seen from the host), if any."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def _proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return None


def _ssh_answers(host: str, timeout: float) -> bool:
    try:
        with socket.create_connection((host, 22), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _probe_internode(netns: str, ip: str, forward_problem: str | None) -> str | None:
    """Why a node in ``netns`` cannot reach sshd at ``ip``, or ``None`` if it can."""
    argv = ["ip", "netns", "exec", netns, sys.executable, "-I", "-S", "-c", _PROBE, ip]
    try:
        run(argv, timeout=10, what=f"connect from {netns} to {ip}:22")
    except CommandFailed as e:
        why = (e.stderr or e.stdout).strip().splitlines()[-1:] or [str(e)]
        return f"a TCP connection from {netns} to {ip}:22 failed ({why[0]})" + (
            f". Likely cause: {forward_problem}" if forward_problem else ""
        )
    return None


def _internode_problem(extra: dict[str, Any], a: Node, b: Node) -> str | None:
    ns = str(extra.get("netns", {}).get(a.name, ""))
    why = _probe_internode(ns, b.host, _netns.forward_drop_problem())
    return f"{a.name} cannot reach {b.name}: {why}" if why else None
