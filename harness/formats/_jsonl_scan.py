"""A compiled scanner for blocks of plain JSONL op lines: columns without a Python object
per field.

Private to :mod:`harness.formats.jsonl`. :func:`scan_block` walks a block of lines once
and records, for each line and each op field clew keeps (:data:`FIELDS`), what kind of
JSON value it holds, where its text lies in the block and, for an integer, its value.
:func:`group_fields` then finds equal texts (exactly, byte for byte) so that only one
occurrence of each distinct value is ever decoded into a Python object.

The scanner is deliberately narrow: it accepts only what a plain op line looks like (one
JSON object per line, ASCII, no escapes, no carriage return, no blank line, no field
twice). Anything else makes it refuse the whole block, and the reader reads that block
the checked way, which gives the error and the line. Values it does not decode itself
(floats, lists, maps, booleans, long integers) are only delimited here: their text is
decoded by msgspec, which checks it, once per distinct text.
"""

from __future__ import annotations

import numpy as np

from checkers._numba import njit, types

#: The block's bytes, as numpy sees a ``bytes`` object: read-only.
_BYTES = types.Array(types.uint8, 1, "C", readonly=True)
_I64 = types.int64
_ROWS = types.Array(types.int64, 2, "C")
_SPANS = types.Array(types.int64, 1, "C")

__all__ = ["ABSENT", "FIELDS", "INT", "NULL", "OTHER", "STR", "group_fields", "scan_block"]

#: The op fields, in the order of the scanner's columns (``OP_FIELDS``' order).
FIELDS = ("index", "time", "type", "process", "f", "value", "key", "node", "error")
#: Kinds of a field in a line: not there, ``null``, an integer in 64 bits (its value is
#: in the int column), a string (its text includes the quotes), anything else.
ABSENT, NULL, INT, STR, OTHER = 0, 1, 2, 3, 4

_NAMES = np.frombuffer("".join(FIELDS).encode(), dtype=np.uint8).copy()
_NAME_END = np.cumsum([0] + [len(f) for f in FIELDS]).astype(np.int64)

# Byte values.
_TAB, _NL, _SPACE, _QUOTE, _COMMA, _MINUS, _DOT = 9, 10, 32, 34, 44, 45, 46
_ZERO, _NINE, _COLON, _E, _LBRACKET, _BACKSLASH, _RBRACKET = 48, 57, 58, 69, 91, 92, 93
_e, _f, _n, _t, _LBRACE, _RBRACE = 101, 102, 110, 116, 123, 125
_PLUS = 43
#: Most digits an integer may have to be decoded here (18 always fit in 64 bits).
_MAX_DIGITS = 18


@njit(_I64(_BYTES, _I64, _I64), cache=True, nogil=True)
def _skip_blanks(buf, i, n):  # pragma: no cover - compiled
    while i < n and (buf[i] == _SPACE or buf[i] == _TAB):
        i += 1
    return i


@njit(_I64(_BYTES, _I64, _I64), cache=True, nogil=True)
def _string_end(buf, i, n):  # pragma: no cover - compiled
    """The position just after the string whose opening quote is at ``i``; -1 if it has
    an escape, a control character or a non-ASCII byte, or does not end."""
    i += 1
    while i < n:
        c = buf[i]
        if c == _QUOTE:
            return i + 1
        if c == _BACKSLASH or c < _SPACE or c >= 128:
            return -1
        i += 1
    return -1


@njit(_I64(_BYTES, _I64, _I64), cache=True, nogil=True)
def _nested_end(buf, i, n):  # pragma: no cover - compiled
    """The position just after the list or map that opens at ``i`` (its brackets
    balanced, its strings plain); -1 if there is none on this line. Whether it is valid
    JSON is msgspec's to say, when its text is decoded."""
    depth = 0
    while i < n:
        c = buf[i]
        if c == _QUOTE:
            i = _string_end(buf, i, n)
            if i < 0:
                return -1
            continue
        if c in (_LBRACKET, _LBRACE):
            depth += 1
        elif c in (_RBRACKET, _RBRACE):
            depth -= 1
            if depth == 0:
                return i + 1
        elif c == _NL or (c < _SPACE and c != _TAB) or c >= 128:
            return -1
        i += 1
    return -1


@njit(_I64(_BYTES, _I64, _I64), cache=True, nogil=True)
def _field_of(buf, s, e):  # pragma: no cover - compiled
    """Which of :data:`FIELDS` the key text ``buf[s:e]`` names; -1 for another."""
    for k in range(_NAME_END.size - 1):
        a, b = _NAME_END[k], _NAME_END[k + 1]
        if b - a != e - s:
            continue
        same = True
        for j in range(b - a):
            if buf[s + j] != _NAMES[a + j]:
                same = False
                break
        if same:
            return k
    return -1


@njit(_I64(_BYTES, types.Array(types.int8, 2, "C"), _ROWS, _ROWS, _ROWS), cache=True, nogil=True)
def scan_block(buf, kind, ival, start, end):  # pragma: no cover - compiled
    """Scan the lines of ``buf`` (each a JSON object, the last one's newline optional)
    into the columns (one row per line, one column per field of :data:`FIELDS`): ``kind``,
    ``ival`` (an :data:`INT`'s value) and the text ``start``/``end`` of each value. Returns
    the number of lines, or -1 if a line is not plain (the caller reads the block the
    checked way)."""
    n = buf.size
    nf = _NAME_END.size - 1
    i = 0
    line = 0
    while i < n:
        if line >= kind.shape[0]:
            return -1
        i = _skip_blanks(buf, i, n)
        if i >= n or buf[i] != _LBRACE:
            return -1
        for k in range(nf):
            kind[line, k] = ABSENT
        i = _skip_blanks(buf, i + 1, n)
        if i < n and buf[i] == _RBRACE:
            i += 1
        else:
            while True:
                if i >= n or buf[i] != _QUOTE:
                    return -1
                key_end = _string_end(buf, i, n)
                if key_end < 0:
                    return -1
                field = _field_of(buf, i + 1, key_end - 1)
                i = _skip_blanks(buf, key_end, n)
                if i >= n or buf[i] != _COLON:
                    return -1
                i = _skip_blanks(buf, i + 1, n)
                if i >= n:
                    return -1
                c = buf[i]
                s = i
                v = 0
                if c == _n:
                    if i + 4 > n or buf[i + 1] != 117 or buf[i + 2] != 108 or buf[i + 3] != 108:
                        return -1
                    k = NULL
                    i += 4
                elif c == _MINUS or _ZERO <= c <= _NINE:
                    if c == _MINUS:
                        i += 1
                    digits = i
                    while i < n and _ZERO <= buf[i] <= _NINE:
                        if i - digits < _MAX_DIGITS:
                            v = v * 10 + (buf[i] - _ZERO)
                        i += 1
                    count = i - digits
                    if count == 0 or (count > 1 and buf[digits] == _ZERO):
                        return -1
                    if i < n and (buf[i] == _DOT or buf[i] == _e or buf[i] == _E):
                        while i < n and (
                            _ZERO <= buf[i] <= _NINE
                            or buf[i] == _DOT
                            or buf[i] == _e
                            or buf[i] == _E
                            or buf[i] == _PLUS
                            or buf[i] == _MINUS
                        ):
                            i += 1
                        k = OTHER
                    elif count > _MAX_DIGITS:
                        k = OTHER
                    else:
                        k = INT
                        if c == _MINUS:
                            v = -v
                elif c == _QUOTE:
                    i = _string_end(buf, i, n)
                    if i < 0:
                        return -1
                    k = STR
                elif c in (_LBRACKET, _LBRACE):
                    i = _nested_end(buf, i, n)
                    if i < 0:
                        return -1
                    k = OTHER
                elif c in (_t, _f):
                    while i < n and 97 <= buf[i] <= 122:
                        i += 1
                    k = OTHER  # true or false, as msgspec will say
                else:
                    return -1
                if field >= 0:
                    if kind[line, field] != ABSENT:
                        return -1  # a field twice: the checked path decides
                    kind[line, field] = k
                    ival[line, field] = v
                    start[line, field] = s
                    end[line, field] = i
                i = _skip_blanks(buf, i, n)
                if i >= n:
                    return -1
                if buf[i] == _COMMA:
                    i = _skip_blanks(buf, i + 1, n)
                    continue
                if buf[i] == _RBRACE:
                    i += 1
                    break
                return -1
        i = _skip_blanks(buf, i, n)
        if i < n:
            if buf[i] != _NL:
                return -1
            i += 1
        line += 1
    return line


@njit(types.uint64(_BYTES, _I64, _I64), cache=True, nogil=True)
def _text_hash(buf, s, e):  # pragma: no cover - compiled
    h = np.uint64(0xCBF29CE484222325)
    for j in range(s, e):
        h = (h ^ np.uint64(buf[j])) * np.uint64(0x100000001B3)
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    return h ^ (h >> np.uint64(32))


@njit(
    types.Tuple((_ROWS, _ROWS, _SPANS))(
        _BYTES, types.Array(types.int8, 2, "C"), _ROWS, _ROWS, _SPANS
    ),
    cache=True,
    nogil=True,
)
def group_fields(buf, kind, start, end, cols):  # pragma: no cover - compiled
    """For each field ``cols[c]`` of the scanned lines, group the lines by the field's
    text (exactly, byte for byte), the lines without the field making one group of their
    own. Returns ``(codes, first, counts)``: ``codes[c, line]`` is the line's group,
    ``first[c, g]`` the first line of group ``g``, and ``counts[c]`` how many groups the
    field has; groups are numbered in order of first appearance."""
    n = kind.shape[0]
    m = cols.size
    codes = np.empty((m, n), np.int64)
    first = np.empty((m, n), np.int64)
    counts = np.zeros(m, np.int64)
    size = 16
    while size < 2 * n:
        size <<= 1
    mask = size - 1
    slots = np.empty(size, np.int64)
    hashes = np.empty(max(n, 1), np.uint64)
    for c in range(m):
        col = cols[c]
        slots[:] = -1
        groups = 0
        absent = -1
        for j in range(n):
            if kind[j, col] == ABSENT:
                if absent < 0:
                    absent = groups
                    first[c, groups] = j
                    groups += 1
                codes[c, j] = absent
                continue
            s, e = start[j, col], end[j, col]
            h = _text_hash(buf, s, e)
            slot = np.int64(h & np.uint64(mask))
            while True:
                g = slots[slot]
                if g < 0:
                    slots[slot] = groups
                    hashes[groups] = h
                    first[c, groups] = j
                    codes[c, j] = groups
                    groups += 1
                    break
                if hashes[g] == h:
                    f = first[c, g]
                    fs, fe = start[f, col], end[f, col]
                    same = fe - fs == e - s
                    if same:
                        for x in range(e - s):
                            if buf[fs + x] != buf[s + x]:
                                same = False
                                break
                    if same:
                        codes[c, j] = g
                        break
                slot = (slot + 1) & mask
        counts[c] = groups
    return codes, first, counts
