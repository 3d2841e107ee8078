"""Checkers of Jepsen's collection and workload shapes, by model name.

``CHECKERS`` maps a model name that ``clew check --model NAME`` accepts (``bank``,
``counter``, ``set-full``, ``unique-ids``, ``long-fork``, ``queue``, ``lock``, …) to a pure
function ``check(history, **options) -> Result``. Each lives in a module of its own in this
package and is listed here; the CLI and the run's analysis only read this mapping.
"""

from __future__ import annotations

from collections.abc import Callable

from checkers.result import Result

__all__ = ["CHECKERS", "CollectionChecker"]

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
