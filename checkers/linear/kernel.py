"""The compiled search: Wing & Gong with Lowe's just-in-time linearisation, in Numba.

Everything here works on integer arrays prepared by :mod:`checkers.linear.prepare`; see
:mod:`checkers.linear` for the algorithm in prose. The kernel checks one partition (one key,
usually) and is safe to run in several threads at once (``nogil``).

State is a small vector of int64 (width 1 for registers; one slot per key for an
unpartitioned kv store; bit words for sets; length + items for queues). A model whose
reachable states are few is first turned into a transition table ``T[state, op class]``
(``build_table``), and the search then steps by one load.
"""

from __future__ import annotations

import numpy as np

from checkers._numba import load_now, njit

# Result codes of ``search``.
INVALID = 0
VALID = 1
STOPPED = 2  # the stop flag was raised: time limit, or a sibling partition failed
OUT_OF_MEMORY = 3  # the cache would outgrow its byte budget
OUT_OF_STEPS = 4  # the deterministic step budget ran out

# Opcodes. ``a`` and ``b`` are the op's integer arguments; ``slot`` is the state slot it
# touches (the key, when one state holds several keys).
OP_READ = 1  # legal iff s == a
OP_WRITE = 2  # s := a
OP_CAS = 3  # legal iff s == a; s := b
OP_CAS_NOT = 4  # legal iff s != a (an observed failed cas); no change
OP_CAS_MAYBE = 5  # always legal; if s == a then s := b (cas with unknown outcome)
OP_ACQUIRE = 6  # legal iff s == 0; s := 1
OP_RELEASE = 7  # legal iff s == 1; s := 0
OP_APPEND = 8  # s := s · a, over double polynomial hashes; b holds 256^len(a)
OP_SET_ADD = 9  # word a of the state |= bit mask b
OP_SET_READ = 10  # the state equals row a of aux
OP_ENQUEUE = 11  # state = [len, items...]; push a
OP_DEQUEUE = 12  # legal iff the head is a; pop
OP_DEQUEUE_EMPTY = 13  # legal iff the queue is empty
OP_DEQUEUE_ANY = 14  # pop the head if any (a dequeue with unknown outcome)
OP_MULTI = 15  # row a of aux is (rmask, rval, wmask, wval): legal iff s & rmask == rval;
#               s := (s & ~wmask) | wval (a multi-register txn over a packed state)

# Kinds of ops (the ``optional`` array of ``search``): which ops must take effect, and for
# those that need not, the order the search tries them in (see ``search``).
REQUIRED = 0
SEEN = 1  # optional; someone saw its effect: tried in time order like a required op
UNSEEN = 2  # optional; tried only where the scan reaches a deadline
DEAD = 3  # optional; nobody can see its effect: tried only to unblock a failed cas
BLANK = 4  # a DEAD write whose value no failed cas names either: any two are interchangeable,
#           so where one was tried in vain, the others are not tried

# Two 31-bit primes for string hashes: a string is the big-endian integer of b"\x01" + its
# bytes, reduced modulo each prime; the pair is packed as (h1 << 31) | h2.
P1 = 2147483647
P2 = 2147483629
MASK31 = (1 << 31) - 1

_STEP_POLL = 0xFFFF  # poll the stop flag every 65,536 iterations
# Most puts a gate keeps a list of (see ``_gate_puts``); a gate with more uses the count of
# every put called before it.
_GATE_MAX_PUTS = 16


# These four small helpers carry no signature: they are compiled into the kernels that
# call them (and cached inside those), so a process that loads the kernels from the cache
# does not load each of them on its own at start-up, for nothing.
@njit(cache=True, nogil=True)
def _mix(x):  # pragma: no cover - compiled
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True, nogil=True)
def _state_hash(st, sw):  # pragma: no cover - compiled
    h = np.uint64(0x9E3779B97F4A7C15)
    for k in range(sw):
        h = _mix(h ^ np.uint64(st[k]))
    return h


@njit(cache=True, nogil=True)
def apply_op(opc, a, b, slot, aux, cur, nxt, sw):  # pragma: no cover - compiled
    """Write the state after the op into ``nxt``; return whether the op is legal in ``cur``."""
    for k in range(sw):
        nxt[k] = cur[k]
    s = cur[slot]
    if opc == OP_READ:
        return s == a
    if opc == OP_WRITE:
        nxt[slot] = a
        return True
    if opc == OP_CAS:
        if s != a:
            return False
        nxt[slot] = b
        return True
    if opc == OP_CAS_NOT:
        return s != a
    if opc == OP_CAS_MAYBE:
        if s == a:
            nxt[slot] = b
        return True
    if opc == OP_ACQUIRE:
        if s != 0:
            return False
        nxt[slot] = 1
        return True
    if opc == OP_RELEASE:
        if s != 1:
            return False
        nxt[slot] = 0
        return True
    if opc == OP_APPEND:
        h1 = ((s >> 31) * (b >> 31) + (a >> 31)) % P1
        h2 = ((s & MASK31) * (b & MASK31) + (a & MASK31)) % P2
        nxt[slot] = (h1 << 31) | h2
        return True
    if opc == OP_SET_ADD:
        nxt[slot + a] = cur[slot + a] | b
        return True
    if opc == OP_SET_READ:
        for k in range(sw):
            if cur[k] != aux[a, k]:
                return False
        return True
    if opc == OP_ENQUEUE:
        n = cur[0]
        if n >= sw - 1:
            return False
        nxt[1 + n] = a
        nxt[0] = n + 1
        return True
    if opc == OP_DEQUEUE or opc == OP_DEQUEUE_ANY:
        n = cur[0]
        if n == 0:
            return opc == OP_DEQUEUE_ANY
        if opc == OP_DEQUEUE and cur[1] != a:
            return False
        for k in range(1, n):
            nxt[k] = cur[k + 1]
        nxt[n] = 0
        nxt[0] = n - 1
        return True
    if opc == OP_DEQUEUE_EMPTY:
        return cur[0] == 0
    if opc == OP_MULTI:
        if (s & aux[a, 0]) != aux[a, 1]:
            return False
        nxt[slot] = (s & ~aux[a, 2]) | aux[a, 3]
        return True
    return False


@njit(cache=True, nogil=True)
def _has_op(opc, code):  # pragma: no cover - compiled
    """Whether any op has opcode ``code``."""
    for k in range(opc.shape[0]):
        if opc[k] == code:
            return True
    return False


@njit(cache=True, nogil=True)
def _observes(opc, a, b):  # pragma: no cover - compiled
    """Whether the op never changes the state, in any state where it is legal."""
    if opc == OP_READ or opc == OP_CAS_NOT or opc == OP_SET_READ or opc == OP_DEQUEUE_EMPTY:
        return True
    return (opc == OP_CAS or opc == OP_CAS_MAYBE) and a == b


@njit(
    "Tuple((int32[:, ::1], int32[::1]))(int64[::1], int64[::1], int64[::1], int64,"
    " int64[:, ::1], int64, int64)",
    cache=True,
    nogil=True,
)
def build_table(opc, arg_a, arg_b, init, aux, max_states, max_cells):  # pragma: no cover
    """Group the ops into classes (equal opc, a, b) and BFS the reachable states.

    Returns ``(T, cls)``: ``T[state, class]`` is the next state id or -1 (illegal), state 0
    is ``init``; ``cls[op]`` is the op's class. ``T`` has 0 rows when more than
    ``max_states`` states are reachable or the table would have more than ``max_cells``
    cells (the step function is used then: a table as large as states x classes would
    cost more to build than the search saves). Only for width-1 states.
    """
    n = opc.shape[0]
    cls = np.empty(n, np.int32)
    ccap = 16
    while ccap < 2 * n:
        ccap *= 2
    cmask = np.uint64(ccap - 1)
    c_slot = np.full(ccap, -1, np.int32)
    cls_op = np.empty(n, np.int32)  # a representative op of each class
    ncls = 0
    for i in range(n):
        hk = _mix(np.uint64(opc[i]) ^ _mix(np.uint64(arg_a[i]) ^ _mix(np.uint64(arg_b[i]))))
        j = np.int64(hk & cmask)
        while c_slot[j] >= 0:
            r = cls_op[c_slot[j]]
            if opc[r] == opc[i] and arg_a[r] == arg_a[i] and arg_b[r] == arg_b[i]:
                break
            j = (j + 1) & (ccap - 1)
        if c_slot[j] < 0:
            c_slot[j] = ncls
            cls_op[ncls] = i
            ncls += 1
        cls[i] = c_slot[j]
    max_states = min(max_states, max_cells // max(ncls, 1))
    if max_states < 2:
        return np.empty((0, ncls), np.int32), cls

    scap = min(64, max_states)  # state capacity; grows by doubling up to max_states
    cap = 256  # hash slots, kept at >= 4x the state capacity
    mask = np.uint64(cap - 1)
    keys = np.empty(cap, np.int64)
    ids = np.full(cap, -1, np.int32)
    states = np.empty(scap, np.int64)
    table = np.full((scap, ncls), -1, np.int32)
    cur = np.empty(1, np.int64)
    nxt = np.empty(1, np.int64)
    states[0] = init
    idx = np.int64(_mix(np.uint64(init)) & mask)
    keys[idx] = init
    ids[idx] = 0
    nstates = 1
    i = 0
    while i < nstates:
        cur[0] = states[i]
        for c in range(ncls):
            r = cls_op[c]
            if not apply_op(opc[r], arg_a[r], arg_b[r], 0, aux, cur, nxt, 1):
                continue
            v = nxt[0]
            idx = np.int64(_mix(np.uint64(v)) & mask)
            while ids[idx] >= 0 and keys[idx] != v:
                idx = (idx + 1) & (cap - 1)
            if ids[idx] < 0:
                if nstates == max_states:
                    return np.empty((0, ncls), np.int32), cls
                if nstates == scap:
                    scap = min(2 * scap, max_states)
                    grown = np.full((scap, ncls), -1, np.int32)
                    grown[:nstates] = table[:nstates]
                    table = grown
                    more = np.empty(scap, np.int64)
                    more[:nstates] = states[:nstates]
                    states = more
                    while cap < 4 * scap:  # a power of two: probes use cap - 1 as a mask
                        cap *= 2
                    mask = np.uint64(cap - 1)
                    keys = np.empty(cap, np.int64)
                    ids = np.full(cap, -1, np.int32)
                    for s in range(nstates):
                        j = np.int64(_mix(np.uint64(states[s])) & mask)
                        while ids[j] >= 0:
                            j = (j + 1) & (cap - 1)
                        keys[j] = states[s]
                        ids[j] = s
                    idx = np.int64(_mix(np.uint64(v)) & mask)
                    while ids[idx] >= 0:
                        idx = (idx + 1) & (cap - 1)
                keys[idx] = v
                ids[idx] = nstates
                states[nstates] = v
                nstates += 1
            table[i, c] = ids[idx]
        i += 1
    return table[:nstates].copy(), cls


@njit(
    "int32[::1](int32[::1], int32[::1], int64, int64[::1], int64[::1], int64[::1],"
    " int64[::1], int64[:, ::1], int64[::1], int32[::1])",
    cache=True,
    nogil=True,
)
def _gate_puts(
    order, gate_op, ngate, gate_rank, opc, arg_a, arg_b, aux, rel_lo, rel_n
):  # pragma: no cover - compiled
    """For each gate, the puts called before its return whose string is a prefix of what
    it returned (their hash is among the gate's prefix hashes), as ``rel[rel_lo[g]:][:
    rel_n[g]]`` with ``rel`` returned. Only those can still reset the state to one that
    appends extend into the gate's string: after a put of any other string no append
    makes the state a prefix again. ``rel_n[g]`` is -1 (the gate counts every put called
    before it instead) where the list would be longer than ``_GATE_MAX_PUTS`` or the
    work, bounded by a few dozen passes over the entries, ran out."""
    m = order.shape[0]
    nput = 0
    for k in range(m):
        if order[k] & 1 == 0 and opc[order[k] >> 1] == OP_WRITE:
            nput += 1
    put_hash = np.empty(nput, np.int64)
    put_op = np.empty(nput, np.int32)
    put_rank = np.empty(nput, np.int64)
    j = 0
    for k in range(m):
        if order[k] & 1 == 0 and opc[order[k] >> 1] == OP_WRITE:
            put_hash[j] = arg_a[order[k] >> 1]
            put_op[j] = order[k] >> 1
            put_rank[j] = k
            j += 1
    by_hash = np.argsort(put_hash, kind="mergesort")
    put_hash = put_hash[by_hash]
    put_op = put_op[by_hash]
    put_rank = put_rank[by_hash]
    rel = np.empty(min(_GATE_MAX_PUTS * ngate, 4 * m + 64), np.int32)
    used = 0
    work = 0
    budget = 64 * m + 4096
    for gi in range(ngate):
        rel_lo[gi] = used
        rel_n[gi] = -1
        if work > budget:
            continue
        g = gate_op[gi]
        off = arg_b[g] >> 24
        cnt = arg_b[g] & 0xFFFFFF
        start = used
        ok = True
        if nput <= cnt:  # each put: is its hash among the gate's prefix hashes?
            work += nput
            for j in range(nput):
                if put_rank[j] > gate_rank[gi]:
                    continue
                lo = off
                hi = off + cnt
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if aux[0, mid] < put_hash[j]:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo < off + cnt and aux[0, lo] == put_hash[j]:
                    if used - start == _GATE_MAX_PUTS or used == rel.shape[0]:
                        ok = False
                        break
                    rel[used] = put_op[j]
                    used += 1
        else:  # each prefix hash: which puts have it?
            work += cnt
            for t in range(off, off + cnt):
                lo = 0
                hi = nput
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if put_hash[mid] < aux[0, t]:
                        lo = mid + 1
                    else:
                        hi = mid
                while ok and lo < nput and put_hash[lo] == aux[0, t]:
                    if put_rank[lo] < gate_rank[gi]:
                        if used - start == _GATE_MAX_PUTS or used == rel.shape[0]:
                            ok = False
                            break
                        rel[used] = put_op[lo]
                        used += 1
                    lo += 1
                if not ok:
                    break
        if ok:
            rel_n[gi] = used - start
        else:
            used = start
    return rel[:used]


@njit(
    "int64(int32[::1], uint8[::1], int64[::1], int64[::1], int64[::1], int64[::1], int32[::1],"
    " int64[:, ::1], int32[:, ::1], boolean, int64[::1], uint64[::1], uint64[::1], boolean,"
    " int64, int64, int64[::1], int64[::1], int32[::1], boolean)",
    cache=True,
    nogil=True,
)
def search(  # pragma: no cover - compiled
    order,
    optional,
    opc,
    arg_a,
    arg_b,
    slot,
    cls,
    aux,
    table,
    use_table,
    init,
    zob,
    zob2,
    exact,
    max_bytes,
    max_steps,
    stop,
    stats,
    best,
    record,
):
    """Decide whether one partition is linearizable. Returns one of the result codes.

    ``order`` lists the 2n entries in real-time order as ``op * 2 + is_return``; the returns
    of ``optional`` ops (outcome unknown: ``optional`` is 1 to 4) come last. Candidates
    are tried in time order, except that optional ops of kind 2 (nobody is known to have
    seen their effect) are tried only where the scan reaches a deadline, and those of
    kinds 3 and 4 (their effect cannot be seen) only there and only when a failed cas is
    blocked by the current state (:mod:`checkers.linear.prepare` says why that is enough);
    of kind 4 (blank writes, interchangeable) only the earliest called is tried there. With
    ``exact`` the cache stores each set of linearized required ops as a bitset; otherwise
    as a fingerprint, its Zobrist hashes under ``zob`` and ``zob2`` (127 bits, as the key's
    low bit marks used rows), which keeps entries small on long histories; the optional
    ops linearized are an exact set (an id into an arena of distinct sets), and a
    configuration is pruned when a visited one has the same required ops and state and
    a subset of its optional ops. ``stats`` receives
    [steps, cache entries, cache bytes, depth reached]. ``best`` receives the witness order
    when VALID, and with ``record`` the longest linearizable prefix seen, whose length is
    ``stats[3]``.
    """
    n = opc.shape[0]
    sw = init.shape[0]
    nw = (n + 63) >> 6
    m = 2 * n
    late_head = m + 1
    dead_head = m + 2
    blank_head = m + 3

    # Four entry lists. The main one (node 0 is its head, node k + 1 holds entry k, so
    # node numbers follow time) holds the entries of required ops and of optional ops of
    # kind 1; the late list (head ``late_head``) holds only the calls of optional ops of
    # kind 2, tried only where the main scan reaches a deadline; the blank and dead lists
    # (``blank_head``, ``dead_head``) the calls of kinds 4 and 3, tried after the late
    # ones and only when a failed cas among the candidates is blocked by the current
    # state: the first blank one only (blank writes are interchangeable, and the
    # earliest called can stand wherever any other could), then the dead ones.
    nxt = np.empty(m + 4, np.int32)
    prv = np.empty(m + 4, np.int32)
    op_of = np.empty(m + 4, np.int32)
    is_call = np.empty(m + 4, np.uint8)
    match = np.full(m + 4, -1, np.int32)
    call_node = np.empty(n, np.int32)
    # A dead op (kind 3) writes a value that no op reads or expects: it can only matter
    # where a failed cas (an observation that the register does not hold ``a``) is
    # blocked by the current state, so it is tried only there.
    has_cas_not = _has_op(opc, OP_CAS_NOT)
    # A dead write stands where a blank one could once every failed cas that names its
    # value has been placed: ``ent_of`` maps dead writes, ``names`` failed cas ops, to
    # their (slot, value) entry, and ``pending`` counts the entry's failed cas not placed.
    ent_of = np.full(n, -1, np.int32)
    names = np.full(n, -1, np.int32)
    pending = np.zeros(n + 1, np.int32)
    if has_cas_not:
        ndead = 0
        for k in range(n):
            if optional[k] == DEAD and opc[k] == OP_WRITE:
                ndead += 1
        if ndead > 0:
            ecap = 16
            while ecap < 4 * ndead:
                ecap *= 2
            e_slot = np.empty(ecap, np.int64)
            e_val = np.empty(ecap, np.int64)
            e_id = np.full(ecap, -1, np.int32)
            nent = 0
            for pass_ in range(2):
                for k in range(n):
                    if pass_ == 0 and not (optional[k] == DEAD and opc[k] == OP_WRITE):
                        continue
                    if pass_ == 1 and not (
                        opc[k] == OP_CAS_NOT
                        or opc[k] == OP_CAS_MAYBE
                        or opc[k] == OP_CAS
                        or opc[k] == OP_READ
                    ):
                        continue
                    hk = _mix(np.uint64(slot[k]) ^ _mix(np.uint64(arg_a[k])))
                    ej = np.int64(hk & np.uint64(ecap - 1))
                    while e_id[ej] >= 0 and (e_slot[ej] != slot[k] or e_val[ej] != arg_a[k]):
                        ej = (ej + 1) & (ecap - 1)
                    if pass_ == 0:
                        if e_id[ej] < 0:
                            e_slot[ej] = slot[k]
                            e_val[ej] = arg_a[k]
                            e_id[ej] = nent
                            nent += 1
                        ent_of[k] = e_id[ej]
                    elif e_id[ej] >= 0 and opc[k] == OP_CAS_NOT:
                        names[k] = e_id[ej]
                        pending[e_id[ej]] += 1
                    elif e_id[ej] >= 0:  # an op of unknown outcome expects it: never blank
                        pending[e_id[ej]] += n + 1
    last = 0
    last_late = late_head
    last_dead = dead_head
    last_blank = blank_head
    for head in (0, late_head, dead_head, blank_head):
        nxt[head] = -1
        prv[head] = -1
        op_of[head] = -1
        is_call[head] = 0
    for k in range(m):
        e = order[k]
        node = k + 1
        op = e >> 1
        op_of[node] = op
        is_call[node] = 1 - (e & 1)
        nxt[node] = -1
        prv[node] = -1
        if e & 1 == 0:
            call_node[op] = node
        if optional[op] == 2:
            if e & 1 == 0:
                nxt[last_late] = node
                prv[node] = last_late
                last_late = node
            continue
        if optional[op] == DEAD:
            if e & 1 == 0 and has_cas_not:
                nxt[last_dead] = node
                prv[node] = last_dead
                last_dead = node
            continue
        if optional[op] == BLANK:
            if e & 1 == 0 and has_cas_not:
                nxt[last_blank] = node
                prv[node] = last_blank
                last_blank = node
            continue
        nxt[last] = node
        prv[node] = last
        last = node
    for node in range(1, m + 1):
        if is_call[node] == 0 and optional[op_of[node]] < 2:
            c = call_node[op_of[node]]
            match[c] = node
            match[node] = c

    # Gates (kv with appends: ``lower`` put the sorted hashes of every prefix of an ok
    # get's string in ``aux`` and where in its ``b``): the required gets in order of their
    # returns, and how many puts are called before each return. While a gate is pending
    # and all those puts are placed, no put can come before it any more (an op called
    # after its return cannot precede it), only appends, which extend the string: so the
    # state must be a prefix of what the gate returned, or the branch is dead. (Hashes of
    # equal strings are equal, so a prefix is never pruned.) Puts of a string that is not
    # a prefix of the gate's cannot help it (``_gate_puts``): where the gate lists the
    # others, it waits only for those to be placed.
    gate_op = np.empty(n, np.int32)
    gate_need = np.empty(n, np.int32)
    gate_of = np.full(n, -1, np.int32)
    gate_rank = np.empty(n, np.int64)
    ngate = 0
    has_append = _has_op(opc, OP_APPEND)
    if sw == 1 and has_append and not use_table:
        puts = 0
        for k in range(m):
            e = order[k]
            op = e >> 1
            if e & 1 == 0:
                if opc[op] == OP_WRITE:
                    puts += 1
            elif optional[op] == REQUIRED and opc[op] == OP_READ and arg_b[op] > 0:
                gate_of[op] = ngate
                gate_op[ngate] = op
                gate_need[ngate] = puts
                gate_rank[ngate] = k
                ngate += 1
    gate_rel_lo = np.empty(ngate, np.int64)
    gate_rel_n = np.empty(ngate, np.int32)
    gate_rel = np.empty(0, np.int32)
    if ngate > 0:
        gate_rel = _gate_puts(
            order, gate_op, ngate, gate_rank, opc, arg_a, arg_b, aux, gate_rel_lo, gate_rel_n
        )
    gate_first = 0  # the first gate not placed
    puts_placed = 0

    # Queue order (a FIFO queue of unique values): a value dequeued by a call made after
    # another value's dequeue returned left the queue after it, so it was enqueued after
    # it too. ``qlist`` holds the enqueues of the values enqueued once and dequeued once
    # (ok), in the order their dequeues returned; ``qpos[op]`` is an enqueue's place
    # there, and ``qneed[op]`` how many of the list (the values whose dequeue returned
    # before its own value's dequeue was called) must be placed before it can be. So a
    # wrong order of concurrent enqueues dies when the next enqueue is tried, not once
    # the dequeues far later find the wrong head.
    qpos = np.full(n, -1, np.int32)
    qneed = np.zeros(n, np.int32)
    qlist = np.empty(0, np.int32)
    nq = 0
    has_queue = _has_op(opc, OP_ENQUEUE)
    if has_queue and not use_table:
        maxid = 0
        for k in range(n):
            if (opc[k] == OP_ENQUEUE or opc[k] == OP_DEQUEUE) and arg_a[k] > maxid:
                maxid = arg_a[k]
        ndeq = np.zeros(maxid + 1, np.int32)
        nenq = np.zeros(maxid + 1, np.int32)
        enq_of = np.full(maxid + 1, -1, np.int32)
        for k in range(n):
            if opc[k] == OP_DEQUEUE and optional[k] == REQUIRED and arg_a[k] >= 0:
                ndeq[arg_a[k]] += 1
            elif opc[k] == OP_ENQUEUE and arg_a[k] >= 0:
                nenq[arg_a[k]] += 1
                enq_of[arg_a[k]] = k
        qlist = np.empty(n, np.int32)
        for k in range(m):
            e = order[k]
            op = e >> 1
            if opc[op] != OP_DEQUEUE or optional[op] != REQUIRED or arg_a[op] < 0:
                continue
            a = arg_a[op]
            if ndeq[a] != 1 or nenq[a] != 1:
                continue
            if e & 1:  # its dequeue returned: later dequeues' values come after it
                qpos[enq_of[a]] = nq
                qlist[nq] = enq_of[a]
                nq += 1
            else:  # its dequeue was called: the values dequeued before come first
                qneed[enq_of[a]] = nq
    qfirst = 0  # how many of ``qlist``, from its start, are placed

    # Values that must be seen (registers): a required read or cas that expects a value
    # can be placed only while the state holds it. Once the state leaves a value that a
    # required op not yet placed expects, and every op that could write that value again
    # is placed, that op can never be placed: the branch is dead, at once rather than at
    # its return. (With unique written values this is every premature overwrite.)
    # ``seen_of[op]`` is the index of the value a required op expects, ``writes_of[op]``
    # of the value an op writes (-1: none, or a value nobody must see); ``to_see`` and
    # ``writers`` count, per value, such ops not placed; ``cur_val`` is the index of the
    # current state's value. Not while recording the longest prefix for an explanation:
    # there a prefix that runs on until an op cannot follow says more than one cut short.
    track = sw == 1 and not use_table and not record
    for k in range(n):
        if opc[k] < OP_READ or opc[k] > OP_CAS_MAYBE:
            track = False
            break
    seen_of = np.full(n, -1, np.int32)
    writes_of = np.full(n, -1, np.int32)
    nval = 0
    vcap = 16
    if track:
        while vcap < 4 * n:
            vcap *= 2
    vkey = np.empty(vcap, np.int64)
    vid = np.full(vcap, -1, np.int32)
    if track:
        for k in range(n):
            if optional[k] == REQUIRED and (opc[k] == OP_READ or opc[k] == OP_CAS):
                vj = np.int64(_mix(np.uint64(arg_a[k])) & np.uint64(vcap - 1))
                while vid[vj] >= 0 and vkey[vj] != arg_a[k]:
                    vj = (vj + 1) & (vcap - 1)
                if vid[vj] < 0:
                    vkey[vj] = arg_a[k]
                    vid[vj] = nval
                    nval += 1
                seen_of[k] = vid[vj]
    to_see = np.zeros(nval + 1, np.int32)
    writers = np.zeros(nval + 1, np.int32)
    cur_val = -1
    if track:
        for k in range(n):
            if seen_of[k] >= 0:
                to_see[seen_of[k]] += 1
            if opc[k] == OP_WRITE or opc[k] == OP_CAS or opc[k] == OP_CAS_MAYBE:
                x = arg_a[k] if opc[k] == OP_WRITE else arg_b[k]
                vj = np.int64(_mix(np.uint64(x)) & np.uint64(vcap - 1))
                while vid[vj] >= 0 and vkey[vj] != x:
                    vj = (vj + 1) & (vcap - 1)
                if vid[vj] >= 0:
                    writes_of[k] = vid[vj]
                    writers[vid[vj]] += 1
        vj = np.int64(_mix(np.uint64(init[0])) & np.uint64(vcap - 1))
        while vid[vj] >= 0 and vkey[vj] != init[0]:
            vj = (vj + 1) & (vcap - 1)
        cur_val = vid[vj]
    stack_val = np.empty(n + 1, np.int32)

    cur = init.copy()
    if use_table:
        cur[0] = 0
    cand = np.empty(sw, np.int64)
    bits = np.zeros(nw, np.uint64)  # every op placed
    rbits = np.zeros(nw if exact else 1, np.uint64)  # the required ops placed
    hr = np.uint64(0)  # the required ops placed, as two Zobrist fingerprints
    hrb = np.uint64(0)

    # A configuration is (required ops placed, optional ops placed, state). One whose
    # optional ops are a subset of another's (same required ops, same state) can do all
    # it can: optional ops need never be placed, and their returns set no deadline. So a
    # configuration is pruned when one it contains was visited: it has no witness that
    # the other lacks (see the module's docs for why a visited one that is still on the
    # stack is fine too). Blank writes are interchangeable (``prepare`` gives them one
    # value), so of those only the number placed counts. The other optional ops get
    # indices; each distinct set of them placed is stored once, in an arena of bitsets
    # (``oset``; set 0 is the empty one), found again by its Zobrist fingerprint.
    oidx = np.full(n, -1, np.int32)
    nopt = 0
    for k in range(n):
        if optional[k] != REQUIRED and optional[k] != BLANK:
            oidx[k] = nopt
            nopt += 1
    no = (nopt + 63) >> 6
    obits = np.zeros(max(no, 1), np.uint64)
    ho = np.uint64(0)
    nblank = 0
    cur_oid = 0
    ocap = 16
    oset = np.zeros((ocap, max(no, 1)), np.uint64)
    nsets = 1
    otcap = 64  # the arena's hash slots (ids, -1 free), kept at >= 2x the sets
    otab = np.full(otcap, -1, np.int32)
    ohash = np.zeros(ocap, np.uint64)
    otab[0] = 0
    stack_oid = np.zeros(n + 1, np.int32)

    # The cache: one row per entry, [key, state words, required ops (bitset words or a
    # second fingerprint), optional set id | blanks placed << 32], so that a probe
    # touches one cache line; key 0 marks a free row. Rows of one (required ops, state)
    # share a key and lie in one probe run.
    nb = nw if exact else 1
    rw = 2 + sw + nb
    entry_bytes = 8 * rw
    cap = 16
    while cap < 4 * n and cap < (1 << 20):
        cap *= 2
    while cap > 16 and cap * entry_bytes > max_bytes:
        cap //= 2
    cache = np.zeros((cap, rw), np.uint64)
    count = 0

    stack_node = np.empty(n + 1, np.int32)
    stack_state = np.empty((n + 1, sw), np.int64)
    stack_forced = np.zeros(n + 1, np.uint8)
    stack_limit = np.zeros(n + 1, np.int32)
    # The slots (keys) whose first blank (or blank-like dead) write was tried at this visit
    # of the dead lists: the others of those slots need not be tried there. A bit each for
    # the first 64 distinct slots (``slot_bit``); beyond those, the first such slot tried.
    slot_bit = np.full(n, -1, np.int64)
    if n > 0:
        uniq = np.unique(slot)
        for k in range(n):
            b = np.searchsorted(uniq, slot[k])
            if b < 64:
                slot_bit[k] = b
    stack_eq = np.zeros(n + 1, np.uint64)
    eq_mask = np.uint64(0)
    stack_eq_slot = np.full(n + 1, -1, np.int64)
    eq_slot = np.int64(-1)
    # ``limit`` is 0 while scanning the main list; in the late list it is the node of the
    # deadline that sent the scan there (late calls after it cannot go next), and minus
    # that node in the dead list.
    limit = 0
    depth = 0
    best_len = 0
    steps = 0
    status = INVALID
    backtrack = False

    node = nxt[0]
    if node == -1:
        status = VALID
    while status == INVALID:
        steps += 1
        if (steps & _STEP_POLL) == 0:
            stats[0] = steps
            stats[1] = count
            stats[3] = depth
            if stop[0] != 0:
                status = STOPPED
                break
            if max_steps > 0 and steps >= max_steps:
                status = OUT_OF_STEPS
                break
        if backtrack:
            if depth == 0:
                break
            depth -= 1
            node = stack_node[depth]
            op = op_of[node]
            bits[op >> 6] &= ~(np.uint64(1) << np.uint64(op & 63))
            if optional[op] == REQUIRED:
                hr ^= zob[op]
                hrb ^= zob2[op]
                if exact:
                    rbits[op >> 6] &= ~(np.uint64(1) << np.uint64(op & 63))
            elif optional[op] == BLANK:
                nblank -= 1
            else:
                obits[oidx[op] >> 6] &= ~(np.uint64(1) << np.uint64(oidx[op] & 63))
                ho ^= zob[op]
            cur_oid = stack_oid[depth]
            if track:
                cur_val = stack_val[depth]
                if seen_of[op] >= 0:
                    to_see[seen_of[op]] += 1
                if writes_of[op] >= 0:
                    writers[writes_of[op]] += 1
            if names[op] >= 0:
                pending[names[op]] += 1
            if opc[op] == OP_WRITE:
                puts_placed -= 1
            if gate_of[op] >= 0 and gate_of[op] < gate_first:
                gate_first = gate_of[op]
            if qpos[op] >= 0 and qpos[op] < qfirst:
                qfirst = qpos[op]
            for k in range(sw):
                cur[k] = stack_state[depth, k]
            r = match[node]
            if r != -1:
                nxt[prv[r]] = r
                if nxt[r] != -1:
                    prv[nxt[r]] = r
            nxt[prv[node]] = node
            if nxt[node] != -1:
                prv[nxt[node]] = node
            # A forced op had no alternative worth trying: keep backtracking.
            if stack_forced[depth] == 0:
                backtrack = False
                limit = stack_limit[depth]
                eq_mask = stack_eq[depth]
                eq_slot = stack_eq_slot[depth]
                if optional[op] == BLANK:
                    # Another blank write here would do just what this one did.
                    node = nxt[dead_head]
                else:
                    node = nxt[node]
            continue
        if limit < 0:
            if node == -1 or node > -limit:
                backtrack = True
                continue
        elif limit > 0:
            if node == -1 or node > limit:
                # The late list is done: the blank and dead ops next, if a failed cas is
                # blocked.
                first_dead = nxt[blank_head]
                if first_dead == -1 or first_dead > limit:
                    first_dead = nxt[dead_head]
                blocked = False
                if first_dead != -1 and first_dead < limit:
                    c = nxt[0]
                    while c != -1 and c < limit:
                        if is_call[c]:
                            co = op_of[c]
                            if opc[co] == OP_CAS_NOT and arg_a[co] == cur[slot[co]]:
                                blocked = True
                                break
                        c = nxt[c]
                if blocked:
                    limit = -limit
                    node = first_dead
                    eq_mask = np.uint64(0)
                    eq_slot = np.int64(-1)
                else:
                    backtrack = True
                continue
        elif node == -1:
            status = VALID
            break
        op = op_of[node]
        if limit < 0 and (optional[op] == BLANK or (ent_of[op] >= 0 and pending[ent_of[op]] == 0)):
            # Blank-like writes of one slot are interchangeable: the first one tried stands
            # for the others of its slot. (Of several keys in one state, --no-partition, a
            # write of another key is not: it changes that key. ``prepare`` makes blank
            # writes dead there, so that the cache tells them apart too.)
            b = slot_bit[op]
            if b >= 0:
                bit = np.uint64(1) << np.uint64(b)
                if eq_mask & bit:
                    node = nxt[node]
                    continue
                eq_mask |= bit
            else:
                if eq_slot == slot[op]:
                    node = nxt[node]
                    continue
                if eq_slot < 0:
                    eq_slot = np.int64(slot[op])
        if not is_call[node]:
            if optional[op]:
                # Only ops with unknown outcomes remain; they may never have happened.
                status = VALID
                break
            # A deadline: the late list next (and then the dead one, from there).
            limit = node
            node = nxt[late_head]
            continue
        if qneed[op] > qfirst:
            node = nxt[node]  # an enqueue whose value left after one not enqueued yet
            continue
        if use_table:
            t = table[cur[0], cls[op]]
            legal = t >= 0
            cand[0] = t
        else:
            legal = apply_op(opc[op], arg_a[op], arg_b[op], slot[op], aux, cur, cand, sw)
        if not legal:
            node = nxt[node]
            continue
        unchanged = True
        for k in range(sw):
            if cand[k] != cur[k]:
                unchanged = False
                break
        if unchanged and optional[op]:
            # An op that may never have happened and would change nothing: leaving it out
            # is always at least as good as placing it here.
            node = nxt[node]
            continue
        if (
            not unchanged
            and cur_val >= 0
            and writers[cur_val] == 0
            and to_see[cur_val] > (1 if seen_of[op] == cur_val else 0)
        ):
            node = nxt[node]  # someone must still see the value this would erase
            continue
        if not unchanged and gate_first < ngate:
            g = gate_op[gate_first]
            rn = gate_rel_n[gate_first]
            if rn < 0:
                shut = puts_placed + (opc[op] == OP_WRITE) == gate_need[gate_first]
            else:  # shut once every put that could help the gate is placed
                shut = True
                for t in range(gate_rel_lo[gate_first], gate_rel_lo[gate_first] + rn):
                    r = gate_rel[t]
                    if r != op and (bits[r >> 6] >> np.uint64(r & 63)) & np.uint64(1) == 0:
                        shut = False
                        break
            if shut:
                lo = arg_b[g] >> 24
                hi = lo + (arg_b[g] & 0xFFFFFF)
                while lo < hi:  # is the new state among the gate's prefix hashes?
                    mid = (lo + hi) >> 1
                    if aux[0, mid] < cand[0]:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo == (arg_b[g] >> 24) + (arg_b[g] & 0xFFFFFF) or aux[0, lo] != cand[0]:
                    node = nxt[node]
                    continue
        # A pure observation (legal or not, it never changes any state) that is legal here
        # can go first in any completion: the others keep their states and their order.
        # So it needs no alternative on backtracking. (Not so for an op that merely
        # changes nothing in *this* state, like writing the current value.)
        forced = _observes(opc[op], arg_a[op], arg_b[op])
        w = op >> 6
        bit = np.uint64(1) << np.uint64(op & 63)
        bits[w] |= bit
        kind = optional[op]
        hr2 = hr
        hr2b = hrb
        nblank2 = nblank
        if kind == REQUIRED:
            hr2 = hr ^ zob[op]
            hr2b = hrb ^ zob2[op]
            if exact:
                rbits[w] |= bit
        elif kind == BLANK:
            nblank2 += 1
        else:
            obits[oidx[op] >> 6] |= np.uint64(1) << np.uint64(oidx[op] & 63)
        key = (hr2 ^ _state_hash(cand, sw)) | np.uint64(1)
        # Find a visited configuration that this one contains, or insert this one (over
        # a row it is contained in, if any: that row can no longer prune anything more).
        idx = np.int64(key & np.uint64(cap - 1))
        found = False
        over = np.int64(-1)
        while cache[idx, 0] != 0:
            if cache[idx, 0] == key:
                same = True
                for k in range(sw):
                    if cache[idx, 1 + k] != np.uint64(cand[k]):
                        same = False
                        break
                if same:
                    if exact:
                        for k in range(nw):
                            if cache[idx, 1 + sw + k] != rbits[k]:
                                same = False
                                break
                    else:
                        same = cache[idx, 1 + sw] == hr2b
                if same:
                    packed = cache[idx, rw - 1]
                    soid = np.int64(packed & np.uint64(0xFFFFFFFF))
                    sblank = np.int64(packed >> np.uint64(32))
                    sub = True
                    if sblank > nblank2:
                        sub = False
                    if sub and not (soid == cur_oid and (kind == REQUIRED or kind == BLANK)):
                        for k in range(no):
                            if oset[soid, k] & ~obits[k] != 0:
                                sub = False
                                break
                    if sub:
                        found = True
                        break
                    if over < 0 and sblank >= nblank2:
                        sup = True
                        for k in range(no):
                            if obits[k] & ~oset[soid, k] != 0:
                                sup = False
                                break
                        if sup:
                            over = idx
            idx = (idx + 1) & (cap - 1)
        if found:
            bits[w] &= ~bit
            if kind == REQUIRED:
                if exact:
                    rbits[w] &= ~bit
            elif kind != BLANK:
                obits[oidx[op] >> 6] &= ~(np.uint64(1) << np.uint64(oidx[op] & 63))
            if forced:
                backtrack = True
            elif kind == BLANK:
                node = nxt[dead_head]
            else:
                node = nxt[node]
            continue
        new_oid = cur_oid
        ho2 = ho
        if kind != REQUIRED and kind != BLANK:
            # The set of optional ops placed changed: its id in the arena (added if new).
            ho2 = ho ^ zob[op]
            oj = np.int64(_mix(ho2) & np.uint64(otcap - 1))
            new_oid = -1
            while otab[oj] >= 0:
                t = otab[oj]
                if ohash[t] == ho2:
                    eq = True
                    for k in range(no):
                        if oset[t, k] != obits[k]:
                            eq = False
                            break
                    if eq:
                        new_oid = t
                        break
                oj = (oj + 1) & (otcap - 1)
            if new_oid < 0:
                if nsets == ocap or 2 * (nsets + 1) > otcap:
                    ncap = 2 * ocap if nsets == ocap else ocap
                    ntcap = 2 * otcap if 2 * (nsets + 1) > otcap else otcap
                    arena_bytes = ncap * (8 * no + 8) + 4 * ntcap
                    if cap * entry_bytes + arena_bytes > max_bytes:
                        status = OUT_OF_MEMORY
                        break
                    if ncap > ocap:
                        more_sets = np.zeros((ncap, max(no, 1)), np.uint64)
                        more_sets[:nsets] = oset[:nsets]
                        oset = more_sets
                        more_hash = np.zeros(ncap, np.uint64)
                        more_hash[:nsets] = ohash[:nsets]
                        ohash = more_hash
                        ocap = ncap
                    if ntcap > otcap:
                        otcap = ntcap
                        otab = np.full(otcap, -1, np.int32)
                        for t in range(nsets):
                            oj = np.int64(_mix(ohash[t]) & np.uint64(otcap - 1))
                            while otab[oj] >= 0:
                                oj = (oj + 1) & (otcap - 1)
                            otab[oj] = t
                    oj = np.int64(_mix(ho2) & np.uint64(otcap - 1))
                    while otab[oj] >= 0:
                        oj = (oj + 1) & (otcap - 1)
                new_oid = nsets
                for k in range(no):
                    oset[new_oid, k] = obits[k]
                ohash[new_oid] = ho2
                otab[oj] = new_oid
                nsets += 1
        if over >= 0:
            idx = over
        cache[idx, 0] = key
        for k in range(sw):
            cache[idx, 1 + k] = np.uint64(cand[k])
        if exact:
            for k in range(nw):
                cache[idx, 1 + sw + k] = rbits[k]
        else:
            cache[idx, 1 + sw] = hr2b
        cache[idx, rw - 1] = np.uint64(new_oid) | (np.uint64(nblank2) << np.uint64(32))
        if over < 0:
            count += 1
        if 2 * count > cap:
            new_cap = 2 * cap
            if (cap + new_cap) * entry_bytes + ocap * (8 * no + 8) + 4 * otcap > max_bytes:
                status = OUT_OF_MEMORY
                break
            grown = np.zeros((new_cap, rw), np.uint64)
            gmask = np.uint64(new_cap - 1)
            for j in range(cap):
                if cache[j, 0] != 0:
                    gi = np.int64(cache[j, 0] & gmask)
                    while grown[gi, 0] != 0:
                        gi = (gi + 1) & (new_cap - 1)
                    for k in range(rw):
                        grown[gi, k] = cache[j, k]
            cache = grown
            cap = new_cap
        # Linearize op: push, adopt the new state, lift its entries, rescan from the head.
        stack_node[depth] = node
        stack_forced[depth] = forced
        stack_limit[depth] = limit
        stack_eq[depth] = eq_mask
        stack_eq_slot[depth] = eq_slot
        if names[op] >= 0:
            pending[names[op]] -= 1
        if opc[op] == OP_WRITE:
            puts_placed += 1
        if gate_of[op] >= 0 and gate_of[op] == gate_first:
            gate_first += 1
            while gate_first < ngate and (
                bits[gate_op[gate_first] >> 6] >> np.uint64(gate_op[gate_first] & 63)
            ) & np.uint64(1):
                gate_first += 1
        if qpos[op] >= 0 and qpos[op] == qfirst:
            qfirst += 1
            while qfirst < nq and (
                bits[qlist[qfirst] >> 6] >> np.uint64(qlist[qfirst] & 63)
            ) & np.uint64(1):
                qfirst += 1
        for k in range(sw):
            stack_state[depth, k] = cur[k]
            cur[k] = cand[k]
        stack_oid[depth] = cur_oid
        if track:
            stack_val[depth] = cur_val
            if seen_of[op] >= 0:
                to_see[seen_of[op]] -= 1
            if writes_of[op] >= 0:
                writers[writes_of[op]] -= 1
            if not unchanged:
                cur_val = writes_of[op]
        depth += 1
        hr = hr2
        hrb = hr2b
        nblank = nblank2
        cur_oid = new_oid
        ho = ho2
        nxt[prv[node]] = nxt[node]
        if nxt[node] != -1:
            prv[nxt[node]] = prv[node]
        r = match[node]
        if r != -1:
            nxt[prv[r]] = nxt[r]
            if nxt[r] != -1:
                prv[nxt[r]] = prv[r]
        if record and depth > best_len:
            for k in range(depth):
                best[k] = op_of[stack_node[k]]
            best_len = depth
        node = nxt[0]
        limit = 0

    if status == VALID:
        for k in range(depth):
            best[k] = op_of[stack_node[k]]
        best_len = depth
    stats[0] = steps
    stats[1] = count
    stats[2] = cap * entry_bytes + ocap * (8 * no + 8) + 4 * otcap
    stats[3] = best_len
    return status


@njit(
    "int64(int64[::1], int64[::1], int32[::1], uint8[::1], int64[::1], int64[::1], int64[::1],"
    " int64[::1], int64[:, ::1], int64[::1], uint64[::1], uint64[::1], int64, int64, int64,"
    " int64[::1], int64[::1], int64[:, ::1])",
    cache=True,
    nogil=True,
)
def search_many(  # pragma: no cover - compiled
    parts,
    offsets,
    order,
    optional,
    opc,
    arg_a,
    arg_b,
    slot,
    aux,
    init,
    zob,
    zob2,
    exact_max_ops,
    max_bytes,
    max_steps,
    stop,
    status,
    stats,
):
    """``search`` each partition ``parts[j]`` of arrays laid out partition after partition
    (partition p's ops are ``offsets[p]:offsets[p + 1]``, its entries twice that), with no
    transition table. Writes ``status[j]`` and ``stats[j]``; stops at the first invalid
    partition or raised stop flag and returns how many partitions it decided (the rest keep
    status -1)."""
    table = np.empty((0, 1), np.int32)
    best = np.empty(1, np.int32)
    for j in range(parts.shape[0]):
        if stop[0] != 0:
            return j
        p = parts[j]
        lo = offsets[p]
        hi = offsets[p + 1]
        n = hi - lo
        if best.shape[0] < n:
            best = np.empty(n, np.int32)
        cls = np.zeros(n, np.int32)
        st = stats[j]
        status[j] = search(
            order[2 * lo : 2 * hi], optional[lo:hi], opc[lo:hi], arg_a[lo:hi], arg_b[lo:hi],
            slot[lo:hi], cls, aux, table, False, init.copy(), zob[:n], zob2[:n],
            n <= exact_max_ops, max_bytes, max_steps, stop, st, best, False,
        )  # fmt: skip
        if status[j] == INVALID:
            return j + 1
    return parts.shape[0]


def load_kernels() -> None:
    """Load this module's search kernels now rather than at a check's first call (see
    :func:`checkers._numba.load_now`); a check gives the same verdicts either way.

    Also imports ``numpy.ma``, which Numba's first look at an array argument imports
    (about 20 ms, once per process)."""
    import numpy.ma  # noqa: F401

    load_now(build_table, _gate_puts, search, search_many)
