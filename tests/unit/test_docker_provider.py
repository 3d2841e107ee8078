"""The docker provider, against a fake `docker` that logs its argv and prints canned JSON."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from clusters.base import CLUSTER_FILE, Cluster, ClusterSpec, Node
from clusters.container_engine import find_engine
from clusters.docker import DockerProvider
from harness.errors import ClusterConflictError, ClusterError, ConfigError

FAKE = """#!/bin/sh
printf '%s\\n' "$*" | head -n 1 >> {log}
if [ -n "$FAKE_DAEMON" ] && [ "$DOCKER_HOST" != "$FAKE_DAEMON" ]; then
  echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2; exit 1
fi
case "$1" in
  info)
    if [ -n "$FAKE_NO_ENGINE" ]; then
      echo "Client: Docker Engine - Community" >&2
      echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." \
           "Is the docker daemon running?" >&2
      exit 1
    fi ;;
  network)
    case "$2" in
      create) echo netid0123 ;;
      ls) if [ -n "$FAKE_LEFTOVER" ]; then echo netid0123; fi ;;
    esac ;;
  create)
    name=$3
    echo "cid-$name" ;;
  start)
    if [ "$2" = "$FAKE_FAIL_START" ]; then
      echo "failed to connect to syslog: Initialization" >&2
      echo "Error: runc: runc create failed: unable to start container process" >&2; exit 126
    fi ;;
  ps) if [ -n "$FAKE_LEFTOVER" ]; then echo "0fc1e2"; fi ;;
  cp) ;;
  image) if [ -n "$FAKE_NO_IMAGE" ]; then echo "Error: $4: image not known" >&2; exit 125; fi ;;
  inspect)
    if [ -n "$FAKE_ALL_GONE" ]; then
      echo "[]"; for id in "$@"; do [ "$id" = inspect ] || echo "Error: No such object: $id" >&2
      done; exit 1
    fi
    cat {inspect} ;;
  exec)
    if [ "$2" = -i ]; then cat >> {authorized}
    else echo "partition=yes nft works (NET_ADMIN)"; echo "packet-netem=no the kernel has no netem"
    fi ;;
  rm)
    if [ -n "$FAKE_GONE" ]; then
      echo "Error response from daemon: No such container: cid-clew-n1" >&2; exit 1
    fi ;;
  *) exit 3 ;;
esac
"""


def inspect_json(running: dict[str, bool | None], ip: str = "172.18.0.{}") -> str:
    """Canned `docker inspect` output: each container of ``running`` (None: gone)."""
    items = []
    for i, (name, state) in enumerate(running.items(), 2):
        if state is None:
            continue
        items.append({
            "Id": f"cid-{name}",
            "Name": f"/{name}",
            "State": {"Running": state, "Status": "running" if state else "exited"},
            "NetworkSettings": {"Networks": {"clew-net": {"IPAddress": ip.format(i)}}},
        })  # fmt: skip
    return json.dumps(items)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake docker on CLEW_DOCKER; returns the file its calls are logged to."""
    log = tmp_path / "calls.log"
    (tmp_path / "inspect.json").write_text(
        inspect_json({"clew-n1": True, "clew-n2": True, "clew-n3": True})
    )
    script = tmp_path / "docker"
    script.write_text(
        FAKE.format(log=log, inspect=tmp_path / "inspect.json",
                    authorized=tmp_path / "authorized_keys")
    )  # fmt: skip
    script.chmod(0o755)
    monkeypatch.setenv("CLEW_DOCKER", str(script))
    return log


def spec(tmp_path: Path, *, nodes: int = 3, **options: object) -> ClusterSpec:
    options.setdefault("ready_timeout", 0)
    return ClusterSpec(
        provider="docker", nodes=nodes, state_dir=str(tmp_path / "state"), options=options
    )


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_up_issues_the_commands_and_returns_the_nodes(tmp_path: Path, fake: Path) -> None:
    cluster = DockerProvider().up(spec(tmp_path, image="my/sshd:1"))
    state = tmp_path / "state"
    token = cluster.extra["token"]
    label = f"--label clew.cluster=default --label clew.up={token}"
    creates = []
    for i in (1, 2, 3):
        creates += [
            f"create --name clew-n{i} --hostname n{i} --network clew-net --network-alias n{i} "
            f"--cap-add NET_ADMIN {label} my/sshd:1",
            f"cp {state}/host_keys/n{i}/. clew-n{i}:/etc/ssh/",
        ]
    assert calls(fake)[:12] == [
        "info",
        "image inspect my/sshd:1",
        f"network create {label} --internal clew-net",
        *creates,
        *(f"start clew-n{i}" for i in (1, 2, 3)),
    ]
    assert calls(fake)[12] == "inspect cid-clew-n1 cid-clew-n2 cid-clew-n3"
    execs = calls(fake)[13:]
    assert len(execs) == 4 and execs[0].startswith("exec -i -u root clew-n1 sh -c ")
    assert "authorized_keys" in execs[0]
    assert execs[3].startswith("exec clew-n1 sh -c ")  # the capability probe

    assert [(n.name, n.host, n.port, n.user) for n in cluster.nodes] == [
        ("n1", "172.18.0.2", 22, "root"),
        ("n2", "172.18.0.3", 22, "root"),
        ("n3", "172.18.0.4", 22, "root"),
    ]
    key = state / "id_ed25519"
    assert all(n.key_file == str(key) and n.check_host_key for n in cluster.nodes)
    assert key.stat().st_mode & 0o777 == 0o600
    assert "OPENSSH PRIVATE KEY" in key.read_text()
    public = (state / "id_ed25519.pub").read_text()
    assert public.startswith("ssh-ed25519 ")
    assert (tmp_path / "authorized_keys").read_text() == public * 3
    known = (state / "known_hosts").read_text().splitlines()
    host_keys = [(state / f"host_keys/n{i}/ssh_host_ed25519_key.pub").read_text().split()[:2]
                 for i in (1, 2, 3)]  # fmt: skip
    assert known == [f"172.18.0.{i + 2} {' '.join(k)}" for i, k in enumerate(host_keys)]
    assert len({k[1] for k in host_keys}) == 3  # each node its own
    assert (state / "host_keys/n1/ssh_host_ed25519_key").stat().st_mode & 0o777 == 0o600
    assert cluster.extra["network"] == {"name": "clew-net", "id": "netid0123", "made": True}
    assert [c["id"] for c in cluster.extra["containers"]] == [
        "cid-clew-n1", "cid-clew-n2", "cid-clew-n3"
    ]  # fmt: skip
    assert Cluster.load(state) == cluster
    clock = cluster.capability("clock-system")
    assert clock is not None and not clock.available
    partition, netem = cluster.capability("partition"), cluster.capability("packet-netem")
    assert partition is not None and partition.available and "probed in clew-n1" in partition.detail
    assert netem is not None and not netem.available and "no netem" in netem.detail


def test_down_removes_exactly_what_was_made(tmp_path: Path, fake: Path) -> None:
    DockerProvider().up(spec(tmp_path))
    state = tmp_path / "state"
    (state / "notes.txt").write_text("mine")
    token = json.loads((state / CLUSTER_FILE).read_text())["extra"]["token"]
    DockerProvider().down(state)
    assert calls(fake)[-4:] == [
        f"ps -a -q --filter label=clew.up={token}",
        "rm -f -v cid-clew-n1 cid-clew-n2 cid-clew-n3",
        f"network ls -q --filter label=clew.up={token}",
        "network rm netid0123",
    ]
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt"]
    n = len(calls(fake))
    DockerProvider().down(state)  # harmless when nothing is up
    assert len(calls(fake)) == n


def test_down_tolerates_containers_already_gone(
    tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    DockerProvider().up(spec(tmp_path))
    monkeypatch.setenv("FAKE_GONE", "1")
    DockerProvider().down(tmp_path / "state")
    assert not (tmp_path / "state").exists()


def test_no_engine_says_so_with_the_stderr_tail(
    tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NO_ENGINE", "1")
    with pytest.raises(ClusterError) as e:
        DockerProvider().up(spec(tmp_path))
    msg = str(e.value)
    assert "Cannot connect to the Docker daemon" in msg and "start it" in msg
    assert calls(fake) == ["info"]
    assert not (tmp_path / "state").exists()


def test_no_docker_or_podman_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEW_DOCKER", str(tmp_path / "nothing"))
    with pytest.raises(ClusterError, match=r"no usable container engine.*not installed.*podman"):
        find_engine()


def test_a_failed_start_removes_what_it_made_and_names_the_runtime_error(
    tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAIL_START", "clew-n2")
    with pytest.raises(ClusterError, match=r"start container clew-n2.*runc create failed") as e:
        DockerProvider().up(spec(tmp_path))
    assert "syslog" not in str(e.value)  # podman's harmless warning is left out
    assert "rm -f -v cid-clew-n1 cid-clew-n2 cid-clew-n3" in calls(fake)  # n3: created
    assert calls(fake)[-1] == "network rm netid0123"
    assert not (tmp_path / "state").exists()


def test_down_removes_what_carries_its_label_even_if_never_recorded(
    tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    DockerProvider().up(spec(tmp_path))
    monkeypatch.setenv("FAKE_LEFTOVER", "1")
    DockerProvider().down(tmp_path / "state")
    assert "rm -f -v cid-clew-n1 cid-clew-n2 cid-clew-n3 0fc1e2" in calls(fake)
    assert calls(fake)[-1] == "network rm netid0123"  # listed and recorded: removed once


def test_up_again_is_idempotent_and_prefix_follows_the_name(tmp_path: Path, fake: Path) -> None:
    first = DockerProvider().up(spec(tmp_path))
    n = len(calls(fake))
    assert DockerProvider().up(spec(tmp_path)) == first and len(calls(fake)) == n
    with pytest.raises(ClusterError, match="take it down first") as e:
        DockerProvider().up(spec(tmp_path, nodes=2, image="my/sshd:2"))
    # Which settings differ, and no --name (clew test has none; --state-dir wins over it).
    assert "nodes: 3 is up, 2 asked" in str(e.value)
    assert "image: 'clew-node:latest' is up, 'my/sshd:2' asked" in str(e.value)
    assert "prefix" not in str(e.value) and "--name" not in str(e.value)
    other = ClusterSpec(provider="docker", nodes=1, name="db", state_dir=str(tmp_path / "o"),
                        options={"ready_timeout": 0, "insecure_host_keys": True})  # fmt: skip
    with pytest.raises(ClusterError, match="no address on network clew-db-net"):
        DockerProvider().up(other)  # the canned inspect only knows clew-net


def test_status_per_container(tmp_path: Path, fake: Path) -> None:
    DockerProvider().up(spec(tmp_path))
    (tmp_path / "inspect.json").write_text(
        inspect_json({"clew-n1": True, "clew-n2": False, "clew-n3": None}, ip="127.0.0.1")
    )
    status = DockerProvider().status(tmp_path / "state")
    assert status.nodes["n2"] == "container clew-n2 is not running (exited)"
    assert status.nodes["n3"] == "container clew-n3 is gone"
    assert status.nodes["n1"] == "up" or "172.18.0.2" in status.nodes["n1"]
    assert not status.healthy


def test_status_of_a_cluster_whose_containers_are_all_gone(
    tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every container removed, inspect prints [] and fails (no such object): the
    nodes are gone, not "unknown: docker did not answer"."""
    DockerProvider().up(spec(tmp_path))
    monkeypatch.setenv("FAKE_ALL_GONE", "1")
    status = DockerProvider().status(tmp_path / "state")
    assert status.nodes == {f"n{i}": f"container clew-n{i} is gone" for i in (1, 2, 3)}
    assert not status.problems and not status.healthy


def test_wait_ready_names_the_silent_nodes() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        node = Node(name="n1", host="127.0.0.1", port=closed.getsockname()[1])
        with pytest.raises(ClusterError, match=r"sshd did not answer within 0.3 s \(n1: conn"):
            DockerProvider._wait_ready([node], 0.3)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"prefix": "bad prefix"}, "option prefix"), ({"colour": "x"}, "unknown cluster option"),
     ({"ready_timeout": "soon"}, "ready_timeout"),
     ({"ready_timeout": "nan"}, "ready_timeout"), ({"ready_timeout": -1}, "ready_timeout"),
     # Read as false, these made a network that is not internal (NAT and forwarding on
     # the host), and checked host keys the user meant to skip.
     ({"internal": "maybe"}, r"option internal='maybe': use true or false"),
     ({"insecure_host_keys": "yes please"}, "option insecure_host_keys")],
)  # fmt: skip
def test_bad_options(tmp_path: Path, fake: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DockerProvider().up(spec(tmp_path, **options))
    assert calls(fake) == []


def test_refuses_a_state_dir_with_someone_elses_key(tmp_path: Path, fake: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "id_ed25519").write_text("precious")
    with pytest.raises(ClusterError, match="already holds id_ed25519"):
        DockerProvider().up(spec(tmp_path))
    assert (state / "id_ed25519").read_text() == "precious"
    assert not (state / CLUSTER_FILE).exists()


def test_an_unfinished_up_is_reported_and_cleaned_by_down(tmp_path: Path, fake: Path) -> None:
    state = tmp_path / "state"
    extra = {"engine": str(tmp_path / "docker"), "network": {"name": "clew-net", "id": "n0"},
             "containers": [{"name": "clew-n1", "id": "c1"}]}  # fmt: skip
    Cluster(provider="docker", name="default", nodes=(), state_dir=str(state), extra=extra).save()
    status = DockerProvider().status(state)
    assert not status.healthy and "did not finish" in status.problems[0]
    with pytest.raises(ClusterError, match="did not finish"):
        DockerProvider().up(spec(tmp_path))
    DockerProvider().down(state)
    assert calls(fake) == ["rm -f -v c1", "network rm n0"]
    assert not state.exists()


@pytest.mark.parametrize(
    ("image", "how"),
    [(None, "build it: `clew image build --engine "),
     ("clew/node:debian12", "pull or load it into docker first")],
)  # fmt: skip
def test_an_image_the_engine_lacks_is_refused_before_anything_is_made(
    tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch, image: str | None, how: str
) -> None:
    """`--option image=clew/node:debian12` (the help's example then) failed in `podman create`
    with "short-name did not resolve to an alias", after the network was made."""
    monkeypatch.setenv("FAKE_NO_IMAGE", "1")
    options = {"image": image} if image else {}
    with pytest.raises(ConfigError, match=f"has no image {image or 'clew-node:latest'}") as e:
        DockerProvider().up(spec(tmp_path, **options))
    assert how in str(e.value)
    assert not [c for c in calls(fake) if c.split()[0] in ("network", "create")]
    assert not (tmp_path / "state" / CLUSTER_FILE).exists()


def test_status_and_down_reach_the_daemon_up_used_from_another_shell(
    tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster made with DOCKER_HOST=unix:///... set: in a shell without it, `status`
    said every container "is gone" (they ran) and `down` failed, leaving them up."""
    monkeypatch.setenv("FAKE_DAEMON", "unix:///tmp/own/docker.sock")
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/own/docker.sock")
    (tmp_path / "inspect.json").write_text(
        inspect_json({"clew-n1": True, "clew-n2": True, "clew-n3": True}, ip="127.0.0.1")
    )
    DockerProvider().up(spec(tmp_path))
    monkeypatch.delenv("DOCKER_HOST")
    status = DockerProvider().status(tmp_path / "state")
    assert not status.problems and not any("container" in v for v in status.nodes.values())
    DockerProvider().down(tmp_path / "state")
    assert not (tmp_path / "state" / CLUSTER_FILE).exists()
    assert any(c.startswith("rm -f -v") for c in calls(fake))


def test_an_engine_that_does_not_answer_is_not_containers_gone(
    tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    DockerProvider().up(spec(tmp_path))
    monkeypatch.setenv("FAKE_DAEMON", "unix:///elsewhere.sock")  # the daemon is not reached
    status = DockerProvider().status(tmp_path / "state")
    assert set(status.nodes.values()) == {"unknown: docker did not answer"}
    assert "Cannot connect to the Docker daemon" in status.problems[0]


@pytest.mark.parametrize("taken", ["network", "create"])
def test_a_name_already_in_use_is_left_to_its_owner(
    tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch, taken: str
) -> None:
    """A network or container of the same name made by someone else: its create failed,
    and the failed up's cleanup removed that other network or container, by the name it
    had recorded before the create."""
    script = Path(str(fake).replace("calls.log", "docker"))
    text = script.read_text()
    script.write_text(text.replace(
        'printf \'%s\\n\' "$*" | head -n 1 >> ' + str(fake) + "\n",
        'printf \'%s\\n\' "$*" | head -n 1 >> ' + str(fake) + "\n"
        f'case "$1 $2" in "{taken} "*) echo "Error: the name clew-net is already in use" >&2;'
        ' exit 125;; esac\n' if taken == "network" else
        'printf \'%s\\n\' "$*" | head -n 1 >> ' + str(fake) + "\n"
        'if [ "$1" = create ]; then echo "Error: the container name clew-n1 is already in'
        ' use" >&2; exit 125; fi\n'))  # fmt: skip
    with pytest.raises(ClusterConflictError, match=r"already in use.*choose another `prefix`"):
        DockerProvider().up(spec(tmp_path))
    removed = [c for c in calls(fake) if c.startswith(("rm ", "network rm"))]
    assert removed == ([] if taken == "network" else ["network rm netid0123"])
    assert not (tmp_path / "state" / CLUSTER_FILE).exists()


def test_cluster_up_says_which_engine_made_the_containers(tmp_path: Path, fake: Path) -> None:
    """`clew cluster up --provider docker` takes podman when no docker daemon answers, and
    said only "(docker)"."""
    from click.testing import CliRunner

    from harness.cli import cli

    res = CliRunner().invoke(cli, ["cluster", "up", "--provider", "docker", "--nodes", "3",
                                   "--state-dir", str(tmp_path / "state"),
                                   "--option", "ready_timeout=0"])  # fmt: skip
    assert res.exit_code == 0, res.output
    engine = tmp_path / "docker"
    assert f"cluster 'default' (docker, engine {engine}) is up with 3 nodes:" in res.output


@pytest.mark.parametrize(
    ("stderr", "taken"),
    [
        ('Error: creating container storage: the container name "clew-n1" is already in use '
         'by 4f2a. You have to remove that container to be able to reuse that name', True),
        ('Error response from daemon: Conflict. The container name "/clew-n1" is already in '
         'use by container "4f2a"', True),
        ("Error: network name clew-net already used: network already exists", True),
        ("Error response from daemon: network with name clew-net already exists", True),
        ("Error: subnet 10.77.5.0/24 is already used on the host or by another config", False),
        ("Error response from daemon: Pool overlaps with other one on this address space", False),
    ],
)
def test_a_taken_name_is_told_from_a_taken_subnet(stderr: str, taken: bool) -> None:
    """podman's "subnet ... is already used" was read as a taken name: the person was told
    to choose another prefix, which does not cure it."""
    from clusters.docker import _NAME_TAKEN

    assert bool(_NAME_TAKEN.search(stderr)) is taken


def test_engine_commands_reach_the_daemon_up_used_and_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cluster made with no DOCKER_HOST saved {}: from a shell pointing at another
    daemon, `down` asked that one, heard "no such container", and left the real ones."""
    from clusters.docker import _engine_env

    monkeypatch.setenv("DOCKER_HOST", "unix:///run/other.sock")
    monkeypatch.setenv("CONTAINER_HOST", "unix:///run/podman-other.sock")
    env = _engine_env({"engine_env": {}})
    assert env is not None and "DOCKER_HOST" not in env and "CONTAINER_HOST" not in env
    assert env["PATH"] == os.environ["PATH"]
    env = _engine_env({"engine_env": {"DOCKER_HOST": "unix:///run/mine.sock"}})
    assert env is not None and env["DOCKER_HOST"] == "unix:///run/mine.sock"
    assert "CONTAINER_HOST" not in env
    assert _engine_env({}) is None  # saved before the daemon was: this shell's
