"""Headless Chromium for tests that look at what people see: a DOM dump, a screenshot, and
every request the page tried to make outside itself.

The browser is pointed at a proxy of ours on 127.0.0.1 that answers nothing and records
each connection: a self-contained page makes none. ``.ci/run`` installs Debian's
``chromium`` when it is absent; without it these tests fail in CI and skip elsewhere.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("headless Chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    pytest.skip("headless Chromium is not installed (apt-get install chromium)")


class _Recorder:
    """A proxy that records every connection and closes it unanswered."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    self.requests.append(conn.recv(4096))
                except OSError:
                    self.requests.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


# The browser's own background traffic (component updates, network time), not the page's.
BROWSER_OWN_HOSTS = frozenset({"update.googleapis.com", "clients2.google.com", "clientservices.googleapis.com",
                               "redirector.gvt1.com", "edgedl.me.gvt1.com", "accounts.google.com",
                               "optimizationguide-pa.googleapis.com", "safebrowsing.googleapis.com"})


def _host(request: bytes) -> str:
    """The host a proxied request was for (``CONNECT host:443`` or ``GET http://host/...``)."""
    words = request.split(b" ", 2)
    if len(words) < 2:
        return ""
    target = words[1].decode("latin-1")
    target = target.split("://", 1)[-1]
    return target.split("/", 1)[0].rsplit(":", 1)[0].lower()


@dataclass
class Rendered:
    dom: str
    screenshot: Path
    requests: list[bytes] = field(default_factory=list)

    @property
    def external_requests(self) -> list[str]:
        """Hosts the page itself tried to reach (the browser's own update checks left out)."""
        return [host for host in map(_host, self.requests) if host not in BROWSER_OWN_HOSTS]


def render(page: Path, out_dir: Path, *, width: int = 1400, height: int = 1000) -> Rendered:
    """Open ``page`` in headless Chromium; return the DOM after scripts ran and a screenshot."""
    browser = chromium()
    recorder = _Recorder()
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter", "--no-pings",
              "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--disable-extensions",
              "--disable-component-extensions-with-background-pages", "--safebrowsing-disable-auto-update",
              f"--proxy-server=http://{recorder.address}", "--proxy-bypass-list=<-loopback>",
              f"--user-data-dir={out_dir / 'chromium-profile'}", f"--window-size={width},{height}"]
    try:
        dom = subprocess.run([*common, "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True,
                             timeout=90, check=True).stdout
        shot = out_dir / f"{page.stem}.png"
        subprocess.run([*common, f"--screenshot={shot}", page.resolve().as_uri()], capture_output=True, timeout=90,
                       check=True)
    finally:
        recorder.close()
    assert shot.is_file() and shot.stat().st_size > 1000, "Chromium took no screenshot"
    return Rendered(dom=dom, screenshot=shot, requests=recorder.requests)


class TableRows(HTMLParser):
    """Counts the body rows of each table (by id) in a DOM dump, and the visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, int] = {}
        self._table: str | None = None
        self._in_body = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or f"table{len(self.rows)}"
            self.rows.setdefault(self._table, 0)
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table is not None:
            self.rows[self._table] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def table_rows(dom: str) -> TableRows:
    parser = TableRows()
    parser.feed(dom)
    return parser
