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
    start = time.monotonic()
    while time.monotonic() - start < within:
        if pred():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {within} s")


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
        wait_for(lambda: (tmp_path / "leftover-healed").exists(), 10)
        yield d, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=5)


def test_guard_heals_leftovers_at_start_and_expired_leases(guard, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d, _ = guard
    wait_for(lambda: (tmp_path / "leftover-healed").exists(), 5)
    assert not (d / "leases" / "left-over.json").exists()

    marker = tmp_path / "partition-healed"
    t0 = time.monotonic()
    write_lease(d, "partition", 1.0, f"touch {marker}", 2)
    # Renewed (rewritten) every 0.3 s for ~1.5 s: it must hold past its 1 s lease.
    for seq in range(3, 8):
        time.sleep(0.3)
        assert not marker.exists(), "healed while the controller was renewing the lease"
        write_lease(d, "partition", 1.0, f"touch {marker}", seq)
    renewed_until = time.monotonic()
    # The controller goes silent: healed about one lease later.
    wait_for(marker.exists, 5)
    healed_after = time.monotonic() - renewed_until
    assert 0.8 <= healed_after <= 2.5, healed_after
    assert time.monotonic() - t0 > 2.0
    events = [json.loads(x) for x in (d / "guard.jsonl").read_text().splitlines()]
    reasons = [(e.get("id"), e.get("reason")) for e in events if e["event"] == "healed"]
    assert reasons == [("left-over", "guard-start"), ("partition", "lease-expired")]


def test_a_released_lease_is_never_healed(guard, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d, _ = guard
    marker = tmp_path / "pause-healed"
    write_lease(d, "pause", 0.5, f"touch {marker}", 2)
    time.sleep(0.2)
    (d / "leases" / "pause.json").unlink()  # healed as planned by the controller
    time.sleep(1.2)
    assert not marker.exists()


def test_guard_exits_on_sigterm_and_when_idle(tmp_path: Path) -> None:
    d = tmp_path / "g"
    proc = subprocess.Popen(
        [sys.executable, AGENT, "--dir", str(d), "--poll", "0.05", "--idle-exit", "0.5"]
    )
    assert proc.wait(timeout=10) == 0
    events = [json.loads(x)["event"] for x in (d / "guard.jsonl").read_text().splitlines()]
    assert events == ["start", "idle-exit"]
    assert (d / "guard.pid").read_text().strip() == str(proc.pid)
