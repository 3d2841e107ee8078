"""Key groups for checks on Dask: the shared-memory layout gives each unit exactly the
sub-history that cutting it from the history gives, and the units cover every client
call once (the units' own logic; the Dask tests check verdicts on a real cluster)."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.history import History
from harness.key_units import key_groups, split_by_key, unit_layout
from harness.shared_history import share_history


def _history() -> History:
    ops: list[dict[str, Any]] = []
    for i in range(60):
        p, k = (i % 7 if i % 11 != 3 else 100 + i), f"k{i % 5}"
        ops.append({"type": "invoke", "process": p, "f": "write", "key": k, "value": i})
        if i % 11 == 3:
            continue  # never completes (its process does nothing more)
        ops.append({"type": "ok" if i % 4 else "info", "process": p, "f": "write", "key": k,
                    "value": i, "error": "timeout" if i % 4 == 0 else None})  # fmt: skip
        if i % 13 == 0:
            ops.append({"type": "info", "process": "nemesis", "f": "kill", "value": ["n1"]})
    ops.append({"type": "invoke", "process": 9, "f": "read", "value": None})  # no key
    ops.append({"type": "ok", "process": 9, "f": "read", "value": 3})
    return History.from_ops(ops)


def _ops(h: History) -> list[Any]:
    return [(op.to_dict(), int(h.pair[i]), int(h.line[i])) for i, op in enumerate(h)]


def test_shared_units_equal_the_cut_sub_histories() -> None:
    h = _history()
    groups = key_groups(h, 3)
    assert len(groups) == 3
    shared = share_history(h, groups)
    try:
        for u, sub in enumerate(split_by_key(h, 3)):
            assert _ops(shared.unit(u)) == _ops(sub)
    finally:
        shared.remove()


def test_units_cover_every_client_call_once() -> None:
    h = _history()
    groups = key_groups(h, 4)
    rows, offsets = unit_layout(h, groups)
    client_rows = np.flatnonzero(h.process >= 0)
    assert sorted(rows.tolist()) == client_rows.tolist()
    for u in range(len(groups)):
        part = rows[offsets[u] : offsets[u + 1]]
        assert (np.diff(part) > 0).all()
        keys = {h.key_of(int(i)) for i in part}
        assert len(keys & {h.key_of(int(i)) for i in rows[: offsets[u]]}) == 0
