"""What every cluster provider shares: nodes, clusters, capabilities, the Provider protocol.

A *provider* brings nodes into being (network namespaces on this machine, VMs, containers,
or a list of hosts that already exist) and describes each as a :class:`Node`: how to reach
it over SSH. The rest of clew only ever sees a :class:`Cluster`, saved as ``cluster.json``
in the cluster's state directory, so a later ``clew cluster status``, ``clew test`` or
``clew cluster down`` finds it again.

Providers also say what faults and features they can support (:class:`Capability`), so
that an impossible request is refused before a run, with the reason.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness.errors import ClusterError, ConfigError, InputError

__all__ = [
    "CLUSTER_FILE",
    "Capability",
    "Cluster",
    "ClusterSpec",
    "ClusterStateError",
    "ClusterStatus",
    "Node",
    "Provider",
    "check_cluster_name",
    "check_options",
    "check_state_dir",
    "default_state_dir",
    "down_command",
    "unavailable",
]

#: Name of the file, in a cluster's state directory, that describes the cluster.
CLUSTER_FILE = "cluster.json"

#: The longest cluster name (it becomes a directory name, container names and key comments).
MAX_NAME = 64
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9._-]+")
CLUSTER_NAME_RULE = (
    f"a cluster name is 1 to {MAX_NAME} letters, digits, '-', '_' or '.' (not '.' or '..', "
    "no '/'); it names a directory under the clusters' state directory"
)


def check_cluster_name(name: Any) -> str:
    """``name`` if it is a plain cluster name (see :data:`CLUSTER_NAME_RULE`), which can
    become one path component and nothing else; :class:`ConfigError` otherwise."""
    if (
        not isinstance(name, str)
        or not _CLUSTER_NAME.fullmatch(name)
        or name in (".", "..")
        or len(name) > MAX_NAME
    ):
        raise ConfigError(f"cluster name {name!r}: {CLUSTER_NAME_RULE}")
    return name


def default_state_dir(name: str = "default") -> Path:
    """Where cluster ``name`` keeps its state: ``$CLEW_STATE_DIR/clusters/<name>``, with
    ``CLEW_STATE_DIR`` defaulting to ``$XDG_STATE_HOME/clew`` (``~/.local/state/clew``).
    :class:`ConfigError` if ``name`` is not a plain name (:func:`check_cluster_name`)."""
    check_cluster_name(name)
    base = os.environ.get("CLEW_STATE_DIR")
    if not base:
        xdg = os.environ.get("XDG_STATE_HOME") or os.path.join(
            os.path.expanduser("~"), ".local", "state"
        )
        base = os.path.join(xdg, "clew")
    return Path(base) / "clusters" / name


def down_command(state: str | Path) -> str:
    """The ``clew cluster down`` command that takes down the cluster in ``state``, to quote
    in a message: plain for the default cluster, with ``--name`` for another one in the
    clusters' state directory, else with ``--state-dir`` (a bare ``clew cluster down``
    would take down the default cluster, which may be another one)."""
    import shlex

    path = Path(state)
    try:
        if path.resolve() == default_state_dir().resolve():
            return "clew cluster down"
        if path.resolve().parent == default_state_dir().resolve().parent:
            return f"clew cluster down --name {check_cluster_name(path.name)}"
    except (OSError, ConfigError):
        pass
    return f"clew cluster down --state-dir {shlex.quote(str(path))}"


def check_state_dir(path: str | Path) -> Path:
    """``path`` as a :class:`Path` if it is, or could be made, a directory;
    :class:`ConfigError` naming it if it (or the nearest part of it that exists) is a file."""
    state = Path(path)
    for p in (state, *state.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                what = "is a file" if p == state else f"cannot be made: {p} is a file"
                raise ConfigError(
                    f"{state}: {what}; a cluster's state directory (--cluster-state-dir, "
                    "--state-dir) names a directory"
                )
            break
    return state


class ClusterStateError(InputError):
    """A cluster's saved state (``cluster.json``) is damaged: the message names the file
    and the field, and says how to recover. The CLI exits 254 on it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        d = Path(path).parent
        super().__init__(
            f"{path}: the saved cluster is damaged ({problem}), so clew cannot tell what "
            f"it is or take it down. To recover: if {d} holds {_LEDGER} (a local, qemu or "
            f"bridged vagrant cluster keeps there what it made), delete {path} and run `clew "
            f"cluster down --state-dir {d} --provider PROVIDER`; otherwise take down by hand "
            f"whatever of the cluster is still up (containers, VMs, network namespaces), "
            f"then remove the state directory {d}"
        )


#: The ledger file that providers which build networks keep (see ``clusters._ledger``).
_LEDGER = "local.json"


def _field(
    data: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    where: str,
    *,
    required: bool = True,
    default: Any = None,
) -> Any:
    """``data[key]`` if it is of ``kind``; ``ValueError`` naming ``where.key`` otherwise."""
    if key not in data:
        if required:
            raise ValueError(f"{where}{key} is missing")
        return default
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise ValueError(f"{where}{key} is {value!r}, not {names}")
    return value


def check_options(provider: str, options: dict[str, Any], known: frozenset[str] | set[str]) -> None:
    """Raise :class:`ConfigError` naming any option the ``provider`` does not know."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown cluster option(s) for the {provider} provider: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )


def option_flag(options: dict[str, Any], key: str, default: bool) -> bool:
    """Option ``key`` as a boolean (``true``/``false``, ``yes``/``no``, ``on``/``off``,
    ``1``/``0``); :class:`ConfigError` for anything else, which must not silently mean
    false (``internal=maybe`` made a container network that is not internal)."""
    value = options.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        if value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if value.strip().lower() in ("0", "false", "no", "off"):
            return False
    raise ConfigError(f"cluster option {key}={value!r}: use true or false")


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """How to reach one node over SSH.

    ``name`` is the node's name in the cluster (``n1``); ``host`` is what to connect to
    (an address or a resolvable name); ``address`` is where the other nodes reach it, when
    that differs from ``host`` (a VM behind a forwarded port); see :attr:`peer_address`.
    Authentication uses ``key_file``, else ``password``, else the SSH agent. Host keys
    are checked against ``known_hosts`` (a path; ``None`` means the user's default file)
    unless ``check_host_key`` is false, which only an explicit flag may set.
    """

    name: str
    host: str
    port: int = 22
    user: str = "root"
    key_file: str | None = None
    password: str | None = field(default=None, repr=False)
    known_hosts: str | None = None
    check_host_key: bool = True
    address: str | None = None

    @property
    def peer_address(self) -> str:
        """The address other nodes (and databases' peer lists) use for this node."""
        return self.address or self.host

    def to_json(self) -> dict[str, Any]:
        """The node as JSON data (a password, if any, is never written)."""
        d = asdict(self)
        d.pop("password")
        return d

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> Node:
        """The node described by ``data`` (as written by :meth:`to_json`); ``ValueError``
        naming the field (after ``where``, e.g. ``nodes[0].``) if it is malformed."""
        if not isinstance(data, dict):
            raise ValueError(f"{where.rstrip('.')} is {data!r}, not a JSON object")
        opt = (str, type(None))
        kinds: dict[str, Any] = {"name": str, "host": str, "port": int, "user": str,
                                 "key_file": opt, "known_hosts": opt, "check_host_key": bool,
                                 "address": opt}  # fmt: skip (the password is never stored)
        defaults = {f.name: f.default for f in fields(cls)}
        values = {k: _field(data, k, kind, where, required=defaults[k] is MISSING,
                            default=defaults[k]) for k, kind in kinds.items()}  # fmt: skip
        if not 0 < values["port"] < 65536:
            raise ValueError(f"{where}port {values['port']} is out of range (1-65535)")
        return cls(**values)


@dataclass(frozen=True, slots=True, kw_only=True)
class Capability:
    """Whether something tests may need is available, and why (not)."""

    name: str
    available: bool
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSpec:
    """What to bring up. ``options`` holds provider-specific settings (validated by it)."""

    provider: str = "local"
    nodes: int = 5
    name: str = "default"
    state_dir: str | None = None
    user: str = "root"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_cluster_name(self.name)

    def resolved_state_dir(self) -> Path:
        """The state directory: the given one, or the default for this cluster name;
        :class:`ConfigError` if it is a file (:func:`check_state_dir`)."""
        return check_state_dir(self.state_dir if self.state_dir else default_state_dir(self.name))


@dataclass(frozen=True, slots=True, kw_only=True)
class Cluster:
    """A cluster that is up: its nodes and where its state lives.

    ``extra`` is provider-specific data needed to tear it down or inspect it (namespace
    names, PIDs, container ids); it must be JSON-serialisable.
    """

    provider: str
    name: str
    nodes: tuple[Node, ...]
    state_dir: str
    capabilities: tuple[Capability, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def node(self, name: str) -> Node:
        """The node called ``name``; :class:`ClusterError` if there is none."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise ClusterError(
            f"cluster {self.name!r} has no node {name!r}; it has "
            f"{', '.join(n.name for n in self.nodes)}"
        )

    def capability(self, name: str) -> Capability | None:
        """The capability called ``name``, if the provider reported it."""
        return next((c for c in self.capabilities if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """The cluster as JSON data."""
        return {
            "provider": self.provider,
            "name": self.name,
            "state_dir": self.state_dir,
            "nodes": [n.to_json() for n in self.nodes],
            "capabilities": [asdict(c) for c in self.capabilities],
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: Any, source: str | Path = CLUSTER_FILE) -> Cluster:
        """The cluster described by ``data`` (as written by :meth:`to_json`);
        :class:`ClusterStateError` naming ``source`` and the field if it is malformed."""
        try:
            if not isinstance(data, dict):
                raise ValueError(f"it holds {type(data).__name__} {data!r:.60}, not a JSON object")
            provider = _field(data, "provider", str, "")
            if not provider:
                raise ValueError("provider is empty")
            name = _field(data, "name", str, "")
            state_dir = _field(data, "state_dir", str, "")
            nodes = _field(data, "nodes", list, "")
            caps: list[Capability] = []
            for i, c in enumerate(_field(data, "capabilities", list, "", required=False,
                                         default=[])):  # fmt: skip
                if not isinstance(c, dict):
                    raise ValueError(f"capabilities[{i}] is {c!r}, not a JSON object")
                where = f"capabilities[{i}]."
                caps.append(Capability(
                    name=_field(c, "name", str, where),
                    available=_field(c, "available", bool, where),
                    detail=_field(c, "detail", str, where, required=False, default=""),
                ))  # fmt: skip
            return cls(
                provider=provider,
                name=name,
                state_dir=state_dir,
                nodes=tuple(Node.from_json(n, f"nodes[{i}].") for i, n in enumerate(nodes)),
                capabilities=tuple(caps),
                extra=dict(_field(data, "extra", dict, "", required=False, default={})),
            )
        except ValueError as e:
            raise ClusterStateError(source, str(e)) from None

    def save(self) -> Path:
        """Write ``cluster.json`` into the state directory (atomically); return its path."""
        d = Path(self.state_dir)
        d.mkdir(parents=True, exist_ok=True)
        path = d / CLUSTER_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, state_dir: str | Path) -> Cluster:
        """The cluster saved in ``state_dir``; :class:`ClusterError` saying what to do if
        there is none or the file is unreadable, :class:`ClusterStateError` (bad input)
        naming the file and field, and how to recover, if it is damaged."""
        path = check_state_dir(state_dir) / CLUSTER_FILE
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise ClusterError(
                f"no cluster is up in {state_dir} (no {CLUSTER_FILE}); "
                "start one with `clew cluster up`"
            ) from None
        except IsADirectoryError:
            raise ClusterStateError(path, "it is a directory, not a file") from None
        except UnicodeDecodeError as e:
            raise ClusterStateError(path, f"it is not UTF-8 text (byte {e.start})") from None
        except json.JSONDecodeError as e:
            raise ClusterStateError(
                path, f"it is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
            ) from None
        except OSError as e:
            raise ClusterError(f"cannot read {path}: {e.strerror or e}") from None
        return cls.from_json(data, path)


def unavailable(cluster: Cluster, names: tuple[str, ...] | list[str]) -> list[Capability]:
    """The capabilities among ``names`` that ``cluster``'s provider reports as *not*
    available (each with its detail). A capability it does not report is not listed: the
    fault's own setup checks it on the nodes."""
    caps = (cluster.capability(n) for n in names)
    return [c for c in caps if c is not None and not c.available]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterStatus:
    """What ``clew cluster status`` reports: per node, whether it is up and why not."""

    cluster: Cluster | None
    nodes: dict[str, str] = field(default_factory=dict)  # node name -> "up" or a reason
    problems: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return (
            self.cluster is not None
            and not self.problems
            and all(v == "up" for v in self.nodes.values())
        )


@runtime_checkable
class Provider(Protocol):
    """Brings clusters up and down. Implementations live in ``clusters.<name>``.

    ``up`` is idempotent (a cluster already up with the same spec is returned as is) and
    cleans up after itself when it fails half-way; ``down`` removes every trace of the
    cluster (it must work after a crashed ``up`` too) and is harmless when nothing is up.
    """

    name: str
    #: Whether ``up`` makes the nodes itself, so that a cluster gone unhealthy can be
    #: brought up again; False for hosts that exist without clew (static ones).
    makes_nodes: bool

    def check_spec(self, spec: ClusterSpec) -> None:
        """Refuse (:class:`~harness.errors.ConfigError` naming the option) what ``up``
        would refuse of ``spec``'s options and node count, without creating or contacting
        anything, so that a run can refuse them before it begins."""
        ...

    def up(self, spec: ClusterSpec) -> Cluster:
        """Bring the cluster up and save it; return it."""
        ...

    def down(self, state_dir: Path) -> None:
        """Tear down the cluster whose state is in ``state_dir``, leaving nothing behind."""
        ...

    def status(self, state_dir: Path) -> ClusterStatus:
        """Whether the cluster in ``state_dir`` is up, node by node."""
        ...

    def capabilities(self) -> tuple[Capability, ...]:
        """What this provider can do on this machine (faults, clocks, packet faults)."""
        ...
