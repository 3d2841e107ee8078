"""``clew report`` and ``clew serve``: HTML reports of runs, and the store over HTTP."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.cli import ByteSize, FiniteFloatRange
from harness.errors import ConfigError, InputError

__all__ = ["compare_cmd", "report_cmd", "serve_cmd"]

#: Files of which a run directory holds at least one, whatever else it lacks.
_RUN_FILES = ("history.jsonl", "results.json", "spec.json", "faults.jsonl")


#: reports.index.DEFAULT_INDEX_RUNS (not imported: the page's modules load only when used).
_INDEX_RUNS = 1000

#: ``--index-runs`` of the commands that write the store's index.
index_runs_option = click.option(
    "--index-runs", type=click.IntRange(min=0), default=_INDEX_RUNS, show_default=True,
    metavar="N",
    help="Runs the store's index.html lists, the newest (0: every run): the page says how "
         "many it left out and counts every run of each test. A run takes about 550 bytes "
         "of the page, at most about 1.6 KB (its texts are cut short).")  # fmt: skip


@click.command("report", short_help="Re-render a run's report.html (and the store index).")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--no-index", is_flag=True, help="Do not regenerate the store's index.html.")
@click.option("--max-memory", type=ByteSize(min=1024**2, max=1024**5), default="2G",
              show_default=True, metavar="SIZE",
              help="Memory that reading the run's history.jsonl may add (e.g. 512M, 8G); "
                   "a larger history is left out of the page, which says so and names the "
                   "line reading reached. For a Jepsen store not yet checked: what reading "
                   "and checking its history.edn may add (as `clew analyze --max-memory`)."
              )  # fmt: skip
@click.option("--max-ops", type=click.IntRange(min=0), default=1_000_000, show_default=True,
              metavar="N",
              help="Client ops the page's timeline embeds (the first ones; the page says "
                   "how many the run has): 1M ops make a page of about 26 MB.")  # fmt: skip
@click.option("--time-limit", type=FiniteFloatRange(min=0, min_open=True), default=300.0,
              show_default=True, metavar="SECONDS",
              help="For a Jepsen store not yet checked: seconds that reading and checking "
                   "its history.edn may take before the verdict is unknown (as `clew "
                   "analyze --time-limit`); --max-memory bounds them too.")  # fmt: skip
@index_runs_option
def report_cmd(
    run_dir: str,
    no_index: bool,
    max_memory: int,
    max_ops: int,
    time_limit: float,
    index_runs: int,
) -> None:
    """Render RUN_DIR/report.html from the files of the run (history.jsonl, results.json,
    spec.json, faults.jsonl, nodes/*/…), then the index.html of the store that holds it
    (RUN_DIR/../../index.html, listing the newest --index-runs runs) unless --no-index.
    The page shows what the run holds and says what it lacks, and what it left out: a
    history over --max-memory, ops, fault windows and log lines beyond the page's caps. A
    directory holding none of history.jsonl, results.json, spec.json and faults.jsonl is
    not a run (exit 254).

    RUN_DIR may also be a Jepsen store directory (history.edn, results.edn, node logs):
    the report goes to RUN_DIR/clew/report.html, checking the history first if
    `clew analyze` has not, or again if --time-limit or --max-memory is given (clew never
    writes into Jepsen's own files), within them: out of either, its verdict is unknown
    (exit 2 if reading the history ran out, and no report).

    \b
    Examples:
      clew report store/latest
      clew report store/etcd-register/latest
      clew report tests/data/jepsen-store
    """
    from harness.jepsen_store import check_jepsen_store, is_jepsen_store, view_dir
    from harness.read_budget import ReadBudgetExceeded
    from harness.store import check_run_dir, store_of_run
    from harness.terminal import echo_shown
    from reports.index import write_index
    from reports.run_report import write_run_report

    given = click.get_current_context().get_parameter_source
    budget_given = any(given(p) == click.core.ParameterSource.COMMANDLINE
                       for p in ("time_limit", "max_memory"))  # fmt: skip
    if is_jepsen_store(run_dir):
        view = view_dir(Path(run_dir))  # (not a link: clew writes and deletes in it)
        # checked before: rendered again, unless a budget is given (to check it again in)
        if (view / "results.json").is_file() and not budget_given:
            out = write_run_report(view, max_memory=max_memory, max_ops=max_ops)
        else:
            try:
                checked = check_jepsen_store(run_dir, time_limit=time_limit,
                                             max_memory=max_memory)  # fmt: skip
            except ConfigError as e:  # no model fits: this command has no --model to give
                raise ConfigError(f"{e} (to `clew analyze {run_dir} --model MODEL`, which "
                                  "writes the report too)") from None  # fmt: skip
            except ReadBudgetExceeded as e:  # (its message names the flag to raise)
                echo_shown(f"UNKNOWN  {run_dir}: {e}; no report written")
                sys.exit(2)
            out = checked.view / "report.html"
        click.echo(f"report: {out}")
        return

    if given("time_limit") == click.core.ParameterSource.COMMANDLINE:
        raise click.BadParameter(f"only for a Jepsen store directory, and {run_dir} is not "
                                 "one (a run's check: `clew analyze --time-limit`)",
                                 param_hint="--time-limit")  # fmt: skip
    check_run_dir(run_dir)  # (a FIFO where a Jepsen store's history.edn goes, too)
    if not any((Path(run_dir) / name).exists() for name in _RUN_FILES):
        raise InputError(f"{run_dir}: not a run directory: it holds none of "
                         f"{', '.join(_RUN_FILES)}")  # fmt: skip
    out = write_run_report(run_dir, max_memory=max_memory, max_ops=max_ops)
    click.echo(f"report: {out}")
    store = store_of_run(Path(run_dir))  # (none for a run copied out of its store)
    if not no_index and store is not None:
        try:
            click.echo(f"index: {write_index(store, index_runs)}")
        except InputError as e:  # a page that is not clew's: the report stands
            click.echo(f"index: not written: {e}")


@click.command("serve", short_help="Serve the store's reports over HTTP.")
@click.option("--store", "store", type=click.Path(file_okay=False), default="store",
              show_default=True, help="The store directory.")  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 exposes the store to the network). On a "
                   "loopback address only requests naming localhost, 127.x.x.x or [::1] "
                   "are answered.")  # fmt: skip
@click.option("--idle-timeout", type=FiniteFloatRange(min=0, min_open=True), default=60.0,
              show_default=True, metavar="SECONDS",
              help="Close a connection silent this long (a request not sent, a response "
                   "not read), or whose request is not in whole by then: each one holds a "
                   "thread.")  # fmt: skip
@click.option("--max-connections", type=click.IntRange(min=1), default=64, show_default=True,
              help="Connections served at once, each by a thread; one more is answered "
                   "503 (try again) and closed.")  # fmt: skip
@index_runs_option
def serve_cmd(
    store: str, port: int, host: str, idle_timeout: float, max_connections: int, index_runs: int
) -> None:
    """Serve the store (its index.html, every run's report.html and files) until Ctrl-C.
    Only files inside the store are served. The index is written first: it lists the
    newest --index-runs runs, and reads only the runs that changed since it was last
    written (the others' rows are kept in the store's .clew-index-cache.json).

    \b
    Examples:
      clew serve
      clew serve --store /data/clew-store --port 9000
      clew serve --index-runs 0    # the index lists every run, not the newest 1,000
    """
    from reports.index import write_index
    from reports.serve import make_server

    root = Path(store)
    if not root.is_dir():
        raise click.BadParameter(f"{store!r} is not a directory", param_hint="--store")
    write_index(root, index_runs)  # (refused over a page that is not clew's: not a store)
    try:
        server = make_server(root, host, port, idle_timeout, max_connections)
    except OSError as e:  # a host that does not resolve or is not this machine's, a port in use
        raise click.BadParameter(
            f"cannot listen on {host}:{port}: {e.strerror or e}", param_hint="'--host' / '--port'"
        ) from None
    h, p = server.server_address[:2]
    click.echo(f"serving {root.resolve()} at http://{h!s}:{p}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@click.command("compare", short_help="Compare campaigns' schedulers side by side (HTML).")
@click.argument("paths", nargs=-1)
@click.option("-o", "--out", default="compare.html", show_default=True,
              help="The page to write (never over an input, or a file that is not an "
                   "HTML page).")  # fmt: skip
def compare_cmd(paths: tuple[str, ...], out: str) -> None:
    """Compare campaigns side by side: for each experiment (the same suite, workload,
    options and run shape), the share of each scheduler's campaigns that had found the bug
    by each run, one curve per scheduler, and the table (medians with quartiles, campaigns
    that found nothing counted at the cap, a one-sided Mann-Whitney U test against
    random, detections per run).

    PATHS are campaign directories of `clew campaign` (or directories holding them;
    default: store/campaigns) or results files of bench/bugs.py (bench/results/bugs-*.json).
    Run a campaign per scheduler on the same experiment, then compare them. Campaigns of
    one scheduler pool into one curve whatever path they come from; a path given as
    LABEL=PATH keeps its own, its schedulers named "adaptive (LABEL)" (a trial against
    the version before it).

    \b
    Examples:
      clew compare store/campaigns
      clew compare store/campaigns -o campaigns.html
    """
    from harness.campaign_table import labelled_path
    from harness.output_paths import check_page_path
    from reports.campaigns import campaign_rows, write_comparison

    check_page_path(out, (labelled_path(p)[1] for p in paths), "-o")
    rows = campaign_rows(paths or ["store/campaigns"])
    click.echo(f"report: {write_comparison(rows, out)}")
