"""clew as a pytest plugin: consistency tests in the CI a team already has.

Installed with clew (entry point ``clew`` in the ``pytest11`` group), so any pytest run in
an environment with clew has these fixtures; nothing is imported or started until a test
asks for one::

    import pytest
    from harness.pytest_plugin import assert_valid

    @pytest.mark.clew(suite="etcd", nodes=3, time_limit=10, faults="partition", seed=7)
    def test_etcd_survives_partitions(clew_run):
        outcome = clew_run()                 # one `clew test` run, stored under tmp_path
        assert_valid(outcome)                # fails with the verdict, causes and report

``@pytest.mark.clew(**fields)`` takes the fields of a test spec (those of ``clew test``'s
flags and of ``--spec`` TOML files: ``suite``, ``workload``, ``nodes``, ``time_limit``,
``concurrency``, ``rate``, ``seed``, ``faults``, ``scheduler``, ``interval``,
``options``, ``cluster_options``, ``provider``, ...). A test may also override the
``clew_config`` fixture instead.

Fixtures (each function-scoped):

``clew_config``   the spec fields: the marker's, with a store and cluster state dir under
                  the test's ``tmp_path``
``clew_db``       the database under test: its :class:`~harness.api.Suite` (``.db``,
                  ``.workloads``, ``.default_workload``), loaded as ``clew test`` loads it
``clew_cluster``  a cluster brought up for the test (local provider: needs root) and
                  torn down after it, even when the test fails
``clew_run``      a function that runs the test on that cluster and database and returns
                  its :class:`~harness.runner.RunOutcome` (``valid``, ``results``,
                  ``run_dir``, ``ops``, ...); keyword arguments override spec fields, and
                  ``schedule=[{"at": 1.0, "f": "start-partition", "value": ...}, ...]``
                  strikes those faults instead of the seeded scheduler's

:func:`assert_valid`, :func:`assert_invalid` and :func:`assert_anomalies` check an
outcome and say, when they fail, the verdict, each checker's cause and the report's path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from clusters import Cluster
    from harness.api import Suite
    from harness.runner import RunOutcome

__all__ = ["anomalies", "assert_anomalies", "assert_invalid", "assert_valid", "outcome_summary"]

_MARKER = "clew"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``clew`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        "clew(**fields): the clew test spec (suite, workload, nodes, time_limit, faults, "
        "seed, options, cluster_options, ...) for the clew_* fixtures",
    )


def outcome_summary(outcome: RunOutcome) -> str:
    """A few lines saying what a run found: verdict, ops, each checker's verdict and
    cause, why a run that showed no anomaly is not valid (tainted, cut short), problems,
    and where the report is."""
    from harness.record import verdict_caveats

    word = {True: "VALID", False: "INVALID"}.get(outcome.valid, "UNKNOWN")
    lines = [f"{word}: {outcome.ops} ops in {outcome.duration:.1f} s ({outcome.run_dir})"]
    for name, r in (outcome.results.get("checkers") or {}).items():
        verdict = {True: "valid", False: "invalid"}.get(r.get("valid"), "unknown")
        cause = f" — {r['cause']}" if r.get("cause") else ""
        lines.append(f"  {name}: {verdict}{cause}")
    lines.extend(f"  {why}" for why in verdict_caveats(outcome.results))
    lines.extend(f"  problem: {p}" for p in outcome.problems)
    report = Path(outcome.run_dir) / "report.html"
    lines.append(f"  report: {report if report.exists() else '(none)'}")
    return "\n".join(lines)


def assert_valid(outcome: RunOutcome) -> None:
    """Fail the test unless every checker found the run valid (unknown fails too)."""
    if outcome.valid is not True:
        raise AssertionError("the run is not valid\n" + outcome_summary(outcome))


def assert_invalid(outcome: RunOutcome) -> None:
    """Fail the test unless some checker found the run invalid (unknown fails)."""
    if outcome.valid is not False:
        raise AssertionError("the run is not invalid\n" + outcome_summary(outcome))


def anomalies(outcome: RunOutcome) -> set[str]:
    """The anomaly classes (G0, G1c, G2-item, ...) every checker of the run reported."""
    found: set[str] = set()
    for r in (outcome.results.get("checkers") or {}).values():
        a = r.get("anomalies")
        if isinstance(a, (dict, list)):  # counts by class, or the classes
            found.update(str(k) for k in a)
    return found


def assert_anomalies(outcome: RunOutcome, *expected: str) -> None:
    """Fail the test unless the run is invalid with at least the ``expected`` anomaly
    classes among those its checkers reported."""
    assert_invalid(outcome)
    missing = set(expected) - anomalies(outcome)
    if missing:
        raise AssertionError(
            f"anomalies {sorted(missing)} not found (found {sorted(anomalies(outcome))})\n"
            + outcome_summary(outcome)
        )


def _spec(fields: dict[str, Any], where: str) -> Any:
    """The validated spec of ``fields``; a mistake in them (a misspelt field, an unknown
    fault kind) fails the test with clew's message, naming ``where`` it was made, and no
    traceback of clew's insides."""
    from harness.errors import ConfigError
    from harness.spec import load_spec

    try:
        return load_spec(**fields)
    except ConfigError as e:
        why = str(e).removeprefix("flags: ")
    pytest.fail(f"{where}: {why}", pytrace=False)


@pytest.fixture
def clew_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The spec fields of this test: its ``@pytest.mark.clew(...)`` fields (the nearest
    marker wins), with ``store`` and ``cluster_state_dir`` under ``tmp_path`` unless given."""
    marker = request.node.get_closest_marker(_MARKER)
    fields: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        fields.setdefault("suite", marker.args[0])
    fields.setdefault("suite", "etcd")
    fields.setdefault("store", str(tmp_path / "store"))
    fields.setdefault("cluster_state_dir", str(tmp_path / "cluster"))
    return fields


@pytest.fixture
def clew_db(clew_config: dict[str, Any]) -> Suite:
    """The database under test: the suite ``clew_config`` names, loaded as ``clew test``
    loads it (built-in name, Python file or installed suite)."""
    from harness.errors import ConfigError
    from harness.suites import load_suite

    try:
        return load_suite(str(clew_config["suite"]))
    except ConfigError as e:
        why = str(e)
    pytest.fail(f"@pytest.mark.clew(suite=...): {why}", pytrace=False)


@pytest.fixture
def clew_cluster(clew_config: dict[str, Any]) -> Iterator[Cluster]:
    """A cluster of ``nodes`` nodes (provider and its options from ``clew_config``), up for
    this test and torn down after it whatever happened."""
    from clusters import ClusterSpec, get_provider
    from harness.errors import ClewError

    spec = _spec(clew_config, "@pytest.mark.clew(...)")  # suite defaults (nodes, provider)
    state = Path(str(spec.cluster_state_dir))
    try:
        provider = get_provider(spec.provider)
        cluster = provider.up(
            ClusterSpec(
                provider=spec.provider, nodes=spec.nodes, state_dir=str(state),
                options=dict(spec.cluster_options),
            )
        )  # fmt: skip
    except ClewError as e:  # a failed up removes what it made
        why = str(e)
    else:
        why = ""
    if why:
        pytest.fail(f"clew_cluster: {spec.provider} cluster not up: {why}", pytrace=False)
    try:
        yield cluster
    finally:
        provider.down(state)


@pytest.fixture
def clew_run(
    clew_config: dict[str, Any], clew_db: Suite, clew_cluster: Cluster
) -> Callable[..., RunOutcome]:
    """A function running this test's spec (keyword arguments override its fields;
    ``schedule``: fault steps to strike, as ``clew replay`` does) on ``clew_cluster`` with
    ``clew_db``, returning the run's outcome; each call is one stored run with its
    report. A run that a Ctrl-C (or SIGTERM) stopped is recorded, then raises
    KeyboardInterrupt, which stops the session as in any test."""
    from harness.errors import ConfigError
    from harness.runner import run_test

    def run(schedule: list[dict[str, Any]] | None = None, **overrides: Any) -> RunOutcome:
        fields = {**clew_config, **overrides}
        spec = _spec(fields, "@pytest.mark.clew(...) with clew_run(...)'s overrides")
        if spec.nodes != len(clew_cluster.nodes):
            pytest.fail(
                f"clew_run(nodes={spec.nodes}): clew_cluster has {len(clew_cluster.nodes)} "
                "nodes (the marker's `nodes`); give the marker the node count instead",
                pytrace=False,
            )
        try:
            outcome = run_test(spec, suite=clew_db, schedule=schedule)
        except ConfigError as e:  # refused before it started (nothing recorded)
            pytest.fail(f"clew_run: the run was refused: {e}", pytrace=False)
        if outcome.interrupted:  # recorded; the Ctrl-C stops the session, as in any test
            raise KeyboardInterrupt(*(() if outcome.interrupted == "Ctrl-C" else ("SIGTERM",)))
        return outcome

    return run
