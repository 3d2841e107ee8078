"""Database suites: built in (``etcd``), from a Python file, or from an installed package.

``clew test NAME`` looks NAME up in this order:

1. a path to a Python file (``./mydb.py``) that defines ``SUITE``;
2. a suite shipped with clew (``harness/suites/<name>.py``);
3. an entry point in the group ``clew.suites`` of an installed package, whose value is the
   ``Suite`` object (``[project.entry-points."clew.suites"] mydb = "mydb.clew:SUITE"``).

See :mod:`harness.api` for what a suite provides, and ``harness/suites/etcd.py`` for a
complete example.

A suite's module may also contribute fault kinds of its own: a module-level
``FAULT_KINDS = (FaultKind(...), ...)`` (see :mod:`nemeses.kinds`) is registered when the
suite loads, so ``--faults`` accepts them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

from harness.api import Suite
from harness.errors import ConfigError
from nemeses import kinds as fault_kinds

__all__ = ["BUILTIN_SUITES", "is_builtin", "load_suite"]

#: Suites shipped with clew.
BUILTIN_SUITES = ("etcd", "postgres", "bugkv", "redis", "galera")


def _from_file(path: Path) -> Suite:
    name = "clew_suite_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        hint = ("; a TOML test spec is given with --spec FILE" if path.suffix == ".toml"
                else "; a suite file is a Python file, named *.py")  # fmt: skip
        raise ConfigError(f"{path}: cannot load this file as Python{hint}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        where = _line_in(path, e)
        raise ConfigError(
            f"{path}{where}: loading the suite failed: {type(e).__name__}: {e}"
        ) from e
    suite = getattr(module, "SUITE", None)
    if not isinstance(suite, Suite):
        what = ("defines no `SUITE`" if not hasattr(module, "SUITE")
                else f"defines `SUITE` of type {type(suite).__name__}, not a Suite")  # fmt: skip
        raise ConfigError(
            f"{path}: {what}; a suite file defines `SUITE = Suite(...)` (see harness/api.py "
            "and the etcd suite)"
        )
    _register_kinds(module, str(path))
    return suite


def _line_in(path: Path, error: BaseException) -> str:
    """``:LINE`` of the last line of ``path`` that ``error``'s traceback passed through
    (where the suite file raised, or called what raised); empty when it passed through
    none (a syntax error names its own line)."""
    if isinstance(error, SyntaxError):
        return ""
    try:
        target = path.resolve()
        lines = [f.lineno for f in traceback.extract_tb(error.__traceback__)
                 if f.filename and Path(f.filename).resolve() == target]  # fmt: skip
    except OSError:
        return ""
    return f":{lines[-1]}" if lines and lines[-1] else ""


def _register_kinds(module: ModuleType, where: str) -> None:
    """Register the fault kinds ``module`` contributes (its ``FAULT_KINDS``, if any)."""
    contributed = module.__dict__.get("FAULT_KINDS", ())
    try:
        fault_kinds.register_all(contributed)
    except (ConfigError, TypeError) as e:
        raise ConfigError(f"{where}: FAULT_KINDS: {e}") from None


def is_builtin(suite: Suite) -> bool:
    """Whether ``suite`` is one shipped with clew, not a suite file that took a built-in
    suite's name (a copy of ``harness/suites/etcd.py`` keeps ``name="etcd"``)."""
    if suite.name not in BUILTIN_SUITES:
        return False
    return importlib.import_module(f"harness.suites.{suite.name}").SUITE is suite


def load_suite(name: str, *, files: bool = True) -> Suite:
    """The suite called (or at path) ``name``; :class:`ConfigError` saying what exists.
    With ``files=False`` only built-in and installed suites are looked up, never a file
    (for a name read from a stored run, which must not choose code to run)."""
    path = Path(name)
    if files and (name.endswith(".py") or path.is_file()):
        if not path.is_file():
            raise ConfigError(f"{name}: no such suite file")
        return _from_file(path)
    if name in BUILTIN_SUITES:
        module = importlib.import_module(f"harness.suites.{name}")
        suite = module.SUITE
        assert isinstance(suite, Suite)
        _register_kinds(module, f"harness/suites/{name}.py")
        return suite
    for ep in importlib.metadata.entry_points(group="clew.suites"):
        if ep.name == name:
            loaded = ep.load()
            if not isinstance(loaded, Suite):
                raise ConfigError(f"entry point {ep.value!r} for suite {name!r} is not a Suite")
            _register_kinds(importlib.import_module(ep.module), f"entry point {ep.value!r}")
            return loaded
    installed = [ep.name for ep in importlib.metadata.entry_points(group="clew.suites")]
    raise ConfigError(
        f"unknown suite {name!r}; built in: {', '.join(BUILTIN_SUITES)}"
        + (f"; installed: {', '.join(installed)}" if installed else "")
        + "; or give the path of a Python file that defines SUITE"
    )
