"""The dependency graph: labelled edges between transactions, as arrays.

Edge labels are a byte bitset (Elle's layout): ww 1, wr 2, rw 4, process 64, realtime 128.
Duplicate ``(src, dst)`` pairs are merged by OR-ing their labels. Strongly connected
components of the whole graph come from :func:`scipy.sparse.csgraph.connected_components`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from checkers.txn.parse import Txns
from harness.history import FAIL, OK

__all__ = [
    "PROCESS",
    "REALTIME",
    "RW",
    "WR",
    "WW",
    "Graph",
    "build_graph",
    "process_edges",
    "realtime_edges",
]

WW, WR, RW, PROCESS, REALTIME = 1, 2, 4, 64, 128
REL_NAMES = {WW: "ww", WR: "wr", RW: "rw", PROCESS: "process", REALTIME: "realtime"}

I32 = npt.NDArray[np.int32]
Edges = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint8]]


def edges(src: npt.ArrayLike, dst: npt.ArrayLike, label: int) -> Edges:
    """Edges ``src[i] → dst[i]`` with one label, self-edges dropped."""
    s = np.asarray(src, dtype=np.int64)
    d = np.asarray(dst, dtype=np.int64)
    keep = s != d
    s, d = s[keep], d[keep]
    return s, d, np.full(len(s), label, dtype=np.uint8)


@dataclass(slots=True)
class Graph:
    """A CSR adjacency matrix over transactions with uint8 labels as data."""

    n: int
    csr: sp.csr_matrix

    @property
    def n_edges(self) -> int:
        """Number of distinct ``(src, dst)`` pairs."""
        return int(self.csr.nnz)

    def project(self, mask: int) -> sp.csr_matrix:
        """The subgraph of edges with any label in ``mask``."""
        keep = (self.csr.data & mask) != 0
        m = self.csr.copy()
        m.data = np.where(keep, m.data, 0).astype(np.uint8)
        m.eliminate_zeros()
        return m

    def sccs(self, mask: int = 0xFF) -> tuple[int, I32]:
        """``(count, component of each vertex)`` of the projection on ``mask``."""
        g = self.csr if mask == 0xFF else self.project(mask)
        count, comp = connected_components(g, directed=True, connection="strong")
        return int(count), comp.astype(np.int32)


def build_graph(n: int, parts: list[Edges]) -> Graph:
    """Merge edge lists into one graph over ``n`` vertices (duplicates OR-ed)."""
    # One sort of (edge code, label) packed together; labels of equal edges then OR-ed.
    # Built in place, one column at a time: with millions of edges each temporary is tens
    # of MB, and the graph is built when the check holds the most (issue 17's peak RSS).
    m = max(n, 1)
    both = np.empty(sum(len(p[0]) for p in parts), dtype=np.int64)
    at = 0
    for src, dst, lab in parts:
        part = both[at : at + len(src)]
        np.multiply(src, m, out=part)
        part += dst
        part <<= 8
        part |= lab
        at += len(src)
    both.sort()
    labels = both.astype(np.uint8)  # the low 8 bits
    code = both
    code >>= 8
    if len(code):
        first = np.empty(len(code), dtype=bool)
        first[0] = True
        np.not_equal(code[1:], code[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        del first
        labels = np.bitwise_or.reduceat(labels, starts).astype(np.uint8)
        code = code[starts]
        del both, starts
    d = (code % m).astype(np.int32)
    code //= m  # the sources
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(code, minlength=n), out=indptr[1:])
    del code
    csr = sp.csr_matrix((labels, d, indptr), shape=(n, n))
    return Graph(n=n, csr=csr)


def process_edges(tx: Txns) -> Edges:
    """Each ok transaction → the next ok transaction of the same process."""
    ok = np.flatnonzero(tx.type == OK)
    order = ok[np.lexsort((tx.cmp[ok], tx.process[ok]))]
    same = tx.process[order[1:]] == tx.process[order[:-1]]
    return edges(order[:-1][same], order[1:][same], PROCESS)


def realtime_edges(tx: Txns) -> tuple[Edges, int]:
    """Realtime order (an ok transaction completed before another was invoked) as edges
    through virtual barrier vertices ``tx.n, tx.n + 1, …``: linear in the history's size.
    Returns the edges and the number of barrier vertices."""
    from checkers.txn.kernels import realtime_barrier_edges as kernel

    n = tx.n
    has_inv = tx.inv >= 0
    pos = np.concatenate([tx.inv[has_inv], tx.cmp[tx.type == OK]])
    txn = np.concatenate([np.flatnonzero(has_inv), np.flatnonzero(tx.type == OK)]).astype(np.int32)
    is_inv = np.concatenate(
        [np.ones(int(has_inv.sum()), bool), np.zeros(int((tx.type == OK).sum()), bool)]
    )
    order = np.argsort(pos, kind="stable")
    src, dst, nb = kernel(txn[order], is_inv[order], tx.type == OK, tx.type != FAIL, n)
    return edges(src, dst, REALTIME), int(nb)
