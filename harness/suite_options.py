"""Which suite options (``-o NAME=VALUE``, a spec's ``[options]``) a run may be given.

A suite declares the options its DB and workloads read (:attr:`harness.api.Suite.options`,
:attr:`~harness.api.Suite.workload_options`) and a fault kind those its package reads
(:attr:`nemeses.kinds.FaultKind.options`). :func:`check_suite_options` refuses, before any
cluster comes up, an option that none of the run's parts declares, saying what it is
instead: a typo (with the name meant), an option of another workload, or of a fault kind
the run does not have. A suite that declares nothing (a suite file written before this
existed) is not checked.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from harness.api import Suite
from harness.errors import ConfigError
from nemeses import kinds as fault_kinds

__all__ = [
    "SET_BY_FLAG",
    "builtin_markdown",
    "check_suite_options",
    "declares",
    "markdown",
    "option_rows",
    "run_options",
]

#: Options that a flag of ``clew test`` sets, so that an error can name the flag.
SET_BY_FLAG = {"isolation": "--isolation"}


def declares(declared: Mapping[str, str], name: str) -> bool:
    """Whether ``declared`` covers option ``name``: by name, or by a prefix entry ending
    in ``.`` (``pg.`` covers ``pg.work_mem``)."""
    if name in declared and not name.endswith("."):
        return True
    return any(p.endswith(".") and name.startswith(p) and len(name) > len(p) for p in declared)


def run_options(suite: Suite, workload: str, kinds: Iterable[str]) -> dict[str, str] | None:
    """Every option a run of ``suite``'s ``workload`` with fault ``kinds`` may be given,
    name -> what it sets; ``None`` when the suite declares none (nothing is checked)."""
    if suite.options is None:
        return None
    out = dict(suite.options)
    out.update(suite.workload_options.get(workload, {}))
    for kind in dict.fromkeys(kinds):
        if kind in fault_kinds.names():
            out.update(fault_kinds.get(kind).options)
    return out


def _elsewhere(suite: Suite, workload: str, name: str) -> str | None:
    """Where else ``name`` is declared: another workload of ``suite``, or a fault kind."""
    others = [w for w, o in suite.workload_options.items() if w != workload and declares(o, name)]
    if others:
        plural = "s" if len(others) > 1 else ""
        return f"an option of workload{plural} {', '.join(others)}, not {workload}"
    kinds = [k for k in fault_kinds.names() if declares(fault_kinds.get(k).options, name)]
    if kinds:
        return f"an option of fault kind {', '.join(kinds)}, which this run's --faults do not have"
    return None


def check_suite_options(
    options: Mapping[str, Any], suite: Suite, workload: str, kinds: Iterable[str]
) -> None:
    """Refuse (:class:`ConfigError`) options this run's suite, workload and fault kinds do
    not declare (see the module docstring), naming each, what it might be instead, and
    the options the run takes."""
    allowed = run_options(suite, workload, kinds)
    if allowed is None:
        return
    unknown = [name for name in options if not declares(allowed, name)]
    if not unknown:
        return
    problems = []
    for name in unknown:
        where = _elsewhere(suite, workload, name)
        if where is None:
            names = [n for n in allowed if not n.endswith(".")]  # (not a prefix: "pg.")
            near = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
            where = f"did you mean {near[0]!r}?" if near else "no part of this run reads it"
            if name in SET_BY_FLAG:
                where += f"; {SET_BY_FLAG[name]} sets it"
        problems.append(f"{name!r} ({where})")
    takes = ", ".join(sorted(n + ("<name>" if n.endswith(".") else "") for n in allowed))
    raise ConfigError(
        f"unknown option{'s' if len(unknown) > 1 else ''} for suite {suite.name}, workload "
        f"{workload}: {'; '.join(problems)}. It takes: {takes or 'none'} "
        f"(`clew test --help` lists each suite's options)"
    )


def option_rows(suite: Suite) -> list[tuple[str, str, str]]:
    """``suite``'s declared options as (name, the workloads that read it, what it sets),
    sorted by name, one row per distinct meaning (``read_fraction`` is a different share
    in each workload); the DB's are read by every workload. A prefix entry's name ends in
    ``.<name>``. Empty when the suite declares none."""
    every = "every workload"
    rows: dict[tuple[str, str], list[str]] = {}
    for name, doc in (suite.options or {}).items():
        rows[(name, doc)] = [every]
    for workload, opts in suite.workload_options.items():
        for name, doc in opts.items():
            if (suite.options or {}).get(name) is None:
                rows.setdefault((name, doc), []).append(workload)
    return [
        (name + ("<name>" if name.endswith(".") else ""), ", ".join(ws), doc)
        for (name, doc), ws in sorted(rows.items())
    ]


def markdown(suites: Iterable[Suite]) -> str:
    """The option tables of ``docs/options.md``: one per suite, then the fault kinds'."""
    out: list[str] = []
    for suite in suites:
        out += [f"### {suite.name}", "", "| option | read by | sets (default) |", "|---|---|---|"]
        out += [f"| `{n}` | {w} | {d} |" for n, w, d in option_rows(suite)]
        out.append("")
    out += ["### fault kinds", "", "| option | fault kind | sets (default) |", "|---|---|---|"]
    for kind in fault_kinds.names():
        for name, doc in sorted(fault_kinds.get(kind).options.items()):
            out.append(f"| `{name}` | {kind} | {doc} |")
    return "\n".join(out).rstrip()


def builtin_markdown() -> str:
    """:func:`markdown` of the built-in suites (the tables of ``docs/options.md``)."""
    from harness.suites import BUILTIN_SUITES, load_suite

    return markdown(load_suite(name) for name in BUILTIN_SUITES)
