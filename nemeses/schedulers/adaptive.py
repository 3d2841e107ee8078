"""``--scheduler adaptive``: a fault agent that learns, run after run (tabular Q-learning
with a softmax policy, as Mallory does; α = 0.3, γ = 0.6).

* **State**: a compact summary of what the system did since the last decision — whether
  the node serving acknowledged ops stayed, moved or vanished (a leader change), or whether
  the same two nodes served in two windows in a row (``split``: two leaders); the share of
  ``fail``/``info`` completions (none / low / mid / high); and the faults holding now, by
  role. A string such as ``lead=moved err=mid act=clock@leader,partition@leader``.
  A database whose every node serves acknowledged ops (etcd answers on any member: the
  clients name the member they asked) shows it in the run's first window, before any
  fault: two or more nodes serving. There ``lead`` says whether the *set* of nodes serving
  changed (``moved``), and there is no ``split``: many nodes serving is its normal state,
  not two leaders, and the ``leader`` role asks the database for its primaries.
  In a run with node agents (the run hands them steps, or ``--agent-watch``) ``lead``
  says what the database's own log says instead: ``split`` as before, else the elections the agents
  saw in the window — ``moved`` (one), ``churn`` (two or more) — or, with none, ``same``
  (``none`` if no node served): the same part with a new meaning and one more value, so
  the learner's states do not multiply. The ``leader`` role is then the node whose
  ``became-leader`` line came last (unless it exited or stepped down since).
* **Actions** (moves): ``hold``; ``start:<kind>@<role>`` — roles ``leader`` (the node
  serving acknowledged ops now), ``follower`` (another node), or the kind's own planner
  (``@any``; ``@all`` for a kill of every node) — for a kind not holding (a partition may
  replace the one holding); ``stop:<kind>`` for a kind holding. Faults hold until the agent
  stops them, so a run's faults overlap (a clock step inside a partition) or follow one
  another (a heal, then a kill) as the agent chooses: sequences and overlaps are what it
  learns. A kill is the exception: a crash-restart, restarted before the next decision
  (as random holds it one interval; a kill of every node at once), so there is no
  ``stop:kill`` move. A decision is
  taken every ``interval`` seconds, once something was acknowledged (before that the
  state is unknown: a no-op, as Mallory does).
* **Budget**: at most the random scheduler's fault operations per run (:func:`op_budget`,
  starts and stops alike); a start is allowed only while the stops of what already
  holds still fit (the run's end heals whatever is left).
* **Reward**: novelty of the behaviour observed, ``1 / sqrt(visits)`` of the *transition*
  from the previous window's behaviour (its ``lead`` and ``err`` parts) to this one's
  (visits counted across runs), such as ``lead=same err=none>lead=moved err=mid``: what the
  system did, not which faults the agent itself holds. (Counting whole states made every
  new combination of its own faults novel: the agent was paid for stacking faults until
  nothing was served, and chose about as random does.) :data:`SPLIT_REWARD` when two
  nodes served acknowledged ops in one window (two leaders: an anomaly seen live).
* **Anomalies found** are learned per move, as a bandit over the fault space: when a run
  starts it reads the previous run's verdict and counts, for each fault it started, the
  runs that made it and how many came out invalid. A start move's **lift** is the invalid
  rate of the runs that made it over that of the runs that did not (each shrunk toward
  the suite's by :data:`PRIOR_RUNS` pseudo-runs), clipped to :data:`LIFT_RANGE`; the policy
  adds ``EVIDENCE_WEIGHT · ln(lift)`` to its value. (A ratio to the suite's rate would
  shrink as the agent exploits it: the more runs find the bug, the higher the suite's
  rate.) Only a contrast with the valid runs tells the trigger from the faults that
  happened to strike beside it (crediting every move of an invalid run, as the agent did
  until 2026-12-05, raised ``hold`` and the bystanders as much as the trigger). With no
  invalid run in memory every lift is 1 and the policy is the novelty learner's alone.
* **Generalisation**: a (state, action) never updated is valued at the mean of that
  action's values in the states where it was (:data:`INITIAL_Q` if nowhere): what a move
  did elsewhere is the first guess of what it does here.
* **Memory**: Q-values and visit counts in ``<store>/schedulers/adaptive-<suite>.json``
  (:mod:`nemeses.schedulers.memory`), kept across runs and campaigns of a suite; reset
  it with ``python -m nemeses.schedulers reset adaptive --store S --suite X`` (or
  :func:`reset_memory`).

Every choice is explained in ``faults.jsonl``: a strike or heal by its intent's ``why``
(state, novelty, chosen move, its probability and the best value estimates), a decision
to hold by the same text in the end-of-faults ``scheduler`` record's ``holds`` (one entry
a decision at most: bounded by the run's length over ``interval``), which also carries
the episode and the memory's size.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.record import RunResults
from nemeses.scheduler import (
    Decision,
    FaultOp,
    FaultSpace,
    Observations,
    RunView,
    SchedulerArgs,
    Wait,
    fault_steps,
)
from nemeses.schedulers import memory

__all__ = [
    "ALPHA",
    "EVIDENCE_WEIGHT",
    "GAMMA",
    "HOLD",
    "LIFT_RANGE",
    "PRIOR_RUNS",
    "SPLIT_REWARD",
    "TEMPERATURE",
    "AdaptiveScheduler",
    "Learner",
    "StateTracker",
    "op_budget",
    "reset_memory",
    "settle_memory",
]

#: Learning rate: higher than Mallory's 0.1, since a campaign is ≤ 10 runs of ~10 decisions.
ALPHA = 0.3
GAMMA = 0.6
#: Softmax temperature: lower is greedier.
TEMPERATURE = 0.25
#: How far anomaly evidence tilts the policy: ``EVIDENCE_WEIGHT · ln(lift)`` is added to a
#: start move's value (a lift of 3 makes it about 9 times as likely at the temperature).
EVIDENCE_WEIGHT = 0.5
#: A move's lift is clipped to this range: a few runs say little.
LIFT_RANGE = (1 / 3, 5.0)
#: Pseudo-runs at the suite's invalid rate added to each move's count (shrinkage).
PRIOR_RUNS = 2.0
#: Reward for reaching a state in which two nodes served acknowledged ops (two leaders).
SPLIT_REWARD = 2.0
#: A node's share of a window's acknowledged ops for it to count as serving.
SERVING_SHARE = 0.2
#: The value of a (state, action) never tried: optimistic, so that untried ones get tried.
INITIAL_Q = 1.0
HOLD = "hold"


def action_key(kind: str, target: str | None) -> str:
    """``kind:target`` (``kind`` alone for a kind whose planner draws the target)."""
    return kind if target is None else f"{kind}:{target}"


class Learner:
    """Tabular Q-learning over string states and actions, with softmax choice, tilted by
    each start move's anomaly evidence. Its whole state is :meth:`to_json` (Q-values, visit
    counts, runs seen, runs judged and found invalid, and each move's runs and invalid
    runs)."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        data = data or {}
        self.q: dict[str, dict[str, float]] = {
            s: {a: float(v) for a, v in av.items()} for s, av in dict(data.get("q", {})).items()
        }
        self.visits: Counter[str] = Counter({s: int(n) for s, n in
                                             dict(data.get("visits", {})).items()})  # fmt: skip
        self.runs = int(data.get("runs", 0))
        #: Runs whose verdict was read, and how many of them were invalid.
        self.judged = int(data.get("judged", 0))
        self.anomalies = min(int(data.get("anomalies", 0)), self.judged)
        #: start move -> [runs that made it, of which invalid]
        self.moves: dict[str, list[int]] = {
            m: [int(c[0]), int(c[1])] for m, c in dict(data.get("moves", {})).items()
        }

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data :meth:`__init__` reads back."""
        return {"q": self.q, "visits": dict(self.visits), "runs": self.runs,
                "judged": self.judged, "anomalies": self.anomalies,
                "moves": self.moves}  # fmt: skip

    def judge(self, moves: Sequence[str], invalid: bool) -> None:
        """Count a run's verdict: for each distinct start move it made, one run, invalid or
        not (holds and stops are not evidence of anything)."""
        self.judged += 1
        self.anomalies += int(invalid)
        for move in sorted({m for m in moves if m.startswith("start:")}):
            counts = self.moves.setdefault(move, [0, 0])
            counts[0] += 1
            counts[1] += int(invalid)

    def lift(self, action: str) -> float | None:
        """How much likelier the runs that made ``action`` were to come out invalid than
        the runs that did not (the relative risk): each invalid rate shrunk toward the
        suite's by :data:`PRIOR_RUNS` pseudo-runs, clipped to :data:`LIFT_RANGE`. ``None``
        for a move that is not a start, or while no run has come out invalid."""
        if not action.startswith("start:") or not self.anomalies or not self.judged:
            return None
        base = self.anomalies / self.judged
        runs, invalid = self.moves.get(action, (0, 0))
        with_it = (invalid + PRIOR_RUNS * base) / (runs + PRIOR_RUNS)
        without = (self.anomalies - invalid + PRIOR_RUNS * base) / (
            self.judged - runs + PRIOR_RUNS)
        low, high = LIFT_RANGE
        return min(max(with_it / without, low), high)

    def evidence(self, action: str) -> float:
        """What the anomaly evidence adds to ``action``'s value: ``EVIDENCE_WEIGHT ·
        ln(lift)`` (0 without evidence)."""
        lift = self.lift(action)
        return 0.0 if lift is None else EVIDENCE_WEIGHT * math.log(lift)

    def score(self, state: str, action: str) -> float:
        """What the policy ranks ``action`` by in ``state``: its Q-value plus its
        anomaly evidence."""
        return self.value(state, action) + self.evidence(action)

    def value(self, state: str, action: str) -> float:
        """Q(state, action); if never updated, the mean of ``action``'s values in other
        states (:data:`INITIAL_Q` if it has none)."""
        q = self.q.get(state, {}).get(action)
        if q is not None:
            return q
        elsewhere = [av[action] for av in self.q.values() if action in av]
        return sum(elsewhere) / len(elsewhere) if elsewhere else INITIAL_Q

    def visit(self, state: str) -> float:
        """Count a visit of ``state``; its novelty reward ``1 / sqrt(visits)``."""
        self.visits[state] += 1
        return 1.0 / math.sqrt(self.visits[state])

    def update(self, state: str, action: str, reward: float, nxt: str,
               nxt_actions: Sequence[str]) -> float:  # fmt: skip
        """One Q-learning step: Q(s,a) += α (r + γ max Q(s',·) − Q(s,a)); the new Q."""
        best = max((self.value(nxt, a) for a in nxt_actions), default=0.0)
        q = self.value(state, action)
        q += ALPHA * (reward + GAMMA * best - q)
        self.q.setdefault(state, {})[action] = round(q, 6)
        return q

    def probabilities(self, state: str, actions: Sequence[str]) -> list[float]:
        """The softmax policy over ``actions`` in ``state`` (temperature
        :data:`TEMPERATURE`) on their :meth:`score`."""
        values = [self.score(state, a) / TEMPERATURE for a in actions]
        top = max(values)
        weights = [math.exp(v - top) for v in values]
        total = sum(weights)
        return [w / total for w in weights]

    def choose(self, state: str, actions: Sequence[str], rng: random.Random) -> tuple[str, float]:
        """An action drawn by the softmax policy, and its probability."""
        probs = self.probabilities(state, actions)
        x = rng.random()
        for a, p in zip(actions, probs, strict=True):
            x -= p
            if x <= 0:
                return a, p
        return actions[-1], probs[-1]


def _bucket_err(share: float | None) -> str:
    if share is None:
        return "idle"
    if share == 0:
        return "none"
    return "low" if share < 0.2 else "mid" if share < 0.6 else "high"


def _bucket_elections(n: int) -> str:
    return "same" if n == 0 else "moved" if n == 1 else "churn"


class StateTracker:
    """Turns the live :class:`Observations` into the agent's state string, by the
    difference of the counts since the previous call; also names the node leading now.
    With node agents' records, the ``lead`` part and the leader come from them (see the
    module docstring)."""

    def __init__(self) -> None:
        self._last: Counter[tuple[str | None, str, str]] = Counter()
        self._agents_last: Counter[tuple[str, str]] = Counter()
        self._lead: str | None = None
        self._serving: set[str] = set()
        self.leader: str | None = None
        self.split = False
        #: Whether every node serves (two or more did in the first window that served:
        #: ``None`` until one has).
        self.many_serve: bool | None = None
        #: What the system did in the last window (the state without the agent's faults),
        #: and the transition to it from the window before (the novelty's key).
        self.behaviour = ""
        self.transition = ""

    def state(self, observed: Observations, active: str, *, agents: bool = False) -> str:
        """The summary of what happened since the previous call (see the module);
        ``agents``: the run has node agents watching the database's log (the fault guard
        journals records of its own in every run with faults: their arrival says
        nothing of agents)."""
        delta = observed.counts - self._last
        self._last = Counter(observed.counts)
        served: Counter[str] = Counter()
        types: Counter[str] = Counter()
        for (node, _f, t), c in delta.items():
            types[t] += c
            if t == "ok" and node is not None:
                served[node] += c
        total = sum(types.values())
        share = (types["fail"] + types["info"]) / total if total else None
        ok = sum(served.values())
        serving = [n for n, c in served.most_common() if ok and c / ok >= SERVING_SHARE]
        lead = serving[0] if serving else None
        if self.many_serve is None and serving:
            self.many_serve = len(serving) >= 2
        before = self._serving
        # Two leaders: the same two (or more) nodes serving in two windows in a row (a
        # correct hand-over mixes two nodes in one window at most).
        self.split = not self.many_serve and len(set(serving) & before) >= 2
        self._serving = set(serving)
        if self.split:
            moved = "split"
        elif lead is None:
            moved = "none"
        elif self.many_serve:
            moved = "same" if not before or set(serving) == before else "moved"
        elif self._lead is None or lead == self._lead:
            moved = "same"
        else:
            moved = "moved"
        if lead is not None and not self.many_serve:
            # (where every node serves, the one serving most is not the leader: the
            # leader role then asks the database for its primaries)
            self._lead = self.leader = lead
        if agents:
            seen = observed.agents
            elections = seen.elections(self._agents_last)
            self._agents_last = Counter(seen.counts)
            if not self.split:
                moved = "none" if lead is None and not elections else _bucket_elections(elections)
            if seen.leader is not None:
                self.leader = seen.leader
        behaviour = f"lead={moved} err={_bucket_err(share)}"
        self.transition = f"{self.behaviour or 'start'}>{behaviour}"
        self.behaviour = behaviour
        return f"{behaviour} act={active or '-'}"


#: Roles a kind's start may take: ``leader``/``follower`` where the kind can strike one
#: named node, the kind's planner (``any``), and a kill of every node (``all``).
def _roles(kind: str) -> list[str]:
    if kind in ("partition", "pause", "kill", "clock"):
        return ["leader", "follower", "any", *(["all"] if kind == "kill" else [])]
    return ["any"]


class AdaptiveScheduler:
    """The learning agent (see the module docstring). ``path`` is its memory file
    (``None``: learn within this object only, as the unit tests do)."""

    name = "adaptive"

    def __init__(self, learner: Learner | None = None, *, path: Path | None = None,
                 episode: str | None = None, store: str = "") -> None:  # fmt: skip
        self.learner = learner or Learner()
        self.path = path
        #: The run's store: the next run finds this episode's verdict there.
        self.store = store
        self.episode = episode or uuid.uuid4().hex[:12]
        self.tracker = StateTracker()
        self.pairs: list[list[str]] = []
        #: The decisions to hold (no fault op, so no intent to explain them): when, why.
        self.holds: list[dict[str, Any]] = []
        self._prev: tuple[str, str] | None = None
        self._next_decision: float | None = None
        self._holding: dict[str, str] = {}  # kind -> role
        self._ops = 0
        self._strikes = 0
        self._judged: dict[str, Any] | None = None
        self._ending: list[str] = []

    @classmethod
    def for_run(cls, args: SchedulerArgs) -> AdaptiveScheduler:
        """The agent of one run: its memory read from the store, the previous run's
        verdict counted first (:func:`judge_pending`)."""
        path = memory.memory_path("adaptive", args.store, args.suite)
        data = memory.load(path)
        learner = Learner(data)
        me = cls(learner, path=path, store=memory.absolute(args.store))
        me._judged = judge_pending(learner, data.get("episode"), args.store)
        return me

    def _active(self) -> str:
        return ",".join(f"{k}@{r}" for k, r in sorted(self._holding.items()))

    def _available(self, view: RunView) -> list[str]:
        """The moves allowed now: within the budget, the stops of what holds still fit."""
        budget = op_budget(view.space)
        # (a kill never holds at a decision: it was restarted just before, see next_op)
        moves = [HOLD, *(f"stop:{k}" for k in sorted(self._holding))]
        if self._ops + 1 + len(self._holding) > budget:
            return moves
        for kind in view.space.kinds:
            if kind in self._holding and kind != "partition":
                continue
            moves += [f"start:{kind}@{r}" for r in _roles(kind)]
        return moves

    def next_op(self, view: RunView) -> Decision:
        """At each decision point (every ``interval`` s), a move; at the run's end, the
        stops of what still holds."""
        space = view.space
        if self._next_decision is None:
            self._next_decision = space.interval
        if self._holding.get("kill") == "all":
            # Every node dead: only the disks are left to test, and the clients must still
            # be using the keys written just before when the store serves again (failing
            # ops move a workload on to fresh keys quickly; ldfi restarts it so too).
            return self._stop("kill", view.now, "adaptive: a kill of every node is a "
                              "crash-restart, restarted at once")  # fmt: skip
        if self._next_decision >= space.time_limit or not space.kinds:
            if self._holding:
                return self._stop(sorted(self._holding)[0], max(view.now, space.time_limit),
                                  "adaptive: the run's faults are over")  # fmt: skip
            return None
        if view.now < self._next_decision - 1e-9:
            return Wait(until=self._next_decision)
        if "kill" in self._holding:
            # A kill is a crash-restart: restarted before the next decision, as random
            # holds it one interval. Held until the agent chose to stop it, a kill of
            # every node left nothing served for most of a run, and it struck again only
            # after a stop: buffered-log's trigger (kill every node while writes are
            # acknowledged) came rarely (docs/schedulers.md).
            return self._stop("kill", view.now, "adaptive: a kill is a crash-restart, "
                              "restarted an interval after it struck")  # fmt: skip
        t = self._next_decision
        self._next_decision = t + space.interval
        if not any(typ == "ok" for (_n, _f, typ) in view.observed.counts):
            # No state yet (nothing acknowledged): a no-op, as Mallory does.
            return Wait(until=self._next_decision)
        return self._decide(view, t)

    def _stop(self, kind: str, at: float, why: str) -> FaultOp:
        """The stop of ``kind`` (holding) that the agent makes without a decision."""
        self._holding.pop(kind)
        self._ops += 1
        return FaultOp(at=round(at, 3), f=f"stop-{kind}", why=why)

    def _decide(self, view: RunView, t: float) -> Decision:
        state = self.tracker.state(view.observed, self._active(), agents=view.space.agents)
        novelty = self.learner.visit(self.tracker.transition)
        reward = novelty + (SPLIT_REWARD if self.tracker.split else 0.0)
        actions = self._available(view)
        if self._prev is not None:
            s, a = self._prev
            self.learner.update(s, a, reward, state, actions)
        action, p = self.learner.choose(state, actions, view.rng)
        self._prev = (state, action)
        self.pairs.append([state, action])
        ranked = sorted(actions, key=lambda a: -self.learner.score(state, a))[:3]
        est = ", ".join(f"{a}={self.learner.score(state, a):.3f}" for a in ranked)
        why = (f"adaptive: state [{state}] (novelty {novelty:.2f} of "
               f"{self.tracker.transition}"
               f"{', two nodes serving' if self.tracker.split else ''}); chose {action} "
               f"p={p:.2f} of {len(actions)}{self._evidence_note(action)}; "
               f"best estimates {est}")  # fmt: skip
        if action == HOLD:
            self.holds.append({"at": round(t, 3), "why": why})
            return Wait(until=self._next_decision or t)
        verb, _, what = action.partition(":")
        kind, _, role = what.partition("@")
        self._ops += 1
        if verb == "stop":
            self._holding.pop(kind, None)
            return FaultOp(at=round(t, 3), f=f"stop-{kind}", why=why)
        self._holding[kind] = role
        self._strikes += 1
        return FaultOp(at=round(t, 3), f=f"start-{kind}", value=self._value(view, kind, role),
                       why=why)  # fmt: skip

    def _evidence_note(self, action: str) -> str:
        """``, lift ×L (i of n runs with it invalid; I of N in all)`` when anomaly evidence
        weighed on ``action``."""
        lift = self.learner.lift(action)
        if lift is None:
            return ""
        runs, invalid = self.learner.moves.get(action, (0, 0))
        return (f", lift x{lift:.2f} ({invalid} of {runs} runs with it invalid; "
                f"{self.learner.anomalies} of {self.learner.judged} in all)")  # fmt: skip

    def _value(self, view: RunView, kind: str, role: str) -> Any:
        """The start value striking ``role``: the leader is the one the node agents name
        (see :class:`StateTracker`), else the node serving now (the database's primary
        when none has served yet, or where every node serves: asking it takes seconds
        under load; the kind's planner for a database that cannot name one)."""
        space = view.space
        nodes = list(space.nodes)
        if role == "any":
            return space.plan(kind, view.rng)
        if role == "all":
            return space.value_for(kind, "all", view.rng)
        lead = self.tracker.leader
        if role == "leader" and lead is None:
            if kind == "clock" or not space.roles:
                return space.plan(kind, view.rng)
            return "primaries" if kind == "partition" else {"targets": "primaries"}
        if role == "leader":
            target = lead
        else:
            target = view.rng.choice(sorted(n for n in nodes if n != lead) or nodes)
        if kind == "partition":
            rest = [n for n in nodes if n != target]
            return {target: rest, **{n: [target] for n in rest}}
        if kind == "clock":
            planned = space.plan("clock", view.rng)
            if planned.get("kind") == "bump":
                offset = next(iter(planned["offsets"].values()))
                return {"kind": "bump", "offsets": {target: offset}}
            return {**planned, "nodes": [target]} if "nodes" in planned else planned
        return {"targets": "nodes", "nodes": [target]}

    def summary(self, view: RunView) -> dict[str, Any]:
        """The episode (its id, the (state, action) pairs), the memory's size; and the
        memory written to the store, with this episode pending its verdict."""
        self.learner.runs += 1
        if self.path is not None:
            data = self.learner.to_json()
            data["episode"] = {"id": self.episode, "pairs": self.pairs, "store": self.store}
            memory.save(self.path, data)
        return {
            "scheduler": "adaptive", "episode": self.episode, "choices": len(self.pairs),
            "holds": self.holds,
            "strikes": self._strikes, "fault_ops": self._ops,
            "states_known": len(self.learner.visits),
            "runs_learned": self.learner.runs, "runs_judged": self.learner.judged,
            "anomalies_learned": self.learner.anomalies,
            "judged_previous": self._judged,
            "memory": str(self.path) if self.path else None,
        }  # fmt: skip


def op_budget(space: FaultSpace) -> int:
    """The fault operations a run may make: the run's budget (``--fault-ops``, which the
    driver enforces for every scheduler), else as many as the random scheduler makes
    (:func:`nemeses.scheduler.fault_steps`: one every ``interval``)."""
    steps = fault_steps(space.time_limit, space.interval)
    return steps if space.fault_ops is None else min(steps, space.fault_ops)


def strike_slots(time_limit: float, interval: float) -> int:
    """How many strikes the random scheduler makes in a run: one every ``2 * interval``
    seconds from ``interval`` while before ``time_limit``."""
    return len(_slots(time_limit, interval))


def _slots(time_limit: float, interval: float) -> list[float]:
    out, t = [], interval
    while t < time_limit and interval > 0:
        out.append(t)
        t += 2 * interval
    return out


def judge_pending(learner: Learner, episode: Any, store: str | Path) -> dict[str, Any] | None:
    """Count the verdict of the memory's pending ``episode`` (the last run it chose for)
    into ``learner``: its run is looked for in the store that episode recorded (a campaign's
    runs live in a store of their own, so the next campaign's first run must look there),
    then in ``store``. ``{"id", "valid", "run"}`` when counted; ``None`` when there is no
    episode, its run is gone, or the run has no verdict."""
    if not isinstance(episode, dict) or not episode.get("id"):
        return None
    eid = str(episode["id"])
    run = memory.find_episode_run([str(episode.get("store") or ""), store], eid)
    results = RunResults.read(run) if run is not None else None
    if results is None or results.valid not in (True, False):
        return None
    pairs = episode.get("pairs", [])
    learner.judge([str(p[1]) for p in pairs if isinstance(p, list | tuple) and len(p) == 2],
                  invalid=results.valid is False)  # fmt: skip
    return {"id": eid, "valid": results.valid, "run": str(run)}


def settle_memory(store: str | Path, suite: str) -> dict[str, Any] | None:
    """Count the pending episode's verdict into the adaptive memory of ``suite`` in
    ``store`` now, rather than at the next run's start (so a memory copied elsewhere carries
    it), and save it without the episode; what :func:`judge_pending` returned."""
    path = memory.memory_path("adaptive", store, suite)
    data = memory.load(path)
    if not data:
        return None
    learner = Learner(data)
    judged = judge_pending(learner, data.get("episode"), store)
    memory.save(path, learner.to_json())
    return judged


def reset_memory(store: str | Path, suite: str) -> bool:
    """Forget the adaptive agent's memory for ``suite`` in ``store``; whether it existed."""
    return memory.reset(memory.memory_path("adaptive", store, suite))
