"""Explaining an invalid verdict: the longest linearizable prefix and what could not follow.

Built from a second, recording pass of the search over the failing partition only (with its
own budget), then replayed with the model's plain-Python reference so that every state in
the explanation is computed by the obviously-right code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from checkers.linear.calls import FAIL, INFO, OK, Calls
from checkers.linear.models import Model
from checkers.linear.prepare import Partition
from harness.history import History

__all__ = ["build_counterexample", "call_json", "calls_json", "describe_call", "summarize"]

_STATUS = {OK: "ok", FAIL: "fail", INFO: "info"}
#: Most ops of the failing partition copied into the counterexample for drawing.
MAX_WINDOW_OPS = 400


def call_json(history: History, calls: Calls, i: int) -> dict[str, Any]:
    """One call as plain data for reports: history indices, times, values, outcome."""
    return calls_json(history, calls, [i])[0]


def calls_json(history: History, calls: Calls, which: Sequence[int]) -> list[dict[str, Any]]:
    """:func:`call_json` of each call in ``which``, in that order (the columns are read
    once for all of them)."""
    idx = np.asarray(which, dtype=np.int64)
    pos, ret = calls.pos[idx], calls.ret[idx]
    done = np.maximum(ret, 0)
    columns = zip(
        pos.tolist(), ret.tolist(), calls.status[idx].tolist(),
        history.index[pos].tolist(), history.line[pos].tolist(), history.time[pos].tolist(),
        history.index[done].tolist(), history.time[done].tolist(),
        history.process[pos].tolist(), calls.f[idx].tolist(), calls.vin[idx].tolist(),
        calls.vout[idx].tolist(), calls.key[idx].tolist(),
        strict=True,
    )  # fmt: skip
    values, keys, f_names, names = (
        history.values,
        history.keys,
        history.f_names,
        history.process_names,
    )
    out = []
    for p, r, status, index, line, time, r_index, r_time, proc, f, vin, vout, key in columns:
        out.append(
            {
                "index": index,
                "process": proc if proc >= 0 else names.get(proc, str(proc)),
                "f": f_names[f],
                "value": values[vin],
                "output": None if vout < 0 else values[vout],
                "type": _STATUS[status] if r >= 0 else "pending",
                "key": None if key < 0 else keys[key],
                "invoke_line": line,
                "invoke_time": time,
                "complete_index": r_index if r >= 0 else None,
                "complete_time": r_time if r >= 0 else None,
                "call": p,
                "return": r,
            }
        )
    return out


def _json_state(model: Model, state: Any) -> Any:
    if isinstance(state, dict):
        return {str(k): model.describe_state(v) for k, v in state.items()}
    return model.describe_state(state)


def build_counterexample(
    history: History, calls: Calls, model: Model, part: Partition, prefix: list[int]
) -> dict[str, Any]:
    """The explanation of why ``part`` is not linearizable, as JSON-ready data.

    ``prefix`` is the longest linearizable prefix the search found (partition op ids, in
    linearization order).
    """
    multi = part.key is None and bool(np.any(calls.key[part.calls] >= 0))
    states: dict[Any, Any] = {}

    def key_of(i: int) -> Any:
        return calls.key_value(i) if multi else None

    def state_of(i: int) -> Any:
        k = key_of(i)
        if k not in states:
            states[k] = model.ref_init()
        return states[k]

    def step(i: int, state: Any) -> tuple[bool, Any]:
        return model.ref_step(state, *calls.ref_args(i))

    linearized = []
    prefix_calls = [int(part.calls[op]) for op in prefix]
    for i, op_json in zip(prefix_calls, calls_json(history, calls, prefix_calls), strict=True):
        before = state_of(i)
        legal, after = step(i, before)
        states[key_of(i)] = after
        linearized.append(
            {
                "op": op_json,
                "legal": legal,
                "state_before": _json_state(model, before),
                "state_after": _json_state(model, after),
            }
        )
    done = set(prefix)
    remaining = [op for op in range(part.size) if op not in done]
    required = [op for op in remaining if not part.optional[op]]
    stuck: list[dict[str, Any]] = []
    deadline: dict[str, Any] | None = None
    if required:
        d = min(required, key=lambda op: int(calls.ret[part.calls[op]]))
        d_ret = int(calls.ret[part.calls[d]])
        deadline = call_json(history, calls, int(part.calls[d]))
        for op in remaining:
            i = int(part.calls[op])
            if calls.pos[i] >= d_ret:
                continue
            before = state_of(i)
            legal, after = step(i, before)
            stuck.append(
                {
                    "op": call_json(history, calls, i),
                    "legal": legal,
                    "why": (
                        "legal here, but no order of the remaining ops works after it"
                        if legal
                        else "illegal in this state"
                    ),
                    "state_after": _json_state(model, after) if legal else None,
                }
            )
    window = part.calls
    if len(window) > MAX_WINDOW_OPS:  # the ops around the prefix's end, by invocation
        lo = max(0, len(prefix) - MAX_WINDOW_OPS // 2)
        window = window[np.argsort(calls.pos[window], kind="stable")][lo : lo + MAX_WINDOW_OPS]
    ops = calls_json(history, calls, window.tolist())
    final = dict(states) if multi else states.get(None, model.ref_init())
    return {
        "model": model.name,
        "key": part.key,
        "linearized": linearized,
        "state": _json_state(model, final),
        "deadline_op": deadline,
        "could_not_follow": stuck,
        "ops": ops,
        "ops_total": part.size,
    }


#: Longest value shown in a one-line summary; longer ones are abbreviated.
SUMMARY_VALUE_CHARS = 48


def _short(value: Any) -> str:
    text = repr(value)
    if len(text) <= SUMMARY_VALUE_CHARS:
        return text
    keep = SUMMARY_VALUE_CHARS // 2 - 2
    return f"{text[:keep]}…{text[-keep:]} ({len(text)} chars)"


def describe_call(op: dict[str, Any]) -> str:
    """A call as people write it: ``write 3``, ``read -> 2``, ``cas [1, 2] (failed)``."""
    text = op["f"] if op["value"] is None else f"{op['f']} {_short(op['value'])}"
    reads = op["value"] is None  # an observation: its output is what matters, even nil
    if op["type"] == "ok" and (reads or op["output"] is not None) and op["output"] != op["value"]:
        text += f" -> {_short(op['output'])}"
    elif op["type"] == "ok" and reads:
        text += " -> None"
    elif op["type"] != "ok":
        text += {"fail": " (failed)", "info": " (outcome unknown)", "pending": " (pending)"}[
            op["type"]
        ]
    return text


def summarize(cex: dict[str, Any]) -> str:
    """One line for people: which op could not be linearized, and in what state."""
    d = cex.get("deadline_op")
    n = len(cex["linearized"])
    key = "" if cex.get("key") is None else f"key {cex['key']!r}: "
    if d is None:
        return f"{key}no linearization found after {n} ops"
    return (
        f"{key}after linearizing {n} ops (state {_short(cex['state'])}), op #{d['index']} "
        f"(process {d['process']}: {describe_call(d)}, line {d['invoke_line']}) could not be "
        "linearized"
    )
