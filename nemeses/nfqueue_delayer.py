#!/usr/bin/env python3
"""Delay packets on a node without netem: hold each packet of an NFQUEUE, then accept it.

A standalone, stdlib-only program that clew's packet nemesis copies to a node and starts
detached (it must run with whatever ``python3`` the node has, 3.7 or later, so it imports
nothing from clew). iptables rules send the packets to delay to queue ``N``
(``-j NFQUEUE --queue-num N --queue-bypass``); this program binds that queue over an
``AF_NETLINK``/``NETLINK_NETFILTER`` socket, asks for packet *metadata* only (the kernel
keeps the packet), and for each packet it is told about, issues an ``NF_ACCEPT`` verdict
``delay ± jitter`` milliseconds later (uniform jitter, measured on the monotonic clock).
Packets are held in a heap of due times, so with jitter they may leave out of order, as
they do with netem.

Failing open: the queue is configured with ``NFQA_CFG_F_FAIL_OPEN`` (a full queue accepts
instead of dropping) and the rules carry ``--queue-bypass`` (with no program bound, packets
pass), so if this program dies the traffic flows undelayed. On SIGTERM or SIGINT it
accepts every held packet at once, unbinds and exits 0; on SIGKILL the kernel drops the
few packets it was holding and, from then on, bypasses the queue.

Usage::

    nfqueue_delayer.py --queue 7531 --delay-ms 100 --jitter-ms 10 --pidfile /run/clew/d.pid
    nfqueue_delayer.py --queue 7531 --probe     # bind and unbind: exit 0 if this works

The pidfile is written (atomically) only once the queue is bound, so its appearance means
"delaying"; it is removed on a clean exit if it still names this process. Exit status 2
for bad arguments, 1 when the queue cannot be bound (the reason on stderr).
"""

from __future__ import annotations

import argparse
import errno
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

# Netlink and nfnetlink_queue constants (linux/netlink.h, linux/netfilter/nfnetlink*.h).
NETLINK_NETFILTER = 12
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 0x1
NFQA_CFG_F_GSO = 0x4
NF_ACCEPT = 1
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5

#: Packets the kernel may hold in the queue before it starts accepting them undelayed.
DEFAULT_MAX_HELD = 16384
#: Bytes of socket receive buffer asked for (packet notices wait there until read).
DEFAULT_RCVBUF = 8 * 1024 * 1024
#: Verdict messages sent in one write.
VERDICT_BATCH = 512
#: Seconds to wait for the kernel's answer to a configuration message.
CONFIG_TIMEOUT = 5.0

_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_NLATTR = struct.Struct("=HH")  # length, type


def _attr(kind: int, payload: bytes) -> bytes:
    size = _NLATTR.size + len(payload)
    return _NLATTR.pack(size, kind) + payload + b"\0" * (-size % 4)


def _message(msg_type: int, flags: int, seq: int, queue: int, attrs: bytes) -> bytes:
    # nfgenmsg: family (AF_UNSPEC), version (NFNETLINK_V0), resource id (queue, big-endian).
    body = struct.pack("=BB", 0, 0) + struct.pack("!H", queue) + attrs
    kind = (NFNL_SUBSYS_QUEUE << 8) | msg_type
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def verdict_message(queue: int, packet_id: int, verdict: int = NF_ACCEPT) -> bytes:
    """The NFQNL_MSG_VERDICT message giving ``verdict`` to packet ``packet_id``."""
    hdr = _attr(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id))
    return _message(NFQNL_MSG_VERDICT, NLM_F_REQUEST, 0, queue, hdr)


def config_messages(queue: int, max_held: int, seq: int) -> list[bytes]:
    """The NFQNL_MSG_CONFIG messages binding ``queue`` in copy-meta mode, failing open."""
    flags = NLM_F_REQUEST | NLM_F_ACK
    bind = _attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0))
    params = _attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
    extra = (
        _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", max_held))
        + _attr(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO))
        + _attr(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO))
    )
    return [
        _message(NFQNL_MSG_CONFIG, flags, seq, queue, bind),
        _message(NFQNL_MSG_CONFIG, flags, seq + 1, queue, params + extra),
    ]


def unbind_message(queue: int, seq: int) -> bytes:
    """The NFQNL_MSG_CONFIG message unbinding ``queue``."""
    unbind = _attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_UNBIND, 0))
    return _message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, queue, unbind)


def parse_messages(data: bytes) -> tuple[list[int], list[int]]:
    """Packet ids announced in ``data`` (NFQNL_MSG_PACKET messages) and the error codes of
    any netlink error messages in it (0 is an acknowledgement)."""
    ids: list[int] = []
    errors: list[int] = []
    packet_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET
    off = 0
    while off + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _port = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size:
            break
        end = min(off + length, len(data))
        if kind == NLMSG_ERROR:
            errors.append(struct.unpack_from("=i", data, off + _NLMSGHDR.size)[0])
        elif kind == packet_type:
            pos = off + _NLMSGHDR.size + 4  # skip nfgenmsg
            while pos + _NLATTR.size <= end:
                alen, atype = _NLATTR.unpack_from(data, pos)
                if alen < _NLATTR.size:
                    break
                if atype & 0x3FFF == NFQA_PACKET_HDR:
                    ids.append(struct.unpack_from("!I", data, pos + _NLATTR.size)[0])
                    break
                pos += (alen + 3) & ~3
        off += (length + 3) & ~3
    return ids, errors


class Delayer:
    """One bound queue and the packets it holds (id by due time)."""

    def __init__(self, queue: int, delay: float, jitter: float, max_held: int, seed: int | None):
        self.queue = queue
        self.delay = delay
        self.jitter = jitter
        self.max_held = max_held
        self.rng = random.Random(seed)
        self.held: list[tuple[float, int]] = []
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self._seq = 1

    def _ask(self, message: bytes) -> None:
        """Send a configuration ``message`` and wait for its acknowledgement (OSError if
        the kernel refuses it), skipping packet notices that arrive meanwhile (they are
        held like any other)."""
        seq = _NLMSGHDR.unpack_from(message)[3]
        self.sock.send(message)
        deadline = time.monotonic() + CONFIG_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                raise OSError(errno.ETIMEDOUT, "no answer from nfnetlink_queue")
            data = self.sock.recv(65536)
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                length, kind, _f, got_seq, _p = _NLMSGHDR.unpack_from(data, off)
                if kind == NLMSG_ERROR and got_seq == seq:
                    code = struct.unpack_from("=i", data, off + _NLMSGHDR.size)[0]
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    self._hold(parse_messages(data)[0])
                    return
                off += max((length + 3) & ~3, _NLMSGHDR.size)
            self._hold(parse_messages(data)[0])

    def bind(self) -> None:
        """Bind the queue (copy metadata only, fail open, ``max_held`` packets at most)."""
        self.sock.bind((0, 0))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, DEFAULT_RCVBUF)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, DEFAULT_RCVBUF)
        for message in config_messages(self.queue, self.max_held, self._seq):
            self._ask(message)
        self._seq += 2

    def unbind(self) -> None:
        """Unbind the queue (held packets must have been released first)."""
        self._ask(unbind_message(self.queue, self._seq))
        self._seq += 1

    def _hold(self, ids: list[int]) -> None:
        now = time.monotonic()
        for packet_id in ids:
            wait = self.delay + self.rng.uniform(-self.jitter, self.jitter)
            heapq.heappush(self.held, (now + max(0.0, wait), packet_id))

    def _accept(self, ids: list[int]) -> None:
        for start in range(0, len(ids), VERDICT_BATCH):
            batch = b"".join(
                verdict_message(self.queue, i) for i in ids[start : start + VERDICT_BATCH]
            )
            try:
                self.sock.send(batch)
            except OSError as e:  # a verdict for a packet the kernel flushed: harmless
                if e.errno not in (errno.ENOENT, errno.ENOBUFS, errno.EAGAIN):
                    raise

    def release_due(self) -> None:
        """Accept every held packet whose time has come."""
        now = time.monotonic()
        due: list[int] = []
        while self.held and self.held[0][0] <= now:
            due.append(heapq.heappop(self.held)[1])
        if due:
            self._accept(due)

    def release_all(self) -> None:
        """Accept every held packet now."""
        ids = [packet_id for _due, packet_id in sorted(self.held)]
        self.held = []
        self._accept(ids)

    def read_available(self) -> None:
        """Hold every packet announced on the socket so far (without blocking)."""
        while True:
            try:
                data = self.sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as e:
                # ENOBUFS: notices were lost to a full socket buffer (8 MiB by default);
                # their packets stay queued until unbind. Carry on with the rest.
                if e.errno == errno.ENOBUFS:
                    continue
                raise
            self._hold(parse_messages(data)[0])

    def run(self, stopping: list[bool], wakeup: int) -> None:
        """Delay packets until ``stopping[0]`` becomes true, then release them all.
        ``wakeup`` is a file descriptor that becomes readable when a signal arrives (so a
        stop request does not wait for the next due packet)."""
        while not stopping[0]:
            timeout = max(0.0, self.held[0][0] - time.monotonic()) if self.held else None
            fd = self.sock.fileno()
            if fd in select.select([fd, wakeup], [], [], timeout)[0]:
                self.read_available()
            self.release_due()
        self.read_available()
        self.release_all()


def _write_pidfile(path: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def _remove_pidfile(path: str) -> None:
    try:
        with open(path) as f:
            mine = f.read().strip() == str(os.getpid())
        if mine:
            os.unlink(path)
    except OSError:
        pass


def _arguments(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Delay the packets of an NFQUEUE.")
    p.add_argument("--queue", type=int, required=True, help="queue number (0-65535)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="delay of every packet")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="uniform jitter, ± this much")
    p.add_argument("--max-held", type=int, default=DEFAULT_MAX_HELD, help="queue length")
    p.add_argument("--seed", type=int, default=None, help="seed of the jitter")
    p.add_argument("--pidfile", default=None, help="written once the queue is bound")
    p.add_argument("--probe", action="store_true", help="bind, unbind and exit")
    args = p.parse_args(argv)
    if not 0 <= args.queue <= 65535:
        p.error("--queue must be between 0 and 65535")
    if args.delay_ms < 0 or args.jitter_ms < 0 or args.jitter_ms > args.delay_ms:
        p.error("need 0 <= --jitter-ms <= --delay-ms")
    if args.max_held < 1:
        p.error("--max-held must be positive")
    return args


def main(argv: list[str]) -> int:
    """Run the delayer (see the module docstring); the exit status."""
    args = _arguments(argv)
    stopping = [False]

    def stop(_signum: int, _frame: object) -> None:
        stopping[0] = True

    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)  # a signal makes select() in run() return at once
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delayer = Delayer(
        args.queue, args.delay_ms / 1000.0, args.jitter_ms / 1000.0, args.max_held, args.seed
    )
    try:
        delayer.bind()
    except OSError as e:
        print(f"nfqueue_delayer: cannot bind queue {args.queue}: {e}", file=sys.stderr)
        return 1
    if args.probe:
        delayer.release_all()
        delayer.unbind()
        print(f"queue {args.queue} can be bound")
        return 0
    if args.pidfile:
        _write_pidfile(args.pidfile)
    print(
        f"nfqueue_delayer: pid {os.getpid()} delaying queue {args.queue} by "
        f"{args.delay_ms:g} ± {args.jitter_ms:g} ms",
        file=sys.stderr,
        flush=True,
    )
    try:
        delayer.run(stopping, wake_read)
        delayer.unbind()
    finally:
        if args.pidfile:
            _remove_pidfile(args.pidfile)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
