"""A suite file that cannot be loaded is a ConfigError naming the file, and the line
where it raised (harness/suites/__init__.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.suites import load_suite

CASES = {
    "raises": (
        'x = 1\nraise RuntimeError("boom")\n',
        ":2: loading the suite failed: RuntimeError: boom",
    ),
    "name": (
        "def f():\n    return undefined_name\n\n\nf()\n",
        ":2: loading the suite failed: NameError",
    ),
    "import": (
        "import clew_no_such_module_zz\n",
        ":1: loading the suite failed: ModuleNotFoundError",
    ),
    "syntax": ("x = (\n", ": loading the suite failed: SyntaxError: '(' was never closed"),
    "no suite": ("x = 1\n", ": defines no `SUITE`; a suite file defines `SUITE = Suite(...)`"),
    "not a suite": ("SUITE = 5\n", ": defines `SUITE` of type int, not a Suite; a suite file"),
}


def test_a_toml_spec_given_as_the_suite_points_at_spec(tmp_path: Path) -> None:
    """`clew test test.toml` (the spec where the suite goes) said only "cannot load this
    file as Python"."""
    path = tmp_path / "test.toml"
    path.write_text('suite = "etcd"\n')
    with pytest.raises(
        ConfigError,
        match=r"test.toml: cannot load this file as Python; a "
        r"TOML test spec is given with --spec FILE",
    ):
        load_suite(str(path))


@pytest.mark.parametrize("case", CASES)
def test_a_suite_file_that_cannot_load_is_named_with_its_line(case: str, tmp_path: Path) -> None:
    text, expected = CASES[case]
    path = tmp_path / "mysuite.py"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_suite(str(path))
    assert str(e.value).startswith(f"{path}{expected}"), str(e.value)


def test_a_missing_suite_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such suite file"):
        load_suite(str(tmp_path / "nope.py"))
