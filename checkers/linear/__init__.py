"""Linearizability checking: is there one order of the ops that explains every observation?

A history is *linearizable* with respect to a sequential model if every operation can be
given a single instant between its invocation and its completion such that running the
ops one by one, in the order of those instants, through the model reproduces every
observed result. ``fail`` ops did not happen; ``info`` ops may have happened at any time
after their invocation, or never (see :mod:`harness.history`).

How clew decides it (Wing & Gong's search, with Lowe's just-in-time linearisation):

1. **Partition.** When the model allows it (keys are independent), each key is checked on
   its own — a history is linearizable iff every key's part is (P-compositionality, Horn &
   Kroening). The calls are laid out key after key with vectorised work only (a million
   keys is one sort); small keys are searched many per kernel call. Every key first gets
   a bounded number of steps, smallest first, and only then do the keys that need more
   get the rest, largest first, in parallel: so a small invalid key is found at once even
   on one thread, and the first invalid key cancels the rest.
2. **Lower.** Each op becomes a small integer instruction for the model (see
   :mod:`checkers.linear.models`). Ops that are legal in every state and change nothing —
   reads whose result is unknown, for instance — are dropped. The completions of ops with
   unknown outcomes are moved to the end of time.
3. **Search.** A doubly linked list holds every invocation and completion in time order.
   Scanning from the head, an invocation may be linearized next if the model allows it in
   the current state; the op is then lifted out of the list, pushed on a stack, and the
   scan restarts. Reaching a completion means its op should have taken effect by now:
   backtrack. Reaching the completion of an op with unknown outcome means only such ops
   remain — they may never have happened — so the history is linearizable. A cache of
   configurations (required ops linearized, ops of unknown outcome linearized, state),
   hashed with Zobrist keys, prunes paths that reach a configuration already explored —
   or one that *contains* an explored one: same required ops, same state, and a superset
   of its unknown-outcome ops. Such ops never have to be placed and set no deadline, so
   every completion of the larger configuration is one of the smaller's too. Without this
   an invalid history with a few hundred `info` writes re-explored the same futures once
   per subset of them placed (issue 17: 100k ops on one key with one stale read went
   from `unknown` after 60 s to 9.4 million steps, about 2 s). The smaller configuration
   may still be on the search stack when the larger one is met; that is safe too: a
   witness from the larger one is a shorter witness from the smaller one, which the
   search then finds from there. Writes of unknown outcome that nobody can tell apart
   (blank writes, below) are given one value, and only how many of them were placed
   counts.
4. **Prune and order.** Three rules keep the search small without changing any verdict: an
   op with unknown outcome that would not change the state is never placed (leaving it
   out is as good); a required op that is legal and changes nothing is placed
   greedily, with no alternative tried on backtracking (it can go first in any
   completion); and (registers) an op that would change the state away from a value
   that some required read or cas not yet placed expects, when every op that could
   write that value again is placed, is not tried: that read could never be placed, so
   the branch is dead now rather than at the read's return. With unique written values
   this refuses every premature overwrite at once: 1,000 ops of 100 clients on one key
   went from `unknown` (memory budget, 150 million steps) to 84,607 steps, 0.13 s
   (issue 17; Porcupine gives up at 60 s). The pass that records a counterexample's
   longest prefix does without this rule, so that the prefix runs on to the op that
   cannot follow. Ops of unknown outcome are tried by what is known of who saw their effect
   (:func:`checkers.linear.prepare.optional_kinds`): one whose written value (or appended
   string) a required op observed is tried in time order like any op — it must have
   happened, most likely where it was called; one nobody is known to have seen is tried
   only where the scan reaches a deadline; and one whose effect nobody can see (a value
   no op reads) only where it could unblock a failed cas, the one place a witness may
   need it. Such writes whose value no failed cas names either are interchangeable: only
   the earliest called is tried there (any witness using another can use it instead), so
   the hundreds of them a long history accumulates do not multiply the search. This order
   wins both where most such ops never happened (Porcupine's
   ``etcd_002``: 113 steps) and where many did (kv appends, generated register histories).
   For kv appends, an append of unknown outcome counts as seen only if some get's string
   splits into strings the key's ops wrote with it one of them (``"1."`` is inside
   ``"21."``, but not one of its pieces), and gets act as gates: once no put that could
   help a pending get can come before it any more (only a put of a prefix of its string
   could: after any other, no append makes the state a prefix again), the state must be
   a prefix of its string (compared by the hashes of its prefixes), so a wrong order of
   concurrent appends dies at once rather than at the get. For FIFO queues, a value whose
   dequeue was called after another value's dequeue returned left the queue after it,
   so it was enqueued after it: its enqueue is not tried before the other's (values
   enqueued and dequeued once each). A wrong order of concurrent enqueues then dies when
   the next enqueue is tried, not when a dequeue hundreds of ops later finds the wrong
   head: 500 ops of five clients with a backlog of 100 values went from `unknown`
   (memory budget, 1.3 million steps) to 891 steps (``bench/linear_queue.py``).
5. **Budgets.** A time limit, a memory budget and an optional step budget hold in every
   phase: lowering, laying out, transition tables (capped in size), the search and its
   cache, the witness check. Running out answers "unknown" naming the phase, never an
   out-of-memory kill. ``check(started=...)`` counts the time spent reading the file too.
6. **Explain.** For an invalid history a second pass over the failing part only records the
   longest linearizable prefix; the reference model replays it and names the ops that could
   not follow (:mod:`checkers.linear.counterexample`).

Small models (registers, mutexes, kv without appends, small sets) with few distinct
values are first compiled to a transition table over their reachable states, so a step is
one array load; others (and tables that would be large: they grow with the square of the
distinct values written) use a compiled step function. The search runs in Numba
(:mod:`checkers.linear.kernel`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from checkers.linear.checker import ProgressFn, check, resolve_model
    from checkers.linear.models import MODELS, Model, get_model

__all__ = ["MODELS", "Model", "ProgressFn", "check", "get_model", "resolve_model"]

# Loaded on first use, so that importing a light submodule (the budget defaults, for the
# CLI) does not load Numba and compile or load the kernels.
_LAZY = {
    "ProgressFn": "checkers.linear.checker",
    "check": "checkers.linear.checker",
    "resolve_model": "checkers.linear.checker",
    "MODELS": "checkers.linear.models",
    "Model": "checkers.linear.models",
    "get_model": "checkers.linear.models",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'checkers.linear' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
