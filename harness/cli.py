"""The ``clew`` command line.

Exit codes follow Jepsen: 0 valid, 1 invalid, 2 unknown, 254 bad arguments or input,
255 crash. With several files, the exit code is the worst over them (crash, then bad input,
then invalid, then unknown, then valid). 141 when the reader of the output went away
(``clew check … | head -1``), as for a program killed by SIGPIPE: the checks not printed
were not all done, so no verdict is claimed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import json
import logging
import math
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from checkers.linear.budget import (
    DEFAULT_COUNTEREXAMPLE_TIME_LIMIT,
    DEFAULT_MAX_BYTES,
    DEFAULT_TIME_LIMIT,
)
from checkers.result import Result
from harness.errors import ClewError, ConfigError, InputError
from harness.output_paths import check_page_path, check_writable, make_dir
from harness.sizes import parse_size, show_size
from harness.terminal import shown

__all__ = ["main"]

log = logging.getLogger("clew")

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN, EXIT_BAD_INPUT, EXIT_CRASH = 0, 1, 2, 254, 255
#: 128 + SIGPIPE: the shell's status for a program its closed output pipe stopped.
EXIT_OUTPUT_CLOSED = 141
_SEVERITY = {EXIT_VALID: 0, EXIT_UNKNOWN: 1, EXIT_INVALID: 2, EXIT_BAD_INPUT: 3, EXIT_CRASH: 4}
_MODEL_FOR_FORMAT = {"porcupine-etcd": "etcd", "porcupine-kv": "kv"}


def _worst(codes: list[int]) -> int:
    return max(codes, key=lambda c: _SEVERITY[c], default=EXIT_VALID)


class _ShownFormatter(logging.Formatter):
    """Log lines for the terminal, with control characters escaped (a warning may quote
    a stored run's text: :func:`harness.terminal.shown`)."""

    def format(self, record: logging.LogRecord) -> str:
        return shown(super().format(record))


class ByteSize(click.ParamType):
    """A size such as ``2G``, ``512M``, ``1.5g`` or a plain number of bytes, from ``min``
    to ``max`` bytes (a usage error outside them, naming the bound)."""

    name = "SIZE"

    def __init__(self, min: int = 1, max: int | None = None) -> None:
        self.min = min
        self.max = max

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            size = parse_size(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        if size < self.min:
            self.fail(f"{value!r} is below the minimum of {show_size(self.min)}", param, ctx)
        if self.max is not None and size > self.max:
            self.fail(f"{value!r} is above the maximum of {show_size(self.max)}", param, ctx)
        return size


class FiniteFloatRange(click.FloatRange):
    """:class:`click.FloatRange` that also refuses ``nan`` (which every range check lets
    through) and ``inf``/``-inf`` (``1e400`` too): a usage error naming the value."""

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


#: Subcommands defined in modules of their own, imported only when used: ``clew check``
#: need not load the runner, the nemeses and their libraries. Each with its one-line help,
#: which ``clew --help`` lists without importing them (a unit test keeps it equal to the
#: command's own).
_LAZY_COMMANDS = {
    "analyze": ("harness.cli_test:analyze_cmd", "Check a stored run again, offline."),
    "campaign": ("harness.cli_campaign:campaign_cmd",
                 "Runs until the first invalid one: runs to detection."),
    "cluster": ("harness.cli_cluster:cluster_cmd",
                "Bring a test cluster up, check it, take it down."),
    "compare": ("harness.cli_report:compare_cmd",
                "Compare campaigns' schedulers side by side (HTML)."),
    "doctor": ("harness.cli_cluster:doctor_cmd",
               "Check this machine (and a cluster) for what tests need."),
    "image": ("harness.image_cli:image_cmd",
              "Build node images for the container and qemu providers."),
    "replay": ("harness.cli_test:replay_cmd", "Run a stored run's fault schedule again."),
    "report": ("harness.cli_report:report_cmd",
               "Re-render a run's report.html (and the store index)."),
    "serve": ("harness.cli_report:serve_cmd", "Serve the store's reports over HTTP."),
    "shrink": ("harness.cli_shrink:shrink_cmd",
               "Shrink an invalid run's fault schedule (ddmin)."),
    "test": ("harness.cli_test:test_cmd", "Run a test against a real cluster."),
}  # fmt: skip


class _Group(click.Group):
    """Maps clew's errors to exit codes and one-line messages instead of tracebacks;
    loads the subcommands of :data:`_LAZY_COMMANDS` when they are first needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _LAZY_COMMANDS:
            import importlib

            module, _, attr = _LAZY_COMMANDS[cmd_name][0].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``clew --help``; the lazy commands' lines come from
        :data:`_LAZY_COMMANDS`, so listing them imports nothing (about a second)."""
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                cmd = self.commands[name]
                if cmd.hidden:
                    continue
                rows.append((name, cmd.get_short_help_str(limit=formatter.width)))
            else:
                rows.append((name, _LAZY_COMMANDS[name][1]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as e:
            if not _output_closed():
                # Another pipe or socket (a VM's monitor, an ssh child): a crash, not a
                # closed output, which Click's own handler of EPIPE would make it (exit 1).
                raise RuntimeError(f"a pipe or socket closed under clew: {e}") from e
            # Click turns it into exit 1, which here means "invalid". Nothing more can
            # be printed, and the interpreter's last flush must not complain either.
            _silence_stdout()
            sys.exit(EXIT_OUTPUT_CLOSED)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("standalone_mode", True)
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(EXIT_BAD_INPUT)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except InputError as e:  # (its text may quote a file: shown, not obeyed)
            click.echo(f"clew: {shown(str(e))}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except ClewError as e:
            click.echo(f"clew: {shown(str(e))}", err=True)
            sys.exit(EXIT_CRASH)
        except Exception as e:  # a bug: its traceback, and the crash code (1 means invalid)
            traceback.print_exc()
            click.echo(f"clew: crashed ({type(e).__name__}: {e}); this is a bug in clew, "
                       f"please report it with the traceback above", err=True)  # fmt: skip
            sys.exit(EXIT_CRASH)


def _output_closed() -> bool:
    """Whether standard output or standard error is a pipe whose reader is gone (the
    kernel reports an error condition on its write end) or a socket whose peer closed it
    (a hang-up: a socket reports no error condition then)."""
    import select
    import stat

    poll = select.poll()
    sockets = set()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
            fd = stream.fileno()
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                sockets.add(fd)
            poll.register(fd, 0)  # no events asked: only the error and hang-up conditions
    try:
        return any(ev & select.POLLERR or (fd in sockets and ev & select.POLLHUP)
                   for fd, ev in poll.poll(0))  # fmt: skip
    except OSError:
        return False


def _silence_stdout() -> None:
    """Point standard output at /dev/null (its reader is gone), where it has a file."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clew")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details to stderr.")
def cli(verbose: bool) -> None:
    """clew: test real databases for consistency, and check histories offline.

    \b
    Test a database on a local cluster while faults strike (root; `clew test --help`
    lists the built-in suites and their workloads):
      clew test etcd
      clew test etcd --time-limit 30 --faults partition,kill --seed 7
      clew test postgres --isolation read-committed
    Look at runs (store/<suite>-<workload>/<time>/, newest: store/latest):
      clew analyze store/latest
      clew report store/latest
      clew serve
    Check histories recorded by clew, Jepsen or Porcupine:
      clew check history.edn
      clew check --model etcd --time-limit 60 logs/*.log
    Convert between history formats:
      clew convert history.edn history.jsonl

    Exit codes: 0 valid, 1 invalid, 2 unknown, 254 bad input, 255 crash.
    """
    # The console shows warnings; with -v, clew's own steps too, with timestamps (libraries
    # stay at warnings: their DEBUG output would drown them). A run's clew.log gets every detail.
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    fmt = "%(levelname)s %(name)s: %(message)s"
    console.setFormatter(_ShownFormatter("%(asctime)s " + fmt if verbose else fmt))
    logging.getLogger().addHandler(console)
    logging.getLogger().setLevel(logging.WARNING)
    if verbose:
        logging.getLogger("clew").setLevel(logging.DEBUG)


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Any]:
    """A rich progress bar on stderr over ``total`` files, or a no-op."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        yield progress


@cli.command("check", short_help="Check histories: linearizable, transactional, workloads.")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "-m",
    "--model",
    default=None,
    help="register, cas-register (Knossos semantics), etcd (Porcupine's etcd model), "
    "multi-register (Knossos), kv, mutex, set or linearizable-queue (linearizability); "
    "list-append or rw-register (transactions, Elle-style, see --consistency); and the "
    "collection checkers (bank, counter, set-full, queue: Jepsen's queue checker, ... as "
    "registered). Default: etcd for Porcupine "
    "etcd logs, kv for Porcupine kv logs, else the one model that fits the operations; "
    "when none clearly fits, clew refuses and asks for --model.",
)
@click.option(
    "--initial-value",
    default=None,
    metavar="VALUE",
    help="Initial state, as JSON or EDN: a value for register / cas-register / etcd "
    "(Knossos's (cas-register 0) is --initial-value 0), a map of keys to values for "
    "multi-register and rw-register ('{\"x\": 0}' or '{:x 0}').  [default: nil]",
)
@click.option(
    "--wfr-keys",
    is_flag=True,
    help="rw-register: assume a transaction's external read of a key precedes its own "
    "later write of it (Elle's :wfr-keys?).",
)
@click.option(
    "--sequential-keys",
    is_flag=True,
    help="rw-register: assume each key's versions follow process order (Elle's :sequential-keys?).",
)
@click.option(
    "--linearizable-keys",
    is_flag=True,
    help="rw-register: assume each key's versions follow real-time order (Elle's "
    ":linearizable-keys?).",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    default="auto",
    show_default=True,
    help="auto, jsonl, json, edn, porcupine-etcd or porcupine-kv.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
@click.option(
    "--consistency",
    default=None,
    help="For transactional models (list-append, rw-register): the consistency model to "
    "check, e.g. serializable, snapshot-isolation, read-committed, strict-serializable.  "
    "[default: serializable]",
)
@click.option(
    "--time-limit",
    type=FiniteFloatRange(min=0, min_open=True),
    default=DEFAULT_TIME_LIMIT,
    show_default=True,
    help="Seconds per file before answering unknown.",
)
@click.option(
    "--max-memory",
    # Below 1M no check fits; beyond 1024T (1 PiB) no machine has the memory.
    type=ByteSize(min=1024**2, max=1024**5),
    default=DEFAULT_MAX_BYTES,
    show_default=f"{DEFAULT_MAX_BYTES // 1024**3}G",
    help="Memory budget per file (e.g. 512M, 4G; 1M to 1024T): the search cache of a "
    "linearizability check, the memory a transactional or collection check adds; "
    "beyond it: unknown.",
)
@click.option(
    "--max-steps",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Deterministic budget of search steps per file (0: none); beyond it: unknown.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads for checking partitions in parallel.  [default: min(2, CPUs)]",
)
@click.option(
    "--independent",
    is_flag=True,
    help="Split Jepsen `independent` values [key, value] into a key and its value "
    "(per-key register tests write these).",
)
@click.option(
    "--no-partition",
    is_flag=True,
    help="Check all keys in one search instead of key by key (slower; for comparison).",
)
@click.option(
    "--counterexample-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write <file>.counterexample.json here for every invalid history.",
)
@click.option(
    "--counterexample-time-limit",
    type=FiniteFloatRange(min=0, min_open=True),
    default=DEFAULT_COUNTEREXAMPLE_TIME_LIMIT,
    show_default=True,
    help="Seconds for the second pass that explains an invalid history.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a self-contained HTML report of all files here (and, for transactional "
    "anomalies, Elle's files beside it: elle/<anomaly>.txt and the cycle drawings). "
    "Never over one of the files checked, or a file that is not an HTML page.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Check on a local Dask cluster of N processes: linearizability key groups and the "
    "transactional cycle search of each component are shipped to them (same verdicts, same "
    "budgets: the time limit for the whole file, the memory budget per process).",
)
@click.option(
    "--dask",
    "dask_address",
    default=None,
    metavar="ADDRESS",
    help="Check on an existing Dask scheduler (e.g. tcp://10.0.0.5:8786) and its workers; "
    "see docs/dask.md.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar (also off when not a TTY).")
def check_cmd(
    files: tuple[str, ...],
    model: str | None,
    fmt: str,
    as_json: bool,
    time_limit: float,
    max_memory: int,
    max_steps: int,
    threads: int | None,
    independent: bool,
    no_partition: bool,
    counterexample_dir: str | None,
    counterexample_time_limit: float,
    report_path: str | None,
    no_progress: bool,
    consistency: str | None,
    initial_value: str | None,
    wfr_keys: bool,
    sequential_keys: bool,
    linearizable_keys: bool,
    workers: int | None,
    dask_address: str | None,
) -> None:
    """Check each history FILE against a model: linearizability (register, cas-register,
    etcd, multi-register, kv, mutex, set, linearizable-queue), transactional anomalies
    (list-append, rw-register) or a workload's checker (bank, counter, queue, ...).

    Prints one line per file (its verdict and why), then a total. Histories are read in
    clew's JSONL, a JSON array, Jepsen's history.edn, or Porcupine's etcd and kv logs;
    the format is detected from the content unless --format is given.

    \b
    Examples:
      clew check store/etcd-register/latest/history.jsonl
      clew check --model cas-register --time-limit 30 history.edn
      clew check --json tests/data/porcupine/kv/*.txt
      clew check --workers 2 tests/data/porcupine/kv/c50-bad.txt
    """
    from harness.formats import FORMATS

    if fmt not in FORMATS:
        choices = ", ".join(FORMATS)
        raise click.BadParameter(f"{fmt!r}; choose one of {choices}", param_hint="--format")
    options = _CheckOptions(
        model=model, fmt=fmt, as_json=as_json, time_limit=time_limit, max_memory=max_memory,
        max_steps=max_steps, threads=threads, partition=not no_partition,
        counterexample_dir=counterexample_dir,
        counterexample_time_limit=counterexample_time_limit, independent=independent,
        consistency=consistency, initial=_parse_initial(initial_value),
        txn_assumptions={"wfr_keys": wfr_keys, "sequential_keys": sequential_keys,
                         "linearizable_keys": linearizable_keys},
    )  # fmt: skip
    _check_model_options(options)  # bad names and options are bad input before any file is read
    if counterexample_dir:
        make_dir(counterexample_dir, "--counterexample-dir")
    if report_path:
        check_writable(report_path, "--report")
        check_page_path(report_path, files, "--report")
    if workers is not None and dask_address is not None:
        raise click.UsageError("give --workers or --dask, not both")

    codes: list[int] = []
    records: list[dict[str, Any]] = []
    counts = {"valid": 0, "invalid": 0, "unknown": 0, "error": 0}
    checker_seconds = 0.0
    t0 = time.perf_counter()
    show_progress = not no_progress and not as_json and sys.stderr.isatty()
    with _progress(show_progress, len(files)) as bar, _dask(workers, dask_address) as client:
        task = bar.add_task("checking", total=len(files)) if bar else None
        if bar is not None:
            bar.update(task, description="loading the checker (the first run compiles it)")
        import checkers.linear.kernel  # noqa: F401 - compiled or loaded from Numba's cache

        global _FREEZE_AT_EXIT
        _FREEZE_AT_EXIT = True

        for path in files:
            name = os.path.basename(path)
            on_progress = None
            if bar is not None:
                bar.update(task, description=f"checking {name}")

                def on_progress(done: int, total: int, name: str = name) -> None:
                    if total > 1:
                        bar.update(task, description=f"checking {name}: {done}/{total} keys")

            code, line, seconds, record = _check_one(path, options, on_progress, client)
            records.append(record)
            checker_seconds += seconds
            codes.append(code)
            counts[
                {EXIT_VALID: "valid", EXIT_INVALID: "invalid", EXIT_UNKNOWN: "unknown"}.get(
                    code, "error"
                )
            ] += 1
            if bar is not None:
                bar.console.print(line, highlight=False, markup=False, soft_wrap=True)
                bar.advance(task)
            else:
                click.echo(line)
    if report_path:
        from reports.check_report import write_check_report

        try:
            elle_dirs = write_check_report(report_path, records)
        except OSError as e:
            raise InputError(
                f"{report_path}: cannot write the report: {e.strerror or e} (--report)"
            ) from None
        if not as_json:
            click.echo(f"report: {report_path}")
            for d in elle_dirs:
                click.echo(f"elle files: {d}/")
    if not as_json and len(files) > 1:
        total = ", ".join(f"{n} {k}" for k, n in counts.items() if n or k != "error")
        click.echo(
            f"{len(files)} files: {total}; checker time {checker_seconds:.3f} s, "
            f"wall time {time.perf_counter() - t0:.2f} s"
        )
    sys.exit(_worst(codes))


@dataclass(frozen=True)
class _CheckOptions:
    """What ``clew check`` was asked to do, for every file."""

    model: str | None
    fmt: str
    as_json: bool
    time_limit: float
    max_memory: int
    max_steps: int
    threads: int | None
    partition: bool
    counterexample_dir: str | None
    counterexample_time_limit: float
    independent: bool
    consistency: str | None
    initial: Any
    txn_assumptions: dict[str, bool]


_UNSET: Any = object()


def _parse_initial(text: str | None) -> Any:
    """``--initial-value`` as a value: JSON first, else EDN; ``_UNSET`` when not given."""
    if text is None:
        return _UNSET
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    from harness.errors import HistoryError
    from harness.formats.edn import parse_line

    try:
        values = parse_line(text)
    except HistoryError as e:
        raise click.BadParameter(
            f"{text!r} is neither JSON nor EDN ({e.reason})", param_hint="--initial-value"
        ) from None
    if len(values) != 1:
        raise click.BadParameter(f"{text!r} is not one value", param_hint="--initial-value")
    return values[0]


def _model_choices() -> str:
    """Every name ``--model`` takes, by family, for messages."""
    from checkers.collections import CHECKERS
    from checkers.linear.models import MODELS

    linear = list(MODELS)
    text = f"{', '.join(linear)} (linearizability); {', '.join(_TXN_MODELS)} (transactions)"
    collections = [n for n in CHECKERS if n not in _TXN_MODELS]
    if collections:
        text += f"; {', '.join(collections)} (collections)"
    return text


def _family(model: str) -> str:
    """``txn``, ``collection`` or ``linear``: which checker a model name goes to."""
    from checkers.collections import CHECKERS

    if model in _TXN_MODELS:
        return "txn"
    if model in CHECKERS:
        return "collection"
    return "linear"


def _check_model_options(o: _CheckOptions) -> None:
    """Refuse a bad model name or an option the model does not take, before any file."""
    from checkers.linear.models import MODELS, get_model, with_initial_value

    if o.model is None:
        return
    family = _family(o.model)
    if family == "linear" and o.model not in MODELS:
        raise ConfigError(f"unknown model {o.model!r}; choose one of {_model_choices()}")
    if family == "linear" and o.initial is not _UNSET:
        with_initial_value(get_model(o.model), o.initial)
    if family == "collection" and o.initial is not _UNSET:
        raise ConfigError(f"--initial-value does not apply to model {o.model!r}")
    if family == "txn" and o.initial is not _UNSET:
        _txn_initial_state(o.model, o.initial)
    used = [f"--{k.replace('_', '-')}" for k, on in o.txn_assumptions.items() if on]
    if used and o.model != "rw-register":
        raise ConfigError(f"{', '.join(used)} only apply to --model rw-register")


def _txn_initial_state(model: str, initial: Any) -> dict[Any, Any]:
    """``--initial-value`` as an rw-register initial state (a map of keys to values)."""
    if model != "rw-register":
        raise ConfigError(f"--initial-value does not apply to model {model!r}")
    if not isinstance(initial, dict):
        raise ConfigError(
            "--initial-value for rw-register must be a map of keys to values, e.g. "
            f"'{{\"x\": 0}}' or '{{:x 0}}'; got {initial!r}"
        )
    return initial


@contextmanager
def _dask(workers: int | None, address: str | None) -> Iterator[Any]:
    """A Dask client for ``--workers`` / ``--dask``, or None when neither was given."""
    if workers is None and address is None:
        yield None
        return
    from harness.check_dask import dask_check_client

    with dask_check_client(address=address, workers=workers or 0) as client:
        yield client


def _check_one(
    path: str, o: _CheckOptions, on_progress: Any = None, client: Any = None
) -> tuple[int, str, float, dict[str, Any]]:
    """Check one file; return (exit code, line to print, checker seconds, its record).
    With a Dask ``client``, the work is shipped to its workers (:mod:`harness.check_dask`)."""
    from checkers.linear import check, resolve_model
    from harness.formats import detect_format, read_history
    from harness.read_budget import ReadBudget, ReadBudgetExceeded

    record: dict[str, Any] = {"file": path, "model": o.model}
    started = time.perf_counter()  # `seconds` covers reading and parsing too
    try:
        detected = detect_format(path) if o.fmt == "auto" else o.fmt
        budget = ReadBudget(started, o.time_limit, o.max_memory)
        history = read_history(path, detected, budget=budget)
        if o.independent:
            history = history.with_independent_keys(budget)
        model = o.model or _MODEL_FOR_FORMAT.get(detected)
        if model is None:
            from checkers.linear.models import guess_model

            model = guess_model(history, _model_choices())
            # Jepsen's queue checker covers the FIFO model too (on small histories).
            model = "queue" if model == "linearizable-queue" else model
            record["model"] = model
        family = _family(model)
        if family == "txn":
            return _check_txn(path, history, model, o, record, started, client)
        if family == "collection":
            return _check_collection(path, history, model, o, record, started)
        initial = None if o.initial is _UNSET else o.initial
        m = resolve_model(history, model, initial_value=initial)
        record["model"] = m.name
        if client is not None and o.partition:
            from harness.check_dask import check_linear_on_dask

            result = check_linear_on_dask(
                client, history, model, initial_value=initial, time_limit=o.time_limit,
                max_bytes=o.max_memory, max_steps=o.max_steps,
                counterexample_time_limit=o.counterexample_time_limit, started=started,
                progress=on_progress,
            )  # fmt: skip
        else:
            result = check(
                history, m, partition=o.partition, time_limit=o.time_limit,
                max_bytes=o.max_memory, max_steps=o.max_steps, threads=o.threads,
                counterexample_time_limit=o.counterexample_time_limit, progress=on_progress,
                started=started,
            )  # fmt: skip
    except InputError as e:
        return _bad_input(path, e, o.as_json, record)
    except ReadBudgetExceeded as e:
        return _read_unknown(path, e, o.as_json, record, time.perf_counter() - started)
    except Exception as e:  # a crash: report it, keep checking the other files
        return _crash(path, e, o.as_json, record)

    d = result.details
    cex = d.get("counterexample")
    if cex is not None and o.counterexample_dir:
        out = Path(o.counterexample_dir) / (Path(path).name + ".counterexample.json")
        try:
            out.write_text(json.dumps({"file": path, **cex}, indent=1, default=str))
        except OSError as e:
            return _bad_input(
                path,
                InputError(f"{out}: cannot write the counterexample: {e.strerror or e}"),
                o.as_json,
                record,
            )
    record.update(valid=result.valid, seconds=round(result.seconds, 6), cause=result.cause)
    record.update(ops=d["ops"], key_groups=d["partitions"])
    if o.as_json:
        line = json.dumps(record, default=str)
        if cex is not None:
            record["counterexample"] = cex
        return result.exit_code, line, result.seconds, record
    if cex is not None:
        record["counterexample"] = cex
    label = {True: "VALID", False: "INVALID", "unknown": "UNKNOWN"}[result.valid]
    groups = "key group" if d["partitions"] == 1 else "key groups"
    explained = d.get("counterexample_seconds")  # (after the verdict's time)
    line = (
        f"{label:<8} {path}  ({d['model']}, {d['ops']} ops, {d['partitions']} {groups}, "
        f"{result.seconds * 1000:.1f} ms"
        + ("" if explained is None else f", explained in {explained * 1000:.1f} ms") + ")"
    )
    if result.cause:
        line += f"\n         {result.cause}"
    return result.exit_code, line, result.seconds, record


def _read_unknown(
    path: str, e: Exception, as_json: bool, record: dict[str, Any], seconds: float
) -> tuple[int, str, float, dict[str, Any]]:
    """The result of a file whose reading ran out of time or memory: unknown, with why."""
    record.update(valid="unknown", seconds=round(seconds, 6), cause=str(e), phase="read")
    text = f"UNKNOWN  {path}  (reading, {seconds * 1000:.1f} ms)\n         {e}"
    line = json.dumps(record) if as_json else text
    return EXIT_UNKNOWN, line, seconds, record


def _bad_input(
    path: str, e: InputError, as_json: bool, record: dict[str, Any]
) -> tuple[int, str, float, dict[str, Any]]:
    """The result of a file clew cannot check: its error, always naming the file."""
    msg = str(e)
    if not msg.startswith(path):
        msg = f"{path}: {msg}"
    record.update(valid=None, error=msg)
    return EXIT_BAD_INPUT, (json.dumps(record) if as_json else f"ERROR    {msg}"), 0.0, record


def _crash(
    path: str, e: Exception, as_json: bool, record: dict[str, Any]
) -> tuple[int, str, float, dict[str, Any]]:
    """The result of a file whose check crashed (a bug in clew): its traceback on stderr."""
    log.debug("crash while checking %s", path, exc_info=True)
    msg = f"{type(e).__name__}: {e}"
    record.update(valid=None, error=f"crash: {msg}")
    if not as_json:
        traceback.print_exc(file=sys.stderr)
    line = json.dumps(record) if as_json else f"CRASH    {path}: {msg}"
    return EXIT_CRASH, line, 0.0, record


def _verdict_line(
    path: str, result: Any, what: str, record: dict[str, Any], as_json: bool
) -> tuple[int, str, float, dict[str, Any]]:
    """The printed line of a collection or transactional verdict (and its record)."""
    if as_json:
        return result.exit_code, json.dumps(record, default=str), result.seconds, record
    label = {True: "VALID", False: "INVALID", "unknown": "UNKNOWN"}[result.valid]
    line = f"{label:<8} {path}  ({what}, {result.seconds * 1000:.1f} ms)"
    if result.cause:
        line += f"\n         {result.cause}"
    return result.exit_code, line, result.seconds, record


def _naming_the_flag(result: Result) -> Result:
    """``result`` with ``; raise --time-limit`` (or ``--max-memory``) after its cause when
    it is unknown because a checker ran out of that budget."""
    spent = [u for u in result.details.get("unknown") or () if u.get("type") == "budget"
             or "resource" in u]  # fmt: skip
    if result.valid != "unknown" or not spent or "; raise --" in str(result.cause):
        return result
    flag = "--time-limit" if spent[0].get("resource") == "time" else "--max-memory"
    return dataclasses.replace(result, cause=f"{result.cause}; raise {flag}")


def _check_collection(
    path: str,
    history: Any,
    model: str,
    o: _CheckOptions,
    record: dict[str, Any],
    started: float,
) -> tuple[int, str, float, dict[str, Any]]:
    """Check one history with the collection checker registered as ``model``, within the
    file's ``--time-limit`` (from ``started``, before the file was read) and
    ``--max-memory``; its ``seconds`` run from ``started`` too."""
    from checkers.collections import check_within

    result = check_within(model, history, time_limit=o.time_limit, max_memory=o.max_memory,
                          started=started)  # fmt: skip
    result = dataclasses.replace(_naming_the_flag(result), seconds=time.perf_counter() - started)
    record.update(valid=result.valid, seconds=round(result.seconds, 6), cause=result.cause)
    record.update(ops=len(history), checker=result.checker)
    return _verdict_line(path, result, f"{model}, {len(history)} history lines", record,
                         o.as_json)  # fmt: skip


# --- transactional models (checkers.txn) ---------------------------------------------------
_TXN_MODELS = ("list-append", "rw-register")


def _check_txn(
    path: str,
    history: Any,
    model: str,
    o: _CheckOptions,
    record: dict[str, Any],
    started: float,
    client: Any = None,
) -> tuple[int, str, float, dict[str, Any]]:
    """Check one transactional history (called from :func:`_check_one`); the time limit
    and ``seconds`` run from ``started`` (before the file was read). With a Dask
    ``client``, each component's cycle search runs on its workers."""
    from checkers.txn import DEFAULT_CONSISTENCY
    from checkers.txn import check as txn_check

    unit_map = None
    if client is not None:
        from harness.check_dask import DaskUnitMap

        unit_map = DaskUnitMap(client)

    extra: dict[str, Any] = {}
    if model == "rw-register":
        extra.update(o.txn_assumptions)
        if o.initial is not _UNSET:
            extra["initial_state"] = _txn_initial_state(model, o.initial)
    result = txn_check(
        history, model, o.consistency or DEFAULT_CONSISTENCY, time_limit=o.time_limit,
        max_memory=o.max_memory, unit_map=unit_map, started=started, **extra,
    )  # fmt: skip
    result = dataclasses.replace(_naming_the_flag(result), seconds=time.perf_counter() - started)
    d = result.details
    record.update(valid=result.valid, seconds=round(result.seconds, 6), cause=result.cause)
    record.update(consistency=d["consistency"], anomalies=d["anomalies"], ops=len(history))
    record.update({"not": d.get("not", []), "also_not": d.get("also_not", [])})
    # for --report only (not printed): the anomalies with their explanations
    shown = {k: d.get(k) for k in ("anomaly_details", "anomaly_counts", "also_found", "model")}
    if o.as_json:
        line = json.dumps(record, default=str)
        return result.exit_code, line, result.seconds, {**record, **shown}
    record.update(shown)
    label = {True: "VALID", False: "INVALID", "unknown": "UNKNOWN"}[result.valid]
    n = d.get("stats", {}).get("txns")  # (none when a budget ran out before they were known)
    line = (
        f"{label:<8} {path}  ({model}, {d['consistency']}, "
        + ("" if n is None else f"{n} txns, ") + f"{result.seconds * 1000:.1f} ms)"
    )
    if result.cause:
        line += "\n         " + result.cause
    for text in d.get("explanations", [])[:1]:
        line += "\n" + "\n".join("         " + x for x in text.splitlines())
    return result.exit_code, line, result.seconds, record


@cli.command("convert", short_help="Convert a history between formats.")
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option(
    "--from",
    "src_format",
    default="auto",
    show_default=True,
    help="Format of SRC: auto, jsonl, json, edn, porcupine-etcd, porcupine-kv.",
)
@click.option(
    "--to",
    "dst_format",
    default="auto",
    show_default=True,
    help="Format of DST: jsonl, json or edn (auto: by DST's extension).",
)
def convert_cmd(src: str, dst: str, src_format: str, dst_format: str) -> None:
    """Convert the history SRC into DST, e.g. Jepsen's history.edn into clew's JSONL.

    \b
    Examples:
      clew convert history.edn history.jsonl
      clew convert --to edn tests/data/porcupine/jepsen/etcd_002.log etcd_002.edn
    """
    from harness.formats import convert

    n = convert(src, dst, src_format=src_format, dst_format=dst_format)
    # n counts history entries (invocations and completions), as `clew check` counts
    # "history lines"; "ops" means client operations elsewhere (clew test: 1573 ops).
    click.echo(f"wrote {n} history lines to {dst}")


#: Set by ``check``: the process's objects (Numba's registries are tens of thousands) need
#: no last collection when it ends, which takes a fifth of a short check's CPU time. Only
#: in the console script (:func:`main`): tests run ``check`` in one long process.
_FREEZE_AT_EXIT = False


def main() -> None:
    """Entry point of the ``clew`` console script."""
    try:
        cli.main(prog_name="clew")
    finally:
        if _FREEZE_AT_EXIT:
            gc.freeze()
        _quiet_ctrl_c_at_exit()
        if "checkers.linear.checker" in sys.modules:  # (else no check ran here)
            from checkers.linear.checker import shutdown_pools

            shutdown_pools()


def _quiet_ctrl_c_at_exit() -> None:
    """The command is done: a Ctrl-C while the interpreter exits (it joins the checker's
    worker threads, which can take a second or two) ends the process at once and quietly,
    as the signal's default does. Python's handler printed "Exception ignored in: <module
    'threading'>" and a KeyboardInterrupt traceback there, after the run's verdict."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        with contextlib.suppress(ValueError):  # (not the main thread: nothing to do)
            signal.signal(signal.SIGINT, signal.SIG_DFL)


if __name__ == "__main__":  # pragma: no cover
    main()
