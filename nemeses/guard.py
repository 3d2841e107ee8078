"""The controller's side of the node-side fault guard (:mod:`nemeses.guard_agent`).

Before a fault is injected, :meth:`FaultGuard.hold` writes a *lease* on every node: the
fault's id, the lease length and a shell script that heals it. While the fault should
hold, :meth:`FaultGuard.renew` rewrites the leases (every ``lease / 3`` seconds, from the
runner's keep-alive task). When the fault is healed as planned, :meth:`FaultGuard.release`
deletes them. If the controller dies, nobody renews: the guard on each node runs the heal
scripts ``lease`` seconds after the last renewal, by its own monotonic clock.

The guard lives in ``<dir>`` on the node (default ``/run/<tag>-guard``, like the clock and
packet nemeses' state): ``agent.py``, ``guard.pid``, ``guard.jsonl`` (what it healed, what it
refused, and why), ``leases/``, ``slices/`` (the node's part of the schedule, which the
agent strikes itself: :mod:`nemeses.agent`) and ``agent.jsonl`` (the node's own journal;
the one of the run before is kept as ``agent.jsonl.1``) and ``ready`` (written by a new
agent once it has healed what a crashed run left; the start script waits for it). It needs
``python3`` on the node.

With :attr:`FaultGuard.journal_to` set (a run's ``nodes`` directory), every lease write also
brings back the journal's new whole lines (at most :data:`JOURNAL_PULL_BYTES` a time),
appended to ``<journal_to>/<node>/agent.jsonl`` (:meth:`FaultGuard.stop` brings the rest),
and reads the node's monotonic clock (the kernel's ``now at``, /proc/timer_list): one
offset sample per write, ``{"controller_ns", "offset_ns", "rtt_ns"}``, appended to
``<journal_to>/<node>/clock.jsonl`` (the offset is good to the round trip). Each record
copied is also handed to :attr:`FaultGuard.on_journal` when set (the run's scheduler
observations: :meth:`nemeses.scheduler.Driver.observe_agent`).

The guard runs heal scripts as root, so its directory is trusted only when root made it:
:meth:`FaultGuard.start` creates it mode 0700 and refuses (a :class:`NemesisError` naming
the node, and a ``guard-refused`` ledger record) a directory that is a symlink, not owned by
root, or writable by group or others; the agent itself refuses, and records in
``guard.jsonl``, any lease file not owned by root or writable by others
(:mod:`nemeses.guard_agent`). Those refusals reach the run's fault ledger when the guard
starts and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shlex
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from harness.errors import CommandError, NemesisError
from nemeses.base import DEFAULT_FAULT_TIMEOUT, check_outcomes

if TYPE_CHECKING:
    from harness.control import Remote
    from nemeses.ledger import FaultLedger

__all__ = ["DEFAULT_LEASE", "FaultGuard", "guard_dir", "json_objects"]

log = logging.getLogger("clew.nemeses")

#: Seconds a fault outlives a silent controller before the node heals it.
DEFAULT_LEASE: float = 10.0
#: Bytes the node's journal (``agent.jsonl``) may grow to in one run.
DEFAULT_JOURNAL_BYTES = 4 * 1024 * 1024
#: Observations (log matches, process changes) the node journals per second at most.
DEFAULT_JOURNAL_RATE = 200.0
#: Bytes of the node's journal brought back by one lease write at most.
JOURNAL_PULL_BYTES = 1024 * 1024


#: The line before a journal's lines in a command's output.
_JOURNAL_MARK = "--clew-agent-journal--"

#: Polls (0.05 s apart) of the start script waiting for the new guard to be ready.
_READY_POLLS = 200

#: Exit status of the start script when it refuses the guard's directory.
REFUSED_STATUS = 4


def guard_dir(tag: str) -> str:
    """The guard's directory on a node for ``tag``: under ``/run``, root's alone."""
    return f"/run/{tag}-guard"


def _safe_dir_script(var: str) -> str:
    """POSIX sh: make directory ``$var`` (mode 0700) or check the one there is root's own
    and writable by nobody else; on anything else print why and exit REFUSED_STATUS."""
    refuse = f'{{ echo "refusing ${var}: $why" >&2; exit {REFUSED_STATUS}; }}'
    return (
        f'if [ -L "${var}" ]; then why="it is a symbolic link"; {refuse}; fi\n'
        f'if [ ! -e "${var}" ]; then mkdir -m 0700 "${var}" || exit 1; fi\n'
        f'if [ ! -d "${var}" ]; then why="it is not a directory"; {refuse}; fi\n'
        f'set -- $(stat -c "%u %a" "${var}") || exit 1\n'
        f'if [ "$1" != 0 ]; then why="owned by uid $1, not root (check who made it, then '
        f'remove it)"; {refuse}; fi\n'
        f'if [ $((0$2 & 022)) -ne 0 ]; then why="mode $2 lets others write to it (check '
        f'its contents, then remove it)"; {refuse}; fi\n'
        f'chmod 0700 "${var}" || exit 1\n'
    )


def _agent_source() -> str:
    return resources.files("nemeses").joinpath("guard_agent.py").read_text(encoding="utf-8")


# A shell function: is PID $1 a live process (not a zombie)?
_ALIVE = (
    'alive() { s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; '
    '[ "${s%% *}" != Z ]; }\n'
)


def json_objects(lines: Iterable[str | bytes]) -> list[dict[str, Any]]:
    """The JSON objects among ``lines`` (a journal's), in order; a line that is not one
    (torn by a crash, or garbage) is skipped."""
    decode = msgspec.json.decode  # (about ten times json.loads on a journal's lines)
    out = []
    for line in lines:
        try:
            rec = decode(line)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            try:  # what json.loads takes and msgspec does not: NaN, Infinity
                rec = json.loads(line)
            except (ValueError, RecursionError):
                continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


class FaultGuard:
    """Starts the guard on every node and keeps leases there (see the module docstring).

    ``lease`` is the default lease length in seconds; ``idle_exit`` how long a guard with
    nothing to guard lingers; ``timeout`` bounds every command; ``ledger`` (optional)
    receives a ``guard-refused`` record for every directory or lease file a guard refused;
    ``journal_bytes`` and ``journal_rate`` are the caps of each node's ``agent.jsonl``.
    """

    def __init__(
        self,
        remotes: Mapping[str, Remote],
        *,
        tag: str = "clew",
        lease: float = DEFAULT_LEASE,
        idle_exit: float = 900.0,
        timeout: float = DEFAULT_FAULT_TIMEOUT,
        ledger: FaultLedger | None = None,
        journal_bytes: int = DEFAULT_JOURNAL_BYTES,
        journal_rate: float = DEFAULT_JOURNAL_RATE,
    ) -> None:
        if lease <= 0:
            raise NemesisError(f"a fault lease must be positive, not {lease}")
        self.remotes = dict(remotes)
        self.tag = tag
        self.lease = lease
        self.idle_exit = idle_exit
        self.timeout = timeout
        self.dir = guard_dir(tag)
        self.ledger = ledger
        self._reported: set[tuple[str, str, float]] = set()  # refusals already on the ledger
        self._held: dict[str, dict[str, str]] = {}  # lease id -> node -> heal script
        self._seq = 0
        self._lock = asyncio.Lock()
        self.journal_bytes = journal_bytes
        self.journal_rate = journal_rate
        #: Where each node's journal is copied (``<journal_to>/<node>/agent.jsonl``).
        self.journal_to: Path | None = None
        self._pulled: dict[str, int] = {}  # node -> bytes of its journal copied
        #: Called with (node, record) for every journal record copied (the run's
        #: scheduler observations take them in); ``None``: nobody listens.
        self.on_journal: Callable[[str, dict[str, Any]], None] | None = None

    @property
    def held(self) -> list[str]:
        """The ids of the leases held now."""
        return sorted(self._held)

    def _start_script(self, source: str) -> str:
        d = shlex.quote(self.dir)
        pid = f"{d}/guard.pid"
        return (
            f"{_ALIVE}"
            "command -v python3 >/dev/null 2>&1 || "
            "{ echo 'the fault guard needs python3 on this node' >&2; exit 3; }\n"
            "umask 077\n"
            f"g={d}\n{_safe_dir_script('g')}"
            f"g={d}/leases\n{_safe_dir_script('g')}"
            f"g={d}/slices\n{_safe_dir_script('g')}"
            f"{_whole_write(f'{d}/.agent.tmp', f'{d}/agent.py', source)} || "
            "{ echo 'the fault guard program arrived incomplete' >&2; exit 4; }\n"
            # A guard left by an earlier run is stopped; the new one heals its leases.
            f'if [ -s {pid} ] && alive "$(cat {pid})"; then kill -TERM "$(cat {pid})"; '
            f'i=0; while alive "$(cat {pid})" && [ $i -lt 50 ]; do '
            "i=$((i+1)); sleep 0.1; done; fi\n"
            f"[ -f {d}/agent.jsonl ] && mv -f {d}/agent.jsonl {d}/agent.jsonl.1\n"
            f"rm -f {d}/ready\n"
            f"setsid nohup python3 {d}/agent.py --dir {d} --idle-exit {self.idle_exit:g} "
            f"--journal-bytes {int(self.journal_bytes)} --journal-rate {self.journal_rate:g} "
            f">>{d}/agent.out 2>&1 </dev/null &\n"
            f"echo $! > {pid}\n"
            # Until it has healed the leftovers, a lease or slice written now would be
            # taken for one: wait for it (bounded).
            f"i=0; while [ ! -e {d}/ready ] && [ $i -lt {_READY_POLLS} ]; do i=$((i+1)); "
            "sleep 0.05; done\n"
            f"[ -e {d}/ready ] || {{ echo 'the fault guard did not start:' >&2; "
            f"tail -n 5 {d}/agent.out >&2; exit 5; }}\n"
        )

    async def start(self) -> None:
        """Install and (re)start the guard on every node; a guard left by a crashed run is
        replaced, and the new one first heals the leases it finds. :class:`NemesisError`
        naming each node where this fails (e.g. no python3)."""
        source = _agent_source()
        self._pulled = {}

        async def one(remote: Remote) -> None:
            # (stopping an old guard and waiting for the new one to be ready take time too)
            limit = self.timeout + _READY_POLLS * 0.05 + 5
            await remote.run(self._start_script(source), stdin=source, timeout=limit, sudo=True)

        outcomes = await self._on_nodes(one)
        refused: dict[str, str] = {}
        for node, outcome in outcomes.items():
            if isinstance(outcome, CommandError) and outcome.exit_status == REFUSED_STATUS:
                refused[node] = _refusal_line(outcome.stderr)
                self._ledger_refusal(node, {"file": self.dir, "reason": refused[node]})
        if refused:
            lines = "\n".join(f"  {n}: {why}" for n, why in sorted(refused.items()))
            raise NemesisError(
                "the fault guard will not run heal scripts as root from a directory that "
                f"root does not alone control:\n{lines}"
            )
        check_outcomes("starting the fault guard", outcomes)
        await self.report_refusals()

    async def report_refusals(self) -> dict[str, list[dict[str, object]]]:
        """The lease files each node's guard refused so far (``refused`` events in
        ``guard.jsonl``: a file not owned by root or writable by others); each new one is
        also written to the ledger as a ``guard-refused`` record."""
        found: dict[str, list[dict[str, object]]] = {}
        for name, remote in self.remotes.items():
            try:
                events = await self.log(remote)
            except Exception:  # the ledger note is best effort; the refusal itself held
                continue
            found[name] = [e for e in events if e.get("event") == "refused"]
            for event in found[name]:
                self._ledger_refusal(name, event)
        return found

    def _ledger_refusal(self, node: str, event: Mapping[str, object]) -> None:
        key = (node, str(event.get("file")), float(str(event.get("monotonic", 0))))
        if self.ledger is None or key in self._reported:
            return
        self._reported.add(key)
        # (value, targets and error too, so that the report's ledger table shows it)
        self.ledger.write({"seq": self.ledger.next_seq(), "event": "guard-refused",
                           "kind": "guard", "f": "guard-refused", "node": node,
                           "file": event.get("file"), "reason": event.get("reason"),
                           "value": event.get("file"), "targets": [node],
                           "error": event.get("reason")})  # fmt: skip

    async def hold(self, lease_id: str, heal: Mapping[str, str]) -> None:
        """Write lease ``lease_id`` on every node in ``heal`` (node -> heal script), before
        the fault is injected. Holding an id again replaces its scripts."""
        async with self._lock:
            self._held[lease_id] = dict(heal)
            await self._write(lease_id, set(heal))

    async def renew(self) -> None:
        """Rewrite every held lease (a fresh ``seq``), restarting its countdown."""
        async with self._lock:
            for lease_id, scripts in list(self._held.items()):
                await self._write(lease_id, set(scripts))

    async def release(self, lease_id: str) -> None:
        """Delete lease ``lease_id`` on every node (its fault was healed as planned)."""
        async with self._lock:
            self._held.pop(lease_id, None)
            path = shlex.quote(f"{self.dir}/leases/{lease_id}.json")
            check_outcomes(
                f"releasing fault lease {lease_id}",
                await self._on_nodes(
                    lambda r: r.run(f"rm -f {path}", timeout=self.timeout, sudo=True)
                ),
            )

    async def stop(self) -> None:
        """Release every lease and stop the guard on every node (by its PID file); first put
        any lease file a guard refused on the ledger."""
        await self.report_refusals()
        async with self._lock:
            self._held.clear()
        d = shlex.quote(self.dir)
        script = (
            f"{_ALIVE}rm -f {d}/leases/*.json {d}/slices/*.json\n"
            f'[ -s {d}/guard.pid ] && p=$(cat {d}/guard.pid) && alive "$p" && kill -TERM "$p" '
            f'&& i=0 && while alive "$p" && [ $i -lt 20 ]; do i=$((i+1)); sleep 0.05; done\n'
        )

        async def one(remote: Remote) -> None:
            pull = self._pull_script(remote.name)
            sent = time.monotonic_ns()
            r = await remote.run(script + pull + "exit 0\n", timeout=self.timeout, sudo=True)
            self._take_journal(remote.name, r.stdout, sent, time.monotonic_ns())

        check_outcomes("stopping the fault guard", await self._on_nodes(one))
        self._ledger_agent_acts()

    def _ledger_agent_acts(self) -> None:
        """Put what each node's agent struck and healed (its copied journal) on the
        ledger, as ``source: agent`` records on the run's clock (:mod:`nemeses.agent`)."""
        if self.ledger is None or self.journal_to is None:
            return
        from nemeses.agent import ledger_records

        for name in sorted(self.remotes):
            path = self.journal_to / name / "agent.jsonl"
            if not path.exists():
                continue
            journal = []
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict):
                        journal.append(record)
            for rec in ledger_records(name, journal):
                self.ledger.write({"seq": self.ledger.next_seq(), **rec})

    async def put_slices(self, slices: Mapping[str, Mapping[str, Any]]) -> None:
        """Hand each node in ``slices`` its part of the schedule (``slices/agent.json``,
        written whole, root's alone), which its agent arms at once (:mod:`nemeses.agent`).
        :class:`NemesisError` naming each node where it fails."""
        d = self.dir
        final, tmp = shlex.quote(f"{d}/slices/agent.json"), shlex.quote(f"{d}/slices/.agent.tmp")

        async def one(remote: Remote) -> None:
            if remote.name in slices:
                body = json.dumps(slices[remote.name])
                await remote.run(f"umask 077 && {_whole_write(tmp, final, body)}", stdin=body,
                                 timeout=self.timeout, sudo=True)  # fmt: skip

        check_outcomes("handing the nodes their slices", await self._on_nodes(one))

    async def pull_journals(self) -> None:
        """Copy the new whole lines of every node's journal now (see the module
        docstring); a node that cannot be reached is left for the next pull."""

        async def one(remote: Remote) -> None:
            script = self._pull_script(remote.name) + "exit 0\n"
            sent = time.monotonic_ns()
            r = await remote.run(script, timeout=self.timeout, sudo=True)
            self._take_journal(remote.name, r.stdout, sent, time.monotonic_ns())

        async with self._lock:  # (one pull at a time per node: lease writes pull too)
            await self._on_nodes(one)

    def _pull_script(self, node: str) -> str:
        """Shell lines printing ``node``'s journal from its first byte not yet copied
        (nothing when no ``journal_to`` is set)."""
        if self.journal_to is None:
            return ""
        j = shlex.quote(f"{self.dir}/agent.jsonl")
        start = self._pulled.get(node, 0) + 1
        return (f"echo \"clock $(grep -m1 'now at' /proc/timer_list 2>/dev/null "
                "| cut -d' ' -f3)\"\n"
                f'echo "{_JOURNAL_MARK}"; tail -c +{start} {j} 2>/dev/null '
                f"| head -c {JOURNAL_PULL_BYTES}\n")  # fmt: skip

    def _take_journal(self, node: str, stdout: str, sent_ns: int, back_ns: int) -> None:
        """Append the whole journal lines in ``stdout`` (after the mark) to the node's copy,
        and the node's clock read by the same command (sent at ``sent_ns``, answered at
        ``back_ns`` on this controller's monotonic clock) to ``clock.jsonl`` beside it."""
        if self.journal_to is None or _JOURNAL_MARK not in stdout:
            return
        head, text = stdout.split(_JOURNAL_MARK + "\n", 1)
        out = self.journal_to / node
        out.mkdir(parents=True, exist_ok=True)
        clock = re.search(r"^clock (\d+)$", head, flags=re.M)
        if clock is not None:
            mid = (sent_ns + back_ns) // 2
            sample = {"controller_ns": mid, "offset_ns": int(clock.group(1)) - mid,
                      "rtt_ns": back_ns - sent_ns}  # fmt: skip
            with open(out / "clock.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(sample) + "\n")
        whole = text[: text.rfind("\n") + 1]
        if not whole:
            return
        with open(out / "agent.jsonl", "a", encoding="utf-8") as f:
            f.write(whole)
        self._pulled[node] = self._pulled.get(node, 0) + len(whole.encode())
        if self.on_journal is not None:
            self._hand_on(node, whole)

    def _hand_on(self, node: str, lines: str) -> None:
        """Give every JSON object of ``lines`` to :attr:`on_journal` (other lines are
        skipped; a listener's error is logged, never allowed to stop the lease writes)."""
        assert self.on_journal is not None
        for line in lines.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict):
                continue
            try:
                self.on_journal(node, rec)
            except Exception:  # a listener's bug must not stop the leases
                log.exception("the journal listener failed on a record of %s", node)
                return

    async def log(self, remote: Remote) -> list[dict[str, object]]:
        """The events the guard on ``remote``'s node recorded (``guard.jsonl``); a line
        that is not a JSON object (torn by a crash) is skipped."""
        r = await remote.run(
            f"cat {shlex.quote(self.dir)}/guard.jsonl 2>/dev/null; exit 0",
            timeout=self.timeout,
            sudo=True,
        )
        return json_objects(r.stdout.splitlines())

    async def _write(self, lease_id: str, nodes: set[str]) -> None:
        self._seq += 1
        d = f"{self.dir}/leases"
        final = shlex.quote(f"{d}/{lease_id}.json")
        tmp = shlex.quote(f"{d}/.{lease_id}.tmp")
        scripts = self._held[lease_id]

        async def one(remote: Remote) -> None:
            if remote.name not in nodes:
                return
            body = json.dumps(
                {
                    "id": lease_id,
                    "lease": self.lease,
                    "seq": self._seq,
                    "heal": scripts[remote.name],
                }
            )
            pull = self._pull_script(remote.name)
            sent = time.monotonic_ns()
            r = await remote.run(
                f"umask 077 && {_whole_write(tmp, final, body)} || exit 1\n{pull}",
                stdin=body,
                timeout=self.timeout,
                sudo=True,
            )
            self._take_journal(remote.name, r.stdout, sent, time.monotonic_ns())

        check_outcomes(f"writing fault lease {lease_id}", await self._on_nodes(one))

    async def _on_nodes(self, fn: Callable[[Remote], Awaitable[Any]]) -> dict[str, object]:
        remotes = list(self.remotes.values())
        outcomes = await asyncio.gather(*(fn(r) for r in remotes), return_exceptions=True)
        return {r.name: o for r, o in zip(remotes, outcomes, strict=True)}


def _whole_write(tmp: str, final: str, body: str) -> str:
    """Shell that writes its standard input to ``tmp`` and renames it to ``final`` only if
    all of ``body`` arrived (paths already quoted): a controller killed mid-write leaves the
    file before it, never a part of the new one (the agent would not know how to heal it)."""
    size = len(body.encode())
    return f'cat > {tmp} && [ "$(wc -c < {tmp})" -eq {size} ] && mv -f {tmp} {final}'


def _refusal_line(stderr: str) -> str:
    """The ``refusing …`` line of a refused start's stderr."""
    lines = [line.strip() for line in stderr.splitlines() if line.startswith("refusing ")]
    return lines[-1] if lines else stderr.strip()
