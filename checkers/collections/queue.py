"""The queue checkers: does what goes in come out, once, and nothing else?

A *queue* workload enqueues unique values (``{"f": "enqueue", "value": x}``), dequeues
(``{"f": "dequeue"}`` completing ``ok`` with the value, or ``None`` when the queue was
empty) and, at the end, drains what is left (``{"f": "drain"}`` completing ``ok`` with the
list of values; Jepsen expands a drain into one dequeue per value).

**total-queue** (Jepsen's ``total-queue``), with multisets of values:

* **lost** — enqueued ``ok`` but never dequeued;
* **unexpected** — dequeued but never enqueued (not even attempted);
* **duplicated** — dequeued more times than enqueues were attempted;
* **recovered** — dequeued, enqueue outcome unknown (informational).

Valid iff nothing is lost or unexpected and, unless ``duplicates_allowed`` (an
at-least-once queue), nothing is duplicated — Jepsen reports duplicates but does not fail
on them. One refinement: a dequeue or drain with an unknown outcome (``info``) may have
taken elements nobody saw, even after its ``info`` was recorded (a request held up by a
partition may take effect later). When they could have taken every lost element (each
unknown dequeue one, an unknown drain any number), the verdict is ``"unknown"`` rather
than invalid: a definite *lost* needs more lost elements than unknown dequeues could
have taken, and no unknown drain.

**linearizable queue**: when the history has at most ``linear_max_ops`` client ops (a
small history), it is also checked with :mod:`checkers.linear`'s FIFO model
(``linearizable-queue``)
(drained values become concurrent dequeues within the drain's window, so any order is
allowed, and so does one dequeue that found the queue empty: a drain ends when nothing is
left). ``linear_max_ops=0`` turns that off. A drain of unknown outcome (``info``, or
never completed) may have taken any of the values at the queue's head: it becomes as many
concurrent dequeues of unknown outcome as values could still be there (dropping it would
make the values it took look skipped; skipping the FIFO check would miss values dequeued
out of order). Result details: the total-queue fields and ``linearizable`` (the
linear checker's result, or why it was skipped). The verdicts merge (false beats unknown
beats true).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from checkers.collections._budget import Budget, Meter, linear_limits
from checkers.collections._ops import client_ops, completion_type, hashable, listed
from checkers.result import UNKNOWN, Result, merge_validity
from harness.errors import HistoryError
from harness.history import INFO, INVOKE, OK, History, HistoryBuilder

__all__ = ["DEFAULT_LINEAR_MAX_OPS", "check", "check_total", "expand_drains"]

#: Largest history (client ops) also checked for linearizability with the queue model.
DEFAULT_LINEAR_MAX_OPS = 2000


def _multiset(c: Counter[Any]) -> list[Any]:
    return listed(c.elements())


def check_total(
    history: History, *, duplicates_allowed: bool = False, budget: Budget | None = None
) -> Result:
    """Jepsen's total-queue check with the refinements above; a pure function.
    ``budget``: the time and memory it may take (raises
    :class:`~checkers.txn.budget.OutOfBudget` when spent; see
    :func:`checkers.collections.check_within`).

    Raises :class:`HistoryError` naming the line for an ok drain whose value is no list.
    """
    t0 = time.perf_counter()
    attempts: Counter[Any] = Counter()
    enqueues: Counter[Any] = Counter()
    dequeues: Counter[Any] = Counter()
    unknown_dequeues = 0
    unknown_drains = 0
    enq, drain = history.f_code("enqueue"), history.f_code("drain")
    meter = Meter(budget, "total-queue")
    for pos in client_ops(history, "enqueue", "dequeue", "drain"):
        meter.add()
        t, f = int(history.type[pos]), int(history.f[pos])
        if f == enq:
            if t == INVOKE:
                attempts[hashable(history.value_of(pos))] += 1
            elif t == OK:
                enqueues[hashable(history.value_of(int(history.pair[pos])))] += 1
            continue
        if t == INVOKE:
            if history.pair[pos] < 0:  # never completed
                unknown_dequeues += f != drain
                unknown_drains += f == drain
            continue
        if t == INFO:
            unknown_dequeues += f != drain
            unknown_drains += f == drain
        if t != OK:
            continue
        value = history.value_of(pos)
        if f == drain:
            if not isinstance(value, list | tuple):
                raise HistoryError(
                    f"an ok drain must complete with a list of values, got {value!r} "
                    f"(op index {int(history.index[pos])})",
                    path=history.path,
                    line=int(history.line[pos]),
                )
            meter.add(len(value))
            dequeues.update(hashable(v) for v in value)
        elif value is not None:
            dequeues[hashable(value)] += 1
    meter.check()
    ok = dequeues & attempts
    unexpected = Counter({x: n for x, n in dequeues.items() if x not in attempts})
    duplicated = dequeues - attempts - unexpected
    lost = enqueues - dequeues
    recovered = ok - enqueues
    n_lost = sum(lost.values())
    causes = []
    valid: bool | str = True
    if unexpected:
        causes.append(f"{sum(unexpected.values())} value(s) dequeued that were never enqueued")
    if duplicated and not duplicates_allowed:
        causes.append(f"{sum(duplicated.values())} extra dequeue(s) of values enqueued fewer times")
    if n_lost:
        causes.append(f"{n_lost} acknowledged enqueue(s) never dequeued")
    if causes:
        valid = False
    only_lost = n_lost and not unexpected and not (duplicated and not duplicates_allowed)
    # (an info op may take effect any time after its invocation, even after the info was
    # recorded: a request held up by a partition; so any of them may have taken any value)
    if only_lost and (unknown_drains or unknown_dequeues >= n_lost):
        valid = UNKNOWN
        causes[-1] += (
            f", but {unknown_dequeues} dequeue(s) and {unknown_drains} drain(s) have unknown "
            "outcomes and may have taken them"
        )
    return Result(
        valid=valid,  # type: ignore[arg-type]
        checker="total-queue",
        cause="; ".join(causes) or None,
        seconds=time.perf_counter() - t0,
        details={
            "attempt_count": sum(attempts.values()),
            "acknowledged_count": sum(enqueues.values()),
            "ok_count": sum(ok.values()),
            "unexpected_count": sum(unexpected.values()),
            "duplicated_count": sum(duplicated.values()),
            "lost_count": n_lost,
            "recovered_count": sum(recovered.values()),
            "unknown_dequeue_count": unknown_dequeues,
            "unknown_drain_count": unknown_drains,
            "lost": _multiset(lost),
            "unexpected": _multiset(unexpected),
            "duplicated": _multiset(duplicated),
            "recovered": _multiset(recovered),
        },
    )


def expand_drains(history: History) -> History:
    """``history`` with every ``ok`` drain of values ``[a, b, ...]`` replaced by concurrent
    ``ok`` dequeues of ``a``, ``b``, ... and one that found the queue empty (a drain ends
    when nothing is left: ``drain -> []`` says the queue was empty), spanning the drain's
    invocation and completion (one fresh process each); every drain of unknown outcome
    (``info``, or never completed) by as many concurrent dequeues of unknown outcome as
    values could still have been in the queue (each may have taken the head, or not: any
    prefix of what was there); ``fail`` drains dropped. Other ops are unchanged."""
    drain = history.f_code("drain")
    if drain < 0:
        return history
    fresh = int(history.process.max(initial=0)) + 1
    unseen = _values_not_seen_out(history)
    base: dict[int, int] = {}  # drain invocation position -> its first fresh process
    takes: dict[int, int] = {}  # drain invocation position -> dequeues it becomes
    for i in client_ops(history, "drain"):
        if history.type[i] != INVOKE:
            continue
        done = int(history.pair[i])
        outcome = completion_type(history, i)
        values = history.value_of(done) if outcome == OK else None
        if outcome == OK and isinstance(values, list | tuple):
            takes[i] = len(values) + 1  # (and the dequeue that found it empty)
        elif outcome == INFO:
            takes[i] = unseen
        else:
            continue
        base[i] = fresh
        fresh += takes[i]
    b = HistoryBuilder(path=history.path)
    for i in range(len(history)):
        op = history[i]
        if history.f[i] != drain or history.process[i] < 0:
            b.add(
                type=op.type,
                process=op.process,
                f=op.f,
                value=op.value,
                time=op.time,
                key=op.key,
                node=op.node,
                error=op.error,
                line=int(history.line[i]),
            )
            continue
        invoked = i if op.type == "invoke" else int(history.pair[i])
        if invoked not in base:
            continue
        if op.type == "ok":
            taken = [*history.value_of(i), None]
        else:
            taken = [None] * takes[invoked]
        for k, v in enumerate(taken):
            b.add(
                type=op.type,  # invoke, ok, or info
                process=base[invoked] + k,
                f="dequeue",
                value=v,
                time=op.time,
                line=int(history.line[i]),
            )
    return b.build()


def _values_not_seen_out(history: History) -> int:
    """How many enqueue attempts no ``ok`` dequeue or drain returned: the most values a
    drain of unknown outcome could have taken."""
    attempts = 0
    out = 0
    enq, drain = history.f_code("enqueue"), history.f_code("drain")
    for pos in client_ops(history, "enqueue", "dequeue", "drain"):
        t, f = int(history.type[pos]), int(history.f[pos])
        if f == enq:
            attempts += t == INVOKE
        elif t == OK:
            value = history.value_of(pos)
            if f == drain:
                out += len(value) if isinstance(value, list | tuple) else 0
            else:
                out += value is not None
    return max(0, attempts - out)


def check(
    history: History,
    *,
    duplicates_allowed: bool = False,
    linear_max_ops: int = DEFAULT_LINEAR_MAX_OPS,
    linear_time_limit: float = 10.0,
    budget: Budget | None = None,
) -> Result:
    """total-queue, plus the linearizable FIFO queue model when the history is small (see
    the module docstring); a pure function of ``history``.
    ``budget``: the time and memory it may take (raises
    :class:`~checkers.txn.budget.OutOfBudget` when spent; see
    :func:`checkers.collections.check_within`).
    """
    t0 = time.perf_counter()
    total = check_total(history, duplicates_allowed=duplicates_allowed, budget=budget)
    n_ops = int((history.process >= 0).sum())
    linear: dict[str, Any]
    valid = total.valid
    cause = total.cause
    if linear_max_ops <= 0 or n_ops > linear_max_ops:
        linear = {"skipped": f"{n_ops} client ops > linear_max_ops={linear_max_ops}"}
    else:
        from checkers.linear import check as linear_check

        seconds, max_bytes = linear_limits(budget, linear_time_limit)
        lin = linear_check(
            expand_drains(history), "linearizable-queue", time_limit=seconds, max_bytes=max_bytes
        )
        linear = lin.to_json()
        valid = merge_validity([total.valid, lin.valid])
        if lin.valid is not True:
            cause = "; ".join(c for c in (cause, f"linearizable queue: {lin.cause}") if c)
    return Result(
        valid=valid,
        checker="queue",
        cause=cause,
        seconds=time.perf_counter() - t0,
        details={**total.details, "linearizable": linear},
    )
