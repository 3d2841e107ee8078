"""Whether the register keys in use when every node was killed were read again once the
nodes came back, and the verdicts: what decides if a lost write (bugkv's buffered-log)
can be seen at all.

Reads every run directory under the given stores (``LABEL=DIR``; runs of ``clew test
bugkv -w register``): its seed and verdict, and for a run whose ledger has a kill of every
node and its heal, the keys written (ok) in the second before the kill and which of them
were read (ok) after the heal. A key the register workload retired meanwhile is never
read again, so a write lost on it cannot show. Prints a row per run and, per label, the
kill-all runs, those whose keys were read again, and the invalid runs; ``--json`` writes
the rows.

The figure in docs/bugkv.md (*A key's budget*) came from the same seeds run at two
versions in turn, on one host, then::

    .venv/bin/python bench/kill_keys.py main=/tmp/iso/store-main fix=/tmp/iso/store-fix
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.errors import ClewError
from harness.formats import read_history
from nemeses.ledger import read_ledger

NS = 1_000_000_000


def kill_all_window(faults: list[dict[str, Any]]) -> tuple[int, int] | None:
    """(when the first kill of every node was applied, when the kill's heal after it was
    done), in ns since the run began; ``None`` without both."""
    start = next((f["time"] for f in faults if f.get("f") == "start-kill"
                  and f.get("event") == "applied"
                  and (f.get("value") or {}).get("targets") == "all"), None)  # fmt: skip
    if start is None:
        return None
    heal = next((f["time"] for f in faults if f.get("f") == "stop-kill"
                 and f.get("event") == "healed" and f["time"] > start), None)  # fmt: skip
    return None if heal is None else (start, heal)


def run_row(run: Path) -> dict[str, Any] | None:
    """One run's seed, verdict and, if it killed every node, the kill's length and the keys
    written just before it and read after its heal; ``None`` if it is not a finished run."""
    try:
        valid = json.loads((run / "results.json").read_text(encoding="utf-8")).get("valid")
        seed = json.loads((run / "spec.json").read_text(encoding="utf-8")).get("seed")
        faults = read_ledger(run / "faults.jsonl")
        history = read_history(str(run / "history.jsonl"), "jsonl")
    except (OSError, ValueError, ClewError):
        return None
    row: dict[str, Any] = {"run": run.name, "seed": seed, "valid": valid}
    window = kill_all_window(faults)
    if window is None:
        return row
    start, heal = window
    ok = [o for o in history if o.type == "ok"]
    before = [o for o in ok if start - NS < o.time < start]
    written = sorted({o.key for o in before if o.f == "write" and isinstance(o.key, int)})
    read = {o.key for o in ok if o.f == "read" and o.time > heal}
    row.update(kill_seconds=round((heal - start) / NS, 2), written_before=written,
               read_after=[k for k in written if k in read])  # fmt: skip
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Runs, invalid runs, and of the runs that killed every node (with writes in the
    second before): how many, how many had one of those keys read again, how many were
    invalid."""
    kills = [r for r in rows if r.get("written_before")]
    return {
        "runs": len(rows),
        "invalid": sum(r["valid"] is False for r in rows),
        "kill_all_runs": len(kills),
        "keys_read_again": sum(bool(r["read_after"]) for r in kills),
        "kill_all_invalid": sum(r["valid"] is False for r in kills),
    }


def main(argv: list[str] | None = None) -> int:
    """Print the rows and the summary per label; ``--json`` also writes them."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stores", nargs="+", metavar="LABEL=DIR")
    ap.add_argument("--json", type=Path, help="write the rows and summaries here")
    args = ap.parse_args(argv)
    out: dict[str, Any] = {}
    for spec in args.stores:
        label, sep, directory = spec.partition("=")
        if not sep:
            ap.error(f"{spec!r}: give LABEL=DIR")
        runs = sorted(p.parent for p in Path(directory).glob("**/results.json")
                      if p.parent.name != "latest")  # fmt: skip
        rows = [r for r in map(run_row, runs) if r is not None]
        for r in rows:
            kill = (
                f"kill {r['kill_seconds']} s, keys {r['written_before']} read again "
                f"{r['read_after']}"
                if "kill_seconds" in r
                else "no kill of every node"
            )
            print(f"{label:6} {r['run']} seed {r['seed']}: valid={r['valid']}; {kill}")
        out[label] = {"summary": summary(rows), "rows": rows}
    for label, data in out.items():
        s = data["summary"]
        print(f"{label}: {s['invalid']} of {s['runs']} runs invalid; of {s['kill_all_runs']} "
              f"that killed every node, keys read again in {s['keys_read_again']}, "
              f"invalid {s['kill_all_invalid']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
