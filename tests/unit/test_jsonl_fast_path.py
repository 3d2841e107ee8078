"""The JSONL reader's fast path (msgspec, blocks, column by column) reads exactly what the
checked line-by-line path reads: the same ops, lines and errors, on any mix of fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import HistoryError
from harness.formats import jsonl
from harness.formats.jsonl import read_jsonl

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["a", "b", "nemesis", ""]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["k", "v"]), inner)
    ),
    max_leaves=6,
)
_field = {
    "type": st.one_of(st.sampled_from(["invoke", "ok", "fail", "info"]), _values),
    "process": st.one_of(st.integers(min_value=-2, max_value=4), st.just("nemesis"), _values),
    "f": st.one_of(st.sampled_from(["read", "write"]), _values),
    "value": _values,
    "time": st.one_of(st.integers(min_value=-(2**64), max_value=2**64), _values),
    "index": st.one_of(st.integers(min_value=0, max_value=100), _values),
    "key": _values,
    "node": st.one_of(st.sampled_from(["n1", "n2"]), _values),
    "error": _values,
}
_plain = st.fixed_dictionaries(
    {"type": st.sampled_from(["invoke", "ok"]), "process": st.integers(0, 3), "f": st.just("w")}
)
_op = st.tuples(_plain, st.fixed_dictionaries({}, optional=_field)).map(lambda t: {**t[0], **t[1]})
_lines = st.lists(
    st.one_of(
        _op.map(json.dumps),
        st.sampled_from(["", "   ", "[1, 2]", '{"type": "ok"', "null"]),
    ),
    min_size=1,
    max_size=30,
)


def _read(path: Path) -> tuple[Any, ...]:
    try:
        h = read_jsonl(str(path))
    except HistoryError as e:
        return ("error", str(e))
    return ("ok", [op.to_dict() for op in h], h.line.tolist(), h.pair.tolist())


def _checked_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(block: bytes) -> list[Any]:
        raise jsonl.msgspec.DecodeError("the checked path only")

    monkeypatch.setattr(jsonl, "_DECODE_LINES", refuse)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=_lines, crlf=st.booleans(), small=st.booleans(), scanned=st.booleans())
def test_fast_path_reads_as_the_checked_path(
    tmp_path: Path, lines: list[str], crlf: bool, small: bool, scanned: bool
) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(("\r\n" if crlf else "\n").join(lines).encode())
    with pytest.MonkeyPatch.context() as mp:
        if small:
            mp.setattr(jsonl, "BLOCK_BYTES", 64)
            mp.setattr(jsonl, "SCAN_BLOCK_BYTES", 64)
        if scanned:  # the compiled scanner, whatever the file's size
            mp.setattr(jsonl, "SCAN_MIN_BYTES", 0)
        fast = _read(path)
        _checked_only(mp)
        checked = _read(path)
    assert fast == checked


def test_a_value_absent_from_a_scanned_block_is_never_looked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scanner leaves an absent field's span unset; the arrays it fills come from
    # np.empty, so they hold whatever memory held (a CI run saw -6469693229). Filled here
    # with the most negative integer, the read must still not index the block by them.
    path = tmp_path / "h.jsonl"
    absent = '{"process": 0, "f": "w", "type": "ok"}'
    txn = '{"process": 1, "f": "w", "type": "ok", "value": [["r", 1, null]]}'
    path.write_text(f"{absent}\n{txn}\n")
    real_empty = np.empty

    def garbage(shape: Any, dtype: Any = float) -> Any:
        out = real_empty(shape, dtype=dtype)
        out.fill(np.iinfo(out.dtype).min if out.dtype.kind == "i" else 0)
        return out

    monkeypatch.setattr(jsonl, "SCAN_MIN_BYTES", 0)
    monkeypatch.setattr(jsonl.np, "empty", garbage)
    scanned = _read(path)
    _checked_only(monkeypatch)
    assert scanned == _read(path)
    oks = [op["value"] for op in scanned[1] if op["type"] == "ok"]
    assert oks == [None, [["r", 1, None]]]


def test_plain_blocks_take_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "h.jsonl"
    ops = []
    for p in range(500):
        ops.append({"type": "invoke", "process": p % 7, "f": "cas", "value": [p, p + 1], "key": p})
        ops.append({"type": "ok", "process": p % 7, "f": "cas", "value": [p, p + 1], "key": p})
    ops.append({"type": "info", "process": "nemesis", "f": "start", "value": None})
    path.write_text("".join(json.dumps(op) + "\n" for op in ops))
    monkeypatch.setattr(jsonl, "BLOCK_BYTES", 4096)
    slow: list[int] = []
    original = jsonl._add_chunk

    def counted(b: Any, c: list[tuple[int, str]], p: str) -> None:
        slow.append(len(c))
        original(b, c, p)

    monkeypatch.setattr(jsonl, "_add_chunk", counted)
    h = read_jsonl(str(path))
    assert len(h) == len(ops) and not any(slow)
    assert h[1].value == [0, 1] and h[len(ops) - 1].process == "nemesis"
    assert h.line.tolist() == list(range(1, len(ops) + 1))


_mixed = st.lists(
    st.one_of(st.integers(-50, 50), st.integers(min_value=-(2**65), max_value=2**65), _values),
    min_size=0,
    max_size=400,
)


@settings(max_examples=200, deadline=None)
@given(before=_mixed, batch=_mixed, big=st.booleans())
def test_interning_a_batch_gives_the_ids_one_by_one_would(
    before: list[Any], batch: list[Any], big: bool
) -> None:
    from harness.history import _Table

    if not big:  # ints in 64 bits: the sorted path (else one by one)
        batch = [v for v in batch if type(v) is not int or -(2**63) <= v < 2**63]
        batch += list(range(-70, 70, 3))

    one, many = _Table(), _Table()
    for v in before:
        one.intern(v)
        many.intern(v)
    expected = [one.intern(v) for v in batch]
    assert many.intern_batch(batch).tolist() == expected
    assert many.items == one.items and many.ids == one.ids and many.by_text == one.by_text


@settings(max_examples=200, deadline=None)
@given(before=_mixed, batch=_mixed)
def test_interning_fresh_mixed_values_gives_the_ids_one_by_one_would(
    before: list[Any], batch: list[Any]
) -> None:
    """A block's values just decoded from JSON, of mixed kinds (a register's integers
    beside its [from, to] pairs), get the ids, and leave the table, as interning them one
    by one would."""
    import msgspec

    from harness.history import _Table

    one, many = _Table(), _Table()
    for v in before:
        one.intern(v)
        many.intern(v)
    fresh = msgspec.json.decode(json.dumps(batch))
    expected = [one.intern(v) for v in msgspec.json.decode(json.dumps(batch))]
    assert many.intern_many(fresh, fresh=True) == expected
    assert many.items == one.items and many.ids == one.ids and many.by_text == one.by_text


def test_plain_blocks_are_scanned_without_decoding_each_op(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled scanner reads plain blocks (ints, strings, lists, maps, floats,
    booleans, absent fields, spaces), with the ops, lines and values the checked path
    gives; the msgspec path and the line-by-line path are never taken."""
    path = tmp_path / "h.jsonl"
    values: list[Any] = [
        [1, 2],
        {"k": [1, None]},
        1.5,
        True,
        "x",
        None,
        -7,
        2**70,
        [],
        {},
        [1, 2],
        "x",
    ]
    lines = []
    for p, v in enumerate(values * 40):
        inv = {"index": 2 * p, "time": 10 * p, "type": "invoke", "process": p % 5, "f": "w",
               "value": v, "key": p % 3}  # fmt: skip
        done = {"index": 2 * p + 1, "time": 10 * p + 5, "type": "ok", "process": p % 5,
                "f": "w", "value": v, "key": p % 3, "node": "n1", "x": [{"y": "}"}]}  # fmt: skip
        if p % 7 == 0:
            done["error"] = "timeout"
        lines += [json.dumps(inv), json.dumps(done, separators=(",", ":"))]
    lines.append('{"type":"info","process":"nemesis","f":"start"}')
    path.write_text("\n".join(lines))
    expected = _read(path)  # under 8 MiB: the msgspec path
    monkeypatch.setattr(jsonl, "SCAN_MIN_BYTES", 0)
    monkeypatch.setattr(jsonl, "SCAN_BLOCK_BYTES", 4096)
    monkeypatch.setattr(jsonl, "_add_block", None)  # any fall back would fail
    assert _read(path) == expected
    assert expected[0] == "ok"
    assert expected[1][1]["value"] == [1, 2] and expected[1][-1]["process"] == "nemesis"


def test_scanner_refuses_what_is_not_plain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line the scanner does not take (an escape, a field twice, a blank line, a bad
    token) sends its block to the checked path, which names the line."""
    monkeypatch.setattr(jsonl, "SCAN_MIN_BYTES", 0)
    ok = '{"type":"invoke","process":0,"f":"w","value":1}'
    for bad, message in [
        ('{"type":"ok","process":0,"f":"w","value":1,"value":2}', None),
        ('{"type":"ok","process":0,"f":"w","value":"a\\"b"}', None),
        ('{"type":"ok","process":0,"f":"w","value":tru}', "h.jsonl:2:"),
        ('{"type":"ok","process":0,"f":"w","value":[1 2]}', "h.jsonl:2:"),
        ('{"type":"ok","process":0,"f":"w","value":01}', "h.jsonl:2:"),
        ('{"type":"ok","process":0,"f":"r","value":1}', "h.jsonl:2:"),
    ]:
        path = tmp_path / "h.jsonl"
        path.write_text(ok + "\n" + bad + "\n")
        got = _read(path)
        if message is None:
            assert got[0] == "ok", bad
        else:
            assert got[0] == "error" and message in got[1], (bad, got)


def test_a_small_memory_budget_keeps_to_the_msgspec_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scanner's code takes memory a small read budget would count: under a budget
    below SCAN_MIN_BUDGET, even a big file is read without it."""
    from harness.read_budget import ReadBudget

    path = tmp_path / "h.jsonl"
    path.write_text('{"type":"invoke","process":0,"f":"w","value":1}\n')
    monkeypatch.setattr(jsonl, "SCAN_MIN_BYTES", 0)
    made: list[int] = []
    original = jsonl._Scanner.__init__

    def counted(scanner: Any) -> None:
        made.append(1)
        original(scanner)

    monkeypatch.setattr(jsonl._Scanner, "__init__", counted)
    read_jsonl(str(path), budget=ReadBudget(max_memory=64 << 20))
    assert not made
    read_jsonl(str(path), budget=ReadBudget(max_memory=1 << 30))
    assert made
