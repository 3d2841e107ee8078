"""The controller's side of the node agents: the node's part of the schedule handed over
ahead of time, struck by the node itself (:mod:`nemeses.guard_agent`).

An **agent step** names one node and one fault op, and says when that node strikes it::

    {"node": "n1", "f": "start-kill", "at": 5.0, "hold": 2.0}
    {"node": "n2", "f": "start-kill", "on": {"log": "leader-changed"},
     "from": 1.0, "until": 30.0, "times": 1, "delay": 0.0, "hold": 2.0}

``at`` is an offset on the run's clock; ``on`` a trigger: ``{"log": NAME}`` (a line of the
database's log matching the pattern ``NAME`` its adapter supplies, :class:`LogPatterns`),
``{"log_regex": RE}`` (any regular expression) or ``{"process": "exit" | "start" | "stop" |
"cont"}`` (the database process changing state). A trigger is armed from ``from`` until
``until`` (seconds on the run's clock) for ``times`` strikes, each ``delay`` seconds after
its cause. ``hold`` seconds after striking, the node heals the fault itself; without
``hold`` the run's end heals it.

The node runs the **same scripts** the controller would: a kill is the adapter's
:meth:`KillScript.kill_script` (which the adapter's own ``kill`` runs too), its heal the
adapter's ``start_script`` (the guard's lease script for kills); a pause is its
:meth:`PauseScript.pause_script`, healed by its ``resume_script``. Only kinds with such
scripts can be handed to a node (:data:`AGENT_KINDS`).

A **cluster-wide** fault (:data:`SIDED_OPS`: a partition, a clock fault, a packet fault)
carries its ``value`` as the controller's op would (a grudge or shape, a clock fault, a
packet fault)::

    {"f": "start-partition", "value": {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]},
     "at": 2.0, "hold": 1.5}

Agents do not talk to each other; they share the run's clock. So such a step at an
offset, without ``node``, becomes one strike on **every node the value touches**, each
with that node's own side (the nft/iptables rules it holds, its libfaketime offset, its
packet rules and delayer: the scripts its kind's nemesis runs there,
:func:`side_scripts`), all at the same offset and under the same id; each node's record
says when its side started and how long its script took. A step with ``node`` (a
triggered one must have it: a trigger fires on one node) must touch that node alone.

:func:`hand_over` writes each node's slice into the agent's root-only directory, with
the run's origin on that node's own monotonic clock (the offset measured just before, the
least round trip of a few probes), and holds one lease (``agent-slice``) whose expiry
ends the slices and heals whatever they struck. Then the controller sends the node nothing
but lease renewals until the run ends; each renewal also brings back the new lines of the
node's journal (``agent.jsonl``), appended to ``nodes/<n>/agent.jsonl`` in the run
directory, so a controller killed mid-run leaves the journal up to its last renewal.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from harness.errors import ConfigError, NemesisError
from nemeses.abilities import PauseScript, StartScript
from nemeses.guard import json_objects

if TYPE_CHECKING:
    from clusters.base import Cluster, Node
    from harness.api import TestContext
    from harness.control import Remote
    from nemeses.guard import FaultGuard

__all__ = [
    "AGENT_KINDS",
    "AGENT_LEASE",
    "DEFAULT_ARM_LEAD",
    "MAX_JOURNAL_BYTES",
    "NODE_OPS",
    "PRESSURE_EVERY",
    "SIDED_OPS",
    "TRIGGER_PROCESS",
    "KillScript",
    "LogPatterns",
    "PauseScript",
    "PidFile",
    "agent_kinds",
    "compile_slices",
    "hand_over",
    "ledger_records",
    "measure_offset",
    "read_journal",
    "side_scripts",
    "validate_agent_steps",
]

#: The lease that keeps every node's slice alive (its expiry ends the slice and heals).
AGENT_LEASE = "agent-slice"
#: Seconds between handing the slices over and the run's origin: the hand-over must be
#: done by then (a strike planned before its slice arrived is struck late, and says so).
DEFAULT_ARM_LEAD = 1.0
#: Process changes a trigger may name.
TRIGGER_PROCESS = ("exit", "start", "stop", "cont")
#: Seconds between two ``pressure`` observations of a node (load, memory, the DB's).
PRESSURE_EVERY = 1.0
#: Probes of a node's monotonic clock per offset measurement (the least round trip wins).
OFFSET_PROBES = 3

_STEP_KEYS = {"node", "f", "value", "at", "on", "from", "until", "times", "delay", "hold"}


@runtime_checkable
class KillScript(Protocol):
    """The database gives the shell script that kills it on a node (its ``kill`` runs
    the same script), so a node agent can strike exactly as the controller would."""

    def kill_script(self, ctx: TestContext, node: Node) -> str:
        """A shell script (run as root on ``node``) that SIGKILLs the database and waits
        until it is gone."""
        ...


@runtime_checkable
class PidFile(Protocol):
    """The database names the file holding its process's PID on a node."""

    @property
    def pid_file(self) -> str: ...


@runtime_checkable
class LogPatterns(Protocol):
    """The database names the log lines worth observing: pattern name -> regex (e.g.
    ``leader-changed``), matched by node agents against its first log file."""

    @property
    def log_patterns(self) -> Mapping[str, str]: ...


def _kill_scripts(db: Any, ctx: TestContext, node: Node) -> tuple[str, str]:
    if not isinstance(db, KillScript) or not isinstance(db, StartScript):
        raise ConfigError(
            f"agent-struck kills need the database adapter {type(db).__name__} to provide "
            "kill_script and start_script"
        )
    return db.kill_script(ctx, node), db.start_script(ctx, node)


def _pause_scripts(db: Any, ctx: TestContext, node: Node) -> tuple[str, str]:
    if not isinstance(db, PauseScript):
        raise ConfigError(
            f"agent-struck pauses need the database adapter {type(db).__name__} to provide "
            "pause_script and resume_script"
        )
    return db.pause_script(ctx, node), db.resume_script(ctx, node)


#: Fault ops a node agent strikes on its own database: op -> ``(db, ctx, node) -> (strike,
#: heal)``.
NODE_OPS = {"start-kill": _kill_scripts, "start-pause": _pause_scripts}
#: Fault ops with a cluster-wide ``value`` (a grudge, a clock fault, a packet fault): each
#: node's agent strikes its own side of it, with the kind's own node scripts
#: (:func:`side_scripts`).
SIDED_OPS = ("start-partition", "start-clock", "start-packet")
#: Every fault op a node agent can strike.
AGENT_KINDS = (*NODE_OPS, *SIDED_OPS)


def validate_agent_steps(
    steps: Any, source: str, nodes: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """``steps`` checked to be agent steps (see the module docstring), normalized
    (numbers as floats, ``times`` 1 and ``delay`` 0 by default); :class:`ConfigError`
    naming ``source`` and the step otherwise. ``nodes``, when given, are the run's."""
    if not isinstance(steps, list | tuple):
        raise ConfigError(f"{source}: agent steps are a list of tables/objects")
    out = []
    for i, step in enumerate(steps):
        where = f"{source}: agent step {i + 1}"
        if not isinstance(step, dict):
            raise ConfigError(f"{where}: must be a table/object, got {step!r}")
        unknown = set(step) - _STEP_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: "
                              f"{', '.join(sorted(_STEP_KEYS))}")  # fmt: skip
        f = step.get("f")
        if f not in AGENT_KINDS:
            raise ConfigError(f"{where}: `f` must be one of {', '.join(AGENT_KINDS)} (what a "
                              f"node agent can strike), got {f!r}")  # fmt: skip
        if ("at" in step) == ("on" in step):
            raise ConfigError(f"{where}: give exactly one of `at` (seconds) or `on` (a trigger)")
        node = step.get("node")
        sided = f in SIDED_OPS
        # A cluster-wide fault at an offset is struck by every node it touches; a trigger
        # fires on one node, so a triggered step names it.
        if (node is not None or not sided or "on" in step) and (
            not isinstance(node, str) or not node
        ):
            raise ConfigError(f"{where}: needs `node`, the name of the node that strikes")
        if nodes is not None and node is not None and node not in nodes:
            raise ConfigError(f"{where}: no node {node!r} in this run ({', '.join(nodes)})")
        norm: dict[str, Any] = {"f": f} if node is None else {"node": node, "f": f}
        if sided:
            if "value" not in step:
                raise ConfigError(f"{where}: {f} needs `value`: {_VALUE_HELP[f]}")
            value = step["value"]
            if not isinstance(value, dict) and not (f == "start-partition"
                                                    and isinstance(value, str)):  # fmt: skip
                raise ConfigError(f"{where}: `value` of {f} is {_VALUE_HELP[f]}; got {value!r}")
            norm["value"] = value
        elif "value" in step:
            raise ConfigError(f"{where}: {f} takes no `value` (it acts on its node's database)")
        for key in ("at", "from", "until", "delay", "hold"):
            if key in step:
                v = step[key]
                if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 \
                        or not math.isfinite(v):  # fmt: skip
                    raise ConfigError(f"{where}: `{key}` must be seconds >= 0, got {v!r}")
                norm[key] = float(v)
        if "on" in step:
            norm["on"] = _trigger(step["on"], where)
            times = step.get("times", 1)
            if isinstance(times, bool) or not isinstance(times, int) or times < 1:
                raise ConfigError(f"{where}: `times` must be a whole number >= 1, got {times!r}")
            norm["times"] = times
            norm.setdefault("delay", 0.0)
            norm.setdefault("from", 0.0)
            if "until" in norm and norm["until"] < norm["from"]:
                raise ConfigError(f"{where}: `until` ({norm['until']:g}) is before `from`")
        elif any(k in step for k in ("from", "until", "times", "delay")):
            raise ConfigError(f"{where}: `from`, `until`, `times` and `delay` go with `on`")
        out.append(norm)
    return out


_VALUE_HELP = {
    "start-partition": "a grudge (node -> the nodes whose packets it drops, e.g. "
    '{n1 = ["n2", "n3"]}) or a shape name (halves, one, ...)',
    "start-clock": 'a clock fault: {kind = "bump", offsets = {n1 = 30.0}} or {kind = '
    '"strobe", nodes = ["n1"], delta = 5.0, period = 0.2, duration = 3.0}',
    "start-packet": 'a packet fault: {nodes = ["n2"], to = ["n1", "n3"], loss = 0.3, '
    "delay_ms = 100, jitter_ms = 10}",
}


def _trigger(on: Any, where: str) -> dict[str, str]:
    if not isinstance(on, dict) or len(on) != 1:
        raise ConfigError(f"{where}: `on` is one of {{log = NAME}}, {{log_regex = RE}}, "
                          f"{{process = {'|'.join(TRIGGER_PROCESS)}}}; got {on!r}")  # fmt: skip
    ((key, value),) = on.items()
    if key not in ("log", "log_regex", "process") or not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: `on` must be log, log_regex or process with a string, "
                          f"got {on!r}")  # fmt: skip
    if key == "process" and value not in TRIGGER_PROCESS:
        raise ConfigError(f"{where}: `on.process` is one of {', '.join(TRIGGER_PROCESS)}")
    if key == "log_regex":
        import re

        try:
            re.compile(value)
        except re.error as e:
            raise ConfigError(f"{where}: `on.log_regex` is not a regular expression: {e}") from None
    return {key: value}


def agent_kinds(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    """The fault kinds agent steps strike, in order of first use."""
    return list(dict.fromkeys(str(s["f"]).split("-", 1)[1] for s in steps))


def compile_slices(
    steps: Sequence[Mapping[str, Any]],
    ctx: TestContext,
    db: Any,
    nemeses: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per node (every node: each keeps its own record), the slice its agent is handed
    (without the origin, set at hand-over): each of its steps with the scripts that strike
    and heal it there, and what to watch (the DB's first log file and its named patterns,
    its pidfile). A trigger is armed until the end of the load at the latest. A
    cluster-wide step (:data:`SIDED_OPS`) becomes one strike on every node it touches,
    each with that node's side (:func:`side_scripts`), under the same id.

    ``nemeses``: the run's fault kinds, set up (kind -> nemesis: a partition's or packet
    fault's scripts need each node's driver and peers). Without them (before setup) the
    steps are only checked: cluster-wide strikes get no scripts.
    :class:`ConfigError` for a trigger naming a pattern the adapter does not supply, a kind
    it cannot strike, a value that does not fit the run, or a step after the load."""
    by_name = {n.name: n for n in ctx.nodes}
    steps = validate_agent_steps(list(steps), "agent steps", list(by_name))
    patterns = dict(db.log_patterns) if isinstance(db, LogPatterns) else {}
    # Every node watches and journals (its own record), whether or not it strikes.
    slices: dict[str, dict[str, Any]] = {
        n.name: {"id": "agent", "lease": AGENT_LEASE, "strikes": [],
                 "watch": _watch(db, ctx, n, patterns)}
        for n in ctx.nodes
    }  # fmt: skip
    for i, step in enumerate(steps):
        on = step.get("on") or {}
        if "log" in on and on["log"] not in patterns:
            known = ", ".join(sorted(patterns)) or "none"
            raise ConfigError(f"agent step {i + 1}: {type(db).__name__} supplies no log "
                              f"pattern {on['log']!r} (it has {known}); use log_regex for "
                              "your own")  # fmt: skip
        if "process" in on and not isinstance(db, PidFile):
            raise ConfigError(f"agent step {i + 1}: process triggers need the adapter "
                              f"{type(db).__name__} to name its pid_file")  # fmt: skip
        # Nothing is struck once the load is over (the final heal and reads follow it).
        end = float(ctx.time_limit)
        if step.get("at", 0.0) >= end or step.get("from", 0.0) >= end:
            raise ConfigError(f"agent step {i + 1}: strikes at or after the end of the load "
                              f"({end:g} s)")  # fmt: skip
        if "on" in step:
            step = {**step, "until": min(step.get("until", end), end)}
        sid = f"s{i + 1}"
        if step["f"] in NODE_OPS:
            node = by_name[step["node"]]
            strike, heal = NODE_OPS[step["f"]](db, ctx, node)
            slices[node.name]["strikes"].append({**step, "id": sid, "script": strike,
                                                 "heal": heal})  # fmt: skip
            continue
        try:
            sides = side_scripts(step, ctx, db, nemeses, index=i)
        except NemesisError as e:
            raise ConfigError(f"agent step {i + 1}: {e}") from None
        for name, side in sides.items():
            slices[name]["strikes"].append({**step, "node": name, "id": sid, **side})
    return slices


def side_scripts(
    step: Mapping[str, Any],
    ctx: TestContext,
    db: Any,
    nemeses: Mapping[str, Any] | None,
    *,
    index: int = 0,
) -> dict[str, dict[str, Any]]:
    """For a cluster-wide step (validated; :data:`SIDED_OPS`), per node its value
    touches: ``{"side": what that node holds, "script", "stdin", "heal"}``, the very
    scripts its kind's nemesis runs there (:meth:`PartitionNemesis.node_scripts
    <nemeses.partition.PartitionNemesis.node_scripts>`, the clock's libfaketime scripts,
    :meth:`PacketNemesis.node_scripts <nemeses.packet.PacketNemesis.node_scripts>`) and
    its heal script. Without ``nemeses`` the value is checked and the scripts are
    ``None``. A step naming a ``node`` must touch that node alone (a trigger fires on one
    node, and agents do not talk to each other). A partition's shape name is planned with
    a generator seeded by the step's number (``index``), so one spec strikes one grudge.
    :class:`NemesisError` saying what does not fit."""
    names = [n.name for n in ctx.nodes]
    kind = str(step["f"]).split("-", 1)[1]
    nemesis = (nemeses or {}).get(kind)
    if nemeses is not None and nemesis is None:
        raise NemesisError(f"the run has no {kind} nemesis set up")
    value = step["value"]
    sides: dict[str, dict[str, Any]] = {}
    if kind == "partition":
        from nemeses.partition import grudge_from_json, plan, validate_grudge

        if isinstance(value, str):
            grudge = plan(value, names, random.Random(index + 1))
        else:
            grudge = validate_grudge(grudge_from_json(value), names)
        touched = [n for n in names if grudge.get(n)]
        for n in touched:
            sides[n] = {"side": {"drops_from": sorted(grudge[n])}}
        if nemesis is not None:
            lease = nemesis.lease  # (a PartitionNemesis: its kernel expiry, or None)
            ttl = None
            if lease is not None:  # the kernel expires the rules a lease after their end
                start = float(step.get("at", step.get("from", 0.0)))
                held = step.get("hold")
                ttl = (float(held) if held is not None else float(ctx.time_limit) - start) + lease
            for n, (script, stdin) in nemesis.node_scripts(grudge, lease=ttl).items():
                sides[n].update(script=script, stdin=stdin, heal=nemesis.heal_script(n))
    elif kind == "clock":
        from nemeses import clock_scripts
        from nemeses.clock import clock_fault_from_json, clock_mechanism

        fault = clock_fault_from_json(value, names)
        # before setup (no nemesis) only what the DB allows: the cluster is a stand-in
        cluster = ctx.cluster if nemesis is not None else _with_faketime(ctx.cluster)
        mechanism = clock_mechanism(cluster, db)
        if mechanism != "libfaketime":
            raise NemesisError(
                f"node agents strike clock faults through libfaketime only; here the "
                f"mechanism is {mechanism} (a system-clock fault carries the controller's "
                "time at the strike, which an agent striking on its own does not have)"
            )
        if fault["kind"] == "bump":
            for n, offset in fault["offsets"].items():
                sides[n] = {"side": {"offset": offset}}
        else:
            shape = {k: fault[k] for k in ("delta", "period", "duration")}
            for n in fault["nodes"]:
                sides[n] = {"side": {"strobe": shape}}
        if nemesis is not None:
            d = nemesis.directory
            for n, side in sides.items():
                if "offset" in side["side"]:
                    script = clock_scripts.faketime_bump_script(d, side["side"]["offset"])
                else:
                    script = clock_scripts.faketime_strobe_script(d, **side["side"]["strobe"])
                side.update(script=script, stdin=None, heal=nemesis.heal_script(n))
    else:
        from nemeses.packet import packet_from_json

        packet = packet_from_json(value, names)
        if nemesis is None:  # which nodes hold it depends on their drivers (at setup)
            return {}
        for n, (script, stdin) in nemesis.node_scripts(packet).items():
            sides[n] = {"side": {"driver": nemesis.drivers[n]}, "script": script,
                        "stdin": stdin, "heal": nemesis.heal_script(n)}  # fmt: skip
    node = step.get("node")
    if node is not None and set(sides) - {node} and (kind != "packet" or nemesis is not None):
        raise NemesisError(
            f"{step['f']} with `node` {node!r} must touch {node} alone (a trigger fires on "
            "one node, and agents do not talk to each other; leave `node` out of an `at` "
            f"step to have every node strike its side); this value touches "
            f"{', '.join(sorted(sides))}"
        )
    if not sides and (kind != "packet" or nemesis is not None):
        raise NemesisError(f"{step['f']}: this value touches no node")
    if nemesis is None:
        for side in sides.values():
            side.update(script=None, stdin=None, heal=None)
    return sides


def _with_faketime(cluster: Cluster) -> Cluster:
    """``cluster`` said to have libfaketime: before setup the cluster is a stand-in whose
    capabilities are not known yet, so only what the DB allows is checked then (a Go
    program's clock is out of libfaketime's reach on any cluster)."""
    import dataclasses

    from clusters.base import Capability
    from nemeses.clock import FAKETIME_CAPABILITY

    have = Capability(name=FAKETIME_CAPABILITY, available=True)
    others = tuple(c for c in cluster.capabilities if c.name != FAKETIME_CAPABILITY)
    return dataclasses.replace(cluster, capabilities=(have, *others))


def _watch(db: Any, ctx: TestContext, node: Node, patterns: Mapping[str, str]) -> dict[str, Any]:
    logs = list(db.log_files(ctx, node))
    watch: dict[str, Any] = {"patterns": dict(patterns), "pressure_every": PRESSURE_EVERY}
    if logs:
        watch["log"] = logs[0]
    if isinstance(db, PidFile):
        watch["pidfile"] = db.pid_file
    return watch


#: Prints the node's monotonic clock in ns: the kernel's own ``now at`` of
#: /proc/timer_list (no interpreter to start), else python3's.
_NODE_MONOTONIC = (
    "n=$(grep -m1 'now at' /proc/timer_list 2>/dev/null | cut -d' ' -f3)\n"
    '[ -n "$n" ] && { echo "$n"; exit 0; }\n'
    "exec python3 -c 'import time; print(time.monotonic_ns())'\n"
)


async def measure_offset(remote: Remote, probes: int = OFFSET_PROBES) -> dict[str, int]:
    """The node's monotonic clock minus this controller's, in ns (``offset_ns``), from
    the probe with the least round trip (``rtt_ns``: the offset is good to half of it)."""
    best: dict[str, int] | None = None
    for _ in range(probes):
        t0 = time.monotonic_ns()
        r = await remote.run(_NODE_MONOTONIC, timeout=10.0, sudo=True)
        t1 = time.monotonic_ns()
        try:
            node_ns = int(r.stdout.split()[0])
        except (IndexError, ValueError):
            raise NemesisError(f"{remote.name}: cannot read its monotonic clock: "
                               f"{r.stdout.strip()!r} {r.stderr.strip()!r}") from None  # fmt: skip
        sample = {"offset_ns": node_ns - (t0 + t1) // 2, "rtt_ns": t1 - t0}
        if best is None or sample["rtt_ns"] < best["rtt_ns"]:
            best = sample
    assert best is not None
    return best


async def hand_over(
    guard: FaultGuard,
    slices: Mapping[str, dict[str, Any]],
    *,
    lead: float = DEFAULT_ARM_LEAD,
    record: Path | None = None,
) -> int:
    """Give each node its slice (``slices``, from :func:`compile_slices`) and the lease
    that keeps it alive; then wait until the run's origin, ``lead`` seconds after the
    hand-over began. Returns that origin on this controller's monotonic clock (ns).
    ``record``: where to write what was handed over (``agents.json``, scripts left out).
    :class:`NemesisError` naming the node where it fails."""
    unbuilt = sorted({st["id"] for sl in slices.values() for st in sl["strikes"]
                      if st.get("script") is None})  # fmt: skip
    if unbuilt:
        raise NemesisError(f"agent step(s) {', '.join(unbuilt)} have no scripts: compile the "
                           "slices with the run's fault kinds set up")  # fmt: skip
    remotes = {n: guard.remotes[n] for n in slices}
    measured = await asyncio.gather(*(measure_offset(r) for r in remotes.values()))
    offsets = dict(zip(remotes, measured, strict=True))
    heal = {n: _union(sl["strikes"]) for n, sl in slices.items()}
    await guard.hold(AGENT_LEASE, heal)
    origin = time.monotonic_ns() + round(lead * 1e9)
    handed = {}
    for name, sl in slices.items():
        clock = {"offset_ns": offsets[name]["offset_ns"], "rtt_ns": offsets[name]["rtt_ns"],
                 "by": "controller-probe"}  # fmt: skip
        handed[name] = {**sl, "origin_ns": origin + offsets[name]["offset_ns"], "clock": [clock]}
    await guard.put_slices(handed)
    late = time.monotonic_ns() - origin
    if record is not None:
        record.write_text(json.dumps({  # noqa: ASYNC240 (small, once, before the load)
            "origin_controller_ns": origin, "lead": lead, "handed_late_ms": max(0, late) / 1e6,
            "offsets": offsets,
            "slices": {n: {**s, "strikes": [{k: v for k, v in st.items()
                                             if k not in ("script", "heal", "stdin")}
                                            for st in s["strikes"]]}
                       for n, s in handed.items()},
        }, indent=1) + "\n")  # fmt: skip
    if late < 0:
        await asyncio.sleep(-late / 1e9)
    return origin


def _union(strikes: Sequence[Mapping[str, Any]]) -> str:
    """One script running each distinct heal script of ``strikes`` in a subshell, in the
    kinds' heal order (network and clock before processes: each kind's ``heal_priority``)."""
    from nemeses.kinds import get

    def rank(s: Mapping[str, Any]) -> tuple[int, str]:
        kind = str(s["f"]).split("-", 1)[1]
        return get(kind).heal_priority, kind

    ordered = sorted(strikes, key=rank)
    parts = list(dict.fromkeys(str(s["heal"]) for s in ordered if s.get("heal")))
    return "".join(f"( {p.rstrip()}\n)\n" for p in parts) + "exit 0\n"


#: Bytes of one node's ``agent.jsonl`` read back from a run directory (from its start).
MAX_JOURNAL_BYTES = 8 * 1024 * 1024


def read_journal(
    path: Path, max_bytes: int = MAX_JOURNAL_BYTES
) -> tuple[list[dict[str, Any]], int, bool]:
    """The JSON objects of the first ``max_bytes`` of journal ``path`` (a node's
    ``agent.jsonl``, or any JSON-lines file), torn or bad lines skipped; the number of
    lines read, and whether the file was cut at ``max_bytes``. A file that cannot be read
    reads as empty."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError:
        return [], 0, False
    cut = len(raw) > max_bytes
    if cut:
        raw = raw[: raw.rfind(b"\n", 0, max_bytes) + 1]
    lines = raw.splitlines()
    return json_objects(lines), len(lines), cut


def ledger_records(node: str, journal: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The fault ledger's records (without ``seq``) of what ``node``'s agent struck and
    healed, from its journal: ``applied`` (phase start) at each strike and ``healed``
    (phase stop) at each heal of a ``hold``, timed on the run's clock as the node measured
    it (its offset from the controller corrected at the hand-over), ``source`` ``agent``.
    Strikes that were skipped are left out."""
    out: list[dict[str, Any]] = []
    for r in journal:
        e = r.get("e")
        if e == "strike" and "skipped" not in r and isinstance(r.get("start_run"), int | float):
            f = str(r.get("f"))
            kind = f.split("-", 1)[-1]
            value = r.get("value", {"targets": "nodes", "nodes": [node]})
            rec = {"time": round(float(r["start_run"]) * 1e9), "event": "applied",
                   "phase": "start", "kind": kind, "f": f, "value": value,
                   "targets": [node], "source": "agent", "node": node,
                   "strike": r.get("id"), "trigger": r.get("trigger"),
                   "late_ms": r.get("late_ms"), "done_ms": r.get("done_ms"),
                   "status": r.get("status")}  # fmt: skip
            if "side" in r:  # one node's side of a cluster-wide fault
                rec["side"] = r["side"]
            out.append(rec)
        elif e == "heal" and isinstance(r.get("run"), int | float):
            struck = next((o for o in out if o["strike"] == r.get("id")), None)
            kind = struck["kind"] if struck else "kill"
            out.append({"time": round(float(r["run"]) * 1e9), "event": "healed",
                        "phase": "stop", "kind": kind, "f": f"stop-{kind}", "value": None,
                        "targets": [node], "source": "agent", "node": node,
                        "strike": r.get("id"), "status": r.get("status")})  # fmt: skip
    return out
