"""Clock faults on a real 2-node local cluster: the effect is observed in a real process.

On each node a Python program started through the node's Remote, under ``faketime_env``,
writes ``time.time()`` and ``time.monotonic()`` every 0.1 s. Its monotonic clock is real
(and, with no time namespace, the same clock as the controller's), so ``wall - monotonic``
minus its value before any fault is exactly the offset the program sees. A bump of n1 must
shift n1's program by 3600 s and nothing else (n2's program, and the unfaked ``date`` of
both nodes, keep real time); a strobe must flip n1's program between two offsets; a heal
must bring it back. The local nodes share the host's clock, so the system-clock mechanism
is never used here, and etcd (Go) must be refused before anything is touched. Own subnet and
prefix; the programs are stopped by PID and the cluster is torn down by the fixture.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shlex
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clusters import Cluster, ClusterSpec, get_provider
from harness import api
from harness.control import Remote, Remotes, connect_all
from harness.dbs.etcd import EtcdDB
from harness.errors import NemesisError
from nemeses.clock import HEALED, ClockNemesis, faketime_argv, find_libfaketime

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(
        not os.path.exists(find_libfaketime()), reason="libfaketime is not installed"
    ),
]

SUBNET = "10.77.131.0/24"
PREFIX = "cck-"
#: Where each node's probe program writes its readings (``/tmp`` is per node).
READINGS = "/tmp/cck-clock-probe.log"
#: The probe: wall time between two monotonic readings, every 0.1 s, one line each (the
#: two monotonic readings tell whether the process was interrupted meanwhile, as happens on
#: a loaded machine: such a reading cannot be placed in time). It waits with select:
#: under libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1, Python 3.11's time.sleep
#: (clock_nanosleep on CLOCK_MONOTONIC, TIMER_ABSTIME) fails with EINVAL (libfaketime#426).
PROBE = (
    "import select, time\n"
    "while True:\n"
    "    a = time.monotonic(); w = time.time(); b = time.monotonic()\n"
    "    print(f'{w:.4f} {a:.4f} {b:.4f}', flush=True)\n"
    "    select.select([], [], [], 0.1)\n"
)
#: Seconds a reading may differ from the offset it should show (a reading is taken every
#: 0.1 s, and a file change applies at the next read).
SLACK = 0.3
#: A reading whose monotonic readings are further apart than this (seconds) is left out.
TIGHT = 0.005
#: Seconds to wait for what a fault should show (generous: the machine may be loaded).
PATIENCE = 30.0
ETCD_REFUSAL = (
    "clock faults cannot shift etcd's clock on the local provider: etcd is a Go program and "
    "reads the time through the vDSO, which libfaketime cannot intercept, and the local nodes "
    "share the host's clock; use VM nodes (--provider qemu, static or vagrant, where the system "
    "clock can be set) or a database that reads time through libc"
)


class ProbeDB:
    """The "database" of these tests: the probe program, which reads time through libc."""

    name = "time-probe"
    clock_reads = "libc"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("clock-cluster")
    provider = get_provider("local")
    spec = ClusterSpec(
        nodes=2,
        name="clock",
        state_dir=str(state),
        options={"subnet": SUBNET, "prefix": PREFIX, "bridge": f"{PREFIX}br0"},
    )
    try:
        yield provider.up(spec)
    finally:
        provider.down(state)


def context(cluster: Cluster, seed: int = 1) -> api.TestContext:
    return api.TestContext(
        name="clock",
        cluster=cluster,
        options={},
        rng=random.Random(seed),
        run_dir=Path("/nonexistent"),
        concurrency=1,
        time_limit=60,
    )


def clean(remotes: Remotes) -> dict[str, list[str]]:
    return {name: [] for name in remotes}


async def start_probe(remote: Remote, faketime_file: str) -> int:
    """Start the probe on the node, detached, under libfaketime; return its PID."""
    argv = faketime_argv(["python3", "-u", "-c", PROBE], faketime_file)
    script = f"rm -f {READINGS}; setsid {shlex.join(argv)} >{READINGS} 2>&1 </dev/null & echo $!"
    return int((await remote.run(script, timeout=10)).stdout)


async def stop_probe(remote: Remote, pid: int) -> None:
    await remote.run(f"kill {pid} 2>/dev/null; true", timeout=10)


async def readings(remote: Remote) -> list[tuple[float, float]]:
    """(wall, monotonic) of every complete, uninterrupted reading so far."""
    out = (await remote.run(["cat", READINGS], timeout=10)).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            try:
                wall, before, after = (float(p) for p in parts)
            except ValueError:
                continue
            if after - before <= TIGHT:
                found.append((wall, (before + after) / 2))
    return found


def offsets(rows: list[tuple[float, float]], base: float, lo: float, hi: float) -> list[float]:
    """The offsets (wall - monotonic - base) the program saw at monotonic times in (lo, hi)."""
    return [wall - mono - base for wall, mono in rows if lo < mono < hi]


async def node_clock_is_real(remote: Remote) -> bool:
    """Whether the node's unfaked ``date`` falls within the controller's time of the call
    (0.1 s of slack for the two clocks' readings)."""
    before = time.time()
    out = (await remote.run("date +%s.%N", timeout=10)).stdout
    return before - 0.1 <= float(out) <= time.time() + 0.1


async def wait_for_readings(remote: Remote, n: int, after: float = 0.0) -> None:
    """Until the probe on ``remote`` has ``n`` readings taken after monotonic ``after``."""
    deadline = time.monotonic() + PATIENCE
    while len([m for _, m in await readings(remote) if m > after]) < n:
        assert time.monotonic() < deadline, f"the probe wrote fewer than {n} readings"
        await asyncio.sleep(0.1)


def base0(rows: list[tuple[float, float]], before: float) -> float:
    """wall - monotonic of the readings before any fault (monotonic ``before``)."""
    return statistics.median(w - m for w, m in rows if m < before)


def strobe_flips(values: list[float], delta: float) -> tuple[set[float], int]:
    """The offsets a strobe showed (each rounded to 0 or ``delta`` when within SLACK), and
    how many times it flipped between them."""
    near = [0.0 if abs(x) < SLACK else delta if abs(x - delta) < SLACK else x for x in values]
    return set(near), sum(1 for a, b in itertools.pairwise(near) if a != b)


def test_bump_and_strobe_shift_only_the_faked_process_and_heal_restores_it(
    cluster: Cluster,
) -> None:
    async def go() -> None:
        ctx = context(cluster, seed=7)
        async with await connect_all(cluster.nodes) as remotes:
            nemesis = ClockNemesis(db=ProbeDB())
            await nemesis.setup(ctx, remotes)
            assert nemesis.mechanism == "libfaketime"
            assert await nemesis.verify_healed(ctx) == clean(remotes)
            pids = {n: await start_probe(remotes[n], nemesis.faketime_path) for n in remotes}
            try:
                for n in remotes:
                    await wait_for_readings(remotes[n], 3)
                t0 = time.monotonic()
                bump = {"kind": "bump", "offsets": {"n1": 3600.0}}
                done = await nemesis.invoke(ctx, {"f": "start-clock", "value": bump})
                t1 = time.monotonic()
                assert done["value"] == {**bump, "mechanism": "libfaketime"}
                await wait_for_readings(remotes["n1"], 5, after=t1 + 0.15)
                for n in remotes:  # the nodes' own clocks are untouched: per process only
                    assert await node_clock_is_real(remotes[n])
                residue = await nemesis.verify_healed(ctx)
                assert residue["n1"] == [
                    f"libfaketime offset file {nemesis.faketime_path} holds '+3600.000'"
                ]
                assert residue["n2"] == []

                t2 = time.monotonic()
                strobe = {"kind": "strobe", "nodes": ["n1"], "delta": 100.0, "period": 0.3,
                          "duration": 60.0}  # fmt: skip
                await nemesis.invoke(ctx, {"f": "start-clock", "value": strobe})
                t3 = time.monotonic()
                deadline = t3 + PATIENCE
                while True:  # until the strobe has flipped the offset back and forth
                    n1 = await readings(remotes["n1"])
                    seen, flips = strobe_flips(offsets(n1, base0(n1, t0), t3 + 0.15, 1e12), 100)
                    if flips >= 4 or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
                residue = await nemesis.verify_healed(ctx)
                assert any(r.startswith("clock strobe loop still running") for r in residue["n1"])

                t4 = time.monotonic()
                done = await nemesis.invoke(ctx, {"f": "stop-clock"})
                t5 = time.monotonic()
                assert done["value"] == HEALED
                await wait_for_readings(remotes["n1"], 5, after=t5 + 0.15)
                assert await nemesis.verify_healed(ctx) == clean(remotes)
                t6 = time.monotonic()

                n1 = await readings(remotes["n1"])
                base = base0(n1, t0)
                before = offsets(n1, base, 0, t0)
                bumped = offsets(n1, base, t1 + 0.15, t2)
                strobed = offsets(n1, base, t3 + 0.15, t4)
                healed = offsets(n1, base, t5 + 0.15, t6)
                assert len(before) >= 3 and all(abs(x) < SLACK for x in before), before
                assert len(bumped) >= 5, bumped
                assert all(abs(x - 3600) < SLACK for x in bumped), bumped
                seen, flips = strobe_flips(strobed, 100.0)
                assert seen == {0.0, 100.0}, strobed  # only the two offsets, both seen
                assert flips >= 4, strobed  # a 0.3 s period, watched until it flipped 4 times
                assert len(healed) >= 5 and all(abs(x) < SLACK for x in healed), healed

                n2 = await readings(remotes["n2"])
                base2 = base0(n2, t0)
                assert all(abs(x) < SLACK for x in offsets(n2, base2, 0, t6)), "n2 moved"
            finally:
                for n, pid in pids.items():
                    await stop_probe(remotes[n], pid)
                await nemesis.teardown(ctx)

    asyncio.run(go())


def test_a_strobe_ends_by_itself_and_leaves_nothing(cluster: Cluster) -> None:
    async def go() -> None:
        ctx = context(cluster, seed=2)
        async with await connect_all(cluster.nodes) as remotes:
            nemesis = ClockNemesis(db=ProbeDB())
            await nemesis.setup(ctx, remotes)
            duration = 4.0
            strobe = {"kind": "strobe", "nodes": ["n1", "n2"], "delta": -30.0, "period": 0.1,
                      "duration": duration}  # fmt: skip
            started = time.monotonic()
            await nemesis.invoke(ctx, {"f": "start-clock", "value": strobe})
            assert (await nemesis.verify_healed(ctx))["n2"]  # still strobing
            deadline = started + duration + PATIENCE
            while (residue := await nemesis.verify_healed(ctx)) != clean(remotes):  # no heal run
                assert time.monotonic() < deadline, residue
                await asyncio.sleep(0.2)
            assert time.monotonic() >= started + duration  # it ran its whole time
            await nemesis.teardown(ctx)

    asyncio.run(go())


def test_heal_needs_no_memory_and_the_guard_script_heals_alone(cluster: Cluster) -> None:
    async def go() -> None:
        ctx = context(cluster, seed=3)
        async with await connect_all(cluster.nodes) as remotes:
            first = ClockNemesis(db=ProbeDB())
            await first.setup(ctx, remotes)
            strobe = {"kind": "strobe", "nodes": ["n1", "n2"], "delta": 9.0, "period": 0.2,
                      "duration": 60.0}  # fmt: skip
            await first.invoke(ctx, {"f": "start-clock", "value": strobe})
            # The controller is gone: the node-side guard runs each node's heal script.
            for n in remotes:
                await remotes[n].run(first.heal_script(n), timeout=20)
                await remotes[n].run(first.heal_script(n), timeout=20)  # idempotent
            assert await first.verify_healed(ctx) == clean(remotes)

            bump = {"kind": "bump", "offsets": {"n1": 5.0, "n2": -5.0}}
            await first.invoke(ctx, {"f": "start-clock", "value": bump})
            await first.invoke(ctx, {"f": "start-clock", "value": strobe})
            # A new controller knows nothing of them: its setup heals every node.
            second = ClockNemesis(db=ProbeDB())
            await second.setup(ctx, remotes)
            assert await second.verify_healed(ctx) == clean(remotes)
            out = await remotes["n1"].run(["cat", second.faketime_path], timeout=10)
            assert out.stdout == "+0\n"

    asyncio.run(go())


def test_etcd_on_the_local_provider_is_refused_before_the_run(cluster: Cluster) -> None:
    async def go() -> None:
        ctx = context(cluster)
        async with await connect_all(cluster.nodes) as remotes:
            nemesis = ClockNemesis(db=EtcdDB())
            with pytest.raises(NemesisError) as e:
                await nemesis.setup(ctx, remotes)
            assert str(e.value) == ETCD_REFUSAL
            with pytest.raises(NemesisError, match="share the host's clock"):
                await ClockNemesis(db=ProbeDB(), mechanism="system").setup(ctx, remotes)

    asyncio.run(go())
