"""What the local provider can do on this machine, found by trying it.

Network probes run in a throwaway *anonymous* network namespace (``unshare --net``), which
vanishes with the probe process: they never touch the host's firewall, qdiscs or
``/run/netns``.
"""

from __future__ import annotations

import functools
import glob
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from clusters._run import CommandFailed, run, which
from clusters.base import Capability

__all__ = ["probe_capabilities"]

_LIBFAKETIME_GLOBS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
)


def _in_throwaway_netns(*argv: str) -> str | None:
    """Run ``argv`` in a fresh anonymous network namespace; ``None`` if it worked, else
    the reason it did not."""
    if not which(argv[0]):
        return f"`{argv[0]}` is not installed"
    try:
        run(["unshare", "--net", *argv], timeout=10)
    except CommandFailed as e:
        lines = (e.stderr or e.stdout).strip().splitlines()
        return lines[-1] if lines else str(e)
    return None


def _partition() -> Capability:
    ipt = _in_throwaway_netns("iptables", "-w", "5", "-A", "INPUT", "-s", "192.0.2.1", "-j", "DROP")
    nft = _in_throwaway_netns("nft", "add", "table", "inet", "clew_probe")
    tools = [t for t, err in (("iptables", ipt), ("nft", nft)) if err is None]
    if tools:
        return Capability(
            name="partition",
            available=True,
            detail=f"{' and '.join(tools)} work inside the nodes' network namespaces",
        )
    return Capability(
        name="partition",
        available=False,
        detail=f"neither iptables ({ipt}) nor nft ({nft}) works in a network namespace; "
        "install iptables or nftables",
    )


def _packet_netem() -> Capability:
    err = _in_throwaway_netns("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms")
    if err is None:
        return Capability(name="packet-netem", available=True, detail="tc netem works")
    return Capability(
        name="packet-netem",
        available=False,
        detail=f"tc netem failed in a network namespace ({err}); this kernel probably has no "
        "sch_netem. Use packet-loss-iptables for loss, packet-delay-nfqueue for delay",
    )


def _packet_loss_iptables() -> Capability:
    err = _in_throwaway_netns(
        "iptables", "-w", "5", "-A", "INPUT", "-m", "statistic", "--mode", "random",
        "--probability", "0.5", "-j", "DROP",
    )  # fmt: skip
    if err is None:
        return Capability(
            name="packet-loss-iptables",
            available=True,
            detail="iptables statistic match works inside the nodes' namespaces",
        )
    return Capability(
        name="packet-loss-iptables", available=False, detail=f"iptables statistic match: {err}"
    )


#: The packet nemesis's NFQUEUE delayer (a standalone program; nodes run it with python3).
_DELAYER = Path(__file__).resolve().parents[1] / "nemeses" / "nfqueue_delayer.py"


def _packet_delay_nfqueue() -> Capability:
    python = which("python3")
    if python is None or not _DELAYER.is_file():
        missing = "python3 is not installed" if python is None else f"{_DELAYER} is missing"
        return Capability(name="packet-delay-nfqueue", available=False, detail=missing)
    # An NFQUEUE rule, then the delayer binding that queue and letting it go.
    err = _in_throwaway_netns(
        "sh", "-c",
        "trap '' INT; "  # (see clusters._run.popen_shielded)
        'iptables -w 5 -t mangle -A INPUT -j NFQUEUE --queue-num 1 --queue-bypass && '
        '"$0" "$1" --probe --queue 1',
        python, str(_DELAYER),
    )  # fmt: skip
    if err is None:
        return Capability(
            name="packet-delay-nfqueue",
            available=True,
            detail="packet delay and jitter without netem: iptables NFQUEUE rules and clew's "
            "delayer (python3) work inside the nodes' namespaces",
        )
    return Capability(
        name="packet-delay-nfqueue",
        available=False,
        detail=f"iptables' NFQUEUE target or binding a queue failed ({err}); packet delay "
        "needs netem then",
    )


def _clock_libfaketime() -> Capability:
    found = sorted({p for g in _LIBFAKETIME_GLOBS for p in glob.glob(g)})
    if not found:
        return Capability(
            name="clock-libfaketime",
            available=False,
            detail="libfaketime is not installed (Debian: apt-get install libfaketime faketime)",
        )
    return Capability(
        name="clock-libfaketime",
        available=True,
        detail=f"{found[0]}; works for C, Python and Java programs, but not for Go programs "
        "such as etcd (they read the clock without libc), and it hangs redis",
    )


@functools.cache
def probe_capabilities() -> tuple[Capability, ...]:
    """The capabilities of the local provider on this machine (probed once per process)."""
    fixed = [
        Capability(name="pause", available=True, detail="SIGSTOP/SIGCONT of a node's processes"),
        Capability(name="kill", available=True, detail="SIGKILL of a node's processes"),
        Capability(
            name="clock-system",
            available=False,
            detail="the nodes share the host's clock (a time namespace cannot shift "
            "CLOCK_REALTIME); use clock-libfaketime where it applies",
        ),
    ]
    if os.geteuid() != 0:
        reason = "probing and using network namespaces needs root"
        net = [
            Capability(name=n, available=False, detail=reason)
            for n in ("partition", "packet-netem", "packet-loss-iptables", "packet-delay-nfqueue")
        ]
        return (*net[:1], *fixed, _clock_libfaketime(), *net[1:])
    probes = (_partition, _packet_netem, _packet_loss_iptables, _packet_delay_nfqueue)
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        futures = [pool.submit(f) for f in probes]
        partition, netem, loss, delay = (f.result() for f in futures)
    return (partition, *fixed, _clock_libfaketime(), netem, loss, delay)
