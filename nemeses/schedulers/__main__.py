"""``python -m nemeses.schedulers reset adaptive|ldfi --store S --suite X``: forget what a
learning scheduler learned for a suite (its memory file in the store's root)."""

from __future__ import annotations

import argparse
import sys

from nemeses.schedulers import memory


def main(argv: list[str] | None = None) -> int:
    """Reset a learning scheduler's memory; 0 (also when there was none)."""
    p = argparse.ArgumentParser(prog="python -m nemeses.schedulers", description=__doc__)
    p.add_argument("command", choices=["reset"])
    p.add_argument("scheduler", choices=["adaptive", "ldfi"])
    p.add_argument("--store", default="store")
    p.add_argument("--suite", required=True)
    a = p.parse_args(argv)
    path = memory.memory_path(a.scheduler, a.store, a.suite)
    print(f"{path}: {'forgotten' if memory.reset(path) else 'no memory to forget'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
