"""``--scheduler ldfi``: lineage-driven fault injection, run after run.

Each run first watches the load for ``interval`` seconds (which node serves what: the
outcome classes of :mod:`nemeses.lineage`, on the first run of a suite; later runs have
the classes the earlier runs showed). Then it strikes **hypotheses**, cheapest first: a
minimal set of at most ``k`` (:data:`MAX_K`) fault actions that removes every support of
an outcome class (a hitting set), composed into an ordered, overlapping schedule
(:func:`nemeses.lineage.compose`) whose roles (``leader``, ``successor``, a ``follower``)
are resolved when each op strikes. It packs as many hypotheses into the run as its time
and its **fault-op budget** allow (the random scheduler's: two ops per strike slot), each
followed by :data:`SETTLE` seconds for the store to recover and show what it kept, and
then, before the next, until the store acknowledges an op again (at most
:data:`RECOVERY_LIMIT` seconds more: a kill of every node leaves it restarting and
electing, with no leader to strike and no load to learn from).
A hypothesis whose schedule is a part of another's, struck the same way from the same
state (:func:`is_tested_within`: the ``read`` class's cut of the leader is the second and
third ops of the ``behind`` class's cut of a follower, then of the leader; it is the first
two of each ``tail`` hypothesis), is tested by striking the other: while a costlier
untried hypothesis that tests it fits the run, it waits and is struck within that one, at
that one's place in the order, and both count as tried (the struck one's ``covers``); once
none fits, it is struck alone. One op more tests two hypotheses, and the time saved fits
the next ones into the run.

How long each fault holds comes from the lineage too: a fault that takes the leader away
holds for the **takeover** time (how long the others took to elect a successor after the
leader was cut off, as an earlier run showed; :data:`DEFAULT_TAKEOVER` until one has) plus
an interval, so that the successor is serving when it ends; a time fault nested in a cut
strikes right at the cut (see :func:`nemeses.lineage.compose`); a kill of every node is
restarted at once (only the disks are left to test, and the clients must still be using the
keys written before it when the store serves again: failing ops move a workload on to fresh
keys quickly); the rest hold ``interval``.

What a valid run teaches, per hypothesis window (its lessons, stored with the classes):

* a leader serving reads in the 2 s before it was cut off that served no read once a
  successor had acknowledged an op (or, with no successor serving inside the cut, none in
  its second half) has a lease: ``leasetime`` joins the read's supports (its clock
  holds it up: a clock step back or a pause of the leader, nested in a cut, are the next
  hypotheses); the takeover time is measured;
* writes the cut-off leader took and did not acknowledge form the ``tail`` class (they
  must never show: the next hypotheses make the old leader lead again);
* reads after a kill of every node of the keys it put at risk (written in the
  :data:`AT_RISK` seconds before it; a register's read must come before the key is written
  again): the copies were persisted (evidence), if the key written last before the kill
  is among them (a store that defers its writes loses the newest first). A kill after which
  no such read came tested nothing, and outcomes are not deterministic: such a hypothesis
  is struck again, up to :data:`MAX_INCONCLUSIVE` times, before it counts as tried.

**With node agents** (``docs/agents.md``), each node's own record of its database (who was
elected when, who stepped down, whose process stopped) is the lineage's leader where it
says anything: the ``leader`` role strikes the node the agents last saw elected (and not
since stepped down, stopped or exited), the ``successor`` is the node elected after the
hypothesis's leader, and a ``follower`` is another node; the classes of a finished run
count each acknowledged outcome for the node that reigned when it was acknowledged
(:func:`nemeses.lineage.reigns_of`, from ``nodes/<n>/agent.jsonl``); a lesson of a cut
holds only if the agents say the cut node led then, the takeover time is the time to the
successor's election line, and a cut of a node the agents say led makes a ``tail`` window
even when the hypothesis thought it cut a follower. Where the agents' records say nothing
(before the run's first election line, or no agents) the clients' view stands, exactly as
without agents.

**Steps handed to the agents** (:meth:`LdfiScheduler.agent_steps`, the
:class:`~nemeses.scheduler.PlansAgentSteps` seam). In a run with agents whose adapter names
a node's own election (the ``became-leader`` log pattern), over kills and partitions, a
``tail`` hypothesis ``{kill successor}`` is handed to the agents: it becomes the run's
first hypothesis, the controller strikes its precondition (cut the leader off, heal), and
every node is handed "kill your database :func:`tail_kill_timing`'s ``delay`` after you
log your election, between ``from`` and ``until``, restarted ``hold`` later": the node the
database elects while the leader is cut off kills itself once the old leader has rejoined
under it, from its own clock, without the controller asking who leads. The agents'
strike (on the ledger, ``source: agent``) is the hypothesis's kill: a run whose agents
struck no successor, or struck it before the cut was healed, tested nothing
(:data:`INCONCLUSIVE`, struck again). Without agents nothing of this happens: the
schedule is the one it was.

A hypothesis is never struck twice in a search. An invalid run ends the search (the
campaign stops there too; the next run, in a new campaign, starts a new search with the
classes, lease and timings learned). When no untried hypothesis remains, the run strikes
nothing and its ``scheduler`` ledger record says, precisely, ``exhausted``: no combination
of ≤ k faults of these kinds removes every support of an acknowledged outcome, within this
model. The state
lives in ``<store>/schedulers/ldfi-<suite>.json``; reset it with ``python -m
nemeses.schedulers reset ldfi --store S --suite X``.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.record import RunResults, read_fault_records
from nemeses.agent import read_journal
from nemeses.lineage import (
    CLASS_ORDER,
    LOCKS,
    MICRO_OPS,
    READS,
    TXNS,
    WRITES,
    Action,
    Move,
    OutcomeClass,
    Reign,
    agent_marks,
    candidate_actions,
    classes_of_history,
    compose,
    leader_at,
    minimal_hitting_sets,
    outcome_class,
    reigns_of,
    removed_by,
    symmetric_key,
)
from nemeses.scheduler import (
    AgentStep,
    Decision,
    FaultOp,
    FaultSpace,
    RunView,
    SchedulerArgs,
    Wait,
)
from nemeses.schedulers import memory
from nemeses.schedulers.adaptive import op_budget

__all__ = [
    "AGENT_HYPOTHESIS",
    "DEFAULT_TAKEOVER",
    "ELECTED",
    "MAX_K",
    "RECOVERY_LIMIT",
    "SETTLE",
    "LdfiScheduler",
    "LdfiState",
    "TailKillTiming",
    "exhausted_statement",
    "is_tested_within",
    "learn",
    "single_ops",
    "tail_kill_timing",
    "with_covered",
]

#: The largest fault sets considered: with 3, a read's quorum alone has dozens of hitting
#: sets (three of four followers cut by partitions or pauses).
MAX_K = 2
#: Seconds after a hypothesis's last op before the next one (or the run's end): the store
#: recovers and its outcomes show.
SETTLE = 1.0
#: Seconds after :data:`SETTLE` that the next hypothesis waits, at most, for the store to
#: acknowledge an op again (after a kill of every node it restarts and elects a leader).
RECOVERY_LIMIT = 5.0
#: Seconds a leader change is assumed to take until a run has measured it.
DEFAULT_TAKEOVER = 2.0
#: Seconds a fault op is assumed to take until the run has carried some out.
DEFAULT_OP_SECONDS = 0.5
#: Seconds before a hypothesis's first fault in which the leader must have served (two: at
#: load 40 a second can pass without a completion).
LEASE_LOOKBACK = 2.0
#: Seconds a cut must last for its second half to say whether the leader kept serving.
MIN_CUT = 2.0
#: Intervals a cut-off leader with a stale lease is left to be asked for reads.
STALE_WINDOW = 3
#: Runs a hypothesis may be cut short by the run's end before it counts as tried.
MAX_TRUNCATED = 2
#: A clock step back (seconds) longer than anything a run holds.
CLOCK_STEP = -60.0
#: Seconds before a kill of every node in which a key's last acknowledged write counts as
#: at risk (not yet on any disk, if the store defers its writes): the writes whose reads
#: after the restart test the hypothesis.
AT_RISK = 1.0
#: Runs a hypothesis that gathered no evidence either way is struck again before it counts
#: as tried: outcomes are not deterministic, and a test that saw nothing tested nothing.
MAX_INCONCLUSIVE = 3
#: How a lesson says its hypothesis gathered no evidence (see :data:`MAX_INCONCLUSIVE`).
INCONCLUSIVE = "inconclusive: "


#: The hypothesis the node agents strike for ldfi: the ``tail`` class's loss of the
#: successor, by a kill the successor strikes itself on its own election line.
AGENT_HYPOTHESIS: tuple[str, tuple[Action, ...]] = ("tail", (("kill", "successor"),))
#: The adapters' log pattern for "this node was elected leader" (``docs/agents.md``).
ELECTED = "became-leader"


def _hkey(cls: str, h: Sequence[Action]) -> str:
    return json.dumps([cls, [list(a) for a in symmetric_key(h)]])


def is_tested_within(inner: Sequence[Sequence[str]], outer: Sequence[Sequence[str]],
                     hold: Callable[[Sequence[Move], int], float]) -> bool:  # fmt: skip
    """Whether striking the schedule ``outer`` also tests the schedule ``inner``: ``inner``'s
    ops are a contiguous run of ``outer``'s, each held as ``inner`` holds it (``hold(moves,
    i)``: the seconds after op ``i``; its last op at least as long, the store settling), and
    struck from the state ``inner`` starts from: whatever ``outer`` holds before the run is
    a partition that the run's first op, a partition, replaces (a follower's cut before the
    leader's, as the ``behind`` class's precondition is), and no op before it names the
    leader or the successor (those ops pin the node the roles name). The faults of
    ``inner`` then strike as its own schedule would strike them, so its supports are
    removed as they would be; what ``outer`` adds comes before or after."""
    small: list[Move] = [(str(m[0]), str(m[1])) for m in inner]  # (stored moves are lists)
    big: list[Move] = [(str(m[0]), str(m[1])) for m in outer]
    n = len(small)
    if not n or n >= len(big):
        return False
    want = [hold(small, j) for j in range(n)]
    for i in range(len(big) - n + 1):
        if big[i : i + n] != small:
            continue
        got = [hold(big, i + j) for j in range(n)]
        if any(abs(a - b) > 1e-9 for a, b in zip(got[:-1], want[:-1], strict=True)):
            continue
        if got[-1] < want[-1] - 1e-9:
            continue
        before = big[:i]
        if any(role in ("leader", "successor") for _f, role in before):
            continue
        holding: set[str] = set()
        for f, _role in before:
            kind = f.split("-", 1)[1]
            (holding.add if f.startswith("start-") else holding.discard)(kind)
        if holding <= {"partition"} and (not holding or small[0][0] == "start-partition"):
            return True
    return False


@dataclasses.dataclass(frozen=True, slots=True)
class TailKillTiming:
    """When the node agents strike :data:`AGENT_HYPOTHESIS`'s kill, in seconds on the run's
    clock: ``delay`` after a node's election line, if that falls between ``start`` and
    ``until`` (the step's ``from`` and ``until``: an agent checks its window when it
    strikes), healed ``hold`` later; ``end`` is when the hypothesis is expected to be over
    (the successor elected ``takeover`` after the cut, its kill healed, the store
    settled)."""

    start: float
    until: float
    delay: float
    hold: float
    end: float


def tail_kill_timing(space: FaultSpace, takeover: float, op_seconds: float) -> TailKillTiming:
    """The timing of :data:`AGENT_HYPOTHESIS` struck by the agents as the run's first
    hypothesis, from the lineage's ``takeover`` and the time a fault op takes
    (``op_seconds``). The hypothesis starts once the load was watched (``interval``); the
    controller cuts the leader off (an op), holds the cut ``takeover + interval`` (as it
    holds any cut of the leader) and heals it (an op). The successor is elected within
    ``takeover`` of the cut, so ``delay = takeover + 2 * interval + op_seconds`` after
    its election line is at least an interval after the heal landed: the old leader has
    rejoined under the successor (which is what the ``tail`` class's support says must
    not be taken away). The window takes the election lines of the hypothesis's first
    ``delay`` seconds: strikes from ``interval + delay`` to ``interval + 2 * delay``. The
    successor dies at least ``delay`` after the hypothesis began, so an election its death
    causes would strike after the window: only the successor strikes. It holds
    ``takeover + interval``, as the controller holds a kill of the successor."""
    i = space.interval
    delay = takeover + 2 * i + op_seconds
    hold = takeover + i
    until = i + 2 * delay
    end = i + op_seconds + takeover + delay + hold + SETTLE
    return TailKillTiming(start=round(i + delay, 3), until=round(until, 3), delay=round(delay, 3),
                          hold=round(hold, 3), end=round(end, 3))  # fmt: skip


class LdfiState:
    """What LDFI knows for a suite: outcome classes (with lessons), timings measured,
    tried hypotheses and their verdicts, the pending run, runs seen, and the outcome."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        data = data or {}
        self.classes = {
            k: OutcomeClass.from_json(v) for k, v in dict(data.get("classes", {})).items()
        }
        self.tried: list[dict[str, Any]] = list(data.get("tried", []))
        self.pending: dict[str, Any] | None = data.get("pending")
        self.runs = int(data.get("runs", 0))
        self.found: str | None = data.get("found")
        self.timing: dict[str, float] = {str(k): float(v) for k, v in
                                         dict(data.get("timing", {})).items()}  # fmt: skip
        self.truncated: dict[str, int] = {str(k): int(v) for k, v in
                                          dict(data.get("truncated", {})).items()}  # fmt: skip
        self.inconclusive: dict[str, int] = {
            str(k): int(v) for k, v in dict(data.get("inconclusive", {})).items()
        }

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"classes": {k: c.to_json() for k, c in sorted(self.classes.items())},
                "tried": self.tried, "pending": self.pending, "runs": self.runs,
                "found": self.found, "timing": self.timing,
                "truncated": self.truncated, "inconclusive": self.inconclusive}  # fmt: skip

    @property
    def takeover(self) -> float:
        """Seconds the store took to elect a successor once its leader was cut off."""
        return self.timing.get("takeover", DEFAULT_TAKEOVER)

    def tried_keys(self) -> set[str]:
        """The hypotheses already struck (class and actions, followers renumbered)."""
        return {str(t["key"]) for t in self.tried if "key" in t}

    def observe(self, found: Mapping[str, OutcomeClass]) -> None:
        """Add a run's outcome classes (counts add up; the latest leader is kept)."""
        for key, c in found.items():
            mine = self.classes.setdefault(key, OutcomeClass(kind=c.kind))
            mine.outcomes += c.outcomes
            mine.leader = c.leader or mine.leader

    def hypotheses(self, kinds: Iterable[str], k: int) -> list[tuple[str, tuple[Action, ...]]]:
        """Untried (class, hitting set) pairs, the cheapest composed schedule first (ties:
        :data:`~nemeses.lineage.CLASS_ORDER`). A ``write`` class with partitions available
        predicts the ``behind`` class (writes a cut-off follower lacks)."""
        kinds = list(kinds)
        actions = candidate_actions(kinds)
        removes = {a: removed_by(a) for a in actions}
        classes = dict(self.classes)
        if "write" in classes and "partition" in kinds:
            classes.setdefault("behind", OutcomeClass(kind="behind"))
        tried = self.tried_keys()
        out: list[tuple[str, tuple[Action, ...]]] = []
        seen: set[str] = set()
        for key, c in classes.items():
            for h in minimal_hitting_sets(c.supports(), actions, removes, k):
                hk = _hkey(key, h)
                if hk not in tried and hk not in seen:
                    seen.add(hk)
                    out.append((key, symmetric_key(h)))
        order = {c: i for i, c in enumerate(CLASS_ORDER)}
        out.sort(key=lambda ch: (len(compose(*ch)), order.get(ch[0], 9)))
        return out


def exhausted_statement(state: LdfiState, kinds: Iterable[str], k: int) -> str:
    """The precise statement that the search is over, within the model."""
    model = sorted(set(kinds) & {"kill", "partition", "pause", "clock"})
    classes = ", ".join(f"{c.key} ({c.outcomes} ops)" for c in state.classes.values())
    what = (
        "write or read"
        if "lock" not in state.classes
        else ("lock acquire" if set(state.classes) == {"lock"} else "write, read or lock acquire")
    )
    return (
        f"exhausted: no combination of ≤ {k} faults of kinds {', '.join(model) or 'none'} "
        f"removes every support of an acknowledged {what}, within this model "
        f"(classes: {classes or 'none'}; {len(state.tried)} hypotheses tried, all valid; "
        f"{state.runs} runs)"
    )


def _read_history(run: Path) -> list[dict[str, Any]]:
    path = run / "history.jsonl"
    out: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"{path}: cannot read it: {e.strerror}") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            if i == len(lines):
                break
            raise InputError(f"{path}:{i}: not a JSON object") from None
        if isinstance(rec, dict):
            out.append(rec)
    return out


def agent_journals(run: Path) -> dict[str, list[dict[str, Any]]]:
    """Node -> the records of its agent journal in run directory ``run``
    (``nodes/<n>/agent.jsonl``, at most :data:`~nemeses.agent.MAX_JOURNAL_BYTES` each; none
    without agents). Lines that are not JSON objects (a torn last line) are skipped: the
    lineage uses what the journals show whole."""
    return {path.parent.name: read_journal(path)[0]
            for path in sorted((run / "nodes").glob("*/agent.jsonl"))}  # fmt: skip


def _windows(ledger: Sequence[Mapping[str, Any]], kind: str, t0: float, t1: float
             ) -> list[tuple[float, float, Any]]:  # fmt: skip
    """``(applied, healed, value)`` of each ``kind`` fault applied in ``[t0, t1)`` (seconds
    since the origin; healed ``inf`` if never). A start while one holds ends the first."""
    out: list[tuple[float, float, Any]] = []
    open_: tuple[float, Any] | None = None
    for r in ledger:
        if r.get("kind") != kind or r.get("event") not in ("applied", "healed"):
            continue
        t = int(r.get("time", 0)) / 1e9
        if open_ is not None:
            out.append((open_[0], t, open_[1]))
            open_ = None
        if r.get("event") == "applied" and t0 <= t < t1:
            open_ = (t, r.get("value"))
    if open_ is not None:
        out.append((open_[0], float("inf"), open_[1]))
    return out


def isolated_node(value: Any, nodes: Sequence[str] = ()) -> str | None:
    """The node a partition value (a grudge) cuts off from every other, if one."""
    if not isinstance(value, Mapping) or not value:
        return None
    names = set(value) | set(nodes)
    for n, cut in value.items():
        if isinstance(cut, list) and len(cut) == len(names) - 1 and len(names) > 2:
            return str(n)
    return None


def _nodes_of(value: Any, nodes: Sequence[str]) -> list[str]:
    if isinstance(value, Mapping) and isinstance(value.get("nodes"), list):
        return [str(n) for n in value["nodes"]]
    one = isolated_node(value, nodes)
    return [one] if one else []


def _t(e: Mapping[str, Any]) -> float:
    return int(e.get("time", 0)) / 1e9


@dataclasses.dataclass(frozen=True)
class _KillTest:
    """What the reads after a kill of every node tested (:func:`_tested_at_risk`)."""

    #: keys whose last acknowledged write, or any add, came in the :data:`AT_RISK` seconds
    #: before the kill
    at_risk: int
    #: of them, keys read back after the restart (before being written again)
    tested: int
    #: seconds from the newest at-risk key's last write (or add) to the kill
    newest_age: float | None
    #: the same for the newest key that was read back (``None``: none was)
    newest_tested_age: float | None

    @property
    def newest_tested(self) -> bool:
        """Whether the key written last before the kill was among those read back: the
        outcome a store that defers its writes loses first."""
        return self.newest_tested_age is not None and self.newest_tested_age == self.newest_age


def _tested_at_risk(
    ok: Sequence[Mapping[str, Any]],
    applied: float,
    healed: float,
    reads: Sequence[Mapping[str, Any]],
) -> _KillTest:
    """What the acknowledged ops ``ok`` (and among them ``reads``) tested of a kill of every
    node from ``applied`` to ``healed``. At risk: a key whose last acknowledged write, or any
    add, came in the :data:`AT_RISK` seconds before the kill (not yet on any disk, if the
    store defers its writes). Tested: a key read after the restart (a set's adds, by any
    read; a register's last write, by a read before any later write of it was acknowledged:
    after that, the read says nothing of what the kill kept). The run being valid, what a
    tested key's read returned was the write or later."""
    last: dict[str, float] = {}
    later: dict[str, float] = {}
    adds: set[str] = set()
    for e in ok:
        f, t = str(e.get("f")), _t(e)
        if f not in ("write", "add"):
            continue
        key = json.dumps(e.get("key"))
        if t < applied:
            last[key] = max(t, last.get(key, t))
            if f == "add":
                adds.add(key)
        elif f == "write":
            later[key] = min(t, later.get(key, float("inf")))
    at_risk = {k for k, t in last.items() if t >= applied - AT_RISK}
    tested = set()
    for r in reads:
        key, t = json.dumps(r.get("key")), _t(r)
        if key in at_risk and t > healed and (key in adds or t < later.get(key, float("inf"))):
            tested.add(key)
    newest = max((last[k] for k in at_risk), default=None)
    newest_tested = max((last[k] for k in tested), default=None)
    return _KillTest(
        at_risk=len(at_risk),
        tested=len(tested),
        newest_age=None if newest is None else round(applied - newest, 6),
        newest_tested_age=None if newest_tested is None else round(applied - newest_tested, 6),
    )


def single_ops(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``events`` with each transaction (``txn``) replaced by its micro-ops, one event each
    (same process, node, type and time; ``f`` ``add`` for an append, since a later read
    shows it whatever came after, ``write`` for a register's write, ``read``; ``key`` and
    ``value`` the micro-op's; :data:`~nemeses.lineage.MICRO_OPS`): the lessons of a kill or
    a cut then read transactions as they read single ops."""
    out: list[Mapping[str, Any]] = []
    for e in events:
        value = e.get("value")
        if str(e.get("f")) not in TXNS or not isinstance(value, list):
            out.append(e)
            continue
        out.extend({**e, "f": MICRO_OPS[m[0]], "key": m[1],
                    "value": m[2] if len(m) > 2 else None}
                   for m in value
                   if isinstance(m, list | tuple) and len(m) >= 2
                   and m[0] in MICRO_OPS)  # fmt: skip
    return out


def learn(state: LdfiState, struck: Mapping[str, Any], events: Sequence[Mapping[str, Any]],
          ledger: Sequence[Mapping[str, Any]], *,
          reigns: Sequence[Reign] = ()) -> list[str]:  # fmt: skip
    """What a valid run showed inside one struck hypothesis's window (see the module);
    the lessons, as sentences (the lease lesson also joins the read class's supports).
    With the agents' ``reigns``, a cut teaches only if they say the cut node led when it
    was cut off, and the takeover is the time to the successor's election line."""
    lessons: list[str] = []
    t0, t1 = float(struck.get("from", 0.0)), float(struck.get("to", float("inf")))
    leader = str(struck.get("leader") or "")
    ok = single_ops(e for e in events
                    if e.get("type") == "ok" and isinstance(e.get("process"), int))  # fmt: skip
    reads = [e for e in ok if str(e.get("f")) in ("read", "read-set")]
    starts = [int(r.get("time", 0)) / 1e9 for r in ledger if r.get("event") == "applied"
              and t0 <= int(r.get("time", 0)) / 1e9 < t1]  # fmt: skip
    first = min(starts, default=t0)
    for applied, healed, value in _windows(ledger, "partition", t0, t1):
        cut = isolated_node(value)
        led = leader_at(reigns, applied) if reigns else None
        if cut is None or cut != (led or leader):
            if cut is not None and cut == leader and led is not None:
                lessons.append(f"none: the agents' records say {led} led when {cut} was cut "
                               f"off at {applied:.1f} s (nothing learned)")  # fmt: skip
            continue  # only the leader's cut (a follower's says nothing of reads)
        served_before = [e for e in ok if e.get("node") == cut
                         and first - LEASE_LOOKBACK <= _t(e) < first]  # fmt: skip
        if led is None and not served_before:
            lessons.append(f"none: {cut} served nothing in the {LEASE_LOOKBACK:g} s before the "
                           f"hypothesis's "
                           f"first fault at {first:.1f} s (it was not leading; nothing "
                           f"learned)")  # fmt: skip
            continue
        others = [_t(e) for e in ok if e.get("node") not in (cut, None) and _t(e) > applied
                  and _t(e) < healed]  # fmt: skip
        elected = [r for r in reigns if r.node != cut and applied < r.start < healed]
        if led is not None and elected:
            took = round(elected[0].start - applied, 3)
            seen = state.timing.get("takeover")
            state.timing["takeover"] = round(max(took, seen or 0.0), 3)
            lessons.append(f"the agents saw {elected[0].node} elected {took:.2f} s after {cut} "
                           f"was cut off")  # fmt: skip
        elif others:
            took = round(min(others) - applied, 3)
            seen = state.timing.get("takeover")
            state.timing["takeover"] = round(max(took, seen or 0.0), 3)
            lessons.append(f"a successor served {took:.2f} s after {cut} was cut off")
        if healed - applied < MIN_CUT or healed == float("inf"):
            continue
        # From the successor's first acknowledgement on, a cut-off leader still serving
        # reads serves stale ones: none from then on is a lease, however long the cut held
        # after it. With no successor serving inside the cut: none in its second half.
        succ = min(others, default=None)
        since = succ if succ is not None else applied + (healed - applied) / 2
        before = [e for e in reads if e.get("node") == cut
                  and first - LEASE_LOOKBACK <= _t(e) < applied]  # fmt: skip
        late = [e for e in reads if e.get("node") == cut and since <= _t(e) < healed]
        loaded = any(since <= _t(e) < healed for e in ok)  # (the load may end before a heal)
        if before and loaded and not late and "read" in state.classes:
            last = max((_t(e) for e in reads
                        if e.get("node") == cut and applied <= _t(e) < since),
                       default=applied)  # fmt: skip
            after = (f"after a successor's first acknowledgement {succ - applied:.2f} s into it"
                     if succ is not None else "in its second half")  # fmt: skip
            ev = (f"{cut}, cut off from {applied:.1f} s to {healed:.1f} s, served its last "
                  f"read {last - applied:.2f} s into the cut and none {after}: a "
                  f"lease, which {cut}'s clock holds up")  # fmt: skip
            state.classes["read"].learned.setdefault("leasetime", ev)
            lessons.append(ev)
    if struck.get("class") == "lock":
        lessons += _lock_lessons(events, ledger, t0, t1)
    agents = struck.get("agents")
    if isinstance(agents, Mapping):
        lessons.append(_agent_kill_lesson(agents, leader, t0, t1, ledger, reigns))
    hyp = [tuple(a) for a in struck.get("hypothesis", [])]
    if ("kill", "all") in hyp:
        for applied, healed, _v in _windows(ledger, "kill", t0, t1):
            test = _tested_at_risk(ok, applied, healed, reads)
            written = f"keys written in the {AT_RISK:g} s before every node was killed"
            if not test.tested:
                ev = (f"{INCONCLUSIVE}none of {test.at_risk} {written} was read back after "
                      "the restart before being written again; the hypothesis was not "
                      "tested")  # fmt: skip
            elif not test.newest_tested:
                ev = (f"{INCONCLUSIVE}{test.tested} of {test.at_risk} {written} were read "
                      f"back after the restart, but not the one written last "
                      f"({test.newest_age:.2f} s before the kill; the newest read back "
                      f"{test.newest_tested_age:.2f} s before), which a store that defers "
                      "its writes loses first; the hypothesis was not tested")  # fmt: skip
            else:
                ev = (f"{test.tested} of {test.at_risk} {written} were read back after the "
                      f"restart, the one written last ({test.newest_age:.2f} s before the "
                      "kill) among them (copies persisted)")  # fmt: skip
            if test.newest_tested and "write" in state.classes:
                state.classes["write"].learned.setdefault("disk", ev)
            lessons.append(ev)
    if not lessons:
        lessons.append("valid: every support the hypothesis removed had another that held")
    return lessons


def _lock_lessons(events: Sequence[Mapping[str, Any]], ledger: Sequence[Mapping[str, Any]],
                  t0: float, t1: float) -> list[str]:  # fmt: skip
    """What each pause or cut of a node inside a ``lock`` hypothesis's window tested. It
    tested the sessions that node keeps if a client of it was waiting for the lock (or
    holding it) across the fault while the lock passed to a client of another node: the
    run being valid, the lapsed session did not make two holders. Otherwise it tested
    nothing (:data:`INCONCLUSIVE`)."""
    nodes = sorted({str(e["node"]) for e in events if e.get("node")})
    acquires: list[tuple[float, float, str, str]] = []  # (invoked, completed, type, node)
    holds: list[tuple[float, float, str]] = []  # (acquired, released, node)
    pending: dict[Any, tuple[float, str, str]] = {}
    held: dict[Any, tuple[float, str]] = {}
    for e in events:
        p, f, typ = e.get("process"), str(e.get("f")), e.get("type")
        if not isinstance(p, int) or f not in ("acquire", "release"):
            continue
        if typ == "invoke":
            pending[p] = (_t(e), f, str(e.get("node") or ""))
            continue
        inv_t, inv_f, node = pending.pop(p, (_t(e), f, str(e.get("node") or "")))
        if inv_f == "acquire":
            acquires.append((inv_t, _t(e), str(typ), node))
            if typ == "ok":
                held[p] = (_t(e), node)
        elif p in held:
            start, n = held.pop(p)
            holds.append((start, _t(e), n))
    acquires += [(t, float("inf"), "open", n) for t, f, n in pending.values() if f == "acquire"]
    holds += [(start, float("inf"), n) for start, n in held.values()]
    resolved = {int(r.get("time", 0)) / 1e9: r.get("targets") for r in ledger
                if r.get("event") == "applied" and isinstance(r.get("targets"), list)}  # fmt: skip
    out = []
    for kind in ("pause", "partition"):
        for applied, healed, value in _windows(ledger, kind, t0, t1):
            hit = isolated_node(value, nodes) if kind == "partition" else None
            struck_nodes = (
                [hit]
                if hit
                else _nodes_of(value, nodes) or [str(n) for n in resolved.get(applied) or []]
            )
            if len(struck_nodes) != 1:
                continue
            m = struck_nodes[0]
            waiting = [a for a in acquires if a[3] == m and a[0] < healed and a[1] > healed]
            holding = [h for h in holds if h[2] == m and h[0] < applied and h[1] > healed]
            passed = [a for a in acquires if a[3] != m and a[2] == "ok" and applied < a[1] < healed]
            what = f"the {kind} of {m} ({applied:.1f}-{healed:.1f} s)"
            if (waiting or holding) and passed:
                out.append(f"{len(waiting)} acquires through {m} waited and {len(holding)} "
                           f"holds of its clients lasted across {what} while the lock passed "
                           f"{len(passed)} times to clients of other nodes: no two holds "
                           f"overlapped (the sessions outlived it)")  # fmt: skip
            else:
                out.append(f"{INCONCLUSIVE}no client of {m} waited for or held the lock "
                           f"across {what} while it passed to a client of another node "
                           f"({len(waiting)} waiting, {len(holding)} holding, {len(passed)} "
                           f"handed over); the hypothesis was not tested")  # fmt: skip
    return out


def _agent_kill_lesson(
    agents: Mapping[str, Any],
    leader: str,
    t0: float,
    t1: float,
    ledger: Sequence[Mapping[str, Any]],
    reigns: Sequence[Reign],
) -> str:
    """What the node agents' kill of :data:`AGENT_HYPOTHESIS` showed in the hypothesis's
    window ``[t0, t1)``: the kill struck on an election line (the ledger's ``source:
    agent`` record) is the hypothesis's fault; it tested the hypothesis only if it struck
    a node other than ``leader`` that the agents' ``reigns`` say led then, after the cut of
    ``leader`` was healed (:data:`INCONCLUSIVE` otherwise)."""
    kills = [r for r in ledger if r.get("event") == "applied" and r.get("kind") == "kill"
             and r.get("source") == "agent" and r.get("trigger") == "log"
             and t0 <= _t(r) < t1]  # fmt: skip
    if not kills:
        return (f"{INCONCLUSIVE}no node's election line struck between {agents.get('start')} "
                f"and {agents.get('until')} s, so the agents killed no successor; the "
                "hypothesis was not tested")  # fmt: skip
    kill = kills[0]
    node, at = str(kill.get("node")), _t(kill)
    heals = [_t(r) for r in ledger if r.get("kind") == "partition"
             and r.get("event") == "healed" and t0 <= _t(r) <= at]  # fmt: skip
    led = leader_at(reigns, at) if reigns else None
    if node == leader or (reigns and led != node):
        return (f"{INCONCLUSIVE}the agents killed {node} at {at:.2f} s, but the successor of "
                f"{leader or 'the leader'} then was {led or 'unknown'}; the hypothesis was "
                "not tested")  # fmt: skip
    if not heals:
        return (f"{INCONCLUSIVE}the agents killed the successor {node} at {at:.2f} s, before "
                f"the cut of {leader or 'the leader'} was healed (the old leader had not "
                "rejoined under it); the hypothesis was not tested")  # fmt: skip
    return (f"the agents killed the successor {node} at {at:.2f} s, {agents.get('delay')} s "
            f"after its election line and {at - max(heals):.2f} s after the cut of "
            f"{leader or 'the leader'} was healed: valid without it")  # fmt: skip


class LdfiScheduler:
    """One run's part of the LDFI loop (see the module docstring)."""

    name = "ldfi"

    def __init__(self, state: LdfiState, *, path: Path | None = None,
                 notes: Sequence[str] = (), store: str = "") -> None:  # fmt: skip
        self.state = state
        self.path = path
        #: The run's store: the next run finds this episode's run there.
        self.store = store
        self.notes = list(notes)
        self.episode = uuid.uuid4().hex[:12]
        self.k = MAX_K
        self.exhausted: str | None = None
        #: The previous run's invalid verdict that ended the last search, if it did.
        self.found: str | None = None
        self.struck: list[dict[str, Any]] = []
        self._todo: list[tuple[str, tuple[Action, ...]]] | None = None
        self._moves: list[Move] = []
        self._current: dict[str, Any] | None = None
        self._hold_next = 0.0
        self._due = 0.0
        self._served: Counter[str] = Counter()
        self._recent_leader: str | None = None
        #: Why the last role resolved to its node, when the node agents said so.
        self._lead_note = ""
        self._settle_until = 0.0
        #: Acknowledged ops when the last hypothesis's ops ended (-1: none ended yet).
        self._acked_at_end = -1
        self._ops = 0
        self._done = False
        #: :data:`AGENT_HYPOTHESIS`'s timing, once handed to the node agents.
        self._agent_plan: dict[str, Any] | None = None

    @classmethod
    def for_run(cls, args: SchedulerArgs) -> LdfiScheduler:
        """Read the state and the previous run (its lineage; lessons from its hypotheses
        if it was valid; the end of the search if it was invalid)."""
        path = memory.memory_path("ldfi", args.store, args.suite)
        state = LdfiState(memory.load(path))
        notes: list[str] = []
        pending = state.pending
        run = memory.find_episode_run([str(pending.get("store") or ""), args.store],
                                      str(pending["episode"])) if pending else None  # fmt: skip
        if pending and run is not None:
            notes += absorb(state, pending, run)
            state.pending = None
        found = state.found
        if found:
            # That search is over (a campaign stops at its invalid run): this run starts a
            # new one, keeping what the lineage taught (classes, lease, timings).
            notes.append(f"search over: {found}; a new search starts")
            state.found, state.tried, state.truncated = None, [], {}
            state.inconclusive = {}
        me = cls(state, path=path, notes=notes, store=memory.absolute(args.store))
        me.found = found
        return me

    # -- the node agents' part ---------------------------------------------------------

    def agent_steps(self, space: FaultSpace) -> list[AgentStep]:
        """The steps handed to the node agents before the run (see the module docstring):
        in a run with agents (``space.agents``) whose adapter names elections
        (:data:`ELECTED` in ``space.agent_triggers``), over kills and partitions, when
        :data:`AGENT_HYPOTHESIS` is untried and fits in the run's time
        (:func:`tail_kill_timing`) and fault-op budget: on every node, a kill of its
        database on its own election line; that hypothesis is then the run's first.
        Otherwise none, and the run is the one it would have been."""
        able = space.agents and ELECTED in space.agent_triggers
        if not able or not {"kill", "partition"} <= set(space.kinds) or not self.state.classes:
            return []
        if AGENT_HYPOTHESIS not in self.state.hypotheses(space.kinds, self.k):
            return []
        op_s = self.state.timing.get("op", DEFAULT_OP_SECONDS)
        timing = tail_kill_timing(space, self.state.takeover, op_s)
        if timing.end > space.time_limit or op_budget(space) < 2:
            return []
        self._agent_plan = dataclasses.asdict(timing)
        cls, h = AGENT_HYPOTHESIS
        t = timing
        why = (f"ldfi: {cls} outcomes, hypothesis {[list(a) for a in h]} removes every "
               f"support; struck by the node agents: the node elected while the leader is "
               f"cut off (from {t.start - t.delay:g} s) kills its database {t.delay:g} s "
               f"after its election line (takeover {self.state.takeover:g} s + 2 intervals "
               f"+ an op of {op_s:g} s: the old leader has rejoined under it), restarted "
               f"{t.hold:g} s later; it strikes between {t.start:g} and {t.until:g} s")  # fmt: skip
        step = {"f": "start-kill", "on": {"log": ELECTED}, "from": timing.start,
                "until": timing.until, "delay": timing.delay, "hold": timing.hold}  # fmt: skip
        return [AgentStep({"node": n, **step}, why=why) for n in space.nodes]

    def _agents_end(self, view: RunView) -> float:
        """When the agents' part of the current hypothesis is over (its kill healed and the
        store settled): from the successor's election line once the agents' records show
        it (and the successor named), else the latest it can be."""
        cur = self._current
        plan = self._agent_plan
        assert cur is not None and plan is not None
        first, last = plan["start"] - plan["delay"], plan["until"] - plan["delay"]
        elected = [(t, n) for n, t, w in view.observed.agents.recent
                   if w == f"log:{ELECTED}" and t is not None and n != cur["leader"]
                   and first <= t <= last]  # fmt: skip
        if elected:
            t, cur["successor"] = min(elected)
        else:
            t = last
        return t + plan["delay"] + plan["hold"] + SETTLE

    # -- planning ---------------------------------------------------------------------

    def _budget(self, view: RunView) -> int:
        return op_budget(view.space)

    def _op_seconds(self, view: RunView) -> float:
        took = _op_times(view.ledger)
        if took:
            return statistics.mean(took)
        return self.state.timing.get("op", DEFAULT_OP_SECONDS)

    def _hold(self, moves: Sequence[Move], i: int, interval: float) -> float:
        """Seconds to wait after move ``i`` before the next (the last: :data:`SETTLE`)."""
        if i + 1 >= len(moves):
            return SETTLE
        f, role = moves[i]
        nxt = tuple(moves[i + 1])  # (a stored move is a list)
        takes_leader = role in ("leader", "successor") and f.startswith("start-")
        if f == "start-kill" and role == "all":
            # Only the disks speak once every node is dead: restarted at once, the store
            # serves again while the clients still use the keys written just before
            # (a workload moves on to fresh keys, and failing ops move it on quickly).
            return 0.0
        if f == "start-pause" and nxt == ("start-partition", "leader"):
            return 0.0  # the cut lands while the pause holds the lease at its freshest
        if f == "start-partition" and nxt[0] == "start-clock":
            return 0.0  # the step lands once renewals have stopped
        if f == "start-partition" and role.startswith("follower"):
            return interval  # writes commit without it; its term climbs
        if f == "start-partition" and nxt == ("stop-pause", ""):
            return 0.0  # resumed at a time counted from the pause (see next_op)
        if f == "start-clock":
            # A time fault inside the cut: a successor is elected, and the cut-off leader
            # must then be asked for reads (by its own clients, a fifth of them here,
            # whose writes take up to a timeout each): several intervals.
            return self.state.takeover + STALE_WINDOW * interval
        if f == "stop-pause":
            return STALE_WINDOW * interval  # resumed inside the cut: asked for reads
        if takes_leader:
            return self.state.takeover + interval  # a successor is elected and serving
        return interval

    def _duration(self, moves: Sequence[Move], interval: float, op_s: float) -> float:
        return sum(self._hold(moves, i, interval) for i in range(len(moves))) + len(moves) * op_s

    def _start_next(self, view: RunView) -> bool:
        """Pick the next untried hypothesis that fits the time and ops left; whether one.
        One that a costlier untried hypothesis tests within its schedule
        (:func:`is_tested_within`) waits for it, while that one fits too: it is struck
        with it, at its place in the order (recorded as its ``covers``), or alone once it
        no longer fits."""
        assert self._todo is not None
        space = view.space
        left_t = space.time_limit - view.now
        left_ops = self._budget(view) - self._ops
        op_s = self._op_seconds(view)

        def hold(moves: Sequence[Move], i: int) -> float:
            return self._hold(moves, i, space.interval)

        composed = [list(compose(cls, h)) for cls, h in self._todo]
        needs = [self._duration(m, space.interval, op_s) for m in composed]
        fits = [len(m) <= left_ops and d <= left_t for m, d in zip(composed, needs, strict=True)]
        for i, (cls, h) in enumerate(self._todo):
            moves, need = composed[i], needs[i]
            agents = self._agent_plan if (cls, h) == AGENT_HYPOTHESIS else None
            if agents is not None:
                # The controller cuts and heals; the kill is the agents' (handed over).
                moves = [m for m in moves if not m[0].endswith("-kill")]
                need = agents["end"] - view.now
            # The run's first hypothesis strikes even if the estimate says it will not
            # finish: one cut short is struck again, at most MAX_TRUNCATED times.
            first = not self.struck
            if not (len(moves) <= left_ops and (need <= left_t or first)):
                continue
            mine = not self._by_agents((cls, h))
            if mine and any(fits[j] and j != i and not self._by_agents(self._todo[j])
                            and is_tested_within(moves, composed[j], hold)
                            for j in range(len(self._todo))):  # fmt: skip
                continue  # struck within a costlier one that fits, at its place
            covers = [k for k in range(len(self._todo)) if mine and k != i
                      and not self._by_agents(self._todo[k])
                      and is_tested_within(composed[k], moves, hold)]  # fmt: skip
            self._moves = moves
            self._current = {
                "key": _hkey(cls, h), "class": cls, "hypothesis": [list(a) for a in h],
                "moves": [list(m) for m in moves], "from": round(view.now, 3),
                "leader": None, "follower": None, "estimate": round(need, 1),
            }  # fmt: skip
            if covers:
                self._current["covers"] = [
                    {"key": _hkey(*self._todo[k]), "class": self._todo[k][0],
                     "hypothesis": [list(a) for a in self._todo[k][1]]}
                    for k in covers
                ]  # fmt: skip
            if agents is not None:
                self._current["agents"] = {k: agents[k] for k in
                                           ("start", "until", "delay", "hold")}  # fmt: skip
            for k in sorted({i, *covers}, reverse=True):
                self._todo.pop(k)
            self.struck.append(self._current)
            return True
        return False

    @staticmethod
    def _acked(view: RunView) -> int:
        """Acknowledged ops so far that name the node that served them."""
        return sum(c for (n, _f, t), c in view.observed.counts.items() if t == "ok" and n)

    def _by_agents(self, hypothesis: tuple[str, tuple[Action, ...]]) -> bool:
        """Whether ``hypothesis`` is handed to the node agents this run (its kill is theirs:
        it neither tests another within its schedule nor is tested within one)."""
        return self._agent_plan is not None and hypothesis == AGENT_HYPOTHESIS

    def _leader_now(self, view: RunView) -> str | None:
        """The node that served most acknowledged ops since the previous ask (the lineage's
        leader now; the whole run's if none since)."""
        now = Counter({n: c for (n, _f, t), c in view.observed.counts.items()
                       if t == "ok" and n is not None})  # fmt: skip
        recent = now - self._served
        self._served = now
        by = recent or now
        if by:
            self._recent_leader = max(sorted(by), key=lambda n: by[n])
        return self._recent_leader

    def _lead(self, view: RunView) -> str | None:
        """The node leading now: the one the node agents last saw elected (and not since
        stepped down, stopped or exited), else the one serving acknowledged ops (see
        :meth:`_leader_now`). Records :attr:`_lead_note` when the agents said it."""
        agents = view.observed.agents
        if agents.records and agents.leader is not None:
            node = agents.leader
            ats = [t for n, t, w in agents.recent
                   if n == node and w == "log:became-leader" and t is not None]  # fmt: skip
            self._lead_note = f"{node} leads by the agents' records" + (
                f" (elected at {ats[-1]:.1f} s)" if ats else ""
            )
            return node
        self._lead_note = ""
        return self._recent_leader

    def _value(self, view: RunView, f: str, role: str) -> Any:
        """The op's value, its role resolved (``leader`` pinned to the node the hypothesis's
        first leader op struck; ``successor`` is whoever leads then: by the node agents'
        records where they name a leader, else by the clients' view)."""
        space = view.space
        cur = self._current
        assert cur is not None
        kind = f.split("-", 1)[1]
        nodes = list(space.nodes)
        self._lead_note = ""
        if f.startswith("stop-"):
            return None
        if role == "all":
            return space.value_for(kind, "all", view.rng)
        if role == "successor":
            # Whoever leads now, if not the hypothesis's leader; else the database's word.
            succ = self._lead(view)
            if succ is None or succ == cur["leader"]:
                return "primaries" if kind == "partition" else {"targets": "primaries"}
            cur["successor"] = succ
            return _isolate(succ, nodes) if kind == "partition" else {
                "targets": "nodes", "nodes": [succ]}  # fmt: skip
        if role.startswith("follower"):
            if cur["follower"] is None:
                lead = cur["leader"] or self._lead(view)
                cur["follower"] = view.rng.choice(sorted(n for n in nodes if n != lead) or nodes)
            if kind == "partition":
                return _isolate(cur["follower"], nodes)
            return {"targets": "nodes", "nodes": [cur["follower"]]}
        leader = cur["leader"]
        if leader is None:
            # The node leading now (asking the database for its primary takes seconds
            # under load, and the lineage already says who serves or the agents who leads).
            leader = cur["leader"] = self._lead(view)
            if self._lead_note:
                cur["leader_from"] = "agents"
        if leader is None:
            return "primaries" if kind == "partition" else {"targets": "primaries"}
        if kind == "partition":
            return _isolate(leader, nodes)
        if kind == "clock":
            return {"kind": "bump", "offsets": {leader: CLOCK_STEP}}
        return {"targets": "nodes", "nodes": [leader]}

    def _pin_leader(self, view: RunView) -> None:
        """Once a leader op was applied, name the node it struck (later ops hit it)."""
        cur = self._current
        if cur is None or cur["leader"] is not None or cur.get("leader_kind") is None:
            return
        value = view.active.get(cur["leader_kind"])
        got = _nodes_of(value, view.space.nodes) if value is not None else []
        if got:
            cur["leader"] = got[0]

    def _begin(self, view: RunView) -> None:
        space = view.space
        if not self.state.classes:
            # The suite's first run: the classes the load showed so far.
            counts: dict[str, dict[str, int]] = {}
            acked: set[str] = set()
            for (node, f, typ), c in view.observed.counts.items():
                kind = outcome_class(f)
                if typ == "ok":
                    acked.add(f)
                if typ == "ok" and node and kind:
                    counts.setdefault(kind, {})[node] = counts.get(kind, {}).get(node, 0) + c
            self.state.observe({k: OutcomeClass(kind=k, leader=max(by, key=by.__getitem__),
                                                outcomes=sum(by.values()))
                                for k, by in counts.items()})  # fmt: skip
            self.notes.append(f"classes from the first {view.now:.1f} s of load: "
                              f"{sorted(self.state.classes) or 'none'}")  # fmt: skip
            outside = sorted(f for f in acked if outcome_class(f) is None)
            if not self.state.classes and outside:
                self.notes.append(
                    f"nothing to strike: the load's acknowledged ops (f {', '.join(outside)}) "
                    f"are outside ldfi's lineage, which models the reads, writes and lock "
                    f"acquires that a node served "
                    f"(f {', '.join(sorted(WRITES | READS | LOCKS | TXNS))})"
                )
        self._todo = self.state.hypotheses(space.kinds, self.k)
        if self._agent_plan is not None and AGENT_HYPOTHESIS in self._todo:
            # Handed to the agents for the run's start: it is struck first.
            self._todo.remove(AGENT_HYPOTHESIS)
            self._todo.insert(0, AGENT_HYPOTHESIS)
        if not self._todo and self.state.classes:
            self.exhausted = exhausted_statement(self.state, space.kinds, self.k)

    def next_op(self, view: RunView) -> Decision:
        """The packed hypotheses' ops in order (see the module docstring); a wait while the
        load is watched or a fault holds; ``None`` when nothing more fits."""
        space = view.space
        if self._done:
            return None
        if self._todo is None:
            if view.now < space.interval - 1e-9:
                return Wait(until=space.interval)
            if not self.state.classes and not any(
                t == "ok" for (_n, _f, t) in view.observed.counts
            ):
                # Nothing acknowledged yet: no lineage to start from; look again later.
                return Wait(until=view.now + space.interval)
            self._begin(view)
        self._leader_now(view)
        self._pin_leader(view)
        if not self._moves:
            if self._current is not None and self._current.get("agents"):
                # The controller's part is done; the agents kill the successor.
                end = self._agents_end(view)
                if view.now < end - 1e-9:  # (asked again each interval: the line may come)
                    return Wait(until=round(min(end, view.now + space.interval), 3))
                self._settle_until = view.now
                self._acked_at_end = self._acked(view)
                self._current["to"] = round(view.now, 3)
                self._current = None
            if self._current is not None:
                # Its last op is done (the nemesis is free): the store settles.
                self._settle_until = view.now + SETTLE
                self._acked_at_end = self._acked(view)
                self._current["to"] = round(self._settle_until, 3)
                self._current = None
            if view.now < self._settle_until - 1e-9:
                return Wait(until=self._settle_until)
            deadline = self._settle_until + RECOVERY_LIMIT
            if self._acked(view) <= self._acked_at_end and view.now < deadline - 1e-9:
                # Nothing acknowledged since the last hypothesis's ops ended: the store is
                # not serving yet (restarting, electing); a hypothesis struck now would
                # find no leader serving to strike, and its lessons no load to read.
                return Wait(until=round(min(deadline, view.now + space.interval / 2), 3))
            if not self._start_next(view):
                self._done = True
                return None
            at = view.now
        else:
            # The previous op is done (the nemesis is free): hold from now.
            at = max(view.now + self._hold_next, self._due)
        cur = self._current
        assert cur is not None
        i = len(cur["moves"]) - len(self._moves)
        f, role = self._moves.pop(0)
        self._hold_next = self._hold(cur["moves"], i, space.interval)
        self._due = 0.0
        if f == "start-partition" and cur["moves"][i - 1 : i] == [["start-pause", "leader"]]:
            # The others stopped hearing the leader when it was paused (just done): it is
            # resumed, inside the cut, once a successor serves (takeover from the pause),
            # whatever the cut op itself takes.
            self._due = at + self.state.takeover + space.interval
        value = self._value(view, f, role)
        if role == "leader" and f.startswith("start-") and cur["leader"] is None:
            cur["leader_kind"] = f.split("-", 1)[1]
        self._ops += 1
        why = (f"ldfi: {cur['class']} outcomes, hypothesis {cur['hypothesis']} removes every "
               f"support; op {i + 1}/{len(cur['moves'])} {f} {role or ''}".rstrip()
               + f", then holds {self._hold_next:.1f} s")  # fmt: skip
        if self._lead_note:
            why += f" ({self._lead_note})"
        if cur.get("agents"):
            why += "; the successor's kill is the node agents' (handed over before the run)"
        if cur.get("covers"):
            why += (
                "; it also tests "
                + ", ".join(f"{c['class']} {c['hypothesis']}" for c in cur["covers"])
                + " (their ops are a part of its schedule)"
            )
        return FaultOp(at=round(at, 3), f=f, value=value, why=why)

    def summary(self, view: RunView) -> dict[str, Any]:
        """The hypotheses struck (or the exhausted statement), and the state saved."""
        if self._todo is None:
            self._begin(view)
        if self._current is not None:
            self._current["to"] = round(max(view.now, self._current.get("to", 0.0)), 3)
            starts = [m for m in self._moves if m[0].startswith("start-")]
            if starts:
                # (stops left undone are done by the run's end, which heals every fault)
                self._current["truncated"] = f"{len(starts)} starts not made: the run ended"
        self.state.runs += 1
        self.state.pending = {"episode": self.episode, "struck": self.struck,
                              "store": self.store}  # fmt: skip
        if self.path is not None:
            memory.save(self.path, self.state.to_json())
        return {
            "scheduler": "ldfi", "episode": self.episode, "k": self.k,
            "hypotheses": self.struck,
            "exhausted": self.exhausted, "found": self.found,
            "classes": sorted(self.state.classes), "tried": len(self.state.tried),
            "timing": self.state.timing, "notes": self.notes,
        }  # fmt: skip


def _op_times(ledger: Sequence[Mapping[str, Any]]) -> list[float]:
    """Seconds each scheduled fault op of a ledger took (the run's final heals left out)."""
    return [float(r["seconds"]) for r in ledger
            if r.get("event") in ("applied", "healed") and "seconds" in r
            and not str(r.get("f", "")).startswith("heal")]  # fmt: skip


def _isolate(node: str, nodes: Sequence[str]) -> dict[str, list[str]]:
    rest = [n for n in nodes if n != node]
    return {node: rest, **{n: [node] for n in rest}}


def with_covered(struck: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The struck hypotheses, each followed by those it tested within its schedule (its
    ``covers``): the same window, leader and outcome, under their own key, class and
    hypothesis, and ``within`` naming the one struck."""
    out: list[dict[str, Any]] = []
    for s in struck:
        own = {k: v for k, v in s.items() if k != "covers"}
        out.append(own)
        out += [{**own, "key": c.get("key"), "class": c.get("class"),
                 "hypothesis": c.get("hypothesis"),
                 "within": f"{s.get('class')} {s.get('hypothesis')}"}
                for c in s.get("covers") or []]  # fmt: skip
    return out


def absorb(state: LdfiState, pending: Mapping[str, Any], run: Path) -> list[str]:
    """Take in the previous run ``run`` (its verdict, its history's classes, a lesson per
    hypothesis it struck); notes for the ledger."""
    results = RunResults.read(run)
    valid = results.valid if results is not None else None
    struck = [dict(s) for s in pending.get("struck") or []]
    if valid is False:
        state.found = (f"run {run} is invalid under hypotheses "
                       f"{[s.get('hypothesis') for s in struck]}")  # fmt: skip
        state.tried += [{"key": s.get("key"), "class": s.get("class"),
                         "hypothesis": s.get("hypothesis"), "run": str(run), "valid": False}
                        for s in with_covered(struck)]  # fmt: skip
        return [f"previous run {run}: INVALID"]
    if valid is not True:
        return [f"previous run {run}: unknown verdict; its hypotheses will be struck again"]
    events = _read_history(run)
    ledger = read_fault_records(run)
    ends = [int(r.get("time", 0)) / 1e9 for r in ledger if r.get("event") == "healed"]
    until = max(ends) if ends else None
    cuts = [(str(s["leader"]), float(s.get("from", 0)), float(s.get("to", float("inf"))))
            for s in struck if s.get("leader")]  # fmt: skip
    notes = []
    reigns = reigns_of(agent_marks(agent_journals(run)))
    if reigns:
        cuts += agent_cuts(reigns, ledger, cuts)
        notes.append("the agents' records: " + ", ".join(
            f"{r.node} led from " + (f"{r.start:.1f} s" if r.start > -1e9 else "the start")
            + (f" to {r.end:.1f} s" if r.end < 1e9 else "") for r in reigns[:8])
            + (f" (and {len(reigns) - 8} more)" if len(reigns) > 8 else ""))  # fmt: skip
    state.observe(classes_of_history(events, until=until, cuts=cuts, reigns=reigns))
    took = _op_times(ledger)
    if took:
        state.timing["op"] = round(statistics.median(took), 3)
    for s in with_covered(struck):
        key = str(s.get("key"))
        if s.get("truncated"):
            state.truncated[key] = state.truncated.get(key, 0) + 1
            if state.truncated[key] < MAX_TRUNCATED:
                notes.append(f"{s.get('class')} {s.get('hypothesis')}: cut short "
                             f"({s['truncated']}); struck again")  # fmt: skip
                continue
        lessons = learn(state, s, events, ledger, reigns=reigns)
        if any(lesson.startswith(INCONCLUSIVE) for lesson in lessons):
            state.inconclusive[key] = state.inconclusive.get(key, 0) + 1
            if state.inconclusive[key] < MAX_INCONCLUSIVE:
                notes.append(f"{s.get('class')} {s.get('hypothesis')}: {'; '.join(lessons)}; "
                             f"struck again ({state.inconclusive[key]} of "
                             f"{MAX_INCONCLUSIVE})")  # fmt: skip
                continue
        state.tried.append({"key": s.get("key"), "class": s.get("class"),
                            "hypothesis": s.get("hypothesis"), "run": str(run), "valid": True,
                            "lessons": lessons,
                            **({"within": s["within"]} if s.get("within") else {})})  # fmt: skip
        within = f" (tested within {s['within']})" if s.get("within") else ""
        notes.append(f"{s.get('class')} {s.get('hypothesis')}{within}: {'; '.join(lessons)}")
    return [f"previous run {run}: valid", *notes]


def agent_cuts(
    reigns: Sequence[Reign],
    ledger: Sequence[Mapping[str, Any]],
    cuts: Sequence[tuple[str, float, float]],
) -> list[tuple[str, float, float]]:
    """The ``(node, applied, healed)`` windows of the ledger's partitions that cut off a
    node the agents' ``reigns`` say led when the cut was applied (its unacknowledged writes
    are a tail), leaving out those overlapping a window of that node in ``cuts``."""
    out: list[tuple[str, float, float]] = []
    for applied, healed, value in _windows(ledger, "partition", 0.0, float("inf")):
        node = isolated_node(value)
        if node is None or leader_at(reigns, applied) != node:
            continue
        if any(n == node and a < healed and applied < b for n, a, b in [*cuts, *out]):
            continue
        out.append((node, applied, healed))
    return out
