"""The long-fork workload: single-key inserts, and reads of whole groups of keys.

Database-agnostic (Jepsen's ``jepsen.tests.long-fork``). Keys come in groups of
``group_size`` (keys 0-2, 3-5, ... for 3). Ops::

    {"f": "write", "value": [["w", 7, 1]]}                      # insert key 7, once
    {"f": "read",  "value": [["r", 6, None], ["r", 8, None], ["r", 7, None]]}
        -> ok, value [["r", 6, 1], ["r", 8, None], ["r", 7, 1]]  # None: absent

Writes take fresh keys in order; reads cover the group of a key written recently (the
group still being filled, or one of the last few), in shuffled order. Checked by
:mod:`checkers.collections.long_fork`: any two reads of a group must be ordered (one sees
a subset of the other's keys). Options: ``group_size`` (:data:`DEFAULT_GROUP_SIZE`),
``read_fraction`` (:data:`DEFAULT_READ_FRACTION`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from checkers.collections import long_fork as long_fork_checker
from harness.api import Client, Op, TestContext, Workload
from harness.workloads import check_in_budget, option_float, option_int

__all__ = [
    "DEFAULT_GROUP_SIZE",
    "DEFAULT_READ_FRACTION",
    "OPTIONS",
    "LongForkGenerator",
    "long_fork_workload",
]

DEFAULT_GROUP_SIZE = 3
DEFAULT_READ_FRACTION = 0.6

#: The options (``-o NAME=VALUE``) the long-fork workload reads.
OPTIONS = {
    "group_size": f"keys read together in one txn ({DEFAULT_GROUP_SIZE})",
    "read_fraction": f"the share of txns that read a group ({DEFAULT_READ_FRACTION})",
}
#: Reads pick the group of one of the last this-many written keys.
RECENT_KEYS = 4


class LongForkGenerator:
    """Inserts of fresh keys and shuffled reads of recent groups (see the module docstring)."""

    def __init__(self, rng: random.Random, *, group_size: int, reads: float) -> None:
        self.rng, self.n, self.reads = rng, group_size, reads
        self.next_key = 0

    def __call__(self, *_args: Any) -> Op:
        """The next invocation."""
        rng = self.rng
        if self.next_key and rng.random() < self.reads:
            k = max(0, self.next_key - 1 - rng.randrange(RECENT_KEYS))
            base = k - k % self.n
            keys = list(range(base, base + self.n))
            rng.shuffle(keys)
            return {"f": "read", "value": [["r", key, None] for key in keys]}
        k = self.next_key
        self.next_key += 1
        return {"f": "write", "value": [["w", k, 1]]}


def long_fork_workload(
    ctx: TestContext, *, client: Callable[[], Client], note: str = ""
) -> Workload:
    """The long-fork workload with ``client`` making one client per worker."""
    n = option_int(ctx.options, "group_size", DEFAULT_GROUP_SIZE)
    reads = option_float(ctx.options, "read_fraction", DEFAULT_READ_FRACTION)
    return Workload(
        name="long-fork",
        client=client,
        generator=lambda c: LongForkGenerator(c.rng, group_size=n, reads=reads),
        check=lambda h, c: check_in_budget(
            "long-fork",
            h,
            ctx.options,
            lambda h, b: long_fork_checker.check(h, group_size=n, budget=b),
        ),
        description=(
            f"inserts of single keys and reads of groups of {n}{note}; no two reads of a group "
            "may see the inserts in different orders (long fork)"
        ),
    )
