"""``clew serve``: the store over HTTP, on 127.0.0.1 by default, read-only.

Only files inside the store are served: a request whose path has a ``..`` segment (also
percent-encoded), a backslash, a NUL, or that resolves (after following symlinks) outside
the store gets 404, and so does anything that is neither a file nor a directory (a FIFO).
A directory serves its ``index.html`` (or ``index.htm``) under the same rule: one that
leads out of the store makes the directory 404. The file sent is the one opened, checked
after opening (its path, through ``/proc/self/fd``; without ``/proc``, 404), so a link
swapped in meanwhile is not followed out. ``/`` serves ``index.html``. Every response
carries a CSP ``sandbox``, so a page of a foreign store cannot read the store's other
files through the server.

Served on a loopback address (the default), a request that has a ``Host`` header must
name a loopback host there (``localhost``, ``127.x.x.x``, ``[::1]``), or it gets 421: a web
page whose own name an attacker points at 127.0.0.1 (DNS rebinding) cannot read the
store through the user's browser. On another address (``--host``) any name is taken.

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
import datetime
import email.utils
import http.server
import ipaddress
import os
import socket
import stat
import sys
import threading
import urllib.parse
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["IDLE_TIMEOUT", "MAX_CONNECTIONS", "SANDBOX", "TEXT_TYPES", "StoreHandler",
           "StoreServer", "loopback_host", "make_server", "resolve"]  # fmt: skip

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
    return _inside(store, store.joinpath(*parts) if parts else store)


def _inside(store: Path, target: Path) -> Path | None:
    """``target`` with every link followed, if it exists and is inside ``store``."""
    try:
        real = target.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if real != store and store not in real.parents:
        return None
    return real


def loopback_host(host: str) -> bool:
    """Whether ``host`` (a ``Host`` header's name, without its port) names this machine's
    loopback: ``localhost`` (or a name under it), 127.0.0.0/8 or ::1."""
    name = host.strip().lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The name of a ``Host`` header's value, without its port."""
    header = header.strip()
    if header.startswith("["):  # [::1]:8080
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


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
        self,
        *args: Any,
        store: Path,
        idle_timeout: float | None = IDLE_TIMEOUT,
        **kwargs: Any,
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
        """Send the headers of the file or directory listing the request names, if it is
        inside the store (see the module docstring); returns the file, the listing, or
        None when an error was sent."""
        host = self.headers.get("Host")  # (absent in HTTP/1.0; a browser always sends it)
        # (under another server than clew's: the check stays on)
        loopback_only = not isinstance(self.server, StoreServer) or self.server.loopback_only
        if loopback_only and host is not None and not loopback_host(_host_name(host)):
            self.send_error(421, "Misdirected Request: serving only localhost names")
            return None
        target = resolve(self.store, self.path)
        if target is not None and target.is_dir():
            url = urllib.parse.urlsplit(self.path)
            if not url.path.endswith("/"):
                self.send_response(301)
                moved = urllib.parse.urlunsplit(url._replace(path=url.path + "/"))
                self.send_header("Location", moved)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            index = next((target / n for n in ("index.html", "index.htm")
                          if os.path.lexists(target / n)), None)  # fmt: skip
            if index is None:
                return self.list_directory(str(target))
            target = _inside(self.store, index)
        if target is None or not target.is_file():
            # (a FIFO or a device in a foreign store would hang this request's thread)
            self.send_error(404, "Not found")
            return None
        return self._open(target)

    def _opened_inside(self, fd: int) -> bool:
        """Whether the file open as ``fd`` is inside the store, where ``/proc/self/fd``
        says it is (without ``/proc`` nothing can say: no; a stat of the path would follow
        the same swapped link as the open did)."""
        try:
            opened = Path(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            return False
        return _inside(self.store, opened) == opened

    def _not_modified_since(self, mtime: float) -> bool:
        """Whether the request's ``If-Modified-Since`` (without ``If-None-Match``, as the
        standard handler) is no earlier than ``mtime``, to the second: the browser's copy
        is current (304)."""
        since = self.headers.get("If-Modified-Since")
        if since is None or "If-None-Match" in self.headers:
            return False
        try:
            when = email.utils.parsedate_to_datetime(since)
        except (TypeError, IndexError, OverflowError, ValueError):
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        modified = datetime.datetime.fromtimestamp(int(mtime), datetime.UTC)
        return modified <= when

    def _open(self, target: Path) -> Any:
        """Open ``target`` and send its headers, if what was opened is a regular file
        inside the store (else 404); 304 when the browser's copy is current."""
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            self.send_error(404, "Not found")
            return None
        f = os.fdopen(fd, "rb")
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not self._opened_inside(fd):
                f.close()
                self.send_error(404, "Not found")
                return None
            if self._not_modified_since(st.st_mtime):
                f.close()
                self.send_response(304)
                self.end_headers()
                return None
            self.send_response(200)
            self.send_header("Content-type", self.guess_type(str(target)))
            self.send_header("Content-Length", str(st.st_size))
            self.send_header("Last-Modified", self.date_time_string(int(st.st_mtime)))
            self.end_headers()
            return f
        except BaseException:
            f.close()
            raise

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
        #: Whether the address bound is a loopback one (decided from the address, not the
        #: name asked for: `--host $(hostname)` binds 127.0.1.1 on Debian).
        self.loopback_only = loopback_host(str(self.server_address[0]))

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
    seconds is closed (``None``: never); at most ``max_connections`` are served at once.
    On a loopback ``host`` only requests naming a loopback host are served (see the module
    docstring)."""
    root = Path(store).resolve(strict=True)
    handler = partial(StoreHandler, store=root, idle_timeout=idle_timeout)
    return StoreServer((host, port), handler, max_connections)
