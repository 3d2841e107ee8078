"""The rw-register workload: random transactions of register writes and reads, Elle-style.

Database-agnostic (the suite supplies the client). Ops::

    {"f": "txn", "value": [["w", 3, 7], ["r", 4, None]]}
      -> ok, value [["w", 3, 7], ["r", 4, 2]]      (a read of a key never written: None)

Like list-append (:mod:`harness.workloads.list_append`, same options and shape), but a
write overwrites: each key's values are 1, 2, 3, … (each written once), so a read names the
write it saw. Checked by :func:`checkers.txn.check` with the ``rw-register`` model, for the
consistency model of the ``isolation``/``consistency`` options.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from checkers.result import Result
from harness.api import Client, Op, TestContext, Workload
from harness.history import History
from harness.workloads import check_max_memory, check_time_limit
from harness.workloads.list_append import (
    OPTIONS,
    ListAppendGenerator,
    consistency_model,
    isolation_option,
    txn_shape,
)

__all__ = ["OPTIONS", "RwRegisterGenerator", "check_rw_register", "rw_register_workload"]

# OPTIONS (imported): list-append's, which this workload reads the same way.


class RwRegisterGenerator:
    """Random rw-register transactions: list-append's generator with writes for appends
    (each key's values 1, 2, 3, … written once; keys retired after ``max_writes_per_key``)."""

    def __init__(self, rng: random.Random, **shape: int) -> None:
        self._appends = ListAppendGenerator(rng, **shape)

    def __call__(self, *_args: Any) -> Op:
        """The next invocation: ``{"f": "txn", "value": [mops]}``."""
        op = self._appends()
        return {"f": "txn", "value": [["w" if f == "append" else f, k, v]
                                      for f, k, v in op["value"]]}  # fmt: skip


def check_rw_register(history: History, ctx: TestContext | None = None) -> Result:
    """The transactional check of an rw-register history, for the consistency model of the
    context's options (serializable without a context)."""
    from checkers.txn import DEFAULT_TIME_LIMIT, check

    options = ctx.options if ctx is not None else {}
    limit = check_time_limit(options, DEFAULT_TIME_LIMIT)
    return check(history, "rw-register", consistency_model(options), time_limit=limit,
                 max_memory=check_max_memory(options))


def rw_register_workload(ctx: TestContext, *, client: Callable[[], Client]) -> Workload:
    """The rw-register workload with ``client`` making one client per worker."""
    o = ctx.options
    shape = txn_shape(o)
    RwRegisterGenerator(random.Random(0), **shape)  # validate the shape now, not mid-run
    return Workload(
        name="rw-register",
        client=client,
        generator=lambda c: RwRegisterGenerator(c.rng, **shape),
        check=check_rw_register,
        description=(
            f"transactions of {shape['min_txn_length']}-{shape['max_txn_length']} writes "
            f"and reads over {shape['key_count']} keys at a time at {isolation_option(o)}; "
            f"checked for {consistency_model(o)} (rw-register, Elle-style)"
        ),
    )
