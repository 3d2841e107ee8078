"""Do the linearizability checker's budgets hold in every phase? (issue 11, part 2)

Runs ``clew check`` (a fresh process each) on generated histories and prints the verdict,
its cause, the wall time against --time-limit and the peak RSS against --max-memory plus
the base (the peak RSS of ``clew check`` of a two-op history: interpreter, imports,
kernels):

* ``pending``: 100,000 writes of distinct values that end ``info``, each seen by a read
  concurrent with all of them, then a read of a value nobody wrote (hard: the search
  must try the writes in many orders), under ``--max-memory 300M``;
* ``keys``: 200,000 keys of a few ops each, under ``--time-limit 2``;
* ``hard``: the ``pending`` history under ``--time-limit 30`` (run it while the machine is
  busy to see the limit hold under load).

    .venv/bin/python bench/linear_budgets.py [--dir /tmp/clew-budgets] [--only pending,keys,hard]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _write(path: Path, lines: list[dict[str, object]]) -> None:
    with open(path, "w") as out:
        for i, d in enumerate(lines):
            out.write(json.dumps({"index": i, **d}) + "\n")


def pending_history(path: Path, writes: int = 100_000) -> Path:
    """``writes`` info writes of distinct values, each read by a concurrent ok read, then
    a read of a value never written (not linearizable, and hard to show)."""
    if not path.exists():
        rows: list[dict[str, object]] = []
        rows += [dict(type="invoke", process=p, f="write", value=p) for p in range(writes)]
        rows += [dict(type="invoke", process=writes + p, f="read", value=None)
                 for p in range(writes)]  # fmt: skip
        rows += [dict(type="info", process=p, f="write", value=p) for p in range(writes)]
        rows += [dict(type="ok", process=writes + p, f="read", value=p) for p in range(writes)]
        rows += [dict(type="invoke", process=3 * writes, f="read", value=None),
                 dict(type="ok", process=3 * writes, f="read", value=-1)]  # fmt: skip
        _write(path, rows)
    return path


def keys_history(path: Path, keys: int = 200_000) -> Path:
    """``keys`` keys, each written and read back (valid)."""
    if not path.exists():
        rows: list[dict[str, object]] = []
        for k in range(keys):
            p = k % 50
            rows += [dict(type="invoke", process=p, f="write", value=k, key=k),
                     dict(type="ok", process=p, f="write", value=k, key=k),
                     dict(type="invoke", process=p, f="read", value=None, key=k),
                     dict(type="ok", process=p, f="read", value=k, key=k)]  # fmt: skip
        _write(path, rows)
    return path


def tiny_history(path: Path) -> Path:
    _write(path, [dict(type="invoke", process=0, f="write", value=1),
                  dict(type="ok", process=0, f="write", value=1)])  # fmt: skip
    return path


def run(args: list[str]) -> tuple[dict[str, object], float, float]:
    """``clew check --json ARGS``: (its record, wall seconds, peak RSS MiB)."""
    clew = str(Path(sys.executable).with_name("clew"))
    t0 = time.perf_counter()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(w, 1)
        os.close(r)
        os.execv(clew, [clew, "check", "--json", "--no-progress", *args])
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, _, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    line = [x for x in out.splitlines() if x.startswith("{")][-1]
    return json.loads(line), wall, ru.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/clew-budgets"))
    ap.add_argument("--only", default="pending,keys,hard")
    a = ap.parse_args()
    a.dir.mkdir(parents=True, exist_ok=True)
    only = set(a.only.split(","))
    rec, wall, base = run(["--model", "cas-register", str(tiny_history(a.dir / "tiny.jsonl"))])
    print(f"base: `clew check` of a two-op history: {wall:.2f} s, peak RSS {base:.0f} MiB")
    cases = []
    if "pending" in only:
        cases.append(("pending, --max-memory 300M", pending_history(a.dir / "pending.jsonl"),
                      ["--max-memory", "300M", "--time-limit", "600"], None, 300))  # fmt: skip
    if "keys" in only:
        cases.append(("200,000 keys, --time-limit 2", keys_history(a.dir / "keys.jsonl"),
                      ["--time-limit", "2"], 2.0, None))  # fmt: skip
    if "hard" in only:
        cases.append(("pending, --time-limit 30", pending_history(a.dir / "pending.jsonl"),
                      ["--time-limit", "30"], 30.0, None))  # fmt: skip
    for name, path, flags, limit, mem in cases:
        rec, wall, rss = run(["--model", "cas-register", *flags, str(path)])
        print(f"{name}: {rec.get('valid')} in {wall:.2f} s wall (checker {rec.get('seconds')} s), "
              f"peak RSS {rss:.0f} MiB ({rss - base:+.0f} MiB over the base)")  # fmt: skip
        print(f"    cause: {rec.get('cause')}")
        if limit is not None:
            ok = wall <= 1.1 * limit + 1
            print(f"    time limit {limit} s: wall {'within' if ok else 'OVER'} 10 % + 1 s"
                  " (wall includes start-up and reading the file)")  # fmt: skip
        if mem is not None:
            ok = rss - base <= mem
            print(f"    memory: {'within' if ok else 'OVER'} {mem} MiB + base")


if __name__ == "__main__":
    main()
