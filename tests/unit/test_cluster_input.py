"""Bad user input to `clew cluster`, `clew doctor` and the cluster state: each is a usage
error (exit 254) naming what is wrong, never a traceback or a path outside the state dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from clusters.base import (
    Cluster,
    ClusterSpec,
    ClusterStateError,
    check_cluster_name,
    default_state_dir,
)
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


GOOD = {"provider": "static", "name": "x", "state_dir": "D",
        "nodes": [{"name": "n1", "host": "a", "port": 22}]}  # fmt: skip


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[1,2]", "not a JSON object"),
        ('{"provider":"local"}', "name is missing"),
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        ({**GOOD, "nodes": {}}, "nodes is {}, not list"),
        ({**GOOD, "nodes": [3]}, "nodes[0] is 3"),
        ({**GOOD, "nodes": [{"name": "n1"}]}, "nodes[0].host is missing"),
        ({**GOOD, "nodes": [{"name": "n1", "host": "a", "port": "22"}]}, "nodes[0].port"),
        ({**GOOD, "nodes": [{"name": "n1", "host": "a", "port": 0}]}, "nodes[0].port 0"),
        ({**GOOD, "capabilities": [{"name": "x"}]}, "capabilities[0].available"),
        ({**GOOD, "extra": []}, "extra is [], not dict"),
        ({**GOOD, "provider": 7}, "provider is 7"),
    ],
)
@pytest.mark.parametrize("cmd", [["cluster", "status"], ["cluster", "down"], ["doctor"]])
def test_a_damaged_cluster_json_is_bad_input_saying_how_to_recover(
    tmp_path: Path, content: object, problem: str, cmd: list[str]
) -> None:
    state = tmp_path / "D"
    state.mkdir()
    path = state / "cluster.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    code, text = run(*cmd, "--state-dir", str(state))
    assert code == 254, text
    assert f"{path}: the saved cluster is damaged" in text and problem in text
    assert "To recover" in text and f"remove the state directory {state}" in text
    assert "Traceback" not in text
    assert path.exists()  # left for the user to look at


def test_load_raises_cluster_state_error_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text('{"provider": "local"}')
    with pytest.raises(ClusterStateError, match=r"cluster.json: .*\(name is missing\)") as e:
        Cluster.load(tmp_path)
    assert e.value.path == str(tmp_path / "cluster.json")
    (tmp_path / "cluster.json").write_text(json.dumps(GOOD))
    assert Cluster.load(tmp_path).nodes[0].host == "a"


@pytest.mark.parametrize("sub", ["", "sub"])
def test_a_state_dir_that_is_a_file_is_bad_input_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sub: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("mine")
    state = str(Path("afile", sub)) if sub else "./afile"
    code, text = run("test", "etcd", "--cluster-state-dir", state, "--store", "store")
    assert code == 254, text
    assert "afile" in text and "names a directory" in text and "Traceback" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert (tmp_path / "afile").read_text() == "mine"


def test_the_library_refuses_a_state_dir_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "afile"
    f.write_text("")
    for bad in (f, f / "sub"):
        with pytest.raises(ConfigError, match="names a directory"):
            ClusterSpec(state_dir=str(bad)).resolved_state_dir()
        with pytest.raises(ConfigError, match="names a directory"):
            Cluster.load(bad)
    assert ClusterSpec(state_dir=str(tmp_path / "new")).resolved_state_dir() == tmp_path / "new"


def test_a_nodes_file_that_is_not_utf8_is_bad_input_naming_file_and_line(tmp_path: Path) -> None:
    nf = tmp_path / "nf"
    nf.write_bytes(b"# hosts\na\nb\xff\n")
    code, text = run("cluster", "up", "--provider", "static", "--nodes-file", str(nf),
                     "--state-dir", str(tmp_path / "s"))  # fmt: skip
    assert code == 254, text
    assert f"{nf}:3: the nodes file is not UTF-8 text (byte 0xff)" in text
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("nodes", "named"),
    [
        ("a,a", "a:22 (n1, n2)"),
        ("a,b,admin@A:22", "a:22 (n1, n3)"),
        ("10.0.0.1:2222,b,10.0.0.1:2222", "10.0.0.1:2222 (n1, n3)"),
        ("2001:db8::1,[2001:db8:0::1]:22", "[2001:db8::1]:22 (n1, n2)"),
        ("n1=x,y,n9=x", "x:22 (n1, n9)"),
    ],
)
def test_the_same_host_twice_is_refused_naming_it(tmp_path: Path, nodes: str, named: str) -> None:
    code, text = run("cluster", "up", "--provider", "static", "--nodes", nodes,
                     "--state-dir", str(tmp_path / "s"))  # fmt: skip
    assert code == 254, text
    assert "different host" in text and named in text
    assert not (tmp_path / "s").exists()


def test_the_same_host_on_other_ports_is_fine(tmp_path: Path) -> None:
    code, text = run("cluster", "up", "--provider", "static", "--nodes", "a,a:2222,b",
                     "--state-dir", str(tmp_path / "s"))  # fmt: skip
    assert code == 0 and "is up with 3 nodes" in text
    assert run("cluster", "down", "--state-dir", str(tmp_path / "s"))[0] == 0


def test_a_message_says_how_to_take_down_the_cluster_it_is_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`clew test --cluster-state-dir /tmp/c --nodes 4` on a 3-node cluster there said "bring
    it down first with `clew cluster down`", which takes down the *default* cluster."""
    from clusters._bridged import check_config
    from clusters.base import down_command
    from harness.errors import ClusterError

    monkeypatch.setenv("CLEW_STATE_DIR", str(tmp_path / "state"))
    assert down_command(default_state_dir()) == "clew cluster down"
    assert down_command(default_state_dir("lab")) == "clew cluster down --name lab"
    mine = tmp_path / "my cluster"
    assert down_command(mine) == f"clew cluster down --state-dir '{mine}'"
    with pytest.raises(ClusterError) as e:
        check_config(mine, "local", {"nodes": 3}, {"nodes": 4}, "use another state directory")
    assert f"bring it down first with `clew cluster down --state-dir '{mine}'`" in str(e.value)
