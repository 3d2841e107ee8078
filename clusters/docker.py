"""Containers with sshd, made with the docker (or podman) CLI: the ``docker`` provider.

``up`` creates a user-defined network ``<prefix>net`` and containers ``<prefix>n1..`` on it
(each also reachable as ``n1..`` from the others), adds a key generated for this cluster
to each container's ``authorized_keys`` (``docker exec``), records each container's SSH
host keys in the cluster's own ``known_hosts``, reads each container's address
(``docker inspect``) and returns the nodes. ``down`` removes exactly those containers and
that network, by the IDs recorded in the state, and the files it wrote.

**The image** (option ``image``, default ``clew/node:debian12``) must run sshd in the
foreground as its command, allow the login user (default root) in with a public key,
and have host keys. clew does not build it; for example::

    FROM debian:12
    RUN apt-get update && apt-get install -y --no-install-recommends \\
          openssh-server iproute2 iptables nftables procps \\
     && mkdir -p /run/sshd && rm -rf /var/lib/apt/lists/*
    CMD ["/usr/sbin/sshd", "-D", "-e"]

    docker build -t clew/node:debian12 .

Containers get ``--cap-add NET_ADMIN`` so partitions (iptables/nft) work inside them.
They share the host's kernel and clock: netem works only if the host kernel has it, and a
clock can be skewed only with libfaketime in the image. The controller must be able to
reach the containers' addresses (true for Docker on Linux; not for Docker Desktop).

Options (``spec.options``): ``image``, ``engine`` (``docker``/``podman`` or a path; else
``$CLEW_DOCKER``; else whichever is installed), ``prefix`` (default ``clew-``, or
``clew-<name>-`` for a cluster not called ``default``), ``subnet`` (for the network),
``insecure_host_keys`` (do not verify host keys), ``ready_timeout`` (seconds to wait for
sshd to answer, default 30; 0: do not wait).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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
)
from clusters.doctor import (
    ToolResult,
    check_iptables_statistic,
    check_netem,
    check_nodes,
    find_binary,
    run_tool,
)
from clusters.static import host_key_capability, remote_capabilities
from harness.errors import ClusterError, ConfigError

__all__ = ["DockerProvider", "find_engine"]

DEFAULT_IMAGE = "clew/node:debian12"
#: Seconds for quick engine commands (info, inspect, exec, rm).
QUICK_TIMEOUT = 60.0
#: Seconds for ``docker run`` (it may pull the image).
RUN_TIMEOUT = 600.0
#: Seconds to wait for every container's sshd to answer.
READY_TIMEOUT = 30.0

KEY_FILE = "id_ed25519"
KNOWN_HOSTS = "known_hosts"
_OUR_FILES = (CLUSTER_FILE, KEY_FILE, KEY_FILE + ".pub", KNOWN_HOSTS)
_OPTIONS = frozenset({"image", "engine", "prefix", "subnet", "insecure_host_keys", "ready_timeout"})
_PREFIX = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_INSTALL_HINT = (
    "install Docker (https://docs.docker.com/engine/install/) or Podman "
    "(`apt-get install podman`), or point CLEW_DOCKER / --option engine=PATH at one"
)


#: What status says about a cluster whose ``up`` never finished.
_UNFINISHED = (
    "an earlier `clew cluster up` did not finish in {0}; remove what it made with "
    "`clew cluster down --state-dir {0}`"
)


def find_engine(wanted: str | None = None) -> str:
    """The container CLI to use: ``wanted`` (a name or path), else ``$CLEW_DOCKER``, else
    ``docker`` or ``podman``, whichever is installed. :class:`ClusterError` saying how to
    install one if there is none."""
    wanted = wanted or os.environ.get("CLEW_DOCKER") or None
    for name in [wanted] if wanted else ["docker", "podman"]:
        path = find_binary(name)
        if path:
            return path
    looked = repr(wanted) if wanted else "docker and podman"
    raise ClusterError(f"no container engine found (looked for {looked}); {_INSTALL_HINT}")


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _generate_key(state_dir: Path) -> str:
    """Write a new ed25519 key pair into ``state_dir`` (private key mode 0600); return the
    public key line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    path = state_dir / KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    line = public.decode() + " clew"
    (state_dir / (KEY_FILE + ".pub")).write_text(line + "\n")
    return line


class DockerProvider:
    """Containers with sshd on a user-defined network. See the module docstring."""

    name = "docker"

    # -- engine commands ----------------------------------------------------------------

    def _engine_cmd(
        self,
        engine: str,
        args: list[str],
        what: str,
        *,
        timeout: float = QUICK_TIMEOUT,
        stdin: str | None = None,
    ) -> ToolResult:
        """Run ``engine args``; :class:`ClusterError` naming the command if it fails."""
        res = run_tool([engine, *args], timeout=timeout, stdin=stdin)
        if not res.ok:
            status = "timed out" if res.timed_out else f"exited with status {res.returncode}"
            shown = " ".join([Path(engine).name, *args[:3]])
            raise ClusterError(f"`{shown} ...` (to {what}) {status}: {res.tail()}")
        return res

    def _check_engine(self, engine: str) -> None:
        """:class:`ClusterError` with the stderr tail unless ``engine info`` works."""
        res = run_tool([engine, "info"], timeout=QUICK_TIMEOUT)
        if res.ok:
            return
        tool = Path(engine).name
        why = "timed out" if res.timed_out else f"failed: {res.tail(3)}"
        hint = (
            "start the daemon (`systemctl start docker`, or `dockerd &` without systemd), "
            "check that you may use it (the docker group), or use podman (CLEW_DOCKER=podman)"
            if "Cannot connect" in res.stderr or tool == "docker"
            else f"check that `{tool} info` works for this user"
        )
        raise ClusterError(f"the container engine is not usable (`{tool} info` {why}); {hint}")

    # -- Provider -------------------------------------------------------------------------

    def up(self, spec: ClusterSpec) -> Cluster:
        """Create the network and containers, authorise the cluster key, record host keys,
        save the cluster and return it. A docker cluster with the same settings already
        saved there is returned as is. Everything created is recorded in the state as soon
        as it exists, and removed again if ``up`` fails."""
        opts = dict(spec.options)
        check_options("docker", opts, _OPTIONS)
        if spec.nodes < 1:
            raise ConfigError(f"--nodes must be at least 1, not {spec.nodes}")
        prefix = str(
            opts.get("prefix") or ("clew-" if spec.name == "default" else f"clew-{spec.name}-")
        )
        if not _PREFIX.match(prefix):
            raise ConfigError(f"option prefix={prefix!r}: use letters, digits, '_', '.', '-'")
        try:
            ready_timeout = float(opts.get("ready_timeout", READY_TIMEOUT))
        except ValueError:
            raise ConfigError("option ready_timeout must be a number of seconds") from None
        settings = {
            "image": str(opts.get("image") or DEFAULT_IMAGE),
            "prefix": prefix,
            "nodes": spec.nodes,
            "user": spec.user,
            "subnet": opts.get("subnet"),
        }
        state_dir = spec.resolved_state_dir()
        if (state_dir / CLUSTER_FILE).exists():
            old = Cluster.load(state_dir)
            if old.provider == self.name and old.extra.get("settings") == settings and old.nodes:
                return old
            if old.provider == self.name and not old.nodes:
                raise ClusterError(_UNFINISHED.format(state_dir))
            raise ClusterError(
                f"a different {old.provider} cluster is up in {state_dir}; take it down "
                f"first (`clew cluster down --state-dir {state_dir}`) or use another --name"
            )
        clash = [f for f in _OUR_FILES if (state_dir / f).exists()]
        if clash:
            raise ClusterError(
                f"{state_dir} already holds {', '.join(clash)}, which clew did not write for "
                "a docker cluster; use another --state-dir or --name"
            )
        engine = find_engine(opts.get("engine"))
        self._check_engine(engine)
        state_dir.mkdir(parents=True, exist_ok=True)
        extra: dict[str, Any] = {
            "engine": engine,
            "settings": settings,
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
        engine: str,
        state_dir: Path,
        extra: dict[str, Any],
        ready_timeout: float,
        opts: dict[str, Any],
    ) -> Cluster:
        s = extra["settings"]
        prefix, user = s["prefix"], s["user"]
        label = f"clew.cluster={spec.name}"
        self._record(spec, state_dir, extra)  # first, so that down removes the key too
        public_key = _generate_key(state_dir)

        net = f"{prefix}net"
        args = ["network", "create", "--label", label]
        if s["subnet"]:
            args += ["--subnet", str(s["subnet"])]
        res = self._engine_cmd(engine, [*args, net], f"create network {net}")
        extra["network"] = {"name": net, "id": res.stdout.strip() or net}
        self._record(spec, state_dir, extra)

        names = [f"n{i}" for i in range(1, spec.nodes + 1)]
        for n in names:
            cname = f"{prefix}{n}"
            res = self._engine_cmd(
                engine,
                [
                    "run",
                    "-d",
                    "--name",
                    cname,
                    "--hostname",
                    n,
                    "--network",
                    net,
                    "--network-alias",
                    n,
                    "--cap-add",
                    "NET_ADMIN",
                    "--label",
                    label,
                    s["image"],
                ],
                f"start container {cname}",
                timeout=RUN_TIMEOUT,
            )
            extra["containers"].append({"name": cname, "id": res.stdout.strip() or cname})
            self._record(spec, state_dir, extra)

        ids = [c["id"] for c in extra["containers"]]
        res = self._engine_cmd(engine, ["inspect", *ids], "read the containers' addresses")
        addresses = self._addresses(res.stdout, net)
        known_lines: list[str] = []
        insecure = _truthy(opts.get("insecure_host_keys", False))
        nodes = []
        for n, c in zip(names, extra["containers"], strict=True):
            cname = c["name"]
            ip = addresses.get(cname)
            if not ip:
                raise ClusterError(
                    f"container {cname} has no address on network {net}; "
                    f"see `{Path(engine).name} inspect {cname}`"
                )
            self._engine_cmd(
                engine,
                ["exec", "-i", "-u", user, cname, "sh", "-c",
                 'umask 077 && mkdir -p "$HOME/.ssh" && cat >> "$HOME/.ssh/authorized_keys"'],
                f"authorise the cluster key for {user} in {cname}",
                stdin=public_key + "\n",
            )  # fmt: skip
            host_keys = run_tool(
                [engine, "exec", cname, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"],
                timeout=QUICK_TIMEOUT,
            )
            keys = [ln.split()[:2] for ln in host_keys.stdout.splitlines() if len(ln.split()) >= 2]
            if not keys and not insecure:
                raise ClusterError(
                    f"cannot read the SSH host keys of {cname} (/etc/ssh/ssh_host_*_key.pub): "
                    f"{host_keys.tail(2)}; use an image with host keys, or "
                    "--insecure-host-keys to skip verification"
                )
            known_lines += [f"{ip} {kind} {blob}" for kind, blob in keys]
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
        return Cluster(
            provider=self.name,
            name=spec.name,
            nodes=tuple(nodes),
            state_dir=str(state_dir),
            capabilities=(
                host_key_capability(tuple(nodes), "--insecure-host-keys was given"),
                *self.capabilities(),
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
                    "sshd in the foreground (see `clew cluster up --help`)?"
                )
            time.sleep(0.2)

    def down(self, state_dir: Path) -> None:
        """Remove the containers and the network recorded in ``state_dir`` (by ID; ones
        already gone are fine), then the files clew wrote there. Harmless if nothing is
        up; :class:`ClusterError` (state kept) if the engine cannot remove them."""
        state_dir = Path(state_dir)
        if not (state_dir / CLUSTER_FILE).is_file():
            return  # nothing of ours is there (the key files are only ours with it)
        extra = Cluster.load(state_dir).extra
        ids = [c["id"] for c in extra.get("containers", [])]
        network = extra.get("network")
        if ids or network:
            saved = extra.get("engine")
            engine = find_engine(saved if saved and find_binary(saved) else None)
            if ids:
                self._remove(engine, ["rm", "-f", "-v", *ids], "remove the containers")
            if network:
                self._remove(engine, ["network", "rm", network["id"]], "remove the network")
        for f in _OUR_FILES:
            (state_dir / f).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # absent, or holds files that are not ours
            state_dir.rmdir()

    def _remove(self, engine: str, args: list[str], what: str) -> None:
        """Run a removal; objects that no longer exist are not an error."""
        res = run_tool([engine, *args], timeout=QUICK_TIMEOUT)
        if res.ok:
            return
        lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
        if lines and all(re.search(r"no such|not found", ln, re.I) for ln in lines):
            return
        why = "timed out" if res.timed_out else f"failed: {res.tail(3)}"
        raise ClusterError(
            f"could not {what} (`{Path(engine).name} {' '.join(args[:2])} ...` {why}); "
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
            saved = extra.get("engine")
            engine = find_engine(saved if saved and find_binary(saved) else None)
        except ClusterError as e:
            return ClusterStatus(cluster=cluster, problems=(str(e),))
        ids = [c["id"] for c in extra.get("containers", [])]
        res = run_tool([engine, "inspect", *ids], timeout=QUICK_TIMEOUT) if ids else None
        running: dict[str, str] = {}
        if res is not None and res.stdout.strip():
            with contextlib.suppress(ValueError):
                for item in json.loads(res.stdout):
                    state = item.get("State") or {}
                    running[str(item.get("Name", "")).lstrip("/")] = (
                        "running" if state.get("Running") else str(state.get("Status", "?"))
                    )
        problems: list[str] = []
        if res is not None and not res.ok and not running:
            problems.append(f"`{Path(engine).name} inspect` failed: {res.tail(2)}")
        nodes: dict[str, str] = {}
        reachable = [n for n, c in zip(cluster.nodes, extra.get("containers", []), strict=False)
                     if running.get(c["name"]) == "running"]  # fmt: skip
        tcp = check_nodes(reachable)
        for n, c in zip(cluster.nodes, extra.get("containers", []), strict=False):
            st = running.get(c["name"])
            if st is None:
                nodes[n.name] = f"container {c['name']} is gone"
            elif st != "running":
                nodes[n.name] = f"container {c['name']} is not running ({st})"
            else:
                nodes[n.name] = tcp[n.name]
        return ClusterStatus(cluster=cluster, nodes=nodes, problems=tuple(problems))

    def capabilities(self) -> tuple[Capability, ...]:
        """What containers offer: the remote fault kinds (containers run with NET_ADMIN),
        except that they share this machine's kernel and clock, so netem and the iptables
        statistic match work only if they work here, and the clock cannot be skewed."""
        netem, loss = check_netem(), check_iptables_statistic()
        shared = "containers share this machine's kernel: "
        caps = {c.name: c for c in remote_capabilities("the containers", own_clock=False)}
        caps["packet-netem"] = replace(netem, detail=shared + netem.detail)
        caps["packet-loss-iptables"] = replace(loss, detail=shared + loss.detail)
        return tuple(caps.values())
