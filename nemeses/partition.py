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
import random
from collections.abc import Callable, Mapping, Sequence
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
from nemeses.netaddr import TAG_RE, peer_addresses
from nemeses.partition_scripts import (
    NFT_PRIORITY,
    XTABLES_WAIT,
    heal_script,
    iptables_apply_script,
    nft_apply_script,
    probe_script,
    verify_script,
)
from nemeses.topology import (
    SHAPES,
    Grudge,
    Planner,
    bridge,
    complete_grudge,
    connected,
    graph_of,
    grudge_from_graph,
    grudge_from_json,
    grudge_to_json,
    halves,
    isolate_one,
    majorities_ring,
    minority_third,
    plan,
    random_halves,
    validate_grudge,
)

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

#: The default tag: nft table ``inet clew``, iptables chain ``CLEW-PARTITION``.
DEFAULT_TAG = "clew"
#: The shape ``start-partition`` uses when its value is ``None``.
DEFAULT_SHAPE = "random-halves"
#: The completion value of ``stop-partition``.
HEALED = "network-healed"
#: Injection drivers: per node, ``auto`` picks nft if it works there, else iptables.
DRIVERS = ("auto", "nft", "iptables")


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
        probe = await self._run(state, probe_script())
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
        state.addresses.update(
            await peer_addresses(state.remote.name, peers, lambda s: self._run(state, s))
        )

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
        sides = self.node_scripts(full)

        async def one(state: _NodeState) -> None:
            side = sides.get(state.remote.name)
            if side is None:
                await self._run(state, heal_script(self.tag))
            else:
                await self._run(state, side[0], stdin=side[1])

        check_outcomes("start-partition", await self._on_nodes(one))
        self._current = full if any(full.values()) else None

    def node_scripts(
        self, grudge: Grudge, *, lease: float | Literal["default"] | None = "default"
    ) -> dict[str, tuple[str, str | None]]:
        """Per node that holds a grudge in ``grudge``, the shell script (and its stdin)
        that puts its side of the partition in force there, replacing its earlier side:
        what :meth:`apply` runs (nodes left out are healed by it), and what a node agent
        strikes (:mod:`nemeses.agent`). ``lease``: the nft elements' kernel expiry
        (default this nemesis's). Needs :meth:`setup` (each node's driver and peers)."""
        self._require_setup()
        full = validate_grudge(grudge, self._nodes)
        ttl = self.lease if lease == "default" else lease
        out: dict[str, tuple[str, str | None]] = {}
        for name, state in self._nodes.items():
            addrs = [a for p in sorted(full[name]) for a in state.addresses[p]]
            if not addrs:
                continue
            if state.driver == "nft":
                out[name] = ("nft -f -", nft_apply_script(self.tag, addrs, ttl))
            else:
                out[name] = (iptables_apply_script(self.tag, addrs), None)
        return out

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
        return residue_report(outcomes)

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
    return flip_package("partition", nemesis, interval=interval, color="#E9DCA0", start_value=shape)
