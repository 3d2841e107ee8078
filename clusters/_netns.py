"""The local provider's network: a bridge on the host and one network namespace per node.

Everything here acts on objects by exact name (a bridge, a veth, a namespace) or by PID,
never by pattern, and only reads the host's addresses, routes and firewall. What to create
and what belongs to whom is decided by the caller (:mod:`clusters.local`); this module only
knows how to inspect, create and delete.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from clusters._run import CommandFailed, run, which
from harness.errors import ClusterError

__all__ = [
    "RUN_NETNS",
    "RUN_NETNS_MARKER",
    "add_veth",
    "create_bridge",
    "create_netns",
    "delete_link",
    "delete_netns",
    "existing_links",
    "existing_netns",
    "forward_drop_problem",
    "kill_netns_processes",
    "netns_pids",
    "overlaps",
    "release_run_netns",
    "route_device",
]

log = logging.getLogger(__name__)

#: Where ``ip netns`` keeps its named namespaces.
RUN_NETNS = Path("/run/netns")
#: Left by whichever clew cluster created :data:`RUN_NETNS`, so the last one to leave can
#: remove the directory again (``/run`` is a tmpfs, so the marker never outlives it).
RUN_NETNS_MARKER = Path("/run/clew-created-run-netns")


# --- inspection (read only) -------------------------------------------------------------


def _ip_json(args: list[str], what: str) -> list[dict[str, Any]]:
    out = run(["ip", "-j", *args], what=what, timeout=5).stdout.strip()
    if not out:
        return []
    data = json.loads(out)
    return data if isinstance(data, list) else []


def overlaps(subnet: ipaddress.IPv4Network) -> list[str]:
    """What on the host already uses addresses in ``subnet``: each IPv4 address and each
    non-default route (in any routing table) that overlaps it, described for a person."""
    found: list[str] = []
    for link in _ip_json(["-4", "addr", "show"], "list the host's addresses"):
        for a in link.get("addr_info", []) or []:
            try:
                net = ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False)
            except (KeyError, ValueError):
                continue
            if isinstance(net, ipaddress.IPv4Network) and net.overlaps(subnet):
                found.append(f"address {a['local']}/{a['prefixlen']} on {link.get('ifname')}")
    for r in _ip_json(["-4", "route", "show", "table", "all"], "list the host's routes"):
        dst = str(r.get("dst", ""))
        if not dst or dst == "default":
            continue  # a default route overlaps everything and is expected
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network) and net.prefixlen and net.overlaps(subnet):
            table = r.get("table", "main")
            dev = f" dev {r['dev']}" if r.get("dev") else ""
            found.append(f"route {dst}{dev} (table {table})")
    return sorted(set(found))


def existing_links() -> set[str]:
    """Names of the network interfaces in the host's namespace."""
    return {str(x.get("ifname")) for x in _ip_json(["link", "show"], "list the host's links")}


def existing_netns() -> set[str]:
    """Names of the namespaces ``ip netns`` knows (the entries of ``/run/netns``)."""
    try:
        return set(os.listdir(RUN_NETNS))
    except FileNotFoundError:
        return set()


def route_device(ip: str) -> str | None:
    """The interface the host would send a packet to ``ip`` through (``ip route get``)."""
    routes = _ip_json(["route", "get", ip], f"ask the host how it routes {ip}")
    return str(routes[0].get("dev")) if routes and routes[0].get("dev") else None


def forward_drop_problem() -> str | None:
    """Why bridged traffic between nodes may be dropped by the host firewall, or ``None``.

    With ``net.bridge.bridge-nf-call-iptables=1``, packets between two ports of a bridge
    cross the host's FORWARD hook, so a FORWARD policy of DROP (common on Docker hosts)
    silently kills traffic between nodes. This only looks; it never changes anything.
    """
    try:
        if Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip() != "1":
            return None
    except OSError:
        return None  # br_netfilter not loaded: bridged traffic skips iptables
    drops: list[str] = []
    if which("iptables"):
        with contextlib.suppress(CommandFailed):
            out = run(["iptables", "-w", "5", "-S", "FORWARD"], timeout=10).stdout
            if "-P FORWARD DROP" in out.splitlines():
                drops.append("iptables chain FORWARD has policy DROP")
    if which("nft"):
        with contextlib.suppress(CommandFailed, ValueError):
            data = json.loads(run(["nft", "-j", "list", "chains"], timeout=10).stdout or "{}")
            for item in data.get("nftables", []):
                ch = item.get("chain")
                seen_by_iptables = drops and (ch or {}).get("table") == "filter"
                if (
                    ch
                    and ch.get("hook") == "forward"
                    and ch.get("policy") == "drop"
                    and ch.get("family") in ("ip", "inet")
                    and not (seen_by_iptables and ch.get("family") == "ip")
                ):
                    drops.append(
                        f"nft chain {ch.get('family')} {ch.get('table')} {ch.get('name')} "
                        "(hook forward) has policy drop"
                    )
    if not drops:
        return None
    return (
        "net.bridge.bridge-nf-call-iptables is 1 and "
        + "; ".join(dict.fromkeys(drops))
        + ", so traffic between nodes on the bridge may be dropped. clew does not change "
        "the host firewall: either `sysctl net.bridge.bridge-nf-call-iptables=0`, or add "
        "a FORWARD rule accepting traffic on the cluster's bridge"
    )


# --- creation ---------------------------------------------------------------------------


def create_bridge(name: str, address: str, prefixlen: int) -> None:
    """Create bridge ``name`` with ``address/prefixlen`` and bring it up."""
    run(["ip", "link", "add", name, "type", "bridge"], what=f"create bridge {name}")
    run(
        ["ip", "-b", "-"],
        input=f"addr add {address}/{prefixlen} dev {name}\nlink set {name} up\n",
        what=f"configure bridge {name}",
    )


def create_netns(name: str) -> None:
    """Create the named network namespace ``name``."""
    run(["ip", "netns", "add", name], what=f"create network namespace {name}")


def add_veth(
    *, host_end: str, peer_end: str, netns: str, bridge: str, address: str, prefixlen: int
) -> None:
    """Link namespace ``netns`` to ``bridge`` by a veth pair: ``host_end`` on the bridge,
    the other end as ``eth0`` in the namespace with ``address``; ``lo`` up; no default
    route."""
    run(
        ["ip", "-b", "-"],
        input=(
            f"link add {host_end} type veth peer name {peer_end} netns {netns}\n"
            f"link set {host_end} master {bridge} up\n"
        ),
        what=f"create veth {host_end} for {netns}",
    )
    run(
        ["ip", "-n", netns, "-b", "-"],
        input=(
            f"link set {peer_end} name eth0\n"
            f"addr add {address}/{prefixlen} dev eth0\n"
            "link set eth0 up\n"
            "link set lo up\n"
        ),
        what=f"configure eth0 in {netns}",
    )


# --- teardown ---------------------------------------------------------------------------


def netns_pids(name: str) -> list[int]:
    """PIDs of the processes in network namespace ``name`` (none if it does not exist)."""
    if name not in existing_netns():
        return []
    out = run(["ip", "netns", "pids", name], what=f"list processes in {name}", check=False)
    return [int(x) for x in out.stdout.split() if x.isdigit()]


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


#: Seconds killed processes get to be gone. A SIGKILLed process still has to finish an
#: fsync or free its memory: on a starved machine (load 20 on 2 cores) 3 s was sometimes
#: too few; the wait ends as soon as they are gone, so a wider bound costs nothing.
KILL_TIMEOUT = 15.0


def kill_netns_processes(
    names: Iterable[str],
    *,
    reap: Callable[[int], None] | None = None,
    timeout: float = KILL_TIMEOUT,
) -> list[int]:
    """Kill (SIGCONT, then SIGKILL) exactly the processes in the namespaces ``names`` and
    wait until they are dead; return the PIDs that were killed. ``reap`` is called for
    each killed PID so that our own children do not stay zombies. Raises
    :class:`~harness.errors.ClusterError` if some survive ``timeout`` seconds."""
    names = list(names)
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        pids = sorted({p for n in names for p in netns_pids(n)} - {os.getpid()})
        pids = [p for p in pids if not _gone(p)]
        if not pids:
            break
        for sig in (signal.SIGCONT, signal.SIGKILL):
            for p in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, sig)
        killed.extend(p for p in pids if p not in killed)
        while time.monotonic() < deadline and not all(_gone(p) for p in pids):
            time.sleep(0.005)
        if time.monotonic() >= deadline:
            alive = [p for p in pids if not _gone(p)]
            if alive:
                raise ClusterError(
                    f"processes {alive} in namespaces {', '.join(names)} did not die after "
                    f"SIGKILL within {timeout:g} s; look at them with `ps -o pid,stat,args "
                    f"-p {','.join(map(str, alive))}` and run `clew cluster down` again"
                )
    if reap:
        for p in killed:
            reap(p)
    return killed


def delete_link(name: str) -> bool:
    """Delete interface ``name`` if it exists; whether it existed."""
    if name not in existing_links():
        return False
    proc = run(["ip", "link", "del", name], what=f"delete {name}", check=False)
    if proc.returncode != 0 and name in existing_links():
        raise CommandFailed(
            f"cannot delete interface {name}: {proc.stderr.strip()}",
            returncode=proc.returncode,
            stdout=proc.stdout,
            stderr=proc.stderr,
        )
    return True


def delete_netns(name: str) -> bool:
    """Delete network namespace ``name`` if it exists; whether it existed."""
    if name not in existing_netns():
        return False
    run(["ip", "netns", "del", name], what=f"delete network namespace {name}")
    return True


def release_run_netns() -> None:
    """Remove ``/run/netns`` if a clew cluster created it and no namespace is left in it:
    unmount the bind mount ``ip netns`` put there, then remove the directory. Failing to
    remove it is logged, not raised: an empty ``/run/netns`` harms nothing."""
    if not RUN_NETNS_MARKER.exists() or not RUN_NETNS.is_dir() or existing_netns():
        return
    for _ in range(8):  # `ip netns add` may stack bind mounts; each umount removes one
        proc = run(["umount", str(RUN_NETNS)], what="unmount /run/netns", check=False, timeout=5)
        if proc.returncode != 0:
            break  # "not mounted": done
    try:
        RUN_NETNS.rmdir()
    except OSError as e:
        log.warning("could not remove %s, which clew created: %s", RUN_NETNS, e.strerror)
        return
    with contextlib.suppress(FileNotFoundError):
        RUN_NETNS_MARKER.unlink()
