"""The disk-full kind's planner, its refusal of adapters without what it needs, and its
node scripts run for real on a tmpfs in a throwaway mount namespace (root)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.errors import NemesisError
from nemeses import kinds
from nemeses.kinds import PackageArgs
from nemeses.kinds.disk_full import (
    FILLER,
    disk_full_package,
    fill_script,
    free_script,
    plan_disk_full,
    rehome_script,
    residue_script,
    unhome_script,
)

NODES = ["n1", "n2", "n3", "n4", "n5"]


class NoDataDir:
    name = "bare"

    async def kill(self, ctx: object, node: object, remote: object) -> None: ...
    async def start(self, ctx: object, node: object, remote: object) -> None: ...


class WithDataDir(NoDataDir):
    data_dir = "/opt/db/data"

    async def wait_healthy(
        self, ctx: object, node: object, remote: object, *, within: float
    ) -> None: ...


def test_registered_with_its_needs() -> None:
    kind = kinds.get("disk-full")
    assert kind.heal_priority > kinds.get("kill").heal_priority
    why = kinds.problems(kind, None, NoDataDir())
    assert why and "data_dir" in why[0] and "wait_healthy" in why[0]
    assert kinds.problems(kind, None, WithDataDir()) == []


def test_planner_is_seeded_and_stays_in_its_space() -> None:
    a = [plan_disk_full(NODES, random.Random(s), False) for s in range(30)]
    assert a == [plan_disk_full(NODES, random.Random(s), False) for s in range(30)]
    assert {v["targets"] for v in a} == {"one", "minority", "majority", "all"}
    assert all(set(v["nodes"]) <= set(NODES) for v in a)
    roles = [plan_disk_full(NODES, random.Random(s), True) for s in range(30)]
    assert {"targets": "primaries"} in roles


def test_package_refuses_what_it_cannot_do() -> None:
    with pytest.raises(NemesisError, match="data_dir, kill/start and wait_healthy"):
        disk_full_package(PackageArgs(db=NoDataDir(), interval=2, lease=5))
    with pytest.raises(NemesisError, match="MiB"):
        disk_full_package(
            PackageArgs(
                db=WithDataDir(), interval=2, lease=5, options={"disk_full_headroom_mb": "lots"}
            )
        )
    bad = WithDataDir()
    bad.data_dir = "/opt/db/$(reboot)"  # type: ignore[misc]
    with pytest.raises(NemesisError, match="not a plain path"):
        disk_full_package(PackageArgs(db=bad, interval=2, lease=5))
    p = disk_full_package(PackageArgs(db=WithDataDir(), interval=2, lease=5))
    assert p.name == "disk-full" and p.nemesis.fs == {"start-disk-full", "stop-disk-full"}


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root")
def test_scripts_fill_free_and_move_back_on_a_real_tmpfs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "member").mkdir()
    (data / "member" / "wal").write_bytes(b"w" * 300_000)
    d = str(data)
    steps = [
        rehome_script(d, headroom=2 * 2**20, max_data=2**30),
        "echo REHOMED; stat -c %a " + d,
        fill_script(d),
        "head -c 4096 /dev/zero > " + d + "/more 2>/dev/null && echo WROTE || echo ENOSPC",
        residue_script(d),
        free_script(d),
        "head -c 4096 /dev/zero > " + d + "/more && echo WROTE-AFTER",
        "rm -f " + d + "/more",
        unhome_script(d),
        residue_script(d),
        "echo DONE",
    ]
    body = "\n".join(f"( {step}\n) || exit 1" for step in steps)
    r = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", body],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    out = r.stdout.split()
    assert r.returncode == 0, r.stderr
    assert out[:3] == ["REHOMED", "700", "0"], r.stdout  # mode kept; 0 bytes left free
    assert "ENOSPC" in out and "WROTE-AFTER" in out
    assert "filler" in r.stdout and "still" in r.stdout  # residue while struck
    assert out[-1] == "DONE" and r.stdout.count("still") == 2  # clean after moving back
    assert (data / "member" / "wal").read_bytes() == b"w" * 300_000
    assert not (data / FILLER).exists() and oct(data.stat().st_mode)[-3:] == "700"
