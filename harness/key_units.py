"""A history cut into key groups: the units of a linearizability check done elsewhere.

Linearizability is compositional (P-compositionality): a history is linearizable exactly
when the sub-history of every key is. :func:`split_by_key` cuts a history into at most
``units`` sub-histories, each holding whole keys (every client call whose invocation names
one of its keys, with its completion), balanced by the number of calls. Each
sub-history carries only the values and keys it uses, so sending one to another process
costs its own size, not the whole history's. Ops keep their ``index`` and source ``line``,
so a counterexample found in a unit names the ops of the file.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.history import History

__all__ = ["cut_tables", "key_groups", "split_by_key", "take", "unit_layout"]


def key_groups(history: History, units: int) -> list[npt.NDArray[np.int64]]:
    """The key ids of ``history``'s client calls in at most ``units`` groups, balanced by
    calls per group (largest keys first, each to the lightest group). Calls without a
    key form a key of their own (id -1). Empty groups are dropped."""
    if units < 1:
        raise ValueError("units must be >= 1")
    inv = history.client_invokes()
    keys = history.key[inv].astype(np.int64)
    ids, counts = np.unique(keys, return_counts=True)
    bins: list[tuple[int, int]] = [(0, b) for b in range(min(units, len(ids)))]
    members: list[list[int]] = [[] for _ in bins]
    for j in np.argsort(-counts, kind="stable").tolist():
        load, b = heapq.heappop(bins)
        members[b].append(int(ids[j]))
        heapq.heappush(bins, (load + int(counts[j]), b))
    return [np.array(sorted(m), dtype=np.int64) for m in members if m]


def _used(column: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
    """The ids (>= 0) that ``column`` uses, sorted (the unit's size, not the table's)."""
    return np.unique(column[column >= 0]).astype(np.int64)


def _renumber(column: npt.NDArray[np.int32], used: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
    """``column``'s ids as positions in ``used`` (-1 stays -1)."""
    at = np.searchsorted(used, column).astype(np.int32)
    return np.where(column >= 0, at, -1).astype(np.int32)


def cut_tables(
    history: History,
    value: npt.NDArray[np.int32],
    error: npt.NDArray[np.int32],
    key: npt.NDArray[np.int32],
) -> tuple[
    npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.int32], list[Any], list[Any]
]:
    """Some rows' ``value``, ``error`` and ``key`` columns of ``history`` renumbered into
    tables of only the values and keys they use, with those tables:
    ``(value, error, key, values, keys)``."""
    used_values = _used(np.concatenate([value, error]))
    used_keys = _used(key)
    return (
        _renumber(value, used_values),
        _renumber(error, used_values),
        _renumber(key, used_keys),
        [history.values[i] for i in used_values.tolist()],
        [history.keys[i] for i in used_keys.tolist()],
    )


def take(history: History, rows: npt.NDArray[np.int64]) -> History:
    """The sub-history of the ops at positions ``rows`` (sorted, distinct), with partner
    positions renumbered (a partner not taken becomes -1) and the value and key tables
    cut down to what the rows use. Costs the rows' size, not the history's (its columns
    may be mapped files: only the rows taken are read)."""
    rows = np.asarray(rows, dtype=np.int64)
    pair = np.asarray(history.pair[rows])
    at = np.minimum(np.searchsorted(rows, pair), max(len(rows) - 1, 0))
    found = (pair >= 0) & (rows[at] == pair) if len(rows) else pair >= 0
    pair = np.where(found, at, -1).astype(np.int64)

    value, error, key, values, keys = cut_tables(
        history, history.value[rows], history.error[rows], history.key[rows]
    )
    return History(
        time=history.time[rows],
        index=history.index[rows],
        type=history.type[rows],
        process=history.process[rows],
        f=history.f[rows],
        value=value,
        key=key,
        node=history.node[rows],
        error=error,
        line=history.line[rows],
        pair=pair,
        f_names=history.f_names,
        values=values,
        keys=keys,
        nodes=history.nodes,
        process_names=history.process_names,
        path=history.path,
    )


def unit_layout(
    history: History, groups: list[npt.NDArray[np.int64]]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The rows of every group, one group after another: ``rows[offsets[g]:offsets[g+1]]``
    are the positions (sorted) of the client calls on group ``g``'s keys (ids; -1 for
    calls without a key), invocations and completions. One pass over the history for all
    groups."""
    inv = history.client_invokes()
    group_of_key = np.full(len(history.keys) + 1, -1, dtype=np.int64)  # key -1: last slot
    for g, members in enumerate(groups):
        group_of_key[np.asarray(members, dtype=np.int64)] = g
    g_inv = group_of_key[history.key[inv]]
    partners = history.pair[inv]
    done = partners >= 0
    rows = np.concatenate([inv, partners[done]]).astype(np.int64)
    group = np.concatenate([g_inv, g_inv[done]])
    order = np.argsort(group * (len(history) + 1) + rows)  # by group, then position
    rows, group = rows[order], group[order]
    keep = group >= 0
    rows, group = rows[keep], group[keep]
    offsets = np.searchsorted(group, np.arange(len(groups) + 1)).astype(np.int64)
    return rows, offsets


def split_by_key(history: History, units: int) -> list[History]:
    """``history``'s client calls cut into at most ``units`` sub-histories of whole keys
    (see the module docstring). A history of one key is one unit."""
    groups = key_groups(history, units)
    rows, offsets = unit_layout(history, groups)
    return [take(history, rows[offsets[g] : offsets[g + 1]]) for g in range(len(groups))]
