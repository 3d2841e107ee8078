"""Units of checking work and who runs them: the seam between a checker and an executor.

A checker that splits its work into independent units (the linearizability checker's
key groups, the transactional checker's strongly connected components) hands them to a
:class:`UnitMap`. The default, :func:`serial_map`, runs them here, one after another;
``harness/check_dask.py`` runs them on a Dask cluster. Either way the checker stays a pure
function of its history: the map only decides *where* a unit runs, never what it
computes, so the verdict is the same on one process or many.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["UnitMap", "serial_map"]


class UnitMap(Protocol):
    """Runs ``fn`` on every unit and yields ``(index, result)`` as each finishes, in any
    order. It stops (yielding no more, raising nothing) once ``seconds`` have passed, so
    the caller can count the units it did not get back. ``fn`` must be a module-level
    function and every unit picklable (a unit may run in another process or machine)."""

    def __call__(
        self, fn: Callable[[Any], Any], units: Sequence[Any], *, seconds: float | None
    ) -> Iterator[tuple[int, Any]]: ...


def serial_map(
    fn: Callable[[T], R], units: Sequence[T], *, seconds: float | None
) -> Iterator[tuple[int, R]]:
    """The :class:`UnitMap` of one process: the units in order, until ``seconds`` pass."""
    end = None if seconds is None else time.monotonic() + seconds
    for i, unit in enumerate(units):
        if end is not None and time.monotonic() > end:
            return
        yield i, fn(unit)
