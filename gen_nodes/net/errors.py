"""The one error body of every HTTP and JSON-RPC answer gen-nodes gives: :func:`error_body`.

An HTTP error answers ``{"error": exc.to_dict(terms)}`` (type, message, hint, status, error_code and
the error's details), the shape the CLI prints and a tool result holds; a JSON-RPC error (what an MCP
client reads from a non-2xx answer) carries the same dict as its ``data``. Bodies are never built by
hand: a surface raises or builds a :class:`~gen_nodes.core.errors.GenError` and renders it here, its
hint in the surface's own :class:`~gen_nodes.core.terms.Terms`.
"""

from __future__ import annotations

from typing import Any

from gen_nodes.core.errors import GenError
from gen_nodes.core.terms import Terms


def error_body(exc: GenError, terms: Terms | None = None, *, jsonrpc_code: int | None = None) -> dict[str, Any]:
    """The JSON body answering ``exc``; with ``jsonrpc_code``, a JSON-RPC 2.0 error of that code."""
    error = exc.to_dict(terms)
    if jsonrpc_code is None:
        return {"error": error}
    return {"jsonrpc": "2.0", "id": None,
            "error": {"code": jsonrpc_code, "message": f"{error['message']} {error['hint']}", "data": error}}
