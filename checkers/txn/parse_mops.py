"""Columns of a list-append history from the micro-ops its reader kept, with no objects.

A reader that parsed the transactions' texts itself keeps their micro-ops as columns by
value id (:class:`harness.txn_mops.TxnMops`). When every transaction to check has them,
the columns :func:`checkers.txn.parse_fast.list_append_columns` builds by walking the
values are gathered from those instead, with numpy: the same transactions, micro-ops,
keys (numbered in order of first appearance) and read elements, with no Python object
per transaction or micro-op. Anything else (a value without kept micro-ops, a name other
than ``append`` and ``r``, a nil append, a read of an integer) gives ``None``, and the
values are walked as before, which also names what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from checkers.txn import kernels
from checkers.txn.elements import key_bases
from checkers.txn.parse import READ, WRITE
from checkers.txn.parse_fast import Columns
from harness.history import OK, History
from harness.txn_mops import INT, LIST, TxnMops

__all__ = ["list_append_mops"]

I64 = npt.NDArray[np.int64]

_F = {"append": WRITE, "r": READ}


def list_append_mops(
    h: History, vidx: I64, inv: I64, types: npt.NDArray[np.int8], tick: Callable[[], None]
) -> Columns | None:
    """The list-append columns of the transactions of ``h`` whose completions have value
    ids ``vidx`` (-1 where none), invocations are at ``inv`` and types are ``types``, from
    the micro-ops its reader kept (``h.mops``); ``None`` unless every transaction's value
    has its micro-ops there and they are of the common shape (see
    :mod:`checkers.txn.parse_fast`). Promises what
    :func:`~checkers.txn.parse_fast.list_append_columns` gives for the values
    :func:`checkers.txn.parse.parse` takes (read elements may be shared differently, as
    its docstring allows)."""
    mops = h.mops
    vids = None if mops is None else _value_ids(h, mops, vidx, inv, types)
    if mops is None or vids is None:
        return None
    return _columns(mops, vids, types, tick)


def _value_ids(
    h: History, mops: TxnMops, vidx: I64, inv: I64, types: npt.NDArray[np.int8]
) -> I64 | None:
    """The value id of each transaction's micro-ops, -1 for none, as
    :func:`checkers.txn.parse.parse` picks the values (a transaction that did not commit
    takes its invocation's value unless its completion's is a list); ``None`` if one is
    a list whose micro-ops were not kept, or not a list."""
    vids = vidx.copy()
    for t in np.flatnonzero((types != OK) & ~mops.known(vidx)).tolist():
        v = h.values[vidx[t]] if vidx[t] >= 0 else None
        if isinstance(v, list | tuple):
            return None
        if inv[t] >= 0:
            b = int(h.value[inv[t]])
            if bool(mops.known(np.array([b], dtype=np.int64))[0]):
                vids[t] = b
                continue
            v = h.values[b]
        if v is not None:
            return None
        vids[t] = -1
    return vids


def _columns(
    mops: TxnMops, vids: I64, types: npt.NDArray[np.int8], tick: Callable[[], None]
) -> Columns | None:
    has = vids >= 0
    if not bool(mops.known(vids[has]).all()):
        return None
    n = len(vids)
    lens = np.where(has, mops.n[np.where(has, vids, 0)], 0).astype(np.int64)
    total = int(lens.sum())
    if total >= 2**31:
        return None
    starts = np.cumsum(lens) - lens
    rows = np.repeat(mops.lo[np.where(has, vids, 0)] - starts, lens)
    rows += np.arange(total, dtype=np.int64)
    d = mops.mop[rows]
    del rows
    f_of_name = np.array([_F.get(name, -1) for name in mops.names], dtype=np.int8)
    f = f_of_name[mops.f[d]] if len(d) else np.empty(0, np.int8)
    if bool((f < 0).any()):
        return None
    # reads of transactions that did not commit are unknown: dropped
    keep = (f == WRITE) | np.repeat(types == OK, lens)
    m_txn = np.repeat(np.arange(n, dtype=np.int32), lens)
    m_idx = (np.arange(total, dtype=np.int64) - np.repeat(starts, lens)).astype(np.int32)
    if not bool(keep.all()):
        d, f, m_txn, m_idx = d[keep], f[keep], m_txn[keep], m_idx[keep]
    del keep
    tick()
    kind = mops.kind[d]
    is_read = f == READ
    if bool((kind[~is_read] != INT).any()) or bool((kind[is_read] == INT).any()):
        return None
    m_key, keys = _keys_in_order(mops, mops.key[d])
    tick()
    mop_lo = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(m_txn, minlength=n), out=mop_lo[1:])
    m_val = mops.val[d]
    m_len = np.zeros(len(d), dtype=np.int32)
    r_read = np.where(kind[is_read] == LIST, m_val[is_read], -1)
    r_len = np.append(mops.read_len, 0)[r_read]  # a nil read (-1) has none
    m_len[is_read] = r_len
    elems, m_val[is_read] = _read_elements(mops, r_read, m_key[is_read].astype(np.int64), r_len)
    tick()
    return Columns(mop_lo=mop_lo, m_txn=m_txn, m_f=f, m_key=m_key, m_val=m_val, m_len=m_len,
                   m_idx=m_idx, elems=elems, keys=keys)  # fmt: skip


def _keys_in_order(mops: TxnMops, key: npt.NDArray[np.int32]) -> tuple[
    npt.NDArray[np.int32], list[Any]
]:  # fmt: skip
    """The micro-ops' keys (``key``: ids in ``mops.keys``) renumbered in order of first
    appearance, and the keys in that order."""
    first = np.full(len(mops.keys), len(key), dtype=np.int64)
    np.minimum.at(first, key, np.arange(len(key), dtype=np.int64))
    used = np.flatnonzero(first < len(key))
    order = used[np.argsort(first[used], kind="stable")]
    rank = np.zeros(len(mops.keys), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return rank[key], [mops.keys[k] for k in order.tolist()]


def _read_elements(mops: TxnMops, r_read: I64, r_key: I64, r_len: I64) -> tuple[I64, I64]:
    """``(elems, start)`` for reads ``r_read`` (ids of reads in ``mops``, -1 for nil) of
    keys ``r_key``, as :func:`checkers.txn.elements.read_elements` lays them out: each
    key's longest read (the first of equally long ones) first, a read that is a prefix
    of it pointing into it, each other distinct read once after them."""
    n = len(r_read)
    start = np.zeros(n, dtype=np.int64)
    if n == 0 or not r_len.any():
        return np.empty(0, np.int64), start
    longest, base_of, has_base = key_bases(r_key, r_len)
    n_keys = len(longest)
    base_read = np.zeros(n_keys, dtype=np.int64)
    base_read[has_base] = r_read[base_of[has_base]]
    base_len = np.where(has_base, longest, 0)
    base_start = np.cumsum(base_len) - base_len
    n_base = int(base_len.sum())
    base_elems = mops.elems[_ranges(mops.read_lo[base_read[has_base]], base_len[has_base])]
    # is each read a prefix of its key's longest? (one compiled pass over the elements)
    some = np.flatnonzero(r_len > 0)
    shared = kernels.prefix_compatible(
        r_key[some], mops.read_lo[r_read[some]], r_len[some], mops.elems,
        mops.read_lo[base_read], base_len, mops.elems,
    )  # fmt: skip
    start[some[shared]] = base_start[r_key[some[shared]]]
    others = some[~shared]
    own = np.unique(r_read[others])
    own_len = mops.read_len[own]
    start[others] = (n_base + np.cumsum(own_len) - own_len)[np.searchsorted(own, r_read[others])]
    own_elems = mops.elems[_ranges(mops.read_lo[own], own_len)]
    return np.concatenate([base_elems, own_elems]), start


def _ranges(lo: I64, length: I64) -> I64:
    """The positions ``lo[i] .. lo[i] + length[i] - 1`` for each ``i``, in order."""
    total = int(length.sum())
    offsets = np.cumsum(length) - length
    return np.repeat(lo - offsets, length) + np.arange(total, dtype=np.int64)
