"""Logical operations (an invocation with its outcome) extracted from a history.

This is the one place where Jepsen's op semantics become call records: every client
invocation becomes a call with the position of its invoke, the position of its completion
(or -1 when the history ended first), its outcome (ok / fail / info; a missing completion
counts as info) and both values. Models decide what each outcome means for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.history import FAIL, INFO, OK, History

__all__ = ["FAIL", "INFO", "OK", "Calls", "extract_calls"]


@dataclass(frozen=True, slots=True)
class Calls:
    """Columns of the client calls of a history, in invocation order.

    ``pos``/``ret`` are history positions of the invoke and the completion (-1: none).
    ``status`` is OK, FAIL or INFO (INFO also for a call that never completed). ``f``,
    ``vin``, ``vout`` and ``key`` are ids into the history's tables; ``vout`` and ``key``
    are -1 when absent.
    """

    history: History
    pos: npt.NDArray[np.int64]
    ret: npt.NDArray[np.int64]
    status: npt.NDArray[np.int8]
    f: npt.NDArray[np.int32]
    vin: npt.NDArray[np.int32]
    vout: npt.NDArray[np.int32]
    key: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return len(self.pos)

    def f_name(self, i: int) -> str:
        """The operation name of call ``i``."""
        return self.history.f_names[self.f[i]]

    def input(self, i: int) -> Any:
        """The invocation's value of call ``i``."""
        return self.history.values[self.vin[i]]

    def output(self, i: int) -> Any:
        """The completion's value of call ``i`` (``None`` when it never completed)."""
        v = int(self.vout[i])
        return None if v < 0 else self.history.values[v]

    def key_value(self, i: int) -> Any:
        """The key of call ``i``, or ``None``."""
        k = int(self.key[i])
        return None if k < 0 else self.history.keys[k]

    def ref_args(self, i: int) -> tuple[str, int, Any, Any]:
        """``(f, status, input, output)`` as a model's reference step takes them."""
        return self.f_name(i), int(self.status[i]), self.input(i), self.output(i)


def extract_calls(history: History) -> Calls:
    """All client calls of ``history`` (nemesis and other named processes are skipped)."""
    inv = history.client_invokes()
    ret = history.pair[inv]
    has_ret = ret >= 0
    comp = np.where(has_ret, ret, inv)
    status = np.where(has_ret, history.type[comp], INFO).astype(np.int8)
    return Calls(
        history=history,
        pos=inv,
        ret=np.where(has_ret, ret, -1),
        status=status,
        f=history.f[inv],
        vin=history.value[inv],
        vout=np.where(has_ret, history.value[comp], -1).astype(np.int32),
        key=history.key[inv],
    )
