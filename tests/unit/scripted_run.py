"""A scheduler stepped over a scripted run, for the schedulers' unit tests: no cluster, no
clock; the test says what the clients saw and how long a fault op takes."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nemeses.scheduler import FaultOp, FaultSpace, Observations, RunView, Scheduler, Wait


@dataclass
class ScriptedRun:
    """One run of ``scheduler`` over ``space``. Before each decision ``feed(run, now)`` may
    record in ``observed`` what the clients (or node agents) saw by ``now``; a ``Wait``
    moves the clock to its end, a fault op to its time plus ``op_seconds``, and what it
    starts holds (in ``active``, as the next decision sees it) until its stop."""

    scheduler: Scheduler
    space: FaultSpace
    observed: Observations = field(default_factory=Observations)
    op_seconds: float = 0.3
    feed: Callable[[ScriptedRun, float], None] | None = None
    decisions: list[FaultOp | Wait] = field(default_factory=list)
    active: dict[str, Any] = field(default_factory=dict)
    #: When the run's first start op landed (seconds), once one has.
    first_start_landed: float | None = None

    @property
    def ops(self) -> list[FaultOp]:
        """The fault ops decided so far, in order."""
        return [d for d in self.decisions if isinstance(d, FaultOp)]

    def step(self, *, until: float = math.inf, max_ops: int | None = None) -> ScriptedRun:
        """Ask for decisions from time 0 until ``until`` seconds, ``max_ops`` fault ops, or
        the scheduler's end (``None``), whichever comes first; returns this run."""
        now = 0.0
        while now < until and (max_ops is None or len(self.ops) < max_ops):
            if self.feed is not None:
                self.feed(self, now)
            view = RunView(now=now, space=self.space, active=dict(self.active), ledger=[],
                           observed=self.observed, rng=random.Random(1))  # fmt: skip
            decision = self.scheduler.next_op(view)
            if decision is None:
                break
            self.decisions.append(decision)
            if isinstance(decision, Wait):
                now = max(now, decision.until)
                continue
            now = max(now, decision.at) + self.op_seconds
            kind = decision.f.split("-", 1)[1]
            if decision.f.startswith("start-"):
                self.active[kind] = decision.value
                if self.first_start_landed is None:
                    self.first_start_landed = now
            else:
                self.active.pop(kind, None)
        return self


def served(observed: Observations, p: int, at: float, *, node: str = "n1",
           fs: tuple[str, ...] = ("write", "read")) -> None:  # fmt: skip
    """Record in ``observed`` that process ``p`` had each of ``fs`` acknowledged by
    ``node`` at ``at`` seconds (invoked and completed at that instant)."""
    for f in fs:
        e = {"process": p, "f": f, "node": node, "time": int(at * 1_000_000_000)}
        observed.record({**e, "type": "invoke"}, faulted=False)
        observed.record({**e, "type": "ok"}, faulted=False)
