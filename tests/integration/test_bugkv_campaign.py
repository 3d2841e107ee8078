"""`clew campaign` on bugkv with a depth-1 bug: it stops at the first invalid run, records
the runs and seconds to detection, and its report opens in headless Chromium.

Seeds are chosen by planning (the random scheduler's plan is a pure function of the seed):
run 1 (seed 16) kills every node (early-ack loses writes if a node other than the old
leader, without its unsent tail, wins after the restart); runs 2 and 4 (seeds 17 and 19)
kill the leader alone, which loses the writes it acknowledged before sending them; run 3
(seed 18) kills n5 alone, which loses nothing. Which run finds the bug depends on timing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.dbs.bugkv_bugs import NODES
from nemeses.schedule import plan_schedule

CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
    None,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]

CLUSTER = {"subnet": "10.77.175.0/24", "prefix": "bkc-", "bridge": "bkc-br0"}
SEED = 16


def first_kill(seed: int) -> object:
    steps = plan_schedule(("kill",), list(NODES), seed=seed, time_limit=6.0, interval=1.0)
    return steps[0]["value"]


def test_a_campaign_finds_early_ack_and_its_report_opens(tmp_path: Path) -> None:
    assert first_kill(SEED) == {"targets": "all", "nodes": list(NODES)}
    assert first_kill(SEED + 1) == first_kill(SEED + 3) == {"targets": "primaries"}
    clew = Path(sys.executable).with_name("clew")
    argv = [
        str(clew), "campaign", "bugkv", "-o", "bug=early-ack", "-w", "set", "--faults", "kill",
        "--interval", "1", "--time-limit", "6", "--runs", "4", "--seed", str(SEED),
        "--budget", "900", "--store", str(tmp_path / "store"),
        "--cluster-state-dir", str(tmp_path / "cluster"),
        *[a for k, v in CLUSTER.items() for a in ("--cluster-option", f"{k}={v}")],
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    campaign = next((tmp_path / "store" / "campaigns").glob("*/*/campaign.json"))
    data = json.loads(campaign.read_text())
    found = data["runs_to_detection"]
    assert found in (1, 2, 4) and f"found in run {found}" in proc.stdout
    assert data["seconds_to_detection"] >= sum(r["wall_seconds"] for r in data["runs"][:-1])
    assert all(r["valid"] is True for r in data["runs"][:-1]) and data["runs"][-1]["valid"] is False
    assert [r["seed"] for r in data["runs"]] == list(range(SEED, SEED + found))
    assert data["runs"][-1]["schedule"][0]["f"] == "start-kill"
    assert "n1" in data["runs"][-1]["schedule"][0]["value"]["nodes"]
    assert len(data["config_hash"]) == 12 and data["config"]["options"] == {"bug": "early-ack"}
    for run in data["runs"]:
        assert (campaign.parent / run["run_dir"] / "report.html").exists()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "bkc-" not in netns  # the campaign took down the cluster it made

    report = campaign.parent / "report.html"
    assert CHROMIUM is not None
    shown = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--enable-logging=stderr", "--v=0",
         "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert 'data-rendered="ok"' in shown.stdout and "INVALID" in shown.stdout
    assert "<svg" in shown.stdout and f"found in run {found}" in shown.stdout
    assert "CONSOLE" not in shown.stderr, shown.stderr[-2000:]
