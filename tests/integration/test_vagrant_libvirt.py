"""The vagrant provider for real: Vagrant 2.3 with vagrant-libvirt, a box made locally from
clew's VM image, a libvirtd of the cluster's own and a bridge of clew's own (no NAT network).

One test, through clew's own commands: ``clew cluster up --provider vagrant --nodes 2
--option network=bridge`` (the box built and added to a Vagrant home of the test's own),
then on each node over SSH, with the cluster's ssh_config: its name, its address, its own
kernel and the other node reachable; a short ``clew test etcd`` on that cluster; then
``clew cluster down`` and nothing left: no libvirt domain or volume (the daemon is gone
with them), no bridge, no process of it, no firewall rule added, no state file.

Two VMs, not three: under software emulation (TCG) here a cold boot takes minutes, and
the point is Vagrant driving libvirt, not the cluster's size. 271 s here at load 7-12
(up 182 s: the box added and uploaded into the pool, two cold boots; ``clew test`` 65 s;
down 12 s): more than CI's budget for one test, so it runs only with
``CLEW_VAGRANT_TESTS=1``. Subnet 10.77.153.0/24, names
``vgt-``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clusters.vm_image import find_vm_image
from harness.errors import ClusterError

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.timeout(2400),
    pytest.mark.skipif(os.geteuid() != 0, reason="a bridge and libvirtd need root"),
    pytest.mark.skipif(
        os.environ.get("CLEW_VAGRANT_TESTS") != "1",
        reason="4-5 minutes of VMs under TCG: set CLEW_VAGRANT_TESTS=1 to run",
    ),
]

CLEW = [sys.executable, "-m", "harness.cli"]
PREFIX = "vgt-"
SUBNET = "10.77.153.0/24"
OPTIONS = ["-o", "network=bridge", "-o", f"prefix={PREFIX}", "-o", f"subnet={SUBNET}"]


def clew(
    *args: str, env: dict[str, str], timeout: float = 1500
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLEW, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)  # fmt: skip


def ssh(state: Path, node: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-F", str(state / "ssh_config"), node, command],
                          capture_output=True, text=True, timeout=180, check=False)  # fmt: skip


def firewall() -> str:
    """The host's firewall rules (nft and both iptables), to compare before and after."""
    out = []
    for argv in (["nft", "--stateless", "list", "ruleset"], ["iptables-save"],
                 ["iptables-legacy-save"]):  # fmt: skip
        if shutil.which(argv[0]):
            res = subprocess.run(argv, capture_output=True, text=True, check=False)
            out.append(re.sub(r"\[\d+:\d+\]", "", re.sub(r"(?m)^#.*$", "", res.stdout)))
    return "\n".join(out)


def leftovers(state: Path) -> dict[str, object]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    ours = sorted(n for n in re.findall(r"^\d+: ([^:@]+)", links.stdout, re.M)
                  if n.startswith(PREFIX))  # fmt: skip
    procs = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes()
            except OSError:
                continue
            if os.fsencode(str(state)) in cmd:
                procs.append(cmd.split(b"\0")[0].decode(errors="replace"))
    routes = subprocess.run(["ip", "-4", "route", "show", SUBNET], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    files = sorted(p.name for p in state.iterdir()) if state.exists() else []
    return {"links": ours, "processes": procs, "routes": routes, "files": files}


def test_vagrant_libvirt_cluster_up_ssh_test_down(tmp_path: Path) -> None:
    for tool in ("vagrant", "virsh", "qemu-img", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (bash scripts/setup installs it)")
    if shutil.which("libvirtd") is None and not os.path.exists("/usr/sbin/libvirtd"):
        pytest.skip("libvirtd is not installed (bash scripts/setup installs it)")
    try:
        find_vm_image()
    except ClusterError:
        res = subprocess.run([*CLEW, "image", "build", "--vm", "--suite", "etcd"],
                             capture_output=True, text=True, timeout=1700, check=False)  # fmt: skip
        assert res.returncode == 0, res.stderr
    env = {**os.environ, "VAGRANT_HOME": str(tmp_path / "vagrant.d")}
    state = tmp_path / "cluster"
    rules_before = firewall()
    start = time.monotonic()
    res = clew("cluster", "up", "--provider", "vagrant", "--nodes", "2", "--name", "vgt",
               "--state-dir", str(state), *OPTIONS, env=env)  # fmt: skip
    print(f"\nclew cluster up --provider vagrant: {time.monotonic() - start:.1f} s "
          f"(load {os.getloadavg()[0]:.1f})")  # fmt: skip
    try:
        assert res.returncode == 0, res.stdout + res.stderr
        virsh = ["virsh", "-q", "-c", f"qemu:///system?socket={state}/libvirt/sock/libvirt-sock"]
        domains = subprocess.run([*virsh, "list", "--name"], capture_output=True, text=True,
                                 check=True).stdout.split()  # fmt: skip
        assert sorted(domains) == ["vgt-n1", "vgt-n2"]
        xml = subprocess.run([*virsh, "dumpxml", "vgt-n1"], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
        assert "<source bridge='vgt-br0'/>" in xml and "network=" not in xml.split("<interface")[1]
        assert "vagrant up --provider=libvirt" not in res.stderr  # it did not fail
        for i, name in enumerate(("n1", "n2"), start=1):
            out = ssh(state, name, "hostname; ip -4 -o addr show eth0; cat /proc/1/comm; "
                      f"ping -c 2 -W 5 n{3 - i} >/dev/null && echo reached")  # fmt: skip
            assert out.returncode == 0, out.stderr
            lines = out.stdout.splitlines()
            assert lines[0] == name
            assert f"10.77.153.{10 + i}/24" in lines[1]
            assert lines[2] == "systemd"  # a VM of its own: its init is PID 1
            assert lines[-1] == "reached"
        start = time.monotonic()
        test = clew("test", "etcd", "--provider", "vagrant", "--nodes", "2",
                    "--cluster-state-dir", str(state),
                    "--time-limit", "20", "--rate", "5", "--concurrency", "2",
                    "--store", str(tmp_path / "store"), "-o", "ready_timeout=240",
                    env=env)  # fmt: skip
        print(f"clew test etcd: {time.monotonic() - start:.1f} s, exit {test.returncode} "
              f"(load {os.getloadavg()[0]:.1f}): {test.stdout.strip()[-300:]}")  # fmt: skip
        assert test.returncode == 0, test.stdout[-2000:] + test.stderr[-2000:]
    finally:
        start = time.monotonic()
        down = clew("cluster", "down", "--provider", "vagrant", "--state-dir", str(state),
                    env=env, timeout=900)  # fmt: skip
        print(f"clew cluster down: {time.monotonic() - start:.1f} s")
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers(state) == {"links": [], "processes": [], "routes": "", "files": []}
    assert firewall() == rules_before
    for mp in ("/var/lib/libvirt", "/run/libvirt"):
        assert not os.path.isdir(mp) or not os.listdir(mp)
