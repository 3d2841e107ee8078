"""Checking on a real Dask cluster (``distributed.LocalCluster`` of 2 worker processes):
the same verdicts as the checker in one process, and a worker killed mid-check does not
change the verdict (its units are checked again elsewhere)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checkers.linear import check, resolve_model
from checkers.txn import check as txn_check
from harness import check_dask
from harness.check_dask import DaskUnitMap, check_linear_on_dask, dask_check_client
from harness.cli import cli
from harness.errors import HistoryError
from harness.formats import detect_format, read_history
from harness.history import History
from tests.bench_module import load_bench

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATA = Path(__file__).resolve().parents[1] / "data" / "porcupine"
gen = load_bench("lin_histories.py", "clew_bench_lin_histories_dask")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with dask_check_client(workers=2) as c:
        yield c


def _on_dask(client: Any, h: History, model: str, time_limit: float = 120.0) -> Any:
    return check_linear_on_dask(
        client, h, model, time_limit=time_limit, max_bytes=2 * 2**30, max_steps=0,
        counterexample_time_limit=10.0, started=time.perf_counter(),
    )  # fmt: skip


@pytest.mark.parametrize("share_min_ops", [check_dask.SHARE_MIN_OPS, 0])
def test_the_porcupine_logs_get_the_same_verdicts(
    client: Any, share_min_ops: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Most logs are small: sent as sub-histories; with 0, all go through shared memory.
    monkeypatch.setattr(check_dask, "SHARE_MIN_OPS", share_min_ops)
    files = sorted((DATA / "kv").glob("*.txt")) + sorted((DATA / "jepsen").glob("*.log"))
    assert len(files) >= 100
    checked = 0
    for f in files:
        try:
            fmt = detect_format(str(f))
            h = read_history(str(f), fmt)
        except HistoryError:
            continue  # the one empty log: bad input, not a verdict
        model = "kv" if fmt == "porcupine-kv" else "etcd"
        here = check(h, resolve_model(h, model), time_limit=120)
        there = _on_dask(client, h, model)
        assert there.valid == here.valid, f
        checked += 1
    assert checked >= 100


@pytest.mark.parametrize("stale", [False, True])
def test_a_large_multi_key_history_gets_the_same_verdict(client: Any, stale: bool) -> None:
    h = History.from_ops(gen.generate(gen.Shape(ops=20_000, clients=20, keys=100, stale=stale)))
    here = check(h, "cas-register")
    there = _on_dask(client, h, "cas-register")
    assert here.valid is (not stale)
    assert there.valid == here.valid
    assert there.details["units"] > 1 and there.details["workers"] == 2
    assert there.details["shipped"] == "shared memory"  # 40,000 ops: over SHARE_MIN_OPS
    if stale:
        assert there.details["counterexample"]["key"] == here.details["counterexample"]["key"]
    else:
        assert there.details["ops"] == here.details["ops"]
        assert there.details["partitions"] == here.details["partitions"] == 100


def _g1c_pairs(pairs: int) -> History:
    """``pairs`` independent G1c cycles (T1 appends a and reads T2's append to b, T2 the
    other way round), each on its own two keys: one component per pair."""
    ops: list[dict[str, Any]] = []
    for i in range(pairs):
        a, b = f"a{i}", f"b{i}"
        t1: list[list[Any]] = [["append", a, 1], ["r", b, [1]]]
        t2: list[list[Any]] = [["append", b, 1], ["r", a, [1]]]
        for p, t in ((2 * i, t1), (2 * i + 1, t2)):
            ops.append({"type": "invoke", "process": p, "f": "txn",
                        "value": [[f, k, None] for f, k, _ in t]})  # fmt: skip
        ops += [{"type": "ok", "process": 2 * i, "f": "txn", "value": t1},
                {"type": "ok", "process": 2 * i + 1, "f": "txn", "value": t2}]  # fmt: skip
    return History.from_ops(ops)


def test_a_transactional_history_of_several_components(client: Any) -> None:
    h = _g1c_pairs(12)
    here = txn_check(h, "list-append", "serializable", max_cycles=100)
    there = txn_check(h, "list-append", "serializable", max_cycles=100,
                      unit_map=DaskUnitMap(client))  # fmt: skip
    assert here.valid is False and there.valid is False
    assert there.details["anomalies"] == here.details["anomalies"] == ["G1c"]
    assert there.details["anomaly_counts"] == here.details["anomaly_counts"] == {"G1c": 12}
    assert there.details["stats"]["sccs"] == here.details["stats"]["sccs"] == 12


def test_a_worker_killed_mid_check_does_not_change_the_verdict(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(check_dask, "SHARE_MIN_OPS", 0)  # the replacement maps the files too
    # Keys hard enough to keep both workers busy for a while (many clients, many info).
    h = History.from_ops(gen.generate(gen.Shape(ops=16 * 300, clients=12, keys=16, info=0.2)))
    here = check(h, "cas-register", time_limit=300)
    assert here.valid is True
    pids: dict[str, int] = client.run(os.getpid)
    killed: list[tuple[str, int]] = []

    def kill_a_busy_worker() -> None:
        end = time.monotonic() + 60
        while time.monotonic() < end and not killed:
            # One snapshot: asking again may find the worker has just finished its units.
            busy = [(w, len(tasks)) for w, tasks in client.processing().items()
                    if tasks and w in pids]  # fmt: skip
            if busy:
                killed.append(busy[0])
                os.kill(pids[busy[0][0]], signal.SIGKILL)
            time.sleep(0.005)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    there = _on_dask(client, h, "cas-register", time_limit=300)
    killer.join()
    assert killed and killed[0][1] >= 1, "a worker was killed while it held units"
    assert there.valid == here.valid, there.cause
    assert there.details["shipped"] == "shared memory"
    client.wait_for_workers(2, timeout=300)  # the nanny restarted it


def test_clew_check_workers_on_the_command_line() -> None:
    files = [str(DATA / "kv" / "c10-ok.txt"), str(DATA / "kv" / "c10-bad.txt")]
    res = CliRunner().invoke(cli, ["check", "--workers", "2", "--json", *files])
    assert res.exit_code == 1, (res.output, res.exception)
    lines = [ln for ln in res.output.splitlines() if ln.startswith("{")]
    assert [('"valid": true' in ln, '"valid": false' in ln) for ln in lines] == [
        (True, False), (False, True)]  # fmt: skip


def test_workers_and_dask_together_are_refused() -> None:
    res = CliRunner().invoke(cli, ["check", "--workers", "2", "--dask", "tcp://127.0.0.1:1",
                                   str(DATA / "kv" / "c10-ok.txt")])  # fmt: skip
    assert res.exit_code == 254 and "not both" in res.output
