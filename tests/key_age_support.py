"""Keys of known ages in a sandbox, for the tests of list_api_keys' time filters on every surface."""

from __future__ import annotations

from gen_nodes.sandbox import Sandbox

DAY = 86400


def seed_key_ages(sandbox: Sandbox, user_id: int | None = None) -> None:
    """"old idle" (never used, 40 days old), then "soon" (expires in 3 days), "later" (in 30 days),
    "fresh" (never expires), for ``user_id`` (default: the sandbox's user). Moves the sandbox's
    clock 40 days on. The calling key is used by every request, so it is never idle."""
    user_id = sandbox.user["id"] if user_id is None else user_id
    sandbox.store.create_key(user_id, "old idle")
    sandbox.store.advance(40 * DAY)
    sandbox.store.create_key(user_id, "soon", "3d")
    sandbox.store.create_key(user_id, "later", 30 * DAY)
    sandbox.store.create_key(user_id, "fresh")


def names(output: dict) -> list[str]:
    return [key["name"] for key in output["api_keys"]]
