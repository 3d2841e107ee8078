"""Values written into a Vagrantfile, which is Ruby: as literals that cannot run code.

In a Ruby double-quoted string ``#{...}`` is code, run when ``vagrant`` loads the file;
a cluster option or a state path that holds it (a stored run may name either) would run
as root. :func:`ruby_str` writes a single-quoted literal, where only ``\\\\`` and ``\\'``
mean anything.
"""

from __future__ import annotations

__all__ = ["ruby_str"]


def ruby_str(text: object) -> str:
    """``text`` as a single-quoted Ruby string literal (no interpolation, no escapes but
    ``\\\\`` and ``\\'``)."""
    return "'" + str(text).replace("\\", "\\\\").replace("'", "\\'") + "'"
