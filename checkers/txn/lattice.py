"""The consistency-model lattice: which anomalies rule out which models.

Data: ``consistency-lattice.json`` beside this module, a verbatim copy of the project's
``shared/data/elle-consistency-lattice.json``. Its provenance: the relations were
transcribed from Elle's consistency-model namespace (``jepsen-io/elle``,
``elle/consistency_model.clj``; Kingsbury & Alvaro, PVLDB 14(3), 2020, after Adya's and
Cerone's definitions) as facts, not code. It holds ``canonical_names`` (friendly →
canonical), ``models_implies`` (a stronger model ⇒ the weaker ones it implies),
``implied_anomalies`` (an anomaly ⇒ the anomalies it implies) and ``directly_proscribed``
(canonical model → anomalies it forbids).

A model proscribes the anomalies it forbids directly and every anomaly its implied
(weaker) models forbid. An anomaly *rules out* a model when the anomaly, or any anomaly it
implies, is proscribed by that model. clew adds one name Elle does not report:
``garbage-read`` (a read of a value nobody wrote), which it treats like an aborted read
(it implies G1a), and ``out-of-order-appends`` (one transaction's appends to a key read out
of the order it made them: a write cycle of one transaction, so it implies G0).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "all_models",
    "anomaly_closure",
    "canonical",
    "friendly",
    "implies",
    "proscribed",
    "relevant_anomalies",
    "ruled_out_in_every_case",
    "ruled_out_models",
    "rules_out",
]

_PATH = Path(__file__).with_name("consistency-lattice.json")

#: Anomalies clew reports that the lattice file does not name, with what they imply.
EXTRA_IMPLIED: dict[str, list[str]] = {
    "garbage-read": ["G1a"],
    "out-of-order-appends": ["G0"],
}


@cache
def _data() -> dict[str, Any]:
    with _PATH.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def canonical(model: str) -> str:
    """The canonical name of ``model`` (``serializable`` → ``PL-3``); unknown names as is."""
    names: dict[str, str] = _data()["canonical_names"]
    return names.get(model, model)


def friendly(model: str) -> str:
    """The friendliest name of a canonical model (``PL-3`` → ``serializable``)."""
    for name, canon in _data()["canonical_names"].items():
        if canon == model and name not in ("conflict-serializable", "strong-serializable"):
            return name
    return model


@cache
def all_models() -> frozenset[str]:
    """Every canonical model the lattice names."""
    d = _data()
    out: set[str] = set(d["models_implies"]) | set(d["directly_proscribed"])
    for weaker in d["models_implies"].values():
        out.update(weaker)
    out.update(d["canonical_names"].values())
    return frozenset(out)


@cache
def _implied_models(model: str) -> frozenset[str]:
    """``model`` and every model it implies (transitively)."""
    graph: dict[str, list[str]] = _data()["models_implies"]
    seen = {model}
    todo = [model]
    while todo:
        for m in graph.get(todo.pop(), []):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return frozenset(seen)


@cache
def anomaly_closure(anomaly: str) -> frozenset[str]:
    """``anomaly`` and every anomaly it implies (transitively)."""
    graph: dict[str, list[str]] = {**_data()["implied_anomalies"], **EXTRA_IMPLIED}
    seen = {anomaly}
    todo = [anomaly]
    while todo:
        for a in graph.get(todo.pop(), []):
            if a not in seen:
                seen.add(a)
                todo.append(a)
    return frozenset(seen)


@cache
def proscribed(model: str) -> frozenset[str]:
    """Every anomaly that ``model`` (a friendly or canonical name) forbids."""
    direct: dict[str, list[str]] = _data()["directly_proscribed"]
    out: set[str] = set()
    for m in _implied_models(canonical(model)):
        out.update(direct.get(m, []))
    return frozenset(out)


def rules_out(anomaly: str, model: str) -> bool:
    """Whether finding ``anomaly`` shows that the history is not ``model``."""
    return not anomaly_closure(anomaly).isdisjoint(proscribed(model))


def relevant_anomalies(model: str, candidates: frozenset[str] | set[str]) -> set[str]:
    """The ``candidates`` whose presence would rule out ``model``."""
    return {a for a in candidates if rules_out(a, model)}


def ruled_out_models(anomalies: set[str] | frozenset[str]) -> tuple[list[str], list[str]]:
    """``(not, also_not)`` for the anomalies found, as friendly names, sorted.

    ``not`` is the weakest ruled-out models (those implying no other ruled-out model);
    ``also_not`` the other ruled-out models.
    """
    return _split({m for m in all_models() if any(rules_out(a, m) for a in anomalies)})


def ruled_out_in_every_case(cases: list[set[str]]) -> tuple[list[str], list[str]]:
    """``(not, also_not)`` as :func:`ruled_out_models`, for models that the anomalies of
    every case rule out (each case: the anomalies under one assumed version order)."""
    outs = [{m for m in all_models() if any(rules_out(a, m) for a in c)} for c in cases]
    return _split(set.intersection(*outs) if outs else set())


def implies(stronger: str, weaker: str) -> bool:
    """Whether every history of model ``stronger`` is one of ``weaker`` (friendly or
    canonical names)."""
    return canonical(weaker) in _implied_models(canonical(stronger))


def _split(out: set[str]) -> tuple[list[str], list[str]]:
    """Ruled-out canonical models as (weakest, the others), friendly names, sorted."""
    weakest = {m for m in out if not (_implied_models(m) - {m}) & out}
    return (
        sorted(friendly(m) for m in weakest),
        sorted(friendly(m) for m in out - weakest),
    )


def check_model_name(model: str) -> str:
    """``model`` if the lattice knows it; raises ``ValueError`` naming the choices."""
    if canonical(model) in all_models():
        return model
    names = sorted(set(_data()["canonical_names"]) | {m for m in all_models() if "PL" not in m})
    raise ValueError(f"unknown consistency model {model!r}; choose one of {', '.join(names)}")
