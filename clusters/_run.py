"""Run a host command for the local provider: argument lists, a timeout, errors for people.

Every command the local provider runs on the host goes through :func:`run`, so none is a
shell string, none can hang forever, and a failure says what was run and what it printed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

from harness.errors import ClusterError

__all__ = ["CommandFailed", "popen_shielded", "run", "stop_shielded", "which"]

log = logging.getLogger(__name__)

#: Seconds to read what a killed command's group printed; a descendant that left the group
#: and holds the pipes open is not waited for.
DRAIN_SECONDS = 2.0

#: Where system binaries live even when root's PATH lacks the sbin directories.
_EXTRA_PATH = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"


class CommandFailed(ClusterError):
    """A host command exited non-zero or timed out. Keeps the status and the output."""

    def __init__(self, message: str, *, returncode: int | None, stdout: str, stderr: str):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(message)


def which(name: str) -> str | None:
    """The absolute path of the program ``name`` on PATH or in the sbin directories."""
    return shutil.which(name) or shutil.which(name, path=_EXTRA_PATH)


def popen_shielded(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(argv, **kwargs)`` out of reach of a Ctrl-C on clew's terminal,
    which sends SIGINT to clew's whole process group: the command runs in a session of
    its own, and with SIGINT blocked from the fork on (the child inherits the calling
    thread's signal mask; a SIGINT sent to the group between the fork and ``setsid()``
    reached it otherwise). A Ctrl-C is clew's to act on: a run lets its cluster's
    bring-up and teardown finish. It killed the command under way ("failed with status
    -2"), the bring-up failed, its cleanup too, and `clew test` exited as if crashed.

    A SIGINT that reached the child before ``setsid()`` stays pending, blocked; a shell
    unblocks signals while it waits for a command, and would die of it then: a shell
    script run this way starts with ``trap '' INT``, which discards it."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return subprocess.Popen(argv, start_new_session=True, **kwargs)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def stop_shielded(child: subprocess.Popen[Any]) -> tuple[Any, Any]:
    """Kill ``child``, made by :func:`popen_shielded` (or any child leading its own
    session), with every process of its group (a shell's children too), and return what
    it printed, ``(stdout, stderr)``; ``(None, None)`` when a descendant that left the
    group still holds the pipes after :data:`DRAIN_SECONDS` (our ends are closed then).
    Killing the child alone left ``communicate()`` waiting for the grandchildren holding
    its pipes, which no Ctrl-C reaches in their session: a timeout of 1 s took as long as
    a grandchild ``sleep 8``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)  # its group: it leads its own session
    try:
        return child.communicate(timeout=DRAIN_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        for pipe in (child.stdin, child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()  # (ours: the descendant keeps its own ends)
        return None, None


def run(
    args: Sequence[str],
    *,
    timeout: float = 10.0,
    check: bool = True,
    input: str | None = None,
    what: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` (no shell) and return the finished process with text output.

    With ``check`` (the default) a non-zero exit raises :class:`CommandFailed` naming the
    command, ``what`` it was for, the status and the tail of its output. A timeout always
    raises :class:`CommandFailed` (the process is killed first).
    """
    argv = list(args)
    out: str | None = None
    err: str | None = None
    if argv and "/" not in argv[0]:
        argv[0] = which(argv[0]) or argv[0]
    shown = " ".join(argv)
    purpose = f" ({what})" if what else ""
    log.debug("run: %s", shown)
    try:
        child = popen_shielded(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with child:
            try:
                out, err = child.communicate(input, timeout=timeout)
            except BaseException:  # the timeout, or a KeyboardInterrupt in the main thread
                out, err = stop_shielded(child)
                raise
        proc = subprocess.CompletedProcess(argv, child.returncode, out, err)
    except subprocess.TimeoutExpired:
        raise CommandFailed(
            f"`{shown}`{purpose} did not finish within {timeout:g} s",
            returncode=None,
            stdout=_text(out),
            stderr=_text(err),
        ) from None
    except OSError as e:
        raise CommandFailed(
            f"cannot run `{shown}`{purpose}: {e.strerror or e}",
            returncode=None,
            stdout="",
            stderr=str(e),
        ) from None
    if check and proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise CommandFailed(
            f"`{shown}`{purpose} failed with status {proc.returncode}: {tail or '(no output)'}",
            returncode=proc.returncode,
            stdout=proc.stdout,
            stderr=proc.stderr,
        )
    return proc


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data
