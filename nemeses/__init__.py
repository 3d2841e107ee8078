"""Faults (nemeses): what clew can do to a cluster, and how it is always undone.

Vocabulary
----------

*fault kind*
    One :class:`nemeses.kinds.FaultKind` per kind, one file each in ``nemeses/kinds/``
    (a suite may contribute more): name, declared parameter space, planner, package
    factory, the provider and DB abilities it needs (:mod:`nemeses.abilities`), heal
    priority, role resolution. The mechanics live in ``nemeses.partition``,
    ``nemeses.process`` (pause, kill, through the DB adapter), ``nemeses.clock``
    (libfaketime or the system clock), ``nemeses.packet`` (loss, delay; netem or iptables +
    an NFQUEUE delayer); ``nemeses/kinds/disk_full.py`` is a kind in one file. See
    ``docs/faults.md``.
*scheduler*
    ``nemeses.scheduler``: asked during the run for the next fault op, seeing the fault
    space, the active faults, the ledger and live observations; ``random`` (seeded) and
    ``replay`` are two. ``nemeses.schedule``: the random scheduler's plan, saved as
    ``schedule.json``; a stored ledger read back into a schedule for ``clew replay``.
*ledger*
    ``nemeses.ledger``: ``faults.jsonl``, every op recorded before (intent) and after
    (applied / healed / error) it acts, with resolved targets and the commands run.
*fault set*
    ``nemeses.faultset.FaultSet``: every kind of a run behind one nemesis; resolves roles
    (``primaries``), writes the ledger, holds leases, heals all and verifies.
*op*
    A nemesis op is a dict like a client op: ``{"f": "start-partition", "value": None}``.
    Its completion has ``"type": "info"`` and ``"value"`` = what was actually applied, so
    the history records every fault exactly and can replay it.
*grudge*
    A partition as data: node -> the nodes whose packets it drops
    (``{"n1": frozenset({"n3", "n4", "n5"}), ...}``). Shapes (:data:`SHAPES`):
    ``halves``, ``random-halves``, ``one``, ``minority-third``, ``bridge``,
    ``majorities-ring``.
*tag*
    Every object clew creates on a node carries its tag (nft ``table inet clew``, iptables
    chain ``CLEW-PARTITION``); heal removes only tagged objects, never anyone else's.
*heal*
    ``heal_all`` is idempotent, needs no memory of what was injected (it works after a
    controller crash) and runs on every node in parallel; ``verify_healed`` lists per node
    what is left. ``setup`` heals leftovers first; ``teardown`` heals.
*lease*
    A fault that heals itself if clew disappears: nft partitions expire in the kernel, and
    the node-side guard (``nemeses.guard`` / ``nemeses.guard_agent``) heals every kind
    whose lease the controller stopped renewing, timed by the node's monotonic clock.
*package*
    :class:`NemesisPackage`: a nemesis plus its schedule as data (start/stop ops, interval,
    final healing ops, plot name and colour), for the runner to compose.

Partition ops
-------------

=====================  ===================================================  ===============
op                     value                                                completion value
=====================  ===================================================  ===============
``start-partition``    ``None`` (configured shape), a shape name, or a      the grudge
                       grudge (node -> list of nodes)                       applied
``stop-partition``     ignored                                              ``"network-healed"``
=====================  ===================================================  ===============
"""

from __future__ import annotations

from nemeses.base import (
    DEFAULT_FAULT_TIMEOUT,
    DEFAULT_INTERVAL,
    Nemesis,
    NemesisPackage,
    OpSpec,
    Perf,
    check_outcomes,
    completion,
    resolve_op,
)
from nemeses.partition import (
    HEALED,
    SHAPES,
    Grudge,
    PartitionNemesis,
    Planner,
    bridge,
    complete_grudge,
    connected,
    grudge_from_json,
    grudge_to_json,
    halves,
    isolate_one,
    majorities_ring,
    minority_third,
    partition_package,
    plan,
    random_halves,
    validate_grudge,
)

__all__ = [
    "DEFAULT_FAULT_TIMEOUT",
    "DEFAULT_INTERVAL",
    "HEALED",
    "SHAPES",
    "Grudge",
    "Nemesis",
    "NemesisPackage",
    "OpSpec",
    "PartitionNemesis",
    "Perf",
    "Planner",
    "bridge",
    "check_outcomes",
    "complete_grudge",
    "completion",
    "connected",
    "grudge_from_json",
    "grudge_to_json",
    "halves",
    "isolate_one",
    "majorities_ring",
    "minority_third",
    "partition_package",
    "plan",
    "random_halves",
    "resolve_op",
    "validate_grudge",
]
