"""Containers with sshd, made with podman or docker: the ``podman`` and ``docker`` providers.

``up`` creates a network ``<prefix>net`` and containers ``<prefix>n1..`` on it (each also
reachable as ``n1..`` from the others). Each container gets an SSH host key of its own,
generated here and copied in before it starts (so no two nodes share the image's keys, and
``known_hosts`` is written from keys clew made, not read back from the nodes), and the
cluster's login key in ``authorized_keys``. ``up`` then reads the containers' addresses,
waits for sshd, and probes one node for what faults it can take (:func:`node_capabilities`).

**Cleanup that survives a failed start.** Before anything is created, ``up`` saves a
token in the state, and every network and container carries it as the label
``clew.up=<token>``. ``down`` removes the containers and the network it recorded *and*
anything else carrying its label: a container an engine left in state Created when its
runtime failed (podman does) is removed too, and so is the network after it. Objects that
are already gone are fine; objects of another cluster are never touched.

**The network** is ``--internal`` by default (option ``internal``): the controller on this
machine reaches the containers through the bridge, the containers reach each other, and
the engine adds no NAT or forwarding rules to the host's firewall. podman's netavark still
turns on ``net.ipv4.ip_forward``; if it was off before ``up``, clew turns it off again
after ``up`` and after ``down`` (an internal network needs no forwarding).

**The image** (option ``image``, default ``clew-node:latest``) is built by ``clew image
build`` (:mod:`clusters.container_image`) from Debian's archive; any image that runs sshd
in the foreground as its command and has ``/etc/ssh`` will do.

**The engine** (option ``engine``, else ``$CLEW_DOCKER``, else the provider's name for
``podman``; for ``docker`` the first of docker, podman whose ``info`` answers): see
:mod:`clusters.container_engine`, which also says which run settings clew adds for podman
on hosts like this one (runtime runc, ulimits within the hard limits; option ``runtime``).

Containers get ``--cap-add NET_ADMIN`` so partitions (iptables/nft) work inside them.
They share this machine's kernel and clock: netem works only if the kernel has it, and a
clock can be skewed only with libfaketime in the image.

Options (``spec.options``): ``image``, ``engine``, ``prefix`` (default ``clew-``, or
``clew-<name>-`` for a cluster not called ``default``), ``subnet``, ``internal`` (default
true), ``runtime``, ``insecure_host_keys`` (do not verify host keys), ``ready_timeout``
(seconds to wait for sshd, default 30; 0: do not wait).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clusters.base import (
    CLUSTER_FILE,
    Capability,
    Cluster,
    ClusterSpec,
    ClusterStatus,
    Node,
    check_options,
    down_command,
    option_flag,
)
from clusters.container_engine import (
    Engine,
    clean_stderr,
    engine_kind,
    find_engine,
    run_settings,
    tail,
)
from clusters.container_image import LATEST
from clusters.doctor import ToolResult, check_nodes, find_binary, run_tool
from clusters.static import host_key_capability, remote_capabilities
from harness.errors import ClusterConflictError, ClusterError, ConfigError

__all__ = ["DockerProvider", "PodmanProvider", "find_engine", "node_capabilities"]

DEFAULT_IMAGE = LATEST
#: Seconds for quick engine commands (inspect, exec, cp, rm).
QUICK_TIMEOUT = 60.0
#: Seconds for ``create``/``start`` (a first start may set up the engine's storage).
RUN_TIMEOUT = 300.0
#: Seconds to wait for every container's sshd to answer.
READY_TIMEOUT = 30.0

KEY_FILE = "id_ed25519"
KNOWN_HOSTS = "known_hosts"
HOST_KEYS = "host_keys"  # a directory: one subdirectory per node
_OUR_FILES = (CLUSTER_FILE, KEY_FILE, KEY_FILE + ".pub", KNOWN_HOSTS)
_OPTIONS = frozenset(
    {"image", "engine", "prefix", "subnet", "internal", "runtime", "insecure_host_keys",
     "ready_timeout"}
)  # fmt: skip
_PREFIX = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_GONE = re.compile(r"no such|not found|no container with name|no network with name", re.I)
_IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")

#: What status says about a cluster whose ``up`` never finished.
_UNFINISHED = (
    "an earlier `clew cluster up` did not finish in {0}; remove what it made with "
    "`clew cluster down --state-dir {0}`"
)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _new_key() -> tuple[bytes, str]:
    """A new ed25519 key: (private key in OpenSSH format, ``ssh-ed25519 BLOB``)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode()


def _generate_key(state_dir: Path) -> str:
    """Write the cluster's login key pair into ``state_dir`` (private key mode 0600);
    return the public key line."""
    private, public = _new_key()
    _write_private(state_dir / KEY_FILE, private)
    line = public + " clew"
    (state_dir / (KEY_FILE + ".pub")).write_text(line + "\n")
    return line


def _host_key(state_dir: Path, node: str) -> tuple[Path, str]:
    """Write node ``node``'s own SSH host key into ``state_dir/host_keys/<node>/`` under
    the names sshd reads; return that directory and the public key (``ssh-ed25519 BLOB``)."""
    d = state_dir / HOST_KEYS / node
    d.mkdir(parents=True, exist_ok=True)
    private, public = _new_key()
    _write_private(d / "ssh_host_ed25519_key", private)
    (d / "ssh_host_ed25519_key.pub").write_text(f"{public} root@{node}\n")
    return d, public


#: An engine's answer to a create whose name is taken (podman's, then docker's words);
#: not podman's "subnet ... is already used on the host", which a prefix does not cure.
_NAME_TAKEN = re.compile(r"already (in use|exists)|name \S+ already used")


def _made(entry: dict[str, Any]) -> bool:
    """Whether ``up`` made the recorded container or network ``entry`` (a failed create of
    a name already in use left someone else's object under it: `down` removed it). An
    entry saved before "made" was recorded counts if its ID is not its name."""
    return bool(entry.get("made", entry.get("id") != entry.get("name")))


def _known(ident: str, known: list[str]) -> bool:
    """Whether ``ident`` (an ID, perhaps shortened) is one of ``known``."""
    return any(k.startswith(ident) or ident.startswith(k) for k in known)


def _read_ip_forward() -> str | None:
    try:
        return _IP_FORWARD.read_text().strip()
    except OSError:
        return None


def _restore_ip_forward(before: str | None) -> None:
    """Turn IPv4 forwarding off again if it was off before ``up`` (see the module
    docstring); nothing if it was on, or cannot be read or written."""
    if before == "0" and _read_ip_forward() == "1":
        with contextlib.suppress(OSError):
            _IP_FORWARD.write_text("0\n")


#: One shell script, run in a node, that says what faults it can take: a line
#: ``name=yes|no detail`` each. Rules it adds are in the node's own network namespace and
#: removed before it exits.
_PROBE = r"""
have() { command -v "$1" >/dev/null 2>&1; }
if have nft && nft list tables >/dev/null 2>&1; then echo "partition=yes nft works (NET_ADMIN)"
elif have iptables && iptables -w 2 -L -n >/dev/null 2>&1; then echo "partition=yes iptables works"
else echo "partition=no neither nft nor iptables works in the container (NET_ADMIN?)"; fi
if have kill && have ps; then echo "pause=yes kill -STOP/-CONT (the database is not PID 1)"
  echo "kill=yes kill -KILL (the database is not PID 1)"
else echo "pause=no no kill/ps in the image"; echo "kill=no no kill/ps in the image"; fi
if have tc; then
  if out=$(tc qdisc add dev lo root netem delay 1ms 2>&1); then
    tc qdisc del dev lo root >/dev/null 2>&1; echo "packet-netem=yes tc netem works"
  else echo "packet-netem=no the kernel has no netem ($out)"; fi
else echo "packet-netem=no no tc in the image"; fi
if have iptables && iptables -w 2 -N CLEW-PROBE 2>/dev/null; then
  if iptables -w 2 -A CLEW-PROBE -m statistic --mode random --probability 0.5 -j DROP 2>/dev/null
  then echo "packet-loss-iptables=yes the statistic match works"
  else echo "packet-loss-iptables=no the kernel lacks the iptables statistic match"; fi
  if iptables -w 2 -A CLEW-PROBE -j NFQUEUE --queue-num 1 --queue-bypass 2>/dev/null; then
    if have python3; then echo "packet-delay-nfqueue=yes NFQUEUE target and python3"
    else echo "packet-delay-nfqueue=no no python3 in the image"; fi
  else echo "packet-delay-nfqueue=no the kernel lacks the NFQUEUE target"; fi
  iptables -w 2 -F CLEW-PROBE; iptables -w 2 -X CLEW-PROBE
else echo "packet-loss-iptables=no iptables does not work in the container"
  echo "packet-delay-nfqueue=no iptables does not work in the container"; fi
if ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then
  echo "clock-libfaketime=yes libfaketime in the image (not for Go programs such as etcd)"
else echo "clock-libfaketime=no no libfaketime in the image (add --package libfaketime)"; fi
echo "clock-system=no containers share this machine's clock"
"""


def node_capabilities(engine: Engine, container: str) -> tuple[Capability, ...]:
    """What faults a container node can take, probed inside ``container`` (its own network
    namespace; nothing is left there): partitions, pause, kill, the packet faults, clock
    faults. Falls back to what the image is expected to offer if the probe cannot run."""
    res = run_tool([engine.path, "exec", container, "sh", "-c", _PROBE], timeout=QUICK_TIMEOUT)
    found: dict[str, Capability] = {}
    for line in res.stdout.splitlines():
        head, _, detail = line.partition(" ")
        name, sep, answer = head.partition("=")
        if sep and answer in ("yes", "no"):
            found[name] = Capability(
                name=name, available=answer == "yes", detail=f"probed in {container}: {detail}"
            )
    expected = remote_capabilities("the containers", own_clock=False)
    if not res.ok or not found:
        why = f"could not probe {container} ({tail(res, 2)}); "
        return tuple(replace(c, detail=why + c.detail) for c in expected)
    return tuple(found.get(c.name, c) for c in expected)


def _different(old: Cluster, provider: str, wanted: dict[str, Any], state_dir: Path) -> str:
    """Why the cluster ``old`` up in ``state_dir`` is not the one ``wanted``: each setting
    that differs (``nodes: 3 is up, 5 asked``), and how to get the one asked for."""
    if old.provider != provider:
        what = f"a {old.provider} cluster is up in {state_dir}, not a {provider} one"
    else:
        up = old.extra.get("settings") or {}
        diff = ", ".join(
            f"{k}: {up.get(k)!r} is up, {v!r} asked" for k, v in wanted.items() if up.get(k) != v
        )
        what = f"a different {provider} cluster is up in {state_dir} ({diff})"
    return (f"{what}; take it down first (`{down_command(state_dir)}`), or ask for the same "
            "settings, or use another state directory")  # fmt: skip


#: The environment variables that choose which daemon an engine's client talks to.
_ENGINE_ENV = ("DOCKER_HOST", "DOCKER_CONTEXT", "CONTAINER_HOST", "CONTAINER_CONNECTION")


def _engine_env(extra: dict[str, Any]) -> dict[str, str] | None:
    """The environment for engine commands on a cluster that is up: this process's, with
    the daemon ``up`` used (``extra["engine_env"]``) in place of any other: a variable of
    :data:`_ENGINE_ENV` that ``up`` did not have is removed, so a shell pointing at
    another daemon still reaches the default one ``up`` used. ``None`` (this process's
    as it is) for a cluster saved before the daemon was."""
    if "engine_env" not in extra:
        return None
    env = {k: v for k, v in os.environ.items() if k not in _ENGINE_ENV}
    return {**env, **(extra["engine_env"] or {})}


def _check_image(engine: Engine, image: str) -> None:
    """:class:`ConfigError` if ``engine`` does not have ``image``, saying how to get it
    (podman answered "short-name did not resolve to an alias", docker went to Docker
    Hub), before anything is created."""
    if run_tool([engine.path, "image", "inspect", image], timeout=QUICK_TIMEOUT).ok:
        return
    if image == DEFAULT_IMAGE:
        how = f"build it: `clew image build --engine {engine.path}` (docs/containers.md)"
    else:
        how = (f"pull or load it into {engine.name} first, or leave the `image` option out "
               f"for {DEFAULT_IMAGE}, which `clew image build` makes")  # fmt: skip
    raise ConfigError(f"{engine.name} ({engine.path}) has no image {image}; {how}")


class DockerProvider:
    """Containers with sshd on their own network. See the module docstring."""

    name = "docker"
    makes_nodes = True
    #: The engine tried when neither the option nor ``$CLEW_DOCKER`` names one.
    default_engine: str | None = None

    # -- engine commands ----------------------------------------------------------------

    def _engine_cmd(
        self,
        engine: Engine,
        args: list[str],
        what: str,
        *,
        timeout: float = QUICK_TIMEOUT,
        stdin: str | None = None,
    ) -> ToolResult:
        """Run ``engine args``; :class:`ClusterError` naming the command if it fails."""
        res = run_tool([engine.path, *args], timeout=timeout, stdin=stdin)
        if not res.ok:
            status = "timed out" if res.timed_out else f"exited with status {res.returncode}"
            shown = " ".join([engine.name, *args[:3]])
            message = f"`{shown} ...` (to {what}) {status}: {tail(res)}"
            if args[0] in ("create", "network") and _NAME_TAKEN.search(res.stderr):
                raise ClusterConflictError(
                    f"{message}; that name belongs to something clew did not make here, and "
                    "clew leaves it alone: choose another `prefix` (--option prefix=NAME-)"
                )
            raise ClusterError(message)
        return res

    def _engine(self, wanted: Any) -> Engine:
        return find_engine(str(wanted) if wanted else self.default_engine)

    # -- Provider -------------------------------------------------------------------------

    def check_spec(self, spec: ClusterSpec) -> None:
        """Refuse the options ``up`` would refuse (nothing is created or contacted)."""
        self._settings(spec)

    def _settings(self, spec: ClusterSpec) -> tuple[dict[str, Any], float]:
        """The cluster's settings (what makes two clusters the same) and its ready timeout
        from ``spec``'s options, validated; :class:`ConfigError` naming the bad one."""
        opts = dict(spec.options)
        check_options(self.name, opts, _OPTIONS)
        option_flag(opts, "insecure_host_keys", False)  # refused now, not once containers run
        if spec.nodes < 1:
            raise ConfigError(f"--nodes must be at least 1, not {spec.nodes}")
        prefix = str(
            opts.get("prefix") or ("clew-" if spec.name == "default" else f"clew-{spec.name}-")
        )
        if not _PREFIX.match(prefix):
            raise ConfigError(
                f"cluster option prefix={prefix!r}: use letters, digits, '_', '.', '-'"
            )
        raw = opts.get("ready_timeout", READY_TIMEOUT)
        try:  # (a TOML list was a TypeError, and true was 1 s)
            ready_timeout = math.nan if isinstance(raw, bool) else float(raw)
        except (TypeError, ValueError):
            ready_timeout = math.nan
        if not math.isfinite(ready_timeout) or ready_timeout < 0:  # (nan and -1 passed)
            raise ConfigError("cluster option ready_timeout must be a number of seconds, not "
                              f"{opts.get('ready_timeout')!r}")  # fmt: skip
        settings = {
            "image": str(opts.get("image") or DEFAULT_IMAGE),
            "prefix": prefix,
            "nodes": spec.nodes,
            "user": spec.user,
            "subnet": opts.get("subnet"),
            "internal": option_flag(opts, "internal", True),
            "runtime": opts.get("runtime"),
        }
        return settings, ready_timeout

    def up(self, spec: ClusterSpec) -> Cluster:
        """Create the network and containers, give each its host key and the cluster's
        login key, probe a node's fault capabilities, save the cluster and return it. A
        cluster with the same settings already saved there is returned as is. Everything
        created carries this ``up``'s label, saved first, and is removed again if ``up``
        fails."""
        settings, ready_timeout = self._settings(spec)
        opts = dict(spec.options)
        state_dir = spec.resolved_state_dir()
        if (state_dir / CLUSTER_FILE).exists():
            old = Cluster.load(state_dir)
            if old.provider == self.name and old.extra.get("settings") == settings and old.nodes:
                return old
            if old.provider == self.name and not old.nodes:
                raise ClusterError(_UNFINISHED.format(state_dir))
            raise ClusterConflictError(_different(old, self.name, settings, state_dir))
        clash = [f for f in (*_OUR_FILES, HOST_KEYS) if (state_dir / f).exists()]
        if clash:
            raise ClusterConflictError(
                f"{state_dir} already holds {', '.join(clash)}, which clew did not write for "
                f"a {self.name} cluster; use another --state-dir or --name"
            )
        engine = self._engine(opts.get("engine"))
        _check_image(engine, str(settings["image"]))
        state_dir.mkdir(parents=True, exist_ok=True)
        extra: dict[str, Any] = {
            "engine": engine.path,
            # Where its daemon is (DOCKER_HOST=unix:///...): `status` and `down`, maybe
            # from another shell, must reach the same one.
            "engine_env": {k: os.environ[k] for k in _ENGINE_ENV if os.environ.get(k)},
            "settings": settings,
            "token": secrets.token_hex(8),
            "ip_forward": _read_ip_forward(),
            "network": None,
            "containers": [],
        }
        try:
            cluster = self._create(spec, engine, state_dir, extra, ready_timeout, opts)
        except BaseException:
            with contextlib.suppress(ClusterError):
                self.down(state_dir)
            raise
        cluster.save()
        return cluster

    def _record(self, spec: ClusterSpec, state_dir: Path, extra: dict[str, Any]) -> None:
        """Save what exists so far, so ``down`` can remove it even after a crash."""
        Cluster(provider=self.name, name=spec.name, nodes=(), state_dir=str(state_dir),
                extra=extra).save()  # fmt: skip

    def _create(
        self,
        spec: ClusterSpec,
        engine: Engine,
        state_dir: Path,
        extra: dict[str, Any],
        ready_timeout: float,
        opts: dict[str, Any],
    ) -> Cluster:
        s = extra["settings"]
        prefix, user = s["prefix"], s["user"]
        labels = ["--label", f"clew.cluster={spec.name}", "--label", f"clew.up={extra['token']}"]
        self._record(spec, state_dir, extra)  # first: down finds all by the label
        public_key = _generate_key(state_dir)

        net = f"{prefix}net"
        args = ["network", "create", *labels]
        if s["internal"]:
            args.append("--internal")
        if s["subnet"]:
            args += ["--subnet", str(s["subnet"])]
        # Recorded before it is made (a killed `up` is cleaned by its label), but removed by
        # name only once made: a network of that name may be someone else's.
        extra["network"] = {"name": net, "id": net, "made": False}
        self._record(spec, state_dir, extra)
        res = self._engine_cmd(engine, [*args, net], f"create network {net}")
        extra["network"].update(id=res.stdout.strip() or net, made=True)
        self._record(spec, state_dir, extra)

        extra_args = run_settings(engine, s["runtime"])
        names = [f"n{i}" for i in range(1, spec.nodes + 1)]
        host_keys: dict[str, str] = {}
        for n in names:
            cname = f"{prefix}{n}"
            key_dir, host_keys[n] = _host_key(state_dir, n)
            entry = {"name": cname, "id": cname, "made": False}  # (as the network)
            extra["containers"].append(entry)
            self._record(spec, state_dir, extra)
            res = self._engine_cmd(
                engine,
                ["create", "--name", cname, "--hostname", n, "--network", net,
                 "--network-alias", n, "--cap-add", "NET_ADMIN", *labels, *extra_args,
                 s["image"]],
                f"create container {cname}",
                timeout=RUN_TIMEOUT,
            )  # fmt: skip
            entry["id"] = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else cname
            entry["made"] = True
            self._record(spec, state_dir, extra)
            self._engine_cmd(
                engine,
                ["cp", f"{key_dir}/.", f"{cname}:/etc/ssh/"],
                f"give {cname} its own SSH host key",
            )
        for c in extra["containers"]:
            self._engine_cmd(
                engine, ["start", c["name"]], f"start container {c['name']}", timeout=RUN_TIMEOUT
            )

        ids = [c["id"] for c in extra["containers"]]
        res = self._engine_cmd(engine, ["inspect", *ids], "read the containers' addresses")
        addresses = self._addresses(res.stdout, net)
        insecure = option_flag(opts, "insecure_host_keys", False)
        known_lines: list[str] = []
        nodes = []
        for n, c in zip(names, extra["containers"], strict=True):
            cname = c["name"]
            ip = addresses.get(cname)
            if not ip:
                raise ClusterError(
                    f"container {cname} has no address on network {net}; "
                    f"see `{engine.name} inspect {cname}`"
                )
            self._engine_cmd(
                engine,
                ["exec", "-i", "-u", user, cname, "sh", "-c",
                 'umask 077 && mkdir -p "$HOME/.ssh" && cat >> "$HOME/.ssh/authorized_keys"'],
                f"authorise the cluster key for {user} in {cname}",
                stdin=public_key + "\n",
            )  # fmt: skip
            known_lines.append(f"{ip} {host_keys[n]}")
            nodes.append(
                Node(
                    name=n,
                    host=ip,
                    port=22,
                    user=user,
                    key_file=str(state_dir / KEY_FILE),
                    known_hosts=str(state_dir / KNOWN_HOSTS),
                    check_host_key=not insecure,
                )
            )
        (state_dir / KNOWN_HOSTS).write_text("".join(line + "\n" for line in known_lines))
        if ready_timeout > 0:
            self._wait_ready(nodes, ready_timeout)
        caps = node_capabilities(engine, extra["containers"][0]["name"])
        if s["internal"]:
            _restore_ip_forward(extra["ip_forward"])
        return Cluster(
            provider=self.name,
            name=spec.name,
            nodes=tuple(nodes),
            state_dir=str(state_dir),
            capabilities=(
                host_key_capability(tuple(nodes), "--insecure-host-keys was given"),
                *caps,
            ),
            extra=extra,
        )

    @staticmethod
    def _addresses(inspect_json: str, network: str) -> dict[str, str]:
        """Container name -> its address on ``network``, from ``inspect`` output."""
        try:
            data = json.loads(inspect_json)
        except ValueError as e:
            raise ClusterError(f"cannot read the engine's inspect output: {e}") from None
        out = {}
        for item in data:
            name = str(item.get("Name", "")).lstrip("/")
            nets = (item.get("NetworkSettings") or {}).get("Networks") or {}
            ip = (nets.get(network) or {}).get("IPAddress")
            if name and ip:
                out[name] = ip
        return out

    @staticmethod
    def _wait_ready(nodes: list[Node], timeout: float) -> None:
        """Wait until every node's SSH port answers; :class:`ClusterError` after
        ``timeout`` seconds naming the nodes that did not."""
        deadline = time.monotonic() + timeout
        while True:
            state = check_nodes(nodes, timeout=min(2.0, timeout))
            bad = {k: v for k, v in state.items() if v != "up"}
            if not bad:
                return
            if time.monotonic() >= deadline:
                why = "; ".join(f"{k}: {v}" for k, v in bad.items())
                raise ClusterError(
                    f"sshd did not answer within {timeout:g} s ({why}); does the image run "
                    "sshd in the foreground (`clew image build` makes one that does)?"
                )
            time.sleep(0.2)

    def _saved_engine(self, extra: dict[str, Any]) -> Engine:
        """The engine ``up`` used (not asked for ``info`` again: a removal or an inspect
        says soon enough if it no longer answers), else a usable one."""
        saved = extra.get("engine")
        if saved and find_binary(saved):
            return Engine(path=saved, kind=engine_kind(saved))
        return self._engine(None)

    def down(self, state_dir: Path) -> None:
        """Remove the containers and the network recorded in ``state_dir``, and anything
        else carrying its ``up``'s label (ones already gone are fine), then the files clew
        wrote there. Harmless if nothing is up; :class:`ClusterError` (state kept) if the
        engine cannot remove them."""
        state_dir = Path(state_dir)
        if not (state_dir / CLUSTER_FILE).is_file():
            return  # nothing of ours is there (the key files are only ours with it)
        extra = Cluster.load(state_dir).extra
        names = [c["id"] for c in extra.get("containers", []) if _made(c)]
        network = extra.get("network")
        token = extra.get("token")
        if names or network or token:
            engine = self._saved_engine(extra)
            env = _engine_env(extra)
            label = f"label=clew.up={token}"
            if token:
                res = run_tool([engine.path, "ps", "-a", "-q", "--filter", label],
                               timeout=QUICK_TIMEOUT, env=env)  # fmt: skip
                names += [i for i in res.stdout.split() if not _known(i, names)]
            if names:
                self._remove(engine, ["rm", "-f", "-v", *names], "remove the containers", env)
            nets = [network["id"]] if network and _made(network) else []
            if token:
                res = run_tool([engine.path, "network", "ls", "-q", "--filter", label],
                               timeout=QUICK_TIMEOUT, env=env)  # fmt: skip
                nets += [i for i in res.stdout.split() if not _known(i, nets)]
            for net in nets:
                self._remove(engine, ["network", "rm", net], "remove the network", env)
        if extra.get("settings", {}).get("internal"):
            _restore_ip_forward(extra.get("ip_forward"))
        for f in _OUR_FILES:
            (state_dir / f).unlink(missing_ok=True)
        shutil.rmtree(state_dir / HOST_KEYS, ignore_errors=True)
        with contextlib.suppress(OSError):  # absent, or holds files that are not ours
            state_dir.rmdir()

    def _remove(
        self, engine: Engine, args: list[str], what: str, env: dict[str, str] | None = None
    ) -> None:
        """Run a removal; objects that no longer exist are not an error."""
        res = run_tool([engine.path, *args], timeout=QUICK_TIMEOUT, env=env)
        if res.ok:
            return
        lines = [ln for ln in clean_stderr(res.stderr).strip().splitlines() if ln.strip()]
        if lines and all(_GONE.search(ln) for ln in lines):
            return
        why = "timed out" if res.timed_out else f"failed: {tail(res)}"
        raise ClusterError(
            f"could not {what} (`{engine.name} {' '.join(args[:2])} ...` {why}); "
            "the state is kept, so `clew cluster down` can try again"
        )

    def status(self, state_dir: Path) -> ClusterStatus:
        """Per node: ``"up"`` if its container runs and its SSH port answers a TCP
        connect, else why not."""
        try:
            cluster = Cluster.load(state_dir)
        except ClusterError as e:
            return ClusterStatus(cluster=None, problems=(str(e),))
        if not cluster.nodes:
            return ClusterStatus(cluster=cluster, problems=(_UNFINISHED.format(state_dir),))
        extra = cluster.extra
        try:
            engine = self._saved_engine(extra)
        except ClusterError as e:
            return ClusterStatus(cluster=cluster, problems=(str(e),))
        ids = [c["id"] for c in extra.get("containers", [])]
        res = (run_tool([engine.path, "inspect", *ids], timeout=QUICK_TIMEOUT,
                        env=_engine_env(extra)) if ids else None)  # fmt: skip
        running: dict[str, str] = {}
        if res is not None and res.stdout.strip():
            with contextlib.suppress(ValueError):
                for item in json.loads(res.stdout):
                    state = item.get("State") or {}
                    running[str(item.get("Name", "")).lstrip("/")] = (
                        "running" if state.get("Running") else str(state.get("Status", "?"))
                    )
        problems: list[str] = []
        # The engine did not answer (not the nodes): a failed inspect that found nothing,
        # unless it said why (every container gone: "no such object", exit 1 or 125).
        errors = res.stderr.strip().splitlines() if res is not None else []
        gone = bool(errors) and all(_GONE.search(line) for line in errors)
        silent = res is not None and not res.ok and not running and not gone
        if silent and res is not None:
            problems.append(f"`{engine.name} inspect` failed: {tail(res, 2)}")
        nodes: dict[str, str] = {}
        reachable = [n for n, c in zip(cluster.nodes, extra.get("containers", []), strict=False)
                     if running.get(c["name"]) == "running"]  # fmt: skip
        tcp = check_nodes(reachable)
        for n, c in zip(cluster.nodes, extra.get("containers", []), strict=False):
            st = running.get(c["name"])
            if st is None and silent:
                nodes[n.name] = f"unknown: {engine.name} did not answer"
            elif st is None:
                nodes[n.name] = f"container {c['name']} is gone"
            elif st != "running":
                nodes[n.name] = f"container {c['name']} is not running ({st})"
            else:
                nodes[n.name] = tcp[n.name]
        return ClusterStatus(cluster=cluster, nodes=nodes, problems=tuple(problems))

    def capabilities(self) -> tuple[Capability, ...]:
        """What container nodes are expected to offer before any is up (``up`` probes a
        real node): the remote fault kinds (containers run with NET_ADMIN), except that
        they share this machine's kernel and clock, so netem and the iptables statistic
        match work only if they work here, and the clock cannot be skewed."""
        from clusters.doctor import check_iptables_statistic, check_netem

        netem, loss = check_netem(), check_iptables_statistic()
        shared = "containers share this machine's kernel: "
        caps = {c.name: c for c in remote_capabilities("the containers", own_clock=False)}
        caps["packet-netem"] = replace(netem, detail=shared + netem.detail)
        caps["packet-loss-iptables"] = replace(loss, detail=shared + loss.detail)
        return tuple(caps.values())


class PodmanProvider(DockerProvider):
    """The same provider with podman as its engine (unless the option or ``$CLEW_DOCKER``
    names another)."""

    name = "podman"
    default_engine = "podman"
