"""Every fault kind of a run behind one nemesis: dispatch, the ledger, leases, heal, verify.

:class:`FaultSet` is what the interpreter drives. For each fault op it

1. resolves roles (``primaries`` -> the nodes the database names now);
2. writes an ``intent`` record to the ledger;
3. for a ``start-…`` op, writes a lease with the heal scripts on every node
   (:class:`~nemeses.guard.FaultGuard`) *before* the fault acts;
4. runs the op on its kind's nemesis, recording every command it runs;
5. writes ``applied`` / ``healed`` (or ``error``) with the resolved targets;
6. releases the lease once a ``stop-…`` op healed the fault.

:meth:`FaultSet.keep_alive` renews leases (and kernel-side expiries such as nft set
timeouts, through a nemesis's optional ``renew``) every ``lease / 3`` seconds while the run
goes on. :meth:`FaultSet.heal_all` heals every kind without memory of what was injected;
:meth:`FaultSet.verify_healed` is the final barrier, merging each kind's residue per node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.api import DB, Op, TestContext
from harness.control import recording_commands
from harness.errors import NemesisError
from nemeses import kinds as fault_kinds
from nemeses.abilities import Primaries
from nemeses.base import (
    HealScripted,
    LeaseRefining,
    LeaseScripted,
    Nemesis,
    NemesisPackage,
    Renewable,
)
from nemeses.ledger import FaultLedger, targets_of
from nemeses.targets import symbolic

if TYPE_CHECKING:
    from harness.control import Remote
    from nemeses.guard import FaultGuard

__all__ = ["FaultSet", "kind_of"]

log = logging.getLogger("clew.nemeses")


def kind_of(f: str) -> str:
    """The fault kind of op name ``f`` (``start-pause`` -> ``pause``)."""
    for prefix in ("start-", "stop-"):
        if f.startswith(prefix):
            return f[len(prefix) :]
    return f


class FaultSet:
    """The run's nemesis: every package's nemesis behind one ``invoke`` (see the module
    docstring). ``db`` resolves ``primaries``; ``guard`` (optional) keeps leases on the
    nodes; ``ledger`` (optional) records every op."""

    def __init__(
        self,
        packages: Sequence[NemesisPackage],
        *,
        db: DB | None = None,
        guard: FaultGuard | None = None,
        ledger: FaultLedger | None = None,
        source: str = "random",
    ) -> None:
        self.packages = {p.name: p for p in packages}
        #: The scheduler choosing this run's faults (``replay`` for a replayed run).
        self.source = source
        self._by_f: dict[str, Nemesis] = {}
        for p in packages:
            for f in p.nemesis.fs:
                if f in self._by_f:
                    raise NemesisError(f"two fault kinds handle op {f!r}")
                self._by_f[f] = p.nemesis
        self.fs = frozenset(self._by_f)
        self.db = db
        self.guard = guard
        self.ledger = ledger
        self.active: dict[str, Any] = {}  # kind -> applied value
        self._remotes: dict[str, Remote] = {}

    @property
    def active_names(self) -> str | None:
        """The kinds active now, for progress lines (``None`` when none)."""
        return ", ".join(sorted(self.active)) or None

    async def setup(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> None:
        """Start the guard (which heals leases a crashed run left), then set up every kind
        (each heals its own leftovers and checks it can act on every node)."""
        self._remotes = dict(remotes)
        if self.guard is not None:
            await self.guard.start()
        for p in self.packages.values():
            await p.nemesis.setup(ctx, remotes)

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Carry out one fault op (see the module docstring); return its completion."""
        f = str(op.get("f"))
        nemesis = self._by_f.get(f)
        if nemesis is None:
            raise NemesisError(
                f"no fault kind handles op {f!r}; this run has {', '.join(self.packages)}"
            )
        kind = kind_of(f)
        starting = f.startswith("start-")
        op = await self._resolve_roles(ctx, kind, op)
        led = self.ledger
        seq = led.next_seq() if led else 0
        base = {"seq": seq, "kind": kind, "f": f}
        if led:
            extra: dict[str, Any] = {k: op[k] for k in ("at", "reason", "why") if k in op}
            led.write({**base, "event": "intent", "value": op.get("value"),
                       "source": led.source, **extra})  # fmt: skip
        t0 = time.monotonic()
        with recording_commands() as commands:
            try:
                if starting:
                    await self._hold_lease(ctx, kind, nemesis, op)
                done = await nemesis.invoke(ctx, op)
                value = done.get("value")
                if starting:
                    await self._refine_lease(kind, nemesis, value)
                    self.active[kind] = value
                else:
                    self.active.pop(kind, None)
                    if self.guard is not None:
                        await self.guard.release(kind)
            except Exception as e:
                if led:
                    led.write({**base, "event": "error", "value": op.get("value"),
                               "error": str(e), "commands": list(commands),
                               "seconds": round(time.monotonic() - t0, 3)})  # fmt: skip
                raise
        if led:
            led.write({**base, "event": "applied" if starting else "healed",
                       "phase": "start" if starting else "stop", "value": value,
                       "targets": targets_of(value) if starting else [],
                       "commands": list(commands),
                       "seconds": round(time.monotonic() - t0, 3),
                       **({"reason": op["reason"]} if "reason" in op else {})})  # fmt: skip
        return done

    async def _resolve_roles(self, ctx: TestContext, kind: str, op: Op) -> Op:
        """``op`` with the role ``primaries`` resolved to the nodes the database names now,
        by the kind's own rule (:meth:`nemeses.kinds.FaultKind.resolve_roles`)."""
        value = op.get("value")
        if not symbolic(value):
            return op
        if not isinstance(self.db, Primaries):
            raise NemesisError(
                f"{kind} of the primaries needs the database adapter to provide `primaries`"
            )
        nodes = list(await self.db.primaries(ctx, self._remotes))
        everyone = [n.name for n in ctx.nodes]
        return {**op, "value": fault_kinds.get(kind).resolve_roles(value, nodes, everyone)}

    async def _hold_lease(self, ctx: TestContext, kind: str, nemesis: Nemesis, op: Op) -> None:
        if self.guard is None:
            return
        scripts: Mapping[str, str] = {}
        if isinstance(nemesis, LeaseScripted):
            scripts = await nemesis.lease_scripts(ctx, op)
        elif isinstance(nemesis, HealScripted):
            scripts = {name: nemesis.heal_script(name) for name in self._remotes}
        if scripts:
            await self.guard.hold(kind, scripts)

    async def _refine_lease(self, kind: str, nemesis: Nemesis, value: Any) -> None:
        if self.guard is None or not isinstance(nemesis, LeaseRefining):
            return
        scripts = nemesis.applied_lease_scripts(value)
        if scripts:
            await self.guard.hold(kind, scripts)

    async def keep_alive(self, ctx: TestContext, every: float) -> None:
        """Renew leases every ``every`` seconds until cancelled. A renewal that fails is
        logged and retried next time (the lease then runs out, which heals: fail-safe)."""
        while True:
            await asyncio.sleep(every)
            try:
                if self.guard is not None:
                    await self.guard.renew()
                for kind in list(self.active):
                    nemesis = self.packages[kind].nemesis
                    if isinstance(nemesis, Renewable):
                        await nemesis.renew(ctx)
            except Exception as e:
                log.warning("renewing fault leases failed: %s", e)

    async def heal_all(self, ctx: TestContext, *, reason: str = "heal-all") -> None:
        """Heal every kind on every node, without memory of what was injected; then
        release every lease. One :class:`NemesisError` listing every kind that failed (the
        others are healed regardless)."""
        errors: list[str] = []
        # In each kind's heal priority (nemeses.kinds): network and clock first, so that
        # restarted processes come back to a sane world; paused processes before killed
        # ones are waited for (a paused member has no vote).
        order = sorted(self.packages.values(), key=lambda p: fault_kinds.heal_rank(p.name))
        for p in order:
            led = self.ledger
            seq = led.next_seq() if led else 0
            t0 = time.monotonic()
            with recording_commands() as commands:
                try:
                    await p.nemesis.heal_all(ctx)
                    error = None
                except Exception as e:
                    error = str(e)
                    errors.append(f"{p.name}: {e}")
            self.active.pop(p.name, None)
            if led:
                rec = {"seq": seq, "kind": p.name, "f": f"heal-{p.name}", "event": "healed",
                       "phase": "stop", "reason": reason, "commands": list(commands),
                       "seconds": round(time.monotonic() - t0, 3)}  # fmt: skip
                if error:
                    rec = {**rec, "event": "error", "error": error}
                led.write(rec)
        if self.guard is not None:
            with contextlib.suppress(Exception):
                for lease_id in self.guard.held:
                    await self.guard.release(lease_id)
        if errors:
            raise NemesisError("healing faults failed:\n  " + "\n  ".join(errors))

    async def verify_healed(self, ctx: TestContext) -> dict[str, list[str]]:
        """Per node, what any kind left behind (``"<kind>: <residue>"``); empty lists
        everywhere means clean. Recorded on the ledger as a ``verified`` record."""
        merged: dict[str, list[str]] = {name: [] for name in self._remotes}
        for p in self.packages.values():
            try:
                residue = await p.nemesis.verify_healed(ctx)
            except Exception as e:
                residue = {name: [f"cannot verify: {e}"] for name in self._remotes}
            for node, lines in residue.items():
                merged.setdefault(node, []).extend(f"{p.name}: {line}" for line in lines)
        if self.ledger:
            self.ledger.write({"seq": self.ledger.next_seq(), "event": "verified",
                               "clean": not any(merged.values()), "residue": merged})  # fmt: skip
        return merged

    async def teardown(self, ctx: TestContext) -> None:
        """Heal everything, then stop the node-side guards."""
        try:
            await self.heal_all(ctx, reason="teardown")
        finally:
            if self.guard is not None:
                await self.guard.stop()
