"""`clew image build`: what a failed mmdebstrap is reported with (a fake mmdebstrap
that prints what the real one printed here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clusters.container_image import image_inputs, run_logged
from harness.errors import ClusterError, ConfigError

# mmdebstrap bookworm ... --include=python3,nosuchpkgx (lines as printed, I: lines cut)
UNKNOWN_PACKAGE = """\
I: running apt-get update...
Reading package lists...
Building dependency tree...
E: Unable to locate package nosuchpkgx
E: setup failed: E: apt-get -o Dir::Bin::dpkg=env --yes install python3 nosuchpkgx failed
I: main() received signal PIPE: waiting for setup...
I: removing tempdir /tmp/mmdebstrap.9RuwtaRqkM...
E: mmdebstrap failed to run
"""

# mmdebstrap bookworm OUT "deb notaurl bookworm main"
BAD_SOURCE = """\
E: Malformed entry 1 in list file /tmp/mmdebstrap.Fs5U/etc/apt/sources.list (URI parse)
E: The list of sources could not be read.
E: apt-get update --error-on=any -oAPT::Status-Fd=<$fd> -oDpkg::Use-Pty=false failed
E: mmdebstrap failed to run
"""


@pytest.mark.parametrize(
    ("output", "said", "not_said"),
    [(UNKNOWN_PACKAGE, "mmdebstrap exited with status 25: E: Unable to locate package "
      "nosuchpkgx", "received signal PIPE"),
     (BAD_SOURCE, "E: Malformed entry 1 in list file /tmp/mmdebstrap.Fs5U/etc/apt/"
      "sources.list (URI parse) | E: The list of sources could not be read.", "apt-get update")],
)  # fmt: skip
def test_a_failed_build_names_apts_own_error(
    tmp_path: Path, output: str, said: str, not_said: str
) -> None:
    """The error of an unknown --package was mmdebstrap's last four lines, which hold apt's
    install command line but not "Unable to locate package"."""
    (tmp_path / "out.txt").write_text(output)
    tool = tmp_path / "mmdebstrap"
    tool.write_text(f"#!/bin/sh\ncat {tmp_path / 'out.txt'}\nexit 25\n")
    tool.chmod(0o755)
    lines: list[str] = []
    with pytest.raises(ClusterError) as e:
        run_logged([str(tool)], 60, lines.append, "mmdebstrap")
    assert said in str(e.value) and not_said not in str(e.value)


def test_a_mirror_that_is_not_a_url_is_refused_before_mmdebstrap_runs() -> None:
    """--mirror notaurl became `deb notaurl bookworm main` and failed in apt-get update."""
    with pytest.raises(ConfigError, match="--mirror 'notaurl' is not a URL"):
        image_inputs(["etcd"], release="bookworm", mirrors=["notaurl"])
    inputs = image_inputs(["etcd"], release="bookworm",
                          mirrors=["http://deb.example/debian", "deb file:///m bookworm main"])
    assert inputs.mirrors == ("deb http://deb.example/debian bookworm main",
                              "deb file:///m bookworm main")


def test_a_ctrl_c_stops_the_build_and_lets_it_clean_up(tmp_path: Path) -> None:
    """mmdebstrap runs in its own session, so a Ctrl-C never reached it: clew exited and
    the build went on, with /proc, /sys and /dev mounted in its chroot, and stopped
    later left them there. Now its process group gets SIGTERM and clew waits for it."""
    import os
    import time

    tool = tmp_path / "mmdebstrap"
    tool.write_text(f"""#!/bin/sh
sleep 60 & echo $! > {tmp_path / 'child.pid'}
trap 'kill $! 2>/dev/null; echo cleaned > {tmp_path / 'cleaned'}; exit 1' TERM
echo "I: installing essential packages..."
wait
""")
    tool.chmod(0o755)

    said: list[str] = []

    def ctrl_c(line: str) -> None:
        said.append(line)
        if len(said) == 1:
            raise KeyboardInterrupt  # while it builds

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_logged([str(tool)], 60, ctrl_c, "mmdebstrap")
    assert time.monotonic() - t0 < 30
    assert (tmp_path / "cleaned").read_text() == "cleaned\n"
    assert said[1].startswith("stopping mmdebstrap: it unmounts")
    child = int((tmp_path / "child.pid").read_text())
    for _ in range(50):  # (the group's SIGTERM reached it; reaped by init)
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the build's child {child} still runs")


@pytest.mark.parametrize("package", ["bad name!", "a,b", "Upper", "x", "-dash", ""])
def test_a_package_that_is_no_debian_name_is_refused_before_mmdebstrap_runs(
    package: str,
) -> None:
    """--package 'bad name!' went to mmdebstrap's --include and failed after apt's setup
    (a comma made two packages)."""
    with pytest.raises(ConfigError, match=f"--package {package!r} is not a Debian package"):
        image_inputs(["etcd"], release="bookworm", mirrors=["http://deb.example/debian"],
                     extra_packages=[package])  # fmt: skip
    inputs = image_inputs(["etcd"], release="bookworm", mirrors=["http://deb.example/debian"],
                          extra_packages=["g++", "libc6:amd64", "curl=7.88.1-10"])  # fmt: skip
    assert {"g++", "libc6:amd64", "curl=7.88.1-10"} <= set(inputs.packages)
