"""Network partitions: grudge planners (pure), netfilter scripts (pure), the nemesis.

A **grudge** maps each node to the nodes whose packets it drops:
``{"n1": frozenset({"n3", "n4", "n5"}), ...}``. Two nodes can talk only if neither holds a
grudge against the other. Planners compute grudges on the controller as plain data, so a
run's partitions can be recorded, replayed and shrunk (``start-partition`` accepts an
explicit grudge as its value). Shapes are built as *topologies*, networkx graphs with an
edge between every two nodes that can talk (:func:`grudge_from_graph`, :func:`graph_of`),
so their properties (who holds a majority, which node bridges) can be checked as graphs.

Injection happens inside each node (through its :class:`~harness.control.Remote`, so in the
node's own network namespace or machine, never on the controller's host), and drops only
*ingress* packets whose source is a grudged peer's address (Jepsen's construction). That is
enough for the grudge's meaning: a packet from ``a`` to ``b`` is dropped at ``b`` if ``b``
grudges ``a``; a symmetric grudge cuts both directions. The controller's SSH path is never
cut, because the controller is not a peer.

Two drivers, both touching only clew's own objects (named from ``tag``, default ``clew``):

``nft`` (preferred)
    A dedicated ``table inet <tag>`` holding sets ``blocked4``/``blocked6`` and an input
    chain (priority ``-10``) dropping ``ip saddr @blocked4`` and ``ip6 saddr @blocked6``.
    Each injection replaces the whole table in one atomic transaction; heal is one
    ``delete table``. With ``lease`` set, set elements carry a kernel timeout, so the
    partition heals itself even if the controller dies.
``iptables`` (fallback when ``nft`` is missing, or forced)
    A dedicated chain ``<TAG>-PARTITION`` in the filter table with one ``DROP`` rule, jumped
    to once from ``INPUT`` (``ip6tables`` likewise for IPv6 peers). Heal deletes every jump
    to it (duplicates included), then the chain. Always ``-w`` (the xtables lock). With
    the nf_tables backend, iptables itself keeps the (then empty) ``ip filter`` table it
    created; that table is iptables', not clew's, so heal leaves it.

Heal is state-free: it removes both drivers' objects wherever they exist, so it works after
a controller crash, when nothing was injected, and when a previous run used the other
driver. Fault commands on one node are serialised; nodes run in parallel.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import networkx as nx

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
from nemeses.netaddr import HOSTNAME_RE, TAG_RE, is_literal, resolve_script, split_families

if TYPE_CHECKING:
    from harness.control import Remote

__all__ = [
    "DEFAULT_SHAPE",
    "DEFAULT_TAG",
    "DRIVERS",
    "HEALED",
    "NFT_PRIORITY",
    "SHAPES",
    "XTABLES_WAIT",
    "Grudge",
    "PartitionNemesis",
    "Planner",
    "bridge",
    "complete_grudge",
    "connected",
    "graph_of",
    "grudge_from_graph",
    "grudge_from_json",
    "grudge_to_json",
    "halves",
    "heal_script",
    "iptables_apply_script",
    "isolate_one",
    "majorities_ring",
    "minority_third",
    "nft_apply_script",
    "partition_package",
    "plan",
    "random_halves",
    "validate_grudge",
    "verify_script",
]

#: node -> the nodes whose packets it drops. Planners give every node a key.
Grudge = Mapping[str, frozenset[str]]

#: A grudge planner: nodes and an RNG in, a grudge out. Pure; same seed, same grudge.
Planner = Callable[[Sequence[str], random.Random], Grudge]

#: The default tag: nft table ``inet clew``, iptables chain ``CLEW-PARTITION``.
DEFAULT_TAG = "clew"
#: The shape ``start-partition`` uses when its value is ``None``.
DEFAULT_SHAPE = "random-halves"
#: Priority of clew's nft input chain: ahead of the usual filter chains (0).
NFT_PRIORITY = -10
#: Seconds iptables waits for the xtables lock (``-w``) before giving up.
XTABLES_WAIT = 5
#: The completion value of ``stop-partition``.
HEALED = "network-healed"
#: Injection drivers: per node, ``auto`` picks nft if it works there, else iptables.
DRIVERS = ("auto", "nft", "iptables")


# --- grudges as data -------------------------------------------------------------------


def grudge_from_graph(graph: nx.Graph) -> dict[str, frozenset[str]]:
    """The grudge of a *topology*: ``graph`` has an edge between every two nodes that can
    talk, and each node drops every node it has no edge to. Symmetric by construction."""
    everyone = frozenset(graph.nodes)
    return {n: everyone - {n} - frozenset(graph.neighbors(n)) for n in graph.nodes}


def graph_of(grudge: Grudge, nodes: Iterable[str] | None = None) -> nx.Graph:
    """The topology a grudge leaves: an edge between every two nodes that can still talk
    (see :func:`connected`), over ``nodes`` (default: the grudge's)."""
    names = list(nodes) if nodes is not None else list(grudge)
    g = nx.Graph()
    g.add_nodes_from(names)
    g.add_edges_from(
        (a, b) for i, a in enumerate(names) for b in names[i + 1 :] if connected(grudge, a, b)
    )
    return g


def _components_graph(components: Iterable[Iterable[str]]) -> nx.Graph:
    g = nx.Graph()
    for comp in components:
        members = list(comp)
        g.add_nodes_from(members)
        g.add_edges_from(itertools.combinations(members, 2))
    return g


def complete_grudge(components: Iterable[Iterable[str]]) -> dict[str, frozenset[str]]:
    """The grudge in which each node drops every node outside its own component (so the
    components cannot talk to each other, and talk freely inside). Symmetric."""
    return grudge_from_graph(_components_graph(components))


def connected(grudge: Grudge, a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` can exchange packets under ``grudge`` (neither drops the
    other; a node is always connected to itself)."""
    return a == b or (b not in grudge.get(a, frozenset()) and a not in grudge.get(b, frozenset()))


def validate_grudge(grudge: Grudge, nodes: Iterable[str]) -> dict[str, frozenset[str]]:
    """``grudge`` checked against ``nodes`` and completed with an empty set for every node
    it does not mention; :class:`NemesisError` naming any unknown node or self-grudge."""
    known = list(nodes)
    out: dict[str, frozenset[str]] = {n: frozenset() for n in known}
    for n, peers in grudge.items():
        unknown = sorted({n, *peers} - set(known))
        if unknown:
            raise NemesisError(
                f"grudge names unknown node(s) {', '.join(unknown)}; nodes are {', '.join(known)}"
            )
        if n in peers:
            raise NemesisError(f"grudge makes {n} drop its own packets")
        out[n] = frozenset(peers)
    return out


def grudge_to_json(grudge: Grudge) -> dict[str, list[str]]:
    """The grudge as JSON data: node -> sorted list, nodes that drop nothing left out."""
    return {n: sorted(peers) for n, peers in sorted(grudge.items()) if peers}


def grudge_from_json(data: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """The grudge written by :func:`grudge_to_json` (or any node -> list mapping)."""
    if not isinstance(data, Mapping):
        raise NemesisError(f"a grudge must be a mapping of node -> nodes, not {data!r}")
    return {str(n): frozenset(str(p) for p in peers) for n, peers in data.items()}


# --- planners (pure) -------------------------------------------------------------------


def _ordered(nodes: Sequence[str], rng: random.Random | None) -> list[str]:
    out = list(nodes)
    if len(set(out)) != len(out):
        raise ValueError(f"node names repeat: {out}")
    if rng is not None:
        rng.shuffle(out)
    return out


def _need(nodes: Sequence[str], n: int, shape: str) -> None:
    if len(nodes) < n:
        raise ValueError(f"shape {shape!r} needs at least {n} nodes, got {len(nodes)}")


def halves(nodes: Sequence[str], rng: random.Random | None = None) -> dict[str, frozenset[str]]:
    """Cut the nodes into two halves, the first ``floor(n/2)`` nodes (in the given order,
    or shuffled by ``rng``) against the rest, which hold the majority. Symmetric. Needs
    2 nodes."""
    _need(nodes, 2, "halves")
    order = _ordered(nodes, rng)
    k = len(order) // 2
    return complete_grudge([order[:k], order[k:]])


def random_halves(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """:func:`halves` of the nodes shuffled by ``rng``: a random minority against the
    majority. Same seed, same grudge."""
    return halves(nodes, rng)


def isolate_one(
    nodes: Sequence[str], rng: random.Random | None = None
) -> dict[str, frozenset[str]]:
    """Isolate one node (chosen by ``rng``; the first without one) from all others, which
    stay connected. Symmetric. Needs 2 nodes."""
    _need(nodes, 2, "one")
    order = _ordered(nodes, rng)
    return complete_grudge([order[:1], order[1:]])


def minority_third(
    nodes: Sequence[str], rng: random.Random | None = None
) -> dict[str, frozenset[str]]:
    """Cut off the largest group strictly smaller than a third of the nodes
    (``floor((n-1)/3)``, Jepsen's ``minority-third``) from the rest. Symmetric. Needs 4
    nodes (below that the group would be empty)."""
    _need(nodes, 4, "minority-third")
    order = _ordered(nodes, rng)
    k = (len(order) - 1) // 3
    return complete_grudge([order[:k], order[k:]])


def bridge(nodes: Sequence[str], rng: random.Random | None = None) -> dict[str, frozenset[str]]:
    """Cut the nodes into halves as :func:`halves` does, but keep one node of the majority
    (the *bridge*) connected to everyone: it drops nothing and nobody drops it. Symmetric.
    Needs 3 nodes."""
    _need(nodes, 3, "bridge")
    order = _ordered(nodes, rng)
    k = len(order) // 2
    hub = order[k]
    g = _components_graph([order[:k], order[k + 1 :]])
    g.add_edges_from((hub, n) for n in order if n != hub)
    grudge = grudge_from_graph(g)
    return {n: grudge[n] for n in order}


def majorities_ring(
    nodes: Sequence[str], rng: random.Random | None = None
) -> dict[str, frozenset[str]]:
    """Arrange the nodes in a ring (given order, or shuffled by ``rng``); each node sees
    itself and its ``k`` nearest neighbours on each side, ``k = ceil((m-1)/2)`` for a
    majority ``m``, and drops everyone else. So every node sees at least a majority
    (exactly one when ``m`` is odd), no two nodes see the same set, and the grudge is
    symmetric (what a node sees, it can really talk to). Needs 4 nodes: with 3, no
    symmetric grudge gives each node a different majority."""
    _need(nodes, 4, "majorities-ring")
    order = _ordered(nodes, rng)
    n = len(order)
    k = math.ceil((n // 2) / 2)  # (m-1)/2 rounded up, with m = n//2 + 1
    ring = nx.relabel_nodes(nx.circulant_graph(n, range(1, k + 1)), dict(enumerate(order)))
    grudge = grudge_from_graph(ring)
    return {node: grudge[node] for node in order}


def _halves_in_order(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    return halves(nodes)


#: Shape name -> planner (every one takes the RNG; only ``halves`` ignores it and keeps
#: the nodes' order). Names as in Jepsen's ``nemesis.combined`` where they exist.
SHAPES: dict[str, Planner] = {
    "halves": _halves_in_order,
    "random-halves": random_halves,
    "one": isolate_one,
    "minority-third": minority_third,
    "bridge": bridge,
    "majorities-ring": majorities_ring,
}


def plan(shape: str, nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """The grudge of shape ``shape`` (a key of :data:`SHAPES`) over ``nodes``, with random
    choices from ``rng``. :class:`NemesisError` for an unknown shape or too few nodes."""
    planner = SHAPES.get(shape)
    if planner is None:
        raise NemesisError(f"unknown partition shape {shape!r}; choose one of {', '.join(SHAPES)}")
    try:
        return dict(planner(nodes, rng))
    except ValueError as e:
        raise NemesisError(str(e)) from None


# --- netfilter scripts (pure) ----------------------------------------------------------


def _chain(tag: str) -> str:
    return f"{tag.upper()}-PARTITION"


def nft_apply_script(tag: str, drop_from: Iterable[str], lease: float | None = None) -> str:
    """An ``nft -f -`` script that atomically replaces table ``inet <tag>`` with one
    dropping ingress packets from ``drop_from`` (IPv4/IPv6 literals). With ``lease``
    (seconds) each address expires in the kernel after that long. Idempotent."""
    v4, v6 = split_families(drop_from)
    t = f"inet {tag}"
    ttl = f" timeout {math.ceil(lease * 1000)}ms" if lease else ""
    lines = [
        f"add table {t}",
        f"delete table {t}",
        f"add table {t}",
        f"add set {t} blocked4 {{ type ipv4_addr; flags timeout; }}",
        f"add set {t} blocked6 {{ type ipv6_addr; flags timeout; }}",
        f"add chain {t} input {{ type filter hook input priority {NFT_PRIORITY}; policy accept; }}",
        f"add rule {t} input ip saddr @blocked4 drop",
        f"add rule {t} input ip6 saddr @blocked6 drop",
    ]
    for name, addrs in (("blocked4", v4), ("blocked6", v6)):
        if addrs:
            lines.append(f"add element {t} {name} {{ {', '.join(a + ttl for a in addrs)} }}")
    return "\n".join(lines) + "\n"


def _ipt_remove_fn(tag: str) -> str:
    """Shell function ``clew_ipt_remove BIN``: delete every jump to our chain and the chain
    itself, if the chain exists (status 1 from ``-L`` means it does not)."""
    c = _chain(tag)
    w = f"-w {XTABLES_WAIT}"
    return (
        "clew_ipt_remove() {\n"
        '  command -v "$1" >/dev/null 2>&1 || return 0\n'
        f'  rc=0; "$1" {w} -n -L {c} >/dev/null 2>&1 || rc=$?\n'
        '  [ "$rc" -eq 1 ] && return 0\n'
        f'  [ "$rc" -eq 0 ] || {{ echo "$1 -L {c}: status $rc" >&2; return "$rc"; }}\n'
        f'  while "$1" {w} -D INPUT -j {c} 2>/dev/null; do :; done\n'
        f'  "$1" {w} -F {c} && "$1" {w} -X {c}\n'
        "}\n"
    )


def iptables_apply_script(tag: str, drop_from: Iterable[str]) -> str:
    """A shell script making chain ``<TAG>-PARTITION`` (jumped to once from ``INPUT``) drop
    packets from ``drop_from``: ``iptables`` for IPv4 peers, ``ip6tables`` for IPv6; a
    family with no peers has its chain removed. Idempotent (the chain is flushed and
    refilled; the jump is added only if missing)."""
    v4, v6 = split_families(drop_from)
    c = _chain(tag)
    w = f"-w {XTABLES_WAIT}"
    parts = [_ipt_remove_fn(tag)]
    for binary, addrs in (("iptables", v4), ("ip6tables", v6)):
        if addrs:
            parts.append(
                f"{{ {binary} {w} -N {c} 2>/dev/null || {binary} {w} -F {c}; }} && "
                f"{{ {binary} {w} -C INPUT -j {c} 2>/dev/null || "
                f"{binary} {w} -I INPUT 1 -j {c}; }} && "
                f"{binary} {w} -A {c} -s {','.join(addrs)} -j DROP || exit $?\n"
            )
        else:
            parts.append(f"clew_ipt_remove {binary} || exit $?\n")
    return "".join(parts)


def heal_script(tag: str) -> str:
    """A shell script removing every partition object of ``tag`` on a node, whichever
    driver made it: the nft table (if nft works there), and the iptables/ip6tables chain
    with every jump to it. Touches nothing else; succeeds when there is nothing to do."""
    t = f"inet {tag}"
    return (
        _ipt_remove_fn(tag)
        + "clew_ipt_remove iptables || exit $?\n"
        + "clew_ipt_remove ip6tables || exit $?\n"
        + "if command -v nft >/dev/null 2>&1 && "
        + f"nft list table {t} >/dev/null 2>&1; then nft delete table {t} || exit $?; fi\n"
    )


def verify_script(tag: str) -> str:
    """A shell script printing one line per partition object of ``tag`` still on the node
    (nothing when clean)."""
    t = f"inet {tag}"
    c = _chain(tag)
    w = f"-w {XTABLES_WAIT}"
    return (
        "if command -v nft >/dev/null 2>&1 && "
        f"nft list table {t} >/dev/null 2>&1; then echo 'nft table {t} present'; fi\n"
        "for b in iptables ip6tables; do\n"
        '  command -v "$b" >/dev/null 2>&1 || continue\n'
        f'  "$b" {w} -n -L {c} >/dev/null 2>&1 && echo "$b chain {c} present"\n'
        f'  j=$("$b" {w} -S INPUT 2>/dev/null | grep -c -- "-j {c}\\$")\n'
        f'  [ "${{j:-0}}" -gt 0 ] && echo "$b INPUT has $j jump(s) to {c}"\n'
        "done\n"
        "true\n"
    )


def _probe_script() -> str:
    # "nft" if nft works in this node's network namespace, "iptables" if iptables does,
    # "none" otherwise. Both are read-only checks.
    return (
        "if command -v nft >/dev/null 2>&1 && nft list tables >/dev/null 2>&1; "
        "then echo nft; fi\n"
        "if command -v iptables >/dev/null 2>&1 && "
        f"iptables -w {XTABLES_WAIT} -n -L INPUT >/dev/null 2>&1; then echo iptables; fi\n"
        "true\n"
    )


# --- the nemesis -----------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class _NodeState:
    remote: Remote
    driver: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)  # peer -> addresses


class PartitionNemesis:
    """Partitions the network by grudges (see the module docstring).

    Ops: ``{"f": "start-partition", "value": V}`` where ``V`` is ``None`` (the configured
    ``shape``, planned with ``ctx.rng``), a shape name from :data:`SHAPES`, or an explicit
    grudge (node -> nodes, e.g. from a recorded history); a new partition *replaces* the
    current one. Its completion's value is the grudge applied (:func:`grudge_to_json`).
    ``{"f": "stop-partition"}`` heals every node; its value is :data:`HEALED`.

    ``driver``: ``auto`` (nft where it works, else iptables, per node), ``nft`` or
    ``iptables``. ``lease`` (seconds, nft only) makes each partition expire in the kernel.
    ``timeout`` bounds every command on a node.
    """

    fs = frozenset({"start-partition", "stop-partition"})

    def __init__(
        self,
        *,
        shape: str = DEFAULT_SHAPE,
        driver: Literal["auto", "nft", "iptables"] = "auto",
        tag: str = DEFAULT_TAG,
        lease: float | None = None,
        timeout: float = DEFAULT_FAULT_TIMEOUT,
    ) -> None:
        if shape not in SHAPES:
            raise NemesisError(
                f"unknown partition shape {shape!r}; choose one of {', '.join(SHAPES)}"
            )
        if driver not in DRIVERS:
            raise NemesisError(
                f"unknown partition driver {driver!r}; choose one of {', '.join(DRIVERS)}"
            )
        if not TAG_RE.match(tag):
            raise NemesisError(f"partition tag must match {TAG_RE.pattern}, not {tag!r}")
        if lease is not None and lease <= 0:
            raise NemesisError("partition lease must be positive (or None for no lease)")
        if timeout <= 0:
            raise NemesisError("partition command timeout must be positive")
        self.shape = shape
        self.driver = driver
        self.tag = tag
        self.lease = lease
        self.timeout = timeout
        self._nodes: dict[str, _NodeState] = {}
        self._current: dict[str, frozenset[str]] | None = None

    def __repr__(self) -> str:
        return f"<PartitionNemesis shape={self.shape} driver={self.driver} tag={self.tag}>"

    @property
    def drivers(self) -> dict[str, str]:
        """Per node, the driver chosen at setup (``nft`` or ``iptables``)."""
        return {n: s.driver for n, s in self._nodes.items()}

    # ---- lifecycle --------------------------------------------------------------------

    async def setup(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> None:
        """Keep a remote per node of ``ctx``; heal leftovers on every node; choose each
        node's driver; resolve peer addresses that are names (on each node, with
        ``getent``); and check the default shape fits the cluster. :class:`NemesisError`
        listing every node where any of this fails."""
        names = [n.name for n in ctx.nodes]
        missing = [n for n in names if n not in remotes]
        if missing:
            raise NemesisError(f"partition nemesis: no remote for node(s) {', '.join(missing)}")
        plan(self.shape, names, random.Random(0))  # too few nodes for the shape: fail now
        self._nodes = {n: _NodeState(remote=remotes[n]) for n in names}
        await self.heal_all(ctx)
        check_outcomes(
            "partition nemesis setup", await self._on_nodes(lambda s: self._prepare(ctx, s))
        )

    async def _prepare(self, ctx: TestContext, state: _NodeState) -> None:
        probe = await self._run(state, _probe_script())
        usable = probe.split()
        wanted = ["nft", "iptables"] if self.driver == "auto" else [self.driver]
        chosen = next((d for d in wanted if d in usable), None)
        if chosen is None:
            raise NemesisError(
                f"on {state.remote.name}: cannot partition with {' or '.join(wanted)} "
                f"(usable here: {', '.join(usable) or 'neither nft nor iptables'})"
            )
        if self.lease is not None and chosen != "nft":
            raise NemesisError(
                f"on {state.remote.name}: a partition lease needs nft, which does not work here"
            )
        state.driver = chosen
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

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Start or stop a partition (see the class docstring); return the completion."""
        f = op.get("f")
        if f == "start-partition":
            grudge = self._grudge_for(ctx, op.get("value"))
            await self.apply(grudge)
            return completion(op, grudge_to_json(grudge))
        if f == "stop-partition":
            await self.heal_all(ctx)
            return completion(op, HEALED)
        raise unknown_f(self, op)

    def _grudge_for(self, ctx: TestContext, value: Any) -> dict[str, frozenset[str]]:
        names = list(self._nodes) or [n.name for n in ctx.nodes]
        if value is None:
            return plan(self.shape, names, ctx.rng)
        if isinstance(value, str):
            return plan(value, names, ctx.rng)
        return validate_grudge(grudge_from_json(value), names)

    async def apply(self, grudge: Grudge) -> None:
        """Make ``grudge`` the partition in force on every node, at once: nodes with a
        grudge get their rules replaced, the others are healed. :class:`NemesisError`
        naming each node (and command) that failed."""
        self._require_setup()
        full = validate_grudge(grudge, self._nodes)

        async def one(state: _NodeState) -> None:
            peers = full[state.remote.name]
            addrs = [a for p in sorted(peers) for a in state.addresses[p]]
            if not addrs:
                await self._run(state, heal_script(self.tag))
            elif state.driver == "nft":
                await self._run(
                    state, ["nft", "-f", "-"], stdin=nft_apply_script(self.tag, addrs, self.lease)
                )
            else:
                await self._run(state, iptables_apply_script(self.tag, addrs))

        check_outcomes("start-partition", await self._on_nodes(one))
        self._current = full if any(full.values()) else None

    async def renew(self, ctx: TestContext) -> None:
        """Re-apply the partition in force, so that its kernel lease (nft set timeouts)
        starts again; nothing to do without a lease or a partition."""
        if self.lease is not None and self._current is not None:
            await self.apply(self._current)

    def heal_script(self, node_name: str) -> str:
        """A shell script healing every partition of this tag on a node (for the node-side
        guard); the same on every node, state-free and idempotent."""
        return heal_script(self.tag)

    async def heal_all(self, ctx: TestContext) -> None:
        """Remove clew's partition objects (both drivers') from every node in parallel,
        remembering nothing of what was injected. :class:`NemesisError` naming each node
        (and command) that failed; the other nodes are healed regardless."""
        self._require_setup()
        self._current = None
        outcomes = await self._on_nodes(lambda s: self._run(s, heal_script(self.tag)))
        check_outcomes("healing partitions", outcomes)

    async def verify_healed(self, ctx: TestContext) -> dict[str, list[str]]:
        """Per node, the partition objects of this tag still present (empty: clean). A
        node that could not be checked lists ``"cannot verify: <why>"``."""
        self._require_setup()
        outcomes = await self._on_nodes(lambda s: self._run(s, verify_script(self.tag)))
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
            raise NemesisError("the partition nemesis has not been set up (call setup first)")

    async def _on_nodes(self, fn: Callable[[_NodeState], Any]) -> dict[str, Any]:
        states = list(self._nodes.values())
        outcomes = await asyncio.gather(*(fn(s) for s in states), return_exceptions=True)
        return {s.remote.name: o for s, o in zip(states, outcomes, strict=True)}

    async def _run(
        self, state: _NodeState, cmd: str | Sequence[str], *, stdin: str | None = None
    ) -> str:
        async with state.lock:  # one fault command at a time per node
            result = await state.remote.run(cmd, stdin=stdin, timeout=self.timeout, sudo=True)
        return result.stdout


# --- the package -----------------------------------------------------------------------


def partition_package(
    *,
    shape: str = DEFAULT_SHAPE,
    interval: float = DEFAULT_INTERVAL,
    driver: Literal["auto", "nft", "iptables"] = "auto",
    tag: str = DEFAULT_TAG,
    lease: float | None = None,
    timeout: float = DEFAULT_FAULT_TIMEOUT,
) -> NemesisPackage:
    """A :class:`~nemeses.base.NemesisPackage` partitioning by ``shape`` every
    ``interval`` seconds, healed by a final ``stop-partition``; drawn as "partition"."""
    nemesis = PartitionNemesis(shape=shape, driver=driver, tag=tag, lease=lease, timeout=timeout)
    return NemesisPackage(
        name="partition",
        nemesis=nemesis,
        start_op={"f": "start-partition", "value": shape},
        stop_op={"f": "stop-partition", "value": None},
        interval=interval,
        final_ops=({"f": "stop-partition", "value": None},),
        perf=Perf(
            name="partition",
            start=frozenset({"start-partition"}),
            stop=frozenset({"stop-partition"}),
            color="#E9DCA0",
        ),
    )
