"""Histories as one JSON array of op objects (the same objects as the JSONL format).

The array is decoded element by element so that every error, and every op, can name the
line it starts on. Under a memory budget, the file's text is looked at against it before
it is read, and each op before it is decoded (:func:`_decode_op`).
"""

from __future__ import annotations

import json
import os
import re
from typing import IO, Any

from harness.errors import HistoryError
from harness.formats._io import add_op, decode_error, no_ops_error, open_bytes, too_deep
from harness.formats.jsonl import op_to_json_line
from harness.history import History, HistoryBuilder
from harness.read_budget import JSON_MOST_PER_CHAR, ReadBudget

__all__ = ["read_json", "write_json"]

_WS = re.compile(r"[ \t\n\r]*")
_RAW_DECODE = json.JSONDecoder().raw_decode


def _json_error(path: str, e: json.JSONDecodeError) -> HistoryError:
    end = " (the file ends there: truncated?)" if e.pos >= len(e.doc.rstrip()) else ""
    return HistoryError(
        f"not valid JSON: {e.msg} at column {e.colno}{end}", path=path, line=e.lineno
    )


def read_json(path: str, *, budget: ReadBudget | None = None) -> History:
    """Read a history stored as a JSON array of op objects.

    Raises :class:`HistoryError` naming the file and line for malformed JSON (including a
    truncated array), an element that is not an op object, a bad op, or no ops at all;
    :class:`~harness.read_budget.ReadBudgetExceeded` when ``budget`` runs out.
    """
    text = _read_text(path, budget)
    builder = HistoryBuilder(path=path, budget=budget)
    builder.check_budget(None)
    small = 1 << 62 if budget is None else budget.small_text(JSON_MOST_PER_CHAR)
    ws = _WS.match
    find = text.find
    windowed = len(text) > small
    pos = ws(text, 0).end()  # type: ignore[union-attr]
    if pos == len(text):
        raise no_ops_error(path)
    line = 1 + text.count("\n", 0, pos)
    if text[pos] != "[":
        raise HistoryError(
            "expected a JSON array of ops ('[' first); for one op per line use the jsonl format",
            path=path,
            line=line,
        )
    pos = ws(text, pos + 1).end()  # type: ignore[union-attr]
    n = len(text)
    counted = 0  # text[:counted] has been scanned for newlines; line_at is the line there
    line_at = 1
    if pos < n and text[pos] == "]":
        pos += 1
    else:
        while True:
            line_at += text.count("\n", counted, pos)
            counted = pos
            if pos >= n:
                raise HistoryError(
                    "the array is not closed (no ']'); truncated file?", path=path, line=line_at
                )
            # (looked for no further than a short op's length: a one-line array has none)
            stop = find("\n", pos, pos + small + 1) if windowed else -1
            try:
                if not windowed:  # no budget, or the whole text is small: in place
                    op, end = _RAW_DECODE(text, pos)
                elif 0 <= stop - pos <= small:  # the usual op: on its line, short (inlined)
                    try:
                        op, end = _RAW_DECODE(text[pos:stop])
                        end += pos
                    except json.JSONDecodeError:
                        op, end = _decode_op(text, pos, builder, line_at, small)
                else:
                    op, end = _decode_op(text, pos, builder, line_at, small)
            except RecursionError:
                raise too_deep(path, line_at) from None
            except json.JSONDecodeError as e:
                raise _json_error(path, e) from None
            add_op(builder, op, line_at, what="a JSON object (one op)")
            pos = ws(text, end).end()  # type: ignore[union-attr]
            if pos < n and text[pos] == ",":
                pos = ws(text, pos + 1).end()  # type: ignore[union-attr]
                continue
            if pos < n and text[pos] == "]":
                pos += 1
                break
            line_at += text.count("\n", counted, pos)
            counted = pos
            what = "the end of the file" if pos >= n else repr(text[pos])
            raise HistoryError(
                f"expected ',' or ']' after an op, found {what}"
                + ("; truncated file?" if pos >= n else ""),
                path=path,
                line=line_at,
            )
    rest = ws(text, pos).end()  # type: ignore[union-attr]
    if rest != n:
        raise HistoryError(
            "unexpected text after the closing ']'",
            path=path,
            line=1 + text.count("\n", 0, rest),
        )
    if not len(builder):
        raise no_ops_error(path)
    return builder.build()


def _read_text(path: str, budget: ReadBudget | None) -> str:
    """The text of ``path`` (newlines as text mode reads them). Under a memory budget, the
    file's bytes, then its text, are looked at against what is left before they are
    made: they are held whole while the ops are decoded."""
    with open_bytes(path) as f:
        if budget is not None:
            size = os.fstat(f.fileno()).st_size
            budget.check_room(path, None, size, what="reading the file whole")
        data = f.read()
    if budget is not None:  # a str takes 1 byte a character if all are ASCII, else up to 4
        size = len(data) if data.isascii() else 4 * len(data)
        budget.check_room(path, None, size, what="decoding the file's text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise decode_error(path, e) from None
    del data
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


#: The first window an op is decoded from when it is not alone on a short line (a JSON
#: array written on one line): long enough for most ops, doubled until one ends in it.
_FIRST_WINDOW = 512


def _decode_op(
    text: str, pos: int, builder: HistoryBuilder, line: int, small: int
) -> tuple[Any, int]:
    """The JSON value at ``text[pos:]`` and where it ends, as ``raw_decode`` gives them;
    under a memory budget, what decoding it may take is looked at first
    (:meth:`~harness.read_budget.ReadBudget.check_decoding`, ``small`` its shortest text
    worth a look), so a huge op is refused before it is decoded.

    The op is decoded from a window of the text starting at ``pos``, first
    :data:`_FIRST_WINDOW` characters, doubled (and looked at again) until the op ends
    inside it: so each op costs about its own length, also on one long line. A value that
    reaches the window's end, or an error, may be the window's cut: only a window that
    holds all the rest of the text is taken at its word (decoded in place, so that an
    error names the whole text's positions)."""
    n = len(text)
    if n - pos <= small:  # no budget, or all the rest is small: decoded in place
        return _RAW_DECODE(text, pos)
    size = _FIRST_WINDOW
    while True:
        stop = min(n, pos + size)
        if stop - pos > small:
            builder.budget.check_decoding(  # type: ignore[union-attr]
                builder.path, line, text[pos:stop], builder.held_bytes(),
                what="decoding the op there",
            )  # fmt: skip
        if stop == n:
            return _RAW_DECODE(text, pos)
        try:
            op, end = _RAW_DECODE(text[pos:stop])
            if end < stop - pos:  # (a number running to the cut may go on past it)
                return op, pos + end
        except json.JSONDecodeError:
            pass
        size *= 2


def write_json(history: History, out: IO[str]) -> None:
    """Write ``history`` as a JSON array, one op object per line."""
    out.write("[\n")
    last = len(history) - 1
    for i, op in enumerate(history):
        out.write(op_to_json_line(op.to_dict())[:-1] + (",\n" if i < last else "\n"))
    out.write("]\n")
