"""clew's native history format: JSON Lines, one op per line, in real-time order.

A line looks like::

    {"index":0,"time":1042,"type":"invoke","process":0,"f":"write","value":3}

The fields are described in ``docs/history-format.md``. The file is appended and flushed as
ops happen (the journal), so a crash leaves a valid prefix; :func:`op_to_json_line` is the
one place that turns an op into its line.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import compress
from typing import IO, TYPE_CHECKING, Any

import msgspec
import numpy as np
import numpy.typing as npt

from harness.errors import HistoryError
from harness.formats._io import (
    OP_FIELDS,
    add_op,
    decode_error,
    gc_paused,
    no_ops_error,
    open_bytes,
    too_deep,
)
from harness.history import CodedColumn, History, HistoryBuilder
from harness.read_budget import JSON_MOST_PER_CHAR, ReadBudget, parse_memory_bound

if TYPE_CHECKING:
    from harness.formats._jsonl_txn import Parsed
    from harness.txn_mops import BlockMops

__all__ = ["op_to_json_line", "read_jsonl", "write_jsonl"]

_DECODE = json.JSONDecoder().decode
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode


def _reject(o: Any) -> Any:
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


# json's C encoder, built once: JSONEncoder.encode builds a new one on every call, which
# is most of the journal's cost per op. Same output as _ENCODE (compact, UTF-8, NaN ok).
_C_ENCODER = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _reject, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    if getattr(json.encoder, "c_make_encoder", None) is not None
    else None
)


def _encode_fast(obj: Any) -> str:
    if _C_ENCODER is None:
        return _ENCODE(obj)
    return "".join(_C_ENCODER(obj, 0))


#: Bytes read and decoded together on the fast path (bounds the memory that reading takes
#: beyond the history, and the time between two looks at the budget).
BLOCK_BYTES = 1 << 16
#: Lines decoded together on the checked path.
CHUNK_LINES = 1 << 10
#: Files at least this big are read by the compiled scanner (``_jsonl_scan``), in blocks
#: of :data:`SCAN_BLOCK_BYTES`: loading it costs a fixed few tenths of a second, which a
#: small file does not repay.
SCAN_MIN_BYTES = 1 << 23
SCAN_BLOCK_BYTES = 1 << 22
#: The scanner's code (Numba) takes about 130 MiB of resident memory, which a read budget
#: counts: under a smaller memory budget than this, reading keeps to the msgspec path.
SCAN_MIN_BUDGET = 512 << 20


class _Op(msgspec.Struct, gc=False):
    """The fields of an op line that clew keeps, as the fast path decodes them (any
    other field is skipped). ``Any`` leaves every check to the builder, which falls back
    to the checked path, with its messages, for anything out of the ordinary."""

    type: Any = None
    process: Any = None
    f: Any = None
    value: Any = None
    time: Any = None
    index: Any = None
    key: Any = None
    node: Any = None
    error: Any = None


_DECODE_LINES = msgspec.json.Decoder(_Op).decode_lines
_FIELDS = [operator.attrgetter(name) for name in _Op.__struct_fields__]


def read_jsonl(path: str, *, budget: ReadBudget | None = None) -> History:
    """Read a JSONL history into a :class:`History`.

    Blank lines are skipped and unknown fields ignored. Raises :class:`HistoryError` naming
    the file and line for a line that is not a JSON object, an op without ``type``,
    ``process`` or ``f``, a bad field, a pairing error, or a file with no ops; and
    :class:`~harness.read_budget.ReadBudgetExceeded` when ``budget`` runs out.

    Blocks of plain op lines (the usual case) go in column by column: in a big file (at
    least :data:`SCAN_MIN_BYTES`, and no memory budget below :data:`SCAN_MIN_BUDGET`)
    through the compiled scanner (:class:`_Scanner`), else decoded by ``msgspec``; a
    block with anything else (a blank line, a carriage return, an odd field, bad JSON or
    UTF-8) is read line by line with full checks and messages.
    """
    builder = HistoryBuilder(path=path, budget=budget)
    line = 1  # the line the next block starts on
    with open_bytes(path) as f, gc_paused():
        small_budget = (
            budget is not None and (budget.max_memory or SCAN_MIN_BUDGET) < SCAN_MIN_BUDGET
        )
        if _size(f) >= SCAN_MIN_BYTES and not small_budget:
            line = _read_scanned(builder, f, path)
        else:
            for block in _blocks(f, BLOCK_BYTES, budget, path):
                line = _add_block(builder, block, line, path)
                builder.check_budget(line - 1)
    if not len(builder):
        raise no_ops_error(path)
    with gc_paused():
        return builder.build()


def _blocks(
    f: IO[bytes], size: int, budget: ReadBudget | None = None, path: str | None = None
) -> Iterator[bytes]:
    """Blocks of whole lines of ``f``, about ``size`` bytes each (the last line's newline
    may be missing). A line longer than ``size`` is gathered in pieces and joined once:
    linear in its length (joining as it grew made a 50 MB line cost 25 s). While a line is
    gathered, ``budget`` is looked at: joining and decoding it may take its length plus
    :func:`_block_bound` of it, so a line that would not fit is refused (naming it)
    before it is whole."""
    pieces: list[bytes] = []  # the start of a line whose end is not read yet
    gathered = 0  # bytes in pieces
    bound = 0  # _block_bound of pieces
    budgeted = budget is not None and budget.max_memory is not None
    lines = 0  # line ends in the blocks given so far
    while True:
        data = f.read(size)
        if not data:
            if pieces:
                yield b"".join(pieces)
            return
        cut = data.rfind(b"\n") + 1
        if not cut:  # no line end yet: read on
            pieces.append(data)
            gathered += len(data)
            if budgeted:
                bound += _block_bound(data)
                budget.check_room(path, lines + 1, gathered + bound,  # type: ignore[union-attr]
                                  what="joining and decoding a line this long")  # fmt: skip
            continue
        pieces.append(data[:cut])
        block = b"".join(pieces)
        if budget is not None:
            lines += block.count(b"\n")
        yield block
        pieces = [data[cut:]] if cut < len(data) else []
        gathered = len(pieces[0]) if pieces else 0
        bound = _block_bound(pieces[0]) if budgeted and pieces else 0


def _block_bound(block: bytes) -> int:
    """An upper bound of the memory that decoding ``block`` takes, on either path: its
    values (:func:`~harness.read_budget.parse_memory_bound`) and the three copies of its
    text the checked path makes (the text, its lines, a chunk of them joined)."""
    return parse_memory_bound(block) + 3 * len(block)


#: The most :func:`_block_bound` counts for one byte.
_BLOCK_MOST_PER_BYTE = JSON_MOST_PER_CHAR + 3


def _check_decoding(builder: HistoryBuilder, block: bytes, line: int, path: str) -> None:
    """Raise :class:`~harness.read_budget.ReadBudgetExceeded`, before it is decoded, if
    decoding ``block`` (lines from ``line`` on) may take more memory than the builder's
    budget has left. A block of short lines (at most two of :data:`BLOCK_BYTES`) costs a
    comparison."""
    budget = builder.budget
    if budget is not None and len(block) > budget.small_text(_BLOCK_MOST_PER_BYTE,
                                                             2 * BLOCK_BYTES):
        budget.check_decoding(path, line, block, builder.held_bytes(), bound=_block_bound,
                              most_per_char=_BLOCK_MOST_PER_BYTE,
                              what="decoding the lines from there")  # fmt: skip


def _read_scanned(builder: HistoryBuilder, f: IO[bytes], path: str) -> int:
    """Add every block of ``f`` with the compiled scanner (the checked way where it refuses
    one); return the line after the last. The compiled part of the next block (it holds
    no lock) runs in a second thread while this one adds the block before it."""
    scanner = _Scanner()
    line = 1
    with ThreadPoolExecutor(1, thread_name_prefix="clew-jsonl-scan") as pool:
        blocks = _blocks(f, SCAN_BLOCK_BYTES, builder.budget, path)
        block = next(blocks, None)
        pending = None if block is None else pool.submit(scanner.scan, block)
        while block is not None and pending is not None:
            scanned = pending.result()
            after = next(blocks, None)
            pending = None if after is None else pool.submit(scanner.scan, after)
            added = None if scanned is None else scanner.add(builder, block, line, scanned)
            line = _add_block(builder, block, line, path) if added is None else added
            builder.check_budget(line - 1)
            block = after
    return line


def _size(f: IO[bytes]) -> int:
    try:
        return os.fstat(f.fileno()).st_size
    except (OSError, ValueError):
        return 0


@dataclass(slots=True)
class _Scanned:
    """What the compiled part found in a block: per line and field (see ``_jsonl_scan``)
    the kind, integer and text span; per coded field (in :data:`_CODED`'s order), each
    line's group of equal texts, the first line of each group and the number of groups."""

    n: int
    buf: npt.NDArray[np.uint8]
    kind: npt.NDArray[np.int8]
    ival: npt.NDArray[np.int64]
    start: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    codes: npt.NDArray[np.int64]
    first: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]
    #: The value groups whose text may be a transaction (a list of lists), and what
    #: :func:`~harness.formats._jsonl_txn.parse_txns` found in their texts.
    txn_groups: npt.NDArray[np.int64] | None = None
    txns: Parsed | None = None


#: The fields given to the builder as coded columns.
_CODED = ("type", "process", "f", "value", "key", "node", "error")


class _Scanner:
    """Adds blocks of plain op lines to a builder with the compiled scanner: each field's
    distinct texts are decoded once, and the ops go in as coded columns
    (:meth:`HistoryBuilder.add_coded`), with no Python object per op. :meth:`scan` is
    the compiled part (safe in another thread), :meth:`add` the rest."""

    def __init__(self) -> None:
        from harness.formats import _jsonl_scan, _jsonl_txn

        self.lib = _jsonl_scan
        self.txn = _jsonl_txn
        self.value_col = _jsonl_scan.FIELDS.index("value")

    def scan(self, block: bytes) -> _Scanned | None:
        """The compiled part of reading ``block``; ``None`` if a line is not plain."""
        lib = self.lib
        if b"\r" in block:
            return None
        rows = block.count(b"\n") + 1
        width = len(lib.FIELDS)
        kind = np.empty((rows, width), dtype=np.int8)
        ival = np.empty((rows, width), dtype=np.int64)
        start = np.empty((rows, width), dtype=np.int64)
        end = np.empty((rows, width), dtype=np.int64)
        buf = np.frombuffer(block, dtype=np.uint8)
        n = lib.scan_block(buf, kind, ival, start, end)
        if n <= 0:
            return None
        cols = np.array([lib.FIELDS.index(name) for name in _CODED], dtype=np.int64)
        kind, ival, start, end = kind[:n], ival[:n], start[:n], end[:n]
        codes, first, counts = lib.group_fields(buf, kind, start, end, cols)
        sc = _Scanned(n, buf, kind, ival, start, end, codes, first, counts)
        self._parse_txns(block, sc)
        return sc

    def _parse_txns(self, block: bytes, sc: _Scanned) -> None:
        """The compiled part of decoding the distinct values that may be transactions
        (lists of lists: see :mod:`harness.formats._jsonl_txn`), into ``sc``."""
        c = _CODED.index("value")
        col = self.value_col
        rows = sc.first[c, : sc.counts[c]]
        s, e = sc.start[rows, col], sc.end[rows, col]
        # Only a present value has a span (an absent one's start and end are whatever the
        # arrays held), so its text is looked at only once it is known to be there.
        spanned = np.flatnonzero((sc.kind[rows, col] == self.lib.OTHER) & (e - s > 2))
        groups = spanned[sc.buf[s[spanned] + 1] == ord("[")]
        if len(groups):
            sc.txn_groups = groups
            sc.txns = self.txn.parse_txns(block, s[groups], e[groups])

    def add(self, builder: HistoryBuilder, block: bytes, line: int, sc: _Scanned) -> int | None:
        """Add the ops of ``block`` (whole lines, the first being ``line``; ``sc`` what
        :meth:`scan` found) and return the line after it; ``None``, having added
        nothing, if a text does not decode or an op is not plain."""
        field = self.lib.FIELDS.index
        cols = {}
        for c, name in enumerate(_CODED):
            col = self._coded(sc, block, c, field(name), builder, line)
            if col is None:
                return None
            cols[name] = col
        time = self._ints(sc, field("time"))
        index = self._ints(sc, field("index"))
        if time is False or index is False:
            return None
        lines = np.arange(line, line + sc.n, dtype=np.int64)
        if not builder.add_coded(time=time, index=index, line=lines, **cols):  # type: ignore[arg-type]
            return None
        return line + sc.n

    def _ints(self, sc: _Scanned, col: int) -> npt.NDArray[np.int64] | bool | None:
        """Column ``col`` as integers; ``None`` if no line has it (or all are null);
        False if it is mixed or not integers."""
        kinds = sc.kind[:, col]
        if bool(np.all(kinds == self.lib.INT)):
            return sc.ival[:, col].copy()
        if bool(np.all(kinds <= self.lib.NULL)):
            return None
        return False

    def _coded(
        self, sc: _Scanned, block: bytes, c: int, col: int, builder: HistoryBuilder, line: int
    ) -> CodedColumn | None:
        """Column ``col`` (coded field number ``c``) as distinct values and codes (an
        absent field counts as ``None``); ``None`` if a text does not decode. The texts
        to decode are looked at against ``builder``'s budget first (``line``: where the
        block starts)."""
        lib = self.lib
        first_rows = sc.first[c, : sc.counts[c]]
        whole = self._only_txns(sc, len(first_rows)) if col == self.value_col else None
        if whole is not None:
            values, canonical = self.txn.build_txns(block, whole)
            entries = np.arange(len(values), dtype=np.int64)
            block_mops = self.txn.block_mops(block, whole, entries)
            return CodedColumn(values, sc.codes[c], canonical, block_mops)
        group_kind = sc.kind[first_rows, col]
        out = np.empty(len(first_rows), dtype=object)  # None where null or absent
        is_int = group_kind == lib.INT
        if is_int.any():
            out[is_int] = sc.ival[first_rows[is_int], col].astype(object)
        spans = np.flatnonzero(group_kind >= lib.STR)
        starts = sc.start[first_rows[spans], col].tolist()
        ends = sc.end[first_rows[spans], col].tolist()
        is_str = group_kind[spans] == lib.STR
        if is_str.any():
            out[spans[is_str]] = np.array(
                [block[s + 1 : e - 1].decode("ascii")
                 for s, e in compress(zip(starts, ends, strict=True), is_str.tolist())],
                dtype=object,
            )  # fmt: skip
        known: list[bytes | None] | None = None
        mops: BlockMops | None = None
        if not is_str.all():
            other = ~is_str
            if col == self.value_col:
                known, mops = self._txns(block, sc, spans, other, out)
            spans_other = compress(zip(starts, ends, strict=True), other.tolist())
            texts = b",".join([block[s:e] for s, e in spans_other])
            if texts:
                _check_decoding(builder, texts, line, builder.path or "")
                try:
                    decoded = msgspec.json.decode(b"[" + texts + b"]")
                except (msgspec.DecodeError, RecursionError):
                    return None
                if len(decoded) != int(np.count_nonzero(other)):
                    return None
                # Object by object (a list of equal-length lists would become 2-D).
                out[spans[other]] = np.fromiter(decoded, dtype=object, count=len(decoded))
        return CodedColumn(out.tolist(), sc.codes[c], known, mops)

    @staticmethod
    def _only_txns(sc: _Scanned, groups: int) -> Parsed | None:
        """What was parsed of the ``groups`` value groups if every one is a plain
        transaction (then they go in as they are built, with no array of objects in
        between), else ``None``."""
        p = sc.txns
        return p if p is not None and len(p.ok) == groups and bool(p.ok.all()) else None

    def _txns(
        self,
        block: bytes,
        sc: _Scanned,
        spans: npt.NDArray[np.int64],
        other: npt.NDArray[np.bool_],
        out: npt.NDArray[Any],
    ) -> tuple[list[bytes | None] | None, BlockMops | None]:
        """Put in ``out`` the values :meth:`_parse_txns` found to be plain transactions,
        and take them out of ``other`` (a mask of ``spans``, the groups still to decode);
        return each group's canonical text (``None`` where not known) and the micro-ops
        of those values, or ``None``s if no value was one."""
        if sc.txns is None or sc.txn_groups is None:
            return None, None
        values, texts = self.txn.build_txns(block, sc.txns)
        if not values:
            return None, None
        groups = sc.txn_groups[sc.txns.ok]
        out[groups] = np.fromiter(values, dtype=object, count=len(values))
        other[np.searchsorted(spans, groups)] = False
        known: list[bytes | None] = [None] * len(out)
        for g, t in zip(groups.tolist(), texts, strict=True):
            known[g] = t
        return known, self.txn.block_mops(block, sc.txns, groups)


def _add_block(builder: HistoryBuilder, block: bytes, line: int, path: str) -> int:
    """Add the ops of ``block`` (whole lines, the first being ``line``); return the line
    after it."""
    _check_decoding(builder, block, line, path)
    lines = block.count(b"\n") + (not block.endswith(b"\n"))
    if b"\r" not in block:
        try:
            ops = _DECODE_LINES(block)
        except (msgspec.DecodeError, RecursionError):
            ops = None
        if ops is not None and len(ops) == lines:
            typ, process, f, value, time, index, key, node, error = (
                list(map(field, ops)) for field in _FIELDS
            )
            if builder.add_columns(typ, process, f, value, time, index, key, node, error,
                                   range(line, line + lines)):  # fmt: skip
                return line + lines
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as e:
        raise decode_error(path, e) from None
    # The lines as text mode reads them (universal newlines).
    texts = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if texts and texts[-1] == "":
        texts.pop()
    chunk: list[tuple[int, str]] = []
    for n, t in enumerate(texts, line):
        if t and not t.isspace():
            chunk.append((n, t))
            if len(chunk) == CHUNK_LINES:
                _add_chunk(builder, chunk, path)
                chunk = []
    _add_chunk(builder, chunk, path)
    return line + len(texts)


def _add_chunk(builder: HistoryBuilder, chunk: list[tuple[int, str]], path: str) -> None:
    """Add a chunk of lines: all decoded in one pass and added column by column when they
    are plain ops (the usual case), else line by line with full checks and messages."""
    if not chunk:
        return
    try:
        values = _DECODE("[" + ",".join(text for _, text in chunk) + "]")
        if len(values) == len(chunk) and builder.add_plain_ops(values, [n for n, _ in chunk]):
            return
    except (json.JSONDecodeError, RecursionError):
        pass
    decode = _DECODE
    for n, text in chunk:
        try:
            op = decode(text)
        except RecursionError:
            raise too_deep(path, n) from None
        except json.JSONDecodeError as e:
            end = " (the line ends there: truncated?)" if e.pos >= len(text.rstrip()) else ""
            raise HistoryError(
                f"not valid JSON: {e.msg} at column {e.colno}{end}", path=path, line=n
            ) from None
        add_op(builder, op, n, what="a JSON object (one op)")


def _jsonable(value: Any) -> Any:
    """``value`` with anything JSON cannot hold made representable (tuples, odd keys)."""
    if isinstance(value, dict):
        return {
            k
            if isinstance(k, str | int | float | bool) or k is None
            else _ENCODE(_jsonable(k)): _jsonable(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


def op_to_json_line(op: dict[str, Any]) -> str:
    """One op dict as its JSONL line, **ending in a newline**, ready to append and flush.

    Fields are written in the canonical order (index, time, type, process, f, value, key,
    node, error); ``key``, ``node`` and ``error`` are left out when ``None``, and fields
    clew does not know are dropped. The line is compact UTF-8 JSON with no raw newline
    inside, so a reader can split the file on newlines. Values JSON cannot represent
    (tuples, non-string map keys) are converted: tuples to arrays, keys to their JSON text.
    """
    out: dict[str, Any] = {}
    for name in OP_FIELDS:
        v = op.get(name)
        if v is not None or name == "value":
            out[name] = v
    try:
        return _encode_fast(out) + "\n"
    except (TypeError, ValueError):
        return _ENCODE(_jsonable(out)) + "\n"


def write_jsonl(history: History, out: IO[str]) -> None:
    """Write every op of ``history`` to ``out`` as JSONL, one :func:`op_to_json_line` each."""
    for op in history:
        out.write(op_to_json_line(op.to_dict()))
