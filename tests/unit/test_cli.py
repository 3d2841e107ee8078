"""The ``clew`` command line: verdict lines, JSON lines, exit codes, clear errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import cli


def python_c(code: str, *, timeout: float, check: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a fresh interpreter (this test's), its output as text."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, check=check)  # fmt: skip

DATA = Path(__file__).parent.parent / "data" / "porcupine"
VALID = str(DATA / "jepsen" / "etcd_002.log")
INVALID = str(DATA / "jepsen" / "etcd_000.log")
EMPTY = str(DATA / "jepsen" / "etcd_095.log")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_valid_and_invalid_files_and_the_worst_exit_code() -> None:
    code, out = run("check", VALID)
    assert code == 0 and out.startswith("VALID ")
    code, out = run("check", VALID, INVALID)
    assert code == 1
    assert "INVALID" in out and "could not be linearized" in out
    assert "2 files: 1 valid, 1 invalid, 0 unknown" in out


def test_json_lines_have_the_documented_fields() -> None:
    code, out = run("check", "--json", VALID, INVALID)
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 1
    assert [x["valid"] for x in lines] == [True, False]
    for x in lines:
        assert {"file", "model", "valid", "seconds", "cause"} <= set(x)
        assert x["model"] == "etcd" and x["seconds"] > 0
    assert lines[0]["cause"] is None and lines[1]["cause"]


def test_out_of_budget_exits_2_with_the_reason(tmp_path: Path) -> None:
    # Writes of unknown outcome, each seen by a concurrent read, then a read of a value
    # nobody wrote: every order of the writes must be tried before the answer is no.
    rows = [{"process": p, "type": "invoke", "f": "write", "value": p} for p in range(30)]
    rows += [{"process": 100 + p, "type": "invoke", "f": "read", "value": None}
             for p in range(30)]  # fmt: skip
    rows += [{"process": p, "type": "info", "f": "write", "value": p} for p in range(30)]
    rows += [{"process": 100 + p, "type": "ok", "f": "read", "value": p} for p in range(30)]
    rows += [{"process": 999, "type": "invoke", "f": "read", "value": None},
             {"process": 999, "type": "ok", "f": "read", "value": 10_000}]  # fmt: skip
    hard = tmp_path / "hard.jsonl"
    hard.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out = run("check", "-m", "cas-register", "--max-memory", "1M", str(hard))
    assert code == 2, out
    assert "UNKNOWN" in out and "memory budget" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ('{"process": 0, "type": "invoke", "f": "read", "value": null}\n{"process": 0,\n',
         ":2:"),
        # (a history of completions only is Elle's shorthand: the orphan needs a neighbour)
        ('{"process": 1, "type": "invoke", "f": "read", "value": null}\n'
         '{"process": 1, "type": "ok", "f": "read", "value": 1}\n'
         '{"process": 0, "type": "ok", "f": "read", "value": 1}\n', "no invocation"),
        ('{"process": 0, "type": "exploded", "f": "read", "value": 1}\n', "unknown op type"),
        ('{:process 0, :type :invoke, :f :read, :value nil}\n{:process 0, :type :ok, :f :re',
         ":2:"),
    ],
    ids=["empty", "bad-json-line", "orphan-completion", "unknown-type", "truncated-edn"],
)  # fmt: skip
def test_malformed_input_is_one_clear_line_and_exit_254(
    tmp_path: Path, content: str, message: str
) -> None:
    f = tmp_path / "history.txt"
    f.write_text(content)
    code, out = run("check", str(f))
    assert code == 254
    assert out.count("\n") == 1, out
    assert out.startswith("ERROR ") and str(f) in out and message in out
    assert "Traceback" not in out


def test_missing_file_and_bad_options_exit_254(tmp_path: Path) -> None:
    code, out = run("check", str(tmp_path / "nope.jsonl"))
    assert code == 254 and "nope.jsonl" in out
    code, _ = run("check", "--model", "nonsense", VALID)
    assert code == 254
    code, _ = run("check", "--max-memory", "lots", VALID)
    assert code == 254


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("99999999999999999999T", "above the maximum of 1024T"),
        ("1e30", "above the maximum of 1024T"),
        ("inf", "not a size"),
        ("nan", "not a size"),
        ("1", "below the minimum of 1M"),
        ("1023K", "below the minimum of 1M"),
    ],
)
def test_max_memory_out_of_range_is_a_usage_error(size: str, message: str) -> None:
    code, out = run("check", "--max-memory", size, VALID)
    assert code == 254, out
    assert "--max-memory" in out and message in out and "Traceback" not in out


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "-inf"])
@pytest.mark.parametrize(
    "args",
    [
        ["check", "--time-limit"],
        ["check", "--counterexample-time-limit"],
        ["shrink", ".", "--fraction"],
        ["image", "build", "--timeout"],
    ],
    ids=["time-limit", "counterexample-time-limit", "shrink-fraction", "image-timeout"],
)
def test_a_float_option_that_is_not_finite_is_a_usage_error(args: list[str], value: str) -> None:
    code, out = run(*args, value, VALID)
    assert code == 254, out
    assert f"Invalid value for '{args[-1]}'" in out and "Traceback" not in out
    assert "not a finite number" in out or "not in the range" in out


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("garbage", "missing port number"),
        ("foo://10.0.0.5:8786", "unknown address scheme 'foo'"),
        ("tcp://nosuch.invalid:8786", "is not a Dask scheduler address"),
        ("tcp://127.0.0.1:99999", "port 99999 is not 1 to 65535"),
    ],
)
def test_a_bad_dask_address_is_named_and_exits_254(address: str, message: str) -> None:
    code, out = run("check", "--dask", address, VALID)
    assert code == 254, out
    assert f"--dask {address!r}" in out and message in out and "Traceback" not in out


def test_an_unreachable_dask_scheduler_is_awaited_aloud_then_named(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    from harness import dask_client
    from harness.errors import ConfigError

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(dask_client, "_NOTICE_AFTER", 0.0)
    with (
        pytest.raises(ConfigError, match="cannot connect to a Dask scheduler there") as e,
        dask_client.open_dask_client(address=address, workers=0, timeout=1.0),
    ):
        pass
    assert address in str(e.value)
    assert f"waiting up to 1 s for the Dask scheduler at {address}" in caplog.text


def test_counterexample_dir_gets_json(tmp_path: Path) -> None:
    code, _ = run("check", "--counterexample-dir", str(tmp_path), INVALID)
    assert code == 1
    cex = json.loads((tmp_path / "etcd_000.log.counterexample.json").read_text())
    assert cex["model"] == "etcd" and cex["linearized"] and cex["deadline_op"]


def test_convert_round_trips_through_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "etcd_000.jsonl"
    code, text = run("convert", INVALID, str(out))
    # 85 client ops, each an invocation and a completion: "wrote 170 ops" said twice too many
    assert code == 0 and f"wrote 170 history lines to {out}" in text, text
    code, text = run("check", "--model", "etcd", str(out))
    assert code == 1


def test_report_is_one_self_contained_html_file(tmp_path: Path) -> None:
    out = tmp_path / "r" / "report.html"
    code, text = run("check", "--report", str(out), VALID, INVALID, EMPTY)
    assert code == 254 and f"report: {out}" in text
    html = out.read_text()
    assert "etcd_000.log" in html and "could not be linearized" in html
    assert "the file is empty" in html
    assert "<script src" not in html and "<link" not in html  # nothing fetched


def test_independent_splits_jepsen_tuples_into_keys(tmp_path: Path) -> None:
    f = tmp_path / "history.edn"
    f.write_text(
        "{:index 0, :type :invoke, :process 0, :f :write, :value [1 5]}\n"
        "{:index 1, :type :ok, :process 0, :f :write, :value [1 5]}\n"
        "{:index 2, :type :invoke, :process 1, :f :read, :value [2 nil]}\n"
        "{:index 3, :type :ok, :process 1, :f :read, :value [2 5]}\n"
    )
    code, out = run("check", "--model", "register", "--independent", str(f))
    assert code == 1 and "key 2" in out  # key 2 was never written
    code, out = run("check", "--json", "--model", "register", "--independent", str(f))
    assert json.loads(out)["key_groups"] == 2


# --- models: guessing refused, initial values, rw-register options, collection checkers ---


def _jsonl(tmp_path: Path, name: str, rows: list[dict[str, object]]) -> str:
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(p)


def _pair(p: int, f: str, vin: object, vout: object, typ: str = "ok") -> list[dict[str, object]]:
    return [
        {"process": p, "type": "invoke", "f": f, "value": vin},
        {"process": p, "type": typ, "f": f, "value": vout},
    ]


def test_a_bank_history_is_refused_without_model_naming_the_choices(tmp_path: Path) -> None:
    bank = _jsonl(
        tmp_path,
        "bank.jsonl",
        _pair(0, "read", None, {"0": 10, "1": 10}) + _pair(1, "read", None, {"0": 5, "1": 15}),
    )
    code, out = run("check", bank)
    assert code == 254 and out.count("\n") == 1
    assert out.startswith(f"ERROR    {bank}: cannot tell which model")
    assert "pass --model with one of: register, cas-register" in out
    assert "list-append, rw-register (transactions)" in out
    counter = _jsonl(tmp_path, "counter.jsonl", _pair(0, "add", 1, 1) + _pair(1, "read", None, 1))
    code, out = run("check", counter)
    assert code == 254 and "a set read returned 1, not a collection" in out


def test_initial_value_for_registers(tmp_path: Path) -> None:
    h = _jsonl(tmp_path, "r.jsonl", _pair(0, "read", None, 0) + _pair(1, "cas", [0, 1], [0, 1]))
    code, out = run("check", "-m", "cas-register", h)
    assert code == 1 and out.startswith("INVALID")
    for value in ("0", " 0 "):
        code, out = run("check", "-m", "cas-register", "--initial-value", value, h)
        assert code == 0 and out.startswith("VALID"), out
    code, out = run("check", "--initial-value", "0", h)  # guessed: cas-register
    assert code == 0 and "(cas-register," in out
    code, out = run("check", "-m", "mutex", "--initial-value", "0", h)
    assert code == 254 and "has no initial value" in out
    code, out = run("check", "-m", "register", "--initial-value", "[1", h)
    assert code == 254 and "--initial-value" in out and "neither JSON nor EDN" in out


def test_rw_register_initial_state_and_elle_options(tmp_path: Path) -> None:
    h = _jsonl(
        tmp_path,
        "rw.jsonl",
        _pair(0, "txn", [["r", "x", None]], [["r", "x", 0]])
        + _pair(1, "txn", [["w", "x", 1]], [["w", "x", 1]]),
    )
    code, out = run("check", "-m", "rw-register", h)
    assert code != 0  # 0 was never written and x starts nil
    code, out = run("check", "-m", "rw-register", "--initial-value", '{"x": 0}', h)
    assert code == 0 and out.startswith("VALID"), out
    code, out = run("check", "-m", "rw-register", "--initial-value", "{:x 0}", h)
    assert code == 0, out
    code, out = run("check", "-m", "rw-register", "--initial-value", "0", h)
    assert code == 254 and "map of keys to values" in out
    code, out = run("check", "-m", "list-append", "--wfr-keys", h)
    assert code == 254 and "--wfr-keys only apply to --model rw-register" in out


def test_rw_register_options_reach_the_checker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import checkers.txn

    seen: dict[str, object] = {}
    real = checkers.txn.check

    def spy(*args: object, **kwargs: object) -> object:
        seen.update(kwargs)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(checkers.txn, "check", spy)
    h = _jsonl(tmp_path, "rw.jsonl", _pair(0, "txn", [["w", "x", 1]], [["w", "x", 1]]))
    flags = ("--wfr-keys", "--sequential-keys", "--linearizable-keys")
    code, _ = run("check", "-m", "rw-register", *flags, "--initial-value", '{"y": 2}', h)
    assert code == 0
    assert seen["wfr_keys"] is seen["sequential_keys"] is seen["linearizable_keys"] is True
    assert seen["initial_state"] == {"y": 2}


def test_model_names_in_the_collection_registry_go_to_their_checker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from checkers.collections import CHECKERS
    from checkers.result import Result

    calls = []

    def evens(history: object, *, budget: object = None) -> Result:
        calls.append(history)
        odd = [op.value for op in history if op.type == "ok" and op.value % 2]  # type: ignore[attr-defined]
        if odd:
            return Result(valid=False, checker="evens", cause=f"odd values: {odd}")
        return Result(valid=True, checker="evens")

    monkeypatch.setitem(CHECKERS, "evens-only", evens)
    good = _jsonl(tmp_path, "good.jsonl", _pair(0, "emit", 2, 2))
    bad = _jsonl(tmp_path, "bad.jsonl", _pair(0, "emit", 2, 2) + _pair(1, "emit", 3, 3))
    code, out = run("check", "-m", "evens-only", good)
    assert code == 0 and out.startswith(f"VALID    {good}  (evens-only,")
    code, out = run("check", "-m", "evens-only", bad)
    assert code == 1 and out.startswith("INVALID") and "odd values: [3]" in out
    code, out = run("check", "--json", "-m", "evens-only", bad)
    record = json.loads(out)
    assert record["valid"] is False and record["model"] == "evens-only"
    assert len(calls) == 3
    code, out = run("check", "-m", "evens-only", "--initial-value", "1", good)
    assert code == 254 and "does not apply" in out
    code, out = run("check", good)  # never guessed: only named
    assert code == 254 and "evens-only (collections)" in out


def test_linearizable_queue_and_jepsens_queue_checker_are_both_reachable(tmp_path: Path) -> None:
    # Sequential, FIFO broken: 1 then 2 enqueued, 2 dequeued first. Nothing lost.
    ops = [
        ("invoke", 0, "enqueue", 1), ("ok", 0, "enqueue", 1),
        ("invoke", 0, "enqueue", 2), ("ok", 0, "enqueue", 2),
        ("invoke", 1, "dequeue", None), ("ok", 1, "dequeue", 2),
        ("invoke", 1, "dequeue", None), ("ok", 1, "dequeue", 1),
    ]  # fmt: skip
    path = tmp_path / "q.jsonl"
    path.write_text("".join(
        json.dumps({"type": t, "process": p, "f": f, "value": v, "time": i}) + "\n"
        for i, (t, p, f, v) in enumerate(ops)
    ))  # fmt: skip
    code, out = run("check", "--json", "-m", "linearizable-queue", str(path))
    rec = json.loads(out)
    assert code == 1 and rec["model"] == "linearizable-queue" and "checker" not in rec
    code, out = run("check", "--json", "-m", "queue", str(path))
    rec = json.loads(out)
    assert code == 1 and rec["checker"] == "queue"
    assert "linearizable queue" in rec["cause"]
    code, out = run("check", "--json", "-m", "total-queue", str(path))
    assert code == 0 and json.loads(out)["checker"] == "total-queue"
    code, out = run("check", "--json", str(path))  # guessed: Jepsen's queue checker
    assert code == 1 and json.loads(out)["model"] == "queue"
    code, out = run("check", "--help")
    assert "linearizable-queue" in out


def test_max_memory_reaches_the_transactional_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    g1c = str(Path(__file__).parent.parent / "data" / "elle" / "g1c.json")
    code, out = run("check", "--json", "-m", "list-append", g1c)
    assert code == 1
    # Reading obeys the budget too, by the growth of the resident set: whether reading
    # this small file touches a new page depends on the test process's heap, so reading
    # is held to the history it builds here, and the checker alone meets the 1 MiB, its
    # resident set growing 2 MiB at every look.
    monkeypatch.setattr("harness.read_budget.resident_bytes", lambda: 0)
    looks = iter(range(0, 2**40, 2**21))
    monkeypatch.setattr("checkers.txn.budget.rss_bytes", lambda: next(looks))
    monkeypatch.setattr("checkers.txn.budget.RSS_EVERY", -1.0)
    code, out = run("check", "--json", "-m", "list-append", "--max-memory", "1M", g1c)
    rec = json.loads(out)
    assert code == 2 and "ran out of memory" in rec["cause"]


def test_seconds_cover_reading_the_file_for_every_family(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import time

    import harness.formats

    real = harness.formats.read_history

    def slow_read(*args: object, **kwargs: object) -> object:
        time.sleep(0.3)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(harness.formats, "read_history", slow_read)
    queue = tmp_path / "q.jsonl"
    queue.write_text(
        '{"type": "invoke", "process": 0, "f": "enqueue", "value": 1, "time": 0}\n'
        '{"type": "ok", "process": 0, "f": "enqueue", "value": 1, "time": 1}\n'
    )
    g1c = str(Path(__file__).parent.parent / "data" / "elle" / "g1c.json")
    for args in (
        [VALID],
        ["-m", "total-queue", str(queue)],
        ["-m", "list-append", g1c],
    ):
        code, out = run("check", "--json", *args)
        rec = json.loads(out)
        assert code in (0, 1) and rec["seconds"] >= 0.3, (args, rec)
        assert "partitions" not in rec


def test_the_lazy_commands_one_line_help_is_their_own() -> None:
    """``clew --help`` lists the lazy commands' lines from ``_LAZY_COMMANDS`` without
    importing them: each line must be what the command itself says."""
    import click

    from harness.cli import _LAZY_COMMANDS

    ctx = click.Context(cli)
    for name, (_, line) in _LAZY_COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None
        assert command.get_short_help_str(limit=80) == line, name


def test_the_command_list_imports_no_command_module() -> None:

    code = (
        "import sys; from click.testing import CliRunner; from harness.cli import cli; "
        "out = CliRunner().invoke(cli, ['--help']).output; "
        "assert 'shrink    Shrink an invalid run' in out, out; "
        "print(sorted(m for m in sys.modules if m.startswith(('harness.cli_', 'harness.runner', "
        "'nemeses.kinds', 'networkx'))))"
    )
    out = python_c(code, timeout=60, check=True).stdout
    assert out.strip() == "[]"


def test_leave_db_running_says_what_it_left_up_and_how_to_take_it_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`clew test --leave-db-running` ended like any run, naming neither the cluster it
    left up nor how to reach it or take it down."""
    import harness.runner
    from harness.runner import RunOutcome

    run = tmp_path / "run"
    run.mkdir()

    def fake_run_test(spec: Any, **_kw: Any) -> RunOutcome:
        return RunOutcome(run_dir=run, valid=True, results={}, ops=1, duration=1.0,
                          wall_seconds=2.0, problems=[])  # fmt: skip

    monkeypatch.setattr(harness.runner, "run_test", fake_run_test)
    state = tmp_path / "mine"
    res = CliRunner().invoke(cli, ["test", "bugkv", "--leave-db-running", "--cluster-state-dir",
                                   str(state), "--store", str(tmp_path / "s")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"left running: the database and the cluster in {state}" in res.output
    assert f"clew cluster down --state-dir {state}" in res.output
    res = CliRunner().invoke(cli, ["test", "bugkv", "--store", str(tmp_path / "s")])
    assert "left running" not in res.output


def test_a_broken_pipe_that_is_not_the_output_is_a_crash() -> None:
    """Every BrokenPipeError exited 141, silently, as a closed output does: a VM monitor's
    socket or an ssh child's stdin going away ended a run with no word of it."""

    code = (
        "import sys, harness.cli as c\n"
        "@c.cli.command('boom')\n"
        "def boom():\n"
        "    raise BrokenPipeError(32, 'Broken pipe (a QMP socket)')\n"
        "sys.argv = ['clew', 'boom']\n"
        "c.main()\n"
    )
    proc = python_c(code, timeout=120)
    assert proc.returncode == 255, (proc.returncode, proc.stderr)
    assert "BrokenPipeError" in proc.stderr and "a QMP socket" in proc.stderr


def test_a_ctrl_c_stops_the_repeats_of_test_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run a Ctrl-C stopped (recorded, unknown) was followed by the next of
    `--test-count N`: one Ctrl-C per run was needed to stop the command."""
    import harness.runner
    from harness.runner import RunOutcome

    made: list[int] = []

    def fake_run_test(spec: Any, **_kw: Any) -> RunOutcome:
        made.append(spec.seed)
        return RunOutcome(run_dir=tmp_path, valid="unknown", results={}, ops=1, duration=1.0,
                          wall_seconds=2.0, problems=[],
                          interrupted="Ctrl-C" if len(made) == 2 else "")  # fmt: skip

    monkeypatch.setattr(harness.runner, "run_test", fake_run_test)
    res = CliRunner().invoke(cli, ["test", "bugkv", "--test-count", "5", "--seed", "7",
                                   "--store", str(tmp_path / "s")])  # fmt: skip
    assert res.exit_code == 2 and made == [7, 8], res.output
    assert "interrupted (Ctrl-C): runs 3 to 5 not made" in res.output


def test_an_interrupt_before_the_run_began_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said only "Aborted." (exit 130)."""
    import harness.runner

    def interrupted(spec: Any, **_kw: Any) -> Any:
        raise KeyboardInterrupt("SIGTERM")

    monkeypatch.setattr(harness.runner, "run_test", interrupted)
    res = CliRunner().invoke(cli, ["test", "bugkv", "--test-count", "3", "--store",
                                   str(tmp_path / "s")])  # fmt: skip
    assert res.exit_code == 130, res.output
    assert "clew: interrupted (SIGTERM) before the run began: nothing of it was recorded" \
        in res.output and res.output.rstrip().endswith("runs 2 to 3 not made")
    assert "Aborted." not in res.output


@pytest.mark.parametrize("stop", ["interrupt", "error"])
def test_a_later_run_that_never_began_keeps_the_junit_report_of_the_runs_made(
    stop: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It exited before writing --junit-xml: a CI job cancelled while run 2's cluster came
    up, or a cluster that did not come up for run 2, lost the report of run 1 (which may
    have been invalid)."""
    import harness.runner
    from harness.errors import ClusterError
    from harness.runner import RunOutcome

    made: list[int] = []
    run_dir = tmp_path / "s" / "bugkv-set" / "20261207T000000"

    def second_stops(spec: Any, **_kw: Any) -> Any:
        made.append(spec.seed)
        if len(made) == 2:
            raise KeyboardInterrupt() if stop == "interrupt" else ClusterError("n2 is down")
        return RunOutcome(run_dir=run_dir, valid=False, results={}, ops=1, duration=1.0,
                          wall_seconds=2.0, problems=[], interrupted="")  # fmt: skip

    monkeypatch.setattr(harness.runner, "run_test", second_stops)
    junit = tmp_path / "junit.xml"
    res = CliRunner().invoke(cli, ["test", "bugkv", "--test-count", "3", "--seed", "1", "--store",
                                   str(tmp_path / "s"), "--junit-xml", str(junit)])  # fmt: skip
    if stop == "interrupt":
        assert res.exit_code == 130, res.output
        assert res.output.rstrip().endswith("; run 3 not made"), res.output
    else:
        assert res.exit_code not in (0, 1, 2), res.output
        assert "n2 is down" in res.output and "runs 2 to 3 not made" in res.output
    xml = junit.read_text()
    assert xml.count("<testcase") == 1 and "<failure" in xml


def test_clew_test_index_runs_reaches_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.runner
    from harness.runner import RunOutcome

    asked: list[Any] = []

    def fake_run_test(spec: Any, **kw: Any) -> RunOutcome:
        asked.append(kw.get("index_runs"))
        return RunOutcome(run_dir=tmp_path, valid=True, results={})

    monkeypatch.setattr(harness.runner, "run_test", fake_run_test)
    for args, want in ([], 1000), (["--index-runs", "0"], 0):
        res = CliRunner().invoke(cli, ["test", "bugkv", "--store", str(tmp_path / "s"), *args])
        assert res.exit_code == 0 and asked[-1] == want, res.output


def test_a_sigterm_that_stops_test_count_is_named_and_passes_no_run_not_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGTERM was reported as "interrupted (Ctrl-C)", and the command exited 0 with one
    valid run of the three asked for."""
    import harness.runner
    from harness.runner import RunOutcome

    def fake_run_test(spec: Any, **_kw: Any) -> RunOutcome:
        return RunOutcome(run_dir=tmp_path, valid=True, results={}, ops=1, duration=1.0,
                          wall_seconds=2.0, problems=[], interrupted="SIGTERM")  # fmt: skip

    monkeypatch.setattr(harness.runner, "run_test", fake_run_test)
    res = CliRunner().invoke(cli, ["test", "bugkv", "--test-count", "3", "--store",
                                   str(tmp_path / "s")])  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "interrupted (SIGTERM): runs 2 to 3 not made" in res.output


def test_a_ctrl_c_while_clew_exits_ends_it_quietly() -> None:
    """A Ctrl-C after a run's verdict, while the interpreter exits and joins the checker's
    worker threads, printed "Exception ignored in: <module 'threading'>" and a
    KeyboardInterrupt traceback. Here a worker thread is still at work when clew's
    command is done, and SIGINT comes then (not after a fixed 0.5 s, which under load
    came while clew still started)."""

    code = (
        "import os, signal, sys, threading, time\n"
        "from harness.cli import main\n"
        "def late():\n"  # once clew's command is done (its exit sets SIGINT's default)
        "    deadline = time.monotonic() + 30\n"
        "    while signal.getsignal(signal.SIGINT) is not signal.SIG_DFL:\n"
        "        if time.monotonic() > deadline:\n"
        "            return\n"
        "        time.sleep(0.01)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(5)\n"
        "threading.Thread(target=late).start()\n"
        "sys.argv = ['clew', '--version']\n"
        "main()\n"
    )
    proc = python_c(code, timeout=60)
    assert proc.returncode == -signal.SIGINT, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


def test_clew_exits_though_an_interrupt_left_a_check_thread_unregistered() -> None:
    """A SIGTERM at a check's start (seen in a real run) landed inside the pool's
    ``submit``, between starting a worker thread and registering it for the interpreter's
    exit call: nothing woke that thread, and clew hung after printing its verdict."""

    script = """
import sys
import concurrent.futures.thread as cft
from checkers.linear import checker
real = cft._threads_queues
class Tripwire:  # the interrupt lands where the new worker would be registered
    def __setitem__(self, thread, queue):
        cft._threads_queues = real
        raise KeyboardInterrupt
try:
    cft._threads_queues = Tripwire()
    checker._pool(2).submit(int)
except KeyboardInterrupt:
    print("interrupted in submit")
sys.argv = ["clew", "--version"]
from harness.cli import main
main()
"""
    proc = python_c(script, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("interrupted in submit\nclew, version")


def test_a_closed_output_socket_exits_141_too() -> None:
    """A socket whose peer closed it reports a hang-up, not an error: it was taken for
    another pipe or socket, and `clew check` crashed (exit 255, "this is a bug")."""
    import socket
    import subprocess
    import sys

    ours, theirs = socket.socketpair()
    files = [str(DATA / "kv" / "c10-ok.txt")] * 6
    with theirs:
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "check", "--model", "kv",
                                 *files], stdout=theirs, stderr=subprocess.PIPE)  # fmt: skip
    with ours, ours.makefile("rb") as out:
        assert out.readline().startswith(b"VALID")
    assert proc.stderr is not None
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "crashed" not in err, err


def test_a_closed_output_pipe_exits_141_not_a_verdict() -> None:
    """`clew check a b c | head -1` exited 1 ("invalid") with every file valid: Click
    turns a broken pipe into exit 1. Now it is 141, as for a program SIGPIPE stopped, and
    nothing is printed about it."""
    import subprocess
    import sys

    files = [str(DATA / "kv" / "c10-ok.txt")] * 6
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "check", "--model", "kv",
                             *files], stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"VALID")
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_a_reports_counterexample_counts_the_ops_that_could_not_follow(tmp_path: Path) -> None:
    """The checker lists at most 200 of the ops that could not follow; the page said "200
    op(s) could come next" of 301 (found by review)."""
    from harness.formats import write_history
    from harness.history import History

    ops: list[dict[str, Any]] = [
        {"process": 0, "type": "invoke", "f": "write", "value": 0},
        {"process": 0, "type": "ok", "f": "write", "value": 0},
    ]
    ops += [{"process": 1 + p, "type": "invoke", "f": "read", "value": None} for p in range(301)]
    ops += [{"process": 400, "type": "invoke", "f": "read", "value": None},
            {"process": 400, "type": "ok", "f": "read", "value": 5}]  # fmt: skip
    ops += [{"process": 1 + p, "type": "ok", "f": "read", "value": 7} for p in range(301)]
    hist = tmp_path / "h.jsonl"
    write_history(History.from_ops(ops), str(hist), "jsonl")
    out = tmp_path / "report.html"
    code, text = run("check", "--model", "cas-register", "--report", str(out), str(hist))
    assert code == 1, text
    assert "200 of the 302 op(s) that could come next are listed" in out.read_text()
