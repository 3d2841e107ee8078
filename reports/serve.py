"""``clew serve``: the store over HTTP, on 127.0.0.1 by default, read-only.

Only files inside the store are served: a request whose path has a ``..`` segment (also
percent-encoded), a backslash, a NUL, or that resolves (after following symlinks) outside
the store gets 404, and so does anything that is neither a file nor a directory (a FIFO).
``/`` serves ``index.html``. Every response carries a CSP ``sandbox``, so a page of a
foreign store cannot read the store's other files through the server.

A connection silent for :data:`IDLE_TIMEOUT` seconds (a request not sent, a response not
read), or whose request is not in whole within that time, is closed: each holds a
thread. At most :data:`MAX_CONNECTIONS` connections are served at once; one more is
answered ``503 Service Unavailable`` (with ``Retry-After``) and closed, so that many
clients cannot make the server start a thread each without end. A client that goes away
mid-download (a browser tab closed on a history of gigabytes) is no error of the
server's, and prints nothing.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import sys
import threading
import urllib.parse
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["IDLE_TIMEOUT", "MAX_CONNECTIONS", "SANDBOX", "TEXT_TYPES", "StoreHandler",
           "StoreServer", "make_server", "resolve"]  # fmt: skip

#: Seconds a connection may stay silent before it is closed (``clew serve --idle-timeout``).
IDLE_TIMEOUT = 60.0
#: Connections served at once (``clew serve --max-connections``), each by its own thread.
MAX_CONNECTIONS = 64

#: What a connection beyond the cap is told before it is closed.
_BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Retry-After: 1\r\nContent-Length: 40\r\nConnection: close\r\n\r\n"
         b"too many connections at once; try again\n")  # fmt: skip


def resolve(store: Path, url_path: str) -> Path | None:
    """The file or directory of the store that ``url_path`` names, or None if it names
    nothing inside the store (``store`` must be resolved already)."""
    path = urllib.parse.urlsplit(url_path).path
    # Decode repeatedly so that %252e%252e cannot smuggle a ".." past one decode.
    for _ in range(3):
        decoded = urllib.parse.unquote(path)
        if decoded == path:
            break
        path = decoded
    if "\\" in path or "\x00" in path or not path.startswith("/") or path.startswith("//"):
        return None
    parts = [p for p in path.split("/") if p]
    if any(p in ("..", ".") for p in parts):
        return None
    target = store.joinpath(*parts) if parts else store
    try:
        real = target.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if real != store and store not in real.parents:
        return None
    return real


#: A run's histories, ledgers and logs, shown as text by a browser (not downloaded).
TEXT_TYPES = {
    ext: "text/plain; charset=utf-8"
    for ext in (".jsonl", ".log", ".edn", ".txt", ".out", ".err", ".toml")
}


#: The sandbox every response is served in (see :meth:`StoreHandler.end_headers`).
SANDBOX = "sandbox allow-scripts allow-popups allow-downloads"


class StoreHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files of one store; 404 for anything outside it. ``history.jsonl``, the
    fault ledger, node logs and EDN files are served as ``text/plain``."""

    store: Path
    extensions_map: ClassVar[dict[str, str]] = {  # type: ignore[misc]
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        **TEXT_TYPES,
    }

    def __init__(
        self, *args: Any, store: Path, idle_timeout: float | None = IDLE_TIMEOUT, **kwargs: Any
    ) -> None:
        self.store = store
        self.idle_timeout = idle_timeout
        super().__init__(*args, directory=str(store), **kwargs)

    def setup(self) -> None:
        self.request.settimeout(self.idle_timeout)  # before the request is read
        self._request_timer: threading.Timer | None = None
        super().setup()

    def handle_one_request(self) -> None:
        # The idle timeout bounds each read; a client trickling its request a byte at a
        # time would still hold the connection for ever, so the request line and headers
        # must arrive whole within it too.
        if self.idle_timeout is not None:
            self._request_timer = threading.Timer(self.idle_timeout, self._cut_off)
            self._request_timer.daemon = True
            self._request_timer.start()
        try:
            super().handle_one_request()
        finally:
            self._stop_request_timer()

    def parse_request(self) -> bool:
        ok = super().parse_request()
        self._stop_request_timer()  # the request is in: the response may take its time
        return ok

    def _stop_request_timer(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _cut_off(self) -> None:
        with contextlib.suppress(OSError):
            self.request.shutdown(socket.SHUT_RDWR)

    def send_head(self) -> Any:
        target = resolve(self.store, self.path)
        if target is None or not (target.is_file() or target.is_dir()):
            # (a FIFO or a device in a foreign store would hang this request's thread)
            self.send_error(404, "Not found")
            return None
        return super().send_head()

    def end_headers(self) -> None:
        # A page of a foreign store runs in an origin of its own (sandbox without
        # allow-same-origin): its scripts cannot read the store's other files through
        # this server. clew's pages need only their own inline scripts and links.
        self.send_header("Content-Security-Policy", SANDBOX)
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def translate_path(self, path: str) -> str:
        target = resolve(self.store, path)
        if target is None:  # not reached via send_head; be safe anyway
            return str(self.store / "\x00nonexistent")
        if urllib.parse.urlsplit(path).path.endswith("/"):
            return str(target) + os.sep
        return str(target)

    def log_message(self, format: str, *args: Any) -> None:  # quieter: one line per request
        if os.environ.get("CLEW_SERVE_QUIET"):
            return
        super().log_message(format, *args)


class StoreServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that takes a client going away, or falling silent, as the
    end of its request rather than an error to print with a traceback, and serves at most
    ``max_connections`` connections at once (one more is answered 503 and closed)."""

    def __init__(self, address: tuple[str, int], handler: Any, max_connections: int) -> None:
        self.slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)  # a client that does not read is not waited for
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()  # no thread was started to release it
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


def make_server(
    store: str | Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    idle_timeout: float | None = IDLE_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> StoreServer:
    """An HTTP server of ``store`` (not yet serving; call ``serve_forever``). Port 0 picks a
    free port (see ``server.server_address``); a connection silent for ``idle_timeout``
    seconds is closed (``None``: never); at most ``max_connections`` are served at once."""
    root = Path(store).resolve(strict=True)
    handler = partial(StoreHandler, store=root, idle_timeout=idle_timeout)
    return StoreServer((host, port), handler, max_connections)
