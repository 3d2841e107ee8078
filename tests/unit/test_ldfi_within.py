"""ldfi strikes a hypothesis whose schedule tests another within it in place of both
(nemeses/schedulers/ldfi.py ``is_tested_within``, ``LdfiScheduler._start_next``,
``absorb``): which schedules test which, which one a run strikes, and that the next run
counts both as tried (hand-made states and runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nemeses.lineage import Move, OutcomeClass, compose
from nemeses.scheduler import FaultSpace
from nemeses.schedulers.ldfi import (
    RECOVERY_LIMIT,
    LdfiScheduler,
    LdfiState,
    absorb,
    is_tested_within,
    with_covered,
)
from tests.unit.scripted_run import ScriptedRun, served

NODES = ("n1", "n2", "n3", "n4", "n5")
KINDS = ("partition", "pause", "kill", "clock")
READ_CUT = ("read", (("partition", "leader"),))
BEHIND_CUT = ("behind", (("partition", "leader"),))


def hold(moves: Any, i: int) -> float:
    return LdfiScheduler(LdfiState())._hold(moves, i, 1.0)


def state(*classes: str, lease: bool = False) -> LdfiState:
    st = LdfiState()
    st.observe({c: OutcomeClass(c, "n1", 10) for c in classes})
    if lease:
        st.classes["read"].learned["leasetime"] = "n1 stopped serving reads when cut off"
    st.timing.update(takeover=1.0, op=0.3)
    return st


def test_a_follower_cut_before_the_leaders_tests_the_cut_of_the_leader():
    read, behind = compose(*READ_CUT), compose(*BEHIND_CUT)
    assert behind == (("start-partition", "follower:0"), *read)
    assert is_tested_within(read, behind, hold)  # the leader's cut replaces the follower's
    assert not is_tested_within(behind, read, hold)
    assert not is_tested_within(read, read, hold)  # itself is not "within"


def test_the_old_leaders_cut_and_heal_before_a_successor_fault_tests_the_cut():
    read = compose(*READ_CUT)
    for succ in ("partition", "kill"):
        tail = compose("tail", ((succ, "successor"),))
        assert tail[:2] == read
        assert is_tested_within(read, tail, hold), tail  # a prefix, held as long or longer


def test_what_is_not_within():
    read = compose(*READ_CUT)
    # a pause nested in the cut: the cut is not struck as the read hypothesis strikes it
    lease = compose("read", (("partition", "leader"), ("pause", "leader")))
    assert not is_tested_within(read, lease, hold)
    # a fault of another kind still holding when the run starts: not the same start
    killed: list[Move] = [("start-kill", "all"), *read, ("stop-kill", "")]
    assert not is_tested_within(read, killed, hold)
    # an op before it naming the leader pins it: later "leader" ops strike that node
    pinned: list[Move] = [("start-pause", "leader"), ("stop-pause", ""), *read]
    assert not is_tested_within(read, pinned, hold)
    # held for less than the hypothesis holds it: its outcomes may not show
    short: list[Move] = [("start-partition", "follower:0"), ("start-partition", "leader"),
                         ("stop-partition", "")]  # fmt: skip
    assert is_tested_within(read, short, hold)
    assert not is_tested_within(read, short, lambda m, i: 0.5 if len(m) == 3 else hold(m, i))
    # moves stored as lists (from the state's JSON) compare as moves
    assert is_tested_within([list(m) for m in read], [list(m) for m in compose(*BEHIND_CUT)], hold)


def strikes(st: LdfiState, *, time_limit: float = 12.0, fault_ops: int = 10,
            silent: tuple[float, float] = (0.0, 0.0)) -> LdfiScheduler:  # fmt: skip
    """Drive a fresh run's ldfi over a scripted run in which n1 serves a write and a read
    every 0.05 s (but in the ``silent`` span of seconds) and each fault op takes 0.3 s;
    the scheduler, with what it struck."""
    space = FaultSpace.of(list(KINDS), NODES, roles=True, interval=1.0, time_limit=time_limit,
                          fault_ops=fault_ops)  # fmt: skip
    sched = LdfiScheduler(st)
    p = 0

    def clients(run: ScriptedRun, now: float) -> None:
        nonlocal p
        while p * 0.05 <= now:
            if not silent[0] <= p * 0.05 < silent[1]:
                served(run.observed, p, p * 0.05)
            p += 1

    ScriptedRun(sched, space, feed=clients).step(until=time_limit)
    return sched


def test_the_first_run_strikes_the_read_cut_within_the_behind_cut_at_its_place():
    sched = strikes(LdfiState())
    got = [(h["class"], h["hypothesis"]) for h in sched.struck]
    # cheapest first: the read class's cut of the leader waits for the behind class's
    # (a follower cut, then the leader: one op more), which tests it within its schedule;
    # the kill of every node goes first, and the time saved fits both into the run
    assert got == [("write", [["kill", "all"]]), ("behind", [["partition", "leader"]])]
    assert sched.struck[1]["covers"] == [
        {"key": json.dumps(["read", [["partition", "leader"]]]), "class": "read",
         "hypothesis": [["partition", "leader"]]}
    ]  # fmt: skip
    assert "covers" not in sched.struck[0]
    assert sched._ops <= 10


def test_it_waits_only_while_the_costlier_one_fits():
    # a budget of 4 ops: the kill (2) leaves 2, too few for the behind cut (3): the read
    # cut is struck alone after all
    sched = strikes(state("read", "write"), fault_ops=4)
    got = [(h["class"], h["hypothesis"]) for h in sched.struck]
    assert got == [("write", [["kill", "all"]]), ("read", [["partition", "leader"]])]
    assert all("covers" not in h for h in sched.struck)
    # too little time for the behind cut: the read cut alone, as before
    short = strikes(state("read", "write"), time_limit=5.5)
    assert (short.struck[0]["class"], short.struck[0]["hypothesis"]) == (
        "read",
        [["partition", "leader"]],
    )
    assert "covers" not in short.struck[0]


def test_the_next_hypothesis_waits_for_the_store_to_serve_again():
    # served without a pause: the behind cut starts as the kill's settle ends
    plain = strikes(LdfiState())
    kill_end = plain.struck[0]["to"]
    assert plain.struck[1]["from"] == kill_end
    # nothing acknowledged from 1.5 s to 6 s (a restart and an election): it waits for the
    # store's first acknowledgement after that, in steps of half an interval
    slow = strikes(LdfiState(), silent=(1.5, 6.0))
    assert slow.struck[0]["to"] == kill_end
    assert 6.0 <= slow.struck[1]["from"] <= 6.5
    # and at most RECOVERY_LIMIT seconds after the settle: a store that never serves again
    # is struck anyway (the run's time decides what else fits)
    dead = strikes(LdfiState(), time_limit=30.0, silent=(1.5, 30.0))
    assert dead.struck[1]["from"] == round(kill_end + RECOVERY_LIMIT, 3)


def struck_run(tmp_path: Path, *, valid: bool) -> tuple[LdfiState, LdfiScheduler, Path]:
    """A first run's state and scheduler over :func:`strikes`, and a run directory whose
    verdict is ``valid``."""
    st = state("read", "write")
    sched = strikes(st)
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"valid": valid}))
    return st, sched, run


def test_the_next_run_counts_the_covered_hypothesis_tried(tmp_path: Path):
    st, sched, run = struck_run(tmp_path, valid=True)
    (run / "history.jsonl").write_text("")
    (run / "faults.jsonl").write_text("")
    notes = absorb(st, {"struck": sched.struck}, run)
    keys = [t["key"] for t in st.tried]
    assert json.dumps(["read", [["partition", "leader"]]]) in keys
    assert json.dumps(["behind", [["partition", "leader"]]]) in keys
    (read,) = [t for t in st.tried if t["class"] == "read"]
    assert read["within"] == "behind [['partition', 'leader']]"
    assert any(n.startswith("read [['partition', 'leader']] (tested within behind") for n in notes)
    # neither is offered again
    left = st.hypotheses(KINDS, 2)
    assert READ_CUT not in left and BEHIND_CUT not in left


def test_an_invalid_run_counts_the_covered_hypothesis_among_those_that_found_it(tmp_path: Path):
    st, sched, run = struck_run(tmp_path, valid=False)
    absorb(st, {"struck": sched.struck}, run)
    assert {t["class"] for t in st.tried if t["valid"] is False} >= {"read", "behind"}


def test_with_covered_expands_each_struck_record():
    struck: list[dict[str, Any]] = [
        {"key": "b", "class": "behind", "hypothesis": [["partition", "leader"]],
         "from": 1.0, "to": 7.0, "leader": "n1",
         "covers": [{"key": "r", "class": "read", "hypothesis": [["partition", "leader"]]}]},
        {"key": "w", "class": "write", "hypothesis": [["kill", "all"]]},
    ]  # fmt: skip
    out = with_covered(struck)
    assert [s["key"] for s in out] == ["b", "r", "w"]
    assert out[1]["from"] == 1.0 and out[1]["leader"] == "n1" and out[1]["class"] == "read"
    assert out[1]["within"] == "behind [['partition', 'leader']]"
    assert all("covers" not in s for s in out)
