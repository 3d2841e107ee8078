"""The interpreter: runs a generator against clients and a nemesis, journaling every op.

:func:`interpret` starts one asyncio task per worker – client thread ``i`` uses
``clients[i]`` and is bound to node ``nodes[i % n]``; a ``"nemesis"`` thread drives the
nemesis when there is one – and runs a single scheduler loop:

1. take every completion that has arrived (first, so that an op that has finished is
   never reported concurrent with the next one), stamp it with the next index and the
   current time, journal it, tell the generator, and free its thread. After ``info`` a
   client thread continues as a new process (``process + concurrency``);
2. ask the generator for ops until it has none for now (``PENDING``, every thread busy,
   or an op for later); stamp each invocation (index, time, node), **journal it** and
   tell the generator;
3. write the journal out (:meth:`Journal.flush`: one ``write()`` for the round, so every
   invocation is in the file before its client sees it) and start the round's client
   calls. A call starts *eagerly* (:data:`harness.calls.EAGER_STARTS`): its first step
   runs right here, as its worker's task (``current_task()``, contextvars and timeouts in
   the client are the worker's, as if the worker ran it), so a call that finishes at once
   costs no task switch; a call that waits is handed to its worker to see through. One
   watchdog timer cancels any call older than ``op_timeout`` (the effect of
   ``asyncio.timeout`` per op, without a timer per op);
4. if calls finished at once, go round again (letting the event loop run at least every
   :data:`FAIR_TURN`); else sleep until a completion or the time the generator's next op
   is due – never spin.

Outcomes: the client's completion dict (``type`` ok/fail/info); :class:`DefiniteError` →
``fail``; :class:`IndefiniteError`, any other exception, or the timeout → ``info`` with
the error. Nemesis completions are always ``info``. ``sleep`` and ``log`` ops are
handled here and never journaled.

Every op is journaled one way: as its fields (a :data:`~harness.journal_lines.Record`)
handed to a :class:`~harness.journal_lines.Journal`, written out before every yield to the
event loop. Time comes from a :class:`~harness.clock.Clock`: :class:`RealClock`
(monotonic) in runs, :class:`FakeClock` (virtual time) in tests.

Cancelling the task that runs :func:`interpret` (or Ctrl-C) stops issuing ops, waits up
to :data:`CANCEL_GRACE` for ops in flight and journals the completions that arrive; ops
still running after that stay invocations without completion (which readers treat as
``info``). The journal is written out before every yield to the event loop, in whole
lines, so a crash of the controller leaves every op journaled before its last yield.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import types
from bisect import insort
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from harness import calls
from harness.api import Client, Op, TestContext
from harness.calls import CANCELLED, FRESH, STOP, Started, Worker, completion, failure, resume
from harness.clock import Cancellable, Clock, FakeClock, RealClock
from harness.generator import PENDING, Gen, GenContext
from harness.generator import op as gen_op
from harness.generator.context import NEMESIS, Thread
from harness.journal_lines import CallbackJournal, Journal, Record

__all__ = [
    "CANCEL_GRACE",
    "DEFAULT_NEMESIS_TIMEOUT",
    "DEFAULT_OP_TIMEOUT",
    "PENDING_RECHECK",
    "PROGRESS_INTERVAL",
    "Clock",
    "FakeClock",
    "InterpreterError",
    "NemesisLike",
    "Progress",
    "RealClock",
    "interpret",
]

log = logging.getLogger("clew.interpreter")
gen_log = logging.getLogger("clew.generator")

#: Seconds a client op may take before it is abandoned and recorded as ``info``.
DEFAULT_OP_TIMEOUT: Final = 10.0
#: Seconds a nemesis op may take (faults run commands on every node) before ``info``.
DEFAULT_NEMESIS_TIMEOUT: Final = 120.0
#: Seconds between :class:`Progress` reports (at most this often).
PROGRESS_INTERVAL: Final = 0.5
#: Seconds after which a pending generator is asked again even if nothing completed
#: (time-based generators such as ``time_limit`` may have changed their mind).
PENDING_RECHECK: Final = 0.1
#: Seconds to wait for ops in flight after a cancellation before giving up on them.
CANCEL_GRACE: Final = 2.0
#: Seconds to wait for worker tasks to finish once told to stop (or cancelled).
WORKER_STOP_TIMEOUT: Final = 1.0
#: Seconds the scheduler may keep the event loop, running round after round of client
#: calls that finish at once, before it lets the other tasks run.
FAIR_TURN = 0.001

_NS: Final = 1_000_000_000


class InterpreterError(RuntimeError):
    """The generator produced something the interpreter cannot run (a bug in it)."""


def _set(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(None)


def _fields(op: Op) -> Record:
    """The journal record of a stamped op."""
    g = op.get
    return (op["index"], op["time"], op["type"], op["process"], op["f"], g("value"), g("key"),
            g("node"), g("error"))  # fmt: skip


def _stamped(c: Op, inv: Op, index: int, now: int, node: str | None) -> Op:
    """The journaled completion of ``inv`` whose client answered ``c`` (a new dict; ``c``
    is left alone, as clients may reuse theirs): ``c`` with its index and time, the
    invocation's process and f, and its value and key unless the client set them, and
    the node that served the op if the client names it (``c["node"]``, e.g. the leader
    a follower proxied to), else the worker's node."""
    res = c.copy()  # (a copy and four stores: cheaper than one dict display)
    res["index"] = index
    res["time"] = now
    res["process"] = inv["process"]
    res["f"] = inv["f"]
    if "value" not in c:
        res["value"] = inv.get("value")
    if "key" in inv and "key" not in c:
        res["key"] = inv["key"]
    served = c.get("node")
    if served is not None or node is not None:
        res["node"] = served or node
    return res


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """How a run is going: elapsed seconds, invocations, completions by type, ops in
    flight, completions per second, and the nemesis's last journaled op (or ``None``)."""

    elapsed: float
    invocations: int
    ok: int
    fail: int
    info: int
    in_flight: int
    ops_per_s: float
    nemesis_last: Op | None


class NemesisLike(Protocol):
    """What the interpreter needs of a nemesis: ``invoke`` returning the completion."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Carry out ``op``; return its completion (recorded as ``info``)."""
        ...


@types.coroutine
def _one_turn() -> Generator[None, None, None]:
    """Let the event loop run the other ready tasks once (``asyncio.sleep(0)``)."""
    yield


class _Run:
    """The state of one :func:`interpret` call."""

    def __init__(
        self,
        gen: Any,
        ctx: TestContext,
        clients: Sequence[Client],
        nemesis: NemesisLike | None,
        journal: Journal,
        op_timeout: float | None,
        nemesis_timeout: float | None,
        clock: Clock,
        seed: int,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.gen = gen  # the generator as given; schedule() keeps the current one
        self.ctx = ctx
        self.journal = journal
        self.clock = clock
        self.on_progress = on_progress
        self.concurrency = c = len(clients)
        nodes = ctx.cluster.nodes
        threads: list[Thread] = list(range(c))
        self.workers: dict[Thread, Worker] = {}
        for i, client in enumerate(clients):
            node = nodes[i % len(nodes)].name if nodes else None
            self.workers[i] = Worker(i, client.invoke, node, op_timeout)
        if nemesis is not None:
            threads.append(NEMESIS)
            self.workers[NEMESIS] = Worker(NEMESIS, nemesis.invoke, None, nemesis_timeout)
        self.client_threads = tuple(range(c))
        self.gctx = GenContext(threads=threads, concurrency=c, rng=random.Random(seed))
        self.done: deque[tuple[Worker, Op, Op | None]] = deque()
        self.sched_waiter: asyncio.Future[Any] | None = None
        self.origin = clock.now_ns()
        self.index = 0
        self.invocations = 0
        self.counts = {"ok": 0, "fail": 0, "info": 0}
        self.in_flight = 0
        self.nemesis_last: Op | None = None
        self.next_progress = 0
        self.watchdog: Cancellable | None = None
        self.watchdog_at = 0
        self.loop = asyncio.get_running_loop()
        self.task: asyncio.Task[Any] | None = None  # the scheduler's (set by interpret)

    # -- workers --

    async def worker(self, w: Worker) -> None:
        """See through the client calls and sleeps handed to ``w`` until told to stop."""
        loop = asyncio.get_running_loop()
        clock, done = self.clock, self.done
        res: Op | None
        while True:
            m = w.slot
            if m is None:
                w.waiter = fut = loop.create_future()
                m = await fut
                w.waiter = None
            w.slot = None
            if m is STOP:
                return
            if m.__class__ is not Started:  # a sleep op
                await clock.sleep(m["value"])
                done.append((w, m, None))
            else:
                aw, waiting_on = m.aw, m.waiting_on
                try:
                    if aw is None:
                        aw = w.invoke(self.ctx, m.inv.copy())
                    c = await (aw if waiting_on is FRESH else resume(aw, waiting_on))
                except asyncio.CancelledError:
                    w.deadline = None
                    if w.timed_out:
                        res = self.timed_out(w)
                    else:
                        task = asyncio.current_task()
                        if task is not None and task.cancelling():
                            raise  # we are being stopped
                        res = {"type": "info", "error": CANCELLED}
                except Exception as e:
                    w.deadline = None
                    # (the client turned the watchdog's cancellation into an error: the op
                    # timed out, so its outcome is unknown, whatever the error says)
                    res = self.timed_out(w) if w.timed_out else failure(e)
                else:
                    w.deadline = None
                    if w.timed_out:  # the client swallowed the watchdog's cancellation
                        res = self.timed_out(w)
                    else:
                        res = completion(c, w.is_nemesis)
                done.append((w, m.inv, res))
            s = self.sched_waiter
            if s is not None and not s.done():
                s.set_result(None)

    def start(self, starts: list[tuple[Worker, Op]], now: int) -> None:
        """Start the client call of each ``(worker, invocation)`` (``now``: relative ns):
        eagerly (:meth:`first_step`, as its worker's task) when
        :data:`harness.calls.EAGER_STARTS`, else
        by handing it to its worker."""
        if calls.EAGER_STARTS and self.task is not None:
            calls.as_worker_tasks(self.loop, self.task, starts, self.first_step, now)
        else:
            for w, inv in starts:
                self.hand_over(w, Started(None, inv, FRESH), now)

    def first_step(self, w: Worker, inv: Op, now: int) -> None:
        """Run the call of ``inv`` until it first waits, in ``w``'s context: queue the
        completion of a call that finished, hand one still running to ``w``."""
        if not w.eager:
            self.hand_over(w, Started(None, inv, FRESH), now)
            return
        coro = w.invoke(self.ctx, inv.copy())  # creating it runs no client code
        try:
            waiting_on = w.context.run(coro.send, None)
        except StopIteration as stop:
            self.done.append((w, inv, completion(stop.value, w.is_nemesis)))
        except asyncio.CancelledError:
            self.done.append((w, inv, {"type": "info", "error": CANCELLED}))
        except Exception as e:
            self.done.append((w, inv, failure(e)))
        else:
            self.hand_over(w, Started(coro, inv, waiting_on), now)

    def hand_over(self, w: Worker, call: Started, now: int) -> None:
        """Give a running client call to its worker, under the op timeout."""
        if w.timeout_ns is not None:
            w.deadline = d = self.origin + now + w.timeout_ns
            if self.watchdog is None or d < self.watchdog_at:
                self.arm_watchdog(d)
        w.give(call)

    @staticmethod
    def timed_out(w: Worker) -> Op:
        """Acknowledge the watchdog's cancellation of ``w``; the ``info`` completion."""
        w.timed_out = False
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return {"type": "info", "error": f"timeout: no answer within {w.timeout} s"}

    def arm_watchdog(self, deadline: int) -> None:
        """Make sure the watchdog fires by ``deadline`` (absolute clock ns)."""
        if self.watchdog is None or deadline < self.watchdog_at:
            if self.watchdog is not None:
                self.watchdog.cancel()
            self.watchdog_at = deadline
            self.watchdog = self.clock.call_at(deadline, self.on_watchdog)

    def on_watchdog(self) -> None:
        """Cancel every op past its deadline; re-arm for the earliest one left.

        One timer for all workers, re-armed only when it fires, instead of a timer per op
        (``asyncio.timeout``): with ops far shorter than the timeout it fires about once
        per timeout period, so timeouts cost nearly nothing per op."""
        self.watchdog = None
        now = self.clock.now_ns()
        earliest: int | None = None
        for w in self.workers.values():
            d = w.deadline
            if d is None:
                continue
            if d <= now and w.task is not None:
                w.deadline = None
                w.timed_out = True
                w.task.cancel()
            elif earliest is None or d < earliest:
                earliest = d
        if earliest is not None:
            self.arm_watchdog(earliest)

    # -- the scheduler --

    async def wait(self, until: int | None) -> None:
        """Write out the journal; return when a completion is queued, or at relative time
        ``until`` (ns)."""
        self.journal.flush()
        if self.done:
            return
        fut = self.loop.create_future()
        self.sched_waiter = fut
        timer = (
            self.clock.call_at(self.origin + until, lambda: _set(fut))
            if until is not None
            else None
        )
        try:
            await fut
        finally:
            self.sched_waiter = None
            if timer is not None:
                timer.cancel()

    def drain(self) -> None:
        """Journal every queued completion, without telling the generator (winding down)."""
        done, gctx = self.done, self.gctx
        while done:
            w, inv, c = done.popleft()
            gctx.mark_free(w.thread)
            self.in_flight -= 1
            if c is None:
                continue
            p = inv["process"]
            res = _stamped(c, inv, self.index, self.clock.now_ns() - self.origin, w.node)
            self.index += 1
            self.journal.append_fields(_fields(res))
            self.counts[res["type"]] += 1
            if p == NEMESIS:
                self.nemesis_last = res
            elif res["type"] == "info":
                gctx.processes[w.thread] = p + self.concurrency

    def progress(self, now: int) -> Progress:
        """The current :class:`Progress` at relative time ``now``."""
        elapsed = now / _NS
        c = self.counts
        done = c["ok"] + c["fail"] + c["info"]
        return Progress(
            elapsed=elapsed,
            invocations=self.invocations,
            ok=c["ok"],
            fail=c["fail"],
            info=c["info"],
            in_flight=self.in_flight,
            ops_per_s=done / elapsed if elapsed > 0 else 0.0,
            nemesis_last=self.nemesis_last,
        )

    def pick_client_thread(self) -> Thread | None:
        """A free client thread at random (for ops that name no process)."""
        gctx = self.gctx
        free = [t for t in self.client_threads if gctx.is_free(t)]
        return gctx.rng.choice(free) if free else None

    async def schedule(self) -> None:
        """The scheduler loop (see the module docstring).

        This is the hot path. Each round: journal the completions that arrived; ask the
        generator for ops until it has none for now, journaling each invocation; write the
        journal out; start the round's client calls (:meth:`start`); then, if calls
        finished at once, go on with the next round (letting the event loop run once at
        least every :data:`FAIR_TURN`), else let it run until a completion or the time
        something is due. Bookkeeping is inlined (the context's ``mark_busy`` and
        ``mark_free``), counters live in locals (written back on the way out), and a
        completion nobody looks at (no listening generator, a client's) is journaled from
        its fields without making its dict."""
        gctx, workers, done = self.gctx, self.workers, self.done
        free, processes, counts = gctx.free, gctx.processes, self.counts
        free_clients = gctx.free_clients  # kept in step with free (see GenContext)
        assert free_clients is not None  # the context made its own free set
        clock, origin, conc = self.clock, self.origin, self.concurrency
        now_ns = time.monotonic_ns if clock.__class__ is RealClock else clock.now_ns
        all_threads = len(workers)
        recheck = round(PENDING_RECHECK * _NS)
        progress_every = round(PROGRESS_INTERVAL * _NS)
        on_progress = self.on_progress
        append, flush = self.journal.append_fields, self.journal.flush
        gen = self.gen
        listens = isinstance(gen, Gen) and gen.listens
        exhausted = False
        index, in_flight, invocations = self.index, self.in_flight, self.invocations
        starts: list[tuple[Worker, Op]] = []
        fair_turn = round(FAIR_TURN * _NS)
        turn_ends = time.monotonic_ns() + fair_turn  # (real time: fairness to other tasks)
        try:
            while True:
                now = now_ns() - origin
                while done:
                    w, inv, c = done.popleft()
                    t = w.thread
                    free.add(t)
                    if t.__class__ is int:
                        insort(free_clients, t)
                    in_flight -= 1
                    if c is None:  # a sleep ended
                        continue
                    p = inv["process"]
                    kind = c["type"]
                    if listens or p.__class__ is not int:
                        res = _stamped(c, inv, index, now, w.node)
                        append(_fields(res))
                        if listens:
                            gen = gen.update(gctx, res)
                            listens = isinstance(gen, Gen) and gen.listens
                        if p == NEMESIS:
                            self.nemesis_last = res
                    else:  # the fields _stamped would give, without the dict
                        g = c.get
                        append((
                            index, now, kind, p, inv["f"],
                            c["value"] if "value" in c else inv.get("value"),
                            c["key"] if "key" in c else inv.get("key"),
                            g("node") or w.node, g("error"),
                        ))  # fmt: skip
                    index += 1
                    counts[kind] += 1
                    if kind == "info" and p.__class__ is int:
                        processes[t] = p + conc
                if on_progress is not None and now >= self.next_progress:
                    self.index, self.in_flight, self.invocations = index, in_flight, invocations
                    self.next_progress = now + progress_every
                    on_progress(self.progress(now))
                if exhausted:
                    if not in_flight:
                        flush()
                        return
                    await self.wait(None)
                    continue
                until: int | None = None  # when to ask again if nothing completes before
                gctx.time = now
                while in_flight < all_threads:  # else no thread could take an op: do not ask
                    r = gen.op(gctx) if isinstance(gen, Gen) else gen_op(gen, gctx)
                    if r is None:
                        exhausted = True
                        break
                    o, g2 = r
                    if o is PENDING:
                        gen = g2  # a pending generator may have moved on (kept a fn's op)
                        listens = isinstance(gen, Gen) and gen.listens
                        until = now + recheck
                        break
                    if o.__class__ is not dict:
                        raise InterpreterError(f"generator produced {o!r}, not an op dict")
                    t_op = o.get("time", now)
                    if t_op > now:
                        until = t_op
                        break
                    kind = o.get("type", "invoke")
                    if kind == "log":
                        gen = g2
                        listens = isinstance(gen, Gen) and gen.listens
                        gen_log.info("%s", o.get("value"))
                        continue
                    p = o.get("process")
                    if p is None:
                        free_t = self.pick_client_thread()
                        if free_t is None:
                            until = now + recheck
                            break
                        t, p = free_t, processes[free_t]
                    else:
                        t = p if p.__class__ is str or not conc else p % conc
                        if processes.get(t) != p or t not in free:
                            raise InterpreterError(
                                f"generator produced an op for process {p!r}, which is not a "
                                f"free process of this run: {o!r}"
                            )
                    gen = g2
                    listens = isinstance(gen, Gen) and gen.listens
                    w = workers[t]
                    free.discard(t)
                    if t.__class__ is int:
                        free_clients.remove(t)
                    in_flight += 1
                    if kind == "sleep":
                        w.give(o)
                        continue
                    if kind != "invoke" or "f" not in o:
                        raise InterpreterError(
                            f"generator produced an op that is not an invocation: {o!r}"
                        )
                    inv = o.copy()
                    inv["index"] = index
                    inv["time"] = now
                    inv["type"] = "invoke"
                    inv["process"] = p
                    if w.node is not None:
                        inv["node"] = w.node
                    g = inv.get
                    append((index, now, "invoke", p, inv["f"], g("value"), g("key"), g("node"),
                            g("error")))  # fmt: skip
                    index += 1
                    invocations += 1
                    if p == NEMESIS:
                        self.nemesis_last = inv
                    if listens:
                        gen = gen.update(gctx, inv)
                        listens = isinstance(gen, Gen) and gen.listens
                    starts.append((w, inv))
                if starts:
                    flush()  # every invocation is written before its client sees it
                    self.start(starts, now)
                    starts.clear()
                    if done:  # calls that finished at once: the next round, after a turn
                        if time.monotonic_ns() >= turn_ends:
                            await _one_turn()  # (the journal is written: nothing since)
                            turn_ends = time.monotonic_ns() + fair_turn
                        continue
                if not exhausted:
                    await self.wait(until)
                    turn_ends = time.monotonic_ns() + fair_turn
        finally:
            self.index, self.in_flight, self.invocations = index, in_flight, invocations

    async def wind_down(self) -> None:
        """After a cancellation or error: wait up to :data:`CANCEL_GRACE` for ops in
        flight, journaling the completions that arrive (without asking the generator)."""
        self.drain()
        deadline = self.clock.now_ns() - self.origin + round(CANCEL_GRACE * _NS)
        while self.in_flight and self.clock.now_ns() - self.origin < deadline:
            await self.wait(deadline)
            self.drain()

    async def stop_workers(self) -> None:
        """Stop every worker task: idle ones by message, busy ones by cancellation."""
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        tasks = []
        for w in self.workers.values():
            if w.task is None:
                continue
            if self.gctx.is_free(w.thread):
                w.give(STOP)
            else:
                w.task.cancel()
            tasks.append(w.task)
        if tasks:
            _, still = await asyncio.wait(tasks, timeout=WORKER_STOP_TIMEOUT)
            for task in still:
                task.cancel()
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.warning("worker failed: %r", task.exception())


async def interpret(
    gen: Any,
    *,
    ctx: TestContext,
    clients: Sequence[Client],
    nemesis: NemesisLike | None,
    journal: Journal | Callable[[dict[str, Any]], None],
    op_timeout: float | None = DEFAULT_OP_TIMEOUT,
    nemesis_timeout: float | None = DEFAULT_NEMESIS_TIMEOUT,
    clock: Clock | None = None,
    seed: int = 0,
    on_progress: Callable[[Progress], None] | None = None,
) -> Progress:
    """Run ``gen`` to exhaustion and return the final :class:`Progress`.

    ``clients`` must be open already (``clients[i]`` on ``ctx.cluster.nodes[i % n]``);
    they are neither opened nor closed here. Every invocation is journaled *before* its
    client sees it, every completion as soon as it is taken from the queue, each exactly
    once, with dense ``index`` from 0 and ``time`` in ns since this call started
    (non-decreasing). ``journal`` is a :class:`~harness.journal_lines.Journal` (such as
    :class:`harness.store.Journal`), or a function given each op as a dict (wrapped in a
    :class:`~harness.journal_lines.CallbackJournal`). ``seed`` seeds the generator
    context's RNG (thread choice and every random choice generators make).
    ``on_progress`` is called at most every :data:`PROGRESS_INTERVAL` seconds. See the
    module docstring for outcomes and cancellation.
    """
    sink = journal if isinstance(journal, Journal) else CallbackJournal(journal)
    run = _Run(gen, ctx, clients, nemesis, sink, op_timeout, nemesis_timeout,
               clock or RealClock(), seed, on_progress)  # fmt: skip
    loop = asyncio.get_running_loop()
    run.task = asyncio.current_task()
    for w in run.workers.values():
        w.task = loop.create_task(run.worker(w), name=f"clew-worker-{w.thread}", context=w.context)
    try:
        await run.schedule()
    except BaseException:
        try:
            await run.wind_down()
        finally:
            await run.stop_workers()
            sink.flush()
        raise
    await run.stop_workers()
    sink.flush()
    final = run.progress(run.clock.now_ns() - run.origin)
    if on_progress is not None:
        on_progress(final)
    return final
