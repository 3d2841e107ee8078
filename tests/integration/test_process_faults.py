"""Process faults and the node-side guard on a real 3-node local cluster running etcd.

* pause: the member is in state T while paused; heal resumes it; verify is clean;
* kill: the member is gone and its port refuses; heal restarts it and it is healthy again;
* primaries: ``{"targets": "primaries"}`` strikes the node etcd reports as leader;
* SIGKILL of a controller holding a partition and a pause: every node heals itself (the
  node-side guard, on lease expiry, as its log says) once the lease runs out, with nobody
  left to ask it to.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clusters import Cluster, ClusterSpec, get_provider
from harness.api import TestContext as Ctx  # (a `Test*` name would be collected)
from harness.control import Remotes, connect_all
from harness.dbs.etcd import EtcdDB
from nemeses.faultset import FaultSet
from nemeses.guard import FaultGuard
from nemeses.process import ProcessNemesis, pause_package

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(not shutil.which("etcd"), reason="needs etcd (Debian: etcd-server)"),
]

SUBNET = "10.77.141.0/24"
PREFIX = "cpf-"
#: The fault lease of the SIGKILLed controller: it renews every LEASE / 3 s, so a loaded
#: machine has to starve it for two thirds of this before the lease lapses early.
LEASE = 6.0
CONTROLLER = Path(__file__).with_name("fault_controller.py")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("process-faults")
    provider = get_provider("local")
    spec = ClusterSpec(
        nodes=3, name="process-faults", state_dir=str(state),
        options={"subnet": SUBNET, "prefix": PREFIX, "bridge": f"{PREFIX}br0"},
    )  # fmt: skip
    c = provider.up(spec)
    try:
        asyncio.run(_on_all(c, lambda db, ctx, n, r: db.setup(ctx, n, r)))
        yield c
    finally:
        try:
            asyncio.run(_on_all(c, lambda db, ctx, n, r: db.teardown(ctx, n, r)))
        finally:
            provider.down(state)


def context(cluster: Cluster) -> Ctx:
    return Ctx(name="process-faults", cluster=cluster, options={}, rng=random.Random(2),
               run_dir=Path(cluster.state_dir), concurrency=1, time_limit=60)  # fmt: skip


async def _on_all(cluster: Cluster, fn) -> None:  # type: ignore[no-untyped-def]
    db, ctx = EtcdDB(), context(cluster)
    async with await connect_all(cluster.nodes) as remotes:
        await asyncio.gather(*(fn(db, ctx, n, remotes[n.name]) for n in cluster.nodes))


async def proc_state(remotes: Remotes, db: EtcdDB, name: str) -> str:
    pid = await db.pid(remotes[name])
    if pid is None:
        return "gone"
    stat = (await remotes[name].run(["cat", f"/proc/{pid}/stat"])).stdout
    return stat.rsplit(")", 1)[1].split()[0]


def test_pause_stops_the_member_and_heal_resumes_it(cluster: Cluster) -> None:
    async def go() -> None:
        ctx, db = context(cluster), EtcdDB()
        async with await connect_all(cluster.nodes) as remotes:
            nemesis = ProcessNemesis("pause", db)
            await nemesis.setup(ctx, remotes)
            done = await nemesis.invoke(ctx, {"f": "start-pause", "value": ["n2"]})
            assert done["value"]["nodes"] == ["n2"]
            assert done["value"]["pids"]["n2"] == [await db.pid(remotes["n2"])]
            assert await proc_state(remotes, db, "n2") == "T"
            assert await proc_state(remotes, db, "n1") in ("S", "R")
            residue = await nemesis.verify_healed(ctx)
            assert residue["n2"] and not residue["n1"]
            await nemesis.invoke(ctx, {"f": "stop-pause", "value": None})
            assert await proc_state(remotes, db, "n2") in ("S", "R")
            assert await nemesis.verify_healed(ctx) == {"n1": [], "n2": [], "n3": []}

    asyncio.run(go())


def test_kill_takes_the_member_down_and_heal_restarts_it(cluster: Cluster) -> None:
    async def go() -> None:
        ctx, db = context(cluster), EtcdDB()
        async with await connect_all(cluster.nodes) as remotes:
            nemesis = ProcessNemesis("kill", db)
            await nemesis.setup(ctx, remotes)
            await nemesis.invoke(ctx, {"f": "start-kill", "value": ["n3"]})
            assert await db.pid(remotes["n3"]) is None
            probe = await remotes["n3"].run(
                'timeout 1 bash -c "</dev/tcp/$(hostname -i | cut -d" " -f1)/2379"', check=False
            )
            assert probe.exit_status != 0  # nothing listens any more
            assert (await nemesis.verify_healed(ctx))["n3"] == ["etcd is not running"]
            # Restarts the member and waits until it is healthy (how long: bench/restart.py).
            await nemesis.invoke(ctx, {"f": "stop-kill", "value": None})
            assert await db.pid(remotes["n3"]) is not None
            assert await nemesis.verify_healed(ctx) == {"n1": [], "n2": [], "n3": []}

    asyncio.run(go())


def test_primaries_resolve_to_the_etcd_leader(cluster: Cluster) -> None:
    async def go() -> None:
        ctx, db = context(cluster), EtcdDB()
        async with await connect_all(cluster.nodes) as remotes:
            leaders = await db.primaries(ctx, remotes)
            assert len(leaders) == 1
            faults = FaultSet([pause_package(db)], db=db)
            await faults.setup(ctx, remotes)
            done = await faults.invoke(ctx, {"f": "start-pause", "value": {"targets": "primaries"}})
            try:
                assert done["value"]["nodes"] == leaders
                assert await proc_state(remotes, db, leaders[0]) == "T"
            finally:
                await faults.invoke(ctx, {"f": "stop-pause", "value": None})
            assert await proc_state(remotes, db, leaders[0]) in ("S", "R")

    asyncio.run(go())


async def node_residue(remotes: Remotes) -> dict[str, list[str]]:
    """Per node: clew's nft table, and any stopped process."""
    script = (
        "nft list table inet clew >/dev/null 2>&1 && echo nft-table\n"
        "for d in /proc/[0-9]*; do s=$(cat $d/stat 2>/dev/null) || continue; "
        's=${s##*) }; [ "${s%% *}" = T ] && echo "stopped ${d#/proc/}"; done; exit 0\n'
    )
    out = await remotes.run_all(script)
    return {n: r.stdout.split("\n")[:-1] for n, r in out.items()}  # type: ignore[union-attr]


def test_nodes_heal_themselves_after_the_controller_is_sigkilled(cluster: Cluster) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(CONTROLLER), cluster.state_dir, str(LEASE)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        ready = json.loads(line)
        assert ready["ready"] and ready["pause"]["nodes"] == ["n3"]

        async def faulty() -> dict[str, list[str]]:
            async with await connect_all(cluster.nodes) as remotes:
                return await node_residue(remotes)

        before = asyncio.run(faulty())
        assert all("nft-table" in lines for lines in before.values())
        assert any(x.startswith("stopped") for x in before["n3"])
        # Hold past a lease and a half: the controller is renewing them.
        time.sleep(1.5 * LEASE)
        assert asyncio.run(faulty()) == before
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)
        killed = time.monotonic()

        async def wait_clean() -> float:
            async with await connect_all(cluster.nodes) as remotes:
                while True:
                    residue = await node_residue(remotes)
                    elapsed = time.monotonic() - killed
                    if not any(residue.values()):
                        return elapsed
                    if elapsed > LEASE + 60:
                        guard = FaultGuard(remotes)
                        logs = {n: await guard.log(remotes[n]) for n in residue if residue[n]}
                        raise AssertionError(
                            f"still faulty after {elapsed:.1f} s: {residue}; "
                            f"the guards' logs there: {logs}"
                        )
                    await asyncio.sleep(0.25)

        elapsed = asyncio.run(wait_clean())
        print(f"every node healed {elapsed:.2f} s after the controller's SIGKILL (lease {LEASE} s)")
        assert elapsed >= LEASE * 0.5  # healed by expiry, not at once
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()

    async def guard_logs() -> dict[str, list[dict[str, object]]]:
        async with await connect_all(cluster.nodes) as remotes:
            guard = FaultGuard(remotes)
            logs = {n: await guard.log(remotes[n]) for n in remotes}
            await guard.stop()
            return logs

    logs = asyncio.run(guard_logs())
    for name, events in logs.items():
        healed = {e["id"] for e in events if e.get("reason") == "lease-expired"}
        assert {"partition", "pause"} <= healed, (name, events)
