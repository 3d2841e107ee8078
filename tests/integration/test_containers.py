"""The podman and docker providers against real engines, through clew's own commands.

A node image is built once per session from Debian's archive (``clew image build``) into the
image cache (``$CLEW_IMAGE_CACHE`` or ``~/.cache/clew/images``) and reused: on a machine
that has it, the build is only an import, or nothing. Docker runs only under a ``dockerd``
this module starts itself (``--bridge=none --iptables=false --ip-forward=false``, its own
socket, data root and pidfile) and stops by PID afterwards; if none can start, the docker
tests skip with dockerd's words.

Each engine: a 3-node cluster up, status and down leaves nothing behind (containers,
networks, bridges, firewall chains, ``ip_forward``); ``clew test etcd --faults
partition,pause,kill`` is valid with every kind struck in ``faults.jsonl``; a start that
fails at the runtime leaves nothing and ``down`` succeeds; ``down`` also removes what a
crashed ``up`` made but never recorded. podman uses 10.77.246.0/24, docker 10.77.247.0/24;
names start with ``h19p-`` and ``h19d-``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clusters.base import Cluster
from clusters.container_engine import Engine, probe_engine, run_settings
from clusters.container_image import LATEST, image_inputs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.timeout(1800),  # the first test builds the image (2-5 min)
    pytest.mark.skipif(os.geteuid() != 0, reason="container engines and mmdebstrap need root"),
]

CLEW = [sys.executable, "-m", "harness.cli"]
SUITE = "etcd"
#: The docker daemon this module starts, and where it keeps things.
DOCKER_SOCK = "/run/clew-test-h19d/docker.sock"
DOCKER_EXEC_ROOT = "/run/clew-test-h19d"
DOCKER_DATA_ROOT = "/var/lib/clew-test-h19d"
DOCKER_PIDFILE = "/run/clew-test-h19d/dockerd.pid"


@dataclass(frozen=True)
class Setup:
    """One engine, ready: how to reach it and the names and subnet its tests use."""

    engine: Engine
    env: dict[str, str]
    prefix: str
    subnet: str

    def run(self, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a command with this engine's environment."""
        return subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def clew(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run ``clew ARGS``."""
        return self.run([*CLEW, *args], timeout=timeout)

    def engine_lines(self, *args: str) -> list[str]:
        """The output lines of ``<engine> ARGS`` (which must succeed)."""
        res = self.run([self.engine.path, *args], timeout=120)
        assert res.returncode == 0, res.stderr
        return res.stdout.split()


def _start_dockerd() -> tuple[subprocess.Popen[bytes] | None, str]:
    """A dockerd of our own, or (None, why not)."""
    dockerd = shutil.which("dockerd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if dockerd is None:
        return None, "dockerd is not installed (apt-get install docker.io)"
    Path(DOCKER_EXEC_ROOT).mkdir(parents=True, exist_ok=True)
    with open(Path(DOCKER_EXEC_ROOT) / "dockerd.log", "wb") as log:  # the child keeps its own
        proc = subprocess.Popen(
            [dockerd, "--bridge=none", "--iptables=false", "--ip-forward=false",
             "--host", f"unix://{DOCKER_SOCK}", "--data-root", DOCKER_DATA_ROOT,
             "--exec-root", DOCKER_EXEC_ROOT, "--pidfile", DOCKER_PIDFILE],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    env = {**os.environ, "DOCKER_HOST": f"unix://{DOCKER_SOCK}"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (Path(DOCKER_EXEC_ROOT) / "dockerd.log").read_text(errors="replace")[-400:]
            return None, f"dockerd exited with status {proc.returncode}: {tail}"
        res = subprocess.run(["docker", "info"], env=env, capture_output=True, timeout=30,
                             check=False)  # fmt: skip
        if res.returncode == 0:
            return proc, ""
        time.sleep(0.5)
    _stop(proc)
    return None, "dockerd did not answer within 60 s"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop our dockerd (and the containerd it started) by its process group."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module", params=["podman", "docker"])
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    """A usable engine with the node image built (or found) for the etcd suite."""
    kind = request.param
    daemon = None
    env = dict(os.environ)
    if kind == "docker":
        daemon, why = _start_dockerd()
        if daemon is None:
            pytest.skip(f"no docker daemon could be started here: {why}")
        env["DOCKER_HOST"] = f"unix://{DOCKER_SOCK}"
        os.environ["DOCKER_HOST"] = env["DOCKER_HOST"]  # for probe_engine below
    try:
        engine, why = probe_engine(kind)
        if engine is None:
            pytest.skip(f"{kind} is not usable: {why}")
        if shutil.which("mmdebstrap") is None:
            pytest.skip("mmdebstrap is not installed (apt-get install mmdebstrap)")
        s = Setup(engine=engine, env=env, prefix="h19p-" if kind == "podman" else "h19d-",
                  subnet="10.77.246.0/24" if kind == "podman" else "10.77.247.0/24")  # fmt: skip
        _leftovers_removed(s)
        start = time.monotonic()
        res = s.clew("image", "build", "--suite", SUITE, "--engine", engine.path, timeout=1700)
        assert res.returncode == 0, res.stderr
        took = time.monotonic() - start
        print(f"\n[{kind}] clew image build: {took:.1f} s: {res.stdout.strip()}")
        yield s
    finally:
        if daemon is not None:
            os.environ.pop("DOCKER_HOST", None)
            _stop(daemon)


def _leftovers_removed(s: Setup) -> None:
    """Remove what an earlier, killed session of this module left (by our prefix)."""
    names = _ours(s, s.engine_lines("ps", "-a", "--format", "{{.Names}}"))
    if names:
        s.run([s.engine.path, "rm", "-f", *names])
    for net in _ours(s, s.engine_lines("network", "ls", "--format", "{{.Name}}")):
        s.run([s.engine.path, "network", "rm", net])


def _ours(s: Setup, names: list[str]) -> list[str]:
    return sorted(n.lstrip("/") for n in names if n.lstrip("/").startswith(s.prefix))


def host_state(s: Setup) -> dict[str, object]:
    """What an engine can leave on this machine: our containers and networks, the engines'
    bridges, firewall chains and tables, IPv4 forwarding."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    engine_bridge = re.compile(r"podman\d+|br-[0-9a-f]{12}|docker0|cni-podman\d+")
    names = re.findall(r"^\d+: ([^:@]+)", links.stdout, re.M)
    bridges = sorted(m for m in names if engine_bridge.fullmatch(m))
    nft = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=False)
    chains = sorted(ln.strip() for ln in nft.stdout.splitlines()
                    if re.match(r"\s*(table|chain) ", ln))  # fmt: skip
    return {
        "containers": _ours(s, s.engine_lines("ps", "-a", "--format", "{{.Names}}")),
        "networks": _ours(s, s.engine_lines("network", "ls", "--format", "{{.Name}}")),
        "bridges": bridges,
        "nft": chains,
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
    }


def test_the_image_is_named_by_its_inputs_and_not_built_again(setup: Setup) -> None:
    tag = image_inputs([SUITE]).tag
    assert setup.engine_lines("image", "inspect", "--format", "{{.Id}}", tag)
    assert setup.engine_lines("image", "inspect", "--format", "{{.Id}}", tag) == (
        setup.engine_lines("image", "inspect", "--format", "{{.Id}}", LATEST)
    )
    start = time.monotonic()
    res = setup.clew("image", "build", "--suite", SUITE, "--engine", setup.engine.path)
    assert res.returncode == 0, res.stderr
    assert "nothing to build" in res.stderr and time.monotonic() - start < 60
    assert res.stdout.startswith(tag)
    # The database is in the image and the image has no SSH host keys of its own.
    look = setup.run(
        [setup.engine.path, "run", "--rm", "--network", "none", *run_settings(setup.engine),
         tag, "sh", "-c", "ls /usr/bin/etcd /usr/sbin/sshd; ls /etc/ssh | grep -c host_ || true"]
    )  # fmt: skip
    assert look.returncode == 0, look.stderr
    assert look.stdout.split() == ["/usr/bin/etcd", "/usr/sbin/sshd", "0"]


def test_a_cluster_comes_up_runs_etcd_under_faults_and_goes_without_a_trace(
    setup: Setup, tmp_path: Path
) -> None:
    """One cluster for the whole story (a cluster costs 20-40 s to make on a busy machine):
    up, status, a login, ``clew test etcd`` with partition, pause and kill on it, down."""
    before = host_state(setup)
    state = tmp_path / "state"
    kind = setup.engine.kind
    opts = ["--option", f"subnet={setup.subnet}", "--option", f"prefix={setup.prefix}c-",
            "--option", f"engine={setup.engine.path}"]  # fmt: skip
    t0 = time.monotonic()
    up = setup.clew("cluster", "up", "--provider", kind, "--nodes", "3",
                    "--state-dir", str(state), *opts)  # fmt: skip
    t_up = time.monotonic() - t0
    try:
        assert up.returncode == 0, up.stderr
        status = setup.clew("cluster", "status", "--state-dir", str(state))
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count(" up") >= 3
        cluster = json.loads((state / "cluster.json").read_text())
        hosts = [n["host"] for n in cluster["nodes"]]
        assert all(h.startswith(setup.subnet.rsplit(".", 1)[0] + ".") for h in hosts)
        known = (state / "known_hosts").read_text().split("\n")
        keys = {line.split()[2] for line in known if line}
        assert len(keys) == 3  # every node its own host key
        caps = {c["name"]: c["available"] for c in cluster["capabilities"]}
        assert caps["partition"] and caps["pause"] and caps["kill"]
        assert caps["host-key-check"] and not caps["clock-system"]
        # A real login with the cluster's key, checking the node's host key.
        ssh = setup.run(
            ["ssh", "-i", str(state / "id_ed25519"), "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={state / 'known_hosts'}",
             "-o", "StrictHostKeyChecking=yes", f"root@{hosts[1]}", "hostname"], timeout=60,
        )  # fmt: skip
        assert ssh.returncode == 0 and ssh.stdout.strip() == "n2", ssh.stderr

        store = tmp_path / "store"
        res = setup.clew(
            "test", SUITE, "--provider", kind, "--nodes", "3",
            "--faults", "partition,pause,kill", "--time-limit", "25", "--interval", "2.5",
            "--seed", "7", "--no-progress", "--store", str(store),
            "--cluster-state-dir", str(state), timeout=900,
        )  # fmt: skip
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
        assert "VALID" in res.stdout
        # It ran on this cluster (one it made itself would be gone with its state).
        after = json.loads((state / "cluster.json").read_text())
        assert after["extra"]["token"] == cluster["extra"]["token"]
        (faults,) = {p.resolve() for p in store.glob("*/*/faults.jsonl")}
        struck = set()
        for line in faults.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("event") == "applied" and rec.get("phase") == "start":
                struck.add(rec["kind"])
        assert struck == {"partition", "pause", "kill"}
    finally:
        t0 = time.monotonic()
        down = setup.clew("cluster", "down", "--state-dir", str(state))
        t_down = time.monotonic() - t0
    assert down.returncode == 0, down.stderr
    print(f"\n[{kind}] 3-node cluster up {t_up:.1f} s, down {t_down:.1f} s")
    assert not state.exists()
    assert host_state(setup) == before


def test_a_failed_start_leaves_nothing_and_down_succeeds(setup: Setup, tmp_path: Path) -> None:
    before = host_state(setup)
    state = tmp_path / "state"
    kind = setup.engine.kind
    # podman creates the container, then its runtime fails at start (the container is left
    # Created); docker refuses the unknown runtime at create.
    runtime = "/bin/false" if kind == "podman" else "no-such-runtime"
    up = setup.clew("cluster", "up", "--provider", kind, "--nodes", "1",
                    "--state-dir", str(state), "--option", f"subnet={setup.subnet}",
                    "--option", f"prefix={setup.prefix}f-", "--option", f"runtime={runtime}",
                    "--option", f"engine={setup.engine.path}")  # fmt: skip
    assert up.returncode != 0
    assert ("start container" if kind == "podman" else "create container") in up.stderr
    assert "syslog" not in up.stderr and "Traceback" not in up.stderr
    assert host_state(setup) == before
    down = setup.clew("cluster", "down", "--state-dir", str(state))
    assert down.returncode == 0, down.stderr


def test_down_removes_what_a_crashed_up_made_but_never_recorded(
    setup: Setup, tmp_path: Path
) -> None:
    """As if ``up`` was killed between creating objects and recording them: only the
    label, saved first, ties them to the state."""
    before = host_state(setup)
    state = tmp_path / "state"
    state.mkdir()
    token = "feedc0de" + str(os.getpid())
    label = ["--label", f"clew.up={token}"]
    net = f"{setup.prefix}x-net"
    setup.engine_lines("network", "create", "--internal", *label, "--subnet", setup.subnet, net)
    setup.engine_lines("create", "--name", f"{setup.prefix}x-n1", "--network", net, *label,
                       *run_settings(setup.engine), LATEST)  # fmt: skip
    extra = {"engine": setup.engine.path, "token": token, "network": None, "containers": [],
             "settings": {"internal": True}, "ip_forward": before["ip_forward"]}  # fmt: skip
    Cluster(provider=setup.engine.kind, name="default", nodes=(), state_dir=str(state),
            extra=extra).save()  # fmt: skip
    status = setup.clew("cluster", "status", "--state-dir", str(state))
    assert "did not finish" in status.stdout + status.stderr
    down = setup.clew("cluster", "down", "--state-dir", str(state))
    assert down.returncode == 0, down.stderr
    assert host_state(setup) == before and not state.exists()
