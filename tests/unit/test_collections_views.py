"""The report views of the collection checkers (reports/collection_views.py)."""

from __future__ import annotations

from typing import Any

from checkers.collections import bank, lock, set_full
from harness.history import History
from reports.collection_views import collection_views
from reports.render import render

MS = 1_000_000


def _h(*ops: tuple[Any, ...]) -> History:
    return History.from_ops(
        [
            {"process": p, "type": t, "f": f, "value": v, "time": i * 100 * MS}
            for i, (p, t, f, v) in enumerate(ops)
        ]
    )


def test_bank_view_draws_totals_wrong_ones_red_and_fault_bands() -> None:
    h = _h(
        (0, "invoke", "read", None),
        (0, "ok", "read", {"a": 5, "b": 5}),
        (0, "invoke", "read", None),
        (0, "ok", "read", {"a": 5, "b": 7}),
    )
    res = bank.check(h).to_json()
    faults = [{"f": "partition<x>", "start": 0.1, "stop": 0.2}]
    (view,) = collection_views({"bank": res}, faults=faults)
    svg = str(view["svg"])
    assert view["title"] == "Bank total over time" and view["wrong"] == 1
    assert svg.count("<circle") == 2 and "#c62828" in svg  # the wrong total is red
    assert "partition&lt;x&gt;" in svg and "<x>" not in svg  # escaped
    assert view["summary"] == [{"type": "wrong-total", "count": 1, "first": 3}]


def test_lock_view_marks_overlapping_holds() -> None:
    h = _h(
        (0, "invoke", "acquire", None),
        (0, "ok", "acquire", None),
        (1, "invoke", "acquire", None),
        (1, "ok", "acquire", None),
        (0, "invoke", "release", None),
        (0, "ok", "release", None),
    )
    res = lock.check(h, linear_max_ops=0).to_json()
    (view,) = collection_views({"lock": res})
    svg = str(view["svg"])
    assert view["overlaps"] == 1 and svg.count("<rect") == 2
    assert svg.count("#c62828") == 2  # both holds of the overlapping pair
    assert "never released" in svg


def test_set_full_view_and_page_render() -> None:
    h = _h(
        (0, "invoke", "add", 0),
        (0, "ok", "add", 0),
        (1, "invoke", "read", None),
        (1, "ok", "read", []),
    )
    res = set_full.check(h).to_json()
    views = collection_views({"set-full": res, "other": {"checker": "linearizable"}})
    assert [v["kind"] for v in views] == ["set-full"]
    assert views[0]["rows"][0]["outcome"] == "lost" and views[0]["counts"]["lost"] == 1
    html = render(
        "run.html.j2",
        title="t",
        valid=False,
        checkers=[],
        facts=[],
        spec=None,
        reproduce=[],
        failures=[],
        anomalies=[],
        collection_views=views,
        edge_legend=[],
        prefix_tail=5,
        fault_rows=[],
        fault_rows_total=0,
        has_faults_file=False,
        logs=[],
        files=[],
        history_error=None,
        index_href=None,
        payload={},
        counts=None,
        axis_positions=False,
        latency_cap=None,
        timeline_cap=None,
        faults=[],
    )
    assert "Set-full: every element" in html and 'class="coll-lost"' in html


def test_op_indices_from_a_foreign_results_json_are_escaped() -> None:
    """A results.json from elsewhere put markup (a meta refresh) in a lock hold's or a bank
    total's op index, which went into the page raw."""
    meta = '<meta http-equiv="refresh" content="0;url=file:///tmp/x">'
    lock_res = {"checker": "lock", "valid": False, "holds": [[0, meta, meta, 0, 10]],
                "overlaps": [], "overlap_count": 0}  # fmt: skip
    bank_res = {"checker": "bank", "valid": True, "totals": [[0, 10, meta]], "total": 10}
    for view in collection_views({"lock": lock_res, "bank": bank_res}):
        svg = str(view["svg"])
        assert "<meta" not in svg and "&lt;meta http-equiv=" in svg, svg
