"""Run a host command for the local provider: argument lists, a timeout, errors for people.

Every command the local provider runs on the host goes through :func:`run`, so none is a
shell string, none can hang forever, and a failure says what was run and what it printed.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence

from harness.errors import ClusterError

__all__ = ["CommandFailed", "run", "which"]

log = logging.getLogger(__name__)

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
    if argv and "/" not in argv[0]:
        argv[0] = which(argv[0]) or argv[0]
    shown = " ".join(argv)
    purpose = f" ({what})" if what else ""
    log.debug("run: %s", shown)
    try:
        proc = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise CommandFailed(
            f"`{shown}`{purpose} did not finish within {timeout:g} s",
            returncode=None,
            stdout=_text(e.stdout),
            stderr=_text(e.stderr),
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
