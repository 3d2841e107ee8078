"""The node-side fault guard, run for real as a local process on a temporary directory.

Heal scripts here only touch files in the test's directory; the guard's own timing (its
monotonic clock, lease expiry, renewal by rewriting) is what is under test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nemeses.guard_agent as agent_module

AGENT = agent_module.__file__


def write_lease(d: Path, lease_id: str, lease: float, heal: str, seq: int) -> None:
    leases = d / "leases"
    leases.mkdir(parents=True, exist_ok=True)
    tmp = leases / f".{lease_id}.tmp"
    tmp.write_text(json.dumps({"id": lease_id, "lease": lease, "seq": seq, "heal": heal}))
    os.replace(tmp, leases / f"{lease_id}.json")


def wait_for(pred, within: float) -> float:  # type: ignore[no-untyped-def]
    """Poll ``pred`` until it holds (a generous deadline, never a fixed sleep)."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if pred():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {within} s")


def events(d: Path) -> list[dict]:  # type: ignore[type-arg]
    path = d / "guard.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def healed(d: Path) -> list[tuple[str, str]]:
    return [(e.get("id"), e.get("reason")) for e in events(d) if e["event"] == "healed"]


@pytest.fixture
def guard(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    d = tmp_path / "guard"
    d.mkdir()
    write_lease(d, "left-over", 100.0, f"touch {tmp_path}/leftover-healed", 1)
    proc = subprocess.Popen(
        [sys.executable, AGENT, "--dir", str(d), "--poll", "0.05", "--idle-exit", "30"]
    )
    try:
        # Started (and done healing what it found) before the test writes its leases.
        wait_for(lambda: ("left-over", "guard-start") in healed(d), 10)
        assert (tmp_path / "leftover-healed").exists()
        yield d, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=5)


def test_guard_heals_leftovers_at_start_and_expired_leases(guard, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d, _ = guard
    assert not (d / "leases" / "left-over.json").exists()

    marker = tmp_path / "partition-healed"
    lease = 3.0
    write_lease(d, "partition", lease, f"touch {marker}", 2)
    renewals = [time.monotonic()]
    # Renewed (rewritten) every 0.25 s, far inside the lease: it must hold meanwhile.
    for seq in range(3, 9):
        time.sleep(0.25)
        write_lease(d, "partition", lease, f"touch {marker}", seq)
        renewals.append(time.monotonic())
    # The controller goes silent: healed once a whole lease passed after the last renewal.
    # (The guard records a heal after its script ran: wait for the record.)
    wait_for(lambda: ("partition", "lease-expired") in healed(d), lease + 15)
    assert marker.exists()
    assert healed(d) == [("left-over", "guard-start"), ("partition", "lease-expired")]
    heal = next(e for e in events(d) if e.get("id") == "partition")
    # The guard's clock is this machine's monotonic clock: the heal comes after the last
    # renewal, and never before the lease ran out since it.
    assert heal["monotonic"] >= renewals[-1] + lease


def test_a_released_lease_is_never_healed(guard, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d, _ = guard
    marker = tmp_path / "pause-healed"
    write_lease(d, "pause", 2.0, f"touch {marker}", 2)
    (d / "leases" / "pause.json").unlink()  # healed as planned by the controller
    # A later lease, longer than the released one, expires after the released one would
    # have: once it is healed, the released one had its chance and was not healed.
    write_lease(d, "sentinel", 2.5, f"touch {tmp_path}/sentinel-healed", 3)
    wait_for(lambda: ("sentinel", "lease-expired") in healed(d), 20)
    assert not marker.exists()
    assert healed(d) == [("left-over", "guard-start"), ("sentinel", "lease-expired")]


def refusals(d: Path) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in events(d) if e["event"] == "refused"]


def test_a_lease_writable_by_others_is_refused_not_run(guard, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d, _ = guard
    marker = tmp_path / "planted-ran"
    write_lease(d, "planted", 0.1, f"touch {marker}", 2)
    os.chmod(d / "leases" / "planted.json", 0o666)
    wait_for(lambda: refusals(d), 10)
    [event] = refusals(d)
    assert event["file"] == str(d / "leases" / "planted.json")
    assert event["mode"] == "0666"
    assert event["reason"] == "not run: mode 0666 lets group or others write to it"
    assert not (d / "leases" / "planted.json").exists()  # removed, unread
    assert not marker.exists()
    assert healed(d) == [("left-over", "guard-start")]


def test_a_symlinked_lease_is_refused(guard, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d, _ = guard
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"id": "x", "lease": 0.1, "seq": 1, "heal": "touch x"}))
    os.symlink(target, d / "leases" / "link.json")
    wait_for(lambda: refusals(d), 10)
    assert refusals(d)[0]["reason"].startswith("not run: cannot open it safely")
    assert target.exists() and not (d / "leases" / "link.json").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_lease_owned_by_another_user_is_refused_not_run(guard, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d, _ = guard
    marker = tmp_path / "nobody-ran"
    write_lease(d, "nobody", 0.1, f"touch {marker}", 2)
    os.chown(d / "leases" / "nobody.json", 65534, 65534)
    wait_for(lambda: refusals(d), 10)
    [event] = refusals(d)
    assert event["uid"] == 65534
    assert event["reason"] == "not run: owned by uid 65534, not by the guard's uid 0"
    assert not marker.exists()


def test_the_guard_refuses_a_directory_others_can_write(tmp_path: Path) -> None:
    d = tmp_path / "shared"
    (d / "leases").mkdir(parents=True)
    os.chmod(d, 0o777)
    proc = subprocess.run(
        [sys.executable, AGENT, "--dir", str(d), "--idle-exit", "0.1"],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert proc.returncode == 3
    assert f"refusing to run: {d}: mode 0777 lets group or others write to it" in proc.stderr
    assert not (d / "guard.jsonl").exists()


def test_guard_exits_on_sigterm_and_when_idle(tmp_path: Path) -> None:
    d = tmp_path / "g"
    proc = subprocess.Popen(
        [sys.executable, AGENT, "--dir", str(d), "--poll", "0.05", "--idle-exit", "0.5"]
    )
    assert proc.wait(timeout=10) == 0
    events = [json.loads(x)["event"] for x in (d / "guard.jsonl").read_text().splitlines()]
    assert events == ["start", "idle-exit"]
    assert (d / "guard.pid").read_text().strip() == str(proc.pid)


def test_a_lease_cut_short_heals_by_its_last_whole_version(guard, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A controller SIGKILLed while renewing can leave an empty or truncated lease file (its
    # shell read end-of-file early). The fault it guards must still be healed, by the last
    # whole lease, a whole lease after its last whole renewal.
    d, _ = guard
    marker = tmp_path / "pause-healed"
    write_lease(d, "pause", 2.0, f"touch {marker}", 2)
    time.sleep(0.3)
    last_whole = time.monotonic()
    (d / "leases" / "pause.json").write_text('{"id": "pause", "lea')
    wait_for(lambda: ("pause", "lease-expired") in healed(d), 20)
    assert marker.exists()
    heal = next(e for e in events(d) if e.get("id") == "pause" and e["event"] == "healed")
    assert heal["monotonic"] >= last_whole - 0.3 + 2.0
    assert any(e["event"] == "bad-lease" and e.get("id") == "pause" for e in events(d))


def test_a_lease_file_never_whole_is_dropped_without_claiming_a_whole_one(guard) -> None:  # type: ignore[no-untyped-def]
    # Only a file that was once a whole lease has a last whole version to keep.
    d, _ = guard
    (d / "leases" / "pause.json").write_text('{"id": "pause", "lea')
    wait_for(lambda: not (d / "leases" / "pause.json").exists(), 20)
    bad = [e for e in events(d) if e["event"] == "bad-lease"]
    assert bad and all("kept" not in e for e in bad)


@pytest.mark.parametrize("arrived", [0, 5, 20])
def test_a_write_cut_short_never_replaces_the_file_before_it(tmp_path: Path, arrived: int) -> None:
    from nemeses.guard import _whole_write

    final, tmp = tmp_path / "pause.json", tmp_path / ".pause.tmp"
    final.write_text("the last whole lease")
    body = json.dumps({"id": "pause", "lease": 6.0, "seq": 9, "heal": "kill -CONT 74"})
    script = _whole_write(str(tmp), str(final), body)
    cut = subprocess.run(["sh", "-c", script], input=body[:arrived], text=True, check=False)
    assert cut.returncode != 0 and final.read_text() == "the last whole lease"
    whole = subprocess.run(["sh", "-c", script], input=body, text=True, check=False)
    assert whole.returncode == 0 and final.read_text() == body
