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
