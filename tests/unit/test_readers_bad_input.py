"""Bad input never crashes clew: each case is a clear error naming file and line (exit
254) or a correct verdict (issue 11, part 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from checkers.txn import check as txn_check
from harness.errors import HistoryError
from harness.history import History


def write_jsonl(path: Path, ops: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(op) + "\n" for op in ops))
    return str(path)


def test_rw_register_value_min_int64_is_a_value_not_nil() -> None:
    m = -(2**63)
    h = History.from_ops(
        [
            {"type": "invoke", "process": 0, "f": "txn", "value": [["w", 1, m]]},
            {"type": "ok", "process": 0, "f": "txn", "value": [["w", 1, m]]},
            {"type": "invoke", "process": 0, "f": "txn", "value": [["r", 1, None]]},
            {"type": "ok", "process": 0, "f": "txn", "value": [["r", 1, m]]},
        ]
    )
    assert txn_check(h, "rw-register").valid is True
    assert txn_check(h, "rw-register", "strict-serializable").valid is True


@pytest.mark.parametrize("model", ["list-append", "rw-register"])
def test_a_list_where_a_micro_op_name_belongs_is_named(model: str) -> None:
    h = History.from_ops(
        [
            {"type": "invoke", "process": 0, "f": "txn", "value": [[["r"], 1, None]]},
            {"type": "ok", "process": 0, "f": "txn", "value": [[["r"], 1, [1]]]},
        ],
        path="h.jsonl",
    )
    with pytest.raises(HistoryError) as e:
        txn_check(h, model)
    assert (e.value.path, e.value.line) == ("h.jsonl", 2)
    assert str(e.value).startswith("h.jsonl:2: unknown micro-op ['r']")


# --- through the CLI: every case is exit 254 and one line naming the file and line --------

DEEP = "[" * 600 + "]" * 600
BIG = 2**63


def clew(*args: str) -> tuple[int, str]:
    from click.testing import CliRunner

    from harness.cli import cli

    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.output


def _edn_op(typ: str, extra: str = "", value: str = "1") -> str:
    return f"{{:type :{typ}, :process 0, :f :write, :value {value}{extra}}}\n"


JSON_OP = '{"type":"invoke","process":0,"f":"write","value":VALUE}'

NESTED = {
    "jsonl": JSON_OP.replace("VALUE", DEEP) + "\n",
    "json": "[" + JSON_OP.replace("VALUE", DEEP) + "]\n",
    "edn": _edn_op("invoke", value=DEEP),
    "edn-list": _edn_op("invoke", value="(" * 600 + ")" * 600),
    "edn-map": _edn_op("invoke", value="{:a " * 600 + "1" + "}" * 600),
    "edn-set": _edn_op("invoke", value="#{" * 600 + "}" * 600),
    "porcupine-etcd": f"INFO  jepsen.util - 0\t:invoke\t:write\t{DEEP}\n",
    "porcupine-kv": '{:process 0, :type :invoke, :f :put, :key "1", :value V}\n'.replace("V", DEEP),
    "jsonl-100k": JSON_OP.replace("VALUE", "[" * 100_000 + "]" * 100_000) + "\n",
}


@pytest.mark.parametrize("case", list(NESTED))
def test_deep_nesting_is_a_clear_error(tmp_path: Path, case: str) -> None:
    f = tmp_path / "h.txt"
    f.write_text("\n" + NESTED[case])
    fmt = {"edn-list": "edn", "edn-map": "edn", "edn-set": "edn", "jsonl-100k": "jsonl"}
    code, out = clew("check", "--format", fmt.get(case, case), str(f))
    assert code == 254, out
    assert f"ERROR    {f}:2: a value is nested more than 100 levels deep" in out


def test_nesting_within_the_limit_is_read(tmp_path: Path) -> None:
    v = "[" * 99 + "]" * 99
    f = tmp_path / "h.jsonl"
    op = JSON_OP.replace("VALUE", v)
    f.write_text(op + "\n" + op.replace("invoke", "ok") + "\n")
    code, out = clew("check", "-m", "register", str(f))
    assert code == 0, out


@pytest.mark.parametrize("field", ["process", "time", "index"])
@pytest.mark.parametrize("fmt", ["jsonl", "edn"])
@pytest.mark.parametrize("n", [BIG, 10**30, -(2**63) - 1])
def test_integers_beyond_64_bits_are_a_clear_error(
    tmp_path: Path, field: str, fmt: str, n: int
) -> None:
    f = tmp_path / f"h.{fmt}"
    if fmt == "jsonl":
        ops = [{"type": "invoke", "process": 0, "f": "write", "value": 1}]
        ops.append({"type": "ok", "process": 0, "f": "write", "value": 1, field: n})
        write_jsonl(f, ops)
    else:
        f.write_text(
            _edn_op("invoke")
            + _edn_op("ok", f", :{field} {n}").replace(
                ":process 0, ", "" if field == "process" else ":process 0, "
            )
        )
    code, out = clew("check", str(f))
    assert code == 254, out
    assert out.startswith(f"ERROR    {f}:2: ")
    assert ("64 bits" in out) or ("non-negative integer (below 2^63)" in out)


def test_negative_process_ids_are_refused_not_taken_for_the_nemesis(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "h.jsonl",
        [
            {"type": "invoke", "process": -1, "f": "write", "value": 1},
            {"type": "ok", "process": -1, "f": "write", "value": 1},
            {"type": "info", "process": "nemesis", "f": "start", "value": None},
            {"type": "invoke", "process": 0, "f": "read", "value": None},
            {"type": "ok", "process": 0, "f": "read", "value": 1},
        ],
    )
    code, out = clew("check", "-m", "register", f)
    assert code == 254
    why = "process must be a non-negative integer (below 2^63) or a name such as nemesis"
    assert out == f"ERROR    {f}:1: {why}, got -1\n"


def test_a_bad_cas_value_names_file_and_line(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "h.jsonl",
        [
            {"type": "invoke", "process": 0, "f": "write", "value": 1},
            {"type": "ok", "process": 0, "f": "write", "value": 1},
            {"type": "invoke", "process": 0, "f": "cas", "value": 5},
            {"type": "ok", "process": 0, "f": "cas", "value": 5},
        ],
    )
    code, out = clew("check", "-m", "cas-register", f)
    assert (code, out) == (254, f"ERROR    {f}:3: a cas value must be [from, to], got 5\n")


def test_a_model_error_names_the_file(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "h.jsonl",
        [
            {"type": "invoke", "process": 0, "f": "frobnicate", "value": 1},
            {"type": "ok", "process": 0, "f": "frobnicate", "value": 1},
        ],
    )
    code, out = clew("check", "-m", "register", f)
    assert code == 254 and out.startswith(f"ERROR    {f}:1: model 'register' has no operation")


def test_rw_register_min_int64_through_the_cli(tmp_path: Path) -> None:
    m = -(2**63)
    f = write_jsonl(
        tmp_path / "h.jsonl",
        [
            {"type": "invoke", "process": 0, "f": "txn", "value": [["w", 1, m]]},
            {"type": "ok", "process": 0, "f": "txn", "value": [["w", 1, m]]},
            {"type": "invoke", "process": 1, "f": "txn", "value": [["r", 1, None]]},
            {"type": "ok", "process": 1, "f": "txn", "value": [["r", 1, m]]},
        ],
    )
    code, out = clew("check", "-m", "rw-register", "--consistency", "strict-serializable", f)
    assert code == 0 and out.startswith("VALID"), out


@pytest.mark.parametrize("content", [NESTED["jsonl"], "{:type :ok", "", "[1, 2]\n", '{"a": 1}\n'])
def test_convert_of_bad_input_is_exit_254_without_a_traceback(tmp_path: Path, content: str) -> None:
    src = tmp_path / "src.jsonl"
    src.write_text(content)
    code, out = clew("convert", str(src), str(tmp_path / "out.edn"))
    assert code == 254
    assert "Traceback" not in out and out.startswith(f"clew: {src}:1: ")
    assert not (tmp_path / "out.edn").exists()


def test_convert_to_an_unwritable_path_is_exit_254(tmp_path: Path) -> None:
    src = write_jsonl(
        tmp_path / "src.jsonl", [{"type": "invoke", "process": 0, "f": "write", "value": 1}]
    )
    code, out = clew("convert", src, f"{src}/under-a-file.jsonl")
    assert code == 254 and "cannot write the history" in out and "Traceback" not in out


@pytest.mark.parametrize("option", ["--report", "--counterexample-dir"])
def test_unwritable_outputs_are_exit_254_before_checking(tmp_path: Path, option: str) -> None:
    src = write_jsonl(
        tmp_path / "src.jsonl",
        [
            {"type": "invoke", "process": 0, "f": "write", "value": 1},
            {"type": "ok", "process": 0, "f": "write", "value": 1},
        ],
    )
    code, out = clew("check", option, f"{src}/under-a-file/x", src)
    assert code == 254
    assert out.startswith(f"clew: {src}") and out.endswith(f"({option})\n")
    assert "not a directory" in out.lower() and out.count("\n") == 1
    code, out = clew("check", "--report", str(tmp_path), src)
    assert code == 254 and "is a directory" in out


# --- transactions that are not lists of [f key value] micro-ops: the user's mistake -------

LA, RW = "list-append", "rw-register"
GOOD_TXN = {LA: [["append", "x", 1], ["r", "y", None]], RW: [["w", "x", 1]]}
BAD_TXNS = [
    (LA, [["append", "x"]], "micro-op ['append', 'x'] is not [f key value]"),
    (RW, [["w", "x"]], "micro-op ['w', 'x'] is not [f key value]"),
    (LA, [5], "micro-op 5 is not [f key value]"),
    (LA, [["r", "x", None, 0], ["append", "y"]], "micro-op ['append', 'y'] is not [f key value]"),
    (RW, [5], "micro-op 5 is not [f key value]"),
    (RW, ["wxy"], "micro-op 'wxy' is not [f key value]"),  # (was read as [w x y])
    (LA, ["axy", ["append", "x", 1]], "micro-op 'axy' is not [f key value]"),
    (LA, "abc", "a list-append transaction's value must be a list of micro-ops [f key value], "
                "got f 'txn' with value 'abc'"),
    (RW, "abc", "a rw-register transaction's value must be a list of micro-ops [f key value], "
                "got f 'txn' with value 'abc'"),
    (LA, [["frob", "x", 1]], "unknown micro-op 'frob' for list-append (expected append and r)"),
    (RW, [["frob", "x", 1]], "unknown micro-op 'frob' for rw-register (expected w and r)"),
    (RW, [["append", "x", 1]], "unknown micro-op 'append' for rw-register (expected w and r)"),
    (LA, [["append", "x", None]], "micro-op ['append', 'x', None]: cannot write nil"),
    (RW, [["w", "x", None]], "micro-op ['w', 'x', None]: cannot write nil"),
    (LA, [["r", "x", 5]], "a list-append read must return a list, got 5"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "value", "why"), BAD_TXNS)
def test_a_malformed_transaction_names_file_and_line(
    tmp_path: Path, model: str, value: Any, why: str
) -> None:
    path = write_jsonl(
        tmp_path / "h.jsonl",
        [
            {"type": "invoke", "process": 0, "f": "txn", "value": GOOD_TXN[model]},
            {"type": "ok", "process": 0, "f": "txn", "value": GOOD_TXN[model]},
            {"type": "invoke", "process": 1, "f": "txn", "value": value},
            {"type": "ok", "process": 1, "f": "txn", "value": value},
        ],
    )
    assert clew("check", "-m", model, path) == (254, f"ERROR    {path}:4: {why}\n")


@pytest.mark.parametrize("model", [LA, RW])
def test_register_ops_checked_as_transactions_name_file_and_line(
    tmp_path: Path, model: str
) -> None:
    path = write_jsonl(
        tmp_path / "h.jsonl",
        [
            {"type": "invoke", "process": 0, "f": "write", "value": 1},
            {"type": "ok", "process": 0, "f": "write", "value": 1},
        ],
    )
    why = f"a {model} transaction's value must be a list of micro-ops [f key value], got f 'write'"
    assert clew("check", "-m", model, path) == (254, f"ERROR    {path}:2: {why} with value 1\n")


def test_an_info_transaction_is_named_by_the_invocation_it_was_read_from(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "h.jsonl",
        [
            {"type": "invoke", "process": 0, "f": "txn", "value": [["append", "x"]]},
            {"type": "invoke", "process": 1, "f": "txn", "value": [["append", "y", 1]]},
            {"type": "info", "process": 0, "f": "txn", "value": None},
            {"type": "ok", "process": 1, "f": "txn", "value": [["append", "y", 1]]},
        ],
    )
    why = "micro-op ['append', 'x'] is not [f key value]"
    assert clew("check", "-m", LA, path) == (254, f"ERROR    {path}:1: {why}\n")


def test_a_malformed_edn_transaction_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "h.edn"
    f.write_text(
        "{:type :invoke, :f :txn, :value [[:append :x 1]], :process 0}\n"
        "{:type :ok, :f :txn, :value [[:append :x 1]], :process 0}\n"
        "{:type :invoke, :f :txn, :value [[:append :y]], :process 0}\n"
        "{:type :ok, :f :txn, :value [[:append :y]], :process 0}\n"
    )
    why = "micro-op ['append', 'y'] is not [f key value]"
    assert clew("check", "-m", LA, str(f)) == (254, f"ERROR    {f}:4: {why}\n")


def test_a_malformed_transaction_in_a_scanned_file_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file the compiled scanner reads (micro-ops kept as columns, checked from those)
    names a malformed transaction among them as a small file does."""
    from harness.formats import jsonl

    monkeypatch.setattr(jsonl, "SCAN_MIN_BYTES", 0)
    ops = []
    for i in range(500):
        txn = [["append", i % 7, i]]
        ops.append({"type": "invoke", "process": i % 5, "f": "txn", "value": txn})
        ops.append({"type": "ok", "process": i % 5, "f": "txn", "value": txn})
    f = tmp_path / "h.jsonl"
    path = str(f)
    f.write_text("".join(json.dumps(op, separators=(",", ":")) + "\n" for op in ops))
    assert jsonl.read_jsonl(path).mops is not None  # (the scanner takes compact lines)
    assert clew("check", "-m", LA, path)[0] == 0
    ops[701]["value"] = [["append", 3, 350], ["frob", 4, None]]
    f.write_text("".join(json.dumps(op, separators=(",", ":")) + "\n" for op in ops))
    why = "unknown micro-op 'frob' for list-append (expected append and r)"
    assert clew("check", "-m", LA, path) == (254, f"ERROR    {path}:702: {why}\n")


@pytest.mark.parametrize("model", [LA, RW])
def test_a_history_without_transactions_is_valid_not_a_crash(tmp_path: Path, model: str) -> None:
    path = write_jsonl(
        tmp_path / "h.jsonl", [{"type": "info", "process": "nemesis", "f": "kill", "value": None}]
    )
    code, out = clew("check", "-m", model, path)
    assert code == 0 and out.startswith(f"VALID    {path}  ({model}, serializable, 0 txns"), out


def test_a_byte_order_mark_is_named_not_called_an_unknown_format(tmp_path: Path) -> None:
    from harness.formats import read_history

    f = tmp_path / "bom.jsonl"
    f.write_bytes(b'\xef\xbb\xbf{"type": "invoke", "f": "read", "process": 0}\n')
    with pytest.raises(HistoryError, match=r"bom\.jsonl:1: the file starts with a byte-order"):
        read_history(str(f))
