"""The linearizability checker's entry point: ``check(history, model) -> Result``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from checkers.linear import kernel as K
from checkers.linear.budget import (
    CANCELLED,
    DEFAULT_COUNTEREXAMPLE_TIME_LIMIT,
    DEFAULT_MAX_BYTES,
    DEFAULT_TIME_LIMIT,
    TIMED_OUT,
    deadline,
)
from checkers.linear.calls import Calls, extract_calls
from checkers.linear.counterexample import build_counterexample, summarize
from checkers.linear.models import Model, get_model, guess_model, with_initial_value
from checkers.linear.prepare import Partition, prepare, zobrist
from checkers.result import UNKNOWN, Result
from harness.errors import ConfigError
from harness.history import History

__all__ = ["ProgressFn", "check", "resolve_model"]

#: Called as ``progress(partitions_done, partitions_total)`` while a check runs.
ProgressFn = Callable[[int, int], None]

_CPUS = os.cpu_count() or 1
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0


def _pool(threads: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    if _POOL is None or threads != _POOL_SIZE:
        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="clew-check")
        _POOL_SIZE = threads
    return _POOL


@dataclass(slots=True)
class _Run:
    status: int
    stats: npt.NDArray[np.int64]
    best: npt.NDArray[np.int32]


#: Partitions with more ops than this use a 127-bit fingerprint of the linearized set in
#: the cache instead of the exact bitset (whose size grows with the history).
EXACT_CACHE_MAX_OPS = 1024


def _search(
    p: Partition,
    stop: npt.NDArray[np.int64],
    max_bytes: int,
    max_steps: int,
    record: bool,
    exact: bool = True,
) -> _Run:
    n = p.size
    stats = np.zeros(4, dtype=np.int64)
    best = np.zeros(max(n, 1), dtype=np.int32)
    if n == 0:
        return _Run(K.VALID, stats, best[:0])
    status = K.search(
        p.order, p.optional, p.opc, p.a, p.b, p.slot, p.cls, p.aux, p.table, p.use_table,
        p.init, zobrist(n), zobrist(n, 1), exact, max_bytes, max_steps, stop, stats, best,
        record,
    )  # fmt: skip
    return _Run(int(status), stats, best[: stats[3]])


def resolve_model(
    history: History,
    model: str | None,
    *,
    initial_value: Any = None,
    choices: str | None = None,
) -> Model:
    """``model`` by name, or the one model that fits the history (:func:`guess_model`),
    started from ``initial_value`` when given (registers, multi-register).

    Raises :class:`ConfigError` for an unknown name, a history no model clearly fits
    (naming ``--model`` and ``choices``), or an initial value the model cannot take.
    """
    if model is None:
        model = guess_model(history, choices)
    m = get_model(model)
    return m if initial_value is None else with_initial_value(m, initial_value)


def _verify_witness(calls: Calls, model: Model, p: Partition, order: list[int]) -> bool:
    """Replay a witness with the reference model (for models whose states are hashed)."""
    h = calls.history
    idx = p.calls[np.asarray(order, dtype=np.int64)]
    fs = [h.f_names[f] for f in calls.f[idx].tolist()]
    status = calls.status[idx].tolist()
    vin = [h.values[v] for v in calls.vin[idx].tolist()]
    vout = [None if v < 0 else h.values[v] for v in calls.vout[idx].tolist()]
    keys = calls.key[idx].tolist()
    state: dict[int, Any] = {}
    step, init = model.ref_step, model.ref_init
    for j in range(len(idx)):
        k = keys[j]
        before = state[k] if k in state else init()
        legal, state[k] = step(before, fs[j], status[j], vin[j], vout[j])
        if not legal:
            return False
    placed = np.zeros(p.size, dtype=bool)
    placed[order] = True
    return bool(np.all(placed | p.optional.astype(bool)))


def check(
    history: History,
    model: str | Model | None = None,
    *,
    partition: bool = True,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_steps: int = 0,
    threads: int | None = None,
    counterexample: bool = True,
    counterexample_time_limit: float = DEFAULT_COUNTEREXAMPLE_TIME_LIMIT,
    exact_cache_max_ops: int = EXACT_CACHE_MAX_OPS,
    progress: ProgressFn | None = None,
) -> Result:
    """Decide whether ``history`` is linearizable with respect to ``model``.

    Returns ``valid=True``, ``False`` with the failing key and (if ``counterexample``) an
    explanation, or ``"unknown"`` with the cause when the time limit
    (seconds), the cache byte budget or the step budget (0 = none) ran out. Never raises for
    a hard history; raises :class:`ConfigError` when the model does not fit the history.
    Partitions of more than ``exact_cache_max_ops`` ops are searched with 127-bit
    fingerprints of the linearized sets (a collision, with odds near entries² / 2^127,
    could only prune a path wrongly); ``details["fingerprinted_partitions"]`` counts them.
    ``seconds`` in the result is the checker time from parsed history to verdict; the
    explanation of an invalid verdict is a second pass, timed in
    ``details["counterexample_seconds"]``.
    """
    t0 = time.perf_counter()
    m = model if isinstance(model, Model) else resolve_model(history, model)
    if time_limit is not None and time_limit <= 0:
        raise ConfigError("`time_limit` must be positive")
    if max_bytes <= 0:
        raise ConfigError("`max_bytes` must be positive")
    calls = extract_calls(history)
    parts = prepare(calls, m, partition=partition)
    parts.sort(key=lambda p: p.size, reverse=True)
    nthreads = threads or min(2, _CPUS)
    nthreads = max(1, min(nthreads, len(parts)))
    per_bytes = max_bytes // nthreads

    runs: list[_Run | None] = [None] * len(parts)
    done = 0
    with deadline(time_limit) as stop:

        def run(i: int) -> _Run | None:
            if stop[0] != 0:
                return None
            p = parts[i]
            r = _search(p, stop, per_bytes, max_steps, False, p.size <= exact_cache_max_ops)
            if r.status == K.INVALID:
                stop[0] = CANCELLED
            return r

        if nthreads == 1:
            for i in range(len(parts)):
                runs[i] = run(i)
                done += 1
                if progress:
                    progress(done, len(parts))
                if runs[i] is None or runs[i].status == K.INVALID:  # type: ignore[union-attr]
                    break
        else:
            futures = [_pool(nthreads).submit(run, i) for i in range(len(parts))]
            for i, fut in enumerate(futures):
                runs[i] = fut.result()
                done += 1
                if progress:
                    progress(done, len(parts))
        timed_out = stop[0] == TIMED_OUT

    finished = [(p, r) for p, r in zip(parts, runs, strict=True) if r is not None]
    steps = sum(int(r.stats[0]) for _, r in finished)
    details: dict[str, Any] = {
        "model": m.name,
        "partitions": len(parts),
        "partitions_checked": sum(1 for _, r in finished if r.status in (K.VALID, K.INVALID)),
        "ops": len(calls),
        "searched_ops": sum(p.size for p in parts),
        "steps": steps,
        "cache_entries": sum(int(r.stats[1]) for _, r in finished),
        "cache_bytes_peak": max((int(r.stats[2]) for _, r in finished), default=0),
        "table_partitions": sum(1 for p in parts if p.use_table),
        "fingerprinted_partitions": sum(1 for p in parts if p.size > exact_cache_max_ops),
    }
    invalid = [(p, r) for p, r in finished if r.status == K.INVALID]
    verdict_seconds = time.perf_counter() - t0
    if invalid:
        p, _ = invalid[0]
        details["failing_key"] = p.key
        cause = f"key {p.key!r} is not linearizable" if p.key is not None else "not linearizable"
        if counterexample:
            exact = p.size <= exact_cache_max_ops
            cex = _counterexample(history, calls, m, p, per_bytes, counterexample_time_limit, exact)
            details["counterexample"] = cex
            details["counterexample_seconds"] = time.perf_counter() - t0 - verdict_seconds
            if cex.get("linearized") is not None:
                cause = summarize(cex)
        return Result(
            valid=False, checker="linearizable", cause=cause,
            seconds=verdict_seconds, details=details,
        )  # fmt: skip
    unknown = [(p, r) for p, r in finished if r.status not in (K.VALID, K.INVALID)]
    if unknown or len(finished) < len(parts) or timed_out:
        why = _unknown_cause(unknown, time_limit, per_bytes, max_steps, steps)
        cause = why or f"time limit of {time_limit} s reached"
        return Result(
            valid=UNKNOWN, checker="linearizable", cause=cause,
            seconds=time.perf_counter() - t0, details=details,
        )  # fmt: skip
    if m.name == "kv":
        for p, r in finished:
            if not _verify_witness(calls, m, p, r.best.tolist()):
                return Result(
                    valid=UNKNOWN, checker="linearizable",
                    cause=f"key {p.key!r}: the witness failed verification (hash collision?)",
                    seconds=time.perf_counter() - t0, details=details,
                )  # fmt: skip
    return Result(
        valid=True, checker="linearizable", seconds=time.perf_counter() - t0, details=details
    )


def _unknown_cause(
    unknown: list[tuple[Partition, _Run]],
    time_limit: float | None,
    max_bytes: int,
    max_steps: int,
    steps: int,
) -> str | None:
    for p, r in unknown:
        key = "" if p.key is None else f" (key {p.key!r})"
        if r.status == K.OUT_OF_MEMORY:
            return (
                f"memory budget reached: the search cache{key} would need more than "
                f"{max_bytes / 2**20:.0f} MiB after {int(r.stats[1]):,} states; "
                "raise --max-memory, or check fewer ops"
            )
        if r.status == K.OUT_OF_STEPS:
            return f"step budget of {max_steps:,} search steps reached{key}"
        if r.status == K.STOPPED:
            return (
                f"time limit of {time_limit} s reached after {steps:,} search steps{key}; "
                "raise --time-limit"
            )
    return None


def _counterexample(
    history: History,
    calls: Calls,
    m: Model,
    p: Partition,
    max_bytes: int,
    time_limit: float,
    exact: bool,
) -> dict[str, Any]:
    with deadline(time_limit) as stop:
        r = _search(p, stop, max_bytes, 0, True, exact)
    cex = build_counterexample(history, calls, m, p, r.best.tolist())
    if r.status != K.INVALID:
        cex["note"] = (
            "the recording pass ran out of budget; the prefix shown is the longest found "
            "before it stopped"
        )
    return cex
