"""MCP server: every registry tool over the official ``mcp`` SDK, on stdio or streamable HTTP.

    gen-nodes mcp                                   # stdio; the GEN key comes from $GEN_API_KEY
    gen-nodes mcp --transport http --port 8000      # http://127.0.0.1:8000/mcp, one GEN key per request

Built on the SDK's low-level ``Server``; all tool logic goes through
:class:`~gen_nodes.runtime.dispatch.Dispatcher`, so a plugin's actions are served too.

- ``tools/list``: name, title, description, input and output schemas and every
  annotation hint set explicitly (``tools.mcp_definition``).
- ``tools/call``: ``structuredContent`` plus the same JSON as text. Every failure
  (bad input, GEN error, network, a bug) is a result with ``isError: true`` and
  ``{"error": {type, message, hint, ...}}``; never a protocol error.
- Destructive tools (``--confirmation``): ``elicit`` (default) asks the user through
  MCP elicitation, showing the keys that would be revoked, in both protocol eras
  (a server-to-client request on handshake-era connections, ``InputRequiredResult``
  on 2026-07-28 ones); a client that cannot be asked is refused, naming the options,
  and nothing is sent. ``host``: the client asks the user before every destructive
  tool call itself (they are annotated ``destructiveHint: true``); ``none`` asks nobody.
  Nothing that approves a call ever passes through the model.
- A created key's secret (``--secrets``): ``file`` (default), ``mask`` or ``reveal``;
  see ``secret_delivery``.
- Over HTTP, each request's ``Authorization: Bearer <GEN key>`` (or ``X-API-Key``)
  is the GEN key it acts with; a request without one is refused with HTTP 401.

Logs name the tool and the outcome type only: never arguments, results, headers or keys.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import secrets
import sys
import time
from contextlib import nullcontext
from functools import partial
from typing import Any, Callable, Sequence

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

#: JSON-RPC "method not found": the client does not handle elicitation requests at all.
METHOD_NOT_FOUND = -32601

from gen_nodes.core.version import __version__
from gen_nodes.client.http import GenClient, timeouts
from gen_nodes.runtime.dispatch import Dispatcher, ToolResult, principal_of
from gen_nodes.core.errors import AuthenticationError, ConfirmationRequired, GenError, InvalidSetting
from gen_nodes.core.terms import HTTP_TOOL_TERMS, TOOL_TERMS
from gen_nodes.safety.notify import check_targets
from gen_nodes.web.approval_page import APPROVAL_PAGE_PATH, approval_routes
from gen_nodes.safety.approvals import APPROVED, DENIED, DONE, EXPIRED, RUNNING, Approvals
from gen_nodes.state import open_store
from gen_nodes.safety.display import confirmation_lines
from gen_nodes.core.redact import masked_copy
from gen_nodes.core.validation import is_valid
from gen_nodes.runtime.tools import Tool, mcp_definition
from gen_nodes.surfaces.mcp.options import ELICITATION_MODES, IDLE, TOTAL
from gen_nodes.surfaces.mcp.options import parser as options_parser
from gen_nodes.surfaces.mcp.key_check import KeyCheck
from gen_nodes.surfaces.mcp.sessions import SessionGate
from gen_nodes.client.cache import CLIENT_CACHE_SIZE, AccountCache, ClientCache
from gen_nodes.net.errors import error_body
from gen_nodes.net.guard import LOOPBACK_HOSTS, HostGuard, guard_hosts
from gen_nodes.net.headers import KEY_HINT, api_key_from_headers
from gen_nodes.net.middleware import RequireGenKey
from gen_nodes.net.logs import configure_logging
from gen_nodes.net.serve import serve

log = logging.getLogger("gen_nodes.mcp")

SERVER_NAME = "gen-nodes"
#: Seconds between looks at an approval a person is deciding on the page.
URL_POLL = 0.2
HTTP_PATH = "/mcp"
#: The elicitation form: one boolean the user ticks.
CONFIRM_FIELD = "confirm"
_CONFIRM_SCHEMA = {
    "type": "object",
    "properties": {CONFIRM_FIELD: {"type": "boolean", "title": "Go ahead",
                                   "description": "Tick to carry out this irreversible action."}},
    "required": [CONFIRM_FIELD],
}
#: Gives the GenClient of a request, as a context manager (a lease: see ``web.ClientCache``).
ClientFor = Callable[[ServerRequestContext], Any]


# -- the server -----------------------------------------------------------------------


def build_server(dispatcher: Dispatcher, client_for: ClientFor | None = None,
                 on_success: Callable[[ServerRequestContext], None] | None = None,
                 elicitation: str = "auto", page_path: str | None = None, notifier: Any = None) -> Server:
    """The MCP server for ``dispatcher``'s tools. ``client_for(ctx)`` picks the GenClient of a request;
    ``on_success(ctx)`` hears of every successful tool call. ``elicitation``: ``auto`` (form if the client
    has it, else URL), ``form`` or ``url``; URL mode needs ``page_path``, where the approval page is mounted,
    and tells ``notifier`` (``notify.Notifier``) of each held call besides the client."""
    asking = _Asking(elicitation, page_path, notifier)
    tools = {tool.name: tool for tool in dispatcher.tools}
    listed = [types.Tool.model_validate(mcp_definition(tool)) for tool in dispatcher.tools]
    output_schemas = {tool.name: tool.output_schema for tool in dispatcher.tools}
    client_for = client_for or (lambda ctx: nullcontext(dispatcher.default_client()))

    async def list_tools(ctx: ServerRequestContext, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> Any:
        try:
            result = await _call(dispatcher, ctx, params, client_for, asking)
        except GenError as exc:
            result = ToolResult.failure(exc, dispatcher.terms)
        except Exception as exc:  # never reaches the SDK: it would send str(exc) to the client and log it
            result = ToolResult.unexpected(params.name, exc)
        if isinstance(result, types.InputRequiredResult):
            log.info("tools/call %s -> input_required", params.name)
            return result
        if (not result.is_error and params.name in output_schemas
                and not is_valid(output_schemas[params.name], result.content)):
            result = _off_schema(tools[params.name], result.content)
        if not result.is_error and on_success is not None:
            on_success(ctx)
        log.info("tools/call %s -> %s", params.name,
                 f"error:{result.content['error'].get('type')}" if result.is_error else "ok")
        return _mcp_result(result)

    server = Server(
        SERVER_NAME, version=__version__,
        instructions="Manage GEN API keys. Irreversible tools act only after the user approves them; "
                     "a created key's secret may be delivered outside the conversation.",
        on_list_tools=list_tools, on_call_tool=call_tool,
        get_tool_input_schema=lambda name: tools[name].input_schema if name in tools else None,
    )
    # Seal the requestState of 2026-07-28 multi-round calls, so a client cannot forge it.
    server.middleware.append(RequestStateBoundary(RequestStateSecurity.ephemeral(), default_audience=SERVER_NAME))
    return server


async def _call(dispatcher: Dispatcher, ctx: ServerRequestContext, params: types.CallToolRequestParams,
                client_for: ClientFor, asking: "_Asking") -> ToolResult | types.InputRequiredResult:
    tool, args = dispatcher.parse(params.name, params.arguments or {})  # GenError for bad input
    with client_for(ctx) as client:
        confirmed = False
        if tool.needs_approval:
            mode = asking.mode(ctx)
            if mode is None:
                return ToolResult.failure(refusal(tool), dispatcher.terms)
            if mode == "url":
                return await _approve_by_url(dispatcher, ctx, params, tool, args, client, asking)
            answer = await _ask(dispatcher, ctx, params, tool, args, client)
            if not isinstance(answer, bool):
                return answer
            confirmed = answer
        return await anyio.to_thread.run_sync(
            partial(dispatcher.run_parsed, tool, args, client=client, confirmed=confirmed))


class _Asking:
    """Which elicitation mode a request's client gets: ``form``, ``url`` or None (nobody can be asked)."""

    def __init__(self, preference: str, page_path: str | None, notifier: Any = None) -> None:
        if preference not in ELICITATION_MODES:
            raise ValueError(f"elicitation must be one of {ELICITATION_MODES}")
        self.preference, self.page_path, self.notifier = preference, page_path, notifier
        self.accounts = AccountCache()  # GEN key digest -> its get_me user, for the page and notices

    def account(self, dispatcher: Dispatcher, client: Any) -> dict[str, Any] | None:
        """The GEN user of the asking key, read once per key (None if it cannot be read)."""
        try:
            return self.accounts.get(principal_of(client), lambda: dispatcher.registry.run("get_me", {}, client=client))
        except GenError:
            return None

    def tell(self, notice: Any) -> None:
        """Hand the notice to the operator's targets too; the client's own URL elicitation goes regardless."""
        if self.notifier is None:
            return
        try:
            self.notifier.notify(notice)
        except GenError:
            log.warning("approval %s: no notify target took the notice; the MCP client still has it",
                        notice.approval_id)

    def mode(self, ctx: ServerRequestContext) -> str | None:
        caps = ctx.session.client_capabilities
        asks = caps.elicitation if caps else None
        if asks is None:
            return None
        modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        if not (modern or ctx.session.can_send_request):
            return None
        form = asks.form is not None or asks.url is None  # an empty capability means form (2025-06-18)
        url = (asks.url is not None and self.page_path is not None
               and ctx.request is not None and bool(ctx.request.headers.get("host")))
        if self.preference == "form":
            return "form" if form else None
        if self.preference == "url":
            return "url" if url else None
        return "form" if form else "url" if url else None


async def _approve_by_url(dispatcher: Dispatcher, ctx: ServerRequestContext, params: types.CallToolRequestParams,
                          tool: Tool, args: dict[str, Any], client: Any,
                          asking: _Asking) -> ToolResult | types.InputRequiredResult:
    """URL-mode elicitation: hold the call, send the person to the approval page, run it once if approved.

    Handshake era: a server-to-client ``elicitation/create`` request, answered in the same call.
    2026-07-28 era: an ``InputRequiredResult`` whose sealed ``requestState`` names the approval;
    the client's second round, with the answer, waits for the decision.
    """
    approvals = dispatcher.approvals
    call = binding(tool.name, args, principal_of(client))
    state = params.request_state or ""
    elicitation_id = None
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS and state.startswith(call + ":") and params.input_responses:
        approval_id, answer = state[len(call) + 1:], params.input_responses.get(CONFIRM_FIELD)
    else:
        asked = await _send_to_page(dispatcher, ctx, tool, args, client, asking, call)
        if isinstance(asked, types.InputRequiredResult):
            return asked
        approval_id, answer, elicitation_id = asked
    if not isinstance(answer, types.ElicitResult) or answer.action != "accept":
        _deny_quietly(approvals, approval_id)
        return ToolResult.failure(ConfirmationRequired(
            f"The user did not open the approval page for {tool.name}; nothing was changed.",
            hint="Do not retry unless the user asks for it again.", declined=True), dispatcher.terms)
    # In a worker thread; a client that goes away cancels the call, and the wait ends on its own
    # when the approval is decided or expires (``ttl``).
    decided = await anyio.to_thread.run_sync(
        partial(approvals.wait, approval_id, timeout=approvals.ttl, poll=URL_POLL), abandon_on_cancel=True)
    if elicitation_id is not None:
        try:
            await ctx.session.send_elicit_complete(elicitation_id, related_request_id=ctx.request_id)
        except Exception:  # only a courtesy to the client
            pass
    refused = _not_approved(decided, tool)
    if refused is not None:
        return ToolResult.failure(refused, dispatcher.terms)
    return await anyio.to_thread.run_sync(partial(dispatcher.run_approved, approval_id, client=client))


async def _send_to_page(dispatcher: Dispatcher, ctx: ServerRequestContext, tool: Tool, args: dict[str, Any],
                        client: Any, asking: _Asking, call: str) -> tuple[str, Any, str] | types.InputRequiredResult:
    """Open the approval and send the user its page: the question itself (2026 era), or the approval's
    id, the user's answer (None if the client could not ask) and the elicitation's id (handshake era)."""
    approval, url, preview = await anyio.to_thread.run_sync(
        partial(_hold, dispatcher, ctx, tool, args, client, asking))
    lines = confirmation_lines(tool.spec.title, tool.spec.description, tool.name, args, preview)
    message = "\n".join([*lines, "Open the page to approve or deny it."])
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return types.InputRequiredResult(
            input_requests={CONFIRM_FIELD: types.ElicitRequest(params=types.ElicitRequestURLParams(
                message=message, url=url))},
            request_state=f"{call}:{approval.id}")
    elicitation_id, answer = secrets.token_urlsafe(16), None
    try:
        answer = await ctx.session.elicit_url(message, url, elicitation_id, related_request_id=ctx.request_id)
    except (NoBackChannelError, MCPError) as exc:
        log.info("tools/call %s: URL elicitation failed (%s)", tool.name, type(exc).__name__)
    return approval.id, answer, elicitation_id


def _not_approved(decided: Any, tool: Tool) -> ConfirmationRequired | None:
    """Why an approval the person left does not run now (None: it is approved and may run)."""
    if decided is not None and decided.state in (RUNNING, DONE):
        return ConfirmationRequired(
            f"This approval of {tool.name} was already used; it did not run again.",
            hint="Report the earlier result; call again only if the user asks for it again.")
    if decided is None or decided.state != APPROVED:
        state = decided.state if decided else EXPIRED
        return ConfirmationRequired(
            f"The user {'denied' if state == DENIED else 'did not approve'} {tool.name} ({state}); "
            "nothing was changed.", hint="Do not retry unless the user asks for it again.", declined=True)
    return None


def _hold(dispatcher: Dispatcher, ctx: ServerRequestContext, tool: Tool, args: dict[str, Any], client: Any,
          asking: _Asking) -> tuple[Any, str, Any]:
    """Open the approval and its page link; tell the notify targets. The link goes to the user only.
    Returns the approval, the link and the preview."""
    from gen_nodes.safety.notify import Notice, iso_time

    preview = dispatcher.registry.preview(tool.spec.id, args, client=client)
    params = ctx.session.client_params
    requested = {"surface": "mcp", "at": iso_time(time.time()),
                 "client": params.client_info.name if params is not None and params.client_info else None}
    account = asking.account(dispatcher, client)
    approval = dispatcher.approvals.request(
        action=tool.spec.id, arguments=args, principal=principal_of(client), preview=masked_copy(preview),
        context={"tool": tool.name, "surface": "mcp", "title": tool.spec.title, "account": account,
                 "requested": requested})
    request = ctx.request
    link = dispatcher.approvals.link(approval.id)
    # Starlette's base_url (scheme, Host and root path) behind the Host guard, never the raw header.
    url = f"{str(request.base_url).rstrip('/')}{asking.page_path}/{link}"
    asking.tell(Notice(approval_id=approval.id, action=tool.spec.id, title=tool.spec.title, preview=approval.preview,
                       account=account, requested=requested, expires_at=iso_time(approval.expires_at), url=url))
    log.info("approval %s opened for %s", approval.id, tool.name)
    return approval, url, preview


def _deny_quietly(approvals: Any, approval_id: str) -> None:
    try:
        approvals.decide(approval_id, approve=False, by="client")
    except GenError:
        pass


def refusal(tool: Tool) -> ConfirmationRequired:
    """Nobody can be asked through this client: refuse, naming what would make it work. Nothing is sent."""
    return ConfirmationRequired(
        f"{tool.name} is irreversible and needs the user's approval, but this MCP client cannot ask them "
        "(it does not support elicitation); nothing was sent.",
        hint="Tell the user it cannot be done from this client. Options: a client with MCP elicitation; "
             "or, if the client asks the user before every destructive tool call, start the server with "
             "`gen-nodes mcp --confirmation host`; or run it yourself with `gen-nodes run ... ` on a terminal.",
    )


async def _ask(dispatcher: Dispatcher, ctx: ServerRequestContext, params: types.CallToolRequestParams,
               tool: Tool, args: dict[str, Any], client: Any) -> bool | ToolResult | types.InputRequiredResult:
    """Ask the user: True to go ahead, or the result to return (a refusal, or the question itself)."""
    call = binding(tool.name, args, principal_of(client))
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        answer = (params.input_responses or {}).get(CONFIRM_FIELD)
        if answer is None or params.request_state != call:  # first round (or another call's answer)
            message = await _question(dispatcher, tool, args, client)
            return types.InputRequiredResult(
                input_requests={CONFIRM_FIELD: types.ElicitRequest(params=types.ElicitRequestFormParams(
                    message=message, requested_schema=_CONFIRM_SCHEMA))},
                request_state=call)
    else:
        message = await _question(dispatcher, tool, args, client)
        try:
            answer = await ctx.session.elicit_form(message, _CONFIRM_SCHEMA, related_request_id=ctx.request_id)
        except (NoBackChannelError, MCPError) as exc:
            if isinstance(exc, MCPError) and exc.error.code != METHOD_NOT_FOUND:
                answer = None  # the question reached the client, which answered with an error
            else:  # the question never reached the user
                log.info("tools/call %s: elicitation unavailable (%s)", tool.name, type(exc).__name__)
                return ToolResult.failure(refusal(tool), dispatcher.terms)
    if not isinstance(answer, types.ElicitResult):
        return ToolResult.failure(ConfirmationRequired(
            f"The user's answer to {tool.name} could not be read; nothing was changed.",
            hint="Ask the user whether to go ahead before trying again.", declined=True), dispatcher.terms)
    if answer.action == "accept" and (answer.content or {}).get(CONFIRM_FIELD) is True:
        return True
    return ToolResult.failure(ConfirmationRequired(
        f"The user declined {tool.name} ({answer.action}); nothing was changed.",
        hint="Do not retry unless the user asks for it again.", declined=True), dispatcher.terms)


def binding(tool: str, arguments: dict[str, Any], principal: str) -> str:
    """A digest naming one exact call (tool, arguments, caller): the 2026-era requestState."""
    canonical = json.dumps([tool, arguments, principal], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _question(dispatcher: Dispatcher, tool: Tool, args: dict[str, Any], client: Any) -> str:
    """The elicitation message: what the call does and which keys it would affect (masked, escaped)."""
    preview = await anyio.to_thread.run_sync(
        partial(dispatcher.registry.preview, tool.spec.id, args, client=client))
    lines = confirmation_lines(tool.spec.title, tool.spec.description, tool.name, args, preview)
    return "\n".join([*lines, "Go ahead?"])


def _off_schema(tool: Tool, content: dict[str, Any]) -> ToolResult:
    """GEN answered something our output schema does not allow: keep the data, flag it as an error."""
    log.warning("tools/call %s: the result does not match the tool's outputSchema", tool.name)
    done = "It took effect: do NOT call it again" if not tool.spec.hints.safe_to_retry else "The call went through"
    mismatch = GenError(f"GEN's answer to {tool.name} does not match the declared output schema; it is under "
                        "`result`.", hint=f"{done}; read `result` with care and report the mismatch.")
    return ToolResult({**error_body(mismatch), "result": content}, is_error=True)


def _mcp_result(result: ToolResult) -> types.CallToolResult:
    text = [types.TextContent(text=result.text)]
    if result.is_error:
        return types.CallToolResult(content=text, is_error=True)
    return types.CallToolResult(content=text, structured_content=result.content)


# -- transports -----------------------------------------------------------------------


def serve_stdio(dispatcher: Dispatcher, elicitation: str = "auto") -> None:
    """Serve on stdin/stdout until the client closes them (the dispatcher's own GenClient).
    No approval page here: ``url`` elicitation is refused, ``auto`` is form only."""
    from mcp.server.stdio import stdio_server

    server = build_server(dispatcher, elicitation=elicitation)

    async def run() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(run)


#: Connections kept per GEN key: as many as tool calls can run at once (anyio's default worker
#: threads), so one key's concurrent sessions never overflow its pool.
POOL_SIZE = 40


class _KeyedClients:
    """``client_for`` of the HTTP server: a leased GenClient for the request's own GEN key."""

    def __init__(self, base_url: str | None, timeout: Any = None, size: int = CLIENT_CACHE_SIZE) -> None:
        self.cache = ClientCache(
            lambda key: GenClient(api_key=key, base_url=base_url, timeout=timeout, pool_size=POOL_SIZE), size)

    def __call__(self, ctx: ServerRequestContext) -> Any:
        key = api_key_from_headers(ctx.request.headers) if ctx.request is not None else None
        if not key:  # never fall back to the server's own environment
            raise AuthenticationError("This HTTP request carries no GEN API key.", hint=KEY_HINT)
        return self.cache.lease(key)


#: Seconds a session-opening request may wait for GEN to say whether it knows the key.
KEY_CHECK_DEADLINE = 10.0


def _key_check(dispatcher: Dispatcher, base_url: str | None, timeout: Any) -> KeyCheck:
    """Whether GEN knows a key, by ``get_me`` with that key; a client of its own each time, so keys
    GEN refuses never take a place in the clients kept for tool calls."""

    def ask_gen(key: str) -> None:
        with GenClient(api_key=key, base_url=base_url, timeout=timeout, deadline=KEY_CHECK_DEADLINE) as client:
            dispatcher.registry.run("get_me", {}, client=client)

    return KeyCheck(ask_gen)


def build_http_app(dispatcher: Dispatcher, *, host: str = "127.0.0.1", base_url: str | None = None,
                   timeout: Any = None, allowed_hosts: Sequence[str] = (), elicitation: str = "auto",
                   notify_targets: Sequence[Any] | None = None, **session_limits: Any) -> Any:
    """The ASGI app serving streamable HTTP (stateful) at ``/mcp``, and the approval page of URL-mode
    elicitation at ``/approve/<secret link>`` (``web/approval_page.py``, over ``dispatcher.approvals``;
    the approval id itself opens nothing).

    ``allowed_hosts``: the Host header values admitted (see ``net.guard.guard_hosts``); the app is
    wrapped in the one DNS-rebinding guard, ``net.guard.HostGuard``, so it is on for every bind.
    ``session_limits``: ``per_key``, ``total``, ``unproven_idle``, ``idle`` of ``sessions.SessionGate``.
    ``notify_targets``: who else is sent each approval link (``notify.py``; default: stderr).
    """
    from gen_nodes.safety.notify import Notifier, parse_targets

    notifier = Notifier(notify_targets if notify_targets is not None
                        else parse_targets(None, store=dispatcher.approvals.store))
    hosts = list(allowed_hosts) or list(LOOPBACK_HOSTS)
    # One Host/Origin guard, net.guard.HostGuard, wraps the whole app below: the SDK's own is off.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    gate: SessionGate | None = None

    def on_success(ctx: ServerRequestContext) -> None:
        key = api_key_from_headers(ctx.request.headers) if ctx.request is not None else None
        if key and gate is not None:
            gate.prove(key)

    server = build_server(dispatcher, client_for=_KeyedClients(base_url, timeout), on_success=on_success,
                          elicitation=elicitation, page_path=APPROVAL_PAGE_PATH, notifier=notifier)
    # The SDK's own limits stay as a backstop behind the gate's.
    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, host=host, transport_security=security,
                                     session_idle_timeout=session_limits.get("idle", IDLE),
                                     max_sessions=2 * session_limits.get("total", TOTAL),
                                     custom_starlette_routes=approval_routes(dispatcher.approvals, surface="mcp"))
    gate = SessionGate(app, path=HTTP_PATH, key_check=_key_check(dispatcher, base_url, timeout), **session_limits)
    return HostGuard(RequireGenKey(gate, paths=(HTTP_PATH,), jsonrpc=True), hosts)


def serve_http(dispatcher: Dispatcher, *, host: str = "127.0.0.1", port: int = 8000,
               base_url: str | None = None, timeout: Any = None, allow_remote: bool = False,
               allowed_hosts: Sequence[str] = (), elicitation: str = "auto",
               approval_notify: Sequence[str] = (), **session_limits: Any) -> None:
    """Serve streamable HTTP until interrupted; the first stdout line is ``{"url": ...}`` (see ``net.serve``)."""
    from gen_nodes.safety.notify import parse_targets

    hosts = guard_hosts(host, allow_remote=allow_remote, allowed_hosts=allowed_hosts)
    targets = parse_targets(approval_notify, store=dispatcher.approvals.store)
    app = build_http_app(dispatcher, host=host, base_url=base_url, timeout=timeout, allowed_hosts=hosts,
                         elicitation=elicitation, notify_targets=targets, **session_limits)
    serve(app, host=host, port=port, path=HTTP_PATH, allow_remote=allow_remote, allowed_hosts=allowed_hosts,
          name="gen-nodes MCP server")


# -- command line ---------------------------------------------------------------------


def run(options: argparse.Namespace) -> int:
    """Start the server the options describe; returns when it stops."""
    configure_logging(options.log_level)
    base_url = getattr(options, "base_url", None)
    timeout = timeouts(getattr(options, "timeout", None))
    client = None
    try:
        check_targets(options.approval_notify)
    except InvalidSetting as exc:  # one line, before anything listens
        print(f"gen-nodes mcp: {exc.message} {exc.hint or ''}".strip(), file=sys.stderr)
        return 2
    store = _open_approval_store(getattr(options, "store", None) or "memory://")
    if store is None:
        return 2
    if options.transport == "stdio":
        client = GenClient(api_key=getattr(options, "api_key", None), base_url=base_url, timeout=timeout)
    dispatcher = Dispatcher(
        prefix=options.prefix, client=client, confirmation=options.confirmation,
        secret_policy=options.secrets, secrets_folder=options.secrets_dir,
        terms=TOOL_TERMS if options.transport == "stdio" else HTTP_TOOL_TERMS,
        approvals=Approvals(store, ttl=options.approval_ttl),
    )
    try:
        if options.transport == "stdio":
            serve_stdio(dispatcher, elicitation=options.elicitation)
        else:
            serve_http(dispatcher, host=options.host, port=options.port, base_url=base_url, timeout=timeout,
                       allow_remote=options.allow_remote, allowed_hosts=options.allowed_host,
                       per_key=options.sessions_per_key, total=options.sessions_total,
                       unproven_idle=options.unproven_session_idle, elicitation=options.elicitation,
                       approval_notify=options.approval_notify)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 0


def _open_approval_store(url: str) -> Any:
    """The store held calls wait in (``--store``); None, after one line on stderr, if it cannot open.
    A press in chat-ops decides a held call only when both servers name the same store."""
    from gen_nodes.state import StoreError
    from gen_nodes.state.secretbox import SecretBoxError

    try:
        return open_store(url)
    except (StoreError, SecretBoxError, InvalidSetting, ValueError) as exc:
        print(f"gen-nodes mcp: the --store cannot be used: {exc} Fix the --store URL "
              "(memory://, sqlite:///path.db or redis://host:port/db).", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None, **defaults: Any) -> int:
    """``gen-nodes mcp [options]``. ``defaults`` (``base_url``, ``api_key``, ``timeout``: the global
    options of ``gen-nodes``) apply unless ``argv`` says otherwise; ``None`` values are ignored."""
    parser = options_parser()
    parser.set_defaults(**{name: value for name, value in defaults.items() if value is not None})
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
