"""MariaDB with Galera for real: 3 local nodes, each its own mariadbd in one Galera
cluster, every worker's client on its own node.

Jepsen's finding of lost updates in a *healthy* Galera cluster (MariaDB Galera Cluster
12.1.2, 2026) shows here without faults: list-append transactions at repeatable read,
checked for snapshot isolation, end INVALID with ``lost-update`` — two transactions that
read the same version of a key both commit an append to it — and at least one of them
between clients of different nodes (Galera's certification let both commit). Whether a
12 s run meets such a pair is a matter of timing, so the run is repeated up to
``ATTEMPTS`` times, with three workers per node on three keys at a time (with two per
node on six keys, one run under heavy load needed three tries). The same run with
``innodb_snapshot_isolation=ON`` must be valid. One cluster for the file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clusters.doctor import GALERA_LIBRARY
from harness.dbs.galera import MARIADBD
from harness.runner import RunOutcome, run_test
from harness.spec import load_spec
from harness.suites.galera import NODES

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(
        not (os.path.exists(MARIADBD) and os.path.exists(GALERA_LIBRARY)),
        reason="mariadb-server/galera-4 are not installed",
    ),
    pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed"),
]

PREFIX = "gal-"
CLUSTER = {"subnet": "10.77.245.0/24", "prefix": PREFIX, "bridge": f"{PREFIX}br0"}
#: Runs of the healthy cluster before giving up on seeing a lost update.
ATTEMPTS = 3
TIME_LIMIT = 12.0
#: Contention: three workers per node on three keys at a time, so that transactions on
#: different nodes often read and append to the same key at once.
CONCURRENCY = 9
SHAPE = {"key_count": 3}


@pytest.fixture(scope="module")
def cluster_state(local_cluster: Any) -> Iterator[Path]:
    with local_cluster("galera", len(NODES), CLUSTER) as state:
        yield state


def _run(state: Path, store: Path, **kw: Any) -> RunOutcome:
    spec = load_spec(
        suite="galera", workload="list-append", nodes=len(NODES), faults="none",
        concurrency=CONCURRENCY, time_limit=TIME_LIMIT, recovery_time=1.0, store=str(store),
        cluster_state_dir=str(state), cluster_options=CLUSTER, **kw,
    )  # fmt: skip
    return run_test(spec)


def _across_nodes(result: dict[str, Any]) -> int:
    return sum(1 for f in result.get("lost_updates", []) if len(set(f["nodes"])) > 1)


def test_a_healthy_cluster_loses_updates(cluster_state: Path, tmp_path: Path) -> None:
    verdicts = []
    for attempt in range(ATTEMPTS):
        outcome = _run(cluster_state, tmp_path / f"try-{attempt}", seed=1 + attempt,
                       options=dict(SHAPE))  # fmt: skip
        result = outcome.results["checkers"]["list-append"]
        verdicts.append((outcome.valid, _across_nodes(result)))
        if outcome.valid is False and _across_nodes(result) > 0:
            break
    print(f"galera healthy cluster: {verdicts}; {result['cause']} ({outcome.run_dir.name})")
    assert outcome.valid is False, (verdicts, result["cause"], outcome.run_dir)
    assert result["consistency"] == "snapshot-isolation"
    assert "lost-update" in result["anomalies"], result["anomalies"]
    assert _across_nodes(result) > 0, result["lost_updates"]


def test_with_innodb_snapshot_isolation_a_healthy_cluster_is_valid(
    cluster_state: Path, tmp_path: Path
) -> None:
    outcome = _run(
        cluster_state,
        tmp_path,
        seed=1,
        options={**SHAPE, "mysqld.innodb_snapshot_isolation": "ON"},
    )
    result = outcome.results["checkers"]["list-append"]
    print(f"galera innodb_snapshot_isolation=ON: {outcome.ops} ops; {result['cause']}")
    assert outcome.valid is True, (result["cause"], outcome.run_dir)
    assert outcome.ops > 200
