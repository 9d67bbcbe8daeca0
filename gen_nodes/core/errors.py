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
    |   +-- MalformedRequest      invalid_input          2  400  a bad header or query parameter (not the input)
    +-- InvalidSetting            invalid_setting        2  500  the server's own configuration is wrong
    +-- AuthenticationError       authentication         3  401
    +-- PermissionDenied          permission             3  403
    +-- NotFound                  not_found              4  404
    +-- Rejected                  rejected               1  422  GEN refused the input
    +-- RateLimited               rate_limited           5  429  (``Retry-After`` over HTTP)
    +-- ServerError               server_error           5  502
    +-- ConnectionFailed          connection             5  502
    +-- RequestTimeout            timeout                5  504
    +-- ResponseTooLarge          response_too_large     5  502
    +-- OutcomeUnknown            outcome_unknown        7  424  may have acted; see ``candidates``
    +-- ConfirmationRequired      confirmation_required  6  428  a destructive call nobody approved
    |   +-- ApprovalDenied        denied                 6  403  a person refused it
    |   +-- ApprovalExpired       expired                6  410  nobody decided in time
    |   +-- NobodyToAsk           nobody_to_ask          6  503  no notify target reaches a person
    |   +-- TooManyApprovals      too_many_approvals     6  429  a key already has 10 calls waiting for a person
    +-- IdempotencyConflict       idempotency_conflict   1  422  an ``Idempotency-Key`` reused for another request
    +-- RequestInProgress         in_progress            1  409  the first request with that key is still running
    +-- ApprovalError             approval               6  502  an approval that cannot be decided or used
    +-- CannotServe               cannot_serve           1  502  a server could not start (never an HTTP answer)

``outcome_unknown`` has a status of its own, and a 4xx one on purpose: generic HTTP
clients retry 5xx answers by themselves, and repeating a create that may have
happened makes a second key. A retry that carries the same ``Idempotency-Key`` is
answered the same ``outcome_unknown`` by the gateway, never sent again.

``retryable`` says whether a workflow engine (Airflow, Temporal) may try the call
again: true only for ``rate_limited``, ``server_error``, ``connection``, ``timeout``
and ``in_progress``; every other error fails the engine's step for good.
"""

from __future__ import annotations

from typing import Any

from gen_nodes.core.terms import PYTHON_TERMS, Terms


class GenError(Exception):
    """Base of every gen-nodes error."""

    type = "api_error"
    exit_code = 1
    #: Trying the same call again later may succeed (rate limits, GEN down, network faults).
    #: Workflow engines retry only these; everything else fails the step for good.
    retryable = False
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
        self.hint_template = hint or self.default_hint
        self.details = details

    @property
    def hint(self) -> str:
        """What to do next, in Python's terms (surfaces render ``hint_template`` in their own)."""
        return PYTHON_TERMS.render(self.hint_template)

    @hint.setter
    def hint(self, template: str) -> None:
        self.hint_template = template

    def to_dict(self, terms: Terms | None = None) -> dict[str, Any]:
        """The JSON form, its hint in ``terms`` (default: Python's)."""
        out: dict[str, Any] = {
            "type": self.type,
            "message": self.message,
            "status": self.status,
            "error_code": self.error_code,
            "hint": (terms or PYTHON_TERMS).render(self.hint_template),
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


class InvalidSetting(GenError, ValueError):
    """A setting (an option, an environment variable, a constructor argument) makes no sense; nothing was sent."""

    type = "invalid_setting"
    exit_code = 2
    http_status = 500
    default_hint = "Fix the setting the message names, then run again; nothing was sent."


class AuthenticationError(GenError):
    type = "authentication"
    exit_code = 3
    http_status = 401
    default_hint = (
        "GEN refused the API key (missing, wrong, revoked or expired): ${API_KEY}; "
        "retrying with the same key will not help."
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
    default_hint = "No such object for this account; call ${list_api_keys} to see the ids you can use."


class Rejected(GenError):
    type = "rejected"
    exit_code = 1
    http_status = 422
    default_hint = "GEN rejected the input; correct it as the message says and call again. Retrying unchanged will fail again."


class RateLimited(GenError):
    type = "rate_limited"
    exit_code = 5
    retryable = True
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
    retryable = True
    http_status = 502
    default_hint = "GEN (or a proxy in front of it) failed; try again in a minute. If it persists, check GEN's status page."


class ConnectionFailed(GenError):
    type = "connection"
    exit_code = 5
    retryable = True
    http_status = 502
    default_hint = "Could not connect to GEN; check the network and ${BASE_URL}, then try again."


class RequestTimeout(GenError):
    type = "timeout"
    exit_code = 5
    retryable = True
    http_status = 504
    default_hint = "GEN did not answer in time; try again later, or raise the timeout (${TIMEOUT}) or the deadline (${DEADLINE})."


class ResponseTooLarge(GenError):
    """GEN's answer, decoded, is larger than the client accepts; reading it stopped there."""

    type = "response_too_large"
    exit_code = 5
    http_status = 502
    default_hint = (
        "The answer was refused for its size, so nothing of it is used. If answers this large are "
        "expected, raise the cap (${MAX_RESPONSE_BYTES}); otherwise check ${BASE_URL}."
    )


class OutcomeUnknown(GenError):
    """A request that is not safe to repeat may have reached GEN, and no answer came back."""

    type = "outcome_unknown"
    exit_code = 7
    http_status = 424
    default_hint = (
        "The request may have succeeded on GEN's side. Do not simply retry: that could create a duplicate. "
        "Call ${list_api_keys}, and revoke any key you did not mean to create."
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


class NobodyToAsk(ConfirmationRequired):
    """A destructive call needs a person's approval, but no notification target could reach one."""

    type = "nobody_to_ask"
    http_status = 503
    default_hint = ("Nothing was changed. The server's operator must set an approval notify target that "
                    "reaches a person (--approval-notify); then call the action again.")


class TooManyApprovals(ConfirmationRequired):
    """A key already has as many calls waiting for a person as it may; this one was not opened."""

    type = "too_many_approvals"
    http_status = 429
    default_hint = ("Nothing was changed and nobody was asked. Wait until the person decides the calls already "
                    "waiting (or they expire), then call again; do not retry in a loop.")


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
    retryable = True
    default_hint = "The first request with this Idempotency-Key is still running; repeat this one in a few seconds."


class MalformedRequest(InvalidInput):
    """A header or query parameter of an HTTP request is malformed (not the action's input); nothing was sent."""

    http_status = 400


class ApprovalError(GenError):
    """An approval cannot be decided or used: unknown, expired, already decided, or not yours."""

    type = "approval"
    exit_code = 6
    default_hint = "Nothing was changed. Ask for a new approval by calling the action again."

    def __init__(self, message: str, *, reason: str, **kw: Any) -> None:
        super().__init__(message, reason=reason, **kw)
        self.reason = reason


class CannotServe(GenError):
    """A server could not start: the port is taken, the address is wrong, or the app failed to start."""

    type = "cannot_serve"
    exit_code = 1
    default_hint = "Pick a free port (or --port 0 for any free one) and an address of this machine."


#: The hint of a bug: said the same way on every surface.
UNEXPECTED_HINT = "This is a bug in gen-nodes or a plugin, not in your input; try again or report it."


def unexpected_failure(exc: BaseException | None = None, where: str = "gen-nodes") -> GenError:
    """A bug, not the caller's fault, as an error: its class name at most, never its text (it may hold data)."""
    named = f" ({type(exc).__name__})" if exc is not None else ""
    return GenError(f"Unexpected failure in {where}{named}.", hint=UNEXPECTED_HINT)


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
