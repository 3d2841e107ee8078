"""A history handed to the worker processes of this machine without pickling it.

The controller writes the history once, as ``.npy`` files in a fresh directory (under
``/dev/shm`` when there is one: memory, not disk). The units (groups of whole keys,
:func:`harness.key_units.unit_layout`) are ranges of ``rows.npy``, the history positions
of each unit's ops, unit after unit. The value, key, error and partner columns are
written in that order, renumbered for each unit (partners counted from the unit's first
row, value and key ids into the unit's own tables); the other columns are written as
they are, and each worker gathers its rows from them. Each unit's values and keys are a
pickle of their own (a worker unpickles only its units' values, not the whole
history's); the tables every unit shares are one more. A worker process maps the files
(``np.load(mmap_mode="r")``): the pages are the machine's page cache, shared by every
process, so a unit sent to a worker is only the directory's name and the unit's number.
Workers on other machines cannot see the directory; they get sub-histories instead
(:func:`harness.key_units.split_by_key`).
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.history import History
from harness.key_units import cut_tables, unit_layout

__all__ = ["SharedHistory", "share_history"]

_COLUMNS = ("time", "index", "type", "process", "f", "value", "key", "node", "error",
            "line", "pair")  # fmt: skip
#: Columns written unit by unit (renumbered for the unit); the others are written in the
#: history's order and each worker gathers its units' rows (``rows.npy``) from them, so
#: that gather runs on the workers, side by side, not on the controller.
_PER_UNIT = ("value", "key", "error", "pair")
_TABLES = "tables.pickle"

#: The history last opened by this process: units of one check come one after another.
_OPENED: dict[str, tuple[History, npt.NDArray[np.int64]]] = {}


@dataclass(frozen=True, slots=True)
class SharedHistory:
    """Where a shared history's files are, and where each unit's rows start (unit ``u``:
    rows ``offsets[u]`` to ``offsets[u + 1]``); small enough to send with every unit."""

    directory: str
    token: str
    offsets: tuple[int, ...]

    def unit(self, u: int) -> History:
        """Unit ``u``'s sub-history (only the values and keys it uses, as
        :func:`harness.key_units.take` cuts it), read from the files."""
        h, all_rows = self.open()
        a, b = self.offsets[u], self.offsets[u + 1]
        with open(os.path.join(self.directory, f"unit-{u}.pickle"), "rb") as f:
            tables = pickle.load(f)
        rows = np.asarray(all_rows[a:b])
        columns: dict[str, Any] = {
            c: np.array(getattr(h, c)[a:b]) if c in _PER_UNIT else getattr(h, c)[rows]
            for c in _COLUMNS
        }
        return History(**columns, **{**_tables(h), **tables})

    def open(self) -> tuple[History, npt.NDArray[np.int64]]:
        """The shared columns, mapped read-only (once per process and check; a new
        check's history replaces the last one), with the tables common to all units (the
        value and key ids are each unit's own), and the units' rows, unit after unit."""
        opened = _OPENED.get(self.token)
        if opened is None:
            with open(os.path.join(self.directory, _TABLES), "rb") as f:
                tables = pickle.load(f)
            columns = {c: np.load(os.path.join(self.directory, f"{c}.npy"), mmap_mode="r")
                       for c in _COLUMNS}  # fmt: skip
            h = History(**columns, **tables, values=[], keys=[])
            rows = np.load(os.path.join(self.directory, "rows.npy"), mmap_mode="r")
            _OPENED.clear()
            opened = _OPENED[self.token] = (h, rows)
        return opened

    def remove(self) -> None:
        """Delete the files (the controller, once every unit is back or cancelled)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def _tables(h: History) -> dict[str, Any]:
    """The tables every unit shares (values and keys are each unit's own)."""
    return {"f_names": h.f_names, "nodes": h.nodes, "process_names": h.process_names,
            "path": h.path}  # fmt: skip


def share_history(history: History, groups: list[npt.NDArray[np.int64]]) -> SharedHistory:
    """Write ``history``'s client calls, unit by unit (``groups``: the key ids of each),
    for the worker processes of this machine (see the module docstring); the caller
    removes the files with :meth:`SharedHistory.remove`."""
    rows, offsets = unit_layout(history, groups)
    pos = np.full(len(history) + 1, -1, dtype=np.int64)  # slot ``len``: "no partner"
    pos[rows] = np.arange(len(rows), dtype=np.int64)
    unit_start = np.repeat(offsets[:-1], np.diff(offsets))
    partner = history.pair[rows]
    moved = pos[np.where(partner >= 0, partner, len(history))]
    local_pair = np.where(moved >= 0, moved - unit_start, -1)
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    directory = tempfile.mkdtemp(prefix="clew-history-", dir=base)
    try:
        columns = {c: getattr(history, c)[rows] for c in _PER_UNIT if c != "pair"}
        columns["pair"] = local_pair
        for u in range(len(offsets) - 1):
            a, b = int(offsets[u]), int(offsets[u + 1])
            cut = cut_tables(history, *(columns[c][a:b] for c in ("value", "error", "key")))
            for c, column in zip(("value", "error", "key"), cut[:3], strict=True):
                columns[c][a:b] = column
            with open(os.path.join(directory, f"unit-{u}.pickle"), "wb") as f:
                pickle.dump({"values": cut[3], "keys": cut[4]}, f, protocol=pickle.HIGHEST_PROTOCOL)
        for c in _COLUMNS:
            column = columns[c] if c in _PER_UNIT else getattr(history, c)
            np.save(os.path.join(directory, f"{c}.npy"), column)
        np.save(os.path.join(directory, "rows.npy"), rows)
        with open(os.path.join(directory, _TABLES), "wb") as f:
            pickle.dump(_tables(history), f, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return SharedHistory(directory=directory, token=uuid.uuid4().hex,
                         offsets=tuple(offsets.tolist()))  # fmt: skip
