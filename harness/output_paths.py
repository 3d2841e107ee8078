"""Where a command writes a page: never over one of its own inputs, nor over a file that is
not a page (a history, a results file), which a glob or a slip of the keyboard could name
(``clew check --report x.jsonl *.jsonl``, ``clew compare a.json -o a.json``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from harness.errors import InputError

__all__ = ["check_page_path", "check_writable", "make_dir", "open_new_text"]

#: Bytes read from an existing file to tell whether it is an HTML page.
_SNIFF = 512


def _is_page(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(_SNIFF)
    except OSError:
        return False
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return not text or text.startswith((b"<!doctype html", b"<html"))


def check_page_path(out: str | Path, inputs: Iterable[str | Path], option: str) -> None:
    """Raise :class:`InputError`, naming ``option``, if writing an HTML page at ``out`` would
    replace one of ``inputs``, or an existing file that is neither empty nor an HTML page;
    a new path, an empty file or an earlier page may be written."""
    target = Path(out)
    if not target.exists() or target.is_dir():
        return  # a directory is the caller's own error to name
    for given in inputs:
        path = Path(given)
        try:
            same = path.exists() and os.path.samefile(path, target)
        except OSError:
            same = False
        if same:
            raise InputError(f"{out}: is one of the inputs; {option} names the page to write "
                             f"(choose another path)")  # fmt: skip
    if not _is_page(target):
        raise InputError(f"{out}: exists and is not an HTML page; {option} would replace it "
                         f"(remove it or choose another path)")  # fmt: skip


def make_dir(path: str, option: str) -> None:
    """Make directory ``path`` (and its parents) if missing; :class:`InputError` naming
    ``option`` if it is a file, cannot be made, or is not writable."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"{path}: exists and is not a directory ({option})")
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(
            f"{path}: cannot create the directory: {e.strerror or e} ({option})"
        ) from None
    if not os.access(path, os.W_OK):
        raise InputError(f"{path}: the directory is not writable ({option})")


def check_writable(path: str, option: str) -> None:
    """Raise :class:`InputError` naming ``option`` unless a file can be written at
    ``path`` (not a directory; its directory made if missing, and writable)."""
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory ({option} names a file to write)")
    make_dir(os.path.dirname(os.path.abspath(path)), option)


def open_new_text(path: str | Path) -> TextIO:
    """``path`` opened for writing text as a file created anew: whatever is there already
    (a temporary file left by a crash, or a symlink planted in a directory someone else
    made) is removed first, never written through (``O_EXCL``)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    return os.fdopen(fd, "w", encoding="utf-8")
