"""Combinators about *who*: which threads a generator feeds, and how many at once.

They work by showing the inner generator a restricted :class:`GenContext` (fewer
threads), so the op dicts it yields get their process from the right threads, and by
routing each event to the part of the generator whose thread it concerns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from harness.generator.basic import COMPLETION_TYPES, Any_
from harness.generator.context import NEMESIS, GenContext, Thread
from harness.generator.core import PENDING, Gen, Op, OpResult, op, soonest, update

__all__ = [
    "clients",
    "concurrency_limit",
    "each_thread",
    "nemesis",
    "on_threads",
    "process_limit",
    "reserve",
]


class OnThreads(Gen):
    """``gen`` restricted to the threads ``pred`` accepts. ``cache`` remembers the last
    restricted view made (``[parent, parent.threads, view]``), shared by successive
    values."""

    __slots__ = ("cache", "gen", "listens", "pred")

    def __init__(self, pred: Callable[[Thread], bool], gen: Any, cache: list[Any]) -> None:
        self.pred = pred
        self.gen = gen
        self.listens = isinstance(gen, Gen) and gen.listens
        self.cache = cache

    def _view(self, ctx: GenContext) -> GenContext:
        # The restricted view is made once per parent context and reused (only its time
        # changes): generators never keep a context, so reuse is safe, and it is cheap.
        cache = self.cache
        if cache[0] is ctx and cache[1] is ctx.threads:
            v: GenContext = cache[2]
            v.time = ctx.time
            return v
        v = ctx.view(tuple(t for t in ctx.threads if self.pred(t)))
        cache[:] = [ctx, ctx.threads, v]
        return v

    def op(self, ctx: GenContext) -> OpResult:
        gen, cache = self.gen, self.cache
        if cache[0] is ctx and cache[1] is ctx.threads:  # _view's hit, inlined (hot path)
            v: GenContext = cache[2]
            v.time = ctx.time
        else:
            v = self._view(ctx)
        r = gen.op(v) if isinstance(gen, Gen) else op(gen, v)
        if r is None:
            return None
        o, g = r
        if g is gen:
            return (o, self)
        return (o, None if g is None else OnThreads(self.pred, g, cache))

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens or not self.pred(ctx.thread_of(event["process"])):
            return self
        g = self.gen.update(self._view(ctx), event)
        return self if g is self.gen else OnThreads(self.pred, g, self.cache)


def on_threads(pred: Callable[[Thread], bool], gen: Any) -> Gen:
    """``gen``, fed only by the threads for which ``pred(thread)`` is true, and told only
    of events on those threads.

    Example: ``on_threads(lambda t: t in (0, 1), writes)`` – only threads 0 and 1 write.
    """
    return OnThreads(pred, gen, [None, None, None])


def _is_client(t: Thread) -> bool:
    return t != NEMESIS


def _is_nemesis(t: Thread) -> bool:
    return t == NEMESIS


def clients(gen: Any) -> Gen:
    """``gen`` on the client threads only (never the nemesis).

    Example: ``any_(clients(workload), nemesis(faults))``.
    """
    return OnThreads(_is_client, gen, [None, None, None])


def nemesis(gen: Any) -> Gen:
    """``gen`` on the nemesis thread only. Without a nemesis thread its ops are dropped
    (a dict no thread can run is exhausted), so it ends instead of waiting forever.

    Example: ``nemesis(cycle([{"f": "start-partition"}, sleep(5), {"f": "stop-partition"}]))``.
    """
    return OnThreads(_is_nemesis, gen, [None, None, None])


def reserve(*args: Any) -> Gen:
    """``reserve(n1, g1, n2, g2, ..., default)``: the first ``n1`` client threads run
    ``g1``, the next ``n2`` run ``g2``, and so on; every other thread of the context runs
    ``default``. (At the top level that includes the nemesis thread: wrap the whole thing
    in :func:`clients` to keep it off.) The soonest op of the parts wins.

    Example: ``clients(reserve(2, writes, reads))`` – threads 0–1 write, the rest read.
    """
    if len(args) % 2 != 1:
        raise TypeError("reserve takes pairs of (count, generator) and then a default generator")
    parts: list[Gen] = []
    start = 0
    reserved: set[Thread] = set()
    for i in range(0, len(args) - 1, 2):
        n, g = args[i], args[i + 1]
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"reserve: count #{i // 2 + 1} must be a non-negative int, got {n!r}")
        ts = frozenset(range(start, start + n))
        reserved |= ts
        start += n
        parts.append(OnThreads(ts.__contains__, g, [None, None, None]))
    rest = frozenset(reserved)
    parts.append(OnThreads(lambda t: t not in rest, args[-1], [None, None, None]))
    return Any_(tuple(parts))


_DONE: Final[Any] = object()


class EachThread(Gen):
    """A copy of ``fresh`` per thread; ``gens`` holds the copies that have moved on
    (``_DONE`` once a copy is exhausted)."""

    __slots__ = ("fresh", "gens")

    def __init__(self, fresh: Any, gens: dict[Thread, Any]) -> None:
        self.fresh = fresh
        self.gens = gens

    def op(self, ctx: GenContext) -> OpResult:
        gens = self.gens
        done: list[Thread] = []
        best: OpResult = None
        best_t: Thread | None = None
        for t in ctx.free_threads():
            g = gens.get(t, self.fresh)
            if g is _DONE:
                continue
            r = op(g, ctx.view((t,)))
            if r is None:
                done.append(t)
            elif r[0] is not PENDING and soonest(best, r) is r:
                best, best_t = r, t
        if done:
            gens = {**gens, **dict.fromkeys(done, _DONE)}
        if best is None:
            if all(gens.get(t, self.fresh) is _DONE for t in ctx.threads):
                return None
            return (PENDING, self if gens is self.gens else EachThread(self.fresh, gens))
        o, g2 = best
        assert best_t is not None
        return (o, EachThread(self.fresh, {**gens, best_t: _DONE if g2 is None else g2}))

    def update(self, ctx: GenContext, event: Op) -> Any:
        t = ctx.thread_of(event["process"])
        g = self.gens.get(t, self.fresh)
        if g is _DONE or t not in ctx.threads:
            return self
        g2 = update(g, ctx.view((t,)), event)
        return self if g2 is g else EachThread(self.fresh, {**self.gens, t: g2})


def each_thread(gen: Any) -> Gen:
    """An independent copy of ``gen`` for every thread (of the context); ends when every
    copy has ended.

    Example: ``clients(each_thread(once({"f": "read"})))`` – one final read per client.
    """
    return EachThread(gen, {})


class ProcessLimit(Gen):
    """``gen`` using at most ``n`` distinct processes; ``seen`` are those used so far."""

    __slots__ = ("gen", "listens", "n", "seen")

    def __init__(self, n: int, seen: frozenset[Any], gen: Any) -> None:
        self.n = n
        self.seen = seen
        self.gen = gen
        self.listens = isinstance(gen, Gen) and gen.listens

    def op(self, ctx: GenContext) -> OpResult:
        seen = self.seen
        sub = ctx
        if len(seen) >= self.n:
            threads = tuple(t for t in ctx.threads if ctx.process_of(t) in seen)
            if not threads:
                return None
            sub = ctx.view(threads)
        r = op(self.gen, sub)
        if r is None:
            return None
        o, g = r
        if o is PENDING:
            return (PENDING, self if g is self.gen else ProcessLimit(self.n, seen, g))
        p = o["process"]  # type: ignore[index]
        return (o, None if g is None else ProcessLimit(self.n, seen | {p}, g))

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        g = self.gen.update(ctx, event)
        return self if g is self.gen else ProcessLimit(self.n, self.seen, g)


def process_limit(n: int, gen: Any) -> Gen:
    """``gen`` using at most ``n`` distinct processes over the whole run. Each crash
    (``info``) retires a process, so this bounds how many crashed ops a history can hold
    – and so the linearizability checker's work. Ends when all ``n`` are used up.

    Example: ``process_limit(20, workload)``.
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"`n` must be a non-negative integer, got {n!r}")
    return ProcessLimit(n, frozenset(), gen)


class ConcurrencyLimit(Gen):
    """``gen`` with at most ``n`` of its ops in flight; ``active`` are their processes."""

    __slots__ = ("active", "gen", "n")

    def __init__(self, n: int, active: frozenset[Any], gen: Any) -> None:
        self.n = n
        self.active = active
        self.gen = gen

    def op(self, ctx: GenContext) -> OpResult:
        if len(self.active) >= self.n:
            return (PENDING, self)
        r = op(self.gen, ctx)
        if r is None:
            return None
        o, g = r
        if o is PENDING:
            return (PENDING, self if g is self.gen else ConcurrencyLimit(self.n, self.active, g))
        p = o["process"]  # type: ignore[index]
        return (o, None if g is None else ConcurrencyLimit(self.n, self.active | {p}, g))

    def update(self, ctx: GenContext, event: Op) -> Any:
        g = update(self.gen, ctx, event)
        p = event.get("process")
        active = self.active
        if p in active and event.get("type") in COMPLETION_TYPES:
            active = active - {p}
        if g is self.gen and active is self.active:
            return self
        return ConcurrencyLimit(self.n, active, g)


def concurrency_limit(n: int, gen: Any) -> Gen:
    """``gen`` with at most ``n`` of its ops in flight at once (pending otherwise), however
    many threads are free.

    Example: ``concurrency_limit(1, nemesis_ops)`` – never two at once.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive integer, got {n!r}")
    return ConcurrencyLimit(n, frozenset(), gen)
