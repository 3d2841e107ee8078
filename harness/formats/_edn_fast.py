"""The fast ways to read EDN op lines; private to :mod:`harness.formats.edn`.

Two tiers, tried in order before the ``edn_format`` library:

1. **Shapes.** Jepsen prints every op map the same way, ``{:k v, :k v, ...}``, and most
   lines of a file share one or two key orders (lines of at most :data:`SHAPE_MAX_CHARS`:
   longer ones go to the translation). A *shape* is a compiled regex for one key
   order whose values are simple (keywords, numbers, strings without escapes, ``nil``,
   ``true``/``false``, symbols, vectors of those nested up to three deep), with any further
   simple entries captured at the end. A line that matches is decoded from its groups
   through a small cache (``:invoke``, ``[1 4]``, ``"n1"`` repeat endlessly). Shapes are
   learnt from lines the other tiers decoded.
2. **JSON translation** of a whole line (:func:`translate`): strings are split out, the
   brackets padded, the line split on whitespace, each token mapped through a dict to JSON
   text, and the result decoded by :mod:`json`. Collections become marker objects so the
   decoder itself checks bracket matching; an object hook rebuilds maps, sets and lists.

Both tiers refuse (return ``None`` / raise :class:`Unsafe`) rather than guess: characters,
comments, discards, ``##Inf``, ``12N``, ``1.5M``, ratios, escapes other than
``\\" \\\\ \\b \\f \\n \\r \\t`` and ``\\u`` with four hex digits, maps with
collection keys and anything malformed go to the library. The values they produce are
exactly the library's values after normalisation (see :mod:`harness.formats.edn`);
``tests/unit/test_formats.py`` checks it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["SHAPE_MAX_CHARS", "Shapes", "Unsafe", "hashable", "set_list", "translate"]


class Unsafe(Exception):
    """The fast path cannot vouch for this text; use the library."""


def hashable(value: Any) -> Any:
    """A hashable stand-in for a normalised value (lists and maps become tuples)."""
    if isinstance(value, list):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, hashable(v)) for k, v in value.items())
    return value


def set_list(items: Iterable[Any]) -> list[Any]:
    """A normalised EDN set: duplicates dropped (first kept), then sorted if possible.

    Elements that cannot be compared with each other are ordered by type name and
    ``repr``, so the order never depends on hashing.
    """
    seen: dict[Any, Any] = {}
    for v in items:
        seen.setdefault(hashable(v), v)
    out = list(seen.values())
    try:
        out.sort()
    except TypeError:
        out.sort(key=lambda v: (type(v).__name__, repr(v)))
    return out


# --------------------------------------------------------------------------------------
# Tier 2: JSON translation of one line

# Characters accepted outside strings, after the replacements below. Anything else
# (#, ;, \, ^, ', `, ~, @, control or non-ASCII characters) → library.
_UNSAFE_CODE = re.compile(r"[^\t ,0-9A-Za-z\[\]{}():\-+./*!_?$%&=<>\x02\x05]")
# Our own markers; text that already holds them goes to the library.
_MARKERS = re.compile(r"[\x00-\x05\n]")
# A tag (#inst, #uuid, #jepsen.history.Op, ...) followed by a value is dropped: the value
# stands for itself. The lookbehind after '#' checks what precedes the '#'.
_TAG = re.compile(
    r"#(?<![^\s,\[\]{}()\x02]#)[A-Za-z][\w.\-]*(?:/[\w.\-]+)?"
    r"(?=[\s,\[{(\x02])(?=[\s,]*[^\s,\]})])"
)
_SET_OPEN = re.compile(r"#(?<![^\s,\[\]{}()\x02]#)\{")
# Escapes on which JSON and the library agree: \b \f \n \r \t and \u plus 4 hex digits outside the
# surrogates (\\ and \" have been replaced by markers when this runs).
_BAD_ESCAPE = re.compile(r"\\(?![bfnrt]|u(?![dD][89abAB])[0-9A-Fa-f]{4})")
_NAME = r"[A-Za-z0-9_.*+!\-?$%&=<>]+(?:/[A-Za-z0-9_.*+!\-?$%&=<>]+)?"
_SYMBOL_RE = r"[A-Za-z_*!?$%&=<>][A-Za-z0-9_.*+!\-?$%&=<>]*(?:/[A-Za-z0-9_.*+!\-?$%&=<>]+)?"
_KEYWORD = re.compile(":" + _NAME)
_SYMBOL = re.compile(_SYMBOL_RE)
# Padding that makes every bracket and marker a token of its own.
_PAD = (
    ("[", " [ "),
    ("]", " ] "),
    ("{", " { "),
    ("}", " } "),
    ("(", " ( "),
    (")", " ) "),
    ("\x02", " \x02 "),
    ("\x05", " \x05 "),
)
# JSON for the structural tokens. A collection opens a one-key object holding an array
# and closes it with a second key naming the closer, so that ``{:a 1)`` cannot decode as a
# map and the object hook knows what it is rebuilding.
_TOKENS: dict[str, str] = {
    "[": "[",
    "]": "]",
    "{": '{"{":[',
    "\x05": '{"#":[',
    "(": '{"(":[',
    "}": '],"}":0}',
    ")": '],")":0}',
    "\x02": "\x02",
    "nil": "null",
    "true": "true",
    "false": "false",
}
_NUMBER_START = frozenset("0123456789-")
_CACHE_LIMIT = 100_000
# Tokens translated so far (keywords and symbols; bounded).
_token_json: dict[str, str] = dict(_TOKENS)


def _word(token: str) -> str:
    """JSON for a keyword or symbol token; raises :class:`Unsafe` for anything else."""
    if token[0] == ":":
        if _KEYWORD.fullmatch(token) is None:
            raise Unsafe
        out = '"' + token[1:] + '"'
    elif _SYMBOL.fullmatch(token) is not None:
        out = '"' + token + '"'
    else:
        raise Unsafe
    if len(_token_json) < _CACHE_LIMIT:
        _token_json[token] = out
    return out


def _object_hook(pairs: list[tuple[str, Any]]) -> Any:
    if len(pairs) != 2:
        raise Unsafe
    (opener, items), (closer, _) = pairs
    if opener == "{":
        if closer != "}" or len(items) & 1:
            raise Unsafe
        it = iter(items)
        try:
            return dict(zip(it, it, strict=False))
        except TypeError:  # a key that is a collection: the library path handles it
            raise Unsafe from None
    if opener == "(" and closer == ")":
        return items
    if opener == "#" and closer == "}":
        return set_list(items)
    raise Unsafe


def _reject_constant(name: str) -> Any:
    raise Unsafe  # -Infinity, Infinity, NaN are symbols in EDN


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_hook, parse_constant=_reject_constant, strict=False
)


def _string(s: str) -> str:
    """JSON text (without quotes) for the contents of an EDN string (markers in place)."""
    if "\\" in s and _BAD_ESCAPE.search(s) is not None:
        raise Unsafe
    if "\x03" in s or "\x04" in s:
        s = s.replace("\x03", "\\\\").replace("\x04", '\\"')
    return s


def translate(line: str) -> list[Any]:
    """The normalised values on one line of EDN, via JSON; raises :class:`Unsafe`."""
    if _MARKERS.search(line) is not None:
        raise Unsafe
    if "\\" in line:
        line = line.replace("\\\\", "\x03").replace('\\"', "\x04")
    segs = line.split('"')
    if not len(segs) & 1:
        raise Unsafe  # an unterminated string
    if len(segs) > 1:
        code = "\x02".join(segs[0::2])
        strings = segs[1::2]
    else:
        code = line
        strings = []
    if "#" in code:
        code = _SET_OPEN.sub("\x05", _TAG.sub("", code))
    if _UNSAFE_CODE.search(code) is not None:
        raise Unsafe
    for old, new in _PAD:  # str.replace runs at C speed; str.translate would not here
        code = code.replace(old, new)
    get = _token_json.get
    num = _NUMBER_START
    word = _word
    tokens = code.replace(",", " ").split()
    js = ",".join([get(t) or (t if t[0] in num else word(t)) for t in tokens])
    js = ("[" + js + "]").replace("[,", "[").replace(",]", "]")
    if strings:
        parts = js.split("\x02")
        if len(parts) != len(strings) + 1:
            raise Unsafe
        out = [""] * (2 * len(strings) + 1)
        out[0::2] = parts
        out[1::2] = ['"' + _string(s) + '"' for s in strings]
        js = "".join(out)
    try:
        return _DECODER.decode(js)
    except (ValueError, RecursionError):  # too deep: the library path says so
        raise Unsafe from None


# --------------------------------------------------------------------------------------
# Tier 1: shapes

_STRING = r'"[^"\\\n]*"'
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?)?"
_ATOM = f"(?::{_NAME}|{_NUMBER}|{_STRING}|{_SYMBOL_RE})"
# Vectors nest up to three deep. Elements are separated by exactly one space: each element
# is followed by a space or the closing bracket, and no space comes before the bracket.
_VEC1 = rf"\[(?:{_ATOM}(?=[ \]]) ?)*(?<! )\]"
_VEC2 = rf"\[(?:(?:{_ATOM}|{_VEC1})(?=[ \]]) ?)*(?<! )\]"
_VEC3 = rf"\[(?:(?:{_ATOM}|{_VEC2})(?=[ \]]) ?)*(?<! )\]"
#: A simple value, as the shapes accept it. Atomic: a value's extent never depends on what
#: follows it (no token contains a delimiter), and failing lines then fail fast.
SIMPLE = f"(?>{_ATOM}|{_VEC3})"
_REST = rf"((?:, :{_NAME} {SIMPLE})*)"
_REST_ENTRY = re.compile(rf", :({_NAME}) ({SIMPLE})")
_VECTOR_TOKEN = re.compile(r'"[^"]*"|[\[\]]|[^\s\[\]"]+')
_PLAIN_KEY = re.compile(_NAME)
_CONSTANTS = {"nil": None, "true": True, "false": False}
#: Longest line a shape is matched against (or learnt from). Matching a long vector costs
#: the regex engine about 700 bytes an element plus about 100 more for each key before
#: the value (1.3 KB an element for Jepsen's key order: 250 MB for a line of 200,000
#: ints), which no bound of the text alone covers; and the JSON translation of such a
#: line is faster (0.17 ms against 0.58 ms at 3 KB). Longer lines go to the translation.
SHAPE_MAX_CHARS = 4096

#: Fields a shape decodes; the others are matched (so checked) but not decoded.
WANTED = ("index", "time", "type", "process", "f", "value", "key", "node", "error")


def _atom(text: str) -> Any:
    c = text[0]
    if c == ":":
        return text[1:]
    if c == '"':
        return text[1:-1]
    if c in _NUMBER_START:
        return float(text) if "." in text else int(text)
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    return text  # a symbol


def simple_value(text: str) -> Any:
    """Decode text that matched :data:`SIMPLE` (no caching)."""
    if text[0] != "[":
        return _atom(text)
    stack: list[list[Any]] = []
    cur: list[Any] = []
    for tok in _VECTOR_TOKEN.findall(text):
        if tok == "[":
            stack.append(cur)
            cur = []
        elif tok == "]":
            done = cur
            cur = stack.pop()
            cur.append(done)
        else:
            cur.append(_atom(tok))
    return cur[0]


class ValueCache(dict[str, Any]):
    """Decoded simple values by their text; a miss decodes (and keeps, up to a bound).

    ``""`` decodes to ``None``: it is the text of an empty rest group, which shapes use for
    the fields they lack.
    """

    def __init__(self) -> None:
        super().__init__({"": None})

    def __missing__(self, text: str) -> Any:
        v = simple_value(text)
        if len(self) < _CACHE_LIMIT:
            self[text] = v
        return v


class Shape:
    """One key order: its compiled regex and where each wanted field is among the groups.

    ``index_at``, ``time_at``, ... are group indices; a field the shape lacks points at the
    rest group, whose text is ``""`` (→ ``None``) whenever the fast decoding is used.
    """

    __slots__ = (
        "error_at",
        "f_at",
        "fullmatch",
        "has_index",
        "has_time",
        "index_at",
        "key_at",
        "keys",
        "node_at",
        "positions",
        "process_at",
        "rest",
        "time_at",
        "type_at",
        "value_at",
    )

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        body = ", ".join(f":{re.escape(k)} ({SIMPLE})" for k in keys)
        pattern = rf"[ \t]*(?:#[A-Za-z][\w.\-]*)?\{{{body}{_REST}\}}[ \t]*"
        self.fullmatch = re.compile(pattern).fullmatch
        # (field name, group index) for each wanted field, in WANTED order.
        self.positions = tuple((k, keys.index(k)) for k in WANTED if k in keys)
        self.rest = rest = len(keys)
        at = dict(self.positions)
        self.index_at = at.get("index", rest)
        self.time_at = at.get("time", rest)
        self.type_at = at.get("type", rest)
        self.process_at = at.get("process", rest)
        self.f_at = at.get("f", rest)
        self.value_at = at.get("value", rest)
        self.key_at = at.get("key", rest)
        self.node_at = at.get("node", rest)
        self.error_at = at.get("error", rest)
        self.has_index = "index" in at
        self.has_time = "time" in at


class Shapes:
    """The shapes learnt so far for one file, longest first, and a value cache."""

    MAX_SHAPES = 16
    MAX_ATTEMPTS = 64

    def __init__(self) -> None:
        self.shapes: list[Shape] = []
        self.known: set[tuple[str, ...]] = set()
        self.attempts = 0
        self.cache = ValueCache()

    def learn(self, line: str, op: Any) -> bool:
        """Add the shape of ``op`` (decoded from ``line``) if it matches ``line``.

        Returns True if a shape was added.
        """
        if (
            type(op) is not dict
            or len(self.shapes) >= self.MAX_SHAPES
            or self.attempts >= self.MAX_ATTEMPTS
            or not op
            or len(line) > SHAPE_MAX_CHARS
        ):
            return False
        keys = tuple(op)
        if keys in self.known or not all(type(k) is str and _PLAIN_KEY.fullmatch(k) for k in keys):
            return False
        self.attempts += 1
        self.known.add(keys)
        shape = Shape(keys)
        if shape.fullmatch(line) is None:
            return False  # its values are not simple; other lines may be, but do not bet
        self.shapes.append(shape)
        self.shapes.sort(key=lambda s: -len(s.keys))
        return True

    def decode(self, shape: Shape, groups: tuple[str, ...]) -> dict[str, Any]:
        """The wanted fields of a line that ``shape`` matched, as an op dict."""
        cache = self.cache
        op: dict[str, Any] = {}
        for name, i in shape.positions:
            text = groups[i]
            if name == "index" or name == "time":
                try:
                    op[name] = int(text)
                    continue
                except ValueError:
                    pass
            op[name] = cache[text]
        rest = groups[shape.rest]
        if rest:
            for name, text in _REST_ENTRY.findall(rest):
                if name in WANTED:  # also when it repeats a key: the last one counts
                    op[name] = cache[text]
        return op
