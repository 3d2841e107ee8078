"""The pytest plugin's summary of a run says why a run whose history showed no anomaly is
still not valid (tainted, cut short), as ``clew test`` does."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.pytest_plugin import assert_valid, outcome_summary
from harness.record import RunResults
from harness.runner import RunOutcome


def outcome(tmp_path: Path, **fields: object) -> RunOutcome:
    results = RunResults(valid="unknown", checkers={"set": {"valid": True}}, ops=4,
                         **fields).to_json()  # type: ignore[arg-type]  # fmt: skip
    return RunOutcome(run_dir=tmp_path, valid="unknown", results=results, ops=4, duration=2.0)


def test_a_tainted_run_says_what_the_heal_left(tmp_path: Path) -> None:
    o = outcome(tmp_path, tainted=True, heal_residue={"n1": ["pause: a process is still stopped"]})
    text = outcome_summary(o)
    assert text.startswith("UNKNOWN: 4 ops in 2.0 s")
    assert "  set: valid" in text
    assert "tainted: the heal left residue (n1: pause: a process is still stopped)" in text
    with pytest.raises(AssertionError, match="tainted: the heal left residue"):
        assert_valid(o)


def test_a_run_cut_short_says_why(tmp_path: Path) -> None:
    text = outcome_summary(outcome(tmp_path, incomplete="interrupted (Ctrl-C)"))
    assert "  incomplete: interrupted (Ctrl-C); the history so far shows no anomaly" in text
    assert "tainted" not in text
