"""mypy over clew's public surface: the extension API, the provider and nemesis protocols,
the DB and nemesis abilities, the fault-kind registry, the scheduler seam, and the
checkers' entry points. A suite author's adapter is checked against these, so they must
type-check themselves (errors in modules they import are other tests' business:
``--follow-imports=silent``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SURFACE = [
    "harness/api.py",
    "clusters/base.py",
    "nemeses/base.py",
    "nemeses/abilities.py",
    "nemeses/kinds/__init__.py",
    "nemeses/scheduler.py",
    "checkers/__init__.py",
    "checkers/result.py",
    "checkers/set.py",
    "checkers/linear/checker.py",
    "checkers/txn/check.py",
    "checkers/collections/__init__.py",
]


@pytest.mark.slow  # (a minute on a busy 2-core machine; seconds with a warm cache)
@pytest.mark.skipif(
    shutil.which("mypy", path=str(Path(sys.executable).parent)) is None
    and subprocess.run([sys.executable, "-m", "mypy", "--version"], capture_output=True).returncode,
    reason="mypy is not installed",
)
def test_the_public_surface_type_checks() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", *SURFACE],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success" in proc.stdout
