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
from typing import TYPE_CHECKING, Protocol

from checkers.result import UNKNOWN, Result

__all__ = ["CHECKERS", "CollectionChecker", "check_within", "within_budget"]

if TYPE_CHECKING:
    from checkers.txn.budget import Budget
    from harness.history import History


class CollectionChecker(Protocol):
    """``check(history, *, budget=None) -> Result`` (a checker may take options of its own,
    with defaults): a pure function of the history, which counts its work against
    ``budget`` (raising :class:`~checkers.txn.budget.OutOfBudget` when it is spent)."""

    def __call__(self, history: History, *, budget: Budget | None = ...) -> Result:
        """Check ``history``."""
        ...


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
    history: History,
    *,
    time_limit: float | None,
    max_memory: int | None,
    started: float | None = None,
) -> Result:
    """Run the checker registered as ``model`` on ``history`` within ``time_limit``
    seconds since ``started`` (a :func:`time.perf_counter` instant; default: now) and
    ``max_memory`` bytes of resident memory added since the check began (``None``: no
    limit), as :func:`within_budget` does."""
    return within_budget(
        model,
        lambda budget: CHECKERS[model](history, budget=budget),
        time_limit=time_limit,
        max_memory=max_memory,
        started=started,
    )


def within_budget(
    name: str,
    check: Callable[[Budget], Result],
    *,
    time_limit: float | None,
    max_memory: int | None,
    started: float | None = None,
) -> Result:
    """``check(budget)``, with a budget of ``time_limit`` seconds since ``started`` (a
    :func:`time.perf_counter` instant; default: now) and ``max_memory`` bytes of resident
    memory added since then (``None``: no limit). Running out answers ``unknown`` with the
    cause (``ran out of time in the set-full phase (time limit 5 s)``) and
    ``details.unknown`` as the transactional checker's; never a hang. ``name`` names the
    checker in the result when an allocation fails."""
    from checkers.collections._budget import Budget, OutOfBudget

    t0 = time.perf_counter() if started is None else started
    try:
        return check(Budget(t0, time_limit, max_memory))
    except (OutOfBudget, MemoryError) as e:
        if isinstance(e, MemoryError):
            e = OutOfBudget(name, "memory", "an allocation failed")
        return Result(
            valid=UNKNOWN,
            checker=name,
            cause=str(e),
            seconds=time.perf_counter() - t0,
            details={"unknown": [{"type": "budget", "phase": e.phase, "resource": e.resource}]},
        )
