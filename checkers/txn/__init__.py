"""Transactional anomaly checking (Elle-style) for list-append and rw-register histories.

:func:`check` infers a dependency graph between transactions from what clients observed
and searches it for the cycles (G0, G1c, G-single, G-nonadjacent, G2 and their process and
realtime variants) and other anomalies (G1a, G1b, internal, lost-update, …) that rule out
a requested consistency model. See ``docs`` and ``checkers/txn/check.py``.
"""

from checkers.txn.check import (
    DEFAULT_CONSISTENCY,
    DEFAULT_MAX_CYCLES,
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_VERSION_ORDERS,
    DEFAULT_SCC_TIME_LIMIT,
    DEFAULT_TIME_LIMIT,
    MODELS,
    check,
)

__all__ = [
    "DEFAULT_CONSISTENCY",
    "DEFAULT_MAX_CYCLES",
    "DEFAULT_MAX_MEMORY",
    "DEFAULT_MAX_VERSION_ORDERS",
    "DEFAULT_SCC_TIME_LIMIT",
    "DEFAULT_TIME_LIMIT",
    "MODELS",
    "check",
]
