"""Which nodes a fault strikes: target specs (``one``, ``minority``, ``majority``, ``all``,
``primaries``) resolved to node names.

A target spec is symbolic; its resolution is concrete and is what the fault ledger records
(so a replay can strike the same nodes, or re-resolve the roles). ``primaries`` depends on
the database's state at the moment of the fault (the etcd leader, say), so it can only be
resolved during the run, through the DB adapter's optional ``primaries`` method.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from harness.errors import NemesisError

__all__ = ["TARGET_SPECS", "resolve_targets", "symbolic", "target_nodes"]

#: Target specs, in the order a planner draws from them.
TARGET_SPECS = ("one", "minority", "majority", "all", "primaries")


def resolve_targets(spec: str, nodes: Sequence[str], rng: random.Random) -> list[str]:
    """The nodes ``spec`` names among ``nodes`` (a random choice from ``rng`` where the spec
    leaves one): ``one`` node, a ``minority`` (``(n-1)//2`` nodes, at least one), a
    ``majority`` (``n//2 + 1``) or ``all``. ``primaries`` cannot be resolved here
    (:class:`NemesisError`; it needs the database, see :func:`symbolic`)."""
    n = len(nodes)
    if n == 0:
        raise NemesisError("no nodes to choose fault targets from")
    sizes = {"one": 1, "minority": max(1, (n - 1) // 2), "majority": n // 2 + 1, "all": n}
    if spec not in sizes:
        if spec == "primaries":
            raise NemesisError("`primaries` is resolved during the run, through the database")
        raise NemesisError(
            f"unknown fault target {spec!r}; choose one of {', '.join(TARGET_SPECS)}"
        )
    return sorted(rng.sample(list(nodes), sizes[spec]))


def symbolic(value: Any) -> bool:
    """Whether a fault op's value still names its targets by role (``"primaries"``), so the
    runner must resolve them through the database before the fault acts."""
    if value == "primaries":
        return True
    return (
        isinstance(value, dict) and value.get("targets") == "primaries" and not value.get("nodes")
    )


def target_nodes(value: Any, known: Iterable[str]) -> list[str]:
    """The node names a process-fault op's value names: a list of names, or a dict with
    ``"nodes"``. :class:`NemesisError` for anything else or an unknown node."""
    if isinstance(value, dict):
        value = value.get("nodes")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise NemesisError(f"fault targets must be a list of node names, not {value!r}")
    names = set(known)
    unknown = sorted(set(value) - names)
    if unknown:
        raise NemesisError(
            f"fault targets name unknown node(s) {', '.join(unknown)}; nodes are "
            f"{', '.join(sorted(names))}"
        )
    return sorted(set(value))
