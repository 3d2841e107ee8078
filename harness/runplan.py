"""What a test run does, as a generator: client load and faults, then heal and final ops.

::

    phases(
        time_limit(T, any_(clients(stagger(1/rate, workload)),
                           schedule)),              # the planned fault steps
        log("healing"), nemesis(final stop ops),
        log("waiting for recovery"), sleep(R),
        clients(final generator),            # e.g. a final read by every worker
    )

The fault schedule is planned from the seed before the run (:mod:`nemeses.schedule`), or
given (``clew replay``), and saved as ``schedule.json`` in the run directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.api import DB, TestContext, Workload
from harness.errors import ConfigError, NemesisError
from harness.generator import any_, clients, log, nemesis, phases, sleep, stagger
from harness.generator import time_limit as limit_time
from harness.spec import TestSpec
from nemeses import kinds as fault_kinds
from nemeses.abilities import Primaries
from nemeses.base import NemesisPackage
from nemeses.faultset import FaultSet
from nemeses.kinds import PackageArgs
from nemeses.schedule import plan_schedule, schedule_generator, schedule_kinds

__all__ = [
    "build_generator",
    "build_nemesis",
    "make_package",
    "plan_run_schedule",
    "preflight_faults",
]


def make_package(kind: str, spec: TestSpec, db: DB) -> NemesisPackage:
    """The package of fault kind ``kind`` for this run (from the kind's registry entry,
    :mod:`nemeses.kinds`)."""
    args = PackageArgs(db=db, interval=spec.interval, lease=spec.fault_lease,
                       options=spec.options)  # fmt: skip
    return fault_kinds.get(kind).package(args)


def plan_run_schedule(spec: TestSpec, ctx: TestContext, db: DB) -> list[dict[str, Any]]:
    """The run's fault schedule, planned from its seed (roles such as ``primaries`` only
    if the DB can name them)."""
    assert spec.seed is not None
    return plan_schedule(
        spec.faults,
        [n.name for n in ctx.nodes],
        seed=spec.seed,
        time_limit=spec.time_limit,
        interval=spec.interval,
        roles=isinstance(db, Primaries),
    )


def preflight_faults(
    spec: TestSpec, ctx: TestContext, db: DB, schedule: Sequence[dict[str, Any]]
) -> None:
    """Refuse, before anything runs, fault kinds this cluster and database cannot have:
    each kind's declared needs (provider capabilities, DB abilities, its own check) are
    checked, and its package is built. Raises :class:`~harness.errors.ConfigError` saying
    why and what would work."""
    kinds = list(dict.fromkeys([*spec.faults, *schedule_kinds(schedule)]))
    for kind in kinds:
        why = fault_kinds.problems(fault_kinds.get(kind), ctx.cluster, db)
        if not why:
            try:
                make_package(kind, spec, db)
            except NemesisError as e:
                why = [str(e)]
        if why:
            raise ConfigError(f"cannot run --faults {kind}: {'; '.join(why)}")


async def build_nemesis(
    spec: TestSpec,
    ctx: TestContext,
    remotes: Mapping[str, Any],
    db: DB,
    schedule: Sequence[dict[str, Any]],
    *,
    ledger: Any = None,
    source: str = "random",
) -> FaultSet | None:
    """The run's fault set for the kinds ``schedule`` uses (plus ``spec.faults``), with a
    node-side guard, set up (leftovers healed, every kind checked on every node); or None
    when there are no faults."""
    from nemeses.guard import FaultGuard

    kinds = list(dict.fromkeys([*spec.faults, *schedule_kinds(schedule)]))
    if not kinds:
        return None
    packages = [make_package(k, spec, db) for k in kinds]
    guard = FaultGuard(remotes, lease=spec.fault_lease, ledger=ledger)
    faults = FaultSet(packages, db=db, guard=guard, ledger=ledger)
    if ledger is not None:
        ledger.source = source
    await faults.setup(ctx, remotes)
    return faults


def build_generator(
    spec: TestSpec,
    ctx: TestContext,
    workload: Workload,
    faults: FaultSet | None,
    schedule: Sequence[dict[str, Any]],
) -> Any:
    """The whole run as one generator (see the module docstring)."""
    load: Any = workload.generator(ctx)
    if spec.rate > 0:
        load = stagger(1.0 / spec.rate, load)
    main: Any = clients(load)
    if faults is not None and schedule:
        main = any_(main, schedule_generator(schedule))
    steps: list[Any] = [limit_time(spec.time_limit, main)]
    if faults is not None:
        finals = [{**op, "reason": "final"} for p in faults.packages.values() for op in p.finals()]
        steps += [log("healing"), nemesis(finals)]
    if spec.recovery_time > 0:
        steps += [log("waiting for recovery"), sleep(spec.recovery_time)]
    if workload.final_generator is not None:
        steps.append(clients(workload.final_generator(ctx)))
    return phases(*steps)
