"""Clock faults without nodes: the planner, fault values, the refusal, and the node-side
scripts run for real by ``sh`` in a temporary directory.

The system-clock scripts run with a fake ``date`` first on ``PATH`` (it records ``-s``
instead of setting anything) and a fake uptime file: this machine's clock is shared by
everyone on it and must never be set. The libfaketime scripts run as they would on a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from clusters.base import Capability, Cluster, Node
from harness import api
from harness.control.remote import CommandResult, Remote
from harness.dbs.etcd import EtcdDB
from harness.errors import NemesisError
from nemeses import clock as c
from nemeses import clock_scripts as s
from nemeses.base import NemesisPackage
from tests.unit.local_shell import LocalShell

NODES = ["n1", "n2", "n3", "n4", "n5"]
LIBFAKETIME = c.find_libfaketime()
ETCD_REFUSAL = (
    "clock faults cannot shift etcd's clock on the local provider: etcd is a Go program and "
    "reads the time through the vDSO, which libfaketime cannot intercept, and the local nodes "
    "share the host's clock; use VM nodes (--provider qemu, static or vagrant, where the system "
    "clock can be set) or a database that reads time through libc"
)


# --- helpers -----------------------------------------------------------------------------


def sh(script: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, timeout=30, env=env, check=False
    )


def ok(script: str, env: Mapping[str, str] | None = None) -> str:
    r = sh(script, env)
    assert r.returncode == 0, r.stderr
    return r.stdout


def text_of(path: Path) -> str:
    return path.read_text()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def kill_group(pid: int) -> None:
    """Clean-up of a strobe loop a failed test left (by its PID only)."""
    for target in (-pid, pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, 15)


def cluster(provider: str, *, faketime: bool, system: bool) -> Cluster:
    return Cluster(
        provider=provider,
        name="t",
        nodes=tuple(Node(name=n, host="127.0.0.1") for n in NODES[:1]),
        state_dir="/nonexistent",
        capabilities=(
            Capability(name="clock-libfaketime", available=faketime, detail="libfaketime"),
            Capability(
                name="clock-system",
                available=system,
                detail="needs date and root" if system else "the nodes share the host's clock",
            ),
        ),
    )


LOCAL = cluster("local", faketime=True, system=False)
STATIC = cluster("static", faketime=True, system=True)


class LibcDB:
    name = "probe"
    clock_reads = "libc"


class SilentDB:
    name = "mystery"


def context(cl: Cluster, seed: int = 1) -> api.TestContext:
    return api.TestContext(
        name="clock",
        cluster=cl,
        options={},
        rng=random.Random(seed),
        run_dir=Path("/nonexistent"),
        concurrency=1,
        time_limit=10,
    )


class ShellRemote(LocalShell):
    """A node that is this machine (:class:`LocalShell`); or, with ``canned`` set, one that
    runs nothing: a verify script gets ``canned`` as its output, any other script none (for
    the system clock, which must not be set here)."""

    def __init__(self, name: str, canned: str | None = None) -> None:
        super().__init__(name)
        self.canned = canned

    async def run(self, cmd: str | Sequence[str], **kw: Any) -> CommandResult:
        if self.canned is None:
            return await super().run(cmd, **kw)
        script = cmd if isinstance(cmd, str) else shlex.join(cmd)
        self.commands.append(script)
        text = self.canned if "printf 'clock %s" in script else ""
        return CommandResult(self.name, script, 0, text, "", 0.0)


def remotes(*fakes: ShellRemote) -> Mapping[str, Remote]:
    return {f.name: cast("Remote", f) for f in fakes}


@pytest.fixture
def fake_date(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path, Path]]:
    """(env with a fake ``date`` on PATH, its log of ``-s`` arguments, an uptime file)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "date.log"
    log.write_text("")
    (bin_dir / "date").write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  -s) echo "$2" >>"$FAKE_DATE_LOG" ;;\n'
        "  +%s.%N) echo 1700000000.500000000 ;;\n"
        "  +%N) echo 500000000 ;;\n"
        '  *) echo "fake date: unexpected $*" >&2; exit 2 ;;\n'
        "esac\n"
    )
    (bin_dir / "date").chmod(0o755)
    uptime = tmp_path / "uptime"
    uptime.write_text("100.25 200.00\n")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_DATE_LOG=str(log))
    yield env, log, uptime


def sets(log: Path) -> list[str]:
    return log.read_text().split()


# --- planning ----------------------------------------------------------------------------


def test_same_seed_same_plan_and_seeds_vary() -> None:
    plans = [c.plan_clock(NODES, random.Random(seed)) for seed in range(40)]
    assert plans == [c.plan_clock(NODES, random.Random(seed)) for seed in range(40)]
    assert len({repr(p) for p in plans}) == 40
    assert {p["kind"] for p in plans} == {"bump", "strobe"}


@pytest.mark.parametrize("seed", range(60))
def test_planned_faults_are_valid_canonical_and_within_bounds(seed: int) -> None:
    b = c.ClockBounds()
    fault = c.plan_clock(NODES, random.Random(seed), bounds=b)
    assert c.clock_fault_from_json(fault, NODES) == fault  # already canonical
    if fault["kind"] == "bump":
        targets = list(fault["offsets"])
        values = list(fault["offsets"].values())
    else:
        targets = fault["nodes"]
        values = [fault["delta"]]
        assert b.min_period <= fault["period"] <= b.max_period
        assert b.min_duration <= fault["duration"] <= b.max_duration
    assert targets and targets == [n for n in NODES if n in targets]
    assert all(b.min_offset <= abs(v) <= b.max_offset for v in values)
    assert all(round(v, 3) == v for v in values)


def test_kinds_restrict_the_plan_and_bad_kinds_are_refused() -> None:
    rng = random.Random(3)
    assert {c.plan_clock(NODES, rng, kinds=["strobe"])["kind"] for _ in range(10)} == {"strobe"}
    with pytest.raises(NemesisError, match=r"unknown clock fault kind.*'skew'"):
        c.plan_clock(NODES, rng, kinds=["skew"])
    with pytest.raises(NemesisError, match="repeat"):
        c.plan_clock(["n1", "n1"], rng)
    with pytest.raises(NemesisError, match="at least one node"):
        c.plan_clock([], rng)


def test_bounds_are_checked() -> None:
    with pytest.raises(NemesisError, match="min_offset"):
        c.ClockBounds(min_offset=10, max_offset=1)
    with pytest.raises(NemesisError, match="min_period"):
        c.ClockBounds(min_period=0.001)
    with pytest.raises(NemesisError, match="flip more than"):
        c.ClockBounds(min_period=0.01, max_duration=5000)


def test_fault_values_are_checked_and_made_canonical() -> None:
    bump = {"kind": "bump", "offsets": {"n3": -12.5, "n1": 30}, "mechanism": "libfaketime"}
    assert c.clock_fault_from_json(bump, NODES) == {
        "kind": "bump",
        "offsets": {"n1": 30.0, "n3": -12.5},
    }
    strobe = {"kind": "strobe", "nodes": ["n4", "n2"], "delta": 5, "period": 0.2, "duration": 3}
    assert c.clock_fault_from_json(strobe, NODES)["nodes"] == ["n2", "n4"]
    bad: list[tuple[Any, str]] = [
        ("bump", "mapping with a 'kind'"),
        ({"kind": "skew"}, "kind must be one of"),
        ({"kind": "bump", "offsets": {"n9": 1}}, "unknown node.*n9"),
        ({"kind": "bump", "offsets": {"n1": True}}, "number of seconds"),
        ({"kind": "bump", "offsets": {"n1": math.inf}}, "finite"),
        ({"kind": "bump", "offsets": {"n1": 1e12}}, "at most"),
        ({"kind": "bump", "offsets": {"n1": 1}, "offset": 2}, "no field.*offset"),
        ({**strobe, "nodes": []}, "non-empty list"),
        ({**strobe, "nodes": "n1"}, "non-empty list"),
        ({**strobe, "delta": 0}, "must not be 0"),
        ({**strobe, "period": 0.001}, "at least 0.01"),
        ({**strobe, "duration": -1}, "positive"),
        ({**strobe, "period": 0.01, "duration": 5000}, "flip more than"),
    ]
    for value, message in bad:
        with pytest.raises(NemesisError, match=message):
            c.clock_fault_from_json(value, NODES)


def test_offsets_are_written_as_libfaketime_reads_them() -> None:
    assert s.offset_text(0.0) == "+0"
    assert s.offset_text(30) == "+30.000"
    assert s.offset_text(-12.5) == "-12.500"
    with pytest.raises(ValueError, match="finite"):
        s.offset_text(math.nan)


def test_strobes_flip_an_even_number_of_times() -> None:
    assert s._strobe_flips(0.2, 3.0) == 16
    assert s._strobe_flips(0.5, 0.1) == 2
    assert s._strobe_flips(0.3, 0.9) == 4


# --- choosing a mechanism, and refusing --------------------------------------------------


def test_etcd_on_the_local_provider_is_refused_saying_why_and_what_works() -> None:
    assert EtcdDB().clock_reads == "go-vdso"
    with pytest.raises(NemesisError) as e:
        c.clock_mechanism(LOCAL, EtcdDB())
    assert str(e.value) == ETCD_REFUSAL


def test_mechanism_follows_the_capabilities_and_the_database() -> None:
    assert c.clock_mechanism(LOCAL, LibcDB()) == "libfaketime"
    assert c.clock_mechanism(STATIC, LibcDB()) == "libfaketime"  # per process is gentler
    assert c.clock_mechanism(STATIC, EtcdDB()) == "system"
    assert c.clock_mechanism(STATIC, None) == "system"
    assert c.clock_mechanism(STATIC, LibcDB(), wanted="system") == "system"
    with pytest.raises(NemesisError, match=r"mystery does not say.*clock_reads"):
        c.clock_mechanism(LOCAL, SilentDB())
    with pytest.raises(NemesisError, match=r"etcd is a Go program.*use a database"):
        c.clock_mechanism(STATIC, EtcdDB(), wanted="libfaketime")
    with pytest.raises(NemesisError, match="local nodes share the host's clock; use VM nodes"):
        c.clock_mechanism(LOCAL, LibcDB(), wanted="system")
    no_lib = cluster("local", faketime=False, system=False)
    with pytest.raises(NemesisError, match=r"libfaketime is not available.*apt-get install"):
        c.clock_mechanism(no_lib, LibcDB())
    bare = Cluster(provider="custom", name="t", nodes=(), state_dir="/x")
    with pytest.raises(NemesisError, match="custom provider does not report clock-system"):
        c.clock_mechanism(bare, EtcdDB())

    class Odd:
        name = "odd"
        clock_reads = "rdtsc"

    with pytest.raises(NemesisError, match="odd's clock_reads is 'rdtsc'"):
        c.clock_mechanism(STATIC, Odd())


def test_setup_refuses_before_touching_any_node() -> None:
    remote = ShellRemote("n1")
    nemesis = c.ClockNemesis(db=EtcdDB())
    with pytest.raises(NemesisError) as e:
        asyncio.run(nemesis.setup(context(LOCAL), remotes(remote)))
    assert str(e.value) == ETCD_REFUSAL
    assert remote.commands == []


# --- libfaketime: the environment and the scripts ---------------------------------------


def test_faketime_env_is_what_the_reference_verified() -> None:
    env = c.faketime_env("/run/x/ft.rc", library="/lib/ft.so")
    assert env == {
        "LD_PRELOAD": "/lib/ft.so",
        "FAKETIME_TIMESTAMP_FILE": "/run/x/ft.rc",
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_DISABLE_SHM": "1",
    }
    assert c.faketime_env()["FAKETIME_TIMESTAMP_FILE"] == "/run/clew-clock/faketime.rc"
    assert c.faketime_path("other") == "/run/other-clock/faketime.rc"
    argv = c.faketime_argv(["/usr/bin/db", "--flag"], "/f", library="/l")
    assert argv[0] == "env" and argv[-2:] == ["/usr/bin/db", "--flag"]
    assert "FAKETIME_TIMESTAMP_FILE=/f" in argv


@pytest.mark.skipif(not os.path.exists(LIBFAKETIME), reason="libfaketime is not installed")
def test_a_process_under_faketime_env_follows_the_file_at_run_time(tmp_path: Path) -> None:
    d = str(tmp_path / "clock")
    rc = s.faketime_file(d)
    program = (
        "import sys, time\n"
        "a = time.time(); print('ready', flush=True)\n"
        "sys.stdin.readline(); b = time.time()\n"
        "print(round(b - a))\n"
    )
    env = dict(os.environ, **c.faketime_env(rc))
    proc = subprocess.Popen(  # started before the file exists: real time until then
        [sys.executable, "-c", program],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"  # its first reading is taken
        ok(s.faketime_bump_script(d, 3600))
        out, _ = proc.communicate("\n", timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.strip() == "3600"


def test_faketime_bump_writes_the_offset_and_heal_writes_plus_zero(tmp_path: Path) -> None:
    d = str(tmp_path / "clock")
    rc = Path(s.faketime_file(d))
    assert ok(s.heal_script(d)) == ""  # nothing there: nothing to do
    assert not rc.exists()
    ok(s.faketime_bump_script(d, -12.5))
    assert rc.read_text() == "-12.500\n"
    assert ok(s.verify_script(d)).splitlines()[0] == "faketime -12.500"
    ok(s.heal_script(d))
    ok(s.heal_script(d))  # idempotent
    assert rc.read_text() == "+0\n"
    assert sorted(p.name for p in Path(d).iterdir()) == ["faketime.rc"]  # no temp files left


def test_strobe_alternates_then_heal_stops_it_by_pidfile(tmp_path: Path) -> None:
    d = str(tmp_path / "clock")
    rc = Path(s.faketime_file(d))
    pid = int(ok(s.faketime_strobe_script(d, delta=5, period=0.05, duration=60)))
    try:
        assert Path(f"{d}/strobe.pid").read_text().strip() == str(pid)
        seen = set()
        for _ in range(40):
            seen.add(rc.read_text().strip())
            time.sleep(0.01)
        assert seen == {"+5.000", "+0"}
        assert f"strobe {pid}" in ok(s.verify_script(d)).splitlines()
        ok(s.heal_script(d))
        assert wait_gone(pid, 0.5)  # heal waits for it: already gone
        assert rc.read_text() == "+0\n"
        assert not Path(f"{d}/strobe.pid").exists()
        time.sleep(0.15)
        assert rc.read_text() == "+0\n"  # nothing flips it any more
    finally:
        kill_group(pid)


def test_a_strobe_ends_by_itself_at_plus_zero(tmp_path: Path) -> None:
    d = str(tmp_path / "clock")
    pid = int(ok(s.faketime_strobe_script(d, delta=-3, period=0.05, duration=0.2)))
    try:
        assert wait_gone(pid)
        assert Path(s.faketime_file(d)).read_text() == "+0\n"
        assert not Path(f"{d}/strobe.pid").exists()
    finally:
        kill_group(pid)


def test_a_new_fault_replaces_a_running_strobe(tmp_path: Path) -> None:
    d = str(tmp_path / "clock")
    first = int(ok(s.faketime_strobe_script(d, delta=5, period=0.05, duration=60)))
    try:
        second = int(ok(s.faketime_strobe_script(d, delta=7, period=0.05, duration=60)))
        try:
            assert not alive(first)
            assert alive(second)
            ok(s.faketime_bump_script(d, 2))
            assert wait_gone(second, 0.5)
            assert Path(s.faketime_file(d)).read_text() == "+2.000\n"
        finally:
            kill_group(second)
    finally:
        kill_group(first)


def test_heal_never_signals_a_process_that_is_not_our_strobe(tmp_path: Path) -> None:
    d = tmp_path / "clock"
    d.mkdir()
    other = subprocess.Popen(["sleep", "30"])  # stands for a recycled PID
    try:
        (d / "strobe.pid").write_text(f"{other.pid}\n")
        assert not any(x.startswith("strobe") for x in ok(s.verify_script(str(d))).splitlines())
        ok(s.heal_script(str(d)))
        assert other.poll() is None  # untouched
        assert not (d / "strobe.pid").exists()  # the stale pidfile is gone
    finally:
        other.kill()
        other.wait()


def test_probe_reports_a_missing_library(tmp_path: Path) -> None:
    d = str(tmp_path / "clock")
    out = ok(s.probe_script(d, "libfaketime", library=str(tmp_path / "nope.so")))
    assert "libfaketime is not installed" in out
    if os.path.exists(LIBFAKETIME):
        assert ok(s.probe_script(d, "libfaketime", library=LIBFAKETIME)) == ""
    assert Path(d).is_dir()


# --- the system clock, with a fake `date` -------------------------------------------------


def test_system_bump_sets_true_time_plus_offset_and_heal_uses_the_anchor(
    tmp_path: Path, fake_date: tuple[dict[str, str], Path, Path]
) -> None:
    env, log, uptime = fake_date
    d = str(tmp_path / "clock")
    # The node's clock (1700000000.5) is 0.5 s past the controller's time sent: the
    # command started late, so the node's own clock is the truth.
    ok(s.system_bump_script(d, 1700000000.0, 30.0, uptime_file=str(uptime)), env)
    assert Path(f"{d}/anchor").read_text() == "1699999900.250\n"  # node time - uptime
    assert sets(log) == ["@1700000030.500"]
    uptime.write_text("160.25 0\n")  # a minute later, with no controller
    ok(s.heal_script(d, uptime_file=str(uptime)), env)
    assert sets(log)[-1] == "@1700000060.500"  # the true time, from the anchor
    assert not Path(f"{d}/anchor").exists()
    ok(s.heal_script(d, uptime_file=str(uptime)), env)
    assert len(sets(log)) == 2  # no anchor: the clock is left alone


@pytest.mark.parametrize(
    ("controller", "anchor"),
    [
        (1700000000.0, "1699999900.250"),  # the node 0.5 s later: a late start, its own time
        (1700000001.0, "1699999900.750"),  # the node behind the controller: the controller's
        (1699999000.0, "1699998899.750"),  # the node 1000.5 s ahead (> START_LAG): wrong
    ],
)
def test_system_anchor_is_the_nodes_clock_only_when_it_agrees_with_the_controller(
    tmp_path: Path, fake_date: tuple[dict[str, str], Path, Path], controller: float, anchor: str
) -> None:
    env, log, uptime = fake_date
    d = str(tmp_path / "clock")
    ok(s.system_bump_script(d, controller, 30.0, uptime_file=str(uptime)), env)
    assert Path(f"{d}/anchor").read_text() == anchor + "\n"
    # A fault in force keeps its anchor: the shifted clock is not the truth, and neither is
    # a later command's controller time (it started late, by an unknown lag).
    ok(s.system_bump_script(d, controller + 50, -7.0, uptime_file=str(uptime)), env)
    ok(s.system_heal_script(d, controller + 90, uptime_file=str(uptime)), env)
    shifted, true = f"@{float(anchor) + 93.25:.3f}", f"@{float(anchor) + 100.25:.3f}"
    assert sets(log) == [f"@{float(anchor) + 130.25:.3f}", shifted, true]
    assert not Path(f"{d}/anchor").exists()


def test_system_heal_without_any_fault_never_sets_the_clock(
    tmp_path: Path, fake_date: tuple[dict[str, str], Path, Path]
) -> None:
    env, log, uptime = fake_date
    ok(s.heal_script(str(tmp_path / "clock"), uptime_file=str(uptime)), env)
    assert sets(log) == []
    ok(s.system_heal_script(str(tmp_path / "clock"), 1700000123.5, uptime_file=str(uptime)), env)
    assert sets(log) == ["@1700000123.500"]  # the controller's heal: its time


def test_system_strobe_flips_between_delta_and_true_time(
    tmp_path: Path, fake_date: tuple[dict[str, str], Path, Path]
) -> None:
    env, log, uptime = fake_date
    d = str(tmp_path / "clock")
    script = s.system_strobe_script(
        d, 1700000000.0, delta=-5, period=0.05, duration=0.2, uptime_file=str(uptime)
    )
    pid = int(ok(script, env))
    try:
        assert wait_gone(pid)
    finally:
        kill_group(pid)
    true, shifted = "@1700000000.500", "@1699999995.500"  # the node's clock is true
    assert sets(log) == [true, shifted, true, shifted, true, true]


def test_system_probe_finds_missing_root_tools_and_ntp(
    tmp_path: Path, fake_date: tuple[dict[str, str], Path, Path]
) -> None:
    env, _, uptime = fake_date
    d = str(tmp_path / "clock")
    daemon = subprocess.Popen(["bash", "-c", "exec -a clewfakentpd sleep 30"])
    try:
        time.sleep(0.1)
        out = ok(
            s.probe_script(
                d, "system", library="-", ntp_daemons=["clewfakentpd"], uptime_file=str(uptime)
            ),
            env,
        )
    finally:
        daemon.kill()
        daemon.wait()
    lines = out.splitlines()
    assert "clewfakentpd is running and would undo clock faults; stop it during the test" in lines
    if os.geteuid() != 0:
        assert "setting the clock needs root" in lines
    out = ok(s.probe_script(d, "system", library="-", uptime_file=str(tmp_path / "no")), env)
    assert f"cannot read {tmp_path / 'no'}" in out


# --- the nemesis, on this machine as a one-node cluster ----------------------------------


def test_nemesis_bumps_strobes_heals_and_verifies_through_a_remote(tmp_path: Path) -> None:
    d = str(tmp_path / "clock")
    rc = Path(s.faketime_file(d))

    async def go() -> None:
        ctx = context(LOCAL, seed=4)
        remote = ShellRemote("n1")
        nemesis = c.ClockNemesis(db=LibcDB(), directory=d, library=LIBFAKETIME)
        await nemesis.setup(ctx, remotes(remote))
        assert nemesis.mechanism == "libfaketime"
        assert nemesis.faketime_path == str(rc)
        assert await nemesis.verify_healed(ctx) == {"n1": []}

        bump = {"kind": "bump", "offsets": {"n1": 30.0}}
        done = await nemesis.invoke(ctx, {"f": "start-clock", "value": bump})
        assert done["type"] == "info"
        assert done["value"] == {**bump, "mechanism": "libfaketime"}
        assert text_of(rc) == "+30.000\n"
        residue = await nemesis.verify_healed(ctx)
        assert residue == {"n1": [f"libfaketime offset file {rc} holds '+30.000'"]}

        strobe = {"kind": "strobe", "nodes": ["n1"], "delta": 5.0, "period": 0.05,
                  "duration": 30.0}  # fmt: skip
        await nemesis.invoke(ctx, {"f": "start-clock", "value": strobe})
        pid = int(text_of(Path(d, "strobe.pid")))
        try:
            residue = await nemesis.verify_healed(ctx)
            assert f"clock strobe loop still running (pid {pid})" in residue["n1"]
            done = await nemesis.invoke(ctx, {"f": "stop-clock"})
            assert done["value"] == c.HEALED
            assert not alive(pid)
        finally:
            kill_group(pid)
        assert await nemesis.verify_healed(ctx) == {"n1": []}

        planned = await nemesis.invoke(ctx, {"f": "start-clock", "value": "bump"})
        assert planned["value"]["offsets"] == {"n1": planned["value"]["offsets"]["n1"]}
        script = nemesis.heal_script("n1")
        assert script.startswith("# clew clock heal for node n1\n")
        ok(script)  # what the node-side guard runs
        assert await nemesis.verify_healed(ctx) == {"n1": []}
        with pytest.raises(NemesisError, match="no node 'n7'"):
            nemesis.heal_script("n7")
        with pytest.raises(NemesisError, match="cannot handle op f='start-partition'"):
            await nemesis.invoke(ctx, {"f": "start-partition"})
        await nemesis.teardown(ctx)

    asyncio.run(go())


def test_system_mode_sends_the_controller_time_and_verifies_against_it() -> None:
    async def go() -> None:
        ctx = context(STATIC)
        now = time.time()
        remote = ShellRemote("n1", canned=f"clock {now + 42:.9f}\n")
        nemesis = c.ClockNemesis(db=EtcdDB(), tolerance=1.0)
        await nemesis.setup(ctx, remotes(remote))
        assert nemesis.mechanism == "system"
        heal = remote.commands[-1]
        sent = float(heal.split("\nclew_anchor ", 1)[1].split()[0])
        assert abs(sent - time.time()) < 5  # the controller's time, taken when sending
        residue = await nemesis.verify_healed(ctx)
        assert len(residue["n1"]) == 1
        assert residue["n1"][0].startswith("system clock is +4")
        assert residue["n1"][0].endswith("s off the controller's (tolerance 1 s)")
        remote.canned = f"clock {time.time():.9f}\n"
        assert await nemesis.verify_healed(ctx) == {"n1": []}
        await nemesis.invoke(ctx, {"f": "start-clock", "value": {
            "kind": "bump", "offsets": {"n1": -7.25}}})  # fmt: skip
        assert "clew_set_clock -7.250" in remote.commands[-1]

    asyncio.run(go())


def test_bad_configuration_is_refused_up_front() -> None:
    with pytest.raises(NemesisError, match="unknown clock mechanism"):
        c.ClockNemesis(mechanism="ntp")  # type: ignore[arg-type]
    with pytest.raises(NemesisError, match="kinds"):
        c.ClockNemesis(kinds=["skew"])
    with pytest.raises(NemesisError, match="tag"):
        c.ClockNemesis(tag="Bad Tag")
    with pytest.raises(NemesisError, match="plain absolute path"):
        c.ClockNemesis(directory="/run/x y")
    with pytest.raises(NemesisError, match="plain absolute path"):
        c.ClockNemesis(directory="/run/../etc")
    with pytest.raises(NemesisError, match="not been set up"):
        asyncio.run(c.ClockNemesis().heal_all(context(LOCAL)))


def test_the_package_is_data_the_runner_can_schedule() -> None:
    pkg = c.clock_package(db=LibcDB(), interval=4)
    assert isinstance(pkg, NemesisPackage)
    assert pkg.name == "clock"
    assert pkg.start(context(LOCAL)) == {"f": "start-clock", "value": None}
    assert pkg.stop(context(LOCAL)) == {"f": "stop-clock", "value": None}
    assert pkg.finals() == [{"f": "stop-clock", "value": None}]
    assert pkg.perf.start == frozenset({"start-clock"})
    nemesis = pkg.nemesis
    assert isinstance(nemesis, c.ClockNemesis)
    assert nemesis.bounds.max_duration == 4  # a strobe never outlives its window
    assert nemesis.db is not None
