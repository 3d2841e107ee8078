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

A heal script runs as the guard's user (root), so the guard trusts only what that user
wrote: it refuses to run in a directory (``DIR`` or ``DIR/leases``) that is a symlink, not
owned by its own user, or writable by group or others, and it never runs a lease file that
is not a regular file owned by its own user and writable by nobody else. Such a file is
removed unread and recorded as a ``refused`` event (file, owner, mode and why).

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
import stat
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


def unsafe_reason(st: os.stat_result, *, want_dir: bool) -> str | None:
    """Why a file or directory with status ``st`` must not be trusted by a guard running as
    this process's user, or ``None`` when it may: it must be a regular file (a directory
    when ``want_dir``), owned by this user, and writable by nobody else."""
    kind_ok = stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode)
    if not kind_ok:
        return "not a directory" if want_dir else "not a regular file"
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not by the guard's uid {os.geteuid()}"
    if st.st_mode & 0o022:
        return f"mode {stat.S_IMODE(st.st_mode):04o} lets group or others write to it"
    return None


def _read_trusted(log_path: str, path: str) -> str | None:
    """The text of lease file ``path`` if the guard may trust it (:func:`unsafe_reason`),
    checked on the open file itself (no symlink followed, so no swap between check and
    read); an untrusted file is removed, unread, and recorded as ``refused``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:  # e.g. ELOOP: a symbolic link
        _refuse(log_path, path, None, f"cannot open it safely: {e.strerror}")
        return None
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        st = os.fstat(fd)
        why = unsafe_reason(st, want_dir=False)
        if why is not None:
            _refuse(log_path, path, st, why)
            return None
        return f.read()


def _refuse(log_path: str, path: str, st: os.stat_result | None, why: str) -> None:
    details: dict[str, object] = {}
    if st is not None:
        details = {"uid": st.st_uid, "mode": f"{stat.S_IMODE(st.st_mode):04o}"}
    _log(log_path, event="refused", file=path, reason=f"not run: {why}", **details)
    _remove(path)


def _check_dirs(*dirs: str) -> str | None:
    """Why the guard must not run in these directories, or ``None``."""
    for d in dirs:
        try:
            st = os.lstat(d)
        except OSError as e:
            return f"{d}: {e.strerror}"
        why = unsafe_reason(st, want_dir=True)
        if why is not None:
            return f"{d}: {why}"
    return None


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
    os.makedirs(leases, mode=0o700, exist_ok=True)
    unsafe = _check_dirs(args.dir, leases)
    if unsafe is not None:
        print(f"clew fault guard: refusing to run: {unsafe}", file=sys.stderr)
        return 3
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with open(os.path.join(args.dir, "guard.pid"), "w", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    _log(log_path, event="start", pid=os.getpid())
    for name in sorted(os.listdir(leases)):
        path = os.path.join(leases, name)
        if name.endswith(".json"):
            text = _read_trusted(log_path, path)
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
            text = _read_trusted(log_path, path)
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
