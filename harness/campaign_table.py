"""Runs to first detection per (bug, scheduler) cell, from campaign rows: the table.

A row is one campaign (``bench/bugs.py`` writes them to ``bench/results/bugs-*.json``):
its bug, depth, scheduler, cap on runs, and what it spent until the first invalid run —
runs, seconds of wall time, fault operations — or, when it found nothing, ``null`` for
those and what it spent in all (``runs``, ``seconds``, ``fault_ops``).

A campaign that found nothing is **censored, not dropped**: its runs count at the cap
(it would have needed more), its seconds and fault ops at what it spent (lower bounds
too). Medians and quartiles are taken over every campaign of the cell with those values,
so a cell where most campaigns found nothing has its median at the cap, shown as
``>=cap``. Each non-random scheduler is compared with ``random`` in the same bug's cell by
a one-sided Mann-Whitney U test on the capped runs (alternative: its runs are smaller);
ties at the cap are ties, which makes the test conservative.

Rows of one (bug, scheduler) pool into one cell whatever file they come from (campaigns
of different sittings add up). A file given as ``LABEL=FILE`` keeps its rows apart: its
schedulers are named ``adaptive (LABEL)``, so a trial and the version before it are two
cells, each tested against ``random`` (or, with no unlabelled ``random``, against the one
labelled ``random`` cell).

Where most campaigns of both cells found nothing, both medians sit at the cap and say
nothing of the difference. The **detections per run** say more: the campaigns that found
the bug over the runs the cell spent (to each detection, or to the cap). It is the
maximum-likelihood estimate of a constant per-run chance of finding the bug (each run a
trial; a campaign stops at its first success), so a scheduler that finds it in 3 % of its
runs against random's 1 % is three times as likely to in any one run, even where both
medians are ``>=cap``. A median at most half of random's needs about twice its rate.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.record import read_record_text

__all__ = ["MAX_CAP", "MAX_ROW_TEXT", "TABLE_FIELDS", "Cell", "Spread", "campaign_fields",
           "cells", "check_row", "claim", "detections_per_run", "label_rows", "labelled_path",
           "markdown", "read_rows", "text"]


@dataclass(frozen=True, slots=True)
class Spread:
    """A median with its quartiles and range; ``censored`` when the median itself is a
    lower bound (more than half the campaigns found nothing); ``counts`` when every value
    was a whole number (runs, fault ops), whose median may still fall halfway."""

    median: float
    q1: float
    q3: float
    low: float
    high: float
    censored: bool = False
    counts: bool = False

    @classmethod
    def of(cls, values: Sequence[float], *, censored: bool = False) -> Spread | None:
        """The spread of ``values`` (``None`` for none)."""
        if not values:
            return None
        counts = all(float(v).is_integer() for v in values)
        if len(values) == 1:
            v = float(values[0])
            return cls(v, v, v, v, v, censored, counts)
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        median = float(statistics.median(values))
        return cls(median, q1, q3, min(values), max(values), censored, counts)

    def show(self, digits: int = 0) -> str:
        """``median [q1-q3]``, the median prefixed ``>=`` when censored. Counts are shown
        exactly (a median of 1.5 runs is ``1.5``, not rounded to ``2``: whether one median
        is at most half of another turns on it); other values to ``digits`` places."""
        mark = ">=" if self.censored else ""
        f = _exact if self.counts else f"{{:.{digits}f}}".format
        return f"{mark}{f(self.median)} [{f(self.q1)}-{f(self.q3)}]"


def _exact(value: float) -> str:
    """A median or quartile of whole numbers, which is a multiple of 0.25, without
    rounding or trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True, slots=True)
class Cell:
    """One (bug, scheduler) cell of the table."""

    bug: str
    depth: int | None
    scheduler: str
    campaigns: int
    not_found: int
    cap: int
    runs: Spread
    seconds: Spread
    fault_ops: Spread
    capped_runs: tuple[int, ...]
    p_vs_random: float | None
    spent_seconds: float
    config_hashes: tuple[str, ...]
    #: Fault ops carried out per run, over the cell's runs (a loaded machine carries out
    #: fewer than a run's budget: its figures then measure less than the yardstick).
    ops_per_run: float = 0.0
    #: Runs whose verdict was neither valid nor invalid (unknown, tainted, cut short): they
    #: count as runs that found nothing. ``None`` when a row predates the count.
    unknown_runs: int | None = None
    #: Campaigns that found the bug over the runs the cell spent (see the module).
    found_per_run: float = 0.0


def _runs(row: dict[str, Any]) -> int:
    found = row.get("runs_to_detection")
    return int(found) if found else int(max(row.get("cap_runs") or 0, row.get("runs") or 0))


def _runs_spent(row: dict[str, Any]) -> int:
    """The runs a campaign made: to its detection, else all it ran (at most the cap)."""
    found = row.get("runs_to_detection")
    return int(found) if found else int(row.get("runs") or row.get("cap_runs") or 0)


def campaign_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """A row's fields that a campaign's own record holds (``campaign.json``, which
    :meth:`harness.campaign.CampaignResult.to_json` writes): its hashes and commit, how it
    stopped, what it spent to its detection and in all, and its cap of runs."""
    caps = data.get("caps") or {}
    return {
        "config_hash": data.get("config_hash"), "experiment_hash": data.get("experiment_hash"),
        "clew_commit": data.get("clew_commit"),
        "runs_to_detection": data.get("runs_to_detection"),
        "seconds_to_detection": data.get("seconds_to_detection"),
        "fault_ops_to_detection": data.get("fault_ops_to_detection"),
        "cap_runs": int(caps.get("runs") or data.get("runs_made") or 0),
        "runs": int(data.get("runs_made") or 0),
        "seconds": float(data.get("seconds_spent") or 0.0),
        "fault_ops": int(data.get("fault_ops_spent") or 0),
        "run_seconds": [float(r.get("wall_seconds") or 0.0) for r in data.get("runs", [])],
        "stopped": data.get("stopped"),
    }  # fmt: skip


def detections_per_run(rows: Sequence[dict[str, Any]]) -> float:
    """The campaigns of ``rows`` that found their bug over the runs they made (to each
    detection, else all they ran): the estimate of a constant per-run chance (see the
    module); 0.0 for no runs."""
    found = sum(1 for r in rows if r.get("runs_to_detection"))
    return found / max(1, sum(_runs_spent(r) for r in rows))


def _spent(row: dict[str, Any], to: str, spent: str) -> float:
    found = row.get(to)
    if row.get("runs_to_detection") and found is not None:
        return float(found)
    value = row.get(spent)
    if isinstance(value, list):  # older rows: run_seconds only
        return float(sum(value))
    return float(value or 0)


def _seconds(row: dict[str, Any]) -> float:
    if "seconds" in row:
        return _spent(row, "seconds_to_detection", "seconds")
    return _spent(row, "seconds_to_detection", "run_seconds")


def cells(rows: Iterable[dict[str, Any]]) -> list[Cell]:
    """The table's cells, in the order their bugs and schedulers first appear."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((str(r["bug"]), str(r["scheduler"])), []).append(r)
    capped = {key: [_runs(r) for r in rs] for key, rs in groups.items()}
    out = []
    for (bug, sched), rs in groups.items():
        missed = sum(1 for r in rs if not r.get("runs_to_detection"))
        censored = missed * 2 > len(rs)
        p = None
        baseline = _baseline(bug, groups)
        base = capped.get((bug, baseline))
        if sched != baseline and base:
            from scipy.stats import mannwhitneyu

            p = float(mannwhitneyu(capped[bug, sched], base, alternative="less").pvalue)
        seconds = [_seconds(r) for r in rs]
        ops = [_spent(r, "fault_ops_to_detection", "fault_ops") for r in rs]
        runs = Spread.of(capped[bug, sched], censored=censored)
        secs, fops = Spread.of(seconds, censored=censored), Spread.of(ops, censored=censored)
        assert runs is not None and secs is not None and fops is not None
        spent = sum(float(sum(r.get("run_seconds") or [])) for r in rs)
        out.append(Cell(
            bug=bug, depth=rs[0].get("depth"), scheduler=sched, campaigns=len(rs),
            not_found=missed, cap=max(int(r.get("cap_runs") or 0) for r in rs), runs=runs,
            seconds=secs, fault_ops=fops, capped_runs=tuple(capped[bug, sched]), p_vs_random=p,
            spent_seconds=spent,
            config_hashes=tuple(sorted({str(r.get("config_hash")) for r in rs})),
            ops_per_run=sum(float(r.get("fault_ops") or 0) for r in rs)
            / max(1, sum(int(r.get("runs") or 0) for r in rs)),
            unknown_runs=(sum(int(r["unknown_runs"]) for r in rs)
                          if all("unknown_runs" in r for r in rs) else None),
            found_per_run=detections_per_run(rs),
        ))  # fmt: skip
    return out


def _baseline(bug: str, groups: Mapping[tuple[str, str], Any]) -> str:
    """The scheduler whose cell the others of ``bug`` are tested against: ``random``, else
    the one labelled ``random`` there is (``random (before)``), else none."""
    if (bug, "random") in groups:
        return "random"
    labelled = [s for b, s in groups if b == bug and s.startswith("random (")]
    return labelled[0] if len(labelled) == 1 else "random"


def _p(cell: Cell) -> str:
    return "-" if cell.p_vs_random is None else f"{cell.p_vs_random:.3g}"


def _unknown(cell: Cell) -> str:
    return "-" if cell.unknown_runs is None else str(cell.unknown_runs)


def text(table: Sequence[Cell]) -> list[str]:
    """One line per cell, for a terminal."""
    return [
        f"{c.bug:22s} depth {c.depth} {c.scheduler:8s} campaigns {c.campaigns:3d}  "
        f"not found {c.not_found:3d} (cap {c.cap})  runs {c.runs.show():>14s}  "
        f"s {c.seconds.show():>16s}  fault ops {c.fault_ops.show():>14s}  "
        f"p(U<random) {_p(c):>6s}  found/run {c.found_per_run:5.3f}  "
        f"fault ops/run {c.ops_per_run:4.1f}  "
        f"run time {c.spent_seconds:7.0f} s  unknown runs {_unknown(c)}"
        for c in table
    ]


def markdown(table: Sequence[Cell]) -> str:
    """The table in Markdown (medians with the interquartile range; campaigns that found
    nothing count at the cap)."""
    lines = [
        "| bug | depth | scheduler | campaigns | not found (cap) | runs to detection | "
        "seconds to detection | fault ops to detection | one-sided U vs random, p | "
        "detections per run | fault ops per run | run time, s | unknown runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines.extend(
        f"| `{c.bug}` | {c.depth} | {c.scheduler} | {c.campaigns} | {c.not_found} "
        f"({c.cap}) | {c.runs.show()} | {c.seconds.show()} | {c.fault_ops.show()} | "
        f"{_p(c)} | {c.found_per_run:.3f} | {c.ops_per_run:.1f} | {c.spent_seconds:.0f} | "
        f"{_unknown(c)} |"
        for c in table
    )
    return "\n".join(lines) + "\n"


def labelled_path(arg: str | Path) -> tuple[str | None, Path]:
    """``LABEL=PATH`` split into its label and path; a path that exists as written (even
    with a ``=`` in it), or that has no label before a ``=``, has no label.
    :class:`InputError` for a label with no path after it."""
    text = str(arg)
    label, sep, rest = text.partition("=")
    if not sep or Path(text).exists() or not label or "/" in label:
        return None, Path(text)
    if not rest:
        raise InputError(f"{text}: no path after the label (LABEL=PATH)")
    return label, Path(rest)


#: The most runs a campaign's cap may name: more is a damaged row, not a campaign.
MAX_CAP = 100_000

#: The most characters of a row's text (``bug``, ``scheduler``, a hash, ``campaign``: the
#: path of its directory): clew's are tens of characters, a path at most PATH_MAX (4,096),
#: so a longer one is a damaged row.
MAX_ROW_TEXT = 4_096

#: The fields of a row the table and the comparison page compute with: a row read is cut
#: to these (a results file's rows may carry more, read whole by ``bench/bugs.py
#: --resume`` only), so a field the table ignores costs nothing past its file's reading.
TABLE_FIELDS = ("bug", "scheduler", "depth", "cap_runs", "runs", "runs_to_detection",
                "seconds_to_detection", "fault_ops_to_detection", "seconds", "fault_ops",
                "unknown_runs", "run_seconds", "config_hash", "experiment_hash",
                "clew_commit", "campaign", "stopped")  # fmt: skip

#: A row's fields and what each must be: (types allowed, must be ≥ 0 and finite, may be null).
_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "depth": ((int,), True), "cap_runs": ((int,), False), "runs": ((int,), True),
    "runs_to_detection": ((int,), True), "seconds_to_detection": ((int, float), True),
    "fault_ops_to_detection": ((int, float), True), "seconds": ((int, float), True),
    "fault_ops": ((int, float), True), "unknown_runs": ((int,), True),
}  # fmt: skip


def _amount(v: Any) -> bool:
    """Whether ``v`` is a finite number ≥ 0 (not a bool)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def check_row(row: Any, where: str, *, whole: bool = False) -> dict[str, Any]:
    """``row``, cut to :data:`TABLE_FIELDS` (``whole``: all its fields), if it is a
    campaign row whose fields have the types and ranges the table computes with (``bug``
    and ``scheduler`` strings; names and hashes of at most :data:`MAX_ROW_TEXT`
    characters; ``stopped``, which clew writes with an error's words, cut to that, and
    dropped if it is not a string; counts whole and ≥ 0, the cap at most
    :data:`MAX_CAP`; seconds and fault ops finite and ≥ 0; ``run_seconds`` a list of
    them, one a run: at most :data:`MAX_CAP`); else :class:`InputError` naming ``where``
    and the field."""
    if not isinstance(row, dict) or not isinstance(row.get("bug"), str) or not isinstance(
        row.get("scheduler"), str
    ):
        raise InputError(f"{where}: not a campaign row (bug and scheduler, as strings, ...)")
    for name, (types, nullable) in _FIELDS.items():
        v = row.get(name)
        if v is None and (nullable or name not in row):
            continue
        if not (isinstance(v, types) and _amount(v)):
            raise InputError(f"{where}: {name} must be a number ≥ 0, not {v!r}")
    fixed: dict[str, Any] = {}
    stopped = row.get("stopped")  # (said, not computed with: a long one is cut, not refused)
    if stopped is not None and not isinstance(stopped, str):
        fixed["stopped"] = None
    elif isinstance(stopped, str) and len(stopped) > MAX_ROW_TEXT:
        fixed["stopped"] = stopped[: MAX_ROW_TEXT - 1] + "…"
    for name in ("bug", "scheduler", "config_hash", "experiment_hash", "clew_commit",
                 "campaign"):  # fmt: skip
        v = row.get(name)
        if v is not None and not isinstance(v, str):
            raise InputError(f"{where}: {name} must be a string, not {_short(v)}")
        if isinstance(v, str) and len(v) > MAX_ROW_TEXT:
            raise InputError(f"{where}: {name} is {len(v):,} characters long, more than the "
                             f"{MAX_ROW_TEXT:,} a campaign row's may be")  # fmt: skip
    if int(row.get("cap_runs") or 0) > MAX_CAP:
        raise InputError(f"{where}: cap_runs {row['cap_runs']} is over {MAX_CAP:,}")
    seconds = row.get("run_seconds", [])
    if not isinstance(seconds, list) or not all(_amount(x) for x in seconds):
        raise InputError(f"{where}: run_seconds must be a list of seconds")
    if len(seconds) > MAX_CAP:
        raise InputError(f"{where}: run_seconds holds {len(seconds):,} runs' seconds, more "
                         f"than the {MAX_CAP:,} runs a campaign may make")  # fmt: skip
    out = row if whole else {k: row[k] for k in TABLE_FIELDS if k in row}
    return {**out, **fixed} if fixed else out


def _short(v: Any) -> str:
    """``repr(v)``, at most 80 characters of it."""
    text = repr(v)
    return text if len(text) <= 80 else f"{text[:80]}…"


def claim(path: Path, seen: set[Path]) -> Path:
    """``path``, now in ``seen`` (resolved); :class:`InputError` if it already was: its
    campaigns would count twice."""
    try:
        key = path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a loop of symbolic links
        raise InputError(f"{path}: a loop of symbolic links, not a campaign file") from None
    if key in seen:
        raise InputError(f"{path}: given twice (its campaigns would count twice)")
    seen.add(key)
    return path


def label_rows(rows: Iterable[dict[str, Any]], label: str | None) -> list[dict[str, Any]]:
    """``rows`` with their scheduler named ``scheduler (label)``: rows of one scheduler
    under different labels are different cells, not pooled (e.g. a trial against the
    version before it); unchanged for no label."""
    if label is None:
        return list(rows)
    return [{**r, "scheduler": f"{r['scheduler']} ({label})"} for r in rows]


def read_rows(paths: Iterable[str | Path], *, whole: bool = False) -> list[dict[str, Any]]:
    """The campaign rows of result files (each a JSON list of rows), each cut to the
    fields the table uses (:data:`TABLE_FIELDS`; ``whole``: all of them, for a file to be
    written again). Rows of the same (bug, scheduler) from several files are pooled into
    one cell, unless a file is given as ``LABEL=FILE`` (see :func:`label_rows`).
    :class:`InputError` naming a file that is not one."""
    rows: list[dict[str, Any]] = []
    seen: set[Path] = set()
    for arg in paths:
        label, path = labelled_path(arg)
        claim(path, seen)
        try:
            data = json.loads(read_record_text(Path(path)))
        except OSError as e:
            raise InputError(f"{path}: cannot read: {e.strerror}") from None
        except InputError:
            raise  # (it names the file and says why)
        except ValueError as e:
            raise InputError(f"{path}: not JSON: {e}") from None
        except RecursionError:
            raise InputError(f"{path}: not JSON clew reads: nested too deeply") from None
        if not isinstance(data, list):
            raise InputError(f"{path}: not a list of campaign rows (bug, scheduler, ...)")
        data = [check_row(r, f"{path}: row {i + 1}", whole=whole) for i, r in enumerate(data)]
        rows.extend(label_rows(data, label))
    return rows
