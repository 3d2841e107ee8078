"""Unit tests of the interpreter with in-memory clients and a fake clock (no cluster)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clusters.base import Cluster, Node
from harness.api import DefiniteError, IndefiniteError, Op, TestContext
from harness.formats.jsonl import op_to_json_line
from harness.generator import (
    any_,
    clients,
    limit,
    mix,
    nemesis,
    phases,
    repeat,
    sleep,
    stagger,
    time_limit,
)
from harness.interpreter import FakeClock, InterpreterError, Progress, RealClock, interpret
from harness.store import Journal

S = 1_000_000_000


def make_ctx(nodes: int = 3, concurrency: int = 3) -> TestContext:
    cluster = Cluster(
        provider="fake",
        name="t",
        nodes=tuple(Node(name=f"n{i + 1}", host=f"10.0.0.{i + 1}") for i in range(nodes)),
        state_dir="/nonexistent",
    )
    return TestContext(
        name="t",
        cluster=cluster,
        options={},
        rng=random.Random(0),
        run_dir=Path("/nonexistent"),
        concurrency=concurrency,
        time_limit=1,
    )


class FakeClient:
    """Answers with ``answer(op)`` after ``latency`` seconds of the clock; records ops."""

    def __init__(
        self,
        clock: FakeClock,
        answer: Callable[[Op], Op] = lambda _o: {"type": "ok"},
        latency: float = 0.0,
        journal: list[Op] | None = None,
    ) -> None:
        self.clock = clock
        self.answer = answer
        self.latency = latency
        self.seen: list[Op] = []
        self.journal = journal
        self.journaled_before: list[bool] = []

    async def open(self, ctx: TestContext, node: Node) -> None:
        pass

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        self.seen.append(op)
        if self.journal is not None:
            self.journaled_before.append(any(o["index"] == op["index"] for o in self.journal))
        if self.latency:
            await self.clock.sleep(self.latency)
        return self.answer(op)

    async def close(self, ctx: TestContext) -> None:
        pass


class FakeNemesis:
    def __init__(self) -> None:
        self.seen: list[Op] = []

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        self.seen.append(op)
        return {"type": "ok", "value": "done"}  # recorded as info regardless


def run(
    gen: Any,
    n: int = 3,
    *,
    nodes: int = 3,
    nemesis_: FakeNemesis | None = None,
    clock: FakeClock | None = None,
    **kw: Any,
) -> tuple[list[Op], list[FakeClient], Progress]:
    clock = clock or FakeClock()
    journal: list[Op] = []
    answer = kw.pop("answer", lambda _o: {"type": "ok"})
    latency = kw.pop("latency", 0.0)
    cs = [FakeClient(clock, answer, latency, journal) for _ in range(n)]

    async def main() -> Progress:
        return await interpret(
            gen, ctx=make_ctx(nodes, n), clients=cs, nemesis=nemesis_,
            journal=journal.append, clock=clock, **kw,
        )  # fmt: skip

    progress = asyncio.run(main())
    return journal, cs, progress


def check_well_formed(journal: list[Op]) -> None:
    """Dense indices, non-decreasing times, every completion paired with an open invoke."""
    assert [o["index"] for o in journal] == list(range(len(journal)))
    times = [o["time"] for o in journal]
    assert times == sorted(times)
    open_: dict[Any, Op] = {}
    for o in journal:
        if o["type"] == "invoke":
            assert o["process"] not in open_
            open_[o["process"]] = o
        else:
            inv = open_.pop(o["process"])
            assert o["f"] == inv["f"]


def test_pairs_invocations_and_completions() -> None:
    journal, _, progress = run(limit(30, mix([{"f": "read"}, repeat({"f": "write", "value": 3})])),
                               latency=0.01)  # fmt: skip
    check_well_formed(journal)
    assert progress.invocations == 30 and progress.ok == 30 and progress.in_flight == 0
    assert len(journal) == 60
    writes = [o for o in journal if o["f"] == "write" and o["type"] == "ok"]
    assert writes and all(o["value"] == 3 for o in writes)  # value defaults to the invocation's


def test_outcomes_and_renumbering() -> None:
    def answer(op: Op) -> Op:
        v = op["value"]
        if v == "fail":
            return {"type": "fail", "error": "nope"}
        if v == "definite":
            raise DefiniteError("refused")
        if v == "indefinite":
            raise IndefiniteError("connection reset")
        if v == "crash":
            raise RuntimeError("boom")
        if v == "bad":
            return {"type": "okay"}
        return {"type": "ok", "value": 1}

    values = ["fail", "definite", "indefinite", "crash", "bad", "read"]
    journal, _, progress = run([{"f": "x", "value": v} for v in values], n=1, answer=answer)
    check_well_formed(journal)
    done = {
        o["value"] if o["type"] != "ok" else "read": o for o in journal if o["type"] != "invoke"
    }
    assert done["fail"]["type"] == "fail" and done["fail"]["error"] == "nope"
    assert done["definite"]["type"] == "fail" and done["definite"]["error"] == "refused"
    assert (
        done["indefinite"]["type"] == "info" and "connection reset" in done["indefinite"]["error"]
    )
    assert done["crash"]["type"] == "info" and "RuntimeError: boom" in done["crash"]["error"]
    assert done["bad"]["type"] == "info" and "client bug" in done["bad"]["error"]
    # One thread: process 0 until the first info, then 1, 2, 3 (concurrency 1).
    assert [o["process"] for o in journal if o["type"] == "invoke"] == [0, 0, 0, 1, 2, 3]
    assert (progress.ok, progress.fail, progress.info) == (1, 2, 3)


def test_renumbering_uses_process_plus_concurrency() -> None:
    journal, _, _ = run(limit(6, repeat({"f": "w"})), n=3, latency=1,
                        answer=lambda _o: {"type": "info"})  # fmt: skip
    assert sorted(o["process"] for o in journal if o["type"] == "invoke") == [0, 1, 2, 3, 4, 5]


def test_slow_op_times_out_as_info() -> None:
    clock = FakeClock()
    journal, _, progress = run([{"f": "read"}], n=1, latency=100, op_timeout=2.0, clock=clock)
    inv, comp = journal
    assert comp["type"] == "info" and "timeout" in comp["error"]
    assert comp["time"] - inv["time"] == 2 * S
    assert progress.info == 1


def test_threads_are_bound_to_nodes_round_robin() -> None:
    journal, cs, _ = run(limit(50, repeat({"f": "read"})), n=5, nodes=3, latency=0.1)
    for o in journal:
        assert o["node"] == f"n{o['process'] % 5 % 3 + 1}"
    for i, c in enumerate(cs):
        assert c.seen and all(op["process"] % 5 == i for op in c.seen)


def test_nemesis_ops_go_to_the_nemesis_and_complete_info() -> None:
    nem = FakeNemesis()
    gen = limit(20, any_(clients(repeat({"f": "read"})), nemesis(repeat({"f": "kill"}, 3))))
    journal, cs, progress = run(gen, n=2, nemesis_=nem, latency=0.1)
    check_well_formed(journal)
    assert len(nem.seen) == 3 and all(op["f"] == "kill" for op in nem.seen)
    assert all(op["f"] == "read" for c in cs for op in c.seen)
    kills = [o for o in journal if o["f"] == "kill"]
    assert all(o["process"] == "nemesis" and "node" not in o for o in kills)
    assert [o["type"] for o in kills if o["type"] != "invoke"] == ["info"] * 3
    assert progress.nemesis_last is not None and progress.nemesis_last["f"] == "kill"


def test_invocation_is_journaled_before_the_client_sees_it() -> None:
    _, cs, _ = run(limit(20, repeat({"f": "read"})), n=2)
    seen = [b for c in cs for b in c.journaled_before]
    assert len(seen) == 20 and all(seen)


def test_sleep_and_log_are_not_journaled_and_take_time() -> None:
    journal, _, _ = run(phases({"f": "a"}, sleep(5), {"f": "b"}), n=2, latency=1)
    assert [o["f"] for o in journal] == ["a", "a", "b", "b"]
    b = journal[2]
    assert b["time"] == 6 * S


def test_time_limit_and_stagger_under_the_fake_clock() -> None:
    journal, _, progress = run(time_limit(20, stagger(0.05, repeat({"f": "r"}))), n=4, latency=0.01)
    check_well_formed(journal)
    inv = [o for o in journal if o["type"] == "invoke"]
    assert all(o["time"] < 20 * S for o in inv)
    assert 320 < len(inv) < 480  # 20 s at 20 ops/s
    assert progress.elapsed < 21


def test_same_seed_same_journal() -> None:
    def w(c: Any) -> Op:
        return {"f": "w", "value": c.rng.randrange(100)}

    gen = time_limit(3, stagger(0.01, mix([w, {"f": "r"}, repeat({"f": "x"})])))
    a, _, _ = run(gen, n=4, seed=5, latency=0.02)
    b, _, _ = run(gen, n=4, seed=5, latency=0.02)
    assert a == b
    c, _, _ = run(gen, n=4, seed=6, latency=0.02)
    assert c != a


def test_progress_is_reported() -> None:
    reports: list[Progress] = []
    _, _, final = run(time_limit(3, stagger(0.1, repeat({"f": "r"}))), n=2,
                      on_progress=reports.append)  # fmt: skip
    assert len(reports) >= 5  # every 0.5 s of fake time, and once at the end
    assert reports[-1] == final and final.ok == final.invocations > 0


def test_bad_generator_output_is_an_error() -> None:
    with pytest.raises(InterpreterError, match="not an invocation"):
        run([{"type": "weird", "f": "x"}])
    with pytest.raises(InterpreterError, match="not a free process"):
        run([{"f": "x", "process": 7}])


def test_cancellation_leaves_a_consistent_journal() -> None:
    clock = FakeClock()
    journal: list[Op] = []
    fast = [FakeClient(clock, latency=1) for _ in range(2)]
    slow = FakeClient(clock, latency=1000)

    async def main() -> None:
        task = asyncio.create_task(interpret(
            repeat({"f": "r"}), ctx=make_ctx(3, 3), clients=[*fast, slow], nemesis=None,
            journal=journal.append, clock=clock, op_timeout=None,
        ))  # fmt: skip
        await clock.sleep(10.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    check_well_formed(journal)
    # The fast clients' last ops finished within the grace period; the slow one's op
    # stays an invocation without completion.
    open_ = {o["process"] for o in journal if o["type"] == "invoke"} - {
        o["process"] for o in journal if o["type"] != "invoke"
    }
    assert open_ == {2}
    assert all(o["time"] <= 12 * S for o in journal)


def test_real_clock_runs_quickly() -> None:
    class Instant:
        async def invoke(self, ctx: TestContext, op: Op) -> Op:
            return {"type": "ok"}

    journal: list[Op] = []

    async def main() -> Progress:
        return await interpret(limit(500, repeat({"f": "r"})), ctx=make_ctx(), clients=[
            Instant(), Instant()], nemesis=None, journal=journal.append, clock=RealClock())  # type: ignore[list-item]  # fmt: skip

    p = asyncio.run(main())
    check_well_formed(journal)
    assert p.ok == 500 and len(journal) == 1000


@pytest.fixture(params=[True, False], ids=["eager", "plain"])
def eager_starts(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Each test using this runs with eager starts (the scheduler runs a call's first step
    as its worker's task: asyncio internals) and with the plain path (every call handed
    to its worker)."""
    import harness.calls

    if request.param and not harness.calls.EAGER_STARTS:
        pytest.skip("this Python has no eager-start bookkeeping")
    monkeypatch.setattr(harness.calls, "EAGER_STARTS", request.param)
    return bool(request.param)


def test_eager_and_plain_starts_journal_the_same_outcomes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The eager path (asyncio internals) against the plain one: the same ops with the same
    outcomes, well formed. (The interleaving of a round may differ: a plain call waits for
    its worker's first turn.)"""
    import harness.calls

    def answer(o: Op) -> Op:
        if o["f"] == "cas":
            raise DefiniteError("cas failed")
        return {"type": "info"} if o["f"] == "write" else {"type": "ok", "value": 0}

    def history(eager: bool) -> list[Op]:
        monkeypatch.setattr(harness.calls, "EAGER_STARTS", eager)
        gen = limit(60, mix([repeat({"f": "read"}), repeat({"f": "write", "value": 1}),
                             repeat({"f": "cas", "value": [1, 2]})]))  # fmt: skip
        journal, _, progress = run(gen, n=4, latency=0.0, answer=answer)
        assert progress.invocations == 60
        check_well_formed(journal)
        return journal

    def outcomes(journal: list[Op]) -> Counter[tuple[Any, ...]]:
        return Counter((o["type"], o["f"], json.dumps(o["value"]), o.get("error"))
                       for o in journal)  # fmt: skip

    eager, plain = history(True), history(False)
    assert outcomes(eager) == outcomes(plain)
    assert {o["type"] for o in eager} == {"invoke", "ok", "fail", "info"}


def test_clients_run_as_their_own_worker_task_with_its_context(eager_starts: bool) -> None:
    # The first step of a call runs inside the scheduler (eagerly), the rest in the
    # worker's task: the client must see the same task and contextvars either way.
    var: contextvars.ContextVar[int] = contextvars.ContextVar("var")

    class Probe:
        def __init__(self) -> None:
            self.tasks: set[asyncio.Task[Any] | None] = set()
            self.values: list[int | None] = []

        async def invoke(self, ctx: TestContext, op: Op) -> Op:
            self.tasks.add(asyncio.current_task())
            self.values.append(var.get(None))
            var.set(op["index"])
            await asyncio.sleep(0)  # suspend: the rest runs in the worker's task
            self.tasks.add(asyncio.current_task())
            assert var.get() == op["index"]
            return {"type": "ok"}

    probes = [Probe(), Probe()]
    journal: list[Op] = []

    async def main() -> asyncio.Task[Any] | None:
        await interpret(limit(20, repeat({"f": "r"})), ctx=make_ctx(), clients=probes,  # type: ignore[arg-type]
                        nemesis=None, journal=journal.append, clock=RealClock())  # fmt: skip
        return asyncio.current_task()

    scheduler = asyncio.run(main())
    check_well_formed(journal)
    (a,), (b,) = probes[0].tasks, probes[1].tasks
    assert a is not b and scheduler not in (a, b)
    # Each worker's context carries over from one of its ops to the next.
    for p in probes:
        assert p.values[0] is None and all(v is not None for v in p.values[1:])


def test_a_client_timeout_stays_the_clients_and_completes_info() -> None:
    class Impatient:
        async def invoke(self, ctx: TestContext, op: Op) -> Op:
            async with asyncio.timeout(0.01):  # binds to the current task
                await asyncio.sleep(10)
            return {"type": "ok"}

    journal: list[Op] = []

    async def main() -> Progress:
        return await interpret(limit(4, repeat({"f": "r"})), ctx=make_ctx(), clients=[
            Impatient(), Impatient()], nemesis=None, journal=journal.append,  # type: ignore[list-item]
            clock=RealClock())  # fmt: skip

    p = asyncio.run(main())
    check_well_formed(journal)
    assert p.info == 4 and all("TimeoutError" in o["error"] for o in journal if "error" in o)


def test_a_timeout_a_client_turns_into_a_definite_error_is_info() -> None:
    """The client turned the watchdog's cancellation into a DefiniteError: the op was
    recorded `fail` though it timed out (it may have taken effect), and the worker's
    next op was recorded as a timeout too."""

    class Converts:
        calls = 0

        async def invoke(self, ctx: TestContext, op: Op) -> Op:
            Converts.calls += 1
            if Converts.calls == 1:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    raise DefiniteError("refused") from None
            return {"type": "ok"}

    journal: list[Op] = []

    async def main() -> Progress:
        return await interpret(limit(2, repeat({"f": "w"})), ctx=make_ctx(), clients=[
            Converts()], nemesis=None, journal=journal.append, op_timeout=0.05,  # type: ignore[list-item]
            clock=RealClock())  # fmt: skip

    asyncio.run(main())
    check_well_formed(journal)
    done = [o for o in journal if o["type"] != "invoke"]
    assert done[0]["type"] == "info" and "timeout" in done[0]["error"], done
    assert done[1]["type"] == "ok", done


def test_the_journal_file_holds_each_invocation_before_its_client_sees_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.jsonl"
    seen_in_file: list[bool] = []

    class Reader:
        async def invoke(self, ctx: TestContext, op: Op) -> Op:
            lines = path.read_text().splitlines()
            seen_in_file.append(any(json.loads(x)["index"] == op["index"] for x in lines))
            if op["index"] % 3:
                await asyncio.sleep(0)
            return {"type": "ok", "value": op["index"]}

    journal = Journal(path)

    async def main() -> Progress:
        gen = limit(60, mix([repeat({"f": "r"}), repeat({"f": "w", "value": [1, 2]})]))
        return await interpret(gen,
                               ctx=make_ctx(), clients=[Reader(), Reader(), Reader()],  # type: ignore[list-item]
                               nemesis=None, journal=journal, clock=RealClock())  # fmt: skip

    try:
        p = asyncio.run(main())
    finally:
        journal.close()
    assert p.ok == 60 and len(seen_in_file) == 60 and all(seen_in_file)
    ops = [json.loads(x) for x in path.read_text().splitlines()]
    check_well_formed(ops)


def test_a_journal_file_has_the_lines_of_the_ops_a_list_journal_gets(tmp_path: Path) -> None:
    def gen() -> Any:
        def w(c: Any) -> Op:
            return {"f": "w", "key": c.rng.randrange(3), "value": [c.rng.randrange(9), "x"]}

        return time_limit(2, stagger(0.01, mix([w, {"f": "r", "key": 1}])))

    def answer(op: Op) -> Op:
        if op["f"] == "w":
            return {"type": "fail", "error": ["nope", 1]}
        return {"type": "ok", "value": 3}

    listed, _, _ = run(gen(), n=3, seed=4, latency=0.02, answer=answer)
    path = tmp_path / "history.jsonl"
    journal = Journal(path)
    clock = FakeClock()
    cs = [FakeClient(clock, answer, 0.02) for _ in range(3)]

    async def main() -> None:
        await interpret(gen(), ctx=make_ctx(3, 3), clients=cs, nemesis=None, journal=journal,
                        clock=clock, seed=4)  # fmt: skip

    try:
        asyncio.run(main())
    finally:
        journal.close()
    assert path.read_text() == "".join(op_to_json_line(o) for o in listed)


def test_instant_clients_still_let_other_tasks_run() -> None:
    """Calls that finish at once never starve the event loop: another task gets turns
    while they run. (How fast they run is measured in bench/generator.py.)"""

    class Instant:
        async def invoke(self, ctx: TestContext, op: Op) -> Op:
            return {"type": "ok"}

    turns_during_run = 0
    journal: list[Op] = []

    async def main() -> Progress:
        nonlocal turns_during_run
        run_ = asyncio.create_task(interpret(
            limit(20_000, repeat({"f": "r"})), ctx=make_ctx(),
            clients=[Instant(), Instant()],  # type: ignore[list-item]
            nemesis=None, journal=journal.append, clock=RealClock()))  # fmt: skip
        await asyncio.sleep(0)  # the interpreter starts
        while not run_.done():
            await asyncio.sleep(0)
            if not run_.done():
                turns_during_run += 1
        return await run_

    p = asyncio.run(main())
    assert p.ok == 20_000 and len(journal) == 40_000
    # 20,000 calls take far longer than one FAIR_TURN (1 ms) at any speed: the
    # scheduler must have yielded to this task at least once before it finished.
    assert turns_during_run >= 1
