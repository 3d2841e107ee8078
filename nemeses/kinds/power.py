"""The ``power-off`` fault kind: a node switched off hard (its page cache lost) and
started again from its disk, by the provider (:mod:`nemeses.power`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.errors import NemesisError
from nemeses.base import NemesisPackage
from nemeses.kinds import FaultKind, PackageArgs, ParamSpace, aim_at_targets
from nemeses.kinds.process import plan_process
from nemeses.targets import TARGET_SPECS

if TYPE_CHECKING:
    from clusters.base import Cluster


def power_package(args: PackageArgs) -> NemesisPackage:
    """The power-off nemesis, restarting the run's database after the heal."""
    from nemeses.power import power_package as make

    return make(args.db, interval=args.interval, lease=args.lease)


def check_provider_switch(provider: str) -> None:
    """Refuse, from its name alone, a provider that cannot switch its nodes off and on."""
    from clusters import get_provider
    from nemeses.power import PowerSwitch

    if not isinstance(get_provider(provider), PowerSwitch):
        raise NemesisError(
            f"power-off faults need a provider that can switch nodes off and on; the "
            f"{provider} provider cannot (use --provider qemu)"
        )


def check_switch(cluster: Cluster, db: Any) -> None:
    """Refuse, before the run, a provider that cannot switch its nodes off and on."""
    check_provider_switch(cluster.provider)


KINDS = (
    FaultKind(
        name="power-off",
        summary="the node's machine switched off hard (unsynced writes lost) on the same "
        "kinds of targets as kill; VMs only",
        heals_by="a cold start from the node's disk, waiting for SSH, then the database "
        "started through the DB adapter",
        space=ParamSpace(targets=(*TARGET_SPECS, "nodes")),
        plan=plan_process,
        package=power_package,
        provider_needs=(("power-off",),),
        check=check_switch,
        check_provider=check_provider_switch,
        aim=aim_at_targets,
        heal_priority=3,
        order=75,
    ),
)
