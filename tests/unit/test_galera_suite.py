"""The Galera suite's own logic: the clients' fail/info mapping (against a scripted
stand-in for an aiomysql connection: the real servers are in
tests/integration/test_galera.py), the node config, server settings from options, the
nodes of lost updates, and the rw-register generator."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pymysql
import pytest

from checkers.result import Result
from clusters.base import Cluster, Node
from harness.api import TestContext
from harness.clients.galera import GaleraAppendClient, GaleraBankClient, parse_list
from harness.dbs.galera import GaleraDB, sst_donor
from harness.errors import ConfigError
from harness.history import History
from harness.suites import load_suite
from harness.suites.galera import lost_updates, server_settings
from harness.workloads.rw_register import RwRegisterGenerator
from nemeses.abilities import ABILITIES, lacking


def _ctx(options: dict[str, Any] | None = None) -> TestContext:
    nodes = tuple(Node(name=f"n{i}", host=f"10.9.9.{10 + i}") for i in (1, 2, 3))
    cluster = Cluster(provider="local", name="g", nodes=nodes, state_dir=".")
    return TestContext(name="g", cluster=cluster,
                       options=options or {}, rng=random.Random(1), run_dir=Path("."),
                       concurrency=3, time_limit=10.0)  # fmt: skip


class FakeCursor:
    def __init__(self, conn: FakeConn) -> None:
        self.conn = conn
        self.row: Any = None

    async def __aenter__(self) -> FakeCursor:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    async def execute(self, sql: str, args: Any = None) -> None:
        self.conn.statements.append(sql)
        if self.conn.statement_error is not None:
            raise self.conn.statement_error
        self.row = ("1,2",) if sql.startswith("SELECT v") else (50,)

    async def fetchone(self) -> Any:
        return self.row


class FakeConn:
    """A stand-in for aiomysql's connection: records statements, raises what it is told."""

    def __init__(self, *, statement_error: BaseException | None = None,
                 commit_error: BaseException | None = None) -> None:  # fmt: skip
        self.statement_error = statement_error
        self.commit_error = commit_error
        self.statements: list[str] = []
        self.closed = False
        self.rolled_back = False

    async def begin(self) -> None:
        self.statements.append("BEGIN")

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    async def commit(self) -> None:
        if self.commit_error is not None:
            raise self.commit_error

    async def rollback(self) -> None:
        self.rolled_back = True

    def close(self) -> None:
        self.closed = True


def _run(conn: FakeConn, op: dict[str, Any], cls: type = GaleraAppendClient,
         **kw: Any) -> dict[str, Any]:  # fmt: skip
    client = cls(**kw)

    async def connection() -> FakeConn:
        return conn

    client._connection = connection
    client._conn = conn
    return asyncio.run(client.invoke(_ctx(), op))


TXN = {"f": "txn", "value": [["append", 1, 3], ["r", 1, None]]}


def test_an_ok_transaction_reads_the_list() -> None:
    done = _run(FakeConn(), TXN)
    assert done == {"type": "ok", "value": [["append", 1, 3], ["r", 1, [1, 2]]]}


def test_a_certification_conflict_is_a_fail_before_or_at_commit() -> None:
    deadlock = pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
    conn = FakeConn(statement_error=deadlock)
    assert _run(conn, TXN)["type"] == "fail" and conn.rolled_back
    conn = FakeConn(commit_error=deadlock)
    done = _run(conn, TXN)
    assert done["type"] == "fail" and done["error"].startswith("commit: 1213")


def test_a_lost_connection_at_commit_is_info_and_before_it_fail() -> None:
    lost = pymysql.err.OperationalError(2013, "Lost connection to server during query")
    conn = FakeConn(commit_error=lost)
    done = _run(conn, TXN)
    assert done["type"] == "info" and "2013" in done["error"] and conn.closed
    conn = FakeConn(statement_error=lost)
    assert _run(conn, TXN)["type"] == "fail" and conn.closed


def test_a_commit_timeout_is_info() -> None:
    class Slow(FakeConn):
        async def commit(self) -> None:
            await asyncio.sleep(10)

    done = _run(Slow(), TXN, commit_timeout=0.05)
    assert done == {"type": "info", "error": "commit: timeout"}


def test_a_transfer_from_a_poor_account_fails_without_writing() -> None:
    conn = FakeConn()
    op = {"f": "transfer", "value": {"from": 0, "to": 1, "amount": 60}}
    done = _run(conn, op, GaleraBankClient)
    assert done == {"type": "fail", "error": "insufficient"} and conn.rolled_back
    assert not any(s.startswith("UPDATE") for s in conn.statements)


def test_bad_ops_and_options_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        _run(FakeConn(), {"f": "txn", "value": [["w", 1, 2]]})
    with pytest.raises(ConfigError):
        GaleraAppendClient(isolation="snapshot")
    assert parse_list(None) == [] and parse_list("3,1") == [3, 1]


def test_the_config_names_every_member_and_the_options_reach_it() -> None:
    ctx = _ctx({"mysqld.innodb_flush_log_at_trx_commit": 1, "mysqld": {"wsrep_sync_wait": 1}})
    db = GaleraDB(settings=server_settings(ctx.options))
    text = db.config(ctx, ctx.nodes[1])
    assert "wsrep_cluster_address = gcomm://10.9.9.11,10.9.9.12,10.9.9.13" in text
    assert "wsrep_node_address = 10.9.9.12" in text and "bind-address = 10.9.9.12" in text
    assert "innodb_flush_log_at_trx_commit = 1" in text and "wsrep_sync_wait = 1" in text
    assert "user = mysql" in text and "wsrep_sst_donor" not in text
    assert [sst_donor(ctx, n) for n in ctx.nodes] == [None, "n1", "n1"]
    assert "--wsrep-sst-donor" not in db.start_script(ctx, ctx.nodes[1])


def test_the_adapter_has_the_abilities_faults_need() -> None:
    db = load_suite("galera").db(_ctx())
    assert lacking(db, list(ABILITIES.values())) == []


def test_lost_updates_name_the_clients_nodes() -> None:
    ops = [
        {"index": 0, "type": "invoke", "process": 0, "f": "txn", "time": 1, "node": "n1"},
        {"index": 1, "type": "invoke", "process": 1, "f": "txn", "time": 2, "node": "n2"},
        {"index": 2, "type": "ok", "process": 0, "f": "txn", "time": 3, "node": "n1"},
        {"index": 3, "type": "ok", "process": 1, "f": "txn", "time": 4, "node": "n2"},
    ]
    rows = [{"key": 5, "value": [1], "ops": [2, 3]}]
    result = Result(valid=False, checker="txn", cause="x",
                    details={"anomaly_details": {"lost-update": rows}})  # fmt: skip
    found = lost_updates(History.from_ops(ops), result)
    assert found == [{"key": 5, "read": [1], "nodes": ["n1", "n2"]}]


def test_rw_register_transactions_write_each_value_once() -> None:
    gen = RwRegisterGenerator(random.Random(3), key_count=2, max_writes_per_key=3)
    writes = [(k, v) for _ in range(50) for f, k, v in gen()["value"] if f == "w"]
    assert writes and len(writes) == len(set(writes))
    assert {f for _ in range(20) for f, _k, _v in gen()["value"]} <= {"w", "r"}


def test_a_state_transfer_tool_missing_on_a_node_is_named_before_anything_starts() -> None:
    """`-o sst_method=mariabackup` without mariadb-backup: the joiners' transfers failed
    ("Unrecoverable" in their logs) while setup waited out its 120 s limit."""
    from harness.control.remote import CommandResult
    from harness.errors import ClusterError

    class NoBackupTool:
        def __init__(self) -> None:
            self.commands: list[str] = []

        async def run(self, command: Any, **kw: Any) -> CommandResult:
            self.commands.append(str(command))
            missing = command == "command -v mariadb-backup"
            return CommandResult(node="n2", command=str(command), exit_status=int(missing),
                                 stdout="", stderr="", seconds=0.0)  # fmt: skip

    ctx = _ctx()
    db = GaleraDB(sst_method="mariabackup")
    remote = NoBackupTool()
    with pytest.raises(ClusterError, match="sst_method=mariabackup needs mariadb-backup on "
                                           "every node, and n2 has none"):  # fmt: skip
        asyncio.run(db.setup(ctx, ctx.nodes[1], remote))  # type: ignore[arg-type]
    assert remote.commands == ["command -v mariadb-backup"]  # nothing stopped or started


def test_a_mariadbd_that_exited_while_starting_fails_at_once() -> None:
    """The check for a server that exited never ran (the client's failure is a state
    ``{"error": ...}``, never an empty one): setup waited its whole time limit."""
    import time

    from harness.control.remote import CommandResult
    from harness.errors import ClusterError

    class DeadServer:
        name = "n2"

        async def run(self, cmd: Any, **_kw: Any) -> CommandResult:
            text = cmd if isinstance(cmd, str) else " ".join(cmd)
            if text.startswith("tail"):
                out, code, err = "[ERROR] unknown variable 'bogus=1'\n", 0, ""
            elif "mariadb" in text and "SHOW GLOBAL STATUS" in text:
                out, code, err = "", 1, "ERROR 2002 (HY000): Can't connect to local server"
            else:  # the pid file's process is not alive
                out, code, err = "", 1, ""
            return CommandResult(node="n2", command=text, exit_status=code, stdout=out,
                                 stderr=err, seconds=0.0)  # fmt: skip

    ctx = _ctx()
    db = GaleraDB()
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match="mariadbd exited while starting") as e:
        asyncio.run(db._wait(ctx.nodes[1], DeadServer(), within=5.0, size=3))  # type: ignore[arg-type]
    assert "unknown variable 'bogus=1'" in str(e.value)
    assert time.monotonic() - t0 < 2.0
