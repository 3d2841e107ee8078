"""Node-side POSIX sh scripts of the clock nemesis: pure functions of their parameters.

Every clock fault of one tag lives in one directory on the node (:func:`clock_dir`,
``/run/<tag>-clock``; ``/run`` is a per-node tmpfs on the local provider and is emptied by a
reboot on real machines):

``faketime.rc``
    The libfaketime timestamp file: an offset such as ``+30.000`` or ``-12.500`` that every
    process started with :func:`nemeses.clock.faketime_env` adds to the wall clock on each
    read; ``+0`` is no offset, and a missing file means real time too. Always replaced by a
    rename, so a reader never sees half a line (libfaketime *exits* on a line it cannot
    parse).
``strobe.pid``
    The PID of a running strobe loop: a detached ``sh`` in its own session whose command
    line carries the marker line ``# clew-clock-strobe <dir>``. It is stopped by this PID
    (its process group, so its ``sleep`` too), never by a name pattern, and only after
    ``/proc/<pid>/cmdline`` shows the marker, so a recycled PID is never signalled.
``anchor``
    System-clock mode only: *true wall time minus uptime*, computed on the node when clew
    first shifts the clock (from the node's own clock if it agrees with the controller's
    time sent with the command, allowing for the command's late start; else from the
    controller's time) and kept while a fault is in force. ``anchor + uptime`` is then the true
    time even while the wall clock is shifted (``/proc/uptime`` follows the boot-time clock,
    which ``date -s`` does not move), so the clock can be put right without the controller.
    A heal removes it; no anchor means the system clock was never touched.

Offsets are seconds (floats). Strobe loops count flips instead of reading the wall clock, so
the clock they move cannot stretch or shorten them.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterable

__all__ = [
    "DEFAULT_UPTIME_FILE",
    "START_LAG",
    "STROBE_MARK_PREFIX",
    "STROBE_STOP_WAIT",
    "clock_dir",
    "faketime_bump_script",
    "faketime_file",
    "faketime_strobe_script",
    "heal_script",
    "offset_text",
    "probe_script",
    "system_bump_script",
    "system_heal_script",
    "system_strobe_script",
    "verify_script",
]

#: Where the node's uptime (boot-time clock, untouched by ``date -s``) is read.
DEFAULT_UPTIME_FILE = "/proc/uptime"
#: Seconds a heal waits for a signalled strobe loop to be gone before reporting failure.
STROBE_STOP_WAIT = 5.0
#: Seconds a command may take to start on a node: a node's clock at most this far ahead of
#: the controller's time sent with a command counts as true (see :func:`_prelude`).
START_LAG = 300.0
#: The first line of every strobe loop is ``# <prefix> <dir>``.
STROBE_MARK_PREFIX = "clew-clock-strobe"

_POLL = 0.02  # seconds between two looks at a process or a file


def clock_dir(tag: str) -> str:
    """The directory holding every clock fault file of ``tag`` on a node."""
    return f"/run/{tag}-clock"


def faketime_file(directory: str) -> str:
    """The libfaketime timestamp file in ``directory``."""
    return f"{directory}/faketime.rc"


def offset_text(offset: float) -> str:
    """``offset`` (seconds) as libfaketime reads it from a timestamp file: ``+0`` for none,
    else a sign and milliseconds (``+30.000``, ``-12.500``)."""
    if not math.isfinite(offset):
        raise ValueError(f"a clock offset must be finite, not {offset!r}")
    return "+0" if offset == 0 else f"{offset:+.3f}"


def _seconds(value: float) -> str:
    """A plain decimal for awk, date and sleep (no exponent)."""
    return f"{value:.3f}"


def _mark(directory: str) -> str:
    return f"# {STROBE_MARK_PREFIX} {directory}"


#: The anchor (see :func:`_prelude`) computed by python3 from the wall clock and the
#: boot-time clock read together, with no process started between the two readings.
_PY_ANCHOR = (
    "import sys, time; t = float(sys.argv[1]); "
    "w = time.time(); b = time.clock_gettime(time.CLOCK_BOOTTIME); "
    f"print('%.3f' % ((w if t <= w <= t + {START_LAG:g} else t) - b))"
)
#: The clock set by python3 to anchor + boot-time clock + offset, read and set in one
#: process: with awk and date, two processes start between the reading and the setting
#: (seconds each on a starved VM, all lost from the clock).
_PY_SET = (
    "import sys, time; a, d = float(sys.argv[1]), float(sys.argv[2]); "
    "time.clock_settime(time.CLOCK_REALTIME, a + time.clock_gettime(time.CLOCK_BOOTTIME) + d)"
)


def _prelude(directory: str, uptime_file: str) -> str:
    """Variables and shell functions every script starts with. On the real boot-time clock
    (``/proc/uptime``), the anchor and the clock setting use python3 where the node has it
    (:data:`_PY_ANCHOR`, :data:`_PY_SET`), and awk and date where it does not."""
    rounds = max(1, math.ceil(STROBE_STOP_WAIT / _POLL))
    precise = uptime_file == DEFAULT_UPTIME_FILE
    py_anchor = 'a=$(python3 -c "$CLEW_PY_ANCHOR" "$1" 2>/dev/null) || ' if precise else ""
    py_set = 'python3 -c "$CLEW_PY_SET" "$a" "$1" 2>/dev/null && return 0; ' if precise else ""
    return (
        "umask 022\n"
        f"CLEW_PY_ANCHOR={shlex.quote(_PY_ANCHOR)}\n"
        f"CLEW_PY_SET={shlex.quote(_PY_SET)}\n"
        f"D={shlex.quote(directory)}\n"
        'RC="$D/faketime.rc"; PF="$D/strobe.pid"; AN="$D/anchor"\n'
        f"MARK={shlex.quote(_mark(directory))}\n"
        f"UPTIME={shlex.quote(uptime_file)}\n"
        # Replace file $1 by one line $2, atomically (same directory, so rename(2)).
        'clew_put() { printf \'%s\\n\' "$2" >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"; }\n'
        # Is PID $1 a live process (not a zombie)?
        'clew_alive() { s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; '
        '[ "${s%% *}" != Z ]; }\n'
        # Is PID $1 a live strobe loop of this directory?
        "clew_ours() { clew_alive \"$1\" && tr '\\000' '\\n' <\"/proc/$1/cmdline\" "
        '2>/dev/null | grep -qxF -- "$MARK"; }\n'
        'clew_uptime() { read -r u _ <"$UPTIME" && printf \'%s\' "$u"; }\n'
        # Write the anchor (true time minus uptime) unless one is there (a fault is in
        # force: the clock is shifted, the anchor is the truth). The truth is the node's own
        # clock when it is between the controller's time $1 (taken when sending) and
        # START_LAG seconds later: the command started late (a new SSH session on a starved
        # VM takes seconds) and the controller's time would set the clock back by as much.
        # Otherwise the node's clock is wrong and the controller's time is the truth.
        'clew_anchor() { [ -s "$AN" ] && return 0; '
        f"{py_anchor}"
        'a=$(u=$(clew_uptime) && w=$(date +%s.%N) && awk -v t="$1" -v w="$w" -v u="$u" '
        f"'BEGIN {{ b = (w >= t && w <= t + {START_LAG:g}) ? w : t; printf \"%.3f\", b - u }}') "
        '&& clew_put "$AN" "$a"; }\n'
        # Set the system clock to the true time (from the anchor) plus $1 seconds.
        'clew_set_clock() { a=$(cat "$AN") || return 1; '
        f"{py_set}"
        'u=$(clew_uptime) && t=$(awk -v a="$a" -v u="$u" -v d="$1" '
        '\'BEGIN { printf "%.3f", a + u + d }\') && date -s "@$t" >/dev/null; }\n'
        # Stop the strobe loop named in the pidfile, if it is ours and alive.
        "clew_stop_strobe() {\n"
        '  [ -e "$PF" ] || return 0\n'
        '  p=$(cat "$PF" 2>/dev/null)\n'
        '  case "$p" in \'\'|*[!0-9]*) rm -f "$PF"; return 0 ;; esac\n'
        '  if clew_ours "$p"; then\n'
        '    kill -TERM "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null\n'
        "    i=0\n"
        '    while clew_alive "$p"; do\n'
        "      i=$((i+1))\n"
        f'      if [ "$i" -gt {rounds} ]; then\n'
        '        echo "clock strobe (pid $p) still running after SIGTERM" >&2; return 1\n'
        "      fi\n"
        f"      sleep {_POLL}\n"
        "    done\n"
        "  fi\n"
        '  rm -f "$PF"\n'
        "}\n"
    )


def _strobe_flips(period: float, duration: float) -> int:
    """How many offset changes a strobe makes: ``duration / period`` rounded up to an even
    number (at least 2), so the loop ends where it started."""
    flips = max(2, math.ceil(duration / period - 1e-9))
    return flips + flips % 2


def _loop(directory: str, uptime_file: str, *, on: str, off: str, flips: int, period: float) -> str:
    """The strobe loop: alternately run ``on`` and ``off`` (shell lines) every ``period``
    seconds, ``flips`` times, then ``off`` once more; remove the pidfile if it is ours."""
    return (
        f"{_mark(directory)}\n"
        "trap '' HUP\n" + _prelude(directory, uptime_file) + "i=0\n"
        f'while [ "$i" -lt {flips} ]; do\n'
        f"  if [ $((i % 2)) -eq 0 ]; then {on}; else {off}; fi\n"
        f"  sleep {_seconds(period)}\n"
        "  i=$((i+1))\n"
        "done\n"
        f"{off}\n"
        '[ "$(cat "$PF" 2>/dev/null)" = "$$" ] && rm -f "$PF"\n'
        "exit 0\n"
    )


def _launch(loop: str) -> str:
    """Start ``loop`` detached in its own session (``setsid``: no SSH hang-up or command
    deadline reaches it), record its PID in the pidfile and print it."""
    return (
        f"setsid sh -c {shlex.quote(loop)} >/dev/null 2>&1 </dev/null &\n"
        'p=$!; echo "$p" >"$PF.tmp.$$" && mv -f "$PF.tmp.$$" "$PF" || exit 1\n'
        'echo "$p"\n'
    )


# --- libfaketime -----------------------------------------------------------------------


def faketime_bump_script(
    directory: str, offset: float, *, uptime_file: str = DEFAULT_UPTIME_FILE
) -> str:
    """Stop any strobe, then make ``offset`` seconds the libfaketime offset of the node
    (``0`` heals). Idempotent."""
    return (
        _prelude(directory, uptime_file)
        + 'mkdir -p "$D" || exit 1\n'
        + "clew_stop_strobe || exit 1\n"
        + f'clew_put "$RC" {shlex.quote(offset_text(offset))} || exit 1\n'
    )


def faketime_strobe_script(
    directory: str,
    *,
    delta: float,
    period: float,
    duration: float,
    uptime_file: str = DEFAULT_UPTIME_FILE,
) -> str:
    """Stop any strobe, then start one alternating the libfaketime offset between
    ``delta`` and ``+0`` every ``period`` seconds for about ``duration`` seconds; it ends
    at ``+0`` and exits. Prints the loop's PID."""
    on = f'clew_put "$RC" {shlex.quote(offset_text(delta))}'
    off = "clew_put \"$RC\" '+0'"
    flips = _strobe_flips(period, duration)
    loop = _loop(directory, uptime_file, on=on, off=off, flips=flips, period=period)
    return (
        _prelude(directory, uptime_file)
        + 'mkdir -p "$D" || exit 1\n'
        + "clew_stop_strobe || exit 1\n"
        + off
        + " || exit 1\n"
        + _launch(loop)
    )


# --- the system clock ------------------------------------------------------------------


def system_bump_script(
    directory: str, now: float, offset: float, *, uptime_file: str = DEFAULT_UPTIME_FILE
) -> str:
    """Stop any strobe, record the anchor unless one is kept (``now`` is the controller's
    time, seconds since the epoch, taken just before sending; see :func:`_prelude`), then
    set the system clock to the true time plus ``offset`` seconds (``0`` puts it right;
    the anchor is kept until a heal)."""
    return (
        _prelude(directory, uptime_file)
        + 'mkdir -p "$D" || exit 1\n'
        + "clew_stop_strobe || exit 1\n"
        + f"clew_anchor {_seconds(now)} || exit 1\n"
        + f"clew_set_clock {_seconds(offset)} || exit 1\n"
    )


def system_strobe_script(
    directory: str,
    now: float,
    *,
    delta: float,
    period: float,
    duration: float,
    uptime_file: str = DEFAULT_UPTIME_FILE,
) -> str:
    """Stop any strobe, record the anchor unless one is kept (``now``: the controller's
    time), then start
    a loop setting the system clock alternately to the true time plus ``delta`` and to the
    true time, every ``period`` seconds for about ``duration`` seconds; it ends on the true
    time and exits. Prints the loop's PID."""
    flips = _strobe_flips(period, duration)
    loop = _loop(
        directory,
        uptime_file,
        on=f"clew_set_clock {_seconds(delta)}",
        off="clew_set_clock 0",
        flips=flips,
        period=period,
    )
    return (
        _prelude(directory, uptime_file)
        + 'mkdir -p "$D" || exit 1\n'
        + "clew_stop_strobe || exit 1\n"
        + f"clew_anchor {_seconds(now)} || exit 1\n"
        + "clew_set_clock 0 || exit 1\n"
        + _launch(loop)
    )


# --- checks, heal and verify ------------------------------------------------------------------


def probe_script(
    directory: str,
    mechanism: str,
    *,
    library: str,
    ntp_daemons: Iterable[str] = (),
    uptime_file: str = DEFAULT_UPTIME_FILE,
) -> str:
    """Check that clock faults of ``mechanism`` (``libfaketime`` or ``system``) can be
    injected on the node, printing one line per problem (nothing when all is well):
    libfaketime's ``library`` missing; or for the system clock no root, a missing tool, a
    ``date`` without nanoseconds, or a running NTP daemon (one of ``ntp_daemons``) that
    would undo the faults. Creates ``directory``; changes nothing else."""
    lines = [
        'mkdir -p "$D" 2>/dev/null || echo "cannot create $D"',
        "for t in setsid tr grep mv awk; do",
        '  command -v "$t" >/dev/null 2>&1 || echo "$t is not installed"',
        "done",
    ]
    if mechanism == "libfaketime":
        why = f"libfaketime is not installed ({library} is missing; apt-get install libfaketime)"
        lines.append(f"[ -r {shlex.quote(library)} ] || echo {shlex.quote(why)}")
    else:
        daemons = " ".join(shlex.quote(d) for d in ntp_daemons)
        lines += [
            '[ "$(id -u)" = 0 ] || echo "setting the clock needs root"',
            'command -v date >/dev/null 2>&1 || echo "date is not installed"',
            '[ -r "$UPTIME" ] || echo "cannot read $UPTIME"',
            "case \"$(date +%N 2>/dev/null)\" in ''|*[!0-9]*) "
            'echo "date cannot print nanoseconds (GNU date is needed)" ;; esac',
        ]
        if daemons:
            lines += [
                "if command -v pidof >/dev/null 2>&1; then",
                f"  for d in {daemons}; do",
                '    pidof "$d" >/dev/null 2>&1 && '
                'echo "$d is running and would undo clock faults; stop it during the test"',
                "  done",
                "fi",
            ]
    return _prelude(directory, uptime_file) + "\n".join(lines) + "\ntrue\n"


def heal_script(directory: str, *, uptime_file: str = DEFAULT_UPTIME_FILE) -> str:
    """Heal every clock fault kept in ``directory``, needing nothing but the node: stop a
    strobe loop (by pidfile), write ``+0`` to the libfaketime file if there is one, and if
    an anchor is there (clew set the system clock) put the system clock back to the true
    time it gives, then remove the anchor. Idempotent; does nothing on a node where no
    clock fault was ever injected (it never sets the clock without an anchor)."""
    return (
        _prelude(directory, uptime_file)
        + "rc=0\n"
        + "clew_stop_strobe || rc=1\n"
        + 'if [ -e "$RC" ]; then clew_put "$RC" \'+0\' || rc=1; fi\n'
        + 'if [ -s "$AN" ]; then clew_set_clock 0 && rm -f "$AN" || rc=1; fi\n'
        + 'rm -f "$D"/*.tmp.* 2>/dev/null\n'
        + "exit $rc\n"
    )


def system_heal_script(
    directory: str, now: float, *, uptime_file: str = DEFAULT_UPTIME_FILE
) -> str:
    """:func:`heal_script` after recording an anchor if none is kept (``now``: the
    controller's time): the system clock is set to the true time, the node's own if it
    agrees with ``now`` (allowing for a late start), else ``now``. Only for system-clock
    mode."""
    return (
        _prelude(directory, uptime_file)
        + 'mkdir -p "$D" || exit 1\n'
        + f"clew_anchor {_seconds(now)} || exit 1\n"
        + heal_script(directory, uptime_file=uptime_file)
    )


def verify_script(directory: str, *, uptime_file: str = DEFAULT_UPTIME_FILE) -> str:
    """Print what is left of clock faults in ``directory``, one fact per line, for the
    controller to judge: ``faketime <line>`` (the offset file's content, if the file
    exists), ``strobe <pid>`` (a live strobe loop), ``anchor`` (an anchor is left) and
    always ``clock <seconds since the epoch>`` (the node's wall clock, last)."""
    return (
        _prelude(directory, uptime_file)
        + 'if [ -e "$RC" ]; then printf \'faketime %s\\n\' "$(head -n 1 "$RC")"; fi\n'
        + 'if [ -s "$PF" ]; then p=$(cat "$PF"); '
        + 'case "$p" in \'\'|*[!0-9]*) ;; *) clew_ours "$p" && echo "strobe $p" ;; esac; fi\n'
        + 'if [ -s "$AN" ]; then echo anchor; fi\n'
        + "printf 'clock %s\\n' \"$(date +%s.%N)\"\n"
    )
