"""Campaigns on a real Dask ``LocalCluster`` of 2 worker processes: two campaigns of bugkv
with a depth-1 bug (early-ack) at once, each worker making runs on a namespace cluster of
its own (a slot of the pool: 10.77.238.0/24 and 10.77.239.0/24); the bug is found, the
runs and campaigns are in the controller's store, and nothing is left behind.

The random scheduler's plan is a pure function of the seed: with 12 s runs and an
interval of 2 s it kills at 2, 6 and 10 s; seed 21 kills the leader each time (which loses
the writes early-ack acknowledged before sending them), seed 19 the leader at 2 and 10 s.
Whether a kill catches unsent acknowledged writes depends on timing: on a machine loaded
far beyond its cores a fault op starts seconds late and the run makes few ops (at load
30-40 two tries of 8 s runs found nothing), so the runs are long and each campaign may
make 3 of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from harness.campaign import CampaignResult, run_campaign
from harness.campaign_pool import ClusterPool
from harness.dbs.bugkv_bugs import NODES
from harness.spec import load_spec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
]

SUBNETS = ("10.77.238.0/24", "10.77.239.0/24")


def leftovers() -> list[str]:
    """Namespaces and links of this test's slots still on the host."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return [line for line in (netns + links).splitlines() if "cp238-" in line or "cp239-" in line]


def test_two_campaigns_on_two_workers_find_early_ack(tmp_path: Path) -> None:
    from harness.campaign_dask import DaskExecutor, dask_client

    assert not leftovers(), "a previous run left this test's subnets in use"
    pool = ClusterPool(subnets=SUBNETS, nodes=len(NODES), state_root=str(tmp_path / "pool"))
    results: dict[int, CampaignResult] = {}
    errors: list[BaseException] = []

    def campaign(executor: DaskExecutor, seed: int) -> None:
        spec = load_spec(
            suite="bugkv", workload="set", nodes=len(NODES), time_limit=12.0, faults="kill",
            interval=2.0, seed=seed, store=str(tmp_path / "store"),
            options={"bug": "early-ack"}, recovery_time=1.0,
        )  # fmt: skip
        try:
            results[seed] = run_campaign(spec, runs=3, budget=600, executor=executor)
        except BaseException as e:
            errors.append(e)

    with dask_client(workers=2, pool=pool) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        executor = DaskExecutor(client, pool)
        threads = [threading.Thread(target=campaign, args=(executor, s)) for s in (21, 19)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
    assert not errors, errors
    assert not leftovers()
    assert not any((tmp_path / "pool" / name).exists() and any((tmp_path / "pool" / name).iterdir())
                   for name in ("cp238", "cp239"))  # fmt: skip

    assert any(r.runs_to_detection is not None for r in results.values()), {
        s: r.stopped for s, r in results.items()
    }
    workers = set()
    for seed, result in results.items():
        data = json.loads((result.directory / "campaign.json").read_text())
        assert [r["seed"] for r in data["runs"]] == list(range(seed, seed + len(data["runs"])))
        for run in data["runs"]:
            run_dir = result.directory / run["run_dir"]
            assert run_dir.is_relative_to(tmp_path / "store" / "campaigns")
            assert (run_dir / "report.html").exists() and (run_dir / "history.jsonl").exists()
            assert any((run_dir / "nodes").iterdir())  # the servers' logs came back too
            spec = json.loads((run_dir / "spec.json").read_text())
            assert spec["store"] == str(result.directory / "runs")
            assert run["worker"].startswith("tcp://")
            workers.add(run["worker"])
        if result.runs_to_detection is not None:
            last = data["runs"][-1]
            assert last["valid"] is False and last["schedule"][0]["f"] == "start-kill"
    # Two campaigns at once on two single-threaded workers: each worker made runs.
    assert len(workers) == 2
