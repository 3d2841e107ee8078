"""The report's whole-run data: every op as typed columns, latency quantiles per f, node
log lines on the run's clock, and Elle's per-anomaly files."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from checkers.txn import check
from harness.errors import InputError
from harness.formats import write_history
from harness.history import History
from reports import columns, data
from reports.elle_files import elle_links, write_elle_files
from reports.node_logs import node_log_lines, parse_wall_ns
from reports.run_report import render_run_report, write_run_report


def col(b64: str, dtype: Any) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.dtype(dtype).newbyteorder("<"))


def small_history() -> History:
    ops = [
        {"type": "invoke", "process": 0, "f": "write", "value": 1, "key": "k", "time": 0,
         "node": "n1"},
        {"type": "invoke", "process": 1, "f": "read", "value": None, "time": 10**9, "node": "n2"},
        {"type": "ok", "process": 0, "f": "write", "value": 1, "key": "k", "time": 2 * 10**9},
        {"type": "info", "process": 1, "f": "read", "value": None, "time": 3 * 10**9},
        {"type": "invoke", "process": 0, "f": "read", "value": None, "time": 4 * 10**9},
        {"type": "ok", "process": 0, "f": "read", "value": 1, "time": 5 * 10**9},
        {"type": "invoke", "process": 2, "f": "write", "value": 2, "time": 6 * 10**9},
    ]  # fmt: skip
    return History.from_ops(ops)


def test_every_op_becomes_one_row_of_typed_columns() -> None:
    h = small_history()
    c = columns.op_columns(h, data.time_axis(h))
    assert c["shown"] == c["total"] == 4
    assert col(c["start"], np.float32).tolist() == [0, 1, 4, 6]
    # durations to the completion; the pending op runs to the end of the history
    assert col(c["dur"], np.float32).tolist() == [2, 2, 1, 0]
    assert col(c["kind"], np.uint8).tolist() == [0, 2, 0, 3]  # ok, info, ok, pending
    assert [c["f_names"][i] for i in col(c["f"], np.uint8)] == ["write", "read", "read", "write"]
    assert c["lane_bytes"] == c["gap_bytes"] == c["key_bytes"] == c["val_int_bytes"] == 1
    assert [c["lanes"][i] for i in col(c["lane"], np.uint8)] == [0, 1, 0, 2]
    assert np.cumsum(col(c["gap"], np.uint8)).tolist() == [0, 1, 4, 6]  # history indices
    # the completion's value (a read's result), the invocation's for a pending op; integer
    # values inline (-128 none, -127 null), no text table
    assert col(c["val_ints"], np.int8).tolist() == [1, -127, 1, 2]
    assert c["val"] is None and c["texts"] == [] and not c["texts_dropped"]
    assert [c["key_texts"][i] if i != 255 else None for i in col(c["key"], np.uint8)] == [
        '"k"', None, None, None,
    ]  # fmt: skip
    nodes = col(c["node"], np.uint8).tolist()
    assert [c["nodes"][i] for i in nodes[:2]] == ["n1", "n2"] and nodes[2] == 255


def test_values_other_than_ints_go_through_the_text_table() -> None:
    def values(vals: list[Any]) -> dict[str, Any]:
        ops = []
        for i, v in enumerate(vals):
            op = {"process": 0, "f": "write", "value": v}
            ops += [
                {**op, "type": "invoke", "time": 2 * i},
                {**op, "type": "ok", "time": 2 * i + 1},
            ]
        h = History.from_ops(ops)
        return columns.op_columns(h, data.time_axis(h))

    c = values([1, "a", None, True])  # a string, and a bool (not an int here)
    assert c["val_ints"] is None
    assert [c["texts"][i] for i in col(c["val"], np.uint8)] == ["1", '"a"', "null", "true"]
    for vals, dtype in (([-126, 127], np.int8), ([-127, 5], np.int16), ([70_000], np.int32)):
        c = values(vals)
        assert c["val_int_bytes"] == np.dtype(dtype).itemsize
        assert col(c["val_ints"], dtype).tolist() == vals
    assert values([2**40])["val_ints"] is None  # beyond 32 bits: texts
    assert values([2**70])["texts"] == [str(2**70)]


@pytest.mark.parametrize("top", [3, 1000, 10**9])
def test_dense_ids_are_np_unique_by_counting(top: int) -> None:
    a = np.random.default_rng(top).integers(0, top, size=500)
    used, inverse = columns._dense(a)
    want_used, want_inverse = np.unique(a, return_inverse=True)
    assert used.tolist() == want_used.tolist() and inverse.tolist() == want_inverse.tolist()


def test_integer_columns_take_the_narrowest_width() -> None:
    for top, size in ((254, 1), (255, 2), (65534, 2), (65535, 4)):
        b64, width = columns._narrow(np.array([-1, 0, top]))
        assert width == size
        assert col(b64, f"u{size}").tolist() == [(1 << 8 * size) - 1, 0, top]


def test_columns_are_capped_and_values_dropped_over_their_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = small_history()
    c = columns.op_columns(h, data.time_axis(h), cap=2)
    assert (c["shown"], c["total"]) == (2, 4)
    monkeypatch.setattr(columns, "MAX_TEXT_CHARS", 5)
    c = columns.op_columns(h, data.time_axis(h))
    assert not c["texts_dropped"] and c["val_ints"]  # integers need no texts
    words = History.from_ops(
        [{"type": t, "process": 0, "f": "write", "value": f"word{i}", "time": 2 * i + (t == "ok")}
         for i in range(4) for t in ("invoke", "ok")]
    )  # fmt: skip
    c = columns.op_columns(words, data.time_axis(words))
    assert c["texts_dropped"] and c["val"] is None and c["shown"] == 4


def test_latency_quantiles_per_f_over_time() -> None:
    ops = []
    t = 0
    for i in range(1000):  # reads take 1..100 ms, writes always 50 ms
        f = "read" if i % 2 else "write"
        lat = (i % 100 + 1) * 10**6 if f == "read" else 50 * 10**6
        ops += [{"type": "invoke", "process": 0, "f": f, "value": None, "time": t},
                {"type": "ok", "process": 0, "f": f, "value": None, "time": t + lat}]  # fmt: skip
        t += lat + 1
    h = History.from_ops(ops)
    q = data.latency_quantiles(h, data.time_axis(h), buckets=1)
    assert q["quantiles"] == [0.5, 0.95, 0.99] and q["unit"] == "ms"
    by_f = {s["f"]: s["q"] for s in q["series"]}
    assert set(by_f) == {"all", "read", "write"}
    assert by_f["write"] == [[50.0], [50.0], [50.0]]
    p50, p95, p99 = (v[0] for v in by_f["read"])
    assert 49 <= p50 <= 52 and 94 <= p95 <= 96 and 98 <= p99 <= 100
    q = data.latency_quantiles(h, data.time_axis(h), buckets=10)
    assert len(q["x"]) == 10 and all(len(s["q"][0]) == 10 for s in q["series"])


def test_latency_quantiles_match_a_sort_per_f_and_bucket() -> None:
    rng = np.random.default_rng(5)
    ops, t = [], 0
    for _ in range(3000):
        f = ["read", "write", "cas"][int(rng.integers(3))]
        lat = int(rng.integers(1, 10**8))
        ops += [{"type": "invoke", "process": 0, "f": f, "value": None, "time": t},
                {"type": "ok", "process": 0, "f": f, "value": None, "time": t + lat}]  # fmt: skip
        t += lat + int(rng.integers(1, 10**7))
    h = History.from_ops(ops)
    q = data.latency_quantiles(h, data.time_axis(h), buckets=7)
    starts = np.array([o["time"] for o in ops[0::2]], dtype=np.float64) / 1e9
    lats = (
        np.array([b["time"] - a["time"] for a, b in zip(ops[0::2], ops[1::2], strict=True)]) / 1e6
    )
    fs = np.array([o["f"] for o in ops[0::2]])
    width = (starts.max() - starts.min()) / 7
    bucket = np.minimum(((starts - starts.min()) / width).astype(int), 6)
    for s in q["series"]:
        sel = np.ones(len(fs), bool) if s["f"] == "all" else fs == s["f"]
        for j, quant in enumerate(q["quantiles"]):
            for b in range(7):
                vals = np.sort(lats[sel & (bucket == b)])
                want = None if not len(vals) else round(vals[int(quant * (len(vals) - 1))], 3)
                assert s["q"][j][b] == want, (s["f"], quant, b)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"level":"info","ts":"2026-12-03T12:12:15.201Z","msg":"x"}', "2026-12-03T12:12:15.201"),
        ("2026-12-03 12:12:15.201 UTC [42] LOG:  starting", "2026-12-03T12:12:15.201"),
        ("2026-12-03 13:12:15,201+01:00 INFO x", "2026-12-03T12:12:15.201"),
        ("1796297574.754 start id=n4", None),
        ("1234:M 03 Dec 2026 12:12:15.201 * Ready", "2026-12-03T12:12:15.201"),
    ],
)
def test_log_timestamps_are_read_as_utc(line: str, expected: str | None) -> None:
    import datetime as dt

    ns = parse_wall_ns(line)
    assert ns is not None
    if expected is None:
        assert ns == 1796297574_754_000_000
    else:
        want = dt.datetime.fromisoformat(expected).replace(tzinfo=dt.UTC)
        assert ns == int(want.timestamp() * 1000) * 1_000_000
    assert parse_wall_ns("no time here") is None


def test_node_logs_are_put_on_the_runs_clock(tmp_path: Path) -> None:
    run = tmp_path / "t" / "20261203T121214"
    (run / "nodes" / "n1").mkdir(parents=True)
    (run / "nodes" / "n2").mkdir(parents=True)
    origin = 1796300000 * 10**9
    (run / "clock.json").write_text(json.dumps({"origin_unix_ns": origin}))
    (run / "nodes" / "n1" / "db.log").write_text(
        "1796300002.5 leader elected\n  a continuation line\n1796300001.0 started\n"
    )
    (run / "nodes" / "n2" / "db.log").write_text("1796300000.25 hello\n")
    logs = node_log_lines(run)
    assert logs is not None and logs["exact"] and logs["total"] == logs["shown"] == 4
    assert col(logs["t"], np.float32).tolist() == [0.25, 1.0, 2.5, 2.5]  # sorted by time
    assert logs["text"][0] == "db.log: 1796300000.25 hello" and "continuation" in logs["text"][3]
    assert [logs["nodes"][i] for i in col(logs["node"], np.uint8)] == ["n2", "n1", "n1", "n1"]
    (run / "clock.json").unlink()  # no clock.json: the directory's name is the anchor
    assert node_log_lines(run)["exact"] is False  # type: ignore[index]


def test_each_node_has_its_share_of_the_log_lines_and_the_rest_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cap on log lines was filled by the first node's first file: a chatty node left
    the others out of the page, and every line of every file was parsed after the cap."""
    import reports.node_logs as nl

    run = tmp_path / "t" / "20261203T121214"
    (run / "clock.json").parent.mkdir(parents=True)
    (run / "clock.json").write_text(json.dumps({"origin_unix_ns": 1796300000 * 10**9}))
    for node, files in (("n1", 3), ("n2", 1)):
        (run / "nodes" / node).mkdir(parents=True)
        for f in range(files):
            lines = "".join(f"17963000{i:02d}.5 {node} line {i}\n\n" for i in range(30))
            (run / "nodes" / node / f"db{f}.log").write_text(lines)
    monkeypatch.setattr(nl, "MAX_LOG_LINES", 20)
    parsed = []
    monkeypatch.setattr(nl, "parse_wall_ns", lambda line: parsed.append(line) or 1)
    logs = node_log_lines(run)
    assert logs is not None and logs["shown"] == 20 and logs["total"] == 4 * 30
    shown = [logs["nodes"][i] for i in col(logs["node"], np.uint8)]
    assert shown.count("n1") == shown.count("n2") == 10
    assert len(parsed) == 20  # the lines beyond each node's share are counted, not parsed


def test_the_logs_of_more_nodes_than_the_page_numbers_are_read_to_its_limit(
    tmp_path: Path,
) -> None:
    """The page numbers nodes in a byte: a run with 256 node directories or more crashed
    the report (OverflowError); the first MAX_NODES are read, and the rest counted."""
    from reports.node_logs import MAX_NODES

    run = tmp_path / "t" / "20261203T121214"
    for i in range(MAX_NODES + 5):
        (run / "nodes" / f"n{i:03d}").mkdir(parents=True)
        (run / "nodes" / f"n{i:03d}" / "db.log").write_text(f"1796300001.0 n{i:03d} up\n")
    (run / "clock.json").write_text(json.dumps({"origin_unix_ns": 1796300000 * 10**9}))
    logs = node_log_lines(run)
    assert logs is not None and len(logs["nodes"]) == MAX_NODES == 255
    assert logs["nodes_total"] == 260 and logs["shown"] == logs["total"] == 255
    assert max(col(logs["node"], np.uint8)) == 254


def skew_run(tmp_path: Path) -> Path:
    """A checked list-append run with write skew (G2-item) and a lost update."""

    def concurrent(*rows: tuple[int, list[list[Any]]]) -> History:
        ops: list[dict[str, Any]] = []
        for p, mops in rows:
            value = [[f, k, None if f == "r" else v] for f, k, v in mops]
            ops.append({"process": p, "type": "invoke", "f": "txn", "value": value})
        ops += [{"process": p, "type": "ok", "f": "txn", "value": m} for p, m in rows]
        return History.from_ops(ops)

    h = concurrent(
        (0, [["r", "x", []], ["r", "y", []], ["append", "x", 1]]),
        (1, [["r", "x", []], ["r", "y", []], ["append", "y", 1]]),
        (2, [["r", "z", []], ["append", "z", 1]]),
        (3, [["r", "z", []], ["append", "z", 2]]),
        (4, [["r", "x", [1]], ["r", "y", [1]], ["r", "z", [1, 2]]]),
    )
    run = tmp_path / "pg-list-append" / "20260102T030405"
    run.mkdir(parents=True)
    write_history(h, str(run / "history.jsonl"), "jsonl")
    result = check(h, "list-append", "serializable")
    (run / "results.json").write_text(
        json.dumps({"valid": result.valid, "checkers": {"list-append": result.to_json()}})
    )
    return run


def test_anomalies_get_elle_files_linked_from_the_report(tmp_path: Path) -> None:
    run = skew_run(tmp_path)
    write_run_report(run)
    g2 = (run / "elle" / "G2-item.txt").read_text()
    assert g2.startswith("G2-item: ")
    assert "Let:\n  T1 = #" in g2 and "a contradiction!" in g2
    assert (run / "elle" / "G2-item" / "0.svg").read_text().count("<circle") == 2
    lost = (run / "elle" / "lost-update.txt").read_text()
    assert "all read key 'z'" in lost and "each update was made without seeing the others" in lost
    html = (run / "report.html").read_text()
    assert 'href="elle/G2-item.txt"' in html and 'href="elle/G2-item/"' in html
    assert elle_links(run)["G2-item"]["drawings"] == 1
    # A run without anomalies has no elle/ directory (and an old one goes).
    assert write_elle_files(run, {"valid": True, "checkers": {}}) == []
    assert not (run / "elle").exists()
    assert 'href="elle/' not in render_run_report(run)


def test_an_elle_link_planted_in_a_run_is_replaced_not_followed(tmp_path: Path) -> None:
    run = skew_run(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not clew's")
    (run / "elle").symlink_to(elsewhere)
    with pytest.raises(InputError, match="a link out of the run"):
        write_run_report(run)  # a link out of the run is refused before anything is written
    assert [p.name for p in elsewhere.iterdir()] == ["keep.txt"]
    (run / "elle").unlink()
    (run / "mine").mkdir()
    (run / "mine" / "keep.txt").write_text("the run's own")
    (run / "elle").symlink_to("mine")  # within the run: read, but not written through
    write_run_report(run)  # rmtree refused the link: clew crashed
    assert (run / "elle").is_dir() and not (run / "elle").is_symlink()
    assert (run / "elle" / "G2-item.txt").exists()
    assert [p.name for p in (run / "mine").iterdir()] == ["keep.txt"]


def test_node_logs_are_read_lazily_within_a_byte_budget_and_the_rest_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 63 MiB db.log of lines with no timestamp took clew report to 1.74 GB (decoded and
    split whole, ~27x its bytes), and 20 such files in a node to 3.30 GB / 2:18: lines
    without a timestamp did not use up the node's share, and no byte budget held. Every
    line parsed uses up the share now, the rest are counted a chunk at a time, and the
    files past a node's share of the byte budget are not read, and said."""
    import reports.node_logs as nl

    run = tmp_path / "t" / "20261203T121214"
    (run / "nodes" / "n1").mkdir(parents=True)
    (run / "clock.json").write_text(json.dumps({"origin_unix_ns": 1796300000 * 10**9}))
    for f in range(3):
        (run / "nodes" / "n1" / f"db{f}.log").write_text("1796300001.0 up\n" + "ab\n" * 300)
    monkeypatch.setattr(nl, "MAX_LOG_LINES", 10)
    monkeypatch.setattr(nl, "_CHUNK", 7)
    monkeypatch.setattr(nl, "MAX_RUN_LOG_BYTES", 1500)
    parsed: list[str] = []
    real = nl.parse_wall_ns
    monkeypatch.setattr(nl, "parse_wall_ns", lambda line: parsed.append(line) or real(line))
    logs = node_log_lines(run)
    assert logs is not None and len(parsed) == 10 and logs["shown"] == 10
    size = len("1796300001.0 up\n" + "ab\n" * 300)  # 916 bytes: the budget reads 1 1/2 files
    # the first file's 301 lines; the second's counted to the budget: its stamped line
    # and 190 lines begun in its 568 bytes after it
    assert logs["total"] == 301 + 1 + 190
    assert logs["unread_files"] == 1 and logs["unread_bytes"] == 3 * size - 1500
    (run / "nodes" / "n1" / "db0.log").write_text("x" * 5000 + "\n1796300001.0 up\n")
    monkeypatch.setattr(nl, "MAX_RUN_LOG_BYTES", 10_000)
    logs = node_log_lines(run)  # a long line is passed over, not held
    assert logs is not None and logs["text"][0] == "db0.log: 1796300001.0 up"
    monkeypatch.setattr(nl, "MAX_RUN_LOG_BYTES", 1500)
    page = tmp_path / "page" / "20261203T121214"
    (page / "nodes" / "n1").mkdir(parents=True)
    ops = [{"process": 0, "type": t, "f": "read", "value": None, "time": i * 10**9}
           for i, t in enumerate(("invoke", "ok"))]  # fmt: skip
    write_history(History.from_ops(ops), str(page / "history.jsonl"), "jsonl")
    for f in range(3):
        (page / "nodes" / "n1" / f"db{f}.log").write_text("1796300001.0 up\n" + "ab\n" * 300)
    (page / "clock.json").write_text(json.dumps({"origin_unix_ns": 1796300000 * 10**9}))
    html = render_run_report(page)
    assert "(0.0 MiB of log, 1 file of it whole, not read: past the bytes a report reads" in html


def test_lines_past_a_share_are_counted_as_the_parse_counts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lines past a node's share are counted, not parsed; whitespace-only lines and the
    blank lines of CRLF logs were counted there though the parse skips them (found by
    review). Random logs, read in chunks of a few bytes, against the parse's rule."""
    import io
    import random

    import reports.node_logs as nl

    monkeypatch.setattr(nl, "_CHUNK", 7)
    rng = random.Random(3)
    for _ in range(500):
        data = b"".join(rng.choice([b"a", b" ", b"\t", b"\r", b"\n", b"\r\n", b"xy z"])
                        for _ in range(rng.randint(0, 60)))  # fmt: skip
        want = sum(1 for line in data.split(b"\n") if line.strip())
        assert nl._count_lines(io.BytesIO(data), 10**6) == (want, len(data)), data
