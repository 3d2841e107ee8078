"""Jepsen store directories, checked and reported by clew (``clew analyze``, ``clew report``).

A run of a Jepsen test leaves ``store/<test>/<time>/`` with ``history.edn`` (one op map
per line, no enclosing vector), ``results.edn`` (the checkers' map, ``:valid?`` at its
top), ``jepsen.log`` and one directory per node holding that node's logs. clew reads such a
directory as it is and never writes into Jepsen's files: it keeps its own view of the run
in the ``clew/`` subdirectory — ``history.jsonl`` (the history converted), ``results.json``
(clew's verdict, with Jepsen's own verdict under ``jepsen``), ``nodes/<node>/`` (links to
the node logs) and ``report.html`` — so every clew tool (``clew report``, ``clew check``,
the store's index) works on it like on a run of its own.

The model is chosen as ``clew check`` chooses it (the one model that fits the operations,
else a clear refusal naming ``--model``).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checkers.result import Result
from harness.errors import ClewError, ConfigError, InputError
from harness.history import History
from harness.read_budget import ReadBudgetExceeded

log = logging.getLogger(__name__)

__all__ = [
    "VIEW_DIR",
    "JepsenCheck",
    "check_jepsen_store",
    "is_jepsen_store",
    "jepsen_verdict",
    "read_jepsen_results",
    "view_dir",
]

#: Where clew keeps its view of a Jepsen run, inside the Jepsen run directory.
VIEW_DIR = "clew"
_TXN_MODELS = ("list-append", "rw-register")
#: Files of a Jepsen run that are not node logs (everything else in a subdirectory is).
_NOT_NODES = {VIEW_DIR}
_MAX_LOG_FILES = 200
#: Largest results.edn parsed whole (``edn_format`` reads about 100 KB/s); of a larger one
#: only the top-level ``:valid?`` is read, by a scan (:mod:`harness.edn_verdict`).
RESULTS_PARSE_MAX = 256 * 1024


def is_jepsen_store(path: str | Path) -> bool:
    """Whether ``path`` is a Jepsen run directory: it holds ``history.edn`` and is not a
    clew run (no ``history.jsonl`` of its own)."""
    p = Path(path)
    return (p / "history.edn").is_file() and not (p / "history.jsonl").exists()


def _plain(value: Any) -> Any:
    """An EDN value as JSON-able data: keywords become their names, sets sorted lists."""
    import edn_format

    if isinstance(value, edn_format.Keyword):
        return value.name
    if isinstance(value, edn_format.Symbol):
        return str(value)
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)) or type(value).__name__ == "ImmutableList":
        items = [_plain(v) for v in value]
        if isinstance(value, (frozenset, set)):
            return sorted(items, key=repr)
        return items
    return value


def read_jepsen_results(
    path: str | Path, *, deadline: float | None = None
) -> dict[str, Any] | None:
    """Jepsen's ``results.edn`` of the run in ``path`` as plain data (keywords as their
    names, so ``:valid?`` is ``"valid?"``), or ``None`` when the run has none (Jepsen
    writes it only after its checkers finish). Of a file larger than
    :data:`RESULTS_PARSE_MAX` only the verdict is read: ``{"valid?": ...}``.
    :class:`InputError` naming the file if it is not one EDN map;
    :class:`~harness.read_budget.ReadBudgetExceeded` if scanning a large one passes
    ``deadline`` (a :func:`time.monotonic` instant)."""
    import edn_format

    f = Path(path) / "results.edn"
    if not f.is_file():
        return None
    if f.stat().st_size > RESULTS_PARSE_MAX:
        from harness.edn_verdict import top_level_verdict

        return {"valid?": top_level_verdict(f, deadline=deadline)}
    try:
        data = edn_format.loads(f.read_text(encoding="utf-8"))
    except Exception as e:  # edn_format raises its own and Python's errors
        raise InputError(f"{f}: not EDN: {e}") from e
    try:
        plain = _plain(data)
    except RecursionError:
        raise InputError(f"{f}: not EDN clew reads: nested too deeply") from None
    if not isinstance(plain, dict):
        raise InputError(f"{f}: not an EDN map (Jepsen's results are one map)")
    return plain


def jepsen_verdict(results: dict[str, Any] | None) -> bool | str | None:
    """Jepsen's own verdict from its results: True, False, ``"unknown"``, or None."""
    if results is None:
        return None
    v = results.get("valid?")
    return v if v in (True, False, "unknown") else None


@dataclass(frozen=True)
class JepsenCheck:
    """clew's check of a Jepsen run: where its view is, the verdict, and Jepsen's."""

    store: Path
    view: Path
    model: str
    result: Result
    jepsen_valid: bool | str | None
    ops: int
    duration: float
    #: Why its report.html was not written (``None``: it was).
    report_problem: str | None = None

    @property
    def exit_code(self) -> int:
        """Jepsen's exit code for clew's verdict (0 valid, 1 invalid, 2 unknown)."""
        return self.result.exit_code


def _model_names() -> list[str]:
    """Every model a Jepsen store can be checked with, as ``clew check --model`` takes."""
    from checkers.collections import CHECKERS
    from checkers.linear.models import MODELS

    return list(dict.fromkeys([*MODELS, *_TXN_MODELS, *sorted(CHECKERS)]))


def _model_choices() -> str:
    return ", ".join(_model_names())


def _check(
    history: History, model: str, time_limit: float, max_memory: int, started: float
) -> Result:
    """Check ``history`` as ``model`` within ``time_limit`` seconds from ``started`` (a
    ``time.perf_counter()``: when reading began) and ``max_memory`` bytes."""
    from checkers.collections import CHECKERS

    if model in _TXN_MODELS:
        from checkers.txn.check import check as txn_check

        return txn_check(history, model, time_limit=time_limit, max_memory=max_memory,
                         started=started)  # fmt: skip
    if model in CHECKERS:
        from checkers.collections import check_within

        return check_within(model, history, time_limit=time_limit, max_memory=max_memory,
                            started=started)  # fmt: skip
    from checkers.linear import check, resolve_model

    return check(history, resolve_model(history, model), time_limit=time_limit,
                 max_bytes=max_memory, started=started)  # fmt: skip


def _link_node_logs(store: Path, view: Path) -> None:
    """Hard-link (else copy) every node's files under ``view/nodes/<node>/``."""
    nodes = view / "nodes"
    if nodes.is_dir() and not nodes.is_symlink():
        shutil.rmtree(nodes)
    elif nodes.is_symlink() or nodes.exists():  # a link (remove it, not what it points
        nodes.unlink()  # at), a file or a FIFO (which rmtree would open, and wait on)
    count = 0
    nodes_in = (p for p in store.iterdir() if p.is_dir() and p.name not in _NOT_NODES)
    # (a node directory that is a link, n1 -> /var/log, would copy files from elsewhere)
    for node in sorted(p for p in nodes_in if not p.is_symlink()):
        for f in sorted(p for p in node.rglob("*") if p.is_file() and not p.is_symlink()):
            if count >= _MAX_LOG_FILES:
                return
            dst = nodes / node.name / f.relative_to(node)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(f, dst)
            except OSError:
                shutil.copyfile(f, dst)
            count += 1


#: Seconds ``clew analyze`` of a Jepsen store may take to read and check it, by default.
DEFAULT_TIME_LIMIT = 300.0


def view_dir(store: Path) -> Path:
    """``store/clew``, where clew keeps its view of the Jepsen run, if clew may write there:
    :class:`InputError` if it is a link (clew would write, and delete, wherever it points)
    or something other than a directory."""
    view = store / VIEW_DIR
    if view.is_symlink():
        raise InputError(f"{view}: is a symbolic link; clew keeps its view of the Jepsen run "
                         "there and writes only inside the store: move it away")  # fmt: skip
    if view.exists() and not view.is_dir():
        raise InputError(f"{view}: exists and is not a directory; clew keeps its view of the "
                         "Jepsen run there: move it away")  # fmt: skip
    return view


def check_jepsen_store(
    path: str | Path,
    *,
    model: str | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    max_memory: int | None = None,
) -> JepsenCheck:
    """Check the Jepsen run in ``path`` and write clew's view of it into ``path/clew/``
    (history.jsonl, results.json with Jepsen's verdict beside clew's, node logs,
    report.html) and return the verdict. ``model``: as ``clew check --model`` (default:
    the one that fits). Reading ``history.edn`` and checking it may take ``time_limit``
    seconds and add ``max_memory`` bytes (default: the checkers' 2 GiB): out of either
    while reading raises :class:`~harness.read_budget.ReadBudgetExceeded` (nothing is
    written), while checking gives an ``unknown`` verdict. :class:`InputError` (naming file
    and line) for a bad history or results file, naming ``path/clew`` if it is not a
    directory clew can write, or naming a history.edn or results.edn linked out of the
    store; :class:`ConfigError` when no model clearly fits."""
    from checkers.linear.budget import DEFAULT_MAX_BYTES
    from checkers.linear.models import guess_model
    from harness.formats import read_history, write_history
    from harness.read_budget import ReadBudget
    from harness.record import RunResults, verdict
    from harness.runner import client_ops, history_duration
    from harness.store import leads_out
    from reports.run_report import write_run_report

    store = Path(path)
    if not is_jepsen_store(store):
        raise ConfigError(f"{store}: not a Jepsen store directory (no history.edn)")
    for f in (store / "history.edn", store / "results.edn"):
        if f.is_symlink() and leads_out(f, store):  # -> /proc/kmsg would block the reading
            raise InputError(f"{f} -> {os.readlink(f)}: a link out of the Jepsen store; clew "
                             "reads only the store's own files: copy it in instead")  # fmt: skip
    if model is not None and model not in _model_names():  # before reading the history
        raise ConfigError(f"unknown model {model!r}; choose one of {_model_choices()}")
    view = view_dir(store)
    started = time.monotonic()
    began = time.perf_counter()  # (the checkers' clock: the time limit counts from here)
    memory = DEFAULT_MAX_BYTES if max_memory is None else max_memory
    budget = ReadBudget(began, time_limit, memory)
    history = read_history(str(store / "history.edn"), "edn", budget=budget)
    unread = None
    try:
        jepsen = read_jepsen_results(store, deadline=started + time_limit)
    except ReadBudgetExceeded as e:
        jepsen, unread = (
            None,
            f"Jepsen's results.edn was not read: {e} (time limit {time_limit:g} s)",
        )
    try:
        chosen = model or guess_model(history, _model_choices())
    except ConfigError as e:
        raise ConfigError(f"{store / 'history.edn'}: {e}") from None
    t0 = time.perf_counter()
    result = _check(history, chosen, time_limit, memory, began)
    check_seconds = time.perf_counter() - t0
    try:
        view.mkdir(exist_ok=True)
    except OSError as e:
        raise InputError(f"{view}: cannot create clew's view of the Jepsen run: "
                         f"{e.strerror or e}") from None  # fmt: skip
    converted = view / "history.jsonl"
    if converted.is_symlink() or (converted.exists() and not converted.is_file()
                                  and not converted.is_dir()):  # fmt: skip
        # write_history would replace a link's target, and write into a FIFO (waiting for
        # a reader forever) rather than replace it
        converted.unlink()
    write_history(history, str(view / "history.jsonl"), "jsonl")
    _link_node_logs(store, view)
    problems = []
    jepsen_valid = jepsen_verdict(jepsen)
    if unread is not None:
        problems.append(unread)
    elif jepsen is None:
        problems.append("the Jepsen run has no results.edn (its checkers did not finish)")
    elif jepsen_valid is not None and jepsen_valid != result.valid:
        problems.append(f"Jepsen's verdict was {jepsen_valid}, clew's is {result.valid}")
    name = "linear" if chosen not in _TXN_MODELS else "workload"
    ops = client_ops(history)
    duration = history_duration(history)
    results = RunResults(
        valid=verdict([result.valid]),
        checkers={name: {**result.to_json(), "model": chosen}},
        ops=ops,
        history_lines=len(history),
        duration=duration,
        check_seconds=check_seconds,
        problems=problems,
    )
    record = results.to_json()
    record["jepsen"] = {"store": str(store.resolve()), "valid": jepsen_valid}
    from harness.record import write_json_file

    write_json_file(view / "results.json", record)
    report_problem: str | None = None
    try:
        write_run_report(view, history)
    except ClewError as e:  # the verdict is recorded: a page that cannot be written loses it not
        report_problem = str(e)
        log.warning("the report of %s was not written: %s", view, e)
    except Exception as e:  # a bug of clew's: the verdict still stands, the traceback is logged
        report_problem = f"{type(e).__name__}: {e} (a bug in clew)"
        log.exception("writing the report of %s failed", view)
    return JepsenCheck(
        store=store, view=view, model=chosen, result=result, jepsen_valid=jepsen_valid,
        ops=ops, duration=duration, report_problem=report_problem,
    )  # fmt: skip
