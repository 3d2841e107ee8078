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
3. write the journal out – one ``write()`` for the round, so every invocation is in the
   file before its client sees it – and start the round's client calls. A call starts
   *eagerly*: its first step runs right here, as its worker's task (``current_task()``,
   contextvars and timeouts in the client are the worker's, as if the worker ran it),
   so a call that finishes at once costs no task switch; a call that waits is handed to
   its worker to see through. One watchdog timer cancels any call older than
   ``op_timeout`` (the same effect as ``asyncio.timeout`` per op, without a timer per
   op);
4. if calls finished at once, go round again (letting the event loop run at least every
   :data:`FAIR_TURN`); else sleep until a completion or the time the generator's next op
   is due – never spin.

Outcomes: the client's completion dict (``type`` ok/fail/info); :class:`DefiniteError` →
``fail``; :class:`IndefiniteError`, any other exception, or the timeout → ``info`` with
the error. Nemesis completions are always ``info``. ``sleep`` and ``log`` ops are
handled here and never journaled.

Time comes from a :class:`Clock`: :class:`RealClock` (monotonic) in runs,
:class:`FakeClock` (virtual time that jumps ahead whenever every task is waiting) in tests.

Cancelling the task that runs :func:`interpret` (or Ctrl-C) stops issuing ops, waits up
to :data:`CANCEL_GRACE` for ops in flight and journals the completions that arrive; ops
still running after that stay invocations without completion (which readers treat as
``info``). The journal is written out before every yield to the event loop, in whole
lines, so a crash of the controller leaves every op journaled before its last yield.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import inspect
import itertools
import logging
import random
import time
import types
from bisect import insort
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from harness.api import Client, DefiniteError, IndefiniteError, Op, TestContext
from harness.generator import PENDING, Gen, GenContext
from harness.generator import op as gen_op
from harness.generator.context import NEMESIS, Thread

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
_TYPES: Final = frozenset({"ok", "fail", "info"})


class InterpreterError(RuntimeError):
    """The generator produced something the interpreter cannot run (a bug in it)."""


# -- clocks ----------------------------------------------------------------------------------


class Cancellable(Protocol):
    """A scheduled callback that can be called off."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Where the interpreter gets time: a monotonic ns clock, timers, sleeps, timeouts."""

    def now_ns(self) -> int:
        """Monotonic time in ns (any origin)."""
        ...

    def call_at(self, t_ns: int, callback: Callable[[], None]) -> Cancellable:
        """Run ``callback`` (in the event loop) once ``now_ns() >= t_ns``."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class RealClock:
    """The real clock: :func:`time.monotonic_ns` and the event loop's timers."""

    def now_ns(self) -> int:
        """Monotonic time in ns."""
        return time.monotonic_ns()

    def call_at(self, t_ns: int, callback: Callable[[], None]) -> Cancellable:
        """Schedule ``callback`` on the running loop at monotonic ``t_ns``."""
        delay = max(0, t_ns - time.monotonic_ns()) / _NS
        return asyncio.get_running_loop().call_later(delay, callback)

    async def sleep(self, seconds: float) -> None:
        """:func:`asyncio.sleep`."""
        await asyncio.sleep(seconds)


class _Timer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: int, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


#: Consecutive idle observations of the event loop before :class:`FakeClock` jumps.
FAKE_CLOCK_SETTLE_ROUNDS: Final = 3
#: Loop iterations :class:`FakeClock` waits for the loop to go idle before jumping anyway.
FAKE_CLOCK_MAX_SETTLE: Final = 1000


class FakeClock:
    """Virtual time for tests. Timers fire in time order; whenever every task is waiting
    (the event loop has nothing ready), time jumps to the next timer – so a test of a
    60 s time limit takes milliseconds, and is deterministic. :meth:`advance` moves time
    by hand. Only for code that waits on this clock (not on sockets)."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns
        self._timers: list[tuple[int, int, _Timer]] = []
        self._seq = itertools.count()
        self._jumper: asyncio.Task[None] | None = None

    def now_ns(self) -> int:
        """The virtual time in ns."""
        return self._now

    def call_at(self, t_ns: int, callback: Callable[[], None]) -> Cancellable:
        """Schedule ``callback`` at virtual time ``t_ns``."""
        timer = _Timer(t_ns, callback)
        heapq.heappush(self._timers, (t_ns, next(self._seq), timer))
        if self._jumper is None:
            self._jumper = asyncio.get_running_loop().create_task(self._jump())
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and fire the timers that are due."""
        self._now += round(seconds * _NS)
        while self._timers and self._timers[0][0] <= self._now:
            timer = heapq.heappop(self._timers)[2]
            if not timer.cancelled:
                timer.callback()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time."""
        fut = asyncio.get_running_loop().create_future()
        timer = self.call_at(self._now + round(seconds * _NS), lambda: _set(fut))
        try:
            await fut
        finally:
            timer.cancel()

    async def _settle(self) -> None:
        loop = asyncio.get_running_loop()
        idle = 0
        for _ in range(FAKE_CLOCK_MAX_SETTLE):
            await asyncio.sleep(0)
            ready = getattr(loop, "_ready", None)
            idle = idle + 1 if ready is not None and not ready else 0
            if idle >= FAKE_CLOCK_SETTLE_ROUNDS:
                return

    async def _jump(self) -> None:
        try:
            while True:
                await self._settle()
                timers = self._timers
                while timers and timers[0][2].cancelled:
                    heapq.heappop(timers)
                if not timers:
                    return
                when, _, timer = heapq.heappop(timers)
                self._now = max(self._now, when)
                timer.callback()
        finally:
            self._jumper = None


def _set(fut: asyncio.Future[Any], value: Any = None) -> None:
    if not fut.done():
        fut.set_result(value)


# -- progress --------------------------------------------------------------------------------


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


# -- workers ---------------------------------------------------------------------------------

_STOP: Final[Any] = object()
#: ``_Started.waiting_on`` of an awaitable its worker has to start itself.
_FRESH: Final[Any] = object()

# Running a client's ``invoke`` eagerly – its first step inside the scheduler, *as its
# worker's task* (``asyncio.current_task()``, timeouts and cancel scopes in the client see
# the worker) – needs the event loop's current-task bookkeeping, which Python 3.11 keeps
# private (3.12's eager tasks use the same two functions). Without them every op is
# handed to its worker: the same history, one task switch per op slower.
_enter_task: Callable[[Any, Any], None] | None = getattr(asyncio.tasks, "_enter_task", None)
_leave_task: Callable[[Any, Any], None] | None = getattr(asyncio.tasks, "_leave_task", None)


class _Worker:
    """One thread: its client (or nemesis), node, one-message inbox, task and that task's
    context. ``deadline`` (absolute clock ns) is set while its worker runs an op under a
    timeout; the watchdog sets ``timed_out`` and cancels the task when it passes."""

    __slots__ = (
        "context",
        "deadline",
        "eager",
        "invoke",
        "is_nemesis",
        "node",
        "slot",
        "task",
        "thread",
        "timed_out",
        "timeout",
        "timeout_ns",
        "waiter",
    )

    def __init__(
        self,
        thread: Thread,
        invoke: Callable[[TestContext, Op], Any],
        node: str | None,
        timeout: float | None,
    ) -> None:
        self.thread = thread
        self.is_nemesis = thread == NEMESIS
        self.invoke = invoke
        # Only a coroutine function's call can start eagerly (creating it runs no code).
        self.eager = inspect.iscoroutinefunction(invoke)
        self.node = node
        self.timeout = timeout
        self.timeout_ns = None if timeout is None else round(timeout * _NS)
        self.deadline: int | None = None
        self.timed_out = False
        self.slot: Any = None
        self.waiter: asyncio.Future[Any] | None = None
        self.task: asyncio.Task[None] | None = None
        self.context = contextvars.copy_context()

    def give(self, o: Any) -> None:
        """Hand ``o`` to the worker (its inbox holds one message; it is idle when given
        one): a sleep op, a :class:`_Started` client call, or ``_STOP``."""
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(o)
        else:
            self.slot = o


class _Started:
    """A client call for a worker to see through, for invocation ``inv``: ``aw``, the
    coroutine ``invoke`` returned, already started and now waiting on ``waiting_on``
    (what it yielded to the event loop); or (``aw`` None, ``waiting_on`` ``_FRESH``) a
    call the worker makes itself."""

    __slots__ = ("aw", "inv", "waiting_on")

    def __init__(self, aw: Any, inv: Op, waiting_on: Any) -> None:
        self.aw = aw
        self.inv = inv
        self.waiting_on = waiting_on


@types.coroutine
def _resume(coro: Any, waiting_on: Any) -> Generator[Any, Any, Any]:
    """Go on with ``coro``, whose first steps ran elsewhere and which now waits on
    ``waiting_on``: exactly what awaiting it would do from there (values and exceptions,
    cancellation included, are passed through)."""
    while True:
        try:
            sent = yield waiting_on
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as e:
            try:
                waiting_on = coro.throw(e)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                waiting_on = coro.send(sent)
            except StopIteration as stop:
                return stop.value


@types.coroutine
def _one_turn() -> Generator[None, None, None]:
    """Let the event loop run the other ready tasks once (``asyncio.sleep(0)``)."""
    yield


def _classify(c: Any, nemesis: bool) -> Op:
    """The completion fields of a client's answer ``c``, checking its type."""
    if type(c) is not dict:
        if not isinstance(c, dict):
            return {"type": "info", "error": f"client bug: invoke returned {c!r}, not a dict"}
        c = dict(c)
    t = c.get("type")
    if nemesis:
        if t != "info":
            c = {**c, "type": "info"}
        return c
    if t not in _TYPES:
        return {
            "type": "info",
            "error": f"client bug: completion type {t!r} is not ok, fail or info",
        }
    return c


def _completion(c: Any, nemesis: bool) -> Op:
    """The completion fields a client's answer ``c`` stands for: ``c`` itself when it is
    the usual well-formed client dict, else checked (:func:`_classify`)."""
    if c.__class__ is dict and not nemesis and c.get("type") in _TYPES:
        return c
    return _classify(c, nemesis)


def _failure(e: Exception) -> Op:
    """The completion of a call that raised ``e``: ``fail`` for :class:`DefiniteError`,
    else ``info``."""
    if isinstance(e, DefiniteError):
        return {"type": "fail", "error": str(e) or type(e).__name__}
    if isinstance(e, IndefiniteError):
        return {"type": "info", "error": str(e) or type(e).__name__}
    return {"type": "info", "error": f"indeterminate: {type(e).__name__}: {e}"}


_CANCELLED: Final = "indeterminate: the client was cancelled"


class _Run:
    """The state of one :func:`interpret` call."""

    def __init__(
        self,
        gen: Any,
        ctx: TestContext,
        clients: Sequence[Client],
        nemesis: NemesisLike | None,
        journal: Callable[[Op], None],
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
        self.workers: dict[Thread, _Worker] = {}
        for i, client in enumerate(clients):
            node = nodes[i % len(nodes)].name if nodes else None
            self.workers[i] = _Worker(i, client.invoke, node, op_timeout)
        if nemesis is not None:
            threads.append(NEMESIS)
            self.workers[NEMESIS] = _Worker(NEMESIS, nemesis.invoke, None, nemesis_timeout)
        self.client_threads = tuple(range(c))
        self.gctx = GenContext(threads=threads, concurrency=c, rng=random.Random(seed))
        self.done: deque[tuple[_Worker, Op, Op | None]] = deque()
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
        self.flush: Callable[[], None] | None = getattr(journal, "flush", None)
        self.loop = asyncio.get_running_loop()
        self.task: asyncio.Task[Any] | None = None  # the scheduler's (set by interpret)

    # -- workers --

    async def worker(self, w: _Worker) -> None:
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
            if m is _STOP:
                return
            if m.__class__ is not _Started:  # a sleep op
                await clock.sleep(m["value"])
                done.append((w, m, None))
            else:
                aw, waiting_on = m.aw, m.waiting_on
                try:
                    if aw is None:
                        aw = w.invoke(self.ctx, m.inv.copy())
                    c = await (aw if waiting_on is _FRESH else _resume(aw, waiting_on))
                except asyncio.CancelledError:
                    w.deadline = None
                    if w.timed_out:
                        res = self.timed_out(w)
                    else:
                        task = asyncio.current_task()
                        if task is not None and task.cancelling():
                            raise  # we are being stopped
                        res = {"type": "info", "error": _CANCELLED}
                except Exception as e:
                    w.deadline = None
                    res = _failure(e)
                else:
                    w.deadline = None
                    if w.timed_out:  # the client swallowed the watchdog's cancellation
                        res = self.timed_out(w)
                    else:
                        res = _completion(c, w.is_nemesis)
                done.append((w, m.inv, res))
            s = self.sched_waiter
            if s is not None and not s.done():
                s.set_result(None)

    def start(self, starts: list[tuple[_Worker, Op]], now: int) -> None:
        """Start the client call of each ``(worker, invocation)``: run it eagerly until it
        first waits – queueing the completion of a call that finished – and hand calls
        still running to their workers, with their deadline (``now``: relative ns)."""
        ctx, done = self.ctx, self.done
        loop, me = self.loop, self.task
        if me is None or _enter_task is None or _leave_task is None:
            for w, inv in starts:
                self.hand_over(w, _Started(None, inv, _FRESH), now)
            return
        _leave_task(loop, me)
        try:
            for w, inv in starts:
                if not w.eager:
                    self.hand_over(w, _Started(None, inv, _FRESH), now)
                    continue
                # Creating the coroutine runs no client code; its first step runs as the
                # worker's task, in the worker's context.
                coro = w.invoke(ctx, inv.copy())
                task = w.task
                _enter_task(loop, task)
                try:
                    waiting_on = w.context.run(coro.send, None)
                except StopIteration as stop:
                    c = stop.value
                    if c.__class__ is not dict or w.is_nemesis or c.get("type") not in _TYPES:
                        c = _classify(c, w.is_nemesis)
                    done.append((w, inv, c))
                    continue
                except asyncio.CancelledError:
                    done.append((w, inv, {"type": "info", "error": _CANCELLED}))
                    continue
                except Exception as e:
                    done.append((w, inv, _failure(e)))
                    continue
                finally:
                    _leave_task(loop, task)
                self.hand_over(w, _Started(coro, inv, waiting_on), now)
        finally:
            _enter_task(loop, me)

    def hand_over(self, w: _Worker, call: _Started, now: int) -> None:
        """Give a running client call to its worker, under the op timeout."""
        if w.timeout_ns is not None:
            w.deadline = d = self.origin + now + w.timeout_ns
            if self.watchdog is None or d < self.watchdog_at:
                self.arm_watchdog(d)
        w.give(call)

    @staticmethod
    def timed_out(w: _Worker) -> Op:
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
        if self.flush is not None:
            self.flush()
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

    def complete(self, w: _Worker, inv: Op, c: Op, now: int) -> None:
        """Stamp and journal the completion of ``inv`` whose client answered ``c`` (not
        telling the generator): the slow path, used when winding down."""
        p = inv["process"]
        res = _stamped(c, inv, self.index, now, w.node)
        self.index += 1
        self.journal(res)
        self.counts[res["type"]] += 1
        if p == NEMESIS:
            self.nemesis_last = res
        elif res["type"] == "info":
            self.gctx.processes[w.thread] = p + self.concurrency

    def drain(self) -> None:
        """Journal every queued completion, without telling the generator."""
        done, gctx = self.done, self.gctx
        while done:
            w, inv, res = done.popleft()
            gctx.mark_free(w.thread)
            self.in_flight -= 1
            if res is not None:
                self.complete(w, inv, res, self.clock.now_ns() - self.origin)

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
        journal out (one ``write()``); start the round's client calls (:meth:`start`);
        then, if calls finished at once, go on with the next round (letting the event loop
        run once at least every :data:`FAIR_TURN`), else let it run until a completion or
        the time something is due. The bookkeeping is inlined (it is
        :meth:`complete`, and the context's ``mark_busy``/``mark_free``), with counters in
        locals (written back on the way out) and one clock read per round."""
        gctx, workers, journal, done = self.gctx, self.workers, self.journal, self.done
        free, processes, counts = gctx.free, gctx.processes, self.counts
        free_clients = gctx.free_clients  # kept in step with free (see GenContext)
        assert free_clients is not None  # the context made its own free set
        clock, origin, conc = self.clock, self.origin, self.concurrency
        now_ns = time.monotonic_ns if clock.__class__ is RealClock else clock.now_ns
        all_threads = len(workers)
        recheck = round(PENDING_RECHECK * _NS)
        progress_every = round(PROGRESS_INTERVAL * _NS)
        on_progress = self.on_progress
        # The journal's fast path (Journal.append_fields): ops as their fields, made into
        # lines and written by the flush before the next yield (nothing changes them
        # until then: generators only read the ops they are told of).
        append_fields = getattr(journal, "append_fields", None)
        flush = self.flush
        gen = self.gen
        listens = isinstance(gen, Gen) and gen.listens
        exhausted = False
        index, in_flight, invocations = self.index, self.in_flight, self.invocations
        starts: list[tuple[_Worker, Op]] = []
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
                    if append_fields is not None and not listens and p.__class__ is int:
                        # Nobody sees the completion dict: journal the fields _stamped
                        # would give it, without making it.
                        g = c.get
                        node = w.node
                        append_fields((
                            index, now, kind, p, inv["f"],
                            c["value"] if "value" in c else inv.get("value"),
                            c["key"] if "key" in c else inv.get("key"),
                            g("node") or node, g("error"),
                        ))  # fmt: skip
                        index += 1
                        counts[kind] += 1
                        if kind == "info":
                            processes[t] = p + conc
                        continue
                    res = _stamped(c, inv, index, now, w.node)
                    if append_fields is not None:
                        g = res.get
                        append_fields((index, now, kind, p, res["f"], res["value"], g("key"),
                                       g("node"), g("error")))  # fmt: skip
                    else:
                        journal(res)
                    index += 1
                    counts[kind] += 1
                    if listens:
                        gen = gen.update(gctx, res)
                        listens = isinstance(gen, Gen) and gen.listens
                    if p == NEMESIS:
                        self.nemesis_last = res
                    elif kind == "info":
                        processes[t] = p + conc
                if on_progress is not None and now >= self.next_progress:
                    self.index, self.in_flight, self.invocations = index, in_flight, invocations
                    self.next_progress = now + progress_every
                    on_progress(self.progress(now))
                if exhausted:
                    if not in_flight:
                        if flush is not None:
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
                    if append_fields is not None:
                        g = inv.get
                        append_fields((index, now, "invoke", p, inv["f"], g("value"), g("key"),
                                       g("node"), g("error")))  # fmt: skip
                    else:
                        journal(inv)
                    index += 1
                    invocations += 1
                    if p == NEMESIS:
                        self.nemesis_last = inv
                    if listens:
                        gen = gen.update(gctx, inv)
                        listens = isinstance(gen, Gen) and gen.listens
                    starts.append((w, inv))
                if starts:
                    if flush is not None:
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
                w.give(_STOP)
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
    journal: Callable[[dict[str, Any]], None],
    op_timeout: float | None = DEFAULT_OP_TIMEOUT,
    nemesis_timeout: float | None = DEFAULT_NEMESIS_TIMEOUT,
    clock: Clock | None = None,
    seed: int = 0,
    on_progress: Callable[[Progress], None] | None = None,
) -> Progress:
    """Run ``gen`` to exhaustion and return the final :class:`Progress`.

    ``clients`` must be open already (``clients[i]`` on ``ctx.cluster.nodes[i % n]``);
    they are neither opened nor closed here. Every invocation is passed to ``journal``
    *before* its client sees it, every completion as soon as it is taken from the queue,
    each exactly once, with dense ``index`` from 0 and ``time`` in ns since this call
    started (non-decreasing). ``seed`` seeds the generator context's RNG (thread choice
    and every random choice generators make). ``on_progress`` is called at most every
    :data:`PROGRESS_INTERVAL` seconds. See the module docstring for outcomes and
    cancellation.
    """
    run = _Run(
        gen,
        ctx,
        clients,
        nemesis,
        journal,
        op_timeout,
        nemesis_timeout,
        clock or RealClock(),
        seed,
        on_progress,
    )
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
        raise
    await run.stop_workers()
    final = run.progress(run.clock.now_ns() - run.origin)
    if on_progress is not None:
        on_progress(final)
    return final
