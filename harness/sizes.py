"""Sizes in bytes as people write them: ``2G``, ``512M``, ``1.5g``, ``1000000``.

One reading for every place that takes a size: the command line's ``--max-memory``
(:class:`harness.cli.ByteSize`) and a suite option such as ``check_max_memory``.
"""

from __future__ import annotations

__all__ = ["SIZE_UNITS", "parse_size", "show_size"]

#: Binary units: ``2G`` is 2 GiB.
SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(value: object) -> int:
    """``value`` (an int, or text such as ``2G``, ``512MiB``, ``1.5g``) in bytes, positive;
    ``ValueError`` saying what is wrong otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size; use e.g. 2G, 512M or 1000000")
    if isinstance(value, int):
        size = value
    else:
        text = str(value).strip().lower().removesuffix("b").removesuffix("i")
        unit = text[-1:] if text[-1:] in SIZE_UNITS and text[-1:] != "" else ""
        number = text[: -len(unit)] if unit else text
        try:
            size = int(float(number) * SIZE_UNITS[unit])
        except (ValueError, OverflowError):  # OverflowError: inf
            raise ValueError(f"{value!r} is not a size; use e.g. 2G, 512M or 1000000") from None
    if size <= 0:
        raise ValueError(f"{value!r} must be positive")
    return size


def show_size(n: int) -> str:
    """``n`` bytes in the largest unit that holds it exactly, e.g. ``1M`` or ``1024T``."""
    for unit, size in reversed(SIZE_UNITS.items()):
        if n % size == 0:
            return f"{n // size}{unit.upper()}"
    return str(n)  # pragma: no cover - the unit "" divides every n
