"""Generated cas-register histories shaped like the ones a real test records (issue 17).

The shape: a cas-register per key, every written value unique; per client, op durations
uniform in [0.5, 5] and gaps uniform in [0, 0.5] (so each client almost always has an op in
flight); the linearization point uniform inside the op's interval; reads / writes / cas
50 / 25 / 25 %; half of the cas ops expect the current value, the others a recent earlier
one (so they fail); a fraction ``info`` (default 2 %) of writes and cas end ``info`` and
take effect with probability 1/2; the client continues under a new process number after
each ``info``; keys uniform. ``stale=True`` turns one ok read in the middle into a read of
a value that was overwritten before the read began (the history is then not
linearizable). Values: writes and cas targets are 1, 2, 3, ...; a read of a key never
written returns nil. Model: Porcupine's etcd cas-register (clew's ``etcd``), a failed cas
observing that the register did not hold ``from``.

    .venv/bin/python bench/lin_histories.py OUT.jsonl --ops 10000 --clients 5 --keys 1 [--stale]

:func:`generate` returns the ops as dicts (for tests); :func:`write_history` writes JSONL
(times in ns: one time unit is 1 ms) and is what the benchmarks use.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Shape", "generate", "write_history"]


@dataclass(frozen=True)
class Shape:
    """Parameters of a generated history."""

    ops: int = 10_000
    clients: int = 5
    keys: int = 1
    info: float = 0.02  # fraction of writes and cas that end info
    stale: bool = False  # inject one stale read
    seed: int = 1

    def name(self) -> str:
        base = f"n{self.ops}-c{self.clients}-k{self.keys}-i{self.info:g}-s{self.seed}"
        return base + ("-stale" if self.stale else "")


@dataclass(slots=True)
class _Op:
    process: int
    start: float
    end: float
    point: float
    key: int
    f: str = "read"
    value: Any = None
    out: Any = None
    type: str = "ok"


def _schedule(shape: Shape, rng: random.Random) -> list[_Op]:
    """Each client's back-to-back ops, the first ``shape.ops`` by start time, with process
    numbers (a client gets a new one after an ``info``, decided here up front)."""
    heap = [(rng.uniform(0, 0.5), c) for c in range(shape.clients)]
    heapq.heapify(heap)
    process = list(range(shape.clients))
    next_process = shape.clients
    out: list[_Op] = []
    while len(out) < shape.ops:
        start, c = heapq.heappop(heap)
        end = start + rng.uniform(0.5, 5.0)
        op = _Op(process[c], start, end, rng.uniform(start, end), rng.randrange(shape.keys))
        r = rng.random()
        op.f = "read" if r < 0.5 else ("write" if r < 0.75 else "cas")
        if op.f != "read" and rng.random() < shape.info:
            op.type = "info"
            process[c] = next_process
            next_process += 1
        out.append(op)
        heapq.heappush(heap, (end + rng.uniform(0, 0.5), c))
    return out


def generate(shape: Shape) -> list[dict[str, Any]]:
    """The history's ops (invocations and completions) in real-time order, as dicts with
    ``index, time, type, process, f, value, key``."""
    rng = random.Random(shape.seed)
    ops = _schedule(shape, rng)
    state: list[Any] = [None] * shape.keys
    recent: list[list[Any]] = [[] for _ in range(shape.keys)]
    fresh = 0
    for op in sorted(ops, key=lambda o: o.point):
        k = op.key
        s = state[k]
        applies = op.type == "ok" or rng.random() < 0.5
        if op.f == "read":
            op.out = s
            continue
        fresh += 1
        if op.f == "write":
            op.value = op.out = fresh
            if applies:
                state[k] = fresh
        else:
            earlier = [v for v in recent[k] if v != s]
            expect = s if (rng.random() < 0.5 or not earlier) else rng.choice(earlier)
            op.value = op.out = [expect, fresh]
            if s == expect:
                if applies:
                    state[k] = fresh
            elif op.type == "ok":
                op.type = "fail"
        if state[k] != s:
            recent[k] = (recent[k] + [s])[-4:]
    if shape.stale:
        _inject_stale_read(ops)
    events: list[tuple[float, int, int]] = []
    for i, op in enumerate(ops):
        events.append((op.start, 0, i))
        events.append((op.end, 1, i))
    events.sort()
    out: list[dict[str, Any]] = []
    for t, is_ret, i in events:
        op = ops[i]
        d: dict[str, Any] = {
            "index": len(out), "time": int(t * 1e6), "type": op.type if is_ret else "invoke",
            "process": op.process, "f": op.f,
            "value": (op.out if op.type == "ok" else op.value) if is_ret else op.value,
            "key": op.key,
        }  # fmt: skip
        out.append(d)
    return out


def _inject_stale_read(ops: list[_Op]) -> None:
    """Make one ok read from the middle on return a value overwritten before it began: a
    value v written by an ok op W1, when an ok op W2 writing another value began after W1
    ended and ended before the read began (values are unique: v never comes back)."""
    by_key: dict[int, list[_Op]] = {}
    for op in ops:
        if op.f != "read" and op.type == "ok":
            by_key.setdefault(op.key, []).append(op)
    for r in ops[len(ops) // 2 :] + ops[: len(ops) // 2]:
        if r.f != "read" or r.type != "ok":
            continue
        done = [w for w in by_key.get(r.key, []) if w.end < r.start]
        for w2 in reversed(done):
            olds = [w for w in done if w.end < w2.start]
            if olds:
                w1 = olds[-1]
                r.out = w1.value if w1.f == "write" else w1.value[1]
                return
    raise ValueError("no read to make stale: the history is too short")


def kv_info_ops(
    seed: int,
    ops: int = 75,
    clients: int = 5,
    keys: int = 1,
    info: float = 0.5,
    puts: float = 0.05,
) -> list[dict[str, Any]]:
    """A kv history (Porcupine's kv model: get / put / append of strings) with many
    appends of unknown outcome: gets 40 %, puts ``puts`` (5 %), appends the rest (55 %); a
    fraction ``info`` of the appends end ``info`` (default: half, so about 27 % of all
    ops; more with a larger fraction) and take effect with probability 1/2; appended
    strings are unique; client intervals as in :func:`generate`. The history is
    linearizable."""
    rng = random.Random(seed)
    sched = _schedule(Shape(ops, clients, keys, 0.0, False, seed), rng)
    state = [""] * keys
    for i, op in enumerate(sorted(sched, key=lambda o: o.point)):
        r = rng.random()
        op.f = "get" if r < 0.4 else ("append" if r < 1 - puts else "put")
        if op.f == "get":
            op.out = state[op.key]
            continue
        op.value = op.out = f"{i}."
        applies = True
        if op.f == "append" and rng.random() < info:
            op.type = "info"
            applies = rng.random() < 0.5
        if applies:
            state[op.key] = op.value if op.f == "put" else state[op.key] + op.value
    events = sorted(
        [(op.start, 0, i) for i, op in enumerate(sched)]
        + [(op.end, 1, i) for i, op in enumerate(sched)]
    )
    out = []
    proc: dict[int, int] = {}
    for t, is_ret, i in events:
        op = sched[i]
        # Each op its own process id once it ended info (the client moves on).
        p = proc.setdefault(i, op.process if op.type != "info" else 1000 + i)
        value = (op.out if op.type == "ok" else op.value) if is_ret else op.value
        out.append({"time": int(t * 1e6), "type": op.type if is_ret else "invoke",
                    "process": p, "f": op.f, "value": value, "key": op.key})  # fmt: skip
    return out


def write_history(shape: Shape, path: str | Path) -> Path:
    """Write the history of ``shape`` as clew JSONL to ``path``; return the path."""
    path = Path(path)
    tmp = path.with_suffix(".part")
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    with open(tmp, "w") as out:
        for d in generate(shape):
            out.write(dumps(d) + "\n")
    tmp.replace(path)
    return path


def cached_history(shape: Shape, directory: str | Path) -> Path:
    """The JSONL file of ``shape`` in ``directory``, generated on first use."""
    path = Path(directory) / f"{shape.name()}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_history(shape, path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--ops", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=5)
    ap.add_argument("--keys", type=int, default=1)
    ap.add_argument("--info", type=float, default=0.02, help="fraction of writes/cas ending info")
    ap.add_argument("--stale", action="store_true", help="inject one stale read")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    shape = Shape(a.ops, a.clients, a.keys, a.info, a.stale, a.seed)
    write_history(shape, a.out)
    print(a.out)


if __name__ == "__main__":
    main()
