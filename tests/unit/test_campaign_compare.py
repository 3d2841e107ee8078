"""``clew compare``: campaigns of several schedulers side by side, from ``clew campaign``
directories and ``bench/bugs.py`` results files: one step curve per scheduler of the
share of campaigns that had found the bug by each run, and the table."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.campaign_table import cells
from harness.cli import cli
from harness.errors import InputError
from reports.campaigns import campaign_rows, found_by_run, write_comparison


def campaign(root: Path, name: str, scheduler: str, found: int | None, *, runs: int = 5,
             experiment: str = "e1", bug: str = "early-ack") -> Path:  # fmt: skip
    """A campaign directory as ``clew campaign`` writes it (the fields compare reads)."""
    made = found or runs
    d = root / "campaigns" / "bugkv-set" / name
    (d / "runs" / "r1").mkdir(parents=True)
    (d / "campaign.json").write_text(json.dumps({
        "config": {"suite": "bugkv", "workload": "set", "options": {"bug": bug},
                   "scheduler": scheduler},
        "config_hash": f"{experiment}-{scheduler}", "experiment_hash": experiment,
        "caps": {"runs": runs}, "runs_to_detection": found,
        "seconds_to_detection": 10.0 * made if found else None,
        "fault_ops_to_detection": 3 * made if found else None, "runs_made": made,
        "seconds_spent": 10.0 * made, "fault_ops_spent": 3 * made,
        "runs": [{"wall_seconds": 10.0} for _ in range(made)],
    }))  # fmt: skip
    # nothing below a campaign's runs/ is read (this decoy would be an error)
    (d / "runs" / "r1" / "campaign.json").write_text("not JSON")
    return d


def test_campaign_directories_become_rows_named_by_their_experiment(tmp_path: Path) -> None:
    campaign(tmp_path, "a", "random", 3)
    campaign(tmp_path, "b", "random", None)
    campaign(tmp_path, "c", "ldfi", 1)
    rows = campaign_rows([tmp_path / "campaigns"])
    assert {r["bug"] for r in rows} == {"bugkv-set bug=early-ack"}
    by = {c.scheduler: c for c in cells(rows)}
    assert by["random"].campaigns == 2 and by["random"].not_found == 1
    assert by["random"].found_per_run == pytest.approx(1 / (3 + 5))
    assert by["ldfi"].p_vs_random is not None


def test_two_experiments_under_one_name_are_told_apart_by_their_hash(tmp_path: Path) -> None:
    campaign(tmp_path, "a", "random", 2, experiment="e1")
    campaign(tmp_path, "b", "random", 2, experiment="e2")
    names = {r["bug"] for r in campaign_rows([tmp_path])}
    assert names == {"bugkv-set bug=early-ack [e1]", "bugkv-set bug=early-ack [e2]"}


def test_the_curve_is_the_share_found_by_each_run_misses_staying_at_the_cap() -> None:
    def row(found: int | None) -> dict[str, Any]:
        return {"bug": "b", "scheduler": "random", "cap_runs": 4, "runs_to_detection": found,
                "runs": found or 4, "seconds": 1.0, "fault_ops": 1, "run_seconds": [1.0]}

    (cell,) = cells([row(1), row(3), row(4), row(None)])
    assert found_by_run(cell) == [0, 0.25, 0.25, 0.5, 0.75]


def test_a_curve_has_a_point_per_step_not_per_run(tmp_path: Path) -> None:
    """A cap of 100,000 runs drew 200,002 points a curve (and took a pass over the
    campaigns per run): the step curve needs its steps only, and looks the same."""
    campaign(tmp_path, "a", "random", 40_000, runs=100_000)
    campaign(tmp_path, "b", "random", 70_000, runs=100_000)
    campaign(tmp_path, "c", "random", None, runs=100_000)
    page = write_comparison(campaign_rows([tmp_path]), tmp_path / "compare.html").read_text()
    (d,) = re.findall(r'<path d="([^"]*)"', page)
    points = re.findall(r"[ML]([\d.]+),([\d.]+)", d)
    assert len(points) == 6  # the start, two points at each of 2 steps, the end at the cap
    assert [float(y) for _, y in points] == sorted((float(y) for _, y in points), reverse=True)
    assert float(points[0][0]) == 44 and float(points[-1][0]) == 480  # run 0 to the cap


def test_the_page_has_a_curve_per_scheduler_and_the_table(tmp_path: Path) -> None:
    campaign(tmp_path, "a", "random", 3)
    campaign(tmp_path, "b", "adaptive", 1)
    out = write_comparison(campaign_rows([tmp_path]), tmp_path / "compare.html")
    page = out.read_text()
    assert page.count("<svg") == 1 and len(re.findall(r"<path d=", page)) == 2
    assert "random (1 campaign, 1 found)" in page and "adaptive (1 campaign, 1 found)" in page
    assert "<td>3 [3-3]</td>" in page and "<td>1 [1-1]</td>" in page


def test_bench_results_files_are_read_as_they_are(tmp_path: Path) -> None:
    rows = [{"bug": "buffered-log", "depth": 2, "scheduler": s, "cap_runs": 10,
             "runs_to_detection": n, "runs": n or 10, "seconds": 5.0, "fault_ops": 2,
             "run_seconds": [5.0]} for s, n in (("random", 7), ("ldfi", 1))]  # fmt: skip
    path = tmp_path / "bugs.json"
    path.write_text(json.dumps(rows))
    page = write_comparison(campaign_rows([path]), tmp_path / "c.html").read_text()
    assert "buffered-log (depth 2)" in page and "ldfi (1 campaign, 1 found)" in page


def test_bad_input_is_named_and_the_command_says_where_the_page_is(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no campaign here"):
        campaign_rows([tmp_path / "empty"])
    bad = tmp_path / "x" / "campaign.json"
    bad.parent.mkdir()
    bad.write_text("{}")
    with pytest.raises(InputError, match=r"x/campaign.json: not a campaign.json"):
        campaign_rows([bad])
    runner = CliRunner()
    r = runner.invoke(cli, ["compare", str(tmp_path / "empty")])
    assert r.exit_code == 254 and "no campaign here" in r.output, r.output
    campaign(tmp_path, "a", "random", 2)
    out = tmp_path / "page.html"
    r = runner.invoke(cli, ["compare", str(tmp_path / "campaigns"), "-o", str(out)])
    assert r.exit_code == 0 and f"report: {out}" in r.output and out.is_file(), r.output


def test_labelled_paths_are_curves_of_their_own(tmp_path: Path) -> None:
    campaign(tmp_path / "one", "a", "random", 3)
    campaign(tmp_path / "one", "b", "adaptive", 2)
    campaign(tmp_path / "two", "c", "adaptive", 1)
    rows = campaign_rows([tmp_path / "one", f"trial={tmp_path / 'two'}"])
    assert sorted(c.scheduler for c in cells(rows)) == ["adaptive", "adaptive (trial)", "random"]
    out = tmp_path / "page.html"
    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "one"), f"trial={tmp_path / 'two'}",
                                 "-o", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "adaptive (trial) (1 campaign, 1 found)" in out.read_text()
    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "nowhere")])
    assert r.exit_code == 254 and "nowhere: no such file or directory" in r.output, r.output


def test_a_damaged_campaign_json_is_named_not_crashed_on_or_hung_on(tmp_path: Path) -> None:
    d = campaign(tmp_path, "a", "random", 2)
    data = json.loads((d / "campaign.json").read_text())
    for damage, says in (({"caps": {"runs": 10**11}}, "cap_runs 100000000000 is over"),
                         ({"runs_to_detection": "three"}, "runs_to_detection must be"),
                         ({"runs_made": 1e400}, "not a campaign.json")):  # fmt: skip
        (d / "campaign.json").write_text(json.dumps({**data, **damage}))
        with pytest.raises(InputError, match=says):
            campaign_rows([tmp_path])
    (d / "campaign.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="given twice"):
        campaign_rows([tmp_path, d / "campaign.json"])


def test_deeply_nested_json_is_named_not_crashed_on(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000  # more than Python's JSON reader recurses into
    rows = tmp_path / "rows.json"
    rows.write_text(deep)
    d = tmp_path / "c" / "campaign.json"
    d.parent.mkdir()
    d.write_text('{"config": ' + deep + "}")
    for path in (rows, d.parent):
        r = CliRunner().invoke(cli, ["compare", str(path)], catch_exceptions=False)
        assert r.exit_code == 254 and "crashed" not in r.output, r.output
        assert "nested too deeply" in r.output or "not a campaign.json" in r.output
