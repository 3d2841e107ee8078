"""checkers._numba: the kernels load without SciPy's BLAS or cffi, and both still import later."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kernels_load_without_blas_or_cffi_and_both_import_afterwards() -> None:
    out = _run(
        """
        import sys
        import numpy as np
        from checkers.linear import kernel
        print("linalg" if "scipy.linalg" in sys.modules else "no-linalg")
        print("cffi" if "cffi" in sys.modules else "no-cffi")
        # a kernel loaded from the cache (or compiled) still runs
        print(kernel._mix(np.uint64(1)) != 0)
        import scipy.linalg.cython_blas  # the marks are gone: later imports work
        import scipy.linalg
        print(float(scipy.linalg.det(np.eye(2))))
        """
    )
    assert out.split() == ["no-linalg", "no-cffi", "True", "1.0"]


def test_an_already_imported_scipy_is_left_alone() -> None:
    out = _run(
        """
        import scipy.linalg.cython_blas
        import checkers._numba
        from numba.np import arraymath
        print(arraymath._HAVE_BLAS)
        """
    )
    assert out.split() == ["True"]
