"""The static provider: hosts from a list or a nodes file, saved as described, forgotten."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from clusters.base import CLUSTER_FILE, Cluster, ClusterSpec
from clusters.static import StaticProvider, parse_host, read_nodes_file, with_passwords
from harness.errors import ClusterError, ConfigError


def spec(tmp_path: Path, **options: object) -> ClusterSpec:
    return ClusterSpec(provider="static", state_dir=str(tmp_path / "state"), options=options)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("db1", {"host": "db1"}),
        ("db1:2222", {"host": "db1", "port": 2222}),
        ("admin@10.0.0.5:22", {"user": "admin", "host": "10.0.0.5", "port": 22}),
        ("n9=admin@db2", {"name": "n9", "user": "admin", "host": "db2"}),
        ("[2001:db8::1]:2200", {"host": "2001:db8::1", "port": 2200}),
        ("2001:db8::1", {"host": "2001:db8::1"}),
    ],
)
def test_host_forms(text: str, parts: dict[str, object]) -> None:
    assert parse_host(text) == parts


@pytest.mark.parametrize(
    ("text", "message"),
    [("db1:ssh", "not a number"), ("db1:70000", "out of range"), ("@db1", "empty user"),
     ("root@", "no host")],
)  # fmt: skip
def test_bad_hosts_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_host(text)


def test_up_describes_saves_and_names_the_nodes(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("k")
    cluster = StaticProvider().up(
        spec(tmp_path, hosts=["a", "admin@b:2222", "c"], key_file=str(key), port=2200)
    )
    assert [(n.name, n.host, n.port, n.user) for n in cluster.nodes] == [
        ("n1", "a", 2200, "root"),
        ("n2", "b", 2222, "admin"),
        ("n3", "c", 2200, "root"),
    ]
    assert all(n.key_file == str(key.resolve()) and n.check_host_key for n in cluster.nodes)
    assert Cluster.load(tmp_path / "state") == cluster
    assert cluster.capability("host-key-check").available  # type: ignore[union-attr]


def test_nodes_file_with_comments_names_and_keys(tmp_path: Path) -> None:
    key = tmp_path / "k3"
    key.write_text("k")
    f = tmp_path / "nodes.txt"
    f.write_text(f"# three hosts\n\ndb1\nadmin@db2:2222  # the second\ndb3 name=x3 key={key}\n")
    assert read_nodes_file(f)[2] == {"host": "db3", "name": "x3", "key": str(key)}
    cluster = StaticProvider().up(spec(tmp_path, nodes_file=str(f), user="ops"))
    assert [n.name for n in cluster.nodes] == ["n1", "n2", "x3"]
    assert [n.user for n in cluster.nodes] == ["ops", "admin", "ops"]
    assert cluster.nodes[2].key_file == str(key.resolve())
    assert cluster.nodes[0].key_file is None


def test_nodes_file_errors_name_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "nodes.txt"
    f.write_text("db1\ndb2 colour=blue\n")
    with pytest.raises(ConfigError, match=r"nodes.txt:2: unknown field 'colour=blue'"):
        StaticProvider().up(spec(tmp_path, nodes_file=str(f)))
    f.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="no hosts"):
        StaticProvider().up(spec(tmp_path, nodes_file=str(f)))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs hosts"),
        ({"hosts": ["a"], "nodes_file": "x"}, "not both"),
        ({"hosts": ["a", "n1=b"]}, "repeated: n1"),
        ({"hosts": ["a"], "key_file": "/nonexistent/key"}, "does not exist"),
        ({"hosts": ["a"], "colour": "blue"}, "unknown cluster option"),
        ({"hosts": ["a"], "password_env": "CLEW_TEST_UNSET_PW"}, "CLEW_TEST_UNSET_PW"),
        ({"hosts": ["a"], "insecure_host_keys": "maybe"}, "insecure_host_keys='maybe'"),
    ],
)
def test_bad_specs_are_config_errors(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        StaticProvider().up(spec(tmp_path, **options))
    assert not (tmp_path / "state" / CLUSTER_FILE).exists()


def test_password_comes_from_the_environment_and_is_never_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEW_TEST_PW", "s3cret")
    cluster = StaticProvider().up(spec(tmp_path, hosts="a,b", password_env="CLEW_TEST_PW"))
    assert {n.password for n in cluster.nodes} == {"s3cret"}
    text = (tmp_path / "state" / CLUSTER_FILE).read_text()
    assert "s3cret" not in text and json.loads(text)["extra"]["password_env"] == "CLEW_TEST_PW"
    loaded = Cluster.load(tmp_path / "state")
    assert {n.password for n in loaded.nodes} == {None}
    assert {n.password for n in with_passwords(loaded).nodes} == {"s3cret"}


def test_insecure_host_keys_only_by_explicit_flag(tmp_path: Path) -> None:
    cluster = StaticProvider().up(spec(tmp_path, hosts=["a"], insecure_host_keys=True))
    assert not cluster.nodes[0].check_host_key
    hk = cluster.capability("host-key-check")
    assert hk is not None and not hk.available and "NOT verified" in hk.detail


def test_status_is_a_tcp_check_per_node(tmp_path: Path) -> None:
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        up_port, down_port = listening.getsockname()[1], closed.getsockname()[1]
        hosts = [f"127.0.0.1:{up_port}", f"127.0.0.1:{down_port}"]
        StaticProvider().up(spec(tmp_path, hosts=hosts))
        status = StaticProvider().status(tmp_path / "state")
    assert status.nodes["n1"] == "up"
    assert "refused" in status.nodes["n2"]
    assert not status.healthy


def test_up_again_replaces_and_down_only_forgets(tmp_path: Path) -> None:
    p = StaticProvider()
    p.up(spec(tmp_path, hosts=["a"]))
    again = p.up(spec(tmp_path, hosts=["a", "b"]))
    assert len(Cluster.load(tmp_path / "state").nodes) == len(again.nodes) == 2
    p.down(tmp_path / "state")
    assert not (tmp_path / "state").exists()
    p.down(tmp_path / "state")  # harmless when nothing is up
    status = p.status(tmp_path / "state")
    assert status.cluster is None and "clew cluster up" in status.problems[0]


def test_refuses_to_overwrite_another_providers_cluster(tmp_path: Path) -> None:
    Cluster(provider="docker", name="default", nodes=(), state_dir=str(tmp_path / "state")).save()
    with pytest.raises(ClusterError, match="docker cluster is up"):
        StaticProvider().up(spec(tmp_path, hosts=["a"]))


def test_down_keeps_files_that_are_not_ours(tmp_path: Path) -> None:
    p = StaticProvider()
    p.up(spec(tmp_path, hosts=["a"]))
    (tmp_path / "state" / "notes.txt").write_text("mine")
    p.down(tmp_path / "state")
    assert (tmp_path / "state" / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "state" / CLUSTER_FILE).exists()
