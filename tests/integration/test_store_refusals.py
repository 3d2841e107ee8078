"""A run refused after the cluster is up (a fault kind this cluster and database cannot
have: clock faults on etcd, a Go program, on the local provider) creates no run directory,
moves no ``latest`` link, exits 254 with the reason, and takes down the cluster it brought
up. Own subnet and prefix; nothing is left behind.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
]

SUBNET = "10.77.164.0/24"
PREFIX = "cre-"


def test_a_refused_fault_kind_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    store = tmp_path / "store"
    earlier = store / "etcd-register" / "20250101T000000"
    earlier.mkdir(parents=True)
    (earlier / "history.jsonl").write_text("")
    for link in (store / "latest", store / "etcd-register" / "latest"):
        link.symlink_to(os.path.relpath(earlier, link.parent))
    argv = [
        "test", "etcd", "--faults", "clock", "--nodes", "1", "--time-limit", "5",
        "--store", str(store), "--cluster-state-dir", str(tmp_path / "cluster"),
        "--no-progress", "--cluster-option", f"subnet={SUBNET}",
        "--cluster-option", f"prefix={PREFIX}", "--cluster-option", f"bridge={PREFIX}br0",
    ]  # fmt: skip
    try:
        result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    finally:
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert result.exit_code == 254, result.output
    assert "cannot run --faults clock" in result.output
    assert "etcd is a Go program" in result.output
    assert "run directory:" not in result.output
    assert sorted(p.name for p in (store / "etcd-register").iterdir()) == [
        "20250101T000000", "latest"
    ]  # fmt: skip
    assert (store / "latest").resolve() == earlier.resolve()
    assert (store / "etcd-register" / "latest").resolve() == earlier.resolve()
    assert PREFIX not in netns, "the cluster this run brought up is still there"
