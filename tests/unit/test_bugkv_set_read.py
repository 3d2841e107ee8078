"""The bugkv set client tries a final read that definitely failed again (the final read is
the set's only evidence), and gives up after SET_READ_TRIES."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from harness.clients import bugkv
from harness.clients.bugkv import BugkvSetClient


def read_with(statuses: list[int]) -> tuple[dict[str, Any], int]:
    async def go() -> tuple[dict[str, Any], int]:
        client = BugkvSetClient()
        calls = 0

        def handler(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            status = statuses[min(calls, len(statuses) - 1)]
            calls += 1
            if status == 200:
                return httpx.Response(200, json={"ok": True, "value": [1], "node": "n2"})
            return httpx.Response(status, json={"error": "no leader known", "node": "n3"})

        transport = httpx.MockTransport(handler)
        client._http = httpx.AsyncClient(base_url="http://n", transport=transport)
        done = await client.invoke(None, {"f": "read"})  # type: ignore[arg-type]
        await client.close(None)  # type: ignore[arg-type]
        return done, calls

    return asyncio.run(go())


def test_a_failed_set_read_is_tried_again_until_it_succeeds(monkeypatch: Any) -> None:
    monkeypatch.setattr(bugkv, "SET_READ_PAUSE", 0.0)
    done, calls = read_with([503, 503, 200])
    assert done == {"type": "ok", "value": [1], "node": "n2"} and calls == 3


def test_a_set_read_gives_up_after_its_tries(monkeypatch: Any) -> None:
    monkeypatch.setattr(bugkv, "SET_READ_PAUSE", 0.0)
    done, calls = read_with([503])
    assert done["type"] == "fail" and calls == bugkv.SET_READ_TRIES == 3
