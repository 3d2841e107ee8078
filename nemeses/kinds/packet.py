"""The ``packet`` fault kind: loss, delay, jitter and duplication between nodes."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from nemeses.base import NemesisPackage
from nemeses.kinds import FaultKind, PackageArgs, ParamSpace


def plan_packet(nodes: Sequence[str], rng: random.Random, roles: bool) -> Any:
    """A packet fault from a minority of senders (:func:`nemeses.packet.plan_packet`)."""
    from nemeses.packet import plan_packet as plan

    return plan(nodes, rng)


def packet_package(args: PackageArgs) -> NemesisPackage:
    """The packet nemesis."""
    from nemeses.packet import packet_package as make

    return make(interval=args.interval, timeout=args.timeout)


def _space() -> ParamSpace:
    from nemeses.packet import (
        DEFAULT_BEHAVIOURS,
        DEFAULT_DELAY_RANGE_MS,
        DEFAULT_DUPLICATE_RANGE,
        DEFAULT_LOSS_RANGE,
    )

    return ParamSpace(
        targets=("minority", "nodes"),
        variants=tuple(DEFAULT_BEHAVIOURS),
        magnitudes={
            "loss": (*DEFAULT_LOSS_RANGE, "of packets"),
            "delay": (*DEFAULT_DELAY_RANGE_MS, "ms"),
            "duplicate": (*DEFAULT_DUPLICATE_RANGE, "of packets"),
        },
    )


KINDS = (
    FaultKind(
        name="packet",
        summary="loss, delay and jitter on traffic from target nodes to chosen peers: "
        "netem where the kernel has it; otherwise iptables' statistic match for loss and "
        "an NFQUEUE delayer for delay",
        heals_by="deleting the tagged rules, stopping the delayer (which fails open)",
        space=_space(),
        plan=plan_packet,
        package=packet_package,
        provider_needs=(("packet-netem", "packet-loss-iptables", "packet-delay-nfqueue"),),
        heal_priority=0,
        min_nodes=2,
        order=50,
    ),
)
