"""ldfi hands the node agents the ``tail`` class's kill of the successor, on a real 3-node
local cluster running bugkv (issue 21, build item 3: the schedulers strike on a trigger).

The ldfi state is seeded as if earlier runs had shown the read, write and tail classes
(a cut of the leader left writes it never acknowledged) and a takeover of 1 s; the run has
node agents (a step that never fires) and faults ``kill,partition``. ldfi then hands every
node "kill your server ``delay`` s after you log your election, restarted ``hold`` later"
(:func:`nemeses.schedulers.ldfi.tail_kill_timing`), strikes the cut of the leader and its
heal itself, and waits for the agents' kill. The test checks, from the run's own records:
the ledger holds ldfi's steps with their reason; the node bugkv elected while the leader
was cut off struck its kill on its election line, ``delay`` s after the agent read the
line (measured on the node's monotonic clock, from its ``agent.jsonl``), after the cut's
heal, and it was not the cut leader; the run ended healed and journaled. Then the next
run's ldfi reads this one: the agents' kill is the hypothesis's fault, and the lesson
says so.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.runner import run_test
from harness.spec import load_spec
from nemeses.lineage import OutcomeClass
from nemeses.scheduler import SchedulerArgs, make_scheduler
from nemeses.schedulers import memory
from nemeses.schedulers.ldfi import LdfiScheduler, LdfiState, agent_journals, isolated_node

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(shutil.which("python3") is None, reason="the nodes need python3"),
]

CLUSTER = {"subnet": "10.77.52.0/24", "prefix": "ahs-", "bridge": "ahs-br0"}
NODES = ("n1", "n2", "n3")
TIME_LIMIT = 13.0  # the hypothesis is planned to end by 10 s (a takeover of 1 s, ops of 1 s)


@pytest.fixture(scope="module")
def cluster_state(local_cluster: Any) -> Iterator[Path]:
    with local_cluster("ldfi-agent-steps", len(NODES), CLUSTER) as state:
        yield state


def seed_state(store: Path) -> None:
    """ldfi's memory as if earlier runs had shown the classes and timings."""
    state = LdfiState()
    state.observe({c: OutcomeClass(c, "n1", 50) for c in ("read", "write", "tail")})
    state.timing.update(takeover=1.0, op=1.0)
    path = memory.memory_path("ldfi", store, "bugkv")
    path.parent.mkdir(parents=True, exist_ok=True)
    memory.save(path, state.to_json())


def test_ldfi_hands_the_agents_the_successors_kill(cluster_state: Path, tmp_path: Path) -> None:
    seed_state(tmp_path)
    spec = load_spec(
        suite="bugkv", workload="register", nodes=len(NODES), time_limit=TIME_LIMIT,
        faults="kill,partition", scheduler="ldfi", interval=1.0, seed=5, store=str(tmp_path),
        cluster_state_dir=str(cluster_state), cluster_options=CLUSTER, recovery_time=1.0,
        agent_watch=True, fault_lease=3.0,
    )  # fmt: skip
    outcome = run_test(spec)
    run = outcome.run_dir
    assert outcome.results["heal_verified"] is True
    assert (run / "history.jsonl").stat().st_size > 0
    ledger = [json.loads(line) for line in (run / "faults.jsonl").read_text().splitlines()]
    handed = [r for r in ledger if r.get("event") == "agent-step" and r["source"] == "ldfi"]
    assert [r["step"]["node"] for r in handed] == list(NODES)
    step = handed[0]["step"]
    assert step["on"] == {"log": "became-leader"} and step["f"] == "start-kill"
    assert handed[0]["why"].startswith("ldfi: tail outcomes, hypothesis [['kill', 'successor']]")
    (summary,) = [r for r in ledger if r.get("event") == "scheduler"]
    first = summary["hypotheses"][0]
    assert first["hypothesis"] == [["kill", "successor"]] and "agents" in first, first
    # the controller cut the leader off and healed it, and struck no kill of its own while
    # the hypothesis held (a later hypothesis, if the agents' part ended early enough for
    # one to fit in the run's time, may kill: it is the controller's)
    end_ns = first["to"] * 1e9
    ctl = [r for r in ledger if r.get("event") == "applied" and r.get("source") != "agent"
           and r["time"] <= end_ns]  # fmt: skip
    assert not [r for r in ctl if r.get("kind") == "kill"], (ctl, summary["hypotheses"])
    later = [h["hypothesis"] for h in summary["hypotheses"][1:]]
    assert all(h["from"] >= first["to"] for h in summary["hypotheses"][1:]), summary
    cut = next(r for r in ctl if r.get("f") == "start-partition")
    leader = isolated_node(cut["value"])
    heal = next(r for r in ledger if r.get("event") == "healed" and r.get("kind") == "partition"
                and r.get("time", 0) > cut["time"])  # fmt: skip
    # each node's own record: the successor struck on its election line, delay s after it
    journals = agent_journals(run)
    assert sorted(journals) == list(NODES)
    strikes = [(n, r) for n, rs in journals.items() for r in rs
               if r.get("e") == "strike" and r.get("trigger") == "log"
               and r.get("f") == "start-kill"]  # fmt: skip
    struck = [(n, r) for n, r in strikes if "skipped" not in r]
    assert len(struck) == 1, strikes
    node, rec = struck[0]
    assert node != leader and "elected leader" in rec["line"], (leader, rec)
    after_line_ms = (rec["start_mono"] - rec["seen_mono"]) / 1e6
    assert abs(after_line_ms - step["delay"] * 1000) < 50, (after_line_ms, step["delay"])
    assert rec["status"] == 0 and step["from"] - 0.5 <= rec["start_run"] <= step["until"]
    assert rec["start_run"] * 1e9 > heal["time"], (rec, heal)  # the old leader had rejoined
    kills = [r for r in ledger if r.get("event") == "applied" and r.get("kind") == "kill"
             and r["time"] <= end_ns]  # fmt: skip
    assert [(r["source"], r["node"]) for r in kills] == [("agent", node)]
    assert first.get("successor") in (None, node)
    # the next run's ldfi reads this one: the agents' kill was the hypothesis's fault
    nxt = make_scheduler("ldfi", SchedulerArgs(seed=6, store=str(tmp_path), suite="bugkv"))
    assert isinstance(nxt, LdfiScheduler)
    taught = [n for n in nxt.notes if "[['kill', 'successor']]" in n]
    assert taught and f"the agents killed the successor {node} at" in taught[0], nxt.notes
    print(f"\nldfi's cut of {leader} at {cut['time'] / 1e9:.2f} s, healed at "
          f"{heal['time'] / 1e9:.2f} s; {node} killed itself {after_line_ms:.1f} ms after "
          f"its election line (planned {step['delay']} s, {rec['late_ms']:.2f} ms late), at "
          f"{rec['start_run']:.2f} s; valid {outcome.results['valid']}; lesson: {taught[0]}; "
          f"hypotheses struck after it: {later}; "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
