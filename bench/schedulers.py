"""Runs to first detection of the learning schedulers against ``random``: ``bench/bugs.py``
with ``--schedulers random,ldfi,adaptive`` by default (one tool; see its docstring for the
flags, the statistics and the results rows). Arguments given here override the defaults.

    sudo nice .venv/bin/python bench/schedulers.py --bugs buffered-log --campaigns 20 --workers 2
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bugs  # bench/bugs.py, beside this file

DEFAULTS = ["--schedulers", "random,ldfi,adaptive", "--bugs", "buffered-log"]

if __name__ == "__main__":
    sys.exit(bugs.main([*DEFAULTS, *sys.argv[1:]]))
