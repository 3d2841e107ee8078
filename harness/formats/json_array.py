"""Histories as one JSON array of op objects (the same objects as the JSONL format).

The array is decoded element by element so that every error, and every op, can name the
line it starts on.
"""

from __future__ import annotations

import json
import re
from typing import IO

from harness.errors import HistoryError
from harness.formats._io import add_op, decode_error, no_ops_error, open_text, too_deep
from harness.formats.jsonl import op_to_json_line
from harness.history import History, HistoryBuilder
from harness.read_budget import ReadBudget

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
    with open_text(path) as f:
        try:
            text = f.read()
        except UnicodeDecodeError as e:
            raise decode_error(path, e) from None
    builder = HistoryBuilder(path=path, budget=budget)
    builder.check_budget(None)
    ws = _WS.match
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
            try:
                op, end = _RAW_DECODE(text, pos)
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


def write_json(history: History, out: IO[str]) -> None:
    """Write ``history`` as a JSON array, one op object per line."""
    out.write("[\n")
    last = len(history) - 1
    for i, op in enumerate(history):
        out.write(op_to_json_line(op.to_dict())[:-1] + (",\n" if i < last else "\n"))
    out.write("]\n")
