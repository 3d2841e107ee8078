"""The ``pause`` and ``kill`` fault kinds: the database process stopped or killed, through
the DB adapter."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from nemeses.abilities import Killable, Pausable
from nemeses.base import NemesisPackage
from nemeses.kinds import FaultKind, PackageArgs, ParamSpace, aim_at_targets
from nemeses.targets import TARGET_SPECS


def plan_process(nodes: Sequence[str], rng: random.Random, roles: bool) -> Any:
    """``{"targets": spec, "nodes": [...]}`` for a target spec drawn from
    :data:`~nemeses.targets.TARGET_SPECS` (``primaries`` left to the run)."""
    from nemeses.process import plan_targets

    return plan_targets(list(nodes), rng, primaries=roles)


def pause_package(args: PackageArgs) -> NemesisPackage:
    """The pause nemesis through the run's DB adapter."""
    from nemeses.process import pause_package as make

    return make(args.db, interval=args.interval)


def kill_package(args: PackageArgs) -> NemesisPackage:
    """The kill nemesis through the run's DB adapter."""
    from nemeses.process import kill_package as make

    return make(args.db, interval=args.interval)


KINDS = (
    FaultKind(
        name="pause",
        summary="SIGSTOP of the database on one, a minority, a majority, all nodes or the "
        "primaries, through the DB adapter",
        heals_by="SIGCONT",
        space=ParamSpace(targets=(*TARGET_SPECS, "nodes")),
        plan=plan_process,
        package=pause_package,
        provider_needs=(("pause",),),
        db_needs=(Pausable,),
        aim=aim_at_targets,
        heal_priority=1,
        order=20,
    ),
    FaultKind(
        name="kill",
        summary="SIGKILL of the database on the same kinds of targets",
        heals_by="restart through the DB adapter on every node, waiting until each node it "
        "killed is ready (every node after a controller restart; a node paused by another "
        "fault is not waited for)",
        space=ParamSpace(targets=(*TARGET_SPECS, "nodes")),
        plan=plan_process,
        package=kill_package,
        provider_needs=(("kill",),),
        db_needs=(Killable,),
        aim=aim_at_targets,
        heal_priority=2,
        order=30,
    ),
)
