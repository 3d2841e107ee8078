"""One op with a huge value is refused before it is decoded (found by a memory audit).

``--max-memory`` was looked at between ops, so one op of 99 MB (33 million empty lists)
took 2.5-3.4 GB before the look. Now each reader compares an upper bound of what decoding
an op or line takes with what is left of the budget first; these tests check the bounds
with tracemalloc and the readers with the resident set held flat (so only the bound can
refuse), a budget of 16 MiB and a value of 600 KB.
"""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import harness.read_budget as rb
from harness.formats import read_history
from harness.read_budget import ReadBudget, ReadBudgetExceeded

_EMPTIES = 200_000  # empty lists in the huge value: about 600 KB of text


def _peak(fn: Callable[..., Any], *args: Any) -> int:
    tracemalloc.start()
    try:
        fn(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


_JSON_ITEMS = ["[]", "{}", "0.5", '"ab"', "12345", "[[]]", '{"a":0}', "[0]", '"\U0001f600"',
               '{"k1":[],"k2":{}}', "true", "null", '[{"k":[1.5,-2.5]}]',
               '"' + "y" * 40 + '"']  # fmt: skip


@pytest.mark.parametrize("item", _JSON_ITEMS)
def test_the_jsonl_block_bound_bounds_what_either_path_takes(item: str) -> None:
    """_block_bound of a block of op lines is at least what msgspec's decoding of it (the
    fast path) and json's (the checked path) allocate."""
    import json

    from harness.formats.jsonl import _DECODE_LINES, _block_bound

    line = '{"type":"invoke","process":0,"f":"w","value":[' + ",".join([item] * 200) + "]}\n"
    block = (line * 50).encode()
    assert _peak(_DECODE_LINES, block) <= _block_bound(block)
    text = block.decode()
    assert _peak(lambda: json.loads("[" + ",".join(text.splitlines()) + "]")) <= _block_bound(
        block
    )


# Items of each kind, made distinct by {i} (a value repeated would be shared: small ints are
# cached, equal strings interned, and the bound was once measured so and held only so).
_EDN_ITEMS = ["{i}", "{i}000000000000", "{i}00000000000000000000000", "-{i}.5", "{i}.5e300",
              '"s{i}"', '"\\n{i}\\"x"', '"\U0001f600{i}"', ":k{i}", ":ns/k{i}", "k{i}",
              "[{i}]", "[[{i}] []]", "[:k{i} {i} \"x\"]", "{{:a {i}}}", "{{:a {i}, :b [{i}]}}",
              "#{{{i}}}", "({i})", "{{[{i}] {i}}}", "#inst \"{i}\"", "{i}N", "{i}/3", "\\a",
              "nil", "[]", "{{}}", "#{{}}", "()", '""', "[[[[{i}]]]]"]  # fmt: skip
_EDN_ITEMS_PER_OP = 2_000


def _edn_history(path: Path, item: str, sep: str, layout: str) -> str:
    """Write a two-op history.edn whose ok (or, ``first``, invoke) carries a vector of
    _EDN_ITEMS_PER_OP distinct ``item``s (``lines``: 40 of them a line; ``slow``: with a
    token at the end that only the library reads); return the text of that op."""
    items = [item.format(i=i) for i in range(_EDN_ITEMS_PER_OP)]
    if layout == "lines":
        body = "\n".join(sep.join(items[i : i + 40]) for i in range(0, len(items), 40))
    else:
        body = sep.join(items) + (" 1N" if layout == "slow" else "")
    head = "{:type :%s, :f :write, :process 0, :time %d, :index %d, :value "
    small = (head % ("invoke", 1, 0)) + "nil}"
    big = (head % ("ok", 2, 1)) + "[" + body + "]}"
    if layout == "first":
        small, big = small.replace(":invoke", ":ok"), big.replace(":ok", ":invoke")
        text = big + "\n" + small + "\n"
    else:
        text = small + "\n" + big + "\n"
    path.write_text(text)
    return big


_EDN_LAYOUTS = [(" ", "second"), (", ", "second"), (",", "second"), ("", "second"),
                (" ", "first"), (", ", "first"), (" ", "lines"), (", ", "lines"),
                (" ", "slow"), (",", "slow")]  # fmt: skip


def _needs_a_separator(item: str) -> bool:
    """Whether items of this kind run together without a separator (not drawn so)."""
    return re.match(r"[^\[{(#\"]|#inst", item.format(i=1)) is not None


@pytest.mark.parametrize(
    ("item", "sep", "layout"),
    [(item, sep, layout) for sep, layout in _EDN_LAYOUTS for item in _EDN_ITEMS
     if sep or not _needs_a_separator(item)],
)  # fmt: skip
def test_the_edn_memory_bound_bounds_what_reading_takes(
    tmp_path: Path, item: str, sep: str, layout: str
) -> None:
    """edn_memory_bound of an op's text is at least what reading the file takes (all of
    read_history: the shapes, the JSON translation, edn_format, the builder), for an op
    whose value is a vector of distinct items of each kind, with each separator (none
    too: adjacent tokens), on one line or over many (was: 2.0x the bound for ints and 2.2x
    for floats on a line the shapes matched, whose regex takes 1.3 KB an element; found
    by review)."""
    from harness.formats.edn import edn_memory_bound

    path = tmp_path / "h.edn"
    warm = tmp_path / "warm.edn"
    warm.write_text('{:type :invoke, :f :w, :process 0, :value [1 \\a #{2} (3) {:a "x"}]}\n'
                    "{:type :ok, :f :w, :process 0, :value 1.5}\n")  # fmt: skip
    read_history(str(warm), "edn")  # the library's tables and the builder, built once
    budget = ReadBudget(max_memory=1 << 40)  # looks at the budget, never refuses
    # What reading any file takes (its first block, 1 MiB; held when a line is checked).
    base = _peak(lambda: read_history(str(warm), "edn", budget=budget))
    big = _edn_history(path, item, sep, layout)
    peak = _peak(lambda: read_history(str(path), "edn", budget=budget)) - base
    assert peak <= edn_memory_bound(big), (peak, edn_memory_bound(big))


def _huge_op_files(tmp_path: Path) -> dict[str, Path]:
    """A two-op history whose invoke's value is _EMPTIES empty lists, in each format."""
    v = "[" + ",".join(["[]"] * _EMPTIES) + "]"
    op1 = '{"type":"invoke","f":"write","process":0,"time":1,"index":0,"value":' + v + "}"
    op2 = '{"type":"ok","f":"write","process":0,"time":2,"index":1,"value":1}'
    ev = "[" + " ".join(["[]"] * _EMPTIES) + "]"
    e1 = "{:type :invoke, :f :write, :process 0, :time 1, :index 0, :value " + ev + "}"
    e2 = "{:type :ok, :f :write, :process 0, :time 2, :index 1, :value 1}"
    files = {"json": "[" + op1 + ",\n" + op2 + "]\n", "jsonl": op1 + "\n" + op2 + "\n",
             "edn": e1 + "\n" + e2 + "\n"}  # fmt: skip
    out = {}
    for fmt, text in files.items():
        out[fmt] = tmp_path / f"huge.{fmt}"
        out[fmt].write_text(text)
    return out


@pytest.mark.parametrize("fmt", ["json", "jsonl", "edn"])
def test_one_huge_op_is_refused_before_it_is_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """An op whose decoding would take more than the budget is refused, naming its line,
    though the resident set does not grow (was: decoded, 2.5-3.4 GB for one of 99 MB)."""
    path = _huge_op_files(tmp_path)[fmt]
    monkeypatch.setattr(rb, "resident_bytes", lambda: 100 * 2**20)  # the resident set is flat
    with pytest.raises(ReadBudgetExceeded) as e:
        read_history(str(path), fmt, budget=ReadBudget(max_memory=16 * 2**20))
    assert e.value.resource == "memory" and e.value.line == 1
    assert f"memory budget of 16 MiB reached while reading {path} at line 1 (" in str(e.value)
    assert str(e.value).endswith("; raise --max-memory")
    h = read_history(str(path), fmt, budget=ReadBudget(max_memory=2**30))
    assert len(h) == 2 and len(h[0].value) == _EMPTIES


def test_a_json_file_larger_than_the_budget_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON array is held whole while its ops are decoded: a file larger than what is
    left of the budget is refused before it is read."""
    path = _huge_op_files(tmp_path)["json"]
    monkeypatch.setattr(rb, "resident_bytes", lambda: 100 * 2**20)
    with pytest.raises(ReadBudgetExceeded) as e:
        read_history(str(path), "json", budget=ReadBudget(max_memory=2**19))
    assert "(reading the file whole may take up to" in str(e.value)


def test_a_json_op_over_many_lines_reads_the_same_under_a_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An op that spans lines is decoded from windows of lines that grow until it ends:
    the same ops as without a budget; and a malformed one is reported as without one."""
    import json

    from harness.errors import HistoryError

    ops = [{"type": t, "f": "write", "process": 0, "value": list(range(3_000 * (i % 2)))}
           for i, t in enumerate(["invoke", "ok"] * 3)]  # fmt: skip
    path = tmp_path / "pretty.json"
    path.write_text(json.dumps(ops, indent=2))
    monkeypatch.setattr(rb, "SMALL_TEXT", 16)  # every op is looked at, and decoded in windows
    budget = ReadBudget(max_memory=2**30)
    with_budget = read_history(str(path), "json", budget=budget)
    plain = read_history(str(path), "json")
    assert [o.to_dict() for o in with_budget] == [o.to_dict() for o in plain]
    path.write_text(json.dumps(ops, indent=2).replace("2999", "2999 1", 1))
    errors = []
    for b in (budget, None):
        with pytest.raises(HistoryError) as e:
            read_history(str(path), "json", budget=b)
        errors.append(str(e.value))
    assert errors[0] == errors[1] and "Expecting ',' delimiter" in errors[0]


@pytest.mark.parametrize("indent", [None, 1])
def test_a_json_array_on_one_line_is_read_in_linear_time_under_a_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, indent: int | None
) -> None:
    """A JSON array written on one line (json.dump's default) was decoded, under a budget,
    op by op from a window reaching the line's end: all the rest of the file for each op
    (80,000 ops: 33 s, and unknown at --time-limit 20). Each op's window is now about its
    own length; the ops are those read without a budget."""
    import json

    import harness.formats.json_array as ja

    ops = [{"type": t, "f": "write", "process": i // 2 % 3, "value": i // 2}
           for i, t in enumerate(["invoke", "ok"] * 2_000)]  # fmt: skip
    path = tmp_path / "h.json"
    path.write_text(json.dumps(ops, indent=indent))
    monkeypatch.setattr(rb, "resident_bytes", lambda: 100 * 2**20)  # the resident set is flat
    monkeypatch.setattr(rb, "SMALL_TEXT", 16)
    budget = ReadBudget(max_memory=2**20)
    assert budget.small_text(rb.JSON_MOST_PER_CHAR) < 300  # the file is read in windows
    decoded = []
    raw_decode = ja._RAW_DECODE

    def counting(text: str, pos: int = 0) -> Any:
        decoded.append(len(text) - pos)
        return raw_decode(text, pos)

    monkeypatch.setattr(ja, "_RAW_DECODE", counting)
    with_budget = read_history(str(path), "json", budget=budget)
    size = len(path.read_text())
    assert sum(decoded) < 30 * size, (sum(decoded), size)  # was about 2,000 times the size
    assert [o.to_dict() for o in with_budget] == [o.to_dict() for o in read_history(str(path))]
