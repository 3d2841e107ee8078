"""What ``clew test`` tells a person while it works: a line per phase, and the live line.

The run's steps call :func:`begin` as each phase starts (cluster, database setup, load,
heal and teardown, node logs, check, report); a phase ends when the next begins or at
:func:`end`, and its elapsed time is reported. Each phase is also logged (logger
``clew.phase``), so a run's ``clew.log`` and ``clew -v`` show the steps with timestamps.
The fault ledger calls :func:`note_fault` as each fault is applied or healed, so the live
line shows a fault the moment it strikes and heals, not at the next sample.
A kernel about to compile (:mod:`checkers.compile_watch`) is told as it happens
(:func:`note_compiling`).

Where the lines go is the sink set with :func:`reporting` (the CLI's
:class:`ConsoleProgress`); without one, phases are only logged.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, TextIO

__all__ = [
    "ConsoleProgress",
    "ProgressSink",
    "begin",
    "end",
    "note_compiling",
    "note_fault",
    "reporting",
]

log = logging.getLogger("clew.phase")

#: Seconds between two live lines off a terminal (a fault striking or healing is shown at once).
PLAIN_INTERVAL = 10.0


class ProgressSink(Protocol):
    """Receives the phases and the fault events of a run."""

    def phase(
        self, name: str, detail: str, finished: tuple[str, float] | None, *, stopped: bool = False
    ) -> None:
        """Phase ``name`` starts (``finished``: the phase that just ended, and its seconds;
        ``stopped``: it was cut short)."""

    def phase_end(self, finished: tuple[str, float], *, stopped: bool = False) -> None:
        """The last phase ended (``stopped``: cut short by an error)."""

    def fault(self, record: Mapping[str, Any]) -> None:
        """A fault was applied or healed (a fault ledger record)."""

    def note(self, text: str) -> None:
        """A line about the current phase (e.g. a checker compiling during the check)."""


_sink: ProgressSink | None = None
_current: tuple[str, float] | None = None


@contextlib.contextmanager
def reporting(sink: ProgressSink | None) -> Iterator[None]:
    """Send phases and fault events to ``sink`` while the block runs (then end the last
    phase: as stopped if the block raised, e.g. the cluster could not come up)."""
    from checkers.compile_watch import watching

    global _sink, _current
    before, _sink, _current = _sink, sink, None
    stopped = True
    try:
        with watching(note_compiling):
            yield
        stopped = False
    finally:
        end(stopped=stopped)
        _sink = before


def _finish(stopped: bool = False) -> tuple[str, float] | None:
    global _current
    if _current is None:
        return None
    name, t0 = _current
    _current = None
    seconds = time.monotonic() - t0
    log.info("%s: %s %.1f s", name, "stopped after" if stopped else "done in", seconds)
    return name, seconds


def begin(name: str, detail: str = "", *, cut_short: bool = False) -> None:
    """Phase ``name`` starts now (``detail``: what it does, for a person); the phase before
    it ends (``cut_short``: stopped by a Ctrl-C or an error, not done)."""
    global _current
    finished = _finish(cut_short)
    _current = (name, time.monotonic())
    log.info("%s%s", name, f": {detail}" if detail else "")
    if _sink is not None:
        _sink.phase(name, detail, finished, stopped=cut_short)


def end(*, stopped: bool = False) -> None:
    """The current phase (if any) ends; ``stopped``: cut short by an error, not done."""
    finished = _finish(stopped)
    if finished is not None and _sink is not None:
        _sink.phase_end(finished, stopped=stopped)


def note_fault(record: Mapping[str, Any]) -> None:
    """A fault ledger record was written: faults applied or healed are reported at once."""
    if _sink is not None and record.get("event") in ("applied", "healed"):
        _sink.fault(record)


def note_compiling(what: str) -> None:
    """``what`` (e.g. "the linearizability checker") is about to be compiled, which takes
    tens of seconds the first time: before any phase (the options' check before the
    cluster) that is a phase of its own, "checker", ended by the next; within a phase, a
    line saying so."""
    detail = f"compiling {what} (first use; cached afterwards)"
    if _current is None:
        begin("checker", detail)
        return
    log.info("%s: %s", _current[0], detail)
    if _sink is not None:
        _sink.note(f"{_current[0]}: {detail} …")


def _fault_words(record: Mapping[str, Any]) -> str:
    kind = record.get("kind") or record.get("f") or "fault"
    targets = record.get("targets")
    if record.get("event") == "healed":
        if record.get("reason") == "final":  # the end's heal of every node, struck or not
            return f"{kind}: final heal of every node"
        return f"{kind} healed"
    where = f" → {' '.join(map(str, targets))}" if isinstance(targets, list) and targets else ""
    return f"{kind} struck{where}"


class ConsoleProgress:
    """Phase lines and the live line on stderr. On a terminal: rich, a spinner with the
    current phase (during the load: ops/s, outcomes and the active faults, redrawn at each
    update) above a line per finished phase. Otherwise plain timestamped lines: a phase's
    start and end, a fault striking or healing at once, and the live line every
    :data:`PLAIN_INTERVAL` seconds."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last = 0.0
        self._fault: str | None = None
        self._status: Any = None
        self._console: Any = None
        self._phase = ""
        self._phase_t0 = time.monotonic()
        #: The faults acting, by kind, as the ledger recorded them (None: no ledger seen).
        self._acting: dict[str, str] | None = None

    # --- output ---------------------------------------------------------------------------
    def _line(self, text: str) -> None:
        try:
            if self.tty:
                self._rich().print(text, highlight=False, markup=False)
            else:
                self.stream.write(time.strftime("%H:%M:%S ") + text + "\n")
                self.stream.flush()
        except OSError as e:
            self._gone(e)

    def _gone(self, e: OSError) -> None:
        """The stream broke (a closed pipe: ``clew test … | head``; a terminal gone): the
        progress lines stop, the run does not. Raising here, inside the run's scopes,
        once skipped the database's teardown and the cluster's down, and lost the check."""
        if self.enabled:
            log.warning("progress lines stopped: cannot write to %s: %s", self.stream, e)
        self.enabled = False
        self._status = None

    def _rich(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream)
        return self._console

    def _show(self, text: str) -> None:
        """The spinner's text (terminal only)."""
        try:
            if self._status is None:
                self._status = self._rich().status(text)
                self._status.start()
            else:
                self._status.update(text)
        except OSError as e:
            self._gone(e)

    # --- ProgressSink ---------------------------------------------------------------------
    def phase(
        self, name: str, detail: str, finished: tuple[str, float] | None, *, stopped: bool = False
    ) -> None:
        """Report the phase that ended (``stopped``: cut short) and the one starting."""
        if not self.enabled:
            return
        if finished is not None:
            self._done(finished, stopped=stopped)
        self._phase, self._phase_t0 = name, time.monotonic()
        text = f"{name}: {detail}" if detail else name
        if self.tty:
            self._show(text + " …")
        else:
            self._line(text + " …")

    def phase_end(self, finished: tuple[str, float], *, stopped: bool = False) -> None:
        """Report the last phase's end (``stopped``: cut short by an error, which the caller
        prints) and stop the spinner."""
        if self.enabled:
            self._done(finished, stopped=stopped)
        self.done()

    def _done(self, finished: tuple[str, float], *, stopped: bool = False) -> None:
        name, seconds = finished
        if stopped:
            self._line(f"{'✗ ' if self.tty else ''}{name}: stopped after {seconds:.1f} s")
        else:
            self._line(f"{'✓ ' if self.tty else ''}{name}: done in {seconds:.1f} s")

    def note(self, text: str) -> None:
        """Print a line about the current phase (on a terminal, also the spinner's text)."""
        if not self.enabled:
            return
        if self.tty:
            self._show(text)
        else:
            self._line(text)

    def fault(self, record: Mapping[str, Any]) -> None:
        """Print a fault striking or healing the moment the ledger records it."""
        if not self.enabled:
            return
        t = record.get("time")
        at = f"{t / 1e9:6.1f} s  " if isinstance(t, int | float) else ""
        self._line(f"{at}fault: {_fault_words(record)}")
        acting = self._acting if self._acting is not None else {}
        kind = str(record.get("kind") or record.get("f") or "fault")
        if record.get("event") == "healed":
            acting.pop(kind, None)
        else:
            acting[kind] = _fault_words(record).removesuffix(" struck").replace(" struck", "")
        self._acting = acting

    # --- the live line (the interpreter's progress callback) ------------------------------
    def __call__(self, p: Any, fault: str | None) -> None:
        """The load's live line: elapsed, ops/s, outcomes, the faults acting now (as the
        fault ledger recorded them once it has: a fault counts from its strike to its
        heal; before, as the caller says)."""
        if not self.enabled:
            return
        if self._acting is not None:
            fault = ", ".join(self._acting[k] for k in sorted(self._acting)) or None
        now = time.monotonic()
        changed = (fault or None) != self._fault
        self._fault = fault or None
        if not self.tty and now - self._last < PLAIN_INTERVAL and not changed:
            return
        self._last = now
        what = fault or "none"
        if changed:
            what = f"{fault} (struck)" if fault else "none (healed)"
        line = (
            f"{p.elapsed:6.1f} s  {p.ops_per_s:7.0f} ops/s  "
            f"ok {p.ok}  fail {p.fail}  info {p.info}  fault: {what}"
        )
        if self.tty:
            self._show(f"{self._phase or 'load'}: {line}")
        else:
            self._line(line)

    def done(self) -> None:
        """Stop the spinner (terminal)."""
        if self._status is not None:
            try:
                self._status.stop()
            except OSError as e:
                self._gone(e)
            self._status = None
