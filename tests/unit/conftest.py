"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import harness.campaign


@pytest.fixture(autouse=True)
def own_clew_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each unit test has a clew state directory of its own (``CLEW_STATE_DIR``): a run
    whose cluster is stubbed still locks its cluster's state directory (one run at a time
    on a cluster, :mod:`clusters.in_use`), which must be neither this machine's default
    cluster nor another test's."""
    monkeypatch.setenv("CLEW_STATE_DIR", str(tmp_path_factory.mktemp("clew-state")))


@pytest.fixture
def campaign_spy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``harness.campaign.run_campaign`` replaced by a spy that runs nothing, records the
    spec it was given under ``"spec"`` in the returned dict, and reports a campaign that
    found nothing: for tests whose unit is the CLI's parsing of campaign flags."""
    seen: dict[str, Any] = {}

    def spy(spec: Any, **kw: Any) -> Any:
        seen["spec"] = spec
        return SimpleNamespace(runs_to_detection=None, stopped="runs", directory=tmp_path,
                               exit_code=0)  # fmt: skip

    monkeypatch.setattr(harness.campaign, "run_campaign", spy)
    return seen
