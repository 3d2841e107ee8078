"""The keys values are interned under (harness.history): equal values share one id
whichever way they come in (one by one, in a batch, or just decoded from JSON)."""

from __future__ import annotations

import enum
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.history import MAX_VALUE_DEPTH, _Table, _TooDeep, _value_key

_leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=4)
_json = st.recursive(
    _leaf | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=_json)
def test_a_decoded_value_gets_the_id_a_walk_gives(value: Any) -> None:
    text = msgspec.json.encode(value)
    table = _Table()
    (i,) = table.intern_many([msgspec.json.decode(text)], fresh=True)
    assert table.intern(value) == i == table.intern(msgspec.json.decode(text))


@settings(max_examples=200, deadline=None)
@given(values=st.lists(_json, max_size=12))
def test_decoded_and_one_by_one_interning_agree(values: list[Any]) -> None:
    texts = [msgspec.json.encode(v) for v in values]
    fresh, one = _Table(), _Table()
    decoded = [msgspec.json.decode(t) for t in texts]
    ids = fresh.intern_many(decoded, fresh=True)
    assert ids == [one.intern(msgspec.json.decode(t)) for t in texts]
    for a, b in zip(texts, ids, strict=True):  # equal texts, equal ids (and only they)
        assert all((a == c) == (b == d) for c, d in zip(texts, ids, strict=True))


def test_equal_values_share_a_key_and_others_do_not() -> None:
    assert _value_key([["r", 1, [1, 2]]]) == _value_key((("r", 1, (1, 2)),))
    assert _value_key({"b": [1], "a": 2}) == _value_key({"a": 2, "b": [1]})
    assert _value_key([[1]]) != _value_key([[True]]) != _value_key([[1.0]])
    assert _value_key([[1, 2]]) != _value_key([[1], 2])

    class Mode(enum.IntEnum):
        ONE = 1

    class Name(str):
        pass

    assert _value_key([[Mode.ONE]]) != _value_key([[1]])  # not JSON's: keyed as before
    assert _value_key([[Name("a")]]) != _value_key([["a"]])
    assert _value_key([{1, 2}]) != _value_key([[1, 2]])
    assert _value_key([[float("nan")]]) != _value_key([[None]])


def _nested(depth: int) -> Any:
    v: Any = 1
    for _ in range(depth):
        v = [v, "x"]
    return v


def test_a_value_nested_too_deep_is_refused_on_every_path() -> None:
    ok, deep = _nested(MAX_VALUE_DEPTH), _nested(MAX_VALUE_DEPTH + 1)
    table = _Table()
    assert table.intern_many([ok], fresh=True) == [table.intern(_nested(MAX_VALUE_DEPTH))]
    with pytest.raises(_TooDeep):
        _value_key(deep)
    with pytest.raises(_TooDeep):
        table.intern_many([deep], fresh=True)


def test_values_whose_texts_hash_alike_keep_their_own_ids() -> None:
    table = _Table()
    a, b = [["r", 1, [1]]], [["r", 2, [2]]]
    first = table.intern(a)
    table.by_text[hash(_value_key(b))] = first  # as if b's text hashed like a's
    second = table.intern(b)
    assert second != first and table.items[second] == b
    assert table.intern([["r", 2, [2]]]) == second and table.intern([["r", 1, [1]]]) == first
    assert table.intern_many([msgspec.json.decode(b'[["r",2,[2]]]')], fresh=True) == [second]
