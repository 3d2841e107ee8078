"""A database server managed through its pidfile on a node: shell scripts, and its PID and log.

Shared by the adapters that start a server themselves (etcd, bugkv, Redis, Galera): start it
detached unless it already runs, send it a signal, stop it for sure, read its PID and the
tail of its log. ``alive`` treats a zombie as gone, so a killed server is not mistaken for
a running one.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.control import Remote

__all__ = ["ALIVE", "launch_script", "log_tail", "running_pid", "signal_script", "stop_script"]

#: ``alive PID``: true while the process exists and is not a zombie.
ALIVE = (
    'alive() { s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; '
    '[ "${s%% *}" != Z ]; }\n'
)


def launch_script(directory: str, log_file: str, pid_file: str, argv: list[str]) -> str:
    """Start ``argv`` detached (output appended to ``log_file``, its PID in ``pid_file``)
    after making ``directory``, unless the pidfile's process is alive ("already-running")."""
    d, log, pid = (shlex.quote(p) for p in (directory, log_file, pid_file))
    return (
        f"{ALIVE}"
        f"mkdir -p {d} || exit 1\n"
        f'if [ -s {pid} ] && alive "$(cat {pid})"; then echo already-running; exit 0; fi\n'
        f"{{ setsid nohup {shlex.join(argv)} >>{log} 2>&1 </dev/null & "
        f"echo $! >{pid}; }}\n"
    )


def signal_script(pid_file: str, signal: str, name: str) -> str:
    """Send ``signal`` to the pidfile's process; exit 3 (saying so) when it is not running."""
    pid = shlex.quote(pid_file)
    return (
        f"{ALIVE}"
        f"[ -s {pid} ] || {{ echo 'no pidfile {pid_file}' >&2; exit 3; }}\n"
        f"p=$(cat {pid})\n"
        f'alive "$p" || {{ echo "{name} (pid $p) is not running" >&2; exit 3; }}\n'
        f'kill -{signal} "$p"\n'
    )


def stop_script(pid_file: str, timeout: float, name: str) -> str:
    """SIGCONT then SIGKILL the pidfile's process and wait up to ``timeout`` seconds until it
    is gone (exit 1 if it is not); nothing to do when it does not run."""
    pid = shlex.quote(pid_file)
    rounds = max(1, int(timeout / 0.05))
    return (
        f"{ALIVE}"
        f"[ -s {pid} ] || exit 0\n"
        f'p=$(cat {pid}); alive "$p" || exit 0\n'
        f'kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null\n'
        f'i=0; while alive "$p"; do i=$((i+1)); [ $i -gt {rounds} ] && '
        f'{{ echo "{name} (pid $p) still alive after SIGKILL" >&2; exit 1; }}; sleep 0.05; done\n'
    )


async def running_pid(remote: Remote, pid_file: str, seconds: float) -> int | None:
    """The PID in ``pid_file`` on the node if that process is alive, else ``None`` (the
    command may take up to ``seconds``)."""
    pid = shlex.quote(pid_file)
    r = await remote.run(
        f'{ALIVE}[ -s {pid} ] && p=$(cat {pid}) && alive "$p" && echo "$p"',
        check=False,
        timeout=seconds,
    )
    out = r.stdout.strip()
    return int(out) if r.ok and out.isdigit() else None


async def log_tail(
    remote: Remote, log_file: str, lines: int, seconds: float, *, sudo: bool = False
) -> str:
    """The last ``lines`` lines of ``log_file`` on the node (read within ``seconds``), or a
    line saying why they cannot be read: never an exception, because a log is diagnostics
    and must not hide the error it is read to explain."""
    try:
        r = await remote.run(
            ["tail", "-n", str(lines), log_file], sudo=sudo, check=False, timeout=seconds
        )
    except Exception as e:
        return f"(cannot read {log_file}: {e})"
    return r.stdout if r.ok else f"(cannot read {log_file}: {r.stderr.strip()})"
