"""The bank checker: do reads of every account always add up to the same total?

A *bank* workload moves money between accounts (``{"f": "transfer", "value": {"from": a,
"to": b, "amount": n}}``) and reads every balance at once (``{"f": "read"}`` completing
with ``{account: balance, ...}``). Transfers conserve money, so under snapshot isolation
or stronger every ``ok`` read must show the same total. Jepsen's bank checker, per read:

* **unexpected-key** — an account that is not one of the accounts;
* **nil-balance** — an account whose balance is nil (a row that vanished);
* **wrong-total** — balances that do not add up to the total;
* **negative-value** — a negative balance, unless ``negative_balances=True``.

``accounts`` and ``total`` default, as in Jepsen (and elle-cli), to the accounts and the
sum of the first ``ok`` read. Account names are compared as strings, so a JSON history
(whose object keys are strings) and an EDN one (integer keys) check alike. Balances that
are floats round at every transfer (0.3 + 0.3 reads back as 0.2 + 0.4 =
0.6000000000000001), so with a float balance a total, or a balance's sign, is judged up
to the rounding the transfers so far and the sum may make (:func:`float_slack`).

The result lists each error type with its count and first, worst and last examples, and
``totals``: ``[time_ns, total, index]`` of every ``ok`` read (at most
:data:`MAX_SERIES_POINTS`, evenly thinned, always keeping wrong ones) for the plot of the
total over time. Valid iff there is no error; ``"unknown"`` when no read completed.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable
from numbers import Number
from typing import Any

import numpy as np

from checkers.collections._budget import Budget, Meter
from checkers.collections._ops import MAX_LISTED, client_ops
from checkers.result import UNKNOWN, Result
from harness.errors import HistoryError
from harness.history import INVOKE, OK, History

__all__ = ["ERROR_TYPES", "MAX_SERIES_POINTS", "check", "float_slack"]


def float_slack(balances: list[Any], expected: Any, transfers: int) -> float:
    """How far a read's float balances may be off by rounding alone (0 when none of
    ``balances`` and ``expected`` is a float): each of the ``transfers`` invoked before
    the read, and each term of the read's sum, may round by an ε of the largest sum, so
    2 · (transfers + terms) · ε · max(Σ|balance|, |expected|)."""
    if not any(isinstance(v, float) for v in [*balances, expected]):
        return 0.0
    try:
        scale = max(float(sum(abs(v) for v in balances)), abs(float(expected)))
    except (TypeError, OverflowError):  # (not a number, or past a float: no slack)
        return 0.0
    if not math.isfinite(scale):  # (an infinite or NaN balance: nothing is forgiven)
        return 0.0
    return 2 * (transfers + len(balances)) * sys.float_info.epsilon * scale


#: The kinds of error, in Jepsen's order of precedence.
ERROR_TYPES = ("unexpected-key", "nil-balance", "wrong-total", "negative-value")
#: Most points of the total-over-time series kept in the result.
MAX_SERIES_POINTS = 2000


def _balances(history: History, pos: int) -> dict[str, Any]:
    value = history.value_of(pos)
    if not isinstance(value, dict):
        raise HistoryError(
            f"a bank read must complete with a map of account to balance, got {value!r} "
            f"(op index {int(history.index[pos])})",
            path=history.path,
            line=int(history.line[pos]),
        )
    out: dict[str, Any] = {}
    for k, v in value.items():
        if v is not None and (not isinstance(v, Number) or isinstance(v, bool)):
            raise HistoryError(
                f"balance of account {k!r} is {v!r}, not a number "
                f"(op index {int(history.index[pos])})",
                path=history.path,
                line=int(history.line[pos]),
            )
        out[str(k)] = v
    return out


def _badness(error: dict[str, Any], total: float) -> float:
    kind = error["type"]
    if kind == "unexpected-key":
        return len(error["unexpected"])
    if kind == "nil-balance":
        return len(error["nils"])
    if kind == "wrong-total":
        return abs(error["total"] - total) / total if total > 0 else abs(error["total"] - total)
    return -sum(error["negative"])


def check(
    history: History,
    *,
    accounts: Iterable[Any] | None = None,
    total: float | None = None,
    negative_balances: bool = False,
    budget: Budget | None = None,
) -> Result:
    """Check a bank history (see the module docstring); a pure function of ``history``.
    ``budget``: the time and memory it may take (raises
    :class:`~checkers.txn.budget.OutOfBudget` when spent; see
    :func:`checkers.collections.check_within`).

    Raises :class:`HistoryError` naming the line when a read's value is not a map of
    numbers.
    """
    t0 = time.perf_counter()
    reads = [i for i in client_ops(history, "read") if history.type[i] == OK]
    if not reads:
        return Result(
            valid=UNKNOWN,
            checker="bank",
            cause="no read completed, so no total can be judged",
            seconds=time.perf_counter() - t0,
            details={"read_count": 0},
        )
    first = _balances(history, reads[0])
    accts = {str(a) for a in accounts} if accounts is not None else set(first)
    expected = total if total is not None else sum(v for v in first.values() if v is not None)

    errors: dict[str, list[dict[str, Any]]] = {t: [] for t in ERROR_TYPES}
    series: list[list[Any]] = []
    meter = Meter(budget, "bank")
    transfer_f = history.f_code("transfer")
    transfers = np.flatnonzero((history.f == transfer_f) & (history.type == INVOKE))
    for pos in reads:
        balances = _balances(history, pos)
        meter.add(1 + len(balances))
        idx = int(history.index[pos])
        present = [v for v in balances.values() if v is not None]
        read_total = sum(present)
        series.append([int(history.time[pos]), read_total, idx])
        unexpected = sorted(k for k in balances if k not in accts)
        if unexpected:
            errors["unexpected-key"].append(
                {"type": "unexpected-key", "index": idx, "unexpected": unexpected}
            )
        nils = sorted(k for k, v in balances.items() if v is None)
        if nils:
            errors["nil-balance"].append({"type": "nil-balance", "index": idx, "nils": nils})
        slack = float_slack(present, expected, int(np.searchsorted(transfers, pos)))
        if read_total != expected and not (slack and abs(read_total - expected) <= slack):
            errors["wrong-total"].append(
                {"type": "wrong-total", "index": idx, "total": read_total, "balances": balances}
            )
        negative = [v for v in present if v < -slack]
        if negative and not negative_balances:
            errors["negative-value"].append(
                {"type": "negative-value", "index": idx, "negative": negative, "balances": balances}
            )

    summary: dict[str, Any] = {}
    for kind, errs in errors.items():
        if not errs:
            continue
        entry: dict[str, Any] = {
            "count": len(errs),
            "first": errs[0],
            "worst": max(errs, key=lambda e: _badness(e, expected)),
            "last": errs[-1],
        }
        if kind == "wrong-total":
            entry["lowest"] = min(errs, key=lambda e: e["total"])
            entry["highest"] = max(errs, key=lambda e: e["total"])
        summary[kind] = entry
    causes = [f"{v['count']} read(s) with {k}" for k, v in summary.items()]
    wrong = {e["index"] for e in errors["wrong-total"]}
    return Result(
        valid=not summary,
        checker="bank",
        cause="; ".join(causes) or None,
        seconds=time.perf_counter() - t0,
        details={
            "read_count": len(reads),
            "accounts": sorted(accts)[:MAX_LISTED],
            "total": expected,
            "negative_balances_allowed": negative_balances,
            "error_count": sum(len(e) for e in errors.values()),
            "first_error": min(
                (v["first"] for v in summary.values()), key=lambda e: e["index"], default=None
            ),
            "errors": summary,
            "totals": _thin(series, wrong),
        },
    )


def _thin(series: list[list[Any]], keep: set[int]) -> list[list[Any]]:
    """At most about :data:`MAX_SERIES_POINTS` points, evenly spaced, plus every point whose
    index is in ``keep`` (up to the same bound again)."""
    if len(series) <= MAX_SERIES_POINTS:
        return series
    step = len(series) / MAX_SERIES_POINTS
    chosen = {int(k * step) for k in range(MAX_SERIES_POINTS)}
    kept = [i for i, p in enumerate(series) if p[2] in keep][:MAX_SERIES_POINTS]
    return [series[i] for i in sorted(chosen.union(kept))]
