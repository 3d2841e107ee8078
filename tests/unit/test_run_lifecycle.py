"""The run lifecycle (harness/runner.py) as nested scopes: entered in order, left in reverse
on every exit path – the end of the load, an exception, Ctrl-C – with the problems met
while unwinding recorded. The cluster and SSH are stand-ins here (the same flow on a real
cluster is tests/integration/test_clew_test.py and test_fault_run.py); the runner's own
code, the interpreter, the journal and the store are real.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import harness.calls
import harness.runner as runner
from checkers.result import Result
from clusters.base import Cluster, Node
from harness.api import Op, Suite, TestContext, Workload
from harness.errors import ConfigError, InputError, NemesisError
from harness.generator import clients, limit, repeat
from harness.spec import load_spec

NODES = ("n1", "n2")


class Events(list[str]):
    """What happened, in order."""


class FakeRemote:
    def __init__(self, node: Node, events: Events) -> None:
        self.node, self.name, self.events = node, node.name, events

    async def download(self, path: str, dest: Path) -> None:
        self.events.append(f"download {self.name}")
        await asyncio.to_thread(dest.write_text, "log")


class FakeRemotes(dict[str, FakeRemote]):
    def __init__(self, events: Events) -> None:
        super().__init__({n: FakeRemote(Node(name=n, host="127.0.0.1"), events) for n in NODES})
        self.events = events

    async def on_nodes(self, fn: Any) -> dict[str, Any]:
        results = await asyncio.gather(*(fn(r) for r in self.values()), return_exceptions=True)
        return dict(zip(self, results, strict=True))

    async def close(self) -> None:
        self.events.append("remotes closed")


class FakeDB:
    name = "fake"

    def __init__(self, events: Events) -> None:
        self.events = events

    async def setup(self, ctx: TestContext, node: Node, remote: Any) -> None:
        self.events.append(f"setup {node.name}")

    async def teardown(self, ctx: TestContext, node: Node, remote: Any) -> None:
        self.events.append(f"teardown {node.name}")

    def log_files(self, ctx: TestContext, node: Node) -> list[str]:
        return ["/var/log/fake.log"]


class FakeClient:
    def __init__(self, events: Events, on_invoke: Any) -> None:
        self.events, self.on_invoke = events, on_invoke

    async def open(self, ctx: TestContext, node: Node) -> None:
        self.events.append(f"client open {node.name}")

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        self.on_invoke(op)
        return {"type": "ok", "value": 1}

    async def close(self, ctx: TestContext) -> None:
        self.events.append("client close")


class CtrlCAtInvoke:
    """An ``on_invoke`` hook for :func:`suite` that sends this process SIGINT (a Ctrl-C)
    at the ``n``-th op invoked; ``calls`` counts the ops it saw."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self, op: Op) -> None:
        self.calls += 1
        if self.calls == self.n:
            signal.raise_signal(signal.SIGINT)


def suite(events: Events, gen: Any, on_invoke: Any = lambda op: None) -> Suite:
    def check(history: Any, ctx: TestContext) -> Result:
        events.append(f"check {len(history)} lines")
        return Result(valid=True, checker="fake")

    def workload(ctx: TestContext) -> Workload:
        return Workload(name="fake", client=lambda: FakeClient(events, on_invoke),
                        generator=lambda ctx: gen, check=check)  # fmt: skip

    return Suite(name="fake", db=lambda ctx: FakeDB(events),  # type: ignore[arg-type,return-value]
                 workloads={"w": workload},
                 default_workload="w")  # fmt: skip


@pytest.fixture(autouse=True)
def default_ctrl_c() -> Iterator[None]:
    """Each test starts with Python's own SIGINT handler, as a ``clew`` process does: the
    Ctrl-C tests raise SIGINT, and an earlier test in the same process (seen once in a
    full parallel run, not found) had left another handler in place, which swallowed it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    term = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, term)


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Events:
    ev = Events()
    cluster = Cluster(provider="local", name="fake",
                      nodes=tuple(Node(name=n, host="127.0.0.1") for n in NODES),
                      state_dir="/nonexistent")  # fmt: skip

    def bring_up(spec: Any) -> tuple[Cluster, bool, Path]:
        ev.append("cluster up")
        return cluster, False, Path("/nonexistent")

    async def connect_all(nodes: Any) -> FakeRemotes:
        ev.append("remotes open")
        return FakeRemotes(ev)

    monkeypatch.setattr(runner, "_bring_up", bring_up)
    monkeypatch.setattr(runner, "connect_all", connect_all)
    return ev


def spec(tmp_path: Path, time_limit: float = 5) -> Any:
    store = str(tmp_path / "store")
    return load_spec(suite="etcd", workload="w", nodes=2, concurrency=2, faults="none",
                     time_limit=time_limit, seed=1, store=store, recovery_time=0)  # fmt: skip


UNWIND = ["client close", "client close", "download n1", "download n2", "teardown n1",
          "teardown n2", "remotes closed"]  # fmt: skip


def test_scopes_are_entered_in_order_and_left_in_reverse(events: Events, tmp_path: Path) -> None:
    outcome = runner.run_test(spec(tmp_path), suite=suite(events, clients(limit(10, repeat(
        {"f": "read"})))))  # fmt: skip
    assert events == ["cluster up", "remotes open", "setup n1", "setup n2", "client open n1",
                      "client open n2", *UNWIND, "check 20 lines"]  # fmt: skip
    assert outcome.valid is True and outcome.ops == 10 and outcome.problems == []
    results = json.loads((outcome.run_dir / "results.json").read_text())
    assert results["ops"] == 10 and results["history_lines"] == 20
    assert (outcome.run_dir / "nodes" / "n2" / "fake.log").read_text() == "log"


def test_an_exception_during_the_load_unwinds_every_scope(events: Events, tmp_path: Path) -> None:
    def bad_generator(ctx: Any) -> Any:
        raise RuntimeError("a generator bug")

    gen = clients(limit(10, repeat({"f": "read"})))
    with pytest.raises(RuntimeError, match="a generator bug"):
        runner.run_test(spec(tmp_path), suite=suite(events, [gen, bad_generator]))
    assert events[:6] == ["cluster up", "remotes open", "setup n1", "setup n2",
                          "client open n1", "client open n2"]  # fmt: skip
    assert events[6:] == UNWIND


@pytest.mark.parametrize("eager", [True, False], ids=["op-in-scheduler-step", "op-in-worker"])
def test_ctrl_c_unwinds_every_scope_and_checks_what_was_recorded(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, eager: bool
) -> None:
    # Eager starts run the op inside the scheduler's (the main task's) step: Ctrl-C then
    # finds the main task running; otherwise it finds it waiting for a completion.
    monkeypatch.setattr(harness.calls, "EAGER_STARTS", eager and harness.calls.EAGER_STARTS)
    interrupt_at_the_fifth = CtrlCAtInvoke(5)
    gen = clients(limit(1000, repeat({"f": "read"})))
    # The time limit only bounds a run that lost the Ctrl-C: with 5 s, a process starved
    # for 5 s between the first op and the fifth (a loaded machine) ended the load first.
    outcome = runner.run_test(spec(tmp_path, time_limit=600),
                              suite=suite(events, gen, interrupt_at_the_fifth))  # fmt: skip
    calls = interrupt_at_the_fifth.calls
    assert calls >= 5, f"the load ended after {calls} ops, before the Ctrl-C"
    assert events[6:13] == UNWIND
    assert events[13].startswith("check ")
    assert outcome.problems == ["interrupted (Ctrl-C); the history so far is checked"], (
        f"Ctrl-C lost: {outcome.ops} ops ran"
    )
    assert 5 <= outcome.ops < 1000
    # The history so far checked valid, but a run cut short cannot count as valid.
    results = json.loads((outcome.run_dir / "results.json").read_text())
    assert results["checkers"]["fake"]["valid"] is True
    assert results["valid"] == "unknown" and outcome.valid == "unknown"
    assert results["incomplete"] == "interrupted (Ctrl-C)"


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_sigterm_stops_a_run_as_a_ctrl_c_does(events: Events, tmp_path: Path, sigint: str) -> None:
    # By default SIGTERM (kill, timeout, a CI job cancelled) ended clew at once: no heal
    # (the leases healed later), no teardown, the run's own cluster left up, no check.
    # Also where SIGINT is ignored: `clew test … &` in a script, whose only stop is kill.
    if sigint == "ignored":
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # (the fixture puts it back)
    class TermAtInvoke(CtrlCAtInvoke):
        def __call__(self, op: Op) -> None:
            self.calls += 1
            if self.calls == self.n:
                signal.raise_signal(signal.SIGTERM)

    gen = clients(limit(1000, repeat({"f": "read"})))
    outcome = runner.run_test(spec(tmp_path, time_limit=600),
                              suite=suite(events, gen, TermAtInvoke(5)))  # fmt: skip
    assert events[6:13] == UNWIND and events[13].startswith("check ")
    assert outcome.problems == ["interrupted (SIGTERM); the history so far is checked"]
    assert outcome.interrupted and outcome.valid == "unknown" and 5 <= outcome.ops < 1000
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_ctrl_c_between_a_workers_look_at_the_schedulers_waiter_and_its_set_is_harmless(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker that completes an op wakes the scheduler (the run's main task, waiting on
    # its waiter): `if not s.done(): s.set_result(None)`. A signal handler runs between
    # any two bytecodes; asyncio's own, there, cancelled the main task and with it that
    # waiter, and the worker died: "worker failed: InvalidStateError('invalid state')".
    # Here the Ctrl-C lands just there, in the worker's look at the waiter.
    import harness.interpreter as interpreter

    looks: list[bool] = []
    raised: list[int] = []

    class LandsInDone:
        def __init__(self, fut: asyncio.Future[Any]) -> None:
            self.fut = fut

        def done(self) -> bool:
            pending = not self.fut.done()
            looks.append(pending)
            if pending and len(looks) >= 20 and not raised:
                raised.append(len(looks))
                signal.raise_signal(signal.SIGINT)  # its handler runs before this returns
            return not pending

        def set_result(self, value: Any) -> None:
            self.fut.set_result(value)

    def get(run: Any) -> Any:
        fut = run.__dict__["_waiter"]
        return None if fut is None else LandsInDone(fut)

    def put(run: Any, fut: Any) -> None:
        run.__dict__["_waiter"] = fut

    async def waits(self: FakeClient, ctx: TestContext, op: Op) -> Op:
        await asyncio.sleep(0)  # handed to its worker, which then wakes the scheduler
        return {"type": "ok", "value": 1}

    monkeypatch.setattr(interpreter._Run, "sched_waiter", property(get, put), raising=False)
    monkeypatch.setattr(FakeClient, "invoke", waits)
    gen = clients(limit(100_000, repeat({"f": "read"})))
    outcome = runner.run_test(spec(tmp_path, time_limit=600), suite=suite(events, gen))
    assert raised and outcome.problems == [
        "interrupted (Ctrl-C); the history so far is checked"]  # fmt: skip
    log = (outcome.run_dir / "clew.log").read_text()
    assert "worker failed" not in log and "InvalidStateError" not in log
    assert events[6:13] == UNWIND and 10 <= outcome.ops < 100_000


@pytest.mark.parametrize("where", ["reading the journal", "checking"])
def test_a_ctrl_c_during_the_check_records_the_run_with_its_check_unknown(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    # It ended `clew test` with "Aborted." (exit 130): no results.json, so the heal's
    # residue and the run's problems were lost, and `clew analyze` said the controller
    # had stopped before the heal and verify, which had run.
    def check(history: Any, ctx: TestContext) -> Result:
        events.append("check")
        signal.raise_signal(signal.SIGINT)
        raise AssertionError("the Ctrl-C should have stopped the check")

    read = runner.read_run_history

    def interrupted_read(path: Path) -> Any:
        signal.raise_signal(signal.SIGINT)
        return read(path)

    if where == "reading the journal":
        monkeypatch.setattr(runner, "read_run_history", interrupted_read)

    the_suite = suite(events, clients(limit(10, repeat({"f": "read"}))))
    workload = the_suite.workloads["w"]

    def checked_workload(ctx: TestContext) -> Workload:
        return dataclasses.replace(workload(ctx), check=check)

    the_suite = dataclasses.replace(the_suite, workloads={"w": checked_workload})
    outcome = runner.run_test(spec(tmp_path), suite=the_suite)
    results = json.loads((outcome.run_dir / "results.json").read_text())
    ops = 10 if where == "checking" else 0  # (the journal was not read: not counted)
    assert outcome.interrupted and outcome.valid == "unknown" and outcome.ops == ops
    assert results["checkers"]["fake"]["cause"] == runner.CHECK_INTERRUPTED.format("Ctrl-C")
    assert results["heal_residue"] == {} and (outcome.run_dir / "report.html").exists()


def test_a_ctrl_c_during_the_report_keeps_the_verdict(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def report(*args: Any, **kwargs: Any) -> None:
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(runner, "write_run_report", report)
    outcome = runner.run_test(spec(tmp_path), suite=suite(events, clients(limit(10, repeat(
        {"f": "read"})))))  # fmt: skip
    results = json.loads((outcome.run_dir / "results.json").read_text())
    assert outcome.interrupted and outcome.valid is True
    assert results["valid"] is True
    assert results["problems"] == [runner.REPORT_INTERRUPTED.format("Ctrl-C")]


@pytest.mark.parametrize("failure", [InputError("x/report.html: is a directory, where clew "
                                                 "writes a file: move it away"),
                                      RuntimeError("a rendering bug")])  # fmt: skip
def test_a_report_that_fails_still_refreshes_the_index_and_is_a_problem_of_the_run(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    """The index was skipped when the report failed, and the failure was only logged."""
    written: list[Path] = []

    def report(*args: Any, **kwargs: Any) -> None:
        raise failure

    monkeypatch.setattr(runner, "write_run_report", report)
    monkeypatch.setattr(runner, "write_index", lambda store: written.append(store))
    outcome = runner.run_test(spec(tmp_path), suite=suite(events, clients(limit(10, repeat(
        {"f": "read"})))))  # fmt: skip
    assert written == [tmp_path / "store"]
    results = json.loads((outcome.run_dir / "results.json").read_text())
    assert results["valid"] is True and outcome.valid is True
    [problem] = results["problems"]
    if isinstance(failure, RuntimeError):
        assert problem == ("the run's report was not written: RuntimeError: a rendering bug "
                           "(a bug in clew; clew.log has the traceback)")  # fmt: skip
    else:
        assert problem == f"the run's report was not written: {failure}"


@pytest.mark.parametrize(("index_runs", "called_with"), [(None, ()), (0, (0,)), (7, (7,))])
def test_the_store_index_lists_the_runs_asked_for(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    index_runs: int | None, called_with: tuple[int, ...],
) -> None:
    """`clew test` wrote the index with its default of 1,000 runs, whatever was wanted."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(runner, "write_index", lambda store, *n: calls.append((store, *n)))
    runner.run_test(spec(tmp_path), index_runs=index_runs,
                    suite=suite(events, clients(limit(4, repeat({"f": "read"})))))  # fmt: skip
    assert calls == [(tmp_path / "store", *called_with)]


def test_a_run_stopped_by_an_error_after_some_ops_is_unknown_and_says_why(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from harness.cli_test import test_cmd

    def failing_generator(ctx: Any) -> Any:
        raise NemesisError("start-partition on n1: nft: command not found")

    load = [clients(limit(6, repeat({"f": "read"}))), failing_generator]
    monkeypatch.setattr(runner, "load_suite", lambda name: suite(events, load))
    result = CliRunner().invoke(test_cmd, [
        "etcd", "-w", "w", "--nodes", "2", "--concurrency", "2", "--faults", "none",
        "--time-limit", "5", "--seed", "1", "--store", str(tmp_path / "store"),
        "--no-progress"])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "\nUNKNOWN  6 ops" in result.output, result.output
    assert "  fake: VALID" in result.output
    assert ("incomplete: stopped by an error: start-partition on n1: nft: command not found; "
            "the history so far shows no anomaly") in result.output  # fmt: skip


class FakeFaults:
    """Stands in for the run's FaultSet: records the nemesis scope's exit."""

    packages: ClassVar[dict[str, Any]] = {}
    source = "random"
    guard = None
    active_names = None
    ledger: Any = None  # no ledger: the scope cannot know the run healed itself

    def __init__(self, events: Events) -> None:
        self.events = events

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        return {**op, "type": "info"}

    async def keep_alive(self, ctx: TestContext, every: float) -> None:
        await asyncio.sleep(3600)

    async def heal_all(self, ctx: TestContext, *, reason: str) -> None:
        self.events.append(f"heal all ({reason})")

    async def verify_healed(self, ctx: TestContext) -> dict[str, list[str]]:
        self.events.append("verify healed")
        return {"n1": ["pause: a process is still stopped"], "n2": []}


class HealedFaults(FakeFaults):
    """A fault set whose ledger says every fault op succeeded and none is active: the run
    healed itself; ``residue`` is what each verify finds, in turn."""

    def __init__(self, events: Events, residue: list[dict[str, list[str]]]) -> None:
        super().__init__(events)
        self.active: dict[str, Any] = {}
        self.ledger = type("Ledger", (), {"records": [{"event": "applied"}, {"event": "healed"}]})
        self.residue = residue

    async def verify_healed(self, ctx: TestContext) -> dict[str, list[str]]:
        self.events.append("verify healed")
        return self.residue.pop(0)


@pytest.mark.parametrize("found", [False, True])
def test_a_run_that_healed_itself_is_verified_first_and_healed_blind_only_on_residue(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, found: bool
) -> None:
    dirty = {"n1": ["partition: a rule is left"], "n2": []}
    clean: dict[str, list[str]] = {"n1": [], "n2": []}

    async def build_nemesis(*args: Any, **kw: Any) -> FakeFaults:
        return HealedFaults(events, [dirty, clean] if found else [clean])

    load = clients(limit(4, repeat({"f": "read"})))
    monkeypatch.setattr(runner, "build_nemesis", build_nemesis)
    monkeypatch.setattr(runner, "build_generator", lambda *args: load)
    outcome = runner.run_test(spec(tmp_path), suite=suite(events, load))
    barrier = ["verify healed", "heal all (final)", "verify healed"] if found else ["verify healed"]
    assert events[events.index("client open n2") + 1 :] == [*barrier, *UNWIND, "check 8 lines"]
    results = json.loads((outcome.run_dir / "results.json").read_text())
    assert results["tainted"] is False and results["heal_residue"] == clean


def test_the_final_heal_and_verify_barrier_are_the_nemesis_scopes_exit(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def build_nemesis(*args: Any, **kw: Any) -> FakeFaults:
        events.append("nemesis set up")
        return FakeFaults(events)

    load = clients(limit(4, repeat({"f": "read"})))
    monkeypatch.setattr(runner, "build_nemesis", build_nemesis)
    # (the fault schedule's generator is not under test here: the load alone)
    monkeypatch.setattr(runner, "build_generator", lambda *args: load)
    outcome = runner.run_test(spec(tmp_path), suite=suite(events, load))
    assert events == ["cluster up", "remotes open", "setup n1", "setup n2", "client open n1",
                      "client open n2", "nemesis set up", "heal all (final)", "verify healed",
                      *UNWIND, "check 8 lines"]  # fmt: skip
    results = json.loads((outcome.run_dir / "results.json").read_text())
    assert results["tainted"] is True
    assert results["heal_residue"] == {"n1": ["pause: a process is still stopped"], "n2": []}
    # The history checked valid, but a tainted run cannot count as valid: unknown, exit 2.
    assert results["checkers"]["fake"]["valid"] is True
    assert results["valid"] == "unknown" and outcome.valid == "unknown"
    assert outcome.exit_code == 2


def test_clew_test_exits_2_for_a_tainted_run_and_says_why(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from harness.cli_test import test_cmd

    async def build_nemesis(*args: Any, **kw: Any) -> FakeFaults:
        return FakeFaults(events)

    load = clients(limit(4, repeat({"f": "read"})))
    monkeypatch.setattr(runner, "build_nemesis", build_nemesis)
    monkeypatch.setattr(runner, "build_generator", lambda *args: load)
    monkeypatch.setattr(runner, "load_suite", lambda name: suite(events, load))
    junit = tmp_path / "junit.xml"
    result = CliRunner().invoke(test_cmd, [
        "etcd", "-w", "w", "--nodes", "2", "--concurrency", "2", "--faults", "none",
        "--time-limit", "5", "--seed", "1", "--store", str(tmp_path / "store"),
        "--no-progress", "--junit-xml", str(junit)])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "\nUNKNOWN  4 ops" in result.output, result.output
    assert "  fake: VALID" in result.output
    assert ("tainted: the heal left residue (n1: pause: a process is still stopped); "
            "the faults may have outlived their windows") in result.output  # fmt: skip
    assert 'message="unknown: tainted: the heal left residue' in junit.read_text()


class InterruptedFaults(FakeFaults):
    """A fault set during whose exit the user presses Ctrl-C (once): while the lease
    renewal stops, or during the final heal."""

    def __init__(self, events: Events, when: str) -> None:
        super().__init__(events)
        self.when = when

    async def _ctrl_c(self) -> None:
        signal.raise_signal(signal.SIGINT)
        await asyncio.sleep(0.05)  # the interrupt lands while this exit is under way

    async def keep_alive(self, ctx: TestContext, every: float) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if self.when == "keep-alive":
                await self._ctrl_c()
            raise

    async def heal_all(self, ctx: TestContext, *, reason: str) -> None:
        if self.when == "heal":
            await self._ctrl_c()
        await super().heal_all(ctx, reason=reason)


@pytest.mark.parametrize("when", ["keep-alive", "heal"])
def test_ctrl_c_during_the_nemesis_exit_heals_everything_then_stops_the_run(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    async def build_nemesis(*args: Any, **kw: Any) -> FakeFaults:
        return InterruptedFaults(events, when)

    load = clients(limit(4, repeat({"f": "read"})))
    monkeypatch.setattr(runner, "build_nemesis", build_nemesis)
    monkeypatch.setattr(runner, "build_generator", lambda *args: load)
    outcome = runner.run_test(spec(tmp_path), suite=suite(events, load))
    # The heal and the barrier ran to their end, every other scope unwound, the journal
    # was checked; and the Ctrl-C was not lost: the run says it was interrupted.
    assert events[events.index("client open n2") + 1:] == [
        "heal all (final)", "verify healed", *UNWIND, "check 8 lines"]  # fmt: skip
    # The load had run to its end: nothing was cut short (it was called incomplete, so
    # unknown at best, when only the run's exit had been left).
    assert outcome.problems == ["interrupted (Ctrl-C) after the load, which ran to its end; "
                                "the run is checked as usual"]  # fmt: skip
    assert outcome.interrupted and outcome.results["incomplete"] is None
    results = json.loads((outcome.run_dir / "results.json").read_text())
    assert results["heal_residue"] == {"n1": ["pause: a process is still stopped"], "n2": []}
    assert outcome.ops == 4 and results["tainted"] is True


class HungHealFaults(FakeFaults):
    """A fault set whose final heal hangs: the user presses Ctrl-C twice during it (the
    first lets it go on, the second abandons it)."""

    async def heal_all(self, ctx: TestContext, *, reason: str) -> None:
        self.events.append(f"heal all ({reason}) hangs")
        signal.raise_signal(signal.SIGINT)
        await asyncio.sleep(0.05)  # the first lands: the heal goes on
        signal.raise_signal(signal.SIGINT)
        await asyncio.sleep(3600)  # the second lands: the heal is abandoned


def test_a_second_ctrl_c_abandons_a_hung_heal_says_so_and_the_run_unwinds(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C was raised where it landed: inside an SSH connection's task it
    broke the connection, and the logs' download and teardown that followed failed
    ("Future exception was never retrieved"); nothing said the heal was cut short, and
    its phase was shown as done."""

    async def build_nemesis(*args: Any, **kw: Any) -> FakeFaults:
        return HungHealFaults(events)

    load = clients(limit(4, repeat({"f": "read"})))
    monkeypatch.setattr(runner, "build_nemesis", build_nemesis)
    monkeypatch.setattr(runner, "build_generator", lambda *args: load)
    started = time.monotonic()
    outcome = runner.run_test(spec(tmp_path), suite=suite(events, load))
    assert time.monotonic() - started < 60
    # No verify after the abandoned heal; every other scope unwound; the journal checked.
    assert events[events.index("client open n2") + 1:] == [
        "heal all (final) hangs", *UNWIND, "check 8 lines"]  # fmt: skip
    assert "the final heal was abandoned (Ctrl-C during it)" in outcome.problems
    results = json.loads((outcome.run_dir / "results.json").read_text())
    assert results["tainted"] is True and outcome.valid == "unknown"
    assert "the final heal was abandoned" in results["heal_residue"]["controller"][0]
    assert outcome.interrupted == "Ctrl-C"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_as_a_step_ends_abandons_the_next_one() -> None:
    """The press was spent on a step that had just ended (its cancel did nothing), and
    the next step could only be stopped by a third press, raised where it landed."""
    said: list[tuple[str, bool]] = []

    def say(how: str, started: bool) -> None:
        said.append((how, started))

    async def main() -> list[str]:
        steps = runner._Steps()
        runner._STEPS.set(steps)
        ran: list[str] = []

        async def step(name: str) -> None:
            ran.append(name)
            await asyncio.sleep(0)

        await runner._to_the_end(step("heal"), on_abandon=say)
        steps.abandon("Ctrl-C")  # (no step under way: all have ended)
        with pytest.raises(asyncio.CancelledError):
            await runner._to_the_end(step("teardown"), on_abandon=say)
        await runner._to_the_end(step("close"), on_abandon=say)  # one press, one step
        return ran

    assert asyncio.run(main()) == ["heal", "close"] and said == [("Ctrl-C", False)]


def test_an_abandoned_step_does_not_replace_the_error_ending_the_run() -> None:
    async def main() -> str:
        steps = runner._Steps()
        runner._STEPS.set(steps)

        async def hangs() -> None:
            await asyncio.sleep(3600)

        async def teardown_under_an_error() -> str:
            try:
                raise ConfigError("db setup failed")
            except ConfigError:
                await runner._to_the_end(hangs(), interrupt=False,
                                         on_abandon=lambda how, started: None)  # fmt: skip
                return "the error goes on"

        task = asyncio.create_task(teardown_under_an_error())
        await asyncio.sleep(0.01)
        steps.abandon("Ctrl-C")
        return await task

    assert asyncio.run(main()) == "the error goes on"


def test_a_ctrl_c_after_the_load_leaves_a_valid_run_valid(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def teardown(self: FakeDB, ctx: TestContext, node: Node, remote: Any) -> None:
        self.events.append(f"teardown {node.name}")
        if node.name == "n1":
            signal.raise_signal(signal.SIGINT)
            await asyncio.sleep(0.05)  # the interrupt lands here

    monkeypatch.setattr(FakeDB, "teardown", teardown)
    outcome = runner.run_test(spec(tmp_path), suite=suite(events, clients(limit(10, repeat(
        {"f": "read"})))))  # fmt: skip
    assert events[6:13] == UNWIND and outcome.interrupted
    assert outcome.valid is True and outcome.ops == 10


def test_teardown_runs_to_its_end_through_a_cancellation_which_then_goes_on() -> None:
    steps: list[str] = []

    async def teardown() -> None:
        for i in range(3):
            await asyncio.sleep(0.01)
            steps.append(f"step {i}")

    async def scope(interrupt: bool) -> str:
        try:
            await runner._to_the_end(teardown(), interrupt=interrupt)
        except asyncio.CancelledError:
            return "cancelled"
        return "returned"

    async def main(interrupt: bool) -> str:
        task = asyncio.create_task(scope(interrupt))
        await asyncio.sleep(0.015)  # inside the teardown's second step
        task.cancel()
        return await task

    assert asyncio.run(main(True)) == "cancelled" and steps == ["step 0", "step 1", "step 2"]
    steps.clear()
    # Another exception already ends the run: the teardown finishes and does not replace it.
    assert asyncio.run(main(False)) == "returned" and steps == ["step 0", "step 1", "step 2"]


@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM"])
def test_interrupt_runs_stops_a_run_in_another_thread_as_a_first_ctrl_c_would(
    events: Events, tmp_path: Path, how: str
) -> None:
    """A campaign's SIGTERM was recorded as "interrupted (Ctrl-C)" in its runs."""
    import threading

    assert runner.interrupt_runs() == 0  # no run in progress: nothing to tell
    fifth = threading.Event()
    calls = 0

    def count(op: Op) -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            fifth.set()

    outcomes: list[Any] = []
    gen = clients(limit(100_000, repeat({"f": "read"})))
    thread = threading.Thread(target=lambda: outcomes.append(runner.run_test(
        spec(tmp_path, time_limit=600), suite=suite(events, gen, count))))  # fmt: skip
    thread.start()
    assert fifth.wait(120), "the run made no 5 ops"
    assert runner.interrupt_runs(how) == 1
    thread.join(120)
    assert not thread.is_alive() and len(outcomes) == 1
    outcome = outcomes[0]
    assert outcome.problems == [f"interrupted ({how}); the history so far is checked"]
    assert outcome.interrupted == how
    assert events[6:13] == UNWIND and events[13].startswith("check ")
    assert 5 <= outcome.ops < 100_000 and runner.interrupt_runs() == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_under_a_campaigns_ctrl_c_handler_a_run_in_the_main_thread_stops_as_interrupted(
    events: Events, tmp_path: Path, signum: int
) -> None:
    # `clew campaign` makes its runs in the main thread with its own SIGINT handler
    # (asyncio then installs none): the handler's interrupter stops the run.
    import threading

    from harness.campaign_interrupt import stop_on_ctrl_c

    class SignalAtInvoke(CtrlCAtInvoke):
        def __call__(self, op: Op) -> None:
            self.calls += 1
            if self.calls == self.n:
                signal.raise_signal(signum)

    how = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    interrupt_at_the_fifth = SignalAtInvoke(5)
    said: list[str] = []
    stop = threading.Event()
    gen = clients(limit(100_000, repeat({"f": "read"})))
    with stop_on_ctrl_c(stop, runner.interrupt_runs, said.append, every=0.1):
        outcome = runner.run_test(spec(tmp_path, time_limit=600),
                                  suite=suite(events, gen, interrupt_at_the_fifth))  # fmt: skip
    assert stop.is_set() and len(said) == 1 and how in said[0]
    assert outcome.problems == [f"interrupted ({how}); the history so far is checked"]
    assert events[6:13] == UNWIND and 5 <= outcome.ops < 100_000


def test_ctrl_c_while_the_cluster_comes_up_takes_the_cluster_this_run_made_down(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    cluster = Cluster(provider="local", name="fake", state_dir="/nonexistent",
                      nodes=tuple(Node(name=n, host="127.0.0.1") for n in NODES))  # fmt: skip

    def bring_up(spec: Any) -> tuple[Cluster, bool, Path]:  # in a thread
        events.append("cluster coming up")
        signal.raise_signal(signal.SIGINT)  # handled in the main thread, meanwhile
        time.sleep(0.5)
        events.append("cluster up")
        return cluster, True, Path("/nonexistent")

    class Provider:
        makes_nodes = True

        def check_spec(self, spec: Any) -> None:
            events.append("cluster options checked")

        def down(self, state: Path) -> None:
            events.append(f"cluster down {state}")

    monkeypatch.setattr(runner, "_bring_up", bring_up)
    monkeypatch.setattr(runner, "get_provider", lambda name: Provider())
    with pytest.raises(KeyboardInterrupt):  # nothing was recorded yet: no run directory
        runner.run_test(spec(tmp_path), suite=suite(events, []))
    assert events == ["cluster options checked", "cluster coming up", "cluster up",
                      "cluster down /nonexistent"]
    assert not (tmp_path / "store").exists()


def test_ctrl_c_before_any_op_is_an_unknown_run_with_nothing_to_check(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted_setup(self: FakeDB, ctx: TestContext, node: Node, remote: Any) -> None:
        self.events.append(f"setup {node.name}")
        signal.raise_signal(signal.SIGINT)
        await asyncio.sleep(5)  # the Ctrl-C lands here

    monkeypatch.setattr(FakeDB, "setup", interrupted_setup)
    outcome = runner.run_test(spec(tmp_path), suite=suite(events, clients(limit(10, repeat(
        {"f": "read"})))))  # fmt: skip
    assert outcome.valid == "unknown" and outcome.ops == 0
    # It said both "the history so far is checked" and "nothing to check", and "the
    # history so far shows no anomaly" of a run with no history.
    assert outcome.problems == ["no op was recorded before the run stopped; nothing to check"]
    results = json.loads((outcome.run_dir / "results.json").read_text())
    assert results["incomplete"] == "interrupted (Ctrl-C)" and results["checkers"] == {}
    from harness.record import verdict_caveats

    assert verdict_caveats(results) == [
        "incomplete: interrupted (Ctrl-C); nothing was checked, so the run cannot count as valid"
    ]
    assert not any(e.startswith("check ") for e in events)


def test_nodes_that_cannot_be_reached_record_no_run(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A static cluster whose host keys are not in known_hosts left an empty run directory
    (no results.json) behind, and `latest` pointing at it: nothing was run."""
    from harness.errors import ClusterError

    async def unreachable(nodes: Any) -> Any:
        raise ClusterError("cannot connect to 2 of 2 nodes: host key of node n1 ...")

    monkeypatch.setattr(runner, "connect_all", unreachable)
    gen = clients(limit(4, repeat({"f": "read"})))
    with pytest.raises(ClusterError, match="cannot connect"):
        runner.run_test(spec(tmp_path), suite=suite(events, gen))
    assert not (tmp_path / "store").exists()


def _a_down_that_gets_a_ctrl_c(
    events: Events, monkeypatch: pytest.MonkeyPatch, failure: Exception | None = None
) -> None:
    """Runs made from here on bring up a fake cluster of their own, whose `down` (in a
    thread) gets a Ctrl-C while it runs, runs on for 0.5 s, then raises ``failure``."""
    import os
    import time

    cluster = Cluster(provider="local", name="fake", state_dir="/nonexistent",
                      nodes=tuple(Node(name=n, host="127.0.0.1") for n in NODES))  # fmt: skip
    monkeypatch.setattr(runner, "_bring_up", lambda spec: (cluster, True, Path("/nonexistent")))

    class Provider:
        makes_nodes = True

        def check_spec(self, spec: Any) -> None:
            events.append("cluster options checked")

        def down(self, state: Path) -> None:  # in a thread
            events.append("cluster going down")
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
            events.append("cluster down ended")
            if failure is not None:
                raise failure

    monkeypatch.setattr(runner, "get_provider", lambda name: Provider())


def test_ctrl_c_while_the_run_takes_its_cluster_down_lets_it_finish_and_records_its_failure(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Ctrl-C cancelled the wait for `down`, not `down` in its thread: the run ended
    (and gave back the cluster's lock) while `down` still ran, and its failure was lost."""
    from harness.errors import ClusterError

    _a_down_that_gets_a_ctrl_c(events, monkeypatch, ClusterError("ip netns del failed"))
    outcome = runner.run_test(spec(tmp_path), suite=suite(events, clients(limit(10, repeat(
        {"f": "read"})))))  # fmt: skip
    assert events[-3:-1] == ["cluster going down", "cluster down ended"]
    assert events[-1].startswith("check ")  # after `down`, not while it ran
    assert "cluster down: ip netns del failed" in outcome.problems
    assert outcome.interrupted == "Ctrl-C" and outcome.valid is True


def test_ctrl_c_while_the_results_are_recorded_records_them_all_the_same(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C between the check and the report (reading faults.jsonl for the results)
    escaped: no results.json, so the run was lost."""
    real = runner._results
    calls: list[int] = []

    def interrupted_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_results", interrupted_once)
    outcome = runner.run_test(spec(tmp_path), suite=suite(events, clients(limit(10, repeat(
        {"f": "read"})))))  # fmt: skip
    assert outcome.interrupted == "Ctrl-C" and outcome.valid is True and len(calls) == 2
    results = json.loads((outcome.run_dir / "results.json").read_text())
    assert results["valid"] is True and results["ops"] == 10
    assert results["problems"] == [runner.RECORD_INTERRUPTED.format("Ctrl-C")]


def test_a_ctrl_c_after_the_runs_last_step_is_not_lost() -> None:
    """Its cancel, at the loop's next turn, found the run done: nothing was raised, and
    the run counted as not interrupted."""

    async def ends_as_the_ctrl_c_comes() -> None:
        await asyncio.sleep(0)
        signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        runner._run_interruptible(ends_as_the_ctrl_c_comes())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_run_on_a_cluster_in_use_is_refused_before_it_touches_it(
    events: Events, tmp_path: Path
) -> None:
    """Two `clew test` at once on one cluster both installed bugkv on the same nodes,
    killed each other's servers and both reported INVALID: a database bug that was not
    there. A run holds its cluster; a second is refused before the cluster is touched,
    with no run directory."""
    import fcntl
    import os

    from harness.errors import ConfigError

    state = tmp_path / "cluster"
    state.mkdir()
    busy = load_spec(suite="etcd", workload="w", nodes=2, concurrency=2, faults="none",
                     time_limit=5, seed=1, store=str(tmp_path / "store"), recovery_time=0,
                     cluster_state_dir=str(state))  # fmt: skip
    gen = clients(limit(4, repeat({"f": "read"})))
    other = os.open(state, os.O_RDONLY | os.O_DIRECTORY)  # another process's run holds it
    fcntl.flock(other, fcntl.LOCK_EX)
    try:
        with pytest.raises(ConfigError, match="another clew run is using"):
            runner.run_test(busy, suite=suite(events, gen))
    finally:
        os.close(other)
    assert events == []  # neither up nor reused
    assert not (tmp_path / "store").exists()
    outcome = runner.run_test(busy, suite=suite(events, gen))  # free again: it runs
    assert outcome.valid is True and events[0] == "cluster up"


def test_a_campaign_holds_its_cluster_between_runs_and_its_runs_hold_it_again(
    tmp_path: Path,
) -> None:
    """Holds nest within a process (a campaign's runs), and exclude other holders."""
    import fcntl
    import os

    from clusters.in_use import cluster_in_use

    state = tmp_path / "cluster"

    def held_elsewhere() -> bool:
        fd = os.open(state, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    with cluster_in_use(state):
        with cluster_in_use(state):  # a run of the campaign
            assert held_elsewhere()
        assert held_elsewhere()  # between two runs
    assert not state.exists()


def test_a_static_cluster_reused_logs_in_with_the_password_of_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`clew cluster up --provider static --password-env VAR`, then `clew test`: the saved
    cluster has no password (never saved), and the run logged in with the SSH agent,
    "Permission denied" on every node."""
    from clusters.base import ClusterStatus
    from harness.errors import ConfigError

    state = tmp_path / "cluster"
    saved = Cluster(provider="static", name="default", state_dir=str(state),
                    nodes=tuple(Node(name=n, host="192.0.2.1") for n in NODES),
                    extra={"password_env": "CLEW_TEST_NODE_PW"})  # fmt: skip
    saved.save()

    class Static:
        def status(self, state_dir: Path) -> ClusterStatus:
            return ClusterStatus(cluster=saved, nodes={n: "up" for n in NODES})

    monkeypatch.setattr(runner, "get_provider", lambda name: Static())
    reuse = load_spec(suite="etcd", nodes=2, provider="static", cluster_state_dir=str(state),
                      store=str(tmp_path / "store"))  # fmt: skip
    monkeypatch.setenv("CLEW_TEST_NODE_PW", "s3cret")
    cluster, made, _ = runner._bring_up(reuse)
    assert not made and {n.password for n in cluster.nodes} == {"s3cret"}
    monkeypatch.delenv("CLEW_TEST_NODE_PW")
    with pytest.raises(ConfigError, match="CLEW_TEST_NODE_PW is not set"):
        runner._bring_up(reuse)


def test_a_setup_that_overruns_names_the_nodes_still_at_it(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`clew test galera -o mysqld.no_such_setting=1`: mariadbd never started, setup hit
    the runner's limit, and the bare TimeoutError was reported as a crash of clew with a
    traceback."""
    from harness.errors import ClusterError

    async def slow_on_n2(self: FakeDB, ctx: TestContext, node: Node, remote: Any) -> None:
        self.events.append(f"setup {node.name}")
        if node.name == "n2":
            await asyncio.sleep(30)

    monkeypatch.setattr(FakeDB, "setup", slow_on_n2)
    monkeypatch.setattr(runner, "DB_SETUP_TIMEOUT", 0.3)
    with pytest.raises(ClusterError, match=r"fake setup did not finish within 0.3 s on 1 "
                                           r"node\(s\): n2; the nodes. logs"):  # fmt: skip
        runner.run_test(spec(tmp_path), suite=suite(events, clients(limit(4, repeat(
            {"f": "read"})))))  # fmt: skip
    assert "teardown n1" in events and "teardown n2" in events  # the logs were fetched


def test_a_setup_that_fails_on_one_node_stops_the_others_at_once(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Galera's first node failed in seconds (a bad -o mysqld.<name>) while the others
    waited for it for the whole 120 s setup limit."""
    import time

    from harness.errors import ClusterError

    async def n1_fails(self: FakeDB, ctx: TestContext, node: Node, remote: Any) -> None:
        self.events.append(f"setup {node.name}")
        if node.name == "n1":
            raise ClusterError("mariadbd exited while starting")
        await asyncio.sleep(30)  # waiting for n1

    monkeypatch.setattr(FakeDB, "setup", n1_fails)
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match=r"fake setup failed on 1 node\(s\) \(stopped on n2 "
                                           r"then\): n1: mariadbd exited"):  # fmt: skip
        runner.run_test(spec(tmp_path), suite=suite(events, clients(limit(4, repeat(
            {"f": "read"})))))  # fmt: skip
    assert time.monotonic() - t0 < 20
    assert "teardown n1" in events and "teardown n2" in events


def test_a_cluster_up_with_another_node_count_is_named_with_the_flag_to_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`clew cluster up --provider static --nodes a,b,c`, then `clew test --provider
    static` (--nodes 5 by default): the static provider said "needs hosts: --nodes
    host1,host2,host3", a flag clew test takes as a number."""
    from harness.errors import ConfigError

    state = tmp_path / "cluster"
    nodes = tuple(Node(name=f"n{i}", host=f"192.0.2.{i}") for i in (1, 2, 3))
    Cluster(provider="static", name="default", state_dir=str(state), nodes=nodes).save()
    monkeypatch.setattr(runner, "get_provider", lambda name: None)  # (never asked)
    five = load_spec(suite="etcd", nodes=5, provider="static", cluster_state_dir=str(state),
                     store=str(tmp_path / "store"))  # fmt: skip
    with pytest.raises(ConfigError, match=r"the static cluster up in .* has 3 nodes, and "
                                          r"this run asks for 5; give --nodes 3"):  # fmt: skip
        runner._bring_up(five)


def test_a_static_cluster_with_a_node_down_is_named_not_brought_up_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A static cluster of the right size with one host down: the run asked the static
    provider to bring it up again, which said "needs hosts: --nodes host1,host2,host3"."""
    from clusters.base import ClusterStatus
    from clusters.static import StaticProvider
    from harness.errors import ClusterError

    state = tmp_path / "cluster"
    saved = Cluster(provider="static", name="default", state_dir=str(state),
                    nodes=tuple(Node(name=n, host="192.0.2.1") for n in NODES))  # fmt: skip
    saved.save()

    class Static(StaticProvider):  # its declaration that it makes no nodes, and no hosts
        def status(self, state_dir: Path) -> ClusterStatus:
            return ClusterStatus(cluster=saved, nodes={"n1": "up", "n2": "connection refused"})

        def up(self, spec: Any) -> Cluster:
            raise AssertionError("static hosts cannot be brought up again")

    monkeypatch.setattr(runner, "get_provider", lambda name: Static())
    reuse = load_spec(suite="etcd", nodes=2, provider="static", cluster_state_dir=str(state),
                      store=str(tmp_path / "store"))  # fmt: skip
    with pytest.raises(ClusterError, match=r"the static cluster in .* is not healthy: "
                                           r"n2 \(connection refused\); `clew cluster status"):
        runner._bring_up(reuse)


def test_ctrl_c_while_an_error_ends_the_run_still_says_the_run_was_interrupted(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The teardown of a run an error was ending swallowed the Ctrl-C (so as not to hide
    the error): the outcome said nothing of it, and `clew test --test-count` went on to
    its next run."""
    def failing_generator(ctx: Any) -> Any:
        raise NemesisError("boom")

    _a_down_that_gets_a_ctrl_c(events, monkeypatch)
    load = [clients(limit(6, repeat({"f": "read"}))), failing_generator]
    outcome = runner.run_test(spec(tmp_path), suite=suite(events, load))
    assert "cluster down ended" in events
    assert outcome.interrupted == "Ctrl-C"
    assert outcome.problems[:2] == [
        "boom", "interrupted (Ctrl-C) while the error ended the run; its teardown ran to its end"
    ]
    assert outcome.valid == "unknown"


def test_an_error_whose_teardown_a_second_ctrl_c_cut_short_says_so(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error went on, but its problems said "its teardown ran to its end"."""

    def failing_generator(ctx: Any) -> Any:
        raise NemesisError("boom")

    async def build_nemesis(*args: Any, **kw: Any) -> FakeFaults:
        return HungHealFaults(events)

    load = [clients(limit(4, repeat({"f": "read"}))), failing_generator]
    monkeypatch.setattr(runner, "build_nemesis", build_nemesis)
    monkeypatch.setattr(runner, "build_generator", lambda *args: load)
    outcome = runner.run_test(spec(tmp_path), suite=suite(events, load))
    assert "heal all (final) hangs" in events
    assert "the final heal was abandoned (Ctrl-C during it)" in outcome.problems
    assert "boom" in outcome.problems and outcome.interrupted == "Ctrl-C"
    assert ("interrupted (Ctrl-C) while the error ended the run; a second one abandoned "
            "part of its teardown") in outcome.problems  # fmt: skip


def test_a_teardown_that_ends_as_the_interrupt_comes_keeps_its_own_outcome() -> None:
    """A cancel that landed just as the teardown ended raised the CancelledError in place
    of the error that was ending the run: the error was lost."""

    tasks: list[asyncio.Task[Any]] = []

    async def teardown() -> None:
        asyncio.get_running_loop().call_soon(tasks[0].cancel, "Ctrl-C")  # after this step

    async def ending_run() -> None:
        try:
            raise RuntimeError("the run's error")
        finally:
            await runner._to_the_end(teardown(), interrupt=False)

    async def main() -> None:
        tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        swallowed: list[str] = []
        runner._SWALLOWED.set(swallowed)
        with pytest.raises(RuntimeError, match="the run's error"):
            await ending_run()
        assert swallowed == ["Ctrl-C"]

    asyncio.run(main())


@pytest.mark.parametrize("when", ["as it ends", "while it runs"])
def test_an_interrupt_swallowed_by_a_teardown_that_fails_is_still_named(when: str) -> None:
    """The teardown's own error skipped the record of the interrupt it swallowed: the run
    was not marked interrupted, and --test-count went on."""
    tasks: list[asyncio.Task[Any]] = []

    async def failing_teardown() -> None:
        loop = asyncio.get_running_loop()
        if when == "as it ends":
            loop.call_soon(tasks[0].cancel, "SIGTERM")
        else:
            tasks[0].cancel("SIGTERM")
            await asyncio.sleep(0.01)
        raise RuntimeError("the teardown's error")

    async def main() -> None:
        tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        swallowed: list[str] = []
        runner._SWALLOWED.set(swallowed)
        with pytest.raises(RuntimeError, match="the teardown's error"):
            await runner._to_the_end(failing_teardown(), interrupt=False)
        assert swallowed == ["SIGTERM"]

    asyncio.run(main())


def test_an_interrupt_as_an_error_ends_the_run_is_named_though_no_teardown_swallowed_it() -> None:
    """A Ctrl-C in the run's last step, as an error ended it, reached no teardown: the
    error was raised and the interrupt forgotten."""
    swallowed: list[str] = []

    async def run() -> None:
        signal.raise_signal(signal.SIGINT)  # handled now: the cancel waits for the loop
        raise NemesisError("boom")

    with pytest.raises(NemesisError, match="boom"):
        runner._run_interruptible(run(), swallowed)
    assert swallowed == ["Ctrl-C"]
