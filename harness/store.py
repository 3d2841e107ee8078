"""The store: one directory per run, and the journal that records a history as it happens.

Layout (under ``--store``, default ``./store``)::

    store/<test>/<YYYYmmddTHHMMSS>/
        spec.json        the resolved test spec (with the seed)
        versions.json    clew, Python and database versions
        history.jsonl    the journal: every op, appended and flushed as it happens
        faults.jsonl     what the nemesis did, when (if it ran)
        results.json     the checkers' verdicts; top-level "valid"
        clew.log         the controller's log
        nodes/<name>/    logs downloaded from each node
        report.html      the report
    store/<test>/latest -> the newest run of that test
    store/latest        -> the newest run of any test

A crash of the controller leaves ``history.jsonl`` readable: every line is complete and
flushed, so ``clew analyze RUN_DIR`` can check it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from pathlib import Path
from typing import IO, Any

from harness.formats.jsonl import op_to_json_line

__all__ = ["Journal", "RunDir", "new_run_dir"]


class Journal:
    """Appends ops to ``history.jsonl``; every line is written and flushed at once.

    With ``fsync`` the file is also synced to disk every ``fsync_every`` ops (a power loss
    then loses at most that many); a crash of the process loses nothing already written.
    """

    def __init__(self, path: Path, *, fsync_every: int = 0) -> None:
        self.path = path
        self._f: IO[str] = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._fsync_every = fsync_every
        self._n = 0

    def __call__(self, op: dict[str, Any]) -> None:
        """Append one op (a dict with the history fields) as a line, and flush it."""
        self._f.write(op_to_json_line(op))
        self._f.flush()
        self._n += 1
        if self._fsync_every and self._n % self._fsync_every == 0:
            os.fsync(self._f.fileno())

    @property
    def count(self) -> int:
        return self._n

    def close(self) -> None:
        """Flush, sync and close. Safe to call twice."""
        if not self._f.closed:
            self._f.flush()
            with contextlib.suppress(OSError):
                os.fsync(self._f.fileno())
            self._f.close()


class RunDir:
    """One run's directory and the files in it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def history(self) -> Path:
        return self.path / "history.jsonl"

    @property
    def faults(self) -> Path:
        return self.path / "faults.jsonl"

    @property
    def results(self) -> Path:
        return self.path / "results.json"

    @property
    def spec(self) -> Path:
        return self.path / "spec.json"

    @property
    def log(self) -> Path:
        return self.path / "clew.log"

    def node_dir(self, node: str) -> Path:
        """``nodes/<node>/``, created."""
        d = self.path / "nodes" / node
        d.mkdir(parents=True, exist_ok=True)
        return d

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``data`` as pretty JSON to ``name`` in the run dir (atomically)."""
        path = self.path / name
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
        os.replace(tmp, path)
        return path

    def read_json(self, name: str) -> Any:
        """The JSON data in ``name``; ``None`` if the file is absent."""
        try:
            return json.loads((self.path / name).read_text())
        except FileNotFoundError:
            return None


def _point_link(link: Path, target: Path) -> None:
    tmp = link.with_name(link.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(os.path.relpath(target, link.parent))
    os.replace(tmp, link)


def new_run_dir(store: str | Path, test: str, *, now: dt.datetime | None = None) -> RunDir:
    """Create ``store/<test>/<timestamp>/`` and point the ``latest`` links at it."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%dT%H%M%S")
    base = Path(store) / test
    path = base / stamp
    n = 1
    while path.exists():  # two runs in the same second
        n += 1
        path = base / f"{stamp}-{n}"
    path.mkdir(parents=True)
    _point_link(base / "latest", path)
    _point_link(Path(store) / "latest", path)
    return RunDir(path)
