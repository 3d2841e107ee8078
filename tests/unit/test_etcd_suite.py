"""The built-in etcd suite (harness/suites/etcd.py): what its options turn into, without a
cluster. Its runs against real etcd are in tests/integration (test_clew_test.py,
test_cli_runs.py)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from clusters.base import Cluster, Node
from harness.api import Suite, TestContext
from harness.clients.etcd import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    EtcdClient,
    EtcdSetClient,
)
from harness.dbs.etcd import DEFAULT_BINARY, EtcdDB
from harness.errors import ConfigError
from harness.suites import etcd, load_suite
from harness.workloads.register import RegisterGenerator

NODES = tuple(Node(name=f"n{i}", host=f"10.0.0.{i}") for i in range(1, 4))


def ctx(concurrency: int = 6, **options: Any) -> TestContext:
    cluster = Cluster(provider="local", name="unit", nodes=NODES, state_dir="")
    return TestContext(name="etcd", cluster=cluster, options=options, rng=random.Random(1),
                       run_dir=Path("/nonexistent"), concurrency=concurrency,
                       time_limit=10)  # fmt: skip


def test_clew_test_etcd_loads_this_module() -> None:
    assert isinstance(etcd.SUITE, Suite)
    assert load_suite("etcd") is etcd.SUITE
    assert etcd.SUITE.name == "etcd" and etcd.SUITE.default_workload == "register"
    assert {"register", "single-register", "set"} <= set(etcd.SUITE.workloads)


def test_the_db_takes_its_binary_and_pre_vote_from_the_options() -> None:
    default = etcd.SUITE.db(ctx())
    assert isinstance(default, EtcdDB)
    assert (default.binary, default.pre_vote) == (DEFAULT_BINARY, True)
    custom = etcd.SUITE.db(ctx(binary="/opt/etcd/bin/etcd", pre_vote="false"))
    assert isinstance(custom, EtcdDB)
    assert (custom.binary, custom.pre_vote) == ("/opt/etcd/bin/etcd", False)


def test_register_clients_carry_the_timeouts_and_the_unsafe_mode() -> None:
    workload = etcd.SUITE.workloads["register"](ctx())
    assert workload.name == "register"
    client = workload.client()
    assert isinstance(client, EtcdClient)
    assert (client.connect_timeout, client.read_timeout) == (
        DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)  # fmt: skip
    assert client.serializable_reads is False
    unsafe = etcd.SUITE.workloads["register"](
        ctx(serializable_reads="true", connect_timeout=2, read_timeout="3.5")
    ).client()
    assert isinstance(unsafe, EtcdClient)
    assert (unsafe.connect_timeout, unsafe.read_timeout, unsafe.serializable_reads) == (
        2.0, 3.5, True)  # fmt: skip
    assert workload.client() is not client  # a fresh client per worker


def test_register_spreads_workers_over_keys_and_single_register_uses_one() -> None:
    c = ctx(concurrency=6)
    many = etcd.SUITE.workloads["register"](c).generator(c)
    assert isinstance(many, RegisterGenerator) and len(many.active) == 2  # 6 workers, 3 a key
    single = etcd.SUITE.workloads["single-register"](c)
    assert single.name == "single-register"
    one = single.generator(c)
    assert isinstance(one, RegisterGenerator) and one.active == [0]
    keys = {one()["key"] for _ in range(1000)}
    assert keys == {0}  # never retired: the whole run on one key


def test_set_uses_the_set_client() -> None:
    workload = etcd.SUITE.workloads["set"](ctx(read_timeout=4))
    client = workload.client()
    assert workload.name == "set" and isinstance(client, EtcdSetClient)
    assert client.read_timeout == 4.0


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"read_timeout": "soon"}, "read_timeout"),
        ({"serializable_reads": "perhaps"}, "serializable_reads"),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        etcd.SUITE.workloads["register"](ctx(**options)).client()


def _healthy_etcd_port() -> tuple[int, Any]:
    """A local HTTP server answering ``GET /health`` as a healthy etcd member does."""
    import http.server
    import threading

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"health":"true","reason":""}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1], server


def test_a_healthy_port_whose_process_is_gone_is_said_so_when_the_wait_ends() -> None:
    """Another process answering on the member's port, with ours gone: says so (the last
    probe's outcome was overwritten by "HTTP 200: {"health":"true"…}", which reads as
    healthy, and the message of a member that exited did not give it)."""
    import asyncio

    from harness.errors import ClusterError

    class Gone(EtcdDB):
        async def pid(self, remote: Any) -> None:
            return None

        async def log_tail(self, remote: Any, lines: int = 0) -> str:
            return "(log)"

    port, server = _healthy_etcd_port()
    db = Gone(client_port=port)
    node = Node(name="n1", host="127.0.0.1")
    try:
        with pytest.raises(ClusterError) as e:
            asyncio.run(db.wait_healthy(ctx(), node, object(), within=0.05))  # type: ignore[arg-type]
    finally:
        server.shutdown()
        server.server_close()
    assert (
        "is not running: it exited after starting (the port answers, but the process in "
        "the pidfile is gone)" in str(e.value)
    )
