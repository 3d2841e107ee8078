"""clew's node-side fault guard: heals faults whose lease has expired when the controller
is gone. A standalone program (Python 3 standard library only): the controller copies this
file to each node and starts it there, detached.

It watches ``DIR/leases/*.json``. Each lease file is written by the controller before a
fault is injected::

    {"id": "pause", "lease": 10.0, "seq": 7, "heal": "<POSIX sh script>"}

and rewritten (``seq`` + 1) every ``lease / 3`` seconds while the fault should hold. The
guard measures time with its own **monotonic** clock (a clock fault moves wall time, never
this): a file whose content has not changed for ``lease`` seconds has expired, so the guard
runs its heal script (``sh -c``, bounded), records that in ``DIR/guard.jsonl`` and deletes
the file. A lease file the controller deletes is a fault it healed itself.

On start the guard first heals every lease file it finds (left by a crashed run: nobody
is renewing them), so starting it is also a clean-up. It writes its PID to
``DIR/guard.pid``, exits on SIGTERM, and exits by itself after ``--idle-exit`` seconds
with no lease files, so an abandoned guard does not linger.

Run: ``python3 guard_agent.py --dir DIR [--poll S] [--idle-exit S] [--heal-timeout S]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

#: Seconds between two looks at the lease directory.
DEFAULT_POLL = 0.2
#: Seconds with no lease files after which the guard exits.
DEFAULT_IDLE_EXIT = 900.0
#: Seconds one heal script may run.
DEFAULT_HEAL_TIMEOUT = 30.0


def _log(path: str, **event: object) -> None:
    event = {"time": time.time(), "monotonic": time.monotonic(), **event}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(event) + "\n")


def _heal(log_path: str, lease_path: str, text: str, reason: str, timeout: float) -> None:
    try:
        lease = json.loads(text)
        script = str(lease["heal"])
        lease_id = str(lease.get("id", os.path.basename(lease_path)))
    except (ValueError, KeyError, TypeError) as e:
        _log(log_path, event="bad-lease", file=lease_path, error=str(e))
        _remove(lease_path)
        return
    try:
        done = subprocess.run(
            ["sh", "-c", script], capture_output=True, text=True, timeout=timeout, check=False
        )
        _log(
            log_path, event="healed", id=lease_id, reason=reason, status=done.returncode,
            stderr=done.stderr[-2000:],
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        _log(log_path, event="heal-timeout", id=lease_id, reason=reason, timeout=timeout)
    _remove(lease_path)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Run the guard until SIGTERM or idle exit (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--poll", type=float, default=DEFAULT_POLL)
    ap.add_argument("--idle-exit", type=float, default=DEFAULT_IDLE_EXIT)
    ap.add_argument("--heal-timeout", type=float, default=DEFAULT_HEAL_TIMEOUT)
    args = ap.parse_args(argv)
    leases = os.path.join(args.dir, "leases")
    log_path = os.path.join(args.dir, "guard.jsonl")
    os.makedirs(leases, exist_ok=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with open(os.path.join(args.dir, "guard.pid"), "w", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    _log(log_path, event="start", pid=os.getpid())
    for name in sorted(os.listdir(leases)):
        path = os.path.join(leases, name)
        if name.endswith(".json"):
            text = _read(path)
            if text is not None:
                _heal(log_path, path, text, "guard-start", args.heal_timeout)
    seen: dict[str, tuple[str, float]] = {}  # file -> (content, monotonic time it changed)
    idle_since = time.monotonic()
    while not stop:
        now = time.monotonic()
        try:
            names = [n for n in os.listdir(leases) if n.endswith(".json")]
        except FileNotFoundError:
            names = []
        current = set()
        for name in names:
            path = os.path.join(leases, name)
            text = _read(path)
            if text is None:
                continue
            current.add(path)
            old = seen.get(path)
            if old is None or old[0] != text:
                seen[path] = (text, now)
                continue
            try:
                lease = float(json.loads(text).get("lease", 0))
            except (ValueError, TypeError, AttributeError):
                lease = 0.0
            if now - old[1] > lease:
                _heal(log_path, path, text, "lease-expired", args.heal_timeout)
                current.discard(path)
        for path in list(seen):
            if path not in current:
                del seen[path]
        if current:
            idle_since = now
        elif now - idle_since > args.idle_exit:
            _log(log_path, event="idle-exit")
            return 0
        time.sleep(args.poll)
    _log(log_path, event="stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
