"""clew's native history format: JSON Lines, one op per line, in real-time order.

A line looks like::

    {"index":0,"time":1042,"type":"invoke","process":0,"f":"write","value":3}

The fields are described in ``docs/history-format.md``. The file is appended and flushed as
ops happen (the journal), so a crash leaves a valid prefix; :func:`op_to_json_line` is the
one place that turns an op into its line.
"""

from __future__ import annotations

import json
from typing import IO, Any

from harness.errors import HistoryError
from harness.formats._io import OP_FIELDS, add_op, iter_lines, no_ops_error, too_deep
from harness.history import History, HistoryBuilder
from harness.read_budget import ReadBudget

__all__ = ["op_to_json_line", "read_jsonl", "write_jsonl"]

_DECODE = json.JSONDecoder().decode
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode


def _reject(o: Any) -> Any:
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


# json's C encoder, built once: JSONEncoder.encode builds a new one on every call, which
# is most of the journal's cost per op. Same output as _ENCODE (compact, UTF-8, NaN ok).
_C_ENCODER = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _reject, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    if getattr(json.encoder, "c_make_encoder", None) is not None
    else None
)


def _encode_fast(obj: Any) -> str:
    if _C_ENCODER is None:
        return _ENCODE(obj)
    return "".join(_C_ENCODER(obj, 0))


#: Lines decoded together on the fast path (bounds the memory that reading takes, and the
#: time between two looks at the budget).
CHUNK_LINES = 1 << 12


def read_jsonl(path: str, *, budget: ReadBudget | None = None) -> History:
    """Read a JSONL history into a :class:`History`.

    Blank lines are skipped and unknown fields ignored. Raises :class:`HistoryError` naming
    the file and line for a line that is not a JSON object, an op without ``type``,
    ``process`` or ``f``, a bad field, a pairing error, or a file with no ops; and
    :class:`~harness.read_budget.ReadBudgetExceeded` when ``budget`` runs out.
    """
    builder = HistoryBuilder(path=path, budget=budget)
    chunk: list[tuple[int, str]] = []
    for n, text in iter_lines(path):
        if text and not text.isspace():
            chunk.append((n, text))
            if len(chunk) == CHUNK_LINES:
                _add_chunk(builder, chunk, path)
                chunk = []
    _add_chunk(builder, chunk, path)
    if not len(builder):
        raise no_ops_error(path)
    return builder.build()


def _add_chunk(builder: HistoryBuilder, chunk: list[tuple[int, str]], path: str) -> None:
    """Add a chunk of lines: all decoded in one pass and added column by column when they
    are plain ops (the usual case), else line by line with full checks and messages."""
    if not chunk:
        return
    try:
        values = _DECODE("[" + ",".join(text for _, text in chunk) + "]")
        if len(values) == len(chunk) and builder.add_plain_ops(values, [n for n, _ in chunk]):
            return
    except (json.JSONDecodeError, RecursionError):
        pass
    decode = _DECODE
    for n, text in chunk:
        try:
            op = decode(text)
        except RecursionError:
            raise too_deep(path, n) from None
        except json.JSONDecodeError as e:
            end = " (the line ends there: truncated?)" if e.pos >= len(text.rstrip()) else ""
            raise HistoryError(
                f"not valid JSON: {e.msg} at column {e.colno}{end}", path=path, line=n
            ) from None
        add_op(builder, op, n, what="a JSON object (one op)")


def _jsonable(value: Any) -> Any:
    """``value`` with anything JSON cannot hold made representable (tuples, odd keys)."""
    if isinstance(value, dict):
        return {
            k
            if isinstance(k, str | int | float | bool) or k is None
            else _ENCODE(_jsonable(k)): _jsonable(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


def op_to_json_line(op: dict[str, Any]) -> str:
    """One op dict as its JSONL line, **ending in a newline**, ready to append and flush.

    Fields are written in the canonical order (index, time, type, process, f, value, key,
    node, error); ``key``, ``node`` and ``error`` are left out when ``None``, and fields
    clew does not know are dropped. The line is compact UTF-8 JSON with no raw newline
    inside, so a reader can split the file on newlines. Values JSON cannot represent
    (tuples, non-string map keys) are converted: tuples to arrays, keys to their JSON text.
    """
    out: dict[str, Any] = {}
    for name in OP_FIELDS:
        v = op.get(name)
        if v is not None or name == "value":
            out[name] = v
    try:
        return _encode_fast(out) + "\n"
    except (TypeError, ValueError):
        return _ENCODE(_jsonable(out)) + "\n"


def write_jsonl(history: History, out: IO[str]) -> None:
    """Write every op of ``history`` to ``out`` as JSONL, one :func:`op_to_json_line` each."""
    for op in history:
        out.write(op_to_json_line(op.to_dict()))
