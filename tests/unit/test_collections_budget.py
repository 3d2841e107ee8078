"""The collection checkers hold ``clew check``'s --time-limit and --max-memory: out of
budget they answer unknown naming the checker and the budget, never run on past it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checkers.collections import CHECKERS, _budget, check_within
from harness.cli import cli
from harness.formats import write_history
from harness.history import History


def _ops(*rows: tuple[Any, ...]) -> History:
    """``(process, type, f, value)`` rows, op i at time i."""
    return History.from_ops(
        [
            {"process": p, "type": t, "f": f, "value": v, "time": i}
            for i, (p, t, f, v) in enumerate(rows)
        ]
    )


def _pair(p: int, f: str, v: Any, out: Any) -> list[tuple[Any, ...]]:
    return [(p, "invoke", f, v), (p, "ok", f, out)]


SMALL: dict[str, History] = {
    "bank": _ops(*_pair(0, "read", None, {"a": 50, "b": 50})),
    "counter": _ops(*_pair(0, "add", 1, 1), *_pair(1, "read", None, 1)),
    "set-full": _ops(*_pair(0, "add", 1, 1), *_pair(1, "read", None, [1])),
    "unique-ids": _ops(*_pair(0, "generate", None, 7)),
    "long-fork": _ops(
        *_pair(0, "txn", [["w", 0, 1]], [["w", 0, 1]]),
        *_pair(1, "txn", [["r", 0, None]], [["r", 0, 1]]),
    ),
    "queue": _ops(*_pair(0, "enqueue", 1, 1), *_pair(1, "dequeue", None, 1)),
    "total-queue": _ops(*_pair(0, "enqueue", 1, 1), *_pair(1, "dequeue", None, 1)),
    "lock": _ops(*_pair(0, "acquire", None, None), *_pair(0, "release", None, None)),
}


def test_every_checker_has_a_small_history_here() -> None:
    assert set(SMALL) == set(CHECKERS)


@pytest.mark.parametrize("model", sorted(SMALL))
def test_each_checker_answers_unknown_when_its_time_is_spent(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert check_within(model, SMALL[model], time_limit=60, max_memory=None).valid is True
    monkeypatch.setattr(_budget, "CHECK_EVERY", 1)  # look at the clock at every step
    r = check_within(model, SMALL[model], time_limit=0.5, max_memory=None,
                     started=time.perf_counter() - 5)  # fmt: skip
    phase = "total-queue" if model == "queue" else model  # queue's first part
    assert r.valid == "unknown", r
    assert r.cause == f"ran out of time in the {phase} phase (time limit 0.5 s)"
    assert r.details["unknown"] == [{"type": "budget", "phase": phase, "resource": "time"}]


def _quadratic_set_full(n: int) -> History:
    """n adds, then n reads that each lack all n elements: n * n units of work."""
    rows = [r for i in range(n) for r in _pair(0, "add", i, i)]
    rows += [r for _ in range(n) for r in _pair(1, "read", None, [])]
    return _ops(*rows)


def test_set_full_counts_the_elements_a_read_lacks() -> None:
    # 1,500 reads each lacking 1,500 elements: well past one look at the clock
    h = _quadratic_set_full(1500)
    r = check_within("set-full", h, time_limit=0.5, max_memory=None,
                     started=time.perf_counter() - 5)  # fmt: skip
    assert r.valid == "unknown" and "set-full phase" in r.cause


def test_long_fork_compares_a_reads_key_group_once() -> None:
    """long-fork compared a read's group of keys with itself once per key, each comparison
    as long as the group: two reads of 100,000 keys took minutes, uncounted (clew check
    answered after 35 s with --time-limit 2). Now a read costs as many steps as its keys,
    well within the limit."""
    keys = [["r", k, None] for k in range(100_000)]
    h = _ops(*_pair(0, "read", keys, keys), *_pair(1, "read", keys, keys))
    r = check_within("long-fork", h, time_limit=20, max_memory=None)
    assert r.valid is True, r.cause


def test_clew_check_gives_the_collection_checker_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "h.jsonl"
    write_history(SMALL["set-full"], str(path), "jsonl")
    monkeypatch.setattr(_budget, "CHECK_EVERY", 1)
    res = CliRunner().invoke(cli, ["check", "--model", "set-full", str(path)])
    assert res.exit_code == 0, res.output
    # as if 100 s had gone by since the file was opened (the checker's clock only)
    monkeypatch.setattr(_budget.Budget, "elapsed", lambda self: 100.0)
    res = CliRunner().invoke(cli, ["check", "--model", "set-full", "--time-limit", "50",
                                   str(path)])  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "ran out of time in the set-full phase (time limit 50 s); raise --time-limit" in (
        res.output
    )


#: Each built-in collection workload (the factory's module and name), with a history.
WORKLOADS = {
    "bank": ("bank", "bank_workload"),
    "counter": ("counter", "counter_workload"),
    "set-full": ("set_full", "set_full_workload"),
    "unique-ids": ("unique_ids", "unique_ids_workload"),
    "long-fork": ("long_fork", "long_fork_workload"),
    "queue": ("queue", "queue_workload"),
    "lock": ("lock", "lock_workload"),
}


def _ctx(**options: Any) -> Any:
    import random

    from clusters.base import Cluster, Node
    from harness.api import TestContext

    cluster = Cluster(provider="local", name="t", nodes=(Node(name="n1", host="10.0.0.1"),),
                      state_dir="/nonexistent")  # fmt: skip
    return TestContext(name="t", cluster=cluster, options=options, rng=random.Random(1),
                       run_dir=Path("/nonexistent"), concurrency=4, time_limit=1.0)  # fmt: skip


@pytest.mark.parametrize("model", sorted(WORKLOADS))
def test_a_runs_check_holds_its_check_time_limit(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collection workloads' checks in a run (clew test, clew analyze) had no budget;
    they hold ``-o check_time_limit``, and answer unknown naming it when it is spent."""
    import importlib

    module, factory = WORKLOADS[model]
    make = getattr(importlib.import_module(f"harness.workloads.{module}"), factory)
    history = SMALL["total-queue" if model == "queue" else model]
    extra = {"linear_max_ops": 100} if model == "queue" else {}
    workload = make(_ctx(check_time_limit=60), client=lambda: None, **extra)
    assert "ran out" not in str(workload.check(history, None).cause)
    monkeypatch.setattr(_budget, "CHECK_EVERY", 1)  # look at the clock at every step
    workload = make(_ctx(check_time_limit=1e-9), client=lambda: None, **extra)
    result = workload.check(history, None)
    assert result.valid == "unknown", result
    assert "ran out of time" in str(result.cause) and "time limit 1e-09 s" in str(result.cause)


def test_the_set_workloads_check_holds_its_check_time_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.workloads.register import set_workload

    history = _ops(*_pair(0, "add", 1, 1), *_pair(1, "read", None, [1]))
    assert set_workload(_ctx(), client=lambda: None).check(history, None).valid is True
    monkeypatch.setattr(_budget, "CHECK_EVERY", 1)
    result = set_workload(_ctx(check_time_limit=1e-9), client=lambda: None).check(history, None)
    assert result.valid == "unknown" and "in the set phase" in str(result.cause)


def test_check_max_memory_is_a_size_and_a_bad_one_names_the_option() -> None:
    from harness.errors import ConfigError
    from harness.workloads import DEFAULT_CHECK_MAX_MEMORY, check_max_memory

    assert check_max_memory({}) == DEFAULT_CHECK_MAX_MEMORY == 2 * 1024**3
    assert check_max_memory({"check_max_memory": "512M"}) == 512 * 1024**2
    assert check_max_memory({"check_max_memory": 1000}) == 1000
    for bad in ("lots", "0", -5, True):
        with pytest.raises(ConfigError, match="option 'check_max_memory'"):
            check_max_memory({"check_max_memory": bad})


@pytest.mark.parametrize("model", [*sorted(WORKLOADS), "register", "list-append", "rw-register"])
def test_every_workloads_check_holds_check_max_memory(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every built-in workload's check in a run took a fixed 2 GiB memory budget, which no
    flag or option could change; it now takes ``-o check_max_memory``."""
    import importlib

    import checkers.collections
    import checkers.linear
    import checkers.txn

    seen: list[int] = []

    def spy(module: Any, name: str, keyword: str) -> None:
        real = getattr(module, name)

        def wrapped(*args: Any, **kw: Any) -> Any:
            seen.append(kw[keyword])
            return real(*args, **kw)

        monkeypatch.setattr(module, name, wrapped)

    spy(checkers.collections, "within_budget", "max_memory")
    spy(checkers.linear, "check", "max_bytes")
    spy(checkers.txn, "check", "max_memory")
    if model in WORKLOADS:
        module, factory = WORKLOADS[model]
        history = SMALL["total-queue" if model == "queue" else model]
    else:
        module = factory = model.replace("-", "_")
        factory += "_workload"
        history = _ops()
    make = getattr(importlib.import_module(f"harness.workloads.{module}"), factory)
    extra = {"linear_max_ops": 100} if model == "queue" else {}
    ctx = _ctx(check_max_memory="3G")
    make(ctx, client=lambda: None, **extra).check(history, ctx)
    assert seen and set(seen) == {3 * 1024**3}  # (queue: two checkers)
