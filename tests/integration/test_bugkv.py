"""bugkv on a real local cluster: the correct server under every fault kind the local provider
has, and seeded bugs found by their documented minimal schedules (fixed replay schedules).

One bug per depth (and the clock-fault one) runs here; ``bench/bugkv_depth.py --only
minimal`` runs every bug's minimal schedule, with and without its flag, and the depth
checks (each schedule with one op removed, each flag without faults, random-fault runs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clusters import ClusterSpec, get_provider
from harness.dbs.bugkv_bugs import BUG_CATALOG, NODES, Bug
from harness.runner import RunOutcome, run_test
from harness.spec import load_spec
from nemeses.clock import find_libfaketime
from nemeses.schedule import plan_schedule, schedule_kinds

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(shutil.which("python3") is None, reason="the nodes need python3"),
    pytest.mark.skipif(not os.path.exists(find_libfaketime()), reason="needs libfaketime"),
]

CLUSTER = {"subnet": "10.77.171.0/24", "prefix": "bkv-", "bridge": "bkv-br0"}
#: Every fault kind the local provider has for bugkv (a Python server under libfaketime).
ALL_KINDS = ("partition", "pause", "kill", "clock", "packet")
#: One seeded bug per depth, and the one that needs a clock fault.
REPRESENTATIVE = ("early-ack", "lease-wall-clock", "vote-ignores-log", "commit-unchecked")
#: A buggy run's verdict depends on timing on a real cluster: it may take a second try.
ATTEMPTS = 2


@pytest.fixture(scope="module")
def cluster_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Five namespace nodes, brought up once for the module and reused by every run."""
    state = tmp_path_factory.mktemp("bugkv") / "cluster"
    provider = get_provider("local")
    provider.up(ClusterSpec(nodes=len(NODES), name="bugkv", state_dir=str(state), options=CLUSTER))
    try:
        yield state
    finally:
        provider.down(state)
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert "bkv-" not in netns


def run(
    state: Path,
    store: Path,
    *,
    workload: str,
    options: dict[str, Any],
    steps: list[dict[str, Any]] | None,
    time_limit: float,
    seed: int = 1,
    faults: tuple[str, ...] = (),
) -> RunOutcome:
    kinds = list(faults) if steps is None else schedule_kinds(steps)
    spec = load_spec(
        suite="bugkv", workload=workload, nodes=len(NODES), time_limit=time_limit,
        faults=",".join(kinds) or "none", interval=1.0, seed=seed, store=str(store),
        cluster_state_dir=str(state), cluster_options=CLUSTER, options=options,
        recovery_time=1.0,
    )  # fmt: skip
    return run_test(spec, schedule=steps)


def schedule_striking_every_kind() -> list[dict[str, Any]]:
    """Each kind once, one at a time, healed before the next, with values drawn by the
    kinds' own planners (the first seed whose plan uses every kind, found by planning; the
    plan's first five strikes). A kill's restart can take seconds on a loaded machine,
    and a late op delays the next, so the run (below) is long enough for all of them."""
    for seed in range(1000):
        steps = plan_schedule(ALL_KINDS, list(NODES), seed=seed, time_limit=10.0,
                              interval=1.0)  # fmt: skip
        if [s["f"] for s in steps[::2]] == [f"start-{k}" for k in ALL_KINDS]:
            return steps
    raise AssertionError("no seed strikes every kind once")


def test_the_correct_server_under_every_local_fault_kind(cluster_state: Path, tmp_path: Path):
    steps = schedule_striking_every_kind()
    outcome = run(cluster_state, tmp_path / "store", workload="register", options={},
                  steps=steps, time_limit=45.0)  # fmt: skip
    results = outcome.results
    assert outcome.valid is True, results
    assert results["heal_verified"] is True and not results["problems"], results
    assert {w["kind"] for w in results["faults"]} == set(ALL_KINDS)
    clock = [w for w in results["faults"] if w["kind"] == "clock"]
    assert clock[0]["value"]["mechanism"] == "libfaketime"
    # Each acknowledged op names the node that served it: the leader, also for the ops
    # a follower proxied. Invocations name the node the client asked.
    lines = (outcome.run_dir / "history.jsonl").read_text().splitlines()
    ops = [o for o in map(json.loads, lines) if isinstance(o["process"], int)]
    asked = {o["process"]: o["node"] for o in ops if o["type"] == "invoke"}
    served = [(asked[o["process"]], o["node"]) for o in ops if o["type"] == "ok"]
    assert served and any(a != s for a, s in served)
    # The servers' own logs came back: elections, terms, replication.
    logs = {n: (outcome.run_dir / "nodes" / n / "bugkv.log").read_text() for n in NODES}
    assert "elected leader" in logs["n1"]
    assert all("listening on" in text for text in logs.values())


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_a_seeded_bug_is_found_by_its_minimal_schedule(
    name: str, cluster_state: Path, tmp_path: Path
) -> None:
    bug: Bug = BUG_CATALOG[name]
    verdicts = []
    for attempt in range(ATTEMPTS):
        outcome = run(cluster_state, tmp_path / f"bug-{attempt}", workload=bug.workload,
                      options=bug.suite_options(), steps=bug.steps(),
                      time_limit=bug.time_limit)  # fmt: skip
        verdicts.append(outcome.valid)
        if outcome.valid is False:
            break
    assert verdicts[-1] is False, (name, verdicts, outcome.run_dir)
    assert outcome.results["heal_verified"] is True
    applied = {w["kind"] for w in outcome.results["faults"]}
    assert applied == {s["f"].split("-", 1)[1] for s in bug.steps()}
    # The same schedule against the correct server is valid.
    correct = run(cluster_state, tmp_path / "correct", workload=bug.workload,
                  options=bug.suite_options(with_bug=False), steps=bug.steps(),
                  time_limit=bug.time_limit)  # fmt: skip
    assert correct.valid is True, (name, correct.results)
