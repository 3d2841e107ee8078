"""Fuzz what clew reads from directories: stored runs, campaigns and Jepsen stores.

``bench/fuzz.py`` fuzzes single history files; this fuzzes the commands that take a
directory: ``clew report RUN_DIR``, ``clew analyze`` (of a stored run or a Jepsen store),
``clew compare`` of campaign directories, ``clew serve``'s index of a store, and ``clew
replay`` / ``clew shrink``'s reading of a run's ``spec.json``, ``results.json`` and
``faults.jsonl``. No cluster comes up and no server listens: the fuzzer stops ``replay``
and ``shrink`` at their first cluster step (``harness.runner._bring_up``) and ``serve``
where it would listen (``reports.serve.make_server``); reaching either counts as the input
accepted.

Valid samples are made first, as clew writes them: runs of built-in suites' workloads
(histories from ``bench/fuzz.py``'s samples, a fault ledger, a spec, then ``clew analyze``
writes their results and reports), a real bugkv run with node agents
(``tests/data/agents``), Jepsen stores (``tests/data/jepsen-store`` as it is and once
analyzed, and generated ones), and campaign directories. Each case copies one sample (a
store of every run for ``serve``), mutates one to three of its files or entries — text
edits, JSON and EDN structural edits (a field of the wrong type, removed, NaN, Infinity,
huge numbers, deep nesting), an empty file, invalid UTF-8, the file removed, a directory
or a FIFO where a file should be, a link out of the directory (or a dangling one, or a
loop), a huge file — and runs the command in this process with a per-case time limit.

Outcomes, as ``bench/fuzz.py``'s:

* ``verdict``       exit 0, 1 or 2 (replay, shrink, serve: the input accepted up to the
  cluster or the listening socket);
* ``clear error``   exit 254 with a message naming a mutated file (or, for a file removed
  or replaced by another kind of entry, its directory), or another file of the directory
  the command was given;
* ``unclear error`` exit 254 whose message names none of them;
* ``crash``         exit 255, an uncaught exception, or a traceback printed;
* ``hang``          the case outlived its time limit (``--timeout``).

Usage::

    .venv/bin/python bench/fuzz_dirs.py [--count 2000] [--seed 1] [--keep-crashes DIR]
        [--commands report,analyze,...] [--timeout 30]

Prints the counts by command and outcome and the first bad cases (their directories kept
in ``--keep-crashes``). ``tests/unit/test_fuzz_dirs.py`` runs a few hundred cases.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import random
import shutil
import signal
import stat
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Runnable from a checkout without installing clew; bench/fuzz.py's samples and mutators.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzz as hf  # noqa: E402

OUTCOMES = ("verdict", "clear error", "unclear error", "crash", "hang")
COMMANDS = ("report", "analyze", "compare", "serve", "replay", "shrink")
DATA = ROOT / "tests" / "data"
#: The name clew gives a run directory (its start, ``YYYYmmddTHHMMSS``).
RUN_NAME = "20250102T030405"


# --------------------------------------------------------------------------- samples


@dataclass
class Sample:
    """A valid directory: a run (``store/<test>/<run>``), a Jepsen store, or campaigns.

    ``root`` is the sample's directory in the templates; ``rel`` the path, under a case's
    directory, that the command is given (the run, the Jepsen store, the campaigns)."""

    name: str
    kind: str  # "run", "jepsen" or "campaigns"
    root: Path
    rel: str
    invalid: bool = False
    model: str | None = None
    #: The history's ops (runs and Jepsen stores made here): for op-level mutations.
    ops: list[dict[str, Any]] | None = None


#: Runs made from bench/fuzz.py's histories: (history sample, suite, workload, invalid?).
_RUNS = [
    ("etcd", "etcd", "register", False),
    ("etcd", "etcd", "register", True),  # a stale read: the run shrink takes
    ("list-append", "postgres", "list-append", False),
    ("bank", "etcd", "bank", False),
    ("counter", "postgres", "counter", False),
    ("set-full", "etcd", "set-full", False),
    ("unique-ids", "etcd", "unique-ids", False),
    ("long-fork", "postgres", "long-fork", False),
    ("queue", "postgres", "queue", False),
    ("lock", "etcd", "lock", False),
    ("set", "etcd", "set", False),
]
#: Jepsen stores made from bench/fuzz.py's histories (history sample, model).
_JEPSEN = [("register", "register"), ("list-append", "list-append"), ("bank", "bank"),
           ("set-full", "set-full")]  # fmt: skip


def _history_ops(name: str) -> list[dict[str, Any]]:
    for sample_name, _, ops in hf._generated():
        if sample_name == name:
            # Times of a real run: 10 ms apart, in nanoseconds.
            return [{**op, "time": 10_000_000 * (i + 1)} for i, op in enumerate(ops)]
    raise KeyError(name)


def _ledger(kinds: list[str], node: str) -> list[dict[str, Any]]:
    """A fault ledger as clew's nemesis writes it: each kind started and stopped, planned."""
    out: list[dict[str, Any]] = []
    seq = 0
    for i, kind in enumerate(kinds):
        value = {"targets": "one", "nodes": [node]}
        start, stop = 0.02 + 0.04 * i, 0.04 + 0.04 * i
        for f, at, event, phase in ((f"start-{kind}", start, "applied", "start"),
                                    (f"stop-{kind}", stop, "healed", "stop")):  # fmt: skip
            seq += 1
            t = int(at * 1e9)
            v = value if phase == "start" else None
            out.append({"time": t, "seq": seq, "kind": kind, "f": f, "event": "intent",
                        "value": v, "source": "random", "at": at})  # fmt: skip
            out.append({"time": t + 1_000_000, "seq": seq, "kind": kind, "f": f,
                        "event": event, "phase": phase, "value": v,
                        "targets": [node] if phase == "start" else [], "commands": [],
                        "seconds": 0.001})  # fmt: skip
    return out


def _write_run(run: Path, suite: str, workload: str, ops: list[dict[str, Any]],
               faults: list[str], nodes: int, *, ledger: str | None = None) -> None:  # fmt: skip
    """A run directory as the runner leaves it before the check (the check's results and
    report are written by ``clew analyze``)."""
    from harness.formats import write_history
    from harness.history import History
    from harness.record import RunSpec, ScheduleRecord
    from harness.spec import load_spec

    run.mkdir(parents=True)
    spec = load_spec(suite=suite, workload=workload, seed=7, nodes=nodes, time_limit=10.0,
                     faults=",".join(faults) or "none")  # fmt: skip
    RunSpec({**spec.to_json(), "workload": workload}).write(run)
    (run / "versions.json").write_text(json.dumps({"clew": "0", "python": "3", "db": suite}))
    (run / "clock.json").write_text(json.dumps({"origin_unix_ns": 1_735_786_245_000_000_000}))
    if ledger is not None:
        shutil.copyfile(ledger, run / "faults.jsonl")
    else:
        records = _ledger(faults, "n1")
        (run / "faults.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        steps = [{"at": r["at"], "f": r["f"], "value": r["value"]}
                 for r in records if r["event"] == "intent"]  # fmt: skip
        ScheduleRecord("random", 7, steps).write(run)
    if ops:
        write_history(History.from_ops(ops), str(run / "history.jsonl"), "jsonl")
    (run / "clew.log").write_text("2025-01-02 03:04:05 INFO clew.runner: cluster up\n"
                                  "2025-01-02 03:04:15 INFO clew.runner: checking\n")  # fmt: skip
    for n in range(1, min(nodes, 3) + 1):
        d = run / "nodes" / f"n{n}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{suite}.log").write_text(  # stamped as clock.json's origin is, give or take
            f"2025-01-02T03:04:05.01{n}Z n{n} started\n2025-01-02 03:04:05,2{n}0 n{n} "
            f"elected leader\n  a continuation line\n1735787045.5{n} n{n} stopping\n"
        )


def _campaigns(root: Path) -> None:
    """Campaign directories as ``clew campaign`` writes them, two schedulers' worth."""
    for i, (sched, found) in enumerate([("random", 3), ("random", None), ("adaptive", 1),
                                        ("ldfi", 2), ("adaptive", None)]):  # fmt: skip
        made = found or 5
        d = root / "bugkv-set" / f"2025010{i + 1}T000000"
        (d / "runs" / "r1").mkdir(parents=True)
        runs = [
            {
                "run_dir": str(d / "runs" / f"r{k}"),
                "valid": k != found,
                "wall_seconds": 10.0 + k,
                "fault_ops": 3,
                "seed": k,
            }
            for k in range(1, made + 1)
        ]
        (d / "campaign.json").write_text(json.dumps({
            "config": {"suite": "bugkv", "workload": "set", "options": {"bug": "early-ack"},
                       "scheduler": sched, "faults": ["kill"]},
            "config_hash": f"c-{sched}", "experiment_hash": "e1", "clew_commit": "abc123",
            "caps": {"runs": 5, "seconds": None}, "stopped": "found" if found else "cap",
            "runs_to_detection": found,
            "seconds_to_detection": 10.0 * made if found else None,
            "fault_ops_to_detection": 3 * made if found else None, "runs_made": made,
            "seconds_spent": 10.0 * made, "fault_ops_spent": 3 * made, "runs": runs,
        }, indent=2))  # fmt: skip
        (d / "runs" / "r1" / "spec.json").write_text("{}")


def _jepsen_results(valid: bool) -> str:
    v = "true" if valid else "false"
    return (
        f"{{:perf {{:valid? true}},\n :workload {{:valid? {v}, :count 4}},\n"
        f" :stats {{:valid? true, :count 10, :ok-count 8}},\n :valid? {v}}}\n"
    )


def make_samples(workdir: Path, *, log: Callable[[str], None] = print) -> list[Sample]:
    """Write every sample under ``workdir/templates`` and return them. Runs are checked
    by ``clew analyze`` (which writes results.json, report.html and the store's index);
    a sample it does not give a verdict is left out (and said so)."""
    from harness.formats.edn import format_op

    tpl = workdir / "templates"
    store = tpl / "store"
    samples: list[Sample] = []
    for hist, suite, workload, invalid in _RUNS:
        ops = _history_ops(hist)
        if invalid:  # a read of a value nobody wrote
            ops = [dict(op) for op in ops]
            reads = [op for op in ops if op["f"] == "read" and op["type"] == "ok"]
            reads[-1]["value"] = 4
        test = f"{suite}-{workload}" + ("-invalid" if invalid else "")
        run = store / test / RUN_NAME
        nodes = 1 if suite == "postgres" else 5
        faults = ["kill"] if suite == "postgres" else ["pause", "kill"]
        spec_name = test if invalid else None
        _write_run(run, suite, workload, ops, faults, nodes)
        if spec_name:
            spec = json.loads((run / "spec.json").read_text())
            spec["name"] = spec["test_name"] = spec_name
            (run / "spec.json").write_text(json.dumps(spec, indent=2))
        samples.append(Sample(test, "run", run, f"store/{test}/{RUN_NAME}", invalid, ops=ops))
    agents = DATA / "agents" / "bugkv-5-nodes"
    run = store / "bugkv-set" / RUN_NAME
    _write_run(run, "bugkv", "set", [], ["partition", "kill"], 5,
               ledger=str(agents / "faults.jsonl"))  # fmt: skip
    shutil.copyfile(agents / "history.jsonl", run / "history.jsonl")
    for n in range(1, 6):
        (run / "nodes" / f"n{n}").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(agents / "nodes" / f"n{n}" / "agent.jsonl",
                        run / "nodes" / f"n{n}" / "agent.jsonl")  # fmt: skip
    first = json.loads((agents / "nodes" / "n1" / "agent.jsonl").read_text().split("\n")[0])
    origin = first["mono"] - round(first["run"] * 1e9)
    (run / "agents.json").write_text(json.dumps({
        "origin_controller_ns": origin, "lead": 1.0, "handed_late_ms": 0.2,
        "offsets": {f"n{n}": {"offset_ns": 1000 * n, "rtt_ns": 90_000} for n in range(1, 6)},
        "slices": {},
    }, indent=1))  # fmt: skip
    samples.append(Sample("bugkv-set-agents", "run", run, f"store/bugkv-set/{RUN_NAME}"))
    kept = []
    for s in samples:
        code, out, err, _ = run_cli(["analyze", str(s.root), "--time-limit", "20"], 120.0)
        if code not in (0, 1, 2) or "Traceback" in err:
            log(f"sample {s.name} left out: clew analyze exits {code}: {(out + err)[-300:]}")
            continue
        s.invalid = code == 1
        kept.append(s)
    samples = kept
    # Jepsen stores: the real one, as it is and analyzed; generated ones.
    real = tpl / "jepsen" / "etcd" / "20250102T030405.000Z"
    _copy_tree(DATA / "jepsen-store", real)
    samples.append(Sample("jepsen-real", "jepsen", real, "jepsen/etcd/20250102T030405.000Z"))
    seen = tpl / "jepsen-seen" / "etcd" / "20250102T030405.000Z"
    _copy_tree(DATA / "jepsen-store", seen)
    samples.append(Sample("jepsen-analyzed", "jepsen", seen,
                          "jepsen-seen/etcd/20250102T030405.000Z"))  # fmt: skip
    for hist, model in _JEPSEN:
        ops = _history_ops(hist)
        d = tpl / "jepsen" / hist / "20250103T000000.000Z"
        (d / "n1").mkdir(parents=True)
        (d / "history.edn").write_text("".join(format_op(op) + "\n" for op in ops))
        (d / "results.edn").write_text(_jepsen_results(True))
        (d / "jepsen.log").write_text("INFO jepsen.core - Run complete, writing\n")
        (d / "n1" / "db.log").write_text("started\n")
        samples.append(Sample(f"jepsen-{hist}", "jepsen", d, f"jepsen/{hist}/{d.name}",
                              model=model, ops=ops))  # fmt: skip
    for s in [s for s in samples if s.kind == "jepsen"]:
        args = ["analyze", str(s.root), "--time-limit", "20"]
        code, out, err, _ = run_cli(args + (["-m", s.model] if s.model else []), 120.0)
        if code not in (0, 1, 2) or "Traceback" in err:
            log(f"sample {s.name} left out: clew analyze exits {code}: {(out + err)[-300:]}")
            samples.remove(s)
        elif s.name != "jepsen-analyzed":
            shutil.rmtree(s.root / "clew")  # as Jepsen left it
    camp = tpl / "campaigns"
    _campaigns(camp)
    samples.append(Sample("campaigns", "campaigns", camp, "campaigns"))
    return samples


# --------------------------------------------------------------------------- files


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` as it is: links as links, FIFOs made anew (never opened)."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(src):
        s, d = Path(entry.path), dst / entry.name
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISDIR(mode):
            _copy_tree(s, d)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(d)
        elif stat.S_ISREG(mode):
            shutil.copy2(s, d)


def _remove(path: Path) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _entries(top: Path) -> list[Path]:
    """Every file and directory below ``top`` (not following links), ``top`` excluded."""
    out = []
    for where, dirs, files in os.walk(top):
        out.extend(Path(where) / n for n in sorted(dirs) + sorted(files))
    return out


# --------------------------------------------------------------------------- mutations

#: Values a JSON field is set to: other kinds, extremes, NaN and infinities.
WEIRD: list[Any] = [*hf.WEIRD, float("-inf"), 10**30, -(10**30), 10**300, 1e308, -0.0,
                    "NaN", "../../../etc/passwd", "/dev/zero", "<script>x</script>",
                    "\u0000", "x" * 5000, {"": None}, [[], {}], "2025-01-02T03:04:05Z",
                    {"valid": False}, {"valid?": True}, [{"valid": "maybe"}], 1e-300]  # fmt: skip
#: Stands for a deeply nested value; written into the text after ``json.dumps``.
DEEP = "__DEEP_NESTING__"
#: Files the commands read, by how a mutation chooses them (the rest is chosen less often).
_KEY_FILES = {
    "report": ["results.json", "spec.json", "history.jsonl", "faults.jsonl", "clock.json",
               "nodes", "agent.jsonl", "agents.json", ".clew-index-cache.json", "clew"],
    "analyze": ["spec.json", "results.json", "history.jsonl", "faults.jsonl",
                "history.edn", "results.edn", "clew"],
    "replay": ["spec.json", "faults.jsonl"],
    "shrink": ["spec.json", "faults.jsonl", "results.json"],
    "serve": ["spec.json", "results.json", "history.jsonl", ".clew-index-cache.json",
              "latest", "index.html", "report.html"],
    "compare": ["campaign.json"],
}  # fmt: skip
_LINE_FILES = (".jsonl", ".edn", ".log")


def _json_paths(value: Any, prefix: tuple[Any, ...] = (), out: list[Any] | None = None,
                limit: int = 400) -> list[tuple[Any, ...]]:  # fmt: skip
    """The paths (keys and indexes) to every value inside ``value``, the first ``limit``."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((*prefix, k))
            _json_paths(v, (*prefix, k), out, limit)
    elif isinstance(value, list):
        for i, v in enumerate(value[:50]):
            out.append((*prefix, i))
            _json_paths(v, (*prefix, i), out, limit)
    return out


def mutate_json_value(value: Any, rng: random.Random) -> Any:
    """``value`` with one structural edit: a value somewhere set to a weird one, removed,
    wrapped, nested deeply or duplicated; or the whole of it replaced."""
    paths = _json_paths(value)
    if not paths or rng.random() < 0.08:
        return rng.choice([*WEIRD, DEEP])
    top = [p for p in paths if len(p) == 1]
    path = rng.choice(top) if top and rng.random() < 0.5 else rng.choice(paths)
    parent = value
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    kind = rng.randrange(6)
    if kind == 0:
        del parent[key]
    elif kind == 1:
        parent[key] = DEEP
    elif kind == 2:
        parent[key] = [parent[key]] if rng.random() < 0.5 else {"x": parent[key]}
    elif kind == 3 and isinstance(parent, dict):
        parent[rng.choice(["valid", "seed", "suite", "workload", "checkers", "config",
                           "time", "seq", "event", "at", "f", "nodes", "faults", "x"])] = (
            rng.choice(WEIRD))  # fmt: skip
    else:
        parent[key] = rng.choice(WEIRD)
    return value


def _dumps(value: Any, rng: random.Random, *, indent: int | None = None) -> str:
    text = json.dumps(value, indent=indent)
    depth = rng.choice([50, 1000, 5000, 100_000])
    return text.replace(f'"{DEEP}"', "[" * depth + "1" + "]" * depth)


def mutate_json_text(text: str, rng: random.Random) -> str:
    """A JSON file's text with a structural edit (else a textual one, if it is not JSON)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return hf.mutate_text(text, rng)
    return _dumps(mutate_json_value(value, rng), rng, indent=rng.choice([None, 2]))


def mutate_jsonl_text(text: str, rng: random.Random) -> str:
    """A JSONL file's text with one to three lines edited structurally, or dropped,
    repeated, or a line added."""
    lines = text.split("\n")
    for _ in range(rng.choice((1, 1, 2, 3))):
        i = rng.randrange(len(lines))
        roll = rng.random()
        if roll < 0.7:
            try:
                value = json.loads(lines[i])
            except (ValueError, RecursionError):
                continue
            lines[i] = _dumps(mutate_json_value(value, rng), rng)
        elif roll < 0.8:
            del lines[i]
            if not lines:
                lines = [""]
        elif roll < 0.9:
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
        else:
            lines.insert(rng.randrange(len(lines) + 1),
                         _dumps(rng.choice([*WEIRD, DEEP]), rng))  # fmt: skip
    return "\n".join(lines)


#: EDN values a Jepsen results.edn's ``:valid?`` is set to.
_EDN_VALID = [":unknown", "nil", "false", "true", "##NaN", "##Inf", "1e400", '"true"', "[true]",
              "{:a 1}", "#{}", ":valid?", "12N", "#inst \"2025\"", "'x", "\\c", "()"]  # fmt: skip


def mutate_edn_text(name: str, text: str, rng: random.Random,
                    ops: list[dict[str, Any]] | None) -> str:  # fmt: skip
    """An EDN file's text with an edit: history ops edited and written again (one map a
    line, as Jepsen writes them), results.edn's verdict changed, or a textual edit."""
    from harness.formats.edn import format_op

    roll = rng.random()
    if name == "history.edn" and ops is not None and roll < 0.5:
        mutated = hf.mutate_ops(ops, rng)
        try:
            out = "".join(format_op(op) + "\n" for op in mutated)
        except Exception:  # a value format_op cannot write: keep the text
            return hf.mutate_text(text, rng)
        depth = rng.choice([50, 1000, 100_000])
        return out.replace(f'"{hf.DEEP_MARK}"', "[" * depth + "1" + "]" * depth)
    if name == "results.edn" and roll < 0.5:
        if rng.random() < 0.15:  # larger than clew parses whole: the verdict is scanned
            pad = "[" + " ".join(str(i) for i in range(60_000)) + "]"
            text = text.rstrip().rstrip("}") + f"\n :big {pad}}}\n"
            if rng.random() < 0.5:
                text = "{:big " + pad + ",\n " + text.lstrip().lstrip("{")
        return text.replace(":valid? true", ":valid? " + rng.choice(_EDN_VALID),
                            rng.choice([1, 1, 10]))  # fmt: skip
    return hf.mutate_text(text, rng)


@dataclass
class Mutation:
    """What was done to a case: its words, and the paths a clear error may name."""

    what: str
    names: list[str]


def _outside(case: Path, rng: random.Random) -> str:
    """Where a link out of the case's directory points: files and a directory outside it
    (made here), a dangling path, or system files only read (never written through)."""
    out = case / "outside"
    out.mkdir(exist_ok=True)
    (out / "data.json").write_text('{"valid": true, "seed": 1}\n')
    (out / "lines.jsonl").write_text('{"type": "invoke", "process": 0, "f": "read"}\n')
    (out / "dir").mkdir(exist_ok=True)
    return rng.choice([str(out / "data.json"), str(out / "lines.jsonl"), str(out / "dir"),
                       str(out / "absent"), "/dev/null", "/proc/self/status",
                       "/nonexistent/clew-fuzz"])  # fmt: skip


def mutate_entry(path: Path, case: Path, rng: random.Random, sample: Sample) -> Mutation:
    """One mutation of the file or directory at ``path`` inside the case at ``case``."""
    rel = path.relative_to(case)
    names = [str(path)]
    structural = [str(path), str(path.parent)]
    is_file = path.is_file() and not path.is_symlink()
    kind = rng.randrange(20) if is_file else rng.randrange(11, 20)
    if is_file and kind < 11:
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", "replace")
        if kind < 7:
            if path.suffix == ".json":
                new = mutate_json_text(text, rng)
                what = "JSON edit"
            elif path.suffix == ".jsonl":
                new = mutate_jsonl_text(text, rng)
                what = "JSONL edit"
            elif path.suffix == ".edn":
                new = mutate_edn_text(path.name, text, rng, sample.ops)
                what = "EDN edit"
            else:
                new = hf.mutate_text(text, rng)
                what = "text edit"
        elif kind < 9:
            new = hf.mutate_text(text, rng)
            what = "text edit"
        elif kind == 9:
            new = ""
            what = "emptied"
        else:
            raw = text.encode("utf-8", "surrogatepass")
            k = rng.randrange(len(raw) + 1)
            path.write_bytes(raw[:k] + rng.choice([b"\xff\xc3", b"\xc3", b"\x80", b"\xed\xa0\x80"])
                             + raw[k:])  # fmt: skip
            return Mutation(f"{rel}: invalid UTF-8", names)
        path.write_bytes(new.encode("utf-8", "surrogatepass"))
        return Mutation(f"{rel}: {what}", names)
    if kind < 13:
        _remove(path)
        return Mutation(f"{rel}: removed", structural)
    if kind == 13:
        _remove(path)
        path.mkdir()
        if rng.random() < 0.5:
            (path / "inside.json").write_text("{}")
        return Mutation(f"{rel}: a directory instead", structural)
    if kind == 14:
        _remove(path)
        os.mkfifo(path)
        return Mutation(f"{rel}: a FIFO instead", structural)
    if kind in (15, 16):
        target = _outside(case, rng)
        _remove(path)
        os.symlink(target, path)
        return Mutation(f"{rel}: a link to {target}", structural)
    if kind == 17:
        _remove(path)
        if rng.random() < 0.5:
            os.symlink(path.name, path)  # a link to itself: a loop
        else:
            # up the tree, out of the target perhaps, never out of the case
            os.symlink("../" * rng.randint(1, len(rel.parts)), path)
        return Mutation(f"{rel}: a looping or upward link", structural)
    if kind == 18 and is_file:
        with open(path, "r+b") as f:  # larger than any record clew writes (sparse)
            f.truncate(rng.choice([65 * 1024**2, 300 * 1024]))
        return Mutation(f"{rel}: made huge", names)
    # an entry added beside it
    where = path if path.is_dir() and not path.is_symlink() else path.parent
    extra = where / rng.choice(["n9", "x.jsonl", "agent.jsonl", "latest", "campaign.json",
                                "elle", "clew", "nodes"])  # fmt: skip
    if extra.exists() or extra.is_symlink():
        _remove(extra)
    roll = rng.random()
    if roll < 0.4:
        os.symlink(_outside(case, rng), extra)
    elif roll < 0.6:
        os.mkfifo(extra)
    elif roll < 0.8:
        extra.mkdir()
        (extra / "agent.jsonl").write_text('{"e": "strike", "run": "x"}\n')
    else:
        extra.write_text(rng.choice(['{"valid": "maybe"}', "", "\x00", "[]", "{:valid? ##NaN}"]))
    return Mutation(f"{extra.relative_to(case)}: added", [str(extra), str(where)])


def _pick(entries: list[Path], command: str, rng: random.Random) -> Path:
    key = set(_KEY_FILES[command])
    preferred = [p for p in entries if p.name in key]
    return rng.choice(preferred if preferred and rng.random() < 0.75 else entries)


# --------------------------------------------------------------------------- running


class _ReachedCluster(BaseException):
    """Raised where a replay or shrink would bring a cluster up: the input was accepted."""


class _ReachedServer(BaseException):
    """Raised where ``clew serve`` would listen: its index was written."""


class _Timeout(BaseException):
    """The case outlived its time limit."""


@contextlib.contextmanager
def no_cluster_no_server() -> Iterator[None]:
    """Stop ``replay``/``shrink`` at their first cluster step, ``serve`` before it listens."""
    import harness.runner
    import reports.serve

    def bring_up(*args: Any, **kwargs: Any) -> Any:
        raise _ReachedCluster

    def make_server(*args: Any, **kwargs: Any) -> Any:
        raise _ReachedServer

    saved = harness.runner._bring_up, reports.serve.make_server
    harness.runner._bring_up = bring_up  # type: ignore[assignment]
    reports.serve.make_server = make_server  # type: ignore[assignment]
    try:
        yield
    finally:
        harness.runner._bring_up, reports.serve.make_server = saved  # type: ignore[assignment]


def run_cli(args: list[str], timeout: float) -> tuple[int | None, str, str, str | None]:
    """Run ``clew`` with ``args`` in this process for at most ``timeout`` seconds; (exit
    code or None, stdout, stderr, how it stopped early: ``"cluster"``, ``"server"``,
    ``"timeout"`` or None). None as the code: an exception escaped (its traceback is in
    stderr)."""
    from harness.cli import cli

    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    code: int | None = 0
    early: str | None = None
    alarm = signal.getsignal(signal.SIGALRM)

    def expire(signum: int, frame: Any) -> None:
        raise _Timeout

    main_thread = hasattr(signal, "setitimer") and _in_main_thread()
    if main_thread:
        signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            cli.main(args=args, prog_name="clew")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except _ReachedCluster:
        code, early = 0, "cluster"
    except _ReachedServer:
        code, early = 0, "server"
    except _Timeout:
        code, early = None, "timeout"
    except BaseException:  # exactly what the fuzzer looks for
        code = None
        err.write(traceback.format_exc())
    finally:
        if main_thread:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, alarm)
        root.handlers[:] = handlers
        root.setLevel(level)
    return code, out.getvalue(), err.getvalue(), early


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def classify(code: int | None, out: str, err: str, early: str | None, names: list[str]) -> str:
    """One of :data:`OUTCOMES`; a clear error names one of ``names``
    (``bench/fuzz.py``'s classes, and a hang)."""
    return "hang" if early == "timeout" else hf.classify(code, out, err, *names)


@dataclass
class Bad:
    """A crash, unclear error or hang: the command, the mutations and the output."""

    command: str
    sample: str
    outcome: str
    args: list[str]
    mutations: list[str]
    output: str


@dataclass
class Report:
    """Counts by command and outcome, and the first few bad cases."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    bad: list[Bad] = field(default_factory=list)
    seconds: float = 0.0
    done: int = 0
    stopped: bool = False

    @property
    def runs(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def total(self, outcome: str) -> int:
        return sum(c[outcome] for c in self.counts.values())


def _args(command: str, target: Path, case: Path, rng: random.Random,
          sample: Sample) -> list[str]:  # fmt: skip
    t = str(target)
    if command == "report":
        args = ["report", t, "--max-memory", rng.choice(["64M", "2G"])]
        if rng.random() < 0.3:
            args += ["--max-ops", rng.choice(["0", "3", "1000000"])]
        if rng.random() < 0.3:
            args.append("--no-index")
        return args
    if command == "analyze":
        args = ["analyze", t, "--time-limit", "5", "--max-memory", "256M"]
        if sample.kind == "jepsen" and sample.model and rng.random() < 0.7:
            args += ["-m", sample.model]
        return args
    if command == "compare":
        out = str(case / "compare.html")
        roll = rng.random()
        if roll < 0.6:
            return ["compare", t, "-o", out]
        if roll < 0.8:
            return ["compare", f"mine={t}", "-o", out]
        files = sorted(str(p) for p in target.rglob("campaign.json"))
        return ["compare", *(files[:3] or [t]), "-o", out]
    if command == "serve":
        return ["serve", "--store", t, "--port", "0",
                "--index-runs", rng.choice(["0", "1", "1000"])]  # fmt: skip
    common = ["--store", str(case / "again"), "--cluster-state-dir", str(case / "no-cluster")]
    if command == "replay":
        return ["replay", t, "--no-progress", *common]
    return ["shrink", t, "--max-runs", "2", "--reruns", "1", *common]


def _samples_for(command: str, samples: list[Sample]) -> list[Sample]:
    if command == "compare":
        return [s for s in samples if s.kind == "campaigns"]
    if command in ("report", "analyze"):
        return [s for s in samples if s.kind in ("run", "jepsen")]
    if command == "shrink":  # an invalid run (a valid one is refused at once)
        return [s for s in samples if s.kind == "run" and s.invalid] or [
            s for s in samples if s.kind == "run"
        ]
    return [s for s in samples if s.kind == "run"]


def _make_case(command: str, samples: list[Sample], case: Path,
               rng: random.Random) -> tuple[Sample, Path, Path]:  # fmt: skip
    """Copy a sample into ``case``: (the sample, the command's target, the directory whose
    entries mutations choose from)."""
    if command == "serve":
        runs = [s for s in samples if s.kind == "run"]
        store = case / "store"
        for s in rng.sample(runs, rng.randint(1, min(4, len(runs)))):
            _copy_tree(s.root, case / s.rel)
        if rng.random() < 0.5:  # an index written before: its row cache
            from reports.index import write_index

            write_index(store)
        return runs[0], store, store
    sample = rng.choice(_samples_for(command, samples))
    target = case / sample.rel
    _copy_tree(sample.root, target)
    if command == "report" and sample.kind == "run" and rng.random() < 0.3:
        from reports.index import write_index

        write_index(case / "store")
    top = case / "store" if sample.kind == "run" and rng.random() < 0.2 else target
    return sample, target, top


def fuzz(
    count: int,
    seed: int,
    workdir: str,
    *,
    commands: tuple[str, ...] = COMMANDS,
    keep: str | None = None,
    max_bad: int = 20,
    timeout: float = 30.0,
    progress: Callable[[int], None] | None = None,
    report: Report | None = None,
    samples: list[Sample] | None = None,
) -> Report:
    """Run ``count`` mutated cases, the commands in turn; return the counts."""
    rng = random.Random(seed)
    work = Path(os.path.realpath(workdir))
    report = Report() if report is None else report
    if samples is None:
        samples = make_samples(work)
    for c in commands:
        report.counts.setdefault(c, Counter())
    t0 = time.perf_counter()
    with no_cluster_no_server():
        for n in range(count):
            if report.stopped:
                break
            command = commands[n % len(commands)]
            case = work / f"case{n % 2}"
            if case.exists():
                shutil.rmtree(case)
            case.mkdir()
            sample, target, top = _make_case(command, samples, case, rng)
            mutations = []
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                entries = _entries(top)
                if entries:
                    mutations.append(mutate_entry(_pick(entries, command, rng), case, rng, sample))
            # A message naming a mutated file, or any file of the target, is clear.
            names = [n for m in mutations for n in m.names] + [f"{target}/"]
            args = _args(command, target, case, rng, sample)
            code, out, err, early = run_cli(args, timeout)
            outcome = classify(code, out, err, early, names)
            report.counts[command][outcome] += 1
            if outcome in ("crash", "unclear error", "hang"):
                bad = Bad(command, sample.name, outcome, args, [m.what for m in mutations],
                          (out + err)[-2500:])  # fmt: skip
                if len(report.bad) < max_bad:
                    report.bad.append(bad)
                if keep:
                    dst = Path(keep) / f"seed{seed}-case{n}"
                    _copy_tree(case, dst / "case")
                    (dst / "case.txt").write_text(
                        f"{bad.outcome}: {' '.join(args)}\n{bad.mutations}\n\n{bad.output}\n"
                    )
            report.done = n + 1
            if progress is not None and (n + 1) % 100 == 0:
                progress(n + 1)
    report.seconds = time.perf_counter() - t0
    return report


def print_report(r: Report, seed: int) -> None:
    print(f"{r.runs:,} cases in {r.seconds:.1f} s (seed {seed}):")
    print(f"  {'command':<9}" + "".join(f"{o:>15}" for o in OUTCOMES))
    for c, counts in r.counts.items():
        print(f"  {c:<9}" + "".join(f"{counts[o]:>15,}" for o in OUTCOMES))
    for b in r.bad:
        print(f"\n--- {b.outcome}: {b.command} of {b.sample}; {'; '.join(b.mutations)}\n"
              f"{' '.join(b.args)}\n{b.output}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="cases to run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-crashes", default=None, help="directory for the bad cases")
    parser.add_argument("--commands", default=",".join(COMMANDS),
                        help="comma-separated commands to fuzz (default: all)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a case may take")
    a = parser.parse_args()
    commands = tuple(a.commands.split(","))
    unknown = set(commands) - set(COMMANDS)
    if unknown:
        parser.error(f"unknown commands {sorted(unknown)}; choose from {', '.join(COMMANDS)}")
    r = Report()

    def stop(signum: int, frame: Any) -> None:  # SIGTERM/SIGINT: report what was done
        r.stopped = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with tempfile.TemporaryDirectory(prefix="clew-fuzz-dirs-") as tmp:
        samples = make_samples(Path(os.path.realpath(tmp)))
        print(f"samples: {len(samples)}; cases: {a.count:,}; seed {a.seed}", flush=True)

        def tick(done: int) -> None:
            line = ", ".join(f"{o} {r.total(o):,}" for o in OUTCOMES)
            print(f"  {done:,} done ({line})", flush=True)

        fuzz(a.count, a.seed, tmp, commands=commands, keep=a.keep_crashes, progress=tick,
             report=r, samples=samples, timeout=a.timeout)  # fmt: skip
    if r.stopped:
        print(f"stopped by a signal after {r.done:,} of {a.count:,} cases")
    print_report(r, a.seed)
    sys.stdout.flush()
    # (not sys.exit: a thread a hung case left blocked, on a FIFO say, would be waited for)
    os._exit(1 if any(r.total(o) for o in ("crash", "unclear error", "hang")) else 0)


if __name__ == "__main__":
    main()
