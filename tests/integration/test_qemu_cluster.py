"""The qemu provider with real VMs, through clew's own commands.

The VM image is built once (``clew image build --vm --suite etcd``) into the image cache
and reused. First, a boot of one VM that times out leaves nothing. Then every other test
shares one 3-VM cluster (a module fixture): the first ``up`` on a machine boots cold and
saves the VMs' states, every later one restores them, so the fixture brings the cluster up
until it has been restored once (at most a cold boot and a restore). On it: every node
answers over SSH with its own name and address, its clock was set to the host's, the
nodes reach each other, and netem (each VM has its own kernel) delays pings by 50 ms. The
clock nemesis's system-clock path: a bump of n1 by three hours shows in etcd's own log
timestamps (etcd is Go: libfaketime cannot reach it) while n2 and this host keep their
time, and the heal puts n1 back. ``clew test etcd --faults clock,partition`` as a user runs
it: valid, the ledger showing the bump applied through the system clock, and etcd's own
time (the Date of its replies) shifted by it on n1 while it held. clew's packet nemesis
picks netem on every VM and its delay, loss and duplication show in pings from n1 to n3
only. A power-off of n2 (SIGKILL of its QEMU) whose lease nobody renews is healed by the
host-side guard (a cold start from its disk): a write made without sync is lost, one made
with fsync kept. Last, ``down`` leaves nothing: no tap, bridge, QEMU process, guard or
state file. Subnet 10.77.253.0/24, names ``h24q-``.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from clusters.base import Cluster
from harness import api
from harness.control import Remote, connect_all
from harness.dbs.etcd import EtcdDB
from nemeses.clock import HEALED as CLOCK_HEALED
from nemeses.clock import ClockNemesis
from nemeses.packet import PacketNemesis
from nemeses.power import HEALED, PowerNemesis

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.timeout(1800),  # a first run builds the image (3-5 min) and boots cold
    pytest.mark.skipif(os.geteuid() != 0, reason="the qemu provider needs root (taps, bridge)"),
]

CLEW = [sys.executable, "-m", "harness.cli"]
PREFIX = "h24q-"
SUBNET = "10.77.253.0/24"
OPTIONS = ["--option", f"prefix={PREFIX}", "--option", f"subnet={SUBNET}"]


def clew(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``clew ARGS``."""
    return subprocess.run([*CLEW, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip


def ssh(state: Path, node: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` on ``node`` with the cluster's own ssh_config."""
    return subprocess.run(["ssh", "-F", str(state / "ssh_config"), node, command],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


#: What ``host_state`` shows when the cluster left nothing.
NOTHING = {"links": [], "qemu": [], "guards": [], "routes": "", "files": []}


def host_state(state: Path) -> dict[str, object]:
    """What the cluster could leave on this machine: links of our prefix, QEMU processes
    and power-off guards whose command line names our state directory, routes into our
    subnet, the state."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    ours = sorted(n for n in re.findall(r"^\d+: ([^:@]+)", links.stdout, re.M)
                  if n.startswith(PREFIX))  # fmt: skip
    qemus, guards = [], []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes()
            except OSError:
                continue
            if os.fsencode(str(state)) in cmd:
                if b"qemu-system" in cmd:
                    qemus.append(int(p.name))
                elif b"clusters.qemu_power" in cmd:
                    guards.append(int(p.name))
    routes = subprocess.run(["ip", "-4", "route", "show", SUBNET], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    files = sorted(p.name for p in state.iterdir()) if state.exists() else []
    return {"links": ours, "qemu": qemus, "guards": guards, "routes": routes, "files": files}


@pytest.fixture(scope="module")
def image() -> str:
    """The VM image for the etcd suite (built, or found in the cache)."""
    for tool in ("qemu-system-x86_64", "qemu-img", "mmdebstrap"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            pytest.skip(f"{tool} is not installed (bash scripts/setup installs it)")
    start = time.monotonic()
    res = clew("image", "build", "--vm", "--suite", "etcd", timeout=1700)
    assert res.returncode == 0, res.stderr
    print(f"\nclew image build --vm: {time.monotonic() - start:.1f} s: {res.stdout.strip()}")
    return res.stdout.split()[0]


def up(state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return clew("cluster", "up", "--provider", "qemu", "--nodes", "3", "--state-dir",
                str(state), *OPTIONS, *extra)  # fmt: skip


def down(state: Path) -> None:
    res = clew("cluster", "down", "--state-dir", str(state), timeout=120)
    assert res.returncode == 0, res.stderr


def clock_offset(state: Path, node: str) -> tuple[float, float]:
    """(node's clock - host's clock, half the round trip) in seconds."""
    t0 = time.time()
    res = ssh(state, node, "date +%s.%N")
    t1 = time.time()
    assert res.returncode == 0, res.stderr
    return float(res.stdout) - (t0 + t1) / 2, (t1 - t0) / 2


def ping_ms(state: Path, src: str, dst: str) -> float:
    """The shortest RTT of 10 pings from ``src`` to ``dst``, in ms (netem delays every
    packet, so the shortest shows it; a loaded host only makes some pings slower)."""
    res = ssh(state, src, f"ping -q -c 10 -i 0.2 -W 2 {dst}")
    assert res.returncode == 0, res.stdout + res.stderr
    m = re.search(r"= ([\d.]+)/[\d.]+/", res.stdout)
    assert m, res.stdout
    return float(m.group(1))


def test_a_boot_that_times_out_leaves_nothing(image: str, tmp_path: Path) -> None:
    """One VM (a cold boot is the same for one as for three) that cannot answer in 1 s:
    ``up`` fails saying so and leaves nothing. First in the file: the cluster the other
    tests share is not up yet (same subnet and prefix)."""
    state = tmp_path / "cluster"
    res = clew("cluster", "up", "--provider", "qemu", "--nodes", "1", "--state-dir",
               str(state), *OPTIONS, "--option", "saved_states=false", "--option",
               "boot_timeout=1")  # fmt: skip
    assert res.returncode != 0
    assert "did not answer within 1 s" in res.stderr, res.stderr
    assert host_state(state) == NOTHING
    down(state)  # harmless when nothing is up


@pytest.fixture(scope="module")
def shared(image: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One 3-VM cluster for every test below, brought up until it has been restored once
    (the first ``up`` on a machine boots cold and saves the states: then down and up
    again). Yields (state dir, [(start, seconds of ``up`` here, its own timings)])."""
    state = tmp_path_factory.mktemp("shared") / "cluster"
    assert host_state(state) == NOTHING
    starts = []
    try:
        for _ in range(2):  # a cold boot (which saves the states) at most once
            t = time.monotonic()
            res = up(state)
            assert res.returncode == 0, res.stderr
            extra = json.loads((state / "cluster.json").read_text())["extra"]
            starts.append((extra["start"], round(time.monotonic() - t, 1), extra["seconds"]))
            if extra["start"] == "restored":
                break
            down(state)
        print(f"\nqemu up: {starts}; accel {extra['accel']}; RSS MB {extra['rss_mb']}")
        yield state, starts
    finally:
        down(state)


def test_three_vms_up_restored_and_reachable(shared: tuple[Path, list[Any]]) -> None:
    state, starts = shared
    assert starts[-1][0] == "restored", starts
    extra = json.loads((state / "cluster.json").read_text())["extra"]
    assert extra["accel"] in ("kvm", "tcg") and extra["accel_reason"]

    status = clew("cluster", "status", "--state-dir", str(state), timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    for i, node in enumerate(("n1", "n2", "n3"), start=1):
        res = ssh(state, node, "hostname; ip -4 -br addr show eth0")
        assert res.returncode == 0, res.stderr
        assert res.stdout.split()[0] == node
        assert f"10.77.253.{10 + i}/24" in res.stdout
        # A restored guest wakes with the time it was saved at; up set it to ours.
        offset, half_rtt = clock_offset(state, node)
        assert abs(offset) < half_rtt + 1.0, (node, offset, half_rtt)

    # Each VM has its own kernel, so netem works there even where the host lacks it.
    plain = ping_ms(state, "n1", "n3")
    res = ssh(state, "n1", "tc qdisc add dev eth0 root netem delay 50ms")
    assert res.returncode == 0, res.stderr
    try:
        delayed = ping_ms(state, "n1", "n3")
    finally:
        res = ssh(state, "n1", "tc qdisc del dev eth0 root")  # the cluster is shared
        assert res.returncode == 0, res.stderr
    print(f"ping n1 -> n3, shortest of 10: {plain:.1f} ms; with netem delay 50ms: "
          f"{delayed:.1f} ms")  # fmt: skip
    assert delayed >= 50.0 > plain


#: Seconds a fault command may take on a VM here (software emulation on a loaded host).
SLOW = 180.0
#: Seconds a healed VM clock may be off ours (the nemesis's default is 1 s; a heal once
#: landed 1.4 s late here, when it set the controller's time its command carried).
HEAL_TOLERANCE = 5.0
#: etcd on n1 alone, on loopback, logging JSON to /tmp/etcd.log.
ETCD = (
    "rm -rf /tmp/etcd-data; setsid etcd --name n1 --data-dir /tmp/etcd-data "
    "--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 "
    "--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls "
    "http://127.0.0.1:2380 --initial-cluster n1=http://127.0.0.1:2380 "
    "--logger zap --log-outputs stderr >/tmp/etcd.log 2>&1 </dev/null & echo $!"
)
ETCDCTL = "ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 --command-timeout=60s"


async def etcd_time_offset(remote: Remote) -> float:
    """Make etcd log a line (a defragmentation) and return that line's timestamp, etcd's
    own reading of the clock, minus this host's time when the line was asked for."""
    before = time.time()
    await remote.run(f"{ETCDCTL} defrag >/dev/null", timeout=SLOW)
    grep = """grep '"msg":"finished defragment"' /tmp/etcd.log | tail -n 1"""
    log = (await remote.run(grep, timeout=SLOW)).stdout
    ts = json.loads(log)["ts"]  # e.g. 2026-12-03T19:40:01.123Z
    etcd_time = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    return etcd_time - before


async def node_offset(remote: Remote) -> float:
    t0 = time.time()
    out = (await remote.run("date +%s.%N", timeout=SLOW)).stdout
    t1 = time.time()
    return float(out) - (t0 + t1) / 2


def test_a_system_clock_bump_shifts_etcds_own_time_on_a_vm(
    shared: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    state = shared[0]
    cluster = Cluster.load(state)
    ctx = api.TestContext(name="qemu-clock", cluster=cluster, options={},
                          rng=random.Random(1), run_dir=tmp_path, concurrency=1,
                          time_limit=60)  # fmt: skip

    async def go() -> None:
        async with await connect_all(cluster.nodes) as remotes:
            n1, n2 = remotes["n1"], remotes["n2"]
            pid = int((await n1.run(ETCD, timeout=SLOW)).stdout)
            # The heal puts back the VM's own clock (its anchor); the slack is for a
            # starved, emulated CPU.
            nemesis = ClockNemesis(db=EtcdDB(), timeout=SLOW, tolerance=HEAL_TOLERANCE)
            try:
                deadline = time.monotonic() + SLOW
                while (await n1.run(f"{ETCDCTL} endpoint health", check=False,
                                    timeout=SLOW)).exit_status != 0:  # fmt: skip
                    assert time.monotonic() < deadline, "etcd did not become healthy"
                    await asyncio.sleep(1)
                await nemesis.setup(ctx, remotes)
                assert nemesis.mechanism == "system"  # etcd is Go: only the system clock
                real = await etcd_time_offset(n1)
                bump = {"kind": "bump", "offsets": {"n1": 10800.0}}
                done = await nemesis.invoke(ctx, {"f": "start-clock", "value": bump})
                assert done["value"] == {**bump, "mechanism": "system"}
                shifted = await etcd_time_offset(n1)
                n2_during = await node_offset(n2)
                residue = await nemesis.verify_healed(ctx)
                done = await nemesis.invoke(ctx, {"f": "stop-clock"})
                assert done["value"] == CLOCK_HEALED
                healed = await etcd_time_offset(n1)
                clean = await nemesis.verify_healed(ctx)
            finally:
                await n1.run(f"kill {pid}; rm -rf /tmp/etcd-data", check=False, timeout=SLOW)
                await nemesis.teardown(ctx)
            print(f"\netcd's clock minus ours: {real:.1f} s, bumped {shifted:.1f} s, healed "
                  f"{healed:.1f} s; n2 during the bump {n2_during:.2f} s")  # fmt: skip
            # Each reading is late by at most the time a defrag takes here (seconds).
            assert -2 < real < 60 and -HEAL_TOLERANCE < healed < 60, (real, healed)
            assert 10800 - 1 < shifted < 10800 + 60, shifted
            assert abs(n2_during) < 5, n2_during
            # While the bump holds, verify_healed sees n1's offset, and no other node's.
            offs = {n: [float(m) for r in rs for m in re.findall(r"clock is ([-+][\d.]+) s off", r)]
                    for n, rs in residue.items()}  # fmt: skip
            assert len(offs["n1"]) == 1 and abs(offs["n1"][0] - 10800) < 60, residue
            assert offs["n2"] == offs["n3"] == [], residue
            assert clean == {n: [] for n in remotes}, clean

    asyncio.run(go())


#: ``clew test etcd --faults clock,partition`` on the shared cluster: short (30 s of load,
#: 3 clients at 10 ops/s), seed 1, whose schedule bumps n1's clock by -261.414 s (and n2's
#: by +0.451 s) from 6 s to 12 s, then partitions n1 from n2 from 18 s to 24 s.
CLEW_TEST = ["test", "etcd", "--provider", "qemu", "--nodes", "3", "--faults",
             "clock,partition", "--time-limit", "30", "--interval", "6", "--concurrency", "3",
             "--rate", "10", "--seed", "1", "--no-progress",
             # a member took 40 s to start and answer at load 18 (the default is 30 s)
             "-o", "ready_timeout=180",
             # no --fault-lease: under TCG the provider's default is 60 s (renewing the
             # nodes' 10 s leases took longer than that at load, and their guards healed
             # the bump before it could show)
             "--cluster-option", f"prefix={PREFIX}",
             "--cluster-option", f"subnet={SUBNET}"]  # fmt: skip
#: Seconds etcd's Date header may differ from the host's clock and count as unshifted: it
#: has whole seconds (up to 1 s early), and the VMs' clocks were set within tens of ms.
DATE_SLACK = 2.5


def etcd_dates(stop: threading.Event, samples: list[tuple[str, float, float]]) -> None:
    """Until ``stop``: every 0.5 s, each node's etcd's own time, the Date header of its
    HTTP reply (Go's ``time.Now()``), as (node, host's time, etcd's minus host's)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while not stop.is_set():
        for i in (1, 2, 3):
            t0 = time.time()
            try:
                with opener.open(f"http://10.77.253.{10 + i}:2379/version", timeout=2) as r:
                    date = r.headers["Date"]
            except OSError:
                continue  # etcd not up (yet, or any more), or partitioned
            t1 = time.time()
            etcd = email.utils.parsedate_to_datetime(date).timestamp()
            samples.append((f"n{i}", t1, etcd - (t0 + t1) / 2))
        stop.wait(0.5)


def test_clew_test_etcd_with_clock_and_partition_faults_on_vms(
    shared: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    """``clew test etcd --provider qemu --faults clock,partition``, as a user runs it, on
    the shared cluster: valid (exit 0, not tainted: every heal verified); the ledger shows
    the clock fault applied through the system clock, and etcd's own time (the Date of its
    HTTP replies, read from this host throughout) shifted by the bump on n1 while it held,
    and only then, while n3's stayed with ours."""
    state = shared[0]
    store = tmp_path / "store"
    samples: list[tuple[str, float, float]] = []
    stop = threading.Event()
    poller = threading.Thread(target=etcd_dates, args=(stop, samples), daemon=True)
    poller.start()
    t = time.monotonic()
    try:
        res = clew(*CLEW_TEST, "--cluster-state-dir", str(state), "--store", str(store))
    finally:
        stop.set()
        poller.join()
    seconds = time.monotonic() - t
    out = res.stdout + res.stderr
    run = Path(re.search(r"run directory: (\S+)", out)[1])  # type: ignore[index]
    ledger = [json.loads(line) for line in (run / "faults.jsonl").read_text().splitlines()]
    origin = json.loads((run / "clock.json").read_text())["origin_unix_ns"] / 1e9
    summary = [(r["event"], r.get("f"), r.get("value"), round(r["time"] / 1e9, 1),
                r.get("seconds")) for r in ledger]  # fmt: skip
    print(f"\nclew test: {seconds:.1f} s, exit {res.returncode}; ledger: {summary}")
    by_node = {n: [(round(at - origin, 1), round(off, 1)) for m, at, off in samples if m == n]
               for n in ("n1", "n2", "n3")}  # fmt: skip
    print(f"etcd's clock minus ours (seconds into the run, offset): {by_node}")
    assert res.returncode == 0, out[-3000:]
    results = json.loads((run / "results.json").read_text())
    assert results["valid"] is True and results["tainted"] is False, results
    assert results["heal_verified"] is True, results

    applied = [r for r in ledger if r["event"] == "applied" and r["kind"] == "clock"]
    assert len(applied) == 1, summary
    value = applied[0]["value"]
    assert value["mechanism"] == "system", value  # etcd is Go: libfaketime cannot reach it
    assert value["kind"] == "bump" and value["offsets"]["n1"] == -261.414, (
        f"seed 1 no longer plans this bump: {value}; pick a seed that bumps one node by "
        "more than a few seconds"
    )
    start = next(r for r in ledger if r["event"] == "intent" and r["seq"] == applied[0]["seq"])
    healed = next(r for r in ledger if r["event"] == "healed" and r["kind"] == "clock")
    struck_from, healed_by = origin + start["time"] / 1e9, origin + healed["time"] / 1e9
    assert not [r for r in ledger if r["event"] == "error"], summary

    def offsets(node: str, during: bool) -> list[float]:
        return [round(off, 1) for n, at, off in samples
                if n == node and (struck_from <= at <= healed_by) == during]  # fmt: skip

    print(f"etcd's clock minus ours while the bump could hold: n1 {offsets('n1', True)}, "
          f"n3 {offsets('n3', True)}; outside: n1 {offsets('n1', False)}")  # fmt: skip
    # While the bump held, etcd on n1 read a clock 261 s behind ours (give or take the
    # Date's whole second); before and after, it agreed with ours, and so did n3 throughout.
    assert any(abs(o + 261.414) < DATE_SLACK for o in offsets("n1", True)), samples
    assert all(abs(o + 261.414) < DATE_SLACK or abs(o) < DATE_SLACK
               for o in offsets("n1", True)), samples  # fmt: skip
    assert offsets("n1", False) and all(abs(o) < DATE_SLACK for o in offsets("n1", False))
    assert offsets("n3", False) and all(
        abs(o) < DATE_SLACK for o in offsets("n3", True) + offsets("n3", False)
    ), samples


def context(state: Path, tmp_path: Path) -> tuple[Cluster, api.TestContext]:
    cluster = Cluster.load(state)
    ctx = api.TestContext(name="qemu-faults", cluster=cluster, options={},
                          rng=random.Random(1), run_dir=tmp_path, concurrency=1,
                          time_limit=60)  # fmt: skip
    return cluster, ctx


async def ping_stats(remote: Remote, dst: str, count: int = 30) -> dict[str, float]:
    """Pings from ``remote`` to ``dst``: sent, received, duplicates, shortest RTT (ms)."""
    out = (await remote.run(f"ping -q -c {count} -i 0.2 -W 2 {dst}", timeout=SLOW,
                            check=False)).stdout  # fmt: skip
    m = re.search(r"(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?", out)
    assert m, out
    rtt = re.search(r"= ([\d.]+)/[\d.]+/", out)
    return {
        "sent": float(m.group(1)),
        "received": float(m.group(2)),
        "duplicates": float(m.group(3) or 0),
        "min_ms": float(rtt.group(1)) if rtt else -1.0,
    }


def test_the_packet_nemesis_uses_netem_on_vms(
    shared: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    """clew's own packet nemesis picks netem on every VM (their kernels have it), and a
    fault from n1 to n3 delays, loses and duplicates n1's packets to n3 only; the heal
    removes it."""
    cluster, ctx = context(shared[0], tmp_path)

    async def go() -> None:
        async with await connect_all(cluster.nodes) as remotes:
            n1 = remotes["n1"]
            nemesis = PacketNemesis(timeout=SLOW)
            await nemesis.setup(ctx, remotes)
            try:
                assert nemesis.drivers == {"n1": "netem", "n2": "netem", "n3": "netem"}
                plain = await ping_stats(n1, "n3")
                fault = {"nodes": ["n1"], "to": ["n3"], "loss": 0.5, "delay_ms": 100,
                         "jitter_ms": 0, "duplicate": 0.5}  # fmt: skip
                done = await nemesis.invoke(ctx, {"f": "start-packet", "value": fault})
                assert done["value"] == fault
                faulted = await ping_stats(n1, "n3", count=50)
                other = await ping_stats(n1, "n2")
                residue = await nemesis.verify_healed(ctx)
                await nemesis.invoke(ctx, {"f": "stop-packet"})
                healed = await ping_stats(n1, "n3")
                clean = await nemesis.verify_healed(ctx)
            finally:
                await nemesis.teardown(ctx)
            print(f"\nping n1 -> n3: {plain}; with delay 100 ms, loss 0.5, duplicate 0.5: "
                  f"{faulted}; n1 -> n2 meanwhile: {other}; healed: {healed}")  # fmt: skip
            assert 0 <= plain["min_ms"] < 50 and 0 <= healed["min_ms"] < 50, (plain, healed)
            assert 100 <= faulted["min_ms"] < 400, faulted
            # netem counts a packet both lost and duplicated as sent once, so a request is
            # lost with p = 0.5 * 0.5 and duplicated with 0.25: P(50 pings show neither)
            # = 0.75^50 ~ 6e-7 each.
            assert faulted["received"] < faulted["sent"] and faulted["duplicates"] > 0, faulted
            assert healed["received"] == healed["sent"] and healed["duplicates"] == 0, healed
            assert 0 <= other["min_ms"] < 50 and other["duplicates"] == 0, other
            assert residue["n1"] and not residue["n2"] and not residue["n3"], residue
            assert clean == {n: [] for n in remotes}, clean

    asyncio.run(go())


#: On a node: no periodic or background writeback of dirty pages (so an unsynced write
#: stays in the page cache until the power-off, whatever the host's load), then a file
#: written and fsynced (with its directory), then another written without sync.
WRITES = (
    "sysctl -qw vm.dirty_writeback_centisecs=0 vm.dirty_expire_centisecs=360000 "
    "vm.dirty_background_ratio=90 vm.dirty_ratio=90 && rm -f /root/synced /root/unsynced "
    "&& sync /root && echo synced-{n} > /root/synced && sync /root/synced && sync /root "
    "&& echo unsynced-{n} > /root/unsynced && cat /root/unsynced /proc/sys/kernel/random/boot_id"
)


def test_a_power_off_loses_the_unsynced_write_and_keeps_the_synced_one(
    shared: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    """``power-off`` of n2 (SIGKILL of its QEMU) with a 3 s lease that nobody renews (as
    when the controller dies): the guard on this host powers n2 on when the lease lapses,
    a cold start from its disk; then the heal has nothing left to start. The file written
    with fsync is there, the one written just before the power-off without sync is not
    (gone, or empty: ext4's journal may commit its creation, never its delayed-allocation
    data), and every node answers again."""
    cluster, ctx = context(shared[0], tmp_path)
    marker = random.randrange(10**9)
    n2_dir = shared[0] / "nodes" / "n2"

    async def go() -> None:
        async with await connect_all(cluster.nodes) as remotes:
            n2 = remotes["n2"]
            nemesis = PowerNemesis(power_on_timeout=900, lease=3.0)
            await nemesis.setup(ctx, remotes)
            out = (await n2.run(WRITES.format(n=marker), timeout=SLOW)).stdout.split()
            assert out[0] == f"unsynced-{marker}", out  # in the page cache before the cut
            boot = out[1]
            t0 = time.monotonic()
            done = await nemesis.invoke(ctx, {"f": "start-power-off", "value": ["n2"]})
            assert done["value"] == {"targets": "nodes", "nodes": ["n2"]}
            t1 = time.monotonic()
            assert (n2_dir / "power-lease").read_text() == "3\n"
            log = n2_dir / "power-guard.log"
            while "lapsed" not in (log.read_text() if log.exists() else ""):
                assert time.monotonic() < t1 + 900, "the guard did not power n2 on"
                await asyncio.sleep(1)
            t2 = time.monotonic()
            assert "powered on" in log.read_text(), log.read_text()
            assert not (n2_dir / "power-lease").exists()
            done = await nemesis.invoke(ctx, {"f": "stop-power-off"})
            t3 = time.monotonic()
            assert done["value"] == HEALED
            after = await n2.run(
                "cat /proc/sys/kernel/random/boot_id; cat /root/synced; "
                "cat /root/unsynced 2>/dev/null; echo end",
                timeout=SLOW,
            )
            lines = after.stdout.split()
            print(f"\npower-off {t1 - t0:.2f} s; the lease lapsed and the guard's power-on "
                  f"reached SSH {t2 - t1:.1f} s later; heal {t3 - t2:.1f} s; after: {lines}; "
                  f"guard: {log.read_text().strip()}")  # fmt: skip
            assert lines[0] != boot, "n2 did not boot again"
            assert lines[1:] == [f"synced-{marker}", "end"], lines
            assert await nemesis.verify_healed(ctx) == {n: [] for n in remotes}

    asyncio.run(go())


def test_down_leaves_nothing(shared: tuple[Path, list[Any]]) -> None:
    """Last: ``down`` of the shared cluster leaves no tap, bridge, QEMU process, route or
    state file (after every test above: faults, a power-off and a cold start included)."""
    state = shared[0]
    assert host_state(state)["qemu"]  # it was up
    t = time.monotonic()
    down(state)
    print(f"\nqemu down: {time.monotonic() - t:.1f} s")
    assert host_state(state) == NOTHING
