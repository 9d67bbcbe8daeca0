"""ASGI pieces the HTTP surfaces share: capped request bodies, JSON replies and :class:`RequireGenKey` (401 without a key)."""

from __future__ import annotations

import json
from typing import Any, Iterable

from gen_nodes.core.errors import AuthenticationError, BodyTooLarge
from gen_nodes.net.errors import error_body
from gen_nodes.net.headers import KEY_HINT, api_key_from_headers

#: The JSON-RPC error code of a request without a GEN key (MCP over HTTP).
NO_KEY_CODE = -32001

# -- request bodies --------------------------------------------------------------------------

#: The largest request body the chat-ops endpoints read (Slack and Discord send a few KiB).
MAX_BODY = 1024 * 1024


async def read_body(request: Any, limit: int = MAX_BODY) -> bytes:
    """A Starlette request's body, read chunk by chunk and refused (:class:`BodyTooLarge`) as soon as
    it passes ``limit`` bytes, or when its Content-Length says it will: a huge or endless body,
    chunked or not, is never held in memory. Runs before any signature check, so it needs none.
    :class:`~gen_nodes.core.errors.BodyTooLarge` is the one error for it (the gateway answers it as 413)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def body_too_large(limit: int = MAX_BODY) -> Any:
    """The 413 answer to a body over ``limit`` (the connection is closed: the rest is never read)."""
    from starlette.responses import JSONResponse

    return JSONResponse(error_body(BodyTooLarge(limit)), status_code=413, headers={"connection": "close"})


# -- middleware ------------------------------------------------------------------------------


def request_headers(scope: Any) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


async def send_json(send: Any, status: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
           *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


class RequireGenKey:
    """Pure ASGI middleware: a request under ``paths`` (all paths if None) without a GEN key gets 401.

    The body is ``{"error": {"type": "authentication", "message", "hint"}}``; with ``jsonrpc=True``
    it is a JSON-RPC error (what MCP clients read from a non-2xx answer) holding the same words.
    """

    def __init__(self, app: Any, *, paths: Iterable[str] | None = None, jsonrpc: bool = False) -> None:
        self.app, self.jsonrpc = app, jsonrpc
        self.paths = None if paths is None else tuple(p.rstrip("/") for p in paths)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self._guarded(scope.get("path", "")) and not api_key_from_headers(request_headers(scope)):
            missing = AuthenticationError("This request carries no GEN API key.", hint=KEY_HINT)
            body = error_body(missing, jsonrpc_code=NO_KEY_CODE if self.jsonrpc else None)
            return await send_json(send, 401, body, [("www-authenticate", 'ApiKey realm="gen-nodes"')])
        await self.app(scope, receive, send)

    def _guarded(self, path: str) -> bool:
        if self.paths is None:
            return True
        path = path.rstrip("/")
        return any(path == p or path.startswith(p + "/") for p in self.paths)


