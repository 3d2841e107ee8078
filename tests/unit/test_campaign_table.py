"""The runs-to-detection table: campaigns that found nothing are censored at the cap (not
dropped), medians with quartiles, and the one-sided Mann-Whitney U test against random."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.campaign_table import Spread, cells, markdown, read_rows, text
from harness.errors import InputError


def row(bug: str, sched: str, found: int | None, *, cap: int = 10, secs: float = 10.0,
        ops: int = 3) -> dict[str, Any]:  # fmt: skip
    runs = found or cap
    return {
        "bug": bug, "depth": 2, "scheduler": sched, "cap_runs": cap, "config_hash": "h",
        "runs_to_detection": found, "seconds_to_detection": secs * runs if found else None,
        "fault_ops_to_detection": ops * runs if found else None, "runs": runs,
        "seconds": secs * runs, "fault_ops": ops * runs, "run_seconds": [secs] * runs,
    }  # fmt: skip


def test_a_campaign_that_found_nothing_counts_at_the_cap_not_dropped() -> None:
    rows = [row("b", "random", 1), row("b", "random", None), row("b", "random", None)]
    (cell,) = cells(rows)
    assert cell.campaigns == 3 and cell.not_found == 2 and cell.cap == 10
    assert cell.capped_runs == (1, 10, 10)
    # Dropping the misses would give a median of 1; counted at the cap it is 10, and a
    # lower bound (most campaigns found nothing).
    assert cell.runs.median == 10 and cell.runs.censored and cell.runs.show().startswith(">=10")
    assert cell.seconds.median == 100.0  # what the censored campaigns spent
    assert cell.fault_ops.median == 30.0
    assert cell.spent_seconds == 10 + 100 + 100


def test_quartiles_and_an_uncensored_median() -> None:
    rows = [row("b", "random", n) for n in (1, 2, 3, 4, 5)]
    (cell,) = cells(rows)
    assert (cell.runs.median, cell.runs.q1, cell.runs.q3) == (3, 2, 4)
    assert not cell.runs.censored and cell.runs.show() == "3 [2-4]"
    assert Spread.of([]) is None


def test_a_faster_scheduler_is_significant_against_random_and_a_slower_one_is_not() -> None:
    rows = [row("b", "random", None) for _ in range(10)]
    rows += [row("b", "ldfi", n) for n in (1, 2, 1, 3, 2, 1, 2, 2, 1, 4)]
    rows += [row("b", "adaptive", None) for _ in range(10)]
    by = {c.scheduler: c for c in cells(rows)}
    assert by["random"].p_vs_random is None
    assert by["ldfi"].p_vs_random is not None and by["ldfi"].p_vs_random < 0.001
    assert by["adaptive"].p_vs_random is not None and by["adaptive"].p_vs_random > 0.5
    assert by["ldfi"].runs.median == 2


def test_a_cell_without_random_has_no_test() -> None:
    (cell,) = cells([row("b", "ldfi", 2), row("b", "ldfi", 3)])
    assert cell.p_vs_random is None


def test_markdown_and_text_show_every_cell() -> None:
    table = cells([row("b", "random", None), row("b", "ldfi", 2), row("c", "random", 1)])
    md = markdown(table).splitlines()
    assert md[0].startswith("| bug | depth | scheduler |") and len(md) == 2 + 3
    assert "fault ops per run" in md[0] and md[3].endswith("| 3.0 | 20 | - |")
    assert "| `b` | 2 | ldfi | 1 | 0 (10) | 2 [2-2] |" in md[3]
    assert len(text(table)) == 3 and "p(U<random)" in text(table)[1]


def test_stored_rows_are_read_and_bad_files_named(tmp_path: Path) -> None:
    good = tmp_path / "a.json"
    good.write_text(json.dumps([row("b", "random", 2)]))
    assert read_rows([good])[0]["runs_to_detection"] == 2
    bad = tmp_path / "b.json"
    bad.write_text('{"bug": 1}')
    with pytest.raises(InputError, match=r"b\.json: not a list of campaign rows"):
        read_rows([bad])
    broken = tmp_path / "c.json"
    broken.write_text("[")
    with pytest.raises(InputError, match=r"c\.json: not JSON"):
        read_rows([broken])


def test_older_rows_without_spent_totals_use_their_run_seconds() -> None:
    old = {"bug": "b", "depth": 1, "scheduler": "random", "cap_runs": 4,
           "runs_to_detection": None, "seconds_to_detection": None, "runs": 4,
           "fault_ops": 12, "run_seconds": [10.0, 20.0, 30.0, 40.0]}  # fmt: skip
    (cell,) = cells([old])
    assert cell.seconds.median == 100.0 and cell.runs.median == 4 and cell.fault_ops.median == 12


def test_unknown_runs_are_summed_and_shown_only_when_every_row_counts_them() -> None:
    counted = [{**row("b", "random", None), "unknown_runs": 2},
               {**row("b", "random", 3), "unknown_runs": 1}]  # fmt: skip
    (cell,) = cells(counted)
    assert cell.unknown_runs == 3
    assert markdown([cell]).splitlines()[2].endswith("| 3 |")
    assert text([cell])[0].endswith("unknown runs 3")
    (older,) = cells([*counted, row("b", "random", 2)])
    assert older.unknown_runs is None and text([older])[0].endswith("unknown runs -")


def test_detections_per_run_tell_cells_apart_where_both_medians_sit_at_the_cap() -> None:
    # random: 1 found (at run 4) in 10 campaigns; adaptive: 3 found (runs 2, 5, 9).
    rows = [row("b", "random", 4), *(row("b", "random", None) for _ in range(9))]
    rows += [row("b", "adaptive", n) for n in (2, 5, 9)]
    rows += [row("b", "adaptive", None) for _ in range(7)]
    by = {c.scheduler: c for c in cells(rows)}
    assert by["random"].runs.show().startswith(">=10")
    assert by["adaptive"].runs.show().startswith(">=10")
    assert by["random"].found_per_run == pytest.approx(1 / (4 + 9 * 10))
    assert by["adaptive"].found_per_run == pytest.approx(3 / (2 + 5 + 9 + 7 * 10))
    assert "0.035" in markdown(list(by.values())) and "found/run 0.011" in text([by["random"]])[0]


def test_a_median_of_counts_halfway_is_shown_exactly_not_rounded() -> None:
    # Ten campaigns found the bug in run 1 and ten later: the median is 1.5 runs. Rounded
    # (to even) it read "2", and a scheduler with a median of 1 then seemed to need half.
    rows = [row("b", "random", n) for n in [1] * 10 + [2] * 5 + [3, 3, 4, 4, 5]]
    (cell,) = cells(rows)
    assert cell.runs.median == 1.5 and cell.runs.show() == "1.5 [1-2.25]"
    assert Spread.of([2.0, 3.0]).show() == "2.5 [2.25-2.75]"  # type: ignore[union-attr]
    assert Spread.of([10.4, 20.6]).show() == "16 [13-18]"  # type: ignore[union-attr]


def test_a_labelled_file_keeps_its_cells_apart_and_both_are_tested_against_random(
    tmp_path: Path,
) -> None:
    base = tmp_path / "random.json"
    base.write_text(json.dumps([row("b", "random", None) for _ in range(8)]))
    before = tmp_path / "before.json"
    before.write_text(json.dumps([row("b", "adaptive", None) for _ in range(8)]))
    trial = tmp_path / "trial.json"
    trial.write_text(json.dumps([row("b", "adaptive", n) for n in (1, 2, 1, 3, 2, 1, 2, 1)]))
    pooled = {c.scheduler: c for c in cells(read_rows([base, before, trial]))}
    assert set(pooled) == {"random", "adaptive"} and pooled["adaptive"].campaigns == 16
    by = {c.scheduler: c for c in cells(read_rows([base, f"before={before}", f"trial={trial}"]))}
    assert set(by) == {"random", "adaptive (before)", "adaptive (trial)"}
    assert by["adaptive (before)"].campaigns == 8 and by["adaptive (trial)"].runs.median == 1.5
    assert by["adaptive (trial)"].p_vs_random is not None
    assert by["adaptive (trial)"].p_vs_random < 0.001 < 0.5 < by["adaptive (before)"].p_vs_random


def test_a_labelled_random_is_the_baseline_where_no_other_random_is(tmp_path: Path) -> None:
    base = tmp_path / "random.json"
    base.write_text(json.dumps([row("b", "random", None) for _ in range(6)]))
    fast = tmp_path / "ldfi.json"
    fast.write_text(json.dumps([row("b", "ldfi", 1) for _ in range(6)]))
    by = {c.scheduler: c for c in cells(read_rows([f"old={base}", fast]))}
    assert by["random (old)"].p_vs_random is None
    assert by["ldfi"].p_vs_random is not None and by["ldfi"].p_vs_random < 0.01


def test_a_path_with_an_equals_sign_that_exists_is_a_path(tmp_path: Path) -> None:
    odd = tmp_path / "a=b.json"
    odd.write_text(json.dumps([row("b", "random", 2)]))
    assert read_rows([odd])[0]["scheduler"] == "random"
    with pytest.raises(InputError, match=r"nothing\.json: cannot read"):
        read_rows([f"x={tmp_path / 'nothing.json'}"])


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [("runs_to_detection", "three", "runs_to_detection must be a number"),
     ("runs_to_detection", -1, "runs_to_detection must be a number"),
     ("seconds", float("nan"), "seconds must be a number"),
     ("fault_ops", "x", "fault_ops must be a number"),
     ("run_seconds", "abc", "run_seconds must be a list"),
     ("cap_runs", 10**11, "cap_runs 100000000000 is over 100,000"),
     ("scheduler", 5, "not a campaign row")],
)  # fmt: skip
def test_a_row_with_a_bad_field_is_named_by_file_and_row(
    tmp_path: Path, field: str, value: Any, says: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([row("b", "random", 2), {**row("b", "random", 3), field: value}]))
    with pytest.raises(InputError, match=rf"bad\.json: row 2: {says}"):
        read_rows([bad])


def test_a_file_given_twice_or_a_label_without_a_path_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    f.write_text(json.dumps([row("b", "random", 2)]))
    for twice in ([f, f], [f, f"x={f}"]):
        with pytest.raises(InputError, match="given twice"):
            read_rows(twice)
    with pytest.raises(InputError, match="x=: no path after the label"):
        read_rows(["x="])


def test_bench_table_names_a_bad_file_without_a_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.json"
    bad.write_text("[")
    bench = Path(__file__).parent.parent.parent / "bench" / "bugs.py"
    out = subprocess.run([sys.executable, str(bench), "--table", str(bad)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 254 and "bad.json: not JSON" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_rows_read_for_the_table_keep_only_its_fields_and_bounded_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """clew compare of 8 files of 24 MB, each one row with an extra field of 8M empty
    lists, took 4.62 GB: every row was kept with all its fields. Rows are cut to the fields
    the table uses (whole only for --resume, which writes them again); run_seconds past
    the cap and texts past MAX_ROW_TEXT are named."""
    import harness.campaign_table as table

    extra = {**row("b", "random", 2), "note": [[]] * 1000, "campaign_index": 3}
    path = tmp_path / "a.json"
    path.write_text(json.dumps([extra]))
    (read,) = read_rows([path])
    assert set(read) <= set(table.TABLE_FIELDS) and "note" not in read
    assert read == {k: v for k, v in extra.items() if k in table.TABLE_FIELDS}
    assert read_rows([path], whole=True) == [extra]
    monkeypatch.setattr(table, "MAX_CAP", 3)
    path.write_text(json.dumps([{**row("b", "random", 2), "cap_runs": 3,
                                 "run_seconds": [1.0] * 4}]))  # fmt: skip
    with pytest.raises(InputError, match=r"a\.json: row 1: run_seconds holds 4 runs' seconds"):
        read_rows([path])
    monkeypatch.setattr(table, "MAX_ROW_TEXT", 5)
    path.write_text(json.dumps([row("bugname", "random", 2)]))
    with pytest.raises(InputError, match=r"row 1: bug is 7 characters long, more than the 5"):
        read_rows([path])
    path.write_text(json.dumps([{**row("b", "rand", 2), "config_hash": [1] * 1000}]))
    with pytest.raises(InputError, match=r"config_hash must be a string, not \[1, 1, .*…$"):
        read_rows([path])
