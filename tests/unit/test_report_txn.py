"""Transactional anomalies in reports: explanations in words and inline SVG drawings of the
cycles, in a run's report.html and in ``clew check --report``, all of it escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from click.testing import CliRunner

from checkers.txn import check
from harness.cli import cli
from harness.formats import write_history
from harness.history import History
from reports.check_report import render_check_report
from reports.run_report import render_run_report
from reports.txn_view import MAX_CYCLE_DRAWN, cycle_svg, describe_record, find_anomalies

HOSTILE = "<script>alert(1)</script>"
SVG = "http://www.w3.org/2000/svg"


def concurrent(*rows: tuple[int, list[list[Any]]]) -> History:
    """Every transaction invoked before any completes (all ok)."""
    ops: list[dict[str, Any]] = []
    for p, mops in rows:
        inv = [[f, k, None if f == "r" else v] for f, k, v in mops]
        ops.append({"process": p, "type": "invoke", "f": "txn", "value": inv})
    ops += [{"process": p, "type": "ok", "f": "txn", "value": m} for p, m in rows]
    return History.from_ops(ops)


def skewed(key: Any = "x") -> History:
    """Write skew (G2-item) on keys ``key`` and y, plus a lost update on key z."""
    return concurrent(
        (0, [["r", key, []], ["r", "y", []], ["append", key, 1]]),
        (1, [["r", key, []], ["r", "y", []], ["append", "y", 1]]),
        (2, [["r", "z", []], ["append", "z", 1]]),
        (3, [["r", "z", []], ["append", "z", 2]]),
        (4, [["r", key, [1]], ["r", "y", [1]], ["r", "z", [1, 2]]]),
    )


def run_dir(tmp_path: Path, history: History) -> Path:
    """A run directory as the runner leaves it, checked for serializability."""
    run = tmp_path / "postgres-list-append" / "20260102T030405"
    run.mkdir(parents=True)
    write_history(history, str(run / "history.jsonl"), "jsonl")
    result = check(history, "list-append", "serializable")
    checkers = {"list-append": result.to_json()}
    (run / "results.json").write_text(json.dumps({"valid": result.valid, "checkers": checkers}))
    (run / "spec.json").write_text(json.dumps({"name": "pg", "seed": 1, "nodes": 1}))
    return run


def svgs(html: str) -> list[ElementTree.Element]:
    """Every drawn cycle in ``html``, parsed as XML (so it must be well formed)."""
    found = re.findall(r'<svg class="txn-cycle".*?</svg>', html, re.S)
    return [ElementTree.fromstring(s) for s in found]


def test_a_cycle_is_drawn_with_one_circle_per_transaction_and_one_arrow_per_step() -> None:
    result = check(skewed(), "list-append", "serializable")
    rec = result.details["anomaly_details"]["G2-item"][0]
    svg = cycle_svg(rec)
    assert svg is not None
    root = ElementTree.fromstring(str(svg))
    circles = root.findall(f".//{{{SVG}}}circle")
    edges = [g for g in root.iter(f"{{{SVG}}}g") if "txn-edge" in g.get("class", "")]
    assert len(circles) == 2 and len(edges) == 2
    titles = [g.findtext(f"{{{SVG}}}title") for g in edges]
    assert all(t and "observed the initial (empty) state" in t for t in titles)  # on hover
    labels = [g.findtext(f"{{{SVG}}}text") or "" for g in edges]
    assert sorted(labels) == ["rw x", "rw y"]
    assert "G2-item" in (root.get("aria-label") or "")


def test_no_drawing_without_a_cycle_or_for_a_huge_one() -> None:
    assert cycle_svg({"type": "G0", "cycle": [1, 1], "steps": []}) is None
    big = list(range(MAX_CYCLE_DRAWN + 1))
    assert cycle_svg({"type": "G0", "cycle": [*big, 0], "steps": []}) is None
    small = cycle_svg({"type": "G0", "cycle": [5, 6, 7, 5], "steps": [{"type": "ww"}] * 3})
    assert small is not None and len(svgs(str(small))) == 1


def test_non_cycle_anomalies_get_sentences() -> None:
    text = describe_record("lost-update", {"key": "z", "value": [], "ops": [5, 6]})
    assert "#5, #6" in text and "'z'" in text
    assert "failed transaction #3" in describe_record(
        "G1a", {"op": 9, "writer": 3, "key": 1, "element": 4}
    )


def sequential(*rows: tuple[int, list[list[Any]]]) -> History:
    """Transactions one after another (all ok)."""
    ops: list[dict[str, Any]] = []
    for p, mops in rows:
        inv = [[f, k, None if f == "r" else v] for f, k, v in mops]
        ops.append({"process": p, "type": "invoke", "f": "txn", "value": inv})
        ops.append({"process": p, "type": "ok", "f": "txn", "value": mops})
    return History.from_ops(ops)


def test_internal_shows_the_earlier_read_and_the_expected_value() -> None:
    # T1 reads [1], appends 2, then reads [1] again: it should have seen [1, 2]
    h = sequential((0, [["append", "x", 1]]),
                   (1, [["r", "x", [1]], ["append", "x", 2], ["r", "x", [1]]]))  # fmt: skip
    (rec,) = check(h, "list-append", "serializable").details["anomaly_details"]["internal"]
    assert rec["earlier"] == ["r", "x", [1]] and rec["expected"] == [1, 2]
    text = describe_record("internal", rec)
    assert "read key 'x' as [1]" in text
    assert "earlier in the same transaction it read [1] and since appended [2]" in text
    assert text.endswith("it expected [1, 2]")
    # no earlier read: only the end of the list is known (its own appends)
    h = sequential((0, [["append", "x", 1]]), (1, [["append", "x", 2], ["r", "x", [1]]]))
    (rec,) = check(h, "list-append", "serializable").details["anomaly_details"]["internal"]
    assert rec["earlier"] is None and rec["expected_suffix"] == [2]
    assert "it expected a list ending with [2]" in describe_record("internal", rec)
    # rw-register: the value its own write (or read) left
    h = sequential((0, [["w", "x", 1], ["r", "x", 2]]), (1, [["w", "x", 2]]))
    (rec,) = check(h, "rw-register", "serializable").details["anomaly_details"]["internal"]
    text = describe_record("internal", rec)
    assert "read key 'x' as 2" in text and "it expected 1" in text


def test_a_valid_result_has_nothing_to_show() -> None:
    r = check(concurrent((0, [["append", "x", 1]]), (1, [["r", "x", [1]]])), "list-append")
    assert r.valid is True and find_anomalies({"list-append": r.to_json()}) == []


def test_run_report_shows_explanations_and_drawings(tmp_path: Path) -> None:
    html = render_run_report(run_dir(tmp_path, skewed()))
    assert 'id="anomalies"' in html and 'href="#anomalies"' in html
    assert "<code>G2-item</code>" in html and "<code>lost-update</code>" in html
    assert "a contradiction!" in html  # the checker's explanation, verbatim
    assert "which T2 changed by appending 1" in html
    assert "all read key &#39;z&#39; as [] and all appended to it" in html
    assert len(svgs(html)) >= 1
    assert "clew check --model list-append --consistency serializable" in html
    section = html.split('id="anomalies"', 1)[1].split('id="faults"', 1)[0]
    assert "<script" not in section and not re.search(r"<[^>]*\son[a-z]+=", section)


def test_hostile_keys_are_escaped_in_words_and_drawings(tmp_path: Path) -> None:
    html = render_run_report(run_dir(tmp_path, skewed(key=HOSTILE)))
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)" in html
    drawn = svgs(html)
    assert drawn  # still well-formed XML with the hostile key inside
    assert any(HOSTILE[:8] in "".join(t.itertext()) for t in drawn)


def test_clew_check_report_shows_the_anomalies(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    write_history(skewed(), str(path), "jsonl")
    out = tmp_path / "report.html"
    res = CliRunner().invoke(
        cli, ["check", "--model", "list-append", "--report", str(out), str(path)]
    )
    assert res.exit_code == 1, res.output
    html = out.read_text()
    assert "txn (list-append)" in html and "a contradiction!" in html and svgs(html)
    # --json prints the record without the details it keeps for the report
    res = CliRunner().invoke(
        cli, ["check", "--model", "list-append", "--json", "--report", str(out), str(path)]
    )
    assert "anomaly_details" not in res.output and json.loads(res.output)["anomalies"]
    assert svgs(out.read_text())


def test_check_report_of_several_files_shows_each_files_anomalies(tmp_path: Path) -> None:
    entries = []
    for name, h in (("a", skewed()), ("b", skewed(key="w"))):
        r = check(h, "list-append", "serializable")
        entries.append({"file": f"{name}.jsonl", "model": "list-append", "valid": r.valid,
                        "cause": r.cause, "ops": len(h), **r.details})  # fmt: skip
    html = render_check_report(entries)
    assert html.count("a contradiction!") >= 2 and len(svgs(html)) >= 2
    assert "<h3" in html and "a.jsonl" in html and "b.jsonl" in html


def test_clew_check_report_writes_elle_files_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    write_history(skewed(), str(path), "jsonl")
    out = tmp_path / "out" / "report.html"
    res = CliRunner().invoke(
        cli, ["check", "--model", "list-append", "--report", str(out), str(path)]
    )
    assert res.exit_code == 1, res.output
    elle = out.parent / "elle"
    assert f"elle files: {elle}/" in res.output
    g2 = (elle / "G2-item.txt").read_text()
    assert g2.startswith("G2-item: ") and "a contradiction!" in g2
    assert "all appended to it" in (elle / "lost-update.txt").read_text()
    drawings = sorted((elle / "G2-item").glob("*.svg"))
    assert drawings and all(ElementTree.parse(d).getroot().tag == f"{{{SVG}}}svg" for d in drawings)
    html = out.read_text()
    assert 'href="elle/G2-item.txt"' in html and 'href="elle/G2-item/"' in html
    # several files: one directory per history, named after it; a valid one gets none
    valid = tmp_path / "valid.jsonl"
    write_history(
        concurrent((0, [["append", "x", 1]]), (1, [["r", "x", [1]]])), str(valid), "jsonl"
    )
    res = CliRunner().invoke(
        cli, ["check", "--model", "list-append", "--report", str(out), str(path), str(valid)]
    )
    assert res.exit_code == 1, res.output
    assert not (elle / "G2-item.txt").exists()  # the single-file layout was replaced
    assert (elle / "h.jsonl" / "G2-item.txt").is_file() and not (elle / "valid.jsonl").exists()
    assert 'href="elle/h.jsonl/G2-item.txt"' in out.read_text()


def test_clew_check_report_never_deletes_files_it_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    write_history(skewed(), str(path), "jsonl")
    (tmp_path / "elle").mkdir()
    (tmp_path / "elle" / "notes.md").write_text("mine")
    res = CliRunner().invoke(
        cli, ["check", "--model", "list-append", "--report", str(tmp_path / "r.html"), str(path)]
    )
    assert res.exit_code == 254 and "not replaced" in res.output
    assert (tmp_path / "elle" / "notes.md").read_text() == "mine"
