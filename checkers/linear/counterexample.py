"""Explaining an invalid verdict: the longest linearizable prefix and what could not follow.

Built from a second, recording pass of the search over the failing partition only (with its
own budget), then replayed with the model's plain-Python reference so that every state in
the explanation is computed by the obviously-right code.
"""

from __future__ import annotations

import json
import time
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
    for p, r, status, index, line, t_inv, r_index, r_time, proc, f, vin, vout, key in columns:
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
                "invoke_time": t_inv,
                "complete_index": r_index if r >= 0 else None,
                "complete_time": r_time if r >= 0 else None,
                "call": p,
                "return": r,
            }
        )
    return out


#: The linearized steps a counterexample describes, the last of the prefix (what a report
#: shows; ``linearized_total`` counts them all), and the most ops it lists that could not
#: follow: a state can be as large as the history, so describing each was quadratic.
MAX_PREFIX_STEPS = 200
MAX_STUCK = 200
#: A state described in more characters than this is kept as abbreviated JSON text.
MAX_STATE_CHARS = 2_000
#: Model steps between two looks at the clock.
_CLOCK_EVERY = 64


class _Abbreviated(str):
    """A state's JSON text, abbreviated in the middle (a plain string in results.json)."""


def _json_state(model: Model, state: Any) -> Any:
    if isinstance(state, dict):
        described = {str(k): model.describe_state(v) for k, v in state.items()}
    else:
        described = model.describe_state(state)
    text = json.dumps(described, ensure_ascii=False, separators=(",", ":"), default=repr)
    if len(text) <= MAX_STATE_CHARS:
        return described
    keep = MAX_STATE_CHARS // 2 - 2
    return _Abbreviated(f"{text[:keep]}…{text[-keep:]} ({len(text):,} chars)")


class _OutOfTime(Exception):
    pass


def build_counterexample(
    history: History,
    calls: Calls,
    model: Model,
    part: Partition,
    prefix: list[int],
    *,
    deadline: float | None = None,
) -> dict[str, Any]:
    """The explanation of why ``part`` is not linearizable, as JSON-ready data.

    ``prefix`` is the longest linearizable prefix the search found (partition op ids, in
    linearization order); the last :data:`MAX_PREFIX_STEPS` of it are described, each with
    the states before and after it (``linearized_total`` and ``linearized_offset`` say how
    many there are and where the described ones start). States longer than
    :data:`MAX_STATE_CHARS` are abbreviated. Past ``deadline`` (a ``time.perf_counter()``)
    it stops and returns what it has, with ``incomplete`` saying where it stopped.
    """
    multi = part.key is None and bool(np.any(calls.key[part.calls] >= 0))
    states: dict[Any, Any] = {}
    described: dict[Any, tuple[Any, Any]] = {}  # key -> (its last state, description)
    steps = done_work = 0

    def key_of(i: int) -> Any:
        return calls.key_value(i) if multi else None

    def state_of(i: int) -> Any:
        k = key_of(i)
        if k not in states:
            states[k] = model.ref_init()
        return states[k]

    def tick(work: int) -> None:
        nonlocal done_work
        done_work += work
        if deadline is not None and done_work >= _CLOCK_EVERY:
            done_work = 0
            if time.perf_counter() > deadline:
                raise _OutOfTime

    def step(i: int, state: Any) -> tuple[bool, Any]:
        nonlocal steps
        steps += 1
        tick(1)
        return model.ref_step(state, *calls.ref_args(i))

    def fresh(state: Any) -> Any:
        tick(_CLOCK_EVERY // 4)  # a description costs as much as many steps
        return _json_state(model, state)

    def describe(state: Any, key: Any) -> Any:
        # a key's state after one step is its state before the next: described once
        got = described.get(key)
        if got is None or got[0] is not state:
            got = described[key] = (state, fresh(state))
        return got[1]

    linearized: list[dict[str, Any]] = []
    prefix_calls = [int(part.calls[op]) for op in prefix]
    first = max(0, len(prefix_calls) - MAX_PREFIX_STEPS)
    stuck: list[dict[str, Any]] = []
    stuck_total = 0
    done = set(prefix)
    remaining = [op for op in range(part.size) if op not in done]
    required = [op for op in remaining if not part.optional[op]]
    deadline_op: dict[str, Any] | None = None
    d_ret = -1
    if required:  # the op that had to be linearized first and could not be
        d = min(required, key=lambda op: int(calls.ret[part.calls[op]]))
        d_ret = int(calls.ret[part.calls[d]])
        deadline_op = call_json(history, calls, int(part.calls[d]))
    incomplete = None
    whole_prefix = False  # the final state is known
    try:
        if model.ref_replay is None:
            for i in prefix_calls[:first]:
                states[key_of(i)] = step(i, state_of(i))[1]
        else:  # the steps not described, each key's at once (no copy a step)
            by_key: dict[Any, list[tuple[str, int, Any, Any]]] = {}
            for i in prefix_calls[:first]:
                steps += 1
                tick(1)
                by_key.setdefault(key_of(i), []).append(calls.ref_args(i))
            for k, args in by_key.items():
                if k not in states:
                    states[k] = model.ref_init()
                states[k] = model.ref_replay(states[k], args)
        kept = prefix_calls[first:]
        for i, op_json in zip(kept, calls_json(history, calls, kept), strict=True):
            before = state_of(i)
            legal, after = step(i, before)
            states[key_of(i)] = after
            k = key_of(i)
            linearized.append({"op": op_json, "legal": legal,
                               "state_before": describe(before, k),
                               "state_after": describe(after, k)})  # fmt: skip
        whole_prefix = True
        if deadline_op is not None:
            for op in remaining:
                i = int(part.calls[op])
                if calls.pos[i] >= d_ret:
                    continue
                stuck_total += 1
                if len(stuck) == MAX_STUCK:
                    continue
                legal, after = step(i, state_of(i))
                shown = fresh(after) if legal else None
                stuck.append(
                    {
                        "op": call_json(history, calls, i),
                        "legal": legal,
                        "why": (
                            "legal here, but no order of the remaining ops works after it"
                            if legal
                            else "illegal in this state"
                        ),
                        "state_after": shown,
                    }
                )
    except _OutOfTime:
        incomplete = (f"ran out of its time limit after {steps:,} steps of the model, "
                      f"{len(linearized)} of the last {len(prefix_calls) - first} linearized "
                      "ops described")  # fmt: skip
    window = part.calls
    if len(window) > MAX_WINDOW_OPS:  # the ops around the prefix's end, by invocation
        lo = max(0, len(prefix) - MAX_WINDOW_OPS // 2)
        window = window[np.argsort(calls.pos[window], kind="stable")][lo : lo + MAX_WINDOW_OPS]
    ops = calls_json(history, calls, window.tolist())
    final = dict(states) if multi else states.get(None, model.ref_init())
    cex = {
        "model": model.name,
        "key": part.key,
        "linearized": linearized,
        "linearized_total": len(prefix_calls),
        "linearized_offset": first,
        "state": _json_state(model, final) if whole_prefix else None,
        "deadline_op": deadline_op,
        "could_not_follow": stuck,
        "could_not_follow_total": stuck_total,
        "ops": ops,
        "ops_total": part.size,
    }
    if incomplete:
        cex["incomplete"] = incomplete
    return cex


#: Longest value shown in a one-line summary; longer ones are abbreviated.
SUMMARY_VALUE_CHARS = 48


def _short(value: Any) -> str:
    if isinstance(value, _Abbreviated):  # JSON text already: shown as it is, shorter
        keep = SUMMARY_VALUE_CHARS // 2 - 2
        return f"{value[:keep]}…{value[value.rindex('…') + 1 :][-keep:]}"
    keep = SUMMARY_VALUE_CHARS // 2 - 2
    if isinstance(value, list | tuple) and len(value) > SUMMARY_VALUE_CHARS:
        # (a read of millions of elements: not written out whole to show a few)
        head, tail = repr(value[: keep // 2]), repr(value[-(keep // 2) :])
        return f"{head[:keep]}…{tail[-keep:]} ({len(value):,} items)"
    text = repr(value)
    if len(text) <= SUMMARY_VALUE_CHARS:
        return text
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
    n = cex.get("linearized_total", len(cex["linearized"]))
    key = "" if cex.get("key") is None else f"key {cex['key']!r}: "
    if d is None:
        return f"{key}no linearization found after {n} ops"
    state = (
        ""
        if cex.get("state") is None and cex.get("incomplete")
        else (f" (state {_short(cex['state'])})")
    )
    return (
        f"{key}after linearizing {n} ops{state}, op #{d['index']} "
        f"(process {d['process']}: {describe_call(d)}, line {d['invoke_line']}) could not be "
        "linearized"
    )
