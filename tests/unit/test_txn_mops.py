"""Micro-ops kept by the JSONL scanner (``harness.txn_mops``) and the transactional
checker's columns gathered from them (``checkers.txn.parse_mops``): the same columns,
keys, read elements and verdicts as walking the values, whatever the file's mix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkers.txn import check, parse_mops
from checkers.txn.parse import TxnFormatError, Txns, parse
from harness.errors import HistoryError
from harness.formats import jsonl
from harness.formats.jsonl import read_jsonl
from harness.history import History
from harness.txn_mops import BlockMops, TxnMopsBuilder, _Growing

_ints = st.integers(-3, 12)
_keys = st.one_of(_ints, st.sampled_from(["x", "1"]))
_read = st.one_of(st.none(), st.lists(_ints, max_size=5))
_mop = st.one_of(
    st.tuples(st.just("append"), _keys, _ints), st.tuples(st.just("r"), _keys, _read)
).map(list)
_odd_mop = st.sampled_from([["w", 1, 2], ["append", 1, None], ["r", 1, 3]])
_TYPES = ["ok", "ok", "ok", "info", "fail"]


def _lines(txns: list[list[Any]], types: list[str], extra: list[str]) -> list[str]:
    """A history of ``txns`` (invoked with nil reads; completed as ``types`` say, an
    ``info`` sometimes with a nil value), ``extra`` lines in between."""
    lines = []
    for i, (t, typ) in enumerate(zip(txns, types, strict=False)):
        inv = [[f, k, None if f == "r" else v] for f, k, v in t]
        lines.append(json.dumps({"index": 2 * i, "type": "invoke", "process": i % 4,
                                 "f": "txn", "value": inv}, separators=(",", ":")))  # fmt: skip
        done = None if typ == "info" and i % 2 else t
        lines.append(json.dumps({"index": 2 * i + 1, "type": typ, "process": i % 4,
                                 "f": "txn", "value": done}, separators=(",", ":")))  # fmt: skip
        if i < len(extra):
            lines.append(extra[i])
    return lines


def _parse(h: History) -> Txns | str:
    try:
        return parse(h, "list-append")
    except (TxnFormatError, HistoryError) as e:
        return f"error: {e}"


def _count_columns(mp: pytest.MonkeyPatch) -> list[bool]:
    """A list that, from now on, gets for each time the checker asks for columns from
    kept micro-ops whether it was given them (not just whether it asked)."""
    used: list[bool] = []
    original = parse_mops._columns

    def counted(*args: Any) -> Any:
        out = original(*args)
        used.append(out is not None)
        return out

    mp.setattr(parse_mops, "_columns", counted)
    return used


def _parse_kept(h: History) -> tuple[Txns | str, bool]:
    """:func:`_parse` of ``h``, and whether the columns came from its kept micro-ops."""
    with pytest.MonkeyPatch.context() as mp:
        used = _count_columns(mp)
        got = _parse(h)
    return got, any(used) and not isinstance(got, str)


def _same(a: Txns | str, b: Txns | str) -> None:
    """``a`` and ``b`` are the same transactions (read elements compared read by read)."""
    assert isinstance(a, str) == isinstance(b, str), (a, b)
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    for name in ("type", "process", "inv", "cmp", "mop_lo", "m_txn", "m_f", "m_key",
                 "m_len", "m_idx"):  # fmt: skip
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.keys == b.keys and [type(k) for k in a.keys] == [type(k) for k in b.keys]
    assert a.values == b.values
    writes = a.m_f == 0
    assert np.array_equal(a.m_val[writes], b.m_val[writes])
    for i in np.flatnonzero(~writes).tolist():
        n = int(a.m_len[i])
        sa, sb = int(a.m_val[i]), int(b.m_val[i])
        assert np.array_equal(a.elems[sa : sa + n], b.elems[sb : sb + n]), i


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    txns=st.lists(st.lists(_mop, min_size=1, max_size=4), min_size=1, max_size=30),
    types=st.lists(st.sampled_from(_TYPES), min_size=30, max_size=30),
    odd=st.lists(st.tuples(st.integers(0, 29), _odd_mop), max_size=1),
    extra=st.lists(st.sampled_from(['{"type":"info","process":"nemesis","f":"kill",'
                                    '"value":["n1"]}', "", '{"type":"info","process":'
                                    '"nemesis","f":"txn","value":[["r", 1, null]]}']),
                   max_size=3),
    block=st.sampled_from([200, 1 << 20]),
)  # fmt: skip
def test_columns_from_kept_mops_are_the_walked_ones(
    tmp_path: Path,
    txns: list[Any],
    types: list[str],
    odd: list[tuple[int, list[Any]]],
    extra: list[str],
    block: int,
) -> None:
    """Read by the scanner in blocks of any size (transactions repeating across blocks,
    blocks it refuses, odd micro-ops that only the walk may name), the transactions parse
    from the kept micro-ops as from the values, or fail with the same message."""
    for at, mop in odd:
        txns[at % len(txns)].append(mop)
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(_lines(txns + txns[:2], types + types[:2], extra)) + "\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jsonl, "SCAN_MIN_BYTES", 0)
        mp.setattr(jsonl, "SCAN_BLOCK_BYTES", block)
        h = read_jsonl(str(path))
    got, used = _parse_kept(h)
    mops, h.mops = h.mops, None
    _same(got, _parse(h))
    if block > 1000 and not extra and not odd:  # one plain block: the mops are kept
        lists = [v for v, x in enumerate(h.values) if isinstance(x, list)]
        assert mops is not None and bool(mops.known(np.asarray(lists, np.int64)).all())
        assert used  # and the checker takes them


def test_reads_that_disagree_keep_their_own_elements(tmp_path: Path) -> None:
    """Reads of one key that are not prefixes of its longest read (an invalid history)
    each point at their own elements; those that are, into the longest."""
    reads = [[1, 2, 3], [1, 2], [2], [3, 1], [4], [1, 2, 3], [5, 6]]
    txns = [[["r", "x", r], ["r", 7, r[:1]]] for r in reads] + [[["append", "x", 9]]]
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(_lines(txns, ["ok"] * len(txns), [])) + "\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jsonl, "SCAN_MIN_BYTES", 0)
        h = read_jsonl(str(path))
    got, used = _parse_kept(h)
    assert used
    h.mops = None
    _same(got, _parse(h))


def test_the_checker_takes_the_kept_mops_and_gives_the_same_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A G1c cycle read from a scanned file: found through the kept micro-ops (which the
    checker does use), as through the values."""
    txns = [[["append", "x", 1], ["r", "y", [1]]], [["append", "y", 1], ["r", "x", [1]]]]
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(_lines(txns, ["ok"] * 2, [])) + "\n")
    monkeypatch.setattr(jsonl, "SCAN_MIN_BYTES", 0)
    h = read_jsonl(str(path))
    used = _count_columns(monkeypatch)
    kept = check(h, "list-append", "serializable")
    assert used == [True] and kept.valid is False
    h.mops = None
    walked = check(h, "list-append", "serializable")
    assert used == [True]
    assert kept.details["anomalies"] == walked.details["anomalies"] == ["G1c"]


def _block(entries: list[int], txns: list[list[int]]) -> BlockMops:
    """A block whose distinct mops are ``["append", "k", d]`` for d = 0, 1, …, the t-th
    transaction being ``txns[t]`` (distinct mop numbers)."""
    lo = np.cumsum([0] + [len(t) for t in txns]).astype(np.int64)
    n = max(max(t) for t in txns) + 1
    return BlockMops(
        entries=np.asarray(entries, dtype=np.int64), txn_lo=lo,
        mop=np.asarray([d for t in txns for d in t], dtype=np.int64),
        f=np.zeros(n, np.int64), key=np.zeros(n, np.int64), kind=np.ones(n, np.int8),
        val=np.arange(n, dtype=np.int64), names=["append"], keys=["k"],
        read_lo=np.zeros(1, np.int64), elems=np.empty(0, np.int64),
    )  # fmt: skip


def test_only_values_new_to_the_table_have_their_mops_kept() -> None:
    b = TxnMopsBuilder()
    b.add(np.array([0, 1], dtype=np.int64), 0, _block([0, 1], [[0], [1, 0]]))
    # entry 0 is value 1 seen before; entry 2 (value 2) is new; entry 1 is no transaction
    b.add(np.array([1, 7, 2], dtype=np.int64), 2, _block([0, 2], [[0, 1], [1]]))
    m = b.build(4)
    assert m is not None
    assert m.known(np.array([0, 1, 2, 3, -1], dtype=np.int64)).tolist() == [
        True, True, True, False, False
    ]  # fmt: skip
    vals = [m.val[m.mop[m.lo[v] : m.lo[v] + m.n[v]]].tolist() for v in (0, 1, 2)]
    assert vals == [[0], [1, 0], [1]]
    assert m.names == ["append"] and m.keys == ["k"]
    assert TxnMopsBuilder().build(3) is None


def test_a_growing_array_keeps_what_was_appended() -> None:
    g = _Growing(np.int32)
    parts = [np.arange(k, dtype=np.int64) for k in (3, 5000, 0, 9000)]
    for p in parts:
        g.extend(p)
    assert g.array().dtype == np.int32
    assert g.array().tolist() == np.concatenate(parts).tolist()


def _decoded(m: Any, v: int) -> list[list[Any]]:
    """Value ``v``'s micro-ops as ``[f, key, value]`` from the kept columns."""
    out = []
    for d in m.mop[m.lo[v] : m.lo[v] + m.n[v]].tolist():
        kind, val = int(m.kind[d]), int(m.val[d])
        value: Any = None
        if kind == 1:
            value = val
        elif kind == 2:
            value = m.elems[m.read_lo[val] : m.read_lo[val] + m.read_len[val]].tolist()
        out.append([m.names[m.f[d]], m.keys[m.key[d]], value])
    return out


def test_a_block_with_one_new_transaction_keeps_only_what_it_uses() -> None:
    # Distinct mops: 0 append k 5; 1 r k [1,2,3]; 2 r k [7]; 3 append j 6. Reads: [1,2,3], [7].
    block = BlockMops(
        entries=np.array([0, 1, 2], np.int64), txn_lo=np.array([0, 2, 3, 5], np.int64),
        mop=np.array([0, 1, 1, 3, 2], np.int64), f=np.array([0, 1, 1, 0], np.int64),
        key=np.array([0, 0, 0, 1], np.int64), kind=np.array([1, 2, 2, 1], np.int8),
        val=np.array([5, 0, 1, 6], np.int64), names=["append", "r"], keys=["k", "j"],
        read_lo=np.array([0, 3, 4], np.int64), elems=np.array([1, 2, 3, 7], np.int64),
    )  # fmt: skip
    b = TxnMopsBuilder()
    b.add(np.array([0, 1, 2], np.int64), 0, block)  # all three new: kept whole
    again = TxnMopsBuilder()
    again.add(np.array([0, 1, 2], np.int64), 0, block)
    before = again.nbytes
    # the same block again, only its last transaction (entry 2) new as value 3
    again.add(np.array([0, 1, 3], np.int64), 3, block)
    m, whole = again.build(4), b.build(3)
    assert m is not None and whole is not None
    assert _decoded(m, 3) == _decoded(whole, 2) == [["append", "j", 6], ["r", "k", [7]]]
    for v in (0, 1, 2):
        assert _decoded(m, v) == _decoded(whole, v)
    # only the two mops and the one read (one element) it uses were added
    assert (len(m.kind), len(m.read_len), len(m.elems)) == (4 + 2, 2 + 1, 4 + 1)
    assert again.nbytes >= before > 0
