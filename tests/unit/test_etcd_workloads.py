"""The register/set workloads' generators and the register checker's cas filter."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, cast

import pytest

from harness.errors import ConfigError
from harness.history import History
from harness.workloads import option_bool, option_float, option_int
from harness.workloads.register import (
    CAS_MISMATCH,
    AddGenerator,
    RegisterGenerator,
    check_register,
    drop_unobserved_cas_failures,
    register_phases,
)


def test_register_generator_keeps_a_window_of_keys_and_retires_them() -> None:
    g = RegisterGenerator(random.Random(7), keys_at_once=3, ops_per_key=10)
    ops = [g() for _ in range(300)]
    per_key = Counter(op["key"] for op in ops)
    retired = set(per_key) - set(g.active)
    assert all(per_key[k] == 10 for k in retired) and len(retired) >= 27
    assert all(per_key[k] < 10 for k in g.active)
    assert max(per_key) - min(per_key) < 3 + len(retired)  # keys are used in order
    assert {op["f"] for op in ops} == {"read", "write", "cas"}
    for op in ops:
        if op["f"] == "write":
            assert 0 <= op["value"] < 5
        if op["f"] == "cas":
            assert len(op["value"]) == 2


def test_register_generator_is_reproducible_from_the_seed() -> None:
    a = RegisterGenerator(random.Random(1), keys_at_once=2, ops_per_key=5)
    b = RegisterGenerator(random.Random(1), keys_at_once=2, ops_per_key=5)
    assert [a() for _ in range(50)] == [b() for _ in range(50)]


def _failed(op: dict[str, object], error: str = "connect-refused") -> dict[str, object]:
    return {**op, "type": "fail", "error": error}


def test_a_failed_op_is_given_back_to_its_keys_budget() -> None:
    g = RegisterGenerator(random.Random(3), keys_at_once=1, ops_per_key=4)
    for op in [g() for _ in range(3)]:
        g.update(None, _failed(op))
    # All three given back: four more ops on key 0 (the fourth retires it), then key 1.
    assert [g()["key"] for _ in range(5)] == [0, 0, 0, 0, 1]


def test_ops_that_changed_or_observed_the_key_stay_counted() -> None:
    g = RegisterGenerator(random.Random(3), keys_at_once=1, ops_per_key=4)
    ops = [g() for _ in range(3)]
    g.update(None, {**ops[0], "type": "ok"})
    g.update(None, {**ops[1], "type": "info", "error": "timeout"})
    g.update(None, _failed(ops[2], error=CAS_MISMATCH))  # the comparison observed the value
    assert [g()["key"] for _ in range(2)] == [0, 1]


def test_a_late_failure_of_a_retired_key_changes_nothing() -> None:
    g = RegisterGenerator(random.Random(3), keys_at_once=1, ops_per_key=2)
    first = [g() for _ in range(2)]  # key 0 retired
    g.update(None, _failed(first[0]))
    assert g.used == {1: 0} and g.active == [1]


def test_while_every_op_fails_no_key_is_retired_under_the_interpreter() -> None:
    # The interpreter tells the generator of each completion through the combinators.
    from harness.generator import clients, limit
    from tests.unit.test_interpreter import run

    def keys(answer: dict[str, object]) -> set[object]:
        g = RegisterGenerator(random.Random(5), keys_at_once=2, ops_per_key=10)
        journal, _, _ = run(clients(limit(200, g)), n=4, answer=lambda _o: dict(answer),
                            latency=0.001)  # fmt: skip
        return {o["key"] for o in journal}

    assert keys({"type": "fail", "error": "connect-refused"}) == {0, 1}
    assert len(keys({"type": "ok"})) >= 15


def test_the_final_phase_reads_each_key_in_use_when_the_load_ended() -> None:
    # As a run's plan does: both phases are built before the load runs.
    from harness.generator import clients, limit, phases
    from tests.unit.test_interpreter import run

    generator, final = register_phases(
        lambda c: RegisterGenerator(random.Random(2), keys_at_once=3, ops_per_key=4)
    )
    ctx = cast("Any", None)
    assert final(ctx) is None  # no run yet: nothing to read
    g = generator(ctx)
    plan = phases(clients(limit(40, g)), clients(final(ctx)))
    journal, _, _ = run(plan, n=3, latency=0.001)
    invoked = [o for o in journal if o["type"] == "invoke"]
    assert len(invoked) == 43
    assert [o["f"] for o in invoked[40:]] == ["read"] * 3
    assert sorted(o["key"] for o in invoked[40:]) == sorted(g.active)
    assert min(g.active) > 2  # the keys of the load's end, not of its start


def test_add_generator_adds_each_element_once() -> None:
    g = AddGenerator()
    assert [g()["value"] for _ in range(5)] == [0, 1, 2, 3, 4]


def _h(rows: list[dict[str, object]]) -> History:
    return History.from_ops([{"key": 1, **r} for r in rows])


def test_a_refused_cas_observes_nothing_and_is_dropped() -> None:
    # The register holds 1; a cas [1, 2] that never reached etcd failed. Read as an
    # observation ("the value was not 1") it would make the history invalid.
    rows: list[dict[str, object]] = [
        {"type": "invoke", "process": 0, "f": "write", "value": 1},
        {"type": "ok", "process": 0, "f": "write", "value": 1},
        {"type": "invoke", "process": 1, "f": "cas", "value": [1, 2]},
        {"type": "fail", "process": 1, "f": "cas", "value": [1, 2], "error": "connect-refused"},
        {"type": "invoke", "process": 0, "f": "read", "value": None},
        {"type": "ok", "process": 0, "f": "read", "value": 1},
    ]
    filtered = drop_unobserved_cas_failures(_h(rows))
    assert len(filtered) == 4
    assert [op.index for op in filtered] == [0, 1, 4, 5]
    assert check_register(_h(rows)).valid is True
    # A failure that does not say why observed nothing either.
    del rows[3]["error"]
    assert len(drop_unobserved_cas_failures(_h(rows))) == 4
    # The same failure as a mismatch is an observation, and a false one here.
    rows[3]["error"] = CAS_MISMATCH
    assert len(drop_unobserved_cas_failures(_h(rows))) == 6
    assert check_register(_h(rows)).valid is False


def test_a_stale_read_is_caught() -> None:
    rows: list[dict[str, object]] = [
        {"type": "invoke", "process": 0, "f": "write", "value": 1},
        {"type": "ok", "process": 0, "f": "write", "value": 1},
        {"type": "invoke", "process": 0, "f": "write", "value": 2},
        {"type": "ok", "process": 0, "f": "write", "value": 2},
        {"type": "invoke", "process": 1, "f": "read", "value": None},
        {"type": "ok", "process": 1, "f": "read", "value": 1},
    ]
    assert check_register(_h(rows)).valid is False


def test_options_accept_strings_and_typed_values() -> None:
    assert option_bool({"x": "false"}, "x", True) is False
    assert option_bool({"x": True}, "x", False) is True
    assert option_bool({}, "x", True) is True
    assert option_float({"t": "0.25"}, "t", 1.0) == 0.25
    assert option_int({"n": "4"}, "n", 1) == 4
    with pytest.raises(ConfigError, match="'x'"):
        option_bool({"x": "maybe"}, "x", True)
    with pytest.raises(ConfigError, match="positive"):
        option_float({"t": "0"}, "t", 1.0)


def test_an_acquire_cut_short_by_its_deadline_stops_renewing_and_revokes_its_lease() -> None:
    """The lease of a cancelled acquire was renewed for the rest of the run: if etcd had
    granted the lock, a retired process held it, and every later acquire timed out."""
    import asyncio
    import contextlib

    import httpx

    from harness.clients.etcd import EtcdLockClient

    calls: list[str] = []

    async def etcd(request: httpx.Request) -> httpx.Response:
        path = request.url.path.rsplit("/v3/", 1)[-1]
        calls.append(path)
        if path == "lease/grant":
            return httpx.Response(200, json={"ID": "7"})
        if path == "lock/lock":
            await asyncio.sleep(30)  # (waiting for the lock)
        return httpx.Response(200, json={})

    async def main() -> None:
        client = EtcdLockClient(lease_ttl=1, acquire_timeout=30)
        mock = httpx.MockTransport(etcd)
        client._http = httpx.AsyncClient(transport=mock, base_url="http://e/v3/")
        client._renew_http = httpx.AsyncClient(transport=mock, base_url="http://e/v3/")
        acquire = asyncio.create_task(client.invoke(None, {"f": "acquire"}))  # type: ignore[arg-type]
        await asyncio.sleep(0.5)  # a renewal or so, while waiting for the lock
        acquire.cancel()  # (the op's deadline)
        with contextlib.suppress(asyncio.CancelledError):
            await acquire
        await asyncio.sleep(0.1)
        renewals = calls.count("lease/keepalive")
        await asyncio.sleep(0.8)  # two more renewal periods
        assert calls.count("lease/keepalive") == renewals, calls
        assert "lease/revoke" in calls
        await client.close(None)  # type: ignore[arg-type]

    asyncio.run(main())


def test_a_canceled_answer_to_a_write_is_unknown_and_other_4xx_definite() -> None:
    """etcd's "request canceled" (gRPC Canceled: HTTP 408 or 499 through grpc-gateway) may
    come after the write was proposed: it was recorded `fail`."""
    import asyncio

    import httpx

    from harness.clients.etcd import EtcdClient

    async def write_answered(status: int) -> str:
        async def etcd(request: httpx.Request) -> httpx.Response:
            return httpx.Response(status, json={"error": "etcdserver: request canceled",
                                                "code": 1})  # fmt: skip

        client = EtcdClient()
        client._http = httpx.AsyncClient(transport=httpx.MockTransport(etcd),
                                         base_url="http://e/v3/")  # fmt: skip
        done = await client.invoke(None, {"f": "write", "key": 1, "value": 2})  # type: ignore[arg-type]
        await client.close(None)  # type: ignore[arg-type]
        return str(done["type"])

    assert asyncio.run(write_answered(408)) == "info"
    assert asyncio.run(write_answered(499)) == "info"
    assert asyncio.run(write_answered(400)) == "fail"
    assert asyncio.run(write_answered(503)) == "info"
