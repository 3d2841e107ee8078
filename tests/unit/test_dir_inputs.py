"""What clew reads from directories, damaged: each case found by ``bench/fuzz_dirs.py``
(a crash, a hang, or an error that named no file) is kept here as it was found."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.record import fault_windows


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to bring a cluster up."""
    import harness.runner

    def up(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cluster was brought up")

    monkeypatch.setattr(harness.runner, "_bring_up", up)


def clew(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_a_ledger_record_whose_event_is_a_list_is_not_a_fault_acting() -> None:
    records = [
        {"time": 1, "event": ["intent"], "kind": "kill", "phase": "start", "f": "start-kill"},
        {"time": 2, "event": {"x": 1}, "kind": "kill", "phase": "stop", "f": "stop-kill"},
    ]
    (w,) = fault_windows(records)
    assert (w.kind, w.start, w.stop) == ("kill", 1, 2)


def test_the_report_of_a_run_whose_ledger_has_such_a_record(tmp_path: Path) -> None:
    run = tmp_path / "t" / "20250101T000000"
    run.mkdir(parents=True)
    ops = [{"type": "invoke", "process": 0, "f": "read", "value": None, "time": 1},
           {"type": "ok", "process": 0, "f": "read", "value": 1, "time": 2}]  # fmt: skip
    (run / "history.jsonl").write_text("".join(json.dumps(op) + "\n" for op in ops))
    (run / "faults.jsonl").write_text(json.dumps({"time": 1, "event": [], "f": "start-kill"}))
    code, out = clew("report", str(run), "--no-index")
    assert code == 0, out


def _campaigns(root: Path, n: int = 2) -> list[Path]:
    out = []
    for i in range(n):
        d = root / "campaigns" / "bugkv-set" / f"c{i}"
        d.mkdir(parents=True)
        data = {"config": {"suite": "bugkv", "workload": "set", "scheduler": "random"},
                "config_hash": "c", "experiment_hash": "e", "caps": {"runs": 3},
                "runs_to_detection": 2, "runs_made": 2, "seconds_spent": 2.0,
                "fault_ops_spent": 2, "runs": [{"wall_seconds": 1.0}] * 2}  # fmt: skip
        (d / "campaign.json").write_text(json.dumps(data))
        out.append(d / "campaign.json")
    return out


def test_compare_of_a_campaign_json_that_is_a_fifo_refuses_it(tmp_path: Path) -> None:
    """It was opened for reading, which waits for a writer: clew compare hung."""
    import os

    files = _campaigns(tmp_path)
    files[1].unlink()
    os.mkfifo(files[1])
    code, out = clew("compare", str(tmp_path / "campaigns"), "-o", str(tmp_path / "c.html"))
    assert code == 254, out
    assert f"{files[1]}: not a regular file" in out


def test_compare_of_a_campaign_json_that_is_a_loop_of_links(tmp_path: Path) -> None:
    """Path.resolve raised RuntimeError: clew compare crashed."""
    files = _campaigns(tmp_path)
    files[0].unlink()
    files[0].symlink_to("campaign.json")
    code, out = clew("compare", str(tmp_path / "campaigns"), "-o", str(tmp_path / "c.html"))
    assert code == 254, out
    assert f"{files[0]}: a loop of symbolic links" in out


def test_compare_of_a_campaign_whose_experiment_hash_is_a_list(tmp_path: Path) -> None:
    """The hash was put in a set to tell experiments apart: TypeError, a crash."""
    files = _campaigns(tmp_path)
    data = json.loads(files[1].read_text())
    data["experiment_hash"] = ["e"]
    files[1].write_text(json.dumps(data))
    code, out = clew("compare", str(tmp_path / "campaigns"), "-o", str(tmp_path / "c.html"))
    assert code == 254, out
    assert f"{files[1]}: experiment_hash must be a string, not ['e']" in out


def _run(tmp_path: Path) -> Path:
    """A stored run of the etcd suite's register workload (no cluster needed to analyze)."""
    run = tmp_path / "store" / "etcd-register" / "20250101T000000"
    run.mkdir(parents=True)
    spec = {"suite": "etcd", "workload": "register", "seed": 1, "faults": ["pause"]}
    (run / "spec.json").write_text(json.dumps(spec))
    ops = [{"type": "invoke", "process": 0, "f": "write", "value": 1, "time": 1},
           {"type": "ok", "process": 0, "f": "write", "value": 1, "time": 2}]  # fmt: skip
    (run / "history.jsonl").write_text("".join(json.dumps(op) + "\n" for op in ops))
    return run


def test_analyze_of_a_run_whose_results_json_is_a_directory(tmp_path: Path) -> None:
    """Replacing it raised IsADirectoryError: a crash, after the check."""
    run = _run(tmp_path)
    (run / "results.json").mkdir()
    code, out = clew("analyze", str(run))
    assert code == 254, out
    assert f"{run / 'results.json'}: is a directory, where clew writes a file" in out


def test_analyze_of_a_run_whose_report_is_a_directory_keeps_the_verdict(tmp_path: Path) -> None:
    """The report's failure was logged with its traceback, as a bug."""
    run = _run(tmp_path)
    (run / "report.html").mkdir()
    result = CliRunner().invoke(cli, ["analyze", str(run)], catch_exceptions=False)
    assert result.exit_code == 2, result.output  # (unknown: the run has no results.json)
    assert "Traceback" not in result.output
    assert f"{run / 'report.html'}: is a directory" in result.output
    assert f"report: {run}\n" in result.output  # (not the directory in the way)
    assert json.loads((run / "results.json").read_text())["checkers"]["register"]["valid"]


def test_serve_of_a_store_whose_index_is_a_directory(tmp_path: Path) -> None:
    run = _run(tmp_path)
    index = run.parent.parent / "index.html"
    index.mkdir()
    code, out = clew("serve", "--store", str(index.parent), "--port", "0")
    assert code == 254, out
    assert f"{index}: is a directory, where clew writes a file" in out


def _jepsen_store(tmp_path: Path) -> Path:
    import shutil

    store = tmp_path / "jepsen" / "etcd" / "20250101T000000.000Z"
    shutil.copytree(Path(__file__).parents[1] / "data" / "jepsen-store", store)
    return store


def test_a_jepsen_results_edn_nested_deeply_is_named(tmp_path: Path) -> None:
    """edn_format read it, but making it plain data recursed: RecursionError, a crash."""
    store = _jepsen_store(tmp_path)
    (store / "results.edn").write_text("{:valid? true :x " + "[" * 1500 + "]" * 1500 + "}")
    code, out = clew("analyze", str(store))
    assert code == 254, out
    assert f"{store / 'results.edn'}: not EDN clew reads: nested too deeply" in out


def test_analyze_of_a_jepsen_store_whose_report_is_a_directory_keeps_the_verdict(
    tmp_path: Path,
) -> None:
    """As for a clew run: the verdict was written, then the report's failure exited 254
    ("bad input") without printing it."""
    store = _jepsen_store(tmp_path)
    (store / "clew" / "report.html").mkdir(parents=True)
    result = CliRunner().invoke(cli, ["analyze", str(store)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "\nVALID  " in result.output and "Traceback" not in result.output
    assert f"{store / 'clew' / 'report.html'}: is a directory" in result.output
    assert f"report: not written ({store / 'clew' / 'report.html'}: is a directory" \
        in result.output
    assert json.loads((store / "clew" / "results.json").read_text())["valid"] is True


def test_analyze_of_a_jepsen_store_whose_report_fails_names_no_earlier_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report that failed otherwise than with a ClewError (a bug) crashed the command
    before the verdict was printed; and an earlier analyze's report.html was printed as if
    it were this one's."""
    import reports.run_report

    store = _jepsen_store(tmp_path)
    assert CliRunner().invoke(cli, ["analyze", str(store)]).exit_code == 0  # a first report

    def broken(*args: Any, **kw: Any) -> None:
        raise RuntimeError("a bug in the report")

    monkeypatch.setattr(reports.run_report, "write_run_report", broken)
    result = CliRunner().invoke(cli, ["analyze", str(store)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "\nVALID  " in result.output
    assert "report: not written (RuntimeError: a bug in the report (a bug in clew)); the " \
        f"results are in {store / 'clew'}" in result.output


def test_a_bad_line_of_a_torn_journal_names_the_runs_file_not_a_copy(tmp_path: Path) -> None:
    """The whole lines were read from a temporary copy, which the message named."""
    run = _run(tmp_path)
    bad = {"type": "invoke", "process": 2**63, "f": "read", "value": None, "time": 3}
    with (run / "history.jsonl").open("a") as f:
        f.write(json.dumps(bad) + '\n{"type": "ok", "proc')  # and a torn last line
    code, out = clew("analyze", str(run))
    assert code == 254, out
    assert f"{run / 'history.jsonl'}:3: process must be" in out
    assert "clew-journal-" not in out


def test_shrink_of_a_run_with_no_planned_fault_names_the_ledger(tmp_path: Path) -> None:
    """The message named the run's directory and a bare ``faults.jsonl``."""
    from harness.errors import ConfigError
    from harness.shrink import shrink_run

    run = _run(tmp_path)
    (run / "faults.jsonl").write_text('{"seq": 1, "event": "applied"}\n{"junk": 1}\n')
    try:
        shrink_run(run, lambda steps: True)
    except ConfigError as e:
        message = str(e)
    assert message.startswith(f"{run / 'faults.jsonl'}: records no applied fault op to shrink")
    assert "1 line was skipped as damaged, the first line 2" in message


def _bank_store(tmp_path: Path) -> Path:
    store = tmp_path / "jepsen" / "bank" / "20250101T000000.000Z"
    store.mkdir(parents=True)
    move = "{:from 0, :to 1, :amount 5}"
    ops = ["{:type :invoke, :f :read, :value nil, :process 0, :time 1}",
           "{:type :ok, :f :read, :value {0 10, 1 10}, :process 0, :time 2}",
           f"{{:type :invoke, :f :transfer, :value {move}, :process 1, :time 3}}",
           f"{{:type :ok, :f :transfer, :value {move}, :process 1, :time 4}}"]  # fmt: skip
    (store / "history.edn").write_text("\n".join(ops) + "\n")
    return store


def test_a_jepsen_store_no_model_fits_is_named_and_report_says_how(tmp_path: Path) -> None:
    """The refusal named neither the store nor its history, and clew report, which has no
    --model, said to pass --model."""
    store = _bank_store(tmp_path)
    code, out = clew("analyze", str(store))
    assert code == 254, out
    assert f"{store / 'history.edn'}: cannot tell which model" in out
    code, out = clew("report", str(store))
    assert code == 254, out
    assert f"{store / 'history.edn'}: cannot tell which model" in out
    assert f"clew analyze {store} --model MODEL" in out
    assert clew("analyze", str(store), "--model", "bank")[0] in (0, 1, 2)


def test_analyze_model_of_a_directory_that_is_not_a_jepsen_store_says_why(tmp_path: Path) -> None:
    """A Jepsen store whose history.edn is gone was refused with "--model: only for a
    Jepsen store directory", naming neither the directory nor what it lacks."""
    store = _jepsen_store(tmp_path)
    (store / "history.edn").unlink()
    code, out = clew("analyze", str(store), "--model", "register")
    assert code == 254, out
    assert f"{store} is not one: it holds no history.edn file" in out


def test_replay_and_shrink_of_a_run_whose_workload_the_suite_lacks_name_spec_json(
    tmp_path: Path,
) -> None:
    """The refusal (before any cluster) named the suite and workload, not the file."""
    run = _run(tmp_path)
    spec = json.loads((run / "spec.json").read_text())
    (run / "spec.json").write_text(json.dumps({**spec, "workload": "NaN"}))
    intent = {"seq": 1, "kind": "pause", "f": "start-pause", "event": "intent", "at": 1.0,
              "value": {"targets": "one", "nodes": ["n1"]}}  # fmt: skip
    (run / "faults.jsonl").write_text(json.dumps(intent) + "\n")
    (run / "results.json").write_text('{"valid": false}')
    again = ["--store", str(tmp_path / "again"), "--cluster-state-dir", str(tmp_path / "c")]
    for command in (["replay", str(run), "--no-progress"], ["shrink", str(run)]):
        code, out = clew(*command, *again)
        assert code == 254, out
        assert f"{run / 'spec.json'}: workload 'NaN' is not in suite 'etcd'" in out


def test_a_spec_json_holding_null_is_not_taken_for_a_missing_one(tmp_path: Path) -> None:
    """``null`` read as no file: "not a clew run directory (no spec.json)", and a
    results.json of ``null`` as a run that never finished."""
    run = _run(tmp_path)
    (run / "spec.json").write_text("null\n")
    code, out = clew("analyze", str(run))
    assert code == 254, out
    assert f"{run / 'spec.json'}: expected a JSON object, found null" in out
    run = _run(tmp_path / "b")
    (run / "results.json").write_text("null")
    code, out = clew("analyze", str(run))
    assert f"{run / 'results.json'}: expected a JSON object, found null" in out


def test_the_report_of_a_run_whose_spec_names_faults_not_as_names(tmp_path: Path) -> None:
    """The page joined them as strings: TypeError, a crash."""
    run = _run(tmp_path)
    for faults in ([["pause"], {"kind": "kill"}], 7):
        (run / "spec.json").write_text(json.dumps({"suite": "etcd", "faults": faults}))
        code, out = clew("report", str(run), "--no-index")
        assert code == 0, out


def _analyze_etcd_run(
    tmp_path: Path, workload: str, ops: list[dict[str, Any]]
) -> tuple[Path, Any]:
    """A stored etcd run of ``workload`` whose history is ``ops``, and `clew analyze` of it."""
    run = tmp_path / "store" / f"etcd-{workload}" / "20250101T000000"
    run.mkdir(parents=True)
    (run / "spec.json").write_text(json.dumps({"suite": "etcd", "workload": workload}))
    (run / "history.jsonl").write_text("".join(json.dumps(op) + "\n" for op in ops))
    return run, CliRunner().invoke(cli, ["analyze", str(run)], catch_exceptions=False)


def test_analyze_of_a_history_its_checker_refuses_names_the_line(tmp_path: Path) -> None:
    """The set-full checker's refusal of a read (file and line) was logged as a crash of
    the checker, with its traceback."""
    ops = [{"type": "invoke", "process": 0, "f": "read", "value": None, "time": 1},
           {"type": "ok", "process": 0, "f": "read", "value": 10**30, "time": 2}]  # fmt: skip
    run, result = _analyze_etcd_run(tmp_path, "set-full", ops)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{run / 'history.jsonl'}:2: a set-full read must complete with a list" in (
        result.output
    )


def test_a_jepsen_store_with_a_file_linked_out_of_it_is_refused(tmp_path: Path) -> None:
    """As a run of clew's is: results.edn -> /proc/kmsg would block the reading forever
    (here a harmless file outside the store stands for it)."""
    store = _jepsen_store(tmp_path)
    outside = tmp_path / "outside.edn"
    outside.write_text("{:valid? true}")
    (store / "results.edn").unlink()
    (store / "results.edn").symlink_to(outside)
    for command in ("analyze", "report"):
        code, out = clew(command, str(store))
        assert code == 254, out
        assert f"{store / 'results.edn'} -> {outside}: a link out of the Jepsen store" in out
    assert not (store / "clew").exists()


def test_analyze_of_a_jepsen_store_whose_view_holds_a_fifo_for_nodes(tmp_path: Path) -> None:
    """shutil.rmtree opened the FIFO clew/nodes to remove it, and waited for a writer."""
    import os

    store = _jepsen_store(tmp_path)
    (store / "clew").mkdir()
    os.mkfifo(store / "clew" / "nodes")
    code, out = clew("analyze", str(store))
    assert code == 0, out
    assert (store / "clew" / "nodes" / "n1" / "etcd.log").is_file()


def test_the_report_of_a_run_whose_agents_json_lacks_a_nodes_offset(tmp_path: Path) -> None:
    """agents.json's measurement of n1 without ``offset_ns``: KeyError, a crash."""
    import shutil

    run = tmp_path / "store" / "bugkv-set" / "20250101T000000"
    shutil.copytree(Path(__file__).parents[1] / "data" / "agents" / "bugkv-5-nodes", run)
    agents = {"origin_controller_ns": 53393761045341, "offsets": {"n1": {"rtt_ns": 5}}}
    (run / "agents.json").write_text(json.dumps(agents))
    code, out = clew("report", str(run), "--no-index")
    assert code == 0, out
    assert "agent.jsonl" in (run / "report.html").read_text()


def test_the_report_of_a_bank_run_whose_checker_gave_no_totals(tmp_path: Path) -> None:
    """A bank result without reads (unknown: the checker could not run) drew a view whose
    template needed ``wrong``: UndefinedError, the report not written."""
    run = _run(tmp_path)
    (run / "spec.json").write_text(json.dumps({"suite": "etcd", "workload": "bank"}))
    unknown = {"valid": "unknown", "checker": "bank", "cause": "checker crashed: x"}
    damaged = {"valid": True, "checker": "bank", "totals": [[1, 2]], "errors": [1]}
    for bank in (unknown, damaged):
        results = {"valid": "unknown", "checkers": {"bank": bank}}
        (run / "results.json").write_text(json.dumps(results))
        code, out = clew("report", str(run), "--no-index")
        assert code == 0, out


def test_analyze_of_a_set_run_whose_history_adds_a_list(tmp_path: Path) -> None:
    """The set checker put the list in a set: TypeError, logged as a crash of the
    checker with its traceback."""
    ops = [{"type": "invoke", "process": 0, "f": "add", "value": [1], "time": 1},
           {"type": "ok", "process": 0, "f": "add", "value": [1], "time": 2},
           {"type": "invoke", "process": 1, "f": "read", "value": None, "time": 3},
           {"type": "ok", "process": 1, "f": "read", "value": [[1]], "time": 4}]  # fmt: skip
    run, result = _analyze_etcd_run(tmp_path, "set", ops)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{run / 'history.jsonl'}:1: a set element must be a number or a string" in (
        result.output
    )


def test_a_run_directory_that_is_a_link_to_a_device_is_named(tmp_path: Path) -> None:
    """It passed click's check (not a regular file), then was resolved: the message named
    /dev/null/spec.json, not the path given."""
    link = tmp_path / "run"
    link.symlink_to("/dev/null")
    again = ["--store", str(tmp_path / "again"), "--cluster-state-dir", str(tmp_path / "c")]
    for command in (["analyze"], ["replay", "--no-progress", *again], ["shrink", *again]):
        code, out = clew(command[0], str(link), *command[1:])
        assert code == 254, out
        assert f"{link}: not a run directory: not a directory at all" in out


def test_a_jepsen_store_whose_converted_history_is_a_fifo(tmp_path: Path) -> None:
    """write_history wrote into the FIFO clew/history.jsonl (as into a pipe it was given),
    waiting for a reader forever: clew report and clew analyze hung."""
    import os

    store = _jepsen_store(tmp_path)
    (store / "clew").mkdir()
    os.mkfifo(store / "clew" / "history.jsonl")
    code, out = clew("report", str(store))
    assert code == 0, out
    assert (store / "clew" / "history.jsonl").is_file()


def test_replay_of_a_spec_json_asking_for_10_to_the_30_nodes(tmp_path: Path) -> None:
    """Checked before the cluster, it made a list of that many stand-in nodes: a hang."""
    run = _run(tmp_path)
    spec = json.loads((run / "spec.json").read_text())
    (run / "spec.json").write_text(json.dumps({**spec, "nodes": 10**30}))
    intent = {"seq": 1, "kind": "pause", "f": "start-pause", "event": "intent", "at": 1.0,
              "value": {"targets": "one", "nodes": ["n1"]}}  # fmt: skip
    (run / "faults.jsonl").write_text(json.dumps(intent) + "\n")
    code, out = clew("replay", str(run), "--no-progress", "--store", str(tmp_path / "again"),
                     "--cluster-state-dir", str(tmp_path / "c"))  # fmt: skip
    assert code == 254, out
    assert f"{run / 'spec.json'}: `nodes` must be at most 10,000" in out


def test_the_report_of_a_ledger_record_whose_targets_are_a_number(tmp_path: Path) -> None:
    """The fault table joined them as a list: TypeError, a crash of clew report."""
    run = _run(tmp_path)
    rec = {"time": 1, "seq": 1, "event": "applied", "f": "start-kill", "targets": 5}
    (run / "faults.jsonl").write_text(json.dumps(rec) + "\n")
    code, out = clew("report", str(run), "--no-index")
    assert code == 0, out


def test_the_report_of_an_agent_journal_with_a_field_of_another_kind(tmp_path: Path) -> None:
    """A log record whose ``patterns`` is a number: TypeError, a crash of clew report."""
    import shutil

    run = tmp_path / "store" / "bugkv-set" / "20250101T000000"
    shutil.copytree(Path(__file__).parents[1] / "data" / "agents" / "bugkv-5-nodes", run)
    journal = run / "nodes" / "n1" / "agent.jsonl"
    rec = {"e": "log", "mono": 53393000000000, "wall": 1796344051000000000, "run": 0.1,
           "patterns": 5, "line": "elected"}  # fmt: skip
    journal.write_text(journal.read_text() + json.dumps(rec) + "\n")
    code, out = clew("report", str(run), "--no-index")
    assert code == 0, out
    assert "log (damaged)" in (run / "report.html").read_text()


def test_the_report_of_a_run_whose_clock_json_origin_is_out_of_range(tmp_path: Path) -> None:
    """An origin of 10^30 ns overflowed the int64 column of the node logs' times: a crash.
    Out of range, it is no anchor: the run's name is, as for a run without clock.json."""
    run = _run(tmp_path)
    (run / "clock.json").write_text(json.dumps({"origin_unix_ns": 10**30}))
    (run / "nodes" / "n1").mkdir(parents=True)
    (run / "nodes" / "n1" / "db.log").write_text("2025-01-01T00:00:00Z n1 started\n")
    code, out = clew("report", str(run), "--no-index")
    assert code == 0, out
    assert "n1 started" in (run / "report.html").read_text()


def test_the_report_of_a_run_whose_wall_time_is_infinite(tmp_path: Path) -> None:
    """results.json's "wall_seconds": Infinity (JSON as Python reads it) was made an int to
    be shown: OverflowError, a crash of clew report."""
    run = _run(tmp_path)
    (run / "results.json").write_text('{"valid": true, "wall_seconds": Infinity}')
    code, out = clew("report", str(run), "--no-index")
    assert code == 0, out
    assert "inf s" in (run / "report.html").read_text()


def test_the_report_of_a_counterexample_whose_steps_are_not_objects(tmp_path: Path) -> None:
    """A damaged results.json's counterexample steps were spread as objects: TypeError."""
    run = _run(tmp_path)
    cex = {"linearized": [5, {"op": {}}], "could_not_follow": 7}
    results = {"valid": False, "checkers": {"linear": {"valid": False, "counterexample": cex}}}
    (run / "results.json").write_text(json.dumps(results))
    code, out = clew("report", str(run), "--no-index")
    assert code == 0, out
    assert "results.json: not shown, it is not what clew writes" in (
        (run / "report.html").read_text()
    )


def test_the_report_of_an_agent_journal_record_whose_kind_is_a_list(tmp_path: Path) -> None:
    """``"e": ["strike"]`` was looked up in a set of kinds: TypeError, a crash."""
    import shutil

    run = tmp_path / "store" / "bugkv-set" / "20250101T000000"
    shutil.copytree(Path(__file__).parents[1] / "data" / "agents" / "bugkv-5-nodes", run)
    journal = run / "nodes" / "n1" / "agent.jsonl"
    rec = {"e": ["strike"], "mono": 53393000000000, "wall": 1796344051000000000, "run": 0.1}
    journal.write_text(journal.read_text() + json.dumps(rec) + "\n")
    code, out = clew("report", str(run), "--no-index")
    assert code == 0, out


def _replayable(tmp_path: Path, **fields: Any) -> Path:
    run = _run(tmp_path)
    spec = json.loads((run / "spec.json").read_text())
    (run / "spec.json").write_text(json.dumps({**spec, **fields}))
    intent = {"seq": 1, "kind": "pause", "f": "start-pause", "event": "intent", "at": 1.0,
              "value": {"targets": "one", "nodes": ["n1"]}}  # fmt: skip
    (run / "faults.jsonl").write_text(json.dumps(intent) + "\n")
    (run / "results.json").write_text('{"valid": false}')
    return run


def test_a_stored_run_does_not_choose_the_hosts_or_programs_a_replay_uses(
    tmp_path: Path,
) -> None:
    """`clew replay` of a run from elsewhere connected, as root and without checking host
    keys, to the hosts its spec.json named, and ran the programs it named; as a suite
    file, those are the user's to name again."""
    run = _replayable(tmp_path, provider="static", cluster_options={
        "hosts": "prod-db1.internal,prod-db2.internal", "insecure_host_keys": True})  # fmt: skip
    again = ["--store", str(tmp_path / "again"), "--cluster-state-dir", str(tmp_path / "c")]
    for command in (["replay", str(run), "--no-progress"], ["shrink", str(run)]):
        code, out = clew(*command, *again)
        assert code == 254, out
        assert "cluster names hosts='prod-db1.internal,prod-db2.internal', " in out, out
        assert "--cluster-option hosts=... --cluster-option insecure_host_keys=..." in out
    run = _replayable(tmp_path / "v", provider="vagrant", cluster_options={
        "vagrant": "/tmp/x", "box": "a/b"})  # fmt: skip
    code, out = clew("replay", str(run), "--no-progress", *again)
    assert code == 254 and "names vagrant='/tmp/x', box='a/b'" in out, out


def test_a_stored_run_does_not_choose_a_directory_for_the_replays_cluster(
    tmp_path: Path,
) -> None:
    """Its cluster_state_dir was taken as it was: clew wrote, and took down, the cluster's
    files in any directory a run named."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    run = _replayable(tmp_path, cluster_state_dir=str(precious))
    code, out = clew("replay", str(run), "--no-progress")
    assert code == 254, out
    assert f"the run was made on the cluster in {precious}, which holds no cluster" in out
    assert sorted(p.name for p in precious.iterdir()) == ["notes.txt"]
    # An empty directory too: the cluster's down removes it once empty (/mnt, say).
    (precious / "notes.txt").unlink()
    code, out = clew("replay", str(run), "--no-progress")
    assert code == 254 and "which holds no cluster" in out, out
    assert precious.is_dir()


def test_naming_the_hosts_again_drops_the_stored_nodes_file(tmp_path: Path) -> None:
    from harness.record import RunSpec
    from harness.rerun import rerun_spec

    run = _replayable(tmp_path, provider="static",
                      cluster_options={"nodes_file": "/theirs.txt", "user": "admin"})  # fmt: skip
    stored = RunSpec.read(run)
    assert stored is not None
    spec = rerun_spec(stored, run / "spec.json", cluster_options={"hosts": "a,b,c",
                      "user": "me"}, on_a_cluster=True)  # fmt: skip
    assert dict(spec.cluster_options) == {"hosts": "a,b,c", "user": "me"}


def test_a_replay_is_stored_beside_the_run_not_where_its_spec_says(tmp_path: Path) -> None:
    from harness.record import RunSpec
    from harness.rerun import rerun_spec

    run = _replayable(tmp_path, store="/elsewhere/victim")
    stored = RunSpec.read(run)
    assert stored is not None
    # A run in no store (copied to a web site, a home directory): ./store, as clew test.
    assert rerun_spec(stored, run / "spec.json", on_a_cluster=True).store == "store"
    (run.parent.parent / "latest").symlink_to(run.relative_to(run.parent.parent))  # a store
    spec = rerun_spec(stored, run / "spec.json", on_a_cluster=True)
    assert spec.store == str(run.parent.parent)
    assert rerun_spec(stored, run / "spec.json", store="mine").store == "mine"


def test_analyze_of_a_run_in_no_store_writes_no_index_around_it(tmp_path: Path) -> None:
    """`clew analyze ~/Downloads/run1` wrote ~/index.html: the directory two levels up
    was taken for a store."""
    run = _run(tmp_path)  # (no `latest` links: a copied run, in no store)
    _, out = clew("analyze", str(run))
    assert (run / "report.html").is_file(), out
    assert not (run.parent.parent / "index.html").exists()


def test_a_test_directory_copied_out_of_its_store_is_in_no_store(tmp_path: Path) -> None:
    """`cp -r store/etcd-register ~/` left the test directory's own `latest` link, and
    clew report and analyze then indexed the home directory."""
    run = _run(tmp_path)
    (run.parent / "latest").symlink_to(run.name)
    for command in (["report", str(run)], ["analyze", str(run)]):
        _, out = clew(*command)
        assert (run / "report.html").is_file(), out
        assert not (run.parent.parent / "index.html").exists(), out
