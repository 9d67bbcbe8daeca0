"""HTTP gateway: every registry action as ``POST /actions/{id}``, described by an OpenAPI 3.1 document.

    gen-nodes serve [--host 127.0.0.1] [--port 8080] [--store sqlite://] [--confirmation direct]

For workflow runners and tool importers (n8n's HTTP Request node, Dify, Open WebUI,
Make, Zapier, GPT Actions). Built the Starlette way, from lists: routes generated from
the registry (no per-action code, so a plugin's actions are served too), exception
handlers keyed by error class, and a lifespan that opens and closes the shared store.

- ``GET /openapi.json``: the document (``surfaces/gateway/openapi.py``), its server URL being
  ``--public-url`` or the address the request came to.
- ``POST /actions/{id}``: the input as a flat JSON object; 200 with the action's output,
  or the error's ``http_status`` (``core/errors.py``) with the CLI's ``{"error": {...}}``.
- Each request acts with its own GEN key (``X-API-Key`` or ``Authorization: Bearer``);
  without one, 401. Clients are kept per key (``web.ClientCache``).
- ``Idempotency-Key`` (or ``?idempotency_key=``) on a call that changes something: the first
  call runs; a repeat with the same key and body gets the first answer (a create's secret once
  more, then masked), never a second request to GEN; the same key with another body is refused;
  a concurrent repeat waits for the first; an empty key is refused (400). A repeat of a call
  held for approval answers the approval's current state, or its outcome once it ran. Records
  live in ``idempotency.py``'s store; a call's record is completed once its answer is sent.
- ``--confirmation approval``: a destructive call answers 202 with a preview and
  ``GET /approvals/{id}`` to poll; the poll that finds it approved runs it, once, with the
  poller's key (which must be the asker's). The approval page's link is a secret that no
  answer carries: it goes to a person through the ``--approval-notify`` targets
  (``notify.py``; stderr by default), and if none takes it the call fails at once (503).

Logs name the action, the status and the time taken: never bodies, headers or keys.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import secrets
import sys
import threading
import time
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import cached_property, partial
from typing import Any, AsyncIterator, Callable, Sequence

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gen_nodes.client.http import GenClient, timeouts
from gen_nodes.core import settings
from gen_nodes.core.engine import execute, preview
from gen_nodes.core.errors import (ApprovalDenied, ApprovalExpired, AuthenticationError, GenError, IdempotencyConflict, InvalidInput, InvalidSetting, MalformedRequest, NotFound, OutcomeUnknown, RateLimited, RequestInProgress, unexpected_failure)
from gen_nodes.core.terms import GATEWAY_TERMS
from gen_nodes.core.redact import masked_copy
from gen_nodes.core.registry import Registry, default_registry
from gen_nodes.core.composite import StepOnce
from gen_nodes.core.spec import CONFIRMATION_ALIASES, NONE, PARTIAL, ActionSpec
from gen_nodes.core.spec import confirmation as confirmation_of
from gen_nodes.surfaces.gateway import openapi
from gen_nodes.safety.approvals import APPROVED, DENIED, DONE, EXPIRED, RUNNING
from gen_nodes.safety.idempotency import Refusals, step_records
from gen_nodes.safety.notify import check_targets, iso_time
from gen_nodes.client.cache import AccountCache, ClientCache
from gen_nodes.net.guard import is_loopback
from gen_nodes.web.approval_page import APPROVAL_PAGE_PATH
from gen_nodes.net.errors import error_body
from gen_nodes.net.headers import KEY_HINT, api_key_from_headers
from gen_nodes.net.logs import log_path
from gen_nodes.net.options import add_server_options
from gen_nodes.net.middleware import RequireGenKey, read_body

log = logging.getLogger("gen_nodes.gateway")

#: Largest request body accepted (an action's input is a few hundred bytes).
MAX_BODY = 64 * 1024
#: Seconds a repeat waits for the first call with its Idempotency-Key before answering 409.
IDEMPOTENCY_WAIT = 10.0
#: Seconds a runner is told to wait between polls of a pending approval.
POLL_AFTER = 2
#: Connections each GEN key's client keeps open: as many as calls run at once (anyio's worker
#: threads, 40 by default), so concurrent calls never wait for, or throw away, a connection.
POOL_SIZE = 40
DEFAULT_STORE = "sqlite://"
DEFAULT_PORT = 8080

_STATUS_BY_TYPE = openapi.status_by_type()
#: Hints in the words of a caller of this HTTP API (``core/terms.py``).
TERMS = GATEWAY_TERMS


class Gateway:
    """What the routes share: the registry, the clients per key, the store and what is kept in it."""

    def __init__(self, registry: Registry, *, store_url: str | None = DEFAULT_STORE, store: Any = None,
                 base_url: str | None = None, timeout: Any = None, retry: Any = None, confirmation: str = NONE,
                 public_url: str | None = None, approval_ttl: float | None = None,
                 idempotency_ttl: float | None = None, idempotency_wait: float = IDEMPOTENCY_WAIT,
                 approval_notify: Sequence[str] | None = None, notify_targets: Sequence[Any] | None = None) -> None:
        confirmation = confirmation_of(confirmation, openapi.CONFIRMATION_MODES)
        self.registry, self.confirmation = registry, confirmation
        self.store_url, self.store = store_url, store
        self.public_url = public_url.rstrip("/") if public_url else None
        self.approval_ttl, self.idempotency_ttl, self.idempotency_wait = approval_ttl, idempotency_ttl, idempotency_wait
        self.clients = ClientCache(lambda key: GenClient(api_key=key, base_url=base_url, timeout=timeout, retry=retry,
                                                         pool_size=POOL_SIZE))
        self.document = openapi.document(registry, confirmation=confirmation)
        self.records: Any = None
        self.approvals: Any = None
        self.page: Any = None  # the approval page (web/approval_page.py), once the store is open
        # Who is told of a held call: the operator's --approval-notify targets (checked now, so a
        # bad one stops the start), built once the store is open (chat targets keep routes in it).
        self.approval_notify, self.notify_targets = list(approval_notify or ()), notify_targets
        if confirmation == "approval" and notify_targets is None:
            check_targets(self.approval_notify)
        self.notifier: Any = None
        self.accounts = AccountCache()  # GEN key digest -> its get_me user, for the notices
        self._own_store = store is None

    # -- lifespan ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open the store and what is kept in it (once). ``gen-nodes serve`` calls it before serving,
        so a store that cannot open is one JSON error, not a traceback in the server's log."""
        from gen_nodes.safety.approvals import Approvals
        from gen_nodes.safety.idempotency import IdempotencyRecords
        from gen_nodes.state import open_store

        if self.records is not None:
            return
        if self.store is None:
            self.store = open_store(self.store_url)
        self.records = IdempotencyRecords(self.store, **_given(ttl=self.idempotency_ttl))
        self.approvals = Approvals(self.store, box=self.records.box, **_given(ttl=self.approval_ttl))
        if self.confirmation == "approval":
            from starlette.routing import Router

            from gen_nodes.web.approval_page import approval_routes

            from gen_nodes.safety.notify import Notifier, parse_targets

            self.page = Router(approval_routes(self.approvals, surface="gateway", path=APPROVAL_PAGE_PATH,
                                               public_url=self.public_url))
            targets = self.notify_targets
            if targets is None:
                targets = parse_targets(self.approval_notify, store=self.store)
            self.notifier = Notifier(targets)

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(self.open)
        try:
            yield
        finally:
            self.clients.close()
            if self._own_store:
                self.store.close()
                self.store = self.records = self.approvals = self.page = None

    # -- routes -----------------------------------------------------------------------------

    async def openapi_json(self, request: Request) -> Response:
        server = self.public_url or str(request.base_url).rstrip("/")
        return JSONResponse({**self.document, "servers": [{"url": server}]})

    def endpoint(self, spec: ActionSpec):
        async def run_action(request: Request) -> Response:
            started = time.perf_counter()
            arguments = await _read_json_object(request, spec)
            idem_key = _idempotency_key(request) if not spec.hints.read_only else None
            links = _Links(self.public_url, request)
            later = _Later()  # the idempotency record, written once the answer is sent
            try:
                status, body, headers = await anyio.to_thread.run_sync(
                    partial(self.handle, spec, arguments, _key_of(request), idem_key, links, later=later))
                answer = _AnswerThenRecord(body, status, headers=headers, later=later)
            except BaseException:  # no answer will be sent (cancelled at shutdown, say): write it now
                for write in later.take():
                    write()
                raise
            log.info("%s -> %s in %.1f ms", spec.id, status, (time.perf_counter() - started) * 1000)
            return answer

        run_action.__name__ = f"run_{spec.id}"
        return run_action

    async def approval_page(self, scope: Any, receive: Any, send: Any) -> None:
        """The approval page (GET shows the call, POST decides), for a person's browser: no GEN key."""
        await self.page(scope, receive, send)

    async def poll_approval(self, request: Request) -> Response:
        approval_id = request.path_params["approval_id"]
        links = _Links(self.public_url, request)
        status, body, headers = await anyio.to_thread.run_sync(
            partial(self.poll, approval_id, _key_of(request), links))
        log.info("approval poll -> %s", status)
        return JSONResponse(body, status, headers=headers)

    # -- the work, in a worker thread ---------------------------------------------------------

    def handle(self, spec: ActionSpec, arguments: dict[str, Any], key: str, idem_key: str | None,
               links: "_Links", later: Callable[[Callable[[], None]], None] | None = None) -> "Answer":
        """Run one call (validated first: a bad input never opens an idempotency record). ``later``:
        takes the write of a successful call's record, for after the answer is sent (default: now)."""
        arguments = self.registry.validate(spec.id, arguments)
        with self.clients.lease(key) as client:
            if idem_key is None:
                return self._answer(spec, arguments, client, links)
            answer = self._idempotent(spec, arguments, client, idem_key, links, later)
        held = _held_approval_id(answer)
        return answer if held is None else self._held_state(held, spec, key, links)

    def _held_state(self, approval_id: str, spec: ActionSpec, key: str, links: "_Links") -> "Answer":
        """A repeat of a call held for approval: the approval as a poll finds it now (pending, denied,
        expired, or the outcome once it ran), never a second approval."""
        if self.approvals.get(approval_id) is None:
            raise NotFound(f"The approval this Idempotency-Key opened for {spec.id} is no longer kept; whether it "
                           "ran is not known here, and it is not asked again.",
                           hint=f"Call ${{list_api_keys}} to see whether {spec.id} took effect; to ask again, send "
                                "the call with a new Idempotency-Key.")
        try:
            status, body, headers = self.poll(approval_id, key, links)
        except GenError as exc:
            status, body, headers = error_answer(exc)
        if status == 202:
            headers = {**headers, "Location": links.poll(approval_id)}
        return status, body, {**headers, "Idempotent-Replayed": "true"}

    def _answer(self, spec: ActionSpec, arguments: dict[str, Any], client: GenClient, links: "_Links",
                steps: StepOnce | None = None) -> "Answer":
        if spec.hints.destructive and self.confirmation == "approval":
            return self._ask_for_approval(spec, arguments, client, links)
        return output_answer(execute(spec, arguments, client, resolve=self.registry.get, once=steps))

    def _idempotent(self, spec: ActionSpec, arguments: dict[str, Any], client: GenClient, idem_key: str,
                    links: "_Links", later: Callable[[Callable[[], None]], None] | None = None) -> "Answer":
        scope, fingerprint = f"gateway:{client.identity}", self.records.fingerprint(spec.id, arguments)
        # A composite action's steps keep their own records: a repeat resumes where the first call stopped.
        steps = step_records(self.records, scope=scope, key=idem_key, fingerprint=fingerprint,
                             wait=self.idempotency_wait) if spec.composite else None
        once = self.records.run_once(
            scope=scope, key=idem_key, fingerprint=fingerprint, resumable=spec.composite, later=later,
            run=lambda: self._answer(spec, arguments, client, links, steps), wait=self.idempotency_wait,
            record=lambda answer: _recorded(*answer), record_error=lambda exc: _recorded(*error_answer(exc)),
            refusals=Refusals(
                conflict=lambda: IdempotencyConflict(
                    f"The Idempotency-Key was already used with a different request than this {spec.id} call; "
                    "nothing was sent."),
                in_progress=lambda: RequestInProgress(
                    "The first request with this Idempotency-Key is still running; nothing was sent.",
                    retry_after=POLL_AFTER),
                lost=lambda: OutcomeUnknown(
                    "An earlier request with this Idempotency-Key began and never finished (its gateway stopped "
                    "mid-call); it may or may not have reached GEN. It is not sent again.",
                    hint=f"Call ${{list_api_keys}} to see whether {spec.id} took effect before trying with a new key."),
                unexpected=lambda exc: OutcomeUnknown(
                    f"gen-nodes failed unexpectedly ({type(exc).__name__}) during a {spec.id} call that may have "
                    "reached GEN.")))
        return once.output if once.replay is None else _replayed(once.replay)

    def _ask_for_approval(self, spec: ActionSpec, arguments: dict[str, Any], client: GenClient,
                          links: "_Links") -> "Answer":
        from gen_nodes.safety.notify import Notice

        shown = masked_copy(preview(spec, arguments, client, self.registry.get))
        requested = {"surface": "gateway", "at": iso_time(time.time()), "client": None}
        account = self._account(client)
        approval = self.approvals.request(action=spec.id, arguments=arguments, principal=client.identity,
                                          preview=shown, context={"surface": "gateway", "title": spec.title,
                                                                  "account": account, "requested": requested})
        notice = Notice(approval_id=approval.id, action=spec.id, title=spec.title, preview=shown, account=account,
                        requested=requested, expires_at=iso_time(approval.expires_at),
                        url=links.page(self.approvals.link(approval.id)))
        try:
            self.notifier.notify(notice)
        except GenError:  # NobodyToAsk: nobody will ever decide, so nothing may wait for it
            self.approvals.decide(approval.id, approve=False, by="nobody could be asked")
            raise
        log.info("approval %s opened for %s", approval.id, spec.id)
        return 202, {"approval": _approval_view(approval, links)}, {
            "Location": links.poll(approval.id), "Retry-After": str(POLL_AFTER)}

    def _account(self, client: GenClient) -> dict[str, Any] | None:
        """The GEN user of the asking key (``get_me``), read once per key, for the person's notice."""
        try:
            return self.accounts.get(client.identity, lambda: execute(self.registry.get("get_me"), {}, client,
                                                                      resolve=self.registry.get))
        except GenError:
            return None  # shown as unknown; the approval still goes ahead

    def poll(self, approval_id: str, key: str, links: "_Links") -> "Answer":
        """The answer to ``GET /approvals/{id}``; the first poll that finds it approved runs it."""
        with self.clients.lease(key) as client:
            approval = self._own_approval(approval_id, client)
            if approval.state in (APPROVED, RUNNING):  # a run whose runner died long ago is resumed
                resumable = approval.action in self.registry and self.registry.get(approval.action).resumable
                claimed = self.approvals.claim(approval.id, resumable=resumable)
                if claimed is not None:
                    return self._run_approved(claimed, client)
                approval = self._own_approval(approval_id, client)
        if approval.state == DENIED:
            raise ApprovalDenied(f"A person denied this {approval.action} call; nothing was changed.")
        if approval.state == EXPIRED:
            raise ApprovalExpired(f"Nobody approved this {approval.action} call in time; nothing was changed.")
        if approval.state == DONE:
            again = self.approvals.redeliver(approval.id) if approval.ok else None  # a lost first answer
            return _finished(again or approval.result or {}, approval.ok)
        return 202, {"approval": _approval_view(approval, links)}, {"Retry-After": str(POLL_AFTER)}

    def _own_approval(self, approval_id: str, client: GenClient) -> Any:
        approval = self.approvals.get(approval_id)
        if (approval is None or approval.context.get("surface") != "gateway"
                or not secrets.compare_digest(approval.principal, client.identity)):
            # Another key's approval is reported exactly like one that does not exist.
            raise NotFound("No such approval for this API key (it may have expired).",
                           hint="Poll with the same API key that made the call, within an hour of it.")
        return approval

    def _run_approved(self, approval: Any, client: GenClient) -> "Answer":
        output = self.approvals.run_claimed(
            approval, lambda claimed: execute(self.registry.get(claimed.action), claimed.arguments, client,
                                              resolve=self.registry.get, once=self.approvals.steps(claimed)),
            terms=TERMS)
        return output_answer(output)


# -- answers ------------------------------------------------------------------------------------

#: (status, JSON body, extra headers)
Answer = tuple[int, dict[str, Any], dict[str, str]]


def output_answer(output: dict[str, Any]) -> Answer:
    """A finished call's output: 200, or 207 when a composite action ended ``partial`` (some steps
    changed something, a later one failed: the body says what and what to do next)."""
    return (207 if output.get("status") == PARTIAL else 200), output, {}


def error_answer(exc: GenError) -> Answer:
    """The status, ``{"error": ...}`` body and headers for ``exc``."""
    headers = {}
    retry_after = exc.details.get("retry_after")
    if isinstance(exc, (RateLimited, RequestInProgress)) and retry_after is not None:
        headers["Retry-After"] = str(max(0, math.ceil(retry_after)))
    return exc.http_status, error_body(exc, TERMS), headers


def _recorded(status: int, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    return {"status": status, "body": body, "headers": headers}


def _replayed(begin: Any) -> Answer:
    response = begin.response
    body = response["body"]
    if begin.secrets_withheld and isinstance(body, dict):
        body = {**body, "token_note": "This is a repeat of a request answered before: the secret was delivered in "
                                      "that answer (and in one replay of it) and is not kept any longer."}
    return response["status"], body, {**response.get("headers", {}), "Idempotent-Replayed": "true"}


def _held_approval_id(answer: Answer) -> str | None:
    """The approval's id when ``answer`` replays a 202 that held the call for a person's approval."""
    status, body, headers = answer
    if status != 202 or headers.get("Idempotent-Replayed") != "true":
        return None
    return (body.get("approval") or {}).get("id")


def _finished(result: dict[str, Any], ok: bool | None) -> Answer:
    if ok:
        return output_answer(result)
    error = result.get("error") or {}
    return _STATUS_BY_TYPE.get(error.get("type"), GenError.http_status), {"error": error}, {}


def _approval_view(approval: Any, links: "_Links") -> dict[str, Any]:
    """What a caller (maybe a model) sees of an approval: nothing that opens or decides it."""
    return {
        "id": approval.id,
        "state": approval.state,
        "action": approval.action,
        "poll": links.poll(approval.id),
        "expires_at": iso_time(approval.expires_at),
        "preview": approval.preview,
    }


def _unexpected_body() -> dict[str, Any]:
    return error_body(unexpected_failure(where="the gen-nodes gateway"), TERMS)


class _Links:
    """Absolute URLs of the gateway as the caller reached it (or its public URL). The request's own
    address is worked out only when a link is made (most calls make none; it is about 15 µs)."""

    def __init__(self, public_url: str | None, request: Request) -> None:
        self._public_url, self._request = public_url, request

    @cached_property
    def base(self) -> str:
        return self._public_url or str(self._request.base_url).rstrip("/")

    def poll(self, approval_id: str) -> str:
        return f"{self.base}/approvals/{approval_id}"

    def page(self, link: str) -> str:
        """The approval page of ``link`` (``Approvals.link``): for a person's notice only."""
        return f"{self.base}{APPROVAL_PAGE_PATH}/{link}"


# -- reading requests -----------------------------------------------------------------------------


async def _read_json_object(request: Request, spec: ActionSpec) -> dict[str, Any]:
    raw = await read_body(request, MAX_BODY)
    if not raw:  # no body at all (whitespace alone is malformed JSON, below)
        if not spec.input_schema.get("required"):
            return {}
        raise InvalidInput(f"{spec.id} takes a JSON object of its inputs; the request has no body.",
                           errors=[{"path": "$", "message": "no body"}],
                           hint=f"Send a JSON object with at least {', '.join(spec.input_schema['required'])}; "
                                "no request was sent.")
    try:
        data = json.loads(raw, parse_float=_number)
    except (ValueError, RecursionError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidInput(f"The request body is not valid JSON{where}.",
                           errors=[{"path": "$", "message": "not JSON"}],
                           hint='Send the input as a JSON object, e.g. {"name": "ci"}; no request was sent.') from None
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object of the action's input fields.",
                           errors=[{"path": "$", "message": f"expected an object, got {type(data).__name__}"}],
                           hint='Send the input as a JSON object, e.g. {"name": "ci"}; no request was sent.')
    return data


def _number(text: str) -> float | int:
    """A JSON number with a fraction or exponent: an int when it is a whole number, as JSON Schema
    (and so the document) counts 6.0 as an integer; the engine, for Python callers, does not."""
    value = float(text)
    if value.is_integer() and abs(value) < 2 ** 63:
        whole = Decimal(text)
        if whole == whole.to_integral_value():
            return int(whole)
    return value


def _idempotency_key(request: Request) -> str | None:
    """The key from the ``Idempotency-Key`` header or the ``idempotency_key`` query parameter (tool
    importers forward only the query). Present but unusable is refused: ignoring it would run the
    call without the protection its sender asked for."""
    given = [*request.headers.getlist(openapi.IDEMPOTENCY_HEADER),
             *request.query_params.getlist(openapi.IDEMPOTENCY_QUERY)]
    if not given:
        return None
    where = f"The {openapi.IDEMPOTENCY_HEADER} header (or the {openapi.IDEMPOTENCY_QUERY} query parameter)"
    if len(set(given)) > 1:
        raise MalformedRequest(f"{where} is given {len(given)} times with different values.",
                               errors=[{"path": openapi.IDEMPOTENCY_QUERY, "message": "different values"}],
                               hint="Send one idempotency key, once; no request was sent.")
    value = given[0]
    # Any characters (it is only hashed), but not blank: that is a runner's template that came out
    # empty. Blank is only spaces and tabs, as the document's pattern says (HTTP strips those).
    if not value.strip(" \t") or len(value) > openapi.IDEMPOTENCY_KEY_MAX:
        raise MalformedRequest(
            f"{where} must be 1 to {openapi.IDEMPOTENCY_KEY_MAX} characters, not blank; it has {len(value)}.",
            errors=[{"path": openapi.IDEMPOTENCY_QUERY, "message": f"{len(value)} characters"}],
            hint="Use a fresh UUID per logical request, e.g. from "
                 "`python3 -c 'import uuid; print(uuid.uuid4())'`; no request was sent.")
    return value


def _key_of(request: Request) -> str:
    key = api_key_from_headers(request.headers)
    if not key:  # RequireGenKey answers first; never fall back to the server's own key
        raise AuthenticationError("This request carries no GEN API key.", hint=KEY_HINT)
    return key


def _given(**options: Any) -> dict[str, Any]:
    return {name: value for name, value in options.items() if value is not None}


# -- exception handlers, keyed by class (Starlette walks the exception's MRO) ------------------------


async def gen_error(request: Request, exc: GenError) -> Response:
    status, body, headers = error_answer(exc)
    return JSONResponse(body, status, headers=headers)


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own refusals (no such path, wrong method) in the same error shape."""
    hint = ("See GET /openapi.json for the operations: POST /actions/{action}."
            if exc.status_code in (404, 405) else "Check the request against GET /openapi.json.")
    refusal = (NotFound if exc.status_code == 404 else MalformedRequest)(f"{exc.status_code}: {exc.detail}", hint=hint)
    return JSONResponse(error_body(refusal, TERMS), exc.status_code, headers=exc.headers)


class _NoTraceback:
    """Pure ASGI middleware, outermost of ours: a bug is answered 500 without its text (it may hold
    data) and logged by class name only. Starlette's own 500 handler would re-raise it, and uvicorn
    would print the exception, values and all."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = False

        async def tracked(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if scope["type"] != "http":
                raise
            log.error("unexpected %s while serving %s", type(exc).__name__, log_path(scope.get("path")))
            if not started:
                await JSONResponse(_unexpected_body(), 500)(scope, receive, send)


class _Later:
    """The writes a call hands over for after its answer is sent (its idempotency record). Once
    :meth:`take` has run, a write handed over later runs at once, in the thread that hands it: a call
    still running in its worker thread when its request is cancelled completes its record itself."""

    def __init__(self) -> None:
        self._writes: list[Callable[[], None]] = []
        self._taken = False
        self._lock = threading.Lock()

    def __call__(self, write: Callable[[], None]) -> None:
        with self._lock:
            if not self._taken:
                self._writes.append(write)
                return
        write()

    def take(self) -> list[Callable[[], None]]:
        """The writes handed over so far, to run now; any later one runs when handed over."""
        with self._lock:
            self._taken, writes, self._writes = True, self._writes, []
        return writes


class _AnswerThenRecord(JSONResponse):
    """A call's answer, then the writes it left for after (its idempotency record): the caller
    waits for GEN, not for the store. They run even when sending fails or the request is cancelled
    (a caller whose answer was lost is the one whose repeat must find the record): shielded from
    anyio's cancellation, and a task cancelled outright stops waiting while the write goes on in its
    worker thread."""

    def __init__(self, body: Any, status: int, *, headers: dict[str, str], later: _Later) -> None:
        super().__init__(body, status, headers=headers)
        self.later = later

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            writes = self.later.take()
            if writes:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(lambda: [write() for write in writes])


class _Asgi:
    """An ASGI callable as a route's endpoint (Starlette calls a plain function with a Request)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


# -- the app --------------------------------------------------------------------------------------


def build_app(registry: Registry | None = None, **options: Any) -> Starlette:
    """The gateway app. ``options`` are :class:`Gateway`'s (``store_url``, ``base_url``, ``confirmation``, ...)."""
    gateway = Gateway(registry or default_registry(), **options)
    routes = [Route("/openapi.json", gateway.openapi_json, methods=["GET"])]
    routes += [Route(openapi.ACTIONS_PATH.replace("{id}", spec.id), gateway.endpoint(spec), methods=["POST"],
                     name=spec.id) for spec in gateway.registry]
    if "get" in gateway.document["paths"].get(openapi.APPROVAL_POLL_PATH, {}):
        routes.append(Route(openapi.APPROVAL_POLL_PATH, gateway.poll_approval, methods=["GET"]))
        routes.append(Route(f"{APPROVAL_PAGE_PATH}/{{link}}", _Asgi(gateway.approval_page),
                            methods=["GET", "POST"], include_in_schema=False))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_NoTraceback), Middleware(RequireGenKey, paths=("/actions", "/approvals"))],
        exception_handlers={GenError: gen_error, HTTPException: http_error},
        lifespan=gateway.lifespan,
    )
    app.state.gateway = gateway
    return app


# -- command line ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_options(parser, port=DEFAULT_PORT, timeout=True)
    parser.add_argument("--base-url", help="GEN API base URL (default: $GEN_BASE_URL or https://api.gen.pro/v1)")
    parser.add_argument("--store", default=None, metavar="URL",
                        help="where idempotency records and approvals live: sqlite:// (default: a file in the "
                             "state dir), sqlite:///path.db, or redis://host:port/db for several gateways")
    parser.add_argument("--confirmation", type=_confirmation, choices=openapi.CONFIRMATION_MODES, default=NONE,
                        help="who approves a destructive action: nobody, it runs at once (none, default; the old "
                             "name direct still works), or a person: answer 202 and wait for the approval (approval)")
    parser.add_argument("--public-url", help="the URL clients use to reach the gateway (for the OpenAPI servers "
                                             "entry and approval links; default: the request's own address)")
    parser.add_argument("--approval-notify", action="append", default=[], metavar="TARGET",
                        help="--confirmation approval: who is sent the approval page's link (repeatable): stderr "
                             "(default), an http(s):// webhook URL (signed with $GEN_NODES_NOTIFY_SECRET), slack "
                             "or discord")


def _confirmation(text: str) -> str:
    """--confirmation's type: the old name ``direct`` becomes ``none`` (argparse then checks the choices)."""
    return CONFIRMATION_ALIASES.get(text, text)


def main(argv: Sequence[str] | None = None, **defaults: Any) -> int:
    """``gen-nodes serve [options]``; ``defaults`` (``base_url``, ``timeout``) apply unless ``argv`` says otherwise."""
    from gen_nodes.net.logs import configure_logging
    from gen_nodes.net.serve import serve

    parser = argparse.ArgumentParser(prog="gen-nodes serve",
                                     description="Serve the GEN actions over HTTP with an OpenAPI 3.1 document.")
    add_arguments(parser)
    parser.set_defaults(**{name: value for name, value in defaults.items() if value is not None})
    options = parser.parse_args(argv)
    configure_logging(options.log_level)
    try:
        app = build_app(store_url=options.store or settings.current().store or DEFAULT_STORE,
                        base_url=options.base_url, timeout=timeouts(options.timeout),
                        confirmation=options.confirmation, public_url=options.public_url,
                        approval_notify=options.approval_notify)
    except InvalidSetting as exc:  # one line, before anything listens
        print(f"gen-nodes serve: {exc.message} {exc.hint or ''}".strip(), file=sys.stderr)
        return 2
    _open_or_explain(app.state.gateway)
    if options.confirmation == NONE and options.allow_remote and not is_loopback(options.host):
        print(f"gen-nodes serve: warning: listening on {options.host} with --confirmation none (formerly --confirmation direct): any caller, a "
              "model's tool included, can revoke keys at once; use --confirmation approval with an "
              "--approval-notify target that reaches a person.", file=sys.stderr, flush=True)
    try:
        serve(app, host=options.host, port=options.port, allow_remote=options.allow_remote,
              allowed_hosts=options.allowed_host, name="gen-nodes gateway")
    except KeyboardInterrupt:
        pass
    return 0


def _open_or_explain(gateway: Gateway) -> None:
    """Open the gateway's store before serving; one that cannot open is a ``cannot_serve`` error (JSON)."""
    from gen_nodes.state import StoreError
    from gen_nodes.state.secretbox import SecretBoxError
    from gen_nodes.core.errors import CannotServe

    try:
        gateway.open()
    except (StoreError, SecretBoxError) as exc:
        raise CannotServe(f"The gateway's store cannot be used: {exc}",
                       hint="Fix the --store URL or the state files it names (or $GEN_NODES_STORE, "
                            "$GEN_NODES_STATE_SECRET), then start it again.") from None


def app_from_env() -> Any:
    """The app for ``uvicorn --factory`` and gunicorn workers, configured by environment variables:
    ``GEN_NODES_STORE`` (a ``redis://`` URL when there are several workers or machines),
    ``GEN_BASE_URL``, ``GEN_NODES_CONFIRMATION`` (none or approval; direct is none), ``GEN_NODES_PUBLIC_URL``,
    ``GEN_NODES_APPROVAL_NOTIFY`` (comma-separated targets, as ``--approval-notify``), and
    ``GEN_NODES_ALLOWED_HOSTS`` (comma-separated Host names; the same guard as ``--allowed-host``).
    The access log (uvicorn's) never records an approval page's path: the link is a secret."""
    from gen_nodes.net.guard import HostGuard
    from gen_nodes.net.logs import install_log_filters

    install_log_filters()
    try:
        env = settings.current()
        app = build_app(store_url=env.store or DEFAULT_STORE, confirmation=env.confirmation or NONE,
                        public_url=env.public_url, approval_notify=list(env.approval_notify))
    except InvalidSetting as exc:  # one line on stderr and exit 1, not a traceback from the server's loader
        raise SystemExit(f"gen-nodes gateway: {exc.message} {exc.hint or ''}".strip()) from None
    hosts = list(settings.current().allowed_hosts)
    return HostGuard(app, hosts) if hosts else app


if __name__ == "__main__":
    sys.exit(main())
