"""One client call as the interpreter runs it: the worker that makes it, what it answered
(or raised) as a completion, and starting it eagerly.

A :class:`Worker` is one thread of a run: its client's (or the nemesis's) ``invoke``, its
node, a one-message inbox, its task and that task's context, and the deadline of the call
it runs. A call is either made by the worker (:class:`Started` with ``aw`` None) or
started eagerly by the scheduler (:func:`as_worker_tasks`: its first step runs as the
worker's task) and then handed over, still waiting on what it yielded (:func:`resume`
goes on from there). :func:`completion` and :func:`failure` turn what a call returned or
raised into completion fields.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import types
from collections.abc import Callable, Generator
from typing import Any, Final

from harness.api import DefiniteError, IndefiniteError, Op, TestContext
from harness.generator.context import NEMESIS, Thread

__all__ = [
    "CANCELLED",
    "EAGER_STARTS",
    "FRESH",
    "STOP",
    "Started",
    "Worker",
    "as_worker_tasks",
    "completion",
    "failure",
    "resume",
]

_NS: Final = 1_000_000_000
_TYPES: Final = frozenset({"ok", "fail", "info"})

#: The message that stops a worker.
STOP: Final[Any] = object()
#: ``Started.waiting_on`` of an awaitable its worker has to start itself.
FRESH: Final[Any] = object()


class Worker:
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
        one): a sleep op, a :class:`Started` client call, or ``STOP``."""
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(o)
        else:
            self.slot = o


class Started:
    """A client call for a worker to see through, for invocation ``inv``: ``aw``, the
    coroutine ``invoke`` returned, already started and now waiting on ``waiting_on``
    (what it yielded to the event loop); or (``aw`` None, ``waiting_on`` ``FRESH``) a
    call the worker makes itself."""

    __slots__ = ("aw", "inv", "waiting_on")

    def __init__(self, aw: Any, inv: Op, waiting_on: Any) -> None:
        self.aw = aw
        self.inv = inv
        self.waiting_on = waiting_on


@types.coroutine
def resume(coro: Any, waiting_on: Any) -> Generator[Any, Any, Any]:
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


def classify(c: Any, nemesis: bool) -> Op:
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


def completion(c: Any, nemesis: bool) -> Op:
    """The completion fields a client's answer ``c`` stands for: ``c`` itself when it is
    the usual well-formed client dict, else checked (:func:`classify`)."""
    if c.__class__ is dict and not nemesis and c.get("type") in _TYPES:
        return c
    return classify(c, nemesis)


def failure(e: Exception) -> Op:
    """The completion of a call that raised ``e``: ``fail`` for :class:`DefiniteError`,
    else ``info``."""
    if isinstance(e, DefiniteError):
        return {"type": "fail", "error": str(e) or type(e).__name__}
    if isinstance(e, IndefiniteError):
        return {"type": "info", "error": str(e) or type(e).__name__}
    return {"type": "info", "error": f"indeterminate: {type(e).__name__}: {e}"}


CANCELLED: Final = "indeterminate: the client was cancelled"


# -- eager starts: the one use of asyncio's internals ----------------------------------------
# Running a call's first step inside the scheduler *as its worker's task* needs the event
# loop's current-task bookkeeping, private in Python 3.11 (3.12's eager tasks use the same
# two functions). bench/generator.py measured what it buys: about a quarter more operations
# per CPU-second than handing every call to its worker task (e.g. 42,000 against 33,000 on
# a loaded 2-core machine). Without them (or with EAGER_STARTS off) every call is handed
# over: the same history, one task switch per op slower; the unit tests compare the two.
_enter_task: Callable[[Any, Any], None] | None = getattr(asyncio.tasks, "_enter_task", None)
_leave_task: Callable[[Any, Any], None] | None = getattr(asyncio.tasks, "_leave_task", None)
#: Whether client calls start eagerly (see above).
EAGER_STARTS: bool = _enter_task is not None and _leave_task is not None


def as_worker_tasks(
    loop: asyncio.AbstractEventLoop,
    scheduler: asyncio.Task[Any],
    starts: list[tuple[Worker, Op]],
    step: Callable[[Worker, Op, int], None],
    now: int,
) -> None:
    """Call ``step(w, inv, now)`` for each of ``starts`` with ``w.task`` as the loop's
    current task (the scheduler's task is current again afterwards)."""
    assert _enter_task is not None and _leave_task is not None
    _leave_task(loop, scheduler)
    try:
        for w, inv in starts:
            _enter_task(loop, w.task)
            try:
                step(w, inv, now)
            finally:
                _leave_task(loop, w.task)
    finally:
        _enter_task(loop, scheduler)
