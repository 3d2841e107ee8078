"""Load a script of ``bench/`` as a module, for tests that reuse its generators."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_bench(script: str, module_name: str) -> ModuleType:
    """``bench/<script>`` imported as ``module_name`` (registered in ``sys.modules``, so
    that its dataclasses and pickling find it)."""
    spec = importlib.util.spec_from_file_location(module_name, BENCH / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
