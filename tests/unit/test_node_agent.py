"""The node agent's slices (nemeses/guard_agent.py) run for real as a local process on a
temporary directory, and the controller's side of agent steps (nemeses/agent.py).

Strike and heal scripts here only touch files in the test's directory; the agent's own
timing (its clock, triggers, the lease gating every strike) and its journal caps are what
is under test. The same on a real etcd cluster: tests/integration/test_node_agents.py.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import nemeses.guard_agent as agent_module
from clusters.base import Cluster, Node
from harness.api import TestContext as Ctx  # (a `Test*` name would be collected)
from harness.errors import ConfigError
from nemeses.agent import AGENT_LEASE, agent_kinds, compile_slices, validate_agent_steps

AGENT = agent_module.__file__


def write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def lease(d: Path, seq: int, length: float, heal: str) -> None:
    write(d / "leases" / f"{AGENT_LEASE}.json",
          {"id": AGENT_LEASE, "lease": length, "seq": seq, "heal": heal})  # fmt: skip


def records(d: Path) -> list[dict[str, Any]]:
    path = d / "agent.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


#: How much longer than its nominal limit a wait may take: the agent is a process of its
#: own that a loaded machine (CI runs three test workers on two cores) can starve for
#: seconds. Waiting on a condition, a longer limit costs nothing when the condition holds.
SLACK = 4


def wait_for(pred: Callable[[], Any], within: float) -> None:
    start = time.monotonic()
    while time.monotonic() - start < within * SLACK:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {within * SLACK} s")


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*flags: str) -> Path:
        d = tmp_path / "agent"
        d.mkdir(mode=0o700)
        procs.append(subprocess.Popen([sys.executable, AGENT, "--dir", str(d), *flags]))
        wait_for(lambda: (d / "ready").exists(), 10)
        return d

    yield start
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def test_offset_and_log_triggered_strikes_and_their_heals(agent: Any, tmp_path: Path) -> None:
    d = agent()
    log = tmp_path / "db.log"
    log.write_text("old line: leader changed\n")  # before arming: never a trigger
    lease(d, 1, 30.0, f"touch {tmp_path}/lease-healed")
    origin = time.monotonic_ns() + 300_000_000
    write(d / "slices" / "agent.json", {
        "id": "agent", "lease": AGENT_LEASE, "origin_ns": origin,
        "strikes": [
            {"id": "s1", "f": "start-kill", "at": 0.5, "script": f"echo at >> {tmp_path}/out",
             "heal": f"echo heal-s1 >> {tmp_path}/out", "hold": 0.2},
            {"id": "s2", "f": "start-kill", "on": {"log": "leader"}, "from": 0.0, "times": 1,
             "script": f"echo log >> {tmp_path}/out"},
        ],
        "watch": {"log": str(log), "patterns": {"leader": "leader changed"}},
    })  # fmt: skip
    wait_for(lambda: any(r["e"] == "slice" for r in records(d)), 10)
    wait_for(lambda: (tmp_path / "out").exists() and "heal-s1" in (tmp_path / "out").read_text(),
             10)  # fmt: skip
    with log.open("a") as f:
        f.write("new line: leader changed\nagain: leader changed\n")
    wait_for(lambda: "log" in (tmp_path / "out").read_text().split(), 10)
    wait_for(lambda: sum(r["e"] == "log" for r in records(d)) == 2, 10)
    wait_for(lambda: any(r["e"] == "strike" and r["id"] == "s2" for r in records(d)), 10)
    assert (tmp_path / "out").read_text().split() == ["at", "heal-s1", "log"]  # times: 1
    rs = records(d)
    strikes = {r["id"]: r for r in rs if r["e"] == "strike" and "skipped" not in r}
    assert strikes["s1"]["planned_run"] == 0.5 and strikes["s1"]["late_ms"] >= 0
    assert strikes["s2"]["trigger"] == "log" and strikes["s2"]["line"].startswith("new line")
    assert all("run" in r for r in rs if r["e"] in ("strike", "heal", "log"))


def test_no_strike_once_the_lease_has_run_out(agent: Any, tmp_path: Path) -> None:
    d = agent()
    lease(d, 1, 0.3, f"touch {tmp_path}/healed")  # never renewed
    write(d / "slices" / "agent.json", {
        "id": "agent", "lease": AGENT_LEASE, "origin_ns": time.monotonic_ns(),
        "strikes": [{"id": "s1", "f": "start-kill", "at": 1.5,
                     "script": f"touch {tmp_path}/struck"}],
    })  # fmt: skip
    wait_for(lambda: (tmp_path / "healed").exists(), 10)
    time.sleep(1.6)
    assert not (tmp_path / "struck").exists()
    ended = [r for r in records(d) if r["e"] == "slice" and r["state"] == "ended"]
    assert ended and "lease" in ended[0]["why"]


def test_journal_caps_count_what_they_drop(agent: Any, tmp_path: Path) -> None:
    d = agent("--journal-bytes", "65536", "--journal-rate", "20")
    log = tmp_path / "db.log"
    log.write_text("")
    lease(d, 1, 30.0, "exit 0")
    write(d / "slices" / "agent.json", {
        "id": "agent", "lease": AGENT_LEASE, "origin_ns": time.monotonic_ns(), "strikes": [],
        "watch": {"log": str(log), "patterns": {"hit": "hit"}},
    })  # fmt: skip
    wait_for(lambda: any(r["e"] == "slice" for r in records(d)), 10)
    with log.open("a") as f:
        f.write("".join(f"hit {i} {'x' * 300}\n" for i in range(5000)))

    def counted() -> tuple[list[dict[str, Any]], int]:
        rs = records(d)
        dropped = sum(r.get("n_rate", 0) + r.get("n_size", 0) for r in rs if r["e"] == "dropped")
        return [r for r in rs if r["e"] == "log"], dropped

    def every_line_counted() -> bool:
        logs, dropped = counted()
        return len(logs) + dropped == 5000

    wait_for(every_line_counted, 20)
    logs, _ = counted()
    span = (logs[-1]["mono"] - logs[0]["mono"]) / 1e9
    assert 20 <= len(logs) <= 20 * (span + 1) + 1  # a second's burst, then the rate
    assert (d / "agent.jsonl").stat().st_size <= 65536


def test_drop_summaries_back_off_once_observations_no_longer_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A node sampling pressure every second into a full journal must not spend the reserve
    # kept for strikes and heals on "1 dropped" lines: summaries space out, counts are kept.
    clock = [1000.0]
    monkeypatch.setattr(agent_module.time, "monotonic", lambda: clock[0])
    journal = agent_module.Journal(str(tmp_path / "agent.jsonl"), 16384, 1e9)
    while journal.size < 16384 - 4096 - 200:  # the observations' part (a quarter is reserved)
        journal.write("log", line="x" * 100)
    summaries_at: list[float] = []
    dropped = 0
    for _ in range(600):  # ten minutes, one sample and one flush a second
        journal.write("pressure", load1=1.0)
        dropped += 1
        before = journal.size
        journal.flush_drops()
        if journal.size > before:
            summaries_at.append(clock[0])
        clock[0] += 1.0
    journal.flush_drops(final=True)
    gaps = [b - a for a, b in itertools.pairwise(summaries_at)]
    assert gaps[:5] == [2.0, 4.0, 8.0, 16.0, 32.0], gaps
    assert set(gaps[5:]) == {60.0}, gaps
    recs = records(tmp_path)
    written = len([r for r in recs if r["e"] == "pressure"])
    assert sum(r.get("n_size", 0) for r in recs if r["e"] == "dropped") == dropped - written
    assert not [r for r in recs if r["e"] == "journal-full"]
    journal.write("healed", id="x", reason="lease-expired", status=0)
    assert records(tmp_path)[-1]["e"] == "healed"


def test_a_watched_line_written_before_the_tail_thread_runs_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under load the tail thread may first run after the database wrote its line: the slice
    # reads from where the log ended when it started, not from where it ends then.
    log = tmp_path / "db.log"
    log.write_text("before the slice\n")
    journal = agent_module.Journal(str(tmp_path / "agent.jsonl"), 1 << 20, 1000.0)
    held: list[Callable[[], None]] = []

    class Held:
        def __init__(self, target: Callable[[], None], **_: Any) -> None:
            held.append(target)

        def start(self) -> None:
            pass

    monkeypatch.setattr(agent_module.threading, "Thread", Held)
    data = {"id": "s", "origin_ns": time.monotonic_ns(), "strikes": [],
            "watch": {"log": str(log), "patterns": {"hit": "hit"}}}  # fmt: skip
    sl = agent_module.Slice(data, agent_module.Leases(), journal, 5.0)
    sl.start()
    monkeypatch.undo()
    with log.open("a") as f:
        f.write("hit 1\nmiss\nhit 2\n")
    tail = next(t for t in held if t.__name__ == "_tail")
    thread = threading.Thread(target=tail, daemon=True)
    thread.start()
    wait_for(lambda: len([r for r in records(tmp_path) if r["e"] == "log"]) == 2, 5)
    sl.end("test")
    thread.join(5)
    assert [r["line"] for r in records(tmp_path) if r["e"] == "log"] == ["hit 1", "hit 2"]


NODES = ("n1", "n2", "n3")


class FakeDB:
    """The abilities agent steps use, as data (the unit under test is the compiler)."""

    name = "fake"
    pid_file = "/opt/fake/pid"
    log_patterns: ClassVar[dict[str, str]] = {"leader-changed": "new leader"}

    def kill_script(self, ctx: Any, node: Node) -> str:
        return f"kill-{node.name}"

    def start_script(self, ctx: Any, node: Node) -> str:
        return f"start-{node.name}"

    def pause_script(self, ctx: Any, node: Node) -> str:
        return f"pause-{node.name}"

    def resume_script(self, ctx: Any, node: Node) -> str:
        return f"resume-{node.name}"

    def log_files(self, ctx: Any, node: Node) -> list[str]:
        return ["/opt/fake/log"]


def ctx() -> Ctx:
    nodes = tuple(Node(name=n, host=f"10.0.0.{i}") for i, n in enumerate(NODES, 1))
    cluster = Cluster(provider="local", name="x", nodes=nodes, state_dir="")
    return Ctx(name="t", cluster=cluster, options={}, rng=random.Random(1),
               run_dir=Path("."), concurrency=1, time_limit=10)  # fmt: skip


def test_compiled_slices_carry_the_adapters_own_scripts() -> None:
    steps: list[dict[str, Any]] = [{"node": "n2", "f": "start-kill", "at": 3, "hold": 1},
             {"node": "n2", "f": "start-kill", "on": {"log": "leader-changed"}}]  # fmt: skip
    slices = compile_slices(steps, ctx(), FakeDB())
    assert set(slices) == set(NODES)  # every node watches
    assert slices["n1"]["strikes"] == []
    s1, s2 = slices["n2"]["strikes"]
    assert (s1["script"], s1["heal"], s1["at"]) == ("kill-n2", "start-n2", 3.0)
    assert s2["on"] == {"log": "leader-changed"} and s2["times"] == 1 and s2["from"] == 0.0
    watch = {"patterns": {"leader-changed": "new leader"}, "log": "/opt/fake/log",
             "pidfile": "/opt/fake/pid", "pressure_every": 1.0}  # fmt: skip
    assert slices["n2"]["watch"] == watch
    assert agent_kinds(steps) == ["kill"]
    paused = compile_slices([{"node": "n3", "f": "start-pause", "at": 1}], ctx(), FakeDB())
    (p,) = paused["n3"]["strikes"]
    assert (p["script"], p["heal"]) == ("pause-n3", "resume-n3")
    assert s2["until"] == 10.0  # the end of the load
    with pytest.raises(ConfigError, match="after the end of the load"):
        compile_slices([{"node": "n1", "f": "start-kill", "at": 10}], ctx(), FakeDB())
    with pytest.raises(ConfigError, match="no log pattern 'elected'"):
        compile_slices([{"node": "n1", "f": "start-kill", "on": {"log": "elected"}}], ctx(),
                       FakeDB())  # fmt: skip


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"f": "start-kill", "at": 1}, "needs `node`"),
        ({"node": "n1", "f": "start-power-off", "at": 1}, "`f` must be one of start-kill"),
        ({"node": "n1", "f": "start-partition", "at": 1}, "needs `value`"),
        ({"f": "start-clock", "on": {"log": "x"}, "value": {}}, "needs `node`"),
        ({"node": "n1", "f": "start-kill", "at": 1, "value": {}}, "takes no `value`"),
        ({"f": "start-packet", "at": 1, "value": "x"}, "`value` of start-packet is"),
        ({"node": "n1", "f": "start-kill"}, "exactly one of `at`"),
        ({"node": "n1", "f": "start-kill", "at": -1}, "`at` must be seconds >= 0"),
        ({"node": "n1", "f": "start-kill", "at": 1, "times": 2}, "go with `on`"),
        ({"node": "n1", "f": "start-kill", "on": {"process": "boom"}}, "on.process"),
        ({"node": "n1", "f": "start-kill", "on": {"log_regex": "("}}, "not a regular"),
        ({"node": "n1", "f": "start-kill", "on": {"log": "x"}, "from": 5, "until": 1},
         "before `from`"),
        ({"node": "n9", "f": "start-kill", "at": 1}, "no node 'n9'"),
        ({"node": "n1", "f": "start-kill", "at": 1, "wen": 2}, "unknown key"),
    ],
)  # fmt: skip
def test_bad_agent_steps_are_named(step: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        validate_agent_steps([step], "spec.toml", NODES)
    assert "spec.toml: agent step 1" in str(e.value)


def test_a_process_trigger_strikes_when_the_watched_process_exits(
    agent: Any, tmp_path: Path
) -> None:
    d = agent()
    victim = subprocess.Popen(["sleep", "60"])
    try:
        pidfile = tmp_path / "db.pid"
        pidfile.write_text(f"{victim.pid}\n")
        lease(d, 1, 30.0, "exit 0")
        write(d / "slices" / "agent.json", {
            "id": "agent", "lease": AGENT_LEASE, "origin_ns": time.monotonic_ns(),
            "strikes": [{"id": "s1", "f": "start-kill", "on": {"process": "exit"},
                         "script": f"touch {tmp_path}/struck"}],
            "watch": {"pidfile": str(pidfile), "pressure_every": 0.2},
        })  # fmt: skip
        wait_for(lambda: any(r.get("change") == "watch" for r in records(d)), 10)
        wait_for(lambda: any(r["e"] == "pressure" and "db_rss_kb" in r for r in records(d)), 10)
        victim.kill()
        victim.wait()
        wait_for(lambda: any(r["e"] == "strike" for r in records(d)), 10)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    rs = records(d)
    changes = [r["change"] for r in rs if r["e"] == "process"]
    assert changes[:2] == ["watch", "exit"]
    strike = next(r for r in rs if r["e"] == "strike")
    assert strike["trigger"] == "process" and strike["late_ms"] >= 0


def test_a_spec_file_hands_steps_over_in_agent_tables(tmp_path: Path) -> None:
    from harness.spec import load_spec

    spec_file = tmp_path / "test.toml"
    spec_file.write_text(
        'suite = "etcd"\nfaults = []\n\n[[agent]]\nnode = "n1"\nf = "start-kill"\n'
        'on = { log = "leader-changed" }\nhold = 2\n\n[[agent]]\nnode = "n2"\n'
        'f = "start-pause"\nat = 5\n'
    )
    spec = load_spec(str(spec_file))
    assert spec.agent == (
        {"node": "n1", "f": "start-kill", "on": {"log": "leader-changed"}, "hold": 2.0,
         "times": 1, "delay": 0.0, "from": 0.0},
        {"node": "n2", "f": "start-pause", "at": 5.0},
    )  # fmt: skip
    assert load_spec(**{**spec.to_json(), "test_name": None, "concurrency": None}).agent == (
        spec.agent
    )
    spec_file.write_text('[[agent]]\nnode = "n1"\nf = "start-kill"\n')
    with pytest.raises(ConfigError, match=r"test\.toml: agent step 1: give exactly one"):
        load_spec(str(spec_file))
