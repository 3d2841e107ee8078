"""Clock faults: bump (shift a node's wall clock) and strobe (flip it back and forth).

A clock fault is plain data, planned on the controller (:func:`plan_clock`, pure and
seeded) or given explicitly (for replay)::

    {"kind": "bump", "offsets": {"n1": 30.0, "n3": -12.5}}
    {"kind": "strobe", "nodes": ["n2"], "delta": 5.0, "period": 0.2, "duration": 3.0}

A bump shifts each named node's clock by its offset (seconds). A strobe alternates each
named node's clock between ``+delta`` and no offset every ``period`` seconds for about
``duration`` seconds, in a detached loop on the node, and ends with no offset. Every
``start-clock`` *replaces* the clock fault in force: nodes it does not name are healed.

Two mechanisms (the node-side scripts are in :mod:`nemeses.clock_scripts`):

``libfaketime``
    Per process: the database is started with :func:`faketime_env` (``LD_PRELOAD`` of
    libfaketime and a timestamp file read on every clock read), and a fault rewrites the
    file (``+30.000``; ``+0`` heals). Nothing else on the node, sshd included, sees it. It
    works for programs that read the time through libc (C, Python, the JVM) and does
    nothing to Go programs such as etcd, which read it through the vDSO.
``system``
    The node's system clock (``date -s``), for nodes with their own kernel (VMs, real
    machines: capability ``clock-system``). Every command carries the controller's time;
    heal sets the node's clock to it. Never used on the local provider, whose nodes share
    the host's clock.

:func:`clock_mechanism` picks one from the cluster's capabilities (``clock-libfaketime``,
``clock-system``) and the database's ``clock_reads`` attribute, or refuses, saying why and
what would work; :meth:`ClockNemesis.setup` calls it, so an impossible request fails
before the run.

How a DB adapter opts in to libfaketime: declare ``clock_reads = "libc"`` on the adapter
and start the database's process with ``faketime_env()`` in its environment (for a
``setsid nohup …`` launch line, prefix the argv with :func:`faketime_argv`). Processes
started before the nemesis's setup are fine: a missing timestamp file means real time, and
a file created later takes effect at the next clock read. ``clock_reads = "go-vdso"``
declares a Go program (only the system clock can shift it); ``"unknown"`` (the default
when the attribute is missing) allows the system clock only. Check the database runs under
libfaketime at all: it hangs redis (jemalloc), and libfaketime 0.9.10 (Debian 12) with
``FAKETIME_DONT_FAKE_MONOTONIC=1`` fails ``clock_nanosleep`` on ``CLOCK_MONOTONIC`` with
``TIMER_ABSTIME`` (libfaketime#426), so Python 3.11's ``time.sleep`` raises ``EINVAL``.

Ops and completion values:

=================  ==================================================  ===================
op                 value                                               completion value
=================  ==================================================  ===================
``start-clock``    ``None`` (planned with ``ctx.rng``), a kind name     the fault applied,
                   (``"bump"``, ``"strobe"``) or a fault as above       plus ``mechanism``
``stop-clock``     ignored                                             :data:`HEALED`
=================  ==================================================  ===================
"""

from __future__ import annotations

import asyncio
import glob
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from harness.api import Op, TestContext
from harness.errors import NemesisError
from nemeses import clock_scripts as scripts
from nemeses.abilities import ClockSource
from nemeses.base import (
    DEFAULT_FAULT_TIMEOUT,
    DEFAULT_INTERVAL,
    NemesisPackage,
    check_outcomes,
    completion,
    flip_package,
    residue_report,
    unknown_f,
)
from nemeses.netaddr import TAG_RE

if TYPE_CHECKING:
    from clusters.base import Cluster
    from harness.control import Remote

__all__ = [
    "CLOCK_READS",
    "DEFAULT_LIBFAKETIME",
    "DEFAULT_TAG",
    "DEFAULT_TOLERANCE",
    "FAKETIME_CAPABILITY",
    "HEALED",
    "KINDS",
    "LIBFAKETIME_GLOBS",
    "MAX_ABS_OFFSET",
    "MAX_STROBE_FLIPS",
    "MECHANISMS",
    "MIN_STROBE_PERIOD",
    "NTP_DAEMONS",
    "SYSTEM_CAPABILITY",
    "ClockBounds",
    "ClockNemesis",
    "clock_fault_from_json",
    "clock_mechanism",
    "clock_package",
    "clock_reads_of",
    "faketime_argv",
    "faketime_env",
    "faketime_path",
    "find_libfaketime",
    "plan_clock",
]

#: Fault kinds, as ``start-clock`` values and in planned faults.
KINDS = ("bump", "strobe")
#: ``auto`` picks per :func:`clock_mechanism`; the others force one (or refuse).
MECHANISMS = ("auto", "libfaketime", "system")
#: What a DB adapter's ``clock_reads`` may say about how its database reads the time.
CLOCK_READS = ("libc", "go-vdso", "unknown")
#: Capability names reported by the cluster providers.
FAKETIME_CAPABILITY = "clock-libfaketime"
SYSTEM_CAPABILITY = "clock-system"
#: The completion value of ``stop-clock``.
HEALED = "clock-healed"
#: The default tag: fault files in ``/run/clew-clock`` on each node.
DEFAULT_TAG = "clew"
#: Seconds a node's system clock may differ from the controller's after a heal (plus half
#: the round trip of the check) before ``verify_healed`` calls it residue.
DEFAULT_TOLERANCE = 1.0
#: The largest offset accepted, in seconds (ten years).
MAX_ABS_OFFSET = 10 * 365 * 86400.0
#: The shortest strobe period accepted, in seconds.
MIN_STROBE_PERIOD = 0.01
#: The most offset changes one strobe may make (``duration / period``).
MAX_STROBE_FLIPS = 100_000
#: NTP daemons that would undo a system-clock fault; setup refuses to run beside them.
NTP_DAEMONS = ("chronyd", "ntpd", "openntpd", "systemd-timesyncd")
#: Where libfaketime's preload library may be (Debian's multiarch path first).
LIBFAKETIME_GLOBS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
)
#: The library path used when none is found on this machine (Debian amd64).
DEFAULT_LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

_DIR_RE = re.compile(r"^/[A-Za-z0-9._/-]+$")
_KNOWN_KEYS = {"bump": {"kind", "offsets", "mechanism"},
               "strobe": {"kind", "nodes", "delta", "period", "duration", "mechanism"}}  # fmt: skip


# --- libfaketime for DB adapters ---------------------------------------------------------


def find_libfaketime() -> str:
    """The path of libfaketime's preload library on this machine (the first match of
    :data:`LIBFAKETIME_GLOBS`), or :data:`DEFAULT_LIBFAKETIME` if none is installed here.
    The local provider's nodes share this machine's files; remote nodes are checked by
    :meth:`ClockNemesis.setup`."""
    for pattern in LIBFAKETIME_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return DEFAULT_LIBFAKETIME


def faketime_path(tag: str = DEFAULT_TAG) -> str:
    """The libfaketime timestamp file the clock nemesis of ``tag`` writes on every node."""
    return scripts.faketime_file(scripts.clock_dir(tag))


def faketime_env(path: str | None = None, *, library: str | None = None) -> dict[str, str]:
    """The environment that makes a process read its wall clock through libfaketime, with
    the offset in timestamp file ``path`` (default :func:`faketime_path`) re-read at every
    clock read. Monotonic clocks stay real (JVMs hang otherwise) and no shared-memory files
    are left behind. ``library`` defaults to :func:`find_libfaketime`."""
    return {
        "LD_PRELOAD": library or find_libfaketime(),
        "FAKETIME_TIMESTAMP_FILE": path or faketime_path(),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_DISABLE_SHM": "1",
    }


def faketime_argv(
    argv: Sequence[str], path: str | None = None, *, library: str | None = None
) -> list[str]:
    """``argv`` run through ``env`` with :func:`faketime_env` set, for launch lines built
    as text (``shlex.join(faketime_argv([...]))``)."""
    env = faketime_env(path, library=library)
    return ["env", *(f"{k}={v}" for k, v in env.items()), *argv]


# --- faults as data ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockBounds:
    """The ranges :func:`plan_clock` draws from (seconds). Offsets and strobe deltas are
    log-uniform in ``[min_offset, max_offset]`` with a random sign, periods log-uniform in
    ``[min_period, max_period]``, durations uniform in ``[min_duration, max_duration]``."""

    min_offset: float = 0.25
    max_offset: float = 262.144  # 2^18 ms, as Jepsen's clock nemesis
    min_period: float = 0.05
    max_period: float = 1.0
    min_duration: float = 1.0
    max_duration: float = 10.0

    def __post_init__(self) -> None:
        if not 0.001 <= self.min_offset <= self.max_offset <= MAX_ABS_OFFSET:
            raise NemesisError(
                f"clock offsets need 0.001 <= min_offset <= max_offset <= {MAX_ABS_OFFSET:g}, "
                f"got {self.min_offset:g} and {self.max_offset:g}"
            )
        if not MIN_STROBE_PERIOD <= self.min_period <= self.max_period:
            raise NemesisError(
                f"strobe periods need {MIN_STROBE_PERIOD:g} <= min_period <= max_period, "
                f"got {self.min_period:g} and {self.max_period:g}"
            )
        if not 0 < self.min_duration <= self.max_duration:
            raise NemesisError(
                "strobe durations need 0 < min_duration <= max_duration, "
                f"got {self.min_duration:g} and {self.max_duration:g}"
            )
        if self.max_duration / self.min_period > MAX_STROBE_FLIPS:
            raise NemesisError(
                f"a strobe of {self.max_duration:g} s every {self.min_period:g} s would flip "
                f"more than {MAX_STROBE_FLIPS} times"
            )


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _signed_offset(rng: random.Random, bounds: ClockBounds) -> float:
    magnitude = round(_log_uniform(rng, bounds.min_offset, bounds.max_offset), 3)
    return magnitude if rng.random() < 0.5 else -magnitude


def _node_order(nodes: Sequence[str]) -> list[str]:
    order = list(nodes)
    if not order:
        raise NemesisError("clock faults need at least one node")
    if len(set(order)) != len(order):
        raise NemesisError(f"node names repeat: {order}")
    return order


def plan_clock(
    nodes: Sequence[str],
    rng: random.Random,
    *,
    kinds: Iterable[str] = KINDS,
    bounds: ClockBounds | None = None,
) -> dict[str, Any]:
    """A clock fault over a random non-empty subset of ``nodes``, of a kind drawn from
    ``kinds``, with values drawn from ``bounds`` (see :class:`ClockBounds`; offsets are
    rounded to milliseconds). Pure: the same nodes, seed and arguments give the same fault.
    Node lists and offsets keep the order of ``nodes``."""
    order = _node_order(nodes)
    choices = list(kinds)
    bad = [k for k in choices if k not in KINDS]
    if bad or not choices:
        raise NemesisError(
            f"unknown clock fault kind(s) {', '.join(map(repr, bad)) or '(none given)'}; "
            f"choose from {', '.join(KINDS)}"
        )
    b = bounds or ClockBounds()
    kind = rng.choice(choices)
    targets = set(rng.sample(order, rng.randint(1, len(order))))
    chosen = [n for n in order if n in targets]
    if kind == "bump":
        return {"kind": "bump", "offsets": {n: _signed_offset(rng, b) for n in chosen}}
    return {
        "kind": "strobe",
        "nodes": chosen,
        "delta": _signed_offset(rng, b),
        "period": round(_log_uniform(rng, b.min_period, b.max_period), 3),
        "duration": round(rng.uniform(b.min_duration, b.max_duration), 3),
    }


def _seconds(value: Any, what: str, *, positive: bool = False, limit: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NemesisError(f"{what} must be a number of seconds, not {value!r}")
    x = float(value)
    if not math.isfinite(x) or abs(x) > limit or (positive and x <= 0):
        bound = f" and at most {limit:g}" if math.isfinite(limit) else ""
        raise NemesisError(
            f"{what} must be {'positive' if positive else 'finite'}{bound}, not {value!r}"
        )
    return x


def _known(names: Iterable[Any], nodes: Sequence[str], what: str) -> set[str]:
    given = list(names)
    unknown = sorted({str(n) for n in given} - set(nodes))
    if unknown:
        raise NemesisError(
            f"{what} names unknown node(s) {', '.join(unknown)}; nodes are {', '.join(nodes)}"
        )
    return {str(n) for n in given}


def clock_fault_from_json(value: Any, nodes: Sequence[str]) -> dict[str, Any]:
    """``value`` (a fault as the module docstring shows, e.g. a recorded completion value)
    checked against ``nodes`` and put in canonical form: floats, nodes in the order of
    ``nodes``, ``mechanism`` dropped. :class:`NemesisError` saying what is wrong."""
    order = _node_order(nodes)
    if not isinstance(value, Mapping):
        raise NemesisError(f"a clock fault must be a mapping with a 'kind', not {value!r}")
    kind = value.get("kind")
    if kind not in KINDS:
        raise NemesisError(f"clock fault kind must be one of {', '.join(KINDS)}, not {kind!r}")
    extra = sorted(set(value) - _KNOWN_KEYS[kind])
    if extra:
        raise NemesisError(f"a {kind} clock fault has no field(s) {', '.join(extra)}")
    if kind == "bump":
        offsets = value.get("offsets")
        if not isinstance(offsets, Mapping):
            raise NemesisError(f"a bump needs 'offsets' (node -> seconds), not {offsets!r}")
        _known(offsets, order, "the bump")
        by_name = {str(n): v for n, v in offsets.items()}
        return {
            "kind": "bump",
            "offsets": {
                n: _seconds(by_name[n], f"the offset of {n}", limit=MAX_ABS_OFFSET)
                for n in order
                if n in by_name
            },
        }
    targets = value.get("nodes")
    if isinstance(targets, str | bytes) or not isinstance(targets, Iterable) or not targets:
        raise NemesisError(f"a strobe needs 'nodes', a non-empty list, not {targets!r}")
    chosen = _known(targets, order, "the strobe")
    delta = _seconds(value.get("delta"), "the strobe delta", limit=MAX_ABS_OFFSET)
    if delta == 0:
        raise NemesisError("the strobe delta must not be 0")
    period = _seconds(value.get("period"), "the strobe period", positive=True)
    if period < MIN_STROBE_PERIOD:
        raise NemesisError(f"the strobe period must be at least {MIN_STROBE_PERIOD:g} s")
    duration = _seconds(value.get("duration"), "the strobe duration", positive=True)
    if duration / period > MAX_STROBE_FLIPS:
        raise NemesisError(
            f"a strobe of {duration:g} s every {period:g} s would flip more than "
            f"{MAX_STROBE_FLIPS} times"
        )
    return {
        "kind": "strobe",
        "nodes": [n for n in order if n in chosen],
        "delta": delta,
        "period": period,
        "duration": duration,
    }


# --- choosing a mechanism ----------------------------------------------------------------

#: Providers whose nodes share the controller host's clock, and how to say so.
_SHARED_CLOCK = {
    "local": "the local nodes share the host's clock",
    "docker": "the containers share the host's clock",
}


@runtime_checkable
class _Named(Protocol):
    """Anything with a name (a DB adapter), for messages."""

    name: str


def clock_reads_of(db: object | None) -> str:
    """How ``db`` reads the time: its ``clock_reads`` attribute (one of
    :data:`CLOCK_READS`), ``"unknown"`` when it has none or there is no DB.
    :class:`NemesisError` for any other value."""
    reads = db.clock_reads if isinstance(db, ClockSource) else "unknown"
    if reads not in CLOCK_READS:
        raise NemesisError(
            f"{_db_name(db)}'s clock_reads is {reads!r}; it must be one of {', '.join(CLOCK_READS)}"
        )
    return str(reads)


def _db_name(db: object | None) -> str:
    name = db.name if isinstance(db, _Named) else None
    return str(name) if name else "the database"



def _unavailable(cluster: Cluster, capability: str) -> str | None:
    """Why the cluster lacks ``capability`` (its detail), or ``None`` if it has it."""
    cap = cluster.capability(capability)
    if cap is None:
        return f"the {cluster.provider} provider does not report {capability}"
    return None if cap.available else (cap.detail or f"{capability} is not available")


def clock_mechanism(
    cluster: Cluster,
    db: object | None,
    *,
    wanted: Literal["auto", "libfaketime", "system"] = "auto",
) -> str:
    """The mechanism that can shift ``db``'s clock on ``cluster``: ``"libfaketime"`` when
    the database reads the time through libc (``clock_reads = "libc"``) and the cluster
    has ``clock-libfaketime``, else ``"system"`` when it has ``clock-system``. ``wanted``
    other than ``auto`` allows only that one. :class:`NemesisError` saying why neither
    works and what would."""
    if wanted not in MECHANISMS:
        raise NemesisError(
            f"unknown clock mechanism {wanted!r}; choose one of {', '.join(MECHANISMS)}"
        )
    reads = clock_reads_of(db)
    name = _db_name(db)
    no_faketime = _unavailable(cluster, FAKETIME_CAPABILITY)
    if reads == "go-vdso":
        faketime_why = (
            f"{name} is a Go program and reads the time through the vDSO, which "
            "libfaketime cannot intercept"
        )
    elif reads == "unknown":
        faketime_why = (
            f"{name} does not say that it reads the time through libc (its DB adapter has "
            'no clock_reads = "libc"), so libfaketime may not reach it'
        )
    else:
        faketime_why = f"libfaketime is not available ({no_faketime})" if no_faketime else ""
    no_system = _unavailable(cluster, SYSTEM_CAPABILITY)
    system_why = ""
    if no_system:
        system_why = _SHARED_CLOCK.get(
            cluster.provider, f"the nodes' system clocks cannot be set ({no_system})"
        )
    if wanted in ("auto", "libfaketime") and not faketime_why:
        return "libfaketime"
    if wanted in ("auto", "system") and not system_why:
        return "system"
    reasons = [why for mech, why in (("libfaketime", faketime_why), ("system", system_why))
               if wanted in ("auto", mech)]  # fmt: skip
    remedies = []
    if wanted in ("auto", "system"):
        remedies.append(
            "VM nodes (--provider qemu, static or vagrant, where the system clock can be set)"
        )
    if wanted in ("auto", "libfaketime"):
        remedies.append(
            "a database that reads time through libc"
            if reads != "libc"
            else "nodes with libfaketime installed (Debian: apt-get install libfaketime)"
        )
    raise NemesisError(
        f"clock faults cannot shift {name}'s clock on the {cluster.provider} provider: "
        f"{', and '.join(reasons)}; use {' or '.join(remedies)}"
    )


# --- the nemesis -------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class _NodeState:
    remote: Remote
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _is_zero_offset(text: str) -> bool:
    try:
        return float(text.strip() or "0") == 0
    except ValueError:
        return False


class ClockNemesis:
    """Bumps and strobes nodes' clocks (see the module docstring).

    ``db`` is the DB adapter under test (its ``clock_reads`` decides what can shift its
    clock; ``None`` allows the system clock only). ``mechanism``: ``auto``,
    ``libfaketime`` or ``system`` (see :func:`clock_mechanism`). ``kinds`` and ``bounds``
    shape planned faults. ``tag`` names the fault directory on the nodes
    (``/run/<tag>-clock``; ``directory`` overrides it; a DB adapter must then give
    :attr:`faketime_path` to :func:`faketime_env`). ``library`` is libfaketime's path on
    the nodes (checked at setup). ``tolerance`` is the clock difference from the
    controller that ``verify_healed`` accepts in system mode; ``timeout`` bounds every
    command on a node.
    """

    fs = frozenset({"start-clock", "stop-clock"})

    def __init__(
        self,
        *,
        db: object | None = None,
        mechanism: Literal["auto", "libfaketime", "system"] = "auto",
        kinds: Iterable[str] = KINDS,
        bounds: ClockBounds | None = None,
        tag: str = DEFAULT_TAG,
        directory: str | None = None,
        library: str | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        timeout: float = DEFAULT_FAULT_TIMEOUT,
    ) -> None:
        if mechanism not in MECHANISMS:
            raise NemesisError(
                f"unknown clock mechanism {mechanism!r}; choose one of {', '.join(MECHANISMS)}"
            )
        self.kinds = tuple(kinds)
        if not self.kinds or any(k not in KINDS for k in self.kinds):
            raise NemesisError(f"clock fault kinds must be among {', '.join(KINDS)}")
        if not TAG_RE.match(tag):
            raise NemesisError(f"clock tag must match {TAG_RE.pattern}, not {tag!r}")
        directory = directory or scripts.clock_dir(tag)
        if not _DIR_RE.match(directory) or "/../" in f"{directory}/":
            raise NemesisError(f"clock directory must be a plain absolute path, not {directory!r}")
        if tolerance <= 0:
            raise NemesisError("clock tolerance must be positive")
        if timeout <= 0:
            raise NemesisError("clock command timeout must be positive")
        self.db = db
        self.wanted: Literal["auto", "libfaketime", "system"] = mechanism
        self.bounds = bounds or ClockBounds()
        self.tag = tag
        self.directory = directory
        self.library = library or find_libfaketime()
        self.tolerance = tolerance
        self.timeout = timeout
        self._mechanism = ""
        self._nodes: dict[str, _NodeState] = {}

    def __repr__(self) -> str:
        return (
            f"<ClockNemesis mechanism={self._mechanism or self.wanted} "
            f"kinds={','.join(self.kinds)} dir={self.directory}>"
        )

    @property
    def mechanism(self) -> str:
        """The mechanism chosen at setup (``libfaketime`` or ``system``; empty before)."""
        return self._mechanism

    @property
    def faketime_path(self) -> str:
        """The timestamp file this nemesis writes on each node (give it to
        :func:`faketime_env` when starting the database)."""
        return scripts.faketime_file(self.directory)

    # ---- lifecycle --------------------------------------------------------------------

    async def setup(self, ctx: TestContext, remotes: Mapping[str, Remote]) -> None:
        """Choose the mechanism (:func:`clock_mechanism`: refuses an impossible request
        before touching any node), keep a remote per node, check every node can take the
        fault (libfaketime installed; or root, ``date`` and no NTP daemon for the system
        clock), then heal leftovers. :class:`NemesisError` listing every node that
        cannot."""
        names = [n.name for n in ctx.nodes]
        missing = [n for n in names if n not in remotes]
        if missing:
            raise NemesisError(f"clock nemesis: no remote for node(s) {', '.join(missing)}")
        mechanism = clock_mechanism(ctx.cluster, self.db, wanted=self.wanted)
        self._nodes = {n: _NodeState(remote=remotes[n]) for n in names}
        self._mechanism = mechanism
        check_outcomes("clock nemesis setup", await self._on_nodes(self._probe))
        await self.heal_all(ctx)

    async def _probe(self, state: _NodeState) -> None:
        probe = scripts.probe_script(
            self.directory, self._mechanism, library=self.library, ntp_daemons=NTP_DAEMONS
        )
        out = await self._run(state, probe)
        problems = [line for line in out.splitlines() if line.strip()]
        if problems:
            raise NemesisError(
                f"on {state.remote.name}: cannot inject {self._mechanism} clock faults: "
                + "; ".join(problems)
            )

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Start or stop a clock fault (see the module docstring); return the completion."""
        f = op.get("f")
        if f == "start-clock":
            fault = self._fault_for(ctx, op.get("value"))
            await self.apply(fault)
            return completion(op, {**fault, "mechanism": self._mechanism})
        if f == "stop-clock":
            await self.heal_all(ctx)
            return completion(op, HEALED)
        raise unknown_f(self, op)

    def _fault_for(self, ctx: TestContext, value: Any) -> dict[str, Any]:
        names = list(self._nodes) or [n.name for n in ctx.nodes]
        if value is None:
            return plan_clock(names, ctx.rng, kinds=self.kinds, bounds=self.bounds)
        if isinstance(value, str):
            return plan_clock(names, ctx.rng, kinds=(value,), bounds=self.bounds)
        return clock_fault_from_json(value, names)

    async def apply(self, fault: Mapping[str, Any]) -> None:
        """Make ``fault`` (see :func:`clock_fault_from_json`) the clock fault in force on
        every node at once; nodes it does not name are healed. :class:`NemesisError`
        naming each node (and command) that failed."""
        self._require_setup()
        fault = clock_fault_from_json(fault, list(self._nodes))
        system = self._mechanism == "system"
        d = self.directory

        def script_for(name: str) -> Callable[[], str]:
            if fault["kind"] == "strobe" and name in fault["nodes"]:
                shape = {k: fault[k] for k in ("delta", "period", "duration")}
                if system:
                    return lambda: scripts.system_strobe_script(d, time.time(), **shape)
                return lambda: scripts.faketime_strobe_script(d, **shape)
            offset = fault["offsets"].get(name, 0.0) if fault["kind"] == "bump" else 0.0
            if system:
                return lambda: scripts.system_bump_script(d, time.time(), offset)
            return lambda: scripts.faketime_bump_script(d, offset)

        outcomes = await self._on_nodes(lambda s: self._run(s, script_for(s.remote.name)))
        check_outcomes("start-clock", outcomes)

    async def heal_all(self, ctx: TestContext) -> None:
        """Heal every node in parallel, remembering nothing of what was injected: stop any
        strobe (by pidfile), write ``+0`` to the libfaketime file where there is one, and
        in system mode set the clock to the controller's time. :class:`NemesisError`
        naming each node (and command) that failed; the others are healed regardless."""
        self._require_setup()
        d = self.directory
        if self._mechanism == "system":
            outcomes = await self._on_nodes(
                lambda s: self._run(s, lambda: scripts.system_heal_script(d, time.time()))
            )
        else:
            outcomes = await self._on_nodes(lambda s: self._run(s, scripts.heal_script(d)))
        check_outcomes("healing clocks", outcomes)

    async def verify_healed(self, ctx: TestContext) -> dict[str, list[str]]:
        """Per node, the clock faults still in force (empty: clean): a libfaketime offset
        file not at ``+0``, a strobe loop still running, an anchor left by an unfinished
        system-clock heal, and in system mode a clock more than ``tolerance`` seconds off
        the controller's. A node that could not be checked lists ``"cannot verify: <why>"``."""
        self._require_setup()
        outcomes = await self._on_nodes(self._residue)
        return residue_report(outcomes)

    async def _residue(self, state: _NodeState) -> list[str]:
        async with state.lock:
            before = time.time()
            result = await state.remote.run(
                scripts.verify_script(self.directory), timeout=self.timeout, sudo=True
            )
            after = time.time()
        found: list[str] = []
        for line in result.stdout.splitlines():
            what, _, rest = line.partition(" ")
            if what == "faketime" and not _is_zero_offset(rest):
                found.append(f"libfaketime offset file {self.faketime_path} holds {rest!r}")
            elif what == "strobe":
                found.append(f"clock strobe loop still running (pid {rest})")
            elif what == "anchor":
                found.append(
                    f"system clock anchor {self.directory}/anchor left: a heal did not finish"
                )
            elif what == "clock" and self._mechanism == "system":
                try:
                    skew = float(rest) - (before + after) / 2
                except ValueError:
                    found.append(f"cannot read the node's clock: {rest!r}")
                    continue
                if abs(skew) > self.tolerance + (after - before) / 2:
                    found.append(
                        f"system clock is {skew:+.3f} s off the controller's "
                        f"(tolerance {self.tolerance:g} s)"
                    )
        return found

    async def teardown(self, ctx: TestContext) -> None:
        """Heal every node (as :meth:`heal_all`); harmless if setup never ran."""
        if self._nodes:
            await self.heal_all(ctx)

    def heal_script(self, node_name: str) -> str:
        """A POSIX sh script that heals every clock fault of this nemesis on node
        ``node_name`` with no controller: stop a strobe by pidfile, ``+0`` into the
        libfaketime file, and (system mode) the clock back to the true time recorded in
        the node's anchor. Idempotent and state-free; harmless where nothing was injected.
        For a node-side guard."""
        if self._nodes and node_name not in self._nodes:
            raise NemesisError(
                f"clock nemesis: no node {node_name!r}; nodes are {', '.join(self._nodes)}"
            )
        return f"# clew clock heal for node {node_name}\n" + scripts.heal_script(self.directory)

    # ---- helpers ----------------------------------------------------------------------

    def _require_setup(self) -> None:
        if not self._nodes:
            raise NemesisError("the clock nemesis has not been set up (call setup first)")

    async def _on_nodes(self, fn: Callable[[_NodeState], Any]) -> dict[str, Any]:
        states = list(self._nodes.values())
        outcomes = await asyncio.gather(*(fn(s) for s in states), return_exceptions=True)
        return {s.remote.name: o for s, o in zip(states, outcomes, strict=True)}

    async def _run(self, state: _NodeState, script: str | Callable[[], str]) -> str:
        """Run a script on the node as root, one at a time per node. A callable is called
        once the node's lock is held, so a controller timestamp in it is fresh."""
        async with state.lock:
            text = script() if callable(script) else script
            result = await state.remote.run(text, timeout=self.timeout, sudo=True)
        return result.stdout


# --- the package -----------------------------------------------------------------------


def clock_package(
    *,
    db: object | None = None,
    interval: float = DEFAULT_INTERVAL,
    kinds: Iterable[str] = KINDS,
    mechanism: Literal["auto", "libfaketime", "system"] = "auto",
    bounds: ClockBounds | None = None,
    tag: str = DEFAULT_TAG,
    tolerance: float = DEFAULT_TOLERANCE,
    timeout: float = DEFAULT_FAULT_TIMEOUT,
) -> NemesisPackage:
    """A :class:`~nemeses.base.NemesisPackage` starting a planned clock fault every
    ``interval`` seconds (strobes last at most ``interval``), healed by a final
    ``stop-clock``; drawn as "clock". ``db`` is the DB adapter under test (see
    :class:`ClockNemesis`)."""
    b = bounds or ClockBounds()
    if interval > 0 and b.max_duration > interval:
        b = replace(b, max_duration=interval, min_duration=min(b.min_duration, interval))
    nemesis = ClockNemesis(
        db=db,
        mechanism=mechanism,
        kinds=kinds,
        bounds=b,
        tag=tag,
        tolerance=tolerance,
        timeout=timeout,
    )
    return flip_package("clock", nemesis, interval=interval, color="#A6D3E8")
