"""Screenshots of the approval page for docs/approvals.md, made in Debian's Chromium (``browser_support``).

    python tests/make_screenshots.py            # writes docs/images/approval-{pending,approved,denied,expired}.png

A gateway with ``--confirmation approval`` runs on loopback in front of a sandbox; a client asks it
to revoke a key; the person's link (from a notify target) is opened in Chromium and decided, and
each state of the page is captured. Nothing here reaches the network.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from approval_support import Inbox
from browser_support import Served, launch
from gen_nodes.surfaces.gateway.app import build_app
from gen_nodes.sandbox import Sandbox

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"


def held_link(sandbox: Sandbox, served: Served, inbox: Inbox, name: str) -> str:
    """Ask the gateway to revoke a fresh key of a new user, as a workflow would; the person's link."""
    import requests

    user, key = sandbox.create_user()
    target = sandbox.store.create_key(user["id"], name)[0]["id"]
    answer = requests.post(f"{served.url}/actions/revoke_api_key", headers={"X-API-Key": key},
                           json={"id": target}, timeout=30)
    return inbox.link(answer.json()["approval"]["id"])


def shoot(page, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / f"approval-{name}.png"), full_page=True)
    print(IMAGES / f"approval-{name}.png")


def decide(page, link: str, button: str, name: str) -> None:
    page.goto(link)
    with page.expect_navigation():
        page.click(button)
    shoot(page, name)


def main() -> int:
    with Sandbox() as sandbox, sync_playwright() as playwright:
        inbox, short_inbox = Inbox(), Inbox()
        app = build_app(base_url=sandbox.base_url, store_url="memory://", confirmation="approval",
                        notify_targets=[inbox])
        short = build_app(base_url=sandbox.base_url, store_url="memory://", confirmation="approval",
                          notify_targets=[short_inbox], approval_ttl=1)
        served, served_short = Served(app), Served(short)
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 600})
            page.goto(held_link(sandbox, served, inbox, "deploy bot (CI)"))
            shoot(page, "pending")
            decide(page, held_link(sandbox, served, inbox, "deploy bot (CI)"), "text=Approve: Revoke API key",
                   "approved")
            decide(page, held_link(sandbox, served, inbox, "deploy bot (CI)"), "text=Deny", "denied")
            expiring = held_link(sandbox, served_short, short_inbox, "deploy bot (CI)")
            time.sleep(1.5)
            page.goto(expiring)
            shoot(page, "expired")
        finally:
            browser.close()
            served.stop()
            served_short.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
