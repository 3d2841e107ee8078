"""Schedulers: who decides, *during* the run, which fault strikes next, where and when.

A :class:`Scheduler` is asked for its next fault operation whenever the nemesis is free,
with a :class:`RunView` of

* the **fault space** (:class:`FaultSpace`): the kinds asked for, as registry entries with
  their declared parameter spaces (:mod:`nemeses.kinds`), the nodes, the interval;
* the **faults active now** (kind -> applied value) and the **ledger** so far (every
  record of ``faults.jsonl``: what struck, when, where, what failed);
* the **observations** (:class:`Observations`): live counts of ok/fail/info per node and
  per ``f``, and latency shifts (recent mean latency over the mean while no fault held);
  with node agents, also a tally of what each node's agent saw (:class:`AgentTally`:
  elections and leader changes from the database's log, process exits and starts, the
  latest load), fed by the fault guard as it collects the journals.

It answers a :class:`FaultOp` (an op due at a time: now, or later), :class:`Wait` (ask me
again by then — sooner if the nemesis is free and something completes), or ``None`` (no
more faults in this run). A scheduler may overlap faults of different kinds (a kill
during a partition); the fault set keeps one active fault per kind.

Two come with clew (``--scheduler``): :class:`RandomScheduler` (seeded; every requested
kind strikes at least once when the time allows, else it warns and the ledger records the
kinds that did not) and :class:`ReplayScheduler` (a stored run's applied faults, at their
offsets). :func:`register_scheduler` adds more (learning, lineage-driven, a test's).

A scheduler may also hand the node agents part of the schedule before the run (strikes on
their own clocks, or on triggers such as a line of the database's log):
:class:`PlansAgentSteps`, asked once by the runner (``harness.runplan.scheduler_agent_steps``).

:func:`scheduler_generator` turns a scheduler into the run's nemesis generator, and
:func:`observing` wraps the run's generator so that every client completion reaches the
observations.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from harness.errors import ConfigError
from harness.generator import NEMESIS, PENDING, Gen, GenContext, OpResult
from harness.generator import op as gen_op
from nemeses import kinds as fault_kinds
from nemeses.kinds import FaultKind

__all__ = [
    "AGENT_WINDOW",
    "LATENCY_WINDOW",
    "SCHEDULERS",
    "AgentObservations",
    "AgentStep",
    "AgentTally",
    "Decision",
    "FaultOp",
    "FaultSpace",
    "Observations",
    "PlansAgentSteps",
    "RandomScheduler",
    "ReplayScheduler",
    "RunView",
    "Scheduler",
    "SchedulerArgs",
    "Summarizing",
    "Wait",
    "coverage_shortfall",
    "fault_steps",
    "make_scheduler",
    "observing",
    "register_scheduler",
    "scheduler_generator",
    "scheduler_names",
]

log = logging.getLogger("clew.nemeses")

#: Completions per ``f`` whose latencies make the "recent" mean of :class:`Observations`.
LATENCY_WINDOW = 200
#: Agent records kept in :attr:`Observations.agent_recent` (the newest, all nodes).
AGENT_WINDOW = 200
_NS = 1_000_000_000
#: Log patterns after which a node no longer leads (etcd's, bugkv's names).
_NOT_LEADING = frozenset({"stepped-down", "leader-lost"})


@dataclass(frozen=True, slots=True)
class FaultOp:
    """Strike (or heal) now or at ``at`` seconds since the run's origin: op ``f`` with
    ``value`` (concrete, or naming ``primaries``). ``why`` is written to the ledger."""

    at: float
    f: str
    value: Any = None
    why: str = ""


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing to do until ``until`` seconds since the origin; then ask again."""

    until: float


#: What a scheduler answers: an op, a wait, or ``None`` (no more faults this run).
Decision = FaultOp | Wait | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpace:
    """What a scheduler may choose from: the requested ``kinds`` (registry entries),
    the ``nodes``, whether the DB can name ``primaries`` (``roles``), the ``interval``
    the run asks faults to hold and the run's ``time_limit``; ``overlap``, how many
    faults the random scheduler may hold at once (1: one at a time, each healed before
    the next), and ``fault_ops``, the run's budget of fault operations (``None``: no
    cap; the :class:`Driver` enforces it for every scheduler). ``agents``: whether the
    run has node agents (it hands them steps: ``docs/agents.md``), so that a
    :class:`PlansAgentSteps` scheduler may hand them more; ``agent_triggers``, the names
    of the log patterns the database adapter offers for ``on = {log = NAME}`` triggers
    (``became-leader``, ...; empty when it offers none)."""

    kinds: Mapping[str, FaultKind]
    nodes: tuple[str, ...]
    roles: bool
    interval: float
    time_limit: float
    overlap: int = 1
    fault_ops: int | None = None
    agents: bool = False
    agent_triggers: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        names: Sequence[str],
        nodes: Sequence[str],
        *,
        roles: bool,
        interval: float,
        time_limit: float,
        overlap: int = 1,
        fault_ops: int | None = None,
        agents: bool = False,
        agent_triggers: Sequence[str] = (),
    ) -> FaultSpace:
        """The space of the kinds called ``names`` (:class:`ConfigError` for unknown)."""
        kinds = {n: fault_kinds.get(n) for n in dict.fromkeys(names)}
        return cls(kinds=kinds, nodes=tuple(nodes), roles=roles, interval=interval,
                   time_limit=time_limit, overlap=overlap, fault_ops=fault_ops,
                   agents=agents, agent_triggers=tuple(agent_triggers))  # fmt: skip

    def plan(self, kind: str, rng: random.Random) -> Any:
        """One random point of ``kind``'s parameter space (its planner)."""
        return self.kinds[kind].plan(list(self.nodes), rng, self.roles)

    def actions(self) -> list[tuple[str, str | None]]:
        """Every ``(kind, target)`` a scheduler may choose (a target ``None``: the kind's
        planner draws it), e.g. ``("pause", "majority")``, ``("partition", "bridge")``:
        a finite action set for learning schedulers."""
        return [(k, t) for k, kind in self.kinds.items() for t in kind.actions(self.roles)]

    def value_for(self, kind: str, target: str | None, rng: random.Random) -> Any:
        """The ``start-<kind>`` value striking ``target`` (see :meth:`actions`)."""
        return self.kinds[kind].value_for(target, list(self.nodes), rng, self.roles)


class Observations:
    """What the run has shown so far, fed every client invocation and completion.

    Counts are per ``(node, f, type)`` (type ok/fail/info). Latencies (completion time
    minus invocation time) are kept per ``f``: a running mean of those completed while no
    fault held (the baseline), and the last :data:`LATENCY_WINDOW` (recent). Memory is
    bounded by the number of nodes, ``f`` values and processes in flight. The node agents'
    records, when a run has agents, are in :attr:`agents`."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str | None, str, str]] = Counter()
        self._started: dict[Any, tuple[int, Any]] = {}
        self._base: dict[str, tuple[int, float]] = {}
        self._recent: dict[str, deque[float]] = {}
        self.ops = 0
        #: What the node agents reported (empty in a run without agents).
        self.agents = AgentObservations()

    def record_agent(self, node: str, rec: Mapping[str, Any]) -> None:
        """Take in one record of ``node``'s agent journal (see :class:`AgentObservations`)."""
        self.agents.record(node, rec)

    def record(self, event: Mapping[str, Any], *, faulted: bool) -> None:
        """Take in one client event (an invocation or a completion)."""
        p = event.get("process")
        kind = event.get("type")
        if kind == "invoke":
            self._started[p] = (int(event.get("time", 0)), event.get("node"))
            return
        if kind not in ("ok", "fail", "info"):
            return
        f = str(event.get("f"))
        self.ops += 1
        started = self._started.pop(p, None)
        node = event.get("node") or (started[1] if started else None)
        self.counts[(node, f, str(kind))] += 1
        if started is None:
            return
        t0 = started[0]
        latency = (int(event.get("time", t0)) - t0) / _NS
        self._recent.setdefault(f, deque(maxlen=LATENCY_WINDOW)).append(latency)
        if not faulted:
            n, total = self._base.get(f, (0, 0.0))
            self._base[f] = (n + 1, total + latency)

    def count(
        self, *, node: str | None = None, f: str | None = None, type: str | None = None
    ) -> int:
        """How many completions match every criterion given."""
        return sum(
            c for (n, ff, t), c in self.counts.items()
            if (node is None or n == node) and (f is None or ff == f)
            and (type is None or t == type)
        )  # fmt: skip

    def by_node(self, type: str) -> dict[str, int]:
        """Node -> completions of ``type`` (ok, fail or info) on it."""
        out: Counter[str] = Counter()
        for (n, _f, t), c in self.counts.items():
            if t == type and n is not None:
                out[n] += c
        return dict(out)

    def latency_shift(self, f: str) -> float | None:
        """Recent mean latency of ``f`` over its mean while no fault held (2.0: twice as
        slow); ``None`` until both exist."""
        n, total = self._base.get(f, (0, 0.0))
        recent = self._recent.get(f)
        if not n or not recent or total <= 0:
            return None
        return (sum(recent) / len(recent)) / (total / n)


@dataclass(frozen=True, slots=True)
class AgentTally:
    """What one node's agent reported so far: ``elections`` (``became-leader`` lines of
    the database's log), ``leader_changes`` (``leader-changed`` lines), ``terms``
    (``term-changed``), process ``exits`` and ``starts``, and the latest ``load1``
    (``None`` before its first ``pressure`` record)."""

    elections: int = 0
    leader_changes: int = 0
    terms: int = 0
    exits: int = 0
    starts: int = 0
    load1: float | None = None


class AgentObservations:
    """The node agents' journal records, as the fault guard collects them (seconds to a
    renewal old). Counts are per ``(node, what)``, ``what`` being ``log:<pattern>`` or
    ``process:<change>`` (bounded by the nodes, the adapter's patterns and the process
    changes); the last :data:`AGENT_WINDOW` of those records are kept in
    :attr:`recent`; the latest ``load1`` per node; and the node the database last said
    leads (:attr:`leader`)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.recent: deque[tuple[str, float | None, str]] = deque(maxlen=AGENT_WINDOW)
        self.load: dict[str, float] = {}
        self.records = 0
        self._leader: str | None = None

    def record(self, node: str, rec: Mapping[str, Any]) -> None:
        """Take in one journal record of ``node``'s agent (others than ``log``,
        ``process`` and ``pressure`` are counted in :attr:`records` only)."""
        self.records += 1
        e = rec.get("e")
        run = rec.get("run")
        at = float(run) if isinstance(run, int | float) else None
        whats: list[str] = []
        if e == "log":
            pats = rec.get("patterns")
            whats = [f"log:{p}" for p in pats if isinstance(p, str)] if isinstance(
                pats, list) else []  # fmt: skip
        elif e == "process" and isinstance(rec.get("change"), str):
            whats = [f"process:{rec['change']}"]
        elif e == "pressure" and isinstance(rec.get("load1"), int | float):
            self.load[node] = float(rec["load1"])
        for what in whats:
            self.counts[(node, what)] += 1
            self.recent.append((node, at, what))
            if what == "log:became-leader":
                self._leader = node
            elif node == self._leader and (
                what in ("process:exit", "process:stop")
                or what.removeprefix("log:") in _NOT_LEADING
            ):
                self._leader = None

    @property
    def leader(self) -> str | None:
        """The node whose ``became-leader`` line came last, unless it has since exited,
        stopped, stepped down or lost its leadership (``None``: the agents do not say)."""
        return self._leader

    def tally(self, since: Counter[tuple[str, str]] | None = None) -> dict[str, AgentTally]:
        """Node -> :class:`AgentTally` of the records since ``since`` (an earlier copy of
        :attr:`counts`; ``None``: the whole run); every node that sent a record."""
        delta = self.counts - since if since is not None else self.counts
        nodes = {n for n, _w in self.counts} | set(self.load)
        return {
            n: AgentTally(
                elections=delta[(n, "log:became-leader")],
                leader_changes=delta[(n, "log:leader-changed")],
                terms=delta[(n, "log:term-changed")],
                exits=delta[(n, "process:exit")],
                starts=delta[(n, "process:start")],
                load1=self.load.get(n),
            )
            for n in sorted(nodes)
        }

    def elections(self, since: Counter[tuple[str, str]] | None = None) -> int:
        """How many leader elections the agents saw since ``since`` (as :meth:`tally`):
        the ``became-leader`` lines of all nodes, or, for a database that logs no such
        line, the most ``leader-changed`` lines of one node."""
        t = self.tally(since).values()
        return max(sum(x.elections for x in t), max((x.leader_changes for x in t), default=0))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunView:
    """What a scheduler sees when asked (see the module docstring). ``now`` is seconds
    since the run's origin; ``rng`` is the scheduler's own seeded stream."""

    now: float
    space: FaultSpace
    active: Mapping[str, Any]
    ledger: Sequence[Mapping[str, Any]]
    observed: Observations
    rng: random.Random


@runtime_checkable
class Scheduler(Protocol):
    """Chooses the run's fault operations, one at a time, as the run goes."""

    #: Recorded as the ledger's ``source`` (random, replay, ...).
    name: str

    def next_op(self, view: RunView) -> Decision:
        """The next fault op (or a wait, or ``None``: done). Called whenever the nemesis
        is free; a :class:`FaultOp` it returns is carried out exactly once."""
        ...


@dataclass(frozen=True, slots=True)
class AgentStep:
    """One step a scheduler hands the node agents before the run: ``step`` as
    ``--agent-step`` takes it (``docs/agents.md``: an offset ``at`` or a trigger ``on``,
    ``hold``, ...), and ``why``, written to the ledger with it."""

    step: Mapping[str, Any]
    why: str = ""


@runtime_checkable
class PlansAgentSteps(Protocol):
    """A scheduler that hands the node agents part of the run's schedule before it starts:
    strikes at offsets on the run's clock, or on triggers (a line of the database's log,
    a change of its process), struck by each node from its own clock, without the
    controller. Asked once, before the run is recorded, in a run with faults."""

    def agent_steps(self, space: FaultSpace) -> Sequence[AgentStep]:
        """The steps for this run (none: nothing to hand over), given the run's fault
        space (its nodes, the kinds the controller strikes, its time limit)."""
        ...


@runtime_checkable
class Summarizing(Protocol):
    """A scheduler that has something to say when the faults are over (coverage, ...)."""

    def summary(self, view: RunView) -> dict[str, Any]:
        """A ``scheduler`` record for the ledger (plain JSON data)."""
        ...


def fault_steps(time_limit: float, interval: float, fault_ops: int | None = None) -> int:
    """How many fault operations the random scheduler makes in a run of ``time_limit``
    seconds: one every ``interval`` seconds from ``interval`` (at most ``fault_ops``)."""
    steps = 0
    while round((steps + 1) * interval, 9) < time_limit:
        steps += 1
    return steps if fault_ops is None else min(steps, max(0, fault_ops))


def coverage_shortfall(
    kinds: Sequence[str],
    time_limit: float,
    interval: float,
    *,
    overlap: int = 1,
    fault_ops: int | None = None,
) -> list[str]:
    """The kinds (of ``kinds``, in order) that cannot strike once in a run of
    ``time_limit`` seconds with a fault op every ``interval`` seconds from ``interval``
    (at most ``fault_ops`` of them), holding at most ``overlap`` faults at once: the
    first ``overlap`` kinds need one op each, every further kind two (a heal to make
    room, then its start)."""
    steps = fault_steps(time_limit, interval, fault_ops)
    cap = max(1, overlap)
    fit = steps if steps <= cap else cap + (steps - cap) // 2
    return list(dict.fromkeys(kinds))[fit:]


class RandomScheduler:
    """The random nemesis, seeded: one fault op every ``interval`` seconds from
    ``interval`` (until the run's time or its ``fault_ops`` budget is spent), drawn with
    the run's scheduler stream, so the same seed gives the same ops.

    With ``overlap`` 1 (the space's; the default) it is Jepsen's one-at-a-time nemesis:
    a requested kind strikes for ``interval`` seconds, with a value drawn by its planner,
    and is healed before the next strikes; kinds that have not struck yet are drawn
    first.

    With ``overlap`` k >= 2 it is Jepsen's combined nemesis: each op is drawn uniformly
    among *starting* any requested kind (a fresh value from its planner, also for a kind
    already active: a second partition replaces the first, a second pause or kill adds
    its targets) and *stopping* an active one, never holding more than k faults at once
    (a kind not active may start only below the cap). The draw leaves out only the ops
    after which the ops left (time, budget) would be too few to strike every kind that
    has not struck yet: so every kind strikes once when the time allows, and otherwise
    every sequence of ops within the cap is a possible draw.

    :meth:`summary` says which kinds did not strike."""

    name = "random"

    def __init__(self) -> None:
        self._next_start: float | None = None
        self._open: tuple[str, float] | None = None  # (kind, heal time), overlap 1
        self._chosen: list[str] = []
        self._held: dict[str, Any] = {}  # kind -> value started and not stopped, overlap > 1
        self._made = 0  # fault ops made (overlap > 1)

    def next_op(self, view: RunView) -> Decision:
        """The next op (see the class)."""
        if view.space.overlap > 1:
            return self._combined(view)
        return self._one_at_a_time(view)

    def _one_at_a_time(self, view: RunView) -> Decision:
        space = view.space
        if self._open is not None:
            kind, at = self._open
            self._open = None
            return FaultOp(at=at, f=f"stop-{kind}", why="its interval is over")
        t = space.interval if self._next_start is None else self._next_start
        if t >= space.time_limit or not space.kinds:
            return None
        fresh = self._fresh(view)
        kind = view.rng.choice(fresh or list(space.kinds))
        self._chosen.append(kind)
        value = space.plan(kind, view.rng)
        self._open = (kind, round(t + space.interval, 3))
        self._next_start = t + 2 * space.interval
        why = "not struck yet" if fresh else "drawn at random"
        return FaultOp(at=round(t, 3), f=f"start-{kind}", value=value, why=why)

    def _combined(self, view: RunView) -> Decision:
        space = view.space
        t = space.interval if self._next_start is None else self._next_start
        budget = space.fault_ops
        spent = budget is not None and self._made >= budget
        if t >= space.time_limit or not space.kinds or spent:
            return None
        cap = space.overlap
        held = [k for k in space.kinds
                if k in self._held and not _last_start_failed(view.ledger, k)]  # fmt: skip
        fresh = self._fresh(view)
        left = fault_steps(space.time_limit - t + space.interval, space.interval)
        if budget is not None:
            left = min(left, budget - self._made)

        def need(h: int, f: int) -> int:  # ops to strike f fresh kinds, h held, cap
            return f + max(0, h + f - cap)

        def after(verb: str, kind: str) -> int:  # need() once this op is made
            if verb == "stop":
                return need(len(held) - 1, len(fresh))
            if kind in held:
                return need(len(held), len(fresh))
            return need(len(held) + 1, len(fresh) - (kind in fresh))

        actions = [("start", k) for k in space.kinds if k in held or len(held) < cap]
        actions += [("stop", k) for k in held]
        # Only ops that leave room to strike every kind not struck yet (all ops, once
        # every kind has struck, or while there is time to spare).
        room = [a for a in actions if after(*a) <= left - 1]
        if room:
            action = view.rng.choice(room)
            why = f"drawn at random among {len(room)} ops"
            if len(room) < len(actions):
                why += " (the others leave no time for a kind not struck yet)"
        elif len(held) < cap and fresh:
            action = ("start", view.rng.choice(fresh))
            why = "not struck yet (too few ops left for every kind)"
        else:
            action = ("stop", view.rng.choice(held))
            why = "making room for a kind not struck yet"
        self._next_start = t + space.interval
        self._made += 1
        verb, kind = action
        if verb == "stop":
            self._held.pop(kind, None)
            return FaultOp(at=round(t, 3), f=f"stop-{kind}", why=why)
        if kind in held:
            why += f"; replaces the active {kind}"
        self._chosen.append(kind)
        value = space.plan(kind, view.rng)
        self._held[kind] = value
        return FaultOp(at=round(t, 3), f=f"start-{kind}", value=value, why=why)

    def _fresh(self, view: RunView) -> list[str]:
        # Struck: applied, or chosen and not (yet) failed. A kind whose strikes all
        # failed is fresh again. Without errors this is exactly the kinds chosen, so the
        # plan made before the run (no ledger) is what the run does.
        failed = _failed_kinds(view.ledger) - _applied_kinds(view.ledger)
        struck = _applied_kinds(view.ledger) | (set(self._chosen) - failed)
        return [k for k in view.space.kinds if k not in struck]

    def summary(self, view: RunView) -> dict[str, Any]:
        """Which requested kinds struck (applied) and which did not, and why."""
        return _coverage(view, "random")


class ReplayScheduler:
    """A stored run's schedule (``{"at", "f", "value"}`` steps), step by step."""

    name = "replay"

    def __init__(self, steps: Sequence[Mapping[str, Any]]) -> None:
        self.steps = list(steps)
        self._i = 0

    def next_op(self, view: RunView) -> Decision:
        """The next step, due at its ``at``."""
        if self._i >= len(self.steps):
            return None
        s = self.steps[self._i]
        self._i += 1
        return FaultOp(at=float(s["at"]), f=str(s["f"]), value=s.get("value"), why="replayed")

    def summary(self, view: RunView) -> dict[str, Any]:
        """Which kinds the replayed schedule starts struck (a kind of the spec that the
        schedule never starts, as in a shrunk one, was not asked for)."""
        starts = [str(s["f"]).removeprefix("start-") for s in self.steps
                  if str(s["f"]).startswith("start-")]  # fmt: skip
        return _coverage(view, "replay", list(dict.fromkeys(starts)), planned=False)


def _applied_kinds(ledger: Sequence[Mapping[str, Any]]) -> set[str]:
    return {str(r.get("kind")) for r in ledger if r.get("event") == "applied"}


def _failed_kinds(ledger: Sequence[Mapping[str, Any]]) -> set[str]:
    return {
        str(r.get("kind")) for r in ledger
        if r.get("event") == "error" and str(r.get("f", "")).startswith("start-")
    }  # fmt: skip


def _last_start_failed(ledger: Sequence[Mapping[str, Any]], kind: str) -> bool:
    """Whether the latest start of ``kind`` in ``ledger`` ended in an error."""
    for r in reversed(ledger):
        if r.get("kind") == kind and r.get("f") == f"start-{kind}" and r.get("event") in (
            "applied", "error"
        ):
            return r.get("event") == "error"
    return False


def _coverage(view: RunView, name: str, requested: Sequence[str] | None = None, *,
              planned: bool = True) -> dict[str, Any]:  # fmt: skip
    """Which of the ``requested`` kinds (default: the fault space's) struck, and why the
    others did not; ``planned`` when the random planner's timing decided the strikes (a
    replay's come from its steps: no shortfall of the run's length is computed)."""
    requested = list(view.space.kinds if requested is None else requested)
    struck = [k for k in requested if k in _applied_kinds(view.ledger)]
    missed = [k for k in requested if k not in struck]
    rec: dict[str, Any] = {"scheduler": name, "requested": requested, "struck": struck,
                           "missed": missed}  # fmt: skip
    if missed:
        space = view.space
        short = coverage_shortfall(requested, space.time_limit, space.interval,
                                   overlap=space.overlap, fault_ops=space.fault_ops,
                                   ) if planned else []  # fmt: skip
        failed = _failed_kinds(view.ledger)
        if short:
            rec["why"] = (
                f"the run allowed {len(requested) - len(short)} strike(s) for {len(requested)} "
                f"kinds (raise --time-limit or --fault-ops, or lower --interval)"
            )
        elif all(k in failed for k in missed):
            rec["why"] = "their strikes failed (see the error records)"
        else:
            rec["why"] = (
                "the run's time ran out before they struck (fault ops ran late)"
                + ("; some strikes failed (see the error records)" if failed else "")
            )
    return rec


# -- the registry of schedulers --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerArgs:
    """What a scheduler factory gets: the run's seed and, for replay, the stored steps."""

    seed: int
    steps: Sequence[Mapping[str, Any]] = field(default_factory=list)
    #: The run's store and suite: where learning schedulers keep their memory.
    store: str = ""
    suite: str = ""


SCHEDULERS: dict[str, Callable[[SchedulerArgs], Scheduler]] = {
    "random": lambda args: RandomScheduler(),
    "replay": lambda args: ReplayScheduler(args.steps),
}


def _learning(name: str) -> Callable[[SchedulerArgs], Scheduler]:
    def factory(args: SchedulerArgs) -> Scheduler:
        from nemeses.schedulers import build  # lazy: that package imports this module

        return build(name, args)

    return factory


SCHEDULERS.update(adaptive=_learning("adaptive"), ldfi=_learning("ldfi"))


def register_scheduler(name: str, factory: Callable[[SchedulerArgs], Scheduler]) -> None:
    """Make ``--scheduler name`` build its scheduler with ``factory``."""
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ConfigError(f"scheduler name {name!r}: use letters, digits, '-' and '_'")
    SCHEDULERS[name] = factory


def scheduler_names() -> tuple[str, ...]:
    """The names ``--scheduler`` accepts."""
    return tuple(SCHEDULERS)


def make_scheduler(name: str, args: SchedulerArgs) -> Scheduler:
    """The scheduler called ``name``; :class:`ConfigError` listing the known ones."""
    factory = SCHEDULERS.get(name)
    if factory is None:
        raise ConfigError(f"unknown scheduler {name!r}; known: {', '.join(SCHEDULERS)}")
    return factory(args)


def scheduler_rng(seed: int) -> random.Random:
    """The schedule's own random stream (adding a kind never shifts the workload's)."""
    return random.Random(f"clew-schedule:{seed}")


# -- driving a scheduler from the run's generator ----------------------------------------------


class Driver:
    """The mutable side of a scheduled run: the scheduler, what it sees, and where its
    choices go. ``active`` and ``ledger`` are read live (the fault set's).

    The space's ``fault_ops`` is the run's budget of fault operations, the same for every
    scheduler: once the scheduler has been given that many ops the driver asks it no more
    (the run's end still heals whatever is active), and the summary it writes to the
    ledger says how many were used."""

    def __init__(
        self,
        scheduler: Scheduler,
        space: FaultSpace,
        *,
        rng: random.Random,
        active: Callable[[], Mapping[str, Any]] = dict,
        ledger: Callable[[], Sequence[Mapping[str, Any]]] = list,
        record: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.space = space
        self.rng = rng
        self.observed = Observations()
        self._active = active
        self._ledger = ledger
        self._record = record
        self.done = False
        self.summarized = False
        #: Fault ops the scheduler has given (counted against ``space.fault_ops``).
        self.fault_ops = 0

    def view(self, now_ns: int) -> RunView:
        """What the scheduler sees at ``now_ns`` (ns since the origin)."""
        return RunView(now=now_ns / _NS, space=self.space, active=dict(self._active()),
                       ledger=list(self._ledger()), observed=self.observed,
                       rng=self.rng)  # fmt: skip

    def ask(self, now_ns: int) -> Decision:
        """The scheduler's next decision (``None`` for ever once it said so, or once the
        budget of fault ops is spent)."""
        if self.done:
            return None
        if self.budget_spent:
            self.done = True
            return None
        d = self.scheduler.next_op(self.view(now_ns))
        if d is None:
            self.done = True
        elif isinstance(d, FaultOp):
            self.fault_ops += 1
        return d

    @property
    def budget_spent(self) -> bool:
        """Whether the run's budget of fault ops (``space.fault_ops``) is used up."""
        budget = self.space.fault_ops
        return budget is not None and self.fault_ops >= budget

    def observe(self, event: Mapping[str, Any]) -> None:
        """Take in one event of the run (client events feed the observations)."""
        if isinstance(event.get("process"), int):
            self.observed.record(event, faulted=bool(self._active()))

    def observe_agent(self, node: str, rec: Mapping[str, Any]) -> None:
        """Take in one record of ``node``'s agent journal (the fault guard calls this as
        it collects the journals)."""
        self.observed.record_agent(node, rec)

    def summarize(self, now_ns: int) -> None:
        """Once: write the scheduler's summary (and, under a budget, the fault ops used)
        to the ledger and warn about requested kinds that never struck."""
        if self.summarized:
            return
        self.summarized = True
        budget = self.space.fault_ops
        if not isinstance(self.scheduler, Summarizing) and budget is None:
            return
        rec = (
            self.scheduler.summary(self.view(now_ns))
            if isinstance(self.scheduler, Summarizing)
            else {"scheduler": self.scheduler.name}
        )
        if budget is not None:
            rec = {**rec, "fault_ops": self.fault_ops, "fault_ops_budget": budget,
                   "budget_spent": self.budget_spent}  # fmt: skip
        if rec.get("missed"):
            log.warning("fault kinds that never struck: %s (%s)", ", ".join(rec["missed"]),
                        rec.get("why", ""))  # fmt: skip
        if self._record is not None:
            self._record({"event": "scheduler", **rec})


class SchedulerGen(Gen):
    """The nemesis generator asking a :class:`Driver`'s scheduler for each op. A value:
    the decision it got is remembered (``memo``), so asking it again gives the same op."""

    __slots__ = ("driver", "memo")

    listens = False

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.memo: Any = None

    def op(self, ctx: GenContext) -> OpResult:
        if not ctx.threads:
            return None
        if not ctx.is_free(NEMESIS):
            return (PENDING, self)
        d = self.memo
        if d is None or (isinstance(d, Wait) and ctx.time >= round(d.until * _NS)):
            # Ask (again, once a wait is over). The answer is kept: this value is asked
            # again until its op is taken, and must give the same op every time.
            d = self.driver.ask(ctx.time)
            self.memo = d = _DONE if d is None else d
        if d is _DONE:
            return None
        if isinstance(d, Wait):
            return (PENDING, self)
        assert isinstance(d, FaultOp)
        o = {"f": d.f, "value": d.value, "at": d.at, "time": max(0, round(d.at * _NS))}
        if d.why:
            o["why"] = d.why
        r = gen_op(o, ctx)
        if r is None:
            return None
        return (r[0], SchedulerGen(self.driver))


_DONE = object()


class _Observing(Gen):
    """``gen``, with every event also shown to ``driver`` first."""

    __slots__ = ("driver", "gen")

    def __init__(self, driver: Driver, gen: Any) -> None:
        self.driver = driver
        self.gen = gen

    def op(self, ctx: GenContext) -> OpResult:
        r = gen_op(self.gen, ctx)
        if r is None:
            return None
        o, g = r
        return (o, self if g is self.gen else (None if g is None else _Observing(self.driver, g)))

    def update(self, ctx: GenContext, event: Any) -> Any:
        self.driver.observe(event)
        g = (
            self.gen.update(ctx, event)
            if isinstance(self.gen, Gen) and self.gen.listens
            else self.gen
        )
        return self if g is self.gen else _Observing(self.driver, g)


class _Summary(Gen):
    """Exhausted at once, after writing the driver's summary (a phase of its own)."""

    __slots__ = ("driver",)

    listens = False

    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    def op(self, ctx: GenContext) -> OpResult:
        self.driver.summarize(ctx.time)
        return None


def scheduler_generator(driver: Driver) -> Gen:
    """A nemesis-thread generator of ``driver``'s scheduler's ops (see the module
    docstring); wrap it in :func:`harness.generator.nemesis`."""
    return SchedulerGen(driver)


def observing(driver: Driver, gen: Any) -> Gen:
    """``gen`` with every invocation and completion also fed to ``driver``'s observations."""
    return _Observing(driver, gen)


def summary_phase(driver: Driver) -> Gen:
    """A phase that writes the scheduler's summary (once) and ends at once."""
    return _Summary(driver)
