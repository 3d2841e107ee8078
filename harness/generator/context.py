"""The context a generator is asked in: the time, the threads, their processes, the RNG.

A :class:`GenContext` is owned by an interpreter (the real one in
:mod:`harness.interpreter`, or :func:`harness.generator.testing.simulate`), which updates
it between questions. Generators only *read* it, and only for the duration of one
``op``/``update`` call: never keep a context, it changes under you.

Threads are ``0 .. concurrency-1`` (the client workers) plus ``"nemesis"`` when the test
has a nemesis. A thread runs one *process* at a time: client thread ``t`` starts as
process ``t`` and, each time an op of its crashes (``info``), continues as
``process + concurrency``; the nemesis thread's process is always ``"nemesis"``.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterable
from typing import Final

__all__ = ["NEMESIS", "GenContext", "Process", "Thread"]

#: The nemesis thread's name, and its (only) process.
NEMESIS: Final = "nemesis"

#: A worker thread: an int for clients, ``"nemesis"`` for the nemesis.
Thread = int | str
#: A process: an int for clients (renumbered after a crash), ``"nemesis"`` for the nemesis.
Process = int | str


class GenContext:
    """What a generator may look at when it is asked for an op.

    * ``time`` – now, in ns since the run started (the interpreter's clock);
    * ``threads`` – the threads this generator may use, in canonical order (clients by
      number, then the nemesis). Combinators such as :func:`clients` hand their inner
      generator a *restricted* context that shows fewer threads;
    * :meth:`free_threads`, :meth:`process_of`, :meth:`thread_of`,
      :meth:`some_free_process` – who is idle and which process each thread runs;
    * ``rng`` – the run's seeded :class:`random.Random`: the only randomness a generator
      may use, so that a seed reproduces a run.

    ``free`` (the set of idle threads) and ``processes`` (thread → process) are shared by
    a context and its views; only interpreters change them. So is ``free_clients``, the
    idle client threads in ascending order, which interpreters keep alongside ``free``
    (``mark_busy``/``mark_free`` do) when the context made its own ``free`` set, and which
    is ``None`` otherwise: it spares :meth:`some_free_process` a scan per op.
    """

    __slots__ = (
        "_shows_clients",
        "concurrency",
        "free",
        "free_clients",
        "processes",
        "rng",
        "threads",
        "time",
    )

    def __init__(
        self,
        *,
        threads: Iterable[Thread],
        concurrency: int,
        rng: random.Random,
        time: int = 0,
        free: set[Thread] | None = None,
        processes: dict[Thread, Process] | None = None,
    ) -> None:
        self.threads: tuple[Thread, ...] = tuple(threads)
        self.concurrency = concurrency
        self.rng = rng
        self.time = time
        self.free: set[Thread] = set(self.threads) if free is None else free
        self.free_clients: list[int] | None = (
            sorted(t for t in self.threads if isinstance(t, int)) if free is None else None
        )
        self.processes: dict[Thread, Process] = (
            {t: t for t in self.threads} if processes is None else processes
        )
        self._shows_clients: bool | None = None  # whether threads are exactly the clients

    def __repr__(self) -> str:
        return (
            f"GenContext(time={self.time}, threads={self.threads!r}, free={self.free_threads()!r})"
        )

    # -- reading ---------------------------------------------------------------------------

    def free_threads(self) -> list[Thread]:
        """The idle threads of this context, in canonical order."""
        free = self.free
        return [t for t in self.threads if t in free]

    def is_free(self, thread: Thread) -> bool:
        """Whether ``thread`` is idle (whether or not this context shows it)."""
        return thread in self.free

    def all_threads_free(self) -> bool:
        """Whether every thread of this context is idle (what :func:`synchronize` waits
        for)."""
        free = self.free
        return all(t in free for t in self.threads)

    def process_of(self, thread: Thread) -> Process:
        """The process ``thread`` currently runs."""
        return self.processes[thread]

    def thread_of(self, process: Process) -> Thread:
        """The thread that runs (or ran) ``process``."""
        if isinstance(process, str) or not self.concurrency:
            return process
        return process % self.concurrency

    def some_free_process(self) -> Process | None:
        """The process of a free thread chosen at random (seeded), or ``None`` if every
        thread of this context is busy."""
        threads = self.threads
        shows_clients = self._shows_clients
        if shows_clients is None:
            shows_clients = self._shows_clients = threads == tuple(range(self.concurrency))
        if shows_clients and self.free_clients is not None:
            ts: list[Thread] = self.free_clients  # type: ignore[assignment]  # the hot path
        elif len(threads) == 1:
            t = threads[0]
            return self.processes[t] if t in self.free else None
        else:
            free = self.free
            ts = [t for t in threads if t in free]
        n = len(ts)
        if not n:
            return None
        # int(random() * n) rather than randrange: several times cheaper, still seeded.
        t = ts[0] if n == 1 else ts[int(self.rng.random() * n)]
        return self.processes[t]

    # -- views -----------------------------------------------------------------------------

    def restrict(self, keep: Callable[[Thread], bool] | Iterable[Thread]) -> GenContext:
        """A view of this context showing only the threads ``keep`` accepts (a predicate
        or a collection of threads). Time, RNG and busy/idle state are shared."""
        if callable(keep):
            threads = tuple(t for t in self.threads if keep(t))
        else:
            allowed = frozenset(keep)
            threads = tuple(t for t in self.threads if t in allowed)
        return self.view(threads)

    def view(self, threads: tuple[Thread, ...]) -> GenContext:
        """A view showing exactly ``threads`` (already a subset, in canonical order)."""
        v = GenContext.__new__(GenContext)
        v.threads = threads
        v.concurrency = self.concurrency
        v.rng = self.rng
        v.time = self.time
        v.free = self.free
        v.free_clients = self.free_clients
        v.processes = self.processes
        v._shows_clients = None
        return v

    # -- for interpreters only --------------------------------------------------------------

    def mark_busy(self, thread: Thread) -> None:
        """(Interpreters) ``thread`` was given an op."""
        if thread in self.free:
            self.free.discard(thread)
            if self.free_clients is not None and isinstance(thread, int):
                self.free_clients.remove(thread)

    def mark_free(self, thread: Thread) -> None:
        """(Interpreters) ``thread`` finished its op."""
        if thread not in self.free:
            self.free.add(thread)
            if self.free_clients is not None and isinstance(thread, int):
                bisect.insort(self.free_clients, thread)

    def set_process(self, thread: Thread, process: Process) -> None:
        """(Interpreters) ``thread`` now runs ``process`` (after a crash)."""
        self.processes[thread] = process
