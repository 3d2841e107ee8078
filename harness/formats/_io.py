"""Shared plumbing of the history readers: opening files, decoding errors, op fields.

Private to :mod:`harness.formats`. Every reader turns its format into plain op dicts (field
name → decoded value) and hands them to :func:`add_op`, so the rules for the fields (which
are required, what types they may have) live in one place.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from typing import IO, Any

from harness.errors import HistoryError, InputError
from harness.history import MAX_VALUE_DEPTH, HistoryBuilder

#: The op fields clew keeps. Any other field in an input op is ignored.
OP_FIELDS = ("index", "time", "type", "process", "f", "value", "key", "node", "error")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (readers make millions of small objects and no
    cycles; each automatic collection would walk them all)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def open_text(path: str) -> IO[str]:
    """Open ``path`` for reading as UTF-8 text, or raise :class:`InputError` saying why not."""
    return _open(path, "text")


def open_bytes(path: str) -> IO[bytes]:
    """Open ``path`` for reading as bytes, or raise :class:`InputError` saying why not."""
    return _open(path, "bytes")


def _open(path: str, mode: str) -> IO[Any]:
    try:
        return open(path, "rb") if mode == "bytes" else open(path, encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such history file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a history file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied; cannot read the history") from None
    except OSError as e:
        raise InputError(f"{path}: cannot open the history: {e.strerror or e}") from None


def read_head(path: str, size: int = 65536) -> str:
    """The first ``size`` characters of ``path`` (for format detection)."""
    with open_text(path) as f:
        try:
            return f.read(size)
        except UnicodeDecodeError as e:
            raise decode_error(path, e) from None


def decode_error(path: str, exc: UnicodeDecodeError) -> HistoryError:
    """A :class:`HistoryError` for a file that is not UTF-8, naming the first bad line."""
    line = 1
    with open(path, "rb") as f:
        for line, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return HistoryError(
                    f"not valid UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                    "history files must be UTF-8",
                    path=path,
                    line=line,
                )
    return HistoryError(f"not valid UTF-8 text ({exc.reason})", path=path, line=line)


def iter_lines(path: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line of ``path``, 1-based, newline removed.

    Raises :class:`InputError` if the file cannot be opened and :class:`HistoryError` naming
    the line if it is not UTF-8.
    """
    with open_text(path) as f:
        try:
            for n, raw in enumerate(f, 1):
                yield n, raw.rstrip("\n")
        except UnicodeDecodeError as e:
            raise decode_error(path, e) from None


def check_exists(path: str) -> None:
    """Raise :class:`InputError` unless ``path`` is a readable regular file."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such history file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a history file")


def no_ops_error(path: str) -> HistoryError:
    """The error for a file that holds no ops at all (empty, blank, or ``[]``)."""
    return HistoryError("the file is empty (no ops)", path=path, line=1)


def too_deep(path: str, line: int | None) -> HistoryError:
    """The error for a value nested too deeply to decode (or to keep)."""
    return HistoryError(
        f"a value is nested more than {MAX_VALUE_DEPTH} levels deep; clew refuses values "
        "that deep (Jepsen's nest 3 or 4)",
        path=path,
        line=line,
    )


def describe_type(value: Any) -> str:
    """A short, human name for the type of a decoded value (for error messages)."""
    if value is None:
        return "nothing (nil/null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    return type(value).__name__


def looks_like_txn(value: Any) -> bool:
    """Whether ``value`` is a transaction: a non-empty list of ``[f, key, value]``
    micro-ops whose ``f`` is a name."""
    return (
        type(value) is list
        and bool(value)
        and all(type(m) is list and len(m) == 3 and type(m[0]) is str for m in value)
    )


def add_op(
    builder: HistoryBuilder,
    op: Any,
    line: int,
    *,
    time: bool = True,
    what: str = "an op map",
) -> None:
    """Check one decoded op dict and append it to ``builder``.

    ``type`` and ``f`` are required, except that an op whose value is a transaction
    (:func:`looks_like_txn`) has ``f`` ``txn`` when it names none; ops without a
    ``process`` form one process of their own (see :class:`~harness.history.HistoryBuilder`);
    ``index`` must be an integer when present;
    other fields are optional and fields clew does not know are ignored. With
    ``time=False`` the op's own ``time`` is ignored and the position is used instead.
    ``what`` names an op in this format, for the error when ``op`` is not a dict.
    Raises :class:`HistoryError` naming ``builder.path`` and ``line``.
    """
    path = builder.path
    if type(op) is not dict:
        raise HistoryError(f"expected {what}, got {describe_type(op)}", path=path, line=line)
    get = op.get
    typ = get("type")
    process = get("process")
    f = get("f")
    if f is None and looks_like_txn(get("value")):
        f = "txn"  # Elle's and elle-cli's transactions often have no :f
    if typ is None or f is None:
        missing = [n for n, v in (("type", typ), ("f", f)) if v is None]
        raise HistoryError(
            f"the op has no {' and no '.join(repr(m) for m in missing)} field; every op needs "
            "'type' and 'f' (a transaction's f may be left out)",
            path=path,
            line=line,
        )
    if type(typ) is not str:
        raise HistoryError(
            f"the op's type must be one of invoke, ok, fail, info; got {describe_type(typ)}",
            path=path,
            line=line,
        )
    if type(f) is not str and type(f) is not int:
        raise HistoryError(
            f"the op's f must be a name, got {describe_type(f)}", path=path, line=line
        )
    index = get("index")
    if index is not None and type(index) is not int:
        raise HistoryError(
            f"the op's index must be an integer, got {describe_type(index)}", path=path, line=line
        )
    t = get("time") if time else None
    if t is not None and type(t) is not int:
        raise HistoryError(
            f"the op's time must be an integer (ns since the test began), got {describe_type(t)}",
            path=path,
            line=line,
        )
    node = get("node")
    if node is not None and type(node) is not str:
        node = str(node)
    builder.add_row(typ, process, f, get("value"), t, index, get("key"), node, get("error"), line)
