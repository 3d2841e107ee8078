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


def _used(column: npt.NDArray[np.int32], size: int) -> npt.NDArray[np.int64]:
    """The ids (>= 0) that ``column`` uses, sorted (a mask, not a sort: ids are dense)."""
    mask = np.zeros(size, dtype=bool)
    mask[column[column >= 0]] = True
    return np.flatnonzero(mask)


def _renumber(
    column: npt.NDArray[np.int32], used: npt.NDArray[np.int64], size: int
) -> npt.NDArray[np.int32]:
    """``column``'s ids as positions in ``used`` (-1 stays -1)."""
    new_id = np.full(size + 1, -1, dtype=np.int32)  # slot ``size`` keeps -1 as -1
    new_id[used] = np.arange(len(used), dtype=np.int32)
    return new_id[np.where(column >= 0, column, size)]


def take(history: History, rows: npt.NDArray[np.int64]) -> History:
    """The sub-history of the ops at positions ``rows`` (sorted, distinct), with partner
    positions renumbered (a partner not taken becomes -1) and the value and key tables
    cut down to what the rows use."""
    rows = np.asarray(rows, dtype=np.int64)
    taken = np.zeros(len(history) + 1, dtype=bool)  # slot ``len`` stands for "no partner"
    taken[rows] = True
    new_pos = np.cumsum(taken, dtype=np.int64) - 1
    pair = history.pair[rows]
    pair = np.where(pair >= 0, pair, len(history))
    pair = np.where(taken[pair], new_pos[pair], -1)

    value, error, key = history.value[rows], history.error[rows], history.key[rows]
    n_values = len(history.values)
    used_values = _used(np.concatenate([value, error]), n_values)
    used_keys = _used(key, len(history.keys))
    return History(
        time=history.time[rows],
        index=history.index[rows],
        type=history.type[rows],
        process=history.process[rows],
        f=history.f[rows],
        value=_renumber(value, used_values, n_values),
        key=_renumber(key, used_keys, len(history.keys)),
        node=history.node[rows],
        error=_renumber(error, used_values, n_values),
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
    groups = key_groups(history, units)
    group_of_key = np.full(len(history.keys) + 1, -1, dtype=np.int64)  # key -1: last slot
    for g, members in enumerate(groups):
        group_of_key[members] = g
    group_of = group_of_key[keys]
    out = []
    for g in range(len(groups)):
        invokes = inv[group_of == g]
        partners = history.pair[invokes]
        mask = np.zeros(len(history), dtype=bool)
        mask[invokes] = True
        mask[partners[partners >= 0]] = True
        out.append(take(history, np.flatnonzero(mask)))
    return out
