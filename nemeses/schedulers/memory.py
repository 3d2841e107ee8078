"""Where learning schedulers keep what they learned: one JSON file per (scheduler, suite)
in the store, read at the start of a run and written at its end.

A campaign keeps its runs in ``<store>/campaigns/<test>/<stamp>/runs``; the memory lives
in the **root** store (``<store>/schedulers/<name>-<suite>.json``), so that it carries
across runs and campaigns of the same suite. :func:`reset` forgets it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import ClewError, InputError
from harness.record import read_fault_records

__all__ = ["absolute", "find_episode_run", "load", "memory_path", "reset", "save", "store_root"]


def store_root(store: str | Path) -> Path:
    """The store a run's ``store`` belongs to: a campaign's ``.../campaigns/<test>/<stamp>/
    runs`` maps to the store above ``campaigns``; any other store is its own root."""
    p = Path(store or "store")
    parts = p.parts
    if len(parts) >= 4 and parts[-1] == "runs" and parts[-4] == "campaigns":
        return Path(*parts[:-4]) if len(parts) > 4 else Path(".")
    return p


def absolute(store: str | Path) -> str:
    """``store`` as an absolute path (``""`` stays ``""``): what a pending episode records,
    so that a run started from another directory still finds it."""
    return str(Path(store).resolve()) if store else ""


def memory_path(name: str, store: str | Path, suite: str) -> Path:
    """The memory file of scheduler ``name`` for ``suite`` under ``store``'s root."""
    return store_root(store) / "schedulers" / f"{name}-{suite or 'default'}.json"


def load(path: Path) -> dict[str, Any]:
    """The memory at ``path`` (``{}`` when there is none yet); :class:`InputError` naming
    the file when it is not a JSON object."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise InputError(f"{path}: cannot read the scheduler's memory: {e.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InputError(f"{path}:{e.lineno if hasattr(e, 'lineno') else 1}: not JSON: {e} "
                         f"(delete it to reset the scheduler's memory)") from None  # fmt: skip
    except RecursionError:
        raise InputError(f"{path}:1: not JSON clew reads: nested too deeply (delete it to "
                         f"reset the scheduler's memory)") from None  # fmt: skip
    if not isinstance(data, dict):
        raise InputError(f"{path}:1: not a JSON object (delete it to reset the memory)")
    return data


def save(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (a crash leaves the old memory or the new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def reset(path: Path) -> bool:
    """Forget the memory at ``path``; whether there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def find_episode_run(stores: Sequence[str | Path], episode: str, *,
                     newest: int = 50) -> Path | None:  # fmt: skip
    """The run directory whose ledger's ``scheduler`` record names ``episode``: looked for
    among the ``newest`` runs of each store in ``stores``, in order (empty ones skipped).
    A learning scheduler records its run's store with its pending episode and looks there
    first: a campaign's runs live in a store of their own, so the next campaign's first run
    would not find the last campaign's run in its own."""
    for store in dict.fromkeys(str(s) for s in stores if s):
        runs = sorted(Path(store).glob("*/*/faults.jsonl"), key=lambda p: p.stat().st_mtime,
                      reverse=True)[:newest]  # fmt: skip
        for path in runs:
            try:
                records = read_fault_records(path.parent)
            except ClewError:
                continue
            if any(r.get("event") == "scheduler" and r.get("episode") == episode
                   for r in records):  # fmt: skip
                return path.parent
    return None
