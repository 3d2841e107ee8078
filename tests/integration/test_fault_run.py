"""A real etcd run with every fault kind the local provider supports for etcd, and its replay.

The run must end valid, its ``faults.jsonl`` must show every kind's window (applied, then
healed) and a clean verify-healed barrier, and ``results.json`` must list the windows.
``clew replay`` of it must strike the same faults, at the same offsets, on the same nodes.
Clock faults are not in the set: etcd is a Go program and the local nodes share the
host's clock, so the run refuses them (tested in test_clock_nemesis).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.runner import replay_run, run_test
from harness.spec import load_spec
from nemeses.ledger import read_ledger
from nemeses.schedule import plan_schedule, schedule_from_ledger

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd is not installed"),
]

CLUSTER = {"subnet": "10.77.151.0/24", "prefix": "cfr-", "bridge": "cfr-br0"}
KINDS = ("partition", "pause", "kill", "packet")
TIME_LIMIT = 26.0
INTERVAL = 3.0
NODES = [f"n{i}" for i in range(1, 6)]


def seed_striking_every_kind() -> int:
    """The first seed whose schedule uses every kind (found by planning, not by running)."""
    for seed in range(1000):
        steps = plan_schedule(KINDS, NODES, seed=seed, time_limit=TIME_LIMIT, interval=INTERVAL)
        if {s["f"] for s in steps} >= {f"start-{k}" for k in KINDS}:
            return seed
    raise AssertionError("no seed uses every kind")


def comparable(steps: list[dict[str, Any]]) -> list[tuple[float, str, str]]:
    """Steps without what legitimately differs between runs (the PIDs a pause stopped)."""
    out = []
    for s in steps:
        value = s["value"]
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "pids"}
        out.append((s["at"], s["f"], json.dumps(value, sort_keys=True)))
    return out


def test_every_supported_fault_kind_in_a_valid_run_and_its_replay(tmp_path: Path) -> None:
    spec = load_spec(
        suite="etcd", nodes=5, time_limit=TIME_LIMIT, interval=INTERVAL, fault_lease=6,
        faults=",".join(KINDS), seed=seed_striking_every_kind(), store=str(tmp_path / "store"),
        cluster_state_dir=str(tmp_path / "cluster"), cluster_options=CLUSTER,
    )  # fmt: skip
    outcome = run_test(spec)
    run = outcome.run_dir
    results = json.loads((run / "results.json").read_text())
    assert outcome.valid is True, results
    assert results["tainted"] is False and results["heal_verified"] is True, results
    assert not results["problems"], results["problems"]
    assert {w["kind"] for w in results["faults"]} == set(KINDS)
    assert all(w["stop"] is not None and w["stop"] > w["start"] for w in results["faults"])

    records = read_ledger(run / "faults.jsonl")
    for kind in KINDS:
        events = [
            r["event"]
            for r in records
            if r.get("kind") == kind and r.get("f", "").startswith(("start", "stop"))
        ]
        assert "intent" in events and "applied" in events and "healed" in events, (kind, events)
    applied = [r for r in records if r.get("event") == "applied"]
    assert all(r["targets"] and r["commands"] for r in applied)
    verified = [r for r in records if r.get("event") == "verified"]
    assert verified and verified[-1]["clean"] is True
    schedule = json.loads((run / "schedule.json").read_text())
    assert schedule["source"] == "random" and schedule["seed"] == spec.seed

    again = replay_run(run)
    replayed = again.run_dir
    assert json.loads((replayed / "spec.json").read_text())["replay_of"] == str(run)
    first = comparable(schedule_from_ledger(records))
    second_records = read_ledger(replayed / "faults.jsonl")
    assert comparable(schedule_from_ledger(second_records)) == first
    assert {r.get("source") for r in second_records if r.get("event") == "intent"} == {"replay"}
    assert json.loads((replayed / "results.json").read_text())["heal_verified"] is True
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "cfr-" not in netns


def test_clock_faults_on_etcd_are_refused_before_the_run(tmp_path: Path) -> None:
    import sys

    clew = Path(sys.executable).with_name("clew")
    argv = [
        str(clew), "test", "etcd", "--faults", "partition,clock", "--time-limit", "5",
        "--store", str(tmp_path / "store"), "--cluster-state-dir", str(tmp_path / "cluster"),
        "--no-progress",
        *[a for k, v in CLUSTER.items() for a in ("--cluster-option", f"{k}={v}")],
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 254, proc.stderr
    assert "cannot run --faults clock" in proc.stderr
    assert "Go program" in proc.stderr and "VM nodes" in proc.stderr
    assert not (tmp_path / "store").exists()  # refused before anything was recorded
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "cfr-" not in netns
