"""Dependency inference of the transactional checker on small hand-made histories.

Written for a mutation audit of ``checkers.txn.list_append`` and ``checkers.txn.rw_register``:
each test pins down one promise of the inference (an edge, a version order, an anomaly
record) that the older tests left open. Expectations follow Adya's and Elle's definitions:
ww from the writer of a version to the writer of the next, wr from a writer to a reader of
its version, rw from a reader of a version to the writer of the next.
"""

from __future__ import annotations

from itertools import permutations
from typing import Any

import networkx as nx

from checkers.txn import list_append, rw_register
from checkers.txn.analysis import Analysis
from checkers.txn.graph import REL_NAMES
from checkers.txn.parse import NIL, parse
from harness.history import History

Mop = list[Any]
Row = tuple[int, str, list[Mop]]


def _ops(rows: tuple[Row, ...], serial: bool) -> History:
    ops: list[dict[str, Any]] = []
    invs = []
    for p, _typ, mops in rows:
        inv = [[f, k, None if f == "r" else v] for f, k, v in mops]
        invs.append({"process": p, "type": "invoke", "f": "txn", "value": inv})
    oks = [{"process": p, "type": typ, "f": "txn", "value": mops} for p, typ, mops in rows]
    if serial:
        for i, o in zip(invs, oks, strict=True):
            ops += [i, o]
    else:
        ops = invs + oks
    return History.from_ops(ops)


def serial(*rows: Row) -> History:
    """(process, outcome, mops) transactions, each completing before the next is invoked:
    transaction ``i`` is row ``i``, its completion the history's op ``2 i + 1``."""
    return _ops(rows, True)


def concurrent(*rows: Row) -> History:
    """Every transaction invoked before any completes: transaction ``i`` is row ``i``, its
    completion the history's op ``len(rows) + i``."""
    return _ops(rows, False)


def R(k: Any, v: Any = None) -> Mop:
    return ["r", k, v]


def W(k: Any, v: Any) -> Mop:
    return ["w", k, v]


def A(k: Any, v: Any) -> Mop:
    return ["append", k, v]


def edge_set(an: Analysis) -> set[tuple[int, int, str]]:
    """The analysis's edges as ``(src, dst, relation)``."""
    return {
        (int(a), int(b), REL_NAMES[int(lab)])
        for s, d, labs in an.edges
        for a, b, lab in zip(s.tolist(), d.tolist(), labs.tolist(), strict=True)
    }


def rw_analysis(h: History, **kw: Any) -> Analysis:
    # no ``tick``: analyze must work with its defaults
    return rw_register.analyze(parse(h, "rw-register"), **kw)


def la_analysis(h: History) -> Analysis:
    return list_append.analyze(parse(h, "list-append"))


# --- rw-register ----------------------------------------------------------------------------


def test_rw_lost_update_is_two_committed_transactions_reading_then_writing_one_version() -> None:
    h = concurrent(
        (0, "ok", [W("x", 1)]),
        (1, "ok", [R("x", 1), W("x", 2)]),
        (2, "ok", [R("x", 1), W("x", 3)]),
        (3, "ok", [R("x", 1), W("y", 1)]),  # read x = 1 but wrote another key
        (4, "fail", [R("x", 1), W("x", 4)]),  # aborted: no update was lost to it
        (5, "ok", [R("z", None), W("z", 1)]),  # alone on z
    )
    an = rw_analysis(h)
    assert an.anomalies["lost-update"] == [{"key": "x", "value": 1, "ops": [7, 8]}]


def test_rw_blind_writes_alone_give_no_ww_or_rw_edge() -> None:
    h = concurrent(
        (0, "ok", [W("x", 1)]),
        (1, "ok", [R("x", 1), W("x", 2), W("y", 5)]),
        (2, "ok", [R("x", 1), R("y", 5)]),
    )
    assert edge_set(rw_analysis(h)) == {(0, 1, "wr"), (0, 2, "wr"), (1, 2, "wr")}


def test_rw_wfr_keys_puts_a_read_version_before_the_readers_own_write() -> None:
    # with wfr: x = 1 precedes x = 2 (T1 read 1, then wrote 2), so T2, which read x = 1,
    # anti-depends on T1; T1's write of 2 follows T0's write of 1
    h = concurrent(
        (0, "ok", [W("x", 1)]),
        (1, "ok", [R("x", 1), W("x", 2), W("y", 5)]),
        (2, "ok", [R("x", 1), R("y", 5)]),
    )
    got = edge_set(rw_analysis(h, wfr_keys=True))
    assert got == {(0, 1, "wr"), (0, 2, "wr"), (1, 2, "wr"), (0, 1, "ww"), (2, 1, "rw")}


def test_rw_sequential_keys_orders_a_process_successive_versions() -> None:
    h = serial(
        (0, "ok", [W("x", 1)]),
        (2, "fail", [R("x", 1), W("y", 1)]),  # aborted: no edges at all
        (1, "ok", [R("x", 1)]),
        (0, "ok", [W("x", 2)]),
    )
    assert edge_set(rw_analysis(h)) == {(0, 2, "wr")}
    got = edge_set(rw_analysis(h, sequential_keys=True))
    assert got == {(0, 2, "wr"), (0, 3, "ww"), (2, 3, "rw")}


def test_rw_wfr_keys_ignores_transactions_that_may_not_have_happened() -> None:
    # T1 (info) read 1 and wrote 2, but nobody saw 2: it may never have run (and what an
    # info transaction read is unknown)
    h = concurrent((0, "ok", [W("x", 1)]), (1, "info", [R("x", 1), W("x", 2)]),
                   (2, "ok", [R("x", 1)]))  # fmt: skip
    assert edge_set(rw_analysis(h, wfr_keys=True)) == {(0, 2, "wr")}


def test_rw_linearizable_keys_orders_versions_by_real_time_as_plain_ww() -> None:
    h = serial((0, "ok", [W("x", 1)]), (1, "ok", [W("x", 2)]), (2, "ok", [R("x", 2)]))
    assert edge_set(rw_analysis(h)) == {(1, 2, "wr")}
    assert edge_set(rw_analysis(h, linearizable_keys=True)) == {(1, 2, "wr"), (0, 1, "ww")}


def test_rw_realtime_versions_give_realtime_labelled_edges_only_when_asked() -> None:
    # T0 ended before T1 began: under strict serializability 1 precedes 2
    h = serial((0, "ok", [W("x", 1)]), (1, "ok", [W("x", 2)]), (2, "ok", [R("x", 2)]))
    assert edge_set(rw_analysis(h)) == {(1, 2, "wr")}
    got = edge_set(rw_analysis(h, realtime_versions=True))
    assert got == {(1, 2, "wr"), (0, 1, "realtime")}


def test_rw_version_edges_to_uncommitted_or_unwritten_values_give_no_edges() -> None:
    # process 0's write of 1 then read of 7 (nobody wrote it) or 9 (an aborted write):
    # sequential order makes 1 precede them, but they are no committed versions
    h = serial(
        (1, "fail", [W("x", 9)]),
        (0, "ok", [W("x", 1)]),
        (0, "ok", [R("x", 7)]),
        (0, "ok", [R("x", 9)]),
    )
    an = rw_analysis(h, sequential_keys=True)
    assert {"garbage-read", "G1a"} <= set(an.anomalies)
    assert edge_set(an) == set()


def test_rw_realtime_versions_give_rw_edges_from_committed_readers_only() -> None:
    h = serial(
        (0, "ok", [W("x", 1)]),
        (3, "fail", [R("x", 1)]),  # aborted: no edges at all
        (1, "ok", [R("x", 1)]),
        (2, "ok", [W("x", 2)]),
    )
    got = {e for e in edge_set(rw_analysis(h, realtime_versions=True)) if e[2] != "wr"}
    assert got == {(0, 3, "realtime"), (2, 3, "realtime")}


def test_rw_cyclic_versions_names_the_values_on_the_cycle() -> None:
    # process 0 wrote 2, 1, then 3; process 1 then read 1, then 2: contradictory orders
    # of 1 and 2 (3 is on no cycle)
    h = serial((0, "ok", [W("x", 2)]), (0, "ok", [W("x", 1)]), (0, "ok", [W("x", 3)]),
               (1, "ok", [R("x", 1)]), (1, "ok", [R("x", 2)]))  # fmt: skip
    rec = rw_analysis(h, sequential_keys=True).anomalies["cyclic-versions"]
    assert rec == [{"key": "x", "scc": [1, 2], "sources": ["initial-state", "sequential"]}]


def test_rw_a_value_written_twice_by_one_transaction_is_no_duplicate_write() -> None:
    h = serial((0, "ok", [W("x", 1), W("x", 1)]), (1, "ok", [R("x", 1)]))
    assert edge_set(rw_analysis(h)) == {(0, 1, "wr")}


def test_rw_g1b_when_the_first_transaction_reads_an_intermediate_value() -> None:
    h = concurrent((0, "ok", [R("x", 1)]), (1, "ok", [W("x", 1), W("x", 2)]))
    an = rw_analysis(h)
    assert an.anomalies["G1b"] == [{"op": 2, "writer": 3, "key": "x", "value": 1}]
    assert edge_set(an) == set()


def test_rw_must_happen_is_ok_and_info_transactions_whose_writes_were_read() -> None:
    h = concurrent(
        (0, "info", [W("x", 1)]),
        (1, "info", [W("x", 2)]),
        (2, "ok", [R("x", 1), R("y", 3)]),
        (3, "fail", [W("y", 3)]),
    )
    an = rw_analysis(h)
    assert an.must_happen is not None
    assert an.must_happen.tolist() == [True, False, True, False]


def test_rw_candidates_are_every_order_of_unordered_blind_writes_within_the_limit() -> None:
    h = concurrent((0, "ok", [W("x", 1)]), (1, "ok", [W("x", 2)]), (2, "ok", [W("x", 3)]))
    versions = rw_analysis(h).versions
    x = 0  # the only key's id
    orders = versions.candidates(6)
    assert sorted(tuple(o[x]) for o in orders) == sorted(
        (NIL, *p) for p in ((1, 2, 3), (1, 3, 2), (2, 1, 3), (2, 3, 1), (3, 1, 2), (3, 2, 1))
    )
    assert versions.candidates(5) is None
    assert versions.candidates(2) is None


def test_rw_candidates_hold_only_versions_that_must_exist() -> None:
    # T0 is info and unread: its 1 may never have been written
    h = concurrent((0, "info", [W("x", 1)]), (1, "ok", [W("x", 2)]))
    assert rw_analysis(h).versions.candidates(10) == [{0: [NIL, 2]}]
    # a garbage value that realtime order puts before 1 is no version either
    h = serial((0, "ok", [R("x", 7)]), (1, "ok", [W("x", 1)]))
    assert rw_analysis(h, realtime_versions=True).versions.candidates(10) == [{0: [NIL, 1]}]
    # ... nor one that process order puts after 1
    h = serial((0, "ok", [W("x", 1)]), (0, "ok", [R("x", 7)]))
    assert rw_analysis(h, sequential_keys=True).versions.candidates(10) == [{0: [NIL, 1]}]


def test_rw_chain_edges_of_a_total_order() -> None:
    h = concurrent(
        (0, "ok", [R("x", 1)]),
        (1, "fail", [R("x", 1)]),
        (2, "ok", [W("x", 1)]),
        (3, "ok", [W("x", 2)]),
    )
    ww, rw = rw_analysis(h).versions.chain_edges({0: [NIL, 1, 2]})
    an = Analysis(edges=[ww, rw])
    assert edge_set(an) == {(2, 3, "ww"), (0, 3, "rw")}


def test_rw_candidates_follow_realtime_versions() -> None:
    # T0 ended before T1 began: strict serializability leaves the one order nil, 1, 2
    h = serial((0, "ok", [W("x", 1)]), (1, "ok", [W("x", 2)]))
    assert len(rw_analysis(h).versions.candidates(10)) == 2
    assert rw_analysis(h, realtime_versions=True).versions.candidates(10) == [{0: [NIL, 1, 2]}]


def test_rw_linear_extensions_of_unordered_versions_up_to_the_limit() -> None:
    g = nx.DiGraph()
    g.add_nodes_from([1, 2, 3])
    exts = rw_register._linear_extensions(g, 6)
    assert exts is not None and sorted(map(tuple, exts)) == sorted(permutations([1, 2, 3]))
    assert rw_register._linear_extensions(g, 5) is None


def test_rw_linear_extensions_of_larger_graphs() -> None:
    # more than seven versions: a chain of eight and one version unordered with them
    g = nx.DiGraph(list(zip(range(7), range(1, 8), strict=True)))
    g.add_node(8)
    exts = rw_register._linear_extensions(g, 100)
    assert exts is not None and len(exts) == 9
    assert all([v for v in e if v != 8] == list(range(8)) for e in exts)
    assert rw_register._linear_extensions(g, 9) == exts
    assert rw_register._linear_extensions(g, 8) is None
    g.add_edge(7, 0)
    assert rw_register._linear_extensions(g, 100) == []
