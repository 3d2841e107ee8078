"""clew's pytest plugin in a team's own test file (run by pytester, in process): the marker
sets the spec, clew_db loads the suite, assertion helpers explain a failed run. Running
on a real cluster: tests/integration/test_pytest_plugin.py."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_a_team_test_file_gets_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from types import SimpleNamespace
        from harness.pytest_plugin import assert_anomalies, assert_valid

        @pytest.mark.clew(suite="postgres", workload="bank", time_limit=5, seed=9)
        def test_config_and_db(clew_config, clew_db, tmp_path):
            assert clew_config["suite"] == "postgres" and clew_config["seed"] == 9
            assert clew_config["store"] == str(tmp_path / "store")
            assert clew_db.name == "postgres" and "bank" in clew_db.workloads

        def test_default_suite(clew_config):
            assert clew_config["suite"] == "etcd"

        def test_helpers_explain(tmp_path):
            bad = SimpleNamespace(valid=False, ops=3, duration=1.0, run_dir=tmp_path,
                problems=[], results={"checkers": {"list-append": {
                    "valid": False, "cause": "G2-item cycle", "anomalies": ["G2-item"]}}})
            with pytest.raises(AssertionError) as e:
                assert_valid(bad)
            assert "list-append: invalid — G2-item cycle" in str(e.value)
            assert_anomalies(bad, "G2-item")
            with pytest.raises(AssertionError, match="G0"):
                assert_anomalies(bad, "G0")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=3)


def test_a_mistake_in_the_marker_fails_with_clews_message_and_no_traceback(
    pytester: pytest.Pytester,
) -> None:
    """A misspelt field or an unknown suite (or fault kind, or a node count the cluster
    does not have): pytest printed clew's spec.py traceback, and the message began
    "flags:" (no flag was given). (A fault kind's check loads the suite, and numpy cannot
    be loaded twice in one process: pytester's in-process run leaves it out.)"""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.clew(suite="bugkv", time_limt=10)
        def test_typo(clew_cluster):
            pass

        @pytest.mark.clew(suite="bugkvv")
        def test_suite(clew_db):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert "@pytest.mark.clew(...): unknown field `time_limt`" in out
    assert "@pytest.mark.clew(suite=...): unknown suite 'bugkvv'" in out
    assert "flags:" not in out and "Traceback" not in out and "spec.py" not in out


def test_a_ctrl_c_that_stopped_a_clew_run_stops_the_session(pytester: pytest.Pytester) -> None:
    """The run a Ctrl-C stopped came back as an outcome like any other, and the session
    went on to the next test (one Ctrl-C per test to stop it)."""
    pytester.makepyfile(
        """
        import pytest
        import harness.runner
        from clusters.base import Cluster, Node
        from harness.runner import RunOutcome

        @pytest.fixture
        def clew_cluster():
            return Cluster(provider="local", name="fake", state_dir="/nonexistent",
                           nodes=tuple(Node(name=f"n{i}", host="127.0.0.1")
                                       for i in range(1, 6)))

        @pytest.fixture
        def runs_stopped_by_ctrl_c(monkeypatch, tmp_path):
            monkeypatch.setattr(harness.runner, "run_test", lambda spec, **kw: RunOutcome(
                run_dir=tmp_path, valid="unknown", results={}, interrupted="Ctrl-C"))

        def test_first(runs_stopped_by_ctrl_c, clew_run):
            clew_run()

        def test_second():
            raise AssertionError("the session went on after the Ctrl-C")
        """
    )
    # (in a process of its own: in process, pytester passes a KeyboardInterrupt on)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()
    result.stdout.no_fnmatch_line("*the session went on*")
