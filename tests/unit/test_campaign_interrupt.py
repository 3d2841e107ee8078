"""Ctrl-C for campaigns (harness/campaign_interrupt.py, harness/campaign.py): the first
stops them cleanly (no new run, the runs in flight interrupted until the block ends), the
second abandons them; a campaign cut short says so. The runs here are stand-ins; the
runner's side (a run in another thread stopped by interrupt_runs) is in
test_run_lifecycle.py, the Dask workers' side in test_campaign_dask_interrupt.py."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.campaign import INTERRUPTED, run_campaign
from harness.campaign_interrupt import stop_on_ctrl_c
from harness.errors import ClewError
from harness.runner import RunOutcome
from harness.spec import TestSpec as Spec
from harness.spec import load_spec


def test_the_first_ctrl_c_stops_and_interrupts_until_the_end_the_second_abandons() -> None:
    stop = threading.Event()
    calls: list[float] = []
    said: list[str] = []
    before = signal.getsignal(signal.SIGINT)
    with stop_on_ctrl_c(stop, lambda how: calls.append(time.monotonic()), said.append,
                        every=0.05) as event:  # fmt: skip
        assert event is stop and not stop.is_set()
        time.sleep(0.1)
        assert calls == [] and said == []  # nothing before a Ctrl-C
        signal.raise_signal(signal.SIGINT)  # the first: no exception here
        deadline = time.monotonic() + 30
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stop.is_set() and len(calls) >= 3, calls  # told again and again
        assert len(said) == 1 and said[0].startswith("interrupted (Ctrl-C)")
        assert "Ctrl-C again to abandon" in said[0]
        # the runs cut short are recorded in campaign.json: it once said "will not be counted"
        assert "recorded, and counted as a detection only if invalid" in said[0]
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
            time.sleep(1)  # (the handler runs at the next bytecode)
    assert signal.getsignal(signal.SIGINT) is before
    n = len(calls)
    time.sleep(0.2)
    assert len(calls) <= n + 1  # the interrupter ended with the block


def test_sigterm_stops_campaigns_as_a_first_ctrl_c_does() -> None:
    # By default SIGTERM ended the campaign at once: its run unhealed until the nodes'
    # leases ran out, the database left running, nothing recorded.
    stop = threading.Event()
    calls: list[float] = []
    said: list[str] = []
    term = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with stop_on_ctrl_c(stop, lambda how: calls.append(1), said.append, every=0.05):
            signal.raise_signal(signal.SIGTERM)  # no exception here: the first stops
            deadline = time.monotonic() + 30
            while not calls and time.monotonic() < deadline:
                time.sleep(0.02)
            assert stop.is_set() and calls and said[0].startswith("interrupted (SIGTERM)")
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, term)


def test_without_a_ctrl_c_nothing_is_interrupted() -> None:
    calls: list[int] = []
    with stop_on_ctrl_c(threading.Event(), lambda how: calls.append(1), print, every=0.01):
        time.sleep(0.1)
    time.sleep(0.05)
    assert calls == []


class Cut:
    """Runs that raise once the campaign is told to stop (cut as they started)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def session(self, spec: Spec) -> Any:
        import contextlib

        return contextlib.nullcontext(self.run)

    def interrupt(self, how: str = "Ctrl-C") -> None:
        pass

    def run(self, spec: Spec) -> RunOutcome:
        self.stop.set()  # the Ctrl-C comes while this run starts
        raise ClewError("the run was interrupted before it started")


def test_a_campaign_whose_run_is_cut_by_the_stop_ends_interrupted_and_exits_2(
    tmp_path: Path,
) -> None:
    stop = threading.Event()
    spec = load_spec(suite="bugkv", workload="set", seed=1, time_limit=6,
                     store=str(tmp_path / "store"), faults="kill")  # fmt: skip
    with pytest.raises(ClewError):
        run_campaign(spec, runs=3, executor=Cut(stop), should_stop=stop.is_set)
    (directory,) = (tmp_path / "store" / "campaigns").glob("*/*")
    assert '"stopped": "interrupted"' in (directory / "campaign.json").read_text()


def test_an_interrupted_campaign_that_found_nothing_exits_2(tmp_path: Path) -> None:
    from harness.campaign import CampaignResult, CampaignRun

    result = CampaignResult(directory=tmp_path, config={}, config_hash="x",
                            stopped=INTERRUPTED)  # fmt: skip
    result.runs.append(CampaignRun(index=1, seed=1, run_dir="r", valid=True,
                                   wall_seconds=1.0, fault_ops=0, schedule=[]))  # fmt: skip
    assert result.exit_code == 2
    result.stopped = "cap of 1 runs reached"
    assert result.exit_code == 0
