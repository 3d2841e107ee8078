"""`clew doctor`'s checks: capabilities with reasons, bounded in time, nothing left behind."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from clusters import doctor
from clusters.base import Capability, Node


def _host_state() -> dict[str, str]:
    """What the probes must not change: namespaces, /run/netns, lo's qdisc, the firewall."""

    def out(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
        except FileNotFoundError:
            return "(not installed)"

    state = {
        # (only the probes' own: other tests' clusters may come and go meanwhile)
        "netns": "\n".join(
            ns for ns in out("ip", "netns", "list").split() if ns.startswith("clew-doctor-")
        ),
        "run_netns": str(os.path.exists("/run/netns")),
        "qdisc": out("tc", "qdisc", "show", "dev", "lo"),
    }
    if os.geteuid() == 0:
        state["iptables"] = out("iptables", "-w", "5", "-S")
        state["nft"] = out("nft", "--stateless", "list", "ruleset")  # rules, not counters
    return state


def test_run_checks_returns_capabilities_and_leaves_nothing_behind() -> None:
    before = _host_state()
    caps = doctor.run_checks()  # how long it takes: bench/doctor.py
    assert all(isinstance(c, Capability) and c.detail for c in caps)
    names = [c.name for c in caps]
    for expected in ("namespaces", "ip", "nft", "iptables", "sshd", "ssh", "etcd",
                     "clock-libfaketime", "packet-netem", "packet-loss-iptables"):  # fmt: skip
        assert expected in names
    assert len(names) == len(set(names))
    assert _host_state() == before
    assert before["netns"] == ""


#: What a probe that worked says.
WORKS = "works (probed in a throwaway netns)"


@pytest.mark.skipif(os.geteuid() != 0, reason="the probes need root or user namespaces")
def test_kernel_probes_match_the_kernels_build(kernel_has: Callable[[str], bool]) -> None:
    """The probes' verdicts against the kernel's own config: on CI's microVM netem is not
    built (so the probe must say so, with tc's error), the statistic match, NFQUEUE and
    its netlink queue are; on a stock kernel (netem as a module) netem must work."""
    netem = doctor.check_netem()
    assert netem.available == kernel_has("CONFIG_NET_SCH_NETEM"), netem.detail
    if netem.available:
        assert netem.detail == WORKS
    else:
        assert netem.detail.startswith("no netem: netem's packet delay faults are unavailable")
        assert "Specified qdisc kind is unknown" in netem.detail  # tc's own words
    loss = doctor.check_iptables_statistic()
    assert loss.available == kernel_has("CONFIG_NETFILTER_XT_MATCH_STATISTIC"), loss.detail
    assert loss.available and loss.detail == WORKS  # every kernel CI runs on has it
    delay = doctor.check_nfqueue_delay()
    assert delay.available == (
        kernel_has("CONFIG_NETFILTER_XT_TARGET_NFQUEUE")
        and kernel_has("CONFIG_NETFILTER_NETLINK_QUEUE")
    ), delay.detail
    assert delay.available and delay.detail == WORKS


def test_missing_binary_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    cap = doctor.check_binary("clew-no-such-binary")
    assert not cap.available
    assert cap.detail == "not found (clew-no-such-binary)"  # no install hint to give
    sh = doctor.check_binary("sh")
    assert sh.available and sh.detail.endswith("/sh")
    monkeypatch.setattr(doctor, "find_binary", lambda name: None)  # as on a bare machine
    etcd = doctor.check_binary("etcd")
    assert not etcd.available
    assert etcd.detail == (
        "not found (the etcd server, for etcd tests); "
        "install it: apt-get install etcd-server etcd-client"
    )
    assert doctor.check_binary("sshd").detail.endswith("install it: apt-get install openssh-server")
    faketime = doctor.check_libfaketime()
    if not faketime.available:  # (found by its path when installed, whatever $PATH says)
        assert faketime.detail.endswith("install it: apt-get install libfaketime faketime")


def test_namespaces_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    proc = {"/proc/sys/kernel/unprivileged_userns_clone": "0"}
    monkeypatch.setattr(doctor, "_read_proc", proc.get)
    cap = doctor.check_namespaces()
    assert not cap.available and "sysctl kernel.unprivileged_userns_clone=1" in cap.detail
    proc.update({"/proc/sys/kernel/unprivileged_userns_clone": "1",
                 "/proc/sys/user/max_user_namespaces": "0"})  # fmt: skip
    assert "max_user_namespaces" in doctor.check_namespaces().detail
    proc["/proc/sys/user/max_user_namespaces"] = "1000"
    assert doctor.check_namespaces().available


def test_local_requirements() -> None:
    def caps(*names: str) -> list[Capability]:
        return [Capability(name=n, available=True) for n in names]

    everything = caps("namespaces", "ip", "unshare", "sshd", "iptables")
    assert doctor.missing_for_local(everything) == []
    assert doctor.missing_for_local(caps("namespaces", "ip", "unshare", "sshd", "nft")) == []
    assert doctor.missing_for_local(caps("ip", "unshare")) == [
        "namespaces", "sshd", "nft|iptables"
    ]  # fmt: skip
    off = [Capability(name="sshd", available=False), *caps("namespaces", "ip", "unshare", "nft")]
    assert doctor.missing_for_local(off) == ["sshd"]


def test_node_reachability_is_a_tcp_connect() -> None:
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))
        nodes = [
            Node(name="n1", host="127.0.0.1", port=listening.getsockname()[1]),
            Node(name="n2", host="127.0.0.1", port=closed.getsockname()[1]),
            Node(name="n3", host="no-such-host.invalid", port=22),
        ]
        state = doctor.check_nodes(nodes, timeout=1)
        caps = {c.name: c for c in doctor.run_checks(nodes[:2])}
    assert state["n1"] == "up"
    assert "refused" in state["n2"]
    assert "cannot resolve 'no-such-host.invalid'" in state["n3"]
    assert caps["node:n1"].available and not caps["node:n2"].available


def test_run_tool_kills_the_whole_group_on_timeout(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    res = doctor.run_tool(["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"], timeout=2)
    assert res.timed_out and not res.ok and "killed after 2 s" in res.stderr
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 20  # the orphaned sleep is reaped by init after the kill
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}") or "Z" in _proc_state(pid):
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}") or "Z" in _proc_state(pid)


def test_run_tool_does_not_wait_for_a_helper_that_left_the_group() -> None:
    """A helper in a session of its own holds the output open: reading it after the kill
    waited for the helper (8 s here, past a timeout of 0.5 s)."""
    t0 = time.monotonic()
    res = doctor.run_tool(["sh", "-c", "setsid sleep 3 & sleep 8"], timeout=0.5)
    assert res.timed_out and "killed after 0.5 s" in res.stderr
    assert time.monotonic() - t0 < 2.9


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


def test_run_tool_passes_stdin_and_reports_failure() -> None:
    res = doctor.run_tool(["sh", "-c", "cat; echo oops >&2; exit 3"], timeout=5, stdin="hi")
    assert res.returncode == 3 and res.stdout == "hi" and res.tail() == "oops"
