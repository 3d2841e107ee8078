"""Fault schedules: planned from a seed before the run, recorded, and replayable.

A schedule is a list of steps, plain JSON data::

    [{"at": 10.0, "f": "start-pause", "value": {"targets": "minority", "nodes": ["n2", "n4"]}},
     {"at": 20.0, "f": "stop-pause", "value": None}, ...]

:func:`plan_schedule` draws one from the run's seed with its own random stream (so adding a
fault kind never shifts the workload's choices): every ``2 * interval`` seconds one kind,
chosen at random among those asked for, strikes for ``interval`` seconds, with targets and
parameters drawn by that kind's planner. Values are concrete (nodes, grudges, offsets)
except the role ``primaries``, resolved during the run (the ledger records the nodes).

:func:`schedule_from_ledger` reads a stored run's ledger records back into a schedule of
what was *applied* (roles resolved), which ``clew replay`` runs against a new run;
:func:`ledger_schedule` does so from the ``faults.jsonl`` file, naming its damaged lines.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, InputError
from harness.generator import nemesis as on_nemesis
from nemeses import kinds as registry

__all__ = [
    "FAULT_KINDS",
    "LedgerSchedule",
    "ledger_schedule",
    "plan_schedule",
    "planner_for",
    "schedule_from_ledger",
    "schedule_generator",
    "validate_schedule",
]

#: The built-in fault kinds, in the order ``--faults`` lists them (the registry,
#: :mod:`nemeses.kinds`, also holds any kind a suite contributes).
FAULT_KINDS = registry.names()

Planner = Callable[[Sequence[str], random.Random], Any]


def planner_for(kind: str, *, roles: bool = True) -> Planner:
    """The planner of fault kind ``kind``: ``(nodes, rng) -> op value``. ``roles`` allows
    the symbolic target ``primaries``. :class:`ConfigError` for an unknown kind."""
    plan = registry.get(kind).plan
    return lambda nodes, rng: plan(nodes, rng, roles)


def plan_schedule(
    kinds: Sequence[str],
    nodes: Sequence[str],
    *,
    seed: int,
    time_limit: float,
    interval: float,
    roles: bool = True,
    overlap: int = 1,
    fault_ops: int | None = None,
) -> list[dict[str, Any]]:
    """The schedule the random scheduler (:class:`nemeses.scheduler.RandomScheduler`)
    carries out in a run where every strike succeeds: pure, so the same arguments give the
    same schedule. ``roles`` allows ``primaries`` targets (the DB can name them);
    ``overlap`` faults at once, at most ``fault_ops`` ops (``None``: no cap)."""
    from nemeses.scheduler import (
        FaultOp,
        FaultSpace,
        Observations,
        RandomScheduler,
        RunView,
        scheduler_rng,
    )

    if interval <= 0:
        raise ConfigError(f"the fault interval must be positive, not {interval}")
    space = FaultSpace.of(kinds, nodes, roles=roles, interval=interval, time_limit=time_limit,
                          overlap=overlap, fault_ops=fault_ops)  # fmt: skip
    scheduler, rng, seen = RandomScheduler(), scheduler_rng(seed), Observations()
    steps: list[dict[str, Any]] = []
    now = 0.0
    while fault_ops is None or len(steps) < fault_ops:
        view = RunView(now=now, space=space, active={}, ledger=[], observed=seen, rng=rng)
        d = scheduler.next_op(view)
        if not isinstance(d, FaultOp):
            return steps
        steps.append({"at": d.at, "f": d.f, "value": d.value})
        now = d.at
    return steps


def validate_schedule(steps: Any, source: str) -> list[dict[str, Any]]:
    """``steps`` checked to be a schedule (a list of ``{"at", "f", "value"}`` with ``at``
    non-decreasing and ``f`` a start/stop op of a known kind); :class:`ConfigError` naming
    ``source`` and the step otherwise."""
    if not isinstance(steps, list):
        raise ConfigError(f"{source}: a schedule is a list of steps")
    last = 0.0
    out = []
    for i, step in enumerate(steps):
        where = f"{source}: step {i + 1}"
        if not isinstance(step, dict) or not isinstance(step.get("at"), int | float):
            raise ConfigError(f"{where}: needs a numeric `at` (seconds), got {step!r}")
        f = step.get("f")
        kind = str(f).split("-", 1)[-1]
        known = registry.names()
        if not isinstance(f, str) or not f.startswith(("start-", "stop-")) or kind not in known:
            raise ConfigError(f"{where}: `f` must be start-/stop- one of {', '.join(known)}")
        if step["at"] < last:
            raise ConfigError(f"{where}: `at` goes back in time ({step['at']} < {last})")
        last = float(step["at"])
        out.append({"at": float(step["at"]), "f": f, "value": step.get("value")})
    return out


def schedule_kinds(steps: Iterable[dict[str, Any]]) -> list[str]:
    """The fault kinds a schedule uses, in order of first use."""
    return list(dict.fromkeys(str(s["f"]).split("-", 1)[1] for s in steps))


def schedule_generator(steps: Sequence[dict[str, Any]]) -> Any:
    """A nemesis-thread generator playing ``steps``: each op is due ``at`` seconds after the
    run's origin (an op whose predecessor ran late goes at once; lateness never
    accumulates), and carries its planned ``at`` to the ledger."""
    return on_nemesis(
        [
            {"f": s["f"], "value": s.get("value"), "at": s["at"], "time": round(s["at"] * 1e9)}
            for s in steps
        ]
    )


def schedule_from_ledger(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The schedule a stored run carried out, from its ledger records: each planned op
    (an ``intent`` with an ``at``) with the value that was *applied* (roles resolved to
    nodes), in order. Ops that failed are kept with their intended value; end-of-run
    heals are left out (a replay heals at its own end)."""
    intents: dict[int, dict[str, Any]] = {}
    outcomes: dict[int, dict[str, Any]] = {}
    for r in records:
        seq = r.get("seq")
        if not isinstance(seq, int):
            continue
        if r.get("event") == "intent" and "at" in r:
            intents[seq] = r
        elif r.get("event") in ("applied", "healed", "error"):
            outcomes[seq] = r
    steps = []
    for seq in sorted(intents):
        intent = intents[seq]
        done = outcomes.get(seq, {})
        f = str(intent["f"])
        value = intent.get("value")
        if f.startswith("start-") and done.get("event") == "applied":
            value = done.get("value")
        elif f.startswith("stop-"):
            value = None
        steps.append({"at": float(intent["at"]), "f": f, "value": value})
    return steps


@dataclass(frozen=True, slots=True)
class LedgerSchedule:
    """What :func:`ledger_schedule` read: the steps, and the lines (1-based) skipped as
    damaged (a torn last line, a record with no integer ``seq`` or no ``event``)."""

    steps: list[dict[str, Any]]
    damaged: list[int]

    def damage_note(self) -> str:
        """``"; 2 lines were skipped as damaged, the first line 3"`` (``""``: none)."""
        if not self.damaged:
            return ""
        n = len(self.damaged)
        return (f"; {n} line{'s' if n != 1 else ''} {'were' if n != 1 else 'was'} skipped as "
                f"damaged, the first line {self.damaged[0]}")  # fmt: skip


#: The events of a fault op's records, which carry its ``seq``.
_OP_EVENTS = ("intent", "applied", "healed", "error")


def ledger_schedule(path: str | Path) -> LedgerSchedule:
    """The schedule the ledger file ``path`` (a run's ``faults.jsonl``) records as carried
    out (:func:`schedule_from_ledger`). Records no ledger writes (no ``event``, or an op's
    event without an integer ``seq``) and a torn last line are skipped and counted as
    damaged; records of the run rather than of an op (the scheduler's summary: an event, no
    ``seq``) are skipped; a planned op (``intent`` with ``at``) whose ``at`` is not
    seconds, whose ``f`` is not a start/stop op, or whose kind is unknown raises
    :class:`InputError` naming the file and line, as does a ledger past a cap of
    :func:`~nemeses.ledger.read_ledger_lines` (a line longer than any record clew writes,
    too many records): a schedule read in part would replay another run."""
    from nemeses.ledger import read_ledger_lines

    p = Path(path)
    rows, torn, _, _ = read_ledger_lines(p)  # (not lenient: a ledger past a cap is refused)
    damaged = [] if torn is None else [torn]
    records = []
    for line, r in rows:
        seq, event = r.get("seq"), r.get("event")
        numbered = isinstance(seq, int) and not isinstance(seq, bool)
        if not isinstance(event, str) or (event in _OP_EVENTS and not numbered):
            damaged.append(line)
            continue
        if not numbered:  # a record of the run, not of an op (the scheduler's summary)
            continue
        if event == "intent" and "at" in r:
            where = f"{p}:{line}"
            at, f = r["at"], r.get("f")
            if (
                isinstance(at, bool)
                or not isinstance(at, int | float)
                or not (math.isfinite(at) and at >= 0)
            ):
                raise InputError(f"{where}: `at` must be seconds since the run's origin "
                                 f"(a number, 0 or more), got {at!r}")  # fmt: skip
            if not isinstance(f, str) or not f.startswith(("start-", "stop-")):
                raise InputError(f"{where}: `f` must be a start-KIND or stop-KIND op, got {f!r}")
            kind = f.split("-", 1)[1]
            if kind not in registry.names():
                raise InputError(f"{where}: unknown fault kind {kind!r}; known: "
                                 f"{', '.join(registry.names())}")  # fmt: skip
        records.append(r)
    return LedgerSchedule(steps=schedule_from_ledger(records), damaged=sorted(damaged))
