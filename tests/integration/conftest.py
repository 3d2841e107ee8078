"""Shared fixtures for integration tests: throwaway OpenSSH servers on 127.0.0.1, and
a local namespace cluster brought up for a module and taken down to nothing after it."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clusters import ClusterSpec, get_provider
from harness.control.loopback import SSHD, LoopbackSshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    """A real sshd on 127.0.0.1 (free port, generated keys), killed by PID afterwards."""
    if not os.path.exists(SSHD):
        pytest.skip(f"{SSHD} is not installed")
    with LoopbackSshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="module")
def sshd2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    """A second, independent sshd (its own port, keys and HOME)."""
    if not os.path.exists(SSHD):
        pytest.skip(f"{SSHD} is not installed")
    with LoopbackSshd(tmp_path_factory.mktemp("sshd2")) as server:
        yield server


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``with local_cluster(name, nodes, options) as state:`` (see :func:`_local_cluster`),
    for a test module's own cluster fixture."""
    return functools.partial(_local_cluster, tmp_path_factory)


@contextlib.contextmanager
def _local_cluster(
    tmp_path_factory: pytest.TempPathFactory, name: str, nodes: int, options: dict[str, Any]
) -> Iterator[Path]:
    """A local cluster of ``nodes`` namespace nodes (``options``: its subnet, prefix and
    bridge) for a module: yields its state directory; afterwards takes it down and checks
    that no namespace of its prefix is left."""
    state = tmp_path_factory.mktemp(name) / "cluster"
    provider = get_provider("local")
    provider.up(ClusterSpec(provider="local", nodes=nodes, name=name, state_dir=str(state),
                            options=options))  # fmt: skip
    try:
        yield state
    finally:
        provider.down(state)
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert options["prefix"] not in netns
