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

__all__ = ["key_groups", "split_by_key", "take"]


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


def take(history: History, rows: npt.NDArray[np.int64]) -> History:
    """The sub-history of the ops at positions ``rows`` (sorted), with partner positions
    renumbered (a partner not taken becomes -1) and the value and key tables cut down to
    what the rows use."""
    rows = np.asarray(rows, dtype=np.int64)
    new_pos = np.full(len(history), -1, dtype=np.int64)
    new_pos[rows] = np.arange(len(rows), dtype=np.int64)
    pair = history.pair[rows]
    pair = np.where(pair >= 0, new_pos[np.maximum(pair, 0)], -1)

    value, error, key = history.value[rows], history.error[rows], history.key[rows]
    used_values = np.unique(np.concatenate([value[value >= 0], error[error >= 0]]))
    used_keys = np.unique(key[key >= 0])

    def renumber(column: npt.NDArray[np.int32], used: npt.NDArray[Any]) -> npt.NDArray[np.int32]:
        out = np.searchsorted(used, np.maximum(column, 0)).astype(np.int32)
        return np.where(column >= 0, out, column).astype(np.int32)

    return History(
        time=history.time[rows],
        index=history.index[rows],
        type=history.type[rows],
        process=history.process[rows],
        f=history.f[rows],
        value=renumber(value, used_values),
        key=renumber(key, used_keys),
        node=history.node[rows],
        error=renumber(error, used_values),
        line=history.line[rows],
        pair=pair,
        f_names=history.f_names,
        values=[history.values[i] for i in used_values.tolist()],
        keys=[history.keys[i] for i in used_keys.tolist()],
        nodes=history.nodes,
        process_names=history.process_names,
        path=history.path,
    )


def split_by_key(history: History, units: int) -> list[History]:
    """``history``'s client calls cut into at most ``units`` sub-histories of whole keys
    (see the module docstring). A history of one key is one unit."""
    inv = history.client_invokes()
    keys = history.key[inv].astype(np.int64)
    out = []
    for group in key_groups(history, units):
        invokes = inv[np.isin(keys, group)]
        partners = history.pair[invokes]
        rows = np.union1d(invokes, partners[partners >= 0])
        out.append(take(history, rows))
    return out
