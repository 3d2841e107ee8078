"""The transactional checker's driver (``checkers.txn.check``) on small hand-made histories.

Written for a mutation audit of ``checkers.txn.check``: each test pins down one promise of
the driver (limits, budgets, quotas, components searched here or by a unit map, the proof
of validity, the verdict's details) that the older tests left open. Expectations follow the
documented behaviour and Adya's and Elle's anomaly definitions, not the code's output.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from checkers.txn import check
from checkers.txn.cycles import Subgraph
from checkers.txn.graph import RW, WR, WW, build_graph, edges
from harness.history import History

CHECK = importlib.import_module("checkers.txn.check")

Mop = list[Any]
Row = tuple[int, str, list[Mop]]


def serial(*rows: Row) -> History:
    """(process, outcome, mops) transactions, each completing before the next is invoked."""
    ops: list[dict[str, Any]] = []
    for p, typ, mops in rows:
        inv = [[f, k, None if f == "r" else v] for f, k, v in mops]
        ops.append({"process": p, "type": "invoke", "f": "txn", "value": inv})
        ops.append({"process": p, "type": typ, "f": "txn", "value": mops})
    return History.from_ops(ops)


def concurrent(*rows: Row) -> History:
    """Every transaction invoked before any completes."""
    ops: list[dict[str, Any]] = []
    for p, _typ, mops in rows:
        inv = [[f, k, None if f == "r" else v] for f, k, v in mops]
        ops.append({"process": p, "type": "invoke", "f": "txn", "value": inv})
    for p, typ, mops in rows:
        ops.append({"process": p, "type": typ, "f": "txn", "value": mops})
    return History.from_ops(ops)


def R(k: Any, v: Any = None) -> Mop:
    return ["r", k, v]


def A(k: Any, v: Any) -> Mop:
    return ["append", k, v]


def W(k: Any, v: Any) -> Mop:
    return ["w", k, v]


def skews(n: int) -> History:
    """``n`` independent write skews (G2-item), each its own component: in skew ``i``,
    T(2i) reads key 2i empty and appends to 2i+1, T(2i+1) the other way round."""
    ops: list[dict[str, Any]] = []
    for i in range(n):
        a, b = 2 * i, 2 * i + 1
        t1 = [R(a, None), A(b, 1)]
        t2 = [R(b, None), A(a, 1)]
        ops += [{"process": 0, "type": "invoke", "f": "txn", "value": t1},
                {"process": 1, "type": "invoke", "f": "txn", "value": t2},
                {"process": 0, "type": "ok", "f": "txn", "value": t1},
                {"process": 1, "type": "ok", "f": "txn", "value": t2}]  # fmt: skip
    return History.from_ops(ops)


def write_skew_graph() -> tuple[Subgraph, int]:
    """Two transactions anti-depending on each other (rw both ways): one component."""
    g = build_graph(2, [edges([0], [1], RW), edges([1], [0], RW)])
    return Subgraph(g.csr, np.arange(2)), WW | WR | RW


def test_a_search_timeout_is_listed_once_among_the_unknowns() -> None:
    # 40 transactions each read the key the next appends, in a ring: one big G2 component
    n = 40
    rows: list[Row] = [(i, "ok", [R(i, None), A((i + 1) % n, 1)]) for i in range(n)]
    r = check(concurrent(*rows), scc_time_limit=1e-9)
    assert r.valid == "unknown"
    assert r.details["unknown"] == [{"type": "cycle-search-timeout", "anomaly": "G-single-item",
                                     "scc_size": n}]  # fmt: skip


def test_units_a_unit_map_did_not_return_are_counted_as_not_searched() -> None:
    seen: dict[str, Any] = {}

    def first_two(
        fn: Callable[[Any], Any], units: Sequence[Any], *, seconds: float | None
    ) -> Iterator[tuple[int, Any]]:
        seen["seconds"] = seconds
        for i, u in enumerate(units[:2]):
            yield i, fn(u)

    r = check(skews(5), unit_map=first_two)
    assert r.valid is False and r.details["anomaly_counts"] == {"G2-item": 2}
    assert r.details["unknown"] == [{"type": "cycle-search-timeout", "anomaly": "all",
                                     "sccs_not_searched": 3}]  # fmt: skip
    assert 0 < seen["seconds"] <= 60.0  # what is left of the default time limit
    check(skews(5), unit_map=first_two, time_limit=None)
    assert seen["seconds"] is None
