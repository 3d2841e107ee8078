"""Numba, loaded without the optional parts no clew kernel uses (a faster start).

Every module with compiled kernels imports ``njit`` and ``types`` from here rather than
from ``numba``. The first time Numba loads or compiles a kernel it imports its
implementation registries, and two of them probe optional dependencies at import time:

- ``numba.np.arraymath`` imports ``scipy.linalg.cython_blas`` (to decide whether
  ``np.dot``, ``np.vdot`` and ``@`` on arrays may be compiled), which loads all of
  ``scipy.linalg`` and, through SciPy's array-API layer, ``numpy.f2py``: about a third of
  ``clew check``'s start on a quiet machine;
- ``numba.core.typing.cffi_utils`` imports ``cffi`` (to let compiled code call cffi
  functions), which loads ``pycparser``.

No clew kernel calls BLAS or cffi, and Numba has no setting to skip these probes, so
before clew's first compile in a process this module imports those two registries with
the probed modules marked absent in ``sys.modules``: by Python's documented import
protocol (the language reference, "The module cache") a ``None`` entry makes an import
raise ``ModuleNotFoundError``, which both probes catch and take as "not installed". The
marks are removed at once, so any later import of SciPy or cffi in the process works as
usual; what stays off for this process is only Numba's compiled ``np.dot``/``np.vdot``/
``@`` (they raise a typing error naming SciPy) and cffi calls from compiled code. A probed
module already imported is left alone (Numba then sees it as usual). Numba's
``np.linalg`` functions are unaffected: they look for SciPy when they compile, not at
import. A process that only loads kernels from the cache imports neither registry (the
two take about as long to import as Numba itself).

Kernels with ``cache=True`` also load from Numba's cache without refreshing the target
context first (:class:`_LoadingCache`). Numba refreshes it before every cache lookup: that
imports and installs every implementation registry (unicode, char sequences, typed
containers, random, linear algebra, …), which only compiling needs, and which was about a
third of loading clew's kernels, so of a small ``clew check``. Loading compiled code needs
only what the target context sets up when it is made (the C helpers, the math functions,
the NRT, initialized here): compiling still refreshes, as Numba's compiler does that
itself. Python's string hash secret, which compiled code hashing strings reads, is a
symbol one registry adds; it is imported here too, so such a kernel loads as well.

A kernel with declared signatures whose compiled code is already in the cache is loaded
when it is first needed rather than at import (:class:`_Declared`): a check of a small
history runs one of the linear checker's four big kernels and loads only that one. One
not in the cache yet (the first run, or its source changed) is compiled at import as
before, so compiling never counts against a check's time limit; loading does (a few
hundredths of a second a kernel).
"""

from __future__ import annotations

import sys

# The optional modules Numba's registries probe at import, and the registries that do.
_PROBED = ("scipy.linalg.cython_blas", "cffi")
_PROBING = ("numba.np.arraymath", "numba.core.typing.cffi_utils")


def _import_numba_without_probes() -> None:
    """Import Numba's probing registries with the probed modules marked absent."""
    if all(name in sys.modules for name in _PROBING):
        return
    marked = [name for name in _PROBED if name not in sys.modules]
    for name in marked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import importlib

        for name in _PROBING:
            importlib.import_module(name)
    finally:
        for name in marked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numba  # noqa: E402
from numba import types  # noqa: E402
from numba.core import typeinfer  # noqa: E402
from numba.core.caching import FunctionCache  # noqa: E402
from numba.core.compiler_lock import global_compiler_lock  # noqa: E402
from numba.core.registry import CPUDispatcher  # noqa: E402

from checkers.compile_watch import compiling  # noqa: E402

__all__ = ["load_now", "njit", "types"]


class _LoadingCache(FunctionCache):
    """Numba's function cache, minus the target-context refresh before a load (see the
    module docstring); saving and misses are Numba's own."""

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        _ready_to_load(target_context)
        with self._guard_against_spurious_io_errors():
            loaded = self._load_overload(sig, target_context)
            if loaded is not None:
                return loaded
        _import_numba_without_probes()  # not cached: Numba compiles it next
        compiling(self._py_func.__module__)  # seconds to a minute: a watcher tells the person
        return None


_LOAD_READY: set[int] = set()


def _ready_to_load(target_context: Any) -> None:
    """What loaded code needs beyond the target context's own set-up, once per context."""
    if id(target_context) in _LOAD_READY:
        return
    from numba.core.runtime import rtsys
    from numba.cpython import hashing  # noqa: F401 - adds the string hash secret's symbols

    rtsys.initialize(target_context)
    _LOAD_READY.add(id(target_context))


class _Declared(CPUDispatcher):
    """A kernel with declared signatures that loads them from the cache when first
    needed: called, or called by a kernel being compiled. It then compiles nothing else,
    as a Numba kernel given signatures does not."""

    _declared: tuple[Any, ...] = ()
    _ready: bool = True

    def _ensure(self) -> None:
        if self._ready:
            return
        with global_compiler_lock:
            if self._ready:
                return
            with typeinfer.register_dispatcher(self):
                for sig in self._declared:
                    self.compile(sig)
            self.disable_compile()
            self._ready = True

    def _compile_for_args(self, *args: Any, **kws: Any) -> Any:
        if not self._declared:  # rebuilt from a pickle: Numba's own way
            return super()._compile_for_args(*args, **kws)  # type: ignore[misc]
        self._ensure()
        # What Numba's dispatcher calls next (its C part calls a returned Python callable
        # as Python): the call dispatched again, now to a declared signature, or to
        # Numba's no-match TypeError, as compiling is off.
        return self._dispatch_again

    def _dispatch_again(self, *args: Any, **kws: Any) -> Any:
        return self(*args, **kws)

    def get_call_template(self, args: Any, kws: Any) -> Any:
        self._ensure()
        return super().get_call_template(args, kws)


def load_now(*kernels: Any) -> None:
    """Load (or compile) each of ``kernels`` now if it waits to be loaded when first
    needed: start-up work moved out of whatever runs next (a benchmark timing the search
    alone; a long-lived process about to check under a time limit). Kernels that are
    already loaded, or not clew's lazily loaded kind, are left as they are."""
    for k in kernels:
        if isinstance(k, _Declared):
            k._ensure()


def _all_cached(disp: Any, sigs: list[Any]) -> bool:
    """Whether Numba's cache holds ``disp`` compiled for each of ``sigs`` for this source
    and this CPU (its index, checked as a load would check it; False if that cannot be
    told)."""
    try:
        cache = disp._cache
        index = cache._cache_file._load_index()
        codegen = disp.targetctx.codegen()
        return all(cache._index_key(sig, codegen) in index for sig in sigs)
    except Exception:
        return False


def njit(*args: Any, **options: Any) -> Any:
    """:func:`numba.njit`, taking the same arguments as clew's kernels give it (an optional
    signature or list of signatures, then options), whose ``cache=True`` loads through
    :class:`_LoadingCache`. Compiled code and its signatures are exactly Numba's: with
    signatures the kernel compiles nothing new later. With signatures and
    ``cache=True``, a kernel whose signatures are all in the cache is loaded when first
    needed (:class:`_Declared`), so a check loads only the kernels it runs; one that is
    not yet cached is compiled at once, at import, as Numba does (so compiling never
    happens inside a check's time limit)."""
    if args and callable(args[0]) and not isinstance(args[0], str | list | tuple):
        return njit(**options)(args[0])
    sigs = args[0] if args else options.pop("signature", None)
    cache = options.pop("cache", False)
    if sigs is not None and not isinstance(sigs, list):
        sigs = [sigs]

    def wrap(fn: Callable[..., Any]) -> Any:
        made = numba.njit(**options)(fn)  # no signature: nothing compiled yet
        if not isinstance(made, CPUDispatcher):  # NUMBA_DISABLE_JIT: plain Python
            return made
        disp: Any = made
        if cache:
            disp._cache = _LoadingCache(disp.py_func)
        else:
            _import_numba_without_probes()  # it will be compiled
        if sigs is not None:
            if type(made) is CPUDispatcher:
                disp.__class__ = _Declared
                disp._declared = tuple(sigs)
                disp._ready = False
            if not (cache and isinstance(disp, _Declared) and _all_cached(disp, sigs)):
                with typeinfer.register_dispatcher(disp):
                    for sig in sigs:
                        disp.compile(sig)
                    disp.disable_compile()
                disp._ready = True
        return disp

    return wrap
