"""Where the interpreter gets time: a :class:`Clock` protocol, the real monotonic clock,
and a virtual clock for tests.

:class:`RealClock` reads :func:`time.monotonic_ns` and uses the event loop's timers.
:class:`FakeClock` is virtual time that jumps to the next timer whenever every task is
waiting, so a test of a 60 s time limit takes milliseconds and is deterministic.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

__all__ = ["FAKE_CLOCK_MAX_SETTLE", "FAKE_CLOCK_SETTLE_ROUNDS", "Cancellable", "Clock",
           "FakeClock", "RealClock"]  # fmt: skip

_NS: Final = 1_000_000_000


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
