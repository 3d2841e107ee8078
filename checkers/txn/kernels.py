"""Numba kernels for the sequential scans of the transactional checker.

Each kernel takes flat numpy columns (see :mod:`checkers.txn.parse`) and loops once; they
compile on first use and are cached on disk (``cache=True``).
"""

from __future__ import annotations

import heapq

import numpy as np

from checkers._numba import njit

__all__ = [
    "la_txn_scan",
    "prefix_compatible",
    "realtime_barrier_edges",
    "replay",
    "topological_order",
]

_WRITE, _READ = 0, 1


@njit(cache=True, nogil=True)
def prefix_compatible(r_key, r_start, r_len, elems, vo_start, vo_len, vo_elem):
    """For each read, whether its elements are a prefix of its key's version order."""
    n = len(r_key)
    out = np.ones(n, dtype=np.bool_)
    for r in range(n):
        k = r_key[r]
        length = r_len[r]
        if length > vo_len[k]:
            out[r] = False
            continue
        s = r_start[r]
        v = vo_start[k]
        for i in range(length):
            if elems[s + i] != vo_elem[v + i]:
                out[r] = False
                break
    return out


@njit(cache=True, nogil=True)
def la_txn_scan(mop_lo, m_f, m_key, m_val, m_len, elems):
    """Per-transaction checks for list-append, one pass over the mops.

    Returns four boolean arrays over mops: ``internal`` (a read disagrees with what its own
    transaction read and appended before it), ``future`` (a read holds an element its
    transaction appends later), ``first_rw`` (a read that is the transaction's first mop
    on its key and is followed by an append to that key: a lost-update candidate) and
    ``nonfinal`` (an append followed by another append to the same key in its
    transaction).
    """
    m = len(m_f)
    internal = np.zeros(m, dtype=np.bool_)
    future = np.zeros(m, dtype=np.bool_)
    first_rw = np.zeros(m, dtype=np.bool_)
    nonfinal = np.zeros(m, dtype=np.bool_)
    for t in range(len(mop_lo) - 1):
        lo = mop_lo[t]
        hi = mop_lo[t + 1]
        for j in range(lo, hi):
            k = m_key[j]
            if m_f[j] == _WRITE:
                for q in range(j + 1, hi):
                    if m_key[q] == k and m_f[q] == _WRITE:
                        nonfinal[j] = True
                        break
                continue
            s = m_val[j]
            length = m_len[j]
            napp = 0
            base = -1
            q = j - 1
            while q >= lo:
                if m_key[q] == k:
                    if m_f[q] == _READ:
                        base = q
                        break
                    napp += 1
                q -= 1
            bad = False
            if base >= 0:
                bl = m_len[base]
                bs = m_val[base]
                if length != bl + napp:
                    bad = True
                else:
                    for i in range(bl):
                        if elems[s + i] != elems[bs + i]:
                            bad = True
                            break
            elif length < napp:
                bad = True
            if not bad and napp > 0:
                i = length - napp
                start = base + 1 if base >= 0 else lo
                for q in range(start, j):
                    if m_key[q] == k and m_f[q] == _WRITE:
                        if elems[s + i] != m_val[q]:
                            bad = True
                            break
                        i += 1
            internal[j] = bad
            later = False
            for q in range(j + 1, hi):
                if m_key[q] == k and m_f[q] == _WRITE:
                    later = True
                    e = m_val[q]
                    for i in range(length):
                        if elems[s + i] == e:
                            future[j] = True
                            break
            if base < 0 and napp == 0 and later:
                first_rw[j] = True
    return internal, future, first_rw, nonfinal


@njit(cache=True, nogil=True)
def realtime_barrier_edges(ev_txn, ev_is_invoke, is_ok, is_vertex, n_txn):
    """Realtime order in size linear in the events, through virtual barrier vertices.

    Events (invocations and ok completions) come in history order. The ok completions seen
    since the last barrier are gathered; the next invocation creates a barrier vertex
    (numbered from ``n_txn`` up) that they all point to and that the previous barrier points
    to; every invocation of a vertex gets an edge from the newest barrier. So a path from
    transaction ``a`` to ``b`` exists iff ``a`` completed ok before ``b`` was invoked.
    Returns ``(src, dst, number of barriers)``.
    """
    ne_max = 3 * len(ev_txn) + 1
    src = np.empty(ne_max, dtype=np.int64)
    dst = np.empty(ne_max, dtype=np.int64)
    ne = 0
    pending = np.empty(len(ev_txn) + 1, dtype=np.int64)
    np_ = 0
    barrier = -1
    nb = 0
    for e in range(len(ev_txn)):
        t = ev_txn[e]
        if ev_is_invoke[e]:
            if np_ > 0:
                b = n_txn + nb
                nb += 1
                if barrier >= 0:
                    src[ne] = barrier
                    dst[ne] = b
                    ne += 1
                for i in range(np_):
                    src[ne] = pending[i]
                    dst[ne] = b
                    ne += 1
                np_ = 0
                barrier = b
            if barrier >= 0 and is_vertex[t]:
                src[ne] = barrier
                dst[ne] = t
                ne += 1
        elif is_ok[t]:
            pending[np_] = t
            np_ += 1
    return src[:ne].copy(), dst[:ne].copy(), nb


@njit(cache=True, nogil=True)
def topological_order(indptr, indices, priority):
    """Kahn's algorithm taking, among the ready vertices, the one of least ``priority``.

    Returns the vertices in order; fewer than all of them if the graph has a cycle.
    """
    n = len(indptr) - 1
    indeg = np.zeros(n, dtype=np.int64)
    for j in range(len(indices)):
        indeg[indices[j]] += 1
    heap = [(np.int64(0), np.int64(0)) for _ in range(0)]
    for v in range(n):
        if indeg[v] == 0:
            heapq.heappush(heap, (np.int64(priority[v]), np.int64(v)))
    out = np.empty(n, dtype=np.int64)
    k = 0
    while len(heap) > 0:
        top = heapq.heappop(heap)[1]
        out[k] = top
        k += 1
        for j in range(indptr[top], indptr[top + 1]):
            w = indices[j]
            indeg[w] -= 1
            if indeg[w] == 0:
                heapq.heappush(heap, (np.int64(priority[w]), np.int64(w)))
    return out[:k]


@njit(cache=True, nogil=True)
def replay(order, mop_lo, m_f, m_key, m_val, m_len, elems, initial, n_keys, is_list):
    """Run the transactions ``order`` serially; the first mop whose read disagrees, or -1.

    rw-register: each key starts at ``initial[key]``, a write sets it, a read must return
    it. list-append: each key starts empty, an append adds its element, a read must return
    exactly the elements appended so far, in order. Only reads still in the columns count
    (those of ok transactions).
    """
    n_app = np.zeros(n_keys + 1, dtype=np.int64)
    if is_list:
        for j in range(len(m_f)):
            if m_f[j] == _WRITE:
                n_app[m_key[j] + 1] += 1
        for k in range(n_keys):
            n_app[k + 1] += n_app[k]
    applied = np.empty(max(n_app[n_keys], 1), dtype=np.int64)
    count = np.zeros(n_keys, dtype=np.int64)
    state = initial.copy()
    for i in range(len(order)):
        t = order[i]
        for j in range(mop_lo[t], mop_lo[t + 1]):
            k = m_key[j]
            if m_f[j] == _WRITE:
                if is_list:
                    applied[n_app[k] + count[k]] = m_val[j]
                    count[k] += 1
                else:
                    state[k] = m_val[j]
            elif is_list:
                if m_len[j] != count[k]:
                    return j
                s = m_val[j]
                for q in range(m_len[j]):
                    if elems[s + q] != applied[n_app[k] + q]:
                        return j
            elif state[k] != m_val[j]:
                return j
    return -1
