"""The test spec (TOML + flags, validation naming the field) and the run store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.formats import read_history
from harness.spec import load_spec
from harness.store import Journal, new_run_dir


def test_defaults_make_a_good_first_run() -> None:
    s = load_spec()
    assert (s.suite, s.nodes, s.time_limit, s.faults) == ("etcd", 5, 60.0, ("partition",))
    assert s.resolved_concurrency == 10
    assert s.with_seed().seed is not None


def test_toml_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "t.toml"
    f.write_text('suite = "etcd"\nnodes = 3\ntime-limit = 20\nfaults = []\n[options]\na = 1\n')
    s = load_spec(str(f), nodes=4, options={"b": True}, seed=None)
    assert (s.nodes, s.time_limit, s.faults) == (4, 20.0, ())
    assert s.options == {"a": 1, "b": True}
    assert load_spec(faults="none").faults == ()
    assert load_spec(faults="partition").faults == ("partition",)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nodes = 0\n", "`nodes` must be at least 1"),
        ('nodes = "five"\n', "`nodes` must be int"),
        ("seed = inf\n", "`seed` must be int, got inf"),
        ("colour = 1\n", "unknown field `colour`"),
        ('faults = ["meteor"]\n', "unknown kinds ['meteor']"),
        ("time_limit = -1\n", "`time_limit` must be positive"),
        ("time_limit = nan\n", "`time_limit` must be a finite number, got nan"),
        ("interval = inf\n", "`interval` must be a finite number, got inf"),
        ("nodes = 2.7\n", "`nodes` must be int, got 2.7"),
        ('name = "../../escape"\n', "`name` must be a plain name"),
        ('name = ""\n', "`name` must be a plain name"),
        ("interval = 1e-9\n", "`interval` must be at least 0.01 s"),
        ("time_limit = 1e7\ninterval = 1\n", "plans 10,000,000 fault steps"),
        ("nodes = 3.0\nname = \"x\"\ncolour = 1\n", "unknown field `colour`"),
        ("nodes = \n", "not valid TOML"),
    ],
)
def test_bad_specs_name_the_file_and_field(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(content)
    with pytest.raises(ConfigError, match=r"bad\.toml") as e:
        load_spec(str(f))
    assert message in str(e.value)


def test_a_spec_file_that_is_not_text_is_named(tmp_path: Path) -> None:
    f = tmp_path / "bin.toml"
    f.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"bin\.toml: not UTF-8 text"):
        load_spec(str(f))


def test_flags_are_validated_too() -> None:
    with pytest.raises(ConfigError, match="flags: `rate` must be 0"):
        load_spec(rate=-5)
    with pytest.raises(ConfigError, match="flags: `time_limit` must be a finite number"):
        load_spec(time_limit=float("nan"))
    with pytest.raises(ConfigError, match="`faults` names no kind: ',,,'"):
        load_spec(faults=",,,")
    with pytest.raises(ConfigError, match="`faults` mixes `none` with kinds"):
        load_spec(faults="none,kill")
    assert load_spec(faults="none").faults == () and load_spec(faults="").faults == ()


def test_run_dirs_and_latest_links(tmp_path: Path) -> None:
    a = new_run_dir(tmp_path, "etcd-register")
    b = new_run_dir(tmp_path, "etcd-register")
    assert a.path != b.path and a.path.parent == b.path.parent
    assert (tmp_path / "etcd-register" / "latest").resolve() == b.path.resolve()
    assert (tmp_path / "latest").resolve() == b.path.resolve()
    b.write_json("results.json", {"valid": True})
    assert b.read_json("results.json") == {"valid": True}
    assert b.read_json("nope.json") is None


def test_journal_lines_are_complete_and_readable_at_any_moment(tmp_path: Path) -> None:
    run = new_run_dir(tmp_path, "t")
    j = Journal(run.history)
    j({"index": 0, "time": 1, "type": "invoke", "process": 0, "f": "write", "value": 1})
    # Readable before close: a crash after this point loses nothing.
    assert json.loads(run.history.read_text().splitlines()[0])["f"] == "write"
    j({"index": 1, "time": 2, "type": "ok", "process": 0, "f": "write", "value": 1, "node": "n1"})
    j.close()
    j.close()
    h = read_history(str(run.history))
    assert len(h) == 2 and h[1].node == "n1"


def test_a_store_that_is_a_file_is_refused_before_any_run(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(ConfigError, match="flags: `store` must name a directory"):
        load_spec(store=str(afile))
    assert load_spec(store=str(tmp_path / "new")).store == str(tmp_path / "new")
