"""Porcupine's test histories: the etcd Jepsen logs and the key-value EDN files.

* ``porcupine-etcd`` (``jepsen/etcd_*.log``): one op per line, as logged by Jepsen 0.0.x::

      INFO  jepsen.util - 3	:invoke	:cas	[1 4]

  Fields after ``jepsen.util -`` are ``process type f value``, separated by tabs or spaces.
  The value is ``nil``, an integer, a vector ``[from to]`` or ``:timed-out``; a completion
  whose value is ``:timed-out`` becomes ``value=None, error="timed-out"``. Lines from other
  loggers are skipped. There are no timestamps: the time of an op is its position.
* ``porcupine-kv`` (``kv/*.txt``): EDN op maps with a ``:key`` (read by the EDN reader);
  the time of an op is its position.
"""

from __future__ import annotations

import re
from typing import Any

from harness.errors import HistoryError
from harness.formats._io import describe_type, iter_lines, no_ops_error
from harness.formats.edn import parse_line, read_edn
from harness.history import History, HistoryBuilder
from harness.read_budget import ReadBudget

__all__ = ["ETCD_LINE", "read_porcupine_etcd", "read_porcupine_kv"]

#: An op line of the etcd logs; group 1 is everything after ``jepsen.util -``.
ETCD_LINE = re.compile(r"^\s*\S+\s+jepsen\.util\s+-\s+(.*?)\s*$")
_FIELDS = re.compile(r"(\S+)\s+(\S+)\s+(\S+)(?:\s+(.*))?$")
# The values nearly every line holds, read without the EDN parser (which reads them the
# same): an integer, and a vector of two (a cas's [from to]).
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_PAIR = re.compile(r"\[(-?(?:0|[1-9][0-9]*)) (-?(?:0|[1-9][0-9]*))\]")


#: Ops gathered before they are added to the history as columns (the read budget is
#: checked at every batch).
_BATCH = 4096
#: One op line, parsed: ``(type, process, f, value, error)``.
_EtcdOp = tuple[str, int | str, str, Any, Any]


def read_porcupine_etcd(path: str, *, budget: ReadBudget | None = None) -> History:
    """Read one of Porcupine's ``jepsen/etcd_*.log`` files into a :class:`History`.

    Raises :class:`HistoryError` naming the file and line for a malformed op line, and for
    a file with no op lines (``etcd_095.log`` is empty);
    :class:`~harness.read_budget.ReadBudgetExceeded` when ``budget`` runs out.
    """
    builder = HistoryBuilder(path=path, budget=budget)
    ops: list[_EtcdOp] = []
    lines: list[int] = []
    other = 0  # non-blank lines that are not op lines
    for n, text in iter_lines(path):
        m = ETCD_LINE.match(text)
        if m is None:
            other += bool(text.strip())
            continue
        fields = _FIELDS.match(m.group(1))
        if fields is None:
            raise HistoryError(
                "expected '<process> <type> <f> <value>' after 'jepsen.util -'",
                path=path,
                line=n,
            )
        proc_text, type_text, f_text, value_text = fields.groups()
        ops.append(_etcd_op(path, n, proc_text, type_text, f_text, value_text))
        lines.append(n)
        if len(ops) >= _BATCH:
            _add_ops(builder, ops, lines)
            ops, lines = [], []  # new lists: the builder may keep the ones it was given
    _add_ops(builder, ops, lines)
    if not len(builder):
        if other:
            raise HistoryError(
                "no op lines ('INFO  jepsen.util - <process> <type> <f> <value>') in the file",
                path=path,
                line=1,
            )
        raise no_ops_error(path)
    return builder.build()


def _etcd_op(
    path: str, n: int, proc_text: str, type_text: str, f_text: str, value_text: str | None
) -> _EtcdOp:
    """One op line's ``(type, process, f, value, error)``; a :class:`HistoryError` naming
    ``path`` and line ``n`` if a field is malformed."""
    process: int | str
    if proc_text.lstrip("-").isdigit():
        process = int(proc_text)
    elif proc_text.startswith(":") and len(proc_text) > 1:
        process = proc_text[1:]
    else:
        raise HistoryError(
            f"process must be an integer or a keyword such as :nemesis, got {proc_text!r}",
            path=path,
            line=n,
        )
    if not type_text.startswith(":") or not f_text.startswith(":"):
        raise HistoryError(
            f"type and f must be keywords (':ok', ':read'), got {type_text!r} {f_text!r}",
            path=path,
            line=n,
        )
    typ = type_text[1:]
    error = None
    value: Any
    if value_text is None or value_text == "nil":
        value = None
    elif value_text == ":timed-out" and typ != "invoke":
        value, error = None, "timed-out"
    elif _INT.fullmatch(value_text):
        value = int(value_text)
    elif pair := _PAIR.fullmatch(value_text):
        value = [int(pair.group(1)), int(pair.group(2))]
    else:
        parsed = parse_line(value_text, path=path, lineno=n)
        if len(parsed) != 1:
            raise HistoryError(
                f"expected one value after the f, got {len(parsed)}: {value_text!r}",
                path=path,
                line=n,
            )
        value = parsed[0]
        if isinstance(value, dict):
            raise HistoryError(
                f"the value must be nil, an integer or a vector, got {describe_type(value)}",
                path=path,
                line=n,
            )
    return typ, process, f_text[1:], value, error


def _add_ops(builder: HistoryBuilder, ops: list[_EtcdOp], lines: list[int]) -> None:
    """Add parsed ops (on source ``lines``) to ``builder``: as columns, or (when some op is
    not the plain case, e.g. a negative process) one by one, which names the bad line."""
    if not ops:
        return
    types, procs, fs, values, errors = (list(column) for column in zip(*ops, strict=True))
    nones: list[Any] = [None] * len(ops)
    if builder.add_columns(types, procs, fs, values, nones, nones, nones, nones, errors, lines):
        return
    for (typ, process, f, value, error), n in zip(ops, lines, strict=True):
        builder.add_row(typ, process, f, value, None, None, None, None, error, n)


def read_porcupine_kv(path: str, *, budget: ReadBudget | None = None) -> History:
    """Read one of Porcupine's ``kv/*.txt`` files (EDN maps with ``:key``).

    Same rules and errors as the EDN reader; times are positions.
    """
    return read_edn(path, keep_time=False, budget=budget)
