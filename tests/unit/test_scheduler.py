"""The scheduler seam: schedulers asked during a (simulated) run, seeing observations.

The real-cluster versions of these are in tests/integration/test_scheduler_run.py."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from harness.generator import any_, clients, nemesis, phases, repeat, time_limit
from harness.generator.testing import simulate
from nemeses.schedule import plan_schedule
from nemeses.scheduler import (
    Driver,
    FaultOp,
    FaultSpace,
    RandomScheduler,
    RunView,
    Wait,
    coverage_shortfall,
    observing,
    scheduler_generator,
    scheduler_rng,
    summary_phase,
)

NODES = ("n1", "n2", "n3")
KINDS = ["partition", "pause", "kill", "packet"]


def test_random_strikes_every_requested_kind_first_when_time_allows() -> None:
    for seed in range(40):
        steps = plan_schedule(KINDS, NODES, seed=seed, time_limit=9, interval=1)
        starts = [str(s["f"]).removeprefix("start-") for s in steps if "start-" in str(s["f"])]
        assert len(starts) == 4 and sorted(starts) == sorted(KINDS), (seed, starts)
    assert coverage_shortfall(KINDS, 9, 1) == []
    assert coverage_shortfall(KINDS, 7, 1) == ["packet"]
    assert coverage_shortfall(KINDS, 30, 10) == ["pause", "kill", "packet"]


class FakeFaults:
    """What a fault set does for a scheduler in a simulation: the active faults and a
    ledger with an ``applied`` record per start (``failing`` kinds record errors)."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        self.active: dict[str, Any] = {}
        self.ledger: list[dict[str, Any]] = []
        self.failing = failing

    def complete(self, inv: dict[str, Any]) -> dict[str, Any]:
        if inv["process"] != "nemesis":
            return {"type": "ok"}
        f = inv["f"]
        kind = f.split("-", 1)[1]
        if f.startswith("start-"):
            if kind in self.failing:
                self.ledger.append({"event": "error", "kind": kind, "f": f})
            else:
                self.active[kind] = inv["value"]
                self.ledger.append({"event": "applied", "kind": kind, "f": f,
                                    "value": inv["value"]})  # fmt: skip
        else:
            self.active.pop(kind, None)
        return {"type": "info"}


def run(driver: Driver, load: Any, seconds: float, complete: Any) -> list[dict[str, Any]]:
    gen = phases(
        time_limit(seconds, observing(driver, any_(clients(load),
                                                   nemesis(scheduler_generator(driver))))),
        summary_phase(driver),
    )  # fmt: skip
    return simulate(gen, concurrency=3, nemesis=True, latency=0.05, complete=complete)


def driver_for(scheduler: Any, fake: FakeFaults, kinds: list[str], limit: float) -> Driver:
    space = FaultSpace.of(kinds, NODES, roles=False, interval=1.0, time_limit=limit)
    return Driver(scheduler, space, rng=scheduler_rng(7), active=lambda: fake.active,
                  ledger=lambda: fake.ledger, record=fake.ledger.append)  # fmt: skip


def test_random_scheduler_in_a_run_strikes_every_kind_and_says_so() -> None:
    fake = FakeFaults()
    d = driver_for(RandomScheduler(), fake, KINDS, 9.0)
    history = run(d, repeat({"f": "read"}), 9.0, fake.complete)
    starts = [o for o in history if o["process"] == "nemesis" and o["type"] == "invoke"
              and o["f"].startswith("start-")]  # fmt: skip
    assert {o["f"] for o in starts} == {f"start-{k}" for k in KINDS}
    assert [round(o["time"] / 1e9, 2) for o in starts] == [1.0, 3.0, 5.0, 7.0]
    summary = [r for r in fake.ledger if r.get("event") == "scheduler"]
    assert summary == [{"event": "scheduler", "scheduler": "random", "requested": KINDS,
                        "struck": KINDS, "missed": []}]  # fmt: skip


def test_random_scheduler_warns_and_records_kinds_that_did_not_strike(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeFaults()
    d = driver_for(RandomScheduler(), fake, KINDS, 7.0)
    with caplog.at_level(logging.WARNING, logger="clew.nemeses"):
        run(d, repeat({"f": "read"}), 7.0, fake.complete)
    (summary,) = [r for r in fake.ledger if r.get("event") == "scheduler"]
    assert len(summary["struck"]) == 3 and len(summary["missed"]) == 1
    assert "raise --time-limit" in summary["why"]
    assert f"never struck: {summary['missed'][0]}" in caplog.text


def test_a_kind_whose_strike_failed_is_drawn_again() -> None:
    fake = FakeFaults(failing=("pause",))
    d = driver_for(RandomScheduler(), fake, ["pause", "kill"], 11.0)
    history = run(d, repeat({"f": "read"}), 11.0, fake.complete)
    starts = [o["f"] for o in history if o["process"] == "nemesis" and o["type"] == "invoke"
              and o["f"].startswith("start-")]  # fmt: skip
    assert starts.count("start-pause") >= 2  # retried first while it never applied
    (summary,) = [r for r in fake.ledger if r.get("event") == "scheduler"]
    assert summary["missed"] == ["pause"] and "failed" in summary["why"]


class MostInfo:
    """A scripted scheduler: once 30 client ops completed, kill the node with the most
    ``info`` completions (it does not know in advance which that is); then stop."""

    name = "most-info"

    def __init__(self) -> None:
        self.decided: list[FaultOp] = []
        self.views: list[RunView] = []

    def next_op(self, view: RunView) -> FaultOp | Wait | None:
        self.views.append(view)
        if len(self.decided) == 2:
            return None
        if self.decided:
            self.decided.append(FaultOp(at=view.now + 1, f="stop-kill"))
            return self.decided[-1]
        if view.observed.ops < 30:
            return Wait(until=view.now + 0.2)
        infos = view.observed.by_node("info")
        target = max(sorted(infos), key=infos.__getitem__)
        op = FaultOp(at=view.now, f="start-kill", value={"targets": "nodes", "nodes": [target]},
                     why=f"most info ops: {infos}")  # fmt: skip
        self.decided.append(op)
        return op


def test_a_scripted_scheduler_reacts_to_what_the_run_observed() -> None:
    fake = FakeFaults()
    sched = MostInfo()
    d = driver_for(sched, fake, ["kill"], 6.0)
    nodes = iter(["n1", "n2", "n3"] * 1000)

    def load() -> dict[str, Any]:
        return {"f": "read", "node": next(nodes)}

    def complete(inv: dict[str, Any]) -> dict[str, Any]:
        if inv["process"] == "nemesis":
            return fake.complete(inv)
        return {"type": "info" if inv.get("node") == "n2" else "ok"}

    history = run(d, load, 6.0, complete)
    kills = [o for o in history if o["process"] == "nemesis" and o["type"] == "invoke"]
    assert [o["f"] for o in kills] == ["start-kill", "stop-kill"]
    assert kills[0]["value"] == {"targets": "nodes", "nodes": ["n2"]}
    assert "most info ops" in kills[0]["why"]
    assert kills[0]["time"] >= 0.2e9  # it waited for observations first
    counted = sched.views[-1].observed
    assert counted.count(node="n2", type="info") > 0 and counted.count(node="n1", type="info") == 0
    assert counted.latency_shift("read") is not None


def test_the_final_heals_follow_the_kinds_heal_order() -> None:
    import random as rnd
    from pathlib import Path

    from clusters.base import Cluster, Node
    from harness.api import TestContext, Workload
    from harness.runplan import build_generator
    from harness.spec import load_spec
    from nemeses.faultset import FaultSet
    from nemeses.kinds import PackageArgs, get

    class Db:
        name = "db"

        async def kill(self, *a: Any) -> None: ...
        async def start(self, *a: Any) -> None: ...

    spec = load_spec(faults="kill,partition", time_limit=3, interval=1, seed=1, recovery_time=0)
    packages = [get(k).package(PackageArgs(db=Db(), interval=1, lease=5)) for k in spec.faults]
    faults = FaultSet(packages, db=Db())  # type: ignore[arg-type]
    ctx = TestContext(
        name="t", cluster=Cluster(provider="local", name="t", state_dir="",
                                  nodes=tuple(Node(name=n, host=n) for n in NODES)),
        options={}, rng=rnd.Random(1), run_dir=Path("."), concurrency=2, time_limit=3,
    )  # fmt: skip
    workload = Workload(
        name="w",
        client=lambda: None,  # type: ignore[arg-type,return-value]
        generator=lambda c: repeat({"f": "read"}),
        check=lambda h, c: None,
    )  # type: ignore[arg-type,return-value]
    gen = build_generator(spec, ctx, workload, faults, [])
    history = simulate(gen, concurrency=2, nemesis=True, latency=0.05)
    finals = [o["f"] for o in history if o.get("reason") == "final" and o["type"] == "invoke"]
    assert finals == ["stop-partition", "stop-kill"]


def test_a_replay_reports_only_the_kinds_its_schedule_starts(caplog: Any) -> None:
    """A shrunk schedule replayed under the original spec (every kind requested) starts
    one kind: the others were not asked for, and no warning says they ran late."""
    from nemeses.scheduler import ReplayScheduler

    fake = FakeFaults()
    steps = [{"at": 1.0, "f": "start-partition", "value": "majority"},
             {"at": 2.0, "f": "stop-partition", "value": None}]  # fmt: skip
    d = driver_for(ReplayScheduler(steps), fake, KINDS, 5.0)
    with caplog.at_level(logging.WARNING, logger="clew.nemeses"):
        run(d, repeat({"f": "read"}), 5.0, fake.complete)
    (summary,) = [r for r in fake.ledger if r.get("event") == "scheduler"]
    assert summary["requested"] == ["partition"] and summary["missed"] == []
    assert "never struck" not in caplog.text
    fake2 = FakeFaults()
    late = [*steps, {"at": 9.0, "f": "start-kill", "value": None}]
    d2 = driver_for(ReplayScheduler(late), fake2, KINDS, 5.0)
    with caplog.at_level(logging.WARNING, logger="clew.nemeses"):
        run(d2, repeat({"f": "read"}), 5.0, fake2.complete)
    (summary2,) = [r for r in fake2.ledger if r.get("event") == "scheduler"]
    assert summary2["missed"] == ["kill"] and "time ran out" in summary2["why"]
    assert "never struck: kill" in caplog.text


def test_the_warning_before_a_short_run_names_the_kinds_its_plan_leaves_out(
    caplog: Any,
) -> None:
    """`--faults partition,pause,kill --time-limit 10 --interval 2` warned "no time for
    fault kind(s) kill", the last listed, while the seed's plan struck pause and kill and
    left out partition, as the end-of-load summary then said."""
    import random as rnd
    from pathlib import Path

    from harness.api import Cluster, Node, TestContext
    from harness.runplan import plan_run_schedule
    from harness.spec import load_spec

    nodes = tuple(Node(name=n, host=n) for n in NODES)
    ctx = TestContext(name="t", cluster=Cluster(provider="local", name="t", state_dir="",
                                                nodes=nodes),
                      options={}, rng=rnd.Random(1), run_dir=Path("."), concurrency=2,
                      time_limit=10)  # fmt: skip
    for seed in range(30):
        spec = load_spec(faults="partition,pause,kill", time_limit=10, interval=2, seed=seed)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="clew.runplan"):
            steps = plan_run_schedule(spec, ctx, object())  # type: ignore[arg-type]
        struck = {str(s["f"]).removeprefix("start-") for s in steps if "start-" in str(s["f"])}
        missed = sorted({"partition", "pause", "kill"} - struck)
        [warning] = [r.getMessage() for r in caplog.records]
        assert f"no time for fault kind(s) {', '.join(missed)} (" in warning, (seed, warning)
    spec = load_spec(faults="partition", time_limit=2, interval=10, seed=1)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="clew.runplan"):
        assert plan_run_schedule(spec, ctx, object()) == []  # type: ignore[arg-type]
    assert "partition (no fault strikes at all);" in caplog.records[0].getMessage()
