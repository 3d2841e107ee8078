"""Small helpers shared by the collection checkers: walking client ops, listing results.

Positions are positions in the history (its real-time order); results name ops by their
``index`` (Jepsen's op index) so that a person can find them in the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from harness.history import FAIL, INFO, INVOKE, OK, History

__all__ = [
    "MAX_LISTED",
    "client_ops",
    "completion_type",
    "hashable",
    "listed",
    "op_summary",
    "sort_key",
]

#: At most this many items are listed per category in a result (counts are exact).
MAX_LISTED = 100

_TYPE_NAMES = {INVOKE: "invoke", OK: "ok", FAIL: "fail", INFO: "info"}


def client_ops(history: History, *fs: str) -> Iterator[int]:
    """Positions of client ops (not the nemesis) whose ``f`` is one of ``fs``, in order."""
    codes = [c for c in (history.f_code(f) for f in fs) if c >= 0]
    if not codes:
        return iter(())
    mask = (history.process >= 0) & np.isin(history.f, codes)
    return iter(np.flatnonzero(mask).tolist())


def completion_type(history: History, invoke_pos: int) -> int:
    """The type code of the completion of the invocation at ``invoke_pos``; ``INFO`` when
    it never completed (the history ended first)."""
    j = int(history.pair[invoke_pos])
    return INFO if j < 0 else int(history.type[j])


class _FrozenDict(dict[Any, Any]):
    """A map value used as a key (an element, an id): equal to, printed and written to
    JSON like the dict it came from, hashed by its items."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))


def hashable(x: Any) -> Any:
    """``x`` made usable as a dict key, equal values giving equal keys: lists become
    tuples, maps frozen maps, sets frozensets (recursively); anything else as it is."""
    if isinstance(x, list | tuple):
        return tuple(hashable(v) for v in x)
    if isinstance(x, dict):
        return _FrozenDict((hashable(k), hashable(v)) for k, v in x.items())
    if isinstance(x, set | frozenset):
        return frozenset(hashable(v) for v in x)
    return x


def sort_key(x: Any) -> tuple[str, Any]:
    """Orders mixed values: by type name, then by value (repr when not comparable)."""
    if isinstance(x, int | float | str) and not isinstance(x, bool):
        return (type(x).__name__, x)
    return (type(x).__name__, repr(x))


def listed(xs: Iterable[Any], limit: int = MAX_LISTED) -> list[Any]:
    """At most ``limit`` of ``xs``, sorted."""
    return sorted(xs, key=sort_key)[:limit]


def op_summary(history: History, pos: int) -> dict[str, Any]:
    """A small JSON-ready description of the op at ``pos``: index, time, type, process,
    f, value (for results and reports)."""
    return {
        "index": int(history.index[pos]),
        "time": int(history.time[pos]),
        "type": _TYPE_NAMES[int(history.type[pos])],
        "process": history.process_label(pos),
        "f": history.f_names[history.f[pos]],
        "value": history.value_of(pos),
    }
