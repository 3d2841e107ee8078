"""The etcd suite on a real 3-node local cluster: setup, linearizable ops, kill and restart,
pause and resume, an unsafe mode the checker must catch, and a teardown that leaves nothing.

Drives :class:`EtcdDB` over SSH and :class:`EtcdClient` with asyncio directly (no runner),
records what happened as a history and checks it.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from checkers import set as set_checker
from clusters import Cluster, ClusterSpec, get_provider
from clusters.base import Node
from harness.api import Op
from harness.api import TestContext as Ctx  # (a `Test*` name would be collected)
from harness.clients.etcd import EtcdClient, EtcdSetClient
from harness.control import Remotes, connect_all
from harness.dbs.etcd import DEFAULT_BINARY, EtcdDB
from harness.errors import ClusterError
from harness.history import History
from harness.workloads.register import RegisterGenerator, check_register

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(
        not os.path.exists(DEFAULT_BINARY), reason=f"{DEFAULT_BINARY} missing (etcd-server)"
    ),
    pytest.mark.skipif(shutil.which("iptables") is None, reason="iptables missing"),
]

SUBNET = "10.77.61.0/24"
PREFIX = "cet-"
#: Seconds a member may take to become healthy again after a restart or resume.
REJOIN_TIMEOUT = 20.0
#: Seconds to keep retrying a write on the majority while a new leader is elected.
MAJORITY_WRITE_TIMEOUT = 15.0

T = TypeVar("T")


@dataclass
class Env:
    cluster: Cluster
    ctx: Ctx
    db: EtcdDB

    def node(self, name: str) -> Node:
        return self.cluster.node(name)

    def netns(self, node: str) -> str:
        return str(self.cluster.extra.get("netns", {}).get(node, f"{PREFIX}{node}"))


def _etcd_pids(env: Env) -> list[int]:
    """PIDs of etcd processes inside this cluster's namespaces (seen from the host)."""
    pids = []
    for n in env.cluster.nodes:
        out = subprocess.run(
            ["ip", "netns", "pids", env.netns(n.name)], capture_output=True, text=True
        ).stdout
        for p in out.split():
            try:
                if Path(f"/proc/{p}/comm").read_text().strip() == "etcd":
                    pids.append(int(p))
            except FileNotFoundError:
                pass
    return pids


def _with_remotes(env: Env, fn: Callable[[Remotes], Awaitable[T]]) -> T:
    """Run ``fn`` with fresh connections to every node, in a new event loop."""

    async def go() -> T:
        remotes = await connect_all(env.cluster.nodes)
        try:
            return await fn(remotes)
        finally:
            await remotes.close()

    return asyncio.run(go())


def _raise_any(results: dict[str, Any]) -> None:
    errors = {k: v for k, v in results.items() if isinstance(v, BaseException)}
    if errors:
        raise next(iter(errors.values()))


def _teardown_all(env: Env) -> None:
    async def go(remotes: Remotes) -> None:
        _raise_any(await remotes.on_nodes(lambda r: env.db.teardown(env.ctx, env.node(r.name), r)))

    _with_remotes(env, go)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    state = tmp_path_factory.mktemp("etcd-cluster")
    provider = get_provider("local")
    spec = ClusterSpec(
        provider="local",
        nodes=3,
        name="etcd-it",
        state_dir=str(state),
        options={"subnet": SUBNET, "prefix": PREFIX, "bridge": f"{PREFIX}br0"},
    )
    cluster = provider.up(spec)
    try:
        ctx = Ctx(
            name="etcd integration",
            cluster=cluster,
            options={},
            rng=random.Random(61),
            run_dir=Path(state),
            concurrency=6,
            time_limit=60.0,
        )
        e = Env(cluster=cluster, ctx=ctx, db=EtcdDB())

        async def setup(remotes: Remotes) -> None:
            _raise_any(await remotes.on_nodes(lambda r: e.db.setup(ctx, cluster.node(r.name), r)))

        try:
            _with_remotes(e, setup)
            yield e
        finally:
            for n in cluster.nodes:  # never leave a partition behind
                subprocess.run(["ip", "netns", "exec", e.netns(n.name), "iptables", "-F"])
            try:
                _teardown_all(e)
            finally:
                leftovers = _etcd_pids(e)
    finally:
        provider.down(state)
    assert not leftovers, f"etcd processes left after teardown: {leftovers}"


# ---- recording a history ---------------------------------------------------------------


@dataclass
class Recorder:
    """Records invocations and completions, in real-time order, as history op dicts."""

    ops: list[dict[str, Any]] = field(default_factory=list)
    t0: int = field(default_factory=time.monotonic_ns)

    async def run(self, process: int, node: str, client: EtcdClient, ctx: Ctx,
                  op: Op) -> Op:  # fmt: skip
        inv = {"process": process, "f": op["f"], "key": op.get("key"), "node": node}
        self.ops.append({**inv, "type": "invoke", "value": op.get("value"),
                         "time": time.monotonic_ns() - self.t0})  # fmt: skip
        done = await client.invoke(ctx, op)
        value = done.get("value") if op["f"] == "read" else op.get("value")
        rec = {**inv, "type": done["type"], "value": value,
               "time": time.monotonic_ns() - self.t0}  # fmt: skip
        if done.get("error") is not None:
            rec["error"] = done["error"]
        self.ops.append(rec)
        return done

    def history(self) -> History:
        return History.from_ops(self.ops)


async def _clients(env: Env, nodes: list[str], **kw: Any) -> list[EtcdClient]:
    clients = []
    for name in nodes:
        c = EtcdClient(**kw)
        await c.open(env.ctx, env.node(name))
        clients.append(c)
    return clients


async def _close(env: Env, clients: list[EtcdClient]) -> None:
    for c in clients:
        await c.close(env.ctx)


async def _write_until_ok(rec: Recorder, proc: list[int], node: str, client: EtcdClient,
                          ctx: Ctx, key: str, value: int) -> None:  # fmt: skip
    """Write through ``client`` until it is acknowledged (a new process after each info)."""
    deadline = time.monotonic() + MAJORITY_WRITE_TIMEOUT
    while True:
        done = await rec.run(proc[0], node, client, ctx, {"f": "write", "key": key,
                                                          "value": value})  # fmt: skip
        if done["type"] == "ok":
            return
        if done["type"] == "info":
            proc[0] += 100
        assert time.monotonic() < deadline, f"write through {node} never succeeded: {done}"
        await asyncio.sleep(0.1)


# ---- tests ---------------------------------------------------------------------------------


def test_setup_runs_one_member_per_node_with_pre_vote(env: Env) -> None:
    async def go(remotes: Remotes) -> dict[str, Any]:
        return {
            name: (await env.db.pid(remotes[name]), await remotes[name].run(
                "cat /proc/$(cat /opt/etcd/etcd.pid)/cmdline | tr '\\0' ' '"))
            for name in remotes
        }  # fmt: skip

    found = _with_remotes(env, go)
    assert sorted(found) == ["n1", "n2", "n3"]
    for name, (pid, cmd) in found.items():
        assert pid is not None, name
        assert f"--name {name} " in cmd.stdout and "--pre-vote=true" in cmd.stdout
        assert "--initial-cluster-state new" in cmd.stdout
        assert "--initial-cluster-token clew-etcd-integration" in cmd.stdout
    assert len(_etcd_pids(env)) == 3


def test_a_member_that_cannot_start_fails_setup_with_its_log(env: Env) -> None:
    bad = EtcdDB(
        directory="/opt/etcd-bad",
        extra_args=("--no-such-flag",),
        client_port=12379,  # the real member is on 2379
        peer_port=12380,
        ready_timeout=10,
    )

    async def go(remotes: Remotes) -> None:
        r = remotes["n1"]
        try:
            with pytest.raises(ClusterError) as e:
                await bad.setup(env.ctx, env.node("n1"), r)
            message = str(e.value)
            assert "n1" in message and "no-such-flag" in message, message
            assert "/opt/etcd-bad/etcd.log" in message
        finally:
            await bad.teardown(env.ctx, env.node("n1"), r)
            await r.run(["rm", "-rf", "/opt/etcd-bad"])

    _with_remotes(env, go)


def test_concurrent_register_ops_are_linearizable(env: Env) -> None:
    names = ["n1", "n2", "n3", "n1", "n2", "n3"]
    gen = RegisterGenerator(random.Random(5), keys_at_once=3, ops_per_key=100)
    rec = Recorder()

    async def worker(w: int, client: EtcdClient, budget: list[int]) -> None:
        process = w
        while budget[0] > 0:
            budget[0] -= 1
            done = await rec.run(process, names[w], client, env.ctx, gen())
            if done["type"] == "info":
                process += len(names)

    async def go() -> None:
        clients = await _clients(env, names)
        try:
            budget = [300]
            await asyncio.gather(*(worker(w, c, budget) for w, c in enumerate(clients)))
        finally:
            await _close(env, clients)

    asyncio.run(go())
    h = rec.history()
    counts = h.counts()
    assert counts["invoke"] == 300
    assert counts["ok"] >= 200, counts  # reads, writes and successful cas
    assert counts["info"] == 0, counts  # a healthy cluster: no timeouts
    kinds = {(op["f"], op["type"]) for op in rec.ops}
    assert {("read", "ok"), ("write", "ok"), ("cas", "ok"), ("cas", "fail")} <= kinds
    result = check_register(h)
    assert result.valid is True, result


def test_a_killed_member_restarts_with_its_data(env: Env) -> None:
    async def go(remotes: Remotes) -> None:
        n1, n3 = await _clients(env, ["n1", "n3"])
        try:
            assert (await n3.invoke(env.ctx, {"f": "write", "key": "d", "value": 1}))[
                "type"
            ] == "ok"
            old = await env.db.pid(remotes["n3"])
            await env.db.kill(env.ctx, env.node("n3"), remotes["n3"])
            assert await env.db.pid(remotes["n3"]) is None
            assert old not in _etcd_pids(env)
            # The majority goes on; the dead member's client is refused: a definite fail.
            await _write_until_ok(Recorder(), [0], "n1", n1, env.ctx, "d", 2)
            down = await n3.invoke(env.ctx, {"f": "write", "key": "d", "value": 3})
            assert down["type"] == "fail" and "connect" in down["error"], down
            await env.db.start(env.ctx, env.node("n3"), remotes["n3"])
            await env.db.wait_healthy(env.ctx, env.node("n3"), remotes["n3"],
                                      within=REJOIN_TIMEOUT)  # fmt: skip
            # Read only once it is healthy: in the instant of an exec (setsid, nohup, etcd)
            # the kernel shows an empty command line.
            cmd = await remotes["n3"].run("tr '\\0' ' ' </proc/$(cat /opt/etcd/etcd.pid)/cmdline")
            assert "--initial-cluster-state existing" in cmd.stdout
            read = await n3.invoke(env.ctx, {"f": "read", "key": "d"})
            assert read == {"type": "ok", "value": 2}
        finally:
            await _close(env, [n1, n3])

    _with_remotes(env, go)


def test_a_paused_member_times_out_then_resumes(env: Env) -> None:
    async def go(remotes: Remotes) -> None:
        n1, n2 = await _clients(env, ["n1", "n2"])
        r2 = remotes["n2"]
        try:
            await env.db.pause(env.ctx, env.node("n2"), r2)
            pid = await env.db.pid(r2)
            stat = await r2.run(["cat", f"/proc/{pid}/stat"])
            assert stat.stdout.rsplit(")", 1)[1].split()[0] == "T"
            await _write_until_ok(Recorder(), [0], "n1", n1, env.ctx, "p", 1)
            # A stopped process still accepts TCP (the kernel does): writes are unknown.
            stuck = await n2.invoke(env.ctx, {"f": "write", "key": "p", "value": 2})
            assert stuck["type"] == "info" and "timeout" in stuck["error"], stuck
            stuck_read = await n2.invoke(env.ctx, {"f": "read", "key": "p"})
            assert stuck_read["type"] == "fail", stuck_read
            await env.db.resume(env.ctx, env.node("n2"), r2)
            await env.db.wait_healthy(env.ctx, env.node("n2"), r2, within=REJOIN_TIMEOUT)
            read = await n2.invoke(env.ctx, {"f": "read", "key": "p"})
            assert read["type"] == "ok" and read["value"] in (1, 2), read
        finally:
            await _close(env, [n1, n2])

    _with_remotes(env, go)


def _iptables(env: Env, node: str, *args: str) -> None:
    subprocess.run(["ip", "netns", "exec", env.netns(node), "iptables", *args], check=True)


def test_serializable_reads_on_an_isolated_member_are_caught(env: Env) -> None:
    rec = Recorder()
    key = "stale"

    async def go(remotes: Remotes) -> None:
        (n2,) = await _clients(env, ["n2"])
        (n1s,) = await _clients(env, ["n1"], serializable_reads=True)
        try:
            await _write_until_ok(rec, [0], "n2", n2, env.ctx, key, 1)
            # Wait until n1 has applied it (a serializable read is local).
            deadline = time.monotonic() + 5
            while (await n1s.invoke(env.ctx, {"f": "read", "key": key})).get("value") != 1:
                assert time.monotonic() < deadline, "n1 never applied the first write"
                await asyncio.sleep(0.05)
            for peer in ("n2", "n3"):  # cut n1 off from its peers (not from us)
                ip = env.node(peer).peer_address
                _iptables(env, "n1", "-A", "INPUT", "-s", ip, "-j", "DROP")
                _iptables(env, "n1", "-A", "OUTPUT", "-d", ip, "-j", "DROP")
            try:
                await _write_until_ok(rec, [1], "n2", n2, env.ctx, key, 2)
                await rec.run(2, "n1", n1s, env.ctx, {"f": "read", "key": key})
            finally:
                _iptables(env, "n1", "-F")
            await env.db.wait_healthy(env.ctx, env.node("n1"), remotes["n1"],
                                      within=REJOIN_TIMEOUT)  # fmt: skip
        finally:
            await _close(env, [n2, n1s])

    _with_remotes(env, go)
    reads = [op for op in rec.ops if op["f"] == "read" and op["type"] == "ok"]
    assert reads and reads[-1]["value"] == 1, rec.ops  # the stale value, served locally
    result = check_register(rec.history())
    assert result.valid is False, result
    assert result.details.get("key") == key or key in str(result.to_json())


def test_set_adds_are_all_in_the_final_reads(env: Env) -> None:
    ops: list[dict[str, Any]] = []

    async def run(p: int, c: EtcdSetClient, op: Op) -> None:
        ops.append({"type": "invoke", "process": p, **op})
        done = await c.invoke(env.ctx, op)
        ops.append({"type": done["type"], "process": p, "f": op["f"],
                    "value": done.get("value", op.get("value"))})  # fmt: skip

    async def go() -> None:
        clients = [EtcdSetClient() for _ in range(3)]
        for c, name in zip(clients, ["n1", "n2", "n3"], strict=True):
            await c.open(env.ctx, env.node(name))
        try:
            for batch in range(20):
                await asyncio.gather(
                    *(
                        run(w, c, {"f": "add", "value": batch * 3 + w})
                        for w, c in enumerate(clients)
                    )
                )
            await asyncio.gather(*(run(w, c, {"f": "read"}) for w, c in enumerate(clients)))
        finally:
            for c in clients:
                await c.close(env.ctx)

    asyncio.run(go())
    reads = [op["value"] for op in ops if op["f"] == "read" and op["type"] == "ok"]
    assert reads == [list(range(60))] * 3
    result = set_checker.check(History.from_ops(ops))
    assert result.valid is True and result.details["ok_count"] == 60, result


def test_teardown_stops_every_member_and_removes_its_data(env: Env) -> None:
    _teardown_all(env)
    assert _etcd_pids(env) == []

    async def go(remotes: Remotes) -> dict[str, Any]:
        return await remotes.run_all(
            ["sh", "-c", "ls -A /opt/etcd; test -e /opt/etcd/data && echo DATA || true"]
        )

    for name, r in _with_remotes(env, go).items():
        assert not isinstance(r, BaseException), r
        assert "DATA" not in r.stdout and "etcd.pid" not in r.stdout, (name, r.stdout)
        assert "etcd.log" in r.stdout  # kept for download
