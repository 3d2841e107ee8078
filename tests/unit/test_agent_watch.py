"""``agent_watch`` (``--agent-watch``): node agents that only watch. The spec carries it
from a file and from flags, a run without a fault kind refuses it, the run's fault space
says the run has agents, and a campaign's config hash covers it only when set (the hashes
of earlier campaigns hold)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from harness.campaign import config_hash, experiment_config
from harness.cli import cli as main
from harness.errors import ConfigError
from harness.runplan import run_space
from harness.spec import load_spec


def test_a_spec_file_asks_for_watching_agents_and_a_replay_keeps_it(tmp_path: Path) -> None:
    spec_file = tmp_path / "test.toml"
    spec_file.write_text('suite = "bugkv"\nfaults = ["partition"]\nagent_watch = true\n')
    spec = load_spec(str(spec_file))
    assert spec.agent_watch and spec.has_agents and spec.agent == ()
    again = load_spec(**{**spec.to_json(), "test_name": None, "concurrency": None})
    assert again.agent_watch


def test_without_it_a_run_has_agents_only_with_steps() -> None:
    assert not load_spec(suite="bugkv", faults="partition").has_agents
    step = {"node": "n1", "f": "start-kill", "at": 2.0}
    assert load_spec(suite="bugkv", faults="none", agent=[step]).has_agents


def test_watching_agents_need_a_fault_kind() -> None:
    with pytest.raises(ConfigError, match="`agent_watch` needs a fault kind"):
        load_spec(suite="bugkv", faults="none", agent_watch=True)
    with pytest.raises(ConfigError, match="`agent_watch`"):
        load_spec(suite="bugkv", faults="partition", agent_watch="yes")


def test_the_schedulers_fault_space_says_the_run_has_agents() -> None:
    ctx = SimpleNamespace(nodes=[SimpleNamespace(name=n) for n in ("n1", "n2", "n3")])
    watching = load_spec(suite="bugkv", faults="partition", agent_watch=True, seed=1)
    plain = load_spec(suite="bugkv", faults="partition", seed=1)
    assert run_space(watching, ctx, object(), []).agents  # type: ignore[arg-type]
    assert not run_space(plain, ctx, object(), []).agents  # type: ignore[arg-type]


def test_the_config_hash_covers_it_only_when_set() -> None:
    plain = load_spec(suite="bugkv", faults="partition")
    watching = load_spec(suite="bugkv", faults="partition", agent_watch=True)
    assert "agent_watch" not in experiment_config(plain)
    assert experiment_config(watching)["agent_watch"] is True
    assert config_hash(plain) != config_hash(watching)


@pytest.mark.parametrize("command", ["test", "campaign"])
def test_the_flag_reaches_the_spec_and_without_faults_exits_254(
    command: str, tmp_path: Path, campaign_spy: dict[str, Any]
) -> None:
    seen = campaign_spy
    if command == "campaign":
        r = CliRunner().invoke(main, ["campaign", "bugkv", "--faults", "partition", "--runs",
                                      "1", "--store", str(tmp_path), "--agent-watch"])  # fmt: skip
        assert r.exit_code == 0, r.output
        assert seen["spec"].agent_watch
    r = CliRunner().invoke(main, [command, "bugkv", "--faults", "none", "--agent-watch",
                                  "--store", str(tmp_path)])  # fmt: skip
    assert r.exit_code == 254, r.output
    assert "needs a fault kind" in r.output
    assert "Traceback" not in r.output
