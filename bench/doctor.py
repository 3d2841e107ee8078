"""Benchmark of `clew doctor`'s checks on this machine: how long ``run_checks`` takes.

Runs every check (binaries, namespaces, the kernel probes in throwaway namespaces)
--repeat times and prints each time and the median. Root gives the real probes.

    sudo .venv/bin/python bench/doctor.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from clusters import doctor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        caps = doctor.run_checks()
        times.append(time.perf_counter() - t)
    print(f"doctor.run_checks(): {len(caps)} checks")
    print("  " + ", ".join(f"{x:.2f} s" for x in times))
    print(f"  median {statistics.median(times):.2f} s, max {max(times):.2f} s")


if __name__ == "__main__":
    main()
