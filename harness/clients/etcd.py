"""etcd clients over the v3 JSON gateway (``http://<node>:2379/v3/...``) with httpx.

Each client talks to the member on its own node only. The gateway's details (reference
``local-cluster.md`` §7): keys and values are base64; int64 fields arrive as strings;
proto3 JSON omits false and empty fields (a failed txn has no ``succeeded``, an empty
range no ``kvs``).

Outcomes — what each error means for the history:

* **Connection refused, connect timeout, no free pooled connection** → ``fail``: the
  request never left this machine, so it definitely did not happen.
* **Write or CAS: read timeout, a connection broken after the request was sent, or an
  HTTP 5xx** (503 "leader changed", 504 "request timed out") → ``info``: the proposal may
  have been committed. An HTTP 4xx (rejected before it was proposed) → ``fail``, but
  408 and 499 (gRPC ``Canceled`` through grpc-gateway: "request canceled" may come after
  the proposal) → ``info``.
* **Read: any error** → ``fail``. A read changes nothing, so "it did not happen" and "it
  happened but nobody saw the result" cannot be told apart by any checker; recording
  ``fail`` keeps the worker's process alive instead of retiring it (Jepsen's etcd client
  does the same). The linearizability checker drops failed and unknown reads alike.
* **CAS whose compare did not hold** → ``fail`` with ``error`` :data:`CAS_MISMATCH`: the
  txn ran and observed that the value was not ``from``. (clew's ``etcd`` model treats a
  failed cas as that observation; the register workload removes failed cas ops whose
  error is anything else before checking, since those observed nothing.)

Values are integers stored as decimal strings. Keys: ``op["key"]`` (a string or an int)
becomes the etcd key ``clew/<key>``.

**Unsafe mode** ``serializable_reads=True``: reads are ranges with ``serializable: true``,
answered by the local member from its own state without a quorum — stale reads on a
partitioned member. This is not linearizable; it exists to show that the checker notices.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import TYPE_CHECKING, Any

import httpx

from harness.errors import ConfigError
from harness.workloads.register import CAS_MISMATCH

if TYPE_CHECKING:
    from clusters.base import Node
    from harness.api import Op, TestContext

__all__ = [
    "CAS_MISMATCH",
    "CLIENT_PORT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "KEY_PREFIX",
    "SET_PREFIX",
    "EtcdClient",
    "EtcdSetClient",
]

#: Seconds to open a TCP connection to the member (a refused or unanswered connect is a
#: definite failure).
DEFAULT_CONNECT_TIMEOUT = 0.5
#: Seconds to wait for the member's answer once the request is sent (then: unknown).
DEFAULT_READ_TIMEOUT = 1.0
CLIENT_PORT = 2379
#: Prefix of every register key clew writes.
KEY_PREFIX = "clew/"
#: Prefix of the set workload's keys: one key per element.
SET_PREFIX = "clew-set/"

#: HTTP statuses of gRPC ``Canceled`` (grpc-gateway v1: 408, v2: 499): etcd's "request
#: canceled" may come after the request was proposed, so the outcome is unknown.
_CANCELED = frozenset({408, 499})

_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode("ascii")


def _unb64(s: str) -> str:
    return base64.b64decode(s).decode()


def _parse(text: str) -> Any:
    """An int if ``text`` is a decimal string, else ``text``."""
    try:
        return int(text)
    except ValueError:
        return text


def _decode_value(raw: str) -> Any:
    """A stored (base64) value: an int if it is a decimal string, else the string."""
    return _parse(_unb64(raw))


def _prefix_end(prefix: str) -> str:
    """The ``range_end`` that selects every key starting with ``prefix`` (ASCII)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class _Unknown(Exception):
    """The request may have reached etcd; its outcome is unknown."""


class _Definite(Exception):
    """The request definitely had no effect."""


class _EtcdHTTP:
    """The shared plumbing: one httpx.AsyncClient to one member, and error classification."""

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        port: int = CLIENT_PORT,
    ) -> None:
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ConfigError("etcd client timeouts must be positive")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.port = port
        self._http: httpx.AsyncClient | None = None

    async def open(self, ctx: TestContext, node: Node) -> None:
        """Create the HTTP client for ``node``'s member (no request is made)."""
        self._http = httpx.AsyncClient(
            base_url=f"http://{node.peer_address}:{self.port}/v3/",
            timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout),
            # One request at a time per client; no proxy from the environment, which
            # would turn "refused" into a proxy's answer.
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            trust_env=False,
        )

    async def close(self, ctx: TestContext) -> None:
        """Close the HTTP client."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _post(
        self, path: str, body: dict[str, Any], *, wait: float | None = None
    ) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>``; raise :class:`_Definite` or :class:`_Unknown`.
        ``wait`` replaces the read timeout for this request (e.g. a lock that may wait)."""
        if self._http is None:
            raise ConfigError("etcd client used before open()")
        timeout: Any = httpx.USE_CLIENT_DEFAULT
        if wait is not None:
            timeout = httpx.Timeout(wait, connect=self.connect_timeout)
        try:
            resp = await self._http.post(path, json=body, timeout=timeout)
        except _CONNECT_ERRORS as e:
            raise _Definite(_describe(e)) from e
        except httpx.TransportError as e:  # read/write timeouts, broken connections
            raise _Unknown(_describe(e)) from e
        if resp.status_code != 200:
            message = _error_message(resp)
            if 400 <= resp.status_code < 500 and resp.status_code not in _CANCELED:
                raise _Definite(message)
            raise _Unknown(message)
        try:
            data: dict[str, Any] = resp.json()
        except ValueError as e:
            raise _Unknown(f"unreadable answer: {resp.text[:200]!r}") from e
        return data

    async def _range(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._post("kv/range", body)


_ERROR_NAMES: dict[type[Exception], str] = {
    httpx.ConnectError: "connect-refused",
    httpx.ConnectTimeout: "connect-timeout",
    httpx.PoolTimeout: "pool-timeout",
    httpx.ReadTimeout: "timeout",
    httpx.WriteTimeout: "write-timeout",
}


def _describe(e: Exception) -> str:
    name = _ERROR_NAMES.get(type(e), type(e).__name__)
    detail = str(e)
    return f"{name}: {detail}" if detail else name


def _error_message(resp: httpx.Response) -> str:
    """``HTTP 503: etcdserver: leader changed`` from a gateway error answer."""
    try:
        data = resp.json()
        text = data.get("message") or data.get("error") or json.dumps(data)
    except ValueError:
        text = resp.text.strip()[:200]
    return f"HTTP {resp.status_code}: {text}"


def _key(op: Op) -> str:
    key = op.get("key")
    if key is None or isinstance(key, bool) or not isinstance(key, str | int):
        raise ConfigError(f"etcd register ops need a string or int `key`, got {op!r}")
    return f"{KEY_PREFIX}{key}"


class EtcdClient(_EtcdHTTP):
    """Register ops on one member: ``read`` (value ``None`` when absent), ``write`` v,
    ``cas`` [from, to], each on ``op["key"]`` (see the module docstring for outcomes).

    ``serializable_reads=True`` is the **unsafe** mode (stale reads from one member).
    """

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        serializable_reads: bool = False,
        port: int = CLIENT_PORT,
    ) -> None:
        super().__init__(connect_timeout=connect_timeout, read_timeout=read_timeout, port=port)
        self.serializable_reads = serializable_reads

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform a read, write or cas; return its completion."""
        f = op.get("f")
        key = _key(op)
        if f == "read":
            return await self._read(key)
        if f == "write":
            return await self._write(key, op.get("value"))
        if f == "cas":
            return await self._cas(key, op.get("value"))
        raise ConfigError(f"the etcd register client cannot do f={f!r} (read, write, cas)")

    async def _read(self, key: str) -> Op:
        body: dict[str, Any] = {"key": _b64(key)}
        if self.serializable_reads:
            body["serializable"] = True
        try:
            data = await self._range(body)
        except (_Definite, _Unknown) as e:
            return {"type": "fail", "error": str(e)}
        kvs = data.get("kvs") or []
        return {"type": "ok", "value": _decode_value(kvs[0]["value"]) if kvs else None}

    async def _write(self, key: str, value: Any) -> Op:
        try:
            await self._post("kv/put", {"key": _b64(key), "value": _b64(str(value))})
        except _Definite as e:
            return {"type": "fail", "error": str(e)}
        except _Unknown as e:
            return {"type": "info", "error": str(e)}
        return {"type": "ok"}

    async def _cas(self, key: str, value: Any) -> Op:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ConfigError(f"a cas value must be [from, to], got {value!r}")
        frm, to = value
        body = {
            "compare": [
                {"key": _b64(key), "result": "EQUAL", "target": "VALUE", "value": _b64(str(frm))}
            ],
            "success": [{"request_put": {"key": _b64(key), "value": _b64(str(to))}}],
        }
        try:
            data = await self._post("kv/txn", body)
        except _Definite as e:
            return {"type": "fail", "error": str(e)}
        except _Unknown as e:
            return {"type": "info", "error": str(e)}
        if data.get("succeeded"):
            return {"type": "ok"}
        return {"type": "fail", "error": CAS_MISMATCH}


class EtcdSetClient(_EtcdHTTP):
    """A set of integers on one member: ``add`` x puts the key ``clew-set/<x>``; ``read``
    ranges over the prefix and returns the sorted elements. Reads are linearizable."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform an add or a read; return its completion."""
        f = op.get("f")
        if f == "add":
            try:
                await self._post("kv/put", {"key": _b64(f"{SET_PREFIX}{op['value']}"), "value": ""})
            except _Definite as e:
                return {"type": "fail", "error": str(e)}
            except _Unknown as e:
                return {"type": "info", "error": str(e)}
            return {"type": "ok"}
        if f == "read":
            body = {
                "key": _b64(SET_PREFIX),
                "range_end": _b64(_prefix_end(SET_PREFIX)),
                "keys_only": True,
            }
            try:
                data = await self._range(body)
            except (_Definite, _Unknown) as e:
                return {"type": "fail", "error": str(e)}
            elements = [
                _parse(_unb64(kv["key"])[len(SET_PREFIX) :]) for kv in data.get("kvs") or []
            ]
            elements.sort(key=lambda x: (isinstance(x, str), x))
            return {"type": "ok", "value": elements}
        raise ConfigError(f"the etcd set client cannot do f={f!r} (add, read)")


# ---- bank, unique ids and lock (issue 14) ---------------------------------------------------

#: Prefix of the bank workload's account keys: ``clew-bank/<account>``.
BANK_PREFIX = "clew-bank/"
#: The key whose revisions the unique-ids client hands out.
IDS_KEY = "clew-ids"
#: The lock's name (the etcd lock API makes a key under it per waiter).
LOCK_NAME = "clew-lock"
#: Seconds-to-live of a lock's lease: a holder that does not release within it loses the
#: lock without being told (etcd's lock API has no fencing the client sees).
DEFAULT_LEASE_TTL = 2
#: Seconds an acquire may wait for the lock before giving up (then: unknown).
DEFAULT_ACQUIRE_TIMEOUT = 3.0


class EtcdBankClient(_EtcdHTTP):
    """Bank accounts as keys ``clew-bank/<a>`` (decimal balances) on one member.

    * ``read``: one range over the prefix (one revision, so one consistent snapshot) ->
      ``{"<a>": balance}``; any error -> ``fail`` (a read changes nothing).
    * ``transfer``: a range of both accounts, then one txn that compares both keys'
      ``mod_revision`` and puts the new balances. Range errors -> ``fail`` (nothing was
      written yet); a compare that did not hold -> ``fail`` (error ``conflict``); too
      little money -> ``fail`` (error ``insufficient``); txn errors as for a write
      (definite -> ``fail``, unknown -> ``info``).

    Before its first op a client creates the accounts if the first does not exist (one
    txn, ``create_revision == 0``, putting every opening balance), so exactly one client's
    creation takes effect. If that fails, the op fails (it was not attempted).
    """

    def __init__(self, *, balances: dict[int, int], **kw: Any) -> None:
        super().__init__(**kw)
        self.balances = balances
        self._ready = False

    async def _ensure_accounts(self) -> None:
        first = _b64(f"{BANK_PREFIX}{min(self.balances)}")
        puts = [
            {"request_put": {"key": _b64(f"{BANK_PREFIX}{a}"), "value": _b64(str(b))}}
            for a, b in self.balances.items()
        ]
        await self._post(
            "kv/txn",
            {
                "compare": [{"key": first, "result": "EQUAL", "target": "CREATE",
                             "create_revision": "0"}],
                "success": puts,
            },
        )  # fmt: skip
        self._ready = True

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Perform a read or a transfer; return its completion."""
        f = op.get("f")
        if f not in ("read", "transfer"):
            raise ConfigError(f"the etcd bank client cannot do f={f!r} (read, transfer)")
        if not self._ready:
            try:
                await self._ensure_accounts()
            except (_Definite, _Unknown) as e:
                return {"type": "fail", "error": f"creating the accounts: {e}"}
        if f == "read":
            return await self._read()
        return await self._transfer(op.get("value"))

    async def _read(self) -> Op:
        body = {"key": _b64(BANK_PREFIX), "range_end": _b64(_prefix_end(BANK_PREFIX))}
        try:
            data = await self._range(body)
        except (_Definite, _Unknown) as e:
            return {"type": "fail", "error": str(e)}
        return {
            "type": "ok",
            "value": {
                _unb64(kv["key"])[len(BANK_PREFIX) :]: _decode_value(kv["value"])
                for kv in data.get("kvs") or []
            },
        }

    async def _transfer(self, value: Any) -> Op:
        from harness.workloads.bank import INSUFFICIENT

        if not isinstance(value, dict) or not {"from", "to", "amount"} <= value.keys():
            raise ConfigError(f"a transfer value must be {{from, to, amount}}, got {value!r}")
        keys = [f"{BANK_PREFIX}{value['from']}", f"{BANK_PREFIX}{value['to']}"]
        got: list[dict[str, Any]] = []
        try:
            for k in keys:
                kvs = (await self._range({"key": _b64(k)})).get("kvs") or []
                if not kvs:
                    return {"type": "fail", "error": f"no account {k}"}
                got.append(kvs[0])
        except (_Definite, _Unknown) as e:
            return {"type": "fail", "error": f"reading balances: {e}"}
        src, dst = (int(_decode_value(kv["value"])) for kv in got)
        amount = int(value["amount"])
        if src < amount:
            return {"type": "fail", "error": INSUFFICIENT}
        body = {
            "compare": [
                {"key": _b64(k), "result": "EQUAL", "target": "MOD",
                 "mod_revision": kv.get("mod_revision", "0")}
                for k, kv in zip(keys, got, strict=True)
            ],
            "success": [
                {"request_put": {"key": _b64(keys[0]), "value": _b64(str(src - amount))}},
                {"request_put": {"key": _b64(keys[1]), "value": _b64(str(dst + amount))}},
            ],
        }  # fmt: skip
        try:
            data = await self._post("kv/txn", body)
        except _Definite as e:
            return {"type": "fail", "error": str(e)}
        except _Unknown as e:
            return {"type": "info", "error": str(e)}
        if data.get("succeeded"):
            return {"type": "ok"}
        return {"type": "fail", "error": "conflict"}


class EtcdUniqueIdsClient(_EtcdHTTP):
    """``generate``: a put to :data:`IDS_KEY`; the id is the revision etcd gave that put
    (every write gets a new, higher revision). Errors as for a write."""

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Generate an id; return its completion."""
        if op.get("f") != "generate":
            raise ConfigError(f"the etcd unique-ids client cannot do f={op.get('f')!r}")
        try:
            data = await self._post("kv/put", {"key": _b64(IDS_KEY), "value": ""})
        except _Definite as e:
            return {"type": "fail", "error": str(e)}
        except _Unknown as e:
            return {"type": "info", "error": str(e)}
        return {"type": "ok", "value": int(data["header"]["revision"])}


class EtcdLockClient(_EtcdHTTP):
    """etcd's lock API (``v3/lock``) with a lease per hold.

    * ``acquire``: grant a lease of ``lease_ttl`` seconds, then ``lock`` with it (waiting
      up to ``acquire_timeout``). A lease grant that fails -> ``fail``. A lock request
      refused before it was made (connection refused, HTTP 4xx) -> ``fail``; one that
      timed out or broke -> ``info`` (the request may be queued and win later): the
      client then revokes the lease, best effort, so such a lock does not outlive it.
    * ``release``: ``unlock`` the key the lock gave, then revoke the lease (best effort).
      Any error -> ``info``: even an unlock that was refused releases the lock later, as
      the client stops renewing its lease. Without a held key -> ``fail`` (error
      ``not-held``) at once.

    With ``keepalive`` (the default) a background task renews the lease every third of its
    TTL, over a connection of its own, from the grant until the release — as a careful
    etcd user does. Renewals that fail are ignored: when the member is paused or cut off
    for longer than the TTL the lease lapses, etcd hands the lock to another client, and
    this one is never told — the unsafety Jepsen found in etcd's locks, and what the lock
    checker catches. ``keepalive=False`` lets every lease lapse ``lease_ttl`` after its
    grant (time spent waiting for the lock included): holds longer than that overlap.
    """

    def __init__(
        self,
        *,
        lease_ttl: int = DEFAULT_LEASE_TTL,
        acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT,
        keepalive: bool = True,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        if lease_ttl < 1 or acquire_timeout <= 0:
            raise ConfigError("lease_ttl must be >= 1 s and acquire_timeout positive")
        self.lease_ttl = lease_ttl
        self.acquire_timeout = acquire_timeout
        self.keepalive = keepalive
        self._lease: str | None = None
        self._key: str | None = None
        self._renewer: asyncio.Task[None] | None = None
        #: Revokes of leases whose acquire the op's deadline cut short (kept: a task
        #: nobody holds may be collected before it runs).
        self._revoking: set[asyncio.Task[None]] = set()
        self._renew_http: httpx.AsyncClient | None = None

    async def open(self, ctx: TestContext, node: Node) -> None:
        """Create the HTTP clients for ``node``'s member (one for lease renewals)."""
        await super().open(ctx, node)
        if self.keepalive:
            self._renew_http = httpx.AsyncClient(
                base_url=f"http://{node.peer_address}:{self.port}/v3/",
                timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout),
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                trust_env=False,
            )

    async def close(self, ctx: TestContext) -> None:
        """Stop renewing and close the HTTP clients."""
        await self._stop_renewing()
        for task in list(self._revoking):  # (its lease lapses after its TTL anyway)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._renew_http is not None:
            await self._renew_http.aclose()
            self._renew_http = None
        await super().close(ctx)

    def _start_renewing(self, lease: str) -> None:
        self._drop_renewer()  # (one renewer at a time: never an orphan)
        if self._renew_http is None:
            return
        http = self._renew_http

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease_ttl / 3)
                with contextlib.suppress(httpx.HTTPError):
                    await http.post("lease/keepalive", json={"ID": lease})

        self._renewer = asyncio.create_task(renew())

    def _drop_renewer(self) -> asyncio.Task[None] | None:
        """Cancel the lease renewer, if any, without waiting; the task cancelled."""
        task, self._renewer = self._renewer, None
        if task is not None:
            task.cancel()
        return task

    async def _stop_renewing(self) -> None:
        task = self._drop_renewer()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def invoke(self, ctx: TestContext, op: Op) -> Op:
        """Acquire or release the lock; return the completion."""
        f = op.get("f")
        if f == "acquire":
            return await self._acquire()
        if f == "release":
            return await self._release()
        raise ConfigError(f"the etcd lock client cannot do f={f!r} (acquire, release)")

    async def _acquire(self) -> Op:
        from harness.workloads.lock import NOT_HELD

        if self._key is not None:
            return {"type": "fail", "error": "already-held"}
        try:
            grant = await self._post("lease/grant", {"TTL": str(self.lease_ttl)})
        except (_Definite, _Unknown) as e:  # an orphan lease just lapses
            return {"type": "fail", "error": f"lease grant: {e}"}
        lease = str(grant.get("ID", ""))
        if not lease:
            return {"type": "fail", "error": f"lease grant: no ID in {grant!r}"}
        self._start_renewing(lease)
        try:
            data = await self._post(
                "lock/lock", {"name": _b64(LOCK_NAME), "lease": lease}, wait=self.acquire_timeout
            )
        except _Definite as e:
            await self._revoke(lease)
            return {"type": "fail", "error": str(e)}
        except _Unknown as e:
            await self._revoke(lease)
            return {"type": "info", "error": str(e)}
        except asyncio.CancelledError:  # (the op's deadline): the lock may be granted yet
            self._abandon(lease)
            raise
        key = data.get("key")
        if not key:
            await self._revoke(lease)
            return {"type": "fail", "error": NOT_HELD}
        self._lease, self._key = lease, key
        return {"type": "ok"}

    async def _release(self) -> Op:
        from harness.workloads.lock import NOT_HELD

        if self._key is None:
            return {"type": "fail", "error": NOT_HELD}
        key, lease = self._key, self._lease
        self._key = self._lease = None
        try:
            await self._post("lock/unlock", {"key": key})
        except _Definite as e:
            # Nothing was unlocked yet, but this client stops renewing the lease and forgets
            # the hold: the lock *will* be released, when the lease lapses — an effect at
            # an unknown time after the invocation, which is what info means.
            return {"type": "info", "error": f"{e}; the lease will lapse"}
        except _Unknown as e:
            return {"type": "info", "error": str(e)}
        finally:
            if lease is not None:
                await self._revoke(lease)
        return {"type": "ok"}

    def _abandon(self, lease: str) -> None:
        """Stop renewing ``lease`` at once and revoke it in the background: an acquire
        cut short may still be granted, and a lease renewed for ever would hold the lock
        for the rest of the run (every later acquire would time out)."""
        self._drop_renewer()
        task = asyncio.create_task(self._revoke(lease))
        self._revoking.add(task)
        task.add_done_callback(self._revoking.discard)

    async def _revoke(self, lease: str) -> None:
        """Stop renewing and revoke ``lease``, ignoring errors (it lapses after its TTL)."""
        await self._stop_renewing()
        with contextlib.suppress(_Definite, _Unknown):
            await self._post("lease/revoke", {"ID": lease})
