"""The collection checkers on histories from elle-cli (and Knossos), with the verdicts
upstream states (tests/data/elle-cli/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from checkers.collections import CHECKERS
from harness.formats import read_history

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.mark.parametrize(
    ("path", "model", "options", "valid"),
    [
        ("elle-cli/bank.edn", "bank", {}, True),
        ("elle-cli/bank-neg.edn", "bank", {}, True),
        ("elle-cli/bank-negative-balances.json", "bank", {}, False),
        ("elle-cli/counter.edn", "counter", {}, True),
        ("elle-cli/set_full.edn", "set-full", {}, False),
        ("elle-cli/long-fork.edn", "long-fork", {"group_size": 3}, False),
        ("knossos/mutex/bad/etcd.edn", "lock", {}, False),
    ],
)
def test_upstream_verdicts(path: str, model: str, options: dict[str, Any], valid: bool) -> None:
    result = CHECKERS[model](read_history(str(DATA / path)), **options)
    assert result.valid is valid, result.cause


def test_bank_edn_and_json_agree() -> None:
    edn = CHECKERS["bank"](read_history(str(DATA / "elle-cli/bank.edn")))
    assert edn.details["total"] == 100 and edn.details["read_count"] > 100
    negative = CHECKERS["bank"](read_history(str(DATA / "elle-cli/bank-negative-balances.json")))
    assert set(negative.details["errors"]) == {"negative-value"}


def test_set_full_upstream_is_invalid_because_tuples_are_never_read() -> None:
    r = CHECKERS["set-full"](read_history(str(DATA / "elle-cli/set_full.edn")))
    assert r.details["lost_count"] == r.details["attempt_count"] == 293


def test_knossos_etcd_mutex_is_caught_by_the_mutex_model() -> None:
    r = CHECKERS["lock"](read_history(str(DATA / "knossos/mutex/bad/etcd.edn")))
    assert r.details["overlap_count"] == 0  # no two acknowledged holds overlap ...
    assert r.details["linearizable"]["valid"] is False  # ... but no order explains it
