"""Run a generator without a cluster: a small deterministic discrete-event interpreter.

:func:`simulate` follows the same rules as :func:`harness.interpreter.interpret` (journal
the invocation, renumber a process after ``info``, sleep/log never journaled) but with
simulated time and fake clients that answer after a fixed latency. Use it to try a
generator at the prompt and to unit-test workloads::

    >>> from harness.generator import limit, repeat
    >>> from harness.generator.testing import simulate
    >>> [(o["type"], o["process"], o["f"]) for o in simulate(limit(2, repeat({"f": "read"})))]
    [('invoke', 1, 'read'), ('invoke', 0, 'read'), ('ok', 1, 'read'), ('ok', 0, 'read')]
"""

from __future__ import annotations

import heapq
import logging
import random
from collections.abc import Callable
from typing import Any

from harness.generator.context import NEMESIS, GenContext, Thread
from harness.generator.core import PENDING, Op, op, update
from harness.generator.timing import NS_PER_S

__all__ = ["DEFAULT_MAX_OPS", "GeneratorStuck", "simulate"]

#: Invocations after which :func:`simulate` stops (generators are often infinite).
DEFAULT_MAX_OPS = 10_000

log = logging.getLogger("clew.generator")


class GeneratorStuck(RuntimeError):
    """The generator is pending with nothing in flight: it would wait forever."""


def _ok(_op: Op) -> Op:
    return {"type": "ok"}


def simulate(
    gen: Any,
    *,
    concurrency: int = 2,
    nemesis: bool = False,
    seed: int = 0,
    latency: float = 0.0,
    complete: Callable[[Op], Op] = _ok,
    max_ops: int = DEFAULT_MAX_OPS,
) -> list[Op]:
    """The history of running ``gen`` with ``concurrency`` client threads (and a nemesis
    thread if ``nemesis``), every op taking ``latency`` seconds and completing as
    ``complete(invocation)`` says (a dict with ``type`` and optionally ``value``;
    default ``ok``). Stops after ``max_ops`` invocations. Deterministic for a seed.

    Raises :class:`GeneratorStuck` if the generator is pending while nothing is in flight.
    """
    threads: list[Thread] = list(range(concurrency))
    if nemesis:
        threads.append(NEMESIS)
    ctx = GenContext(threads=threads, concurrency=concurrency, rng=random.Random(seed))
    lat = round(latency * NS_PER_S)
    history: list[Op] = []
    inflight: list[tuple[int, int, Thread, Op | None, Op]] = []  # (done at, seq, thread, ...)
    seq = 0
    invocations = 0

    def finish() -> None:
        nonlocal gen
        done_at, _, t, comp, inv = heapq.heappop(inflight)
        ctx.time = max(ctx.time, done_at)
        ctx.mark_free(t)
        if comp is None:  # a sleep
            return
        comp = {**comp, "index": len(history), "time": ctx.time}
        history.append(comp)
        gen = update(gen, ctx, comp)
        if comp["type"] == "info" and isinstance(inv["process"], int):
            ctx.set_process(t, inv["process"] + concurrency)

    while invocations < max_ops:
        r = op(gen, ctx)
        if r is None:
            break
        o, g2 = r
        if o is PENDING:
            gen = g2
            if not inflight:
                raise GeneratorStuck(f"generator is pending with nothing in flight: {gen!r}")
            finish()
            continue
        assert isinstance(o, dict)
        if o["time"] > ctx.time:
            if inflight and inflight[0][0] <= o["time"]:
                finish()
            else:
                ctx.time = o["time"]
            continue
        gen = g2
        kind = o.get("type", "invoke")
        if kind == "log":
            log.info("%s", o.get("value"))
            continue
        p = o["process"]
        t = ctx.thread_of(p)
        ctx.mark_busy(t)
        seq += 1
        if kind == "sleep":
            done = ctx.time + round(o["value"] * NS_PER_S)
            heapq.heappush(inflight, (done, seq, t, None, o))
            continue
        inv = {**o, "index": len(history), "time": ctx.time, "type": "invoke"}
        history.append(inv)
        invocations += 1
        gen = update(gen, ctx, inv)
        res = complete(inv)
        kind = res.get("type")
        if p == NEMESIS:
            kind = "info"
        comp = {
            "type": kind,
            "process": p,
            "f": inv["f"],
            "value": res.get("value", inv.get("value")),
        }
        for k in ("key", "error"):
            v = res.get(k, inv.get(k) if k == "key" else None)
            if v is not None:
                comp[k] = v
        heapq.heappush(inflight, (ctx.time + lat, seq, t, comp, inv))
    while inflight:
        finish()
    return history
