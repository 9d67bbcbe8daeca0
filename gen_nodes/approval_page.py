"""The approval page: where a person approves or denies a destructive call held for them.

One page for every surface that holds calls in :class:`~gen_nodes.approvals.Approvals` and
has a web server (MCP URL-mode elicitation, the gateway's ``--confirmation approval``):

    routes = approval_routes(approvals)          # GET and POST /approve/{id}
    app = Starlette(routes=[*routes, ...])
    url = f"{base_url}/approve/{approval.id}"    # to the PERSON (never to a model)

- ``GET`` shows what the call would do: the action, the keys affected and the arguments,
  every name quoted and escaped (``display.py``), and Approve / Deny buttons. It changes
  nothing; it sets a ``SameSite=Strict`` cookie holding the approval's CSRF token.
- ``POST`` (the buttons) decides, once (``Approvals.decide``): it needs the CSRF token both
  in the form and in the cookie (an HMAC of the approval id under ``secret``), an ``Origin``
  (if the browser sends one) of the page's own origin, and no cross-site ``Sec-Fetch-Site``.
  Then it redirects to the ``GET`` (which shows the outcome).
- Every answer forbids framing (``X-Frame-Options: DENY``, CSP ``frame-ancestors 'none'``),
  caching and referrers (the URL is the capability: whoever holds it can decide).
- An approval is single-use and expires (``Approvals(ttl=...)``). What runs is what was
  stored with it: the arguments shown, as the GEN key that asked (the surface that runs it
  checks the key). Running it is the surface's business (``Dispatcher.run_approved``, a poll).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
import time
from typing import Any, Callable
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .approvals import APPROVED, DENIED, DONE, EXPIRED, PENDING, RUNNING, Approval, ApprovalError, Approvals
from .display import arguments_line, plain, preview_lines, quoted

APPROVAL_PATH = "/approve"
CSRF_FIELD = "csrf"
_MAX_FORM = 4096
_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_OUTCOMES = {
    APPROVED: "Approved: the call runs now.",
    RUNNING: "Approved: the call is running.",
    DONE: "Approved and done.",
    DENIED: "Denied: nothing was changed.",
    EXPIRED: "This approval expired before anyone decided; nothing was changed.",
}


def approval_routes(approvals: Approvals, *, path: str = APPROVAL_PATH, secret: bytes | None = None,
                    on_decided: Callable[[Approval], Any] | None = None) -> list[Route]:
    """``GET`` and ``POST`` ``{path}/{approval_id}``. ``secret`` keys the CSRF tokens (random per
    process unless given: give the same one to processes sharing a store). ``on_decided(approval)``
    is called after each decision (it must not block)."""
    page = _Page(approvals, path.rstrip("/"), secret or secrets.token_bytes(32), on_decided)
    return [Route(f"{page.path}/{{approval_id}}", page.get, methods=["GET"]),
            Route(f"{page.path}/{{approval_id}}", page.post, methods=["POST"])]


class _Page:
    def __init__(self, approvals: Approvals, path: str, secret: bytes,
                 on_decided: Callable[[Approval], Any] | None) -> None:
        self.approvals, self.path, self.secret, self.on_decided = approvals, path, secret, on_decided

    def token(self, approval_id: str) -> str:
        return hmac.new(self.secret, approval_id.encode(), hashlib.sha256).hexdigest()

    async def get(self, request: Request) -> Response:
        approval_id = request.path_params["approval_id"]
        approval = self.approvals.get(approval_id)
        if approval is None:
            return _page("No such approval", "<p>This link is unknown or expired long ago. Nothing was changed.</p>",
                         404)
        body = _describe(approval)
        if approval.state != PENDING:
            return _page("Approval " + approval.state, body + f"<p><strong>{_OUTCOMES[approval.state]}</strong></p>")
        token = self.token(approval_id)
        left = max(0, int(approval.expires_at - time.time()))
        body += (f'<form method="post"><input type="hidden" name="{CSRF_FIELD}" value="{token}">'
                 '<button name="decision" value="approve">Approve</button> '
                 '<button name="decision" value="deny">Deny</button></form>'
                 f"<p>This link works once and expires in about {left} seconds.</p>")
        response = _page("Approve this call?", body)
        response.set_cookie(_cookie(approval_id), token, max_age=max(left, 1), path=f"{self.path}/{approval_id}",
                            httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response

    async def post(self, request: Request) -> Response:
        approval_id = request.path_params["approval_id"]
        problem = await self._check(request, approval_id)
        if problem is not None:
            return _page("Refused", f"<p>{html.escape(problem)} Nothing was changed. Open the link again.</p>", 403)
        form = await _form(request)
        decision = form.get("decision")
        if decision not in ("approve", "deny"):
            return _page("Refused", "<p>Choose Approve or Deny.</p>", 400)
        try:
            approval = self.approvals.decide(approval_id, approve=decision == "approve", by="approval page")
        except ApprovalError as exc:
            return _page("Not decided", f"<p>{html.escape(exc.message)}</p>", 409)
        if self.on_decided is not None:
            self.on_decided(approval)
        response = RedirectResponse(str(request.url), status_code=303, headers=_HEADERS)
        response.delete_cookie(_cookie(approval_id), path=f"{self.path}/{approval_id}")
        return response

    async def _check(self, request: Request, approval_id: str) -> str | None:
        """Why this POST is not a person's click on our own page (None if it is)."""
        site = request.headers.get("sec-fetch-site")
        if site not in (None, "same-origin", "none"):
            return "A request from another site cannot decide."
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin is not None and origin.lower() != own.lower():
            return "A request from another origin cannot decide."
        expected = self.token(approval_id)
        cookie = request.cookies.get(_cookie(approval_id), "")
        form = await _form(request)
        if not (hmac.compare_digest(cookie, expected) and hmac.compare_digest(form.get(CSRF_FIELD, ""), expected)):
            return "This form was not the one served for this approval (or its cookie is missing)."
        return None


def _cookie(approval_id: str) -> str:
    return "gen_approval_" + hashlib.sha256(approval_id.encode()).hexdigest()[:12]


async def _form(request: Request) -> dict[str, str]:
    form = getattr(request.state, "form", None)
    if form is None:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_FORM:
                body = b""
                break
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
        form = request.state.form = {k: v[0] for k, v in fields.items()}
    return form


def _describe(approval: Approval) -> str:
    action = approval.context.get("tool", approval.action)
    lines = preview_lines(approval.preview)
    items = "".join(f"<li>{html.escape(line.strip().removeprefix('- '))}</li>" for line in lines[1:])
    parts = [f"<p>Action: <code>{html.escape(plain(action, 64))}</code> (irreversible)</p>"]
    if lines:
        parts.append(f"<p>{html.escape(lines[0])}</p>" + (f"<ul>{items}</ul>" if items else ""))
    if approval.arguments:
        parts.append(f"<p><code>{html.escape(arguments_line(approval.arguments))}</code></p>")
    if approval.decided_by:
        parts.append(f"<p>Decided by {html.escape(quoted(approval.decided_by, 40))}.</p>")
    return "".join(parts)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    text = ("<!doctype html><html><head><meta charset='utf-8'><meta name='referrer' content='no-referrer'>"
            f"<title>{html.escape(title)}</title><style>body{{font:16px sans-serif;max-width:40em;margin:2em auto}}"
            "button{font-size:1em;padding:.4em 1.2em}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return HTMLResponse(text, status_code=status, headers=_HEADERS)
