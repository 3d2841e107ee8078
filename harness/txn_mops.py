"""The micro-ops of transactions a reader parsed itself, as columns, by value id.

A reader that finds each transaction's micro-ops in its text before it builds the value
(the JSONL scanner: :mod:`harness.formats._jsonl_txn`) keeps them here too, by the
value's id in the history's table, so that the transactional checker can take them as
columns instead of walking millions of Python objects again
(:mod:`checkers.txn.parse_mops`). Only *plain* micro-ops are kept: ``[f, key, value]``
with ``f`` a string, ``key`` an integer or a string, ``value`` null, an integer or a list
of integers. A value id with no micro-ops here is simply not known: a consumer reads the
value itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["INT", "LIST", "NULL", "BlockMops", "TxnMops", "TxnMopsBuilder"]

I64 = npt.NDArray[np.int64]

#: Kinds of a micro-op's value.
NULL, INT, LIST = 0, 1, 2


@dataclass(frozen=True, slots=True)
class BlockMops:
    """The plain transactions of one block of a file, as its reader parsed them.

    Transaction ``t`` is entry ``entries[t]`` of the block's value column; its micro-ops
    are the block's distinct micro-ops ``mop[txn_lo[t]:txn_lo[t + 1]]``. A distinct
    micro-op ``d`` has name ``names[f[d]]``, key ``keys[key[d]]`` and a value of kind
    ``kind[d]``: for :data:`INT` the integer ``val[d]``, for :data:`LIST` the read
    ``elems[read_lo[val[d]]:read_lo[val[d] + 1]]``."""

    entries: I64
    txn_lo: I64
    mop: I64
    f: I64
    key: I64
    kind: npt.NDArray[np.int8]
    val: I64
    names: list[str]
    keys: list[Any]
    read_lo: I64
    elems: I64


@dataclass(frozen=True, slots=True)
class TxnMops:
    """Micro-ops by value id: value ``v`` (below ``len(lo)``) with ``lo[v] >= 0`` is a
    transaction whose micro-ops are the distinct micro-ops ``mop[lo[v]:lo[v] + n[v]]``;
    distinct micro-op ``d`` is ``[names[f[d]], keys[key[d]], value]``, the value of kind
    ``kind[d]``: ``None``, the integer ``val[d]``, or the list of the read ``val[d]``,
    ``elems[read_lo[r]:read_lo[r] + read_len[r]]``. Equal keys have one id, and so do
    equal names."""

    lo: I64
    n: npt.NDArray[np.int32]
    mop: npt.NDArray[np.int32]
    f: npt.NDArray[np.int32]
    key: npt.NDArray[np.int32]
    kind: npt.NDArray[np.int8]
    val: I64
    read_lo: I64
    read_len: I64
    elems: I64
    names: list[str]
    keys: list[Any]

    def known(self, vids: I64) -> npt.NDArray[np.bool_]:
        """Whether the value ids ``vids`` (-1 allowed) have their micro-ops here."""
        inside = (vids >= 0) & (vids < len(self.lo))
        return inside & (self.lo[np.where(inside, vids, 0)] >= 0)


class _Growing:
    """An array appended to in chunks, its room doubled when outgrown. (Chunks kept in
    a list and joined at the end left their room in the heap as holes among the values'
    objects when freed: some 250 MB of resident memory on a million transactions.)"""

    def __init__(self, dtype: type[np.generic]) -> None:
        self.data: npt.NDArray[Any] = np.empty(0, dtype=dtype)  # no room until needed
        self.size = 0

    def extend(self, values: npt.NDArray[Any]) -> None:
        """Append ``values`` (converted to the array's type)."""
        end = self.size + len(values)
        if end > len(self.data):
            grown = np.empty(max(end, 2 * len(self.data), 1 << 12), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = values
        self.size = end

    def array(self) -> npt.NDArray[Any]:
        """What was appended (a view: the room beyond it is never touched)."""
        return self.data[: self.size]


class TxnMopsBuilder:
    """Gathers the micro-ops of the values a reader interns, block by block."""

    def __init__(self) -> None:
        self._names: dict[str, int] = {}
        self._keys: dict[Any, int] = {}
        self._vid, self._lo = _Growing(np.int64), _Growing(np.int64)
        self._n, self._mop = _Growing(np.int32), _Growing(np.int32)
        self._f, self._key = _Growing(np.int32), _Growing(np.int32)
        self._kind, self._val = _Growing(np.int8), _Growing(np.int64)
        self._read_lo, self._read_len = _Growing(np.int64), _Growing(np.int64)
        self._elems = _Growing(np.int64)

    def add(self, ids: I64, base: int, block: BlockMops) -> None:
        """Keep the micro-ops of the block's transactions that were new to the table:
        ``ids`` are the value ids of the block's column entries, and ids from ``base`` on
        were given to values interned just now (a transaction seen before kept its id,
        and its micro-ops were kept then, if they were)."""
        vids = ids[block.entries]
        new = np.flatnonzero(vids >= base)
        if not len(new) or self._mop.size >= 2**31:
            return
        names = np.array([self._names.setdefault(s, len(self._names)) for s in block.names],
                         dtype=np.int32)  # fmt: skip
        keys = np.array([self._keys.setdefault(k, len(self._keys)) for k in block.keys],
                        dtype=np.int32)  # fmt: skip
        lens = block.txn_lo[new + 1] - block.txn_lo[new]
        total = int(lens.sum())
        starts = np.cumsum(lens) - lens
        rows = np.repeat(block.txn_lo[new] - starts, lens) + np.arange(total, dtype=np.int64)
        distinct, reads = self._kind.size, self._read_len.size
        self._vid.extend(vids[new])
        self._lo.extend(self._mop.size + starts)
        self._n.extend(lens)
        if len(new) == len(vids):  # every transaction new: every micro-op and read used
            self._mop.extend(block.mop[rows] + distinct)
            self._f.extend(names[block.f])
            self._key.extend(keys[block.key])
            self._kind.extend(block.kind)
            self._val.extend(np.where(block.kind == LIST, block.val + reads, block.val))
            self._read_lo.extend(block.read_lo[:-1] + self._elems.size)
            self._read_len.extend(np.diff(block.read_lo))
            self._elems.extend(block.elems)
            return
        # Only what the new transactions use: kept columns grow with the distinct
        # transactions, not with the file (a block of old ones with one new among them
        # would otherwise keep all its micro-ops and reads again).
        used, mop = np.unique(block.mop[rows], return_inverse=True)
        kind, val = block.kind[used], block.val[used].copy()
        lists = kind == LIST
        read_ids, val[lists] = np.unique(val[lists], return_inverse=True)
        val[lists] += reads
        read_at = block.read_lo[read_ids]
        read_len = block.read_lo[read_ids + 1] - read_at
        read_start = np.cumsum(read_len) - read_len
        at = np.repeat(read_at - read_start, read_len) + np.arange(int(read_len.sum()))
        self._mop.extend(mop + distinct)
        self._f.extend(names[block.f[used]])
        self._key.extend(keys[block.key[used]])
        self._kind.extend(kind)
        self._val.extend(val)
        self._read_lo.extend(read_start + self._elems.size)
        self._read_len.extend(read_len)
        self._elems.extend(block.elems[at])

    @property
    def nbytes(self) -> int:
        """The bytes of the columns gathered so far (their room included)."""
        return sum(g.data.nbytes for g in (self._vid, self._lo, self._n, self._mop, self._f,
                                           self._key, self._kind, self._val, self._read_lo,
                                           self._read_len, self._elems))  # fmt: skip

    def build(self, n_values: int) -> TxnMops | None:
        """The micro-ops gathered, for a table of ``n_values`` values; ``None`` if none
        were, or if there are too many for 32-bit ids."""
        if not self._vid.size or max(self._mop.size, self._kind.size, len(self._keys)) >= 2**31:
            return None
        lo = np.full(n_values, -1, dtype=np.int64)
        n = np.zeros(n_values, dtype=np.int32)
        vid = self._vid.array()
        lo[vid] = self._lo.array()
        n[vid] = self._n.array()
        return TxnMops(
            lo=lo, n=n, mop=self._mop.array(), f=self._f.array(), key=self._key.array(),
            kind=self._kind.array(), val=self._val.array(), read_lo=self._read_lo.array(),
            read_len=self._read_len.array(), elems=self._elems.array(), names=list(self._names),
            keys=list(self._keys),
        )  # fmt: skip
