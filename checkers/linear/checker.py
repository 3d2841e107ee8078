"""The linearizability checker's entry point: ``check(history, model) -> Result``."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

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
from checkers.linear.models import Model, get_model, guess_model, with_initial_value
from checkers.linear.prepare import (
    MAX_TABLE_CELLS,
    PREPARE_BYTES_PER_CALL,
    SEARCH_BYTES_PER_OP,
    Partition,
    Prepared,
    layout,
    zobrist,
)
from checkers.result import UNKNOWN, Result
from harness.errors import ConfigError
from harness.history import History

__all__ = ["ProgressFn", "check", "resolve_model"]

#: Called as ``progress(partitions_done, partitions_total)`` while a check runs.
ProgressFn = Callable[[int, int], None]

_CPUS = os.cpu_count() or 1
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_SERIAL: ThreadPoolExecutor | None = None
_T = TypeVar("_T")
#: Seconds the main thread waits on the searches before it looks for a Ctrl-C again.
_WAKE_SECONDS = 0.2


def _pool(threads: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    if _POOL is None or threads != _POOL_SIZE:
        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="clew-check")
        _POOL_SIZE = threads
    return _POOL


def _serial_pool() -> ThreadPoolExecutor:
    """One worker thread, for searches run one after another for the main thread."""
    global _SERIAL
    if _SERIAL is None:
        _SERIAL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clew-check-serial")
    return _SERIAL


def shutdown_pools() -> None:
    """Tell the check's worker threads to end once idle, without waiting: for a process
    about to exit, whose interpreter joins them. Each pool's queue is told, so a worker
    that the pool started but never registered for the interpreter's own exit call (a
    Ctrl-C or SIGTERM landing inside ``submit`` between the two) ends too: it waited on
    its queue for ever, and clew hung after printing its verdict."""
    global _POOL, _SERIAL
    for pool in (_POOL, _SERIAL):
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    _POOL = _SERIAL = None


def _off_the_main_thread(fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)``; called from the main thread, it runs in :func:`_serial_pool`'s
    worker while the main thread waits interruptibly (a Ctrl-C stops it). From another
    thread (no signal reaches it; other threads may check at once) it runs there."""
    if threading.current_thread() is not threading.main_thread():
        return fn(*args)
    fut = _serial_pool().submit(fn, *args)
    _wait_interruptibly([fut])
    return fut.result()


def _wait_interruptibly(futures: Sequence[Future[Any]]) -> None:
    """Wait for ``futures`` (raising the first error), coming back to the interpreter
    every :data:`_WAKE_SECONDS` so that a Ctrl-C is handled at once: its
    KeyboardInterrupt leaves the check's :class:`deadline`, which stops the searches still
    running. (The searches run in worker threads for this: a kernel in the main thread
    holds off Python's signal handlers until it returns, up to the time limit.)"""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=_WAKE_SECONDS, return_when=FIRST_EXCEPTION)
        for f in done:
            f.result()  # the first error at once (leaving the deadline stops the rest)


@dataclass(slots=True)
class _Run:
    status: int
    stats: npt.NDArray[np.int64]
    best: npt.NDArray[np.int32]


#: Partitions with more ops than this use a 127-bit fingerprint of the linearized set in
#: the cache instead of the exact bitset (whose size grows with the history).
EXACT_CACHE_MAX_OPS = 1024
#: Partitions of at most this many ops are searched many per kernel call (no transition
#: table, no per-partition Python work: a history of a million keys is one pass).
BATCH_MAX_OPS = 256
#: Ops per kernel call when searching small partitions in batches.
BATCH_OPS = 1 << 15
#: Steps each partition gets in the first pass; the ones that need more are searched again
#: without this cap after every partition had its first pass, so a small invalid key is
#: never kept waiting behind a large valid one, even on one thread.
FIRST_PASS_STEPS = 1 << 17


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


class _OutOfBudget(Exception):
    """A budget ran out outside the search; the message says which, in which phase."""


class _Searches:
    """The search phase: every partition, in two passes, on ``threads`` threads.

    Statuses go to ``status`` (-1: not decided), stats (steps, cache entries, cache
    bytes, depth) to ``stats``, witnesses of partitions searched one by one to ``best``.
    """

    def __init__(
        self,
        prep: Prepared,
        stop: npt.NDArray[np.int64],
        threads: int,
        cache_bytes: int,
        max_steps: int,
        exact_max_ops: int,
        witnesses: bool,
        progress: ProgressFn | None,
    ) -> None:
        self.prep = prep
        self.stop = stop
        self.threads = threads
        self.cache_bytes = cache_bytes
        self.max_steps = max_steps
        self.exact_max_ops = exact_max_ops
        self.witnesses = witnesses
        self.progress = progress
        self.sizes = prep.sizes
        self.status = np.full(len(prep), -1, dtype=np.int64)
        self.stats = np.zeros((len(prep), 4), dtype=np.int64)
        self.best: dict[int, npt.NDArray[np.int32]] = {}
        self.tables = 0
        self.done = 0

    def run(self) -> None:
        first = FIRST_PASS_STEPS if self.max_steps == 0 else min(FIRST_PASS_STEPS, self.max_steps)
        todo = np.argsort(self.sizes, kind="stable")  # smallest first: a cheap invalid key
        self._pass(todo, first)
        again = np.flatnonzero(self.status == K.OUT_OF_STEPS)
        if len(again) and first != self.max_steps and self.stop[0] == 0:
            again = again[np.argsort(-self.sizes[again], kind="stable")]  # largest first
            self._pass(again, self.max_steps)

    def _pass(self, parts: npt.NDArray[np.int64], max_steps: int) -> None:
        small = parts[self.sizes[parts] <= BATCH_MAX_OPS] if not self.witnesses else parts[:0]
        big = parts[self.sizes[parts] > BATCH_MAX_OPS] if not self.witnesses else parts
        tasks: list[Callable[[], None]] = []
        start = 0
        csum = np.cumsum(self.sizes[small])
        while start < len(small):
            base = csum[start - 1] if start else 0
            stop_at = max(start + 1, int(np.searchsorted(csum, base + BATCH_OPS, "right")))
            chunk = np.ascontiguousarray(small[start:stop_at])
            tasks.append(partial(self._many, chunk, max_steps))
            start = stop_at
        tasks.extend(partial(self._one, p, max_steps) for p in big.tolist())
        if self.threads == 1 or len(tasks) == 1:
            _off_the_main_thread(self._in_order, tasks)
        else:
            pool = _pool(self.threads)
            _wait_interruptibly([pool.submit(task) for task in tasks])

    def _in_order(self, tasks: list[Callable[[], None]]) -> None:
        for task in tasks:
            if self.stop[0] != 0:
                break
            task()

    def _finished(self, count: int, invalid: bool) -> None:
        if invalid:
            self.stop[0] = CANCELLED
        self.done += count
        if self.progress:
            self.progress(self.done, len(self.prep))

    def _many(self, chunk: npt.NDArray[np.int64], max_steps: int) -> None:
        if self.stop[0] != 0:
            return
        prep = self.prep
        status = np.full(len(chunk), -1, dtype=np.int64)
        stats = np.zeros((len(chunk), 4), dtype=np.int64)
        n = int(self.sizes[chunk].max())
        K.search_many(
            chunk, prep.offsets, prep.order, prep.optional, prep.opc, prep.a, prep.b,
            prep.slot, prep.low.aux, prep.init, zobrist(n), zobrist(n, 1),
            self.exact_max_ops, self.cache_bytes, max_steps, self.stop, status, stats,
        )  # fmt: skip
        self.status[chunk] = status
        self.stats[chunk] = stats
        decided = (status == K.VALID) | (status == K.INVALID)
        self._finished(int(decided.sum()), bool((status == K.INVALID).any()))

    def _one(self, p: int, max_steps: int) -> None:
        if self.stop[0] != 0:
            return
        part = self.prep.partition(p)
        self.tables += part.use_table
        r = _search(part, self.stop, self.cache_bytes, max_steps, False,
                    part.size <= self.exact_max_ops)  # fmt: skip
        self.status[p] = r.status
        self.stats[p] = r.stats
        if self.witnesses and r.status == K.VALID:
            self.best[p] = r.best
        self._finished(int(r.status in (K.VALID, K.INVALID)), r.status == K.INVALID)


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
    started: float | None = None,
) -> Result:
    """Decide whether ``history`` is linearizable with respect to ``model``.

    Returns ``valid=True``, ``False`` with the failing key and (if ``counterexample``) an
    explanation, or ``"unknown"`` with the cause when a budget ran out: the time limit
    (seconds), the memory budget ``max_bytes`` or the step budget (0 = none).
    Every phase counts against both budgets: lowering the calls, laying them out by key,
    the search (its cache, entry lists and transition tables) and the witness check; the
    cause of an ``unknown`` names the phase (also ``details["phase"]``). Never raises for a
    hard history; raises :class:`ConfigError` when the model does not fit the history.

    ``started`` is the :func:`time.perf_counter` instant the work on this history began
    (before reading its file, say): the time limit then runs from there, and ``seconds``
    covers every phase from there to the verdict; by default both start at this call.
    ``details["phases"]`` gives the seconds of each phase.
    Partitions of more than ``exact_cache_max_ops`` ops are searched with 127-bit
    fingerprints of the linearized sets (a collision, with odds near entries² / 2^127,
    could only prune a path wrongly); ``details["fingerprinted_partitions"]`` counts them.
    The explanation of an invalid verdict is a second pass, under its own time limit,
    timed in ``details["counterexample_seconds"]``.
    """
    t0 = time.perf_counter() if started is None else started
    if time_limit is not None and time_limit <= 0:
        raise ConfigError("`time_limit` must be positive")
    if max_bytes <= 0:
        raise ConfigError("`max_bytes` must be positive")
    m = model if isinstance(model, Model) else resolve_model(history, model)
    phases: dict[str, float] = {}
    if started is not None:
        phases["read"] = time.perf_counter() - started
    details: dict[str, Any] = {"model": m.name, "ops": 0, "partitions": 0, "phases": phases}
    left = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - t0))
    with deadline(left) as stop:
        try:
            return _check(history, m, partition, time_limit, max_bytes, max_steps, threads,
                          counterexample, counterexample_time_limit, exact_cache_max_ops,
                          progress, t0, stop, details)  # fmt: skip
        except _OutOfBudget as e:
            details["phase"] = e.args[1]
            return Result(
                valid=UNKNOWN, checker="linearizable", cause=str(e.args[0]),
                seconds=time.perf_counter() - t0, details=details,
            )  # fmt: skip


def _check(
    history: History,
    m: Model,
    partition: bool,
    time_limit: float | None,
    max_bytes: int,
    max_steps: int,
    threads: int | None,
    counterexample: bool,
    counterexample_time_limit: float,
    exact_cache_max_ops: int,
    progress: ProgressFn | None,
    t0: float,
    stop: npt.NDArray[np.int64],
    details: dict[str, Any],
) -> Result:
    phases: dict[str, float] = details["phases"]
    mib = 2**20
    lap = [time.perf_counter()]

    def phase_done(name: str) -> None:
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - lap[0]
        lap[0] = now
        if stop[0] == TIMED_OUT:
            raise _OutOfBudget(
                f"time limit of {time_limit} s reached while {_DOING[name]}; "
                "raise --time-limit", name,
            )  # fmt: skip

    if time_limit is not None and time.perf_counter() - t0 >= time_limit:
        raise _OutOfBudget(
            f"time limit of {time_limit} s reached while {_DOING['read']}; raise --time-limit",
            "read",
        )
    n_calls = int(np.count_nonzero(history.client_invokes() >= 0)) if len(history) else 0
    need = PREPARE_BYTES_PER_CALL * max(n_calls, 1)
    if need > max_bytes:
        raise _OutOfBudget(
            f"memory budget reached: preparing {n_calls:,} calls needs about "
            f"{need / mib:.0f} MiB, more than the {max_bytes / mib:.0f} MiB budget; "
            "raise --max-memory", "prepare",
        )  # fmt: skip
    calls = extract_calls(history)
    low = m.lower(calls)
    phase_done("lower")
    prep = layout(calls, m, low, partition=partition)
    details.update(ops=len(calls), partitions=len(prep))
    phase_done("prepare")

    sizes = prep.sizes
    nparts = len(prep)
    nthreads = threads or min(2, _CPUS)
    nthreads = max(1, min(nthreads, nparts))
    biggest = int(sizes.max()) if nparts else 0
    working = prep.nbytes + nthreads * (SEARCH_BYTES_PER_OP * biggest + 4 * MAX_TABLE_CELLS)
    per_bytes = (max_bytes - working) // nthreads
    if per_bytes < 4096:
        raise _OutOfBudget(
            f"memory budget reached: the search of {len(calls):,} calls needs "
            f"{working / mib:.0f} MiB before its cache, more than the "
            f"{max_bytes / mib:.0f} MiB budget; raise --max-memory", "search",
        )  # fmt: skip
    witnesses = m.name == "kv"
    runs = _Searches(prep, stop, nthreads, per_bytes, max_steps, exact_cache_max_ops,
                     witnesses, progress)  # fmt: skip
    runs.run()
    lap_now = time.perf_counter()
    phases["search"] = lap_now - lap[0]
    lap[0] = lap_now
    status, stats = runs.status, runs.stats
    timed_out = stop[0] == TIMED_OUT
    decided = (status == K.VALID) | (status == K.INVALID)
    details.update(
        partitions_checked=int(decided.sum()),
        searched_ops=int(sizes.sum()),
        steps=int(stats[:, 0].sum()),
        cache_entries=int(stats[:, 1].sum()),
        cache_bytes_peak=int(stats[:, 2].max()) if nparts else 0,
        table_partitions=runs.tables,
        fingerprinted_partitions=int(np.count_nonzero(sizes > exact_cache_max_ops)),
    )
    invalid = np.flatnonzero(status == K.INVALID)
    verdict_seconds = time.perf_counter() - t0
    if len(invalid):
        p = prep.partition(int(invalid[0]))
        details["failing_key"] = p.key
        cause = f"key {p.key!r} is not linearizable" if p.key is not None else "not linearizable"
        if counterexample:
            exact = p.size <= exact_cache_max_ops
            cex = _counterexample(history, calls, m, p, per_bytes, counterexample_time_limit, exact)
            details["counterexample"] = cex
            details["counterexample_seconds"] = time.perf_counter() - t0 - verdict_seconds
            if cex.get("linearized") is not None:
                from checkers.linear.counterexample import summarize

                cause = summarize(cex)
        return Result(
            valid=False, checker="linearizable", cause=cause,
            seconds=verdict_seconds, details=details,
        )  # fmt: skip
    if not decided.all() or timed_out:
        why = _unknown_cause(prep, status, stats, time_limit, per_bytes, max_steps)
        details["phase"] = "search"
        cause = why or f"time limit of {time_limit} s reached while searching"
        return Result(
            valid=UNKNOWN, checker="linearizable", cause=cause,
            seconds=time.perf_counter() - t0, details=details,
        )  # fmt: skip
    if witnesses:
        for p_id, best in runs.best.items():
            if stop[0] == TIMED_OUT:
                phase_done("verify")
            p = prep.partition(p_id)
            if not _verify_witness(calls, m, p, best.tolist()):
                return Result(
                    valid=UNKNOWN, checker="linearizable",
                    cause=f"key {p.key!r}: the witness failed verification (hash collision?)",
                    seconds=time.perf_counter() - t0, details=details,
                )  # fmt: skip
        phase_done("verify")
    return Result(
        valid=True, checker="linearizable", seconds=time.perf_counter() - t0, details=details
    )


#: What each phase is doing, for the cause of an unknown verdict.
_DOING = {
    "read": "reading the history",
    "lower": "lowering the calls for the model",
    "prepare": "laying the calls out by key",
    "search": "searching",
    "verify": "verifying the witness",
}


def _unknown_cause(
    prep: Prepared,
    status: npt.NDArray[np.int64],
    stats: npt.NDArray[np.int64],
    time_limit: float | None,
    max_bytes: int,
    max_steps: int,
) -> str | None:
    steps = int(stats[:, 0].sum())
    for p in np.flatnonzero((status != K.VALID) & (status != K.INVALID)).tolist():
        key = prep.key(p)
        at = "" if key is None else f" (key {key!r})"
        r = int(status[p])
        if r == K.OUT_OF_MEMORY:
            return (
                f"memory budget reached while searching: the search cache{at} would need "
                f"more than {max_bytes / 2**20:.0f} MiB after {int(stats[p, 1]):,} states; "
                "raise --max-memory, or check fewer ops"
            )
        if r == K.OUT_OF_STEPS:
            return f"step budget of {max_steps:,} search steps reached{at}"
        if r == K.STOPPED:
            return (
                f"time limit of {time_limit} s reached while searching, after {steps:,} "
                f"search steps{at}; raise --time-limit"
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
    from checkers.linear.counterexample import build_counterexample  # only for a failure

    ends = time.perf_counter() + time_limit  # for the recording pass and the replay
    with deadline(time_limit) as stop:
        r = _off_the_main_thread(_search, p, stop, max_bytes, 0, True, exact)
    cex = build_counterexample(history, calls, m, p, r.best.tolist(), deadline=ends)
    if r.status != K.INVALID:
        cex["note"] = (
            "the recording pass ran out of budget; the prefix shown is the longest found "
            "before it stopped"
        )
    return cex
