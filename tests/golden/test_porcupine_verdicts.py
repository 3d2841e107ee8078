"""Every row of Porcupine's EXPECTED.csv: the checker's verdict must match."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from checkers.linear import check
from harness.formats import read_history

DATA = Path(__file__).parent.parent / "data" / "porcupine"
ROWS = list(csv.DictReader((DATA / "EXPECTED.csv").read_text().splitlines()))


def test_the_expected_table_has_all_112_rows() -> None:
    assert len(ROWS) == 112
    assert sum(r["model"] == "etcd" for r in ROWS) == 102


@pytest.mark.golden
@pytest.mark.parametrize("row", ROWS, ids=[f"{r['model']}:{r['file']}" for r in ROWS])
def test_verdict_matches_expected(row: dict[str, str]) -> None:
    history = read_history(str(DATA / row["file"]))
    model = "kv" if row["model"].startswith("kv") else row["model"]
    result = check(history, model, partition=row["model"] != "kv-nopartition", time_limit=120)
    assert result.valid == (row["expected"] == "true"), result.cause
    if result.valid is False:
        cex = result.details["counterexample"]
        assert cex["deadline_op"] is not None
        assert all(step["legal"] for step in cex["linearized"])


@pytest.mark.golden
@pytest.mark.parametrize("name", ["c10-ok.txt", "c10-bad.txt"])
def test_unpartitioned_kv_c10_stays_within_a_2gb_budget(name: str) -> None:
    history = read_history(str(DATA / "kv" / name))
    result = check(history, "kv", partition=False, max_bytes=2 * 1024**3, time_limit=120)
    assert result.valid is (name == "c10-ok.txt"), result.cause  # decided, not "unknown"
    assert result.details["cache_bytes_peak"] <= 2 * 1024**3
