"""The extension API: what a database suite provides so that ``clew test`` can run it.

A **suite** is one Python file (``clew test --suite ./mydb.py``) or an installed package's
entry point (group ``clew.suites``) that defines ``SUITE = Suite(...)``. clew's own etcd
suite is written the same way (``harness/suites/etcd.py``). A suite gives:

* a :class:`DB` – how to install, start and stop the database on a node, reached through
  a :class:`~harness.control.Remote`, and the optional abilities faults use (kill and
  restart, pause and resume, ...: :mod:`nemeses.abilities`);
* workloads – each a :class:`Workload`: a factory of :class:`Client` objects (one per
  worker), a generator of client operations, an optional final generator (run after the
  faults are healed, e.g. a final read), and a checker (a pure function of the history).

Operations are plain dicts. The generator yields *invocations* such as
``{"f": "cas", "value": [1, 2], "key": 3}``; the runner fills in ``process``, ``time``,
``index`` and ``node`` and journals it. The client answers with the *completion*, a dict
with at least ``"type"``: ``"ok"`` (it happened; set ``"value"`` to what was read),
``"fail"`` (it definitely did not happen) or ``"info"`` (unknown; e.g. a timeout).
Raising :class:`DefiniteError` is the same as ``fail``; any other exception, and a
client that exceeds the op timeout, becomes ``info`` and the worker continues as a new
process (Jepsen's semantics; see :mod:`harness.history`).

Lifecycle invariants:

* ``Client.open`` is called once per worker before the run and must not change the
  database; ``invoke`` may be called many times concurrently *across* clients but never
  concurrently on one client; ``close`` is always called, even after errors.
* ``DB.setup`` runs on every node in parallel and must leave the database running and
  ready; ``teardown`` must work after a failed or partial setup.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from checkers.result import Result
from clusters.base import Cluster, Node
from harness.errors import ClewError
from harness.history import History

if TYPE_CHECKING:
    from harness.control import Remote

__all__ = [
    "DB",
    "Client",
    "DefiniteError",
    "IndefiniteError",
    "Op",
    "Suite",
    "TestContext",
    "Workload",
]

#: An operation as generators produce and clients receive it.
Op = dict[str, Any]


class ClientError(ClewError):
    """Raised by clients to classify an operation's outcome."""


class DefiniteError(ClientError):
    """The operation definitely did not happen: recorded as ``fail``."""


class IndefiniteError(ClientError):
    """Nobody knows whether the operation happened: recorded as ``info``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TestContext:
    """What a running test offers suites: the spec's options, the cluster, the RNG.

    ``options`` are the workload/DB options from the test spec (``--option k=v`` or the
    ``[options]`` table of a TOML spec). ``rng`` is seeded from the test's seed: use it for
    every random choice so that runs are reproducible. ``run_dir`` is the run's directory
    in the store (for DB logs or artifacts).
    """

    __test__ = False  # not a pytest test class, despite the name

    name: str
    cluster: Cluster
    options: dict[str, Any]
    rng: random.Random
    run_dir: Path
    concurrency: int
    time_limit: float

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.cluster.nodes


@runtime_checkable
class Client(Protocol):
    """Talks to the database on behalf of one worker (see the module docstring)."""

    async def open(self, ctx: TestContext, node: Node) -> None:
        """Prepare to talk to ``node`` (e.g. create an HTTP client). No writes."""
        ...

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform ``op``; return its completion (at least ``{"type": ...}``)."""
        ...

    async def close(self, ctx: TestContext) -> None:
        """Release resources. Always called."""
        ...


@runtime_checkable
class DB(Protocol):
    """Installs and operates the database on nodes; each method acts on one node.

    Everything faults may need besides is an optional *ability*, a small Protocol in
    :mod:`nemeses.abilities` that an adapter offers by having its methods: ``kill``/``start``
    (:class:`~nemeses.abilities.Killable`), ``pause``/``resume``
    (:class:`~nemeses.abilities.Pausable`), ``primaries``, ``clock_reads`` (how the
    database reads the wall clock, for clock faults), ``data_dir``, ``wait_healthy``,
    ``running`` and ``start_script``. A fault kind that needs an ability the adapter lacks
    is refused before the run, naming it.
    """

    name: str

    async def setup(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Install (if needed), configure and start the database on ``node``; return when
        it is ready to serve clients."""
        ...

    async def teardown(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Stop the database on ``node`` and remove its data. Safe after a failed setup."""
        ...

    def log_files(self, ctx: TestContext, node: Node) -> list[str]:
        """Paths on ``node`` of the logs to download after the run."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """One kind of test against a database.

    ``client`` makes a fresh client per worker. ``generator(ctx)`` returns the client-op
    generator (a :mod:`harness.generator` value); ``final_generator(ctx)``, if set, runs
    after the faults are healed (e.g. final reads). ``check(history, ctx)`` is a pure
    function of the history returning a :class:`~checkers.result.Result`.
    """

    name: str
    client: Callable[[], Client]
    generator: Callable[[TestContext], Any]
    check: Callable[[History, TestContext], Result]
    final_generator: Callable[[TestContext], Any] | None = None
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    """A database under test with its workloads (see the module docstring)."""

    name: str
    db: Callable[[TestContext], DB]
    workloads: dict[str, Callable[[TestContext], Workload]]
    default_workload: str
    description: str = ""
    #: Capabilities the DB needs from the provider (e.g. "clock-libfaketime").
    requires: tuple[str, ...] = ()
    #: Extra checks run before the run (return problems to refuse the run with).
    preflight: Callable[[TestContext], Awaitable[Iterable[str]]] | None = field(default=None)
    #: The options (``-o NAME=VALUE``) the DB and every workload read: name -> what it
    #: sets. A name ending in ``.`` stands for every name it begins (``pg.`` for
    #: ``pg.work_mem``). ``None`` (the default) declares nothing and checks nothing; once
    #: declared, a run given an option that neither these, :attr:`workload_options` nor
    #: its fault kinds declare is refused before the cluster comes up (a typo such as
    #: ``pre_vot`` would otherwise be silently ignored).
    options: Mapping[str, str] | None = None
    #: Options only some workloads read: workload name -> {name: what it sets}.
    workload_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
