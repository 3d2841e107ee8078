"""The fault-kind registry: one home per kind, read by spec validation, the schedule, heal
order, preflight, doctor, --help and the docs."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from clusters.base import Capability, Cluster
from harness.errors import ConfigError
from harness.spec import load_spec
from nemeses import kinds
from nemeses.abilities import Killable, Pausable, lacking
from nemeses.schedule import plan_schedule, validate_schedule

ROOT = Path(__file__).resolve().parents[2]
NODES = ["n1", "n2", "n3", "n4", "n5"]


class NoAbilities:
    name = "bare"


class Full:
    """A DB adapter with every ability of nemeses.abilities."""

    name = "full"
    data_dir = "/opt/full/data"
    clock_reads = "libc"

    async def wait_healthy(self, ctx: Any, node: Any, remote: Any, *, within: float) -> None: ...
    async def running(self, ctx: Any, node: Any, remote: Any) -> bool: ...
    async def primaries(self, ctx: Any, remotes: Any) -> list[str]: ...
    def start_script(self, ctx: Any, node: Any) -> str: ...

    async def kill(self, ctx: Any, node: Any, remote: Any) -> None: ...
    async def start(self, ctx: Any, node: Any, remote: Any) -> None: ...
    async def pause(self, ctx: Any, node: Any, remote: Any) -> None: ...
    async def resume(self, ctx: Any, node: Any, remote: Any) -> None: ...


def cluster(*caps: Capability) -> Cluster:
    return Cluster(provider="local", name="t", nodes=(), state_dir="", capabilities=caps)


def test_builtin_kinds_in_listing_order() -> None:
    assert kinds.names()[:5] == ("partition", "pause", "kill", "clock", "packet")


def test_docs_table_is_the_registry() -> None:
    text = (ROOT / "docs" / "faults.md").read_text()
    begin = text.index("-->", text.index("<!-- fault-kinds:begin")) + len("-->\n")
    end = text.index("<!-- fault-kinds:end -->")
    assert text[begin:end].strip() == kinds.markdown_table(), (
        "docs/faults.md is stale: paste the output of "
        "`python -c 'from nemeses.kinds import markdown_table; print(markdown_table())'`"
    )


def test_every_kind_plans_within_its_space_and_builds_its_package() -> None:
    from nemeses.abilities import ABILITIES
    from nemeses.kinds import PackageArgs

    assert all(isinstance(Full(), a) for a in ABILITIES.values())
    for kind in kinds.all_kinds():
        value = kind.plan(NODES, random.Random(1), False)
        assert value is not None and "primaries" not in repr(value)
        package = kind.package(PackageArgs(db=Full(), interval=3.0, lease=6.0))
        assert package.name == kind.name
        assert package.start_op["f"] == f"start-{kind.name}"  # type: ignore[index]
        assert kind.space.targets and kind.space.describe().startswith("targets ")


def test_abilities_are_checked_with_a_message_saying_what_would_work() -> None:
    assert lacking(NoAbilities(), [Killable, Pausable]) == ["kill/start", "pause/resume"]
    assert lacking(Full(), [Killable, Pausable]) == []
    why = kinds.problems(kinds.get("kill"), None, NoAbilities())
    assert why and "kill/start" in why[0] and "NoAbilities" in why[0]
    assert kinds.problems(kinds.get("kill"), None, Full()) == []


def test_provider_capabilities_are_checked_only_when_reported() -> None:
    part = kinds.get("partition")
    assert kinds.problems(part, cluster(), Full()) == []  # not reported: setup checks
    why = kinds.problems(
        part, cluster(Capability(name="partition", available=False, detail="no nft")), Full()
    )
    assert why and "no nft" in why[0] and "clew doctor" in why[0]
    packet = kinds.get("packet")
    one_way = cluster(
        Capability(name="packet-netem", available=False, detail="no netem"),
        Capability(name="packet-loss-iptables", available=True),
    )
    assert kinds.problems(packet, one_way, Full()) == []  # any one of the group will do


def test_heal_order_reads_the_registry() -> None:
    order = sorted(["kill", "partition", "pause", "packet", "clock"], key=kinds.heal_rank)
    assert order.index("partition") < order.index("pause") < order.index("kill")
    assert order.index("clock") < order.index("pause")


def test_heal_order_holds_in_a_fresh_process() -> None:
    """heal_rank loads the built-in kinds itself (before, a fresh process ranked every
    kind 0 and healed them alphabetically: kill before partition)."""
    code = (
        "from nemeses import kinds; "
        "print(','.join(sorted(['kill', 'partition', 'pause', 'clock'], key=kinds.heal_rank)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    order = out.stdout.strip().split(",")
    assert order.index("partition") < order.index("pause") < order.index("kill"), order


def test_spec_and_schedule_validation_read_the_registry() -> None:
    with pytest.raises(ConfigError, match=r"unknown kinds \['suite-flood'\]; known: partition"):
        load_spec(faults="partition,suite-flood")
    steps = plan_schedule(["pause", "kill"], NODES, seed=3, time_limit=30, interval=3)
    assert validate_schedule(steps, "x")
    with pytest.raises(ConfigError, match="one of partition, pause, kill"):
        validate_schedule([{"at": 1, "f": "start-flood"}], "x")


def test_a_suite_contributes_its_own_kind(tmp_path: Path) -> None:
    suite = tmp_path / "floodsuite.py"
    suite.write_text(
        textwrap.dedent(
            """
            from harness.api import Suite
            from nemeses.kinds import FaultKind, ParamSpace
            from nemeses.process import pause_package

            FAULT_KINDS = (
                FaultKind(
                    name="suite-flood",
                    summary="a suite's own fault",
                    heals_by="stopping it",
                    space=ParamSpace(targets=("one",)),
                    plan=lambda nodes, rng, roles: {"targets": "one", "nodes": [nodes[0]]},
                    package=lambda args: pause_package(args.db, interval=args.interval),
                    heal_priority=5,
                ),
            )
            SUITE = Suite(name="flood", db=lambda ctx: None, workloads={}, default_workload="x")
            """
        )
    )
    try:
        check_contributed(suite)
    finally:
        kinds.unregister("suite-flood")
    assert "suite-flood" not in kinds.names()


def check_contributed(suite: Path) -> None:
    spec = load_spec(suite=str(suite), faults="partition,suite-flood")
    assert spec.faults == ("partition", "suite-flood")
    assert "suite-flood" in kinds.names()
    assert kinds.heal_rank("suite-flood") == (5, "suite-flood")
    steps = plan_schedule(["suite-flood"], NODES, seed=1, time_limit=10, interval=2)
    assert steps[0] == {
        "at": 2.0,
        "f": "start-suite-flood",
        "value": {"targets": "one", "nodes": ["n1"]},
    }
    load_spec(suite=str(suite), faults="suite-flood")  # loading the file again replaces its kind


def test_a_suite_cannot_shadow_a_builtin_kind() -> None:
    fake = kinds.FaultKind(
        name="partition", summary="x", heals_by="x", space=kinds.ParamSpace(targets=("one",)),
        plan=lambda nodes, rng, roles: None, package=lambda args: None,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    with pytest.raises(ConfigError, match="built in"):
        kinds.register_all([fake])


def test_doctor_lists_every_kind_from_its_declared_needs() -> None:
    from clusters.doctor import fault_kind_checks

    caps = fault_kind_checks(
        [
            Capability(name="partition", available=True),
            Capability(name="pause", available=True),
            Capability(name="kill", available=False, detail="no signals here"),
        ]
    )
    by = {c.name: c for c in caps}
    assert set(by) >= {f"fault:{k}" for k in kinds.names()[:5]}
    assert by["fault:partition"].available and by["fault:pause"].available
    assert "pause/resume" in by["fault:pause"].detail
    assert not by["fault:kill"].available and "no signals here" in by["fault:kill"].detail
    assert not by["fault:packet"].available
    assert "not offered by the local provider" in by["fault:packet"].detail  # was "not reported"


def test_help_lists_every_kind() -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    out = CliRunner().invoke(cli, ["test", "--help"], terminal_width=400).output
    assert "partition, pause, kill, clock, packet" in out.replace("\n", " ").replace("  ", " ")


def test_every_action_of_the_space_gives_a_value_its_nemesis_accepts() -> None:
    from nemeses.clock import clock_fault_from_json
    from nemeses.packet import packet_from_json
    from nemeses.partition import grudge_from_json, validate_grudge
    from nemeses.scheduler import FaultSpace
    from nemeses.targets import target_nodes

    space = FaultSpace.of(list(kinds.names()), NODES, roles=True, interval=2, time_limit=60)
    actions = space.actions()
    assert ("pause", "majority") in actions and ("partition", "bridge") in actions
    assert ("kill", "primaries") in actions and ("clock", None) in actions
    no_roles = FaultSpace.of(["kill"], NODES, roles=False, interval=2, time_limit=60)
    assert ("kill", "primaries") not in no_roles.actions()
    rng = random.Random(4)
    for kind, target in actions:
        value = space.value_for(kind, target, rng)
        if target == "primaries":
            assert value in ("primaries", {"targets": "primaries"})
        elif kind == "partition":
            validate_grudge(grudge_from_json(value), NODES)
        elif kind == "clock":
            clock_fault_from_json(value, NODES)
        elif kind == "packet":
            packet_from_json(value, NODES)
        else:
            assert value["targets"] == target and target_nodes(value, NODES), (kind, value)
    with pytest.raises(ConfigError, match="not 'bridge'"):
        space.value_for("pause", "bridge", rng)
