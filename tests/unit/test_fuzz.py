"""A seeded fuzz of ``clew check`` and ``clew convert``: no mutated input crashes clew.

The mutator (``bench/fuzz.py``) edits valid samples of every format and model; each input
runs through the CLI's entry point in this process. ``bench/fuzz.py`` runs the same for
100,000 inputs and prints the counts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.bench_module import load_bench


@pytest.fixture(scope="module")
def fuzz() -> ModuleType:
    return load_bench("fuzz.py", "clew_bench_fuzz")


def test_every_sample_is_valid_input(fuzz: ModuleType, tmp_path: Path) -> None:
    """Unmutated, every sample reads and gets a verdict: the mutants start from real input."""
    import random

    rng = random.Random(0)
    names = set()
    for sample in fuzz.samples():
        ext = {"porcupine-etcd": ".log", "porcupine-kv": ".txt"}.get(sample.fmt, "." + sample.fmt)
        path = tmp_path / ("s" + ext)
        path.write_text(fuzz.render(sample, sample.ops, rng))
        args = ["check", "--no-progress", "--format", sample.fmt, *sample.args, str(path)]
        code, out, err = fuzz.run_cli(args)
        assert code in (0, 1, 2), (sample.name, out, err)
        names.add(sample.fmt)
    assert names == {"jsonl", "json", "edn", "porcupine-etcd", "porcupine-kv"}


def _collection(fuzz: ModuleType) -> Callable[[Any], bool]:
    from checkers.collections import CHECKERS

    return lambda s: fuzz.model_of(s) in CHECKERS


def _assert_no_crash(report: Any, runs: int) -> None:
    assert report.runs == runs
    bad = "\n\n".join(f"{name}: {cmd}\n{out}" for name, cmd, _, out in report.bad)
    assert report.counts["crash"] == 0, bad
    assert report.convert_counts["crash"] == 0, bad
    assert report.counts["unclear error"] == 0, bad


def test_2000_mutated_inputs_never_crash(fuzz: ModuleType, tmp_path: Path) -> None:
    """Every format; the linearizability and transactional models, and guessing."""
    collection = _collection(fuzz)
    report = fuzz.fuzz(2000, seed=11, workdir=str(tmp_path), only=lambda s: not collection(s))
    _assert_no_crash(report, 2000)
    # Both kinds of outcome occur: the mutants reach the checkers, not only the readers.
    assert report.counts["verdict"] > 100 and report.counts["clear error"] > 100


def test_collection_checkers_never_crash_on_mutated_inputs(
    fuzz: ModuleType, tmp_path: Path
) -> None:
    """The checkers registered in ``checkers.collections.CHECKERS`` (bank, counter, ...)."""
    from checkers.collections import CHECKERS

    collection = _collection(fuzz)
    if not any(collection(s) for s in fuzz.samples()):
        assert not CHECKERS  # none registered yet: nothing to fuzz
        return
    report = fuzz.fuzz(600, seed=12, workdir=str(tmp_path), only=collection)
    _assert_no_crash(report, 600)


def test_a_crash_is_counted_as_one(fuzz: ModuleType, tmp_path: Path) -> None:
    """The classifier itself: an escaping exception or a traceback is a crash."""
    assert fuzz.classify(None, "", "Traceback (most recent call last):\n", "f") == "crash"
    assert fuzz.classify(255, "CRASH f: boom", "", "f") == "crash"
    assert fuzz.classify(254, "ERROR f:1: bad", "", "f") == "clear error"
    assert fuzz.classify(254, "ERROR bad", "", "f") == "unclear error"
    assert fuzz.classify(1, "INVALID f", "", "f") == "verdict"
    code, _, err = fuzz.run_cli(["check", "--no-progress", str(tmp_path / "missing.jsonl")])
    assert code == 254 and "no such history file" in err + _
