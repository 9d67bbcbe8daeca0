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

import os
import shutil
import subprocess
import threading
import time
from typing import Any, Iterator

import pytest

from redis_support import APT_LOCK_WAIT

#: Flags for Chromium as root in CI, kept off Google's hosts (no network here).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def chromium_binary() -> str:
    """The path of Debian's Chromium, installed with apt-get if missing (we run as root in CI)."""
    found = shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium")
    if found:
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lock = ["-o", f"DPkg::Lock::Timeout={APT_LOCK_WAIT}"]
    install = ["apt-get", "install", "-y", "--no-install-recommends", *lock, "chromium"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", *lock, "update"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError("the approval page's browser tests need Debian's chromium, and apt-get could not "
                               f"install it (run `apt-get install chromium` as root):\n{done.stderr[-2000:]}")
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(found):
        raise RuntimeError("apt-get installed chromium but /usr/bin/chromium is missing")
    return found


def launch(playwright: Any) -> Any:
    """A headless Chromium (Debian's) under ``playwright``."""
    return playwright.chromium.launch(executable_path=chromium_binary(), args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


class Served:
    """``app`` served by uvicorn on ``127.0.0.1:<free port>`` in a thread (``url``), Host-guarded."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        from gen_nodes.adapters.web import LOOPBACK_HOSTS, HostGuard, bind, url_of

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
