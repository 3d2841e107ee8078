"""The set-full workload: unique adds while other clients keep reading the whole set.

Database-agnostic. Ops: ``{"f": "add", "value": n}`` (n = 0, 1, 2, ...; each once) and
``{"f": "read"}`` -> ok, value: every element. After the faults are healed every worker
reads once more. Checked by :mod:`checkers.collections.set_full` (Jepsen's set-full: per
element stable, lost, never read, stale; duplicates). Options: ``read_fraction``
(:data:`DEFAULT_READ_FRACTION`), ``linearizable`` (false: stale elements are invalid).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

from checkers.collections import set_full as set_full_checker
from harness.api import Client, Op, TestContext, Workload
from harness.workloads import check_in_budget, option_bool, option_float

__all__ = ["DEFAULT_READ_FRACTION", "OPTIONS", "SetFullGenerator", "set_full_workload"]

DEFAULT_READ_FRACTION = 0.3

#: The options (``-o NAME=VALUE``) the set-full workload reads.
OPTIONS = {
    "read_fraction": f"the share of ops that read the whole set ({DEFAULT_READ_FRACTION})",
    "linearizable": "also check that no read misses an add acknowledged before it began (false)",
}


class SetFullGenerator:
    """Adds of fresh integers, and reads (``reads`` of the ops)."""

    def __init__(self, rng: random.Random, *, reads: float) -> None:
        self.rng, self.reads = rng, reads
        self.numbers = itertools.count()

    def __call__(self, *_args: Any) -> Op:
        """The next invocation."""
        if self.rng.random() < self.reads:
            return {"f": "read"}
        return {"f": "add", "value": next(self.numbers)}


def set_full_workload(ctx: TestContext, *, client: Callable[[], Client]) -> Workload:
    """The set-full workload with ``client`` making one client per worker."""
    reads = option_float(ctx.options, "read_fraction", DEFAULT_READ_FRACTION)
    linearizable = option_bool(ctx.options, "linearizable", False)
    return Workload(
        name="set-full",
        client=client,
        generator=lambda c: SetFullGenerator(c.rng, reads=reads),
        final_generator=lambda c: [{"f": "read"} for _ in range(c.concurrency)],
        check=lambda h, c: check_in_budget(
            "set-full",
            h,
            ctx.options,
            lambda h, b: set_full_checker.check(h, linearizable=linearizable, budget=b),
        ),
        description=(
            "unique adds and concurrent reads of the whole set; per element: stable, lost, "
            "never read, stale" + (" (stale is invalid)" if linearizable else "")
        ),
    )
