"""Checker results: a three-valued verdict plus details.

Every checker answers ``valid`` ∈ {``True``, ``False``, ``"unknown"``}. Combining results,
false beats unknown beats true: one invalid part makes the whole invalid; one part that
could not be decided (out of budget, crashed) makes an otherwise valid whole unknown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["UNKNOWN", "Result", "Validity", "merge_validity"]

UNKNOWN: Literal["unknown"] = "unknown"
Validity = bool | Literal["unknown"]

_RANK = {True: 0, UNKNOWN: 1, False: 2}


def merge_validity(values: Iterable[Validity]) -> Validity:
    """The combined verdict: False if any is False, else "unknown" if any is, else True."""
    worst: Validity = True
    for v in values:
        if _RANK[v] > _RANK[worst]:
            worst = v
    return worst


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """What a checker found.

    ``cause`` is a one-line explanation for people when the verdict is not ``True``
    (why invalid, or why it could not be decided). ``details`` holds checker-specific,
    JSON-serialisable data (statistics, the failing key, a counterexample).
    """

    valid: Validity
    checker: str
    cause: str | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-serialisable dict."""
        return {
            "valid": self.valid,
            "checker": self.checker,
            "cause": self.cause,
            "seconds": self.seconds,
            **self.details,
        }

    @property
    def exit_code(self) -> int:
        """Jepsen's convention: 0 valid, 1 invalid, 2 unknown."""
        return {True: 0, False: 1, UNKNOWN: 2}[self.valid]
