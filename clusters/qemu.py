"""The qemu provider: nodes as QEMU VMs, each with its own kernel, clock and disk.

``up`` boots ``n1..nN`` from one VM image built by ``clew image build --vm``
(:mod:`clusters.vm_image`): each VM gets a qcow2 overlay on the image's root file system,
a tap ``<prefix>t<i>`` on a bridge ``<prefix>br0`` of clew's own (the host is ``.1``,
nodes ``.11``, ``.12``, …), a MAC made of its address, and its own SSH host key. Node
configuration (name, address, keys, ``/etc/hosts``) reaches the guest as a fw_cfg file
(:mod:`clusters.qemu_vm`). Nodes are reached over SSH as root, by people too::

    ssh -F <state-dir>/ssh_config n1

**Saved states.** A cold boot under software emulation takes tens of seconds. After one,
``up`` pauses each VM, saves its state in its overlay (``savevm``), copies the overlay to
``<image>/states/<key>/`` with the cluster's keys, and resumes. Another ``up`` with the
same key (image, QEMU version, accelerator, memory, CPUs, subnet, addresses, node count)
copies those overlays and starts the VMs with ``-loadvm``: a few seconds. A restored guest
wakes with the clock it had when saved, so ``up`` sets every node's clock to the host's
(``date -s`` over SSH) after a restore and after a save. Restored clusters share their
SSH keys with the saved state (kept in the image cache, mode 0600); ``saved_states=false``
boots cold with new keys every time.

**Cleanup.** As the local provider does, ``up`` writes the ledger (:mod:`clusters._ledger`)
before creating anything and records each bridge and tap before it creates it, and each
VM's pidfile path before it starts; ``down`` stops exactly those VMs (by a PID whose
command line names that pidfile), deletes exactly those interfaces, and removes the state
files: it works after a crashed ``up`` and leaves nothing. The host's own interfaces,
routes and firewall are only read.

**Limits** (options, with defaults in :mod:`clusters.qemu_opts`): ``memory`` (MB per VM),
``cpus``, ``tb_size`` (TCG's translation cache, MB), ``boot_timeout``,
``restore_timeout``, and ``memory_headroom``: ``up`` refuses, before starting any VM,
when the host's available memory is below what the VMs need plus that headroom.

Needs root (taps and a bridge), ``qemu-system-x86``, ``qemu-utils`` and ``ssh``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from clusters import _netns, _sshd
from clusters._bridged import (
    check_config,
    check_foreign_files,
    check_provider,
    check_subnet_free,
)
from clusters._ledger import LEDGER_FILE, LOCK_FILE, Ledger, state_lock
from clusters._run import run, which
from clusters.base import (
    CLUSTER_FILE,
    Capability,
    Cluster,
    ClusterSpec,
    ClusterStatus,
    Node,
    down_command,
)
from clusters.doctor import check_nodes
from clusters.qemu_opts import QemuOptions
from clusters.qemu_power import end_power_lease
from clusters.qemu_vm import (
    KERNEL_ARGS,
    SNAPSHOT,
    Accel,
    Qmp,
    VmFiles,
    choose_accel,
    launch,
    qemu_command,
    qemu_version,
    rss_mb,
    stop_vm,
    vm_pid,
)
from clusters.static import remote_capabilities
from clusters.vm_image import FW_CFG_NAME, VmImage, find_vm_image
from harness.errors import ClusterError
from nemeses.base import DEFAULT_FAULT_LEASE, DEFAULT_FAULT_TIMEOUT

__all__ = ["QemuProvider", "doctor_checks"]

log = logging.getLogger(__name__)

KEY_FILE = "id_ed25519"
SSH_CONFIG = "ssh_config"
KNOWN_HOSTS = "known_hosts"
NODES_DIR = "nodes"
STATE_FILES = (CLUSTER_FILE, CLUSTER_FILE + ".tmp", LEDGER_FILE, LEDGER_FILE + ".tmp",
               KEY_FILE, KEY_FILE + ".pub", KNOWN_HOSTS, SSH_CONFIG, LOCK_FILE)  # fmt: skip
#: Bumped when what a saved state holds changes in a way its key does not show.
STATE_RECIPE = 1
#: Seconds a fault command may take on a VM under software emulation (TCG), unless the
#: cluster option ``fault_timeout`` or ``clew test --fault-timeout`` says otherwise: a
#: command starting python3 or forking a few processes took 15-40 s there at load 11-17.
TCG_FAULT_TIMEOUT = 120.0
#: The fault lease (seconds) on TCG VMs unless ``clew test --fault-lease`` says otherwise:
#: a lease renewal over SSH took longer than the default 10 s at load 11-20, and the
#: nodes' guards healed faults the run still held.
TCG_FAULT_LEASE = 60.0
#: Seconds setting a node's clock over SSH may take.
SSH_TIMEOUT = 30.0
_REQUIRED_TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}
_SSHD_CONF = """# clew (qemu provider)
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxSessions 64
MaxStartups 64:30:128
"""


class QemuProvider:
    """Clusters of QEMU VMs on a bridge of clew's own. Implements
    :class:`clusters.base.Provider`; see the module docstring."""

    name = "qemu"
    makes_nodes = True

    # --- the Provider protocol ---------------------------------------------------------

    def check_spec(self, spec: ClusterSpec) -> None:
        """Refuse the options ``up`` would refuse (:meth:`QemuOptions.from_spec`)."""
        QemuOptions.from_spec(spec)

    def up(self, spec: ClusterSpec) -> Cluster:
        """Bring ``spec.nodes`` VMs up (restored from a saved state when one fits, else
        booted cold and then saved), set their clocks, save the cluster and return it.

        Returns the running cluster if the same one is already up and healthy; cleans a
        leftover of ours first; refuses before creating anything when the subnet or a
        name is in use or the host lacks the memory. If it fails half-way it removes
        everything it made and raises :class:`ClusterError`."""
        opts = QemuOptions.from_spec(spec)
        state = spec.resolved_state_dir().absolute()
        _require_root()
        _require_tools()
        image = find_vm_image(opts.image)
        made_dir = not state.exists()
        state.mkdir(parents=True, exist_ok=True)
        made_lock = not (state / LOCK_FILE).exists()
        ours = (state / LEDGER_FILE).exists()
        try:
            with state_lock(state):
                current = self._already_up(state, spec, opts, image)
                if current is not None:
                    return current
                self._teardown(state, keep_dir=True)
                check_foreign_files(state, "qemu", (*STATE_FILES, NODES_DIR))
                try:
                    return self._build(state, spec, opts, image)
                except BaseException as e:
                    log.info("bringing the VMs up failed (%s); removing what was made", e)
                    try:
                        self._teardown(state, keep_dir=True)
                    except ClusterError as cleanup:
                        raise ClusterError(
                            f"{e}. Cleaning up after that also failed: {cleanup}. Run `clew "
                            f"cluster down --state-dir {state}` once the cause is fixed"
                        ) from e
                    raise
        finally:
            if not (state / LEDGER_FILE).exists():
                if made_lock or ours:
                    with contextlib.suppress(FileNotFoundError):
                        (state / LOCK_FILE).unlink()
                if made_dir or ours:
                    with contextlib.suppress(OSError):
                        state.rmdir()

    def down(self, state_dir: Path) -> None:
        """Stop exactly the cluster's VMs, delete its taps and bridge and its state files.
        Works after a crashed ``up``; does nothing when nothing of ours is there."""
        state = Path(state_dir).absolute()
        if not (state / LEDGER_FILE).exists() and not (state / CLUSTER_FILE).exists():
            return
        check_provider(state, QemuProvider.name)
        _require_root()
        with state_lock(state):
            self._teardown(state)

    def status(self, state_dir: Path) -> ClusterStatus:
        """Node by node: ``"up"``, or why not (QEMU not running, sshd not answering)."""
        state = Path(state_dir).absolute()
        if not (state / CLUSTER_FILE).exists():
            why = (
                f"a half-built cluster is left in {state}; `clew cluster down --provider qemu "
                f"--state-dir {state}` removes it"
                if (state / LEDGER_FILE).exists()
                else f"no cluster is up in {state}"
            )
            return ClusterStatus(cluster=None, problems=(why,))
        cluster = Cluster.load(state)
        problems = []
        bridge = str(cluster.extra.get("bridge", ""))
        if os.geteuid() == 0 and bridge not in _netns.existing_links():
            problems.append(f"bridge {bridge} is missing")
        running = [n for n in cluster.nodes if vm_pid(_files(state, n.name).pidfile)]
        tcp = check_nodes(running)
        nodes = {
            n.name: tcp.get(n.name, f"QEMU is not running ({_files(state, n.name).pidfile})")
            for n in cluster.nodes
        }
        return ClusterStatus(cluster=cluster, nodes=nodes, problems=tuple(problems))

    def capabilities(self) -> tuple[Capability, ...]:
        """What VM nodes can take: every remote fault kind, with the system clock (each
        VM has its own kernel clock) and netem (its own kernel); libfaketime only if the
        image has it (``clew image build --vm --package libfaketime``)."""
        caps = {c.name: c for c in remote_capabilities("the VMs", own_clock=True)}
        caps["clock-system"] = Capability(
            name="clock-system", available=True,
            detail="each VM has its own kernel clock (date -s as root over SSH)",
        )  # fmt: skip
        caps["power-off"] = Capability(
            name="power-off", available=True,
            detail="SIGKILL of a VM's QEMU (its page cache is lost), then a cold start "
            "from its disk",
        )  # fmt: skip
        caps["clock-libfaketime"] = Capability(
            name="clock-libfaketime", available=False,
            detail="not in the VM image unless built with --package libfaketime; the "
            "system clock works for every database",
        )  # fmt: skip
        return tuple(caps.values())

    def power_off(self, cluster: Cluster, node: str, *, lease: float | None = None) -> bool:
        """Kill ``node``'s VM at once (SIGKILL of its QEMU: its page cache is lost);
        whether it ran. With ``lease``, a guard on this host powers it on once the lease
        goes unrenewed that long (:func:`clusters.qemu_power.power_off`)."""
        from clusters.qemu_power import power_off

        return power_off(cluster, node, lease=lease)

    def renew_power(self, cluster: Cluster, node: str) -> None:
        """Renew the lease of ``node``'s power-off (:func:`clusters.qemu_power.renew_power`)."""
        from clusters.qemu_power import renew_power

        renew_power(cluster, node)

    def power_on(self, cluster: Cluster, node: str, *, within: float, wait: bool = True) -> bool:
        """Start ``node``'s VM again from its disk unless it runs and wait for its sshd
        (with ``wait=False``, only if it was started); whether it had to be started
        (:func:`clusters.qemu_power.power_on`)."""
        from clusters.qemu_power import power_on

        return power_on(cluster, node, within=within, wait=wait)

    # --- building ----------------------------------------------------------------------

    def _already_up(
        self, state: Path, spec: ClusterSpec, opts: QemuOptions, image: VmImage
    ) -> Cluster | None:
        if not (state / CLUSTER_FILE).exists():
            return None
        check_provider(state, QemuProvider.name)
        ledger = Ledger.load(state)
        st = self.status(state)
        if not st.healthy or ledger is None:
            return None
        check_config(state, "qemu", ledger.config, _config(spec, opts, image),
                     "use another --name")  # fmt: skip
        assert st.cluster is not None
        return st.cluster

    def _preflight(self, state: Path, opts: QemuOptions) -> None:
        check_subnet_free(opts.subnet, "with --option subnet=...")
        links = _netns.existing_links()
        taken = [n for n in [opts.bridge, *(opts.tap(i) for i in range(1, opts.nodes + 1))]
                 if n in links]  # fmt: skip
        if taken:
            raise ClusterError(
                f"interface(s) {', '.join(taken)} already exist and are not part of the cluster "
                f"in {state}: another cluster with the prefix {opts.prefix!r} may be up. "
                "Choose another --option prefix=..., or bring that cluster down"
            )
        need = opts.host_mb_needed()
        avail = _available_mb()
        if avail is not None and avail < need:
            raise ClusterError(
                f"{opts.nodes} VMs need about {need} MB of host memory ({opts.memory} MB of RAM "
                f"each, QEMU's overhead and {opts.tb_size} MB of TCG cache, plus "
                f"{opts.memory_headroom} MB of headroom) but {avail} MB are available; use "
                "fewer --nodes or a smaller --option memory=..."
            )

    def _build(self, state: Path, spec: ClusterSpec, opts: QemuOptions, image: VmImage) -> Cluster:
        t0 = time.monotonic()
        accel = choose_accel(opts.accel)
        self._preflight(state, opts)
        ledger = Ledger(state_dir=state, config=_config(spec, opts, image))
        ledger.save()  # from here on, `down` knows this cluster is ours to clean
        names = [f"n{i}" for i in range(1, opts.nodes + 1)]
        ips = [str(opts.node_ip(i)) for i in range(1, opts.nodes + 1)]
        files = [VmFiles(dir=state / NODES_DIR / n) for n in names]
        for f in files:
            f.dir.mkdir(parents=True, exist_ok=True)
        key = _state_key(opts, image, accel)
        saved = image.directory / "states" / key
        restore = opts.saved_states and (saved / "meta.json").is_file()
        if restore:
            self._stage_saved(state, saved, names, files)
        else:
            self._stage_new(state, spec, opts, image, names, ips, files)
        _write_client_files(state, names, ips)

        ledger.intend("bridge", opts.bridge)
        _netns.create_bridge(opts.bridge, str(opts.bridge_address), opts.subnet.prefixlen)
        for ip in ips:
            dev = _netns.route_device(ip)
            if dev != opts.bridge:
                raise ClusterError(
                    f"after creating bridge {opts.bridge}, the host routes {ip} through {dev}, "
                    "not the bridge; choose another --option subnet=..."
                )
        for i in range(1, opts.nodes + 1):
            ledger.intend("tap", opts.tap(i))
            run(["ip", "tuntap", "add", "dev", opts.tap(i), "mode", "tap"],
                what=f"create tap {opts.tap(i)}")  # fmt: skip
            run(["ip", "link", "set", opts.tap(i), "master", opts.bridge, "up"],
                what=f"attach tap {opts.tap(i)} to {opts.bridge}")  # fmt: skip
        t_net = time.monotonic()

        for i, (name, f) in enumerate(zip(names, files, strict=True), start=1):
            ledger.intend("vm", str(f.pidfile))
            argv = qemu_command(
                name=f"{opts.prefix}{name}", files=f, image_kernel=image.kernel,
                image_initrd=image.initrd, accel=accel, memory=opts.memory, cpus=opts.cpus,
                tb_size=opts.tb_size, tap=opts.tap(i), mac=opts.mac(i), fw_cfg=FW_CFG_NAME,
                loadvm=restore,
            )  # fmt: skip
            # What a power-on (clusters.qemu_power) starts again: the same VM from its disk.
            f.argv.write_text(json.dumps([a for a in argv if a not in ("-loadvm", SNAPSHOT)]))
            ledger.pids[name] = {"qemu": launch(argv, f"VM {name}")}
            ledger.save()
        timeout = opts.restore_timeout if restore else opts.boot_timeout
        _wait_ready(names, ips, files, timeout, "restored" if restore else "cold-booted")
        t_ready = time.monotonic()
        if opts.saved_states and not restore:
            self._save_states(state, saved, names, files)
        t_saved = time.monotonic()
        skew = _set_clocks(state, names)
        rss = {n: rss_mb(ledger.pids[n]["qemu"]) for n in names}

        known = str(state / KNOWN_HOSTS)
        keyfile = str(state / KEY_FILE)
        timings = {
            "network": round(t_net - t0, 2),
            "ready": round(t_ready - t_net, 2),
            "save": round(t_saved - t_ready, 2),
            "total": round(time.monotonic() - t0, 2),
        }
        cluster = Cluster(
            provider=self.name,
            name=spec.name,
            state_dir=str(state),
            nodes=tuple(
                Node(name=n, host=ip, user="root", key_file=keyfile, known_hosts=known)
                for n, ip in zip(names, ips, strict=True)
            ),
            capabilities=_image_capabilities(self.capabilities(), image),
            extra={
                "prefix": opts.prefix,
                "subnet": str(opts.subnet),
                "bridge": opts.bridge,
                "taps": {n: opts.tap(i) for i, n in enumerate(names, start=1)},
                "pids": ledger.pids,
                "accel": accel.name,
                "fault_timeout": opts.fault_timeout
                or (TCG_FAULT_TIMEOUT if accel.name == "tcg" else DEFAULT_FAULT_TIMEOUT),
                "fault_lease": TCG_FAULT_LEASE if accel.name == "tcg" else DEFAULT_FAULT_LEASE,
                "accel_reason": accel.reason,
                "image": str(image.directory),
                "start": "restored" if restore else "cold",
                "saved_state": str(saved) if opts.saved_states else None,
                "seconds": timings,
                "rss_mb": rss,
                "clock_offset_after_set": skew,
                "ssh_config": str(state / SSH_CONFIG),
            },
        )
        cluster.save()
        log.info(
            "qemu cluster %r up (%s, %s) in %.1f s; try: ssh -F %s n1",
            spec.name, cluster.extra["start"], accel.name, timings["total"], state / SSH_CONFIG,
        )  # fmt: skip
        return cluster

    def _stage_new(
        self,
        state: Path,
        spec: ClusterSpec,
        opts: QemuOptions,
        image: VmImage,
        names: list[str],
        ips: list[str],
        files: list[VmFiles],
    ) -> None:
        """Fresh keys, each node's configuration archive and an overlay on the image."""
        key = state / KEY_FILE
        host_keys = [f.dir / "ssh_host_ed25519_key" for f in files]
        pairs = zip(host_keys, names, strict=True)
        _sshd.generate_keys(
            [(key, f"clew-{spec.name}")] + [(k, f"clew-{spec.name}-{n}") for k, n in pairs]
        )
        client_pub = (state / (KEY_FILE + ".pub")).read_text()
        hosts = _sshd.hosts_file(list(zip(names, ips, strict=True)))
        for i, (name, ip, f, hk) in enumerate(zip(names, ips, files, host_keys, strict=True), 1):
            f.config.write_bytes(_node_archive(
                name=name, ip=ip, prefixlen=opts.subnet.prefixlen, mac=opts.mac(i), hosts=hosts,
                host_key=hk.read_bytes(), host_pub=hk.with_name(hk.name + ".pub").read_bytes(),
                authorized=client_pub.encode(),
            ))  # fmt: skip
            run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image.rootfs),
                 str(f.disk)], what=f"create {name}'s overlay", timeout=60)  # fmt: skip

    def _stage_saved(
        self, state: Path, saved: Path, names: list[str], files: list[VmFiles]
    ) -> None:
        """Copy a saved state's keys, configuration archives and overlays into ``state``."""
        for src in (KEY_FILE, KEY_FILE + ".pub"):
            shutil.copy2(saved / src, state / src)
        os.chmod(state / KEY_FILE, 0o600)
        for name, f in zip(names, files, strict=True):
            shutil.copyfile(saved / f"{name}.qcow2", f.disk)
            shutil.copyfile(saved / f"{name}.tar", f.config)
            shutil.copyfile(saved / f"{name}.host_key.pub", f.dir / "ssh_host_ed25519_key.pub")

    def _save_states(
        self, state: Path, saved: Path, names: list[str], files: list[VmFiles]
    ) -> None:
        """Pause each VM, ``savevm`` into its overlay, copy the overlay (and the keys and
        archives that go with it) into the image's state cache, resume. Any failure only
        loses the cache entry (logged), never the cluster."""
        part = saved.with_name(saved.name + f".part-{os.getpid()}")
        try:
            part.mkdir(parents=True, exist_ok=False)
            for src in (KEY_FILE, KEY_FILE + ".pub"):
                shutil.copy2(state / src, part / src)
            for name, f in zip(names, files, strict=True):
                with Qmp(f.qmp, timeout=300) as qmp:
                    qmp.command("stop")
                    try:
                        qmp.hmp(f"savevm {SNAPSHOT}")
                        shutil.copyfile(f.disk, part / f"{name}.qcow2")
                    finally:
                        qmp.command("cont")
                shutil.copyfile(f.config, part / f"{name}.tar")
                shutil.copyfile(f.dir / "ssh_host_ed25519_key.pub", part / f"{name}.host_key.pub")
            (part / "meta.json").write_text(
                json.dumps({"nodes": names, "saved": time.time()}) + "\n"
            )
            if saved.exists():
                shutil.rmtree(saved)
            part.rename(saved)
        except (OSError, ClusterError) as e:
            log.warning(
                "could not save the VMs' state in %s (the next up boots cold): %s", saved, e
            )
        finally:
            shutil.rmtree(part, ignore_errors=True)

    # --- tearing down ------------------------------------------------------------------

    def _teardown(self, state: Path, *, keep_dir: bool = False) -> None:
        ledger = Ledger.load(state)
        if ledger is None:
            with contextlib.suppress(ClusterError, FileNotFoundError):
                if Cluster.load(state).provider == self.name:
                    (state / CLUSTER_FILE).unlink()
            return
        errors: list[str] = []
        pidfiles = ledger.names("vm")
        for pidfile in pidfiles:  # first, so that no power-off's guard starts a VM again
            end_power_lease(Path(pidfile).parent)
        with ThreadPoolExecutor(max_workers=max(1, len(pidfiles))) as pool:
            errors.extend(e for e in pool.map(_stop_quietly, pidfiles) if e)
        for obj in reversed(ledger.objects):
            if obj["kind"] in ("tap", "bridge"):
                try:
                    _netns.delete_link(obj["name"])
                except ClusterError as e:
                    errors.append(str(e))
        if errors:
            raise ClusterError(
                f"could not remove everything of the cluster in {state}: {'; '.join(errors)}. "
                f"Its ledger {state / LEDGER_FILE} is kept so `{down_command(state)}` can retry"
            )
        nodes = state / NODES_DIR
        if nodes.is_dir() and not nodes.is_symlink():
            shutil.rmtree(nodes)
        for name in STATE_FILES:
            if name not in (LEDGER_FILE, LOCK_FILE):
                with contextlib.suppress(FileNotFoundError):
                    (state / name).unlink()
        with contextlib.suppress(FileNotFoundError):
            (state / LEDGER_FILE).unlink()
        if not keep_dir:
            with contextlib.suppress(FileNotFoundError):
                (state / LOCK_FILE).unlink()
            with contextlib.suppress(OSError):
                state.rmdir()


def doctor_checks() -> list[Capability]:
    """``clew doctor``'s rows for the qemu provider: its tools, which accelerator VMs
    would use (KVM, else TCG and why), and whether a VM image is built."""
    from clusters.doctor import check_binary

    caps = [
        check_binary("qemu-system-x86_64", "QEMU, for --provider qemu"),
        check_binary("qemu-img", "qemu-utils: the VMs' overlays"),
        check_binary("mmdebstrap", "builds node images (clew image build [--vm])"),
    ]
    if caps[0].available:
        accel = choose_accel("auto")
        caps.append(Capability(name="qemu-accel", available=True,
                               detail=f"{accel.name}: {accel.reason}"))  # fmt: skip
    else:
        caps.append(Capability(name="qemu-accel", available=False,
                               detail="QEMU is not installed: apt-get install qemu-system-x86 "
                               "qemu-utils"))  # fmt: skip
    try:
        image = find_vm_image()
        size = f"{image.disk_bytes / 1e6:.0f} MB"
        caps.append(Capability(name="vm-image", available=True,
                               detail=f"{image.directory} ({size})"))  # fmt: skip
    except ClusterError as e:
        caps.append(Capability(name="vm-image", available=False, detail=str(e)))
    return caps


# --- helpers ----------------------------------------------------------------------------


def _image_capabilities(caps: tuple[Capability, ...], image: VmImage) -> tuple[Capability, ...]:
    """``caps`` with ``clock-libfaketime`` available when ``image`` holds libfaketime."""
    try:
        packages = json.loads((image.directory / "manifest.json").read_text())["base"]["packages"]
    except (OSError, ValueError, KeyError, TypeError):
        return caps
    if "libfaketime" not in packages:
        return caps
    faketime = Capability(
        name="clock-libfaketime",
        available=True,
        detail="libfaketime is in the VM image (not for Go programs)",
    )
    return tuple(faketime if c.name == faketime.name else c for c in caps)


def _files(state: Path, name: str) -> VmFiles:
    return VmFiles(dir=state / NODES_DIR / name)


def _config(spec: ClusterSpec, opts: QemuOptions, image: VmImage) -> dict[str, Any]:
    return {"name": spec.name, **opts.to_json(), "image_digest": image.digest}


def _state_key(opts: QemuOptions, image: VmImage, accel: Accel) -> str:
    """What a saved state depends on: the image, QEMU, the accelerator, the VM's shape
    and every address the guests know."""
    data = {
        "recipe": STATE_RECIPE,
        "image": image.digest,
        "qemu": qemu_version(),
        "kernel_args": KERNEL_ARGS,
        "accel": accel.name,
        "memory": opts.memory,
        "cpus": opts.cpus,
        "nodes": opts.nodes,
        "subnet": str(opts.subnet),
        "first_host": opts.first_host,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _node_archive(
    *, name: str, ip: str, prefixlen: int, mac: str, hosts: str, host_key: bytes,
    host_pub: bytes, authorized: bytes,
) -> bytes:  # fmt: skip
    """The tar archive the guest unpacks at boot (see :mod:`clusters.vm_image`)."""
    network = (f"[Match]\nMACAddress={mac}\n\n[Network]\nAddress={ip}/{prefixlen}\n"
               "LinkLocalAddressing=no\nIPv6AcceptRA=no\n")  # fmt: skip
    entries: list[tuple[str, bytes | None, int]] = [
        ("etc/hostname", f"{name}\n".encode(), 0o644),
        ("etc/hosts", hosts.encode(), 0o644),
        ("etc/systemd/network/10-clew.network", network.encode(), 0o644),
        ("etc/ssh/ssh_host_ed25519_key", host_key, 0o600),
        ("etc/ssh/ssh_host_ed25519_key.pub", host_pub, 0o644),
        ("etc/ssh/sshd_config.d/clew.conf", _SSHD_CONF.encode(), 0o644),
        ("root/.ssh", None, 0o700),
        ("root/.ssh/authorized_keys", authorized, 0o600),
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, data, mode in entries:
            info = tarfile.TarInfo(path)
            info.mode, info.uid, info.gid, info.mtime = mode, 0, 0, int(time.time())
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _write_client_files(state: Path, names: list[str], ips: list[str]) -> None:
    pubs = [(state / NODES_DIR / n / "ssh_host_ed25519_key.pub").read_text() for n in names]
    (state / KNOWN_HOSTS).write_text(_sshd.known_hosts(list(zip(names, ips, pubs, strict=True))))
    (state / SSH_CONFIG).write_text(_sshd.client_config(
        nodes=list(zip(names, ips, strict=True)), key=state / KEY_FILE, known=state / KNOWN_HOSTS
    ).replace("(local provider)", "(qemu provider)"))  # fmt: skip


def _wait_ready(
    names: list[str],
    ips: list[str],
    files: list[VmFiles],
    timeout: float,
    how: str,
    *,
    port: int = 22,
) -> None:
    """Wait until every VM's sshd sends its banner; :class:`ClusterError` after
    ``timeout`` seconds (or as soon as a VM's QEMU exits) quoting its console and what the
    last probe of each silent VM saw.

    An emulated guest on a loaded host can take seconds to fork and re-exec sshd for a new
    connection, so a probe that connects but hears no banner waits twice as long on that
    VM the next time (up to :data:`_BANNER_WAIT_MAX` seconds) instead of giving up at a
    fixed second again and again."""
    pending = dict(zip(names, zip(ips, files, strict=True), strict=True))
    wait = dict.fromkeys(names, _BANNER_WAIT_MIN)
    seen = dict.fromkeys(names, "not probed yet")
    deadline = time.monotonic() + timeout
    while pending:
        for name, (ip, f) in list(pending.items()):
            if vm_pid(f.pidfile) is None:
                raise ClusterError(f"VM {name} ({how}) stopped before sshd answered: "
                                   f"{_console_tail(f)}")  # fmt: skip
            left = max(deadline - time.monotonic(), _BANNER_WAIT_MIN)
            seen[name] = _ssh_banner(ip, min(wait[name], left), port=port)
            if seen[name] == BANNER:
                del pending[name]
            elif seen[name].startswith("connected"):
                wait[name] = min(wait[name] * 2, _BANNER_WAIT_MAX)
        if not pending:
            return
        if time.monotonic() >= deadline:
            details = "; ".join(
                f"{n}: last probe {seen[n]}; {_console_tail(f)}" for n, (_, f) in pending.items()
            )
            raise ClusterError(
                f"sshd did not answer within {timeout:g} s on the {how} VM(s) "
                f"{', '.join(pending)} (raise --option boot_timeout=... or restore_timeout=... "
                f"on a loaded host): {details}"
            )
        time.sleep(0.2)


#: What :func:`_ssh_banner` returns when sshd answered.
BANNER = "banner"
#: Seconds a first probe waits for a VM's banner, and the most a later one waits.
_BANNER_WAIT_MIN = 1.0
_BANNER_WAIT_MAX = 30.0


def _ssh_banner(ip: str, timeout: float, *, port: int = 22) -> str:
    """Connect to ``ip``:``port`` and read the first bytes within ``timeout`` seconds:
    :data:`BANNER` if they are an SSH banner, else what happened, for a message (starting
    with ``connected`` when the connection was made but no banner came)."""
    try:
        s = socket.create_connection((ip, port), timeout=timeout)
    except OSError as e:
        return f"could not connect ({e.strerror or e})"
    with s:
        try:
            s.settimeout(timeout)
            first = s.recv(4)
        except TimeoutError:
            return f"connected, no banner within {timeout:g} s"
        except OSError as e:
            return f"connected, then {e.strerror or e}"
    if first.startswith(b"SSH-"):
        return BANNER
    return f"connected, then {'closed' if not first else f'not a banner: {first!r}'}"


def _console_tail(f: VmFiles, lines: int = 4) -> str:
    try:
        text = f.console.read_text(errors="replace").strip()
    except OSError:
        return "(no console output)"
    tail = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
    return f"console {f.console}: " + (" | ".join(tail) or "(empty)")


#: Run on a node by :func:`_set_clocks`: it says it is ready, reads the host's time and
#: sets the clock to it, then answers a second line with its own time (to measure).
_CLOCK_SCRIPT = (
    'echo ready; read t; date -u -s "@$t" >/dev/null || exit 1; echo set; read x; date +%s.%N'
)


def _set_clocks(state: Path, names: list[str]) -> dict[str, float]:
    """Set every node's clock to this host's (a restored guest wakes with the time it was
    saved at) and return each node's offset from the host afterwards, in seconds. The
    time is sent over an SSH session that is already open (so the seconds an SSH login
    takes under emulation do not count), and the offset is measured against the midpoint
    of one round trip in the same session."""

    def one(name: str) -> float:
        argv = [which("ssh") or "ssh", "-F", str(state / SSH_CONFIG), name, _CLOCK_SCRIPT]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, bufsize=1)  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        timer = threading.Timer(SSH_TIMEOUT, proc.kill)
        timer.start()
        try:
            if proc.stdout.readline().strip() != "ready":
                raise ClusterError(f"cannot set {name}'s clock over SSH: {_ssh_error(proc)}")
            proc.stdin.write(f"{time.time():.6f}\n")
            if proc.stdout.readline().strip() != "set":
                raise ClusterError(f"`date -s` failed on {name}: {_ssh_error(proc)}")
            t0 = time.time()
            proc.stdin.write("x\n")
            answer = proc.stdout.readline().strip()
            t1 = time.time()
            proc.wait()
        finally:
            timer.cancel()
        try:
            return round(float(answer) - (t0 + t1) / 2, 3)
        except ValueError:
            raise ClusterError(f"cannot read {name}'s clock: {_ssh_error(proc)}") from None

    with ThreadPoolExecutor(max_workers=len(names) or 1) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


def _ssh_error(proc: subprocess.Popen[str]) -> str:
    proc.kill()
    _, err = proc.communicate()
    return (err or "").strip() or f"ssh exited with status {proc.returncode}"


def _stop_quietly(pidfile: str) -> str | None:
    try:
        stop_vm(Path(pidfile))
    except ClusterError as e:
        return str(e)
    return None


def _available_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _require_root() -> None:
    if os.geteuid() != 0:
        raise ClusterError(
            "the qemu provider needs root (it creates a bridge and a tap per VM); run clew "
            "as root, e.g. with sudo"
        )


def _require_tools() -> None:
    missing = {t: p for t, p in _REQUIRED_TOOLS.items() if not which(t)}
    if missing:
        raise ClusterError(
            f"the qemu provider needs {', '.join(missing)}, which is not installed; on "
            f"Debian: apt-get install {' '.join(sorted(set(missing.values())))}"
        )
