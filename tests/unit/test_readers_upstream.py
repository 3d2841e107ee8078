"""Readers take the files other tools write (issue 11, part 4): Knossos's and Elle's EDN
(multi-line op maps, top-level lists, comment lines), transactions without ``:f``,
histories of completions only or without ``:process``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from checkers.txn import check as txn_check
from harness.cli import cli
from harness.errors import HistoryError
from harness.formats import detect_format, read_history
from harness.history import INVOKE

DATA = Path(__file__).parents[1] / "data"
KNOSSOS = DATA / "knossos"
ELLE = DATA / "elle-upstream"


def clew(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.output


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# --- EDN layouts ----------------------------------------------------------------------


def test_multi_line_op_maps_after_a_comment(tmp_path: Path) -> None:
    path = str(KNOSSOS / "multi-register/good/multi-register.edn")
    assert detect_format(path) == "edn"  # the ';' line before '[' no longer confuses it
    h = read_history(path)
    assert len(h) == 250
    assert h[0].to_dict() == {
        "index": 0, "time": 7686455705, "type": "invoke", "process": 3, "f": "txn",
        "value": [["read", "x", None]],
    }  # fmt: skip
    assert int(h.line[0]) == 2 and int(h.line[1]) == 7  # each op: the line its map starts on


def test_top_level_list_with_comments_inside(tmp_path: Path) -> None:
    h = read_history(str(KNOSSOS / "cas-register/bad/rethink-fail-minimal.edn"))
    assert [op.type for op in h] == ["invoke", "ok", "invoke", "invoke", "ok", "ok", "invoke", "ok"]
    assert [int(x) for x in h.line] == [1, 2, 4, 5, 7, 8, 12, 13]


@pytest.mark.parametrize(
    "text",
    [
        "; one\n; two\n[{:type :invoke, :process 0, :f :write, :value 1}\n"
        " {:type :ok, :process 0, :f :write, :value 1}]\n; the end\n",
        "({:type :invoke, :process 0, :f :write, :value 1}\n"
        " {:type :ok, :process 0, :f :write, :value 1})\n",
        "[{:type :invoke,\n  :process 0,\n  :f :write,\n  :value 1}\n"
        " {:type :ok, :process 0,\n  :f :write, :value 1}]\n",
        "{:type :invoke, :process 0, ; who\n :f :write, :value 1}\n"
        "{:type :ok, :process 0, :f :write, :value 1} ; done\n",
        "[{:type :invoke, :process 0, :f :write, :value 1}\n"
        " {:type :ok, :process 0, :f :write, :value 1}] ; trailing words\n",
        "#_{:type :invoke\n :process 9} {:type :invoke, :process 0, :f :write, :value 1}\n"
        "{:type :ok, :process 0, :f :write, :value 1}\n",
    ],
    ids=["comments", "list", "multi-line", "inline-comments", "comment-after-]", "discard"],
)
def test_edn_layouts_read_the_same_ops(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "h.edn", text)
    assert detect_format(path) == "edn"
    h = read_history(path)
    assert [(op.type, op.process, op.f, op.value) for op in h] == [
        ("invoke", 0, "write", 1), ("ok", 0, "write", 1),
    ]  # fmt: skip


def test_a_string_spanning_lines_keeps_its_newline(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "h.edn",
        '{:type :invoke, :process 0, :f :write, :value "a\nb"}\n'
        '{:type :ok, :process 0, :f :write, :value "a\nb"}\n',
    )
    assert read_history(path)[0].value == "a\nb"


def test_an_error_in_a_multi_line_map_names_the_line_it_starts_on(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "h.edn",
        "; header\n[{:type :invoke,\n  :process 0,\n  :f :write, :value 1}\n"
        " {:process 0,\n  :f :write, :value 1}]\n",
    )
    with pytest.raises(HistoryError) as e:
        read_history(path)
    assert e.value.line == 5 and "'type'" in e.value.reason


def test_an_unclosed_multi_line_map_names_the_line_it_starts_on(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "h.edn",
        "{:type :invoke, :process 0, :f :write, :value 1}\n{:type :ok,\n :process 0,\n",
    )
    with pytest.raises(HistoryError) as e:
        read_history(path)
    assert e.value.line == 2 and "malformed EDN" in e.value.reason


# --- Knossos ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "verdict"),
    [
        ("cas-register/good/cas-register-bug.edn", ["--initial-value", "0"], "VALID"),
        ("cas-register/good/mongodb-v0-ack-rollback-9.edn", ["--initial-value", "0"], "VALID"),
        ("cas-register/bad/bad-analysis.edn", ["--initial-value", "0"], "INVALID"),
        ("cas-register/bad/immediate-failure.edn", ["--initial-value", "0"], "INVALID"),
        ("cas-register/bad/rethink-fail-minimal.edn", ["--initial-value", "0"], "INVALID"),
        ("cas-register/bad/cas-failure.edn", ["--initial-value", "0"], "INVALID"),
        ("multi-register/good/multi-register.edn", ["--initial-value", "{:x 0 :y 0}"], "VALID"),
        ("multi-register/good/multi-register.edn", [], "INVALID"),
        ("mutex/bad/etcd.edn", [], "INVALID"),
    ],
)
def test_knossos_files_get_knossos_verdicts(name: str, args: list[str], verdict: str) -> None:
    code, out = clew("check", "--no-progress", *args, str(KNOSSOS / name))
    assert out.split()[0] == verdict, out
    assert code == (0 if verdict == "VALID" else 1)


# --- Elle -------------------------------------------------------------------------------


def test_elle_paper_example_without_process_or_f() -> None:
    h = read_history(str(ELLE / "paper-example.edn"))
    assert set(h.f_names) == {"txn"}
    assert {op.process for op in h} == {0}  # one anonymous process: invoke, ok, invoke, ok...
    r = txn_check(h, "list-append")
    assert r.valid is False and "G-single-item" in r.details["anomalies"]
    code, out = clew("check", "--no-progress", str(ELLE / "paper-example.edn"))
    assert code == 1 and out.startswith("INVALID") and "(list-append, serializable" in out


def test_elle_readme_history_of_completions_only() -> None:
    h = read_history(str(ELLE / "readme-g1c.edn"))
    # Each completion gets an invocation at the start, in a process of its own.
    assert [op.type for op in h] == ["invoke"] * 3 + ["ok"] * 3
    assert len({op.process for op in h}) == 3
    assert all(h.type[int(h.pair[i])] == INVOKE for i in range(3, 6))
    r = txn_check(h, "list-append")
    assert r.valid is False and r.details["anomalies"] == ["G1c"]
    # Concurrent as far as anyone knows: no real-time order makes anything worse.
    assert txn_check(h, "list-append", "strict-serializable").details["anomalies"] == ["G1c"]


def test_jsonl_transactions_without_f(tmp_path: Path) -> None:
    ops = [
        {"type": "invoke", "process": 0, "value": [["append", 1, 1]]},
        {"type": "ok", "process": 0, "value": [["append", 1, 1]]},
        {"type": "invoke", "process": 1, "value": [["r", 1, None]]},
        {"type": "ok", "process": 1, "value": [["r", 1, [1]]]},
    ]
    path = write(tmp_path, "h.jsonl", "".join(json.dumps(op) + "\n" for op in ops))
    code, out = clew("check", "--no-progress", "-m", "list-append", path)
    assert code == 0 and out.startswith("VALID"), out
    # Without a transaction value, f is still required.
    bad = write(tmp_path, "b.jsonl", '{"type": "invoke", "process": 0, "value": 3}\n')
    code, out = clew("check", bad)
    assert code == 254 and f"{bad}:1: the op has no 'f' field" in out


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("list-append-gh-30.edn", ["--consistency", "serializable"]),
        ("paper-example.json", []),
    ],
)
def test_elle_cli_transactions_without_f_get_its_verdicts(name: str, args: list[str]) -> None:
    path = str(DATA / "elle-cli-readers" / name)
    assert set(read_history(path).f_names) == {"txn"}
    code, out = clew("check", "--no-progress", "-m", "list-append", *args, path)
    assert code == 1 and out.startswith("INVALID"), out
    code, out = clew("check", "--no-progress", path)  # guessed from the micro-ops
    assert code == 1 and "(list-append," in out
