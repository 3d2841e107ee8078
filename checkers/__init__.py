"""Checkers: pure functions of a history that answer valid, invalid or unknown.

A checker reads a :class:`harness.history.History` and nothing else (no network, no
cluster), so every verdict can be recomputed offline with ``clew check`` or
``clew analyze``.
"""

from checkers.result import UNKNOWN, Result, Validity, merge_validity

__all__ = ["UNKNOWN", "Result", "Validity", "merge_validity"]
