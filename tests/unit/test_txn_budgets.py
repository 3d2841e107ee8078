"""Budgets of the transactional checker: bounded search in large components, no hangs."""

from __future__ import annotations

import time
from typing import Any

from checkers.txn import check
from checkers.txn.cycles import SPEC_BY_NAME, Subgraph, Timeout, find_cycle
from harness.history import History


def ring(n: int) -> History:
    """n concurrent transactions, each reading the key the next one appends (an n-cycle of
    rw edges: G2-item) plus a final read of every key."""
    ops: list[dict[str, Any]] = []
    mops = [[["r", i, None], ["append", (i + 1) % n, 1]] for i in range(n)]
    ops += [{"process": p, "type": "invoke", "f": "txn", "value": mops[p]} for p in range(n)]
    ops += [{"process": p, "type": "ok", "f": "txn", "value": mops[p]} for p in range(n)]
    final = [["r", i, [1]] for i in range(n)]
    ops.append({"process": n, "type": "invoke", "f": "txn", "value": final})
    ops.append({"process": n, "type": "ok", "f": "txn", "value": final})
    return History.from_ops(ops)


def test_large_ring_is_found() -> None:
    r = check(ring(300), "list-append", "serializable")
    assert r.valid is False
    assert r.details["anomalies"] == ["G2-item"]
    rec = r.details["anomaly_details"]["G2-item"][0]
    assert len(rec["cycle"]) == 301


def test_tiny_scc_time_limit_answers_unknown() -> None:
    # how fast it answers is measured by bench/txn_budgets.py, not asserted here
    r = check(ring(300), "list-append", "serializable", scc_time_limit=1e-9)
    assert r.valid == "unknown"
    assert r.details["unknown"][0]["type"] == "cycle-search-timeout"
    assert "ran out of time" in (r.cause or "")


def test_overall_time_limit_is_counted_from_the_first_phase() -> None:
    r = check(ring(50), "list-append", "serializable", time_limit=1e-9)
    assert r.valid == "unknown"
    assert r.details["unknown"] == [{"type": "budget", "phase": "parse", "resource": "time"}]
    assert "ran out of time in the parse phase" in (r.cause or "")


def test_spent_budget_skips_remaining_components() -> None:
    from checkers.txn.budget import Budget
    from checkers.txn.check import _search
    from checkers.txn.cycles import specs_for
    from checkers.txn.graph import RW, WR, WW, build_graph
    from checkers.txn.list_append import analyze
    from checkers.txn.parse import parse

    tx = parse(ring(50), "list-append")
    g = build_graph(tx.n, analyze(tx).edges)
    _, comp = g.sccs()
    spent = Budget(time.perf_counter() - 10, 1.0, None)
    found, unknowns, _, _ = _search(g.csr, comp, specs_for({"G2-item"}, WW | WR | RW),
                                    WW | WR | RW, spent, 1.0, 8)  # fmt: skip
    assert found == {}
    assert unknowns == [{"type": "cycle-search-timeout", "anomaly": "all",
                         "sccs_not_searched": 1}]  # fmt: skip


def test_memory_budget_answers_unknown_naming_the_phase() -> None:
    r = check(ring(50), "list-append", "serializable", max_memory=1)
    assert r.valid == "unknown"
    assert r.details["unknown"][0]["resource"] == "memory"
    assert "ran out of memory in the parse phase" in (r.cause or "")


def test_find_cycle_honours_its_deadline() -> None:
    import numpy as np

    from checkers.txn.graph import build_graph
    from checkers.txn.list_append import analyze
    from checkers.txn.parse import parse

    tx = parse(ring(200), "list-append")
    g = build_graph(tx.n, analyze(tx).edges)
    sub = Subgraph(g.csr, np.arange(200))
    try:
        find_cycle(sub, SPEC_BY_NAME["G-single-item"], time.monotonic() - 1)
    except Timeout:
        pass
    else:
        raise AssertionError("expected a timeout")


def test_max_cycles_caps_reported_cycles() -> None:
    ops: list[dict[str, Any]] = []
    for i in range(6):  # six independent write skews
        a, b = 2 * i, 2 * i + 1
        t1 = [["r", a, None], ["append", b, 1]]
        t2 = [["r", b, None], ["append", a, 1]]
        ops += [{"process": 0, "type": "invoke", "f": "txn", "value": t1},
                {"process": 1, "type": "invoke", "f": "txn", "value": t2},
                {"process": 0, "type": "ok", "f": "txn", "value": t1},
                {"process": 1, "type": "ok", "f": "txn", "value": t2}]  # fmt: skip
    h = History.from_ops(ops)
    assert check(h).details["anomaly_counts"]["G2-item"] == 6
    r = check(h, max_cycles=2)
    assert r.details["anomaly_counts"]["G2-item"] == 2
    assert len(r.details["explanations"]) == 2
