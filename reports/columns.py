"""Every client op of a run, as compact columns for the report's canvas timeline.

A report embeds the whole history (up to :data:`MAX_OPS` client ops) as typed arrays, each
base64 text of little-endian bytes, decoded in the page into ``Float32Array``,
``Uint8Array``... — about 20 bytes per op, and no per-op JSON to parse. One row per client
invocation, in invocation order; integer columns take the narrowest width their values
fit (``<name>_bytes``: 1, 2 or 4):

``start``  Float32, on the page's time axis (its unit: s, ms, µs or ns, or positions)
``dur``    Float32, until the completion (for a pending op: until the end of the history)
``lane``   index into ``lanes`` (process labels)
``kind``   Uint8, 0 ok, 1 fail, 2 info, 3 pending
``f``      Uint8, index into ``f_names`` (255: one of the rarer names past 254)
``node``   Uint8, index into ``nodes`` (255: none)
``gap``    the invocation's history index minus the previous one's (the first: its index)
``key``    index into ``key_texts`` (all ones: none)
``val``    index into ``texts``: the completion's value (a read's result), or the
           invocation's for a pending op (all ones: none)
``val_ints`` instead of ``val`` and ``texts`` when every value is an int (registers,
           counters: the common case): the value itself, signed, in the narrowest of 1, 2
           or 4 bytes (``val_int_bytes``), its two lowest numbers meaning none and null

Integer values need no text table (for a million distinct written values, that table was a
fifth of the page and most of the time spent writing it). Texts are short JSON
(:data:`TEXT_CHARS`); the value texts are kept while their total stays
under :data:`MAX_TEXT_CHARS`, beyond which they are dropped (``texts_dropped`` says so) and
the timeline shows ops without values.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.history import FAIL, INVOKE, OK, History
from reports.data import TimeAxis, short_json

__all__ = ["MAX_OPS", "MAX_TEXT_CHARS", "TEXT_CHARS", "op_columns"]

#: Most client ops embedded in a report; above it, the first MAX_OPS are (the page says so).
MAX_OPS = 1_000_000
#: Longest text kept for one key or value on the timeline.
TEXT_CHARS = 80
#: Most characters of key/value text embedded in all; beyond, values are left out.
MAX_TEXT_CHARS = 16_000_000
_NONE = 255


def _b64(a: npt.NDArray[Any]) -> str:
    little = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"))
    return base64.b64encode(little.tobytes()).decode()


def _narrow(a: npt.NDArray[np.int64]) -> tuple[str, int]:
    """``a`` (values >= -1; -1 meaning none, stored as all ones) as base64 in the narrowest
    unsigned width, and that width in bytes."""
    top = int(a.max()) if len(a) else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        size = np.dtype(dtype).itemsize
        if top < (1 << (8 * size)) - 1:
            none = (1 << (8 * size)) - 1
            return _b64(np.where(a < 0, none, a).astype(dtype)), size
    raise ValueError("column too wide for the page")


def _ints_as_texts(entries: list[Any]) -> list[str] | None:
    """The decimal texts of ``entries`` when every one is a plain int (the common case:
    registers, counters, ids), in one pass without the per-value branches; else None."""
    if not entries or not all(type(x) is int for x in entries):
        return None
    return list(map(str, entries))


def _int_values(ids: npt.NDArray[np.int64], table: list[Any]) -> tuple[str, int] | None:
    """The values ``ids`` stand for (ids < 0: none), as base64 signed ints in the narrowest
    width whose two lowest numbers stay free for none and null, and that width; None unless
    every entry of ``table`` is an int or None (bools are not ints here) within 32 bits."""
    if not len(ids) or not table or not set(map(type, table)) <= {int, type(None)}:
        return None
    nones = table.count(None)
    try:
        listed = [_NULL_MARK if x is None else x for x in table] if nones else table
        arr = np.array(listed, dtype=np.int64)
    except OverflowError:
        return None
    if int((arr == _NULL_MARK).sum()) != nones:  # an int that is the mark itself
        return None
    used = arr[ids[ids >= 0]]
    real = used[used != _NULL_MARK]
    lo, hi = (int(real.min()), int(real.max())) if len(real) else (0, 0)
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if lo >= info.min + 2 and hi <= info.max:
            none, null = info.min, info.min + 1
            col = np.where(ids >= 0, arr[np.maximum(ids, 0)], none)
            col = np.where(col == _NULL_MARK, null, col)
            return _b64(col.astype(dtype)), np.dtype(dtype).itemsize
    return None


#: Stands for None while a value table is converted (outside every width _int_values uses).
_NULL_MARK = np.iinfo(np.int64).min


def _texts(
    ids: npt.NDArray[np.int64], table: list[Any]
) -> tuple[list[str], npt.NDArray[np.int64] | None]:
    """Short JSON texts of the table entries ``ids`` uses (ids < 0: none), and ``ids``
    renumbered into that list (-1: none); (``[]``, None) when over the text budget."""
    used = np.unique(ids[ids >= 0])
    entries = [table[v] for v in used.tolist()]
    texts = _ints_as_texts(entries)
    if texts is None:
        texts = []
        total = 0
        for x in entries:
            # the common scalars without json.dumps's per-call cost
            t = str(x) if type(x) is int else "null" if x is None else short_json(x, TEXT_CHARS)
            total += len(t) + 3
            if total > MAX_TEXT_CHARS:
                return [], None
            texts.append(t)
    elif sum(map(len, texts)) + 3 * len(texts) > MAX_TEXT_CHARS:
        return [], None
    renum = np.full(len(ids), -1, dtype=np.int64)
    has = ids >= 0
    renum[has] = np.searchsorted(used, ids[has])
    return texts, renum


def _dense(a: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``np.unique(a, return_inverse=True)`` for small non-negative integers (process and
    ``f`` ids) by counting instead of sorting; other arrays go to ``np.unique``."""
    if not len(a) or int(a.min()) < 0 or int(a.max()) > 4 * len(a) + 1024:
        used, inverse = np.unique(a, return_inverse=True)
        return used.astype(np.int64), inverse.astype(np.int64)
    present = np.bincount(a.astype(np.int64))
    used = np.flatnonzero(present)
    rank = np.zeros(len(present), dtype=np.int64)
    rank[used] = np.arange(len(used))
    return used, rank[a]


def op_columns(history: History, axis: TimeAxis, cap: int = MAX_OPS) -> dict[str, Any]:
    """All client ops of ``history`` (the first ``cap``) as base64 typed columns (see the
    module docstring), with their lookup tables and ``shown``/``total`` counts."""
    inv = np.flatnonzero((history.type == INVOKE) & (history.process >= 0))
    total = len(inv)
    inv = inv[:cap]
    comp = history.pair[inv]
    n = len(inv)
    times = axis.times  # the history's times, or positions when it has no real times
    end_time = int(times.max()) if len(history) else 0
    done = comp >= 0
    comp0 = np.where(done, comp, 0)
    start = axis.x(times[inv])
    stop = axis.x(np.where(done, times[comp0], end_time))
    kind = np.full(n, 3, dtype=np.uint8)
    ctype = history.type[comp0]
    kind[done] = np.select([ctype[done] == OK, ctype[done] == FAIL], [0, 1], 2).astype(np.uint8)
    procs = history.process[inv]
    lanes_p, lane = _dense(procs)
    first = np.zeros(len(lanes_p), dtype=np.int64)
    first[lane[::-1]] = np.arange(n)[::-1]  # the first op of every lane
    lanes = [history.process_label(int(inv[k])) for k in first.tolist()]
    f_used, f_col = _dense(history.f[inv])
    f_names = [history.f_names[int(i)] for i in f_used.tolist()][:_NONE]
    f_col = np.minimum(f_col, _NONE).astype(np.uint8)
    node_ids = history.node[inv].astype(np.int64)
    node_col = np.where((node_ids >= 0) & (node_ids < _NONE), node_ids, _NONE).astype(np.uint8)
    key_ids = history.key[inv].astype(np.int64)
    val_ids = np.where(done, history.value[comp0], history.value[inv]).astype(np.int64)
    key_texts, key_col = _texts(key_ids, history.keys)
    ints = _int_values(val_ids, history.values)
    texts, val_col = ([], None) if ints is not None else _texts(val_ids, history.values)
    index = history.index[inv].astype(np.int64)
    gap = np.diff(index, prepend=0)
    out: dict[str, Any] = {
        "shown": n,
        "total": total,
        "start": _b64(start.astype(np.float32)),
        "dur": _b64((stop - start).astype(np.float32)),
        "kind": _b64(kind),
        "f": _b64(f_col),
        "node": _b64(node_col),
        "lanes": lanes,
        "f_names": f_names,
        "nodes": list(history.nodes[:_NONE]),
        "key_texts": key_texts,
        "texts": texts,
        "texts_dropped": ints is None and val_col is None,
        "val_ints": ints[0] if ints is not None else None,
        "val_int_bytes": ints[1] if ints is not None else 0,
        "lo": float(start.min()) if n else 0.0,
        "hi": max(float(stop.max()), float(axis.x(end_time))) if n else 1.0,
    }
    for name, column in (("lane", lane.astype(np.int64)), ("gap", gap),
                         ("key", key_col), ("val", val_col)):  # fmt: skip
        if column is None or (name == "key" and not key_texts):
            out[name], out[f"{name}_bytes"] = None, 0
        else:
            out[name], out[f"{name}_bytes"] = _narrow(column)
    return out
