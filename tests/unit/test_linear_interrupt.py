"""Ctrl-C stops a linearizability search at once (checkers/linear/checker.py runs the
searches in worker threads and waits for them in short naps; leaving the check's deadline
by the KeyboardInterrupt stops them). Before, a search of one key ran in the main thread,
whose signal handlers wait for the kernel to return: a Ctrl-C waited for the time limit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from checkers.linear.budget import CANCELLED, TIMED_OUT, deadline

ROOT = Path(__file__).resolve().parents[2]


def test_leaving_a_deadline_by_an_exception_stops_the_searches() -> None:
    with pytest.raises(KeyboardInterrupt), deadline(60.0) as stop:
        raise KeyboardInterrupt
    assert stop[0] == CANCELLED
    with deadline(60.0) as calm:
        pass
    assert calm[0] == 0  # left normally: untouched
    with pytest.raises(RuntimeError), deadline(None) as timed:
        timed[0] = TIMED_OUT  # (as the watchdog would)
        raise RuntimeError
    assert timed[0] == TIMED_OUT  # the first reason stands
    assert isinstance(stop, np.ndarray)


SEARCH = textwrap.dedent(
    """
    import sys
    from bench.lin_histories import Shape, write_history
    from checkers.linear import check
    from harness.formats import read_history

    path = write_history(Shape(ops=200_000, clients=20, keys=1, info=0.1, stale=True),
                         sys.argv[1])
    history = read_history(str(path))
    print("ready", flush=True)
    check(history, "etcd", time_limit=60.0)
    print("finished", flush=True)
    """
)


@pytest.mark.slow
def test_ctrl_c_stops_a_search_of_one_key_at_once(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SEARCH, str(tmp_path / "h.jsonl")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr
        time.sleep(2.0)  # well into the search (the history takes the whole 60 s)
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        _out, err = proc.communicate(timeout=50)
        took = time.monotonic() - t0
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in err and proc.returncode != 0, err
    assert took < 10, f"the search ran on {took:.1f} s after Ctrl-C"
