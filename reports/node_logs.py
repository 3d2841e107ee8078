"""Every node's log lines on the run's clock, for the report's merged node timeline.

A run directory's ``nodes/<name>/*.log`` files hold what each database node said, stamped
with its wall clock. ``clock.json`` (written by the runner when the load starts) names the
wall time of the history's origin, ``origin_unix_ns``; a line's run time is its wall time
minus that. Without ``clock.json`` (older runs, Jepsen stores), the run directory's name
(its start, to the second, local time) is the anchor and the page says the alignment is
approximate.

Timestamps understood, at the start of a line or inside it: ISO 8601 (``2026-12-03T12:12:15.201Z``,
``2026-12-03 12:12:15,201``, with an optional zone or ``UTC``; no zone means UTC), Redis's
``03 Dec 2026 12:12:15.201`` and Unix epoch seconds (``1796297574.754``). A line without a
timestamp (a stack trace's continuation) takes the time of the line before it.
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from harness.record import read_record_text

__all__ = [
    "CLOCK_FILE",
    "MAX_LINE_CHARS",
    "MAX_LOG_LINES",
    "MAX_NODES",
    "MAX_RUN_LOG_BYTES",
    "node_log_lines",
    "parse_wall_ns",
    "read_origin",
]

#: The run's clock anchor in a run directory.
CLOCK_FILE = "clock.json"
#: Most log lines embedded in a report (over all nodes, each node the first lines of its
#: even share); the rest are counted, not shown.
MAX_LOG_LINES = 200_000
#: Longest text kept of one log line.
MAX_LINE_CHARS = 400
#: Most nodes whose logs are read (the page numbers nodes in a byte); the rest are counted.
MAX_NODES = 255
#: Largest log file read (bytes, from its start).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Most bytes of log read over a run's nodes, parsed or counted (each node its even share,
#: at most :data:`MAX_FILE_BYTES`): the files past a node's share are not read, and the
#: page says how many and how large.
MAX_RUN_LOG_BYTES = 256 * 1024 * 1024
#: Most bytes of one line read (its timestamp is looked for in the first 200 characters,
#: its first :data:`MAX_LINE_CHARS` shown); the rest of a longer line is passed over.
_LINE_READ = 4096
#: Bytes read at a time to count lines, or to pass over the rest of a long one.
_CHUNK = 1024 * 1024
#: The start of a non-empty line (after the newline ending the one before).
#: A line (from a line's start) with something on it but blanks: what the parse counts.
_LINE_WITH_TEXT = re.compile(rb"(?m)^[ \t\r\f\v]*\S")
_TEXT = re.compile(rb"\S")

_ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    r"\s?(Z|UTC|[+-]\d\d:?\d\d)?"
)
_MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}
_REDIS = re.compile(r"(\d\d?) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?")
_EPOCH = re.compile(r"^(1\d{9})(?:\.(\d{1,9}))?\b")


def _frac_ns(frac: str | None) -> int:
    return int((frac or "0").ljust(9, "0")[:9])


def parse_wall_ns(line: str) -> int | None:
    """The wall time (ns since the Unix epoch, UTC) a log line is stamped with, or None."""
    m = _EPOCH.match(line)
    if m:
        return int(m.group(1)) * 1_000_000_000 + _frac_ns(m.group(2))
    m = _ISO.search(line, 0, 200)
    if m:
        y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
        zone = m.group(8)
        offset = 0
        if zone and zone not in ("Z", "UTC"):
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        try:
            secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - offset
        except (ValueError, OverflowError):
            return None
        return secs * 1_000_000_000 + _frac_ns(m.group(7))
    m = _REDIS.search(line, 0, 200)
    if m and m.group(2) in _MONTHS:
        d, y, h, mi, s = (int(m.group(i)) for i in (1, 3, 4, 5, 6))
        secs = calendar.timegm((y, _MONTHS[m.group(2)], d, h, mi, s, 0, 0, 0))
        return secs * 1_000_000_000 + _frac_ns(m.group(7))
    return None


def read_origin(run_dir: Path) -> tuple[int | None, bool]:
    """The wall time (ns since the epoch) of the history's origin, and whether it is exact
    (from ``clock.json``) rather than guessed from the directory's name; (None, False) when
    neither is there."""
    try:
        data = json.loads(read_record_text(run_dir / CLOCK_FILE))
        origin = data.get("origin_unix_ns") if isinstance(data, dict) else None
        # (within int64 with room for a log line's offset from it: a damaged clock.json's
        # 10^30 overflowed the page's column of times, a crash)
        if isinstance(origin, int) and not isinstance(origin, bool) and abs(origin) < 2**62:
            return origin, True
    except (OSError, ValueError, RecursionError):
        pass
    try:
        start = dt.datetime.strptime(run_dir.name, "%Y%m%dT%H%M%S")
    except ValueError:
        return None, False
    return int(start.astimezone(dt.UTC).timestamp()) * 1_000_000_000, False


def node_log_lines(
    run_dir: Path, axis_origin: int = 0, ns_per_unit: float = 1e9
) -> dict[str, Any] | None:
    """The node logs of ``run_dir`` as columns for the page: ``{"nodes": [names], "t":
    base64 Float32 times on the page's axis (units of ``ns_per_unit`` nanoseconds, seconds
    by default, since history time ``axis_origin``),
    "node": base64 Uint8,
    "text": [lines], "files": [file per line group], "exact": bool, "total": lines read,
    "shown", "nodes_total": node directories, of which the first :data:`MAX_NODES` are
    read, "unread_files" and "unread_bytes": the log files and bytes past the byte budget
    (:data:`MAX_RUN_LOG_BYTES`), not read}``, in time order; None when there are no node
    logs or no anchor. Each node's files are read a line at a time, up to its even share
    of :data:`MAX_LOG_LINES` lines (stamped or not) and of the byte budget; the lines past
    its share of lines are counted (non-empty lines), not parsed."""
    nodes_dir = run_dir / "nodes"
    if not nodes_dir.is_dir():
        return None
    origin, exact = read_origin(run_dir)
    if origin is None:
        return None
    run_real = run_dir.resolve()
    all_nodes = sorted(p for p in nodes_dir.iterdir() if p.is_dir())
    node_dirs = all_nodes[:MAX_NODES]
    # Each node has its share of the caps: one chatty node does not crowd the others out.
    share = max(1, MAX_LOG_LINES // max(1, len(node_dirs)))
    node_bytes = min(MAX_FILE_BYTES, MAX_RUN_LOG_BYTES // max(1, len(node_dirs)))
    read = _LogRead(origin)
    for k, node in enumerate(node_dirs):
        read.names.append(node.name)
        room, budget = share, node_bytes
        for path in sorted(node.rglob("*.log")):
            # A link out of the run (planted in a run someone else made) is not read: the
            # page would carry that file's lines.
            if not path.is_file() or run_real not in path.resolve().parents:
                continue
            room, budget = read.file(path, k, room, budget)
    if not read.names or not read.texts:
        return None
    t = np.asarray(read.times, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    t_s = ((t[order] - axis_origin) / ns_per_unit).astype(np.float32)
    nodes_col = np.asarray(read.node_ix, dtype=np.uint8)[order]
    return {
        "nodes": read.names,
        "t": base64.b64encode(t_s.astype("<f4").tobytes()).decode(),
        "node": base64.b64encode(nodes_col.tobytes()).decode(),
        "text": [read.texts[i] for i in order.tolist()],
        "exact": exact,
        "total": read.total,
        "nodes_total": len(all_nodes),
        "shown": len(read.texts),
        "unread_files": read.unread_files,
        "unread_bytes": read.unread_bytes,
    }


class _LogRead:
    """The node log lines read so far (:func:`node_log_lines`), and what was not read."""

    def __init__(self, origin: int) -> None:
        self.origin = origin
        self.names: list[str] = []
        self.times: list[int] = []
        self.node_ix: list[int] = []
        self.texts: list[str] = []
        self.total = 0
        self.unread_files = 0
        self.unread_bytes = 0

    def file(self, path: Path, k: int, room: int, budget: int) -> tuple[int, int]:
        """Read the log ``path`` of node ``k``: up to ``room`` lines parsed, then counted,
        in at most ``budget`` bytes (and :data:`MAX_FILE_BYTES`); returns the room and
        budget left."""
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if budget <= 0:
                self.unread_files += 1
                self.unread_bytes += size
                return room, budget
            limit = min(budget, MAX_FILE_BYTES)
            done, room = self._parse(fh, path.name, k, room, limit)
            if done < limit:
                lines, more = _count_lines(fh, limit - done)
                self.total += lines
                done += more
        self.unread_bytes += max(0, size - done)
        return room, budget - done

    def _parse(self, fh: BinaryIO, name: str, k: int, room: int, limit: int) -> tuple[int, int]:
        """Parse lines of ``fh`` while ``room`` lasts, in at most ``limit`` bytes; the bytes
        read and the room left. A line before the file's first timestamp is parsed (it
        uses up room) but not shown; one after takes the time of the line before it."""
        done, last = 0, None
        while room > 0 and done < limit:
            raw = fh.readline(min(_LINE_READ, limit - done))
            if not raw:
                break
            done += len(raw)
            if not raw.endswith(b"\n"):
                done += _pass_line(fh, limit - done)
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line.strip():
                continue
            self.total += 1
            room -= 1
            wall = parse_wall_ns(line)
            last = wall if wall is not None else last
            if last is None:
                continue
            self.times.append(last - self.origin)
            self.node_ix.append(k)
            text = line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…"
            self.texts.append(f"{name}: {text}")
        return done, room


def _pass_line(fh: BinaryIO, limit: int) -> int:
    """Read on to the end of the current line, in at most ``limit`` bytes; the bytes read."""
    done = 0
    while done < limit and (chunk := fh.readline(min(_CHUNK, limit - done))):
        done += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return done


def _count_lines(fh: BinaryIO, limit: int) -> tuple[int, int]:
    """The lines of ``fh`` from here (a line's start) that are not blank, as the parse
    counts them, in at most ``limit`` bytes read a chunk at a time; and the bytes read."""
    lines = done = 0
    counted = False  # the line the last chunk ended in was counted
    while done < limit and (chunk := fh.read(min(_CHUNK, limit - done))):
        done += len(chunk)
        nl = chunk.find(b"\n")
        if not counted and _TEXT.search(chunk, 0, len(chunk) if nl < 0 else nl):
            lines += 1
            counted = True
        if nl >= 0:
            lines += len(_LINE_WITH_TEXT.findall(chunk, nl + 1))
            counted = _TEXT.search(chunk, chunk.rfind(b"\n") + 1) is not None
    return lines, done
