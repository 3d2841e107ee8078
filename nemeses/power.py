"""The power-off fault: a node's machine switched off hard, then started again from its disk.

Unlike ``kill`` (SIGKILL of the database process, whose writes the node's kernel still
holds), a power-off loses the node's page cache: every write the database had not made
durable with ``fsync`` is gone when the node comes back. Ops::

    {"f": "start-power-off", "value": V}   V as for kill: None, a target spec, a list of
                                           nodes, or {"targets": spec, "nodes": [...]}
    {"f": "stop-power-off", "value": None} power every node on again

The provider does the switching (:class:`PowerSwitch`; the qemu provider has it:
:mod:`clusters.qemu_power`). The heal is state-free and guaranteed to end with every node
up: ``stop-power-off`` powers on every node that is off (a running one is left alone),
waits until each answers over SSH, then, when the DB adapter can (:class:`Killable`,
:class:`Healthy`), starts the database on every node and waits until it serves. SSH
connections to a powered-off node reconnect by themselves (:mod:`harness.control`).

A switched-off node cannot heal itself, so the lease of a power-off (``lease``: the run's
``--fault-lease``) is held on the controller's host: the provider powers the node on by
itself once the lease goes that long without a renewal (:meth:`PowerSwitch.power_off`),
and the nemesis renews it with the fault guard's other leases (:meth:`PowerNemesis.renew`)
while the run lives. If the controller dies, the node comes back on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from harness.api import DB, Op, TestContext
from harness.errors import NemesisError, SSHError
from nemeses.abilities import Healthy, Killable
from nemeses.base import (
    DEFAULT_INTERVAL,
    NemesisPackage,
    check_outcomes,
    completion,
    flip_package,
    residue_report,
    unknown_f,
)
from nemeses.targets import resolve_targets, target_nodes

if TYPE_CHECKING:
    from clusters.base import Cluster
    from harness.control import Remote

__all__ = [
    "DEFAULT_POWER_ON_TIMEOUT",
    "HEALED",
    "PowerNemesis",
    "PowerSwitch",
    "power_package",
]

#: Seconds a node may take to answer over SSH after a power-on (a cold boot of a VM under
#: software emulation took 86 s here at load 11).
DEFAULT_POWER_ON_TIMEOUT = 600.0
#: Seconds the database may take to serve again on each node after the heal.
DEFAULT_READY_TIMEOUT = 120.0
#: The value of a ``stop-power-off`` completion.
HEALED = "powered-on"


@runtime_checkable
class PowerSwitch(Protocol):
    """A provider that can switch its nodes off hard and on again."""

    def power_off(self, cluster: Cluster, node: str, *, lease: float | None = None) -> bool:
        """Cut ``node``'s power at once (no shutdown, its page cache lost); whether it was
        on. With ``lease``, the provider powers it on by itself once ``lease`` seconds
        pass without :meth:`renew_power` (or :meth:`power_on`)."""
        ...

    def renew_power(self, cluster: Cluster, node: str) -> None:
        """Push the lease of ``node``'s power-off forward (nothing if it has none)."""
        ...

    def power_on(self, cluster: Cluster, node: str, *, within: float, wait: bool = True) -> bool:
        """Start ``node`` from its disk unless it is on, and return once it answers over
        SSH (raise if not within ``within`` seconds); whether it had to be started. With
        ``wait=False`` a node that was on already is not waited for (its caller reaches
        it another way)."""
        ...


class PowerNemesis:
    """Powers target nodes off and every node on again (see the module docstring)."""

    fs = frozenset({"start-power-off", "stop-power-off"})

    def __init__(
        self,
        db: DB | None = None,
        *,
        power_on_timeout: float = DEFAULT_POWER_ON_TIMEOUT,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        lease: float | None = None,
    ) -> None:
        self.db = db
        #: Seconds a power-off outlives the last renewal before the provider powers the
        #: node on itself (None: no lease, the node stays off until a heal).
        self.lease = lease
        self.power_on_timeout = power_on_timeout
        self.ready_timeout = ready_timeout
        self._remotes: dict[str, Remote] = {}
        self._switch: PowerSwitch | None = None
        self._cluster: Cluster | None = None

    def __repr__(self) -> str:
        return f"<PowerNemesis via {type(self._switch).__name__ if self._switch else '?'}>"

    async def setup(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> None:
        """Keep a remote per node and the cluster's provider, which must be a
        :class:`PowerSwitch`; power on any node a crashed run left off."""
        from clusters import get_provider

        cluster = ctx.cluster
        if cluster is None:
            raise NemesisError("power-off faults need a cluster of a provider (none given)")
        provider = get_provider(cluster.provider)
        if not isinstance(provider, PowerSwitch):
            raise NemesisError(
                f"power-off faults need a provider that can switch nodes off and on; the "
                f"{cluster.provider} provider cannot (use --provider qemu)"
            )
        missing = [n.name for n in ctx.nodes if n.name not in remotes]
        if missing:
            raise NemesisError(f"power-off nemesis: no remote for node(s) {', '.join(missing)}")
        self._remotes = {n.name: remotes[n.name] for n in ctx.nodes}
        self._switch, self._cluster = provider, cluster
        # The remotes are connected: a node that is on answers already, and is not probed.
        await self._power_on_all(wait=False)

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Power the targets off (``start-power-off``) or heal (``stop-power-off``)."""
        f = op.get("f")
        if f == "start-power-off":
            spec, nodes = self._targets(ctx, op.get("value"))
            switch, cluster = self._ready()
            outcomes = await self._gather(
                nodes,
                lambda n: asyncio.to_thread(switch.power_off, cluster, n, lease=self.lease),
            )
            check_outcomes("power-off", outcomes)
            return completion(op, {"targets": spec, "nodes": nodes})
        if f == "stop-power-off":
            await self.heal_all(ctx)
            return completion(op, HEALED)
        raise unknown_f(self, op)

    async def heal_all(self, ctx: TestContext) -> None:
        """Power on every node that is off, wait until each answers, then start the
        database everywhere and wait until it serves (when the adapter can)."""
        await self._power_on_all()
        reached = await self._gather(list(self._remotes), self._reach)
        check_outcomes("reaching powered-on nodes", reached)
        db = self.db
        if isinstance(db, Killable):

            async def start(name: str) -> None:
                await db.start(ctx, self._node(ctx, name), self._remotes[name])
                if isinstance(db, Healthy):
                    await db.wait_healthy(
                        ctx, self._node(ctx, name), self._remotes[name], within=self.ready_timeout
                    )

            outcomes = await self._gather(list(self._remotes), start)
            check_outcomes(f"restarting {db.name} after power-on", outcomes)

    async def renew(self, ctx: TestContext) -> None:
        """Renew the lease of every node's power-off (a node that is on has none)."""
        switch, cluster = self._ready()
        outcomes = await self._gather(
            list(self._remotes), lambda n: asyncio.to_thread(switch.renew_power, cluster, n)
        )
        check_outcomes("renewing power-off leases", outcomes)

    async def verify_healed(self, ctx: TestContext) -> dict[str, list[str]]:
        """Per node: ``"cannot verify: …"`` when it does not answer over SSH."""

        async def one(name: str) -> str:
            await self._remotes[name].run("true", timeout=60)
            return ""

        return residue_report(await self._gather(list(self._remotes), one))

    async def teardown(self, ctx: TestContext) -> None:
        """Heal (as :meth:`heal_all`); harmless if setup never ran."""
        if self._switch is not None:
            await self.heal_all(ctx)

    # ---- helpers ----------------------------------------------------------------------

    def _ready(self) -> tuple[PowerSwitch, Cluster]:
        if self._switch is None or self._cluster is None:
            raise NemesisError("power-off nemesis: setup has not run")
        return self._switch, self._cluster

    async def _reach(self, name: str) -> None:
        """Run ``true`` on ``name``: a connection that died with the node fails once, then
        the remote reconnects."""
        for attempt in range(3):
            try:
                await self._remotes[name].run("true", timeout=60)
                return
            except SSHError:
                if attempt == 2:
                    raise

    async def _power_on_all(self, *, wait: bool = True) -> None:
        switch, cluster = self._ready()
        outcomes = await self._gather(
            list(self._remotes),
            lambda n: asyncio.to_thread(
                switch.power_on, cluster, n, within=self.power_on_timeout, wait=wait
            ),
        )
        check_outcomes("power-on", outcomes)

    @staticmethod
    def _targets(ctx: TestContext, value: Any) -> tuple[str, list[str]]:
        from nemeses.process import plan_targets

        names = [n.name for n in ctx.nodes]
        if value is None:
            planned = plan_targets(names, ctx.rng, primaries=False)
            return planned["targets"], planned["nodes"]
        if isinstance(value, str):
            return value, resolve_targets(value, names, ctx.rng)
        spec = value.get("targets", "nodes") if isinstance(value, dict) else "nodes"
        return str(spec), target_nodes(value, names)

    @staticmethod
    def _node(ctx: TestContext, name: str) -> Any:
        return next(n for n in ctx.nodes if n.name == name)

    @staticmethod
    async def _gather(nodes: list[str], fn: Any) -> dict[str, object]:
        outcomes = await asyncio.gather(*(fn(n) for n in nodes), return_exceptions=True)
        return dict(zip(nodes, outcomes, strict=True))


def power_package(
    db: DB | None = None, *, interval: float = DEFAULT_INTERVAL, lease: float | None = None
) -> NemesisPackage:
    """Power random targets off every ``interval`` seconds; every node on at the end. With
    ``lease``, a node whose power-off goes ``lease`` seconds unrenewed is powered on."""
    return flip_package(
        "power-off", PowerNemesis(db, lease=lease), interval=interval, color="#8B5A2B"
    )
