"""Many nodes at once: :class:`Remotes` and :func:`connect_all`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from clusters.base import Node
from harness.control.connect import connect
from harness.control.remote import CommandResult, Remote
from harness.errors import ConfigError, SSHError

__all__ = ["Remotes", "connect_all"]

T = TypeVar("T")


class Remotes(Mapping[str, Remote]):
    """Open :class:`Remote` objects by node name, in the nodes' order, with fan-out helpers.

    Fan-out never lets one node's failure cancel the others: each node's result is either
    its value or the exception it raised.
    """

    def __init__(self, remotes: Iterable[Remote]) -> None:
        self._by_name: dict[str, Remote] = {}
        for r in remotes:
            if r.name in self._by_name:
                raise ConfigError(f"two nodes are called {r.name!r}; node names must differ")
            self._by_name[r.name] = r

    def __getitem__(self, name: str) -> Remote:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(
                f"no remote for node {name!r}; have {', '.join(self._by_name) or 'none'}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def _select(self, nodes: Iterable[str | Node | Remote] | None) -> list[Remote]:
        if nodes is None:
            return list(self._by_name.values())
        picked = []
        for n in nodes:
            name = n if isinstance(n, str) else n.name
            picked.append(self[name])
        return picked

    async def on_nodes(
        self,
        fn: Callable[[Remote], Awaitable[T]],
        nodes: Iterable[str | Node | Remote] | None = None,
    ) -> dict[str, T | BaseException]:
        """Call ``fn(remote)`` on every node (or on ``nodes``, given by name, Node or
        Remote) at once, and wait for all. Returns each node's result, or the exception
        it raised: one node failing never cancels the others."""
        chosen = self._select(nodes)

        async def one(r: Remote) -> T:
            return await fn(r)

        outcomes = await asyncio.gather(*(one(r) for r in chosen), return_exceptions=True)
        return {r.name: o for r, o in zip(chosen, outcomes, strict=True)}

    async def run_all(
        self,
        cmd: str | Sequence[str],
        *,
        nodes: Iterable[str | Node | Remote] | None = None,
        **kw: Any,
    ) -> dict[str, CommandResult | BaseException]:
        """:meth:`Remote.run` ``cmd`` (with the same keyword arguments) on every node (or
        on ``nodes``) at once. Returns each node's :class:`CommandResult`, or the exception
        it raised (a :class:`CommandError` for a failed command)."""
        return await self.on_nodes(lambda r: r.run(cmd, **kw), nodes)

    async def close(self) -> None:
        """Close every connection (errors while closing are ignored)."""
        await asyncio.gather(*(r.close() for r in self._by_name.values()), return_exceptions=True)

    async def __aenter__(self) -> Remotes:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<Remotes {', '.join(self._by_name)}>"


async def connect_all(nodes: Iterable[Node], **kw: Any) -> Remotes:
    """Connect to every node at once (keyword arguments as for :func:`connect`) and return
    them as :class:`Remotes`. If any node cannot be reached, the others are closed again
    and :class:`SSHError` lists every node that failed and why."""
    node_list = list(nodes)
    names = [n.name for n in node_list]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"node names must differ; repeated: {', '.join(dupes)}")
    outcomes = await asyncio.gather(*(connect(n, **kw) for n in node_list), return_exceptions=True)
    ok = [o for o in outcomes if isinstance(o, Remote)]
    failed = [
        (n, o) for n, o in zip(node_list, outcomes, strict=True) if isinstance(o, BaseException)
    ]
    if not failed:
        return Remotes(ok)
    await Remotes(ok).close()
    for _, e in failed:
        if not isinstance(e, Exception):
            raise e  # cancellation, KeyboardInterrupt: not ours to summarise
    if len(failed) == 1:
        raise failed[0][1]
    lines = "\n".join(f"  {n.name}: {e}" for n, e in failed)
    raise SSHError(
        f"cannot connect to {len(failed)} of {len(node_list)} nodes:\n{lines}",
        node=",".join(n.name for n, _ in failed),
    )
