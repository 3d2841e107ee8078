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

__all__ = ["Partition", "Prepared", "layout", "prepare", "zobrist"]

_INF = np.iinfo(np.int64).max
_SEED = 0x5EEDC1E3
_ZOB = np.random.default_rng(_SEED).integers(0, 2**64 - 1, size=(2, 1 << 12), dtype=np.uint64)
_EMPTY_TABLE = np.zeros((0, 1), dtype=np.int32)
#: Most cells (states x op classes) of a transition table: beyond, the step function is
#: used (building a larger table costs more than the search saves, and its memory grows
#: with the square of the distinct values written).
MAX_TABLE_CELLS = 1 << 16


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
    outcome is unknown (REQUIRED = 0, else their kind; their returns come last in
    ``order``). ``key`` is the key's value (``None`` for an unkeyed or unpartitioned
    history).
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


#: Partitions with fewer ops than this get no transition table (building it would cost
#: more than it saves).
TABLE_MIN_OPS = 32
#: Bytes that preparing takes per call of the history, at its peak (lowered columns,
#: partition layout, the sort that orders the entries): counted against the memory budget
#: before anything is allocated.
PREPARE_BYTES_PER_CALL = 192
#: Bytes per op that the search of a partition takes besides its cache (entry lists,
#: stack, bitset).
SEARCH_BYTES_PER_OP = 72


@dataclass(slots=True)
class Prepared:
    """Every partition of a history, laid out one after another (CSR).

    Partition ``p`` holds ops ``offsets[p]:offsets[p + 1]`` of the per-op columns
    (``calls``: call index; ``optional``, ``opc``, ``a``, ``b``, ``slot``) and entries
    ``2 * offsets[p]:2 * offsets[p + 1]`` of ``order`` (its entries in real-time order, as
    local ``op * 2 + is_return``). ``key_ids[p]`` is the partition's key id (-1: none).
    """

    calls: Calls
    low: Lowered
    members: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]
    key_ids: npt.NDArray[np.int64]
    optional: npt.NDArray[np.uint8]
    order: npt.NDArray[np.int32]
    opc: npt.NDArray[np.int64]
    a: npt.NDArray[np.int64]
    b: npt.NDArray[np.int64]
    slot: npt.NDArray[np.int64]
    init: npt.NDArray[np.int64]
    unpartitioned: bool

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def sizes(self) -> npt.NDArray[np.int64]:
        return np.diff(self.offsets)

    @property
    def nbytes(self) -> int:
        """Bytes held by the layout."""
        cols = (self.members, self.offsets, self.key_ids, self.optional, self.order,
                self.opc, self.a, self.b, self.slot)  # fmt: skip
        return sum(c.nbytes for c in cols)

    def key(self, p: int) -> Any:
        """The key of partition ``p`` (None: unkeyed, or all keys together)."""
        k = int(self.key_ids[p])
        return None if k < 0 or self.unpartitioned else self.calls.history.keys[k]

    def partition(self, p: int) -> Partition:
        """Partition ``p`` on its own, with a transition table when one is worth it."""
        lo, hi = int(self.offsets[p]), int(self.offsets[p + 1])
        n = hi - lo
        low = self.low
        opc, a, b = self.opc[lo:hi], self.a[lo:hi], self.b[lo:hi]
        opt = self.optional[lo:hi]
        table, cls = _EMPTY_TABLE, np.zeros(n, dtype=np.int32)
        if n >= TABLE_MIN_OPS and len(self.init) == 1 and low.finite(opc):
            table, cls = K.build_table(
                opc, a, b, int(low.init), low.aux, MAX_TABLE_STATES, MAX_TABLE_CELLS
            )
        if table.shape[0]:
            opt = np.where(opt >= DEAD, UNSEEN, opt).astype(np.uint8)  # states are ids there
        return Partition(
            key=self.key(p), calls=self.members[lo:hi], optional=opt,
            order=self.order[2 * lo : 2 * hi], opc=opc, a=a, b=b, slot=self.slot[lo:hi],
            cls=cls, aux=low.aux, init=self.init.copy(), table=table,
        )  # fmt: skip


#: Values of ``Partition.optional``: a required op; an optional op whose effect someone
#: saw (tried in time order, like any op); an optional op nobody is known to have seen
#: (tried only where the search reaches a deadline); an optional op whose effect nobody
#: can see (tried only there, and only where it could unblock a failed cas).
REQUIRED, SEEN, UNSEEN, DEAD, BLANK = K.REQUIRED, K.SEEN, K.UNSEEN, K.DEAD, K.BLANK


def _member(x: npt.NDArray[np.int64], sorted_: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Whether each of ``x`` is in the sorted array ``sorted_``."""
    if len(sorted_) == 0:
        return np.zeros(len(x), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_, x), len(sorted_) - 1)
    return np.asarray(sorted_[at] == x)


def optional_kinds(low: Lowered, keys: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    """REQUIRED, SEEN, UNSEEN, DEAD or BLANK for every call (``low.hint`` first if given).

    For histories of register ops only: an optional write (or cas of unknown outcome) of
    a value that a required read or cas of the same key expects, and that no required op
    writes, must have taken effect if that observation is to hold: it is SEEN, and the
    search tries it where it was called, where it most likely took effect. One writing a
    value that matters to no op is DEAD (no required op expects it, nor a cas of unknown
    outcome whose own written value matters): after it, only writes (which erase it),
    failed-cas observations and other optional ops are legal, so a witness that places it
    can drop it (and the casses of unknown outcome it enabled), unless it stands just
    before a failed cas ``[a b]`` that the state ``a`` would make illegal — the only place
    the kernel tries it. A DEAD write whose value no op expects and no failed cas names is
    BLANK: any two such writes have the same effect on every op that can follow them, so
    the kernel tries only the earliest called one of them there (and a DEAD write once
    every failed cas naming its value is placed, the kernel sees, stands in for them too).
    Other optional ops are UNSEEN.
    These kinds change the order in which the search tries candidates and skip only
    placements that no witness needs, never a verdict.
    """
    opt = low.optional & low.keep
    kind = np.where(opt, UNSEEN, REQUIRED).astype(np.uint8)
    if low.hint is not None:
        kind[opt] = low.hint[opt]
    opc, a, b = low.opc, low.a, low.b
    wr = opt & ((opc == K.OP_WRITE) | (opc == K.OP_CAS_MAYBE))
    register_ops = opc[low.keep]
    if not wr.any() or not ((register_ops >= K.OP_READ) & (register_ops <= K.OP_CAS_MAYBE)).all():
        return kind  # other ops (an append, say) could carry a written value further
    k = keys.astype(np.int64) + 1
    # A (key, value) pair as one integer where it fits; else by value alone (a guess).
    lo = int(min(a.min(), b.min()))
    span = int(max(a.max(), b.max())) - lo + 1
    if span <= 0 or span > (1 << 62) // (int(k.max()) + 1):
        k = np.zeros_like(k)
        span, lo = 0, 0

    def pair(v: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return k * span + (v - lo) if span else v

    pa, pb = pair(a), pair(b)
    keep, req = low.keep, low.keep & ~low.optional
    # Membership of the few optional ops' values in the many ops' values: one sort of
    # each large side, then binary search (np.isin would hash both sides every time).
    cons = np.sort(pa[req & ((opc == K.OP_READ) | (opc == K.OP_CAS))])
    made = np.sort(np.concatenate([pa[req & (opc == K.OP_WRITE)], pb[req & (opc == K.OP_CAS)]]))
    value = np.where(opc == K.OP_WRITE, pa, pb)[wr]
    at = np.flatnonzero(wr)
    in_cons = _member(value, cons)
    seen = in_cons & ~_member(value, made)
    # Values that matter: what a required op expects, and what a cas of unknown outcome
    # expects when its own written value matters (it may carry the one to the other).
    maybe = keep & low.optional & ((opc == K.OP_CAS) | (opc == K.OP_CAS_MAYBE))
    m_from, m_to = pa[maybe], pb[maybe]
    carries = _member(m_to, cons)
    while True:
        more = carries | _member(m_to, np.sort(m_from[carries]))
        if (more == carries).all():
            break
        carries = more
    dead = ~(in_cons | _member(value, np.sort(m_from[carries])))
    named = _member(value, np.sort(pa[keep & (opc == K.OP_CAS_NOT)]))
    expected = in_cons | _member(value, np.sort(m_from))
    blank = ~expected & ~named & (opc[wr] == K.OP_WRITE)
    kind[at[seen]] = SEEN
    kind[at[dead]] = DEAD
    kind[at[blank]] = BLANK
    return kind


def _blank_values(
    low: Lowered, members: npt.NDArray[np.int64], kind: npt.NDArray[np.uint8]
) -> npt.NDArray[np.int64]:
    """The ops' ``a`` arguments, with every BLANK write writing one value that no op
    reads, expects or writes otherwise: nobody can tell their values apart, so this makes
    the states after any two of them equal, and the search counts blank writes rather
    than telling them apart (see :func:`checkers.linear.kernel.search`)."""
    a = low.a[members]
    blank = kind == BLANK
    if blank.any():
        a = a.copy()
        a[blank] = min(int(low.a.min()), int(low.b.min()), int(low.init)) - 1
    return a


def prepare(calls: Calls, model: Model, *, partition: bool = True) -> Prepared:
    """Lower ``calls`` with ``model`` and lay them out by key (all in one partition when
    ``partition`` is false), with vectorised work only: a million ops or a million keys
    take about a second."""
    low = model.lower(calls)
    return layout(calls, model, low, partition=partition)


def layout(calls: Calls, model: Model, low: Lowered, *, partition: bool = True) -> Prepared:
    """The partitions of lowered calls (see :func:`prepare`)."""
    kept = np.flatnonzero(low.keep)
    keys = calls.key[kept].astype(np.int64)
    kind = optional_kinds(low, calls.key)
    single = len(kept) == 0 or keys.min() == keys.max()
    if single or not partition:
        if not single and not model.multi_key_state:
            raise ConfigError(
                f"model {model.name!r} cannot hold several keys in one state; "
                "drop --no-partition to check each key on its own"
            )
        members = kept
        offsets = np.array([0, len(kept)], dtype=np.int64)
        key_ids = keys[:1] if len(kept) else np.full(1, -1, dtype=np.int64)
        if single:
            slots = np.zeros(len(kept), dtype=np.int64)
        else:
            _, inv = np.unique(keys, return_inverse=True)
            slots = inv.astype(np.int64)
    else:
        by_key = np.argsort(keys, kind="stable")
        members = kept[by_key]
        sorted_keys = keys[by_key]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        offsets = np.r_[starts, len(kept)].astype(np.int64)
        key_ids = sorted_keys[starts]
        slots = np.zeros(len(kept), dtype=np.int64)
    opc = low.opc[members]
    width = low.width(opc)
    nslots = int(slots.max()) + 1 if len(slots) else 1
    init = np.full(width * nslots, low.init, dtype=np.int64)
    optional = kind[members]
    if nslots > 1:
        # Several keys in one state (--no-partition): a write that matters to no op of its
        # own key still changes its key, so two of them on different keys are not
        # interchangeable. The kernel's pruning of blank-like writes is by slot; but
        # its cache counts the BLANK writes placed, which cannot tell whose key they
        # wrote, so they are DEAD here: each is told apart, and written with its own value.
        optional = np.where(optional == BLANK, DEAD, optional)
    n, h = len(members), len(calls.history)
    # Entries sorted by (partition, time); the returns of optional ops at the end of time.
    part_of = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    t = np.empty(2 * n, dtype=np.int64)
    t[0::2] = calls.pos[members]
    t[1::2] = np.where(optional != REQUIRED, h, calls.ret[members])
    t[0::2] += part_of * (h + 1)
    t[1::2] += part_of * (h + 1)
    idx = np.argsort(t, kind="stable")
    del t
    order = (idx - 2 * np.repeat(offsets[:-1], 2 * np.diff(offsets))).astype(np.int32)
    del idx
    return Prepared(
        calls=calls, low=low, members=members, offsets=offsets, key_ids=key_ids,
        optional=optional, order=order, opc=opc, a=_blank_values(low, members, optional),
        b=low.b[members],
        slot=slots * width, init=init, unpartitioned=not single and not partition,
    )  # fmt: skip
