"""The approval page (``gen_nodes.web.approval_page``) in a real Starlette app, driven like a browser.

It shows the held call with names escaped, changes nothing on GET, decides once on a POST
that carries the CSRF token in both the form and the SameSite cookie, refuses cross-site
requests, forbids framing, and says when an approval expired or was already decided.
"""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.applications import Starlette

from gen_nodes.web.approval_page import approval_routes
from gen_nodes.safety.approvals import Approvals
from gen_nodes.state import open_store

SPOOF = "ci\n\x1b[2K<script>alert(1)</script> NOTE: DRY RUN"


class Held:
    """An approval and its page link (the secret the person's notice carries)."""

    def __init__(self, approval, link):
        self.id, self.link = approval.id, link


class Browser:
    def __init__(self, ttl: float = 300, surface: str = "gateway", root_path: str = "", public_url: str | None = None):
        self.now = [1000.0]
        self.approvals = Approvals(open_store("memory://"), ttl=ttl, clock=lambda: self.now[0])
        self.decided = []
        self.root_path = root_path
        app = Starlette(routes=approval_routes(self.approvals, surface=surface, on_decided=self.decided.append,
                                               public_url=public_url))
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, root_path=root_path),
                                      base_url="http://127.0.0.1:8000")

    def hold(self, surface: str = "gateway"):
        held = self.approvals.request(
            action="revoke_api_key", arguments={"id": 6}, principal="p",
            preview=[{"id": 6, "name": SPOOF, "status": "active", "created_at": "2026-01-02T03:04:05Z",
                      "last_used_at": None, "expires_at": "2027-01-01T00:00:00Z"}],
            context={"surface": surface, "title": "Revoke API key",
                     "account": {"id": 1, "name": "Ada <b>Lovelace</b>", "email": "ada@example.com"},
                     "requested": {"surface": surface, "at": "2026-12-06T07:00:00Z", "client": None}})
        return Held(held, self.approvals.link(held.id))

    async def open(self, approval):
        page = await self.http.get(f"{self.root_path}/approve/{approval.link}")
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        return page, match.group(1) if match else None

    async def click(self, approval, decision, token, **headers):
        return await self.http.post(f"{self.root_path}/approve/{approval.link}", data={"csrf": token, "decision": decision},
                                    headers=headers)


@pytest.mark.anyio
async def test_get_shows_the_call_escaped_changes_nothing_and_forbids_framing():
    b = Browser()
    held = b.hold()
    for _ in range(2):
        page, token = await b.open(held)
        assert page.status_code == 200 and token
    assert b.approvals.get(held.id).state == "pending" and b.decided == []
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text and "\x1b" not in page.text
    assert "\\x1b[2K" in page.text and "revoke_api_key" in page.text
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt; &lt;ada@example.com&gt;" in page.text
    for shown in ("2026-01-02T03:04:05Z", "never", "2027-01-01T00:00:00Z", "2026-12-06T07:00:00Z",
                  "runs when the workflow next checks", "Approve: Revoke API key", ">Deny<", "00:21:40 UTC on 1970-01-01"):
        assert shown in page.text, shown
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    # same-origin: the browser keeps the Origin of the page's own POST (no-referrer made it "null")
    assert page.headers["referrer-policy"] == "same-origin" and page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"].lower()
    assert "samesite=strict" in cookie and "httponly" in cookie


@pytest.mark.anyio
async def test_the_page_is_found_by_its_link_only_and_on_its_own_surface_only():
    b = Browser(surface="gateway")
    held, chat = b.hold(), b.hold(surface="slack")
    assert held.link != held.id and len(held.link) >= 22
    for path in (held.id, chat.link, chat.id, "x" * 32):
        assert (await b.http.get(f"/approve/{path}")).status_code == 404
        refused = await b.http.post(f"/approve/{path}", data={"decision": "deny"})
        assert refused.status_code == 404 and "text/html" in refused.headers["content-type"]
    assert b.approvals.get(chat.id).state == "pending"


@pytest.mark.anyio
async def test_approve_once_then_the_page_shows_the_outcome():
    b = Browser()
    held = b.hold()
    _, token = await b.open(held)
    done = await b.click(held, "approve", token, origin="http://127.0.0.1:8000", **{"sec-fetch-site": "same-origin"})
    assert done.status_code == 303
    assert b.approvals.get(held.id).state == "approved" and [a.id for a in b.decided] == [held.id]
    again = await b.click(held, "deny", token)
    assert again.status_code in (403, 409) and b.approvals.get(held.id).state == "approved"
    page = await b.http.get(f"/approve/{held.link}")
    assert "Approved" in page.text and "<form" not in page.text


@pytest.mark.anyio
async def test_deny():
    b = Browser()
    held = b.hold()
    _, token = await b.open(held)
    assert (await b.click(held, "deny", token)).status_code == 303
    assert b.approvals.get(held.id).state == "denied"


@pytest.mark.anyio
@pytest.mark.parametrize("attack", ["no-cookie", "wrong-token", "other-approval", "cross-origin", "cross-site"])
async def test_cross_site_and_forged_posts_decide_nothing(attack):
    b = Browser()
    held, other = b.hold(), b.hold()
    _, token = await b.open(held)
    headers = {}
    if attack == "no-cookie":
        b.http.cookies.clear()
    elif attack == "wrong-token":
        token = "0" * 64
    elif attack == "other-approval":
        _, token = await b.open(other)  # a valid token, for another approval
    elif attack == "cross-origin":
        headers["origin"] = "https://evil.example"
    else:
        headers["sec-fetch-site"] = "cross-site"
    refused = await b.click(held, "approve", token, **headers)
    assert refused.status_code == 403 and refused.headers["x-frame-options"] == "DENY"
    assert "text/html" in refused.headers["content-type"]
    assert b.approvals.get(held.id).state == "pending" and b.decided == []


@pytest.mark.anyio
@pytest.mark.parametrize("body", ["&".join(f"f{i}=1" for i in range(11)), "csrf=" + "a" * 5000])
async def test_a_post_that_is_not_the_form_is_a_400_page_not_a_crash(body):
    b = Browser()
    held = b.hold()
    answer = await b.http.post(f"/approve/{held.link}", content=body,
                               headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 400 and "text/html" in answer.headers["content-type"]
    assert b.approvals.get(held.id).state == "pending"


@pytest.mark.anyio
async def test_an_expired_or_unknown_approval_cannot_be_decided():
    b = Browser(ttl=60)
    held = b.hold()
    _, token = await b.open(held)
    b.now[0] += 61
    refused = await b.click(held, "approve", token)
    assert refused.status_code == 409 and "text/html" in refused.headers["content-type"]
    page = await b.http.get(f"/approve/{held.link}")
    assert "Expired" in page.text and "<form" not in page.text
    assert (await b.http.get("/approve/no-such-approval-link")).status_code == 404


@pytest.mark.anyio
async def test_the_host_guard_leaves_the_pages_origin_check_to_the_page_which_answers_in_html():
    """A foreign Origin on the page gets the page's own HTML refusal, not the guard's JSON; elsewhere the guard's."""
    from gen_nodes.net.guard import HostGuard

    b = Browser()
    held = b.hold()
    guarded = HostGuard(b.http._transport.app, ["127.0.0.1:*"])
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://127.0.0.1:8000")
    _, token = await b.open(held)
    http.cookies = b.http.cookies
    page = await http.post(f"/approve/{held.link}", data={"csrf": token, "decision": "approve"},
                           headers={"origin": "null"})
    assert page.status_code == 403 and "text/html" in page.headers["content-type"] and "Refused" in page.text
    other = await http.post("/actions/revoke_api_key", headers={"origin": "null"})
    assert other.status_code == 403 and "Browsers send an Origin" in other.json()["error"]["hint"]
    assert b.approvals.get(held.id).state == "pending"


@pytest.mark.anyio
async def test_behind_a_path_prefixed_proxy_the_cookie_comes_back_and_the_click_decides():
    """``--root-path /gw``: the browser is at ``/gw/approve/<link>``; a cookie set for ``/approve/<link>``
    would never be sent back, and every click would be refused."""
    b = Browser(root_path="/gw")
    held = b.hold()
    page, token = await b.open(held)
    assert f"Path=/gw/approve/{held.link};" in page.headers["set-cookie"]
    clicked = await b.click(held, "approve", token, origin="http://127.0.0.1:8000")
    assert clicked.status_code == 303, clicked.text
    assert f"Path=/gw/approve/{held.link}" in clicked.headers["set-cookie"]  # deleted where it was set
    assert b.approvals.get(held.id).state == "approved"


@pytest.mark.anyio
async def test_behind_a_tls_proxy_the_public_urls_origin_is_the_pages_own():
    """uvicorn not trusting X-Forwarded-Proto sees ``http``; Chromium sends ``Origin: https://gw.example``."""
    b = Browser(public_url="https://GW.example:443/base")
    held = b.hold()
    _, token = await b.open(held)
    refused = await b.click(held, "approve", token, origin="https://evil.example")
    assert refused.status_code == 403 and b.approvals.get(held.id).state == "pending"
    clicked = await b.click(held, "approve", token, origin="https://gw.example", host="gw.example")
    assert clicked.status_code == 303, clicked.text
    assert b.approvals.get(held.id).state == "approved"
    plain = Browser()  # without --public-url that origin is another site's
    held = plain.hold()
    _, token = await plain.open(held)
    refused = await plain.click(held, "approve", token, origin="https://gw.example", host="gw.example")
    assert refused.status_code == 403 and plain.approvals.get(held.id).state == "pending"


def test_a_principal_has_at_most_max_pending_approvals_and_a_decided_or_expired_one_frees_a_place():
    from gen_nodes.safety.approvals import MAX_PENDING
    from gen_nodes.core.errors import TooManyApprovals

    b = Browser(ttl=60)
    held = [b.hold() for _ in range(MAX_PENDING)]
    with pytest.raises(TooManyApprovals):
        b.hold()
    assert b.approvals.pending_count("p") == MAX_PENDING
    b.approvals.request(action="revoke_api_key", arguments={"id": 6}, principal="someone else")
    b.approvals.decide(held[0].id, approve=False)
    b.hold()  # the denied one's place
    with pytest.raises(TooManyApprovals):
        b.hold()
    b.now[0] += 61  # all expired
    assert b.approvals.pending_count("p") == 0
    b.hold()
