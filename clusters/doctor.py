"""What this machine (and a cluster's nodes) can do for clew: ``clew doctor``'s checks.

Every check returns a :class:`~clusters.base.Capability` (a name, whether it is there, and
a detail a person can act on). Checks are bounded in time and leave nothing behind: the
kernel probes (netem, the iptables ``statistic`` match) run in a throwaway network
namespace created with ``unshare --net``, which the kernel removes when the probe's process
exits. Unlike ``ip netns add``, that creates no ``/run/netns`` entry or bind mount that
could outlive a killed probe, and it never touches the host's interfaces or firewall.

The capabilities:

==================  =====================================================================
``namespaces``      root, or unprivileged user namespaces (needed by the local provider)
``ip``, ``unshare``  iproute2 and util-linux (local provider)
``nft``             nftables (partitions)
``iptables``        iptables (partitions; its ``statistic`` match gives packet loss)
``tc``              traffic control (netem delay)
``sshd``, ``ssh``   OpenSSH server (every local node runs one) and client (handy by hand)
``etcd``            the etcd server binary, for the etcd tests
``redis-server``    the Redis server, for the redis suite
``redis-sentinel``  Redis Sentinel, for the redis suite's failovers
``mariadbd``        the MariaDB server, for the galera suite
``rsync``           rsync, the galera suite's state transfers to joining nodes
``galera-4``        the Galera 4 replication library, for the galera suite
``clock-libfaketime``   clock faults for C, Python and Java databases
``packet-netem``    packet delay, duplication and reordering (kernel module ``sch_netem``)
``packet-loss-iptables``  random packet loss with iptables' ``statistic`` match
``packet-delay-nfqueue``  packet delay without netem: an iptables ``NFQUEUE`` rule, and
                    clew's delayer (python3) binding the queue
``packet-faults``   a summary: which packet faults (loss, delay, duplication) work, and how
``node:<name>``     a node's SSH port answers (TCP), when a cluster is up
``engine:<name>``   docker, podman: whether the engine's ``info`` answers, and why not
``qemu-system-x86_64``, ``qemu-img``, ``mmdebstrap``  the qemu provider's tools
``qemu-accel``      KVM or TCG for the qemu provider's VMs, and why not KVM
``vm-image``        the qemu provider's disk image (``clew image build --vm``)
``fault:<kind>``    one per registered fault kind (:mod:`nemeses.kinds`): whether the local
                    provider on this machine can strike it, and what it needs of the DB
==================  =====================================================================

``clock-libfaketime`` and the ``packet-netem|loss-iptables|delay-nfqueue`` names are also
fault capabilities that providers report (with ``partition``, ``pause``, ``kill`` and
``clock-system``), so a test can ask ``cluster.capability("packet-netem")`` whatever the
nodes are.

The helpers :func:`run_tool` (a subprocess with a hard timeout that kills its whole process
group) and :func:`check_tcp_port` are used by the providers too.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from clusters._run import stop_shielded
from clusters.base import Capability, Node

__all__ = [
    "LOCAL_REQUIREMENTS",
    "ToolResult",
    "check_binary",
    "check_galera",
    "check_iptables_statistic",
    "check_libfaketime",
    "check_namespaces",
    "check_netem",
    "check_nfqueue_delay",
    "check_nodes",
    "check_tcp_port",
    "fault_kind_checks",
    "find_binary",
    "missing_for_local",
    "packet_fault_summary",
    "run_checks",
    "run_tool",
]

#: Seconds any single probe may take.
PROBE_TIMEOUT = 5.0
#: Seconds a TCP connect to a node's SSH port may take.
TCP_TIMEOUT = 2.0

#: Directories searched for system binaries besides ``$PATH`` (a non-root ``$PATH`` often
#: lacks the sbin directories where ``ip``, ``sshd`` and ``iptables`` live).
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")

#: Binaries worth checking, and what they are for.
_BINARIES: dict[str, str] = {
    "ip": "iproute2: the local provider's namespaces, bridge and veths",
    "unshare": "util-linux: the local provider's node namespaces, and these probes",
    "nft": "nftables: network partitions",
    "iptables": "iptables: network partitions and random packet loss",
    "tc": "traffic control: netem packet delay",
    "sshd": "OpenSSH server: every local node runs one",
    "ssh": "OpenSSH client: to look at nodes by hand",
    "etcd": "the etcd server, for etcd tests",
    "redis-server": "the Redis server, for the redis suite",
    "redis-sentinel": "Redis Sentinel, for the redis suite's failover",
    "mariadbd": "the MariaDB server, for the galera suite",
    "rsync": "rsync: the galera suite's state transfers to joining nodes",
}

#: How to install what is missing (Debian/Ubuntu package names).
_INSTALL: dict[str, str] = {
    "ip": "apt-get install iproute2",
    "unshare": "apt-get install util-linux",
    "nft": "apt-get install nftables",
    "iptables": "apt-get install iptables",
    "tc": "apt-get install iproute2",
    "sshd": "apt-get install openssh-server",
    "ssh": "apt-get install openssh-client",
    "etcd": "apt-get install etcd-server etcd-client",
    "redis-server": "apt-get install redis-server",
    "redis-sentinel": "apt-get install redis-sentinel",
    "mariadbd": "apt-get install mariadb-server",
    "rsync": "apt-get install rsync",
    "galera-4": "apt-get install galera-4",
    "libfaketime": "apt-get install libfaketime faketime",
}

#: What the local provider cannot do without. ``nft | iptables`` means either will do.
LOCAL_REQUIREMENTS: tuple[str, ...] = ("namespaces", "ip", "unshare", "sshd", "nft|iptables")


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult:
    """What a command did: its exit status (``None`` if it timed out) and its output."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Whether the command ran to the end and exited 0."""
        return self.returncode == 0

    @property
    def timed_out(self) -> bool:
        """Whether the command was killed for running past its timeout."""
        return self.returncode is None

    def tail(self, lines: int = 5) -> str:
        """The last lines of stderr (else stdout), joined with `` | ``, for messages."""
        text = self.stderr.strip() or self.stdout.strip()
        return " | ".join(text.splitlines()[-lines:]) or "(no output)"


def run_tool(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | Path | None = None,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ToolResult:
    """Run ``argv`` (no shell) with a hard ``timeout`` in seconds; never raises for a
    failing command. On timeout the command's whole process group is killed (so helpers it
    spawned do not linger) and ``returncode`` is ``None``. A missing executable raises
    :class:`FileNotFoundError`; callers check with :func:`find_binary` first."""
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = stop_shielded(proc)  # its whole group, and its output read for 2 s at most
        note = f"\n(killed after {timeout:g} s)"
        return ToolResult(argv=tuple(argv), returncode=None, stdout=out or "",
                          stderr=(err or "") + note)  # fmt: skip
    return ToolResult(argv=tuple(argv), returncode=proc.returncode, stdout=out, stderr=err)


def find_binary(name: str) -> str | None:
    """The path of executable ``name``: as given if it contains a slash, else found on
    ``$PATH`` or in the sbin directories; ``None`` if there is none."""
    if "/" in name:
        return name if os.access(name, os.X_OK) and os.path.isfile(name) else None
    found = shutil.which(name)
    if found:
        return found
    path = os.pathsep.join(_SBIN)
    return shutil.which(name, path=path)


def check_binary(name: str, purpose: str | None = None) -> Capability:
    """Whether executable ``name`` is installed; the detail gives its path, or what it is
    for and how to install it."""
    path = find_binary(name)
    if path:
        return Capability(name=name, available=True, detail=path)
    what = purpose or _BINARIES.get(name, name)
    how = _INSTALL.get(name)
    hint = f"; install it: {how}" if how else ""
    return Capability(name=name, available=False, detail=f"not found ({what}){hint}")


def _read_proc(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def check_namespaces() -> Capability:
    """Whether clew can make namespaces here: as root, or through unprivileged user
    namespaces (``kernel.unprivileged_userns_clone`` not 0, ``user.max_user_namespaces``
    above 0)."""
    if os.geteuid() == 0:
        return Capability(name="namespaces", available=True, detail="running as root")
    clone = _read_proc("/proc/sys/kernel/unprivileged_userns_clone")
    if clone == "0":
        return Capability(
            name="namespaces",
            available=False,
            detail="not root and unprivileged user namespaces are off "
            "(kernel.unprivileged_userns_clone = 0); run as root, or enable them with "
            "`sysctl kernel.unprivileged_userns_clone=1`",
        )
    limit = _read_proc("/proc/sys/user/max_user_namespaces")
    if limit == "0":
        return Capability(
            name="namespaces",
            available=False,
            detail="not root and user.max_user_namespaces = 0; run as root, or raise it with "
            "`sysctl user.max_user_namespaces=15000`",
        )
    return Capability(
        name="namespaces",
        available=True,
        detail=f"unprivileged user namespaces (max {limit or 'unknown'}); "
        "note that OpenSSH's sshd cannot run in them",
    )


_FAKETIME_GLOBS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
)


def check_libfaketime() -> Capability:
    """Whether libfaketime is installed (in its usual directories, or known to
    ``ldconfig -p``); the detail is the library's path."""
    for pattern in _FAKETIME_GLOBS:
        hits = sorted(glob.glob(pattern))
        if hits:
            return Capability(name="clock-libfaketime", available=True, detail=hits[0])
    ldconfig = find_binary("ldconfig")
    if ldconfig:
        res = run_tool([ldconfig, "-p"], timeout=PROBE_TIMEOUT)
        for line in res.stdout.splitlines():
            if "libfaketime.so.1" in line and "=>" in line:
                return Capability(
                    name="clock-libfaketime", available=True, detail=line.split("=>")[-1].strip()
                )
    return Capability(
        name="clock-libfaketime",
        available=False,
        detail=f"not found (clock faults need it); install it: {_INSTALL['libfaketime']}",
    )


#: Where Debian's galera-4 puts the Galera provider library.
GALERA_LIBRARY = "/usr/lib/galera/libgalera_smm.so"


def check_galera() -> Capability:
    """Whether the Galera 4 provider library is installed (Debian's path); the detail is
    its path, or how to install it."""
    if os.path.exists(GALERA_LIBRARY):
        return Capability(name="galera-4", available=True, detail=GALERA_LIBRARY)
    return Capability(
        name="galera-4",
        available=False,
        detail=f"not found (the galera suite needs it); install it: {_INSTALL['galera-4']}",
    )


def _probe_in_netns(name: str, argv: list[str], *, missing: str, failed: str) -> Capability:
    """Run ``argv`` inside a throwaway network namespace (``unshare --net``; a user
    namespace too when not root) and turn the outcome into capability ``name``."""
    unshare = find_binary("unshare")
    tool = find_binary(argv[0])
    if unshare is None or tool is None:
        absent = "unshare" if unshare is None else argv[0]
        return Capability(name=name, available=False, detail=f"cannot probe: {absent} {missing}")
    prefix = [unshare, "--net"]
    if os.geteuid() != 0:
        prefix = [unshare, "--user", "--map-root-user", "--net"]
    res = run_tool([*prefix, "--", tool, *argv[1:]], timeout=PROBE_TIMEOUT)
    if res.ok:
        return Capability(name=name, available=True, detail="works (probed in a throwaway netns)")
    return Capability(name=name, available=False, detail=f"{failed}: {res.tail(2)}")


def check_netem() -> Capability:
    """Whether the kernel has netem (packet delay): ``tc qdisc add dev lo root netem delay
    1ms`` in a throwaway network namespace, gone when the probe exits."""
    return _probe_in_netns(
        "packet-netem",
        ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
        missing="not found (install iproute2)",
        failed="no netem: netem's packet delay faults are unavailable, and so is duplication "
        "(loss can use the iptables statistic match, delay the NFQUEUE delayer; try "
        "`modprobe sch_netem`)",
    )


def check_iptables_statistic() -> Capability:
    """Whether iptables' ``statistic`` match works (random packet loss): one rule added in a
    throwaway network namespace, gone when the probe exits."""
    return _probe_in_netns(
        "packet-loss-iptables",
        [
            "iptables",
            "-w",
            "2",
            "-A",
            "INPUT",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            "0.5",
            "-j",
            "DROP",
        ],
        missing="not found (install iptables)",
        failed="the iptables statistic match does not work: random packet loss is unavailable",
    )


#: The packet nemesis's NFQUEUE delayer (a standalone program run with python3).
_DELAYER = Path(__file__).resolve().parents[1] / "nemeses" / "nfqueue_delayer.py"


def check_nfqueue_delay() -> Capability:
    """Whether packet delay works without netem: in a throwaway network namespace, an
    iptables ``NFQUEUE`` rule is added and clew's delayer (run by ``python3``) binds that
    queue and lets it go."""
    iptables, python = find_binary("iptables"), find_binary("python3")
    if iptables is None or python is None or not _DELAYER.is_file():
        absent = "iptables" if iptables is None else "python3" if python is None else _DELAYER
        return Capability(
            name="packet-delay-nfqueue",
            available=False,
            detail=f"cannot probe: {absent} not found (packet delay without netem needs it)",
        )
    script = (
        '"$0" -w 2 -t mangle -A INPUT -j NFQUEUE --queue-num 1 --queue-bypass && '
        '"$1" "$2" --probe --queue 1'
    )
    return _probe_in_netns(
        "packet-delay-nfqueue",
        ["sh", "-c", script, iptables, python, str(_DELAYER)],
        missing="not found",
        failed="iptables' NFQUEUE target or binding a queue failed: packet delay needs netem",
    )


def packet_fault_summary(netem: Capability, loss: Capability, delay: Capability) -> Capability:
    """``packet-faults``: which packet faults work and how, from the three packet probes
    (netem; the iptables statistic match; the NFQUEUE delayer). Available if loss or
    delay works at all."""
    how_loss = "netem" if netem.available else "the iptables statistic match"
    how_delay = "netem" if netem.available else "the NFQUEUE delayer"
    parts = [
        f"loss: {how_loss}" if netem.available or loss.available else "loss: unavailable",
        f"delay and jitter: {how_delay}"
        if netem.available or delay.available
        else "delay: unavailable",
        "duplication: netem" if netem.available else "duplication: unavailable (needs netem)",
    ]
    works = netem.available or loss.available or delay.available
    return Capability(name="packet-faults", available=works, detail="; ".join(parts))


def check_tcp_port(host: str, port: int, timeout: float = TCP_TIMEOUT) -> str | None:
    """Whether ``host:port`` accepts a TCP connection within ``timeout`` seconds: ``None``
    if it does, else the reason (refused, timed out, no such host). This is a plain TCP
    connect, not an SSH login."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer on {host}:{port} within {timeout:g} s"
    except ConnectionRefusedError:
        return f"connection to {host}:{port} refused (is sshd running there?)"
    except socket.gaierror as e:
        return f"cannot resolve {host!r}: {e.strerror}"
    except OSError as e:
        return f"cannot connect to {host}:{port}: {e.strerror or e}"


def check_nodes(nodes: Iterable[Node], timeout: float = TCP_TIMEOUT) -> dict[str, str]:
    """Node name -> ``"up"`` if its SSH port answers a TCP connect within ``timeout``
    seconds, else the reason. All nodes are checked in parallel."""
    nodes = list(nodes)
    if not nodes:
        return {}
    with ThreadPoolExecutor(max_workers=min(16, len(nodes))) as pool:
        reasons = list(pool.map(lambda n: check_tcp_port(n.host, n.port, timeout), nodes))
    return {n.name: (r or "up") for n, r in zip(nodes, reasons, strict=True)}


def run_checks(nodes: Iterable[Node] = ()) -> list[Capability]:
    """All of this machine's checks, then one ``node:<name>`` capability per node given
    (its SSH port answers). Takes well under a second on a healthy machine and at most a
    few probe timeouts on a broken one."""
    caps = [check_namespaces()]
    caps += [check_binary(name) for name in _BINARIES]
    packet = [check_netem(), check_iptables_statistic(), check_nfqueue_delay()]
    caps += [check_galera(), check_libfaketime(), *packet, packet_fault_summary(*packet)]
    caps += fault_kind_checks(_local_provider_capabilities())
    caps += _container_engine_checks()
    caps += _qemu_checks()
    node_list = list(nodes)
    by_name = {n.name: n for n in node_list}
    for name, state in check_nodes(node_list).items():
        n = by_name[name]
        detail = f"{n.user}@{n.host}:{n.port} answers (TCP)" if state == "up" else state
        caps.append(Capability(name=f"node:{name}", available=state == "up", detail=detail))
    return caps


def _container_engine_checks() -> list[Capability]:
    """``engine:docker``, ``engine:podman``: which container engines are usable, and why
    not (:mod:`clusters.container_engine`)."""
    from clusters.container_engine import engine_checks

    return engine_checks()


def _qemu_checks() -> list[Capability]:
    """The qemu provider's tools, accelerator and disk image (:mod:`clusters.qemu`)."""
    from clusters.qemu import doctor_checks

    return doctor_checks()


def _local_provider_capabilities() -> tuple[Capability, ...]:
    from clusters._localcaps import probe_capabilities

    return probe_capabilities()


def fault_kind_checks(
    provider_caps: Iterable[Capability], provider: str = "local"
) -> list[Capability]:
    """One ``fault:<kind>`` capability per registered fault kind, read from the kind's
    declared needs: available when ``provider_caps`` (the capabilities of the provider
    named ``provider``) offer one of each group of capabilities it needs; the detail names
    what is missing (one the provider does not offer at all, such as the local provider's
    power-off, as such), and the DB abilities the kind also needs (which only a run can
    check, against its adapter)."""
    from nemeses import kinds
    from nemeses.abilities import ability_name

    have = {c.name: c for c in provider_caps}
    out = []
    for kind in kinds.all_kinds():
        missing = []
        for group in kind.provider_needs:
            if not any(have.get(n) is not None and have[n].available for n in group):
                why = [f"{n}: {have[n].detail}" if n in have
                       else f"{n}: not offered by the {provider} provider"
                       for n in group]  # fmt: skip
                missing.append(" / ".join(why))
        db = [ability_name(a) for a in kind.db_needs]
        needs_db = f"; the DB adapter must offer {', '.join(db)}" if db else ""
        if missing:
            detail = "missing " + "; ".join(missing) + needs_db
        else:
            got = [n for g in kind.provider_needs for n in g if n in have and have[n].available]
            via = f"via {', '.join(got)}" if got else "needs nothing of the provider"
            detail = via + needs_db
        out.append(Capability(name=f"fault:{kind.name}", available=not missing, detail=detail))
    return out


def missing_for_local(caps: Iterable[Capability]) -> list[str]:
    """What the local provider needs that ``caps`` lack (each of
    :data:`LOCAL_REQUIREMENTS`; ``a|b`` is satisfied by either)."""
    have = {c.name for c in caps if c.available}
    return [req for req in LOCAL_REQUIREMENTS if not have & set(req.split("|"))]
