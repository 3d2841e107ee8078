"""Benchmark of the linearizability checker over Porcupine's test histories.

Prints, for every row of EXPECTED.csv: the verdict and the checker time (parsed history to
verdict, warm JIT cache, best of --repeat runs), then totals per model, the cold compile
time (a fresh Numba cache in a subprocess), a whole-process ``clew check`` of the etcd
files, and the peak memory of this process.

    .venv/bin/python bench/linearizability.py [--data DIR] [--repeat 3] [--per-file]
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "tests" / "data" / "porcupine"


def _cold_compile_seconds() -> tuple[float, float]:
    """(cold, warm) seconds for import + first check, in fresh subprocesses."""
    code = (
        "import time; t=time.perf_counter();"
        "from checkers.linear import check; from harness.history import History;"
        "h=History.from_ops([dict(process=0,type='invoke',f='write',value=1),"
        "dict(process=0,type='ok',f='write',value=1)]);"
        "check(h,'cas-register'); print(time.perf_counter()-t)"
    )
    cache = tempfile.mkdtemp(prefix="clew-numba-")
    try:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        run = [sys.executable, "-c", code]
        cold, warm = (
            float(subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout)
            for _ in range(2)
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return cold, warm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--per-file", action="store_true", help="print every file's time")
    args = ap.parse_args()

    from checkers.linear import check
    from harness.formats import read_history

    rows = list(csv.DictReader((args.data / "EXPECTED.csv").read_text().splitlines()))
    histories = {r["file"]: read_history(str(args.data / r["file"])) for r in rows}
    # Warm the JIT (load compiled kernels from the cache) before timing.
    check(histories[rows[0]["file"]], "etcd", counterexample=False)

    totals: dict[str, float] = {}
    slow: list[tuple[float, str, str]] = []
    mismatches = 0
    for r in rows:
        model = "kv" if r["model"].startswith("kv") else r["model"]
        partition = r["model"] != "kv-nopartition"
        best = float("inf")
        for _ in range(args.repeat):
            res = check(histories[r["file"]], model, partition=partition, counterexample=False)
            best = min(best, res.seconds)
        ok = res.valid == (r["expected"] == "true")
        mismatches += not ok
        totals[r["model"]] = totals.get(r["model"], 0.0) + best
        slow.append((best, r["file"], r["model"]))
        if args.per_file:
            print(f"{r['model']:<15} {r['file']:<24} {res.valid!s:<6} {best * 1e3:9.3f} ms"
                  + ("" if ok else "  MISMATCH"))  # fmt: skip

    print(f"verdicts: {len(rows) - mismatches}/{len(rows)} match EXPECTED.csv")
    print("checker time (parsed history to verdict, warm JIT, best of "
          f"{args.repeat} per file):")  # fmt: skip
    for model, t in totals.items():
        n = sum(1 for r in rows if r["model"] == model)
        print(f"  {model:<15} {n:4d} files  {t * 1e3:9.1f} ms")
    print("  slowest:", ", ".join(f"{f} ({m}) {t * 1e3:.1f} ms" for t, f, m in sorted(slow)[-5:]))
    for name in ("kv/c50-ok.txt", "kv/c50-bad.txt"):
        t = min(s[0] for s in slow if s[1] == name and s[2] == "kv")
        print(f"  {name:<15} {t * 1e3:9.1f} ms")

    cold, warm = _cold_compile_seconds()
    print(f"JIT: import + first check with an empty cache {cold:.2f} s; "
          f"with the cache {warm:.2f} s")  # fmt: skip

    clew = Path(sys.executable).with_name("clew")
    etcd = [str(args.data / r["file"]) for r in rows if r["model"] == "etcd"]
    cmd = [str(clew), "check", "--model", "etcd", "--no-progress", *etcd]
    subprocess.run(cmd, capture_output=True)  # warm the cache
    walls = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True)
        walls.append(time.perf_counter() - t0)
    print(f"`clew check` of the {len(etcd)} etcd files, one whole process, warm cache: "
          f"{min(walls):.2f} s (best of {args.repeat})")  # fmt: skip

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this benchmark process: {peak:.0f} MiB")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
