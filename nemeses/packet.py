"""Packet faults: loss, delay and duplication per destination, with or without netem.

A **packet fault** is data (:class:`PacketFault`, JSON as in :func:`packet_to_json`)::

    {"nodes": ["n2"], "to": ["n1", "n3"], "loss": 0.3, "delay_ms": 100, "jitter_ms": 10,
     "duplicate": 0.0}

Every packet sent *by* a node of ``nodes`` *to* a node of ``to`` (itself excepted) is lost
with probability ``loss``, delayed by ``delay_ms`` ± ``jitter_ms`` milliseconds (uniform)
and duplicated with probability ``duplicate``; other traffic is untouched. The planner
:func:`plan_packet` draws such a value from a seeded RNG, so a run's faults are recorded
exactly and can be replayed (``start-packet`` accepts the value back).

How a pair (sender ``s``, receiver ``d``) is faulted depends on the sender's *driver*,
chosen per node at setup by probing it:

``netem`` (the sender's kernel has ``sch_netem``)
    On ``s``, for each device leading to a faulted destination: a root ``prio`` qdisc with
    a fourth band holding a ``netem`` qdisc (loss, delay/jitter, duplicate), and one
    ``u32`` filter per destination address steering its packets into that band. Both
    qdiscs carry handles derived from the tag (:func:`qdisc_handles`); heal deletes root
    qdiscs with clew's handle only (``tc qdisc del … root handle H:`` fails on anyone
    else's), and a device whose root qdisc belongs to someone else is refused, not
    replaced. The development machines' kernels have no netem; VMs have
    (``--provider qemu``), where ``tests/integration/test_qemu_cluster.py`` measures it.
``iptables`` (no netem on the sender)
    On ``d``, the *receiver*: a chain ``<TAG>-PACKET`` in the ``mangle`` table, jumped to
    once from ``INPUT``, matching packets *from* ``s``'s addresses: a ``statistic
    --mode random`` ``DROP`` rule for loss, then ``NFQUEUE --queue-num N --queue-bypass``
    for delay, where the stdlib-only program :mod:`nemeses.nfqueue_delayer` (copied to
    ``/run/<tag>-packet/`` and started detached with ``setsid nohup``, pidfile beside it) holds
    each packet and accepts it after the delay. Duplication is refused: a delayer can only
    accept or drop the packet it was given, not inject a copy on the receiving side.

    Why the receiver and not the sender's ``OUTPUT``: a netfilter ``DROP`` of a locally
    generated packet is reported to the sending socket (``EPERM`` from ``sendmsg``), so
    the sender would see an error at once instead of a silently lost packet; on the
    receiver's ``INPUT`` the loss is silent, as on a real network and as with netem. Why
    ``mangle``: a userspace ``NF_ACCEPT`` resumes at the *next* netfilter table, so the
    rules clew's chain sits before are skipped for delayed packets; in ``mangle``
    (priority -150) those are only mangle rules, while every ``filter`` rule and clew's
    own partition table (priority -10) still see the packet.

    Fail-safe: ``--queue-bypass`` lets packets through when no delayer is bound, and the
    delayer binds its queue with fail-open, so a dead delayer means undelayed traffic,
    never a black hole.

Heal is state-free: on every node it deletes the chain (``iptables`` and ``ip6tables``)
and every jump to it, stops the delayer named by the pidfile (after checking the pid's
command line is clew's delayer: never by pattern), and deletes every root qdisc carrying
clew's handle. :meth:`PacketNemesis.heal_script` gives that script for a node-side guard.
Fault commands on one node are serialised; nodes run in parallel; every command has a
timeout.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from harness.api import Op, TestContext
from harness.errors import NemesisError
from nemeses.base import (
    DEFAULT_FAULT_TIMEOUT,
    DEFAULT_INTERVAL,
    NemesisPackage,
    check_outcomes,
    completion,
    flip_package,
    residue_report,
    unknown_f,
)

# Shared with the partition nemesis (one definition): tag syntax, address families, and
# how peer names are resolved on a node.
from nemeses.netaddr import TAG_RE, peer_addresses
from nemeses.packet_scripts import (
    DEFAULT_PYTHON,
    DELAYER_START_TIMEOUT,
    DELAYER_STOP_TIMEOUT,
    default_queue,
    delayer_program,
    delayer_start_script,
    iptables_apply_script,
    netem_apply_script,
    node_apply_script,
    packet_chain,
    packet_heal_script,
    packet_verify_script,
    probe_script,
    qdisc_handles,
    routes_script,
    state_dir,
)

if TYPE_CHECKING:
    from harness.control import Remote

__all__ = [
    "BEHAVIOURS",
    "DEFAULT_BEHAVIOURS",
    "DEFAULT_DELAY_RANGE_MS",
    "DEFAULT_DUPLICATE_RANGE",
    "DEFAULT_JITTER_FRACTION",
    "DEFAULT_LOSS_RANGE",
    "DEFAULT_TAG",
    "DELAYER_START_TIMEOUT",
    "DELAYER_STOP_TIMEOUT",
    "DRIVERS",
    "HEALED",
    "MAX_DELAY_MS",
    "NodeAction",
    "NodeCaps",
    "PacketFault",
    "PacketNemesis",
    "default_queue",
    "delayer_program",
    "delayer_start_script",
    "feasibility_problems",
    "iptables_apply_script",
    "netem_apply_script",
    "node_actions",
    "node_apply_script",
    "packet_chain",
    "packet_from_json",
    "packet_heal_script",
    "packet_package",
    "packet_to_json",
    "packet_verify_script",
    "parse_probe",
    "plan_packet",
    "probe_script",
    "qdisc_handles",
    "state_dir",
]

#: The default tag: chain ``CLEW-PACKET``, state in ``/run/clew-packet``, qdisc handles.
DEFAULT_TAG = "clew"
#: What a packet fault can do. ``duplicate`` needs netem on the sending node.
BEHAVIOURS = ("loss", "delay", "duplicate")
#: What the planner draws from unless told otherwise (works without netem).
DEFAULT_BEHAVIOURS: tuple[str, ...] = ("loss", "delay")
#: Planned loss probability, uniform in this range (rounded to 0.01).
DEFAULT_LOSS_RANGE = (0.1, 0.5)
#: Planned delay in milliseconds, uniform integer in this range.
DEFAULT_DELAY_RANGE_MS = (20, 200)
#: Planned jitter as a fraction of the planned delay.
DEFAULT_JITTER_FRACTION = 0.1
#: Planned duplication probability, uniform in this range (rounded to 0.01).
DEFAULT_DUPLICATE_RANGE = (0.01, 0.1)
#: The largest delay accepted, in milliseconds.
MAX_DELAY_MS = 60_000
#: The completion value of ``stop-packet``.
HEALED = "packets-healed"
#: Drivers: ``auto`` picks netem per sending node where its kernel has it, else iptables.
DRIVERS = ("auto", "netem", "iptables")

_JSON_KEYS = ("nodes", "to", "loss", "delay_ms", "jitter_ms", "duplicate")
_PYTHON_RE = re.compile(r"^[A-Za-z0-9_./+-]+$")


# --- faults as data --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PacketFault:
    """Packets from each of ``nodes`` to each of ``to`` (itself excepted) are lost with
    probability ``loss``, delayed ``delay_ms`` ± ``jitter_ms`` and duplicated with
    probability ``duplicate``. Build it with :func:`packet_from_json` (which validates)."""

    nodes: tuple[str, ...]
    to: tuple[str, ...]
    loss: float = 0.0
    delay_ms: int = 0
    jitter_ms: int = 0
    duplicate: float = 0.0

    def pairs(self) -> list[tuple[str, str]]:
        """The (sender, receiver) pairs whose packets are faulted, sorted."""
        return sorted((s, d) for s in self.nodes for d in self.to if s != d)

    def behaviours(self) -> tuple[str, ...]:
        """Which of :data:`BEHAVIOURS` this fault uses."""
        used = {"loss": self.loss > 0, "delay": self.delay_ms > 0, "duplicate": self.duplicate > 0}
        return tuple(b for b in BEHAVIOURS if used[b])


def _probability(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise NemesisError(f"packet fault {key!r} must be a probability in [0, 1], not {value!r}")
    return float(value)


def _milliseconds(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DELAY_MS:
        raise NemesisError(
            f"packet fault {key!r} must be whole milliseconds in [0, {MAX_DELAY_MS}], not {value!r}"
        )
    return value


def _node_list(data: Mapping[str, Any], key: str, known: Sequence[str]) -> tuple[str, ...]:
    value = data.get(key, list(known)) if key == "to" else data.get(key)
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise NemesisError(f"packet fault {key!r} must be a list of node names, not {value!r}")
    names = [str(n) for n in value]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise NemesisError(
            f"packet fault {key!r} names unknown node(s) {', '.join(unknown)}; "
            f"nodes are {', '.join(known)}"
        )
    if not names:
        raise NemesisError(f"packet fault {key!r} names no node")
    return tuple(sorted(set(names), key=list(known).index))


def packet_from_json(data: Any, nodes: Sequence[str]) -> PacketFault:
    """The fault described by ``data`` (as :func:`packet_to_json` writes it; ``to``
    defaults to every node, the numbers to 0) over cluster ``nodes``, validated:
    :class:`NemesisError` saying what is wrong (unknown key or node, a probability outside
    [0, 1], delays not whole milliseconds, jitter above the delay, no effect at all, or no
    pair of distinct nodes)."""
    if not isinstance(data, Mapping):
        raise NemesisError(f"a packet fault must be a mapping like {_example()}, not {data!r}")
    extra = sorted(set(data) - set(_JSON_KEYS))
    if extra:
        raise NemesisError(
            f"unknown packet fault key(s) {', '.join(extra)}; known: {', '.join(_JSON_KEYS)}"
        )
    fault = PacketFault(
        nodes=_node_list(data, "nodes", nodes),
        to=_node_list(data, "to", nodes),
        loss=_probability(data, "loss"),
        delay_ms=_milliseconds(data, "delay_ms"),
        jitter_ms=_milliseconds(data, "jitter_ms"),
        duplicate=_probability(data, "duplicate"),
    )
    if fault.jitter_ms > fault.delay_ms:
        raise NemesisError(
            f"packet fault jitter ({fault.jitter_ms} ms) exceeds its delay ({fault.delay_ms} ms)"
        )
    if not fault.behaviours():
        raise NemesisError("a packet fault needs loss, delay_ms or duplicate above 0")
    if not fault.pairs():
        raise NemesisError(
            f"packet fault from {', '.join(fault.nodes)} to {', '.join(fault.to)} "
            "affects no pair of distinct nodes"
        )
    return fault


def _example() -> str:
    return '{"nodes": ["n2"], "to": ["n1"], "loss": 0.3, "delay_ms": 100}'


def packet_to_json(fault: PacketFault) -> dict[str, Any]:
    """The fault as JSON data, every key present (the completion value of
    ``start-packet``, accepted back by :func:`packet_from_json`)."""
    return {
        "nodes": list(fault.nodes),
        "to": list(fault.to),
        "loss": fault.loss,
        "delay_ms": fault.delay_ms,
        "jitter_ms": fault.jitter_ms,
        "duplicate": fault.duplicate,
    }


# --- the planner (pure) ----------------------------------------------------------------


def plan_packet(
    nodes: Sequence[str],
    rng: random.Random,
    *,
    behaviours: Sequence[str] = DEFAULT_BEHAVIOURS,
    loss: tuple[float, float] = DEFAULT_LOSS_RANGE,
    delay_ms: tuple[int, int] = DEFAULT_DELAY_RANGE_MS,
    jitter: float = DEFAULT_JITTER_FRACTION,
    duplicate: tuple[float, float] = DEFAULT_DUPLICATE_RANGE,
) -> dict[str, Any]:
    """A random packet fault over ``nodes`` as JSON data (see :func:`packet_to_json`),
    every choice from ``rng`` (same seed, same value): a minority of senders (at least
    one), sending either to every other node or to a random non-empty subset of the
    others, with a random non-empty subset of ``behaviours`` at strengths drawn from the
    ranges. :class:`NemesisError` for fewer than 2 nodes or a bad range or behaviour."""
    order = list(nodes)
    if len(set(order)) != len(order):
        raise NemesisError(f"node names repeat: {order}")
    if len(order) < 2:
        raise NemesisError(f"a packet fault needs at least 2 nodes, got {len(order)}")
    wanted = _check_behaviours(behaviours)
    _check_range("loss", loss, 0.01, 1.0)
    _check_range("delay_ms", delay_ms, 1, MAX_DELAY_MS)
    _check_range("duplicate", duplicate, 0.01, 1.0)
    if not 0 <= jitter <= 1:
        raise NemesisError(f"jitter is a fraction of the delay in [0, 1], not {jitter!r}")
    senders = sorted(rng.sample(order, rng.randint(1, max(1, (len(order) - 1) // 2))))
    others = [n for n in order if n not in senders]
    if rng.random() < 0.5:
        to = order
    else:
        to = sorted(rng.sample(others, rng.randint(1, len(others))), key=order.index)
    chosen = set(rng.sample(wanted, rng.randint(1, len(wanted))))
    value: dict[str, Any] = {"nodes": sorted(senders, key=order.index), "to": list(to)}
    value["loss"] = _percent(rng.uniform(*loss)) if "loss" in chosen else 0.0
    delay = rng.randint(*delay_ms) if "delay" in chosen else 0
    value["delay_ms"] = delay
    value["jitter_ms"] = round(delay * jitter)
    value["duplicate"] = _percent(rng.uniform(*duplicate)) if "duplicate" in chosen else 0.0
    return value


def _percent(p: float) -> float:
    # Whole percents, never 0 (a chosen behaviour must do something).
    return max(0.01, round(p, 2))


def _check_behaviours(behaviours: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(behaviours))
    bad = [b for b in wanted if b not in BEHAVIOURS]
    if bad or not wanted:
        raise NemesisError(
            f"packet behaviours must be a non-empty choice of {', '.join(BEHAVIOURS)}, "
            f"not {list(behaviours)!r}"
        )
    return wanted


def _check_range(name: str, bounds: tuple[float, float], low: float, high: float) -> None:
    if len(bounds) != 2 or not low <= bounds[0] <= bounds[1] <= high:
        raise NemesisError(f"{name} range must be (a, b) with {low} <= a <= b <= {high}")


# --- what each node does (pure) --------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeCaps:
    """What a node offers packet faults, as its setup probe found."""

    netem: bool = False
    iptables: bool = False
    ip6tables: bool = False
    statistic: bool = False
    nfqueue_rule: bool = False
    python: bool = False
    nfqueue_bind: bool = False
    nfqueue_error: str = ""

    def loss_in(self) -> bool:
        """Whether loss of incoming packets works here (iptables statistic match)."""
        return self.iptables and self.statistic

    def delay_in(self) -> bool:
        """Whether delay of incoming packets works here (NFQUEUE + the delayer)."""
        return self.iptables and self.nfqueue_rule and self.python and self.nfqueue_bind


def parse_probe(output: str) -> NodeCaps:
    """The :class:`NodeCaps` that :func:`probe_script`'s output reports."""
    words = set()
    error = ""
    for line in output.splitlines():
        key, _, rest = line.strip().partition(" ")
        if key == "nfqueue-error":
            error = rest.strip()
        elif key:
            words.add(key)
    return NodeCaps(
        netem="netem" in words,
        iptables="iptables" in words,
        ip6tables="ip6tables" in words,
        statistic="statistic" in words,
        nfqueue_rule="nfqueue-rule" in words,
        python="python" in words,
        nfqueue_bind="nfqueue-bind" in words,
        nfqueue_error=error,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeAction:
    """What one node must hold for a fault: netem on its own egress (device -> the
    destination addresses steered into the netem band) and iptables rules on its ingress
    (the source addresses whose packets it drops or delays)."""

    netem: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ingress: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether the node holds nothing (it is healed)."""
        return not self.netem and not self.ingress


def node_actions(
    fault: PacketFault,
    drivers: Mapping[str, str],
    addresses: Mapping[str, Mapping[str, Sequence[str]]],
    devices: Mapping[str, Mapping[str, str]],
) -> dict[str, NodeAction]:
    """Per node of ``drivers``, what it must hold for ``fault``: a pair whose sender's
    driver is ``netem`` goes into the sender's netem band (``devices[s][address]`` is the
    device towards that address); any other pair becomes ingress rules on the receiver
    (``addresses[d][s]`` are ``s``'s addresses as ``d`` sees them). Nodes the fault does
    not touch get an empty action."""
    netem: dict[str, dict[str, list[str]]] = {n: {} for n in drivers}
    ingress: dict[str, list[str]] = {n: [] for n in drivers}
    for s, d in fault.pairs():
        if drivers[s] == "netem":
            for a in addresses[s][d]:
                netem[s].setdefault(devices[s][a], []).append(a)
        else:
            ingress[d].extend(addresses[d][s])
    return {
        n: NodeAction(
            netem={dev: tuple(dict.fromkeys(a)) for dev, a in sorted(netem[n].items())},
            ingress=tuple(dict.fromkeys(ingress[n])),
        )
        for n in drivers
    }


def feasibility_problems(
    behaviours: Iterable[str],
    pairs: Iterable[tuple[str, str]],
    drivers: Mapping[str, str],
    caps: Mapping[str, NodeCaps],
    v6_sources: Mapping[str, bool] | None = None,
) -> list[str]:
    """Why ``behaviours`` cannot be applied to every (sender, receiver) pair in ``pairs``
    given each node's driver and capabilities: one sentence per node and reason (empty:
    feasible). ``v6_sources[d]`` says whether some peer reaches ``d`` over IPv6."""
    wanted = set(behaviours)
    problems: dict[str, str] = {}
    for s, d in pairs:
        if drivers[s] == "netem":
            continue
        if "duplicate" in wanted:
            problems.setdefault(
                f"dup {s}",
                f"{s} has no netem, and duplicating packets needs netem on the sending node "
                "(the iptables fallback only drops and delays); plan without 'duplicate'",
            )
        c = caps[d]
        if "loss" in wanted and not c.loss_in():
            why = "'s statistic match does not work" if c.iptables else " is missing"
            problems.setdefault(
                f"loss {d}", f"{d} cannot drop packets at random: iptables{why} there"
            )
        if "delay" in wanted and not c.delay_in():
            problems.setdefault(f"delay {d}", f"{d} cannot delay packets: {_why_no_delay(c)}")
        if (v6_sources or {}).get(d) and not c.ip6tables:
            problems.setdefault(f"v6 {d}", f"{d} has IPv6 peers but no working ip6tables")
    return [problems[k] for k in sorted(problems)]


def _why_no_delay(c: NodeCaps) -> str:
    if not c.iptables:
        return "iptables is missing there (and netem is not in the sender's kernel)"
    if not c.nfqueue_rule:
        return "iptables' NFQUEUE target does not work there"
    if not c.python:
        return "python3 is missing there (the NFQUEUE delayer needs it); install python3"
    return f"no program can bind an NFQUEUE there ({c.nfqueue_error or 'unknown reason'})"


# --- the nemesis -----------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class _NodeState:
    remote: Remote
    caps: NodeCaps = field(default_factory=NodeCaps)
    driver: str = ""  # how packets this node *sends* are faulted: "netem" or "iptables"
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)  # peer -> addresses
    devices: dict[str, str] = field(default_factory=dict)  # peer address -> device (netem)


class PacketNemesis:
    """Loses, delays and duplicates packets per destination (see the module docstring).

    Ops: ``{"f": "start-packet", "value": V}`` where ``V`` is ``None`` (a fault planned by
    :func:`plan_packet` with ``ctx.rng`` and this nemesis's ``behaviours`` and ranges) or
    an explicit fault (:func:`packet_from_json`'s shape, e.g. from a recorded history); a
    new fault *replaces* the current one. Its completion's value is the fault applied
    (:func:`packet_to_json`). ``{"f": "stop-packet"}`` heals every node; its value is
    :data:`HEALED`.

    ``driver``: ``auto`` (netem on the sender where its kernel has it, else the iptables
    fallback on the receiver, per node), ``netem`` or ``iptables``. ``queue`` is the
    NFQUEUE number (default from the tag); ``python`` runs the delayer on nodes;
    ``timeout`` bounds every command on a node.
    """

    fs = frozenset({"start-packet", "stop-packet"})

    def __init__(
        self,
        *,
        behaviours: Sequence[str] = DEFAULT_BEHAVIOURS,
        loss: tuple[float, float] = DEFAULT_LOSS_RANGE,
        delay_ms: tuple[int, int] = DEFAULT_DELAY_RANGE_MS,
        jitter: float = DEFAULT_JITTER_FRACTION,
        duplicate: tuple[float, float] = DEFAULT_DUPLICATE_RANGE,
        driver: Literal["auto", "netem", "iptables"] = "auto",
        tag: str = DEFAULT_TAG,
        queue: int | None = None,
        python: str = DEFAULT_PYTHON,
        timeout: float = DEFAULT_FAULT_TIMEOUT,
    ) -> None:
        self.behaviours = tuple(_check_behaviours(behaviours))
        self._plan_options: dict[str, Any] = {
            "behaviours": self.behaviours,
            "loss": loss,
            "delay_ms": delay_ms,
            "jitter": jitter,
            "duplicate": duplicate,
        }
        plan_packet(["a", "b"], random.Random(0), **self._plan_options)  # bad ranges: now
        if driver not in DRIVERS:
            raise NemesisError(
                f"unknown packet driver {driver!r}; choose one of {', '.join(DRIVERS)}"
            )
        if not TAG_RE.match(tag):
            raise NemesisError(f"packet tag must match {TAG_RE.pattern}, not {tag!r}")
        if queue is not None and not 0 <= queue <= 65535:
            raise NemesisError(f"NFQUEUE number must be in [0, 65535], not {queue!r}")
        if not _PYTHON_RE.match(python):
            raise NemesisError(f"python must be a command name or path, not {python!r}")
        if timeout <= DELAYER_START_TIMEOUT + DELAYER_STOP_TIMEOUT:
            raise NemesisError(
                "packet command timeout must exceed the delayer's start and stop waits "
                f"({DELAYER_START_TIMEOUT + DELAYER_STOP_TIMEOUT:g} s)"
            )
        self.driver = driver
        self.tag = tag
        self.queue = default_queue(tag) if queue is None else queue
        self.python = python
        self.timeout = timeout
        self._nodes: dict[str, _NodeState] = {}

    def __repr__(self) -> str:
        return (
            f"<PacketNemesis behaviours={','.join(self.behaviours)} driver={self.driver} "
            f"tag={self.tag}>"
        )

    @property
    def drivers(self) -> dict[str, str]:
        """Per node, how the packets it sends are faulted (``netem`` or ``iptables``)."""
        return {n: s.driver for n, s in self._nodes.items()}

    @property
    def capabilities(self) -> dict[str, NodeCaps]:
        """Per node, what its setup probe found."""
        return {n: s.caps for n, s in self._nodes.items()}

    # ---- lifecycle --------------------------------------------------------------------

    async def setup(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> None:
        """Keep a remote per node of ``ctx``; heal leftovers on every node; probe each
        node (netem, iptables' statistic match and NFQUEUE target, python3, binding a
        queue) and choose its driver; resolve peer addresses (and, for netem senders, the
        device towards each); and check that every behaviour this nemesis may plan works
        between every pair of nodes. :class:`NemesisError` listing every node and reason."""
        names = [n.name for n in ctx.nodes]
        missing = [n for n in names if n not in remotes]
        if missing:
            raise NemesisError(f"packet nemesis: no remote for node(s) {', '.join(missing)}")
        if len(names) < 2:
            raise NemesisError("packet faults need at least 2 nodes")
        self._nodes = {n: _NodeState(remote=remotes[n]) for n in names}
        await self.heal_all(ctx)
        check_outcomes(
            "packet nemesis setup", await self._on_nodes(lambda s: self._prepare(ctx, s))
        )
        pairs = [(s, d) for s in names for d in names if s != d]
        problems = self._problems(self.behaviours, pairs)
        if problems:
            raise NemesisError(
                "packet nemesis setup: cannot inject "
                f"{', '.join(self.behaviours)} everywhere:\n  " + "\n  ".join(problems)
            )

    async def _prepare(self, ctx: TestContext, state: _NodeState) -> None:
        out = await self._run(
            state, probe_script(self.tag, self.queue, self.python), stdin=delayer_program()
        )
        state.caps = parse_probe(out)
        if self.driver == "netem" and not state.caps.netem:
            raise NemesisError(
                f"on {state.remote.name}: the kernel has no netem (sch_netem); use driver "
                "'auto' or 'iptables' for loss and delay without it"
            )
        use_netem = self.driver != "iptables" and state.caps.netem
        state.driver = "netem" if use_netem else "iptables"
        peers = [n for n in ctx.nodes if n.name != state.remote.name]
        state.addresses.update(
            await peer_addresses(state.remote.name, peers, lambda s: self._run(state, s))
        )
        if use_netem:
            wanted = sorted({a for addrs in state.addresses.values() for a in addrs})
            for line in (await self._run(state, routes_script(wanted))).splitlines():
                address, _, dev = line.strip().partition(" ")
                if dev.strip():
                    state.devices[address] = dev.strip()
            lost = [a for a in wanted if a not in state.devices]
            if lost:
                raise NemesisError(
                    f"on {state.remote.name}: no route (device) to {', '.join(lost)}"
                )

    def _problems(self, behaviours: Iterable[str], pairs: Iterable[tuple[str, str]]) -> list[str]:
        v6 = {
            d: any(":" in a for s in self._nodes if s != d for a in self._nodes[d].addresses[s])
            for d in self._nodes
        }
        return feasibility_problems(
            behaviours,
            pairs,
            self.drivers,
            {n: s.caps for n, s in self._nodes.items()},
            v6,
        )

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Start or stop a packet fault (see the class docstring); return the completion."""
        f = op.get("f")
        if f == "start-packet":
            fault = self._fault_for(ctx, op.get("value"))
            await self.apply(fault)
            return completion(op, packet_to_json(fault))
        if f == "stop-packet":
            await self.heal_all(ctx)
            return completion(op, HEALED)
        raise unknown_f(self, op)

    def _fault_for(self, ctx: TestContext, value: Any) -> PacketFault:
        names = list(self._nodes) or [n.name for n in ctx.nodes]
        if value is None:
            value = plan_packet(names, ctx.rng, **self._plan_options)
        return packet_from_json(value, names)

    async def apply(self, fault: PacketFault) -> None:
        """Make ``fault`` the packet fault in force on every node, at once: nodes it
        involves get their objects replaced, the others are healed. :class:`NemesisError`
        if a node cannot do what the fault asks (nothing is changed then), or naming each
        node (and command) that failed."""
        scripts = self.node_scripts(fault, every_node=True)

        async def one(state: _NodeState) -> None:
            script, stdin = scripts[state.remote.name]
            await self._run(state, script, stdin=stdin)

        check_outcomes("start-packet", await self._on_nodes(one))

    def node_scripts(
        self, fault: PacketFault, *, every_node: bool = False
    ) -> dict[str, tuple[str, str | None]]:
        """Per node that holds something for ``fault`` (every node with ``every_node``:
        the others' scripts heal), the shell script and its stdin that put its part in
        force there, replacing its earlier one: what :meth:`apply` runs, and what a node
        agent strikes (:mod:`nemeses.agent`). :class:`NemesisError` if a node cannot do
        what the fault asks. Needs :meth:`setup` (drivers, peers, devices)."""
        self._require_setup()
        problems = self._problems(fault.behaviours(), fault.pairs())
        if problems:
            raise NemesisError("cannot apply packet fault:\n  " + "\n  ".join(problems))
        actions = node_actions(
            fault,
            self.drivers,
            {n: s.addresses for n, s in self._nodes.items()},
            {n: s.devices for n, s in self._nodes.items()},
        )
        return {
            name: node_apply_script(self.tag, fault, action, self.queue, self.python)
            for name, action in actions.items()
            if every_node or not action.empty
        }

    async def heal_all(self, ctx: TestContext) -> None:
        """Remove clew's packet faults (both drivers' objects, and the delayer) from every
        node in parallel, remembering nothing of what was injected. :class:`NemesisError`
        naming each node (and command) that failed; the other nodes are healed
        regardless."""
        self._require_setup()
        outcomes = await self._on_nodes(lambda s: self._run(s, packet_heal_script(self.tag)))
        check_outcomes("healing packet faults", outcomes)

    def heal_script(self, node_name: str) -> str:
        """The POSIX sh script that heals every packet fault of this nemesis's tag on node
        ``node_name`` (idempotent and state-free: see :func:`packet_heal_script`), for a
        node-side guard to run when the controller is gone."""
        if self._nodes and node_name not in self._nodes:
            raise NemesisError(
                f"packet nemesis: unknown node {node_name!r}; nodes are {', '.join(self._nodes)}"
            )
        return packet_heal_script(self.tag)

    async def verify_healed(self, ctx: TestContext) -> dict[str, list[str]]:
        """Per node, the packet-fault objects of this tag still present (empty: clean). A
        node that could not be checked lists ``"cannot verify: <why>"``."""
        self._require_setup()
        script = packet_verify_script(self.tag, self.queue)
        outcomes = await self._on_nodes(lambda s: self._run(s, script))
        return residue_report(outcomes)

    async def teardown(self, ctx: TestContext) -> None:
        """Heal every node (as :meth:`heal_all`); harmless if setup never ran."""
        if self._nodes:
            await self.heal_all(ctx)

    # ---- helpers ----------------------------------------------------------------------

    def _require_setup(self) -> None:
        if not self._nodes:
            raise NemesisError("the packet nemesis has not been set up (call setup first)")

    async def _on_nodes(self, fn: Callable[[_NodeState], Any]) -> dict[str, Any]:
        states = list(self._nodes.values())
        outcomes = await asyncio.gather(*(fn(s) for s in states), return_exceptions=True)
        return {s.remote.name: o for s, o in zip(states, outcomes, strict=True)}

    async def _run(self, state: _NodeState, script: str, *, stdin: str | None = None) -> str:
        async with state.lock:  # one fault command at a time per node
            result = await state.remote.run(script, stdin=stdin, timeout=self.timeout, sudo=True)
        return result.stdout


# --- the package -----------------------------------------------------------------------


def packet_package(
    *,
    interval: float = DEFAULT_INTERVAL,
    behaviours: Sequence[str] = DEFAULT_BEHAVIOURS,
    driver: Literal["auto", "netem", "iptables"] = "auto",
    tag: str = DEFAULT_TAG,
    queue: int | None = None,
    timeout: float = DEFAULT_FAULT_TIMEOUT,
) -> NemesisPackage:
    """A :class:`~nemeses.base.NemesisPackage` starting a planned packet fault (drawn from
    ``behaviours``) every ``interval`` seconds, healed by a final ``stop-packet``; drawn as
    "packet"."""
    nemesis = PacketNemesis(
        behaviours=behaviours, driver=driver, tag=tag, queue=queue, timeout=timeout
    )
    return flip_package("packet", nemesis, interval=interval, color="#A0C4E9")
