"""The LDFI loop on bugkv until a run is invalid or the hypotheses are exhausted (root; its
own local cluster, 10.77.194.0/24).

Runs ``--scheduler ldfi`` again and again (register workload, kill/partition/pause, 8 s
runs, ``--interval 1``; ``k = 2``), its memory reset first, and prints each run's verdict,
the hypotheses it struck and the lessons, then the exhausted statement or the invalid run,
with the runs and seconds it took.

    sudo .venv/bin/python bench/ldfi.py                 # no bug: ends exhausted
    sudo .venv/bin/python bench/ldfi.py --bug buffered-log
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clusters import ClusterSpec, get_provider
from harness.dbs.bugkv_bugs import NODES
from harness.record import read_fault_records
from harness.runner import run_test
from harness.spec import load_spec
from nemeses.schedulers import memory

CLUSTER = {"subnet": "10.77.194.0/24", "prefix": "hsl-", "bridge": "hsl-br0"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bug", default=None, help="a seeded bug (default: none)")
    p.add_argument("--max-runs", type=int, default=14)
    p.add_argument("--time-limit", type=float, default=8.0)
    args = p.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="clew-ldfi-"))
    state = base / "cluster"
    provider = get_provider("local")
    provider.up(ClusterSpec(nodes=len(NODES), name="ldfi", state_dir=str(state), options=CLUSTER))
    store = base / "store"
    memory.reset(memory.memory_path("ldfi", store, "bugkv"))
    t0 = time.monotonic()
    try:
        for i in range(args.max_runs):
            spec = load_spec(
                suite="bugkv", workload="register", nodes=len(NODES),
                time_limit=args.time_limit, faults="partition,pause,kill", interval=1.0,
                scheduler="ldfi", seed=200 + i, store=str(store), cluster_state_dir=str(state),
                cluster_options=CLUSTER, options={"bug": args.bug} if args.bug else {},
                recovery_time=1.0,
            )  # fmt: skip
            t = time.monotonic()
            out = run_test(spec)
            recs = [r for r in read_fault_records(out.run_dir) if r.get("event") == "scheduler"]
            r = recs[-1] if recs else {}
            took = time.monotonic() - t
            struck = [(h.get("class"), h.get("hypothesis"), h.get("truncated"))
                      for h in r.get("hypotheses", [])]  # fmt: skip
            print(f"{i + 1} valid={out.valid} {took:.1f} s hypotheses {struck}; "
                  f"notes {r.get('notes')}", flush=True)  # fmt: skip
            if out.valid is False:
                print(f"found: run {i + 1} is invalid ({out.run_dir})")
                break
            if r.get("exhausted"):
                print(r["exhausted"])
                break
        print(f"{i + 1} runs, {time.monotonic() - t0:.1f} s")
    finally:
        provider.down(state)
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench/ldfi.py needs root (a local namespace cluster)")
    sys.exit(main())
