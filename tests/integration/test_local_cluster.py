"""The local provider against the real kernel: namespaces, a bridge, sshd as PID 1.

Needs root (network namespaces, a bridge, sshd). Every test uses its own prefix and a
subnet in 10.77.2xx.0/24, so a cluster someone has up with the defaults is never touched,
and every cluster is torn down in a finalizer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from clusters.base import Cluster, ClusterSpec
from clusters.local import LocalProvider
from harness.errors import ClusterError

REPO = Path(__file__).resolve().parents[2]


def _missing_tools() -> list[str]:
    from clusters._run import which

    return [t for t in ("ip", "unshare", "sshd", "ssh", "ssh-keygen") if not which(t)]


pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local provider needs root"),
    pytest.mark.skipif(
        bool(_missing_tools()), reason=f"missing tools: {', '.join(_missing_tools())}"
    ),
]


# --- helpers ----------------------------------------------------------------------------


def spec(state: Path, *, prefix: str, subnet: str, nodes: int = 5) -> ClusterSpec:
    return ClusterSpec(
        nodes=nodes, state_dir=str(state), options={"prefix": prefix, "subnet": subnet}
    )


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout


def ssh(state: Path, node: str, command: str) -> str:
    proc = subprocess.run(
        ["ssh", "-F", str(state / "ssh_config"), node, command],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 0, f"ssh {node} {command!r}: {proc.returncode} {proc.stderr}"
    return proc.stdout


def netns_with(prefix: str) -> list[str]:
    return [line.split()[0] for line in sh("ip", "netns", "list").splitlines()
            if line.startswith(prefix)]  # fmt: skip


def links_with(prefix: str) -> list[str]:
    return [line.split()[0] for line in sh("ip", "-br", "link").splitlines()
            if line.startswith(prefix)]  # fmt: skip


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def recorded_pids(state: Path) -> list[int]:
    ledger = json.loads((state / "local.json").read_text())
    return [p for entry in ledger["pids"].values() for p in entry.values()]


def _route_dev(route: str) -> str:
    """The device a route line of ``ip route show`` names (after ``dev``)."""
    words = route.split()
    return words[words.index("dev") + 1] if "dev" in words else ""


def routes() -> set[str]:
    return set(sh("ip", "route", "show", "table", "all").splitlines())


def assert_gone(state: Path, prefix: str, subnet: str, pids: list[int], before: set[str]) -> None:
    assert netns_with(prefix) == []
    assert links_with(prefix) == []
    deadline = time.monotonic() + 20
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [p for p in pids if alive(p)] == []
    assert not state.exists() or list(state.iterdir()) == []
    after = routes()
    # Routes on links that still exist must all still be there (other clusters on this
    # machine may come and go meanwhile, taking their links' routes with them).
    links = {line.split()[0].split("@")[0] for line in sh("ip", "-br", "link").splitlines()}
    went_with_their_link = {r for r in before - after if _route_dev(r) not in links}
    assert before - after == went_with_their_link, "host routes were removed"
    net = subnet.rsplit(".", 1)[0] + "."
    assert [r for r in after if net in r or prefix in r] == []


@pytest.fixture
def provider() -> LocalProvider:
    return LocalProvider()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 5-node cluster shared by the read-only tests."""
    state = tmp_path_factory.mktemp("local") / "state"
    p = LocalProvider()
    try:
        yield p.up(spec(state, prefix="clt-", subnet="10.77.201.0/24"))
    finally:
        p.down(state)


def crashed_up(state: Path, where: str, prefix: str, subnet: str) -> None:
    """Run ``up`` in a child process that dies abruptly (no cleanup) at ``where``."""
    code = f"""
import os, sys
import clusters._netns as netns, clusters._sshd as sshd
from clusters.base import ClusterSpec
from clusters.local import LocalProvider
if {where!r} == "sshd":
    sshd.wait_ready = lambda *a, **k: os._exit(3)   # nodes started, cluster.json not written
else:
    real, calls = netns.add_veth, []
    def add_veth(**kw):
        calls.append(kw)
        if len(calls) == 2:
            os._exit(3)                             # 2nd namespace made, its veth not yet
        real(**kw)
    netns.add_veth = add_veth
LocalProvider().up(ClusterSpec(nodes=3, state_dir={str(state)!r},
                               options={{"prefix": {prefix!r}, "subnet": {subnet!r}}}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 3, proc.stderr


# --- bringing clusters down (first: no shared cluster is up yet, so /run/netns may be
# absent and its removal is checked) -------------------------------------------------------------


def test_down_leaves_nothing_behind(provider: LocalProvider, tmp_path: Path) -> None:
    state = tmp_path / "state"
    before = routes()
    had_run_netns = Path("/run/netns").exists()
    provider.up(spec(state, prefix="clv-", subnet="10.77.203.0/24"))
    ledger = json.loads((state / "local.json").read_text())
    assert ledger["created_run_netns"] == (not had_run_netns)
    pids = recorded_pids(state)
    assert len(pids) == 10 and all(alive(p) for p in pids)
    assert sorted(netns_with("clv-")) == [f"clv-n{i}" for i in range(1, 6)]
    provider.down(state)  # how long it takes: bench/cluster.py
    assert_gone(state, "clv-", "10.77.203.0/24", pids, before)
    if not had_run_netns:
        assert not Path("/run/netns").exists(), "/run/netns was ours and must be removed"
    provider.down(state)  # again: nothing to do, no error
    assert not provider.status(state).healthy


@pytest.mark.parametrize("where", ["network", "sshd"])
def test_down_after_a_crashed_up(provider: LocalProvider, tmp_path: Path, where: str) -> None:
    state = tmp_path / "state"
    before = routes()
    try:
        crashed_up(state, where, "clw-", "10.77.204.0/24")
        assert netns_with("clw-"), "the crash should leave namespaces behind"
        assert not (state / "cluster.json").exists()
        assert "half-built" in provider.status(state).problems[0]
        pids = recorded_pids(state)
        if where == "sshd":
            assert pids and all(alive(p) for p in pids)
        provider.down(state)
        assert_gone(state, "clw-", "10.77.204.0/24", pids, before)
    finally:
        provider.down(state)


def test_up_over_a_leftover_cleans_it_first(provider: LocalProvider, tmp_path: Path) -> None:
    state = tmp_path / "state"
    s = spec(state, prefix="clx-", subnet="10.77.205.0/24", nodes=3)
    try:
        crashed_up(state, "sshd", "clx-", "10.77.205.0/24")
        old = recorded_pids(state)
        provider.up(s)
        assert provider.status(state).healthy
        assert not any(alive(p) for p in old)
        assert ssh(state, "n3", "hostname").strip() == "n3"
    finally:
        provider.down(state)
    assert netns_with("clx-") == [] and links_with("clx-") == []


def test_a_failed_up_removes_what_it_made(
    provider: LocalProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import clusters._sshd

    state = tmp_path / "state"
    before = routes()

    def fail(*args: object, **kwargs: object) -> None:
        raise ClusterError("sshd did not answer (simulated)")

    monkeypatch.setattr(clusters._sshd, "wait_ready", fail)
    with pytest.raises(ClusterError, match="simulated"):
        provider.up(spec(state, prefix="cly-", subnet="10.77.206.0/24", nodes=2))
    assert_gone(state, "cly-", "10.77.206.0/24", [], before)


def test_a_ctrl_c_on_the_terminal_while_up_runs_kills_none_of_its_commands(
    provider: LocalProvider, tmp_path: Path
) -> None:
    # `clew test` brings the cluster up in a thread and lets it finish on a Ctrl-C, but a
    # terminal sends SIGINT to its whole process group: the bring-up's `ip` and
    # `ssh-keygen` died of it ("failed with status -2") and the run exited 255. Here the
    # group gets a SIGINT as each command of `up` (run in a thread) has started; the main
    # thread's handler ignores them (a Python handler is not inherited, SIG_IGN would be).
    state = tmp_path / "state"
    options = {"prefix": "iq5-", "subnet": "10.77.210.0/24", "bridge": "iq5-br0"}
    code = f"""
import os, signal, subprocess, threading
from clusters.base import ClusterSpec
from clusters.local import LocalProvider
signal.signal(signal.SIGINT, lambda *a: None)
sent = []
class CtrlCOnceStarted(subprocess.Popen):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        os.killpg(0, signal.SIGINT)
        sent.append(1)
subprocess.Popen = CtrlCOnceStarted
said = []
def up():
    try:
        LocalProvider().up(ClusterSpec(nodes=3, state_dir={str(state)!r}, options={options!r}))
        said.append("up")
    except BaseException as e:
        said.append(f"failed: {{e}}")
t = threading.Thread(target=up)
t.start()
t.join()
print(said[0], len(sent))
"""
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                              text=True, timeout=60, start_new_session=True)  # fmt: skip
        said, _, sent = proc.stdout.strip().rpartition(" ")
        assert said == "up", proc.stdout + proc.stderr
        assert int(sent) >= 10 and provider.status(state).healthy
    finally:
        provider.down(state)
    assert netns_with("iq5-") == [] and links_with("iq5-") == []


def test_a_dead_or_paused_node_is_reported_and_up_repairs_it(
    provider: LocalProvider, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    s = spec(state, prefix="clz-", subnet="10.77.207.0/24", nodes=2)
    try:
        c = provider.up(s)
        pid1 = c.extra["pids"]
        os.kill(pid1["n1"]["sshd"], signal.SIGSTOP)
        os.kill(pid1["n2"]["sshd"], signal.SIGKILL)
        deadline = time.monotonic() + 30  # the kernel takes the killed node's sshd down
        while True:
            st = provider.status(state)
            if "not answering" in st.nodes["n2"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert not st.healthy
        assert "stopped" in st.nodes["n1"], st.nodes
        assert "not answering" in st.nodes["n2"], st.nodes
        provider.up(s)  # unhealthy: rebuilt
        assert provider.status(state).healthy
    finally:
        provider.down(state)
    assert netns_with("clz-") == [] and links_with("clz-") == []


def test_without_root_the_message_says_what_is_missing(
    provider: LocalProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ClusterError, match=r"needs root.*user namespaces.*asyncssh") as e:
        provider.up(spec(tmp_path / "s", prefix="clq-", subnet="10.77.208.0/24"))
    assert "sudo" in str(e.value)
    assert not (tmp_path / "s").exists()


# --- a cluster that is up ---------------------------------------------------------------


def test_nodes_are_separate_machines_reachable_over_openssh(cluster: Cluster) -> None:
    state = Path(cluster.state_dir)
    assert [n.name for n in cluster.nodes] == ["n1", "n2", "n3", "n4", "n5"]
    for i, node in enumerate(cluster.nodes, start=1):
        assert node.host == f"10.77.201.{10 + i}"
        assert (node.user, node.port, node.check_host_key) == ("root", 22, True)
        assert node.key_file == str(state / "id_ed25519")
        assert node.known_hosts == str(state / "known_hosts")
    command = (
        "hostname; cat /proc/1/comm; getent hosts n3; ls -A ~ | wc -l; "
        "timeout 2 bash -c '</dev/tcp/n5/22' && echo reach-n5"
    )
    with ThreadPoolExecutor(5) as pool:
        outputs = list(pool.map(lambda n: ssh(state, n.name, command), cluster.nodes))
    for i, out in enumerate(outputs, start=1):
        lines = out.split("\n")
        assert lines[0] == f"n{i}", out
        assert lines[1] == "sshd", "PID 1 of the node must be sshd"
        assert lines[2].split() == ["10.77.201.13", "n3"]
        assert lines[3] == "0", "root's home on a node must be empty"
        assert lines[4] == "reach-n5", "nodes must reach each other"


def test_up_again_returns_the_running_cluster(cluster: Cluster, provider: LocalProvider) -> None:
    state = Path(cluster.state_dir)
    pids = recorded_pids(state)
    netns = sorted(netns_with("clt-"))
    again = provider.up(spec(state, prefix="clt-", subnet="10.77.201.0/24"))
    assert again == cluster
    # Nothing was rebuilt: the same sshd processes, the same namespaces (how long it
    # takes: bench/restart.py).
    assert recorded_pids(state) == pids and all(alive(p) for p in pids)
    assert sorted(netns_with("clt-")) == netns


def test_status_says_every_node_is_up(cluster: Cluster, provider: LocalProvider) -> None:
    st = provider.status(Path(cluster.state_dir))
    assert st.healthy, st
    assert st.nodes == {f"n{i}": "up" for i in range(1, 6)}


def test_a_different_cluster_in_the_same_state_dir_is_refused(
    cluster: Cluster, provider: LocalProvider
) -> None:
    state = Path(cluster.state_dir)
    with pytest.raises(ClusterError, match="different local cluster is already up"):
        provider.up(spec(state, prefix="clt-", subnet="10.77.201.0/24", nodes=3))
    assert provider.status(state).healthy


def test_an_overlapping_subnet_is_refused(
    cluster: Cluster, provider: LocalProvider, tmp_path: Path
) -> None:
    with pytest.raises(ClusterError, match=r"10\.77\.201\.0/25 is already in use"):
        provider.up(spec(tmp_path / "b", prefix="clu-", subnet="10.77.201.0/25"))
    assert netns_with("clu-") == [] and links_with("clu-") == []
    assert not (tmp_path / "b").exists()
    assert provider.status(Path(cluster.state_dir)).healthy


def test_names_of_another_cluster_are_refused(
    cluster: Cluster, provider: LocalProvider, tmp_path: Path
) -> None:
    with pytest.raises(ClusterError, match=r"bridge clt-br0.*already exist"):
        provider.up(spec(tmp_path / "b", prefix="clt-", subnet="10.77.202.0/24"))
    assert provider.status(Path(cluster.state_dir)).healthy


def test_capabilities_are_probed(provider: LocalProvider) -> None:
    caps = {c.name: c for c in provider.capabilities()}
    assert {"partition", "pause", "kill", "clock-system", "clock-libfaketime",
            "packet-netem", "packet-loss-iptables"} <= set(caps)  # fmt: skip
    assert caps["partition"].available and caps["pause"].available and caps["kill"].available
    assert not caps["clock-system"].available
    netem = subprocess.run(
        ["unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
        capture_output=True,
        timeout=10,
    )
    assert caps["packet-netem"].available == (netem.returncode == 0)


def test_a_host_forward_drop_policy_is_reported_not_changed(tmp_path: Path) -> None:
    """A fake host (its own network and mount namespaces, with FORWARD DROP and
    bridge-nf-call-iptables=1): up must fail naming the cause, change nothing and clean up."""
    state = tmp_path / "state"
    code = f"""
from clusters.base import ClusterSpec
from clusters.local import LocalProvider
from harness.errors import ClusterError
try:
    LocalProvider().up(ClusterSpec(nodes=2, state_dir={str(state)!r},
                                   options={{"prefix": "clf-", "subnet": "10.77.209.0/24"}}))
except ClusterError as e:
    print("ERROR", e)
"""
    script = (
        "mount -t tmpfs -o mode=755 tmpfs /run && ip link set lo up && "
        "iptables -w 5 -P FORWARD DROP && "
        'cat /proc/sys/net/bridge/bridge-nf-call-iptables && exec "$0" -c "$1"'
    )
    host_forward = sh("iptables", "-w", "5", "-S", "FORWARD")
    proc = subprocess.run(
        ["unshare", "--net", "--mount", "--propagation", "private",
         "sh", "-c", script, sys.executable, code],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if proc.stdout.startswith("0"):
        pytest.skip("bridge-nf-call-iptables is 0 in a new namespace: traffic is not filtered")
    assert "ERROR" in proc.stdout, proc.stdout + proc.stderr
    assert "FORWARD has policy DROP" in proc.stdout
    assert "does not change the host firewall" in proc.stdout
    assert not state.exists() or list(state.iterdir()) == [], proc.stdout
    assert sh("iptables", "-w", "5", "-S", "FORWARD") == host_forward
    assert links_with("clf-") == []
