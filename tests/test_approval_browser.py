"""The approval page in a real browser: Debian's Chromium, driven by Playwright (``browser_support.py``).

A gateway with ``--confirmation approval`` runs on loopback in front of the sandbox; a "model"
asks it to revoke a key over HTTP and gets a 202; the person gets the link through a notify
target (``approval_support.Inbox``) and decides in Chromium: approve, deny, reopen after a
decision, expiry, a second click from another tab, and a forged POST from another site's page.
The browser sends what browsers send (Origin, Sec-Fetch-Site, SameSite cookies): no test here
makes up a header.
"""

from __future__ import annotations

import html
import time
from typing import Any

import pytest
import requests

pytest.importorskip("playwright")

from starlette.applications import Starlette  # noqa: E402
from starlette.responses import HTMLResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from approval_support import CSRF, Inbox  # noqa: E402
from browser_support import Served, chromium  # noqa: E402,F401  (fixture)
from gen_nodes.surfaces.gateway.app import build_app  # noqa: E402

APPROVE = "text=Approve: Revoke API key"


class Gateway:
    """A real gateway on loopback with a person's inbox as its notify target."""

    def __init__(self, sandbox: Any, prefix: str = "", **options: Any) -> None:
        self.inbox = Inbox()
        app = build_app(base_url=sandbox.base_url, store_url="memory://", confirmation="approval",
                        notify_targets=[self.inbox], **options)
        self.served = Served(behind_prefix(app, prefix) if prefix else app)
        self.url = self.served.url + prefix

    def ask(self, key: str, target: int) -> dict[str, Any]:
        """What a model does: call the action; the answer holds no link."""
        answer = requests.post(f"{self.url}/actions/revoke_api_key", headers={"X-API-Key": key},
                               json={"id": target}, timeout=30)
        assert answer.status_code == 202, answer.text
        assert "/approve/" not in answer.text
        return answer.json()["approval"]

    def poll(self, key: str, approval: dict[str, Any]) -> requests.Response:
        return requests.get(approval["poll"], headers={"X-API-Key": key}, timeout=30)


def behind_prefix(app: Any, prefix: str) -> Any:
    """``app`` as ``uvicorn --root-path PREFIX`` runs it behind a proxy that serves it under ``PREFIX``:
    the browser asks for ``PREFIX/approve/...``; the app gets that path with ``root_path`` = ``PREFIX``."""
    async def prefixed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(prefix + "/"):
            scope = {**scope, "root_path": prefix}
        await app(scope, receive, send)

    return prefixed


@pytest.fixture(scope="module")
def gateway(sb):
    served = Gateway(sb)
    yield served
    served.served.stop()


@pytest.fixture
def person(chromium):
    context = chromium.new_context()
    yield context
    context.close()


def held(sb: Any, gateway: Gateway, name: str = "deploy bot") -> tuple[dict, str, int, dict]:
    user, key = sb.create_user()
    target = sb.store.create_key(user["id"], name)[0]["id"]
    return user, key, target, gateway.ask(key, target)


def click(page: Any, what: str) -> None:
    with page.expect_navigation():
        page.click(what)


def test_a_person_approves_in_chromium_and_the_next_poll_runs_it(sb, gateway, person):
    user, key, target, approval = held(sb, gateway, "ci <b>deploy</b>")
    page = person.new_page()
    page.goto(gateway.inbox.link(approval["id"]))
    text = page.inner_text("body")
    for shown in ("Revoke API key", "ci <b>deploy</b>", str(target), user["email"], user["name"],
                  "Asked through the HTTP gateway", "runs when the workflow next checks", "expires at"):
        assert shown in text, shown
    assert page.locator("b").count() == 0  # the name is text, not markup
    assert "danger" in page.get_attribute(APPROVE, "class")
    click(page, APPROVE)
    assert "runs when the workflow next checks" in page.inner_text(".outcome")
    assert sb.store.get_key(user["id"], target)["status"] == "active"  # not before the workflow checks
    done = gateway.poll(key, approval)
    assert done.status_code == 200 and done.json() == {"id": target, "revoked": True}
    page.reload()  # reopened after the decision: what became of the call, nothing to click
    assert "Approved and done" in page.inner_text(".outcome") and page.locator("form").count() == 0
    assert sb.store.get_key(user["id"], target)["status"] == "revoked"


def test_a_person_denies_and_the_poll_says_so(sb, gateway, person):
    user, key, target, approval = held(sb, gateway)
    page = person.new_page()
    page.goto(gateway.inbox.link(approval["id"]))
    click(page, "text=Deny")
    assert "Denied. Nothing was changed." in page.inner_text(".outcome")
    assert gateway.poll(key, approval).status_code == 403
    page.reload()
    assert "Denied" in page.inner_text("h1") and page.locator("form").count() == 0
    assert sb.store.get_key(user["id"], target)["status"] == "active"


def test_a_second_click_from_another_tab_changes_nothing(sb, gateway, person):
    user, key, target, approval = held(sb, gateway)
    link = gateway.inbox.link(approval["id"])
    first, second = person.new_page(), person.new_page()
    first.goto(link)
    second.goto(link)
    click(first, APPROVE)
    click(second, "text=Deny")
    assert "already approved" in second.inner_text("body") and "<html" in second.content()
    assert gateway.poll(key, approval).status_code == 200
    assert sb.store.get_key(user["id"], target)["status"] == "revoked"


def test_an_expired_approval_cannot_be_approved(sb, person):
    short = Gateway(sb, approval_ttl=1.5)
    try:
        user, key, target, approval = held(sb, short)
        page = person.new_page()
        page.goto(short.inbox.link(approval["id"]))
        time.sleep(2)
        click(page, APPROVE)
        assert "expired" in page.inner_text("body").lower() and page.locator("form").count() == 0
        page.goto(short.inbox.link(approval["id"]))
        assert "Expired" in page.inner_text("h1")
        assert short.poll(key, approval).status_code == 410
        assert sb.store.get_key(user["id"], target)["status"] == "active"
    finally:
        short.served.stop()


def test_a_post_from_another_sites_page_is_refused_even_with_a_valid_token(sb, gateway, person):
    """The worst case: the attacker knows the link (so a valid form token) and the person has the page open."""
    user, key, target, approval = held(sb, gateway)
    link = gateway.inbox.link(approval["id"])
    token = CSRF.search(requests.get(link, timeout=10).text).group(1)
    page = person.new_page()
    page.goto(link)  # the person's SameSite cookie is in the browser now

    async def forged(request):
        return HTMLResponse(f'<form method="post" action="{html.escape(link)}">'
                            f'<input name="csrf" value="{token}"><input name="decision" value="approve"></form>'
                            "<script>document.forms[0].submit()</script>")

    evil = Served(Starlette(routes=[Route("/", forged)]))
    try:
        attack = person.new_page()
        with attack.expect_navigation(url=link):
            attack.goto(evil.url.replace("127.0.0.1", "localhost") + "/")
        assert "Refused" in attack.inner_text("h1") and "Nothing was changed" in attack.inner_text("body")
    finally:
        evil.stop()
    assert gateway.poll(key, approval).status_code == 202
    assert sb.store.get_key(user["id"], target)["status"] == "active"


def test_a_person_can_approve_behind_the_same_origin_the_browser_reports(sb, gateway, person):
    """The regression: with ``Referrer-Policy: no-referrer`` Chromium posted ``Origin: null`` and was refused."""
    user, key, target, approval = held(sb, gateway)
    page = person.new_page()
    origins = []
    page.on("request", lambda request: origins.append(request.headers.get("origin"))
            if request.method == "POST" else None)
    page.goto(gateway.inbox.link(approval["id"]))
    click(page, APPROVE)
    assert origins == [gateway.url] and "Approved" in page.inner_text("h1")


def test_a_person_approves_behind_a_path_prefixed_proxy(sb, person):
    """Behind ``/gw`` the notice's link is ``…/gw/approve/<link>``: the page's cookie must be set for that
    path, or Chromium never sends it back and every click is refused."""
    prefixed = Gateway(sb, prefix="/gw")
    try:
        user, key, target, approval = held(sb, prefixed)
        link = prefixed.inbox.link(approval["id"])
        assert link.startswith(prefixed.served.url + "/gw/approve/")
        page = person.new_page()
        page.goto(link)
        click(page, APPROVE)
        assert "Approved" in page.inner_text("h1"), page.inner_text("body")
        assert prefixed.poll(key, approval).status_code == 200
        assert sb.store.get_key(user["id"], target)["status"] == "revoked"
    finally:
        prefixed.served.stop()
