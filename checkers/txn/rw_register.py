"""rw-register: wr edges from unique writes, ww/rw from per-key version graphs.

Blind writes hide the order of versions, so only **wr** is direct: T1's external write
``k = v`` and T2's external read of ``v`` give T1 → T2. Per key, a *version graph* orders
values, merged from sources one at a time: the initial state (nil precedes every value,
always), and optionally ``wfr_keys`` (a transaction's external read precedes its own later
write), ``sequential_keys`` (process order) and ``linearizable_keys`` (realtime order).
A source that makes a key's version graph cyclic is dropped for that key and reported as
``cyclic-versions``. Each version edge ``v1 → v2`` gives ww from the writer of ``v1`` and
rw from every external reader of ``v1`` to the writer of ``v2``. A read of a value nobody
wrote is reported as ``garbage-read`` (Elle stays silent about it).
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from checkers.txn.analysis import Analysis, Step
from checkers.txn.graph import RW, WR, WW, edges
from checkers.txn.parse import NIL, READ, TxnFormatError, Txns
from harness.history import FAIL, OK

__all__ = ["analyze"]

_NIL = int(NIL)


def analyze(
    tx: Txns,
    *,
    wfr_keys: bool = False,
    sequential_keys: bool = False,
    linearizable_keys: bool = False,
) -> Analysis:
    """Edges and non-cycle anomalies of an rw-register history."""
    h = tx.history
    an = Analysis(edges=[])
    vn = tx.value_name
    kn = tx.key_name

    def op(t: int) -> int:
        return int(h.index[tx.op_position(t)])

    # per transaction and key: external read, external (final) write, all writes
    ext_read: dict[tuple[int, int], int] = {}
    first_val: dict[tuple[int, int], int] = {}
    last_val: dict[tuple[int, int], int] = {}
    writer: dict[tuple[int, int], tuple[int, bool]] = {}  # (k, v) → (txn, final?)
    txn_keys: list[list[int]] = [[] for _ in range(tx.n)]
    mop_lo = tx.mop_lo.tolist()
    m_f, m_key, m_val = tx.m_f.tolist(), tx.m_key.tolist(), tx.m_val.tolist()
    for t in range(tx.n):
        state: dict[int, int] = {}
        wrote: dict[int, int] = {}
        for j in range(mop_lo[t], mop_lo[t + 1]):
            k, v = m_key[j], m_val[j]
            if (t, k) not in first_val:
                first_val[t, k] = v
                txn_keys[t].append(k)
                if m_f[j] == READ:
                    ext_read[t, k] = v
            if m_f[j] == READ:
                if k in state and state[k] != v:
                    an.add("internal", {"op": op(t), "key": kn(k), "expected": vn(state[k]),
                                        "read": vn(v)})  # fmt: skip
                state[k] = v
            else:
                if (k, v) in writer and writer[k, v][0] != t:
                    raise TxnFormatError(
                        f"value {vn(v)!r} is written to key {kn(k)!r} twice (ops "
                        f"{op(writer[k, v][0])} and {op(t)}); rw-register needs unique writes"
                    )
                if k in wrote:
                    writer[k, wrote[k]] = (t, False)
                writer[k, v] = (t, True)
                wrote[k] = v
                state[k] = v
            last_val[t, k] = state[k]
    ttype = tx.type.tolist()

    # wr edges, G1a, G1b, garbage reads
    readers: dict[tuple[int, int], list[int]] = {}
    wr_src: list[int] = []
    wr_dst: list[int] = []
    for (t, k), v in ext_read.items():
        readers.setdefault((k, v), []).append(t)
        if v == _NIL:
            continue
        w = writer.get((k, v))
        if w is None:
            an.add("garbage-read", {"op": op(t), "key": kn(k), "value": vn(v)})
        elif ttype[w[0]] == FAIL:
            an.add("G1a", {"op": op(t), "writer": op(w[0]), "key": kn(k), "value": vn(v)})
        elif not w[1] and w[0] != t:
            an.add("G1b", {"op": op(t), "writer": op(w[0]), "key": kn(k), "value": vn(v)})
        elif w[0] != t:
            wr_src.append(w[0])
            wr_dst.append(t)
    an.edges.append(edges(wr_src, wr_dst, WR))

    # lost update: committed transactions that read the same version of k, then wrote k
    lost: dict[tuple[int, int], list[int]] = {}
    for (t, k), v in ext_read.items():
        if ttype[t] == OK and (k, last_val[t, k]) in writer and writer[k, last_val[t, k]][0] == t:
            lost.setdefault((k, v), []).append(t)
    for (k, v), ts in lost.items():
        if len(ts) > 1:
            an.add("lost-update", {"key": kn(k), "value": vn(v), "ops": [op(t) for t in ts]})

    # version graphs
    vertex = [ttype[t] != FAIL for t in range(tx.n)]
    written: dict[int, list[int]] = {}
    for (k, v), (t, final) in writer.items():
        if final and vertex[t]:
            written.setdefault(k, []).append(v)
    vg: dict[int, nx.DiGraph] = {}
    for k, vs in written.items():
        g = nx.DiGraph()
        g.add_edges_from((_NIL, v) for v in vs)
        vg[k] = g
    sources: list[tuple[str, list[tuple[int, int, int]]]] = []
    if wfr_keys:
        sources.append(("wfr", [(k, v, last_val[t, k]) for (t, k), v in ext_read.items()
                                if ttype[t] == OK and last_val[t, k] != v]))  # fmt: skip
    ok_txns = [t for t in range(tx.n) if ttype[t] == OK]
    if sequential_keys:
        by_proc: dict[int, list[int]] = {}
        for t in sorted(ok_txns, key=lambda t: int(tx.cmp[t])):
            by_proc.setdefault(int(tx.process[t]), []).append(t)
        sources.append(("sequential", _order_source(by_proc.values(), txn_keys, first_val,
                                                    last_val)))  # fmt: skip
    if linearizable_keys:
        inv, cmp = tx.inv.tolist(), tx.cmp.tolist()
        pairs = [[a, b] for a in ok_txns for b in ok_txns if cmp[a] < inv[b]]
        sources.append(("linearizable", _order_source(pairs, txn_keys, first_val, last_val)))
    for name, vedges in sources:
        per_key: dict[int, list[tuple[int, int]]] = {}
        for k, a, b in vedges:
            if a != b:
                per_key.setdefault(k, []).append((a, b))
        for k, es in per_key.items():
            g = vg.setdefault(k, nx.DiGraph())
            trial = g.copy()
            trial.add_edges_from(es)
            if nx.is_directed_acyclic_graph(trial):
                vg[k] = trial
                continue
            scc = next(c for c in nx.strongly_connected_components(trial) if len(c) > 1)
            an.add("cyclic-versions", {"key": kn(k), "scc": sorted((vn(v) for v in scc),
                                       key=repr), "sources": ["initial-state", name]})  # fmt: skip

    ww_s: list[int] = []
    ww_d: list[int] = []
    rw_s: list[int] = []
    rw_d: list[int] = []
    for k, g in vg.items():
        for a, b in g.edges():
            wb = writer.get((k, b))
            if wb is None or not vertex[wb[0]]:
                continue
            wa = writer.get((k, a))
            if wa is not None and vertex[wa[0]]:
                ww_s.append(wa[0])
                ww_d.append(wb[0])
            for r in readers.get((k, a), ()):
                if ttype[r] == OK:
                    rw_s.append(r)
                    rw_d.append(wb[0])
    an.edges.append(edges(ww_s, ww_d, WW))
    an.edges.append(edges(rw_s, rw_d, RW))
    an.stats = {"keys": len(tx.keys), "writes": len(writer), "reads": len(ext_read)}

    def explain(a: int, b: int, rel: int) -> Step | None:
        for k in txn_keys[b]:
            if rel == WR and ext_read.get((b, k), _NIL) != _NIL:
                v = ext_read[b, k]
                if writer.get((k, v), (-1,))[0] == a:
                    return {
                        "type": "wr",
                        "key": kn(k),
                        "value": vn(v),
                        "text": f"{{a}} wrote {kn(k)!r} = {vn(v)!r}, which was read by {{b}}",
                    }
            if rel in (WW, RW) and (k, last_val[b, k]) in writer and k in vg:
                v2 = last_val[b, k]
                v1: Any = None
                if rel == WW and (a, k) in last_val and (k, last_val[a, k]) in writer:
                    v1 = last_val[a, k]
                elif rel == RW and (a, k) in ext_read:
                    v1 = ext_read[a, k]
                if v1 is not None and vg[k].has_edge(v1, v2):
                    did = (f"set key {kn(k)!r} to {vn(v1)!r}" if rel == WW
                           else f"read key {kn(k)!r} = {vn(v1)!r}")  # fmt: skip
                    return {"type": "ww" if rel == WW else "rw", "key": kn(k), "value": vn(v1),
                            "value2": vn(v2),
                            "text": f"{{a}} {did}, and {{b}} set it to {vn(v2)!r}, which came "
                                    "later in the version order"}  # fmt: skip
        return None

    an.explain = explain
    return an


def _order_source(
    chains: Any,
    txn_keys: list[list[int]],
    first_val: dict[tuple[int, int], int],
    last_val: dict[tuple[int, int], int],
) -> list[tuple[int, int, int]]:
    """Version edges from an order on transactions: consecutive (per key) pairs in each
    chain, or all given pairs ``[a, b]``."""
    out: list[tuple[int, int, int]] = []
    for chain in chains:
        last: dict[int, int] = {}
        for t in chain:
            for k in txn_keys[t]:
                if k in last:
                    out.append((k, last_val[last[k], k], first_val[t, k]))
                last[k] = t
    return out
