"""The campaign's own logic, with runs made by a stand-in executor: it stops at the first
invalid run or the cap, counts what was spent, gives parallel campaigns directories of
their own, and lands a run made elsewhere in its store as if it had been made here. (Real
runs: tests/integration/test_bugkv_campaign.py and test_campaign_dask.py.)"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.campaign import config_hash, experiment_hash, run_campaign
from harness.campaign_pool import ClusterPool, parse_subnets
from harness.errors import ConfigError
from harness.runner import RunOutcome
from harness.spec import TestSpec as Spec
from harness.spec import load_spec
from harness.store import new_run_dir


class Scripted:
    """Makes fake runs with the given verdicts: a run dir with a ledger of two fault ops."""

    def __init__(self, verdicts: list[Any]) -> None:
        self.verdicts = list(verdicts)
        self.seeds: list[int | None] = []
        self.sessions = 0

    @contextlib.contextmanager
    def session(self, spec: Spec) -> Iterator[Any]:
        self.sessions += 1
        yield self.run

    def run(self, spec: Spec) -> RunOutcome:
        self.seeds.append(spec.seed)
        run = new_run_dir(spec.store, spec.test_name)
        ledger = [
            {"seq": 1, "event": "intent", "at": 1.0, "f": "start-kill", "value": None},
            {"seq": 1, "event": "applied", "value": {"nodes": ["n1"]}},
            {"seq": 2, "event": "intent", "at": 2.0, "f": "stop-kill", "value": None},
            {"seq": 2, "event": "healed", "value": None},
        ]
        (run.path / "faults.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ledger))
        return RunOutcome(run_dir=run.path, valid=self.verdicts.pop(0), results={},
                          wall_seconds=2.5)  # fmt: skip


def spec(tmp_path: Path, **kw: Any) -> Spec:
    return load_spec(suite="bugkv", workload="set", seed=100, time_limit=6,
                     store=str(tmp_path / "store"), faults="kill", **kw)  # fmt: skip


def test_it_stops_at_the_first_invalid_run_and_counts_what_was_spent(tmp_path: Path) -> None:
    ex = Scripted([True, "unknown", False, True])
    result = run_campaign(spec(tmp_path), runs=10, executor=ex)
    assert ex.seeds == [100, 101, 102] and ex.sessions == 1
    assert result.runs_to_detection == 3 and result.stopped == "run 3 is invalid"
    data = json.loads((result.directory / "campaign.json").read_text())
    assert data["seconds_to_detection"] == 7.5 and data["fault_ops_to_detection"] == 6
    assert data["runs_made"] == 3 and data["fault_ops_spent"] == 6
    assert data["runs"][0]["schedule"][0] == {"at": 1.0, "f": "start-kill",
                                              "value": {"nodes": ["n1"]}}  # fmt: skip
    assert all((result.directory / r["run_dir"]).is_dir() for r in data["runs"])
    assert (result.directory / "report.html").exists() and result.exit_code == 1


class WithAgents(Scripted):
    """Fake runs whose ledger also holds what n2's agent struck and healed."""

    def run(self, spec: Spec) -> RunOutcome:
        outcome = super().run(spec)
        agent = [
            {"seq": 3, "time": 2_500_000_000, "event": "applied", "f": "start-kill",
             "value": {"targets": "nodes", "nodes": ["n2"]}, "source": "agent", "node": "n2"},
            {"seq": 4, "time": 3_000_000_000, "event": "healed", "f": "stop-kill",
             "value": None, "source": "agent", "node": "n2"},
        ]  # fmt: skip
        with open(outcome.run_dir / "faults.jsonl", "a") as out:
            out.write("".join(json.dumps(r) + "\n" for r in agent))
        return outcome


def test_what_node_agents_struck_counts_as_fault_ops_and_their_steps_are_in_the_config(
    tmp_path: Path,
) -> None:
    steps = [{"node": "n2", "f": "start-kill", "at": 2.5, "hold": 0.5}]
    result = run_campaign(spec(tmp_path, agent=steps), runs=1, executor=WithAgents([False]))
    data = json.loads((result.directory / "campaign.json").read_text())
    assert data["fault_ops_spent"] == 4 and data["runs"][0]["fault_ops"] == 4
    assert data["runs"][0]["schedule"][2] == {
        "at": 2.5, "f": "start-kill", "value": {"targets": "nodes", "nodes": ["n2"]},
        "source": "agent", "node": "n2"}  # fmt: skip
    assert data["config"]["agent"] == json.loads(json.dumps(spec(tmp_path, agent=steps)
                                                            .to_json()["agent"]))  # fmt: skip
    assert "agent" not in run_campaign(spec(tmp_path), runs=1,
                                       executor=Scripted([True])).config  # fmt: skip


def test_nothing_found_within_the_cap_is_null_with_what_was_spent(tmp_path: Path) -> None:
    result = run_campaign(spec(tmp_path), runs=2, executor=Scripted([True, True]))
    data = result.to_json()
    assert data["runs_to_detection"] is None and data["fault_ops_to_detection"] is None
    assert data["seconds_spent"] == 5.0 and data["stopped"] == "cap of 2 runs reached"
    assert result.exit_code == 0


def test_campaigns_started_in_the_same_second_get_directories_of_their_own(
    tmp_path: Path,
) -> None:
    a = run_campaign(spec(tmp_path), runs=1, executor=Scripted([True]))
    b = run_campaign(spec(tmp_path), runs=1, executor=Scripted([True]))
    assert a.directory != b.directory and a.directory.parent == b.directory.parent


def test_the_experiment_hash_leaves_out_only_the_scheduler(tmp_path: Path) -> None:
    r, a = spec(tmp_path), spec(tmp_path, scheduler="adaptive")
    assert config_hash(r) != config_hash(a) and experiment_hash(r) == experiment_hash(a)
    assert experiment_hash(r) != experiment_hash(spec(tmp_path, interval=2.0))


def test_a_run_made_elsewhere_lands_as_if_made_here(tmp_path: Path) -> None:
    from harness.campaign_dask import land_run

    remote = tmp_path / "worker" / "run"
    remote.mkdir(parents=True)
    (remote / "spec.json").write_text(json.dumps({"suite": "bugkv", "store": "/tmp/w/s",
                                                  "cluster_state_dir": "/tmp/w/c"}))  # fmt: skip
    (remote / "results.json").write_text(json.dumps({"valid": False}))
    (remote / "nodes" / "n1").mkdir(parents=True)
    (remote / "nodes" / "n1" / "bugkv.log").write_text("started\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(remote, arcname=".")
    here = spec(tmp_path, cluster_state_dir=str(tmp_path / "mine"))
    unit = {"tarball": buffer.getvalue(), "valid": False, "results": {"valid": False},
            "wall_seconds": 3.0, "ops": 10, "duration": 2.0, "problems": [],
            "worker": "tcp://10.0.0.9:1234"}  # fmt: skip
    outcome = land_run(here, unit)
    assert outcome.run_dir.parent == Path(here.store) / here.test_name
    assert (outcome.run_dir / "nodes" / "n1" / "bugkv.log").read_text() == "started\n"
    landed = json.loads((outcome.run_dir / "spec.json").read_text())
    assert landed["store"] == here.store and landed["cluster_state_dir"] == str(tmp_path / "mine")
    assert json.loads((outcome.run_dir / "results.json").read_text())["worker"] == unit["worker"]
    assert outcome.valid is False and outcome.results["worker"] == unit["worker"]
    assert (Path(here.store) / "latest").resolve() == outcome.run_dir.resolve()


def test_a_tarball_that_escapes_its_run_directory_is_refused(tmp_path: Path) -> None:
    from harness.campaign_dask import land_run

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"x"
        info = tarfile.TarInfo("../../escaped")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    unit = {"tarball": buffer.getvalue(), "valid": True, "results": {}, "wall_seconds": 1.0,
            "ops": 0, "duration": 0.0, "problems": [], "worker": "w"}  # fmt: skip
    with pytest.raises(tarfile.OutsideDestinationError):
        land_run(spec(tmp_path), unit)
    assert not (tmp_path / "store" / "escaped").exists()


def test_pool_subnets_are_parsed_and_slots_named_by_their_third_octet() -> None:
    assert parse_subnets("10.77.238.0/24, 10.77.239.0/24") == ("10.77.238.0/24", "10.77.239.0/24")
    options = ClusterPool().slot_options("10.77.233.0/24")
    assert options == {"subnet": "10.77.233.0/24", "prefix": "cp233-", "bridge": "cp233-br0"}
    for bad in ("", "10.77.1.0/16", "ten.77.1.0/24"):
        with pytest.raises(ConfigError):
            parse_subnets(bad)


class InlineClient:
    """Stands in for a Dask client: runs the unit here, at once."""

    def submit(self, fn: Any, *args: Any, pure: bool = True) -> Any:
        value = fn(*args)
        return type("Done", (), {"result": lambda self: value, "key": "inline"})()


def test_a_learner_on_a_worker_sees_the_memory_and_the_previous_run_and_its_memory_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.campaign_dask as cd
    from harness.campaign_pool import PoolSlot
    from nemeses.schedulers.memory import memory_path

    seen: list[dict[str, Any]] = []

    def fake_run_test(spec: Spec) -> RunOutcome:
        """What the scheduler on the worker would find: its memory, the previous run."""
        path = memory_path("adaptive", spec.store, spec.suite)
        memory = json.loads(path.read_text()) if path.exists() else {}
        previous = sorted(p.parent.name for p in Path(spec.store).glob("*/*/faults.jsonl"))
        seen.append({"memory": memory, "previous": previous,
                     "cluster": spec.cluster_state_dir})  # fmt: skip
        memory_path("adaptive", spec.store, spec.suite).write_text(
            json.dumps({"runs": memory.get("runs", 0) + 1}))
        return Scripted([True]).run(spec)

    monkeypatch.setattr(cd, "run_test", fake_run_test)
    slot = PoolSlot(name="cp1", subnet="10.77.1.0/24", state_dir=tmp_path / "slot", options={})
    monkeypatch.setattr(cd, "_slot", lambda pool: slot)
    executor = cd.DaskExecutor(InlineClient(), ClusterPool())  # type: ignore[arg-type]
    here = spec(tmp_path, scheduler="adaptive")
    result = run_campaign(here, runs=3, executor=executor)
    assert [s["memory"] for s in seen] == [{}, {"runs": 1}, {"runs": 2}]
    names = [Path(r.run_dir).name for r in result.runs]
    assert [s["previous"] for s in seen] == [[], names[:1], names[1:2]]
    assert {s["cluster"] for s in seen} == {str(tmp_path / "slot")}
    root_memory = memory_path("adaptive", str(result.directory / "runs"), "bugkv")
    assert json.loads(root_memory.read_text()) == {"runs": 3}  # back in the controller's store
    assert all(r.worker for r in result.runs)


def test_a_run_that_could_not_be_made_is_tried_again_with_its_seed(tmp_path: Path) -> None:
    from harness.errors import ClusterError

    class Flaky(Scripted):
        def run(self, spec: Spec) -> RunOutcome:
            if len(self.seeds) == 1 and not getattr(self, "failed", False):
                self.failed = True
                raise ClusterError("bugkv on n4 was not ready within 20 s")
            return super().run(spec)

    ex = Flaky([True, False])
    result = run_campaign(spec(tmp_path), runs=3, executor=ex)
    assert ex.seeds == [100, 101] and result.runs_to_detection == 2
    with pytest.raises(ClusterError):
        run_campaign(spec(tmp_path), runs=3, retries=0, executor=Flaky([True, False]))
    # campaign.json says what stopped it, not only that something did
    stops = sorted(json.loads(p.read_text())["stopped"]
                   for p in (tmp_path / "store").rglob("campaign.json"))  # fmt: skip
    assert stops == ["run 2 is invalid",
                     "stopped by an error: bugkv on n4 was not ready within 20 s"]  # fmt: skip


def test_a_cluster_conflict_is_not_tried_again(tmp_path: Path) -> None:
    """A state directory holding another provider's cluster is bad input: trying the same
    run again cannot change it."""
    from harness.errors import ClusterConflictError

    class Conflicting(Scripted):
        def run(self, spec: Spec) -> RunOutcome:
            self.seeds.append(spec.seed)
            raise ClusterConflictError("/tmp/x holds a static cluster, not a local one")

    ex = Conflicting([True])
    with pytest.raises(ClusterConflictError):
        run_campaign(spec(tmp_path), runs=3, retries=2, executor=ex)
    assert ex.seeds == [100]


def test_a_campaign_told_to_stop_ends_before_its_next_run(tmp_path: Path) -> None:
    ex = Scripted([True, True, True])
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(len(ex.seeds))
        return len(ex.seeds) == 2

    result = run_campaign(spec(tmp_path), runs=3, executor=ex, should_stop=should_stop)
    assert ex.seeds == [100, 101] and result.stopped == "interrupted"
    # Asked before each run and after it (a run that ends once told was cut short).
    assert result.runs_to_detection is None and asked == [0, 1, 1, 2]


@pytest.mark.parametrize("verdict", [True, False])
def test_a_run_cut_short_by_the_stop_is_not_a_measurement_unless_it_found_the_bug(
    tmp_path: Path, verdict: bool
) -> None:
    ex = Scripted([verdict])
    result = run_campaign(spec(tmp_path), runs=1, executor=ex,
                          should_stop=lambda: len(ex.seeds) == 1)  # fmt: skip
    if verdict:  # not "cap of 1 runs reached": the one run was interrupted
        assert result.stopped == "interrupted" and result.exit_code == 2
    else:  # an invalid history is a detection, however short the run
        assert result.stopped == "run 1 is invalid" and result.runs_to_detection == 1


def test_a_tainted_run_counts_as_unknown_never_as_a_clean_valid_run(tmp_path: Path) -> None:
    class Tainted(Scripted):
        def run(self, spec: Spec) -> RunOutcome:
            outcome = super().run(spec)
            outcome.results = {"tainted": len(self.seeds) == 2}
            return outcome

    # The runner gives a tainted run the verdict "unknown"; the campaign also reads the
    # flag itself, so even a run reported valid but tainted is not a clean valid run.
    result = run_campaign(spec(tmp_path), runs=3, executor=Tainted([True, True, True]))
    assert [r.tainted for r in result.runs] == [False, True, False]
    assert [r.verdict_text for r in result.runs] == ["valid", "valid (tainted)", "valid"]
    assert result.exit_code == 2 and result.runs_to_detection is None
    data = json.loads((result.directory / "campaign.json").read_text())
    assert [r["tainted"] for r in data["runs"]] == [False, True, False]
    assert "valid (tainted)" in (result.directory / "report.html").read_text()


def test_a_damaged_ledger_line_does_not_stop_the_count_of_a_runs_fault_ops(tmp_path: Path) -> None:
    from harness.campaign import _schedule_of

    (tmp_path / "faults.jsonl").write_text(
        '{"source": "agent", "event": "applied", "time": 1e400}\n'  # overflows int()
        '{"event": "intent", "at": 1.0, "seq": 1, "f": "start-kill"}\n'
        "not json\n"
        '{"event": "applied", "seq": 1, "value": null}\n'
    )
    assert _schedule_of(tmp_path) == ([{"at": 1.0, "f": "start-kill", "value": None}], 1)


def test_the_campaigns_commit_says_when_the_code_differs_from_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """campaign.json's clew_commit named HEAD even for a campaign made from modified code."""
    import subprocess
    from types import SimpleNamespace

    import harness.campaign

    changed = [""]

    def fake_run(argv: list[str], **kw: object) -> SimpleNamespace:
        out = "0123456789ab\n" if "rev-parse" in argv else changed[0]
        return SimpleNamespace(returncode=0, stdout=out)

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert harness.campaign.clew_commit() == "0123456789ab"
    changed[0] = " M harness/runner.py\n"
    assert harness.campaign.clew_commit() == "0123456789ab-dirty"
