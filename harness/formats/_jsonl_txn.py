"""Transactions' JSON texts decoded by a compiled parser, equal parts shared.

Private to :mod:`harness.formats.jsonl`. A transaction's value, ``[["append",5,3],
["r",5,[1,2,3]]]``, decoded by msgspec is some ten Python objects per micro-op, none
shared: about a kilobyte a transaction, nine times its text, and most of the memory of a
big list-append history. Here a compiled parser (:func:`scan_txns`) finds each micro-op
and its parts in the text, equal texts are grouped byte for byte
(:func:`~harness.formats._jsonl_scan.group_fields`), and one Python object is made per
distinct micro-op, name, key, value and read: transactions that share a micro-op
(invocations repeat ``["r",5,null]``) or a read share the very objects, as a history
built in memory does.

Only *plain* transactions are taken: a non-empty list of ``[f, key, value]`` with ``f`` a
string, ``key`` an integer or a string, ``value`` ``null``, an integer or a flat list of
integers; strings plain ASCII without escapes, integers of at most 18 digits without a
leading zero or a ``-0``, and no whitespace. Such a text is exactly its value's canonical
JSON (``msgspec.json.Encoder(order="sorted")``), so it keys the value in the history's
table as is. Anything else is left to msgspec.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from checkers._numba import njit, types
from harness.formats._jsonl_scan import INT, NULL, OTHER, STR, group_fields
from harness.txn_mops import INT as MOP_INT
from harness.txn_mops import LIST as MOP_LIST
from harness.txn_mops import NULL as MOP_NULL
from harness.txn_mops import BlockMops

__all__ = ["Parsed", "block_mops", "build_txns", "parse_txns"]

_BYTES = types.Array(types.uint8, 1, "C", readonly=True)
_I64 = types.int64
_SPANS = types.Array(types.int64, 1, "C")
_ROWS = types.Array(types.int64, 2, "C")

# Columns of the micro-op table: the mop's text span; f's span (quotes included); the
# key's and the value's kind (INT, STR, NULL; OTHER for a read's list), integer (for a
# list, where its elements start in ``elems``) and text span; the end of a list's elements.
M_START, M_END, F_START, F_END = 0, 1, 2, 3
K_KIND, K_INT, K_START, K_END = 4, 5, 6, 7
V_KIND, V_INT, V_START, V_END, V_ELEMS_END = 8, 9, 10, 11, 12
_WIDTH = 13

_QUOTE, _COMMA, _MINUS, _ZERO, _NINE = 34, 44, 45, 48, 57
_LBRACKET, _BACKSLASH, _RBRACKET, _n, _u, _l = 91, 92, 93, 110, 117, 108
_MAX_DIGITS = 18


@njit(_I64(_BYTES, _I64, _I64), cache=True, nogil=True)
def _string_end(buf, i, e):  # pragma: no cover - compiled
    """Just past the plain string (printable ASCII, no escape) whose quote is at ``i``;
    -1 if it is not one."""
    if i >= e or buf[i] != _QUOTE:
        return -1
    i += 1
    while i < e:
        c = buf[i]
        if c == _QUOTE:
            return i + 1
        if c == _BACKSLASH or c < 32 or c >= 127:
            return -1
        i += 1
    return -1


@njit(types.UniTuple(_I64, 2)(_BYTES, _I64, _I64), cache=True, nogil=True)
def _int_end(buf, i, e):  # pragma: no cover - compiled
    """``(end, value)`` of the canonical integer at ``i``; end -1 if there is none."""
    neg = i < e and buf[i] == _MINUS
    if neg:
        i += 1
    d = i
    v = 0
    while i < e and _ZERO <= buf[i] <= _NINE:
        v = v * 10 + (buf[i] - _ZERO)
        i += 1
    count = i - d
    if count == 0 or count > _MAX_DIGITS or (buf[d] == _ZERO and (count > 1 or neg)):
        return -1, 0
    return i, -v if neg else v


@njit(
    _I64(_BYTES, _SPANS, _SPANS, types.Array(types.uint8, 1, "C"), _SPANS, _ROWS, _SPANS,
         _SPANS),
    cache=True,
    nogil=True,
)  # fmt: skip
def scan_txns(buf, starts, ends, ok, mop_lo, mops, elems, n_elems):  # pragma: no cover
    """Find the micro-ops of the texts ``buf[starts[t]:ends[t]]``: ``ok[t]`` is 1 for a
    plain transaction (see the module doc), whose mops are rows ``mop_lo[t]:mop_lo[t+1]``
    of ``mops`` (columns ``M_START`` …) and whose reads' elements are in ``elems``; a text
    that is not plain has ``ok`` 0 and no rows. Returns the number of rows;
    ``n_elems[0]`` is the number of elements. ``mops`` must have a row per ``[`` in the
    texts or per 8 bytes of them (a whole mop takes 8 at least), plus one; ``elems`` room
    for an element per ``,`` and ``[`` or per 2 bytes, plus one."""
    m = 0
    ne = 0
    mop_lo[0] = 0
    for t in range(starts.size):
        i, e = starts[t], ends[t]
        m0, ne0 = m, ne
        good = e - i >= 2 and buf[i] == _LBRACKET and buf[e - 1] == _RBRACKET
        i += 1
        while good:
            # one mop: [f,key,value]
            if i >= e or buf[i] != _LBRACKET:
                good = False
                break
            mops[m, M_START] = i
            j = _string_end(buf, i + 1, e)
            if j < 0 or j >= e or buf[j] != _COMMA:
                good = False
                break
            mops[m, F_START], mops[m, F_END] = i + 1, j
            i = j + 1
            if i < e and buf[i] == _QUOTE:
                j = _string_end(buf, i, e)
                mops[m, K_KIND], mops[m, K_INT] = STR, 0
            else:
                j, v = _int_end(buf, i, e)
                mops[m, K_KIND], mops[m, K_INT] = INT, v
            if j < 0 or j >= e or buf[j] != _COMMA:
                good = False
                break
            mops[m, K_START], mops[m, K_END] = i, j
            i = j + 1
            if i >= e:
                good = False
                break
            c = buf[i]
            if c == _n:
                if i + 4 > e or buf[i + 1] != _u or buf[i + 2] != _l or buf[i + 3] != _l:
                    good = False
                    break
                j = i + 4
                mops[m, V_KIND], mops[m, V_INT] = NULL, 0
            elif c == _LBRACKET:
                mops[m, V_KIND], mops[m, V_INT] = OTHER, ne
                j = i + 1
                if j < e and buf[j] == _RBRACKET:
                    j += 1
                else:
                    while True:
                        j, v = _int_end(buf, j, e)
                        if j < 0 or j >= e:
                            good = False
                            break
                        elems[ne] = v
                        ne += 1
                        if buf[j] == _RBRACKET:
                            j += 1
                            break
                        if buf[j] != _COMMA:
                            good = False
                            break
                        j += 1
                    if not good:
                        break
            else:
                j, v = _int_end(buf, i, e)
                if j < 0:
                    good = False
                    break
                mops[m, V_KIND], mops[m, V_INT] = INT, v
            mops[m, V_START], mops[m, V_END], mops[m, V_ELEMS_END] = i, j, ne
            if j >= e or buf[j] != _RBRACKET:
                good = False
                break
            mops[m, M_END] = j + 1
            m += 1
            i = j + 1
            if i == e - 1:  # the transaction's closing bracket
                break
            if i >= e or buf[i] != _COMMA:
                good = False
                break
            i += 1
        if good:
            ok[t] = 1
        else:
            ok[t] = 0
            m, ne = m0, ne0
        mop_lo[t + 1] = m
    n_elems[0] = ne
    return m


def _groups(
    buf: npt.NDArray[np.uint8], start: npt.NDArray[np.int64], end: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(codes, first)``: the rows grouped by their texts ``buf[start:end]`` byte for
    byte (groups numbered in order of first appearance), and each group's first row."""
    n = len(start)
    kind = np.full((n, 1), STR, dtype=np.int8)
    codes, first, counts = group_fields(
        buf, kind, start.reshape(n, 1).copy(), end.reshape(n, 1).copy(), np.zeros(1, np.int64)
    )
    return codes[0], first[0, : counts[0]]


@dataclass(slots=True)
class Parsed:
    """What :func:`parse_txns` found: which texts are plain transactions (``ok``), the
    mop rows of each (``mop_lo``), each mop's group of equal mop texts (``mop_codes``)
    and the distinct mops' rows (``mops``); per part of a distinct mop (f, key, value),
    its group of equal texts and each group's first distinct mop; the reads' elements;
    the texts' spans."""

    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]
    ok: npt.NDArray[np.bool_]
    mop_lo: npt.NDArray[np.int64]
    mop_codes: npt.NDArray[np.int64]
    mops: npt.NDArray[np.int64]
    parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]
    elems: npt.NDArray[np.int64]


def parse_txns(block: bytes, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> Parsed:
    """The compiled part of decoding the texts ``block[starts[t]:ends[t]]`` (see
    :func:`build_txns`): no Python object per mop, and safe in another thread."""
    buf = np.frombuffer(block, dtype=np.uint8)
    n = len(starts)
    ok = np.zeros(n, dtype=np.uint8)
    mop_lo = np.zeros(n + 1, dtype=np.int64)
    # A mop opens with a bracket and takes at least 8 bytes (``["",0,0]``); a read's
    # element ends with a comma or the read's bracket and takes at least 2. Bounded by the
    # texts' own bytes, so that a block of brackets does not ask for 13 words a byte.
    # (Sized by the bytes alone, the tables were 4 times bigger, and the reader's memory
    # grew by some 130 MB on a million transactions though only the rows written are
    # touched.) Counted by numpy: bytes.count took 5 times as long.
    text_bytes = int((ends - starts).sum())
    opening = int(np.count_nonzero(buf == _LBRACKET))
    mops = np.empty((min(opening, text_bytes // 8) + 1, _WIDTH), dtype=np.int64)
    commas = int(np.count_nonzero(buf == _COMMA))
    elems = np.empty(min(commas + opening, text_bytes // 2) + 1, dtype=np.int64)
    n_elems = np.zeros(1, dtype=np.int64)
    m = scan_txns(buf, starts, ends, ok, mop_lo, mops, elems, n_elems)
    codes, first = _groups(buf, mops[:m, M_START], mops[:m, M_END])
    distinct = mops[first]
    parts = [_groups(buf, distinct[:, s], distinct[:, e])
             for s, e in ((F_START, F_END), (K_START, K_END), (V_START, V_END))]  # fmt: skip
    elems = elems[: n_elems[0]].copy()
    return Parsed(starts, ends, ok.astype(bool), mop_lo, codes, distinct, parts, elems)


def build_txns(block: bytes, p: Parsed) -> tuple[list[Any], list[bytes]]:
    """The values of the texts :func:`parse_txns` found to be plain transactions (see
    the module doc), in order, each equal to what ``json.loads`` gives it (one object
    per distinct mop, name, key, value and read, shared), and their texts, which are
    their canonical JSON."""
    if not p.ok.any():
        return [], []
    rows = p.mops
    (f_codes, f_first), key, value = p.parts
    names = [block[s + 1 : e - 1].decode("ascii")
             for s, e in rows[f_first][:, [F_START, F_END]].tolist()]  # fmt: skip
    fs = _gather(names, f_codes)
    read_lo, read_elems = _reads(p)
    elems = read_elems.tolist()  # only the distinct reads' elements
    reads = map(elems.__getitem__, map(slice, read_lo[:-1].tolist(), read_lo[1:].tolist()))
    ks = _objects(block, rows, K_KIND, key, iter(()))
    vs = _objects(block, rows, V_KIND, value, reads)
    flat = _gather(list(map(list, zip(fs, ks, vs, strict=True))), p.mop_codes)
    lo = p.mop_lo[:-1][p.ok].tolist()
    hi = p.mop_lo[1:][p.ok].tolist()
    values = list(map(flat.__getitem__, map(slice, lo, hi)))
    spans = zip(p.starts[p.ok].tolist(), p.ends[p.ok].tolist(), strict=True)
    return values, [block[s:e] for s, e in spans]


def block_mops(block: bytes, p: Parsed, entries: npt.NDArray[np.int64]) -> BlockMops:
    """The micro-ops of the texts :func:`parse_txns` found to be plain transactions, as
    columns (see :class:`~harness.txn_mops.BlockMops`), the ``t``-th of them being entry
    ``entries[t]`` of the block's value column: what :func:`build_txns` builds them from,
    kept for consumers that want no objects."""
    rows = p.mops
    (f_codes, f_first), (k_codes, k_first), (v_codes, v_first) = p.parts
    names = [block[s + 1 : e - 1].decode("ascii")
             for s, e in rows[f_first][:, [F_START, F_END]].tolist()]  # fmt: skip
    key_rows = rows[k_first][:, [K_KIND, K_INT, K_START, K_END]].tolist()
    keys = [v if k == INT else block[s + 1 : e - 1].decode("ascii") for k, v, s, e in key_rows]
    values = rows[v_first]
    kind = np.select([values[:, V_KIND] == INT, values[:, V_KIND] == OTHER], [MOP_INT, MOP_LIST],
                     MOP_NULL).astype(np.int8)  # fmt: skip
    reads = np.flatnonzero(kind == MOP_LIST)
    val = np.where(kind == MOP_INT, values[:, V_INT], 0)
    val[reads] = np.arange(len(reads))
    txn_lo = np.append(p.mop_lo[:-1][p.ok], p.mop_lo[-1])
    read_lo, elems = _reads(p)
    return BlockMops(
        entries=entries, txn_lo=txn_lo, mop=p.mop_codes, f=f_codes, key=k_codes,
        kind=kind[v_codes], val=val[v_codes], names=names, keys=keys, read_lo=read_lo,
        elems=elems,
    )  # fmt: skip


def _reads(p: Parsed) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(read_lo, elems)``: the elements of the distinct reads (the value groups that
    are lists, in order), read ``r``'s being ``elems[read_lo[r]:read_lo[r + 1]]``."""
    values = p.mops[p.parts[2][1]]
    reads = values[values[:, V_KIND] == OTHER]
    first, lens = reads[:, V_INT], reads[:, V_ELEMS_END] - reads[:, V_INT]
    read_lo = np.zeros(len(reads) + 1, dtype=np.int64)
    np.cumsum(lens, out=read_lo[1:])
    at = np.repeat(first - read_lo[:-1], lens) + np.arange(int(read_lo[-1]), dtype=np.int64)
    return read_lo, p.elems[at]


def _objects(
    block: bytes,
    rows: npt.NDArray[np.int64],
    col: int,
    groups: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    reads: Iterator[list[int]],
) -> list[Any]:
    """The Python objects of the part of the mop ``rows`` whose kind is column ``col``
    (then its integer, text start and end), one per group of equal texts (``groups``:
    each row's group and each group's first row); a group that is a read's list takes
    the next of ``reads``."""
    codes, first = groups
    objs: list[Any] = []
    for k, v, s, e in rows[first][:, [col, col + 1, col + 2, col + 3]].tolist():
        if k == INT:
            objs.append(v)
        elif k == STR:
            objs.append(block[s + 1 : e - 1].decode("ascii"))
        elif k == NULL:
            objs.append(None)
        else:
            objs.append(next(reads))
    return _gather(objs, codes)


def _gather(objs: list[Any], codes: npt.NDArray[np.int64]) -> list[Any]:
    """``[objs[c] for c in codes]``, gathered by numpy (the very objects, shared)."""
    return np.fromiter(objs, dtype=object, count=len(objs))[codes].tolist()
