"""The top-level ``:valid?`` of a large EDN map, in linear time and bounded memory.

Jepsen's ``results.edn`` can be tens or hundreds of megabytes (Knossos's final paths,
Elle's anomalies, every checker's details), and ``edn_format`` parses about 100 KB/s with
tens of bytes of Python objects per byte of text: a 30 MB file took minutes and gigabytes.
clew needs one value from it, Jepsen's verdict, so :func:`top_level_verdict` scans the
file (memory-mapped, never read into memory) for the key ``:valid?`` of the outermost map
and reads the value after it, skipping strings, comments, character literals and every
nested form without building anything. It looks at its deadline as it goes.
"""

from __future__ import annotations

import mmap
import re
import time
from pathlib import Path

from harness.errors import InputError
from harness.read_budget import ReadBudgetExceeded

__all__ = ["top_level_verdict"]

_STRING = rb'"(?:[^"\\]|\\.)*"'
_ATOM = rb'[^\s,\[\](){}";]+'
#: Inside a nested form only its brackets matter (strings, comments and characters may
#: hold brackets that do not count).
_DEEP = re.compile(rb"%s|;[^\n]*|\\.|([\[({])|([\])}])" % _STRING, re.S)
#: Directly inside the outermost map every form counts: keys and values alternate.
_TOP = re.compile(
    rb"(?P<skip>[\s,]+|;[^\n]*)|(?P<str>%s)|(?P<char>\\.[^\s,\[\](){}\";]*)"
    rb"|(?P<value>##%s)|(?P<prefix>#_|\^|#(?=\")|#(?!\{)%s)|(?P<open>#?[\[({])"
    rb"|(?P<close>[\])}])|(?P<atom>%s)" % (_STRING, _ATOM, _ATOM, _ATOM),
    re.S,
)
_VERDICTS: dict[bytes, bool | str] = {b"true": True, b"false": False, b":unknown": "unknown"}
#: Matches between two looks at the clock.
_EVERY = 4096


def top_level_verdict(path: Path, *, deadline: float | None = None) -> bool | str | None:
    """The value of ``:valid?`` in the outermost map of the EDN file ``path``: ``True``,
    ``False``, ``"unknown"`` (``:unknown``), or ``None`` when the map has no such key or
    its value is something else. :class:`InputError` naming the file when it does not
    hold a map, or ends inside one; :class:`~harness.read_budget.ReadBudgetExceeded` once
    ``deadline`` (a :func:`time.monotonic` instant) has passed."""
    with path.open("rb") as f:
        try:
            buf: bytes | mmap.mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            buf = b""
        try:
            return _scan(buf, path, deadline)
        finally:
            if isinstance(buf, mmap.mmap):
                buf.close()


def _scan(buf: bytes | mmap.mmap, path: Path, deadline: float | None) -> bool | str | None:
    pos, end, steps = 0, len(buf), 0
    depth = 0  # 0: before the map; 1: directly inside it; more: inside a nested form
    forms = 0  # forms read directly inside the map (even: a key, odd: its value)
    skip = 0  # forms still to skip: #_ discards the next one, ^ marks it as metadata
    want_value: bool | None = False  # the last key was :valid?
    while pos < end:
        steps += 1
        if steps % _EVERY == 0:
            _check_deadline(deadline, path, pos, end)
        if depth >= 2:
            pos, depth = _skip_nested(buf, pos, depth, path, deadline)
            if depth < 2:
                forms, skip, want_value = _counted(forms, skip, want_value)
                if want_value is None:
                    return None  # :valid? holds a collection
            continue
        m = _TOP.match(buf, pos)
        if m is None:  # a stray quote or the like
            raise InputError(f"{path}: not EDN at byte {pos:,}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "skip":
            continue
        if depth == 0:
            if kind == "open" and m.group() == b"{":
                depth = 1
            elif kind != "prefix":  # a tag such as #jepsen.X{...} may come first
                raise InputError(f"{path}: not an EDN map (Jepsen's results are one map)")
            continue
        if kind == "prefix":
            skip += m.group() in (b"#_", b"^")
            continue
        if kind == "close":
            return None  # the end of the map: no :valid?
        if kind == "open":
            depth = 2
            continue
        text = m.group()
        if not skip and want_value:
            return _VERDICTS.get(text)
        if not skip and forms % 2 == 0 and text == b":valid?":
            want_value = True
        forms, skip, _ = _counted(forms, skip, False)
    raise InputError(f"{path}: ends inside its EDN map")


def _skip_nested(
    buf: bytes | mmap.mmap, pos: int, depth: int, path: Path, deadline: float | None
) -> tuple[int, int]:
    """From ``pos`` inside a nested form at ``depth`` (2 or more), the position just
    after the bracket that closes it back to depth 1, and that depth; ``depth`` is still
    2 or more at the end of the file."""
    for n, m in enumerate(_DEEP.finditer(buf, pos)):
        if n % _EVERY == _EVERY - 1:
            _check_deadline(deadline, path, m.end(), len(buf))
        which = m.lastindex
        if which == 1:
            depth += 1
        elif which == 2:
            depth -= 1
            if depth == 1:
                return m.end(), 1
    return len(buf), depth


def _check_deadline(deadline: float | None, path: Path, pos: int, end: int) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise ReadBudgetExceeded(
            f"time limit reached while scanning {path} for Jepsen's verdict "
            f"({pos:,} of {end:,} bytes)",
            resource="time",
            path=str(path),
            line=None,
        )


def _counted(forms: int, skip: int, want_value: bool | None) -> tuple[int, int, bool | None]:
    """A whole form was read directly inside the map: count it unless it is skipped
    (``skip`` left); when it was the value ``:valid?`` waited for, the third is ``None``."""
    if skip:
        return forms, skip - 1, want_value
    return forms + 1, 0, None if want_value else False
