"""The fault space as data: one :class:`FaultKind` per kind of fault, in one registry.

A fault kind is one object that says everything clew needs to know about it:

* its **name** (``--faults NAME``), a one-line summary and how it heals (``--help``, the
  tables in ``docs/faults.md`` and ``clew doctor`` are made from these);
* its **parameter space** (:class:`ParamSpace`): which targets it may strike (``one``,
  ``minority``, ``majority``, ``all``, ``primaries``, specific ``nodes``, or shapes), for how
  long, and with what magnitudes (loss rate, clock offset, ...), so that a scheduler can
  enumerate what it may choose;
* its **planner**: ``plan(nodes, rng, roles) -> value``, one random point of that space as
  the ``start-NAME`` op's value (pure: same seed, same value);
* its **package factory**: the :class:`~nemeses.base.NemesisPackage` (nemesis plus its
  start/stop ops) for a run, from :class:`PackageArgs`;
* what it **needs**: provider capabilities (any one of each group) and DB abilities
  (:mod:`nemeses.abilities`), checked before the run by :func:`problems`, whose messages
  say what would work; plus an optional extra ``check`` (e.g. a clock mechanism);
* its **heal priority** (lower heals first at the end of a run);
* its **role resolution**: how a value naming ``primaries`` becomes concrete at strike time.

Built-in kinds live one per module in this package (``nemeses/kinds/<name>.py``, each
defining ``KINDS``) and are found by listing the package, so adding a kind is adding one
file. A suite contributes its own with ``Suite(fault_kinds=(...))`` or a module-level
``FAULT_KINDS`` in its file; :func:`register` adds any kind at run time.
"""

from __future__ import annotations

import importlib
import pkgutil
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, NemesisError
from nemeses.abilities import ability_name

if TYPE_CHECKING:
    from clusters.base import Cluster
    from nemeses.base import NemesisPackage

__all__ = [
    "FaultKind",
    "PackageArgs",
    "ParamSpace",
    "Planner",
    "aim_at_targets",
    "all_kinds",
    "get",
    "heal_rank",
    "help_text",
    "markdown_table",
    "names",
    "problems",
    "register",
    "register_all",
    "resolve_primaries",
    "too_few_nodes",
    "unregister",
]

#: ``plan(nodes, rng, roles) -> op value``; ``roles`` allows the symbolic ``primaries``.
Planner = Callable[[Sequence[str], random.Random, bool], Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamSpace:
    """What a kind's planner may choose, declared as data.

    ``targets``: target specs it may strike (:data:`nemeses.targets.TARGET_SPECS`, ``nodes``
    for an explicit node list, or shape names for partitions). ``duration``: seconds a
    strike holds, ``None`` meaning "the run's ``--interval``". ``magnitudes``: name ->
    (low, high, unit) of every numeric parameter it draws (loss rate, clock offset, ...).
    ``variants``: named sub-kinds it draws among (``bump``/``strobe``, ``loss``/``delay``).
    """

    targets: tuple[str, ...]
    duration: tuple[float, float] | None = None
    magnitudes: Mapping[str, tuple[float, float, str]] = field(default_factory=dict)
    variants: tuple[str, ...] = ()

    def describe(self) -> str:
        """The space in one line, for tables and ``--help``."""
        parts = [f"targets {'/'.join(self.targets)}"]
        if self.variants:
            parts.append(f"variants {'/'.join(self.variants)}")
        for name, (lo, hi, unit) in self.magnitudes.items():
            parts.append(f"{name} {lo:g}–{hi:g}{(' ' + unit) if unit else ''}")
        if self.duration is not None:
            parts.append(f"lasts {self.duration[0]:g}–{self.duration[1]:g} s")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageArgs:
    """What a kind's package factory gets: the DB adapter, the seconds between a strike
    and its heal (``interval``), the fault lease, the seconds one fault command on a node
    may take (``timeout``: ``--fault-timeout``, else the provider's default), and the
    spec's options."""

    db: Any
    interval: float
    lease: float
    options: Mapping[str, Any] = field(default_factory=dict)
    timeout: float = 15.0


def _no_check(cluster: Cluster, db: Any) -> None:
    return None


def _no_provider_check(provider: str) -> None:
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultKind:
    """One kind of fault (see the module docstring)."""

    name: str
    summary: str
    heals_by: str
    space: ParamSpace
    plan: Planner
    package: Callable[[PackageArgs], NemesisPackage]
    #: Provider capabilities needed: each inner tuple is "any one of these".
    provider_needs: tuple[tuple[str, ...], ...] = ()
    #: DB abilities needed (Protocols of :mod:`nemeses.abilities`).
    db_needs: tuple[type, ...] = ()
    #: An extra check before the run, raising :class:`NemesisError` saying why not.
    check: Callable[[Cluster, Any], None] = _no_check
    #: A check from the provider's name alone (before any cluster comes up), raising
    #: :class:`NemesisError` saying why not; :attr:`check` runs it again on the cluster.
    check_provider: Callable[[str], None] = _no_provider_check
    #: The fewest nodes a run with this kind needs (a partition cuts nodes apart: 2),
    #: checked from ``--nodes`` before any cluster comes up (:func:`too_few_nodes`).
    min_nodes: int = 1
    #: Lower heals first at the end of a run (network and clocks before processes).
    heal_priority: int = 0
    #: Where ``--faults`` and the docs list it (then by name).
    order: int = 100
    #: ``resolve(value, primaries, all_nodes)``: a value naming ``primaries`` made concrete.
    resolve: Callable[[Any, list[str], list[str]], Any] | None = None
    #: ``aim(target, nodes, rng)``: a value striking ``target`` (one of ``space.targets``),
    #: for schedulers that choose the target themselves; ``None``: only ``plan`` draws.
    aim: Callable[[str, Sequence[str], random.Random], Any] | None = None
    #: The suite options (``-o NAME=VALUE``) its package reads: name -> what it sets.
    options: Mapping[str, str] = field(default_factory=dict)

    def actions(self, roles: bool) -> list[str | None]:
        """The targets a scheduler may choose for this kind (``[None]``: it cannot choose,
        the planner draws); ``primaries`` only when the database can name them."""
        if self.aim is None:
            return [None]
        return [t for t in self.space.targets if roles or t != "primaries"]

    def value_for(
        self, target: str | None, nodes: Sequence[str], rng: random.Random, roles: bool
    ) -> Any:
        """The ``start-…`` op value striking ``target`` (:meth:`actions`), the rest drawn
        from ``rng``; ``None`` or a kind without ``aim``: a point drawn by the planner."""
        if target is None or self.aim is None:
            return self.plan(nodes, rng, roles)
        if target not in self.space.targets:
            raise ConfigError(
                f"{self.name} faults strike {', '.join(self.space.targets)}, not {target!r}"
            )
        return self.aim(target, nodes, rng)

    def resolve_roles(self, value: Any, primaries: list[str], nodes: list[str]) -> Any:
        """``value`` with the role ``primaries`` replaced by ``primaries`` (the nodes the
        database names now) — by this kind's ``resolve``, else as a target dict."""
        if self.resolve is not None:
            return self.resolve(value, primaries, nodes)
        return resolve_primaries(value, primaries, nodes)


def aim_at_targets(target: str, nodes: Sequence[str], rng: random.Random) -> Any:
    """The usual value for a target spec: ``{"targets": spec, "nodes": [...]}`` (the
    nodes drawn with ``rng``: a random non-empty subset for ``nodes``), or
    ``{"targets": "primaries"}`` (resolved during the run)."""
    from nemeses.targets import resolve_targets

    if target == "primaries":
        return {"targets": "primaries"}
    if target == "nodes":
        return {
            "targets": "nodes",
            "nodes": sorted(rng.sample(list(nodes), rng.randint(1, len(nodes)))),
        }
    return {"targets": target, "nodes": resolve_targets(target, nodes, rng)}


def resolve_primaries(value: Any, primaries: list[str], nodes: list[str]) -> Any:
    """The default role resolution: ``{"targets": "primaries", "nodes": [...]}``."""
    return {"targets": "primaries", "nodes": list(primaries)}


_REGISTRY: dict[str, FaultKind] = {}
_BUILTIN: set[str] = set()
_discovered = False


def _discover() -> None:
    """Import every module of this package once and register its ``KINDS``."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for kind in module.__dict__.get("KINDS", ()):
            register(kind)
            _BUILTIN.add(kind.name)


def register(kind: FaultKind, *, replace: bool = False) -> FaultKind:
    """Add ``kind`` to the registry (a suite's own kinds, a test's); :class:`ConfigError`
    if another kind has its name (unless ``replace``) or the name is not a plain word."""
    if not isinstance(kind, FaultKind):
        raise ConfigError(f"not a FaultKind: {kind!r}")
    if not kind.name or not all(c.isalnum() or c == "-" for c in kind.name):
        raise ConfigError(f"fault kind name {kind.name!r}: use letters, digits and '-'")
    old = _REGISTRY.get(kind.name)
    if old is not None and old is not kind and not replace:
        raise ConfigError(f"two fault kinds are called {kind.name!r}")
    _REGISTRY[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove the contributed kind ``name`` (built-in kinds stay); harmless if absent."""
    if name not in _BUILTIN:
        _REGISTRY.pop(name, None)


def all_kinds() -> list[FaultKind]:
    """Every registered kind, in listing order."""
    _discover()
    return sorted(_REGISTRY.values(), key=lambda k: (k.order, k.name))


def names() -> tuple[str, ...]:
    """The names ``--faults`` accepts, in listing order."""
    return tuple(k.name for k in all_kinds())


def get(name: str) -> FaultKind:
    """The kind called ``name``; :class:`ConfigError` listing the known ones."""
    _discover()
    kind = _REGISTRY.get(name)
    if kind is None:
        raise ConfigError(f"unknown fault kind {name!r}; known: {', '.join(names())}, none")
    return kind


def heal_rank(name: str) -> tuple[int, str]:
    """The sort key healing kinds in order (unknown names heal first, by name); the
    built-in kinds are loaded first, so a fresh process ranks them by their priority."""
    _discover()
    kind = _REGISTRY.get(name)
    return (kind.heal_priority if kind else 0, name)


def problems(kind: FaultKind, cluster: Cluster | None, db: Any) -> list[str]:
    """Why ``kind`` cannot strike ``db`` on ``cluster`` (empty: it can): DB abilities it
    lacks, provider capabilities the cluster reports unavailable (a provider that does not
    report one leaves it to the nemesis's own setup check), and the kind's extra check.
    Each message says what would work."""
    out: list[str] = []
    missing = [ability_name(a) for a in kind.db_needs if not isinstance(db, a)]
    if missing:
        out.append(
            f"{kind.name} faults need the database adapter {type(db).__name__} to provide "
            f"{' and '.join(missing)} (see nemeses/abilities.py)"
        )
    if cluster is not None:
        from clusters.base import unavailable

        for group in kind.provider_needs:
            lacks = unavailable(cluster, group)
            if len(lacks) == len(group):
                why = "; ".join(f"{c.name}: {c.detail or 'not available'}" for c in lacks)
                out.append(
                    f"{kind.name} faults need one of {', '.join(group)} from the "
                    f"{cluster.provider} provider ({why}); `clew doctor` says what is missing"
                )
    if cluster is not None:
        try:
            kind.check(cluster, db)
        except NemesisError as e:
            out.insert(0, str(e))  # the kind's own reason is the most specific
    return out


def too_few_nodes(kinds: Iterable[str], nodes: int) -> str | None:
    """Why a run of ``nodes`` nodes cannot have fault kinds ``kinds`` (``None``: it can),
    saying which kinds need more nodes and what would work: more ``--nodes``, or kinds
    that fit. Unknown kinds are left to the callers that name them."""
    _discover()
    short = [k for k in map(_REGISTRY.get, kinds) if k is not None and k.min_nodes > nodes]
    if not short:
        return None
    need = max(k.min_nodes for k in short)
    fit = [k.name for k in all_kinds() if k.min_nodes <= nodes]
    what = "; ".join(f"{k.name} faults need at least {k.min_nodes} nodes" for k in short)
    other = f", or other --faults ({', '.join(fit)}, or none)" if fit else ", or --faults none"
    return f"{what}, and this run has {nodes} (--nodes {nodes}): use --nodes {need} or more{other}"


def help_text() -> str:
    """``--faults`` help: every kind with its summary."""
    return "; ".join(f"{k.name} ({k.summary})" for k in all_kinds())


def markdown_table() -> str:
    """The fault-kind table of ``docs/faults.md``, made from the registry."""
    rows = [
        "| kind | what it does | parameters | needs | healed by |",
        "|---|---|---|---|---|",
    ]
    for k in all_kinds():
        needs = [" or ".join(f"`{c}`" for c in g) for g in k.provider_needs]
        needs += [f"DB `{ability_name(a)}`" for a in k.db_needs]
        if k.min_nodes > 1:
            needs.append(f"at least {k.min_nodes} nodes")
        rows.append(
            f"| `{k.name}` | {k.summary} | {k.space.describe()} | "
            f"{', '.join(needs) or '—'} | {k.heals_by} |"
        )
    return "\n".join(rows)


def register_all(kinds: Iterable[FaultKind]) -> None:
    """Register each of ``kinds`` (a suite's contribution). A kind of the same name that a
    suite registered before is replaced (a suite file loaded again); a built-in kind is
    never shadowed (:class:`ConfigError`)."""
    _discover()
    for kind in kinds:
        if kind.name in _BUILTIN and _REGISTRY.get(kind.name) is not kind:
            raise ConfigError(f"fault kind {kind.name!r} is built in; give yours another name")
        register(kind, replace=True)
