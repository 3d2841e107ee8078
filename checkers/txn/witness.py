"""Proof of validity: a serial order of the transactions, replayed.

When no anomaly was found, the checker asks for a witness: a topological order of the
dependency graph (with its realtime or process edges, if any), restricted to the
transactions that must have happened (``ok``, and ``info`` ones whose writes were read),
then replayed from the initial state. If every read of an ``ok`` transaction returns what
the replay holds at that point, a serial order exists and the history is serializable (and
strict-serializable when the graph held the realtime order). Among the transactions ready
at each step the one that completed first is taken, which is how real databases commit.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from checkers.txn import kernels
from checkers.txn.graph import Graph
from checkers.txn.parse import NIL, Txns

__all__ = ["replay", "serial_order"]

I64 = npt.NDArray[np.int64]


def serial_order(tx: Txns, g: Graph, must: npt.NDArray[np.bool_]) -> I64 | None:
    """A topological order of ``g`` keeping the transactions in ``must``, or ``None`` if
    ``g`` has a cycle. Vertices past ``tx.n`` (realtime barriers) are dropped."""
    priority = np.full(g.n, -1, dtype=np.int64)
    priority[: tx.n] = tx.cmp
    csr = g.csr
    order = kernels.topological_order(
        csr.indptr.astype(np.int64), csr.indices.astype(np.int64), priority
    )
    if len(order) < g.n:
        return None
    order = order[order < tx.n]
    return order[must[order]]


def replay(tx: Txns, order: I64, initial: Mapping[int, int] | None = None) -> int:
    """Run ``order`` serially (see :func:`checkers.txn.kernels.replay`): the first mop whose
    read disagrees, or -1 if every read agrees."""
    init = np.full(max(len(tx.keys), 1), NIL, dtype=np.int64)
    for k, v in (initial or {}).items():
        init[k] = v
    return int(
        kernels.replay(
            order,
            tx.mop_lo,
            tx.m_f,
            tx.m_key,
            tx.m_val,
            tx.m_len,
            tx.elems,
            init,
            len(tx.keys),
            tx.model == "list-append",
        )
    )
