"""Partitions on a real 5-node local cluster: the effect is observed from inside the nodes.

Each node tries a TCP connection to port 22 (sshd) of every peer, from its own network
namespace: a peer across the partition must time out (packets dropped), a peer on the same
side must answer. The host's own nft ruleset and iptables rules must be byte-for-byte the
same before and after. Own subnet and prefix, so nobody else's cluster is touched; the
cluster is torn down in the fixture's finalizer.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clusters import Cluster, ClusterSpec, get_provider
from harness import api
from harness.control import Remotes, connect_all
from harness.errors import NemesisError
from nemeses.partition import HEALED, Grudge, PartitionNemesis, connected, grudge_from_json

pytestmark = [
    pytest.mark.serial,
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(
        not (shutil.which("nft") and shutil.which("iptables")), reason="needs nft and iptables"
    ),
]

SUBNET = "10.77.71.0/24"
PREFIX = "cpn-"
#: Seconds a node waits for a peer's TCP answer before calling it unreachable (the kernel
#: answers a reachable peer's SYN at once; the margin is for a loaded machine).
PROBE_TIMEOUT = 2
TIMED_OUT = 124  # timeout(1)'s status when the command ran out of time


def host_firewall() -> dict[str, str]:
    """The host's nft ruleset and iptables/ip6tables rules, as text."""
    out = {}
    for argv in (["nft", "--stateless", "list", "ruleset"], ["iptables", "-w", "5", "-S"],
                 ["ip6tables", "-w", "5", "-S"]):  # fmt: skip
        if shutil.which(argv[0]):
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            out[argv[0]] = f"{proc.returncode}\n{proc.stdout}{proc.stderr}"
    return out


@pytest.fixture(scope="module")
def host_before() -> dict[str, str]:
    return host_firewall()


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, host_before: dict[str, str]
) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("partition-cluster")
    provider = get_provider("local")
    spec = ClusterSpec(
        nodes=5,
        name="partition",
        state_dir=str(state),
        options={"subnet": SUBNET, "prefix": PREFIX, "bridge": f"{PREFIX}br0"},
    )
    try:
        yield provider.up(spec)
    finally:
        provider.down(state)


def context(cluster: Cluster, seed: int) -> api.TestContext:
    return api.TestContext(
        name="partition",
        cluster=cluster,
        options={},
        rng=random.Random(seed),
        run_dir=Path("/nonexistent"),
        concurrency=1,
        time_limit=60,
    )


async def reachability(cluster: Cluster, remotes: Remotes) -> dict[tuple[str, str], int]:
    """(from, to) -> exit status of a TCP connect from ``from`` to ``to``:22, run inside
    ``from``: 0 reached, 124 timed out (dropped)."""
    by_ip = {n.host: n.name for n in cluster.nodes}

    async def probe(name: str) -> dict[tuple[str, str], int]:
        peers = " ".join(n.host for n in cluster.nodes if n.name != name)
        script = (
            f"for ip in {peers}; do "
            f'( timeout {PROBE_TIMEOUT} bash -c "</dev/tcp/$ip/22" 2>/dev/null; '
            'echo "$ip $?" ) & done; wait'
        )
        out = (await remotes[name].run(script, timeout=20)).stdout
        return {(name, by_ip[ip]): int(rc) for ip, rc in (ln.split() for ln in out.splitlines())}

    matrix: dict[tuple[str, str], int] = {}
    for part in await asyncio.gather(*(probe(n.name) for n in cluster.nodes)):
        matrix.update(part)
    assert len(matrix) == 20
    return matrix


def assert_matches(grudge: Grudge, matrix: dict[tuple[str, str], int]) -> None:
    want = {pair: 0 if connected(grudge, *pair) else TIMED_OUT for pair in matrix}
    assert matrix == want


def clean(remotes: Remotes) -> dict[str, list[str]]:
    """What verify_healed says when no node has any residue."""
    return {name: [] for name in remotes}


async def node_firewall(remotes: Remotes) -> dict[str, str]:
    results = await remotes.run_all("nft list ruleset; iptables -w 5 -S; ip6tables -w 5 -S")
    return {
        n: r.stdout if not isinstance(r, BaseException) else repr(r) for n, r in results.items()
    }


def test_random_halves_cut_the_network_and_heal_restores_it(cluster: Cluster) -> None:
    async def go() -> None:
        ctx = context(cluster, seed=3)
        async with await connect_all(cluster.nodes) as remotes:
            nemesis = PartitionNemesis()  # random halves, nft where it works
            await nemesis.setup(ctx, remotes)
            assert nemesis.drivers == dict.fromkeys(remotes, "nft")
            assert_matches({}, await reachability(cluster, remotes))

            done = await nemesis.invoke(ctx, {"f": "start-partition", "value": None})
            assert done["type"] == "info"
            grudge = grudge_from_json(done["value"])
            sides = {frozenset(grudge[n]) for n in grudge}
            assert sorted(len(s) for s in sides) == [2, 3]  # each side drops the other
            assert_matches(grudge, await reachability(cluster, remotes))
            table = await remotes["n1"].run(["nft", "list", "table", "inet", "clew"])
            assert "drop" in table.stdout
            residue = await nemesis.verify_healed(ctx)
            assert all(residue[n] for n in grudge), residue

            done = await nemesis.invoke(ctx, {"f": "stop-partition"})
            assert done["value"] == HEALED
            assert_matches({}, await reachability(cluster, remotes))
            assert await nemesis.verify_healed(ctx) == clean(remotes)
            await nemesis.teardown(ctx)

    asyncio.run(go())


def test_heal_all_when_nothing_was_injected_is_harmless(cluster: Cluster) -> None:
    async def go() -> None:
        ctx = context(cluster, seed=1)
        async with await connect_all(cluster.nodes) as remotes:
            before = await node_firewall(remotes)
            nemesis = PartitionNemesis()
            await nemesis.setup(ctx, remotes)  # heals first
            await nemesis.heal_all(ctx)
            await nemesis.heal_all(ctx)
            assert await nemesis.verify_healed(ctx) == clean(remotes)
            assert await node_firewall(remotes) == before
            assert_matches({}, await reachability(cluster, remotes))

    asyncio.run(go())


def test_iptables_fallback_partitions_replaces_and_heals(cluster: Cluster) -> None:
    async def go() -> None:
        ctx = context(cluster, seed=5)
        async with await connect_all(cluster.nodes) as remotes:
            with pytest.raises(NemesisError, match="lease needs nft"):
                await PartitionNemesis(driver="iptables", lease=5).setup(ctx, remotes)

            nemesis = PartitionNemesis(driver="iptables")
            await nemesis.setup(ctx, remotes)
            assert nemesis.drivers == dict.fromkeys(remotes, "iptables")

            done = await nemesis.invoke(ctx, {"f": "start-partition", "value": "one"})
            grudge = grudge_from_json(done["value"])
            assert_matches(grudge, await reachability(cluster, remotes))
            chain = await remotes["n2"].run(["iptables", "-w", "5", "-S", "CLEW-PARTITION"])
            assert "-j DROP" in chain.stdout
            tables = await remotes["n2"].run(["nft", "list", "tables"])
            assert "inet clew" not in tables.stdout

            # An explicit grudge (as replayed from a history) replaces the partition.
            ring = {"n1": ["n3", "n4"], "n2": ["n4", "n5"], "n3": ["n5", "n1"],
                    "n4": ["n1", "n2"], "n5": ["n2", "n3"]}  # fmt: skip
            done = await nemesis.invoke(ctx, {"f": "start-partition", "value": ring})
            assert done["value"] == {n: sorted(v) for n, v in ring.items()}
            assert_matches(grudge_from_json(ring), await reachability(cluster, remotes))
            jumps = await remotes["n1"].run("iptables -w 5 -S INPUT | grep -c CLEW-PARTITION")
            assert jumps.stdout.strip() == "1"  # replacing never duplicates the jump

            await nemesis.invoke(ctx, {"f": "stop-partition"})
            assert_matches({}, await reachability(cluster, remotes))
            assert await nemesis.verify_healed(ctx) == clean(remotes)

    asyncio.run(go())


def test_heal_needs_no_memory_and_spares_foreign_rules(cluster: Cluster) -> None:
    foreign = (
        "nft add table inet other && "
        "nft add chain inet other input '{ type filter hook input priority 0; }' && "
        "nft add rule inet other input ip saddr 192.0.2.1 drop && "
        "iptables -w 5 -A INPUT -s 192.0.2.2 -j DROP"
    )
    unforeign = "nft delete table inet other; iptables -w 5 -D INPUT -s 192.0.2.2 -j DROP"

    async def go() -> None:
        ctx = context(cluster, seed=9)
        async with await connect_all(cluster.nodes) as remotes:
            await remotes["n3"].run(foreign)
            try:
                first = PartitionNemesis(shape="majorities-ring")
                await first.setup(ctx, remotes)
                await first.invoke(ctx, {"f": "start-partition", "value": None})
                # A duplicated jump from someone's botched heal must not survive either.
                await remotes["n3"].run(
                    "iptables -w 5 -N CLEW-PARTITION && "
                    "iptables -w 5 -A INPUT -j CLEW-PARTITION && "
                    "iptables -w 5 -A INPUT -j CLEW-PARTITION"
                )
                # The controller "crashes": a new nemesis knows nothing of the partition.
                second = PartitionNemesis()
                await second.setup(ctx, remotes)
                assert await second.verify_healed(ctx) == clean(remotes)
                assert_matches({}, await reachability(cluster, remotes))
                rules = await remotes["n3"].run("nft list table inet other; iptables -w 5 -S")
                assert "ip saddr 192.0.2.1 drop" in rules.stdout
                assert "-A INPUT -s 192.0.2.2/32 -j DROP" in rules.stdout
            finally:
                await remotes["n3"].run(unforeign, check=False)

    asyncio.run(go())


#: The leased partition's lease: long enough for a first look at the partition on a loaded
#: machine, short enough to wait for.
LEASE = 8.0


def test_a_leased_partition_heals_itself_in_the_kernel(cluster: Cluster) -> None:
    async def go() -> None:
        ctx = context(cluster, seed=2)
        async with await connect_all(cluster.nodes) as remotes:
            nemesis = PartitionNemesis(shape="one", lease=LEASE)
            await nemesis.setup(ctx, remotes)
            started = time.monotonic()
            done = await nemesis.invoke(ctx, {"f": "start-partition", "value": None})
            grudge = grudge_from_json(done["value"])
            assert_matches(grudge, await reachability(cluster, remotes))
            # No heal is run: the kernel drops the partition when its lease runs out.
            deadline = started + LEASE + 60
            while True:
                looked = time.monotonic()
                matrix = await reachability(cluster, remotes)
                if all(rc == 0 for rc in matrix.values()):
                    break
                # Each node's rules expire on their own: never more cut than the grudge.
                assert all(rc == 0 for pair, rc in matrix.items() if connected(grudge, *pair))
                assert time.monotonic() < deadline, "the leased partition never expired"
            # A probe that saw it healed ended at most PROBE_TIMEOUT after it began.
            assert looked + PROBE_TIMEOUT >= started + LEASE, "healed before the lease ran out"
            await nemesis.teardown(ctx)
            assert await nemesis.verify_healed(ctx) == clean(remotes)

    asyncio.run(go())


def test_zz_the_host_firewall_is_untouched(cluster: Cluster, host_before: dict[str, str]) -> None:
    assert host_firewall() == host_before
