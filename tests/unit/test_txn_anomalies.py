"""The transactional checker on small hand-made histories: one test per anomaly class."""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

import numpy as np
import pytest

from checkers.txn import check
from checkers.txn.cycles import SPEC_BY_NAME, Subgraph, classify, find_cycle, specs_for
from checkers.txn.graph import PROCESS, REALTIME, RW, WR, WW, build_graph, edges
from checkers.txn.lattice import rules_out
from harness.errors import HistoryError
from harness.history import History
from tests.unit.txn_histories import A, Mop, R, concurrent
from tests.unit.txn_histories import serial as txns


def anomalies(h: History, consistency: str = "serializable", **kw: Any) -> list[str]:
    r = check(h, "list-append", consistency, **kw)
    assert (r.valid is False) == bool(r.details["anomalies"]), r.details
    return r.details["anomalies"]


# --- cycles -------------------------------------------------------------------------------


def test_g0_write_cycle() -> None:
    h = concurrent(
        (0, "ok", [A("x", 1), A("y", 1)]),
        (1, "ok", [A("x", 2), A("y", 2)]),
        (2, "ok", [R("x", [1, 2]), R("y", [2, 1])]),
    )
    r = check(h, "list-append", "read-uncommitted")
    assert r.valid is False
    assert r.details["anomalies"] == ["G0"]
    assert "read-uncommitted" in r.details["not"]
    text = r.details["explanations"][0]
    assert "appended 2 after" in text and "a contradiction!" in text


def test_g1c_circular_information_flow() -> None:
    h = concurrent((0, "ok", [A("x", 1), R("y", [1])]), (1, "ok", [A("y", 1), R("x", [1])]))
    assert anomalies(h, "read-committed") == ["G1c"]
    # G1c does not rule out read uncommitted
    assert check(h, "list-append", "read-uncommitted").valid is True
    rec = check(h).details["anomaly_details"]["G1c"][0]
    assert [s["type"] for s in rec["steps"]] == ["wr", "wr"]
    assert rec["cycle"][0] == rec["cycle"][-1]


def test_g_single_read_skew() -> None:
    h = concurrent(
        (0, "ok", [R("x", None), R("y", [1])]),
        (1, "ok", [A("x", 1), A("y", 1)]),
        (2, "ok", [R("x", [1])]),
    )
    assert anomalies(h, "snapshot-isolation") == ["G-single-item"]
    assert anomalies(h, "consistent-view") == ["G-single-item"]
    assert check(h, "list-append", "read-committed").valid is True
    text = check(h).details["explanations"][0]
    assert "observed the initial (empty) state of key 'x'" in text
    assert "T1 observed T2's append of 1 to key 'y'" in text


def test_g_nonadjacent() -> None:
    h = concurrent(
        (0, "ok", [R("x", None), R("w", [1])]),
        (1, "ok", [A("x", 1), A("z", 1)]),
        (2, "ok", [R("z", [1]), R("y", None)]),
        (3, "ok", [A("y", 1), A("w", 1)]),
    )
    assert anomalies(h, "snapshot-isolation") == ["G-nonadjacent-item"]
    assert anomalies(h, "repeatable-read") == ["G-nonadjacent-item"]
    # no G-single: consistent view allows it
    assert check(h, "list-append", "consistent-view").valid is True


def test_g2_item_write_skew() -> None:
    h = concurrent((0, "ok", [R("x", None), A("y", 1)]), (1, "ok", [R("y", None), A("x", 1)]))
    assert anomalies(h, "serializable") == ["G2-item"]
    assert check(h, "list-append", "snapshot-isolation").valid is True
    rec = check(h).details["anomaly_details"]["G2-item"][0]
    assert [s["type"] for s in rec["steps"]] == ["rw", "rw"]


def test_realtime_and_process_variants() -> None:
    # p0 appends x 1 and completes; afterwards p1 and then p0 read x and miss it
    h = txns((0, "ok", [A("x", 1)]), (1, "ok", [R("x", None)]), (2, "ok", [R("x", [1])]))
    assert check(h, "list-append", "serializable").valid is True
    assert anomalies(h, "strict-serializable") == ["G-single-item-realtime"]
    assert "completed at index" in str(check(h, "list-append", "strict-serializable").cause)
    h = txns((0, "ok", [A("x", 1)]), (0, "ok", [R("x", None)]), (2, "ok", [R("x", [1])]))
    assert anomalies(h, "strong-session-serializable") == ["G-single-item-process"]
    r = check(h, "list-append", "strong-session-serializable")
    assert re.search(r"process 0 executed T\d before T\d", r.details["explanations"][0])


def test_g0_realtime() -> None:
    # a write order contradicting real time: T1 finished before T2 began, yet x = [2 1]
    h = txns((0, "ok", [A("x", 1)]), (1, "ok", [A("x", 2)]), (2, "ok", [R("x", [2, 1])]))
    assert check(h, "list-append", "serializable").valid is True
    assert anomalies(h, "strong-read-uncommitted") == ["G0-realtime"]


# --- non-cycle anomalies ------------------------------------------------------------------


def test_g1a_aborted_read() -> None:
    h = txns((0, "fail", [A("x", 1)]), (1, "ok", [R("x", [1])]))
    assert anomalies(h, "read-committed") == ["G1a"]
    assert check(h, "list-append", "read-uncommitted").details["also_found"] == ["G1a"]


def test_g1b_intermediate_read() -> None:
    h = txns((0, "ok", [A("x", 1), A("x", 2)]), (1, "ok", [R("x", [1])]), (2, "ok",
             [R("x", [1, 2])]))  # fmt: skip
    assert anomalies(h, "read-committed") == ["G1b"]


def test_internal_inconsistency() -> None:
    h = txns((0, "ok", [A("x", 1)]), (1, "ok", [R("x", [1]), A("x", 2), R("x", [1])]))
    r = check(h, "list-append", "serializable")
    assert "internal" in r.details["anomalies"]
    assert "read-atomic" in r.details["not"]
    # a known suffix is fine when the prefix is unknown
    ok = txns((0, "ok", [A("x", 1)]), (1, "ok", [A("x", 2), R("x", [1, 2])]))
    assert "internal" not in check(ok).details["anomaly_counts"]


def test_lost_update() -> None:
    h = concurrent(
        (0, "ok", [A("x", 1)]),
        (1, "ok", [R("x", [1]), A("x", 2)]),
        (2, "ok", [R("x", [1]), A("x", 3)]),
        (3, "ok", [R("x", [1, 2])]),
    )
    r = check(h, "list-append", "snapshot-isolation")
    assert "lost-update" in r.details["anomalies"]
    rec = r.details["anomaly_details"]["lost-update"][0]
    assert rec["key"] == "x" and rec["value"] == [1] and len(rec["ops"]) == 2
    assert "cursor-stability" in r.details["not"]


def test_duplicate_elements() -> None:
    h = txns((0, "ok", [A("x", 1)]), (1, "ok", [R("x", [1, 1])]))
    assert "duplicate-elements" in anomalies(h, "read-uncommitted")


def test_incompatible_order() -> None:
    h = concurrent(
        (0, "ok", [A("x", 1)]), (1, "ok", [A("x", 2)]),
        (2, "ok", [R("x", [1, 2])]), (3, "ok", [R("x", [2, 1])]),
    )  # fmt: skip
    r = check(h, "list-append", "read-committed")
    assert "incompatible-order" in r.details["anomalies"]
    assert r.details["anomaly_details"]["incompatible-order"][0]["values"] == [[2, 1], [1, 2]]


def test_future_read_and_garbage_read() -> None:
    h = txns((0, "ok", [R("x", [1]), A("x", 1)]), (1, "ok", [R("x", [1])]))
    assert "future-read" in anomalies(h, "read-committed")
    h = txns((0, "ok", [A("x", 1)]), (1, "ok", [R("x", [1, 9])]))
    assert "garbage-read" in anomalies(h, "read-committed")


def test_lost_write_surfaces_as_a_cycle() -> None:
    # T1's append 2 is never seen, though T3 began after T1 finished: realtime G-single
    h = txns((0, "ok", [A("x", 1)]), (1, "ok", [A("x", 2)]), (2, "ok", [R("x", [1])]))
    assert anomalies(h, "strict-serializable") == ["G-single-item-realtime"]


# --- valid and undecidable histories ------------------------------------------------------


def test_serial_history_is_valid_for_every_model() -> None:
    h = txns(
        (0, "ok", [A("x", 1), R("y", None)]), (1, "ok", [R("x", [1]), A("y", 1)]),
        (0, "ok", [R("x", [1]), R("y", [1]), A("x", 2)]), (2, "info", [A("y", 2)]),
        (1, "ok", [R("x", [1, 2]), R("y", [1, 2])]), (3, "fail", [A("z", 1)]),
    )  # fmt: skip
    for model in ("strict-serializable", "serializable", "snapshot-isolation"):
        r = check(h, "list-append", model)
        assert r.valid is True, r.details
        assert r.details["anomalies"] == [] and r.details["not"] == []


def test_no_dependencies_is_valid_when_a_serial_order_replays() -> None:
    r = check(txns((0, "ok", [A("x", 1)])), "list-append")
    assert r.valid is True, r.cause
    assert r.details["proof"]["valid"] is True
    # no edge at all, but a read that no serial order can give: found, not "unknown"
    r = check(txns((0, "ok", [R("x", [7])])), "list-append")
    assert r.valid is False and r.details["anomalies"] == ["garbage-read"]


def test_bad_micro_op_is_an_error_and_a_repeated_append_unknown() -> None:
    with pytest.raises(HistoryError, match=r"^<history>:2: unknown micro-op 'cas'"):
        check(txns((0, "ok", [["cas", "x", 1]])), "list-append")
    h = txns((0, "ok", [A("x", 1)]), (1, "ok", [A("x", 1)]))
    r = check(h, "list-append")
    assert r.valid == "unknown" and "twice" in (r.cause or "")


def test_each_found_anomaly_rules_out_the_model() -> None:
    h = concurrent((0, "ok", [A("x", 1), R("y", [1])]), (1, "ok", [A("y", 1), R("x", [1])]))
    for model in ("read-committed", "serializable", "snapshot-isolation"):
        r = check(h, "list-append", model)
        assert r.valid is False
        assert r.details["anomalies"] == ["G1c"]  # exact: an empty list must not pass
        assert rules_out("G1c", model)


def test_string_elements_are_interned() -> None:
    h = concurrent((0, "ok", [A("x", "a"), R("y", ["b"])]), (1, "ok", [A("y", "b"),
                   R("x", ["a"])]))  # fmt: skip
    r = check(h)
    assert r.details["anomalies"] == ["G1c"]
    assert "append of 'a' to key 'x'" in r.details["explanations"][0]


# --- rw-register --------------------------------------------------------------------------


def W(k: Any, v: Any) -> Mop:
    return ["w", k, v]


def rw(h: History, consistency: str = "serializable", **kw: Any) -> Any:
    return check(h, "rw-register", consistency, **kw)


def test_rw_register_g1c_and_write_skew() -> None:
    h = concurrent((0, "ok", [W("x", 1), R("y", 1)]), (1, "ok", [W("y", 1), R("x", 1)]))
    assert rw(h).details["anomalies"] == ["G1c"]
    h = concurrent((0, "ok", [R("x", None), W("y", 1)]), (1, "ok", [R("y", None), W("x", 1)]))
    r = rw(h)
    assert r.details["anomalies"] == ["G2-item"]
    assert "which came later in the version order" in r.details["explanations"][0]
    assert rw(h, "snapshot-isolation").valid is True


def test_rw_register_non_cycle_anomalies() -> None:
    h = txns((0, "fail", [W("x", 1)]), (1, "ok", [R("x", 1)]), (2, "ok", [R("x", 7)]))
    r = rw(h, "read-committed")
    assert {"G1a", "garbage-read"} <= set(r.details["anomalies"])
    h = txns((0, "ok", [W("x", 1), W("x", 2)]), (1, "ok", [R("x", 1), W("y", 1)]))
    assert "G1b" in rw(h, "read-committed").details["anomalies"]
    h = txns((0, "ok", [W("x", 1), R("x", 2)]), (1, "ok", [R("x", 1)]))
    assert "internal" in rw(h).details["anomalies"]


def test_rw_register_wfr_and_cyclic_versions() -> None:
    # T2 read x = 1 then wrote 2; T3 read 2 and wrote y; T1 (writer of 1) read y = 3
    h = concurrent(
        (0, "ok", [W("x", 1), R("y", 3)]),
        (1, "ok", [R("x", 1), W("x", 2)]),
        (2, "ok", [R("x", 2), W("y", 3)]),
    )
    # wr alone: T1 → T2 → T3 → T1 is already a G1c cycle
    assert rw(h).details["anomalies"] == ["G1c"]
    # process order contradicting the wr-implied version order: cyclic versions
    h2 = txns((0, "ok", [W("x", 1)]), (1, "ok", [R("x", 1), W("x", 2)]), (0, "ok",
              [R("x", 2), W("x", 1)]))  # fmt: skip
    assert rw(h2).valid == "unknown"  # duplicate write of x = 1 breaks recoverability
    h3 = txns((0, "ok", [W("x", 2)]), (0, "ok", [W("x", 1)]), (1, "ok", [R("x", 1)]),
              (1, "ok", [R("x", 2)]))  # fmt: skip
    r = rw(h3, sequential_keys=True)
    assert "cyclic-versions" in r.details["anomalies"]


@pytest.mark.parametrize(
    ("opt", "consistency", "valid"),
    [
        # serializable: p1's read of 1 may be ordered before p0's write of 2
        (None, "serializable", True),
        ("wfr_keys", "serializable", True),
        ("sequential_keys", "serializable", True),
        # strict-serializable: the read is stale whatever the options, since strictness
        # itself orders the versions by real time (the option adds nothing)
        (None, "strict-serializable", False),
        ("wfr_keys", "strict-serializable", False),
        ("sequential_keys", "strict-serializable", False),
        ("linearizable_keys", "strict-serializable", False),
    ],
)
def test_rw_register_options(opt: str | None, consistency: str, valid: bool) -> None:
    # p1 reads x = 1 after p0 replaced 1 by 2: stale, but only an order between 1 and 2
    # (from p0's read-then-write, or from real time) shows it
    h = txns((0, "ok", [W("x", 1)]), (0, "ok", [R("x", 1), W("x", 2)]),
             (0, "ok", [R("x", 2)]), (1, "ok", [R("x", 1)]))  # fmt: skip
    r = rw(h, consistency, **({opt: True} if opt else {}))
    assert r.valid is valid, r.details


# --- the cycle search on hand-made graphs -------------------------------------------------


def search(name: str, n: int, *es: tuple[int, int, int]) -> list[int] | None:
    """The relations of the cycle that the search for anomaly ``name`` finds in the graph of
    ``n`` vertices and edges ``(src, dst, labels)``, or None."""
    parts = [edges([s], [d], lab) for s, d, lab in es]
    sub = Subgraph(build_graph(n, parts).csr, np.arange(n))
    spec = SPEC_BY_NAME[name]
    c = find_cycle(sub, spec, time.monotonic() + 30)
    if c is None:
        return None
    assert sub.may_hold(spec)  # the cheap test never rules out a cycle that is there
    assert len(c.vertices) == len(c.rels) == len(set(c.vertices))
    for (a, b), rel in zip(itertools.pairwise([*c.vertices, c.vertices[0]]), c.rels, strict=True):
        assert any(s == a and d == b and lab & rel for s, d, lab in es), (a, b, rel)
    assert c.name == name
    return c.rels


def test_classify_by_the_relations_of_a_cycle() -> None:
    assert classify([WW, WW]) == "G0"
    assert classify([WW, WR]) == "G1c"
    assert classify([RW, WW, WR]) == "G-single-item"
    assert classify([RW, RW]) == "G2-item"
    assert classify([RW, WW, RW, WR]) == "G-nonadjacent-item"
    assert classify([RW, WW, RW]) == "G2-item"  # the last and first steps are adjacent
    assert classify([WW, RW, RW]) == "G2-item"
    assert classify([WR, PROCESS]) == "G1c-process"
    assert classify([WR, REALTIME, PROCESS]) == "G1c-realtime"
    assert classify([RW, REALTIME]) == "G-single-item-realtime"


def test_specs_for_keeps_the_named_classes_whose_relations_exist() -> None:
    names = {"G0", "G1c-realtime", "G2-item-process"}
    assert [s.name for s in specs_for(names, WW | WR | RW)] == ["G0"]
    assert [s.name for s in specs_for(names, WW | WR | RW | REALTIME)] == ["G0", "G1c-realtime"]
    everything = WW | WR | RW | PROCESS | REALTIME
    assert [s.name for s in specs_for({"G-single-item"}, everything)] == ["G-single-item"]


def test_each_class_finds_only_cycles_of_its_shape() -> None:
    # ww then wr: G1c, not G0; all ww: G0 and not G1c
    assert sorted(search("G1c", 2, (0, 1, WW), (1, 0, WR)) or []) == [WW, WR]
    assert search("G0", 2, (0, 1, WW), (1, 0, WR)) is None
    assert search("G0", 2, (0, 1, WW), (1, 0, WW)) == [WW, WW]
    assert search("G1c", 2, (0, 1, WW), (1, 0, WW)) is None
    # one rw: G-single only
    single = [(0, 1, WW), (1, 2, RW), (2, 0, WR)]
    assert sorted(search("G-single-item", 3, *single) or []) == [WW, WR, RW]
    for name in ("G0", "G1c", "G-nonadjacent-item", "G2-item"):
        assert search(name, 3, *single) is None, name
    # two rw, apart: G-nonadjacent only
    apart = [(0, 1, RW), (1, 2, WW), (2, 3, RW), (3, 0, WR)]
    assert sorted(search("G-nonadjacent-item", 4, *apart) or []) == [WW, WR, RW, RW]
    for name in ("G-single-item", "G2-item", "G1c"):
        assert search(name, 4, *apart) is None, name
    # two rw, adjacent only across the end of the cycle: G2-item, not G-nonadjacent
    wrap = [(0, 1, RW), (1, 2, WW), (2, 0, RW)]
    assert sorted(search("G2-item", 3, *wrap) or []) == [WW, RW, RW]
    assert search("G-nonadjacent-item", 3, *wrap) is None
    assert search("G-single-item", 3, *wrap) is None
    # two rw side by side: found from the first vertex with an rw edge out, vertex 1
    assert search("G2-item", 3, (0, 1, WW), (1, 2, RW), (2, 0, RW)) == [RW, RW, WW]
    # the rw edge's source has other edges out too
    assert search("G-single-item", 3, *single, (1, 0, WR)) is not None


def test_process_and_realtime_classes_need_their_edge() -> None:
    es = [(0, 1, WR), (1, 0, PROCESS)]
    assert search("G1c-process", 2, *es) == [WR, PROCESS]
    assert search("G1c", 2, *es) is None
    assert search("G1c-realtime", 2, *es) is None
    es = [(0, 1, RW), (1, 2, PROCESS), (2, 0, REALTIME)]
    assert sorted(search("G-single-item-realtime", 3, *es) or []) == [RW, PROCESS, REALTIME]
    assert search("G-single-item-process", 3, *es) is None


def test_an_edge_with_several_labels_serves_as_any_of_them() -> None:
    es = [(0, 1, WW | RW), (1, 0, WR)]
    assert sorted(search("G1c", 2, *es) or []) == [WW, WR]
    assert sorted(search("G-single-item", 2, *es) or []) == [WR, RW]
    assert search("G2-item", 2, *es) is None
    # realtime edges: a cycle needs one to be a realtime cycle
    assert search("G0-realtime", 2, (0, 1, REALTIME), (1, 0, WW)) == [REALTIME, WW]
    assert search("G0", 2, (0, 1, REALTIME), (1, 0, WW)) is None


def test_the_shortest_cycle_through_the_first_start_is_found() -> None:
    # 0 → 1 → 0 and 0 → 2 → 3 → 0, all ww: the 2-cycle
    es = [(0, 2, WW), (2, 3, WW), (3, 0, WW), (0, 1, WW), (1, 0, WW)]
    assert search("G0", 4, *es) == [WW, WW]
    # a cycle that does not pass vertex 0 is found from a later start
    assert search("G0", 4, (0, 1, WW), (1, 2, WW), (2, 3, WW), (3, 1, WW)) == [WW] * 3


def test_the_search_goes_on_past_dead_ends_and_early_returns() -> None:
    # every vertex of the ww cycle 1 → 2 → 3 → 1 also has an edge to the dead end 0
    sink = [(1, 0, WW), (2, 0, WW), (3, 0, WW), (1, 2, WW), (2, 3, WW), (3, 1, WW)]
    assert search("G0", 4, *sink) == [WW, WW, WW]
    # the start's first edge out is not the wr edge a G1c cycle begins with
    assert search("G1c", 3, (0, 1, WW), (1, 0, WW), (1, 2, WR), (2, 1, WW)) == [WR, WW]
    # back at the start after one rw: too early for G-nonadjacent, the search goes on
    es = [(0, 1, RW), (1, 0, WW), (1, 2, WW), (2, 3, RW), (3, 0, WR)]
    assert search("G-nonadjacent-item", 4, *es) == [RW, WW, RW, WR]


def test_a_g2_item_cycle_needs_two_adjacent_rw_whichever_edge_the_search_starts_with() -> None:
    # 0 → 1 → 2 → 3 → 0 has two rw edges apart (G-nonadjacent); 0 also has an rw edge out
    # (to 4, back by ww: G-single). No cycle has two rw side by side.
    es = [(0, 1, WW), (1, 2, RW), (2, 3, WR), (3, 0, RW), (0, 4, RW), (4, 0, WW)]
    assert search("G2-item", 5, *es) is None
    assert search("G-nonadjacent-item", 5, *es) is not None
    assert search("G-single-item", 5, *es) == [RW, WW]


def test_a_closing_edge_with_several_labels_is_tried_as_each() -> None:
    # Back at the start by ww|rw: as ww it closes nothing (one rw), as rw it closes a G2-item
    # cycle whose rw edges meet across the start.
    es = [(0, 1, RW), (1, 2, WW), (2, 0, WW | RW)]
    assert search("G2-item", 3, *es) == [RW, WW, RW]
