"""The ``disk-full`` fault kind on a real 3-node local cluster running etcd.

* setup moves every member's data directory onto its own tmpfs, keeping the data;
* start-disk-full leaves 0 bytes free there, and etcd *sees* it: writes that reach the
  struck member fail on it with "no space left on device" (in its log) and it stops;
* stop-disk-full frees the space and restarts the member the full disk took down; it
  catches up and serves every key;
* heal_all moves the data back off the tmpfs; the verify barrier finds nothing;
* and a whole ``clew test etcd --faults disk-full`` run is valid with the fault's windows.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clusters import Cluster, ClusterSpec, get_provider
from harness.api import TestContext as Ctx  # (a `Test*` name would be collected)
from harness.control import Remotes, connect_all
from harness.dbs.etcd import EtcdDB
from nemeses.faultset import FaultSet
from nemeses.kinds import PackageArgs
from nemeses.kinds.disk_full import FILLER, FS_TAG, disk_full_package
from nemeses.ledger import FaultLedger, read_ledger

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(not shutil.which("etcd"), reason="needs etcd (Debian: etcd-server)"),
]

SUBNET = "10.77.162.0/24"
PREFIX = "cdf-"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("disk-full")
    provider = get_provider("local")
    spec = ClusterSpec(
        nodes=3, name="disk-full", state_dir=str(state),
        options={"subnet": SUBNET, "prefix": PREFIX, "bridge": f"{PREFIX}br0"},
    )  # fmt: skip
    c = provider.up(spec)
    try:
        yield c
    finally:
        provider.down(state)


def context(cluster: Cluster) -> Ctx:
    return Ctx(name="disk-full", cluster=cluster, options={}, rng=random.Random(3),
               run_dir=Path(cluster.state_dir), concurrency=1, time_limit=60)  # fmt: skip


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


async def put(http: httpx.AsyncClient, host: str, key: str, value: str) -> bool:
    try:
        r = await http.post(f"http://{host}:2379/v3/kv/put",
                            json={"key": b64(key), "value": b64(value)})  # fmt: skip
        return r.status_code == 200
    except httpx.HTTPError:
        return False


async def count(http: httpx.AsyncClient, host: str, prefix: str) -> int:
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    r = await http.post(f"http://{host}:2379/v3/kv/range",
                        json={"key": b64(prefix), "range_end": b64(end), "count_only": True,
                              "serializable": True})  # fmt: skip
    r.raise_for_status()
    return int(r.json().get("count", 0))


async def on_tmpfs(remotes: Remotes, name: str, data: str) -> bool:
    r = await remotes[name].run(["cat", "/proc/self/mounts"])
    return any(line.split()[:3] == [FS_TAG, data, "tmpfs"] for line in r.stdout.splitlines())


def test_disk_full_strikes_etcd_sees_it_and_it_heals(cluster: Cluster, tmp_path: Path) -> None:
    async def go() -> None:
        ctx, db = context(cluster), EtcdDB()
        hosts = {n.name: n.peer_address for n in cluster.nodes}
        async with await connect_all(cluster.nodes) as remotes:
            await asyncio.gather(*(db.setup(ctx, n, remotes[n.name]) for n in cluster.nodes))
            ledger = FaultLedger(tmp_path / "faults.jsonl")
            package = disk_full_package(PackageArgs(db=db, interval=5, lease=10))
            faults = FaultSet([package], db=db, ledger=ledger)
            async with httpx.AsyncClient(timeout=3) as http:
                assert await put(http, hosts["n2"], "before/1", "kept")
                await faults.setup(ctx, remotes)
                for n in cluster.nodes:  # on its own tmpfs, data kept, serving
                    assert await on_tmpfs(remotes, n.name, db.data_dir), n.name
                    assert await count(http, hosts[n.name], "before/") == 1

                done = await faults.invoke(
                    ctx, {"f": "start-disk-full", "value": {"targets": "one", "nodes": ["n1"]}}
                )
                assert done["value"]["free_bytes"] == {"n1": 0}
                df = await remotes["n1"].run(["df", "-B1", "--output=avail", db.data_dir])
                assert df.stdout.split()[-1] == "0"

                # Writes through n2 replicate to n1, which must store them: it cannot.
                blob = "x" * 60_000
                seen = False
                deadline = time.monotonic() + 40
                i = 0
                while time.monotonic() < deadline and not seen:
                    await asyncio.gather(*(put(http, hosts["n2"], f"big/{i + k}", blob)
                                           for k in range(20)))  # fmt: skip
                    i += 20
                    log = await remotes["n1"].run(["cat", db.log_file])
                    seen = "no space left on device" in log.stdout
                assert seen, "etcd on n1 never met the full disk"

                healed = await faults.invoke(ctx, {"f": "stop-disk-full", "value": None})
                assert healed["value"]["freed"] == ["n1", "n2", "n3"]
                restarted = healed["value"]["restarted"]
                assert restarted in ([], ["n1"])
                assert await db.running(ctx, cluster.nodes[0], remotes["n1"])
                gone = await remotes["n1"].run(["ls", "-a", db.data_dir])
                assert FILLER not in gone.stdout
                # n1 serves again and catches up with every key written meanwhile.
                want = await count(http, hosts["n2"], "big/")
                for _ in range(100):
                    if await count(http, hosts["n1"], "big/") == want:
                        break
                    await asyncio.sleep(0.2)
                assert await count(http, hosts["n1"], "big/") == want > 0

                await faults.heal_all(ctx, reason="final")
                for n in cluster.nodes:  # back on its own filesystem, data kept, serving
                    assert not await on_tmpfs(remotes, n.name, db.data_dir), n.name
                    assert await count(http, hosts[n.name], "before/") == 1
                residue = await faults.verify_healed(ctx)
                assert residue == {"n1": [], "n2": [], "n3": []}
            ledger.close()
            records = read_ledger(tmp_path / "faults.jsonl")
            applied = [r for r in records if r.get("event") == "applied"]
            assert applied[0]["kind"] == "disk-full" and applied[0]["targets"] == ["n1"]
            await asyncio.gather(*(db.teardown(ctx, n, remotes[n.name]) for n in cluster.nodes))

    asyncio.run(go())


@pytest.mark.slow
def test_a_clew_run_with_disk_full_faults_is_valid(cluster: Cluster, tmp_path: Path) -> None:
    from harness.runner import run_test
    from harness.spec import load_spec

    spec = load_spec(
        suite="etcd", nodes=3, time_limit=12, interval=2, seed=5, faults="disk-full",
        store=str(tmp_path / "store"), cluster_state_dir=cluster.state_dir,
        cluster_options={"subnet": SUBNET, "prefix": PREFIX, "bridge": f"{PREFIX}br0"},
        leave_db_running=False,
    )  # fmt: skip
    outcome = run_test(spec)
    results = json.loads((outcome.run_dir / "results.json").read_text())
    assert outcome.valid is True, results
    assert results["heal_verified"] is True and not results["problems"], results
    assert {w["kind"] for w in results["faults"]} == {"disk-full"}
