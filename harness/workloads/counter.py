"""The counter workload: increments of one counter, and reads of it.

Database-agnostic. Ops: ``{"f": "add", "value": n}`` (n from 1 to ``max_add``; with
``decrements=true`` also negative) and ``{"f": "read"}`` -> ok, value: the counter.
Checked by :mod:`checkers.collections.counter`: every read between what surely and what
possibly was added when it ran. Options: ``max_add`` (:data:`DEFAULT_MAX_ADD`),
``decrements`` (false), ``read_fraction`` (:data:`DEFAULT_READ_FRACTION`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from checkers.collections import counter as counter_checker
from harness.api import Client, Op, TestContext, Workload
from harness.workloads import check_in_budget, option_bool, option_float, option_int

__all__ = [
    "DEFAULT_MAX_ADD",
    "DEFAULT_READ_FRACTION",
    "OPTIONS",
    "CounterGenerator",
    "counter_workload",
]

DEFAULT_MAX_ADD = 5
DEFAULT_READ_FRACTION = 0.5

#: The options (``-o NAME=VALUE``) the counter workload reads.
OPTIONS = {
    "max_add": f"the largest increment ({DEFAULT_MAX_ADD})",
    "decrements": "whether adds may be negative (false)",
    "read_fraction": f"the share of ops that read the counter ({DEFAULT_READ_FRACTION})",
}


class CounterGenerator:
    """Reads and adds of 1..max_add (or -max_add..max_add without 0, with decrements)."""

    def __init__(self, rng: random.Random, *, max_add: int, decrements: bool, reads: float):
        self.rng, self.max_add, self.decrements, self.reads = rng, max_add, decrements, reads

    def __call__(self, *_args: Any) -> Op:
        """The next invocation."""
        if self.rng.random() < self.reads:
            return {"f": "read"}
        n = self.rng.randint(1, self.max_add)
        if self.decrements and self.rng.random() < 0.5:
            n = -n
        return {"f": "add", "value": n}


def counter_workload(ctx: TestContext, *, client: Callable[[], Client]) -> Workload:
    """The counter workload with ``client`` making one client per worker."""
    o = ctx.options
    max_add = option_int(o, "max_add", DEFAULT_MAX_ADD)
    decrements = option_bool(o, "decrements", False)
    reads = option_float(o, "read_fraction", DEFAULT_READ_FRACTION)
    return Workload(
        name="counter",
        client=client,
        generator=lambda c: CounterGenerator(
            c.rng, max_add=max_add, decrements=decrements, reads=reads
        ),
        final_generator=lambda c: [{"f": "read"} for _ in range(c.concurrency)],
        check=lambda h, c: check_in_budget(
            "counter", h, ctx.options, lambda h, b: counter_checker.check(h, budget=b)
        ),
        description=(
            f"adds of {'±' if decrements else ''}1-{max_add} to one counter and reads of it; "
            "every read between the sure and the possible sum"
        ),
    )
