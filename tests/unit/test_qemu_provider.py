"""The qemu provider's own logic, without VMs: options and limits, names and addresses,
the node archive a guest unpacks, QEMU's command line, saved-state keys, the VM image's
inputs and errors. (Booting real VMs: tests/integration/test_qemu_cluster.py.)"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from clusters import get_provider
from clusters.base import ClusterSpec
from clusters.qemu import _node_archive, _state_key
from clusters.qemu_opts import DEFAULTS, QemuOptions
from clusters.qemu_vm import SNAPSHOT, Accel, VmFiles, choose_accel, qemu_command, vm_pid
from clusters.vm_image import VmImage, _hook_script, find_vm_image, vm_image_inputs
from harness.errors import ClusterError, ConfigError

MIRROR = ("deb http://deb.debian.org/debian bookworm main",)


def _opts(nodes: int = 3, **options: Any) -> QemuOptions:
    return QemuOptions.from_spec(ClusterSpec(provider="qemu", nodes=nodes, options=options))


def test_defaults_are_explicit_and_names_carry_the_prefix() -> None:
    o = _opts()
    assert (o.memory, o.cpus, o.tb_size, o.accel) == (512, 1, 128, "auto")
    assert o.boot_timeout == DEFAULTS["boot_timeout"] and o.saved_states
    assert str(o.subnet) == "10.77.254.0/24" and o.bridge == "clewq-br0"
    assert [o.tap(i) for i in (1, 3)] == ["clewq-t1", "clewq-t3"]
    assert [str(o.node_ip(i)) for i in (1, 2)] == ["10.77.254.11", "10.77.254.12"]
    assert o.mac(2) == "52:54:00:4d:fe:0c"  # 77.254.12
    assert len({o.mac(i) for i in (1, 2, 3)}) == 3


def test_options_from_the_command_line_are_converted() -> None:
    o = _opts(memory="768", saved_states="false", boot_timeout="30", accel="tcg")
    assert (o.memory, o.saved_states, o.boot_timeout, o.accel) == (768, False, 30.0, "tcg")


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"memory": 64}, "`memory`"),
        ({"cpus": 0}, "`cpus`"),
        ({"accel": "hvf"}, "`accel`"),
        ({"saved_states": "maybe"}, "`saved_states`"),
        ({"prefix": "Bad_"}, "`prefix`"),
        ({"prefix": "a-very-long-prefix-"}, "too long"),
        ({"subnet": "10.77.254.0/30"}, "too small"),
        ({"bridge": "other-br0"}, "`bridge`"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        _opts(**options)


def test_the_host_memory_budget_counts_ram_overhead_cache_and_headroom() -> None:
    o = _opts(nodes=3, memory=512, tb_size=128, memory_headroom=256)
    assert o.host_mb_needed() == 3 * (512 + 80 + 128) + 256


def test_node_archive_holds_name_address_keys_with_root_modes() -> None:
    data = _node_archive(
        name="n2", ip="10.77.254.12", prefixlen=24, mac="52:54:00:4d:fe:0c",
        hosts="10.77.254.11\tn1\n", host_key=b"PRIVATE", host_pub=b"ssh-ed25519 AAA",
        authorized=b"ssh-ed25519 BBB clew",
    )  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert all(m.uid == 0 and m.gid == 0 for m in members.values())
        assert members["etc/ssh/ssh_host_ed25519_key"].mode == 0o600
        assert members["root/.ssh"].isdir() and members["root/.ssh"].mode == 0o700
        net = tar.extractfile("etc/systemd/network/10-clew.network")
        assert net is not None
        text = net.read().decode()
        assert "MACAddress=52:54:00:4d:fe:0c" in text and "Address=10.77.254.12/24" in text
        hostname = tar.extractfile("etc/hostname")
        assert hostname is not None and hostname.read() == b"n2\n"


def test_qemu_command_loads_a_saved_state_only_when_restoring(tmp_path: Path) -> None:
    files = VmFiles(dir=tmp_path)
    args = dict(
        name="clewq-n1", files=files, image_kernel=tmp_path / "k", image_initrd=tmp_path / "i",
        accel=Accel("tcg", "test"), memory=512, cpus=1, tb_size=128, tap="clewq-t1",
        mac="52:54:00:4d:fe:0b", fw_cfg="opt/clew/node.tar",
    )  # fmt: skip
    cold = qemu_command(**args, loadvm=False)  # type: ignore[arg-type]
    warm = qemu_command(**args, loadvm=True)  # type: ignore[arg-type]
    assert "-loadvm" not in cold and warm[-2:] == ["-loadvm", SNAPSHOT]
    assert warm[: len(cold)] == cold  # the same devices: a state loads only into those
    joined = " ".join(cold)
    assert "tcg,tb-size=128" in joined and "-m 512" in joined and "-daemonize" in joined
    assert f"file={files.disk},if=virtio" in joined and "ifname=clewq-t1" in joined


def test_state_key_changes_with_what_the_guest_remembers() -> None:
    image = VmImage(directory=Path("/x/abc"), digest="abc")
    tcg = Accel("tcg", "")
    base = _state_key(_opts(), image, tcg)
    assert base == _state_key(_opts(boot_timeout=10, prefix="other-"), image, tcg)
    assert base != _state_key(_opts(memory=1024), image, tcg)
    assert base != _state_key(_opts(nodes=2), image, tcg)
    assert base != _state_key(_opts(subnet="10.77.253.0/24"), image, tcg)
    assert base != _state_key(_opts(), image, Accel("kvm", ""))


def test_accel_tcg_when_asked_for() -> None:
    assert choose_accel("tcg") == Accel("tcg", "asked for (accel=tcg)")


def test_vm_image_digest_covers_disk_size_and_packages() -> None:
    a = vm_image_inputs(["etcd"], release="bookworm", mirrors=MIRROR)
    assert "linux-image-amd64" in a.base.packages and "etcd-server" in a.base.packages
    assert a.digest == vm_image_inputs(["etcd"], release="bookworm", mirrors=MIRROR).digest
    assert a.digest != vm_image_inputs(["etcd"], release="bookworm", mirrors=MIRROR,
                                       disk_size="4G").digest  # fmt: skip
    assert a.digest != vm_image_inputs(["redis"], release="bookworm", mirrors=MIRROR).digest
    with pytest.raises(ConfigError, match="--disk-size"):
        vm_image_inputs(["etcd"], release="bookworm", mirrors=MIRROR, disk_size="lots")


def test_the_image_disables_database_services_and_idle_wakeups() -> None:
    hook = _hook_script()
    assert "systemctl disable" in hook and "etcd" in hook
    assert "apt-daily.timer" in hook and "MODULES=list" in hook
    assert 'rm -f "$root"/etc/ssh/ssh_host_*' in hook  # every node gets its own key


def test_a_missing_vm_image_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="clew image build --vm"):
        find_vm_image(cache_dir=tmp_path)
    (tmp_path / "vm" / "deadbeefdeadbeef").mkdir(parents=True)
    with pytest.raises(ClusterError, match="not a complete VM image"):
        find_vm_image("deadbeefdeadbeef", cache_dir=tmp_path)


def test_the_provider_is_registered_and_can_skew_clocks() -> None:
    prov = get_provider("qemu")
    caps = {c.name: c for c in prov.capabilities()}
    assert caps["clock-system"].available and caps["partition"].available


def test_image_build_vm_refuses_an_engine() -> None:
    argv = [sys.executable, "-m", "harness.cli", "image", "build", "--vm", "--engine", "podman"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 254, res.stderr
    assert "--vm builds a disk image" in res.stderr


def test_libfaketime_is_offered_only_when_the_image_has_it(tmp_path: Path) -> None:
    from clusters.qemu import QemuProvider, _image_capabilities

    caps = QemuProvider().capabilities()
    image = VmImage(directory=tmp_path, digest="x")
    for packages, offered in ((["etcd-server"], False), (["etcd-server", "libfaketime"], True)):
        (tmp_path / "manifest.json").write_text(json.dumps({"base": {"packages": packages}}))
        got = {c.name: c for c in _image_capabilities(caps, image)}
        assert got["clock-libfaketime"].available is offered
        assert got["clock-system"].available


def test_the_provider_switches_power_and_offers_the_power_off_kind() -> None:
    from nemeses import kinds
    from nemeses.power import PowerSwitch

    prov = get_provider("qemu")
    assert isinstance(prov, PowerSwitch)
    assert not isinstance(get_provider("local"), PowerSwitch)
    assert {c.name: c for c in prov.capabilities()}["power-off"].available
    assert kinds.get("power-off").provider_needs == (("power-off",),)
    from clusters.base import Cluster, Node

    nodes = (Node(name="n1", host="10.77.253.11"),)
    local = Cluster(provider="local", name="t", state_dir="/x", nodes=nodes)
    why = kinds.problems(kinds.get("power-off"), local, None)
    assert why and "--provider qemu" in why[0], why
    vms = Cluster(provider="qemu", name="t", state_dir="/x", nodes=nodes)
    assert kinds.problems(kinds.get("power-off"), vms, None) == []


def test_fault_timeout_option_and_the_provider_default() -> None:
    from nemeses.base import DEFAULT_FAULT_TIMEOUT, fault_timeout_for

    assert _opts().fault_timeout is None
    assert _opts(fault_timeout="90").fault_timeout == 90.0
    with pytest.raises(ConfigError, match="`fault_timeout`"):
        _opts(fault_timeout="0")
    from clusters.base import Cluster, Node

    nodes = (Node(name="n1", host="10.77.253.11"),)
    vms = Cluster(provider="qemu", name="t", state_dir="/x", nodes=nodes,
                  extra={"fault_timeout": 120.0})  # fmt: skip
    assert fault_timeout_for(vms) == 120.0
    assert (
        fault_timeout_for(Cluster(provider="local", name="t", state_dir="/x", nodes=nodes))
        == DEFAULT_FAULT_TIMEOUT
        == fault_timeout_for(None)
    )


def test_the_fault_lease_is_the_flag_else_the_providers_default() -> None:
    """Emulated VMs get a 60 s lease unless --fault-lease says otherwise (their renewals
    over SSH outlast 10 s at load); other providers keep 10 s."""
    import random

    from clusters.base import Cluster, Node
    from harness.api import TestContext
    from harness.runplan import fault_lease
    from harness.spec import load_spec
    from nemeses.base import DEFAULT_FAULT_LEASE, fault_lease_for

    nodes = (Node(name="n1", host="10.77.253.11"),)
    vms = Cluster(provider="qemu", name="t", state_dir="/x", nodes=nodes,
                  extra={"fault_lease": 60.0})  # fmt: skip
    local = Cluster(provider="local", name="t", state_dir="/x", nodes=nodes)
    assert fault_lease_for(vms) == 60.0
    assert fault_lease_for(local) == DEFAULT_FAULT_LEASE == fault_lease_for(None) == 10.0

    def ctx(cluster: Cluster) -> TestContext:
        return TestContext(name="t", cluster=cluster, options={}, rng=random.Random(1),
                           run_dir=Path("/x"), concurrency=1, time_limit=1)  # fmt: skip

    assert fault_lease(load_spec(), ctx(vms)) == 60.0
    assert fault_lease(load_spec(), ctx(local)) == 10.0
    assert fault_lease(load_spec(fault_lease=3), ctx(vms)) == 3.0
    with pytest.raises(ConfigError, match="fault_lease"):
        load_spec(fault_lease=0)


def test_power_on_needs_the_vms_command_line(tmp_path: Path) -> None:
    from clusters.base import Cluster, Node
    from clusters.qemu_power import power_off, power_on

    cluster = Cluster(provider="qemu", name="t", state_dir=str(tmp_path),
                      nodes=(Node(name="n1", host="10.77.253.11"),))  # fmt: skip
    assert power_off(cluster, "n1") is False  # no VM runs: nothing to switch off
    with pytest.raises(ClusterError, match=r"argv\.json"):
        power_on(cluster, "n1", within=1)
    with pytest.raises(ClusterError, match="no node 'n9'"):
        power_off(cluster, "n9")


class _SlowSshd:
    """A TCP server on loopback that sends an SSH banner ``delay`` seconds after each
    connection is made (as a loaded emulated guest's sshd does), counting connections."""

    def __init__(self, delay: float) -> None:
        import socket
        import threading

        self.delay, self.connections = delay, 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            self.connections += 1

            def answer(c: Any = conn) -> None:
                with c:
                    self._stop.wait(self.delay)
                    with contextlib.suppress(OSError):
                        c.sendall(b"SSH-2.0-slow\r\n")

            threading.Thread(target=answer, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def _fake_vm(tmp_path: Path) -> tuple[VmFiles, subprocess.Popen[bytes]]:
    """A VM directory whose pidfile names a live process that names the pidfile (as
    QEMU's command line does), so ``vm_pid`` takes it for a running VM."""
    files = VmFiles(dir=tmp_path / "n1")
    files.dir.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             str(files.pidfile)])  # fmt: skip
    files.pidfile.write_text(f"{proc.pid}\n")
    # Right after exec the kernel may not have set the new command line up yet.
    deadline = time.monotonic() + 10
    while vm_pid(files.pidfile) is None:
        assert time.monotonic() < deadline, "the stand-in VM process did not start"
        time.sleep(0.01)
    return files, proc


def test_a_slow_banner_is_waited_for_longer_each_time(tmp_path: Path) -> None:
    """A guest whose sshd takes 1.5 s to send its banner (longer than the first probe
    waits) is still found ready: the next probe of it waits longer. (A fixed one-second
    probe never heard it, and a power-on in CI waited 900 s for three running VMs.)"""
    from clusters.qemu import _wait_ready

    server = _SlowSshd(delay=1.5)
    files, proc = _fake_vm(tmp_path)
    try:
        _wait_ready(["n1"], ["127.0.0.1"], [files], 30, "restored", port=server.port)
        assert server.connections == 2
    finally:
        server.close()
        proc.kill()
        proc.wait()


def test_a_silent_vm_is_named_with_what_its_last_probe_saw(tmp_path: Path) -> None:
    from clusters.qemu import _wait_ready

    server = _SlowSshd(delay=30)
    files, proc = _fake_vm(tmp_path)
    try:
        with pytest.raises(ClusterError) as e:
            _wait_ready(["n1"], ["127.0.0.1"], [files], 2, "powered-on", port=server.port)
        assert "sshd did not answer within 2 s on the powered-on VM(s) n1" in str(e.value)
        assert "n1: last probe connected, no banner within" in str(e.value)
        assert str(e.value).endswith("(no console output)"), e.value
    finally:
        server.close()
        proc.kill()
        proc.wait()


def test_power_on_without_wait_leaves_a_running_vm_unprobed(tmp_path: Path) -> None:
    """``wait=False`` (the power nemesis's setup, whose remotes are connected): a VM that
    runs is neither started nor probed (it returns at once), and its power-off lease
    ends."""
    from clusters.base import Cluster, Node
    from clusters.qemu_power import LEASE_FILE, power_on

    (tmp_path / "nodes").mkdir()
    files, proc = _fake_vm(tmp_path / "nodes")
    (files.dir / LEASE_FILE).write_text("3\n")
    cluster = Cluster(provider="qemu", name="t", state_dir=str(tmp_path),
                      nodes=(Node(name="n1", host="127.0.0.1"),))  # fmt: skip
    try:
        t0 = time.monotonic()
        assert power_on(cluster, "n1", within=5, wait=False) is False
        assert time.monotonic() - t0 < 1
        assert not (files.dir / LEASE_FILE).exists()
    finally:
        proc.kill()
        proc.wait()
