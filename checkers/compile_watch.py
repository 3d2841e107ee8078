"""Who wants to know when a kernel compiles: Numba compiles a kernel not yet in its cache
(the first use, or a changed source) when its module is imported (declared signatures) or
first called, which takes from seconds to a minute. The cache of
:func:`checkers._numba.njit` calls :func:`compiling` when a lookup misses, just before,
and a watcher (``clew test``'s progress lines) says so to the person waiting. This
module imports nothing heavy, so a watcher costs no Numba import."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

__all__ = ["compiling", "watching"]

_watchers: list[Callable[[str], None]] = []
_told: set[str] = set()

#: What a person calls the kernels of each module (by the module's name).
_NAMES = {
    "checkers.linear.kernel": "the linearizability checker",
    "checkers.txn.kernels": "the transactional checker",
    "harness.formats._jsonl_scan": "the history reader",
    "harness.formats._jsonl_txn": "the history reader",
}


def what(module: str) -> str:
    """A person's name for the kernels of ``module`` (e.g. "the linearizability checker")."""
    return _NAMES.get(module, f"the kernels of {module}")


def compiling(module: str) -> None:
    """A kernel of ``module`` is about to be compiled: tell each watcher, once per
    person-facing name in this process."""
    name = what(module)
    if name in _told:
        return
    _told.add(name)
    for watcher in _watchers:
        watcher(name)


@contextlib.contextmanager
def watching(watcher: Callable[[str], None]) -> Iterator[None]:
    """Call ``watcher(name)`` while the block runs whenever a kernel is about to compile
    (``name``: :func:`what` it belongs to)."""
    _watchers.append(watcher)
    try:
        yield
    finally:
        _watchers.remove(watcher)
