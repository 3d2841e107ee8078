"""Text from stored runs is shown on the terminal, not obeyed (harness/terminal.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import InputError
from harness.terminal import shown

CLIPBOARD = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
LINK = "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\"


def test_control_characters_are_escaped_and_text_kept() -> None:
    assert shown(CLIPBOARD) == "\\x1b]52;c;ZWNobyBwd25lZA==\\x07"
    assert shown("a\tb\nc \x9b2J \u202eevil\u2069") == "a\tb\nc \\x9b2J \\u202eevil\\u2069"
    assert shown("plain, ünïcode: ✓") == "plain, ünïcode: ✓"


def test_clew_analyze_shows_a_stored_runs_problems_without_obeying_them(tmp_path: Path) -> None:
    """A results.json from elsewhere put clipboard writes (OSC 52), disguised links
    (OSC 8) and screen clears on the terminal of whoever analyzed the run."""
    run = tmp_path / "store" / "etcd-register" / "20250101T000000"
    run.mkdir(parents=True)
    (run / "spec.json").write_text(json.dumps({"suite": "etcd", "workload": "register",
                                               "seed": 1}))  # fmt: skip
    ops = [{"type": "invoke", "process": 0, "f": "write", "value": 1, "time": 1},
           {"type": "ok", "process": 0, "f": "write", "value": 1, "time": 2}]  # fmt: skip
    (run / "history.jsonl").write_text("".join(json.dumps(op) + "\n" for op in ops))
    (run / "results.json").write_text(json.dumps({
        "valid": True, "problems": [CLIPBOARD + LINK + "\x1b[2J"],
        "incomplete": "cut \x1b]0;title\x07 short"}))  # fmt: skip
    result = CliRunner().invoke(cli, ["analyze", str(run)])
    assert "\x1b" not in result.output and "\x07" not in result.output, repr(result.output)
    assert "problem: \\x1b]52;c;ZWNobyBwd25lZA==\\x07" in result.output
    assert "cut \\x1b]0;title\\x07 short" in result.output


def test_an_error_quoting_a_file_is_shown_not_obeyed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import harness.runner

    def refuses(*args: Any, **kwargs: Any) -> None:
        raise InputError("spec.json: quoting it " + CLIPBOARD)

    monkeypatch.setattr(harness.runner, "analyze", refuses)
    with pytest.raises(SystemExit) as exited:
        cli.main(["analyze", str(tmp_path)], prog_name="clew")
    assert exited.value.code == 254
    err = capsys.readouterr().err
    assert "\x1b" not in err and "quoting it \\x1b]52;c;" in err, repr(err)


def test_warnings_on_the_console_are_shown_not_obeyed() -> None:
    import logging

    from harness.cli import _ShownFormatter

    record = logging.LogRecord("clew", logging.WARNING, __file__, 1, "a %s b", (CLIPBOARD,), None)
    assert _ShownFormatter("%(message)s").format(record) == "a " + shown(CLIPBOARD) + " b"
