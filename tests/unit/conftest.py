"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import harness.campaign


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
