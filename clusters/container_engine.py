"""Which container engine (docker or podman) is usable here, and how to run it on this host.

A binary on ``PATH`` is not an engine: a docker *client* with no daemon behind it is the
usual case on a machine without systemd. :func:`find_engine` therefore asks each
candidate's ``info`` and takes the first one that answers; :func:`engine_checks` tells
``clew doctor`` which engines are usable and why the others are not.

:func:`run_settings` is what clew passes to ``run``/``create`` so containers start on hosts
like a Debian 12 machine with hybrid cgroups and no ``CAP_SYS_RESOURCE``:

- podman: ``--runtime runc`` when runc is installed (crun, podman's default where it is
  installed, fails on hybrid cgroups), and ``--ulimit nofile=N:N --ulimit nproc=M:M``
  within this machine's hard limits (podman's defaults, nofile 1048576 and nproc 4194304,
  are above them, and raising a hard limit needs ``CAP_SYS_RESOURCE``: the start fails
  with "error setting rlimit ... operation not permitted"). M is also at most 32768, the
  nproc limit podman gives conmon, which starts the container.
- docker: nothing; dockerd applies its own limits.

:func:`clean_stderr` drops the harmless lines engines print on every command (podman's
"failed to connect to syslog" where there is no syslog, docker's IPv4 forwarding warning
for a network that needs no forwarding) so they do not fill clew's error messages.
"""

from __future__ import annotations

import os
import re
import resource
from dataclasses import dataclass
from pathlib import Path

from clusters.base import Capability
from clusters.doctor import ToolResult, find_binary, run_tool
from harness.errors import ClusterError

__all__ = [
    "ENGINES",
    "Engine",
    "clean_stderr",
    "engine_checks",
    "engine_kind",
    "find_engine",
    "probe_engine",
    "run_settings",
]

#: The engines clew knows, in the order they are tried.
ENGINES = ("docker", "podman")
#: Seconds ``<engine> info`` may take (podman's first call sets up its storage).
INFO_TIMEOUT = 30.0
#: The highest nproc limit podman 4 gives conmon (and so the container's first process).
PODMAN_NPROC_CAP = 32768

_NOISE = (
    re.compile(r"^failed to connect to syslog", re.I),
    re.compile(r"^WARNING: IPv4 forwarding is disabled", re.I),
)
_INSTALL_HINT = (
    "install Podman (`apt-get install podman runc`) or Docker (`apt-get install docker.io`, "
    "then start `dockerd`), or point CLEW_DOCKER or the engine option (--engine, "
    "--option engine=PATH) at one"
)


@dataclass(frozen=True, slots=True)
class Engine:
    """A usable container engine: its executable and which kind it is."""

    path: str
    kind: str  # "docker" or "podman"

    @property
    def name(self) -> str:
        """The executable's name, for messages."""
        return Path(self.path).name


def clean_stderr(text: str) -> str:
    """``text`` without the engines' harmless warning lines (see the module docstring)."""
    lines = [ln for ln in text.splitlines() if not any(p.search(ln.strip()) for p in _NOISE)]
    return "\n".join(lines)


def tail(res: ToolResult, lines: int = 3) -> str:
    """The last ``lines`` lines of a command's stderr (else stdout) without the engines'
    harmless warnings, joined with `` | ``."""
    text = clean_stderr(res.stderr).strip() or res.stdout.strip()
    return " | ".join(text.splitlines()[-lines:]) or "(no output)"


def engine_kind(path: str) -> str:
    """``podman`` if ``path`` is podman (also behind a ``docker`` symlink), else ``docker``."""
    return "podman" if "podman" in Path(path).resolve().name else "docker"


def probe_engine(name: str) -> tuple[Engine | None, str]:
    """Whether engine ``name`` (a name or a path) is usable: ``(Engine, detail)`` if its
    ``info`` answers, else ``(None, why not)`` with a hint a person can act on."""
    path = find_binary(name)
    if path is None:
        return None, f"{name}: not installed"
    res = run_tool([path, "info"], timeout=INFO_TIMEOUT)
    if res.ok:
        return Engine(path=path, kind=engine_kind(path)), f"{path}: `info` answers"
    why = "timed out" if res.timed_out else f"failed: {tail(res, 2)}"
    hint = ""
    if engine_kind(path) == "docker":
        hint = (
            "; no daemon answers: start it (`systemctl start docker`, or `dockerd &` without "
            "systemd) or set DOCKER_HOST"
        )
    return None, f"{path}: `info` {why}{hint}"


def find_engine(wanted: str | None = None) -> Engine:
    """The engine to use: ``wanted`` (a name or path), else ``$CLEW_DOCKER``, else the first
    of :data:`ENGINES` whose ``info`` answers. :class:`ClusterError` saying why each
    candidate is unusable, and how to get one, if none is."""
    wanted = wanted or os.environ.get("CLEW_DOCKER") or None
    problems = []
    for name in [wanted] if wanted else list(ENGINES):
        engine, detail = probe_engine(name)
        if engine is not None:
            return engine
        problems.append(detail)
    raise ClusterError(f"no usable container engine ({'; '.join(problems)}); {_INSTALL_HINT}")


def engine_checks() -> list[Capability]:
    """``engine:docker`` and ``engine:podman`` for ``clew doctor``: whether each is usable
    (its ``info`` answers), and why not."""
    caps = []
    for name in ENGINES:
        engine, detail = probe_engine(name)
        if engine is None and detail.endswith("not installed"):
            detail += f" ({_INSTALL_HINT})"
        caps.append(Capability(name=f"engine:{name}", available=engine is not None, detail=detail))
    return caps


def _hard_limit(which: int, cap: int) -> int:
    hard = resource.getrlimit(which)[1]
    return cap if hard == resource.RLIM_INFINITY else min(hard, cap)


def run_settings(engine: Engine, runtime: str | None = None) -> list[str]:
    """The extra ``run``/``create`` arguments this host needs for ``engine`` (see the module
    docstring); ``runtime`` overrides the OCI runtime (``""``: the engine's default)."""
    if engine.kind != "podman":
        return ["--runtime", runtime] if runtime else []
    args = []
    if runtime is None:
        runtime = "runc" if find_binary("runc") else ""
    if runtime:
        args += ["--runtime", runtime]
    nofile = _hard_limit(resource.RLIMIT_NOFILE, 1048576)
    nproc = _hard_limit(resource.RLIMIT_NPROC, PODMAN_NPROC_CAP)
    return [*args, "--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]
