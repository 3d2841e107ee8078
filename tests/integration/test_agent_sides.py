"""Node agents strike partitions, clock faults and packet faults (issue 21) on a real
3-node local cluster running bugkv: real nftables, iptables and the NFQUEUE delayer in
the nodes' namespaces, libfaketime under the servers.

The run hands the nodes, before the load:

* a partition at 2 s cutting n1 off (every node applies its own side of the grudge at the
  same offset on the run's clock; each heals its side 1.5 s later);
* a clock bump of n2's server, +30 s at 2.2 s (left for the run's end to heal);
* on n3, a clock bump of its own server, -20 s, the moment its log says its term
  changed (from 2.0 s; healed 1 s later by n3);
* a packet fault at 5 s: what n3 sends n1 and n2 is 20% lost and delayed 50 ms (no netem
  here, so the receivers n1 and n2 hold the rules; healed 1 s later).

Every side strikes within 20 ms of its planned time by its node's own record; the three
sides of the partition land within a few ms of one another; bugkv elects a new leader
behind the partition (its term rises on some node inside the window); n2's server stamps
its log lines 30 s ahead after the bump; the ledger shows every side; and the run ends
healed with nothing left (``heal_verified``).

Then a run whose controller is SIGKILLed while an agent-struck partition, clock bump and
packet fault hold: every node's agent heals its own sides when the lease runs out.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clusters import Cluster
from harness.control import connect_all
from harness.runner import run_test
from harness.spec import load_spec
from nemeses.clock import find_libfaketime
from nemeses.clock_scripts import clock_dir
from nemeses.clock_scripts import verify_script as clock_verify
from nemeses.guard import guard_dir
from nemeses.packet_scripts import default_queue, packet_verify_script
from nemeses.partition_scripts import verify_script as partition_verify

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    # Strikes within 20 ms of their offset: measured alone, not beside the parallel part's
    # VMs and clusters (there a strike at 2 s or 5 s was up to 0.8 s late).
    pytest.mark.serial,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(shutil.which("python3") is None, reason="the nodes need python3"),
    pytest.mark.skipif(shutil.which("nft") is None, reason="partitions need nft"),
    pytest.mark.skipif(not os.path.exists(find_libfaketime()), reason="libfaketime missing"),
]

CLUSTER = {"subnet": "10.77.226.0/24", "prefix": "nap-", "bridge": "nap-br0"}
NODES = ("n1", "n2", "n3")
TIME_LIMIT = 8.0
PARTITION = {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}
PACKET = {"nodes": ["n3"], "to": ["n1", "n2"], "loss": 0.2, "delay_ms": 50, "jitter_ms": 5}
STEPS = [
    {"f": "start-partition", "value": PARTITION, "at": 2.0, "hold": 1.5},
    {"f": "start-clock", "value": {"kind": "bump", "offsets": {"n2": 30.0}}, "at": 2.2},
    {"node": "n3", "f": "start-clock", "value": {"kind": "bump", "offsets": {"n3": -20.0}},
     "on": {"log": "term-changed"}, "from": 2.0, "hold": 1.0},
    {"f": "start-packet", "value": PACKET, "at": 5.0, "hold": 1.0},
]  # fmt: skip


@pytest.fixture(scope="module")
def cluster_state(local_cluster: Any) -> Iterator[Path]:
    with local_cluster("agent-sides", len(NODES), CLUSTER) as state:
        yield state


def journal(path: Path) -> list[dict[str, Any]]:
    """The records of a journal file; every line must be a whole JSON object."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_agents_strike_their_sides_of_partition_clock_and_packet_faults(
    cluster_state: Path, tmp_path: Path
) -> None:
    spec = load_spec(
        suite="bugkv", workload="register", nodes=len(NODES), time_limit=TIME_LIMIT,
        faults="none", seed=11, store=str(tmp_path), cluster_state_dir=str(cluster_state),
        cluster_options=CLUSTER, recovery_time=1.0, agent=STEPS, fault_lease=3.0,
    )  # fmt: skip
    outcome = run_test(spec)
    run = outcome.run_dir
    assert outcome.results["heal_verified"] is True, outcome.results.get("heal_residue")
    assert not outcome.results["tainted"]
    records = {n: journal(run / "nodes" / n / "agent.jsonl") for n in NODES}
    struck = {
        (r["id"], n): r
        for n, rs in records.items()
        for r in rs
        if r["e"] == "strike" and "skipped" not in r
    }
    assert all(r["status"] == 0 for r in struck.values()), struck

    # The partition: every node struck its side at 2 s, within 20 ms, and healed it.
    sides = {n: struck["s1", n] for n in NODES}
    assert sides["n1"]["side"] == {"drops_from": ["n2", "n3"]}
    assert sides["n2"]["side"] == {"drops_from": ["n1"]}
    assert all(0 <= s["late_ms"] < 20 and s["planned_run"] == 2.0 for s in sides.values())
    landed = [s["start_run"] + s["done_ms"] / 1e3 for s in sides.values()]
    spread_ms = (max(landed) - min(landed)) * 1e3
    heals = {n: [r for r in rs if r["e"] == "heal" and r["id"] == "s1"]
             for n, rs in records.items()}  # fmt: skip
    assert all(len(h) == 1 and h[0]["status"] == 0 for h in heals.values()), heals
    # Behind it bugkv's term rose (n1 campaigns alone, or n2 and n3 elect a new leader).
    in_window = [r for rs in records.values() for r in rs if r["e"] == "log"
                 and "term-changed" in r["patterns"] and 2.0 <= r["run"] <= 3.6]  # fmt: skip
    assert in_window, "no term changed while n1 was cut off"

    # The clock: n2's bump at 2.2 s (healed at the end), n3's on its own term change.
    bump = struck["s2", "n2"]
    assert 0 <= bump["late_ms"] < 20 and bump["side"] == {"offset": 30.0}
    assert not [k for k in struck if k[0] == "s2" and k[1] != "n2"]
    triggered = struck["s3", "n3"]
    assert triggered["trigger"] == "log" and "term changed" in triggered["line"], triggered
    assert (triggered["start_mono"] - triggered["seen_mono"]) / 1e6 < 50
    # n2's server stamps its log lines with its (faked) wall clock: 30 s ahead after.
    ahead = [float(r["line"].split()[0]) * 1e9 - r["wall"] for r in records["n2"]
             if r["e"] == "log" and r["run"] > bump["start_run"] + 0.1]  # fmt: skip
    assert ahead and all(29.5e9 < a < 30.5e9 for a in ahead), ahead
    # The packet fault: the receivers n1 and n2 hold the rules (and the delayer).
    pkt = {n: struck["s4", n] for n in ("n1", "n2")}
    assert ("s4", "n3") not in struck
    assert all(0 <= s["late_ms"] < 20 for s in pkt.values()), pkt

    # The ledger (and so results.json's fault windows) shows each node's side.
    windows = [(w["kind"], tuple(w["targets"])) for w in outcome.results["faults"]]
    assert sorted(w for w in windows if w[0] == "partition") == [("partition", (n,)) for n in NODES]
    assert ("clock", ("n2",)) in windows and ("clock", ("n3",)) in windows
    assert sorted(w for w in windows if w[0] == "packet") == [("packet", ("n1",)),
                                                             ("packet", ("n2",))]  # fmt: skip
    # Each side's heal closes its own window; n2's bump, never held, the run's final heal.
    stops = {(w["kind"], tuple(w["targets"])): w["stop"] for w in outcome.results["faults"]}
    assert stops["clock", ("n3",)] < TIME_LIMIT < stops["clock", ("n2",)], stops
    assert all(3.5 <= stops["partition", (n,)] < TIME_LIMIT for n in NODES), stops
    ledger = [json.loads(x) for x in (run / "faults.jsonl").read_text().splitlines()]
    agent = [r for r in ledger if r.get("source") == "agent" and r["event"] == "applied"]
    assert all("done_ms" in r for r in agent)
    pkt_ms = ", ".join(f"{s['done_ms']:.0f}" for s in pkt.values())
    late = sorted(r["late_ms"] for r in struck.values() if r["trigger"] == "at")
    print(f"\n{len(struck)} sides struck; offset strikes {late[0]:.2f}-{late[-1]:.2f} ms late; "
          f"partition sides landed within {spread_ms:.1f} ms of one another (scripts "
          f"{min(s['done_ms'] for s in sides.values()):.1f}-"
          f"{max(s['done_ms'] for s in sides.values()):.1f} ms); {len(in_window)} term "
          f"change(s) behind the partition; n3's clock bump {triggered['late_ms']:.2f} ms "
          f"after its log line; n2's log stamps after its bump ahead by "
          f"{', '.join(f'{a / 1e9:.2f}' for a in ahead) or 'none logged'} s; packet "
          f"scripts {pkt_ms} ms; "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip


def test_a_controller_sigkill_leaves_the_agents_sides_to_their_lease(
    cluster_state: Path, tmp_path: Path
) -> None:
    """The controller dies while an agent-struck partition, clock bump and packet fault
    hold (no ``hold``: the run's end was to heal them). Each node's agent heals its sides
    when the lease runs out: no partition rule, clock offset, packet rule or delayer is
    left on any node."""
    steps = [{"f": "start-partition", "value": PARTITION, "at": 1.0},
             {"f": "start-clock", "value": {"kind": "bump", "offsets": {"n2": 30.0}},
              "at": 1.0},
             {"f": "start-packet", "value": PACKET, "at": 1.0}]  # fmt: skip
    cmd = [
        sys.executable, "-m", "harness.cli", "test", "bugkv", "-w", "register",
        "--nodes", str(len(NODES)), "--time-limit", "60", "--faults", "none", "--seed", "12",
        "--store", str(tmp_path), "--cluster-state-dir", str(cluster_state),
        "--fault-lease", "3", "--no-progress",
        *(f"--agent-step={json.dumps(s)}" for s in steps),
        *(f"--cluster-option={k}={v}" for k, v in CLUSTER.items()),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            cwd=Path(__file__).parents[2])  # fmt: skip
    try:
        run_dir = None
        deadline = time.monotonic() + 120
        while run_dir is None:
            assert time.monotonic() < deadline and proc.poll() is None, "no run directory"
            line = proc.stderr.readline() if proc.stderr else ""
            if line.startswith("run directory: "):
                run_dir = Path(line.split(": ", 1)[1].strip())
        while not (run_dir / "agents.json").exists():
            assert time.monotonic() < deadline and proc.poll() is None, "never handed over"
            time.sleep(0.1)
        time.sleep(2.5)  # the sides are struck at 1 s (the origin is 1 s after hand-over)
        holding = asyncio.run(on_nodes(cluster_state, _RESIDUE))
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    # Before the SIGKILL the faults held: every node's nft table, n2's +30 s, the packet
    # rules and delayer on the receivers n1 and n2.
    assert all("nft table inet clew present" in out for out in holding.values()), holding
    assert "faketime +30.000" in holding["n2"], holding
    assert all("delayer pid" in holding[n] and "CLEW-PACKET present" in holding[n]
               for n in ("n1", "n2")), holding  # fmt: skip
    deadline = time.monotonic() + 40
    while True:
        journals = asyncio.run(on_nodes(cluster_state, f"cat {guard_dir('clew')}/agent.jsonl"))
        if all('"reason":"lease-expired"' in j for j in journals.values()):
            break
        assert time.monotonic() < deadline, "\n\n".join(
            f"{n} (no lease-expired heal):\n{j[-3000:]}" for n, j in journals.items()
            if '"reason":"lease-expired"' not in j
        )  # fmt: skip
        time.sleep(0.5)
    healed_after = time.monotonic() - killed
    left = asyncio.run(on_nodes(cluster_state, _RESIDUE))
    assert not any("present" in out or "delayer" in out or "NFQUEUE" in out
                   for out in left.values()), left  # fmt: skip
    assert all("faketime" not in out or "faketime +0" in out for out in left.values()), left
    print(
        f"\nafter the controller's SIGKILL every node healed its sides by itself within "
        f"{healed_after:.1f} s (lease 3 s); left: {left}; load {os.getloadavg()[0]:.1f}"
    )


#: Prints what is left of clew's partition, clock and packet faults on a node.
_RESIDUE = (partition_verify("clew") + clock_verify(clock_dir("clew"))
            + packet_verify_script("clew", default_queue("clew")))  # fmt: skip


async def on_nodes(state: Path, script: str) -> dict[str, str]:
    """``script``'s output on every node of the cluster in ``state`` (as root)."""
    cluster = Cluster.load(state)
    async with await connect_all(list(cluster.nodes)) as remotes:
        outs = await asyncio.gather(*(r.run(script, timeout=60, sudo=True)
                                      for r in remotes.values()))  # fmt: skip
    return {n: o.stdout for n, o in zip(remotes, outs, strict=True)}
