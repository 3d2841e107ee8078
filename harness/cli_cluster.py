"""``clew cluster up|status|down`` and ``clew doctor``.

Providers are imported only when a command runs (through :func:`clusters.get_provider`),
so ``clew --help`` works whatever a provider needs, and a missing one is a clear error.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from clusters.base import (
    CLUSTER_FILE,
    Capability,
    Cluster,
    ClusterSpec,
    Node,
    check_cluster_name,
    default_state_dir,
)
from harness.errors import ClusterError, ConfigError

__all__ = ["cluster_cmd", "doctor_cmd"]

#: Flags that only make sense for some providers (flag -> providers that take it).
_FLAG_PROVIDERS: dict[str, tuple[str, ...]] = {
    "--nodes-file": ("static",),
    "--port": ("static",),
    "--key": ("static",),
    "--password-env": ("static",),
    "--known-hosts": ("static",),
    "--insecure-host-keys": ("static", "docker", "podman"),
}
_OPTION_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _state_dir(name: str, state_dir: str | None) -> Path:
    return Path(state_dir) if state_dir else default_state_dir(name)


def _provider(name: str) -> Any:
    """The provider ``name``; :class:`ConfigError` for an unknown name and
    :class:`ClusterError` if its module cannot be imported."""
    from clusters import get_provider

    try:
        return get_provider(name)
    except ImportError as e:
        raise ClusterError(f"the {name} provider cannot be loaded: {e}") from None


def _parse_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key with ``-`` as ``_``, value); whole numbers become ints and
    true/false become booleans."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not _OPTION_KEY.match(key):
        raise ConfigError(f"--option {text!r}: write KEY=VALUE, e.g. --option subnet=10.77.0.0/24")
    parsed: Any = value
    if re.fullmatch(r"-?\d+", value):
        parsed = int(value)
    elif value.lower() in ("true", "false"):
        parsed = value.lower() == "true"
    return key.replace("-", "_"), parsed


def _address(n: Node) -> str:
    host = f"[{n.host}]" if ":" in n.host else n.host
    return f"{n.user}@{host}:{n.port}"


def _print_table(
    rows: Sequence[tuple[str, ...]], header: tuple[str, ...], err: bool = False
) -> None:
    """Rows as aligned columns: a rich table on a terminal, plain text otherwise."""
    stream = sys.stderr if err else sys.stdout
    if stream.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*header, box=None, pad_edge=False)
        for row in rows:
            table.add_row(*row)
        Console(stderr=err).print(table)
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)] + [row[-1]]
        click.echo("  ".join(cells).rstrip(), err=err)


def _warn_capabilities(caps: tuple[Capability, ...]) -> None:
    hk = next((c for c in caps if c.name == "host-key-check"), None)
    if hk is not None and not hk.available:
        click.echo(f"warning: {hk.detail}", err=True)


# -- clew cluster ---------------------------------------------------------------------------


@click.group("cluster", short_help="Bring a test cluster up, check it, take it down.")
def cluster_cmd() -> None:
    """Bring a cluster of nodes up, check that they answer, and take it down again.

    A cluster is saved as cluster.json in its state directory
    (~/.local/state/clew/clusters/NAME unless --state-dir is given), so `clew cluster
    status`, `clew cluster down` and `clew doctor` find it by --name alone; `clew test`
    and `clew campaign` use the cluster named default, or the one in
    --cluster-state-dir DIR.

    \b
    Providers:
      local    network namespaces on this machine, sshd in each (needs root)
      static   machines that already exist, reached over SSH
      vagrant  Debian VMs made by Vagrant
      docker   containers with sshd, made with docker (or podman)
      podman   the same, made with podman (`clew image build` makes their image)
      qemu     QEMU VMs with their own kernel and clock (`clew image build --vm`; root)

    \b
    Examples:
      clew cluster up --nodes 5                     # local namespaces n1..n5
      clew cluster up --provider static --nodes db1,admin@db2:2222,db3 --key ~/.ssh/id_ed25519
      clew cluster up --provider podman --nodes 3 --option subnet=10.77.5.0/24
      clew cluster status
      clew cluster down
    """


def _state_options(f: Any) -> Any:
    f = click.option(
        "--state-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Where the cluster's state lives.  [default: ~/.local/state/clew/clusters/NAME]",
    )(f)
    return click.option(
        "--name",
        default="default",
        show_default=True,
        callback=_check_name,
        help="The cluster's name: letters, digits, '-', '_' and '.'.",
    )(f)


def _check_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--name`` is one plain name, never a path: a usage error (exit 254) otherwise."""
    try:
        return check_cluster_name(value)
    except ConfigError as e:
        raise click.BadParameter(str(e)) from None


@cluster_cmd.command("up", short_help="Bring a cluster up and save it.")
@click.option(
    "--provider",
    default="local",
    show_default=True,
    help="local, static, vagrant, docker, podman or qemu.",
)
@click.option(
    "--nodes",
    "nodes",
    default=None,
    metavar="N|HOSTS",
    help="How many nodes (local, vagrant, docker, qemu; default 5), or for static the hosts as "
    "a comma list of [user@]host[:port].",
)
@click.option(
    "--nodes-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="static: a file with one [user@]host[:port] a line, optionally followed by "
    "name=NAME and key=PATH; # starts a comment.",
)
@_state_options
@click.option("--user", default="root", show_default=True, help="The user to log in as.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="static: SSH port.")
@click.option(
    "--key",
    type=click.Path(dir_okay=False),
    default=None,
    help="static: private key file (default: the SSH agent).",
)
@click.option(
    "--password-env",
    metavar="VAR",
    default=None,
    help="static: log in with the password in environment variable VAR (never saved).",
)
@click.option(
    "--known-hosts",
    type=click.Path(dir_okay=False),
    default=None,
    help="static: known_hosts file to verify host keys with (default: ~/.ssh/known_hosts).",
)
@click.option(
    "--insecure-host-keys",
    is_flag=True,
    help="static, docker: do not verify host keys. Only for throwaway machines.",
)
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A provider setting (repeatable), e.g. local: subnet, bridge, prefix; vagrant: "
    "box, first_ip, memory, or network=bridge (vagrant-libvirt on clew's own bridge, from "
    "`clew image build --vm --vagrant-box`; root) with subnet, prefix; "
    "docker, podman: image, engine, prefix, subnet, internal, runtime; "
    "qemu: memory, cpus, boot_timeout, saved_states, subnet, prefix (docs/vms.md).",
)
def up_cmd(
    provider: str,
    nodes: str | None,
    nodes_file: str | None,
    name: str,
    state_dir: str | None,
    user: str,
    port: int | None,
    key: str | None,
    password_env: str | None,
    known_hosts: str | None,
    insecure_host_keys: bool,
    options: tuple[str, ...],
) -> None:
    """Bring a cluster up, save it, and print its nodes and state directory.

    Running it again with the same settings returns the cluster that is up. A failed
    `up` removes what it made; `clew cluster down` removes the rest.

    \b
    Examples:
      clew cluster up --nodes 3 --option subnet=10.78.0.0/24
      clew cluster up --provider static --nodes 10.0.0.5,10.0.0.6,10.0.0.7 --user admin
      clew cluster up --provider static --nodes-file nodes.txt --password-env CLEW_PW
      clew cluster up --provider vagrant --nodes 3 --option box=debian/bookworm64
      clew cluster up --provider vagrant --nodes 2 --option network=bridge
      clew cluster up --provider docker --nodes 5 --name docker5

    \b
    The docker/podman image (default clew-node:latest, from `clew image build`) must run
    sshd in the foreground; clew gives each container its own host key and adds its own
    login key to /root/.ssh/authorized_keys.
    """
    prov = _provider(provider)  # an unknown name is bad input, before anything else
    given = {
        "--nodes-file": nodes_file,
        "--port": port,
        "--key": key,
        "--password-env": password_env,
        "--known-hosts": known_hosts,
        "--insecure-host-keys": insecure_host_keys or None,
    }
    for flag, value in given.items():
        if value is not None and provider not in _FLAG_PROVIDERS[flag]:
            takers = " or ".join(_FLAG_PROVIDERS[flag])
            raise ConfigError(f"{flag} is only for --provider {takers}, not {provider}")

    opts: dict[str, Any] = dict(_parse_option(o) for o in options)
    flag_opts: dict[str, Any] = {
        "nodes_file": nodes_file,
        "port": port,
        "key_file": key,
        "password_env": password_env,
        "known_hosts": known_hosts,
        "insecure_host_keys": insecure_host_keys or None,
    }
    count = 5
    if provider == "static":
        if nodes is not None:
            hosts = [h.strip() for h in nodes.split(",") if h.strip()]
            if not hosts or nodes.strip().isdigit():
                raise ConfigError(
                    f"--nodes {nodes!r}: with --provider static, --nodes lists the hosts, "
                    "e.g. --nodes db1,db2,admin@db3:2222"
                )
            flag_opts["hosts"] = hosts
    elif nodes is not None:
        if not nodes.strip().isdigit() or int(nodes) < 1:
            raise ConfigError(
                f"--nodes {nodes!r}: with --provider {provider}, --nodes is how many nodes "
                "(e.g. --nodes 5); to use machines that exist, use --provider static "
                "--nodes host1,host2,host3"
            )
        count = int(nodes)
    for k, v in flag_opts.items():
        if v is None:
            continue
        if k in opts:
            raise ConfigError(f"--option {k}=... repeats a flag; give it once")
        opts[k] = v
    if provider == "static":
        count = len(opts.get("hosts") or []) or count

    spec = ClusterSpec(
        provider=provider,
        nodes=count,
        name=name,
        state_dir=state_dir,
        user=user,
        options=opts,
    )
    cluster: Cluster = prov.up(spec)
    # Containers: which engine made them (--provider docker takes podman when no docker
    # daemon answers, and said only "(docker)").
    engine = cluster.extra.get("engine")
    how = f"{cluster.provider}, engine {engine}" if engine else cluster.provider
    click.echo(f"cluster {cluster.name!r} ({how}) is up with {len(cluster.nodes)} nodes:")
    _print_table([(n.name, _address(n)) for n in cluster.nodes], ("NODE", "ADDRESS"))
    click.echo(f"state: {cluster.state_dir}")
    _warn_capabilities(cluster.capabilities)


#: Seconds an SSH login to one node may take in `clew cluster status`.
LOGIN_TIMEOUT = 10.0


def _login_problems(cluster: Cluster, names: Sequence[str]) -> dict[str, str]:
    """Per node of ``names``, why an SSH login to it fails (with the key, password or
    agent and the host-key check `clew test` uses); nodes that log in are left out."""
    return {n: why for n, (why, _out) in _log_in(cluster, names).items() if why}


def _log_in(
    cluster: Cluster, names: Sequence[str], script: str | None = None
) -> dict[str, tuple[str, str]]:
    """Per node of ``names``: why an SSH login to it fails, as `clew test` makes it (``""``
    when it logs in), and what ``script`` (a shell script, if given) printed there."""
    import asyncio

    from clusters.static import with_passwords
    from harness.control.connect import connect
    from harness.errors import ClewError

    try:
        cluster = with_passwords(cluster)
    except ConfigError as e:  # --password-env's variable is not set in this shell
        return {n: (f"login not tried: {e}", "") for n in names}

    async def login(node: Node) -> tuple[str, str]:
        try:
            remote = await connect(node, retries=1, connect_timeout=LOGIN_TIMEOUT)
        except ClewError as e:
            return f"no login: {e}", ""
        try:
            if script is None:
                return "", ""
            result = await remote.run(script, sudo=True, timeout=LOGIN_TIMEOUT, check=False)
            if result.exit_status != 0:  # the script ends in `true`: sudo said no
                err = result.stderr.strip().splitlines()[-1:] or ["nothing on stderr"]
                return "", f"probe failed: as root (sudo), exit {result.exit_status}: {err[0]}"
            return "", result.stdout
        except ClewError as e:
            return "", f"probe failed: {e}"
        finally:
            await remote.close()

    async def each() -> list[tuple[str, str]]:
        nodes = [n for n in cluster.nodes if n.name in names]
        return list(await asyncio.gather(*(login(n) for n in nodes)))

    nodes = [n.name for n in cluster.nodes if n.name in names]
    return dict(zip(nodes, asyncio.run(each()), strict=True))


@cluster_cmd.command("status", short_help="Check that every node answers.")
@_state_options
def status_cmd(name: str, state_dir: str | None) -> None:
    """Print each node of the cluster and whether it answers: its SSH port, then a login
    as `clew test` would make it (key or password, host key checked).

    Exits 0 when every node is up, 1 otherwise (or when no cluster is up).

    \b
    Examples:
      clew cluster status
      clew cluster status --name docker5
    """
    sdir = _state_dir(name, state_dir)
    if not (sdir / CLUSTER_FILE).exists():
        click.echo(f"no cluster is up in {sdir}; start one with `clew cluster up`", err=True)
        sys.exit(1)
    saved = Cluster.load(sdir)
    status = _provider(saved.provider).status(sdir)
    cluster = status.cluster or saved
    click.echo(f"cluster {cluster.name!r} ({cluster.provider}), state {sdir}")
    answering = [n for n, v in status.nodes.items() if v == "up"]
    states = dict(status.nodes)
    for n, why in _login_problems(cluster, answering).items():
        states[n] = f"port answers; {why}"
    rows = [(n.name, _address(n), states.get(n.name, "unknown")) for n in cluster.nodes]
    if rows:
        _print_table(rows, ("NODE", "ADDRESS", "STATE"))
    for p in status.problems:
        click.echo(f"problem: {p}", err=True)
    _warn_capabilities(cluster.capabilities)
    if status.healthy and cluster.nodes and all(v == "up" for v in states.values()):
        click.echo(f"healthy: all {len(cluster.nodes)} nodes answer")
        return
    if not cluster.nodes:
        click.echo("not healthy: the cluster has no nodes", err=True)
        sys.exit(1)
    down = sum(1 for v in states.values() if v != "up")
    click.echo(f"not healthy: {down} of {len(cluster.nodes)} nodes do not answer or take no "
               "login", err=True)  # fmt: skip
    sys.exit(1)


@cluster_cmd.command("down", short_help="Take the cluster down (idempotent).")
@_state_options
@click.option(
    "--provider",
    default=None,
    help="Only needed to clean up after an `up` that crashed before saving anything.",
)
def down_cmd(name: str, state_dir: str | None, provider: str | None) -> None:
    """Take the cluster down and remove its state, leaving nothing behind.

    Quiet, and harmless when nothing is up (it says so on stderr: a misspelt --name takes
    nothing down). The provider is read from the saved state. Refused (exit 254) while a
    clew run is using the cluster.

    \b
    Examples:
      clew cluster down
      clew cluster down --name docker5
    """
    sdir = _state_dir(name, state_dir)
    if (sdir / CLUSTER_FILE).exists():
        provider = Cluster.load(sdir).provider
    if provider is None:
        left = sorted(p.name for p in sdir.iterdir()) if sdir.is_dir() else []
        if left:
            click.echo(f"no cluster is recorded in {sdir}, which holds {', '.join(left[:5])}; "
                       "if an `up` was killed before it saved the cluster, take down what "
                       f"it made with --provider NAME (`--state-dir {sdir} --provider "
                       "local`)", err=True)  # fmt: skip
        else:
            click.echo(f"no cluster is up in {sdir}; nothing to take down", err=True)
        return
    from clusters.in_use import cluster_in_use

    busy = ("taking it down now would break that run. Wait for it to end, or stop it "
            "(Ctrl-C) first")  # fmt: skip
    with cluster_in_use(sdir, busy=busy):
        _provider(provider).down(sdir)


# -- clew doctor ----------------------------------------------------------------------------


def _node_probe_script() -> str:
    """A read-only shell script printing one word per ingredient of faults that works on
    a node: ``nft`` and ``iptables`` (as partitions probe them), ``python3``, ``tc``."""
    from nemeses.partition_scripts import probe_script

    return (probe_script().removesuffix("true\n")
            + "command -v python3 >/dev/null 2>&1 && echo python3\n"
            + "command -v tc >/dev/null 2>&1 && echo tc\n"
            + "true\n")  # fmt: skip


def _is_node_row(name: str) -> bool:
    return name.startswith("node:")


def _node_faults_row(node: str, words: set[str]) -> Capability:
    """The ``node:<node>:faults`` row from what :func:`_node_probe_script` printed."""
    lacks = []
    if "python3" not in words:
        lacks.append("python3 (the fault guard of every run with faults needs it)")
    drivers = [d for d in ("nft", "iptables") if d in words]
    if not drivers:
        lacks.append("a working nft or iptables (partition faults)")
    found = [f"partitions via {drivers[0]}" if drivers else "",
             "python3" if "python3" in words else "",
             "tc" if "tc" in words else "no tc"]
    detail = ", ".join(x for x in found if x)
    if lacks:
        detail = f"missing: {'; '.join(lacks)}; found: {detail}"
    return Capability(name=f"node:{node}:faults", available=not lacks, detail=detail)


def _with_node_probes(cluster: Cluster, caps: list[Capability]) -> list[Capability]:
    """``caps`` with each node whose SSH port answers logged in to (its ``node:<name>``
    row says why not, if it takes no login) and probed (a ``node:<name>:faults`` row)."""
    answering = [c.name.removeprefix("node:") for c in caps if _is_node_row(c.name) and c.available]
    logins = _log_in(cluster, answering, _node_probe_script()) if answering else {}
    out: list[Capability] = []
    for c in caps:
        name = c.name.removeprefix("node:")
        if not _is_node_row(c.name) or name not in logins:
            out.append(c)
            continue
        why, printed = logins[name]
        if why:
            out.append(Capability(name=c.name, available=False, detail=f"port answers; {why}"))
            continue
        out.append(Capability(name=c.name, available=True, detail=f"{c.detail}; logs in"))
        if printed.startswith("probe failed: "):
            out.append(Capability(name=f"{c.name}:faults", available=False, detail=printed))
        else:
            out.append(_node_faults_row(name, set(printed.split())))
    return out


@click.command("doctor", short_help="Check this machine (and a cluster) for what tests need.")
@_state_options
@click.option("--json", "as_json", is_flag=True, help="Print the checks as one JSON list.")
def doctor_cmd(name: str, state_dir: str | None, as_json: bool) -> None:
    """Check this machine for what clew's tests need, and print a table of capabilities.

    Checks: root or user namespaces; ip, unshare, nft, iptables, tc, sshd, ssh, etcd;
    libfaketime; whether the kernel has netem, the iptables statistic match (packet loss)
    and a bindable NFQUEUE (packet delay), probed in a throwaway network namespace that
    vanishes with the probe; which packet faults that allows; for the qemu provider, QEMU,
    whether its VMs would use KVM or TCG (and why not KVM), and the VM image. If a cluster is up
    (see --name), also, for each node: whether its SSH port answers; whether it takes a
    login as `clew test` makes it; and, as root there (sudo), what faults need of it and
    changes nothing: python3 (the fault guard of every run with faults), nft or iptables
    working (partitions) and tc (netem's packet faults; `clew test` probes the rest).

    Exits 0 if everything the local provider needs is there (and every node of a
    cluster that is up answers, takes a login and has python3 and nft or iptables), 1
    otherwise; the last line says what is missing.

    \b
    Examples:
      clew doctor
      clew doctor --name docker5
      clew doctor --json | jq '.[] | select(.available | not)'
    """
    from clusters.doctor import missing_for_local, run_checks

    sdir = _state_dir(name, state_dir)
    nodes: tuple[Node, ...] = ()
    if (sdir / CLUSTER_FILE).exists():
        nodes = Cluster.load(sdir).nodes
    elif state_dir is not None or name != "default":  # asked for one: a misspelt --name?
        click.echo(f"no cluster is up in {sdir}; checking this machine only", err=True)
    caps = run_checks(nodes)
    if nodes:
        caps = _with_node_probes(Cluster.load(sdir), caps)
    missing = missing_for_local(caps)
    down = [c.name for c in caps if _is_node_row(c.name) and not c.available
            and not c.name.endswith(":faults")]  # fmt: skip
    lacking = [c.name.split(":")[1] for c in caps if _is_node_row(c.name) and not c.available
               and c.name.endswith(":faults")]  # fmt: skip
    if as_json:
        click.echo(json.dumps([{"name": c.name, "available": c.available,
                                "detail": c.detail} for c in caps]))  # fmt: skip
    else:
        _print_table(
            [(c.name, "yes" if c.available else "NO", c.detail) for c in caps],
            ("CHECK", "OK", "DETAIL"),
        )
        if missing:
            click.echo(f"missing for the local provider: {', '.join(missing)}")
        else:
            click.echo("this machine has everything the local provider needs")
        if down:
            click.echo(f"nodes that do not answer or take no login: {', '.join(down)}")
        if lacking:
            click.echo(f"nodes that lack what faults need: {', '.join(lacking)}")
    if missing or down or lacking:
        sys.exit(1)
