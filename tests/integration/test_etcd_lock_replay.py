"""etcd's lock granted twice, from a recorded schedule of pauses (Jepsen's etcd 3.4.3
finding: etcd's locks do not guarantee mutual exclusion).

A ``clew test etcd lock`` run replays :data:`LOCK_PAUSE_SCHEDULE`: the member ``n3`` is
paused twice for 4 s, longer than the lock's lease (``lease_ttl`` 2 s, renewed every
third of it through the client's own member). Clients of ``n3`` waiting for the lock
(``acquire_timeout`` 10 s, so they still wait when ``n3`` resumes) stop renewing their
leases, which lapse; the lock passes on among the clients of ``n1`` and ``n2``; when ``n3``
resumes it answers its waiters' pending requests and tells them they hold the lock — while
another client holds it. Applying a pause can take seconds on a loaded machine (the
process nemesis scans ``/proc``), shortening the window, so the schedule is replayed up to
``ATTEMPTS`` times. The same run without faults must be valid; it uses a longer lease
(:data:`FAULTLESS_LEASE_TTL`), because a starved machine is itself a pause: in a CI run
whose 16 s of load took 28 s, a client's renewals stalled past a 2 s lease and the lock
was granted twice with no fault injected — etcd's unsafety again, not a checker's error.
One cluster for the file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.dbs.etcd import DEFAULT_BINARY
from harness.runner import RunOutcome, run_test
from harness.spec import load_spec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(not os.path.exists(DEFAULT_BINARY), reason="etcd is not installed"),
    pytest.mark.skipif(
        shutil.which("nft") is None and shutil.which("iptables") is None,
        reason="no nftables/iptables",
    ),
]

PREFIX = "elr-"
CLUSTER = {"subnet": "10.77.244.0/24", "prefix": PREFIX, "bridge": f"{PREFIX}br0"}
NODES = ("n1", "n2", "n3")
#: The lock's lease and how long an acquire waits (seconds): a waiter outlasts the pause
#: of its member, its lease does not. Ops may take that long (the runner's op timeout).
OPTIONS = {"lease_ttl": 2, "acquire_timeout": 10}
#: The lease of the run without faults: longer than any stall of a loaded test machine.
FAULTLESS_LEASE_TTL = 10
OP_TIMEOUT = 12.0
TIME_LIMIT = 16.0
#: The recorded schedule: n3 paused 4 s, twice.
LOCK_PAUSE_SCHEDULE: tuple[dict[str, Any], ...] = (
    {"at": 2.0, "f": "start-pause", "value": ["n3"]},
    {"at": 6.0, "f": "stop-pause", "value": None},
    {"at": 9.0, "f": "start-pause", "value": ["n3"]},
    {"at": 13.0, "f": "stop-pause", "value": None},
)
#: Replays of the recorded schedule before giving up.
ATTEMPTS = 3


@pytest.fixture(scope="module")
def cluster_state(local_cluster: Any) -> Iterator[Path]:
    with local_cluster("etcd-lock", len(NODES), CLUSTER) as state:
        yield state


def _run(state: Path, store: Path, **kw: Any) -> RunOutcome:
    steps = kw.pop("steps", None)
    options = {**OPTIONS, **kw.pop("options", {})}
    spec = load_spec(
        suite="etcd", workload="lock", nodes=len(NODES), interval=2.0, seed=3,
        time_limit=TIME_LIMIT, op_timeout=OP_TIMEOUT, recovery_time=2.0,
        options=options, store=str(store), cluster_state_dir=str(state),
        cluster_options=CLUSTER, **kw,
    )  # fmt: skip
    return run_test(spec, schedule=steps)


def test_a_run_without_faults_is_valid(cluster_state: Path, tmp_path: Path) -> None:
    outcome = _run(cluster_state, tmp_path, faults="none",
                   options={"lease_ttl": FAULTLESS_LEASE_TTL})  # fmt: skip
    result = outcome.results["checkers"]["lock"]
    print("etcd lock without faults:", result["hold_count"], "holds;", result["cause"])
    assert outcome.valid is True, result
    assert result["overlap_count"] == 0 and result["hold_count"] > 10, result


def test_the_recorded_pauses_grant_the_lock_twice(cluster_state: Path, tmp_path: Path) -> None:
    verdicts = []
    for attempt in range(ATTEMPTS):
        outcome = _run(cluster_state, tmp_path / f"try-{attempt}", faults="pause",
                       steps=[dict(s) for s in LOCK_PAUSE_SCHEDULE])  # fmt: skip
        verdicts.append(outcome.valid)
        if outcome.valid is False:
            break
    result = outcome.results["checkers"]["lock"]
    assert verdicts[-1] is False, (verdicts, result["cause"], outcome.run_dir)
    assert outcome.results["heal_verified"] is True
    assert result["overlap_count"] >= 1, result
    print(f"etcd lock replay: {verdicts}; {result['cause']} (run dir {outcome.run_dir.name})")
