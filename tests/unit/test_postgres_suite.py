"""The postgres suite without a server: the list-append generator and options, the suite's
spec defaults and ``--isolation``, and the DB adapter's shell scripts run for real on
stand-in processes."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from clusters.base import Cluster, Node
from harness.api import TestContext
from harness.clients.postgres import PostgresAppendClient, _mops
from harness.dbs.postgres import PostgresDB, primary_node
from harness.errors import ConfigError
from harness.spec import load_spec
from harness.suites import load_suite
from harness.suites.postgres import server_settings
from harness.workloads.list_append import (
    ListAppendGenerator,
    consistency_model,
    list_append_workload,
    normalize_isolation,
)


def ctx(options: dict[str, Any] | None = None, nodes: int = 1, **extra: Any) -> TestContext:
    cluster = Cluster(
        provider="local",
        name="t",
        state_dir="/nonexistent",
        nodes=tuple(Node(name=f"n{i}", host=f"10.9.9.{10 + i}") for i in range(1, nodes + 1)),
        extra=extra,
    )
    return TestContext(name="t", cluster=cluster, options=options or {}, rng=random.Random(1),
                       run_dir=Path("/nonexistent"), concurrency=4, time_limit=1.0)  # fmt: skip


# ---- the generator ----------------------------------------------------------------------


def test_generator_appends_each_value_once_per_key_and_rotates_keys() -> None:
    gen = ListAppendGenerator(random.Random(5), key_count=3, min_txn_length=1,
                              max_txn_length=4, max_writes_per_key=5)  # fmt: skip
    ops = [gen() for _ in range(500)]
    assert all(op["f"] == "txn" and 1 <= len(op["value"]) <= 4 for op in ops)
    appends = [(k, v) for op in ops for f, k, v in op["value"] if f == "append"]
    assert len(appends) == len(set(appends))  # every (key, value) once
    per_key = Counter(k for k, _ in appends)
    assert max(per_key.values()) <= 5
    assert len(per_key) > 3  # keys were retired and replaced
    for k in per_key:  # values of a key are 1, 2, 3, ... in generation order
        assert [v for kk, v in appends if kk == k] == list(range(1, per_key[k] + 1))
    reads = [m for op in ops for m in op["value"] if m[0] == "r"]
    assert reads and all(m[2] is None for m in reads)


def test_generator_is_reproducible_from_its_seed() -> None:
    a = ListAppendGenerator(random.Random(9))
    b = ListAppendGenerator(random.Random(9))
    assert [a() for _ in range(50)] == [b() for _ in range(50)]


def test_generator_rejects_an_impossible_shape() -> None:
    with pytest.raises(ConfigError, match="max_txn_length"):
        ListAppendGenerator(random.Random(1), min_txn_length=5, max_txn_length=2)
    with pytest.raises(ConfigError, match="max_txn_length"):
        list_append_workload(
            ctx({"min_txn_length": 5, "max_txn_length": 2}), client=PostgresAppendClient
        )


# ---- isolation and consistency ----------------------------------------------------------


def test_isolation_names_and_the_consistency_each_promises() -> None:
    assert normalize_isolation("READ COMMITTED") == "read-committed"
    assert normalize_isolation("repeatable_read") == "repeatable-read"
    with pytest.raises(ConfigError, match="choose one of"):
        normalize_isolation("snapshot")
    assert consistency_model({}) == "serializable"
    assert consistency_model({"isolation": "repeatable-read"}) == "snapshot-isolation"
    assert consistency_model({"isolation": "read-committed"}) == "read-committed"
    over = {"isolation": "read-committed", "consistency": "serializable"}
    assert consistency_model(over) == "serializable"
    with pytest.raises(ConfigError, match="consistency"):
        consistency_model({"consistency": "very-consistent"})


def test_the_workload_checks_for_the_chosen_model() -> None:
    from harness.history import History

    w = list_append_workload(ctx({"isolation": "read-committed"}), client=PostgresAppendClient)
    assert "read-committed" in w.description
    # a lost update: allowed by read committed, not by serializable
    ops = []
    for p, mops in ((0, [["r", 1, []], ["append", 1, 1]]), (1, [["r", 1, []], ["append", 1, 2]])):
        ops.append({"process": p, "type": "invoke", "f": "txn",
                    "value": [[f, k, None if f == "r" else v] for f, k, v in mops]})  # fmt: skip
    ops += [{"process": 0, "type": "ok", "f": "txn", "value": [["r", 1, []], ["append", 1, 1]]},
            {"process": 1, "type": "ok", "f": "txn", "value": [["r", 1, []], ["append", 1, 2]]},
            {"process": 2, "type": "invoke", "f": "txn", "value": [["r", 1, None]]},
            {"process": 2, "type": "ok", "f": "txn", "value": [["r", 1, [1, 2]]]}]  # fmt: skip
    h = History.from_ops(ops)
    assert w.check(h, ctx({"isolation": "read-committed"})).valid is True
    r = w.check(h, ctx({"isolation": "read-committed", "consistency": "serializable"}))
    assert r.valid is False and "lost-update" in r.details["anomalies"]


def test_client_validates_transactions() -> None:
    assert _mops({"f": "txn", "value": [["append", 1, 2], ["r", 1, None]]}) == [
        ["append", 1, 2], ["r", 1, None]]  # fmt: skip
    for bad in ({"f": "read", "value": []}, {"f": "txn", "value": [["w", 1, 2]]},
                {"f": "txn", "value": [["append", "k", 2]]},
                {"f": "txn", "value": [["append", 1, True]]}):  # fmt: skip
        with pytest.raises(ConfigError):
            _mops(bad)


# ---- spec defaults and the CLI ----------------------------------------------------------


def test_postgres_defaults_to_one_node_no_faults_and_ten_workers() -> None:
    spec = load_spec(suite="postgres")
    assert (spec.nodes, spec.faults, spec.resolved_concurrency) == (1, (), 10)
    spec = load_spec(suite="postgres", nodes=3, faults="kill", concurrency=4)
    assert (spec.nodes, spec.faults, spec.resolved_concurrency) == (3, ("kill",), 4)
    etcd = load_spec(suite="etcd")
    assert (etcd.nodes, etcd.faults, etcd.resolved_concurrency) == (5, ("partition",), 10)
    assert load_spec().nodes == 5


def test_postgres_defaults_sit_under_a_toml_spec(tmp_path: Path) -> None:
    toml = tmp_path / "t.toml"
    toml.write_text('suite = "postgres"\nnodes = 2\n')
    spec = load_spec(str(toml))
    assert (spec.nodes, spec.faults) == (2, ())


def test_isolation_flag_sets_the_workload_option(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.runner
    from harness.cli import cli

    seen: list[Any] = []

    def fake_run_test(spec: Any, **_kw: Any) -> Any:
        seen.append(spec)
        raise SystemExit(0)

    monkeypatch.setattr(harness.runner, "run_test", fake_run_test)
    res = CliRunner().invoke(cli, ["test", "postgres", "--isolation", "read-committed",
                                   "-o", "key_count=3"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert seen[0].options == {"isolation": "read-committed", "key_count": 3}
    assert seen[0].nodes == 1
    res = CliRunner().invoke(cli, ["test", "postgres", "--isolation", "snapshot"])
    assert res.exit_code != 0 and "snapshot" in res.output


def test_the_suite_is_built_in_and_reads_server_settings() -> None:
    suite = load_suite("postgres")
    assert suite.default_workload == "list-append"
    settings = server_settings({"pg.work_mem": "8MB", "pg": {"deadlock_timeout": "1s"}})
    assert settings == {"deadlock_timeout": "1s", "work_mem": "8MB"}
    db = suite.db(ctx({"pg.work_mem": "8MB"}))
    assert isinstance(db, PostgresDB)
    argv = db.command_line(primary_node(ctx()))
    assert "work_mem=8MB" in argv and "listen_addresses=10.9.9.11" in argv
    with pytest.raises(ConfigError):
        suite.db(ctx({"pg.bad name": "x"}))


# ---- the DB adapter ---------------------------------------------------------------------


def test_only_the_first_node_runs_the_server() -> None:
    c = ctx(nodes=3)
    db = PostgresDB()
    assert primary_node(c).name == "n1"
    assert db.log_files(c, c.nodes[1]) == []
    assert db.start_script(c, c.nodes[2]) == "exit 0\n"


def test_hba_address_defaults_to_the_cluster_subnet_and_is_validated() -> None:
    db = PostgresDB()
    assert "host all all 10.9.9.0/24 trust" in db._init_script(ctx(subnet="10.9.9.0/24"),
                                                               ctx().nodes[0])  # fmt: skip
    assert "host all all samenet trust" in db._init_script(ctx(), ctx().nodes[0])
    with pytest.raises(ConfigError, match="hba_address"):
        PostgresDB(hba_address="0.0.0.0/0 trust\nhost all all")


def test_scripts_are_valid_sh() -> None:
    db = PostgresDB(settings={"work_mem": "8 MB"})
    c = ctx(subnet="10.9.9.0/24")
    n = c.nodes[0]
    for script in (db.start_script(c, n), db._init_script(c, n), db._stop_script(graceful=True),
                   db._signal_script("STOP")):  # fmt: skip
        subprocess.run(["sh", "-n"], input=script, text=True, check=True)
    assert "'work_mem=8 MB'" in db.start_script(c, n)


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[tuple[Path, list[Any], Any]]:
    """Processes that look like a server of ``tmp_path/data``: an executable named
    ``postgres`` (a copy of sleep) running with the data directory as its working
    directory; and one that looks the same but runs elsewhere."""
    data = tmp_path / "pg" / "data"
    data.mkdir(parents=True)
    exe = tmp_path / "bin" / "postgres"
    exe.parent.mkdir()
    shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
    ours = [subprocess.Popen([str(exe), "60"], cwd=data) for _ in range(3)]
    other = subprocess.Popen([str(exe), "60"], cwd=tmp_path)
    procs = [*ours, other]
    try:
        yield tmp_path / "pg", ours, other
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def _sh(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)


def test_kill_finds_exactly_the_processes_of_its_data_directory(stand_in: Any) -> None:
    directory, ours, other = stand_in
    db = PostgresDB(directory=str(directory), bin_dir="/nonexistent", stop_timeout=5)
    found = _sh(db._prelude() + "pg_pids\n").stdout.split()
    assert sorted(map(int, found)) == sorted(p.pid for p in ours)
    (directory / "postgres.pid").write_text(f"{ours[0].pid}\n")
    assert _sh(db._prelude() + 'running && echo "$m"\n').stdout.strip() == str(ours[0].pid)
    r = _sh(db._stop_script(graceful=False))
    assert r.returncode == 0, r.stderr
    for p in ours:
        assert p.wait(timeout=5) == -9
    assert other.poll() is None  # same executable, other directory: untouched
    assert _sh(db._prelude() + "running\n").returncode != 0


def test_pause_and_resume_signal_every_process(stand_in: Any) -> None:
    directory, ours, other = stand_in
    db = PostgresDB(directory=str(directory), bin_dir="/nonexistent")

    def states() -> set[str]:
        return {Path(f"/proc/{p.pid}/stat").read_text().rsplit(") ", 1)[1][0] for p in ours}

    assert _sh(db._signal_script("STOP")).returncode == 0
    deadline = time.monotonic() + 5
    while states() != {"T"} and time.monotonic() < deadline:
        time.sleep(0.01)
    assert states() == {"T"}
    assert Path(f"/proc/{other.pid}/stat").read_text().rsplit(") ", 1)[1][0] != "T"
    assert _sh(db._signal_script("CONT")).returncode == 0
    deadline = time.monotonic() + 5
    while "T" in states() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "T" not in states()


def test_signals_say_when_nothing_runs(tmp_path: Path) -> None:
    db = PostgresDB(directory=str(tmp_path), bin_dir="/nonexistent")
    r = _sh(db._signal_script("STOP"))
    assert r.returncode == 3 and "not running" in r.stderr
    assert _sh(db._stop_script(graceful=True)).returncode == 0


def test_binaries_are_found_without_naming_a_version() -> None:
    if not any(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        pytest.skip("PostgreSQL is not installed")
    out = _sh(PostgresDB()._prelude() + 'echo "$PGBIN"\n').stdout.strip()
    assert os.path.exists(f"{out}/postgres") and out.startswith("/usr/lib/postgresql/")
