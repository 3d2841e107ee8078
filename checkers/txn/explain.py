"""Explanations of cycles for people: "T1 < T2 because …; T2 < T1 because …"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checkers.txn.analysis import Step
from checkers.txn.cycles import Cycle
from checkers.txn.graph import PROCESS, REALTIME, REL_NAMES
from checkers.txn.parse import Txns

__all__ = ["MAX_TXN_CHARS", "explain_cycle", "unexplained_cycle"]

#: The most characters of one transaction an explanation's "Let:" line shows (the record's
#: ``cycle`` names the ops, which the history holds whole).
MAX_TXN_CHARS = 1_000


def _txn_line(text: str) -> str:
    if len(text) <= MAX_TXN_CHARS:
        return text
    return f"{text[: MAX_TXN_CHARS - 1]}… ({len(text) - MAX_TXN_CHARS + 1:,} more characters)"


def _order_step(tx: Txns, a: int, b: int, rel: int) -> Step:
    h = tx.history
    if rel == PROCESS:
        p = h.process_label(tx.op_position(a))
        return {"type": "process", "text": f"process {p} executed {{a}} before {{b}}"}
    ca, ib = int(tx.cmp[a]), int(tx.inv[b])
    secs = (int(h.time[ib]) - int(h.time[ca])) / 1e9
    return {
        "type": "realtime",
        "text": f"{{a}} completed at index {int(h.index[ca])}, {secs:.3f} seconds before the "
        f"invocation of {{b}}, at index {int(h.index[ib])}",
    }


def _before(tx: Txns, a: int, b: int) -> bool:
    """Whether ``a`` completed before ``b`` was invoked."""
    return bool(tx.inv[b] >= 0 and tx.cmp[a] < tx.inv[b])


def explain_cycle(
    tx: Txns, cycle: Cycle, explain: Callable[[int, int, int], Step | None], number: int
) -> dict[str, Any]:
    """A JSON-able record of ``cycle`` with its steps and a text explanation."""
    h = tx.history
    vs = cycle.vertices
    names = {v: f"T{i + 1}" for i, v in enumerate(dict.fromkeys(vs))}
    steps: list[Step] = []
    lines = [f"{cycle.name} #{number}", "Let:"]
    for v, name in names.items():
        lines.append(f"  {name} = {_txn_line(h.describe(tx.op_position(v)))}")
    lines.append("Then:")
    n = len(vs)
    for i in range(n):
        a, b, rel = vs[i], vs[(i + 1) % n], cycle.rels[i]
        if rel == REALTIME and not _before(tx, a, b):  # a version order strictness implies
            st = explain(a, b, rel)
        elif rel in (PROCESS, REALTIME):
            st = _order_step(tx, a, b, rel)
        else:
            st = explain(a, b, rel)
        if st is None:
            st = {"type": REL_NAMES[rel], "text": f"{{a}} precedes {{b}} by {REL_NAMES[rel]}"}
        st = {**st, "from": int(h.index[tx.op_position(a)]), "to": int(h.index[tx.op_position(b)])}
        text = st["text"].format(a=names[a], b=names[b])
        st["text"] = text
        steps.append(st)
        lead = "However, " if i == n - 1 and n > 1 else ""
        end = ": a contradiction!" if i == n - 1 else ";"
        lines.append(f"  - {lead}{names[a]} < {names[b]}, because {text}{end}")
    return {
        "type": cycle.name,
        "cycle": [int(h.index[tx.op_position(v)]) for v in [*vs, vs[0]]],
        "steps": steps,
        "explanation": "\n".join(lines),
    }


def unexplained_cycle(tx: Txns, cycle: Cycle, number: int, why: str) -> dict[str, Any]:
    """The record of ``cycle`` as :func:`explain_cycle` makes it, with no steps: the ops
    of the cycle and ``why`` it was not explained (the check ran out of its budget)."""
    h = tx.history
    vs = cycle.vertices
    ops = [int(h.index[tx.op_position(v)]) for v in [*vs, vs[0]]]
    rec: dict[str, Any] = {
        "type": cycle.name,
        "cycle": ops,
        "steps": [],
        "explanation": f"{cycle.name} #{number}: ops {', '.join(map(str, ops))}; not "
                       f"explained ({why})",
    }  # fmt: skip
    # a real-time edge between transactions that overlap is a version order that strict
    # serializability implies (explained, its step says so): the cycle assumes it
    n = len(vs)
    if any(cycle.rels[i] == REALTIME and not _before(tx, vs[i], vs[(i + 1) % n])
           for i in range(n)):  # fmt: skip
        rec["assumes"] = "strict-serializable"
    return rec
