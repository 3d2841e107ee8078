"""Grudge planners and the netfilter scripts they become: pure functions, no nodes."""

from __future__ import annotations

import itertools
import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import NemesisError
from nemeses import partition as p
from nemeses.base import NemesisPackage

NODES5 = ["n1", "n2", "n3", "n4", "n5"]


def names(n: int) -> list[str]:
    return [f"n{i}" for i in range(1, n + 1)]


def is_symmetric(g: p.Grudge) -> bool:
    return all(a in g[b] for a, peers in g.items() for b in peers)


def components(g: p.Grudge) -> list[frozenset[str]]:
    """Connected groups under ``g`` (for complete grudges: the sides)."""
    seen: set[str] = set()
    out = []
    for n in g:
        if n not in seen:
            comp = frozenset(m for m in g if p.connected(g, n, m))
            seen |= comp
            out.append(comp)
    return out


def sees(g: p.Grudge, n: str) -> frozenset[str]:
    """The nodes ``n`` can really exchange packets with (itself included)."""
    return frozenset(m for m in g if p.connected(g, n, m))


# --- shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(2, 10))
def test_halves_cuts_the_first_floor_half_from_the_rest(n: int) -> None:
    nodes = names(n)
    g = p.halves(nodes)
    assert set(g) == set(nodes)
    assert is_symmetric(g)
    assert sorted(components(g), key=len) == [
        frozenset(nodes[: n // 2]),
        frozenset(nodes[n // 2 :]),
    ]


def test_random_halves_is_deterministic_per_seed_and_varies_across_seeds() -> None:
    a = p.random_halves(NODES5, random.Random(7))
    assert a == p.random_halves(NODES5, random.Random(7))
    assert sorted(len(c) for c in components(a)) == [2, 3]
    assert is_symmetric(a)
    minorities = {min(components(p.random_halves(NODES5, random.Random(s))), key=len)
                  for s in range(50)}  # fmt: skip
    assert len(minorities) > 5  # C(5,2) = 10 possible minorities


def test_planners_do_not_mutate_their_input() -> None:
    nodes = list(NODES5)
    p.random_halves(nodes, random.Random(1))
    p.majorities_ring(nodes, random.Random(1))
    assert nodes == NODES5


@pytest.mark.parametrize("n", range(3, 9))
def test_isolate_one_cuts_exactly_one_node(n: int) -> None:
    g = p.isolate_one(names(n), random.Random(n))
    assert is_symmetric(g)
    assert sorted(len(c) for c in components(g)) == [1, n - 1]
    (alone,) = [c for c in components(g) if len(c) == 1]
    assert g[next(iter(alone))] == frozenset(names(n)) - alone


@pytest.mark.parametrize(("n", "k"), [(4, 1), (5, 1), (6, 1), (7, 2), (9, 2), (10, 3)])
def test_minority_third_is_strictly_less_than_a_third(n: int, k: int) -> None:
    g = p.minority_third(names(n), random.Random(0))
    assert is_symmetric(g)
    assert sorted(len(c) for c in components(g)) == [k, n - k]
    assert 3 * k < n


@pytest.mark.parametrize("n", range(3, 10))
def test_bridge_keeps_one_node_connected_to_both_halves(n: int) -> None:
    g = p.bridge(names(n), random.Random(n))
    assert is_symmetric(g)
    hubs = [x for x in g if sees(g, x) == frozenset(g)]
    assert len(hubs) == 1
    hub = hubs[0]
    assert g[hub] == frozenset()
    assert all(hub not in peers for peers in g.values())
    rest = {x: g[x] for x in g if x != hub}
    sides = components(rest)
    assert sorted(len(c) for c in sides) == sorted([n // 2, n - n // 2 - 1])


def test_bridge_in_given_order_bridges_at_the_middle() -> None:
    g = p.bridge(NODES5)
    assert g == {
        "n1": frozenset({"n4", "n5"}),
        "n2": frozenset({"n4", "n5"}),
        "n3": frozenset(),
        "n4": frozenset({"n1", "n2"}),
        "n5": frozenset({"n1", "n2"}),
    }


def check_majorities_ring(g: p.Grudge) -> None:
    n = len(g)
    majority = n // 2 + 1
    assert is_symmetric(g)
    views = [sees(g, x) for x in g]
    assert all(len(v) >= majority for v in views), views
    assert len(set(views)) == n, "two nodes see the same majority"
    assert all(len(v) < n for v in views), "someone sees everyone: not a partition"


@pytest.mark.parametrize("n", range(4, 16))
def test_majorities_ring_each_node_sees_its_own_majority(n: int) -> None:
    check_majorities_ring(p.majorities_ring(names(n), random.Random(n)))


def test_majorities_ring_of_five_sees_exactly_three() -> None:
    g = p.majorities_ring(NODES5)  # ring n1-n2-n3-n4-n5-n1
    assert g["n1"] == frozenset({"n3", "n4"})
    assert all(len(sees(g, x)) == 3 for x in g)


@given(st.integers(min_value=4, max_value=40), st.integers(min_value=0, max_value=2**32))
def test_majorities_ring_property(n: int, seed: int) -> None:
    check_majorities_ring(p.majorities_ring(names(n), random.Random(seed)))


TOO_FEW = [("halves", 1), ("one", 1), ("bridge", 2), ("majorities-ring", 3), ("minority-third", 3)]


@pytest.mark.parametrize(("shape", "n"), TOO_FEW)
def test_too_few_nodes_is_refused_by_name(shape: str, n: int) -> None:
    with pytest.raises(NemesisError, match=shape):
        p.plan(shape, names(n), random.Random(0))


@pytest.mark.parametrize("shape", sorted(p.SHAPES))
def test_every_shape_is_deterministic_per_seed_and_complete(shape: str) -> None:
    nodes = names(7)
    a = p.plan(shape, nodes, random.Random(42))
    assert a == p.plan(shape, nodes, random.Random(42))
    assert set(a) == set(nodes)
    assert all(x not in peers for x, peers in a.items())
    assert any(a.values()), "a partition that drops nothing"


def test_unknown_shape_lists_the_choices() -> None:
    with pytest.raises(NemesisError, match="majorities-ring"):
        p.plan("triangle", NODES5, random.Random(0))


def test_repeated_node_names_are_refused() -> None:
    with pytest.raises(NemesisError, match="repeat"):
        p.plan("random-halves", ["n1", "n1", "n2"], random.Random(0))


# --- grudges as data -------------------------------------------------------------------


def test_grudge_json_round_trip_leaves_out_nodes_that_drop_nothing() -> None:
    g = p.bridge(NODES5)
    data = p.grudge_to_json(g)
    assert "n3" not in data
    assert data["n1"] == ["n4", "n5"]
    assert p.validate_grudge(p.grudge_from_json(data), NODES5) == g


def test_validate_grudge_rejects_unknown_nodes_and_self_grudges() -> None:
    with pytest.raises(NemesisError, match="n9"):
        p.validate_grudge({"n1": frozenset({"n9"})}, NODES5)
    with pytest.raises(NemesisError, match="own packets"):
        p.validate_grudge({"n1": frozenset({"n1"})}, NODES5)
    with pytest.raises(NemesisError, match="mapping"):
        p.grudge_from_json(["n1"])  # type: ignore[arg-type]


def test_connected_needs_neither_side_to_hold_a_grudge() -> None:
    g = {"a": frozenset({"b"}), "b": frozenset(), "c": frozenset()}
    assert not p.connected(g, "a", "b")
    assert not p.connected(g, "b", "a")
    assert p.connected(g, "a", "c")
    assert p.connected(g, "a", "a")


# --- scripts ---------------------------------------------------------------------------


def test_nft_script_replaces_only_our_table_atomically() -> None:
    s = p.nft_apply_script("clew", ["10.0.0.3", "10.0.0.12", "fd00::2", "10.0.0.3"])
    lines = s.splitlines()
    assert lines[:3] == ["add table inet clew", "delete table inet clew", "add table inet clew"]
    assert all(" inet clew " in f" {line} " for line in lines)
    assert "add element inet clew blocked4 { 10.0.0.3, 10.0.0.12 }" in lines
    assert "add element inet clew blocked6 { fd00::2 }" in lines
    assert "ip saddr @blocked4 drop" in s and "ip6 saddr @blocked6 drop" in s
    assert "flush ruleset" not in s
    leased = p.nft_apply_script("clew", ["10.0.0.3"], lease=2.5)
    assert "10.0.0.3 timeout 2500ms" in leased


def test_scripts_refuse_anything_but_address_literals() -> None:
    with pytest.raises(ValueError):
        p.nft_apply_script("clew", ["10.0.0.1; flush ruleset"])
    with pytest.raises(ValueError):
        p.iptables_apply_script("clew", ["$(reboot)"])


def test_iptables_script_uses_our_chain_and_the_lock() -> None:
    s = p.iptables_apply_script("clew", ["10.0.0.2", "10.0.0.1"])
    assert "iptables -w 5 -A CLEW-PARTITION -s 10.0.0.1,10.0.0.2 -j DROP" in s
    assert "-C INPUT -j CLEW-PARTITION" in s  # the jump is added only when missing
    assert "clew_ipt_remove ip6tables" in s  # no IPv6 peers: our ip6tables chain goes
    # every flush, delete-chain and delete-rule names our chain (as target or as jump)
    destructive = re.findall(r" -([FXD]) (\S+)( -j \S+)?", s)
    assert len(destructive) >= 4
    assert all("CLEW-PARTITION" in "".join(d) for d in destructive), destructive


def test_heal_and_verify_name_only_our_objects() -> None:
    heal = p.heal_script("clew")
    assert "nft delete table inet clew" in heal
    assert "-X CLEW-PARTITION" in heal
    assert "flush ruleset" not in heal and "iptables -F\n" not in heal
    assert "CLEW-PARTITION" in p.verify_script("clew")
    assert "inet other" in p.heal_script("other")


def test_bad_configuration_is_refused_up_front() -> None:
    with pytest.raises(NemesisError, match="shape"):
        p.PartitionNemesis(shape="triangle")
    with pytest.raises(NemesisError, match="driver"):
        p.PartitionNemesis(driver="ipfw")  # type: ignore[arg-type]
    with pytest.raises(NemesisError, match="tag"):
        p.PartitionNemesis(tag="x; rm -rf /")
    with pytest.raises(NemesisError, match="lease"):
        p.PartitionNemesis(lease=0)


def test_the_package_is_data_the_runner_can_schedule() -> None:
    pkg = p.partition_package(shape="majorities-ring", interval=5)
    assert isinstance(pkg, NemesisPackage)
    assert pkg.interval == 5
    assert pkg.start(None) == {"f": "start-partition", "value": "majorities-ring"}  # type: ignore[arg-type]
    assert pkg.stop(None)["f"] == "stop-partition"  # type: ignore[arg-type]
    assert [op["f"] for op in pkg.finals()] == ["stop-partition"]
    assert pkg.perf.start == {"start-partition"}
    first = pkg.start(None)  # type: ignore[arg-type]
    first["value"] = "mutated"
    assert pkg.start(None)["value"] == "majorities-ring"  # type: ignore[arg-type]
    with pytest.raises(NemesisError, match="not handled"):
        NemesisPackage(
            name="x",
            nemesis=pkg.nemesis,
            start_op={"f": "kill"},
            stop_op={"f": "stop-partition"},
            perf=pkg.perf,
        )


def test_no_two_shapes_share_a_planner_by_accident() -> None:
    for (a, fa), (b, fb) in itertools.combinations(p.SHAPES.items(), 2):
        assert fa is not fb, (a, b)


def test_topologies_as_graphs() -> None:
    import random as _random

    import networkx as nx

    from nemeses.partition import bridge, graph_of, grudge_from_graph, majorities_ring

    nodes = [f"n{i}" for i in range(1, 8)]
    ring = graph_of(majorities_ring(nodes, _random.Random(4)))
    majority = len(nodes) // 2 + 1
    assert all(d + 1 >= majority for _, d in ring.degree)  # each node sees a majority
    assert nx.is_connected(ring) and not nx.is_isomorphic(ring, nx.complete_graph(7))
    g = graph_of(bridge(nodes, _random.Random(4)))
    hubs = list(nx.articulation_points(g))
    assert len(hubs) == 1 and g.degree[hubs[0]] == len(nodes) - 1
    assert grudge_from_graph(g) == bridge(nodes, _random.Random(4))
