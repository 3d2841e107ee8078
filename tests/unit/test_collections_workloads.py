"""The workload generators and the suites' new workloads, without a cluster."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from clusters.base import Cluster, Node
from harness.api import TestContext as Ctx  # (a `Test*` name would be collected)
from harness.errors import ConfigError
from harness.generator.testing import simulate
from harness.suites import load_suite
from harness.workloads.bank import BankGenerator, bank_shape, initial_balances
from harness.workloads.long_fork import LongForkGenerator
from harness.workloads.queue import QueueGenerator
from harness.workloads.set_full import SetFullGenerator


def _ctx(**options: Any) -> Ctx:
    cluster = Cluster(
        provider="local",
        name="t",
        nodes=(Node(name="n1", host="10.0.0.1"),),
        state_dir="/nonexistent",
    )
    return Ctx(name="t", cluster=cluster, options=options, rng=random.Random(1),
               run_dir=Path("/nonexistent"), concurrency=4, time_limit=1.0)  # fmt: skip


def test_bank_generator_and_opening_balances() -> None:
    assert initial_balances(3, 100) == {0: 34, 1: 33, 2: 33}
    gen = BankGenerator(random.Random(3), bank_shape({"accounts": 3, "max_transfer": 2}))
    ops = [gen() for _ in range(200)]
    transfers = [o["value"] for o in ops if o["f"] == "transfer"]
    assert 50 < len(transfers) < 150
    assert all(t["from"] != t["to"] and 1 <= t["amount"] <= 2 for t in transfers)
    with pytest.raises(ConfigError, match="accounts"):
        bank_shape({"accounts": 1})


def test_long_fork_generator_writes_each_key_once_and_reads_whole_groups() -> None:
    gen = LongForkGenerator(random.Random(5), group_size=3, reads=0.5)
    ops = [gen() for _ in range(300)]
    written = [o["value"][0][1] for o in ops if o["f"] == "write"]
    assert written == list(range(len(written)))
    for o in ops:
        if o["f"] == "read":
            keys = sorted(m[1] for m in o["value"])
            assert keys == list(range(keys[0], keys[0] + 3)) and keys[0] % 3 == 0


def test_unique_values_for_sets_and_queues() -> None:
    s, q = (
        SetFullGenerator(random.Random(1), reads=0.3),
        QueueGenerator(random.Random(1), dequeues=0.4),
    )
    adds = [o["value"] for o in (s() for _ in range(100)) if o["f"] == "add"]
    enqueues = [o["value"] for o in (q() for _ in range(100)) if o["f"] == "enqueue"]
    assert len(set(adds)) == len(adds) and len(set(enqueues)) == len(enqueues)


@pytest.mark.parametrize(
    ("suite", "workloads"),
    [
        ("etcd", ["set-full", "bank", "unique-ids", "lock"]),
        ("postgres", ["bank", "counter", "set-full", "unique-ids", "long-fork", "queue", "lock"]),
    ],
)
def test_suites_name_the_workloads(suite: str, workloads: list[str]) -> None:
    s = load_suite(suite)
    ctx = _ctx(isolation="read-committed")
    for name in workloads:
        w = s.workloads[name](ctx)
        assert w.name == name and w.description
        client = w.client()
        assert hasattr(client, "invoke")


def test_lock_workload_cycles_acquire_hold_release_per_thread() -> None:
    w = load_suite("postgres").workloads["lock"](_ctx(hold=0.05))
    from harness.generator import clients, time_limit

    h = simulate(time_limit(1, clients(w.generator(_ctx()))), concurrency=2, latency=0.01)
    fs = [o["f"] for o in h if o["type"] == "invoke" and o["process"] == 0]
    assert fs[:4] == ["acquire", "release", "acquire", "release"] and len(fs) > 10
