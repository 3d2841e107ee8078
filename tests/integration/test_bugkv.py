"""bugkv on a real local cluster: every seeded bug is found by its documented minimal
schedule (a fixed replay schedule) and the same schedule against the correct server is
valid; and the correct server stays valid while the random scheduler overlaps every fault
kind the local provider has.

One cluster for the module (10.77.230.0/24, prefix ``bkq-``), each run setting the
database up afresh. A run is as long as its schedule plus a few seconds for the bug to
show (``Bug.time_limit``, 5-7 s of load). Whether a buggy run is caught depends on when
its fault ops land: on a loaded machine an op can start seconds late and take seconds
(a partition or a pause 2-5 s at a load average of 20-40), so the schedule ends after the
load has, or the bug's window holds few client ops. A buggy run is therefore tried up to
:data:`ATTEMPTS` times, each try :data:`LONGER` seconds longer than the one before; the
run against the correct server has the length of the try that found the bug, and is made
once, since no timing may make it invalid.

Three bugs' windows are narrower than a controller op's latency under load (a partition
of ``primaries`` lands 0.4-0.6 s late at load 4: the leader is looked up, then two SSH
rounds). Their controller replays are expected failures when they miss; the same
schedules struck by the node agents at the catalog's offsets (``STRUCK_BY_THE_NODES``,
strikes within a few ms) must find ``stepdown-applies-tail``; the other two still need the
clients' ops in a narrow window and are expected failures when they miss.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.dbs.bugkv_bugs import BUG_CATALOG, NODES, YARDSTICK, Bug, isolate
from harness.runner import RunOutcome, run_test
from harness.spec import load_spec
from nemeses.clock import find_libfaketime
from nemeses.schedule import plan_schedule, schedule_kinds

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(shutil.which("python3") is None, reason="the nodes need python3"),
    pytest.mark.skipif(not os.path.exists(find_libfaketime()), reason="needs libfaketime"),
]

CLUSTER = {"subnet": "10.77.230.0/24", "prefix": "bkq-", "bridge": "bkq-br0"}
#: Tries of a buggy run before its bug counts as not found (see the module docstring).
ATTEMPTS = 3
#: Seconds of load each try adds to the one before.
LONGER = 5.0


@pytest.fixture(scope="module")
def cluster_state(local_cluster: Any) -> Iterator[Path]:
    """Five namespace nodes, brought up once for the module and reused by every run."""
    with local_cluster("bugkv", len(NODES), CLUSTER) as state:
        yield state


def replay(
    state: Path, store: Path, bug: Bug, *, with_bug: bool, seed: int = 1, longer: float = 0.0
) -> RunOutcome:
    """One run of ``bug``'s minimal schedule (with its flag or against the correct
    server), ``longer`` seconds longer than the bug's own run length."""
    steps = bug.steps()
    spec = load_spec(
        suite="bugkv", workload=bug.workload, nodes=len(NODES),
        time_limit=bug.time_limit + longer,
        faults=",".join(schedule_kinds(steps)), interval=YARDSTICK.interval, seed=seed,
        store=str(store), cluster_state_dir=str(state), cluster_options=CLUSTER,
        options=bug.suite_options(with_bug=with_bug), recovery_time=1.0,
    )  # fmt: skip
    return run_test(spec, schedule=steps)


#: Verdicts of the correct server under a schedule, by (workload, schedule, options): two
#: bugs with one schedule (commit-unchecked, stepdown-applies-tail) share one run.
_CORRECT: dict[str, RunOutcome] = {}


def expecting(names: Iterable[str], expected: dict[str, str]) -> list[Any]:
    """``names`` as test parameters, those in ``expected`` marked as expected (non-strict)
    failures with its reason."""
    return [pytest.param(n, marks=pytest.mark.xfail(strict=False, reason=expected[n]))
            if n in expected else n for n in names]  # fmt: skip


#: Bugs whose minimal schedule does not reproduce reliably yet (their windows are a few
#: hundred ms, and a fault op that lands late leaves them empty): they run, and a miss is
#: reported as an expected failure, not hidden; the node agents strike the same schedules
#: on time (:data:`STRUCK_BY_THE_NODES`, below).
_TIMING_BOUND = {
    "commit-unchecked": "its partition must hold until n2 is elected; a late op misses it",
    "stepdown-applies-tail": "its partition must hold until n2 is elected; a late op "
    "misses it (the partition of `primaries` lands 0.4-0.6 s late at load 4: the leader "
    "is looked up, then two SSH rounds)",
    "lease-ticks": "the pause of `primaries` lands 0.7-1 s late at load 11 (the leader is "
    "looked up, then three SSH rounds) and the partition must follow it within a second",
}

#: The timing-bound bugs' minimal schedules struck by the node agents (docs/agents.md), at
#: the catalog's offsets on the run's clock and healed by each node itself at the offset of
#: the catalog's stop op (``hold``), so that no op lands late. ``primaries`` is the node
#: that leads when the op strikes: ``n1`` from the start (bugkv's election priority), and
#: then whichever node the database elects while ``n1`` is cut off. Priority makes that
#: ``n2`` most often, but under load ``n3`` can win (n2's timeout fires late, or its log is
#: behind): so every other node kills its own server :data:`SUCCESSOR_DELAY` s after it
#: logs its election, if that lands near the catalog's 3 s (the window ``from``/``until``),
#: and the successor dies whoever it is.
SUCCESSOR_DELAY = 1.3


def kill_the_successor(at: float) -> list[dict[str, Any]]:
    """Steps by which the leader elected while ``n1`` is cut off kills its own server
    about ``at`` s into the run, whichever node it is: each other node kills itself
    :data:`SUCCESSOR_DELAY` s after it logs its election, if that kill falls in
    ``[at - 0.2, at + 0.8]`` (``from`` less the agents' 0.5 s of slack, ``until``), so
    elections from about ``at - 1.5`` to ``at - 0.5`` strike; earlier or later ones (the
    initial one, or one after the successor died) do not."""
    return [{"node": n, "f": "start-kill", "on": {"log": "became-leader"},
             "delay": SUCCESSOR_DELAY, "from": at + 0.3, "until": at + 0.8}
            for n in NODES if n != "n1"]  # fmt: skip


STRUCK_BY_THE_NODES: dict[str, list[dict[str, Any]]] = {
    "commit-unchecked": [
        {"f": "start-partition", "value": isolate("n1"), "at": 1.0, "hold": 1.0},
        *kill_the_successor(3.0),
    ],
    "stepdown-applies-tail": [
        {"f": "start-partition", "value": isolate("n1"), "at": 1.0, "hold": 1.0},
        *kill_the_successor(3.0),
    ],
    "lease-ticks": [
        {"node": "n1", "f": "start-pause", "at": 1.0, "hold": 2.0},
        {"f": "start-partition", "value": isolate("n1"), "at": 2.0},
    ],
}
#: What each of those bugs' servers logs when the bug acts (none for lease-ticks, whose
#: stale lease shows only in the history).
ACTS = {
    "commit-unchecked": "bug commit-unchecked:",
    "stepdown-applies-tail": "bug stepdown-applies-tail:",
}


@pytest.mark.parametrize("name", expecting(BUG_CATALOG, _TIMING_BOUND))
def test_a_seeded_bug_is_found_by_its_minimal_schedule(
    name: str, cluster_state: Path, tmp_path: Path
) -> None:
    bug = BUG_CATALOG[name]
    verdicts = []
    for attempt in range(ATTEMPTS):
        outcome = replay(cluster_state, tmp_path / f"bug-{attempt}", bug, with_bug=True,
                         seed=attempt + 1, longer=LONGER * attempt)  # fmt: skip
        verdicts.append(outcome.valid)
        if outcome.valid is False:
            break
    assert verdicts[-1] is False, (name, verdicts, outcome.run_dir)
    assert outcome.results["heal_verified"] is True
    applied = [(w["kind"]) for w in outcome.results["faults"]]
    assert set(applied) == {s["f"].split("-", 1)[1] for s in bug.steps()}
    # The same schedule against the correct server is valid.
    longer = LONGER * (len(verdicts) - 1)
    key = json.dumps([bug.workload, bug.steps(), bug.suite_options(with_bug=False), longer])
    if key not in _CORRECT:
        _CORRECT[key] = replay(cluster_state, tmp_path / "correct", bug, with_bug=False,
                               longer=longer)  # fmt: skip
    correct = _CORRECT[key]
    assert correct.valid is True, (name, correct.run_dir, correct.results.get("checkers"))
    assert correct.results["heal_verified"] is True


def struck_by_the_nodes(
    state: Path, store: Path, bug: Bug, *, with_bug: bool, seed: int = 1
) -> RunOutcome:
    """One run of ``bug``'s schedule from :data:`STRUCK_BY_THE_NODES` (no controller
    fault ops), with its flag or against the correct server."""
    spec = load_spec(
        suite="bugkv", workload=bug.workload, nodes=len(NODES), time_limit=bug.time_limit,
        faults="none", seed=seed, store=str(store), cluster_state_dir=str(state),
        cluster_options=CLUSTER, options=bug.suite_options(with_bug=with_bug),
        recovery_time=1.0, agent=STRUCK_BY_THE_NODES[bug.name], fault_lease=3.0,
    )  # fmt: skip
    return run_test(spec)


def late_strikes(run: Path) -> list[tuple[str, str, float]]:
    """(node, op, ms late) of every strike at an offset the agents made in ``run``."""
    out = []
    for node in NODES:
        for line in (run / "nodes" / node / "agent.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r["e"] == "strike" and r.get("trigger") == "at" and "skipped" not in r:
                assert r["status"] == 0, r
                out.append((node, r["f"], r["late_ms"]))
    return out


def successor_kills(run: Path) -> list[tuple[str, float]]:
    """(node, run time) of every kill in ``run`` that a node struck on its own election
    line (:func:`kill_the_successor`)."""
    out = []
    for node in NODES:
        for line in (run / "nodes" / node / "agent.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r["e"] == "strike" and r.get("trigger") == "log" and "skipped" not in r:
                assert r["status"] == 0, r
                out.append((node, r["start_run"]))
    return out


#: Bugs that, struck on time, still need the clients' ops to fall in a window of a few
#: hundred ms, so that at a load average of 12 (2 cores) a run can miss them: measured
#: here, 1 miss in 3 runs for commit-unchecked, 1 in 2 for lease-ticks.
_LOAD_BOUND = {
    "commit-unchecked": "the successor must commit writes in the ~0.5 s it leads before the heal; "
    "at load 12 its clients' ops can be too few",
    "lease-ticks": "the cut-off leader's stale reads fall in ~1.7 s after its successor's "
    "election; at load 12 its clients' reads can miss it",
}


@pytest.mark.parametrize("name", expecting(STRUCK_BY_THE_NODES, _LOAD_BOUND))
def test_a_timing_bound_bug_is_found_when_the_nodes_strike_its_schedule(
    name: str, cluster_state: Path, tmp_path: Path
) -> None:
    """The bugs whose window is narrower than a controller op's latency under load are
    found (within :data:`ATTEMPTS` runs) when the nodes strike the same schedule on time;
    the same strikes against the correct server are valid."""
    bug = BUG_CATALOG[name]
    verdicts = []
    # An expected failure gets one try: a miss costs the suite no more runs.
    for attempt in range(1 if name in _LOAD_BOUND else ATTEMPTS):
        outcome = struck_by_the_nodes(cluster_state, tmp_path / f"bug-{attempt}", bug,
                                      with_bug=True, seed=attempt + 1)  # fmt: skip
        run = outcome.run_dir
        late = late_strikes(run)
        assert late and max(ms for *_, ms in late) < 100, late
        logs = {n: (run / "nodes" / n / "bugkv.log").read_text() for n in NODES}
        if (any(s["f"] == "start-kill" for s in STRUCK_BY_THE_NODES[name])
                and not successor_kills(run)):  # fmt: skip
            # No successor was elected in time for its kill to land in its window (a
            # loaded machine can hold every election back): the run did not strike the
            # bug's schedule, a miss.
            verdicts.append("no successor killed")
            continue
        verdicts.append(outcome.valid)
        if outcome.valid is False:
            break
    assert verdicts[-1] is False, (name, verdicts, run, late)
    if name in ACTS:
        assert any(ACTS[name] in text for text in logs.values()), "the bug never acted"
    assert outcome.results["heal_verified"] is True
    correct = struck_by_the_nodes(cluster_state, tmp_path / "correct", bug, with_bug=False)
    assert correct.valid is True, (name, correct.run_dir, correct.results.get("checkers"))
    assert correct.results["heal_verified"] is True


def overlapping_plan() -> tuple[int, list[dict[str, Any]]]:
    """The first seed whose yardstick draw (overlap 2, 8 fault ops in 10 s) strikes every
    local kind and holds two faults at once (found by planning, not by running): seed 0,
    which starts with a kill and a pause held together."""
    for seed in range(1000):
        steps = plan_schedule(YARDSTICK.kinds, list(NODES), seed=seed, time_limit=10.0,
                              interval=YARDSTICK.interval, overlap=YARDSTICK.overlap,
                              fault_ops=8)  # fmt: skip
        held: set[str] = set()
        most = 0
        for s in steps:
            kind = s["f"].split("-", 1)[1]
            (held.add if s["f"].startswith("start-") else held.discard)(kind)
            most = max(most, len(held))
        if most == 2 and {s["f"] for s in steps} >= {f"start-{k}" for k in YARDSTICK.kinds}:
            return seed, steps
    raise AssertionError("no seed of 1000 strikes every kind with two faults at once")


def test_the_correct_server_under_the_random_scheduler_overlapping_every_kind(
    cluster_state: Path, tmp_path: Path
) -> None:
    seed, planned = overlapping_plan()
    spec = load_spec(
        suite="bugkv", workload="register", nodes=len(NODES), time_limit=10.0,
        faults=",".join(YARDSTICK.kinds), interval=YARDSTICK.interval,
        overlap=YARDSTICK.overlap, fault_ops=8, seed=seed, store=str(tmp_path / "store"),
        cluster_state_dir=str(cluster_state), cluster_options=CLUSTER, recovery_time=1.0,
    )  # fmt: skip
    outcome = run_test(spec)
    results = outcome.results
    assert outcome.valid is True, (outcome.run_dir, results.get("checkers"))
    assert results["heal_verified"] is True and not results["problems"], results
    # The run did what the plan from its seed said (the random scheduler decides live),
    # as far as it got: on a loaded machine fault ops take seconds, and the load's time
    # limit can come before the budget of 8 is spent.
    records = [json.loads(x) for x in (outcome.run_dir / "faults.jsonl").read_text().splitlines()]
    intents = [r["f"] for r in records if r.get("event") == "intent" and "at" in r]
    assert intents == [s["f"] for s in planned][: len(intents)], intents
    assert intents[:2] == ["start-kill", "start-pause"]  # two faults held at once
    started = {f.split("-", 1)[1] for f in intents if f.startswith("start-")}
    assert {w["kind"] for w in results["faults"]} == started
    if "clock" in started:
        clock = [w for w in results["faults"] if w["kind"] == "clock"]
        assert clock[0]["value"]["mechanism"] == "libfaketime"
    (summary,) = [r for r in records if r.get("event") == "scheduler"]
    assert summary["fault_ops_budget"] == 8 and len(intents) <= summary["fault_ops"] <= 8
    if len(intents) == 8:
        assert summary["budget_spent"] is True and summary["missed"] == []
    # Each acknowledged op names the node that served it: the leader, also for the ops
    # a follower proxied. Invocations name the node the client asked.
    lines = (outcome.run_dir / "history.jsonl").read_text().splitlines()
    ops = [o for o in map(json.loads, lines) if isinstance(o["process"], int)]
    asked = {o["process"]: o["node"] for o in ops if o["type"] == "invoke"}
    served = [(asked[o["process"]], o["node"]) for o in ops if o["type"] == "ok"]
    assert served and any(a != s for a, s in served)
    # The servers' own logs came back: elections, terms, replication.
    logs = {n: (outcome.run_dir / "nodes" / n / "bugkv.log").read_text() for n in NODES}
    assert "elected leader" in logs["n1"]
    assert all("listening on" in text for text in logs.values())
