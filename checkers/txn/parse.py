"""Transactions from a :class:`~harness.history.History`, as columns.

A transaction is one client operation whose value is a list of micro-ops (mops)
``[f, key, value]``. Its vertex in the dependency graph is its completion (an invocation
that never completed counts as ``info``). Columns:

* per transaction ``t`` (ordered by completion position): ``type`` (OK/FAIL/INFO),
  ``process``, ``inv`` / ``cmp`` (history positions; ``cmp`` is past the end for an
  invocation that never completed), ``mop_lo[t]:mop_lo[t+1]`` its mops;
* per mop: ``m_txn``, ``m_f`` (:data:`WRITE` for ``append``/``w``, :data:`READ`),
  ``m_key`` (interned key id), ``m_val`` (the written value; for a list-append read the
  start of its elements in ``elems``, which reads that agree share; for a register read
  the value read), ``m_len`` (list-append read length), ``m_idx`` (position in the
  transaction's value, for explanations).

Values are kept as int64 when they all are integers; otherwise they are interned to ids
(``values`` maps ids back). ``NIL`` stands for a register read of nil. Reads of ``fail``
and ``info`` transactions are dropped (their results are unknown); their writes are kept.

A value that is not a list of ``[f, key, value]`` micro-ops of the model's kinds is input
that cannot be checked, not a finding: :class:`~harness.errors.HistoryError` names its
file and line.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, compress
from operator import itemgetter, length_hint
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from checkers.txn.elements import read_elements
from harness.errors import HistoryError
from harness.history import INFO, INVOKE, OK, History

if TYPE_CHECKING:
    from checkers.txn.parse_fast import Columns

__all__ = ["NIL", "READ", "WRITE", "TxnFormatError", "Txns", "parse"]

WRITE, READ = 0, 1
#: The encoded nil of a register read or write.
NIL = np.iinfo(np.int64).min

I64 = npt.NDArray[np.int64]


class TxnFormatError(ValueError):
    """Well-formed transactions that break an assumption of the model, such as one value
    written twice (the check answers unknown)."""


@dataclass(slots=True)
class Txns:
    """The transactions of a history, as columns (see the module docstring)."""

    history: History
    model: str
    type: npt.NDArray[np.int8]
    process: I64
    inv: I64
    cmp: I64
    mop_lo: I64
    m_txn: npt.NDArray[np.int32]
    m_f: npt.NDArray[np.int8]
    m_key: npt.NDArray[np.int32]
    m_val: I64
    m_len: npt.NDArray[np.int32]
    m_idx: npt.NDArray[np.int32]
    elems: I64
    keys: list[Any]
    values: list[Any] | None

    @property
    def n(self) -> int:
        """Number of transactions."""
        return len(self.type)

    def key_name(self, k: int) -> Any:
        """The key with id ``k``, as in the history."""
        return self.keys[k]

    def value_name(self, v: int) -> Any:
        """The value encoded as ``v``, as in the history."""
        if v == NIL:
            return None
        return v if self.values is None else self.values[v]

    def op_position(self, t: int) -> int:
        """History position of transaction ``t``'s completion (or invocation)."""
        c = int(self.cmp[t])
        return c if c < len(self.history) else int(self.inv[t])

    def value_of(self, t: int) -> list[Any]:
        """The mops of transaction ``t`` as recorded."""
        v = self.history.value_of(self.op_position(t))
        if not isinstance(v, list | tuple) and self.inv[t] >= 0:
            v = self.history.value_of(int(self.inv[t]))
        return list(v) if isinstance(v, list | tuple) else []


def _txn_ops(h: History) -> tuple[I64, I64, npt.NDArray[np.int8]]:
    """(invoke positions, completion positions, types) of the client transactions."""
    client = h.process >= 0
    code = h.f_code("txn")
    if code >= 0:
        client &= h.f == code
    comp = np.flatnonzero(client & (h.type != INVOKE))
    lone = np.flatnonzero(client & (h.type == INVOKE) & (h.pair < 0))
    inv = np.concatenate([h.pair[comp], lone]).astype(np.int64)
    cmp = np.concatenate([comp, len(h) + np.arange(len(lone))]).astype(np.int64)
    types = np.concatenate([h.type[comp], np.full(len(lone), INFO, np.int8)]).astype(np.int8)
    return inv, cmp, types


def _process(h: History, inv: I64, cmp: I64) -> I64:
    """The process of each transaction."""
    return h.process[np.where(cmp < len(h), cmp, inv)] if len(cmp) else np.empty(0, np.int64)


def parse(history: History, model: str, tick: Callable[[str], None] | None = None) -> Txns:
    """Columns of the transactions of ``history`` for ``model`` (list-append, rw-register).

    ``tick("parse")`` is called between chunks of the long passes (a budget check that
    may raise). Raises :class:`~harness.errors.HistoryError`, naming the file and line of
    the op, for a value that is not a list of ``[f, key, value]`` mops of the model's kinds
    (a nil write, and for list-append a read that is not a list, included).
    """
    tick = tick or _no_tick
    h = history
    inv, cmp, types = _txn_ops(h)
    nh = len(h)
    hv = h.value
    vidx = np.where(cmp < nh, hv[np.minimum(cmp, max(nh - 1, 0))], -1) if len(cmp) else cmp
    if model == "list-append" and h.mops is not None:
        from checkers.txn.parse_mops import list_append_mops  # (it imports this module)

        c = list_append_mops(h, vidx, inv, types, lambda: tick("parse"))
        if c is not None:
            return _list_append_txns(h, model, types, inv, cmp, c)
    txn_vals: list[Any] = []
    for lo in range(0, len(vidx), CHUNK):  # (a million ints at once would be 40 MB more)
        txn_vals += map(h.values.__getitem__, vidx[lo : lo + CHUNK].tolist())
    src = np.where(cmp < nh, cmp, inv)  # the op each transaction's value is taken from
    for t in np.flatnonzero(types != OK).tolist():  # reads unknown: the invocation will do
        v = txn_vals[t] if vidx[t] >= 0 else None
        if not isinstance(v, list | tuple) and inv[t] >= 0:
            v = h.values[hv[inv[t]]]
            src[t] = inv[t]
        txn_vals[t] = () if v is None else v

    def bad(t: int, why: str) -> HistoryError:
        return HistoryError(why, path=h.path, line=int(h.line[int(src[t])]))

    if model == "list-append":
        from checkers.txn.parse_fast import list_append_columns  # (it imports this module)

        c = list_append_columns(txn_vals, types, lambda: tick("parse"))
        if c is not None:
            return _list_append_txns(h, model, types, inv, cmp, c)
    if not set(map(type, txn_vals)) <= {list, tuple}:
        t = next(t for t, v in enumerate(txn_vals) if not isinstance(v, list | tuple))
        f = h.f_names[h.f[src[t]]]
        raise bad(t, f"a {model} transaction's value must be a list of micro-ops [f key value], "
                     f"got f {f!r} with value {_brief(txn_vals[t])}")  # fmt: skip
    lens = np.fromiter(map(len, txn_vals), dtype=np.int64, count=len(txn_vals))
    fs: list[Any] = []
    ks: list[Any] = []
    vs: list[Any] = []
    try:  # a mop that is not a sequence of 3 raises here (longer ones are cut)
        for lo in range(0, len(txn_vals), CHUNK):
            mops = list(chain.from_iterable(txn_vals[lo : lo + CHUNK]))
            if not set(map(type, mops)) <= {list, tuple}:  # "wxy" would read as [w x y]
                raise TypeError
            # one pass over the mops: f, key, value of each, flat (a mop is touched once)
            fkv = list(chain.from_iterable(map(_FKV, mops)))
            fs += fkv[0::3]
            ks += fkv[1::3]
            vs += fkv[2::3]
            tick("parse")
    except (TypeError, IndexError, KeyError):
        flat = list(chain.from_iterable(txn_vals))
        i = next(i for i, x in enumerate(flat) if not isinstance(x, list | tuple) or len(x) < 3)
        t = int(np.searchsorted(np.cumsum(lens), i, "right"))
        raise bad(t, f"micro-op {_brief(flat[i])} is not [f key value]") from None
    is_list = model == "list-append"
    wname = "append" if is_list else "w"
    fmap = {wname: WRITE, "r": READ}
    try:
        f_code = np.fromiter(map(fmap.__getitem__, fs), dtype=np.int8, count=len(fs))
    except (KeyError, TypeError):  # TypeError: a name that is a list or a map
        i = next(i for i, f in enumerate(fs) if not _hashable(f) or f not in fmap)
        t = int(np.searchsorted(np.cumsum(lens), i, "right"))
        kinds = "append and r" if is_list else "w and r"
        raise bad(t, f"unknown micro-op {_brief(fs[i])} for {model} (expected {kinds})") from None
    m_txn = np.repeat(np.arange(len(txn_vals), dtype=np.int32), lens)
    tick("parse")
    starts = np.cumsum(lens) - lens
    m_idx = (np.arange(len(fs), dtype=np.int64) - np.repeat(starts, lens)).astype(np.int32)
    # reads of transactions that did not commit are unknown: drop them
    keep = (f_code == WRITE) | (types[m_txn] == OK)
    if not bool(keep.all()):
        kl = keep.tolist()
        fs = list(compress(fs, kl))
        ks = list(compress(ks, kl))
        vs = list(compress(vs, kl))
        f_code, m_txn, m_idx = f_code[keep], m_txn[keep], m_idx[keep]
    tick("parse")
    try:
        kid_of = dict.fromkeys(ks)
    except TypeError:
        ks = [k if _hashable(k) else repr(k) for k in ks]
        kid_of = dict.fromkeys(ks)
    keys = list(kid_of)
    for i, k in enumerate(keys):
        kid_of[k] = i
    m_key = np.fromiter(map(kid_of.__getitem__, ks), dtype=np.int32, count=len(ks))
    tick("parse")
    mop_lo = np.zeros(len(txn_vals) + 1, dtype=np.int64)
    np.cumsum(np.bincount(m_txn, minlength=len(txn_vals)), out=mop_lo[1:])
    is_read = (f_code == READ).tolist()
    is_write = (f_code == WRITE).tolist()
    writes = list(compress(vs, is_write))
    tick("parse")
    if None in writes:
        i = [j for j, w in enumerate(is_write) if w][writes.index(None)]
        raise bad(int(m_txn[i]), f"micro-op {_brief([fs[i], ks[i], None])}: cannot write nil")
    reads = list(compress(vs, is_read))
    tick("parse")
    m_len = np.zeros(len(fs), dtype=np.int32)
    m_val = np.zeros(len(fs), dtype=np.int64)
    rmask = f_code == READ
    wmask = ~rmask
    values: list[Any] | None = None
    if is_list:
        read_types = set(map(type, reads))
        tick("parse")
        if not read_types <= {list, tuple, type(None)}:
            j = next(j for j, r in enumerate(reads) if not isinstance(r, list | tuple | None))
            i = int(np.flatnonzero(rmask)[j])
            raise bad(
                int(m_txn[i]), f"a list-append read must return a list, got {_brief(reads[j])}"
            )
        # nil reads count as empty (length_hint(None) == 0; filter drops them)
        rl = np.fromiter(map(length_hint, reads), dtype=np.int64, count=len(reads))
        tick("parse")
        m_len[rmask] = rl
        try:
            elems, m_val[rmask] = read_elements(reads, m_key[rmask], rl, lambda: tick("parse"))
            m_val[wmask] = np.fromiter(writes, dtype=np.int64, count=len(writes))
            _check_ints(writes)  # read elements: a stray type shows up as a garbage read
        except (TypeError, ValueError, OverflowError):
            m_val[rmask] = np.cumsum(rl) - rl
            values, ids = _intern(chain(writes, chain.from_iterable(filter(None, reads))))
            m_val[wmask] = ids[: len(writes)]
            elems = ids[len(writes) :]
    else:
        elems = np.empty(0, np.int64)
        try:
            rv = np.fromiter((_NIL_INT if r is None else r for r in reads), np.int64, len(reads))
            m_val[rmask] = rv
            m_val[wmask] = np.fromiter(writes, dtype=np.int64, count=len(writes))
            _check_ints(writes, reads)
            if _NIL_INT in writes or _NIL_INT in reads:
                raise ValueError("the int -2**63 would read as NIL")
        except (TypeError, ValueError, OverflowError):
            values, ids = _intern(chain(writes, reads))
            m_val[wmask] = ids[: len(writes)]
            m_val[rmask] = ids[len(writes) :]
    return Txns(
        history=h, model=model, type=types,
        process=_process(h, inv, cmp),
        inv=inv, cmp=cmp, mop_lo=mop_lo, m_txn=m_txn, m_f=f_code, m_key=m_key, m_val=m_val,
        m_len=m_len, m_idx=m_idx, elems=elems, keys=keys, values=values,
    )  # fmt: skip


def _list_append_txns(
    h: History, model: str, types: npt.NDArray[np.int8], inv: I64, cmp: I64, c: Columns
) -> Txns:
    """The transactions of ``h`` with the list-append columns ``c``."""
    return Txns(
        history=h, model=model, type=types, process=_process(h, inv, cmp), inv=inv, cmp=cmp,
        mop_lo=c.mop_lo, m_txn=c.m_txn, m_f=c.m_f, m_key=c.m_key, m_val=c.m_val,
        m_len=c.m_len, m_idx=c.m_idx, elems=c.elems, keys=c.keys, values=None,
    )  # fmt: skip


_NIL_INT = int(NIL)
#: Transactions converted between two budget checks.
CHUNK = 1 << 15
#: A mop's f, key and value (a shorter mop raises, a longer one is cut).
_FKV = itemgetter(0, 1, 2)
#: A value of the history, cut short for an error message.
_brief = reprlib.repr


def _no_tick(phase: str) -> None:
    """No budget to check."""


def _hashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def _check_ints(*cols: Any) -> None:
    """Raise ``TypeError`` unless every value is a plain int (not a bool or a float)."""
    for col in cols:
        if not set(map(type, col)) <= {int, type(None)}:
            raise TypeError("not all integers")


def _intern(vals: Any) -> tuple[list[Any], npt.NDArray[np.int64]]:
    """Dense ids for values that are not all integers (nil stays :data:`NIL`)."""
    table: list[Any] = []
    ids: dict[Any, int] = {}
    out: list[int] = []
    for x in vals:
        if x is None:
            out.append(_NIL_INT)
            continue
        key = (type(x).__name__, x) if _hashable(x) else ("repr", repr(x))
        i = ids.get(key)
        if i is None:
            i = ids[key] = len(table)
            table.append(x)
        out.append(i)
    return table, np.asarray(out, dtype=np.int64)
