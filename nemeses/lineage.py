"""Lineage of acknowledged outcomes, and the smallest fault sets that take all of it away.

LDFI (Alvaro et al., SIGMOD 2015) asks *why* a good outcome happened — which alternative
**supports** it had, each a set of resources that all had to hold — and injects exactly the
faults that remove every support. Here:

* an **outcome class** is the acknowledged ``write``\\s (write/add/cas) or ``read``\\s served
  by one leader ``L`` in a valid run (the history's ``node`` of a completion is the node
  that served it);
* its **supports**, for a Raft-style store (:func:`raft_supports`): a write held by ``L``
  (``{copy:L}``) or replicated to a follower ``n`` that kept it (``{repl:L>n, copy:n}``);
  a read is fresh while ``L`` hears from a majority ``Q`` (``{hb:L>q : q in Q - L}``).
  What a later run shows the model lacked is added as an **unremovable** support
  (``disk:n``: a killed node's copy came back on restart; ``lease:L``: a cut-off leader
  stopped serving reads);
* an **action** (:data:`Action`, ``(kind, target)``) removes resources by
  :func:`removed_by` (a kill loses a node's unsynced copy; a partition or a pause cuts
  replication and heartbeats) — clock and packet faults are outside this model;
* :func:`minimal_hitting_sets` finds every inclusion-minimal set of at most ``k``
  actions that removes at least one resource of every support of a class (an exact
  search by increasing size: the instances are a few dozen actions and ``k <= 3``, where
  a SAT solver would add a dependency and no speed).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Action",
    "OutcomeClass",
    "candidate_actions",
    "classes_of_history",
    "minimal_hitting_sets",
    "raft_supports",
    "removed_by",
]

#: A fault action: ``(kind, target)``, target ``all`` or ``node:<name>``.
Action = tuple[str, str]
Support = frozenset[str]

WRITES = frozenset({"write", "add", "cas", "append", "enqueue"})
READS = frozenset({"read", "read-set"})


@dataclass(slots=True)
class OutcomeClass:
    """Acknowledged outcomes of one kind (``write``/``read``) served by ``leader``; their
    alternative supports, how many outcomes were seen, and the unremovable supports
    learned (with the evidence)."""

    kind: str
    leader: str
    outcomes: int = 0
    learned: dict[str, str] = field(default_factory=dict)  # resource -> evidence

    @property
    def key(self) -> str:
        """``write@n1``."""
        return f"{self.kind}@{self.leader}"

    def supports(self, nodes: Sequence[str]) -> list[Support]:
        """Every alternative support of an outcome of this class (the model's and the
        learned ones)."""
        return raft_supports(self.kind, self.leader, nodes) + [
            frozenset({r}) for r in sorted(self.learned)
        ]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (:meth:`from_json` reads it back)."""
        return {"kind": self.kind, "leader": self.leader, "outcomes": self.outcomes,
                "learned": self.learned}  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> OutcomeClass:
        """The class :meth:`to_json` wrote."""
        return cls(kind=str(d["kind"]), leader=str(d["leader"]),
                   outcomes=int(d.get("outcomes", 0)),
                   learned={str(k): str(v)
                            for k, v in dict(d.get("learned", {})).items()})  # fmt: skip


def raft_supports(kind: str, leader: str, nodes: Sequence[str]) -> list[Support]:
    """The alternative supports of an acknowledged ``kind`` outcome served by ``leader``
    in a Raft-style store of ``nodes`` (see the module docstring)."""
    others = [n for n in nodes if n != leader]
    if kind == "write":
        return [frozenset({f"copy:{leader}"})] + [
            frozenset({f"repl:{leader}>{n}", f"copy:{n}"}) for n in others
        ]
    majority = len(nodes) // 2 + 1
    return [
        frozenset(f"hb:{leader}>{q}" for q in quorum)
        for quorum in itertools.combinations(others, majority - 1)
    ]


def removed_by(action: Action, leader: str, nodes: Sequence[str]) -> frozenset[str]:
    """The resources ``action`` removes while it holds, for outcomes served by ``leader``:
    a kill loses the killed nodes' (unsynced) copies; a partition isolating ``x`` cuts
    ``leader``'s replication and heartbeats to ``x`` (to everyone, when ``x`` is the
    leader); a pause of a follower does the same for it."""
    kind, target = action
    hit = list(nodes) if target == "all" else [target.removeprefix("node:")]
    out: set[str] = set()
    if kind == "kill":
        out |= {f"copy:{n}" for n in hit}
    elif kind in ("partition", "pause"):
        for x in hit:
            if x == leader and kind == "partition":
                out |= {f"{r}:{leader}>{n}" for n in nodes if n != leader for r in ("repl", "hb")}
            elif x != leader:
                out |= {f"repl:{leader}>{x}", f"hb:{leader}>{x}"}
    return frozenset(out)


def candidate_actions(kinds: Iterable[str], nodes: Sequence[str]) -> list[Action]:
    """The actions of the model for the requested ``kinds`` (kill, partition, pause; each
    of one node, and a kill of all)."""
    out: list[Action] = []
    for kind in ("partition", "pause", "kill"):
        if kind in kinds:
            out += [(kind, f"node:{n}") for n in nodes]
            if kind == "kill":
                out.append(("kill", "all"))
    return out


def minimal_hitting_sets(
    supports: Sequence[Support],
    actions: Sequence[Action],
    removes: Mapping[Action, frozenset[str]],
    k: int,
) -> list[tuple[Action, ...]]:
    """Every inclusion-minimal set of at most ``k`` of ``actions`` whose removed resources
    meet every support (smallest first; none if a support has no removable resource)."""
    useful = [a for a in actions if any(removes[a] & s for s in supports)]
    if not supports or any(not any(removes[a] & s for a in useful) for s in supports):
        return []
    found: list[tuple[Action, ...]] = []
    for size in range(1, k + 1):
        for combo in itertools.combinations(useful, size):
            if any(set(f) <= set(combo) for f in found):
                continue
            gone = frozenset().union(*(removes[a] for a in combo))
            if all(gone & s for s in supports):
                found.append(combo)
    return found


def classes_of_history(events: Iterable[Mapping[str, Any]]) -> dict[str, OutcomeClass]:
    """The outcome classes of a history: acknowledged (``ok``) writes and reads, by the
    node that served them (completions without a ``node`` are skipped)."""
    out: dict[str, OutcomeClass] = {}
    for e in events:
        if e.get("type") != "ok" or not isinstance(e.get("process"), int) or not e.get("node"):
            continue
        f = str(e.get("f"))
        kind = "write" if f in WRITES else "read" if f in READS else None
        if kind is None:
            continue
        c = OutcomeClass(kind=kind, leader=str(e["node"]))
        c = out.setdefault(c.key, c)
        c.outcomes += 1
    return out
