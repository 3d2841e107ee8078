"""The ``partition`` fault kind: packets dropped between groups of nodes."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from harness.errors import NemesisError
from nemeses.base import NemesisPackage
from nemeses.kinds import FaultKind, PackageArgs, ParamSpace

#: Shapes the planner draws from (``halves`` is the fixed split, left to explicit ops), with
#: the fewest nodes each needs.
PLANNED_SHAPES = {"one": 2, "random-halves": 2, "bridge": 3, "minority-third": 4,
                  "majorities-ring": 4}  # fmt: skip


def plan_partition(nodes: Sequence[str], rng: random.Random, roles: bool) -> Any:
    """A grudge (as JSON) of a shape drawn from those that fit ``nodes``, or ``"primaries"``
    (the database's leaders cut off, resolved during the run) when ``roles``."""
    from nemeses.partition import SHAPES, grudge_to_json, plan

    shapes = [s for s in SHAPES if s in PLANNED_SHAPES and len(nodes) >= PLANNED_SHAPES[s]]
    if roles and len(nodes) >= 2:
        shapes.append("primaries")
    if not shapes:
        raise NemesisError(f"no partition shape fits {len(nodes)} node(s)")
    shape = rng.choice(shapes)
    if shape == "primaries":
        return "primaries"
    return grudge_to_json(plan(shape, nodes, rng))


def resolve_partition(value: Any, primaries: list[str], nodes: list[str]) -> Any:
    """``"primaries"`` as a grudge cutting the primaries off from every other node."""
    from nemeses.partition import complete_grudge, grudge_to_json

    rest = [n for n in nodes if n not in primaries]
    grudge = complete_grudge([primaries, rest]) if primaries and rest else {}
    return grudge_to_json(grudge)


def aim_partition(target: str, nodes: Sequence[str], rng: random.Random) -> Any:
    """A grudge (as JSON) of shape ``target``; ``"primaries"``; or for ``nodes``, a random
    non-empty proper subset of ``nodes`` cut off from the rest."""
    from nemeses.partition import complete_grudge, grudge_to_json, plan

    if target == "primaries":
        return "primaries"
    if target == "nodes":
        if len(nodes) < 2:
            raise NemesisError(f"no partition fits {len(nodes)} node(s)")
        cut = rng.sample(list(nodes), rng.randint(1, len(nodes) - 1))
        return grudge_to_json(complete_grudge([cut, [n for n in nodes if n not in cut]]))
    return grudge_to_json(plan(target, nodes, rng))


def partition_package(args: PackageArgs) -> NemesisPackage:
    """The partition nemesis with the run's interval and lease."""
    from nemeses.partition import partition_package as make

    return make(interval=args.interval, lease=args.lease, timeout=args.timeout)


KINDS = (
    FaultKind(
        name="partition",
        summary="drops packets between groups of nodes (nftables, or iptables where nft "
        "is missing); shapes drawn as networkx graphs of who can talk to whom",
        heals_by="deleting clew's table/chain; the kernel expires the drop rules after the lease",
        space=ParamSpace(targets=(*PLANNED_SHAPES, "primaries", "nodes")),
        plan=plan_partition,
        package=partition_package,
        provider_needs=(("partition",),),
        heal_priority=0,
        min_nodes=2,
        order=10,
        resolve=resolve_partition,
        aim=aim_partition,
    ),
)
