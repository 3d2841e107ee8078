"""A controller that injects a partition and a pause through clew's FaultSet, then waits to
be killed. Run by tests/integration/test_process_faults.py, which SIGKILLs it and checks
that the nodes heal themselves once the lease runs out.

Usage: python fault_controller.py STATE_DIR LEASE
Prints one JSON line ``{"ready": true, "pause": ..., "partition": ...}`` when both faults
are in force, then sleeps (renewing leases) until killed.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

from clusters import Cluster
from harness.api import TestContext
from harness.control import connect_all
from harness.dbs.etcd import EtcdDB
from nemeses.faultset import FaultSet
from nemeses.guard import FaultGuard
from nemeses.partition import partition_package
from nemeses.process import pause_package


async def main(state: str, lease: float) -> None:
    cluster = Cluster.load(Path(state))
    ctx = TestContext(
        name="fault-controller", cluster=cluster, options={}, rng=random.Random(1),
        run_dir=Path(state), concurrency=1, time_limit=60,
    )  # fmt: skip
    db = EtcdDB()
    remotes = await connect_all(cluster.nodes)
    guard = FaultGuard(remotes, lease=lease)
    faults = FaultSet([partition_package(lease=lease), pause_package(db)], db=db, guard=guard)
    await faults.setup(ctx, remotes)
    names = [n.name for n in cluster.nodes]
    grudge = {names[0]: names[1:], **{n: [names[0]] for n in names[1:]}}
    part = await faults.invoke(ctx, {"f": "start-partition", "value": grudge})
    pause = await faults.invoke(ctx, {"f": "start-pause", "value": [names[-1]]})
    print(json.dumps({"ready": True, "partition": part["value"], "pause": pause["value"]}))
    sys.stdout.flush()
    await faults.keep_alive(ctx, lease / 3)  # until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
