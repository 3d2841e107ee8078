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
this module imports those two registries once with the probed modules marked absent in
``sys.modules``: by Python's documented import protocol (the language reference, "The
module cache") a ``None`` entry makes an import raise ``ModuleNotFoundError``, which
both probes catch and take as "not installed". The marks are removed at once, so any
later import of SciPy or cffi in the process works as usual; what stays off for this
process is only Numba's compiled ``np.dot``/``np.vdot``/``@`` (they raise a typing error
naming SciPy) and cffi calls from compiled code. A probed module already imported is
left alone (Numba then sees it as usual). Numba's ``np.linalg`` functions are unaffected:
they look for SciPy when they compile, not at import.

Kernels with ``cache=True`` also load from Numba's cache without refreshing the target
context first (:class:`_LoadingCache`). Numba refreshes it before every cache lookup: that
imports and installs every implementation registry (unicode, char sequences, typed
containers, random, linear algebra, …), which only compiling needs, and which was about a
third of loading clew's kernels, so of a small ``clew check``. Loading compiled code needs
only what the target context sets up when it is made (the C helpers, the math functions,
the NRT, initialized here): compiling still refreshes, as Numba's compiler does that
itself. Python's string hash secret, which compiled code hashing strings reads, is a
symbol one registry adds; it is imported here too, so such a kernel loads as well.
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


_import_numba_without_probes()

from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numba  # noqa: E402
from numba import types  # noqa: E402
from numba.core import typeinfer  # noqa: E402
from numba.core.caching import FunctionCache  # noqa: E402

__all__ = ["njit", "types"]


class _LoadingCache(FunctionCache):
    """Numba's function cache, minus the target-context refresh before a load (see the
    module docstring); saving and misses are Numba's own."""

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        _ready_to_load(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)


_LOAD_READY: set[int] = set()


def _ready_to_load(target_context: Any) -> None:
    """What loaded code needs beyond the target context's own set-up, once per context."""
    if id(target_context) in _LOAD_READY:
        return
    from numba.core.runtime import rtsys
    from numba.cpython import hashing  # noqa: F401 - adds the string hash secret's symbols

    rtsys.initialize(target_context)
    _LOAD_READY.add(id(target_context))


def njit(*args: Any, **options: Any) -> Any:
    """:func:`numba.njit`, taking the same arguments as clew's kernels give it (an optional
    signature or list of signatures, then options), whose ``cache=True`` loads through
    :class:`_LoadingCache`. Compiled code and its signatures are exactly Numba's: with a
    signature the kernel is compiled (or loaded) at once and compiles nothing new later."""
    if args and callable(args[0]) and not isinstance(args[0], str | list | tuple):
        return njit(**options)(args[0])
    sigs = args[0] if args else options.pop("signature", None)
    cache = options.pop("cache", False)
    if sigs is not None and not isinstance(sigs, list):
        sigs = [sigs]

    def wrap(fn: Callable[..., Any]) -> Any:
        disp = numba.njit(**options)(fn)  # no signature: nothing compiled yet
        if cache:
            disp._cache = _LoadingCache(disp.py_func)
        if sigs is not None:
            with typeinfer.register_dispatcher(disp):
                for sig in sigs:
                    disp.compile(sig)
                disp.disable_compile()
        return disp

    return wrap
