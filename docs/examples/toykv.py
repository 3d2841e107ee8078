"""A worked example: testing your own database with clew, in one file.

The "database" here is a toy register server (its source is the SERVER string below): an
HTTP server holding one value per key, started on every node. Each node keeps its own
copy and nothing replicates, so a client on n1 and a client on n2 see different values:
not linearizable, and clew says so. With ``-o primary=true`` every client talks to n1, and
the history is linearizable.

Run it (as root, from the repository):

    clew test docs/examples/toykv.py --time-limit 10 --faults none
    clew test docs/examples/toykv.py --time-limit 10 --faults none -o primary=true

A suite file defines ``SUITE``: a DB (install, start, stop on a node), workloads (a client
per worker, a generator of ops, a checker). See harness/api.py for the full contract.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import httpx

from checkers.linear import check
from harness.api import Suite, TestContext, Workload

PORT = 7070
# What runs on each node: a tiny register server, standard library only.
SERVER = r"""
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
data, lock = {}, threading.Lock()
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, body):
        raw = json.dumps(body).encode()
        self.send_response(code); self.send_header("Content-Length", str(len(raw)))
        self.end_headers(); self.wfile.write(raw)
    def do_GET(self):
        with lock: self.reply(200, {"value": data.get(self.path)})
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with lock:
            if "from" in req and data.get(self.path) != req["from"]:
                return self.reply(409, {"value": data.get(self.path)})
            data[self.path] = req["to"]
        self.reply(200, {"ok": True})
ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""


class ToyDB:
    """Installs the server on a node (upload a file), starts it, stops it."""

    name = "toykv"
    dir = "/opt/toykv"

    async def setup(self, ctx: TestContext, node: Any, remote: Any) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "server.py"
            src.write_text(SERVER)
            await remote.run(["mkdir", "-p", self.dir])
            await remote.upload(src, f"{self.dir}/server.py")
        # Daemons must not hold the SSH session open: setsid, nohup, redirect everything.
        await remote.run(
            f"cd {self.dir} && {{ setsid nohup python3 server.py {node.peer_address} {PORT} "
            f">>server.log 2>&1 </dev/null & echo $! > pid; }}"
        )
        await remote.run(  # ready when the port answers
            ["sh", "-c", f"for i in $(seq 50); do python3 -c 'import socket; socket.create_"
             f"connection((\"{node.peer_address}\", {PORT}), 1)' 2>/dev/null && exit 0; "
             "sleep 0.1; done; exit 1"]
        )  # fmt: skip

    async def teardown(self, ctx: TestContext, node: Any, remote: Any) -> None:
        await remote.run(f"kill -9 $(cat {self.dir}/pid) 2>/dev/null; rm -f {self.dir}/pid",
                         check=False)  # fmt: skip

    async def start(self, ctx: TestContext, node: Any, remote: Any) -> None:
        await self.setup(ctx, node, remote)

    async def kill(self, ctx: TestContext, node: Any, remote: Any) -> None:
        await self.teardown(ctx, node, remote)

    async def pause(self, ctx: TestContext, node: Any, remote: Any) -> None:
        await remote.run(f"kill -STOP $(cat {self.dir}/pid)")

    async def resume(self, ctx: TestContext, node: Any, remote: Any) -> None:
        await remote.run(f"kill -CONT $(cat {self.dir}/pid)")

    def log_files(self, ctx: TestContext, node: Any) -> list[str]:
        return [f"{self.dir}/server.log"]


class ToyClient:
    """One worker's connection: read, write and cas on key "x" over HTTP."""

    async def open(self, ctx: TestContext, node: Any) -> None:
        if ctx.options.get("primary") in (True, "true"):
            node = ctx.nodes[0]  # everyone talks to n1: linearizable
        self.http = httpx.AsyncClient(base_url=f"http://{node.peer_address}:{PORT}", timeout=1)

    async def invoke(self, ctx: TestContext, op: dict[str, Any]) -> dict[str, Any]:
        if op["f"] == "read":
            r = await self.http.get("/x")
            return {"type": "ok", "value": r.json()["value"]}
        body = (
            {"to": op["value"]}
            if op["f"] == "write"
            else dict(zip(("from", "to"), op["value"], strict=True))
        )
        r = await self.http.post("/x", content=json.dumps(body))
        # 409: the compare failed; the cas definitely did not happen.
        return {"type": "ok" if r.status_code == 200 else "fail", "value": op["value"],
                "error": None if r.status_code == 200 else "cas-mismatch"}  # fmt: skip

    async def close(self, ctx: TestContext) -> None:
        await self.http.aclose()


def register_workload(ctx: TestContext) -> Workload:
    def ops() -> dict[str, Any]:  # called for every op: a random read, write or cas
        f = ctx.rng.choice(["read", "write", "cas"])
        value = None if f == "read" else ctx.rng.randrange(5)
        if f == "cas":
            value = [ctx.rng.randrange(5), ctx.rng.randrange(5)]
        return {"f": f, "value": value}

    return Workload(
        name="register",
        client=ToyClient,
        generator=lambda ctx: ops,
        check=lambda history, ctx: check(history, "etcd"),  # nil = absent; failed cas observed
    )


SUITE = Suite(
    name="toykv",
    db=lambda ctx: ToyDB(),
    workloads={"register": register_workload},
    default_workload="register",
    description="A toy, unreplicated register server: clew's worked example.",
    # The options it reads: a run given any other (a typo) is refused before it starts.
    options={"primary": "every client talks to n1 (false)"},
)
