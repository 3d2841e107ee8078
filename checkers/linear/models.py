"""Sequential specifications ("models") that linearizability is checked against.

Each model has two faces that are kept property-tested against each other:

* a **plain-Python reference**: ``ref_init()`` and ``ref_step(state, f, status, vin,
  vout) -> (legal, next_state)`` on ordinary Python values, written to be obviously right;
* a **compiled form**: ``lower(calls)`` turns every call into an integer op for the Numba
  kernel (:mod:`checkers.linear.kernel`) or drops it when it constrains nothing. Lowering
  works per *distinct value* and then with numpy over all calls, so it stays fast on
  million-op histories.

What an outcome means (shared by both faces):

* ``ok`` calls must take effect between their invocation and completion;
* ``info`` calls (and calls that never completed) may take effect at any time after their
  invocation, or never; their output is unknown;
* ``fail`` calls did not happen and are dropped, except in the ``etcd`` model, where a
  failed cas is an observation that the register did not hold ``from`` (Porcupine's
  semantics for its etcd test data).

The models:

``register``      read / write of one value. A read of nil matches any state (Knossos).
``cas-register``  read / write / cas [from to]; Knossos's semantics.
``multi-register`` Knossos's multi-register: one op ``txn`` whose value is a list of
                  ``[read k v]`` / ``[write k v]`` (also ``r`` / ``w``), applied atomically
                  in order; a read of nil matches anything; a read after a write of the
                  same key in the op sees that write.
``etcd``          Porcupine's etcd cas-register: initial value nil, a nil read means the key
                  is absent, a failed cas observes ``state != from``.
``kv``            get / put / append on string values per key, initially "" (Porcupine kv).
``mutex``         acquire / release of one lock.
``set``           add x / read → the whole set (Knossos set).
``linearizable-queue`` FIFO queue: enqueue x / dequeue → x (nil: the queue was empty).
                  (Not ``queue``: that name is Jepsen's queue checker, in
                  :mod:`checkers.collections`, which also uses this model on small
                  histories.)

The register models and multi-register take an initial value (:func:`with_initial_value`,
``--initial-value``): Knossos's ``(cas-register 0)`` and ``(multi-register {:x 0 :y 0})``.
Otherwise every register starts as nil.

Strings (kv) are kept as hashes in the kernel: the big-endian integer of ``0x01 + bytes``
modulo two 31-bit primes. A collision could only make the search accept wrongly, so every
valid kv verdict is confirmed by replaying the witness with the reference model.
"""

from __future__ import annotations

import json
import operator
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from checkers.linear import kernel as K
from checkers.linear.calls import FAIL, INFO, OK, Calls
from harness.errors import ConfigError
from harness.history import INVOKE, History

__all__ = ["MODELS", "Lowered", "Model", "get_model", "guess_model", "with_initial_value"]

#: Most reachable states for which a transition table is built (else: the step function).
MAX_TABLE_STATES = 4096

I64 = npt.NDArray[np.int64]


def freeze(v: Any) -> Any:
    """A hashable stand-in for ``v`` (equal values, equal stand-ins)."""
    try:
        hash(v)
        return (type(v).__name__, v)
    except TypeError:
        return json.dumps(v, sort_keys=True, default=str)


def _str_hash(s: str, with_marker: bool = True) -> int:
    """Pack (x mod P1, x mod P2) where x is the big-endian integer of [0x01] + bytes(s)."""
    raw = s.encode()
    x = int.from_bytes(b"\x01" + raw if with_marker else raw, "big")
    return ((x % K.P1) << 31) | (x % K.P2)


def _str_pow(s: str) -> int:
    n = len(s.encode())
    return (pow(256, n, K.P1) << 31) | pow(256, n, K.P2)


@dataclass(slots=True)
class Lowered:
    """The integer form of all calls of a history (before partitioning).

    ``keep`` says which calls enter the search; for those, ``opc``/``a``/``b`` are the
    kernel op and ``optional`` marks unknown outcomes. ``width(opc)`` gives the state width
    of a partition with those ops, ``init`` the value of each state word initially,
    ``finite(opc)`` whether a transition table is worth trying.
    """

    keep: npt.NDArray[np.bool_]
    opc: I64
    a: I64
    b: I64
    optional: npt.NDArray[np.bool_]
    aux: I64
    init: int
    #: For optional calls, what is known of who can see their effect (prepare.SEEN,
    #: UNSEEN or DEAD: the order the search tries them in); None: nothing known.
    hint: npt.NDArray[np.uint8] | None = None
    width: Callable[[I64], int] = field(default=lambda opc: 1)
    finite: Callable[[I64], bool] = field(default=lambda opc: True)


_NO_AUX = np.zeros((1, 1), dtype=np.int64)


@dataclass(frozen=True, slots=True, kw_only=True)
class Model:
    """A sequential specification: see the module docstring."""

    name: str
    summary: str
    fs: tuple[str, ...]
    lower: Callable[[Calls], Lowered]
    ref_init: Callable[[], Any]
    ref_step: Callable[[Any, str, int, Any, Any], tuple[bool, Any]]
    keeps_failures: bool = False
    multi_key_state: bool = True
    describe_state: Callable[[Any], Any] = field(default=lambda s: s)
    #: ``starting_at(value)``: this model with another initial state; None if it has none.
    starting_at: Callable[[Any], Model] | None = None
    #: ``ref_replay(state, steps)``: the state after ``steps`` (``ref_step``'s arguments
    #: but the state, each step legal) without a copy a step, for a model whose states
    #: grow with the history; None: ``ref_step`` in turn.
    ref_replay: Callable[[Any, Sequence[tuple[str, int, Any, Any]]], Any] | None = None


class _Ops:
    """Vectorised views of the calls for one model: which op each call is, and values."""

    def __init__(self, model: str, fs: tuple[str, ...], calls: Calls) -> None:
        h = calls.history
        local = np.full(len(h.f_names), -1, dtype=np.int64)
        for code, name in enumerate(h.f_names):
            if name in fs:
                local[code] = fs.index(name)
        self.f = local[calls.f]
        if len(self.f) and self.f.min() < 0:
            first = int(np.flatnonzero(self.f < 0)[0])
            bad = h.f_names[int(calls.f[first])]
            raise ConfigError(
                f"{_where(calls, first)}: model {model!r} has no operation {bad!r}; it knows "
                f"{', '.join(fs)}. Pick another model with --model."
            )
        self.status = calls.status
        self.info = self.status == INFO
        self.values = h.values
        # Value id -1 ("no completion") reads as the last slot of per-value arrays: None.
        self.vin = calls.vin
        self.vout = calls.vout
        self.n = len(calls)

    def is_(self, name_index: int) -> npt.NDArray[np.bool_]:
        return self.f == name_index

    def by_outcome(self, table: list[list[int]]) -> I64:
        """``table[f][status]`` for every call (status: 1 ok, 2 fail, 3 info)."""
        return np.asarray(table, dtype=np.int64)[self.f, self.status]

    def per_value(self, fn: Callable[[Any], int]) -> I64:
        """``fn`` of every value of the history, plus ``fn(None)`` last (for id -1)."""
        out = np.empty(len(self.values) + 1, dtype=np.int64)
        for v, value in enumerate(self.values):
            out[v] = fn(value)
        out[-1] = fn(None)
        return out


class _Scalars:
    """Dense ids for register values: nil is 0, others from 1."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}

    def __call__(self, v: Any) -> int:
        if v is None:
            return 0
        k = v if type(v) is int or type(v) is str else freeze(v)
        i = self.ids.get(k)
        if i is None:
            i = self.ids[k] = len(self.ids) + 1
        return i


def _pair_of(v: Any) -> tuple[Any, Any] | None:
    if isinstance(v, list | tuple) and len(v) == 2:
        return v[0], v[1]
    return None


def _register_values(values: list[Any], sid: _Scalars) -> tuple[I64, I64, I64]:
    """For every value of the history, plus a last slot for "no value": its id as a single
    value (0 for a pair ``[from, to]``), and the ids of the pair's halves (else 0)."""
    ids = sid.ids
    get = ids.get
    n = len(values) + 1
    scalar, frm, to = [0] * n, [0] * n, [0] * n
    for v, value in enumerate(values):
        c = value.__class__
        if c is int or c is str:  # the usual case, inlined: sid(value)
            i = get(value)
            if i is None:
                i = ids[value] = len(ids) + 1
            scalar[v] = i
        elif (c is list or c is tuple) and len(value) == 2:
            x, y = value
            if x.__class__ is int or x.__class__ is str:  # sid(x), inlined
                i = get(x)
                if i is None:
                    i = ids[x] = len(ids) + 1
                frm[v] = i
            else:
                frm[v] = sid(x)
            if y.__class__ is int or y.__class__ is str:
                i = get(y)
                if i is None:
                    i = ids[y] = len(ids) + 1
                to[v] = i
            else:
                to[v] = sid(y)
        else:
            scalar[v] = sid(value)
    return (np.array(scalar, dtype=np.int64), np.array(frm, dtype=np.int64),
            np.array(to, dtype=np.int64))  # fmt: skip


_X = -1  # "no op": the call is dropped

# Kernel op per (f, status) for the register models; status columns: -, ok, fail, info.
_REGISTER_OPS = {
    "register": [[_X, K.OP_READ, _X, _X], [_X, K.OP_WRITE, _X, K.OP_WRITE]],
    "cas-register": [
        [_X, K.OP_READ, _X, _X],
        [_X, K.OP_WRITE, _X, K.OP_WRITE],
        [_X, K.OP_CAS, _X, K.OP_CAS],
    ],
    "etcd": [
        [_X, K.OP_READ, _X, _X],
        [_X, K.OP_WRITE, _X, K.OP_WRITE],
        [_X, K.OP_CAS, K.OP_CAS_NOT, K.OP_CAS_MAYBE],
    ],
}


def _lower_register(cas: bool, etcd: bool, initial: Any = None) -> Callable[[Calls], Lowered]:
    name = "etcd" if etcd else ("cas-register" if cas else "register")
    fs = ("read", "write", "cas") if cas else ("read", "write")
    ops = _REGISTER_OPS[name]

    def lower(calls: Calls) -> Lowered:
        o = _Ops(name, fs, calls)
        sid = _Scalars()
        scalar, frm, to = _register_values(o.values, sid)
        opc = o.by_outcome(ops)
        read, is_cas = o.is_(0), o.is_(2)
        if cas:
            bad = is_cas & (frm[o.vin] == 0) & (to[o.vin] == 0)
            if bad.any():
                v = o.values[o.vin[np.flatnonzero(bad)[0]]]
                if _pair_of(v) is None:
                    raise ConfigError(
                        f"{_where(calls, int(np.flatnonzero(bad)[0]))}: a cas value must be "
                        f"[from, to], got {v!r}"
                    )
        a = np.where(read, scalar[o.vout], np.where(is_cas, frm[o.vin], scalar[o.vin]))
        b = np.where(is_cas, to[o.vin], 0)
        keep = opc != _X
        if not etcd:
            keep &= ~read | (a != 0)  # Knossos: a nil read matches any state
        init = sid(initial)
        return Lowered(keep=keep, opc=opc, a=a, b=b, optional=o.info, aux=_NO_AUX, init=init)

    return lower


def _register_ref(cas: bool, etcd: bool) -> Callable[[Any, str, int, Any, Any], tuple[bool, Any]]:
    def ref_step(state: Any, f: str, status: int, vin: Any, vout: Any) -> tuple[bool, Any]:
        if f == "read":
            if status != OK or (vout is None and not etcd):
                return True, state
            return state == vout, state
        if f == "write":
            return (True, state) if status == FAIL else (True, vin)
        frm, to = vin
        if status == FAIL:  # only the etcd model keeps failed ops: an observation
            return state != frm, state
        if status == INFO and etcd:
            return True, (to if state == frm else state)
        return (True, to) if state == frm else (False, state)

    return ref_step


def _register_model(*, cas: bool, etcd: bool, summary: str, initial: Any = None) -> Model:
    if initial is not None and not _is_scalar(initial):
        raise ConfigError(
            f"the initial value of a register must be a single value, got {initial!r}"
        )
    return Model(
        name="etcd" if etcd else ("cas-register" if cas else "register"),
        summary=summary,
        fs=("read", "write", "cas") if cas else ("read", "write"),
        lower=_lower_register(cas, etcd, initial),
        ref_init=lambda: initial,
        ref_step=_register_ref(cas, etcd),
        keeps_failures=etcd,
        starting_at=lambda v: _register_model(cas=cas, etcd=etcd, summary=summary, initial=v),
    )


def _is_scalar(v: Any) -> bool:
    return v is None or type(v) in (int, str, float, bool)


def _distinct(ids: npt.NDArray[Any], n: int) -> list[int]:
    """The distinct entries of ``ids``, ascending, as ``np.unique`` gives them; when they
    all lie in ``[0, n)``, found by marking them (no sort of the whole array)."""
    if len(ids) and int(ids.min()) >= 0 and int(ids.max()) < n:
        seen = np.zeros(n, dtype=bool)
        seen[ids] = True
        return np.flatnonzero(seen).tolist()
    return np.unique(ids).tolist()


#: The classes of the values :func:`_is_scalar` accepts.
_SCALAR_CLASSES = frozenset({int, str, float, bool, type(None)})
_class = operator.attrgetter("__class__")


def _where(calls: Calls, i: int, *, completion: bool = False) -> str:
    """``FILE:LINE`` (or ``op #INDEX``) of call ``i``'s invocation (or its completion, if
    it has one), for error messages."""
    h = calls.history
    pos = int(calls.pos[i])
    if completion and int(calls.ret[i]) >= 0:
        pos = int(calls.ret[i])
    line = int(h.line[pos])
    return f"{h.path}:{line}" if h.path else f"op #{int(h.index[pos])} (line {line})"


# ---------------------------------------------------------------- multi-register

_MULTI_READ = {"read": True, "r": True, "write": False, "w": False}


def _multi_mops(value: Any) -> list[tuple[bool, Any, Any]] | None:
    """``(is_read, key, value)`` for each micro-op of a multi-register txn, or None."""
    if not isinstance(value, list | tuple):
        return None
    out = []
    for mop in value:
        if not isinstance(mop, list | tuple) or len(mop) != 3:
            return None
        f = mop[0]
        if type(f) is not str or f not in _MULTI_READ:
            return None
        out.append((_MULTI_READ[f], mop[1], mop[2]))
    return out


_Mops = list[tuple[bool, Any, Any]]
_Pairs = list[tuple[int, int]]


def _multi_effect(mops: _Mops, reads: bool) -> tuple[dict[Any, Any], dict[Any, Any], bool]:
    """What a txn needs and does: (reads of the state before it, its final writes,
    possible). A nil read needs nothing; a read after a write of its key in the same txn
    checks that write (possible is False if it differs). ``reads=False`` ignores reads
    (an op whose outcome is unknown)."""
    need: dict[Any, Any] = {}
    wrote: dict[Any, Any] = {}
    possible = True
    for is_read, k, v in mops:
        fk = freeze(k)
        if not is_read:
            wrote[fk] = (k, v)
        elif reads and v is not None:
            if fk in wrote:
                possible &= freeze(wrote[fk][1]) == freeze(v)
            elif fk in need:
                possible &= freeze(need[fk][1]) == freeze(v)
            else:
                need[fk] = (k, v)
    return need, wrote, possible


def _multi_value(status: int, vin: Any, vout: Any) -> Any:
    """The txn an ok op performed (its completion's value, if it has one) or the one an
    op of unknown outcome asked for."""
    return vout if status == OK and isinstance(vout, list | tuple) else vin


def _lower_multi(initial: dict[Any, Any]) -> Callable[[Calls], Lowered]:
    def lower(calls: Calls) -> Lowered:
        o = _Ops("multi-register", ("txn",), calls)
        vals = o.values
        keys: dict[Any, int] = {}  # frozen key -> key number
        ids: list[dict[Any, int]] = []  # per key: frozen value -> id (nil is 0)

        def key_no(k: Any) -> int:
            fk = freeze(k)
            n = keys.get(fk)
            if n is None:
                n = keys[fk] = len(keys)
                ids.append({})
            return n

        def value_id(n: int, v: Any) -> int:
            if v is None:
                return 0
            table = ids[n]
            return table.setdefault(freeze(v), len(table) + 1)

        effects: dict[tuple[int, bool], tuple[_Pairs, _Pairs, bool]] = {}
        opc = np.full(o.n, _X, dtype=np.int64)
        row_key = np.zeros(o.n, dtype=np.int64)
        rows: dict[tuple[int, bool], int] = {}
        status = o.status.tolist()
        vin = o.vin.tolist()
        vout = o.vout.tolist()
        for i in range(o.n):
            st = status[i]
            if st == FAIL:
                continue
            ok = st == OK
            out = vout[i]
            vid = out if ok and out >= 0 and isinstance(vals[out], list | tuple) else vin[i]
            ek = (vid, ok)
            if ek not in effects:
                mops = _multi_mops(vals[vid])
                if mops is None:
                    raise ConfigError(
                        f"{_where(calls, i)}: a multi-register txn must be a list of "
                        f"[read key value] / [write key value], got {vals[vid]!r}"
                    )
                need, wrote, possible = _multi_effect(mops, ok)
                effects[ek] = (
                    [(key_no(k), value_id(key_no(k), v)) for k, v in need.values()],
                    [(key_no(k), value_id(key_no(k), v)) for k, v in wrote.values()],
                    possible,
                )
                rows[ek] = len(rows)
            opc[i] = K.OP_MULTI
            row_key[i] = rows[ek]
        init_ids = [(key_no(k), value_id(key_no(k), v)) for k, v in initial.items()]
        bits = [max(1, len(t).bit_length()) for t in ids]
        offsets = np.concatenate([[0], np.cumsum(bits)]).astype(np.int64).tolist()
        if offsets[-1] > 63:
            raise ConfigError(
                f"multi-register: {len(keys)} keys with these many distinct values need "
                f"{offsets[-1]} bits of state; at most 63 are supported (check fewer keys "
                "or values per history)"
            )

        def pack(pairs: _Pairs) -> tuple[int, int]:
            mask = val = 0
            for n, v in pairs:
                mask |= ((1 << bits[n]) - 1) << offsets[n]
                val |= v << offsets[n]
            return mask, val

        aux = np.zeros((max(1, len(rows)), 4), dtype=np.int64)
        useless = np.zeros(max(1, len(rows)), dtype=bool)
        for ek, r in rows.items():
            need_ids, write_ids, possible = effects[ek]
            rmask, rval = pack(need_ids)
            wmask, wval = pack(write_ids)
            if not possible:
                rmask, rval = 0, 1  # (s & 0) == 1 never holds: illegal in every state
            aux[r] = (rmask, rval, wmask, wval)
            useless[r] = possible and rmask == 0 and wmask == 0
        keep = (opc != _X) & ~useless[row_key]
        zero = np.zeros(o.n, dtype=np.int64)
        return Lowered(
            keep=keep, opc=opc, a=row_key, b=zero, optional=o.info, aux=aux,
            init=pack(init_ids)[1],
        )  # fmt: skip

    return lower


def _multi_step(state: Any, f: str, status: int, vin: Any, vout: Any) -> tuple[bool, Any]:
    """Knossos's multi-register step on a state of sorted ``(frozen key, frozen value)``
    pairs (hashable, so the reference search can memoise it)."""
    mops = _multi_mops(_multi_value(status, vin, vout)) or []
    nxt = dict(state)
    for is_read, k, v in mops:
        fk = freeze(k)
        if not is_read:
            nxt[fk] = freeze(v)
        elif status == OK and v is not None and nxt.get(fk) != freeze(v):
            return False, state
    return True, tuple(sorted(nxt.items(), key=repr))


def _multi_model(initial: Any = None) -> Model:
    if initial is None:
        initial = {}
    if not isinstance(initial, dict):
        raise ConfigError(
            "the initial value of a multi-register must be a map of keys to values, "
            f'e.g. {{"x": 0, "y": 0}} or {{:x 0 :y 0}}; got {initial!r}'
        )
    start = tuple(
        sorted(((freeze(k), freeze(v)) for k, v in initial.items() if v is not None), key=repr)
    )
    return Model(
        name="multi-register",
        summary="Knossos's multi-register: txns of reads and writes of several registers",
        fs=("txn",),
        lower=_lower_multi(initial),
        ref_init=lambda: start,
        ref_step=_multi_step,
        multi_key_state=False,
        describe_state=lambda s: {str(_plain(k)): _plain(v) for k, v in s},
        starting_at=_multi_model,
    )


# ---------------------------------------------------------------- mutex


def _mutex_lower(calls: Calls) -> Lowered:
    o = _Ops("mutex", ("acquire", "release"), calls)
    opc = o.by_outcome([[_X, K.OP_ACQUIRE, _X, K.OP_ACQUIRE], [_X, K.OP_RELEASE, _X, K.OP_RELEASE]])
    zero = np.zeros(o.n, dtype=np.int64)
    return Lowered(keep=opc != _X, opc=opc, a=zero, b=zero, optional=o.info, aux=_NO_AUX, init=0)


def _mutex_step(state: Any, f: str, status: int, vin: Any, vout: Any) -> tuple[bool, Any]:
    if f == "acquire":
        return (not state), True
    return bool(state), False


# ---------------------------------------------------------------- kv


def _as_str(v: Any) -> str:
    return "" if v is None else str(v)


def _kv_lower(calls: Calls) -> Lowered:
    o = _Ops("kv", ("get", "put", "append"), calls)
    get, app = o.is_(0), o.is_(2)
    opc = o.by_outcome(
        [
            [_X, K.OP_READ, _X, _X],
            [_X, K.OP_WRITE, _X, K.OP_WRITE],
            [_X, K.OP_APPEND, _X, K.OP_APPEND],
        ]
    )
    keep = opc != _X
    marked = o.per_value(lambda v: _str_hash(_as_str(v)))
    a = np.where(get, marked[o.vout], marked[o.vin])
    b = np.zeros(o.n, dtype=np.int64)
    hint = None
    aux = _NO_AUX
    if app.any():
        raw = o.per_value(lambda v: _str_hash(_as_str(v), with_marker=False))
        a[app] = raw[o.vin[app]]
        b[app] = o.per_value(lambda v: _str_pow(_as_str(v)))[o.vin[app]]
        hint = _append_hints(o, calls, keep & app & o.info, keep & get & (o.status == OK))
        aux = _prefix_gates(o, keep & get & (o.status == OK), b)
    return Lowered(
        keep=keep, opc=opc, a=a, b=b, optional=o.info, aux=aux, init=_str_hash(""),
        hint=hint, finite=lambda opc: not bool(np.any(opc == K.OP_APPEND)),
    )  # fmt: skip


#: Most bytes of get results whose prefixes :func:`_prefix_gates` hashes; beyond, none.
_MAX_GATE_BYTES = 1 << 22


def _prefix_gates(o: _Ops, gets: npt.NDArray[np.bool_], b: I64) -> npt.NDArray[np.int64]:
    """The hashes of every prefix of every ok get's string (sorted, per distinct string,
    in one row), and in ``b`` of each such get where its own lie: ``offset << 24 |
    count``. The kernel uses them to prune: where no put can come before a pending get
    any more, only appends can, so the state must be a prefix of what the get returned
    (see ``kernel.search``). Without gets, or with too many bytes, no gates (``b`` 0)."""
    idx = np.flatnonzero(gets)
    texts = {v: _as_str(o.values[v]).encode() for v in set(o.vout[idx].tolist())}
    total = sum(len(t) + 1 for t in texts.values())
    if not texts or total > _MAX_GATE_BYTES or max(map(len, texts.values())) >= (1 << 24) - 1:
        return _NO_AUX
    out = np.empty(total, dtype=np.int64)
    where: dict[int, int] = {}
    at = 0
    for v, raw in texts.items():
        x1 = x2 = 1  # the marker byte, as _str_hash
        hashes = [(x1 << 31) | x2]
        for byte in raw:
            x1 = (x1 * 256 + byte) % K.P1
            x2 = (x2 * 256 + byte) % K.P2
            hashes.append((x1 << 31) | x2)
        hashes.sort()
        out[at : at + len(hashes)] = hashes
        where[v] = (at << 24) | len(hashes)
        at += len(hashes)
    b[idx] = [where[v] for v in o.vout[idx].tolist()]
    return out.reshape(1, -1)


#: Most (string, read) pairs compared by :func:`_append_hints`; beyond, no hints.
_MAX_HINT_PAIRS = 1 << 20


def _append_hints(
    o: _Ops, calls: Calls, appends: npt.NDArray[np.bool_], gets: npt.NDArray[np.bool_]
) -> npt.NDArray[np.uint8] | None:
    """SEEN for an append of unknown outcome that some ok get of its key may have
    observed, DEAD when none can have (then it never needs to be placed: its effect would
    break every later get until a put erases it).

    A get observed append ``x`` only if its string splits into pieces the key's ops could
    have written -- a put's string or nothing first, then appended strings -- with ``x``
    one of them (:func:`_pieces_seen`). Merely containing ``x`` is not enough: with
    strings such as ``"1."`` and ``"21."``, most unknown appends would look seen, and each
    one looked seen is tried at every point of the search."""
    idx = np.flatnonzero(appends)
    if not len(idx):
        return None
    outs: dict[int, set[str]] = {}
    for k, v in zip(calls.key[gets].tolist(), o.vout[gets].tolist(), strict=True):
        outs.setdefault(k, set()).add(_as_str(o.values[v]))
    writes = o.status != FAIL
    firsts: dict[int, set[str]] = {}
    pieces: dict[int, set[str]] = {}
    for f, k, v in zip(o.f[writes].tolist(), calls.key[writes].tolist(),
                       o.vin[writes].tolist(), strict=True):  # fmt: skip
        if f == 2:
            pieces.setdefault(k, set()).add(_as_str(o.values[v]))
        elif f == 1:
            firsts.setdefault(k, set()).add(_as_str(o.values[v]))
    pairs = sum(len(outs.get(k, ())) * len(pieces.get(k, ())) for k in outs)
    if pairs > _MAX_HINT_PAIRS:
        return None
    seen = {
        k: _pieces_seen(out, firsts.get(k, set()), pieces.get(k, set())) for k, out in outs.items()
    }
    hint = np.full(o.n, K.UNSEEN, dtype=np.uint8)
    for i, k, v in zip(idx.tolist(), calls.key[idx].tolist(), o.vin[idx].tolist(), strict=True):
        hint[i] = K.SEEN if _as_str(o.values[v]) in seen.get(k, ()) else K.DEAD
    return hint


def _pieces_seen(outs: set[str], firsts: set[str], pieces: set[str]) -> set[str]:
    """The appended strings (of ``pieces``) that some string of ``outs`` can be made of:
    the string splits into ``""`` or one of ``firsts`` (put strings), then pieces, and
    the piece is one of them. A superset of what the gets really saw (pieces may repeat)."""
    found: set[str] = set()
    pieces.discard("")
    for out in outs:
        n = len(out)
        # Every occurrence of every piece: an edge from its start to its end.
        edges: list[tuple[int, int, str]] = []
        for w in pieces:
            at = out.find(w)
            while at >= 0:
                edges.append((at, at + len(w), w))
                at = out.find(w, at + 1)
        fwd = [False] * (n + 1)
        fwd[0] = True
        for w in firsts:
            if out.startswith(w):
                fwd[len(w)] = True
        edges.sort()
        for a, b, _ in edges:  # starts ascend, so every edge into a is seen first
            if fwd[a]:
                fwd[b] = True
        bwd = [False] * (n + 1)
        bwd[n] = True
        for a, b, _ in reversed(edges):  # ends of later starts are settled first
            if bwd[b]:
                bwd[a] = True
        found.update(w for a, b, w in edges if fwd[a] and bwd[b])
    return found


def _kv_replay(state: Any, steps: Sequence[tuple[str, int, Any, Any]]) -> Any:
    pieces = [state]  # (joined once: a string grown by one append a step is quadratic)
    for f, _, vin, _ in steps:
        if f == "put":
            pieces = [_as_str(vin)]
        elif f == "append":
            pieces.append(_as_str(vin))
    return "".join(pieces)


def _kv_step(state: Any, f: str, status: int, vin: Any, vout: Any) -> tuple[bool, Any]:
    if f == "get":
        return (status != OK or state == _as_str(vout)), state
    v = _as_str(vin)
    return True, (v if f == "put" else state + v)


# ---------------------------------------------------------------- set


def _elements(v: Any) -> list[Any]:
    if v is None:
        return []
    if isinstance(v, list | tuple | set | frozenset):
        return list(v)
    raise ConfigError(f"a set read must return a collection, got {v!r}")


class _ElementIds:
    """Ids ``0..count-1`` of a set history's elements, equal for equal :func:`freeze`
    stand-ins: plain ints (the usual elements) through a sorted table of ``ints`` (every
    int of the adds and of the reads of ints only), many at a time; any other value through
    a dict."""

    def __init__(self, ints: I64) -> None:
        table = np.sort(ints)  # (np.unique hashes: 7 s for 8M ints, against 0.6 s here)
        self.table = (
            table[np.concatenate(([True], table[1:] != table[:-1]))] if len(table) else table
        )
        self.others: dict[Any, int] = {}

    @property
    def count(self) -> int:
        """How many elements have an id."""
        return len(self.table) + len(self.others)

    def of_ints(self, values: I64) -> I64:
        """The ids of int64 ``values``, each of which the table holds (many at a time)."""
        return np.searchsorted(self.table, values)

    def of(self, x: Any) -> int:
        """The id of ``x``."""
        if type(x) is int and -(2**63) <= x < 2**63 and len(self.table):
            i = int(np.searchsorted(self.table, x))
            if i < len(self.table) and int(self.table[i]) == x:
                return i
        return self._other(freeze(x))

    def _other(self, key: Any) -> int:
        return self.others.setdefault(key, len(self.table) + len(self.others))


def _int_array(elements: list[Any]) -> I64 | None:
    """``elements`` as int64 if every one is a plain int (not a bool) within 64 bits."""
    if not all(type(x) is int for x in elements):
        return None
    try:
        return np.array(elements, dtype=np.int64)
    except OverflowError:
        return None


def _set_lower(calls: Calls) -> Lowered:
    o = _Ops("set", ("add", "read"), calls)
    add = o.is_(0)
    opc = o.by_outcome([[_X, K.OP_SET_ADD, _X, K.OP_SET_ADD], [_X, K.OP_SET_READ, _X, _X]])
    keep = opc != _X
    add_vals = np.unique(o.vin[add & keep]).tolist()
    added = [o.values[v] for v in add_vals]
    read_vals = np.unique(o.vout[~add & keep]).tolist()
    read_elements: list[list[Any] | I64] = []  # an int64 array where every one is an int
    for v in read_vals:
        try:
            elements = _elements(o.values[v])
        except ConfigError as e:
            at = int(np.flatnonzero(~add & keep & (o.vout == v))[0])
            raise ConfigError(f"{_where(calls, at, completion=True)}: {e}") from None
        ints = _int_array(elements)
        read_elements.append(elements if ints is None else ints)
    plain = np.array([x for x in added if type(x) is int and -(2**63) <= x < 2**63],
                     dtype=np.int64)  # fmt: skip
    read_ints = [e for e in read_elements if isinstance(e, np.ndarray)]
    ids = _ElementIds(np.concatenate([plain, *read_ints]))
    add_id = np.zeros(len(o.values) + 1, dtype=np.int64)
    for v, x in zip(add_vals, added, strict=True):
        add_id[v] = ids.of(x)
    reads = [ids.of_ints(e) if isinstance(e, np.ndarray)
             else np.array([ids.of(x) for x in e], dtype=np.int64)
             for e in read_elements]  # fmt: skip
    width = max(1, (ids.count + 63) >> 6)
    aux = np.zeros((max(1, len(reads)), width), dtype=np.int64)
    row = np.zeros(len(o.values) + 1, dtype=np.int64)
    for r, (v, members) in enumerate(zip(read_vals, reads, strict=True)):
        row[v] = r
        bits = np.left_shift(np.uint64(1), (members & 63).astype(np.uint64)).view(np.int64)
        np.bitwise_or.at(aux[r], members >> 6, bits)
    element_ids = add_id[o.vin]
    a = np.where(add, element_ids >> 6, row[o.vout]).astype(np.int64)
    b = np.where(add, np.left_shift(np.ones_like(element_ids), element_ids & 63), 0)
    b = b.astype(np.int64)
    few = ids.count <= 12
    return Lowered(
        keep=keep, opc=opc, a=a, b=b, optional=o.info, aux=aux, init=0,
        width=lambda opc: width, finite=lambda opc: few,
    )  # fmt: skip


def _set_replay(state: Any, steps: Sequence[tuple[str, int, Any, Any]]) -> Any:
    out = set(state)
    for f, _, vin, _ in steps:
        if f == "add":
            out.add(freeze(vin))
    return frozenset(out)


def _set_step(state: Any, f: str, status: int, vin: Any, vout: Any) -> tuple[bool, Any]:
    if f == "add":
        return True, state | {freeze(vin)}
    if status != OK:
        return True, state
    # state == frozenset(freeze(x) for x in read), stopping at the first element the state
    # lacks (a read of millions of elements is seldom legal)
    read = _elements(vout)
    if len(read) < len(state):
        return False, state
    seen = set()
    for x in read:
        k = freeze(x)
        if k not in state:
            return False, state
        seen.add(k)
    return len(seen) == len(state), state


# ---------------------------------------------------------------- queue


def _queue_lower(calls: Calls) -> Lowered:
    o = _Ops("linearizable-queue", ("enqueue", "dequeue"), calls)
    enq = o.is_(0)
    opc = o.by_outcome(
        [
            [_X, K.OP_ENQUEUE, _X, K.OP_ENQUEUE],
            [_X, K.OP_DEQUEUE, _X, K.OP_DEQUEUE_ANY],
        ]
    )
    sid = _Scalars()
    # Item ids start at 2 (nil is 1) so that 0 can mark an empty slot.
    item = o.per_value(lambda v: sid(v) + 1)
    a = np.where(enq, item[o.vin], item[o.vout])
    opc[(opc == K.OP_DEQUEUE) & (a == 1)] = K.OP_DEQUEUE_EMPTY
    return Lowered(
        keep=opc != _X, opc=opc, a=a, b=np.zeros(o.n, dtype=np.int64), optional=o.info,
        aux=_NO_AUX, init=0,
        width=lambda opc: 1 + int(np.count_nonzero(opc == K.OP_ENQUEUE)),
        finite=lambda opc: False,
    )  # fmt: skip


def _queue_replay(state: Any, steps: Sequence[tuple[str, int, Any, Any]]) -> Any:
    out = deque(state)
    for f, status, vin, vout in steps:  # (as _queue_step, each step legal)
        if f == "enqueue":
            out.append(freeze(vin))
        elif (status != OK or vout is not None) and out:
            out.popleft()
    return tuple(out)


def _queue_step(state: Any, f: str, status: int, vin: Any, vout: Any) -> tuple[bool, Any]:
    if f == "enqueue":
        return True, (*state, freeze(vin))
    if status != OK:
        return True, state[1:]
    if vout is None:
        return len(state) == 0, state
    return (len(state) > 0 and state[0] == freeze(vout)), state[1:]


def _plain(x: Any) -> Any:
    return x[1] if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) else x


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        _register_model(cas=False, etcd=False, summary="read/write register (nil read = any)"),
        _register_model(cas=True, etcd=False, summary="read/write/cas register, Knossos semantics"),
        _register_model(cas=True, etcd=True, summary="Porcupine's etcd cas-register"),
        _multi_model(),
        Model(
            name="kv",
            summary="get/put/append strings, partitioned by key",
            fs=("get", "put", "append"),
            lower=_kv_lower,
            ref_init=lambda: "",
            ref_step=_kv_step,
            ref_replay=_kv_replay,
        ),
        Model(
            name="mutex",
            summary="acquire/release of one lock",
            fs=("acquire", "release"),
            lower=_mutex_lower,
            ref_init=lambda: False,
            ref_step=_mutex_step,
            describe_state=lambda s: "held" if s else "free",
        ),
        Model(
            name="set",
            summary="add/read of a set",
            fs=("add", "read"),
            lower=_set_lower,
            ref_init=lambda: frozenset(),
            ref_step=_set_step,
            ref_replay=_set_replay,
            multi_key_state=False,
            describe_state=lambda s: sorted((_plain(x) for x in s), key=repr),
        ),
        Model(
            name="linearizable-queue",
            summary="FIFO queue: enqueue/dequeue",
            fs=("enqueue", "dequeue"),
            lower=_queue_lower,
            ref_init=lambda: (),
            ref_step=_queue_step,
            ref_replay=_queue_replay,
            multi_key_state=False,
            describe_state=lambda s: [_plain(x) for x in s],
        ),
    )
}


def get_model(name: str) -> Model:
    """The model called ``name``; a :class:`ConfigError` listing the choices otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def with_initial_value(model: Model, value: Any) -> Model:
    """``model`` starting from ``value`` instead of its usual initial state.

    Registers take one value (Knossos's ``(cas-register 0)``), multi-register a map of
    keys to values (``(multi-register {:x 0 :y 0})``). Raises :class:`ConfigError` for a
    model without an initial value or a value of the wrong kind.
    """
    if model.starting_at is None:
        takes = ", ".join(n for n, m in MODELS.items() if m.starting_at is not None)
        raise ConfigError(
            f"model {model.name!r} has no initial value to set; --initial-value is for {takes}"
        )
    return model.starting_at(value)


#: The operations that change a model's state; a history with none of them fits every
#: model (and is refused by :func:`guess_model`).
_CHANGES = {
    "register": ("write",),
    "cas-register": ("write", "cas"),
    "kv": ("put", "append"),
    "mutex": ("acquire", "release"),
    "set": ("add",),
    "linearizable-queue": ("enqueue",),
}
_MOP_MODELS = (
    ("list-append", {"append", "r"}, "append"),
    ("rw-register", {"w", "r"}, "w"),
    ("multi-register", {"write", "read"}, "write"),
)


def guess_model(history: History, choices: str | None = None) -> str:
    """The model the history's client operations are meant for, when only one fits.

    The operations' names must all belong to one model, at least one must change the
    state, and the values must have the model's shapes (a register reads single values,
    not maps as a bank does; a set read returns a collection, not a number as a counter
    does; a txn's micro-ops name one model's kinds: ``append``/``r`` list-append,
    ``w``/``r`` rw-register, ``write``/``read`` multi-register). Otherwise raises
    :class:`ConfigError` saying why and naming ``--model`` with ``choices`` (default:
    this module's models).
    """
    choices = choices or ", ".join(MODELS)
    client = history.process >= 0
    fs_codes = _distinct(history.f[client], len(history.f_names))
    fs = {history.f_names[c] for c in fs_codes}

    def refuse(why: str) -> ConfigError:
        return ConfigError(
            f"cannot tell which model to check this history against: {why}; "
            f"pass --model with one of: {choices}"
        )

    def values_of(name: str, *, invokes: bool | None = None) -> list[Any]:
        sel = client & (history.f == history.f_code(name))
        if invokes is not None:
            sel &= (history.type == INVOKE) if invokes else (history.type != INVOKE)
        ids = _distinct(history.value[sel], len(history.values))
        return list(map(history.values.__getitem__, ids))

    if not fs:
        raise refuse("it has no client operations")
    if fs == {"txn"}:
        names: set[Any] = set()
        for v in values_of("txn"):
            if isinstance(v, list | tuple):
                for mop in v:
                    if isinstance(mop, list | tuple) and mop and isinstance(mop[0], str):
                        names.add(mop[0])
                    else:
                        raise refuse(f"a txn holds {mop!r}, which is not a micro-op [f key value]")
        for name, kinds, write in _MOP_MODELS:
            if names and names <= kinds:
                if write not in names:
                    raise refuse("its transactions only read, so every model fits")
                return name
        raise refuse(f"its transactions mix micro-ops {sorted(names, key=str)}")
    for name in ("register", "cas-register", "kv", "mutex", "set", "linearizable-queue"):
        if fs <= set(MODELS[name].fs):
            break
    else:
        raise refuse(f"no model has all of its operations {sorted(fs)}")
    if not fs & set(_CHANGES[name]):
        raise refuse(f"none of its operations ({', '.join(sorted(fs))}) changes any state")
    if name in ("register", "cas-register"):
        for f in ("read", "write"):
            values = values_of(f)
            if set(map(_class, values)) <= _SCALAR_CLASSES:
                continue  # the usual case, told without a Python step per value
            odd = [v for v in values if not _is_scalar(v)]
            if odd:
                raise refuse(
                    f"a register {f} has the value {odd[0]!r}, not a single value (reads of "
                    "maps come from a bank test, for instance)"
                )
    if name == "set":
        odd = [v for v in values_of("read", invokes=False) if not isinstance(v, list | None)]
        if odd:
            raise refuse(
                f"a set read returned {odd[0]!r}, not a collection (a counter test reads numbers)"
            )
    return name
