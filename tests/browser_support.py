"""A real browser for the approval page tests: Debian's Chromium, driven by Playwright.

The module fixture ``chromium`` installs Debian's ``chromium`` with apt-get when it is missing
(the test command sets up what it needs on a fresh machine, as for Redis) and launches it
headless through Playwright with ``executable_path``: Playwright's own browser download is never
used (it needs the network). Where Chromium cannot be installed, the tests fail with a message
that says so, rather than being skipped.

    def test_page(chromium, served):                  # a Playwright Browser
        page = chromium.new_page()
        page.goto(url)

``Served(app)`` runs an ASGI app with uvicorn on a free loopback port in a thread, behind the
same Host guard as ``gen-nodes serve``, until ``stop()``.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

import pytest

from redis_support import apt_binary
from setup_needs import or_fail

#: Flags for Chromium as root in CI, kept off Google's hosts (no network here).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def chromium_binary() -> str:
    """The path of Debian's Chromium, installed with apt-get if missing."""
    return apt_binary("chromium", "chromium", why="The approval page's browser tests need Debian's chromium: ")


def launch(playwright: Any, binary: str | None = None) -> Any:
    """A headless Chromium (Debian's) under ``playwright``."""
    return playwright.chromium.launch(executable_path=binary or chromium_binary(), args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    binary = or_fail(chromium_binary)  # a missing browser is one line saying what to install
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright, binary)
        try:
            yield browser
        finally:
            browser.close()


class Served:
    """``app`` served by uvicorn on ``127.0.0.1:<free port>`` in a thread (``url``), Host-guarded."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        from gen_nodes.net.guard import LOOPBACK_HOSTS, HostGuard

        from gen_nodes.net.serve import bind, url_of

        self._sock = bind("127.0.0.1", 0)
        self.url = url_of(self._sock)
        config = uvicorn.Config(HostGuard(app, LOOPBACK_HOSTS), log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the app did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)
        self._sock.close()
