"""The local provider's nodes: keys, configuration files, and OpenSSH sshd as PID 1.

A node is a process tree started in its network namespace by
``unshare --mount --uts --pid --fork --mount-proc --propagation private``: a tiny fixed
shell script sets the hostname, bind-mounts the node's own ``/etc/hosts``, ``/opt``,
``/tmp`` and an empty home over root's home, puts tmpfs on ``/run`` and ``/dev/shm``, and
``exec``\\ s sshd, which therefore is PID 1 of the node. Paths reach the script as
positional arguments, never spliced into it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clusters._run import CommandFailed, popen_shielded, run, stop_shielded, which
from harness.errors import ClusterError

__all__ = [
    "NodeFiles",
    "client_config",
    "generate_keys",
    "hosts_file",
    "known_hosts",
    "launch_node",
    "reap",
    "sshd_config",
    "validate_sshd_configs",
    "wait_ready",
]

log = logging.getLogger(__name__)

#: Where a node sees its own directory (from the state directory). sshd's configuration
#: names files under it, because the node's empty home and private /tmp may hide the
#: state directory's real path.
NODE_MOUNT = "/run/clew-node"

# $1 hostname, $2 node directory, $3 root's home directory, $4 sshd.
# The node directory is staged on /opt (which the node's own opt replaces anyway) and
# moved under the new /run, so a state directory under /run, /tmp or the home works too.
_NODE_SCRIPT = f"""set -e
hostname "$1"
mount --bind "$2" /opt
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/sshd {NODE_MOUNT}
mount --move /opt {NODE_MOUNT}
mount --bind {NODE_MOUNT}/opt /opt
mount --bind {NODE_MOUNT}/hosts /etc/hosts
mount --bind {NODE_MOUNT}/home "$3"
mount --bind {NODE_MOUNT}/tmp /tmp
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
exec "$4" -D -f {NODE_MOUNT}/sshd_config -E {NODE_MOUNT}/sshd.log
"""

# $1 sshd, $2 the nodes directory, then node names: checks each node's sshd_config with
# `sshd -t` as the node will see it, in a private mount namespace with its own /run/sshd
# (sshd -t insists on one; the host need not have it).
_VALIDATE_SCRIPT = f"""set -e
trap '' INT
sshd=$1; nodes=$2; shift 2
mount --bind "$nodes" /opt
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/sshd {NODE_MOUNT} /run/clew-nodes
mount --move /opt /run/clew-nodes
for n in "$@"; do
  mount --bind "/run/clew-nodes/$n" {NODE_MOUNT}
  "$sshd" -t -f {NODE_MOUNT}/sshd_config || {{ echo "in the sshd_config of $n"; exit 1; }}
  umount {NODE_MOUNT}
done
"""

#: Launcher processes we started and have not reaped yet, by PID.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFiles:
    """Where one node's files live inside the cluster's state directory."""

    dir: Path

    @property
    def hosts(self) -> Path:
        return self.dir / "hosts"

    @property
    def sshd_config(self) -> Path:
        return self.dir / "sshd_config"

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def authorized_keys(self) -> Path:
        return self.dir / "authorized_keys"

    @property
    def sshd_log(self) -> Path:
        return self.dir / "sshd.log"

    @property
    def node_log(self) -> Path:
        return self.dir / "node.log"

    def make_dirs(self) -> None:
        """Create the node directory with an empty ``home`` and ``opt``, and ``tmp``."""
        for sub in ("home", "opt"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
            os.chmod(self.dir / sub, 0o755)
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir / "tmp", 0o1777)


def generate_keys(keys: Sequence[tuple[Path, str]], *, timeout: float = 10.0) -> None:
    """Generate an ed25519 key pair without passphrase at each ``(path, comment)``
    (``path`` and ``path.pub``), in parallel, replacing any old pair."""
    procs: list[tuple[Path, subprocess.Popen[str]]] = []
    keygen = which("ssh-keygen") or "ssh-keygen"
    for path, comment in keys:
        for p in (path, path.with_name(path.name + ".pub")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        argv = [keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]
        procs.append(
            (
                path,
                popen_shielded(  # a Ctrl-C on clew's terminal is not for it
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
        )
    failures = []
    for path, proc in procs:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_shielded(proc)
            failures.append(f"{path}: ssh-keygen did not finish within {timeout:g} s")
            continue
        if proc.returncode != 0:
            failures.append(f"{path}: {out.strip() or f'status {proc.returncode}'}")
    if failures:
        raise ClusterError("cannot generate SSH keys: " + "; ".join(failures))


def sshd_config(*, listen: str) -> str:
    """The sshd configuration of one node: key-only root login on ``listen``:22, with the
    host key and authorized keys from the node directory as the node sees it."""
    return "\n".join(
        [
            "# Generated by clew (local provider). Do not edit: `clew cluster up` rewrites it.",
            f"# Paths are as the node sees them: {NODE_MOUNT} is this directory.",
            f"ListenAddress {listen}",
            "Port 22",
            f"HostKey {NODE_MOUNT}/ssh_host_ed25519_key",
            f"AuthorizedKeysFile {NODE_MOUNT}/authorized_keys",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "PidFile none",
            "PrintMotd no",
            "X11Forwarding no",
            "MaxSessions 64",
            "MaxStartups 64:30:128",
            "Subsystem sftp /usr/lib/openssh/sftp-server",
            "",
        ]
    )


def validate_sshd_configs(nodes_dir: Path, names: Sequence[str], *, timeout: float = 10.0) -> None:
    """Check each node's ``sshd_config`` under ``nodes_dir`` with ``sshd -t``, as the node
    will see it; :class:`ClusterError` quoting sshd otherwise."""
    sshd = which("sshd") or "/usr/sbin/sshd"
    argv = [
        "unshare", "--mount", "--propagation", "private",
        "sh", "-c", _VALIDATE_SCRIPT, "clew-sshd-check", sshd, str(nodes_dir), *names,
    ]  # fmt: skip
    try:
        run(argv, timeout=timeout, what="validate the nodes' sshd_config with sshd -t")
    except CommandFailed as e:
        raise ClusterError(
            f"sshd rejected a generated configuration in {nodes_dir}: "
            f"{(e.stderr + e.stdout).strip()}"
        ) from None


def hosts_file(entries: Sequence[tuple[str, str]]) -> str:
    """An ``/etc/hosts`` with localhost and every ``(name, ip)`` node."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{ip}\t{name}" for name, ip in entries]
    return "\n".join(lines) + "\n"


def known_hosts(entries: Sequence[tuple[str, str, str]]) -> str:
    """A known_hosts file listing each ``(name, ip, public key line)`` by name and IP."""
    out = []
    for name, ip, pub in entries:
        keytype, key = pub.split()[:2]
        out.append(f"{ip},{name} {keytype} {key}")
    return "\n".join(out) + "\n"


def client_config(*, nodes: Sequence[tuple[str, str]], key: Path, known: Path) -> str:
    """An OpenSSH client config so that ``ssh -F <file> n1`` reaches node n1 as root."""
    lines = ["# Generated by clew (local provider): ssh -F <this file> n1", ""]
    for name, ip in nodes:
        lines += [f"Host {name}", f"    HostName {ip}", ""]
    patterns = " ".join([n for n, _ in nodes] + [ip for _, ip in nodes])
    lines += [
        f"Host {patterns}",
        "    User root",
        "    Port 22",
        f'    IdentityFile "{key}"',
        "    IdentitiesOnly yes",
        f'    UserKnownHostsFile "{known}"',
        "    GlobalKnownHostsFile /dev/null",
        "    StrictHostKeyChecking yes",
        "    CheckHostIP no",
        "    BatchMode yes",
        "    ConnectTimeout 5",
        "    LogLevel ERROR",
        "",
    ]
    return "\n".join(lines)


def launch_node(*, netns: str, hostname: str, files: NodeFiles, home: str) -> int:
    """Start node ``hostname`` in network namespace ``netns`` with sshd as its PID 1;
    return the PID of the launcher (``unshare``, which waits for the node)."""
    sshd = which("sshd") or "/usr/sbin/sshd"
    argv = [
        which("ip") or "ip", "netns", "exec", netns,
        which("unshare") or "unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc",
        "--propagation", "private", "--kill-child",
        "/bin/sh", "-c", _NODE_SCRIPT, f"clew-{hostname}", hostname, str(files.dir), home, sshd,
    ]  # fmt: skip
    with open(files.node_log, "ab") as logf:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the node outlives a Ctrl-C of the command that made it
            close_fds=True,
        )
    _children[proc.pid] = proc
    return proc.pid


def reap(pid: int) -> None:
    """Collect the exit status of launcher ``pid`` if we started it (no zombie is left)."""
    proc = _children.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)


def _exited(pid: int) -> int | None:
    proc = _children.get(pid)
    return proc.poll() if proc is not None else None


def _answers(ip: str, timeout: float) -> bool:
    try:
        with socket.create_connection((ip, 22), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def wait_ready(nodes: Sequence[tuple[str, str, int, NodeFiles]], *, timeout: float) -> None:
    """Wait until sshd answers on port 22 of every ``(name, ip, launcher pid, files)``
    node. Fails fast if a node's launcher exits; after ``timeout`` seconds raises
    :class:`ClusterError` naming the nodes and quoting the end of their logs."""
    pending = list(nodes)
    deadline = time.monotonic() + timeout
    while pending:
        for node in list(pending):
            name, ip, pid, files = node
            status = _exited(pid)
            if status is not None:
                raise ClusterError(
                    f"node {name} ({ip}) stopped before sshd answered (launcher exit status "
                    f"{status}): {_log_tail(files)}"
                )
            if _answers(ip, 0.5):
                pending.remove(node)
        if not pending:
            return
        if time.monotonic() >= deadline:
            details = "; ".join(f"{n} ({ip}): {_log_tail(f)}" for n, ip, _, f in pending)
            raise ClusterError(
                f"sshd did not answer on port 22 within {timeout:g} s on "
                f"{', '.join(n for n, *_ in pending)}: {details}"
            )
        time.sleep(0.01)


def _log_tail(files: NodeFiles, lines: int = 5) -> str:
    parts = []
    for path in (files.node_log, files.sshd_log):
        try:
            text = path.read_text(errors="replace").strip()
        except OSError:
            continue
        if text:
            parts.append(f"{path.name}: " + " | ".join(text.splitlines()[-lines:]))
    return "; ".join(parts) or "(no log output)"
