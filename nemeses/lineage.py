"""Lineage of acknowledged outcomes, and the smallest fault sets that take all of it away.

LDFI (Alvaro et al., SIGMOD 2015) asks *why* a good outcome happened — which alternative
**supports** it had, each a set of resources that all had to hold — and injects exactly the
faults that remove every support. Molly reads the supports off the protocol's program; here
they come from a Raft-style model of the store (leader, followers, a majority, a lease)
filled in by what runs show (:func:`classes_of_history`, and the lessons of
:mod:`nemeses.schedulers.ldfi`).

**Outcome classes** (:class:`OutcomeClass`), with roles rather than node names, since the
node that leads changes from run to run (the history's ``node`` of a completion is the
node that served it; the leader is whoever served most):

* ``write`` — acknowledged writes (write/add/cas/transfer/...) served by the leader ``L``,
  and committed transactions with a write (an ``append`` or ``w`` micro-op: list-append,
  rw-register). Supports: ``{copy:L}``; for each follower ``f``: ``{repl:f, copy:f}``
  (replicated to ``f``, which kept it). For a primary-backup store (PostgreSQL with
  streaming replication) the model's ``L`` is the primary; for a multi-primary one
  (Galera) it is the node that served most, and the other primaries are its followers.
* ``read`` — acknowledged reads served by ``L`` *while faults may strike* (the fault window:
  a final read after every heal is outside it). Supports: for each majority ``Q`` with
  ``L``: ``{hb:q : q in Q - L}`` (``L`` hears a majority). A transaction that only reads
  is a read. Once a run shows that ``L``,
  cut off, stops serving reads (its **lease** runs out), the support ``{leasetime}`` is
  added: the lease ends because ``L``'s clock runs — a clock step back or a pause of ``L``
  removes it.
* ``tail`` — writes ``L`` took but could not acknowledge while cut off (its uncommitted
  tail; seen in a run that cut ``L``). They must never become visible; that rests on the
  **successor** (the node elected meanwhile) leading while ``L`` rejoins and drops its tail
  (``{succ}``). Precondition: cut ``L`` and heal (the tail exists, ``L`` rejoins).
* ``behind`` — writes acknowledged while a follower ``f`` was cut off (the write's lineage
  then lacks ``{repl:f, copy:f}``: ``f`` is behind). They survive a change of leader only
  while ``f`` cannot win an election: the others hear ``L`` and refuse ``f``'s votes
  (``{sticky}``; a cut, pause or kill of ``L`` silences it), or refuse them because ``f``'s
  log is behind (the up-to-date check, which no fault removes). Precondition: cut ``f``
  (held while writes commit; a later partition replaces that cut, so ``f`` rejoins).
* ``lock`` — acknowledged lock acquires (``acquire``), each served by the member ``L`` its
  client talks through (for a lock service every member serves; ``L`` is one that did).
  The lock is the client's alone only while its **session** lives: the lease that its
  member keeps renewing for it, while it holds and while it still waits in the queue
  (``{session:L}``). Pausing or cutting ``L`` for longer than the lease lets the lease
  lapse while the client waits; the lock passes to another client, and when ``L`` comes
  back it may still answer the waiter that it holds the lock (Jepsen's etcd 3.4.3
  finding, ``docs/etcd-locks.md``). A kill of ``L`` also ends the session, but its
  waiters' requests fail with it: no client is told it holds a lock it lost, so kills do
  not remove this support in the model.

**Actions** (:data:`Action`, ``(kind, role)``; roles ``leader``, ``follower:<i>``,
``successor``, ``all``) remove resources (:func:`removed_by`): a kill loses the killed
nodes' unsynced copies (and the successor's lead); a partition isolating ``L`` cuts every
``repl`` and ``hb``; a partition or pause of a follower cuts its own; a clock step or a
pause of ``L`` removes ``leasetime``; a partition or pause of ``L`` ends the lock
sessions it keeps (``session:L``). Packet faults are outside this model.

:func:`minimal_hitting_sets` finds every inclusion-minimal set of at most ``k`` actions that
removes a resource of every support of a class: an exact search by increasing size. The
instances are a dozen actions and ``k <= 3``: the exact search enumerates *all* minimal sets
in size order directly, where a SAT/ILP solver (python-sat, OR-tools) returns one model per
call and needs blocking clauses to enumerate, and adds a compiled dependency for no speed.
:func:`compose` turns a hitting set into an ordered, overlapping schedule (which fault
first, which holds across which), by rules stated there.

**The nodes' own record.** In a run with node agents (``docs/agents.md``), each node's
journal says when its database was elected, stepped down, lost its leadership or stopped.
:func:`reigns_of` turns those records into **reigns** (:class:`Reign`: who led, from when
to when, on the run's clock), and :func:`leader_at` answers who led at a moment: the
lineage's leader is then the node the database itself elected while an outcome was
acknowledged, not the node that served most (:func:`classes_of_history`'s ``reigns``).
Before the first election line a run shows (the agents read only lines written after the
hand-over) the reigns say nothing, and the clients' view stands.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CLASS_ORDER",
    "MICRO_OPS",
    "TXNS",
    "TXN_WRITES",
    "Action",
    "Move",
    "OutcomeClass",
    "Reign",
    "agent_marks",
    "candidate_actions",
    "class_supports",
    "classes_of_history",
    "compose",
    "hypothesis_cost",
    "leader_at",
    "minimal_hitting_sets",
    "outcome_class",
    "reigns_of",
    "removed_by",
    "txn_writes",
]

#: A fault action: ``(kind, role)``, role ``leader``, ``follower:<i>``, ``successor``, ``all``.
Action = tuple[str, str]
Support = frozenset[str]
#: One step of a composed schedule: ``(f, role)`` — ``("start-partition", "leader")``,
#: ``("stop-pause", "")``.
Move = tuple[str, str]

WRITES = frozenset({"write", "add", "cas", "append", "enqueue", "transfer"})
READS = frozenset({"read", "read-set"})
LOCKS = frozenset({"acquire"})
#: Ops whose value is a list of micro-ops ``[f, key, value]`` (list-append, rw-register).
TXNS = frozenset({"txn"})
#: A transaction's micro-ops, as the single op each one is (an append adds to its list,
#: as a set's add does: a later read shows it whatever came after).
MICRO_OPS = {"append": "add", "w": "write", "write": "write", "r": "read", "read": "read"}
#: Micro-ops of a transaction that write: it is a write outcome if any of them is there.
TXN_WRITES = frozenset(m for m, op in MICRO_OPS.items() if op in WRITES)
#: Classes in the order their hypotheses are tried among equally cheap ones.
CLASS_ORDER = ("read", "tail", "write", "behind", "lock")
#: Followers the model names (``follower:0`` ... ): a 5-node cluster has four.
FOLLOWERS = 4
#: Agent log patterns after which the node that logged them no longer leads.
NOT_LEADING = frozenset({"stepped-down", "leader-lost"})
#: Agent process changes after which the node's database no longer leads.
GONE = frozenset({"exit", "stop"})


@dataclass(slots=True)
class OutcomeClass:
    """Outcomes of one class (``write``, ``read``, ``tail``, ``behind``, ``lock``; see the
    module), how many were seen, the node that served them last seen leading, and the
    resources learned (with the evidence): ``leasetime`` (a cut-off leader stops serving
    reads) or evidence only (``disk``, ``clock``, ...: what a valid test showed; the test
    is not repeated)."""

    kind: str
    leader: str = ""
    outcomes: int = 0
    learned: dict[str, str] = field(default_factory=dict)  # resource -> evidence

    @property
    def key(self) -> str:
        """The class's name (its kind)."""
        return self.kind

    def supports(self, followers: int = FOLLOWERS) -> list[Support]:
        """Every alternative support of an outcome of this class (model and learned)."""
        return class_supports(self.kind, followers, self.learned)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (:meth:`from_json` reads it back)."""
        return {"kind": self.kind, "leader": self.leader, "outcomes": self.outcomes,
                "learned": self.learned}  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> OutcomeClass:
        """The class :meth:`to_json` wrote."""
        return cls(kind=str(d["kind"]), leader=str(d.get("leader", "")),
                   outcomes=int(d.get("outcomes", 0)),
                   learned={str(k): str(v)
                            for k, v in dict(d.get("learned", {})).items()})  # fmt: skip


def class_supports(
    kind: str, followers: int, learned: Mapping[str, str] | None = None
) -> list[Support]:
    """The alternative supports of an outcome of class ``kind`` with ``followers``
    followers; ``leasetime``, once ``learned``, joins them (a support the leader's clock
    holds up; every other learned item is evidence, not a support)."""
    fs = [f"follower:{i}" for i in range(followers)]
    if kind == "write":
        out = [frozenset({"copy:leader"})] + [frozenset({f"repl:{f}", f"copy:{f}"}) for f in fs]
    elif kind == "read":
        need = (followers + 1) // 2 + 1 - 1  # a majority of followers + 1, minus the leader
        out = [frozenset(f"hb:{q}" for q in quorum) for quorum in itertools.combinations(fs, need)]
    elif kind == "tail":
        out = [frozenset({"succ"})]
    elif kind == "behind":
        out = [frozenset({"sticky"})]
    elif kind == "lock":
        out = [frozenset({"session:leader"})]
    else:
        raise ValueError(f"unknown outcome class {kind!r}")
    return out + ([frozenset({"leasetime"})] if learned and "leasetime" in learned else [])


def outcome_class(f: str, value: Any = None) -> str | None:
    """The outcome class an acknowledged op ``f`` belongs to (``write``, ``read``,
    ``lock``), or ``None`` when the model has none for it. A transaction (``txn``) is a
    write if any of its micro-ops in ``value`` writes, a read if none does; a write when
    ``value`` is not known (the live view counts ops, not values)."""
    if f in TXNS:
        return "write" if txn_writes(value) else "read"
    return "write" if f in WRITES else "read" if f in READS else "lock" if f in LOCKS else None


def txn_writes(value: Any) -> bool:
    """Whether a transaction's micro-ops ``value`` write anything (unknown: assumed to)."""
    if not isinstance(value, list):
        return True
    return any(isinstance(m, list | tuple) and m and m[0] in TXN_WRITES for m in value)


def removed_by(action: Action) -> frozenset[str]:
    """The resources ``action`` removes while it holds (see the module docstring)."""
    kind, role = action
    fs = [f"follower:{i}" for i in range(FOLLOWERS)]
    out: set[str] = set()
    if kind == "kill":
        if role == "all":
            out |= {"copy:leader", *(f"copy:{f}" for f in fs)}
        elif role == "leader":
            out |= {"copy:leader", "sticky"}
        elif role == "successor":
            out.add("succ")
        else:
            out.add(f"copy:{role}")
    elif kind == "partition":
        if role == "leader":
            out |= {f"{r}:{f}" for f in fs for r in ("repl", "hb")} | {"sticky", "session:leader"}
        elif role == "successor":
            out.add("succ")
        else:
            out |= {f"repl:{role}", f"hb:{role}"}
    elif kind == "pause":
        if role == "leader":
            out |= {"leasetime", "sticky", "session:leader"}
        elif role.startswith("follower:"):
            out |= {f"repl:{role}", f"hb:{role}"}
    elif kind == "clock" and role == "leader":
        out.add("leasetime")
    return frozenset(out)


def candidate_actions(kinds: Iterable[str], followers: int = FOLLOWERS) -> list[Action]:
    """The model's actions for the requested ``kinds``."""
    ks = set(kinds)
    fs = [f"follower:{i}" for i in range(followers)]
    out: list[Action] = []
    if "partition" in ks:
        out += [("partition", "leader"), *(("partition", f) for f in fs)]
        out.append(("partition", "successor"))
    if "pause" in ks:
        out += [("pause", "leader"), *(("pause", f) for f in fs)]
    if "clock" in ks:
        out.append(("clock", "leader"))
    if "kill" in ks:
        out += [("kill", "all"), ("kill", "leader"), *(("kill", f) for f in fs)]
        out.append(("kill", "successor"))
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


def symmetric_key(h: Sequence[Action]) -> tuple[Action, ...]:
    """``h`` with follower indices renumbered in order of appearance: followers are
    interchangeable, so ``{pause follower:2}`` and ``{pause follower:0}`` are one test."""
    names: dict[str, str] = {}
    out = []
    for kind, role in h:
        if role.startswith("follower:"):
            role = names.setdefault(role, f"follower:{len(names)}")
        out.append((kind, role))
    return tuple(out)


#: Preconditions of the derived classes: the moves that create the outcomes (see module).
PRECONDITION: dict[str, tuple[Move, ...]] = {
    "tail": (("start-partition", "leader"), ("stop-partition", "")),
    "behind": (("start-partition", "follower:0"),),
}


def compose(cls: str, h: Sequence[Action]) -> tuple[Move, ...]:
    """The ordered schedule testing hitting set ``h`` of class ``cls``:

    * a derived class's precondition first (it creates the outcomes);
    * a **pause of the leader** before its cut (the pause itself stops the lease's
      renewal, at its freshest) and resumed while the cut holds; a **clock step** of the
      leader after its cut (before it, renewals in the stepped frame restart the lease
      honestly), undone while the cut holds — the time faults act inside the cut;
    * otherwise partitions and pauses before kills (cut replication before a copy is
      lost), and heals in reverse order;
    * a partition that follows a precondition's partition replaces it (one partition at a
      time: the cut-off follower rejoins as the leader is cut).
    """
    pre = PRECONDITION.get(cls, ())
    acts = list(h)
    starts: list[Move] = []
    stops: list[Move] = []
    time_faults = [a[0] for a in acts if a[0] in ("pause", "clock") and a[1] == "leader"]
    if ("partition", "leader") in acts and time_faults:
        if time_faults[0] == "pause":
            return (*pre, ("start-pause", "leader"), ("start-partition", "leader"),
                    ("stop-pause", ""), ("stop-partition", ""))  # fmt: skip
        return (*pre, ("start-partition", "leader"), ("start-clock", "leader"),
                ("stop-clock", ""), ("stop-partition", ""))  # fmt: skip
    order = {"partition": 0, "pause": 1, "clock": 2, "kill": 3}
    for kind, role in sorted(acts, key=lambda a: order.get(a[0], 9)):
        starts.append((f"start-{kind}", role))
        stops.insert(0, (f"stop-{kind}", ""))
    if pre and pre[-1][0] == "start-partition" and stops and stops[-1] == ("stop-partition", ""):
        # The precondition's cut is replaced by the next partition (not healed first).
        return (*pre, *starts, *stops)
    if pre and pre[-1][0] == "start-partition":
        return (*pre, *starts, *stops, ("stop-partition", ""))
    return (*pre, *starts, *stops)


def hypothesis_cost(cls: str, h: Sequence[Action]) -> int:
    """Fault operations the composed schedule makes (the run's budget counts these)."""
    return len(compose(cls, h))


@dataclass(frozen=True, slots=True)
class Reign:
    """``node`` led from ``start`` to ``end`` seconds on the run's clock (``end`` is
    ``inf`` while the records show no end), by the node agents' records."""

    node: str
    start: float
    end: float = float("inf")


def ends_reign(what: str) -> bool:
    """Whether an agent record ``what`` (``log:<pattern>``, ``process:<change>``) says the
    node that sent it no longer leads."""
    return what.removeprefix("log:") in NOT_LEADING or what.removeprefix("process:") in GONE


def reigns_of(records: Iterable[tuple[str, float | None, str]]) -> list[Reign]:
    """The reigns the agents' records show, in order. ``records`` are ``(node, run time,
    what)``, ``what`` being ``log:<pattern>`` or ``process:<change>`` (as
    :class:`nemeses.scheduler.AgentObservations` keeps them), in any order (sorted here by
    time; records without a time are skipped). A ``became-leader`` line starts the node's
    reign and ends any other (the database elected a successor); the node's
    ``stepped-down`` or ``leader-lost`` line, or its process exiting or stopping, ends it.
    A ``stepped-down`` line (the node *was* leader) of a node before any reign of its own
    shows the reign it had when the records began (the agents read only lines written after
    the hand-over): it starts at ``-inf`` and ends at that line or at the first election
    seen, whichever came first (from then on the successor led)."""
    timed = sorted((t, i, n, w) for i, (n, t, w) in enumerate(records) if t is not None)
    out: list[Reign] = []
    open_: Reign | None = None
    for t, _i, node, what in timed:
        if what == "log:became-leader":
            if open_ is not None:
                out.append(Reign(open_.node, open_.start, t))
            open_ = Reign(node, t)
        elif open_ is not None and node == open_.node and ends_reign(what):
            out.append(Reign(open_.node, open_.start, t))
            open_ = None
        elif what == "log:stepped-down" and not any(
            r.node == node for r in [*out, *([open_] if open_ else [])]
        ):
            first = min((r.start for r in [*out, *([open_] if open_ else [])]), default=t)
            out.insert(0, Reign(node, float("-inf"), min(t, first)))
    if open_ is not None:
        out.append(open_)
    return sorted(out, key=lambda r: r.start)


def agent_marks(
    journals: Mapping[str, Iterable[Mapping[str, Any]]],
) -> list[tuple[str, float | None, str]]:
    """``(node, run time, what)`` of every ``log`` and ``process`` record of the nodes'
    agent journals (node -> its records), as :func:`reigns_of` takes them."""
    out: list[tuple[str, float | None, str]] = []
    for node, recs in journals.items():
        for rec in recs:
            run = rec.get("run")
            at = float(run) if isinstance(run, int | float) else None
            if rec.get("e") == "log" and isinstance(rec.get("patterns"), list):
                out += [(node, at, f"log:{p}") for p in rec["patterns"] if isinstance(p, str)]
            elif rec.get("e") == "process" and isinstance(rec.get("change"), str):
                out.append((node, at, f"process:{rec['change']}"))
    return out


def leader_at(reigns: Sequence[Reign], t: float) -> str | None:
    """The node whose reign holds ``t``, the latest begun if several do (a deposed leader
    that has not heard of its successor yet); ``None``: no reign does, the records do not
    say. ``reigns`` in order of their starts, as :func:`reigns_of` gives them."""
    for r in reversed(reigns):
        if r.start <= t < r.end:
            return r.node
    return None


def classes_of_history(
    events: Iterable[Mapping[str, Any]],
    *,
    until: float | None = None,
    cuts: Sequence[tuple[str, float, float]] = (),
    reigns: Sequence[Reign] = (),
) -> dict[str, OutcomeClass]:
    """The outcome classes of a history: acknowledged (``ok``) writes and lock acquires,
    and reads completed before ``until`` seconds (the fault window's end; ``None``: all),
    by the node that served them (completions without a ``node`` are skipped); and, for
    each ``cuts`` window ``(node, from, to)`` in which the node that served most writes
    was cut off, the writes invoked on it that were not acknowledged (``tail``). The
    leader of a class is the node that served most of it; with the agents' ``reigns``, an
    outcome acknowledged during a reign counts for the node that reigned (the node the
    database elected), one outside every reign for the node that served it."""
    served: dict[str, dict[str, int]] = {}
    started: dict[Any, tuple[float, str | None]] = {}
    unacked: list[tuple[float, str | None, str | None]] = []
    for e in events:
        p = e.get("process")
        if not isinstance(p, int):
            continue
        t = int(e.get("time", 0)) / 1e9
        f = str(e.get("f"))
        typ = e.get("type")
        if typ == "invoke":
            started[p] = (t, e.get("node"))
            continue
        inv = started.pop(p, (t, None))
        if typ in ("fail", "info") and outcome_class(f, e.get("value")) == "write":
            unacked.append((inv[0], inv[1], e.get("node")))
        if typ != "ok" or not e.get("node"):
            continue
        kind = outcome_class(f, e.get("value"))
        if kind is None or (kind == "read" and until is not None and t >= until):
            continue
        by = served.setdefault(kind, {})
        node = (leader_at(reigns, t) if reigns else None) or str(e["node"])
        by[node] = by.get(node, 0) + 1
    out: dict[str, OutcomeClass] = {}
    for kind, by in served.items():
        leader = max(sorted(by), key=lambda n: by[n])
        out[kind] = OutcomeClass(kind=kind, leader=leader, outcomes=sum(by.values()))
    for node, t0, t1 in cuts:
        tail = [u for u in unacked if t0 <= u[0] < t1 and node in (u[1], u[2])]
        if tail:
            c = out.setdefault("tail", OutcomeClass(kind="tail", leader=node))
            c.outcomes += len(tail)
    return out
