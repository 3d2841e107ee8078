"""The transactional checker's entry point: ``check(history, model, consistency) -> Result``.

Steps: parse the transactions; let the model (list-append or rw-register) infer version
orders, data-dependency edges and the non-cycle anomalies; add process or realtime edges
if the requested consistency model forbids anomalies that need them; take strongly
connected components of the whole graph; search each non-trivial component for cycles of
every anomaly class that would rule out the requested model, most severe first, each
component under its own time limit; explain each cycle found.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from checkers.result import UNKNOWN, Result
from checkers.txn import lattice
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
from checkers.txn.explain import explain_cycle
from checkers.txn.graph import PROCESS, REALTIME, RW, WR, WW, build_graph, process_edges
from checkers.txn.graph import realtime_edges as rt_edges
from checkers.txn.parse import TxnFormatError, parse
from harness.errors import ConfigError
from harness.history import History

__all__ = [
    "DEFAULT_CONSISTENCY",
    "DEFAULT_MAX_CYCLES",
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


def check(
    history: History,
    model: str = "list-append",
    consistency: str = DEFAULT_CONSISTENCY,
    *,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    scc_time_limit: float = DEFAULT_SCC_TIME_LIMIT,
    max_cycles: int = DEFAULT_MAX_CYCLES,
    wfr_keys: bool = False,
    sequential_keys: bool = False,
    linearizable_keys: bool = False,
) -> Result:
    """Check a transactional history for the anomalies that rule out ``consistency``.

    ``model`` is ``list-append`` or ``rw-register`` (whose version orders can use the
    optional assumptions ``wfr_keys``, ``sequential_keys``, ``linearizable_keys``).
    Returns ``valid=False`` when an anomaly that rules out ``consistency`` was found,
    ``"unknown"`` when the history does not fit the model, has no dependency at all, or
    the cycle search ran out of time (``time_limit`` overall, ``scc_time_limit`` per
    component), else ``True``. ``details`` holds ``anomalies`` (names), ``anomaly_details``
    (records), ``explanations`` (text per cycle), ``not`` / ``also_not`` (models ruled
    out) and statistics. Raises :class:`ConfigError` for an unknown model or consistency.
    """
    t0 = time.perf_counter()
    if model not in MODELS:
        raise ConfigError(f"unknown transactional model {model!r}; choose one of "
                          f"{', '.join(MODELS)}")  # fmt: skip
    try:
        lattice.check_model_name(consistency)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if time_limit is not None and time_limit <= 0:
        raise ConfigError("`time_limit` must be positive")
    checker = f"txn/{model}"
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 4)
        return now

    base: dict[str, Any] = {"model": model, "consistency": consistency}
    try:
        tx = parse(history, model)
        t = lap("parse", t0)
        if model == "list-append":
            from checkers.txn.list_append import analyze

            an = analyze(tx)
        else:
            from checkers.txn.rw_register import analyze as analyze_rw

            an = analyze_rw(tx, wfr_keys=wfr_keys, sequential_keys=sequential_keys,
                            linearizable_keys=linearizable_keys)  # fmt: skip
        t = lap("analysis", t)
    except TxnFormatError as e:
        return Result(valid=UNKNOWN, checker=checker, cause=str(e),
                      seconds=time.perf_counter() - t0,
                      details={**base, "anomalies": [], "explanations": []})  # fmt: skip

    cycle_names = {s.name for s in SPECS}
    wanted = lattice.relevant_anomalies(consistency, cycle_names)
    parts = list(an.edges)
    relations = WW | WR | RW
    if any(a.endswith("-realtime") for a in wanted):
        parts.append(rt_edges(tx))
        relations |= REALTIME | PROCESS
    elif any(a.endswith("-process") for a in wanted):
        parts.append(process_edges(tx))
        relations |= PROCESS
    g = build_graph(tx.n, parts)
    t = lap("graph", t)
    _, comp = g.sccs()
    t = lap("scc", t)

    specs = specs_for(wanted, relations)
    found, unknowns, n_sccs, largest = _search(
        g.csr, comp, specs, relations, t0, time_limit, scc_time_limit, max_cycles
    )
    t = lap("cycles", t)

    records: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    explanations: list[str] = []
    for name, cycles in found.items():
        counts[name] = len(cycles)
        for i, c in enumerate(cycles):
            rec = explain_cycle(tx, c, an.explain, i)
            records.setdefault(name, []).append(rec)
            explanations.append(rec["explanation"])
    for name, recs in an.anomalies.items():
        counts[name] = len(recs)
        records[name] = recs[:MAX_RECORDS]
    lap("explain", t)

    names = set(counts)
    relevant = sorted(lattice.relevant_anomalies(consistency, names))
    others = sorted(names - set(relevant))
    not_, also_not = lattice.ruled_out_models(names)
    unknown_names: list[str] = [u["type"] for u in unknowns] + list(an.unknown)
    if g.n_edges == 0 and not names and tx.n > 0:
        unknown_names.append("empty-transaction-graph")
    details = {
        **base,
        "anomalies": relevant,
        "also_found": others,
        "anomaly_counts": counts,
        "anomaly_details": records,
        "explanations": explanations,
        "not": not_,
        "also_not": also_not,
        "unknown": unknowns + [{"type": u} for u in an.unknown],
        "stats": {
            "txns": tx.n, "mops": len(tx.m_f), "edges": g.n_edges, "sccs": n_sccs,
            "largest_scc": largest, **an.stats, "timings": timings,
        },
    }  # fmt: skip
    seconds = time.perf_counter() - t0
    if relevant:
        first = records[relevant[0]][0] if records.get(relevant[0]) else None
        cause = f"{', '.join(relevant)}: not {consistency}"
        if first and "explanation" in first:
            cause += " (" + "; ".join(s["text"] for s in first["steps"]) + ")"
        return Result(valid=False, checker=checker, cause=cause, seconds=seconds,
                      details=details)  # fmt: skip
    if unknown_names:
        why = {
            "empty-transaction-graph": "no transaction depends on another, so nothing can "
            "be inferred",
            "cycle-search-timeout": "the cycle search ran out of time in a large strongly "
            "connected component; raise the time limits",
        }
        cause = "; ".join(dict.fromkeys(why.get(u, u) for u in unknown_names))
        return Result(valid=UNKNOWN, checker=checker, cause=cause, seconds=seconds,
                      details=details)  # fmt: skip
    return Result(valid=True, checker=checker, seconds=seconds, details=details)


def _search(
    csr: Any,
    comp: np.ndarray[Any, Any],
    specs: list[Spec],
    relations: int,
    t0: float,
    time_limit: float | None,
    scc_time_limit: float,
    max_cycles: int,
) -> tuple[dict[str, list[Cycle]], list[dict[str, Any]], int, int]:
    """Cycles per anomaly class over every non-trivial SCC, with budgets."""
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
    overall = None if time_limit is None else time.monotonic() + time_limit - (
        time.perf_counter() - t0)  # fmt: skip
    skipped = 0
    for vs in members:
        if all(len(found.get(s.name, ())) >= max_cycles for s in specs):
            break  # every class has its quota of explained cycles
        now = time.monotonic()
        if overall is not None and now > overall:
            skipped += 1
            continue
        deadline = now + scc_time_limit
        if overall is not None:
            deadline = min(deadline, overall)
        sub = Subgraph(csr, np.sort(vs))
        implied: set[str] = set()
        for spec in specs:
            if spec.name in implied or len(found.get(spec.name, ())) >= max_cycles:
                continue
            if not sub.may_hold(spec):
                continue
            try:
                cyc = find_cycle(sub, spec, deadline)
            except Timeout:
                unknowns.append({"type": "cycle-search-timeout", "anomaly": spec.name,
                                 "scc_size": sub.n})  # fmt: skip
                fb = _fallback(sub, relations, scc_time_limit)
                if fb is not None:
                    found.setdefault(fb.name, []).append(fb)
                break
            if cyc is not None:
                found.setdefault(cyc.name, []).append(cyc)
                implied |= lattice.anomaly_closure(cyc.name)
    if skipped:
        unknowns.append({"type": "cycle-search-timeout", "anomaly": "all",
                         "sccs_not_searched": skipped})  # fmt: skip
    return found, unknowns, len(big), int(sizes.max(initial=0))


def _fallback(sub: Subgraph, relations: int, seconds: float) -> Cycle | None:
    """Any short cycle of the component, classified normally (after a timeout)."""
    spec = Spec("any", relations & ~RW, ANY_RW, 0)
    try:
        return find_cycle(sub, spec, time.monotonic() + seconds)
    except Timeout:
        return None
