"""What clew test refuses before any cluster comes up, beyond options
(harness.runner.check_before_cluster; options: test_suite_options.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path


def test_an_agent_step_on_a_node_the_run_will_not_have_is_refused_before_any_cluster(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    state = tmp_path / "cluster"
    step = '{"node": "n9", "f": "start-kill", "on": {"log": "elected"}}'
    result = CliRunner().invoke(
        cli,
        ["test", "bugkv", "--nodes", "3", "--faults", "kill", "--agent-step", step,
         "--store", str(tmp_path / "s"), "--cluster-state-dir", str(state)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 254, result.output
    assert "agent step 1: no node 'n9' in this run (n1, n2, n3)" in result.output
    assert not state.exists() and not (tmp_path / "s").exists()


def test_power_off_on_a_provider_that_cannot_switch_nodes_is_refused_before_any_cluster(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    state = tmp_path / "cluster"
    result = CliRunner().invoke(
        cli,
        ["test", "bugkv", "--nodes", "3", "--faults", "kill,power-off",
         "--store", str(tmp_path / "s"), "--cluster-state-dir", str(state)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 254, result.output
    assert "cannot run --faults power-off" in result.output
    assert "the local provider cannot (use --provider qemu)" in result.output
    assert not state.exists() and not (tmp_path / "s").exists()


def test_power_off_is_refused_before_any_cluster_for_a_suite_file_too(tmp_path: Path) -> None:
    """Only built-in suites were checked (through their stand-in build)."""
    import pytest

    from harness.errors import ConfigError
    from harness.runner import check_before_cluster
    from harness.spec import load_spec
    from harness.suites import load_suite

    spec = load_spec(None, suite="bugkv", nodes=3, faults="kill,power-off",
                     store=str(tmp_path / "s"))  # fmt: skip
    suite_file = dataclasses.replace(load_suite("bugkv"))  # a copy: not the built-in suite
    with pytest.raises(ConfigError, match="the local provider cannot"):
        check_before_cluster(spec, suite=suite_file)


def test_a_spec_files_bad_cluster_option_is_refused_before_any_cluster_naming_the_file(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    spec = tmp_path / "run.toml"
    spec.write_text('suite = "bugkv"\nnodes = 3\n[cluster_options]\nfirst_host = -3\n')
    state = tmp_path / "cluster"
    result = CliRunner().invoke(
        cli,
        ["test", "--spec", str(spec), "--store", str(tmp_path / "s"),
         "--cluster-state-dir", str(state)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 254, result.output
    assert f"{spec}: cluster option `first_host` must be a positive integer" in result.output
    assert not state.exists() and not (tmp_path / "s").exists()


def test_every_provider_refuses_bad_cluster_options_without_making_anything(
    tmp_path: Path,
) -> None:
    import pytest

    from clusters import PROVIDERS, ClusterSpec, get_provider
    from harness.errors import ConfigError

    bad = {
        "local": ({"first_host": 0}, "first_host"),
        "static": ({"hosts": "h1", "port": 70000}, "port"),
        "vagrant": ({"network": "bridge", "memory": -1}, "memory"),
        "docker": ({"ready_timeout": "nan"}, "ready_timeout"),
        "podman": ({"prefix": "a b"}, "prefix"),
        "qemu": ({"cpus": 0}, "cpus"),
    }
    assert set(bad) == set(PROVIDERS)
    state = tmp_path / "state"
    for name, (options, culprit) in bad.items():
        spec = ClusterSpec(provider=name, nodes=3, state_dir=str(state), options=options)
        with pytest.raises(ConfigError, match=culprit):
            get_provider(name).check_spec(spec)
        good = ClusterSpec(provider=name, nodes=3, state_dir=str(state),
                           options={"hosts": "h1,h2,h3"} if name == "static" else {})  # fmt: skip
        get_provider(name).check_spec(good)
    assert not state.exists()


def test_the_container_providers_refuse_a_ready_timeout_that_is_no_number() -> None:
    import pytest

    from clusters import ClusterSpec, get_provider
    from harness.errors import ConfigError

    for value in ([1], True, "soon", "nan", -1):
        spec = ClusterSpec(provider="docker", nodes=1, options={"ready_timeout": value})
        with pytest.raises(ConfigError, match="ready_timeout must be a number of seconds"):
            get_provider("docker").check_spec(spec)


def test_static_options_without_hosts_are_checked_for_a_cluster_already_up() -> None:
    """`clew test --provider static --cluster-option user=admin` on hosts brought up
    before was refused: "the static provider needs hosts: --nodes host1,host2,host3",
    a flag `clew test` does not have."""
    import pytest

    from clusters import ClusterSpec, get_provider
    from harness.errors import ConfigError

    static = get_provider("static")
    static.check_spec(ClusterSpec(provider="static", nodes=3, options={"user": "admin"}))
    with pytest.raises(ConfigError, match="port"):
        static.check_spec(ClusterSpec(provider="static", nodes=3, options={"port": 70000}))
