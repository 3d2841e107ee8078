"""Suite options are declared, and a run given one that no part of it reads is refused
(harness/suite_options.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.api import Suite
from harness.errors import ConfigError
from harness.suite_options import (
    builtin_markdown,
    check_suite_options,
    declares,
    option_rows,
    run_options,
)
from harness.suites import BUILTIN_SUITES, load_suite
from harness.workloads import CHECK_OPTIONS
from nemeses import kinds as fault_kinds

ROOT = Path(__file__).resolve().parents[2]

#: How the code reads an option by name: option_int(ctx.options, "name", ...),
#: options.get("name"), "name" in ctx.options.
READS = (
    re.compile(r"option_(?:bool|int|float)\(\s*[\w.]+,\s*\"([\w.]+)\""),
    re.compile(r"\b(?:o|opts|options)\.get\(\s*\"([\w.]+)\""),
    re.compile(r"\b(?:o|opts|options)\[\s*\"([\w.]+)\"\s*\]"),
    re.compile(r"\"([\w.]+)\" in (?:ctx\.)?options"),
)


#: The helpers that read ``check_time_limit`` and ``check_max_memory``
#: (harness.workloads.CHECK_OPTIONS).
CHECK_READS = re.compile(r"\bcheck_(?:in_budget|time_limit|max_memory)\(")


def read_names(path: Path) -> set[str]:
    text = path.read_text()
    names = {m.group(1) for r in READS for m in r.finditer(text)}
    checks = {"check_time_limit", "check_max_memory"}
    return names | (checks if CHECK_READS.search(text) else set())


def declared_by(suite: Suite) -> set[str]:
    names = set(suite.options or {})
    for opts in suite.workload_options.values():
        names |= set(opts)
    return names


def imported_workload_modules(path: Path) -> list[Path]:
    text = path.read_text()
    mods = set(re.findall(r"from harness\.workloads\.(\w+) import", text))
    mods |= set(re.findall(r"from harness\.workloads import (\w+) as", text))
    return [ROOT / "harness" / "workloads" / f"{m}.py" for m in sorted(mods)]


def test_the_reader_finds_option_reads() -> None:
    # the pattern this test relies on finds what the suites are known to read
    etcd = read_names(ROOT / "harness" / "suites" / "etcd.py")
    assert {"pre_vote", "binary", "serializable_reads", "lease_ttl"} <= etcd
    bugkv = read_names(ROOT / "harness" / "suites" / "bugkv.py")
    assert {"bug", "reads", "python", "faketime", "values"} <= bugkv  # o.get("bug"), …


@pytest.mark.parametrize("name", BUILTIN_SUITES)
def test_every_option_a_builtin_suite_reads_is_declared(name: str) -> None:
    suite = load_suite(name)
    module = ROOT / "harness" / "suites" / f"{name}.py"
    read = read_names(module)
    for workload_module in imported_workload_modules(module):
        read |= read_names(workload_module)
    declared = declared_by(suite)
    undeclared = {n for n in read if not declares(dict.fromkeys(declared, ""), n)}
    assert not undeclared, f"{module} or its workloads read undeclared options {undeclared}"


def test_every_option_a_workload_module_reads_is_declared_there() -> None:
    import importlib

    for path in sorted((ROOT / "harness" / "workloads").glob("*.py")):
        if path.name == "__init__.py":
            continue
        module = importlib.import_module(f"harness.workloads.{path.stem}")
        declared: set[str] = set(CHECK_OPTIONS)  # (read through harness.workloads' helpers)
        for attr in dir(module):
            value = getattr(module, attr)
            if attr.endswith(("OPTIONS", "_OPTION")):
                assert isinstance(value, dict), attr
                declared |= set(value)
        assert read_names(path) <= declared, (path, read_names(path) - declared)


def test_every_option_a_fault_kind_reads_is_declared() -> None:
    for path in sorted((ROOT / "nemeses" / "kinds").glob("*.py")):
        read = read_names(path)
        if not read:
            continue
        declared = {n for k in fault_kinds.names() for n in fault_kinds.get(k).options}
        assert read <= declared, (path, read - declared)


def test_docs_tables_are_the_declarations() -> None:
    text = (ROOT / "docs" / "options.md").read_text()
    begin = text.index("-->", text.index("<!-- suite-options:begin")) + len("-->\n")
    end = text.index("<!-- suite-options:end -->")
    assert text[begin:end].strip() == builtin_markdown(), (
        "docs/options.md is stale: paste the output of `python -c 'from "
        "harness.suite_options import builtin_markdown; print(builtin_markdown())'`"
    )


def refusal(options: dict[str, object], suite: str = "etcd", workload: str = "register",
            kinds: tuple[str, ...] = ("partition",)) -> str:  # fmt: skip
    with pytest.raises(ConfigError) as e:
        check_suite_options(options, load_suite(suite), workload, kinds)
    return str(e.value)


def test_a_typo_is_refused_with_the_name_meant() -> None:
    msg = refusal({"pre_vot": "false"})
    assert "'pre_vot' (did you mean 'pre_vote'?)" in msg
    assert "suite etcd, workload register" in msg and "serializable_reads" in msg


def test_an_option_of_another_workload_or_fault_kind_is_named_as_such() -> None:
    assert "'accounts' (an option of workload bank, not register)" in refusal({"accounts": 4})
    msg = refusal({"disk_full_headroom_mb": 8})
    assert "an option of fault kind disk-full, which this run's --faults do not have" in msg
    assert "--isolation sets it" in refusal({"isolation": "serializable"})
    msg = refusal({"nosuch": 1, "pre_vot": 1})
    assert msg.startswith("unknown options") and "'nosuch' (no part of this run reads it)" in msg


def test_declared_options_pass() -> None:
    check_suite_options({"pre_vote": "false", "ops_per_key": 5}, load_suite("etcd"), "register",
                        ("partition",))  # fmt: skip
    check_suite_options({"disk_full_headroom_mb": 8}, load_suite("postgres"), "list-append",
                        ("disk-full",))  # fmt: skip
    # a prefix entry covers the names it begins, and not itself alone
    pg = load_suite("postgres")
    check_suite_options({"pg.work_mem": "8MB", "isolation": "serializable"}, pg, "list-append", ())
    assert "'pg.'" in refusal({"pg.": 1}, suite="postgres", workload="list-append")


def test_a_suite_that_declares_nothing_is_not_checked() -> None:
    bare = Suite(name="mine", db=lambda ctx: None, workloads={"w": lambda ctx: None},
                 default_workload="w")  # type: ignore[arg-type, return-value]  # fmt: skip
    assert run_options(bare, "w", ()) is None
    check_suite_options({"anything": 1}, bare, "w", ("kill",))
    assert option_rows(bare) == []


def test_rows_keep_each_meaning_of_a_shared_name() -> None:
    rows = option_rows(load_suite("postgres"))
    fractions = [(w, d) for n, w, d in rows if n == "read_fraction"]
    assert len(fractions) == 4 and len({d for _w, d in fractions}) == 4
    assert ("pg.<name>", "every workload") in [(n, w) for n, w, _d in rows]


@pytest.mark.parametrize("command", ["test", "campaign"])
def test_clew_refuses_an_unknown_option_before_any_cluster(command: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    state = tmp_path / "cluster"
    result = CliRunner().invoke(
        cli,
        [command, "etcd", "-o", "pre_vot=false", "--nodes", "3", "--store", str(tmp_path / "s"),
         "--cluster-state-dir", str(state)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 254, result.output
    assert "'pre_vot' (did you mean 'pre_vote'?)" in result.output
    assert not state.exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("suite", "workload", "option", "message"),
    [
        ("etcd", "register", "pre_vote=maybe", "option 'pre_vote' must be true or false"),
        ("etcd", "bank", "accounts=1", "option 'accounts' must be at least 2"),
        ("bugkv", "register", "lease_ms=900", "bugkv lease_ms (900) must be below election_ms"),
        ("postgres", "list-append", "consistency=bogus", "unknown consistency model 'bogus'"),
        ("galera", "rw-register", "check_time_limit=-1", "'check_time_limit' must be positive"),
        ("galera", "list-append", "isolation=nope", "unknown isolation level 'nope'"),
    ],
)
def test_a_bad_option_value_is_refused_before_any_cluster(
    suite: str, workload: str, option: str, message: str, tmp_path: Path
) -> None:
    # values only the DB, the workload or (check_time_limit) the check reads: refused after
    # the cluster came up, or after the whole run, until built-in suites were built first
    from click.testing import CliRunner

    from harness.cli import cli

    state = tmp_path / "cluster"
    result = CliRunner().invoke(
        cli,
        ["test", suite, "-w", workload, "-o", option, "--nodes", "3", "--faults", "none",
         "--store", str(tmp_path / "s"), "--cluster-state-dir", str(state)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 254, result.output
    assert message in result.output
    assert not state.exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("file_options", "flags", "named", "message"),
    [
        ('bug = "nope"', [], True, "unknown bugkv bug 'nope'"),
        ('check_max_memory = "abc"', ["-o", "bug=early-ack"], True, "'abc' is not a size"),
        ("typo = 1", [], True, "'typo'"),
        ('bug = "early-ack"', ["-o", "lease_ms=900"], False, "lease_ms (900) must be below"),
        ('bug = "nope"', ["-o", "bug=early-ack", "-o", "typo=1"], False, "'typo'"),
        ('bug = "early-ack"', ["--isolation", "read-committed"], False, "'isolation'"),
    ],
)
def test_a_spec_files_bad_option_is_refused_naming_the_file(
    file_options: str, flags: list[str], named: bool, message: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    spec = tmp_path / "mine.toml"
    spec.write_text(f'suite = "bugkv"\nfaults = ["none"]\n\n[options]\n{file_options}\n')
    state = tmp_path / "cluster"
    result = CliRunner().invoke(
        cli,
        ["test", "--spec", str(spec), *flags, "--store", str(tmp_path / "s"),
         "--cluster-state-dir", str(state)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 254, result.output
    assert message in result.output
    assert (f"{spec}: [options]: " in result.output) is named, result.output
    assert not state.exists() and not (tmp_path / "s").exists()


def test_no_prefix_is_offered_as_the_name_meant() -> None:
    msg = refusal({"pg_work_mem": "8MB"}, suite="postgres", workload="list-append")
    assert "did you mean 'pg.'" not in msg


def test_galeras_db_reads_the_bank_shape_for_every_workload() -> None:
    # the DB seeds the bank table at setup, whatever the workload
    check_suite_options({"accounts": 4}, load_suite("galera"), "list-append", ())


def test_a_suite_file_named_like_a_built_in_suite_is_not_built_in(tmp_path: Path) -> None:
    from harness.suites import is_builtin

    copy = tmp_path / "mysuite.py"
    copy.write_text((ROOT / "harness" / "suites" / "etcd.py").read_text())
    mine = load_suite(str(copy))
    assert mine.name == "etcd" and not is_builtin(mine)
    assert is_builtin(load_suite("etcd"))


def test_a_replayed_runs_unknown_options_are_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    from harness.runner import check_before_cluster
    from harness.spec import load_spec

    spec = load_spec(suite="etcd", nodes=3, faults="none", options={"pre_vot": "false"})
    with pytest.raises(ConfigError, match="pre_vot"):
        check_before_cluster(spec)
    check_before_cluster(spec, stored=True)  # replay and shrink: nothing can drop it
    assert "the stored run's options are replayed as recorded" in caplog.text
