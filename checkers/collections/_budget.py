"""The collection checkers' time and memory budget.

``clew check --time-limit`` and ``--max-memory`` hold for the collection checkers as for
the others: :func:`checkers.collections.check_within` makes one
:class:`~checkers.txn.budget.Budget` (seconds since the file was opened; resident memory
added since the check began) and hands it to the checker, whose long loops count their
work on a :class:`Meter`. Every so much work the meter checks the budget, and running out
raises :class:`~checkers.txn.budget.OutOfBudget` naming the checker, which
:func:`~checkers.collections.check_within` turns into an ``unknown`` verdict.

Work is counted in units of about one Python-level step (an op, an element of a read, a
tracked element a read lacks), so a check whose cost is not linear in the history (a
set-full history whose reads each lack most of many elements) still looks at the clock in
time.
"""

from __future__ import annotations

from checkers.txn.budget import Budget, OutOfBudget

__all__ = ["Budget", "Meter", "OutOfBudget", "linear_limits"]

#: Units of work between two looks at the budget (a few milliseconds of work).
CHECK_EVERY = 1 << 14


class Meter:
    """Counts a checker's work and checks ``budget`` (if any) every :data:`CHECK_EVERY`
    units; ``phase`` names the checker in the message of :class:`OutOfBudget`."""

    __slots__ = ("budget", "next", "phase", "work")

    def __init__(self, budget: Budget | None, phase: str) -> None:
        self.budget = budget
        self.phase = phase
        self.work = 0
        self.next = CHECK_EVERY

    def add(self, units: int = 1) -> None:
        """Count ``units`` of work; raise :class:`OutOfBudget` when the budget is spent."""
        self.work += units
        if self.work >= self.next:
            self.next = self.work + CHECK_EVERY
            if self.budget is not None:
                self.budget.check(self.phase)

    def check(self) -> None:
        """Check the budget now (at the end of a phase, or before a large step)."""
        if self.budget is not None:
            self.budget.check(self.phase)


def linear_limits(budget: Budget | None, time_limit: float) -> tuple[float, int]:
    """``(time_limit, max_bytes)`` of a linearizability check a collection checker runs
    inside its own ``budget``: at most ``time_limit`` seconds and never past the budget's
    end; the budget's memory (else the linearizability checker's default)."""
    from checkers.linear.budget import DEFAULT_MAX_BYTES

    if budget is None:
        return time_limit, DEFAULT_MAX_BYTES
    left = budget.left()
    seconds = time_limit if left is None else max(min(time_limit, left), 1e-3)
    return seconds, DEFAULT_MAX_BYTES if budget.max_memory is None else budget.max_memory
