"""Typed errors: every failure says what happened and what to do next.

Each error carries the HTTP ``status`` (when GEN answered), GEN's ``error_code``
and message, and a ``hint`` written for a person or an LLM. ``to_dict()`` is the
JSON form the CLI, the tool dispatcher, the MCP server and the HTTP gateway hand
back. No error ever holds the API key or a created key's secret: messages are
built from GEN's error body and our own words, never from request headers.

Each class also says how the surfaces report it: ``exit_code`` for the CLI and
``http_status`` for the HTTP gateway (the gateway's own status, not GEN's, which
stays in ``status``). The tree, with ``type`` / ``exit_code`` / ``http_status``::

    GenError                      api_error              1  502  GEN's answer made no sense (a redirect, a body
    |                                                              that is not JSON): an upstream failure
    +-- InvalidInput              invalid_input          2  422  nothing was sent
    |   +-- UnknownAction         invalid_input          2  422  no action of that name
    |   +-- BodyTooLarge          invalid_input          2  413  a request body over the gateway's limit
    +-- AuthenticationError       authentication         3  401
    +-- PermissionDenied          permission             3  403
    +-- NotFound                  not_found              4  404
    +-- Rejected                  rejected               1  422  GEN refused the input
    +-- RateLimited               rate_limited           5  429  (``Retry-After`` over HTTP)
    +-- ServerError               server_error           5  502
    +-- ConnectionFailed          connection             5  502
    +-- RequestTimeout            timeout                5  504
    +-- OutcomeUnknown            outcome_unknown        7  424  may have acted; see ``candidates``
    +-- ConfirmationRequired      confirmation_required  6  428  a destructive call nobody approved
    |   +-- ApprovalDenied        denied                 6  403  a person refused it
    |   +-- ApprovalExpired       expired                6  410  nobody decided in time
    +-- IdempotencyConflict       idempotency_conflict   1  422  an ``Idempotency-Key`` reused for another request
    +-- RequestInProgress         in_progress            1  409  the first request with that key is still running

``outcome_unknown`` has a status of its own, and a 4xx one on purpose: generic HTTP
clients retry 5xx answers by themselves, and repeating a create that may have
happened makes a second key. A retry that carries the same ``Idempotency-Key`` is
answered the same ``outcome_unknown`` by the gateway, never sent again.
"""

from __future__ import annotations

from typing import Any


class GenError(Exception):
    """Base of every gen-nodes error."""

    type = "api_error"
    exit_code = 1
    #: The HTTP gateway's status for this error (see the tree above).
    http_status = 502
    default_hint = "Something unexpected happened; read the message, then try again or report it."

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        hint: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code
        self.hint = hint or self.default_hint
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "message": self.message,
            "status": self.status,
            "error_code": self.error_code,
            "hint": self.hint,
        }
        out.update(self.details)
        return out

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(type={self.type!r}, status={self.status!r}, message={self.message!r})"


class InvalidInput(GenError):
    """The input does not match the action's schema; nothing was sent."""

    type = "invalid_input"
    exit_code = 2
    http_status = 422
    default_hint = "Fix each field listed in `errors` (a JSON path and the problem) and call again; no request was sent."

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None, **kw: Any) -> None:
        super().__init__(message, errors=errors or [], **kw)
        self.errors = errors or []


class AuthenticationError(GenError):
    type = "authentication"
    exit_code = 3
    http_status = 401
    default_hint = (
        "GEN refused the API key (missing, wrong, revoked or expired). Set GEN_API_KEY (or --api-key) "
        "to an active key; retrying with the same key will not help."
    )


class PermissionDenied(GenError):
    type = "permission"
    exit_code = 3
    http_status = 403
    default_hint = "The key is valid but not allowed to do this; use a key of the account that owns the resource."


class NotFound(GenError):
    type = "not_found"
    exit_code = 4
    http_status = 404
    default_hint = "No such object for this account; run list_api_keys to see the ids you can use."


class Rejected(GenError):
    type = "rejected"
    exit_code = 1
    http_status = 422
    default_hint = "GEN rejected the input; correct it as the message says and call again. Retrying unchanged will fail again."


class RateLimited(GenError):
    type = "rate_limited"
    exit_code = 5
    http_status = 429
    default_hint = "GEN is rate limiting this account; wait and try again."

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        if retry_after is not None and "hint" not in kw:
            kw["hint"] = f"GEN is rate limiting this account; wait {retry_after:g} seconds, then try again."
        super().__init__(message, retry_after=retry_after, **kw)
        self.retry_after = retry_after


class ServerError(GenError):
    type = "server_error"
    exit_code = 5
    http_status = 502
    default_hint = "GEN (or a proxy in front of it) failed; try again in a minute. If it persists, check GEN's status page."


class ConnectionFailed(GenError):
    type = "connection"
    exit_code = 5
    http_status = 502
    default_hint = "Could not connect to GEN; check the network and GEN_BASE_URL (or --base-url), then try again."


class RequestTimeout(GenError):
    type = "timeout"
    exit_code = 5
    http_status = 504
    default_hint = "GEN did not answer in time; try again later or raise the timeout (--timeout / timeout=)."


class OutcomeUnknown(GenError):
    """A request that is not safe to repeat may have reached GEN, and no answer came back."""

    type = "outcome_unknown"
    exit_code = 7
    http_status = 424
    default_hint = (
        "The request may have succeeded on GEN's side. Do not simply retry: that could create a duplicate. "
        "Run list_api_keys, and revoke any key you did not mean to create."
    )


class ConfirmationRequired(GenError):
    """A destructive action was called without the confirmation it needs; nothing was sent."""

    type = "confirmation_required"
    exit_code = 6
    http_status = 428
    default_hint = "This action is destructive and irreversible; confirm it (CLI: --yes) to go ahead."


class ApprovalDenied(ConfirmationRequired):
    """The person asked to approve a destructive call refused it; nothing was sent."""

    type = "denied"
    http_status = 403
    default_hint = "A person refused this call. Do not retry it unless they ask for it again."


class ApprovalExpired(ConfirmationRequired):
    """Nobody approved a destructive call in time; nothing was sent."""

    type = "expired"
    http_status = 410
    default_hint = "Nobody decided in time and nothing was changed; call the action again for a new approval."


class UnknownAction(InvalidInput):
    """No action of that name is installed; the hint names the close matches."""

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, errors=[{"path": "$.action", "message": message}], **kw)


class BodyTooLarge(InvalidInput):
    """A request body larger than the HTTP surface accepts; nothing was sent."""

    http_status = 413

    def __init__(self, limit: int, **kw: Any) -> None:
        super().__init__(f"The request body is larger than {limit} bytes.",
                         errors=[{"path": "$", "message": f"at most {limit} bytes"}],
                         hint="Send only the action's input fields; no request was sent.", **kw)


class IdempotencyConflict(GenError):
    """An ``Idempotency-Key`` already used for a different request; nothing was sent."""

    type = "idempotency_conflict"
    exit_code = 1
    http_status = 422
    default_hint = (
        "This Idempotency-Key was already used for a different request. Use a new key for a new request; "
        "send the same key only to repeat exactly the same request."
    )


class RequestInProgress(GenError):
    """The first request with this ``Idempotency-Key`` has not finished yet; nothing was sent."""

    type = "in_progress"
    exit_code = 1
    http_status = 409
    default_hint = "The first request with this Idempotency-Key is still running; repeat this one in a few seconds."


def error_for_status(status: int) -> type[GenError]:
    """The error class for an HTTP error status."""
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDenied
    if status == 404:
        return NotFound
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return Rejected
    return GenError
