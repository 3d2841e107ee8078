"""Bad input to ``clew test``, ``clew campaign``, ``clew replay`` and ``clew shrink`` is
refused before any cluster comes up, naming the option (and the spec file it came from):
no cluster is brought up in these tests, and one that would be fails them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from harness.cli import cli


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to bring a cluster up."""
    import harness.campaign
    import harness.runner

    def up(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a cluster was brought up")

    monkeypatch.setattr(harness.runner, "_bring_up", up)
    monkeypatch.setattr(harness.campaign.LocalExecutor, "session", up)


def clew(tmp_path: Path, *args: str) -> Result:
    """``clew ARGS`` with a store and a cluster state dir of the test's own."""
    where = ["--store", str(tmp_path / "s"), "--cluster-state-dir", str(tmp_path / "c")]
    return CliRunner().invoke(cli, [*args, *where], catch_exceptions=False)


def refused(result: Result, *message: str) -> None:
    """``result`` is exit 254 with each of ``message`` in its output, and no traceback."""
    assert result.exit_code == 254, result.output
    for m in message:
        assert m in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["test", "bugkv"], ["campaign", "bugkv", "--runs", "1"]])
def test_the_replay_scheduler_is_refused_before_any_cluster(
    command: list[str], tmp_path: Path
) -> None:
    refused(clew(tmp_path, *command, "--scheduler", "replay"), "--scheduler replay",
            "clew replay")  # fmt: skip


@pytest.mark.parametrize(
    ("value", "shown"), [("abc", "'abc'"), ("inf", "inf"), ("0.5", "0.5"), ("nan", "nan")]
)
@pytest.mark.parametrize("command", [["test", "bugkv"], ["campaign", "bugkv", "--runs", "1"]])
def test_a_fault_kinds_bad_option_is_refused_before_any_cluster(
    command: list[str], value: str, shown: str, tmp_path: Path
) -> None:
    # the disk-full package read its options once the cluster was up; inf crashed it
    result = clew(tmp_path, *command, "--nodes", "3", "--faults", "disk-full",
                  "-o", f"disk_full_headroom_mb={value}")  # fmt: skip
    refused(result, "cannot run --faults disk-full", "'disk_full_headroom_mb'", shown)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ('{"node": "n1", "f": "start-kill", "on": {"log": "nosuch"}}',
         "agent step 1: BugkvDB supplies no log pattern 'nosuch'"),
        ('{"node": "n1", "f": "start-kill", "at": 100}',
         "agent step 1: strikes at or after the end of the load (5 s)"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", [["test", "bugkv"], ["campaign", "bugkv", "--runs", "1"]])
def test_an_agent_step_the_db_or_time_cannot_have_is_refused_before_any_cluster(
    command: list[str], step: str, message: str, tmp_path: Path
) -> None:
    # compiled only once the cluster was up
    result = clew(tmp_path, *command, "--nodes", "3", "--faults", "kill", "--time-limit", "5",
                  "--agent-step", step)  # fmt: skip
    refused(result, message)


def test_an_agent_clock_step_goes_on_to_the_cluster_whose_capabilities_decide(
    tmp_path: Path,
) -> None:
    """The check before any cluster compiled the steps against a stand-in cluster, which
    reports no capability: every agent clock step was refused there ("libfaketime is not
    available"), though the local cluster has it (found by test_agent_sides)."""
    step = ('{"node": "n1", "f": "start-clock", "value": {"kind": "bump", "offsets": '
            '{"n1": 20.0}}, "at": 1, "hold": 1}')
    result = clew(tmp_path, "test", "bugkv", "--nodes", "3", "--faults", "clock",
                  "--time-limit", "5", "--agent-step", step)  # fmt: skip
    assert "a cluster was brought up" in result.output, result.output  # (the stub's crash)


def test_a_spec_file_that_is_a_fifo_or_a_device_is_refused_not_read_forever(
    tmp_path: Path,
) -> None:
    import os

    fifo = tmp_path / "spec.toml"
    os.mkfifo(fifo)
    refused(clew(tmp_path, "test", "--spec", str(fifo)), f"{fifo}: not a regular file")
    refused(clew(tmp_path, "test", "--spec", "/dev/zero"), "/dev/zero: not a regular file "
            "(a FIFO, socket or device): not read; a spec file must be a regular file")


def test_a_spec_file_too_large_to_be_one_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * 2 * 1024**2 + "\n")
    refused(clew(tmp_path, "test", "--spec", str(big)),
            f"{big}: larger than 1 MiB, the most a spec file may hold: not read")


@pytest.mark.parametrize("command", [["test", "bugkv"], ["campaign", "bugkv", "--runs", "1"]])
def test_concurrency_has_an_explicit_limit(command: list[str], tmp_path: Path) -> None:
    result = clew(tmp_path, *command, "--concurrency", str(10**29))
    refused(result, "`concurrency` must be at most 20,000 (client workers)")


@pytest.mark.parametrize(
    ("fields", "flags", "named", "message"),
    [
        ('workload = "nope"', [], True, "suite 'bugkv' has no workload 'nope'"),
        ('faults = ["partition"]\nnodes = 1', [], True, "partition faults need at least 2"),
        ('faults = ["partition"]', ["--nodes", "1"], False, "partition faults need at least 2"),
        ('faults = ["disk-full"]\n[options]\ndisk_full_headroom_mb = "x"', [], True,
         "'disk_full_headroom_mb'"),
        ('faults = ["kill"]\n[[agent]]\nnode = "n1"\nf = "start-kill"\non = {log = "no"}',
         [], True, "supplies no log pattern 'no'"),
        ('scheduler = "replay"', [], True, "--scheduler replay"),
        ('provider = "nope"', [], True, "`provider` is unknown: 'nope'"),
    ],
)  # fmt: skip
def test_a_spec_files_bad_field_is_refused_naming_the_file(
    fields: str, flags: list[str], named: bool, message: str, tmp_path: Path
) -> None:
    # only the [options] table was named, and only for unknown options or bad values
    spec = tmp_path / "mine.toml"
    spec.write_text(f'suite = "bugkv"\n{fields}\n')
    result = clew(tmp_path, "test", "--spec", str(spec), *flags)
    refused(result, message)
    assert (f"{spec}: " in result.output) is named, result.output


KILL_STEPS = [
    {"seq": 1, "event": "intent", "kind": "kill", "f": "start-kill", "at": 1.0,
     "value": {"targets": "one"}},
    {"seq": 1, "event": "applied", "kind": "kill", "f": "start-kill",
     "value": {"targets": "one", "nodes": ["n1"]}},
]  # fmt: skip


def stored_run(tmp_path: Path, **fields: Any) -> Path:
    """An invalid stored run of bugkv (3 nodes, kill faults) with ``fields`` in its spec."""
    import json

    run = tmp_path / "store" / "bugkv-register" / "20260101T000000"
    run.mkdir(parents=True)
    spec = {"suite": "bugkv", "workload": "register", "seed": 1, "nodes": 3,
            "faults": ["kill"], "time_limit": 5, **fields}  # fmt: skip
    (run / "spec.json").write_text(json.dumps(spec))
    (run / "results.json").write_text(json.dumps({"valid": False}))
    (run / "faults.jsonl").write_text("".join(json.dumps(r) + "\n" for r in KILL_STEPS))
    (run / "history.jsonl").write_text("")
    return run


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"options": {"bug": "nonsense"}}, "unknown bugkv bug 'nonsense'"),
        ({"options": {"election_ms": "abc"}}, "option 'election_ms' must be a number"),
        ({"nodes": 1, "faults": ["partition"]}, "partition faults need at least 2 nodes"),
        ({"agent": [{"node": "n9", "f": "start-kill", "at": 1}]}, "no node 'n9'"),
    ],
)
@pytest.mark.parametrize("command", ["replay", "shrink"])
def test_a_stored_runs_bad_spec_is_refused_naming_its_spec_json(
    command: str, fields: dict[str, Any], message: str, tmp_path: Path
) -> None:
    run = stored_run(tmp_path, **fields)
    result = clew(tmp_path, command, str(run))
    refused(result, f"{run / 'spec.json'}: ", message)


@pytest.mark.parametrize(("flag", "field"), [("--store", "store"), ("-w", "workload")])
def test_an_empty_store_or_workload_is_refused(flag: str, field: str, tmp_path: Path) -> None:
    # --store '' stored the runs in the working directory; -w '' ran the default workload
    args = ["test", "bugkv", "--cluster-state-dir", str(tmp_path / "c"), flag, ""]
    if flag != "--store":
        args += ["--store", str(tmp_path / "s")]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    refused(result, f"flags: `{field}` must name")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0, True, "soon"])
def test_the_local_providers_ready_timeout_must_be_finite_seconds(value: Any) -> None:
    # nan passed `<= 0`, and became the wait for every node's sshd
    from clusters._localopts import LocalOptions
    from clusters.base import ClusterSpec
    from harness.errors import ConfigError

    spec = ClusterSpec(provider="local", nodes=3, options={"ready_timeout": value})
    with pytest.raises(ConfigError, match="cluster option `ready_timeout` must be positive"):
        LocalOptions.from_spec(spec)


def test_a_bad_cluster_option_says_it_is_a_cluster_option() -> None:
    # "option `subnet`" read as one of the suite's options (-o) in a `clew test` line
    from clusters._localopts import LocalOptions
    from clusters.base import ClusterSpec
    from harness.errors import ConfigError

    spec = ClusterSpec(provider="local", nodes=3, options={"subnet": "garbage"})
    with pytest.raises(ConfigError, match=r"^cluster option `subnet` is not an IPv4 network"):
        LocalOptions.from_spec(spec)
    spec = ClusterSpec(provider="local", nodes=3, options={"colour": "x"})
    with pytest.raises(ConfigError, match=r"^unknown cluster option"):
        LocalOptions.from_spec(spec)


@pytest.mark.parametrize(("size", "bound"), [("1e30", "maximum of"), ("99999999T", "maximum of"),
                                             ("100", "minimum of")])  # fmt: skip
def test_analyze_max_memory_has_the_bounds_of_check(size: str, bound: str, tmp_path: Path) -> None:
    # 1e30 bytes was taken as a budget; 100 bytes made every check unknown
    run = stored_run(tmp_path)
    result = CliRunner().invoke(cli, ["analyze", str(run), "--max-memory", size])
    refused(result, "--max-memory", bound)


def test_a_spec_files_suite_that_does_not_load_is_refused_naming_the_file(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "mine.toml"
    spec.write_text('suite = "./no_such_suite.py"\n')
    refused(clew(tmp_path, "test", "--spec", str(spec)),
            f"{spec}: ./no_such_suite.py: no such suite file")  # fmt: skip
