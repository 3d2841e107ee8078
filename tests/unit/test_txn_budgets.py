"""Budgets of the transactional checker: bounded search in large components, no hangs."""

from __future__ import annotations

import time
from typing import Any

import pytest

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


def _wide_g2(k: int) -> History:
    """A G2-item pair in which each transaction also reads ``k`` empty keys and appends to
    ``k`` others, then a read of both appends."""
    t1 = [["r", f"a{i}", []] for i in range(k)] + [["r", "x", []], ["append", "y", 1]]
    t1 += [["append", f"b{i}", 1] for i in range(k)]
    t2 = [["r", f"c{i}", []] for i in range(k)] + [["r", "y", []], ["append", "x", 1]]
    t2 += [["append", f"d{i}", 1] for i in range(k)]
    final = [["r", "x", [1]], ["r", "y", [1]]]
    ops: list[dict[str, Any]] = []
    for p, t in ((0, t1), (1, t2)):
        ops.append({"process": p, "type": "invoke", "f": "txn", "value": t})
    for p, t in ((0, t1), (1, t2)):
        ops.append({"process": p, "type": "ok", "f": "txn", "value": t})
    ops.append({"process": 2, "type": "invoke", "f": "txn", "value": final})
    ops.append({"process": 2, "type": "ok", "f": "txn", "value": final})
    return History.from_ops(ops)


def test_an_rw_step_between_large_transactions_is_explained_in_one_pass() -> None:
    """Explaining an rw edge looked through the later transaction once per read of the
    earlier one: two transactions of 16,000 ops took 21 s to explain, and with a 2 s
    limit a G2-item found in 1 ms was answered unknown. The explanation's lines show at
    most MAX_TXN_CHARS of each transaction."""
    from checkers.txn.explain import MAX_TXN_CHARS

    r = check(_wide_g2(8000), "list-append", "serializable", time_limit=20)
    assert r.valid is False, r.cause
    assert r.cause == (
        "G2-item: not serializable (T1 observed the initial (empty) state of key 'x', which "
        "T2 changed by appending 1; T2 observed the initial (empty) state of key 'y', which "
        "T1 changed by appending 1)")  # fmt: skip
    lets = [ln for ln in r.details["explanations"][0].splitlines() if " = #" in ln]
    assert len(lets) == 2
    assert all(len(ln) < MAX_TXN_CHARS + 40 and " more characters)" in ln for ln in lets)


def test_cycles_found_are_invalid_even_when_explaining_them_runs_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The budget is looked at before each cycle is explained; once it is spent, the rest
    are recorded with their ops and why they were not explained, and the verdict stays
    invalid (it was unknown: the anomaly found was lost)."""
    from checkers.txn.budget import Budget, OutOfBudget

    real = Budget.check

    def spent_in_explain(self: Budget, phase: str) -> None:
        if phase == "explain":
            raise OutOfBudget("explain", "time", "time limit 2 s")
        real(self, phase)

    monkeypatch.setattr(Budget, "check", spent_in_explain)
    r = check(ring(5), "list-append", "serializable")
    assert r.valid is False
    assert r.cause == ("G2-item: not serializable; cycles left unexplained: ran out of time "
                       "in the explain phase (time limit 2 s)")  # fmt: skip
    rec = r.details["anomaly_details"]["G2-item"][0]
    assert rec["steps"] == [] and len(rec["cycle"]) == 6
    assert rec["explanation"].startswith("G2-item #0: ops ")
    assert rec["explanation"].endswith("; not explained (ran out of time in the explain "
                                       "phase (time limit 2 s))")  # fmt: skip
    assert "explain" in r.details["stats"]["timings"]


def _rw_chain(n: int, blind: int = 0) -> History:
    """rw-register: ``n`` transactions each reading key y and writing the next value (one
    chain of versions), ``blind`` blind writes of y, and two blind writes of x with a read
    of the first, which leaves the proof to the version orders."""
    ops: list[dict[str, Any]] = []

    def txn(p: int, invoke: list[list[Any]], ok: list[list[Any]]) -> None:
        ops.append({"process": p, "type": "invoke", "f": "txn", "value": invoke})
        ops.append({"process": p, "type": "ok", "f": "txn", "value": ok})

    prev = None
    for i in range(1, n + 1):
        txn(0, [["r", "y", None], ["w", "y", i]], [["r", "y", prev], ["w", "y", i]])
        prev = i
    for j in range(blind):
        txn(4, [["w", "y", -1 - j]], [["w", "y", -1 - j]])
    txn(1, [["w", "x", 1]], [["w", "x", 1]])
    txn(2, [["w", "x", 2]], [["w", "x", 2]])
    txn(3, [["r", "x", None]], [["r", "x", 1]])
    return History.from_ops(ops)


def test_a_chain_of_versions_is_ordered_without_its_transitive_closure() -> None:
    """The version orders took each key's transitive closure: a chain of 2,000 versions
    made 2 million networkx edges (1 GB, 4 s) before the budget was first looked at. A
    chain is ordered from its own edges now; well within a 200 MiB budget."""
    r = check(_rw_chain(2000), "rw-register", "serializable", wfr_keys=True,
              max_memory=200 * 2**20, time_limit=60)  # fmt: skip
    assert r.valid is True, r.cause
    assert "version-orders" in r.details["stats"]["timings"]


def test_the_order_of_kept_versions_is_reserved_on_the_budget_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An order that is not one chain (two blind writes beside it) is passed through with a
    bitset of the kept versions per version; that memory is reserved first, and over the
    budget the answer is unknown, naming the phase."""
    monkeypatch.setattr("checkers.txn.budget.rss_bytes", lambda: 100 * 2**20)  # reservations
    h = _rw_chain(3000, blind=2)
    free = check(h, "rw-register", "serializable", wfr_keys=True)  # (too many orders to try)
    assert [u["type"] for u in free.details["unknown"]] == ["version-order-ambiguous"]
    r = check(h, "rw-register", "serializable", wfr_keys=True, max_memory=2**20)
    assert r.valid == "unknown", r.cause
    assert r.details["unknown"] == [{"type": "budget", "phase": "version-orders",
                                     "resource": "memory"}]  # fmt: skip


def test_versions_not_kept_cost_the_order_nothing() -> None:
    """The closure was reserved for every version of a key, also those not kept (writes of
    unknown outcome nobody read): a chain of 10 beside 3,000 such writes was unknown under
    a 256 MiB budget ("432 MiB more needed"), valid before the budget was reserved."""
    ops: list[dict[str, Any]] = []
    prev = None
    for i in range(1, 11):
        t = [["r", "y", None], ["w", "y", i]]
        ops += [{"process": 0, "type": "invoke", "f": "txn", "value": t},
                {"process": 0, "type": "ok", "f": "txn",
                 "value": [["r", "y", prev], ["w", "y", i]]}]  # fmt: skip
        prev = i
    for j in range(3000):
        t = [["w", "y", 100 + j]]
        ops += [{"process": 10 + j, "type": "invoke", "f": "txn", "value": t},
                {"process": 10 + j, "type": "info", "f": "txn", "value": t}]  # fmt: skip
    for p, t, out in ((1, [["w", "x", 1]], None), (2, [["w", "x", 2]], None),
                      (3, [["r", "x", None]], [["r", "x", 1]])):  # fmt: skip
        ops += [{"process": p, "type": "invoke", "f": "txn", "value": t},
                {"process": p, "type": "ok", "f": "txn", "value": out or t}]  # fmt: skip
    r = check(History.from_ops(ops), "rw-register", "serializable", wfr_keys=True,
              max_memory=256 * 2**20)  # fmt: skip
    assert r.valid is True, r.cause


def test_clew_check_gives_a_txn_check_its_budget_from_the_files_opening(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """clew check gave the transactional checker what was left of --time-limit after
    reading, so the cause named a limit nobody gave ("time limit 0.188552 s"), without the
    flag to raise, and a check stopped before parsing printed "0 txns"."""
    from click.testing import CliRunner

    from checkers.txn.budget import Budget
    from harness.cli import cli
    from harness.formats import write_history

    path = tmp_path / "h.jsonl"
    write_history(ring(5), str(path), "jsonl")
    monkeypatch.setattr(Budget, "elapsed", lambda self: 100.0)  # the checker's clock only
    res = CliRunner().invoke(cli, ["check", "--model", "list-append", "--time-limit", "50",
                                   str(path)])  # fmt: skip
    assert res.exit_code == 2, res.output
    first, cause = res.output.splitlines()[:2]
    assert first.startswith(f"UNKNOWN  {path}  (list-append, serializable, ")
    assert "txns" not in first
    assert cause.strip() == ("ran out of time in the parse phase (time limit 50 s); raise "
                             "--time-limit")  # fmt: skip


def _spent_in(phase: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the budget run out when ``phase`` looks at it (and at every later look)."""
    from checkers.txn.budget import Budget, OutOfBudget

    real = Budget.check
    spent: list[str] = []

    def check_(self: Budget, name: str) -> None:
        if name == phase or spent:
            spent.append(name)
            raise OutOfBudget(name, "time", "time limit 2 s")
        real(self, name)

    monkeypatch.setattr(Budget, "check", check_)


def test_cycles_found_as_the_search_runs_out_are_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    """A budget spent by the end of the cycle search lost the cycles found before it (an
    earlier component's G2-item): unknown. They decide the verdict; the explaining that
    follows finds the budget spent and leaves them unexplained."""
    import importlib

    txn_check = importlib.import_module("checkers.txn.check")  # (the package's check shadows it)
    search = txn_check._search

    def search_then_time_is_up(*args: Any) -> Any:
        out = search(*args)
        args[4].started -= 1000  # the budget: its time spent as the search returns
        return out

    monkeypatch.setattr(txn_check, "_search", search_then_time_is_up)
    r = check(ring(5), "list-append", "serializable", time_limit=60)
    assert r.valid is False
    assert r.cause == ("G2-item: not serializable; cycles left unexplained: ran out of time "
                       "in the explain phase (time limit 60 s)")  # fmt: skip


def test_an_unexplained_cycle_keeps_what_it_assumes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cycle through a version order that strict serializability implies assumes it; left
    unexplained it lost the mark, so strict-serializable was no longer the model ruled out
    (``not``), weaker ones were."""
    from tests.unit.txn_histories import R, W, serial

    h = serial((0, "ok", [W("x", 1)]), (1, "ok", [W("x", 2)]), (2, "ok", [R("x", 1)]))
    explained = check(h, "rw-register", "strict-serializable")
    _spent_in("explain", monkeypatch)
    unexplained = check(h, "rw-register", "strict-serializable")
    assert explained.valid is unexplained.valid is False
    assert unexplained.details["not"] == explained.details["not"] == ["strict-serializable"]
    assert unexplained.details["also_not"] == explained.details["also_not"]
    (rec,) = next(iter(unexplained.details["anomaly_details"].values()))
    assert rec["steps"] == [] and rec["assumes"] == "strict-serializable"


def test_a_check_out_of_budget_after_parsing_keeps_the_count_of_txns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _spent_in("analysis", monkeypatch)
    r = check(ring(5), "list-append", "serializable")
    assert r.valid == "unknown" and r.details["stats"]["txns"] == 6
