"""Generators: workloads and fault schedules as plain values.

This is a tutorial. It shows how to say *what* a test does – which operations, how
many, how fast, on which threads, in which phases – without writing any concurrency
code. The interpreter (:mod:`harness.interpreter`) does the running; you describe.

1. An op is a dict
------------------
A client operation is a dict with an ``"f"`` (what to do) and usually a ``"value"``
(and a ``"key"`` for keyed workloads)::

    {"f": "write", "key": 3, "value": 4}

That dict is already a generator: one op, then done. When it is asked for an op it fills
in ``"type": "invoke"``, the ``"process"`` of a free worker thread (picked at random
with the run's seeded RNG) and the ``"time"`` (now). The interpreter adds ``index`` and
``node`` and journals it before the client sees it.

2. Plain values compose
-----------------------
* ``None`` is an empty generator.
* A list (or tuple, or any iterable) runs its elements one after the other::

      [{"f": "write", "value": 1}, {"f": "read"}]     # a write, then a read

* A callable is called to get a generator, and called again each time that one is
  used up – the way to make fresh (random) ops forever::

      def write(ctx):
          return {"f": "write", "value": ctx.rng.randrange(5)}

  A callable may take the :class:`GenContext` (for ``ctx.rng``, the **only**
  randomness you should use, so that ``--seed`` reproduces a run) or nothing. It ends
  when it returns ``None``. It may be called more often than its ops are used (an op
  that is not due yet is asked for again later), so keep it free of side effects
  beyond drawing from ``ctx.rng`` – a counter in it may skip numbers.

You can try all of this at the prompt, without a cluster, with
:func:`harness.generator.testing.simulate` (instant fake clients, simulated time)::

    >>> from harness.generator.testing import simulate
    >>> h = simulate(limit(4, mix([read, write])), concurrency=2, latency=0.01)
    >>> [(o["type"], o["process"], o["f"]) for o in h][:3]
    [('invoke', 0, 'write'), ('invoke', 1, 'write'), ('ok', 0, 'write')]

3. Combinators
--------------
Everything else is built from small functions that take and return generators.

How many: :func:`limit` ``(n, g)``, :func:`once` ``(g)``, :func:`repeat` ``(g, n=None)``
(the same op again and again – with a callable, a fresh one each time),
:func:`cycle` ``(g, n=None)`` (all of ``g``, then again from the start)::

    limit(1000, mix([read, write, cas]))     # 1000 random register ops

Which: :func:`mix` (a random choice per op), :func:`any_` (whichever is due first),
:func:`flip_flop` (alternate), :func:`map_` and :func:`filter_` (transform or skip ops),
:func:`until_ok` (repeat until one completes ``ok``)::

    until_ok(repeat({"f": "read"}))          # read until a read succeeds

When: :func:`stagger` ``(dt, g)`` spaces ops by random intervals in [0, 2·dt] – a
*total* rate of 1/dt ops/s however many threads there are; :func:`delay` ``(dt, g)``
spaces them exactly; :func:`time_limit` ``(dt, g)`` stops ``dt`` seconds after its first
op (ops in flight still finish). ``sleep(dt)`` and ``log(msg)`` are special ops that keep
a thread busy for a while or print a line; neither is journaled::

    time_limit(60, stagger(0.01, mix([read, write])))   # ~100 ops/s for a minute

Who: the threads are ``0 .. concurrency-1`` (clients) plus ``"nemesis"`` when the test
has one. A bare dict runs on *any* free thread, the nemesis's included, so at the top
level always say who: :func:`clients`, :func:`nemesis`, :func:`on_threads`,
:func:`reserve` ``(n1, g1, n2, g2, ..., default)`` (dedicate threads),
:func:`each_thread` (a copy per thread), :func:`process_limit` (bound the number of
processes, i.e. of crashed ops), :func:`concurrency_limit` (bound ops in flight)::

    clients(reserve(2, writes, reads))       # threads 0-1 write, the others read

Phases: :func:`phases` runs generators one after the other, each starting only once
every thread is idle; :func:`then` ``(a, b)`` is the two-phase case and
:func:`synchronize` the barrier itself.

4. A whole test
---------------
A typical test: clients and faults together for a while, then heal, wait, and read::

    def write(ctx):
        return {"f": "write", "value": ctx.rng.randrange(5)}

    def read(ctx):
        return {"f": "read"}

    workload = stagger(0.01, mix([read, write]))
    faults = flip_flop(repeat({"f": "start-partition"}), repeat({"f": "stop-partition"}))

    generator = phases(
        time_limit(60, any_(clients(workload), nemesis(stagger(5, faults)))),
        nemesis(once({"f": "stop-partition"})),
        log("waiting for the cluster to recover"),
        sleep(10),
        clients(each_thread(once({"f": "read"}))),
    )

5. How it works (and writing your own)
--------------------------------------
A generator is an immutable value. The interpreter asks it with
:func:`op` ``(gen, ctx)``, which returns ``(op, next_gen)``, ``(PENDING, next_gen)``
(nothing yet: every thread it may use is busy, or it is waiting for something) or
``None`` (exhausted, for good). Asking does not use anything up: if the op's ``time`` is
in the future, the interpreter waits until then (or until a completion arrives) and asks
the *same* generator again. After recording an invocation or a completion it calls
:func:`update` ``(gen, ctx, event)`` so generators can react (that is how
:func:`until_ok` and :func:`concurrency_limit` work). The ``ctx`` (a
:class:`GenContext`) says what time it is, which threads exist and are free, which
process each runs, and holds the seeded RNG; combinators such as :func:`clients` hand
their inner generator a restricted view.

Most workloads need nothing more than dicts, callables and the combinators. To write a
new combinator, subclass :class:`Gen` and implement ``op`` (and ``update`` if it reacts
to events), returning new objects rather than changing ``self``. Semantics follow
Jepsen's generator library, with one naming difference: ``then(a, b)`` is "a, then b".
"""

from __future__ import annotations

from harness.generator.basic import (
    any_,
    cycle,
    filter_,
    flip_flop,
    limit,
    map_,
    mix,
    once,
    phases,
    repeat,
    synchronize,
    then,
    until_ok,
)
from harness.generator.context import NEMESIS, GenContext, Process, Thread
from harness.generator.core import PENDING, Gen, GeneratorError, Op, OpResult, Pending, op, update
from harness.generator.threads import (
    clients,
    concurrency_limit,
    each_thread,
    nemesis,
    on_threads,
    process_limit,
    reserve,
)
from harness.generator.timing import delay, log, sleep, stagger, time_limit

__all__ = [
    "NEMESIS",
    "PENDING",
    "Gen",
    "GenContext",
    "GeneratorError",
    "Op",
    "OpResult",
    "Pending",
    "Process",
    "Thread",
    "any_",
    "clients",
    "concurrency_limit",
    "cycle",
    "delay",
    "each_thread",
    "filter_",
    "flip_flop",
    "limit",
    "log",
    "map_",
    "mix",
    "nemesis",
    "on_threads",
    "once",
    "op",
    "phases",
    "process_limit",
    "repeat",
    "reserve",
    "sleep",
    "stagger",
    "synchronize",
    "then",
    "time_limit",
    "until_ok",
    "update",
]
