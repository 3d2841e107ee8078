"""The run lifecycle of ``clew test``, as nested scopes.

Before anything is created, the run is validated: the suite and workload exist, the fault
kinds fit the node count (from ``--nodes``, before any cluster), the cluster
is up (brought up if none is), the fault schedule is planned and every fault kind is checked
against this cluster and database. A refused run leaves no run directory and moves no
``latest`` link. Then, each step an async context manager on one
:class:`contextlib.AsyncExitStack`, entered in this order and left in reverse on every exit
path (the end of the load, an exception, Ctrl-C, the time limit)::

    cluster     up (or reused)                      … down, if this run brought it up
    remotes     SSH to every node (a node not reached: no run directory) … closed
    run record  run directory, spec/schedule/versions, journal and ledger … closed
    database    setup on every node (parallel)      … node logs downloaded, teardown
    clients     opened, one per worker              … closed
    nemesis     guard started, leftovers healed,    … final heal, verify-healed barrier,
                leases renewed                        guard stopped
    interpreter the generator drives clients and the nemesis, every op journaled

Problems met while unwinding are collected (and end up in ``results.json``), never raised
over the error that caused the unwinding. A Ctrl-C (a cancellation of the run; for a run
in another thread, :func:`interrupt_runs`) that arrives while a scope is being left does
not cut that exit short: the heal, the barrier and the teardown run to their end, then
the interrupt goes on. The history is then checked and stored through
:mod:`harness.record`, and the report written; ``clew analyze RUN_DIR`` checks a stored
run again, even the journal of a crashed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import importlib.metadata
import logging
import logging.handlers
import platform
import random
import signal
import threading
import time
import traceback
import types
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from checkers.result import UNKNOWN, Result
from clusters import Cluster, ClusterSpec, Node, default_state_dir, get_provider
from clusters.base import down_command
from clusters.in_use import cluster_in_use
from clusters.static import with_passwords
from harness import progress
from harness.api import DB, Client, Suite, TestContext, Workload
from harness.control import Remotes, connect_all
from harness.errors import ClewError, ClusterError, ConfigError, InputError
from harness.history import INVOKE, History
from harness.interpreter import interpret
from harness.journal_tail import read_run_history
from harness.record import (
    RunResults,
    RunSpec,
    ScheduleRecord,
    fault_windows,
    read_fault_ledger,
    verdict,
    windows_json,
)
from harness.rerun import rerun_spec
from harness.runplan import (
    build_generator,
    build_nemesis,
    check_fault_packages,
    check_fault_providers,
    check_node_count,
    check_plannable,
    fault_lease,
    plan_run_schedule,
    preflight_faults,
    run_kinds,
    run_scheduler,
    scheduler_agent_steps,
)
from harness.spec import TestSpec
from harness.store import Journal, RunDir, check_run_dir, new_run_dir, store_of_run
from harness.suite_options import check_suite_options
from harness.suites import BUILTIN_SUITES, is_builtin, load_suite
from nemeses.agent import compile_slices, hand_over, validate_agent_steps
from nemeses.faultset import FaultSet
from nemeses.ledger import FaultLedger
from nemeses.schedule import ledger_schedule
from reports.index import write_index
from reports.run_report import write_run_report

__all__ = [
    "RunOutcome",
    "abandon_teardown_steps",
    "analyze",
    "check_before_cluster",
    "check_stored_before_cluster",
    "interrupt_runs",
    "replay_run",
    "run_test",
    "stored_suite",
    "stored_workload",
]

log = logging.getLogger("clew.runner")

#: Seconds allowed for the DB setup on all nodes together.
DB_SETUP_TIMEOUT = 120.0
#: Seconds allowed for healing faults, closing clients, and tearing down, each.
TEARDOWN_TIMEOUT = 60.0
#: Log records kept in memory before the run directory (and its clew.log) exists.
EARLY_LOG_RECORDS = 10_000


@dataclass(slots=True)
class _Steps:
    """The teardown steps of one run that a second Ctrl-C may abandon
    (:func:`_to_the_end`): those under way, and the interrupts that came as they ended
    (the next step is abandoned as it starts; after the last one, nothing is left to
    abandon)."""

    running: set[asyncio.Task[Any]] = field(default_factory=set)
    pending: list[str] = field(default_factory=list)

    def abandon(self, how: str) -> None:
        """Cancel the steps under way (on the run's loop), or, if they have all just
        ended, the next one."""
        told = [t.cancel(how) for t in list(self.running)]
        if not any(told):
            self.pending.append(how)


#: The runs in progress in this process: their event loops, main tasks and teardown
#: steps, by task id. (A dict, not a set under a lock: :func:`interrupt_runs` may run in
#: a signal handler.)
_RUNS: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Task[Any], _Steps]] = {}

#: The teardown steps of the run this task belongs to (see :data:`_RUNS`).
_STEPS: contextvars.ContextVar[_Steps | None] = contextvars.ContextVar(
    "clew_teardown_steps", default=None
)

#: The interrupts (their names, :func:`interrupt_name`) that a run's teardown swallowed
#: because an error was already ending the run (:func:`_to_the_end`), so that the run can
#: still say it was interrupted (set by :func:`_interruptible` for its run's tasks).
_SWALLOWED: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "clew_swallowed_interrupts", default=None
)


def interrupt_runs(how: str = "Ctrl-C") -> int:
    """Stop every run in progress in this process, from any thread, as a first Ctrl-C stops
    a run in the main thread: its load ends, every fault is healed and the heal verified,
    the database is torn down, and :func:`run_test` returns the history so far, checked,
    with the problem "interrupted (``how``)" (``"Ctrl-C"`` or ``"SIGTERM"``). Returns how
    many runs were told (0: none was running). Campaigns use it to stop runs made in
    threads or on Dask workers."""
    runs = list(_RUNS.copy().values())
    for loop, task, _ in runs:
        with contextlib.suppress(RuntimeError):  # that loop has just closed: the run ended
            loop.call_soon_threadsafe(task.cancel, how)  # (the message names the signal)
    return len(runs)


def abandon_teardown_steps(how: str = "Ctrl-C") -> int:
    """Cancel, at their loops' next turn, the teardown steps that the runs in progress run
    to their end (the final heal, closing the clients, the database's teardown), as a
    second Ctrl-C does: each run records the step as abandoned and goes on with the next
    (a step that ends just then passes the abandon on to the next one). Returns how many
    runs were told (0: no run was in such a step)."""
    told = 0
    for loop, _, steps in list(_RUNS.copy().values()):
        if not steps.running:  # (no step under way: the press is not this function's)
            continue
        with contextlib.suppress(RuntimeError):  # that loop has just closed
            loop.call_soon_threadsafe(steps.abandon, how)
            told += 1
    return told


async def _interruptible(
    run: Coroutine[Any, Any, None], swallowed: list[str] | None = None
) -> None:
    """Await ``run`` as a run :func:`interrupt_runs` can reach; the names of interrupts its
    teardown swallowed while an error ended it go to ``swallowed``."""
    task = asyncio.current_task()
    assert task is not None
    steps = _Steps()
    _RUNS[id(task)] = (asyncio.get_running_loop(), task, steps)
    _SWALLOWED.set(swallowed)
    _STEPS.set(steps)
    try:
        await run
    finally:
        _RUNS.pop(id(task), None)


def _run_interruptible(
    run: Coroutine[Any, Any, None], swallowed: list[str] | None = None
) -> None:
    """``asyncio.run(run)`` as a run :func:`interrupt_runs` can reach, where a first Ctrl-C
    (or SIGTERM) cancels it at the event loop's next turn, between two steps of its
    tasks; a second one abandons the teardown step in progress, also at the loop's next
    turn (:func:`abandon_teardown_steps`: the run says so and goes on with the next
    step); a second one when no such step runs, or a third, raises KeyboardInterrupt
    where it lands (abandon the run), as asyncio's own.

    asyncio's own handler (``asyncio.Runner``) cancels the main task inside the signal
    handler, that is between any two bytecodes of whatever runs: a worker that had just
    seen the scheduler's waiter pending (``not s.done()``) then set the result of a
    future the cancellation had cancelled meanwhile, and died of
    ``InvalidStateError('invalid state')`` (seen as "worker failed: ..." after a Ctrl-C;
    a timer's ``_set`` could meet the same). Cancelling from the loop, as
    :func:`interrupt_runs` does for runs in other threads, leaves every check-then-set on
    the loop's one thread true. An interrupt before the run is reachable raises
    KeyboardInterrupt; so does a run that ends cancelled by one (as asyncio's), with the
    argument ``"SIGTERM"`` for a SIGTERM (:func:`interrupt_name`). An interrupt that an
    error ending the run made its teardown swallow is named in ``swallowed``: the error
    is raised, and the caller still knows the run was interrupted."""
    own = _own_interrupts()
    if not own:
        asyncio.run(_interruptible(run, swallowed))
        return
    pressed: list[int] = []

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        pressed.append(signum)
        how = interrupt_name(_interrupt(signum))
        if len(pressed) == 1 and interrupt_runs(how):  # at the loop's next turn
            return
        # Not raised where it lands (inside an SSH connection's task it would break the
        # connection the next steps need): the step in progress is cancelled instead.
        if len(pressed) == 2 and abandon_teardown_steps(how):
            return
        raise _interrupt(signum)

    previous = {s: signal.signal(s, on_signal) for s in own}
    try:
        asyncio.run(_interruptible(run, swallowed))
    except asyncio.CancelledError:
        if pressed:
            raise _interrupt(pressed[0]) from None
        raise
    except Exception:  # an error ends the run: an interrupt no teardown swallowed is named
        if pressed and swallowed is not None and not swallowed:
            swallowed.append(interrupt_name(_interrupt(pressed[0])))
        raise
    else:
        if pressed:  # it landed after the run's last step: its cancel found nothing to stop
            raise _interrupt(pressed[0])
    finally:
        for s, handler in previous.items():
            if signal.getsignal(s) is on_signal:
                signal.signal(s, handler)


def _cancel_name(task: asyncio.Task[Any]) -> str:
    """How the cancelled ``task`` was cancelled, for people (:func:`interrupt_name`)."""
    try:
        task.result()
    except asyncio.CancelledError as e:
        return interrupt_name(e)
    except BaseException:  # (not cancelled after all)
        pass
    return "Ctrl-C"


def _abandoned(life: _Lifecycle, what: str) -> Callable[[str, bool], None]:
    """An ``on_abandon`` for :func:`_to_the_end`: the phase shown ends as stopped and the
    run's problems say that ``what`` was abandoned, during it or before it began."""

    def note(how: str, started: bool) -> None:
        if started:
            progress.end(stopped=True)
        when = "during it" if started else "as the step before it ended"
        life.problems.append(f"{what} was abandoned ({how} {when})")
        life.abandoned = True

    return note


def _interrupt(signum: int) -> KeyboardInterrupt:
    """The KeyboardInterrupt that stands for signal ``signum`` (SIGINT, SIGTERM)."""
    return KeyboardInterrupt("SIGTERM") if signum == signal.SIGTERM else KeyboardInterrupt()


def interrupt_name(e: BaseException) -> str:
    """How the interrupt ``e`` (a KeyboardInterrupt of :func:`_interrupt`, or the
    cancellation of a run by :func:`interrupt_runs`, whose message says) came, for people:
    ``"SIGTERM"``, else ``"Ctrl-C"``."""
    return "SIGTERM" if e.args == ("SIGTERM",) else "Ctrl-C"


def _on_sigterm(signum: int, frame: types.FrameType | None) -> None:
    raise _interrupt(signum)


def _own_interrupts() -> list[signal.Signals]:
    """The interrupts a run in this thread handles itself: none outside the main thread
    or under another's Ctrl-C handler (a campaign's); else SIGINT unless it is ignored
    (``clew test &`` in a script), and SIGTERM unless someone else handles it."""
    sigint = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or (
        sigint not in (signal.default_int_handler, signal.SIG_IGN)
    ):
        return []
    own = [signal.SIGINT] if sigint is signal.default_int_handler else []
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, _on_sigterm):
        own.append(signal.SIGTERM)
    return own


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """While the block lasts, in the main thread of a process whose SIGINT and SIGTERM
    nobody else handles: SIGTERM (``kill``, ``timeout``, a CI job cancelled) stops a run
    as a Ctrl-C does (:func:`_run_interruptible`), and raises KeyboardInterrupt elsewhere
    (its check, its report). By default it ended clew at once: no heal (the nodes' leases
    healed the faults later), no teardown, the cluster the run made left up (half made
    if it was coming up), nothing checked."""
    if signal.SIGTERM not in _own_interrupts() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@dataclass(slots=True)
class RunOutcome:
    """What one run produced: its directory, verdict and results (``results.json``);
    ``ops`` client operations over ``duration`` seconds of history, in ``wall_seconds``
    of wall time (``None`` for ``clew analyze``, which does not run the test)."""

    run_dir: Path
    valid: Any
    results: dict[str, Any]
    ops: int = 0
    duration: float = 0.0
    wall_seconds: float | None = None
    problems: list[str] = field(default_factory=list)
    #: What stopped the run, its check or its report, if anything did: ``"Ctrl-C"`` or
    #: ``"SIGTERM"`` (:func:`interrupt_name`); ``""`` if nothing (the run is recorded).
    interrupted: str = ""

    @property
    def exit_code(self) -> int:
        return 0 if self.valid is True else 1 if self.valid is False else 2


def _versions(db: DB) -> dict[str, Any]:
    try:
        clew = importlib.metadata.version("clew")
    except importlib.metadata.PackageNotFoundError:
        clew = "unknown"
    return {"clew": clew, "python": platform.python_version(), "db": getattr(db, "name", "?")}


def _bring_up(spec: TestSpec) -> tuple[Cluster, bool, Path]:
    """The cluster to use: a healthy one already up in the state dir, else a new one.
    Returns (cluster, whether this run made it, state dir)."""
    provider = get_provider(spec.provider)
    state = cluster_state_dir(spec)
    try:
        existing: Cluster | None = Cluster.load(state)
    except ClusterError:  # none there yet (or not one clew can read: its `up` says why)
        existing = None
    if existing is not None:
        n = len(existing.nodes)
        if existing.provider == spec.provider and n and n != spec.nodes and not (
            spec.cluster_options  # (they describe a cluster: its provider decides)
        ):
            # (A static cluster's provider asked for "--nodes host1,host2,host3" here.)
            raise ConfigError(
                f"the {existing.provider} cluster up in {state} has {n} nodes, and this run "
                f"asks for {spec.nodes}; give --nodes {n}, or take it down first "
                f"(`{down_command(state)}`)"
            )
        same = existing.provider == spec.provider and n == spec.nodes
        status = None
        if same:
            with contextlib.suppress(ClusterError):  # (its `up` then says what is wrong)
                status = provider.status(state)
        if status is not None and status.healthy:
            log.info("using the cluster already up in %s", state)
            # A static cluster's password is never saved: read again from the variable
            # `clew cluster up --password-env VAR` named (ConfigError if it is unset).
            return with_passwords(existing), False, state
        if status is not None and not provider.makes_nodes and not spec.cluster_options:
            # Hosts clew did not make: bringing them up again cannot help (a static
            # cluster's `up` asked for "--nodes host1,host2,host3").
            down = [f"{k} ({v})" for k, v in status.nodes.items() if v != "up"]
            raise ClusterError(
                f"the {existing.provider} cluster in {state} is not healthy: "
                f"{'; '.join(down + list(status.problems)) or 'no node answers'}; "
                f"`clew cluster status --state-dir {state}` says more"
            )
    cluster = provider.up(_cluster_spec(spec, state))
    return cluster, True, state


def _cluster_spec(spec: TestSpec, state: Path) -> ClusterSpec:
    """What to ask the provider for, for a run of ``spec`` with its cluster in ``state``."""
    return ClusterSpec(
        provider=spec.provider,
        nodes=spec.nodes,
        state_dir=str(state),
        options=dict(spec.cluster_options),
    )


async def _on_all(
    remotes: Any, what: str, fn: Callable[[Any], Any], limit: float, *, fail_fast: bool = False
) -> None:
    """Run ``fn(remote)`` on every node at once, for at most ``limit`` seconds; raise one
    :class:`ClusterError` naming every failure, and the nodes still at it when time ran out
    (a bare TimeoutError was reported as a crash of clew). With ``fail_fast`` (a setup,
    which cannot succeed once one node failed), the first failure stops the other nodes'
    work at once rather than leaving them to wait out ``limit`` for it."""
    tasks = {name: asyncio.ensure_future(fn(remote)) for name, remote in remotes.items()}
    when = asyncio.FIRST_EXCEPTION if fail_fast else asyncio.ALL_COMPLETED
    t0 = time.monotonic()
    try:
        _, pending = await asyncio.wait(tasks.values(), timeout=limit, return_when=when)
    finally:  # the time limit, the first failure, or this task cancelled (Ctrl-C)
        for t in tasks.values():
            t.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    failed = {n: t.exception() for n, t in tasks.items()
              if t not in pending and not t.cancelled() and t.exception() is not None}  # fmt: skip
    left = [n for n, t in tasks.items() if t in pending]
    detail = "; ".join(f"{n}: {e}" for n, e in sorted(failed.items()))
    if failed:
        why = f"at the {limit:g} s limit" if time.monotonic() - t0 >= limit else "then"
        stopped = f" (stopped on {', '.join(left)} {why})" if left else ""
        raise ClusterError(f"{what} failed on {len(failed)} node(s){stopped}: {detail}")
    if left:
        raise ClusterError(
            f"{what} did not finish within {limit:g} s on {len(left)} node(s): "
            f"{', '.join(left)}; the nodes' logs are in the run's nodes/ directory"
        )


async def _download_logs(ctx: TestContext, db: DB, remotes: Any, run: RunDir) -> list[str]:
    problems: list[str] = []

    async def fetch(remote: Any) -> None:
        node = remote.node
        for path in db.log_files(ctx, node):
            dest = run.node_dir(node.name) / Path(path).name
            try:
                await remote.download(path, dest)
            except ClewError as e:
                problems.append(f"log {path} from {node.name}: {e}")

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(TEARDOWN_TIMEOUT):
            await remotes.on_nodes(fetch)
    return problems


async def _to_the_end(
    teardown: Coroutine[Any, Any, None],
    *,
    interrupt: bool = True,
    on_abandon: Callable[[str, bool], None] | None = None,
) -> None:
    """Run ``teardown`` to its end even if this task is cancelled meanwhile (a first
    Ctrl-C, or :func:`interrupt_runs`), then raise that cancellation, unless ``interrupt``
    is false (another exception is already ending the run: then its name is added to the
    run's swallowed interrupts, :data:`_SWALLOWED`): the user's interrupt still
    stops the run, but never cuts its healing or teardown short.

    With ``on_abandon``, a second Ctrl-C (:func:`abandon_teardown_steps`) cancels the
    teardown where it waits (or, if it came as the step before ended, before it starts):
    ``on_abandon`` is called with the interrupt's name and whether the step had begun (to
    say so in the run's problems) and the cancellation is raised, unless ``interrupt`` is
    false (the error ending the run goes on). Steps that run in a thread (the cluster's
    bring-up and down) cannot be cut short and take none."""
    steps = _STEPS.get() if on_abandon is not None else None
    if on_abandon is not None and steps is not None and steps.pending:
        teardown.close()  # (never started)
        on_abandon(steps.pending.pop(), False)
        if interrupt:
            raise asyncio.CancelledError()
        return
    task = asyncio.ensure_future(teardown)
    if steps is not None:
        steps.running.add(task)
        task.add_done_callback(steps.running.discard)
    cancelled: asyncio.CancelledError | None = None
    try:
        while True:
            try:
                await asyncio.shield(task)
                break
            except asyncio.CancelledError as e:
                if task.cancelled():  # abandoned (a second Ctrl-C), or the loop closes
                    if on_abandon is not None:
                        on_abandon(_cancel_name(task), True)
                        if not interrupt:  # the error ending the run goes on
                            return
                    raise
                cancelled = e
                if task.done():  # it ended just as the cancel came: its own outcome stands
                    task.result()
                    break
    finally:  # (also when the teardown failed: the run was interrupted all the same)
        if cancelled is not None and not interrupt:
            swallowed = _SWALLOWED.get()
            if swallowed is not None:
                swallowed.append(interrupt_name(cancelled))
    if cancelled is not None and interrupt:
        raise cancelled


@dataclass(slots=True)
class _Lifecycle:
    """What the lifecycle leaves for checking: filled in as the scopes are entered."""

    run: RunDir | None = None
    ctx: TestContext | None = None
    workload: Workload | None = None
    problems: list[str] = field(default_factory=list)
    residue: dict[str, list[str]] = field(default_factory=dict)
    #: Why the run stopped before its end, if it did (see :attr:`RunResults.incomplete`).
    incomplete: str | None = None
    #: Whether the load ran to its end (its final ops included).
    loaded: bool = False
    #: Whether a second Ctrl-C abandoned a teardown step (:func:`_abandoned`).
    abandoned: bool = False


@contextlib.asynccontextmanager
async def _cluster_scope(spec: TestSpec, life: _Lifecycle) -> AsyncIterator[Cluster]:
    """The cluster, brought up unless a healthy one is; down on exit if this run made it
    (and ``leave_db_running`` is off)."""
    progress.begin("cluster", f"{spec.nodes} {spec.provider} nodes: reusing or bringing up")
    with cluster_in_use(cluster_state_dir(spec)):  # one run at a time on these nodes
        async with _cluster_up(spec, life) as cluster:
            yield cluster


def cluster_state_dir(spec: TestSpec) -> Path:
    """The state directory of the cluster a run of ``spec`` uses."""
    return Path(spec.cluster_state_dir) if spec.cluster_state_dir else default_state_dir()


@contextlib.asynccontextmanager
async def _cluster_up(spec: TestSpec, life: _Lifecycle) -> AsyncIterator[Cluster]:
    """The cluster up for the run (:func:`_bring_up`), down again at the end if the run
    made it; a Ctrl-C while it comes up lets it come up, then takes it down."""
    brought: list[tuple[Cluster, bool, Path]] = []

    async def bring_up() -> None:
        brought.append(await asyncio.to_thread(_bring_up, spec))

    try:  # a Ctrl-C while it comes up: it comes up, then down again if this run made it
        await _to_the_end(bring_up())
    except asyncio.CancelledError:
        if brought and brought[0][1] and not spec.leave_db_running:
            down = asyncio.to_thread(get_provider(spec.provider).down, brought[0][2])
            await _to_the_end(down, interrupt=False)
        raise
    cluster, made, state = brought[0]

    async def take_down() -> None:
        progress.begin("cluster down")
        try:
            await asyncio.to_thread(get_provider(spec.provider).down, state)
        except Exception as e:
            life.problems.append(f"cluster down: {e}")

    failing = True
    try:
        yield cluster
        failing = False
    finally:
        if made and not spec.leave_db_running:
            # to its end: a Ctrl-C cancelled the wait, not the thread's `down`, and the
            # cluster's lock was given back while `down` still ran, its failure unrecorded
            await _to_the_end(take_down(), interrupt=not failing)


@contextlib.asynccontextmanager
async def _remotes_scope(cluster: Cluster) -> AsyncIterator[Remotes]:
    remotes = await connect_all(cluster.nodes)
    try:
        yield remotes
    finally:
        await remotes.close()


@contextlib.asynccontextmanager
async def _db_scope(
    spec: TestSpec, ctx: TestContext, db: DB, remotes: Remotes, life: _Lifecycle
) -> AsyncIterator[None]:
    """The database set up on every node; on exit its logs are downloaded and it is torn
    down (unless ``leave_db_running``)."""
    progress.begin("database setup", f"{db.name} on {len(ctx.nodes)} nodes")

    async def teardown() -> None:
        assert life.run is not None
        progress.begin("node logs", "downloading")
        life.problems.extend(await _download_logs(ctx, db, remotes, life.run))
        if not spec.leave_db_running:
            progress.begin("database teardown")
            try:
                await _on_all(
                    remotes, f"{db.name} teardown", lambda r: db.teardown(ctx, r.node, r),
                    TEARDOWN_TIMEOUT,
                )  # fmt: skip
            except Exception as e:
                life.problems.append(str(e))

    failing = True
    try:
        await _on_all(remotes, f"{db.name} setup", lambda r: db.setup(ctx, r.node, r),
                      DB_SETUP_TIMEOUT, fail_fast=True)  # fmt: skip
        yield
        failing = False
    finally:
        await _to_the_end(teardown(), interrupt=not failing,
                          on_abandon=_abandoned(life, "the database's teardown"))  # fmt: skip


@contextlib.asynccontextmanager
async def _clients_scope(
    ctx: TestContext, workload: Workload, life: _Lifecycle
) -> AsyncIterator[list[Client]]:
    """One open client per worker (worker ``i`` on node ``i mod n``); closed on exit."""
    opened: list[Client] = []

    async def close_all() -> None:
        for client in opened:
            try:
                async with asyncio.timeout(TEARDOWN_TIMEOUT):
                    await client.close(ctx)
            except Exception as e:
                life.problems.append(f"closing a client: {e}")

    failing = True
    try:
        for i in range(ctx.concurrency):
            client = workload.client()
            await client.open(ctx, ctx.nodes[i % len(ctx.nodes)])
            opened.append(client)
        yield opened
        failing = False
    finally:
        await _to_the_end(close_all(), interrupt=not failing,
                          on_abandon=_abandoned(life, "closing the clients"))  # fmt: skip


@contextlib.asynccontextmanager
async def _nemesis_scope(
    spec: TestSpec, ctx: TestContext, faults: FaultSet, life: _Lifecycle
) -> AsyncIterator[FaultSet]:
    """The fault set with its leases renewed while the scope lasts. On exit, whatever
    happened: the final heal, the verify-healed barrier (its residue marks the run
    tainted) and the guards stopped. When the run itself healed every fault it started
    (the generator's final ops ran, none is active, none failed), the barrier is asked
    first and the blind heal of every kind on every node is made only if it finds residue;
    otherwise the blind heal comes first, as always.

    A Ctrl-C (a cancellation of the run) that arrives during this exit does not cut it
    short: the heal and the barrier run to their end, then the interrupt goes on."""
    keep_alive = asyncio.create_task(faults.keep_alive(ctx, fault_lease(spec, ctx) / 3))
    ended = False

    verified = False  # (the heal's verify ran to its end: only the guards' stop remains)

    async def heal_and_verify() -> None:
        nonlocal verified
        keep_alive.cancel()
        await asyncio.wait({keep_alive})  # its own end (cancelled, or an error) is not ours
        healed = ended and not _fault_errors(faults) and not faults.active
        if not healed:  # heal first: whatever happened, the network must come back
            await _heal_all(faults, ctx, life)
        try:
            async with asyncio.timeout(TEARDOWN_TIMEOUT):
                life.residue = await faults.verify_healed(ctx)
                if healed and any(life.residue.values()):
                    await _heal_all(faults, ctx, life)
                    life.residue = await faults.verify_healed(ctx)
                verified = True
                if faults.guard is not None:
                    await faults.guard.stop()
        except Exception as e:
            life.problems.append(f"verifying the heal: {e}")
            life.residue = life.residue or {"controller": [f"cannot verify: {e}"]}

    def abandoned(how: str, started: bool) -> None:
        keep_alive.cancel()  # (abandoned before it began: the leases must lapse too)
        lease = fault_lease(spec, ctx)
        _abandoned(life, "the final heal")(how, started)
        if verified:  # (cut short while the guards stopped: the residue was found)
            return
        life.residue = {  # (over what a verify may have found before it was cut short)
            **life.residue,
            "controller": [f"not verified: the final heal was abandoned ({how}); each "
                           f"node's guard heals what is left within the fault lease, {lease:g} s"],
        }  # fmt: skip

    try:
        yield faults
        ended = True
    finally:
        await _to_the_end(heal_and_verify(), interrupt=ended, on_abandon=abandoned)


def _fault_errors(faults: FaultSet) -> bool:
    """Whether a fault op of the run failed (it may have acted in part)."""
    ledger = faults.ledger
    return ledger is None or any(r.get("event") == "error" for r in ledger.records)


async def _heal_all(faults: FaultSet, ctx: TestContext, life: _Lifecycle) -> None:
    """Heal every kind on every node; a failure is a problem of the run."""
    try:
        async with asyncio.timeout(TEARDOWN_TIMEOUT):
            await faults.heal_all(ctx, reason="final")
    except Exception as e:
        life.problems.append(f"final heal: {e}")


def _context(spec: TestSpec, cluster: Cluster, run_dir: Path) -> TestContext:
    assert spec.seed is not None
    return TestContext(
        name=spec.test_name,
        cluster=cluster,
        options=dict(spec.options),
        rng=random.Random(spec.seed),
        run_dir=run_dir,
        concurrency=spec.resolved_concurrency,
        time_limit=spec.time_limit,
    )


async def _check_suite_can_run(suite: Suite, ctx: TestContext) -> None:
    """Refuse (:class:`ConfigError`) a suite whose ``requires`` this cluster lacks or whose
    own ``preflight`` names problems, before the run is recorded."""
    problems: list[str] = []
    for name in suite.requires:
        cap = ctx.cluster.capability(name)
        if cap is None or not cap.available:
            why = cap.detail if cap is not None and cap.detail else "not available"
            problems.append(f"it needs {name} from the {ctx.cluster.provider} provider: {why}")
    if suite.preflight is not None:
        problems.extend(str(p) for p in await suite.preflight(ctx))
    if problems:
        raise ConfigError(f"suite {suite.name!r} cannot run here: " + "; ".join(problems))


async def _execute(
    spec: TestSpec,
    suite: Suite,
    life: _Lifecycle,
    *,
    open_run: Callable[[TestContext, DB, ScheduleRecord], RunDir],
    on_progress: Callable[[Any, str | None], None] | None,
    schedule: list[dict[str, Any]] | None,
) -> None:
    """The run's scopes (see the module docstring). ``open_run`` creates the run directory
    once everything is validated; ``life`` receives what checking needs."""
    assert spec.workload is not None
    async with contextlib.AsyncExitStack() as stack:
        cluster = await stack.enter_async_context(_cluster_scope(spec, life))
        ctx = _context(spec, cluster, Path(spec.store) / spec.test_name)
        workload = suite_part(suite, f"workload {spec.workload!r}",
                              suite.workloads[spec.workload], ctx, Workload)  # fmt: skip
        db = suite_part(suite, "db", suite.db, ctx, DB)
        source = spec.scheduler if schedule is None else "replay"
        if schedule is None:
            schedule = plan_run_schedule(spec, ctx, db)
        scheduler, handed = None, list[dict[str, Any]]()
        if spec.faults or spec.agent or schedule:  # a run with faults: its scheduler, now
            scheduler = run_scheduler(spec, schedule, source)
            # Steps it hands the node agents (strikes on their own clocks or on triggers).
            spec, handed = scheduler_agent_steps(spec, ctx, db, schedule, scheduler)
        preflight_faults(spec, ctx, db, schedule)  # impossible faults: refused before the run
        await _check_suite_can_run(suite, ctx)
        # Nodes that cannot be reached (a host key not in known_hosts, no login key) are
        # the cluster's problem, not the run's: nothing recorded, no `latest` moved.
        remotes = await stack.enter_async_context(_remotes_scope(cluster))
        # Validated: from here on, the run is recorded.
        run = open_run(ctx, db, ScheduleRecord(source=source, seed=spec.seed, steps=schedule))
        ctx = dataclasses.replace(ctx, run_dir=run.path)
        life.run, life.ctx, life.workload = run, ctx, workload
        journal = stack.enter_context(contextlib.closing(Journal(run.history)))
        ledger = stack.enter_context(contextlib.closing(FaultLedger(run.faults, source=source)))
        for rec in handed:
            ledger.write({"seq": ledger.next_seq(), **rec})
        await stack.enter_async_context(_db_scope(spec, ctx, db, remotes, life))
        clients = await stack.enter_async_context(_clients_scope(ctx, workload, life))
        faults = await build_nemesis(spec, ctx, remotes, db, schedule, ledger=ledger, source=source)
        if faults is not None:
            await stack.enter_async_context(_nemesis_scope(spec, ctx, faults, life))
            if faults.guard is not None:  # each node's own journal, into nodes/<n>/
                faults.guard.journal_to = run.path / "nodes"
                if spec.has_agents:  # the nodes' part of the schedule, handed over now
                    nemeses = {k: p.nemesis for k, p in faults.packages.items()}
                    await hand_over(faults.guard, compile_slices(spec.agent, ctx, db, nemeses),
                                    record=run.path / "agents.json")  # fmt: skip
        ledger.restart_clock()  # fault times share the history's origin
        # The wall time of that origin: the report puts the node logs on the run's clock.
        run.write_json("clock.json", {"origin_unix_ns": time.time_ns()})
        gen = build_generator(spec, ctx, workload, faults, schedule, scheduler)

        def on_op_progress(p: Any) -> None:
            if on_progress:
                on_progress(p, faults.active_names if faults else None)

        await _load(spec, ctx, gen, clients, faults, journal, on_op_progress)
        life.loaded = True


async def _load(
    spec: TestSpec,
    ctx: TestContext,
    gen: Any,
    clients: Any,
    faults: FaultSet | None,
    journal: Journal,
    on_op_progress: Callable[[Any], None],
) -> None:
    """The load phase: the interpreter drives the workers and the nemesis; then the
    "heal and verify" phase begins (the scopes' exits heal and verify), also when a Ctrl-C
    or an error cuts the load short, which then is not called done."""
    progress.begin("load", f"{spec.time_limit:g} s of ops, then the final heal and reads")
    try:
        await interpret(
            gen,
            ctx=ctx,
            clients=clients,
            nemesis=faults,
            journal=journal,
            op_timeout=spec.op_timeout,
            seed=spec.seed or 0,
            on_progress=on_op_progress,
        )
    except BaseException:
        progress.begin("heal and verify", "the load was cut short; healing every fault and "
                       "checking nothing is left", cut_short=True)  # fmt: skip
        raise
    progress.begin("heal and verify", "healing every fault and checking nothing is left")


def _recorded(run: RunDir) -> bool:
    """Whether ``run``'s journal holds anything (an op was recorded)."""
    return run.history.exists() and run.history.stat().st_size > 0


def client_ops(history: History) -> int:
    """The client operations of ``history`` (invocations by client processes)."""
    return int(np.count_nonzero((history.type == INVOKE) & (history.process >= 0)))


def history_duration(history: History) -> float:
    """Seconds from the first op of ``history`` to its last (0 for an empty one)."""
    if len(history) == 0:
        return 0.0
    return float(int(history.time.max()) - int(history.time.min())) / 1e9


def _check(
    run: RunDir, workload: Workload | None, ctx: TestContext | None
) -> tuple[dict[str, Result], History, float, str | None]:
    """Run the workload's checker over the journal (crashes become "unknown"); also the
    seconds checking took, and a note if the journal's torn last line was left out."""
    history, torn = read_run_history(run.history)
    checked, seconds = _verdicts(history, workload, ctx)
    return checked, history, seconds, torn


def _verdicts(
    history: History, workload: Workload | None, ctx: TestContext | None
) -> tuple[dict[str, Result], float]:
    """The workload's checker's verdict on ``history`` (a crash is "unknown"), and the
    seconds it took."""
    if workload is None or ctx is None:
        return {}, 0.0
    t0 = time.monotonic()
    try:
        result = workload.check(history, ctx)
    except InputError as e:  # the history holds what the checker cannot take (file, line)
        log.warning("checker %s: %s", workload.name, e)
        result = Result(valid=UNKNOWN, checker=workload.name,
                        cause=f"the history cannot be checked: {e}")  # fmt: skip
    except Exception as e:  # a checker that raises gives "unknown", never a crash
        log.exception("checker %s crashed", workload.name)
        result = Result(valid=UNKNOWN, checker=workload.name, cause=f"checker crashed: {e}")
    return {workload.name: result}, time.monotonic() - t0


#: The cause of a check a Ctrl-C (or SIGTERM) stopped (:func:`run_test`).
CHECK_INTERRUPTED = "the check was interrupted ({}); `clew analyze RUN_DIR` checks it again"
#: The problem of a run whose report a Ctrl-C (or SIGTERM) stopped (:func:`run_test`).
RECORD_INTERRUPTED = "interrupted ({}) while the results were recorded; recorded again in full"
REPORT_INTERRUPTED = "the report was interrupted ({}); `clew report RUN_DIR` writes it"


def _results(
    run: RunDir,
    checked: dict[str, Result],
    history: History | None,
    *,
    problems: list[str],
    residue: dict[str, list[str]],
    wall_seconds: float | None,
    check_seconds: float | None,
    incomplete: str | None = None,
) -> RunResults:
    """The run's results, from the checkers' verdicts, the history and the ledger. A
    tainted run (``residue`` left on a node, or the heal not verified) cannot be called
    valid, whatever its history shows: the faults may have outlived their windows; nor can
    an ``incomplete`` one (stopped early by a Ctrl-C or an error: the final reads and the
    ops it did not make may be what would have shown a bug). Either way a valid verdict
    becomes "unknown" (an invalid one stays invalid)."""
    problems = list(problems)
    tainted = any(residue.values())
    records: list[dict[str, Any]] = []
    left_out: list[str] = []
    try:
        records, left_out = read_fault_ledger(run.path)
    except ClewError as e:
        left_out = [str(e)]
    faults, cut = windows_json(fault_windows(records), ledger_cut=bool(left_out))
    for said in [*left_out, *cut]:
        if said not in problems:  # analyzed again: the previous results hold it already
            problems.append(said)
    verified = [r for r in records if r.get("event") == "verified"]
    valid = verdict(r.valid for r in checked.values())
    return RunResults(
        valid=UNKNOWN if (tainted or incomplete) and valid is True else valid,
        checkers={name: r.to_json() for name, r in checked.items()},
        ops=client_ops(history) if history is not None else None,
        history_lines=len(history) if history is not None else None,
        duration=history_duration(history) if history is not None else None,
        wall_seconds=wall_seconds,
        check_seconds=check_seconds,
        tainted=tainted,
        heal_residue=residue,
        heal_verified=bool(verified) and bool(verified[-1].get("clean")),
        faults=faults,
        problems=problems,
        incomplete=incomplete,
    )


def _render_report(
    run: RunDir, history: History | None, store: Path | None, index_runs: int | None = None
) -> list[str]:
    """Write the run's report.html, then refresh the store's index.html (its newest
    ``index_runs`` runs; ``None``: the default; no ``store``: none) whether or not the
    report was written; returns, for the run's problems, each that failed and why (a
    failure loses neither the verdict nor the other page)."""
    problems: list[str] = []
    pages: list[tuple[str, Callable[[], object]]] = [
        ("the run's report", lambda: write_run_report(run.path, history=history)),
    ]
    if store is not None:
        pages.append(("the store's index", lambda: write_index(store) if index_runs is None
                      else write_index(store, index_runs)))  # fmt: skip
    for what, write in pages:
        try:
            write()
        except ClewError as e:  # a file in the way (a directory where report.html goes)
            log.warning("%s was not written: %s", what, e)
            problems.append(f"{what} was not written: {e}")
        except Exception as e:  # a bug of clew's: its traceback goes to clew.log
            log.exception("writing %s failed", what)
            problems.append(f"{what} was not written: {type(e).__name__}: {e} (a bug in "
                            "clew; clew.log has the traceback)")  # fmt: skip
    return problems


def _validated(spec: TestSpec, suite: Suite | None) -> tuple[TestSpec, Suite]:
    """The spec with its seed and workload resolved, and its suite; :class:`ConfigError`
    for an unknown suite or workload (before anything is created)."""
    spec = spec.with_seed()
    suite = suite or load_suite(spec.suite)
    workload = spec.workload or suite.default_workload
    if workload not in suite.workloads:
        raise ConfigError(
            f"suite {suite.name!r} has no workload {workload!r}; "
            f"it has {', '.join(suite.workloads)}"
        )
    return dataclasses.replace(spec, workload=workload), suite


def check_before_cluster(
    spec: TestSpec,
    schedule: Sequence[dict[str, Any]] = (),
    suite: Suite | None = None,
    *,
    stored: bool = False,
) -> tuple[TestSpec, Suite]:
    """What can be refused before any cluster or run directory exists: an unknown suite
    or workload, cluster options the provider would refuse, ``--scheduler replay`` for a
    new run, fault kinds that need more nodes than ``spec`` has or a provider it does not
    name, and options that no
    part of the run reads (:func:`harness.suite_options.check_suite_options`). Returns
    the spec with its seed and workload resolved, and its suite. With ``stored`` (the
    spec of a recorded run, replayed: nothing on the command line can drop its options)
    options no part reads are a warning, not a refusal."""
    spec, suite = _validated(spec, suite)
    provider = get_provider(spec.provider)
    if spec.cluster_options or provider.makes_nodes:  # (else: static hosts already up)
        provider.check_spec(_cluster_spec(spec, cluster_state_dir(spec)))
    if not stored:  # (a replay plays its stored schedule, whatever its scheduler)
        check_plannable(spec)  # --scheduler replay
    check_node_count(spec, schedule)  # a partition on 1 node
    check_fault_providers(spec, run_kinds(spec, schedule))  # power-off without VMs
    try:
        check_suite_options(spec.options, suite, spec.workload or suite.default_workload,
                            run_kinds(spec, schedule))  # fmt: skip
    except ConfigError as e:
        if not stored:
            raise
        log.warning("the stored run's options are replayed as recorded, but: %s", e)
    if spec.agent and spec.provider != "static":  # (static hosts name their own nodes)
        validate_agent_steps(list(spec.agent), "agent steps", standin_node_names(spec.nodes))
    if is_builtin(suite):
        _dry_build(spec, suite, run_kinds(spec, schedule))
    return spec, suite


def check_stored_before_cluster(
    spec: TestSpec, schedule: Sequence[dict[str, Any]], suite: Suite, spec_path: str | Path
) -> None:
    """:func:`check_before_cluster` of a stored run's ``spec`` (read from ``spec_path``,
    its ``spec.json``) with the ``schedule`` it is to replay (``clew replay``, ``clew
    shrink``), the :class:`ConfigError` naming ``spec_path``: what is refused (an option
    value, a fault kind the nodes cannot have) is the stored run's, not a flag's."""
    try:
        check_before_cluster(spec, schedule, suite, stored=True)
    except ConfigError as e:
        if str(e).startswith(f"{spec_path}:"):
            raise
        raise ConfigError(f"{spec_path}: {e}") from None


def standin_node_names(count: int) -> list[str]:
    """The names every provider but ``static`` gives a cluster's ``count`` nodes."""
    return [f"n{i}" for i in range(1, count + 1)]


def _dry_build(spec: TestSpec, suite: Suite, kinds: Sequence[str] = ()) -> None:
    """Build a built-in suite's DB and the run's workload from ``spec``'s options, and
    check an empty history with them, on a stand-in cluster of ``spec.nodes`` nodes that
    nothing contacts: a bad option value (``pre_vote=maybe``, ``accounts=1``, or
    ``check_time_limit=-1``, which only the check reads) is then a :class:`ConfigError`
    before any cluster comes up, not after it (or after the whole run); so is a fault kind
    of ``kinds`` the DB cannot have, or whose package the options cannot build
    (:func:`harness.runplan.check_fault_packages`), and an agent step the DB adapter or
    the time limit cannot have (:func:`nemeses.agent.compile_slices`, without scripts).
    Built-in suites' factories and
    checkers only read options and make objects; a suite file's might do more, so its
    are not called here."""
    assert spec.seed is not None and spec.workload is not None
    nodes = tuple(Node(name=n, host="192.0.2.1") for n in standin_node_names(spec.nodes))
    stand_in = Cluster(provider=spec.provider, name="not-up-yet", nodes=nodes, state_dir="")
    ctx = _context(spec, stand_in, Path(spec.store) / "not-made")
    db = suite.db(ctx)
    workload = suite.workloads[spec.workload](ctx)
    workload.check(History.from_ops([]), ctx)
    check_fault_packages(spec, db, kinds)
    if spec.agent and spec.provider != "static":  # (static hosts name their own nodes)
        compile_slices(spec.agent, ctx, db)  # a log pattern the DB lacks, a step too late


def run_test(
    spec: TestSpec,
    *,
    on_progress: Callable[[Any, str | None], None] | None = None,
    on_run_dir: Callable[[Path], None] | None = None,
    schedule: list[dict[str, Any]] | None = None,
    replay_of: str | None = None,
    suite: Suite | None = None,
    index_runs: int | None = None,
) -> RunOutcome:
    """Run one test described by ``spec``, store it, check it; return the outcome.

    The fault schedule is planned from the seed unless ``schedule`` is given (``clew
    replay``: the steps a stored run applied; ``replay_of`` names that run). ``suite``,
    when given, is used instead of loading ``spec.suite``. The store's index lists its
    newest ``index_runs`` runs (0: every run; ``None``: the index's default).

    Raises :class:`~harness.errors.ClewError` for problems before the run is recorded (an
    unknown suite or workload, a cluster that cannot come up, a fault kind this cluster
    and database cannot have): then no run directory exists and no ``latest`` link moved.
    After that, problems are recorded in results.json. A Ctrl-C during the run stops it
    (the scopes unwind, healing); one during its check or its report stops that, and the
    run is recorded all the same (an interrupted check is "unknown"); either way the
    outcome says ``interrupted``.
    """
    t0 = time.monotonic()
    spec, suite = check_before_cluster(spec, schedule or (), suite, stored=replay_of is not None)
    # Until the run directory exists, log records wait in memory for its clew.log.
    early = logging.handlers.MemoryHandler(EARLY_LOG_RECORDS, flushLevel=logging.CRITICAL + 1)
    early.setLevel(logging.DEBUG)
    clew_log = logging.getLogger("clew")
    clew_log.addHandler(early)
    clew_log.setLevel(logging.DEBUG)
    handlers: list[logging.Handler] = [early]

    def open_run(ctx: TestContext, db: DB, sched: ScheduleRecord) -> RunDir:
        run = new_run_dir(spec.store, spec.test_name)
        if on_run_dir:
            on_run_dir(run.path)
        extra = {"replay_of": replay_of} if replay_of else {}
        RunSpec({**spec.to_json(), "workload": spec.workload, **extra}).write(run.path)
        run.write_json("versions.json", _versions(db))
        sched.write(run.path)
        handler = logging.FileHandler(run.log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.DEBUG)
        early.setTarget(handler)
        early.flush()
        clew_log.addHandler(handler)
        clew_log.removeHandler(early)
        handlers.append(handler)
        return run

    life = _Lifecycle()
    interrupted = ""  # "Ctrl-C" or "SIGTERM": what stopped the run, its check or report
    swallowed: list[str] = []  # interrupts during a teardown that an error was ending
    with _sigterm_as_ctrl_c():  # SIGTERM: as a Ctrl-C
        try:
            try:
                run_scopes = _execute(
                    spec, suite, life, open_run=open_run, on_progress=on_progress, schedule=schedule
                )
                _run_interruptible(run_scopes, swallowed)
            except (KeyboardInterrupt, asyncio.CancelledError) as e:  # or interrupt_runs
                if life.run is None:
                    raise
                how = interrupted = interrupt_name(e)
                if life.loaded:  # the heal, verify and teardown are not cut short either
                    life.problems.append(f"interrupted ({how}) after the load, which ran to "
                                         "its end; the run is checked as usual")  # fmt: skip
                else:
                    if _recorded(life.run):  # (else: nothing to check, below)
                        life.problems.append(
                            f"interrupted ({how}); the history so far is checked")
                    life.incomplete = f"interrupted ({how})"
            except ClewError as e:
                if swallowed:  # a Ctrl-C during its teardown: it stops what comes after
                    interrupted = swallowed[0]
                if life.run is None or not life.run.history.exists():
                    raise  # nothing was recorded: the error is the whole story
                life.problems.append(str(e))
                if swallowed:
                    life.problems.append(f"interrupted ({interrupted}) while the error "
                                         "ended the run; " + ("a second one abandoned "
                                         "part of its teardown" if life.abandoned else
                                         "its teardown ran to its end"))  # fmt: skip
                life.incomplete = f"stopped by an error: {e}"
                if life.run.history.stat().st_size == 0:
                    raise
            run = life.run
            assert run is not None
            ctx, workload = life.ctx, life.workload
            checked: dict[str, Result] = {}
            history: History | None = None
            check_seconds: float | None = None
            cut_before_any_op = life.incomplete is not None and not _recorded(run)
            if cut_before_any_op:
                life.problems.append(NOTHING_RECORDED)
            elif run.history.exists():
                progress.begin("check", "checking the history")
                t_check = time.monotonic()
                try:
                    history, torn = read_run_history(run.history)
                    if torn is not None:
                        life.problems.append(torn)
                        life.incomplete = life.incomplete or "the journal's last line was torn"
                    checked, check_seconds = _verdicts(history, workload, ctx)
                except KeyboardInterrupt as e:  # the run is recorded all the same, unchecked
                    progress.end(stopped=True)
                    interrupted = interrupt_name(e)
                    check_seconds = time.monotonic() - t_check
                    name = workload.name if workload is not None else "check"
                    why = CHECK_INTERRUPTED.format(interrupted)
                    checked = {name: Result(valid=UNKNOWN, checker=name, cause=why)}

            def record() -> RunResults:
                results = _results(
                    run, checked, history, problems=life.problems, residue=life.residue,
                    wall_seconds=time.monotonic() - t0, check_seconds=check_seconds,
                    incomplete=life.incomplete,
                )  # fmt: skip
                results.write(run.path)
                return results

            try:
                results = record()
            except KeyboardInterrupt as e:  # once more: without results.json the run is lost
                interrupted = interrupt_name(e)
                life.problems.append(RECORD_INTERRUPTED.format(interrupted))
                results = record()
            progress.begin("report", "writing report.html and the store's index")
            try:
                unwritten = _render_report(run, history, Path(spec.store), index_runs)
                progress.end()
            except KeyboardInterrupt as e:  # results.json is written: the verdict is kept
                progress.end(stopped=True)
                interrupted = interrupt_name(e)
                unwritten = [REPORT_INTERRUPTED.format(interrupted)]
            if unwritten:
                results.problems.extend(unwritten)
                try:
                    results.write(run.path)
                except KeyboardInterrupt as e:  # as above: the pages' problems are kept
                    interrupted = interrupt_name(e)
                    results.problems.append(RECORD_INTERRUPTED.format(interrupted))
                    results.write(run.path)
        finally:
            for h in handlers:
                clew_log.removeHandler(h)
                h.close()
    return RunOutcome(
        run_dir=run.path, valid=results.valid, results=results.to_json(),
        ops=results.ops or 0, duration=results.duration or 0.0,
        wall_seconds=results.wall_seconds, problems=results.problems,
        interrupted=interrupted,
    )  # fmt: skip


def _offline_context(spec: TestSpec, run: RunDir) -> TestContext:
    """A context for checking a stored run without a cluster (``clew analyze``)."""
    return TestContext(
        name=spec.test_name,
        cluster=Cluster(provider=spec.provider, name="offline", nodes=(), state_dir=""),
        options=dict(spec.options),
        rng=random.Random(spec.seed or 0),
        run_dir=run.path,
        concurrency=spec.resolved_concurrency,
        time_limit=spec.time_limit,
    )


def suite_part(suite: Suite, what: str, factory: Callable[[TestContext], Any],
               ctx: TestContext, kind: type) -> Any:  # fmt: skip
    """``factory(ctx)``, one of ``suite``'s (its ``db`` or a workload), checked to be a
    ``kind``. A suite file's factory that raises, or returns something else, is the
    file's mistake: :class:`ConfigError` naming the suite, the part, and the line that
    raised. A built-in suite's is a bug in clew, and raises as it is."""
    builtin = is_builtin(suite)
    try:
        part = factory(ctx)
    except ClewError:
        raise
    except Exception as e:
        if builtin:
            raise
        frames = traceback.extract_tb(e.__traceback__)
        at = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        raise ConfigError(
            f"suite {suite.name!r}: its {what} raised {type(e).__name__}: {e}{at}"
        ) from e
    if not isinstance(part, kind) and not builtin:
        members = {*getattr(kind, "__annotations__", {}), *dir(kind)}
        lacks = sorted(m for m in members if not m.startswith("_") and not hasattr(part, m))
        why = f": it lacks {', '.join(lacks)}" if lacks and part is not None else ""
        raise ConfigError(f"suite {suite.name!r}: its {what} returned {type(part).__name__}, "
                          f"not a {kind.__name__} (harness/api.py){why}")  # fmt: skip
    return part


def stored_suite(stored: RunSpec, run_dir: Path, suite_file: str | None, command: str) -> Suite:
    """The suite to check or replay a stored run with. A stored run never chooses code to
    run: only a built-in or installed suite is taken from its ``spec.json``; a suite file
    is loaded only when the user names it again (``suite_file``, from ``--suite FILE``).
    :class:`ConfigError` (exit 254) saying so otherwise, and for a ``suite_file`` given
    for a run of a built-in or installed suite (it would run another database's code)."""
    name = stored.suite
    installed = {ep.name for ep in importlib.metadata.entry_points(group="clew.suites")}
    known = name in BUILTIN_SUITES or name in installed
    if suite_file is not None and known:
        where = "built-in" if name in BUILTIN_SUITES else "installed"
        raise ConfigError(
            f"{run_dir / 'spec.json'}: the run is of the {where} suite {name!r}; "
            f"--suite FILE is for a run of a suite file (leave it out)"
        )
    if suite_file is not None:
        return load_suite(suite_file)
    if known:
        return load_suite(name, files=False)
    raise ConfigError(
        f"{run_dir / 'spec.json'}: the run names the suite {name!r}, which is neither built "
        f"in ({', '.join(BUILTIN_SUITES)}) nor installed; clew does not run code that a "
        f"stored run names. If you trust that file, name it yourself: "
        f"clew {command} {run_dir} --suite FILE"
    )


def stored_workload(stored: RunSpec, suite: Suite, spec_path: Path) -> str:
    """The workload of the stored run (its ``spec.json`` at ``spec_path``), else the
    suite's default; :class:`ConfigError` naming ``spec_path`` if ``suite`` has none of
    that name."""
    name = stored.workload or suite.default_workload
    if name not in suite.workloads:
        raise ConfigError(
            f"{spec_path}: workload {name!r} is not in suite {suite.name!r} "
            f"(it has {', '.join(suite.workloads)})"
        )
    return name


def _stored_run(run_dir: str | Path) -> tuple[RunDir, RunSpec]:
    check_run_dir(run_dir)
    run = RunDir(Path(run_dir).resolve())  # not store/x/latest, which moves to the next run
    stored = RunSpec.read(run.path)
    if stored is None:
        raise ConfigError(f"{run_dir}: not a clew run directory (no spec.json)")
    return run, stored


#: The problem of a run stopped before its first op (nothing to check).
NOTHING_RECORDED = "no op was recorded before the run stopped; nothing to check"

#: Why a run without results.json cannot count as valid (:func:`analyze`).
NEVER_FINISHED = (
    "the run never finished: its controller stopped (crashed or was killed) before writing "
    "results.json, so its load, final reads, heal or verify may not have run"
)


def analyze(
    run_dir: str | Path,
    *,
    suite_file: str | None = None,
    check_time_limit: float | None = None,
    check_max_memory: int | None = None,
) -> RunOutcome:
    """Check a stored run again, offline, from its ``spec.json`` and ``history.jsonl``;
    rewrite ``results.json`` (keeping what the run itself recorded: its wall time, heal
    residue and problems) and the report. Works on the journal of a crashed run, which
    has no results.json: its history is checked, but it cannot count as valid (it is
    incomplete, :data:`NEVER_FINISHED`); an empty journal (a run stopped before its first
    op) has nothing to check and is unknown. The suite comes from :func:`stored_suite`
    (``suite_file``: a file the user names again). ``check_time_limit`` (seconds) and
    ``check_max_memory`` (bytes), if given, replace the run's own options of those names."""
    run, stored = _stored_run(run_dir)
    if not run.history.exists():
        raise ConfigError(f"{run_dir}: the run recorded no history.jsonl")
    suite = stored_suite(stored, run.path, suite_file, "analyze")
    spec = rerun_spec(stored, run.spec, suite_file=suite_file)
    given = {"check_time_limit": check_time_limit, "check_max_memory": check_max_memory}
    spec = dataclasses.replace(
        spec, options={**spec.options, **{k: v for k, v in given.items() if v is not None}}
    )
    ctx = _offline_context(spec, run)
    workload_name = stored_workload(stored, suite, run.spec)
    workload = suite_part(suite, f"workload {workload_name!r}", suite.workloads[workload_name],
                          ctx, Workload)  # fmt: skip
    previous: RunResults | None = None
    problems: list[str] = []
    try:
        previous = RunResults.read(run.path)
    except ClewError as e:
        problems.append(f"the previous results could not be read: {e}")
    before = previous.problems if previous else []
    checked: dict[str, Result] = {}
    history: History | None = None
    check_seconds: float | None = None
    torn: str | None = None
    empty = run.history.stat().st_size == 0  # stopped (or killed) before its first op
    if empty:
        if NOTHING_RECORDED not in before:
            problems.append(NOTHING_RECORDED)
    else:
        checked, history, check_seconds, torn = _check(run, workload, ctx)
    if torn is not None and torn not in before:
        problems.append(torn)
    incomplete = previous.incomplete if previous else None
    if torn is not None:
        incomplete = incomplete or "the journal's last line was torn"
    if previous is None and (not problems or problems == [NOTHING_RECORDED]):
        incomplete = incomplete or NEVER_FINISHED  # no results.json: it never reached its end
    results = _results(
        run, checked, history,
        problems=(previous.problems if previous else []) + problems,
        residue=previous.heal_residue if previous else {},
        wall_seconds=previous.wall_seconds if previous else None,
        check_seconds=check_seconds,
        incomplete=incomplete,
    )  # fmt: skip
    results.write(run.path)
    # (the index only of a store: a run copied to a home directory is in none)
    _render_report(run, history, store_of_run(run.path))
    return RunOutcome(
        run_dir=run.path, valid=results.valid, results=results.to_json(),
        ops=results.ops or 0, duration=results.duration or 0.0,
        wall_seconds=results.wall_seconds, problems=results.problems,
    )  # fmt: skip


def replay_run(
    run_dir: str | Path,
    *,
    store: str | None = None,
    suite_file: str | None = None,
    cluster_state_dir: str | None = None,
    cluster_options: Mapping[str, Any] | None = None,
    on_progress: Callable[[Any, str | None], None] | None = None,
    on_run_dir: Callable[[Path], None] | None = None,
) -> RunOutcome:
    """Run the test stored in ``run_dir`` again (same spec and seed) with the fault
    schedule its ledger records as applied (:func:`nemeses.schedule.ledger_schedule`),
    on the cluster named (:func:`rerun_spec`). The suite comes from :func:`stored_suite`.
    :class:`ConfigError` if ``run_dir`` is not a run or recorded no planned faults."""
    run, stored = _stored_run(run_dir)
    suite = stored_suite(stored, run.path, suite_file, "replay")
    stored_workload(stored, suite, run.spec)
    read = ledger_schedule(run.faults)
    steps = read.steps
    if not steps and stored.faults:
        raise ConfigError(f"{run.faults}: records no planned fault to replay{read.damage_note()}")
    if read.damaged:
        log.warning("%s: replaying %d planned fault op(s)%s", run.faults, len(steps),
                    read.damage_note())  # fmt: skip
    spec = rerun_spec(stored, run.spec, suite_file=suite_file, store=store,
                      cluster_state_dir=cluster_state_dir,
                      cluster_options=cluster_options, on_a_cluster=True)  # fmt: skip
    check_stored_before_cluster(spec, steps, suite, run.spec)
    return run_test(
        spec,
        on_progress=on_progress,
        on_run_dir=on_run_dir,
        schedule=steps,
        replay_of=str(run.path),
        suite=suite,
    )
