"""The baseline MCP server of the benchmarks: the same seven tools, written the plain way.

A minimal server on the official SDK's ``MCPServer``: one function per tool, a bare
``requests.Session`` to GEN (``GEN_BASE_URL``, ``GEN_API_KEY``), ``.json()``, and typed
returns so the SDK publishes an output schema and checks every result against it (a
pydantic ``TypeAdapter``). No confirmation, secret policy or retries: the figure is what
gen-nodes' MCP server costs over what anyone would write by hand. Run it as
``python benchmarks/mcp_peer.py`` (stdio).
"""

from __future__ import annotations

import os
from typing import Literal, Optional, Union

import requests
from mcp.server.mcpserver import MCPServer
from typing_extensions import NotRequired, TypedDict

KeyId = Union[int, str]


class ApiKey(TypedDict):
    id: KeyId
    name: NotRequired[Optional[str]]
    token_type: NotRequired[str]
    created_at: NotRequired[str]
    expires_at: NotRequired[Optional[str]]
    last_used_at: NotRequired[Optional[str]]
    revoked_at: NotRequired[Optional[str]]
    status: NotRequired[Literal["active", "expired", "revoked"]]


class CreatedKey(ApiKey):
    token: str


class ApiKeys(TypedDict):
    api_keys: list[ApiKey]


class User(TypedDict):
    id: KeyId
    email: NotRequired[Optional[str]]
    name: NotRequired[Optional[str]]


class Revoked(TypedDict):
    id: KeyId
    revoked: bool
    message: NotRequired[str]


class Rotated(TypedDict):
    status: Literal["succeeded", "partial"]
    new_key: CreatedKey
    old_key: ApiKey
    revoked: NotRequired[Revoked]


class RevokedAll(TypedDict):
    revoked_all: bool
    message: NotRequired[str]


BASE_URL = os.environ.get("GEN_BASE_URL", "https://api.gen.pro/v1").rstrip("/")
session = requests.Session()
session.headers["X-API-Key"] = os.environ.get("GEN_API_KEY", "")
server = MCPServer("gen-peer")


def _call(method: str, path: str, **kwargs: object) -> object:
    resp = session.request(method, BASE_URL + path, **kwargs)
    resp.raise_for_status()
    return resp.json() if resp.content else {}


@server.tool()
def gen_get_me() -> User:
    """Return the GEN user that the API key belongs to."""
    return _call("GET", "/me")


@server.tool()
def gen_list_api_keys(status: Optional[Literal["active", "expired", "revoked"]] = None) -> ApiKeys:
    """List the account's GEN API keys."""
    keys = _call("GET", "/persisted_tokens")
    return {"api_keys": [k for k in keys if status is None or k.get("status") == status]}


@server.tool()
def gen_create_api_key(name: Optional[str] = None, expires_in: Optional[Union[str, int]] = None) -> CreatedKey:
    """Create a new GEN API key."""
    body = {k: v for k, v in (("name", name), ("expires_in", expires_in)) if v is not None}
    return _call("POST", "/persisted_tokens", json=body)


@server.tool()
def gen_update_api_key(id: KeyId, name: str) -> ApiKey:
    """Rename a GEN API key."""
    return _call("PATCH", f"/persisted_tokens/{id}", json={"persisted_token": {"name": name}})


@server.tool()
def gen_revoke_api_key(id: KeyId) -> Revoked:
    """Revoke one GEN API key."""
    answer = _call("DELETE", f"/persisted_tokens/{id}/revoke")
    return {"id": id, "revoked": True, **({"message": answer["message"]} if "message" in answer else {})}


@server.tool()
def gen_revoke_all_api_keys() -> RevokedAll:
    """Revoke every GEN API key of the account."""
    answer = _call("DELETE", "/persisted_tokens/revoke_all")
    return {"revoked_all": True, **({"message": answer["message"]} if "message" in answer else {})}


@server.tool()
def gen_rotate_api_key(id: KeyId, name: Optional[str] = None, expires_in: Optional[Union[str, int]] = None) -> Rotated:
    """Create a key's successor, then revoke the old key."""
    old = next(k for k in _call("GET", "/persisted_tokens") if str(k["id"]) == str(id))
    new = gen_create_api_key(name or old.get("name"), expires_in)
    return {"status": "succeeded", "new_key": new, "old_key": old, "revoked": gen_revoke_api_key(id)}


if __name__ == "__main__":
    server.run("stdio")
