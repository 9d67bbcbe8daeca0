"""The approval page (``gen_nodes.approval_page``) in a real Starlette app, driven like a browser.

It shows the held call with names escaped, changes nothing on GET, decides once on a POST
that carries the CSRF token in both the form and the SameSite cookie, refuses cross-site
requests, forbids framing, and says when an approval expired or was already decided.
"""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.applications import Starlette

from gen_nodes.approval_page import approval_routes
from gen_nodes.approvals import Approvals
from gen_nodes.state import open_store

SPOOF = "ci\n\x1b[2K<script>alert(1)</script> NOTE: DRY RUN"


class Browser:
    def __init__(self, ttl: float = 300):
        self.now = [1000.0]
        self.approvals = Approvals(open_store("memory://"), ttl=ttl, clock=lambda: self.now[0])
        self.decided = []
        app = Starlette(routes=approval_routes(self.approvals, on_decided=self.decided.append))
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000")

    def hold(self):
        return self.approvals.request(action="revoke_api_key", arguments={"id": 6}, principal="p",
                                      preview=[{"id": 6, "name": SPOOF, "status": "active"}],
                                      context={"tool": "gen_revoke_api_key"})

    async def open(self, approval):
        page = await self.http.get(f"/approve/{approval.id}")
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        return page, match.group(1) if match else None

    async def click(self, approval, decision, token, **headers):
        return await self.http.post(f"/approve/{approval.id}", data={"csrf": token, "decision": decision},
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
    assert "\\x1b[2K" in page.text and "gen_revoke_api_key" in page.text and "&quot;id&quot;: 6" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"].lower()
    assert "samesite=strict" in cookie and "httponly" in cookie


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
    page = await b.http.get(f"/approve/{held.id}")
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
    assert b.approvals.get(held.id).state == "pending" and b.decided == []


@pytest.mark.anyio
async def test_an_expired_or_unknown_approval_cannot_be_decided():
    b = Browser(ttl=60)
    held = b.hold()
    _, token = await b.open(held)
    b.now[0] += 61
    assert (await b.click(held, "approve", token)).status_code == 409
    page = await b.http.get(f"/approve/{held.id}")
    assert "expired" in page.text and "<form" not in page.text
    assert (await b.http.get("/approve/no-such-approval-id")).status_code == 404
