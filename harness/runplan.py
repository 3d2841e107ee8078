"""What a test run does, as a generator: client load and faults, then heal and final ops.

::

    phases(
        time_limit(T, any_(clients(stagger(1/rate, workload)),
                           nemesis(cycle([sleep(I), start-fault, sleep(I), stop-fault])))),
        log("healing"), nemesis(final heal ops),
        log("waiting for recovery"), sleep(R),
        clients(final generator),            # e.g. a final read by every worker
    )
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.api import TestContext, Workload
from harness.generator import any_, clients, cycle, log, nemesis, phases, sleep, stagger
from harness.generator import time_limit as limit_time
from harness.spec import TestSpec
from nemeses.base import NemesisPackage

__all__ = ["build_generator", "build_nemesis"]


async def build_nemesis(
    spec: TestSpec, ctx: TestContext, remotes: Mapping[str, Any]
) -> NemesisPackage | None:
    """The fault package for ``spec.faults`` (set up and healed of leftovers), or None."""
    if not spec.faults:
        return None
    from nemeses.partition import partition_package

    package = partition_package(interval=spec.interval)
    await package.nemesis.setup(ctx, remotes)
    return package


def build_generator(
    spec: TestSpec, ctx: TestContext, workload: Workload, package: NemesisPackage | None
) -> Any:
    """The whole run as one generator (see the module docstring)."""
    load: Any = workload.generator(ctx)
    if spec.rate > 0:
        load = stagger(1.0 / spec.rate, load)
    main: Any = clients(load)
    if package is not None:
        i = package.interval
        faults = cycle([sleep(i), package.start(ctx), sleep(i), package.stop(ctx)])
        main = any_(main, nemesis(faults))
    steps: list[Any] = [limit_time(spec.time_limit, main)]
    if package is not None:
        steps += [log("healing"), nemesis(list(package.finals()))]
    if spec.recovery_time > 0:
        steps += [log("waiting for recovery"), sleep(spec.recovery_time)]
    if workload.final_generator is not None:
        steps.append(clients(workload.final_generator(ctx)))
    return phases(*steps)
