"""Packet faults as data, the planner, and the scripts they become: pure functions.

The netem driver cannot run on the CI machine (its kernel has no ``sch_netem``), so its
scripts, and the nemesis's choice of driver per node, are checked here against a recording
fake of a node (:class:`FakeRemote`); the iptables/NFQUEUE driver runs for real in
``tests/integration/test_packet_nemesis.py`` (and the netem driver there too, on a kernel
that has netem). See docs/testing.md.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import struct
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusters import doctor
from clusters.base import Capability, Cluster, Node
from harness import api
from harness.errors import NemesisError
from nemeses import nfqueue_delayer as nfq
from nemeses import packet as pk
from nemeses.base import Nemesis, NemesisPackage

NODES3 = ["n1", "n2", "n3"]
ALL_CAPS = pk.NodeCaps(iptables=True, ip6tables=True, statistic=True, nfqueue_rule=True,
                       python=True, nfqueue_bind=True)  # fmt: skip


def names(n: int) -> list[str]:
    return [f"n{i}" for i in range(1, n + 1)]


def fault(**kw: Any) -> pk.PacketFault:
    return pk.packet_from_json(kw, NODES3)


# --- faults as data --------------------------------------------------------------------


def test_a_fault_round_trips_through_json_with_every_key() -> None:
    f = fault(nodes=["n2"], to=["n1", "n3"], loss=0.3, delay_ms=100, jitter_ms=10)
    data = pk.packet_to_json(f)
    assert data == {"nodes": ["n2"], "to": ["n1", "n3"], "loss": 0.3, "delay_ms": 100,
                    "jitter_ms": 10, "duplicate": 0.0}  # fmt: skip
    assert pk.packet_from_json(data, NODES3) == f
    assert f.pairs() == [("n2", "n1"), ("n2", "n3")]
    assert f.behaviours() == ("loss", "delay")


def test_to_defaults_to_every_node_and_a_node_never_faults_itself() -> None:
    f = fault(nodes=["n3", "n1"], delay_ms=5)
    assert f.nodes == ("n1", "n3") and f.to == ("n1", "n2", "n3")
    assert f.pairs() == [("n1", "n2"), ("n1", "n3"), ("n3", "n1"), ("n3", "n2")]
    assert fault(nodes=["n1"], delay_ms=100.0).delay_ms == 100  # a whole float is fine


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"nodes": ["n1"], "loss": 0.1, "lose": 0.2}, "unknown packet fault key"),
        ({"nodes": ["n9"], "loss": 0.1}, "unknown node"),
        ({"nodes": "n1", "loss": 0.1}, "list of node names"),
        ({"nodes": [], "loss": 0.1}, "names no node"),
        ({"nodes": ["n1"], "loss": 1.5}, "probability"),
        ({"nodes": ["n1"], "loss": True}, "probability"),
        ({"nodes": ["n1"], "delay_ms": 10.5}, "whole milliseconds"),
        ({"nodes": ["n1"], "delay_ms": -1}, "whole milliseconds"),
        ({"nodes": ["n1"], "delay_ms": 10, "jitter_ms": 11}, "exceeds its delay"),
        ({"nodes": ["n1"]}, "needs loss, delay_ms or duplicate"),
        ({"nodes": ["n1"], "to": ["n1"], "loss": 0.1}, "no pair of distinct nodes"),
        (["n1"], "must be a mapping"),
    ],
)
def test_bad_faults_are_refused_saying_what_is_wrong(value: Any, match: str) -> None:
    with pytest.raises(NemesisError, match=match):
        pk.packet_from_json(value, NODES3)


# --- the planner -----------------------------------------------------------------------


def test_the_planner_is_deterministic_per_seed_and_varies_across_seeds() -> None:
    nodes = names(5)
    plans = [pk.plan_packet(nodes, random.Random(s)) for s in range(40)]
    assert plans == [pk.plan_packet(nodes, random.Random(s)) for s in range(40)]
    assert len({str(p) for p in plans}) > 30
    assert {len(p["nodes"]) for p in plans} == {1, 2}  # a minority of 5
    assert any(p["loss"] and p["delay_ms"] for p in plans)
    assert any(p["loss"] and not p["delay_ms"] for p in plans)
    assert any(p["delay_ms"] and not p["loss"] for p in plans)
    assert any(p["to"] == nodes for p in plans)
    assert any(p["to"] != nodes for p in plans)
    assert not any(p["duplicate"] for p in plans)  # not a default behaviour


@given(n=st.integers(2, 9), seed=st.integers(0, 2**32), dup=st.booleans())
def test_every_plan_is_a_valid_fault_within_the_ranges(n: int, seed: int, dup: bool) -> None:
    nodes = names(n)
    kinds = ("loss", "delay", "duplicate") if dup else ("loss", "delay")
    value = pk.plan_packet(nodes, random.Random(seed), behaviours=kinds, delay_ms=(20, 200))
    f = pk.packet_from_json(value, nodes)  # valid (raises otherwise)
    assert pk.packet_to_json(f) == value  # already canonical: replays as itself
    assert 1 <= len(f.nodes) <= max(1, (n - 1) // 2)
    assert f.loss == 0 or 0.1 <= f.loss <= 0.5
    assert f.delay_ms == 0 or 20 <= f.delay_ms <= 200
    assert f.jitter_ms == round(f.delay_ms * pk.DEFAULT_JITTER_FRACTION)
    assert f.duplicate == 0 or (dup and 0.01 <= f.duplicate <= 0.1)
    assert set(f.to) - set(f.nodes)  # someone else receives the faulted packets


def test_the_planner_refuses_what_it_cannot_plan() -> None:
    rng = random.Random(0)
    with pytest.raises(NemesisError, match="at least 2 nodes"):
        pk.plan_packet(["n1"], rng)
    with pytest.raises(NemesisError, match="repeat"):
        pk.plan_packet(["n1", "n1"], rng)
    with pytest.raises(NemesisError, match="behaviours"):
        pk.plan_packet(NODES3, rng, behaviours=("reorder",))
    with pytest.raises(NemesisError, match="loss range"):
        pk.plan_packet(NODES3, rng, loss=(0.5, 0.1))
    with pytest.raises(NemesisError, match="delay_ms range"):
        pk.plan_packet(NODES3, rng, delay_ms=(0, 10))


# --- which node does what --------------------------------------------------------------

ADDRS = {
    "n1": {"n2": ("10.0.0.2",), "n3": ("10.0.0.3",)},
    "n2": {"n1": ("10.0.0.1",), "n3": ("10.0.0.3",)},
    "n3": {"n1": ("10.0.0.1",), "n2": ("10.0.0.2",)},
}


def test_without_netem_the_receiver_holds_rules_matching_the_sender() -> None:
    f = fault(nodes=["n1", "n2"], to=["n3", "n2"], loss=0.2)
    acts = pk.node_actions(f, dict.fromkeys(NODES3, "iptables"), ADDRS, {})
    assert acts["n3"] == pk.NodeAction(ingress=("10.0.0.1", "10.0.0.2"))
    assert acts["n2"] == pk.NodeAction(ingress=("10.0.0.1",))
    assert acts["n1"].empty


def test_a_netem_sender_holds_its_own_band_per_device() -> None:
    f = fault(nodes=["n1", "n2"], to=["n3"], delay_ms=50)
    drivers = {"n1": "netem", "n2": "iptables", "n3": "iptables"}
    devices = {"n1": {"10.0.0.2": "eth0", "10.0.0.3": "eth1"}}
    acts = pk.node_actions(f, drivers, ADDRS, devices)
    assert acts["n1"] == pk.NodeAction(netem={"eth1": ("10.0.0.3",)})
    assert acts["n3"] == pk.NodeAction(ingress=("10.0.0.2",))  # n2 has no netem
    assert acts["n2"].empty


def test_feasibility_names_the_node_and_what_would_work() -> None:
    caps = dict.fromkeys(NODES3, ALL_CAPS)
    drivers = dict.fromkeys(NODES3, "iptables")
    pairs = [("n1", "n2")]
    assert pk.feasibility_problems(("loss", "delay"), pairs, drivers, caps) == []
    (dup,) = pk.feasibility_problems(("duplicate",), pairs, drivers, caps)
    assert dup.startswith("n1 has no netem") and "plan without 'duplicate'" in dup
    assert pk.feasibility_problems(("duplicate",), pairs, {**drivers, "n1": "netem"}, caps) == []
    no_python = {**caps, "n2": pk.NodeCaps(iptables=True, statistic=True, nfqueue_rule=True)}
    (why,) = pk.feasibility_problems(("loss", "delay"), pairs, drivers, no_python)
    assert why.startswith("n2 cannot delay packets") and "python3 is missing" in why
    bare = {**caps, "n2": pk.NodeCaps()}
    problems = pk.feasibility_problems(("loss",), pairs, drivers, bare, {"n2": True})
    assert problems == ["n2 cannot drop packets at random: iptables is missing there",
                        "n2 has IPv6 peers but no working ip6tables"]  # fmt: skip


def test_probe_output_becomes_capabilities() -> None:
    caps = pk.parse_probe("iptables\nstatistic\nnfqueue-rule\npython\nnfqueue-bind\n")
    assert caps.loss_in() and caps.delay_in() and not caps.netem and not caps.ip6tables
    failed = pk.parse_probe("iptables\nstatistic\npython\nnfqueue-error Permission denied\n")
    assert not failed.delay_in() and failed.nfqueue_error == "Permission denied"


# --- scripts ---------------------------------------------------------------------------


def sh_syntax_ok(script: str) -> bool:
    return subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0


def test_the_iptables_script_drops_and_queues_in_our_mangle_chain() -> None:
    f = fault(nodes=["n1"], loss=0.25, delay_ms=100)
    s = pk.iptables_apply_script("clew", f, ["10.0.0.2", "10.0.0.1", "fd00::1"], 7000)
    assert (
        "iptables -w 5 -t mangle -A CLEW-PACKET -s 10.0.0.1,10.0.0.2 -m statistic "
        "--mode random --probability 0.25 -j DROP" in s
    )
    assert (
        "iptables -w 5 -t mangle -A CLEW-PACKET -s 10.0.0.1,10.0.0.2 -j NFQUEUE "
        "--queue-num 7000 --queue-bypass" in s
    )
    assert "ip6tables -w 5 -t mangle -A CLEW-PACKET -s fd00::1 -m statistic" in s
    assert s.index("statistic") < s.index("NFQUEUE")  # lost packets are never queued
    assert "-C INPUT -j CLEW-PACKET" in s  # the jump is added only when missing
    assert "-j OUTPUT" not in s and " OUTPUT " not in s
    loss_only = pk.iptables_apply_script("clew", fault(nodes=["n1"], loss=0.1), ["10.0.0.2"], 1)
    assert "NFQUEUE" not in loss_only and "clew_pkt_ipt_remove ip6tables" in loss_only
    # every flush, delete-chain and delete-rule names our chain (as target or as jump)
    destructive = re.findall(r" -([FXD]) (\S+)( -j \S+)?", s + pk.packet_heal_script("clew"))
    assert len(destructive) >= 6
    assert all("CLEW-PACKET" in "".join(d) for d in destructive), destructive
    assert sh_syntax_ok(s)


def test_scripts_refuse_anything_but_address_literals() -> None:
    f = fault(nodes=["n1"], loss=0.1)
    with pytest.raises(ValueError):
        pk.iptables_apply_script("clew", f, ["10.0.0.1; iptables -F"], 1)
    with pytest.raises(ValueError):
        pk.netem_apply_script("clew", f, {"eth0": ["$(reboot)"]})


def test_the_netem_script_is_a_tagged_prio_band_per_destination() -> None:
    prio, child = pk.qdisc_handles("clew")
    major = prio.rstrip(":")
    f = fault(nodes=["n1"], loss=0.3, delay_ms=100, jitter_ms=10, duplicate=0.05)
    s = pk.netem_apply_script("clew", f, {"eth0": ["10.0.0.2", "fd00::2"], "eth1": ["10.1.0.3"]})
    assert (
        f"tc qdisc add dev eth0 root handle {prio} prio bands 4 "
        "priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1" in s
    )
    assert (
        f"tc qdisc add dev eth0 parent {major}:4 handle {child} netem delay 100ms 10ms "
        "loss random 30% duplicate 5%" in s
    )
    assert (
        f"tc filter add dev eth0 parent {prio} protocol ip prio 3 u32 "
        f"match ip dst 10.0.0.2/32 flowid {major}:4" in s
    )
    assert f"protocol ipv6 prio 4 u32 match ip6 dst fd00::2/128 flowid {major}:4" in s
    assert f"tc qdisc add dev eth1 root handle {prio}" in s
    assert "not clew's; not replacing it" in s  # a foreign root qdisc is refused
    # removal never deletes a root qdisc without naming clew's handle
    assert all(f"root handle {prio}" in line for line in s.splitlines() if "qdisc del" in line)
    assert s.index("clew_pkt_netem_remove ||") < s.index("qdisc add")
    assert "netem delay 20ms loss" not in pk.netem_apply_script(
        "clew", fault(nodes=["n1"], delay_ms=20), {"eth0": ["10.0.0.2"]}
    )
    assert sh_syntax_ok(s)


def test_tags_give_distinct_names_and_handles_outside_tcs_own_range() -> None:
    assert pk.packet_chain("clew") == "CLEW-PACKET" and pk.state_dir("clew") == "/run/clew-packet"
    handles = {pk.qdisc_handles(t) for t in ("clew", "other", "cpk", "x1")}
    assert len(handles) == 4
    for prio, child in handles:
        assert 0xC000 <= int(prio[:-1], 16) < int(child[:-1], 16) <= 0xDFFF
    assert pk.default_queue("clew") != pk.default_queue("other")
    assert 0 <= pk.default_queue("clew") <= 65535


def test_heal_is_state_free_and_stops_the_delayer_by_pidfile_only() -> None:
    heal = pk.packet_heal_script("clew")
    assert "-t mangle -X CLEW-PACKET" in heal and "clew_pkt_ipt_remove ip6tables" in heal
    assert 'p="/run/clew-packet/packet-delayer.pid"' in heal
    assert 'grep -qF "/run/clew-packet/nfqueue_delayer.py"' in heal  # a recycled pid is spared
    assert "pkill" not in heal and "killall" not in heal and "kill -9 -" not in heal
    assert "iptables -F\n" not in heal and "flush ruleset" not in heal
    prio, _ = pk.qdisc_handles("clew")
    assert f"root handle {prio}" in heal
    assert heal.index("clew_pkt_ipt_remove iptables ||") < heal.index("clew_pkt_stop_delayer\n")
    verify = pk.packet_verify_script("clew", 7000)
    assert "CLEW-PACKET" in verify and "$1 == 7000" in verify and prio in verify
    assert "/run/other-packet/" in pk.packet_heal_script("other")
    for script in (heal, verify, pk.probe_script("clew", 7000)):
        assert sh_syntax_ok(script)


def test_a_node_script_starts_the_delayer_before_queueing_and_stops_it_after() -> None:
    f = fault(nodes=["n1"], loss=0.1, delay_ms=100, jitter_ms=10)
    script, stdin = pk.node_apply_script("clew", f, pk.NodeAction(ingress=("10.0.0.1",)), 7000)
    assert stdin == pk.delayer_program() and "NFQUEUE" in stdin
    assert script.index("setsid nohup python3") < script.index("-j NFQUEUE")
    assert "--queue 7000 --delay-ms 100 --jitter-ms 10" in script
    loss_only = fault(nodes=["n1"], loss=0.1)
    script, stdin = pk.node_apply_script("clew", loss_only, pk.NodeAction(ingress=("10.0.0.1",)), 1)
    assert stdin is None and "setsid" not in script
    assert script.index("-m statistic") < script.index("clew_pkt_stop_delayer\n")
    idle, stdin = pk.node_apply_script("clew", f, pk.NodeAction(), 1)
    assert stdin is None and "clew_pkt_ipt_remove iptables" in idle
    assert "clew_pkt_netem_remove ||" in idle and "clew_pkt_stop_delayer\n" in idle
    assert sh_syntax_ok(script) and sh_syntax_ok(idle)


# --- the delayer's netlink messages ----------------------------------------------------


def test_verdict_and_config_messages_have_the_kernels_layout() -> None:
    v = nfq.verdict_message(7000, 42)
    length, kind, flags, _seq, _port = struct.unpack_from("=IHHII", v)
    assert length == len(v) == 16 + 4 + 12
    assert kind == (3 << 8) | 1 and flags == 1  # NFNL_SUBSYS_QUEUE, NFQNL_MSG_VERDICT
    assert v[16:20] == b"\0\0" + struct.pack("!H", 7000)  # AF_UNSPEC, v0, queue (BE)
    assert struct.unpack_from("=HH", v, 20) == (12, 2)  # NFQA_VERDICT_HDR
    assert struct.unpack_from("!II", v, 24) == (1, 42)  # NF_ACCEPT, packet id
    bind, params = nfq.config_messages(7000, 100, seq=5)
    assert struct.unpack_from("=HH", bind, 4) == ((3 << 8) | 2, 1 | 4)  # CONFIG, REQUEST|ACK
    assert bind[20:28] == struct.pack("=HH", 8, 1) + b"\x01\0\0\0"  # CMD_BIND, pf 0
    assert params[20:32] == struct.pack("=HH", 9, 2) + struct.pack("!IB", 0, 1) + b"\0" * 3


def test_packet_notices_and_errors_are_parsed() -> None:
    def packet(pid: int) -> bytes:
        hdr = struct.pack("=HH", 11, 1) + struct.pack("!IHB", pid, 0x0800, 1) + b"\0"
        mark = struct.pack("=HH", 8, 3) + b"\0\0\0\1"  # another attribute first
        body = b"\x02\0\0\x01" + mark + hdr
        return struct.pack("=IHHII", 16 + len(body), 3 << 8, 0, 0, 0) + body

    error = struct.pack("=IHHII", 36, 2, 0, 9, 0) + struct.pack("=i", -2) + b"\0" * 16
    ids, errors = nfq.parse_messages(packet(7) + error + packet(8))
    assert ids == [7, 8] and errors == [-2]
    assert nfq.parse_messages(b"\0" * 10) == ([], [])


def test_the_delayer_refuses_bad_arguments() -> None:
    program = str(Path(nfq.__file__))
    for args in (["--queue", "70000"], ["--queue", "1", "--delay-ms", "5", "--jitter-ms", "6"]):
        proc = subprocess.run(["python3", program, *args], capture_output=True, text=True)
        assert proc.returncode == 2 and "error" in proc.stderr


# --- the nemesis, against a recording fake of each node --------------------------------


class FakeRemote:
    """A node that answers the nemesis's probe as ``caps`` say and records every script."""

    def __init__(self, name: str, probe: str) -> None:
        self.name = name
        self.probe = probe
        self.scripts: list[tuple[str, str | None]] = []

    async def run(
        self, cmd: str | Sequence[str], *, stdin: str | None = None, **_: Any
    ) -> SimpleNamespace:
        assert isinstance(cmd, str)
        self.scripts.append((cmd, stdin))
        if "nfqueue-bind" in cmd:
            return SimpleNamespace(stdout=self.probe)
        if "ip -o route get" in cmd:
            addrs = re.search(r"for a in (.*?); do", cmd).group(1).split()  # type: ignore[union-attr]
            return SimpleNamespace(stdout="".join(f"{a} eth0\n" for a in addrs))
        return SimpleNamespace(stdout="")


def fake_cluster(probes: dict[str, str]) -> tuple[api.TestContext, dict[str, FakeRemote]]:
    nodes = tuple(Node(name=n, host=f"10.0.0.{i}") for i, n in enumerate(probes, 1))
    cluster = Cluster(provider="local", name="fake", nodes=nodes, state_dir="/nonexistent")
    ctx = api.TestContext(name="t", cluster=cluster, options={}, rng=random.Random(3),
                          run_dir=Path("/nonexistent"), concurrency=1, time_limit=1)  # fmt: skip
    return ctx, {n: FakeRemote(n, p) for n, p in probes.items()}


FALLBACK = "iptables\nstatistic\nnfqueue-rule\npython\nnfqueue-bind\n"


def test_the_nemesis_uses_netem_where_the_sender_has_it_and_the_fallback_elsewhere() -> None:
    ctx, remotes = fake_cluster({"n1": "netem\n" + FALLBACK, "n2": FALLBACK, "n3": FALLBACK})

    async def go() -> dict[str, Any]:
        nemesis = pk.PacketNemesis(behaviours=("loss", "delay"))
        assert isinstance(nemesis, Nemesis)
        await nemesis.setup(ctx, remotes)  # type: ignore[arg-type]
        assert nemesis.drivers == {"n1": "netem", "n2": "iptables", "n3": "iptables"}
        for r in remotes.values():
            r.scripts.clear()
        value = {"nodes": ["n1", "n2"], "to": ["n3"], "delay_ms": 80, "jitter_ms": 8}
        return await nemesis.invoke(ctx, {"f": "start-packet", "value": value})

    done = asyncio.run(go())
    assert done["value"]["delay_ms"] == 80 and done["type"] == "info"
    (n1_script, n1_stdin), = remotes["n1"].scripts  # fmt: skip
    assert "netem delay 80ms 8ms" in n1_script and "match ip dst 10.0.0.3/32" in n1_script
    assert n1_stdin is None and "-A CLEW-PACKET" not in n1_script
    (n3_script, n3_stdin), = remotes["n3"].scripts  # fmt: skip
    assert "-s 10.0.0.2 -j NFQUEUE" in n3_script and "10.0.0.1" not in n3_script
    assert n3_stdin == pk.delayer_program()
    (n2_script, _), = remotes["n2"].scripts  # fmt: skip
    assert "-A CLEW-PACKET" not in n2_script and "clew_pkt_ipt_remove iptables" in n2_script


def test_the_nemesis_refuses_at_setup_what_it_could_not_inject() -> None:
    no_python = "iptables\nstatistic\nnfqueue-rule\nnfqueue-error python3 is not installed\n"
    ctx, remotes = fake_cluster({"n1": FALLBACK, "n2": no_python, "n3": FALLBACK})
    with pytest.raises(NemesisError, match=r"n2 cannot delay packets: python3 is missing"):
        asyncio.run(pk.PacketNemesis().setup(ctx, remotes))  # type: ignore[arg-type]
    ok = pk.PacketNemesis(behaviours=("loss",))
    asyncio.run(ok.setup(ctx, remotes))  # type: ignore[arg-type]
    with pytest.raises(NemesisError, match="cannot apply packet fault"):
        asyncio.run(
            ok.invoke(ctx, {"f": "start-packet", "value": {"nodes": ["n1"], "delay_ms": 9}})
        )
    with pytest.raises(NemesisError, match="no netem"):
        asyncio.run(pk.PacketNemesis(driver="netem").setup(ctx, remotes))  # type: ignore[arg-type]
    assert ok.heal_script("n2") == pk.packet_heal_script("clew")
    with pytest.raises(NemesisError, match="unknown node"):
        ok.heal_script("n9")


def test_bad_configuration_is_refused_up_front() -> None:
    with pytest.raises(NemesisError, match="behaviours"):
        pk.PacketNemesis(behaviours=("corrupt",))
    with pytest.raises(NemesisError, match="driver"):
        pk.PacketNemesis(driver="ipfw")  # type: ignore[arg-type]
    with pytest.raises(NemesisError, match="tag"):
        pk.PacketNemesis(tag="x; rm -rf /")
    with pytest.raises(NemesisError, match="NFQUEUE number"):
        pk.PacketNemesis(queue=70000)
    with pytest.raises(NemesisError, match="python"):
        pk.PacketNemesis(python="python3; reboot")
    with pytest.raises(NemesisError, match="timeout"):
        pk.PacketNemesis(timeout=1)
    with pytest.raises(NemesisError, match="not been set up"):
        asyncio.run(pk.PacketNemesis().heal_all(None))  # type: ignore[arg-type]


def test_the_package_is_data_the_runner_can_schedule() -> None:
    pkg = pk.packet_package(interval=5, behaviours=("delay",))
    assert isinstance(pkg, NemesisPackage) and pkg.name == "packet" and pkg.interval == 5
    assert pkg.start(None) == {"f": "start-packet", "value": None}  # type: ignore[arg-type]
    assert pkg.stop(None)["f"] == "stop-packet"  # type: ignore[arg-type]
    assert [op["f"] for op in pkg.finals()] == ["stop-packet"]
    assert pkg.perf.start == {"start-packet"} and pkg.perf.stop == {"stop-packet"}
    assert pkg.nemesis.behaviours == ("delay",)  # type: ignore[attr-defined]


# --- what clew doctor says -------------------------------------------------------------


def test_doctor_summarises_how_each_packet_fault_works() -> None:
    def cap(name: str, ok: bool) -> Capability:
        return Capability(name=name, available=ok, detail="x")

    netem, loss, delay = cap("packet-netem", False), cap("l", True), cap("d", True)
    here = doctor.packet_fault_summary(netem, loss, delay)
    assert here.name == "packet-faults" and here.available
    assert here.detail == (
        "loss: the iptables statistic match; delay and jitter: the NFQUEUE delayer; "
        "duplication: unavailable (needs netem)"
    )
    with_netem = doctor.packet_fault_summary(cap("n", True), cap("l", False), cap("d", False))
    assert with_netem.detail == "loss: netem; delay and jitter: netem; duplication: netem"
    nothing = doctor.packet_fault_summary(cap("n", False), cap("l", False), cap("d", False))
    assert not nothing.available and "delay: unavailable" in nothing.detail


@pytest.mark.skipif(os.geteuid() != 0, reason="the probe needs root or user namespaces")
def test_the_nfqueue_probe_binds_a_queue_in_a_throwaway_namespace(
    kernel_has: Callable[[str], bool],
) -> None:
    """The probe against the kernel's config: NFQUEUE and nfnetlink_queue are built on
    every kernel CI runs on (the microVM's, Debian's), so the delayer must bind."""
    assert kernel_has("CONFIG_NETFILTER_XT_TARGET_NFQUEUE")
    assert kernel_has("CONFIG_NETFILTER_NETLINK_QUEUE")
    cap = doctor.check_nfqueue_delay()
    assert cap.name == "packet-delay-nfqueue"
    assert cap.available and cap.detail == "works (probed in a throwaway netns)", cap.detail
