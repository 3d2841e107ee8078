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
import re
from pathlib import Path
from typing import Any

import numpy as np

from harness.record import read_record_text

__all__ = [
    "CLOCK_FILE",
    "MAX_LINE_CHARS",
    "MAX_LOG_LINES",
    "MAX_NODES",
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
    read}``, in time order; None when there are no node logs or no anchor."""
    nodes_dir = run_dir / "nodes"
    if not nodes_dir.is_dir():
        return None
    origin, exact = read_origin(run_dir)
    if origin is None:
        return None
    names: list[str] = []
    times: list[int] = []
    node_ix: list[int] = []
    texts: list[str] = []
    total = 0
    run_real = run_dir.resolve()
    all_nodes = sorted(p for p in nodes_dir.iterdir() if p.is_dir())
    node_dirs = all_nodes[:MAX_NODES]
    # Each node has its share of the cap: one chatty node does not crowd the others out.
    share = max(1, MAX_LOG_LINES // max(1, len(node_dirs)))
    for node in node_dirs:
        names.append(node.name)
        k = len(names) - 1
        room = share
        for path in sorted(node.rglob("*.log")):
            # A link out of the run (planted in a run someone else made) is not read: the
            # page would carry that file's lines.
            if not path.is_file() or run_real not in path.resolve().parents:
                continue
            with path.open("rb") as fh:
                raw = fh.read(MAX_FILE_BYTES)
            if room <= 0:  # the node's share is taken: its other lines are only counted
                total += sum(1 for b in raw.splitlines() if b.strip())
                continue
            last: int | None = None
            lines = raw.decode("utf-8", errors="replace").splitlines()
            for j, line in enumerate(lines):
                if room <= 0:
                    total += sum(1 for x in lines[j:] if x.strip())
                    break
                if not line.strip():
                    continue
                total += 1
                wall = parse_wall_ns(line)
                last = wall if wall is not None else last
                if last is None:
                    continue
                room -= 1
                times.append(last - origin)
                node_ix.append(k)
                text = line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…"
                texts.append(f"{path.name}: {text}")
    if not names or not texts:
        return None
    t = np.asarray(times, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    t_s = ((t[order] - axis_origin) / ns_per_unit).astype(np.float32)
    nodes_col = np.asarray(node_ix, dtype=np.uint8)[order]
    return {
        "nodes": names,
        "t": base64.b64encode(t_s.astype("<f4").tobytes()).decode(),
        "node": base64.b64encode(nodes_col.tobytes()).decode(),
        "text": [texts[i] for i in order.tolist()],
        "exact": exact,
        "total": total,
        "nodes_total": len(all_nodes),
        "shown": len(texts),
    }
