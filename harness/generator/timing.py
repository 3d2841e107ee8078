"""Combinators about *when*: rates, delays, time limits, and the special sleep/log ops.

Times inside generators are ints in ns since the run started (``ctx.time``, ``op["time"]``);
durations given to these functions are in **seconds** (floats allowed). An op whose
``time`` is in the future is not lost: the interpreter waits until then (or until a
completion arrives) and asks again.
"""

from __future__ import annotations

import math
from typing import Any

from harness.generator.context import GenContext
from harness.generator.core import PENDING, Gen, Op, OpResult, op

__all__ = ["delay", "log", "sleep", "stagger", "time_limit"]

NS_PER_S = 1_000_000_000


def _ns(name: str, seconds: float) -> int:
    """``seconds`` as ns, after checking it is a non-negative finite number."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"`{name}` must be a number of seconds, got {seconds!r}")
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"`{name}` must be a non-negative finite number, got {seconds!r}")
    return round(seconds * NS_PER_S)


def _at(o: Op, t: int) -> Op:
    """``o`` scheduled no earlier than ``t`` (a copy when the time changes)."""
    return o if o["time"] >= t else {**o, "time": t}


class Stagger(Gen):
    """Ops of ``gen`` at random intervals averaging ``dt2 / 2`` ns, from ``next_time``."""

    __slots__ = ("dt2", "gen", "listens", "next_time")

    def __init__(self, dt2: int, next_time: int | None, gen: Any) -> None:
        self.dt2 = dt2
        self.next_time = next_time
        self.gen = gen
        self.listens = isinstance(gen, Gen) and gen.listens

    def op(self, ctx: GenContext) -> OpResult:
        r = op(self.gen, ctx)
        if r is None:
            return None
        o, g = r
        if o is PENDING:
            return (PENDING, self if g is self.gen else Stagger(self.dt2, self.next_time, g))
        nt = ctx.time if self.next_time is None else self.next_time
        o = _at(o, nt)  # type: ignore[arg-type]
        if g is None:
            return (o, None)
        return (o, Stagger(self.dt2, nt + int(ctx.rng.random() * self.dt2), g))

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        g = self.gen.update(ctx, event)
        return self if g is self.gen else Stagger(self.dt2, self.next_time, g)


def stagger(dt: float, gen: Any) -> Gen:
    """Ops of ``gen`` spaced by random intervals drawn uniformly from [0, 2·dt] seconds:
    on average one op every ``dt`` seconds **in total**, however many threads there are
    (a rate of 1/dt ops/s). When ops fall behind schedule (every thread busy) they catch
    up, so the long-run rate holds.

    Example: ``stagger(0.01, workload)`` – about 100 ops/s;
    ``nemesis(stagger(10, faults))`` – a fault every 10 s or so.
    """
    return Stagger(2 * _ns("dt", dt), None, gen)


class Delay(Gen):
    """Ops of ``gen`` exactly ``dt`` ns apart, on the schedule that starts at its first op."""

    __slots__ = ("dt", "gen", "listens", "next_time")

    def __init__(self, dt: int, next_time: int | None, gen: Any) -> None:
        self.dt = dt
        self.next_time = next_time
        self.gen = gen
        self.listens = isinstance(gen, Gen) and gen.listens

    def op(self, ctx: GenContext) -> OpResult:
        r = op(self.gen, ctx)
        if r is None:
            return None
        o, g = r
        if o is PENDING:
            return (PENDING, self if g is self.gen else Delay(self.dt, self.next_time, g))
        nt = o["time"] if self.next_time is None else self.next_time  # type: ignore[index]
        o = _at(o, nt)  # type: ignore[arg-type]
        return (o, None if g is None else Delay(self.dt, nt + self.dt, g))

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        g = self.gen.update(ctx, event)
        return self if g is self.gen else Delay(self.dt, self.next_time, g)


def delay(dt: float, gen: Any) -> Gen:
    """Ops of ``gen`` exactly ``dt`` seconds apart: the first at once, the k-th at
    ``start + k·dt``. An op that could not run on time (threads busy) runs as soon as it
    can, and the ones after it keep the original schedule (catching up).

    Example: ``delay(1, repeat({"f": "read"}))`` – one read per second.
    """
    return Delay(_ns("dt", dt), None, gen)


class TimeLimit(Gen):
    """Ops of ``gen`` until ``deadline`` (set to the first op's time + ``dt``)."""

    __slots__ = ("deadline", "dt", "gen", "listens")

    def __init__(self, dt: int, deadline: int | None, gen: Any) -> None:
        self.dt = dt
        self.deadline = deadline
        self.gen = gen
        self.listens = isinstance(gen, Gen) and gen.listens

    def op(self, ctx: GenContext) -> OpResult:
        deadline, gen = self.deadline, self.gen
        if deadline is not None and ctx.time >= deadline:
            return None
        r = gen.op(ctx) if isinstance(gen, Gen) else op(gen, ctx)
        if r is None:
            return None
        o, g = r
        if o is PENDING:
            return (PENDING, self if g is gen else TimeLimit(self.dt, deadline, g))
        t = o["time"]  # type: ignore[index]
        if deadline is None:
            deadline = t + self.dt
        elif t >= deadline:
            return None
        if g is gen and deadline is self.deadline:
            return (o, self)
        return (o, None if g is None else TimeLimit(self.dt, deadline, g))

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        g = self.gen.update(ctx, event)
        return self if g is self.gen else TimeLimit(self.dt, self.deadline, g)


def time_limit(dt: float, gen: Any) -> Gen:
    """Ops of ``gen`` for ``dt`` seconds, counted from the time of its first op; an op
    scheduled at or after the deadline is dropped and the generator ends. Ops in flight
    at the deadline still complete.

    Example: ``time_limit(60, any_(clients(workload), nemesis(faults)))``.
    """
    return TimeLimit(_ns("dt", dt), None, gen)


def sleep(dt: float) -> Op:
    """A special op that keeps one thread busy for ``dt`` seconds. It is never journaled
    and never passed to ``update``. Within :func:`phases` it delays the next phase, since
    that phase waits for every thread, the sleeping one included.

    Example: ``phases(workload, log("waiting for recovery"), sleep(10), final_reads)``.
    """
    return {"type": "sleep", "value": _ns("dt", dt) / NS_PER_S}


def log(msg: str) -> Op:
    """A special op that logs ``msg`` (logger ``clew.generator``, level INFO) when it is
    reached. It takes no time, is never journaled and is never passed to ``update``.

    Example: ``phases(workload, log("healing the network"), heal)``.
    """
    return {"type": "log", "value": str(msg)}
