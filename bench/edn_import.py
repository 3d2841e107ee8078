"""How fast does clew load a big Jepsen ``history.edn``?

Writes a realistic history (default 1,000,000 ops: a CAS register driven by 10 workers,
reads/writes/cas with ``:ok``/``:fail``/``:info`` completions, crashed processes renumbered,
``:time`` in ns, ``:index``, ``:node`` on client ops, ``:error`` on failures, a nemesis that
partitions the network now and then) into a temporary directory, loads it with
:func:`harness.formats.read_history`, and prints the load time, lines/s and peak RSS.

Target (issue 17): a 1,000,000-op ``history.edn`` loads in at most 8 s on a 2-core machine.
On a shared machine the wall time is mostly waiting for a CPU: the CPU time and the load
average are printed next to it.

Usage::

    .venv/bin/python bench/edn_import.py [--ops N] [--keep DIR] [--profile]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator

# Runnable from a checkout without installing clew.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness.formats import read_history

NODES = ("n1", "n2", "n3", "n4", "n5")
#: Issue 17's target for a million ops.
TARGET_SECONDS = 8.0
WORKERS = 10


def _ops(n: int, seed: int) -> Iterator[str]:
    """``n`` EDN op lines of a plausible Jepsen register test, in history order."""
    rnd = random.Random(seed)
    t = 3_291_485_317
    process = list(range(WORKERS))  # current process of each worker
    pending: dict[int, tuple[str, str]] = {}  # worker -> (f, value text) of its open op
    index = 0
    nemesis_open = False
    while index < n:
        t += rnd.randrange(20_000, 400_000)
        if rnd.random() < 0.0005 and n - index >= 2 and not pending.get(-1):
            # Nemesis: start or stop a partition (invoke and info completion).
            if nemesis_open:
                f, value = ":stop", ":network-healed"
            else:
                a, b = rnd.sample(NODES, 2)
                f = ":start"
                value = f'[:isolated {{"{a}" #{{"{b}"}}, "{b}" #{{"{a}"}}}}]'
            nemesis_open = not nemesis_open
            for typ, v in ((":invoke", "nil"), (":info", value)):
                yield (
                    f"{{:index {index}, :time {t}, :type {typ}, :process :nemesis, "
                    f":f {f}, :value {v}}}"
                )
                index += 1
                t += rnd.randrange(1_000_000, 5_000_000)
            continue
        w = rnd.randrange(WORKERS)
        p = process[w]
        node = NODES[p % len(NODES)]
        if w not in pending:
            r = rnd.random()
            if r < 0.5:
                f, v = ":read", "nil"
            elif r < 0.75:
                f, v = ":write", str(rnd.randrange(5))
            else:
                f, v = ":cas", f"[{rnd.randrange(5)} {rnd.randrange(5)}]"
            pending[w] = (f, v)
            yield (
                f"{{:index {index}, :time {t}, :type :invoke, :process {p}, :f {f}, "
                f':value {v}, :node "{node}"}}'
            )
        else:
            f, v = pending.pop(w)
            r = rnd.random()
            extra = ""
            if r < 0.05:
                typ = ":info"
                extra = ', :error [:socket-timeout "Read timed out, after 5000 ms"]'
                process[w] = p + WORKERS  # a crashed process is never reused
            elif f == ":cas" and r < 0.45:
                typ = ":fail"
                extra = ", :error :cas-mismatch"
            else:
                typ = ":ok"
                if f == ":read":
                    v = rnd.choice(("nil", "0", "1", "2", "3", "4"))
            yield (
                f"{{:index {index}, :time {t}, :type {typ}, :process {p}, :f {f}, "
                f':value {v}, :node "{node}"{extra}}}'
            )
        index += 1


def write_history(path: str, n: int, seed: int = 7) -> None:
    """Write an ``n``-op EDN history to ``path``."""
    with open(path, "w", encoding="utf-8") as out:
        batch: list[str] = []
        for line in _ops(n, seed):
            batch.append(line)
            if len(batch) >= 10_000:
                out.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            out.write("\n".join(batch) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Generate, load, report. Returns 0 if the load met the 8 s target, else 1."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ops", type=int, default=1_000_000, help="ops to generate")
    ap.add_argument("--keep", metavar="DIR", help="write the history here and keep it")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the load")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or tmp
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "history.edn")
        t0 = time.perf_counter()
        write_history(path, args.ops)
        size = os.path.getsize(path)
        print(
            f"generated {args.ops:,} ops ({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s"
            f" -> {path}"
        )
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        c0 = time.process_time()
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            history = prof.runcall(read_history, path, "edn")
            pstats.Stats(prof).sort_stats("cumulative").print_stats(20)
        else:
            history = read_history(path, "edn")
        dt = time.perf_counter() - t0
        cpu = time.process_time() - c0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        counts = history.counts()
        print(
            f"read_history: {len(history):,} ops in {dt:.2f} s "
            f"({len(history) / dt:,.0f} lines/s; CPU {cpu:.2f} s; load "
            f"{os.getloadavg()[0]:.1f}); types {counts}"
        )
        print(f"peak RSS {peak:.0f} MiB (before loading: {rss_before:.0f} MiB)")
        ok = dt <= TARGET_SECONDS or args.ops != 1_000_000
        print(f"target (1M ops <= {TARGET_SECONDS:g} s wall):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
