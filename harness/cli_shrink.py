"""``clew shrink RUN_DIR``: the smallest fault schedule that still makes the run invalid
(see :mod:`harness.shrink`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from harness.cli import FiniteFloatRange
from harness.cli_test import cluster_options, rerun_cluster_flags
from harness.errors import InputError
from harness.shrink import DEFAULT_FRACTION, DEFAULT_MAX_RUNS, DEFAULT_RERUNS
from harness.terminal import echo_shown

if TYPE_CHECKING:
    from harness.record import RunResults

__all__ = ["shrink_cmd"]

_VERDICT = {True: "valid", False: "INVALID", "unknown": "unknown"}


@click.command("shrink", short_help="Shrink an invalid run's fault schedule (ddmin).")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--reruns",
    type=click.IntRange(min=1),
    default=DEFAULT_RERUNS,
    show_default=True,
    help="Reruns a candidate schedule gets (k).",
)
@click.option(
    "--fraction",
    type=FiniteFloatRange(0, 1, min_open=True),
    default=DEFAULT_FRACTION,
    show_default=True,
    help="Share of the reruns that must be invalid.",
)
@click.option(
    "--max-runs",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_RUNS,
    show_default=True,
    help="Runs the whole search may make.",
)
@click.option(
    "--store",
    default=None,
    help="Where the reruns are stored.  [default: the store of RUN_DIR, else ./store]",
)
@click.option(
    "--suite",
    "suite_file",
    default=None,
    metavar="FILE",
    help="The suite file of a run of a suite file (never taken from the run).",
)
@rerun_cluster_flags
def shrink_cmd(run_dir: str, reruns: int, fraction: float, max_runs: int, store: str | None,
               suite_file: str | None, cluster_state_dir: str | None,
               cluster_opts: tuple[str, ...]) -> None:  # fmt: skip
    """Delta-debug (ddmin) the fault schedule of the invalid run in RUN_DIR: replay subsets
    of the fault ops it applied (same spec and seed) and keep the smallest that is still
    invalid in at least FRACTION of RERUNS reruns (the whole schedule is rerun only if no
    half of it is); then rerun that schedule RERUNS times for its reproduction rate.
    Writes RUN_DIR/shrink.json and prints the schedule.

    Exit codes: 0 a smaller (or equal) schedule reproduces, 2 the original schedule does
    not reproduce, 130 a Ctrl-C (or SIGTERM) stopped a rerun and with it the search (no
    shrink.json), 254 bad arguments or input (also a run whose results.json does not say
    it is invalid: refused before any rerun).
    """
    from harness.record import RunResults, RunSpec
    from harness.rerun import rerun_spec
    from harness.runner import (
        check_stored_before_cluster,
        run_test,
        stored_suite,
        stored_workload,
    )
    from harness.shrink import NOT_REPRODUCED, shrink_run
    from harness.store import check_run_dir
    from nemeses.schedule import ledger_schedule

    check_run_dir(run_dir)
    run = Path(run_dir).resolve()  # not store/x/latest, which moves to each rerun
    stored = RunSpec.read(run)
    if stored is None:
        raise click.UsageError(f"{run_dir}: not a clew run directory (no spec.json)")
    _check_invalid(run, RunResults.read(run))
    suite = stored_suite(stored, run, suite_file, "shrink")
    stored_workload(stored, suite, run / "spec.json")
    spec = rerun_spec(stored, run / "spec.json", suite_file=suite_file, store=store,
                      cluster_state_dir=cluster_state_dir,
                      cluster_options=cluster_options(cluster_opts),
                      on_a_cluster=True)  # fmt: skip
    # The stored run's own mistakes (an option value, a kind its nodes cannot have), named
    # by its spec.json before any rerun brings a cluster up.
    check_stored_before_cluster(spec, ledger_schedule(run / "faults.jsonl").steps, suite,
                                run / "spec.json")  # fmt: skip

    def replay(steps: list[dict[str, Any]]) -> bool | None:
        outcome = run_test(spec, schedule=steps, replay_of=str(run), suite=suite)
        valid = outcome.valid
        verdict = "INVALID" if valid is False else "valid" if valid is True else "unknown"
        click.echo(f"  {len(steps)} ops: {verdict}  {outcome.run_dir}", err=True)
        if outcome.interrupted:  # the rerun stopped short proves nothing: stop the search
            click.echo(f"clew shrink: interrupted ({outcome.interrupted}) in the rerun in "
                       f"{outcome.run_dir}; the search stopped, and no shrink.json was "
                       "written", err=True)  # fmt: skip
            sys.exit(130)
        return outcome.valid is False

    result = shrink_run(run, replay, reruns=reruns, fraction=fraction, max_runs=max_runs)
    click.echo(f"{len(result.original)} fault ops -> {len(result.minimal)} ({result.stopped}); "
               f"reproduced {result.reproduced}/{result.reruns}; {result.runs_made} runs, "
               f"{result.seconds:.0f} s")  # fmt: skip
    for s in result.minimal:  # (the stored run's own ledger: shown, not obeyed)
        echo_shown(f"  {s['at']:>7} {s['f']} {s.get('value')}")
    sys.exit(2 if result.reproduced == 0 or result.stopped == NOT_REPRODUCED else 0)


def _check_invalid(run: Path, results: RunResults | None) -> None:
    """Refuse at once (:class:`InputError`, exit 254) a run whose ``results`` (its
    :class:`~harness.record.RunResults`, ``None`` if it has none) are not invalid: there is
    no anomaly to shrink, and every rerun would be spent before saying so."""
    if results is not None and results.valid is False:
        return
    path = run / "results.json"
    if results is None:
        why = f"{path}: missing, so the run has no verdict"
    else:
        why = f"{path}: the run's verdict is {_VERDICT.get(results.valid, 'unknown')}"
    raise InputError(f"{why}; clew shrink needs an invalid run (an anomaly to reproduce)")
