"""clew's node agent: heals faults whose lease has expired when the controller is gone,
strikes the part of the fault schedule it was handed from its own clock, and keeps the
node's own record of what happened. A standalone program (Python 3 standard library
only): the controller copies this file to each node and starts it there, detached.

**Leases** (the guard). It watches ``DIR/leases/*.json``. Each lease file is written by
the controller before a fault is injected::

    {"id": "pause", "lease": 10.0, "seq": 7, "heal": "<POSIX sh script>"}

and rewritten (``seq`` + 1) every ``lease / 3`` seconds while the fault should hold. The
agent measures time with its own **monotonic** clock (a clock fault moves wall time, never
this): a file whose content has not changed for ``lease`` seconds has expired, so the agent
runs its heal script (``sh -c``, bounded), records that in ``DIR/guard.jsonl`` and deletes
the file. A lease file the controller deletes is a fault it healed itself. A lease file that
is no longer a whole lease (a controller killed mid-write) does not count as a renewal: the
last whole version stands, and is healed when it runs out (a ``bad-lease`` event says so).

**Slices** (the node's part of the schedule). ``DIR/slices/<id>.json``, written once by the
controller before the load starts::

    {"id": "agent", "lease": "agent", "origin_ns": <this node's monotonic ns at run time 0>,
     "strikes": [{"id": "s1", "f": "start-kill", "at": 5.0, "script": "<sh>",
                  "heal": "<sh>", "hold": 2.0},
                 {"id": "s2", "f": "start-kill", "on": {"log": "leader-changed"},
                  "from": 1.0, "until": 30.0, "times": 1, "delay": 0.0, "script": "<sh>",
                  "heal": "<sh>", "hold": 2.0}],
     "watch": {"log": "/opt/etcd/etcd.log", "patterns": {"leader-changed": "<regex>"},
               "pidfile": "/opt/etcd/etcd.pid"}}

A strike runs its ``script`` (the very script the controller would run for that fault;
``stdin``, when given, on its standard input; ``value`` and ``side``, for one node's side
of a cluster-wide fault, are copied to its journal record) at
``at`` seconds on the run's clock, or when its trigger fires within ``[from, until]``: a
new line of the watched log matching the named pattern (``{"log": NAME}``) or a regex
(``{"log_regex": RE}``), or the watched process changing state (``{"process": "exit"}``,
``"start"``, ``"stop"``, ``"cont"``). ``hold`` seconds later the agent runs ``heal``. The
agent strikes **only while the slice's lease** (``leases/<lease>.json``) is alive: a lease
that ran out (the controller is gone) or was released ends the slice, and its heal script
heals whatever the slice struck.

**Journal** (the node's own record): ``DIR/agent.jsonl``, one compact JSON object a line,
appended with one ``write`` each (so a crash of the controller, or of the agent, leaves
whole lines): ``start``, ``clock`` (an offset measured by the controller), ``slice``,
``strike`` (planned and actual times, the trigger's line), ``heal``, ``lease`` (expired or
released), ``process`` (the watched process started, exited, stopped or continued),
``log`` (a watched line matched a pattern: its name and text), ``dropped`` and
``journal-full``, and ``pressure`` every ``watch.pressure_every`` seconds (the node's
load and available memory, the watched process's resident memory and CPU time). Every
record has ``mono`` (this node's monotonic ns), ``wall`` (its
wall-clock ns) and, once a slice is armed, ``run`` (seconds on the run's clock).
Observations (``log``, ``process``, ``pressure``) are capped at ``--journal-rate`` per second (a
token bucket of one second's worth; what is dropped is counted in a ``dropped`` record at
most once a second, and at doubling intervals up to a minute once observations no longer
fit) and stop at ``--journal-bytes`` minus a reserve kept for the agent's
own acts (64 KiB, or a quarter of the cap when less), which stop at ``--journal-bytes``
(then one ``journal-full`` line).

A lease or slice runs as the agent's user (root), so the agent trusts only what that user
wrote: it refuses to run in a directory (``DIR``, ``DIR/leases``, ``DIR/slices``) that is a
symlink, not owned by its own user, or writable by group or others, and it never reads a
lease or slice file that is not a regular file owned by its own user and writable by
nobody else. Such a file is removed unread and recorded as a ``refused`` event.

On start the agent first heals every lease file it finds (left by a crashed run: nobody
is renewing them) and drops every slice, so starting it is also a clean-up; then it
writes ``DIR/ready``, so that whoever started it knows that what it writes from then on
is not taken for a leftover. It writes its
PID to ``DIR/guard.pid``, exits on SIGTERM, and exits by itself after ``--idle-exit``
seconds with no lease files, so an abandoned agent does not linger.

Run: ``python3 guard_agent.py --dir DIR [--poll S] [--idle-exit S] [--heal-timeout S]
[--journal-bytes N] [--journal-rate N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time

#: Seconds between two looks at the lease and slice directories.
DEFAULT_POLL = 0.1
#: Seconds with no lease files after which the agent exits.
DEFAULT_IDLE_EXIT = 900.0
#: Seconds one heal (or strike) script may run.
DEFAULT_HEAL_TIMEOUT = 30.0
#: Bytes ``agent.jsonl`` may grow to.
DEFAULT_JOURNAL_BYTES = 4 * 1024 * 1024
#: Observations (log matches, process changes) journaled per second at most.
DEFAULT_JOURNAL_RATE = 200.0
#: Bytes of the journal kept for the agent's own acts (strikes, heals, leases); a quarter
#: of the journal when that is less.
JOURNAL_RESERVE = 64 * 1024
#: Seconds between two ``dropped`` summaries at most, once observations no longer fit.
DROP_SUMMARY_MAX_INTERVAL = 60.0
#: Seconds between two reads of a watched log file, and of the watched process (the
#: latency a trigger adds, against the CPU an idle agent costs).
WATCH_POLL = 0.005
PROCESS_POLL = 0.02
#: Idle reads of the watched log between two checks that it was not rotated.
ROTATION_CHECK_EVERY = 40
#: Characters of a matched log line kept in the journal.
LINE_CHARS = 400

_NS = 1_000_000_000
_ESSENTIAL = frozenset({"start", "stop", "clock", "slice", "strike", "heal", "lease", "healed",
                        "idle-exit", "refused", "dropped", "error"})  # fmt: skip


def _log(path: str, **event: object) -> None:
    event = {"time": time.time(), "monotonic": time.monotonic(), **event}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(event) + "\n")


class Journal:
    """``agent.jsonl``: whole lines, one ``write`` each, with the caps of the module
    docstring. Thread-safe."""

    def __init__(self, path: str, max_bytes: int, rate: float) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.size = os.fstat(self.fd).st_size
        self.max_bytes = max_bytes
        self.rate = rate
        self.tokens = rate
        self.filled = time.monotonic()
        self.dropped: dict[str, int] = {}
        self.full = False
        self.origin_ns: int | None = None
        self.summary_interval = 1.0
        self.next_summary = 0.0
        self.lock = threading.Lock()

    def write(self, e: str, **fields: object) -> None:
        """Journal event ``e`` unless a cap drops it (counted)."""
        mono = time.monotonic_ns()
        rec: dict[str, object] = {"e": e, "mono": mono, "wall": time.time_ns()}
        if self.origin_ns is not None:
            rec["run"] = round((mono - self.origin_ns) / _NS, 6)
        rec.update(fields)
        with self.lock:
            essential = e in _ESSENTIAL
            if not essential:
                now = time.monotonic()
                self.tokens = min(self.rate, self.tokens + (now - self.filled) * self.rate)
                self.filled = now
                if self.tokens < 1.0:
                    self._drop("rate")
                    return
                self.tokens -= 1.0
            self._emit(rec, essential)

    def flush_drops(self, *, final: bool = False) -> None:
        """Journal the count of what was dropped since the last summary, if anything was.
        Called about once a second; while observations no longer fit (the journal is past
        its observation limit) summaries come at doubling intervals, up to
        :data:`DROP_SUMMARY_MAX_INTERVAL`, so that counting drops cannot use up the reserve
        kept for the agent's own acts. ``final`` writes what is left regardless."""
        with self.lock:
            if not self.dropped:
                return
            now = time.monotonic()
            if not final and now < self.next_summary:
                return
            mono = time.monotonic_ns()
            self._emit({"e": "dropped", "mono": mono, "wall": time.time_ns(),
                        **{"n_" + k: v for k, v in self.dropped.items()}}, True)  # fmt: skip
            self.dropped = {}
            if self.size >= self._limit(essential=False):
                self.summary_interval = min(DROP_SUMMARY_MAX_INTERVAL, self.summary_interval * 2)
            else:
                self.summary_interval = 1.0
            self.next_summary = now + self.summary_interval - 0.05

    def _limit(self, *, essential: bool) -> int:
        reserve = min(JOURNAL_RESERVE, self.max_bytes // 4)
        return self.max_bytes if essential else self.max_bytes - reserve

    def _drop(self, why: str) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + 1

    def _emit(self, rec: dict[str, object], essential: bool) -> None:
        line = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
        if self.size + len(line) > self._limit(essential=essential):
            self._drop("size")
            if essential and not self.full:
                self.full = True
                end = json.dumps({"e": "journal-full", "mono": rec["mono"],
                                  "bytes": self.size}).encode() + b"\n"  # fmt: skip
                if self.size + len(end) <= self.max_bytes + 256:
                    os.write(self.fd, end)
                    self.size += len(end)
            return
        os.write(self.fd, line)
        self.size += len(line)


def unsafe_reason(st: os.stat_result, *, want_dir: bool) -> str | None:
    """Why a file or directory with status ``st`` must not be trusted by an agent running as
    this process's user, or ``None`` when it may: it must be a regular file (a directory
    when ``want_dir``), owned by this user, and writable by nobody else."""
    kind_ok = stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode)
    if not kind_ok:
        return "not a directory" if want_dir else "not a regular file"
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not by the guard's uid {os.geteuid()}"
    if st.st_mode & 0o022:
        return f"mode {stat.S_IMODE(st.st_mode):04o} lets group or others write to it"
    return None


def _read_trusted(log_path: str, path: str) -> str | None:
    """The text of file ``path`` if the agent may trust it (:func:`unsafe_reason`),
    checked on the open file itself (no symlink followed, so no swap between check and
    read); an untrusted file is removed, unread, and recorded as ``refused``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:  # e.g. ELOOP: a symbolic link
        _refuse(log_path, path, None, f"cannot open it safely: {e.strerror}")
        return None
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        st = os.fstat(fd)
        why = unsafe_reason(st, want_dir=False)
        if why is not None:
            _refuse(log_path, path, st, why)
            return None
        return f.read()


def _refuse(log_path: str, path: str, st: os.stat_result | None, why: str) -> None:
    details: dict[str, object] = {}
    if st is not None:
        details = {"uid": st.st_uid, "mode": f"{stat.S_IMODE(st.st_mode):04o}"}
    _log(log_path, event="refused", file=path, reason=f"not run: {why}", **details)
    _remove(path)


def _check_dirs(*dirs: str) -> str | None:
    """Why the agent must not run in these directories, or ``None``."""
    for d in dirs:
        try:
            st = os.lstat(d)
        except OSError as e:
            return f"{d}: {e.strerror}"
        why = unsafe_reason(st, want_dir=True)
        if why is not None:
            return f"{d}: {why}"
    return None


#: How much the agent raises its own scheduling priority (a lower nice value) when it may:
#: on a loaded node its timers and log reads must wake on time. Its scripts run at the
#: priority it started with (:data:`_SCRIPT_NICE`), so a database it restarts does not
#: inherit the boost.
AGENT_PRIORITY_BOOST = 10
#: ``nice`` arguments that put a script back at the agent's starting priority (empty when
#: the agent could not raise its own).
_SCRIPT_NICE: list[str] = []


def _raise_priority() -> int:
    """Lower the agent's nice value by :data:`AGENT_PRIORITY_BOOST` if allowed (root); the
    boost obtained (0 when refused)."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(-20, before - AGENT_PRIORITY_BOOST))
    except OSError:
        return 0
    boost = before - os.getpriority(os.PRIO_PROCESS, 0)
    if boost > 0 and shutil.which("nice"):
        _SCRIPT_NICE[:] = ["nice", "-n", str(boost)]
    return boost


def _run_script(script: str, timeout: float, stdin: str | None = None) -> tuple[int | None, str]:
    """Run ``script`` with ``sh -c`` (``stdin`` on its standard input), at the priority the
    agent started with; its status (``None``: timed out) and stderr's tail."""
    try:
        done = subprocess.run([*_SCRIPT_NICE, "sh", "-c", script], input=stdin or "",
                              capture_output=True, text=True, timeout=timeout,
                              check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:g} s"
    return done.returncode, done.stderr[-2000:]


def _heal(log_path: str, lease_path: str, text: str, reason: str, timeout: float,
          journal: Journal | None = None) -> None:  # fmt: skip
    try:
        lease = json.loads(text)
        script = str(lease["heal"])
        lease_id = str(lease.get("id", os.path.basename(lease_path)))
    except (ValueError, KeyError, TypeError) as e:
        _log(log_path, event="bad-lease", file=lease_path, error=str(e))
        _remove(lease_path)
        return
    status, stderr = _run_script(script, timeout)
    if status is None:
        _log(log_path, event="heal-timeout", id=lease_id, reason=reason, timeout=timeout)
    else:
        _log(log_path, event="healed", id=lease_id, reason=reason, status=status, stderr=stderr)
    if journal is not None:
        journal.write("healed", id=lease_id, reason=reason, status=status)
    _remove(lease_path)


def _parse_lease(text: str, default_id: str) -> tuple[float, str] | None:
    """A lease file's ``(lease seconds, id)`` (``default_id`` when it names none); ``None``
    unless it is a whole lease (a JSON object with a heal script)."""
    try:
        parsed = json.loads(text)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("heal"), str):
            return None
        return float(parsed.get("lease", 0)), str(parsed.get("id", default_id))
    except (ValueError, TypeError):
        return None


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class Leases:
    """What the lease loop knows: lease id -> (lease seconds, monotonic time of its last
    change). Read by the slice threads to strike only while their lease is alive."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.known: dict[str, tuple[float, float]] = {}

    def alive(self, lease_id: str) -> bool:
        """Whether lease ``lease_id`` exists and was renewed within its length."""
        with self.lock:
            got = self.known.get(lease_id)
        return got is not None and time.monotonic() - got[1] <= got[0]


def _process_state(pidfile: str) -> tuple[int | None, str]:
    """The watched process's PID and state: ``("gone")``, ``R``/``S``/``T``/... from
    ``/proc/PID/stat`` (a zombie counts as gone)."""
    try:
        with open(pidfile, encoding="ascii") as f:
            pid = int(f.read().strip() or "0")
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None, "gone"
    if st in ("Z", "X"):
        return None, "gone"
    return pid, st


def _transition(old: tuple[int | None, str], new: tuple[int | None, str]) -> str | None:
    """The name of the change from ``old`` to ``new`` process state (``None``: none)."""
    (opid, ost), (npid, nst) = old, new
    if opid == npid and (ost == "T") == (nst == "T"):
        return None
    if npid is None:
        return "exit"
    if opid != npid:
        return "start" if nst != "T" else "stop"
    return "stop" if nst == "T" else "cont"


class Slice:
    """One handed-over slice (see the module docstring): its timers, triggers and watchers,
    each in a daemon thread, until :meth:`end`."""

    def __init__(self, data: dict, leases: Leases, journal: Journal, timeout: float) -> None:
        self.id = str(data.get("id", "slice"))
        self.lease = str(data.get("lease", self.id))
        self.origin_ns = int(data["origin_ns"])
        self.strikes = [dict(s) for s in data.get("strikes", [])]
        self.watch = dict(data.get("watch") or {})
        self.leases = leases
        self.journal = journal
        self.timeout = timeout
        self.ended = threading.Event()
        self.lock = threading.Lock()  # one strike or heal at a time
        self.struck: dict[str, int] = {}  # strike id -> times struck
        self.heals: list[tuple[float, str, str]] = []  # (monotonic due, strike id, script)
        self.heal_cv = threading.Condition()
        self._log_start: int | None = None  # the watched log's size when the slice started
        patterns = dict(self.watch.get("patterns") or {})
        self.patterns = {k: re.compile(v) for k, v in patterns.items()}
        for s in self.strikes:
            on = s.get("on") or {}
            if "log" in on:
                s["_re"] = self.patterns.get(on["log"]) or re.compile(str(on["log"]))
            elif "log_regex" in on:
                s["_re"] = re.compile(str(on["log_regex"]))

    def run_time(self, mono_ns: int) -> float:
        return (mono_ns - self.origin_ns) / _NS

    def start(self) -> None:
        """Start the slice's threads."""
        threads = [self._timers, self._heals]
        if self.watch.get("log"):
            threads.append(self._tail)
        if self.watch.get("pidfile"):
            threads.append(self._process)
        if self.watch.get("pressure_every"):
            threads.append(self._pressure)
        if self.watch.get("log"):
            # Where the watched log ends now, taken before the slice is journaled as started:
            # a line written after that record is seen however late the tail thread runs.
            try:
                self._log_start = os.stat(str(self.watch["log"])).st_size
            except OSError:
                self._log_start = None  # not there yet: read it from its start when it is
        for fn in threads:
            threading.Thread(target=fn, daemon=True, name=f"{self.id}-{fn.__name__}").start()

    def end(self, why: str) -> None:
        """Stop striking (heals already due still run when the lease lives)."""
        if not self.ended.is_set():
            self.ended.set()
            with self.heal_cv:
                self.heal_cv.notify_all()
            self.journal.write("slice", id=self.id, state="ended", why=why)

    # -- striking --

    def _may_strike(self, s: dict, run: float) -> str | None:
        """Why strike ``s`` must not go now (``None``: it may)."""
        if self.ended.is_set():
            return "the slice has ended"
        if not self.leases.alive(self.lease):
            return "its lease is not alive"
        if self.struck.get(s["id"], 0) >= int(s.get("times", 1)):
            return "struck its times already"
        lo = float(s.get("from", s.get("at", 0.0)))
        hi = s.get("until")
        if run < lo - 0.5 or (hi is not None and run > float(hi)):
            return f"outside its window [{lo:g}, {hi}]"
        return None

    def strike(self, s: dict, planned_ns: int, **why: object) -> None:
        """Run strike ``s``'s script now (if allowed), journaling when it was planned,
        started and done; schedule its heal after ``hold``."""
        with self.lock:
            start = time.monotonic_ns()
            no = self._may_strike(s, self.run_time(start))
            if no is not None:
                self.journal.write("strike", id=s["id"], f=s.get("f"), skipped=no, **why)
                return
            self.struck[s["id"]] = self.struck.get(s["id"], 0) + 1
            wall = time.time_ns()
            stdin = s.get("stdin")
            status, stderr = _run_script(str(s["script"]), self.timeout,
                                         None if stdin is None else str(stdin))  # fmt: skip
            done = time.monotonic_ns()
            # (a cluster-wide fault: the whole value, and this node's side of it)
            sided = {k: s[k] for k in ("value", "side") if k in s}
            self.journal.write(
                "strike", id=s["id"], f=s.get("f"), planned_run=round(self.run_time(planned_ns), 6),
                start_mono=start, start_wall=wall, start_run=round(self.run_time(start), 6),
                late_ms=round((start - planned_ns) / 1e6, 3),
                done_ms=round((done - start) / 1e6, 3), status=status, stderr=stderr[-500:],
                **sided, **why,
            )  # fmt: skip
            hold = s.get("hold")
            if hold is not None and s.get("heal"):
                with self.heal_cv:
                    due = time.monotonic() + float(hold)
                    heapq.heappush(self.heals, (due, s["id"], str(s["heal"])))
                    self.heal_cv.notify_all()

    def _timers(self) -> None:
        timed = sorted((s for s in self.strikes if "at" in s and "on" not in s),
                       key=lambda s: float(s["at"]))  # fmt: skip
        for s in timed:
            due = self.origin_ns + round(float(s["at"]) * _NS)
            while not self.ended.is_set():
                left = (due - time.monotonic_ns()) / _NS
                if left <= 0:
                    break
                # Sleep most of the way, then in short steps: a long sleep overshoots
                # by a scheduler tick on a loaded machine.
                self.ended.wait(left - 0.005 if left > 0.01 else min(left, 0.0005))
            if self.ended.is_set():
                return
            self.strike(s, due, trigger="at")

    def _heals(self) -> None:
        """Run each struck fault's heal when its ``hold`` is over, while the slice lives
        (once it has ended, the controller's final heal, or the lease's on expiry, heals)."""
        while True:
            with self.heal_cv:
                while not self.ended.is_set() and (
                    not self.heals or self.heals[0][0] > time.monotonic()
                ):
                    wait = self.heals[0][0] - time.monotonic() if self.heals else None
                    self.heal_cv.wait(wait)
                if self.ended.is_set():
                    return
                _, sid, script = heapq.heappop(self.heals)
            with self.lock:
                t0 = time.monotonic_ns()
                status, stderr = _run_script(script, self.timeout)
                self.journal.write("heal", id=sid, status=status, stderr=stderr[-500:],
                                   seconds=round((time.monotonic_ns() - t0) / _NS, 3))  # fmt: skip

    def _triggered(self, kind: str, value: str, seen_ns: int, **detail: object) -> None:
        for s in self.strikes:
            on = s.get("on") or {}
            if kind == "log" and "_re" in s:
                if not s["_re"].search(value):
                    continue
            elif kind == "process" and on.get("process") == value:
                pass
            else:
                continue
            if self._may_strike(s, self.run_time(seen_ns)) == "struck its times already":
                continue
            delay = float(s.get("delay", 0.0))
            if delay > 0:
                self.ended.wait(delay)
            self.strike(s, seen_ns + round(delay * _NS), trigger=kind,
                        seen_mono=seen_ns, **detail)  # fmt: skip

    # -- watching --

    def _tail(self) -> None:
        path = str(self.watch["log"])
        f = None
        pos = self._log_start or 0
        buf = b""
        idle = 0
        while not self.ended.is_set():
            if f is None:
                try:
                    f = open(path, "rb")  # noqa: SIM115
                    if pos > os.fstat(f.fileno()).st_size:
                        pos = 0  # truncated while it was not open
                    f.seek(pos)  # only what was written since the slice started
                except OSError:
                    self.ended.wait(0.05)
                    continue
            try:
                chunk = f.read(1 << 16)
                if not chunk:
                    idle += 1
                    if idle % ROTATION_CHECK_EVERY == 0:
                        st = os.fstat(f.fileno())
                        if os.stat(path).st_ino != st.st_ino or st.st_size < pos:
                            f.close()  # rotated or truncated: read the new one from its start
                            f = open(path, "rb")  # noqa: SIM115
                            pos = 0
                    time.sleep(WATCH_POLL)
                    continue
            except OSError:
                f = None
                continue
            idle = 0
            seen = time.monotonic_ns()
            pos += len(chunk)
            buf += chunk
            *lines, buf = buf.split(b"\n")
            if len(buf) > 1 << 20:
                buf = b""  # a line with no end in sight: not ours to keep
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                names = [n for n, p in self.patterns.items() if p.search(line)]
                if names:
                    self.journal.write("log", seen_mono=seen, patterns=names,
                                       line=line[:LINE_CHARS])  # fmt: skip
                self._triggered("log", line, seen, line=line[:LINE_CHARS])
        if f is not None:
            f.close()

    def _pressure(self) -> None:
        """Every ``watch.pressure_every`` seconds: the node's load and free memory, and the
        watched process's resident memory and CPU time (a ``pressure`` observation)."""
        every = float(self.watch.get("pressure_every") or 0)
        tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        while every > 0 and not self.ended.wait(every):
            rec: dict[str, object] = {}
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open("/proc/loadavg", encoding="ascii") as f:
                    rec["load1"] = float(f.read().split()[0])
                with open("/proc/meminfo", encoding="ascii") as f:
                    for line in f:
                        if line.startswith("MemAvailable:"):
                            rec["mem_avail_kb"] = int(line.split()[1])
            pid, _ = _process_state(str(self.watch.get("pidfile") or "/nonexistent"))
            if pid is not None:
                with contextlib.suppress(OSError, ValueError, IndexError):
                    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    rec["db_pid"] = pid
                    rec["db_cpu_ms"] = round((int(fields[11]) + int(fields[12])) * 1000 / tick)
                    rec["db_rss_kb"] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
            self.journal.write("pressure", **rec)

    def _process(self) -> None:
        pidfile = str(self.watch["pidfile"])
        state = _process_state(pidfile)
        self.journal.write("process", change="watch", pid=state[0], state=state[1])
        while not self.ended.is_set():
            time.sleep(PROCESS_POLL)
            new = _process_state(pidfile)
            change = _transition(state, new)
            if change is not None:
                seen = time.monotonic_ns()
                self.journal.write("process", change=change, pid=new[0], state=new[1],
                                   before=state[0])  # fmt: skip
                self._triggered("process", change, seen, pid=new[0])
            state = new


def _load_slice(log_path: str, path: str, leases: Leases, journal: Journal,
                timeout: float) -> Slice | None:  # fmt: skip
    text = _read_trusted(log_path, path)
    if text is None:
        return None
    try:
        data = json.loads(text)
        sl = Slice(data, leases, journal, timeout)
    except (ValueError, KeyError, TypeError, re.error) as e:
        journal.write("error", file=path, error=f"bad slice: {e}")
        _remove(path)
        return None
    journal.origin_ns = sl.origin_ns
    journal.write("slice", id=sl.id, state="armed", lease=sl.lease, origin_ns=sl.origin_ns,
                  strikes=[{k: v for k, v in s.items()
                            if k not in ("script", "heal", "stdin", "_re")}
                           for s in sl.strikes])  # fmt: skip
    for c in data.get("clock") or []:
        journal.write("clock", **c)
    sl.start()
    return sl


def main(argv: list[str] | None = None) -> int:
    """Run the agent until SIGTERM or idle exit (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--poll", type=float, default=DEFAULT_POLL)
    ap.add_argument("--idle-exit", type=float, default=DEFAULT_IDLE_EXIT)
    ap.add_argument("--heal-timeout", type=float, default=DEFAULT_HEAL_TIMEOUT)
    ap.add_argument("--journal-bytes", type=int, default=DEFAULT_JOURNAL_BYTES)
    ap.add_argument("--journal-rate", type=float, default=DEFAULT_JOURNAL_RATE)
    args = ap.parse_args(argv)
    leases_dir = os.path.join(args.dir, "leases")
    slices_dir = os.path.join(args.dir, "slices")
    log_path = os.path.join(args.dir, "guard.jsonl")
    os.makedirs(leases_dir, mode=0o700, exist_ok=True)
    os.makedirs(slices_dir, mode=0o700, exist_ok=True)
    unsafe = _check_dirs(args.dir, leases_dir, slices_dir)
    if unsafe is not None:
        print(f"clew fault guard: refusing to run: {unsafe}", file=sys.stderr)
        return 3
    boost = _raise_priority()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with open(os.path.join(args.dir, "guard.pid"), "w", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    journal = Journal(os.path.join(args.dir, "agent.jsonl"), args.journal_bytes,
                      args.journal_rate)  # fmt: skip
    _log(log_path, event="start", pid=os.getpid())
    journal.write("start", pid=os.getpid(), journal_bytes=args.journal_bytes,
                  journal_rate=args.journal_rate, priority_boost=boost)  # fmt: skip
    for name in sorted(os.listdir(leases_dir)):
        path = os.path.join(leases_dir, name)
        if name.endswith(".json"):
            text = _read_trusted(log_path, path)
            if text is not None:
                _heal(log_path, path, text, "guard-start", args.heal_timeout, journal)
    for name in os.listdir(slices_dir):
        _remove(os.path.join(slices_dir, name))  # a crashed run's: not to be struck again
    # Leftovers are dealt with: what is written from now on is this run's (the start
    # script waits for this file before it returns).
    with open(os.path.join(args.dir, "ready"), "w", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    leases = Leases()
    slices: dict[str, Slice] = {}  # file -> slice
    seen: dict[str, tuple[str, float]] = {}  # file -> (content, monotonic time it changed)
    cut: set[str] = set()  # files whose last write was cut short
    idle_since = time.monotonic()
    last_drops = time.monotonic()
    while not stop:
        now = time.monotonic()
        try:
            names = [n for n in os.listdir(leases_dir) if n.endswith(".json")]
        except FileNotFoundError:
            names = []
        current = set()
        known: dict[str, tuple[float, float]] = {}
        for name in names:
            path = os.path.join(leases_dir, name)
            text = _read_trusted(log_path, path)
            if text is None:
                continue
            current.add(path)
            old = seen.get(path)
            parsed = _parse_lease(text, name[:-5])
            whole = _parse_lease(old[0], name[:-5]) if parsed is None and old else None
            if whole is not None and old is not None:
                # A write cut short (its controller died mid-renewal): the last whole lease
                # stands, and runs out a lease after its own last renewal. (A file never
                # whole is not a lease: it runs out at once, and its heal says so.)
                if path not in cut:
                    cut.add(path)
                    _log(log_path, event="bad-lease", id=name[:-5], file=path,
                         kept="the last whole lease")  # fmt: skip
                text, parsed = old[0], whole
            else:
                cut.discard(path)
            lease, lease_id = parsed if parsed is not None else (0.0, name[:-5])
            if old is None or old[0] != text:
                seen[path] = (text, now)
                known[lease_id] = (lease, now)
                continue
            known[lease_id] = (lease, old[1])
            if now - old[1] > lease:
                for sl in slices.values():
                    if sl.lease == lease_id:
                        sl.end("its lease expired")
                journal.write("lease", id=lease_id, state="expired", lease=lease)
                _heal(log_path, path, text, "lease-expired", args.heal_timeout, journal)
                current.discard(path)
                known.pop(lease_id, None)
        with leases.lock:
            gone = set(leases.known) - set(known)
            leases.known = known
        for lease_id in gone:
            for sl in slices.values():
                if sl.lease == lease_id and not sl.ended.is_set():
                    sl.end("its lease was released or expired")
        for path in list(seen):
            if path not in current:
                del seen[path]
                cut.discard(path)
        try:
            slice_names = [n for n in os.listdir(slices_dir) if n.endswith(".json")]
        except FileNotFoundError:
            slice_names = []
        for name in slice_names:
            path = os.path.join(slices_dir, name)
            if path not in slices:
                loaded = _load_slice(log_path, path, leases, journal, args.heal_timeout)
                if loaded is not None:
                    slices[path] = loaded
        for path in list(slices):
            if not os.path.exists(path):
                slices.pop(path).end("the controller removed it")
        if now - last_drops > 1.0:
            journal.flush_drops()
            last_drops = now
        if current or any(not s.ended.is_set() for s in slices.values()):
            idle_since = now
        elif now - idle_since > args.idle_exit:
            _log(log_path, event="idle-exit")
            journal.flush_drops(final=True)
            journal.write("idle-exit")
            return 0
        time.sleep(args.poll)
    for sl in slices.values():
        sl.end("the agent stops")
    _log(log_path, event="stop")
    journal.flush_drops(final=True)
    journal.write("stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
