"""Reading a history obeys the time limit and the memory budget (issue 11): a file that
cannot be read in time gives ``unknown`` naming the file and the line reached, quickly."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.formats import read_history
from harness.history import History
from harness.read_budget import ReadBudget, ReadBudgetExceeded


def _big_jsonl(path: Path, keys: int = 20_000) -> Path:
    """``keys`` keys, each written and read back by one of 50 processes (valid)."""
    with open(path, "w") as out:
        for k in range(keys):
            p = k % 50
            for typ, f, v in (("invoke", "write", k), ("ok", "write", k),
                              ("invoke", "read", None), ("ok", "read", k)):  # fmt: skip
                out.write(json.dumps({"type": typ, "process": p, "f": f, "value": v, "key": k}))
                out.write("\n")
    return path


def _big_edn(path: Path, ops: int = 4_000) -> Path:
    """One op map spread over two lines each: the line reader gives up, the whole-document
    parser (slow) reads it."""
    with open(path, "w") as out:
        out.write("[\n")
        for i in range(ops // 2):
            out.write(f"{{:type :invoke, :process {i % 7}, :f :write,\n :value {i}}}\n")
            out.write(f"{{:type :ok, :process {i % 7}, :f :write,\n :value {i}}}\n")
        out.write("]\n")
    return path


@pytest.mark.parametrize("make", [_big_jsonl, _big_edn])
def test_a_file_that_cannot_be_read_in_time_stops_at_a_line(tmp_path: Path, make) -> None:
    path = make(tmp_path / "big.hist")
    started = time.perf_counter()
    with pytest.raises(ReadBudgetExceeded) as e:
        read_history(str(path), budget=ReadBudget(started, time_limit=0.01))
    took = time.perf_counter() - started
    assert e.value.resource == "time"
    assert e.value.path == str(path)
    assert e.value.line is not None and e.value.line >= 1
    assert f"while reading {path} at line" in str(e.value)
    assert took < 0.01 * 1.1 + 1


def test_without_a_budget_the_same_file_reads(tmp_path: Path) -> None:
    h = read_history(str(_big_jsonl(tmp_path / "big.jsonl", keys=2_000)), budget=ReadBudget())
    assert len(h) == 8_000


def test_the_memory_budget_holds_while_reading(tmp_path: Path) -> None:
    path = _big_jsonl(tmp_path / "big.jsonl")
    with pytest.raises(ReadBudgetExceeded) as e:
        read_history(str(path), budget=ReadBudget(max_memory=1))
    assert e.value.resource == "memory"
    assert "memory budget" in str(e.value) and str(path) in str(e.value)


def test_clew_check_answers_unknown_while_reading(tmp_path: Path) -> None:
    path = _big_jsonl(tmp_path / "big.jsonl")
    args = ["check", "--json", "--no-progress", "--model", "cas-register"]
    args += ["--time-limit", "0.01", str(path)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    record = json.loads([x for x in result.output.splitlines() if x.startswith("{")][-1])
    assert record["valid"] == "unknown"
    assert record["phase"] == "read"
    assert "time limit of 0.01 s reached while reading" in record["cause"]
    assert "at line" in record["cause"]
    assert 0.01 <= record["seconds"] <= 0.01 * 1.1 + 1  # not the whole file's reading


def test_the_memory_budget_holds_when_the_resident_set_does_not_grow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a long-lived process, memory freed earlier is reused without growing the
    resident set; the history's own size still counts against the budget."""
    import harness.read_budget as rb

    monkeypatch.setattr(rb, "resident_bytes", lambda: 100 * 2**20)
    path = _big_jsonl(tmp_path / "big.jsonl")
    with pytest.raises(ReadBudgetExceeded) as e:
        read_history(str(path), budget=ReadBudget(max_memory=2**20))
    assert e.value.resource == "memory"
    assert "the history read so far holds at least" in str(e.value)


def test_the_memory_budget_holds_while_the_history_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building the history from what was read (freezing the columns, pairing the ops)
    needs more than the reader holds: a budget that the reading fits but the building
    would not is spent before building, not found spent after it (or never, the process
    out of memory first)."""
    import harness.read_budget as rb
    from harness.history import HistoryBuilder

    monkeypatch.setattr(rb, "resident_bytes", lambda: 100 * 2**20)  # the resident set is flat
    held: list[int] = []
    build = HistoryBuilder.build

    def watched(self: HistoryBuilder) -> History:
        held.append(self.held_bytes())  # what reading holds when it is done
        return build(self)

    path = _big_jsonl(tmp_path / "big.jsonl", keys=5_000)
    monkeypatch.setattr(HistoryBuilder, "build", watched)
    assert len(read_history(str(path))) == 20_000
    monkeypatch.setattr(HistoryBuilder, "build", build)
    with pytest.raises(ReadBudgetExceeded) as e:  # what reading held fits; building does not
        read_history(str(path), budget=ReadBudget(max_memory=held[-1] + 1))
    assert e.value.resource == "memory" and e.value.line == 20_000
    assert f"while reading {path} at line 20,000" in str(e.value)
    assert "(building the history needs at least" in str(e.value)


def test_a_line_longer_than_the_budget_allows_is_refused_before_it_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A history whose op is one line of gigabytes was gathered whole, then decoded: out of
    memory (a crash) before the budget was looked at again. Decoding a line takes at least
    its length (joining it) and more (parse_memory_bound); a line that long is refused
    while it is gathered, naming it."""
    import harness.read_budget as rb

    monkeypatch.setattr(rb, "resident_bytes", lambda: 100 * 2**20)  # the resident set is flat
    path = tmp_path / "long.jsonl"
    op = '{"type": "%s", "process": 0, "f": "write", "value": "%s"}\n'
    path.write_text(op % ("invoke", "x") + op % ("ok", "x") + op % ("invoke", "y" * 3 * 2**20)
                    + op % ("ok", "y"))  # fmt: skip
    with pytest.raises(ReadBudgetExceeded) as e:
        read_history(str(path), budget=ReadBudget(max_memory=2**20))
    assert e.value.resource == "memory" and e.value.line == 3
    assert f"while reading {path} at line 3 (joining and decoding a line this long may " \
        "take up to" in str(e.value)  # fmt: skip
    assert len(read_history(str(path), budget=ReadBudget(max_memory=2**30))) == 4
