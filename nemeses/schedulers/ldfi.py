"""``--scheduler ldfi``: lineage-driven fault injection, run after run.

The first run of a suite strikes nothing and records the lineage of what it acknowledged
(:mod:`nemeses.lineage`). Each later run reads the previous run (its history, its ledger,
its verdict), adds the outcome classes it saw, learns from the hypothesis it tested, and
strikes the next **hypothesis**: the first untried minimal set of at most ``k`` fault
actions that removes every support of some outcome class. ``k`` is the run's fault-op
budget (the random scheduler's strikes, at most :data:`MAX_K`). The actions strike in order
(partitions and pauses first, so that replication is cut before a copy is lost), one every
``interval`` from ``interval``, and are healed in reverse order after the last has held
``2 * interval`` seconds.

What a valid run under a hypothesis teaches (the support the model lacked): reads after a
killed node's restart saw writes it had acknowledged before the kill — ``disk:<node>`` (its
copy was persisted); a leader serving reads when cut off (for at least :data:`MIN_CUT` s) that
served no read in the second half of the cut — ``lease:<leader>`` (it stopped serving).
Either is a support no fault of the model removes. Hypotheses (sets of actions) are never
tried twice, whichever class they were aimed at.

When no untried hypothesis remains, the run strikes nothing and its ``scheduler`` ledger
record says, precisely, ``exhausted``: no combination of ≤ k faults of these kinds removes
every support of an acknowledged outcome, within this model. An invalid run ends the
search (the campaign stops there too). The state — classes, tried hypotheses, the pending
one — lives in ``<store>/schedulers/ldfi-<suite>.json``; reset it with ``python -m
nemeses.schedulers reset ldfi --store S --suite X``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import ClewError, InputError
from harness.record import RunResults, read_fault_records
from nemeses.lineage import (
    Action,
    OutcomeClass,
    candidate_actions,
    classes_of_history,
    minimal_hitting_sets,
    removed_by,
)
from nemeses.scheduler import Decision, FaultOp, RunView, SchedulerArgs
from nemeses.schedulers import memory
from nemeses.schedulers.adaptive import strike_slots

__all__ = ["MAX_K", "LdfiScheduler", "LdfiState", "exhausted_statement"]

#: The largest fault sets considered (the run's budget may allow fewer): with 3, a read's
#: quorum has dozens of hitting sets (three followers cut, by partitions or pauses).
MAX_K = 2
#: Seconds a cut must last for its second half to tell whether the leader kept serving.
MIN_CUT = 1.0


class LdfiState:
    """What LDFI knows for a suite: outcome classes (with learned supports), tried
    hypotheses and their verdicts, the pending hypothesis, runs seen, and the outcome."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        data = data or {}
        self.classes = {
            k: OutcomeClass.from_json(v) for k, v in dict(data.get("classes", {})).items()
        }
        self.tried: list[dict[str, Any]] = list(data.get("tried", []))
        self.pending: dict[str, Any] | None = data.get("pending")
        self.runs = int(data.get("runs", 0))
        self.found: str | None = data.get("found")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"classes": {k: c.to_json() for k, c in sorted(self.classes.items())},
                "tried": self.tried, "pending": self.pending, "runs": self.runs,
                "found": self.found}  # fmt: skip

    def tried_sets(self) -> set[tuple[Action, ...]]:
        """The hypotheses already tried."""
        return {tuple((a[0], a[1]) for a in t["hypothesis"]) for t in self.tried}

    def observe(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Add a valid run's outcome classes."""
        for key, c in classes_of_history(events).items():
            mine = self.classes.setdefault(key, OutcomeClass(kind=c.kind, leader=c.leader))
            mine.outcomes += c.outcomes

    def hypotheses(self, kinds: Iterable[str], nodes: Sequence[str], k: int
                   ) -> list[tuple[str, tuple[Action, ...]]]:  # fmt: skip
        """Untried (class, hypothesis) pairs, smallest hypotheses first."""
        actions = candidate_actions(kinds, nodes)
        tried = self.tried_sets()
        out: list[tuple[str, tuple[Action, ...]]] = []
        seen: set[tuple[Action, ...]] = set()
        for key, c in sorted(self.classes.items()):
            removes = {a: removed_by(a, c.leader, nodes) for a in actions}
            for h in minimal_hitting_sets(c.supports(nodes), actions, removes, k):
                if h not in tried and h not in seen:
                    seen.add(h)
                    out.append((key, h))
        out.sort(key=lambda kh: (len(kh[1]), kh[0]))
        return out


def exhausted_statement(state: LdfiState, kinds: Iterable[str], k: int) -> str:
    """The precise statement that the search is over, within the model."""
    model = sorted(set(kinds) & {"kill", "partition", "pause"})
    classes = ", ".join(f"{c.key} ({c.outcomes} ops)" for c in state.classes.values())
    return (
        f"exhausted: no combination of ≤ {k} faults of kinds {', '.join(model) or 'none'} "
        f"removes every support of an acknowledged write or read, within this model "
        f"(classes: {classes or 'none'}; {len(state.tried)} hypotheses tried, all valid; "
        f"{state.runs} runs)"
    )


def _read_history(run: Path) -> list[dict[str, Any]]:
    path = run / "history.jsonl"
    out: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"{path}: cannot read it: {e.strerror}") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            if i == len(lines):
                break
            raise InputError(f"{path}:{i}: not a JSON object") from None
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _find_run(store: str | Path, episode: str, *, newest: int = 50) -> Path | None:
    runs = sorted(Path(store).glob("*/*/faults.jsonl"), key=lambda p: p.stat().st_mtime,
                  reverse=True)[:newest]  # fmt: skip
    for path in runs:
        try:
            recs = read_fault_records(path.parent)
        except ClewError:
            continue
        if any(r.get("event") == "scheduler" and r.get("episode") == episode for r in recs):
            return path.parent
    return None


def _window(ledger: Sequence[Mapping[str, Any]], kind: str) -> tuple[float, float] | None:
    """When the first ``kind`` fault held (seconds since the origin), from the ledger."""
    start = end = None
    for r in ledger:
        if r.get("kind") != kind:
            continue
        if r.get("event") == "applied" and start is None:
            start = int(r.get("time", 0)) / 1e9
        elif r.get("event") == "healed" and start is not None and end is None:
            end = int(r.get("time", 0)) / 1e9
    return None if start is None else (start, end if end is not None else float("inf"))


def _survivors(ok: Sequence[Mapping[str, Any]], node: str, kill: tuple[float, float]) -> int:
    """How many reads completed after the kill window saw a value that ``node``
    acknowledged as written (``write``/``add``) before it: direct evidence of survival."""
    written = {(json.dumps(e.get("key")), json.dumps(e.get("value"))) for e in ok
               if e.get("node") == node and str(e.get("f")) in ("write", "add")
               and int(e.get("time", 0)) / 1e9 < kill[0]}  # fmt: skip
    n = 0
    for e in ok:
        if str(e.get("f")) not in ("read", "read-set") or int(e.get("time", 0)) / 1e9 <= kill[1]:
            continue
        v = e.get("value")
        values = v if isinstance(v, list) else [v]
        if any((json.dumps(e.get("key")), json.dumps(x)) in written for x in values):
            n += 1
    return n


def learn(state: LdfiState, hypothesis: Sequence[Action], events: Sequence[Mapping[str, Any]],
          ledger: Sequence[Mapping[str, Any]]) -> list[str]:  # fmt: skip
    """What a valid run under ``hypothesis`` showed the model lacked (see the module);
    the lessons, as sentences, also stored as learned supports of the classes."""
    lessons: list[str] = []
    ok = [e for e in events if e.get("type") == "ok" and isinstance(e.get("process"), int)]
    kill = _window(ledger, "kill")
    for kind, target in hypothesis:
        if kind == "kill" and kill is not None:
            killed = [n for c in state.classes.values() for n in [c.leader]
                      if target in ("all", f"node:{n}")]  # fmt: skip
            for n in dict.fromkeys(killed):
                seen = _survivors(ok, n, kill)
                writes = state.classes.get(f"write@{n}")
                if seen and writes is not None:
                    ev = (f"{seen} reads after {n}'s restart saw writes it acknowledged before "
                          f"the kill (its copy was persisted)")  # fmt: skip
                    writes.learned.setdefault(f"disk:{n}", ev)
                    lessons.append(ev)
                elif writes is not None:
                    lessons.append(f"none: no read after {n}'s restart saw a write it "
                                   f"acknowledged before the kill (inconclusive)")  # fmt: skip
        if kind == "partition":
            cut = _window(ledger, "partition")
            leader = target.removeprefix("node:")
            if cut is None or cut[1] - cut[0] < MIN_CUT:
                continue  # too short to tell: the hypothesis is tried, nothing learned
            half = cut[0] + (cut[1] - cut[0]) / 2
            before = [e for e in ok if e.get("node") == leader
                      and str(e.get("f")) in ("read", "read-set")
                      and cut[0] - 1.0 <= int(e.get("time", 0)) / 1e9 < cut[0]]  # fmt: skip
            if not before:
                lessons.append(f"none: {leader} served no read in the second before the cut "
                               f"(it was not leading; the hypothesis was vacuous)")  # fmt: skip
                continue
            served = [e for e in ok if e.get("node") == leader
                      and str(e.get("f")) in ("read", "read-set")
                      and half <= int(e.get("time", 0)) / 1e9 < cut[1]]  # fmt: skip
            if not served:
                ev = (f"{leader}, cut off from {cut[0]:.1f} s to {cut[1]:.1f} s, served no read "
                      f"in the second half of the cut (it stopped serving)")  # fmt: skip
                reads = state.classes.get(f"read@{leader}")
                if reads is not None:
                    reads.learned.setdefault(f"lease:{leader}", ev)
                    lessons.append(ev)
    return lessons


class LdfiScheduler:
    """One run's part of the LDFI loop (see the module docstring)."""

    name = "ldfi"

    def __init__(self, state: LdfiState, *, path: Path | None = None,
                 notes: Sequence[str] = ()) -> None:  # fmt: skip
        self.state = state
        self.path = path
        self.notes = list(notes)
        self.episode = uuid.uuid4().hex[:12]
        self._ops: list[FaultOp] | None = None
        self._i = 0
        self.hypothesis: tuple[Action, ...] | None = None
        self.target_class: str | None = None
        self.k = 0
        self.exhausted: str | None = None

    @classmethod
    def for_run(cls, args: SchedulerArgs) -> LdfiScheduler:
        """Read the state and the previous run (its lineage; a lesson from its hypothesis
        if it was valid; the end of the search if it was invalid)."""
        path = memory.memory_path("ldfi", args.store, args.suite)
        state = LdfiState(memory.load(path))
        notes: list[str] = []
        pending = state.pending
        run = _find_run(args.store, str(pending["episode"])) if pending else None
        if pending and run is not None:
            results = RunResults.read(run)
            valid = results.valid if results is not None else None
            h = [tuple(a) for a in pending.get("hypothesis") or []]
            if valid is True:
                events = _read_history(run)
                ledger = read_fault_records(run)
                lessons = (
                    learn(state, [(str(a), str(b)) for a, b in h], events, ledger) if h else []
                )
                state.observe(events)
                if h:
                    state.tried.append({"hypothesis": h, "class": pending.get("class"),
                                        "run": str(run), "valid": True,
                                        "lessons": lessons})  # fmt: skip
                notes.append(f"previous run {run}: valid; lessons: {lessons or 'none'}")
            elif valid is False:
                state.found = f"run {run} is invalid under hypothesis {h}"
                state.tried.append({"hypothesis": h, "class": pending.get("class"),
                                    "run": str(run), "valid": False})  # fmt: skip
                notes.append(f"previous run {run}: INVALID")
            else:
                notes.append(f"previous run {run}: unknown verdict; its hypothesis is tried again")
            state.pending = None
        return cls(state, path=path, notes=notes)

    def _plan(self, view: RunView) -> list[FaultOp]:
        space = view.space
        nodes = list(space.nodes)
        self.k = min(MAX_K, strike_slots(space.time_limit, space.interval))
        if not self.state.classes:
            return []  # the first run: observe only
        todo = self.state.hypotheses(space.kinds, nodes, self.k)
        if not todo:
            self.exhausted = exhausted_statement(self.state, space.kinds, self.k)
            return []
        self.target_class, self.hypothesis = todo[0]
        ops: list[FaultOp] = []
        t = space.interval
        why = (f"ldfi: removes every support of {self.target_class} "
               f"({len(todo)} untried hypotheses ≤ {self.k})")  # fmt: skip
        for kind, target in self.hypothesis:
            node = target.removeprefix("node:")
            if target == "all":
                value = space.value_for(kind, "all", view.rng)
            elif kind == "partition":
                rest = [n for n in nodes if n != node]
                value = {node: rest, **{n: [node] for n in rest}}
            else:
                value = {"targets": "nodes", "nodes": [node]}
            ops.append(FaultOp(at=round(t, 3), f=f"start-{kind}", value=value, why=why))
            t += space.interval
        t += space.interval  # the whole set holds 2 intervals before the heals
        for kind, _target in reversed(self.hypothesis):
            ops.append(FaultOp(at=round(t, 3), f=f"stop-{kind}", why="ldfi: hypothesis held"))
            t += space.interval / 2
        return ops

    def next_op(self, view: RunView) -> Decision:
        """The hypothesis's ops in order; ``None`` after them (or at once, when observing,
        exhausted, or after an invalid run)."""
        if self._ops is None:
            self._ops = [] if self.state.found else self._plan(view)
        if self._i >= len(self._ops):
            return None
        op = self._ops[self._i]
        self._i += 1
        return op

    def summary(self, view: RunView) -> dict[str, Any]:
        """The hypothesis struck (or the exhausted statement), and the state saved."""
        if self._ops is None:
            self._ops = [] if self.state.found else self._plan(view)
        self.state.runs += 1
        if self.hypothesis:
            self.state.pending = {"episode": self.episode, "class": self.target_class,
                                  "hypothesis": [list(a) for a in self.hypothesis]}  # fmt: skip
        else:
            self.state.pending = {"episode": self.episode, "hypothesis": []}
        if self.path is not None:
            memory.save(self.path, self.state.to_json())
        return {
            "scheduler": "ldfi", "episode": self.episode, "k": self.k,
            "hypothesis": [list(a) for a in self.hypothesis or []],
            "class": self.target_class, "exhausted": self.exhausted, "found": self.state.found,
            "classes": sorted(self.state.classes), "tried": len(self.state.tried),
            "notes": self.notes,
        }  # fmt: skip
