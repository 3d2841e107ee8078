"""``clew serve``: serves the store and nothing outside it."""

from __future__ import annotations

import inspect
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reports.serve import make_server, resolve

#: A store's index, as clew writes it (`clew serve` replaces only such a page).
INDEX = '<meta name="generator" content="clew"><p>the index</p>'


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    run = root / "etcd" / "20250101T000000"
    run.mkdir(parents=True)
    (run / "report.html").write_text("<p>the report</p>")
    (root / "etcd" / "latest").symlink_to("20250101T000000")
    (root / "index.html").write_text(INDEX)
    (tmp_path / "secret.txt").write_text("SECRET outside the store")
    (root / "etcd" / "escape").symlink_to(tmp_path / "secret.txt")
    return root


@pytest.fixture
def server(store: Path) -> Iterator[tuple[str, int]]:
    srv = make_server(store, "127.0.0.1", 0)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        host, port = srv.server_address[:2]
        yield str(host), int(port)
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def raw_response(addr: tuple[str, int], target: str) -> tuple[int, dict[str, str], bytes]:
    """Send ``GET target`` byte for byte (no client-side normalisation of ``..``): the
    status, the headers (names in lower case) and the body."""
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(f"GET {target} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().splitlines()
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def raw_get(addr: tuple[str, int], target: str) -> tuple[int, bytes]:
    """The status and body of ``GET target`` (see :func:`raw_response`)."""
    code, _headers, body = raw_response(addr, target)
    return code, body


def test_serves_the_index_reports_and_latest(server: tuple[str, int]) -> None:
    assert raw_get(server, "/") == (200, INDEX.encode())
    assert raw_get(server, "/etcd/20250101T000000/report.html") == (200, b"<p>the report</p>")
    assert raw_get(server, "/etcd/latest/report.html") == (200, b"<p>the report</p>")
    code, body = raw_get(server, "/etcd/")
    assert code == 200 and b"20250101T000000" in body  # a directory listing inside the store


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/etcd/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/%252e%252e/secret.txt",
        "/etcd/..%5c..%5csecret.txt",
        "//etc/passwd",
        "/etc/passwd",
        "http://127.0.0.1/../secret.txt",
        "/etcd/escape",  # a symlink that points outside the store
        "/nonexistent.html",
    ],
)
def test_paths_outside_the_store_are_404(server: tuple[str, int], target: str) -> None:
    code, body = raw_get(server, target)
    assert code == 404
    assert b"SECRET" not in body and b"root:" not in body


def _get_with_host(addr: tuple[str, int], target: str, host: str) -> int:
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return int(s.makefile("rb").readline().split()[1])


@pytest.mark.parametrize("index", ["index.html", "index.htm"])
def test_a_directory_whose_index_leads_out_of_the_store_is_404(
    store: Path, server: tuple[str, int], index: str
) -> None:
    """The directory's index was opened by the standard handler, following a link to any
    file on the machine (/etc/passwd, /proc/self/environ)."""
    (store / "etcd" / "leak").mkdir()
    (store / "etcd" / "leak" / index).symlink_to(store.parent / "secret.txt")
    code, body = raw_get(server, "/etcd/leak/")
    assert code == 404 and b"SECRET" not in body
    (store / "etcd" / "fine").mkdir()
    (store / "etcd" / "fine" / index).symlink_to("../20250101T000000/report.html")
    assert raw_get(server, "/etcd/fine/") == (200, b"<p>the report</p>")
    assert raw_get(server, "/etcd/fine")[0] == 301  # as the standard handler: add the /


def test_a_file_opened_is_checked_where_it_is(store: Path, server: tuple[str, int],
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A link swapped in between the check of the path and its opening is not followed
    out: what was opened is checked."""
    import reports.serve as serve

    real_inside = serve._inside
    calls: list[Path] = []

    def then_swapped(root: Path, target: Path) -> Path | None:
        found = real_inside(root, target)
        if not calls and target.name == "report.html":
            calls.append(target)
            target.unlink()  # swapped for a link out, after the check
            target.symlink_to(store.parent / "secret.txt")
        return found

    monkeypatch.setattr(serve, "_inside", then_swapped)
    code, body = raw_get(server, "/etcd/20250101T000000/report.html")
    assert calls and code == 404 and b"SECRET" not in body


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8080", "127.0.0.1", "127.0.0.2:80",
                                  "[::1]:8080", "app.localhost"])  # fmt: skip
def test_loopback_names_are_served(server: tuple[str, int], host: str) -> None:
    assert _get_with_host(server, "/", host) == 200


@pytest.mark.parametrize("host", ["rebind.attacker.example:18042", "10.0.0.5", "[::2]",
                                  "localhost.attacker.example", ""])  # fmt: skip
def test_other_host_names_are_refused_on_a_loopback_address(
    server: tuple[str, int], host: str
) -> None:
    """DNS rebinding: a page whose name an attacker points at 127.0.0.1 read the store
    through the user's browser."""
    assert _get_with_host(server, "/", host) == 421


def test_resolve_rejects_escapes_and_accepts_inside(store: Path) -> None:
    root = store.resolve()
    assert resolve(root, "/etcd/latest/report.html") == root / "etcd/20250101T000000/report.html"
    assert resolve(root, "/") == root
    for bad in ("/../x", "/a/%2e%2e/%2e%2e/x", "\\..\\x", "/a\x00", "//tmp", "relative"):
        assert resolve(root, bad) is None


def test_binds_to_localhost_by_default() -> None:
    assert inspect.signature(make_server).parameters["host"].default == "127.0.0.1"
    from harness.cli_report import serve_cmd

    host = next(p for p in serve_cmd.params if p.name == "host")
    assert host.default == "127.0.0.1"


def test_an_address_it_cannot_listen_on_is_named_with_the_reason(store: Path) -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    def serve(*args: str) -> tuple[int, str]:
        r = CliRunner().invoke(cli, ["serve", "--store", str(store), *args],
                               catch_exceptions=False)  # fmt: skip
        return r.exit_code, r.output

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, out = serve("--port", port)
    assert code == 254 and f"cannot listen on 127.0.0.1:{port}: Address already in use" in out
    code, out = serve("--host", "nosuch.invalid")  # a name that never resolves (RFC 6761)
    assert code == 254 and "cannot listen on nosuch.invalid:8080" in out
    code, out = serve("--host", "192.0.2.1")  # TEST-NET-1: no machine's own address
    assert code == 254 and "cannot listen on 192.0.2.1:8080: Cannot assign requested" in out


def test_every_page_is_sandboxed_from_the_rest_of_the_store(server: tuple[str, int]) -> None:
    # a foreign store's page runs in an origin of its own: it cannot read other files of
    # the store through the server (no allow-same-origin)
    for target in ("/", "/etcd/20250101T000000/report.html", "/etcd/", "/nonexistent"):
        headers = raw_response(server, target)[1]
        csp = headers["content-security-policy"]
        assert csp.startswith("sandbox ") and "allow-same-origin" not in csp, target
        assert headers["x-content-type-options"] == "nosniff"


def test_a_fifo_in_the_store_is_404_not_a_hung_request(
    server: tuple[str, int], store: Path
) -> None:
    import os

    os.mkfifo(store / "etcd" / "pipe.txt")
    assert raw_get(server, "/etcd/pipe.txt")[0] == 404  # (raw_get times out after 5 s)


def test_a_silent_connection_is_closed_and_holds_no_thread(store: Path) -> None:
    """A client that connects and sends nothing held its thread for ever."""
    srv = make_server(store, "127.0.0.1", 0, idle_timeout=0.3)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        with socket.create_connection(srv.server_address[:2], timeout=10) as s:
            assert s.recv(1) == b""  # closed by the server, well before the client's 10 s
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_a_client_going_away_mid_download_prints_no_traceback(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A browser tab closed on a history of gigabytes printed a traceback in `clew serve`."""
    import struct
    import time

    (store / "etcd" / "20250101T000000" / "history.jsonl").write_bytes(b"x" * 2**25)
    srv = make_server(store, "127.0.0.1", 0)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        s = socket.create_connection(srv.server_address[:2], timeout=5)
        s.sendall(b"GET /etcd/20250101T000000/history.jsonl HTTP/1.0\r\n\r\n")
        assert s.recv(4096)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # a reset, mid-response
        time.sleep(1)
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "ConnectionResetError" not in err


def test_connections_beyond_the_cap_are_told_to_retry_and_closed(store: Path) -> None:
    """Each connection held a thread, with no cap: many silent clients made as many."""
    srv = make_server(store, "127.0.0.1", 0, idle_timeout=30, max_connections=2)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    address = srv.server_address[:2]
    try:
        held = [socket.create_connection(address, timeout=10) for _ in range(2)]
        busy = b""
        for _ in range(50):  # until the server has taken both held connections
            with socket.create_connection(address, timeout=10) as s:
                busy = s.makefile("rb").read()
            if busy:
                break
        assert busy.startswith(b"HTTP/1.0 503 ") and b"Retry-After: 1" in busy, busy
        assert busy.endswith(b"\r\n\r\ntoo many connections at once; try again\n")
        for s in held:  # a held connection is still served, and frees its slot
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert s.makefile("rb").read().startswith(b"HTTP/1.0 200 ")
            s.close()
        codes = [raw_get(address, "/")[0]]
        while codes[-1] == 503 and len(codes) < 40:  # a slot is freed just after its close
            time.sleep(0.05)
            codes.append(raw_get(address, "/")[0])
        assert codes[-1] == 200, codes
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_a_request_trickled_in_is_cut_off_at_the_idle_timeout(store: Path) -> None:
    """The idle timeout bounded each read: a header byte every few seconds held the
    connection (and its slot) for ever."""
    srv = make_server(store, "127.0.0.1", 0, idle_timeout=0.6)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        with socket.create_connection(srv.server_address[:2], timeout=10) as s:
            s.sendall(b"GET / HTTP/1.0\r\n")
            t0 = time.monotonic()
            closed = False
            while time.monotonic() - t0 < 10 and not closed:
                try:
                    s.sendall(b"X-Slow: 1\r\n")  # well within the idle timeout each time
                    s.settimeout(0.2)
                    closed = s.recv(1) == b""
                except TimeoutError:
                    pass
                except OSError:  # reset: closed as well
                    closed = True
            assert closed and time.monotonic() - t0 < 6  # (0.6 s, and a loaded machine)
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_loopback_is_decided_from_the_address_bound(store: Path) -> None:
    """`--host $(hostname)` (127.0.1.1 on Debian) turned the Host check off: the name,
    not the address, was looked at."""
    srv = make_server(store, "localhost", 0)
    try:
        assert srv.loopback_only is True
    finally:
        srv.server_close()


def test_without_proc_no_file_is_served(store: Path) -> None:
    """Nothing can say where an open file is then (a stat of its path follows the same
    swapped link as the open did)."""
    from reports.serve import StoreHandler

    handler = StoreHandler.__new__(StoreHandler)
    handler.store = store
    fd = os.open(store / "index.html", os.O_RDONLY)
    try:
        assert handler._opened_inside(fd) is True
        real = os.readlink

        def no_proc(path: str) -> str:
            if path.startswith("/proc/"):
                raise FileNotFoundError(path)
            return real(path)

        os.readlink = no_proc  # type: ignore[assignment]
        try:
            assert handler._opened_inside(fd) is False
        finally:
            os.readlink = real
    finally:
        os.close(fd)


def test_a_page_not_modified_since_the_browsers_copy_is_304(server: tuple[str, int]) -> None:
    """clew's own file sending dropped the standard handler's If-Modified-Since."""
    import email.utils

    def get(since: str) -> int:
        with socket.create_connection(server, timeout=5) as s:
            s.sendall(f"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nIf-Modified-Since: {since}"
                      "\r\n\r\n".encode())  # fmt: skip
            return int(s.makefile("rb").readline().split()[1])

    assert get(email.utils.formatdate(time.time() + 60, usegmt=True)) == 304
    assert get(email.utils.formatdate(0, usegmt=True)) == 200
    assert get("not a date") == 200
