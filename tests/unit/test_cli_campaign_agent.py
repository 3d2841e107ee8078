"""``clew campaign --agent-step``: the steps reach the campaign's spec (so every run hands
them to the nodes), and bad ones are refused before any run with exit 254."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import cli as main

STEP = {"node": "n1", "f": "start-kill", "on": {"log": "became-leader"}, "hold": 1}


def test_agent_steps_reach_the_campaigns_spec(tmp_path: Path, campaign_spy: dict[str, Any]) -> None:
    seen = campaign_spy
    two = [{"node": "n2", "f": "start-pause", "at": 2, "hold": 0.5},
           {"node": "n3", "f": "start-kill", "at": 3}]  # fmt: skip
    r = CliRunner().invoke(main, [
        "campaign", "bugkv", "--faults", "none", "--runs", "2", "--store", str(tmp_path),
        "--fault-lease", "3", "--agent-journal-rate", "50",
        "--agent-step", json.dumps(STEP), "--agent-step", json.dumps(two),
    ])  # fmt: skip
    assert r.exit_code == 0, r.output
    spec = seen["spec"]
    assert [s["node"] for s in spec.agent] == ["n1", "n2", "n3"]
    assert spec.agent[0]["on"] == {"log": "became-leader"}
    assert (spec.fault_lease, spec.agent_journal_rate) == (3.0, 50.0)
    assert spec.to_json()["agent"][0]["f"] == "start-kill"  # in spec.json and the hash


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("{not json", "--agent-step 1: not JSON"),
        (json.dumps({"node": "n1", "f": "start-kill"}), "exactly one of `at`"),
    ],
)
def test_bad_agent_steps_exit_254_before_any_run(step: str, message: str) -> None:
    r = CliRunner().invoke(main, ["campaign", "bugkv", "--faults", "none", "--agent-step", step])
    assert r.exit_code == 254, r.output
    assert message in r.output
