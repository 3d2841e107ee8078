"""The scheduler seam on a real 3-node local cluster running etcd (``clew test`` runs).

* A scripted scheduler, registered as ``--scheduler test-most-info``, pauses a node it
  draws at random, then — reading the run's live observations — partitions off *the node
  with the most info ops* and kills it during the partition (overlapping faults). The
  history shows that node really had the most info ops; the run is valid and healed.
* The random scheduler strikes every requested kind when the time allows (4 kinds, 4
  slots), and when it cannot (3 slots) the ledger's ``scheduler`` record and the run's log
  say which kind did not strike.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clusters import ClusterSpec, get_provider
from harness.runner import RunOutcome, run_test
from harness.spec import load_spec
from nemeses.ledger import read_ledger
from nemeses.scheduler import FaultOp, RunView, Wait, register_scheduler

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(not shutil.which("etcd"), reason="needs etcd (Debian: etcd-server)"),
]

CLUSTER = {"subnet": "10.77.163.0/24", "prefix": "csr-", "bridge": "csr-br0"}


class MostInfo:
    """Pause a random node; then cut off the node with the most ``info`` ops and kill it
    while it is cut off; heal the partition, restart it; done."""

    name = "test-most-info"

    def __init__(self) -> None:
        self.step = 0
        self.target: str | None = None

    def next_op(self, view: RunView) -> FaultOp | Wait | None:
        self.step += 1
        nodes = list(view.space.nodes)
        if self.step == 1:
            victim = view.rng.choice(nodes)
            value = {"targets": "nodes", "nodes": [victim]}
            return FaultOp(at=1.0, f="start-pause", value=value, why="warm-up")
        if self.step == 2:
            return FaultOp(at=4.0, f="stop-pause", why="warm-up over")
        if self.step == 3:
            infos = view.observed.by_node("info")
            if not infos:
                self.step -= 1
                return Wait(until=view.now + 0.5)
            self.target = t = max(sorted(infos), key=infos.__getitem__)
            grudge = {n: ([m for m in nodes if m != t] if n == t else [t]) for n in nodes}
            return FaultOp(at=view.now, f="start-partition", value=grudge,
                           why=f"most info ops: {dict(sorted(infos.items()))}")  # fmt: skip
        if self.step == 4:
            assert "partition" in view.active  # overlap: a kill during the partition
            return FaultOp(at=view.now + 0.5, f="start-kill",
                           value={"targets": "nodes", "nodes": [self.target]},
                           why="kill it while it is cut off")  # fmt: skip
        if self.step == 5:  # (a member restarted while cut off could not rejoin)
            return FaultOp(at=view.now + 1.5, f="stop-partition")
        if self.step == 6:
            return FaultOp(at=view.now + 0.5, f="stop-kill")
        return None


register_scheduler("test-most-info", lambda args: MostInfo())


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cluster for the module's runs (each run finds it up and healthy)."""
    state = tmp_path_factory.mktemp("scheduler-runs")
    provider = get_provider("local")
    provider.up(ClusterSpec(nodes=3, name="scheduler-runs", state_dir=str(state),
                            options=CLUSTER))  # fmt: skip
    try:
        yield state
    finally:
        provider.down(state)


def run(state: Path, tmp_path: Path, **kw: Any) -> RunOutcome:
    spec = load_spec(
        suite="etcd", nodes=3, store=str(tmp_path / "store"), cluster_state_dir=str(state),
        cluster_options=CLUSTER, fault_lease=6, **kw,
    )  # fmt: skip
    return run_test(spec)


def test_a_scripted_scheduler_strikes_the_node_with_the_most_info_ops(
    state: Path, tmp_path: Path
) -> None:
    outcome = run(state, tmp_path, time_limit=14, interval=1, concurrency=6, op_timeout=1,
                  faults="pause,partition,kill", scheduler="test-most-info", seed=11)  # fmt: skip
    results = json.loads((outcome.run_dir / "results.json").read_text())
    assert outcome.valid is True, results
    assert results["heal_verified"] is True and not results["problems"], results
    records = read_ledger(outcome.run_dir / "faults.jsonl")
    intents = [r for r in records if r.get("event") == "intent" and "at" in r]
    assert {r["source"] for r in intents} == {"test-most-info"}
    assert [r["f"] for r in intents] == ["start-pause", "stop-pause", "start-partition",
                                         "start-kill", "stop-partition", "stop-kill"]  # fmt: skip
    part_intent = intents[2]
    assert part_intent["why"].startswith("most info ops: ")
    applied = {r["kind"]: r for r in records if r.get("event") == "applied"}
    target = applied["kill"]["targets"]
    assert len(target) == 1 and applied["partition"]["targets"]
    # What the scheduler saw is what the history recorded up to its decision (at): the
    # info ops per node; it struck the node with the most (the first by name on a tie).
    decided = round(part_intent["at"] * 1e9) + 1
    infos: Counter[str] = Counter()
    for line in (outcome.run_dir / "history.jsonl").read_text().splitlines():
        op = json.loads(line)
        if op["type"] == "info" and isinstance(op["process"], int) and op["time"] <= decided:
            infos[op["node"]] += 1
    assert part_intent["why"] == f"most info ops: {dict(sorted(infos.items()))}"
    top = max(infos.values())
    assert target == [min(n for n, c in infos.items() if c == top)], (infos, target)
    # Overlapping faults: the kill was applied while the partition held.
    healed: dict[str, dict[str, Any]] = {}  # the scheduler's heals (before the final ones)
    for r in records:
        if r.get("event") == "healed" and r["f"].startswith("stop-"):
            healed.setdefault(r["kind"], r)
    assert applied["partition"]["time"] < applied["kill"]["time"] < healed["partition"]["time"]
    assert healed["partition"]["time"] < healed["kill"]["time"]
    schedule = json.loads((outcome.run_dir / "schedule.json").read_text())
    assert schedule["source"] == "test-most-info" and schedule["steps"] == []


KINDS = ["partition", "pause", "kill", "packet"]


def test_the_random_scheduler_strikes_every_kind_when_time_allows(
    state: Path, tmp_path: Path
) -> None:
    outcome = run(state, tmp_path, time_limit=9, interval=1, faults=",".join(KINDS), seed=3)
    assert outcome.valid is True, outcome.results
    records = read_ledger(outcome.run_dir / "faults.jsonl")
    (summary,) = [r for r in records if r.get("event") == "scheduler"]
    assert summary["struck"] == KINDS and summary["missed"] == [], summary
    assert {r["kind"] for r in records if r.get("event") == "applied"} == set(KINDS)


def test_the_random_scheduler_says_which_kinds_did_not_strike(state: Path, tmp_path: Path) -> None:
    outcome = run(state, tmp_path, time_limit=7, interval=1, faults=",".join(KINDS), seed=3)
    records = read_ledger(outcome.run_dir / "faults.jsonl")
    (summary,) = [r for r in records if r.get("event") == "scheduler"]
    assert len(summary["struck"]) == 3 and len(summary["missed"]) == 1, summary
    assert "raise --time-limit" in summary["why"]
    log = (outcome.run_dir / "clew.log").read_text()
    assert f"never struck: {summary['missed'][0]}" in log
    assert "has no time for fault kind(s)" in log
