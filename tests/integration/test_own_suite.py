"""The worked example of docs/your-own-database.md runs through `clew test` as documented."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.runner import run_test
from harness.spec import load_spec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
]

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "toykv.py"


@pytest.mark.parametrize(("primary", "valid"), [(False, False), (True, True)])
def test_the_toy_suite_is_caught_unless_everyone_uses_one_primary(
    tmp_path: Path, primary: bool, valid: bool
) -> None:
    spec = load_spec(
        suite=str(EXAMPLE), nodes=3, time_limit=6, faults="none", seed=2,
        store=str(tmp_path / "store"), cluster_state_dir=str(tmp_path / "cluster"),
        cluster_options={"subnet": "10.77.91.0/24", "prefix": "cty-", "bridge": "cty-br0"},
        options={"primary": primary},
    )  # fmt: skip
    outcome = run_test(spec)
    assert outcome.valid is valid, outcome.results
    assert outcome.ops > 100
    assert outcome.run_dir.parent.name == "toykv-register"
