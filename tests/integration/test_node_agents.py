"""Node agents on a real 3-node local cluster running etcd (issue 21).

* A run hands n1 its slice before the load: a kill at an offset on the run's clock, and a
  kill triggered by etcd's own log line "raft.node: ... elected leader ..." (the leader
  changed, as this member sees it: it does once it rejoins after the first kill). The
  node's record (``nodes/n1/agent.jsonl``) shows the offset strike within 20 ms of its
  planned time and the triggered one within 50 ms of the matching line (etcd's own
  timestamp on it), while the controller ran no command on n1 but lease renewals from
  the hand-over to the end of the load. The run ends healed and journaled.
* A flood of matching log lines meets the journal's caps (rate and size), and the run
  directory's copy of the journal is whole lines after the controller is SIGKILLed; the
  node's own journal then shows the lease running out and the heal.
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
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from clusters import Cluster
from harness.control import connect_all
from harness.control.remote import Remote
from harness.dbs.etcd import DEFAULT_BINARY
from harness.runner import run_test
from harness.spec import load_spec
from nemeses.guard import guard_dir
from nemeses.guard_agent import DEFAULT_HEAL_TIMEOUT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(shutil.which("python3") is None, reason="the nodes need python3"),
    pytest.mark.skipif(
        not os.path.exists(DEFAULT_BINARY), reason=f"{DEFAULT_BINARY} missing (etcd-server)"
    ),
]

CLUSTER = {"subnet": "10.77.250.0/24", "prefix": "nag-", "bridge": "nag-br0"}
NODES = 3
#: Seconds of load; the strikes are over by then.
TIME_LIMIT = 10.0
#: The run's steps for n1: a kill at 3 s (restarted 1 s later by n1 itself), then a kill
#: as soon as etcd on n1 logs that it knows the leader again (it does once it rejoins);
#: for n2, a pause at 7 s, resumed 1 s later.
STEPS = [
    {"node": "n1", "f": "start-kill", "at": 3.0, "hold": 1.0},
    {"node": "n1", "f": "start-kill", "on": {"log": "leader-changed"}, "from": 3.5,
     "until": 9.0, "hold": 1.0},
    {"node": "n2", "f": "start-pause", "at": 7.0, "hold": 1.0},
]  # fmt: skip


@pytest.fixture(scope="module")
def cluster_state(local_cluster: Any) -> Iterator[Path]:
    with local_cluster("agents", NODES, CLUSTER) as state:
        yield state


def journal(path: Path) -> list[dict[str, Any]]:
    """The records of a journal file; every line must be a whole JSON object."""
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines]


def etcd_ts_ns(line: str) -> int:
    """The wall-clock time (ns) etcd stamped on one of its zap JSON log lines."""
    ts = json.loads(line)["ts"]
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1e9)


def test_agent_strikes_on_time_while_the_controller_is_silent(
    cluster_state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, int, str]] = []  # (node, monotonic ns, command) the controller ran
    original = Remote.run

    async def recording_run(self: Remote, cmd: Any, **kw: Any) -> Any:
        sent.append((self.name, time.monotonic_ns(), str(cmd)))
        return await original(self, cmd, **kw)

    monkeypatch.setattr(Remote, "run", recording_run)
    spec = load_spec(
        suite="etcd", nodes=NODES, time_limit=TIME_LIMIT, faults="none", seed=3,
        store=str(tmp_path), cluster_state_dir=str(cluster_state), cluster_options=CLUSTER,
        recovery_time=1.0, agent=STEPS, fault_lease=3.0,
    )  # fmt: skip
    outcome = run_test(spec)
    run = outcome.run_dir
    assert outcome.results["heal_verified"] is True, outcome.results
    assert not outcome.results["tainted"]

    handed = json.loads((run / "agents.json").read_text())
    origin = handed["origin_controller_ns"]
    assert handed["handed_late_ms"] == 0, handed  # handed over before the run's origin
    records = journal(run / "nodes" / "n1" / "agent.jsonl")
    strikes = [r for r in records if r["e"] == "strike" and "skipped" not in r]
    by_trigger = {r["trigger"]: r for r in strikes}
    assert set(by_trigger) == {"at", "log"}, strikes
    timed, logged = by_trigger["at"], by_trigger["log"]
    assert timed["status"] == 0 and logged["status"] == 0
    # The offset strike: within 20 ms of its planned time, on the node's own clock.
    assert 0 <= timed["late_ms"] < 20, timed
    # The triggered strike: within 50 ms of the line, by etcd's own stamp on it (the same
    # kernel's wall clock) and by the agent's own reading of it.
    assert "elected leader" in logged["line"], logged
    from_line_ms = (logged["start_wall"] - etcd_ts_ns(logged["line"])) / 1e6
    from_seen_ms = (logged["start_mono"] - logged["seen_mono"]) / 1e6
    assert from_line_ms < 50, (from_line_ms, logged)
    assert from_seen_ms < 50, (from_seen_ms, logged)
    heals = [r for r in records if r["e"] == "heal"]
    assert len(heals) == 2 and all(h["status"] == 0 for h in heals), heals
    processes = [r["change"] for r in records if r["e"] == "process"]
    assert processes.count("exit") == 2 and processes.count("start") == 2, processes
    assert any(r["e"] == "clock" for r in records)
    # Offset samples, one per lease write: the nodes share this kernel's monotonic clock,
    # so every sample must find an offset within its own round trip of zero.
    samples = journal(run / "nodes" / "n1" / "clock.jsonl")
    assert len(samples) >= 3
    assert all(abs(c["offset_ns"]) <= c["rtt_ns"] for c in samples), samples
    # The ledger, and so the report's fault windows, show what the node struck.
    agent_windows = [(w["kind"], w["targets"]) for w in outcome.results["faults"]]
    assert agent_windows.count(("kill", ["n1"])) == 2, outcome.results["faults"]
    assert agent_windows.count(("pause", ["n2"])) == 1, outcome.results["faults"]
    # n2 paused its member at 7 s and resumed it a second later, by itself.
    n2 = journal(run / "nodes" / "n2" / "agent.jsonl")
    (paused,) = [r for r in n2 if r["e"] == "strike" and "skipped" not in r]
    assert paused["f"] == "start-pause" and paused["status"] == 0 and paused["late_ms"] < 20
    assert [r["change"] for r in n2 if r["e"] == "process"][1:] == ["stop", "cont"]
    # Silence: from the hand-over to the end of the load, the controller ran nothing on
    # n1 but lease renewals (which also bring the journal back).
    end = origin + round(TIME_LIMIT * 1e9)
    window = [c for n, t, c in sent if n == "n1" and origin <= t <= end]
    assert window, "the lease was not renewed in the window"
    assert all("/leases/.agent-slice.tmp" in c for c in window), window
    print(f"\noffset strike {timed['late_ms']:.3f} ms after its planned time; triggered "
          f"strike {from_line_ms:.1f} ms after etcd stamped the line ({from_seen_ms:.3f} ms "
          f"after the agent read it); kill scripts took {timed['done_ms']:.1f} and "
          f"{logged['done_ms']:.1f} ms; {len(window)} lease renewals to n1 in the "
          f"{TIME_LIMIT:g} s window; {len(samples)} clock samples, |offset| at most "
          f"{max(abs(c['offset_ns']) for c in samples) / 1e6:.2f} ms (round trips "
          f"{min(c['rtt_ns'] for c in samples) / 1e6:.1f}-"
          f"{max(c['rtt_ns'] for c in samples) / 1e6:.1f} ms); load "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip


FLOOD_LINES = 20_000
#: Seconds into the run of a strike due after the controller is gone (never struck).
LATE_STRIKE = 20.0
JOURNAL_BYTES = 65_536
JOURNAL_RATE = 100


def test_journal_caps_hold_under_a_flood_and_survive_a_controller_sigkill(
    cluster_state: Path, tmp_path: Path
) -> None:
    step = {"node": "n2", "f": "start-kill", "at": 2.0, "hold": 1.0}
    # Due long after the controller is SIGKILLed and the lease has run out: never struck.
    late = {"node": "n2", "f": "start-kill", "at": LATE_STRIKE}
    cmd = [
        sys.executable, "-m", "harness.cli", "test", "etcd", "--nodes", str(NODES),
        "--time-limit", "60", "--faults", "none", "--seed", "4", "--store", str(tmp_path),
        "--cluster-state-dir", str(cluster_state), "--fault-lease", "3",
        "--agent-step", json.dumps(step), "--agent-step", json.dumps(late),
        "--agent-journal-bytes", str(JOURNAL_BYTES),
        "--agent-journal-rate", str(JOURNAL_RATE), "--no-progress",
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
        time.sleep(4.0)  # the offset strike and its heal are done
        flood = (
            f'i=0; while [ $i -lt {FLOOD_LINES} ]; do echo \'{{"msg":"raft.node: aa changed '
            f"leader from bb to cc at term '$i'\"}}'; i=$((i+1)); done >> /opt/etcd/etcd.log"
        )

        async def on_n2(script: str) -> str:
            cluster = Cluster.load(cluster_state)
            async with await connect_all([n for n in cluster.nodes if n.name == "n2"]) as rs:
                return (await rs["n2"].run(script, timeout=120)).stdout

        t0 = time.monotonic()
        asyncio.run(on_n2(flood))
        time.sleep(1.0)
        asyncio.run(on_n2(flood))  # the second flood meets the size cap
        flood_s = time.monotonic() - t0
        time.sleep(2.5)  # a lease renewal or two bring the journal back
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()

    copied = journal(run_dir / "nodes" / "n2" / "agent.jsonl")  # whole lines only
    assert [r["e"] for r in copied][:2] == ["start", "slice"]
    assert any(r["e"] == "strike" and r.get("trigger") == "at" for r in copied)
    # Past the lease, n2 ends its slice and heals what is left, by itself; and past the
    # late strike's time, it has not struck it.
    origin = json.loads((run_dir / "agents.json").read_text())["origin_controller_ns"]
    # The lease runs out 3 s after the SIGKILL and its heal may take up to the agent's heal
    # timeout; drop counts, once the journal is full, are summarized at doubling intervals.
    deadline = time.monotonic() + 3 + DEFAULT_HEAL_TIMEOUT + 20
    while True:
        on_node = asyncio.run(on_n2(f"cat {guard_dir('clew')}/agent.jsonl"))
        records = [json.loads(line) for line in on_node.splitlines()]
        past_late = time.monotonic_ns() > origin + (LATE_STRIKE + 1) * 1_000_000_000
        counted = sum(
            r.get("n_rate", 0) + r.get("n_size", 0) for r in records if r["e"] == "dropped"
        )
        counted += sum(1 for r in records if r["e"] == "log")
        if (
            '"reason":"lease-expired"' in on_node and past_late and counted >= 2 * FLOOD_LINES
        ) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    size = len(on_node.encode())
    logs = [r for r in records if r["e"] == "log"]
    drops = [r for r in records if r["e"] == "dropped"]
    by_rate = sum(r.get("n_rate", 0) for r in drops)
    by_size = sum(r.get("n_size", 0) for r in drops)
    assert size <= JOURNAL_BYTES, size
    assert by_rate > 0 and by_size > 0, drops
    assert len(logs) + by_rate + by_size >= 2 * FLOOD_LINES  # every line counted
    # At most the rate per second, plus one second's burst, over the journaled span.
    span = (logs[-1]["mono"] - logs[0]["mono"]) / 1e9
    assert JOURNAL_RATE <= len(logs) <= JOURNAL_RATE * (span + 1) + 1, (len(logs), span)
    assert len(drops) <= flood_s + 10  # a summary a second at most
    assert any(r["e"] == "lease" and r["state"] == "expired" for r in records), records[-5:]
    healed = [r for r in records if r["e"] == "healed" and r["reason"] == "lease-expired"]
    assert healed, (records[-5:], asyncio.run(on_n2(f"tail -5 {guard_dir('clew')}/guard.jsonl")))
    expired = next(r for r in records if r["e"] == "lease" and r["state"] == "expired")
    ended = [r for r in records if r["e"] == "slice" and r["state"] == "ended"]
    assert ended and "lease" in ended[0]["why"], ended
    assert not [r for r in records if r["e"] == "strike" and r["id"] == "s2"], records[-5:]
    assert len(copied) <= len(records)
    print(f"\ntwo floods of {FLOOD_LINES} matching lines in {flood_s:.2f} s: {len(logs)} "
          f"journaled over {span:.2f} s (rate cap {JOURNAL_RATE}/s), {by_rate} dropped by rate "
          f"and {by_size} by size, journal {size} bytes (cap {JOURNAL_BYTES}); the run "
          f"directory's copy had {len(copied)} whole lines at the SIGKILL; load "
          f"{os.getloadavg()[0]:.1f}; the lease's heal took "
          f"{(healed[0]['mono'] - expired['mono']) / 1e9:.2f} s")  # fmt: skip
