"""What every nemesis shares: the :class:`Nemesis` protocol and :class:`NemesisPackage`.

A *nemesis* turns fault operations into faults on the nodes, and heals them. Its ops are
plain dicts like client ops (``{"f": "start-partition", "value": None}``); ``invoke``
returns the *completion*: the op with ``"type": "info"`` (Jepsen's convention for nemesis
ops) and ``"value"`` set to what was actually applied (a grudge, ``"network-healed"``),
so the history records the fault exactly, ready for replay.

The contract every fault kind keeps (see docs/faults.md):

* ``setup`` heals leftovers first (a crashed earlier run), then checks that the fault can
  be injected on every node, so an impossible request fails before the run.
* ``heal_all`` needs **no memory** of what was injected: it removes everything carrying
  clew's tag on every node, in parallel, is idempotent, harmless when nothing was
  injected, and never touches anyone else's rules, processes or files.
* ``verify_healed`` reports, per node, the residue it finds (empty lists: clean). A node
  that cannot be checked reports why, so "unverified" is never mistaken for "clean".
* ``teardown`` heals.
* Every command has a timeout; a failure names the node and the command.

A :class:`NemesisPackage` is a nemesis plus, *as data*, how a runner should schedule it:
its start and stop ops, the interval between them, the ops that heal it at the end and
how to draw it on plots. The runner composes packages with its generator library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from harness.api import Op, TestContext
from harness.errors import NemesisError

if TYPE_CHECKING:
    from clusters.base import Cluster
    from harness.control import Remote

__all__ = [
    "DEFAULT_FAULT_LEASE",
    "DEFAULT_FAULT_TIMEOUT",
    "DEFAULT_INTERVAL",
    "HealScripted",
    "LeaseRefining",
    "LeaseScripted",
    "Nemesis",
    "NemesisPackage",
    "OpSpec",
    "Perf",
    "Renewable",
    "check_outcomes",
    "completion",
    "fault_lease_for",
    "fault_timeout_for",
    "flip_package",
    "residue_report",
    "resolve_op",
    "unknown_f",
]

#: Seconds any single fault command on a node may take before it is abandoned (and the
#: failure reported naming node and command).
DEFAULT_FAULT_TIMEOUT: float = 15.0


#: Seconds a fault outlives a controller that stopped renewing its lease, before the
#: nodes heal it themselves.
DEFAULT_FAULT_LEASE: float = 10.0


def fault_lease_for(cluster: Cluster | None) -> float:
    """The fault lease (seconds) on ``cluster``'s nodes when the run does not say
    (``--fault-lease``): the provider's own default (``extra["fault_lease"]`` of its
    cluster; the qemu provider raises it for emulated VMs, whose renewals over SSH can
    take longer than 10 s), else :data:`DEFAULT_FAULT_LEASE`."""
    return _provider_seconds(cluster, "fault_lease", DEFAULT_FAULT_LEASE)


def _provider_seconds(cluster: Cluster | None, key: str, default: float) -> float:
    """``cluster.extra[key]`` as positive seconds, else ``default``."""
    extra = cluster.extra if cluster is not None else {}
    try:
        value = float(extra.get(key, default))
    except (TypeError, ValueError):
        return default
    return value if value > 0 else default


def fault_timeout_for(cluster: Cluster | None) -> float:
    """The seconds a fault command may take on ``cluster``'s nodes when the run does not
    say (``--fault-timeout``): the provider's own default (``extra["fault_timeout"]`` of
    its cluster; the qemu provider raises it for emulated VMs), else
    :data:`DEFAULT_FAULT_TIMEOUT`."""
    return _provider_seconds(cluster, "fault_timeout", DEFAULT_FAULT_TIMEOUT)

#: Seconds between a package's start and stop ops (Jepsen's default).
DEFAULT_INTERVAL: float = 10.0

#: An op, or a function making a fresh op for a test (e.g. choosing a shape at random).
OpSpec = Op | Callable[[TestContext], Op]


@runtime_checkable
class Nemesis(Protocol):
    """Injects and heals one kind of fault (see the module docstring for the contract)."""

    #: The op names (``"f"`` values) this nemesis handles.
    fs: frozenset[str]

    async def setup(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> None:
        """Keep ``remotes`` (node name -> open Remote), heal leftovers of earlier runs on
        every node, and check the fault can be injected everywhere (:class:`NemesisError`
        listing the nodes that cannot)."""
        ...

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Carry out ``op`` (its ``"f"`` is one of :attr:`fs`) and return its completion:
        the op with ``"type": "info"`` and ``"value"`` = what was applied."""
        ...

    async def heal_all(self, ctx: TestContext) -> None:
        """Remove every fault of this kind from every node, without needing to know what
        was injected. Idempotent; :class:`NemesisError` naming each node that failed."""
        ...

    async def verify_healed(self, ctx: TestContext) -> dict[str, list[str]]:
        """Per node, the residue of this fault kind found there (empty list: clean)."""
        ...

    async def teardown(self, ctx: TestContext) -> None:
        """Heal everything (like :meth:`heal_all`) and release resources."""
        ...


# -- what a nemesis may offer besides the protocol (its optional abilities) ---------------
# The fault set checks these with isinstance and calls them typed; see nemeses.faultset.


@runtime_checkable
class LeaseScripted(Protocol):
    """A nemesis that gives the node-side guard, before a fault acts, a script per node that
    heals exactly what the op is about to inject."""

    async def lease_scripts(self, ctx: TestContext, op: Op) -> Mapping[str, str]:
        """Node name -> shell script healing ``op``'s fault there (``{}``: none can)."""
        ...


@runtime_checkable
class HealScripted(Protocol):
    """A nemesis whose whole kind is healed on a node by one script (the guard's lease)."""

    def heal_script(self, node_name: str) -> str:
        """A shell script that heals every fault of this kind on ``node_name``."""
        ...


@runtime_checkable
class LeaseRefining(Protocol):
    """A nemesis that, once a fault is applied, can narrow the guard's heal scripts to
    what was actually done (e.g. exactly the PIDs stopped)."""

    def applied_lease_scripts(self, value: Any) -> Mapping[str, str]:
        """Node name -> the exact heal script for the applied ``value`` (``{}``: keep)."""
        ...


@runtime_checkable
class Renewable(Protocol):
    """A nemesis whose faults expire on the nodes unless renewed (nft set timeouts)."""

    async def renew(self, ctx: TestContext) -> None:
        """Push the expiry of every active fault of this kind forward."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Perf:
    """How plots draw a fault: its name, the ops that open and close its window, and the
    window's colour (any CSS/matplotlib colour)."""

    name: str
    start: frozenset[str]
    stop: frozenset[str]
    color: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NemesisPackage:
    """A nemesis with its schedule as data (Jepsen's ``nemesis-package``).

    The runner alternates ``start_op`` and ``stop_op`` every ``interval`` seconds (Jepsen's
    ``flip-flop``), runs ``final_ops`` once the workload is over so that nothing stays
    injected, and shades ``perf`` windows on plots. ``start_op``/``stop_op`` are op dicts
    or functions of the test context making one; use :meth:`start`/:meth:`stop` to get a
    fresh op either way.
    """

    name: str
    nemesis: Nemesis
    start_op: OpSpec
    stop_op: OpSpec
    perf: Perf
    interval: float = DEFAULT_INTERVAL
    final_ops: tuple[Op, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise NemesisError(f"package {self.name!r}: interval must be positive")
        for spec in (self.start_op, self.stop_op, *self.final_ops):
            if isinstance(spec, Mapping) and spec.get("f") not in self.nemesis.fs:
                raise NemesisError(
                    f"package {self.name!r}: op {spec.get('f')!r} is not handled by its "
                    f"nemesis (it handles {', '.join(sorted(self.nemesis.fs))})"
                )

    def start(self, ctx: TestContext) -> Op:
        """A fresh start op for ``ctx``."""
        return resolve_op(self.start_op, ctx)

    def stop(self, ctx: TestContext) -> Op:
        """A fresh stop op for ``ctx``."""
        return resolve_op(self.stop_op, ctx)

    def finals(self) -> list[Op]:
        """Fresh copies of the final (healing) ops."""
        return [dict(op) for op in self.final_ops]


def resolve_op(spec: OpSpec, ctx: TestContext) -> Op:
    """The op ``spec`` stands for: a copy of it if it is a dict, else ``spec(ctx)``."""
    op = spec(ctx) if callable(spec) else spec
    return dict(op)


def completion(op: Op, value: Any) -> Op:
    """The completion of nemesis op ``op``: a copy with ``type`` ``info`` and ``value``."""
    done = dict(op)
    done["type"] = "info"
    done["value"] = value
    return done


def unknown_f(nemesis: Nemesis, op: Op) -> NemesisError:
    """The error for an op whose ``f`` ``nemesis`` does not handle."""
    return NemesisError(
        f"{type(nemesis).__name__} cannot handle op f={op.get('f')!r}; "
        f"it handles {', '.join(sorted(nemesis.fs))}"
    )


def check_outcomes(what: str, outcomes: Mapping[str, object]) -> None:
    """Raise one :class:`NemesisError` listing every node whose outcome in ``outcomes``
    (node name -> result or exception, as :meth:`Remotes.on_nodes` returns) is an
    exception, each with its message (which names the command). Cancellation and
    interrupts are re-raised as they are. Returns quietly if no node failed."""
    failed = {n: o for n, o in outcomes.items() if isinstance(o, BaseException)}
    for e in failed.values():
        if not isinstance(e, Exception):
            raise e
    if failed:
        lines = "\n".join(f"  {n}: {e}" for n, e in sorted(failed.items()))
        raise NemesisError(f"{what} failed on {len(failed)} of {len(outcomes)} nodes:\n{lines}")


def residue_report(outcomes: Mapping[str, object]) -> dict[str, list[str]]:
    """A ``verify_healed`` answer from per-node outcomes (node -> residue lines, a command's
    stdout with one residue per line, or the exception that stopped the check, which
    becomes ``"cannot verify: <why>"``). Cancellation and interrupts are re-raised."""
    report: dict[str, list[str]] = {}
    for name, out in outcomes.items():
        if isinstance(out, BaseException):
            if not isinstance(out, Exception):
                raise out
            report[name] = [f"cannot verify: {out}"]
        elif isinstance(out, str):
            report[name] = [line for line in out.splitlines() if line.strip()]
        else:
            report[name] = list(out)  # type: ignore[call-overload]
    return report


def flip_package(
    name: str,
    nemesis: Nemesis,
    *,
    interval: float,
    color: str,
    start_value: Any = None,
) -> NemesisPackage:
    """The package of a fault kind with ops ``start-<name>`` (value ``start_value``) and
    ``stop-<name>``, healed at the end by a final ``stop-<name>``, drawn as ``name``."""
    start, stop = f"start-{name}", f"stop-{name}"
    return NemesisPackage(
        name=name,
        nemesis=nemesis,
        start_op={"f": start, "value": start_value},
        stop_op={"f": stop, "value": None},
        interval=interval,
        final_ops=({"f": stop, "value": None},),
        perf=Perf(name=name, start=frozenset({start}), stop=frozenset({stop}), color=color),
    )
