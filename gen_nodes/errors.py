"""Typed errors: every failure says what happened and what to do next.

Each error carries the HTTP ``status`` (when GEN answered), GEN's ``error_code``
and message, and a ``hint`` written for a person or an LLM. ``to_dict()`` is the
JSON form the CLI, the tool dispatcher and the MCP server hand back. No error
ever holds the API key or a created key's secret: messages are built from GEN's
error body and our own words, never from request headers.
"""

from __future__ import annotations

from typing import Any


class GenError(Exception):
    """Base of every gen-nodes error."""

    type = "api_error"
    exit_code = 1
    #: Trying the same call again later may succeed (rate limits, GEN down, network faults).
    #: Workflow engines retry only these; everything else fails the step for good.
    retryable = False
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
    default_hint = "Fix each field listed in `errors` (a JSON path and the problem) and call again; no request was sent."

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None, **kw: Any) -> None:
        super().__init__(message, errors=errors or [], **kw)
        self.errors = errors or []


class AuthenticationError(GenError):
    type = "authentication"
    exit_code = 3
    default_hint = (
        "GEN refused the API key (missing, wrong, revoked or expired). Set GEN_API_KEY (or --api-key) "
        "to an active key; retrying with the same key will not help."
    )


class PermissionDenied(GenError):
    type = "permission"
    exit_code = 3
    default_hint = "The key is valid but not allowed to do this; use a key of the account that owns the resource."


class NotFound(GenError):
    type = "not_found"
    exit_code = 4
    default_hint = "No such object for this account; run list_api_keys to see the ids you can use."


class Rejected(GenError):
    type = "rejected"
    exit_code = 1
    default_hint = "GEN rejected the input; correct it as the message says and call again. Retrying unchanged will fail again."


class RateLimited(GenError):
    type = "rate_limited"
    exit_code = 5
    retryable = True
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
    default_hint = "GEN (or a proxy in front of it) failed; try again in a minute. If it persists, check GEN's status page."


class ConnectionFailed(GenError):
    type = "connection"
    exit_code = 5
    retryable = True
    default_hint = "Could not connect to GEN; check the network and GEN_BASE_URL (or --base-url), then try again."


class RequestTimeout(GenError):
    type = "timeout"
    exit_code = 5
    retryable = True
    default_hint = "GEN did not answer in time; try again later or raise the timeout (--timeout / timeout=)."


class OutcomeUnknown(GenError):
    """A request that is not safe to repeat may have reached GEN, and no answer came back."""

    type = "outcome_unknown"
    exit_code = 7
    default_hint = (
        "The request may have succeeded on GEN's side. Do not simply retry: that could create a duplicate. "
        "Run list_api_keys, and revoke any key you did not mean to create."
    )


class InProgress(GenError):
    """An earlier try of the same workflow step is still running; it was not run twice."""

    type = "in_progress"
    exit_code = 5
    retryable = True
    default_hint = ("An earlier try of this step is still running, so it was not run again. Try again later: "
                    "once that try ends, a retry returns its result.")


class ConfirmationRequired(GenError):
    """A destructive action was called without the confirmation it needs; nothing was sent."""

    type = "confirmation_required"
    exit_code = 6
    default_hint = "This action is destructive and irreversible; confirm it (CLI: --yes) to go ahead."


class UnknownAction(GenError):
    type = "invalid_input"
    exit_code = 2


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
