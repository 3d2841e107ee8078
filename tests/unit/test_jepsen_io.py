"""Jepsen in and out: a Jepsen store directory analyzed and reported, EDN that Jepsen's
readers take back, and JUnit XML read back with the standard library."""

from __future__ import annotations

import json
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import edn_format
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.cli_test import junit_xml
from harness.formats import read_history

STORE = Path(__file__).parent.parent / "data" / "jepsen-store"


def _clew(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "etcd-register" / "20261203T100000.000+0000"
    shutil.copytree(STORE, dst)
    return dst


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in d.rglob("*") if p.is_file()}


def test_analyze_checks_a_jepsen_store_and_keeps_its_files(tmp_path: Path) -> None:
    store = _copy(tmp_path)
    before = _files(store)
    code, out = _clew("analyze", str(store))
    assert code == 0, out
    assert out.startswith("VALID  10 ops"), out
    assert "model cas-register" in out and "Jepsen's results.edn: VALID" in out
    results = json.loads((store / "clew" / "results.json").read_text())
    assert results["valid"] is True and results["ops"] == 10
    assert results["history_lines"] == 24
    assert results["jepsen"]["valid"] is True
    assert results["checkers"]["linear"]["model"] == "cas-register"
    # Jepsen's own files are untouched; clew's view holds the node logs.
    after = _files(store)
    assert {k: v for k, v in after.items() if not k.startswith("clew/")} == before
    for node in ("n1", "n2", "n3"):
        assert (store / "clew" / "nodes" / node / "etcd.log").read_bytes() == before[
            f"{node}/etcd.log"
        ]
    html = (store / "clew" / "report.html").read_text()
    assert "nodes/n2/etcd.log" in html


def test_report_of_a_jepsen_store_checks_it_first(tmp_path: Path) -> None:
    store = _copy(tmp_path)
    code, out = _clew("report", str(store))
    assert code == 0, out
    assert out.strip() == f"report: {store / 'clew' / 'report.html'}"
    assert json.loads((store / "clew" / "results.json").read_text())["valid"] is True
    html = (store / "clew" / "report.html").read_text()
    assert "cas-register" in html


def _hard_store(tmp_path: Path, writes: int = 3000) -> Path:
    """A Jepsen store whose history takes minutes to decide: ``writes`` info writes, each
    read by a concurrent read, then a read of a value never written."""
    store = tmp_path / "hard"
    store.mkdir()
    rows = [f":invoke, :f :write, :value {p}, :process {p}" for p in range(writes)]
    rows += [f":invoke, :f :read, :value nil, :process {writes + p}" for p in range(writes)]
    rows += [f":info, :f :write, :value {p}, :process {p}" for p in range(writes)]
    rows += [f":ok, :f :read, :value {p}, :process {writes + p}" for p in range(writes)]
    rows += [f":invoke, :f :read, :value nil, :process {3 * writes}",
             f":ok, :f :read, :value -1, :process {3 * writes}"]  # fmt: skip
    (store / "history.edn").write_text(
        "".join(f"{{:type {r}, :index {i}}}\n" for i, r in enumerate(rows)))
    return store


def test_report_of_a_jepsen_store_checks_it_within_its_limits(tmp_path: Path) -> None:
    """`clew report` of an unchecked Jepsen store checked it with analyze's defaults (300 s,
    2 GiB), whatever its --max-memory said: it now takes --time-limit, and both bound
    reading and checking, as `clew analyze`'s do."""
    store = _hard_store(tmp_path)
    code, out = _clew("report", str(store), "--time-limit", "1")
    assert code == 0, out
    results = json.loads((store / "clew" / "results.json").read_text())
    assert results["valid"] == "unknown"
    cause = results["checkers"]["linear"]["cause"]
    assert cause.startswith("time limit of 1.0 s reached ") and cause.endswith(
        "; raise --time-limit"), cause  # (the limit given: what was left was named)
    # checked again when a budget is given, as the advice says (it re-rendered the unknown)
    code, out = _clew("report", str(store), "--time-limit", "2")
    results = json.loads((store / "clew" / "results.json").read_text())
    assert results["checkers"]["linear"]["cause"].startswith("time limit of 2.0 s reached ")
    shutil.rmtree(store / "clew")
    code, out = _clew("report", str(store), "--max-memory", "1M")
    assert code == 2, out
    assert out.startswith(f"UNKNOWN  {store}: memory budget of 1 MiB reached while reading "
                          f"{store / 'history.edn'} at line "), out  # fmt: skip
    assert out.rstrip().endswith("raise --max-memory; no report written"), out
    assert not (store / "clew" / "report.html").exists()


def test_a_store_whose_history_is_not_linearizable_is_invalid(tmp_path: Path) -> None:
    store = _copy(tmp_path)
    hist = store / "history.edn"
    lines = hist.read_text().splitlines()
    assert lines[-1].startswith("{:type :ok, :f :read, :value 5,")
    lines[-1] = lines[-1].replace(":value 5,", ":value 7,")  # 7 was never written
    hist.write_text("\n".join(lines) + "\n")
    code, out = _clew("analyze", str(store))
    assert code == 1, out
    assert out.startswith("INVALID"), out
    results = json.loads((store / "clew" / "results.json").read_text())
    assert results["valid"] is False
    # results.edn (unchanged) says valid: clew says where the verdicts differ.
    assert any("Jepsen's verdict was True" in p for p in results["problems"])


def test_a_bad_line_of_history_edn_names_the_file_and_line(tmp_path: Path) -> None:
    store = _copy(tmp_path)
    hist = store / "history.edn"
    lines = hist.read_text().splitlines()
    lines[3] = "{:type :ok, :f :read, :value"
    hist.write_text("\n".join(lines) + "\n")
    code, out = _clew("analyze", str(store))
    assert code == 254, out
    assert f"{hist}:4" in out, out
    assert "Traceback" not in out


def test_a_store_whose_clew_entry_is_a_file_is_bad_input(tmp_path: Path) -> None:
    store = _copy(tmp_path)
    (store / "clew").write_text("mine")
    for command in ("analyze", "report"):
        code, out = _clew(command, str(store))
        assert code == 254, out
        assert f"{store / 'clew'}: exists and is not a directory" in out
    assert (store / "clew").read_text() == "mine"


def test_links_planted_in_a_store_do_not_make_clew_write_outside_it(tmp_path: Path) -> None:
    """A downloaded store whose ``clew`` (or ``clew/nodes``, ``clew/history.jsonl``) links
    elsewhere: clew neither writes there nor deletes anything there."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "nodes" / "keep").mkdir(parents=True)
    (elsewhere / "nodes" / "keep" / "notes.txt").write_text("mine")
    (elsewhere / "bashrc").write_text("mine")
    (elsewhere / "results.json").write_text('{"valid": true, "checkers": {}}')
    (elsewhere / "report.html").write_text("mine")
    store = _copy(tmp_path)
    (store / "clew").symlink_to(elsewhere)
    # (`report` took a short cut when clew/results.json existed, and wrote through the link)
    for command in ("analyze", "report"):
        code, out = _clew(command, str(store))
        assert code == 254 and f"{store / 'clew'}: is a symbolic link" in out, out
    assert (elsewhere / "report.html").read_text() == "mine"
    (elsewhere / "results.json").unlink()
    (elsewhere / "report.html").unlink()
    (store / "clew").unlink()
    (store / "clew").mkdir()
    (store / "clew" / "nodes").symlink_to(elsewhere / "nodes")
    (store / "clew" / "history.jsonl").symlink_to(elsewhere / "bashrc")
    code, out = _clew("analyze", str(store))
    assert code == 0, out
    assert sorted(p.name for p in elsewhere.rglob("*")) == ["bashrc", "keep", "nodes", "notes.txt"]
    assert (elsewhere / "bashrc").read_text() == "mine"
    assert (elsewhere / "nodes" / "keep" / "notes.txt").read_text() == "mine"
    assert not (store / "clew" / "history.jsonl").is_symlink()
    assert (store / "clew" / "nodes").is_dir() and not (store / "clew" / "nodes").is_symlink()


def test_model_is_only_for_a_jepsen_store(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.jsonl").write_text("")
    code, out = _clew("analyze", "--model", "register", str(run))
    assert code == 254, out
    assert "--model" in out


def test_an_unknown_model_for_a_jepsen_store_lists_every_model_it_takes(tmp_path: Path) -> None:
    """`clew analyze STORE -m regster` listed only the linearizability models, though the
    store takes `-m bank`, `-m list-append`, …; and nothing is written."""
    store = _copy(tmp_path)
    before = _files(store)
    code, out = _clew("analyze", str(store), "-m", "regster")
    assert code == 254, out
    assert "unknown model 'regster'; choose one of register," in out
    assert "list-append" in out and "bank" in out and "set-full" in out
    assert _files(store) == before and not (store / "clew").exists()


def test_convert_writes_edn_jepsen_reads_back(tmp_path: Path) -> None:
    """One op map per line, keyword keys and :type/:f keywords, as jepsen.store writes and
    reads history.edn; clew's own reader gives back the same history."""
    store = _copy(tmp_path)
    jsonl = tmp_path / "h.jsonl"
    edn = tmp_path / "history.edn"
    assert _clew("convert", str(store / "history.edn"), str(jsonl))[0] == 0
    assert _clew("convert", str(jsonl), str(edn))[0] == 0
    K = edn_format.Keyword
    ops = [edn_format.loads(line) for line in edn.read_text().splitlines()]
    assert len(ops) == 24
    for i, op in enumerate(ops):
        assert set(op) >= {K("type"), K("f"), K("value"), K("process"), K("index"), K("time")}
        assert op[K("index")] == i
        assert op[K("type")] in (K("invoke"), K("ok"), K("fail"), K("info"))
        assert isinstance(op[K("f")], K)
    assert ops[4][K("value")] == [1, 3] and ops[4][K("f")] == K("cas")
    assert ops[8][K("process")] == K("nemesis")
    # the whole file also reads as one EDN document of maps once wrapped in a vector
    assert len(edn_format.loads("[" + edn.read_text() + "]")) == 24
    a = read_history(str(store / "history.edn"), "edn")
    b = read_history(str(edn), "auto")
    assert len(a) == len(b)
    for name in ("type", "process", "time"):
        assert (getattr(a, name) == getattr(b, name)).all(), name
    client = [i for i in range(len(a)) if a.process[i] >= 0]
    assert [a.f_names[a.f[i]] for i in client] == [b.f_names[b.f[i]] for i in client]
    assert [a.value_of(i) for i in client] == [b.value_of(i) for i in client]


def test_junit_xml_names_run_seed_and_report(tmp_path: Path) -> None:
    runs = []
    for i, seed in enumerate((7, 8)):
        run = tmp_path / f"run{i}"
        run.mkdir()
        (run / "spec.json").write_text(json.dumps({"seed": seed}))
        (run / "report.html").write_text("<html></html>")
        runs.append(run)
    outcomes = [
        SimpleNamespace(run_dir=runs[0], valid=True, results={}, ops=100, wall_seconds=12.5,
                        problems=[]),
        SimpleNamespace(run_dir=runs[1], valid=False, ops=90, wall_seconds=11.0, problems=[],
                        results={"checkers": {"register": {"cause": "op 7 <could> & \"not\""}}}),
    ]  # fmt: skip
    root = ET.fromstring(junit_xml(outcomes, "etcd-register"))
    assert root.tag == "testsuite" and root.get("name") == "etcd-register"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    cases = root.findall("testcase")
    for case, run, seed in zip(cases, runs, (7, 8), strict=True):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props["run_dir"] == str(run)
        assert props["seed"] == str(seed)
        assert props["report"] == str(run / "report.html")
        assert case.findtext("system-out") == str(run)
    assert cases[0].get("time") == "12.500" and cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == 'op 7 <could> & "not"'


def test_a_node_directory_linked_out_of_a_jepsen_store_is_not_copied(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "auth.log").write_text("2026-01-01T00:00:00 SECRET\n")
    store = _copy(tmp_path)
    (store / "n9").symlink_to(secret)  # n9 -> /var/log, say
    code, out = _clew("analyze", str(store))
    assert code == 0, out
    assert not (store / "clew" / "nodes" / "n9").exists()
    assert "SECRET" not in (store / "clew" / "report.html").read_text()


def test_analyze_of_a_jepsen_store_holds_its_time_limit_and_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`clew analyze` of a Jepsen store read history.edn with no budget and checked it
    within a fixed 300 s and no memory budget; --time-limit and --max-memory hold for
    both, and running out while reading writes nothing."""
    import harness.jepsen_store

    store = _copy(tmp_path)
    code, out = _clew("analyze", "--time-limit", "1e-9", str(store))
    assert code == 2, out
    assert out.startswith(f"UNKNOWN  {store}: time limit of 1e-09 s reached while reading")
    assert "raise --time-limit" in out and not (store / "clew").exists()
    seen = {}
    real = harness.jepsen_store._check

    def spy(history: object, model: str, time_limit: float, max_memory: int,
            started: float) -> object:  # fmt: skip
        seen.update(time_limit=time_limit, max_memory=max_memory, started=started)
        return real(history, model, time_limit, max_memory, started)  # type: ignore[arg-type]

    monkeypatch.setattr(harness.jepsen_store, "_check", spy)
    before = time.perf_counter()
    code, out = _clew("analyze", "--time-limit", "30", "--max-memory", "1G", str(store))
    assert code == 0, out
    # the whole limit, from when reading began (what is left was given: its cause named a
    # limit nobody gave)
    assert seen["time_limit"] == 30 and seen["max_memory"] == 1024**3
    assert before < seen["started"] < time.perf_counter()


def test_analyze_time_limit_is_a_clew_runs_check_time_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from checkers.collections import _budget
    from harness.formats import write_history
    from harness.history import History

    run = tmp_path / "store" / "etcd-set" / "20260101T000000"
    run.mkdir(parents=True)
    rows = [(0, "invoke", "add", 1), (0, "ok", "add", 1),
            (1, "invoke", "read", None), (1, "ok", "read", [1])]  # fmt: skip
    ops = [{"process": p, "type": t, "f": f, "value": v, "time": i}
           for i, (p, t, f, v) in enumerate(rows)]  # fmt: skip
    write_history(History.from_ops(ops), str(run / "history.jsonl"), "jsonl")
    (run / "spec.json").write_text(json.dumps({"suite": "etcd", "workload": "set", "seed": 1}))
    (run / "results.json").write_text(json.dumps({"valid": True}))  # (the run finished)
    code, out = _clew("analyze", str(run))
    assert code == 0, out
    monkeypatch.setattr(_budget, "CHECK_EVERY", 1)  # look at the clock at every step
    code, out = _clew("analyze", "--time-limit", "1e-9", str(run))
    assert code == 2, out
    results = json.loads((run / "results.json").read_text())
    assert "time limit 1e-09 s" in json.dumps(results["checkers"])
    import checkers.collections

    seen: list[int] = []
    real = checkers.collections.within_budget

    def within_budget(*args: Any, max_memory: int, **kw: Any) -> Any:
        seen.append(max_memory)
        return real(*args, max_memory=max_memory, **kw)

    monkeypatch.setattr(checkers.collections, "within_budget", within_budget)
    code, out = _clew("analyze", "--max-memory", "1G", str(run))
    assert code == 0 and seen == [1024**3], out


def test_a_stored_run_named_by_its_latest_link_is_the_run_it_names_now(tmp_path: Path) -> None:
    """`clew replay store/x/latest` recorded `replay_of: store/x/latest`, which the replay
    itself then became; a stored run is taken by the directory the link names."""
    from harness.formats import write_history
    from harness.history import History
    from harness.runner import analyze

    run = tmp_path / "store" / "etcd-set" / "20260101T000000"
    run.mkdir(parents=True)
    ops = [{"process": 0, "type": t, "f": "add", "value": 1, "time": i}
           for i, t in enumerate(("invoke", "ok"))]  # fmt: skip
    write_history(History.from_ops(ops), str(run / "history.jsonl"), "jsonl")
    (run / "spec.json").write_text(json.dumps({"suite": "etcd", "workload": "set", "seed": 1}))
    (run / "results.json").write_text(json.dumps({"valid": True}))
    latest = tmp_path / "store" / "etcd-set" / "latest"
    latest.symlink_to(run.name)
    assert analyze(latest).run_dir == run.resolve()


def test_report_time_limit_is_for_a_jepsen_store_only(tmp_path: Path) -> None:
    """`clew report RUN --time-limit` of a run of clew's was accepted and did nothing."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.json").write_text(json.dumps({"suite": "etcd", "workload": "register"}))
    code, out = _clew("report", str(run), "--time-limit", "5")
    assert code == 254, out
    assert "only for a Jepsen store directory" in out and "clew analyze --time-limit" in out
