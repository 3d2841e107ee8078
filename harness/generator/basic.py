"""Combinators about *which* ops and *how many*: sequencing, counting, choosing, mapping.

Every combinator is a small immutable :class:`~harness.generator.core.Gen`. The examples
use :func:`~harness.generator.testing.simulate`, which runs a generator against instant
fake clients and returns the history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import FunctionType
from typing import Any

from harness.generator.context import GenContext
from harness.generator.core import (
    _UNSET,
    PENDING,
    Gen,
    Op,
    OpResult,
    Seq,
    _fn_op,
    op,
    soonest,
    update,
)

__all__ = [
    "any_",
    "cycle",
    "filter_",
    "flip_flop",
    "limit",
    "map_",
    "mix",
    "once",
    "phases",
    "repeat",
    "synchronize",
    "then",
    "until_ok",
]

COMPLETION_TYPES = frozenset({"ok", "fail", "info"})


def _check_count(name: str, n: int | None, *, allow_none: bool) -> None:
    if n is None and allow_none:
        return
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {n!r}")


def _listens(g: Any) -> bool:
    """Whether ``g`` wants events (see :attr:`Gen.listens`)."""
    return isinstance(g, Gen) and g.listens


def _update_all(gens: tuple[Any, ...], ctx: GenContext, event: Op) -> tuple[Any, ...]:
    """Every generator of ``gens`` updated; ``gens`` itself if none changed."""
    out: list[Any] | None = None
    for i, g in enumerate(gens):
        if isinstance(g, Gen) and g.listens:
            g2 = g.update(ctx, event)
            if g2 is not g:
                if out is None:
                    out = list(gens)
                out[i] = g2
    return gens if out is None else tuple(out)


# -- counting --------------------------------------------------------------------------------


class Limit(Gen):
    """At most ``n`` ops of ``gen``."""

    __slots__ = ("gen", "listens", "n")

    def __init__(self, n: int, gen: Any) -> None:
        self.n = n
        self.gen = gen
        self.listens = isinstance(gen, Gen) and gen.listens

    def op(self, ctx: GenContext) -> OpResult:
        n, gen = self.n, self.gen
        if n <= 0:
            return None
        r = gen.op(ctx) if isinstance(gen, Gen) else op(gen, ctx)
        if r is None:
            return None
        o, g = r
        if o is PENDING:
            return (PENDING, self if g is gen else Limit(n, g))
        return (o, Limit(n - 1, g) if n > 1 else None)

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        g = self.gen.update(ctx, event)
        return self if g is self.gen else Limit(self.n, g)


def limit(n: int, gen: Any) -> Gen:
    """At most ``n`` ops from ``gen``, then exhausted.

    Example: ``limit(3, repeat({"f": "read"}))`` yields three reads.
    """
    _check_count("n", n, allow_none=False)
    return Limit(n, gen)


def once(gen: Any) -> Gen:
    """Only the first op of ``gen``: ``once(fn)`` calls ``fn`` once where ``fn`` alone
    would be called forever. Same as ``limit(1, gen)``."""
    return Limit(1, gen)


class Repeat(Gen):
    """``gen``'s first op again and again (``n`` times, or forever when ``n`` is None)."""

    __slots__ = ("gen", "listens", "n")

    def __init__(self, gen: Any, n: int | None) -> None:
        self.gen = gen
        self.listens = isinstance(gen, Gen) and gen.listens
        self.n = n

    def op(self, ctx: GenContext) -> OpResult:
        n = self.n
        if n is not None and n <= 0:
            return None
        r = op(self.gen, ctx)
        if r is None:
            return None
        o = r[0]
        if o is PENDING:
            return (PENDING, self)
        if n is None:
            return (o, self)
        return (o, Repeat(self.gen, n - 1) if n > 1 else None)

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        g = self.gen.update(ctx, event)
        return self if g is self.gen else Repeat(g, self.n)


def repeat(gen: Any, n: int | None = None) -> Gen:
    """``gen``'s first op over and over, without ever advancing ``gen``; ``n`` times or
    forever. Callables are re-called each time, so they give fresh ops.

    Examples: ``repeat({"f": "read"})`` – reads forever;
    ``repeat(lambda ctx: {"f": "write", "value": ctx.rng.randrange(5)}, 100)`` – 100
    random writes.
    """
    _check_count("n", n, allow_none=True)
    return Repeat(gen, n)


class Cycle(Gen):
    """``gen`` to exhaustion, then again from the start (``n`` times, or forever)."""

    __slots__ = ("cur", "listens", "n", "orig")

    def __init__(self, orig: Any, cur: Any, n: int | None) -> None:
        self.orig = orig
        self.cur = cur
        self.n = n
        self.listens = isinstance(cur, Gen) and cur.listens

    def op(self, ctx: GenContext) -> OpResult:
        n = self.n
        if n is not None and n <= 0:
            return None
        r = op(self.cur, ctx)
        if r is None:
            if n is not None and n <= 1:
                return None
            n = None if n is None else n - 1
            r = op(self.orig, ctx)
            if r is None:  # exhausted from the start: never loop forever
                return None
            o, g = r
            return (o, Cycle(self.orig, self.orig if o is PENDING else g, n))
        o, g = r
        if o is PENDING:
            return (PENDING, self if g is self.cur else Cycle(self.orig, g, n))
        return (o, Cycle(self.orig, g, n))

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        g = self.cur.update(ctx, event)
        return self if g is self.cur else Cycle(self.orig, g, self.n)


def cycle(gen: Any, n: int | None = None) -> Gen:
    """All of ``gen``, then all of it again from the beginning: ``n`` times in total, or
    forever. A generator that yields nothing ends the cycle at once.

    Example: ``cycle([{"f": "start"}, {"f": "stop"}], 2)`` – start, stop, start, stop.
    """
    _check_count("n", n, allow_none=True)
    return Cycle(gen, gen, n)


# -- sequencing ------------------------------------------------------------------------------


class Synchronize(Gen):
    """Pending until every thread of the context is idle; then ``gen`` (unwrapped)."""

    __slots__ = ("gen", "listens")

    def __init__(self, gen: Any) -> None:
        self.gen = gen
        self.listens = isinstance(gen, Gen) and gen.listens

    def op(self, ctx: GenContext) -> OpResult:
        if not ctx.all_threads_free():
            return (PENDING, self)
        return op(self.gen, ctx)

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        g = self.gen.update(ctx, event)
        return self if g is self.gen else Synchronize(g)


def synchronize(gen: Any) -> Gen:
    """Wait until every thread (of this generator's context) is idle, then run ``gen``.

    Example: ``[writes, synchronize({"f": "read"})]`` – the read starts only after every
    write has completed.
    """
    return Synchronize(gen)


def phases(*gens: Any) -> Gen:
    """Each generator in turn, each starting only when all threads are idle: no op of
    one phase overlaps an op of the next.

    Example: ``phases(time_limit(60, workload), log("healing"), final_reads)``.
    """
    return Seq(tuple(Synchronize(g) for g in gens), 0, _UNSET)


def then(a: Any, b: Any) -> Gen:
    """``a`` to exhaustion, wait for all threads to be idle, then ``b``.

    (Jepsen's ``then`` takes its arguments the other way round, for threading macros;
    here ``then(a, b)`` reads "a, then b".)
    """
    return Seq((a, Synchronize(b)), 0, _UNSET)


class FlipFlop(Gen):
    """One op from ``gens[i]``, then one from the other, alternately."""

    __slots__ = ("a", "b", "listens")

    def __init__(self, a: Any, b: Any) -> None:
        self.a = a
        self.b = b
        self.listens = _listens(a) or _listens(b)

    def op(self, ctx: GenContext) -> OpResult:
        r = op(self.a, ctx)
        if r is None:
            return None
        o, g = r
        if o is PENDING:
            return (PENDING, self if g is self.a else FlipFlop(g, self.b))
        # Swap roles: the other one goes next; a side found exhausted when asked ends it.
        return (o, FlipFlop(self.b, g))

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        a, b = update(self.a, ctx, event), update(self.b, ctx, event)
        return self if (a is self.a and b is self.b) else FlipFlop(a, b)


def flip_flop(a: Any, b: Any) -> Gen:
    """An op from ``a``, then one from ``b``, then ``a`` … until either is exhausted.

    Example (a nemesis schedule): ``flip_flop(repeat(start_partition), repeat(heal))``.
    """
    return FlipFlop(a, b)


# -- choosing --------------------------------------------------------------------------------


class Mix(Gen):
    """A uniformly random choice among ``gens`` for each op; ``i`` is the pending choice
    (-1 until the first ask)."""

    __slots__ = ("family", "gens", "i", "listens")

    def __init__(
        self,
        gens: tuple[Any, ...],
        i: int,
        listens: bool | None = None,
        family: list[Mix | None] | None = None,
    ) -> None:
        self.gens = gens
        self.i = i
        self.listens = any(map(_listens, gens)) if listens is None else listens
        # The Mix of the same gens for each choice, made once and shared by all of them:
        # with plain callables the gens never change, so asking allocates no new Mix.
        self.family: list[Mix | None] = family if family is not None else [None] * len(gens)

    def op(self, ctx: GenContext) -> OpResult:
        gens, i = self.gens, self.i
        rng = ctx.rng
        if i < 0:
            i = int(rng.random() * len(gens))  # cheaper than randrange, still seeded
        while True:
            g = gens[i]
            if g.__class__ is FunctionType:  # the usual case: a function making ops
                r = _fn_op(g, ctx)
            else:
                r = g.op(ctx) if isinstance(g, Gen) else op(g, ctx)
            if r is not None:
                break
            gens = gens[:i] + gens[i + 1 :]
            if not gens:
                return None
            i = int(rng.random() * len(gens))
        o, g2 = r
        if o is PENDING:
            if g2 is not g:
                gens = (*gens[:i], g2, *gens[i + 1 :])
            return (PENDING, Mix(gens, i))
        if g2 is g and gens is self.gens:  # the common case: plain callables
            k = int(rng.random() * len(gens))
            family = self.family
            nxt = family[k]
            if nxt is None:
                nxt = family[k] = Mix(gens, k, self.listens, family)
            return (o, nxt)
        if g2 is None:
            gens = gens[:i] + gens[i + 1 :]
            if not gens:
                return (o, None)
        elif g2 is not g:
            gens = (*gens[:i], g2, *gens[i + 1 :])
        return (o, Mix(gens, int(rng.random() * len(gens))))

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        gens = _update_all(self.gens, ctx, event)
        return self if gens is self.gens else Mix(gens, self.i)


def mix(gens: Iterable[Any]) -> Gen | None:
    """Each op from one of ``gens`` chosen uniformly at random (seeded); exhausted ones
    drop out, and the mix ends when all have.

    Example: ``mix([read, write, cas])`` where each is a callable making a fresh op, e.g.
    ``def write(ctx): return {"f": "write", "value": ctx.rng.randrange(5)}``.
    """
    gs = tuple(gens)
    return Mix(gs, -1) if gs else None


class Any_(Gen):
    """The soonest op of any of ``gens``."""

    __slots__ = ("gens", "listens")

    def __init__(self, gens: tuple[Any, ...]) -> None:
        self.gens = gens
        self.listens = any(map(_listens, gens))

    def op(self, ctx: GenContext) -> OpResult:
        best: OpResult = None
        best_i = -1
        live: list[Any] = []
        for g in self.gens:
            r = op(g, ctx)
            if r is None:
                continue
            live.append(g)
            if r[0] is not PENDING and soonest(best, r) is r:
                best, best_i = r, len(live) - 1
        if not live:
            return None
        if best is None:
            return (PENDING, self if len(live) == len(self.gens) else Any_(tuple(live)))
        o, g2 = best
        if g2 is None:
            del live[best_i]
        else:
            live[best_i] = g2
        return (o, Any_(tuple(live)) if live else None)

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        gens = _update_all(self.gens, ctx, event)
        return self if gens is self.gens else Any_(gens)


def any_(*gens: Any) -> Gen | None:
    """Whichever of ``gens`` has the soonest op (earliest ``time``; the first given on a
    tie); ends when all have ended. Every generator hears every event.

    Example: ``any_(clients(workload), nemesis(faults))`` – the usual top level.
    """
    return Any_(tuple(gens)) if gens else None


# -- transforming ----------------------------------------------------------------------------


class Map(Gen):
    """``fn`` applied to each op of ``gen``."""

    __slots__ = ("fn", "gen", "listens")

    def __init__(self, fn: Callable[[Op], Op], gen: Any) -> None:
        self.fn = fn
        self.gen = gen
        self.listens = isinstance(gen, Gen) and gen.listens

    def op(self, ctx: GenContext) -> OpResult:
        r = op(self.gen, ctx)
        if r is None:
            return None
        o, g = r
        if o is PENDING:
            return (PENDING, self if g is self.gen else Map(self.fn, g))
        return (self.fn(o), None if g is None else Map(self.fn, g))  # type: ignore[arg-type]

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        g = self.gen.update(ctx, event)
        return self if g is self.gen else Map(self.fn, g)


def map_(fn: Callable[[Op], Op], gen: Any) -> Gen:
    """Each op of ``gen`` passed through ``fn`` (which returns the op to use; it gets a
    fresh dict it may modify).

    Example: ``map_(lambda o: {**o, "key": 7}, workload)`` – every op on key 7.
    """
    return Map(fn, gen)


class Filter(Gen):
    """Only the ops of ``gen`` that ``pred`` accepts."""

    __slots__ = ("gen", "listens", "pred")

    def __init__(self, pred: Callable[[Op], bool], gen: Any) -> None:
        self.pred = pred
        self.gen = gen
        self.listens = isinstance(gen, Gen) and gen.listens

    def op(self, ctx: GenContext) -> OpResult:
        g = self.gen
        while True:
            r = op(g, ctx)
            if r is None:
                return None
            o, g2 = r
            if o is PENDING:
                return (PENDING, self if g2 is self.gen else Filter(self.pred, g2))
            if self.pred(o):  # type: ignore[arg-type]
                return (o, None if g2 is None else Filter(self.pred, g2))
            g = g2

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        g = self.gen.update(ctx, event)
        return self if g is self.gen else Filter(self.pred, g)


def filter_(pred: Callable[[Op], bool], gen: Any) -> Gen:
    """Only the ops of ``gen`` for which ``pred(op)`` is true; the others are skipped.
    (A ``gen`` that never yields an accepted op makes this loop forever; bound it.)

    Example: ``filter_(lambda o: o["f"] != "cas", workload)``.
    """
    return Filter(pred, gen)


# -- reacting to completions -----------------------------------------------------------------


class UntilOk(Gen):
    """``gen`` until one of its ops completes ``ok``; ``active`` are the processes of its
    ops still in flight."""

    __slots__ = ("active", "done", "gen")

    def __init__(self, gen: Any, active: frozenset[Any], done: bool) -> None:
        self.gen = gen
        self.active = active
        self.done = done

    def op(self, ctx: GenContext) -> OpResult:
        if self.done:
            return None
        r = op(self.gen, ctx)
        if r is None:
            return None
        o, g = r
        if o is PENDING:
            return (PENDING, self if g is self.gen else UntilOk(g, self.active, False))
        return (o, UntilOk(g, self.active | {o["process"]}, False))  # type: ignore[index]

    def update(self, ctx: GenContext, event: Op) -> Any:
        g = update(self.gen, ctx, event)
        p = event.get("process")
        t = event.get("type")
        if p in self.active and t in COMPLETION_TYPES:
            if t == "ok":
                return UntilOk(g, frozenset(), True)
            return UntilOk(g, self.active - {p}, False)
        return self if g is self.gen else UntilOk(g, self.active, self.done)


def until_ok(gen: Any) -> Gen:
    """Ops of ``gen`` until one of them completes ``ok``; then exhausted (ops already in
    flight still complete).

    Example: ``until_ok(repeat({"f": "read"}))`` – read until a read succeeds.
    """
    return UntilOk(gen, frozenset(), False)
