"""A run's history journal as a crash leaves it: every whole line, and the torn last one
named rather than fatal.

The journal is written a line at a time; a controller killed mid-write leaves a last line
without its newline that is not JSON. Checking a stored run (``clew analyze``) reads every
whole line before it and says that one was left out. A bad line anywhere else is still bad
input (:class:`~harness.errors.HistoryError`, file and line).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from harness.errors import HistoryError, InputError
from harness.formats import read_history
from harness.formats._io import open_bytes
from harness.history import History

#: Bytes read at a time when looking back from the end for the last newline.
_CHUNK = 1 << 16
#: The longest last line without a newline read whole to see whether it is JSON; a longer
#: one is torn (one op's line is far shorter).
_WHOLE_TAIL_LIMIT = 64 * 1024**2


def torn_tail_offset(path: Path) -> int | None:
    """The byte offset where ``path``'s torn last line starts, ``None`` if it has none (it
    ends with a newline, or its last line is whole JSON without one).
    :class:`~harness.errors.InputError` naming ``path`` if it is missing, a directory or
    unreadable. A last line without a newline longer than :data:`_WHOLE_TAIL_LIMIT` is
    torn, unread. (A foreign run holding a FIFO is refused before this:
    :func:`harness.store.refuse_special_files`.)"""
    with open_bytes(str(path)) as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return None
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return None
        end = size
        while end > 0:
            start = max(0, end - _CHUNK)
            f.seek(start)
            chunk = f.read(end - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                line_start = start + cut + 1
                break
            end = start
        else:
            line_start = 0
        if size - line_start > _WHOLE_TAIL_LIMIT:
            return line_start  # not an op clew journals: held whole, it could fill memory
        f.seek(line_start)
        tail = f.read()
    try:
        json.loads(tail)
    except (ValueError, RecursionError):
        return line_start
    return None


def read_run_history(path: Path) -> tuple[History, str | None]:
    """The history of a run's ``history.jsonl``, and (second) a note for people when its
    torn last line was left out, else ``None``. :class:`~harness.errors.InputError` if the
    file cannot be read (missing, a directory); :class:`~harness.errors.HistoryError` for
    any other bad line, or when no whole line is left."""
    cut = torn_tail_offset(path)
    if cut is None:
        return read_history(str(path), "jsonl"), None
    with path.open("rb") as f:
        line = f.read(cut).count(b"\n") + 1
    with tempfile.TemporaryDirectory(prefix="clew-journal-") as tmp:
        whole = Path(tmp) / path.name
        with path.open("rb") as src, whole.open("wb") as dst:
            _copy_prefix(src, dst, cut)
        try:
            history = read_history(str(whole), "jsonl")
        except HistoryError as e:  # about the run's own file, not this copy of its lines
            raise HistoryError(e.reason.replace(str(whole), str(path)), path=str(path),
                               line=e.line) from None  # fmt: skip
        except InputError as e:
            raise InputError(str(e).replace(str(whole), str(path))) from None
    note = (f"{path}:{line}: the last line was torn (the controller stopped mid-write); "
            f"the {line - 1} whole lines before it were checked")  # fmt: skip
    return history, note


def _copy_prefix(src: BinaryIO, dst: BinaryIO, length: int) -> None:
    """Copy the first ``length`` bytes of ``src`` to ``dst``."""
    src.seek(0)
    while length > 0:
        data = src.read(min(length, 1 << 20))
        if not data:
            return
        dst.write(data)
        length -= len(data)
