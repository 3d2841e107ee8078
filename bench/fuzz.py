"""Fuzz ``clew check`` and ``clew convert`` with mutated histories, in one process.

Valid samples of every history format (jsonl, json, edn — as lines, a vector, a list, with
comments, multi-line maps — porcupine-etcd, porcupine-kv) for every model (the
linearizability models, the transactional ones, and the collection checkers registered in
``checkers.collections.CHECKERS``) are mutated with a seeded random mutator: text edits
(deletions, insertions of structural characters, truncation, swapped or repeated lines,
invalid UTF-8, deep nesting, integers beyond 64 bits) and op edits (a field set to a value
of another kind, removed, or made extreme). Each input is checked by calling the CLI's
entry point in-process (``cli.main``, catching ``SystemExit``), with and without
``--model``/``--format``, and every eighth one is also converted.

Outcomes:

* ``verdict``      exit 0, 1 or 2 (valid, invalid, unknown);
* ``clear error``  exit 254 with a message that names the file;
* ``unclear error`` exit 254 whose message does not name the file (the bar says it must);
* ``crash``        exit 255, an uncaught exception, or a traceback printed.

Usage::

    .venv/bin/python bench/fuzz.py [--count 100000] [--seed 1] [--keep-crashes DIR]

Prints the counts by outcome, the rate, and the first crashes (with their inputs kept in
``--keep-crashes``). The unit test ``tests/unit/test_fuzz.py`` runs the same mutator on a
few thousand inputs.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Runnable from a checkout without installing clew.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.formats.edn import format_op  # noqa: E402

OUTCOMES = ("verdict", "clear error", "unclear error", "crash")
DATA = ROOT / "tests" / "data"


@dataclass
class Sample:
    """A valid history: its format, the ``--model`` (and other) arguments it is meant for,
    and its ops (for op-level mutations) or its text (files from other projects)."""

    name: str
    fmt: str
    args: list[str]
    ops: list[dict[str, Any]] | None = None
    text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- samples


def _pairs(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Ops from (process, f, invoke value, completion type, completion value) rows, each
    invoked and completed at once, with index and time."""
    ops: list[dict[str, Any]] = []
    for p, f, vin, typ, vout in rows:
        ops.append({"type": "invoke", "process": p, "f": f, "value": vin})
        ops.append({"type": typ, "process": p, "f": f, "value": vout})
    for i, op in enumerate(ops):
        op["index"], op["time"] = i, 1000 * i
    return ops


def _concurrent(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Like :func:`_pairs` but every two calls overlap (invoke a, invoke b, complete both)."""
    ops: list[dict[str, Any]] = []
    for j in range(0, len(rows), 2):
        group = rows[j : j + 2]
        for p, f, vin, _, _ in group:
            ops.append({"type": "invoke", "process": p, "f": f, "value": vin})
        for p, f, _, typ, vout in group:
            ops.append({"type": typ, "process": p, "f": f, "value": vout})
    for i, op in enumerate(ops):
        op["index"], op["time"] = i, 1000 * i
    return ops


def _generated() -> list[tuple[str, list[str], list[dict[str, Any]]]]:
    nem = [{"type": "info", "process": "nemesis", "f": "start", "value": None}]
    register = _concurrent(
        [(0, "write", 1, "ok", 1), (1, "read", None, "ok", 1), (0, "write", 2, "info", None),
         (1, "read", None, "ok", 2), (2, "write", 3, "ok", 3), (1, "read", None, "ok", 3)]
    )  # fmt: skip
    cas = _concurrent(
        [(0, "write", 0, "ok", 0), (1, "cas", [0, 1], "ok", [0, 1]),
         (2, "cas", [5, 6], "fail", [5, 6]), (0, "read", None, "ok", 1),
         (1, "cas", [1, 2], "info", None), (3, "read", None, "ok", 2)]
    )  # fmt: skip
    multi = _concurrent(
        [(0, "txn", [["write", "x", 1], ["write", "y", 1]], "ok",
          [["write", "x", 1], ["write", "y", 1]]),
         (1, "txn", [["read", "x", None]], "ok", [["read", "x", 1]]),
         (2, "txn", [["read", "y", None], ["write", "x", 2]], "ok",
          [["read", "y", 1], ["write", "x", 2]]),
         (1, "txn", [["read", "x", None], ["read", "y", None]], "ok",
          [["read", "x", 2], ["read", "y", 1]])]
    )  # fmt: skip
    kv = _concurrent(
        [(0, "put", "a", "ok", "a"), (1, "append", "b", "ok", "b"), (0, "get", None, "ok", "ab"),
         (2, "put", "c", "info", None)]
    )  # fmt: skip
    for op in kv:
        op["key"] = "k1"
    mutex = _pairs(
        [(0, "acquire", None, "ok", None), (0, "release", None, "ok", None),
         (1, "acquire", None, "ok", None), (2, "acquire", None, "fail", None),
         (1, "release", None, "info", None)]
    )  # fmt: skip
    sets = _concurrent(
        [(0, "add", 1, "ok", 1), (1, "add", 2, "ok", 2), (2, "read", None, "ok", [1, 2]),
         (0, "add", 3, "info", None), (1, "read", None, "ok", [1, 2, 3])]
    )  # fmt: skip
    queue = _pairs(
        [(0, "enqueue", 1, "ok", 1), (1, "enqueue", 2, "ok", 2), (0, "dequeue", None, "ok", 1),
         (1, "dequeue", None, "ok", 2), (2, "dequeue", None, "ok", None)]
    )  # fmt: skip
    append = _concurrent(
        [(0, "txn", [["append", 1, 1], ["r", 2, None]], "ok", [["append", 1, 1], ["r", 2, None]]),
         (1, "txn", [["append", 2, 1], ["r", 1, None]], "ok", [["append", 2, 1], ["r", 1, [1]]]),
         (0, "txn", [["r", 1, None], ["r", 2, None]], "ok", [["r", 1, [1]], ["r", 2, [1]]]),
         (2, "txn", [["append", 1, 2]], "info", None)]
    )  # fmt: skip
    rw = _concurrent(
        [(0, "txn", [["w", 1, 1], ["r", 2, None]], "ok", [["w", 1, 1], ["r", 2, None]]),
         (1, "txn", [["w", 2, 1], ["r", 1, None]], "ok", [["w", 2, 1], ["r", 1, 1]]),
         (0, "txn", [["r", 1, None], ["w", 2, 2]], "ok", [["r", 1, 1], ["w", 2, 2]]),
         (2, "txn", [["w", 1, 3]], "fail", [["w", 1, 3]])]
    )  # fmt: skip
    bank = _pairs(
        [(0, "read", None, "ok", {"0": 10, "1": 10}),
         (1, "transfer", {"from": 0, "to": 1, "amount": 5}, "ok",
          {"from": 0, "to": 1, "amount": 5}),
         (0, "read", None, "ok", {"0": 5, "1": 15}),
         (2, "transfer", {"from": 1, "to": 0, "amount": 30}, "fail",
          {"from": 1, "to": 0, "amount": 30})]
    )  # fmt: skip
    counter = _concurrent(
        [(0, "add", 1, "ok", 1), (1, "read", None, "ok", 1), (0, "add", 2, "info", None),
         (1, "read", None, "ok", 3)]
    )  # fmt: skip
    set_full = _pairs(
        [(0, "add", 1, "ok", 1), (1, "read", None, "ok", [1]), (0, "add", 2, "ok", 2),
         (1, "read", None, "ok", [1, 2])]
    )  # fmt: skip
    ids = _concurrent(
        [(0, "generate", None, "ok", 1), (1, "generate", None, "ok", 2),
         (2, "generate", None, "info", None)]
    )  # fmt: skip
    long_fork = _pairs(
        [(0, "txn", [["w", 1, 1]], "ok", [["w", 1, 1]]),
         (1, "txn", [["r", 1, None], ["r", 2, None]], "ok", [["r", 1, 1], ["r", 2, None]]),
         (2, "txn", [["w", 2, 1]], "ok", [["w", 2, 1]])]
    )  # fmt: skip
    total_queue = _pairs(
        [(0, "enqueue", 1, "ok", 1), (1, "enqueue", 2, "info", None),
         (0, "dequeue", None, "ok", 1), (1, "drain", None, "ok", [2])]
    )  # fmt: skip
    out = [
        ("register", ["-m", "register"], register + nem),
        ("register-initial", ["-m", "register", "--initial-value", "0"], register),
        ("cas-register", ["-m", "cas-register"], cas),
        ("etcd", ["-m", "etcd"], cas),
        ("multi-register", ["-m", "multi-register", "--initial-value", '{"x": 0}'], multi),
        ("kv", ["-m", "kv"], kv),
        ("mutex", ["-m", "mutex"], mutex),
        ("set", ["-m", "set"], sets),
        ("queue-linear", ["-m", "queue"], queue),
        ("list-append", ["-m", "list-append"], append),
        (
            "list-append-strict",
            ["-m", "list-append", "--consistency", "strict-serializable"],
            append,
        ),
        ("rw-register", ["-m", "rw-register", "--wfr-keys", "--sequential-keys"], rw),
        ("rw-register-initial", ["-m", "rw-register", "--initial-value", '{"1": 0}'], rw),
        ("bank", ["-m", "bank"], bank),
        ("counter", ["-m", "counter"], counter),
        ("set-full", ["-m", "set-full"], set_full),
        ("unique-ids", ["-m", "unique-ids"], ids),
        ("long-fork", ["-m", "long-fork"], long_fork),
        ("queue", ["-m", "queue"], queue),
        ("total-queue", ["-m", "total-queue"], total_queue),
        ("lock", ["-m", "lock"], mutex),
    ]
    return out


def _files() -> list[Sample]:
    """Small real files from other projects (kept in tests/data with their licences)."""
    picks = [
        ("porcupine/jepsen/etcd_002.log", "porcupine-etcd", []),
        ("porcupine/kv/c01-ok.txt", "porcupine-kv", []),
        ("knossos/cas-register/bad/rethink-fail-minimal.edn", "edn",
         ["-m", "cas-register", "--initial-value", "0"]),
        ("knossos/cas-register/good/cas-register-bug.edn", "edn", ["--initial-value", "0"]),
        ("knossos/cas-register/bad/bad-analysis.edn", "edn", ["-m", "cas-register"]),
        ("elle/g-single.edn", "edn", ["-m", "list-append"]),
        ("elle/g1c.json", "json", ["-m", "list-append"]),
        ("elle-upstream/paper-example.edn", "edn", []),
        ("elle-upstream/readme-g1c.edn", "edn", ["-m", "list-append"]),
    ]  # fmt: skip
    return [
        Sample(rel, fmt, args, text=(DATA / rel).read_text(encoding="utf-8"))
        for rel, fmt, args in picks
    ]


def model_of(sample: Sample) -> str | None:
    """The ``--model`` a sample is meant for (None: guessed, or the format's default)."""
    args = sample.args
    return args[args.index("-m") + 1] if "-m" in args else None


def samples() -> list[Sample]:
    """Every valid sample: each generated history in jsonl, json and edn, plus the files."""
    from checkers.collections import CHECKERS
    from checkers.linear.models import MODELS

    known = set(CHECKERS) | set(MODELS) | {"list-append", "rw-register"}
    out = [
        Sample(f"{name}.{fmt}", fmt, args, ops=ops)
        for name, args, ops in _generated()
        if args[1] in known
        for fmt in ("jsonl", "json", "edn")
    ]
    return out + _files()


# --------------------------------------------------------------------------- writing


def _json_text(ops: list[dict[str, Any]], fmt: str, rng: random.Random) -> str:
    lines = [json.dumps(op) for op in ops]
    if fmt == "jsonl":
        return "\n".join(lines) + "\n"
    return "[\n" + ",\n".join(lines) + "\n]\n"


def _edn_text(ops: list[dict[str, Any]], rng: random.Random) -> str:
    lines = [format_op(op) for op in ops]
    style = rng.randrange(5)
    if style == 0:
        return "\n".join(lines) + "\n"
    if style == 1:
        return "[" + "\n ".join(lines) + "]\n"
    if style == 2:
        return "(" + "\n ".join(lines) + ")\n"
    if style == 3:  # Knossos's multi-line maps with a comment on top
        return "; a comment\n[" + "\n".join(x.replace(", ", ",\n ") for x in lines) + "]\n"
    return "; a history\n" + "\n".join(lines) + "\n; the end\n"


def render(sample: Sample, ops: list[dict[str, Any]] | None, rng: random.Random) -> str:
    """The sample's text, with ``ops`` in its format when it has ops."""
    if ops is None:
        return sample.text
    text = _edn_text(ops, rng) if sample.fmt == "edn" else _json_text(ops, sample.fmt, rng)
    if DEEP_MARK in text:
        depth = _DEEP + rng.randrange(400)
        text = text.replace(f'"{DEEP_MARK}"', "[" * depth + "1" + "]" * depth)
    return text


# --------------------------------------------------------------------------- mutations

_DEEP = 600
WEIRD: list[Any] = [
    None, True, False, 0, -1, 1.5, 2**63, -(2**63), -(2**63) - 1, 10**30, "", "x", "nemesis",
    "invoke", [], {}, [1], [1, 2], [1, 2, 3], [None, None], {"a": 1}, [["r", 1, None]],
    [[["r"], 1, None]], [["append", 1, [1]]], [["w", 1, -(2**63)]], [["r", 1, [1, [2]]]],
    [["read", "x", 1]], {"from": 0, "to": 1, "amount": 5}, {"0": -5, "1": "x"}, [[1, 2], 3],
    float("inf"), float("nan"), -(2**62),
]  # fmt: skip
TOKENS = [
    "[", "]", "{", "}", "(", ")", '"', ":", ",", "#", ";", "\\", "#{", "#inst", "nil", "null",
    ":ok", ":invoke", ":info", ":fail", ":nemesis", ":txn", "9223372036854775808",
    "-9223372036854775809", "1e400", "##NaN", "1/0", "12N", "1.5M", "-", "\x00", "\u2028",
    "\n", "\t", " ", ":process", ":f", ":value", '"type"', '"process"', "[[:r]]",
    "{:type :ok}", "\\newline", "#_", "^:meta", "'", "`", "~@",
]  # fmt: skip
FIELDS = ("type", "process", "f", "value", "time", "index", "key", "node", "error")


#: Stands for a deeply nested value in op edits; :func:`render` puts the nesting in the
#: text (rendering it as a value would exhaust the fuzzer's own recursion).
DEEP_MARK = "__DEEP__"


def _deep(rng: random.Random) -> Any:
    return DEEP_MARK


def mutate_ops(ops: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """A copy of ``ops`` with one to three op-level edits."""
    ops = [dict(op) for op in ops]
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        if not ops:
            break
        i = rng.randrange(len(ops))
        op = ops[i]
        kind = rng.randrange(8)
        name = "value" if rng.random() < 0.5 else rng.choice(FIELDS)
        if kind == 0:
            op.pop(name, None)
        elif kind == 1:
            op[name] = _deep(rng)
        elif kind in (2, 3, 4):
            op[name] = rng.choice(WEIRD)
        elif kind == 5:
            del ops[i]
        elif kind == 6:
            ops.insert(rng.randrange(len(ops) + 1), dict(op))
        else:
            j = rng.randrange(len(ops))
            ops[i], ops[j] = ops[j], ops[i]
    return ops


def mutate_text(text: str, rng: random.Random) -> str:
    """``text`` with one to three textual edits."""
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        n = len(text)
        at = rng.randrange(n + 1)
        kind = rng.randrange(10)
        if kind == 0 and n:
            text = text[:at] + text[at + rng.randint(1, 20) :]
        elif kind == 1:
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        elif kind == 2:
            text = text[: rng.randrange(n + 1)]
        elif kind == 3:
            lines = text.split("\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            if rng.random() < 0.5:
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines.insert(j, lines[i])
            text = "\n".join(lines)
        elif kind == 4:  # a number replaced by one beyond 64 bits, or negative
            digits = [k for k, c in enumerate(text) if c.isdigit()]
            if digits:
                k = rng.choice(digits)
                text = text[:k] + rng.choice(["9223372036854775808", "-1", "-"]) + text[k + 1 :]
        elif kind == 5:
            opener = rng.choice(["[", "(", "{:a ", "#{"])
            closer = {"[": "]", "(": ")", "{:a ": "}", "#{": "}"}[opener]
            text = text[:at] + opener * _DEEP + "1" + closer * _DEEP + text[at:]
        elif kind == 6:
            text = text.replace("\n", rng.choice([" ", "\n\n", "\r\n", ",\n"]), rng.randint(1, 5))
        elif kind == 7:
            text = rng.choice(["; comment\n", "#_ ", "\ufeff", " \n"]) + text
        elif kind == 8 and n:
            text = text[:at] + text[at:].replace(rng.choice(text), rng.choice(TOKENS), 1)
        else:
            text = text[:at] + chr(rng.randrange(1, 0x3000)) + text[at:]
    return text


# --------------------------------------------------------------------------- running


def run_cli(args: list[str]) -> tuple[int | None, str, str]:
    """Run the ``clew`` entry point in this process; (exit code or None, stdout, stderr).

    ``None`` means an exception escaped the CLI (a crash): its traceback is in stderr.
    """
    from harness.cli import cli

    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    code: int | None = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            cli.main(args=args, prog_name="clew")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # exactly what the fuzzer looks for
        code = None
        err.write(traceback.format_exc())
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return code, out.getvalue(), err.getvalue()


def classify(code: int | None, out: str, err: str, *paths: str) -> str:
    """One of :data:`OUTCOMES`; a clear error names one of ``paths``."""
    if code is None or code == 255 or "Traceback (most recent call last)" in err:
        return "crash"
    if code == 254:
        return "clear error" if any(p in out + err for p in paths) else "unclear error"
    if code in (0, 1, 2):
        return "verdict"
    return "crash"


@dataclass
class Report:
    """Counts by outcome and the first few bad cases."""

    counts: Counter[str] = field(default_factory=Counter)
    convert_counts: Counter[str] = field(default_factory=Counter)
    bad: list[tuple[str, str, list[str], str]] = field(default_factory=list)
    seconds: float = 0.0
    done: int = 0  # inputs checked so far
    stopped: bool = False  # set (by a signal) to stop after the current input

    @property
    def runs(self) -> int:
        return sum(self.counts.values())


def fuzz(
    count: int,
    seed: int,
    workdir: str,
    *,
    keep: str | None = None,
    max_bad: int = 20,
    progress: Callable[[int], None] | None = None,
    only: Callable[[Sample], bool] | None = None,
    report: Report | None = None,
) -> Report:
    """Check ``count`` mutated inputs (and convert every eighth); return the counts.

    ``only`` picks the samples to mutate (default: all of :func:`samples`). ``report``,
    when given, is filled as inputs are checked (and its ``stopped`` ends the run early).
    """
    rng = random.Random(seed)
    pool = [s for s in samples() if only is None or only(s)]
    report = Report() if report is None else report
    t0 = time.perf_counter()
    exts = {"jsonl": ".jsonl", "json": ".json", "edn": ".edn", "porcupine-etcd": ".log",
            "porcupine-kv": ".txt"}  # fmt: skip
    for n in range(count):
        if report.stopped:
            break
        sample = rng.choice(pool)
        ops = sample.ops
        if ops is not None and rng.random() < 0.5:
            ops = mutate_ops(ops, rng)
        text = render(sample, ops, rng)
        if ops is sample.ops or rng.random() < 0.3:
            text = mutate_text(text, rng)
        path = os.path.join(workdir, f"in{n % 4}{exts[sample.fmt]}")
        data = text.encode("utf-8", "surrogatepass")
        if rng.random() < 0.03:  # not UTF-8
            k = rng.randrange(len(data) + 1)
            data = data[:k] + bytes([0xFF, 0xC3]) + data[k:]
        with open(path, "wb") as f:
            f.write(data)
        args = ["check", "--no-progress", "--time-limit", "2", "--max-memory", "64M"]
        roll = rng.random()
        if roll < 0.6:
            args += ["--format", sample.fmt, *sample.args]
        elif roll < 0.8:
            args += sample.args  # format detected
        # else: format detected and the model guessed (or refused)
        if rng.random() < 0.2:
            args.append("--json")
        args.append(path)
        code, out, err = run_cli(args)
        outcome = classify(code, out, err, path)
        report.counts[outcome] += 1
        if outcome in ("crash", "unclear error"):
            _remember(report, keep, n, sample.name, args, out + err, data, max_bad)
        if n % 8 == 0:
            dst = os.path.join(workdir, "out" + rng.choice([".jsonl", ".json", ".edn"]))
            cargs = ["convert", path, dst]
            code, out, err = run_cli(cargs)
            c_outcome = classify(code, out, err, path, dst)
            report.convert_counts[c_outcome] += 1
            if c_outcome in ("crash", "unclear error"):
                _remember(report, keep, n, sample.name, cargs, out + err, data, max_bad)
        report.done = n + 1
        if progress is not None and (n + 1) % 1000 == 0:
            progress(n + 1)
    report.seconds = time.perf_counter() - t0
    return report


def _remember(
    report: Report,
    keep: str | None,
    n: int,
    name: str,
    args: list[str],
    output: str,
    data: bytes,
    max_bad: int,
) -> None:
    if len(report.bad) < max_bad:
        report.bad.append((name, " ".join(args[:-1]), args, output[-2000:]))
    if keep:
        os.makedirs(keep, exist_ok=True)
        base = os.path.join(keep, f"case{n}")
        Path(base + ".input").write_bytes(data)
        Path(base + ".txt").write_text(f"{name}\n{' '.join(args)}\n\n{output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="inputs to check")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-crashes", default=None, help="directory for crashing inputs")
    parser.add_argument(
        "--models", default=None, help="comma-separated --model names to fuzz (default: all)"
    )
    a = parser.parse_args()
    wanted = set(a.models.split(",")) if a.models else None

    def only(s: Sample) -> bool:
        return wanted is None or model_of(s) in wanted

    r = Report()

    def stop(signum: int, frame: Any) -> None:  # SIGTERM/SIGINT: report what was done
        r.stopped = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with tempfile.TemporaryDirectory(prefix="clew-fuzz-") as tmp:
        print(f"samples: {len(samples())}; inputs: {a.count:,}; seed {a.seed}", flush=True)

        def tick(done: int) -> None:
            line = ", ".join(f"{o} {r.counts[o]:,}" for o in OUTCOMES)
            print(f"  {done:,} done ({line})", flush=True)

        fuzz(a.count, a.seed, tmp, keep=a.keep_crashes, progress=tick, only=only, report=r)
    if r.stopped:
        print(f"stopped by a signal after {r.done:,} of {a.count:,} inputs")
    print(f"clew check on {r.runs:,} mutated inputs in {r.seconds:.1f} s "
          f"({r.runs / max(r.seconds, 1e-9):.1f}/s), one process:")  # fmt: skip
    for o in OUTCOMES:
        print(f"  {o:<14} {r.counts[o]:>8,}")
    print(f"clew convert on {sum(r.convert_counts.values()):,} of them:")
    for o in OUTCOMES:
        print(f"  {o:<14} {r.convert_counts[o]:>8,}")
    for name, cmd, _, output in r.bad:
        print(f"\n--- {name}: {cmd}\n{output}")
    sys.exit(1 if r.counts["crash"] or r.convert_counts["crash"] else 0)


if __name__ == "__main__":
    main()
