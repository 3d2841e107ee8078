"""Dependency inference of the transactional checker on small hand-made histories.

Written for a mutation audit of ``checkers.txn.list_append`` and ``checkers.txn.rw_register``:
each test pins down one promise of the inference (an edge, a version order, an anomaly
record) that the older tests left open. Expectations follow Adya's and Elle's definitions:
ww from the writer of a version to the writer of the next, wr from a writer to a reader of
its version, rw from a reader of a version to the writer of the next.
"""

from __future__ import annotations

import random
from itertools import permutations
from typing import Any

import networkx as nx
import pytest

from checkers.txn import check, list_append, rw_register
from checkers.txn.analysis import Analysis
from checkers.txn.graph import REL_NAMES
from checkers.txn.oracle import random_history
from checkers.txn.parse import NIL, TxnFormatError, parse
from harness.history import History
from tests.unit.txn_histories import A, R, Row, W, concurrent, serial, txn_ops


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


# --- list-append ----------------------------------------------------------------------------


def test_la_edges_of_a_read_version_order() -> None:
    h = concurrent(
        (0, "ok", [A("x", 1)]),
        (1, "ok", [A("x", 2)]),
        (2, "ok", [R("x", [1])]),
        (3, "ok", [R("x", [1, 2])]),
        (4, "ok", [R("x", [])]),
    )
    assert edge_set(la_analysis(h)) == {
        (0, 2, "wr"), (1, 3, "wr"),  # writer of a read's last element → reader
        (0, 1, "ww"),  # writer of the predecessor → appender
        (4, 0, "rw"), (2, 1, "rw"),  # readers of the predecessor state → appender
    }  # fmt: skip


def test_la_an_append_no_read_shows_comes_after_every_observed_one() -> None:
    h = concurrent((0, "ok", [A("x", 1)]), (1, "ok", [A("x", 2)]), (2, "ok", [R("x", [1])]))
    assert edge_set(la_analysis(h)) == {(0, 2, "wr"), (0, 1, "ww"), (2, 1, "rw")}


def test_la_an_incompatible_read_is_placed_by_its_last_element() -> None:
    # T4 read [2], which misses 1: it still read the version that 2 made, so it did not
    # see 3 (rw T4 → T2) and saw T1's append (wr T1 → T4)
    h = concurrent(
        (0, "ok", [A("x", 1)]),
        (1, "ok", [A("x", 2)]),
        (2, "ok", [A("x", 3)]),
        (3, "ok", [R("x", [1, 2, 3])]),
        (4, "ok", [R("x", [2])]),
    )
    an = la_analysis(h)
    assert (1, 4, "wr") in edge_set(an) and (4, 2, "rw") in edge_set(an)
    assert [r["ops"] for r in an.anomalies["incompatible-order"]] == [[9, 8]]
    assert "duplicate-elements" not in an.anomalies


def test_la_an_incompatible_read_ending_with_the_first_version_is_placed_there() -> None:
    h = concurrent(
        (0, "ok", [A("x", 1)]),
        (1, "ok", [A("x", 2)]),
        (2, "ok", [R("x", [1, 2])]),
        (3, "ok", [R("x", [2, 1])]),
    )
    assert (3, 1, "rw") in edge_set(la_analysis(h))


def test_la_a_read_ending_with_an_element_nobody_appended_has_no_version() -> None:
    h = concurrent(
        (0, "ok", [A("x", 1)]),
        (1, "ok", [A("x", 2)]),
        (2, "ok", [R("x", [1, 2])]),
        (3, "ok", [R("x", [9])]),
        (4, "ok", [R("x", [1, 9])]),
    )
    assert not {e for e in edge_set(la_analysis(h)) if 3 in e[:2] or 4 in e[:2]}


def test_la_an_element_nobody_appended_writes_no_version() -> None:
    # the order of x is [9 1]: 9 has no writer, so T1's append of 1 follows nobody
    h = concurrent((0, "ok", [A("y", 5)]), (1, "ok", [A("x", 1)]), (2, "ok", [R("x", [9, 1])]))
    assert edge_set(la_analysis(h)) == {(1, 2, "wr")}


def test_la_aborted_and_garbage_elements_of_incompatible_reads() -> None:
    h = concurrent(
        (0, "ok", [A("x", 1)]),
        (1, "fail", [A("x", 2)]),
        (2, "ok", [A("x", 3)]),
        (3, "ok", [R("x", [1, 3])]),
        (4, "ok", [R("x", [2, 9])]),  # reads aborted 2 (first bad element: only that)
        (5, "ok", [R("x", [9, 2])]),  # nobody appended 9 (first bad element: only that)
        (6, "ok", [R("x", [3, 1])]),  # out of order, but every element committed
    )
    an = la_analysis(h)
    assert an.anomalies["G1a"] == [{"op": 11, "writer": 8, "key": "x", "element": 2}]
    assert an.anomalies["garbage-read"] == [{"op": 12, "key": "x", "element": 9}]


def test_la_a_read_with_repeated_elements_but_in_order_is_no_incompatible_order() -> None:
    h = concurrent(
        (0, "ok", [A("x", 1)]),
        (1, "ok", [A("x", 2)]),
        (2, "ok", [R("x", [1, 2])]),
        (3, "ok", [R("x", [1, 1])]),
    )
    an = la_analysis(h)
    assert "incompatible-order" not in an.anomalies
    assert an.anomalies["duplicate-elements"] == [
        {"op": 7, "key": "x", "value": [1, 1], "duplicates": [1]}
    ]
    # [1, 1] read the version 1 made: it missed 2
    assert (3, 1, "rw") in edge_set(an)


def test_la_a_shorter_read_of_a_key_with_repeated_elements_is_placed_without_them() -> None:
    # the longest read [1 2 1 3] gives the order [1 2 3]; [1 2 1] read the version 2 made
    h = concurrent(
        (0, "ok", [A("x", 1)]),
        (1, "ok", [A("x", 2)]),
        (2, "ok", [A("x", 3)]),
        (3, "ok", [R("x", [1, 2, 1, 3])]),
        (4, "ok", [R("x", [1, 2, 1])]),
    )
    assert (4, 2, "rw") in edge_set(la_analysis(h))


def test_la_a_failed_append_gives_no_edges_and_a_dirty_update() -> None:
    h = concurrent(
        (0, "fail", [A("x", 1)]),
        (1, "ok", [A("x", 2)]),
        (2, "ok", [R("x", [1, 2])]),
    )
    an = la_analysis(h)
    assert edge_set(an) == {(1, 2, "wr")}
    assert an.anomalies["dirty-update"] == [
        {"key": "x", "failed": 3, "committed": 4, "elements": [1, 2]}
    ]


def test_la_dirty_update_skips_appends_of_unknown_outcome_but_not_keys() -> None:
    h = concurrent(
        (0, "fail", [A("x", 1)]),
        (1, "info", [A("x", 2)]),
        (2, "ok", [A("x", 3), A("y", 1)]),
        (3, "ok", [A("x", 4)]),
        (4, "fail", [A("y", 2)]),
        (5, "ok", [R("x", [1, 2, 3, 4]), R("y", [1, 2])]),
        (6, "fail", [A("z", 1)]),
        (7, "ok", [R("z", [1, 9])]),  # 9: appended by nobody, committed by nobody
        (8, "fail", [A("w", 1)]),
        (9, "ok", [A("w", 2)]),
        (10, "ok", [R("w", [1, 9, 2])]),
    )
    an = la_analysis(h)
    # x: failed 1, then (info 2), committed 3; y ends with a failed append, z with garbage;
    # w: failed 1, then (garbage 9), committed 2
    assert an.anomalies["dirty-update"] == [
        {"key": "x", "failed": 11, "committed": 13, "elements": [1, 3]},
        {"key": "w", "failed": 19, "committed": 20, "elements": [1, 2]},
    ]


def test_la_lost_update_is_per_key() -> None:
    # T0 and T1 each read an empty list and appended, but to different keys
    h = concurrent(
        (0, "ok", [R("x", []), A("x", 1)]),
        (1, "ok", [R("y", []), A("y", 1)]),
        (2, "ok", [A("x", 2)]),
        (3, "ok", [R("x", [1, 2]), R("y", [1])]),
    )
    assert "lost-update" not in la_analysis(h).anomalies


def test_la_lost_update_names_the_version_and_only_its_readers() -> None:
    h = concurrent(
        (0, "ok", [A("x", 1)]),
        (1, "ok", [A("x", 2)]),
        (2, "ok", [R("x", [1, 2]), A("x", 3)]),
        (3, "ok", [R("x", [1, 2]), A("x", 4)]),
        (4, "ok", [R("y", []), A("y", 1)]),  # alone on y
        (5, "ok", [R("x", [1, 2, 3])]),
    )
    assert la_analysis(h).anomalies["lost-update"] == [{"key": "x", "value": [1, 2], "ops": [8, 9]}]


def test_la_must_happen_is_ok_and_info_transactions_whose_appends_were_read() -> None:
    h = concurrent(
        (0, "info", [A("x", 1)]),
        (1, "info", [A("x", 2)]),
        (2, "ok", [R("x", [1])]),
        (3, "fail", [A("y", 1)]),
    )
    an = la_analysis(h)
    assert an.must_happen is not None
    assert an.must_happen.tolist() == [True, False, True, False]


def _la_histories() -> list[list[dict[str, Any]]]:
    rng = random.Random(7)
    out = [random_history(rng, "list-append", max_txns=6) for _ in range(300)]
    # one with more keys and longer lists, perturbed reads included
    out.append(random_history(rng, "list-append", max_txns=40, keys=("a", "b", "c", "d")))
    # repeated elements (no random history has them)
    for read in ([1, 2, 2], [2, 1, 1, 3], [3, 3]):
        rows: tuple[Row, ...] = (
            (0, "ok", [A("x", 1), A("y", 1)]), (1, "ok", [A("x", 2)]), (2, "ok", [A("x", 3)]),
            (3, "ok", [R("x", read), R("y", [1, 1])]), (4, "ok", [R("x", [1])]),
        )  # fmt: skip
        out.append(txn_ops(rows, False))
    return out


def test_la_sparse_code_tables_give_the_dense_tables_analysis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Large histories index their (key, element) and (key, position) codes with sorted
    arrays instead of dense tables: the analysis must not depend on which."""
    dense = []
    for ops in _la_histories():
        an = la_analysis(History.from_ops(ops))
        dense.append((edge_set(an), an.anomalies))
    monkeypatch.setattr(list_append, "DENSE_FACTOR", 0)
    monkeypatch.setattr(list_append, "DENSE_MIN", 0)
    for ops, want in zip(_la_histories(), dense, strict=True):
        an = la_analysis(History.from_ops(ops))
        assert (edge_set(an), an.anomalies) == want, ops


def test_la_elements_spread_over_the_whole_int64_range_give_the_same_analysis() -> None:
    """Elements too far apart to pack with their key into one int64 are mapped to dense
    ids first: only the element values in the records change."""
    far = 2**62  # 1 stays, every other element e becomes e + 2**62: no room left to pack

    def spread(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        def el(e: Any) -> Any:
            return e if e == 1 else e + far

        out = []
        for o in ops:
            mops = [[f, k, [el(e) for e in v] if f == "r" and v else v if f == "r" else el(v)]
                    for f, k, v in o["value"]]  # fmt: skip
            out.append({**o, "value": mops})
        return out

    def negative(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for o in ops:
            mops = [[f, k, [-e for e in v] if f == "r" and v else v if f == "r" else -v]
                    for f, k, v in o["value"]]  # fmt: skip
            out.append({**o, "value": mops})
        return out

    for ops in _la_histories():
        a = la_analysis(History.from_ops(ops))
        counts = {name: len(recs) for name, recs in a.anomalies.items()}
        for other in (spread(ops), negative(ops)):
            b = la_analysis(History.from_ops(other))
            assert edge_set(a) == edge_set(b), ops
            assert {name: len(recs) for name, recs in b.anomalies.items()} == counts, ops


def test_la_out_of_order_appends_are_all_counted_and_the_first_ones_detailed() -> None:
    n = list_append.MAX_RECORDS + 2
    rows: list[Row] = [(t, "ok", [A("x", 2 * t), A("x", 2 * t + 1)]) for t in range(n)]
    seen = [e for t in range(n) for e in (2 * t + 1, 2 * t)]  # each pair read backwards
    rows.append((n, "ok", [R("x", seen)]))
    recs = la_analysis(concurrent(*rows)).anomalies["out-of-order-appends"]
    assert [r["op"] for r in recs] == [n + 1 + t for t in range(n)]
    assert all(r["appended"] == [2 * t, 2 * t + 1] for t, r in enumerate(recs[:-2]))
    assert [set(r) for r in recs[-2:]] == [{"op", "key"}] * 2


def test_la_out_of_order_appends_name_their_key() -> None:
    h = concurrent(
        (0, "ok", [A("x", 1)]),
        (1, "ok", [A("x", 2)]),
        (2, "ok", [A("x", 3), A("y", 1), A("y", 2)]),
        (3, "ok", [R("x", [1, 2, 3]), R("y", [2, 1])]),
    )
    recs = la_analysis(h).anomalies["out-of-order-appends"]
    assert [(r["op"], r["key"], r["appended"]) for r in recs] == [(6, "y", [1, 2])]


def test_la_a_repeated_element_is_dropped_from_the_version_order() -> None:
    # the longest read [1 1 2] gives the order [1 2]: T3, which read [1], missed 2
    h = concurrent(
        (0, "ok", [A("x", 1)]),
        (1, "ok", [A("x", 2)]),
        (2, "ok", [R("x", [1, 1, 2])]),
        (3, "ok", [R("x", [1])]),
    )
    an = la_analysis(h)
    assert (3, 1, "rw") in edge_set(an)
    assert "incompatible-order" not in an.anomalies


def test_la_an_element_appended_twice_is_a_format_error_naming_both_ops() -> None:
    h = concurrent((0, "ok", [A("x", 1)]), (1, "ok", [A("x", 2)]), (2, "ok", [A("x", 2)]))
    with pytest.raises(TxnFormatError, match=r"appended to key 'x' twice \(ops 4 and 5\)"):
        la_analysis(h)


def test_la_a_read_with_repeated_elements_is_one_duplicate_elements_anomaly() -> None:
    # the longest read of x repeats 2 (not its smallest element): one read, one record
    h = concurrent((0, "ok", [A("x", 1)]), (1, "ok", [A("x", 2)]), (2, "ok", [R("x", [1, 2, 2])]))
    assert la_analysis(h).anomalies["duplicate-elements"] == [
        {"op": 5, "key": "x", "value": [1, 2, 2], "duplicates": [2]}
    ]
    assert check(h, "list-append").details["anomaly_counts"]["duplicate-elements"] == 1
