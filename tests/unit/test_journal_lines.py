"""The journal's fast lines are exactly op_to_json_line's, for every kind of op."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.formats.jsonl import op_to_json_line
from harness.journal_lines import fields_line, op_line, records_text

FIELDS = ("index", "time", "type", "process", "f", "value", "key", "node", "error")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["", "%", "%s", "%%d", '"q"', "back\\slash", "line\nbreak", "é€😀"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(
            st.one_of(st.text(max_size=4), st.integers(), st.tuples(st.integers(0, 2))),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=8,
)
processes = st.one_of(st.integers(0, 30), st.just("nemesis"), st.just(True), values)
types = st.one_of(st.sampled_from(["invoke", "ok", "fail", "info", "o%k"]), values)
fs = st.one_of(st.sampled_from(["read", "write", "cas", "start-partition"]), values)
keys = st.one_of(st.none(), st.integers(0, 9), st.just(True), st.just(1.0), values)
nodes = st.one_of(st.none(), st.sampled_from(["n1", "n2"]), st.just(1), values)
errors = st.one_of(st.none(), st.just("timeout"), values)


def ops() -> st.SearchStrategy[dict[str, Any]]:
    """Op dicts: usually well-formed, with any field possibly odd, missing or extra."""
    field_values = {
        "index": st.one_of(st.integers(0, 10**6), values),
        "time": st.one_of(st.integers(0, 10**12), values),
        "type": types,
        "process": processes,
        "f": fs,
        "value": values,
        "key": keys,
        "node": nodes,
        "error": errors,
    }
    return st.fixed_dictionaries(
        {k: field_values[k] for k in ("index", "time", "type", "process", "f")},
        optional={
            "value": values,
            "key": keys,
            "node": nodes,
            "error": errors,
            "extra": values,
        },
    )


@settings(max_examples=600, deadline=None)
@given(ops())
def test_op_line_is_op_to_json_line(op: dict[str, Any]) -> None:
    assert op_line(op) == op_to_json_line(op)


@settings(max_examples=300, deadline=None)
@given(ops())
def test_fields_line_is_op_to_json_line_of_the_fields(op: dict[str, Any]) -> None:
    fields = [op.get(k) for k in FIELDS]
    assert fields_line(*fields) == op_to_json_line(dict(zip(FIELDS, fields, strict=True)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(ops(), st.booleans()), max_size=12), st.integers(0, 10**9))
def test_a_batch_of_records_is_the_lines_of_its_ops(
    batch: list[tuple[dict[str, Any], bool]], shared_time: int
) -> None:
    records: list[Any] = []
    expected = []
    for op, as_line in batch:
        if as_line:  # a ready line, as Journal.__call__ keeps them
            records.append(op_line(op))
            expected.append(op_to_json_line(op))
        else:
            if isinstance(op["time"], int):
                op["time"] = shared_time  # the ops of a round share their time
            fields = tuple(op.get(k) for k in FIELDS)
            records.append(fields)
            expected.append(op_to_json_line(dict(zip(FIELDS, fields, strict=True))))
    assert records_text(records) == "".join(expected)


def test_equal_keys_of_other_types_never_share_a_remembered_text() -> None:
    # 1, 1.0 and True are equal dict keys; their lines must still differ.
    for key in (1, 1.0, True, 1, True):
        for process in (2, True, 2):
            for node in ("n1", 1, "n1"):
                op = {"index": 0, "time": 5, "type": "ok", "process": process, "f": "r",
                      "value": 1, "key": key, "node": node}  # fmt: skip
                assert op_line(op) == op_to_json_line(op)


def test_usual_ops() -> None:
    inv = {"index": 7, "time": 123456789, "type": "invoke", "process": 3, "f": "cas",
           "value": [1, 2], "key": 4, "node": "n4"}  # fmt: skip
    assert op_line(inv) == (
        '{"index":7,"time":123456789,"type":"invoke","process":3,"f":"cas",'
        '"value":[1,2],"key":4,"node":"n4"}\n'
    )
    nem = {"index": 8, "time": 9, "type": "info", "process": "nemesis", "f": "start",
           "value": {"n1": ["n2"]}, "error": ["x", math.inf]}  # fmt: skip
    assert op_line(nem) == op_to_json_line(nem)
    bad = {"index": 1, "time": 2, "type": "ok", "process": 0, "f": "w", "value": "\udc80"}
    assert op_line(bad) == op_to_json_line(bad)
