"""Elle/Jepsen transactional histories in EDN and JSON, and ``clew check`` on them."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from checkers.txn import check
from harness.cli import cli
from harness.formats import detect_format, read_history

DATA = Path(__file__).resolve().parents[1] / "data" / "elle"


def test_edn_txn_values_become_lists() -> None:
    h = read_history(str(DATA / "g-single.edn"), "edn")
    assert h[2].f == "txn"
    assert h[2].value == [["append", "x", 1], ["append", "y", 1]]
    assert h[3].value == [["r", "x", None], ["r", "y", [1]]]


def test_files_give_their_verdicts() -> None:
    expect = {"g-single.edn": ["G-single-item"], "g1c.json": ["G1c"], "valid.edn": []}
    for name, anomalies in expect.items():
        path = str(DATA / name)
        h = read_history(path, detect_format(path))
        r = check(h, "list-append", "serializable")
        assert r.details["anomalies"] == anomalies, name
        assert r.valid is (not anomalies)


def test_cli_check_list_append_json() -> None:
    res = CliRunner().invoke(
        cli,
        [
            "check",
            "--model",
            "list-append",
            "--consistency",
            "snapshot-isolation",
            "--json",
            str(DATA / "g-single.edn"),
        ],
    )
    assert res.exit_code == 1, res.output
    rec = json.loads(res.output.strip().splitlines()[0])
    assert rec["valid"] is False
    assert rec["anomalies"] == ["G-single-item"]
    assert rec["consistency"] == "snapshot-isolation"


def test_cli_check_text_and_bad_consistency() -> None:
    res = CliRunner().invoke(cli, ["check", "--model", "list-append", str(DATA / "g1c.json")])
    assert res.exit_code == 1
    assert "INVALID" in res.output and "a contradiction!" in res.output
    res = CliRunner().invoke(cli, ["check", "--model", "list-append", str(DATA / "valid.edn")])
    assert res.exit_code == 0 and "VALID" in res.output
    res = CliRunner().invoke(cli, ["check", "--model", "list-append", "--consistency", "nope",
                                   str(DATA / "valid.edn")])  # fmt: skip
    assert res.exit_code == 254 and "unknown consistency model 'nope'" in res.output
