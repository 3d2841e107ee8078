"""The node-side fault guard on a real namespace node: it trusts only what root wrote.

The guard runs heal scripts as root. Its directory is ``/run/<tag>-guard``, made by root
with mode 0700, so an unprivileged user cannot even create a file in it (shown with
``setpriv`` as ``nobody``); a lease file that is there but not root's, or that others may
write, is refused: never run, removed, recorded in ``guard.jsonl`` and on the run's fault
ledger. A directory someone else made, or one others can write, makes the guard refuse to
start. The old location (``/tmp/<tag>-guard``, which any user could create first) is never
read. Own subnet and prefix; the cluster is torn down by the fixture.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clusters import Cluster, ClusterSpec, get_provider
from harness.control import Remote, connect_all
from harness.errors import NemesisError
from nemeses.guard import FaultGuard
from nemeses.ledger import FaultLedger, read_ledger

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
]

SUBNET = "10.77.161.0/24"
PREFIX = "cgs-"
TAG = "cgs"
GUARD_DIR = f"/run/{TAG}-guard"
#: What a planted lease would do if it ran (``/tmp`` is private to the node).
PWNED = "/tmp/cgs-pwned"
NOBODY = 65534


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("guard-security")
    provider = get_provider("local")
    spec = ClusterSpec(
        nodes=1, name="guard-security", state_dir=str(state),
        options={"subnet": SUBNET, "prefix": PREFIX, "bridge": f"{PREFIX}br0"},
    )  # fmt: skip
    try:
        yield provider.up(spec)
    finally:
        provider.down(state)


def lease_json(lease_id: str) -> str:
    return json.dumps({"id": lease_id, "lease": 0.2, "seq": 1, "heal": f"touch {PWNED}"})


async def sh(remote: Remote, script: str, *, check: bool = True) -> tuple[int, str]:
    r = await remote.run(script, timeout=20, check=check)
    return r.exit_status, r.stdout + r.stderr


async def guard_events(remote: Remote, event: str) -> list[dict[str, object]]:
    _, out = await sh(remote, f"cat {GUARD_DIR}/guard.jsonl 2>/dev/null; true")
    found = [json.loads(x) for x in out.splitlines() if x.strip()]
    return [e for e in found if e.get("event") == event]


async def poll(what, deadline: float = 15.0):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        got = await what()
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"not seen within {deadline} s")


def test_planted_lease_files_are_refused_and_the_ledger_says_why(
    cluster: Cluster, tmp_path: Path
) -> None:
    async def go() -> None:
        async with await connect_all(cluster.nodes) as remotes:
            [(node, remote)] = remotes.items()
            await sh(remote, f"rm -rf {GUARD_DIR} /tmp/{TAG}-guard {PWNED}")
            # The old, world-creatable location, prepared by an unprivileged user.
            await sh(remote, f"setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups sh -c "
                             + shlex.quote(f"mkdir -p /tmp/{TAG}-guard/leases && echo "
                                           f"{shlex.quote(lease_json('old'))} > "
                                           f"/tmp/{TAG}-guard/leases/old.json"))  # fmt: skip
            ledger = FaultLedger(tmp_path / "faults.jsonl")
            guard = FaultGuard(remotes, tag=TAG, lease=5.0, ledger=ledger)
            await guard.start()
            try:
                _, mode = await sh(remote, f"stat -c '%u %a' {GUARD_DIR} {GUARD_DIR}/leases")
                assert mode.split() == ["0", "700", "0", "700"]
                # An unprivileged user cannot put anything there at all.
                status, out = await sh(
                    remote,
                    f"setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups sh -c "
                    + shlex.quote(f"echo x > {GUARD_DIR}/leases/evil.json"),
                    check=False,
                )
                assert status != 0 and "Permission denied" in out
                # A lease file there that is nobody's, and one that others may write.
                leases = f"{GUARD_DIR}/leases"
                await sh(remote, f"printf %s {shlex.quote(lease_json('nobodys'))} > "
                                 f"{leases}/.n && chown {NOBODY}:{NOBODY} {leases}/.n && "
                                 f"mv {leases}/.n {leases}/nobodys.json")  # fmt: skip
                await sh(remote, f"printf %s {shlex.quote(lease_json('shared'))} > "
                                 f"{leases}/.s && chmod 666 {leases}/.s && "
                                 f"mv {leases}/.s {leases}/shared.json")  # fmt: skip

                async def both() -> list[dict[str, object]]:
                    found = await guard_events(remote, "refused")
                    return found if len(found) >= 2 else []

                refused = {str(e["file"]): e for e in await poll(both)}
                assert refused[f"{leases}/nobodys.json"]["reason"] == (
                    f"not run: owned by uid {NOBODY}, not by the guard's uid 0"
                )
                assert refused[f"{leases}/shared.json"]["reason"] == (
                    "not run: mode 0666 lets group or others write to it"
                )
                # Never run, not even after their 0.2 s leases; removed; old place unread.
                await asyncio.sleep(1.0)
                status, _ = await sh(remote, f"test -e {PWNED}", check=False)
                assert status != 0, "a planted lease ran as root"
                _, left = await sh(remote, f"ls -A {leases}")
                assert left.split() == []
                assert await guard_events(remote, "healed") == []
            finally:
                await guard.stop()
                ledger.close()
            notes = [r for r in read_ledger(tmp_path / "faults.jsonl")
                     if r.get("event") == "guard-refused"]  # fmt: skip
            assert sorted(str(r["file"]) for r in notes) == [
                f"{leases}/nobodys.json", f"{leases}/shared.json"
            ]
            assert all(r["node"] == node and r["kind"] == "guard" for r in notes)
            assert all(str(r["reason"]).startswith("not run: ") for r in notes)

    asyncio.run(go())


@pytest.mark.parametrize(
    ("prepare", "why"),
    [
        (f"mkdir -m 700 {GUARD_DIR} && chown {NOBODY} {GUARD_DIR}",
         f"owned by uid {NOBODY}, not root"),
        (f"mkdir -m 777 {GUARD_DIR}", "mode 777 lets others write to it"),
        (f"ln -s /tmp {GUARD_DIR}", "it is a symbolic link"),
    ],
)  # fmt: skip
def test_a_directory_root_did_not_make_alone_is_refused(
    cluster: Cluster, tmp_path: Path, prepare: str, why: str
) -> None:
    async def go() -> None:
        async with await connect_all(cluster.nodes) as remotes:
            [(node, remote)] = remotes.items()
            await sh(remote, f"rm -rf {GUARD_DIR} && {prepare}")
            ledger = FaultLedger(tmp_path / "faults.jsonl")
            guard = FaultGuard(remotes, tag=TAG, ledger=ledger)
            try:
                with pytest.raises(NemesisError) as e:
                    await guard.start()
            finally:
                ledger.close()
                await sh(remote, f"rm -rf {GUARD_DIR}")
            assert f"refusing {GUARD_DIR}: {why}" in str(e.value)
            assert node in str(e.value)
            [note] = [r for r in read_ledger(tmp_path / "faults.jsonl")
                      if r.get("event") == "guard-refused"]  # fmt: skip
            assert note["node"] == node and why in str(note["reason"])

    asyncio.run(go())
