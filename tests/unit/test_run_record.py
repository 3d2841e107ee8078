"""A run's record (harness/record.py) and the commands that read stored runs.

* ``clew analyze`` of a run whose spec.json names a suite file outside the built-ins
  refuses (exit 254) without ``--suite FILE``, and never imports that file; with it, the
  run is checked;
* a refused run (an unknown workload) creates no run directory and moves no link;
* ``clew analyze`` keeps the run's duration and wall time; *ops* counts client operations;
* old results.json files stay readable; fault windows follow one rule.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import ConfigError, InputError
from harness.record import (
    MAX_WINDOW_VALUE_CHARS,
    FaultWindow,
    RunResults,
    RunSpec,
    ScheduleRecord,
    count_fault_records,
    fault_windows,
    read_fault_ledger,
    read_fault_records,
    verdict,
    windows_json,
)
from harness.runner import NOTHING_RECORDED, run_test
from harness.spec import load_spec

#: A suite file that leaves a mark when Python runs it.
SUITE_FILE = '''
from pathlib import Path
from checkers.result import Result
from harness.api import Suite, Workload

Path(__file__).with_name("suite-ran").write_text("imported")


def check(history, ctx):
    return Result(valid=True, checker="mine", details={"lines": len(history)})


SUITE = Suite(
    name="mine",
    db=lambda ctx: None,
    workloads={"w": lambda ctx: Workload(name="mine", client=lambda: None,
                                         generator=lambda ctx: None, check=check)},
    default_workload="w",
)
'''


def op(index: int, t: float, typ: str, process: int | str, f: str, value: object) -> str:
    return json.dumps({"index": index, "time": int(t * 1e9), "type": typ, "process": process,
                       "f": f, "value": value})  # fmt: skip


def register_history(span: float) -> str:
    """Two client ops and a nemesis op over ``span`` seconds: 6 history lines, 2 ops."""
    lines = [
        op(0, 0.0, "invoke", 0, "write", 1),
        op(1, 0.1, "ok", 0, "write", 1),
        op(2, 1.0, "invoke", "nemesis", "start-partition", None),
        op(3, 1.1, "info", "nemesis", "start-partition", None),
        op(4, span - 0.1, "invoke", 1, "read", None),
        op(5, span, "ok", 1, "read", 1),
    ]
    return "\n".join(lines) + "\n"


def make_run(tmp_path: Path, spec: dict[str, object], *, span: float = 38.2) -> Path:
    run = tmp_path / "store" / "t" / "20250101T000000"
    run.mkdir(parents=True)
    (run / "spec.json").write_text(json.dumps(spec))
    (run / "history.jsonl").write_text(register_history(span))
    return run


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_analyze_refuses_a_suite_file_the_run_names_unless_named_again(tmp_path: Path) -> None:
    suite = tmp_path / "elsewhere" / "mine.py"
    suite.parent.mkdir()
    suite.write_text(SUITE_FILE)
    run = make_run(tmp_path, {"suite": str(suite), "workload": "w", "seed": 1, "nodes": 1,
                              "faults": []})  # fmt: skip
    code, out = invoke("analyze", str(run))
    assert code == 254
    assert f"{run / 'spec.json'}: the run names the suite {str(suite)!r}" in out
    assert "clew does not run code that a stored run names" in out
    assert f"clew analyze {run} --suite FILE" in out
    assert not (suite.parent / "suite-ran").exists(), "the named file was executed"
    assert not (run / "results.json").exists()

    finished(run)
    code, out = invoke("analyze", str(run), "--suite", str(suite))
    assert code == 0, out
    assert (suite.parent / "suite-ran").exists()
    assert out.startswith("VALID  2 ops in 38.2 s")
    results = json.loads((run / "results.json").read_text())
    assert results["checkers"]["mine"]["lines"] == 6


def test_an_infinite_seed_in_spec_json_is_bad_input_not_a_crash(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"suite": "etcd", "workload": "register", "nodes": 1})
    (run / "spec.json").write_text('{"suite": "etcd", "seed": 1e400}')  # JSON reads inf
    code, out = invoke("analyze", str(run))
    assert code == 254
    assert "`seed` must be int, got inf" in out


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("nodes", "three", "`nodes` must be int, got 'three'"),
     ("options", "x", "`options` must be dict")],
)  # fmt: skip
def test_a_bad_field_of_spec_json_is_blamed_on_spec_json_not_flags(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    run = make_run(tmp_path, {"suite": "etcd", "workload": "register", "seed": 1, field: value})
    code, out = invoke("analyze", str(run))
    assert code == 254
    assert f"{run / 'spec.json'}: {message}" in out
    assert "flags" not in out


def test_replay_refuses_a_suite_file_the_run_names(tmp_path: Path) -> None:
    suite = tmp_path / "mine.py"
    suite.write_text(SUITE_FILE)
    run = make_run(tmp_path, {"suite": str(suite), "workload": "w", "seed": 1, "faults": []})
    code, out = invoke("replay", str(run), "--no-progress")
    assert code == 254
    assert f"clew replay {run} --suite FILE" in out
    assert not (tmp_path / "suite-ran").exists()


def test_analyze_of_a_built_in_suite_run_through_the_cli_keeps_the_runs_record(
    tmp_path: Path,
) -> None:
    run = make_run(tmp_path, {"suite": "etcd", "workload": "register", "seed": 1, "nodes": 1,
                              "faults": ["partition"]})  # fmt: skip
    (run / "results.json").write_text(json.dumps(RunResults(
        valid=True, ops=2, history_lines=6, duration=38.2, wall_seconds=51.25,
        check_seconds=0.5, problems=["log n1: gone"],
        heal_residue={"n1": []}, heal_verified=True).to_json()))  # fmt: skip
    (run.parent.parent / "latest").symlink_to(run.relative_to(run.parent.parent))  # a store
    code, out = invoke("analyze", str(run))
    assert code == 0, out
    assert out.splitlines()[0] == "VALID  2 ops in 38.2 s (wall time 51.2 s)"
    assert "problem: log n1: gone" in out
    results = json.loads((run / "results.json").read_text())
    assert results["duration"] == 38.2  # the history's span, not the time analyze took
    assert results["wall_seconds"] == 51.25
    assert results["ops"] == 2 and results["history_lines"] == 6
    assert results["problems"] == ["log n1: gone"]
    assert results["check_seconds"] < 30
    assert (run / "report.html").exists()
    assert (tmp_path / "store" / "index.html").exists()


def test_an_unknown_workload_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    earlier = make_run(tmp_path, {"suite": "etcd"})
    (store / "latest").symlink_to(earlier.relative_to(store))
    spec = load_spec(suite="etcd", workload="nope", store=str(store), seed=1)
    with pytest.raises(ConfigError, match="suite 'etcd' has no workload 'nope'; it has"):
        run_test(spec)
    assert sorted(p.name for p in store.iterdir()) == ["latest", "t"]
    assert (store / "latest").resolve() == earlier.resolve()


def test_results_of_the_old_format_read_with_their_old_meanings() -> None:
    old = {"valid": False, "checkers": {}, "ops": 812, "seconds": 38.2, "tainted": True,
           "heal_residue": {"n1": ["pause: stopped"]}, "faults": [], "problems": []}  # fmt: skip
    r = RunResults.from_json(old)
    assert (r.valid, r.ops, r.history_lines, r.wall_seconds, r.duration) == (
        False, None, 812, 38.2, None
    )
    assert r.heal_residue == {"n1": ["pause: stopped"]} and r.tainted
    again = RunResults.from_json(r.to_json())
    assert again == r


def test_records_round_trip_and_bad_files_name_file_and_line(tmp_path: Path) -> None:
    RunSpec({"suite": "etcd", "workload": "set", "replay_of": "x", "test_name": "t"}).write(
        tmp_path
    )
    spec = RunSpec.read(tmp_path)
    assert spec is not None and (spec.suite, spec.workload, spec.replay_of) == ("etcd", "set", "x")
    assert spec.spec_fields() == {"suite": "etcd", "workload": "set"}
    ScheduleRecord(source="replay", seed=3, steps=[{"at": 1.0, "f": "start-pause"}]).write(
        tmp_path
    )
    assert ScheduleRecord.read(tmp_path) == ScheduleRecord("replay", 3, [{"at": 1.0,
                                                                         "f": "start-pause"}])
    (tmp_path / "results.json").write_text("[1, 2]")
    with pytest.raises(InputError, match=r"results\.json: expected a JSON object"):
        RunResults.read(tmp_path)
    (tmp_path / "faults.jsonl").write_text('{"seq": 1}\nnot json\n{"seq": 2}\n{"seq": 3, "ti')
    with pytest.raises(InputError, match=r"faults\.jsonl:2: not a JSON object"):
        read_fault_records(tmp_path)
    (tmp_path / "faults.jsonl").write_text('{"seq": 1}\n{"seq": 2, "ti')
    assert read_fault_records(tmp_path) == [{"seq": 1}]  # a torn last line is skipped
    (tmp_path / "faults.jsonl").write_text('{"seq": 1}\n{"seq": 2, "ti\n\n')
    with pytest.raises(InputError, match=r"faults\.jsonl:2: not a JSON object"):
        read_fault_records(tmp_path)  # (lines after it, blank or not: not torn)
    (tmp_path / "faults.jsonl").write_bytes(b'{"seq": 1}\n{"seq": "\xff"}\n{"seq": 3}\n')
    with pytest.raises(InputError, match=r"faults\.jsonl:2: not UTF-8 text \(byte 9\)"):
        read_fault_records(tmp_path)  # (was a UnicodeDecodeError: a traceback in the report)
    (tmp_path / "faults.jsonl").write_text("".join(f'{{"seq": {i}}}\n\n' for i in range(9)))
    assert read_fault_records(tmp_path, limit=3) == [{"seq": 0}, {"seq": 1}, {"seq": 2}]
    assert count_fault_records(tmp_path) == 9
    (tmp_path / "faults.jsonl").write_text('{"seq": 1}\nnot json\n')
    assert read_fault_records(tmp_path, limit=1) == [{"seq": 1}]  # read no further


def test_the_indexs_summary_of_results_cuts_each_checker_to_its_verdict_and_anomalies(
    tmp_path: Path,
) -> None:
    """The store's index read every results.json whole (a 57 MB one took 5 s, on every
    `clew report`, `clew test` and `clew serve`): its summary builds each checker's
    ``valid`` and anomaly names only, and means what the whole read means."""
    details = {"G2-item": [{"cycle": [i, i + 1], "steps": ["rw"] * 20} for i in range(5000)]}
    full = {"format": 2, "valid": False, "ops": 7, "history_lines": 14, "duration": 1.5,
            "wall_seconds": 9.25, "faults": [{"kind": "pause", "start": 0.1, "stop": 0.2}],
            "checkers": {"txn": {"valid": False, "anomalies": ["G2-item"],
                                 "anomaly_details": details, "cause": "G2-item"},
                         "set": {"valid": "unknown", "anomalies": {"lost": [1, 2, 3]}},
                         "odd": "a checker result that is not an object"},
            "incomplete": None, "unknown-field": {"kept": [1] * 100}}  # fmt: skip
    for data in (full, {"valid": True}, {"ops": 5, "seconds": 3.0}):  # (the last: format 1)
        (tmp_path / "results.json").write_text(json.dumps(data))
        whole, summary = RunResults.read(tmp_path), RunResults.read_summary(tmp_path)
        assert whole is not None and summary is not None
        for name in ("valid", "ops", "history_lines", "duration", "wall_seconds", "faults",
                     "tainted", "incomplete", "problems"):  # fmt: skip
            assert getattr(summary, name) == getattr(whole, name), name
    assert summary is not None and RunResults.read_summary(tmp_path / "none") is None
    (tmp_path / "results.json").write_text(json.dumps(full))
    assert RunResults.read_summary(tmp_path).checkers == {  # type: ignore[union-attr]
        "txn": {"valid": False, "anomalies": ["G2-item"]},
        "set": {"valid": "unknown", "anomalies": ["lost"]},
        "odd": "a checker result that is not an object",
    }
    for text, why in (("[1]", "not a JSON object clew reads"), ("{not", "not a JSON object"),
                      ('{"checkers": [1]}', "malformed: `checkers` must be an object"),
                      ("[" * 100_000, "not a JSON object clew reads")):  # fmt: skip
        (tmp_path / "results.json").write_text(text)
        with pytest.raises(InputError, match=why):
            RunResults.read_summary(tmp_path)


def test_a_ledger_time_out_of_range_is_a_damaged_line_not_a_crash(tmp_path: Path) -> None:
    run = finished(make_run(tmp_path, {"suite": "etcd", "workload": "register", "seed": 1,
                                       "nodes": 1}))  # fmt: skip
    ledger = run / "faults.jsonl"
    ledger.write_text('{"seq": 1, "time": 5}\n{"seq": 1, "time": 1e400, "event": "applied", '
                      '"phase": "start", "kind": "partition"}\n')  # fmt: skip
    with pytest.raises(InputError, match=r"faults\.jsonl:2: `time` must be nanoseconds"):
        read_fault_records(run)
    code, out = invoke("analyze", str(run))
    assert code == 0, out
    assert f"problem: {ledger}:2: `time` must be nanoseconds since the run's origin, got inf" in out
    code, out = invoke("analyze", str(run))  # analyzed again, the problem is not repeated
    assert code == 0 and out.count(f"{ledger}:2:") == 1, out
    code, out = invoke("report", str(run))
    assert code == 0, out
    assert f"{ledger}:2: `time` must be nanoseconds" in (run / "report.html").read_text()


def test_fault_windows_follow_one_rule() -> None:
    s = 1_000_000_000
    records = [
        {"time": 1 * s, "event": "intent", "kind": "pause", "f": "start-pause"},
        {"time": 1 * s, "event": "applied", "phase": "start", "kind": "pause",
         "targets": ["n1"], "value": {"nodes": ["n1"]}},
        {"time": 2 * s, "event": "applied", "phase": "start", "kind": "partition",
         "targets": ["n2"], "value": {"n2": ["n1"]}},
        {"time": 3 * s, "event": "applied", "phase": "start", "kind": "pause",
         "targets": ["n2"]},  # a second pause while the first holds
        {"time": 4 * s, "event": "healed", "phase": "stop", "kind": "pause"},
        {"time": 5 * s, "event": "error", "kind": "kill", "error": "boom"},
        {"time": 6 * s, "event": "healed", "phase": "stop", "kind": "kill"},  # none open
        {"time": 7 * s, "event": "verified", "clean": True},
        {"time": 8 * s, "f": "start", "phase": "start"},  # Jepsen's bare start/stop
        {"time": 9 * s, "f": "stop", "phase": "stop"},
        {"time": 9 * s, "f": "compact"},  # neither: an instant
    ]  # fmt: skip
    assert fault_windows(records) == [
        FaultWindow("pause", 1 * s, 4 * s, ("n1",), {"nodes": ["n1"]}),
        FaultWindow("partition", 2 * s, None, ("n2",), {"n2": ["n1"]}),
        FaultWindow("pause", 3 * s, None, ("n2",), None),
        FaultWindow("fault", 8 * s, 9 * s),
        FaultWindow("compact", 9 * s, 9 * s, instant=True),
    ]
    assert fault_windows(records)[0].to_json() == {
        "kind": "pause", "start": 1.0, "stop": 4.0, "targets": ["n1"], "value": {"nodes": ["n1"]}
    }  # fmt: skip


def test_one_verdict_merge() -> None:
    assert verdict([True, True]) is True
    assert verdict([True, "unknown"]) == "unknown"
    assert verdict(["unknown", False, True]) is False
    assert verdict([]) == "unknown"


def test_analyze_of_a_journal_torn_by_a_crash_checks_its_whole_lines_and_says_unknown(
    tmp_path: Path,
) -> None:
    run = make_run(tmp_path, {"suite": "etcd", "workload": "register", "seed": 1, "nodes": 1,
                              "faults": ["partition"]})  # fmt: skip
    journal = run / "history.jsonl"
    whole = journal.read_text()
    journal.write_text(whole + op(6, 39.0, "invoke", 0, "write", 2)[:25])  # killed mid-write
    code, out = invoke("analyze", str(run))
    assert code == 2, out
    assert out.splitlines()[0].startswith("UNKNOWN  2 ops"), out
    assert f"problem: {journal}:7: the last line was torn" in out
    assert "the 6 whole lines before it were checked" in out
    results = json.loads((run / "results.json").read_text())
    assert [c["valid"] for c in results["checkers"].values()] == [True]
    assert results["incomplete"] == "the journal's last line was torn"
    assert journal.read_text().endswith(op(6, 39.0, "invoke", 0, "write", 2)[:25])  # untouched
    # Analyzed again, the note is not repeated.
    code, out = invoke("analyze", str(run))
    assert code == 2 and out.count("the last line was torn") == 1, out


def test_a_bad_line_before_the_last_is_still_bad_input(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"suite": "etcd", "workload": "register", "seed": 1, "nodes": 1})
    lines = (run / "history.jsonl").read_text().splitlines()
    lines[2] = lines[2][:20]
    (run / "history.jsonl").write_text("\n".join(lines))  # the last line whole, no newline
    code, out = invoke("analyze", str(run))
    assert code == 254
    assert f"{run / 'history.jsonl'}:3: not valid JSON" in out


def test_analyze_of_a_history_that_is_a_directory_is_bad_input(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"suite": "etcd", "workload": "register", "seed": 1, "nodes": 1})
    (run / "history.jsonl").unlink()
    (run / "history.jsonl").mkdir()
    code, out = invoke("analyze", str(run))
    assert code == 254
    assert f"{run / 'history.jsonl'}: is a directory, not a history file" in out


def test_analyze_does_not_trust_a_malformed_results_json(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"suite": "etcd", "workload": "register", "seed": 1, "nodes": 1})
    (run / "results.json").write_text('{"valid": "maybe", "checkers": 5, "wall_seconds": 9}')
    with pytest.raises(InputError, match=r"results\.json: malformed: `valid` must be"):
        RunResults.read(run)
    code, out = invoke("analyze", str(run))
    assert code == 0, out
    assert "problem: the previous results could not be read: " in out
    assert "malformed: `valid` must be true, false or \"unknown\", got 'maybe'" in out
    assert json.loads((run / "results.json").read_text())["wall_seconds"] is None


def test_a_suite_file_for_a_run_of_a_built_in_suite_is_refused(tmp_path: Path) -> None:
    suite = tmp_path / "mine.py"
    suite.write_text(SUITE_FILE)
    run = make_run(tmp_path, {"suite": "etcd", "workload": "register", "seed": 1, "nodes": 1,
                              "faults": []})  # fmt: skip
    for verb in ("analyze", "replay"):
        code, out = invoke(verb, str(run), "--suite", str(suite))
        assert code == 254, out
        assert "the run is of the built-in suite 'etcd'; --suite FILE is for a run" in out
    assert not (tmp_path / "suite-ran").exists()


def test_a_suite_files_factory_that_raises_or_returns_junk_is_named() -> None:
    from harness.api import DB, Suite, TestContext
    from harness.errors import ConfigError
    from harness.runner import suite_part

    def zero(ctx: object) -> object:
        return 1 / 0

    class Half:
        name = "half"

        async def setup(self, *a: object) -> None: ...

    mine = Suite(name="mine", db=zero, workloads={}, default_workload="w")
    ctx = cast(TestContext, None)
    with pytest.raises(ConfigError, match=r"suite 'mine': its db raised ZeroDivisionError: "
                                          r"division by zero at .*test_run_record\.py:\d+"):
        suite_part(mine, "db", zero, ctx, DB)
    with pytest.raises(ConfigError, match="its db returned NoneType, not a DB"):
        suite_part(mine, "db", lambda c: None, ctx, DB)
    with pytest.raises(ConfigError, match=r"returned Half, not a DB .*: it lacks log_files, "
                                          r"teardown"):
        suite_part(mine, "db", lambda c: Half(), ctx, DB)
    from harness.suites import load_suite

    with pytest.raises(ZeroDivisionError):  # a built-in suite's: a bug in clew, as it is
        suite_part(load_suite("etcd"), "db", zero, ctx, DB)
    named_etcd = Suite(name="etcd", db=zero, workloads={}, default_workload="w")
    with pytest.raises(ConfigError, match="suite 'etcd': its db raised"):  # a file's copy
        suite_part(named_etcd, "db", zero, ctx, DB)


def test_a_torn_last_line_longer_than_an_op_is_not_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The torn tail was read whole to see whether it is JSON: an unterminated 1 GB last
    line was held in memory (twice). Beyond _WHOLE_TAIL_LIMIT it is torn, unread."""
    import harness.journal_tail as tail

    journal = tmp_path / "history.jsonl"
    whole = '{"type": "invoke", "f": "read", "process": 0, "time": 1, "index": 0}'
    journal.write_text(whole + "\n" + whole.replace("0}", "1}"))  # whole JSON, no newline
    assert tail.torn_tail_offset(journal) is None
    monkeypatch.setattr(tail, "_WHOLE_TAIL_LIMIT", 20)
    assert tail.torn_tail_offset(journal) == len(whole) + 1  # (whole JSON, but not read)


def test_analyze_of_a_run_whose_controller_was_killed_is_not_valid(tmp_path: Path) -> None:
    """`clew test` SIGKILLed 3 s into a 20 s load left a journal and no results.json;
    `clew analyze` called it VALID (exit 0): a history cut short, its final reads never
    made and its heal never verified. It is checked, and unknown, saying why."""
    run = make_run(tmp_path, {"suite": "etcd", "workload": "register", "seed": 1, "nodes": 1,
                              "faults": ["partition"]})  # fmt: skip
    code, out = invoke("analyze", str(run))
    assert code == 2, out
    assert out.splitlines()[0].startswith("UNKNOWN  2 ops"), out
    assert "the run never finished: its controller stopped" in out
    results = json.loads((run / "results.json").read_text())
    assert [c["valid"] for c in results["checkers"].values()] == [True]
    assert results["valid"] == "unknown"
    assert results["incomplete"].startswith("the run never finished")
    code, out = invoke("analyze", str(run))  # analyzed again: still unknown, said once
    assert code == 2 and out.count("the run never finished") == 1, out


def test_analyze_of_a_run_stopped_before_its_first_op_is_unknown_with_nothing_to_check(
    tmp_path: Path,
) -> None:
    """`clew test` killed during its database setup left an empty journal; `clew analyze`
    said 'history.jsonl:1: the file is empty (no ops)' and exited 254 (bad input), as it
    did for a run a Ctrl-C stopped there (whose results.json said: nothing to check)."""
    run = make_run(tmp_path, {"suite": "etcd", "workload": "register", "seed": 1, "nodes": 1,
                              "faults": ["partition"]})  # fmt: skip
    (run / "history.jsonl").write_text("")
    code, out = invoke("analyze", str(run))
    assert code == 2 and out.startswith("UNKNOWN  0 ops"), out
    results = json.loads((run / "results.json").read_text())
    assert results["problems"] == [NOTHING_RECORDED] and results["checkers"] == {}
    assert results["incomplete"].startswith("the run never finished")
    code, out = invoke("analyze", str(run))  # again: said once
    assert code == 2 and out.count("no op was recorded") == 1, out


def finished(run: Path) -> Path:
    """``run`` with the results.json its controller writes at the end of every run."""
    (run / "results.json").write_text(json.dumps(RunResults(valid=True).to_json()))
    return run


def test_a_small_record_file_is_read_without_allocating_the_limit(tmp_path: Path) -> None:
    """read_record_text asked for MAX_RECORD_BYTES + 1 bytes of every file: 64 MiB allocated
    (and given back) to read a spec.json of 1 KB, a third of the store index's time. A file
    that reports no size (a file of /proc) is still read whole, and a larger one refused."""
    import tracemalloc

    from harness.record import read_record_text

    path = tmp_path / "spec.json"
    path.write_text('{"seed": 1}')
    tracemalloc.start()
    try:
        assert read_record_text(path) == '{"seed": 1}'
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024**2, peak
    assert "Name:" in read_record_text(Path("/proc/self/status"))  # st_size 0, yet text
    with pytest.raises(InputError, match="larger than"):
        read_record_text(path, limit=5)


@pytest.mark.parametrize("writer", ["write_text_file", "replace_file"])
@pytest.mark.parametrize(
    ("code", "bad_input"),
    [(errno.ENOSPC, False), (errno.EIO, False), (errno.EACCES, True), (errno.EROFS, True)],
)
def test_a_full_disk_is_not_bad_input_but_a_read_only_store_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str, code: int, bad_input: bool
) -> None:
    """Every OSError of a write was InputError, so a full disk while writing results.json
    exited 254, "bad arguments"."""
    import os

    from harness import record
    from harness.errors import WriteError

    real_open = os.open

    def failing_open(path: Any, flags: int, *args: Any) -> int:
        if flags & os.O_CREAT:
            raise OSError(code, os.strerror(code))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", failing_open)
    target = tmp_path / "results.json"
    write = getattr(record, writer)
    with pytest.raises((InputError, WriteError)) as e:
        write(target, "{}" if writer == "write_text_file" else b"{}")
    assert isinstance(e.value, InputError) is bad_input
    assert str(e.value) == f"{target}: cannot write it: {os.strerror(code)}"


def _ledger_line(value: object, t: int = 1) -> str:
    return json.dumps({"time": t, "event": "applied", "phase": "start", "kind": "pause",
                       "f": "start-pause", "value": value}) + "\n"  # fmt: skip


def test_a_ledger_line_longer_than_any_clew_writes_is_skipped_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A planted 99 MB ledger line of empty lists took clew report to 2.58 GB and clew
    analyze to 5.20 GB (and a 396 MB results.json): no ledger reader had a line cap. The
    line is now passed over a chunk at a time, skipped and named, and the records around
    it are read; the strict reader (replay, shrink) refuses it."""
    import nemeses.ledger

    monkeypatch.setattr(nemeses.ledger, "MAX_LEDGER_LINE_BYTES", 1000)
    monkeypatch.setattr(nemeses.ledger, "_SKIP_CHUNK", 64)
    run = finished(make_run(tmp_path, {"suite": "etcd", "workload": "register", "seed": 1,
                                       "nodes": 1}))  # fmt: skip
    ledger = run / "faults.jsonl"
    ledger.write_text(_ledger_line(["n1"], 1) + _ledger_line([[]] * 2000, 2)
                      + _ledger_line(["n2"], 3))  # fmt: skip
    assert count_fault_records(run) == 3
    with pytest.raises(InputError, match=r"faults\.jsonl:2: a line longer than .* not read"):
        read_fault_records(run)
    records, said = read_fault_ledger(run)
    assert [r["value"] for r in records] == [["n1"], ["n2"]]
    assert said == [f"{ledger}:2: 1 line longer than 0.000953674 MiB (no record clew writes "
                    "is) skipped, the first this one"]  # fmt: skip
    code, out = invoke("analyze", str(run))
    assert code == 0, out
    assert f"problem: {ledger}:2: 1 line longer than" in out
    results = json.loads((run / "results.json").read_text())
    assert [w["value"] for w in results["faults"]] == [["n1"], ["n2"]]
    code, out = invoke("report", str(run), "--no-index")
    assert code == 0, out
    assert f"{ledger}:2: 1 line longer than" in (run / "report.html").read_text()


def test_a_ledger_past_its_record_or_memory_cap_is_read_in_part_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """analyze read every record of a ledger (no cap on their number or on the memory
    decoding them takes); it reads up to the caps now, and says where it stopped."""
    import nemeses.ledger

    (tmp_path / "faults.jsonl").write_text("".join(_ledger_line([f"n{i}"], i) for i in range(5)))
    monkeypatch.setattr(nemeses.ledger, "MAX_LEDGER_RECORDS", 3)
    records, said = read_fault_ledger(tmp_path)
    assert len(records) == 3
    assert said == [f"{tmp_path / 'faults.jsonl'}:4: more than 3 records, the most a page or "
                    "results of a run show: read up to line 3"]  # fmt: skip
    assert read_fault_ledger(tmp_path, limit=2) == (records[:2], [])  # its own limit: said
    assert len(read_fault_records(tmp_path)) == 5  # a replay's or a scheduler's: all
    monkeypatch.setattr(nemeses.ledger, "MAX_LEDGER_RECORDS", 100)
    monkeypatch.setattr(nemeses.ledger, "MAX_LEDGER_MEMORY", 2000)
    records, said = read_fault_ledger(tmp_path)
    assert 0 < len(records) < 5
    assert said[0].startswith(f"{tmp_path / 'faults.jsonl'}:{len(records) + 1}: decoding the "
                              "ledger up to this line would take more than")  # fmt: skip
    with pytest.raises(InputError, match=r"would take more than .* MiB of memory: not read"):
        read_fault_records(tmp_path)


def test_a_fault_windows_value_and_targets_are_cut_in_results_and_so_are_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FaultWindow.to_json copied ``value`` whole into results.json (a 99 MB ledger value
    made a 396 MB results.json that every later report refused as over 64 MiB)."""
    import harness.record

    s = 1_000_000_000
    big = FaultWindow("partition", s, 2 * s, tuple(f"n{i}" for i in range(1000)),
                      {f"n{i}": [f"n{j}" for j in range(50)] for i in range(100)})  # fmt: skip
    out = big.to_json()
    assert isinstance(out["value"], str) and len(out["value"]) == MAX_WINDOW_VALUE_CHARS + 1
    assert out["value_chars"] == len(json.dumps(big.value))
    assert 0 < len(out["targets"]) < 1000 and out["targets_total"] == 1000
    assert len(json.dumps(out["targets"])) <= MAX_WINDOW_VALUE_CHARS
    small = FaultWindow("pause", s, 2 * s, ("n1",), {"nodes": ["n1"]})
    assert small.to_json() == {"kind": "pause", "start": 1.0, "stop": 2.0, "targets": ["n1"],
                               "value": {"nodes": ["n1"]}}  # fmt: skip
    monkeypatch.setattr(harness.record, "MAX_RESULT_WINDOWS", 2)
    instant = FaultWindow("kill", s, s, instant=True)
    faults, said = windows_json([instant, small, small, small])
    assert faults == [small.to_json()] * 2
    assert said == ["3 fault windows, the first 2 written (`clew report` draws them from "
                    "faults.jsonl)"]  # fmt: skip
    assert windows_json([small, instant]) == ([small.to_json()], [])
    # windows of a ledger read in part: there were at least as many (found by review)
    _, said = windows_json([small] * 3, ledger_cut=True)
    assert said[0].startswith("at least 3 fault windows, the first 2 written")
    import reports.index_rows
    from reports.index_rows import _faults_text

    monkeypatch.setattr(reports.index_rows, "MAX_RESULT_WINDOWS", 2)
    results = RunResults.from_json({"valid": True, "checkers": {}, "faults": faults})
    assert _faults_text({}, results) == "pause ×2 in the first 2 windows"
