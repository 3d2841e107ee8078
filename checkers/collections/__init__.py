"""Checkers of Jepsen's collection and workload shapes, by model name.

``CHECKERS`` maps a model name that ``clew check --model NAME`` accepts (``bank``,
``counter``, ``set-full``, ``unique-ids``, ``long-fork``, ``queue``, ``lock``, …) to a pure
function ``check(history, **options) -> Result``. Each lives in a module of its own in this
package and is listed here; the CLI and the run's analysis only read this mapping.

Every checker takes a ``budget`` keyword (a :class:`~checkers.txn.budget.Budget`, or
``None`` for none); :func:`check_within` runs one under a time limit and a memory budget
and answers ``unknown`` naming the budget when it runs out (``checkers/collections/_budget.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from checkers.result import UNKNOWN, Result

__all__ = ["CHECKERS", "CollectionChecker", "check_within"]

#: ``check(history, **options) -> Result`` — a pure function of the history.
CollectionChecker = Callable[..., Result]

#: Model name → checker. Each module of this package adds its entry as it lands.
CHECKERS: dict[str, CollectionChecker] = {}

# The checkers, each in its own module (imported here so the registry is complete).
from checkers.collections import bank, counter, lock, long_fork, queue, set_full, unique_ids  # noqa: E402

CHECKERS.update(
    {
        "bank": bank.check,
        "counter": counter.check,
        "set-full": set_full.check,
        "unique-ids": unique_ids.check,
        "long-fork": long_fork.check,
        "queue": queue.check,
        "total-queue": queue.check_total,
        "lock": lock.check,
    }
)


def check_within(
    model: str,
    history: Any,
    *,
    time_limit: float | None,
    max_memory: int | None,
    started: float | None = None,
    **options: Any,
) -> Result:
    """Run the checker registered as ``model`` on ``history`` within ``time_limit``
    seconds since ``started`` (a :func:`time.perf_counter` instant; default: now) and
    ``max_memory`` bytes of resident memory added since the check began (``None``: no
    limit). Running out answers ``unknown`` with the cause (``ran out of time in the
    set-full phase (time limit 5 s)``) and ``details.unknown`` as the transactional
    checker's; never a hang. ``options`` go to the checker. (A checker registered from
    outside that takes no ``budget`` keyword runs without one.)"""
    from checkers.collections._budget import Budget, OutOfBudget

    t0 = time.perf_counter() if started is None else started
    checker = CHECKERS[model]
    if _takes_budget(checker):
        options["budget"] = Budget(t0, time_limit, max_memory)
    try:
        return checker(history, **options)
    except (OutOfBudget, MemoryError) as e:
        if isinstance(e, MemoryError):
            e = OutOfBudget(model, "memory", "an allocation failed")
        return Result(
            valid=UNKNOWN,
            checker=model,
            cause=str(e),
            seconds=time.perf_counter() - t0,
            details={"unknown": [{"type": "budget", "phase": e.phase, "resource": e.resource}]},
        )


def _takes_budget(checker: CollectionChecker) -> bool:
    """Whether ``checker`` takes the ``budget`` keyword (every checker of this package)."""
    import inspect

    try:
        params = inspect.signature(checker).parameters
    except (TypeError, ValueError):
        return False
    return "budget" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
