"""The vagrant provider's network=bridge mode, without VMs: the box built from a small
fake image (with the real qemu-img), the Vagrantfile it writes, its options, and what it
asks a (fake) vagrant. The real thing is tests/integration/test_vagrant_libvirt.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from clusters.base import ClusterSpec
from clusters.qemu_vm import KERNEL_ARGS
from clusters.vagrant import VagrantProvider
from clusters.vagrant_box import BOX_FILE, add_box, box_name, build_box
from clusters.vagrant_libvirt import _clean, bridge_net, render_libvirt_vagrantfile
from clusters.vm_image import VmImage
from harness.errors import ConfigError


def fake_image(tmp_path: Path) -> VmImage:
    d = tmp_path / "0123456789abcdef"
    d.mkdir()
    with open(d / "rootfs.raw", "wb") as f:
        f.truncate(3 * 2**30 - 4096)  # sparse, just under 3 GiB
        f.seek(2**20)
        f.write(b"clew" * 1024)
    (d / "vmlinuz").write_bytes(b"kernel")
    (d / "initrd.img").write_bytes(b"initrd")
    (d / "manifest.json").write_text("{}")
    return VmImage(directory=d, digest=d.name)


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img (qemu-utils)")
def test_box_holds_the_image_as_qcow2_with_its_kernel(tmp_path: Path) -> None:
    image = fake_image(tmp_path)
    first = build_box(image)
    assert first.built and first.path == image.directory / BOX_FILE
    with tarfile.open(first.path) as tar:
        names = sorted(tar.getnames())
        meta = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
        vagrantfile = tar.extractfile("Vagrantfile").read().decode()  # type: ignore[union-attr]
        disk = tar.extractfile("box.img").read(4)  # type: ignore[union-attr]
        kernel = tar.extractfile("vmlinuz").read()  # type: ignore[union-attr]
    assert names == ["Vagrantfile", "box.img", "initrd.img", "metadata.json", "vmlinuz"]
    assert meta == {"provider": "libvirt", "format": "qcow2", "virtual_size": 3}
    assert disk == b"QFI\xfb" and kernel == b"kernel"
    assert 'lv.kernel = File.join(here, "vmlinuz")' in vagrantfile
    assert f'lv.cmd_line = "{KERNEL_ARGS}"' in vagrantfile
    assert not any(p.name.startswith(".box-") for p in image.directory.iterdir())
    assert not build_box(image).built  # there already
    assert build_box(image, force=True).built


FAKE_VAGRANT = """#!/bin/sh
echo "$*" >> {log}
case "$1 $2" in
  "box list") cat {listed} ;;
  "box add") exit 0 ;;
  *) exit 3 ;;
esac
"""


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img (qemu-utils)")
def test_add_box_adds_only_a_box_vagrant_lacks(tmp_path: Path) -> None:
    image = fake_image(tmp_path)
    log, listed = tmp_path / "calls", tmp_path / "listed"
    listed.write_text("debian/bookworm64 (libvirt, 12.2)\n")
    vagrant = tmp_path / "vagrant"
    vagrant.write_text(FAKE_VAGRANT.format(log=log, listed=listed))
    vagrant.chmod(0o755)
    assert add_box(str(vagrant), image) == "clew/vm-0123456789abcdef" == box_name(image)
    assert log.read_text().splitlines() == [
        "box list",
        f"box add --force --name clew/vm-0123456789abcdef {image.directory / BOX_FILE}",
    ]
    listed.write_text("clew/vm-0123456789abcdef (libvirt, 0)\n")
    add_box(str(vagrant), image)
    assert log.read_text().splitlines()[-1] == "box list"


def test_the_vagrantfile_uses_clews_bridge_and_no_management_network(tmp_path: Path) -> None:
    net = bridge_net({"prefix": "vgt-", "subnet": "10.77.153.0/24"}, 2)
    text = render_libvirt_vagrantfile(
        net, ["n1", "n2"], box="clew/vm-x", memory=512, cpus=1, state=tmp_path,
        libvirt_uri="qemu:///system?socket=/s/libvirt-sock", kvm=False, boot_timeout=900,
    )  # fmt: skip
    assert "['n1', '10.77.153.11', '52:54:00:4d:99:0b']" in text
    assert "['n2', '10.77.153.12', '52:54:00:4d:99:0c']" in text
    for line in (
        "lv.mgmt_attach = false",
        "node.vm.network :public_network, dev: 'vgt-br0', type: \"bridge\"",
        'lv.driver = "qemu"',
        'lv.cpu_model = "qemu64"',
        "config.ssh.insert_key = false",
        'config.ssh.sudo_command = "%c"',
        'config.ssh.username = "root"',
        'lv.qemuargs value: "-fw_cfg"',
        "lv.uri = 'qemu:///system?socket=/s/libvirt-sock'",
        "lv.default_prefix = 'vgt-'",
        "config.vm.boot_timeout = 900",
        f"STATE = '{tmp_path}'",
    ):
        assert line in text, line
    assert "private_network" not in text and "management_network" not in text


def test_values_in_the_vagrantfile_cannot_run_ruby(tmp_path: Path) -> None:
    """A state path (a stored run may name it) went into `STATE = "..."`, where #{...}
    runs as code when vagrant loads the file."""
    net = bridge_net({"prefix": "vgt-", "subnet": "10.77.153.0/24"}, 1)
    state = tmp_path / "c#{`touch /tmp/pwned`}'x\\"
    text = render_libvirt_vagrantfile(
        net, ["n1"], box="clew/vm-#{`id`}", memory=512, cpus=1, state=state,
        libvirt_uri=f"qemu:///system?socket={state}/sock", kvm=False, boot_timeout=900,
    )  # fmt: skip
    assert '"c#{' not in text and '"clew/vm-#{' not in text
    assert "STATE = '" + str(state).replace("\\", "\\\\").replace("'", "\\'") + "'" in text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prefix": "Bad_"}, "lowercase letters"),
        ({"subnet": "10.77.153.1/24"}, "host bits set"),
        ({"subnet": "10.77.153.0/29"}, "no room for 3 nodes"),
        ({"first_host": "x"}, "must be a number"),
    ],
)
def test_bad_network_options(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        bridge_net(options, 3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"network": "nat"}, "use private or bridge"),
        ({"network": "bridge", "box": "debian/bookworm64"}, "box do not apply to network=bridge"),
        ({"prefix": "vgt-"}, "prefix do not apply to network=private"),
    ],
)
def test_options_of_one_mode_are_refused_in_the_other(
    tmp_path: Path, options: dict[str, str], message: str
) -> None:
    spec = ClusterSpec(provider="vagrant", nodes=2, state_dir=str(tmp_path / "s"), options=options)
    with pytest.raises(ConfigError, match=message):
        VagrantProvider().up(spec)
    assert not (tmp_path / "s").exists()


def test_vagrants_progress_lines_are_dropped_from_its_log() -> None:
    raw = "==> n1: Uploading\r\x1b[KProgress: 0%\r\x1b[KProgress: 99%\r\x1b[K==> n1: Creating\n"
    assert _clean(raw) == "==> n1: Uploading\n==> n1: Creating\n"


def test_vagrant_box_without_vm_is_a_usage_error() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "harness.cli", "image", "build", "--suite", "etcd", "--vagrant-box"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 254
    assert "--vagrant-box goes with --vm" in res.stderr


def test_ruby_str_reads_back_as_the_text_in_ruby() -> None:
    import shutil
    import subprocess

    from clusters._ruby import ruby_str

    texts = ["/tmp/c#{`touch /tmp/clew-ruby-pwned`}'x\\", "a'b", "plain", "\\'#{1}"]
    assert ruby_str("a'b\\") == "'a\\'b\\\\'"
    ruby = shutil.which("ruby")  # (vagrant's own interpreter, where it is installed)
    for text in texts if ruby else []:
        out = subprocess.run([ruby, "-e", f"print({ruby_str(text)})"], capture_output=True,
                             text=True, timeout=60, check=True)  # fmt: skip
        assert out.stdout == text
    assert not Path("/tmp/clew-ruby-pwned").exists()
