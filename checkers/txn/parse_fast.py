"""Columns of a well-formed list-append history, in one pass of small chunks.

:func:`checkers.txn.parse.parse` reads any history and names the first thing wrong in it,
in passes over the whole history. Each of those passes visits millions of Python objects
scattered in memory (transactions, micro-ops, reads), and on a million transactions the
cache misses of those visits were most of the check's time. Here each chunk of
transactions goes through every step while its objects are still in the CPU's cache; the
elements of the reads are then taken by :func:`checkers.txn.elements.read_elements`.

Only histories of the common shape are read here: every transaction a list (or tuple) of
``[f key value]`` micro-ops, ``f`` one of ``append`` and ``r``, hashable keys, appended
values plain ints, reads lists, tuples or nil whose elements convert to int64. Anything
else gives ``None``, and the general parse reads the history (and says what is wrong).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, compress, count
from operator import itemgetter, length_hint
from typing import Any

import numpy as np
import numpy.typing as npt

from checkers.txn.elements import read_elements
from checkers.txn.parse import READ, WRITE
from harness.history import OK

__all__ = ["Columns", "list_append_columns"]

I64 = npt.NDArray[np.int64]

#: Transactions per chunk: a chunk's objects (some hundreds of kB) stay in a core's cache.
CHUNK = 2048
_F = {"append": WRITE, "r": READ}
_FKV = itemgetter(0, 1, 2)
_TXN_TYPES = {list, tuple}
_READ_TYPES = {list, tuple, type(None)}


@dataclass(slots=True)
class Columns:
    """The per-mop columns of :class:`checkers.txn.parse.Txns` and its key table."""

    mop_lo: I64
    m_txn: npt.NDArray[np.int32]
    m_f: npt.NDArray[np.int8]
    m_key: npt.NDArray[np.int32]
    m_val: I64
    m_len: npt.NDArray[np.int32]
    m_idx: npt.NDArray[np.int32]
    elems: I64
    keys: list[Any]


def list_append_columns(
    txn_vals: list[Any], types: npt.NDArray[np.int8], tick: Callable[[], None]
) -> Columns | None:
    """The list-append columns of the transactions ``txn_vals`` (of types ``types``), or
    ``None`` when the history is not of the common shape (see the module docstring).

    Promises the columns the general parse gives (read elements may be shared, see
    :func:`checkers.txn.elements.read_elements`): reads of transactions that are not ok
    dropped, keys numbered in order of first appearance. ``tick()`` is called between
    chunks (it may raise).
    """
    if not txn_vals:
        return None
    try:
        return _columns(txn_vals, types, tick)
    except (TypeError, ValueError, OverflowError, KeyError, IndexError):
        return None


def _columns(
    txn_vals: list[Any], types: npt.NDArray[np.int8], tick: Callable[[], None]
) -> Columns | None:
    n = len(txn_vals)
    kid: dict[Any, int] = {}
    lens_parts, f_parts, keep_parts, key_parts, w_parts, rlen_parts = [], [], [], [], [], []
    reads: list[Any] = []
    n_mops = 0
    for lo in range(0, n, CHUNK):
        part = txn_vals[lo : lo + CHUNK]
        if not set(map(type, part)) <= _TXN_TYPES:
            return None
        lens = np.fromiter(map(len, part), dtype=np.int64, count=len(part))
        fkv = list(chain.from_iterable(map(_FKV, chain.from_iterable(part))))
        ks, vs = fkv[1::3], fkv[2::3]
        f = np.fromiter(map(_F.__getitem__, fkv[0::3]), dtype=np.int8, count=len(ks))
        # reads of transactions that did not commit are unknown: dropped
        keep = (f == WRITE) | np.repeat(types[lo : lo + len(part)] == OK, lens)
        if not keep.all():
            kl = keep.tolist()
            ks, vs, f = list(compress(ks, kl)), list(compress(vs, kl)), f[keep]
        is_read = f == READ
        writes = list(compress(vs, (~is_read).tolist()))
        chunk_reads = list(compress(vs, is_read.tolist()))
        if not (set(map(type, writes)) <= {int} and set(map(type, chunk_reads)) <= _READ_TYPES):
            return None
        lens_parts.append(lens)
        f_parts.append(f)
        keep_parts.append(keep)
        # one dict operation per mop: a new key is numbered by its mop's position (made
        # dense below), a known one gets its number back (past 2**31 mops: OverflowError)
        key_parts.append(np.fromiter(map(kid.setdefault, ks, count(n_mops)), np.int32, len(ks)))
        n_mops += len(ks)
        w_parts.append(np.fromiter(writes, dtype=np.int64, count=len(writes)))
        rlen_parts.append(
            np.fromiter(map(length_hint, chunk_reads), dtype=np.int64, count=len(chunk_reads))
        )
        reads += chunk_reads
        tick()
    lens = np.concatenate(lens_parts)
    keep = np.concatenate(keep_parts)
    m_txn = np.repeat(np.arange(n, dtype=np.int32), lens)
    starts = np.cumsum(lens) - lens
    m_idx = (np.arange(len(m_txn), dtype=np.int64) - np.repeat(starts, lens)).astype(np.int32)
    if not keep.all():
        m_txn, m_idx = m_txn[keep], m_idx[keep]
    m_f = np.concatenate(f_parts)
    dense = np.zeros(max(n_mops, 1), dtype=np.int32)
    dense[np.fromiter(kid.values(), dtype=np.int32, count=len(kid))] = np.arange(len(kid))
    m_key = dense[np.concatenate(key_parts)]
    del dense
    mop_lo = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(m_txn, minlength=n), out=mop_lo[1:])
    rmask = m_f == READ
    r_len = np.concatenate(rlen_parts)
    m_len = np.zeros(len(m_f), dtype=np.int32)
    m_len[rmask] = r_len
    m_val = np.zeros(len(m_f), dtype=np.int64)
    m_val[~rmask] = np.concatenate(w_parts)
    elems, m_val[rmask] = read_elements(reads, m_key[rmask].astype(np.int64), r_len, tick)
    return Columns(mop_lo=mop_lo, m_txn=m_txn, m_f=m_f, m_key=m_key, m_val=m_val,
                   m_len=m_len, m_idx=m_idx, elems=elems, keys=list(kid))  # fmt: skip
