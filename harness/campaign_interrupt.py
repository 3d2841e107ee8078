"""Ctrl-C for campaigns: the first one stops them cleanly, the second abandons them.

Campaign runs are made in threads (``bench/bugs.py``) or on Dask workers, where Python's
own Ctrl-C (KeyboardInterrupt in the main thread, or asyncio's cancellation of a run in
the main thread) does not reach them. While :func:`stop_on_ctrl_c` lasts, the first
Ctrl-C sets the campaigns' stop event (no campaign or run starts after it) and a
thread tells the executor to interrupt the runs in flight (each is healed, its database
torn down, and it returns as interrupted), again every few seconds so that a run that was
just starting is reached too; the second Ctrl-C raises KeyboardInterrupt (abandon them).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["INTERRUPT_EVERY", "stop_on_ctrl_c"]

#: Seconds between two interrupts of the runs in flight after the first Ctrl-C.
INTERRUPT_EVERY = 2.0

_FIRST = ("interrupted ({}): no new campaign or run starts; the runs in flight are "
          "being stopped (faults healed, databases torn down), recorded, and counted as a "
          "detection only if invalid; the campaign ends as interrupted. "
          "Ctrl-C again to abandon them at once.")  # fmt: skip


@contextlib.contextmanager
def stop_on_ctrl_c(
    stop: threading.Event,
    interrupt: Callable[[str], Any],
    say: Callable[[str], None],
    *,
    every: float = INTERRUPT_EVERY,
) -> Iterator[threading.Event]:
    """While the block lasts (in the main thread; elsewhere it changes nothing): the first
    Ctrl-C sets ``stop``, says so with ``say`` and calls ``interrupt`` (with ``"Ctrl-C"``,
    or ``"SIGTERM"`` for that signal) at once and every
    ``every`` seconds until the block ends (an error of ``interrupt`` is ignored); a
    second Ctrl-C raises KeyboardInterrupt. SIGTERM, unless handled already, does as a
    Ctrl-C. Yields ``stop``. The previous handlers are restored at the end."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    done = threading.Event()
    pressed = threading.Event()

    how: list[str] = []

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if pressed.is_set():
            raise KeyboardInterrupt
        how.append("SIGTERM" if signum == signal.SIGTERM else "Ctrl-C")
        pressed.set()
        stop.set()

    def interrupter() -> None:  # the work is done here, not in the signal handler
        pressed.wait()
        if done.is_set():
            return
        name = how[0] if how else "Ctrl-C"
        say(_FIRST.format(name))
        while not done.is_set():
            with contextlib.suppress(Exception):
                interrupt(name)
            done.wait(every)

    previous = signal.signal(signal.SIGINT, on_sigint)
    # SIGTERM (kill, timeout, a cancelled CI job) as a Ctrl-C, unless someone handles it:
    # by default it ended the campaign at once, its run unhealed until the leases ran out.
    term = signal.getsignal(signal.SIGTERM)
    if term is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, on_sigint)
    thread = threading.Thread(target=interrupter, name="clew-ctrl-c", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
        if term is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, term)
        done.set()
        pressed.set()  # wakes the interrupter, which sees done and ends
