"""Linearizability checker over generated histories shaped like real ones (issue 17).

For every cell of the grid ops x clients x keys x {valid, one stale read} (histories from
:mod:`bench.lin_histories`, cached in --dir), runs one fresh process per checker and
prints the verdict, the checker time (clew: parsed history to verdict, that is lowering,
laying out by key and search; Porcupine: its ``CheckEventsTimeout``), the parse time, the
whole process's wall time (start-up, imports, reading the JSONL file, checking) and its
peak RSS, with --time-limit per cell. Porcupine is run when its companion program is
given (--porcupine PATH or $CLEW_PORCUPINE, else ``build/porcupine_companion`` if built):
``bench/porcupine_companion/main.go``, a small Go program built from Porcupine's source
(its README says how), that reads the same JSONL files and checks them with Porcupine's
etcd model partitioned by key.

    .venv/bin/python bench/linear_grid.py [--ops 1000,10000,100000,1000000]
        [--clients 5,20,100] [--keys 1,100] [--variants valid,stale] [--time-limit 60]
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lin_histories import Shape, cached_history  # noqa: E402

#: The companion program, if built: --porcupine PATH, else $CLEW_PORCUPINE, else the
#: build directory's.
DEFAULT_PORCUPINE = os.environ.get("CLEW_PORCUPINE") or str(ROOT / "build/porcupine_companion")

# Run in a fresh interpreter: times every phase of one check, as `clew check` runs them.
_DRIVER = """
import json, sys, time
t0 = time.perf_counter()
from checkers.linear import check
from harness.formats import read_history
import checkers.linear.kernel
checkers.linear.kernel.load_kernels()  # start-up, as Porcupine's program start is not timed
t1 = time.perf_counter()
h = read_history(sys.argv[1])
t2 = time.perf_counter()
r = check(h, "etcd", time_limit=float(sys.argv[2]), counterexample=False, started=t1)
t3 = time.perf_counter()
print(json.dumps(dict(valid=r.valid, seconds=r.seconds, checker=t3 - t2, parse=t2 - t1,
                      imports=t1 - t0, cause=r.cause, steps=r.details.get("steps"),
                      phases=r.details.get("phases"))))
"""


def _measured(cmd: list[str], limit: float) -> tuple[dict[str, Any] | None, float, float, str]:
    """Run ``cmd`` for at most ``limit`` seconds; return (its last JSON line, wall seconds,
    its own peak RSS in MiB, what went wrong)."""
    t0 = time.perf_counter()
    r, w = os.pipe()
    e = os.open(os.devnull, os.O_WRONLY)
    pid = os.fork()
    if pid == 0:  # child
        os.chdir(ROOT)
        os.dup2(w, 1)
        os.dup2(e, 2)
        os.close(r)
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    os.close(w)
    os.close(e)
    chunks: list[bytes] = []
    deadline = t0 + limit
    killed = False
    sel = selectors.DefaultSelector()
    sel.register(r, selectors.EVENT_READ)
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            os.kill(pid, 9)
            killed = True
            break
        if sel.select(timeout=min(left, 1.0)):
            data = os.read(r, 65536)
            if not data:
                break
            chunks.append(data)
    sel.close()
    os.close(r)
    _, _, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    rss = ru.ru_maxrss / 1024
    if killed:
        return None, wall, rss, f"killed at the wall limit of {limit:.0f} s"
    lines = [x for x in b"".join(chunks).decode().splitlines() if x.startswith("{")]
    if not lines:
        return None, wall, rss, "no output"
    return json.loads(lines[-1]), wall, rss, ""


def _verdict(v: Any) -> str:
    return {True: "valid", False: "INVALID"}.get(v, "unknown") if v is not None else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", default="1000,10000,100000,1000000")
    ap.add_argument("--clients", default="5,20,100")
    ap.add_argument("--keys", default="1,100")
    ap.add_argument("--variants", default="valid,stale")
    ap.add_argument("--info", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per cell")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/clew-lin-histories"))
    ap.add_argument(
        "--porcupine",
        type=Path,
        default=DEFAULT_PORCUPINE,
        help="the Porcupine companion program (default: $CLEW_PORCUPINE)",
    )
    ap.add_argument("--no-porcupine", action="store_true")
    ap.add_argument("--no-clew", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument(
        "--table",
        type=Path,
        default=None,
        help="print a --json file's rows as a Markdown table (clew beside Porcupine) and exit",
    )
    a = ap.parse_args()
    if a.table:
        print_table(json.loads(a.table.read_text()))
        return
    porcupine = a.porcupine
    if a.no_porcupine or porcupine is None or not porcupine.exists():
        porcupine = None
    rows = []
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{'ops':>8} {'cl':>4} {'keys':>4} {'variant':<6} | {'checker':<9} {'verdict':<8} "
          f"{'check s':>8} {'parse s':>8} {'process s':>9} {'RSS MiB':>8}")  # fmt: skip
    for n in [int(x) for x in a.ops.split(",")]:
        for c in [int(x) for x in a.clients.split(",")]:
            for k in [int(x) for x in a.keys.split(",")]:
                for variant in a.variants.split(","):
                    shape = Shape(n, c, k, a.info, variant == "stale", a.seed)
                    path = cached_history(shape, a.dir)
                    wall_limit = 2 * a.time_limit + 60
                    runs = []
                    if not a.no_clew:
                        cmd = [sys.executable, "-c", _DRIVER, str(path), str(a.time_limit)]
                        runs.append(("clew", *_measured(cmd, wall_limit)))
                    if porcupine is not None:
                        cmd = [str(porcupine), "-timeout", str(a.time_limit), str(path)]
                        runs.append(("porcupine", *_measured(cmd, wall_limit)))
                    for name, out, wall, rss, err in runs:
                        v = _verdict(out.get("valid") if out else None)
                        took = out.get("checker", out.get("seconds")) if out else None
                        secs = f"{took:8.3f}" if took is not None else f"{'-':>8}"
                        p = out.get("parse", out.get("parse_seconds")) if out else None
                        parse = f"{p:8.3f}" if p is not None else f"{'-':>8}"
                        print(f"{n:>8} {c:>4} {k:>4} {variant:<6} | {name:<9} {v:<8} {secs} "
                              f"{parse} {wall:9.2f} {rss:8.0f}" + (f"  {err}" if err else ""),
                              flush=True)  # fmt: skip
                        rows.append(dict(ops=n, clients=c, keys=k, variant=variant,
                                         checker=name, out=out, wall=wall, rss_mib=rss,
                                         error=err, load_1min=os.getloadavg()[0]))  # fmt: skip
    if a.json:
        meta = dict(commit=_commit(), started=started, ended=time.strftime("%Y-%m-%dT%H:%M:%S"),
                    time_limit=a.time_limit, info=a.info, seed=a.seed,
                    porcupine=porcupine.name if porcupine else None)  # fmt: skip
        a.json.write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))


def print_table(data: dict[str, Any] | list[dict[str, Any]]) -> None:
    """Print the grid's rows as a Markdown table, one line per cell: each checker's
    verdict, checker seconds, whole-process seconds and peak RSS, and Porcupine's checker
    time over clew's where both answered (how many times faster clew is)."""
    rows = data["rows"] if isinstance(data, dict) else data
    cells: dict[tuple[int, int, int, str], dict[str, dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["ops"], r["clients"], r["keys"], r["variant"]), {})[r["checker"]] = r

    def part(r: dict[str, Any] | None) -> tuple[str, float | None]:
        if r is None:
            return "–", None
        out = r.get("out") or {}
        v = _verdict(out.get("valid") if out else None)
        took = out.get("checker", out.get("seconds"))
        if took is None:
            return f"{v} ({r.get('error') or 'no output'})", None
        answered = v in ("valid", "INVALID")
        text = f"{v} {took:.3f} s / {r['wall']:.2f} s, {r['rss_mib']:.0f} MiB"
        return text, took if answered else None

    print("| ops | clients | keys | variant | clew: verdict, checker / process, RSS "
          "| Porcupine: the same | Porcupine ÷ clew |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for (n, c, k, variant), by in sorted(cells.items()):
        clew, ct = part(by.get("clew"))
        porc, pt = part(by.get("porcupine"))
        ratio = f"{pt / ct:.1f}×" if ct and pt else "–"
        print(f"| {n:,} | {c} | {k} | {variant} | {clew} | {porc} | {ratio} |")


def _commit() -> str:
    """The checkout's commit (:func:`harness.campaign.clew_commit`, with ``+dirty`` when
    tracked files have changes), or ``unknown``."""
    import subprocess

    from harness.campaign import clew_commit

    head = clew_commit()
    if head is None:
        return "unknown"
    status = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "-uno"],
                            capture_output=True, text=True)  # fmt: skip
    return head + ("+dirty" if status.stdout.strip() else "")


if __name__ == "__main__":
    main()
