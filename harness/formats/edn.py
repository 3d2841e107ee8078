"""Jepsen's ``history.edn``: one printed op map per line, read fast.

Accepted files:

* one op map per line, as Jepsen writes them::

      {:index 0, :time 3291485317, :type :invoke, :process 0, :f :write, :value 3}

* the same with record tags, ``#jepsen.history.Op{:index 0, ...}``;
* one big vector of op maps, ``[{...}\\n {...}\\n ...]`` (the ``[`` and ``]`` may share
  lines with ops).

Each op map must sit on one line (several on a line are fine). Blank lines are skipped.

**Normalisation.** EDN values become plain Python/JSON values, the same on every path:
keywords and symbols → their name as ``str`` (``:invoke`` → ``"invoke"``, ``:a/b`` →
``"a/b"``); vectors and lists → ``list``; sets → ``list`` without duplicates, sorted when
the elements are comparable (otherwise by type name and ``repr``); maps → ``dict`` (keys
normalised the same way; a key that is a collection becomes a ``tuple``); ``nil`` →
``None``; characters → ``str``; a tagged value (``#inst "..."``, ``#uuid "..."``, records)
→ the value after the tag; ``12N`` → ``int``; ``1.5M`` and ratios ``1/3`` → ``float``;
metadata is dropped.

**Speed.** The maintained ``edn_format`` library is the reference for correctness but
parses only about a thousand lines a second here, so it is the last resort. Lines go
through the tiers of :mod:`harness.formats._edn_fast` first: whole-line regexes for the
key orders seen in the file (most lines), then a translation of the line to JSON. Each
tier hands over whatever it cannot vouch for, so all paths give the same values; the tests
check that they do.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

from harness.errors import HistoryError
from harness.formats._edn_fast import (
    SHAPE_MAX_CHARS,
    Shape,
    Shapes,
    Unsafe,
    hashable,
    set_list,
    translate,
)
from harness.formats._io import add_op, decode_error, no_ops_error, open_text, too_deep
from harness.history import History, HistoryBuilder
from harness.read_budget import ReadBudget, ReadBudgetExceeded

__all__ = [
    "edn_memory_bound",
    "format_op",
    "format_value",
    "parse_line",
    "parse_line_fast",
    "parse_line_slow",
    "read_edn",
]

#: Characters read from the file at a time.
BLOCK_CHARS = 1 << 20


def edn_memory_bound(text: str) -> int:
    """An upper bound, in bytes, of the memory that reading the EDN ``text`` (an op, on
    one line or over several) takes on any path of :func:`read_edn` (the JSON
    translation, ``edn_format``, the builder; measured on CPython 3.11 over the whole
    read of a file, for vectors of distinct ints of every size, floats, strings,
    keywords, symbols, characters, vectors, lists, maps and sets, with and without
    separators between them, at most half the bound): 64 bytes a character
    (``edn_format``'s tokens), and what each collection, item, string and escape can
    cost. The shapes' regexes, whose cost no bound of the text covers (about 1.3 KB an
    element of a vector), only see lines of at most
    :data:`~harness.formats._edn_fast.SHAPE_MAX_CHARS`, far below any line checked."""
    c = text.count
    return (64 * len(text) + 400 * c("{") + 150 * (c("[") + c("("))
            + 200 * (c(" ") + c(",") + c("\t") + c("\n")) + 120 * c('"')
            + 150 * c("\\"))  # fmt: skip


#: The most :func:`edn_memory_bound` counts for one character (a ``{``).
EDN_MOST_PER_CHAR = 464


# --------------------------------------------------------------------------------------
# The library path


def normalise(x: Any) -> Any:
    """Turn a value from ``edn_format`` into the plain value clew uses (see module doc)."""
    import edn_format

    t = type(x)
    if t is str or t is int or t is float or t is bool or x is None:
        return x
    if isinstance(x, edn_format.Keyword | edn_format.Symbol):
        return str(x.name)
    if isinstance(x, str):  # Char
        return str(x)
    if isinstance(x, edn_format.ImmutableDict | dict):
        return {hashable(normalise(k)): normalise(v) for k, v in x.items()}
    if isinstance(x, frozenset | set):
        return set_list(normalise(v) for v in x)
    if isinstance(x, edn_format.ImmutableList | list | tuple):
        return [normalise(v) for v in x]
    if isinstance(x, edn_format.MetadataValue):
        return normalise(x.value)
    if isinstance(x, bool):
        return bool(x)
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float | Decimal | Fraction):
        return float(x)
    return str(x)


_LIB_LOCK = threading.Lock()
_lib_parse: Callable[..., list[Any]] | None = None
# Strings and character literals, kept intact while tags are dropped around them.
_ATOMS = re.compile(r'("(?:[^"\\]|\\.)*"|\\(?:newline|return|space|tab|u[0-9A-Fa-f]{4}|.))')
_LIB_TAG = re.compile(
    r"#(?<![^\s,\[\]{}()]#)[A-Za-z][\w.*+!\-_?$%&=:#<>@]*(?:/[\w.*+!\-_?$%&=:#<>@]+)?"
)
_ILLEGAL = re.compile(r"Illegal character '(.*)' with lexpos (\d+)", re.S)


class _TokenBudget:
    """Looks at a read budget every :data:`TOKENS_PER_CHECK` tokens of a whole-document
    parse (which would otherwise run to its end, at about 100 KB/s)."""

    def __init__(self, budget: ReadBudget | None, path: str, text: str) -> None:
        self.budget, self.path, self.text = budget, path, text

    def wrap(self, lexer: Any) -> Any:
        """``lexer`` with its ``token`` method checking the budget as it goes."""
        budget = self.budget
        if budget is None:
            return lexer
        token = lexer.token
        text = self.text
        count = [0]
        seen = [0, 1]  # the position up to which lines are counted, and the line there

        def checked_token() -> Any:
            count[0] += 1
            if not count[0] % TOKENS_PER_CHECK:
                pos = getattr(lexer, "lexpos", 0)
                if pos > seen[0]:  # count only the new text: each check costs its stretch
                    seen[1] += text.count("\n", seen[0], pos)
                    seen[0] = pos
                budget.check(self.path, seen[1])
            return token()

        lexer.token = checked_token
        return lexer


#: Tokens of a whole-document parse between two looks at the read budget: about 250
#: lines, 15 ms on a quiet machine (4,096 took 0.13 s there, over 1 s on a loaded one).
TOKENS_PER_CHECK = 512


def _library() -> Callable[..., list[Any]]:
    """``edn_format``'s parser, built once (``edn_format.loads_all`` rebuilds it per call).
    It takes the text and, optionally, a :class:`_TokenBudget`."""
    global _lib_parse
    if _lib_parse is None:
        import edn_format

        try:
            import ply.lex
            import ply.yacc
            from edn_format import edn_lex, edn_parse

            parser = ply.yacc.yacc(
                module=edn_parse, debug=False, write_tables=False, errorlog=ply.yacc.NullLogger()
            )
            lexer = ply.lex.lex(module=edn_lex, reflags=re.UNICODE, errorlog=ply.lex.NullLogger())

            def parse(text: str, hook: _TokenBudget | None = None) -> list[Any]:
                lex = lexer.clone()
                return list(parser.parse(text, lexer=lex if hook is None else hook.wrap(lex)))

            if parse("[:probe 1]") != edn_format.loads_all("[:probe 1]"):
                raise RuntimeError("edn_format changed")
            _lib_parse = parse
        except Exception:  # an edn_format laid out differently: use its public API

            def public(text: str, hook: _TokenBudget | None = None) -> list[Any]:
                return list(edn_format.loads_all(text))

            _lib_parse = public
    return _lib_parse


def _strip_tags(text: str) -> str:
    """``text`` with every tag (``#inst``, ``#my.Record``) removed outside strings."""
    if "#" not in text:
        return text
    parts = _ATOMS.split(text)
    parts[0::2] = [_LIB_TAG.sub(" ", p) for p in parts[0::2]]
    return "".join(parts)


def _library_error(exc: Exception) -> str:
    """A human description of an ``edn_format`` parse error."""
    arg = exc.args[0] if exc.args else None
    lexpos = getattr(arg, "lexpos", None)
    if lexpos is not None:
        return f"unexpected {getattr(arg, 'value', '?')!r} at column {lexpos + 1}"
    msg = str(arg) if arg is not None else type(exc).__name__
    if msg == "EOF Reached":
        return "the line ends inside an unfinished value (truncated?)"
    m = _ILLEGAL.match(msg)
    if m:
        char, pos = m.group(1), int(m.group(2)) + 1
        if char == '"':
            return f"the string starting at column {pos} is not closed (truncated?)"
        return f"unexpected character {char!r} at column {pos}"
    return msg


class EdnSyntaxError(HistoryError):
    """Text that is not EDN (as opposed to EDN that is not a valid op)."""


def parse_line_slow(line: str, *, path: str | None = None, lineno: int | None = None) -> list[Any]:
    """The values on one line of EDN, parsed by ``edn_format`` and normalised.

    This is the reference the fast paths must agree with. Raises :class:`HistoryError`
    (naming ``path`` and ``lineno``) if the line is not valid EDN.
    """
    parse = _library()
    text = _strip_tags(line)
    try:
        with _LIB_LOCK:
            values = parse(text)
    except RecursionError:
        raise too_deep(path or "<history>", lineno) from None
    except Exception as e:
        raise EdnSyntaxError(
            f"malformed EDN: {_library_error(e)}", path=path, line=lineno
        ) from None
    try:
        return [normalise(v) for v in values]
    except RecursionError:
        raise too_deep(path or "<history>", lineno) from None


def parse_line_fast(line: str) -> list[Any] | None:
    """The values on one line of EDN via the JSON translation, or ``None`` if unsure.

    Whenever it returns a list, the list equals :func:`parse_line_slow` of the line.
    """
    try:
        return translate(line)
    except Unsafe:
        return None


def parse_line(line: str, *, path: str | None = None, lineno: int | None = None) -> list[Any]:
    """The normalised values on one line of EDN: the fast path, else the library.

    Raises :class:`HistoryError` naming ``path`` and ``lineno`` for malformed EDN.
    """
    values = parse_line_fast(line)
    if values is None:
        values = parse_line_slow(line, path=path, lineno=lineno)
    return values


# --------------------------------------------------------------------------------------
# Files


def _blocks(path: str, budget: ReadBudget | None = None) -> Iterator[tuple[int, list[str]]]:
    """``(first_line_number, lines)`` for successive blocks of the file, newlines removed.
    A line longer than a block is gathered in pieces and joined once (joining as it grew
    was quadratic); while it is gathered, ``budget`` is looked at, so a line whose
    joining and decoding (:func:`edn_memory_bound`) would not fit is refused, naming it,
    before it is whole."""
    budgeted = budget is not None and budget.max_memory is not None
    with open_text(path) as f:
        try:
            start = 1
            pieces: list[str] = []  # the start of a line whose end is not read yet
            gathered = bound = 0  # its characters, and edn_memory_bound of them
            while True:
                data = f.read(BLOCK_CHARS)
                if not data:
                    if pieces:
                        yield start, ["".join(pieces)]
                    return
                cut = data.rfind("\n")
                if cut < 0:
                    pieces.append(data)
                    if budgeted:
                        gathered += len(data)
                        bound += edn_memory_bound(data)
                        budget.check_room(path, start, 4 * gathered + bound,  # type: ignore[union-attr]
                                          what="joining and decoding a line this long")  # fmt: skip
                    continue
                pieces.append(data[:cut])
                lines = "".join(pieces).split("\n")
                yield start, lines
                start += len(lines)
                pieces = [data[cut + 1 :]] if cut + 1 < len(data) else []
                gathered = len(pieces[0]) if pieces else 0
                bound = edn_memory_bound(pieces[0]) if budgeted and pieces else 0
        except UnicodeDecodeError as e:
            raise decode_error(path, e) from None


def _unwrap_vector(
    path: str, blocks: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[int, list[str]]]:
    """Pass the blocks through, blanking the ``[``/``(`` and ``]``/``)`` of a file that is
    one big vector or list."""
    closer: str | None = None  # "" until the first value is seen: not one collection
    seen = False
    last: tuple[int, list[str]] | None = None
    for block in blocks:
        if not seen:
            opened = _open_vector(block[1])
            if opened is not None:
                seen, closer = True, opened
        if last is not None:
            yield last
        last = block
    if last is not None:
        if closer:
            _close_vector(last[1], path, last[0], closer)
        yield last


_CLOSERS = {"[": "]", "(": ")"}


def _open_vector(lines: list[str]) -> str | None:
    """Blank out a leading ``[`` or ``(`` and return its closer (``""`` when the first
    value is not a collection); ``None`` if ``lines`` hold only blanks and comments."""
    for i, s in enumerate(lines):
        stripped = s.lstrip()
        if not stripped or stripped[0] == ";":
            continue
        closer = _CLOSERS.get(stripped[0])
        if closer is None:
            return ""
        k = len(s) - len(stripped)
        lines[i] = s[:k] + " " + s[k + 1 :]
        return closer
    return None


def _close_vector(lines: list[str], path: str, start: int, closer: str) -> None:
    """Blank out the closing ``]``/``)`` of a one-big-collection file, which must end it
    (blank and comment lines may follow)."""
    for i in range(len(lines) - 1, -1, -1):
        s = lines[i].rstrip()
        if not s or s.lstrip()[0] == ";":
            continue
        if s[-1] != closer:
            raise EdnSyntaxError(
                f"the file starts a {'vector' if closer == ']' else 'list'} with "
                f"{'[' if closer == ']' else '('!r} but does not end with {closer!r}; "
                "truncated file?",
                path=path,
                line=start + i,
            )
        lines[i] = s[:-1]
        return


def _depth(text: str) -> int:
    """How many collections ``text`` leaves open (negative: closes more than it opens),
    outside strings, character literals and comments."""
    depth = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "\\":
            i += 1
        elif c == ";":
            j = text.find("\n", i)
            if j < 0:
                return depth
            i = j
        elif c in "[{(":
            depth += 1
        elif c in "]})":
            depth -= 1
        i += 1
    return depth


#: Most lines one value may span before the reader stops joining and reports the first.
MAX_VALUE_LINES = 10_000
#: Largest file read as one document by ``edn_format`` when the line reader cannot read
#: it (that parser reads about 100 KB/s here).
WHOLE_DOCUMENT_MAX_BYTES = 16 << 20


def read_edn(path: str, *, keep_time: bool = True, budget: ReadBudget | None = None) -> History:
    """Read a Jepsen ``history.edn`` (see the module doc) into a :class:`History`.

    Ops keep their ``:index`` and ``:time`` when present (with ``keep_time=False`` the
    time is the position instead); ``:key`` sets the op's key; fields other than the op
    fields are ignored. Raises :class:`HistoryError` naming the file and line for a
    malformed line or op, a pairing error, and a file with no ops;
    :class:`~harness.read_budget.ReadBudgetExceeded` when ``budget`` runs out (the
    whole-document parse looks at it every few thousand tokens).
    """
    try:
        return _read_lines(path, keep_time, budget)
    except EdnSyntaxError as e:
        if (
            e.reason.startswith("a value is nested")
            or os.path.getsize(path) > WHOLE_DOCUMENT_MAX_BYTES
        ):
            raise
        line_error = e
    return _read_document(path, keep_time, line_error, budget)


#: Values decoded by the line reader's general path (multi-line maps, unusual shapes)
#: between two looks at the read budget: the builder's own look every 1,024 ops is 65 ms
#: apart on that path on a quiet machine, over a second on a loaded one.
SLOW_OPS_PER_CHECK = 64


def _read_lines(path: str, keep_time: bool, budget: ReadBudget | None) -> History:
    """The fast reader: op maps on lines (a map may span lines; see the module doc)."""
    builder = HistoryBuilder(path=path, budget=budget)
    shapes = Shapes()
    add_line = _LineAdder(builder, shapes, keep_time)
    pending: list[str] = []  # the lines of a value that spans several
    pending_at = 0
    slow = 0  # values decoded by the general path (about 60 us each)
    badd = builder.add_row
    cache = shapes.cache
    # The longest shape is decoded inline below (the others go through add_line): its
    # matcher and the group index of each field.
    primary: Shape | None = None
    match: Callable[[str], re.Match[str] | None] = _no_match
    type_at = process_at = f_at = value_at = key_at = node_at = error_at = rest_at = 0
    index_at = time_at = 0
    has_index = has_time = False
    small = 1 << 62 if budget is None else budget.small_text(EDN_MOST_PER_CHAR)
    for start, lines in _unwrap_vector(path, _blocks(path, budget)):
        lineno = start - 1
        for line in lines:
            lineno += 1
            if len(line) > small:
                _check_decoding(builder, line, lineno)
            if pending:
                pending.append(line)
                if len(pending) <= MAX_VALUE_LINES and _depth("\n".join(pending)) > 0:
                    continue
                joined = _join(pending)
                pending = []
                if len(joined) > small:
                    _check_decoding(builder, joined, pending_at)
                add_line(joined, pending_at)
                slow += 1
                if not slow % SLOW_OPS_PER_CHECK:
                    builder.check_budget(lineno)
                continue
            m = match(line) if len(line) <= SHAPE_MAX_CHARS else None
            if m is None:
                slow += 1
                if not slow % SLOW_OPS_PER_CHECK:
                    builder.check_budget(lineno)
                try:
                    learnt = add_line(line, lineno)
                except EdnSyntaxError:
                    if _depth(line) <= 0:
                        raise
                    pending, pending_at = [line], lineno
                    continue
                if learnt and primary is not shapes.shapes[0]:
                    primary = shapes.shapes[0]
                    match = primary.fullmatch
                    type_at, process_at, f_at = primary.type_at, primary.process_at, primary.f_at
                    value_at, key_at, node_at = primary.value_at, primary.key_at, primary.node_at
                    error_at, rest_at = primary.error_at, primary.rest
                    index_at, has_index = primary.index_at, primary.has_index
                    time_at, has_time = primary.time_at, primary.has_time and keep_time
                continue
            gr = m.groups()
            try:
                if gr[rest_at]:
                    raise ValueError  # more entries after the shape's keys
                index = int(gr[index_at]) if has_index else None
                t = int(gr[time_at]) if has_time else None
            except ValueError:
                add_op(builder, shapes.decode(primary, gr), lineno, time=keep_time)  # type: ignore[arg-type]
                continue
            typ, process, f, node = (
                cache[gr[type_at]],
                cache[gr[process_at]],
                cache[gr[f_at]],
                cache[gr[node_at]],
            )
            if (
                type(typ) is str
                and (type(process) is int or type(process) is str)
                and type(f) is str
                and (node is None or type(node) is str)
            ):
                value, key, error = cache[gr[value_at]], cache[gr[key_at]], cache[gr[error_at]]
                badd(typ, process, f, value, t, index, key, node, error, lineno)
            else:  # something is missing or odd: the general path says what
                add_op(builder, shapes.decode(primary, gr), lineno, time=keep_time)  # type: ignore[arg-type]
    if pending:
        add_line(_join(pending), pending_at)  # unfinished: says where it began
    if not len(builder):
        raise no_ops_error(path)
    return builder.build()


def _check_decoding(builder: HistoryBuilder, text: str, lineno: int) -> None:
    """Raise :class:`~harness.read_budget.ReadBudgetExceeded`, before ``text`` (the value
    on line ``lineno``) is decoded, if decoding it may take more memory than the
    builder's budget has left."""
    builder.budget.check_decoding(  # type: ignore[union-attr]
        builder.path, lineno, text, builder.held_bytes(), bound=edn_memory_bound,
        most_per_char=EDN_MOST_PER_CHAR, what="decoding the line",
    )  # fmt: skip


def _join(lines: list[str]) -> str:
    """The lines of one value as one line; kept as lines (for the library path) when a
    comment could swallow the rest or a string could span them."""
    if any(";" in x or '"' in x for x in lines):
        return "\n".join(lines)
    return " ".join(lines)


def _read_document(
    path: str, keep_time: bool, line_error: HistoryError, budget: ReadBudget | None
) -> History:
    """Read the file as one EDN document with ``edn_format``: a collection of op maps, or
    op maps one after another. Used when the line reader cannot read the file."""
    with open_text(path) as f:
        try:
            text = f.read()
        except UnicodeDecodeError as e:
            raise decode_error(path, e) from None
    parse = _library()
    try:
        with _LIB_LOCK:
            values = parse(_strip_tags(text), _TokenBudget(budget, path, text))
    except ReadBudgetExceeded:
        raise
    except RecursionError:
        raise too_deep(path, None) from None
    except Exception:
        raise line_error from None
    try:
        values = [normalise(v) for v in values]
    except RecursionError:
        raise too_deep(path, None) from None
    nested = len(values) == 1 and type(values[0]) is list
    ops = values[0] if nested else values
    starts = _element_lines(text, 1 if nested else 0)
    if len(starts) != len(ops):
        starts = [1] * len(ops)
    builder = HistoryBuilder(path=path, budget=budget)
    for op, lineno in zip(ops, starts, strict=True):
        add_op(builder, op, lineno, time=keep_time)
    if not len(builder):
        raise no_ops_error(path)
    return builder.build()


def _element_lines(text: str, depth: int) -> list[int]:
    """The line on which each value at nesting ``depth`` of ``text`` starts."""
    out: list[int] = []
    d, line, i, n = 0, 1, 0, len(text)
    tagged = in_atom = False
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        if c in " \t\r\n,":
            in_atom = False
        elif c == ";":
            in_atom = False
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif c == '"':
            if d == depth and not in_atom and not tagged:
                out.append(line)
            tagged = in_atom = False
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\n":
                    line += 1
                i += 2 if text[i] == "\\" else 1
        elif c in "[{(" or (c == "#" and text[i + 1 : i + 2] == "{"):
            if d == depth and not tagged and not in_atom:
                out.append(line)
            tagged = in_atom = False
            d += 1
            i += 2 if c == "#" else 1
            continue
        elif c in "]})":
            d -= 1
            in_atom = False
        elif not in_atom:
            in_atom = True
            if c == "#" and text[i + 1 : i + 2].isalpha():
                if d == depth:
                    out.append(line)
                tagged = True  # the value after a tag is the same element
            elif d == depth and not tagged:
                out.append(line)
            else:
                tagged = False
        i += 1
    return out


def _no_match(line: str) -> None:
    return None


class _LineAdder:
    """Adds the ops of a line no primary shape matched: other shapes, then the parsers."""

    def __init__(self, builder: HistoryBuilder, shapes: Shapes, keep_time: bool) -> None:
        self.builder = builder
        self.shapes = shapes
        self.keep_time = keep_time

    def __call__(self, line: str, lineno: int) -> bool:
        """Add the line's ops; True if a new shape was learnt from it."""
        builder, shapes = self.builder, self.shapes
        for shape in shapes.shapes[1:] if len(line) <= SHAPE_MAX_CHARS else ():
            m = shape.fullmatch(line)
            if m is not None:
                add_op(builder, shapes.decode(shape, m.groups()), lineno, time=self.keep_time)
                return False
        if not line or line.isspace():
            return False
        values = parse_line(line, path=builder.path, lineno=lineno)
        for op in values:
            add_op(builder, op, lineno, time=self.keep_time)
        return len(values) == 1 and shapes.learn(line, values[0])


# --------------------------------------------------------------------------------------
# Writing

_EDN_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')
_PLAIN_NAME = re.compile(
    r"[A-Za-z*!_?$%&=<>][A-Za-z0-9*+!\-_?$%&=<>.]*(?:/[A-Za-z0-9*+!\-_?$%&=<>.]+)?"
)
_RESERVED = frozenset({"nil", "true", "false"})


def _edn_string(s: str) -> str:
    if _NEEDS_ESCAPE.search(s) is None:
        return '"' + s + '"'

    def esc(m: re.Match[str]) -> str:
        c = m.group(0)
        return _EDN_ESCAPES.get(c) or f"\\u{ord(c):04x}"

    return '"' + _NEEDS_ESCAPE.sub(esc, s) + '"'


def format_value(value: Any, *, names_as_keywords: bool = False) -> str:
    """``value`` (a normalised value) printed as EDN that this module reads back unchanged.

    Strings print as EDN strings, except that with ``names_as_keywords`` a string that is a
    plain name prints as a keyword (``"invoke"`` → ``:invoke``); map keys that are plain
    names always print as keywords. Tuples print as vectors; infinities and NaN as
    ``##Inf``, ``##-Inf``, ``##NaN``.
    """
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        if names_as_keywords and value not in _RESERVED and _PLAIN_NAME.fullmatch(value):
            return ":" + value
        return _edn_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "##NaN"
        if value in (float("inf"), float("-inf")):
            return "##Inf" if value > 0 else "##-Inf"
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{format_value(k, names_as_keywords=True)} {format_value(v)}"
                for k, v in value.items()
            )
            + "}"
        )
    return _edn_string(str(value))


def format_op(op: dict[str, Any]) -> str:
    """One op dict as a Jepsen-style EDN line (no newline).

    ``type``, ``f`` and a named process print as keywords (``:invoke``, ``:nemesis``), as
    Jepsen writes them; every other string prints as a string.
    """
    parts = []
    for name, v in op.items():
        as_keyword = name in ("type", "f") or (name == "process" and isinstance(v, str))
        parts.append(f":{name} {format_value(v, names_as_keywords=as_keyword)}")
    return "{" + ", ".join(parts) + "}"
