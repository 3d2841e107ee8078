"""History files: reading the formats clew understands, and writing its own.

========================  ===========================================================  =====
Format                    What                                                          Write
========================  ===========================================================  =====
``jsonl``                 clew's native journal: one JSON op object per line            yes
``json``                  one JSON array of the same op objects                         yes
``edn``                   Jepsen's ``history.edn``, Knossos's and Elle's EDN files      yes
``porcupine-etcd``        Porcupine's ``jepsen/etcd_*.log`` (``INFO  jepsen.util - …``)  no
``porcupine-kv``          Porcupine's ``kv/*.txt`` (EDN maps with ``:key``)             no
========================  ===========================================================  =====

``auto`` detects the format from the content (:func:`detect_format`). Every reader returns
a :class:`~harness.history.History` and reports a bad file as a
:class:`~harness.errors.HistoryError` naming the file and the 1-based line; an empty file
is always an error. The formats and their normalisation are documented in
``docs/history-format.md``. A reader's module is imported when a file in its format is
first read (``clew check`` of clew's own JSONL then never imports the EDN parser).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from harness.errors import ConfigError, HistoryError, InputError
from harness.formats._io import check_exists, no_ops_error, read_head
from harness.formats.jsonl import op_to_json_line, write_jsonl
from harness.history import History
from harness.output_paths import open_new_text
from harness.read_budget import ReadBudget

__all__ = [
    "FORMATS",
    "WRITABLE_FORMATS",
    "convert",
    "detect_format",
    "op_to_json_line",
    "read_history",
    "write_history",
]

FORMATS = ("auto", "jsonl", "json", "edn", "porcupine-etcd", "porcupine-kv")
#: Formats :func:`write_history` can produce.
WRITABLE_FORMATS = ("jsonl", "json", "edn")

#: Each format's reader: (module, function), imported when first used.
_READERS: dict[str, tuple[str, str]] = {
    "jsonl": ("harness.formats.jsonl", "read_jsonl"),
    "json": ("harness.formats.json_array", "read_json"),
    "edn": ("harness.formats.edn", "read_edn"),
    "porcupine-etcd": ("harness.formats.porcupine", "read_porcupine_etcd"),
    "porcupine-kv": ("harness.formats.porcupine", "read_porcupine_kv"),
}


def _reader(format: str) -> Callable[..., History]:
    module, name = _READERS[format]
    reader: Callable[..., History] = getattr(importlib.import_module(module), name)
    return reader


_EXTENSIONS = {".jsonl": "jsonl", ".json": "json", ".edn": "edn"}
_FORMAT_LIST = ", ".join(FORMATS)


def _check_format(format: str, allowed: tuple[str, ...], what: str) -> None:
    if format not in allowed:
        raise ConfigError(
            f"unknown {what} format {format!r}; valid formats are: {', '.join(allowed)}"
        )


def detect_format(path: str, head: str | None = None) -> str:
    """The format of the history at ``path``, judged from its content.

    ``head`` is the start of the file if the caller already has it (a few lines are
    enough); otherwise the first 64 KiB are read. Returns one of the names in
    :data:`FORMATS` other than ``"auto"``. Raises :class:`HistoryError` (line 1) for an
    empty or blank file or one that starts with a byte-order mark, and naming the first
    non-blank line when the content matches no format; :class:`InputError` if the file
    cannot be read.
    """
    if head is None:
        head = read_head(path)
    if head.startswith("\ufeff"):
        raise HistoryError(
            "the file starts with a byte-order mark (U+FEFF, as some Windows editors save "
            "UTF-8), which no history format has; save it without one",
            path=path,
            line=1,
        )
    stripped = head.lstrip()
    while stripped.startswith(";"):  # EDN comment lines (Knossos's files start with one)
        stripped = stripped.split("\n", 1)[1].lstrip() if "\n" in stripped else ""
    if not stripped:
        if head.lstrip().startswith(";"):
            return "edn"  # only comments: the EDN reader says the file has no ops
        raise no_ops_error(path)
    lineno = 1 + head.count("\n", 0, len(head) - len(stripped))
    first = stripped.split("\n", 1)[0].rstrip()
    c = first[0]
    if c == "[":
        after = stripped[1:].lstrip()
        if after.startswith("#") or (after.startswith("{") and after[1:].lstrip()[:1] == ":"):
            return "edn"
        if after[:1] in ("", "{", "]", "[", '"', "-", "t", "f", "n") or after[:1].isdigit():
            return "json"
        return "edn"
    if c == "{":
        after = first[1:].lstrip()
        if after[:1] in ('"', "}"):
            return "jsonl"
        if after[:1] == ":":
            return _edn_flavour(first)
    if c == "#" and "{" in first:
        return "edn"
    if c == "(":
        return "edn"
    from harness.formats.porcupine import ETCD_LINE

    if ETCD_LINE.match(first):
        return "porcupine-etcd"
    snippet = first if len(first) <= 60 else first[:57] + "..."
    raise HistoryError(
        f"cannot tell the history format from the content (it starts {snippet!r}). Known "
        "formats: jsonl (clew: one JSON object per line), json (a JSON array of ops), edn "
        "(Jepsen history.edn), porcupine-etcd (INFO  jepsen.util - ... lines), porcupine-kv "
        "(EDN maps with :key). Name the format explicitly if it is one of these.",
        path=path,
        line=lineno,
    )


def _edn_flavour(first_line: str) -> str:
    """``porcupine-kv`` if the first op map has ``:key`` but no ``:time``/``:index``."""
    from harness.formats.edn import parse_line

    try:
        values = parse_line(first_line)
    except HistoryError:
        return "edn"  # the EDN reader will report the line properly
    if values and isinstance(values[0], dict):
        op = values[0]
        if "key" in op and "time" not in op and "index" not in op:
            return "porcupine-kv"
    return "edn"


def read_history(path: str, format: str = "auto", *, budget: ReadBudget | None = None) -> History:
    """Read the history at ``path`` in ``format`` (one of :data:`FORMATS`).

    Raises :class:`ConfigError` for an unknown format name, :class:`InputError` if the
    file does not exist or cannot be read, and :class:`HistoryError` (naming the file and
    1-based line) if it is malformed, holds no ops, or breaks the pairing rules. With a
    ``budget`` (time limit and memory), reading looks at it as it goes and raises
    :class:`~harness.read_budget.ReadBudgetExceeded`, naming the line it had reached,
    when it runs out.
    """
    _check_format(format, FORMATS, "history")
    check_exists(path)
    if format == "auto":
        format = detect_format(path)
    history = _reader(format)(path, budget=budget)
    if budget is not None:
        budget.check(path, None)
    return history


def _format_for(path: str, format: str) -> str:
    if format != "auto":
        if format not in WRITABLE_FORMATS:
            raise ConfigError(
                f"cannot write histories as {format!r}; writable formats are: "
                f"{', '.join(WRITABLE_FORMATS)} (or auto, which goes by the file extension)"
            )
        return format
    ext = os.path.splitext(path)[1].lower()
    if ext not in _EXTENSIONS:
        raise ConfigError(
            f"cannot choose an output format from the extension of {path!r}; use .jsonl, "
            f".json or .edn, or name the format ({', '.join(WRITABLE_FORMATS)})"
        )
    return _EXTENSIONS[ext]


def write_history(history: History, path: str, format: str) -> None:
    """Write ``history`` to ``path`` as ``jsonl``, ``json`` or ``edn``.

    ``format="auto"`` chooses by extension (``.jsonl``, ``.json``, ``.edn``). A file is
    written to a temporary name beside it and renamed, so ``path`` is never left
    half-written; a symbolic link stays a link (its target is replaced), and a path that is
    not a regular file (``/dev/stdout``, a pipe) is written to as it is. Reading the file
    back gives the same ops. Raises :class:`ConfigError` for a format that cannot be
    written or an unknown extension, :class:`InputError` if the file cannot be written.
    """
    _check_format(format, (*FORMATS,), "output")
    fmt = _format_for(path, format)
    target = os.path.realpath(path)
    stream = os.path.exists(target) and not os.path.isfile(target)
    tmp = target if stream else f"{target}.tmp-{os.getpid()}"
    try:
        # (a planted link at the temporary name is removed, never written through)
        with open(tmp, "w", encoding="utf-8") if stream else open_new_text(tmp) as out:
            if fmt == "jsonl":
                write_jsonl(history, out)
            elif fmt == "json":
                from harness.formats.json_array import write_json

                write_json(history, out)
            else:
                from harness.formats.edn import format_op

                for op in history:
                    out.write(format_op(op.to_dict()) + "\n")
        if not stream:
            os.replace(tmp, target)
    except OSError as e:
        raise InputError(f"{path}: cannot write the history: {e.strerror or e}") from None
    finally:
        if not stream and os.path.exists(tmp):
            os.unlink(tmp)


def convert(src: str, dst: str, *, src_format: str = "auto", dst_format: str = "auto") -> int:
    """Read ``src`` and write it to ``dst``; returns the number of ops written.

    Errors are those of :func:`read_history` and :func:`write_history`; the output format
    is checked before the input is read.
    """
    _check_format(src_format, FORMATS, "input")
    _check_format(dst_format, FORMATS, "output")
    _format_for(dst, dst_format)
    history = read_history(src, src_format)
    write_history(history, dst, dst_format)
    return len(history)
