"""A real 5-node local cluster driven over both SSH backends, then torn down to nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from clusters import ClusterSpec, get_provider
from harness.control import CommandResult, connect_all

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
]

SUBNET = "10.77.42.0/24"
PREFIX = "cle-"


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def _ours(text: str, mark: str) -> list[str]:
    """The lines of ``ip`` output that name ``mark`` (this test's prefix or subnet): other
    clusters (other test files, run in parallel) may come and go meanwhile."""
    return [line for line in text.splitlines() if mark in line]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    state = tmp_path_factory.mktemp("cluster")
    provider = get_provider("local")
    assert not _ours(_ip("route"), SUBNET.rsplit(".", 1)[0] + ".")
    spec = ClusterSpec(
        provider="local",
        nodes=5,
        name="e2e",
        state_dir=str(state),
        options={"subnet": SUBNET, "prefix": PREFIX, "bridge": f"{PREFIX}br0"},
    )
    c = provider.up(spec)
    try:
        yield c
    finally:
        provider.down(state)
        assert not _ours(_ip("route"), SUBNET.rsplit(".", 1)[0] + ".")
        assert not _ours(_ip("-br", "link"), PREFIX)


@pytest.mark.parametrize("backend", ["asyncssh", "paramiko"])
def test_a_command_runs_on_all_five_nodes_in_parallel(cluster, backend: str) -> None:  # type: ignore[no-untyped-def]
    async def go() -> dict[str, CommandResult | BaseException]:
        remotes = await connect_all(cluster.nodes, backend=backend)
        try:
            return await remotes.run_all(["sh", "-c", "hostname; echo $$"])
        finally:
            await remotes.close()

    results = asyncio.run(go())
    assert sorted(results) == ["n1", "n2", "n3", "n4", "n5"]
    for name, r in results.items():
        assert isinstance(r, CommandResult), r
        assert r.stdout.split()[0] == name


@pytest.mark.parametrize("backend", ["asyncssh", "paramiko"])
def test_upload_and_download_round_trip(cluster, backend: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    payload = os.urandom(200_000)
    src = tmp_path / "payload.bin"
    src.write_bytes(payload)

    async def go() -> None:
        remotes = await connect_all(cluster.nodes, backend=backend)
        try:

            async def round_trip(remote) -> bytes:  # type: ignore[no-untyped-def]
                name = remote.node.name
                await remote.upload(src, f"/opt/payload-{backend}.bin")
                back = tmp_path / f"back-{name}.bin"
                await remote.download(f"/opt/payload-{backend}.bin", back)
                return back.read_bytes()

            got = await remotes.on_nodes(round_trip)
            for name, data in got.items():
                assert data == payload, name
        finally:
            await remotes.close()

    asyncio.run(go())


def test_down_leaves_nothing_behind(tmp_path: Path) -> None:
    provider = get_provider("local")
    assert not _ours(_ip("-br", "link"), "cld-")
    spec = ClusterSpec(
        provider="local",
        nodes=3,
        name="e2e-down",
        state_dir=str(tmp_path / "state"),
        options={"subnet": "10.77.43.0/24", "prefix": "cld-", "bridge": "cld-br0"},
    )
    c = provider.up(spec)
    pids = subprocess.run(
        ["ip", "netns", "pids", "cld-n1"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert pids, "node n1 has processes while up"
    assert len(c.nodes) == 3
    assert _ours(_ip("-br", "link"), "cld-"), "the cluster's bridge and veths exist while up"
    assert _ours(_ip("route"), "10.77.43."), "the cluster's route exists while up"
    provider.down(tmp_path / "state")
    assert "cld-" not in _ip("netns", "list")
    assert not _ours(_ip("-br", "link"), "cld-")
    assert not _ours(_ip("route"), "10.77.43.")
    for pid in pids:
        assert not _running(int(pid)), f"process {pid} survived down"
    assert not (tmp_path / "state" / "cluster.json").exists()
    provider.down(tmp_path / "state")  # idempotent


NASTY = ["; rm -rf /", "$(touch /tmp/pwned)", "`touch /tmp/pwned`", "it's", 'say "hi"',
         "two\nlines", "*", "a && b", "  spaced  ", ""]  # fmt: skip


def test_shell_metacharacters_reach_a_node_literally(cluster) -> None:  # type: ignore[no-untyped-def]
    async def go() -> str:
        remotes = await connect_all(cluster.nodes[:1])
        try:
            r = await remotes["n1"].run(["printf", "%s\\0", *NASTY])
            probe = await remotes["n1"].run(["ls", "/tmp/pwned"], check=False)
            assert probe.exit_status != 0, "a metacharacter was interpreted on the node"
            return r.stdout
        finally:
            await remotes.close()

    assert asyncio.run(go()).split("\0")[:-1] == NASTY
