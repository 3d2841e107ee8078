"""Bad input never crashes clew: each case is a clear error naming file and line (exit
254) or a correct verdict (issue 11, part 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from checkers.txn import check as txn_check
from harness.history import History


def write_jsonl(path: Path, ops: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(op) + "\n" for op in ops))
    return str(path)


def test_rw_register_value_min_int64_is_a_value_not_nil() -> None:
    m = -(2**63)
    h = History.from_ops(
        [
            {"type": "invoke", "process": 0, "f": "txn", "value": [["w", 1, m]]},
            {"type": "ok", "process": 0, "f": "txn", "value": [["w", 1, m]]},
            {"type": "invoke", "process": 0, "f": "txn", "value": [["r", 1, None]]},
            {"type": "ok", "process": 0, "f": "txn", "value": [["r", 1, m]]},
        ]
    )
    assert txn_check(h, "rw-register").valid is True
    assert txn_check(h, "rw-register", "strict-serializable").valid is True


@pytest.mark.parametrize("model", ["list-append", "rw-register"])
def test_a_list_where_a_micro_op_name_belongs_is_named(model: str) -> None:
    h = History.from_ops(
        [
            {"type": "invoke", "process": 0, "f": "txn", "value": [[["r"], 1, None]]},
            {"type": "ok", "process": 0, "f": "txn", "value": [[["r"], 1, [1]]]},
        ]
    )
    r = txn_check(h, model)
    assert r.valid == "unknown"
    assert "unknown micro-op ['r']" in (r.cause or "")
    assert r.cause is not None and r.cause.startswith("#1 p0 ok txn")
