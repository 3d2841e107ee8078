"""Unit tests of the columnar History model and its pairing rules."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import HistoryError
from harness.history import INFO, INVOKE, OK, History, HistoryBuilder


def test_pairs_invocations_with_completions_per_process() -> None:
    h = History.from_ops([
        dict(process=0, type="invoke", f="write", value=1),
        dict(process=1, type="invoke", f="read", value=None),
        dict(process=1, type="ok", f="read", value=1),
        dict(process=0, type="info", f="write", value=1),
        dict(process=2, type="invoke", f="read", value=None),
    ])  # fmt: skip
    assert h.pair.tolist() == [3, 2, 1, 0, -1]
    assert h.type.tolist() == [INVOKE, INVOKE, OK, INFO, INVOKE]
    assert h.counts() == {"invoke": 3, "ok": 1, "fail": 0, "info": 1}
    assert h.client_invokes().tolist() == [0, 1, 4]


def test_values_are_interned_and_ops_read_back() -> None:
    b = HistoryBuilder()
    for i in range(3):
        b.add(type="invoke", process=i, f="cas", value=[1, 2], node="n1", time=10 * i)
    h = b.build()
    assert len(h.values) == 1
    op = h[2]
    assert (op.index, op.time, op.type, op.process, op.f, op.value, op.node) == (
        2, 20, "invoke", 2, "cas", [1, 2], "n1",
    )  # fmt: skip
    assert op.to_dict()["node"] == "n1"
    assert h[-1] == op
    assert h.time.dtype == np.int64


def test_named_processes_get_negative_ids_and_loose_pairing() -> None:
    h = History.from_ops([
        dict(process="nemesis", type="info", f="start", value=None),
        dict(process="nemesis", type="info", f="start", value="cut"),
    ])  # fmt: skip
    assert h.process.tolist() == [-1, -1]
    assert h[0].process == "nemesis"
    assert len(h.client_invokes()) == 0


@pytest.mark.parametrize(
    ("ops", "line", "message"),
    [
        (  # beside an invoked op: completions alone are Elle's shorthand, not an error
            [dict(process=1, type="invoke", f="read", value=None),
             dict(process=1, type="ok", f="read", value=1),
             dict(process=0, type="ok", f="read", value=1)],
            3, "has no invocation",
        ),
        (
            [dict(process=0, type="invoke", f="read", value=None),
             dict(process=0, type="invoke", f="read", value=None)],
            2, "has not completed",
        ),
        (
            [dict(process=0, type="invoke", f="read", value=None),
             dict(process=0, type="ok", f="write", value=1)],
            2, "differs from its invocation",
        ),
        ([dict(process=0, type="done", f="read", value=1)], 1, "unknown op type 'done'"),
        ([dict(process=0.5, type="invoke", f="read", value=1)], 1, "process must be"),
    ],
)  # fmt: skip
def test_malformed_histories_name_the_line(ops: list[dict], line: int, message: str) -> None:
    with pytest.raises(HistoryError, match=message) as e:
        History.from_ops(ops, path="h.jsonl")
    assert e.value.line == line
    assert str(e.value).startswith(f"h.jsonl:{line}: ")


def test_independent_tuples_become_keys_and_values() -> None:
    h = History.from_ops([
        dict(process=0, type="invoke", f="cas", value=[7, [1, 2]]),
        dict(process=0, type="ok", f="cas", value=[7, [1, 2]]),
        dict(process=1, type="invoke", f="read", value=["k", None]),
        dict(process=1, type="ok", f="read", value=["k", 3]),
        dict(process="nemesis", type="info", f="start", value=["n1", "n2"]),
    ])  # fmt: skip
    s = h.with_independent_keys()
    assert [(op.key, op.value) for op in s] == [
        (7, [1, 2]), (7, [1, 2]), ("k", None), ("k", 3), (None, ["n1", "n2"]),
    ]  # fmt: skip
    assert h[0].value == [7, [1, 2]]  # the original is unchanged


def test_jsonl_column_path_matches_the_line_path(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from harness.formats import jsonl, read_history

    ops = []
    for i in range(10):
        p = i % 3
        ops.append(dict(index=2 * i, time=10 * i, type="invoke", process=p, f="cas",
                        value=[i, i + 1], key=i % 2, node=f"n{p}"))  # fmt: skip
        ops.append(dict(index=2 * i + 1, time=10 * i + 5, type="ok", process=p, f="cas",
                        value=[i, i + 1], key=i % 2, node=f"n{p}"))  # fmt: skip
    # Not plain: a named process (the nemesis) in the middle of a chunk, and a blank line.
    ops.insert(7, dict(index=99, time=36, type="info", process="nemesis", f="start", value=None))
    text = "".join(json.dumps(op) + "\n" for op in ops)
    path = tmp_path / "h.jsonl"
    path.write_text(text.replace("\n", "\n\n", 1))
    monkeypatch.setattr(jsonl, "CHUNK_LINES", 4)
    fast = read_history(str(path), "jsonl")
    b = HistoryBuilder()
    for op in ops:
        b.add(**op)
    expected = b.build()
    assert [op.to_dict() for op in fast] == [op.to_dict() for op in expected]
    assert fast.line.tolist()[:3] == [1, 3, 4]  # line numbers survive the blank line
