"""The DB adapters clew ships declare the abilities fault kinds need (nemeses.abilities),
and every kind's needs are met by them where the docs say so."""

from __future__ import annotations

from harness.dbs.etcd import EtcdDB
from harness.dbs.postgres import PostgresDB
from nemeses import kinds
from nemeses.abilities import ABILITIES, lacking


def test_etcd_offers_every_ability() -> None:
    assert lacking(EtcdDB(), list(ABILITIES.values())) == []
    assert EtcdDB().clock_reads == "go-vdso"


def test_postgres_offers_every_ability() -> None:
    assert lacking(PostgresDB(), list(ABILITIES.values())) == []


def test_every_builtin_kind_can_strike_both_adapters_abilities_wise() -> None:
    for kind in kinds.all_kinds():
        for db in (EtcdDB(), PostgresDB()):
            assert lacking(db, list(kind.db_needs)) == [], (kind.name, type(db).__name__)
