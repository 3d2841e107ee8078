"""Shared fixtures for integration tests: throwaway OpenSSH servers on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

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
