"""``--scheduler adaptive``: a fault agent that learns, run after run (tabular Q-learning
with a softmax policy, as Mallory does; α = 0.1, γ = 0.6).

* **State**: a compact summary of what the system did since the last decision — whether
  the node serving acknowledged ops stayed, moved or vanished (a leader change), the
  share of ``fail``/``info`` completions (none / low / mid / high), the worst latency
  shift (normal / slow / very slow), the kinds active now and the last kind struck. A
  string such as ``lead=moved err=mid lat=slow act=kill last=kill``.
* **Actions**: the fault space's ``(kind, target)`` actions (:meth:`FaultSpace.actions`)
  whose kind is not active, and ``hold`` (strike nothing now). Each strike is healed
  ``interval`` seconds later; decisions come every ``interval`` seconds, so strikes of
  different kinds may overlap. The **budget** of strikes per run is the random
  scheduler's (one per ``2 * interval`` from ``interval``), so both make as many fault
  ops.
* **Reward**: novelty of the state reached, ``1 / sqrt(visits)`` (visits counted across
  runs), plus :data:`ANOMALY_REWARD` to every (state, action) of a run that came out
  invalid (credited when the next run starts and finds that run's verdict).
* **Memory**: Q-values and visit counts in ``<store>/schedulers/adaptive-<suite>.json``
  (:mod:`nemeses.schedulers.memory`), kept across runs and campaigns of a suite; reset
  it with ``python -m nemeses.schedulers reset adaptive --store S --suite X`` (or
  :func:`reset_memory`).

Every choice is explained in ``faults.jsonl`` (the intent's ``why``: state, chosen action,
its probability and the best value estimates), and the end-of-faults ``scheduler`` record
carries the episode and the memory's size.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import ClewError
from harness.record import RunResults, read_fault_records
from nemeses.scheduler import (
    Decision,
    FaultOp,
    Observations,
    RunView,
    SchedulerArgs,
    Wait,
)
from nemeses.schedulers import memory

__all__ = [
    "ALPHA",
    "ANOMALY_REWARD",
    "GAMMA",
    "HOLD",
    "TEMPERATURE",
    "AdaptiveScheduler",
    "Learner",
    "StateTracker",
    "reset_memory",
]

ALPHA = 0.1
GAMMA = 0.6
#: Softmax temperature: lower is greedier.
TEMPERATURE = 0.25
#: Reward given to each (state, action) of a run that came out invalid.
ANOMALY_REWARD = 5.0
#: The value of a (state, action) never tried: optimistic, so that untried ones get tried.
INITIAL_Q = 1.0
HOLD = "hold"


def action_key(kind: str, target: str | None) -> str:
    """``kind:target`` (``kind`` alone for a kind whose planner draws the target)."""
    return kind if target is None else f"{kind}:{target}"


class Learner:
    """Tabular Q-learning over string states and actions, with softmax choice. Its whole
    state is :meth:`to_json` (Q-values, visit counts, runs seen, anomalies credited)."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        data = data or {}
        self.q: dict[str, dict[str, float]] = {
            s: {a: float(v) for a, v in av.items()} for s, av in dict(data.get("q", {})).items()
        }
        self.visits: Counter[str] = Counter({s: int(n) for s, n in
                                             dict(data.get("visits", {})).items()})  # fmt: skip
        self.runs = int(data.get("runs", 0))
        self.anomalies = int(data.get("anomalies", 0))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data :meth:`__init__` reads back."""
        return {"q": self.q, "visits": dict(self.visits), "runs": self.runs,
                "anomalies": self.anomalies}  # fmt: skip

    def value(self, state: str, action: str) -> float:
        """Q(state, action) (:data:`INITIAL_Q` if never updated)."""
        return self.q.get(state, {}).get(action, INITIAL_Q)

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

    def credit(self, pairs: Sequence[Sequence[str]], reward: float) -> None:
        """Add ``α · reward`` to every (state, action) of ``pairs`` (an invalid run's)."""
        for s, a in pairs:
            self.q.setdefault(s, {})[a] = round(self.value(s, a) + ALPHA * reward, 6)

    def probabilities(self, state: str, actions: Sequence[str]) -> list[float]:
        """The softmax policy over ``actions`` in ``state`` (temperature
        :data:`TEMPERATURE`)."""
        values = [self.value(state, a) / TEMPERATURE for a in actions]
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


def _bucket_lat(shift: float | None) -> str:
    if shift is None:
        return "?"
    return "normal" if shift < 1.5 else "slow" if shift < 3 else "vslow"


class StateTracker:
    """Turns the live :class:`Observations` into the agent's state string, by the
    difference of the counts since the previous call."""

    def __init__(self) -> None:
        self._last: Counter[tuple[str | None, str, str]] = Counter()
        self._lead: str | None = None

    def state(self, observed: Observations, active: Mapping[str, Any], last: str) -> str:
        """The summary of what happened since the previous call (see the module)."""
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
        lead = served.most_common(1)[0][0] if served else None
        if lead is None:
            moved = "none"
        elif self._lead is None or lead == self._lead:
            moved = "same"
        else:
            moved = "moved"
        if lead is not None:
            self._lead = lead
        fs = {f for (_n, f, _t) in observed.counts}
        shifts = [s for f in fs if (s := observed.latency_shift(f)) is not None]
        lat = _bucket_lat(max(shifts) if shifts else None)
        act = ",".join(sorted(active)) or "-"
        return f"lead={moved} err={_bucket_err(share)} lat={lat} act={act} last={last or '-'}"


class AdaptiveScheduler:
    """The learning agent (see the module docstring). ``path`` is its memory file
    (``None``: learn within this object only, as the unit tests do)."""

    name = "adaptive"

    def __init__(self, learner: Learner | None = None, *, path: Path | None = None,
                 episode: str | None = None) -> None:  # fmt: skip
        self.learner = learner or Learner()
        self.path = path
        self.episode = episode or uuid.uuid4().hex[:12]
        self.tracker = StateTracker()
        self.pairs: list[list[str]] = []
        self._prev: tuple[str, str] | None = None
        self._next_decision: float | None = None
        self._heals: list[tuple[float, str]] = []  # (due, kind)
        self._strikes = 0
        self._last_kind = ""
        self._credited: str | None = None

    @classmethod
    def for_run(cls, args: SchedulerArgs) -> AdaptiveScheduler:
        """The agent of one run: its memory read from the store (the previous run's
        verdict credited first, if it was invalid)."""
        path = memory.memory_path("adaptive", args.store, args.suite)
        data = memory.load(path)
        learner = Learner(data)
        me = cls(learner, path=path)
        last = data.get("episode")
        run = find_episode_run(args.store, str(last.get("id"))) if isinstance(last, dict) else None
        if isinstance(last, dict) and run is not None:
            results = RunResults.read(run)
            if results is not None and results.valid is False:
                learner.credit(last.get("pairs", []), ANOMALY_REWARD)
                learner.anomalies += 1
                me._credited = str(last.get("id"))
        return me

    def _available(self, view: RunView) -> list[str]:
        acts = [action_key(k, t) for k, t in view.space.actions() if k not in view.active]
        return [HOLD, *acts]

    def next_op(self, view: RunView) -> Decision:
        """A due heal first, else (at each decision point, every ``interval`` s) a choice."""
        space = view.space
        if self._next_decision is None:
            self._next_decision = space.interval
        self._heals.sort()
        if self._heals and self._heals[0][0] <= self._next_decision:
            due, kind = self._heals.pop(0)
            return FaultOp(at=round(due, 3), f=f"stop-{kind}", why="its interval is over")
        if self._next_decision >= space.time_limit or not space.kinds:
            if self._heals:
                due, kind = self._heals.pop(0)
                return FaultOp(at=round(due, 3), f=f"stop-{kind}", why="its interval is over")
            return None
        if view.now < self._next_decision - 1e-9:
            return Wait(until=self._next_decision)
        t = self._next_decision
        self._next_decision = t + space.interval
        return self._decide(view, t)

    def _budget(self, view: RunView) -> int:
        """The random scheduler's strikes in a run like this one (the same budget)."""
        return strike_slots(view.space.time_limit, view.space.interval)

    def _decide(self, view: RunView, t: float) -> Decision:
        state = self.tracker.state(view.observed, view.active, self._last_kind)
        novelty = self.learner.visit(state)
        actions = self._available(view)
        if self._prev is not None:
            s, a = self._prev
            self.learner.update(s, a, novelty, state, actions)
        if self._strikes >= self._budget(view):
            actions = [HOLD]
        action, p = self.learner.choose(state, actions, view.rng)
        self._prev = (state, action)
        self.pairs.append([state, action])
        ranked = sorted(actions, key=lambda a: -self.learner.value(state, a))[:3]
        est = ", ".join(f"{a}={self.learner.value(state, a):.3f}" for a in ranked)
        why = (f"adaptive: state [{state}] (novelty {novelty:.2f}); chose {action} "
               f"p={p:.2f} of {len(actions)}; best estimates {est}")  # fmt: skip
        if action == HOLD:
            return Wait(until=self._next_decision or t)
        kind, _, target = action.partition(":")
        value = view.space.value_for(kind, target or None, view.rng)
        self._strikes += 1
        self._last_kind = kind
        self._heals.append((t + view.space.interval, kind))
        return FaultOp(at=round(t, 3), f=f"start-{kind}", value=value, why=why)

    def summary(self, view: RunView) -> dict[str, Any]:
        """The episode (its id, the (state, action) pairs), the memory's size; and the
        memory written to the store, with this episode pending its verdict."""
        self.learner.runs += 1
        if self.path is not None:
            data = self.learner.to_json()
            data["episode"] = {"id": self.episode, "pairs": self.pairs}
            memory.save(self.path, data)
        return {
            "scheduler": "adaptive", "episode": self.episode, "choices": len(self.pairs),
            "strikes": self._strikes, "states_known": len(self.learner.visits),
            "runs_learned": self.learner.runs, "anomalies_credited": self.learner.anomalies,
            "credited_previous": self._credited,
            "memory": str(self.path) if self.path else None,
        }  # fmt: skip


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


def find_episode_run(store: str | Path, episode: str, *, newest: int = 50) -> Path | None:
    """The run directory (of the ``newest`` under ``store``) whose ledger's ``scheduler``
    record names ``episode``."""
    runs = sorted(Path(store).glob("*/*/faults.jsonl"), key=lambda p: p.stat().st_mtime,
                  reverse=True)[:newest]  # fmt: skip
    for path in runs:
        try:
            records = read_fault_records(path.parent)
        except ClewError:
            continue
        if any(r.get("event") == "scheduler" and r.get("episode") == episode for r in records):
            return path.parent
    return None


def reset_memory(store: str | Path, suite: str) -> bool:
    """Forget the adaptive agent's memory for ``suite`` in ``store``; whether it existed."""
    return memory.reset(memory.memory_path("adaptive", store, suite))
