"""The elements of list-append reads as one int64 column, shared where reads agree.

In a list-append history most reads of a key are prefixes of its longest read. Converting
every element of every read to int64 one by one was the largest cost of parsing a large
history (a million transactions read 32 million elements); instead, the longest read of
each key is converted, every other read is compared with the same-length prefix of it as
Python lists (a C loop, no conversion), and a read that equals that prefix points into the
longest read's elements. Only the reads that disagree are converted on their own.

Equal values convert to equal int64s (``1 == 1.0 == True`` all give 1, as ``np.fromiter``
converts them), so the column read back is what converting every read would give.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from operator import eq, getitem
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["key_bases", "read_elements"]

I64 = npt.NDArray[np.int64]

#: Reads converted (or compared) between two budget checks.
CHUNK = 1 << 15


def key_bases(r_key: I64, r_len: I64) -> tuple[I64, I64, npt.NDArray[np.bool_]]:
    """Each key's *base*, its longest read (the first of equally long ones), for reads
    ``i`` of key id ``r_key[i]`` and length ``r_len[i]`` (at least one read): per key id,
    the longest length, the base's read index (``len(r_key)`` for a key with no read
    longer than 0) and whether it has one."""
    n = len(r_key)
    longest = np.zeros(int(r_key.max()) + 1, dtype=np.int64)
    np.maximum.at(longest, r_key, r_len)
    cand = np.flatnonzero((r_len == longest[r_key]) & (r_len > 0))
    base_of = np.full(len(longest), n, dtype=np.int64)
    np.minimum.at(base_of, r_key[cand], cand)
    return longest, base_of, base_of < n


def read_elements(
    reads: list[Any], r_key: I64, r_len: I64, tick: Callable[[], None]
) -> tuple[I64, I64]:
    """``(elems, start)`` for the list-append ``reads`` (lists, tuples or ``None``).

    ``r_key[i]`` is read ``i``'s key id and ``r_len[i]`` its length (0 for ``None``).
    Promises ``elems[start[i] : start[i] + r_len[i]]`` equals ``np.fromiter(reads[i],
    np.int64)``; ranges of different reads may overlap. Raises ``TypeError``,
    ``ValueError`` or ``OverflowError`` as ``np.fromiter`` does when any element of any
    read cannot be converted. ``tick()`` is called between chunks (it may raise).
    """
    n = len(reads)
    start = np.zeros(n, dtype=np.int64)
    if n == 0 or not r_len.any():
        return np.empty(0, np.int64), start
    longest, base_of, has_base = key_bases(r_key, r_len)
    n_keys = len(longest)
    base_len = longest[has_base]
    base_start = np.zeros(n_keys, dtype=np.int64)
    base_start[has_base] = np.cumsum(base_len) - base_len
    bases = list(map(reads.__getitem__, base_of[has_base].tolist()))
    n_base = int(base_len.sum())
    parts = [np.fromiter(chain.from_iterable(bases), dtype=np.int64, count=n_base)]
    tick()
    # a read equal to its base's prefix of its length shares the base's elements (nil and
    # empty reads are compared with an empty list: they have no elements to share)
    base_obj: list[Any] = [[]] * n_keys
    for k, b in zip(np.flatnonzero(has_base).tolist(), bases, strict=True):
        base_obj[k] = b
    prefix = list(map(slice, range(int(longest.max()) + 1)))
    shared = np.zeros(n, dtype=bool)
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        bases_lo = map(getitem, map(base_obj.__getitem__, r_key[lo:hi].tolist()),
                       map(prefix.__getitem__, r_len[lo:hi].tolist()))  # fmt: skip
        shared[lo:hi] = np.fromiter(map(eq, reads[lo:hi], bases_lo), dtype=bool, count=hi - lo)
        tick()
    shared &= r_len > 0
    start[shared] = base_start[r_key[shared]]
    # the others are converted one by one, after the bases' elements
    own = np.flatnonzero(~shared & (r_len > 0))
    own_len = r_len[own]
    start[own] = n_base + np.cumsum(own_len) - own_len
    for lo in range(0, len(own), CHUNK):
        part = list(map(reads.__getitem__, own[lo : lo + CHUNK].tolist()))
        count = int(own_len[lo : lo + CHUNK].sum())
        parts.append(np.fromiter(chain.from_iterable(part), dtype=np.int64, count=count))
        tick()
    return np.concatenate(parts), start
