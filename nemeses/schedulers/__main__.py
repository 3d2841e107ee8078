"""``python -m nemeses.schedulers reset|show adaptive|ldfi --store S --suite X``: forget, or
show, what a learning scheduler learned for a suite (its memory file in the store's root).

``show adaptive`` prints the runs judged and, per fault move, the runs that made it, how many
came out invalid and its lift (what tilts the agent's choices: see docs/schedulers.md);
``show ldfi`` the outcome classes, the timings measured, the hypotheses tried and whether
the last search found a bug."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.errors import ClewError
from nemeses.schedulers import memory


def describe_adaptive(data: dict[str, Any]) -> list[str]:
    """Lines describing an adaptive memory: runs, anomalies, each move's evidence."""
    from nemeses.schedulers.adaptive import Learner

    learner = Learner(data)
    out = [f"runs {learner.runs}, judged {learner.judged}, invalid {learner.anomalies}, "
           f"states known {len(learner.visits)}"]  # fmt: skip
    if not learner.moves:
        return [*out, "no fault move judged yet"]
    out.append(f"{'move':28s} {'runs':>5s} {'invalid':>8s} {'lift':>6s}")
    ranked = sorted(learner.moves, key=lambda m: (-(learner.lift(m) or 1.0), m))
    for move in ranked:
        runs, invalid = learner.moves[move]
        lift = learner.lift(move)
        out.append(f"{move:28s} {runs:5d} {invalid:8d} "
                   f"{'-' if lift is None else f'{lift:.2f}':>6s}")  # fmt: skip
    return out


def describe_ldfi(data: dict[str, Any]) -> list[str]:
    """Lines describing an ldfi memory: classes, timings, hypotheses tried, the outcome."""
    from nemeses.schedulers.ldfi import LdfiState

    state = LdfiState(data)
    timing = ", ".join(f"{k} {v:g} s" for k, v in sorted(state.timing.items())) or "none"
    return [
        f"runs {state.runs}; classes {', '.join(sorted(state.classes)) or 'none'}",
        f"timings measured: {timing}",
        f"hypotheses tried in this search: {len(state.tried)}",
        f"last search: {state.found or 'no bug found yet'}",
    ]


def main(argv: list[str] | None = None) -> int:
    """Reset or show a learning scheduler's memory; 0 (also when there was none), 254
    when the memory file cannot be read."""
    p = argparse.ArgumentParser(prog="python -m nemeses.schedulers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["reset", "show"])
    p.add_argument("scheduler", choices=["adaptive", "ldfi"])
    p.add_argument("--store", default="store", type=Path)
    p.add_argument("--suite", required=True)
    a = p.parse_args(argv)
    path = memory.memory_path(a.scheduler, a.store, a.suite)
    if a.command == "reset":
        print(f"{path}: {'forgotten' if memory.reset(path) else 'no memory to forget'}")
        return 0
    try:
        data = memory.load(path)
    except ClewError as e:
        print(f"error: {e}", file=sys.stderr)
        return 254
    if not data:
        print(f"{path}: no memory yet")
        return 0
    describe = describe_adaptive if a.scheduler == "adaptive" else describe_ldfi
    print(f"{path}:")
    for line in describe(data):
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
