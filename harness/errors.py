"""The one exception tree of clew. Every message is written for a person.

::

    ClewError
     ├── InputError           bad input from the user: exit code 254
     │    ├── HistoryError    a history file that cannot be read (names file and line)
     │    └── ConfigError     a bad option, spec field or model name
     ├── CheckerError         a checker could not run (a bug or a missing piece)
     ├── ClusterError         nodes could not be brought up or reached
     └── NemesisError         a fault could not be injected or healed

Subclasses also inherit the natural stdlib type (``ValueError``) where that helps callers
who catch broadly.
"""

from __future__ import annotations

__all__ = [
    "CheckerError",
    "ClewError",
    "ClusterError",
    "ConfigError",
    "HistoryError",
    "InputError",
    "NemesisError",
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


class CheckerError(ClewError):
    """A checker could not run at all (not the same as finding a history invalid)."""


class ClusterError(ClewError):
    """Nodes could not be brought up, reached or torn down."""


class NemesisError(ClewError):
    """A fault could not be injected or healed."""
