"""The counter checker: is every read between what surely happened and what might have?

A *counter* workload adds integers (``{"f": "add", "value": n}``) to one counter that
starts at 0, and reads it (``{"f": "read"}`` completing with the value). Jepsen's counter
checker, generalised to decrements. For a read invoked at *i* and completed at *c*:

* an add that completed ``ok`` before *i* surely counts;
* an add invoked before *c* that did not ``fail`` may count (it is concurrent with the
  read, or its outcome is unknown);
* anything else cannot count.

So the read must lie in ``[lower, upper]`` where ``lower`` = sure adds + the negative
possible ones and ``upper`` = sure adds + the positive possible ones. With only
non-negative adds this is exactly Jepsen's bound (sum of ok adds before the read began;
sum of non-failed adds invoked before it ended). A read without a numeric value is an
input error. Once a float was added or read, the bounds are widened by the rounding
error that summing the adds may make (the database's order and ours differ: 0.3 + 0.2 +
0.1 is 0.6000000000000001, 0.1 + 0.2 + 0.3 is 0.6): 2 · n · ε · Σ|add| for n adds so far.

Result: ``reads`` (``[lower, value, upper, index]``, at most :data:`MAX_LISTED_READS`),
``errors`` (the reads out of bounds, at most as many), ``error_count``, ``read_count``.
Valid iff no read is out of bounds (as in Jepsen, a history without reads is valid:
nothing contradicts it; ``read_count`` says so).
"""

from __future__ import annotations

import math
import sys
import time
from fractions import Fraction
from numbers import Number
from typing import Any

from checkers.collections._budget import Budget, Meter
from checkers.collections._ops import client_ops
from checkers.result import Result
from harness.errors import HistoryError
from harness.history import FAIL, INVOKE, OK, History

__all__ = ["MAX_LISTED_READS", "check"]

#: Most reads (and, separately, errors) listed in the result; counts are exact.
MAX_LISTED_READS = 1000


def _number(history: History, pos: int, what: str) -> Any:
    v = history.value_of(pos)
    if not isinstance(v, Number) or isinstance(v, bool):
        raise HistoryError(
            f"a counter {what} needs a number, got {v!r} (op index {int(history.index[pos])})",
            path=history.path,
            line=int(history.line[pos]),
        )
    return v


def _slack(terms: int, magnitude: Any) -> float:
    """2 · n · ε · Σ|add|: how far summing ``terms`` float adds of total magnitude
    ``magnitude`` in two orders may round apart; 0 when that is not a finite float (sums
    past a float's range: then nothing is rounded away, and nothing is forgiven)."""
    try:
        slack = 2 * terms * sys.float_info.epsilon * float(magnitude)
    except OverflowError:
        return 0.0
    return slack if math.isfinite(slack) else 0.0


def _within(lower: Any, value: Any, upper: Any, slack: float) -> bool:
    """``lower - slack <= value <= upper + slack``, exactly (as fractions) where an integer
    is past a float's range; a NaN is within nothing."""
    try:
        return bool(lower - slack <= value <= upper + slack)
    except OverflowError:
        exact = [Fraction(x) for x in (lower, value, upper, slack)]
        return exact[0] - exact[3] <= exact[1] <= exact[2] + exact[3]


def check(history: History, *, budget: Budget | None = None) -> Result:
    """Check a counter history (see the module docstring); a pure function of ``history``.
    ``budget``: the time and memory it may take (raises
    :class:`~checkers.txn.budget.OutOfBudget` when spent; see
    :func:`checkers.collections.check_within`).

    Raises :class:`HistoryError` naming the line for an add or ok read without a number.
    """
    t0 = time.perf_counter()
    sure_pos = sure_neg = 0  # ok adds completed so far, split by sign
    maybe_pos = maybe_neg = 0  # non-failed adds invoked so far, split by sign
    magnitude: Any = 0  # Σ|add| of the adds so far (an int while they are ints)
    terms, floats = 0, False  # how many adds; was any add or read a float?
    at_invoke: dict[int, tuple[Any, Any]] = {}  # read invoke position -> (sure_pos, sure_neg)
    reads: list[list[Any]] = []
    errors: list[list[Any]] = []
    read_count = error_count = 0
    add_f = history.f_code("add")
    meter = Meter(budget, "counter")
    pos = -1
    try:
        for pos in client_ops(history, "add", "read"):
            meter.add()
            t = int(history.type[pos])
            if history.f[pos] == add_f:
                if t == INVOKE:
                    j = int(history.pair[pos])
                    if j < 0 or history.type[j] != FAIL:
                        v = _number(history, pos, "add")
                        terms += 1
                        magnitude += abs(v)
                        floats = floats or isinstance(v, float)
                        if v >= 0:
                            maybe_pos += v
                        else:
                            maybe_neg += v
                elif t == OK:
                    v = _number(history, int(history.pair[pos]), "add")
                    if v >= 0:
                        sure_pos += v
                    else:
                        sure_neg += v
                continue
            if t == INVOKE:
                at_invoke[pos] = (sure_pos, sure_neg)
            elif t == OK:
                inv = int(history.pair[pos])
                s_pos, s_neg = at_invoke.pop(inv)
                lower, upper = s_pos + maybe_neg, s_neg + maybe_pos
                value = _number(history, pos, "read")
                floats = floats or isinstance(value, float)
                # (what summing floats in another order may round differently: see above)
                slack = _slack(terms, magnitude) if floats else 0
                entry = [lower, value, upper, int(history.index[pos])]
                read_count += 1
                if len(reads) < MAX_LISTED_READS:
                    reads.append(entry)
                if not _within(lower, value, upper, slack):
                    error_count += 1
                    if len(errors) < MAX_LISTED_READS:
                        errors.append(entry)
            else:
                at_invoke.pop(int(history.pair[pos]), None)
    except OverflowError:  # (an integer past a float's range met a float)
        raise HistoryError(
            f"counter adds past a float's range (about 1.8e308) mixed with float adds "
            f"cannot be summed (op index {int(history.index[pos])})",
            path=history.path,
            line=int(history.line[pos]),
        ) from None
    details = {
        "read_count": read_count,
        "error_count": error_count,
        "reads": reads,
        "errors": errors,
    }
    cause = None
    if error_count:
        lo, v, up, idx = errors[0]
        cause = (
            f"{error_count} read(s) outside the possible range; first: op {idx} read {v}, "
            f"possible {lo}..{up}"
        )
    return Result(
        valid=error_count == 0,
        checker="counter",
        cause=cause,
        seconds=time.perf_counter() - t0,
        details=details,
    )
