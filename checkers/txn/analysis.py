"""What a model's analysis hands to the cycle search: edges, anomalies, explanations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from checkers.txn.graph import Edges

__all__ = ["Analysis", "Step"]

#: One explained edge: ``{"type", "key", "value", "value2", "text"}`` (JSON-able).
Step = dict[str, Any]


@dataclass(slots=True)
class Analysis:
    """Data-dependency edges and non-cycle anomalies of one history.

    ``must_happen`` marks the transactions a serial order must contain; ``versions`` (an
    :class:`checkers.txn.rw_register.Versions`) lets the checker try total version orders.
    ``explain(a, b, rel)`` says in words why ``a`` precedes ``b`` by relation ``rel``
    (a label bit), naming the transactions ``{a}`` and ``{b}`` as format fields; it
    returns ``None`` if it cannot find a reason.
    """

    edges: list[Edges]
    anomalies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    explain: Callable[[int, int, int], Step | None] = lambda a, b, rel: None
    stats: dict[str, Any] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    #: Per transaction: must it appear in a serial order (ok, or info with writes seen)?
    must_happen: npt.NDArray[np.bool_] | None = None
    #: rw-register only: the inferred version orders, to try total orders from.
    versions: Any = None

    def add(self, name: str, record: dict[str, Any]) -> None:
        """Record one anomaly of type ``name``."""
        self.anomalies.setdefault(name, []).append(record)
