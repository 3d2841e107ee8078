"""The one exception tree of clew. Every message is written for a person.

::

    ClewError
     ├── InputError           bad input from the user: exit code 254
     │    ├── HistoryError    a history file that cannot be read (names file and line)
     │    └── ConfigError     a bad option, spec field or model name
     ├── WriteError           a file could not be written for the machine's reasons
     │                        (a full disk, an I/O error; names the file): exit code 255
     ├── CheckerError         a checker could not run (a bug or a missing piece)
     ├── ClusterError         nodes could not be brought up or reached
     │    ├── ClusterConflictError  the cluster asked for clashes with what is there
     │    │                         (also an InputError: exit code 254)
     │    ├── SSHError        a node could not be reached or authenticated over SSH
     │    └── CommandError    a command on a node failed (names node, command, output)
     └── NemesisError         a fault could not be injected or healed

Subclasses also inherit the natural stdlib type (``ValueError``) where that helps callers
who catch broadly.
"""

from __future__ import annotations

__all__ = [
    "CheckerError",
    "ClewError",
    "ClusterConflictError",
    "ClusterError",
    "CommandError",
    "ConfigError",
    "HistoryError",
    "InputError",
    "NemesisError",
    "SSHError",
    "WriteError",
]


class ClewError(Exception):
    """Base of every error clew raises on purpose; its message says what to do."""


class InputError(ClewError, ValueError):
    """The user gave input clew cannot use. The CLI exits 254 on these."""


class HistoryError(InputError):
    """A history file is malformed. The message starts with ``FILE:LINE:``.

    ``path`` and ``line`` (1-based, or ``None`` when the problem is the whole file) are
    kept as attributes so tools can point at the spot.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        self.reason = message
        where = path or "<history>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class ConfigError(InputError):
    """An option, a spec field or a name (model, format) is wrong; the message names it."""


class WriteError(ClewError):
    """A file could not be written for a reason of the machine's, not of the input (a full
    disk, an I/O error); the message names the file."""


class CheckerError(ClewError):
    """A checker could not run at all (not the same as finding a history invalid)."""


class ClusterError(ClewError):
    """Nodes could not be brought up, reached or torn down."""


class ClusterConflictError(ClusterError, InputError):
    """The cluster asked for clashes with what is already there: another provider's or a
    differently configured cluster in its state directory, files no cluster of clew's
    made, a subnet this host already uses. The person's choice, not a failure of the
    nodes, so the CLI exits 254; still a :class:`ClusterError` for code that tries
    another slot on any cluster failure."""


class SSHError(ClusterError):
    """A node could not be reached or authenticated. The message names the node and what
    was tried (address, port, user, key), and why it failed."""

    def __init__(self, message: str, *, node: str) -> None:
        self.node = node
        super().__init__(message)


class CommandError(ClusterError):
    """A command on a node exited non-zero (or timed out). Keeps everything needed to act
    on it: the node, the command, the exit status and the output (tails in the message)."""

    def __init__(
        self,
        *,
        node: str,
        command: str,
        exit_status: int | None,
        stdout: str,
        stderr: str,
        reason: str | None = None,
    ) -> None:
        self.node = node
        self.command = command
        self.exit_status = exit_status
        self.stdout = stdout
        self.stderr = stderr
        what = reason or f"exited with status {exit_status}"
        tail = _tail(stderr) or _tail(stdout) or "(no output)"
        super().__init__(f"on {node}: `{_short(command)}` {what}: {tail}")


def _short(text: str, limit: int = 200) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


class NemesisError(ClewError):
    """A fault could not be injected or healed."""
