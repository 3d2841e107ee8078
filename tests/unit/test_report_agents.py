"""The node agents' records in the report: alignment on the run's clock by the measured
offsets, one line in words per record, pressure summarised, caps, and the page."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.formats import write_history
from harness.history import History
from reports.agent_journal import agent_lines, align_offsets, describe
from reports.run_report import load_run, write_run_report

MS = 1_000_000
S = 1_000_000_000
#: The run's origin on the controller's monotonic clock.
C0 = 5_000 * S
#: The wall time of the run's origin (2026-12-03T12:00:00Z).
WALL0 = 1_796_299_200 * S
N1_OFFSET = 7 * MS  # n1's clock minus the controller's (what the measurements bracket)
N2_OFFSET = 50 * MS


def _n1(run: float, e: str, **fields: Any) -> dict[str, Any]:
    mono = C0 + N1_OFFSET + round(run * S)
    return {"e": e, "mono": mono, "wall": WALL0 + round(run * S), "run": run, **fields}


def _n2(run: float, e: str, **fields: Any) -> dict[str, Any]:
    mono = C0 + N2_OFFSET + round(run * S)
    return {"e": e, "mono": mono, "wall": WALL0 + round(run * S), "run": run, **fields}


def _lines(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def agent_run(store: Path, *, pressure: int = 3) -> Path:
    """A run directory with a short history, two nodes' agent journals (n1 with offset
    samples in ``clock.jsonl``, n2 with only its own hand-over record) and the ledger."""
    run = store / "etcd-agents" / "20261203T120000"
    (run / "nodes" / "n1").mkdir(parents=True)
    (run / "nodes" / "n2").mkdir(parents=True)
    ops: list[dict[str, Any]] = []
    for i in range(40):
        t = round((0.1 + i * 0.2) * S)
        ops.append({"type": "invoke", "process": i % 3, "f": "write", "value": i, "time": t,
                    "node": f"n{1 + i % 2}"})  # fmt: skip
        ops.append({"type": "ok", "process": i % 3, "f": "write", "value": i,
                    "time": t + 5 * MS, "node": f"n{1 + i % 2}"})  # fmt: skip
    write_history(History.from_ops(ops), str(run / "history.jsonl"), "jsonl")
    (run / "results.json").write_text(json.dumps({"valid": True, "checkers": {}}))
    (run / "spec.json").write_text(json.dumps({"suite": "etcd", "nodes": 2, "concurrency": 3}))
    (run / "clock.json").write_text(json.dumps({"origin_unix_ns": WALL0}))
    (run / "agents.json").write_text(json.dumps({
        "origin_controller_ns": C0,
        "offsets": {"n1": {"offset_ns": 9 * MS, "rtt_ns": 10 * MS}},  # [4, 14] ms
    }))  # fmt: skip
    (run / "nodes" / "n1" / "clock.jsonl").write_text(_lines([
        {"controller_ns": C0 + S, "offset_ns": 5 * MS, "rtt_ns": 6 * MS},  # [2, 8] ms
        {"controller_ns": C0 + 4 * S, "offset_ns": 8 * MS, "rtt_ns": 4 * MS},  # [6, 10] ms
    ]))  # fmt: skip
    steps = [{"id": "s1", "node": "n1", "f": "start-kill", "on": {"log": "became-leader"},
              "hold": 1.0}]  # fmt: skip
    line = "2026-12-03T12:00:02.000Z raft: n1 became leader at term 3"
    n1 = [
        _n1(-0.9, "slice", id="agent", state="armed", origin_ns=C0 + 9 * MS, strikes=steps),
        _n1(-0.9, "process", change="watch", pid=41, state="S"),
        *[
            _n1(
                0.5 + i,
                "pressure",
                load1=1.2 + i / 10,
                mem_avail_kb=317_440,
                db_pid=41,
                db_rss_kb=46_080,
                db_cpu_ms=1200 + 100 * i,
            )
            for i in range(pressure)
        ],
        _n1(
            2.0005,
            "log",
            seen_mono=C0 + N1_OFFSET + round(2.0005 * S),
            patterns=["became-leader"],
            line=line,
        ),
        _n1(
            2.05,
            "strike",
            id="s1",
            f="start-kill",
            trigger="log",
            planned_run=2.0005,
            start_mono=C0 + N1_OFFSET + round(2.0021 * S),
            start_wall=WALL0 + round(2.0021 * S),
            start_run=2.0021,
            late_ms=1.6,
            done_ms=9.5,
            status=0,
            line=line,
            seen_mono=C0 + N1_OFFSET + round(2.0005 * S),
        ),
        _n1(2.01, "process", change="exit", pid=None, state="gone", before=41),
        _n1(3.01, "heal", id="s1", status=0, seconds=0.03),
        _n1(3.02, "process", change="start", pid=57, state="R", before=None),
    ]
    (run / "nodes" / "n1" / "agent.jsonl").write_text(_lines(n1))
    n2 = [
        _n2(-0.9, "slice", id="agent", state="armed", origin_ns=C0 + N2_OFFSET, strikes=[]),
        _n2(-0.9, "clock", offset_ns=N2_OFFSET, rtt_ns=2 * MS, by="controller-probe"),
        _n2(4.0, "process", change="stop", pid=43, state="T", before=43),
        _n2(5.0, "process", change="cont", pid=43, state="S", before=43),
    ]
    (run / "nodes" / "n2" / "agent.jsonl").write_text(_lines(n2))
    (run / "nodes" / "n1" / "etcd.log").write_text(line + "\n")
    ledger = [
        {"time": 2_002_100_000, "seq": 1, "event": "applied", "phase": "start", "kind": "kill",
         "f": "start-kill", "value": {"targets": "nodes", "nodes": ["n1"]}, "targets": ["n1"],
         "source": "agent", "node": "n1", "strike": "s1", "trigger": "log", "late_ms": 1.6},
        {"time": 3_010_000_000, "seq": 2, "event": "healed", "phase": "stop", "kind": "kill",
         "f": "stop-kill", "value": None, "targets": ["n1"], "source": "agent", "node": "n1",
         "strike": "s1"},
    ]  # fmt: skip
    (run / "faults.jsonl").write_text(_lines(ledger))
    return run


def _columns(d: dict[str, Any]) -> list[tuple[float, str, int, str]]:
    t = np.frombuffer(base64.b64decode(d["t"]), "<f4")
    node = np.frombuffer(base64.b64decode(d["node"]), "u1")
    kind = np.frombuffer(base64.b64decode(d["kind"]), "u1")
    return [
        (float(a), d["nodes"][b], int(k), x)
        for a, b, k, x in zip(t, node, kind, d["text"], strict=True)
    ]


def test_the_offset_is_the_middle_of_the_intersection_of_the_measurements() -> None:
    al = align_offsets([{"offset_ns": 9 * MS, "rtt_ns": 10 * MS},
                        {"offset_ns": 5 * MS, "rtt_ns": 6 * MS},
                        {"offset_ns": 8 * MS, "rtt_ns": 4 * MS}])  # fmt: skip
    assert al is not None and al.method == "intersection"
    assert al.offset_ns == 7 * MS  # [6, 8] ms
    assert abs(al.uncertainty_ns - MS) <= 2  # type: ignore[operator]
    assert al.samples == 3 and al.rtt_min_ns == 4 * MS


def test_measurements_that_disagree_fall_back_to_the_least_round_trip() -> None:
    al = align_offsets([{"offset_ns": 100 * MS, "rtt_ns": 2 * MS},
                        {"offset_ns": 0, "rtt_ns": MS}])  # fmt: skip
    assert al is not None and al.method == "least-rtt"
    assert al.offset_ns == 0 and al.uncertainty_ns == MS // 2
    assert align_offsets([]) is None and align_offsets([{"offset_ns": "x"}]) is None


def test_records_are_put_on_the_runs_clock_by_the_measured_offsets(tmp_path: Path) -> None:
    d = agent_lines(agent_run(tmp_path))
    assert d is not None and d["nodes"] == ["n1", "n2"]
    rows = _columns(d)
    # n1's clock runs 7 ms ahead: its records land on their run times, not 2 ms off (the
    # hand-over probe's 9 ms) as the agent's own ``run`` field has them.
    strike = next(r for r in rows if r[3].startswith("struck"))
    assert strike[0] == pytest.approx(2.0021, abs=1e-6) and strike[1] == "n1" and strike[2] == 0
    line = next(r for r in rows if "log [became-leader]" in r[3])
    assert line[0] == pytest.approx(2.0005, abs=1e-6) and line[2] == 1
    stop = next(r for r in rows if r[3] == "etcd stopped (pid 43)")
    assert stop[0] == pytest.approx(4.0, abs=1e-6) and stop[1] == "n2"
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    n1, n2 = d["align"]
    assert n1["method"] == "intersection" and n1["offset_ms"] == 7.0
    assert n1["uncertainty_ms"] == 1.0 and n1["samples"] == 3 and n1["rtt_min_ms"] == 4.0
    assert n1["shift_ms"] == 2.0  # the ledger's times (by the 9 ms probe) move by 2 ms
    # n2: no clock.jsonl and no entry in agents.json: its own hand-over record serves.
    assert n2["method"] == "intersection" and n2["offset_ms"] == 50.0
    assert n2["uncertainty_ms"] == 1.0 and n2["samples"] == 1


def test_the_page_axis_origin_and_unit_apply(tmp_path: Path) -> None:
    d = agent_lines(agent_run(tmp_path), axis_origin=S // 2, ns_per_unit=1e6)
    assert d is not None
    strike = next(r for r in _columns(d) if r[3].startswith("struck"))
    assert strike[0] == pytest.approx(1502.1, abs=1e-3)  # ms since 0.5 s


def test_each_record_reads_as_one_line(tmp_path: Path) -> None:
    d = agent_lines(agent_run(tmp_path))
    assert d is not None
    texts = [r[3] for r in _columns(d) if r[1] == "n1"]
    assert "slice armed: 1 step(s): start-kill on log 'became-leader'" in texts
    assert "watching etcd: pid 41, state S" in texts
    strike = next(t for t in texts if t.startswith("struck"))
    assert strike.startswith(
        "struck start-kill (on log 'became-leader', 2.1 ms after the line's stamp, 1.6 ms late,"
        " script 9.5 ms); line: 2026-12-03T12:00:02.000Z raft"
    )
    assert "etcd exited (was pid 41)" in texts and "etcd started (pid 57)" in texts
    assert "healed its kill (s1, hold over): exit 0, 0.03 s" in texts
    assert "pressure load 1.2, mem 310 MB available; etcd 45 MB, cpu 1.20 s" in texts
    n2 = [r[3] for r in _columns(d) if r[1] == "n2"]
    assert "clock offset 50 ms ± 1 ms (round trip 2 ms, controller-probe)" in n2
    assert "etcd continued (pid 43)" in n2
    kinds = {r[3]: r[2] for r in _columns(d)}
    assert kinds["slice armed: no steps (watching and journaling only)"] == 3  # its own running
    assert (
        kinds["etcd continued (pid 43)"] == 1
        and kinds["healed its kill (s1, hold over): exit 0, 0.03 s"] == 0
    )


@pytest.mark.parametrize(
    ("rec", "text"),
    [
        ({"e": "strike", "id": "s9", "f": "start-pause", "skipped": "its lease is not alive"},
         "did not strike start-pause: its lease is not alive"),
        ({"e": "lease", "id": "agent-slice", "state": "expired", "lease": "agent-slice"},
         "lease agent-slice expired"),
        ({"e": "dropped", "n_rate": 39661, "n_size": 115},
         "dropped observations: 39661 over the rate cap, 115 over the size cap"),
        ({"e": "journal-full", "bytes": 65536},
         "journal full at 65536 bytes: nothing more recorded"),
        ({"e": "stop"}, "agent stopped"),
        ({"e": "start", "pid": 45, "journal_bytes": 4194304, "journal_rate": 200.0},
         "agent started (pid 45; journal cap 4 MiB, 200 observations/s)"),
        ({"e": "mystery", "x": 1}, 'mystery: {"x": 1}'),
    ],
)  # fmt: skip
def test_other_records_in_words(rec: dict[str, Any], text: str) -> None:
    assert describe(rec, {}, "etcd") == text


def test_many_pressure_samples_are_summarised(tmp_path: Path) -> None:
    run = agent_run(tmp_path, pressure=10)
    d = agent_lines(run, max_pressure=3)
    assert d is not None and d["summarised"] == ["n1"]
    groups = [r for r in _columns(d) if r[2] == 2]
    assert len(groups) == 3  # 10 samples in groups of ceil(10 / 3) = 4
    assert groups[0][3] == (
        "pressure ×4 over 3 s: load 1.2–1.5, mem 310 MB available; etcd 45 MB, cpu +0.30 s"
    )
    assert groups[0][0] == pytest.approx(0.5, abs=1e-6)
    assert agent_lines(run)["summarised"] == []  # type: ignore[index]


def test_caps_on_lines_and_bytes(tmp_path: Path) -> None:
    run = agent_run(tmp_path)
    d = agent_lines(run, max_lines=5)
    assert d is not None and d["shown"] == 5 and d["total"] == 14
    cut = agent_lines(run, max_bytes=400)
    assert cut is not None and set(cut["cut"]) == {"n1", "n2"} and cut["shown"] < 14


def test_the_runs_journals_are_read_within_one_byte_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each node's journal was read to its 8 MiB whatever the number of nodes: 45 nodes
    of 8 MiB took clew report 3.5 minutes. The nodes share one budget: a node gets what
    is left of it, and the nodes past it are named, not read, on the page too."""
    import reports.agent_journal as aj

    run = agent_run(tmp_path)
    n1 = len((run / "nodes" / "n1" / "agent.jsonl").read_bytes())
    n1 += len((run / "nodes" / "n1" / "clock.jsonl").read_bytes())
    (run / "nodes" / "n3").mkdir()
    (run / "nodes" / "n3" / "agent.jsonl").write_text(_lines([_n2(1.0, "slice", id="x")]))
    d = agent_lines(run, max_run_bytes=n1 + 50)  # n1 whole, a part of n2, nothing of n3
    assert d is not None and d["nodes"] == ["n1", "n2"]
    assert d["cut"] == ["n2"] and d["unread"] == ["n3"]
    whole = agent_lines(run)
    assert whole is not None and whole["unread"] == [] and whole["nodes"] == ["n1", "n2", "n3"]
    # a node's clock samples are read first: a budget its journal spends keeps them
    clock = len((run / "nodes" / "n1" / "clock.jsonl").read_bytes())
    tight = agent_lines(run, max_run_bytes=clock + 10)
    assert tight is not None and tight["align"][0] == whole["align"][0]
    assert tight["cut"] == ["n1"] and tight["unread"] == ["n2", "n3"]
    monkeypatch.setattr(aj, "MAX_RUN_JOURNAL_BYTES", n1 + 50)
    html = write_run_report(run).read_text()
    assert "the journals of 1 more node (n3) were not read: 64 MiB of journals" in html


def test_without_measurements_the_agents_own_run_times_serve(tmp_path: Path) -> None:
    run = agent_run(tmp_path)
    (run / "agents.json").unlink()
    (run / "nodes" / "n1" / "clock.jsonl").unlink()
    d = agent_lines(run)
    assert d is not None
    # n1: the armed origin less... no offset record of its own: the agent's run field.
    assert d["align"][0]["method"] == "agent-run"
    strike = next(r for r in _columns(d) if r[3].startswith("struck"))
    assert strike[0] == pytest.approx(2.0021, abs=1e-6)  # its start_run
    # n2 has its hand-over record and armed origin: still measured.
    assert d["align"][1]["method"] == "intersection" and d["align"][1]["offset_ms"] == 50.0


def test_no_agent_journal_means_no_agent_source(tmp_path: Path) -> None:
    run = agent_run(tmp_path)
    for n in ("n1", "n2"):
        (run / "nodes" / n / "agent.jsonl").unlink()
    assert agent_lines(run) is None
    assert load_run(run)["agents"] is None


def test_a_torn_or_bad_line_is_skipped(tmp_path: Path) -> None:
    run = agent_run(tmp_path)
    with open(run / "nodes" / "n2" / "agent.jsonl", "a") as f:
        f.write('[1, 2]\n{"e": "process", "mono": 1')
    d = agent_lines(run)
    assert d is not None and d["total"] == 16 and d["shown"] == 14


def test_the_report_carries_the_agents_and_their_alignment(tmp_path: Path) -> None:
    run = agent_run(tmp_path)
    ctx = load_run(run)
    agents = ctx["payload"]["agents"]
    assert agents is not None and agents["shown"] == 14
    # The agent's strike is on the ledger (source: agent) and so among the fault bands.
    kill = next(w for w in ctx["payload"]["faults"] if w["f"] == "kill")
    assert kill["targets"] == ["n1"] and kill["stop"] is not None
    html = write_run_report(run).read_text()
    assert 'id="agent-alignment"' in html and "intersection of the measurements" in html
    assert "the node agents&#39; records" in html or "the node agents' records" in html
