"""Cluster-wide faults struck by node agents (issue 21): partition, clock and packet steps
compiled into one side per node (nemeses/agent.py), with the very scripts each kind's
nemesis runs on that node; the agent feeding a strike its stdin (nemeses/guard_agent.py);
and the ledger records of each side.

The nemeses are set up against fake nodes that answer their probes (the unit under test is
the compiler: which node strikes what); the scripts are compared with what the same
nemesis sends when the controller strikes. The same on a real cluster, with nftables:
tests/integration/test_agent_sides.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

import nemeses.guard_agent as agent_module
from clusters.base import Capability, Cluster, Node
from harness.api import TestContext as Ctx  # (a `Test*` name would be collected)
from harness.errors import ConfigError
from harness.record import fault_windows
from nemeses import clock_scripts
from nemeses.agent import AGENT_LEASE, _union, compile_slices, ledger_records
from nemeses.clock import ClockNemesis
from nemeses.packet import PacketNemesis, delayer_program, packet_from_json
from nemeses.partition import PartitionNemesis, grudge_from_json
from nemeses.partition_scripts import heal_script as partition_heal

NODES = ("n1", "n2", "n3")
PACKET_PROBE = "iptables\nip6tables\nstatistic\nnfqueue-rule\npython\nnfqueue-bind\n"


class FakeRemote:
    """A node that answers the nemeses' probes (nft and iptables work, no netem) and
    records every command with its stdin."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[tuple[str, str | None]] = []

    async def run(
        self, cmd: str | Sequence[str], *, stdin: str | None = None, **_: Any
    ) -> SimpleNamespace:
        text = cmd if isinstance(cmd, str) else " ".join(cmd)
        self.sent.append((text, stdin))
        if "nfqueue-bind" in text:
            return SimpleNamespace(stdout=PACKET_PROBE)
        if "nft list tables" in text:
            return SimpleNamespace(stdout="nft\niptables\n")
        return SimpleNamespace(stdout="")


class FakeDB:
    """The abilities agent steps use, as data."""

    name = "fake"
    pid_file = "/opt/fake/pid"
    clock_reads = "libc"
    log_patterns: ClassVar[dict[str, str]] = {"became-leader": "elected"}

    def kill_script(self, ctx: Any, node: Node) -> str:
        return f"kill-{node.name}"

    def start_script(self, ctx: Any, node: Node) -> str:
        return f"start-{node.name}"

    def log_files(self, ctx: Any, node: Node) -> list[str]:
        return ["/opt/fake/log"]


def ctx() -> Ctx:
    nodes = tuple(Node(name=n, host=f"10.0.0.{i}") for i, n in enumerate(NODES, 1))
    caps = (Capability(name="clock-libfaketime", available=True),
            Capability(name="clock-system", available=False, detail="shared"))  # fmt: skip
    cluster = Cluster(provider="local", name="x", nodes=nodes, state_dir="", capabilities=caps)
    return Ctx(name="t", cluster=cluster, options={}, rng=random.Random(1),
               run_dir=Path("."), concurrency=1, time_limit=10)  # fmt: skip


def set_up(nemesis: Any) -> tuple[Any, dict[str, FakeRemote]]:
    remotes = {n: FakeRemote(n) for n in NODES}
    asyncio.run(nemesis.setup(ctx(), remotes))
    for r in remotes.values():
        r.sent.clear()
    return nemesis, remotes


def strikes(slices: dict[str, Any], sid: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, sl in slices.items() for s in sl["strikes"] if s["id"] == sid}


def test_a_partition_at_an_offset_is_struck_by_every_node_with_the_controllers_scripts() -> None:
    nemesis, remotes = set_up(PartitionNemesis())  # no kernel lease: scripts comparable
    grudge = {"n1": ["n3"], "n3": ["n1"]}
    steps = [{"f": "start-partition", "value": grudge, "at": 2.0, "hold": 1.5}]
    sides = strikes(compile_slices(steps, ctx(), FakeDB(), {"partition": nemesis}), "s1")
    assert set(sides) == {"n1", "n3"}  # n2 holds no grudge: nothing to strike there
    assert sides["n1"]["side"] == {"drops_from": ["n3"]}
    assert sides["n1"]["value"] == grudge and sides["n1"]["node"] == "n1"
    assert all(s["at"] == 2.0 and s["heal"] == partition_heal("clew") for s in sides.values())
    # The controller striking the same grudge sends n1 and n3 exactly these.
    asyncio.run(nemesis.apply(grudge_from_json(grudge)))
    for n in ("n1", "n3"):
        assert remotes[n].sent == [(sides[n]["script"], sides[n]["stdin"])]
    assert "10.0.0.3" in sides["n1"]["stdin"] and "10.0.0.1" in sides["n3"]["stdin"]
    assert "timeout " not in sides["n1"]["stdin"]  # (no kernel expiry without a lease)


def test_a_partition_lease_expires_in_the_kernel_a_lease_after_its_planned_end() -> None:
    nemesis, _ = set_up(PartitionNemesis(lease=3.0))
    steps = [{"f": "start-partition", "value": "halves", "at": 2.0, "hold": 1.5},
             {"f": "start-partition", "value": {"n2": ["n1", "n3"]}, "at": 4.0}]  # fmt: skip
    slices = compile_slices(steps, ctx(), FakeDB(), {"partition": nemesis})
    assert all("timeout 4500ms" in s["stdin"] for s in strikes(slices, "s1").values())
    (held,) = strikes(slices, "s2").values()  # no hold: the run's end (10 s) heals it
    assert "timeout 9000ms" in held["stdin"]
    again = compile_slices(steps, ctx(), FakeDB(), {"partition": nemesis})
    assert again == slices  # a shape is planned the same way every time


def test_a_triggered_cluster_wide_step_touches_its_node_alone() -> None:
    nemesis, _ = set_up(PartitionNemesis())
    one_sided = {"node": "n2", "f": "start-partition", "value": {"n2": ["n1", "n3"]},
                 "on": {"log": "became-leader"}, "hold": 1}  # fmt: skip
    slices = compile_slices([one_sided], ctx(), FakeDB(), {"partition": nemesis})
    assert list(strikes(slices, "s1")) == ["n2"]
    both = {**one_sided, "value": {"n2": ["n1"], "n1": ["n2"]}}
    with pytest.raises(ConfigError, match=r"agent step 1: .*must touch n2 alone.*touches n1, n2"):
        compile_slices([both], ctx(), FakeDB(), {"partition": nemesis})
    with pytest.raises(ConfigError, match="touches n1, n2"):  # checked before setup too
        compile_slices([both], ctx(), FakeDB())


def test_a_clock_bump_is_struck_by_the_nodes_it_names_with_libfaketime() -> None:
    nemesis, remotes = set_up(ClockNemesis(db=FakeDB()))
    fault = {"kind": "bump", "offsets": {"n2": 30.0}}
    steps: list[dict[str, Any]] = [{"f": "start-clock", "value": fault, "at": 1.0, "hold": 2.0},
             {"node": "n3", "f": "start-clock", "on": {"process": "start"},
              "value": {"kind": "strobe", "nodes": ["n3"], "delta": 5.0, "period": 0.2,
                        "duration": 1.0}}]  # fmt: skip
    slices = compile_slices(steps, ctx(), FakeDB(), {"clock": nemesis})
    (bump,) = strikes(slices, "s1").values()
    assert bump["node"] == "n2" and bump["side"] == {"offset": 30.0}
    asyncio.run(nemesis.apply(fault))
    assert remotes["n2"].sent == [(bump["script"], None)]  # the controller's own script
    assert bump["heal"] == nemesis.heal_script("n2")
    (strobe,) = strikes(slices, "s2").values()
    assert strobe["script"] == clock_scripts.faketime_strobe_script(
        nemesis.directory, delta=5.0, period=0.2, duration=1.0
    )


def test_clock_steps_need_libfaketime() -> None:
    class GoDB(FakeDB):
        clock_reads = "go-vdso"

    step = {"f": "start-clock", "value": {"kind": "bump", "offsets": {"n1": 5}}, "at": 1}
    with pytest.raises(ConfigError, match="agent step 1: clock faults cannot shift"):
        compile_slices([step], ctx(), GoDB())


def test_a_packet_fault_is_struck_where_its_rules_live() -> None:
    nemesis, remotes = set_up(PacketNemesis())
    value = {"nodes": ["n2"], "to": ["n1"], "loss": 0.3, "delay_ms": 50, "jitter_ms": 5}
    steps = [{"f": "start-packet", "value": value, "at": 1.0, "hold": 1.0}]
    assert compile_slices(steps, ctx(), FakeDB()) == {  # before setup: checked, not built
        n: {**sl, "strikes": []} for n, sl in compile_slices([], ctx(), FakeDB()).items()
    }
    slices = compile_slices(steps, ctx(), FakeDB(), {"packet": nemesis})
    # No netem here: the receiver, n1, drops and delays what n2 sends it.
    (side,) = strikes(slices, "s1").values()
    assert side["node"] == "n1" and side["side"] == {"driver": "iptables"}
    assert side["stdin"] == delayer_program()
    asyncio.run(nemesis.apply(packet_from_json(value, NODES)))
    assert remotes["n1"].sent == [(side["script"], side["stdin"])]
    with pytest.raises(ConfigError, match="must touch n2 alone"):
        compile_slices([{**steps[0], "node": "n2"}], ctx(), FakeDB(), {"packet": nemesis})


def test_the_lease_heal_runs_network_and_clock_heals_before_restarts() -> None:
    script = _union([{"f": "start-kill", "heal": "start-db"},
                     {"f": "start-partition", "heal": "heal-net"},
                     {"f": "start-partition", "heal": "heal-net"},
                     {"f": "start-clock", "heal": "heal-clock"}])  # fmt: skip
    assert script.index("heal-net") < script.index("start-db")
    assert script.index("heal-clock") < script.index("start-db")
    assert script.count("heal-net") == 1


def test_each_side_goes_on_the_ledger_with_its_node_and_landing() -> None:
    value = {"n1": ["n3"], "n3": ["n1"]}
    journal = [
        {"e": "strike", "id": "s1", "f": "start-partition", "start_run": 2.0001,
         "late_ms": 0.1, "done_ms": 7.5, "status": 0, "trigger": "at", "value": value,
         "side": {"drops_from": ["n3"]}},
        {"e": "heal", "id": "s1", "run": 3.51, "status": 0},
    ]  # fmt: skip
    applied, healed = ledger_records("n1", journal)
    assert applied["kind"] == "partition" and applied["targets"] == ["n1"]
    assert applied["value"] == value and applied["side"] == {"drops_from": ["n3"]}
    assert applied["done_ms"] == 7.5 and applied["time"] == 2_000_100_000
    assert healed["f"] == "stop-partition" and healed["phase"] == "stop"


def test_the_agent_gives_a_strike_its_stdin(tmp_path: Path) -> None:
    d = tmp_path / "agent"
    d.mkdir(mode=0o700)
    proc = subprocess.Popen([sys.executable, agent_module.__file__, "--dir", str(d)])
    try:
        deadline = time.monotonic() + 40
        while not (d / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        for sub, name, data in (
            ("leases", f"{AGENT_LEASE}.json",
             {"id": AGENT_LEASE, "lease": 30.0, "seq": 1, "heal": "exit 0"}),
            ("slices", "agent.json",
             {"id": "agent", "lease": AGENT_LEASE, "origin_ns": time.monotonic_ns(),
              "strikes": [{"id": "s1", "f": "start-partition", "at": 0.2,
                           "script": f"cat > {tmp_path}/got", "stdin": "table rules\n",
                           "heal": "exit 0", "value": {"n1": ["n2"]},
                           "side": {"drops_from": ["n2"]}}]}),
        ):  # fmt: skip
            (d / sub).mkdir(mode=0o700, exist_ok=True)
            tmp = d / sub / f".{name}.tmp"
            tmp.write_text(json.dumps(data))
            os.replace(tmp, d / sub / name)
        journal = d / "agent.jsonl"
        while time.monotonic() < deadline and '"e":"strike"' not in journal.read_text():
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert (tmp_path / "got").read_text() == "table rules\n"
    recs = [json.loads(x) for x in journal.read_text().splitlines()]
    (strike,) = [r for r in recs if r["e"] == "strike"]
    assert strike["status"] == 0 and strike["side"] == {"drops_from": ["n2"]}
    (armed,) = [r for r in recs if r["e"] == "slice" and r.get("state") == "armed"]
    assert "stdin" not in armed["strikes"][0]


def test_each_sides_heal_closes_its_own_window_and_the_final_heal_closes_the_rest() -> None:
    grudge = {"n1": ["n2"], "n2": ["n1"]}
    struck = [
        {"e": "strike", "id": "s1", "f": "start-clock", "start_run": 1.0, "status": 0,
         "trigger": "at", "value": {"kind": "bump"}, "side": {"offset": 5.0}},
        {"e": "strike", "id": "s2", "f": "start-partition", "start_run": 2.0, "status": 0,
         "trigger": "at", "value": grudge, "side": {"drops_from": ["n1"]}},
    ]  # fmt: skip
    n2 = ledger_records("n2", struck)
    n3 = ledger_records("n3", [
        {"e": "strike", "id": "s3", "f": "start-clock", "start_run": 1.5, "status": 0,
         "trigger": "log", "value": {"kind": "bump"}, "side": {"offset": -5.0}},
        {"e": "heal", "id": "s3", "run": 2.5, "status": 0},
    ])  # fmt: skip
    n1 = ledger_records("n1", [{**struck[1], "side": {"drops_from": ["n2"]}}])
    final: list[dict[str, Any]] = [
        {"time": 9 * 10**9, "event": "healed", "phase": "stop", "kind": k, "f": f"heal-{k}",
         "targets": []} for k in ("clock", "partition")
    ]  # fmt: skip
    windows = {(w.kind, w.targets): (w.start, w.stop)
               for w in fault_windows([*n2, *n3, *n1, *final])}  # fmt: skip
    s = 10**9
    # n3's heal closes n3's bump, not n2's older one; the final heals close what is left.
    assert windows == {("clock", ("n2",)): (1 * s, 9 * s), ("clock", ("n3",)): (1.5 * s, 2.5 * s),
                       ("partition", ("n2",)): (2 * s, 9 * s),
                       ("partition", ("n1",)): (2 * s, 9 * s)}  # fmt: skip


def test_a_spec_carries_cluster_wide_steps_through_its_record(tmp_path: Path) -> None:
    from harness.spec import load_spec

    spec_file = tmp_path / "test.toml"
    spec_file.write_text(
        'suite = "bugkv"\nfaults = []\n\n[[agent]]\nf = "start-partition"\nat = 2\nhold = 1.5\n'
        'value = { n1 = ["n2", "n3"], n2 = ["n1"], n3 = ["n1"] }\n\n[[agent]]\nnode = "n3"\n'
        'f = "start-clock"\non = { log = "term-changed" }\n'
        'value = { kind = "bump", offsets = { n3 = -20.0 } }\n'
    )
    spec = load_spec(str(spec_file))
    assert spec.agent[0] == {"f": "start-partition", "at": 2.0, "hold": 1.5,
                             "value": {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}}  # fmt: skip
    assert spec.agent[1]["value"] == {"kind": "bump", "offsets": {"n3": -20.0}}
    again = load_spec(**{**spec.to_json(), "test_name": None, "concurrency": None})
    assert again.agent == spec.agent  # (a replay hands the nodes the same steps)
