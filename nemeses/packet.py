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
    replaced. **The development machines have no netem, so this driver is exercised only
    by unit tests of its script text.**
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
import shlex
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from harness.api import Op, TestContext
from harness.errors import NemesisError
from nemeses.base import (
    DEFAULT_FAULT_TIMEOUT,
    DEFAULT_INTERVAL,
    NemesisPackage,
    Perf,
    check_outcomes,
    completion,
    unknown_f,
)

# Shared with the partition nemesis (one definition): tag syntax, address families, and
# how peer names are resolved on a node.
from nemeses.netaddr import HOSTNAME_RE, TAG_RE, is_literal, resolve_script, split_families
from nemeses.partition import XTABLES_WAIT

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
#: Seconds a node waits for a freshly started delayer to bind its queue.
DELAYER_START_TIMEOUT = 5.0
#: Seconds heal waits for a delayer to exit after SIGTERM before sending SIGKILL.
DELAYER_STOP_TIMEOUT = 3.0
#: The completion value of ``stop-packet``.
HEALED = "packets-healed"
#: Drivers: ``auto`` picks netem per sending node where its kernel has it, else iptables.
DRIVERS = ("auto", "netem", "iptables")
#: The interpreter that runs the delayer on a node.
DEFAULT_PYTHON = "python3"

_PIDFILE = "packet-delayer.pid"
_PROGRAM = "nfqueue_delayer.py"
_LOG = "packet-delayer.log"
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


# --- names derived from the tag --------------------------------------------------------


def packet_chain(tag: str) -> str:
    """The iptables chain (``mangle`` table) holding the packet rules of ``tag``."""
    return f"{tag.upper()}-PACKET"


def qdisc_handles(tag: str) -> tuple[str, str]:
    """The handles (``"c1e0:"`` style) of the root prio qdisc and of its netem child for
    ``tag``: fixed per tag, in a range (0xc000-0xdffe) that ``tc`` never picks itself."""
    major = 0xC000 + (zlib.crc32(tag.encode()) % 0x1FFF)
    return f"{major:x}:", f"{major + 1:x}:"


def default_queue(tag: str) -> int:
    """The NFQUEUE number the delayer of ``tag`` binds (per network namespace)."""
    return 0x7000 + (zlib.crc32(tag.encode()) % 0x1000)


def state_dir(tag: str) -> str:
    """Where the node keeps the delayer's program, pidfile and log."""
    return f"/run/{tag}-packet"


def delayer_program() -> str:
    """The delayer's source text (what is copied to nodes)."""
    return resources.files("nemeses").joinpath(_PROGRAM).read_text(encoding="utf-8")


# --- scripts (pure) --------------------------------------------------------------------


def _ipt(binary: str, *args: str) -> str:
    return " ".join([binary, "-w", str(XTABLES_WAIT), "-t", "mangle", *args])


def _ipt_remove_fn(tag: str) -> str:
    """Shell function ``clew_pkt_ipt_remove BIN``: delete every jump to our chain and the
    chain itself, if the chain exists (status 1 from ``-L`` means it does not)."""
    c = packet_chain(tag)
    b = '"$1"'
    return (
        "clew_pkt_ipt_remove() {\n"
        '  command -v "$1" >/dev/null 2>&1 || return 0\n'
        f"  rc=0; {_ipt(b, '-n', '-L', c)} >/dev/null 2>&1 || rc=$?\n"
        '  [ "$rc" -eq 1 ] && return 0\n'
        f'  [ "$rc" -eq 0 ] || {{ echo "$1 -t mangle -L {c}: status $rc" >&2; return "$rc"; }}\n'
        f"  while {_ipt(b, '-D', 'INPUT', '-j', c)} 2>/dev/null; do :; done\n"
        f"  {_ipt(b, '-F', c)} && {_ipt(b, '-X', c)}\n"
        "}\n"
    )


def _alive_fn() -> str:
    # A process that exists and is not a zombie (a zombie has exited; only its entry is left).
    return (
        "clew_pkt_alive() {\n"
        '  [ -r "/proc/$1/status" ] && ! grep -q "^State:[[:space:]]*Z" "/proc/$1/status"\n'
        "}\n"
    )


def _stop_delayer_fn(tag: str) -> str:
    """Shell function ``clew_pkt_stop_delayer``: stop the delayer the pidfile names, if
    that pid really runs clew's delayer program (never a recycled pid, never by pattern):
    SIGTERM (it accepts what it holds and unbinds), SIGKILL after a grace period."""
    d = state_dir(tag)
    tries = max(1, round(DELAYER_STOP_TIMEOUT * 10))
    return _alive_fn() + (
        "clew_pkt_stop_delayer() {\n"
        f'  p="{d}/{_PIDFILE}"\n'
        '  [ -f "$p" ] || return 0\n'
        '  pid=$(cat "$p" 2>/dev/null)\n'
        '  case "$pid" in ""|*[!0-9]*) rm -f "$p"; return 0;; esac\n'
        '  if clew_pkt_alive "$pid" && tr "\\000" " " <"/proc/$pid/cmdline" | '
        f'grep -qF "{d}/{_PROGRAM}"; then\n'
        '    kill -TERM "$pid" 2>/dev/null\n'
        "    i=0\n"
        f'    while clew_pkt_alive "$pid" && [ "$i" -lt {tries} ]; do sleep 0.1; i=$((i+1)); done\n'
        '    if clew_pkt_alive "$pid"; then kill -KILL "$pid" 2>/dev/null; fi\n'
        "  fi\n"
        '  rm -f "$p"\n'
        "}\n"
    )


def _our_root(handle: str) -> str:
    # awk condition: a `tc qdisc show` line of a root qdisc with this handle
    # ("qdisc prio c1e0: dev eth0 root refcnt 2 ...").
    return f'$3 == "{handle}" && $6 == "root"'


def _netem_remove_fn(tag: str) -> str:
    """Shell function ``clew_pkt_netem_remove``: delete every root qdisc whose handle is
    ours, on every device (the kernel refuses the delete if the handle differs)."""
    prio, _ = qdisc_handles(tag)
    return (
        "clew_pkt_netem_remove() {\n"
        "  command -v tc >/dev/null 2>&1 || return 0\n"
        f"  for dev in $(tc qdisc show | awk '{_our_root(prio)} {{print $5}}'); do\n"
        f'    tc qdisc del dev "$dev" root handle {prio} || return $?\n'
        "  done\n"
        "}\n"
    )


def packet_heal_script(tag: str) -> str:
    """A POSIX sh script removing every packet fault of ``tag`` on a node, whichever driver
    made it: the mangle chain and its jumps (iptables and ip6tables, rules first so nothing
    is queued any more), the delayer named by the pidfile, and root qdiscs with ``tag``'s
    handle. Idempotent, needs no memory of what was injected, touches nothing else."""
    return (
        _ipt_remove_fn(tag)
        + _stop_delayer_fn(tag)
        + _netem_remove_fn(tag)
        + "clew_pkt_ipt_remove iptables || exit $?\n"
        + "clew_pkt_ipt_remove ip6tables || exit $?\n"
        + "clew_pkt_stop_delayer\n"
        + "clew_pkt_netem_remove || exit $?\n"
    )


def packet_verify_script(tag: str, queue: int) -> str:
    """A shell script printing one line per packet-fault object of ``tag`` still on the
    node (nothing when clean): the chain, jumps to it, a live delayer or a stale pidfile,
    queue ``queue`` still bound, root qdiscs with ``tag``'s handle."""
    c = packet_chain(tag)
    d = state_dir(tag)
    prio, _ = qdisc_handles(tag)
    b = '"$b"'
    return _alive_fn() + (
        "for b in iptables ip6tables; do\n"
        '  command -v "$b" >/dev/null 2>&1 || continue\n'
        f'  {_ipt(b, "-n", "-L", c)} >/dev/null 2>&1 && echo "$b mangle chain {c} present"\n'
        f'  j=$({_ipt(b, "-S", "INPUT")} 2>/dev/null | grep -c -- "-j {c}\\$")\n'
        f'  [ "${{j:-0}}" -gt 0 ] && echo "$b mangle INPUT has $j jump(s) to {c}"\n'
        "done\n"
        f'p="{d}/{_PIDFILE}"\n'
        'if [ -f "$p" ]; then\n'
        '  pid=$(cat "$p" 2>/dev/null)\n'
        '  if [ -n "$pid" ] && clew_pkt_alive "$pid"; then '
        'echo "NFQUEUE delayer pid $pid still running";\n'
        '  else echo "stale delayer pidfile $p"; fi\n'
        "fi\n"
        f"q=/proc/net/netfilter/nfnetlink_queue\n"
        f'[ -r "$q" ] && awk \'$1 == {queue} {{found=1}} END {{exit !found}}\' "$q" && '
        f'echo "NFQUEUE {queue} is still bound"\n'
        "if command -v tc >/dev/null 2>&1; then\n"
        f"  tc qdisc show | awk '{_our_root(prio)} {{print \"root qdisc {prio} on \" $5}}'\n"
        "fi\n"
        "true\n"
    )


def probe_script(tag: str, queue: int, python: str = DEFAULT_PYTHON) -> str:
    """A shell script (the delayer's source on its stdin) that saves the delayer under
    :func:`state_dir` and prints one word per working ingredient: ``netem`` (probed in a
    throwaway network namespace when ``unshare`` exists), ``iptables``, ``ip6tables``,
    ``statistic`` and ``nfqueue-rule`` (the match and target, probed in a throwaway
    namespace), ``python`` and ``nfqueue-bind`` (the delayer binds and unbinds ``queue``
    here), or ``nfqueue-error <why>``. Run it after heal, so no delayer holds the queue."""
    d = state_dir(tag)
    ipt = f"iptables -w {XTABLES_WAIT} -t mangle -A INPUT"
    netns_ipt = (
        'if [ -n "$ns" ] && command -v iptables >/dev/null 2>&1; then\n'
        f"  $ns {ipt} -m statistic --mode random --probability 0.5 -j DROP "
        ">/dev/null 2>&1 && echo statistic\n"
        f"  $ns {ipt} -j NFQUEUE --queue-num {queue} --queue-bypass "
        ">/dev/null 2>&1 && echo nfqueue-rule\n"
        "elif command -v iptables >/dev/null 2>&1; then\n"
        "  iptables -m statistic -h >/dev/null 2>&1 && echo statistic\n"
        "  iptables -j NFQUEUE -h >/dev/null 2>&1 && echo nfqueue-rule\n"
        "fi\n"
    )
    return (
        f'd="{d}"\n'
        'mkdir -p "$d" && chmod 700 "$d" || exit 1\n'
        f'cat >"$d/{_PROGRAM}" || exit 1\n'
        'ns=""; command -v unshare >/dev/null 2>&1 && unshare --net true 2>/dev/null && '
        'ns="unshare --net"\n'
        "if command -v tc >/dev/null 2>&1; then\n"
        '  if [ -n "$ns" ]; then\n'
        "    $ns tc qdisc add dev lo root netem delay 1ms >/dev/null 2>&1 && echo netem\n"
        "  elif [ -d /sys/module/sch_netem ]; then echo netem; fi\n"
        "fi\n"
        "for b in iptables ip6tables; do\n"
        '  command -v "$b" >/dev/null 2>&1 && '
        f'"$b" -w {XTABLES_WAIT} -t mangle -n -L INPUT >/dev/null 2>&1 && echo "$b"\n'
        "done\n" + netns_ipt + f"if command -v {python} >/dev/null 2>&1; then\n"
        "  echo python\n"
        f'  if err=$({python} "$d/{_PROGRAM}" --probe --queue {queue} 2>&1 >/dev/null); '
        "then echo nfqueue-bind\n"
        '  else echo "nfqueue-error $(printf %s "$err" | tail -n 1)"; fi\n'
        f"else echo 'nfqueue-error {python} is not installed'; fi\n"
        "true\n"
    )


def _routes_script(addresses: Iterable[str]) -> str:
    # One line per address: the address, then the device the node routes it through.
    quoted = " ".join(shlex.quote(a) for a in addresses)
    return (
        f"for a in {quoted}; do printf '%s ' \"$a\"; "
        'ip -o route get "$a" | awk \'{for (i = 1; i < NF; i++) if ($i == "dev") '
        "{print $(i + 1); exit}}'; done\n"
    )


def _netem_args(fault: PacketFault) -> str:
    args = ["netem"]
    if fault.delay_ms:
        args.append(f"delay {fault.delay_ms}ms")
        if fault.jitter_ms:
            args.append(f"{fault.jitter_ms}ms")
    if fault.loss:
        args.append(f"loss random {fault.loss * 100:g}%")
    if fault.duplicate:
        args.append(f"duplicate {fault.duplicate * 100:g}%")
    return " ".join(args)


def netem_apply_script(tag: str, fault: PacketFault, devices: Mapping[str, Sequence[str]]) -> str:
    """A shell script making each device of ``devices`` (device -> destination address
    literals) send its packets to those destinations through a netem band doing
    ``fault``'s loss/delay/duplication: a root ``prio`` qdisc (4 bands, the default
    priomap, so ordinary traffic never reaches band 4) with clew's handle, the netem
    qdisc on band 4, one u32 filter per destination. Replaces clew's earlier qdisc;
    refuses a device whose root qdisc is someone else's; removes clew's qdisc from every
    device not listed. (Not run on the development machines: their kernel lacks netem.)"""
    prio, child = qdisc_handles(tag)
    major = prio.rstrip(":")
    lines = [_netem_remove_fn(tag), "clew_pkt_netem_remove || exit $?\n"]
    for dev, addrs in sorted(devices.items()):
        v4, v6 = split_families(addrs)
        q = shlex.quote(dev)
        lines.append(
            f"root=$(tc qdisc show dev {q} root | awk 'NR == 1 {{print $3}}')\n"
            f'if [ -n "$root" ] && [ "$root" != "0:" ]; then echo "device {dev} has a root '
            f"qdisc ($root) that is not clew's; not replacing it\" >&2; exit 1; fi\n"
            f"tc qdisc add dev {q} root handle {prio} prio bands 4 "
            "priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1 || exit $?\n"
            f"tc qdisc add dev {q} parent {major}:4 handle {child} {_netem_args(fault)} "
            "|| exit $?\n"
        )
        lines.extend(
            f"tc filter add dev {q} parent {prio} protocol ip prio 3 u32 "
            f"match ip dst {a}/32 flowid {major}:4 || exit $?\n"
            for a in v4
        )
        lines.extend(
            f"tc filter add dev {q} parent {prio} protocol ipv6 prio 4 u32 "
            f"match ip6 dst {a}/128 flowid {major}:4 || exit $?\n"
            for a in v6
        )
    return "".join(lines)


def iptables_apply_script(tag: str, fault: PacketFault, sources: Iterable[str], queue: int) -> str:
    """A shell script making chain ``<TAG>-PACKET`` (mangle table, jumped to once from
    ``INPUT``) drop packets from ``sources`` with ``fault.loss`` (statistic match) and
    send them to NFQUEUE ``queue`` (with ``--queue-bypass``) when ``fault`` delays:
    ``iptables`` for IPv4 sources, ``ip6tables`` for IPv6; a family with no sources has its
    chain removed. Idempotent (flush and refill; the jump is added only if missing)."""
    v4, v6 = split_families(sources)
    c = packet_chain(tag)
    parts = [_ipt_remove_fn(tag)]
    for binary, addrs in (("iptables", v4), ("ip6tables", v6)):
        if not addrs:
            parts.append(f"clew_pkt_ipt_remove {binary} || exit $?\n")
            continue
        src = ",".join(addrs)
        steps = [
            f"{{ {_ipt(binary, '-N', c)} 2>/dev/null || {_ipt(binary, '-F', c)}; }}",
            f"{{ {_ipt(binary, '-C', 'INPUT', '-j', c)} 2>/dev/null || "
            f"{_ipt(binary, '-I', 'INPUT', '1', '-j', c)}; }}",
        ]
        if fault.loss:
            steps.append(
                _ipt(binary, "-A", c, "-s", src, "-m", "statistic", "--mode", "random",
                     "--probability", f"{fault.loss:.6g}", "-j", "DROP")
            )  # fmt: skip
        if fault.delay_ms:
            steps.append(
                _ipt(binary, "-A", c, "-s", src, "-j", "NFQUEUE", "--queue-num", str(queue),
                     "--queue-bypass")
            )  # fmt: skip
        parts.append(" && ".join(steps) + " || exit $?\n")
    return "".join(parts)


def delayer_start_script(
    tag: str, fault: PacketFault, queue: int, python: str = DEFAULT_PYTHON
) -> str:
    """A shell script (the delayer's source on its stdin) that saves the delayer under
    :func:`state_dir`, stops the one the pidfile names, and starts a new one detached
    (``setsid nohup``) delaying ``queue`` by ``fault.delay_ms`` ± ``fault.jitter_ms``;
    it returns once the delayer has bound the queue (its pidfile appears), or fails with
    the end of the delayer's log within :data:`DELAYER_START_TIMEOUT`."""
    d = state_dir(tag)
    tries = max(1, round(DELAYER_START_TIMEOUT * 10))
    args = (
        f"--queue {queue} --delay-ms {fault.delay_ms} --jitter-ms {fault.jitter_ms} "
        f'--pidfile "$d/{_PIDFILE}"'
    )
    return _stop_delayer_fn(tag) + (
        f'd="{d}"\n'
        'mkdir -p "$d" && chmod 700 "$d" || exit 1\n'
        f'cat >"$d/{_PROGRAM}" || exit 1\n'
        "clew_pkt_stop_delayer\n"
        f'setsid nohup {python} "$d/{_PROGRAM}" {args} </dev/null >"$d/{_LOG}" 2>&1 &\n'
        "child=$!\n"
        "i=0\n"
        f'while [ ! -s "$d/{_PIDFILE}" ]; do\n'
        # (the pidfile check again: it may have appeared since the loop's test)
        f'  if ! clew_pkt_alive "$child" && [ ! -s "$d/{_PIDFILE}" ]; then\n'
        f'    echo "the NFQUEUE delayer exited at start: $(tail -n 3 "$d/{_LOG}")" >&2; exit 1\n'
        "  fi\n"
        f'  if [ "$i" -ge {tries} ]; then kill -TERM "$child" 2>/dev/null\n'
        f'    echo "the NFQUEUE delayer did not bind queue {queue} within '
        f'{DELAYER_START_TIMEOUT:g} s: $(tail -n 3 "$d/{_LOG}")" >&2; exit 1\n'
        "  fi\n"
        "  sleep 0.1; i=$((i+1))\n"
        "done\n"
    )


def node_apply_script(
    tag: str,
    fault: PacketFault,
    action: NodeAction,
    queue: int,
    python: str = DEFAULT_PYTHON,
) -> tuple[str, str | None]:
    """The script putting ``action`` (for ``fault``) in force on a node, replacing whatever
    packet fault it held, and the stdin it needs (the delayer's source, or ``None``).
    Order: a delayer is started before rules queue to it, and stopped after they no longer
    do."""
    delays = bool(action.ingress) and fault.delay_ms > 0
    parts: list[str] = []
    if delays:
        parts.append(delayer_start_script(tag, fault, queue, python))
    parts.append(iptables_apply_script(tag, fault, action.ingress, queue))
    if not delays:
        parts.append(_stop_delayer_fn(tag) + "clew_pkt_stop_delayer\n")
    if action.netem:
        parts.append(netem_apply_script(tag, fault, action.netem))
    else:
        parts.append(_netem_remove_fn(tag) + "clew_pkt_netem_remove || exit $?\n")
    return "".join(parts), delayer_program() if delays else None


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
        names = sorted({p.peer_address for p in peers if not is_literal(p.peer_address)})
        bad = [n for n in names if not HOSTNAME_RE.match(n)]
        if bad:
            raise NemesisError(f"peer address(es) {', '.join(bad)} are neither IPs nor hostnames")
        resolved: dict[str, tuple[str, ...]] = {}
        if names:
            for line in (await self._run(state, resolve_script(names))).splitlines():
                name, *found = line.split()
                resolved[name] = tuple(a for a in found if is_literal(a))
        for p in peers:
            addrs = (
                (p.peer_address,) if is_literal(p.peer_address) else resolved.get(p.peer_address)
            )
            if not addrs:
                raise NemesisError(
                    f"on {state.remote.name}: peer {p.name}'s address {p.peer_address!r} "
                    "does not resolve"
                )
            state.addresses[p.name] = addrs
        if use_netem:
            wanted = sorted({a for addrs in state.addresses.values() for a in addrs})
            for line in (await self._run(state, _routes_script(wanted))).splitlines():
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

        async def one(state: _NodeState) -> None:
            script, stdin = node_apply_script(
                self.tag, fault, actions[state.remote.name], self.queue, self.python
            )
            await self._run(state, script, stdin=stdin)

        check_outcomes("start-packet", await self._on_nodes(one))

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
        report: dict[str, list[str]] = {}
        for name, out in outcomes.items():
            if isinstance(out, BaseException):
                if not isinstance(out, Exception):
                    raise out
                report[name] = [f"cannot verify: {out}"]
            else:
                report[name] = [line for line in out.splitlines() if line.strip()]
        return report

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
    return NemesisPackage(
        name="packet",
        nemesis=nemesis,
        start_op={"f": "start-packet", "value": None},
        stop_op={"f": "stop-packet", "value": None},
        interval=interval,
        final_ops=({"f": "stop-packet", "value": None},),
        perf=Perf(
            name="packet",
            start=frozenset({"start-packet"}),
            stop=frozenset({"stop-packet"}),
            color="#A0C4E9",
        ),
    )
