"""Unit tests of the generator protocol and combinators, with simulated time, no cluster."""

from __future__ import annotations

import itertools
import logging
import random
from collections import Counter
from typing import Any

import pytest

from harness.generator import (
    NEMESIS,
    PENDING,
    Gen,
    GenContext,
    GeneratorError,
    OpResult,
    any_,
    clients,
    concurrency_limit,
    cycle,
    delay,
    each_thread,
    filter_,
    flip_flop,
    limit,
    log,
    map_,
    mix,
    nemesis,
    on_threads,
    once,
    op,
    phases,
    process_limit,
    repeat,
    reserve,
    sleep,
    stagger,
    synchronize,
    then,
    time_limit,
    until_ok,
)
from harness.generator.testing import GeneratorStuck, simulate

S = 1_000_000_000


def ctx(n: int = 2, *, nemesis: bool = False, seed: int = 0) -> GenContext:
    threads: list[Any] = list(range(n))
    if nemesis:
        threads.append(NEMESIS)
    return GenContext(threads=threads, concurrency=n, rng=random.Random(seed))


def invokes(h: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in h if o["type"] == "invoke"]


def fs(h: list[dict[str, Any]]) -> list[str]:
    return [o["f"] for o in invokes(h)]


# -- plain values ----------------------------------------------------------------------------


def test_dict_is_one_op_filled_in() -> None:
    c = ctx()
    c.time = 42
    r = op({"f": "read"}, c)
    assert r is not None
    o, nxt = r
    assert isinstance(o, dict)
    assert o == {"f": "read", "type": "invoke", "process": o["process"], "time": 42}
    assert o["process"] in (0, 1)
    assert nxt is None
    assert op(None, c) is None


def test_dict_is_pending_while_every_thread_is_busy() -> None:
    c = ctx()
    c.mark_busy(0)
    c.mark_busy(1)
    assert op({"f": "read"}, c) == (PENDING, {"f": "read"})
    c.mark_free(1)
    assert op({"f": "read"}, c)[0]["process"] == 1  # type: ignore[index]


def test_lists_and_iterators_in_order_and_asking_twice_gives_the_same_op() -> None:
    assert fs(simulate([{"f": "a"}, {"f": "b"}, [{"f": "c"}]])) == ["a", "b", "c"]
    gen = iter([{"f": "x"}, {"f": "y"}])
    c = ctx()
    first = op(gen, c)
    assert first is not None
    o1, nxt = first
    assert isinstance(o1, dict) and o1["f"] == "x"
    # A one-shot iterator is remembered: the next generator still yields y.
    assert op(nxt, c)[0]["f"] == "y"  # type: ignore[index]
    assert fs(simulate({"f": str(i)} for i in range(3))) == ["0", "1", "2"]


def test_callable_is_called_again_until_it_returns_none() -> None:
    counter = itertools.count()

    def gen() -> dict[str, Any] | None:
        n = next(counter)
        return {"f": "w", "value": n} if n < 4 else None

    h = simulate(gen)
    assert [o["value"] for o in invokes(h)] == [0, 1, 2, 3]


def test_callable_may_take_the_context() -> None:
    h = simulate(limit(3, lambda c: {"f": "w", "value": c.rng.randrange(100)}))
    assert len(invokes(h)) == 3


def test_callable_is_not_called_again_while_its_op_is_pending() -> None:
    calls = itertools.count()

    def gen() -> dict[str, Any]:
        return {"f": "add", "value": next(calls)}

    h = simulate(limit(10, gen), concurrency=1, latency=1)
    assert [o["value"] for o in invokes(h)] == list(range(10))


def test_not_a_generator() -> None:
    with pytest.raises(GeneratorError, match="string"):
        op("read", ctx())
    with pytest.raises(GeneratorError, match="int is not a generator"):
        op(3, ctx())


# -- counting --------------------------------------------------------------------------------


def test_limit_once_repeat_cycle() -> None:
    assert len(invokes(simulate(limit(5, repeat({"f": "r"}))))) == 5
    assert len(invokes(simulate(once(repeat({"f": "r"}))))) == 1
    assert len(invokes(simulate(repeat({"f": "r"}, 3)))) == 3
    assert fs(simulate(cycle([{"f": "a"}, {"f": "b"}], 3))) == ["a", "b"] * 3
    assert fs(simulate(limit(5, cycle([{"f": "a"}, {"f": "b"}])))) == ["a", "b", "a", "b", "a"]
    assert simulate(cycle([])) == []
    with pytest.raises(ValueError, match="`n` must be a non-negative integer"):
        limit(-1, {"f": "r"})


def test_simulate_stops_infinite_generators_at_max_ops() -> None:
    assert len(invokes(simulate(repeat({"f": "r"}), max_ops=7))) == 7


# -- choosing --------------------------------------------------------------------------------


def test_mix_chooses_uniformly_and_is_deterministic_for_a_seed() -> None:
    gen = limit(3000, mix([repeat({"f": "a"}), repeat({"f": "b"}), repeat({"f": "c"})]))
    h1 = simulate(gen, seed=7)
    counts = Counter(fs(h1))
    assert set(counts) == {"a", "b", "c"}
    assert all(800 < n < 1200 for n in counts.values()), counts
    assert simulate(gen, seed=7) == h1
    assert fs(simulate(gen, seed=8)) != fs(h1)


def test_mix_drops_exhausted_generators() -> None:
    h = simulate(mix([{"f": "a"}, [{"f": "b"}, {"f": "b"}]]))
    assert sorted(fs(h)) == ["a", "b", "b"]


def test_any_takes_the_soonest_op_and_ends_when_all_end() -> None:
    gen = any_(delay(1, repeat({"f": "slow"}, 3)), delay(0.4, repeat({"f": "fast"}, 5)))
    h = simulate(gen, concurrency=3)
    times = [o["time"] for o in invokes(h)]
    assert times == sorted(times)
    assert Counter(fs(h)) == {"slow": 3, "fast": 5}


def test_flip_flop_alternates_until_either_ends() -> None:
    h = simulate(flip_flop(repeat({"f": "a"}), [{"f": "b"}, {"f": "b"}]))
    assert fs(h) == ["a", "b", "a", "b", "a"]


def test_map_and_filter() -> None:
    gen = limit(4, map_(lambda o: {**o, "key": 9}, repeat({"f": "r"})))
    assert all(o["key"] == 9 for o in simulate(gen))
    counter = itertools.count()
    gen2 = limit(
        5, filter_(lambda o: o["value"] % 2 == 0, lambda: {"f": "w", "value": next(counter)})
    )
    assert [o["value"] for o in invokes(simulate(gen2))] == [0, 2, 4, 6, 8]


# -- sequencing ------------------------------------------------------------------------------


def test_phases_wait_for_every_thread_between_phases() -> None:
    gen = phases(limit(6, repeat({"f": "a"})), once({"f": "b"}), limit(3, repeat({"f": "c"})))
    h = simulate(gen, concurrency=3, latency=1)
    last_a_done = max(i for i, o in enumerate(h) if o["f"] == "a" and o["type"] == "ok")
    b_invoked = next(i for i, o in enumerate(h) if o["f"] == "b")
    b_done = next(i for i, o in enumerate(h) if o["f"] == "b" and o["type"] == "ok")
    first_c = next(i for i, o in enumerate(h) if o["f"] == "c")
    assert last_a_done < b_invoked < b_done < first_c


def test_then_and_synchronize() -> None:
    h = simulate(then(limit(4, repeat({"f": "a"})), {"f": "b"}), concurrency=4, latency=1)
    b = next(o for o in h if o["f"] == "b")
    assert all(o["time"] <= b["time"] for o in h if o["f"] == "a")
    c = ctx(2)
    c.mark_busy(0)
    assert op(synchronize({"f": "x"}), c)[0] is PENDING  # type: ignore[index]
    c.mark_free(0)
    assert op(synchronize({"f": "x"}), c)[0]["f"] == "x"  # type: ignore[index]


def test_sleep_and_log_are_not_journaled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="clew.generator")
    gen = phases({"f": "a"}, log("waiting for recovery"), sleep(5), {"f": "b"})
    h = simulate(gen, latency=0.5)
    assert fs(h) == ["a", "b"]
    assert {o["type"] for o in h} <= {"invoke", "ok"}
    b = next(o for o in h if o["f"] == "b")
    assert b["time"] == round(5.5 * S)
    assert "waiting for recovery" in caplog.text


# -- time ------------------------------------------------------------------------------------


def test_time_limit_drops_ops_after_the_deadline() -> None:
    h = simulate(time_limit(10, repeat({"f": "r"})), concurrency=3, latency=1)
    inv = invokes(h)
    assert inv and all(o["time"] < 10 * S for o in inv)
    assert max(o["time"] for o in inv) == 9 * S
    assert len(inv) == 30


def test_time_limit_counts_from_its_first_op() -> None:
    gen = [{"f": "a"}, sleep(3), time_limit(2, repeat({"f": "b"}))]
    h = simulate(gen, concurrency=1, latency=1)
    b_times = [o["time"] for o in invokes(h) if o["f"] == "b"]
    assert b_times == [4 * S, 5 * S]


def test_stagger_gives_the_requested_total_rate() -> None:
    # 100 s at one op every 0.1 s on average, spread over 4 threads: about 1000 ops.
    h = simulate(time_limit(100, stagger(0.1, repeat({"f": "r"}))), concurrency=4, seed=3)
    inv = invokes(h)
    assert 900 < len(inv) < 1100
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(inv)]
    assert min(gaps) >= 0
    assert max(gaps) <= 0.2 * S
    mean = sum(gaps) / len(gaps) / S
    assert 0.09 < mean < 0.11


def test_delay_spaces_ops_exactly_and_catches_up() -> None:
    h = simulate(limit(5, delay(2, repeat({"f": "r"}))), concurrency=2)
    assert [o["time"] for o in invokes(h)] == [0, 2 * S, 4 * S, 6 * S, 8 * S]
    # One thread and ops taking 3 s: each op runs as soon as the thread is free.
    h = simulate(limit(3, delay(2, repeat({"f": "r"}))), concurrency=1, latency=3)
    assert [o["time"] for o in invokes(h)] == [0, 3 * S, 6 * S]


def test_durations_are_validated() -> None:
    with pytest.raises(ValueError, match="`dt` must be a non-negative finite number"):
        stagger(-1, {"f": "r"})
    with pytest.raises(ValueError, match="`dt`"):
        time_limit(float("nan"), {"f": "r"})


# -- completions -----------------------------------------------------------------------------


def test_until_ok_repeats_until_an_ok() -> None:
    answers = iter(["fail", "info", "fail", "ok", "ok"])
    h = simulate(
        until_ok(repeat({"f": "read"})),
        concurrency=1,
        latency=1,
        complete=lambda _o: {"type": next(answers)},
    )
    assert [o["type"] for o in h if o["type"] != "invoke"] == ["fail", "info", "fail", "ok"]


def test_info_renumbers_the_process() -> None:
    h = simulate(limit(4, repeat({"f": "w"})), concurrency=2, latency=1,
                 complete=lambda _o: {"type": "info"})  # fmt: skip
    assert sorted(o["process"] for o in invokes(h)) == [0, 1, 2, 3]


def test_process_limit_bounds_distinct_processes() -> None:
    h = simulate(process_limit(5, repeat({"f": "w"})), concurrency=2, latency=1,
                 complete=lambda _o: {"type": "info"})  # fmt: skip
    assert len({o["process"] for o in invokes(h)}) == 5
    assert len(invokes(h)) == 5


def test_concurrency_limit_keeps_ops_in_flight_bounded() -> None:
    h = simulate(limit(6, concurrency_limit(2, repeat({"f": "w"}))), concurrency=5, latency=1)
    in_flight = peak = 0
    for o in h:
        in_flight += 1 if o["type"] == "invoke" else -1
        peak = max(peak, in_flight)
    assert peak == 2
    assert len(invokes(h)) == 6


class _Forever(Gen):
    def op(self, ctx: GenContext) -> OpResult:
        return (PENDING, self)


def test_stuck_generator_is_reported() -> None:
    with pytest.raises(GeneratorStuck):
        simulate([{"f": "a"}, _Forever()])
    # A context with no threads at all: dicts are dropped rather than waiting forever.
    assert simulate(synchronize({"f": "never"}), concurrency=0) == []


# -- threads ---------------------------------------------------------------------------------


def test_clients_and_nemesis_route_to_their_threads() -> None:
    gen = limit(40, any_(clients(repeat({"f": "r"})), nemesis(repeat({"f": "kill"}))))
    h = simulate(gen, concurrency=3, nemesis=True, latency=1)
    for o in invokes(h):
        if o["f"] == "kill":
            assert o["process"] == NEMESIS
        else:
            assert isinstance(o["process"], int)
    assert {"r", "kill"} == set(fs(h))
    assert all(o["type"] == "info" for o in h if o["f"] == "kill" and o["type"] != "invoke")


def test_nemesis_generator_ends_when_there_is_no_nemesis_thread() -> None:
    h = simulate(any_(clients(repeat({"f": "r"}, 3)), nemesis(repeat({"f": "kill"}))))
    assert fs(h) == ["r", "r", "r"]


def test_on_threads_restricts_threads() -> None:
    h = simulate(limit(20, on_threads(lambda t: t == 2, repeat({"f": "r"}))), concurrency=4)
    assert {o["process"] for o in invokes(h)} == {2}


def test_reserve_dedicates_threads() -> None:
    gen = limit(200, clients(reserve(2, repeat({"f": "write"}), 1, repeat({"f": "cas"}),
                                     repeat({"f": "read"}))))  # fmt: skip
    h = simulate(gen, concurrency=6, nemesis=True, latency=1)
    by_f: dict[str, set[Any]] = {}
    for o in invokes(h):
        by_f.setdefault(o["f"], set()).add(o["process"])
    assert by_f == {"write": {0, 1}, "cas": {2}, "read": {3, 4, 5}}
    with pytest.raises(TypeError, match="default"):
        reserve(2, {"f": "w"})


def test_each_thread_gives_every_thread_its_own_copy() -> None:
    h = simulate(each_thread([{"f": "a"}, {"f": "b"}]), concurrency=3, nemesis=True, latency=1)
    per = Counter((o["process"], o["f"]) for o in invokes(h))
    assert per == {(p, f): 1 for p in (0, 1, 2, NEMESIS) for f in ("a", "b")}
    h = simulate(clients(each_thread(once({"f": "final"}))), concurrency=3, nemesis=True)
    assert sorted(o["process"] for o in invokes(h)) == [0, 1, 2]


def test_simulate_is_deterministic_for_a_seed() -> None:
    def w(c: GenContext) -> dict[str, Any]:
        return {"f": "w", "value": c.rng.randrange(1000)}

    gen = time_limit(5, stagger(0.01, mix([w, {"f": "r"}, repeat({"f": "x"})])))
    assert simulate(gen, concurrency=5, seed=1, latency=0.02) == simulate(
        gen, concurrency=5, seed=1, latency=0.02
    )
