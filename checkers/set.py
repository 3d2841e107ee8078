"""The set checker: were acknowledged adds lost, did elements appear from nowhere?

A *set* workload adds unique elements (``{"f": "add", "value": x}``) and ends with final
reads (``{"f": "read"}`` whose completion's value is every element). The checker looks at
the **final read**: the last ``ok`` read in the history. Jepsen's ``set`` checker, with one
refinement for time:

* **lost** — adds that completed ``ok`` *before the final read was invoked* and are
  missing from it. (An add's element is its invocation's value, whatever its completion
  carries.) (An add still running when the final read began may legitimately be
  absent.)
* **unexpected** — elements in the final read that no add ever attempted.
* **recovered** — adds with an unknown outcome (``info``, or never completed) that are in
  the final read: they did happen. Informational, not an error.
* ``fail`` adds definitely did not happen; one present in the final read is reported as
  **failed_but_present** and makes the history invalid too.

Valid iff nothing is lost, unexpected or failed-but-present; ``"unknown"`` when there was
no ``ok`` read at all (nothing to judge by).
"""

from __future__ import annotations

import time
from typing import Any

from checkers.collections._budget import Budget, Meter
from checkers.result import UNKNOWN, Result
from harness.errors import HistoryError
from harness.history import FAIL, INFO, INVOKE, OK, History

__all__ = ["MAX_LISTED", "check"]

#: At most this many elements are listed per category in the result (counts are exact).
MAX_LISTED = 1000


def _element(history: History, i: int, value: Any) -> Any:
    """``value``, an element of the set added or read by op ``i``; :class:`HistoryError`
    naming the op's file and line if it is a list or a map (no element clew adds is)."""
    if isinstance(value, list | dict):
        raise HistoryError(f"a set element must be a number or a string, got {value!r}",
                           path=history.path, line=int(history.line[i]))  # fmt: skip
    return value


def _listed(xs: set[Any]) -> list[Any]:
    return sorted(xs, key=lambda x: (type(x).__name__, x))[:MAX_LISTED]


def check(history: History, *, budget: Budget | None = None) -> Result:
    """Check a set history (see the module docstring); a pure function of ``history``.
    ``budget``: the time and memory it may take (raises
    :class:`~checkers.txn.budget.OutOfBudget` when spent)."""
    t0 = time.perf_counter()
    meter = Meter(budget, "set")
    add_f, read_f = history.f_code("add"), history.f_code("read")
    clients = history.process >= 0
    final: int | None = None  # position of the final ok read's completion
    if read_f >= 0:
        for i in range(len(history) - 1, -1, -1):
            if clients[i] and history.f[i] == read_f and history.type[i] == OK:
                final = i
                break

    attempted: set[Any] = set()
    acknowledged: set[Any] = set()  # ok adds completed before the final read was invoked
    late: set[Any] = set()  # ok adds completed after that: may be absent
    failed: set[Any] = set()
    unknown: set[Any] = set()
    final_invoke = int(history.pair[final]) if final is not None else len(history)
    if add_f >= 0:
        for i in range(len(history)):
            meter.add()
            if not clients[i] or history.f[i] != add_f:
                continue
            t = history.type[i]
            # A completion's element is its invocation's: some clients complete an add
            # with no value (null), which read as an add of None, "lost".
            j = i if t == INVOKE or history.pair[i] < 0 else int(history.pair[i])
            value = _element(history, j, history.value_of(j))
            if t == INVOKE:
                attempted.add(value)
                if history.pair[i] < 0:  # never completed: unknown outcome
                    unknown.add(value)
            elif t == OK:
                (acknowledged if i < final_invoke else late).add(value)
            elif t == FAIL:
                failed.add(value)
            elif t == INFO:
                unknown.add(value)

    counts: dict[str, Any] = {
        "attempt_count": len(attempted),
        "acknowledged_count": len(acknowledged) + len(late),
        "fail_count": len(failed),
        "info_count": len(unknown),
    }
    if final is None:
        return Result(
            valid=UNKNOWN,
            checker="set",
            cause="no final read completed, so nothing can be said about the adds",
            seconds=time.perf_counter() - t0,
            details=counts,
        )

    read = history.value_of(final)
    items = read if isinstance(read, list | tuple) else ()
    present = {_element(history, final, x) for x in items}
    lost = acknowledged - present
    unexpected = present - attempted
    recovered = unknown & present
    failed_present = (failed & present) - acknowledged - late
    causes = []
    if lost:
        causes.append(f"{len(lost)} acknowledged add(s) missing from the final read")
    if unexpected:
        causes.append(f"{len(unexpected)} element(s) read that were never added")
    if failed_present:
        causes.append(f"{len(failed_present)} failed add(s) present in the final read")
    return Result(
        valid=not causes,
        checker="set",
        cause="; ".join(causes) or None,
        seconds=time.perf_counter() - t0,
        details={
            **counts,
            "final_read_index": int(history.index[final]),
            "read_count": len(present),
            "ok_count": len(present & attempted),
            "lost_count": len(lost),
            "lost": _listed(lost),
            "unexpected_count": len(unexpected),
            "unexpected": _listed(unexpected),
            "recovered_count": len(recovered),
            "recovered": _listed(recovered),
            "failed_but_present": _listed(failed_present),
        },
    )
