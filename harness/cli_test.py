"""``clew test`` and ``clew analyze``: run a test against a real cluster, or re-check one."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from harness.cli import ByteSize, FiniteFloatRange
from harness.cli_report import index_runs_option
from harness.errors import ClewError, ConfigError
from harness.progress import ConsoleProgress, reporting
from harness.record import read_record_text
from nemeses.kinds import names as fault_kind_names
from nemeses.scheduler import scheduler_names

__all__ = [
    "analyze_cmd",
    "builtin_suites_help",
    "cluster_options",
    "junit_xml",
    "rerun_cluster_flags",
    "test_cmd",
]

_VERDICT = {True: "VALID", False: "INVALID", "unknown": "UNKNOWN"}


def _options(pairs: tuple[str, ...], option: str = "--option") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        low = value.lower()
        parsed: Any = value
        if low in ("true", "false"):
            parsed = low == "true"
        else:
            for kind in (int, float):
                try:
                    parsed = kind(value)
                    break
                except ValueError:
                    pass
        out[key.replace("-", "_")] = parsed
    return out


def cluster_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """The ``--cluster-option KEY=VALUE`` flags as a dict (values typed as for ``-o``);
    a usage error naming the flag for a pair that is not KEY=VALUE."""
    return _options(pairs, "--cluster-option")


def rerun_cluster_flags(command: Any) -> Any:
    """Add ``--cluster-state-dir`` and ``--cluster-option`` to a command that runs a stored
    run again (``clew replay``, ``clew shrink``): the run's own cluster may be busy, gone,
    or someone else's."""
    option = click.option(
        "--cluster-option", "cluster_opts", multiple=True, metavar="KEY=VALUE",
        help="A cluster provider option (repeatable) over the run's own, e.g. "
             "subnet=10.77.5.0/24 with a --cluster-state-dir of its own. The hosts, "
             "programs and keys of a run's cluster (a static provider's hosts, a "
             "container engine or runtime, a Vagrant box) are never taken from the run: "
             "name them here "
             "again.")  # fmt: skip
    state_dir = click.option(
        "--cluster-state-dir", default=None,
        help="Run on the cluster in this state dir.  [default: the run's own, if a "
             "cluster of clew's is there or nothing is]")  # fmt: skip
    return state_dir(option(command))


def _seed_of(run_dir: Path) -> int | None:
    """The seed a run's spec.json records, or None."""
    import json

    try:
        seed = json.loads(read_record_text(run_dir / "spec.json")).get("seed")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return seed if isinstance(seed, int) else None


def junit_xml(outcomes: list[Any], name: str) -> str:
    """A JUnit XML document (built with xml.etree) of ``outcomes``: one ``testsuite``
    named ``name``, one ``testcase`` per run (``run i``) whose properties name the run
    directory, its seed and its report; an invalid run is a ``failure`` (its causes), an
    unknown one an ``error``; ``system-out`` is the run directory."""
    import xml.etree.ElementTree as ET

    from harness.record import verdict_caveats

    suite = ET.Element("testsuite", name=name, tests=str(len(outcomes)))
    failures = errors = 0
    for i, o in enumerate(outcomes, 1):
        case = ET.SubElement(
            suite, "testcase", classname=name, name=f"run {i}",
            time=f"{o.wall_seconds or 0.0:.3f}",
        )  # fmt: skip
        props = ET.SubElement(case, "properties")
        seed = _seed_of(Path(o.run_dir))
        report = Path(o.run_dir) / "report.html"
        for key, value in (
            ("run_dir", str(o.run_dir)),
            ("seed", "" if seed is None else str(seed)),
            ("report", str(report) if report.exists() else ""),
            ("ops", str(o.ops)),
        ):
            ET.SubElement(props, "property", name=key, value=value)
        if o.valid is False:
            failures += 1
            causes = "; ".join(
                str(c.get("cause")) for c in o.results.get("checkers", {}).values()
                if c.get("cause")
            )  # fmt: skip
            ET.SubElement(case, "failure", message=causes or "invalid")
        elif o.valid is not True:
            errors += 1
            why = verdict_caveats(o.results) + list(o.problems)
            ET.SubElement(case, "error", message="unknown: " + "; ".join(why))
        ET.SubElement(case, "system-out").text = str(o.run_dir)
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def _junit(path: str, outcomes: list[Any], name: str) -> None:
    Path(path).write_text(junit_xml(outcomes, name), encoding="utf-8")


def builtin_suites_help() -> str:
    """One line per built-in suite naming its workloads (its default first), read from the
    suites themselves so the help cannot drift from them."""
    from harness.suites import BUILTIN_SUITES, load_suite

    lines = []
    for name in BUILTIN_SUITES:
        suite = load_suite(name)
        others = [w for w in suite.workloads if w != suite.default_workload]
        lines.append(f"  {name}: {suite.default_workload} (default), " + ", ".join(others))
    return "\n".join(lines)


def builtin_options_help() -> str:
    """Per built-in suite, the names of the options (-o) it declares: those every workload
    reads, then each workload's own."""
    from harness.suites import BUILTIN_SUITES, load_suite

    def names(declared: Iterable[str]) -> str:
        return ", ".join(n + ("<name>" if n.endswith(".") else "") for n in sorted(declared))

    paragraphs = []
    for name in BUILTIN_SUITES:
        suite = load_suite(name)
        every = suite.options or {}
        parts = [names(every)] + [
            f"{w}: {names(own)}"
            for w in suite.workloads
            if (own := [n for n in suite.workload_options.get(w, {}) if n not in every])
        ]
        paragraphs.append(f"{name}: " + "; ".join(p for p in parts if p))
    return "\n".join(paragraphs)


class _TestCommand(click.Command):
    """``clew test``: its help ends with the built-in suites, their workloads and their
    options."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text("Built-in suites and their workloads (-w):")
        for line in builtin_suites_help().splitlines():
            formatter.write(line + "\n")
        formatter.write_paragraph()
        formatter.write_text(
            "Their options (-o NAME=VALUE), every workload's first; docs/options.md says "
            "what each sets, and a run refuses one its parts do not read:"
        )
        with formatter.indentation():
            for paragraph in builtin_options_help().splitlines():
                formatter.write_text(paragraph)
        super().format_epilog(ctx, formatter)


def agent_steps_of(flags: tuple[str, ...]) -> list[Any] | None:
    """The ``--agent-step`` flags' JSON (an object, or a list of them, per flag) as one list
    of steps, checked later with the spec (``None``: none given); :class:`ConfigError`
    naming the flag for text that is not JSON. ``clew test`` and ``clew campaign`` share
    it."""
    if not flags:
        return None
    steps: list[Any] = []
    for i, text in enumerate(flags):
        try:
            step = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"--agent-step {i + 1}: not JSON: {e}") from None
        steps.extend(step if isinstance(step, list) else [step])
    return steps


@click.command("test", cls=_TestCommand, short_help="Run a test against a real cluster.")
@click.argument("suite", default=None, required=False)
@click.option("--suite", "suite_opt", default=None, metavar="NAME|PATH",
              help="Same as the SUITE argument: a built-in suite, or a Python file.")
@click.option("-w", "--workload", default=None,
              help="The suite's workload (listed at the end of this help).  [default: the suite's]")
@click.option("--isolation", default=None,
              type=click.Choice(["serializable", "repeatable-read", "read-committed"]),
              help="Transactions' isolation level (sets the option `isolation`; postgres).")
@click.option("--spec", "spec_file", type=click.Path(dir_okay=False), default=None,
              help="A TOML test spec; flags override its fields.")  # fmt: skip
@click.option("--nodes", type=int, default=None,
              help="Number of nodes.  [default: 5; postgres: 1]")
@click.option("--time-limit", type=float, default=None, help="Seconds of load.  [default: 60]")
@click.option("--concurrency", type=int, default=None,
              help="Client workers (worker i talks to node i mod n).  [default: 2 x nodes]")
@click.option("--rate", type=float, default=None,
              help="Ops/s over all workers; 0 = as fast as they go.  [default: 0]")
@click.option("--seed", type=int, default=None, help="Seed for every random choice.")
@click.option("--store", default=None, help="Where runs are stored.  [default: ./store]")
@click.option("--faults", default=None,
              help="Fault kinds, comma separated, from: " + ", ".join(fault_kind_names())
                   + "; or none (what each does and needs: docs/faults.md, `clew doctor`). "
                   "A seeded schedule strikes one kind at a time.  [default: partition]")
@click.option("--scheduler", default=None,
              help="Who picks each fault during the run, seeing what the run observes: "
                   + "|".join(scheduler_names()) + " (random: seeded, every kind strikes "
                   "once when the time allows; replay: use `clew replay`).  [default: random]")
@click.option("--interval", type=float, default=None,
              help="Seconds each fault holds, and between faults.  [default: 10]")
@click.option("--overlap", type=click.IntRange(min=1), default=None,
              help="Faults the random scheduler may hold at once: 1, one at a time, each "
                   "healed before the next; 2 or more, each op drawn among starting any "
                   "kind and stopping an active one (docs/bugkv.md).  [default: 1]")
@click.option("--fault-ops", type=click.IntRange(min=0), default=None,
              help="Fault operations per run (starts and stops), the same budget for every "
                   "scheduler; the run's end still heals.  [default: no cap]")
@click.option("--fault-lease", type=float, default=None,
              help="Seconds a fault outlives a dead controller before the nodes heal it "
                   "themselves.  [default: the provider's: 10; 60 on emulated VMs]")
@click.option("--fault-timeout", type=float, default=None,
              help="Seconds one fault command (inject, heal, check) may take on a node, and "
                   "the fault guard's start.  [default: the provider's: 15, 120 for VMs "
                   "under software emulation]")
@click.option("--agent-step", "agent_steps", multiple=True, metavar="JSON",
              help='A fault a node strikes itself (repeatable), e.g. \'{"node": "n1", "f": '
                   '"start-kill", "on": {"log": "leader-changed"}, "hold": 2}\' or "at": 5 '
                   "(docs/agents.md).")
@click.option("--agent-watch", is_flag=True, default=None,
              help="Every node runs an agent, with or without --agent-step: it watches the "
                   "database's log and process, journals what it sees "
                   "(nodes/<n>/agent.jsonl) and strikes only what --agent-step gives it; "
                   "the adaptive scheduler then reads elections from the log "
                   "(docs/agents.md).  Needs a fault kind (--faults).")
@click.option("--agent-journal-bytes", type=int, default=None,
              help="Bytes each node's journal (nodes/<n>/agent.jsonl) may grow to.  "
                   "[default: 4194304]")
@click.option("--agent-journal-rate", type=float, default=None,
              help="Observations (log lines, process changes) each node journals per second "
                   "at most.  [default: 200]")
@click.option("--op-timeout", type=float, default=None,
              help="Seconds before an op counts as indeterminate (info).  [default: 5]")
@click.option("--provider", default=None, help="Cluster provider.  [default: local]")
@click.option("--cluster-state-dir", default=None,
              help="Use/keep the cluster in this state dir (default: clew's default cluster).")
@click.option("-o", "--option", "opts", multiple=True, metavar="KEY=VALUE",
              help="A suite option (repeatable), e.g. -o pre_vote=false; each suite's "
                   "are listed below (docs/options.md).")
@click.option("--cluster-option", "cluster_opts", multiple=True, metavar="KEY=VALUE",
              help="A cluster provider option (repeatable), e.g. subnet=10.77.5.0/24.")
@click.option("--leave-db-running", is_flag=True, default=None,
              help="Keep the database (and the cluster) up after the run.")
@click.option("--test-count", type=click.IntRange(min=1), default=1, show_default=True,
              help="Run the test this many times (a Ctrl-C stops them).")
@click.option("--junit-xml", type=click.Path(dir_okay=False), default=None,
              help="Write a JUnit XML report of the runs here (for CI systems).")
@index_runs_option
@click.option("--no-progress", is_flag=True, help="No live status line.")
def test_cmd(
    suite: str | None,
    suite_opt: str | None,
    workload: str | None,
    isolation: str | None,
    spec_file: str | None,
    nodes: int | None,
    time_limit: float | None,
    concurrency: int | None,
    rate: float | None,
    seed: int | None,
    store: str | None,
    faults: str | None,
    scheduler: str | None,
    interval: float | None,
    overlap: int | None,
    fault_ops: int | None,
    fault_lease: float | None,
    fault_timeout: float | None,
    agent_steps: tuple[str, ...],
    agent_watch: bool | None,
    agent_journal_bytes: int | None,
    agent_journal_rate: float | None,
    op_timeout: float | None,
    provider: str | None,
    cluster_state_dir: str | None,
    opts: tuple[str, ...],
    cluster_opts: tuple[str, ...],
    leave_db_running: bool | None,
    test_count: int,
    junit_xml: str | None,
    index_runs: int,
    no_progress: bool,
) -> None:
    """Run SUITE (default: etcd) against a real cluster while faults strike, then check it.

    Brings up a local cluster (or uses the one `clew cluster up` made), installs and starts
    the database on every node, drives concurrent clients while the nemesis strikes faults
    (by default a partition 10 s on, 10 s off), heals, checks the history and writes a
    report into the store (store/<suite>-<workload>/<time>/, and store/latest).

    SUITE is a built-in suite (listed below), the path of a Python file defining SUITE
    (docs/your-own-database.md), or an installed suite's name.

    \b
    Examples:
      clew test etcd
      clew test etcd --time-limit 30 --concurrency 10 --rate 200 --seed 7
      clew test etcd --workload set --faults none
      clew test etcd -w bank --faults partition,pause
      clew test etcd --faults partition,pause,kill,packet --interval 5
      clew test postgres -w list-append --isolation read-committed
      clew test bugkv -o bug=early-ack -w set --faults kill
      clew test docs/examples/toykv.py --faults none
    Exit codes: 0 valid, 1 invalid, 2 unknown (also a tainted run: a fault's residue
    was left on a node after the heal, or the heal could not be verified; and a run cut
    short by Ctrl-C or an error whose history so far shows no anomaly; and runs of
    --test-count that a Ctrl-C left unmade), 254 bad arguments, 255 crash. With
    --test-count, the worst of the runs: invalid, then unknown, then valid.
    """
    from harness.runner import RunOutcome, run_test
    from harness.spec import load_spec

    if suite and suite_opt and suite != suite_opt:
        raise click.BadParameter(f"two suites given: {suite!r} and {suite_opt!r}")
    flags = dict(
        suite=suite or suite_opt,
        workload=workload, nodes=nodes, time_limit=time_limit, concurrency=concurrency,
        rate=rate, seed=seed, store=store, faults=faults, scheduler=scheduler, interval=interval,
        overlap=overlap, fault_ops=fault_ops, fault_lease=fault_lease, op_timeout=op_timeout,
        fault_timeout=fault_timeout,
        agent=agent_steps_of(agent_steps), agent_watch=agent_watch,
        agent_journal_bytes=agent_journal_bytes,
        agent_journal_rate=agent_journal_rate, provider=provider,
        cluster_state_dir=cluster_state_dir,
        leave_db_running=leave_db_running,
        options=_options(opts) | ({"isolation": isolation} if isolation else {}) or None,
        cluster_options=_options(cluster_opts, "--cluster-option") or None,
    )  # fmt: skip
    spec = load_spec(spec_file, **flags)
    if spec_file:
        check_spec_file(spec, spec_file, flags)
    if junit_xml:
        from harness.output_paths import check_writable

        check_writable(junit_xml, "--junit-xml")  # before the runs, not after them
    outcomes: list[RunOutcome] = []
    for i in range(test_count):
        live = ConsoleProgress(not no_progress)
        if test_count > 1:
            click.echo(f"== run {i + 1} of {test_count}")
        # Each repeat gets its own seed: the given one plus i, or a fresh random one.
        run_spec = spec if spec.seed is None else dataclasses.replace(spec, seed=spec.seed + i)
        try:
            with reporting(live):
                outcome = run_test(
                    run_spec,
                    on_progress=live,
                    on_run_dir=lambda p: click.echo(f"run directory: {p}", err=True),
                    index_runs=index_runs,
                )
        except KeyboardInterrupt as e:  # before the run was recorded (it said "Aborted.")
            live.done()
            if junit_xml and outcomes:  # the runs made so far are reported all the same
                _junit(junit_xml, outcomes, outcomes[0].run_dir.parent.name)
            _stopped_before_the_run(e, i, test_count)
        except ClewError:  # (a cluster that did not come up): as for an interrupt
            live.done()
            if junit_xml and outcomes:
                _junit(junit_xml, outcomes, outcomes[0].run_dir.parent.name)
            if outcomes:
                click.echo(f"clew: {_not_made(i + 1, test_count)}", err=True)
            raise
        live.done()
        outcomes.append(outcome)
        _print_outcome(outcome)
        if run_spec.leave_db_running:
            click.echo(_left_running(run_spec))
        if outcome.interrupted and i + 1 < test_count:  # a Ctrl-C stops the command
            click.echo(f"interrupted ({outcome.interrupted}): {_not_made(i + 2, test_count)}")
            break
    if junit_xml:
        # The run directories are named for the test with its workload resolved.
        _junit(junit_xml, outcomes, outcomes[0].run_dir.parent.name)
    worst = max((o.exit_code for o in outcomes), key=lambda c: {0: 0, 2: 1, 1: 2}[c])
    # runs not made show nothing: all valid so far is not a pass of the N runs asked for
    sys.exit(2 if worst == 0 and len(outcomes) < test_count else worst)


def check_spec_file(spec: Any, spec_file: str, flags: dict[str, Any]) -> None:
    """Refuse, before any cluster comes up, what the run would refuse of ``spec`` (from
    ``spec_file`` with the ``flags`` of :func:`harness.spec.load_spec` over it): an
    unknown workload, options that no part of the run reads, a bad option value, fault
    kinds the nodes or the DB cannot have... When the file is to blame (without its
    fields the run's checks pass), the :class:`ConfigError` names it, and its
    ``[options]`` table when the options from there are (without them they pass)."""
    from harness.spec import load_spec

    try:
        _check_before_cluster(spec)
        return
    except ConfigError as e:
        error = e
    flag_options = flags.get("options") or {}
    from_file = any(k not in flag_options for k in spec.options)
    if from_file and _passes(lambda: dataclasses.replace(spec, options=flag_options)):
        raise ConfigError(f"{spec_file}: [options]: {error}") from None
    if not flags.get("suite"):  # the file names the suite: one that does not load is its
        from harness.suites import load_suite

        try:
            load_suite(spec.suite)
        except ConfigError:
            raise ConfigError(f"{spec_file}: {error}") from None
    if _passes(lambda: load_spec(None, **{**flags, "suite": flags.get("suite") or spec.suite})):
        raise ConfigError(f"{spec_file}: {error}") from None
    raise error  # the flags are (also) to blame: as the run says it


def _check_before_cluster(spec: Any) -> None:
    from harness.runner import check_before_cluster

    check_before_cluster(spec)


def _passes(make_spec: Any) -> bool:
    """Whether the spec ``make_spec()`` builds passes the checks made before a cluster."""
    try:
        _check_before_cluster(make_spec())
    except ConfigError:
        return False
    return True


def _left_running(spec: Any) -> str:
    """What --leave-db-running left up, and how to reach it and take it down."""
    from harness.runner import cluster_state_dir

    state = cluster_state_dir(spec)
    return (f"left running: the database and the cluster in {state} (ssh -F "
            f"{state / 'ssh_config'} n1 on a local cluster; `clew cluster down --state-dir "
            f"{state}` takes them down)")  # fmt: skip


def _not_made(first: int, last: int) -> str:
    """Runs ``first`` to ``last`` (numbered from 1) not made, in words: "run 3 not made"
    or "runs 3 to 5 not made"."""
    return f"run {first} not made" if first == last else f"runs {first} to {last} not made"


def _stopped_before_the_run(e: KeyboardInterrupt, i: int, test_count: int) -> None:
    """Say that the interrupt ``e`` stopped run ``i`` (from 0) of ``test_count`` before
    anything of it was recorded, and exit 130."""
    from harness.runner import interrupt_name

    left = f"; {_not_made(i + 2, test_count)}" if i + 1 < test_count else ""
    click.echo(f"clew: interrupted ({interrupt_name(e)}) before the run began: nothing of "
               "it was recorded (a cluster the run brought up itself is taken down "
               f"again){left}", err=True)  # fmt: skip
    sys.exit(130)


def _print_outcome(o: Any) -> None:
    from harness.record import verdict_caveats
    from harness.terminal import echo_shown as echo  # (a stored run's text: shown)

    checkers = o.results.get("checkers", {})
    wall = f" (wall time {o.wall_seconds:.1f} s)" if o.wall_seconds is not None else ""
    echo(f"{_VERDICT.get(o.valid, 'UNKNOWN')}  {o.ops} ops in {o.duration:.1f} s{wall}")
    for name, r in checkers.items():
        line = f"  {name}: {_VERDICT.get(r.get('valid'), '?')}"
        if r.get("cause"):
            line += f" — {r['cause']}"
        echo(line)
    for why in verdict_caveats(o.results):
        echo(f"  {why}")
    for p in o.problems:
        echo(f"  problem: {p}")
    report = o.run_dir / "report.html"
    echo(f"report: {report if report.is_file() else o.run_dir}")


_STORED_SUITE_HELP = (
    "The suite file to use, named again by you. A stored run's spec.json can name any "
    "file; clew runs only a built-in or installed suite from it, never a file, unless you "
    "give that file here."
)


@click.command("analyze", short_help="Check a stored run again, offline.")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--suite", "suite_file", default=None, metavar="FILE", help=_STORED_SUITE_HELP)
@click.option("-m", "--model", default=None,
              help="A Jepsen store's model, as `clew check --model`.  [default: the one "
                   "that fits its operations]")  # fmt: skip
@click.option("--time-limit", type=FiniteFloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS",
              help="Seconds the check may take before answering unknown: for a stored "
                   "run, its check_time_limit option instead of its own (300 s for most "
                   "workloads); for a Jepsen store, reading it and checking it.  "
                   "[default: 300 for a Jepsen store]")  # fmt: skip
@click.option("--max-memory", type=ByteSize(min=1024**2, max=1024**5), default=None,
              metavar="SIZE",  # (the bounds of `clew check --max-memory`)
              help="Memory the check may add (e.g. 512M, 4G; 1M to 1024T) before answering "
                   "unknown: "
                   "for a stored run, its check_max_memory option instead of its own; for "
                   "a Jepsen store, reading it and checking it.  [default: 2G]")  # fmt: skip
def analyze_cmd(
    run_dir: str,
    suite_file: str | None,
    model: str | None,
    time_limit: float | None,
    max_memory: int | None,
) -> None:
    """Check the stored run RUN_DIR again from its history.jsonl, without a cluster.

    RUN_DIR may also be a Jepsen store directory (history.edn, results.edn, node logs):
    clew checks its history, prints its verdict beside Jepsen's, and writes its own view
    (history.jsonl, results.json, node logs, report.html) into RUN_DIR/clew/, leaving
    Jepsen's files as they are.

    Works on the journal of a run whose controller crashed (such a run, which never
    wrote results.json, is unknown at best: exit 2 unless its history is invalid).
    Rewrites results.json (keeping the run's own record: its duration, wall time, heal
    residue and problems) and the report.

    A run directory may come from someone else: clew never executes a suite file that its
    spec.json names. Runs of a built-in suite (etcd, postgres, ...) or an installed one are
    checked as they are; for a run of a suite file, name the file yourself with
    --suite FILE (else exit 254). Exit codes as `clew test`.

    \b
    Examples:
      clew analyze store/latest
      clew analyze store/mydb-register/latest --suite ./mydb.py
      clew analyze tests/data/jepsen-store
    """
    from harness.jepsen_store import is_jepsen_store
    from harness.runner import analyze

    if is_jepsen_store(run_dir):
        _analyze_jepsen(run_dir, model, time_limit, max_memory)
        return
    if model is not None:
        why = ("it holds history.jsonl, so it is a run of clew's"
               if (Path(run_dir) / "history.jsonl").exists()
               else "it holds no history.edn file")  # fmt: skip
        raise click.BadParameter(f"only for a Jepsen store directory, and {run_dir} is not "
                                 f"one: {why}", param_hint="--model")  # fmt: skip
    outcome = analyze(run_dir, suite_file=suite_file, check_time_limit=time_limit,
                      check_max_memory=max_memory)  # fmt: skip
    _print_outcome(outcome)
    sys.exit(outcome.exit_code)


def _analyze_jepsen(
    store: str, model: str | None, time_limit: float | None, max_memory: int | None
) -> None:
    from harness.jepsen_store import DEFAULT_TIME_LIMIT, check_jepsen_store
    from harness.read_budget import ReadBudgetExceeded
    from harness.terminal import echo_shown as echo  # (a foreign store's names: shown)

    try:
        c = check_jepsen_store(
            store,
            model=model,
            time_limit=DEFAULT_TIME_LIMIT if time_limit is None else time_limit,
            max_memory=max_memory,
        )
    except ReadBudgetExceeded as e:  # (its message names the flag to raise)
        echo(f"UNKNOWN  {store}: {e}")
        sys.exit(2)
    echo(
        f"{_VERDICT.get(c.result.valid, 'UNKNOWN')}  {c.ops} ops in {c.duration:.1f} s "
        f"(Jepsen store, model {c.model})"
    )
    if c.result.cause:
        echo(f"  cause: {c.result.cause}")
    echo(f"  Jepsen's results.edn: {_VERDICT.get(c.jepsen_valid, 'none')}")
    if c.report_problem is None:
        echo(f"report: {c.view / 'report.html'}")
    else:  # (a report.html there is an earlier one's)
        echo(f"report: not written ({c.report_problem}); the results are in {c.view}")
    sys.exit(c.exit_code)


@click.command("replay", short_help="Run a stored run's fault schedule again.")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--store", default=None,
              help="Where the new run is stored.  [default: the store that holds RUN_DIR, "
                   "else ./store]")  # fmt: skip
@click.option("--suite", "suite_file", default=None, metavar="FILE", help=_STORED_SUITE_HELP)
@rerun_cluster_flags
@click.option("--no-progress", is_flag=True, help="No live progress line.")
def replay_cmd(run_dir: str, store: str | None, suite_file: str | None,
               cluster_state_dir: str | None, cluster_opts: tuple[str, ...],
               no_progress: bool) -> None:  # fmt: skip
    """Run the test stored in RUN_DIR again, with the same spec and seed, striking the
    faults its faults.jsonl records as applied, at the same offsets and on the same nodes
    (roles such as the leader as they were resolved then).

    The new run's spec.json names the run it replays (`replay_of`) and its faults.jsonl
    marks every fault `"source": "replay"`. A real cluster replays the schedule, not the
    interleaving: compare the verdicts over a few replays. As with `clew analyze`, a run of
    a suite file needs --suite FILE: clew never executes a file a stored run names.
    It runs on the run's own cluster unless --cluster-state-dir names another (with
    --cluster-option, e.g. a subnet of its own); nor does a stored run choose the hosts,
    programs or keys of the cluster (a run on static hosts needs --cluster-option
    hosts=... again). Exit codes as `clew test`.

    \b
    Examples:
      clew replay store/etcd-register/latest
      clew replay store/latest --cluster-state-dir /tmp/c2 --cluster-option subnet=10.77.9.0/24
    """
    from harness.runner import replay_run

    live = ConsoleProgress(not no_progress)
    with reporting(live):
        outcome = replay_run(
            run_dir,
            store=store,
            suite_file=suite_file,
            cluster_state_dir=cluster_state_dir,
            cluster_options=cluster_options(cluster_opts),
            on_progress=live,
            on_run_dir=lambda p: click.echo(f"run directory: {p}", err=True),
        )
    live.done()
    _print_outcome(outcome)
    sys.exit(outcome.exit_code)
