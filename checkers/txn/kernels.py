"""Numba kernels for the sequential scans of the transactional checker.

Each kernel takes flat numpy columns (see :mod:`checkers.txn.parse`) and loops once; they
compile on first use and are cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["la_txn_scan", "prefix_compatible", "realtime_edges"]

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
def realtime_edges(ev_txn, ev_is_invoke, is_ok, is_vertex, n_txn):
    """Realtime edges with Elle's one-pass transitive reduction.

    Events (invocations and ok completions) come in history order. A buffer holds
    completed ok transactions; each invocation links every buffered transaction to the
    invoked one (if it is a vertex); an ok completion first drops from the buffer the
    transactions linked to it, then joins the buffer. Returns ``(src, dst)``.
    """
    cap = 1024
    src = np.empty(cap, dtype=np.int32)
    dst = np.empty(cap, dtype=np.int32)
    ne = 0
    lo = np.zeros(n_txn, dtype=np.int64)
    hi = np.zeros(n_txn, dtype=np.int64)
    buf = np.empty(n_txn, dtype=np.int32)
    inbuf = np.zeros(n_txn, dtype=np.bool_)
    nb = 0
    for e in range(len(ev_txn)):
        t = ev_txn[e]
        if ev_is_invoke[e]:
            lo[t] = ne
            w = 0
            for i in range(nb):
                x = buf[i]
                if inbuf[x]:
                    buf[w] = x
                    w += 1
                    if is_vertex[t]:
                        if ne == cap:
                            cap *= 2
                            s2 = np.empty(cap, dtype=np.int32)
                            d2 = np.empty(cap, dtype=np.int32)
                            s2[:ne] = src[:ne]
                            d2[:ne] = dst[:ne]
                            src = s2
                            dst = d2
                        src[ne] = x
                        dst[ne] = t
                        ne += 1
            nb = w
            hi[t] = ne
        elif is_ok[t]:
            for i in range(lo[t], hi[t]):
                inbuf[src[i]] = False
            buf[nb] = t
            nb += 1
            inbuf[t] = True
    return src[:ne].copy(), dst[:ne].copy()
