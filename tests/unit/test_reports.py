"""HTML reports: a run's report.html, the check report, the store index, escaping and caps."""

from __future__ import annotations

import html as html_lib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.formats import read_history, write_history
from harness.history import History
from reports import data
from reports.check_report import render_check_report
from reports.index import list_runs, write_index
from reports.run_report import MAX_LINEARIZED, render_run_report, write_run_report

DATA = Path(__file__).parent.parent / "data" / "porcupine"
VALID = DATA / "jepsen" / "etcd_002.log"
INVALID = DATA / "jepsen" / "etcd_000.log"

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_ATTR = '"><img src=x onerror=alert(1)>'


def check_entry(path: Path) -> dict[str, Any]:
    """What ``clew check`` records for one file (incl. the counterexample)."""
    from checkers.linear import check, get_model

    h = read_history(str(path))
    r = check(h, get_model("etcd"))
    entry: dict[str, Any] = {"file": str(path), "model": "etcd", "valid": r.valid,
                             "cause": r.cause, "ops": r.details["ops"], "key_groups": 1,
                             "seconds": r.seconds}  # fmt: skip
    if r.details.get("counterexample") is not None:
        entry["counterexample"] = r.details["counterexample"]
    return entry


def make_run(
    store: Path,
    source: Path,
    *,
    test: str = "etcd",
    name: str = "20250102T030405",
    faults: list[dict[str, Any]] | None = None,
    extra_spec: dict[str, Any] | None = None,
) -> Path:
    """A run directory as the runner writes it, from a Porcupine log."""
    run = store / test / name
    run.mkdir(parents=True)
    if not (store / "latest").is_symlink():  # a store, as clew test leaves one
        (store / "latest").symlink_to(run.relative_to(store))
    h = read_history(str(source))
    write_history(h, str(run / "history.jsonl"), "jsonl")
    e = check_entry(source)
    checker = {"valid": e["valid"], "cause": e["cause"]}
    if "counterexample" in e:
        checker["counterexample"] = e["counterexample"]
    results = {"valid": e["valid"], "checkers": {"linearizable": checker, "stats": {"valid": True}}}
    (run / "results.json").write_text(json.dumps(results))
    spec = {"name": test, "seed": 42, "nodes": ["n1", "n2", "n3"], "time_limit": 60}
    spec.update(extra_spec or {})
    (run / "spec.json").write_text(json.dumps(spec))
    if faults is not None:
        (run / "faults.jsonl").write_text("".join(json.dumps(f) + "\n" for f in faults))
    for node in ("n1", "n2"):
        (run / "nodes" / node).mkdir(parents=True)
        (run / "nodes" / node / "etcd.log").write_text(f"{node} log\n")
    return run


def payload(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="clew-data">(.*?)</script>', html, re.S)
    assert m is not None
    return json.loads(m.group(1))


def test_run_report_of_an_invalid_run_has_every_section(tmp_path: Path) -> None:
    faults = [
        {"time": 20, "phase": "start", "f": "start-partition", "value": "majority"},
        {"time": 60, "phase": "stop", "f": "stop-partition", "value": None},
        {"time": 100, "phase": "start", "f": "kill", "value": ["n1"]},
    ]
    run = make_run(tmp_path, INVALID, faults=faults)
    out = write_run_report(run)
    assert out == run / "report.html"
    html = out.read_text()
    for section in ("summary", "over-time", "timeline", "failures", "faults", "reproduce"):
        assert f'id="{section}"' in html
    assert "could not be linearized" in html
    assert "clew analyze" in html and "clew replay" in html
    assert "nodes/n1/etcd.log" in html and "nodes/n2/etcd.log" in html
    assert "<td><code>stats</code></td>" in html  # every checker is listed
    assert 'id="failure-view-0"' in html
    p = payload(html)
    assert [w["f"] for w in p["faults"]] == ["partition", "kill"]
    assert p["faults"][0]["start"] == 20 and p["faults"][0]["stop"] == 60
    assert p["faults"][1]["open"] is True  # never stopped: runs to the end
    cex = p["failures"][0]["counterexample"]
    assert cex["linearized_total"] == 42 and cex["could_not_follow"]
    assert all("state_before" in s and "state_after" in s for s in cex["linearized"])
    # Op counts by type and by f, computed from the columns.
    assert p["latency"]["total"] == 85
    assert '<code>cas</code></td><td class="num">6</td><td class="num">20</td>' in html


def test_report_of_a_valid_run_has_no_failure_view(tmp_path: Path) -> None:
    html = render_run_report(make_run(tmp_path, VALID))
    assert 'class="badge valid"' in html and 'id="failure-view-0"' not in html
    assert payload(html)["failures"] == []


def test_report_tolerates_an_almost_empty_run_dir(tmp_path: Path) -> None:
    run = tmp_path / "t" / "20250101T000000"
    run.mkdir(parents=True)
    (run / "results.json").write_text("{not json")
    html = render_run_report(run)
    assert "no history.jsonl" in html and "results.json" in html
    assert "No checker results" in html


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('{"valid": "maybe", "checkers": 5}', '`valid` must be true, false or "unknown"'),
        ('{"valid": false, "checkers": 5}', "`checkers` must be an object, found int"),
        ("[1, 2]", "expected a JSON object, found list"),
    ],
)
def test_report_of_a_malformed_results_json_says_so_in_the_page(
    tmp_path: Path, content: str, why: str
) -> None:
    run = make_run(tmp_path, VALID)
    (run / "results.json").write_text(content)
    result = CliRunner().invoke(cli, ["report", str(run)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    page = html_lib.unescape((run / "report.html").read_text())
    assert f"{run / 'results.json'}: " in page and why in page


def test_nothing_is_fetched_and_scripts_are_allowed_by_hash_only(tmp_path: Path) -> None:
    html = render_run_report(make_run(tmp_path, INVALID))
    assert "<script src" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html)
    assert csp is not None
    policy = html_lib.unescape(csp.group(1))  # attribute text: the browser unescapes it
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


def test_hostile_values_are_escaped_text(tmp_path: Path) -> None:
    hostile = XSS_SCRIPT + XSS_ATTR
    run = make_run(
        tmp_path,
        INVALID,
        extra_spec={"workload": hostile},
        faults=[{"time": 1, "phase": "start", "f": hostile, "value": hostile}],
    )
    results = json.loads((run / "results.json").read_text())
    results["checkers"]["linearizable"]["cause"] = hostile
    results["checkers"][hostile] = {"valid": False, "cause": hostile}
    (run / "results.json").write_text(json.dumps(results))
    html = render_run_report(run)
    assert "<script>alert" not in html and "<img" not in html and "onerror=alert(1)>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    # In the JSON payload, <, > and & are \u-escaped, so it cannot close its <script> block.
    block = html.split('id="clew-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block and "\\u003cscript\\u003e" in block


def test_check_report_single_file_is_a_full_report() -> None:
    html = render_check_report([check_entry(INVALID)])
    assert 'id="timeline-chart"' in html and 'id="failure-view-0"' in html
    assert "could not be linearized" in html


def test_check_report_several_files_lists_them_with_failure_views() -> None:
    entries = [
        check_entry(VALID),
        check_entry(INVALID),
        {"file": "x.log", "model": None, "valid": None, "error": "the file is empty"},
    ]
    html = render_check_report(entries)
    assert html.count('class="failure-view"') == 1 and "the file is empty" in html
    assert '<a href="#failure-0">' in html


def big_history(n_pairs: int, processes: int = 8) -> History:
    """A history of ``n_pairs`` invoke/ok pairs, some failing, built column-wise."""
    ops = []
    t = 0
    for i in range(n_pairs):
        p = i % processes
        ops.append({"type": "invoke", "process": p, "f": "write", "value": i, "time": t})
        t += 1_000_000
        ops.append({"type": "fail" if i % 10 == 0 else "ok", "process": p, "f": "write",
                    "value": i, "time": t})  # fmt: skip
    return History.from_ops(ops)


def test_series_are_capped_and_the_page_says_so(tmp_path: Path) -> None:
    h = big_history(3000)
    axis = data.time_axis(h)
    lat = data.latency_series(h, axis, cap=500)
    assert lat["shown"] == 500 and lat["total"] == 3000
    fails = sum(v is not None for v in lat["fail"])
    assert fails == 250  # failed ops kept first (300 of them; at most half the cap)
    assert lat["x"] == sorted(lat["x"])
    tp = data.throughput_series(h, axis, buckets=50)
    assert len(tp["x"]) == 50
    assert sum(tp["ok"]) * tp["width"] == pytest.approx(2700)  # rates integrate to counts
    # The timeline embeds every op up to its cap, and the page says when it is capped.
    run = tmp_path / "t" / "20250101T000000"
    run.mkdir(parents=True)
    write_history(h, str(run / "history.jsonl"), "jsonl")
    assert payload(render_run_report(run))["ops"]["shown"] == 3000
    html = render_run_report(run, max_ops=100)
    assert "Showing the first 100 of 3000 ops" in html
    assert payload(html)["ops"]["shown"] == 100 and payload(html)["ops"]["total"] == 3000
    args = ["report", "--no-index", "--max-ops", "10", str(run)]  # the flag
    assert CliRunner().invoke(cli, args, catch_exceptions=False).exit_code == 0
    html = (run / "report.html").read_text()
    assert "Showing the first 10 of 3000 ops" in html and payload(html)["ops"]["shown"] == 10


def test_counterexample_prefix_is_capped() -> None:
    from reports.run_report import trim_counterexample

    step = {"op": {"index": 0}, "state_before": 0, "state_after": list(range(5000))}
    cex = trim_counterexample(
        {"linearized": [step] * (MAX_LINEARIZED + 50), "could_not_follow": []}
    )
    assert len(cex["linearized"]) == MAX_LINEARIZED
    assert cex["linearized_total"] == MAX_LINEARIZED + 50 and cex["linearized_offset"] == 50
    assert isinstance(cex["linearized"][0]["state_after"], str)  # abbreviated
    assert "chars)" in cex["linearized"][0]["state_after"]
    # the checker describes only the prefix's last steps and gives the totals: kept
    described = {"linearized": [step] * (MAX_LINEARIZED + 50), "could_not_follow": [],
                 "linearized_total": 5000, "linearized_offset": 4750}  # fmt: skip
    cex = trim_counterexample(described)
    assert cex["linearized_total"] == 5000 and cex["linearized_offset"] == 4800
    # cut short by its deadline (found by review): fewer described than the window, said
    short = trim_counterexample({**described, "linearized": [step] * 12, "state": None,
                                 "linearized_offset": 300, "linearized_total": 500,
                                 "incomplete": "ran out of its time limit after 64 steps",
                                 "could_not_follow_total": 301})  # fmt: skip
    assert short["linearized_total"] == 500 and short["linearized_offset"] == 300
    assert short["incomplete"].startswith("ran out") and short["could_not_follow_total"] == 301
    for damaged in (-1, 4000, "4750", None):  # totals that do not add up are not trusted
        cex = trim_counterexample({**described, "linearized_offset": damaged})
        assert cex["linearized_total"] == MAX_LINEARIZED + 50 and cex["linearized_offset"] == 50


def test_op_counts_by_type_and_f() -> None:
    h = read_history(str(INVALID))
    c = data.op_counts(h)
    assert c["by_type"] == {"ok": 49, "fail": 20, "info": 16, "pending": 0}
    by_f = {r["f"]: r for r in c["by_f"]}
    assert by_f["cas"]["fail"] == 20 and by_f["read"]["total"] == 26
    assert sum(r["total"] for r in c["by_f"]) == c["invocations"] == 85


def test_position_only_histories_use_positions_and_timed_ones_their_span_unit() -> None:
    assert data.time_axis(read_history(str(INVALID))).positions
    axis = data.time_axis(big_history(10))  # 20 ms
    assert not axis.positions and axis.unit == "ms"
    assert float(axis.x(2_000_000)) == pytest.approx(2.0)
    axis = data.time_axis(big_history(1000))  # 2 s
    assert axis.unit == "s" and float(axis.x(2_000_000_000)) == pytest.approx(2.0)


def test_index_lists_runs_newest_first_with_verdicts(tmp_path: Path) -> None:
    make_run(tmp_path, VALID, name="20250101T000000")
    make_run(tmp_path, INVALID, name="20250301T000000")
    make_run(tmp_path, VALID, test="kv", name="20250201T120000")
    (tmp_path / "etcd" / "latest").symlink_to("20250301T000000")
    write_run_report(tmp_path / "etcd" / "20250301T000000")
    runs = list_runs(tmp_path)
    assert [r["name"] for r in runs] == [
        "etcd/20250301T000000", "kv/20250201T120000", "etcd/20250101T000000",
    ]  # fmt: skip
    assert [r["valid"] for r in runs] == [False, True, True]
    assert runs[0]["href"] == "etcd/20250301T000000/report.html"
    assert runs[1]["href"] == "kv/20250201T120000/"  # no report yet: the directory
    assert runs[0]["duration"] == "—"  # a Porcupine log has no real times (not "0.0 s")
    html = write_index(tmp_path).read_text()
    assert (
        html.index("20250301T000000")
        < html.index("20250201T120000")
        < html.index("20250101T000000")
    )
    assert 'class="badge invalid"' in html and 'class="badge valid"' in html
    assert "latest" not in html


def test_clew_report_rerenders_the_run_and_the_index(tmp_path: Path) -> None:
    run = make_run(tmp_path, INVALID)
    result = CliRunner().invoke(cli, ["report", str(run)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (run / "report.html").exists() and (tmp_path / "index.html").exists()
    assert f"report: {run / 'report.html'}" in result.output
    assert 'href="../../index.html"' in (run / "report.html").read_text()


def test_clew_report_rejects_a_missing_dir(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "nope")])
    assert result.exit_code != 0


def test_clew_report_refuses_a_dir_holding_no_run_file(tmp_path: Path) -> None:
    empty = tmp_path / "t" / "20250101T000000"
    (empty / "nodes").mkdir(parents=True)
    result = CliRunner().invoke(cli, ["report", str(empty)], catch_exceptions=False)
    assert result.exit_code == 254
    assert f"{empty}: not a run directory: it holds none of history.jsonl" in result.output
    assert not (empty / "report.html").exists() and not (tmp_path / "index.html").exists()
    (empty / "spec.json").write_text("{}")  # a partial run is reported, saying what it lacks
    result = CliRunner().invoke(cli, ["report", str(empty)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "no history.jsonl" in (empty / "report.html").read_text()


def test_clew_report_leaves_out_a_history_over_its_memory_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading history.jsonl for the page holds --max-memory: over it, the page is made
    from the run's other files and says why the history is not in it, naming the line."""
    import harness.read_budget as rb

    run = make_run(tmp_path, INVALID)
    grown = iter(range(0, 2**62, 2**30))  # every look at the resident set finds 1 GiB more
    monkeypatch.setattr(rb, "resident_bytes", lambda: next(grown))
    args = ["report", "--no-index", "--max-memory", "1M", str(run)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    text = html_lib.unescape(page)
    assert f"memory budget of 1 MiB reached while reading {run / 'history.jsonl'}" in text
    assert "raise --max-memory; the sections drawn from the history are left out" in text
    assert "ops" not in payload(page) and "linearizable" in page  # results still shown
    monkeypatch.undo()
    result = CliRunner().invoke(cli, [*args[:3], "2G", str(run)], catch_exceptions=False)
    assert "ops" in payload((run / "report.html").read_text())


def test_clew_report_max_memory_is_a_size(tmp_path: Path) -> None:
    run = make_run(tmp_path, INVALID)
    result = CliRunner().invoke(cli, ["report", "--max-memory", "lots", str(run)])
    assert result.exit_code == 254 and "'lots' is not a size" in result.output


def test_clew_check_report_writes_a_full_report(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(cli, ["check", "--report", str(out), str(INVALID)])
    assert result.exit_code == 1
    assert 'id="failure-view-0"' in out.read_text()
    assert os.path.getsize(out) < 1_000_000


def test_report_shows_the_ledger_and_the_heal_barrier(tmp_path: Path) -> None:
    faults = [
        {"time": 10, "seq": 1, "event": "intent", "kind": "pause", "f": "start-pause",
         "value": {"targets": "primaries"}},
        {"time": 20, "seq": 1, "event": "applied", "phase": "start", "kind": "pause",
         "f": "start-pause", "value": {"targets": "primaries", "nodes": ["n3"]},
         "targets": ["n3"]},
        {"time": 50, "seq": 2, "event": "intent", "kind": "pause", "f": "stop-pause"},
        {"time": 60, "seq": 2, "event": "healed", "phase": "stop", "kind": "pause",
         "f": "stop-pause", "value": "resumed"},
        {"time": 70, "seq": 3, "event": "verified", "clean": False,
         "residue": {"n2": ["partition: nft table inet clew present"]}},
    ]  # fmt: skip
    run = make_run(tmp_path, VALID, faults=faults, extra_spec={"faults": ["pause"]})
    results = json.loads((run / "results.json").read_text())
    residue = {"n1": [], "n2": ["partition: nft table inet clew present"]}
    results.update(tainted=True, heal_verified=False, heal_residue=residue)
    (run / "results.json").write_text(json.dumps(results))
    html = render_run_report(run)
    assert "TAINTED: residue after healing on n2: partition: nft table inet clew present" in html
    assert "<td>intent</td>" in html and "<td>applied</td>" in html and " → n3" in html
    assert [w["f"] for w in payload(html)["faults"]] == ["pause"]  # one window, not instants
    assert payload(html)["faults"][0]["stop"] == 60


def test_the_fault_ledger_read_for_the_page_is_capped_and_the_page_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A faults.jsonl of a million lines made a 65 MB page from 2.3 GB of memory: the page
    reads the ledger's first MAX_FAULT_RECORDS records, draws their windows and says how
    many the ledger holds."""
    import reports.run_report as rr

    faults = [{"time": 10 * i, "event": "applied" if i % 2 == 0 else "healed",
               "phase": "start" if i % 2 == 0 else "stop", "kind": "pause",
               "f": "start-pause" if i % 2 == 0 else "stop-pause"} for i in range(120)]  # fmt: skip
    run = make_run(tmp_path, VALID, faults=faults)
    monkeypatch.setattr(rr, "MAX_FAULT_RECORDS", 50)
    html = render_run_report(run)
    assert len(payload(html)["faults"]) == 25  # the windows of the first 50 records
    assert ("The fault ledger holds 120 records: the charts, the timeline and the table "
            "below show the faults of its first 50") in html  # fmt: skip
    assert "Showing 50 of 120 fault records." in html
    monkeypatch.setattr(rr, "MAX_FAULT_RECORDS", 120)
    html = render_run_report(run)
    assert len(payload(html)["faults"]) == 60 and "The fault ledger holds" not in html


def test_the_nemesis_ops_read_as_fault_records_are_capped() -> None:
    ops: list[dict[str, Any]] = []
    for i in range(30):
        f = "start-pause" if i % 2 == 0 else "stop-pause"
        ops += [{"type": "invoke", "process": "nemesis", "f": f, "time": 4 * i},
                {"type": "info", "process": "nemesis", "f": f, "time": 4 * i + 1}]  # fmt: skip
    h = History.from_ops(ops)
    assert data.nemesis_record_count(h) == 30
    assert len(data.nemesis_records(h)) == 30
    records = data.nemesis_records(h, limit=7)
    assert [r["time"] for r in records] == [4 * i + 1 for i in range(7)]


def test_a_checkers_details_are_written_out_only_up_to_the_cut(tmp_path: Path) -> None:
    """The page shows the first MAX_DETAILS_CHARS of a checker's details: only that much
    is made (results.json may hold a million anomalies: a gigabyte of text, to show 20 KB),
    and results.json is read once for the page and Elle's files."""
    import reports.run_report as rr

    made = []

    class Entry:
        def __repr__(self) -> str:
            made.append(1)
            return "an entry"

    text = rr._details({"valid": False, "details": {"anomalies": [Entry()] * 100_000}})
    assert text.endswith("… (cut at 20,000 chars; see results.json)")
    assert len(text) < rr.MAX_DETAILS_CHARS + 100 and 1_000 < len(made) < 3_000
    assert rr.capped_json({"a": [1, 2]}, 100, "x") == json.dumps({"a": [1, 2]}, indent=1)


def test_results_json_is_read_once_for_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reports.run_report as rr

    run = make_run(tmp_path, INVALID)
    read = []
    real = rr.read_results_object
    monkeypatch.setattr(rr, "read_results_object", lambda run: read.append(run) or real(run))
    write_run_report(run)
    assert len(read) == 1 and "linearizable" in (run / "report.html").read_text()
    (run / "results.json").write_text("{not json")  # a damaged one: the page says so
    write_run_report(run)
    assert f"{run / 'results.json'}: not JSON" in (run / "report.html").read_text()


def nil_read(tmp_path: Path) -> Path:
    """A read of nil after a completed write of 1: invalid for etcd's model (a nil read is a
    read of an absent key; the register models take it as a read that saw nothing)."""
    ops = [
        {"type": "invoke", "process": 0, "f": "write", "value": 1, "time": 0},
        {"type": "ok", "process": 0, "f": "write", "value": 1, "time": 10},
        {"type": "invoke", "process": 1, "f": "read", "value": None, "time": 20},
        {"type": "ok", "process": 1, "f": "read", "value": None, "time": 30},
    ]
    path = tmp_path / "nil-read.jsonl"
    write_history(History.from_ops(ops), str(path), "jsonl")
    return path


def test_the_stuck_op_is_named_with_its_value_nil_included(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    res = CliRunner().invoke(
        cli, ["check", "--model", "etcd", "--report", str(out), str(nil_read(tmp_path))]
    )
    assert res.exit_code == 1, res.output
    text = html_lib.unescape(out.read_text())
    assert "Op #2 (process 1: read → nil) had to be linearized" in re.sub(r"<[^>]+>", "", text)


def timed_run(store: Path) -> Path:
    """A run (:func:`make_run`) whose history carries real times, a clock anchor and a node
    agent's journal: the report reads its node logs and agent journals too."""
    run = make_run(store, INVALID)
    ops = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    for op in ops:
        op["time"] = 1_000_000 * op["index"] + 1
    (run / "history.jsonl").write_text("".join(json.dumps(op) + "\n" for op in ops))
    (run / "clock.json").write_text(json.dumps({"origin_unix_ns": 1_796_300_000 * 10**9}))
    (run / "nodes" / "n1" / "etcd.log").write_text("2026-12-03T12:12:15.201Z n1 says hi\n")
    (run / "nodes" / "n1" / "agent.jsonl").write_text('{"e": "start", "mono": 1, "run": 0}\n')
    return run


DEEP = "[" * 100_000 + "]" * 100_000  # more nesting than Python's JSON reader recurses into


@pytest.mark.parametrize(
    "name",
    ["results.json", "spec.json", "faults.jsonl", "clock.json", "agents.json", "history.jsonl",
     "nodes/n1/agent.jsonl", "nodes/n1/clock.jsonl"],
)  # fmt: skip
def test_deeply_nested_json_in_a_run_file_is_not_a_crash(tmp_path: Path, name: str) -> None:
    run = timed_run(tmp_path)
    (run / name).write_text('{"time": 1, "x": ' + DEEP + "}\n")
    result = CliRunner().invoke(cli, ["report", str(run)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "crashed" not in result.output and (tmp_path / "index.html").exists()
    if name in ("results.json", "spec.json", "faults.jsonl"):  # the page says what is wrong
        assert f"{run / name}" in (run / "report.html").read_text()


def test_a_symlink_planted_at_a_temporary_name_is_not_written_through(tmp_path: Path) -> None:
    """A foreign store with ``.index.html.tmp`` linked to a file elsewhere: the file it
    points at is left as it was (the index is written through a temporary name of its
    own, :func:`harness.record.replace_file`, so the planted link is not even used).
    Writing ``results.json`` over a planted ``results.json.tmp`` replaces the link. A run
    holding such a link (a link out of the run) is refused before anything is written."""
    from harness.record import write_json_file

    run = make_run(tmp_path / "store", INVALID)
    victims = {}
    for planted in (run / ".report.html.tmp", tmp_path / "store" / ".index.html.tmp",
                    run / "results.json.tmp"):  # fmt: skip
        victim = tmp_path / f"victim-{planted.name}"
        victim.write_text("precious")
        planted.symlink_to(victim)
        victims[planted] = victim
    refused = CliRunner().invoke(cli, ["report", str(run)], catch_exceptions=False)
    assert refused.exit_code == 254 and "a link out of the run" in refused.output
    write_json_file(run / "results.json", {"valid": True})
    (run / ".report.html.tmp").unlink()
    result = CliRunner().invoke(cli, ["report", str(run)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert all(v.read_text() == "precious" for v in victims.values())
    assert not any(p.is_symlink() for p in (run / "report.html", tmp_path / "store" / "index.html",
                                            run / "results.json"))  # fmt: skip
    assert not any(p.exists() or p.is_symlink() for p in victims
                   if p.name != ".index.html.tmp")  # fmt: skip


def test_links_to_files_named_like_urls_stay_paths(tmp_path: Path) -> None:
    """A foreign store's test directory or run file named ``javascript:alert(1)`` (or with a
    ``#``) is linked percent-encoded: a path, not a scheme or a fragment."""
    run = make_run(tmp_path, INVALID, test="javascript:alert(1)")
    (run / "javascript:alert(2)").write_text("x")
    (run / "nodes" / "n1" / "a#b.log").write_text("x")
    write_run_report(run)
    hrefs = re.findall(r'href="([^"]*)"', (run / "report.html").read_text())
    hrefs += re.findall(r'href="([^"]*)"', write_index(tmp_path).read_text())
    assert not [h for h in hrefs if ":" in h.split("/")[0]], hrefs  # no scheme
    assert "javascript%3Aalert%282%29" in hrefs and "nodes/n1/a%23b.log" in hrefs
    assert "javascript%3Aalert%281%29/20250102T030405/report.html" in hrefs
    assert "javascript%3Aalert%281%29/20250102T030405/history.jsonl" in hrefs


def test_a_node_log_linked_out_of_the_run_is_not_put_in_the_page(tmp_path: Path) -> None:
    run = timed_run(tmp_path / "store")
    secret = tmp_path / "auth.log"
    secret.write_text("2026-12-03T12:12:15.201Z SECRET of this machine\n")
    (run / "nodes" / "n1" / "planted.log").symlink_to(secret)
    (run / "nodes" / "n3").symlink_to(tmp_path)  # a whole node directory linked out
    html = render_run_report(run)
    assert "n1 says hi" in html and "SECRET" not in html
    # Nor are their names listed among the node's files (nodes/n3 -> /etc/ssh listed the
    # names and sizes of the host's keys).
    assert "auth.log" not in html and "planted.log" not in html
