"""The lock workload: every worker acquires a lock, holds it a moment, releases it.

Database-agnostic. Each worker loops: ``{"f": "acquire"}``, a pause of ``hold`` seconds
(not journaled: the worker just waits), ``{"f": "release"}``. A release by a worker that
does not hold the lock completes ``fail`` (error ``not-held``) without asking the
database. After the faults are healed every worker releases once more. Checked by
:mod:`checkers.collections.lock`: no two holds overlap in real time, and, when the
history is small, the linearizable mutex model. Options: ``hold`` (seconds,
:data:`DEFAULT_HOLD`).
"""

from __future__ import annotations

from collections.abc import Callable

from checkers.collections import lock as lock_checker
from harness.api import Client, TestContext, Workload
from harness.generator import cycle, each_thread, sleep
from harness.workloads import check_in_budget, option_float

__all__ = ["DEFAULT_HOLD", "NOT_HELD", "OPTIONS", "lock_workload"]

DEFAULT_HOLD = 0.2

#: The options (``-o NAME=VALUE``) the lock workload reads.
OPTIONS = {"hold": f"seconds each worker holds the lock ({DEFAULT_HOLD})"}
#: The error of a release by a client that does not hold the lock.
NOT_HELD = "not-held"


def lock_workload(ctx: TestContext, *, client: Callable[[], Client], note: str = "") -> Workload:
    """The lock workload with ``client`` making one client per worker."""
    hold = option_float(ctx.options, "hold", DEFAULT_HOLD)
    return Workload(
        name="lock",
        client=client,
        generator=lambda c: each_thread(cycle([{"f": "acquire"}, sleep(hold), {"f": "release"}])),
        final_generator=lambda c: each_thread({"f": "release"}),
        check=lambda h, c: check_in_budget(
            "lock", h, ctx.options, lambda h, b: lock_checker.check(h, budget=b)
        ),
        description=(
            f"acquire, hold {hold:g} s, release{note}; no two holds may overlap (and, when "
            "small, the history must be linearizable for a mutex)"
        ),
    )
