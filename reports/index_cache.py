"""The index's row cache, ``store/.clew-index-cache.json``: each run's row kept from the
last time the index was written, so that writing it again reads only the runs that changed.

A row is kept under the run's place in the store (``test/run``) with a key made of the
size, modification and change times and inode of each file it is read from
(:data:`reports.index_rows.SOURCES`; and of the run directory when the start time comes
from it). A row is reused only while every one of those files is as it was when the row
was read; any change, a file added or removed, and the run is read again. Rows of runs
that are gone are dropped. A directory the index leaves out (one holding a FIFO:
:func:`harness.store.special_files`, looked for when a row is read) has no row kept, and is
looked at again every time. A FIFO that appears after a run's row was kept, where the key
does not look (``nodes/``, ``clew.log``), leaves the run listed until one of its key's
files changes: nothing is opened meanwhile, since a kept row is not read again (the page
rendered without the cache, :func:`reports.index.render_index`, leaves it out at once).

Trust: a row is only a copy of what clew read from files on this machine. The change
time and inode of a file cannot be carried along when a store is copied or unpacked, nor
set by anyone, so a cache that came with a store from elsewhere matches none of its files
and every run is read again; a row holds no name or link (those come from where the run
lies); a cache that does not parse, is not a regular file, is of another format or
would take more memory to decode than the store's runs can need
(:data:`MAX_CACHE_MEMORY_PER_RUN`) is ignored whole and rebuilt, and a row in it that is
not of the types a row has is read again from the run's files (rows are decoded only for
the runs the page lists): never an error. A row read less than :data:`RACY_SECONDS` after
one of its files changed is not kept (a file rewritten twice within one tick of the
file system's clock, with the same size, would keep its key), so the run is read again
next time.

Writers: the cache is written whole through a temporary file of the writer's own and
renamed into place (:func:`harness.record.replace_file`): of two runs ending at once, the
last writer's cache stands, and a row the other read is read again next time.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path
from typing import Literal

import msgspec

from harness.errors import InputError, WriteError
from harness.record import parse_memory_bound, replace_file
from reports.index_rows import ROW_FORMAT, SOURCES, IndexRow

__all__ = [
    "CACHE_NAME",
    "MAX_CACHE_MEMORY_PER_RUN",
    "RACY_SECONDS",
    "CachedRow",
    "RowCache",
    "memory_bound",
    "run_key",
]

_encode = msgspec.json.Encoder().encode

#: The cache's file name at the top of the store (a dot file: not a test directory).
CACHE_NAME = ".clew-index-cache.json"
#: The cache's format: a cache of another format, or holding rows of another
#: :data:`~reports.index_rows.ROW_FORMAT`, is ignored (and rebuilt).
CACHE_FORMAT = 3
#: A row read within this many seconds of a change of one of its files is not kept.
RACY_SECONDS = 2.0
#: A cache larger than this (about 2 million runs' rows) is not read: it was not clew's.
MAX_CACHE_BYTES = 1024**3
#: What decoding the cache may take per run directory the store holds
#: (:func:`harness.record.parse_memory_bound`, on top of :data:`CACHE_BASE_MEMORY`): a
#: row, its texts cut short (:mod:`reports.index_rows`), bounds at about 2 KB, at most
#: about 53 KB (every character a quote). A cache over its bound holds rows of runs that
#: are not there: it is ignored as a damaged one is.
MAX_CACHE_MEMORY_PER_RUN = 64 * 1024
#: What decoding the cache may take whatever the store holds.
CACHE_BASE_MEMORY = 16 * 1024


class CachedRow(msgspec.Struct, array_like=True, frozen=True):
    """A run's row as the cache keeps it: its key, the two columns every run's are needed
    of (to sort the runs and count their verdicts) and the rest still as JSON, decoded
    only for the runs the page lists (:meth:`RowCache.decode`)."""

    key: int
    sort: float
    valid: bool | Literal["unknown"] | None
    row: msgspec.Raw


class _CacheFile(msgspec.Struct, frozen=True):
    format: int
    row_format: int
    runs: dict[str, CachedRow]


def run_key(run: str, *, with_dir: bool) -> tuple[int, int] | None:
    """The key of the run directory ``run``'s row (a hash of the stats of its source
    files, and of the directory itself if ``with_dir``) and the newest change time among
    them (ns); None when one of the files is not a regular file or cannot be looked at,
    or none is there (the run is then read every time: its reading decides)."""
    stats: list[int] = []
    newest = 0
    for path in [f"{run}/{name}" for name in SOURCES] + ([run] if with_dir else []):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            stats.append(-1)
            continue
        except OSError:
            return None
        if path is not run and not stat.S_ISREG(st.st_mode):
            return None
        stats += (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        newest = max(newest, st.st_ctime_ns)
    if stats[: len(SOURCES)] == [-1] * len(SOURCES):
        return None  # none of them: not a run, or one of a report.html only (read each time)
    # The hash of a tuple of ints is the same in every process (only str and bytes
    # hashes are salted): 64 bits, compared, never trusted for anything but equality.
    return hash(tuple(stats)), newest


def memory_bound(runs: int) -> int:
    """The most memory decoding the cache of a store of ``runs`` run directories may take
    (:func:`harness.record.parse_memory_bound` of its bytes)."""
    return CACHE_BASE_MEMORY + MAX_CACHE_MEMORY_PER_RUN * max(0, runs)


class RowCache:
    """The rows of one store's cache, as loaded; :meth:`get` what is still valid, :meth:`put`
    what was read, then :meth:`save` the rows of the runs seen (every other row dropped)."""

    def __init__(self, entries: dict[str, CachedRow] | None = None) -> None:
        self._old = entries or {}
        self._new: dict[str, CachedRow] = {}
        self._racy: set[str] = set()
        self._started = time.time_ns()

    @classmethod
    def load(cls, store: Path, runs: int) -> RowCache:
        """The cache of ``store``, a store of ``runs`` run directories; an empty one when it
        is absent, not a regular file, too large (over :data:`MAX_CACHE_BYTES`, or taking
        more than :func:`memory_bound` of ``runs`` to decode), damaged or of another format
        (never an error)."""
        bound = memory_bound(runs)
        try:
            fd = os.open(store / CACHE_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return cls()
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > min(MAX_CACHE_BYTES, bound):
                return cls()
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read(st.st_size)  # (grown since: cut short, so not JSON)
        except OSError:
            return cls()
        finally:
            os.close(fd)
        if parse_memory_bound(data) > bound:
            return cls()
        try:
            cache = msgspec.json.decode(data, type=_CacheFile)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            return cls()
        if (cache.format, cache.row_format) != (CACHE_FORMAT, ROW_FORMAT):
            return cls()
        return cls(cache.runs)

    def get(self, rel: str, key: tuple[int, int]) -> CachedRow | None:
        """The row of the run at ``rel`` if the cache holds it under ``key``, else None."""
        entry = self._old.get(rel)
        if entry is None or entry.key != key[0]:
            return None
        self._new[rel] = entry
        return entry

    def decode(self, rel: str, entry: CachedRow) -> IndexRow | None:
        """The row ``entry`` holds; None if it is not a row (a damaged cache: the entry is
        dropped, and the caller reads the run again)."""
        try:
            return msgspec.json.decode(entry.row, type=IndexRow)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            self._new.pop(rel, None)
            return None

    def put(self, rel: str, key: tuple[int, int] | None, row: IndexRow) -> None:
        """Keep ``row``, just read, for the run at ``rel`` whose files had ``key`` before
        the reading (``None``: not kept)."""
        if key is None:
            return
        self._new[rel] = CachedRow(key[0], row.sort, row.valid, msgspec.Raw(_encode(row)))
        if key[1] > self._started - int(RACY_SECONDS * 1e9):
            self._racy.add(rel)

    def save(self, store: Path) -> None:
        """Write the rows got or put since loading (not the racy ones) as ``store``'s cache,
        if they differ from what was loaded; a failure to write (a read-only store, a full
        disk) leaves the cache as it was: it is only a cache."""
        keep = {k: v for k, v in self._new.items() if k not in self._racy}
        if keep == self._old:
            return
        data = msgspec.json.encode(_CacheFile(CACHE_FORMAT, ROW_FORMAT, keep))
        with contextlib.suppress(OSError, InputError, WriteError):  # (a directory; a full disk)
            replace_file(store / CACHE_NAME, data)
