"""The queue workload: enqueues and dequeues, then a drain of what is left.

Database-agnostic. Ops: ``{"f": "enqueue", "value": n}`` (n = 0, 1, 2, ...; each once),
``{"f": "dequeue"}`` -> ok, value: the element, or None when the queue was empty; after
the faults are healed, one ``{"f": "drain"}`` per worker -> ok, value: every element it
took. Checked by :mod:`checkers.collections.queue`: total-queue (nothing lost, duplicated
or unexpected) and, when the history is small, the linearizable FIFO queue model. A
database queue that does not promise FIFO order (a ``SKIP LOCKED`` table under concurrent
consumers) is checked with ``linear_max_ops=0`` by its suite. Options:
``dequeue_fraction`` (:data:`DEFAULT_DEQUEUE_FRACTION`), ``linear_max_ops``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

from checkers.collections import queue as queue_checker
from harness.api import Client, Op, TestContext, Workload
from harness.workloads import check_in_budget, option_float

__all__ = ["DEFAULT_DEQUEUE_FRACTION", "OPTIONS", "QueueGenerator", "queue_workload"]

DEFAULT_DEQUEUE_FRACTION = 0.4

#: The options (``-o NAME=VALUE``) the queue workload reads.
OPTIONS = {
    "dequeue_fraction": f"the share of ops that dequeue ({DEFAULT_DEQUEUE_FRACTION})",
    "linear_max_ops": "histories of at most this many ops are also checked against a "
    "linearizable queue (0: never)",
}


class QueueGenerator:
    """Enqueues of fresh integers and dequeues (``dequeues`` of the ops)."""

    def __init__(self, rng: random.Random, *, dequeues: float) -> None:
        self.rng, self.dequeues = rng, dequeues
        self.numbers = itertools.count()

    def __call__(self, *_args: Any) -> Op:
        """The next invocation."""
        if self.rng.random() < self.dequeues:
            return {"f": "dequeue"}
        return {"f": "enqueue", "value": next(self.numbers)}


def queue_workload(
    ctx: TestContext, *, client: Callable[[], Client], linear_max_ops: int, note: str = ""
) -> Workload:
    """The queue workload with ``client`` making one client per worker; the linearizable
    queue model is tried on histories of at most ``linear_max_ops`` client ops (the
    ``linear_max_ops`` option overrides it; 0 = never)."""
    dequeues = option_float(ctx.options, "dequeue_fraction", DEFAULT_DEQUEUE_FRACTION)
    raw = ctx.options.get("linear_max_ops", linear_max_ops)
    try:
        linear = int(raw)
    except (TypeError, ValueError):
        from harness.errors import ConfigError

        raise ConfigError(f"option 'linear_max_ops' must be an integer, got {raw!r}") from None
    return Workload(
        name="queue",
        client=client,
        generator=lambda c: QueueGenerator(c.rng, dequeues=dequeues),
        final_generator=lambda c: [{"f": "drain"} for _ in range(c.concurrency)],
        check=lambda h, c: check_in_budget(
            "queue",
            h,
            ctx.options,
            lambda h, b: queue_checker.check(h, linear_max_ops=linear, budget=b),
        ),
        description=(
            f"enqueues and dequeues{note}, then a drain; nothing lost, duplicated or "
            "unexpected" + (f"; FIFO-linearizable when at most {linear} ops" if linear else "")
        ),
    )
