"""Jepsen's verdict from a results.edn too large to parse whole: a linear scan for the
top-level :valid?, under a deadline (a 3 MB file took 31 s with edn_format)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from harness import jepsen_store
from harness.edn_verdict import top_level_verdict
from harness.errors import InputError
from harness.read_budget import ReadBudgetExceeded

STORE = Path(__file__).parent.parent / "data" / "jepsen-store"


def _verdict(tmp_path: Path, text: str) -> object:
    f = tmp_path / "results.edn"
    f.write_text(text)
    return top_level_verdict(f)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("{:valid? true}", True),
        ("{:a 1, :valid? false}", False),
        ("; Jepsen\n{:perf {:valid? true}\n :valid? :unknown}", "unknown"),
        ('{:a {:valid? true} :b "}{:valid? true" :c \\} :valid? false}', False),
        ("{:a :valid? :b true}", None),  # :valid? as a value is not the key
        ("{:a #_ :b :valid? true}", None),  # #_ drops :b: :valid? is :a's value
        ("{#_ :x :valid? ^:m [1] false}", None),  # its value is a vector
        ("{:a [1 (2 #{3})] :valid? [true]}", None),
        ("{:x ##Inf :valid? true}", True),
        ("{:a (1 2)}", None),
    ],
)
def test_top_level_verdict(tmp_path: Path, text: str, valid: object) -> None:
    assert _verdict(tmp_path, text) == valid


@pytest.mark.parametrize("text", ["[:valid? true]", "", "{:valid? "])
def test_not_one_map_is_an_input_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(InputError, match=r"results\.edn"):
        _verdict(tmp_path, text)


def _big_store(tmp_path: Path) -> Path:
    store = tmp_path / "run"
    shutil.copytree(STORE, store)
    nested = '[{:f :read :value [1 2 3]} (:a "s]")] ' * 20_000
    (store / "results.edn").write_text(f"{{:linear {{:paths ({nested})}}\n :valid? false}}\n")
    return store


def test_a_large_results_file_is_scanned_not_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edn_format

    def refuse(_text: str) -> None:
        raise AssertionError("edn_format was asked to parse a large results.edn")

    monkeypatch.setattr(edn_format, "loads", refuse)
    store = _big_store(tmp_path)
    assert (store / "results.edn").stat().st_size > jepsen_store.RESULTS_PARSE_MAX
    assert jepsen_store.read_jepsen_results(store) == {"valid?": False}


def test_the_scan_stops_at_its_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _big_store(tmp_path)
    with pytest.raises(ReadBudgetExceeded, match=r"scanning .*results\.edn"):
        jepsen_store.read_jepsen_results(store, deadline=time.monotonic() - 1)
    scan = jepsen_store.read_jepsen_results  # history.edn is read in time; the scan is not
    late = lambda store, deadline: scan(store, deadline=time.monotonic() - 1)  # noqa: E731
    monkeypatch.setattr(jepsen_store, "read_jepsen_results", late)
    c = jepsen_store.check_jepsen_store(store, time_limit=60)
    assert c.jepsen_valid is None
    problems = (c.view / "results.json").read_text()
    assert "Jepsen's results.edn was not read: time limit reached while scanning" in problems
