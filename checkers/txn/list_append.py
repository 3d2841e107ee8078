"""list-append: version orders from reads, ww/wr/rw edges, non-cycle anomalies.

A read of ``[1 2 3]`` reveals the versions ``[] → [1] → [1 2] → [1 2 3]`` of its key, and
unique appended elements tell who wrote each. Per key, the longest ok read gives the
version order; every other read must be a prefix of it (else ``incompatible-order``).
An appended element that no read shows is placed after every observed one.

Edges, per mop: **wr** writer of a read's last element → reader; **ww** writer of an
append's predecessor → appender; **rw** every reader of the predecessor state → appender.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from checkers.txn import kernels
from checkers.txn.analysis import Analysis, Step
from checkers.txn.graph import RW, WR, WW, edges
from checkers.txn.parse import READ, WRITE, TxnFormatError, Txns
from harness.history import FAIL, INFO, OK

__all__ = ["analyze"]

I64 = npt.NDArray[np.int64]

#: Most records kept per non-cycle anomaly type (the count is always exact).
MAX_RECORDS = 32


class _Packer:
    """Packs ``(key, value)`` into one int64 code, sortable by key then value."""

    def __init__(self, n_keys: int, vals: list[I64]) -> None:
        allv = [v for v in vals if len(v)]
        lo = min((int(v.min()) for v in allv), default=0)
        hi = max((int(v.max()) for v in allv), default=0)
        self.remap: I64 | None = None
        if max(n_keys, 1) * (hi - lo + 1) < 2**62:
            self.lo, self.span = lo, hi - lo + 1
        else:  # values too spread out: map them to dense ids first
            self.remap = np.unique(np.concatenate(allv))
            self.lo, self.span = 0, len(self.remap)

    def __call__(self, keys: npt.ArrayLike, values: npt.ArrayLike) -> I64:
        k = np.asarray(keys, dtype=np.int64)
        v = np.asarray(values, dtype=np.int64)
        if self.remap is not None:
            v = np.searchsorted(self.remap, v).astype(np.int64)
        return k * self.span + (v - self.lo)


class _Index:
    """Maps int64 codes to payloads: a dense table when the codes are compact enough,
    else a sorted array searched with ``searchsorted``. Absent codes map to -1."""

    def __init__(self, codes: I64, payload: I64) -> None:
        top = int(codes.max()) + 1 if len(codes) else 0
        self.dense: I64 | None = None
        if len(codes) == 0 or top <= DENSE_FACTOR * len(codes) + DENSE_MIN:
            self.dense = np.full(max(top, 1), -1, dtype=np.int64)
            self.dense[codes] = payload
            self.top = top
        else:
            o = np.argsort(codes, kind="stable")
            self.sorted = codes[o]
            self.payload = payload[o].astype(np.int64)

    def __call__(self, codes: I64) -> I64:
        if self.dense is not None:
            inside = (codes >= 0) & (codes < self.top)
            return np.where(inside, self.dense[np.where(inside, codes, 0)], -1)
        return _lookup(self.sorted, self.payload, codes)


#: A dense code table may be this many times larger than the codes it holds (plus a floor).
DENSE_FACTOR, DENSE_MIN = 8, 1 << 20


def _lookup(sorted_codes: I64, payload: I64, codes: I64) -> I64:
    """``payload`` of each code in ``sorted_codes``, or -1 where absent."""
    if len(sorted_codes) == 0:
        return np.full(len(codes), -1, dtype=np.int64)
    i = np.searchsorted(sorted_codes, codes)
    i = np.minimum(i, len(sorted_codes) - 1)
    return np.where(sorted_codes[i] == codes, payload[i], -1).astype(np.int64)


def analyze(tx: Txns, tick: Callable[[str], None] | None = None) -> Analysis:
    """Edges and non-cycle anomalies of a list-append history.

    ``tick("analysis")`` is called between steps (a budget check that may raise)."""
    tick = tick or (lambda phase: None)
    h = tx.history
    an = Analysis(edges=[])
    m = len(tx.m_f)
    ttype = tx.type
    key_name = tx.key_name
    val_name = tx.value_name

    def op(t: int) -> int:
        return int(h.index[tx.op_position(int(t))])

    # --- writer index -------------------------------------------------------------
    am = np.flatnonzero(tx.m_f == WRITE)
    pack = _Packer(len(tx.keys), [tx.m_val[am], tx.elems])
    a_code = pack(tx.m_key[am], tx.m_val[am])
    o = np.argsort(a_code, kind="stable")
    ac_sorted = a_code[o]
    am_sorted = am[o].astype(np.int64)
    dup = np.flatnonzero(ac_sorted[1:] == ac_sorted[:-1])
    if len(dup):
        j1, j2 = int(am_sorted[dup[0]]), int(am_sorted[dup[0] + 1])
        raise TxnFormatError(
            f"{val_name(int(tx.m_val[j1]))!r} is appended to key "
            f"{key_name(int(tx.m_key[j1]))!r} twice (ops {op(tx.m_txn[j1])} and "
            f"{op(tx.m_txn[j2])}); list-append needs unique appended values per key"
        )

    writer_mop = _Index(ac_sorted, am_sorted)
    # Temporaries go as soon as they are used: a million transactions make each of these
    # columns tens of MB, and all of them alive at once were most of the check's memory.
    del a_code, o, ac_sorted, am_sorted
    tick("analysis")

    # --- version orders from the longest read of each key --------------------------
    rm = np.flatnonzero(tx.m_f == READ)
    r_key = tx.m_key[rm].astype(np.int64)
    r_start = tx.m_val[rm]
    r_len = tx.m_len[rm].astype(np.int64)
    r_txn = tx.m_txn[rm].astype(np.int64)
    n_keys = len(tx.keys)
    vo_len = np.zeros(n_keys, dtype=np.int64)
    vo_start = np.zeros(n_keys, dtype=np.int64)
    longest = np.full(n_keys, -1, dtype=np.int64)
    if len(rm):  # the longest read of each key, the first of equally long ones
        top = np.full(n_keys, -1, dtype=np.int64)
        np.maximum.at(top, r_key, r_len)
        best = np.flatnonzero(r_len == top[r_key])
        longest[:] = len(rm)
        np.minimum.at(longest, r_key[best], best)
        longest[longest == len(rm)] = -1
        vo_len[top >= 0] = top[top >= 0]
        del top, best
    np.cumsum(vo_len[:-1], out=vo_start[1:]) if n_keys > 1 else None
    total = int(vo_len.sum())
    has_read = longest >= 0
    lk = np.flatnonzero(has_read)
    src_start = r_start[longest[lk]] if len(lk) else np.empty(0, np.int64)
    idx = np.repeat(src_start - vo_start[lk], vo_len[lk]) + np.arange(total, dtype=np.int64)
    vo_elem = tx.elems[idx] if total else np.empty(0, np.int64)
    vo_key = np.repeat(lk, vo_len[lk]).astype(np.int64)
    del idx, src_start, has_read
    vo_code = pack(vo_key, vo_elem)
    s = np.sort(vo_code)
    dup_keys: set[int] = set()
    if len(s) > 1 and bool((s[1:] == s[:-1]).any()):
        dcodes = s[1:][s[1:] == s[:-1]]
        dup_keys = {int(c // pack.span) for c in dcodes.tolist()}
        vo_elem, vo_key, vo_len, vo_start = _dedupe(vo_elem, vo_key, vo_len, dup_keys)
        vo_code = pack(vo_key, vo_elem)
    vo_pos = np.arange(len(vo_elem), dtype=np.int64) - vo_start[vo_key] + 1
    vo_flat_of = _Index(vo_code, np.arange(len(vo_code), dtype=np.int64))
    vo_wmop = writer_mop(vo_code)
    vo_wtxn = np.where(vo_wmop >= 0, tx.m_txn[np.maximum(vo_wmop, 0)], -1).astype(np.int64)
    vo_wtype = np.where(vo_wtxn >= 0, ttype[np.maximum(vo_wtxn, 0)], -1)
    del vo_code, s

    tick("analysis")
    # --- every read against its key's order -----------------------------------------
    # A read that starts where its key's longest read starts in ``elems`` shares its
    # elements (checkers.txn.elements), so it is a prefix of the key's order: nothing to
    # compare, unless the order had repeated elements dropped.
    compat = r_start == r_start[longest[r_key]]
    if dup_keys:
        compat &= ~np.isin(r_key, np.fromiter(dup_keys, np.int64, len(dup_keys)))
    rest = np.flatnonzero(~compat)
    compat[rest] = kernels.prefix_compatible(
        r_key[rest], r_start[rest], r_len[rest], tx.elems, vo_start, vo_len, vo_elem
    )
    del rest
    r_pos = np.where(compat, r_len, -1).astype(np.int64)
    has = r_len > 0
    if len(tx.elems):
        last = np.where(has, tx.elems[np.maximum(r_start + r_len - 1, 0)], 0)
    else:
        last = np.zeros(len(r_len), dtype=np.int64)
    r_wmop = np.where(has, writer_mop(pack(r_key, last)), -1)
    # (the longest read of a key with repeated elements is one of these: it is longer than
    # its deduplicated order, so its duplicate-elements record is made here, once)
    bad_reads = np.flatnonzero(~compat)
    incompatible: dict[int, list[int]] = {}
    for r in bad_reads.tolist():
        k = int(r_key[r])
        lo_ = int(r_start[r])
        els = tx.elems[lo_ : lo_ + int(r_len[r])]
        uniq = list(dict.fromkeys(els.tolist()))
        if len(uniq) < len(els):
            _dup_record(an, tx, rm[r], k, els, op)
        vo_k = vo_elem[vo_start[k] : vo_start[k] + vo_len[k]].tolist()
        if uniq == vo_k[: len(uniq)]:
            r_pos[r] = len(uniq)
        else:
            incompatible.setdefault(k, []).append(r)
            flat = vo_flat_of(pack(np.full(1, k), last[r : r + 1]))[0]
            r_pos[r] = vo_pos[flat] if flat >= 0 else -1
        # elements written by failed transactions, or by nobody
        wm = writer_mop(pack(np.full(len(els), k), els))
        for e, w in zip(els.tolist(), wm.tolist(), strict=True):
            if w < 0:
                _garbage(an, tx, rm[r], k, e, op)
                break
            if ttype[tx.m_txn[w]] == FAIL:
                _g1a(an, tx, rm[r], k, e, int(tx.m_txn[w]), op)
                break
    for k, rs in sorted(incompatible.items()):
        lo_ = int(vo_start[k])
        longest_v = [val_name(x) for x in vo_elem[lo_ : lo_ + vo_len[k]].tolist()]
        r = rs[0]
        a = [val_name(x) for x in tx.elems[r_start[r] : r_start[r] + r_len[r]].tolist()]
        an.add(
            "incompatible-order",
            {"key": key_name(k), "values": [a, longest_v], "ops": [op(r_txn[r]),
             op(r_txn[int(longest[k])])], "reads": len(rs)},
        )  # fmt: skip

    # aborted and garbage reads among compatible reads: first bad position per key
    for flag, kind in ((vo_wtype == FAIL, "G1a"), (vo_wmop < 0, "garbage-read")):
        if not bool(flag.any()):
            continue
        first_bad = np.full(n_keys, np.iinfo(np.int64).max, dtype=np.int64)
        fb = np.flatnonzero(flag)
        np.minimum.at(first_bad, vo_key[fb], vo_pos[fb])
        hit = np.flatnonzero(compat & (r_len >= first_bad[r_key]))
        for r in hit.tolist():
            k = int(r_key[r])
            flat = int(vo_start[k] + first_bad[k] - 1)
            e = int(vo_elem[flat])
            if kind == "G1a":
                _g1a(an, tx, rm[r], k, e, int(vo_wtxn[flat]), op)
            else:
                _garbage(an, tx, rm[r], k, e, op)
    del vo_wmop, compat, flag, has

    tick("analysis")
    # --- per-transaction checks ----------------------------------------------------
    internal, future, first_rw, nonfinal = kernels.la_txn_scan(
        tx.mop_lo, tx.m_f, tx.m_key, tx.m_val, tx.m_len, tx.elems
    )
    for j in np.flatnonzero(internal).tolist():
        t = int(tx.m_txn[j])
        body, at = tx.value_of(t), int(tx.m_idx[j])
        an.add("internal", {"op": op(t), "mop": body[at], "key": key_name(int(tx.m_key[j])),
                            **_internal_expectation(body, at)})  # fmt: skip
    for j in np.flatnonzero(future).tolist():
        t = int(tx.m_txn[j])
        an.add("future-read", {"op": op(t), "mop": tx.value_of(t)[int(tx.m_idx[j])],
                               "key": key_name(int(tx.m_key[j]))})  # fmt: skip

    # G1b: a read whose last element was not its writer's final append to the key
    w_txn = np.where(r_wmop >= 0, tx.m_txn[np.maximum(r_wmop, 0)], -1).astype(np.int64)
    w_ok = (r_wmop >= 0) & (ttype[np.maximum(w_txn, 0)] != FAIL) & (w_txn != r_txn)
    g1b = np.flatnonzero(w_ok & nonfinal[np.maximum(r_wmop, 0)])
    del r_wmop, nonfinal, internal, future
    for r in g1b.tolist():
        t, w = int(r_txn[r]), int(w_txn[r])
        an.add("G1b", {"op": op(t), "writer": op(w), "key": key_name(int(r_key[r])),
                       "element": val_name(int(last[r]))})  # fmt: skip

    # lost update: two committed transactions read the same version first, then append
    cand = np.flatnonzero(first_rw[rm] & (r_pos >= 0))
    if len(cand):
        code = r_key[cand] * (int(vo_len.max()) + 2) + r_pos[cand]
        oc = np.argsort(code, kind="stable")
        code_s = code[oc]
        same = np.flatnonzero(code_s[1:] == code_s[:-1])
        groups: dict[int, list[int]] = {}
        for i in same.tolist():
            groups.setdefault(int(code_s[i]), [int(cand[oc[i]])]).append(int(cand[oc[i + 1]]))
        for rs in groups.values():
            r0 = rs[0]
            k = int(r_key[r0])
            lo_ = int(r_start[r0])
            an.add("lost-update", {
                "key": key_name(k),
                "value": [val_name(x) for x in tx.elems[lo_ : lo_ + int(r_len[r0])].tolist()],
                "ops": sorted({op(r_txn[r]) for r in rs}),
            })  # fmt: skip

    del first_rw, cand, r_start

    # dirty update: along a key's order, a committed append right after a failed one
    known = np.flatnonzero((vo_wtype >= 0) & (vo_wtype != INFO))
    if len(known) > 1:
        a_, b_ = known[:-1], known[1:]
        dirty = (vo_key[a_] == vo_key[b_]) & (vo_wtype[a_] == FAIL) & (vo_wtype[b_] == OK)
        for i in np.flatnonzero(dirty).tolist():
            x, y = int(a_[i]), int(b_[i])
            an.add("dirty-update", {
                "key": key_name(int(vo_key[x])), "failed": op(vo_wtxn[x]),
                "committed": op(vo_wtxn[y]),
                "elements": [val_name(int(vo_elem[x])), val_name(int(vo_elem[y]))],
            })  # fmt: skip

    tick("analysis")
    # --- edges -------------------------------------------------------------------------
    wr = np.flatnonzero(w_ok)
    an.edges.append(edges(w_txn[wr], r_txn[wr], WR))
    del wr, w_ok, known
    va = am[ttype[tx.m_txn[am]] != FAIL]
    n_appends = len(am)
    del am
    a_key = tx.m_key[va].astype(np.int64)
    a_flat = vo_flat_of(pack(a_key, tx.m_val[va]))
    pred = np.where(a_flat >= 0, _take(vo_pos, a_flat) - 1, vo_len[a_key])
    a_txn = tx.m_txn[va].astype(np.int64)
    has_pred = pred >= 1
    pflat = vo_start[a_key] + pred - 1
    pw = np.where(has_pred, _take(vo_wtxn, pflat), -1)
    okw = (pw >= 0) & (ttype[np.maximum(pw, 0)] != FAIL)
    an.edges.append(edges(pw[okw], a_txn[okw], WW))
    del has_pred, pflat, pw, okw
    _own_append_order(an, tx, va, a_key, a_flat, op)
    must = ttype == OK
    seen_info = a_txn[(a_flat >= 0) & (ttype[a_txn] == INFO)]
    must[seen_info] = True
    an.must_happen = must
    del seen_info, a_flat, vo_key, vo_pos, vo_flat_of, vo_wtype, writer_mop, last, longest
    # rw: readers of (key, pred) → appender (temporaries freed as soon as used: this is
    # where the check holds the most)
    P = int(vo_len.max(initial=0)) + 2
    rv = np.flatnonzero(r_pos >= 0)
    rcode = r_key[rv] * P + r_pos[rv]
    orr = np.argsort(rcode, kind="stable")
    rtx_s = r_txn[rv[orr]]
    del rv
    acode = a_key * P + pred
    if n_keys * P <= DENSE_FACTOR * len(rcode) + DENSE_MIN:  # codes compact: count them
        first = np.zeros(n_keys * P + 1, dtype=np.int64)
        np.cumsum(np.bincount(rcode, minlength=n_keys * P), out=first[1:])
        del rcode, orr
        lo, cnt = first[acode], first[acode + 1]
        del first
    else:
        rcode_s = rcode[orr]
        del rcode, orr
        lo = np.searchsorted(rcode_s, acode, "left")
        cnt = np.searchsorted(rcode_s, acode, "right")
        del rcode_s
    del acode
    cnt -= lo
    tot = int(cnt.sum())
    lo -= np.cumsum(cnt) - cnt  # each appender's first reader, less its edges' offset
    rix = np.repeat(lo, cnt)
    del lo
    rix += np.arange(tot, dtype=np.int64)
    src = rtx_s[rix]
    del rix, rtx_s
    an.edges.append(edges(src, np.repeat(a_txn, cnt), RW))
    del src, cnt, a_key, a_txn

    an.stats = {"reads": len(rm), "appends": n_appends, "read_elements": int(r_len.sum()),
                "keys": n_keys}  # fmt: skip

    # --- explanations (per mop, for the few edges on reported cycles) -----------------
    # (32 bits: positions in a key's order and transaction numbers fit)
    mop_pos = np.full(m, -2, dtype=np.int32)
    mop_pos[rm] = r_pos
    mop_pred = np.full(m, -2, dtype=np.int32)
    mop_pred[va] = pred
    mop_wtxn = np.full(m, -1, dtype=np.int32)
    mop_wtxn[rm] = w_txn
    del r_pos, pred, w_txn

    def mops(t: int) -> range:
        return range(int(tx.mop_lo[t]), int(tx.mop_lo[t + 1]))

    def element_at(k: int, pos: int) -> Any:
        return val_name(int(vo_elem[vo_start[k] + pos - 1]))

    def explain(a: int, b: int, rel: int) -> Step | None:
        if rel == WR:
            for j in mops(b):
                if tx.m_f[j] == READ and mop_wtxn[j] == a:
                    k = int(tx.m_key[j])
                    e = val_name(int(tx.elems[tx.m_val[j] + tx.m_len[j] - 1]))
                    return {"type": "wr", "key": key_name(k), "value": e,
                            "text": f"{{b}} observed {{a}}'s append of {e!r} to key "
                                    f"{key_name(k)!r}"}  # fmt: skip
        elif rel == WW:
            for j in mops(b):
                p = int(mop_pred[j])
                k = int(tx.m_key[j])
                if p >= 1 and vo_wtxn[vo_start[k] + p - 1] == a:
                    e1, e2 = element_at(k, p), val_name(int(tx.m_val[j]))
                    return {"type": "ww", "key": key_name(k), "value": e1, "value2": e2,
                            "text": f"{{b}} appended {e2!r} after {{a}} appended {e1!r} to "
                                    f"key {key_name(k)!r}"}  # fmt: skip
        elif rel == RW:
            # b's appends by (key, position after): one pass over each transaction, not
            # one over b per read of a (quadratic in two large transactions)
            appends: dict[tuple[int, int], int] = {}
            for j in mops(b):
                if tx.m_f[j] == WRITE:
                    appends.setdefault((int(tx.m_key[j]), int(mop_pred[j])), j)
            for i in mops(a):
                if tx.m_f[i] != READ or mop_pos[i] < 0:
                    continue
                k = int(tx.m_key[i])
                j = appends.get((k, int(mop_pos[i])), -1)
                if j >= 0:
                    e2 = val_name(int(tx.m_val[j]))
                    if mop_pos[i] == 0:
                        text = (
                            f"{{a}} observed the initial (empty) state of key "
                            f"{key_name(k)!r}, which {{b}} changed by appending {e2!r}"
                        )
                    else:
                        text = (
                            f"{{a}} did not observe {{b}}'s append of {e2!r} to key "
                            f"{key_name(k)!r}"
                        )
                    return {"type": "rw", "key": key_name(k), "value2": e2, "text": text}
        return None

    an.explain = explain
    return an


def _take(arr: I64, idx: I64) -> I64:
    """``arr[idx]`` where ``idx >= 0``, else -1 (also when ``arr`` is empty)."""
    if len(arr) == 0:
        return np.full(len(idx), -1, dtype=np.int64)
    return np.where(idx >= 0, arr[np.clip(idx, 0, len(arr) - 1)], -1)


def _dedupe(
    vo_elem: I64, vo_key: I64, vo_len: I64, dup_keys: set[int]
) -> tuple[I64, I64, I64, I64]:
    """The version orders with repeated elements of ``dup_keys`` dropped (first kept)."""
    keep = np.ones(len(vo_elem), dtype=bool)
    starts = np.zeros(len(vo_len), dtype=np.int64)
    np.cumsum(vo_len[:-1], out=starts[1:]) if len(vo_len) > 1 else None
    for k in dup_keys:
        seen: set[int] = set()
        for i in range(int(starts[k]), int(starts[k] + vo_len[k])):
            e = int(vo_elem[i])
            if e in seen:
                keep[i] = False
            seen.add(e)
    vo_elem, vo_key = vo_elem[keep], vo_key[keep]
    new_len = np.bincount(vo_key, minlength=len(vo_len)).astype(np.int64)
    new_start = np.zeros(len(vo_len), dtype=np.int64)
    np.cumsum(new_len[:-1], out=new_start[1:]) if len(vo_len) > 1 else None
    return vo_elem, vo_key, new_len, new_start


def _own_append_order(an: Analysis, tx: Txns, va: I64, a_key: I64, a_flat: I64, op: Any) -> None:
    """``out-of-order-appends``: a transaction's appends to one key must show up in the
    order it made them, and none after one that no read shows (a self ww cycle: G0)."""
    a_txn = tx.m_txn[va].astype(np.int64)
    nk = max(len(tx.keys), 1)
    if len(a_txn) and int(a_txn[-1]) < 2**62 // nk:
        # mops are in transaction order, so by (transaction, key), ties in mop order
        o = np.argsort(a_txn * nk + a_key, kind="stable")
    else:
        o = np.lexsort((va, a_key, a_txn))
    t_s, k_s, f_s = a_txn[o], a_key[o], a_flat[o]
    same = (t_s[1:] == t_s[:-1]) & (k_s[1:] == k_s[:-1])
    bad = same & (f_s[1:] >= 0) & ((f_s[:-1] < 0) | (f_s[1:] <= f_s[:-1]))
    for n, i in enumerate(np.unique(t_s[1:][bad] * nk + k_s[1:][bad]).tolist()):
        t, k = divmod(int(i), nk)
        if n >= MAX_RECORDS:
            an.add("out-of-order-appends", {"op": op(t), "key": tx.key_name(k)})
            continue
        mine = tx.m_val[va][(a_txn == t) & (a_key == k)].tolist()
        an.add("out-of-order-appends", {
            "op": op(t), "key": tx.key_name(k),
            "appended": [tx.value_name(x) for x in mine],
            "text": "the transaction's appends to this key are read out of the order it "
                    "made them, or a later one without an earlier one",
        })  # fmt: skip


def _dup_record(an: Analysis, tx: Txns, j: int, k: int, els: I64, op: Any) -> None:
    t = int(tx.m_txn[j])
    vals = els.tolist()
    dups = sorted({tx.value_name(x) for x in vals if vals.count(x) > 1}, key=repr)
    an.add("duplicate-elements", {"op": op(t), "key": tx.key_name(k),
                                  "value": [tx.value_name(x) for x in vals],
                                  "duplicates": dups})  # fmt: skip


def _g1a(an: Analysis, tx: Txns, j: int, k: int, e: int, writer: int, op: Any) -> None:
    an.add("G1a", {"op": op(int(tx.m_txn[j])), "writer": op(writer), "key": tx.key_name(k),
                   "element": tx.value_name(e)})  # fmt: skip


def _garbage(an: Analysis, tx: Txns, j: int, k: int, e: int, op: Any) -> None:
    an.add("garbage-read", {"op": op(int(tx.m_txn[j])), "key": tx.key_name(k),
                            "element": tx.value_name(e)})  # fmt: skip


def _internal_expectation(mops: list[Any], at: int) -> dict[str, Any]:
    """What the read ``mops[at]`` should have held, from its own transaction (Elle's
    ``:expected``): ``earlier`` is the transaction's last read of that key before it (None if
    none) and ``expected`` that read's list plus the elements appended since; without an
    earlier read only the end of the list is known: ``expected_suffix``, the appends."""
    key = mops[at][1]
    earlier, appended = None, []
    for mop in reversed(mops[:at]):
        if mop[1] != key:
            continue
        if mop[0] == "r":
            earlier = mop
            break
        appended.append(mop[2])
    appended.reverse()
    if earlier is None:
        return {"earlier": None, "expected_suffix": appended}
    return {"earlier": earlier, "expected": list(earlier[2] or []) + appended}
