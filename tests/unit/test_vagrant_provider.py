"""The vagrant provider, against a fake `vagrant` that prints a recorded ssh-config."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from clusters.base import CLUSTER_FILE, Cluster, ClusterSpec
from clusters.vagrant import VagrantProvider, nodes_from_ssh_config
from harness.errors import ClusterError, ConfigError

# What `vagrant ssh-config` printed for three VirtualBox boxes (paths shortened).
SSH_CONFIG = """\
Host n1
  HostName 127.0.0.1
  User vagrant
  Port 2222
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /home/ann/clew/.vagrant/machines/n1/virtualbox/private_key
  IdentitiesOnly yes
  LogLevel FATAL
  PubkeyAcceptedKeyTypes +ssh-rsa
  HostKeyAlgorithms +ssh-rsa

Host n2
  HostName 127.0.0.1
  User vagrant
  Port 2200
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile "/home/ann/my boxes/.vagrant/machines/n2/virtualbox/private_key"
  IdentitiesOnly yes
  LogLevel FATAL

Host n3
  HostName 127.0.0.1
  User vagrant
  Port 2201
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /home/ann/clew/.vagrant/machines/n3/virtualbox/private_key
  IdentitiesOnly yes
  LogLevel FATAL
"""

FAKE = """#!/bin/sh
echo "$(pwd) $*" >> {log}
case "$1" in
  up) if [ -n "$FAKE_VAGRANT_FAIL" ]; then
        echo "VBoxManage: error: VT-x is not available" >&2; exit 1
      fi
      mkdir -p .vagrant/machines; exit 0 ;;
  ssh-config) cat {config} ;;
  destroy) exit 0 ;;
  *) exit 3 ;;
esac
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake vagrant on CLEW_VAGRANT; returns the file its calls are logged to."""
    (tmp_path / "ssh-config").write_text(SSH_CONFIG)
    log = tmp_path / "calls.log"
    script = tmp_path / "vagrant"
    script.write_text(FAKE.format(log=log, config=tmp_path / "ssh-config"))
    script.chmod(0o755)
    monkeypatch.setenv("CLEW_VAGRANT", str(script))
    return log


def spec(tmp_path: Path, *, nodes: int = 3, **options: object) -> ClusterSpec:
    return ClusterSpec(
        provider="vagrant", nodes=nodes, state_dir=str(tmp_path / "state"), options=options
    )


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_up_writes_the_vagrantfile_and_parses_ssh_config(tmp_path: Path, fake: Path) -> None:
    cluster = VagrantProvider().up(spec(tmp_path, first_ip="192.168.60.21", memory=2048))
    state = tmp_path / "state"
    vf = (state / "Vagrantfile").read_text()
    assert "config.vm.box = 'debian/bookworm64'" in vf
    for i, ip in ((1, "192.168.60.21"), (2, "192.168.60.22"), (3, "192.168.60.23")):
        assert f"['n{i}', '{ip}']" in vf
    assert 'node.vm.network "private_network", ip: ip' in vf and "vb.memory = 2048" in vf
    assert calls(fake) == [f"{state} up", f"{state} ssh-config"]

    assert [(n.name, n.host, n.port, n.user) for n in cluster.nodes] == [
        ("n1", "127.0.0.1", 2222, "vagrant"),
        ("n2", "127.0.0.1", 2200, "vagrant"),
        ("n3", "127.0.0.1", 2201, "vagrant"),
    ]
    assert (
        cluster.nodes[1].key_file
        == "/home/ann/my boxes/.vagrant/machines/n2/virtualbox/private_key"
    )
    assert not any(n.check_host_key for n in cluster.nodes)
    assert all(n.known_hosts is None for n in cluster.nodes)
    hk = cluster.capability("host-key-check")
    assert hk is not None and not hk.available and "StrictHostKeyChecking no" in hk.detail
    assert cluster.extra["addresses"]["n3"] == "192.168.60.23"
    assert cluster.node("n3").peer_address == "192.168.60.23"  # not the forwarded 127.0.0.1
    assert Cluster.load(state) == cluster


def test_up_again_is_idempotent(tmp_path: Path, fake: Path) -> None:
    first = VagrantProvider().up(spec(tmp_path))
    assert VagrantProvider().up(spec(tmp_path)) == first
    assert len(calls(fake)) == 2  # no second `vagrant up`
    with pytest.raises(ClusterError, match="take it down first"):
        VagrantProvider().up(spec(tmp_path, nodes=2))


def test_down_destroys_and_removes_only_our_files(tmp_path: Path, fake: Path) -> None:
    VagrantProvider().up(spec(tmp_path))
    state = tmp_path / "state"
    (state / "notes.txt").write_text("mine")
    VagrantProvider().down(state)
    assert calls(fake)[-1] == f"{state} destroy -f"
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt"]
    VagrantProvider().down(state)  # harmless when nothing is up
    assert calls(fake)[-1] == f"{state} destroy -f" and len(calls(fake)) == 3


def test_a_failed_up_says_why_and_cleans_up(
    tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VAGRANT_FAIL", "1")
    with pytest.raises(ClusterError, match=r"`vagrant up`.*status 1.*VT-x is not available"):
        VagrantProvider().up(spec(tmp_path))
    assert calls(fake)[-1].endswith("destroy -f")
    assert not (tmp_path / "state").exists()


def test_missing_vagrant_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEW_VAGRANT", str(tmp_path / "no-such-vagrant"))
    with pytest.raises(ClusterError) as e:
        VagrantProvider().up(spec(tmp_path))
    msg = str(e.value)
    assert "vagrant not found" in msg and "developer.hashicorp.com/vagrant/install" in msg
    assert "CLEW_VAGRANT" in msg
    assert not (tmp_path / "state" / CLUSTER_FILE).exists()


def test_status_checks_each_boxs_ssh_port(tmp_path: Path, fake: Path) -> None:
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))
        config = SSH_CONFIG.replace("Port 2222", f"Port {listening.getsockname()[1]}")
        (tmp_path / "ssh-config").write_text(
            config.replace("Port 2200", f"Port {closed.getsockname()[1]}")
        )
        VagrantProvider().up(spec(tmp_path, nodes=2))
        status = VagrantProvider().status(tmp_path / "state")
    assert status.nodes["n1"] == "up"
    assert "refused" in status.nodes["n2"]
    assert not status.healthy


def test_down_without_vagrant_keeps_the_state(
    tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    VagrantProvider().up(spec(tmp_path))
    monkeypatch.setenv("CLEW_VAGRANT", str(tmp_path / "gone"))
    (tmp_path / "vagrant").unlink()
    with pytest.raises(ClusterError, match="vagrant not found"):
        VagrantProvider().down(tmp_path / "state")
    assert (tmp_path / "state" / "Vagrantfile").exists()


def test_ssh_config_without_a_box_is_an_error() -> None:
    with pytest.raises(ClusterError, match="says nothing about box 'n4'"):
        nodes_from_ssh_config(SSH_CONFIG, ["n1", "n4"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ips": "10.0.0.1,10.0.0.2"}, "2 addresses for 3 nodes"),
        ({"first_ip": "300.1.1.1"}, "bad private address"),
        ({"memory": "lots"}, "whole number"),
        ({"colour": "x"}, "unknown cluster option"),
    ],
)
def test_bad_options(tmp_path: Path, fake: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        VagrantProvider().up(spec(tmp_path, **options))
    assert calls(fake) == []


def test_a_foreign_vagrantfile_is_left_alone(tmp_path: Path, fake: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "Vagrantfile").write_text("# someone else's\n")
    with pytest.raises(ClusterError, match="already has a Vagrantfile"):
        VagrantProvider().up(spec(tmp_path))
    VagrantProvider().down(state)
    assert (state / "Vagrantfile").read_text() == "# someone else's\n"
    assert calls(fake) == []
    assert os.listdir(state) == ["Vagrantfile"]


@pytest.mark.parametrize("box", ['debian/bookworm64#{`touch /tmp/pwned`}', 'a"b', "a/b/c", ""])
def test_a_box_that_is_not_a_plain_name_is_refused(box: str) -> None:
    """The box goes into a Ruby string of the Vagrantfile: ``#{...}`` there runs as code
    when `vagrant up` loads it."""
    spec = ClusterSpec(provider="vagrant", nodes=1, options={"box": box})
    with pytest.raises(ConfigError, match="a box is named `name` or `org/name`"):
        VagrantProvider().check_spec(spec)
    VagrantProvider().check_spec(ClusterSpec(provider="vagrant", nodes=1,
                                             options={"box": "debian/bookworm64"}))  # fmt: skip
