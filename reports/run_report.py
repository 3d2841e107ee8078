"""``report.html``: one self-contained page per run, written into the run's directory.

A run directory (``store/<test>/<YYYYmmddTHHMMSS>/``) may hold ``history.jsonl``,
``results.json``, ``spec.json``, ``faults.jsonl``, ``nodes/<name>/*.log`` and the node
agents' ``nodes/<name>/agent.jsonl`` (:mod:`reports.agent_journal`); the report
renders whatever is present and says what is missing. Sections: summary (verdicts, spec,
seed, nodes, duration, op counts, how to reproduce), latency, latency quantiles (per ``f``)
and throughput over time with fault windows coloured by kind, a canvas timeline of every
client op (up to :data:`reports.columns.MAX_OPS`) with the faults' targets and a row per
node, the merged per-node timeline (node logs, the node agents' records, fault ledger,
client ops), the linearizability failure view for each counterexample, the transactional
anomalies (also written as Elle-style text files, ``elle/<anomaly>.txt``), and the fault
ledger with links to the node logs.

The page inlines the ops as typed columns (:mod:`reports.columns`) and capped chart series
(:mod:`reports.data`); the full history stays in ``history.jsonl`` next to it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shlex
import time
import urllib.parse
from pathlib import Path
from typing import Any

import jinja2

from harness.errors import ClewError
from harness.history import History
from harness.record import (
    count_fault_records,
    read_fault_ledger,
    read_json_file,
    read_results_object,
    verdict,
    write_text_file,
)
from harness.store import leads_out, refuse_special_files
from reports.agent_journal import agent_lines
from reports.collection_views import collection_views
from reports.columns import MAX_OPS, op_columns
from reports.data import (
    duration_text,
    fault_windows,
    latency_quantiles,
    latency_series,
    nemesis_record_count,
    nemesis_records,
    op_counts,
    short_json,
    throughput_series,
    time_axis,
)
from reports.elle_files import elle_links, write_elle_files
from reports.elle_files import file_name as elle_file_name
from reports.node_logs import node_log_lines
from reports.render import render
from reports.txn_view import edge_legend, find_anomalies

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "MAX_FAULT_RECORDS",
    "MAX_FAULT_ROWS",
    "MAX_LINEARIZED",
    "REPORT_NAME",
    "build_page",
    "find_failures",
    "load_run",
    "render_run_report",
    "run_start",
    "trim_counterexample",
    "write_run_report",
]

log = logging.getLogger("clew.reports")

#: The report's file name in a run directory.
REPORT_NAME = "report.html"
#: Linearized steps of a counterexample kept in the page (the end of the prefix).
MAX_LINEARIZED = 200
#: Linearized steps shown in the counterexample's tables.
PREFIX_TAIL = 25
#: Fault ledger rows shown.
MAX_FAULT_ROWS = 1_000
#: Fault ledger records read (``faults.jsonl``, or the history's nemesis ops): the fault
#: windows drawn are those of the first ones, and the page says how many there were.
MAX_FAULT_RECORDS = 20_000
#: Longest state text kept per step; larger states are abbreviated.
MAX_STATE_CHARS = 2_000
#: Longest JSON text of a checker's details shown.
MAX_DETAILS_CHARS = 20_000
#: Memory that reading ``history.jsonl`` for a report may add (``clew report
#: --max-memory``); beyond it the page is made without the history and says why.
DEFAULT_MAX_MEMORY = 2 * 1024**3
#: ``load_run``'s ``results`` when the caller has not read them.
_UNREAD: Any = object()
#: Timestamp format of run directory names.
RUN_NAME_FORMAT = "%Y%m%dT%H%M%S"


def _state(value: Any) -> Any:
    # (a text the checker abbreviated is within the cap, but longer once quoted as JSON)
    if isinstance(value, str) and len(value) <= MAX_STATE_CHARS + 64:
        return value
    text = json.dumps(value, default=repr)
    return value if len(text) <= MAX_STATE_CHARS else short_json(value, MAX_STATE_CHARS)


def trim_counterexample(cex: dict[str, Any]) -> dict[str, Any]:
    """A counterexample capped for the page: the last :data:`MAX_LINEARIZED` linearized steps
    (``linearized_total`` and ``linearized_offset`` say how many there were and where the
    kept ones start), large states abbreviated, and missing fields filled in."""
    lin = cex.get("linearized")
    lin = [s for s in lin if isinstance(s, dict)] if isinstance(lin, list) else []  # (damaged)
    kept = lin[-MAX_LINEARIZED:]
    # the checker describes only the prefix's last steps, and says how many there were
    # (and, when it ran out of time, fewer than those: ``incomplete`` says so)
    given, offset = cex.get("linearized_total"), cex.get("linearized_offset")
    described = len(lin) if cex.get("incomplete") is None else 0
    if not (isinstance(given, int) and isinstance(offset, int) and offset >= 0
            and offset + described <= given and offset + len(lin) <= given
            and (cex.get("incomplete") is not None or offset + len(lin) == given)):
        given, offset = len(lin), 0  # (older or damaged: counted here)  # fmt: skip
    total = given
    out = dict(cex)
    out["linearized"] = [
        {
            **s,
            "state_before": _state(s.get("state_before")),
            "state_after": _state(s.get("state_after")),
        }
        for s in kept
    ]
    out["could_not_follow"] = [
        {**s, "state_after": _state(s.get("state_after"))}
        for s in _dicts(cex.get("could_not_follow"))
    ]
    out["state"] = _state(cex.get("state"))
    out["linearized_total"] = total
    out["linearized_offset"] = offset + len(lin) - len(kept)
    out.setdefault("key", None)
    out.setdefault("model", "?")
    out.setdefault("deadline_op", None)
    out.setdefault("ops", [])
    out.setdefault("ops_total", len(out["ops"]))
    stuck_total = cex.get("could_not_follow_total")
    n_stuck = len(out["could_not_follow"])
    out["could_not_follow_total"] = (stuck_total if isinstance(stuck_total, int)
                                     and stuck_total >= n_stuck else n_stuck)  # fmt: skip
    incomplete = cex.get("incomplete")
    out["incomplete"] = str(incomplete)[:500] if incomplete is not None else None
    return out


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects in ``value`` if it is a list (a damaged results.json: anything)."""
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def find_failures(checkers: dict[str, Any]) -> list[dict[str, Any]]:
    """The counterexamples in per-checker results (``counterexample`` in a checker's result
    or in its ``details``), trimmed for the page."""
    out = []
    for name, res in checkers.items():
        if not isinstance(res, dict):
            continue
        cex = res.get("counterexample")
        if cex is None and isinstance(res.get("details"), dict):
            cex = res["details"].get("counterexample")
        if isinstance(cex, dict) and "linearized" in cex:
            out.append(
                {
                    "checker": name,
                    "cause": res.get("cause"),
                    "counterexample": trim_counterexample(cex),
                }
            )
    return out


def _details(res: dict[str, Any]) -> str:
    rest = {k: v for k, v in res.items() if k not in ("valid", "cause", "counterexample")}
    if isinstance(rest.get("details"), dict):
        rest["details"] = {k: v for k, v in rest["details"].items() if k != "counterexample"}
    if not rest:
        return ""
    return capped_json(rest, MAX_DETAILS_CHARS, "see results.json")


def capped_json(value: Any, limit: int, where: str) -> str:
    """``value`` as indented JSON text, cut after ``limit`` characters (``where`` says
    where the rest is). The text is made only up to the cut: a checker's details of a
    million anomalies took a gigabyte and seconds to write out, to show 20,000 chars."""
    parts: list[str] = []
    size = 0
    for chunk in json.JSONEncoder(indent=1, default=repr).iterencode(value):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return "".join(parts)[:limit] + f"\n… (cut at {limit:,} chars; {where})"
    return "".join(parts)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def build_page(
    history: History | None,
    *,
    title: str,
    results: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    faults: list[dict[str, Any]] | None = None,
    faults_total: int | None = None,
    run_dir: Path | None = None,
    history_error: str | None = None,
    logs: list[dict[str, Any]] | None = None,
    files: list[dict[str, str]] | None = None,
    reproduce: list[tuple[str, str]] | None = None,
    index_href: str | None = None,
    max_ops: int = MAX_OPS,
) -> dict[str, Any]:
    """The template context (and inlined payload) of a report, from whatever is known:
    the timeline embeds the first ``max_ops`` client ops.
    ``faults``: the fault ledger's first records (at most :data:`MAX_FAULT_RECORDS`), of
    ``faults_total`` (default: as many as given)."""
    results = results or {}
    checkers_in = results.get("checkers")
    checkers_in = checkers_in if isinstance(checkers_in, dict) else {}
    checkers = [
        {
            "name": name,
            "valid": res.get("valid") if isinstance(res, dict) else None,
            "cause": (res.get("cause") or res.get("explanation") or res.get("error"))
            if isinstance(res, dict)
            else str(res),
            "details": _details(res) if isinstance(res, dict) else "",
        }
        for name, res in checkers_in.items()
    ]
    failures = find_failures(checkers_in)
    if not failures and isinstance(results.get("counterexample"), dict):
        failures = find_failures({"linearizable": results})
    if "valid" in results or not checkers:
        valid = results.get("valid")
    else:  # a checker that gave no verdict (an error, a damaged file) leaves it unknown
        valid = verdict(c["valid"] if c["valid"] in (True, False) else "unknown" for c in checkers)

    facts: list[tuple[str, str]] = []
    payload: dict[str, Any] = {"failures": failures}
    ctx: dict[str, Any] = {}
    spec = spec if isinstance(spec, dict) else None
    if spec:
        for key in ("name", "seed", "nodes", "time_limit", "concurrency", "workload", "nemesis"):
            if key in spec and spec[key] is not None:
                v = spec[key]
                facts.append((key.replace("_", " "), v if isinstance(v, str) else short_json(v)))
    if spec and spec.get("faults") is not None:
        kinds = spec["faults"]  # (a list of names, unless the file was damaged)
        text = ", ".join(map(str, kinds)) if isinstance(kinds, list) else short_json(kinds)
        facts.append(("faults", text or "none"))
    if spec and spec.get("replay_of"):
        facts.append(("replay of", str(spec["replay_of"])))
    if results.get("heal_verified") is not None or results.get("tainted"):
        facts.append(("heal", _heal_fact(results)))
    records = list(faults or [])
    records_total = len(records) if faults_total is None else max(faults_total, len(records))
    if history is not None:
        axis = time_axis(history)
        counts = op_counts(history)
        end = int(axis.times.max()) if len(history) else None
        if not records:
            records = nemesis_records(history, axis, MAX_FAULT_RECORDS)
            records_total = nemesis_record_count(history)
        windows = fault_windows(records, axis, end)
        lat = latency_series(history, axis)
        cols = op_columns(history, axis, max_ops)
        logs_data = (
            node_log_lines(run_dir, axis.origin, axis.ns_per_unit)
            if run_dir is not None and not axis.positions
            else None
        )
        agents_data = (
            agent_lines(run_dir, axis.origin, axis.ns_per_unit)
            if run_dir is not None and not axis.positions
            else None
        )
        payload.update(
            axis=axis.describe(),
            agents=agents_data,
            latency=lat,
            quantiles=latency_quantiles(history, axis),
            throughput=throughput_series(history, axis),
            ops=cols,
            faults=windows,
            node_logs=logs_data,
            concurrency=spec.get("concurrency") if spec else None,
        )
        span = float(axis.x(end)) if end is not None else 0.0
        facts.append(
            (
                "duration",
                f"{span:.0f} positions (no real times: {axis.no_times})"
                if axis.positions
                else duration_text(span * axis.ns_per_unit / 1e9),
            )
        )
        facts.append(
            ("ops", f"{counts['invocations']} client ops ({counts['entries']} history lines)")
        )
        ctx.update(
            counts=counts,
            axis_positions=axis.positions,
            axis_info=axis.describe(),
            latency_cap=lat if lat["shown"] < lat["total"] else None,
            timeline_cap=(
                {"shown": cols["shown"], "total": cols["total"]}
                if cols["shown"] < cols["total"]
                else None
            ),
            values_dropped=cols["texts_dropped"],
            node_logs=logs_data,
            agents=agents_data,
            faults=windows,
        )
    else:
        axis = None
        ctx.update(
            counts=None,
            axis_positions=False,
            axis_info=None,
            latency_cap=None,
            timeline_cap=None,
            faults=[],
            values_dropped=False,
            node_logs=None,
            agents=None,
        )
    if isinstance(results.get("wall_seconds"), int | float):
        facts.append(("wall time", duration_text(float(results["wall_seconds"]))))
    fault_rows = [
        {
            "t": (
                f"{float(axis.x(int(r['time']))):.3f}"
                if axis is not None and isinstance(r.get("time"), int | float)
                else str(r.get("time", ""))
            ),
            "phase": r.get("event") or r.get("phase") or "",
            "f": str(r.get("f", "")),
            "value": short_json(
                r.get("residue") if r.get("event") == "verified" else r.get("value")
            )
            + (f" → {_targets_text(r['targets'])}" if r.get("targets") else "")
            + (f" ({r['error']})" if r.get("error") else ""),
        }
        for r in records[:MAX_FAULT_ROWS]
        if isinstance(r, dict)
    ]
    ctx.update(
        title=title,
        valid=valid,
        checkers=checkers,
        facts=facts,
        spec=capped_json(spec, MAX_DETAILS_CHARS, "see spec.json") if spec else None,
        reproduce=reproduce or [],
        failures=failures,
        anomalies=find_anomalies(checkers_in),
        collection_views=collection_views(
            checkers_in,
            to_x=axis.x if axis else None,
            faults=ctx["faults"],
            unit=axis.unit if axis else "s",
        ),
        edge_legend=edge_legend(),
        elle={},
        elle_name=elle_file_name,
        prefix_tail=PREFIX_TAIL,
        fault_rows=fault_rows,
        fault_rows_total=records_total,
        fault_records_cap=(
            {"shown": len(records), "total": records_total}
            if records_total > len(records)
            else None
        ),
        has_faults_file=bool(faults),
        logs=logs or [],
        files=files or [],
        history_error=history_error,
        index_href=index_href,
        payload=payload,
    )
    return ctx


def _href(rel: str) -> str:
    """A link to the file at ``rel`` (a relative path): percent-encoded, so a name such as
    ``javascript:x`` or ``a#b`` is a path, not a scheme or a fragment."""
    return urllib.parse.quote(rel)


#: What building or rendering the page raises on a results.json of another shape.
_DAMAGE = (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError,
           jinja2.UndefinedError)  # fmt: skip


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        return read_json_file(path), None
    except ClewError as e:
        return None, str(e)


def _read_results(run: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The run's ``results.json`` object, or ``None`` and why not (absent: no reason)."""
    try:
        return read_results_object(run), None
    except ClewError as e:
        return None, str(e)


def run_start(run_dir: Path) -> dt.datetime | None:
    """The start of a run, from its directory name (``YYYYmmddTHHMMSS``), else None."""
    try:
        return dt.datetime.strptime(run_dir.name, RUN_NAME_FORMAT)
    except ValueError:
        return None


def load_run(
    run_dir: str | Path,
    history: History | None = None,
    *,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
    results: Any = _UNREAD,
    max_ops: int = MAX_OPS,
) -> dict[str, Any]:
    """Read a run directory and build the report's context (tolerates missing files).

    ``history``, when the caller already holds it (the runner, right after a test), is
    used instead of reading ``history.jsonl`` again (reading dominates for big runs).
    Reading it may add at most ``max_memory`` bytes (``None``: no limit); a history
    larger than that is left out, and the page says so and names the line reading
    reached (:class:`~harness.read_budget.ReadBudget`). ``results``: the run's
    ``results.json`` object (``None``: it has none) if the caller has read it already
    (it can be tens of MB, so it is read once). ``max_ops``: the client ops the
    timeline embeds (the first ones; the page says how many there are).
    :class:`~harness.errors.InputError` for a run holding a FIFO, socket or device, which
    reading would hang on (:func:`harness.store.refuse_special_files`)."""
    run = Path(run_dir)
    refuse_special_files(run)
    problems: list[str] = []
    if results is _UNREAD:
        results, err = _read_results(run)
        if err:
            problems.append(err)
    spec, err = _read_json(run / "spec.json")
    if err:
        problems.append(err)
    try:
        faults, left_out = read_fault_ledger(run, limit=MAX_FAULT_RECORDS)
        problems.extend(left_out)
    except ClewError as e:
        problems.append(str(e))
        faults = []
    faults_total = count_fault_records(run) if len(faults) >= MAX_FAULT_RECORDS else None
    hist_path = run / "history.jsonl"
    if history is not None:
        pass
    elif hist_path.exists():
        from harness.formats import read_history
        from harness.read_budget import ReadBudget, ReadBudgetExceeded

        budget = None if max_memory is None else ReadBudget(max_memory=max_memory)
        try:
            history = read_history(str(hist_path), "jsonl", budget=budget)
        except ClewError as e:
            problems.append(str(e))
        except ReadBudgetExceeded as e:
            problems.append(f"{e}; the sections drawn from the history are left out")
    else:
        problems.append("no history.jsonl in the run directory")
    logs = []
    nodes = run / "nodes"
    if nodes.is_dir() and not (nodes.is_symlink() and leads_out(nodes, run)):
        # (a link out of the run, to /etc/ssh say, would list that directory's files)
        for node in sorted(p for p in nodes.iterdir() if p.is_dir() and not leads_out(p, run)):
            node_files = sorted(
                p for p in node.rglob("*") if p.is_file() and not leads_out(p, run)
            )
            logs.append(
                {
                    "name": node.name,
                    "files": [
                        {
                            "name": str(p.relative_to(node)),
                            "href": _href(p.relative_to(run).as_posix()),
                            "size": _size(p.stat().st_size),
                        }
                        for p in node_files[:50]
                    ],
                }
            )
    files = [
        {"name": p.name, "href": _href(p.name)}
        for p in sorted(run.iterdir())
        if p.is_file() and p.name != REPORT_NAME
    ]
    test = run.parent.name
    start = run_start(run)
    title = f"{test} · {run.name}"
    d = shlex.quote(str(run))
    reproduce = [
        (f"clew analyze {d}", "re-run the checkers on the stored history"),
        (f"clew replay {d}", "run the test again with the same spec and seed"),
        (
            f"clew check {shlex.quote(str(run / 'history.jsonl'))}",
            "check linearizability of the history alone",
        ),
        (f"clew report {d}", "re-render this page"),
    ]
    checkers = results.get("checkers") if isinstance(results, dict) else None
    for res in (checkers or {}).values():
        if isinstance(res, dict) and res.get("consistency") and res.get("model"):
            # a transactional check: `clew check` needs its model and consistency
            model, consistency = (shlex.quote(str(res[k])) for k in ("model", "consistency"))
            reproduce[2] = (
                f"clew check --model {model} --consistency {consistency} "
                f"{shlex.quote(str(run / 'history.jsonl'))}",
                "check the transactions of the history alone",
            )
            break
    ctx = build_page(
        history,
        title=title,
        results=results if isinstance(results, dict) else None,
        spec=spec if isinstance(spec, dict) else None,
        faults=faults,
        faults_total=faults_total,
        run_dir=run,
        history_error="; ".join(problems) or None,
        logs=logs,
        files=files,
        reproduce=reproduce,
        index_href="../../index.html" if start is not None else None,
        max_ops=max_ops,
    )
    if start is not None:
        ctx["facts"].insert(0, ("started", start.strftime("%Y-%m-%d %H:%M:%S")))
    ctx["facts"].insert(0, ("run", str(run)))
    ctx["elle"] = elle_links(run)
    return ctx


def render_run_report(
    run_dir: str | Path,
    history: History | None = None,
    *,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
    max_ops: int = MAX_OPS,
) -> str:
    """The HTML of the report of the run in ``run_dir`` (see :func:`load_run`)."""
    ctx = load_run(run_dir, history, max_memory=max_memory, max_ops=max_ops)
    return render("run.html.j2", **ctx)


def write_run_report(
    run_dir: str | Path,
    history: History | None = None,
    *,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
    max_ops: int = MAX_OPS,
) -> Path:
    """Render ``report.html`` into ``run_dir`` (atomically) and return its path.
    ``history``: the run's history if already in memory (skips re-reading it);
    ``max_memory``: what reading it may add; ``max_ops``: the client ops the page embeds
    (see :func:`load_run`)."""
    run = Path(run_dir)
    refuse_special_files(run)  # (results.json is read here, before load_run)
    t0 = time.perf_counter()
    results, err = _read_results(run)
    write_elle_files(run, results if isinstance(results, dict) else None)
    try:
        ctx = load_run(run, history, max_memory=max_memory, max_ops=max_ops,
                       results=_UNREAD if err else results)  # fmt: skip
        html = render("run.html.j2", **ctx)
    except _DAMAGE as e:
        if not isinstance(results, dict):  # nothing from results.json to leave out: a bug
            raise
        # A results.json of another shape than clew writes (a field of another kind deep
        # in a checker's result): the page is made without it, and says so.
        why = (f"{run / 'results.json'}: not shown, it is not what clew writes "
               f"({type(e).__name__}: {e})")  # fmt: skip
        log.warning("%s", why)
        ctx = load_run(run, history, max_memory=max_memory, max_ops=max_ops, results=None)
        ctx["history_error"] = "; ".join(x for x in (why, ctx["history_error"]) if x)
        html = render("run.html.j2", **ctx)
    out = run / REPORT_NAME
    write_text_file(out, html, out.with_name(f".{REPORT_NAME}.tmp"))
    log.debug("wrote %s (%d bytes) in %.2f s", out, len(html), time.perf_counter() - t0)
    return out


def _targets_text(targets: Any) -> str:
    """A ledger record's targets: the nodes' names, or as JSON if not a list (damaged)."""
    return ", ".join(map(str, targets)) if isinstance(targets, list) else short_json(targets)


def _heal_fact(results: dict[str, Any]) -> str:
    """The verify-healed barrier's outcome in a few words."""
    residue = results.get("heal_residue") or {}
    left = {n: r for n, r in residue.items() if r}
    if results.get("tainted") or left:
        return "TAINTED: residue after healing on " + "; ".join(
            f"{n}: {', '.join(map(str, r))}" for n, r in sorted(left.items())
        )
    return "every node verified clean" if results.get("heal_verified") else "not verified"
