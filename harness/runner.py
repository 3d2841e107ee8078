"""The run lifecycle of ``clew test``.

cluster → DB setup on all nodes (parallel) → clients open → the generator drives client
workers and the nemesis (every op journaled as it happens) → final heal → final client ops
→ clients close → node logs downloaded → DB teardown (unless ``leave_db_running``) →
cluster down (if this run brought it up) → check → results.json → report.

Every step after the cluster exists sits in a ``finally``: an exception or Ctrl-C at any
point still heals the network, closes clients, downloads logs, tears the DB down and keeps
the journal, which ``clew analyze RUN_DIR`` can check later.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import logging
import platform
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checkers.result import UNKNOWN, Result, merge_validity
from clusters import Cluster, ClusterSpec, default_state_dir, get_provider
from harness.api import DB, Client, Suite, TestContext, Workload
from harness.errors import ClewError, ClusterError, ConfigError
from harness.formats import read_history
from harness.history import History
from harness.spec import TestSpec
from harness.store import Journal, RunDir, new_run_dir
from harness.suites import load_suite

__all__ = ["RunOutcome", "analyze", "run_test"]

log = logging.getLogger("clew.runner")

#: Seconds allowed for the DB setup on all nodes together.
DB_SETUP_TIMEOUT = 120.0
#: Seconds allowed for healing faults, closing clients, and tearing down, each.
TEARDOWN_TIMEOUT = 60.0


@dataclass(slots=True)
class RunOutcome:
    """What one run produced: its directory and verdict."""

    run_dir: Path
    valid: Any
    results: dict[str, Any]
    ops: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.valid is True else 1 if self.valid is False else 2


def _versions(db: DB) -> dict[str, Any]:
    import importlib.metadata

    try:
        clew = importlib.metadata.version("clew")
    except importlib.metadata.PackageNotFoundError:
        clew = "unknown"
    return {"clew": clew, "python": platform.python_version(), "db": getattr(db, "name", "?")}


def _bring_up(spec: TestSpec) -> tuple[Cluster, bool, Path]:
    """The cluster to use: a healthy one already up in the state dir, else a new one.
    Returns (cluster, whether this run made it, state dir)."""
    provider = get_provider(spec.provider)
    state = Path(spec.cluster_state_dir) if spec.cluster_state_dir else default_state_dir()
    with contextlib.suppress(ClusterError):
        existing = Cluster.load(state)
        same = existing.provider == spec.provider and len(existing.nodes) == spec.nodes
        if same and provider.status(state).healthy:
            log.info("using the cluster already up in %s", state)
            return existing, False, state
    cluster = provider.up(
        ClusterSpec(
            provider=spec.provider,
            nodes=spec.nodes,
            state_dir=str(state),
            options=dict(spec.cluster_options),
        )
    )
    return cluster, True, state


async def _on_all(remotes: Any, what: str, fn: Callable[[Any], Any], limit: float) -> None:
    """Run ``fn(remote)`` on every node at once, for at most ``limit`` seconds; raise one
    error naming every failure."""
    async with asyncio.timeout(limit):
        results = await remotes.on_nodes(fn)
    failed = {n: r for n, r in results.items() if isinstance(r, BaseException)}
    if failed:
        detail = "; ".join(f"{n}: {e}" for n, e in sorted(failed.items()))
        raise ClusterError(f"{what} failed on {len(failed)} node(s): {detail}")


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


async def _execute(
    spec: TestSpec,
    suite: Suite,
    workload_name: str,
    run: RunDir,
    on_progress: Callable[[Any, str | None], None] | None,
    schedule: list[dict[str, Any]] | None,
) -> tuple[TestContext, Workload, list[str], dict[str, list[str]]]:
    """Everything from the cluster up to teardown; returns the context, the workload,
    problems met while tearing down, and the nemesis residue per node."""
    from harness.control import connect_all
    from harness.interpreter import interpret
    from harness.runplan import (
        build_generator,
        build_nemesis,
        plan_run_schedule,
        preflight_faults,
    )
    from nemeses.ledger import FaultLedger

    assert spec.seed is not None
    cluster, made, state = await asyncio.to_thread(_bring_up, spec)
    problems: list[str] = []
    residue: dict[str, list[str]] = {}
    try:
        ctx = TestContext(
            name=spec.test_name,
            cluster=cluster,
            options=dict(spec.options),
            rng=random.Random(spec.seed),
            run_dir=run.path,
            concurrency=spec.resolved_concurrency,
            time_limit=spec.time_limit,
        )
        factory = suite.workloads.get(workload_name)
        if factory is None:
            raise ConfigError(
                f"suite {suite.name!r} has no workload {workload_name!r}; "
                f"it has {', '.join(suite.workloads)}"
            )
        workload = factory(ctx)
        db = suite.db(ctx)
        run.write_json("versions.json", _versions(db))
        source = "random" if schedule is None else "replay"
        if schedule is None:
            schedule = plan_run_schedule(spec, ctx, db)
        preflight_faults(spec, ctx, db, schedule)  # impossible faults: refused before the run
        run.write_json("schedule.json", {"source": source, "seed": spec.seed, "steps": schedule})
        remotes = await connect_all(cluster.nodes)
        journal = Journal(run.history)
        ledger = FaultLedger(run.faults, source=source)
        clients: list[Client] = []
        opened: list[Client] = []
        faults = None
        keep_alive: asyncio.Task[None] | None = None
        try:
            log.info("setting up %s on %d nodes", db.name, len(cluster.nodes))
            await _on_all(
                remotes, f"{db.name} setup", lambda r: db.setup(ctx, r.node, r), DB_SETUP_TIMEOUT
            )
            faults = await build_nemesis(
                spec, ctx, remotes, db, schedule, ledger=ledger, source=source
            )
            clients = [workload.client() for _ in range(ctx.concurrency)]
            for i, client in enumerate(clients):
                await client.open(ctx, cluster.nodes[i % len(cluster.nodes)])
                opened.append(client)
            ledger.restart_clock()  # fault times share the history's origin
            gen = build_generator(spec, ctx, workload, faults, schedule)
            if faults is not None:
                keep_alive = asyncio.create_task(faults.keep_alive(ctx, spec.fault_lease / 3))

            def progress(p: Any) -> None:
                if on_progress:
                    on_progress(p, faults.active_names if faults else None)

            await interpret(
                gen,
                ctx=ctx,
                clients=clients,
                nemesis=faults,
                journal=journal,
                op_timeout=spec.op_timeout,
                seed=spec.seed,
                on_progress=progress,
            )
        finally:
            if keep_alive is not None:
                keep_alive.cancel()
                with contextlib.suppress(BaseException):
                    await keep_alive
            # Heal first: whatever happened, the network must come back.
            if faults is not None:
                try:
                    async with asyncio.timeout(TEARDOWN_TIMEOUT):
                        await faults.heal_all(ctx, reason="final")
                except Exception as e:
                    problems.append(f"final heal: {e}")
                try:
                    async with asyncio.timeout(TEARDOWN_TIMEOUT):
                        residue = await faults.verify_healed(ctx)
                        if faults.guard is not None:
                            await faults.guard.stop()
                except Exception as e:
                    problems.append(f"verifying the heal: {e}")
                    residue = residue or {"controller": [f"cannot verify: {e}"]}
            for client in opened:
                try:
                    async with asyncio.timeout(TEARDOWN_TIMEOUT):
                        await client.close(ctx)
                except Exception as e:
                    problems.append(f"closing a client: {e}")
            journal.close()
            ledger.close()
            problems += await _download_logs(ctx, db, remotes, run)
            if not spec.leave_db_running:
                try:
                    await _on_all(
                        remotes, f"{db.name} teardown", lambda r: db.teardown(ctx, r.node, r),
                        TEARDOWN_TIMEOUT,
                    )  # fmt: skip
                except Exception as e:
                    problems.append(str(e))
            await remotes.close()
    finally:
        if made and not spec.leave_db_running:
            try:
                await asyncio.to_thread(get_provider(spec.provider).down, state)
            except Exception as e:
                problems.append(f"cluster down: {e}")
    return ctx, workload, problems, residue


def _check(
    run: RunDir, workload: Workload | None, ctx: TestContext | None
) -> tuple[dict[str, Result], History]:
    """Run the workload's checker over the journal. Crashes become "unknown"."""
    history = read_history(str(run.history), "jsonl")
    if workload is None or ctx is None:
        return {}, history
    try:
        result = workload.check(history, ctx)
    except Exception as e:  # a checker that raises gives "unknown", never a crash
        log.exception("checker %s crashed", workload.name)
        result = Result(valid=UNKNOWN, checker=workload.name, cause=f"checker crashed: {e}")
    return {workload.name: result}, history


def _write_results(
    run: RunDir,
    results: dict[str, Result],
    *,
    problems: list[str],
    residue: dict[str, list[str]],
    seconds: float,
    ops: int,
) -> dict[str, Any]:
    from nemeses.ledger import fault_windows, read_ledger

    tainted = any(residue.values())
    valid = merge_validity(r.valid for r in results.values()) if results else UNKNOWN
    records: list[dict[str, Any]] = []
    with contextlib.suppress(ClewError):
        records = read_ledger(run.faults)
    verified = [r for r in records if r.get("event") == "verified"]
    data: dict[str, Any] = {
        "valid": valid,
        "checkers": {name: r.to_json() for name, r in results.items()},
        "ops": ops,
        "seconds": round(seconds, 3),
        "tainted": tainted,
        "heal_residue": residue,
        "heal_verified": bool(verified) and bool(verified[-1].get("clean")),
        "faults": fault_windows(records),
        "problems": problems,
    }
    run.write_json("results.json", data)
    return data


def _render_report(run: RunDir, history: History | None, store: Path) -> None:
    """Write the run's report.html and refresh the store's index.html."""
    try:
        write_run_report = importlib.import_module("reports.run_report").write_run_report
        write_index = importlib.import_module("reports.index").write_index
    except (ImportError, AttributeError):
        return
    try:
        write_run_report(run.path, history=history)
        write_index(store)
    except Exception:  # a report failure must not lose the verdict
        log.exception("rendering the report of %s failed", run.path)


def run_test(
    spec: TestSpec,
    *,
    on_progress: Callable[[Any, str | None], None] | None = None,
    on_run_dir: Callable[[Path], None] | None = None,
    schedule: list[dict[str, Any]] | None = None,
    replay_of: str | None = None,
) -> RunOutcome:
    """Run one test described by ``spec``, store it, check it; return the outcome.

    The fault schedule is planned from the seed unless ``schedule`` is given (``clew
    replay``: the steps a stored run applied; ``replay_of`` names that run).

    Raises :class:`~harness.errors.ClewError` for problems before the run starts (bad
    suite, cluster cannot come up); after that, problems are recorded in results.json.
    """
    spec = spec.with_seed()
    suite = load_suite(spec.suite)
    workload_name = spec.workload or suite.default_workload
    spec = dataclasses.replace(spec, workload=workload_name)
    run = new_run_dir(spec.store, spec.test_name)
    if on_run_dir:
        on_run_dir(run.path)
    extra = {"replay_of": replay_of} if replay_of else {}
    run.write_json("spec.json", {**spec.to_json(), "workload": workload_name, **extra})
    handler = logging.FileHandler(run.log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    clew_log = logging.getLogger("clew")
    clew_log.addHandler(handler)
    clew_log.setLevel(logging.DEBUG)
    t0 = time.monotonic()
    ctx: TestContext | None = None
    workload: Workload | None = None
    problems: list[str] = []
    residue: dict[str, list[str]] = {}
    try:
        try:
            ctx, workload, problems, residue = asyncio.run(
                _execute(spec, suite, workload_name, run, on_progress, schedule)
            )
        except KeyboardInterrupt:
            problems.append("interrupted (Ctrl-C); the history so far is checked")
        except ClewError as e:
            problems.append(str(e))
            if not run.history.exists() or run.history.stat().st_size == 0:
                raise  # nothing ran: the error is the whole story
        if workload is None:
            with contextlib.suppress(Exception):
                workload = suite.workloads[workload_name](_offline_context(spec, run))
                ctx = ctx or _offline_context(spec, run)
        history: History | None = None
        results: dict[str, Result] = {}
        if run.history.exists():
            results, history = _check(run, workload, ctx)
        ops = len(history) if history is not None else 0
        data = _write_results(
            run, results, problems=problems, residue=residue,
            seconds=time.monotonic() - t0, ops=ops,
        )  # fmt: skip
        _render_report(run, history, Path(spec.store))
    finally:
        logging.getLogger("clew").removeHandler(handler)
        handler.close()
    return RunOutcome(
        run_dir=run.path, valid=data["valid"], results=data, ops=ops,
        seconds=time.monotonic() - t0, problems=problems,
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


def analyze(run_dir: str | Path) -> RunOutcome:
    """Check a stored run again, offline, from its ``spec.json`` and ``history.jsonl``;
    rewrite ``results.json`` and the report. Works on the journal of a crashed run."""
    from harness.spec import load_spec

    run = RunDir(Path(run_dir))
    raw = run.read_json("spec.json")
    if raw is None:
        raise ConfigError(f"{run_dir}: not a clew run directory (no spec.json)")
    if not run.history.exists():
        raise ConfigError(f"{run_dir}: the run recorded no history.jsonl")
    fields = {k: v for k, v in raw.items() if k not in ("test_name", "replay_of")}
    spec = load_spec(**fields)
    suite = load_suite(spec.suite)
    ctx = _offline_context(spec, run)
    workload = suite.workloads[raw.get("workload") or suite.default_workload](ctx)
    t0 = time.monotonic()
    results, history = _check(run, workload, ctx)
    ops = len(history)
    previous = run.read_json("results.json") or {}
    data = _write_results(
        run, results, problems=list(previous.get("problems", [])),
        residue=dict(previous.get("heal_residue", {})), seconds=time.monotonic() - t0, ops=ops,
    )  # fmt: skip
    _render_report(run, history, run.path.parent.parent)
    return RunOutcome(run_dir=run.path, valid=data["valid"], results=data, ops=ops)


def replay_run(
    run_dir: str | Path,
    *,
    store: str | None = None,
    on_progress: Callable[[Any, str | None], None] | None = None,
    on_run_dir: Callable[[Path], None] | None = None,
) -> RunOutcome:
    """Run the test stored in ``run_dir`` again (same spec and seed) with the fault
    schedule its ledger records as applied (:func:`nemeses.schedule.schedule_from_ledger`).
    :class:`ConfigError` if ``run_dir`` is not a run or recorded no planned faults."""
    from harness.spec import load_spec
    from nemeses.ledger import read_ledger
    from nemeses.schedule import schedule_from_ledger

    run = RunDir(Path(run_dir))
    raw = run.read_json("spec.json")
    if raw is None:
        raise ConfigError(f"{run_dir}: not a clew run directory (no spec.json)")
    steps = schedule_from_ledger(read_ledger(run.faults))
    if not steps and raw.get("faults"):
        raise ConfigError(f"{run_dir}: faults.jsonl records no planned fault to replay")
    fields = {k: v for k, v in raw.items() if k not in ("test_name", "replay_of")}
    if store is not None:
        fields["store"] = store
    spec = load_spec(**fields)
    return run_test(
        spec,
        on_progress=on_progress,
        on_run_dir=on_run_dir,
        schedule=steps,
        replay_of=str(run.path),
    )
