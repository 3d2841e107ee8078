"""Hand-made histories with known verdicts for the parts of the linearizability kernel
(``checkers/linear/kernel.py``) and its preparation (``checkers/linear/prepare.py``)
that the random property tests reach rarely: written after a mutation audit of the two
files, each test kills mutants that the rest of the suite let live (see each docstring).
"""

from __future__ import annotations

from typing import Any

from checkers.linear import check
from checkers.linear.reference import check_reference
from harness.history import History
from tests.bench_module import load_bench
from tests.unit.test_linear_check import ops

gen = load_bench("lin_histories.py", "clew_bench_lin_histories_kmut")


def _named_dead_writes(final_read: int | None, dead: int = 3) -> History:
    """write 1; ``dead`` writes of unknown outcome (2, 3, ...) that no op reads, each
    named by a failed cas; then a failed cas [1 99], which needs one of them placed before
    it (the register cannot hold 1 there); then, optionally, a read."""
    rows: list[tuple[Any, ...]] = [(0, "invoke", "write", 1), (0, "ok", "write", 1)]
    values = range(2, 2 + dead)
    for v in values:
        rows += [(v, "invoke", "write", v), (v, "info", "write", v)]
    for v in values:
        rows += [(100 + v, "invoke", "cas", [v, 99]), (100 + v, "fail", "cas", [v, 99])]
    rows += [(7, "invoke", "cas", [1, 99]), (7, "fail", "cas", [1, 99])]
    if final_read is not None:
        rows += [(8, "invoke", "read", None), (8, "ok", "read", final_read)]
    return ops(*rows)


def test_writes_nobody_reads_unblock_a_failed_cas_where_needed() -> None:
    """Writes of unknown outcome whose values no op reads (dead writes) are tried only
    where a failed cas is blocked by the current state; three of them, each named by a
    failed cas, one of which must stand before the failed cas [1 9]."""
    for final_read, expected in ((None, True), (3, True), (1, False)):
        h = _named_dead_writes(final_read)
        assert check_reference(h, "etcd") is expected
        assert check(h, "etcd", counterexample=False).valid is expected, final_read
        assert check(h, "etcd", partition=False, counterexample=False).valid is expected
    # Twenty of them (the kernel keeps a small hash table of their values).
    assert check(_named_dead_writes(None, 20), "etcd", counterexample=False).valid is True
    r = check(_named_dead_writes(1, 20), "etcd", counterexample=False, time_limit=None,
              max_steps=1_000_000)  # fmt: skip
    assert r.valid is False


def test_writes_nobody_can_see_are_tried_only_where_a_failed_cas_is_blocked() -> None:
    """200 ops on one key, half the writes and cas of unknown outcome, a stale read: the
    writes that nobody can see (blank and dead) wait in their own lists for a blocked
    failed cas rather than being tried at every deadline. Seed 0: 523 steps (the blank
    ones tried as any op of unknown outcome, 38,107); seed 10: 488 (the dead ones tried
    so, 2,879)."""
    for seed, most in ((0, 5_000), (10, 1_500)):
        h = History.from_ops(gen.generate(gen.Shape(ops=200, clients=5, keys=1, info=0.5,
                                                    stale=True, seed=seed)))  # fmt: skip
        r = check(h, "etcd", time_limit=None, max_steps=1_000_000, counterexample=False)
        assert r.valid is False
        assert r.details["steps"] < most, seed


def _sequential_cas_history(n: int, last_read: int | None = None) -> History:
    """``n`` ops of one client on one register, one after another (writes, cas that
    succeed and fail, reads; about a hundred values, so that the table grows past its
    first 64 states), so valid; ``last_read`` replaces the value of the last read."""
    rows: list[tuple[Any, ...]] = []
    state: int | None = None
    for i in range(n):
        kind = i % 4
        if kind == 0:
            state = i % 101
            rows += [(0, "invoke", "write", state), (0, "ok", "write", state)]
        elif kind == 1:
            new = (i * 37) % 101
            ok = state is not None and i % 8 != 1
            expect = state if ok else (state or 0) + 1
            rows += [(0, "invoke", "cas", [expect, new]),
                     (0, "ok" if ok else "fail", "cas", [expect, new])]  # fmt: skip
            if ok:
                state = new
        else:
            rows += [(0, "invoke", "read", None), (0, "ok", "read", state)]
    if last_read is not None:
        rows[-1] = (0, "ok", "read", last_read)
    return ops(*rows)


def test_a_long_partition_searched_by_transition_table_keeps_its_verdicts() -> None:
    """A partition of more than 256 ops of a model with few states is searched on a
    transition table (``build_table``): states are ids there, and a table that maps a
    legal op to the wrong state, or drops one, changes the verdict."""
    good = _sequential_cas_history(300)
    r = check(good, "cas-register", counterexample=False)
    assert r.details["table_partitions"] == 1
    assert r.valid is True
    assert check(good, "etcd", counterexample=False).valid is True
    for stale in (0, 57, 1000):
        bad = _sequential_cas_history(300, last_read=stale)
        assert check(bad, "etcd", counterexample=False).valid is False, stale
        assert check(bad, "cas-register", counterexample=False).valid is False, stale


def test_ops_of_unknown_outcome_placed_then_undone_leave_no_trace() -> None:
    """Two writes of unknown outcome, each seen by a read, and a cas on another key
    (minimised from a random history): the search places and takes back these writes,
    and the set of optional ops placed, which its cache compares, must follow exactly.
    With the bit of one op set on placing and another's cleared on taking back, a stale
    bit made the cache prune a configuration never visited, and this valid history was
    called invalid (with both keys in one state)."""
    h = History.from_ops([
        dict(process=3, type="invoke", f="write", key=1, value=4),
        dict(process=2, type="invoke", f="write", key=1, value=1),
        dict(process=1, type="invoke", f="read", key=1, value=None),
        dict(process=2, type="info", f="write", key=1, value=1),
        dict(process=1, type="ok", f="read", key=1, value=1),
        dict(process=3, type="info", f="write", key=1, value=4),
        dict(process=4, type="invoke", f="read", key=1, value=None),
        dict(process=7, type="invoke", f="cas", key=0, value=[None, 7]),
        dict(process=4, type="ok", f="read", key=1, value=4),
        dict(process=7, type="ok", f="cas", key=0, value=[None, 7]),
    ])  # fmt: skip
    for partition in (True, False):
        assert check_reference(h, "etcd", partition=partition) is True
        for exact in (1024, 0):
            r = check(h, "etcd", partition=partition, exact_cache_max_ops=exact)
            assert r.valid is True, (partition, exact)


def test_a_cas_of_unknown_outcome_nobody_sees_unblocks_a_failed_cas() -> None:
    """write 1, then two cas of unknown outcome whose new values no op reads ([3 4],
    which can never apply, called first; and [1 2]), then a failed cas [1 9]: the
    register cannot hold 1 there, so cas [1 2] took effect. Such a cas is tried where the
    failed cas is blocked, each one (they are not interchangeable as blind writes are:
    one applies only where its expected value is held)."""
    rows: list[tuple[Any, ...]] = [
        (0, "invoke", "write", 1), (0, "ok", "write", 1),
        (1, "invoke", "cas", [3, 4]), (2, "invoke", "cas", [1, 2]),
        (1, "info", "cas", [3, 4]), (2, "info", "cas", [1, 2]),
        (3, "invoke", "cas", [1, 9]), (3, "fail", "cas", [1, 9]),
    ]  # fmt: skip
    reads = {None: True, 2: True, 1: False}
    for final_read, expected in reads.items():
        more = [] if final_read is None else [(4, "invoke", "read", None),
                                              (4, "ok", "read", final_read)]  # fmt: skip
        h = ops(*rows, *more)
        assert check_reference(h, "etcd") is expected
        for partition in (True, False):
            r = check(h, "etcd", partition=partition, counterexample=False)
            assert r.valid is expected, (final_read, partition)


def test_a_get_with_more_puts_of_its_prefixes_than_a_gate_lists_keeps_its_verdict() -> None:
    """kv, one client: seventeen puts of "x", a put of "z", a put of "x", an append of
    "y", and a get of "xy". The get is a gate: once every put that could make the state a
    prefix of "xy" is placed, the state must be one. Eighteen such puts (of "x") are more
    than a gate lists (16): it must then wait for every put called before it, not for
    the first sixteen (after them comes "z", which only the last put of "x" undoes)."""
    rows: list[tuple[Any, ...]] = []
    for _ in range(17):
        rows += [(0, "invoke", "put", "x", "k"), (0, "ok", "put", "x", "k")]
    for f, v in (("put", "z"), ("put", "x"), ("append", "y")):
        rows += [(0, "invoke", f, v, "k"), (0, "ok", f, v, "k")]
    rows += [(1, "invoke", "get", None, "k"), (1, "ok", "get", "xy", "k")]
    h = ops(*rows)
    assert check_reference(h, "kv") is True
    assert check(h, "kv").valid is True
    rows[-1] = (1, "ok", "get", "zy", "k")
    assert check(ops(*rows), "kv").valid is False
