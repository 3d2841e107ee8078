"""The ``clock`` fault kind: the database's wall clock bumped or strobed."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from clusters.base import Cluster
from nemeses.base import NemesisPackage
from nemeses.kinds import FaultKind, PackageArgs, ParamSpace


def plan_clock(nodes: Sequence[str], rng: random.Random, roles: bool) -> Any:
    """A bump or strobe over a random non-empty subset of ``nodes``
    (:func:`nemeses.clock.plan_clock`)."""
    from nemeses.clock import plan_clock as plan

    return plan(nodes, rng)


def clock_package(args: PackageArgs) -> NemesisPackage:
    """The clock nemesis for the run's DB adapter."""
    from nemeses.clock import clock_package as make

    return make(db=args.db, interval=args.interval, timeout=args.timeout)


def check_clock(cluster: Cluster, db: Any) -> None:
    """Refuse unless some mechanism reaches ``db``'s clock on ``cluster``
    (:func:`nemeses.clock.clock_mechanism` says why not and what would)."""
    from nemeses.clock import clock_mechanism

    clock_mechanism(cluster, db)


def _space() -> ParamSpace:
    from nemeses.clock import KINDS as VARIANTS
    from nemeses.clock import ClockBounds

    b = ClockBounds()
    return ParamSpace(
        targets=("nodes",),
        variants=tuple(VARIANTS),
        magnitudes={
            "offset": (b.min_offset, b.max_offset, "s"),
            "strobe period": (b.min_period, b.max_period, "s"),
        },
        duration=(b.min_duration, b.max_duration),
    )


KINDS = (
    FaultKind(
        name="clock",
        summary="bump (jump by an offset) or strobe (flip back and forth) of the "
        "database's wall clock: libfaketime for programs that read the time through libc, "
        "the system clock on VM nodes",
        heals_by="offset back to `+0` / clock reset to the controller's",
        space=_space(),
        plan=plan_clock,
        package=clock_package,
        provider_needs=(("clock-libfaketime", "clock-system"),),
        check=check_clock,
        heal_priority=0,
        order=40,
    ),
)
