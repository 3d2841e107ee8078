"""The JSONL scanner's compiled decoding of transactions (``harness.formats._jsonl_txn``):
the values ``json.loads`` gives, equal parts shared, texts that are canonical JSON, and
whole files read as the checked path reads them, whatever the mix of shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import HistoryError
from harness.formats import _jsonl_txn, jsonl
from harness.formats.jsonl import read_jsonl

_CANONICAL = msgspec.json.Encoder(order="sorted").encode
_ints = st.one_of(st.integers(-5, 40), st.integers(-(10**18) + 1, 10**18 - 1))  # 18 digits
_mop = st.tuples(
    st.sampled_from(["append", "r", "w", "", "x y", "~"]),
    st.one_of(_ints, st.sampled_from(["k", "", "7"])),
    st.one_of(st.none(), _ints, st.lists(_ints, max_size=6)),
).map(list)
_txn = st.lists(_mop, min_size=1, max_size=5)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _decode(texts: list[str]) -> tuple[list[bool], list[Any], list[bytes]]:
    raw = [t.encode() for t in texts]
    block = b"\n".join(raw)
    ends = np.cumsum([len(t) + 1 for t in raw], dtype=np.int64) - 1
    starts = ends - np.array([len(t) for t in raw], dtype=np.int64)
    parsed = _jsonl_txn.parse_txns(block, starts, ends)
    values, canonical = _jsonl_txn.build_txns(block, parsed)
    return parsed.ok.tolist(), values, canonical


@settings(max_examples=300, deadline=None)
@given(txns=st.lists(_txn, min_size=1, max_size=20))
def test_plain_transactions_decode_as_json_does(txns: list[Any]) -> None:
    texts = [_compact(t) for t in txns]
    ok, values, canonical = _decode(texts)
    assert all(ok)
    assert values == [json.loads(t) for t in texts]
    assert canonical == [_CANONICAL(v) for v in values] == [t.encode() for t in texts]


def test_the_tables_are_sized_by_the_texts_and_hold_the_densest_ones() -> None:
    # The shortest mops and the densest reads fill the tables to the last row, and a text
    # of brackets alone (a row per byte, were they sized by brackets) is refused.
    shortest = "[" + ",".join(['["",0,0]'] * 50) + "]"
    densest = '[["r",1,[' + ",".join(["7"] * 60) + "]]]"
    brackets = "[" * 5000
    ok, values, _ = _decode([shortest, densest, brackets, shortest])
    assert ok == [True, True, False, True]
    assert values == [json.loads(shortest), json.loads(densest), json.loads(shortest)]


def test_equal_parts_are_shared() -> None:
    ok, values, _ = _decode(
        ['[["r",5,null],["append",5,1]]', '[["r",5,null],["r",6,[1,2]]]',
         '[["append",7,2],["r",7,[1,2]]]']
    )  # fmt: skip
    assert all(ok)
    assert values[0][0] is values[1][0]  # the same mop
    assert values[0][1][0] is values[2][0][0]  # the same name
    assert values[1][1][2] is values[2][1][2]  # the same read


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "[[]]",
        '[["r",1]]',
        '[["r",1,null,2]]',
        '[["r", 1,null]]',
        '[ ["r",1,null]]',
        '[["r",1,null] ]',
        '[["r\\u0041",1,null]]',
        '[["r\\"",1,null]]',
        '[["r",1.0,null]]',
        '[["r",-0,null]]',
        '[["r",01,null]]',
        '[["r",1234567890123456789,null]]',
        '[["r",1,[1,[2]]]]',
        '[["r",1,[1,]]]',
        '[["r",1,[,1]]]',
        '[["r",1,true]]',
        '[["r",null,null]]',
        "[[1,1,null]]",
        '[["r",1,{"a":1}]]',
        '[["r",1,nul]]',
        '[["r",1,null],]',
        '[["r",1,null]["r",2,null]]',
        '[["é",1,null]]',
        '[["r",1,null]',
        '[["r",1,"x"]]x',
    ],
)
def test_what_is_not_plain_is_left_to_msgspec(text: str) -> None:
    """A text that is not a plain transaction is refused (its neighbours are not)."""
    good = '[["append",3,4]]'
    ok, values, canonical = _decode([good, text, good])
    assert ok == [True, False, True]
    assert values == [[["append", 3, 4]]] * 2 and canonical == [good.encode()] * 2


_NOISE = st.sampled_from([*'[],"-0123456789nulax {}.e\\', "\t", "\u00e9"])


@settings(max_examples=500, deadline=None)
@given(txn=_txn, edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2), _NOISE),
                                min_size=1, max_size=4))  # fmt: skip
def test_a_mangled_transaction_is_taken_only_as_json_reads_it(
    txn: list[Any], edits: list[tuple[int, int, str]]
) -> None:
    """Byte edits of a plain transaction (insert, replace or delete JSON's own characters
    and others): whatever the parser takes is exactly what ``json.loads`` reads, as its
    canonical text; what JSON cannot read it never takes."""
    text = _compact(txn)
    for at, how, ch in edits:
        i = at % (len(text) + 1)
        text = (text[:i] + ch + text[i:] if how == 0 else
                text[:i] + ch + text[i + 1:] if how == 1 else text[:i] + text[i + 1:])  # fmt: skip
    if not text:
        return
    ok, values, canonical = _decode([text])
    if not ok[0]:
        return
    assert values == [json.loads(text)]
    assert canonical == [text.encode()] == [_CANONICAL(values[0])]


def _history(txns: list[Any], extra: list[str]) -> list[str]:
    """Lines of a history of ``txns`` (each invoked with nil reads, then completed), with
    ``extra`` lines (nemesis ops, odd values) in between."""
    lines = []
    for i, t in enumerate(txns):
        p = i % 3
        inv = [[f, k, None if f == "r" else v] for f, k, v in t]
        typ = ["ok", "ok", "info", "fail"][i % 4]
        lines.append(_compact({"index": 2 * i, "type": "invoke", "process": p, "f": "txn",
                               "value": inv}))  # fmt: skip
        lines.append(_compact({"index": 2 * i + 1, "type": typ, "process": p, "f": "txn",
                               "value": t}))  # fmt: skip
        if i < len(extra):
            lines.append(extra[i])
    return lines


_extra = st.sampled_from(
    [
        '{"type":"info","process":"nemesis","f":"start","value":null}',
        '{"type":"info","process":"nemesis","f":"kill","value":["n1","n2"]}',
        '{"type":"info","process":"nemesis","f":"stop","value":[["n1","n2"],["n3"]]}',
        '{"type":"info","process":"nemesis","f":"odd","value":[[1, 2]]}',
        '{"type":"info","process":"nemesis","f":"odd","value":[["r",1,1.5]]}',
        '{"type":"info","process":"nemesis","f":"odd","value":[["a",1,2]]}',
        "",
    ]
)


def _read(path: Path) -> tuple[Any, ...]:
    try:
        h = read_jsonl(str(path))
    except HistoryError as e:
        return ("error", str(e))
    ops = [op.to_dict() for op in h]
    return ("ok", ops, h.line.tolist(), h.pair.tolist(), h.value.tolist(), len(h.values))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    txns=st.lists(_txn, min_size=1, max_size=25),
    extra=st.lists(_extra, max_size=8),
    block=st.sampled_from([64, 512, 1 << 20]),
)
def test_files_of_transactions_read_as_the_checked_path(
    tmp_path: Path, txns: list[Any], extra: list[str], block: int
) -> None:
    """Scanned in blocks of any size (transactions repeating across blocks, blocks the
    scanner refuses between them), a file reads as the msgspec and line-by-line paths
    read it: the same ops, lines, value ids and table of values."""
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(_history(txns + txns[:3], extra)) + "\n")
    expected = _read(path)
    built: list[int] = []
    original = _jsonl_txn.build_txns

    def counted(b: bytes, p: Any) -> tuple[list[Any], list[bytes]]:
        values, texts = original(b, p)
        built.append(len(values))
        return values, texts

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jsonl, "SCAN_MIN_BYTES", 0)
        mp.setattr(jsonl, "SCAN_BLOCK_BYTES", block)
        mp.setattr(_jsonl_txn, "build_txns", counted)
        assert _read(path) == expected
    assert expected[0] == "ok"
    if block > 1000 and "" not in extra:  # one plain block: transactions compiled
        assert sum(built) > 0


def test_a_bad_line_among_transactions_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl, "SCAN_MIN_BYTES", 0)
    lines = _history([[["append", 1, 1]], [["r", 1, [1]]]] * 20, [])
    lines[17] = '{"type":"ok","process":2,"f":"txn","value":[["r",1,[1,]]}'
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(lines) + "\n")
    got = _read(path)
    assert got[0] == "error" and "h.jsonl:18:" in got[1], got


def test_interning_with_known_texts_gives_the_ids_without() -> None:
    """Texts the reader hands in key the values as the table's own would."""
    from harness.history import _Table

    batch = [json.loads(t) for t in ['[["r",1,[1,2]]]', '[["w",1,2]]', '[["r",1,[1,2]]]']]
    batch += [None, 3, [1, 2]]
    known = [_CANONICAL(v) if isinstance(v, list) and v and isinstance(v[0], list) else None
             for v in batch]  # fmt: skip
    one, many = _Table(), _Table()
    one.intern([["w", 1, 2]])
    many.intern([["w", 1, 2]])
    expected = [one.intern(v) for v in batch]
    assert many.intern_many(batch, fresh=True, texts=known) == expected
    assert many.items == one.items and many.by_text == one.by_text


class _SameHash(bytes):
    """A text that hashes like every other one (as if siphash collided)."""

    def __hash__(self) -> int:
        return 7


def _one_by_one(batch: list[Any], before: list[Any]) -> tuple[list[int], list[Any]]:
    from harness.history import _Table

    table = _Table()
    for v in before:
        table.intern(v)
    return [table.intern(v) for v in batch], table.items


@pytest.mark.parametrize("seen", [[], [[["w", 1, 2]]], [[["r", 1, None]], [["w", 1, 2]]]])
def test_interning_texts_alone_gives_the_ids_one_by_one_would(seen: list[Any]) -> None:
    """A batch of transactions given with all their texts (the reader's usual case): new
    ones numbered in order, ones seen before (in this batch's place or not) found."""
    from harness.history import _Table

    texts = ['[["r",1,[1,2]]]', '[["w",1,2]]', '[["r",1,null]]', '[["w",3,4]]']
    batch = [json.loads(t) for t in texts]
    table = _Table()
    for v in seen:
        table.intern(v)
    got = table.intern_many(batch, fresh=True, texts=[t.encode() for t in texts])
    assert (got, table.items) == _one_by_one(batch, seen)


@pytest.mark.parametrize("seen", [[], [[["w", 1, 2]]]])
def test_interning_texts_that_hash_alike_gives_the_ids_one_by_one_would(
    seen: list[Any],
) -> None:
    """Two new texts with one hash, or a text whose hash a value seen before has: the
    batch is interned one by one, which keys them apart."""
    from harness.history import _Table

    texts = ['[["r",1,[1]]]', '[["w",1,2]]', '[["r",2,[2]]]']
    batch = [json.loads(t) for t in texts]
    table = _Table()
    for v in seen:
        table.intern(v)
    table.by_text.update({7: 0} if seen else {})  # the seen value has the alike hash
    got = table.intern_many(batch, fresh=True, texts=[_SameHash(t.encode()) for t in texts])
    ids, items = _one_by_one(batch, seen)
    assert got == ids and table.items == items
    assert [table.intern(json.loads(t)) for t in texts] == ids


def test_interning_long_runs_of_texts_among_other_values_keeps_their_order() -> None:
    """A batch of transactions with texts broken by a few values without (a nemesis's
    nil or node list, a repeated transaction): interned run by run, new values still
    take their ids in order of first appearance."""
    from harness.history import _RUN_MIN, _Table

    txns = [[["append", k, k]] for k in range(8 * _RUN_MIN)]
    batch: list[Any] = [*txns[:_RUN_MIN], None, ["n1", "n2"], *txns[_RUN_MIN:], 5, txns[0]]
    texts = [_CANONICAL(v) if v in txns else None for v in batch]
    seen = [["n1", "n2"], txns[_RUN_MIN + 1]]
    table = _Table()
    for v in seen:
        table.intern(v)
    got = table.intern_many(batch, fresh=True, texts=texts)
    assert (got, table.items) == _one_by_one(batch, seen)
    assert table.intern_many([None, 5], -1, fresh=True, texts=[None, None]) == [-1, got[-2]]
