"""The transactional checker's entry point: ``check(history, model, consistency) -> Result``.

Steps: parse the transactions; let the model (list-append or rw-register) infer version
orders, data-dependency edges and the non-cycle anomalies; add process or realtime edges
if the requested consistency model forbids anomalies that need them; take strongly
connected components of the whole graph; search each non-trivial component for cycles of
every anomaly class that would rule out the requested model, most severe first, each
component under its own time limit; explain each cycle found. With no anomaly found, look
for a witness (a serial order that replays, :mod:`checkers.txn.witness`) and, for
rw-register, try the total version orders when they are few. Every phase is counted against
one time and memory budget (:mod:`checkers.txn.budget`); running out answers unknown naming
the phase.

Realtime order is encoded linearly: ok completions point to a barrier vertex made at the
next invocation, barriers form a chain, and each invocation hangs off the newest barrier
(:func:`checkers.txn.graph.realtime_edges`). Cycles through barriers are reported with the
barriers folded away, so explanations name only transactions.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from checkers.result import UNKNOWN, Result
from checkers.txn import lattice
from checkers.txn.analysis import Analysis
from checkers.txn.budget import Budget, OutOfBudget
from checkers.txn.cycles import (
    ANY_RW,
    SPECS,
    Cycle,
    Spec,
    Subgraph,
    Timeout,
    find_cycle,
    specs_for,
)
from checkers.txn.explain import explain_cycle, unexplained_cycle
from checkers.txn.graph import (
    PROCESS,
    REALTIME,
    RW,
    WR,
    WW,
    Edges,
    Graph,
    build_graph,
    process_edges,
)
from checkers.txn.graph import realtime_edges as rt_edges
from checkers.txn.parse import TxnFormatError, Txns, parse
from checkers.txn.witness import replay, serial_order
from checkers.units import UnitMap
from harness.errors import ConfigError
from harness.history import OK, History

__all__ = [
    "DEFAULT_CONSISTENCY",
    "DEFAULT_MAX_CYCLES",
    "DEFAULT_MAX_MEMORY",
    "DEFAULT_MAX_VERSION_ORDERS",
    "DEFAULT_SCC_TIME_LIMIT",
    "DEFAULT_TIME_LIMIT",
    "MODELS",
    "check",
]

MODELS = ("list-append", "rw-register")
DEFAULT_CONSISTENCY = "serializable"
#: Seconds for the whole cycle search; SCCs not reached by then make the verdict unknown.
DEFAULT_TIME_LIMIT = 60.0
#: Seconds of cycle search per strongly connected component (Elle's default is 1 s).
DEFAULT_SCC_TIME_LIMIT = 1.0
#: Cycles kept (and explained) per anomaly type; once every searched type has this many,
#: the remaining components are not searched (``anomaly_counts`` then counts kept cycles).
DEFAULT_MAX_CYCLES = 8
#: Records kept per non-cycle anomaly type (``anomaly_counts`` has the full count).
MAX_RECORDS = 32
#: Resident bytes the whole check may add to the process's (history included) at its start.
DEFAULT_MAX_MEMORY = 2 * 2**30
#: rw-register: most combinations of total version orders tried when the inferred
#: (partial) ones leave the verdict open; beyond it the answer is unknown.
DEFAULT_MAX_VERSION_ORDERS = 256


def check(
    history: History,
    model: str = "list-append",
    consistency: str = DEFAULT_CONSISTENCY,
    *,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    scc_time_limit: float = DEFAULT_SCC_TIME_LIMIT,
    max_cycles: int = DEFAULT_MAX_CYCLES,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
    max_version_orders: int = DEFAULT_MAX_VERSION_ORDERS,
    wfr_keys: bool = False,
    sequential_keys: bool = False,
    linearizable_keys: bool = False,
    initial_state: Mapping[Any, Any] | None = None,
    unit_map: UnitMap | None = None,
    started: float | None = None,
) -> Result:
    """Check a transactional history for the anomalies that rule out ``consistency``.

    ``model`` is ``list-append`` or ``rw-register``. For rw-register, version orders can use
    the assumptions ``wfr_keys``, ``sequential_keys`` and ``linearizable_keys`` (Elle's),
    ``initial_state`` (key → value) replaces "every key starts nil", and
    ``consistency="strict-serializable"`` itself implies that version orders follow real
    time (see :mod:`checkers.txn.rw_register`).

    Returns ``valid=False`` when an anomaly that rules out ``consistency`` was found.
    ``True`` means, for serializable and the stronger models a witness can prove
    (strict-serializable, strong-session-serializable), that a serial order was found and
    replayed; for weaker models, that no anomaly they forbid was found (Elle's meaning).
    ``"unknown"`` comes with the cause: the history does not fit the model, the version
    order is ambiguous (rw-register: more than ``max_version_orders`` total orders could
    explain it), or a phase ran out of the budget (``time_limit`` seconds and
    ``max_memory`` bytes of resident memory added to the process's at the start, for the
    whole check, every phase counted; ``scc_time_limit`` per component of the cycle
    search). ``details`` holds ``anomalies`` (names), ``anomaly_details`` (records),
    ``explanations`` (text per cycle), ``not`` / ``also_not`` (models ruled out),
    ``proof`` and statistics. Raises :class:`ConfigError` for an unknown model or
    consistency or a non-positive limit.

    ``unit_map`` (see :mod:`checkers.units`) runs the cycle search of the strongly
    connected components elsewhere (e.g. on a Dask cluster); the verdict is the same.
    ``started`` (a ``time.perf_counter()``, default now) is when the budget's time began,
    e.g. before the history was read; ``seconds`` count from it too.
    """
    t0 = time.perf_counter() if started is None else started
    if model not in MODELS:
        raise ConfigError(f"unknown transactional model {model!r}; choose one of "
                          f"{', '.join(MODELS)}")  # fmt: skip
    try:
        lattice.check_model_name(consistency)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if time_limit is not None and time_limit <= 0:
        raise ConfigError("`time_limit` must be positive")
    if max_memory is not None and max_memory <= 0:
        raise ConfigError("`max_memory` must be positive")
    checker = f"txn/{model}"
    base: dict[str, Any] = {"model": model, "consistency": consistency}
    budget = Budget(t0, time_limit, max_memory)
    timings: dict[str, float] = {}
    known: dict[str, int] = {}  # counts known before a budget ran out (txns, once parsed)
    collecting = gc.isenabled()
    gc.disable()  # the phases build millions of small objects and few cycles: no scans
    try:
        return _check(history, model, consistency, checker, base, budget, timings, known,
                      scc_time_limit=scc_time_limit, max_cycles=max_cycles,
                      max_version_orders=max_version_orders, wfr_keys=wfr_keys,
                      sequential_keys=sequential_keys, linearizable_keys=linearizable_keys,
                      initial_state=initial_state, unit_map=unit_map)  # fmt: skip
    except TxnFormatError as e:
        return Result(valid=UNKNOWN, checker=checker, cause=str(e),
                      seconds=time.perf_counter() - t0,
                      details={**base, "anomalies": [], "explanations": []})  # fmt: skip
    except (OutOfBudget, MemoryError) as e:
        if isinstance(e, MemoryError):
            e = OutOfBudget(_phase_of(timings), "memory", "allocation failed")
        return Result(valid=UNKNOWN, checker=checker, cause=str(e),
                      seconds=time.perf_counter() - t0,
                      details={**base, "anomalies": [], "explanations": [],
                               "unknown": [{"type": "budget", "phase": e.phase,
                                            "resource": e.resource}],
                               "stats": {**known, "timings": timings}})  # fmt: skip
    finally:
        if collecting:
            gc.enable()


_PHASES = ("parse", "analysis", "graph", "scc", "cycles", "explain", "witness",
           "version-orders")  # fmt: skip


def _phase_of(timings: dict[str, float]) -> str:
    """The phase after the last one timed (the one running when memory ran out)."""
    done = [p for p in _PHASES if p in timings]
    return _PHASES[len(done)] if len(done) < len(_PHASES) else _PHASES[-1]


def _check(
    history: History,
    model: str,
    consistency: str,
    checker: str,
    base: dict[str, Any],
    budget: Budget,
    timings: dict[str, float],
    known: dict[str, int],
    *,
    scc_time_limit: float,
    max_cycles: int,
    max_version_orders: int,
    wfr_keys: bool,
    sequential_keys: bool,
    linearizable_keys: bool,
    initial_state: Mapping[Any, Any] | None,
    unit_map: UnitMap | None = None,
) -> Result:
    t = budget.started

    def mark(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 4)
        return now

    def lap(name: str, since: float) -> float:
        now = mark(name, since)
        budget.check(name)
        return now

    # per transaction and mop, a few dozen bytes of columns and edges
    budget.reserve("parse", 64 * len(history))
    tx = parse(history, model, budget.check)
    known["txns"] = tx.n
    t = lap("parse", t)
    cycle_names = {s.name for s in SPECS}
    wanted = lattice.relevant_anomalies(consistency, cycle_names)
    wants_rt = any(a.endswith("-realtime") for a in wanted)
    initial: dict[int, int] = {}
    if model == "list-append":
        from checkers.txn.list_append import analyze

        an = analyze(tx, budget.check)
    else:
        from checkers.txn.rw_register import analyze as analyze_rw
        from checkers.txn.rw_register import encode_initial_state

        initial = encode_initial_state(tx, initial_state)
        an = analyze_rw(tx, wfr_keys=wfr_keys, sequential_keys=sequential_keys,
                        linearizable_keys=linearizable_keys, initial=initial, tick=budget.check,
                        realtime_versions=lattice.canonical(consistency) == "PL-SS")  # fmt: skip
    t = lap("analysis", t)

    data_parts = list(an.edges)
    order_parts = []
    relations = WW | WR | RW
    n_vertices = tx.n
    if wants_rt:
        rt, n_barriers = rt_edges(tx)
        order_parts.append(rt)
        n_vertices += n_barriers
        relations |= REALTIME | PROCESS
    elif any(a.endswith("-process") for a in wanted):
        order_parts.append(process_edges(tx))
        relations |= PROCESS
    budget.reserve("graph", 40 * sum(len(p[0]) for p in data_parts + order_parts))
    g = build_graph(n_vertices, data_parts + order_parts)
    t = lap("graph", t)
    _, comp = g.sccs()
    t = lap("scc", t)

    specs = specs_for(wanted, relations)
    found, unknowns, n_sccs, largest = _search(
        g.csr, comp, specs, relations, budget, scc_time_limit, max_cycles, unit_map
    )
    # the cycles found decide the verdict: a spent budget is met when explaining them
    t = mark("cycles", t) if found else lap("cycles", t)

    records: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    explanations: list[str] = []
    unexplained: str | None = None  # why the cycles left were not explained
    for name, cycles in found.items():
        counts[name] = len(cycles)
        for i, c in enumerate(cycles):
            c = _without_barriers(c, tx.n)
            if unexplained is None:
                try:
                    budget.check("explain")
                except OutOfBudget as e:  # the cycles found still decide the verdict
                    unexplained = str(e)
            if unexplained is None:
                rec = explain_cycle(tx, c, an.explain, i)
            else:
                rec = unexplained_cycle(tx, c, i, unexplained)
            if any(st["type"] == "realtime-version" for st in rec["steps"]):
                rec["assumes"] = "strict-serializable"  # (unexplained_cycle sets its own)
            records.setdefault(name, []).append(rec)
            explanations.append(rec["explanation"])
    for name, recs in an.anomalies.items():
        counts[name] = len(recs)
        records[name] = recs[:MAX_RECORDS]
    # (spent while explaining: a look now would raise again; the phases after it look)
    t = lap("explain", t) if unexplained is None else mark("explain", t)

    names = set(counts)
    relevant = sorted(lattice.relevant_anomalies(consistency, names))
    unknown_names: list[str] = [u["type"] for u in unknowns] + list(an.unknown)
    proof: dict[str, Any] = {}
    cases: list[set[str]] = []
    if not relevant and not unknown_names:
        proof = _prove(tx, an, g, relations, consistency, initial)
        t = lap("witness", t)
        if proof.get("needs_orders") and an.versions is not None:
            outcome = _try_version_orders(
                tx, an, data_parts, order_parts, n_vertices, relations, specs, consistency,
                initial, budget, scc_time_limit, max_version_orders,
            )  # fmt: skip
            t = lap("version-orders", t)
            proof.update(outcome.pop("proof"))
            cases = outcome.pop("cases")
            trial_unknowns = outcome.pop("unknowns")
            unknowns += trial_unknowns
            unknown_names = [u["type"] for u in trial_unknowns] + unknown_names
            for name, recs in outcome.pop("records").items():
                counts[name] = counts.get(name, 0) + len(recs)
                records.setdefault(name, []).extend(recs[:MAX_RECORDS])
                explanations += [r["explanation"] for r in recs if "explanation" in r]
            names = set(counts)
            relevant = sorted(lattice.relevant_anomalies(consistency, names))
        if not relevant and not proof.get("valid") and proof.get("required"):
            if not unknowns:  # else a search that ran out of time under some order says why
                unknown_names.append("version-order-ambiguous")
        elif g.n_edges == 0 and not names and tx.n > 0 and not proof.get("valid"):
            unknown_names.append("empty-transaction-graph")
    others = sorted(names - set(relevant))
    if cases:
        not_, also_not = lattice.ruled_out_in_every_case(cases)
    else:
        not_, also_not = _ruled_out(names, records)
    details = {
        **base,
        "anomalies": relevant,
        "also_found": others,
        "anomaly_counts": counts,
        "anomaly_details": records,
        "explanations": explanations,
        "not": not_,
        "also_not": also_not,
        # the search's own records, then each other reason once (by name)
        "unknown": unknowns + [{"type": u} for u in unknown_names[len(unknowns) :]],
        "proof": {k: v for k, v in proof.items() if k != "needs_orders"},
        "stats": {
            "txns": tx.n, "mops": len(tx.m_f), "edges": g.n_edges, "sccs": n_sccs,
            "largest_scc": largest, "barriers": n_vertices - tx.n, **an.stats,
            "timings": timings,
        },
    }  # fmt: skip
    seconds = budget.elapsed()
    if relevant:
        first = records[relevant[0]][0] if records.get(relevant[0]) else None
        cause = f"{', '.join(relevant)}: not {consistency}"
        if first and first.get("steps"):
            cause += " (" + "; ".join(s["text"] for s in first["steps"]) + ")"
        if unexplained is not None:
            cause += f"; cycles left unexplained: {unexplained}"
        return Result(valid=False, checker=checker, cause=cause, seconds=seconds,
                      details=details)  # fmt: skip
    if unknown_names:
        why = {**_WHY, **_OPEN_WHY.get(str(proof.get("open")), {})}
        cause = "; ".join(dict.fromkeys(why.get(u, u) for u in unknown_names))
        return Result(valid=UNKNOWN, checker=checker, cause=cause, seconds=seconds,
                      details=details)  # fmt: skip
    return Result(valid=True, checker=checker, seconds=seconds, details=details)


_WHY = {
    "empty-transaction-graph": "no transaction depends on another, so nothing can be inferred",
    "cycle-search-timeout": "the cycle search ran out of time in a large strongly "
    "connected component; raise the time limits",
    "version-order-ambiguous": "version order ambiguous: no anomaly was found under the "
    "inferred version orders, but no serial order could be confirmed either (too many "
    "total orders to try; raise max_version_orders)",
}

#: Why the version orders left the proof open, when it was not their number.
_OPEN_WHY = {
    "cycle not named": {
        "version-order-ambiguous": "version order ambiguous: under one of the total "
        "version orders the graph is cyclic, yet no cycle found rules the model out"
    },
    "no replay": {
        "version-order-ambiguous": "version order ambiguous: under one of the total "
        "version orders the graph is acyclic, yet no serial order it allows was found to "
        "replay the reads, and under none of the others did one"
    },
}


def _witness_model(relations: int) -> str:
    """What a replayed topological order of a graph with these relations proves."""
    if relations & REALTIME:
        return "strict-serializable"
    if relations & PROCESS:
        return "strong-session-serializable"
    return "serializable"


def _prove(
    tx: Txns, an: Analysis, g: Graph, relations: int, consistency: str, initial: dict[int, int]
) -> dict[str, Any]:
    """Look for a serial order that explains the history (see :mod:`checkers.txn.witness`).

    ``valid``: one was found and replayed (so the history is serializable, or strict or
    strong-session serializable with those edges in the graph); ``required``: a verdict of
    valid needs one (``consistency`` is serializable or stronger, and implied by what a
    witness proves); ``needs_orders``: worth trying total version orders.
    """
    proves = _witness_model(relations)
    # below serializability a cycle may be allowed, so no witness is then required
    required = lattice.implies(proves, consistency) and lattice.implies(consistency, "serializable")
    must = an.must_happen if an.must_happen is not None else tx.type == OK
    order = serial_order(tx, g, must)
    out: dict[str, Any] = {"required": required, "witness": proves}
    if order is not None and replay(tx, order, initial) < 0:
        out["valid"] = True
        out["serial_order_of"] = len(order)
        return out
    out["valid"] = False
    out["needs_orders"] = required
    return out


def _try_version_orders(
    tx: Txns,
    an: Analysis,
    data_parts: list[Edges],
    order_parts: list[Edges],
    n_vertices: int,
    relations: int,
    specs: list[Spec],
    consistency: str,
    initial: dict[int, int],
    budget: Budget,
    scc_time_limit: float,
    limit: int,
) -> dict[str, Any]:
    """Try every total version order (rw-register) compatible with the inferred ones.

    Valid if one has an acyclic graph whose serial order replays; invalid if every one has
    a cycle (each named by the cycle search, records carry the assumed orders); else the
    proof is left open; a cycle search that ran out of time under an order leaves it open
    with that search's ``unknowns``. Gives ``{"proof", "cases", "records", "unknowns"}``.
    """
    none: dict[str, Any] = {"proof": {}, "cases": [], "records": {}, "unknowns": []}
    cands = an.versions.candidates(limit, budget)
    if cands is None:
        none["proof"] = {"version_orders": f"more than {limit}"}
        return none
    wr = [(s[p[2] == WR], d[p[2] == WR], p[2][p[2] == WR]) for p in data_parts
          for s, d in [(p[0], p[1])]]  # fmt: skip
    must = an.must_happen if an.must_happen is not None else tx.type == OK
    graphs: list[tuple[dict[int, list[int]], Graph]] = []
    acyclic_without_replay = False
    for cand in cands:
        budget.check("version-orders")
        g = build_graph(n_vertices, wr + order_parts + an.versions.chain_edges(cand))
        order = serial_order(tx, g, must)
        if order is not None:
            if replay(tx, order, initial) < 0:
                return {**none, "proof": {"valid": True, "version_orders": len(cands),
                                          "serial_order_of": len(order)}}  # fmt: skip
            acyclic_without_replay = True  # another order may still replay: try them all
            continue
        graphs.append((cand, g))
    if acyclic_without_replay:  # not every order is cyclic, and none replayed: say so
        return {**none, "proof": {"version_orders": len(cands), "open": "no replay"}}
    cases: list[set[str]] = []
    records: dict[str, list[dict[str, Any]]] = {}
    for cand, g in graphs:
        _, comp = g.sccs()
        found, undecided, _, _ = _search(g.csr, comp, specs, relations, budget, scc_time_limit, 1)
        assumed = {repr(tx.key_name(k)): [tx.value_name(v) for v in vs] for k, vs in cand.items()}
        # a cycle found rules the order out, even if the search of some class timed out (the
        # fallback's cycle is real, classified as any other): only no named cycle is open
        rel = {n for n in found if lattice.rules_out(n, consistency)}
        if not rel and undecided:
            timeouts = [{**u, "assumed_version_orders": assumed} for u in undecided]
            proof = {"version_orders": len(cands), "open": "cycle search timed out"}
            return {**none, "unknowns": timeouts, "proof": proof}
        if not rel:
            return {**none, "proof": {"version_orders": len(cands), "open": "cycle not named"}}
        cases.append(set(found))
        for name, cycles in found.items():
            if len(records.get(name, ())) >= MAX_RECORDS:
                continue
            ex = an.versions.explain_assuming(cand)
            rec = explain_cycle(tx, _without_barriers(cycles[0], tx.n), ex, 0)
            rec["assumed_version_orders"] = assumed
            rec["explanation"] = (f"Assuming the version orders {assumed} (one of "
                                  f"{len(cands)} possible, each with a cycle):\n"
                                  + rec["explanation"])  # fmt: skip
            records.setdefault(name, []).append(rec)
    return {"proof": {"valid": False, "version_orders": len(cands), "every_order_cyclic": True},
            "cases": cases, "records": records, "unknowns": []}  # fmt: skip


def _ruled_out(
    names: set[str], records: dict[str, list[dict[str, Any]]]
) -> tuple[list[str], list[str]]:
    """``(not, also_not)``; an anomaly whose every record was inferred assuming strict
    serializability (versions follow real time) only rules out strict serializability."""
    assumed = {n for n in names if records.get(n) and all(r.get("assumes") for r in records[n])}
    not_, also_not = lattice.ruled_out_models(names - assumed)
    if assumed and not not_:
        not_ = ["strict-serializable"]
    return not_, also_not


def _without_barriers(c: Cycle, n: int) -> Cycle:
    """The cycle with realtime barrier vertices (ids ``>= n``) folded into realtime steps."""
    if all(v < n for v in c.vertices):
        return c
    k = next(i for i, v in enumerate(c.vertices) if v < n)
    vs = c.vertices[k:] + c.vertices[:k]
    rels = c.rels[k:] + c.rels[:k]
    out_v: list[int] = []
    out_r: list[int] = []
    for v, r in zip(vs, rels, strict=True):
        if v < n:
            out_v.append(v)
            out_r.append(r)
        else:
            out_r[-1] = REALTIME
    return Cycle(out_v, out_r)


@dataclass(frozen=True, slots=True)
class ComponentUnit:
    """One strongly connected component to search for cycles: a unit of work that may
    be sent to another process (see :mod:`checkers.units`)."""

    sub: Subgraph
    specs: tuple[Spec, ...]
    relations: int
    #: Seconds for this component: its own limit, or less when the whole check has less.
    seconds: float
    scc_time_limit: float
    #: Anomaly classes not to search (their quota of explained cycles is full).
    skip: frozenset[str] = frozenset()


def search_component(unit: ComponentUnit) -> tuple[list[Cycle], list[dict[str, Any]]]:
    """The cycles found in one component (at most one per anomaly class, none for classes
    implied by one found), and what its search could not decide (timeouts)."""
    deadline = time.monotonic() + unit.seconds
    found: list[Cycle] = []
    unknowns: list[dict[str, Any]] = []
    implied: set[str] = set()
    sub = unit.sub
    for spec in unit.specs:
        if spec.name in implied or spec.name in unit.skip:
            continue
        if not sub.may_hold(spec):
            continue
        try:
            cyc = find_cycle(sub, spec, deadline)
        except Timeout:
            unknowns.append({"type": "cycle-search-timeout", "anomaly": spec.name,
                             "scc_size": sub.n})  # fmt: skip
            fb = _fallback(sub, unit.relations, unit.scc_time_limit)
            if fb is not None:
                found.append(fb)
            break
        if cyc is not None:
            found.append(cyc)
            implied |= lattice.anomaly_closure(cyc.name)
    return found, unknowns


def _search(
    csr: Any,
    comp: np.ndarray[Any, Any],
    specs: list[Spec],
    relations: int,
    budget: Budget,
    scc_time_limit: float,
    max_cycles: int,
    unit_map: UnitMap | None = None,
) -> tuple[dict[str, list[Cycle]], list[dict[str, Any]], int, int]:
    """Cycles per anomaly class over every non-trivial SCC, with budgets; the components
    searched by ``unit_map`` when given (in any order, anywhere), else here, in order."""
    found: dict[str, list[Cycle]] = {}
    unknowns: list[dict[str, Any]] = []
    sizes = np.bincount(comp) if len(comp) else np.zeros(0, np.int64)
    big = np.flatnonzero(sizes > 1)
    if len(big) == 0 or not specs:
        return found, unknowns, len(big), int(sizes.max(initial=0))
    order = np.argsort(comp, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    members = [order[starts[c] : starts[c + 1]] for c in big.tolist()]
    members.sort(key=lambda vs: int(vs[0]))
    overall = budget.deadline()
    if unit_map is not None:
        return _search_mapped(csr, members, specs, relations, overall, scc_time_limit,
                              max_cycles, unit_map, sizes)  # fmt: skip
    skipped = 0
    for vs in members:
        full = frozenset(s.name for s in specs if len(found.get(s.name, ())) >= max_cycles)
        if len(full) == len(specs):
            break  # every class has its quota of explained cycles
        now = time.monotonic()
        if overall is not None and now > overall:
            skipped += 1
            continue
        seconds = scc_time_limit if overall is None else min(scc_time_limit, overall - now)
        unit = ComponentUnit(Subgraph(csr, np.sort(vs)), tuple(specs), relations, seconds,
                             scc_time_limit, full)  # fmt: skip
        cycles, undecided = search_component(unit)
        for cyc in cycles:
            found.setdefault(cyc.name, []).append(cyc)
        unknowns.extend(undecided)
    if skipped:
        unknowns.append({"type": "cycle-search-timeout", "anomaly": "all",
                         "sccs_not_searched": skipped})  # fmt: skip
    return found, unknowns, len(big), int(sizes.max(initial=0))


def _search_mapped(
    csr: Any,
    members: list[Any],
    specs: list[Spec],
    relations: int,
    overall: float | None,
    scc_time_limit: float,
    max_cycles: int,
    unit_map: UnitMap,
    sizes: np.ndarray[Any, Any],
) -> tuple[dict[str, list[Cycle]], list[dict[str, Any]], int, int]:
    """:func:`_search` with the components as units of ``unit_map``; the cycles are kept
    in component order, up to each class's quota, as the search in order keeps them."""
    left = None if overall is None else max(0.0, overall - time.monotonic())
    seconds = scc_time_limit if left is None else min(scc_time_limit, left)
    units = [ComponentUnit(Subgraph(csr, np.sort(vs)), tuple(specs), relations, seconds,
                           scc_time_limit) for vs in members]  # fmt: skip
    results: dict[int, tuple[list[Cycle], list[dict[str, Any]]]] = dict(
        unit_map(search_component, units, seconds=left)
    )
    found: dict[str, list[Cycle]] = {}
    unknowns: list[dict[str, Any]] = []
    for i in sorted(results):
        cycles, undecided = results[i]
        for cyc in cycles:
            kept = found.setdefault(cyc.name, [])
            if len(kept) < max_cycles:
                kept.append(cyc)
        unknowns.extend(undecided)
    skipped = len(units) - len(results)
    if skipped:
        unknowns.append({"type": "cycle-search-timeout", "anomaly": "all",
                         "sccs_not_searched": skipped})  # fmt: skip
    return found, unknowns, len(units), int(sizes.max(initial=0))


def _fallback(sub: Subgraph, relations: int, seconds: float) -> Cycle | None:
    """Any short cycle of the component, classified normally (after a timeout)."""
    spec = Spec("any", relations & ~RW, ANY_RW, 0)
    try:
        return find_cycle(sub, spec, time.monotonic() + seconds)
    except Timeout:
        return None
