"""Peer addresses as the network nemeses resolve them on a node (nemeses/netaddr.py)."""

from __future__ import annotations

import asyncio

import pytest

from clusters.base import Node
from harness.errors import NemesisError
from nemeses.netaddr import peer_addresses, resolve_script

PEERS = [Node(name="n2", host="10.0.0.2"), Node(name="n3", host="db3.example", port=2222),
         Node(name="n4", host="127.0.0.1", port=2204, address="fd00::4")]  # fmt: skip


def resolver(table: dict[str, str]):  # type: ignore[no-untyped-def]
    """A node's shell that answers the resolve script from ``table`` (name: its output)."""
    asked: list[str] = []

    async def run(script: str) -> str:
        asked.append(script)
        return "".join(f"{name}{out}\n" for name, out in table.items() if name in script)

    return run, asked


def test_literals_stand_as_they_are_and_names_resolve_on_the_node():
    run, asked = resolver({"db3.example": " 10.0.0.3 fd00::3"})
    got = asyncio.run(peer_addresses("n1", PEERS, run))
    assert got == {"n2": ("10.0.0.2",), "n3": ("10.0.0.3", "fd00::3"), "n4": ("fd00::4",)}
    assert asked == [resolve_script(["db3.example"])]  # one round trip, names only


def test_no_round_trip_when_every_peer_is_a_literal():
    run, asked = resolver({})
    got = asyncio.run(peer_addresses("n1", [PEERS[0], PEERS[2]], run))
    assert got == {"n2": ("10.0.0.2",), "n4": ("fd00::4",)} and asked == []


def test_a_name_that_does_not_resolve_names_the_node_and_the_peer():
    run, _ = resolver({"db3.example": ""})
    with pytest.raises(NemesisError, match=r"on n1: peer n3's address 'db3.example' does not"):
        asyncio.run(peer_addresses("n1", PEERS, run))
    run, _ = resolver({"db3.example": " not-an-address"})  # only literals count
    with pytest.raises(NemesisError, match="does not resolve"):
        asyncio.run(peer_addresses("n1", PEERS, run))


def test_a_name_that_is_no_host_name_is_refused_before_anything_runs():
    run, asked = resolver({})
    bad = [Node(name="n5", host="db;rm -rf /")]
    with pytest.raises(NemesisError, match="neither IPs nor hostnames"):
        asyncio.run(peer_addresses("n1", bad, run))
    assert asked == []
