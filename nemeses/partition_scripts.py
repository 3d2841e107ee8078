"""The netfilter scripts of partitions, pure functions of their arguments: clew's nft table
(with kernel-expiring set elements), the iptables fallback chain, heal, verify and the
driver probe. :mod:`nemeses.partition` runs them on the nodes."""

from __future__ import annotations

import math
from collections.abc import Iterable

from nemeses.netaddr import split_families

__all__ = [
    "NFT_PRIORITY",
    "XTABLES_WAIT",
    "heal_script",
    "iptables_apply_script",
    "nft_apply_script",
    "probe_script",
    "verify_script",
]

#: Priority of clew's nft input chain: ahead of the usual filter chains (0).
NFT_PRIORITY = -10
#: Seconds iptables waits for the xtables lock (``-w``) before giving up.
XTABLES_WAIT = 5


# --- netfilter scripts (pure) ----------------------------------------------------------


def _chain(tag: str) -> str:
    return f"{tag.upper()}-PARTITION"


def nft_apply_script(tag: str, drop_from: Iterable[str], lease: float | None = None) -> str:
    """An ``nft -f -`` script that atomically replaces table ``inet <tag>`` with one
    dropping ingress packets from ``drop_from`` (IPv4/IPv6 literals). With ``lease``
    (seconds) each address expires in the kernel after that long. Idempotent."""
    v4, v6 = split_families(drop_from)
    t = f"inet {tag}"
    ttl = f" timeout {math.ceil(lease * 1000)}ms" if lease else ""
    lines = [
        f"add table {t}",
        f"delete table {t}",
        f"add table {t}",
        f"add set {t} blocked4 {{ type ipv4_addr; flags timeout; }}",
        f"add set {t} blocked6 {{ type ipv6_addr; flags timeout; }}",
        f"add chain {t} input {{ type filter hook input priority {NFT_PRIORITY}; policy accept; }}",
        f"add rule {t} input ip saddr @blocked4 drop",
        f"add rule {t} input ip6 saddr @blocked6 drop",
    ]
    for name, addrs in (("blocked4", v4), ("blocked6", v6)):
        if addrs:
            lines.append(f"add element {t} {name} {{ {', '.join(a + ttl for a in addrs)} }}")
    return "\n".join(lines) + "\n"


def _ipt_remove_fn(tag: str) -> str:
    """Shell function ``clew_ipt_remove BIN``: delete every jump to our chain and the chain
    itself, if the chain exists (status 1 from ``-L`` means it does not)."""
    c = _chain(tag)
    w = f"-w {XTABLES_WAIT}"
    return (
        "clew_ipt_remove() {\n"
        '  command -v "$1" >/dev/null 2>&1 || return 0\n'
        f'  rc=0; "$1" {w} -n -L {c} >/dev/null 2>&1 || rc=$?\n'
        '  [ "$rc" -eq 1 ] && return 0\n'
        f'  [ "$rc" -eq 0 ] || {{ echo "$1 -L {c}: status $rc" >&2; return "$rc"; }}\n'
        f'  while "$1" {w} -D INPUT -j {c} 2>/dev/null; do :; done\n'
        f'  "$1" {w} -F {c} && "$1" {w} -X {c}\n'
        "}\n"
    )


def iptables_apply_script(tag: str, drop_from: Iterable[str]) -> str:
    """A shell script making chain ``<TAG>-PARTITION`` (jumped to once from ``INPUT``) drop
    packets from ``drop_from``: ``iptables`` for IPv4 peers, ``ip6tables`` for IPv6; a
    family with no peers has its chain removed. Idempotent (the chain is flushed and
    refilled; the jump is added only if missing)."""
    v4, v6 = split_families(drop_from)
    c = _chain(tag)
    w = f"-w {XTABLES_WAIT}"
    parts = [_ipt_remove_fn(tag)]
    for binary, addrs in (("iptables", v4), ("ip6tables", v6)):
        if addrs:
            parts.append(
                f"{{ {binary} {w} -N {c} 2>/dev/null || {binary} {w} -F {c}; }} && "
                f"{{ {binary} {w} -C INPUT -j {c} 2>/dev/null || "
                f"{binary} {w} -I INPUT 1 -j {c}; }} && "
                f"{binary} {w} -A {c} -s {','.join(addrs)} -j DROP || exit $?\n"
            )
        else:
            parts.append(f"clew_ipt_remove {binary} || exit $?\n")
    return "".join(parts)


def heal_script(tag: str) -> str:
    """A shell script removing every partition object of ``tag`` on a node, whichever
    driver made it: the nft table (if nft works there), and the iptables/ip6tables chain
    with every jump to it. Touches nothing else; succeeds when there is nothing to do."""
    t = f"inet {tag}"
    return (
        _ipt_remove_fn(tag)
        + "clew_ipt_remove iptables || exit $?\n"
        + "clew_ipt_remove ip6tables || exit $?\n"
        + "if command -v nft >/dev/null 2>&1 && "
        + f"nft list table {t} >/dev/null 2>&1; then nft delete table {t} || exit $?; fi\n"
    )


def verify_script(tag: str) -> str:
    """A shell script printing one line per partition object of ``tag`` still on the node
    (nothing when clean)."""
    t = f"inet {tag}"
    c = _chain(tag)
    w = f"-w {XTABLES_WAIT}"
    return (
        "if command -v nft >/dev/null 2>&1 && "
        f"nft list table {t} >/dev/null 2>&1; then echo 'nft table {t} present'; fi\n"
        "for b in iptables ip6tables; do\n"
        '  command -v "$b" >/dev/null 2>&1 || continue\n'
        f'  "$b" {w} -n -L {c} >/dev/null 2>&1 && echo "$b chain {c} present"\n'
        f'  j=$("$b" {w} -S INPUT 2>/dev/null | grep -c -- "-j {c}\\$")\n'
        f'  [ "${{j:-0}}" -gt 0 ] && echo "$b INPUT has $j jump(s) to {c}"\n'
        "done\n"
        "true\n"
    )


def probe_script() -> str:
    # "nft" if nft works in this node's network namespace, "iptables" if iptables does,
    # "none" otherwise. Both are read-only checks.
    return (
        "if command -v nft >/dev/null 2>&1 && nft list tables >/dev/null 2>&1; "
        "then echo nft; fi\n"
        "if command -v iptables >/dev/null 2>&1 && "
        f"iptables -w {XTABLES_WAIT} -n -L INPUT >/dev/null 2>&1; then echo iptables; fi\n"
        "true\n"
    )
