"""Each node agent's own record (``nodes/<n>/agent.jsonl``) on the run's clock, in words,
for the report's merged node timeline.

**Alignment.** An agent stamps every record with its node's monotonic clock (``mono``).
The run's clock starts at the hand-over's origin, ``origin_controller_ns`` in
``agents.json`` (the controller's monotonic clock; the load, and the history's times,
start there, within the few milliseconds the controller takes to start the load). Each
offset measurement (the hand-over's probe, ``offsets`` in ``agents.json``, and one per
lease write, ``nodes/<n>/clock.jsonl``) says the node's clock minus the controller's
lies within ``offset_ns ± rtt_ns / 2`` (the node read its clock between the command's
sending and its answer). The offset used is the middle of the **intersection** of those
intervals, good to half the intersection's width; when they do not intersect (the clocks
drifted apart, or a sample is wrong) the sample with the least round trip is used, good
to half its round trip. A record's run time is then ``mono - offset - origin``. Without
measurements, the agent's own ``run`` field (its hand-over offset) is used; without that,
its wall clock against ``clock.json`` (approximate).

**Rendering.** One line per record (``struck start-kill (on log 'became-leader', 2.1 ms
after the line's stamp)``, ``etcd stopped (pid 4242)``, ``pressure load 1.2, mem 310 MB
available; etcd 45 MB, cpu 1.2 s``). A node with more than :data:`MAX_PRESSURE_LINES`
pressure samples gets them summarised, one line per group of consecutive samples.

**Caps.** At most :data:`MAX_JOURNAL_BYTES` of each journal are read (twice the agent's
default cap) and :data:`MAX_AGENT_LINES` lines shown over all nodes; the rest are counted.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.record import read_record_text
from nemeses.agent import MAX_JOURNAL_BYTES, read_journal
from reports.node_logs import parse_wall_ns, read_origin

__all__ = [
    "AGENTS_FILE",
    "MAX_AGENT_LINES",
    "MAX_JOURNAL_BYTES",
    "MAX_PRESSURE_LINES",
    "Alignment",
    "agent_lines",
    "align_offsets",
    "describe",
]

#: What the controller handed the agents (origin, offsets, steps) in a run directory.
AGENTS_FILE = "agents.json"
#: Agent lines embedded in a report (over all nodes).
MAX_AGENT_LINES = 200_000
#: Pressure samples of one node listed one a line; above this, summarised in groups.
MAX_PRESSURE_LINES = 300
#: Longest text kept of one rendered line.
MAX_TEXT_CHARS = 400
#: Bytes of journals (``agent.jsonl`` and ``clock.jsonl``) read over all of a run's nodes:
#: each node's are read to what is left of it (at most ``max_bytes`` a file); the nodes
#: past it are named, not read (a node's 8 MiB take about 2 s).
MAX_RUN_JOURNAL_BYTES = 64 * 1024 * 1024

#: Kinds of agent lines (the page colours and filters by them).
KIND_ACT, KIND_SEEN, KIND_PRESSURE, KIND_OWN = 0, 1, 2, 3
#: Records of the agent acting on the node (the rest is what it saw, or its own running).
_ACTS = frozenset({"strike", "heal", "lease", "healed"})


@dataclass(frozen=True, slots=True)
class Alignment:
    """How one node's monotonic clock was put on the run's clock: ``offset_ns`` (node
    minus controller), good to ``± uncertainty_ns``; ``method`` is ``intersection``,
    ``least-rtt``, ``agent-run`` (the agent's own hand-over offset) or ``wall`` (wall
    clocks, approximate); ``samples`` measurements, the least round trip ``rtt_min_ns``."""

    method: str
    offset_ns: int | None = None
    uncertainty_ns: int | None = None
    samples: int = 0
    rtt_min_ns: int | None = None

    def to_json(self, node: str, handover_offset_ns: int | None) -> dict[str, Any]:
        """For the page: milliseconds, and the shift from the agent's own run times."""
        ms = lambda v: None if v is None else round(v / 1e6, 3)  # noqa: E731
        shift = (
            None
            if self.offset_ns is None or handover_offset_ns is None
            else handover_offset_ns - self.offset_ns
        )
        return {"node": node, "method": self.method, "offset_ms": ms(self.offset_ns),
                "uncertainty_ms": ms(self.uncertainty_ns), "samples": self.samples,
                "rtt_min_ms": ms(self.rtt_min_ns), "shift_ms": ms(shift)}  # fmt: skip


def align_offsets(samples: Sequence[Mapping[str, Any]]) -> Alignment | None:
    """The offset of a node's clock from measurements ``{"offset_ns", "rtt_ns"}`` (see the
    module docstring: the middle of the intersection of ``offset ± rtt/2``, else the
    least round trip's); None without a usable sample."""
    good = [
        (int(s["offset_ns"]), int(s["rtt_ns"]))
        for s in samples
        if isinstance(s.get("offset_ns"), int)
        and isinstance(s.get("rtt_ns"), int)
        and s["rtt_ns"] >= 0
    ]
    if not good:
        return None
    rtt_min = min(r for _, r in good)
    lo = max(o - r // 2 - 1 for o, r in good)  # ±1 ns: the controller's midpoint is floored
    hi = min(o + (r + 1) // 2 + 1 for o, r in good)
    if lo <= hi:
        return Alignment("intersection", (lo + hi) // 2, (hi - lo + 1) // 2, len(good), rtt_min)
    best = min(good, key=lambda s: s[1])
    return Alignment("least-rtt", best[0], (best[1] + 1) // 2, len(good), rtt_min)


def _ms(ns: float) -> str:
    """A duration in words: ``2.1 ms``, ``1.25 s``, ``0.24 ms``."""
    a = abs(ns)
    if a >= 1e9:
        return f"{ns / 1e9:.3g} s"
    if a >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    return f"{ns / 1e3:.3g} µs"


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, int | float) else str(v)


def _mb(kb: Any) -> str:
    return f"{kb / 1024:.0f} MB" if isinstance(kb, int | float) else "?"


def _steps(journal: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The node's steps by id, from its ``slice armed`` record."""
    out: dict[str, dict[str, Any]] = {}
    for r in journal:
        if r.get("e") == "slice" and r.get("state") == "armed":
            for s in r.get("strikes") or []:
                if isinstance(s, dict) and "id" in s:
                    out[str(s["id"])] = s
    return out


def _cause(step: Mapping[str, Any] | None, trigger: Any) -> str:
    on = step.get("on") if step else None
    if isinstance(on, dict):
        if "log" in on:
            return f"on log '{on['log']}'"
        if "log_regex" in on:
            return f"on log /{on['log_regex']}/"
        if "process" in on:
            return f"on process {on['process']}"
    if step and "at" in step:
        return f"at {step['at']:g} s"
    return f"on {trigger}" if trigger else "?"


def _cause_delay(step: Mapping[str, Any] | None, trigger: Any) -> str:
    delay = step.get("delay") if step else None
    more = f" + {delay:g} s delay" if isinstance(delay, int | float) and delay > 0 else ""
    return _cause(step, trigger) + more


def _described(rec: Mapping[str, Any], steps: Mapping[str, Mapping[str, Any]], db: str) -> str:
    """:func:`describe`, or the record as JSON when a field of it is not of its kind (a
    damaged journal: ``"patterns": 5``)."""
    try:
        return describe(rec, steps, db)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError):
        return f"{rec.get('e')} (damaged): {json.dumps(rec, default=repr)[:300]}"


def describe(rec: Mapping[str, Any], steps: Mapping[str, Mapping[str, Any]], db: str) -> str:
    """One agent journal record in words (without the node's name)."""
    e = rec.get("e")
    if e == "strike":
        f = rec.get("f", "?")
        step = steps.get(str(rec.get("id")))
        cause = _cause_delay(step, rec.get("trigger"))
        if "skipped" in rec:
            said = "" if cause == "?" else f" ({cause})"
            return f"did not strike {f}{said}: {rec['skipped']}"
        parts = [cause]
        stamped = parse_wall_ns(str(rec.get("line") or "")) if rec.get("trigger") == "log" else None
        if stamped is not None and isinstance(rec.get("start_wall"), int):
            parts.append(f"{_ms(rec['start_wall'] - stamped)} after the line's stamp")
        if isinstance(rec.get("late_ms"), int | float):
            parts.append(f"{_ms(rec['late_ms'] * 1e6)} late")
        if isinstance(rec.get("done_ms"), int | float):
            parts.append(f"script {_ms(rec['done_ms'] * 1e6)}")
        status = rec.get("status")
        text = f"struck {f} ({', '.join(parts)})" + ("" if status == 0 else f", exit {status}")
        if rec.get("line"):
            text += f"; line: {rec['line']}"
        return text
    if e == "heal":
        step = steps.get(str(rec.get("id")))
        f = str(step.get("f", "fault")) if step else "fault"
        what = f.replace("start-", "")
        return (f"healed its {what} ({rec.get('id')}, hold over): exit {rec.get('status')}, "
                f"{rec.get('seconds')} s")  # fmt: skip
    if e == "process":
        change, pid = rec.get("change"), rec.get("pid")
        words = {"start": "started", "exit": "exited", "stop": "stopped", "cont": "continued"}
        if change == "watch":
            return f"watching {db}: pid {pid}, state {rec.get('state')}"
        who = f" (pid {pid})" if pid is not None else f" (was pid {rec.get('before')})"
        return f"{db} {words.get(str(change), change)}{who}"
    if e == "log":
        names = ", ".join(map(str, rec.get("patterns") or []))
        return f"{db} log [{names}]: {rec.get('line', '')}"
    if e == "pressure":
        return "pressure " + _pressure_text(rec, db)
    if e == "slice":
        if rec.get("state") == "armed":
            steps_list = rec.get("strikes") or []
            said = "; ".join(
                f"{s.get('f')} {_cause(s, None)}" for s in steps_list if isinstance(s, dict)
            )
            if not steps_list:
                return "slice armed: no steps (watching and journaling only)"
            return f"slice armed: {len(steps_list)} step(s): {said}"
        return f"slice ended: {rec.get('why', '?')}"
    if e == "clock":
        o, r = rec.get("offset_ns"), rec.get("rtt_ns")
        if isinstance(o, int) and isinstance(r, int):
            return (f"clock offset {_ms(o)} ± {_ms(r / 2)} (round trip {_ms(r)}, "
                    f"{rec.get('by', '?')})")  # fmt: skip
        return "clock offset ?"
    if e == "start":
        cap = rec.get("journal_bytes")
        cap_text = f"{cap / 1048576:g} MiB" if isinstance(cap, int) else "?"
        return (
            f"agent started (pid {rec.get('pid')}; journal cap {cap_text}, "
            f"{_num(rec.get('journal_rate'))} observations/s)"
        )
    if e == "stop":
        return "agent stopped"
    if e == "lease":
        return f"lease {rec.get('lease', rec.get('id'))} {rec.get('state', '?')}"
    if e == "healed":
        return f"lease heal ran ({rec.get('reason', '?')}): exit {rec.get('status')}"
    if e == "dropped":
        return (f"dropped observations: {rec.get('n_rate', 0)} over the rate cap, "
                f"{rec.get('n_size', 0)} over the size cap")  # fmt: skip
    if e == "journal-full":
        return f"journal full at {rec.get('bytes')} bytes: nothing more recorded"
    rest = {k: v for k, v in rec.items() if k not in ("e", "mono", "wall", "run")}
    return f"{e}: {json.dumps(rest, default=str)}"


def _pressure_text(rec: Mapping[str, Any], db: str) -> str:
    text = f"load {rec.get('load1', '?')}, mem {_mb(rec.get('mem_avail_kb'))} available"
    if "db_rss_kb" in rec:
        cpu = rec.get("db_cpu_ms")
        cpu_text = f"{cpu / 1000:.2f} s" if isinstance(cpu, int | float) else "?"
        text += f"; {db} {_mb(rec.get('db_rss_kb'))}, cpu {cpu_text}"
    return text


def _pressure_group(group: Sequence[Mapping[str, Any]], db: str, span_ns: int) -> str:
    """Consecutive pressure samples in one line: ranges of load, memory and the DB's."""

    def rng(key: str, fmt: Any) -> str:
        vals = [r[key] for r in group if isinstance(r.get(key), int | float)]
        if not vals:
            return "?"
        lo, hi = fmt(min(vals)), fmt(max(vals))
        return lo if lo == hi else f"{lo}–{hi}"

    text = (f"pressure ×{len(group)} over {_ms(span_ns)}: load {rng('load1', lambda v: f'{v:g}')}, "
            f"mem {rng('mem_avail_kb', _mb)} available")  # fmt: skip
    if any("db_rss_kb" in r for r in group):
        cpus = [r["db_cpu_ms"] for r in group if isinstance(r.get("db_cpu_ms"), int | float)]
        cpu = f", cpu +{(max(cpus) - min(cpus)) / 1000:.2f} s" if len(cpus) > 1 else ""
        text += f"; {db} {rng('db_rss_kb', _mb)}{cpu}"
    return text


def _record_mono(rec: Mapping[str, Any]) -> int | None:
    """The moment a record is about on the node's monotonic clock: a strike's start, a
    log line's reading, else when it was journaled."""
    for key in ("start_mono", "seen_mono", "mono"):
        v = rec.get(key)
        if isinstance(v, int):
            return v
    return None


def _handover(
    agents: Mapping[str, Any], node: str, journal: Sequence[Mapping[str, Any]]
) -> dict[str, int] | None:
    """The hand-over's offset measurement of ``node``: from ``agents.json``, else from
    the agent's own ``clock`` record."""
    offsets = agents.get("offsets")
    mine = offsets.get(node) if isinstance(offsets, dict) else None
    if isinstance(mine, dict) and isinstance(mine.get("offset_ns"), int):
        return dict(mine)  # (a measurement without its offset is none: the journal's, then)
    for r in journal:
        if r.get("e") == "clock" and isinstance(r.get("offset_ns"), int):
            return {"offset_ns": r["offset_ns"], "rtt_ns": int(r.get("rtt_ns") or 0)}
    return None


def _origin_controller(
    agents: Mapping[str, Any],
    journal: Sequence[Mapping[str, Any]],
    handover: Mapping[str, Any] | None,
) -> int | None:
    """The run's origin on the controller's monotonic clock: from ``agents.json``, else
    the node's armed origin less its hand-over offset."""
    origin = agents.get("origin_controller_ns")
    if isinstance(origin, int):
        return origin
    armed = next((r for r in journal if r.get("e") == "slice" and r.get("state") == "armed"), None)
    if armed and isinstance(armed.get("origin_ns"), int) and handover:
        return int(armed["origin_ns"]) - int(handover["offset_ns"])
    return None


def _run_ns(
    rec: Mapping[str, Any], al: Alignment, origin: int | None, wall_origin: int | None
) -> int | None:
    """A record's time on the run's clock (ns), by the best means at hand (module
    docstring)."""
    mono = _record_mono(rec)
    if al.offset_ns is not None and origin is not None and mono is not None:
        return mono - al.offset_ns - origin
    if isinstance(rec.get("run"), int | float):  # the agent's own (its hand-over offset)
        back = rec["mono"] - mono if isinstance(rec.get("mono"), int) and mono else 0
        return round(rec["run"] * 1e9) - back
    wall = rec.get("start_wall") if isinstance(rec.get("start_wall"), int) else rec.get("wall")
    if isinstance(wall, int) and wall_origin is not None:
        return wall - wall_origin
    return None


def _kind(e: Any) -> int:
    if not isinstance(e, str):  # (a damaged journal's list is not hashable)
        return KIND_OWN
    if e in _ACTS:
        return KIND_ACT
    return KIND_PRESSURE if e == "pressure" else KIND_SEEN if e in ("process", "log") else KIND_OWN


def _db_name(run_dir: Path) -> str:
    try:
        spec = json.loads(read_record_text(run_dir / "spec.json"))
    except (OSError, ValueError, RecursionError):
        return "the database"
    name = spec.get("suite") or spec.get("db") if isinstance(spec, dict) else None
    return str(name) if name else "the database"


def agent_lines(
    run_dir: Path,
    axis_origin: int = 0,
    ns_per_unit: float = 1e9,
    *,
    max_lines: int = MAX_AGENT_LINES,
    max_pressure: int = MAX_PRESSURE_LINES,
    max_bytes: int = MAX_JOURNAL_BYTES,
    max_run_bytes: int | None = None,
) -> dict[str, Any] | None:
    """The agents' records of ``run_dir`` as columns for the page, aligned as the module
    docstring says: ``{"nodes": [names], "t": base64 Float32 (the page's axis: units of
    ``ns_per_unit`` since history time ``axis_origin``), "node": base64 Uint8, "kind":
    base64 Uint8 (0 an act: strike, heal, lease; 1 an observation: process, log; 2 pressure;
    3 the agent's own running: start, slice, clock, caps),
    "text": [lines], "align": [per node: method, offset_ms, uncertainty_ms, samples,
    rtt_min_ms, shift_ms], "total": records read, "shown", "cut": [nodes whose journal
    was cut at ``max_bytes``, or at what was left of ``max_run_bytes``], "unread": [nodes
    whose journal was not read: ``max_run_bytes`` were spent], "summarised": [nodes whose
    pressure was grouped]}``, in time order; None when no node has an ``agent.jsonl``.
    ``max_run_bytes`` defaults to :data:`MAX_RUN_JOURNAL_BYTES`."""
    nodes_dir = run_dir / "nodes"
    if not nodes_dir.is_dir():
        return None
    try:
        agents = json.loads(read_record_text(run_dir / AGENTS_FILE))
    except (OSError, ValueError, RecursionError):
        agents = {}
    agents = agents if isinstance(agents, dict) else {}
    wall_origin, _ = read_origin(run_dir)
    db = _db_name(run_dir)
    names: list[str] = []
    times: list[int] = []
    node_ix: list[int] = []
    kinds: list[int] = []
    texts: list[str] = []
    align: list[dict[str, Any]] = []
    cut_nodes: list[str] = []
    summarised: list[str] = []
    total = 0
    unread: list[str] = []
    left = MAX_RUN_JOURNAL_BYTES if max_run_bytes is None else max_run_bytes
    for node in sorted(p for p in nodes_dir.iterdir() if p.is_dir()):
        path = node / "agent.jsonl"
        if not path.is_file() or len(names) >= 255:
            continue
        if left <= 0:
            unread.append(node.name)
            continue
        # the clock samples first: small, and what aligns the node's times
        samples, _, clock_cut = read_journal(node / "clock.jsonl", min(max_bytes, left))
        left -= _size(node / "clock.jsonl", max_bytes)
        journal, n_lines, cut = read_journal(path, max(0, min(max_bytes, left)))
        left -= _size(path, max_bytes)
        total += n_lines
        if cut or clock_cut:
            cut_nodes.append(node.name)
        handover = _handover(agents, node.name, journal)
        origin = _origin_controller(agents, journal, handover)
        measured = [*([handover] if handover else []), *samples]
        al = align_offsets(measured) if origin is not None else None
        if al is None:
            has_run = any(isinstance(r.get("run"), int | float) for r in journal)
            al = Alignment("agent-run" if has_run else "wall")
        names.append(node.name)
        k = len(names) - 1
        align.append(al.to_json(node.name, handover["offset_ns"] if handover else None))
        steps = _steps(journal)
        pressure = [r for r in journal if r.get("e") == "pressure"]
        group = math.ceil(len(pressure) / max_pressure) if len(pressure) > max_pressure else 1
        if group > 1:
            summarised.append(node.name)
        for r in journal:
            if r.get("e") == "pressure" and group > 1:
                continue
            at = _run_ns(r, al, origin, wall_origin)
            if at is None or len(texts) >= max_lines:
                continue
            text = _described(r, steps, db)
            times.append(at)
            node_ix.append(k)
            kinds.append(_kind(r.get("e")))
            texts.append(text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS] + "…")
        for i in range(0, len(pressure) if group > 1 else 0, group):
            chunk = pressure[i : i + group]
            t0 = _run_ns(chunk[0], al, origin, wall_origin)
            t1 = _run_ns(chunk[-1], al, origin, wall_origin)
            if t0 is None or t1 is None or len(texts) >= max_lines:
                continue
            times.append(t0)
            node_ix.append(k)
            kinds.append(KIND_PRESSURE)
            texts.append(_pressure_group(chunk, db, t1 - t0))
    if not names:
        return None
    t = np.asarray(times, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    t_s = ((t[order] - axis_origin) / ns_per_unit).astype(np.float32)
    return {
        "nodes": names,
        "t": base64.b64encode(t_s.astype("<f4").tobytes()).decode(),
        "node": base64.b64encode(np.asarray(node_ix, dtype=np.uint8)[order].tobytes()).decode(),
        "kind": base64.b64encode(np.asarray(kinds, dtype=np.uint8)[order].tobytes()).decode(),
        "text": [texts[i] for i in order.tolist()],
        "align": align,
        "total": total,
        "shown": len(texts),
        "cut": cut_nodes,
        "unread": unread,
        "summarised": summarised,
    }


def _size(path: Path, most: int) -> int:
    """The bytes of ``path`` that a read of at most ``most`` takes (0 if unreadable)."""
    try:
        return min(path.stat().st_size, most)
    except OSError:
        return 0
