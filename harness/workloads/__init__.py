"""Reusable workloads (generators + checkers) and helpers for reading suite options.

Suite options come from a TOML spec (already typed) or from ``--option k=v`` (strings);
:func:`option_bool`, :func:`option_float` and :func:`option_int` accept both and name the
option when a value is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    from checkers.result import Result
    from checkers.txn.budget import Budget
    from harness.history import History

__all__ = [
    "CHECK_OPTIONS",
    "DEFAULT_CHECK_MAX_MEMORY",
    "DEFAULT_CHECK_TIME_LIMIT",
    "check_in_budget",
    "check_max_memory",
    "check_time_limit",
    "option_bool",
    "option_float",
    "option_int",
]

#: Seconds the check of a run's history may take unless the option says otherwise (the
#: transactional checker's own default, 60 s, holds for list-append and rw-register).
DEFAULT_CHECK_TIME_LIMIT = 300.0

#: Memory the check of a run's history may use unless the option says otherwise.
DEFAULT_CHECK_MAX_MEMORY = 2 * 1024**3

#: The options the check of every built-in workload reads; each built-in suite declares
#: them for every workload.
CHECK_OPTIONS = {
    "check_time_limit": "seconds the check of the history may take, beyond which the verdict "
    "is unknown (300; list-append and rw-register: 60)",
    "check_max_memory": "memory the check of the history may use (a size: 512M, 8G), beyond "
    "which the verdict is unknown (2G)",
}

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


def check_time_limit(
    options: Mapping[str, Any], default: float = DEFAULT_CHECK_TIME_LIMIT
) -> float:
    """The ``check_time_limit`` option (seconds, positive), or ``default``."""
    return option_float(options, "check_time_limit", default)


def check_max_memory(options: Mapping[str, Any]) -> int:
    """The ``check_max_memory`` option in bytes (a size such as ``4G``, positive), or
    :data:`DEFAULT_CHECK_MAX_MEMORY`."""
    from harness.sizes import parse_size

    value = options.get("check_max_memory", DEFAULT_CHECK_MAX_MEMORY)
    try:
        return parse_size(value)
    except ValueError as e:
        raise ConfigError(f"option 'check_max_memory': {e}") from None


def check_in_budget(
    name: str, history: History, options: Mapping[str, Any],
    check: Callable[[History, Budget], Result],
) -> Result:  # fmt: skip
    """``check(history, budget)`` within the run's ``check_time_limit`` (from now) and
    ``check_max_memory``: ``unknown``, naming the budget, when either runs out
    (:func:`checkers.collections.within_budget`). ``name`` names the checker."""
    from checkers.collections import within_budget

    limit = check_time_limit(options)
    return within_budget(name, lambda budget: check(history, budget),
                         time_limit=limit, max_memory=check_max_memory(options))  # fmt: skip
