"""The approval page: where a person approves or denies a destructive call held for them.

One page for every surface that holds calls in :class:`~gen_nodes.safety.approvals.Approvals` and
has a web server (MCP URL-mode elicitation, the gateway's ``--confirmation approval``):

    routes = approval_routes(approvals, surface="gateway")   # GET and POST /approve/{link}
    app = Starlette(routes=[*routes, ...])
    secret = approvals.link(approval.id)                      # to the PERSON only (notify.py)
    url = f"{base_url}/approve/{secret}"

- The page is found ONLY by its link, a secret of its own (``Approvals.link``), never by the
  approval id an API answer carries: ``/approve/<approval id>`` is a 404. A page decides only
  approvals raised on its own ``surface`` (a Slack approval cannot be decided on the gateway).
- ``GET`` shows what the call would do: its title, the GEN account, every key affected (name
  escaped, id, status, created, last used, expiry), who asked and when, what approving does on
  this surface, and when the link expires; then a danger-styled Approve button and Deny. It
  changes nothing; it sets a ``SameSite=Strict`` cookie holding the form's CSRF token.
- ``POST`` (the buttons) decides, once (``Approvals.decide``): it needs the CSRF token both
  in the form and in the cookie (an HMAC of the link under ``secret``), an ``Origin`` (if the
  browser sends one) of the page's own origin, and no cross-site ``Sec-Fetch-Site``. Then it
  redirects to the ``GET``, which says what became of the call.
- Every answer is an HTML page (failures too), forbids framing, caching, and referrers to
  other origins (``Referrer-Policy: same-origin``: a browser then keeps the ``Origin`` of its
  own form POST, which ``no-referrer`` would turn into ``null``).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import secrets
from datetime import datetime, timezone
from functools import partial
from typing import Any, Callable
from urllib.parse import parse_qs

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gen_nodes.safety.approvals import APPROVED, DENIED, DONE, EXPIRED, PENDING, RUNNING, Approval, ApprovalError, Approvals
from gen_nodes.safety.display import account_text, plain, quoted
from gen_nodes.core import settings
from gen_nodes.core.errors import BodyTooLarge
from gen_nodes.net.middleware import read_body
from gen_nodes.core.redact import masked_copy

#: Where the approval page is mounted: ``/approve/<link secret>``, for a person's browser.
APPROVAL_PAGE_PATH = "/approve"
CSRF_FIELD = "csrf"
_MAX_FORM = 4096
_MAX_FIELDS = 10
_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
#: What approving does, in the words of each surface.
EFFECTS = {
    "mcp": "If you approve, it runs now: the assistant's MCP client is waiting for your answer.",
    "gateway": "If you approve, it runs when the workflow next checks (the gateway runs it when the caller "
               "polls for the result).",
}
SURFACES = {"mcp": "the MCP server", "gateway": "the HTTP gateway"}


class _BadForm(ValueError):
    """The POST body is not the page's form (too large, too many fields)."""


def approval_routes(approvals: Approvals, *, surface: str, path: str = APPROVAL_PAGE_PATH, secret: bytes | None = None,
                    on_decided: Callable[[Approval], Any] | None = None,
                    public_url: str | None = None) -> list[Route]:
    """``GET`` and ``POST`` ``{path}/{link}`` for approvals raised on ``surface`` (``gateway``, ``mcp``).

    ``secret`` keys the CSRF tokens (default: derived from ``GEN_NODES_STATE_SECRET`` when it is set, so
    every process sharing a store accepts a form another one served; else random per process).
    ``on_decided(approval)`` is called after each decision (it must not block).
    ``public_url`` (``--public-url``): its origin is the page's too, e.g. ``https://gw.example`` behind a
    TLS proxy whose ``X-Forwarded-Proto`` uvicorn does not trust (the request then looks like ``http``)."""
    page = _Page(approvals, surface, path.rstrip("/"), secret or shared_page_secret() or secrets.token_bytes(32),
                 on_decided)
    page.public_origin = _origin(public_url) if public_url else None
    return [Route(f"{page.path}/{{link}}", page.get, methods=["GET"]),
            Route(f"{page.path}/{{link}}", page.post, methods=["POST"])]


def shared_page_secret() -> bytes | None:
    """The CSRF key every process sharing a store derives alike: from the first (current) key of
    ``GEN_NODES_STATE_SECRET`` (a rotation list keeps the first stable); None when it is unset."""
    shared = (settings.current().state_secret or "").split(",")[0].strip()
    return hashlib.sha256(b"gen-nodes approval page\0" + shared.encode()).digest() if shared else None


class _Page:
    def __init__(self, approvals: Approvals, surface: str, path: str, secret: bytes,
                 on_decided: Callable[[Approval], Any] | None) -> None:
        self.approvals, self.surface, self.path, self.secret = approvals, surface, path, secret
        self.on_decided = on_decided
        self.public_origin: str | None = None

    def token(self, link: str) -> str:
        return hmac.new(self.secret, link.encode(), hashlib.sha256).hexdigest()

    def cookie_path(self, request: Request, link: str) -> str:
        """The page's path as the browser sees it: behind a path-prefixed proxy (``--root-path /gw``)
        the browser asks for ``/gw/approve/<link>`` and sends back only cookies set for that path."""
        return f"{request.scope.get('root_path', '').rstrip('/')}{self.path}/{link}"

    def find(self, link: str) -> Approval | None:
        """The approval this link decides on this page: by link only, and only one raised here."""
        approval = self.approvals.by_link(link)
        if approval is None or approval.context.get("surface") != self.surface:
            return None
        return approval

    async def get(self, request: Request) -> Response:
        link = request.path_params["link"]
        approval = await anyio.to_thread.run_sync(self.find, link)  # the store may block (SQLite, Redis)
        if approval is None:
            return _unknown()
        if approval.state != PENDING:
            return _page(_OUTCOME_TITLES[approval.state], describe(approval) + outcome(approval), state=approval.state)
        token = self.token(link)
        left = max(1, int(approval.expires_at - self.approvals.now()))
        title = _title(approval)
        body = (describe(approval)
                + f'<form method="post"><input type="hidden" name="{CSRF_FIELD}" value="{token}">'
                f'<button class="danger" name="decision" value="approve">Approve: {html.escape(title)}</button> '
                '<button name="decision" value="deny">Deny</button></form>'
                f"<p class='small'>This link works once and expires at {_when(approval.expires_at)}.</p>")
        response = _page(f"Approve? {title}", body, state=PENDING)
        response.set_cookie(_cookie(link), token, max_age=left, path=self.cookie_path(request, link),
                            httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response

    async def post(self, request: Request) -> Response:
        link = request.path_params["link"]
        try:
            form = await _form(request)
        except _BadForm:
            return _page("Not understood", "<p>That was not this page's form. Nothing was changed. "
                                           "Open the link again and use its buttons.</p>", status=400)
        approval = await anyio.to_thread.run_sync(self.find, link)
        if approval is None:
            return _unknown()
        if approval.state != PENDING:  # a second click, or a tab left open: say what became of it
            return _page("Not decided", f"<p>This approval was already {html.escape(approval.state)}; this click "
                         "changed nothing.</p>" + describe(approval) + outcome(approval), status=409,
                         state=approval.state)
        problem = self._check(request, link, form)
        if problem is not None:
            return _page("Refused", f"<p>{html.escape(problem)} Nothing was changed. Open the link again.</p>",
                         status=403)
        decision = form.get("decision")
        if decision not in ("approve", "deny"):
            return _page("Not understood", "<p>Choose Approve or Deny. Nothing was changed.</p>", status=400)
        try:
            decided = await anyio.to_thread.run_sync(
                partial(self.approvals.decide, approval.id, approve=decision == "approve", by="approval page"))
        except ApprovalError as exc:
            current = await anyio.to_thread.run_sync(self.approvals.get, approval.id) or approval
            return _page("Not decided", f"<p>{html.escape(exc.message)} Nothing more was changed.</p>"
                         + describe(current) + outcome(current), status=409, state=current.state)
        if self.on_decided is not None:
            self.on_decided(decided)
        response = RedirectResponse(str(request.url), status_code=303, headers=_HEADERS)
        response.delete_cookie(_cookie(link), path=self.cookie_path(request, link))
        return response

    def _check(self, request: Request, link: str, form: dict[str, str]) -> str | None:
        """Why this POST is not a person's click on our own page (None if it is)."""
        site = request.headers.get("sec-fetch-site")
        if site not in (None, "same-origin", "none"):
            return "A request from another site cannot decide."
        origin = request.headers.get("origin")
        own = {f"{request.url.scheme}://{request.headers.get('host', '')}".lower(), self.public_origin}
        if origin is not None and origin.lower() not in own:
            return "A request from another origin cannot decide."
        expected = self.token(link)
        cookie = request.cookies.get(_cookie(link), "")
        if not (hmac.compare_digest(cookie, expected) and hmac.compare_digest(form.get(CSRF_FIELD, ""), expected)):
            return "This form was not the one served for this approval (or its cookie is missing)."
        return None


def _origin(url: str) -> str:
    """The origin a browser sends for pages under ``url``: ``scheme://host[:port]``, lower-case."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    host = parts.netloc.rpartition("@")[2].lower()
    default_port = {"http": ":80", "https": ":443"}.get(parts.scheme.lower(), "")
    if default_port and host.endswith(default_port):  # a browser's Origin leaves the default port out
        host = host[:-len(default_port)]
    return f"{parts.scheme.lower()}://{host}"


def _cookie(link: str) -> str:
    return "gen_approval_" + hashlib.sha256(link.encode()).hexdigest()[:12]


async def _form(request: Request) -> dict[str, str]:
    try:
        body = await read_body(request, _MAX_FORM)
    except BodyTooLarge:
        raise _BadForm("too large") from None
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=_MAX_FIELDS)
    except ValueError:  # more than _MAX_FIELDS fields
        raise _BadForm("too many fields") from None
    return {name: values[0] for name, values in fields.items()}


# -- what the page says ------------------------------------------------------------------------

_OUTCOME_TITLES = {APPROVED: "Approved", RUNNING: "Approved: running", DONE: "Done", DENIED: "Denied",
                   EXPIRED: "Expired"}
_KEY_COLUMNS = (("Name", "name"), ("ID", "id"), ("Status", "status"), ("Created", "created_at"),
                ("Last used", "last_used_at"), ("Expires", "expires_at"))


def _title(approval: Approval) -> str:
    return plain(approval.context.get("title") or approval.action, 80)


def describe(approval: Approval) -> str:
    """The call: its title, the account, the keys, who asked and when, and what approving does."""
    context = approval.context
    parts = [f"<p class='action'><strong>{html.escape(_title(approval))}</strong> "
             f"<span class='small'>(<code>{html.escape(plain(context.get('tool') or approval.action, 64))}</code>; "
             "it cannot be undone)</span></p>",
             f"<p>GEN account: {html.escape(account_text(context.get('account')))}</p>",
             _keys_table(approval.preview),
             f"<p>{html.escape(asked_text(context.get('requested') or {'surface': context.get('surface')}))}</p>"]
    if approval.state == PENDING:
        parts.append(f"<p>{html.escape(EFFECTS.get(context.get('surface', ''), ''))}</p>")
    return "".join(parts)


def asked_text(requested: dict[str, Any]) -> str:
    """Who asked and when, in words: the surface, the MCP client's name or the gateway's caller."""
    surface = requested.get("surface")
    where = SURFACES.get(surface, plain(surface or "an unknown surface", 40))
    if surface == "gateway":
        who = " by a workflow or a model's tool (the gateway cannot tell which)"
    elif requested.get("client"):
        who = f" by the MCP client {quoted(requested['client'], 60)}"
    else:
        who = ""
    at = requested.get("at")
    return f"Asked through {where}{who}" + (f" at {plain(at, 40)}." if at else ".")


def _keys_table(preview: list[dict[str, Any]] | None) -> str:
    if preview is None:
        return ""
    items = masked_copy(list(preview))
    if not items:
        return "<p>No matching key was found; GEN will answer whether it exists.</p>"
    # A composite action's preview says what each step does to each key ("Revoke API key").
    columns = ((("What happens", "change"),) if any("change" in item for item in items) else ()) + _KEY_COLUMNS
    head = "".join(f"<th>{name}</th>" for name, _ in columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(item, field))}</td>" for _, field in columns)
                   + "</tr>" for item in items[:50])
    more = f"<p>… and {len(items) - 50} more keys.</p>" if len(items) > 50 else ""
    return f"<p>{'Key' if len(items) == 1 else 'Keys'} affected:</p><table><tr>{head}</tr>{rows}</table>{more}"


def _cell(item: dict[str, Any], field: str) -> str:
    value = item.get(field)
    if field == "name":
        return quoted(value)
    if field == "id" and value is None and "change" in item:
        return "new"
    if field == "expires_at" and "expires_in" in item:
        return f"in {plain(item['expires_in'], 40)}"
    if value is None:
        return "never" if field in ("last_used_at", "expires_at") else "-"
    return plain(value, 40)


def outcome(approval: Approval) -> str:
    """What became of the call, once decided."""
    surface = approval.context.get("surface")
    if approval.state == APPROVED:
        text = ("Approved. It is running now." if surface == "mcp" else
                "Approved. It runs when the workflow next checks; reload this page later to see the result.")
    elif approval.state == RUNNING:
        text = "Approved. It is running now; reload this page to see the result."
    elif approval.state == DONE:
        return _done(approval)
    elif approval.state == DENIED:
        text = "Denied. Nothing was changed."
    else:
        text = "Expired: nobody decided in time. Nothing was changed."
    return f"<p class='outcome {approval.state}'><strong>{html.escape(text)}</strong></p>"


def _done(approval: Approval) -> str:
    result = approval.result or {}
    if approval.ok:
        shown = json.dumps(masked_copy(result), sort_keys=True, ensure_ascii=True, default=str)
        shown = shown if len(shown) <= 600 else shown[:600] + "…"
        return ("<p class='outcome done'><strong>Approved and done.</strong></p>"
                f"<p>Result: <code>{html.escape(shown)}</code></p>")
    message = plain((result.get("error") or {}).get("message") or "unknown error", 300)
    return f"<p class='outcome denied'><strong>Approved, but the call failed: {html.escape(message)}</strong></p>"


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%H:%M:%S UTC on %Y-%m-%d")


def _unknown() -> HTMLResponse:
    return _page("No such approval", "<p>This link is unknown, was not made for this server, or expired long "
                                     "ago. Nothing was changed.</p>", status=404)


_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em;color:#1a1a1a}"
    "h1{font-size:1.5em}table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}"
    "button{font-size:1em;padding:.5em 1.3em;border-radius:4px;border:1px solid #888;background:#fff;cursor:pointer}"
    "button.danger{background:#b3261e;border-color:#8c1d18;color:#fff;font-weight:600}"
    ".small{color:#555;font-size:.9em}.outcome{padding:.6em 1em;border-radius:4px;background:#eef}"
    ".outcome.approved,.outcome.running,.outcome.done{background:#e6f4ea}"
    ".outcome.denied,.outcome.expired{background:#fce8e6}code{font-size:.9em}"
)


def _page(title: str, body: str, *, status: int = 200, state: str | None = None) -> HTMLResponse:
    marker = f" data-state='{html.escape(state)}'" if state else ""
    text = ("<!doctype html><html><head><meta charset='utf-8'><meta name='referrer' content='same-origin'>"
            "<meta name='viewport' content='width=device-width'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
            f"<body{marker}><h1>{html.escape(title)}</h1>{body}</body></html>")
    return HTMLResponse(text, status_code=status, headers=_HEADERS)
