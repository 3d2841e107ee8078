"""The transactional checker's driver (``checkers.txn.check``) on small hand-made histories.

Written for a mutation audit of ``checkers.txn.check``: each test pins down one promise of
the driver (limits, budgets, quotas, components searched here or by a unit map, the proof
of validity, the verdict's details) that the older tests left open. Expectations follow the
documented behaviour and Adya's and Elle's anomaly definitions, not the code's output.
"""

from __future__ import annotations

import gc
import importlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from checkers.txn import check
from checkers.txn.budget import Budget
from checkers.txn.check import (
    _WHY,
    ComponentUnit,
    _phase_of,
    _ruled_out,
    _search,
    _without_barriers,
    search_component,
)
from checkers.txn.cycles import SPEC_BY_NAME, Cycle, Subgraph, specs_for
from checkers.txn.graph import PROCESS, REALTIME, RW, WR, WW, build_graph, edges
from checkers.units import serial_map
from harness.errors import ConfigError
from harness.history import History
from tests.unit.txn_histories import A, Mop, R, Row, W, concurrent, serial

CHECK = importlib.import_module("checkers.txn.check")

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


# --- limits and the process's state -------------------------------------------------------


@pytest.mark.parametrize("kw", [{"time_limit": 0}, {"time_limit": -1.0}, {"max_memory": 0}])
def test_a_non_positive_time_or_memory_limit_is_a_config_error(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="must be positive"):
        check(serial((0, "ok", [A("x", 1)])), **kw)


def test_no_time_or_memory_limit_at_all_is_allowed() -> None:
    # None means unlimited: the search, components included, runs without a deadline
    r = check(skews(2), time_limit=None, max_memory=None)
    assert r.valid is False and r.details["anomalies"] == ["G2-item"]
    assert r.details["anomaly_counts"] == {"G2-item": 2}


def test_unknown_model_or_consistency_is_a_config_error() -> None:
    h = serial((0, "ok", [A("x", 1)]))
    with pytest.raises(ConfigError, match="list-append, rw-register"):
        check(h, "set")
    with pytest.raises(ConfigError, match="unknown consistency model"):
        check(h, "list-append", "serialisable")


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_is_left_as_it_was_found(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        check(skews(1))
        assert gc.isenabled() is enabled
        # also when the check ends early: a history that does not fit the model
        r = check(serial((0, "ok", [A("x", 1)]), (1, "ok", [A("x", 1)])))
        assert r.valid == "unknown"
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_a_history_that_does_not_fit_the_model_is_unknown_with_empty_findings() -> None:
    r = check(
        serial((0, "ok", [A("x", 1)]), (1, "ok", [A("x", 1)])), "list-append", "read-committed"
    )
    assert r.valid == "unknown" and r.checker == "txn/list-append"
    assert r.details == {"model": "list-append", "consistency": "read-committed",
                         "anomalies": [], "explanations": []}  # fmt: skip


def test_running_out_of_memory_mid_phase_is_unknown_naming_that_phase(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_memory(*_: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(CHECK, "build_graph", no_memory)
    r = check(skews(1), "list-append", "serializable")
    assert r.valid == "unknown"
    assert r.cause == "ran out of memory in the graph phase (allocation failed)"
    assert r.details["unknown"] == [{"type": "budget", "phase": "graph", "resource": "memory"}]
    assert set(r.details["stats"]["timings"]) == {"parse", "analysis"}
    assert r.details["anomalies"] == [] and r.details["explanations"] == []
    assert set(r.details) == {"model", "consistency", "anomalies", "explanations", "unknown",
                              "stats"}  # fmt: skip


def test_the_phase_running_is_the_one_after_the_last_timed() -> None:
    assert _phase_of({}) == "parse"
    assert _phase_of({"parse": 0.1, "analysis": 0.1}) == "graph"
    everything = dict.fromkeys(("parse", "analysis", "graph", "scc", "cycles", "explain",
                                "witness", "version-orders"), 0.0)  # fmt: skip
    assert _phase_of(everything) == "version-orders"  # the last, not past the end
    # the phases in the documented order: parse, analysis, graph, strongly connected
    # components, cycle search, explanation, witness, version-order search
    order = list(everything)
    for i, phase in enumerate(order):
        assert _phase_of(dict.fromkeys(order[:i], 0.0)) == phase


# --- quotas -------------------------------------------------------------------------------


def test_by_default_eight_cycles_of_a_class_are_kept() -> None:
    r = check(skews(9))
    assert r.details["anomaly_counts"] == {"G2-item": 8}
    assert len(r.details["anomaly_details"]["G2-item"]) == len(r.details["explanations"]) == 8
    assert check(skews(7)).details["anomaly_counts"] == {"G2-item": 7}


def test_non_cycle_anomalies_are_all_counted_and_the_first_32_detailed() -> None:
    # 33 aborted appends, each read by a committed transaction: 33 aborted reads (G1a)
    rows: list[Row] = []
    for i in range(33):
        rows += [(0, "fail", [A(i, 1)]), (1, "ok", [R(i, [1])])]
    r = check(serial(*rows), "list-append", "read-committed")
    assert r.details["anomaly_counts"] == {"G1a": 33}
    recs = r.details["anomaly_details"]["G1a"]
    assert [rec["key"] for rec in recs] == list(range(32))


# --- the verdict's details ----------------------------------------------------------------


def test_the_cause_names_every_relevant_anomaly_and_the_first_cycle_s_steps() -> None:
    # G1c: each transaction read the other's append
    h = concurrent((0, "ok", [A("x", 1), R("y", [1])]), (1, "ok", [A("y", 1), R("x", [1])]))
    r = check(h, "list-append", "serializable")
    steps = [s["text"] for s in r.details["anomaly_details"]["G1c"][0]["steps"]]
    assert len(steps) == 2
    assert r.cause == f"G1c: not serializable ({steps[0]}; {steps[1]})"
    # two non-cycle anomalies (records without steps): names only, sorted
    h = serial((0, "fail", [A("x", 1)]), (1, "ok", [A("y", 1), A("y", 2)]),
               (2, "ok", [R("x", [1]), R("y", [1])]))  # fmt: skip
    r = check(h, "list-append", "read-committed")
    assert r.cause == "G1a, G1b: not read-committed"


def test_anomalies_that_do_not_rule_out_the_model_are_also_found_not_relevant() -> None:
    # an aborted read (G1a) and a lost update (two committed read-then-append of one
    # version): read uncommitted forbids neither, read committed only the first
    h = concurrent(
        (0, "fail", [A("z", 1)]),
        (1, "ok", [R("z", [1])]),
        (2, "ok", [A("x", 1)]),
        (3, "ok", [R("x", [1]), A("x", 2)]),
        (4, "ok", [R("x", [1]), A("x", 3)]),
    )
    r = check(h, "list-append", "read-uncommitted")
    assert r.valid is True
    assert r.details["anomalies"] == [] and r.details["also_found"] == ["G1a", "lost-update"]
    r = check(h, "list-append", "read-committed")
    assert r.details["anomalies"] == ["G1a"] and r.details["also_found"] == ["lost-update"]


def test_statistics_count_transactions_edges_and_components() -> None:
    r = check(skews(3), "list-append", "serializable")
    st = r.details["stats"]
    assert (st["txns"], st["mops"], st["edges"]) == (6, 12, 6)  # one rw edge each way
    assert (st["sccs"], st["largest_scc"], st["barriers"]) == (3, 2, 0)
    # no cycle: no non-trivial component; the largest holds one transaction
    st = check(serial((0, "ok", [A("x", 1)]), (1, "ok", [R("x", [1])]))).details["stats"]
    assert (st["sccs"], st["largest_scc"], st["edges"]) == (0, 1, 1)


def test_a_search_timeout_is_listed_once_among_the_unknowns() -> None:
    # 40 transactions each read the key the next appends, in a ring: one big G2 component
    n = 40
    rows: list[Row] = [(i, "ok", [R(i, None), A((i + 1) % n, 1)]) for i in range(n)]
    r = check(concurrent(*rows), scc_time_limit=1e-9)
    assert r.valid == "unknown"
    assert r.details["unknown"] == [{"type": "cycle-search-timeout", "anomaly": "G-single-item",
                                     "scc_size": n}]  # fmt: skip


# --- the proof of validity ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("consistency", "required", "witness"),
    [
        # a witness (a serial order of the graph, replayed) proves serializability, and
        # strict or strong-session serializability when the graph has realtime or process
        # order; a model it proves and that implies serializability needs one
        ("serializable", True, "serializable"),
        ("strict-serializable", True, "strict-serializable"),
        ("strong-session-serializable", True, "strong-session-serializable"),
        # weaker models: valid when no forbidden anomaly is found (Elle's meaning)
        ("snapshot-isolation", False, "serializable"),
        ("read-committed", False, "serializable"),
        # realtime edges but a model below serializability: still not required
        ("strong-read-uncommitted", False, "strict-serializable"),
        ("strong-session-snapshot-isolation", False, "strong-session-serializable"),
    ],
)
def test_the_proof_says_which_model_a_witness_proves_and_whether_one_is_needed(
    consistency: str, required: bool, witness: str
) -> None:
    h = serial(
        (0, "ok", [A("x", 1)]), (1, "ok", [R("x", [1]), A("y", 2)]), (2, "info", [A("z", 3)])
    )
    r = check(h, "list-append", consistency)
    assert r.valid is True
    # the info transaction's append was never read: it need not be in the order
    assert r.details["proof"] == {"required": required, "witness": witness, "valid": True,
                                  "serial_order_of": 2}  # fmt: skip


def test_a_serial_order_that_does_not_replay_is_no_proof() -> None:
    # rw-register: blind writes of 1 and 2, then a read of 1. Completion order puts the read
    # after both writes (reads 2), so the inferred graph's serial order does not replay;
    # the order 2, 1, read does, and trying the version orders finds it.
    h = concurrent((0, "ok", [W("x", 1)]), (1, "ok", [W("x", 2)]), (2, "ok", [R("x", 1)]))
    r = check(h, "rw-register", "serializable")
    assert r.valid is True
    assert r.details["proof"]["valid"] is True and r.details["proof"]["version_orders"] == 2
    # below serializability nothing needs proving: the orders are not tried
    r = check(h, "rw-register", "read-committed")
    assert r.valid is True
    assert r.details["proof"] == {"required": False, "witness": "serializable", "valid": False}


# --- components: searched here in order, or by a unit map ---------------------------------


def test_each_component_gets_its_own_time_limit_or_what_is_left_of_the_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from checkers.txn.list_append import analyze
    from checkers.txn.parse import parse

    tx = parse(skews(2), "list-append")
    g = build_graph(tx.n, analyze(tx).edges)
    _, comp = g.sccs()
    seen: list[float] = []

    def spy(unit: ComponentUnit) -> tuple[list[Cycle], list[dict[str, Any]]]:
        seen.append(unit.seconds)
        return [], []

    monkeypatch.setattr(CHECK, "search_component", spy)
    specs = specs_for({"G2-item"}, WW | WR | RW)

    plenty = Budget(time.perf_counter(), 1000.0, None)
    _search(g.csr, comp, specs, WW | WR | RW, plenty, 2.0, 8)
    assert seen == [2.0, 2.0]
    seen.clear()
    little = Budget(time.perf_counter(), 0.5, None)
    _search(g.csr, comp, specs, WW | WR | RW, little, 30.0, 8)
    assert len(seen) == 2 and all(0 < s <= 0.5 for s in seen)
    seen.clear()
    _search(g.csr, comp, specs, WW | WR | RW, Budget(time.perf_counter(), None, None), 3.0, 8)
    assert seen == [3.0, 3.0]


def test_a_component_reports_only_the_most_severe_of_classes_implying_each_other() -> None:
    # one component: 0 -rw-> 1 -wr-> 0 (G-single) and 0 -rw-> 2 -rw-> 0 (G2-item). Finding
    # G-single implies G2, so the search for G2-item is skipped.
    g = build_graph(3, [edges([0, 1, 0, 2], [1, 0, 2, 0], RW), edges([1], [0], WR)])
    sub = Subgraph(g.csr, np.arange(3))
    specs = tuple(SPEC_BY_NAME[n] for n in ("G-single-item", "G2-item"))
    found, unknowns = search_component(ComponentUnit(sub, specs, WW | WR | RW, 10.0, 10.0))
    assert [c.name for c in found] == ["G-single-item"] and unknowns == []
    # a class whose quota is full is not searched at all
    unit = ComponentUnit(sub, specs, WW | WR | RW, 10.0, 10.0, frozenset({"G-single-item"}))
    found, _ = search_component(unit)
    assert [c.name for c in found] == ["G2-item"]


def test_after_a_timeout_any_short_cycle_of_the_component_is_still_reported() -> None:
    sub, relations = write_skew_graph()
    specs = tuple(SPEC_BY_NAME[n] for n in ("G-single-item", "G2-item"))
    # no time for the search by class (its deadline has passed), 10 s for the fallback
    found, unknowns = search_component(ComponentUnit(sub, specs, relations, -1.0, 10.0))
    assert unknowns == [{"type": "cycle-search-timeout", "anomaly": "G-single-item",
                         "scc_size": 2}]  # fmt: skip
    assert [(c.name, sorted(c.vertices)) for c in found] == [("G2-item", [0, 1])]


def _pairs(n: int) -> History:
    return skews(n)


def _map_reversed(
    fn: Callable[[Any], Any], units: Sequence[Any], *, seconds: float | None
) -> Iterator[tuple[int, Any]]:
    """A unit map that hands results back last unit first."""
    yield from reversed(list(serial_map(fn, units, seconds=seconds)))


@pytest.mark.parametrize("unit_map", [serial_map, _map_reversed])
def test_a_unit_map_gives_the_verdict_and_details_of_the_search_in_order(
    unit_map: Any,
) -> None:
    h = skews(5)
    for kw in ({}, {"max_cycles": 2}, {"time_limit": None}, {"scc_time_limit": 1e-9}):
        here = check(h, **kw)
        there = check(h, unit_map=unit_map, **kw)
        for key in ("anomalies", "anomaly_counts", "anomaly_details", "explanations", "unknown"):
            assert there.details[key] == here.details[key], (kw, key)
        assert there.details["stats"]["sccs"] == here.details["stats"]["sccs"] == 5
    kept = check(h, max_cycles=2, unit_map=unit_map).details["anomaly_details"]["G2-item"]
    # the first two components' cycles: transactions 0-1 and 2-3 (ops 0..7)
    assert [sorted(rec["cycle"][:2]) for rec in kept] == [[2, 3], [6, 7]]


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


# --- cycles through realtime barriers -----------------------------------------------------


def test_barrier_vertices_are_folded_into_one_realtime_step() -> None:
    n = 3  # transactions 0..2; 3 and up are barriers
    c = Cycle([0, 3, 4, 1], [REALTIME, REALTIME, REALTIME, RW])
    got = _without_barriers(c, n)
    assert (got.vertices, got.rels) == ([0, 1], [REALTIME, RW])
    # starting at a barrier: rotated to start at the first transaction
    c = Cycle([3, 1, 2, 0, 4], [REALTIME, WR, PROCESS, REALTIME, REALTIME])
    got = _without_barriers(c, n)
    assert (got.vertices, got.rels) == ([1, 2, 0], [WR, PROCESS, REALTIME])
    # no barrier: the same cycle
    c = Cycle([2, 0], [WW, WR])
    assert _without_barriers(c, n) is c


def test_an_anomaly_seen_only_under_strictness_rules_out_only_strict_serializability() -> None:
    assumed = {"assumes": "strict-serializable"}
    # every record assumes versions follow real time: only strict serializability is out
    assert _ruled_out({"G0-realtime"}, {"G0-realtime": [assumed]}) == (["strict-serializable"], [])
    # one record that needs no assumption: the anomaly counts as found
    both = _ruled_out({"G0-realtime"}, {"G0-realtime": [assumed, {}]})
    plain = _ruled_out({"G0-realtime"}, {"G0-realtime": [{}]})
    assert both == plain and plain[0] != ["strict-serializable"]
    # with another anomaly that rules out weaker models, those are named instead
    not_, _ = _ruled_out({"G0-realtime", "G1a"}, {"G0-realtime": [assumed], "G1a": [{}]})
    assert not_ == ["read-committed"]


# --- phases, budgets and documented defaults ----------------------------------------------


def test_every_phase_that_ran_is_timed() -> None:
    phases = ["parse", "analysis", "graph", "scc", "cycles", "explain"]
    # an anomaly found: no witness is looked for
    assert list(check(skews(1)).details["stats"]["timings"]) == phases
    valid = serial((0, "ok", [A("x", 1)]), (1, "ok", [R("x", [1])]))
    assert list(check(valid).details["stats"]["timings"]) == [*phases, "witness"]
    # rw-register whose inferred orders leave the proof open: total orders tried
    h = concurrent((0, "ok", [W("x", 1)]), (1, "ok", [W("x", 2)]), (2, "ok", [R("x", 1)]))
    timings = check(h, "rw-register").details["stats"]["timings"]
    assert list(timings) == [*phases, "witness", "version-orders"]


def _dense(m: int) -> History:
    """``m`` appends to keys 0..m-1, then ``m`` transactions each reading every key: m² wr
    edges from 2m transactions (4m history ops)."""
    rows: list[Row] = [(i, "ok", [A(i, 1)]) for i in range(m)]
    rows += [(m + j, "ok", [R(i, [1]) for i in range(m)]) for j in range(m)]
    return serial(*rows)


def test_the_graph_s_memory_is_reserved_before_it_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # with the resident size frozen, only reservations count against the memory budget
    monkeypatch.setattr("checkers.txn.budget.rss_bytes", lambda: 100 * 2**20)
    h = _dense(20)  # 400 edges, 80 history ops
    assert check(h, max_memory=2**20).valid is True
    # room for the parse (100 bytes an op) but not for 400 edges (20 bytes each)
    r = check(h, max_memory=100 * len(h))
    assert r.valid == "unknown"
    assert r.details["unknown"] == [{"type": "budget", "phase": "graph", "resource": "memory"}]
    r = check(h, max_memory=10 * len(h))  # not even for the parse (10 bytes an op)
    assert r.details["unknown"] == [{"type": "budget", "phase": "parse", "resource": "memory"}]


def test_the_documented_default_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    """60 s for the whole check, 1 s per component (as Elle), 2 GiB of memory."""
    budgets: list[Budget] = []
    real = CHECK.Budget

    def spy_budget(*a: Any) -> Budget:
        budgets.append(real(*a))
        return budgets[-1]

    monkeypatch.setattr(CHECK, "Budget", spy_budget)
    seen: dict[str, Any] = {}

    def spy_map(
        fn: Callable[[Any], Any], units: Sequence[Any], *, seconds: float | None
    ) -> Iterator[tuple[int, Any]]:
        seen.update(seconds=seconds, units=list(units), gc=gc.isenabled())
        yield from serial_map(fn, units, seconds=seconds)

    check(skews(1))  # warm
    t0 = time.perf_counter()
    check(skews(1), unit_map=spy_map)
    took = time.perf_counter() - t0
    assert budgets[-1].time_limit == 60.0 and budgets[-1].max_memory == 2 * 2**30
    assert 60.0 - took <= seen["seconds"] <= 60.0
    assert [(u.seconds, u.scc_time_limit) for u in seen["units"]] == [(1.0, 1.0)]
    assert seen["gc"] is False  # no collector scans while the check runs


def _blind_pairs(keys: int) -> History:
    """On each of ``keys`` keys two blind writes, 1 and 2, with nothing ordering them; on
    key 0 also a read of 1 completing last, so the order of completion does not replay and
    the 2**keys combinations of total version orders are tried."""
    rows: list[Row] = []
    for k in range(keys):
        rows += [(2 * k, "ok", [W(k, 1)]), (2 * k + 1, "ok", [W(k, 2)])]
    rows.append((2 * keys, "ok", [R(0, 1)]))
    return concurrent(*rows)


def test_up_to_256_total_version_orders_are_tried_by_default() -> None:
    r = check(_blind_pairs(8), "rw-register")
    assert r.valid is True and r.details["proof"]["version_orders"] == 256
    r = check(_blind_pairs(9), "rw-register")
    assert r.valid == "unknown" and "version order ambiguous" in (r.cause or "")
    assert r.details["proof"]["version_orders"] == "more than 256"


def test_a_read_disagreeing_at_the_very_first_mop_still_fails_the_replay() -> None:
    """Guards ``replay(...) < 0`` against ``<= 0`` (mop 0 is a valid disagreement index)."""

    # T0 completes first (so its first mop is mop 0) and read x = 2 and y = 5; W1 wrote
    # x = 1 and y = 5, W2 x = 2, W2 completing before W1. In completion order W2, W1, T0
    # T0 would read x = 1: no replay. Only the version order 1 < 2 explains it.
    def op(p: int, typ: str, v: list[Mop]) -> dict[str, Any]:
        return {"process": p, "type": typ, "f": "txn", "value": v}

    t0, w1, w2 = [R("x", 2), R("y", 5)], [W("x", 1), W("y", 5)], [W("x", 2)]
    h = History.from_ops([op(0, "invoke", [R("x"), R("y")]), op(1, "invoke", w1),
                          op(2, "invoke", w2), op(0, "ok", t0), op(2, "ok", w2),
                          op(1, "ok", w1)])  # fmt: skip
    r = check(h, "rw-register")
    assert r.valid is True
    assert r.details["proof"] == {"required": True, "witness": "serializable", "valid": True,
                                  "version_orders": 2, "serial_order_of": 3}  # fmt: skip


def test_a_serial_order_that_replays_is_proof_enough_without_trying_orders() -> None:
    h = serial((0, "ok", [W("x", 1)]), (1, "ok", [R("x", 1), W("x", 2)]), (2, "ok", [R("x", 2)]))
    r = check(h, "rw-register", "serializable")
    assert r.details["proof"] == {"required": True, "witness": "serializable", "valid": True,
                                  "serial_order_of": 3}  # fmt: skip


def _every_order_cyclic() -> History:
    """rw-register: T1 read x nil and wrote y = 1; T2 wrote x = 2 and y = 3; T3 read x = 2
    and y = 1. Whichever of 1 and 3 came first, there is a G-single cycle."""
    return concurrent(
        (0, "ok", [R("x", None), W("y", 1)]),
        (1, "ok", [W("x", 2), W("y", 3)]),
        (2, "ok", [R("x", 2), R("y", 1)]),
    )


def test_each_cyclic_version_order_is_counted_and_explained_assuming_it() -> None:
    r = check(_every_order_cyclic(), "rw-register")
    assert r.valid is False
    assert r.details["anomaly_counts"] == {"G-single-item": 2}
    texts = r.details["explanations"]
    assert len(texts) == 2 and all(t.startswith("Assuming the version orders") for t in texts)
    assert all("(one of 2 possible, each with a cycle)" in t for t in texts)
    # G-single rules out consistent view and repeatable read, and all that implies them
    assert r.details["not"] == ["consistent-view", "repeatable-read"]


def test_a_version_order_whose_cycle_search_timed_out_leaves_the_proof_open() -> None:
    """The timeout under the order tried is the cause, with its record: not "too many
    orders to try; raise max_version_orders", which would not help."""
    r = check(_every_order_cyclic(), "rw-register", scc_time_limit=1e-9)
    assert r.valid == "unknown"
    assert r.cause == _WHY["cycle-search-timeout"]
    assert r.details["proof"] == {"required": True, "witness": "serializable", "valid": False,
                                  "version_orders": 2,
                                  "open": "cycle search timed out"}  # fmt: skip
    [timeout] = r.details["unknown"]
    assert timeout["type"] == "cycle-search-timeout" and timeout["scc_size"] == 2
    assert timeout["assumed_version_orders"] == {"'y'": [None, 1, 3], "'x'": [None, 2]}


def test_with_a_quota_of_one_the_cycle_kept_is_through_the_earliest_transaction() -> None:
    """Guards the sort of components by first transaction (their labels need not be)."""
    # two write skews whose transactions interleave: T0 and T3 (keys a, b), T1 and T2
    # (keys c, d); T1 read T0's append to e, so the second component is reached from the
    # first (and labelled first by a depth-first search from T0)
    h = concurrent(
        (0, "ok", [R("a", None), A("b", 1), A("e", 1)]),
        (1, "ok", [R("c", None), A("d", 1), R("e", [1])]),
        (2, "ok", [R("d", None), A("c", 1)]),
        (3, "ok", [R("b", None), A("a", 1)]),
    )
    for unit_map in (None, serial_map):
        r = check(h, max_cycles=1, unit_map=unit_map)
        (rec,) = r.details["anomaly_details"]["G2-item"]
        assert sorted(rec["cycle"][:2]) == [4, 7]  # completions of T0 and T3


def test_unknown_verdicts_take_the_seconds_they_took(monkeypatch: pytest.MonkeyPatch) -> None:
    t0 = time.perf_counter()
    bad = check(serial((0, "ok", [A("x", 1)]), (1, "ok", [A("x", 1)])))
    monkeypatch.setattr(CHECK, "build_graph", _no_memory)
    spent = check(skews(1))
    took = time.perf_counter() - t0
    assert bad.valid == spent.valid == "unknown"
    assert 0 <= bad.seconds <= took and 0 <= spent.seconds <= took
    timings = spent.details["stats"]["timings"]
    assert all(t >= 0 for t in timings.values()) and sum(timings.values()) <= took


def _no_memory(*_: Any) -> Any:
    raise MemoryError


def test_time_running_out_in_a_phase_is_noticed_at_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = CHECK.build_graph

    def slow(*a: Any) -> Any:
        time.sleep(0.3)
        return real(*a)

    monkeypatch.setattr(CHECK, "build_graph", slow)
    r = check(skews(1), time_limit=0.2)
    assert r.valid == "unknown"
    assert r.details["unknown"] == [{"type": "budget", "phase": "graph", "resource": "time"}]


def only_the_fallback_searches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cycle search by class times out; the fallback (spec ``any``) searches."""
    real = CHECK.find_cycle

    def named_time_out(sub: Subgraph, spec: Any, deadline: float) -> Any:
        if spec.name != "any":
            raise CHECK.Timeout
        return real(sub, spec, deadline)

    monkeypatch.setattr(CHECK, "find_cycle", named_time_out)


def test_after_a_timed_out_search_the_fallback_uses_every_relation_of_the_graph(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # every search by class times out; the fallback (spec "any") finds the G1c cycle,
    # made of wr edges only: reported, so the verdict is invalid, and the timeout listed
    # (of G1c, the first class whose edges are there: no ww edge, so G0 is not searched)
    only_the_fallback_searches(monkeypatch)
    h = concurrent((0, "ok", [A("x", 1), R("y", [1])]), (1, "ok", [A("y", 1), R("x", [1])]))
    r = check(h)
    assert r.valid is False and r.details["anomalies"] == ["G1c"]
    assert r.details["unknown"] == [{"type": "cycle-search-timeout", "anomaly": "G1c",
                                     "scc_size": 2}]  # fmt: skip


def test_by_default_no_version_order_is_assumed_from_a_read_then_write() -> None:
    # T1 read x = 1 then wrote x = 2: only with wfr_keys is 1 < 2 assumed, making T2's
    # read of x = 1 (and of T1's y = 5) a G-single cycle at once. Without it, both total
    # orders of x must be tried (each has a cycle).
    h = concurrent((0, "ok", [W("x", 1)]), (1, "ok", [R("x", 1), W("x", 2), W("y", 5)]),
                   (2, "ok", [R("x", 1), R("y", 5)]))  # fmt: skip
    r = check(h, "rw-register")
    assert r.valid is False and r.details["proof"]["version_orders"] == 2
    r = check(h, "rw-register", wfr_keys=True)
    assert r.valid is False and r.details["proof"] == {}


def test_by_default_a_process_s_writes_are_not_assumed_sequential() -> None:
    # p0 wrote 2 then 1; p1 read 1 then 2. Serializable (w1, r1, w2, r2) unless p0's order
    # is taken as the version order (sequential_keys): then the reads contradict it
    h = serial((0, "ok", [W("x", 2)]), (0, "ok", [W("x", 1)]), (1, "ok", [R("x", 1)]),
               (1, "ok", [R("x", 2)]))  # fmt: skip
    assert check(h, "rw-register").valid is True
    assert check(h, "rw-register", sequential_keys=True).valid is False


def test_only_models_ruled_out_under_every_version_order_are_named() -> None:
    # T1 and T2 each blindly wrote x and y; T3 read T2's x and T1's y. Both writes to one
    # key in the same order: a G-single cycle through T3; in opposite orders: a G0 cycle
    # (ww both ways). Under the G-single orders the history is read uncommitted, so only
    # what G-single rules out is ruled out.
    h = concurrent((0, "ok", [W("x", 1), W("y", 1)]), (1, "ok", [W("x", 2), W("y", 2)]),
                   (2, "ok", [R("x", 2), R("y", 1)]))  # fmt: skip
    r = check(h, "rw-register")
    assert r.valid is False and r.details["proof"]["every_order_cyclic"] is True
    assert r.details["anomalies"] == ["G-single-item", "G0"]
    assert r.details["not"] == ["consistent-view", "repeatable-read"]


def test_with_every_quota_full_no_component_is_searched_or_counted_as_skipped() -> None:
    from checkers.txn.list_append import analyze
    from checkers.txn.parse import parse

    tx = parse(skews(2), "list-append")
    g = build_graph(tx.n, analyze(tx).edges)
    _, comp = g.sccs()
    spent = Budget(time.perf_counter() - 10, 1.0, None)
    specs = specs_for({"G2-item"}, WW | WR | RW)
    assert _search(g.csr, comp, specs, WW | WR | RW, spent, 1.0, 0) == ({}, [], 2, 2)
    # quotas not full: each component left unsearched is counted
    skipped = [{"type": "cycle-search-timeout", "anomaly": "all", "sccs_not_searched": 2}]
    assert _search(g.csr, comp, specs, WW | WR | RW, spent, 1.0, 8) == ({}, skipped, 2, 2)


def test_a_version_order_with_a_cycle_found_despite_a_timeout_is_ruled_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A defect found by ``unknowns or not rel`` → ``and``: a cycle found by the fallback
    after a timed-out search is real, yet the order was left open (verdict unknown)."""
    only_the_fallback_searches(monkeypatch)
    r = check(_every_order_cyclic(), "rw-register")
    assert r.valid is False, r.cause
    assert r.details["proof"]["every_order_cyclic"] is True
    assert r.details["anomalies"] == ["G-single-item"]  # each order's one cycle


def test_an_info_transaction_whose_write_was_read_is_in_every_trial_order() -> None:
    # w1 (info, but read), w2, then a read of 1 completing last: only 1 < 2 replays
    h = concurrent((0, "info", [W("x", 1)]), (1, "ok", [W("x", 2)]), (2, "ok", [R("x", 1)]))
    r = check(h, "rw-register")
    assert r.valid is True
    assert r.details["proof"]["version_orders"] == 2 and r.details["proof"]["valid"] is True


def test_records_of_cyclic_version_orders_are_capped_at_32_per_anomaly() -> None:
    # every order of x and y has a G-single cycle (see _every_order_cyclic), times the 24
    # orders of four blind writes to z: 48 orders, each explained until 32 are kept
    rows: list[Row] = [
        (0, "ok", [R("x", None), W("y", 1)]),
        (1, "ok", [W("x", 2), W("y", 3)]),
        (2, "ok", [R("x", 2), R("y", 1)]),
    ]
    rows += [(3 + i, "ok", [W("z", i)]) for i in range(1, 5)]
    r = check(concurrent(*rows), "rw-register")
    assert r.valid is False and r.details["proof"]["version_orders"] == 48
    assert r.details["anomaly_counts"] == {"G-single-item": 32}
    assert len(r.details["anomaly_details"]["G-single-item"]) == 32
    assert len(r.details["explanations"]) == 32


DETAILS = {"model", "consistency", "anomalies", "also_found", "anomaly_counts", "anomaly_details",
           "explanations", "not", "also_not", "unknown", "proof", "stats"}  # fmt: skip
STATS = {"txns", "mops", "edges", "sccs", "largest_scc", "barriers", "timings"}


def test_the_details_of_every_verdict_have_their_documented_keys() -> None:
    """Guards the names of the result's fields (what reports and the CLI read)."""
    valid = check(serial((0, "ok", [A("x", 1)]), (1, "ok", [R("x", [1])])))
    invalid = check(skews(1))
    timed_out = check(skews(1), scc_time_limit=1e-9)
    for r in (valid, invalid, timed_out):
        assert set(r.details) == DETAILS
        assert set(r.details["stats"]) >= STATS
        assert (r.details["model"], r.details["consistency"]) == ("list-append", "serializable")
    assert valid.details["proof"] == {"required": True, "witness": "serializable",
                                      "valid": True, "serial_order_of": 2}  # fmt: skip
    (rec,) = invalid.details["anomaly_details"]["G2-item"]
    assert set(rec) == {"type", "cycle", "steps", "explanation"}
    # Adya: repeatable read (PL-2.99) proscribes G2-item, and serializability implies it
    assert "repeatable-read" in invalid.details["not"]
    assert "serializable" in invalid.details["also_not"]
    assert timed_out.cause == ("the cycle search ran out of time in a large strongly "
                               "connected component; raise the time limits")  # fmt: skip


def test_an_empty_history_is_valid_with_nothing_in_it() -> None:
    r = check(History.from_ops([]))
    assert r.valid is True
    st = r.details["stats"]
    assert (st["txns"], st["edges"], st["sccs"], st["largest_scc"]) == (0, 0, 0, 0)


def test_the_cause_spells_out_the_first_record_of_the_first_anomaly() -> None:
    # two G1c pairs (keys a/b, then c/d) and a write skew: G1c and G2-item, and the cause
    # gives the steps of the first G1c cycle (transactions 0 and 1)
    h = concurrent(
        (0, "ok", [A("a", 1), R("b", [1])]),
        (1, "ok", [A("b", 1), R("a", [1])]),
        (2, "ok", [A("c", 1), R("d", [1])]),
        (3, "ok", [A("d", 1), R("c", [1])]),
        (4, "ok", [R("x", None), A("y", 1)]),
        (5, "ok", [R("y", None), A("x", 1)]),
    )
    r = check(h)
    assert r.details["anomalies"] == ["G1c", "G2-item"]
    first = r.details["anomaly_details"]["G1c"][0]
    assert sorted(first["cycle"][:2]) == [6, 7]  # completions of T0 and T1
    steps = "; ".join(s["text"] for s in first["steps"])
    assert r.cause == f"G1c, G2-item: not serializable ({steps})"


def test_a_unit_map_gets_no_time_when_the_whole_check_has_none_left() -> None:
    from checkers.txn.list_append import analyze
    from checkers.txn.parse import parse

    tx = parse(skews(2), "list-append")
    g = build_graph(tx.n, analyze(tx).edges)
    _, comp = g.sccs()
    seen: dict[str, Any] = {}

    def spy(
        fn: Callable[[Any], Any], units: Sequence[Any], *, seconds: float | None
    ) -> Iterator[tuple[int, Any]]:
        seen.update(seconds=seconds, unit_seconds=[u.seconds for u in units])
        yield from serial_map(fn, units, seconds=seconds)

    spent = Budget(time.perf_counter() - 10, 1.0, None)
    specs = specs_for({"G2-item"}, WW | WR | RW)
    _search(g.csr, comp, specs, WW | WR | RW, spent, 1.0, 8, spy)
    assert seen == {"seconds": 0.0, "unit_seconds": [0.0, 0.0]}


def test_an_aborted_read_alone_does_not_make_read_uncommitted_unknown() -> None:
    # G1a is allowed by read uncommitted; the committed read of [1] cannot replay (the
    # append aborted), but nothing else is wrong and no proof is required below PL-3
    r = check(serial((0, "fail", [A("x", 1)]), (1, "ok", [R("x", [1])])), "list-append",
              "read-uncommitted")  # fmt: skip
    assert r.valid is True and r.details["also_found"] == ["G1a"] and r.details["unknown"] == []


def test_a_cycle_through_an_order_strictness_implies_says_what_it_assumes() -> None:
    # w1, then w2, then a read of 1 (one after another): only strict serializability puts
    # 2 after 1 (real time), and the G0-realtime record says so
    h = serial((0, "ok", [W("x", 1)]), (1, "ok", [W("x", 2)]), (2, "ok", [R("x", 1)]))
    r = check(h, "rw-register", "strict-serializable")
    (rec,) = r.details["anomaly_details"]["G0-realtime"]
    assert rec["assumes"] == "strict-serializable"


def test_trial_orders_keep_the_wr_edges_to_readers_whatever_their_ids() -> None:
    """Guards the labels of the wr edges kept for trial graphs (not the readers' ids)."""
    # _every_order_cyclic with the reader completing first (transaction 0)
    h = concurrent(
        (2, "ok", [R("x", 2), R("y", 1)]),
        (0, "ok", [R("x", None), W("y", 1)]),
        (1, "ok", [W("x", 2), W("y", 3)]),
    )
    r = check(h, "rw-register")
    assert r.valid is False and r.details["proof"]["every_order_cyclic"] is True
    assert r.details["anomalies"] == ["G-single-item"]


def test_an_order_whose_serial_order_does_not_replay_leaves_the_others_to_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The search gave up ("version order ambiguous ... raise max_version_orders", which
    could not help) at the first total order whose acyclic graph did not replay, though
    the next order could prove the history valid."""
    import importlib

    txn_check = importlib.import_module("checkers.txn.check")  # (the package's `check`
    # is the function)
    h = _blind_pairs(2)  # four total orders, each acyclic
    real = txn_check.replay
    calls: list[int] = []

    def first_order_does_not_replay(*args: Any) -> int:
        calls.append(1)
        return 0 if len(calls) == 2 else real(*args)  # call 1: the witness's own order

    monkeypatch.setattr(txn_check, "replay", first_order_does_not_replay)
    r = check(h, "rw-register")
    assert len(calls) >= 3
    assert r.valid is True and r.details["proof"]["version_orders"] == 4

    monkeypatch.setattr(txn_check, "replay", lambda *args: 0)  # no order replays
    r = check(h, "rw-register")
    assert r.valid == "unknown"
    assert "graph is acyclic, yet no serial order it allows" in (r.cause or "")
    assert "max_version_orders" not in (r.cause or "")
