"""The sandbox's GEN API: routes, endpoint logic and GEN-shaped answers, without HTTP plumbing.

``Api`` turns a parsed ``Request`` into a ``Response`` using ``Store``: the six
endpoints of GEN's "API Keys" reference under ``/v1``, in two variants where GEN's
documents disagree ("reference": integer ids and 204 revokes; "openapi": string ids
and 200 revokes with a message), plus the control endpoint ``POST /_sandbox/users``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable

from gen_nodes.net.guard import is_loopback
from gen_nodes.sandbox.store import MAX_ID, Store, ValidationError

VARIANTS = ("reference", "openapi")
API_PREFIX = "/v1"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)


def json_response(status: int, payload: object, headers: dict | None = None) -> Response:
    body = json.dumps(payload).encode("utf-8")
    return Response(status, body, {"Content-Type": "application/json", **(headers or {})})


def error(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    return json_response(status, {"error": message, "error_code": code}, headers)


def not_found(message: str = "Not found") -> Response:
    return error(404, "not_found", message)


TOKEN_NOT_FOUND = "Token not found"


@dataclass
class Request:
    method: str
    path: str
    headers: object  # http.client.HTTPMessage: case-insensitive .get()
    body: bytes
    client_host: str
    params: dict = field(default_factory=dict)
    user_id: int | None = None


@dataclass
class Route:
    pattern: re.Pattern
    methods: dict  # HTTP method -> Api method name
    authenticated: bool = True  # also: subject to faults

    def handler_for(self, method: str) -> str | None:
        return self.methods.get(method)


ROUTES = [
    Route(re.compile(r"/v1/me"), {"GET": "me"}),
    Route(re.compile(r"/v1/persisted_tokens"), {"GET": "list_keys", "POST": "create_key"}),
    Route(re.compile(r"/v1/persisted_tokens/revoke_all"), {"DELETE": "revoke_all"}),
    Route(re.compile(r"/v1/persisted_tokens/(?P<id>[^/]+)/revoke"), {"DELETE": "revoke_key"}),
    Route(re.compile(r"/v1/persisted_tokens/(?P<id>[^/]+)"), {"PATCH": "rename_key"}),
    Route(re.compile(r"/_sandbox/users"), {"POST": "control_create_user"}, authenticated=False),
]


class Api:
    """Endpoint behaviour, independent of the HTTP transport."""

    def __init__(self, store: Store, variant: str, on_new_user: Callable[[int], str]):
        self.store = store
        self.variant = variant
        self._bootstrap_key = on_new_user

    def resolve(self, method: str, path: str) -> tuple[Route, dict] | Response:
        """Pick the route for method and path, or the 404/405 answer."""
        allowed = set()
        for route in ROUTES:
            match = route.pattern.fullmatch(path)
            if not match:
                continue
            if route.handler_for(method):
                return route, match.groupdict()
            allowed.update(route.methods)
        if not allowed:
            return not_found()
        return error(405, "method_not_allowed", f"Method {method} not allowed",
                     {"Allow": ", ".join(sorted(allowed))})

    def execute(self, route: Route, request: Request) -> Response:
        if route.authenticated:
            denied = self._authenticate(request)
            if denied:
                return denied
        try:
            return getattr(self, route.handler_for(request.method))(request)
        except ValidationError as exc:
            return error(422, "validation_error", str(exc))

    def _authenticate(self, request: Request) -> Response | None:
        plain = request.headers.get("X-API-Key")
        if not plain:
            return error(401, "unauthorized", "Missing API key: send it in the X-API-Key header")
        identity = self.store.authenticate(plain)
        if identity is None:
            return error(401, "unauthorized", "Invalid, revoked or expired API key")
        request.user_id = identity[0]
        return None

    # -- endpoints ----------------------------------------------------------

    def me(self, request: Request) -> Response:
        return json_response(200, self._user_out(self.store.get_user(request.user_id)))

    def list_keys(self, request: Request) -> Response:
        return json_response(200, [self._key_out(k) for k in self.store.list_keys(request.user_id)])

    def create_key(self, request: Request) -> Response:
        body = parse_object(request.body)
        if isinstance(body, Response):
            return body
        key, plain = self.store.create_key(request.user_id, body.get("name"), body.get("expires_in"))
        out = self._key_out(key)
        # Same field order as the reference example: token right after name.
        return json_response(201, {"id": out.pop("id"), "name": out.pop("name"), "token": plain, **out})

    def rename_key(self, request: Request) -> Response:
        key_id = parse_id(request.params["id"])
        body = parse_object(request.body)
        if isinstance(body, Response):
            return body
        if key_id is None or self.store.get_key(request.user_id, key_id) is None:
            return not_found(TOKEN_NOT_FOUND)
        fields = body.get("persisted_token", body)
        if not isinstance(fields, dict) or "name" not in fields:
            raise ValidationError("name is required")
        return json_response(200, self._key_out(self.store.rename_key(request.user_id, key_id, fields["name"])))

    def revoke_key(self, request: Request) -> Response:
        key_id = parse_id(request.params["id"])
        if key_id is None or self.store.revoke_key(request.user_id, key_id) is None:
            return not_found(TOKEN_NOT_FOUND)
        if self.variant == "openapi":
            return json_response(200, {"message": "Token revoked"})
        return Response(204)

    def revoke_all(self, request: Request) -> Response:
        count = self.store.revoke_all(request.user_id)
        if self.variant == "openapi":
            return json_response(200, {"message": f"Successfully revoked {count} tokens"})
        return Response(204)

    def control_create_user(self, request: Request) -> Response:
        if not is_loopback(request.client_host):
            return error(403, "forbidden", "The sandbox control endpoint only answers loopback clients")
        body = parse_object(request.body)
        if isinstance(body, Response):
            return body
        user = self.store.create_user(body.get("email"), body.get("name"))
        api_key = self._bootstrap_key(user["id"])
        return json_response(201, {"user": self._user_out(user), "api_key": api_key})

    # -- serialisation per variant -----------------------------------------

    def _key_out(self, key: dict) -> dict:
        return {**key, "id": str(key["id"])} if self.variant == "openapi" else dict(key)

    def _user_out(self, user: dict) -> dict:
        return {**user, "id": str(user["id"])} if self.variant == "openapi" else dict(user)


def parse_object(raw: bytes) -> dict | Response:
    """The request body as a JSON object ({} when empty), or the error answer."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # also UnicodeDecodeError and JSONDecodeError
        return error(400, "bad_request", "Request body is not valid JSON")
    if not isinstance(body, dict):
        return error(422, "validation_error", "Request body must be a JSON object")
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # "\ud800" is valid JSON but no text: it cannot be stored
        return error(422, "validation_error", "Request body holds a lone surrogate, which is not valid Unicode")
    return body


def parse_id(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None
