"""The store's index: seed, workload, faults, options, ops and anomaly classes of every run,
links to its history and log; ``clew serve`` shows histories and logs as text."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

from harness.record import RunResults
from reports.index import list_runs, render_index
from reports.serve import make_server


def _run(store: Path, test: str, name: str, spec: dict, results: RunResults) -> Path:
    run = store / test / name
    (run / "nodes" / "n1").mkdir(parents=True)
    (run / "spec.json").write_text(json.dumps(spec))
    results.write(run)
    (run / "history.jsonl").write_text(
        '{"type": "invoke", "f": "read", "value": null, "process": 0, "time": 0}\n'
    )
    (run / "clew.log").write_text("12:00:00 INFO the run\n")
    (run / "nodes" / "n1" / "etcd.log").write_text("etcd says hello\n")
    return run


def _store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    _run(
        store, "postgres-list-append", "20261203T100000",
        {"suite": "postgres", "workload": "list-append", "seed": 42, "faults": ["kill"],
         "options": {"isolation": "repeatable-read", "consistency": "serializable"}},
        RunResults(
            valid=False, ops=1234,
            checkers={"list-append": {"valid": False, "anomalies": ["G2-item", "G-single"]}},
            faults=[{"kind": "kill", "start": 1.0, "end": 2.0},
                    {"kind": "kill", "start": 3.0, "end": 4.0}],
        ),
    )  # fmt: skip
    _run(
        store, "etcd-register", "20261203T110000",
        {"suite": "etcd", "workload": "register", "seed": 7, "faults": ["partition"],
         "options": {"serializable_reads": True}},
        RunResults(valid=False, ops=99, checkers={"register": {"valid": False, "cause": "x"}}),
    )  # fmt: skip
    return store


def test_index_columns_come_from_spec_and_results(tmp_path: Path) -> None:
    runs = {r["test"]: r for r in list_runs(_store(tmp_path))}
    pg = runs["postgres-list-append"]
    assert (pg["seed"], pg["workload"], pg["ops"]) == (42, "list-append", 1234)
    assert pg["faults"] == "kill ×2"
    assert pg["options"] == "consistency=serializable, isolation=repeatable-read"
    assert pg["anomalies"] == ["G2-item", "G-single"]
    assert pg["files"] == ["history.jsonl", "clew.log"]
    etcd = runs["etcd-register"]
    assert etcd["faults"] == "partition (none struck)"
    assert etcd["options"] == "serializable_reads=true"  # as -o takes it, not Python's True
    assert etcd["anomalies"] == ["register: invalid"]


def test_index_page_shows_the_columns_and_links(tmp_path: Path) -> None:
    html = render_index(_store(tmp_path))
    for text in ("<th>workload</th>", "seed</th>", ">faults</th>", ">options</th>",
                 ">anomalies</th>", "G2-item, G-single", "kill ×2",
                 "serializable_reads=true", 'href="etcd-register/20261203T110000/history.jsonl"',
                 'href="postgres-list-append/20261203T100000/clew.log"'):  # fmt: skip
        assert text in html, text
    assert 'data-filter="runs"' in html  # the search box filters every column


def test_serve_shows_histories_and_logs_as_text(tmp_path: Path) -> None:
    store = _store(tmp_path)
    srv = make_server(store, "127.0.0.1", 0)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        host, port = srv.server_address[:2]
        base = f"http://{host!s}:{port}/etcd-register/20261203T110000/"
        for name, body in (("history.jsonl", b'"invoke"'), ("clew.log", b"INFO the run"),
                           ("nodes/n1/etcd.log", b"etcd says hello")):  # fmt: skip
            with urllib.request.urlopen(base + name, timeout=10) as r:
                assert r.headers["Content-Type"] == "text/plain; charset=utf-8", name
                assert body in r.read()
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_a_runs_duration_is_read_from_the_ends_of_its_history_not_the_whole_of_it(
    tmp_path: Path,
) -> None:
    """A run without results.json takes its duration from its history's first and last
    lines, each read no further than EDGE_BYTES: a one-line history of gigabytes was read
    whole to find its first line."""
    from reports import index

    run = tmp_path / "store" / "t" / "20261203T100000"
    run.mkdir(parents=True)
    op = '{"type": "%s", "f": "write", "process": 0, "time": %d, "value": "%s"}\n'
    (run / "history.jsonl").write_text(op % ("invoke", 10**9, "x") + op % ("ok", 4 * 10**9, "x"))
    (row,) = list_runs(tmp_path / "store")
    assert row["duration"] == "3.0 s"
    big = "x" * (2 * index.EDGE_BYTES)  # the first line is longer than what is read of it
    (run / "history.jsonl").write_text(op % ("invoke", 10**9, big) + op % ("ok", 4 * 10**9, "x"))
    (row,) = list_runs(tmp_path / "store")
    assert row["duration"] == "—"  # not known, and the line was not read to its end
