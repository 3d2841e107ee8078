"""What `clew test` prints while it works (harness/progress.py): off a terminal, a
timestamped line per phase with its elapsed time, a fault the moment the ledger records it,
and the live line every 10 s and at once when the active faults change; `-v` shows clew's
own steps with timestamps and no library DEBUG output."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from harness import progress
from harness.progress import ConsoleProgress
from nemeses.ledger import FaultLedger


def plain() -> tuple[ConsoleProgress, io.StringIO]:
    out = io.StringIO()  # not a terminal
    return ConsoleProgress(True, stream=out), out


def test_a_fault_is_shown_when_it_strikes_and_heals(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    live, out = plain()
    samples = [(0.5, None), (1.0, None), (1.5, "partition"), (2.0, "partition"),
               (2.5, None), (3.0, None), (12.0, None), (12.6, None)]  # fmt: skip
    for t, fault in samples:
        clock[0] = 100.0 + t
        p = SimpleNamespace(elapsed=t, ops_per_s=10.0, ok=1, fail=0, info=0)
        live(p, fault)
    lines = out.getvalue().splitlines()
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines)  # timestamped
    shown = [line.split("fault: ")[1] for line in lines]
    # the first sample, the strike, the heal, then the next 10 s sample
    assert shown == ["none", "partition (struck)", "none (healed)", "none"], lines
    assert [line.split(" s ")[0].split()[-1] for line in lines] == ["0.5", "1.5", "2.5", "12.6"]


def test_phases_are_lined_with_their_elapsed_time(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    live, out = plain()
    caplog.set_level(logging.INFO, logger="clew.phase")
    with progress.reporting(live):
        progress.begin("cluster", "5 local nodes")
        clock[0] = 3.25
        progress.begin("check", "compiling the linearizability checker")
        clock[0] = 40.0
    lines = [line[9:] for line in out.getvalue().splitlines()]
    assert lines == [
        "cluster: 5 local nodes …",
        "cluster: done in 3.2 s",
        "check: compiling the linearizability checker …",
        "check: done in 36.8 s",
    ]
    # the same steps in clew.log / `clew -v`
    assert [r.getMessage() for r in caplog.records] == [
        "cluster: 5 local nodes", "cluster: done in 3.2 s",
        "check: compiling the linearizability checker", "check: done in 36.8 s",
    ]  # fmt: skip
    progress.begin("outside")  # no sink: only logged, nothing printed
    progress.end()
    assert len(out.getvalue().splitlines()) == 4


def test_the_ledger_reports_a_fault_the_moment_it_is_recorded(tmp_path: Path) -> None:
    live, out = plain()
    ledger = FaultLedger(tmp_path / "faults.jsonl")
    with progress.reporting(live):
        ledger.write({"event": "intent", "kind": "partition", "f": "start-partition"})
        assert out.getvalue() == ""  # an intent is not a fault acting
        ledger.write({"time": 10_400_000_000, "event": "applied", "kind": "partition",
                      "f": "start-partition", "targets": ["n1", "n2", "n3"]})  # fmt: skip
        last = out.getvalue().splitlines()[-1]
        assert last.endswith("10.4 s  fault: partition struck → n1 n2 n3")
        # the live line follows the ledger, whatever the sampled active set says
        live(SimpleNamespace(elapsed=10.5, ops_per_s=1.0, ok=1, fail=0, info=0), None)
        assert out.getvalue().splitlines()[-1].endswith("fault: partition → n1 n2 n3 (struck)")
        ledger.write({"time": 20_500_000_000, "event": "healed", "kind": "partition"})
        assert out.getvalue().splitlines()[-1].endswith("20.5 s  fault: partition healed")
        # the end's heal of every kind, whether it struck or not, is not a second heal
        ledger.write({"time": 21_000_000_000, "event": "healed", "kind": "partition",
                      "f": "heal-partition", "reason": "final"})  # fmt: skip
        last = out.getvalue().splitlines()[-1]
        assert last.endswith("21.0 s  fault: partition: final heal of every node")
    ledger.close()
    assert len((tmp_path / "faults.jsonl").read_text().splitlines()) == 4


def test_a_kernel_compiling_is_told_as_it_happens_and_only_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kernel compiles when its module is first imported: before the cluster (the
    options' check runs the workload's checker on an empty history) that is a phase of its
    own, not a silent minute; during the check a line. Nothing is said about a checker
    that does not compile (a register run once said "compiling the transactional checker"
    every time, as that checker was never used, so never cached)."""
    from checkers import compile_watch

    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(compile_watch, "_told", set())
    live, out = plain()
    with progress.reporting(live):
        compile_watch.compiling("checkers.linear.kernel")
        compile_watch.compiling("checkers.linear.kernel")  # its next kernel: told once
        clock[0] = 48.0
        progress.begin("cluster", "3 local nodes")
        clock[0] = 50.0
        progress.begin("check", "checking the history")
        compile_watch.compiling("checkers.txn.kernels")
        clock[0] = 90.0
    compile_watch.compiling("harness.formats._jsonl_scan")  # nobody watching: nothing shown
    lines = [line[9:] for line in out.getvalue().splitlines()]
    assert lines == [
        "checker: compiling the linearizability checker (first use; cached afterwards) …",
        "checker: done in 48.0 s",
        "cluster: 3 local nodes …",
        "cluster: done in 2.0 s",
        "check: checking the history …",
        "check: compiling the transactional checker (first use; cached afterwards) …",
        "check: done in 40.0 s",
    ]
    assert compile_watch._watchers == []


def test_a_phase_an_error_cut_short_is_not_called_done(monkeypatch: pytest.MonkeyPatch) -> None:
    """`clew test --provider lcal` printed "cluster: done in 0.0 s" above the error saying
    the cluster could not come up."""
    from harness.errors import ConfigError

    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    live, out = plain()
    with pytest.raises(ConfigError), progress.reporting(live):
        progress.begin("cluster", "5 lcal nodes: reusing or bringing up")
        clock[0] = 0.25
        raise ConfigError("unknown cluster provider 'lcal'")
    lines = [line[9:] for line in out.getvalue().splitlines()]
    assert lines == ["cluster: 5 lcal nodes: reusing or bringing up …",
                     "cluster: stopped after 0.2 s"]  # fmt: skip


def test_a_load_cut_short_is_not_called_done(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C during the load printed "load: done in 8.4 s", and no line for the heal
    and the verify that then ran (the scopes' exits)."""
    import asyncio

    from harness import runner

    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])

    async def interrupted(*args: object, **kwargs: object) -> None:
        clock[0] = 8.4
        raise asyncio.CancelledError

    monkeypatch.setattr(runner, "interpret", interrupted)
    live, out = plain()
    spec = SimpleNamespace(time_limit=20, op_timeout=5, seed=1)
    with pytest.raises(asyncio.CancelledError), progress.reporting(live):
        asyncio.run(runner._load(spec, *[None] * 5, lambda p: None))  # type: ignore[arg-type]
    lines = [line[9:] for line in out.getvalue().splitlines()]
    assert lines[-2:] == [
        "heal and verify: the load was cut short; healing every fault and checking nothing is "
        "left …",
        "heal and verify: stopped after 0.0 s",
    ]
    assert "load: stopped after 8.4 s" in lines


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_output_stops_the_lines_not_the_run() -> None:
    """`clew test … | head -8`: the pipe closed mid-run, the next phase line raised
    BrokenPipeError inside the run's scopes, which skipped the database's teardown and
    the cluster's down (it stayed up) and lost the check and results.json."""
    live = ConsoleProgress(True, stream=_ClosedPipe())
    with progress.reporting(live):
        progress.begin("node logs", "downloading")
        progress.begin("database teardown")  # raised BrokenPipeError here
        live(SimpleNamespace(elapsed=1.0, ops_per_s=1.0, ok=1, fail=0, info=0), None)
        live.fault({"event": "healed", "kind": "partition", "time": 1})
        live.note("check: compiling …")
    live.done()
    assert not live.enabled


def test_verbose_logs_clews_steps_with_timestamps_and_not_library_debug(tmp_path: Path) -> None:
    from harness.cli import cli

    history = tmp_path / "h.jsonl"
    ops = [{"type": "invoke", "process": 0, "f": "read", "value": None},
           {"type": "ok", "process": 0, "f": "read", "value": None}]  # fmt: skip
    history.write_text("".join(json.dumps(o) + "\n" for o in ops))
    root = logging.getLogger()
    before = list(root.handlers), root.level, logging.getLogger("clew").level
    try:
        res = CliRunner().invoke(cli, ["-v", "convert", str(history), str(tmp_path / "h.edn")])
        assert res.exit_code == 0, res.output
        assert root.level == logging.WARNING  # libraries: warnings only
        assert logging.getLogger("clew").level == logging.DEBUG
        logging.getLogger("asyncssh").debug("library noise")
        logging.getLogger("clew.test").debug("a step of clew")
        stream = io.StringIO()
        handler = root.handlers[-1]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        logging.getLogger("asyncssh").debug("library noise")
        logging.getLogger("clew.test").debug("a step of clew")
        text = stream.getvalue()
        assert "library noise" not in text
        assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ DEBUG clew.test: a step", text, re.M)
    finally:
        for h in root.handlers[:]:
            if h not in before[0]:
                root.removeHandler(h)
        root.setLevel(before[1])
        logging.getLogger("clew").setLevel(before[2])


def test_the_end_of_runs_heal_of_a_kind_that_never_struck_says_so(tmp_path: Path) -> None:
    """`--faults partition,pause,kill` on a run too short for partition ended with
    "partition healed" although no partition ever struck: the final heal's ledger record
    now carries its reason, and the line says what it was."""
    import asyncio

    from nemeses.base import NemesisPackage
    from nemeses.faultset import FaultSet

    class Partitioner:
        fs = frozenset({"start-partition", "stop-partition"})

        async def invoke(self, ctx: object, op: dict[str, object]) -> dict[str, object]:
            return {**op, "value": "network-healed"}

    live, out = plain()
    ledger = FaultLedger(tmp_path / "faults.jsonl")
    package = NemesisPackage(
        name="partition",
        nemesis=Partitioner(),  # type: ignore[arg-type]
        start_op={"f": "start-partition"},
        stop_op={"f": "stop-partition"},
        perf={},
    )
    faults = FaultSet([package], ledger=ledger)
    with progress.reporting(live):
        asyncio.run(faults.invoke(None, {"f": "stop-partition", "reason": "final"}))  # type: ignore[arg-type]
    ledger.close()
    healed = [json.loads(line) for line in (tmp_path / "faults.jsonl").read_text().splitlines()]
    assert [r["event"] for r in healed] == ["intent", "healed"]
    assert healed[1]["reason"] == "final"
    assert out.getvalue().splitlines()[-1].endswith("fault: partition: final heal of every node")
