"""``clew campaign``: many short runs until the first invalid one (see :mod:`harness.campaign`)."""

from __future__ import annotations

import sys
import threading

import click

from harness.campaign import DEFAULT_BUDGET, DEFAULT_RUNS, CampaignRun, LocalExecutor, RunExecutor
from harness.campaign_interrupt import stop_on_ctrl_c
from harness.cli import FiniteFloatRange
from harness.cli_test import agent_steps_of

__all__ = ["campaign_cmd"]


def _pairs(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{what} {p!r} is not KEY=VALUE")
        out[key] = value
    return out


@click.command("campaign", short_help="Runs until the first invalid one: runs to detection.")
@click.argument("suite")
@click.option("-w", "--workload", default=None, help="The suite's workload.")
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    default=DEFAULT_RUNS,
    show_default=True,
    help="At most this many runs.",
)
@click.option(
    "--time-limit", type=float, default=10.0, show_default=True, help="Seconds of load per run."
)
@click.option(
    "--budget",
    type=FiniteFloatRange(min=0, min_open=True),
    default=DEFAULT_BUDGET,
    show_default=True,
    help="Seconds of wall time for the whole campaign; no run starts after it.",
)
@click.option("--scheduler", default=None, help="Who picks the faults (random, ...).")
@click.option("--faults", default=None, help="Fault kinds, comma separated.")
@click.option("--interval", type=float, default=None, help="Seconds each fault holds.")
@click.option("--overlap", type=click.IntRange(min=1), default=None,
              help="Faults the random scheduler may hold at once.  [default: 1]")  # fmt: skip
@click.option("--fault-ops", type=click.IntRange(min=0), default=None,
              help="Fault operations per run, for every scheduler.  [default: no cap]")  # fmt: skip
@click.option("--fault-lease", type=float, default=None,
              help="Seconds a fault outlives a dead controller before the nodes heal it "
                   "themselves.  [default: the provider's: 10; 60 on emulated VMs]")  # fmt: skip
@click.option("--agent-step", "agent_steps", multiple=True, metavar="JSON",
              help='A fault a node strikes itself in every run (repeatable), e.g. '
                   '\'{"node": "n1", "f": "start-kill", "on": {"log": "became-leader"}, '
                   '"hold": 1}\' (docs/agents.md).')  # fmt: skip
@click.option("--agent-watch", is_flag=True, default=None,
              help="Every node runs an agent in every run, watching the database's log "
                   "and striking nothing (docs/agents.md).  Needs a fault kind "
                   "(--faults).")  # fmt: skip
@click.option("--agent-journal-bytes", type=int, default=None,
              help="Bytes each node's journal (nodes/<n>/agent.jsonl) may grow to.  "
                   "[default: 4194304]")  # fmt: skip
@click.option("--agent-journal-rate", type=float, default=None,
              help="Observations each node journals per second at most.  "
                   "[default: 200]")  # fmt: skip
@click.option("--seed", type=int, default=None, help="Run i uses seed + i.")
@click.option("--nodes", type=int, default=None, help="Number of nodes.")
@click.option("--concurrency", type=int, default=None, help="Client workers.")
@click.option("--store", default=None, help="Where the campaign is stored.  [default: ./store]")
@click.option("--provider", default=None, help="Cluster provider.  [default: local]")
@click.option("--cluster-state-dir", default=None, help="Use/keep the cluster in this dir.")
@click.option(
    "-o",
    "--option",
    "opts",
    multiple=True,
    metavar="KEY=VALUE",
    help="A suite option (repeatable), e.g. -o bug=early-ack; each suite's are listed "
    "at the end of `clew test --help` (docs/options.md).",
)
@click.option("--cluster-option", "cluster_opts", multiple=True, metavar="KEY=VALUE",
              help="A cluster provider option (repeatable).")  # fmt: skip
@click.option("--dask", "dask_address", default=None, metavar="ADDRESS",
              help="Make the runs on the workers of this Dask scheduler (tcp://host:8786); "
                   "each worker brings up a local cluster of its own.")  # fmt: skip
@click.option("--dask-subnets", default=None, metavar="SUBNETS",
              help="With --dask: the /24 subnets the workers' clusters may take, comma "
                   "separated; one per worker per machine.  [default: 10.77.232.0/24 to "
                   "10.77.237.0/24]")  # fmt: skip
def campaign_cmd(
    suite: str,
    workload: str | None,
    runs: int,
    time_limit: float,
    budget: float,
    scheduler: str | None,
    faults: str | None,
    interval: float | None,
    overlap: int | None,
    fault_ops: int | None,
    fault_lease: float | None,
    agent_steps: tuple[str, ...],
    agent_watch: bool | None,
    agent_journal_bytes: int | None,
    agent_journal_rate: float | None,
    seed: int | None,
    nodes: int | None,
    concurrency: int | None,
    store: str | None,
    provider: str | None,
    cluster_state_dir: str | None,
    opts: tuple[str, ...],
    cluster_opts: tuple[str, ...],
    dask_address: str | None,
    dask_subnets: str | None,
) -> None:
    """Run SUITE again and again (run i with seed + i, one cluster reused, the database set
    up afresh each run) until a run is invalid, --runs runs were made, or --budget seconds
    are spent. Writes campaign.json (each run's seed, verdict, wall time, fault ops and
    schedule; runs and seconds to the first detection; a config hash) and report.html under
    <store>/campaigns/.

    With --dask ADDRESS the runs are made on the workers of that Dask scheduler, one at a
    time, each worker on a local cluster of its own (a subnet of --dask-subnets), brought
    up on first use and down at the end; the campaign, the learning schedulers' memory
    and the runs stay in this store (docs/campaigns.md).

    With --agent-step every run hands the nodes the same steps to strike themselves, at an
    offset or on a trigger such as the database's own log line; with --faults none the
    controller strikes nothing (docs/agents.md has an example).

    \b
    Example:
      clew campaign bugkv -o bug=early-ack -w set --faults kill --interval 1 \\
          --time-limit 6 --runs 10
    Ctrl-C stops the run in flight (its faults healed, its database torn down) and ends
    the campaign as interrupted; a second Ctrl-C abandons the run.

    Exit codes: 1 a run was invalid (found), 0 none was, 2 none was but some were
    unknown (a tainted run, whose heal left residue, is unknown) or the campaign was
    interrupted, 254 bad arguments.
    """
    from harness.campaign import run_campaign
    from harness.runner import check_before_cluster
    from harness.spec import load_spec

    spec = load_spec(
        suite=suite, workload=workload, nodes=nodes, time_limit=time_limit,
        concurrency=concurrency, seed=seed, store=store, faults=faults, scheduler=scheduler,
        interval=interval, overlap=overlap, fault_ops=fault_ops, fault_lease=fault_lease,
        agent=agent_steps_of(agent_steps), agent_watch=agent_watch,
        agent_journal_bytes=agent_journal_bytes,
        agent_journal_rate=agent_journal_rate, provider=provider,
        cluster_state_dir=cluster_state_dir,
        options=_pairs(opts, "option") or None,
        cluster_options=_pairs(cluster_opts, "cluster option") or None,
    )  # fmt: skip
    check_before_cluster(spec)  # before a dask client or a cluster pool is made

    def show(r: CampaignRun) -> None:
        verdict = r.verdict_text
        where = f" on {r.worker}" if r.worker else ""
        click.echo(f"run {r.index}: seed {r.seed}: {verdict} in {r.wall_seconds:.1f} s, "
                   f"{r.fault_ops} fault ops{where}")  # fmt: skip

    stop = threading.Event()
    made: list[RunExecutor] = []  # the executor, once there is one

    def interrupt(how: str) -> None:
        for e in made:
            e.interrupt(how)

    # Ctrl-C stops the run in flight (healed, torn down) and starts no other; twice abandons it.
    with stop_on_ctrl_c(stop, interrupt, lambda text: click.echo(text, err=True)):
        if dask_address is None:
            if dask_subnets is not None:
                raise click.UsageError("--dask-subnets is for --dask")
            made.append(LocalExecutor())
            result = run_campaign(spec, runs=runs, budget=budget, on_run=show,
                                  executor=made[0], should_stop=stop.is_set)  # fmt: skip
        else:
            from harness.campaign_dask import DaskExecutor, dask_client
            from harness.campaign_pool import DEFAULT_SUBNETS, ClusterPool, parse_subnets

            subnets = parse_subnets(dask_subnets) if dask_subnets else DEFAULT_SUBNETS
            pool = ClusterPool(subnets=subnets, nodes=spec.nodes)
            with dask_client(address=dask_address, pool=pool) as client:
                made.append(DaskExecutor(client, pool))
                result = run_campaign(spec, runs=runs, budget=budget, on_run=show,
                                      executor=made[0], should_stop=stop.is_set)  # fmt: skip
    if result.runs_to_detection:
        click.echo(f"found in run {result.runs_to_detection} after "
                   f"{result.seconds_to_detection:.1f} s")  # fmt: skip
    else:
        click.echo(f"not found: {result.stopped}")
    click.echo(f"campaign: {result.directory / 'campaign.json'}")
    click.echo(f"report: {result.directory / 'report.html'}")
    sys.exit(result.exit_code)
