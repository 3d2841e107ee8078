"""What a command writes never replaces what the user gave it: ``check --report`` and
``compare -o`` refuse an input or a file that is not a page; ``convert`` keeps a symbolic
link a link and writes to a device or pipe as it is."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli

DATA = Path(__file__).parent.parent / "data" / "porcupine"
VALID = DATA / "jepsen" / "etcd_002.log"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_check_report_refuses_to_replace_an_input_or_a_file_that_is_not_a_page(
    tmp_path: Path,
) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    shutil.copy(VALID, a)
    shutil.copy(VALID, b)
    before = a.read_bytes()
    code, out = run("check", "--report", str(a), str(a), str(b))  # a glob's first file
    assert code == 254 and "is one of the inputs" in out, out
    assert a.read_bytes() == before
    code, out = run("check", "--report", str(b), str(a))
    assert code == 254 and "exists and is not an HTML page" in out, out
    assert b.read_bytes() == before
    page = tmp_path / "r.html"
    assert run("check", "--report", str(page), str(a))[0] == 0
    code, out = run("check", "--report", str(page), str(a))  # an earlier page: replaced
    assert code == 0 and f"report: {page}" in out
    empty = tmp_path / "empty.html"
    empty.write_text("")
    assert run("check", "--report", str(empty), str(a))[0] == 0


def test_check_report_of_files_that_are_all_errors_is_written(tmp_path: Path) -> None:
    bad = tmp_path / "empty.jsonl"
    bad.write_text("")
    page = tmp_path / "r.html"
    code, out = run("check", "--report", str(page), str(bad))
    assert code == 254 and "the file is empty" in out and f"report: {page}" in out, out
    assert "the file is empty" in page.read_text()


def test_compare_refuses_to_write_its_page_over_a_results_file(tmp_path: Path) -> None:
    rows = [{"bug": "b", "depth": 2, "scheduler": "random", "cap_runs": 4,
             "runs_to_detection": 2, "runs": 2, "seconds": 1.0, "fault_ops": 1}]  # fmt: skip
    results = tmp_path / "bugs.json"
    results.write_text(json.dumps(rows))
    for given in (str(results), f"trial={results}"):
        code, out = run("compare", given, "-o", str(results))
        assert code == 254 and "is one of the inputs" in out, out
    assert json.loads(results.read_text()) == rows
    other = tmp_path / "other.json"
    other.write_text("[]")
    code, out = run("compare", str(results), "-o", str(other))
    assert code == 254 and "not an HTML page" in out and other.read_text() == "[]"


def test_convert_keeps_a_link_a_link_and_writes_to_a_device_as_it_is(tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text("")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    code, out = run("convert", str(VALID), str(link))
    assert code == 0, out
    assert link.is_symlink() and real.read_text().count("\n") > 100
    code, out = run("convert", "--to", "jsonl", str(VALID), "/dev/null")
    assert code == 0 and Path("/dev/null").is_char_device(), out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.jsonl", "real.jsonl"]


def test_test_refuses_a_junit_path_it_cannot_write_before_any_run(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    junit = str(afile / "x.xml")
    code, out = run("test", "etcd", "--junit-xml", junit, "--store", str(tmp_path / "store"))
    assert code == 254 and "exists and is not a directory (--junit-xml)" in out, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no run was made


def test_an_unexpected_exception_is_a_crash_not_an_invalid_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import harness.formats

    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(harness.formats, "convert", boom)
    result = CliRunner().invoke(cli, ["convert", str(VALID), "x.jsonl"])
    assert result.exit_code == 255, result.output
    assert "this is a bug in clew" in result.output
