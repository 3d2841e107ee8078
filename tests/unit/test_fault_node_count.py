"""Fault kinds that need more nodes than the run has are refused before any cluster comes
up (exit 254), naming the kind, the node count and what would work."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import ConfigError
from harness.runplan import check_node_count
from harness.spec import TestSpec as Spec
from nemeses import kinds as fault_kinds


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to bring a cluster up."""
    import harness.runner

    def up(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a cluster was brought up")

    monkeypatch.setattr(harness.runner, "_bring_up", up)


def test_partition_and_packet_need_two_nodes() -> None:
    spec = Spec(suite="etcd", nodes=1, faults=("partition",))
    with pytest.raises(ConfigError) as e:
        check_node_count(spec)
    msg = str(e.value)
    assert "partition faults need at least 2 nodes" in msg
    assert "--nodes 1" in msg and "--nodes 2" in msg and "pause" in msg
    with pytest.raises(ConfigError, match="packet faults need at least 2 nodes"):
        check_node_count(dataclasses.replace(spec, faults=("pause", "packet")))
    check_node_count(dataclasses.replace(spec, faults=("pause", "kill", "clock")))
    check_node_count(dataclasses.replace(spec, nodes=2, faults=("partition", "packet")))
    check_node_count(dataclasses.replace(spec, faults=()))


def test_a_replayed_schedule_kind_counts_too() -> None:
    spec = Spec(suite="etcd", nodes=1, faults=())
    steps = [{"at": 1.0, "f": "start-partition", "value": None}]
    with pytest.raises(ConfigError, match="partition faults need at least 2"):
        check_node_count(spec, steps)


def test_too_few_nodes_lists_kinds_that_fit() -> None:
    why = fault_kinds.too_few_nodes(["partition"], 1)
    assert why is not None and "kill" in why and "packet" not in why.split("other")[1]
    assert fault_kinds.too_few_nodes(["partition"], 2) is None
    assert fault_kinds.too_few_nodes(["no-such-kind"], 1) is None


@pytest.mark.parametrize(
    "args",
    [
        ["test", "etcd", "--nodes", "1", "--time-limit", "3"],
        ["test", "etcd", "--nodes", "1", "--faults", "packet"],
        ["campaign", "etcd", "--nodes", "1", "--runs", "1"],
    ],
)
def test_cli_refuses_before_any_cluster(args: list[str], tmp_path: Path, no_cluster: None) -> None:
    store = tmp_path / "store"
    result = CliRunner().invoke(cli, [*args, "--store", str(store)], catch_exceptions=False)
    assert result.exit_code == 254, result.output
    assert "need at least 2 nodes" in result.output and "--nodes 2" in result.output
    assert not store.exists() or not any(store.rglob("*"))
