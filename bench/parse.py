"""How fast does clew read a history file? (issue 17: a 1M-op JSONL history in ≤ 3 s)

Generates, once, cas-register histories of 10k, 100k and 1M ops (an op is one client
operation: an invocation and its completion, two lines; ``bench/lin_histories.py``, 20
clients, 100 keys) and the 1M-transaction list-append history of ``bench/txn.py``, all as
JSONL, then reads each with :func:`harness.formats.read_history` in a fresh process and
prints the read time (wall and CPU), the peak RSS and the peak RSS of the same process
before reading (its base: interpreter and imports).

    .venv/bin/python bench/parse.py [--dir /tmp/clew-parse] [--only 10k,100k,1M,txn1M]
        [--repeat 3]

The machine's load average is printed with each row: on a shared machine, wall time is
mostly waiting for a CPU, and CPU time is the figure to compare between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The peak is VmHWM (ru_maxrss would keep the parent's peak across exec).
_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[2])
from harness.formats import read_history
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
base = hwm()
w, c = time.perf_counter(), time.process_time()
h = read_history(sys.argv[1])
w, c = time.perf_counter() - w, time.process_time() - c
print(json.dumps({"lines": len(h), "wall": w, "cpu": c, "base": base, "peak": hwm()}))
"""


def _lin(path: Path, ops: int) -> Path:
    if not path.exists():
        from bench.lin_histories import Shape, write_history

        write_history(Shape(ops=ops, clients=20, keys=100), path)
    return path


def _txn(path: Path, txns: int) -> Path:
    if not path.exists():
        from bench.txn import generate
        from harness.formats import write_history

        write_history(generate(txns), str(path), "jsonl")
    return path


def read_once(path: Path) -> dict[str, float]:
    """Read ``path`` in a fresh process; its figures."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/clew-parse"))
    ap.add_argument("--only", default="10k,100k,1M,txn1M")
    ap.add_argument("--repeat", type=int, default=1, help="reads per file (the best is shown)")
    a = ap.parse_args()
    a.dir.mkdir(parents=True, exist_ok=True)
    files = {
        "10k": lambda: _lin(a.dir / "lin-10k.jsonl", 10_000),
        "100k": lambda: _lin(a.dir / "lin-100k.jsonl", 100_000),
        "1M": lambda: _lin(a.dir / "lin-1M.jsonl", 1_000_000),
        "txn1M": lambda: _txn(a.dir / "txn-1M.jsonl", 1_000_000),
    }
    for name in a.only.split(","):
        t = time.perf_counter()
        path = files[name]()
        made = time.perf_counter() - t
        if made > 1:
            print(f"  (generated {path} in {made:.0f} s)", flush=True)
        runs = [read_once(path) for _ in range(a.repeat)]
        best = min(runs, key=lambda r: r["wall"])
        mib = path.stat().st_size / 2**20
        load = os.getloadavg()[0]
        print(f"{name:>6}: {path.name} ({mib:,.0f} MiB, {best['lines']:,} lines): read in "
              f"{best['wall']:.2f} s wall, {best['cpu']:.2f} s CPU; peak RSS "
              f"{best['peak']:,.0f} MiB (base {best['base']:,.0f} MiB); load {load:.1f}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
