"""The HTTP gateway's OpenAPI 3.1 document, generated from the registry.

One operation per action, ``POST /actions/{action id}`` with ``operationId`` = the
action id, so a plugin's actions are in the document too. Written for importers
(Dify, Open WebUI, n8n, GPT Actions, Make, Zapier) as much as for validators:

- the request body is the action's input schema, flat: one object whose
  properties are the inputs, every ``$ref`` inlined, no ``oneOf``/``anyOf`` at its
  top (Dify reads only the top-level ``properties`` of a body);
- the 200 response is the output schema; each error status the gateway can answer for
  that route (listed below, per kind of route; statuses from ``core/errors.py``) has the CLI's
  ``{"error": {...}}``;
- the only ``$ref`` point inside the document (``#/components/...``);
- ``X-API-Key`` and bearer security schemes; ``x-openai-isConsequential`` on every
  operation (true unless it only reads) and ``x-gen-hints`` with the spec's hints;
- an ``idempotency_key`` query parameter on every operation that changes something (the
  gateway takes the ``Idempotency-Key`` header too, but a header parameter is one that tool
  importers such as Open WebUI show the model and then never send), and with
  ``confirmation="approval"`` the 202 of a destructive call and ``GET /approvals/{id}``.

Nothing here serves anything: ``surfaces/gateway/app.py`` serves the document.
"""

from __future__ import annotations

from typing import Any, Iterable

from gen_nodes.core.version import __version__
from gen_nodes.core.errors import (ApprovalDenied, ApprovalExpired, AuthenticationError, BodyTooLarge, ConnectionFailed, GenError,
                      IdempotencyConflict, InvalidInput, InvalidSetting, MalformedRequest, NobodyToAsk, NotFound,
                      OutcomeUnknown,
                      PermissionDenied, RateLimited, Rejected, RequestInProgress, RequestTimeout, ResponseTooLarge,
                      ServerError, TooManyApprovals)
from gen_nodes.core.validation import bundled
from gen_nodes.core.spec import APPROVAL, NONE, ActionSpec
from gen_nodes.core.spec import confirmation as confirmation_of

OPENAPI_VERSION = "3.1.0"
ACTIONS_PATH = "/actions/{id}"
APPROVAL_POLL_PATH = "/approvals/{approval_id}"
APPROVAL_OPERATION = "get_approval"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: The same key as a query parameter: what tool importers that forward only path and query deliver.
IDEMPOTENCY_QUERY = "idempotency_key"
#: Longest Idempotency-Key the gateway keeps (UUIDs and hashes fit easily).
IDEMPOTENCY_KEY_MAX = 255
#: Confirmation modes of destructive actions: act at once (none; the old name ``direct`` is still
#: accepted), or wait for a person's approval.
CONFIRMATION_MODES = (NONE, APPROVAL)

# Keywords that only identify a schema file; inside an OpenAPI document they would
# make validators treat the schema as a separate resource.
_FILE_KEYWORDS = ("$schema", "$id")
_COMBINATORS = ("oneOf", "anyOf", "allOf")
#: Error statuses answered with a ``Retry-After`` header.
_RETRY_AFTER = (RateLimited.http_status, RequestInProgress.http_status)

# The errors each kind of route can answer, listed by hand: the document says what the gateway
# does, not which GenError subclasses happen to be imported (start-up errors never answer a call).
#: GEN's answer that made no sense (api_error), its refusals and failures, the key, the server's settings.
_UPSTREAM_ERRORS = (GenError, InvalidSetting, AuthenticationError, PermissionDenied, NotFound, Rejected,
                    RateLimited, ServerError, ConnectionFailed, RequestTimeout, ResponseTooLarge)
#: Any action's POST: its body, then the call.
CALL_ERRORS = (InvalidInput, BodyTooLarge, *_UPSTREAM_ERRORS)
#: Added when the call changes something: its idempotency key (malformed, reused, still running).
CHANGE_ERRORS = (MalformedRequest, IdempotencyConflict, RequestInProgress)
#: Added when a repeat of the call could act twice: GEN may have acted, and nothing is sent again.
UNSAFE_ERRORS = (OutcomeUnknown,)
#: Added to a destructive call held for approval (a repeat with its key answers the approval's state),
#: and to the poll of an approval.
HELD_ERRORS = (ApprovalDenied, ApprovalExpired)
#: Added to a destructive call held for approval: no notify target reached a person (503, at once),
#: or the key already has too many calls waiting for a person (429, nobody is asked).
ASK_ERRORS = (NobodyToAsk, TooManyApprovals)
#: Everything the gateway answers, for reading a recorded error's status back.
ANSWERED_ERRORS = (*CALL_ERRORS, *CHANGE_ERRORS, *UNSAFE_ERRORS, *HELD_ERRORS, *ASK_ERRORS)

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message", "hint"],
            "properties": {
                "type": {"type": "string", "description": "What kind of failure, e.g. invalid_input, not_found, "
                                                          "rate_limited, outcome_unknown."},
                "message": {"type": "string", "description": "What happened, with GEN's own message when it sent one."},
                "hint": {"type": "string", "description": "What to do next."},
                "status": {"type": ["integer", "null"], "description": "GEN's HTTP status, when GEN answered."},
                "error_code": {"type": ["string", "null"], "description": "GEN's error code, when it sent one."},
                "errors": {"type": "array", "description": "invalid_input: each problem with its JSON path.",
                           "items": {"type": "object", "properties": {"path": {"type": "string"},
                                                                     "message": {"type": "string"}}}},
                "retry_after": {"type": ["number", "null"], "description": "rate_limited: seconds to wait."},
                "candidates": {"type": ["array", "null"], "items": {"type": "object"},
                               "description": "outcome_unknown: objects the request may have created (secrets masked)."},
            },
            "additionalProperties": True,
        },
    },
    "additionalProperties": True,
}

APPROVAL_SCHEMA = {
    "type": "object",
    "required": ["approval"],
    "properties": {
        "approval": {
            "type": "object",
            "required": ["id", "state", "action", "poll"],
            "properties": {
                "id": {"type": "string", "description": "The approval's id; poll GET /approvals/{id} with it."},
                "state": {"type": "string", "description": "pending, approved or running until the call has run."},
                "action": {"type": "string", "description": "The action waiting for approval."},
                "poll": {"type": "string", "description": "Where to poll for the result (GET, same API key)."},
                "expires_at": {"type": ["string", "null"], "description": "When an undecided approval lapses."},
                "preview": {"type": ["array", "null"], "items": {"type": "object"},
                            "description": "What the call would affect (secrets masked)."},
            },
            "additionalProperties": True,
        },
    },
    "additionalProperties": True,
}


def document(specs: Iterable[ActionSpec], *, server_url: str = "/", confirmation: str = NONE,
             title: str = "GEN API (gen-nodes gateway)") -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``specs`` served at ``server_url``."""
    confirmation = confirmation_of(confirmation, CONFIRMATION_MODES)
    specs = list(specs)
    paths: dict[str, Any] = {}
    for spec in specs:
        paths[ACTIONS_PATH.replace("{id}", spec.id)] = {"post": operation(spec, confirmation)}
    approvals = confirmation == APPROVAL and any(spec.hints.destructive for spec in specs)
    if approvals:
        paths[APPROVAL_POLL_PATH] = {"get": _approval_operation(specs)}
    components: dict[str, Any] = {
        "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                       "description": "Your GEN API key; each request acts as the key it carries."},
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "Your GEN API key as a bearer token (the same as X-API-Key)."},
        },
        "schemas": {"Error": ERROR_SCHEMA},
    }
    if approvals:
        components["schemas"]["Approval"] = APPROVAL_SCHEMA
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": __version__,
            "description": (
                "GEN's API-key endpoints as actions: POST the action's input as a flat JSON object to "
                "/actions/{action}; the answer is the action's output. Authenticate with your GEN API key "
                "(X-API-Key or Authorization: Bearer). Errors answer {\"error\": {type, message, hint, ...}}. "
                f"Send an {IDEMPOTENCY_HEADER} header (or the {IDEMPOTENCY_QUERY} query parameter) to make a "
                "retried create safe."
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"apiKey": []}, {"bearer": []}],
        "paths": paths,
        "components": components,
    }


def operation(spec: ActionSpec, confirmation: str = NONE) -> dict[str, Any]:
    """The OpenAPI operation object of one action."""
    hints = spec.hints
    op: dict[str, Any] = {
        "operationId": spec.id,
        "summary": spec.title,
        "description": spec.description,
        "tags": ["actions"],
        "x-openai-isConsequential": not hints.read_only,
        "x-gen-hints": {"read_only": hints.read_only, "destructive": hints.destructive,
                        "idempotent": hints.idempotent, "open_world": hints.open_world},
    }
    if not hints.read_only:
        op["parameters"] = [idempotency_parameter()]
    body = request_schema(spec)
    op["requestBody"] = {
        # An action whose inputs are all optional may be called with no body at all.
        "required": bool(body.get("required")),
        "content": {"application/json": {"schema": body}},
    }
    responses: dict[str, Any] = {"200": {
        "description": f"{spec.title}: the action's output.",
        "content": {"application/json": {"schema": response_schema(spec.output_schema)}},
    }}
    if spec.composite:
        responses["207"] = {
            "description": f"{spec.title} partly done: `status` is \"partial\". Some steps changed something and a "
                           "later one failed; the body keeps what was made (a new key's secret included), `error` "
                           "says why and `next` what to do. Do not repeat the call without the same Idempotency-Key.",
            "content": {"application/json": {"schema": response_schema(spec.output_schema)}},
        }
    if hints.destructive and confirmation == APPROVAL:
        responses["202"] = {
            "description": "Nothing was done yet: a person must approve the call first. The gateway sends them its "
                           "approval page (never in this answer); poll `approval.poll` until it answers something "
                           "other than 202.",
            "headers": {"Location": {"description": "The poll URL.", "schema": {"type": "string"}}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Approval"}}},
        }
    responses.update(error_responses(spec, confirmation))
    op["responses"] = responses
    return op


def request_schema(spec: ActionSpec) -> dict[str, Any]:
    """The action's input schema as a flat JSON object: what importers can map to form fields."""
    return flat(_without_file_keywords(bundled(spec.input_schema)))


def response_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return _without_file_keywords(bundled(schema))


def flat(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with any top-level ``oneOf``/``anyOf``/``allOf`` of objects merged into one object.

    The gateway still validates against the real schema; the document only has to let
    importers see every field. A field is required if every branch requires it (all of
    ``allOf``'s requirements hold).
    """
    schema = dict(schema)
    for keyword in _COMBINATORS:
        branches = schema.pop(keyword, None)
        if not branches:
            continue
        props = dict(schema.get("properties", {}))
        required_sets = []
        for branch in branches:
            branch = flat(branch) if isinstance(branch, dict) else {}
            for name, sub in branch.get("properties", {}).items():
                props.setdefault(name, sub)
            required_sets.append(set(branch.get("required", ())))
        if keyword == "allOf":
            required = set().union(*required_sets)
        else:
            required = set.intersection(*required_sets) if required_sets else set()
        schema["properties"] = props
        merged = list(dict.fromkeys([*schema.get("required", ()), *sorted(required)]))
        if merged:
            schema["required"] = merged
        schema["type"] = "object"
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def error_responses(spec: ActionSpec, confirmation: str = NONE) -> dict[str, Any]:
    """Every error status the gateway may answer for ``spec``, each with the error types behind it."""
    return _responses_of(applicable_errors(spec, confirmation))


def _responses_of(classes: Iterable[type[GenError]]) -> dict[str, Any]:
    by_status: dict[int, list[str]] = {}
    for cls in classes:
        types = by_status.setdefault(cls.http_status, [])
        if cls.type not in types:
            types.append(cls.type)
    return {str(status): _error_response(by_status[status], retry_after=status in _RETRY_AFTER)
            for status in sorted(by_status)}


def _error_response(types: list[str], retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": "Error: " + ", ".join(types) + ".",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if retry_after:
        response["headers"] = {"Retry-After": {"description": "Seconds to wait before trying again.",
                                               "schema": {"type": "integer", "minimum": 0}}}
    return response


def applicable_errors(spec: ActionSpec, confirmation: str = NONE) -> list[type[GenError]]:
    """The error classes a call of ``spec`` through the gateway can end in."""
    out = list(CALL_ERRORS)
    if not spec.hints.read_only:
        out += CHANGE_ERRORS
    if not spec.hints.safe_to_retry:
        out += UNSAFE_ERRORS
    if spec.hints.destructive and confirmation == APPROVAL:
        out += HELD_ERRORS + ASK_ERRORS
    return out


def status_by_type() -> dict[str, int]:
    """The gateway's status for each error ``type`` (a type's first class: ``invalid_input`` is 422)."""
    statuses: dict[str, int] = {}
    for cls in ANSWERED_ERRORS:
        statuses.setdefault(cls.type, cls.http_status)
    return statuses


def _approval_operation(specs: list[ActionSpec]) -> dict[str, Any]:
    held = [spec for spec in specs if spec.hints.destructive]
    outputs = [response_schema(spec.output_schema) for spec in held]
    # No body and no idempotency key: the approval's state, then the held action's own answer.
    unsafe = UNSAFE_ERRORS if any(not spec.hints.safe_to_retry for spec in held) else ()
    errors = _responses_of([*_UPSTREAM_ERRORS, *unsafe, *HELD_ERRORS])
    return {
        "operationId": APPROVAL_OPERATION,
        "summary": "Poll an approval",
        "description": "The state of a destructive call waiting for a person's approval: 202 while it waits, then "
                       "the action's own answer (200 with its output, or its error) once approved and run; 403 if "
                       "the person denied it.",
        "tags": ["approvals"],
        "x-openai-isConsequential": False,
        "parameters": [{"name": "approval_id", "in": "path", "required": True,
                        "description": "The id from the 202 answer.", "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "Approved and run: the action's output.",
                    "content": {"application/json": {"schema": {"anyOf": outputs}}}},
            "202": {"description": "Still waiting for the person (or running).",
                    "headers": {"Retry-After": {"description": "Seconds until the next poll.",
                                                "schema": {"type": "integer", "minimum": 0}}},
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Approval"}}}},
            **errors,
        },
    }


def idempotency_parameter() -> dict[str, Any]:
    """The idempotency key as a query parameter. Not the header: importers that forward only path and
    query parameters (Open WebUI) would show a header parameter to the model and drop its value."""
    return {
        "name": IDEMPOTENCY_QUERY,
        "in": "query",
        "required": False,
        "description": (
            "Any unique string (a UUID) per logical request. A repeat with the same key and body within 24 hours "
            "gets the first answer again instead of acting twice; a create's secret is replayed once. HTTP "
            f"clients may send it as the {IDEMPOTENCY_HEADER} header instead."
        ),
        "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX, "pattern": r"[^ \t]"},
    }


def _without_file_keywords(schema: dict[str, Any]) -> dict[str, Any]:
    for key in _FILE_KEYWORDS:
        schema.pop(key, None)
    return schema
