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

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from harness.api import DB, TestContext, Workload
from harness.errors import ConfigError, NemesisError
from harness.generator import any_, clients, log, nemesis, phases, sleep, stagger
from harness.generator import time_limit as limit_time
from harness.spec import TestSpec
from nemeses import kinds as fault_kinds
from nemeses.abilities import Primaries
from nemeses.agent import LogPatterns, agent_kinds, compile_slices, validate_agent_steps
from nemeses.base import (
    DEFAULT_FAULT_LEASE,
    DEFAULT_FAULT_TIMEOUT,
    NemesisPackage,
    fault_lease_for,
    fault_timeout_for,
)
from nemeses.faultset import FaultSet
from nemeses.kinds import PackageArgs
from nemeses.schedule import plan_schedule, schedule_kinds
from nemeses.scheduler import (
    Driver,
    FaultSpace,
    PlansAgentSteps,
    Scheduler,
    SchedulerArgs,
    make_scheduler,
    observing,
    scheduler_generator,
    scheduler_rng,
    summary_phase,
)

logger = logging.getLogger("clew.runplan")

__all__ = [
    "build_generator",
    "build_nemesis",
    "check_fault_packages",
    "check_node_count",
    "check_plannable",
    "fault_driver",
    "fault_lease",
    "fault_timeout",
    "make_package",
    "plan_run_schedule",
    "preflight_faults",
    "run_kinds",
    "run_scheduler",
    "run_space",
    "scheduler_agent_steps",
]


def fault_lease(spec: TestSpec, ctx: TestContext) -> float:
    """Seconds a fault outlives a controller that stopped renewing it: ``--fault-lease``,
    else the provider's default for this cluster (:func:`nemeses.base.fault_lease_for`)."""
    return spec.fault_lease if spec.fault_lease is not None else fault_lease_for(ctx.cluster)


def fault_timeout(spec: TestSpec, ctx: TestContext) -> float:
    """Seconds one fault command on a node may take: ``--fault-timeout``, else the
    provider's default for this cluster (:func:`nemeses.base.fault_timeout_for`)."""
    return spec.fault_timeout if spec.fault_timeout is not None else fault_timeout_for(ctx.cluster)


def make_package(
    kind: str, spec: TestSpec, db: DB, timeout: float | None = None, lease: float | None = None
) -> NemesisPackage:
    """The package of fault kind ``kind`` for this run (from the kind's registry entry,
    :mod:`nemeses.kinds`); ``timeout`` bounds each fault command (see :func:`fault_timeout`),
    ``lease`` is the run's fault lease (see :func:`fault_lease`)."""
    lease = lease or spec.fault_lease or DEFAULT_FAULT_LEASE
    args = PackageArgs(db=db, interval=spec.interval, lease=lease,
                       options=spec.options,
                       timeout=timeout or spec.fault_timeout or DEFAULT_FAULT_TIMEOUT)  # fmt: skip
    return fault_kinds.get(kind).package(args)


def plan_run_schedule(spec: TestSpec, ctx: TestContext, db: DB) -> list[dict[str, Any]]:
    """The run's fault schedule as planned before the run: the random scheduler's, from
    the seed (roles such as ``primaries`` only if the DB can name them); empty for a
    scheduler that decides as the run goes. Warns about requested kinds the time cannot
    fit. :class:`ConfigError` for ``replay`` (it needs a stored run: ``clew replay``)."""
    assert spec.seed is not None
    check_plannable(spec)
    if spec.scheduler != "random":
        return []
    schedule = plan_schedule(
        spec.faults,
        [n.name for n in ctx.nodes],
        seed=spec.seed,
        time_limit=spec.time_limit,
        interval=spec.interval,
        roles=isinstance(db, Primaries),
        overlap=spec.overlap,
        fault_ops=spec.fault_ops,
    )
    # The kinds the plan leaves out: the seed's draw, not the last ones listed.
    struck = schedule_kinds(s for s in schedule if str(s.get("f", "")).startswith("start-"))
    missed = [k for k in dict.fromkeys(spec.faults) if k not in struck]
    if missed:
        which = (f"the seed's draw: {len(struck)} of {len(struck) + len(missed)} kinds strike"
                 if struck else "no fault strikes at all")  # fmt: skip
        logger.warning(
            "a %g s run with a fault op every %g s (overlap %d, fault ops %s) has no time "
            "for fault kind(s) %s (%s); raise --time-limit or --fault-ops, or lower --interval",
            spec.time_limit, spec.interval, spec.overlap,
            "uncapped" if spec.fault_ops is None else spec.fault_ops, ", ".join(missed), which,
        )  # fmt: skip
    return schedule


def check_plannable(spec: TestSpec) -> None:
    """Refuse (:class:`ConfigError`), from ``spec`` alone and so before any cluster comes
    up, a scheduler a new run cannot have: ``replay`` plays a stored run's faults."""
    if spec.scheduler == "replay":
        raise ConfigError(
            "--scheduler replay plays a stored run's faults: use `clew replay RUN_DIR`"
        )


def run_kinds(spec: TestSpec, schedule: Sequence[dict[str, Any]] = ()) -> list[str]:
    """The fault kinds a run may strike, each once: ``--faults``, the kinds of a given
    ``schedule`` (a replay's) and those of the node agents' steps."""
    return list(dict.fromkeys([*spec.faults, *schedule_kinds(schedule), *agent_kinds(spec.agent)]))


def check_node_count(spec: TestSpec, schedule: Sequence[dict[str, Any]] = ()) -> None:
    """Refuse (:class:`ConfigError`), from ``spec.nodes`` alone and so before any cluster
    comes up, fault kinds that need more nodes than the run has (a partition on one
    node), naming the kinds, the node count and what would work."""
    kinds = run_kinds(spec, schedule)
    why = fault_kinds.too_few_nodes(kinds, spec.nodes)
    if why:
        raise ConfigError(f"cannot run --faults {','.join(dict.fromkeys(kinds))}: {why}")


def check_fault_packages(spec: TestSpec, db: DB, kinds: Sequence[str]) -> None:
    """Refuse (:class:`ConfigError`), from ``spec`` and the run's DB alone and so before
    any cluster comes up, fault ``kinds`` the DB adapter cannot have (the abilities each
    kind needs) or whose package cannot be built from ``spec``'s options (a
    ``disk_full_headroom_mb`` that is not a number). What a kind needs of the cluster is
    left to :func:`preflight_faults`, once it is up."""
    for kind in kinds:
        why = fault_kinds.problems(fault_kinds.get(kind), None, db)
        if not why:
            try:
                make_package(kind, spec, db)
            except NemesisError as e:
                why = [str(e)]
        if why:
            raise ConfigError(f"cannot run --faults {kind}: {'; '.join(why)}")


def check_fault_providers(spec: TestSpec, kinds: Sequence[str]) -> None:
    """Refuse (:class:`ConfigError`), from ``spec``'s provider name alone, fault ``kinds``
    that provider cannot have whatever its nodes (power-off on the local provider), for
    any suite: nothing of the run is built for it
    (:attr:`nemeses.kinds.FaultKind.check_provider`)."""
    for kind in kinds:
        try:
            fault_kinds.get(kind).check_provider(spec.provider)
        except NemesisError as e:
            raise ConfigError(f"cannot run --faults {kind}: {e}") from None


def preflight_faults(
    spec: TestSpec, ctx: TestContext, db: DB, schedule: Sequence[dict[str, Any]]
) -> None:
    """Refuse, before anything runs, fault kinds this cluster and database cannot have:
    each kind's declared needs (provider capabilities, DB abilities, its own check) are
    checked, and its package is built. Raises :class:`~harness.errors.ConfigError` saying
    why and what would work."""
    kinds = list(dict.fromkeys([*spec.faults, *schedule_kinds(schedule), *agent_kinds(spec.agent)]))
    if spec.agent:
        compile_slices(spec.agent, ctx, db)  # a pattern or script the adapter lacks: refused
    for kind in kinds:
        why = fault_kinds.problems(fault_kinds.get(kind), ctx.cluster, db)
        if not why:
            try:
                make_package(kind, spec, db, fault_timeout(spec, ctx))
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

    kinds = list(dict.fromkeys([*spec.faults, *schedule_kinds(schedule), *agent_kinds(spec.agent)]))
    if not kinds:
        return None
    timeout = fault_timeout(spec, ctx)
    lease = fault_lease(spec, ctx)
    packages = [make_package(k, spec, db, timeout, lease) for k in kinds]
    guard = FaultGuard(remotes, lease=lease, ledger=ledger, timeout=timeout,
                       journal_bytes=spec.agent_journal_bytes,
                       journal_rate=spec.agent_journal_rate)  # fmt: skip
    faults = FaultSet(packages, db=db, guard=guard, ledger=ledger, source=source)
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
    scheduler: Scheduler | None = None,
) -> Any:
    """The whole run as one generator (see the module docstring); ``scheduler``, the
    run's, if made already (else :func:`fault_driver` makes it)."""
    load: Any = workload.generator(ctx)
    if spec.rate > 0:
        load = stagger(1.0 / spec.rate, load)
    main: Any = clients(load)
    steps: list[Any] = []
    if faults is not None:
        driver = fault_driver(spec, ctx, faults, schedule, scheduler)
        main = observing(driver, any_(main, nemesis(scheduler_generator(driver))))
        steps += [limit_time(spec.time_limit, main), summary_phase(driver)]
        # Healed in the kinds' heal order: network and clocks before processes restart.
        order = sorted(faults.packages.values(), key=lambda p: fault_kinds.heal_rank(p.name))
        finals = [{**op, "reason": "final"} for p in order for op in p.finals()]
        steps += [log("healing"), nemesis(finals)]
    else:
        steps.append(limit_time(spec.time_limit, main))
    if spec.recovery_time > 0:
        steps += [log("waiting for recovery"), sleep(spec.recovery_time)]
    if workload.final_generator is not None:
        steps.append(clients(workload.final_generator(ctx)))
    return phases(*steps)


def run_scheduler(spec: TestSpec, schedule: Sequence[dict[str, Any]], source: str) -> Scheduler:
    """The run's scheduler: ``replay`` (of ``schedule``) when ``source`` is, else
    ``spec.scheduler``."""
    assert spec.seed is not None
    name = "replay" if source == "replay" else spec.scheduler
    return make_scheduler(name, SchedulerArgs(seed=spec.seed, steps=list(schedule),
                                              store=spec.store, suite=spec.suite))  # fmt: skip


def run_space(
    spec: TestSpec, ctx: TestContext, db: Any, schedule: Sequence[dict[str, Any]]
) -> FaultSpace:
    """What the run's scheduler may choose from: the kinds the controller strikes (a kind
    only node agents strike is theirs alone), the nodes, the interval and limits; whether
    the run has node agents (steps handed to them, or agents that only watch) and the
    adapter's log trigger names."""
    kinds = list(dict.fromkeys([*spec.faults, *schedule_kinds(schedule)]))
    return FaultSpace.of(
        kinds, [n.name for n in ctx.nodes], roles=isinstance(db, Primaries),
        interval=spec.interval, time_limit=spec.time_limit, overlap=spec.overlap,
        fault_ops=spec.fault_ops, agents=spec.has_agents,
        agent_triggers=tuple(db.log_patterns) if isinstance(db, LogPatterns) else (),
    )  # fmt: skip


def scheduler_agent_steps(
    spec: TestSpec,
    ctx: TestContext,
    db: Any,
    schedule: Sequence[dict[str, Any]],
    scheduler: Scheduler,
) -> tuple[TestSpec, list[dict[str, Any]]]:
    """``spec`` with the agent steps ``scheduler`` hands over for this run
    (:class:`~nemeses.scheduler.PlansAgentSteps`) after its own, checked like the user's
    (:class:`~harness.errors.ConfigError` naming the scheduler), and the ledger's
    ``agent-step`` record of each (the step, the scheduler, why); ``spec`` and no records
    for a scheduler that hands over none."""
    if not isinstance(scheduler, PlansAgentSteps):
        return spec, []
    planned = list(scheduler.agent_steps(run_space(spec, ctx, db, schedule)))
    if not planned:
        return spec, []
    steps = validate_agent_steps([dict(p.step) for p in planned],
                                 f"the agent steps of scheduler {scheduler.name!r}",
                                 [n.name for n in ctx.nodes])  # fmt: skip
    records = [{"event": "agent-step", "source": scheduler.name, "step": s, "why": p.why}
               for s, p in zip(steps, planned, strict=True)]  # fmt: skip
    return dataclasses.replace(spec, agent=(*spec.agent, *steps)), records


def fault_driver(
    spec: TestSpec,
    ctx: TestContext,
    faults: FaultSet,
    schedule: Sequence[dict[str, Any]],
    scheduler: Scheduler | None = None,
) -> Driver:
    """The run's scheduler (``scheduler`` if made already, else :func:`run_scheduler`'s)
    over the space of the fault set's kinds, seeing its active faults and its ledger, and
    writing its summary to that ledger."""
    assert spec.seed is not None
    if scheduler is None:
        scheduler = run_scheduler(spec, schedule, faults.source)
    space = run_space(spec, ctx, faults.db, schedule)
    ledger = faults.ledger

    def record(rec: dict[str, Any]) -> None:
        if ledger is not None:
            ledger.write({"seq": ledger.next_seq(), **rec})

    driver = Driver(
        scheduler, space, rng=scheduler_rng(spec.seed), active=lambda: faults.active,
        ledger=lambda: ledger.records if ledger is not None else [], record=record,
    )  # fmt: skip
    if faults.guard is not None:  # the node agents' journals reach the observations
        faults.guard.on_journal = driver.observe_agent
    return driver
