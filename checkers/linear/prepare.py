"""From call records to the kernel's arrays: partitioning, entry order, transition tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from checkers.linear import kernel as K
from checkers.linear.calls import Calls
from checkers.linear.models import MAX_TABLE_STATES, Lowered, Model
from harness.errors import ConfigError

__all__ = ["Partition", "prepare", "zobrist"]

_INF = np.iinfo(np.int64).max
_SEED = 0x5EEDC1E3
_ZOB = np.random.default_rng(_SEED).integers(0, 2**64 - 1, size=(2, 1 << 12), dtype=np.uint64)
_EMPTY_TABLE = np.zeros((0, 1), dtype=np.int32)


def zobrist(n: int, which: int = 0) -> npt.NDArray[np.uint64]:
    """``n`` fixed random 64-bit keys, one per op, from one of two independent families
    (the same on every run)."""
    global _ZOB
    if n > _ZOB.shape[1]:
        size = 1 << max(12, (n - 1).bit_length())
        rng = np.random.default_rng(_SEED)
        _ZOB = rng.integers(0, 2**64 - 1, size=(2, size), dtype=np.uint64)
    return _ZOB[which, :n]


@dataclass(slots=True)
class Partition:
    """One independently checkable part of a history (one key, usually).

    ``calls`` maps the partition's op ids to call indices; ``optional`` marks ops whose
    outcome is unknown (their returns come last in ``order``). ``key`` is the key's value
    (``None`` for an unkeyed or unpartitioned history).
    """

    key: Any
    calls: npt.NDArray[np.int64]
    optional: npt.NDArray[np.uint8]
    order: npt.NDArray[np.int32]
    opc: npt.NDArray[np.int64]
    a: npt.NDArray[np.int64]
    b: npt.NDArray[np.int64]
    slot: npt.NDArray[np.int64]
    cls: npt.NDArray[np.int32]
    aux: npt.NDArray[np.int64]
    init: npt.NDArray[np.int64]
    table: npt.NDArray[np.int32]

    @property
    def size(self) -> int:
        return len(self.calls)

    @property
    def use_table(self) -> bool:
        return self.table.shape[0] > 0


def _partition(
    calls: Calls,
    low: Lowered,
    key: Any,
    members: npt.NDArray[np.int64],
    slots: npt.NDArray[np.int64],
) -> Partition:
    n = len(members)
    opc = low.opc[members]
    opt = low.optional[members].astype(np.uint8)
    width = low.width(opc)
    nslots = int(slots.max()) + 1 if n else 1
    t = np.empty(2 * n, dtype=np.int64)
    t[0::2] = calls.pos[members]
    t[1::2] = np.where(opt, _INF, calls.ret[members])
    a, b = low.a[members], low.b[members]
    init = np.full(width * nslots, low.init, dtype=np.int64)
    table, cls = _EMPTY_TABLE, np.zeros(n, dtype=np.int32)
    if n and width == 1 and nslots == 1 and low.finite(opc):
        table, cls = K.build_table(opc, a, b, int(low.init), low.aux, MAX_TABLE_STATES)
    return Partition(
        key=key,
        calls=members,
        optional=opt,
        order=np.argsort(t, kind="stable").astype(np.int32),
        opc=opc,
        a=a,
        b=b,
        slot=slots * width,
        cls=cls,
        aux=low.aux,
        init=init,
        table=table,
    )


def prepare(calls: Calls, model: Model, *, partition: bool = True) -> list[Partition]:
    """Lower ``calls`` with ``model``, split them by key (unless ``partition`` is false)."""
    low = model.lower(calls)
    kept = np.flatnonzero(low.keep)
    keys = calls.key[kept]
    key_table = calls.history.keys
    if len(kept) == 0 or keys.min() == keys.max():
        key = None if len(kept) == 0 or keys[0] < 0 else key_table[keys[0]]
        return [_partition(calls, low, key, kept, np.zeros(len(kept), dtype=np.int64))]
    if partition:
        by_key = np.argsort(keys, kind="stable")
        sorted_keys = keys[by_key]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(kept)]
        parts = []
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            members = kept[by_key[s:e]]
            k = int(sorted_keys[s])
            key = None if k < 0 else key_table[k]
            parts.append(_partition(calls, low, key, members, np.zeros(e - s, dtype=np.int64)))
        return parts
    if not model.multi_key_state:
        raise ConfigError(
            f"model {model.name!r} cannot hold several keys in one state; "
            "drop --no-partition to check each key on its own"
        )
    _, slots = np.unique(keys, return_inverse=True)
    return [_partition(calls, low, None, kept, slots.astype(np.int64))]
