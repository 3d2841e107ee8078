"""Differential run of the transactional checker against the brute-force oracle.

Generates small random list-append and rw-register histories (seeded; real serial runs,
then perturbed reads and outcomes: :func:`checkers.txn.oracle.random_history`), checks each
at serializable and at strict-serializable with :func:`checkers.txn.check` and with
:func:`checkers.txn.oracle.serializable`, and prints counts by outcome. A disagreement is
the checker saying valid or invalid where the oracle says otherwise, or unknown for any
cause but the documented one ("version order ambiguous"); each is printed.

    .venv/bin/python bench/txn_oracle.py              # 50,000 histories
    .venv/bin/python bench/txn_oracle.py -n 2000 --seed 7
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checkers.txn import check
from checkers.txn.oracle import random_history, serializable
from harness.history import History

AMBIGUOUS = "version order ambiguous"
LEVELS = ("serializable", "strict-serializable")
MODELS = ("list-append", "rw-register")


def compare(ops: list[dict[str, Any]], model: str, level: str) -> tuple[str, str | None]:
    """``(outcome, problem)``: outcome like ``valid/valid``; problem set on disagreement."""
    want = serializable(ops, model, strict=level == "strict-serializable")
    r = check(History.from_ops(ops), model, level)
    got = "valid" if r.valid is True else "invalid" if r.valid is False else "unknown"
    outcome = f"oracle {'valid' if want else 'invalid'} / checker {got}"
    if got == "unknown":
        ok = AMBIGUOUS in (r.cause or "")
    else:
        ok = (got == "valid") == want
    return outcome, None if ok else f"{outcome}: {r.cause}"


def run(n: int, seed: int, show: int = 5) -> tuple[Counter[str], list[str]]:
    """Check ``n`` histories (alternating models and levels); counts and disagreements."""
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    problems: list[str] = []
    unknowns: list[str] = []
    for i in range(n):
        model = MODELS[i % 2]
        level = LEVELS[(i // 2) % 2]
        ops = random_history(rng, model)
        outcome, problem = compare(ops, model, level)
        counts[f"{model:<12} {level:<20} {outcome}"] += 1
        if problem:
            problems.append(f"#{i} {model} {level} {problem}\n  {ops}")
        elif "unknown" in outcome and len(unknowns) < show:
            unknowns.append(f"#{i} {model} {level} {outcome}\n  {ops}")
    for u in unknowns:
        print("unknown (the documented limitation):", u)
    return counts, problems


def main() -> None:
    """Run, print counts and disagreements; exit 1 on any disagreement."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--histories", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t = time.perf_counter()
    counts, problems = run(args.histories, args.seed)
    secs = time.perf_counter() - t
    for k, v in sorted(counts.items()):
        print(f"{v:>8,}  {k}")
    print(f"{args.histories:,} histories (seed {args.seed}) in {secs:.1f} s; "
          f"{len(problems)} disagreements")  # fmt: skip
    for p in problems[:10]:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
