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
    store/index.html    the newest runs (reports/index.py), and its row cache
    store/.clew-index-cache.json

A crash of the controller leaves ``history.jsonl`` readable: every line is complete and
flushed, so ``clew analyze RUN_DIR`` can check it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.journal_lines import Record, op_line, records_text
from harness.record import read_record_text

__all__ = [
    "Journal",
    "RunDir",
    "check_run_dir",
    "is_store",
    "leads_out",
    "new_run_dir",
    "refuse_special_files",
    "special_files",
    "store_of_run",
]  # fmt: skip


class Journal:
    """Appends ops to ``history.jsonl``, one JSON line each, as they happen (the
    interpreter's :class:`harness.journal_lines.Journal`: ops as records through
    ``append_fields``, written by :meth:`flush`; or op dicts by calling it).

    A line reaches the OS – the page cache, which outlives a crash or a SIGKILL of the
    controller – before the event loop runs anything else: the lines journaled in one
    turn of the loop are written together, with one ``write()``, when the code that
    journaled them yields (:meth:`flush` at once; the journal also schedules it for the
    end of the turn itself). Without a running event loop every line is written at once.
    Each write holds whole lines only, so the file is never left mid-line by a crash.

    With ``fsync_every`` the file is also synced to disk every ``fsync_every`` ops (a power
    loss then loses at most about that many).
    """

    def __init__(self, path: Path, *, fsync_every: int = 0) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._fsync_every = fsync_every
        self._written = 0  # lines written so far
        self._synced = 0  # lines synced so far
        self._pending: list[str | Record] = []  # lines, or ops' fields
        self._scheduled = False
        #: Append an op given as its fields (a :data:`~harness.journal_lines.Record`),
        #: made into its line and written by the next :meth:`flush` – the fast path for a
        #: caller that flushes before it yields to the event loop (the interpreter), and
        #: that changes none of the values until then.
        self.append_fields: Callable[[Record], None] = self._pending.append

    def __call__(self, op: dict[str, Any]) -> None:
        """Append one op (a dict with the history fields) as a line; it is written by the
        end of this event-loop turn (at once outside an event loop)."""
        self._pending.append(op_line(op))
        if not self._scheduled:
            self._schedule()

    def _schedule(self) -> None:
        """Have the pending lines written at the end of this turn (now outside a loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        self._scheduled = False
        if self._fd is not None:
            self.flush()

    def flush(self) -> None:
        """Write every pending line now, with one ``write()`` (and sync if due)."""
        pending = self._pending
        if pending and self._fd is not None:
            data = records_text(pending).encode("utf-8", "backslashreplace")
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            self._written += len(pending)
            pending.clear()
            if self._fsync_every and self._written - self._synced >= self._fsync_every:
                os.fsync(self._fd)
                self._synced = self._written

    @property
    def count(self) -> int:
        """Ops journaled so far."""
        return self._written + len(self._pending)

    def close(self) -> None:
        """Write what is pending, sync and close. Safe to call twice."""
        if self._fd is not None:
            try:
                self.flush()
                with contextlib.suppress(OSError):
                    os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None


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
        path = self.path / name
        try:
            return json.loads(read_record_text(path))
        except FileNotFoundError:
            return None
        except RecursionError:
            raise InputError(f"{path}: not JSON clew reads: nested too deeply") from None


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


#: How deep below a run directory :func:`special_files` looks (``nodes/n1/db.log``: 2).
_SPECIAL_DEPTH = 3
#: Entries :func:`special_files` looks at, at most: a run clew records holds a few dozen
#: (and at most a few thousand of Elle's drawings).
_SPECIAL_LIMIT = 50_000


def special_files(run_dir: str | Path) -> list[Path]:
    """The entries of ``run_dir`` (and of its directories, a few levels down) that are
    neither regular files nor directories once links are followed: FIFOs, sockets and
    devices, which a run recorded by clew never holds; and the links at its top level
    that lead out of it (``results.json -> /proc/kmsg``: a file of the kernel's that
    blocks on reading). Opening a FIFO waits for a writer forever, so the readers of a
    foreign run refuse one that has any. (Links out of the run further down, such as a
    node's log, are skipped by their readers.)
    :class:`InputError` for a directory with more than :data:`_SPECIAL_LIMIT` entries
    (one padded so that the search stops before its FIFO is reached is not a run)."""
    root = Path(run_dir)
    found: list[Path] = []
    seen = 0
    todo = [(root, 0)]
    while todo:
        here, depth = todo.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        seen += len(entries)
        if seen > _SPECIAL_LIMIT:
            raise InputError(f"{run_dir}: not a run clew reads: it holds more than "
                             f"{_SPECIAL_LIMIT:,} entries")  # fmt: skip
        for entry in entries:
            try:
                if depth == 0 and entry.is_symlink() and leads_out(Path(entry.path), root):
                    found.append(Path(entry.path))
                elif entry.is_dir():
                    if depth + 1 < _SPECIAL_DEPTH and not entry.is_symlink():
                        todo.append((Path(entry.path), depth + 1))
                elif not entry.is_file():
                    found.append(Path(entry.path))  # (a dangling link is neither: absent)
            except OSError:
                continue
    return [p for p in found if p.exists()]


def is_store(path: Path) -> bool:
    """Whether ``path`` is a store of clew's: it holds the ``latest`` link that every run
    written into it leaves (:func:`new_run_dir`). A directory a run was copied into (a
    home directory, a web site) is not one, even if the run's test directory came along."""
    return (path / "latest").is_symlink()


def store_of_run(run: Path) -> Path | None:
    """The store that holds the run directory ``run`` (``<store>/<test>/<run>``), or None
    when it is in none (:func:`is_store`)."""
    store = run.resolve().parent.parent
    return store if is_store(store) else None


def leads_out(link: Path, root: Path) -> bool:
    """Whether the link ``link`` in ``root`` resolves to a place outside ``root``."""
    try:
        return not link.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a loop of links
        return True


def _named(entry: Path) -> str:
    """``entry``, and where it leads if it is a link."""
    if entry.is_symlink():
        try:
            return f"{entry} -> {os.readlink(entry)}"
        except OSError:
            pass
    return str(entry)


def check_run_dir(run_dir: str | Path) -> None:
    """:class:`InputError` unless ``run_dir`` is a directory (a link to a device passes
    click's "not a file") holding only regular files of its own
    (:func:`refuse_special_files`): what every command reading a stored run checks first."""
    if not Path(run_dir).is_dir():
        raise InputError(f"{run_dir}: not a run directory: not a directory at all")
    refuse_special_files(run_dir)  # a FIFO in a foreign run would hang its reading


def refuse_special_files(run_dir: str | Path) -> None:
    """:class:`InputError` naming the FIFOs, sockets or devices in ``run_dir``, and the
    links out of it (see :func:`special_files`), if it has any."""
    found = special_files(run_dir)
    if found:
        names = ", ".join(_named(p) for p in found[:5]) + (" …" if len(found) > 5 else "")
        hint = ("; clew reads only a run's own files: copy a file into the run rather than "
                "link it" if any(p.is_symlink() for p in found) else "")
        raise InputError(f"{run_dir}: not a run clew reads: it holds what is not a regular "
                         f"file of its own (a FIFO, socket or device, or a link out of "
                         f"the run): {names}{hint}")  # fmt: skip
