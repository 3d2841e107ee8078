"""The transactional checker against a brute-force oracle on small random histories.

Each run checks 2,000 seeded random list-append and rw-register histories (real serial
runs, then perturbed reads and outcomes; :mod:`checkers.txn.oracle`) at serializable and
strict-serializable. The checker must agree with the oracle exactly; the only other answer
it may give is the documented limitation: unknown because the version order is ambiguous.
Set ``CLEW_TXN_SEED`` to try another seed; ``bench/txn_oracle.py`` runs 50,000.
"""

from __future__ import annotations

import os
import random

from checkers.txn import check
from checkers.txn.oracle import random_history, serializable
from harness.history import History

HISTORIES = 2000
SEED = int(os.environ.get("CLEW_TXN_SEED", "2026"))


def test_checker_agrees_with_brute_force() -> None:
    rng = random.Random(SEED)
    disagreements: list[str] = []
    outcomes = {"valid": 0, "invalid": 0, "unknown": 0}
    for i in range(HISTORIES):
        model = ("list-append", "rw-register")[i % 2]
        level = ("serializable", "strict-serializable")[(i // 2) % 2]
        ops = random_history(rng, model)
        want = serializable(ops, model, strict=level == "strict-serializable")
        r = check(History.from_ops(ops), model, level)
        if r.valid == "unknown":
            outcomes["unknown"] += 1
            if "version order ambiguous" not in (r.cause or ""):
                disagreements.append(f"#{i} {model} {level}: unknown ({r.cause}) {ops}")
            continue
        outcomes["valid" if r.valid else "invalid"] += 1
        if r.valid is not want:
            disagreements.append(f"#{i} {model} {level}: checker {r.valid}, oracle {want}: "
                                 f"{r.cause} {ops}")  # fmt: skip
    assert not disagreements, f"seed {SEED}: " + "\n".join(disagreements[:5])
    # the generator must exercise both verdicts, or the comparison proves little
    assert outcomes["valid"] > HISTORIES // 4 and outcomes["invalid"] > HISTORIES // 10


def test_oracle_on_the_four_shapes() -> None:
    """The oracle itself, on the issue's four minimal histories (all not serializable)."""
    def ops(*txns: tuple[str, list[list[object]]]) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for p, (typ, mops) in enumerate(txns):
            out.append({"process": p, "type": "invoke", "f": "txn", "value": mops})
            out.append({"process": p, "type": typ, "f": "txn", "value": mops})
        return out

    a = ops(("ok", [["r", "x", None]]), ("ok", [["r", "x", 1], ["w", "x", 1]]))
    assert not serializable(a, "rw-register")
    b = ops(("ok", [["w", "x", 1]]), ("ok", [["w", "x", 2]]), ("ok", [["r", "x", 1]]))
    assert serializable(b, "rw-register") and not serializable(b, "rw-register", strict=True)
    c = ops(("ok", [["r", "x", None], ["w", "y", 1]]), ("ok", [["w", "x", 2], ["w", "y", 3]]),
            ("ok", [["r", "x", 2], ["r", "y", 1]]))  # fmt: skip
    assert not serializable(c, "rw-register")
    d = ops(("ok", [["append", "x", 1], ["append", "x", 2]]), ("ok", [["append", "x", 3]]),
            ("ok", [["r", "x", [2, 1, 3]]]))  # fmt: skip
    assert not serializable(d, "list-append")
    assert serializable(ops(("ok", [["r", "x", 5]])), "rw-register", initial_state={"x": 5})
