"""A run's record: what a run directory holds, as typed records, written and read here.

The runner writes through this module and everything that reads a stored run (``clew
analyze``, ``clew replay``, the report, the store's index) reads through it:

``spec.json``      :class:`RunSpec`: the resolved test spec, the workload, ``replay_of``
``schedule.json``  :class:`ScheduleRecord`: the fault steps planned (or replayed), and why
``faults.jsonl``   the fault ledger (appended as faults act by
                   :class:`nemeses.ledger.FaultLedger`; read by :func:`read_fault_records`)
``results.json``   :class:`RunResults`: the verdict and what it was made of

One meaning per word: *ops* are client operations (invocations by client processes, not
history lines, which are ``history_lines``); *duration* is the history's span, from its
first op to its last (the load phase, the final heal and the final reads), in seconds;
``wall_seconds`` is the whole ``clew test`` wall time (cluster up to report), shown apart;
``check_seconds`` is the time the checkers took on the last check.

Fault windows are computed here only (:func:`fault_windows`, one pairing rule), and so is
the verdict over several checkers (:func:`verdict`, false beats unknown beats true).

Old run directories stay readable: a ``results.json`` without ``format`` (written before
this module) had ``ops`` = history lines and ``seconds`` = wall time, and is read so.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import math
import os
import secrets
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from checkers.result import UNKNOWN, Validity, merge_validity
from harness.errors import InputError, WriteError
from harness.output_paths import open_new_text
from harness.read_budget import parse_memory_bound
from nemeses.ledger import count_records, read_ledger, read_ledger_lines

__all__ = [
    "RESULTS_FORMAT",
    "FaultWindow",
    "RunResults",
    "RunSpec",
    "ScheduleRecord",
    "count_fault_records",
    "fault_kind",
    "fault_windows",
    "parse_memory_bound",
    "read_fault_ledger",
    "read_fault_records",
    "read_json_file",
    "read_record_text",
    "read_results_object",
    "replace_file",
    "results_damage",
    "verdict",
    "windows_json",
    "write_json_file",
    "write_text_file",
]

#: The ``format`` of the results.json this module writes.
RESULTS_FORMAT = 2

#: The most characters of a fault window's ``value`` (as JSON) written to results.json: a
#: longer one (a large cluster's partition grudge, or a planted value) is written as the
#: first this many characters of its JSON, a string, with ``value_chars`` its full length.
MAX_WINDOW_VALUE_CHARS = 1_000

#: The most fault windows written to results.json (the first ones in time; a problem says
#: how many there were): with each window's value and targets cut to
#: :data:`MAX_WINDOW_VALUE_CHARS`, they stay well under :data:`MAX_RECORD_BYTES`.
MAX_RESULT_WINDOWS = 20_000

#: Ledger events that are bookkeeping, not a fault acting (no window of their own).
_BOOKKEEPING = frozenset({"intent", "error", "verified", "guard-refused"})


def verdict(values: Iterable[Validity]) -> Validity:
    """The verdict of several checkers: ``False`` if any is, else ``"unknown"`` if any is
    (or if there are none), else ``True``."""
    values = list(values)
    return merge_validity(values) if values else UNKNOWN


def write_json_file(path: Path, data: Any) -> Path:
    """Write ``data`` as pretty JSON to ``path`` atomically (a reader never sees half)."""
    return write_text_file(path, json.dumps(data, indent=2, default=str) + "\n")


def write_text_file(path: Path, text: str, tmp: Path | None = None) -> Path:
    """Write ``text`` to ``path`` atomically, through ``tmp`` beside it (default: ``path``
    with ``.tmp`` added). Whatever is at ``tmp`` already (left by a crash, or a symlink
    planted in a run directory someone else made) is removed first, never written through.
    :class:`InputError` naming ``path`` if it cannot be written (a directory in its place),
    :class:`WriteError` for a full disk or an I/O error (:func:`_unwritable`)."""
    tmp = tmp or path.with_name(path.name + ".tmp")
    try:
        with open_new_text(tmp) as f:
            f.write(text)
        tmp.replace(path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _unwritable(path, e) from None
    return path


#: Random bytes in the name of :func:`replace_file`'s temporary file (hex: twice as many
#: characters).
_TMP_BYTES = 6


#: Why a file cannot be written that the user can act on: the path or its permissions.
_PATH_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR,
                          errno.EISDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.EEXIST})  # fmt: skip


def _unwritable(path: Path, e: OSError) -> InputError | WriteError:
    """Why ``path`` could not be written, for people: :class:`InputError` where the path is
    to blame (a directory in its place, planted in a run someone else made, or a read-only
    store), else :class:`WriteError` (a full disk, an I/O error: not bad input)."""
    if path.is_dir() and not path.is_symlink():
        return InputError(f"{path}: is a directory, where clew writes a file: move it away")
    if e.errno in _PATH_ERRNOS:
        return InputError(f"{path}: cannot write it: {e.strerror or e}")
    return WriteError(f"{path}: cannot write it: {e.strerror or e}")


def replace_file(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, through a temporary file beside it whose name
    is this writer's own (``.<name>.<random>.tmp``, created anew): two processes writing
    ``path`` at once (two runs ending together, each writing the store's index) each
    replace it whole, and a reader sees one or the other, never a mix. :class:`InputError`
    naming ``path`` if it cannot be written (a directory in its place, a read-only store),
    :class:`WriteError` for a full disk or an I/O error."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(_TMP_BYTES)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise _unwritable(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):
            raise _unwritable(path, e) from None
        raise
    return path


#: Seconds after which a temporary file of :func:`replace_file` is a crashed writer's
#: (a writer holds one for the time it takes to write a page: seconds at most).
STALE_TEMPORARY_SECONDS = 3600.0


def remove_stale_temporaries(path: Path, older_than: float = STALE_TEMPORARY_SECONDS) -> int:
    """Remove the temporary files :func:`replace_file` left beside ``path`` (a writer that
    was killed mid-write leaves its ``.<name>.<random>.tmp``) whose last change is more
    than ``older_than`` seconds ago; a writer still at work is younger. Returns how many
    were removed; a file that cannot be removed is left, silently."""
    removed = 0
    now = time.time()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.{'[0-9a-f]' * 2 * _TMP_BYTES}.tmp"):
        with contextlib.suppress(OSError):
            if now - tmp.lstat().st_mtime > older_than:
                tmp.unlink()
                removed += 1
    return removed


#: The largest run or campaign file read whole (``spec.json``, ``results.json``,
#: ``campaign.json``, ``clock.json``): clew writes them at a few MB at most, so a larger
#: one was planted and is refused rather than read into memory.
MAX_RECORD_BYTES = 64 * 1024**2


#: The most memory reading one such file may take (:func:`parse_memory_bound`). Those clew
#: writes need 4-10 times their size, so only a planted file of small lists or objects
#: under :data:`MAX_RECORD_BYTES` (up to 32 times its size) comes near it.
MAX_RECORD_MEMORY = 1024**3


def read_record_text(path: Path, *, limit: int | None = None, kind: str | None = None) -> str:
    """The UTF-8 text of ``path``, a small file of a run or campaign read whole, holding
    at most ``limit`` bytes (:data:`MAX_RECORD_BYTES`) in memory. :class:`InputError` (a
    ``ValueError``) naming the file if it is larger, would take more than
    :data:`MAX_RECORD_MEMORY` to decode as JSON, is not UTF-8, or not a regular file (a
    FIFO would block the reading forever); ``OSError`` as ``open`` (``IsADirectoryError``
    for a directory). ``kind`` names a file a person writes (``"spec file"``), for the
    messages: clew did not write it."""
    limit = MAX_RECORD_BYTES if limit is None else limit
    ours = "clew reads only files it could have written" if kind is None else f"a {kind} " \
        "must be a regular file"
    # Opened without waiting for a writer: a FIFO (planted, or a link to one) is refused,
    # not waited on forever; so is a device.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: not a regular file (a FIFO, socket or device): not "
                             f"read; {ours}")  # fmt: skip
        # Ask for the file's size, not the limit: a read of ``limit + 1`` bytes allocates
        # that much (64 MiB) even for a file of 1 KB, which tripled the cost of reading one.
        size = st.st_size
        data = f.read(min(size, limit) + 1)
        if size < len(data) <= limit:  # it grew since (or reports no size): read on
            data += f.read(limit + 1 - len(data))
    if len(data) > limit:
        most = "which no file of this kind clew writes is" if kind is None else (
            f"the most a {kind} may hold")
        raise InputError(f"{path}: larger than {limit / 1024**2:g} MiB, {most}: not read")
    needs = parse_memory_bound(data)
    if needs > MAX_RECORD_MEMORY:
        raise InputError(
            f"{path}: reading it would take up to {needs / 2**20:,.0f} MiB of memory (it "
            f"holds {data.count(b'[') + data.count(b'{'):,} lists and objects in "
            f"{len(data) / 2**20:,.1f} MiB), more than the {MAX_RECORD_MEMORY / 2**20:,.0f} "
            "MiB a file of a run may take: not read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start})") from None


def _record_text_if_any(path: Path) -> str | None:
    """:func:`read_record_text` of ``path``; ``None`` if the file is absent, and
    :class:`InputError` naming it if it cannot be read."""
    try:
        return read_record_text(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError(f"{path}: cannot read it: {e.strerror}") from None


def read_json_file(path: Path) -> Any:
    """The JSON data in ``path``; ``None`` if the file is absent; :class:`InputError`
    naming the file if it is not JSON, or larger than :data:`MAX_RECORD_BYTES`."""
    text = _record_text_if_any(path)
    return None if text is None else _parse_json(path, text)


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise InputError(f"{path}: not JSON: {e}") from None
    except RecursionError:
        raise InputError(f"{path}: not JSON clew reads: nested too deeply") from None


def _object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; ``None`` if the file is absent (a file holding
    ``null`` is not absent: :class:`InputError`, as for any other value not an object)."""
    text = _record_text_if_any(path)
    if text is None:
        return None
    data = _parse_json(path, text)
    if not isinstance(data, dict):
        found = "null" if data is None else type(data).__name__
        raise InputError(f"{path}: expected a JSON object, found {found}")
    return data


# --- spec.json ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunSpec:
    """``spec.json``: the resolved test spec's fields (:meth:`harness.spec.TestSpec.to_json`)
    plus ``workload`` (resolved) and ``replay_of`` (the run a replay repeats)."""

    fields: dict[str, Any]

    @property
    def suite(self) -> str:
        """The suite as the run named it: a built-in or installed name, or a file path."""
        return str(self.fields.get("suite") or "etcd")

    @property
    def workload(self) -> str | None:
        w = self.fields.get("workload")
        return str(w) if w else None

    @property
    def replay_of(self) -> str | None:
        r = self.fields.get("replay_of")
        return str(r) if r else None

    @property
    def faults(self) -> list[str]:
        f = self.fields.get("faults")
        return [str(k) for k in f] if isinstance(f, list) else []

    def spec_fields(self) -> dict[str, Any]:
        """The fields :func:`harness.spec.load_spec` takes (derived ones left out)."""
        return {k: v for k, v in self.fields.items() if k not in ("test_name", "replay_of")}

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``spec.json``."""
        return dict(self.fields)

    def write(self, run: Path) -> Path:
        """Write ``run/spec.json``."""
        return write_json_file(run / "spec.json", self.to_json())

    @classmethod
    def read(cls, run: Path) -> RunSpec | None:
        """``run/spec.json``, or ``None`` if the run has none."""
        data = _object(run / "spec.json")
        return None if data is None else cls(data)


# --- schedule.json -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """``schedule.json``: where the fault steps came from (``random`` planning or a
    ``replay``), the seed, and the steps (fault ops with their planned offsets ``at``)."""

    source: str
    seed: int | None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "seed": self.seed, "steps": self.steps}

    def write(self, run: Path) -> Path:
        """Write ``run/schedule.json``."""
        return write_json_file(run / "schedule.json", self.to_json())

    @classmethod
    def read(cls, run: Path) -> ScheduleRecord | None:
        """``run/schedule.json``, or ``None`` if the run has none."""
        data = _object(run / "schedule.json")
        if data is None:
            return None
        steps = data.get("steps")
        seed = data.get("seed")
        return cls(
            source=str(data.get("source", "random")),
            seed=seed if isinstance(seed, int) else None,
            steps=[s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else [],
        )


# --- faults.jsonl ------------------------------------------------------------------------


def verdict_caveats(results: Mapping[str, Any]) -> list[str]:
    """Why a run whose history showed no anomaly still is not valid, for people (``[]``
    if nothing holds it back): a tainted run (the residue the verify-healed barrier found
    on each node) and a run cut short (``incomplete``)."""
    out = []
    if results.get("tainted"):
        residue = results.get("heal_residue") or {}
        left = "; ".join(
            f"{n}: {', '.join(map(str, r))}" for n, r in sorted(residue.items()) if r
        )
        out.append(f"tainted: the heal left residue ({left or 'not verified'}); the faults "
                   "may have outlived their windows, so the run cannot count as valid")  # fmt: skip
    if results.get("incomplete") and results.get("valid") is not False:
        if not results.get("checkers"):  # nothing was checked: no op, or no checker ran
            out.append(f"incomplete: {results['incomplete']}; nothing was checked, so the "
                       "run cannot count as valid")  # fmt: skip
        else:
            out.append(f"incomplete: {results['incomplete']}; the history so far shows no "
                       "anomaly, but a run cut short cannot count as valid")  # fmt: skip
    return out


def read_fault_records(run: Path, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The records of ``run/faults.jsonl`` (``[]`` if absent), the first ``limit`` of them
    if given (:func:`count_fault_records` counts them all). A torn last line (a crash
    mid-write) is skipped; any other line that is not a JSON object raises
    :class:`InputError` naming the file and line."""
    return read_ledger(run / "faults.jsonl", limit=limit)


def read_fault_ledger(
    run: Path, *, limit: int | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """As :func:`read_fault_records`, but a line longer than any record clew writes is
    skipped and the reading stops at the ledger's caps
    (:func:`nemeses.ledger.read_ledger_lines`, ``lenient``) rather than raising: the
    records read, and what was left out, in words naming the file and line."""
    path = run / "faults.jsonl"
    read = read_ledger_lines(path, limit=limit, lenient=True)
    return [rec for _, rec in read.rows], read.problems(path)


def count_fault_records(run: Path) -> int:
    """The records of ``run/faults.jsonl`` (its non-blank lines), counted without reading
    them into memory."""
    return count_records(run / "faults.jsonl")


def fault_kind(f: str) -> str:
    """The fault kind of a fault op name: ``start-pause``, ``stop-pause`` and
    ``heal-pause`` are ``pause``; Jepsen's bare ``start`` / ``stop`` are ``fault``."""
    for prefix in ("start-", "stop-", "heal-", "start_", "stop_"):
        if f.startswith(prefix):
            return f[len(prefix) :]
    return "fault" if f in ("start", "stop") else f


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """One fault acting: its kind, from ``start`` to ``stop`` (nanoseconds on the
    history's time axis; ``stop`` is ``None`` if nothing on record healed it), the nodes
    it struck and the value applied. ``instant`` for a fault op with no start or stop."""

    kind: str
    start: int
    stop: int | None
    targets: tuple[str, ...] = ()
    value: Any = None
    instant: bool = False

    def to_json(self) -> dict[str, Any]:
        """For ``results.json``: times in seconds since the run's origin; a ``value`` whose
        JSON is longer than :data:`MAX_WINDOW_VALUE_CHARS` cut to that many characters of
        it (a string), and its full length in ``value_chars``."""
        out = {
            "kind": self.kind,
            "start": round(self.start / 1e9, 3),
            "stop": None if self.stop is None else round(self.stop / 1e9, 3),
            "targets": list(self.targets),
            "value": self.value,
        }
        text = json.dumps(self.value, default=str)
        if len(text) > MAX_WINDOW_VALUE_CHARS:
            out["value"] = text[:MAX_WINDOW_VALUE_CHARS] + "…"
            out["value_chars"] = len(text)
        kept = _first_within(self.targets, MAX_WINDOW_VALUE_CHARS)
        if len(kept) < len(self.targets):
            out["targets"] = kept
            out["targets_total"] = len(self.targets)
        return out


def _first_within(names: Iterable[str], chars: int) -> list[str]:
    """The first of ``names`` whose JSON strings add up to at most ``chars`` characters."""
    out: list[str] = []
    for name in names:
        chars -= len(name) + 4  # its quotes, comma and space
        if chars < 0:
            break
        out.append(name)
    return out


def windows_json(
    windows: Iterable[FaultWindow], *, ledger_cut: bool = False
) -> tuple[list[dict[str, Any]], list[str]]:
    """The windows (not the instants) as results.json writes them: the first
    :data:`MAX_RESULT_WINDOWS`, each as :meth:`FaultWindow.to_json`; and a problem saying
    how many were left out (``[]``: none were). ``ledger_cut``: the windows are of a
    ledger read in part, so there were at least as many."""
    acting = [w for w in windows if not w.instant]
    out = [w.to_json() for w in acting[:MAX_RESULT_WINDOWS]]
    if len(acting) <= MAX_RESULT_WINDOWS:
        return out, []
    many = f"at least {len(acting):,}" if ledger_cut else f"{len(acting):,}"
    return out, [f"{many} fault windows, the first {MAX_RESULT_WINDOWS:,} written "
                 "(`clew report` draws them from faults.jsonl)"]  # fmt: skip


def _phase(r: Mapping[str, Any]) -> str | None:
    phase = r.get("phase")
    if phase in ("start", "stop"):
        return str(phase)
    event = r.get("event")
    return "start" if event == "applied" else "stop" if event == "healed" else None


def fault_windows(records: Iterable[Mapping[str, Any]]) -> list[FaultWindow]:
    """The fault windows of ledger records (or of records made from a history's nemesis
    ops: ``{"time", "phase", "f", "value"}``), by one rule: in time order, a start opens a
    window of its kind; a stop closes the oldest open window of its kind (a stop with none
    open, such as the final heal of a kind that was not acting, closes nothing). A stop
    that names its targets (a node agent's heal of what it struck) closes the oldest open
    window of its kind with those targets; a heal of the whole kind (``heal-<kind>``, the
    run's final heal) closes every open window of its kind. Bookkeeping records (intent,
    error, verified, guard-refused) are not faults acting; a record with neither start nor
    stop phase is an instant."""
    timed = [r for r in records if isinstance(r.get("time"), int | float)]
    timed.sort(key=lambda r: r["time"])
    windows: list[dict[str, Any]] = []
    open_: dict[str, list[dict[str, Any]]] = {}
    for r in timed:
        event = r.get("event")
        if isinstance(event, str) and event in _BOOKKEEPING:  # (a list is not hashable)
            continue
        kind = r.get("kind")
        kind = kind if isinstance(kind, str) else fault_kind(str(r.get("f", "fault")))
        phase = _phase(r)
        t = int(r["time"])
        targets = r.get("targets")
        w = {"kind": kind, "start": t, "stop": t, "value": r.get("value"),
             "targets": tuple(map(str, targets)) if isinstance(targets, list) else (),
             "instant": phase is None}  # fmt: skip
        if phase == "start":
            w["stop"] = None
            open_.setdefault(kind, []).append(w)
            windows.append(w)
        elif phase == "stop":
            waiting = open_.get(kind) or []
            if str(r.get("f", "")).startswith("heal-"):
                for o in waiting:
                    o["stop"] = t
                waiting.clear()
                continue
            named = w["targets"]
            i = next((i for i, o in enumerate(waiting) if o["targets"] == named), None)
            if waiting and (i is not None or not named):
                waiting.pop(i or 0)["stop"] = t
        else:
            windows.append(w)
    return [FaultWindow(**w) for w in windows]


# --- results.json ------------------------------------------------------------------------


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


@dataclass(slots=True, kw_only=True)
class RunResults:
    """``results.json``: the verdict and what it was made of (see the module docstring for
    the meaning of ``ops``, ``duration``, ``wall_seconds`` and ``check_seconds``)."""

    valid: Validity
    checkers: dict[str, Any] = field(default_factory=dict)
    ops: int | None = None
    history_lines: int | None = None
    duration: float | None = None
    wall_seconds: float | None = None
    check_seconds: float | None = None
    tainted: bool = False
    heal_residue: dict[str, list[str]] = field(default_factory=dict)
    heal_verified: bool = False
    faults: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: Why the run stopped before its end (a Ctrl-C, an error), ``None`` if it did not: a
    #: history cut short cannot make the run valid.
    incomplete: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``results.json``."""

        def r3(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {
            "format": RESULTS_FORMAT,
            "valid": self.valid,
            "checkers": self.checkers,
            "ops": self.ops,
            "history_lines": self.history_lines,
            "duration": r3(self.duration),
            "wall_seconds": r3(self.wall_seconds),
            "check_seconds": r3(self.check_seconds),
            "tainted": self.tainted,
            "heal_residue": self.heal_residue,
            "heal_verified": self.heal_verified,
            "faults": self.faults,
            "problems": self.problems,
            "incomplete": self.incomplete,
        }

    def write(self, run: Path) -> Path:
        """Write ``run/results.json``."""
        return write_json_file(run / "results.json", self.to_json())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunResults:
        """Results from a ``results.json`` object, of this format or an older one."""
        valid = data.get("valid")
        checkers = data.get("checkers")
        residue = data.get("heal_residue")
        faults = data.get("faults")
        problems = data.get("problems")
        ops = data.get("ops")
        lines = data.get("history_lines")
        if data.get("format") is None:  # before format 2: "ops" counted history lines
            lines, ops = ops, None
        wall = _number(data.get("wall_seconds"))
        if wall is None and data.get("format") is None:
            wall = _number(data.get("seconds"))
        return cls(
            valid=valid if valid in (True, False) else UNKNOWN,
            checkers=dict(checkers) if isinstance(checkers, dict) else {},
            ops=ops if isinstance(ops, int) else None,
            history_lines=lines if isinstance(lines, int) else None,
            duration=_number(data.get("duration")),
            wall_seconds=wall,
            check_seconds=_number(data.get("check_seconds")),
            tainted=bool(data.get("tainted")),
            heal_residue=(
                {str(k): [str(x) for x in v] for k, v in residue.items() if isinstance(v, list)}
                if isinstance(residue, dict)
                else {}
            ),
            heal_verified=bool(data.get("heal_verified")),
            faults=[f for f in faults if isinstance(f, dict)] if isinstance(faults, list) else [],
            problems=[str(p) for p in problems] if isinstance(problems, list) else [],
            incomplete=str(data["incomplete"]) if data.get("incomplete") is not None else None,
        )

    @classmethod
    def read(cls, run: Path) -> RunResults | None:
        """``run/results.json``, or ``None`` if the run has none (yet); :class:`InputError`
        naming the file if it is malformed (see :func:`read_results_object`)."""
        data = read_results_object(run)
        return None if data is None else cls.from_json(data)

    @classmethod
    def read_summary(cls, run: Path) -> RunResults | None:
        """As :meth:`read`, with each checker's result cut to its ``valid`` and the names
        of its ``anomalies`` (for the store's index): the rest of a checker's result, which
        can be most of a file of tens of MB, is skipped over, not built."""
        path = run / "results.json"
        text = _record_text_if_any(path)
        if text is None:
            return None
        try:
            fields = msgspec.json.decode(text, type=dict[str, msgspec.Raw])
            data = {k: _checker_summaries(v) if k == "checkers" else msgspec.json.decode(v)
                    for k, v in fields.items()}  # fmt: skip
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as e:
            raise InputError(f"{path}: not a JSON object clew reads: {e}") from None
        why = results_damage(data)
        if why:
            raise InputError(f"{path}: malformed: {why}")
        return cls.from_json(data)


def _checker_summaries(raw: msgspec.Raw) -> Any:
    """The ``checkers`` object of a results.json, each result cut to ``valid`` and the
    names of its ``anomalies`` (a list of names, or an object by name); anything but an
    object is decoded as it is (:func:`results_damage` judges it)."""
    if not bytes(raw).lstrip().startswith(b"{"):
        return msgspec.json.decode(raw)
    out: dict[str, Any] = {}
    for name, res in msgspec.json.decode(raw, type=dict[str, msgspec.Raw]).items():
        if not bytes(res).lstrip().startswith(b"{"):
            out[name] = msgspec.json.decode(res)
            continue
        fields = msgspec.json.decode(res, type=dict[str, msgspec.Raw])
        cut: dict[str, Any] = {}
        if "valid" in fields:
            cut["valid"] = msgspec.json.decode(fields["valid"])
        a = fields.get("anomalies")
        if a is not None:
            cut["anomalies"] = (
                list(msgspec.json.decode(a, type=dict[str, msgspec.Raw]))
                if bytes(a).lstrip().startswith(b"{")
                else msgspec.json.decode(a)
            )
        out[name] = cut
    return out


def results_damage(data: Mapping[str, Any]) -> str | None:
    """Why a ``results.json`` object cannot be trusted, for people: its first known field
    of the wrong type (``valid`` not true, false or "unknown"; ``checkers`` or
    ``heal_residue`` not an object; ``faults`` or ``problems`` not a list), else ``None``.
    Absent (or null) fields are not damage: older runs lack some."""
    valid = data.get("valid")
    if valid is not None and not isinstance(valid, bool) and valid != UNKNOWN:
        return f'`valid` must be true, false or "unknown", got {valid!r}'
    for name, kind, what in (("checkers", dict, "an object"), ("heal_residue", dict, "an object"),
                             ("faults", list, "a list"), ("problems", list, "a list")):  # fmt: skip
        v = data.get(name)
        if v is not None and not isinstance(v, kind):
            return f"`{name}` must be {what}, found {type(v).__name__}"
    return None


def read_results_object(run: Path) -> dict[str, Any] | None:
    """``run/results.json`` as its JSON object (every field, also ones this module does
    not know), or ``None`` if absent; :class:`InputError` naming the file if it is not
    JSON, not an object, or malformed (:func:`results_damage`)."""
    path = run / "results.json"
    data = _object(path)
    why = None if data is None else results_damage(data)
    if why:
        raise InputError(f"{path}: malformed: {why}")
    return data
