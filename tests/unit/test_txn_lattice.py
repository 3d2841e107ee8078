"""The consistency lattice: which anomalies rule out which models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checkers.txn import lattice
from checkers.txn.cycles import SPECS

ROOT = Path(__file__).resolve().parents[2]

# (anomaly, weakest models ruled out, number of models ruled out of 36): the reference table
TABLE = [
    ("G0", ["read-uncommitted"], 25),
    ("duplicate-elements", ["read-uncommitted"], 25),
    ("cyclic-versions", ["read-uncommitted"], 25),
    ("out-of-order-appends", ["read-uncommitted"], 25),
    ("G1a", ["read-committed"], 22),
    ("G1b", ["read-committed"], 22),
    ("G1c", ["read-committed"], 22),
    ("future-read", ["read-committed"], 22),
    ("incompatible-order", ["read-committed"], 22),
    ("dirty-update", ["read-committed"], 22),
    ("internal", ["read-atomic"], 11),
    ("lost-update", ["cursor-stability", "update-atomic"], 13),
    ("G-single-item", ["consistent-view", "repeatable-read"], 10),
    ("G-single", ["consistent-view"], 9),
    ("G-nonadjacent-item", ["repeatable-read", "snapshot-isolation"], 7),
    ("G2-item", ["repeatable-read"], 4),
    ("G2", ["serializable"], 3),
    ("G0-process", ["strong-session-read-uncommitted"], 8),
    ("G1c-process", ["strong-session-read-committed"], 6),
    ("G-single-item-process", ["strong-session-snapshot-isolation"], 4),
    ("G2-item-process", ["strong-session-serializable"], 2),
    ("G0-realtime", ["strong-read-uncommitted"], 4),
    ("G1c-realtime", ["strong-read-committed"], 3),
    ("G-single-item-realtime", ["strong-snapshot-isolation"], 2),
    ("G-nonadjacent-item-realtime", ["strong-snapshot-isolation"], 2),
    ("G2-item-realtime", ["strict-serializable"], 1),
]


def test_the_packaged_lattice_is_the_reference_one() -> None:
    # tests/data/elle/ holds a verbatim copy of the shared lattice (see its README.md)
    reference = ROOT / "tests" / "data" / "elle" / "elle-consistency-lattice.json"
    ours = Path(lattice.__file__).with_name("consistency-lattice.json")
    assert json.loads(ours.read_text()) == json.loads(reference.read_text())


def test_36_models() -> None:
    assert len(lattice.all_models()) == 36


@pytest.mark.parametrize(("anomaly", "weakest", "count"), TABLE)
def test_anomaly_rules_out_models(anomaly: str, weakest: list[str], count: int) -> None:
    not_, also_not = lattice.ruled_out_models({anomaly})
    assert not_ == weakest
    assert len(not_) + len(also_not) == count


FAILING = {
    "read-uncommitted": {"G0", "cyclic-versions", "duplicate-elements"},
    "read-committed": {"G0", "cyclic-versions", "duplicate-elements", "G1a", "G1b", "G1c",
                       "dirty-update", "future-read", "incompatible-order"},
}  # fmt: skip
DETECTABLE = {s.name for s in SPECS} | {
    "G1a", "G1b", "internal", "lost-update", "duplicate-elements", "incompatible-order",
    "dirty-update", "future-read", "cyclic-versions",
}  # fmt: skip


@pytest.mark.parametrize("model", sorted(FAILING))
def test_failing_anomalies_of_weak_models(model: str) -> None:
    assert lattice.relevant_anomalies(model, DETECTABLE) == FAILING[model]


def test_failing_anomalies_of_strong_models() -> None:
    rc = FAILING["read-committed"]
    si = lattice.relevant_anomalies("snapshot-isolation", DETECTABLE)
    assert si == rc | {"internal", "lost-update", "G-single-item", "G-nonadjacent-item"}
    ser = lattice.relevant_anomalies("serializable", DETECTABLE)
    assert ser == si | {"G2-item"}
    rr = lattice.relevant_anomalies("repeatable-read", DETECTABLE)
    assert rr == rc | {"lost-update", "G-single-item", "G-nonadjacent-item", "G2-item"}
    ss = lattice.relevant_anomalies("strict-serializable", DETECTABLE)
    assert ss == DETECTABLE  # the default model forbids everything clew detects
    sss = lattice.relevant_anomalies("strong-session-serializable", DETECTABLE)
    assert {a for a in sss if a.endswith("-realtime")} == set()
    assert "G2-item-process" in sss


def test_canonical_and_unknown_names() -> None:
    assert lattice.canonical("serializable") == "PL-3"
    assert lattice.friendly("PL-SI") == "snapshot-isolation"
    with pytest.raises(ValueError, match="unknown consistency model 'nope'"):
        lattice.check_model_name("nope")
