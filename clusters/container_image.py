"""Node images for the docker/podman provider, built from Debian's archive without a registry.

``clew image build`` runs ``mmdebstrap --variant=minbase`` with the packages a node needs
(:data:`BASE_PACKAGES`: sshd, python3, iproute2, procps, iptables, nftables) and those of
the chosen suites (:data:`SUITE_PACKAGES`), from the Debian mirrors in this machine's apt
sources, into a tarball in the cache directory, and imports it with ``podman import`` or
``docker import`` (command: create ``/run/sshd``, then ``sshd -D -e``).

The image is named ``clew-node`` and tagged with a content hash of its inputs (release,
architecture, mirrors, packages, recipe): an image with that tag in the engine is not
built again, and a tarball with that hash in the cache is imported without rebuilding.
The build also tags it ``clew-node:latest``, the provider's default image.

The image has no SSH host keys: the provider gives each node its own (see
:mod:`clusters.docker`), so no two containers share one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from clusters.container_engine import Engine, tail
from clusters.doctor import find_binary, run_tool
from harness.errors import ClusterError, ConfigError

__all__ = [
    "BASE_PACKAGES",
    "IMAGE_NAME",
    "LATEST",
    "SUITE_PACKAGES",
    "BuildResult",
    "ImageInputs",
    "apt_mirrors",
    "build_image",
    "default_cache_dir",
    "image_inputs",
    "run_logged",
]

IMAGE_NAME = "clew-node"
#: The tag the last build also gets: the provider's default image.
LATEST = f"{IMAGE_NAME}:latest"
#: Bumped when the recipe below changes in a way the other inputs do not show.
RECIPE = 1
#: What every node needs: sshd (clew reaches nodes over SSH), python3 (the packet delayer,
#: bugkv), iproute2 (tc), procps (ps, kill), iptables and nftables (partitions).
BASE_PACKAGES = ("openssh-server", "python3", "iproute2", "procps", "iptables", "nftables")
#: Debian packages each suite's database needs on the nodes.
SUITE_PACKAGES: dict[str, tuple[str, ...]] = {
    "etcd": ("etcd-server", "etcd-client"),
    "postgres": ("postgresql",),
    "redis": ("redis-server", "redis-sentinel"),
    "bugkv": (),
}
#: Seconds mmdebstrap may take (downloading ~60 MB and installing ~200 packages).
BUILD_TIMEOUT = 1800.0
#: Seconds ``import`` may take.
IMPORT_TIMEOUT = 600.0
#: Tarballs kept in the cache (the newest; older ones are removed after a build).
KEEP_TARBALLS = 3

#: Documentation, manual pages and translations are left out: a third smaller image.
_DPKG_EXCLUDES = (
    "path-exclude=/usr/share/doc/*",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
)
_CMD = '["/bin/sh", "-c", "mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e"]'
_SUFFIXES = ("", "-updates", "-security")


@dataclass(frozen=True, slots=True)
class ImageInputs:
    """Everything an image is built from; its hash names the image."""

    release: str
    architecture: str
    mirrors: tuple[str, ...]
    packages: tuple[str, ...]
    recipe: int = RECIPE

    @property
    def digest(self) -> str:
        """A 16-hex-digit hash of the inputs."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def tag(self) -> str:
        """``clew-node:<digest>``."""
        return f"{IMAGE_NAME}:{self.digest}"


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What :func:`build_image` did."""

    tag: str
    built: bool  # the tarball was made now (not taken from the cache or the engine)
    imported: bool  # the engine did not have the image and imported it now
    seconds: float
    tarball: Path
    tarball_bytes: int


def default_cache_dir() -> Path:
    """``$CLEW_IMAGE_CACHE``, else ``$XDG_CACHE_HOME/clew/images``, else
    ``~/.cache/clew/images``."""
    env = os.environ.get("CLEW_IMAGE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "clew" / "images"


def _os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    out = {}
    try:
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip().strip('"')
    except OSError:
        pass
    return out


def _one_line_entries(text: str) -> Iterable[tuple[str, list[str], list[str]]]:
    """(uri, [suite], components) of each ``deb`` line of a sources.list."""
    for line in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 4 and words[0] == "deb":
            yield words[1], [words[2]], words[3:]


def _deb822_entries(text: str) -> Iterable[tuple[str, list[str], list[str]]]:
    """(uri, suites, components) of each ``Types: deb`` stanza of a .sources file."""
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
            continue
        for uri in fields.get("uris", "").split():
            yield uri, fields.get("suites", "").split(), fields.get("components", "").split()


def apt_mirrors(release: str, apt_dir: Path = Path("/etc/apt")) -> tuple[str, ...]:
    """The ``deb URI SUITE COMPONENTS`` lines of this machine's apt sources for ``release``
    (and its -updates and -security suites), in the order apt reads them; other
    repositories (third-party ones with suites of their own names) are left out."""
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    wanted = {release + s for s in _SUFFIXES}
    out: list[str] = []
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            entries = _deb822_entries(text)
        elif f.name == "sources.list" or f.suffix == ".list":
            entries = _one_line_entries(text)
        else:
            continue
        for uri, suites, components in entries:
            for suite in suites:
                line = f"deb {uri} {suite} {' '.join(components)}"
                if suite in wanted and components and line not in out:
                    out.append(line)
    return tuple(out)


#: A Debian package name as mmdebstrap's --include takes it: the name (Debian policy
#: 5.6.7), optionally pinned to a version, an architecture or a release.
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+(?:[=:/][A-Za-z0-9+.~:_-]+)?")


def image_inputs(
    suites: Sequence[str],
    *,
    release: str | None = None,
    mirrors: Sequence[str] = (),
    extra_packages: Sequence[str] = (),
) -> ImageInputs:
    """The inputs of the node image for ``suites``: this machine's Debian release and
    apt mirrors unless given. :class:`ConfigError` for an unknown suite, or when no
    mirror is known."""
    unknown = [s for s in suites if s not in SUITE_PACKAGES]
    if unknown:
        raise ConfigError(
            f"unknown suite {', '.join(unknown)} for an image; choose from "
            f"{', '.join(SUITE_PACKAGES)}"
        )
    release = release or _os_release().get("VERSION_CODENAME", "")
    if not release:
        raise ConfigError(
            "cannot tell this machine's Debian release; pass --release (e.g. bookworm)"
        )
    if mirrors:
        bad = [m for m in mirrors if not m.startswith("deb ") and "://" not in m]
        if bad:
            raise ConfigError(
                f"--mirror {bad[0]!r} is not a URL; give one such as "
                "http://deb.debian.org/debian, or a whole apt line 'deb URL SUITE COMPONENT'"
            )
        lines = tuple(m if m.startswith("deb ") else f"deb {m} {release} main" for m in mirrors)
    else:
        lines = apt_mirrors(release)
    if not lines:
        raise ConfigError(
            f"no apt source for {release} in /etc/apt; pass --mirror URL "
            "(e.g. --mirror http://deb.debian.org/debian)"
        )
    bad = [p for p in extra_packages if not _PACKAGE.fullmatch(p)]
    if bad:  # (else mmdebstrap fails on it, or a comma makes two, after apt's setup)
        raise ConfigError(
            f"--package {bad[0]!r} is not a Debian package name (lowercase letters, digits, "
            "'+', '-', '.'; optionally =VERSION, :ARCH or /RELEASE)"
        )
    packages = set(BASE_PACKAGES) | set(extra_packages)
    for s in suites:
        packages |= set(SUITE_PACKAGES[s])
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return ImageInputs(
        release=release, architecture=arch, mirrors=lines, packages=tuple(sorted(packages))
    )


def _has_image(engine: Engine, tag: str) -> bool:
    return run_tool([engine.path, "image", "inspect", tag], timeout=60).ok


def _mmdebstrap(inputs: ImageInputs, out: Path, timeout: float, say: Callable[[str], None]) -> None:
    """Run mmdebstrap into ``out``; its ``I:`` lines go to ``say``. :class:`ClusterError`
    with the last lines of its output if it fails."""
    tool = find_binary("mmdebstrap")
    if tool is None:
        raise ClusterError("mmdebstrap is not installed; install it: apt-get install mmdebstrap")
    argv = [
        tool,
        "--variant=minbase",
        "--format=tar",
        f"--architectures={inputs.architecture}",
        "--include=" + ",".join(inputs.packages),
        '--aptopt=Acquire::Languages "none"',
        *[f"--dpkgopt={x}" for x in _DPKG_EXCLUDES],
        # Per-node host keys: the provider gives each container its own.
        '--customize-hook=rm -f "$1"/etc/ssh/ssh_host_*',
        inputs.release,
        str(out),
        *inputs.mirrors,
    ]
    try:
        run_logged(argv, timeout, say, "mmdebstrap")
    except BaseException:  # (a Ctrl-C too)
        out.unlink(missing_ok=True)
        raise


def _prune(cache: Path, keep: int) -> None:
    """Remove all but the ``keep`` newest tarballs (and their manifests) in ``cache``."""
    tars = sorted(cache.glob("*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in tars[keep:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)


def build_image(
    engine: Engine,
    inputs: ImageInputs,
    *,
    cache_dir: Path | None = None,
    force: bool = False,
    timeout: float = BUILD_TIMEOUT,
    keep: int = KEEP_TARBALLS,
    say: Callable[[str], None] = lambda _: None,
) -> BuildResult:
    """Make ``inputs.tag`` exist in ``engine`` (and tag it :data:`LATEST`): nothing to do if
    it is there (unless ``force``), an import if the cache holds its tarball, else a build
    with mmdebstrap first. Progress lines go to ``say``. :class:`ClusterError` naming the
    step that failed."""
    start = time.monotonic()
    cache = cache_dir or default_cache_dir()
    tarball = cache / f"{inputs.digest}.tar"
    say(f"image {inputs.tag}: {inputs.release}/{inputs.architecture}, "
        f"{len(inputs.packages)} packages, {len(inputs.mirrors)} apt sources")  # fmt: skip
    cache.mkdir(parents=True, exist_ok=True)
    with build_lock(cache, say):
        return _build_locked(engine, inputs, cache, tarball, force, timeout, keep, say, start)


@contextlib.contextmanager
def build_lock(cache: Path, say: Callable[[str], None]) -> Iterator[None]:
    """One build at a time per image cache (two processes building the same image would
    write one ``.part`` file together): an exclusive lock on ``cache/.lock`` (the directory
    made if need be), waited for, saying so through ``say``."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another build is using {cache}; waiting for it")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build_locked(
    engine: Engine,
    inputs: ImageInputs,
    cache: Path,
    tarball: Path,
    force: bool,
    timeout: float,
    keep: int,
    say: Callable[[str], None],
    start: float,
) -> BuildResult:
    built = imported = False
    if force or not _has_image(engine, inputs.tag):
        if force or not tarball.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            part = tarball.with_suffix(".tar.part")
            part.unlink(missing_ok=True)
            say(f"building the root filesystem with mmdebstrap into {tarball}")
            _mmdebstrap(inputs, part, timeout, say)
            part.rename(tarball)
            manifest = {**asdict(inputs), "digest": inputs.digest}
            tarball.with_suffix(".json").write_text(json.dumps(manifest, indent=1) + "\n")
            built = True
        else:
            say(f"using the cached root filesystem {tarball}")
        say(f"importing it into {engine.name} as {inputs.tag}")
        res = run_tool(
            [engine.path, "import", "--change", f"CMD {_CMD}",
             "--change", f"LABEL clew.image.inputs={inputs.digest}", str(tarball), inputs.tag],
            timeout=IMPORT_TIMEOUT,
        )  # fmt: skip
        if not res.ok:
            raise ClusterError(f"`{engine.name} import {tarball}` failed: {tail(res)}")
        imported = True
    else:
        say(f"{engine.name} already has {inputs.tag}; nothing to build")
    res = run_tool([engine.path, "tag", inputs.tag, LATEST], timeout=60)
    if not res.ok:
        raise ClusterError(f"`{engine.name} tag {inputs.tag} {LATEST}` failed: {tail(res)}")
    if built:
        _prune(cache, keep)
    size = tarball.stat().st_size if tarball.is_file() else 0
    seconds = time.monotonic() - start
    say(f"{inputs.tag} (also {LATEST}) ready in {seconds:.1f} s")
    return BuildResult(tag=inputs.tag, built=built, imported=imported, seconds=seconds,
                       tarball=tarball, tarball_bytes=size)  # fmt: skip


#: Seconds a stopped build may take to unmount and remove what it made.
STOP_GRACE = 60.0


def _stop_group(proc: subprocess.Popen[str], what: str, say: Callable[[str], None]) -> None:
    """SIGTERM ``proc``'s process group, read its output to the end while it cleans up (a
    full pipe would block it), and SIGKILL the group after :data:`STOP_GRACE` seconds or
    at a second Ctrl-C."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        say(f"stopping {what}: it unmounts and removes what it made (Ctrl-C again: kill it)")
        proc.communicate(timeout=STOP_GRACE)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


#: mmdebstrap's error lines that only say a step failed (the step's command line, or that
#: mmdebstrap did), printed after the error that says why.
_WRAPPER_ERRORS = ("E: setup failed", "E: mmdebstrap failed", "E: run_chroot failed", "E: apt-get ")


def run_logged(argv: list[str], timeout: float, say: Callable[[str], None], what: str) -> None:
    """Run ``argv`` (mmdebstrap, or a tool like it) in its own session; its ``I:`` lines go
    to ``say`` prefixed with ``what``. SIGTERM to its whole process group at ``timeout`` or
    on a Ctrl-C (apt and dpkg stop, and mmdebstrap unmounts what it mounted in the chroot
    and removes its temporary directory), SIGKILL to the group a minute later (or at a
    second Ctrl-C). Its session kept a Ctrl-C from reaching it: it went on building, with
    its mounts, after clew had exited. :class:`ClusterError` naming ``what`` with its first errors
    (``E:`` lines: apt's own, such as an unknown package) if it fails, else the last lines
    of its output."""
    # Debian's own tools first: mmdebstrap runs helpers with "#!/usr/bin/env python3", and
    # a python3 shim earlier on PATH (pyenv) can slow each of ~150 extractions to seconds.
    path = "/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", "")
    proc = subprocess.Popen(
        argv,
        env={**os.environ, "PATH": path},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    fired = threading.Event()

    def stop() -> None:
        fired.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)

    timer = threading.Timer(timeout, stop)
    killer = threading.Timer(timeout + 60, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    killer.start()
    last: list[str] = []
    errors: list[str] = []  # apt's own (E: Unable to locate package x), not the wrappers
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            last = [*last[-9:], line]
            if line.startswith("E: ") and not line.startswith(_WRAPPER_ERRORS):
                errors = [*errors, line][:3]
            if line.startswith("I: ") and "tempdir" not in line:
                say(f"  {what}: " + line[3:])
        code = proc.wait()
    except BaseException:  # a Ctrl-C: it must not go on without us
        _stop_group(proc, what, say)
        raise
    finally:
        timer.cancel()
        killer.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    if code != 0:
        why = f"was stopped after {timeout:g} s" if fired.is_set() else f"exited with status {code}"
        raise ClusterError(f"{what} {why}: {' | '.join(errors or last[-4:])}")
