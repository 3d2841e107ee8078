"""The generator protocol: :func:`op` and :func:`update`, and how plain values behave.

A generator is a *value*. Asking it for an op never changes it; it answers with the op and
the generator to ask next time::

    op(gen, ctx)            -> (invocation, next_gen)   an op to run now or at op["time"]
                             | (PENDING, next_gen)      nothing yet; ask again later
                             | None                     exhausted (and stays exhausted)
    update(gen, ctx, event) -> gen'                     told about each invocation and
                                                        completion the interpreter records

Because asking does not consume anything, an interpreter may ask, decide it is too early
(the op's ``time`` is in the future), and ask the *same* generator again later.

Plain values are generators:

* ``None`` – exhausted;
* a ``dict`` – one op, then exhausted. It is filled in: ``type`` (``"invoke"``),
  ``process`` (a free process picked at random from the context; pending while none is
  free) and ``time`` (now). A dict that no thread of its context could ever run (the
  context shows no threads) is dropped, i.e. exhausted;
* a list, tuple or other iterable (not a string) – each element as a generator, in order;
  one-shot iterators are remembered as they are consumed, so they behave as values too;
* a callable – called (with the :class:`GenContext` if it takes an argument, else with
  none) to get a generator; when that is exhausted the callable is called again. It ends
  when it returns ``None`` or a generator that is exhausted at once.

Anything else that takes part is a :class:`Gen` (every combinator is one).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

from harness.generator.context import GenContext

__all__ = [
    "PENDING",
    "Gen",
    "GeneratorError",
    "Op",
    "OpResult",
    "Pending",
    "op",
    "soonest",
    "update",
]

#: An operation (invocation or completion) as a plain dict.
Op = dict[str, Any]


class Pending:
    """The type of :data:`PENDING`."""

    _instance: Pending | None = None

    def __new__(cls) -> Pending:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "PENDING"


#: "Nothing to do yet; ask again after something changes" (a completion, or time passing).
PENDING: Final = Pending()

#: What :func:`op` returns.
OpResult = tuple[Op | Pending, Any] | None


class GeneratorError(TypeError):
    """A value was used as a generator but is not one (the message says what it was)."""


class Gen:
    """Base class of generator objects. Subclasses are immutable values: ``op`` and
    ``update`` return new objects (or ``self`` when nothing changed)."""

    __slots__ = ()

    #: Whether :meth:`update` may do anything. Combinators set it from their children so
    #: that events skip whole subtrees that ignore them (most of a typical workload).
    #: Subclasses that override :meth:`update` must leave it true.
    listens: bool = True

    def op(self, ctx: GenContext) -> OpResult:
        """The next op and the generator after it, ``(PENDING, gen)``, or ``None``."""
        raise NotImplementedError

    def update(self, ctx: GenContext, event: Op) -> Any:
        """This generator after hearing of ``event``; by default unchanged."""
        return self


# -- dispatch --------------------------------------------------------------------------------


def op(gen: Any, ctx: GenContext) -> OpResult:
    """Ask ``gen`` for its next op in ``ctx`` (see the module docstring)."""
    if isinstance(gen, Gen):
        return gen.op(ctx)
    if gen is None:
        return None
    if type(gen) is dict:
        return _dict_op(gen, ctx)
    if isinstance(gen, list | tuple):
        return Seq(gen, 0, _UNSET).op(ctx) if gen else None
    if callable(gen):
        return _fn_op(gen, ctx)
    if isinstance(gen, dict):
        return _dict_op(gen, ctx)
    if isinstance(gen, str | bytes):
        raise GeneratorError(f"a string is not a generator: {gen!r}")
    try:
        it = iter(gen)
    except TypeError:
        raise GeneratorError(
            f"{type(gen).__name__} is not a generator: expected None, a dict (one op), "
            "an iterable, a callable or a harness.generator.Gen"
        ) from None
    return Seq(_Memo(it), 0, _UNSET).op(ctx)


def update(gen: Any, ctx: GenContext, event: Op) -> Any:
    """``gen`` after hearing of ``event`` (an invocation or completion just recorded).
    Plain values ignore events."""
    if isinstance(gen, Gen) and gen.listens:
        return gen.update(ctx, event)
    return gen


def soonest(a: OpResult, b: OpResult) -> OpResult:
    """Of two answers, the one to act on first: an op beats PENDING beats exhausted, and
    of two ops the earlier (``a`` on a tie)."""
    if a is None:
        return b
    if b is None:
        return a
    oa, ob = a[0], b[0]
    if ob is PENDING:
        return a
    if oa is PENDING:
        return b
    return b if ob["time"] < oa["time"] else a  # type: ignore[index]


# -- plain values ----------------------------------------------------------------------------


def _dict_op(d: dict[str, Any], ctx: GenContext) -> OpResult:
    if not ctx.threads:
        return None
    p = d.get("process")
    if p is None:
        p = ctx.some_free_process()
        if p is None:
            return (PENDING, d)
    elif not ctx.is_free(ctx.thread_of(p)):
        return (PENDING, d)
    o = d.copy()
    o["process"] = p
    if "type" not in o:
        o["type"] = "invoke"
    if "time" not in o:
        o["time"] = ctx.time
    return (o, None)


_takes_ctx_cache: dict[Any, bool] = {}
_fn_cache: dict[Any, bool] = {}
#: Callables remembered by :func:`_takes_ctx` before its fast cache is reset.
FN_CACHE_SIZE: Final = 4096


def _takes_ctx(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` can be called with one positional argument (the context)."""
    try:
        return _fn_cache[fn]
    except (KeyError, TypeError):
        pass
    takes = _inspect_takes_ctx(fn)
    if len(_fn_cache) >= FN_CACHE_SIZE:
        _fn_cache.clear()
    with contextlib.suppress(TypeError):  # unhashable callables are inspected every time
        _fn_cache[fn] = takes
    return takes


def _inspect_takes_ctx(fn: Callable[..., Any]) -> bool:
    target = getattr(fn, "__func__", fn)
    code = getattr(target, "__code__", None)
    if code is None and not inspect.isfunction(fn):
        code = getattr(getattr(type(fn), "__call__", None), "__code__", None)  # noqa: B004
    if code is not None:
        cached = _takes_ctx_cache.get((code, inspect.ismethod(fn)))
        if cached is not None:
            return cached
    try:
        inspect.signature(fn).bind(None)
        takes = True
    except TypeError:
        takes = False
    except ValueError:  # no signature (some builtins): assume the documented form
        takes = True
    if code is not None:
        _takes_ctx_cache[(code, inspect.ismethod(fn))] = takes
    return takes


def _fn_op(fn: Callable[..., Any], ctx: GenContext) -> OpResult:
    try:
        takes = _fn_cache[fn]
    except (KeyError, TypeError):
        takes = _takes_ctx(fn)
    x = fn(ctx) if takes else fn()
    if x.__class__ is dict:  # the usual case: a fresh op
        r = _dict_op(x, ctx)
    elif x is None:
        return None
    else:
        r = op(x, ctx)
    if r is None:
        return None
    o, x2 = r
    if o is PENDING:
        return (PENDING, Seq((x, fn), 0, _UNSET))
    return (o, fn if x2 is None else Seq((x2, fn), 0, _UNSET))


_UNSET: Final[Any] = object()


class _Memo:
    """A one-shot iterator remembered as it is consumed, so positions in it are values."""

    __slots__ = ("it", "items")

    def __init__(self, it: Iterator[Any]) -> None:
        self.it: Iterator[Any] | None = it
        self.items: list[Any] = []

    def get(self, i: int) -> Any:
        """Element ``i``, or ``_UNSET`` past the end."""
        items = self.items
        while i >= len(items):
            if self.it is None:
                return _UNSET
            try:
                items.append(next(self.it))
            except StopIteration:
                self.it = None
                return _UNSET
        return items[i]


class Seq(Gen):
    """Elements of a sequence as generators, one after the other (how lists behave).

    ``cur`` is the current element's state (``_UNSET`` when element ``i`` has not been
    asked yet)."""

    __slots__ = ("cur", "i", "items", "listens")

    def __init__(self, items: Sequence[Any] | _Memo, i: int, cur: Any) -> None:
        self.items = items
        self.i = i
        self.cur = cur
        self.listens = isinstance(cur, Gen) and cur.listens

    def _get(self, i: int) -> Any:
        items = self.items
        if isinstance(items, _Memo):
            return items.get(i)
        return items[i] if i < len(items) else _UNSET

    def op(self, ctx: GenContext) -> OpResult:
        i, cur = self.i, self.cur
        while True:
            if cur is _UNSET:
                cur = self._get(i)
                if cur is _UNSET:
                    return None
            r = op(cur, ctx)
            if r is not None:
                break
            i += 1
            cur = _UNSET
        o, nxt = r
        if o is PENDING:
            return (PENDING, self if (i == self.i and nxt is self.cur) else Seq(self.items, i, nxt))
        if nxt is None:
            if self._get(i + 1) is _UNSET:
                return (o, None)
            return (o, Seq(self.items, i + 1, _UNSET))
        return (o, Seq(self.items, i, nxt))

    def update(self, ctx: GenContext, event: Op) -> Any:
        if not self.listens:
            return self
        cur = self.cur
        nxt = cur.update(ctx, event)
        return self if nxt is cur else Seq(self.items, self.i, nxt)
