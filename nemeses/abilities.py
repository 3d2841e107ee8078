"""What a database adapter may offer faults: one small Protocol per ability.

A DB adapter (:class:`harness.api.DB`) declares an ability simply by having its methods;
fault kinds name the abilities they need (:attr:`nemeses.kinds.FaultKind.db_needs`) and are
refused before the run, naming what is missing, when the adapter lacks one. Code that uses
an ability checks it with ``isinstance(db, Ability)`` (every Protocol here is
``runtime_checkable``) and then calls it with full types, so mypy checks adapters and
nemeses alike; nothing probes with ``getattr``.

==================  ==========================================================================
ability             what it offers
==================  ==========================================================================
:class:`Killable`   ``kill`` (SIGKILL) and ``start`` (again, keeping the data)
:class:`Pausable`   ``pause`` (SIGSTOP) and ``resume`` (SIGCONT)
:class:`Primaries`  ``primaries``: the nodes that lead now (for ``primaries`` targets)
:class:`ClockSource`  ``clock_reads``: how the database reads the wall clock (clock faults)
:class:`DataDir`    ``data_dir``: the directory on a node where the database keeps its data
:class:`Healthy`    ``wait_healthy``: wait until a (re)started node serves
:class:`Running`    ``running``: whether the database process is alive on a node
:class:`StartScript`  ``start_script``: a shell script restarting a killed node, for the
                    node-side guard when the controller is gone
==================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from clusters.base import Node
    from harness.api import TestContext
    from harness.control import Remote

__all__ = [
    "ABILITIES",
    "ClockSource",
    "DataDir",
    "Healthy",
    "Killable",
    "Pausable",
    "Primaries",
    "Running",
    "StartScript",
    "ability_name",
    "lacking",
]


@runtime_checkable
class Killable(Protocol):
    """The database can be killed and started again on a node."""

    async def kill(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Kill the database process with SIGKILL."""
        ...

    async def start(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Start a stopped or killed database process again (keeping its data); harmless
        where it runs."""
        ...


@runtime_checkable
class Pausable(Protocol):
    """The database can be paused and resumed on a node."""

    async def pause(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Pause the database process (SIGSTOP)."""
        ...

    async def resume(self, ctx: TestContext, node: Node, remote: Remote) -> None:
        """Resume a paused database process (SIGCONT)."""
        ...


@runtime_checkable
class Primaries(Protocol):
    """The database can name the nodes that lead now."""

    async def primaries(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> list[str]:
        """The names of the nodes acting as primary/leader now (may be empty)."""
        ...


@runtime_checkable
class ClockSource(Protocol):
    """The database says how it reads the wall clock: ``"libc"`` (libfaketime can shift
    it; the adapter starts it with ``nemeses.clock.faketime_env()``), ``"go-vdso"`` (only
    a VM's system clock can) or ``"unknown"``."""

    @property
    def clock_reads(self) -> str: ...


@runtime_checkable
class DataDir(Protocol):
    """The database names the directory on each node where it keeps its data."""

    @property
    def data_dir(self) -> str: ...


@runtime_checkable
class Healthy(Protocol):
    """The database can wait until a node serves."""

    async def wait_healthy(
        self, ctx: TestContext, node: Node, remote: Remote, *, within: float
    ) -> None:
        """Return once the database on ``node`` serves; raise (naming the node) if it does
        not within ``within`` seconds."""
        ...


@runtime_checkable
class Running(Protocol):
    """The database can tell whether its process is alive on a node."""

    async def running(self, ctx: TestContext, node: Node, remote: Remote) -> bool:
        """Whether the database process is alive on ``node``."""
        ...


@runtime_checkable
class StartScript(Protocol):
    """The database gives a shell script that starts a killed node again."""

    def start_script(self, ctx: TestContext, node: Node) -> str:
        """A shell script (run as root on ``node``) that starts the database again as
        ``start`` does."""
        ...


@runtime_checkable
class PauseScript(Protocol):
    """The database gives the shell scripts that pause and resume it on a node (its
    ``pause`` and ``resume`` run the same scripts), so a node agent can strike exactly as
    the controller would, and the pause nemesis can pause in one round trip."""

    def pause_script(self, ctx: TestContext, node: Node) -> str:
        """A shell script (run as root on ``node``) that SIGSTOPs the database."""
        ...

    def resume_script(self, ctx: TestContext, node: Node) -> str:
        """A shell script (run as root on ``node``) that SIGCONTs the database."""
        ...


#: Every ability, by the name messages use.
ABILITIES: dict[str, type] = {
    "kill/start": Killable,
    "pause/resume": Pausable,
    "primaries": Primaries,
    "clock_reads": ClockSource,
    "data_dir": DataDir,
    "wait_healthy": Healthy,
    "running": Running,
    "start_script": StartScript,
}


def ability_name(ability: type) -> str:
    """The name messages use for ``ability`` (``Killable`` -> ``kill/start``)."""
    for name, cls in ABILITIES.items():
        if cls is ability:
            return name
    return ability.__name__


def lacking(db: object, needs: tuple[type, ...] | list[type]) -> list[str]:
    """The names of the abilities in ``needs`` that ``db`` does not offer (empty: all)."""
    return [ability_name(a) for a in needs if not isinstance(db, a)]
