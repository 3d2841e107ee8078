"""Cycle search by anomaly class inside strongly connected components.

A *spec* names an anomaly class by what its cycles may and must contain (Adya's
definitions as Elle phrases them):

=====================  ==========================  ====================================
class                  edges                       constraint
=====================  ==========================  ====================================
G0                     ww                          —
G1c                    ww, wr                      ≥ 1 wr
G-single-item          ww, wr + rw                 exactly 1 rw
G-nonadjacent-item     ww, wr + rw                 ≥ 2 rw, no two adjacent (cyclically)
G2-item                ww, wr, rw                  ≥ 2 rw, two of them adjacent
X-process              the above + process         ≥ 1 process edge
X-realtime             the above + process, rt     ≥ 1 realtime edge
=====================  ==========================  ====================================

The search is a breadth-first search over (vertex, automaton state) from each start
vertex, the state holding the required relations seen, the rw count (0, 1, 2+), whether
the last edge was rw and whether two rw were adjacent. It returns a shortest closed walk
through the start that satisfies the spec. An edge carrying several labels may be used as
any of them. Each start vertex is tried in order until the deadline passes; the search
keeps to the start's strongly connected component in the edges the class may use
(vertices outside any cycle of those edges are not tried at all).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from checkers.txn.graph import PROCESS, REALTIME, REL_NAMES, RW, WR, WW

__all__ = ["SPECS", "Cycle", "Spec", "classify", "find_cycle", "specs_for"]

#: rw constraints of a spec.
NO_RW, SINGLE, NONADJACENT, ADJACENT, ANY_RW = range(5)


@dataclass(frozen=True, slots=True)
class Spec:
    """An anomaly class as a cycle constraint (see the module docstring)."""

    name: str
    allowed: int  # non-rw relations a step may use
    rw: int  # one of NO_RW, SINGLE, NONADJACENT, ADJACENT, ANY_RW
    need: int  # relations the cycle must use at least once (a bitmask)


def _specs() -> list[Spec]:
    out: list[Spec] = []
    for suffix, extra, need in (("", 0, 0), ("-process", PROCESS, PROCESS),
                                ("-realtime", PROCESS | REALTIME, REALTIME)):  # fmt: skip
        out += [
            Spec("G0" + suffix, WW | extra, NO_RW, need),
            Spec("G1c" + suffix, WW | WR | extra, NO_RW, need | WR),
            Spec("G-single-item" + suffix, WW | WR | extra, SINGLE, need),
            Spec("G-nonadjacent-item" + suffix, WW | WR | extra, NONADJACENT, need),
            Spec("G2-item" + suffix, WW | WR | extra, ADJACENT, need),
        ]
    return out


#: Every spec, in the order searched: by severity, then process, then realtime variants.
SPECS: list[Spec] = _specs()
SPEC_BY_NAME = {s.name: s for s in SPECS}


def specs_for(names: Iterable[str], relations: int) -> list[Spec]:
    """The specs among ``names`` whose extra relations are in the graph, in search order."""
    want = set(names)
    return [s for s in SPECS if s.name in want and (s.need & (PROCESS | REALTIME)) & relations
            == s.need & (PROCESS | REALTIME)]  # fmt: skip


@dataclass(slots=True)
class Cycle:
    """A cycle: ``vertices[i] → vertices[i+1]`` (wrapping) by relation ``rels[i]``."""

    vertices: list[int]
    rels: list[int]

    @property
    def name(self) -> str:
        """Its anomaly class."""
        return classify(self.rels)


def classify(rels: list[int]) -> str:
    """The anomaly class of a cycle whose steps use relations ``rels`` (in order)."""
    n = len(rels)
    rw = [r == RW for r in rels]
    nrw = sum(rw)
    if nrw == 0:
        base = "G1c" if WR in rels else "G0"
    elif nrw == 1:
        base = "G-single-item"
    elif any(rw[i] and rw[(i + 1) % n] for i in range(n)):
        base = "G2-item"
    else:
        base = "G-nonadjacent-item"
    if REALTIME in rels:
        return base + "-realtime"
    if PROCESS in rels:
        return base + "-process"
    return base


class Subgraph:
    """One SCC's edges as Python adjacency lists, local vertex ids ``0..n-1``."""

    def __init__(self, csr: sp.csr_matrix, vertices: npt.NDArray[np.int64]) -> None:
        sub = csr[vertices][:, vertices].tocsr()
        sub.sort_indices()
        self._build(sub, vertices)

    def _build(self, sub: sp.csr_matrix, vertices: npt.NDArray[np.int64]) -> None:
        self.vertices = vertices
        self.n = len(vertices)
        self.csr = sub
        ip = sub.indptr.tolist()
        ix = sub.indices.tolist()
        lb = sub.data.tolist()
        self.adj: list[list[tuple[int, int]]] = [
            list(zip(ix[ip[v] : ip[v + 1]], lb[ip[v] : ip[v + 1]], strict=True))
            for v in range(self.n)
        ]

    # Pickled as its sparse matrix and vertex ids (compact); the adjacency lists are
    # rebuilt where it lands (a component sent to another process to be searched).
    def __getstate__(self) -> tuple[sp.csr_matrix, npt.NDArray[np.int64]]:
        return self.csr, self.vertices

    def __setstate__(self, state: tuple[sp.csr_matrix, npt.NDArray[np.int64]]) -> None:
        self._build(*state)

    def may_hold(self, spec: Spec) -> bool:
        """False if no closed walk can satisfy ``spec`` (cheap, exact for walks)."""
        mask = spec.allowed | (RW if spec.rw != NO_RW else 0)
        data = self.csr.data
        m = self.csr.copy()
        m.data = (data & mask).astype(np.uint8)
        m.eliminate_zeros()
        if m.nnz == 0:
            return False
        _, comp = connected_components(m, directed=True, connection="strong")
        rows = np.repeat(np.arange(self.n), np.diff(m.indptr))
        inside = comp[rows] == comp[m.indices]
        if not bool(inside.any()):
            return False  # the projection has no cycle at all
        need = spec.need | (RW if spec.rw in (SINGLE, NONADJACENT, ADJACENT) else 0)
        for bit in (WW, WR, RW, PROCESS, REALTIME):
            if need & bit and not bool((inside & ((m.data & bit) != 0)).any()):
                return False
        return True

    def projected_components(self, spec: Spec) -> npt.NDArray[np.int64]:
        """Per vertex, its strongly connected component in the edges ``spec`` may use, or
        -1 where that component is a single vertex (no cycle of ``spec`` passes there)."""
        mask = spec.allowed | (RW if spec.rw != NO_RW else 0)
        m = self.csr.copy()
        m.data = (m.data & mask).astype(np.uint8)
        m.eliminate_zeros()
        _, comp = connected_components(m, directed=True, connection="strong")
        sizes = np.bincount(comp)
        return np.where(sizes[comp] > 1, comp, -1).astype(np.int64)


class Timeout(Exception):
    """The search passed its deadline."""


def find_cycle(g: Subgraph, spec: Spec, deadline: float) -> Cycle | None:
    """A shortest simple cycle (no transaction twice) through the first start vertex that
    has one, or ``None``.

    Raises :class:`Timeout` when ``deadline`` (``time.monotonic()``) passes first.
    """
    first_bit = RW if spec.rw not in (NO_RW, ANY_RW) else (spec.need & -spec.need)
    comp = g.projected_components(spec).tolist()
    for s in range(g.n):
        if time.monotonic() > deadline:
            raise Timeout
        if comp[s] < 0:
            continue
        if first_bit and not any(lb & first_bit for _, lb in g.adj[s]):
            continue
        c = _bfs(g, spec, s, first_bit, deadline, comp)
        if c is not None:
            return Cycle([int(g.vertices[v]) for v in c.vertices], c.rels)
    return None


# state: (vertex, seen need bits, rw count 0..2, last step rw, adjacent rw seen)
_State = tuple[int, int, int, bool, bool]


def _bfs(
    g: Subgraph, spec: Spec, s: int, first_bit: int, deadline: float, comp: list[int]
) -> Cycle | None:
    allowed, mode, need = spec.allowed, spec.rw, spec.need
    parent: dict[_State, tuple[_State, int]] = {}
    queue: deque[_State] = deque()
    ticks = 0

    def steps(st: _State, lb: int) -> list[tuple[int, _State]]:
        _, seen, rwc, last, adj = st
        out: list[tuple[int, _State]] = []
        usable = lb & allowed
        if usable:
            rel = next(b for b in (WR, WW, PROCESS, REALTIME) if usable & b)
            # a multi-label edge marks every needed relation it carries
            out.append((rel, (0, seen | (usable & need), rwc, False, adj)))
        if lb & RW and mode != NO_RW:
            if (mode == SINGLE and rwc >= 1) or (mode == NONADJACENT and last):
                pass
            else:
                out.append((RW, (0, seen, min(rwc + 1, 2), True, adj or last)))
        return out

    def closes(st: _State, rel: int) -> bool:
        _, seen, rwc, _last, adj = st
        if seen != need:
            return False
        first_rw = first_bit == RW
        wrap_adj = first_rw and rel == RW
        if mode == NO_RW:
            return True
        if mode == SINGLE:
            return rwc == 1
        if mode == NONADJACENT:
            return rwc >= 2 and not wrap_adj and not adj
        if mode == ADJACENT:
            return rwc >= 2 and (adj or wrap_adj)
        return True

    home = comp[s]  # a cycle through s stays in s's component of the projection
    start: _State = (s, 0, 0, False, False)
    for w, lb in g.adj[s]:
        if w == s or comp[w] != home:
            continue
        for rel, st in steps(start, lb):
            if first_bit == RW and rel != RW:
                continue
            if first_bit and first_bit != RW and (rel == RW or not lb & first_bit):
                continue
            st = (w, *st[1:])
            if st not in parent:
                parent[st] = (start, rel)
                queue.append(st)
    while queue:
        ticks += 1
        if ticks & 1023 == 0 and time.monotonic() > deadline:
            raise Timeout
        st = queue.popleft()
        for w, lb in g.adj[st[0]]:
            if comp[w] != home:
                continue
            for rel, nxt in steps(st, lb):
                if w == s:
                    if closes(nxt, rel):
                        cycle = _unwind(parent, st, rel, s)
                        # The search runs over (vertex, state) pairs, so a path may pass a
                        # transaction twice; only a simple cycle is a minimal explanation.
                        if len(set(cycle.vertices)) == len(cycle.vertices):
                            return cycle
                    continue
                nxt = (w, *nxt[1:])
                if nxt not in parent:
                    parent[nxt] = (st, rel)
                    queue.append(nxt)
    return None


def _unwind(parent: dict[_State, tuple[_State, int]], st: _State, last_rel: int, s: int) -> Cycle:
    """The cycle ``s → … → st[0] → s`` recorded in ``parent``."""
    verts: list[int] = []
    rels = [last_rel]
    cur = st
    while cur[0] != s:
        verts.append(cur[0])
        prev, rel = parent[cur]
        rels.append(rel)
        cur = prev
    verts.append(s)
    verts.reverse()
    rels.reverse()
    return Cycle(verts, rels)


def rel_name(rel: int) -> str:
    """A relation bit's short name."""
    return REL_NAMES[rel]
