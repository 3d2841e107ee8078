"""Histories: what clients did, as columns, with invoke ↔ completion pairing done once.

A history is the sequence of operations recorded during a test, in the order they
happened. Every logical operation appears twice: an ``invoke`` when a client starts it and
a *completion* when the client learns its outcome. The completion's type says what is known
(Jepsen's semantics, which clew keeps exactly):

* ``ok``   – the operation happened, with the completion's value;
* ``fail`` – the operation definitely did not happen;
* ``info`` – nobody knows: it may have happened, at any moment after its invocation, or
  never. A process that got ``info`` is never reused; the worker continues under a new
  process number.

An invocation with no completion at all (the history ended first) is treated as ``info``.

**Real-time order.** The order of ops in the history is the real-time order: operation A
*precedes* B iff A's completion comes before B's invocation in the history. Otherwise they
are concurrent. Times (``time``, ns since the start of the test) are informational and
used for plots; checkers order by position.

Worked example::

    0 invoke p1 write 1
    1 invoke p2 read
    2 ok     p1 write 1
    3 ok     p2 read 1        # concurrent with the write: reading 1 is fine
    4 invoke p2 read
    5 ok     p2 read 0        # the write finished before this read began: not linearizable

**Layout.** Numeric fields are numpy arrays; values, keys, nodes, errors and ``f`` names are
interned into small tables so that a million-op history stays small. ``history[i]`` gives a
frozen :class:`Op` view for people. Build histories with :class:`HistoryBuilder`; it checks
the pairing rules and reports a bad op by file and line.
"""

from __future__ import annotations

import json
import math
import operator
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, count, repeat
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from harness.errors import HistoryError
from harness.read_budget import ReadBudget
from harness.txn_mops import BlockMops, TxnMops, TxnMopsBuilder

__all__ = [
    "FAIL",
    "INFO",
    "INVOKE",
    "OK",
    "TYPE_CODES",
    "TYPE_NAMES",
    "CodedColumn",
    "History",
    "HistoryBuilder",
    "Op",
]

INVOKE, OK, FAIL, INFO = 0, 1, 2, 3
TYPE_NAMES: tuple[str, ...] = ("invoke", "ok", "fail", "info")
TYPE_CODES: dict[str, int] = {name: code for code, name in enumerate(TYPE_NAMES)}

#: Sentinel meaning "no entry" in the interned columns (key, node, error) and in ``pair``.
NONE = -1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    """One recorded operation, as a person reads it.

    ``process`` is an int for clients and a name (``"nemesis"``) for everything else.
    ``key`` is set for ops on one key of a keyed workload (kv stores, independent
    registers); checkers that partition by key use it.
    """

    index: int
    time: int
    type: str
    process: int | str
    f: str
    value: Any = None
    key: Any = None
    node: str | None = None
    error: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The op as a plain dict, omitting fields that are ``None``."""
        out: dict[str, Any] = {
            "index": self.index,
            "time": self.time,
            "type": self.type,
            "process": self.process,
            "f": self.f,
            "value": self.value,
        }
        for name in ("key", "node", "error"):
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        return out


#: How deeply values may nest (lists in maps in lists ...). Jepsen's deepest values (a
#: transaction's micro-ops, a bank read) nest 3 or 4 levels; a deeper value is refused
#: with a clear error rather than exhausting Python's recursion limit later.
MAX_VALUE_DEPTH = 100


class _TooDeep(Exception):
    pass


_NoneType = type(None)
_class = operator.attrgetter("__class__")
#: Classes that stand for themselves in :func:`_freeze`.
_PLAIN = frozenset({int, str, _NoneType})


def _freeze(value: Any, depth: int = 0) -> Any:
    """A hashable key that identifies ``value`` up to equality of its JSON form.

    Raises :class:`_TooDeep` for a value nested more than :data:`MAX_VALUE_DEPTH` levels.
    """
    t = type(value)
    if t is int or t is str or value is None:
        return value
    if t is bool:
        return ("bool", value)
    if t is float:
        return ("float", value)
    if depth >= MAX_VALUE_DEPTH:
        raise _TooDeep
    if t is list and set(map(_class, value)) <= _PLAIN:  # the usual case: [1 4], [nil 3]
        return ("list", *value)
    if t is list or t is tuple:
        return ("list", *(_freeze(v, depth + 1) for v in value))
    if t is dict:
        return ("dict", *sorted((str(k), _freeze(v, depth + 1)) for k, v in value.items()))
    return ("repr", repr(value))


#: Leaf classes a JSON decoder produces besides floats (exact classes: a subclass such as
#: an enum is not JSON's).
_JSON_LEAVES = frozenset({int, str, _NoneType, bool})
#: Compact JSON with map keys sorted: one text per JSON value.
_CANONICAL = msgspec.json.Encoder(order="sorted").encode


def _value_key(value: Any) -> Any:
    """The key :class:`_Table` interns ``value`` under: equal keys for equal values.

    A list or map made only of what a JSON decoder produces (lists, maps with string keys,
    strings, integers, finite floats, booleans, null; tuples count as lists) is keyed by its
    canonical JSON text, which msgspec writes in C; anything else by :func:`_freeze`.
    Raises :class:`_TooDeep` as :func:`_freeze` does.
    """
    t = type(value)
    if t is int or t is str or value is None:
        return value
    if (t is list or t is tuple or t is dict) and _json_native(value, 0):
        try:
            return _CANONICAL(value)
        except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
            pass
    return _freeze(value)


def _json_native(value: Any, depth: int) -> bool:
    """Whether the list, tuple or map ``value`` holds only what :func:`_value_key` keys by
    JSON text, nested fewer than :data:`MAX_VALUE_DEPTH` levels."""
    if depth >= MAX_VALUE_DEPTH:
        return False
    if type(value) is dict:
        if not set(map(_class, value)) <= {str}:
            return False
        items = value.values()
    else:
        items = value
    if set(map(_class, items)) <= _JSON_LEAVES:
        return True
    for v in items:
        t = type(v)
        if t in _JSON_LEAVES:
            continue
        if t is float:
            if not math.isfinite(v):
                return False
        elif t is list or t is tuple or t is dict:
            if not _json_native(v, depth + 1):
                return False
        else:
            return False
    return True


class _Table:
    """Interns values: equal values share one id. Ids are dense, from 0.

    Readers often hand in the very same list object for repeated text (``[1 4]``); those
    are found by identity before paying for :func:`_value_key`. The table keeps a reference
    to each such object, so an id can never be reused by another object meanwhile. Values
    must not be mutated after they are added.
    """

    __slots__ = ("by_identity", "by_text", "ids", "items")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.ids: dict[Any, int] = {}
        # Values keyed by JSON text are found by the text's hash, the text itself being
        # checked against the value found: keeping millions of texts would double the
        # memory a big history of transactions takes. Texts whose hashes collide go in ids.
        self.by_text: dict[int, int] = {}
        self.by_identity: dict[int, tuple[Any, int]] = {}

    def _find(self, key: Any) -> int | None:
        """The id of the value with key ``key`` (:func:`_value_key`), if there is one."""
        if key.__class__ is bytes:
            i = self.by_text.get(hash(key))
            if i is None or _CANONICAL(self.items[i]) == key:
                return i
        return self.ids.get(key)

    def _keep(self, key: Any, value: Any) -> int:
        """Intern ``value``, new, under ``key``; return its id."""
        i = len(self.items)
        self.items.append(value)
        if key.__class__ is bytes:
            h = hash(key)
            if h not in self.by_text:
                self.by_text[h] = i
                return i
        self.ids[key] = i
        return i

    def intern_many(
        self,
        values: Sequence[Any],
        none_id: int | None = None,
        *,
        fresh: bool = False,
        texts: Sequence[bytes | None] | None = None,
    ) -> list[int]:
        """The id of each of ``values`` (interning the new ones); ``None`` entries get
        ``none_id`` instead when it is given. ``fresh`` says the values are objects the
        table cannot have seen, just decoded from JSON: they are not looked up, nor
        remembered, by identity, and lists and maps are keyed without a walk; ``texts``,
        with ``fresh``, may give a list's or map's canonical JSON text (as
        :data:`_CANONICAL` writes it) where the reader already has it."""
        if none_id is not None and set(map(_class, values)) == {_NoneType}:
            return [none_id] * len(values)
        if fresh and texts is not None and len(texts) == len(values):
            if None not in texts:
                return self._intern_texts(values, texts)  # type: ignore[arg-type]  # no None
            runs = _runs([t is not None for t in texts])
            if len(runs) * _RUN_MIN < len(values):  # mostly long runs of texts
                return self._intern_runs(values, none_id, texts, runs)
        get = self.ids.get
        out: list[int | None]
        if none_id is None:
            out = [get(v) if (c := v.__class__) is int or c is str or v is None else None
                   for v in values]  # fmt: skip
        else:
            out = [none_id if v is None else get(v) if (c := v.__class__) is int or c is str
                   else None for v in values]  # fmt: skip
        intern, ids, items = self.intern, self.ids, self.items
        todo = [j for j, i in enumerate(out) if i is None]
        if fresh:
            if set(map(_class, map(values.__getitem__, todo))) <= {list, dict}:
                self._intern_decoded(values, out, todo, texts)  # new: lists and maps
            else:
                self._intern_fresh(values, out, todo, texts)
            return out  # type: ignore[return-value]  # every None replaced
        for j in todo:
            v = values[j]
            c = v.__class__
            if c is int or c is str or v is None:  # as intern() does, without the call
                i = ids.get(v)
                if i is None:
                    i = ids[v] = len(items)
                    items.append(v)
                out[j] = i
            elif fresh and (c is list or c is dict):
                k = _CANONICAL(v)  # _value_key(v), as v is JSON's, unless it may be deep
                if k.count(b"[") + k.count(b"{") >= MAX_VALUE_DEPTH:
                    k = _value_key(v)
                i = self._find(k)
                out[j] = self._keep(k, v) if i is None else i
            else:
                out[j] = intern(v)
        return out  # type: ignore[return-value]  # every None replaced

    def _intern_runs(
        self,
        values: Sequence[Any],
        none_id: int | None,
        texts: Sequence[bytes | None],
        runs: list[tuple[int, int]],
    ) -> list[int]:
        """:meth:`intern_many` of fresh ``values`` run by run (``runs``: the spans where
        ``texts`` are all given or all ``None``), in order, so new values take their ids
        in order of first appearance as one batch would."""
        out: list[int] = []
        for lo, hi in runs:
            given = texts[lo:hi] if texts[lo] is not None else None
            out += self.intern_many(values[lo:hi], none_id, fresh=True, texts=given)
        return out

    def _intern_texts(self, values: Sequence[Any], texts: Sequence[bytes]) -> list[int]:
        """The ids of the lists and maps ``values``, just decoded, whose canonical texts
        are ``texts`` (values that nest less than :data:`MAX_VALUE_DEPTH` deep), as
        interning them one by one gives: in a few passes, each a C loop, where texts hash
        as they should (one value per hash); else one by one."""
        hashes = list(map(hash, texts))
        by_text, items = self.by_text, self.items
        found = list(map(by_text.get, hashes))
        new = range(len(values))
        if found.count(None) < len(found):  # some seen before: each must be its text's
            hits = [k for k, i in enumerate(found) if i is not None]
            if any(_CANONICAL(items[found[k]]) != texts[k] for k in hits):  # type: ignore[index]
                return list(map(self.intern, values))  # another text with this hash
            new = [k for k, i in enumerate(found) if i is None]  # type: ignore[assignment]
            hashes = list(map(hashes.__getitem__, new))
        base, before = len(items), len(by_text)
        by_text.update(zip(hashes, count(base)))
        if len(by_text) - before != len(hashes):  # two new texts hash alike: undone
            for h in hashes:
                by_text.pop(h, None)
            return list(map(self.intern, values))
        if len(new) == len(values):
            items.extend(values)
            return list(range(base, base + len(values)))
        items.extend(map(values.__getitem__, new))
        for i, k in enumerate(new, base):
            found[k] = i
        return found  # type: ignore[return-value]  # every None replaced

    def _intern_fresh(
        self,
        values: Sequence[Any],
        out: list[Any],
        todo: list[int],
        known: Sequence[bytes | None] | None = None,
    ) -> None:
        """Fill in the ids (in ``out``) of ``values[j]`` for each ``j`` in ``todo``, just
        decoded from JSON by msgspec, of mixed kinds (a register's written integers beside
        its ``[from, to]`` pairs): in one pass, in order, scalars by the table and lists
        and maps by the hash of their canonical text (computed in one batch), with no
        method call per value. Floats, booleans, deep texts and hash collisions go
        through :meth:`intern`, which keys them as it always does. ``known`` are the
        values' canonical texts where the reader has them."""
        vals = [values[j] for j in todo]
        given = [None] * len(todo) if known is None else list(map(known.__getitem__, todo))
        texts = [k if k is not None else
                 _CANONICAL(v) if (c := v.__class__) is list or c is dict else None
                 for v, k in zip(vals, given, strict=True)]  # fmt: skip
        nested = [t for t in texts if t is not None]
        brackets = (max(map(bytes.count, nested, repeat(b))) for b in (b"[", b"{"))
        deep = bool(nested) and sum(brackets) >= MAX_VALUE_DEPTH
        ids, by_text, items, intern = self.ids, self.by_text, self.items, self.intern
        for j, v, text in zip(todo, vals, texts, strict=True):
            c = v.__class__
            if c is int or c is str or v is None:
                i = ids.get(v)
                if i is None:
                    i = ids[v] = len(items)
                    items.append(v)
            elif text is None or deep:
                i = intern(v)
            else:
                h = hash(text)
                i = by_text.get(h)
                if i is None:
                    i = by_text[h] = len(items)
                    items.append(v)
                elif _CANONICAL(items[i]) != text:  # another text with this hash
                    i = intern(v)
            out[j] = i

    def _intern_decoded(
        self,
        values: Sequence[Any],
        out: list[Any],
        todo: list[int],
        known: Sequence[bytes | None] | None = None,
    ) -> None:
        """Fill in the ids (in ``out``) of the lists and maps ``values[j]`` for each ``j`` in
        ``todo``, just decoded from JSON by msgspec, so of JSON's own kinds (floats
        finite): each is keyed by its canonical text with no walk, and the new ones go in
        with no Python step per value. Texts with many brackets (values that may nest too
        deep) and hashes that do not stand for one text each are interned one by one.
        ``known`` are the values' canonical texts where the reader has them (for values
        it vouches nest less than :data:`MAX_VALUE_DEPTH` deep)."""
        if not todo:
            return
        vals = [values[j] for j in todo]
        unknown: list[bytes] = []
        if known is None:
            texts = unknown = list(map(_CANONICAL, vals))
        else:
            given = list(map(known.__getitem__, todo))
            unknown = [_CANONICAL(v) for v, t in zip(vals, given, strict=True) if t is None]
            missing = iter(unknown)
            texts = [next(missing) if t is None else t for t in given]
        hashes = list(map(hash, texts))
        by_text = self.by_text
        deep = bool(unknown) and (
            max(map(bytes.count, unknown, repeat(b"[")))
            + max(map(bytes.count, unknown, repeat(b"{")))
            >= MAX_VALUE_DEPTH
        )
        if not deep and by_text.keys().isdisjoint(hashes):
            # The usual case: all new. Ids in order, if there is one text per hash.
            base, before = len(self.items), len(by_text)
            by_text.update(zip(hashes, count(base)))
            if len(by_text) - before == len(hashes):
                self.items.extend(vals)
                for new_id, j in enumerate(todo, base):
                    out[j] = new_id
                return
            for h in hashes:  # a hash twice: undone, and done the long way below
                by_text.pop(h, None)
        found = list(map(by_text.get, hashes))
        if deep or len(set(hashes)) != len(set(texts)):
            for j, v in zip(todo, vals, strict=True):
                out[j] = self.intern(v)
            return
        for k, i in enumerate(found):  # seen before (or a hash alike)?
            if i is not None:
                out[todo[k]] = i if _CANONICAL(self.items[i]) == texts[k] else self.intern(vals[k])
        miss = [k for k, i in enumerate(found) if i is None]
        if len(miss) < len(todo):
            todo, vals = [todo[k] for k in miss], [vals[k] for k in miss]
            hashes = [hashes[k] for k in miss]
        # New values, whose hashes stand for their texts: ids in order of first appearance.
        new = dict(zip(dict.fromkeys(hashes), count(len(self.items))))
        first = dict(zip(reversed(hashes), range(len(hashes) - 1, -1, -1), strict=True))
        self.items.extend(vals[first[h]] for h in new)
        self.by_text.update(new)
        for j, i in zip(todo, map(new.__getitem__, hashes), strict=True):
            out[j] = i

    def intern_batch(self, values: Sequence[Any]) -> npt.NDArray[np.int64]:
        """The ids of ``values`` as an array, as :meth:`intern_many` gives them (new values
        take ids in order of first appearance), with the integers deduplicated by sorting:
        a big table is then looked up once per distinct integer, not once per entry."""
        n = len(values)
        cls = np.fromiter(map(_class, values), dtype=object, count=n)
        is_int = cls == int  # noqa: E721  # elementwise, over the array of classes
        int_pos = np.flatnonzero(is_int)
        if len(int_pos) < 64:
            return np.asarray(self.intern_many(values), dtype=np.int64)
        try:
            ints = np.fromiter(
                compress(values, is_int.tolist()), dtype=np.int64, count=len(int_pos)
            )
        except OverflowError:  # beyond 64 bits: one by one
            return np.asarray(self.intern_many(values), dtype=np.int64)
        uniq, first, inverse = np.unique(ints, return_index=True, return_inverse=True)
        get = self.ids.get
        known = list(map(get, uniq.tolist())) if self.items else [None] * len(uniq)
        # Distinct new values of the batch: (first position, value, key) -> ids in order.
        new: list[tuple[int, Any, Any]] = []
        uid = np.empty(len(uniq), dtype=np.int64)
        first_pos = int_pos[first].tolist()
        for j, (k, i) in enumerate(zip(uniq.tolist(), known, strict=True)):
            if i is None:
                new.append((first_pos[j], k, k))
                uid[j] = -len(new)  # a placeholder: -(1 + its index in new)
            else:
                uid[j] = i
        out = np.empty(n, dtype=np.int64)
        out[int_pos] = uid[inverse]
        local: dict[Any, int] = {}
        for pos in np.flatnonzero(~is_int).tolist():
            v = values[pos]
            key = _value_key(v)
            i = self._find(key)
            if i is None:
                i = local.get(key)
                if i is None:
                    new.append((pos, v, key))
                    i = local[key] = -len(new)
            out[pos] = i
        if new:
            order = sorted(range(len(new)), key=lambda x: new[x][0])
            ids = np.empty(len(new), dtype=np.int64)
            base = len(self.items)
            ids[order] = np.arange(base, base + len(new))
            for x in order:
                self._keep(new[x][2], new[x][1])
            placeholder = out < 0
            out[placeholder] = ids[-out[placeholder] - 1]
        return out

    def intern(self, value: Any) -> int:
        t = type(value)
        if t is int or t is str or value is None:
            i = self.ids.get(value)
            if i is None:
                i = self.ids[value] = len(self.items)
                self.items.append(value)
            return i
        seen = self.by_identity.get(id(value))
        if seen is not None and seen[0] is value:
            return seen[1]
        k = _value_key(value)
        i = self._find(k)
        if i is None:
            i = self._keep(k, value)
        if len(self.by_identity) < _IDENTITY_CACHE_MAX:
            self.by_identity[id(value)] = (value, i)
        return i


#: A batch splits into runs with and without texts only if they average this many values.
_RUN_MIN = 64


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """The maximal spans ``(lo, hi)`` of equal ``flags``, in order."""
    cuts = (np.flatnonzero(np.diff(np.asarray(flags, dtype=np.int8))) + 1).tolist()
    return list(zip([0, *cuts], [*cuts, len(flags)], strict=True)) if flags else []


@dataclass(frozen=True, slots=True)
class CodedColumn:
    """A column of ops' field values given as ``entries`` and, for each op, the index of
    its value among them (``codes``), as a reader that found the distinct values itself
    hands them over. Entries need not be distinct (equal ones get one id); they are
    interned in their order, which should be the order of first appearance."""

    entries: list[Any]
    codes: npt.NDArray[np.int64]
    #: Each entry's canonical JSON text (:data:`_CANONICAL`), or ``None``, where the
    #: reader has it: interning then need not write it again.
    texts: Sequence[bytes | None] | None = None
    #: The micro-ops of the entries that are plain transactions, where the reader has
    #: them as columns (kept for the transactional checker: :mod:`harness.txn_mops`).
    mops: BlockMops | None = None


def _int64s(column: Sequence[Any]) -> array[int] | None:
    """``column`` as a typed int64 array, or ``None`` if an entry is not an int that fits
    (bools count as not ints)."""
    try:
        out = array("q", column)
    except (TypeError, OverflowError):
        return None
    if bool in set(map(_class, column)):
        return None
    return out


#: Most value objects remembered by identity per table (they are kept alive by it).
_IDENTITY_CACHE_MAX = 1 << 16

#: Ops added between two looks at a :class:`HistoryBuilder`'s budget (a power of two).
BUDGET_EVERY = 1 << 10


class HistoryBuilder:
    """Collects ops one by one (as a parser reads them) and builds a :class:`History`.

    ``path`` is only used in error messages. ``add`` takes already-decoded fields; a
    ``line`` number, when given, is kept so that later errors (pairing) can name it.
    Ops added with ``process=None`` form one client process of their own. A history of
    client completions only (no client invocation at all; Elle's examples list only the
    completed transactions) gets an invocation for each completion at the start of the
    history, each in a process of its own: concurrent with everything before it.

    With a ``budget``, adding ops checks it every :data:`BUDGET_EVERY` ops (and
    :meth:`check_budget` lets a reader check it inside its own long steps): running out
    raises :class:`~harness.read_budget.ReadBudgetExceeded` naming the file and line.
    """

    def __init__(self, *, path: str | None = None, budget: ReadBudget | None = None) -> None:
        self.path = path
        self.budget = budget
        # Compact typed columns: no Python int object per entry, and numpy reads them
        # without a copy in build().
        self._time = array("q")
        self._index = array("q")
        self._type = array("b")
        self._process = array("q")
        self._f = array("i")
        self._value = array("i")
        self._key = array("i")
        self._node = array("i")
        self._error = array("i")
        self._line = array("q")
        self._f_table = _Table()
        self._values = _Table()
        self._keys = _Table()
        self._nodes = _Table()
        self._process_names: dict[str, int] = {}
        self._has_time = True
        self._has_index = False
        self._anonymous: list[int] = []  # positions of ops recorded without a process
        self._mops: TxnMopsBuilder | None = None  # made when a reader gives micro-ops

    def __len__(self) -> int:
        return len(self._type)

    def add(
        self,
        *,
        type: str,
        process: int | str | None,
        f: Any,
        value: Any = None,
        time: int | None = None,
        index: int | None = None,
        key: Any = None,
        node: str | None = None,
        error: Any = None,
        line: int | None = None,
    ) -> None:
        """Append one op. Raises :class:`HistoryError` naming the line if a field is bad."""
        self.add_row(type, process, f, value, time, index, key, node, error, line)

    def add_row(
        self,
        type: str,
        process: int | str | None,
        f: Any,
        value: Any,
        time: int | None,
        index: int | None,
        key: Any,
        node: str | None,
        error: Any,
        line: int | None,
    ) -> None:
        """:meth:`add` with positional arguments, for readers on their hot path."""
        code = TYPE_CODES.get(type)
        if code is None:
            raise HistoryError(
                f"unknown op type {type!r}; expected one of invoke, ok, fail, info",
                path=self.path,
                line=line,
            )
        pos = len(self._type)
        if not pos & (BUDGET_EVERY - 1) and self.budget is not None:
            self.budget.check(self.path, line, self.held_bytes())
        if process is None:
            self._anonymous.append(pos)
            process = 0  # replaced in build()
        elif process.__class__ is not int or not 0 <= process <= _INT64_MAX:
            process = self._process_id(process, line)
        if time is None:
            self._has_time = False
            time = pos
        elif time.__class__ is not int:
            raise HistoryError(f"time must be an integer, got {time!r}", path=self.path, line=line)
        elif not _INT64_MIN <= time <= _INT64_MAX:
            raise self._out_of_range("time", time, line)
        if index is not None:
            self._has_index = True
            if not _INT64_MIN <= index <= _INT64_MAX:
                raise self._out_of_range("index", index, line)
        try:
            ids = (
                self._values.intern(value),
                NONE if key is None else self._keys.intern(key),
                NONE if error is None else self._values.intern(error),
            )
        except (_TooDeep, RecursionError):
            raise HistoryError(
                f"a value is nested more than {MAX_VALUE_DEPTH} levels deep; clew refuses "
                "values that deep (Jepsen's nest 3 or 4)",
                path=self.path,
                line=line,
            ) from None
        self._time.append(time)
        self._index.append(pos if index is None else index)
        self._type.append(code)
        self._process.append(process)
        self._f.append(self._f_table.intern(f if f.__class__ is str else str(f)))
        self._value.append(ids[0])
        self._key.append(ids[1])
        self._node.append(NONE if node is None else self._nodes.intern(node))
        self._error.append(ids[2])
        self._line.append(pos + 1 if line is None else line)

    def check_budget(self, line: int | None) -> None:
        """Raise :class:`~harness.read_budget.ReadBudgetExceeded` if the budget given to
        the builder is spent (``line``: how far reading got); nothing without a budget."""
        if self.budget is not None:
            self.budget.check(self.path, line, self.held_bytes())

    def held_bytes(self) -> int:
        """A lower estimate of the bytes this builder holds: its columns (49 bytes an op),
        64 bytes per distinct value and key (an interned small object and its table
        entries; real values are often much larger), and the micro-op columns a reader
        gave."""
        mops = self._mops.nbytes if self._mops is not None else 0
        return (49 * len(self._type) + 64 * (len(self._values.items) + len(self._keys.items))
                + mops)  # fmt: skip

    def _out_of_range(self, field: str, value: int, line: int | None) -> HistoryError:
        return HistoryError(
            f"the op's {field} {value} does not fit in 64 bits (it must lie between -2^63 "
            "and 2^63-1)",
            path=self.path,
            line=line,
        )

    def add_plain_ops(self, ops: list[dict[str, Any]], lines: list[int]) -> bool:
        """Append many already-decoded op dicts at once, column by column; ``lines`` are
        their source lines. Only for the plain case (see :meth:`add_columns`). Returns
        False, having added nothing, if any op is not plain; the caller then adds them one
        by one with full checks and messages."""
        try:
            types = [op["type"] for op in ops]
            procs = [op["process"] for op in ops]
            fs = [op["f"] for op in ops]
        except (KeyError, TypeError):
            return False
        return self.add_columns(
            types,
            procs,
            fs,
            [op.get("value") for op in ops],
            [op.get("time") for op in ops],
            [op.get("index") for op in ops],
            [op.get("key") for op in ops],
            [op.get("node") for op in ops],
            [op.get("error") for op in ops],
            lines,
        )

    def add_columns(
        self,
        type: Sequence[Any],
        process: Sequence[Any],
        f: Sequence[Any],
        value: Sequence[Any],
        time: Sequence[Any],
        index: Sequence[Any],
        key: Sequence[Any],
        node: Sequence[Any],
        error: Sequence[Any],
        line: Sequence[int],
    ) -> bool:
        """Append many ops given column by column (equal lengths; ``line`` their source
        lines), the fast way, for readers. Only for the plain case: every ``type`` a known
        name, ``process`` a non-negative int below 2^63 or a name (str), ``f`` a str,
        ``time`` and ``index`` ints in 64 bits or ``None`` (for all ops or for none),
        ``node`` a str or ``None``, and no value nested too deep. Returns False, having
        added nothing to the columns, if any op is not plain; the caller then adds them
        one by one (:meth:`add_row`), which gives the error and the line."""
        n = len(type)
        if not n:
            return True
        none = _NoneType
        if set(map(_class, type)) != {str} or set(map(_class, f)) != {str}:
            return False
        codes = list(map(TYPE_CODES.get, type))
        if None in codes:
            return False
        if not set(map(_class, node)) <= {str, none}:
            return False
        start = len(self._type)
        times = _int64s(time)
        has_time = times is not None
        if times is None:
            if set(map(_class, time)) != {none}:
                return False
            times = array("q", range(start, start + n))
        indexes = _int64s(index)
        if indexes is None:
            if set(map(_class, index)) != {none}:
                return False
            indexes = array("q", range(start, start + n))
        procs = _int64s(process)
        if procs is None or (min(procs) < 0):
            classes = set(map(_class, process))
            if not classes <= {int, str}:
                return False
            name_id = self._process_name_id
            plist: list[int] = []
            for p in process:
                if p.__class__ is str:
                    plist.append(name_id(p))
                elif 0 <= p <= _INT64_MAX:
                    plist.append(p)
                else:
                    return False
            procs = array("q", plist)
        try:
            values = self._values.intern_batch(value).astype(np.int32)
            keys = self._keys.intern_many(key, NONE)
            errors = self._values.intern_many(error, NONE)
        except (_TooDeep, RecursionError):
            return False  # the caller adds them one by one, and names the line
        nodes = self._nodes.intern_many(node, NONE)
        fids = self._f_table.intern_many(f)
        self._has_time &= has_time
        self._has_index |= index[0] is not None
        self._time.extend(times)
        self._index.extend(indexes)
        self._type.extend(codes)  # type: ignore[arg-type]  # no None: checked above
        self._process.extend(procs)
        self._f.extend(fids)
        self._value.frombytes(values.tobytes())
        self._key.extend(keys)
        self._node.extend(nodes)
        self._error.extend(errors)
        self._line.extend(line)
        self.check_budget(line[-1])
        return True

    def add_coded(
        self,
        *,
        type: CodedColumn,
        process: CodedColumn,
        f: CodedColumn,
        value: CodedColumn,
        key: CodedColumn,
        node: CodedColumn,
        error: CodedColumn,
        time: npt.NDArray[np.int64] | None,
        index: npt.NDArray[np.int64] | None,
        line: npt.NDArray[np.int64],
    ) -> bool:
        """Append many ops given as coded columns (:class:`CodedColumn`; ``time`` and
        ``index`` as int64 arrays, or ``None`` when no op has one; ``line`` their source
        lines), without a Python object per op: only the entries are looked at. The same
        plain case as :meth:`add_columns`, and the same promise: returns False, having
        added nothing, if any op is not plain (the caller adds them one by one for the
        error and the line)."""
        n = len(line)
        if not n:
            return True
        none = _NoneType
        if set(map(_class, type.entries)) != {str} or set(map(_class, f.entries)) != {str}:
            return False
        codes = list(map(TYPE_CODES.get, type.entries))
        if None in codes:
            return False
        if not set(map(_class, node.entries)) <= {str, none}:
            return False
        pids: list[int] = []
        for p in process.entries:
            if p.__class__ is str:
                pids.append(self._process_name_id(p))
            elif p.__class__ is int and 0 <= p <= _INT64_MAX:
                pids.append(p)
            else:
                return False
        start = len(self._type)
        try:
            base = len(self._values.items)
            value_ids = self._entry_ids(self._values, value)
            values = value_ids[value.codes]
            keys = self._coded_ids(self._keys, key, NONE)
            errors = self._coded_ids(self._values, error, NONE)
        except (_TooDeep, RecursionError):
            return False  # the caller adds them one by one, and names the line
        nodes = self._coded_ids(self._nodes, node, NONE)
        fids = self._coded_ids(self._f_table, f)
        if value.mops is not None:
            self._mops = self._mops or TxnMopsBuilder()
            self._mops.add(value_ids.astype(np.int64), base, value.mops)
        self._has_time &= time is not None
        self._has_index |= index is not None
        positions = np.arange(start, start + n, dtype=np.int64)
        self._time.frombytes((positions if time is None else time).astype(np.int64).tobytes())
        self._index.frombytes((positions if index is None else index).astype(np.int64).tobytes())
        self._type.frombytes(np.asarray(codes, dtype=np.int8)[type.codes].tobytes())
        self._process.frombytes(np.asarray(pids, dtype=np.int64)[process.codes].tobytes())
        self._f.frombytes(fids.tobytes())
        self._value.frombytes(values.tobytes())
        self._key.frombytes(keys.tobytes())
        self._node.frombytes(nodes.tobytes())
        self._error.frombytes(errors.tobytes())
        self._line.frombytes(line.astype(np.int64).tobytes())
        self.check_budget(int(line[-1]))
        return True

    @classmethod
    def _coded_ids(
        cls, table: _Table, column: CodedColumn, none_id: int | None = None
    ) -> npt.NDArray[np.int32]:
        """The table ids of a coded column's ops (its entries interned in order)."""
        return cls._entry_ids(table, column, none_id)[column.codes]

    @staticmethod
    def _entry_ids(
        table: _Table, column: CodedColumn, none_id: int | None = None
    ) -> npt.NDArray[np.int32]:
        """The table ids of a coded column's entries (interned in order)."""
        ids = table.intern_many(column.entries, none_id, fresh=True, texts=column.texts)
        return np.asarray(ids, dtype=np.int32)

    def _process_name_id(self, name: str) -> int:
        pid = self._process_names.get(name)
        if pid is None:
            pid = self._process_names[name] = -1 - len(self._process_names)
        return pid

    def _process_id(self, process: Any, line: int | None) -> int:
        if isinstance(process, int) and not isinstance(process, bool):
            if not 0 <= process <= _INT64_MAX:
                # Negative ids stand for named processes (the nemesis) in the columns.
                raise HistoryError(
                    f"process must be a non-negative integer (below 2^63) or a name such "
                    f"as nemesis, got {process}",
                    path=self.path,
                    line=line,
                )
            return int(process)  # an int subclass
        if not isinstance(process, str):
            raise HistoryError(
                f"process must be an integer or a name, got {process!r}", path=self.path, line=line
            )
        return self._process_name_id(process)

    def build(self) -> History:
        """Freeze the columns and pair invocations with completions.

        Raises :class:`HistoryError` for a completion with no invocation, a client that
        invokes twice without completing, or a completion whose ``f`` differs from its
        invocation's. With a budget, :class:`~harness.read_budget.ReadBudgetExceeded`
        first if building would pass it: freezing copies every column, and pairing adds
        about :data:`_PAIR_BYTES` an op, so the history's peak is at least twice what the
        builder holds plus that.
        """
        if self.budget is not None:
            n_ops = len(self._type)
            last = int(self._line[-1]) if len(self._line) else None
            need = 2 * self.held_bytes() + _PAIR_BYTES * n_ops
            self.budget.check(self.path, last, need, holding="building the history needs")
        cols = {
            "time": _column(self._time, np.int64),
            "index": _column(self._index, np.int64),
            "type": _column(self._type, np.int8),
            "process": _column(self._process, np.int64),
            "f": _column(self._f, np.int32),
            "value": _column(self._value, np.int32),
            "key": _column(self._key, np.int32),
            "node": _column(self._node, np.int32),
            "error": _column(self._error, np.int32),
            "line": _column(self._line, np.int64),
        }
        if self._anonymous:
            self._name_anonymous(cols["process"])
        client = cols["process"] >= 0
        if client.any() and not bool(np.any(cols["type"][client] == INVOKE)):
            cols = self._invoke_lone_completions(cols, np.flatnonzero(client))
        n = len(cols["type"])
        h = History(
            **cols,
            f_names=list(self._f_table.items),
            values=self._values.items,
            mops=None if self._mops is None else self._mops.build(len(self._values.items)),
            keys=self._keys.items,
            nodes=[str(x) for x in self._nodes.items],
            process_names={v: k for k, v in self._process_names.items()},
            path=self.path,
            pair=np.empty(0, dtype=np.int64),
        )
        h.pair = _pair(h) if n else np.empty(0, dtype=np.int64)
        return h

    def _name_anonymous(self, process: npt.NDArray[np.int64]) -> None:
        """Ops recorded without a process belong to one client process of their own (the
        next unused number): Elle's examples leave the process out."""
        anonymous = np.asarray(self._anonymous, dtype=np.int64)
        others = np.ones(len(process), dtype=bool)
        others[anonymous] = False  # their process 0 is a placeholder
        client = process[others & (process >= 0)]
        process[anonymous] = int(client.max()) + 1 if len(client) else 0

    def _invoke_lone_completions(
        self, cols: dict[str, npt.NDArray[Any]], lone: npt.NDArray[np.int64]
    ) -> dict[str, npt.NDArray[Any]]:
        """A history of completions only (Elle's examples list only the transactions that
        completed): each gets a process of its own and an invocation at the start of the
        history, since when it began is unknown — it is concurrent with everything before
        it."""
        client = cols["process"][cols["process"] >= 0]
        base = int(client.max()) + 1 if len(client) else 0
        ids = base + np.arange(len(lone), dtype=np.int64)
        cols["process"][lone] = ids
        start = int(cols["time"].min()) if len(cols["time"]) else 0
        invokes = {
            "time": np.full(len(lone), start, np.int64),
            "index": cols["index"][lone],
            "type": np.full(len(lone), INVOKE, np.int8),
            "process": ids,
            "f": cols["f"][lone],
            "value": cols["value"][lone],
            "key": cols["key"][lone],
            "node": np.full(len(lone), NONE, np.int32),
            "error": np.full(len(lone), NONE, np.int32),
            "line": cols["line"][lone],
        }
        out = {k: np.concatenate([invokes[k], v]).astype(v.dtype) for k, v in cols.items()}
        if not self._has_index:
            out["index"] = np.arange(len(out["type"]), dtype=np.int64)
        return out


#: Bytes an op that pairing invocations with completions holds at its peak (the pairs,
#: the processes' order, the sorted processes and types, and their masks).
_PAIR_BYTES = 40


def _column(values: array[int], dtype: type[np.generic]) -> npt.NDArray[Any]:
    """A numpy copy of a typed array column (the builder may go on appending)."""
    return np.frombuffer(values, dtype=dtype).copy() if len(values) else np.empty(0, dtype)


def _stable_order(process: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The stable argsort of ``process``. Processes usually span a small range; then they
    are sorted as 16-bit offsets, which numpy sorts by radix (in linear time)."""
    if len(process):
        lo, hi = int(process.min()), int(process.max())
        if hi - lo < 1 << 16:
            return np.argsort((process - lo).astype(np.uint16), kind="stable")
    return np.argsort(process, kind="stable")


def _pair(h: History) -> npt.NDArray[np.int64]:
    """For each op, the position of its partner (invoke ↔ completion), or -1."""
    n = len(h.type)
    pair = np.full(n, NONE, dtype=np.int64)
    order = _stable_order(h.process)
    proc = h.process[order]
    typ = h.type[order]
    same = proc[1:] == proc[:-1]
    is_inv = typ == INVOKE
    # A completion is paired with the op just before it in its process, if that is an invoke.
    matched = same & is_inv[:-1] & ~is_inv[1:]
    a = order[:-1][matched]
    b = order[1:][matched]
    pair[a] = b
    pair[b] = a

    client = proc >= 0
    # A client completion that is not matched: no invocation before it.
    orphan = (~is_inv) & client
    orphan[1:] &= ~matched
    if orphan.any():
        pos = int(order[np.flatnonzero(orphan)[0]])
        raise HistoryError(
            f"{TYPE_NAMES[h.type[pos]]} completion of process {h.process_label(pos)} "
            f"({h.f_names[h.f[pos]]}) has no invocation before it",
            path=h.path,
            line=int(h.line[pos]),
        )
    # An invoke followed, in its process, by another invoke: the first never completed.
    double = same & is_inv[:-1] & is_inv[1:] & client[1:]
    if double.any():
        k = int(np.flatnonzero(double)[0])
        first, second = int(order[k]), int(order[k + 1])
        raise HistoryError(
            f"process {h.process_label(second)} invokes {h.f_names[h.f[second]]} while its "
            f"earlier {h.f_names[h.f[first]]} (line {int(h.line[first])}) has not completed; "
            "a client process runs one op at a time",
            path=h.path,
            line=int(h.line[second]),
        )
    inv = a[h.process[a] >= 0]
    bad = h.f[inv] != h.f[pair[inv]]
    if bad.any():
        i = int(inv[np.flatnonzero(bad)[0]])
        j = int(pair[i])
        raise HistoryError(
            f"completion f {h.f_names[h.f[j]]!r} differs from its invocation's "
            f"{h.f_names[h.f[i]]!r} (line {int(h.line[i])})",
            path=h.path,
            line=int(h.line[j]),
        )
    return pair


class History:
    """An immutable, columnar history. See the module docstring for the semantics.

    Columns (numpy arrays of equal length ``n``): ``time`` (int64 ns), ``index`` (int64),
    ``type`` (int8: INVOKE/OK/FAIL/INFO), ``process`` (int64; negative ids are named
    processes such as the nemesis, see ``process_names``), ``f`` (int32 into ``f_names``),
    ``value`` (int32 into ``values``), ``key`` / ``node`` / ``error`` (int32 into ``keys`` /
    ``nodes`` / ``values``, -1 for none), ``line`` (source line, 1-based) and ``pair``
    (position of the partner op, -1 if none). ``mops`` optionally gives the micro-ops of
    transaction values as columns (:class:`~harness.txn_mops.TxnMops`), as a reader that
    parsed them kept them. They are by value id and the checker trusts them: whatever
    renumbers or changes ``values`` or ``value`` must drop them (``mops=None``).
    """

    def __init__(
        self,
        *,
        time: npt.NDArray[np.int64],
        index: npt.NDArray[np.int64],
        type: npt.NDArray[np.int8],
        process: npt.NDArray[np.int64],
        f: npt.NDArray[np.int32],
        value: npt.NDArray[np.int32],
        key: npt.NDArray[np.int32],
        node: npt.NDArray[np.int32],
        error: npt.NDArray[np.int32],
        line: npt.NDArray[np.int64],
        pair: npt.NDArray[np.int64],
        f_names: list[str],
        values: list[Any],
        keys: list[Any],
        nodes: list[str],
        process_names: dict[int, str],
        path: str | None = None,
        mops: TxnMops | None = None,
    ) -> None:
        self.time = time
        self.index = index
        self.type = type
        self.process = process
        self.f = f
        self.value = value
        self.key = key
        self.node = node
        self.error = error
        self.line = line
        self.pair = pair
        self.f_names = f_names
        self.values = values
        self.keys = keys
        self.nodes = nodes
        self.process_names = process_names
        self.path = path
        #: The micro-ops of transaction values, by value id, where the reader kept them.
        self.mops = mops

    @classmethod
    def from_ops(cls, ops: Sequence[dict[str, Any] | Op], *, path: str | None = None) -> History:
        """Build a history from op dicts (or :class:`Op`), e.g. in tests."""
        b = HistoryBuilder(path=path)
        for i, op in enumerate(ops):
            d = op.to_dict() if isinstance(op, Op) else dict(op)
            d.pop("index", None)
            b.add(line=i + 1, **d)
        return b.build()

    def __len__(self) -> int:
        return len(self.type)

    def with_independent_keys(self, budget: ReadBudget | None = None) -> History:
        """This history with Jepsen's ``independent`` tuples split: every client op that
        has no key and whose value is a ``[key, value]`` pair gets that key and the inner
        value. Other ops are unchanged. (Jepsen's per-key tests write such tuples.)
        With a ``budget``, raises :class:`~harness.read_budget.ReadBudgetExceeded` when
        it runs out on the way."""
        values = _Table()
        for vid, v in enumerate(self.values):  # re-interning in order keeps old ids valid
            if budget is not None and not vid & 0xFFFF:
                budget.check(self.path, None)
            values.intern(v)
        keys = _Table()
        for k in self.keys:
            keys.intern(k)
        key_of = np.full(len(self.values), NONE, dtype=np.int32)
        inner_of = np.arange(len(self.values), dtype=np.int32)
        for vid, v in enumerate(self.values):
            if budget is not None and not vid & 0xFFFF:
                budget.check(self.path, None)
            if isinstance(v, list | tuple) and len(v) == 2:
                key_of[vid] = keys.intern(v[0])
                inner_of[vid] = values.intern(v[1])
        split = (self.process >= 0) & (self.key < 0) & (key_of[self.value] >= 0)
        return History(
            time=self.time,
            index=self.index,
            type=self.type,
            process=self.process,
            f=self.f,
            value=np.where(split, inner_of[self.value], self.value).astype(np.int32),
            key=np.where(split, key_of[self.value], self.key).astype(np.int32),
            node=self.node,
            error=self.error,
            line=self.line,
            pair=self.pair,
            f_names=self.f_names,
            values=values.items,
            keys=keys.items,
            nodes=self.nodes,
            process_names=self.process_names,
            path=self.path,
        )

    def __getitem__(self, i: int) -> Op:
        if isinstance(i, slice):
            raise TypeError("History does not support slicing; use ops() or select()")
        n = len(self.type)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        k, nd, e = int(self.key[i]), int(self.node[i]), int(self.error[i])
        return Op(
            index=int(self.index[i]),
            time=int(self.time[i]),
            type=TYPE_NAMES[self.type[i]],
            process=self.process_label(i),
            f=self.f_names[self.f[i]],
            value=self.values[self.value[i]],
            key=None if k < 0 else self.keys[k],
            node=None if nd < 0 else self.nodes[nd],
            error=None if e < 0 else self.values[e],
        )

    def __iter__(self) -> Iterator[Op]:
        for i in range(len(self.type)):
            yield self[i]

    def process_label(self, i: int) -> int | str:
        """The process of op ``i``: an int for clients, a name otherwise."""
        p = int(self.process[i])
        return p if p >= 0 else self.process_names.get(p, str(p))

    def value_of(self, i: int) -> Any:
        """The decoded value of op ``i``."""
        return self.values[self.value[i]]

    def key_of(self, i: int) -> Any:
        """The decoded key of op ``i``, or ``None``."""
        k = int(self.key[i])
        return None if k < 0 else self.keys[k]

    def f_code(self, name: str) -> int:
        """The code of ``f`` name, or -1 if no op has it."""
        try:
            return self.f_names.index(name)
        except ValueError:
            return -1

    def client_invokes(self) -> npt.NDArray[np.int64]:
        """Positions of client invocations, in history order."""
        return np.flatnonzero((self.type == INVOKE) & (self.process >= 0))

    def counts(self) -> dict[str, int]:
        """Number of ops by type name."""
        c = np.bincount(self.type, minlength=4)
        return {name: int(c[code]) for code, name in enumerate(TYPE_NAMES)}

    def describe(self, i: int) -> str:
        """A one-line, human description of op ``i``."""
        op = self[i]
        key = "" if op.key is None else f" key={json.dumps(op.key, default=str)}"
        return (
            f"#{op.index} p{op.process} {op.type} {op.f}{key} {json.dumps(op.value, default=str)}"
        )
