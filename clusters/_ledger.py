"""The local provider's ledger: what a cluster *will* create, written before it creates it.

``local.json`` in the state directory lists every host object of the cluster (bridge,
namespaces, veths), each recorded *before* the command that creates it runs, plus the
configuration and the launcher PIDs. So after a crash at any point, ``down`` knows exactly
which names are ours and deletes those (if they exist) and nothing else. The ledger is
removed last, once everything in it is gone.

The ledger also holds a lock (``flock`` on ``lock``) so two clew commands never build
and tear down the same cluster at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ClusterError

__all__ = ["LEDGER_FILE", "LOCK_FILE", "Ledger", "state_lock"]

LEDGER_FILE = "local.json"
LOCK_FILE = "lock"
_VERSION = 1


@dataclass(slots=True, kw_only=True)
class Ledger:
    """What the cluster in ``state_dir`` has created or is about to create.

    ``objects`` are ``{"kind": "bridge" | "netns" | "veth", "name": ...}`` in creation
    order; ``config`` is the resolved configuration (to tell "the same cluster" apart);
    ``pids`` maps node names to ``{"launcher": pid, "sshd": pid}``.
    """

    state_dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    objects: list[dict[str, str]] = field(default_factory=list)
    pids: dict[str, dict[str, int]] = field(default_factory=dict)
    created_run_netns: bool = False

    @property
    def path(self) -> Path:
        return self.state_dir / LEDGER_FILE

    @classmethod
    def load(cls, state_dir: Path) -> Ledger | None:
        """The ledger in ``state_dir``, or ``None`` if there is none; a corrupt ledger is
        a :class:`ClusterError` (deleting by guesswork would be unsafe)."""
        path = state_dir / LEDGER_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise ClusterError(
                f"cannot read the local cluster's state file {path}: {e}. It lists the "
                "namespaces and links to delete; inspect `ip netns list` and `ip -br link`, "
                "delete the cluster's objects by hand, then remove the file"
            ) from None
        if data.get("version") != _VERSION:
            raise ClusterError(
                f"{path} was written by another version of clew (format "
                f"{data.get('version')!r}, expected {_VERSION})"
            )
        return cls(
            state_dir=state_dir,
            config=dict(data.get("config", {})),
            objects=[dict(o) for o in data.get("objects", [])],
            pids={k: dict(v) for k, v in data.get("pids", {}).items()},
            created_run_netns=bool(data.get("created_run_netns", False)),
        )

    def save(self) -> None:
        """Write the ledger atomically: a crash of clew leaves the old or the new one, whole.
        (No fsync: after a power loss the namespaces are gone anyway.)"""
        data = {
            "version": _VERSION,
            "config": self.config,
            "objects": self.objects,
            "pids": self.pids,
            "created_run_netns": self.created_run_netns,
        }
        tmp = self.path.with_suffix(".json.tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.path)

    def intend(self, kind: str, name: str) -> None:
        """Record (and save) that object ``name`` of ``kind`` is about to be created."""
        entry = {"kind": kind, "name": name}
        if entry not in self.objects:
            self.objects.append(entry)
            self.save()

    def names(self, kind: str) -> list[str]:
        """Names of the recorded objects of ``kind``, in creation order."""
        return [o["name"] for o in self.objects if o.get("kind") == kind]


@contextlib.contextmanager
def state_lock(state_dir: Path, *, timeout: float = 30.0) -> Iterator[None]:
    """Hold an exclusive lock on the cluster in ``state_dir`` (which must exist); a
    :class:`ClusterError` if another clew command keeps it for ``timeout`` seconds."""
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ClusterError(
                        f"another clew command has been working on the cluster in "
                        f"{state_dir} for {timeout:g} s (it holds {path}); wait for it or "
                        "stop it, then try again"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
