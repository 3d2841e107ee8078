"""Packet faults on a real 3-node local cluster, measured from inside the nodes.

The measuring instrument is a tiny ICMP echo prober (Python, raw socket) run on n1
through ``remote.run``: it sends numbered echo requests at a fixed pace to a peer, whose
kernel answers them, and reports how many answers came back and their round-trip times.
The iptables driver (loss from the ``statistic`` match, delay from the NFQUEUE delayer) is
measured on every kernel, asked for by name. The ``auto`` driver must pick netem exactly
when ``clew doctor``'s probe finds it: the CI machine's kernel has no netem, so there it
picks iptables, duplication is refused, and the netem measurements below are replaced by
the check that the ``netem`` driver is refused; on a kernel with netem they run. Own subnet
and prefix; the cluster is torn down in the fixture's finalizer, and the host's firewall
must be byte-for-byte the same afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clusters import Cluster, ClusterSpec, doctor, get_provider
from harness import api
from harness.control import Remote, Remotes, connect_all
from harness.errors import NemesisError
from nemeses.packet import HEALED, PacketNemesis, packet_chain, qdisc_handles, state_dir

pytestmark = [
    pytest.mark.serial,
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(not shutil.which("iptables"), reason="needs iptables"),
]

SUBNET = "10.77.121.0/24"
PREFIX = "cpk-"
PIDFILE = f"{state_dir('clew')}/packet-delayer.pid"

#: ICMP echo prober: argv = destination, count, seconds between requests, seconds to wait
#: for late answers. Prints {"sent", "received", "rtt_ms": [...]} as JSON.
PROBER = r"""
import json, os, select, socket, struct, sys, time
dst, count, pace, linger = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident = os.getpid() & 0xFFFF
payload = b"clew-packet-probe"

def checksum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF

sent, rtt = {}, {}

def collect(until):
    while True:
        left = until - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            return
        data, addr = sock.recvfrom(2048)
        start = (data[0] & 0x0F) * 4
        kind, _, _, rid, seq = struct.unpack("!BBHHH", data[start:start + 8])
        if addr[0] == dst and kind == 0 and rid == ident and seq in sent and seq not in rtt:
            rtt[seq] = (time.monotonic() - sent[seq]) * 1000

due = time.monotonic()
for seq in range(count):
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    packet = struct.pack("!BBHHH", 8, 0, checksum(head + payload), ident, seq) + payload
    sent[seq] = time.monotonic()
    sock.sendto(packet, (dst, 0))
    due += pace
    collect(due)
collect(time.monotonic() + linger)
print(json.dumps({"sent": count, "received": len(rtt), "rtt_ms": sorted(rtt.values())}))
"""


def host_firewall() -> dict[str, str]:
    """The host's iptables/ip6tables rules (every table) and nft ruleset, as text."""
    out = {}
    for argv in (["iptables-save"], ["ip6tables-save"], ["nft", "--stateless", "list", "ruleset"]):
        if shutil.which(argv[0]):
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            lines = [ln for ln in proc.stdout.splitlines() if not ln.startswith("#")]
            out[argv[0]] = f"{proc.returncode}\n" + "\n".join(lines)
    return out


@pytest.fixture(scope="module")
def host_before() -> dict[str, str]:
    return host_firewall()


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, host_before: dict[str, str]
) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("packet-cluster")
    provider = get_provider("local")
    spec = ClusterSpec(
        nodes=3,
        name="packet",
        state_dir=str(state),
        options={"subnet": SUBNET, "prefix": PREFIX, "bridge": f"{PREFIX}br0"},
    )
    try:
        yield provider.up(spec)
    finally:
        provider.down(state)


def context(cluster: Cluster, seed: int) -> api.TestContext:
    return api.TestContext(
        name="packet",
        cluster=cluster,
        options={},
        rng=random.Random(seed),
        run_dir=Path("/nonexistent"),
        concurrency=1,
        time_limit=60,
    )


@pytest.fixture(scope="module")
def netem() -> bool:
    """Whether this kernel has netem, as ``clew doctor`` probes it (the nodes share it)."""
    return doctor.check_netem().available


async def probe(
    remote: Remote, dst: str, count: int, pace: float = 0.005, linger: float = 3.0
) -> dict[str, Any]:
    """Echo ``count`` times from ``remote`` to ``dst``: sent, received, loss, RTTs (ms)."""
    out = await remote.run(
        ["python3", "-c", PROBER, dst, str(count), str(pace), str(linger)], timeout=60
    )
    result: dict[str, Any] = json.loads(out.stdout)
    result["loss"] = 1 - result["received"] / result["sent"]
    rtt = result["rtt_ms"]
    result["avg_ms"] = sum(rtt) / len(rtt) if rtt else None
    result["median_ms"] = statistics.median(rtt) if rtt else None
    return result


def clean(remotes: Remotes) -> dict[str, list[str]]:
    return {name: [] for name in remotes}


async def residue_by_hand(remote: Remote) -> str:
    """What is left of packet faults on a node, asked directly (not via the nemesis)."""
    chain = packet_chain("clew")
    script = (
        f"iptables -w 5 -t mangle -S | grep -- '{chain}'; "
        f"[ -f {PIDFILE} ] && echo pidfile; "
        "for p in /proc/[0-9]*; do tr '\\000' ' ' <$p/cmdline 2>/dev/null | "
        f"grep -q '^python3 {state_dir('clew')}/nfqueue_delayer.py' && echo delayer ${{p#/proc/}}; "
        "done; "
        "cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null; true"
    )
    return (await remote.run(script)).stdout.strip()


def test_auto_picks_netem_exactly_where_the_probe_finds_it(cluster: Cluster, netem: bool) -> None:
    async def go() -> None:
        ctx = context(cluster, seed=1)
        async with await connect_all(cluster.nodes) as remotes:
            nemesis = PacketNemesis()
            await nemesis.setup(ctx, remotes)
            assert nemesis.drivers == dict.fromkeys(remotes, "netem" if netem else "iptables")
            for caps in nemesis.capabilities.values():
                assert caps.netem == netem
                assert caps.loss_in() and caps.delay_in()  # the fallback works everywhere
            await nemesis.teardown(ctx)

    asyncio.run(go())


def test_loss_is_measured_on_the_faulted_pair_only(cluster: Cluster) -> None:
    _n1, n2, n3 = (n.host for n in cluster.nodes)

    async def go() -> None:
        ctx = context(cluster, seed=1)
        async with await connect_all(cluster.nodes) as remotes:
            nemesis = PacketNemesis(driver="iptables")
            await nemesis.setup(ctx, remotes)
            assert nemesis.drivers == dict.fromkeys(remotes, "iptables")

            value = {"nodes": ["n1"], "to": ["n2"], "loss": 0.3}
            done = await nemesis.invoke(ctx, {"f": "start-packet", "value": value})
            assert done["type"] == "info"
            assert done["value"] == {"nodes": ["n1"], "to": ["n2"], "loss": 0.3,
                                     "delay_ms": 0, "jitter_ms": 0, "duplicate": 0.0}  # fmt: skip
            faulted, spared = await asyncio.gather(
                probe(remotes["n1"], n2, 400), probe(remotes["n1"], n3, 400)
            )
            print(f"loss 0.3 n1->n2: measured {faulted['loss']:.3f} over 400 echoes; "
                  f"n1->n3: {spared['loss']:.3f}")  # fmt: skip
            assert 0.2 <= faulted["loss"] <= 0.4, faulted["loss"]
            assert spared["received"] >= 399, spared["loss"]
            # The rule lives on the receiver, matching n1's address; n1 and n3 hold nothing.
            residue = await nemesis.verify_healed(ctx)
            assert residue["n1"] == [] and residue["n3"] == []
            assert "iptables mangle chain CLEW-PACKET present" in residue["n2"]
            assert not any("delayer" in line for line in residue["n2"])  # loss needs none

            done = await nemesis.invoke(ctx, {"f": "stop-packet", "value": None})
            assert done["value"] == HEALED
            assert await nemesis.verify_healed(ctx) == clean(remotes)
            healed = await probe(remotes["n1"], n2, 200)
            assert healed["received"] >= 199
            await nemesis.teardown(ctx)

    asyncio.run(go())


def test_delay_adds_the_rtt_and_a_dead_delayer_fails_open(cluster: Cluster) -> None:
    _n1, n2, n3 = (n.host for n in cluster.nodes)

    async def go() -> None:
        ctx = context(cluster, seed=2)
        async with await connect_all(cluster.nodes) as remotes:
            nemesis = PacketNemesis(driver="iptables")
            await nemesis.setup(ctx, remotes)
            before = await probe(remotes["n1"], n2, 50, pace=0.02)

            value = {"nodes": ["n1"], "to": ["n2"], "delay_ms": 100, "jitter_ms": 10}
            await nemesis.invoke(ctx, {"f": "start-packet", "value": value})
            delayed, spared = await asyncio.gather(
                probe(remotes["n1"], n2, 50, pace=0.02), probe(remotes["n1"], n3, 50, pace=0.02)
            )
            added = delayed["median_ms"] - before["median_ms"]
            rtt = delayed["rtt_ms"]
            print(f"delay 100±10 ms n1->n2: median RTT {before['median_ms']:.2f} -> "
                  f"{delayed['median_ms']:.1f} ms (+{added:.1f}), min {rtt[0]:.1f}, "
                  f"max {rtt[-1]:.1f}; n1->n3 median {spared['median_ms']:.2f} ms")  # fmt: skip
            assert delayed["received"] == 50
            # Every packet waited at least the delay less the jitter (a loaded machine only
            # adds); the median is the delay's, not twice it. Spread: the jitter.
            assert rtt[0] >= 89, rtt
            assert 95 <= added <= 160, added
            assert rtt[-1] - rtt[0] >= 5, rtt
            assert spared["median_ms"] < 50 and spared["received"] == 50, spared
            residue = await nemesis.verify_healed(ctx)
            assert any("delayer pid" in line for line in residue["n2"]), residue

            # SIGKILL the delayer: --queue-bypass lets the packets through, undelayed.
            pid = (await remotes["n2"].run(["cat", PIDFILE])).stdout.strip()
            await remotes["n2"].run(["kill", "-KILL", pid])
            gone = f"! [ -d /proc/{pid} ] || grep -q '^State:.*Z' /proc/{pid}/status"
            deadline = time.monotonic() + 30
            while not (await remotes["n2"].run(gone, check=False)).ok:
                assert time.monotonic() < deadline, "the killed delayer is still alive"
                await asyncio.sleep(0.1)
            orphaned = await probe(remotes["n1"], n2, 50, pace=0.02)
            print(f"delayer killed: {orphaned['received']}/50 answered, "
                  f"median RTT {orphaned['median_ms']:.2f} ms")  # fmt: skip
            assert orphaned["received"] == 50 and orphaned["median_ms"] < 50, orphaned
            residue = await nemesis.verify_healed(ctx)
            assert any("stale delayer pidfile" in line for line in residue["n2"])

            await nemesis.heal_all(ctx)
            assert await nemesis.verify_healed(ctx) == clean(remotes)
            for remote in remotes.values():
                assert await residue_by_hand(remote) == ""

            # The node-side guard's heal (no controller involved) stops a live delayer by
            # its pidfile and removes the rules.
            await nemesis.invoke(ctx, {"f": "start-packet", "value": value})
            assert await residue_by_hand(remotes["n2"]) != ""
            await remotes["n2"].run(["sh", "-c", nemesis.heal_script("n2")], timeout=20)
            assert await residue_by_hand(remotes["n2"]) == ""
            await nemesis.teardown(ctx)
            assert await nemesis.verify_healed(ctx) == clean(remotes)
            assert await residue_by_hand(remotes["n2"]) == ""

    asyncio.run(go())


def test_netem_where_the_kernel_has_it_else_refused(cluster: Cluster, netem: bool) -> None:
    """With netem: loss, delay and duplication from the sender's netem qdisc, measured, and
    healed. Without (the CI machine): the netem driver and duplication are refused."""
    _n1, n2, n3 = (n.host for n in cluster.nodes)

    async def go() -> None:
        ctx = context(cluster, seed=5)
        async with await connect_all(cluster.nodes) as remotes:
            if not netem:
                with pytest.raises(NemesisError, match="the kernel has no netem"):
                    await PacketNemesis(driver="netem").setup(ctx, remotes)
                nemesis = PacketNemesis()
                await nemesis.setup(ctx, remotes)
                with pytest.raises(NemesisError, match="duplicating packets needs netem"):
                    await nemesis.invoke(
                        ctx, {"f": "start-packet", "value": {"nodes": ["n1"], "duplicate": 0.1}}
                    )
                with pytest.raises(NemesisError, match="duplicating packets needs netem"):
                    await PacketNemesis(behaviours=("duplicate",)).setup(ctx, remotes)
                return
            nemesis = PacketNemesis(driver="netem")
            await nemesis.setup(ctx, remotes)
            assert nemesis.drivers == dict.fromkeys(remotes, "netem")
            before = await probe(remotes["n1"], n2, 50, pace=0.02)
            value = {"nodes": ["n1"], "to": ["n2"], "loss": 0.3}
            await nemesis.invoke(ctx, {"f": "start-packet", "value": value})
            faulted, spared = await asyncio.gather(
                probe(remotes["n1"], n2, 400), probe(remotes["n1"], n3, 400)
            )
            assert 0.2 <= faulted["loss"] <= 0.4, faulted["loss"]
            assert spared["received"] >= 399, spared["loss"]
            assert (await nemesis.verify_healed(ctx))["n1"]  # the sender holds the qdisc
            value = {"nodes": ["n1"], "to": ["n2"], "delay_ms": 100, "jitter_ms": 10}
            await nemesis.invoke(ctx, {"f": "start-packet", "value": value})
            delayed = await probe(remotes["n1"], n2, 50, pace=0.02)
            assert delayed["received"] == 50 and delayed["rtt_ms"][0] >= 89, delayed
            assert 95 <= delayed["median_ms"] - before["median_ms"] <= 160, delayed
            dup = {"nodes": ["n1"], "to": ["n2"], "duplicate": 0.5}
            done = await nemesis.invoke(ctx, {"f": "start-packet", "value": dup})
            assert done["value"]["duplicate"] == 0.5
            await nemesis.invoke(ctx, {"f": "stop-packet", "value": None})
            assert await nemesis.verify_healed(ctx) == clean(remotes)
            healed = await probe(remotes["n1"], n2, 200)
            assert healed["received"] >= 199
            await nemesis.teardown(ctx)

    asyncio.run(go())


def test_planned_faults_replay_and_impossible_ones_are_refused(cluster: Cluster) -> None:
    prio, _ = qdisc_handles("clew")
    foreign = "iptables -w 5 -t mangle -A INPUT -s 192.0.2.7 -j ACCEPT"

    async def go() -> None:
        ctx = context(cluster, seed=7)
        async with await connect_all(cluster.nodes) as remotes:
            nemesis = PacketNemesis(driver="iptables")
            await nemesis.setup(ctx, remotes)
            with pytest.raises(NemesisError, match="duplicating packets needs netem"):
                await nemesis.invoke(
                    ctx, {"f": "start-packet", "value": {"nodes": ["n1"], "duplicate": 0.1}}
                )

            done = await nemesis.invoke(ctx, {"f": "start-packet", "value": None})
            planned = done["value"]
            assert planned["loss"] or planned["delay_ms"]
            again = await nemesis.invoke(ctx, {"f": "start-packet", "value": planned})
            assert again["value"] == planned  # a recorded fault replays as itself
            counts = await remotes.run_all(
                "iptables -w 5 -t mangle -S INPUT | grep -c CLEW-PACKET", check=False
            )
            jumps = [int(getattr(r, "stdout", "-1")) for r in counts.values()]
            assert max(jumps) == 1  # replacing a fault never duplicates the jump

            # Heal needs no memory: a new nemesis removes everything, including a root
            # qdisc carrying clew's handle, and spares foreign rules.
            await remotes["n3"].run(f"tc qdisc add dev eth0 root handle {prio} htb; {foreign}")
            try:
                second = PacketNemesis()
                await second.setup(ctx, remotes)
                assert await second.verify_healed(ctx) == clean(remotes)
                shown = await remotes["n3"].run("tc qdisc show dev eth0; iptables-save -t mangle")
                assert prio not in shown.stdout
                assert "-A INPUT -s 192.0.2.7/32 -j ACCEPT" in shown.stdout
            finally:
                await remotes["n3"].run(
                    f"tc qdisc del dev eth0 root handle {prio}; {foreign.replace('-A', '-D')}",
                    check=False,
                )

    asyncio.run(go())


def test_zz_the_host_firewall_is_untouched(cluster: Cluster, host_before: dict[str, str]) -> None:
    assert host_firewall() == host_before
