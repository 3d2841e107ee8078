"""Text from files clew did not write, made safe to print on a terminal.

A run directory or store may come from anyone, and what clew prints of it (a stored
run's problems, a checker's cause quoting a value, an error naming a file's contents)
reaches the user's terminal. Control characters there are commands to the terminal:
``ESC ] 52`` writes the clipboard, ``ESC ] 8`` makes a link that shows other text, ``ESC
[ 2J`` clears the screen, and bidirectional overrides reorder what is shown.
:func:`shown` replaces each with its escape, so it is seen, not obeyed.
"""

from __future__ import annotations

import re

import click

__all__ = ["echo_shown", "shown"]

#: C0 controls but tab and newline, DEL, C1 controls, and the bidirectional embeddings,
#: overrides and isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def shown(text: str) -> str:
    """``text`` with every character a terminal would obey rather than show (see the
    module docstring) replaced by its escape (``\\x1b``, ``\\u202e``); tabs and newlines
    are kept."""
    return _UNSAFE.sub(_escape, text)


def echo_shown(line: str) -> None:
    """Print ``line`` (with a newline) as :func:`shown` makes it safe to."""
    click.echo(shown(line))
