"""Every command the README and the ``--help`` examples show, run as shown against real
runs (root, real local clusters: etcd and bugkv on 3 nodes, PostgreSQL on 1), so the docs
stay true.

The commands are read from README.md's ``sh`` blocks and from every command's help, not
from a list kept here. Each one is run from a scratch directory that looks like a user's
(``store/`` of real runs, a ``history.edn``, ``tests/data`` and ``docs/examples``), with
short options appended where the shown one is long (``--time-limit 3 --interval 1``; the
last value of a flag wins) and this file's cluster instead of the default one. A command
that is not run is in :data:`NOT_RUN` with the reason, and every entry there must still be
shown somewhere (no stale excuses).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from harness.cli import cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="local clusters need root"),
    pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd is not installed"),
]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: This file's clusters: etcd/bugkv/toykv (3 nodes) and PostgreSQL (1 node).
NODES = ("10.77.222.0/24", "crd-")
PG = ("10.77.224.0/24", "crp-")
SHORT = ["--time-limit", "3", "--interval", "1"]

#: Shown commands not run here, and why.
NOT_RUN = {
    "bash scripts/demo": "the 60 s demo with its own setup; `clew test etcd` is run instead",
    "bash scripts/test": "the whole test suite, which includes this test",
    ".venv/bin/pytest tests/unit -q": "part of the test suite this test belongs to",
    ".venv/bin/pytest -m golden": "part of the test suite this test belongs to",
    ".venv/bin/ruff check . && .venv/bin/mypy": "run by scripts/test before pytest (CI runs it)",
    "clew cluster up --provider static --nodes db1,admin@db2:2222,db3 --key ~/.ssh/id_ed25519":
        "needs real static hosts",
    "clew cluster up --provider podman --nodes 3 --option subnet=10.77.5.0/24": (
        "needs podman and the node image: test_containers.py brings podman clusters up"
    ),
    "clew cluster up --provider static --nodes 10.0.0.5,10.0.0.6,10.0.0.7 --user admin":
        "needs real static hosts",
    "clew cluster up --provider static --nodes-file nodes.txt --password-env CLEW_PW":
        "needs real static hosts",
    "clew cluster up --provider vagrant --nodes 3 --option box=debian/bookworm64":
        "needs vagrant",
    "clew cluster up --provider vagrant --nodes 2 --option network=bridge": (
        "two TCG VMs for minutes: test_vagrant_libvirt.py runs it with CLEW_VAGRANT_TESTS=1"
    ),
    "clew cluster up --provider docker --nodes 5 --name docker5": "needs docker",
    "clew cluster status --name docker5": "the docker cluster above",
    "clew cluster down --name docker5": "the docker cluster above",
    "clew doctor --name docker5": "the docker cluster above",
    "clew image build --vm --suite etcd": (
        "test_qemu_cluster.py builds it (minutes on a fresh machine) and boots VMs from it"
    ),
    "clew replay store/latest --cluster-state-dir /tmp/c2 --cluster-option subnet=10.77.9.0/24": (
        "a second cluster on a subnet of its own: test_cli_runs.py replays on one"
    ),
    "clew doctor --json | jq '.[] | select(.available | not)'": (
        "needs jq; `clew doctor --json` is what it reads"
    ),
}  # fmt: skip


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            cmd = re.sub(r"\s+#.*$", "", line).strip()
            if cmd:
                out.append(cmd)
    return out


def _help_commands() -> list[str]:
    """The example lines (``clew ...``) of every command's help, continuations joined."""
    out: list[str] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        ctx = click.Context(cmd, info_name=" ".join(path))
        text = cmd.get_help(ctx)
        lines = [x.strip() for x in text.splitlines()]
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("clew ") and (" " in line[5:] or line in ("clew serve",)):
                while line.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    line = line[:-1].rstrip() + " " + lines[i]
                line = re.sub(r"\s+#.*$", "", line)
                if not line.startswith("clew adds"):  # prose, not a command
                    out.append(line)
            i += 1
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):  # (loads clew's lazy commands)
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, [*path, name])

    walk(cli, ["clew"])
    return out


def shown_commands() -> list[str]:
    """Every command shown in the README and in help examples, once, in order."""
    return list(dict.fromkeys(_readme_commands() + _help_commands()))


@dataclass
class Place:
    """The scratch directory commands run in, and the clusters they use."""

    cwd: Path
    state: Path
    pg_state: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}


def _cluster_opts(flag: str, net: tuple[str, str]) -> list[str]:
    return [flag, f"subnet={net[0]}", flag, f"prefix={net[1]}"]


def _adapt(cmd: str, place: Place) -> tuple[list[str] | str, set[int]]:
    """The command as run here (argv, or a shell line for globs) and its accepted exit
    codes: 0, or also 1 where the shown command may rightly find a run or file invalid."""
    if cmd.startswith("ssh -F "):
        return ["ssh", "-F", str(place.state / "ssh_config"), "n1", "hostname"], {0}
    argv = cmd.split()
    verb = argv[1]
    ok = {0}
    if verb in ("test", "campaign"):
        pg = argv[2] == "postgres"
        argv += [*SHORT, "--cluster-state-dir", str(place.pg_state if pg else place.state)]
        argv += ["--no-progress"] if verb == "test" else ["--runs", "1"]
        if not pg:
            argv += ["--nodes", "3"]
        if "serializable_reads=true" in cmd or argv[2] == "bugkv" or verb == "campaign":
            ok = {0, 1}  # stale reads and seeded bugs are what these runs look for
        if pg and "bank" in cmd and "read-committed" in cmd:
            ok = {0, 1}  # the total may drift at read committed (docs/workloads.md)
        if "toykv.py" in cmd and "primary=true" not in cmd:
            ok = {1}  # toykv's nodes do not replicate: not linearizable, by design
    elif verb == "replay":
        argv += ["--no-progress"]
    elif verb == "cluster" and argv[2] == "up":
        argv = [a if not a.startswith("subnet=") else f"subnet={NODES[0]}" for a in argv]
        argv += ["--state-dir", str(place.state), *_cluster_opts("--option", NODES)]
    elif verb == "cluster":
        argv += ["--state-dir", str(place.state)]
    elif verb == "check":
        if "a.jsonl b.jsonl" in cmd:  # two of the user's journals: two of the runs'
            runs = sorted((place.cwd / "store" / "etcd-register").glob("2*"))
            shutil.copy(runs[0] / "history.jsonl", place.cwd / "a.jsonl")
            shutil.copy(runs[-1] / "history.jsonl", place.cwd / "b.jsonl")
        if "porcupine/kv" in cmd:
            ok = {1}  # Porcupine's kv logs include its non-linearizable "bad" ones
        if "logs/*.log" in cmd:
            ok = {0, 1}  # three of Porcupine's etcd logs stand in: not all linearizable
        if cmd.startswith("clew check") and "porcupine/jepsen" in cmd:
            # most of Porcupine's etcd histories are not linearizable, and etcd_095.log
            # is empty upstream: an error line for it, exit 254 (checked in the test)
            ok = {254}
        return cmd, ok  # through the shell: the globs expand as the user's would
    elif verb == "analyze" and argv[2] == "store/latest":
        ok = {0, 1}  # the newest run is bugkv's campaign, which may have found its bug
    elif verb == "analyze" and "mydb" in cmd:
        argv = ["clew", "analyze", "store/toykv-register/latest", "--suite", "./mydb.py"]
        ok = {1}  # ./mydb.py is toykv, not linearizable by design
    return argv, ok


def _phase(cmd: str) -> float:
    """When a command runs: clusters and runs first (a suite file's first, so that
    store/latest is a built-in suite's run, as `clew analyze store/latest` expects), then
    what reads the runs, then the cluster commands that take the cluster down (and up
    again at 5 nodes)."""
    words = cmd.split()
    if cmd.startswith(("clew doctor", "clew cluster up --nodes 3")):
        return 0
    if words[1:2] == ["test"]:
        return 1 if words[2].endswith(".py") else 1.5
    if words[1:2] == ["campaign"]:
        return 2
    if cmd.startswith(("clew cluster status", "clew cluster down")):
        return 5
    if cmd.startswith("clew cluster up"):
        return 6
    return 3 if words[1:2] != ["replay"] else 4


def _run(cmd: list[str] | str, place: Place, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=place.cwd, env=place.env(), shell=isinstance(cmd, str), text=True,
        capture_output=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    root = tmp_path_factory.mktemp("docs-commands")
    cwd = root / "work"
    (cwd / "tests" / "data").mkdir(parents=True)
    (cwd / "docs").mkdir()
    (cwd / "tests" / "data" / "porcupine").symlink_to(REPO / "tests" / "data" / "porcupine")
    shutil.copytree(REPO / "tests" / "data" / "jepsen-store", cwd / "tests/data/jepsen-store")
    (cwd / "docs" / "examples").symlink_to(REPO / "docs" / "examples")
    shutil.copy(REPO / "docs" / "examples" / "toykv.py", cwd / "mydb.py")
    shutil.copy(REPO / "tests" / "data" / "jepsen-store" / "history.edn", cwd / "history.edn")
    (cwd / "logs").mkdir()
    for f in sorted((REPO / "tests/data/porcupine/jepsen").glob("*.log"))[:3]:
        shutil.copy(f, cwd / "logs" / f.name)
    p = Place(cwd=cwd, state=root / "cluster", pg_state=root / "pg-cluster")
    up = ["clew", "cluster", "up", "--nodes", "1", "--state-dir", str(p.pg_state),
          *_cluster_opts("--option", PG)]  # fmt: skip
    proc = _run(up, p)
    assert proc.returncode == 0, proc.stderr
    try:
        yield p
    finally:
        for state in (p.pg_state, p.state):
            _run(["clew", "cluster", "down", "--state-dir", str(state)], p)
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert "crd-" not in netns and "crp-" not in netns


def test_every_not_run_entry_is_still_shown() -> None:
    shown = set(shown_commands())
    assert set(NOT_RUN) <= shown, set(NOT_RUN) - shown


def _serve(cmd: str, place: Place) -> None:
    """``clew serve`` runs until stopped: start it (port 0 for 9000, our store for the
    shown one), fetch the index and a run's history.jsonl, stop it by its PID."""
    argv = cmd.replace("/data/clew-store", "store").split()
    argv = [a if a != "9000" else "0" for a in argv]
    if "--port" not in argv:
        argv += ["--port", "0"]
    with subprocess.Popen(argv, cwd=place.cwd, env=place.env(), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:  # fmt: skip
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            url = re.search(r"http://\S+/", line)
            assert url, line
            with urllib.request.urlopen(url.group(0) + "index.html", timeout=30) as r:
                assert r.status == 200 and b"etcd-register" in r.read()
            with urllib.request.urlopen(url.group(0) + "latest/report.html", timeout=30) as r:
                assert r.status == 200
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.timeout(3600)  # some 20 runs of real clusters, a minute each on a busy machine
def test_every_shown_command_runs(place: Place) -> None:
    commands = [c for c in shown_commands() if c not in NOT_RUN]
    for prefix in ("bash ", ".venv/", "pipx "):
        assert not [c for c in commands if c.startswith(prefix)], "a new non-clew command"
    failures = []
    ran = []
    for cmd in sorted(commands, key=_phase):  # stable: shown order within a phase
        if cmd.startswith("clew serve"):
            _serve(cmd, place)
            ran.append(cmd)
            continue
        argv, ok = _adapt(cmd, place)
        t0 = time.monotonic()
        proc = _run(argv, place)
        print(f"{time.monotonic() - t0:6.1f} s  exit {proc.returncode}  {cmd}", flush=True)
        ran.append(cmd)
        if cmd.startswith("clew check") and "porcupine/jepsen" in cmd:
            errors = [x for x in proc.stdout.splitlines() if x.startswith("ERROR")]
            assert [e.split()[1] for e in errors] == [
                "tests/data/porcupine/jepsen/etcd_095.log:1:"
            ], proc.stdout[-2000:]
            assert "the file is empty" in errors[0]
        if proc.returncode not in ok or "Traceback" in proc.stderr:
            failures.append(f"{cmd}\n  ran: {argv}\n  exit {proc.returncode}\n"
                            f"  stdout: {proc.stdout[-1500:]}\n  stderr: {proc.stderr[-1500:]}")
        if cmd.startswith("clew cluster up --nodes 5"):
            # the README's ssh line and status run against it; down happens in teardown
            for after in (["ssh", "-F", str(place.state / "ssh_config"), "n1", "hostname"],
                          ["clew", "cluster", "status", "--state-dir", str(place.state)]):
                proc = _run(after, place)
                if proc.returncode != 0:
                    failures.append(f"{after} after {cmd}: {proc.stderr}")
    assert not failures, "\n\n".join(failures)
    assert len(ran) >= 30, ran
