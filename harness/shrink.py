"""Shrinking a failing fault schedule: delta debugging (Zeller's ddmin) over an invalid
run's fault ops, replaying subsets, keeping the smallest that still reproduces the anomaly
in at least ``fraction`` of ``reruns`` reruns.

The search goes in two passes. First over **faults** (:func:`fault_units`: a ``start-*``
op with the ``stop-*`` of its kind that ends it, or an op alone): a stop without its start
means nothing, and a schedule of ``n`` ops has about ``n / 2`` faults, so this pass needs
about half the tests. Then over the single ops left (a stop the anomaly does not need goes:
the run's end heals).

A candidate is tested by rerunning it until it has ``ceil(fraction * reruns)`` invalid
runs (accepted) or can no longer get them (rejected), so a candidate that does not
reproduce usually costs one or two runs. The original schedule is tested only when the
search needs it: when no half of it reproduces (a half that does shows the anomaly is
there to shrink, and the original's reruns would cost as much as an accepted
candidate's). ``max_runs`` caps the whole search (then the smallest schedule found so far
is reported, with the reason). The result is written to
the run's ``shrink.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import ConfigError
from nemeses.schedule import ledger_schedule

__all__ = ["NOT_REPRODUCED", "Budget", "ShrinkResult", "ddmin", "fault_units", "reproduction",
           "shrink_run"]

T = TypeVar("T")

#: Defaults of ``clew shrink``.
DEFAULT_RERUNS = 5
DEFAULT_FRACTION = 0.8
DEFAULT_MAX_RUNS = 150
#: ``ShrinkResult.stopped`` when the original schedule does not reproduce the anomaly.
NOT_REPRODUCED = "the original schedule does not reproduce the anomaly"


class Budget(Exception):
    """The search ran out of runs."""


def ddmin(items: Sequence[T], fails: Callable[[list[T]], bool],
          confirm: Callable[[], bool] | None = None) -> list[T]:  # fmt: skip
    """A 1-minimal sublist of ``items`` (in order) for which ``fails`` holds, assuming it
    holds for ``items`` (removing any single element of the result makes it not fail).

    ``confirm``, if given, is asked once whether ``items`` fail, the first time the search
    would rest on it (no part tested so far failed); if it says no, ``items`` come back
    unchanged and the search stops there."""
    current = list(items)
    n = 2
    shrunk = False
    while len(current) >= 2:
        size = math.ceil(len(current) / n)
        chunks = [current[i : i + size] for i in range(0, len(current), size)]
        reduced = False
        for i, chunk in enumerate(chunks):
            if fails(chunk):
                current, n, reduced = chunk, 2, True
                break
            complement = [x for j, c in enumerate(chunks) if j != i for x in c]
            if fails(complement):
                current, n, reduced = complement, max(n - 1, 2), True
                break
        shrunk = shrunk or reduced
        if not shrunk and confirm is not None:
            if not confirm():
                return list(items)
            confirm = None
        if not reduced:
            if n >= len(current):
                break
            n = min(len(current), 2 * n)
    if len(current) == 1 and fails([]):
        return []
    return current


def fault_units(steps: Sequence[dict[str, Any]]) -> list[list[int]]:
    """The schedule's ops grouped by fault, as index lists in order of their first op: each
    ``start-<kind>`` with the next ``stop-<kind>`` (a start while one of its kind holds
    replaces it: the first start's unit ends there); any other op alone."""
    units: list[list[int]] = []
    open_: dict[str, list[int]] = {}
    for i, s in enumerate(steps):
        f = str(s.get("f", ""))
        kind = f.split("-", 1)[1] if "-" in f else f
        if f.startswith("start-"):
            unit = [i]
            open_[kind] = unit
            units.append(unit)
        elif f.startswith("stop-") and kind in open_:
            open_.pop(kind).append(i)
        else:
            units.append([i])
    return units


def reproduction(run_once: Callable[[], bool | None], reruns: int, fraction: float
                 ) -> tuple[bool, int, int]:  # fmt: skip
    """Rerun until ``ceil(fraction * reruns)`` runs are invalid (``run_once`` is true) or
    that can no longer happen; (accepted, invalid runs, runs made)."""
    need = math.ceil(fraction * reruns)
    hits = made = 0
    while made < reruns and hits < need and hits + (reruns - made) >= need:
        made += 1
        hits += bool(run_once())
    return hits >= need, hits, made


@dataclass(slots=True)
class ShrinkResult:
    """What ``clew shrink`` found: the original and the minimal schedule, the minimal
    one's reproduction rate over ``reruns`` full reruns, runs made and seconds."""

    run_dir: str
    original: list[dict[str, Any]]
    minimal: list[dict[str, Any]]
    reproduced: int = 0
    reruns: int = 0
    runs_made: int = 0
    seconds: float = 0.0
    stopped: str = ""
    tests: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``shrink.json``'s content."""
        return dataclasses.asdict(self)


def shrink_run(
    run_dir: str | Path,
    run_schedule: Callable[[list[dict[str, Any]]], bool | None],
    *,
    reruns: int = DEFAULT_RERUNS,
    fraction: float = DEFAULT_FRACTION,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> ShrinkResult:
    """Shrink the applied fault schedule of the invalid run in ``run_dir``;
    ``run_schedule(steps)`` replays the run's test with ``steps`` and says whether it came
    out invalid. Writes ``run_dir/shrink.json``: in the run ``run_dir`` names when the
    shrink starts (``store/x/latest`` moves to each rerun as it is made)."""
    if reruns < 1 or not 0 < fraction <= 1 or max_runs < 1:
        raise ConfigError("shrink needs --reruns ≥ 1, 0 < --fraction ≤ 1, --max-runs ≥ 1")
    run = Path(run_dir).resolve()
    read = ledger_schedule(run / "faults.jsonl")  # as clew replay reads it
    steps = read.steps
    if not steps:
        raise ConfigError(f"{run / 'faults.jsonl'}: records no applied fault op to shrink "
                          f"(only the ops clew's scheduler planned are replayed)"
                          f"{read.damage_note()}")  # fmt: skip
    result = ShrinkResult(run_dir=str(run), original=steps, minimal=steps, reruns=reruns)
    t0 = time.monotonic()
    cache: dict[str, bool] = {}

    def once(sub: list[dict[str, Any]]) -> bool | None:
        if result.runs_made >= max_runs:
            raise Budget
        result.runs_made += 1
        return run_schedule(sub)

    def fails(idx: list[int]) -> bool:
        key = json.dumps(idx)
        if key not in cache:
            sub = [steps[i] for i in idx]
            ok, hits, made = reproduction(lambda: once(sub), reruns, fraction)
            cache[key] = ok
            result.tests.append({"ops": idx, "invalid": hits, "runs": made, "kept": ok})
        return cache[key]

    everything = list(range(len(steps)))
    best = everything

    def tracked(idx: list[int]) -> bool:
        nonlocal best
        r = fails(idx)
        if r and len(idx) < len(best):
            best = idx
        return r

    def original() -> bool:
        return fails(everything)

    def refuted() -> bool:
        return cache.get(json.dumps(everything)) is False

    try:
        units = fault_units(steps)
        kept = ddmin(units, lambda us: tracked(sorted(i for u in us for i in u)), original)
        if not refuted():
            best = sorted(i for u in kept for i in u)
            best = ddmin(best, tracked, original if best == everything else None)
        result.stopped = NOT_REPRODUCED if refuted() else "1-minimal"
    except Budget:
        result.stopped = f"out of runs (--max-runs {max_runs}): the smallest found so far"
    result.minimal = [steps[i] for i in best]
    if result.stopped != NOT_REPRODUCED:
        rate = [bool(run_schedule(result.minimal)) for _ in range(reruns)]
        result.runs_made += reruns
        result.reproduced = sum(rate)
        if best == everything and json.dumps(everything) not in cache and (
            result.reproduced < math.ceil(fraction * reruns)
        ):  # a schedule too small to halve was never tested before these reruns
            result.stopped = NOT_REPRODUCED
    result.seconds = round(time.monotonic() - t0, 1)
    (run / "shrink.json").write_text(json.dumps(result.to_json(), indent=1) + "\n")
    return result
