"""Hand-made transactional histories for the transactional checker's unit tests: rows of
``(process, outcome, mops)``, run one after another or all at once, and the micro-ops."""

from __future__ import annotations

from typing import Any

from harness.history import History

Mop = list[Any]
Row = tuple[int, str, list[Mop]]


def txn_ops(rows: tuple[Row, ...], serial: bool) -> list[dict[str, Any]]:
    """The ops of ``rows``: each invocation then its completion (``serial``), or every
    invocation, then every completion."""
    invs = []
    for p, _typ, mops in rows:
        inv = [[f, k, None if f == "r" else v] for f, k, v in mops]
        invs.append({"process": p, "type": "invoke", "f": "txn", "value": inv})
    oks = [{"process": p, "type": typ, "f": "txn", "value": mops} for p, typ, mops in rows]
    if not serial:
        return invs + oks
    return [op for pair in zip(invs, oks, strict=True) for op in pair]


def serial(*rows: Row) -> History:
    """(process, outcome, mops) transactions, each completing before the next is invoked:
    transaction ``i`` is row ``i``, its completion the history's op ``2 i + 1``."""
    return History.from_ops(txn_ops(rows, True))


def concurrent(*rows: Row) -> History:
    """Every transaction invoked before any completes: transaction ``i`` is row ``i``, its
    completion the history's op ``len(rows) + i``."""
    return History.from_ops(txn_ops(rows, False))


def R(k: Any, v: Any = None) -> Mop:
    """A read of key ``k`` (that saw ``v``)."""
    return ["r", k, v]


def W(k: Any, v: Any) -> Mop:
    """A write of ``v`` to key ``k``."""
    return ["w", k, v]


def A(k: Any, v: Any) -> Mop:
    """An append of ``v`` to key ``k``'s list."""
    return ["append", k, v]
