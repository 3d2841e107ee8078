"""The adaptive agent (nemeses/schedulers/adaptive.py) on scripted observations: its
Q-learning arithmetic, its state summary, its budget and heals, its explanations, and its
memory carried across runs (with an invalid run's credit)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from nemeses.scheduler import (
    FaultOp,
    FaultSpace,
    Observations,
    RunView,
    SchedulerArgs,
    Wait,
    make_scheduler,
)
from nemeses.schedulers import memory
from nemeses.schedulers.adaptive import (
    ALPHA,
    EVIDENCE_WEIGHT,
    GAMMA,
    HOLD,
    INITIAL_Q,
    LIFT_RANGE,
    PRIOR_RUNS,
    AdaptiveScheduler,
    Learner,
    StateTracker,
    op_budget,
    reset_memory,
    settle_memory,
)

NODES = ("n1", "n2", "n3", "n4", "n5")
_NS = 1_000_000_000


def space(time_limit: float = 10.0) -> FaultSpace:
    return FaultSpace.of(["kill", "partition"], NODES, roles=True, interval=1.0,
                         time_limit=time_limit)  # fmt: skip


class Script:
    """A scripted run: the scheduler is asked every 0.25 s; between asks, clients complete
    ops on the node ``serve(now, active)`` names, failing while a fault is active."""

    def __init__(self, sched: AdaptiveScheduler, sp: FaultSpace, seed: int = 1) -> None:
        self.sched, self.space = sched, sp
        self.obs = Observations()
        self.active: dict[str, Any] = {}
        self.ledger: list[dict[str, Any]] = []
        self.ops: list[FaultOp] = []
        self.rng = random.Random(seed)
        self.p = 0

    def complete(self, now: float, node: str, typ: str) -> None:
        self.p += 1
        t = int(now * _NS)
        self.obs.record({"process": self.p, "type": "invoke", "f": "write", "time": t},
                        faulted=bool(self.active))  # fmt: skip
        self.obs.record({"process": self.p, "type": typ, "f": "write", "node": node,
                         "time": t + 10_000_000}, faulted=bool(self.active))  # fmt: skip

    def run(self) -> None:
        now, pending = 0.0, None
        while now < self.space.time_limit + 3:
            leader = "n2" if "kill" in self.active else "n1"
            for _ in range(3):
                self.complete(now, leader, "info" if self.active else "ok")
            if pending is None or (isinstance(pending, Wait) and now >= pending.until):
                view = RunView(
                    now=now,
                    space=self.space,
                    active=dict(self.active),
                    ledger=list(self.ledger),
                    observed=self.obs,
                    rng=self.rng,
                )
                pending = self.sched.next_op(view)
                if pending is None:
                    break
            if isinstance(pending, FaultOp) and now >= pending.at:
                op, pending = pending, None
                self.ops.append(op)
                kind = op.f.split("-", 1)[1]
                if op.f.startswith("start-"):
                    self.active[kind] = op.value
                    self.ledger.append({"event": "applied", "kind": kind, "f": op.f})
                else:
                    self.active.pop(kind, None)
                continue
            now += 0.25
        view = RunView(now=now, space=self.space, active={}, ledger=self.ledger,
                       observed=self.obs, rng=self.rng)  # fmt: skip
        self.ledger.append({"event": "scheduler", **self.sched.summary(view)})


def test_q_update_is_the_q_learning_step():
    learner = Learner()
    q = learner.update("s", "a", 1.0, "s2", ["x", "y"])
    assert q == pytest.approx(INITIAL_Q + ALPHA * (1.0 + GAMMA * INITIAL_Q - INITIAL_Q))
    learner.q["s2"] = {"x": 3.0}
    q2 = learner.update("s", "a", 0.0, "s2", ["x", "y"])
    assert q2 == pytest.approx(q + ALPHA * (0.0 + GAMMA * 3.0 - q))


def test_softmax_prefers_the_better_action_and_still_explores():
    learner = Learner({"q": {"s": {"good": 2.0, "bad": 0.0}}})
    p_good, p_bad = learner.probabilities("s", ["good", "bad"])
    assert p_good > 0.99 > p_bad > 0
    rng = random.Random(3)
    picks = [learner.choose("s", ["good", "bad"], rng)[0] for _ in range(200)]
    assert picks.count("good") > 190


def test_novelty_falls_with_visits():
    learner = Learner()
    assert [round(learner.visit("s"), 3) for _ in range(4)] == [1.0, 0.707, 0.577, 0.5]


def test_generalisation_values_an_untried_pair_by_the_action_elsewhere():
    learner = Learner({"q": {"s1": {"a": 3.0}, "s2": {"a": 1.0, "b": 0.5}}})
    assert learner.value("new", "a") == pytest.approx(2.0)
    assert learner.value("new", "b") == pytest.approx(0.5)
    assert learner.value("new", "c") == INITIAL_Q
    assert learner.value("s2", "a") == 1.0


def test_state_summary_sees_leader_change_errors_split_and_activity():
    obs, tracker = Observations(), StateTracker()

    def serve(p0: int, n: int, node: str, typ: str = "ok") -> None:
        for p in range(p0, p0 + n):
            obs.record({"process": p, "type": "invoke", "f": "read", "time": 0}, faulted=False)
            obs.record({"process": p, "type": typ, "f": "read", "node": node, "time": 1000},
                       faulted=False)  # fmt: skip

    serve(0, 10, "n1")
    s1 = tracker.state(obs, "")
    assert s1 == "lead=same err=none act=-" and tracker.leader == "n1"
    serve(10, 3, "n2")
    serve(13, 7, "n2", "info")
    s2 = tracker.state(obs, "kill@leader")
    assert s2 == "lead=moved err=high act=kill@leader"
    assert tracker.leader == "n2"
    assert tracker.state(obs, "").startswith("lead=none err=idle")
    serve(20, 5, "n1")
    serve(25, 5, "n2")  # two nodes serving in one window: a hand-over, maybe
    assert tracker.state(obs, "partition@leader").startswith("lead=") and not tracker.split
    serve(30, 5, "n1")
    serve(35, 5, "n2")  # ... and in the next: two leaders
    assert tracker.state(obs, "partition@leader").startswith("lead=split")
    assert tracker.split


def test_where_every_node_serves_lead_is_the_serving_set_and_there_is_no_split():
    # etcd answers on any member: the clients name the member they asked. Many nodes
    # serving from the first window on is its normal state, not two leaders.
    obs, tracker = Observations(), StateTracker()
    p = 0

    def window(*nodes: str) -> str:
        nonlocal p
        for node in nodes:
            for _ in range(5):
                obs.record({"process": p, "type": "invoke", "f": "read", "time": 0},
                           faulted=False)  # fmt: skip
                obs.record({"process": p, "type": "ok", "f": "read", "node": node,
                            "time": 1000}, faulted=False)  # fmt: skip
                p += 1
        return tracker.state(obs, "")

    assert window("n1", "n2", "n3") == "lead=same err=none act=-"
    assert tracker.many_serve and tracker.leader is None  # the leader role asks the DB
    assert window("n1", "n2", "n3") == "lead=same err=none act=-" and not tracker.split
    assert window("n1", "n2") == "lead=moved err=none act=-"  # n3 stopped serving
    assert window("n1", "n2") == "lead=same err=none act=-"
    one = StateTracker()
    assert one.many_serve is None
    obs2 = Observations()
    obs2.record({"process": 0, "type": "invoke", "f": "read", "time": 0}, faulted=False)
    obs2.record({"process": 0, "type": "ok", "f": "read", "node": "n1", "time": 9},
                faulted=False)  # fmt: skip
    one.state(obs2, "")
    assert one.many_serve is False and one.leader == "n1"


def test_novelty_is_of_what_the_system_did_not_of_the_agents_own_faults():
    """The same behaviour under a new set of the agent's faults is not new; a new
    transition of the system's behaviour is."""
    obs, tracker, learner = Observations(), StateTracker(), Learner()
    p = 0

    def window(node: str, typ: str = "ok") -> None:
        nonlocal p
        for _ in range(10):
            obs.record({"process": p, "type": "invoke", "f": "read", "time": 0}, faulted=False)
            obs.record({"process": p, "type": typ, "f": "read", "node": node, "time": 1000},
                       faulted=False)  # fmt: skip
            p += 1

    novelty = []
    for active in ("", "kill@follower", "kill@follower,pause@any", "pause@any"):
        window("n1")
        tracker.state(obs, active)
        novelty.append(round(learner.visit(tracker.transition), 3))
    assert tracker.transition == "lead=same err=none>lead=same err=none"
    # start>same, then the same transition three times, whatever the agent held
    assert novelty == [1.0, 1.0, 0.707, 0.577]
    window("n2")
    tracker.state(obs, "partition@leader")
    assert tracker.transition == "lead=same err=none>lead=moved err=none"
    assert learner.visit(tracker.transition) == 1.0


def test_a_run_keeps_the_random_budget_heals_every_strike_and_explains_each(tmp_path: Path):
    sp = space()
    sched = AdaptiveScheduler(path=tmp_path / "m.json")
    script = Script(sched, sp)
    script.run()
    starts = [o for o in script.ops if o.f.startswith("start-")]
    stops = [o for o in script.ops if o.f.startswith("stop-")]
    # the agent's own ops keep the budget; a start's stop may be left to the run's end
    # heal (here the scheduler's, in a run the fault set's once the driver's budget is
    # spent), so at most one more
    chosen = [o for o in script.ops if "the run's faults are over" not in o.why
              and "crash-restart" not in o.why]
    assert 1 <= len(chosen) <= op_budget(sp) == 9
    assert len(script.ops) <= op_budget(sp) + 1
    # every kind started is stopped (a partition may be replaced by another first)
    assert set(o.f[6:] for o in starts) == set(o.f[5:] for o in stops)
    for o in starts:
        assert o.why.startswith("adaptive: state [lead=") and "best estimates" in o.why
        assert o.value is not None
    saved = memory.load(tmp_path / "m.json")
    assert saved["runs"] == 1 and saved["episode"]["id"] == sched.episode
    assert len(saved["episode"]["pairs"]) >= len(starts)
    # every choice is explained: a strike or heal by its intent, a hold in the summary
    (summary,) = [r for r in script.ledger if r.get("event") == "scheduler"]
    held = [a for _s, a in sched.pairs if a == HOLD]
    assert len(summary["holds"]) == len(held)
    for h in summary["holds"]:
        assert "chose hold" in h["why"] and "best estimates" in h["why"]
    assert summary["choices"] == len(sched.pairs)
    # an agent that values holding above all (held everywhere, generalised) only holds
    idle = AdaptiveScheduler(Learner({"q": {"elsewhere": {HOLD: 50.0}}}))
    quiet = Script(idle, space())
    quiet.run()
    (summary,) = [r for r in quiet.ledger if r.get("event") == "scheduler"]
    assert not quiet.ops and len(summary["holds"]) == summary["choices"] > 0
    assert all("chose hold" in h["why"] for h in summary["holds"])
    assert [h["at"] for h in summary["holds"]] == sorted(h["at"] for h in summary["holds"])


def _store_run(run: Path, script: Script, valid: bool) -> None:
    """The run as the runner stores it: its ledger and its verdict."""
    run.mkdir(parents=True)
    (run / "faults.jsonl").write_text("".join(json.dumps(r) + "\n" for r in script.ledger))
    (run / "results.json").write_text(json.dumps({"valid": valid}))


def test_memory_persists_across_runs_counts_an_invalid_run_and_resets(tmp_path: Path):
    store = tmp_path / "store"
    args = SchedulerArgs(seed=1, store=str(store), suite="bugkv")
    first = make_scheduler("adaptive", args)
    assert isinstance(first, AdaptiveScheduler)
    script = Script(first, space())
    script.run()
    _store_run(store / "bugkv-register" / "20260101T000000", script, valid=False)
    starts = {a for _s, a in first.pairs if a.startswith("start:")}
    assert starts
    q_before = {(s, a): first.learner.value(s, a) for s, a in first.pairs}
    second = make_scheduler("adaptive", args)
    assert isinstance(second, AdaptiveScheduler)
    assert second.learner.runs == 1 and second.learner.judged == 1
    assert second.learner.anomalies == 1
    assert second._judged is not None and second._judged["id"] == first.episode
    assert second._judged["valid"] is False
    # each distinct start move counted once, invalid; holds and stops are no evidence
    assert second.learner.moves == {m: [1, 1] for m in starts}
    # the verdict is evidence per move; the Q-values stay the novelty learner's
    for (s, a), q in q_before.items():
        assert second.learner.value(s, a) == pytest.approx(q)
    assert reset_memory(store, "bugkv")
    assert make_scheduler("adaptive", args).learner.runs == 0  # type: ignore[attr-defined]


def test_the_next_campaign_finds_the_verdict_of_the_last_campaigns_run(tmp_path: Path):
    """A campaign's runs live in a store of their own (``campaigns/<test>/<stamp>/runs``),
    and a campaign stops at its first invalid run: the next campaign's first run must find
    that run where it was, or the memory never learns an anomaly."""
    root = tmp_path / "store"
    one = root / "campaigns" / "bugkv-set" / "20260101T000000" / "runs"
    two = root / "campaigns" / "bugkv-set" / "20260101T000500" / "runs"
    first = make_scheduler("adaptive", SchedulerArgs(seed=1, store=str(one), suite="bugkv"))
    assert isinstance(first, AdaptiveScheduler)
    script = Script(first, space())
    script.run()
    _store_run(one / "bugkv-set" / "20260101T000001", script, valid=False)
    second = make_scheduler("adaptive", SchedulerArgs(seed=2, store=str(two), suite="bugkv"))
    assert isinstance(second, AdaptiveScheduler)
    assert second._judged is not None and second._judged["id"] == first.episode
    assert second.learner.anomalies == 1 and second.learner.judged == 1


def test_settle_memory_counts_the_pending_verdict_before_the_memory_is_copied(tmp_path: Path):
    store = tmp_path / "store"
    first = make_scheduler("adaptive", SchedulerArgs(seed=1, store=str(store), suite="bugkv"))
    assert isinstance(first, AdaptiveScheduler)
    script = Script(first, space())
    script.run()
    _store_run(store / "bugkv-set" / "r1", script, valid=True)
    judged = settle_memory(store, "bugkv")
    assert judged is not None and judged["valid"] is True
    data = memory.load(memory.memory_path("adaptive", store, "bugkv"))
    assert "episode" not in data and data["judged"] == 1 and data["anomalies"] == 0
    assert all(c == [1, 0] for c in data["moves"].values())
    assert settle_memory(tmp_path / "empty", "bugkv") is None


def test_lift_contrasts_invalid_runs_with_a_move_against_the_suites_rate():
    learner = Learner()
    assert learner.lift("start:kill@all") is None  # no verdicts yet
    for _ in range(8):
        learner.judge(["start:partition@leader", "hold", "stop:partition"], invalid=False)
    assert learner.lift("start:kill@all") is None  # no invalid run: no evidence at all
    assert learner.evidence("start:kill@all") == 0.0
    for _ in range(2):
        learner.judge(["start:kill@all", "hold", "start:kill@all"], invalid=True)
    assert learner.moves["start:kill@all"] == [2, 2]  # once per run, not per strike
    base = 2 / 10
    kill = (2 + PRIOR_RUNS * base) / (2 + PRIOR_RUNS) / ((0 + PRIOR_RUNS * base) / (8 + PRIOR_RUNS))
    part = (0 + PRIOR_RUNS * base) / (8 + PRIOR_RUNS) / ((2 + PRIOR_RUNS * base) / (2 + PRIOR_RUNS))
    assert learner.lift("start:kill@all") == pytest.approx(min(kill, LIFT_RANGE[1]))
    assert learner.lift("start:partition@leader") == pytest.approx(max(part, LIFT_RANGE[0]))
    assert learner.lift("start:pause@any") == pytest.approx(1.0)  # never made: the suite's
    assert learner.lift(HOLD) is None and learner.lift("stop:kill") is None
    assert learner.evidence("start:kill@all") == pytest.approx(
        EVIDENCE_WEIGHT * math.log(learner.lift("start:kill@all") or 1))
    acts = [HOLD, "start:kill@all", "start:partition@leader"]
    probs = learner.probabilities("lead=same err=none act=-", acts)
    assert probs[1] > probs[0] > probs[2]  # equal Q-values: the evidence decides


def test_without_an_invalid_run_the_policy_is_the_novelty_learners_alone():
    learner = Learner({"q": {"s": {"a": 1.2, "start:kill@all": 0.8}}})
    for _ in range(5):
        learner.judge(["start:kill@all"], invalid=False)
    assert learner.score("s", "start:kill@all") == learner.value("s", "start:kill@all")
    assert learner.probabilities("s", ["a", "start:kill@all"]) == \
        Learner({"q": {"s": {"a": 1.2, "start:kill@all": 0.8}}}).probabilities(
            "s", ["a", "start:kill@all"])


def test_it_learns_which_strike_an_invalid_run_followed(tmp_path: Path):
    """Scripted world: a run is invalid iff it killed the leader (n1, serving). After some runs the
    agent's policy in its first state prefers that strike (its lift: every run that made it
    was invalid, none of the others)."""
    store = tmp_path / "store"
    args = SchedulerArgs(seed=1, store=str(store), suite="toy")
    hits = []
    for i in range(25):
        sched = make_scheduler("adaptive", SchedulerArgs(seed=i, store=args.store,
                                                         suite="toy"))  # fmt: skip
        assert isinstance(sched, AdaptiveScheduler)
        script = Script(sched, space(time_limit=2.0), seed=i)
        script.run()
        found = any(o.f == "start-kill" and o.value == {"targets": "nodes", "nodes": ["n1"]}
                    for o in script.ops)  # fmt: skip
        hits.append(found)
        _store_run(store / "toy-register" / f"run{i:03d}", script, valid=not found)
    last = make_scheduler("adaptive", args)
    assert isinstance(last, AdaptiveScheduler)
    start = "lead=same err=none act=-"
    acts = [HOLD, "start:kill@leader", "start:kill@follower", "start:kill@any",
            "start:kill@all", "start:partition@leader", "start:partition@any"]  # fmt: skip
    probs = dict(zip(acts, last.learner.probabilities(start, acts), strict=True))
    assert max(probs, key=lambda a: probs[a]) == "start:kill@leader", probs
    # by chance (1 move of 8 in the run's one decision) about 1 run in 8 would strike it
    assert sum(hits[-10:]) >= 5, hits


def test_learned_values_compose_overlapping_faults_on_the_leader(tmp_path: Path):
    """Values that prefer cutting the leader off, then stepping its clock while the cut
    holds: the run overlaps the two, aimed at the node serving (n1), and explains both."""
    sp = FaultSpace.of(["partition", "clock"], NODES, roles=True, interval=1.0, time_limit=6.0)
    learner = Learner({"q": {
        "lead=same err=none act=-": {"start:partition@leader": 9.0},
        "lead=same err=none act=partition@leader": {"start:clock@leader": 9.0},
        "lead=same err=mid act=partition@leader": {"start:clock@leader": 9.0},
        "lead=same err=high act=partition@leader": {"start:clock@leader": 9.0},
        "lead=moved err=none act=partition@leader": {"start:clock@leader": 9.0},
        "lead=moved err=mid act=partition@leader": {"start:clock@leader": 9.0},
        "lead=moved err=high act=partition@leader": {"start:clock@leader": 9.0},
    }})  # fmt: skip
    script = Script(AdaptiveScheduler(learner), sp)
    script.run()
    fs = [o.f for o in script.ops]
    assert fs[:2] == ["start-partition", "start-clock"], fs
    cut, step = script.ops[0], script.ops[1]
    assert cut.value["n1"] == ["n2", "n3", "n4", "n5"]  # n1 served: n1 is cut off
    assert list(step.value.get("offsets", {"n1": 0})) == ["n1"] or step.value.get("nodes") == ["n1"]
    assert "chose start:clock@leader" in step.why and "act=partition@leader" in step.why


def test_show_prints_each_moves_evidence_and_a_bad_memory_is_a_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from nemeses.schedulers.__main__ import main

    learner = Learner()
    learner.judge(["start:kill@all"], invalid=True)
    learner.judge(["start:partition@leader", "hold"], invalid=False)
    path = memory.memory_path("adaptive", tmp_path, "bugkv")
    memory.save(path, learner.to_json())
    assert main(["show", "adaptive", "--store", str(tmp_path), "--suite", "bugkv"]) == 0
    out = capsys.readouterr().out
    assert "judged 2, invalid 1" in out
    lines = [ln.split() for ln in out.splitlines() if ln.strip().startswith("start:")]
    assert [ln[0] for ln in lines] == ["start:kill@all", "start:partition@leader"]
    assert lines[0][1:3] == ["1", "1"] and float(lines[0][3]) > 1 > float(lines[1][3])
    assert main(["show", "ldfi", "--store", str(tmp_path), "--suite", "bugkv"]) == 0
    assert "no memory yet" in capsys.readouterr().out
    path.write_text("{not json")
    assert main(["show", "adaptive", "--store", str(tmp_path), "--suite", "bugkv"]) == 254
    assert "not JSON" in capsys.readouterr().err



def test_a_kill_is_a_crash_restart_restarted_at_the_next_decision(tmp_path: Path):
    kills = every = 0
    for seed in range(8):
        script = Script(AdaptiveScheduler(path=tmp_path / f"m{seed}.json"), space(), seed=seed)
        script.run()
        for i, op in enumerate(script.ops):
            if op.f != "start-kill":
                continue
            kills += 1
            restart = script.ops[i + 1]
            # (after the run's last decision, the end's heal is the restart)
            assert restart.f == "stop-kill"
            assert "crash-restart" in restart.why or "faults are over" in restart.why
            if op.value.get("targets") == "all":
                every += 1  # every node dead: restarted at once
                assert restart.at == pytest.approx(op.at, abs=0.5)
            else:
                assert restart.at == pytest.approx(op.at + 1.0, abs=0.3)
        assert "stop:kill" not in {pair[1] for pair in script.sched.pairs}
    assert kills >= 3 and every >= 1
