"""A throwaway OpenSSH server on 127.0.0.1, for tests and benchmarks of the control layer.

::

    with LoopbackSshd(tmp_path) as sshd:
        node = sshd.node("n1")          # a Node with the client key and a known_hosts file
        ...                             # connect(node) and run commands

:class:`LoopbackSshd` generates an ed25519 host key and client key in its directory, writes
an ``sshd_config`` (validated with ``sshd -t`` first), starts ``sshd -D -e`` on a free port
and waits until it accepts connections. Commands run as the current user, with ``HOME`` set
to an empty directory so that the user's shell start-up files (a ``.bashrc`` that runs
``pyenv init`` costs 200 ms per command) are not read. :meth:`LoopbackSshd.stop` kills the
server by its PID; using it as a context manager guarantees that.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from clusters.base import Node
from harness.errors import ClusterError

__all__ = ["SFTP_SERVER", "SSHD", "LoopbackSshd", "free_port"]

#: The OpenSSH server binary (it must be started by absolute path).
SSHD = "/usr/sbin/sshd"
#: Debian's SFTP server, run by sshd for the ``sftp`` subsystem.
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )


class LoopbackSshd:
    """An sshd listening on ``127.0.0.1:port`` that lets the current user in with a
    generated key. Every file it needs lives under ``directory``."""

    def __init__(self, directory: str | Path, *, port: int | None = None) -> None:
        self.dir = Path(directory)
        self.port = port or free_port()
        self.user = getpass.getuser()
        self.host_key = self.dir / "host_ed25519"
        self.client_key = self.dir / "client_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.config = self.dir / "sshd_config"
        self.log = self.dir / "sshd.log"
        self.home = self.dir / "home"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's PID while it runs."""
        return self._proc.pid if self._proc else None

    def node(self, name: str = "n1", **overrides: object) -> Node:
        """A :class:`Node` for this server (key auth, host key checked), with ``overrides``
        applied (for example ``key_file=`` a wrong key)."""
        fields: dict[str, object] = {
            "name": name,
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "key_file": str(self.client_key),
            "known_hosts": str(self.known_hosts),
        }
        fields.update(overrides)
        return Node(**fields)  # type: ignore[arg-type]

    def start(self, *, ready_timeout: float = 10.0) -> LoopbackSshd:
        """Generate keys and config, start sshd and wait until it answers; return self.
        :class:`ClusterError` (with sshd's own words) if it cannot start."""
        if not os.path.exists(SSHD):
            raise ClusterError(f"{SSHD} is missing; install openssh-server")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(exist_ok=True)
        for key, comment in ((self.host_key, "clew-host"), (self.client_key, "clew-client")):
            if not key.exists():
                _keygen(key, comment)
        authorized = self.dir / "authorized_keys"
        shutil.copyfile(f"{self.client_key}.pub", authorized)
        host_pub = Path(f"{self.host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.config.write_text(
            "\n".join(
                [
                    "ListenAddress 127.0.0.1",
                    f"Port {self.port}",
                    f"HostKey {self.host_key}",
                    f"AuthorizedKeysFile {authorized}",
                    f"PidFile {self.dir / 'sshd.pid'}",
                    "UsePAM no",
                    "StrictModes no",
                    "UseDNS no",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    f"Subsystem sftp {SFTP_SERVER}",
                    "MaxSessions 64",
                    "MaxStartups 64:30:128",
                    # SetEnv overrides sshd's own HOME: the shell finds no start-up files.
                    f"SetEnv HOME={self.home}",
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        check = subprocess.run([SSHD, "-t", "-f", str(self.config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise ClusterError(f"sshd rejects {self.config}: {check.stderr.strip()}")
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + ready_timeout
        while True:
            if self._proc.poll() is not None:
                self._proc = None
                raise ClusterError(f"sshd exited at start: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise ClusterError(f"sshd did not answer on 127.0.0.1:{self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the server (by PID) and reap it. Harmless when it is not running."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> LoopbackSshd:
        return self.start() if self._proc is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
