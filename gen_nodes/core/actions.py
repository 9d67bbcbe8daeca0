"""The built-in actions: GEN's API-key endpoints, one declaration each.

Each constant is registered in ``pyproject.toml`` under the ``gen_nodes.actions``
entry-point group, exactly as a plugin registers its own. To add an endpoint,
add a declaration here (or in your own package), its two schema files under
``schemas/``, and one entry-point line.
"""

from __future__ import annotations

from gen_nodes.core.validation import load_schema
from gen_nodes.core.spec import (ActionSpec, Chat, FirstOf, Hints, Input, Lifetime, Lookup, Output, Pick, Response,
                                 Span, Step)

_LIST_KEYS = "list_api_keys"
#: The chat command group of the key actions: ``/gen keys ...``.
_KEYS = "keys"

GET_ME = ActionSpec(
    id="get_me",
    title="Get current user",
    description=(
        "Return the GEN user that the API key belongs to (id, email, name). "
        "Use it to check which account and key you are acting as."
    ),
    method="GET",
    path="/me",
    input_schema=load_schema("get_me.input"),
    output_schema=load_schema("get_me.output"),
    hints=Hints(read_only=True, idempotent=True),
    chat=Chat(verb="me"),
)

LIST_API_KEYS = ActionSpec(
    id=_LIST_KEYS,
    title="List API keys",
    description=(
        "List the account's GEN API keys with id, name, status, created/expiry/last-used/revoked "
        "times, never their secrets. Revoked and expired keys show "
        "unless `status` filters them; `expiring_within` / `unused_for` (\"7d\") find "
        "expiring or idle keys. Use it to find the id of a key to rename or revoke."
    ),
    method="GET",
    path="/persisted_tokens",
    input_schema=load_schema("list_api_keys.input"),
    output_schema=load_schema("list_api_keys.output"),
    hints=Hints(read_only=True, idempotent=True),
    inputs={"status": "filter", "expiring_within": "filter", "unused_for": "filter"},
    spans={"expiring_within": Span("expires_at", "ahead"),
           "unused_for": Span("last_used_at", "ago", otherwise="created_at")},
    response=Response(wrap="api_keys"),
    chat=Chat(group=_KEYS, verb="list", args=("status",),
              options={"expiring": "expiring_within", "unused": "unused_for"},
              labels={"expiring_within": "7d", "unused_for": "30d"}),
)

CREATE_API_KEY = ActionSpec(
    id="create_api_key",
    title="Create API key",
    description=(
        "Create a new GEN API key, optionally named and expiring (\"30d\", or seconds). Returns the "
        "key object including `token`, the plain-text secret, which GEN shows only this once. "
        "Not idempotent: each call makes another key."
    ),
    method="POST",
    path="/persisted_tokens",
    input_schema=load_schema("create_api_key.input"),
    output_schema=load_schema("create_api_key.output"),
    hints=Hints(),
    orphans=Lookup(
        action=_LIST_KEYS,
        items="api_keys",
        match={"name": Input("name")},
        created_since="created_at",
        unset=("last_used_at",),
    ),
    chat=Chat(group=_KEYS, verb="create", args=("name",), rest=True, options={"expires": "expires_in"},
              labels={"expires_in": "30d"}),
)

UPDATE_API_KEY = ActionSpec(
    id="update_api_key",
    title="Rename API key",
    description=(
        "Rename an existing GEN API key, given its id (from list_api_keys) and the new name. "
        "Returns the updated key object, without its secret. Changes nothing else."
    ),
    method="PATCH",
    path="/persisted_tokens/{id}",
    input_schema=load_schema("update_api_key.input"),
    output_schema=load_schema("update_api_key.output"),
    hints=Hints(idempotent=True),
    inputs={"id": "path", "name": "body"},
    body_envelope="persisted_token",
    chat=Chat(group=_KEYS, verb="rename", args=("id", "name"), rest=True, labels={"name": "NEW NAME"}),
)

REVOKE_API_KEY = ActionSpec(
    id="revoke_api_key",
    title="Revoke API key",
    description=(
        "Irreversibly revoke one GEN API key by id (from list_api_keys): it stops working at once. "
        "Returns {id, revoked: true}. Revoking an already revoked key is harmless."
    ),
    method="DELETE",
    path="/persisted_tokens/{id}/revoke",
    input_schema=load_schema("revoke_api_key.input"),
    output_schema=load_schema("revoke_api_key.output"),
    hints=Hints(destructive=True, idempotent=True),
    inputs={"id": "path"},
    response=Response(template={"id": Input("id"), "revoked": True}, keep=("message",)),
    preview=Lookup(action=_LIST_KEYS, items="api_keys", match={"id": Input("id")}),
    chat=Chat(group=_KEYS, verb="revoke", args=("id",)),
)

REVOKE_ALL_API_KEYS = ActionSpec(
    id="revoke_all_api_keys",
    title="Revoke all API keys",
    description=(
        "Irreversibly revoke EVERY GEN API key of the account, including the key making this "
        "request: afterwards nothing authenticates until a new key is made in the GEN dashboard. "
        "Returns {revoked_all: true}. Use only to contain a leak."
    ),
    method="DELETE",
    path="/persisted_tokens/revoke_all",
    input_schema=load_schema("revoke_all_api_keys.input"),
    output_schema=load_schema("revoke_all_api_keys.output"),
    hints=Hints(destructive=True, idempotent=True),
    response=Response(template={"revoked_all": True}, keep=("message",)),
    preview=Lookup(action=_LIST_KEYS, items="api_keys", match={"status": "active"}),
    chat=Chat(group=_KEYS, verb="revoke-all"),
)

ROTATE_API_KEY = ActionSpec(
    id="rotate_api_key",
    title="Rotate API key",
    description=(
        "Replace a GEN API key: create its successor (the old name and lifetime unless given), then revoke "
        "the old key, so a working key always exists. Returns new_key with its `token` (shown once). "
        "status \"partial\": the new key was made but the old one may still work; `next` says what to do."
    ),
    method="",
    path="",
    input_schema=load_schema("rotate_api_key.input"),
    output_schema=load_schema("rotate_api_key.output"),
    hints=Hints(destructive=True),
    steps=(
        Step("old", _LIST_KEYS, pick=Pick(items="api_keys", match={"id": Input("id")},
                                          require={"status": ("active", "expired")}, noun="API key")),
        Step("new", "create_api_key", input={
            "name": FirstOf((Input("name"), Output("old", "name"))),
            "expires_in": FirstOf((Input("expires_in"), Lifetime("old", "created_at", "expires_at"))),
        }),
        Step("revoke", "revoke_api_key", input={"id": Input("id")}, partial=(
            "The new key was created and works, but the old key (id {id}) was not revoked and may still work. "
            "Store the new key's secret first (GEN shows it only once), then revoke key {id} with the "
            "Revoke API key action once the error given with this answer is resolved.")),
    ),
    result={"new_key": Output("new"), "old_key": Output("old"), "revoked": Output("revoke")},
    chat=Chat(group=_KEYS, verb="rotate", args=("id", "name"), rest=True, options={"expires": "expires_in"},
              labels={"name": "NEW NAME", "expires_in": "90d"}),
)
