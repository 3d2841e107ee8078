"""Faults (nemeses): what clew can do to a cluster, and how it is always undone.

Vocabulary
----------

*fault kind*
    One module per kind (``nemeses.partition`` now; pause, kill, clock and packet faults
    later), each with pure planners, pure command builders and one :class:`Nemesis`.
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
    A fault that heals itself if clew disappears. Partitions (nft driver) can carry one:
    the kernel expires the drop rule.
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
