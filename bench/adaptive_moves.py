"""Which moves the adaptive agent made in the runs of a bench store, and how many of the
runs with each move came out invalid: why a campaign found its bug, or did not.

Reads every run directory under the given directories (a ``bench/bugs.py`` store, such as
``/tmp/clew-bugs-*/buffered-log/adaptive``): its verdict (``results.json``) and the moves
the agent chose (the ``chose ...`` of each intent's ``why`` in ``faults.jsonl``). Prints,
per move, the runs that made it at least once and how many of those were invalid, and
the same for the runs that never made it. With ``--within``, the same for each start move
made while another fault held (``start:clock@leader within partition@leader``): the pairs
a bug that needs one fault inside another (the lease bugs) is found by.

    .venv/bin/python bench/adaptive_moves.py /tmp/clew-bugs-*/buffered-log/adaptive
    .venv/bin/python bench/adaptive_moves.py --within /tmp/clew-bugs-*/lease-ticks/adaptive
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

CHOSE = re.compile(r"adaptive: state \[[^]]*?act=(\S+)\].*?; chose (\S+)")


def run_moves(run: Path, within: bool = False) -> tuple[bool | None, set[str]] | None:
    """The verdict of run directory ``run`` and the moves the adaptive agent made in it
    (with ``within``: its start moves made while another fault held, as ``X within Y``;
    ``None`` if it is not a finished run with a ledger)."""
    try:
        valid = json.loads((run / "results.json").read_text(encoding="utf-8")).get("valid")
        lines = (run / "faults.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        return None
    moves = set()
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        m = CHOSE.search(str(rec.get("why", ""))) if rec.get("event") == "intent" else None
        if not m:
            continue
        held, move = m.group(1), m.group(2)
        if not within:
            moves.add(move)
        elif move.startswith("start:"):
            moves.update(f"{move} within {h}" for h in held.split(",") if h != "-")
    return valid, moves


def main(argv: list[str] | None = None) -> int:
    """Print the table for the stores named on the command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stores", nargs="+", type=Path, help="directories holding run directories")
    ap.add_argument("--within", action="store_true",
                    help="count start moves made while another fault held, per pair")  # fmt: skip
    args = ap.parse_args(argv)
    seen: set[Path] = set()
    runs: list[tuple[bool | None, set[str]]] = []
    for store in args.stores:
        for results in sorted(store.glob("**/results.json")):
            run = results.parent.resolve()
            got = run_moves(run, args.within) if run not in seen else None
            seen.add(run)
            if got is not None:
                runs.append(got)
    if not runs:
        print("no run directories with results.json and faults.jsonl found", file=sys.stderr)
        return 2
    invalid = sum(1 for v, _ in runs if v is False)
    print(f"{len(runs)} runs, {invalid} invalid")
    with_move: Counter[str] = Counter()
    bad_with: Counter[str] = Counter()
    for valid, moves in runs:
        for m in moves:
            with_move[m] += 1
            bad_with[m] += valid is False
    print("| move | runs with it | invalid | share | runs without it | invalid | share |")
    print("|---|---|---|---|---|---|---|")
    for m in sorted(with_move):
        n, bad = with_move[m], bad_with[m]
        rest, rest_bad = len(runs) - n, invalid - bad
        print(f"| `{m}` | {n} | {bad} | {bad / n:.0%} | {rest} | {rest_bad} | "
              f"{rest_bad / rest if rest else 0:.0%} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
