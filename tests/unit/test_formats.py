"""History file formats: round trips, the Porcupine corpus, EDN fast paths, and errors."""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path
from typing import Any

import edn_format
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import ConfigError, HistoryError, InputError
from harness.formats import (
    FORMATS,
    convert,
    detect_format,
    op_to_json_line,
    read_history,
    write_history,
)
from harness.formats._edn_fast import Shapes
from harness.formats._io import add_op
from harness.formats.edn import (
    _strip_tags,
    normalise,
    parse_line_fast,
    parse_line_slow,
    read_edn,
)
from harness.history import History, HistoryBuilder

DATA = Path(__file__).resolve().parent.parent / "data" / "porcupine"
ETCD_LOGS = sorted((DATA / "jepsen").glob("etcd_*.log"))
KV_FILES = sorted((DATA / "kv").glob("*.txt"))
ROOT = Path(__file__).resolve().parents[2]


def ops_of(history: History) -> list[dict[str, Any]]:
    return [op.to_dict() for op in history]


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def reference_edn(path: str) -> list[dict[str, Any]]:
    """The ops of an EDN file decoded line by line by the library alone."""
    builder = HistoryBuilder(path=path)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                for op in parse_line_slow(line.rstrip("\n"), path=path, lineno=n):
                    add_op(builder, op, n)
    return ops_of(builder.build())


def sample_history() -> History:
    """A small history exercising every field and awkward values."""
    ops: list[dict[str, Any]] = [
        {"type": "invoke", "process": 0, "f": "write", "value": 3, "node": "n1"},
        {"type": "invoke", "process": "nemesis", "f": "start-partition", "value": None},
        {"type": "invoke", "process": 1, "f": "cas", "value": [1, 2], "key": "k-1"},
        {"type": "ok", "process": 0, "f": "write", "value": 3, "node": "n1"},
        {
            "type": "info",
            "process": "nemesis",
            "f": "start-partition",
            "value": {"n1": ["n2", "n3"], "n2": ["n1"]},
        },
        {
            "type": "fail",
            "process": 1,
            "f": "cas",
            "value": [1, 2],
            "key": "k-1",
            "error": ["cas-mismatch", 'saw "2", wanted 1\nnext line'],
        },
        {
            "type": "invoke",
            "process": 2,
            "f": "txn",
            "value": [["append", 1, 2], ["r", 3, None]],
            "key": 7,
        },
        {
            "type": "ok",
            "process": 2,
            "f": "txn",
            "value": [["append", 1, 2], ["r", 3, [1, -2]]],
            "key": 7,
        },
        {"type": "invoke", "process": 3, "f": "put", "value": "x, :y [z] {w} ; é \t\\"},
        {"type": "info", "process": 3, "f": "put", "value": "x, :y [z] {w} ; é \t\\"},
        {"type": "invoke", "process": 4, "f": "read", "value": None},
        {"type": "ok", "process": 4, "f": "read", "value": {"a": 1.5, "b": True, "c": ""}},
        {"type": "invoke", "process": 5, "f": "read", "value": None},
    ]
    for i, op in enumerate(ops):
        op["time"] = 1000 * i + 7
    return History.from_ops(ops, path="sample")


# --------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("fmt,ext", [("jsonl", ".jsonl"), ("json", ".json"), ("edn", ".edn")])
def test_round_trip(tmp_path: Path, fmt: str, ext: str) -> None:
    history = sample_history()
    explicit = str(tmp_path / f"explicit{ext}")
    write_history(history, explicit, fmt)
    assert detect_format(explicit) == fmt
    assert ops_of(read_history(explicit)) == ops_of(history)
    by_extension = str(tmp_path / f"auto{ext}")
    write_history(history, by_extension, "auto")
    assert Path(by_extension).read_text() == Path(explicit).read_text()


def test_edn_written_by_clew_reads_the_same_through_the_library(tmp_path: Path) -> None:
    path = str(tmp_path / "h.edn")
    write_history(sample_history(), path, "edn")
    assert ops_of(read_edn(path)) == reference_edn(path)


@pytest.mark.parametrize("dst_ext", [".jsonl", ".json", ".edn"])
def test_convert_returns_the_op_count_and_keeps_ops(tmp_path: Path, dst_ext: str) -> None:
    src = str(tmp_path / "src.jsonl")
    write_history(sample_history(), src, "jsonl")
    dst = str(tmp_path / f"dst{dst_ext}")
    assert convert(src, dst) == len(sample_history())
    assert ops_of(read_history(dst)) == ops_of(sample_history())


def test_convert_from_porcupine(tmp_path: Path) -> None:
    dst = str(tmp_path / "etcd.jsonl")
    n = convert(str(ETCD_LOGS[0]), dst, src_format="porcupine-etcd")
    assert n == len(read_history(dst)) > 0


def test_op_to_json_line_is_one_compact_line_in_field_order() -> None:
    op = {
        "f": "read",
        "value": None,
        "process": 1,
        "type": "ok",
        "time": 5,
        "index": 2,
        "node": None,
        "error": None,
        "extra": "dropped",
        "key": {"k": "x\ny"},
    }
    line = op_to_json_line(op)
    assert line.endswith("\n") and line.count("\n") == 1
    assert line == (
        '{"index":2,"time":5,"type":"ok","process":1,"f":"read","value":null,"key":{"k":"x\\ny"}}\n'
    )
    assert json.loads(line)["key"] == {"k": "x\ny"}


def test_op_to_json_line_converts_tuples() -> None:
    line = op_to_json_line({"type": "ok", "process": 0, "f": "r", "value": (1, (2, 3))})
    assert json.loads(line)["value"] == [1, [2, 3]]


def test_jsonl_defaults_and_ignored_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "h.jsonl",
        '\n{"type":"invoke","process":0,"f":"read","extra":[1]}\n\n'
        '{"type":"ok","process":0,"f":"read","value":4,"time":99,"index":10}\n',
    )
    h = read_history(path)
    assert ops_of(h) == [
        {"index": 0, "time": 0, "type": "invoke", "process": 0, "f": "read", "value": None},
        {"index": 10, "time": 99, "type": "ok", "process": 0, "f": "read", "value": 4},
    ]
    assert list(h.line) == [2, 4]


# --------------------------------------------------------------------------------------
# Porcupine


def test_porcupine_corpus_is_present() -> None:
    assert len(ETCD_LOGS) == 103
    assert len(KV_FILES) == 6


@pytest.mark.parametrize("path", [p for p in ETCD_LOGS if p.stat().st_size], ids=lambda p: p.name)
def test_every_etcd_log_loads(path: Path) -> None:
    assert detect_format(str(path)) == "porcupine-etcd"
    h = read_history(str(path))
    lines = [s for s in path.read_text().splitlines() if s.strip()]
    assert len(h) == len(lines)
    assert list(h.time) == list(range(len(h)))  # no timestamps: time is the position
    for op, text in zip(h, lines, strict=True):
        fields = text.split()
        assert op.process == int(fields[3])
        assert ":" + op.type == fields[4] and ":" + op.f == fields[5]
        if fields[6] == ":timed-out":
            assert op.value is None and op.error == "timed-out"
        elif fields[6] == "nil":
            assert op.value is None
        elif fields[6].startswith("["):
            assert op.value == [int(fields[6][1:]), int(fields[7][:-1])]
        else:
            assert op.value == int(fields[6])


def test_there_are_102_non_empty_etcd_logs() -> None:
    assert sum(1 for p in ETCD_LOGS if p.stat().st_size) == 102


def test_empty_etcd_log_is_an_error() -> None:
    path = str(DATA / "jepsen" / "etcd_095.log")
    for fmt in ("auto", "porcupine-etcd"):
        with pytest.raises(HistoryError, match="empty") as e:
            read_history(path, fmt)
        assert e.value.path == path and e.value.line == 1


def test_etcd_log_with_spaces_and_nemesis(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "e.log",
        "INFO  jepsen.util - 3 :invoke :cas [1 4]\n"
        "INFO  jepsen.core - something else entirely\n"
        "INFO  jepsen.util - :nemesis :info :start nil\n"
        "INFO  jepsen.util - 3 :info :cas :timed-out\n",
    )
    h = read_history(path)
    assert ops_of(h) == [
        {"index": 0, "time": 0, "type": "invoke", "process": 3, "f": "cas", "value": [1, 4]},
        {"index": 1, "time": 1, "type": "info", "process": "nemesis", "f": "start", "value": None},
        {
            "index": 2,
            "time": 2,
            "type": "info",
            "process": 3,
            "f": "cas",
            "value": None,
            "error": "timed-out",
        },
    ]
    assert list(h.line) == [1, 3, 4]


def test_malformed_etcd_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "e.log",
        "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\n",
    )
    with pytest.raises(HistoryError) as e:
        read_history(path, "porcupine-etcd")
    assert e.value.line == 2 and e.value.path == path


def test_etcd_log_longer_than_a_batch_reads_every_op_in_order(tmp_path: Path) -> None:
    # The reader adds ops to the history in batches of 4,096: 10,000 ops cross two batch
    # boundaries, and a bad line after them is still named by its own line number.
    text = "".join(
        f"INFO  jepsen.util - {k % 7}\t:invoke\t:cas\t[{k} {k + 1}]\n"
        f"INFO  jepsen.util - {k % 7}\t:{'ok' if k % 3 else 'fail'}\t:cas\t[{k} {k + 1}]\n"
        for k in range(5_000)
    )
    path = write(tmp_path, "e.log", text)
    h = read_history(path, "porcupine-etcd")
    assert len(h) == 10_000
    assert [op.value for op in h][9_998:] == [[4_999, 5_000], [4_999, 5_000]]
    assert [op.type for op in h][:4] == ["invoke", "fail", "invoke", "ok"]
    assert list(h.process[:6]) == [0, 0, 1, 1, 2, 2]
    assert list(h.line[[0, 4_095, 4_096, 9_999]]) == [1, 4_096, 4_097, 10_000]
    bad = write(tmp_path, "bad.log", text + "INFO  jepsen.util - 0\t:ok\n")
    with pytest.raises(HistoryError) as e:
        read_history(bad, "porcupine-etcd")
    assert e.value.line == 10_001


@pytest.mark.parametrize("path", KV_FILES, ids=lambda p: p.name)
def test_every_kv_file_loads_with_keys(path: Path) -> None:
    assert detect_format(str(path)) == "porcupine-kv"
    h = read_history(str(path))
    lines = path.read_text().splitlines()
    assert len(h) == len(lines)
    assert list(h.time) == list(range(len(h)))
    assert all(isinstance(op.key, str) for op in h)
    assert set(h.f_names) <= {"get", "put", "append"}
    assert ops_of(h) == reference_edn(str(path))


@pytest.mark.parametrize("path", KV_FILES, ids=lambda p: p.name)
def test_kv_fast_path_agrees_with_the_library(path: Path) -> None:
    shapes = Shapes()
    for line in path.read_text().splitlines():
        slow = parse_line_slow(line)
        fast = parse_line_fast(line)
        assert fast is not None, line
        assert fast == slow
        shapes.learn(line, slow[0])
        assert shapes.shapes, "the kv lines are simple: a shape must be learnt"
        m = shapes.shapes[0].fullmatch(line)
        assert m is not None, line
        decoded = shapes.decode(shapes.shapes[0], m.groups())
        assert decoded == {k: v for k, v in slow[0].items() if k in decoded}
        assert set(decoded) == set(slow[0])


# --------------------------------------------------------------------------------------
# EDN details


def test_edn_normalisation_examples() -> None:
    line = (
        "#jepsen.history.Op{:index 0, :time 12N, :type :invoke, :process :nemesis, "
        ':f :a/b, :value [(1 2) #{3 1 2} {:k nil, "s" \\c} #inst "2020-01-01" 1.5M sym?]}'
    )
    expected = {
        "index": 0,
        "time": 12,
        "type": "invoke",
        "process": "nemesis",
        "f": "a/b",
        "value": [[1, 2], [1, 2, 3], {"k": None, "s": "c"}, "2020-01-01", 1.5, "sym?"],
    }
    assert parse_line_slow(line) == [expected]
    fast = parse_line_fast(line)
    assert fast is None or fast == [expected]


def test_edn_fast_path_handles_sets_lists_tags_and_escapes() -> None:
    line = (
        '#jepsen.history.Op{:value [#{"b" "a"} (1 [2]) #inst "x"], '
        ':error "a \\"q\\" \\\\ \\n \\u00e9 , :k [z]", :m {:a {:b -1.5e-3}}}'
    )
    fast = parse_line_fast(line)
    assert fast is not None
    assert fast == parse_line_slow(line)
    assert fast[0]["error"] == 'a "q" \\ \n é , :k [z]'


@pytest.mark.parametrize(
    "line",
    [
        "{:a 1]",
        "{:a (1 2]}",
        "[1 2)",
        "{:a 1 :b}",
        '{:a "unterminated}',
        "{:a 1} ]",
        "{:a #{1 2)}",
        "{:a -Infinity}",
        "{:a 1.5M}",
        "{:a \\c}",
        "{:a 1N}",
        "{:a 1/2}",
        "{:a ##Inf}",
        "{:a #_ 1 :b 2}",
        "{:a ; comment\n 1}",
        '{:a "\\ud83d\\ude00"}',
        "{[1] 2}",
        "{:a :b:c}",
        "{:a 007}",
    ],
)
def test_fast_path_defers_or_agrees(line: str) -> None:
    """Tricky lines: the fast path either gives the library's answer or declines."""
    fast = parse_line_fast(line)
    try:
        slow: Any = parse_line_slow(line)
    except HistoryError:
        slow = None
    if slow is None:
        assert fast is None
    else:
        assert fast is None or fast == slow


def test_edn_vector_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "v.edn",
        "[{:type :invoke, :f :read, :value nil, :process 0, :time 1, :index 0}\n"
        " {:type :ok, :f :read, :value 5, :process 0, :time 2, :index 1}]\n",
    )
    assert detect_format(path) == "edn"
    h = read_history(path)
    assert [op.value for op in h] == [None, 5]
    assert list(h.line) == [1, 2]


def test_edn_vector_on_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "v.edn",
        "[{:type :invoke, :f :read, :process 0} {:type :ok, :f :read, :value 5, :process 0}]",
    )
    assert [op.value for op in read_history(path)] == [None, 5]


def test_unclosed_edn_vector(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "v.edn",
        "[{:type :invoke, :f :read, :value nil, :process 0}\n"
        " {:type :ok, :f :read, :value 5, :process 0}\n",
    )
    with pytest.raises(HistoryError, match="does not end with") as e:
        read_history(path)
    assert e.value.line == 2


def test_edn_shapes_agree_with_the_library_on_mixed_lines(tmp_path: Path) -> None:
    """Lines that match a learnt shape, lines with extra entries, and odd ones."""
    lines = [
        '{:index 0, :time 10, :type :invoke, :process 0, :f :write, :value 1, :node "n1"}',
        '{:index 1, :time 11, :type :ok, :process 0, :f :write, :value 1, :node "n1"}',
        '{:index 2, :time 12, :type :invoke, :process 1, :f :cas, :value [1 2], :node "n2"}',
        '{:index 3, :time 13, :type :fail, :process 1, :f :cas, :value [1 2], :node "n2", '
        ':error [:mismatch "saw 3, not 1"], :index 33}',
        "{:index 4, :time 14, :type :invoke, :process 2, :f :read, :value nil, :node nil}",
        '{:index 5, :time 15, :type :ok, :process 2, :f :read, :value 1, :node "n3", '
        ":debug {:a #{1}}}",
        "{:index 6, :time 16, :type :invoke, :process :nemesis, :f :kill, :value nil}",
        "{:index 7, :time 17, :type :info, :process :nemesis, :f :kill, :value nil}",
        "{:index 8, :time 18, :type :invoke, :process 3, :f :txn, "
        ':value [[:append 1 2] [:r 3 nil]], :node "n1"}',
        "{:index 9, :time 19, :type :ok, :process 3, :f :txn, "
        ':value [[:append 1 2] [:r 3 [1 2]]], :node "n1"}',
        "",
        "#jepsen.history.Op{:index 10, :time 20, :type :invoke, :process 4, :f :w, "
        ':value -1.25, :node "n5"}',
        '{:index 11, :time 21, :type :info, :process 4, :f :w, :value sym/x, :node "n5"}',
        '{:index 12, :time 22, :type :invoke, :process 5, :f :w, :value "a b", :node "n5"}',
        '{:index 13, :time 23, :type :ok, :process 5, :f :w, :value "a b", :node "n5", '
        ":type :info}",
    ]
    path = write(tmp_path, "mixed.edn", "\n".join(lines) + "\n")
    assert ops_of(read_edn(path)) == reference_edn(path)


@pytest.mark.parametrize(
    "value",
    [
        "007",
        "1.",
        ".5",
        "1e5",
        "-",
        "+1",
        "1N",
        "0x10",
        "1/2",
        "nil?",
        ":a:b",
        "-0",
        "-0.0",
        '"a\\"b"',
        "[1 2",
        "[1,2]",
        "[1  2]",
        "[ 1]",
        "sym#",
        ":kw#",
        "\\c",
        "##Inf",
        "[[[[1]]]]",
        '"tab\there"',
        '[:a "b c" [nil true]]',
        "truex",
        "[]",
        '""',
        "1.5e-3",
        "a/b/c",
        ":a/",
        "#{1}",
        "{:a 1}",
        "(1)",
        "é",
        '"é"',
        "[1a]",
        "[[[1a]]]",
        "[:a:b]",
        '[1"x"]',
        "[[1][2]]",
        "[1 ]",
    ],
)
def test_shape_lines_with_odd_values_agree_with_the_library(tmp_path: Path, value: str) -> None:
    """A line in a learnt shape but with an odd value: same ops, or the same error line."""
    lines = [
        "{:index 0, :time 1, :type :invoke, :process 0, :f :write, :value 1}",
        f"{{:index 1, :time 2, :type :ok, :process 0, :f :write, :value {value}}}",
        f"{{:index 2, :time 3, :type :invoke, :process 0, :f :write, :value 1, :x {value}}}",
    ]
    path = write(tmp_path, "odd.edn", "\n".join(lines) + "\n")
    try:
        expected: Any = reference_edn(path)
    except HistoryError as e:
        expected = e.line
    try:
        got: Any = ops_of(read_edn(path))
    except HistoryError as e:
        got = e.line
    assert got == expected


def test_bench_generator_output_matches_the_library(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import edn_import
    finally:
        sys.path.remove(str(ROOT / "bench"))
    path = str(tmp_path / "history.edn")
    edn_import.write_history(path, 3000, seed=3)
    h = read_history(path)
    assert len(h) == 3000
    assert ops_of(h) == reference_edn(path)


# Hypothesis: generated EDN op maps, with the expected normalised value alongside.

_NAME_CHARS = "abcxyz-?!*_.+<>=$%&"
names = st.builds(
    lambda head, tail, ns: (ns + "/" if ns else "") + head + tail,
    st.sampled_from("abcdefghxyz"),
    st.text(_NAME_CHARS + "0123456789", max_size=6),
    st.one_of(st.just(""), st.sampled_from(["ns", "a.b", "jepsen.x"])),
)


def _edn_string(s: str, rnd: random.Random) -> str:
    out = []
    for c in s:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append(rnd.choice(["\\t", "\t"]))
        elif c == "é" and rnd.random() < 0.5:
            out.append("\\u00e9")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


@st.composite
def scalars(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["kw", "sym", "str", "int", "float", "nil", "bool", "bigint"]))
    if kind == "kw":
        n = draw(names)
        return ":" + n, n
    if kind == "sym":
        n = draw(names.filter(lambda s: s not in ("nil", "true", "false")))
        return n, n
    if kind == "str":
        s = draw(st.text(alphabet=st.sampled_from('ab ,:[]{}()#;"\\\né\t/-ü'), max_size=12))
        rnd = random.Random(draw(st.integers(0, 1000)))
        return _edn_string(s, rnd), s
    if kind == "int":
        i = draw(st.integers(-(10**12), 10**12))
        return str(i), i
    if kind == "bigint":
        i = draw(st.integers(-(10**30), 10**30))
        return f"{i}N", i
    if kind == "float":
        x = draw(st.floats(allow_nan=False, allow_infinity=False))
        return repr(x), x
    if kind == "nil":
        return "nil", None
    b = draw(st.booleans())
    return ("true" if b else "false"), b


def values(depth: int = 2) -> st.SearchStrategy[tuple[str, Any]]:
    if depth == 0:
        return scalars()
    inner = values(depth - 1)

    def vector(items: list[tuple[str, Any]]) -> tuple[str, Any]:
        return "[" + " ".join(t for t, _ in items) + "]", [v for _, v in items]

    def lst(items: list[tuple[str, Any]]) -> tuple[str, Any]:
        return "(" + " ".join(t for t, _ in items) + ")", [v for _, v in items]

    def int_set(items: set[int]) -> tuple[str, Any]:
        return "#{" + " ".join(str(i) for i in items) + "}", sorted(items)

    def kmap(items: dict[str, tuple[str, Any]]) -> tuple[str, Any]:
        text = "{" + ", ".join(f":{k} {t}" for k, (t, _) in items.items()) + "}"
        return text, {k: v for k, (_, v) in items.items()}

    def tagged(item: tuple[str, Any]) -> tuple[str, Any]:
        return "#my.ns/Tag " + item[0], item[1]

    return st.one_of(
        scalars(),
        st.lists(inner, max_size=4).map(vector),
        st.lists(inner, max_size=3).map(lst),
        st.sets(st.integers(-50, 50), max_size=4).map(int_set),
        st.dictionaries(names, inner, max_size=3).map(kmap),
        inner.map(tagged),
    )


def _render(fields: list[tuple[str, tuple[str, Any]]], seps: list[str], tagged: bool) -> str:
    line = (
        "{"
        + "".join(
            f":{k} {text}{sep}" for (k, (text, _)), sep in zip(fields, seps, strict=True)
        ).rstrip(", ")
        + "}"
    )
    return "#jepsen.history.Op" + line if tagged else line


@st.composite
def op_lines(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """An EDN op map line and the normalised dict it must decode to."""
    fields = list(draw(st.dictionaries(names, values(), min_size=1, max_size=7)).items())
    seps = [draw(st.sampled_from([", ", " ", ",", " , "])) for _ in fields]
    line = _render(fields, seps, draw(st.booleans()))
    return line, {k: v for k, (_, v) in fields}


@st.composite
def op_line_pairs(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    """Two Jepsen-printed lines with the same keys; the second one's expected dict."""
    keys = draw(st.lists(names, min_size=1, max_size=7, unique=True))
    first = [(k, draw(values())) for k in keys]
    second = [(k, draw(values())) for k in keys]
    seps = [", "] * len(keys)
    return (
        _render(first, seps, False),
        _render(second, seps, draw(st.booleans())),
        {k: v for k, (_, v) in second},
    )


def _same(a: Any, b: Any) -> bool:
    """Equality that also tells -0.0 from 0.0 and 1 from True (both paths must agree)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op_lines())
def test_edn_paths_agree_with_the_library_and_the_generator(case: tuple[str, Any]) -> None:
    line, expected = case
    slow = parse_line_slow(line)
    assert _same(slow, [expected]), (line, slow)
    # parse_line_slow keeps one parser; edn_format's own entry point must agree with it.
    assert _same([normalise(v) for v in edn_format.loads_all(_strip_tags(line))], slow)
    fast = parse_line_fast(line)
    if fast is not None:
        assert _same(fast, slow), (line, fast)
    shapes = Shapes()
    shapes.learn(line, slow[0])
    for shape in shapes.shapes:
        m = shape.fullmatch(line)
        assert m is not None
        decoded = shapes.decode(shape, m.groups())
        wanted = {k: v for k, v in slow[0].items() if k in decoded}
        assert _same(decoded, wanted), (line, decoded)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op_line_pairs())
def test_a_shape_decodes_other_lines_like_the_library(case: tuple[str, str, Any]) -> None:
    """A shape learnt from one line, applied to another line with the same keys."""
    line1, line2, expected = case
    shapes = Shapes()
    shapes.learn(line1, parse_line_slow(line1)[0])
    assert _same(parse_line_slow(line2), [expected])
    for shape in shapes.shapes:
        m = shape.fullmatch(line2)
        if m is not None:
            decoded = shapes.decode(shape, m.groups())
            assert _same(decoded, {k: v for k, v in expected.items() if k in decoded}), line2


@settings(max_examples=100, deadline=None)
@given(op_lines())
def test_fast_path_takes_the_plain_lines(case: tuple[str, Any]) -> None:
    """Lines without the features the fast path leaves to the library are taken fast."""
    line, _ = case
    if any(s in line for s in ("N", "\\u", "\\t", "#my", "\t")):
        return
    assert parse_line_fast(line) is not None, line


# --------------------------------------------------------------------------------------
# Errors name the file and the line


def _error(path: str, fmt: str = "auto") -> HistoryError:
    with pytest.raises(HistoryError) as e:
        read_history(path, fmt)
    assert e.value.path == path
    assert str(e.value).startswith(f"{path}:{e.value.line}: ")
    return e.value


def test_truncated_edn_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "t.edn",
        "{:index 0, :time 1, :type :invoke, :process 0, :f :read, :value nil}\n"
        "{:index 1, :time 2, :type :ok, :process 0, :f :read, :value 3}\n"
        "{:index 2, :time 3, :type :invoke, :process 0, :f :re",
    )
    e = _error(path)
    assert e.line == 3 and "truncated" in e.reason


def test_truncated_edn_string(tmp_path: Path) -> None:
    path = write(
        tmp_path, "t.edn", '{:index 0, :time 1, :type :invoke, :process 0, :f :read, :value "abc\n'
    )
    e = _error(path, "edn")
    assert e.line == 1 and "not closed" in e.reason


def test_bad_json_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "b.jsonl",
        '{"type":"invoke","process":0,"f":"read"}\n{"type":"ok","process":0,"f":"read",\n',
    )
    e = _error(path)
    assert e.line == 2 and "not valid JSON" in e.reason


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, "b.jsonl", '{"type":"invoke","process":0,"f":"read"}\n[1, 2]\n')
    assert _error(path, "jsonl").line == 2


@pytest.mark.parametrize("missing", ["type", "f"])
def test_missing_required_field(tmp_path: Path, missing: str) -> None:
    op = {"type": "invoke", "process": 0, "f": "read"}
    del op[missing]
    path = write(tmp_path, "m.jsonl", '{"type":"invoke","process":1,"f":"r"}\n' + json.dumps(op))
    e = _error(path)
    assert e.line == 2 and repr(missing) in e.reason


@pytest.mark.parametrize(
    "name,text,line",
    [
        (
            "u.jsonl",
            '{"type":"invoke","process":0,"f":"r"}\n{"type":"done","process":0,"f":"r"}',
            2,
        ),
        ("u.edn", "{:type :invoke, :process 0, :f :r}\n\n{:type :done, :process 0, :f :r}", 3),
        (
            "u.json",
            '[{"type":"invoke","process":0,"f":"r"},\n {"type":"done","process":0,"f":"r"}]',
            2,
        ),
    ],
)
def test_unknown_op_type(tmp_path: Path, name: str, text: str, line: int) -> None:
    e = _error(write(tmp_path, name, text))
    assert e.line == line and "done" in e.reason


@pytest.mark.parametrize(
    "name,text,line",
    [
        (
            "o.jsonl",
            '{"type":"invoke","process":0,"f":"r"}\n{"type":"ok","process":0,"f":"r"}\n'
            '{"type":"ok","process":1,"f":"r"}\n',
            3,
        ),
        ("o.edn", "{:type :invoke, :process 0, :f :r}\n{:type :ok, :process 1, :f :r}\n", 2),
        (
            "o.log",
            "INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\t3\n",
            2,
        ),
    ],
)
def test_completion_without_invocation(tmp_path: Path, name: str, text: str, line: int) -> None:
    e = _error(write(tmp_path, name, text))
    assert e.line == line and "no invocation" in e.reason


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("text", ["", "  \n\n\t\n"])
def test_empty_file(tmp_path: Path, fmt: str, text: str) -> None:
    e = _error(write(tmp_path, "empty.txt", text), fmt)
    assert e.line == 1 and "empty" in e.reason


@pytest.mark.parametrize("name,text", [("e.json", "[]"), ("e.edn", "[]\n"), ("e.json", " [\n]")])
def test_file_with_no_ops(tmp_path: Path, name: str, text: str) -> None:
    e = _error(write(tmp_path, name, text), "edn" if name.endswith(".edn") else "json")
    assert e.line == 1 and "no ops" in e.reason


@pytest.mark.parametrize(
    "text,line,what",
    [
        ('[{"type":"invoke","process":0,"f":"r"},\n{"type":"ok","process":0,', 2, "JSON"),
        ('[{"type":"invoke","process":0,"f":"r"}\n\n', 3, "truncated"),
        ('[{"type":"invoke","process":0,"f":"r"} {"x":1}]', 1, "expected ','"),
        ('[{"type":"invoke","process":0,"f":"r"}]\nx', 2, "after the closing"),
        ('[{"type":"invoke","process":0,"f":"r"},\n\n 7]', 3, "op"),
    ],
)
def test_malformed_json_array(tmp_path: Path, text: str, line: int, what: str) -> None:
    e = _error(write(tmp_path, "a.json", text), "json")
    assert e.line == line and what in e.reason


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"type":"invoke","process":0,"f":"r"}\n{"f":"\xff"}\n')
    e = _error(str(path), "jsonl")
    assert e.line == 2 and "UTF-8" in e.reason


def test_unrecognisable_content(tmp_path: Path) -> None:
    path = write(tmp_path, "what.txt", "\n\nhello world\n")
    with pytest.raises(HistoryError) as e:
        detect_format(path)
    assert e.value.line == 3
    for name in FORMATS[1:]:
        assert name in str(e.value)


def test_unknown_format_name(tmp_path: Path) -> None:
    path = write(tmp_path, "h.jsonl", '{"type":"invoke","process":0,"f":"r"}\n')
    with pytest.raises(ConfigError) as e:
        read_history(path, "yaml")
    for name in FORMATS:
        assert name in str(e.value)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="no such history file") as e:
        read_history(missing)
    assert not isinstance(e.value, HistoryError)
    with pytest.raises(InputError):
        read_history(str(tmp_path))


def test_write_history_format_errors(tmp_path: Path) -> None:
    h = sample_history()
    with pytest.raises(ConfigError, match="extension"):
        write_history(h, str(tmp_path / "h.txt"), "auto")
    with pytest.raises(ConfigError, match="writable"):
        write_history(h, str(tmp_path / "h.log"), "porcupine-etcd")
    with pytest.raises(ConfigError, match="unknown"):
        write_history(h, str(tmp_path / "h.jsonl"), "xml")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------
# Detection


@pytest.mark.parametrize(
    "head,fmt",
    [
        ('{"type":"invoke"}', "jsonl"),
        ('\n  { "type": "invoke"}', "jsonl"),
        ('[{"type":"invoke"}]', "json"),
        ('[\n  {\n    "type": 1}]', "json"),
        ("[]", "json"),
        ("{:type :invoke, :f :read}", "edn"),
        ("[{:type :invoke}\n{:type :ok}]", "edn"),
        ("#jepsen.history.Op{:index 0}", "edn"),
        ('{:process 1, :type :invoke, :f :put, :key "6", :value "x"}', "porcupine-kv"),
        ('{:process 1, :type :invoke, :f :put, :key "6", :time 5}', "edn"),
        ("INFO  jepsen.util - 0\t:invoke\t:read\tnil", "porcupine-etcd"),
    ],
)
def test_detect_format(head: str, fmt: str) -> None:
    assert detect_format("given.txt", head) == fmt


def test_a_link_planted_at_the_temporary_name_is_not_written_through(tmp_path: Path) -> None:
    import os

    from harness.formats import write_history as write
    from harness.history import History

    victim = tmp_path / "victim"
    victim.write_text("mine")
    out = tmp_path / "history.jsonl"
    (tmp_path / f"history.jsonl.tmp-{os.getpid()}").symlink_to(victim)
    ops = [{"type": "invoke", "f": "read", "value": None, "process": 0, "time": 1, "index": 0}]
    write(History.from_ops(ops), str(out), "jsonl")
    assert victim.read_text() == "mine"
    assert '"f": "read"' in out.read_text() or '"f":"read"' in out.read_text()
