"""Property tests of the linearizability checker (kernel) against independent oracles."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkers.linear import check
from checkers.linear.reference import check_reference
from harness.history import History

MODELS = ["register", "cas-register", "etcd", "kv", "mutex", "set", "linearizable-queue"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sequential(model: str, draw: Any, n: int, keyed: bool = False) -> list[dict[str, Any]]:
    """Run ``n`` random ops one after another on a hand-written model of ``model``.

    Returns call records: f, key, input value, outcome type and output value. Written
    independently of clew's models so that the property is not circular.
    """
    out: list[dict[str, Any]] = []
    state: dict[Any, Any] = {}
    for _ in range(n):
        if model in ("register", "cas-register", "etcd"):
            f = draw(st.sampled_from(["read", "write", "cas"] if model != "register" else
                                     ["read", "write"]))  # fmt: skip
            k = draw(st.sampled_from(["x", "y"])) if keyed else None
            s = state.get(k)
            if f == "read":
                out.append(dict(f=f, key=k, value=None, type="ok", output=s))
            elif f == "write":
                v = draw(st.integers(0, 3))
                state[k] = v
                out.append(dict(f=f, key=k, value=v, type="ok", output=v))
            else:
                a, b = draw(st.integers(0, 3)), draw(st.integers(0, 3))
                ok = s == a
                if ok:
                    state[k] = b
                out.append(dict(f=f, key=k, value=[a, b], type="ok" if ok else "fail",
                                output=[a, b]))  # fmt: skip
        elif model == "kv":
            f = draw(st.sampled_from(["get", "put", "append"]))
            k = draw(st.sampled_from(["x", "y"]))
            s = state.get(k, "")
            if f == "get":
                out.append(dict(f=f, key=k, value=None, type="ok", output=s))
            else:
                v = draw(st.sampled_from(["a", "b", "cd"]))
                state[k] = v if f == "put" else s + v
                out.append(dict(f=f, key=k, value=v, type="ok", output=v))
        elif model == "mutex":
            held = state.get(None, False)
            f = draw(st.sampled_from(["acquire", "release"]))
            ok = (f == "acquire") != held
            if ok:
                state[None] = not held
            out.append(dict(f=f, key=None, value=None, type="ok" if ok else "fail", output=None))
        elif model == "set":
            s = state.get(None, frozenset())
            if draw(st.booleans()):
                v = draw(st.integers(0, 4))
                state[None] = s | {v}
                out.append(dict(f="add", key=None, value=v, type="ok", output=v))
            else:
                out.append(dict(f="read", key=None, value=None, type="ok", output=sorted(s)))
        else:  # queue
            q = state.get(None, ())
            if draw(st.booleans()):
                v = draw(st.integers(0, 4))
                state[None] = (*q, v)
                out.append(dict(f="enqueue", key=None, value=v, type="ok", output=v))
            else:
                state[None] = q[1:]
                out.append(dict(f="dequeue", key=None, value=None, type="ok",
                                output=q[0] if q else None))  # fmt: skip
    return out


def _history(calls: list[dict[str, Any]], spans: list[tuple[int, int]]) -> History:
    """A history whose call i is invoked at spans[i][0] and completes at spans[i][1].

    A call of type "pending" gets no completion.
    """
    events = []
    for i, (c, (t0, t1)) in enumerate(zip(calls, spans, strict=True)):
        inv: dict[str, Any] = dict(type="invoke", process=i, f=c["f"], value=c["value"])
        if c["key"] is not None:
            inv["key"] = c["key"]
        events.append((t0, 0, inv))
        if c["type"] != "pending":
            comp = dict(inv, type=c["type"], value=c["output"] if c["type"] == "ok" else
                        c["value"])  # fmt: skip
            events.append((t1, 1, comp))
    events.sort(key=lambda e: (e[0], e[1]))
    return History.from_ops([dict(e[2], time=e[0]) for e in events])


@st.composite
def widened(draw: Any, model: str) -> History:
    """A sequential run of ``model`` whose op intervals are widened at random."""
    n = draw(st.integers(1, 12))
    calls = _sequential(model, draw, n)
    spans = []
    for i, c in enumerate(calls):
        point = 100 * i + 50
        spans.append((point - draw(st.integers(1, 250)), point + draw(st.integers(1, 250))))
        if c["type"] == "ok" and draw(st.integers(0, 5)) == 0:
            c["type"] = draw(st.sampled_from(["info", "pending"]))
    return _history(calls, spans)


@pytest.mark.parametrize("model", MODELS)
@SETTINGS
@given(data=st.data())
def test_widened_sequential_runs_are_linearizable(model: str, data: st.DataObject) -> None:
    h = data.draw(widened(model))
    r = check(h, model)
    assert r.valid is True, (r.cause, [op.to_dict() for op in h])


@pytest.mark.parametrize("model", ["register", "cas-register", "etcd", "kv"])
@SETTINGS
@given(data=st.data())
def test_a_read_of_a_value_never_written_is_not_linearizable(
    model: str, data: st.DataObject
) -> None:
    h = data.draw(widened(model))
    ops = [op.to_dict() for op in h]
    for op in ops:
        op.pop("index")
    at = data.draw(st.integers(0, len(ops)))
    f = "get" if model == "kv" else "read"
    never = "never-written" if model == "kv" else 999
    read: dict[str, Any] = dict(process=10_000, f=f, value=None, time=0)
    if model == "kv":
        read["key"] = data.draw(st.sampled_from(["x", "y"]))
    ops[at:at] = [dict(read, type="invoke"), dict(read, type="ok", value=never)]
    bad = History.from_ops(ops)
    assert check(bad, model).valid is False
    assert check_reference(bad, model) is False


@st.composite
def random_history(draw: Any, model: str, keyed: bool = False) -> History:
    """Small histories with arbitrary outputs: linearizable or not, often either."""
    n = draw(st.integers(1, 7))
    calls = _sequential(model, draw, n, keyed)
    for c in calls:
        # Scramble outputs of observations so that some histories are not linearizable.
        if c["f"] in ("read", "get", "dequeue") and draw(st.booleans()):
            c["output"] = draw({
                "kv": st.sampled_from(["", "a", "ab", "b"]),
                "set": st.lists(st.integers(0, 4), max_size=3, unique=True),
                "linearizable-queue": st.one_of(st.none(), st.integers(0, 4)),
            }.get(model, st.one_of(st.none(), st.integers(0, 3))))  # fmt: skip
        if c["f"] in ("cas", "acquire", "release") and draw(st.booleans()):
            c["type"] = "fail" if c["type"] == "ok" else "ok"
        if draw(st.integers(0, 6)) == 0:
            c["type"] = draw(st.sampled_from(["info", "pending"]))
    spans = []
    for _ in calls:
        t0 = draw(st.integers(0, 60))
        spans.append((t0, t0 + draw(st.integers(1, 40))))
    return _history(calls, spans)


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_kernel_agrees_with_the_python_reference(model: str, data: st.DataObject) -> None:
    h = data.draw(random_history(model))
    expected = check_reference(h, model)
    assert expected in (True, False)
    got = check(h, model)
    assert got.valid == expected, "\n".join(h.describe(i) for i in range(len(h)))
    # The fingerprinted cache (used for long partitions) must agree too.
    assert check(h, model, exact_cache_max_ops=0).valid == expected


@pytest.mark.parametrize("model", ["cas-register", "etcd", "kv"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_unpartitioned_search_agrees_with_the_partitioned_one(
    model: str, data: st.DataObject
) -> None:
    h = data.draw(random_history(model, keyed=True))
    expected = check_reference(h, model)
    assert check(h, model, partition=False).valid == expected
    assert check(h, model).valid == expected
