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

from numba import njit, types  # noqa: E402

__all__ = ["njit", "types"]
