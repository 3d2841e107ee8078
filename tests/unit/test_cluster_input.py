"""Bad user input to `clew cluster`, `clew doctor` and the cluster state: each is a usage
error (exit 254) naming what is wrong, never a traceback or a path outside the state dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from clusters.base import ClusterSpec, check_cluster_name, default_state_dir
from harness.cli import cli
from harness.errors import ConfigError


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout + result.stderr


BAD_NAMES = ["", ".", "..", "../../x", "a/b", "/abs", "a b", "x" * 65, "n\n", "é"]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("cmd", [["cluster", "up", "--provider", "static", "--nodes", "a"],
                                 ["cluster", "down"], ["cluster", "status"], ["doctor"]])
def test_a_cluster_name_that_is_not_a_plain_name_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, cmd: list[str]
) -> None:
    monkeypatch.setenv("CLEW_STATE_DIR", str(tmp_path / "state"))
    clusters = tmp_path / "state" / "clusters"
    clusters.mkdir(parents=True)
    (clusters / "keep").write_text("not clew's")
    code, text = run(*cmd, "--name", name)
    assert code == 254, text
    assert "letters, digits, '-', '_' or '.'" in text and "--name" in text
    assert (clusters / "keep").read_text() == "not clew's"  # nothing was removed
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["clusters", "keep", "state"]


@pytest.mark.parametrize("name", ["default", "lab", "a.b", "x_1-2", "x" * 64, "..a"])
def test_plain_names_are_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("CLEW_STATE_DIR", str(tmp_path))
    assert check_cluster_name(name) == name
    assert default_state_dir(name) == tmp_path / "clusters" / name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_library_refuses_them_too(name: str) -> None:
    with pytest.raises(ConfigError, match="cluster name"):
        default_state_dir(name)
    with pytest.raises(ConfigError, match="cluster name"):
        ClusterSpec(name=name)
