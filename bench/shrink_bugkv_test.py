"""clew shrink on a real bugkv cluster: a buffered-log run (depth 2) made invalid by a
10-op schedule — its 2-op minimal schedule followed by harmless pauses and partitions of
single followers — shrinks to at most 3 ops that reproduce in at least 4 of 5 reruns.

Kept in bench/, not in the suite: ddmin reruns the test some 20-40 times (20-45 s a run
on this machine; at most 40 reruns). buffered-log reproduced in only 3 of 5 runs of its
schedule here under load (load ~18 on 2 cores), below the 80 % this test asks; see
docs/schedulers.md. Run it as root with `.venv/bin/pytest -q -s bench/shrink_bugkv_test.py`
(up to ~30 min).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clusters import ClusterSpec, get_provider
from harness.dbs.bugkv_bugs import BUG_CATALOG, NODES, isolate
from harness.runner import run_test
from harness.shrink import shrink_run
from harness.spec import load_spec
from nemeses.clock import find_libfaketime
from nemeses.schedule import schedule_kinds

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(shutil.which("python3") is None, reason="the nodes need python3"),
    pytest.mark.skipif(not os.path.exists(find_libfaketime()), reason="needs libfaketime"),
]

CLUSTER = {"subnet": "10.77.192.0/24", "prefix": "hsk-", "bridge": "hsk-br0"}
#: Room for ten fault ops that take 0.2-3 s each on a loaded machine.
TIME_LIMIT = 14.0


def _step(at: float, f: str, value: Any = None) -> dict[str, Any]:
    return {"at": at, "f": f, "value": value}


def padded_schedule() -> list[dict[str, Any]]:
    """buffered-log's minimal schedule (kill every node, restart) and 8 harmless ops after
    it — pauses and partitions of one follower at a time (a fault op takes 0.2-3 s here:
    ops before it would push it past the run's end)."""
    core = BUG_CATALOG["buffered-log"].steps()
    pad: list[dict[str, Any]] = []
    for i, node in enumerate(("n5", "n4", "n3", "n5")):
        t = 4.0 + i
        if i % 2 == 0:
            pad += [_step(t, "start-pause", {"targets": "nodes", "nodes": [node]}),
                    _step(t + 0.5, "stop-pause")]  # fmt: skip
        else:
            pad += [_step(t, "start-partition", isolate(node, NODES)),
                    _step(t + 0.5, "stop-partition")]  # fmt: skip
    return [*core, *pad]


@pytest.fixture(scope="module")
def cluster_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("shrink") / "cluster"
    provider = get_provider("local")
    provider.up(ClusterSpec(nodes=len(NODES), name="shrink", state_dir=str(state),
                            options=CLUSTER))  # fmt: skip
    try:
        yield state
    finally:
        provider.down(state)
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert "hsk-" not in netns


def test_shrink_finds_buffered_logs_core_among_ten_ops(cluster_state: Path, tmp_path: Path):
    bug = BUG_CATALOG["buffered-log"]
    steps = padded_schedule()
    assert len(steps) == 10
    spec = load_spec(
        suite="bugkv", workload=bug.workload, nodes=len(NODES), time_limit=TIME_LIMIT,
        faults=",".join(schedule_kinds(steps)), interval=1.0, seed=7, store=str(tmp_path),
        cluster_state_dir=str(cluster_state), cluster_options=CLUSTER,
        options=bug.suite_options(), recovery_time=1.0,
    )  # fmt: skip
    for _attempt in range(3):  # a buggy run's verdict depends on timing: more tries
        first = run_test(spec, schedule=steps)
        if first.valid is False:
            break
    assert first.valid is False

    def replay(sub: list[dict[str, Any]]) -> bool:
        return run_test(spec, schedule=sub, replay_of=str(first.run_dir)).valid is False

    result = shrink_run(first.run_dir, replay, reruns=5, fraction=0.8, max_runs=40)
    print(f"shrink: {len(result.original)} -> {len(result.minimal)} ops, reproduced "
          f"{result.reproduced}/5, {result.runs_made} runs, {result.seconds} s: "
          f"{[(s['at'], s['f']) for s in result.minimal]}")  # fmt: skip
    assert len(result.original) >= 8
    assert len(result.minimal) <= 3
    assert result.reproduced >= 4
    assert "start-kill" in [s["f"] for s in result.minimal]
