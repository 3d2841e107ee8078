"""Process faults through the DB adapter: pause/resume (SIGSTOP/SIGCONT) and kill/restart.

Two nemeses share one class, :class:`ProcessNemesis`, with ``kind`` ``"pause"`` or
``"kill"``. Ops (``K`` is the kind)::

    {"f": "start-K", "value": V}     V: None (a target spec drawn with ctx.rng), a target
                                     spec ("one", "minority", "majority", "all"), a list
                                     of node names, or {"targets": spec, "nodes": [...]}
    {"f": "stop-K",  "value": None}  resume / restart every node

The completion's value is ``{"targets": spec, "nodes": [...]}`` (plus ``"pids"`` for a
pause: node -> the PIDs that were stopped). ``primaries`` must be resolved to nodes by the
runner first (see :mod:`nemeses.targets`).

The database does the acting (``DB.pause/resume/kill/start``), so this works for any
suite. Heal is state-free: ``stop-pause`` and :meth:`heal_all` resume the database on
every node and SIGCONT any process this nemesis stopped; ``stop-kill`` starts the database
on every node (``DB.start`` must be harmless where it runs) and waits until it is ready,
if the DB offers ``wait_healthy``.

Leases for the node-side guard (:meth:`lease_scripts`): a pause is healed by SIGCONT of
the processes that were stopped — before injection, of every process in state T that was
not stopped before; after, of exactly the PIDs it stopped, plus the database's own resume
script where it paused through one (SIGSTOP lands when the target is next scheduled, so on
a loaded host the scan after the pause can miss it: the scan waits up to
:data:`STOP_SETTLE` s for it, and the resume script heals it even if that runs out). A
kill is healed by the DB's
``start_script(ctx, node)`` (a shell script), if the DB provides one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from harness.api import DB, Op, TestContext
from harness.errors import NemesisError
from nemeses.abilities import (
    Healthy,
    Killable,
    Pausable,
    PauseScript,
    Running,
    StartScript,
    lacking,
)
from nemeses.base import (
    DEFAULT_INTERVAL,
    NemesisPackage,
    check_outcomes,
    completion,
    flip_package,
    residue_report,
    unknown_f,
)
from nemeses.targets import TARGET_SPECS, resolve_targets, target_nodes

if TYPE_CHECKING:
    from harness.control import Remote

__all__ = [
    "DEFAULT_READY_TIMEOUT",
    "ProcessNemesis",
    "kill_package",
    "pause_package",
    "plan_targets",
]

#: Seconds ``stop-kill`` waits for a restarted database to be ready on each node.
DEFAULT_READY_TIMEOUT = 30.0

# The head of a loop over the node's processes in state T (stopped), each one's PID in
# ``$p``; the caller adds the body and ``done``. ``read`` is a shell builtin: no process
# per PID (with ``$(cat ...)``, a fork each, a scan of a busy host's /proc took seconds
# under load; a local cluster's nodes share the host's).
#
# A local cluster's nodes share the host's /proc: every node (and every other cluster on
# the host) shows there. A stopped process in another network namespace is another
# node's, so it is skipped (one ``readlink`` per *stopped* process); without that, a pause
# on one cluster recorded a process another cluster paused at the same moment, and its
# heal resumed it (seen in a unit test beside a benchmark). A namespace that cannot be
# read (another user's process) counts as this node's, as before.
_FOR_EACH_STOPPED = (
    "ns=${ns-$(readlink /proc/self/ns/net 2>/dev/null)}; "
    'for d in /proc/[0-9]*; do read -r s 2>/dev/null <"$d/stat" || continue; '
    's=${s##*) }; [ "${s%% *}" = T ] || continue; '
    'n=$(readlink "$d/ns/net" 2>/dev/null); [ -z "$n" ] || [ "$n" = "$ns" ] || continue; '
    "p=${d#/proc/}; "
)
#: Prints the PIDs of the stopped processes, one per line.
_STOPPED_SCAN = _FOR_EACH_STOPPED + 'echo "$p"; done\n'
_STOPPED_PIDS = _STOPPED_SCAN + "exit 0\n"
#: Separates the parts of :func:`_scripted_pause`'s output.
_MARK = "--clew-pause--"


#: How long (seconds) a pause waits for the signalled process to show state T: SIGSTOP
#: is delivered when the target is next scheduled, which on a loaded host can be after
#: ``kill`` has returned and a scan has run.
STOP_SETTLE = 2.0
_SETTLE_STEP = 0.05


def _await_new_stopped_script(before: str) -> str:
    """Poll (up to :data:`STOP_SETTLE` s) until some process not in ``before`` (a shell
    expression of space-separated PIDs) is in state T."""
    rounds = int(STOP_SETTLE / _SETTLE_STEP)
    return (
        f'keep=" $(echo {before}) "; i=0\n'
        f"while [ $i -lt {rounds} ]; do\n"
        f'  {_FOR_EACH_STOPPED}case "$keep" in *" $p "*) ;; *) break 2;; esac; done\n'
        f"  i=$((i+1)); sleep {_SETTLE_STEP}\n"
        "done\n"
    )


def _scripted_pause(pause: str) -> str:
    """One round trip for a pause: the stopped PIDs, the database's ``pause`` script (in a
    subshell), then, once a newly stopped process shows (or :data:`STOP_SETTLE` s have
    passed), the stopped PIDs again; the parts separated by :data:`_MARK` lines; exits with
    the pause script's status."""
    return (f"before=$({_STOPPED_SCAN})\necho \"$before\"\necho {_MARK}\n(\n{pause}\n)\n"
            f"rc=$?\necho {_MARK}\n[ $rc = 0 ] && {{\n{_await_new_stopped_script('$before')}}}\n"
            f"{_STOPPED_SCAN}exit $rc\n")  # fmt: skip


def _pids(text: str) -> list[int]:
    return sorted(int(x) for x in text.split() if x.isdigit())


def _cont_script(pids: list[int]) -> str:
    if not pids:
        return "exit 0\n"
    return f"kill -CONT {' '.join(str(p) for p in pids)} 2>/dev/null; exit 0\n"


def _cont_new_stopped_script(before: list[int]) -> str:
    """SIGCONT every stopped process except the PIDs in ``before`` (stopped by others)."""
    keep = " ".join(str(p) for p in before)
    return (
        f"keep=' {keep} '\n"
        f'{_FOR_EACH_STOPPED}case "$keep" in *" $p "*) continue;; esac; '
        'kill -CONT "$p" 2>/dev/null; done; exit 0\n'
    )


def plan_targets(nodes: list[str] | tuple[str, ...], rng: Any, *, primaries: bool = True) -> Any:
    """A pause/kill op value drawn with ``rng``: a target spec, resolved to nodes now
    unless it is ``primaries`` (resolved during the run). Pure; same seed, same value."""
    specs = [s for s in TARGET_SPECS if primaries or s != "primaries"]
    spec = rng.choice(specs)
    if spec == "primaries":
        return {"targets": "primaries"}
    return {"targets": spec, "nodes": resolve_targets(spec, nodes, rng)}


class ProcessNemesis:
    """Pauses or kills the database on target nodes (see the module docstring)."""

    def __init__(
        self,
        kind: Literal["pause", "kill"],
        db: DB,
        *,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        timeout: float = 30.0,
    ) -> None:
        if kind not in ("pause", "kill"):
            raise NemesisError(f"a process fault is pause or kill, not {kind!r}")
        missing = lacking(db, [Pausable] if kind == "pause" else [Killable])
        if missing:
            raise NemesisError(
                f"{kind} faults need the database adapter {type(db).__name__} to provide "
                f"{' and '.join(missing)}"
            )
        self.kind = kind
        self.db = db
        self.ready_timeout = ready_timeout
        self.timeout = timeout
        self.fs = frozenset({f"start-{kind}", f"stop-{kind}"})
        self._remotes: dict[str, Remote] = {}
        self._ctx: TestContext | None = None
        self._affected: set[str] = set()
        self._pids: dict[str, list[int]] = {}

    def __repr__(self) -> str:
        return f"<ProcessNemesis {self.kind} via {type(self.db).__name__}>"

    # ---- lifecycle --------------------------------------------------------------------

    async def setup(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> None:
        """Keep a remote per node; heal leftovers (resume or restart the database)."""
        missing = [n.name for n in ctx.nodes if n.name not in remotes]
        if missing:
            raise NemesisError(f"{self.kind} nemesis: no remote for node(s) {', '.join(missing)}")
        self._remotes = {n.name: remotes[n.name] for n in ctx.nodes}
        self._ctx = ctx

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Start or stop the fault (see the module docstring); return the completion."""
        f = op.get("f")
        if f == f"start-{self.kind}":
            spec, nodes = self._targets(ctx, op.get("value"))
            value: dict[str, Any] = {"targets": spec, "nodes": nodes}
            if self.kind == "pause":
                value["pids"] = await self._pause(ctx, nodes)
            else:
                await self._each(nodes, self._killable.kill, "kill")
                self._affected |= set(nodes)
            return completion(op, value)
        if f == f"stop-{self.kind}":
            await self.heal_all(ctx)
            return completion(op, "resumed" if self.kind == "pause" else "restarted")
        raise unknown_f(self, op)

    def _targets(self, ctx: TestContext, value: Any) -> tuple[str, list[str]]:
        names = [n.name for n in ctx.nodes]
        if value is None:
            planned = plan_targets(names, ctx.rng, primaries=False)
            return planned["targets"], planned["nodes"]
        if isinstance(value, str):
            return value, resolve_targets(value, names, ctx.rng)
        spec = value.get("targets", "nodes") if isinstance(value, dict) else "nodes"
        return str(spec), target_nodes(value, names)

    async def _pause(self, ctx: TestContext, nodes: list[str]) -> dict[str, list[int]]:
        db = self.db

        async def one(name: str) -> list[int]:
            remote = self._remotes[name]
            self._affected.add(name)
            if isinstance(db, PauseScript):  # one round trip, not three
                script = _scripted_pause(db.pause_script(ctx, self._node(name)))
                out = (await remote.run(script, timeout=self.timeout)).stdout.split(_MARK)
                before, after = _pids(out[0]), _pids(out[-1])
            else:
                before = await self._stopped(remote)
                await self._pausable.pause(ctx, self._node(name), remote)
                after = await self._stopped(remote)
                settle = time.monotonic() + STOP_SETTLE
                while not set(after) - set(before) and time.monotonic() < settle:
                    await asyncio.sleep(_SETTLE_STEP * 4)
                    after = await self._stopped(remote)
            return sorted(set(after) - set(before))

        outcomes = await self._gather(nodes, one)
        check_outcomes("pause", outcomes)
        pids = {n: list(p) for n, p in outcomes.items()}  # type: ignore[call-overload]
        for n, p in pids.items():
            self._pids[n] = sorted(set(self._pids.get(n, [])) | set(p))
        return pids

    async def heal_all(self, ctx: TestContext) -> None:
        """Resume (pause) or restart (kill) the database on every node, remembering nothing
        of what was injected; for a kill, wait until each node it killed is ready (every
        node, when it knows of none: a heal by a controller that did not strike). A node
        it did not kill is not waited for: it may be paused by another fault, and a start
        where the database runs is harmless."""
        if self.kind == "pause":

            async def resume(name: str) -> None:
                remote = self._remotes[name]
                await remote.run(_cont_script(self._pids.get(name, [])), timeout=self.timeout)
                # Not running, or not paused: nothing to resume.
                with contextlib.suppress(Exception):
                    await self._pausable.resume(ctx, self._node(name), remote)

            check_outcomes(
                "resuming paused processes", await self._gather(list(self._remotes), resume)
            )
            self._pids.clear()
        else:
            killed = sorted(self._affected) or list(self._remotes)
            await self._each(list(self._remotes), self._killable.start, "restart")
            db = self.db
            if isinstance(db, Healthy):

                async def ready(name: str) -> None:
                    await db.wait_healthy(
                        ctx, self._node(name), self._remotes[name], within=self.ready_timeout
                    )

                check_outcomes("waiting for restarted nodes", await self._gather(killed, ready))
        self._affected.clear()

    async def verify_healed(self, ctx: TestContext) -> dict[str, list[str]]:
        """Per node: for pause, the processes still stopped; for kill, whether the database
        is down (if the DB can tell, through ``running``)."""

        async def one(name: str) -> list[str]:
            remote = self._remotes[name]
            if self.kind == "pause":
                return [f"process {p} is stopped (state T)" for p in await self._stopped(remote)]
            db = self.db
            if isinstance(db, Running) and not await db.running(ctx, self._node(name), remote):
                return [f"{db.name} is not running"]
            return []

        return residue_report(await self._gather(list(self._remotes), one))

    async def teardown(self, ctx: TestContext) -> None:
        """Heal (as :meth:`heal_all`); harmless if setup never ran."""
        if self._remotes:
            await self.heal_all(ctx)

    async def lease_scripts(self, ctx: TestContext, op: Op) -> dict[str, str]:
        """Per node, a shell script healing the fault ``op`` is about to inject, for the
        node-side guard (see the module docstring); ``{}`` when nothing can heal it there."""
        db = self.db
        if self.kind == "pause":
            if isinstance(db, PauseScript):  # no scan round: what pauses it resumes it
                return {n: str(db.resume_script(ctx, self._node(n))) for n in self._remotes}
            out: dict[str, str] = {}
            for name, remote in self._remotes.items():
                out[name] = _cont_new_stopped_script(await self._stopped(remote))
            return out
        if not isinstance(db, StartScript):
            return {}
        return {name: str(db.start_script(ctx, self._node(name))) for name in self._remotes}

    def applied_lease_scripts(self, value: Any) -> dict[str, str]:
        """Per node, the exact heal script once ``value`` (a start completion) is known:
        SIGCONT of exactly the stopped PIDs and, on a node paused through the database's
        own pause script, its resume script too (a stop that settled after the scan still
        heals). Empty for kills (the start script stays)."""
        if self.kind != "pause" or not isinstance(value, dict):
            return {}
        pids = {n: list(p) for n, p in (value.get("pids") or {}).items()}
        out = {n: _cont_script(self._pids.get(n, pids.get(n, []))) for n in self._remotes}
        db, ctx = self.db, self._ctx
        if isinstance(db, PauseScript) and ctx is not None:
            for n in sorted(self._affected):
                resume = db.resume_script(ctx, self._node(n))
                out[n] = f"(\n{resume}\n)\n{out[n]}"
        return out

    # ---- helpers ----------------------------------------------------------------------

    @property
    def _killable(self) -> Killable:
        db = self.db
        assert isinstance(db, Killable)  # checked in __init__ (kill nemeses only use it)
        return db

    @property
    def _pausable(self) -> Pausable:
        db = self.db
        assert isinstance(db, Pausable)  # checked in __init__ (pause nemeses only use it)
        return db

    def _node(self, name: str) -> Any:
        assert self._ctx is not None
        return next(n for n in self._ctx.nodes if n.name == name)

    async def _stopped(self, remote: Remote) -> list[int]:
        return _pids((await remote.run(_STOPPED_PIDS, timeout=self.timeout)).stdout)

    async def _each(self, nodes: list[str], action: Callable[..., Any], what: str) -> None:
        ctx = self._ctx
        assert ctx is not None

        async def one(name: str) -> None:
            await action(ctx, self._node(name), self._remotes[name])

        check_outcomes(f"{what} of {self.db.name}", await self._gather(nodes, one))

    async def _gather(self, nodes: list[str], fn: Callable[[str], Any]) -> dict[str, object]:
        outcomes = await asyncio.gather(*(fn(n) for n in nodes), return_exceptions=True)
        return dict(zip(nodes, outcomes, strict=True))


def _package(kind: Literal["pause", "kill"], db: DB, interval: float, color: str) -> NemesisPackage:
    nemesis = ProcessNemesis(kind, db)
    return flip_package(kind, nemesis, interval=interval, color=color)


def pause_package(db: DB, *, interval: float = DEFAULT_INTERVAL) -> NemesisPackage:
    """Pause the database on random targets every ``interval`` seconds; resumed at the end."""
    return _package("pause", db, interval, "#C5A0E9")


def kill_package(db: DB, *, interval: float = DEFAULT_INTERVAL) -> NemesisPackage:
    """Kill the database on random targets every ``interval`` seconds; restarted at the end."""
    return _package("kill", db, interval, "#E9A0A0")
