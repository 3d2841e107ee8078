"""Schedulers that learn: :mod:`nemeses.schedulers.adaptive` (a Q-learning agent whose
memory persists per suite) and :mod:`nemeses.schedulers.ldfi` (lineage-driven fault
injection). Both are registered in :mod:`nemeses.scheduler` by name, built lazily here."""

from __future__ import annotations

from nemeses.scheduler import Scheduler, SchedulerArgs

__all__ = ["build"]


def build(name: str, args: SchedulerArgs) -> Scheduler:
    """The learning scheduler called ``name`` (``adaptive`` or ``ldfi``) for one run."""
    if name == "adaptive":
        from nemeses.schedulers.adaptive import AdaptiveScheduler

        return AdaptiveScheduler.for_run(args)
    from nemeses.schedulers.ldfi import LdfiScheduler

    return LdfiScheduler.for_run(args)
