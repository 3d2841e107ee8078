"""`clew test`'s live line off a terminal: a line every 10 s, and one at once whenever a
fault strikes or heals."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness import cli_test


def test_a_fault_is_shown_when_it_strikes_and_heals(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = [100.0]
    monkeypatch.setattr(cli_test.time, "monotonic", lambda: clock[0])
    live = cli_test._Live(True)
    live.tty = False
    samples = [(0.5, None), (1.0, None), (1.5, "partition"), (2.0, "partition"),
               (2.5, None), (3.0, None), (12.0, None), (12.6, None)]  # fmt: skip
    for t, fault in samples:
        clock[0] = 100.0 + t
        p = SimpleNamespace(elapsed=t, ops_per_s=10.0, ok=1, fail=0, info=0)
        live(p, fault)
    lines = capsys.readouterr().err.splitlines()
    shown = [line.split("fault: ")[1] for line in lines]
    # the first sample, the strike, the heal, then the next 10 s sample
    assert shown == ["none", "partition (struck)", "none (healed)", "none"], lines
    assert [line.split(" s ")[0].split()[-1] for line in lines] == ["0.5", "1.5", "2.5", "12.6"]
