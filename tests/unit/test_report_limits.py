"""Limits of what ``clew report`` and the store index build from a run's files: a large or
repetitive results.json, spec.json or index cache gives a page of bounded size, in
bounded time, saying what it left out (found by a memory audit)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reports import collection_views as collection_views_module
from reports import elle_files, index_rows, txn_view
from reports.collection_views import collection_views
from reports.elle_files import links_in, write_elle_dir
from reports.index import render_index
from reports.index_rows import read_row
from reports.run_report import render_run_report
from reports.txn_view import find_anomalies


def run_dir(root: Path, checkers: dict[str, Any], name: str = "r1") -> Path:
    """A run directory with ``checkers`` as its results (invalid)."""
    run = root / "t" / name
    run.mkdir(parents=True)
    (run / "spec.json").write_text(json.dumps({"suite": "etcd", "workload": "register"}))
    results = {"format": 2, "valid": False, "checkers": checkers}
    (run / "results.json").write_text(json.dumps(results))
    return run


def cycle(text: str) -> dict[str, Any]:
    """A G0 cycle record of two transactions with ``text`` as its explanation and steps."""
    return {"cycle": [1, 2, 1], "explanation": text,
            "steps": [{"type": "ww", "key": "x", "text": text}] * 2}  # fmt: skip


def test_a_repeated_anomaly_kind_is_shown_once() -> None:
    txn = {"valid": False, "anomalies": ["G0"] * 50, "anomaly_details": {"G0": [cycle("x")]}}
    (group,) = find_anomalies({"txn": txn})
    assert [t["type"] for t in group["types"]] == ["G0"]
    assert group["more_kinds"] == 0


def test_anomaly_kinds_shown_are_capped_and_the_page_says_how_many_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(txn_view, "MAX_KINDS_SHOWN", 3, raising=False)
    details = {f"a{i}": 0 for i in range(10)}
    txn = {"valid": False, "anomalies": ["a9", "a9"], "anomaly_details": details}
    (group,) = find_anomalies({"txn": txn})
    assert [t["type"] for t in group["types"]] == ["a9", "a0", "a1"]
    assert (group["kinds"], group["more_kinds"]) == (10, 7)
    html = render_run_report(run_dir(tmp_path, {"txn": txn}))
    assert "and 7 more kinds" in html
    assert "a5" not in html.split("Transactional anomalies", 1)[1].split("Faults", 1)[0]


def test_an_explanation_and_its_steps_are_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(txn_view, "MAX_RECORD_CHARS", 100)
    monkeypatch.setattr(txn_view, "MAX_STEP_CHARS", 50, raising=False)
    long = "y" * 1_000
    txn = {"valid": False, "anomalies": ["G0"], "anomaly_details": {"G0": [cycle(long)]}}
    (group,) = find_anomalies({"txn": txn})
    (shown,) = group["types"][0]["shown"]
    assert len(shown["explanation"]) == 100
    assert [len(s) for s in shown["steps"]] == [50, 50]
    assert "y" * 51 not in str(shown["svg"])


def test_elle_files_are_written_for_at_most_so_many_kinds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(elle_files, "MAX_KIND_FILES", 2, raising=False)
    details = {f"a{i}": [cycle("x")] for i in range(5)}
    results = {"checkers": {"txn": {"valid": False, "anomaly_details": details}}}
    out = tmp_path / "elle"
    write_elle_dir(out, results)
    assert sorted(p.name for p in out.glob("*.txt")) == ["_more.txt", "a0.txt", "a1.txt"]
    more = (out / "_more.txt").read_text()
    assert more.startswith("3 more anomaly kind(s)") and "a4" in more
    assert sorted(links_in(out, "elle/")) == ["a0", "a1"]
    write_elle_dir(out, results)  # its own files: replaced


class _CountedStr(str):
    """A str that counts its comparisons for equality (what a list's ``in`` makes)."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _CountedStr.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_anomaly_classes_of_an_index_row_are_found_in_linear_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 2_000
    checker = {"valid": False, "anomalies": [f"a{i}" for i in range(n)]}
    run = run_dir(tmp_path, {"c": checker})
    monkeypatch.setattr(index_rows, "str", _CountedStr, raising=False)
    _CountedStr.compared = 0
    read_row(run)
    assert _CountedStr.compared < 10 * n  # (each name against each before it: n²/2)


def test_lock_rows_are_found_in_linear_time() -> None:
    n = 2_000
    holds = [[_CountedStr(f"p{i}"), 0, None, 0, 1] for i in range(n)]
    _CountedStr.compared = 0
    (view,) = collection_views({"c": {"checker": "lock", "valid": False, "holds": holds}})
    assert _CountedStr.compared < 10 * n  # (each process against each before it: n²/2)
    assert view["svg"].count("<rect") == collection_views_module.MAX_HOLD_ROWS


def test_lock_holds_drawn_and_pairs_listed_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collection_views_module, "MAX_HOLDS_DRAWN", 5, raising=False)
    monkeypatch.setattr(collection_views_module, "MAX_PAIR_ROWS", 3, raising=False)
    holds = [[i % 2, i, i + 1, i, i + 1] for i in range(40)]
    pairs = [[[0, i], [1, i + 1]] for i in range(0, 20, 2)]  # ten pairs, in holds 0..19
    lock = {"checker": "lock", "valid": False, "holds": holds, "overlaps": pairs,
            "overlap_count": 10}  # fmt: skip
    (view,) = collection_views({"c": lock})
    assert view["svg"].count("<rect") == 5
    assert view["svg"].count('fill="#c62828"><title>') == 5  # the overlapping ones first
    assert len(view["pairs"]) == 3
    html = render_run_report(run_dir(tmp_path, {"c": lock}))
    assert "Showing 5 of 40 holds" in html and "Showing 3 of 10 overlapping pairs" in html


def test_index_row_texts_are_cut_short(tmp_path: Path) -> None:
    run = run_dir(
        tmp_path / "big", {"c": {"valid": False, "anomalies": [f"G{i}" * 30 for i in range(25)]}}
    )
    spec = {"suite": "etcd", "workload": "w" * 10_000, "faults": ["partition"] * 1_000,
            "options": {f"o{i}": "v" * 100 for i in range(100)}}  # fmt: skip
    (run / "spec.json").write_text(json.dumps(spec))
    row = read_row(run)
    for text in (row.workload, row.faults, row.options):
        assert 0 < len(text) <= 60
    assert row.faults.endswith(" (none struck)")
    assert len(row.anomalies) == 20 and all(len(a) <= 40 for a in row.anomalies)
    assert getattr(row, "more_anomalies", None) == 5
    html = render_index(tmp_path / "big")
    assert "and 5 more" in html
    plain = render_index(run_dir(tmp_path / "plain", {}).parent.parent)
    assert len(html.encode()) - len(plain.encode()) < 1_600  # (550 bytes a row, about)


def test_bank_reads_drawn_and_errors_listed_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collection_views_module, "MAX_BANK_POINTS", 10, raising=False)
    monkeypatch.setattr(collection_views_module, "MAX_ERROR_ROWS", 2, raising=False)
    totals = [[i, 100 if i % 10 else 99, i] for i in range(50)]  # five wrong: all drawn
    errors = {f"e{i}": {"count": 1, "first": {"index": i}} for i in range(5)}
    bank = {"checker": "bank", "valid": False, "total": 100, "totals": totals, "errors": errors}
    (view,) = collection_views({"c": bank})
    assert view["svg"].count("<circle") == 10
    assert view["svg"].count('r="3"') == 5 and view["wrong"] == 5
    assert len(view["summary"]) == 2
    html = render_run_report(run_dir(tmp_path, {"c": bank}))
    assert "Showing 10 of 50 reads" in html and "Showing 2 of 5 kinds of error" in html


def test_bank_reads_all_wrong_are_sampled_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collection_views_module, "MAX_BANK_POINTS", 10, raising=False)
    bank = {"checker": "bank", "valid": False, "total": 1, "totals": [[i, 0, i] for i in range(50)]}
    (view,) = collection_views({"c": bank})
    assert view["svg"].count("<circle") == 10 and view["wrong"] == 50
    assert ">op 0: total 0<" in view["svg"] and ">op 49: total 0<" in view["svg"]


def test_set_full_unexpected_elements_listed_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collection_views_module, "MAX_UNEXPECTED_SHOWN", 3, raising=False)
    unexpected = ["u" * 1_000, *range(9)]
    full = {"checker": "set-full", "valid": False, "unexpected": unexpected}
    (view,) = collection_views({"c": full})
    assert len(view["unexpected"]) == 3 and len(view["unexpected"][0]) <= 200
    html = render_run_report(run_dir(tmp_path, {"c": full}))
    assert "(showing 3 of 10)" in html
