"""`clew test`, `clew analyze` and `clew replay` as a user runs them, on a real 3-node local
etcd cluster: ``--test-count`` and ``--junit-xml`` (read back with the standard library),
a stored run checked again (and, once a read of a value nobody wrote is appended to its
journal, found invalid), and a stored run's faults replayed. A few seconds of load per run.
Own subnet and prefix; the runs share one cluster, brought up first and taken down at
the end (as after `clew cluster up`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from clusters import ClusterSpec, get_provider
from harness.dbs.etcd import DEFAULT_BINARY

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(
        not os.path.exists(DEFAULT_BINARY), reason=f"{DEFAULT_BINARY} missing (etcd-server)"
    ),
]

PREFIX = "ccr-"
CLUSTER = {"subnet": "10.77.187.0/24", "prefix": PREFIX, "bridge": f"{PREFIX}br0"}
CLEW = str(Path(sys.executable).with_name("clew"))
#: ``clew test --test-count 2 --junit-xml``: its process, the XML file, the run dirs.
Runs = tuple[subprocess.CompletedProcess[str], Path, list[Path]]


def clew(*args: str) -> subprocess.CompletedProcess[str]:
    """``clew ARGS`` in a subprocess."""
    return subprocess.run([CLEW, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def cluster_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 3-node local cluster every run here uses; nothing of it is left afterwards."""
    state = tmp_path_factory.mktemp("cli-cluster") / "state"
    provider = get_provider("local")
    try:
        provider.up(ClusterSpec(nodes=3, state_dir=str(state), options=CLUSTER))
        yield state
    finally:
        provider.down(state)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert PREFIX not in netns, netns


def cluster_flags(state: Path) -> list[str]:
    flags = ["--cluster-state-dir", str(state)]
    for k, v in CLUSTER.items():
        flags += ["--cluster-option", f"{k}={v}"]
    return flags


def ledger(run: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (run / "faults.jsonl").read_text().splitlines() if x]


def applied(run: Path) -> list[tuple[str, object]]:
    """(f, value) of every start-* fault the run applied, in order."""
    return [(str(r["f"]), r["value"]) for r in ledger(run)
            if r.get("event") == "applied" and str(r["f"]).startswith("start-")]  # fmt: skip


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, cluster_state: Path) -> Runs:
    """``clew test etcd --test-count 2 --junit-xml``: its process, the XML, the run dirs."""
    tmp = tmp_path_factory.mktemp("cli-runs")
    junit = tmp / "junit.xml"
    proc = clew(
        "test", "etcd", "--nodes", "3", "--time-limit", "4", "--interval", "1", "--seed", "40",
        "--test-count", "2", "--junit-xml", str(junit), "--store", str(tmp / "store"),
        "--no-progress", *cluster_flags(cluster_state),
    )  # fmt: skip
    runs = sorted((tmp / "store" / "etcd-register").glob("2*"))
    return proc, junit, runs


def test_doctor_logs_in_to_each_node_and_probes_what_faults_need(cluster_state: Path) -> None:
    """`clew doctor` with a cluster up checked only that each node's SSH port answered."""
    proc = clew("doctor", "--json", "--state-dir", str(cluster_state))
    caps = {c["name"]: c for c in json.loads(proc.stdout)}
    for n in ("n1", "n2", "n3"):
        assert caps[f"node:{n}"]["available"], caps[f"node:{n}"]
        assert caps[f"node:{n}"]["detail"].endswith("answers (TCP); logs in")
        faults = caps[f"node:{n}:faults"]
        assert faults["available"], faults
        assert faults["detail"].startswith("partitions via nft, python3, tc"), faults
    assert "n4" not in str(caps)


def test_test_count_makes_that_many_runs_with_successive_seeds(two_runs: Runs) -> None:
    proc, _, runs = two_runs
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "== run 1 of 2" in proc.stdout and "== run 2 of 2" in proc.stdout
    assert proc.stdout.count("VALID  ") == 2, proc.stdout
    assert len(runs) == 2, runs
    seeds = [json.loads((r / "spec.json").read_text())["seed"] for r in runs]
    assert seeds == [40, 41]
    for run in runs:
        assert json.loads((run / "results.json").read_text())["valid"] is True
        assert applied(run), "a 4 s run with 1 s faults applied none"


def test_junit_xml_names_every_run(two_runs: Runs) -> None:
    _, junit, runs = two_runs
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite"
    assert suite.get("name") == "etcd-register"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "0")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["run 1", "run 2"]
    for case, run in zip(cases, runs, strict=True):
        assert case.get("classname") == "etcd-register"
        assert float(case.get("time") or "-1") >= 0
        assert case.find("failure") is None and case.find("error") is None
        out = case.find("system-out")
        assert out is not None and Path(out.text or "") == run


def test_analyze_checks_a_stored_run_again(two_runs: Runs, tmp_path: Path) -> None:
    _, _, runs = two_runs
    run = runs[0]
    before = json.loads((run / "results.json").read_text())
    proc = clew("analyze", str(run))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("VALID  ")
    after = json.loads((run / "results.json").read_text())
    assert after["valid"] is True and after["ops"] == before["ops"]

    # The same journal with one more read, of a value no one ever wrote: invalid.
    copy = tmp_path / "store" / "etcd-register" / run.name
    shutil.copytree(run, copy)
    lines = (copy / "history.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    key = next(json.loads(x)["key"] for x in reversed(lines) if '"f":"read"' in x.replace(" ", ""))
    op = {"process": 999, "f": "read", "key": key, "node": "n1"}
    extra = [
        {"index": last["index"] + 1, "time": last["time"] + 1, "type": "invoke", **op,
         "value": None},
        {"index": last["index"] + 2, "time": last["time"] + 2, "type": "ok", **op, "value": 99},
    ]  # fmt: skip
    with (copy / "history.jsonl").open("a") as f:
        f.writelines(json.dumps(x) + "\n" for x in extra)
    proc = clew("analyze", str(copy))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith("INVALID  ")
    assert json.loads((copy / "results.json").read_text())["valid"] is False


def test_replay_strikes_the_same_faults(two_runs: Runs, tmp_path: Path) -> None:
    _, _, runs = two_runs
    original = runs[1]
    proc = clew(
        "replay", str(original), "--store", str(tmp_path / "store"), "--no-progress",
        # (the stored spec names the cluster's state dir: the replay runs on it again)
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (replayed,) = sorted((tmp_path / "store" / "etcd-register").glob("2*"))
    spec = json.loads((replayed / "spec.json").read_text())
    assert spec["replay_of"] == str(original)
    assert spec["seed"] == 41
    assert applied(replayed) == applied(original)
    starts = [r for r in ledger(replayed) if r.get("event") == "intent" and "at" in r]
    assert starts and all(r.get("source") == "replay" for r in starts), starts


def test_replay_on_another_cluster(two_runs: Runs, tmp_path: Path) -> None:
    """`clew replay --cluster-state-dir --cluster-option`: the run's own cluster may be
    busy or gone; the replay brings up (and takes down) the one named, on its subnet."""
    _, _, runs = two_runs
    original = runs[1]
    other = tmp_path / "other-cluster"
    prefix = "ccq-"
    try:
        proc = clew(
            "replay", str(original), "--store", str(tmp_path / "store"), "--no-progress",
            "--cluster-state-dir", str(other), "--cluster-option", "subnet=10.77.186.0/24",
            "--cluster-option", f"prefix={prefix}", "--cluster-option", f"bridge={prefix}br0",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (replayed,) = sorted((tmp_path / "store" / "etcd-register").glob("2*"))
        spec = json.loads((replayed / "spec.json").read_text())
        assert spec["cluster_state_dir"] == str(other)
        assert spec["cluster_options"]["subnet"] == "10.77.186.0/24"
        assert spec["replay_of"] == str(original)
        assert applied(replayed) == applied(original)
        logs = [p for p in (replayed / "nodes").rglob("*") if p.is_file()]
        assert any("10.77.186." in p.read_text(errors="replace") for p in logs), logs
    finally:
        get_provider("local").down(other)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert prefix not in netns, netns
