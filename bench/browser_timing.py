"""How long a page takes to open in headless Chromium, measured over the DevTools protocol.

``--dump-dom`` (what the tests use) also serialises the whole DOM to stdout after the load
event: for a report that embeds 16 MB of data, that serialisation costs seconds that no
reader ever waits for. Here Chromium is driven over ``--remote-debugging-pipe`` (the
protocol's JSON messages on file descriptors 3 and 4, NUL-terminated; standard library
only), and the figures are the page's own:

* ``wall_s``: from ``Page.navigate`` to the page marking itself drawn
  (``data-rendered``), seen from outside;
* ``first_paint_ms`` / ``first_contentful_paint_ms``: the browser's paint timing entries;
* ``script_start_ms``: when clew's script began (``data-script-start-ms``: the HTML, data
  included, was parsed by then);
* ``drawn_ms``: navigation start to "every view drawn" (``data-render-ms``);
* ``timings``: the page's own parts (``data-timings``).

    .venv/bin/python bench/browser_timing.py PAGE.html [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1000",
]  # fmt: skip

_PROBE = """JSON.stringify((function () {
  var r = document.documentElement, paint = {};
  performance.getEntriesByType("paint").forEach(function (e) { paint[e.name] = e.startTime; });
  return { rendered: r.getAttribute("data-rendered"), errors: r.getAttribute("data-errors"),
    drawn: r.getAttribute("data-render-ms"), script: r.getAttribute("data-script-start-ms"),
    timings: r.getAttribute("data-timings"), paint: paint };
})())"""


def _onto_3_and_4(read_fd: int, write_fd: int) -> None:
    # (in the child) either pipe end may itself be 3 or 4: copy both out of the way first
    a, b = os.dup(read_fd), os.dup(write_fd)
    while a in (3, 4) or b in (3, 4):
        a, b = (os.dup(a) if a in (3, 4) else a), (os.dup(b) if b in (3, 4) else b)
    os.dup2(a, 3)
    os.dup2(b, 4)


class Browser:
    """One headless Chromium driven over the DevTools pipe."""

    def __init__(self, chromium: str) -> None:
        self._profile = tempfile.TemporaryDirectory()
        to_child_r, self._w = os.pipe()
        self._r, from_child_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4.
        self._proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={self._profile.name}",
             "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=lambda: _onto_3_and_4(to_child_r, from_child_w),
        )  # fmt: skip
        os.close(to_child_r)
        os.close(from_child_w)
        self._next = 0
        self._buf = b""
        self.events: list[dict[str, Any]] = []

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buf:
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Send a command and wait for its reply (events that arrive meanwhile are kept)."""
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read()
            if m.get("id") == self._next:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, timeout: float) -> None:
        """Wait for an event named ``method`` (or one already received)."""
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            self.events.append(self._read())

    def close(self) -> None:
        """Close the browser and its profile."""
        with contextlib.suppress(RuntimeError, OSError):
            self.send("Browser.close")
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._r)
        os.close(self._w)
        self._profile.cleanup()


def open_page(url: str, chromium: str, timeout: float = 300) -> dict[str, Any]:
    """Open ``url`` in a fresh headless Chromium; the figures listed in the module doc."""
    b = Browser(chromium)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        b.send("Page.enable", session=session)
        t0 = time.perf_counter()
        b.send("Page.navigate", {"url": url}, session=session)
        deadline = time.monotonic() + timeout
        while True:
            res = b.send("Runtime.evaluate", {"expression": _PROBE, "returnByValue": True},
                         session=session)  # fmt: skip
            probe = json.loads(res.get("result", {}).get("value") or "{}")
            if probe.get("rendered"):
                wall = time.perf_counter() - t0
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not drawn in {timeout} s")
            time.sleep(0.02)
        while not probe.get("paint", {}).get("first-contentful-paint"):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
            res = b.send("Runtime.evaluate", {"expression": _PROBE, "returnByValue": True},
                         session=session)  # fmt: skip
            probe = json.loads(res.get("result", {}).get("value") or "{}")
    finally:
        b.close()
    paint = probe.get("paint", {})
    return {
        "wall_s": wall,
        "errors": probe.get("errors"),
        "first_paint_ms": paint.get("first-paint"),
        "first_contentful_paint_ms": paint.get("first-contentful-paint"),
        "script_start_ms": float(probe["script"]) if probe.get("script") else None,
        "drawn_ms": float(probe["drawn"]) if probe.get("drawn") else None,
        "timings": probe.get("timings"),
    }


def main() -> int:
    """Open a page ``--repeat`` times and print the figures of each load."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("page", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("google-chrome")
    if chromium is None:
        print("chromium not found")
        return 1
    for _ in range(args.repeat):
        print(json.dumps(open_page(args.page.resolve().as_uri(), chromium)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
