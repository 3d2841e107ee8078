"""Reusable workloads (generators + checkers) and helpers for reading suite options.

Suite options come from a TOML spec (already typed) or from ``--option k=v`` (strings);
:func:`option_bool`, :func:`option_float` and :func:`option_int` accept both and name the
option when a value is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.errors import ConfigError

__all__ = ["option_bool", "option_float", "option_int"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def option_bool(options: Mapping[str, Any], name: str, default: bool) -> bool:
    """Option ``name`` as a bool (true/false, yes/no, on/off, 1/0), or ``default``."""
    value = options.get(name, default)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"option {name!r} must be true or false, got {value!r}")


def option_float(options: Mapping[str, Any], name: str, default: float) -> float:
    """Option ``name`` as a positive number, or ``default``."""
    value = options.get(name, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"option {name!r} must be a number, got {value!r}") from None
    if not number > 0:
        raise ConfigError(f"option {name!r} must be positive, got {value!r}")
    return number


def option_int(options: Mapping[str, Any], name: str, default: int) -> int:
    """Option ``name`` as a positive integer, or ``default``."""
    value = options.get(name, default)
    if isinstance(value, bool):
        raise ConfigError(f"option {name!r} must be an integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"option {name!r} must be an integer, got {value!r}") from None
    if number < 1:
        raise ConfigError(f"option {name!r} must be at least 1, got {value!r}")
    return number
