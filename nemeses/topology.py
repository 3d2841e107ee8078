"""Partition topologies as data: grudges (node -> the nodes whose packets it drops), the
networkx graphs they come from (an edge between every two nodes that can talk), and the
seeded planners of each shape. Pure functions; :mod:`nemeses.partition` applies them."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence

import networkx as nx

from harness.errors import NemesisError

__all__ = [
    "SHAPES",
    "Grudge",
    "Planner",
    "bridge",
    "complete_grudge",
    "connected",
    "graph_of",
    "grudge_from_graph",
    "grudge_from_json",
    "grudge_to_json",
    "halves",
    "isolate_one",
    "majorities_ring",
    "minority_third",
    "plan",
    "random_halves",
    "validate_grudge",
]

#: node -> the nodes whose packets it drops. Planners give every node a key.
Grudge = Mapping[str, frozenset[str]]

#: A grudge planner: nodes and an RNG in, a grudge out. Pure; same seed, same grudge.
Planner = Callable[[Sequence[str], random.Random], Grudge]


# --- grudges as data -------------------------------------------------------------------


def grudge_from_graph(graph: nx.Graph) -> dict[str, frozenset[str]]:
    """The grudge of a *topology*: ``graph`` has an edge between every two nodes that can
    talk, and each node drops every node it has no edge to. Symmetric by construction."""
    everyone = frozenset(graph.nodes)
    return {n: everyone - {n} - frozenset(graph.neighbors(n)) for n in graph.nodes}


def graph_of(grudge: Grudge, nodes: Iterable[str] | None = None) -> nx.Graph:
    """The topology a grudge leaves: an edge between every two nodes that can still talk
    (see :func:`connected`), over ``nodes`` (default: the grudge's)."""
    names = list(nodes) if nodes is not None else list(grudge)
    g = nx.Graph()
    g.add_nodes_from(names)
    g.add_edges_from(
        (a, b) for i, a in enumerate(names) for b in names[i + 1 :] if connected(grudge, a, b)
    )
    return g


def _components_graph(components: Iterable[Iterable[str]]) -> nx.Graph:
    g = nx.Graph()
    for comp in components:
        members = list(comp)
        g.add_nodes_from(members)
        g.add_edges_from(itertools.combinations(members, 2))
    return g


def complete_grudge(components: Iterable[Iterable[str]]) -> dict[str, frozenset[str]]:
    """The grudge in which each node drops every node outside its own component (so the
    components cannot talk to each other, and talk freely inside). Symmetric."""
    return grudge_from_graph(_components_graph(components))


def connected(grudge: Grudge, a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` can exchange packets under ``grudge`` (neither drops the
    other; a node is always connected to itself)."""
    return a == b or (b not in grudge.get(a, frozenset()) and a not in grudge.get(b, frozenset()))


def validate_grudge(grudge: Grudge, nodes: Iterable[str]) -> dict[str, frozenset[str]]:
    """``grudge`` checked against ``nodes`` and completed with an empty set for every node
    it does not mention; :class:`NemesisError` naming any unknown node or self-grudge."""
    known = list(nodes)
    out: dict[str, frozenset[str]] = {n: frozenset() for n in known}
    for n, peers in grudge.items():
        unknown = sorted({n, *peers} - set(known))
        if unknown:
            raise NemesisError(
                f"grudge names unknown node(s) {', '.join(unknown)}; nodes are {', '.join(known)}"
            )
        if n in peers:
            raise NemesisError(f"grudge makes {n} drop its own packets")
        out[n] = frozenset(peers)
    return out


def grudge_to_json(grudge: Grudge) -> dict[str, list[str]]:
    """The grudge as JSON data: node -> sorted list, nodes that drop nothing left out."""
    return {n: sorted(peers) for n, peers in sorted(grudge.items()) if peers}


def grudge_from_json(data: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """The grudge written by :func:`grudge_to_json` (or any node -> list mapping)."""
    if not isinstance(data, Mapping):
        raise NemesisError(f"a grudge must be a mapping of node -> nodes, not {data!r}")
    return {str(n): frozenset(str(p) for p in peers) for n, peers in data.items()}


# --- planners (pure) -------------------------------------------------------------------


def _ordered(nodes: Sequence[str], rng: random.Random | None) -> list[str]:
    out = list(nodes)
    if len(set(out)) != len(out):
        raise ValueError(f"node names repeat: {out}")
    if rng is not None:
        rng.shuffle(out)
    return out


def _need(nodes: Sequence[str], n: int, shape: str) -> None:
    if len(nodes) < n:
        raise ValueError(f"shape {shape!r} needs at least {n} nodes, got {len(nodes)}")


def halves(nodes: Sequence[str], rng: random.Random | None = None) -> dict[str, frozenset[str]]:
    """Cut the nodes into two halves, the first ``floor(n/2)`` nodes (in the given order,
    or shuffled by ``rng``) against the rest, which hold the majority. Symmetric. Needs
    2 nodes."""
    _need(nodes, 2, "halves")
    order = _ordered(nodes, rng)
    k = len(order) // 2
    return complete_grudge([order[:k], order[k:]])


def random_halves(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """:func:`halves` of the nodes shuffled by ``rng``: a random minority against the
    majority. Same seed, same grudge."""
    return halves(nodes, rng)


def isolate_one(
    nodes: Sequence[str], rng: random.Random | None = None
) -> dict[str, frozenset[str]]:
    """Isolate one node (chosen by ``rng``; the first without one) from all others, which
    stay connected. Symmetric. Needs 2 nodes."""
    _need(nodes, 2, "one")
    order = _ordered(nodes, rng)
    return complete_grudge([order[:1], order[1:]])


def minority_third(
    nodes: Sequence[str], rng: random.Random | None = None
) -> dict[str, frozenset[str]]:
    """Cut off the largest group strictly smaller than a third of the nodes
    (``floor((n-1)/3)``, Jepsen's ``minority-third``) from the rest. Symmetric. Needs 4
    nodes (below that the group would be empty)."""
    _need(nodes, 4, "minority-third")
    order = _ordered(nodes, rng)
    k = (len(order) - 1) // 3
    return complete_grudge([order[:k], order[k:]])


def bridge(nodes: Sequence[str], rng: random.Random | None = None) -> dict[str, frozenset[str]]:
    """Cut the nodes into halves as :func:`halves` does, but keep one node of the majority
    (the *bridge*) connected to everyone: it drops nothing and nobody drops it. Symmetric.
    Needs 3 nodes."""
    _need(nodes, 3, "bridge")
    order = _ordered(nodes, rng)
    k = len(order) // 2
    hub = order[k]
    g = _components_graph([order[:k], order[k + 1 :]])
    g.add_edges_from((hub, n) for n in order if n != hub)
    grudge = grudge_from_graph(g)
    return {n: grudge[n] for n in order}


def majorities_ring(
    nodes: Sequence[str], rng: random.Random | None = None
) -> dict[str, frozenset[str]]:
    """Arrange the nodes in a ring (given order, or shuffled by ``rng``); each node sees
    itself and its ``k`` nearest neighbours on each side, ``k = ceil((m-1)/2)`` for a
    majority ``m``, and drops everyone else. So every node sees at least a majority
    (exactly one when ``m`` is odd), no two nodes see the same set, and the grudge is
    symmetric (what a node sees, it can really talk to). Needs 4 nodes: with 3, no
    symmetric grudge gives each node a different majority."""
    _need(nodes, 4, "majorities-ring")
    order = _ordered(nodes, rng)
    n = len(order)
    k = math.ceil((n // 2) / 2)  # (m-1)/2 rounded up, with m = n//2 + 1
    ring = nx.relabel_nodes(nx.circulant_graph(n, range(1, k + 1)), dict(enumerate(order)))
    grudge = grudge_from_graph(ring)
    return {node: grudge[node] for node in order}


def _halves_in_order(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    return halves(nodes)


#: Shape name -> planner (every one takes the RNG; only ``halves`` ignores it and keeps
#: the nodes' order). Names as in Jepsen's ``nemesis.combined`` where they exist.
SHAPES: dict[str, Planner] = {
    "halves": _halves_in_order,
    "random-halves": random_halves,
    "one": isolate_one,
    "minority-third": minority_third,
    "bridge": bridge,
    "majorities-ring": majorities_ring,
}


def plan(shape: str, nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """The grudge of shape ``shape`` (a key of :data:`SHAPES`) over ``nodes``, with random
    choices from ``rng``. :class:`NemesisError` for an unknown shape or too few nodes."""
    planner = SHAPES.get(shape)
    if planner is None:
        raise NemesisError(f"unknown partition shape {shape!r}; choose one of {', '.join(SHAPES)}")
    try:
        return dict(planner(nodes, rng))
    except ValueError as e:
        raise NemesisError(str(e)) from None
