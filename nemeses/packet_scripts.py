"""Packet faults' node-side shell scripts and names, pure functions of their arguments:
the tagged iptables chain, netem qdiscs, the NFQUEUE delayer's start/stop, heal and
verify. :mod:`nemeses.packet` sends them to the nodes."""

from __future__ import annotations

import shlex
import zlib
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING

from nemeses.netaddr import split_families
from nemeses.partition import XTABLES_WAIT

if TYPE_CHECKING:
    from nemeses.packet import NodeAction, PacketFault

__all__ = [
    "DEFAULT_PYTHON",
    "DELAYER_START_TIMEOUT",
    "DELAYER_STOP_TIMEOUT",
    "default_queue",
    "delayer_program",
    "delayer_start_script",
    "iptables_apply_script",
    "netem_apply_script",
    "node_apply_script",
    "packet_chain",
    "packet_heal_script",
    "packet_verify_script",
    "probe_script",
    "qdisc_handles",
    "routes_script",
    "state_dir",
]

#: Seconds a node waits for a freshly started delayer to bind its queue.
DELAYER_START_TIMEOUT = 5.0
#: Seconds heal waits for a delayer to exit after SIGTERM before sending SIGKILL.
DELAYER_STOP_TIMEOUT = 3.0
#: The interpreter that runs the delayer on a node.
DEFAULT_PYTHON = "python3"
_PIDFILE = "packet-delayer.pid"
_PROGRAM = "nfqueue_delayer.py"
_LOG = "packet-delayer.log"


# --- names derived from the tag --------------------------------------------------------


def packet_chain(tag: str) -> str:
    """The iptables chain (``mangle`` table) holding the packet rules of ``tag``."""
    return f"{tag.upper()}-PACKET"


def qdisc_handles(tag: str) -> tuple[str, str]:
    """The handles (``"c1e0:"`` style) of the root prio qdisc and of its netem child for
    ``tag``: fixed per tag, in a range (0xc000-0xdffe) that ``tc`` never picks itself."""
    major = 0xC000 + (zlib.crc32(tag.encode()) % 0x1FFF)
    return f"{major:x}:", f"{major + 1:x}:"


def default_queue(tag: str) -> int:
    """The NFQUEUE number the delayer of ``tag`` binds (per network namespace)."""
    return 0x7000 + (zlib.crc32(tag.encode()) % 0x1000)


def state_dir(tag: str) -> str:
    """Where the node keeps the delayer's program, pidfile and log."""
    return f"/run/{tag}-packet"


def delayer_program() -> str:
    """The delayer's source text (what is copied to nodes)."""
    return resources.files("nemeses").joinpath(_PROGRAM).read_text(encoding="utf-8")


# --- scripts (pure) --------------------------------------------------------------------


def _ipt(binary: str, *args: str) -> str:
    return " ".join([binary, "-w", str(XTABLES_WAIT), "-t", "mangle", *args])


def _ipt_remove_fn(tag: str) -> str:
    """Shell function ``clew_pkt_ipt_remove BIN``: delete every jump to our chain and the
    chain itself, if the chain exists (status 1 from ``-L`` means it does not)."""
    c = packet_chain(tag)
    b = '"$1"'
    return (
        "clew_pkt_ipt_remove() {\n"
        '  command -v "$1" >/dev/null 2>&1 || return 0\n'
        f"  rc=0; {_ipt(b, '-n', '-L', c)} >/dev/null 2>&1 || rc=$?\n"
        '  [ "$rc" -eq 1 ] && return 0\n'
        f'  [ "$rc" -eq 0 ] || {{ echo "$1 -t mangle -L {c}: status $rc" >&2; return "$rc"; }}\n'
        f"  while {_ipt(b, '-D', 'INPUT', '-j', c)} 2>/dev/null; do :; done\n"
        f"  {_ipt(b, '-F', c)} && {_ipt(b, '-X', c)}\n"
        "}\n"
    )


def _alive_fn() -> str:
    # A process that exists and is not a zombie (a zombie has exited; only its entry is left).
    return (
        "clew_pkt_alive() {\n"
        '  [ -r "/proc/$1/status" ] && ! grep -q "^State:[[:space:]]*Z" "/proc/$1/status"\n'
        "}\n"
    )


def _stop_delayer_fn(tag: str) -> str:
    """Shell function ``clew_pkt_stop_delayer``: stop the delayer the pidfile names, if
    that pid really runs clew's delayer program (never a recycled pid, never by pattern):
    SIGTERM (it accepts what it holds and unbinds), SIGKILL after a grace period."""
    d = state_dir(tag)
    tries = max(1, round(DELAYER_STOP_TIMEOUT * 10))
    return _alive_fn() + (
        "clew_pkt_stop_delayer() {\n"
        f'  p="{d}/{_PIDFILE}"\n'
        '  [ -f "$p" ] || return 0\n'
        '  pid=$(cat "$p" 2>/dev/null)\n'
        '  case "$pid" in ""|*[!0-9]*) rm -f "$p"; return 0;; esac\n'
        '  if clew_pkt_alive "$pid" && tr "\\000" " " <"/proc/$pid/cmdline" | '
        f'grep -qF "{d}/{_PROGRAM}"; then\n'
        '    kill -TERM "$pid" 2>/dev/null\n'
        "    i=0\n"
        f'    while clew_pkt_alive "$pid" && [ "$i" -lt {tries} ]; do sleep 0.1; i=$((i+1)); done\n'
        '    if clew_pkt_alive "$pid"; then kill -KILL "$pid" 2>/dev/null; fi\n'
        "  fi\n"
        '  rm -f "$p"\n'
        "}\n"
    )


def _our_root(handle: str) -> str:
    # awk condition: a `tc qdisc show` line of a root qdisc with this handle
    # ("qdisc prio c1e0: dev eth0 root refcnt 2 ...").
    return f'$3 == "{handle}" && $6 == "root"'


def _netem_remove_fn(tag: str) -> str:
    """Shell function ``clew_pkt_netem_remove``: delete every root qdisc whose handle is
    ours, on every device (the kernel refuses the delete if the handle differs)."""
    prio, _ = qdisc_handles(tag)
    return (
        "clew_pkt_netem_remove() {\n"
        "  command -v tc >/dev/null 2>&1 || return 0\n"
        f"  for dev in $(tc qdisc show | awk '{_our_root(prio)} {{print $5}}'); do\n"
        f'    tc qdisc del dev "$dev" root handle {prio} || return $?\n'
        "  done\n"
        "}\n"
    )


def packet_heal_script(tag: str) -> str:
    """A POSIX sh script removing every packet fault of ``tag`` on a node, whichever driver
    made it: the mangle chain and its jumps (iptables and ip6tables, rules first so nothing
    is queued any more), the delayer named by the pidfile, and root qdiscs with ``tag``'s
    handle. Idempotent, needs no memory of what was injected, touches nothing else."""
    return (
        _ipt_remove_fn(tag)
        + _stop_delayer_fn(tag)
        + _netem_remove_fn(tag)
        + "clew_pkt_ipt_remove iptables || exit $?\n"
        + "clew_pkt_ipt_remove ip6tables || exit $?\n"
        + "clew_pkt_stop_delayer\n"
        + "clew_pkt_netem_remove || exit $?\n"
    )


def packet_verify_script(tag: str, queue: int) -> str:
    """A shell script printing one line per packet-fault object of ``tag`` still on the
    node (nothing when clean): the chain, jumps to it, a live delayer or a stale pidfile,
    queue ``queue`` still bound, root qdiscs with ``tag``'s handle."""
    c = packet_chain(tag)
    d = state_dir(tag)
    prio, _ = qdisc_handles(tag)
    b = '"$b"'
    return _alive_fn() + (
        "for b in iptables ip6tables; do\n"
        '  command -v "$b" >/dev/null 2>&1 || continue\n'
        f'  {_ipt(b, "-n", "-L", c)} >/dev/null 2>&1 && echo "$b mangle chain {c} present"\n'
        f'  j=$({_ipt(b, "-S", "INPUT")} 2>/dev/null | grep -c -- "-j {c}\\$")\n'
        f'  [ "${{j:-0}}" -gt 0 ] && echo "$b mangle INPUT has $j jump(s) to {c}"\n'
        "done\n"
        f'p="{d}/{_PIDFILE}"\n'
        'if [ -f "$p" ]; then\n'
        '  pid=$(cat "$p" 2>/dev/null)\n'
        '  if [ -n "$pid" ] && clew_pkt_alive "$pid"; then '
        'echo "NFQUEUE delayer pid $pid still running";\n'
        '  else echo "stale delayer pidfile $p"; fi\n'
        "fi\n"
        f"q=/proc/net/netfilter/nfnetlink_queue\n"
        f'[ -r "$q" ] && awk \'$1 == {queue} {{found=1}} END {{exit !found}}\' "$q" && '
        f'echo "NFQUEUE {queue} is still bound"\n'
        "if command -v tc >/dev/null 2>&1; then\n"
        f"  tc qdisc show | awk '{_our_root(prio)} {{print \"root qdisc {prio} on \" $5}}'\n"
        "fi\n"
        "true\n"
    )


def probe_script(tag: str, queue: int, python: str = DEFAULT_PYTHON) -> str:
    """A shell script (the delayer's source on its stdin) that saves the delayer under
    :func:`state_dir` and prints one word per working ingredient: ``netem`` (probed in a
    throwaway network namespace when ``unshare`` exists), ``iptables``, ``ip6tables``,
    ``statistic`` and ``nfqueue-rule`` (the match and target, probed in a throwaway
    namespace), ``python`` and ``nfqueue-bind`` (the delayer binds and unbinds ``queue``
    here), or ``nfqueue-error <why>``. Run it after heal, so no delayer holds the queue."""
    d = state_dir(tag)
    ipt = f"iptables -w {XTABLES_WAIT} -t mangle -A INPUT"
    netns_ipt = (
        'if [ -n "$ns" ] && command -v iptables >/dev/null 2>&1; then\n'
        f"  $ns {ipt} -m statistic --mode random --probability 0.5 -j DROP "
        ">/dev/null 2>&1 && echo statistic\n"
        f"  $ns {ipt} -j NFQUEUE --queue-num {queue} --queue-bypass "
        ">/dev/null 2>&1 && echo nfqueue-rule\n"
        "elif command -v iptables >/dev/null 2>&1; then\n"
        "  iptables -m statistic -h >/dev/null 2>&1 && echo statistic\n"
        "  iptables -j NFQUEUE -h >/dev/null 2>&1 && echo nfqueue-rule\n"
        "fi\n"
    )
    return (
        f'd="{d}"\n'
        'mkdir -p "$d" && chmod 700 "$d" || exit 1\n'
        f'cat >"$d/{_PROGRAM}" || exit 1\n'
        'ns=""; command -v unshare >/dev/null 2>&1 && unshare --net true 2>/dev/null && '
        'ns="unshare --net"\n'
        "if command -v tc >/dev/null 2>&1; then\n"
        '  if [ -n "$ns" ]; then\n'
        "    $ns tc qdisc add dev lo root netem delay 1ms >/dev/null 2>&1 && echo netem\n"
        "  elif [ -d /sys/module/sch_netem ]; then echo netem; fi\n"
        "fi\n"
        "for b in iptables ip6tables; do\n"
        '  command -v "$b" >/dev/null 2>&1 && '
        f'"$b" -w {XTABLES_WAIT} -t mangle -n -L INPUT >/dev/null 2>&1 && echo "$b"\n'
        "done\n" + netns_ipt + f"if command -v {python} >/dev/null 2>&1; then\n"
        "  echo python\n"
        f'  if err=$({python} "$d/{_PROGRAM}" --probe --queue {queue} 2>&1 >/dev/null); '
        "then echo nfqueue-bind\n"
        '  else echo "nfqueue-error $(printf %s "$err" | tail -n 1)"; fi\n'
        f"else echo 'nfqueue-error {python} is not installed'; fi\n"
        "true\n"
    )


def routes_script(addresses: Iterable[str]) -> str:
    """A shell script printing, per address, the address and the device the node routes
    it through (one line each)."""
    quoted = " ".join(shlex.quote(a) for a in addresses)
    return (
        f"for a in {quoted}; do printf '%s ' \"$a\"; "
        'ip -o route get "$a" | awk \'{for (i = 1; i < NF; i++) if ($i == "dev") '
        "{print $(i + 1); exit}}'; done\n"
    )


def _netem_args(fault: PacketFault) -> str:
    args = ["netem"]
    if fault.delay_ms:
        args.append(f"delay {fault.delay_ms}ms")
        if fault.jitter_ms:
            args.append(f"{fault.jitter_ms}ms")
    if fault.loss:
        args.append(f"loss random {fault.loss * 100:g}%")
    if fault.duplicate:
        args.append(f"duplicate {fault.duplicate * 100:g}%")
    return " ".join(args)


def netem_apply_script(tag: str, fault: PacketFault, devices: Mapping[str, Sequence[str]]) -> str:
    """A shell script making each device of ``devices`` (device -> destination address
    literals) send its packets to those destinations through a netem band doing
    ``fault``'s loss/delay/duplication: a root ``prio`` qdisc (4 bands, the default
    priomap, so ordinary traffic never reaches band 4) with clew's handle, the netem
    qdisc on band 4, one u32 filter per destination. Replaces clew's earlier qdisc;
    refuses a device whose root qdisc is someone else's; removes clew's qdisc from every
    device not listed. (Run on VMs, which have netem, in test_qemu_cluster.py; the
    local provider's host kernel lacks it.)"""
    prio, child = qdisc_handles(tag)
    major = prio.rstrip(":")
    lines = [_netem_remove_fn(tag), "clew_pkt_netem_remove || exit $?\n"]
    for dev, addrs in sorted(devices.items()):
        v4, v6 = split_families(addrs)
        q = shlex.quote(dev)
        lines.append(
            f"root=$(tc qdisc show dev {q} root | awk 'NR == 1 {{print $3}}')\n"
            f'if [ -n "$root" ] && [ "$root" != "0:" ]; then echo "device {dev} has a root '
            f"qdisc ($root) that is not clew's; not replacing it\" >&2; exit 1; fi\n"
            f"tc qdisc add dev {q} root handle {prio} prio bands 4 "
            "priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1 || exit $?\n"
            f"tc qdisc add dev {q} parent {major}:4 handle {child} {_netem_args(fault)} "
            "|| exit $?\n"
        )
        lines.extend(
            f"tc filter add dev {q} parent {prio} protocol ip prio 3 u32 "
            f"match ip dst {a}/32 flowid {major}:4 || exit $?\n"
            for a in v4
        )
        lines.extend(
            f"tc filter add dev {q} parent {prio} protocol ipv6 prio 4 u32 "
            f"match ip6 dst {a}/128 flowid {major}:4 || exit $?\n"
            for a in v6
        )
    return "".join(lines)


def iptables_apply_script(tag: str, fault: PacketFault, sources: Iterable[str], queue: int) -> str:
    """A shell script making chain ``<TAG>-PACKET`` (mangle table, jumped to once from
    ``INPUT``) drop packets from ``sources`` with ``fault.loss`` (statistic match) and
    send them to NFQUEUE ``queue`` (with ``--queue-bypass``) when ``fault`` delays:
    ``iptables`` for IPv4 sources, ``ip6tables`` for IPv6; a family with no sources has its
    chain removed. Idempotent (flush and refill; the jump is added only if missing)."""
    v4, v6 = split_families(sources)
    c = packet_chain(tag)
    parts = [_ipt_remove_fn(tag)]
    for binary, addrs in (("iptables", v4), ("ip6tables", v6)):
        if not addrs:
            parts.append(f"clew_pkt_ipt_remove {binary} || exit $?\n")
            continue
        src = ",".join(addrs)
        steps = [
            f"{{ {_ipt(binary, '-N', c)} 2>/dev/null || {_ipt(binary, '-F', c)}; }}",
            f"{{ {_ipt(binary, '-C', 'INPUT', '-j', c)} 2>/dev/null || "
            f"{_ipt(binary, '-I', 'INPUT', '1', '-j', c)}; }}",
        ]
        if fault.loss:
            steps.append(
                _ipt(binary, "-A", c, "-s", src, "-m", "statistic", "--mode", "random",
                     "--probability", f"{fault.loss:.6g}", "-j", "DROP")
            )  # fmt: skip
        if fault.delay_ms:
            steps.append(
                _ipt(binary, "-A", c, "-s", src, "-j", "NFQUEUE", "--queue-num", str(queue),
                     "--queue-bypass")
            )  # fmt: skip
        parts.append(" && ".join(steps) + " || exit $?\n")
    return "".join(parts)


def delayer_start_script(
    tag: str, fault: PacketFault, queue: int, python: str = DEFAULT_PYTHON
) -> str:
    """A shell script (the delayer's source on its stdin) that saves the delayer under
    :func:`state_dir`, stops the one the pidfile names, and starts a new one detached
    (``setsid nohup``) delaying ``queue`` by ``fault.delay_ms`` ± ``fault.jitter_ms``;
    it returns once the delayer has bound the queue (its pidfile appears), or fails with
    the end of the delayer's log within :data:`DELAYER_START_TIMEOUT`."""
    d = state_dir(tag)
    tries = max(1, round(DELAYER_START_TIMEOUT * 10))
    args = (
        f"--queue {queue} --delay-ms {fault.delay_ms} --jitter-ms {fault.jitter_ms} "
        f'--pidfile "$d/{_PIDFILE}"'
    )
    return _stop_delayer_fn(tag) + (
        f'd="{d}"\n'
        'mkdir -p "$d" && chmod 700 "$d" || exit 1\n'
        f'cat >"$d/{_PROGRAM}" || exit 1\n'
        "clew_pkt_stop_delayer\n"
        f'setsid nohup {python} "$d/{_PROGRAM}" {args} </dev/null >"$d/{_LOG}" 2>&1 &\n'
        "child=$!\n"
        "i=0\n"
        f'while [ ! -s "$d/{_PIDFILE}" ]; do\n'
        # (the pidfile check again: it may have appeared since the loop's test)
        f'  if ! clew_pkt_alive "$child" && [ ! -s "$d/{_PIDFILE}" ]; then\n'
        f'    echo "the NFQUEUE delayer exited at start: $(tail -n 3 "$d/{_LOG}")" >&2; exit 1\n'
        "  fi\n"
        f'  if [ "$i" -ge {tries} ]; then kill -TERM "$child" 2>/dev/null\n'
        f'    echo "the NFQUEUE delayer did not bind queue {queue} within '
        f'{DELAYER_START_TIMEOUT:g} s: $(tail -n 3 "$d/{_LOG}")" >&2; exit 1\n'
        "  fi\n"
        "  sleep 0.1; i=$((i+1))\n"
        "done\n"
    )


def node_apply_script(
    tag: str,
    fault: PacketFault,
    action: NodeAction,
    queue: int,
    python: str = DEFAULT_PYTHON,
) -> tuple[str, str | None]:
    """The script putting ``action`` (for ``fault``) in force on a node, replacing whatever
    packet fault it held, and the stdin it needs (the delayer's source, or ``None``).
    Order: a delayer is started before rules queue to it, and stopped after they no longer
    do."""
    delays = bool(action.ingress) and fault.delay_ms > 0
    parts: list[str] = []
    if delays:
        parts.append(delayer_start_script(tag, fault, queue, python))
    parts.append(iptables_apply_script(tag, fault, action.ingress, queue))
    if not delays:
        parts.append(_stop_delayer_fn(tag) + "clew_pkt_stop_delayer\n")
    if action.netem:
        parts.append(netem_apply_script(tag, fault, action.netem))
    else:
        parts.append(_netem_remove_fn(tag) + "clew_pkt_netem_remove || exit $?\n")
    return "".join(parts), delayer_program() if delays else None
