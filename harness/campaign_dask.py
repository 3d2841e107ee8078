"""Campaigns on Dask (``distributed``): whole runs as units on workers that own clusters.

The controller (``clew campaign --dask ADDRESS``, ``bench/bugs.py --workers N``) keeps
the campaign: it decides each run's spec and seed, keeps the learning schedulers' memory
in its store, counts runs to detection and writes ``campaign.json``. A worker makes one
run at a time on a cluster of its own: on first use it takes a slot of the
:class:`~harness.campaign_pool.ClusterPool` (a distinct subnet, prefix and bridge on its
machine) and brings a local cluster up there; the cluster stays up for the worker's
next runs and is taken down at the end of the session (every worker is asked to), when
the worker closes (a worker plugin), or, if the worker was killed, by the next process
that takes the slot.

One run as a unit (:func:`run_on_worker`): the controller sends the spec, the memory
file of the spec's scheduler (if it has one) and the campaign's previous run (a learner
reads what it showed: ldfi its lineage, adaptive its verdict); the worker runs the test
in a scratch store laid out like the campaign's, renders its report, and sends back the
run directory as a gzipped tarball, the verdict and wall time, and the memory as the run
left it. The controller unpacks the run into the campaign's store (``spec.json`` naming
the controller's store and cluster, as if it had been run here), writes the memory back
and refreshes the store's index. The memory's order is the campaign's: a run starts only
after the previous run's memory is back, so a learner learns exactly as it would on one
machine (the choices within a run are made live, by the scheduler on the worker, from
that memory and that previous run).

A worker lost during a run: Dask gives the unit to another worker, which makes the run
again from its seed; the lost run's partial directory never reaches the controller.

Ctrl-C belongs to the controller: the workers of a local Dask cluster ignore SIGINT (the
terminal sends it to every process of the group), and :meth:`DaskExecutor.interrupt`
stops the runs in flight on the workers making them (:mod:`harness.campaign_interrupt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import logging
import signal
import socket
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import WorkerPlugin

from harness.campaign import RunFn
from harness.campaign_pool import ClusterPool, PoolSlot
from harness.dask_client import open_dask_client
from harness.errors import ConfigError
from harness.record import read_record_text
from harness.runner import RunOutcome, interrupt_runs, run_test
from harness.spec import TestSpec
from harness.store import new_run_dir

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "DaskExecutor",
    "dask_client",
    "interrupt_worker_runs",
    "land_run",
    "release_worker_slots",
    "run_on_worker",
]

log = logging.getLogger("clew.campaign")

#: Seconds the controller waits for a Dask scheduler to answer.
CONNECT_TIMEOUT = 30.0
#: Seconds a local Dask worker may take to start.
WORKER_START_TIMEOUT = 120.0

# ---- on the worker ---------------------------------------------------------------------

#: This process's cluster slots, one per pool (kept across runs; released at the end).
_SLOTS: dict[tuple[Any, ...], PoolSlot] = {}
#: One run at a time per process: a worker with several threads still has one cluster.
_RUN_LOCK = threading.Lock()


def _slot(pool: ClusterPool) -> PoolSlot:
    slot = _SLOTS.get(pool.key)
    if slot is None:
        slot = _SLOTS[pool.key] = pool.take()
    return slot


def release_worker_slots() -> list[str]:
    """Take down every cluster this process brought up for campaign runs; their names."""
    names = []
    while _SLOTS:
        _, slot = _SLOTS.popitem()
        with contextlib.suppress(Exception):
            slot.release()
        names.append(slot.name)
    return names


def interrupt_worker_runs(how: str = "Ctrl-C") -> int:
    """Stop the run in progress in this worker process (as a first Ctrl-C would; ``how``:
    what the campaign was stopped by); how many runs were told."""
    return interrupt_runs(how)


def _worker_name() -> str:
    with contextlib.suppress(ImportError, ValueError):
        from distributed import get_worker

        return str(get_worker().address)
    return socket.gethostname()


def _pack(run_dir: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(run_dir, arcname=".")
    return buffer.getvalue()


def run_on_worker(
    spec: TestSpec,
    pool: ClusterPool,
    memory: dict[str, str],
    previous: tuple[str, bytes] | None = None,
) -> dict[str, Any]:
    """Make one run of ``spec`` here, on this process's cluster slot, in a scratch store
    seeded with ``memory`` (file name -> text, under the store's ``schedulers/``) and the
    campaign's ``previous`` run (its directory name and tarball: a learning scheduler
    reads what the previous run showed); return the run directory as a gzipped tarball
    with its verdict, wall time, results, this worker's name and the memory files as the
    run left them."""
    with _RUN_LOCK, tempfile.TemporaryDirectory(prefix="clew-run-") as tmp:
        slot = _slot(pool)
        root = Path(tmp) / "store"
        (root / "schedulers").mkdir(parents=True)
        for name, text in memory.items():
            (root / "schedulers" / Path(name).name).write_text(text, encoding="utf-8")
        runs = root / "campaigns" / spec.test_name / "remote" / "runs"
        if previous is not None:
            name, tarball = previous
            target = runs / spec.test_name / Path(name).name
            target.mkdir(parents=True)
            with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
                tar.extractall(target, filter="data")
        local = dataclasses.replace(
            spec, store=str(runs), cluster_state_dir=str(slot.state_dir),
            cluster_options=dict(slot.options), provider="local",
        )  # fmt: skip
        try:
            outcome = run_test(local)
        except asyncio.CancelledError:  # interrupted before it was recorded: no run
            raise RuntimeError("the run was interrupted before it started") from None
        learned = {p.name: p.read_text(encoding="utf-8")
                   for p in sorted((root / "schedulers").glob("*.json"))}  # fmt: skip
        return {
            "tarball": _pack(outcome.run_dir), "valid": outcome.valid, "results": outcome.results,
            "wall_seconds": outcome.wall_seconds, "ops": outcome.ops,
            "duration": outcome.duration, "problems": outcome.problems,
            "worker": _worker_name(), "slot": slot.name, "memory": learned,
        }  # fmt: skip


# ---- on the controller -------------------------------------------------------------------


def land_run(spec: TestSpec, unit: dict[str, Any]) -> RunOutcome:
    """Unpack a run made elsewhere (:func:`run_on_worker`'s answer) into
    ``spec.store/<test>/<time>/`` as if it had been run here: ``spec.json`` names this
    store and this spec's cluster; ``results.json`` also says which worker made it."""
    from harness.record import RunSpec

    run = new_run_dir(spec.store, spec.test_name)
    with tarfile.open(fileobj=io.BytesIO(unit["tarball"]), mode="r:gz") as tar:
        tar.extractall(run.path, filter="data")
    stored = RunSpec.read(run.path)
    if stored is not None:
        data = {**stored.fields, "store": spec.store, "provider": spec.provider,
                "cluster_state_dir": spec.cluster_state_dir,
                "cluster_options": dict(spec.cluster_options)}  # fmt: skip
        RunSpec(data).write(run.path)
    results = {**unit["results"], "worker": unit["worker"]}
    with contextlib.suppress(OSError, ValueError):
        on_disk = json.loads(read_record_text(run.results))
        run.results.write_text(json.dumps({**on_disk, "worker": unit["worker"]}, indent=1) + "\n")
    with contextlib.suppress(Exception):  # an index failure must not lose the run
        from reports.index import write_index

        write_index(Path(spec.store))
    return RunOutcome(
        run_dir=run.path, valid=unit["valid"], results=results, ops=unit["ops"],
        duration=unit["duration"], wall_seconds=unit["wall_seconds"],
        problems=list(unit["problems"]),
    )  # fmt: skip


def _memory_files(spec: TestSpec) -> dict[str, Path]:
    """The memory file of the spec's scheduler in the controller's store (name -> path)."""
    from nemeses.schedulers.memory import memory_path

    path = memory_path(spec.scheduler, spec.store, spec.suite)
    return {path.name: path}


@dataclass(slots=True)
class DaskExecutor:
    """Makes a campaign's runs on the workers of a Dask ``client``, one run at a time
    per campaign (several campaigns may share the executor from threads)."""

    client: Client
    pool: ClusterPool
    #: The units in flight (Dask keys), for :meth:`interrupt`.
    _in_flight: set[str] = dataclasses.field(default_factory=set)

    def interrupt(self, how: str = "Ctrl-C") -> None:
        """Stop the runs in flight of this executor's campaigns: the workers making them
        interrupt their run (healed, torn down, returned as interrupted by ``how``); other
        workers' runs are left alone."""
        ours = set(self._in_flight)
        if not ours:
            return
        processing = self.client.processing()
        workers = [w for w, keys in processing.items() if ours & set(map(str, keys))]
        if workers:
            self.client.run(interrupt_worker_runs, how, workers=workers)

    @contextlib.contextmanager
    def session(self, spec: TestSpec) -> Iterator[RunFn]:
        """The run function of a campaign; the workers' clusters outlive it (they are
        released by :func:`dask_client`'s end)."""
        if spec.provider != "local":
            raise ConfigError(
                f"campaigns on Dask bring up local clusters on the workers; the spec names "
                f"the {spec.provider!r} provider"
            )
        if spec.nodes != self.pool.nodes:
            raise ConfigError(
                f"the cluster pool has {self.pool.nodes} nodes, the spec {spec.nodes}"
            )
        yield self._run

    def _run(self, spec: TestSpec) -> RunOutcome:
        files = _memory_files(spec)
        memory = {n: p.read_text(encoding="utf-8") for n, p in files.items() if p.exists()}
        latest = Path(spec.store) / spec.test_name / "latest"
        previous = (latest.resolve().name, _pack(latest.resolve())) if latest.is_dir() else None
        future = self.client.submit(run_on_worker, spec, self.pool, memory, previous,
                                    pure=False)  # fmt: skip
        self._in_flight.add(str(future.key))
        try:
            unit = future.result()
        finally:
            self._in_flight.discard(str(future.key))
        for name, text in unit["memory"].items():
            if name in files:
                from nemeses.schedulers.memory import save

                save(files[name], json.loads(text))
        return land_run(spec, unit)


@contextlib.contextmanager
def dask_client(
    *, address: str | None = None, workers: int = 0, pool: ClusterPool | None = None
) -> Iterator[Client]:
    """A Dask client: of the scheduler at ``address``, or of a new local cluster of
    ``workers`` processes (one thread each). At the end every worker takes down the
    cluster it brought up (the local cluster's slots are also swept, in case a worker
    died), and the local Dask cluster is closed."""
    timeout = WORKER_START_TIMEOUT if address is None else CONNECT_TIMEOUT
    try:
        with open_dask_client(address=address, workers=workers, timeout=timeout) as (c, _):
            try:
                if address is None:  # our own worker processes, in our process group
                    c.register_plugin(_IgnoreCtrlC(), name="clew-campaign-ctrl-c")
                c.register_plugin(_SlotReleaser(), name="clew-campaign-slots")
                yield c
            finally:
                with contextlib.suppress(Exception):
                    c.run(release_worker_slots)
    finally:
        if address is None and pool is not None:
            pool.sweep()


class _IgnoreCtrlC(WorkerPlugin):
    """A Dask worker plugin: the worker process ignores SIGINT. A Ctrl-C on the terminal
    reaches every process of its group; a local worker killed by it would leave its run
    unhealed and the controller waiting for an answer that never comes. The controller
    stops the runs itself (:meth:`DaskExecutor.interrupt`)."""

    def setup(self, worker: Any) -> None:
        """Ignore SIGINT in this worker process (its event loop runs in the main thread)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


class _SlotReleaser(WorkerPlugin):
    """A Dask worker plugin: a worker that closes takes its clusters down."""

    def setup(self, worker: Any) -> None:
        """Nothing to do: clusters come up on first use."""

    def teardown(self, worker: Any) -> None:
        """Release this worker's cluster slots."""
        release_worker_slots()
