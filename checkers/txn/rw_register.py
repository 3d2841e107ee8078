"""rw-register: wr edges from unique writes, ww/rw from per-key version graphs.

Blind writes hide the order of versions, so only **wr** is direct: T1's external write
``k = v`` and T2's external read of ``v`` give T1 → T2. Per key, a *version graph* orders
values, merged from sources one at a time: the initial state (nil precedes every value,
always), and optionally ``wfr_keys`` (a transaction's external read precedes its own later
write), ``sequential_keys`` (process order) and ``linearizable_keys`` (realtime order).
A source that makes a key's version graph cyclic is dropped for that key and reported as
``cyclic-versions``. Each version edge ``v1 → v2`` gives ww from the writer of ``v1`` and
rw from every external reader of ``v1`` to the writer of ``v2``. A read of a value nobody
wrote is reported as ``garbage-read`` (Elle stays silent about it). A read of a value that
the reading transaction itself writes only later is a ``future-read``.

``initial_state`` (key → value) replaces nil as the first version of the keys it names
(Elle's initial state); reading that value is reading the initial version.

``realtime_versions`` (what ``strict-serializable`` implies): when transaction A completed
before B was invoked and both touch key k, the version A left is no later than the one B
first saw or wrote. This is sound only under strict serializability, so the ww and rw
edges it yields are labelled *realtime* (a cycle through them is an X-realtime anomaly,
ruling out the strong models only). Each transaction is compared with the last
:data:`RT_VERSION_FANOUT` transactions on the key that completed before its invocation,
which keeps the inference linear.

:meth:`Versions.candidates` lists the total version orders compatible with what was
inferred, when they are few: the checker tries them one by one when the inferred partial
orders leave the answer open.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from itertools import pairwise, permutations, product
from typing import Any

import networkx as nx

from checkers.txn.analysis import Analysis, Step
from checkers.txn.budget import Budget
from checkers.txn.graph import REALTIME, RW, WR, WW, Edges, edges
from checkers.txn.parse import NIL, READ, TxnFormatError, Txns
from harness.history import FAIL, INFO, OK

__all__ = ["RT_VERSION_FANOUT", "Versions", "analyze", "encode_initial_state"]

_NIL = int(NIL)
#: Transactions that completed before another's invocation compared with it, per key.
RT_VERSION_FANOUT = 8


def analyze(
    tx: Txns,
    *,
    wfr_keys: bool = False,
    sequential_keys: bool = False,
    linearizable_keys: bool = False,
    initial: Mapping[int, int] | None = None,
    realtime_versions: bool = False,
    tick: Callable[[str], None] | None = None,
) -> Analysis:
    """Edges and non-cycle anomalies of an rw-register history.

    ``initial`` maps key ids to the encoded value of their first version (default nil; see
    :func:`encode_initial_state`).
    """
    h = tx.history
    an = Analysis(edges=[])
    init = dict(initial or {})
    tick = tick or (lambda phase: None)
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
        if t & 0xFFFF == 0:
            tick("analysis")
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
                if init.get(k, _NIL) == v:
                    raise TxnFormatError(
                        f"value {vn(v)!r} of key {kn(k)!r} is both its initial state and "
                        f"written by op {op(t)}; rw-register needs unique writes"
                    )
                if k in wrote:
                    writer[k, wrote[k]] = (t, False)
                writer[k, v] = (t, True)
                wrote[k] = v
                state[k] = v
            last_val[t, k] = state[k]
    ttype = tx.type.tolist()

    tick("analysis")
    # wr edges, G1a, G1b, garbage reads
    readers: dict[tuple[int, int], list[int]] = {}
    wr_src: list[int] = []
    wr_dst: list[int] = []
    for (t, k), v in ext_read.items():
        readers.setdefault((k, v), []).append(t)
        if v == init.get(k, _NIL):
            continue
        w = writer.get((k, v))
        if w is not None and w[0] == t:
            an.add("future-read", {"op": op(t), "key": kn(k), "value": vn(v)})
        elif w is None:
            an.add("garbage-read", {"op": op(t), "key": kn(k), "value": vn(v)})
        elif ttype[w[0]] == FAIL:
            an.add("G1a", {"op": op(t), "writer": op(w[0]), "key": kn(k), "value": vn(v)})
        elif not w[1] and w[0] != t:
            an.add("G1b", {"op": op(t), "writer": op(w[0]), "key": kn(k), "value": vn(v)})
        else:
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

    tick("analysis")
    # version graphs
    vertex = [ttype[t] != FAIL for t in range(tx.n)]
    written: dict[int, list[int]] = {}
    for (k, v), (t, final) in writer.items():
        if final and vertex[t]:
            written.setdefault(k, []).append(v)
    vg: dict[int, nx.DiGraph] = {}
    for k, vs in written.items():
        g = nx.DiGraph()
        g.add_edges_from((init.get(k, _NIL), v) for v in vs)
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
    rt_pairs = _realtime_pairs(tx, ok_txns, txn_keys) if linearizable_keys or \
        realtime_versions else []  # fmt: skip
    if linearizable_keys:
        sources.append(("linearizable", [(k, last_val[a, k], first_val[b, k])
                                         for k, a, b in rt_pairs]))  # fmt: skip
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

    # what strict serializability adds: version order follows real time (labelled realtime)
    rt_versions: dict[int, dict[tuple[int, int], int]] = {}  # (v1, v2) → the later txn
    if realtime_versions:
        rt_s: list[int] = []
        rt_d: list[int] = []
        for k, a, b in rt_pairs:
            v1, v2 = last_val[a, k], first_val[b, k]
            wb = writer.get((k, v2))
            if v1 == v2 or wb is None or not wb[1] or not vertex[wb[0]]:
                continue
            rt_versions.setdefault(k, {}).setdefault((v1, v2), b)
            wa = writer.get((k, v1))
            if wa is not None and vertex[wa[0]]:
                rt_s.append(wa[0])
                rt_d.append(wb[0])
            for r in readers.get((k, v1), ()):
                if ttype[r] == OK:
                    rt_s.append(r)
                    rt_d.append(wb[0])
        an.edges.append(edges(rt_s, rt_d, REALTIME))

    # transactions that must have happened: ok ones, and info ones whose writes were read
    must = tx.type == OK
    for (_, k), v in ext_read.items():
        w = writer.get((k, v))
        if w is not None and ttype[w[0]] == INFO:
            must[w[0]] = True
    an.must_happen = must
    an.versions = Versions(
        vg=vg, rt_versions=rt_versions, writer=writer, readers=readers, ttype=ttype,
        must=must.tolist(), init=init,
    )  # fmt: skip

    def explain_assuming(orders: dict[int, list[int]]) -> Any:
        """``explain``, with ww/rw steps also read off the assumed total ``orders``."""

        def ex(a: int, b: int, rel: int) -> Step | None:
            step = explain(a, b, rel)
            if step is not None or rel not in (WW, RW):
                return step
            for k in txn_keys[b]:
                v2 = last_val[b, k]
                v1 = last_val.get((a, k)) if rel == WW else ext_read.get((a, k))
                vs = orders.get(k, [])
                if v1 is None or v1 not in vs or v2 not in vs:
                    continue
                if writer.get((k, v2), (-1,))[0] != b:
                    continue
                if vs.index(v1) < vs.index(v2):
                    did = (f"set key {kn(k)!r} to {vn(v1)!r}" if rel == WW
                           else f"read key {kn(k)!r} = {vn(v1)!r}")  # fmt: skip
                    text = (f"{{a}} {did}, and {{b}} set it to {vn(v2)!r}, which comes later "
                            "in the assumed version order")  # fmt: skip
                    return {"type": "ww" if rel == WW else "rw", "key": kn(k), "value": vn(v1),
                            "value2": vn(v2), "text": text}  # fmt: skip
            return None

        return ex

    an.versions.explain_assuming = explain_assuming
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
            if rel == REALTIME and (k, first_val[b, k]) in writer and k in rt_versions:
                v2 = first_val[b, k]
                for u in (last_val.get((a, k)), ext_read.get((a, k))):
                    if u is not None and (u, v2) in rt_versions[k]:
                        later = op(rt_versions[k][u, v2])
                        return {"type": "realtime-version", "key": kn(k), "value": vn(u),
                                "value2": vn(v2),
                                "text": f"{{a}} saw or left key {kn(k)!r} = {vn(u)!r}, and "
                                        f"{{b}} set it to {vn(v2)!r}, which strict "
                                        "serializability puts later in the version order "
                                        f"(op {later}, invoked after a transaction that "
                                        f"left {vn(u)!r} had completed, began from "
                                        f"{vn(v2)!r})"}  # fmt: skip
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


def encode_initial_state(tx: Txns, initial_state: Mapping[Any, Any] | None) -> dict[int, int]:
    """Key id → encoded first version, for the keys of ``initial_state`` in the history.

    Raises :class:`TxnFormatError` for a nil initial value (nil is the default anyway) or a
    value the history's encoding cannot hold.
    """
    out: dict[int, int] = {}
    if not initial_state:
        return out
    kid = {k: i for i, k in enumerate(tx.keys)}
    for key, value in initial_state.items():
        if key not in kid or value is None:
            continue
        if tx.values is None:
            if type(value) is not int:
                raise TxnFormatError(f"initial state of key {key!r}: {value!r} is not an "
                                     "integer like the history's values")  # fmt: skip
            out[kid[key]] = value
        else:
            code = next((i for i, x in enumerate(tx.values)
                         if type(x) is type(value) and x == value), None)  # fmt: skip
            if code is None:  # a value nobody wrote or read: any fresh code will do
                code = len(tx.values) + len(out)
            out[kid[key]] = code
    return out


def _realtime_pairs(
    tx: Txns, ok_txns: list[int], txn_keys: list[list[int]]
) -> list[tuple[int, int, int]]:
    """``(key, a, b)``: ok ``a`` completed before ok ``b`` was invoked, both touch ``key``;
    for each ``b`` and key, the last :data:`RT_VERSION_FANOUT` such ``a``."""
    inv, cmp = tx.inv.tolist(), tx.cmp.tolist()
    by_key: dict[int, list[int]] = {}
    for t in sorted(ok_txns, key=cmp.__getitem__):
        for k in txn_keys[t]:
            by_key.setdefault(k, []).append(t)
    out: list[tuple[int, int, int]] = []
    for k, ts in by_key.items():
        ends = [cmp[t] for t in ts]
        for b in ts:
            i = bisect_left(ends, inv[b])
            out += [(k, a, b) for a in ts[max(0, i - RT_VERSION_FANOUT) : i]]
    return out


class Versions:
    """The inferred version orders of an rw-register history, for trying total orders."""

    def __init__(self, *, vg: dict[int, nx.DiGraph],
                 rt_versions: dict[int, dict[tuple[int, int], int]],
                 writer: dict[tuple[int, int], tuple[int, bool]],
                 readers: dict[tuple[int, int], list[int]], ttype: list[int], must: list[bool],
                 init: dict[int, int]) -> None:  # fmt: skip
        self.writer, self.readers, self.ttype, self.init = writer, readers, ttype, init
        self._vg, self._rt_versions, self._must = vg, rt_versions, must
        #: ``explain_assuming(orders)``: the analysis's explain, also reading total orders.
        self.explain_assuming: Any = None

    def _orders(self, budget: Budget | None = None) -> dict[int, nx.DiGraph]:
        """Per key, the inferred order of the versions that must exist (made on demand),
        within ``budget`` (:class:`OutOfBudget` in the ``version-orders`` phase)."""
        out: dict[int, nx.DiGraph] = {}
        writer, must = self.writer, self._must
        for k, g in self._vg.items():
            if budget is not None:
                budget.check(_PHASE)
            root = self.init.get(k, _NIL)
            keep = [v for v in g.nodes if v == root or (
                (w := writer.get((k, v))) is not None and w[1] and must[w[0]])]  # fmt: skip
            sub = _kept_order(g, keep, budget)
            trial = sub.copy()
            trial.add_edges_from(
                (a, b) for a, b in self._rt_versions.get(k, ()) if a in sub and b in sub
            )
            out[k] = trial if nx.is_directed_acyclic_graph(trial) else sub
        return out

    def candidates(
        self, limit: int, budget: Budget | None = None
    ) -> list[dict[int, list[int]]] | None:
        """Every combination of total version orders (key → values, first version first)
        compatible with the inferred ones, or ``None`` if there are more than ``limit``;
        within ``budget`` (:class:`OutOfBudget` in the ``version-orders`` phase)."""
        per_key: list[tuple[int, list[list[int]]]] = []
        total = 1
        for k, g in self._orders(budget).items():
            exts = _linear_extensions(g, limit // total + 1)
            if exts is None:
                return None
            total *= len(exts)
            if total > limit:
                return None
            per_key.append((k, exts))
        return [dict(zip([k for k, _ in per_key], combo, strict=True))
                for combo in product(*(exts for _, exts in per_key))]  # fmt: skip

    def chain_edges(self, orders: dict[int, list[int]]) -> list[Edges]:
        """ww and rw edges of total version orders (consecutive versions)."""
        ww_s: list[int] = []
        ww_d: list[int] = []
        rw_s: list[int] = []
        rw_d: list[int] = []
        for k, vs in orders.items():
            for a, b in pairwise(vs):
                wb = self.writer[k, b][0]
                wa = self.writer.get((k, a))
                if wa is not None:
                    ww_s.append(wa[0])
                    ww_d.append(wb)
                for r in self.readers.get((k, a), ()):
                    if self.ttype[r] == OK:
                        rw_s.append(r)
                        rw_d.append(wb)
        return [edges(ww_s, ww_d, WW), edges(rw_s, rw_d, RW)]


#: The phase a budget names while version orders are inferred.
_PHASE = "version-orders"


def _kept_order(g: nx.DiGraph, keep: list[int], budget: Budget | None) -> nx.DiGraph:
    """The order ``g`` puts on the versions ``keep`` (``a`` before ``b`` when a path leads
    from one to the other), as a graph on ``keep`` with the same paths between them: an
    edge from each kept version to the first kept ones on its paths (the versions not kept,
    such as unread writes of unknown outcome, are passed through). When ``g`` orders all
    its versions in one chain (the usual inferred order) that is the chain's kept versions
    in turn. A cyclic ``g`` gives its own edges between kept versions."""
    sub = nx.DiGraph()
    sub.add_nodes_from(keep)
    if not nx.is_directed_acyclic_graph(g):
        sub.add_edges_from(g.subgraph(keep).edges)
        return sub
    order = list(nx.topological_sort(g))
    if all(g.has_edge(a, b) for a, b in pairwise(order)):  # a chain: a total order
        kept = set(keep)
        sub.add_edges_from(pairwise(v for v in order if v in kept))
        return sub
    if budget is not None:  # a bitset of the kept versions for each version
        budget.reserve(_PHASE, len(order) * (len(keep) // 8 + 32))
    bit = {v: 1 << i for i, v in enumerate(keep)}
    first: dict[int, int] = {}  # version -> the first kept versions on its paths
    for n, v in enumerate(reversed(order)):
        if budget is not None and n % 1024 == 1023:
            budget.check(_PHASE)
        reach = 0
        for s in g.successors(v):
            b = bit.get(s)
            reach |= first[s] if b is None else b
        first[v] = reach
    for a in keep:
        reach = first[a]
        while reach:
            low = reach & -reach
            sub.add_edge(a, keep[low.bit_length() - 1])
            reach ^= low
    return sub


def _linear_extensions(g: nx.DiGraph, limit: int) -> list[list[int]] | None:
    """The topological orders of ``g``, or ``None`` if there are more than ``limit``."""
    nodes = list(g.nodes)
    if len(nodes) <= 1 or len(g.edges) == len(nodes) * (len(nodes) - 1) // 2:
        return [list(nx.topological_sort(g))]
    out: list[list[int]] = []
    if len(nodes) <= 7:
        pos_ok = list(g.edges)
        for perm in permutations(nodes):
            at = {v: i for i, v in enumerate(perm)}
            if all(at[a] < at[b] for a, b in pos_ok):
                out.append(list(perm))
                if len(out) > limit:
                    return None
        return out
    try:
        for order in nx.all_topological_sorts(g):
            out.append(list(order))
            if len(out) > limit:
                return None
    except nx.NetworkXUnfeasible:
        return []
    return out
