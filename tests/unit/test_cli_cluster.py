"""`clew cluster up|status|down` and `clew doctor` through the CLI (static provider)."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from clusters.base import CLUSTER_FILE, Cluster
from clusters.doctor import missing_for_local, run_checks
from harness.cli import cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def ports() -> Iterator[tuple[int, int]]:
    """A local port that accepts connections and one that refuses them."""
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))
        yield listening.getsockname()[1], closed.getsockname()[1]


def test_static_up_status_down(
    tmp_path: Path, ports: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.cli_cluster

    monkeypatch.setattr(harness.cli_cluster, "LOGIN_TIMEOUT", 0.5)
    state = str(tmp_path / "st")
    code, out, _ = run("cluster", "up", "--provider", "static", "--nodes", "a,b,c",
                       "--state-dir", state)  # fmt: skip
    assert code == 0
    assert "is up with 3 nodes" in out and f"state: {state}" in out
    assert "n1    root@a:22" in out and "n3    root@c:22" in out
    cluster = Cluster.load(state)
    assert [n.host for n in cluster.nodes] == ["a", "b", "c"]

    up, refused = ports
    code, out, _ = run("cluster", "up", "--provider", "static", "--state-dir", state,
                       "--nodes", f"127.0.0.1:{up}", "--option", "user=ops")  # fmt: skip
    assert code == 0 and f"n1    ops@127.0.0.1:{up}" in out
    # The port answers, but it is no SSH server: the login `clew test` makes fails.
    code, out, err = run("cluster", "status", "--state-dir", state)
    assert code == 1 and "port answers; no login: " in out
    assert "1 of 1 nodes do not answer or take no login" in err

    run("cluster", "up", "--provider", "static", "--state-dir", state,
        "--nodes", f"127.0.0.1:{up},127.0.0.1:{refused}")  # fmt: skip
    code, out, err = run("cluster", "status", "--state-dir", state)
    assert code == 1 and "refused" in out and "2 of 2 nodes do not answer" in err

    code, out, err = run("cluster", "down", "--state-dir", state)
    assert (code, out, err) == (0, "", "")
    assert not (tmp_path / "st" / CLUSTER_FILE).exists()
    # Nothing up (a misspelt --name or --state-dir): it says so, and it is not an error.
    assert run("cluster", "down", "--state-dir", state) == (
        0, "", f"no cluster is up in {state}; nothing to take down\n")
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "ledger.json").write_text("{}")  # an `up` killed before it saved
    code, out, err = run("cluster", "down", "--state-dir", state)
    assert code == 0 and "holds ledger.json" in err and "--provider local" in err

    code, _, err = run("cluster", "status", "--state-dir", state)
    assert code == 1 and "no cluster is up" in err


def test_name_selects_the_default_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEW_STATE_DIR", str(tmp_path))
    code, _, _ = run("cluster", "up", "--provider", "static", "--nodes", "x", "--name", "lab")
    assert code == 0 and (tmp_path / "clusters" / "lab" / CLUSTER_FILE).exists()
    assert run("cluster", "down", "--name", "lab")[0] == 0
    assert not (tmp_path / "clusters" / "lab").exists()


def test_insecure_host_keys_warns(tmp_path: Path) -> None:
    code, _, err = run("cluster", "up", "--provider", "static", "--nodes", "a",
                       "--insecure-host-keys", "--state-dir", str(tmp_path))  # fmt: skip
    assert code == 0 and "warning: host keys are NOT verified" in err
    assert Cluster.load(tmp_path).nodes[0].check_host_key is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--provider", "static", "--nodes", "3"], "--nodes lists the hosts"),
        (["--provider", "static"], "needs hosts"),
        (["--provider", "docker", "--nodes", "a,b"], "--nodes is how many nodes"),
        (["--provider", "docker", "--nodes", "0"], "--nodes is how many nodes"),
        (["--provider", "nope"], "unknown cluster provider 'nope'"),
        (["--provider", "vagrant", "--key", "k"], "--key is only for --provider static"),
        (["--provider", "static", "--nodes", "a", "--option", "novalue"], "write KEY=VALUE"),
        (["--provider", "static", "--nodes", "a", "--port", "0"], "--port"),
        (
            ["--provider", "static", "--nodes", "a", "--port", "22", "--option", "port=23"],
            "repeats a flag",
        ),
        (["--provider", "static", "--nodes", "a:99999"], "out of range"),
        (
            ["--provider", "static", "--nodes", "a", "--password-env", "CLEW_TEST_NO_SUCH_VAR"],
            "CLEW_TEST_NO_SUCH_VAR is not set",
        ),
    ],
)
def test_bad_options_exit_254_with_clear_text(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, out, err = run("cluster", "up", "--state-dir", str(tmp_path / "s"), *args)
    assert code == 254
    assert message in out + err
    assert not (tmp_path / "s" / CLUSTER_FILE).exists()


def test_help_teaches_with_examples() -> None:
    for cmd in (["cluster"], ["cluster", "up"], ["cluster", "status"], ["cluster", "down"],
                ["doctor"]):  # fmt: skip
        code, out, _ = run(*cmd, "--help")
        assert code == 0 and "Examples:" in out


def test_doctor_prints_a_table_and_exits_by_the_local_requirements(tmp_path: Path) -> None:
    code, out, err = run("doctor", "--state-dir", str(tmp_path))
    # A cluster asked for that is not up (a misspelt --name) is said, not skipped silently.
    assert err == f"no cluster is up in {tmp_path}; checking this machine only\n"
    lines = out.splitlines()
    assert lines[0].split() == ["CHECK", "OK", "DETAIL"]
    assert any(line.startswith("packet-netem ") for line in lines)
    expected = 1 if missing_for_local(run_checks()) else 0
    assert code == expected
    assert ("missing for the local provider" in out) == bool(expected)


def test_doctor_checks_the_nodes_of_a_cluster_that_is_up(
    tmp_path: Path, ports: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.cli_cluster

    monkeypatch.setattr(harness.cli_cluster, "LOGIN_TIMEOUT", 0.5)
    up, refused = ports
    run("cluster", "up", "--provider", "static", "--state-dir", str(tmp_path),
        "--nodes", f"127.0.0.1:{up},127.0.0.1:{refused}")  # fmt: skip
    code, out, _ = run("doctor", "--json", "--state-dir", str(tmp_path))
    caps = {c["name"]: c for c in json.loads(out)}
    # n1's port answers, but it is no SSH server: doctor said "answers" and stopped there
    assert not caps["node:n1"]["available"]
    assert caps["node:n1"]["detail"].startswith("port answers; no login: ")
    assert not caps["node:n2"]["available"] and "node:n1:faults" not in caps
    assert code == 1


def test_importing_the_cli_imports_no_provider() -> None:
    code = (
        "import sys, harness.cli; "
        "print(sorted(m for m in sys.modules if m.startswith('clusters.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout  # fmt: skip
    assert set(ast.literal_eval(out.strip())) <= {"clusters.base"}


def test_doctor_help_names_only_its_own_options() -> None:
    """`clew doctor --help` said "for --provider qemu", an option doctor does not have
    (it checks QEMU every time)."""
    import re

    from click.testing import CliRunner

    from harness.cli import cli

    out = CliRunner().invoke(cli, ["doctor", "--help"]).output
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", out))
    assert named <= {"--name", "--state-dir", "--json", "--help"}, named


def test_cluster_help_says_how_clew_test_finds_a_named_cluster() -> None:
    """`clew cluster --help` said `clew test` finds a cluster "by --name alone": clew test
    has no --name; it takes --cluster-state-dir."""
    from click.testing import CliRunner

    from harness.cli import cli

    runner = CliRunner()
    out = " ".join(runner.invoke(cli, ["cluster", "--help"]).output.split())
    assert "`clew test` find it by --name" not in out
    assert "--cluster-state-dir" in out
    test_help = runner.invoke(cli, ["test", "--help"]).output
    assert "--cluster-state-dir" in test_help and "\n  --name" not in test_help


def test_down_is_refused_while_a_run_uses_the_cluster(tmp_path: Path) -> None:
    """`clew cluster down` in another terminal took the nodes from under a running test."""
    import fcntl
    import os

    from click.testing import CliRunner

    from clusters.base import Cluster, Node
    from harness.cli import cli

    state = tmp_path / "c"
    Cluster(provider="static", name="c", nodes=(Node(name="n1", host="192.0.2.1"),),
            state_dir=str(state)).save()  # fmt: skip
    run = os.open(state, os.O_RDONLY | os.O_DIRECTORY)  # a run in another process holds it
    fcntl.flock(run, fcntl.LOCK_EX)
    try:
        res = CliRunner().invoke(cli, ["cluster", "down", "--state-dir", str(state)])
    finally:
        os.close(run)
    assert res.exit_code == 254, res.output
    assert "another clew run is using the cluster" in res.output
    assert "Wait for it to end, or stop it (Ctrl-C) first" in res.output
    assert (state / "cluster.json").exists()
    res = CliRunner().invoke(cli, ["cluster", "down", "--state-dir", str(state)])
    assert res.exit_code == 0, res.output


def test_up_on_another_providers_cluster_is_refused_naming_it(tmp_path: Path) -> None:
    """The check that the state directory's cluster is the provider's own never raised
    (it raised inside its own `suppress`), so the local provider went on to treat a
    static cluster's files as a leftover; now a clash the person chose exits 254."""
    from clusters.base import Node

    state = tmp_path / "c"
    Cluster(provider="static", name="c", nodes=(Node(name="n1", host="192.0.2.1"),),
            state_dir=str(state)).save()  # fmt: skip
    before = (state / CLUSTER_FILE).read_bytes()
    res = CliRunner().invoke(cli, ["cluster", "up", "--provider", "local", "--nodes", "3",
                                   "--state-dir", str(state)])  # fmt: skip
    assert res.exit_code == 254, res.output
    assert "was made by the 'static' provider, not 'local'" in res.output
    assert "use it with --provider static" in res.output  # (it said "use that provider")
    assert (state / CLUSTER_FILE).read_bytes() == before


@pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs OpenSSH's sshd")
def test_status_logs_in_as_a_test_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A static cluster whose host keys were not in known_hosts, or whose password
    variable was unset, was "healthy: all 3 nodes answer" (its SSH ports did), and every
    `clew test` on it failed to log in."""
    from harness.control.loopback import LoopbackSshd

    state = str(tmp_path / "st")
    with LoopbackSshd(tmp_path / "sshd") as sshd:
        node = sshd.node()
        code, _, err = run("cluster", "up", "--provider", "static", "--state-dir", state,
                           "--nodes", f"127.0.0.1:{node.port}", "--user", node.user,
                           "--key", str(node.key_file), "--known-hosts",
                           str(node.known_hosts))  # fmt: skip
        assert code == 0, err
        code, out, err = run("cluster", "status", "--state-dir", state)
        assert code == 0 and "healthy: all 1 nodes answer" in out, out + err
        empty = tmp_path / "known_hosts"
        empty.write_text("")
        run("cluster", "down", "--state-dir", state)
        run("cluster", "up", "--provider", "static", "--state-dir", state, "--nodes",
            f"127.0.0.1:{node.port}", "--user", node.user, "--key", str(node.key_file),
            "--known-hosts", str(empty))  # fmt: skip
        code, out, err = run("cluster", "status", "--state-dir", state)
        assert code == 1 and "port answers; no login: host key of node n1" in out
        run("cluster", "down", "--state-dir", state)


@pytest.mark.parametrize(
    ("words", "available", "detail"),
    [
        ("nft iptables python3 tc", True, "partitions via nft, python3, tc"),
        ("iptables python3", True, "partitions via iptables, python3, no tc"),
        ("nft tc", False, "missing: python3 (the fault guard"),
        ("python3", False, "missing: a working nft or iptables (partition faults); found: "),
        ("", False, "missing: python3 (the fault guard of every run with faults needs it); a "),
    ],
)
def test_a_nodes_probe_says_what_faults_lack(words: str, available: bool, detail: str) -> None:
    from harness.cli_cluster import _node_faults_row

    row = _node_faults_row("n2", set(words.split()))
    assert row.name == "node:n2:faults" and row.available is available
    assert row.detail.startswith(detail), row.detail
