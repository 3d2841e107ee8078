"""A seeded fuzz of what clew reads from directories: no mutated run, Jepsen store,
campaign or store crashes ``clew report``, ``analyze``, ``compare``, ``serve``, ``replay``
or ``shrink``, hangs, or is refused without naming what is wrong.

The mutator (``bench/fuzz_dirs.py``) edits valid samples it writes as clew does; each case
runs through the CLI's entry point in this process, with no cluster and no server.
``bench/fuzz_dirs.py`` runs the same for thousands of cases and prints the counts.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.bench_module import load_bench


@pytest.fixture(scope="module")
def fuzz() -> ModuleType:
    return load_bench("fuzz_dirs.py", "clew_bench_fuzz_dirs")


@pytest.fixture(scope="module")
def samples(fuzz: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    work = tmp_path_factory.mktemp("fuzz-dirs")
    return work, fuzz.make_samples(work, log=lambda line: pytest.fail(line))


def test_every_kind_of_sample_is_made(samples: tuple[Path, list]) -> None:
    """The mutants start from real input: runs (one invalid, for shrink), Jepsen stores and
    campaigns, each read without complaint (else make_samples fails the test)."""
    _, found = samples
    kinds = {s.kind for s in found}
    assert kinds == {"run", "jepsen", "campaigns"}
    assert any(s.invalid for s in found if s.kind == "run")


def test_300_mutated_directories_never_crash(fuzz: ModuleType, samples: tuple[Path, list]) -> None:
    work, found = samples
    report = fuzz.fuzz(300, seed=5, workdir=str(work), samples=found, timeout=20.0)
    assert report.runs == 300
    bad = "\n\n".join(f"{b.outcome}: {' '.join(b.args)}\n{b.mutations}\n{b.output}"
                      for b in report.bad)  # fmt: skip
    for outcome in ("crash", "unclear error", "hang"):
        assert report.total(outcome) == 0, bad
    # Both kinds of outcome occur: the mutants reach past the readers, not only into them.
    assert report.total("verdict") > 50 and report.total("clear error") > 20


def test_the_classifier(fuzz: ModuleType) -> None:
    assert fuzz.classify(None, "", "Traceback (most recent call last):", None, ["f"]) == "crash"
    assert fuzz.classify(255, "", "clew: boom", None, ["f"]) == "crash"
    assert fuzz.classify(None, "", "", "timeout", ["f"]) == "hang"
    assert fuzz.classify(254, "", "clew: /r/f: bad", None, ["/r/f"]) == "clear error"
    assert fuzz.classify(254, "", "clew: bad", None, ["/r/f"]) == "unclear error"
    assert fuzz.classify(0, "", "", "cluster", ["f"]) == "verdict"
