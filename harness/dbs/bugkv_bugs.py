"""bugkv's seeded bugs as data: each bug's depth, workload and minimal fault schedule.

A bug's **depth** is the number of fault operations (``start-*`` and ``stop-*`` ops alike) in
the shortest schedule, in order, that exposes it; the run's own end (every fault healed,
then, for the ``set`` workload, a final read) is not counted, since every run has it. The
minimal schedules assume bugkv's election priority: the cluster's first node (``n1``)
leads at the start, the second takes over when it is gone. ``primaries`` targets are
resolved when the op strikes (the leader of the highest term). The schedules are on the
random scheduler's grid of the yardstick (:data:`YARDSTICK`: an op every second from
1 s), so each is a possible draw of it. A bug's ``time_limit`` is the length of a replay
of its minimal schedule: 4 s after its last op, enough for the bug to show when the
ops land on time (on a loaded machine they can start seconds late; the tests then try
again). Yardstick runs (campaigns, the depth checks) are longer: ``YARDSTICK.time_limit``.

``docs/bugkv.md`` explains each bug and why each op of its schedule is needed; the tests
(``tests/integration/test_bugkv.py``) and ``bench/bugkv_depth.py`` run these schedules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUG_CATALOG", "NODES", "YARDSTICK", "Bug", "Yardstick", "isolate"]

#: The cluster the schedules are written for.
NODES = ("n1", "n2", "n3", "n4", "n5")


def isolate(node: str, nodes: tuple[str, ...] = NODES) -> dict[str, list[str]]:
    """A partition value (grudge) cutting ``node`` off from every other node, both ways."""
    rest = [n for n in nodes if n != node]
    return {node: rest, **{n: [node] for n in rest}}


def _step(at: float, f: str, value: Any = None) -> dict[str, Any]:
    return {"at": at, "f": f, "value": value}


@dataclass(frozen=True, slots=True)
class Bug:
    """One seeded bug: its flag, depth, the workload that shows it, the run length its
    schedule is written for, the schedule (``nemeses.schedule`` steps), and suite options
    the bug is defined with (besides ``bug``)."""

    name: str
    depth: int
    workload: str
    time_limit: float
    schedule: tuple[dict[str, Any], ...]
    summary: str
    options: dict[str, Any] = field(default_factory=dict)

    def suite_options(self, *, with_bug: bool = True) -> dict[str, Any]:
        """The suite options of a run of this bug's schedule (``bug`` unless ``with_bug``
        is false: the same run against the correct server)."""
        return {**self.options, **({"bug": self.name} if with_bug else {})}

    def __post_init__(self) -> None:
        if len(self.schedule) != self.depth:
            raise ValueError(f"bug {self.name}: {len(self.schedule)} steps for depth {self.depth}")

    def steps(self) -> list[dict[str, Any]]:
        """The minimal schedule, as a fresh list of steps."""
        return [dict(s) for s in self.schedule]

    def without(self, i: int) -> list[dict[str, Any]]:
        """The minimal schedule with step ``i`` left out."""
        return [dict(s) for j, s in enumerate(self.schedule) if j != i]


@dataclass(frozen=True, slots=True, kw_only=True)
class Yardstick:
    """The run shape every scheduler is measured with on a seeded bug (``docs/bugkv.md``,
    "The baseline's parameters"): the fault ``kinds``, a fault op every ``interval``
    seconds, at most ``overlap`` faults at once (the random scheduler), a budget of
    ``fault_ops`` fault operations per run (every scheduler), runs of ``time_limit``
    seconds of load, then ``recovery_time`` before the final reads; ``nodes`` nodes and
    ``concurrency`` workers. With these, each bug's minimal schedule is a possible draw of
    the random scheduler (op for op, at the same times: its first ops)."""

    kinds: tuple[str, ...] = ("partition", "pause", "kill", "clock", "packet")
    interval: float = 1.0
    overlap: int = 2
    fault_ops: int = 10
    time_limit: float = 12.0
    recovery_time: float = 2.0  # the spec's default, so `clew campaign` with the flags agrees
    nodes: int = len(NODES)
    concurrency: int = 2 * len(NODES)

    def spec_args(self, bug: Bug) -> dict[str, Any]:
        """``harness.spec.load_spec`` arguments of a yardstick run on ``bug`` (add the
        scheduler, seed, store and cluster)."""
        return {
            "suite": "bugkv", "workload": bug.workload, "options": bug.suite_options(),
            "faults": ",".join(self.kinds), "interval": self.interval,
            "overlap": self.overlap, "fault_ops": self.fault_ops,
            "time_limit": self.time_limit, "recovery_time": self.recovery_time,
            "nodes": self.nodes, "concurrency": self.concurrency,
        }  # fmt: skip


#: The yardstick's parameters (fixed: they are part of every figure's config hash).
YARDSTICK = Yardstick()

_ALL_BACK = {"kind": "bump", "offsets": {n: -30.0 for n in NODES}}

BUG_CATALOG: dict[str, Bug] = {
    b.name: b
    for b in (
        Bug(
            "early-ack", 1, "set", 5.0,
            (_step(1.0, "start-kill", {"targets": "primaries"}),),
            "the leader acknowledges a write once it is in its own log; killing it loses "
            "the writes it acknowledged but had not sent yet",
        ),
        Bug(
            "stale-leader-read", 1, "register", 5.0,
            (_step(1.0, "start-partition", "primaries"),),
            "the leader serves reads without a lease: cut off, it keeps answering from "
            "its state while the majority elects a new leader and moves on",
        ),
        Bug(
            "lease-wall-clock", 2, "register", 6.0,
            (_step(1.0, "start-partition", "primaries"),
             _step(2.0, "start-clock", _ALL_BACK)),
            "the lease is measured on the wall clock: a leader cut off, whose clock then "
            "steps back, believes its lease good for 30 s more",
        ),
        Bug(
            "vote-ignores-log", 2, "register", 6.0,
            (_step(1.0, "start-partition", isolate("n3")),
             _step(2.0, "start-partition", isolate("n1"))),
            "votes skip the up-to-date check: n3, cut off while writes commit, comes back "
            "with a high term when the leader is cut off and wins with its stale log",
        ),
        Bug(
            "buffered-log", 2, "register", 7.0,
            (_step(1.0, "start-kill", {"targets": "all", "nodes": list(NODES)}),
             _step(2.0, "stop-kill")),
            "appends reach the disk 64 at a time but are acknowledged at once: killing "
            "every node loses what no node had written, and the restarted cluster reads "
            "older values",
        ),
        Bug(
            "commit-unchecked", 3, "set", 7.0,
            (_step(1.0, "start-partition", "primaries"),
             _step(2.0, "stop-partition"),
             _step(3.0, "start-kill", {"targets": "primaries"})),
            "a follower takes the leader's commit index before checking its log matches: "
            "the old leader, healed, applies its own uncommitted tail and skips the real "
            "entries; when it leads again its state lacks acknowledged writes",
        ),
        Bug(
            "stepdown-applies-tail", 3, "set", 7.0,
            (_step(1.0, "start-partition", "primaries"),
             _step(2.0, "stop-partition"),
             _step(3.0, "start-kill", {"targets": "primaries"})),
            "a leader that steps down applies its whole log: the old leader, healed, "
            "applies its uncommitted tail; when it leads again its state lacks "
            "acknowledged writes",
        ),
        Bug(
            "lease-ticks", 3, "register", 7.0,
            (_step(1.0, "start-pause", {"targets": "primaries"}),
             _step(2.0, "start-partition", isolate("n1")),
             _step(3.0, "stop-pause")),
            "the lease is counted in event-loop ticks, which stop while the process is "
            "paused: the leader, paused, cut off and resumed, still holds a lease and "
            "serves stale reads (slow elections and a long lease, election_ms=2000 and "
            "lease_ms=1900, so that the partition is in place before a new leader is "
            "elected however slowly the pause is applied and the stale lease outlasts "
            "the new leader's election; propose_timeout_ms=200, so that the cut-off "
            "leader's clients get through many ops)",
            {"election_ms": 2000, "lease_ms": 1900, "propose_timeout_ms": 200},
        ),
    )
}  # fmt: skip
