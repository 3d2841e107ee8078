"""The register and set workloads (database-agnostic: the suite supplies the client).

**register** — reads, writes and compare-and-sets of small integers (0–4) on a few keys at
once, Jepsen's "independent" style: the run is a sequence of short per-key histories,
each with several workers on it, so every key sees real concurrency and the
linearizability checker gets many small problems instead of one huge one. Ops::

    {"f": "read",  "key": 7}                 -> ok value: int, or None when absent
    {"f": "write", "key": 7, "value": 3}
    {"f": "cas",   "key": 7, "value": [3, 1]}   -> fail with error CAS_MISMATCH if not 3

Checked with :func:`checkers.linear.check` and the ``etcd`` model (a nil read means the
key is absent; a failed cas observes that the value was not ``from``), per key.

**set** — unique ``{"f": "add", "value": n}`` ops, then a final ``{"f": "read"}`` from
every worker (value: the list of elements), checked by :mod:`checkers.set`.

Generator shape
---------------
The register's generator is a :class:`harness.generator.Gen` that also answers calls (the
next invocation, any arguments ignored); it listens to completions, so that a key's
budget counts only the ops that could have changed or observed it (below). The set's is
a **callable object**, and its final phase a **list of op dicts**. All randomness comes
from ``ctx.rng`` so a seed reproduces the run. With the combinators the final phase would
be written ``each_thread(once({"f": "read"}))``.

A key's budget
--------------
A key is retired after ``ops_per_key`` ops, and a lost or resurrected write shows only if
the key is read again after the fault. An op that *failed* (connection refused, not the
leader, ...) neither changed the register nor observed it, so it is not counted: while
every node is down, workers fail hundreds of ops a second, and counting those retired
every key in use before the nodes came back (on bugkv with a kill of every node held 2 s,
the keys written before the kill were never read again). A cas whose comparison did not
hold (:data:`CAS_MISMATCH`) observed the value and counts.

Once the faults are healed and the recovery time has passed, the register reads each key
in use once more (:func:`register_phases`): a fault that holds until the run's end (a kill
of every node healed only by the final heal) is followed by no other op, so a write it
lost shows only there.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np

from checkers import set as set_checker
from checkers.result import Result
from harness.api import Client, Op, TestContext, Workload
from harness.generator.core import PENDING, Gen, OpResult
from harness.generator.core import op as next_op
from harness.history import FAIL, History, HistoryBuilder
from harness.workloads import check_in_budget, check_max_memory, check_time_limit, option_int

__all__ = [
    "CAS_MISMATCH",
    "DEFAULT_OPS_PER_KEY",
    "DEFAULT_THREADS_PER_KEY",
    "REGISTER_OPTIONS",
    "REGISTER_VALUES",
    "AddGenerator",
    "RegisterGenerator",
    "check_register",
    "drop_unobserved_cas_failures",
    "register_phases",
    "register_workload",
    "set_workload",
]

#: The ``error`` a client gives a cas whose comparison did not hold: the only failed cas
#: that observed something (the value was not ``from``). Other failed cas ops (connection
#: refused, ...) observed nothing and are dropped before checking.
CAS_MISMATCH = "cas-mismatch"
#: Values written and compared: 0 .. REGISTER_VALUES - 1 (few values, so cas often wins).
REGISTER_VALUES = 5
#: Ops generated per key before the key is retired and a fresh one takes its place.
DEFAULT_OPS_PER_KEY = 200
#: Workers per key on average: keys in use at once = max(1, concurrency // this).
DEFAULT_THREADS_PER_KEY = 3

#: The options (``-o NAME=VALUE``) the register workload reads.
REGISTER_OPTIONS = {
    "ops_per_key": f"ops on a key before it is retired ({DEFAULT_OPS_PER_KEY})",
    "threads_per_key": f"workers sharing each key ({DEFAULT_THREADS_PER_KEY})",
}


class RegisterGenerator(Gen):
    """Random read/write/cas invocations over a sliding window of ``keys_at_once`` keys.

    Each invocation picks one of the active keys at random; a key that has been given
    ``ops_per_key`` ops is retired and replaced by the next unused key (0, 1, 2, ...). A
    failed op on an active key (other than a cas that observed a mismatch) is given back
    to the key's budget when its completion is heard (the module's *A key's budget*).

    Mutable, like a callable generator: each call (or :meth:`op` that hands an op out)
    draws the next invocation.
    """

    def __init__(self, rng: random.Random, *, keys_at_once: int, ops_per_key: int) -> None:
        self.rng = rng
        self.ops_per_key = ops_per_key
        self.active = list(range(keys_at_once))
        self.used = dict.fromkeys(self.active, 0)
        self.next_key = keys_at_once
        self._drawn: Op | None = None  # drawn, not yet handed out (no thread was free)

    def __call__(self, *_args: Any) -> Op:
        """The next invocation."""
        slot = self.rng.randrange(len(self.active))
        key = self.active[slot]
        self.used[key] += 1
        if self.used[key] >= self.ops_per_key:
            del self.used[key]
            self.active[slot] = self.next_key
            self.used[self.next_key] = 0
            self.next_key += 1
        f = self.rng.choice(("read", "write", "cas"))
        if f == "read":
            return {"f": "read", "key": key}
        if f == "write":
            return {"f": "write", "key": key, "value": self.rng.randrange(REGISTER_VALUES)}
        frm, to = self.rng.randrange(REGISTER_VALUES), self.rng.randrange(REGISTER_VALUES)
        return {"f": "cas", "key": key, "value": [frm, to]}

    def op(self, ctx: Any) -> OpResult:
        """The next invocation on a free client thread, or ``PENDING`` while none is free
        (the drawn op waits for one: no key is charged twice)."""
        if self._drawn is None:
            self._drawn = self()
        r = next_op(self._drawn, ctx)
        if r is None:
            return None
        if r[0] is PENDING:
            return (PENDING, self)
        self._drawn = None
        return (r[0], self)

    def update(self, ctx: Any, event: Op) -> RegisterGenerator:
        """Give a failed op back to its key's budget (see the class)."""
        if event.get("type") == "fail" and event.get("error") != CAS_MISMATCH:
            key = event.get("key")
            if isinstance(key, int) and self.used.get(key, 0) > 0:
                self.used[key] -= 1
        return self


class AddGenerator:
    """``{"f": "add", "value": n}`` with n = 0, 1, 2, ... (each element added once)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, *_args: Any) -> Op:
        """The next invocation."""
        op = {"f": "add", "value": self.n}
        self.n += 1
        return op


def drop_unobserved_cas_failures(history: History) -> History:
    """``history`` without the failed cas ops (and their invocations) whose error is not
    :data:`CAS_MISMATCH`, including those with no error at all. The ``etcd`` model reads
    every failed cas as "the value was not ``from``"; a cas that failed because it never
    reached the database observed nothing, and dropping it (assuming nothing) is always
    sound. Indices and times are kept."""
    cas = history.f_code("cas")
    if cas < 0:
        return history
    mismatch = next((i for i, v in enumerate(history.values) if v == CAS_MISMATCH), -1)
    observed = history.error == mismatch if mismatch >= 0 else np.zeros(len(history), bool)
    bad = (history.type == FAIL) & (history.f == cas) & ~observed & (history.process >= 0)
    if not bad.any():
        return history
    drop = bad.copy()
    partners = history.pair[bad]
    drop[partners[partners >= 0]] = True
    b = HistoryBuilder(path=history.path)
    for i in np.flatnonzero(~drop).tolist():
        op = history[i]
        b.add(
            type=op.type, process=op.process, f=op.f, value=op.value, time=op.time,
            index=op.index, key=op.key, node=op.node, error=op.error,
            line=int(history.line[i]),
        )  # fmt: skip
    return b.build()


def check_register(history: History, ctx: TestContext | None = None) -> Result:
    """Linearizability of a register history with the ``etcd`` model, key by key, within
    the context's ``check_time_limit`` and ``check_max_memory``."""
    from checkers.linear import check

    options = ctx.options if ctx is not None else {}
    return check(drop_unobserved_cas_failures(history), "etcd",
                 time_limit=check_time_limit(options),
                 max_bytes=check_max_memory(options))  # fmt: skip


def register_workload(ctx: TestContext, *, client: Callable[[], Client]) -> Workload:
    """The register workload with ``client`` making one client per worker.

    Options: ``ops_per_key`` (:data:`DEFAULT_OPS_PER_KEY`), ``threads_per_key``
    (:data:`DEFAULT_THREADS_PER_KEY`).
    """
    ops_per_key = option_int(ctx.options, "ops_per_key", DEFAULT_OPS_PER_KEY)
    per_key = option_int(ctx.options, "threads_per_key", DEFAULT_THREADS_PER_KEY)
    keys = max(1, ctx.concurrency // per_key)
    generator, final = register_phases(
        lambda c: RegisterGenerator(c.rng, keys_at_once=keys, ops_per_key=ops_per_key)
    )
    return Workload(
        name="register",
        client=client,
        generator=generator,
        final_generator=final,
        check=check_register,
        description=(
            f"read/write/cas of values 0-{REGISTER_VALUES - 1} on {keys} key(s) at a time, "
            f"{ops_per_key} ops per key, then a final read of each key in use; "
            "linearizability per key (etcd model)"
        ),
    )


def register_phases(
    make: Callable[[TestContext], RegisterGenerator],
) -> tuple[Callable[[TestContext], RegisterGenerator], Callable[[TestContext], Gen | None]]:
    """The register's two phases for a :class:`~harness.api.Workload`: its generator
    (``make(ctx)``), and the final phase, once the faults are healed and the cluster has
    had its recovery time: one read of each key the generator had in use when the load
    ended. A write lost by a fault that held until the run's end (a kill of every node
    healed only by the final heal) shows only there: no other op follows that heal."""
    made: list[RegisterGenerator] = []

    def generator(ctx: TestContext) -> RegisterGenerator:
        made[:] = [make(ctx)]
        return made[0]

    def final(ctx: TestContext) -> Gen | None:
        return _FinalReads(made[0]) if made else None

    return generator, final


class _FinalReads(Gen):
    """One read of each key ``source`` has in use *when first asked* (the final phase is
    built with the run's plan, before the load has moved past the first keys)."""

    __slots__ = ("source",)
    listens = False

    def __init__(self, source: RegisterGenerator) -> None:
        self.source = source

    def op(self, ctx: Any) -> OpResult:
        return next_op([{"f": "read", "key": k} for k in sorted(self.source.active)], ctx)


def set_workload(ctx: TestContext, *, client: Callable[[], Client]) -> Workload:
    """The set workload: unique adds, then a final read by every worker."""
    return Workload(
        name="set",
        client=client,
        generator=lambda c: AddGenerator(),
        final_generator=lambda c: [{"f": "read"} for _ in range(c.concurrency)],
        check=lambda h, c: check_in_budget(
            "set", h, ctx.options, lambda h, b: set_checker.check(h, budget=b)
        ),
        description="unique adds, then a final read by every worker; no acknowledged add lost",
    )
