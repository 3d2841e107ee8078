"""The list-append workload: random transactions of appends and reads, checked Elle-style.

Database-agnostic (the suite supplies the client). Ops::

    {"f": "txn", "value": [["append", 3, 7], ["r", 4, None], ["r", 3, None]]}
      -> ok, value [["append", 3, 7], ["r", 4, [1, 2]], ["r", 3, [5, 6, 7]]]

Each transaction has ``min_txn_length`` to ``max_txn_length`` micro-ops, each a read or an
append (even odds) of a key drawn from a small set of ``key_count`` active keys, so that
concurrent transactions contend for the same keys. Values appended to a key are 1, 2, 3, …
(each once). A key that has been given ``max_writes_per_key`` appends is retired and a
fresh key takes its place, so the lists (and the reads) stay short — Elle's recipe.

Checked by :func:`checkers.txn.check` with the ``list-append`` model, for the consistency
model that matches the isolation level the transactions ran at
(:data:`CONSISTENCY_FOR_ISOLATION`), unless the ``consistency`` option names another —
e.g. run at read committed and check for ``serializable`` to see what read committed
allows.

Options: ``isolation`` (:data:`DEFAULT_ISOLATION`), ``consistency``, ``key_count``
(:data:`DEFAULT_KEY_COUNT`), ``min_txn_length`` (:data:`DEFAULT_MIN_TXN_LENGTH`),
``max_txn_length`` (:data:`DEFAULT_MAX_TXN_LENGTH`), ``max_writes_per_key``
(:data:`DEFAULT_MAX_WRITES_PER_KEY`), ``check_time_limit`` (seconds, the checker's
budget; :data:`checkers.txn.DEFAULT_TIME_LIMIT`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from checkers.result import Result
from harness.api import Client, Op, TestContext, Workload
from harness.errors import ConfigError
from harness.history import History
from harness.workloads import check_max_memory, check_time_limit, option_int

__all__ = [
    "CONSISTENCY_FOR_ISOLATION",
    "DEFAULT_ISOLATION",
    "DEFAULT_KEY_COUNT",
    "DEFAULT_MAX_TXN_LENGTH",
    "DEFAULT_MAX_WRITES_PER_KEY",
    "DEFAULT_MIN_TXN_LENGTH",
    "ISOLATION_LEVELS",
    "ISOLATION_OPTION",
    "OPTIONS",
    "ListAppendGenerator",
    "check_list_append",
    "consistency_model",
    "isolation_option",
    "list_append_workload",
    "normalize_isolation",
]

#: SQL isolation levels a list-append client may be asked to run at.
ISOLATION_LEVELS = ("serializable", "repeatable-read", "read-committed")
DEFAULT_ISOLATION = "serializable"
#: The consistency model checked by default for each isolation level: what the database
#: promises there. (PostgreSQL's repeatable read is snapshot isolation.)
CONSISTENCY_FOR_ISOLATION = {
    "serializable": "serializable",
    "repeatable-read": "snapshot-isolation",
    "read-committed": "read-committed",
}
#: Keys in use at once: few, so that concurrent transactions meet on them.
DEFAULT_KEY_COUNT = 6
DEFAULT_MIN_TXN_LENGTH = 1
DEFAULT_MAX_TXN_LENGTH = 4
#: Appends a key receives before it is retired.
DEFAULT_MAX_WRITES_PER_KEY = 32

#: The options (``-o NAME=VALUE``) the list-append workload (and rw-register) reads.
ISOLATION_OPTION = {
    "isolation": f"the isolation level asked for ({DEFAULT_ISOLATION}; also --isolation)",
}
OPTIONS = {
    **ISOLATION_OPTION,
    "consistency": "the model checked (default: the one the isolation level promises)",
    "key_count": f"keys in use at a time ({DEFAULT_KEY_COUNT})",
    "min_txn_length": f"the fewest micro-ops in a txn ({DEFAULT_MIN_TXN_LENGTH})",
    "max_txn_length": f"the most micro-ops in a txn ({DEFAULT_MAX_TXN_LENGTH})",
    "max_writes_per_key": f"writes to a key before it is retired ({DEFAULT_MAX_WRITES_PER_KEY})",
}


def normalize_isolation(name: str) -> str:
    """``name`` as one of :data:`ISOLATION_LEVELS` (``read_committed`` and ``READ
    COMMITTED`` are accepted too); :class:`ConfigError` naming the choices otherwise."""
    text = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    if text not in ISOLATION_LEVELS:
        raise ConfigError(
            f"unknown isolation level {name!r}; choose one of {', '.join(ISOLATION_LEVELS)}"
        )
    return text


def isolation_option(options: Mapping[str, Any]) -> str:
    """The ``isolation`` option, normalized (:data:`DEFAULT_ISOLATION` when absent)."""
    return normalize_isolation(options.get("isolation", DEFAULT_ISOLATION))


def consistency_model(options: Mapping[str, Any]) -> str:
    """The consistency model to check: the ``consistency`` option, else the model that
    matches the ``isolation`` option (:data:`CONSISTENCY_FOR_ISOLATION`)."""
    given = options.get("consistency")
    if given is not None:
        from checkers.txn import lattice

        try:
            lattice.check_model_name(str(given))
        except ValueError as e:
            raise ConfigError(f"option 'consistency': {e}") from None
        return str(given)
    return CONSISTENCY_FOR_ISOLATION[isolation_option(options)]


class ListAppendGenerator:
    """Random list-append transactions over a rotating set of ``key_count`` keys (see the
    module docstring). Each call returns the next invocation; any arguments are ignored."""

    def __init__(
        self,
        rng: random.Random,
        *,
        key_count: int = DEFAULT_KEY_COUNT,
        min_txn_length: int = DEFAULT_MIN_TXN_LENGTH,
        max_txn_length: int = DEFAULT_MAX_TXN_LENGTH,
        max_writes_per_key: int = DEFAULT_MAX_WRITES_PER_KEY,
    ) -> None:
        if min(key_count, min_txn_length, max_writes_per_key) < 1:
            raise ConfigError("key_count, min_txn_length and max_writes_per_key must be >= 1")
        if max_txn_length < min_txn_length:
            raise ConfigError(
                f"max_txn_length ({max_txn_length}) must be at least min_txn_length "
                f"({min_txn_length})"
            )
        self.rng = rng
        self.min_len = min_txn_length
        self.max_len = max_txn_length
        self.max_writes = max_writes_per_key
        self.active = list(range(key_count))
        self.written = dict.fromkeys(self.active, 0)
        self.next_key = key_count

    def __call__(self, *_args: Any) -> Op:
        """The next invocation: ``{"f": "txn", "value": [mops]}``."""
        rng = self.rng
        mops: list[list[Any]] = []
        for _ in range(rng.randint(self.min_len, self.max_len)):
            slot = rng.randrange(len(self.active))
            key = self.active[slot]
            if rng.random() < 0.5:
                mops.append(["r", key, None])
                continue
            self.written[key] += 1
            mops.append(["append", key, self.written[key]])
            if self.written[key] >= self.max_writes:  # retire the key
                del self.written[key]
                self.active[slot] = self.next_key
                self.written[self.next_key] = 0
                self.next_key += 1
        return {"f": "txn", "value": mops}


def check_list_append(history: History, ctx: TestContext | None = None) -> Result:
    """The transactional check of a list-append history, for :func:`consistency_model` of
    the context's options (serializable without a context)."""
    from checkers.txn import DEFAULT_TIME_LIMIT, check

    options: Mapping[str, Any] = ctx.options if ctx is not None else {}
    limit = check_time_limit(options, DEFAULT_TIME_LIMIT)
    return check(history, "list-append", consistency_model(options), time_limit=limit,
                 max_memory=check_max_memory(options))


def txn_shape(options: Mapping[str, Any]) -> dict[str, int]:
    """The transactions' shape asked for by ``options`` (``-o key_count=…`` and the rest),
    each defaulted: the keyword arguments of the transactional workloads' generators."""
    return {
        "key_count": option_int(options, "key_count", DEFAULT_KEY_COUNT),
        "min_txn_length": option_int(options, "min_txn_length", DEFAULT_MIN_TXN_LENGTH),
        "max_txn_length": option_int(options, "max_txn_length", DEFAULT_MAX_TXN_LENGTH),
        "max_writes_per_key": option_int(options, "max_writes_per_key", DEFAULT_MAX_WRITES_PER_KEY),
    }


def list_append_workload(ctx: TestContext, *, client: Callable[[], Client]) -> Workload:
    """The list-append workload with ``client`` making one client per worker (options in
    the module docstring)."""
    o = ctx.options
    isolation = isolation_option(o)
    consistency = consistency_model(o)
    shape = txn_shape(o)
    ListAppendGenerator(random.Random(0), **shape)  # validate the shape now, not mid-run
    return Workload(
        name="list-append",
        client=client,
        generator=lambda c: ListAppendGenerator(c.rng, **shape),
        check=check_list_append,
        description=(
            f"transactions of {shape['min_txn_length']}-{shape['max_txn_length']} appends "
            f"and reads over {shape['key_count']} keys at a time at {isolation}; checked for "
            f"{consistency} (list-append, Elle-style)"
        ),
    )
