"""bugkv clients: register and set ops over the server's HTTP API (``POST /op``) with httpx.

Each client talks to the server on its own node, which proxies the op to the leader it
knows. Every answer names the node that served the op; the completion carries it as
``node``, so the history records which node served each acknowledged op (lineage for
fault selection), not only which node was asked.

Outcomes:

* connection refused, connect timeout, HTTP 503 (no leader known, leader unreachable),
  HTTP 4xx → ``fail``: the op was never proposed;
* a write, cas or add with a read timeout, a broken connection or HTTP 504 → ``info``;
* a read with any error → ``fail`` (a read changes nothing; see the etcd client);
* a cas whose comparison did not hold → ``fail`` with ``error`` :data:`CAS_MISMATCH`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx

from harness.errors import ConfigError
from harness.workloads.register import CAS_MISMATCH

if TYPE_CHECKING:
    from clusters.base import Node
    from harness.api import Op, TestContext

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_READ_TIMEOUT", "BugkvClient", "BugkvSetClient"]

#: Seconds to open a connection to the node's server.
DEFAULT_CONNECT_TIMEOUT = 0.5
#: Seconds to wait for an answer (the server gives up on a proposal after 0.5 s).
DEFAULT_READ_TIMEOUT = 1.5
#: Tries of a set read that definitely failed, and the seconds between them (within the
#: run's op timeout, 5 s by default, with the default client timeouts).
SET_READ_TRIES = 3
SET_READ_PAUSE = 0.5

_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class _Outcome(Exception):
    def __init__(self, definite: bool, message: str, node: str | None = None) -> None:
        super().__init__(message)
        self.definite = definite
        self.node = node


class _BugkvHTTP:
    """One httpx client to one node's server, and the classification of answers."""

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        port: int = 7071,
    ) -> None:
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ConfigError("bugkv client timeouts must be positive")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.port = port
        self._http: httpx.AsyncClient | None = None

    async def open(self, ctx: TestContext, node: Node) -> None:
        """Create the HTTP client for ``node``'s server (no request is made)."""
        self._http = httpx.AsyncClient(
            base_url=f"http://{node.peer_address}:{self.port}",
            timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            trust_env=False,
        )

    async def close(self, ctx: TestContext) -> None:
        """Close the HTTP client."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _op(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/op``: the answer of a 200, else :class:`_Outcome`."""
        if self._http is None:
            raise ConfigError("bugkv client used before open()")
        try:
            resp = await self._http.post("/op", json=body)
        except _CONNECT_ERRORS as e:
            raise _Outcome(True, f"connect: {type(e).__name__}") from e
        except httpx.TransportError as e:
            raise _Outcome(False, f"{type(e).__name__}") from e
        try:
            data = resp.json()
        except ValueError:
            data = {"error": resp.text[:200]}
        node = data.get("node") if isinstance(data, dict) else None
        if resp.status_code == 200:
            return dict(data)
        message = f"HTTP {resp.status_code}: {data.get('error', '')}"
        definite = resp.status_code == 503 or 400 <= resp.status_code < 500
        raise _Outcome(definite, message, node)

    async def _update(self, body: dict[str, Any]) -> Op:
        """A write, cas or add: ``ok``, ``fail`` or ``info`` as the module says."""
        try:
            data = await self._op(body)
        except _Outcome as o:
            return _completion("fail" if o.definite else "info", o)
        if data.get("ok"):
            return {"type": "ok", "node": data.get("node")}
        return {"type": "fail", "error": data.get("error"), "node": data.get("node")}

    async def _read(self, body: dict[str, Any]) -> Op:
        try:
            data = await self._op(body)
        except _Outcome as o:
            return _completion("fail", o)
        return {"type": "ok", "value": data.get("value"), "node": data.get("node")}


def _completion(kind: str, o: _Outcome) -> Op:
    out: Op = {"type": kind, "error": str(o)}
    if o.node:
        out["node"] = o.node
    return out


def _key(op: Op) -> Any:
    key = op.get("key")
    if key is None or isinstance(key, bool) or not isinstance(key, str | int):
        raise ConfigError(f"bugkv register ops need a string or int `key`, got {op!r}")
    return key


class BugkvClient(_BugkvHTTP):
    """Register ops: ``read`` (``None`` when absent), ``write`` v, ``cas`` [from, to]."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform a read, write or cas; return its completion."""
        f = op.get("f")
        key = _key(op)
        if f == "read":
            return await self._read({"f": "read", "key": key})
        if f == "write":
            return await self._update({"f": "write", "key": key, "value": op.get("value")})
        if f == "cas":
            value = op.get("value")
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise ConfigError(f"a cas value must be [from, to], got {value!r}")
            done = await self._update({"f": "cas", "key": key, "value": list(value)})
            if done["type"] == "fail" and done.get("error") == "cas-mismatch":
                done["error"] = CAS_MISMATCH
            return done
        raise ConfigError(f"the bugkv register client cannot do f={f!r} (read, write, cas)")


class BugkvSetClient(_BugkvHTTP):
    """A set of integers: ``add`` x, and ``read`` of every element (sorted)."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform an add or a read; return its completion."""
        f = op.get("f")
        if f == "add":
            return await self._update({"f": "add", "value": op.get("value")})
        if f == "read":
            # A read that definitely failed (no leader yet after the heal, a node still
            # restarting) is tried again: the final read is the set's only evidence.
            done = await self._read({"f": "read-set"})
            for _ in range(SET_READ_TRIES - 1):
                if done["type"] != "fail":
                    break
                await asyncio.sleep(SET_READ_PAUSE)
                done = await self._read({"f": "read-set"})
            return done
        raise ConfigError(f"the bugkv set client cannot do f={f!r} (add, read)")
