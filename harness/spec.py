"""The test spec: everything that defines a run, from a TOML file and command-line flags.

Layers, lowest first: the defaults below, a built-in suite's own (:data:`SUITE_DEFAULTS`),
a TOML file (``clew test --spec test.toml``), then flags. The resolved spec is written
into the run directory (``spec.json``), so every run can be reproduced and re-analysed.

Example ``test.toml``::

    suite = "etcd"
    workload = "register"
    nodes = 5
    time_limit = 60
    concurrency = 10
    rate = 200          # ops/s over all workers; 0 = as fast as they go
    seed = 42
    faults = ["partition", "pause", "kill"]   # also clock, packet, disk-full; or []
    scheduler = "random"   # who picks each fault during the run (nemeses.scheduler)
    interval = 10       # seconds each fault holds, and between faults
    overlap = 1         # faults the random scheduler may hold at once (1: one at a time)
    fault_ops = 20      # fault operations per run, for every scheduler (default: no cap)
    fault_lease = 10    # seconds a fault outlives a dead controller (default: the provider's)
    fault_timeout = 15  # seconds a fault command may take on a node (default: the provider's)

    agent_watch = false # every node's agent watches the DB's log, striking nothing unasked

    [[agent]]           # a fault the node strikes itself (docs/agents.md)
    node = "n1"
    f = "start-kill"
    on = { log = "leader-changed" }   # or at = 5.0 (seconds on the run's clock)
    hold = 2

    [options]           # passed to the suite (DB and workload options)
    pre_vote = true
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusters import PROVIDERS
from harness.errors import ConfigError, InputError
from harness.record import read_record_text
from nemeses import kinds as fault_kinds
from nemeses.scheduler import scheduler_names

__all__ = ["DEFAULT_STORE", "FAULT_KINDS", "MAX_FAULT_STEPS", "MIN_INTERVAL", "TestSpec",
           "load_spec", "stored_spec"]

#: Where runs are stored unless ``--store`` says otherwise.
DEFAULT_STORE = "store"
#: The built-in fault kinds ``--faults`` accepts (the registry, :mod:`nemeses.kinds`,
#: may hold more: a suite's own).
FAULT_KINDS = fault_kinds.names()
#: Built-in suites' own defaults, a layer between :class:`TestSpec`'s and the TOML file.
#: PostgreSQL runs as one server (see ``harness/suites/postgres.py``): one node, no faults
#: (a partition would cut nobody off; ask with ``--faults kill`` etc.), and ten workers
#: so that transactions contend.
SUITE_DEFAULTS: dict[str, dict[str, Any]] = {
    "postgres": {"nodes": 1, "faults": (), "concurrency": 10},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TestSpec:
    """A resolved test spec. Build with :func:`load_spec`; it validates every field."""

    suite: str = "etcd"
    workload: str | None = None
    name: str | None = None
    provider: str = "local"
    nodes: int = 5
    cluster_state_dir: str | None = None
    cluster_options: dict[str, Any] = field(default_factory=dict)
    time_limit: float = 60.0
    concurrency: int | None = None
    rate: float = 0.0
    seed: int | None = None
    store: str = DEFAULT_STORE
    faults: tuple[str, ...] = ("partition",)
    scheduler: str = "random"
    interval: float = 10.0
    overlap: int = 1
    fault_ops: int | None = None
    #: Seconds a fault outlives a controller that stopped renewing it; None: the
    #: provider's default (10 s; 60 s on emulated VMs).
    fault_lease: float | None = None
    #: Seconds one fault command on a node may take; None: the provider's default.
    fault_timeout: float | None = None
    op_timeout: float = 5.0
    leave_db_running: bool = False
    recovery_time: float = 2.0
    options: dict[str, Any] = field(default_factory=dict)
    #: Agent steps: faults nodes strike themselves (:mod:`nemeses.agent`).
    agent: tuple[dict[str, Any], ...] = ()
    #: Node agents even without steps: each watches the database's log and process and
    #: journals what it sees (a scheduler reads elections from it), striking nothing.
    agent_watch: bool = False
    agent_journal_bytes: int = 4 * 1024 * 1024
    agent_journal_rate: float = 200.0

    @property
    def test_name(self) -> str:
        """The name runs are stored under: ``name``, else ``<suite>-<workload>``."""
        return self.name or f"{Path(self.suite).stem}-{self.workload or 'default'}"

    @property
    def has_agents(self) -> bool:
        """Whether the run's nodes run agents: steps were given, or ``agent_watch``."""
        return bool(self.agent) or self.agent_watch

    @property
    def resolved_concurrency(self) -> int:
        """Client workers: the given number, else twice the node count."""
        return self.concurrency or 2 * self.nodes

    def with_seed(self) -> TestSpec:
        """This spec with a seed (a fresh random one if none was given)."""
        if self.seed is not None:
            return self
        return dataclasses.replace(self, seed=secrets.randbelow(2**31))

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON data."""
        d = dataclasses.asdict(self)
        d["faults"] = list(self.faults)
        d["agent"] = list(self.agent)
        d["test_name"] = self.test_name
        d["concurrency"] = self.resolved_concurrency
        return d


_FIELDS = {f.name: f for f in dataclasses.fields(TestSpec)}
#: What a test's ``name`` may be: it names the store's directory of its runs.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")
#: The most nodes a spec may ask for: far more than any provider brings up (the local
#: one's subnet holds 253), and few enough to plan for (a spec.json asking for 10^30 had
#: clew replay make a list of that many stand-in nodes, forever).
MAX_NODES = 10_000
#: The most client workers a run may have (twice the most nodes, the default for
#: those): each is a task with a connection of its own
#: (10^29 was taken, and the run went on to bring its cluster up for them).
MAX_CONCURRENCY = 2 * MAX_NODES
#: The largest spec file read (a spec is a few hundred bytes).
MAX_SPEC_BYTES = 1024**2
#: The shortest ``interval`` between fault decisions, in seconds.
MIN_INTERVAL = 0.01
#: The most fault steps a run's ``time_limit / interval`` may plan (a day at 1 s is 86,400).
MAX_FAULT_STEPS = 1_000_000


def _check(spec: TestSpec, source: str) -> TestSpec:
    def bad(name: str, why: str) -> ConfigError:
        return ConfigError(f"{source}: `{name}` {why}")

    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if isinstance(value, float) and not math.isfinite(value):  # nan passes every bound
            raise bad(f.name, f"must be a finite number, got {value}")
    name = spec.name
    if name is not None and (not _PLAIN_NAME.fullmatch(name) or name in (".", "..")):
        raise bad("name", f"must be a plain name (letters, digits, '.', '-', '_'; no '/'), "
                          f"since runs are stored under it, got {name!r}")  # fmt: skip
    if not spec.store.strip():  # Path("") is the working directory
        raise bad("store", f"must name a directory (the runs are stored in it), got "
                           f"{spec.store!r}")  # fmt: skip
    if spec.workload is not None and not spec.workload.strip():  # (it was the default)
        raise bad("workload", f"must name one of the suite's workloads, got {spec.workload!r}")
    if Path(spec.store).exists() and not Path(spec.store).is_dir():
        raise bad("store", f"must name a directory (the runs are stored in it), and "
                           f"{spec.store!r} is a file")  # fmt: skip
    if spec.nodes < 1:
        raise bad("nodes", f"must be at least 1, got {spec.nodes}")
    if spec.nodes > MAX_NODES:
        raise bad("nodes", f"must be at most {MAX_NODES:,} (a cluster's nodes), got "
                           f"{spec.nodes}")  # fmt: skip
    if spec.time_limit <= 0:
        raise bad("time_limit", f"must be positive (seconds), got {spec.time_limit}")
    if spec.concurrency is not None and spec.concurrency < 1:
        raise bad("concurrency", f"must be at least 1, got {spec.concurrency}")
    if spec.concurrency is not None and spec.concurrency > MAX_CONCURRENCY:
        raise bad("concurrency", f"must be at most {MAX_CONCURRENCY:,} (client workers), got "
                                 f"{spec.concurrency}")  # fmt: skip
    if spec.rate < 0:
        raise bad("rate", f"must be 0 (unlimited) or positive ops/s, got {spec.rate}")
    if spec.interval < MIN_INTERVAL:
        raise bad("interval", f"must be at least {MIN_INTERVAL} s (a fault op takes longer "
                              f"than that), got {spec.interval}")  # fmt: skip
    if spec.time_limit / spec.interval > MAX_FAULT_STEPS:
        raise bad("interval", f"plans {spec.time_limit / spec.interval:,.0f} fault steps over "
                              f"the time limit of {spec.time_limit} s; at most "
                              f"{MAX_FAULT_STEPS:,} (raise --interval)")  # fmt: skip
    if spec.overlap < 1:
        raise bad("overlap", f"must be at least 1 (faults held at once), got {spec.overlap}")
    if spec.fault_ops is not None and spec.fault_ops < 0:
        raise bad("fault_ops", f"must be 0 or more (fault ops per run), got {spec.fault_ops}")
    if spec.fault_lease is not None and spec.fault_lease <= 0:
        raise bad("fault_lease", f"must be positive (seconds), got {spec.fault_lease}")
    if spec.fault_timeout is not None and spec.fault_timeout <= 0:
        raise bad("fault_timeout", f"must be positive (seconds), got {spec.fault_timeout}")
    if spec.op_timeout <= 0:
        raise bad("op_timeout", f"must be positive (seconds), got {spec.op_timeout}")
    if spec.agent_journal_bytes < 65536:
        raise bad("agent_journal_bytes", f"must be at least 65536, got {spec.agent_journal_bytes}")
    if spec.agent_watch and not spec.faults and not spec.agent:
        raise bad("agent_watch", "needs a fault kind (`faults`, --faults): node agents run "
                  "under the fault guard, which a run without faults does not start (the "
                  "agents still strike nothing)")  # fmt: skip
    if spec.agent_journal_rate <= 0:
        raise bad("agent_journal_rate", f"must be positive, got {spec.agent_journal_rate}")
    if spec.recovery_time < 0:
        raise bad("recovery_time", f"must not be negative, got {spec.recovery_time}")
    if spec.provider not in PROVIDERS:
        raise bad("provider", f"is unknown: {spec.provider!r}; known: {', '.join(PROVIDERS)}")
    if spec.scheduler not in scheduler_names():
        known = ", ".join(scheduler_names())
        raise bad("scheduler", f"is unknown: {spec.scheduler!r}; known: {known}")
    unknown = [f for f in spec.faults if f not in fault_kinds.names()]
    if unknown:
        _register_suite_kinds(spec.suite)  # a suite may bring its own kinds
        unknown = [f for f in spec.faults if f not in fault_kinds.names()]
    if unknown:
        known = ", ".join(fault_kinds.names())
        raise bad("faults", f"has unknown kinds {unknown}; known: {known}, none")
    return spec


def _register_suite_kinds(suite: str) -> None:
    """Load suite ``suite`` so that the fault kinds it contributes are registered; a suite
    that does not load is left for the run to report."""
    from harness.suites import load_suite

    with contextlib.suppress(ConfigError):
        load_suite(suite)


def _coerce(name: str, value: Any, source: str) -> Any:
    f = _FIELDS.get(name)
    if f is None:
        raise ConfigError(
            f"{source}: unknown field `{name}`; known fields: {', '.join(sorted(_FIELDS))}"
        )
    kind = str(f.type)
    if name == "agent":
        return _agent_steps(value, source)
    if name == "faults":
        return _fault_kinds(value, source)
    try:
        if kind.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError  # 2.7 nodes is a mistake, not 2
            return int(value)
        if kind.startswith("float"):
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if kind.startswith("bool"):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind.startswith("dict"):
            if not isinstance(value, dict):
                raise TypeError
            return dict(value)
        if kind.startswith("str") and value is not None and not isinstance(value, str):
            raise TypeError
        return value
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf), from 1e400
        raise ConfigError(
            f"{source}: `{name}` must be {kind.replace(' | None', '')}, got {value!r}"
        ) from None


def _fault_kinds(value: Any, source: str) -> tuple[str, ...]:
    """``faults`` as a tuple of kind names (``none`` alone, or nothing, is no faults)."""
    given = value
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{source}: `faults` must be a list of kinds, got {given!r}")
    items = tuple(str(v) for v in value)
    if isinstance(given, str) and given.strip() and not items:
        raise ConfigError(f"{source}: `faults` names no kind: {given!r} (`none` for no "
                          f"faults)")  # fmt: skip
    if "none" in items and len(items) > 1:
        raise ConfigError(f"{source}: `faults` mixes `none` with kinds: {given!r} (`none` "
                          f"alone means no faults)")  # fmt: skip
    return () if items in ((), ("none",)) else items


def _agent_steps(value: Any, source: str) -> tuple[dict[str, Any], ...]:
    """Agent steps from TOML tables or a flag's JSON (a list, or one step's object)."""
    import json

    from nemeses.agent import validate_agent_steps

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise ConfigError(f"{source}: `agent` is not JSON: {e}") from None
    value = [value] if isinstance(value, dict) else value
    return tuple(validate_agent_steps(value, source))


def load_spec(path: str | None = None, **overrides: Any) -> TestSpec:
    """The spec from TOML file ``path`` (if any) with ``overrides`` (flags; ``None``
    values are ignored) on top, validated. Raises :class:`ConfigError` naming the file and
    the field for anything wrong."""
    values: dict[str, Any] = {}
    source = "flags"
    if path:
        source = path
        try:
            # (Not a FIFO or a device: /dev/zero, or a FIFO with no writer, never ended.)
            raw = tomllib.loads(
                read_record_text(Path(path), limit=MAX_SPEC_BYTES, kind="spec file")
            )
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such spec file") from None
        except InputError as e:  # not a regular file, too large, not UTF-8
            raise ConfigError(str(e)) from None
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the spec file: {e.strerror or e}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        values.update({k.replace("-", "_"): _coerce(k.replace("-", "_"), v, path)
                       for k, v in raw.items()})  # fmt: skip
    for k, v in overrides.items():
        if v is None:
            continue
        if k in ("options", "cluster_options"):
            values[k] = {**values.get(k, {}), **v}
        else:
            values[k] = _coerce(k, v, "flags")
    return _resolved(values, source)


def stored_spec(fields: Mapping[str, Any], source: str) -> TestSpec:
    """The spec of a stored run from ``fields`` (its ``spec.json``'s, as
    :meth:`harness.record.RunSpec.spec_fields` gives them; ``None`` values are ignored),
    validated as :func:`load_spec` validates a file: :class:`ConfigError` naming ``source``
    (the ``spec.json`` path) and the field for anything wrong."""
    return _resolved({k: _coerce(k, v, source) for k, v in fields.items() if v is not None},
                     source)  # fmt: skip


def _resolved(values: dict[str, Any], source: str) -> TestSpec:
    """``values`` (coerced fields) over the suite's defaults, validated."""
    for k, v in SUITE_DEFAULTS.get(values.get("suite", _FIELDS["suite"].default), {}).items():
        values.setdefault(k, v)
    return _check(TestSpec(**values), source)
