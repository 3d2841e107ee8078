"""Redis with Sentinel for real: 3 local nodes, each with its own redis-server and
redis-sentinel; clients find the primary through Sentinel.

Jepsen's Redis finding (asynchronous replication + failover loses acknowledged writes) is
forced by a recorded schedule, not hoped for: the primary n1 is cut off while its clients
keep writing to it, the other two Sentinels fail over, and the heal makes n1 a replica of
the new primary, dropping what it acknowledged meanwhile. Timing on a loaded machine can
still delay the failover past the heal, so the schedule is replayed up to ``ATTEMPTS``
times. A run without faults must be valid. One cluster for the file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from harness.dbs.redis import REDIS_BINARY, SENTINEL_BINARY, read_failovers
from harness.runner import RunOutcome, run_test
from harness.spec import load_spec
from harness.suites.redis import (
    LOST_WRITES_RECOVERY_TIME,
    LOST_WRITES_SCHEDULE,
    LOST_WRITES_TIME_LIMIT,
    NODES,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(
        not (os.path.exists(REDIS_BINARY) and os.path.exists(SENTINEL_BINARY)),
        reason="redis-server/redis-sentinel are not installed",
    ),
    pytest.mark.skipif(
        shutil.which("nft") is None and shutil.which("iptables") is None,
        reason="no nftables/iptables",
    ),
]

PREFIX = "rds-"
CLUSTER = {"subnet": "10.77.215.0/24", "prefix": PREFIX, "bridge": f"{PREFIX}br0"}
ADDRESSES = {f"10.77.215.{11 + i}": n for i, n in enumerate(NODES)}
#: Replays of the recorded schedule before giving up.
ATTEMPTS = 3


@pytest.fixture(scope="module")
def cluster_state(local_cluster: Any) -> Iterator[Path]:
    with local_cluster("redis", len(NODES), CLUSTER) as state:
        yield state


def _run(state: Path, store: Path, **kw: Any) -> RunOutcome:
    steps = kw.pop("steps", None)
    spec = load_spec(
        suite="redis", workload="set-full", nodes=len(NODES), interval=1.0, seed=1,
        store=str(store), cluster_state_dir=str(state), cluster_options=CLUSTER, **kw,
    )  # fmt: skip
    return run_test(spec, schedule=steps)


def test_a_run_without_faults_is_valid(cluster_state: Path, tmp_path: Path) -> None:
    outcome = _run(cluster_state, tmp_path, faults="none", time_limit=6.0, recovery_time=1.0)
    result = outcome.results["checkers"]["set-full"]
    assert outcome.valid is True, result
    assert result["lost_count"] == 0 and result["stable_count"] > 50, result
    assert not read_failovers(outcome.run_dir, ADDRESSES)


def test_the_recorded_partition_loses_acknowledged_writes(
    cluster_state: Path, tmp_path: Path
) -> None:
    verdicts = []
    for attempt in range(ATTEMPTS):
        outcome = _run(
            cluster_state, tmp_path / f"try-{attempt}", faults="partition",
            steps=[dict(s) for s in LOST_WRITES_SCHEDULE], time_limit=LOST_WRITES_TIME_LIMIT,
            recovery_time=LOST_WRITES_RECOVERY_TIME,
        )  # fmt: skip
        verdicts.append(outcome.valid)
        if outcome.valid is False:
            break
    result = outcome.results["checkers"]["set-full"]
    assert verdicts[-1] is False, (verdicts, result["cause"], outcome.run_dir)
    assert outcome.results["heal_verified"] is True
    # What was lost: acknowledged adds, every one acknowledged by n1 (the primary cut off)
    # from the partition's start at 2 s until Sentinel demoted it after the heal.
    assert result["lost_count"] > 0 and result["duplicated_count"] == 0, result
    lost = result["lost_by_node"]
    assert set(lost) == {"n1"}, lost
    first, last = lost["n1"]["first_ack_s"], lost["n1"]["last_ack_s"]
    assert first >= 1.5 and last <= LOST_WRITES_TIME_LIMIT, lost
    assert "acknowledged by n1" in result["cause"]
    # Around which failover: the Sentinels of n2 and n3 promoted one of them, after the
    # partition began and before the run ended.
    failovers = read_failovers(outcome.run_dir, ADDRESSES)
    assert [(f.old, f.new in ("n2", "n3")) for f in failovers][:1] == [("n1", True)], failovers
    started = datetime.strptime(outcome.run_dir.name, "%Y%m%dT%H%M%S")  # local, as Sentinel
    assert failovers[0].time > started
    print(
        f"redis lost writes: {verdicts} tries; {result['cause']}; failover "
        f"{failovers[0].old}->{failovers[0].new} at {failovers[0].time:%H:%M:%S.%f} "
        f"(run dir {outcome.run_dir.name})"
    )
