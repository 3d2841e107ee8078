"""The ``disk-full`` fault kind: the filesystem under the database's data directory fills up.

How it works, on each node (as root, over SSH):

* **setup** moves the data directory onto its own size-limited ``tmpfs`` (source name
  ``clew-disk-full``, so it is recognisable in ``/proc/self/mounts``): the database is
  killed, the data copied onto a tmpfs of (its size + ``headroom``) mounted *at* the data
  directory with the directory's owner and mode, and the database started again and waited
  for. Nothing else on the node, and nothing on the host, can fill up: the fault only ever
  touches this filesystem, whose size clew chose.
* **start-disk-full** fills that filesystem on the target nodes: ``fallocate`` of every free
  byte into ``.clew-disk-full`` at its root, then ``dd`` to the last block, until
  ``ENOSPC``. The completion records the bytes left free per node (0).
* **stop-disk-full** deletes the filler on every node, then starts the database again on
  any node where it died of the full disk (if the adapter can tell, :class:`Running`),
  waiting until it serves; the completion names the nodes restarted — how the ledger shows
  the database *saw* the fault.
* **heal_all** (needs no memory: it reads the mounts) frees, restarts and moves the data
  back off the tmpfs onto the directory's own filesystem (kill, copy, unmount, start), so
  the adapter's teardown finds an ordinary directory. The node-side guard's lease deletes
  the filler if the controller dies mid-fault; the tmpfs itself goes with the node.
* **verify_healed** reports a filler still present, a data directory still on clew's
  tmpfs, and a database that is down.

Needs of the DB adapter: ``data_dir`` (:class:`~nemeses.abilities.DataDir`), ``kill``/``start``
and ``wait_healthy`` (to move the data without losing it). Limits: ``headroom`` (the
room the database has before the fault, ``--option disk_full_headroom_mb=``, 64 MiB) and
``max_data`` (a larger data directory is refused rather than copied into memory,
``--option disk_full_max_data_mb=``, 1024 MiB).
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.api import Op, TestContext
from harness.errors import NemesisError
from nemeses.abilities import DataDir, Healthy, Killable, Running
from nemeses.base import (
    DEFAULT_FAULT_TIMEOUT,
    NemesisPackage,
    check_outcomes,
    completion,
    flip_package,
    residue_report,
    unknown_f,
)
from nemeses.kinds import FaultKind, PackageArgs, ParamSpace, aim_at_targets
from nemeses.targets import TARGET_SPECS, resolve_targets, target_nodes

if TYPE_CHECKING:
    from clusters.base import Node
    from harness.control import Remote

#: The tmpfs's source name: how clew recognises its own mount.
FS_TAG = "clew-disk-full"
#: The filler file, at the root of the tmpfs.
FILLER = ".clew-disk-full"
#: Bytes of free room the database gets on its tmpfs before the fault.
DEFAULT_HEADROOM = 64 * 2**20
#: A data directory larger than this is refused (it would be copied into memory).
DEFAULT_MAX_DATA = 2**30
#: Seconds a restarted database may take to serve again.
DEFAULT_READY_TIMEOUT = 30.0
#: Seconds the copy of the data directory may take.
COPY_TIMEOUT = 120.0

_SAFE_DIR = re.compile(r"^/[A-Za-z0-9._/-]+$")


def _mounted(d: str) -> str:
    """Shell test: the data directory ``d`` is clew's tmpfs."""
    return f"grep -qs '^{FS_TAG} {d} tmpfs ' /proc/self/mounts"


def rehome_script(data_dir: str, *, headroom: int, max_data: int) -> str:
    """Move ``data_dir`` (the database stopped) onto a tmpfs of its size + ``headroom``
    bytes, keeping the directory's owner and mode. Idempotent: already there, it does
    nothing. Fails, saying why, for a data directory larger than ``max_data`` bytes."""
    d = shlex.quote(data_dir)
    return f"""set -eu
d={d}
if {_mounted(data_dir)}; then exit 0; fi
[ -d "$d" ] || {{ echo "no data directory $d" >&2; exit 1; }}
used=$(du -sb "$d" | cut -f1)
if [ "$used" -gt {max_data} ]; then
  echo "data directory $d holds $used bytes, more than the {max_data} disk-full copies" >&2
  exit 1
fi
size=$(( (used + {headroom} + 1048575) / 1048576 ))m
rm -rf "$d.clew-pre"
mv "$d" "$d.clew-pre"
mkdir "$d"
mount -t tmpfs -o "size=$size,mode=0700" {FS_TAG} "$d"
chown --reference="$d.clew-pre" "$d"
chmod --reference="$d.clew-pre" "$d"
cp -a "$d.clew-pre/." "$d/"
rm -rf "$d.clew-pre"
"""


def unhome_script(data_dir: str) -> str:
    """Move ``data_dir`` (the database stopped) back off clew's tmpfs onto its own
    filesystem, without the filler. Idempotent: not on the tmpfs, it does nothing."""
    d = shlex.quote(data_dir)
    return f"""set -eu
d={d}
{_mounted(data_dir)} || exit 0
rm -f "$d/{FILLER}"
rm -rf "$d.clew-back"
mkdir "$d.clew-back"
cp -a "$d/." "$d.clew-back/"
chown --reference="$d" "$d.clew-back"
chmod --reference="$d" "$d.clew-back"
umount "$d"
rmdir "$d"
mv "$d.clew-back" "$d"
"""


def fill_script(data_dir: str) -> str:
    """Fill clew's tmpfs at ``data_dir`` to the last block; print the bytes left free.
    Fails if the data directory is not on clew's tmpfs (setup did not run there)."""
    d = shlex.quote(data_dir)
    return f"""set +e -u
d={d}
{_mounted(data_dir)} || {{ echo "$d is not on clew's {FS_TAG} tmpfs" >&2; exit 1; }}
free=$(( $(stat -f -c '%a' "$d") * $(stat -f -c '%S' "$d") ))
[ "$free" -gt 0 ] && fallocate -l "$free" "$d/{FILLER}" 2>/dev/null
dd if=/dev/zero of="$d/{FILLER}" bs=4096 oflag=append conv=notrunc status=none 2>/dev/null
echo $(( $(stat -f -c '%a' "$d") * $(stat -f -c '%S' "$d") ))
"""


def free_script(data_dir: str) -> str:
    """Delete the filler (harmless when there is none)."""
    return f"rm -f {shlex.quote(data_dir + '/' + FILLER)}\n"


def residue_script(data_dir: str) -> str:
    """One line per residue: the filler, or the data directory still on clew's tmpfs."""
    d = shlex.quote(data_dir)
    return f"""d={d}
[ -e "$d/{FILLER}" ] && echo "filler $d/{FILLER} is still there"
{_mounted(data_dir)} && echo "data directory $d is still on clew's {FS_TAG} tmpfs"
exit 0
"""


class DiskFullNemesis:
    """Fills the filesystem under the database's data directory (see the module docstring)."""

    def __init__(
        self,
        db: Any,
        *,
        headroom: int = DEFAULT_HEADROOM,
        max_data: int = DEFAULT_MAX_DATA,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        timeout: float = DEFAULT_FAULT_TIMEOUT,
    ) -> None:
        self.db_name = str(db.name)
        if not (isinstance(db, DataDir) and isinstance(db, Killable) and isinstance(db, Healthy)):
            raise NemesisError(
                f"disk-full faults need the database adapter {type(db).__name__} to provide "
                "data_dir, kill/start and wait_healthy"
            )
        if not _SAFE_DIR.match(db.data_dir) or "/../" in f"{db.data_dir}/":
            raise NemesisError(f"disk-full: data directory {db.data_dir!r} is not a plain path")
        self.db = db
        self.data_dir = db.data_dir
        self.headroom = headroom
        self.max_data = max_data
        self.ready_timeout = ready_timeout
        self.timeout = timeout
        self.fs = frozenset({"start-disk-full", "stop-disk-full"})
        self._remotes: dict[str, Remote] = {}
        self._nodes: dict[str, Node] = {}

    def __repr__(self) -> str:
        return f"<DiskFullNemesis {self.data_dir}>"

    # ---- lifecycle --------------------------------------------------------------------

    async def setup(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> None:
        """Move every node's data directory onto its own tmpfs (the database restarted),
        freeing a filler a crashed run left. :class:`NemesisError` naming each node that
        cannot."""
        missing = [n.name for n in ctx.nodes if n.name not in remotes]
        if missing:
            raise NemesisError(f"disk-full nemesis: no remote for node(s) {', '.join(missing)}")
        self._remotes = {n.name: remotes[n.name] for n in ctx.nodes}
        self._nodes = {n.name: n for n in ctx.nodes}
        script = rehome_script(self.data_dir, headroom=self.headroom, max_data=self.max_data)

        async def one(name: str) -> None:
            remote = self._remotes[name]
            await remote.run(free_script(self.data_dir), timeout=self.timeout)
            mounted = await remote.run(
                _mounted(self.data_dir) + " && echo yes; exit 0", timeout=self.timeout
            )
            if mounted.stdout.strip() == "yes":
                return
            await self.db.kill(ctx, self._nodes[name], remote)
            try:
                await remote.run(script, timeout=COPY_TIMEOUT)
            finally:
                await self.db.start(ctx, self._nodes[name], remote)

        check_outcomes("moving the data directory onto a tmpfs", await self._gather(one))
        await self._wait_ready(ctx, list(self._remotes))

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Fill (``start-disk-full``) or free (``stop-disk-full``); return the completion."""
        f = op.get("f")
        if f == "start-disk-full":
            spec, nodes = self._targets(ctx, op.get("value"))
            free = await self._fill(nodes)
            return completion(op, {"targets": spec, "nodes": nodes, "free_bytes": free})
        if f == "stop-disk-full":
            restarted = await self._free_and_restart(ctx)
            return completion(op, {"freed": sorted(self._remotes), "restarted": restarted})
        raise unknown_f(self, op)

    async def heal_all(self, ctx: TestContext) -> None:
        """Free every node, restart a database the full disk killed, and move every data
        directory back off clew's tmpfs (reading the mounts: no memory needed)."""
        await self._free_and_restart(ctx)
        homed = []
        for name, remote in self._remotes.items():
            r = await remote.run(_mounted(self.data_dir) + " && echo yes; exit 0",
                                 timeout=self.timeout)  # fmt: skip
            if r.stdout.strip() == "yes":
                homed.append(name)
        if not homed:
            return

        async def one(name: str) -> None:
            remote = self._remotes[name]
            await self.db.kill(ctx, self._nodes[name], remote)
            try:
                await remote.run(unhome_script(self.data_dir), timeout=COPY_TIMEOUT)
            finally:
                await self.db.start(ctx, self._nodes[name], remote)

        check_outcomes("moving the data directory back", await self._gather(one, homed))
        await self._wait_ready(ctx, homed)

    async def verify_healed(self, ctx: TestContext) -> dict[str, list[str]]:
        """Per node: a filler still there, the data still on clew's tmpfs, the database
        down (if the adapter can tell)."""

        async def one(name: str) -> list[str]:
            remote = self._remotes[name]
            r = await remote.run(residue_script(self.data_dir), timeout=self.timeout)
            lines = [line for line in r.stdout.splitlines() if line.strip()]
            db = self.db
            if isinstance(db, Running) and not await db.running(ctx, self._nodes[name], remote):
                lines.append(f"{self.db_name} is not running")
            return lines

        return residue_report(await self._gather(one))

    async def teardown(self, ctx: TestContext) -> None:
        """Heal (as :meth:`heal_all`); harmless if setup never ran."""
        if self._remotes:
            await self.heal_all(ctx)

    def heal_script(self, node_name: str) -> str:
        """The node-side guard's heal: delete the filler."""
        return free_script(self.data_dir)

    # ---- helpers ----------------------------------------------------------------------

    def _targets(self, ctx: TestContext, value: Any) -> tuple[str, list[str]]:
        names = list(self._remotes) or [n.name for n in ctx.nodes]
        if value is None:
            planned = plan_disk_full(names, ctx.rng, False)
            return planned["targets"], planned["nodes"]
        if isinstance(value, str):
            return value, resolve_targets(value, names, ctx.rng)
        spec = value.get("targets", "nodes") if isinstance(value, dict) else "nodes"
        return str(spec), target_nodes(value, names)

    async def _fill(self, nodes: list[str]) -> dict[str, int]:
        async def one(name: str) -> int:
            r = await self._remotes[name].run(fill_script(self.data_dir), timeout=self.timeout)
            return int(r.stdout.split()[-1])

        outcomes = await self._gather(one, nodes)
        check_outcomes("filling the data directory's filesystem", outcomes)
        return {n: int(v) for n, v in outcomes.items()}  # type: ignore[call-overload]

    async def _free_and_restart(self, ctx: TestContext) -> list[str]:
        async def free(name: str) -> None:
            await self._remotes[name].run(free_script(self.data_dir), timeout=self.timeout)

        check_outcomes("freeing the data directory's filesystem", await self._gather(free))
        db = self.db
        if not isinstance(db, Running):
            return []
        down = []
        for name, remote in self._remotes.items():
            if not await db.running(ctx, self._nodes[name], remote):
                down.append(name)

        async def start(name: str) -> None:
            await db.start(ctx, self._nodes[name], self._remotes[name])

        check_outcomes("restarting the database", await self._gather(start, down))
        await self._wait_ready(ctx, down)
        return down

    async def _wait_ready(self, ctx: TestContext, names: list[str]) -> None:
        db = self.db

        async def ready(name: str) -> None:
            await db.wait_healthy(
                ctx, self._nodes[name], self._remotes[name], within=self.ready_timeout
            )

        check_outcomes("waiting for the database", await self._gather(ready, names))

    async def _gather(
        self, fn: Callable[[str], Any], names: list[str] | None = None
    ) -> dict[str, object]:
        names = list(self._remotes) if names is None else names
        outcomes = await asyncio.gather(*(fn(n) for n in names), return_exceptions=True)
        return dict(zip(names, outcomes, strict=True))


def plan_disk_full(nodes: Sequence[str], rng: random.Random, roles: bool) -> Any:
    """``{"targets": spec, "nodes": [...]}`` for a target spec drawn from ``one``,
    ``minority``, ``majority``, ``all`` (and ``primaries``, resolved during the run, when
    ``roles``)."""
    specs = [s for s in TARGET_SPECS if roles or s != "primaries"]
    spec = rng.choice(specs)
    if spec == "primaries":
        return {"targets": "primaries"}
    return {"targets": spec, "nodes": resolve_targets(spec, list(nodes), rng)}


def disk_full_package(args: PackageArgs) -> NemesisPackage:
    """The disk-full nemesis for the run's DB adapter; ``disk_full_headroom_mb`` and
    ``disk_full_max_data_mb`` options set its limits."""
    headroom = _mib_option(args.options, "disk_full_headroom_mb", DEFAULT_HEADROOM)
    max_data = _mib_option(args.options, "disk_full_max_data_mb", DEFAULT_MAX_DATA)
    nemesis = DiskFullNemesis(args.db, headroom=headroom, max_data=max_data)
    return flip_package("disk-full", nemesis, interval=args.interval, color="#D9B38C")


def _mib_option(options: Mapping[str, Any], name: str, default: int) -> int:
    """Option ``name`` (MiB, at least 1; ``default`` bytes if absent) in bytes;
    :class:`NemesisError` naming the option for a value that is not a finite number of
    MiB of at least 1 (``inf`` was an OverflowError, a crash of clew)."""
    mb = 2**20
    value = options.get(name, default / mb)
    try:
        mib = float(value)
    except (TypeError, ValueError):
        mib = math.nan
    if isinstance(value, bool) or not math.isfinite(mib) or mib < 1:
        raise NemesisError(f"disk-full option {name!r} must be a number of MiB, at least 1, "
                           f"got {value!r}")  # fmt: skip
    return int(mib * mb)


KINDS = (
    FaultKind(
        name="disk-full",
        summary="fills the filesystem under the database's data directory (moved at setup "
        "onto its own size-limited tmpfs): fallocate, then dd to the last block",
        heals_by="deleting the filler; restarting a database the full disk killed; at the "
        "end, the data moved back off the tmpfs",
        space=ParamSpace(
            targets=(*TARGET_SPECS, "nodes"),
            magnitudes={"headroom before the fault": (1, DEFAULT_HEADROOM / 2**20, "MiB")},
        ),
        plan=plan_disk_full,
        package=disk_full_package,
        db_needs=(DataDir, Killable, Healthy),
        aim=aim_at_targets,
        heal_priority=3,
        order=60,
        options={
            "disk_full_headroom_mb": "MiB the database has left before the fault (64)",
            "disk_full_max_data_mb": "the largest data directory, MiB, moved onto the tmpfs (1024)",
        },
    ),
)
