"""Budgets for the search: defaults, and a watchdog that raises stop flags at deadlines.

The kernel cannot read a clock, so it polls an ``int64[1]`` stop flag every 65,536 steps.
One daemon thread per process sleeps until the nearest deadline and sets the flags due.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time

import numpy as np
import numpy.typing as npt

__all__ = [
    "CANCELLED",
    "DEFAULT_COUNTEREXAMPLE_TIME_LIMIT",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIME_LIMIT",
    "TIMED_OUT",
    "deadline",
]

#: Seconds a check may take before it answers "unknown".
DEFAULT_TIME_LIMIT = 300.0
#: Bytes the search caches of one check may hold together (split among its threads).
DEFAULT_MAX_BYTES = 2 * 1024**3
#: Seconds for the second pass that builds a counterexample.
DEFAULT_COUNTEREXAMPLE_TIME_LIMIT = 10.0

#: Values of a stop flag: why the search was stopped.
TIMED_OUT = 1
CANCELLED = 2


#: Seconds the watchdog sleeps at most before it looks at its nearest deadline again.
_LONGEST_WAIT = 3600.0


class _Watchdog:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, npt.NDArray[np.int64]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, at: float, flag: npt.NDArray[np.int64]) -> int:
        with self._cond:
            token = next(self._seq)
            nearest = not self._heap or at < self._heap[0][0]
            heapq.heappush(self._heap, (at, token, flag))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="clew-watchdog", daemon=True)
                self._thread.start()
            elif nearest:
                # Woken only when it sleeps too long now: waking it costs the caller the GIL
                # for a while, once per check (a hundred small files: a tenth of a second).
                self._cond.notify()
            return token

    def _run(self) -> None:
        with self._cond:
            while True:
                if not self._heap:
                    self._cond.wait()
                    continue
                at, _, flag = self._heap[0]
                now = time.monotonic()
                if at > now:
                    # Capped: a wait of years (--time-limit 1e300) overflows the lock's timeout
                    # and would kill this thread, and every later deadline with it.
                    self._cond.wait(min(at - now, _LONGEST_WAIT))
                    continue
                heapq.heappop(self._heap)
                if flag[0] == 0:
                    flag[0] = TIMED_OUT


_WATCHDOG = _Watchdog()


class deadline:  # used like a function: ``with deadline(s) as stop:``
    """A stop flag that the watchdog raises after ``seconds`` (never, if ``None``).

    Use as a context manager; leaving it disarms the flag (by marking it as handled), so a
    late watchdog tick never touches a flag that has been reused. Leaving it by an
    exception raises the flag (``CANCELLED``): searches in other threads stop.
    """

    def __init__(self, seconds: float | None) -> None:
        self.flag: npt.NDArray[np.int64] = np.zeros(1, dtype=np.int64)
        self._seconds = seconds

    def __enter__(self) -> npt.NDArray[np.int64]:
        if self._seconds is not None:
            _WATCHDOG.add(time.monotonic() + self._seconds, self.flag)
        return self.flag

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        # Left by an exception (a Ctrl-C's KeyboardInterrupt while the main thread waited
        # on the searches): the searches still running in worker threads stop at their
        # next poll, instead of running on to the deadline. Flags are not reused after
        # exit; a later tick sets a value nobody reads.
        if exc_type is not None and self.flag[0] == 0:
            self.flag[0] = CANCELLED
        return None
