"""The chunked list-append parse and shared read elements give the general parse's columns.

``checkers.txn.parse_fast`` reads histories of the common shape and declines the others;
``checkers.txn.elements`` lets reads that agree share elements. Both must leave every
column as the general parse makes it: compared here on random histories (perturbed, so
with incompatible reads and failed transactions) and on odd but legal shapes.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

import checkers.txn.parse_fast as parse_fast
from checkers.txn import check
from checkers.txn.oracle import random_history
from checkers.txn.parse import READ, Txns, parse
from harness.errors import HistoryError
from harness.history import OK, History


def _general(h: History, monkeypatch: pytest.MonkeyPatch) -> Txns:
    with monkeypatch.context() as m:
        m.setattr(parse_fast, "list_append_columns", lambda *a: None)
        return parse(h, "list-append")


def _reads(tx: Txns) -> list[list[int]]:
    return [tx.elems[tx.m_val[j] : tx.m_val[j] + tx.m_len[j]].tolist()
            for j in np.flatnonzero(tx.m_f == READ).tolist()]  # fmt: skip


def _same(a: Txns, b: Txns) -> None:
    for col in ("type", "process", "inv", "cmp", "mop_lo", "m_txn", "m_f", "m_key", "m_len",
                "m_idx"):  # fmt: skip
        x, y = getattr(a, col), getattr(b, col)
        assert x.dtype == y.dtype and np.array_equal(x, y), col
    assert a.keys == b.keys and a.values == b.values
    w = a.m_f != READ
    assert np.array_equal(a.m_val[w], b.m_val[w])
    assert _reads(a) == _reads(b)


def _txns(*rows: tuple[int, str, list[Any]]) -> History:
    ops: list[dict[str, Any]] = []
    for p, typ, mops in rows:
        ops.append({"process": p, "type": "invoke", "f": "txn", "value": mops})
        ops.append({"process": p, "type": typ, "f": "txn", "value": mops})
    return History.from_ops(ops)


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the histories the fast parse reads (not the ones it declines)."""
    real, read = parse_fast.list_append_columns, []

    def spy(*a: Any) -> Any:
        c = real(*a)
        read.append(c is not None)
        return c

    monkeypatch.setattr(parse_fast, "list_append_columns", spy)
    return read


def test_random_histories_parse_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(17)
    read = _counting(monkeypatch)
    for _ in range(300):
        h = History.from_ops(random_history(rng, "list-append", max_txns=8))
        _same(parse(h, "list-append"), _general(h, monkeypatch))
    assert sum(read) > 250


def test_many_chunks_parse_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_fast, "CHUNK", 3)
    rng = random.Random(5)
    rows: list[tuple[int, str, list[Any]]] = []
    lists: dict[int, list[int]] = {}
    for i in range(60):
        mops: list[Any] = []
        for _ in range(rng.randint(0, 4)):
            k = rng.randrange(4)
            if rng.random() < 0.5:
                lists.setdefault(k, []).append(i * 10 + len(mops))
                mops.append(["append", k, lists[k][-1]])
            else:
                seen = list(lists.get(k, []))
                if seen and rng.random() < 0.1:
                    seen[0] += 1  # an incompatible read
                mops.append(["r", k, seen or None])
        rows.append((i % 3, rng.choice(["ok", "ok", "ok", "fail", "info"]), mops))
    h = _txns(*rows)
    read = _counting(monkeypatch)
    _same(parse(h, "list-append"), _general(h, monkeypatch))
    assert read == [True]


@pytest.mark.parametrize(
    "mops",
    [
        [["append", "x", 1], ["r", "x", (1,)]],  # a tuple read
        [["append", "x", 1], ["r", "x", [1.0]], ["r", "x", [True]]],  # equal, not ints
        [["append", "x", 1], ["r", "x", ["1"]]],  # a string element converts
        [["append", 1, 1], ["append", True, 2], ["r", 1, [1, 2]]],  # keys 1 and True
        [["append", "x", 1], ["r", "x", []], ["r", "x", None]],  # empty and nil reads
        [("append", "x", 1), ("r", "x", [1])],  # tuple mops
        [["append", "x", 1, "extra"], ["r", "x", [1]]],  # a longer mop is cut
        [["append", "x", 1], ["r", "x", [1, 2.5]]],  # 2.5 converts (a garbage read)
    ],
)
def test_odd_shapes_parse_alike(mops: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    h = _txns((0, "ok", mops))
    read = _counting(monkeypatch)
    _same(parse(h, "list-append"), _general(h, monkeypatch))
    assert read == [True]


@pytest.mark.parametrize(
    "mops",
    [
        [["append", "x", True]],  # not a plain int: values are interned
        [["append", "x", "a"], ["r", "x", ["a"]]],
        [["append", ["k"], 1]],  # an unhashable key
        [["append", "x", None]],  # nil written: an input error
        [["w", "x", 1]],  # not list-append
        [["append", "x"]],  # too short
        [["append", "x", 2**63]],  # too large for int64
    ],
)
def test_other_shapes_are_declined(mops: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    h = _txns((0, "ok", mops))
    assert parse_fast.list_append_columns([mops], np.array([OK], np.int8), lambda: None) is None

    def outcome() -> tuple[Any, ...]:
        try:
            r = check(h, "list-append")
        except HistoryError as e:
            return ("error", str(e))
        return (r.valid, r.cause)

    fast = outcome()
    monkeypatch.setattr(parse_fast, "list_append_columns", lambda *a: None)
    assert fast == outcome()
