"""The journal's JSON lines, made fast: the same text as
:func:`harness.formats.jsonl.op_to_json_line` (the one definition of a line), for the
ops a run produces thousands of times a second.

A run journals two lines per operation, so the encoding is on the interpreter's hot
path. json's encoder spends most of its time on the field names and the calls around
them; here a line is one ``%`` format of a fixed template. The JSON text of the part of
a line that repeats – process, ``f``, key and node, the same for an invocation and its
completion and for every op of a worker on a key – is remembered, keyed by those values
when they are plain ints, strings or ``None`` (so ``1``, ``1.0`` and ``True``, which
are equal keys, never share a text). Other values go through json's C encoder, the one
``op_to_json_line`` uses; ops with fields clew does not know, and anything that encoder
rejects, are handed to ``op_to_json_line`` itself. The output never differs (the unit
tests compare the two on many ops).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from json.encoder import encode_basestring
from typing import Any, Final, Protocol, runtime_checkable

from harness.formats._io import OP_FIELDS
from harness.formats.jsonl import _C_ENCODER, op_to_json_line

__all__ = [
    "TEXT_CACHE_SIZE",
    "CallbackJournal",
    "Journal",
    "Record",
    "fields_line",
    "op_line",
    "record_op",
    "records_text",
]

#: Entries of each remembered-text table (strings; process/f/key/node parts) before it
#: is emptied and starts again.
TEXT_CACHE_SIZE: Final = 4096
#: Strings longer than this are encoded every time (they are rarely repeated).
_CACHED_STRING_MAX: Final = 64

_FIELDS: Final = frozenset(OP_FIELDS)
_LINE: Final = '{"index":%%d,"time":%%d,"type":%s,%%s,"value":%%s%%s%%s}\n'
_strings: dict[str, str] = {}  # string -> its JSON text
_templates: dict[str, str] = {}  # type -> the line's template with that type filled in
_parts: dict[tuple[Any, ...], tuple[str, str]] = {}  # (process, f, key, node) -> texts


class _Slow(Exception):
    """A value the template does not handle: the line is made by ``op_to_json_line``."""


def _string(s: str) -> str:
    """The JSON text of string ``s``, remembered if short (``TypeError`` if no string)."""
    t = encode_basestring(s)
    if len(s) <= _CACHED_STRING_MAX:
        if len(_strings) >= TEXT_CACHE_SIZE:
            _strings.clear()
        _strings[s] = t
    return t


def _text(v: Any) -> str:
    """The JSON text of any value, as ``op_to_json_line`` writes it; :class:`_Slow` for
    one it must convert first (tuples as map keys, objects json does not know)."""
    c = v.__class__
    if c is int:
        return int.__repr__(v)
    if v is None:
        return "null"
    if c is str:
        return encode_basestring(v)
    if (c is list or c is tuple) and len(v) == 2:  # pairs: cas's [from, to], [key, value]
        a, b = v
        if a.__class__ is int and b.__class__ is int:
            return f"[{a},{b}]"
    if _C_ENCODER is None:
        raise _Slow
    try:
        return "".join(_C_ENCODER(v, 0))
    except (TypeError, ValueError):
        raise _Slow from None


def _template(type_: str) -> str:
    """The line template for ops of type ``type_`` (``TypeError`` if no string)."""
    t = _LINE % encode_basestring(type_).replace("%", "%%")
    if len(_templates) >= TEXT_CACHE_SIZE:
        _templates.clear()
    _templates[type_] = t
    return t


def _plain(v: Any) -> bool:
    """Whether ``v`` can be part of a remembered text's key: equal keys must mean the same
    JSON text, so only exact ints and strings, and ``None``."""
    c = v.__class__
    return c is int or c is str or v is None


def _part_texts(process: Any, f: Any, key: Any, node: Any) -> tuple[str, str]:
    """``'"process":P,"f":F'`` and ``',"key":K,"node":N'`` (each field left out when
    ``None``), remembered when all four are plain. (A ``None`` process is left out of
    the line: :class:`_Slow`.)"""
    if process is None:
        raise _Slow
    texts = (
        f'"process":{_text(process)},"f":{_strings.get(f) or _string(f)}',
        ("" if key is None else f',"key":{_text(key)}')
        + ("" if node is None else f',"node":{_strings.get(node) or _string(node)}'),
    )
    if _plain(process) and _plain(f) and _plain(key) and _plain(node):
        if len(_parts) >= TEXT_CACHE_SIZE:
            _parts.clear()
        _parts[(process, f, key, node)] = texts
    return texts


def fields_line(
    index: Any,
    time: Any,
    type_: Any,
    process: Any,
    f: Any,
    value: Any,
    key: Any = None,
    node: Any = None,
    error: Any = None,
) -> str:
    """The journal line (ending in a newline) of the op with these fields – exactly
    ``op_to_json_line`` of the dict of them. ``None`` means absent (``value`` is then
    written as ``null``)."""
    try:
        if index.__class__ is not int or time.__class__ is not int or f.__class__ is not str:
            raise _Slow
        kc = key.__class__
        if (
            process.__class__ is int
            and (kc is int or kc is str or key is None)
            and (node.__class__ is str or node is None)
        ):
            parts = _parts.get((process, f, key, node)) or _part_texts(process, f, key, node)
        else:  # e.g. the nemesis's ops (process "nemesis"), or a key of another type
            parts = _part_texts(process, f, key, node)
        return (_templates.get(type_) or _template(type_)) % (
            index,
            time,
            parts[0],
            value if value.__class__ is int else _text(value),
            parts[1],
            "" if error is None else ',"error":' + _text(error),
        )
    except (_Slow, TypeError):
        fields = (index, time, type_, process, f, value, key, node, error)
        return op_to_json_line(dict(zip(OP_FIELDS, fields, strict=True)))


#: The fields of an op in :data:`~harness.formats._io.OP_FIELDS` order (``None``: absent).
Record = tuple[Any, Any, Any, Any, Any, Any, Any, Any, Any]


def records_text(records: Iterable[str | Record]) -> str:
    """The journal text of ``records``, in order: each a ready line, or an op's fields
    (:data:`Record`) – the line :func:`fields_line` makes of them, made here in one pass
    for a whole batch (no call per line, and the time of a batch written once)."""
    out: list[str] = []
    append = out.append
    strings, parts_of = _strings, _parts
    last_time: Any = None
    time_text = ""
    for r in records:
        if isinstance(r, str):
            append(r)
            continue
        index, time, type_, process, f, value, key, node, error = r
        kc = key.__class__
        if (
            index.__class__ is int
            and time.__class__ is int
            and process.__class__ is int
            and f.__class__ is str
            and (kc is int or kc is str or key is None)
            and (node.__class__ is str or node is None)
        ):
            try:
                parts = parts_of.get((process, f, key, node)) or _part_texts(process, f, key, node)
                if time is not last_time:  # the ops of a batch mostly share one time
                    last_time, time_text = time, int.__repr__(time)
                tail = "}\n" if error is None else f',"error":{_text(error)}}}\n'
                append(
                    f'{{"index":{index},"time":{time_text},'
                    f'"type":{strings.get(type_) or _string(type_)},{parts[0]},'
                    f'"value":{value if value.__class__ is int else _text(value)}{parts[1]}{tail}'
                )
                continue
            except (_Slow, TypeError):
                pass
        append(fields_line(*r))
    return "".join(out)


def op_line(op: dict[str, Any]) -> str:
    """``op_to_json_line(op)``, faster for the usual ops of a run."""
    if not op.keys() <= _FIELDS:
        return op_to_json_line(op)
    g = op.get
    return fields_line(
        g("index"),
        g("time"),
        g("type"),
        g("process"),
        g("f"),
        g("value"),
        g("key"),
        g("node"),
        g("error"),
    )


def record_op(record: Record) -> dict[str, Any]:
    """The op dict of ``record``: its fields, leaving out the absent (``None``) ones
    except ``value``."""
    return {k: v for k, v in zip(OP_FIELDS, record, strict=True) if v is not None or k == "value"}


@runtime_checkable
class Journal(Protocol):
    """Where an interpreter journals ops: each op as its fields (a :data:`Record`),
    appended as it happens, and written out by :meth:`flush`, which the interpreter calls
    before every yield to the event loop (so every invocation is out before its client
    sees it, and a crash loses nothing journaled before its last yield). The interpreter
    changes no value of a record it appended. :class:`harness.store.Journal` writes
    ``history.jsonl``; :class:`CallbackJournal` hands op dicts to a function."""

    def append_fields(self, record: Record) -> None:
        """Take the op with these fields (written out by the next :meth:`flush`)."""
        ...

    def flush(self) -> None:
        """Write out every op taken since the last flush, in order."""
        ...


class CallbackJournal:
    """A :class:`Journal` that calls ``callback`` with each op as a dict
    (:func:`record_op`), in order, at each flush (e.g. ``list.append`` in tests)."""

    def __init__(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._callback = callback
        self._pending: list[Record] = []
        self.append_fields: Callable[[Record], None] = self._pending.append

    def flush(self) -> None:
        """Call back with every pending op."""
        pending, callback = self._pending, self._callback
        for record in pending:
            callback(record_op(record))
        pending.clear()
