"""Unit tests of the linearizability checker: semantics, budgets, counterexamples."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from checkers.linear import check, resolve_model
from harness.errors import ConfigError
from harness.history import History


def ops(*rows: tuple[Any, ...]) -> History:
    """A history from (process, type, f, value[, key]) rows; times are positions."""
    out = []
    for r in rows:
        d: dict[str, Any] = dict(process=r[0], type=r[1], f=r[2], value=r[3])
        if len(r) > 4:
            d["key"] = r[4]
        out.append(d)
    return History.from_ops(out)


def test_the_docstring_example_is_invalid() -> None:
    h = ops(
        (1, "invoke", "write", 1), (2, "invoke", "read", None), (1, "ok", "write", 1),
        (2, "ok", "read", 1), (2, "invoke", "read", None), (2, "ok", "read", 0),
    )  # fmt: skip
    r = check(h, "register")
    assert r.valid is False
    cex = r.details["counterexample"]
    assert cex["deadline_op"]["output"] == 0
    assert "read -> 0" in r.cause


def test_concurrent_read_may_see_either_value() -> None:
    h = ops(
        (1, "invoke", "write", 1), (2, "invoke", "read", None), (2, "ok", "read", None),
        (1, "ok", "write", 1),
    )  # fmt: skip
    assert check(h, "etcd").valid is True


def test_etcd_nil_read_is_not_a_wildcard_but_knossos_nil_read_is() -> None:
    h = ops(
        (1, "invoke", "write", 1), (1, "ok", "write", 1),
        (2, "invoke", "read", None), (2, "ok", "read", None),
    )  # fmt: skip
    assert check(h, "etcd").valid is False
    assert check(h, "cas-register").valid is True


def test_failed_cas_is_an_observation_in_etcd_and_ignored_in_knossos() -> None:
    h = ops(
        (1, "invoke", "write", 1), (1, "ok", "write", 1),
        (2, "invoke", "cas", [1, 2]), (2, "fail", "cas", [1, 2]),
    )  # fmt: skip
    assert check(h, "etcd").valid is False  # the register held 1, so cas 1->2 could not fail
    assert check(h, "cas-register").valid is True


def test_info_write_may_take_effect_late_or_never() -> None:
    late = ops(
        (1, "invoke", "write", 1), (1, "info", "write", 1),
        (2, "invoke", "read", None), (2, "ok", "read", None),
        (3, "invoke", "read", None), (3, "ok", "read", 1),
    )  # fmt: skip
    assert check(late, "etcd").valid is True
    back = ops(
        (1, "invoke", "write", 1), (1, "info", "write", 1),
        (3, "invoke", "read", None), (3, "ok", "read", 1),
        (2, "invoke", "read", None), (2, "ok", "read", None),
    )  # fmt: skip
    assert check(back, "etcd").valid is False


def test_keys_are_checked_separately_and_the_failing_key_is_named() -> None:
    h = ops(
        (1, "invoke", "put", "a", "x"), (1, "ok", "put", "a", "x"),
        (2, "invoke", "get", None, "y"), (2, "ok", "get", "", "y"),
        (3, "invoke", "get", None, "x"), (3, "ok", "get", "b", "x"),
    )  # fmt: skip
    r = check(h, "kv")
    assert r.valid is False
    assert r.details["failing_key"] == "x"
    assert r.details["partitions"] == 2


def test_unknown_model_and_foreign_operations_are_config_errors() -> None:
    h = ops((1, "invoke", "write", 1), (1, "ok", "write", 1))
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        check(h, "nope")
    with pytest.raises(ConfigError, match="has no operation 'write'"):
        check(h, "mutex")


def test_model_is_guessed_from_operations() -> None:
    assert resolve_model(ops((1, "invoke", "cas", [1, 2])), None).name == "cas-register"
    assert resolve_model(ops((1, "invoke", "append", "x", "k")), None).name == "kv"
    with pytest.raises(ConfigError, match="pass --model"):
        resolve_model(ops((1, "invoke", "frobnicate", 1)), None)


def hard_history(writers: int = 30) -> History:
    """Many writes of unknown outcome, each seen by a concurrent read, then a read of a
    value nobody wrote: the search must consider the writes in every order before it can
    say no."""
    rows: list[tuple[Any, ...]] = [(p, "invoke", "write", p) for p in range(writers)]
    rows += [(100 + p, "invoke", "read", None) for p in range(writers)]
    rows += [(p, "info", "write", p) for p in range(writers)]
    rows += [(100 + p, "ok", "read", p) for p in range(writers)]
    rows += [(999, "invoke", "read", None), (999, "ok", "read", 10_000)]
    return ops(*rows)


def test_time_limit_answers_unknown_promptly() -> None:
    t0 = time.monotonic()
    r = check(hard_history(), "cas-register", time_limit=0.5, max_bytes=16 * 1024**3)
    assert r.valid == "unknown"
    assert "time limit" in r.cause
    assert time.monotonic() - t0 < 5


def test_memory_budget_answers_unknown_instead_of_growing() -> None:
    r = check(hard_history(), "cas-register", max_bytes=1024**2)
    assert r.valid == "unknown"
    assert "memory budget" in r.cause
    assert r.details["cache_bytes_peak"] <= 1024**2


def test_step_budget_is_deterministic() -> None:
    a = check(hard_history(), "cas-register", max_steps=200_000)
    b = check(hard_history(), "cas-register", max_steps=200_000)
    assert a.valid == b.valid == "unknown"
    assert "step budget" in a.cause
    assert a.details["steps"] == b.details["steps"]


def test_counterexample_is_json_and_replays_legally() -> None:
    h = ops(
        (1, "invoke", "write", 1), (1, "ok", "write", 1),
        (2, "invoke", "cas", [1, 3]), (2, "ok", "cas", [1, 3]),
        (3, "invoke", "read", None), (4, "invoke", "write", 5), (3, "ok", "read", 1),
        (4, "ok", "write", 5),
    )  # fmt: skip
    r = check(h, "cas-register")
    assert r.valid is False
    cex = json.loads(json.dumps(r.details["counterexample"]))
    assert [s["op"]["f"] for s in cex["linearized"]][:2] == ["write", "cas"]
    assert cex["state"] in (3, 5)
    stuck = {s["op"]["f"]: s for s in cex["could_not_follow"]}
    assert stuck["read"]["legal"] is False
    assert cex["deadline_op"]["f"] == "read"


def _set_adds_then_short_read(n: int) -> History:
    rows: list[tuple[Any, ...]] = []
    for i in range(n):
        rows += [(0, "invoke", "add", i), (0, "ok", "add", i)]
    rows += [(1, "invoke", "read", None), (1, "ok", "read", list(range(n - 1)))]
    return ops(*rows)


def test_a_counterexample_describes_the_prefixs_last_steps_in_bounded_states() -> None:
    """A counterexample described the state before and after every op of the prefix:
    10,000 adds to a set then a read missing one took 24 s after a verdict of 0.2 s (each
    state sorted whole, twice). Now the last MAX_PREFIX_STEPS steps are described, each
    state in at most MAX_STATE_CHARS, and the totals say what was left out."""
    from checkers.linear.counterexample import MAX_PREFIX_STEPS, MAX_STATE_CHARS

    r = check(_set_adds_then_short_read(3000), "set")
    assert r.valid is False
    cex = json.loads(json.dumps(r.details["counterexample"]))
    assert cex["linearized_total"] == 3000 and cex["linearized_offset"] == 2800
    assert len(cex["linearized"]) == MAX_PREFIX_STEPS
    assert [s["op"]["value"] for s in cex["linearized"]] == list(range(2800, 3000))
    last = cex["linearized"][-1]
    assert isinstance(last["state_after"], str) and last["state_after"].endswith(" chars)")
    assert len(last["state_after"]) <= MAX_STATE_CHARS + 20
    assert last["state_after"].startswith("[0,1,10,100,1000,1001,")
    assert "incomplete" not in cex
    assert r.cause.startswith("after linearizing 3000 ops (state [0,1,10,100,1000,1001,")
    small = check(_set_adds_then_short_read(3), "set").details["counterexample"]
    assert small["linearized"][-1]["state_after"] == [0, 1, 2]  # small states as they are
    assert small["linearized_total"] == 3 and small["linearized_offset"] == 0


def test_a_counterexample_past_its_deadline_says_how_far_it_got() -> None:
    from checkers.linear.calls import extract_calls
    from checkers.linear.counterexample import build_counterexample, summarize
    from checkers.linear.models import get_model
    from checkers.linear.prepare import prepare

    h = _set_adds_then_short_read(500)
    model = get_model("set")
    calls = extract_calls(h)
    part = prepare(calls, model).partition(0)
    prefix = list(range(500))  # the adds, in order
    cex = build_counterexample(h, calls, model, part, prefix, deadline=time.perf_counter() - 1)
    assert cex["incomplete"] == ("ran out of its time limit after 64 steps of the model, 0 "
                                 "of the last 200 linearized ops described")  # fmt: skip
    assert cex["state"] is None and cex["linearized"] == []
    assert cex["deadline_op"]["f"] == "read"
    assert summarize(cex).startswith("after linearizing 500 ops, op #1000 ")


#: Set elements that are equal in Python but not as values of a history (1, True, 1.0),
#: ints past 64 bits, and unhashable ones.
_MIXED = [0, 1, True, 1.0, "1", 2**70, -(2**63), [1], {"a": 1}]


def test_set_elements_of_every_kind_agree_with_the_reference() -> None:
    """The set model's lowering finds plain ints many at a time through a sorted table, and
    other elements through a dict; random histories of mixed elements (some reads of ints
    only, some not) get the plain-Python reference's verdicts."""
    import random

    from checkers.linear.reference import check_reference

    rng = random.Random(7)
    verdicts = {True: 0, False: 0}
    for _ in range(400):
        rows: list[tuple[Any, ...]] = []
        added: list[Any] = []
        for p in range(rng.randint(1, 4)):
            x = rng.choice(_MIXED)
            added.append(x)
            rows += [(p, "invoke", "add", x), (p, "ok", "add", x)]
        pool = [*added, rng.choice(_MIXED)]
        exact = rng.random() < 0.5  # every read sees what was added: mostly valid
        for p in range(10, 10 + rng.randint(1, 3)):
            if exact:
                seen = rng.sample(added, len(added)) + added[: rng.randint(0, 1)]
            elif rng.random() < 0.5:  # a read of ints only (the table's many-at-a-time path)
                seen = [x for x in pool if type(x) is int][: rng.randint(0, 3)]
            else:
                seen = rng.sample(pool, rng.randint(0, len(pool)))
            rows += [(p, "invoke", "read", None), (p, "ok", "read", seen)]
        h = ops(*rows)
        ref = check_reference(h, "set")
        assert check(h, "set", counterexample=False).valid == ref, rows
        verdicts[bool(ref)] += 1
    assert min(verdicts.values()) > 50, verdicts  # both verdicts drawn often


def test_empty_and_nemesis_only_histories_are_valid() -> None:
    h = History.from_ops([
        dict(process="nemesis", type="info", f="start", value=None),
        dict(process="nemesis", type="info", f="start", value="cut"),
    ])  # fmt: skip
    assert check(h, "register").valid is True


def test_long_single_key_histories_fit_in_a_small_cache() -> None:
    """Beyond 1,024 ops a partition's cache keys are fingerprints, not n-bit bitsets."""
    rows: list[tuple[Any, ...]] = []
    value = None
    for i in range(60_000):
        p = i % 7
        if i % 3 == 0:
            value = i % 5
            rows += [(p, "invoke", "write", value), (p, "ok", "write", value)]
        else:
            rows += [(p, "invoke", "read", None), (p, "ok", "read", value)]
    h = ops(*rows)
    r = check(h, "register", max_bytes=64 * 1024**2)
    assert r.valid is True
    assert r.details["fingerprinted_partitions"] == 1
    rows[-1] = (rows[-1][0], "ok", "read", 99)
    assert check(ops(*rows), "register", max_bytes=64 * 1024**2).valid is False


def _keyed(h: History, key: Any) -> list[dict[str, Any]]:
    out = []
    for op in h:
        d = op.to_dict()
        d.pop("index")
        d["key"] = key
        out.append(d)
    return out


def test_a_small_invalid_key_is_not_kept_waiting_behind_a_hard_one_on_one_thread() -> None:
    small = ops((7, "invoke", "write", 1), (7, "ok", "write", 1),
                (7, "invoke", "read", None), (7, "ok", "read", 2))  # fmt: skip
    h = History.from_ops(_keyed(hard_history(40), "big") + _keyed(small, "small"))
    t0 = time.monotonic()
    r = check(h, "cas-register", threads=1, time_limit=60, counterexample=False)
    assert r.valid is False
    assert r.details["failing_key"] == "small"
    assert time.monotonic() - t0 < 30


def test_time_spent_before_the_check_counts_and_the_phase_is_named() -> None:
    h = ops((1, "invoke", "write", 1), (1, "ok", "write", 1))
    r = check(h, "register", time_limit=1.0, started=time.perf_counter() - 5)
    assert r.valid == "unknown"
    assert r.details["phase"] == "read"
    assert "while reading" in r.cause
    assert r.seconds >= 5


def test_seconds_and_phases_cover_every_phase() -> None:
    h = ops((1, "invoke", "write", 1), (1, "ok", "write", 1), (2, "invoke", "read", None),
            (2, "ok", "read", 1))  # fmt: skip
    t = time.perf_counter() - 0.25
    r = check(h, "register", started=t)
    assert r.valid is True
    assert r.seconds >= 0.25
    assert set(r.details["phases"]) >= {"read", "lower", "prepare", "search"}


def test_a_memory_budget_too_small_to_prepare_answers_unknown_before_allocating() -> None:
    rows: list[tuple[Any, ...]] = []
    for i in range(2000):
        rows += [(i % 5, "invoke", "write", i), (i % 5, "ok", "write", i)]
    r = check(ops(*rows), "cas-register", max_bytes=64 * 1024)
    assert r.valid == "unknown"
    assert r.details["phase"] == "prepare"
    assert "memory budget" in r.cause and "preparing" in r.cause


def test_many_small_keys_are_checked_together_and_the_invalid_one_is_named() -> None:
    rows: list[tuple[Any, ...]] = []
    for k in range(3000):
        p = k % 13
        rows += [(p, "invoke", "write", k, k), (p, "ok", "write", k, k),
                 (p, "invoke", "read", None, k), (p, "ok", "read", k if k != 1234 else -1, k)]
    r = check(ops(*rows), "cas-register")
    assert r.valid is False
    assert r.details["failing_key"] == 1234
    assert r.details["partitions"] == 3000


@pytest.mark.parametrize("name", ["set", "linearizable-queue", "kv"])
def test_a_models_replay_reaches_the_state_its_steps_do(name: str) -> None:
    """A counterexample replays the prefix it does not describe at once (``ref_replay``):
    stepping 45,000 set adds copied the set at each (10 s, and its deadline spent). The
    state reached is the steps' state, on random sequences of each model's ops."""
    import random

    from checkers.linear.calls import FAIL, INFO, OK
    from checkers.linear.models import get_model

    m = get_model(name)
    assert m.ref_replay is not None
    ops = {"set": ["add", "read"], "linearizable-queue": ["enqueue", "dequeue"],
           "kv": ["put", "append", "get"]}[name]  # fmt: skip
    rng = random.Random(11)
    for _ in range(300):
        state = m.ref_init()
        steps = []
        for _ in range(rng.randint(0, 30)):
            f = rng.choice(ops)
            status = rng.choice([OK, OK, OK, INFO, FAIL])
            vin = str(rng.randint(0, 5)) if name == "kv" else rng.randint(0, 5)
            vout = rng.choice([None, rng.randint(0, 5)])
            if name == "set" and f == "read":
                vout = rng.sample(range(6), rng.randint(0, 3))
            steps.append((f, status, vin, vout))
            state = m.ref_step(state, f, status, vin, vout)[1]
        assert m.ref_replay(m.ref_init(), steps) == state, steps
