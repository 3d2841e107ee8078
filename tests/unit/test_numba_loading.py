"""checkers._numba: the kernels load without SciPy's BLAS or cffi (both still import later),
and from the cache without refreshing the target context (compiling still works)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=600, check=False, env=env,
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


_KERNELS = """
from checkers._numba import njit

@njit("int64(int64[::1])", cache=True, nogil=True)
def total(a):
    s = 0
    for x in a:
        s += x
    return s

@njit(cache=True)
def twice(x):
    return 2 * x
"""


_CALLER = """
from checkers._numba import njit
from clew_tmp_kernels import total

@njit("int64(int64[::1])", cache=True)
def total_twice(a):
    return 2 * total(a)
"""


def _kernels_env(tmp_path: Path) -> dict[str, str]:
    """Write the test kernels' module into ``tmp_path``; the environment that imports it
    with a Numba cache of its own there."""
    (tmp_path / "clew_tmp_kernels.py").write_text(_KERNELS)
    return dict(
        os.environ,
        NUMBA_CACHE_DIR=str(tmp_path / "cache"),
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(_ROOT)]),
    )


def test_cached_kernels_load_when_first_needed_without_a_registry_refresh(
    tmp_path: Path,
) -> None:
    env = _kernels_env(tmp_path)
    code = """
        import sys
        import numpy as np
        import clew_tmp_kernels as k
        print(k.total._ready)  # compiled at import unless cached
        print(k.total(np.arange(5)), k.twice(3))
        print(sum(k.total.stats.cache_hits.values()), sum(k.total.stats.cache_misses.values()))
        print("refreshed" if "numba.typed.dictimpl" in sys.modules else "not-refreshed")
        print(k.twice(2.5))  # a new specialization: compiled (the compiler refreshes)
        print(k.total.signatures == [k.total.signatures[0]])
        try:
            k.total(np.arange(3.0))  # not a declared signature: never compiled
        except TypeError:
            print("TypeError")
        print("linalg" if "scipy.linalg" in sys.modules else "no-linalg")
        """
    first = _run(code, env).splitlines()
    assert first[:3] == ["True", "10 6", "0 1"]  # compiled and saved
    second = _run(code, env).splitlines()
    assert second[0] == "False"  # cached: loaded when first called
    assert second[1:3] == ["10 6", "1 0"]  # loaded from the cache
    assert second[3:7] == ["not-refreshed", "5.0", "True", "TypeError"]
    assert first[-1] == second[-1] == "no-linalg"  # compiling kept SciPy's BLAS probe off
    # A kernel compiled while the kernel it calls is cached but not yet loaded.
    (tmp_path / "clew_tmp_caller.py").write_text(_CALLER)
    out = _run(
        """
        import numpy as np
        import clew_tmp_kernels as k
        print(k.total._ready)
        import clew_tmp_caller as c  # compiles total_twice, which loads total
        print(k.total._ready, c.total_twice(np.arange(5)))
        """,
        env,
    )
    assert out.split() == ["False", "True", "20"]


def test_load_now_loads_a_cached_kernel_before_its_first_call(tmp_path: Path) -> None:
    """``load_now`` moves the load of a cached kernel out of its first call (benchmarks
    time the search without it); a kernel already loaded is left alone."""
    env = _kernels_env(tmp_path)
    code = """
        import numpy as np
        from checkers._numba import load_now
        import clew_tmp_kernels as k
        print(k.total._ready)
        load_now(k.total, k.total, len)
        print(k.total._ready, sum(k.total.stats.cache_hits.values()), k.total(np.arange(4)))
        """
    assert _run(code, env).split()[0] == "True"  # the first run compiles at import
    assert _run(code, env).split() == ["False", "True", "1", "6"]


def test_a_kernel_compiling_is_told_once_and_a_cached_one_is_not(tmp_path: Path) -> None:
    """The watchers of checkers.compile_watch hear of a kernel compiling (with declared
    signatures, at import; without, at its first call), once per module, and not when it
    loads from the cache (a later process)."""
    (tmp_path / "nc_kernels.py").write_text(
        textwrap.dedent(
            """
            from checkers._numba import njit, types

            @njit(types.int64(types.int64), cache=True)
            def declared(x):
                return x + 1

            @njit(cache=True)
            def lazy(x):
                return x * 2
            """
        )
    )
    code = """
        import sys
        sys.path.insert(0, PATH)
        from checkers.compile_watch import watching
        heard = []
        with watching(heard.append):
            import nc_kernels
            print(nc_kernels.declared(1), nc_kernels.lazy(2))
        print(heard)
        """.replace("PATH", repr(str(tmp_path)))
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    assert _run(code, env).split("\n")[:2] == ["2 4", "['the kernels of nc_kernels']"]
    assert _run(code, env).split("\n")[:2] == ["2 4", "[]"]
