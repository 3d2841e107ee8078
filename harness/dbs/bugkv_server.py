#!/usr/bin/env python3
"""bugkv: a small Raft-style replicated key-value server with seeded bugs (standard library only).

One process per node, uploaded and run with ``python3``. It speaks two protocols:

* **clients**: HTTP/1.1 on ``--client-port``. ``POST /op`` with a JSON body
  ``{"f": "read"|"write"|"cas"|"add"|"read-set", "key": k, "value": v}`` answers ``200``
  ``{"ok": true, "value": ..., "node": "n2"}`` (``node``: the node that served it, the leader),
  ``200 {"ok": false, "error": "cas-mismatch", "node": ...}``, ``503`` when the op was
  definitely not done (no leader known, the leader unreachable) or ``504`` when its outcome
  is unknown (a timeout after it was proposed). ``GET /status`` gives the node's role, term,
  leader and indices. A follower proxies every op to the leader it knows.
* **peers**: one JSON object per line on ``--peer-port``: ``append`` (AppendEntries) and
  ``vote`` (RequestVote) requests, each answered by one line.

Raft as in Ongaro's thesis: terms; a vote and the term persisted (fsync) before answering;
log replication with the consistency check; commit by a majority of an entry of the current
term; a no-op entry at the start of each term; leader stickiness (a server that heard from a
leader within the minimum election timeout ignores RequestVote), which makes leader leases
safe. Reads go through the log (``--reads log``) or are served by the leader from its state
machine while it holds a lease (``--reads lease``, the default): the lease lasts
``--lease-ms`` from the *send* time of a heartbeat round a majority acknowledged, measured on
the monotonic clock, and is shorter than the minimum election timeout. Elections have a
priority: node ``i`` of ``--peers`` (0-based) waits ``election_ms + i * election_step_ms``
plus jitter, so after a fault the same node tends to win and minimal fault schedules
reproduce. Data (``term.json``, ``log.jsonl``) lives in ``--data-dir``; a restart recovers
from it. The node's own log (elections, terms, replication, commits) goes to stderr.

``--bug NAME`` switches on one seeded bug (see ``docs/bugkv.md`` and :data:`BUGS`). Without
it the server is meant to be correct.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from typing import Any

#: The seeded bugs, each with a one-line description (docs/bugkv.md has the depths).
BUGS = {
    "early-ack": "the leader acknowledges a write once it is in its own log; replication goes "
    "in batches every 10 heartbeats",
    "stale-leader-read": "the leader serves reads from its state machine without a lease or a "
    "quorum check",
    "lease-wall-clock": "the leader lease is measured on the wall clock",
    "vote-ignores-log": "votes are granted without the candidate's-log-is-up-to-date check",
    "buffered-log": "log appends are buffered and written to disk 64 entries at a time, but "
    "acknowledged at once",
    "commit-unchecked": "a follower advances its commit index from the leader's before the "
    "log consistency check",
    "stepdown-applies-tail": "a leader that steps down applies its whole log to its state "
    "machine (its pending clients are told nothing)",
    "lease-ticks": "the leader lease is counted in heartbeat ticks of the event loop, which "
    "stop while the process is paused",
}

FOLLOWER, CANDIDATE, LEADER = "follower", "candidate", "leader"
#: Seconds a node other than the first waits longer before its first campaign (term 0).
BOOTSTRAP_WAIT = 3.0
#: With the early-ack bug, new entries are sent every this many heartbeats.
EARLY_ACK_BATCH = 10
#: With the buffered-log bug, appends reach the disk this many entries at a time.
BUFFERED_ENTRIES = 64


def log(msg: str) -> None:
    """One line of the node's own log: wall time (as the process sees it), message."""
    sys.stderr.write(f"{time.time():.3f} {msg}\n")
    sys.stderr.flush()


class Storage:
    """The persistent state: term and vote (``term.json``), the log (``log.jsonl``)."""

    def __init__(self, directory: str, *, buffered: bool) -> None:
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.meta_path = os.path.join(directory, "term.json")
        self.log_path = os.path.join(directory, "log.jsonl")
        self.buffered = buffered
        self.pending: list[str] = []

    def load(self) -> tuple[int, str | None, list[dict[str, Any]]]:
        """(term, voted_for, log) as persisted; a torn last log line is dropped."""
        term, voted = 0, None
        if os.path.exists(self.meta_path):
            with open(self.meta_path) as f:
                meta = json.load(f)
            term, voted = int(meta["term"]), meta.get("voted_for")
        entries: list[dict[str, Any]] = []
        if os.path.exists(self.log_path):
            with open(self.log_path) as f:
                for line in f:
                    try:
                        entries.append(json.loads(line))
                    except ValueError:
                        break
        return term, voted, entries

    def save_meta(self, term: int, voted_for: str | None) -> None:
        """Persist term and vote durably (write, fsync, rename, fsync the directory)."""
        tmp = self.meta_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"term": term, "voted_for": voted_for}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.meta_path)
        self._sync_dir()

    def append(self, entries: list[dict[str, Any]]) -> None:
        """Append entries durably (or into the buffer, with the buffered-log bug)."""
        lines = [json.dumps(e, separators=(",", ":")) + "\n" for e in entries]
        if self.buffered:
            self.pending += lines
            if len(self.pending) >= BUFFERED_ENTRIES:
                self.flush()
            return
        with open(self.log_path, "a") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())

    def flush(self) -> None:
        """Write the buffered appends (buffered-log bug only: every BUFFERED_ENTRIES)."""
        if not self.pending:
            return
        lines, self.pending = self.pending, []
        with open(self.log_path, "a") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())

    def rewrite(self, entries: list[dict[str, Any]]) -> None:
        """Replace the whole log durably (after a truncation)."""
        self.pending = []
        tmp = self.log_path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(json.dumps(e, separators=(",", ":")) + "\n" for e in entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.log_path)
        self._sync_dir()

    def _sync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class PeerLink:
    """One connection to a peer's peer port; one request at a time. A request that times
    out closes the connection, so a late answer can never be read as the next one's."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.lock = asyncio.Lock()

    async def call(self, msg: dict[str, Any], limit: float) -> dict[str, Any] | None:
        """The peer's answer to ``msg``, or None (unreachable, timeout, broken)."""
        async with self.lock:
            try:
                async with asyncio.timeout(limit):
                    if self.writer is None:
                        self.reader, self.writer = await asyncio.open_connection(
                            self.host, self.port
                        )
                    assert self.reader is not None
                    self.writer.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
                    await self.writer.drain()
                    line = await self.reader.readline()
                    if not line:
                        raise ConnectionError("closed")
                    answer: dict[str, Any] = json.loads(line)
                    return answer
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
                self.close()
                return None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Node:
    """One Raft server (see the module docstring)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.id: str = args.id
        self.bug: str | None = args.bug or None
        self.reads: str = args.reads
        peers = [p.split("=", 1) for p in args.peers.split(",")]
        self.order = [name for name, _ in peers]
        self.addrs = {name: addr for name, addr in peers}
        self.others = [n for n in self.order if n != self.id]
        self.majority = len(self.order) // 2 + 1
        self.rank = self.order.index(self.id)
        self.heartbeat = args.heartbeat_ms / 1000
        self.election = args.election_ms / 1000
        self.election_step = args.election_step_ms / 1000
        self.jitter = args.jitter_ms / 1000
        self.lease = args.lease_ms / 1000
        self.rpc_timeout = args.rpc_timeout_ms / 1000
        self.propose_timeout = args.propose_timeout_ms / 1000
        self.peer_port = args.peer_port
        self.client_port = args.client_port
        self.storage = Storage(args.data_dir, buffered=self.bug == "buffered-log")
        self.term, self.voted_for, self.log = self.storage.load()
        self.commit = 0  # entries are 1-based: log[i - 1] is entry i
        self.applied = 0
        self.kv: dict[str, Any] = {}
        self.elements: list[Any] = []
        self.role = FOLLOWER
        self.leader: str | None = None
        self.last_leader_contact = -1e9  # monotonic
        self.election_deadline = 0.0
        self.next_index: dict[str, int] = {}
        self.match_index: dict[str, int] = {}
        self.waiters: dict[int, tuple[int, asyncio.Future[Any]]] = {}
        self.urgent: set[str] = set()  # early-ack: peers to send entries to at once
        self.links = {n: PeerLink(self._host(n), self.peer_port) for n in self.others}
        self.wake = {n: asyncio.Event() for n in self.others}
        self.lease_until = -1e9  # monotonic (wall with lease-wall-clock, ticks with lease-ticks)
        self.ticks = 0
        self.ack_sent: dict[str, float] = {}
        self.ack_tick: dict[str, int] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.rng = random.Random()
        log(
            f"start id={self.id} term={self.term} voted_for={self.voted_for} "
            f"log={len(self.log)} bug={self.bug} reads={self.reads}"
        )

    # ---- helpers -------------------------------------------------------------------------

    def _host(self, name: str) -> str:
        return self.addrs[name]

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` as a task, keeping a reference until it ends."""
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def last_index(self) -> int:
        return len(self.log)

    def term_at(self, index: int) -> int:
        return int(self.log[index - 1]["term"]) if 1 <= index <= len(self.log) else 0

    def reset_election_timer(self) -> None:
        # A fresh cluster (term 0) lets the first node of --peers campaign first, however
        # late it started: the run begins with a known leader.
        bootstrap = BOOTSTRAP_WAIT if self.term == 0 and self.rank > 0 else 0.0
        self.election_deadline = (
            self.now() + self.election + self.rank * self.election_step
            + self.rng.uniform(0, self.jitter) + bootstrap
        )  # fmt: skip

    def set_term(self, term: int, voted_for: str | None) -> None:
        if term > self.term:  # node agents watch for this line (harness.dbs.bugkv)
            log(f"term {term}: term changed from {self.term}")
        self.term, self.voted_for = term, voted_for
        self.storage.save_meta(term, voted_for)

    def become_follower(self, term: int, leader: str | None) -> None:
        """Step down (or stay) as follower of ``term``; persists a new term first."""
        was = self.role
        if term > self.term:
            self.set_term(term, None)
        self.role = FOLLOWER
        if leader is not None and leader != self.leader:
            log(f"term {self.term}: following {leader}")
        self.leader = leader
        self.lease_until = -1e9
        if was == LEADER:
            log(f"term {self.term}: step down (was leader)")
            # Pending clients learn nothing (504): their entries may yet commit.
            self.fail_waiters("leader stepped down")
            if self.bug == "stepdown-applies-tail" and self.last_index() > self.commit:
                log(f"bug stepdown-applies-tail: applying {self.commit + 1}..{self.last_index()}")
                self.commit = self.last_index()
                self.apply_committed()

    def fail_waiters(self, why: str) -> None:
        for _, fut in self.waiters.values():
            if not fut.done():
                fut.set_exception(TimeoutError(why))
        self.waiters.clear()

    # ---- state machine -------------------------------------------------------------------

    def apply(self, cmd: dict[str, Any]) -> Any:
        """Apply one command; its result (value, or ``{"error": ...}``)."""
        op = cmd.get("op")
        if op == "write":
            self.kv[str(cmd["key"])] = cmd["value"]
            return None
        if op == "cas":
            key = str(cmd["key"])
            if self.kv.get(key) != cmd["from"]:
                return {"error": "cas-mismatch"}
            self.kv[key] = cmd["to"]
            return None
        if op == "read":
            return self.kv.get(str(cmd["key"]))
        if op == "add":
            self.elements.append(cmd["value"])
            return None
        if op == "read-set":
            return sorted(self.elements, key=lambda x: (isinstance(x, str), x))
        return None  # noop

    def apply_committed(self) -> None:
        while self.applied < min(self.commit, len(self.log)):
            self.applied += 1
            entry = self.log[self.applied - 1]
            result = self.apply(entry["cmd"])
            waiter = self.waiters.pop(self.applied, None)
            if waiter is not None:
                term, fut = waiter
                if not fut.done():
                    if term == entry["term"]:
                        fut.set_result(result)
                    else:
                        fut.set_exception(TimeoutError("entry replaced"))

    # ---- elections -----------------------------------------------------------------------

    async def ticker(self) -> None:
        """The heartbeat tick (twice a heartbeat): election timeouts, lease ticks."""
        while True:
            await asyncio.sleep(self.heartbeat / 2)
            self.ticks += 1
            now = self.now()
            if self.role != LEADER and now >= self.election_deadline:
                self.spawn(self.campaign())
                self.reset_election_timer()

    async def campaign(self) -> None:
        self.role = CANDIDATE
        self.leader = None
        self.set_term(self.term + 1, self.id)
        term = self.term
        log(
            f"term {term}: campaign (last index {self.last_index()}, last term "
            f"{self.term_at(self.last_index())})"
        )
        votes = {self.id}
        msg = {
            "type": "vote",
            "term": term,
            "candidate": self.id,
            "last_index": self.last_index(),
            "last_term": self.term_at(self.last_index()),
        }

        async def ask(peer: str) -> None:
            while self.role == CANDIDATE and self.term == term:
                answer = await self.links[peer].call(msg, self.rpc_timeout)
                if answer is None:
                    await asyncio.sleep(self.heartbeat)
                    continue
                if answer["term"] > self.term:
                    self.become_follower(answer["term"], None)
                    self.reset_election_timer()
                    return
                if answer.get("granted") and self.role == CANDIDATE and self.term == term:
                    votes.add(peer)
                    if len(votes) >= self.majority:
                        self.become_leader()
                    return
                if answer.get("ignored"):  # sticky to a live leader: ask again later
                    await asyncio.sleep(self.heartbeat * 2)
                    continue
                return

        await asyncio.gather(*(ask(p) for p in self.others))

    def become_leader(self) -> None:
        if self.role == LEADER:
            return
        self.role = LEADER
        self.leader = self.id
        self.lease_until = -1e9
        log(f"term {self.term}: elected leader with log {self.last_index()}")
        for p in self.others:
            self.next_index[p] = self.last_index() + 1
            self.match_index[p] = 0
            self.ack_sent.pop(p, None)
            self.ack_tick.pop(p, None)
        self.append_local({"op": "noop"})
        for p in self.others:
            self.spawn(self.replicate(p, self.term))

    def on_vote(self, msg: dict[str, Any]) -> dict[str, Any]:
        term, cand = msg["term"], msg["candidate"]
        sticky = (
            self.leader is not None
            and self.leader != cand
            and (self.role == LEADER or self.now() - self.last_leader_contact < self.election)
        )
        if term > self.term and sticky:
            return {"term": self.term, "granted": False, "ignored": True}
        if term > self.term:
            self.become_follower(term, None)
        if term < self.term:
            return {"term": self.term, "granted": False}
        my_last = self.last_index()
        up_to_date = (msg["last_term"], msg["last_index"]) >= (self.term_at(my_last), my_last)
        if self.bug == "vote-ignores-log":
            up_to_date = True
        if self.voted_for in (None, cand) and up_to_date:
            self.set_term(self.term, cand)  # persisted before the answer
            self.reset_election_timer()
            log(f"term {term}: vote for {cand}")
            return {"term": self.term, "granted": True}
        return {"term": self.term, "granted": False}

    # ---- replication ---------------------------------------------------------------------

    def append_local(self, cmd: dict[str, Any]) -> int:
        entry = {"term": self.term, "cmd": cmd}
        self.log.append(entry)
        self.storage.append([entry])
        if self.bug != "early-ack":
            for ev in self.wake.values():
                ev.set()
        return self.last_index()

    async def replicate(self, peer: str, term: int) -> None:
        """The leader's loop for one follower: send what it lacks, or a heartbeat."""
        link = self.links[peer]
        wake = self.wake[peer]
        last_batch = -1e9
        while self.role == LEADER and self.term == term:
            nxt = self.next_index[peer]
            prev = nxt - 1
            entries = self.log[nxt - 1 : nxt - 1 + 200]
            if self.bug == "early-ack":
                # New entries go out in batches, every EARLY_ACK_BATCH heartbeats (at once
                # when a read waits for them); the heartbeats in between carry none.
                due = self.now() - last_batch >= self.heartbeat * EARLY_ACK_BATCH
                if not due and peer not in self.urgent:
                    entries = []
                elif entries:
                    last_batch = self.now()
                    self.urgent.discard(peer)
            msg = {
                "type": "append",
                "term": term,
                "leader": self.id,
                "prev_index": prev,
                "prev_term": self.term_at(prev),
                "entries": entries,
                "commit": self.commit,
            }
            sent, sent_tick = self.now(), self.ticks
            wall_sent = time.time()
            wake.clear()
            answer = await link.call(msg, self.rpc_timeout)
            if self.role != LEADER or self.term != term:
                return
            if answer is None:
                await asyncio.sleep(self.heartbeat)
                continue
            if answer["term"] > self.term:
                log(f"term {self.term}: {peer} has term {answer['term']}")
                self.become_follower(answer["term"], None)
                self.reset_election_timer()
                return
            self.ack_sent[peer] = wall_sent if self.bug == "lease-wall-clock" else sent
            self.ack_tick[peer] = sent_tick
            self.update_lease()
            if answer["success"]:
                match = prev + len(entries)
                if match > self.match_index[peer]:
                    self.match_index[peer] = match
                self.next_index[peer] = match + 1
                self.advance_commit()
                if self.next_index[peer] <= self.last_index() and self.bug != "early-ack":
                    continue  # (early-ack: batches wait for the next heartbeat)
            else:
                self.next_index[peer] = max(1, min(nxt - 1, answer.get("last_index", nxt) + 1))
                continue
            try:
                async with asyncio.timeout(self.heartbeat):
                    await wake.wait()
            except TimeoutError:
                pass

    def update_lease(self) -> None:
        """The lease: until ``lease`` after the send time of the latest heartbeat round a
        majority (counting the leader) acknowledged."""
        if self.bug == "lease-ticks":
            ticks = sorted(self.ack_tick.values(), reverse=True)
            if len(ticks) + 1 >= self.majority:
                lease_ticks = int(self.lease / (self.heartbeat / 2))
                self.lease_until = max(self.lease_until, ticks[self.majority - 2] + lease_ticks)
            return
        sent = sorted(self.ack_sent.values(), reverse=True)
        if len(sent) + 1 >= self.majority:
            self.lease_until = max(self.lease_until, sent[self.majority - 2] + self.lease)

    def lease_valid(self) -> bool:
        if self.bug == "lease-ticks":
            return self.ticks < self.lease_until
        if self.bug == "lease-wall-clock":
            return time.time() < self.lease_until
        return self.now() < self.lease_until

    def advance_commit(self) -> None:
        matches = sorted([self.last_index(), *self.match_index.values()], reverse=True)
        n = matches[self.majority - 1]
        if n > self.commit and self.term_at(n) == self.term:
            self.commit = n
            self.apply_committed()

    def on_append(self, msg: dict[str, Any]) -> dict[str, Any]:
        term = msg["term"]
        if term < self.term:
            return {"term": self.term, "success": False, "last_index": self.last_index()}
        if term > self.term or self.role != FOLLOWER or self.leader != msg["leader"]:
            self.become_follower(term, msg["leader"])
        self.last_leader_contact = self.now()
        self.reset_election_timer()
        prev, prev_term = msg["prev_index"], msg["prev_term"]
        if self.bug == "commit-unchecked" and msg["commit"] > self.commit:
            new = min(msg["commit"], self.last_index())
            if new > self.commit:
                log(f"bug commit-unchecked: commit {self.commit} -> {new} before the check")
                self.commit = new
                self.apply_committed()
        if prev > self.last_index() or self.term_at(prev) != prev_term:
            return {
                "term": self.term,
                "success": False,
                "last_index": min(self.last_index(), prev - 1),
            }
        entries = msg["entries"]
        index = prev
        truncated = False
        new_entries = []
        for e in entries:
            index += 1
            if index <= self.last_index():
                if self.term_at(index) == e["term"]:
                    continue
                del self.log[index - 1 :]
                truncated = True
            self.log.append(e)
            new_entries.append(e)
        if truncated:
            log(f"term {self.term}: truncated log to {index - len(new_entries)} (conflict)")
            self.storage.rewrite(self.log)
        elif new_entries:
            self.storage.append(new_entries)
        last_new = prev + len(entries)
        if msg["commit"] > self.commit:
            self.commit = max(self.commit, min(msg["commit"], last_new))
            self.apply_committed()
        return {"term": self.term, "success": True}

    # ---- client ops ----------------------------------------------------------------------

    async def propose(self, cmd: dict[str, Any]) -> Any:
        """Append ``cmd`` and wait until it is applied; its result. TimeoutError: unknown."""
        index = self.append_local(cmd)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.bug == "early-ack":
            if cmd["op"] not in ("read", "read-set"):
                return self.early_result(cmd)  # acknowledged now, sent with the next batch
            self.urgent.update(self.others)  # a read waits: send the batch now
            for ev in self.wake.values():
                ev.set()
        self.waiters[index] = (self.term, fut)
        async with asyncio.timeout(self.propose_timeout):
            return await fut

    def early_result(self, cmd: dict[str, Any]) -> Any:
        if cmd["op"] == "cas":
            # Decide against the state the log will give (all earlier entries applied).
            state = dict(self.kv)
            for e in self.log[self.applied : self.last_index() - 1]:
                c = e["cmd"]
                if c.get("op") == "write":
                    state[str(c["key"])] = c["value"]
                elif c.get("op") == "cas" and state.get(str(c["key"])) == c["from"]:
                    state[str(c["key"])] = c["to"]
            if state.get(str(cmd["key"])) != cmd["from"]:
                return {"error": "cas-mismatch"}
        return None

    async def serve_op(self, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        f = req.get("f")
        if f not in ("read", "write", "cas", "add", "read-set"):
            return 400, {"error": f"unknown f {f!r}"}
        if self.role != LEADER:
            return await self.proxy(req)
        if f in ("read", "read-set") and self.read_locally():
            result = self.apply({"op": f, "key": req.get("key")})
            return 200, {"ok": True, "value": result, "node": self.id}
        cmd: dict[str, Any] = {"op": f}
        if f in ("read", "write", "cas"):
            cmd["key"] = req.get("key")
        if f in ("write", "add"):
            cmd["value"] = req.get("value")
        if f == "cas":
            value = req.get("value")
            if not isinstance(value, list) or len(value) != 2:
                return 400, {"error": "cas needs value [from, to]"}
            cmd["from"], cmd["to"] = value
        try:
            result = await self.propose(cmd)
        except TimeoutError as e:
            return 504, {"error": f"timeout: {e}" if str(e) else "timeout", "node": self.id}
        if isinstance(result, dict) and "error" in result:
            return 200, {"ok": False, "error": result["error"], "node": self.id}
        return 200, {
            "ok": True,
            "value": result if f in ("read", "read-set") else None,
            "node": self.id,
        }

    def read_locally(self) -> bool:
        """Whether a read may be served from the state machine now (a lease read)."""
        if self.bug == "stale-leader-read":
            return self.applied >= self.commit
        if self.reads != "lease" or self.bug == "early-ack":
            # (early-ack: reads go through the log, behind the writes it acknowledged)
            return False
        # Only once an entry of this term is committed (so commit covers every earlier
        # leader's acknowledged writes) and applied.
        return (
            self.lease_valid()
            and self.term_at(self.commit) == self.term
            and self.applied >= self.commit
        )

    async def proxy(self, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        leader = self.leader
        if leader is None or leader == self.id:
            return 503, {"error": "no leader known", "node": self.id}
        host = self._host(leader)
        body = json.dumps(req).encode()
        try:
            async with asyncio.timeout(1.0):
                reader, writer = await asyncio.open_connection(host, self.client_port)
        except (OSError, TimeoutError):
            return 503, {"error": f"leader {leader} unreachable", "node": self.id}
        try:
            async with asyncio.timeout(self.propose_timeout + 0.5):
                writer.write(
                    b"POST /op HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    + b"Content-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                status, data = await read_response(reader)
                return status, data
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            return 504, {"error": f"proxy to {leader}: no answer", "node": self.id}
        finally:
            writer.close()

    def status(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "term": self.term,
            "leader": self.leader,
            "commit": self.commit,
            "applied": self.applied,
            "last_index": self.last_index(),
            "bug": self.bug,
        }

    # ---- servers -------------------------------------------------------------------------

    async def handle_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                msg = json.loads(line)
                if msg.get("type") == "append":
                    answer = self.on_append(msg)
                elif msg.get("type") == "vote":
                    answer = self.on_vote(msg)
                else:
                    answer = {"error": "unknown message"}
                writer.write(json.dumps(answer, separators=(",", ":")).encode() + b"\n")
                await writer.drain()
        except (OSError, ValueError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def handle_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    return
                method, path, body, keep = request
                if method == "GET" and path == "/status":
                    status, data = 200, self.status()
                elif method == "POST" and path == "/op":
                    try:
                        req = json.loads(body or b"{}")
                    except ValueError:
                        status, data = 400, {"error": "body is not JSON"}
                    else:
                        status, data = await self.serve_op(req)
                else:
                    status, data = 404, {"error": f"no route {method} {path}"}
                payload = json.dumps(data).encode()
                reason = {
                    200: "OK",
                    400: "Bad Request",
                    404: "Not Found",
                    503: "Service Unavailable",
                    504: "Gateway Timeout",
                }.get(status, "X")
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n"
                    f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
                if not keep:
                    return
        except (OSError, ValueError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def run(self, listen: str) -> None:
        self.reset_election_timer()
        peer = await asyncio.start_server(self.handle_peer, listen, self.peer_port)
        client = await asyncio.start_server(self.handle_client, listen, self.client_port)
        log(f"listening on {listen}: peers {self.peer_port}, clients {self.client_port}")
        async with peer, client:
            await self.ticker()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes, bool] | None:
    line = await reader.readline()
    if not line:
        return None
    method, path, version = line.decode("latin-1").split(" ", 2)
    headers = await read_headers(reader)
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    keep = headers.get("connection", "").lower() != "close" and "1.1" in version
    return method, path, body, keep


async def read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    line = await reader.readline()
    parts = line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError("no HTTP answer")
    status = int(parts[1])
    headers = await read_headers(reader)
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    data = json.loads(body) if body else {}
    return status, data


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--id", required=True, help="this node's name (one of --peers)")
    p.add_argument("--peers", required=True, help="name=host,... of every node, in priority order")
    p.add_argument("--listen", default="0.0.0.0", help="address to listen on")
    p.add_argument("--peer-port", type=int, default=7070)
    p.add_argument("--client-port", type=int, default=7071)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--heartbeat-ms", type=float, default=50)
    p.add_argument(
        "--election-ms",
        type=float,
        default=400,
        help="minimum election timeout (also the stickiness window)",
    )
    p.add_argument(
        "--election-step-ms",
        type=float,
        default=150,
        help="added per rank in --peers (election priority)",
    )
    p.add_argument("--jitter-ms", type=float, default=50)
    p.add_argument("--lease-ms", type=float, default=250)
    p.add_argument("--rpc-timeout-ms", type=float, default=100)
    p.add_argument("--propose-timeout-ms", type=float, default=500)
    p.add_argument("--reads", choices=("lease", "log"), default="lease")
    p.add_argument("--bug", default="", help=f"a seeded bug: {', '.join(BUGS)}")
    args = p.parse_args(argv)
    if args.bug and args.bug not in BUGS:
        p.error(f"unknown bug {args.bug!r}; known: {', '.join(BUGS)}")
    if args.id not in [x.split("=", 1)[0] for x in args.peers.split(",")]:
        p.error(f"--id {args.id} is not in --peers")
    if args.lease_ms >= args.election_ms:
        p.error("--lease-ms must be below --election-ms (leases rely on stickiness)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    node = Node(args)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(node.run(args.listen))


if __name__ == "__main__":
    main()
