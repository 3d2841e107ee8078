"""clew's pytest plugin (harness/pytest_plugin.py, loaded through its ``pytest11`` entry
point like any installed plugin) used as a team would: a real 3-node local etcd cluster
from ``clew_cluster``, the suite from ``clew_db``, runs from ``clew_run``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from harness.pytest_plugin import assert_invalid, assert_valid

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd is not installed"),
]

CLUSTER = {"subnet": "10.77.223.0/24", "prefix": "cpy-", "bridge": "cpy-br0"}

#: n1 cut off from its peers from 1 s to 7 s of the run.
ISOLATE_N1 = {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}


def test_the_plugin_is_loaded_from_its_entry_point(request: pytest.FixtureRequest) -> None:
    plugin = request.config.pluginmanager.get_plugin("clew")
    assert plugin is not None and plugin.__name__ == "harness.pytest_plugin"


@pytest.mark.clew(suite="etcd", nodes=3, time_limit=6, interval=2, seed=21,
                  faults="partition", cluster_options=CLUSTER)  # fmt: skip
def test_a_clew_test_written_as_a_pytest_test(
    clew_cluster: Any, clew_db: Any, clew_run: Callable[..., Any]
) -> None:
    assert [n.name for n in clew_cluster.nodes] == ["n1", "n2", "n3"]
    assert clew_db.name == "etcd" and "register" in clew_db.workloads
    outcome = clew_run()
    assert_valid(outcome)
    assert outcome.ops > 50
    run = outcome.run_dir
    assert (run / "report.html").exists()
    assert json.loads((run / "spec.json").read_text())["seed"] == 21
    # The cluster is the fixture's, still up after the run: a second run reuses it. n1 is
    # isolated while the majority writes and its workers read locally (serializable
    # reads): the stale reads are caught, and assert_valid says so with the report path.
    # Whether n1's workers read a key the majority wrote meanwhile is timing (keys rotate,
    # values are 0-4): in one CI run in many there was none, so up to three seeds.
    schedule = [
        {"at": 1.0, "f": "start-partition", "value": ISOLATE_N1},
        {"at": 7.0, "f": "stop-partition", "value": None},
    ]
    for seed in (3, 4, 5):
        outcome = clew_run(schedule=schedule, options={"serializable_reads": True}, seed=seed,
                           time_limit=9)  # fmt: skip
        if outcome.valid is False:
            break
    assert_invalid(outcome)
    with pytest.raises(AssertionError, match=r"(?s)the run is not valid.*register: invalid.*"
                       r"report: .*report\.html"):  # fmt: skip
        assert_valid(outcome)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "cpy-" in netns  # still up: clew_cluster tears it down after the test


def test_the_cluster_is_gone_after_the_test() -> None:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "cpy-" not in netns
