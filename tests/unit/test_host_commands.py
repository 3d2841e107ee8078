"""Host commands of the local provider (clusters/_run.py): a timeout holds even when the
command's children keep its output open."""

from __future__ import annotations

import subprocess
import time

import pytest

from clusters._run import CommandFailed, popen_shielded, run, stop_shielded


def test_a_timeout_holds_when_a_grandchild_holds_the_output() -> None:
    """The shell's background ``sleep`` keeps stdout open: killing the shell alone left
    ``communicate()`` waiting 8 s for it, past a timeout of 1 s."""
    t0 = time.monotonic()
    with pytest.raises(CommandFailed, match=r"did not finish within 0.5 s"):
        run(["sh", "-c", "trap '' INT; echo started; sleep 8 & sleep 8"], timeout=0.5)
    assert time.monotonic() - t0 < 4


def test_stopping_a_command_kills_its_group_and_keeps_what_it_printed() -> None:
    child = popen_shielded(["sh", "-c", "echo one; sleep 30 & sleep 30"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(0.3)
    t0 = time.monotonic()
    out, err = stop_shielded(child)
    assert time.monotonic() - t0 < 2
    assert out == "one\n" and err == ""
    assert child.returncode == -9


def test_a_descendant_that_left_the_group_is_not_waited_for() -> None:
    """``setsid`` puts the grandchild out of reach of the group's kill: after
    DRAIN_SECONDS the pipes are left to it."""
    child = popen_shielded(["sh", "-c", "setsid sleep 3 & sleep 30"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(0.3)
    t0 = time.monotonic()
    assert stop_shielded(child) == (None, None)
    assert 1.5 < time.monotonic() - t0 < 4
    assert child.stdout is not None and child.stdout.closed
