"""Campaigns: many short runs against one cluster until the first invalid run, or a cap.

A campaign measures how soon a way of choosing faults finds a bug: it runs the same test
spec again and again (run ``i`` with seed ``seed + i``; the cluster is brought up once and
reused, the database set up afresh by every run) until a run is **invalid**, ``runs`` runs
have been made, or the next run would start after ``budget`` seconds of wall time. It
records, for every run, its seed, verdict, wall time, the fault ops it used and its
schedule, and for the campaign the runs and seconds to the first detection (``None`` when
nothing was found within the caps), with a **config hash** of everything that defines the
experiment (suite, workload, options, scheduler, fault kinds, interval, run length, nodes,
concurrency), so that rows gathered in different sittings can be added up only when they
measured the same thing.

Output, in ``<store>/campaigns/<test name>/<timestamp>/``: ``campaign.json`` and
``report.html`` (the table, a plot of cumulative detections against runs, links to each
run's own report). The runs themselves are stored under ``runs/`` there.

Where runs are made is a :class:`RunExecutor`: here on one local cluster
(:class:`LocalExecutor`, the default) or on Dask workers that each own a cluster
(:class:`harness.campaign_dask.DaskExecutor`); either way the campaign, its counting and
its files stay in this process (``docs/campaigns.md``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import html
import json
import logging
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from clusters import Cluster, ClusterSpec, get_provider
from clusters.in_use import cluster_in_use
from harness.errors import ClusterError, ConfigError, InputError, NemesisError
from harness.runner import (
    RunOutcome,
    check_before_cluster,
    cluster_state_dir,
    interrupt_runs,
    run_test,
)
from harness.spec import TestSpec

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_RETRIES",
    "DEFAULT_RUNS",
    "INTERRUPTED",
    "CampaignResult",
    "CampaignRun",
    "LocalExecutor",
    "RunExecutor",
    "config_hash",
    "experiment_hash",
    "run_campaign",
    "write_report",
]

log = logging.getLogger("clew.campaign")

#: Runs a campaign makes at most, unless told otherwise.
DEFAULT_RUNS = 20
#: Seconds of wall time after which a campaign starts no further run.
DEFAULT_BUDGET = 600.0
#: ``stopped`` of a campaign ended by ``should_stop`` (it measured nothing).
INTERRUPTED = "interrupted"
#: Times a run that could not be made (cluster trouble, not a verdict) is tried again.
DEFAULT_RETRIES = 2

#: The spec fields that define the experiment (the config hash covers exactly these).
_CONFIG_FIELDS = ("suite", "workload", "options", "scheduler", "faults", "interval",
                  "overlap", "fault_ops", "time_limit", "recovery_time", "nodes",
                  "concurrency", "rate", "provider")  # fmt: skip


def experiment_config(spec: TestSpec, *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """What defines a campaign's experiment (not its seed or store): every config field
    but ``without``, the agent steps when the spec has any, and ``agent_watch`` when set."""
    data = spec.to_json()
    config = {k: data.get(k) for k in _CONFIG_FIELDS if k not in without}
    if data.get("agent"):  # faults nodes strike themselves (left out when none: old hashes hold)
        config["agent"] = data["agent"]
    if data.get("agent_watch"):
        config["agent_watch"] = True
    return config


def config_hash(spec: TestSpec, *, without: tuple[str, ...] = ()) -> str:
    """A short hash of :func:`experiment_config` (every config field but ``without``)."""
    text = json.dumps(experiment_config(spec, without=without), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def experiment_hash(spec: TestSpec) -> str:
    """The config hash without the scheduler: campaigns of different schedulers with
    equal experiment hashes measured the same thing (same bug, run shape and budget)."""
    return config_hash(spec, without=("scheduler",))


def clew_commit() -> str | None:
    """The git commit clew runs from, if it is a git checkout, with ``-dirty`` appended
    when its tracked files differ from that commit (a campaign of modified code is not
    that commit's)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=10)  # fmt: skip
        if out.returncode != 0 or not out.stdout.strip():
            return None
        commit = out.stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                 "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)  # fmt: skip
        return commit + ("-dirty" if status.returncode != 0 or status.stdout.strip() else "")
    return None


@dataclass(slots=True)
class CampaignRun:
    """One run of a campaign."""

    index: int
    seed: int
    run_dir: str
    valid: Any
    wall_seconds: float
    fault_ops: int
    schedule: list[dict[str, Any]]
    #: Where the run was made (a Dask worker's address), ``None`` for this process.
    worker: str | None = None
    #: The heal left residue (or could not be verified): the run's verdict is "unknown".
    tainted: bool = False

    @property
    def verdict_text(self) -> str:
        """The verdict in a word: valid, INVALID, unknown or "unknown (tainted)"."""
        word = {True: "valid", False: "INVALID"}.get(self.valid, "unknown")
        return f"{word} (tainted)" if self.tainted else word


@dataclass(slots=True)
class CampaignResult:
    """A campaign: its runs and when (if) it first found an invalid run."""

    directory: Path
    config: dict[str, Any]
    config_hash: str
    experiment_hash: str = ""
    runs: list[CampaignRun] = field(default_factory=list)
    runs_to_detection: int | None = None
    seconds_to_detection: float | None = None
    stopped: str = ""
    caps: dict[str, Any] = field(default_factory=dict)
    commit: str | None = None

    @property
    def exit_code(self) -> int:
        """1 if a run was invalid (found), 2 if none was but some were unknown (or
        tainted) or the campaign was interrupted, else 0."""
        if self.runs_to_detection is not None:
            return 1
        if self.stopped == INTERRUPTED:
            return 2
        return 2 if any(r.valid is not True or r.tainted for r in self.runs) else 0

    def to_json(self) -> dict[str, Any]:
        """``campaign.json``'s content: the caps, and what was spent (runs, seconds of
        wall time, fault ops) until the first detection (``None`` when nothing was found)
        and in all."""
        return {
            "config": self.config, "config_hash": self.config_hash,
            "experiment_hash": self.experiment_hash, "clew_commit": self.commit,
            "caps": self.caps, "stopped": self.stopped,
            "runs_to_detection": self.runs_to_detection,
            "seconds_to_detection": self.seconds_to_detection,
            "fault_ops_to_detection": self.fault_ops if self.runs_to_detection else None,
            "runs_made": len(self.runs), "seconds_spent": self.seconds,
            "fault_ops_spent": self.fault_ops,
            "runs": [dataclasses.asdict(r) for r in self.runs],
        }  # fmt: skip

    @property
    def seconds(self) -> float:
        """Wall seconds of the runs made."""
        return round(sum(r.wall_seconds for r in self.runs), 3)

    @property
    def fault_ops(self) -> int:
        """Fault ops of the runs made."""
        return sum(r.fault_ops for r in self.runs)


def _schedule_of(run_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """The fault ops a run carried out and their number, from its ledger: the controller's
    planned ops that were applied or healed, and what node agents struck and healed (those
    steps carry ``"source": "agent"`` and the node)."""
    steps: list[dict[str, Any]] = []
    path = run_dir / "faults.jsonl"
    if not path.exists():
        return steps, 0
    intents: dict[int, dict[str, Any]] = {}
    with open(path, encoding="utf-8", errors="replace") as lines:  # line by line: no cap
        for line in lines:
            _schedule_step(line, intents, steps)
    return steps, len(steps)


def _schedule_step(line: str, intents: dict[int, dict[str, Any]],
                   steps: list[dict[str, Any]]) -> None:  # fmt: skip
    """Add to ``steps`` what the ledger line ``line`` says was carried out (see
    :func:`_schedule_of`); a line that is not a ledger record is skipped."""
    with contextlib.suppress(ValueError, TypeError, OverflowError, RecursionError):
        r = json.loads(line)
        if not isinstance(r, dict):
            return
        if r.get("source") == "agent" and r.get("event") in ("applied", "healed"):
            steps.append({"at": round(int(r.get("time", 0)) / 1e9, 3), "f": r.get("f"),
                          "value": r.get("value"), "source": "agent",
                          "node": r.get("node")})  # fmt: skip
        elif r.get("event") == "intent" and "at" in r:
            intents[int(r["seq"])] = r
        elif r.get("event") in ("applied", "healed"):
            i = intents.pop(int(r.get("seq", -1)), None)
            if i is not None:
                steps.append({"at": i["at"], "f": i["f"], "value": r.get("value")})


class RunExecutor(Protocol):
    """Where a campaign's runs are made: :meth:`session` holds what the runs share (a
    cluster here, a Dask client's workers elsewhere) for the campaign's length and yields
    the function that makes one run of a spec and returns its outcome, its run directory
    in ``spec.store``."""

    def session(self, spec: TestSpec) -> contextlib.AbstractContextManager[RunFn]:
        """Hold the campaign's resources while the block lasts; yield the run function."""
        ...

    def interrupt(self, how: str = "Ctrl-C") -> None:
        """Stop the runs in flight as a first Ctrl-C stops a run (healed, torn down,
        returned as interrupted by ``how``: ``"Ctrl-C"`` or ``"SIGTERM"``); callable from
        any thread, and again."""
        ...


#: Makes one run of a spec; what :meth:`RunExecutor.session` yields.
RunFn = Callable[[TestSpec], RunOutcome]


@dataclass(slots=True)
class LocalExecutor:
    """Runs in this process, on one cluster: the one up in the spec's state dir if it is
    healthy, else one brought up for the campaign and taken down at its end."""

    run: RunFn = run_test

    def interrupt(self, how: str = "Ctrl-C") -> None:
        """Stop the runs in flight in this process (:func:`harness.runner.interrupt_runs`)."""
        interrupt_runs(how)

    @contextlib.contextmanager
    def session(self, spec: TestSpec) -> Iterator[RunFn]:
        """The cluster for the campaign (see the class docstring) while the block lasts,
        held for all its runs (:func:`clusters.in_use.cluster_in_use`): no other run
        starts on it between two of them."""
        state = cluster_state_dir(spec)
        with cluster_in_use(state):
            yield from self._session(spec, state)

    def _session(self, spec: TestSpec, state: Path) -> Iterator[RunFn]:
        provider = get_provider(spec.provider)
        made = True
        with contextlib.suppress(ClusterError):
            existing = Cluster.load(state)
            if len(existing.nodes) == spec.nodes and provider.status(state).healthy:
                made = False
        if made:
            provider.up(ClusterSpec(provider=spec.provider, nodes=spec.nodes,
                                    state_dir=str(state),
                                    options=dict(spec.cluster_options)))  # fmt: skip
        try:
            yield lambda s: self.run(dataclasses.replace(s, cluster_state_dir=str(state)))
        finally:
            if made and not spec.leave_db_running:
                with contextlib.suppress(Exception):
                    provider.down(state)


def _campaign_dir(store: str, test: str) -> Path:
    """A new directory ``<store>/campaigns/<test>/<time>[-n]`` (campaigns started in the
    same second, in parallel, get one each)."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    base = Path(store) / "campaigns" / test
    base.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        path = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


def run_campaign(
    spec: TestSpec,
    *,
    runs: int = DEFAULT_RUNS,
    budget: float = DEFAULT_BUDGET,
    on_run: Callable[[CampaignRun], None] | None = None,
    executor: RunExecutor | None = None,
    retries: int = DEFAULT_RETRIES,
    should_stop: Callable[[], bool] | None = None,
) -> CampaignResult:
    """Run ``spec`` (seed ``spec.seed + i`` for run ``i``) until an invalid run, ``runs``
    runs, or ``budget`` seconds (no run starts after it); write ``campaign.json`` and the
    report; return the result. Runs are made by ``executor`` (default: here, on one local
    cluster, :class:`LocalExecutor`); whichever makes them, they land in this campaign's
    directory and are counted the same way. A run that could not be made (a
    :class:`ClusterError` or :class:`NemesisError` before a verdict: the database or a
    fault kind's setup timed out on a loaded machine) is tried again with the same seed,
    at most ``retries`` times; it is not a verdict. ``should_stop`` (asked before each
    run, and after it: that run was cut short unless it was invalid) ends the campaign
    early, as ``interrupted``: it then measured nothing (also when a run raised once
    ``should_stop`` said so)."""
    if runs < 1:
        raise ConfigError(f"a campaign needs at least one run, got --runs {runs}")
    if not budget > 0:
        raise ConfigError(f"the campaign budget must be positive seconds, got {budget}")
    check_before_cluster(spec)  # a partition on 1 node, a typo in -o: before any directory
    spec = spec.with_seed()
    assert spec.seed is not None
    directory = _campaign_dir(spec.store, spec.test_name)
    base = dataclasses.replace(spec, store=str(directory / "runs"))
    result = CampaignResult(
        directory=directory,
        config=experiment_config(spec),
        config_hash=config_hash(spec),
        experiment_hash=experiment_hash(spec),
        caps={"runs": runs, "budget_seconds": budget, "time_limit": spec.time_limit},
        commit=clew_commit(),
    )
    t0 = time.monotonic()
    try:
        with (executor or LocalExecutor()).session(spec) as run:
            for i in range(runs):
                if time.monotonic() - t0 >= budget:
                    result.stopped = f"budget of {budget:g} s spent"
                    break
                if should_stop is not None and should_stop():
                    result.stopped = INTERRUPTED
                    break
                outcome = _made(run, dataclasses.replace(base, seed=spec.seed + i), retries)
                r = _campaign_run(i, spec.seed + i, outcome, directory)
                result.runs.append(r)
                if on_run:
                    on_run(r)
                if outcome.valid is False:
                    result.runs_to_detection = i + 1
                    result.seconds_to_detection = result.seconds
                    result.stopped = f"run {i + 1} is invalid"
                    break
                if should_stop is not None and should_stop():  # this run was cut short
                    result.stopped = INTERRUPTED
                    break
            else:
                result.stopped = f"cap of {runs} runs reached"
    except BaseException as e:
        if not result.stopped:
            stopping = should_stop is not None and should_stop()
            result.stopped = INTERRUPTED if stopping else f"stopped by an error: {_why(e)}"
        raise
    finally:
        (directory / "campaign.json").write_text(json.dumps(result.to_json(), indent=1) + "\n")
        write_report(result)
    return result


def _why(e: BaseException) -> str:
    """What stopped a campaign, for campaign.json: the error's message (its type when it
    has none, as a bare Ctrl-C)."""
    return str(e) or type(e).__name__


def _made(run: RunFn, spec: TestSpec, retries: int) -> RunOutcome:
    """``run(spec)``, tried again (same seed) when it raises a :class:`ClusterError` or
    :class:`NemesisError` (the run could not be made: no verdict); bad input is not
    retried (a :class:`ClusterError` that is also an :class:`InputError`, as a state
    directory holding another cluster, is the person's to fix)."""
    for attempt in range(retries + 1):
        try:
            return run(spec)
        except (ClusterError, NemesisError) as e:
            if attempt == retries or isinstance(e, InputError):
                raise
            log.warning("run with seed %s could not be made (%s); trying again", spec.seed, e)
    raise AssertionError("unreachable")


def _campaign_run(i: int, seed: int, outcome: RunOutcome, directory: Path) -> CampaignRun:
    """Run ``i`` (0-based) of a campaign as recorded in ``campaign.json``."""
    steps, ops = _schedule_of(outcome.run_dir)
    run_dir = outcome.run_dir
    return CampaignRun(
        index=i + 1, seed=seed,
        run_dir=str(run_dir.relative_to(directory) if run_dir.is_relative_to(directory)
                    else run_dir),
        valid=outcome.valid, wall_seconds=round(outcome.wall_seconds or 0.0, 3),
        fault_ops=ops, schedule=steps, worker=outcome.results.get("worker"),
        tainted=bool(outcome.results.get("tainted")),
    )  # fmt: skip


def _plot(result: CampaignResult) -> str:
    """An inline SVG: cumulative detections (invalid runs) against runs."""
    n = max(1, len(result.runs))
    w, h, pad = 480, 200, 36
    points, found = [(0, 0)], 0
    for r in result.runs:
        found += r.valid is False
        points.append((r.index, found))
    top = max(1, found)

    def xy(run: int, k: int) -> tuple[float, float]:
        return pad + (w - 2 * pad) * run / n, h - pad - (h - 2 * pad) * k / top

    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}"
                    for i, (x, y) in enumerate(xy(a, b) for a, b in points))  # fmt: skip
    scheduler = html.escape(str(result.config.get("scheduler")))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="cumulative detections against runs">'
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#888"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#888"/>'
        f'<path d="{path}" fill="none" stroke="#c0392b" stroke-width="2"/>'
        f'<text x="{w / 2}" y="{h - 6}" text-anchor="middle" font-size="12">runs ({n})</text>'
        f'<text x="10" y="{pad - 10}" font-size="12">detections ({found}) — {scheduler}</text>'
        "</svg>"
    )


def write_report(result: CampaignResult) -> Path:
    """``report.html`` of a campaign: the summary, the plot and the table of runs."""
    e = html.escape
    rows = []
    for r in result.runs:
        verdict = r.verdict_text
        link = Path(r.run_dir) / "report.html"
        rows.append(
            f"<tr><td>{r.index}</td><td>{r.seed}</td>"
            f"<td class='{verdict.split()[0].lower()}'>{e(verdict)}"
            f"</td><td>{r.wall_seconds:.1f}</td><td>{r.fault_ops}</td>"
            f"<td><a href='{e(str(link))}'>{e(r.run_dir)}</a></td></tr>"
        )
    found = (f"found in run {result.runs_to_detection}, after {result.seconds_to_detection} s"
             if result.runs_to_detection else "not found")  # fmt: skip
    config = e(json.dumps(result.config, sort_keys=True))
    page = f"""<!doctype html>
<html lang="en" data-rendered="ok" data-errors="0"><head><meta charset="utf-8">
<title>clew campaign {e(result.config_hash)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 8px}}
.invalid{{color:#c0392b;font-weight:bold}} .valid{{color:#27ae60}}</style></head>
<body><h1>Campaign: {e(str(result.config.get("suite")))} / {e(str(result.config.get("workload")))}</h1>
<p><b>{e(found)}</b>; stopped: {e(result.stopped)}. Config hash
<code>{e(result.config_hash)}</code>, clew {e(str(result.commit))}.</p>
<p><code>{config}</code></p>
{_plot(result)}
<table><thead><tr><th>run</th><th>seed</th><th>verdict</th><th>wall s</th>
<th>fault ops</th><th>run</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table></body></html>
"""  # noqa: E501
    path = result.directory / "report.html"
    path.write_text(page)
    return path
