"""Checking on Dask (``clew check --workers N`` / ``--dask ADDRESS``).

The controller reads each history once. The linearizability checker's units are key
groups (:mod:`harness.key_units`): whole keys, balanced by calls, a few per worker, each
checked there with the same model and budgets. How a unit's ops reach its worker: when
every worker runs on this machine (``--workers N``, or a scheduler whose workers see this
machine's files), the history's columns are written once to shared memory
(:mod:`harness.shared_history`) and a unit is only its number, each worker
reading just its rows; otherwise each unit is sent as its own compact sub-history (only
its rows, values and keys). The verdicts combine as keys do (one invalid key makes the
history invalid, one undecided key an otherwise valid history unknown). The transactional
checker builds its dependency graph here and sends each strongly connected component's
cycle search as a unit (:class:`DaskUnitMap`, through :mod:`checkers.units`).

Budgets: the time limit is the whole check's, from the moment the file was opened; a
unit starts with what is left of it, and the controller stops waiting when it runs out
(the units not back make the verdict unknown). The memory budget holds per unit, in each
worker process, as it does for the whole check in one process.

A worker lost mid-unit: Dask gives the unit to another worker (up to its
``allowed-failures``), which checks it again from the start; a unit is a pure function
of its data, so the verdict cannot change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from distributed.diagnostics.plugin import WorkerPlugin

from checkers.result import UNKNOWN, Result, merge_validity
from harness.dask_client import open_dask_client
from harness.history import History
from harness.key_units import key_groups, take, unit_layout
from harness.shared_history import SharedHistory, share_history

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["DaskUnitMap", "check_linear_on_dask", "dask_check_client"]

log = logging.getLogger("clew.check")

#: Seconds to wait for a Dask scheduler to answer, and for local workers to start.
CONNECT_TIMEOUT = 120.0
#: Units per worker: more units balance better and report progress more finely; each
#: costs a task's round trip and a checker call (its Python passes over the unit's calls).
UNITS_PER_WORKER = 2
#: Histories of at least this many ops go to workers on this machine through shared
#: memory; smaller ones cost less to send as sub-histories than a round trip to ask
#: the workers whether they see the files.
SHARE_MIN_OPS = 10_000


@contextlib.contextmanager
def dask_check_client(*, address: str | None = None, workers: int = 0) -> Iterator[Client]:
    """A Dask client: of the scheduler at ``address``, or of a new local cluster of
    ``workers`` processes (one thread each), closed at the end. Every worker process,
    including one started later to replace a lost one, loads the checker's compiled
    kernels when it joins, not inside a unit's time limit."""
    with open_dask_client(address=address, workers=workers, timeout=CONNECT_TIMEOUT) as (
        client,
        _,
    ):
        client.register_plugin(_KernelLoader(), name="clew-check-kernels")
        yield client


class _KernelLoader(WorkerPlugin):
    """A Dask worker plugin: imports the checkers (Numba kernels loaded from their
    on-disk cache, or compiled once) as the worker starts."""

    def setup(self, worker: Any) -> None:
        """Dask calls this once in each worker process."""
        _load_kernels()


def _load_kernels() -> None:
    from checkers.linear import check, resolve_model  # noqa: F401 - loads the kernels


def _workers(client: Client) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


class DaskUnitMap:
    """A :class:`checkers.units.UnitMap` on a Dask client: every unit a task, results as
    they finish; ``on_done(done, total)`` after each."""

    def __init__(self, client: Client, on_done: Callable[[int, int], None] | None = None) -> None:
        self._client = client
        self._on_done = on_done

    def __call__(
        self, fn: Callable[[Any], Any], units: Sequence[Any], *, seconds: float | None
    ) -> Iterator[tuple[int, Any]]:
        """Run ``fn`` on every unit; yield ``(index, result)`` until ``seconds`` pass,
        then cancel what is left."""
        from distributed import as_completed
        from distributed.utils import TimeoutError as DaskTimeout

        if not units:
            return
        futures = self._client.map(fn, list(units), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        done = 0
        pending = as_completed(futures, timeout=seconds)
        try:
            for future in pending:
                result = future.result()
                done += 1
                if self._on_done is not None:
                    self._on_done(done, len(units))
                yield index[future.key], result
        except DaskTimeout:
            return
        finally:
            self._client.cancel([f for f in futures if not f.done()])


Job = tuple[
    "SharedHistory | History",
    "int | None",
    str,
    Any,
    dict[str, Any],
    "float | None",
]


def _check_unit(job: Job) -> tuple[Result, dict[str, float]]:
    """One key group checked on a worker: the same checker, model and budgets; the time
    limit is what is left of the whole check's (a wall-clock deadline). With the history
    shared, the group's rows are taken here from the mapped columns. Returns the result
    and where the worker's time went (seconds: ``take``, ``check``, ``cpu``)."""
    from checkers.linear import check, resolve_model

    source, unit, model, initial, options, deadline = job
    t0, c0 = time.perf_counter(), _cpu()
    if isinstance(source, SharedHistory):
        assert unit is not None
        sub = source.unit(unit)
    else:
        sub = source
    t1 = time.perf_counter()
    left = None if deadline is None else max(1e-3, deadline - time.time())
    m = resolve_model(sub, model, initial_value=initial)
    r = check(sub, m, time_limit=left, threads=1, **options)
    t2 = time.perf_counter()
    return r, {"take": t1 - t0, "check": t2 - t1, "cpu": _cpu() - c0}


def _cpu() -> float:
    """CPU seconds of this process so far (user and system, all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _workers_see(client: Client, path: str) -> bool:
    """Whether every worker of ``client`` can open ``path`` (they share this machine)."""
    try:
        return all(client.run(os.path.isfile, path).values())
    except Exception:  # a worker that cannot answer cannot be relied on either
        return False


def check_linear_on_dask(
    client: Client,
    history: History,
    model: str,
    *,
    initial_value: Any = None,
    time_limit: float | None,
    max_bytes: int,
    max_steps: int,
    counterexample_time_limit: float,
    started: float,
    progress: Callable[[int, int], None] | None = None,
    share: bool = True,
) -> Result:
    """Decide linearizability of ``history`` with its key groups checked on ``client``'s
    workers (see the module docstring); the same :class:`Result` shape as
    :func:`checkers.linear.check`, with ``details["units"]`` and ``details["workers"]``.
    ``started`` is the :func:`time.perf_counter` instant the file was opened.
    ``share=False`` sends sub-histories even to workers on this machine.
    ``details["worker_seconds"]`` sums the units' time on the workers: taking their rows,
    checking, and CPU."""
    workers = _workers(client)
    t_split = time.perf_counter()
    groups = key_groups(history, workers * UNITS_PER_WORKER)
    shared: SharedHistory | None = None
    if share and len(history) >= SHARE_MIN_OPS:
        shared = share_history(history, groups)
        if not _workers_see(client, os.path.join(shared.directory, "tables.pickle")):
            shared.remove()
            shared = None
    if shared is not None:
        sources: list[tuple[SharedHistory | History, int | None]] = [
            (shared, u) for u in range(len(groups))
        ]
    else:
        rows, offsets = unit_layout(history, groups)
        sources = [(take(history, rows[offsets[u] : offsets[u + 1]]), None)
                   for u in range(len(groups))]  # fmt: skip
    split_seconds = time.perf_counter() - t_split
    elapsed = time.perf_counter() - started
    left = None if time_limit is None else time_limit - elapsed
    deadline = None if left is None else time.time() + left
    options = {"max_bytes": max_bytes, "max_steps": max_steps,
               "counterexample_time_limit": counterexample_time_limit}  # fmt: skip
    jobs = [(src, g, model, initial_value, options, deadline) for src, g in sources]
    results: dict[int, Result] = {}
    spent = {"take": 0.0, "check": 0.0, "cpu": 0.0}
    try:
        for i, (r, t) in DaskUnitMap(client, progress)(_check_unit, jobs, seconds=left):
            results[i] = r
            for k in spent:
                spent[k] += t[k]
            if r.valid is False:
                break  # one invalid key decides; the rest are cancelled
    finally:
        if shared is not None:
            shared.remove()
    units = groups
    seconds = time.perf_counter() - started
    invokes = history.client_invokes()
    details: dict[str, Any] = {
        "model": model, "units": len(units), "workers": workers, "ops": len(invokes),
        "partitions": len(np.unique(history.key[invokes])),
        "shipped": "shared memory" if shared is not None else "sub-histories",
        "phases": {"read": round(t_split - started, 6), "split": round(split_seconds, 6),
                   "units": round(seconds - (t_split - started) - split_seconds, 6)},
        "worker_seconds": {k: round(v, 6) for k, v in spent.items()},
    }  # fmt: skip
    invalid = [r for r in results.values() if r.valid is False]
    if invalid:
        first = invalid[0]
        return Result(valid=False, checker=first.checker, cause=first.cause, seconds=seconds,
                      details={**first.details, **details})  # fmt: skip
    missing = len(units) - len(results)
    if missing:
        return Result(valid=UNKNOWN, checker="linearizable", seconds=seconds, details=details,
                      cause=f"time limit reached with {missing} of {len(units)} key groups "
                            "not checked (on Dask)")  # fmt: skip
    verdict = merge_validity(r.valid for r in results.values())
    cause = next((r.cause for r in results.values() if r.valid == UNKNOWN), None)
    return Result(valid=verdict, checker="linearizable", cause=cause, seconds=seconds,
                  details=details)  # fmt: skip
