"""Ctrl-C and campaigns on a real Dask ``LocalCluster`` of 2 worker processes (no
database cluster: the unit is a stand-in run, registered with the runner as a real run
is): the workers ignore the terminal's SIGINT, so a Ctrl-C does not kill them in the
middle of a run, and :meth:`DaskExecutor.interrupt` reaches the run in flight on its
worker, which then ends as a run interrupted by Ctrl-C ends (the runner's side of that is
tests/unit/test_run_lifecycle.py; bench/bugs.py's, by hand: docs/campaigns.md)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from harness.campaign_dask import DaskExecutor, dask_client
from harness.campaign_pool import ClusterPool

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_workers_ignore_ctrl_c_and_the_executor_interrupts_the_run_in_flight() -> None:
    def stand_in_run(seconds: float) -> str:
        import asyncio

        import harness.runner as runner

        async def load() -> None:
            await asyncio.sleep(seconds)

        try:
            asyncio.run(runner._interruptible(load()))
        except asyncio.CancelledError:
            return "interrupted"
        return "ran to its end"

    pool = ClusterPool(subnets=("10.77.225.0/24",), nodes=1)  # never taken: no run needs it
    with dask_client(workers=2, pool=pool) as client:
        pids: dict[str, Any] = client.run(os.getpid)
        assert set(client.run(lambda: signal.getsignal(signal.SIGINT) == signal.SIG_IGN)
                   .values()) == {True}  # fmt: skip
        executor = DaskExecutor(client, pool)
        future = client.submit(stand_in_run, 600.0, pure=False)
        executor._in_flight.add(str(future.key))
        deadline = time.monotonic() + 120
        while not any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in pids.values():  # what a Ctrl-C on the terminal sends them
            os.kill(pid, signal.SIGINT)
        time.sleep(1)
        assert client.run(os.getpid) == pids, "a worker died of SIGINT"
        assert not future.done()
        # As the first Ctrl-C's interrupter does: again until the run has stopped.
        t0 = time.monotonic()
        while not future.done() and time.monotonic() - t0 < 60:
            executor.interrupt()
            time.sleep(0.5)
        assert future.result(timeout=10) == "interrupted"
        assert time.monotonic() - t0 < 60
        # A run of another executor (not in flight for this one) is left alone.
        other = client.submit(stand_in_run, 2.0, pure=False)
        while not any(client.processing().values()) and not other.done():
            time.sleep(0.1)
        executor._in_flight.clear()
        executor.interrupt()
        assert other.result(timeout=60) == "ran to its end"
