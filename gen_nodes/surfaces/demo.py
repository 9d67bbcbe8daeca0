"""``gen-nodes demo``: the whole API-key lifecycle, step by step, against an embedded sandbox.

Nothing here is special-cased: every step runs a registered action through the
engine and the HTTP client, against a real sandbox server on loopback. Secrets
are printed masked.
"""

from __future__ import annotations

from typing import Any, Callable

from gen_nodes.client.http import GenClient
from gen_nodes.core.errors import GenError
from gen_nodes.safety.display import quoted
from gen_nodes.core.redact import mask
from gen_nodes.core.registry import default_registry
from gen_nodes.sandbox import Sandbox


def run_demo(out: Callable[[str], None] = print) -> int:
    registry = default_registry()
    step = _Steps(out)
    with Sandbox() as sandbox:
        out(f"Embedded GEN sandbox at {sandbox.base_url}, signed in with {mask(sandbox.api_key)}\n")
        with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
            def run(action: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
                return registry.run(action, arguments or {}, client=client)

            me = step("Who am I?", "get_me", lambda: run("get_me"))
            out(f"   user {me['id']}: {_name(me.get('name'))} <{me.get('email')}>")

            key = step("Create a key that expires in 30 days", "create_api_key",
                       lambda: run("create_api_key", {"name": "n8n production", "expires_in": "30d"}))
            out(f"   id {key['id']} {_name(key['name'])}, secret {mask(key['token'])} (shown once), "
                f"expires {key['expires_at']}")

            with GenClient(api_key=key["token"], base_url=sandbox.base_url) as new_client:
                me_again = step("Use the new key", "get_me",
                                lambda: registry.run("get_me", {}, client=new_client))
                out(f"   the new key works: signed in as user {me_again['id']}")

                listed = step("List the keys", "list_api_keys", lambda: run("list_api_keys"))
                _table(out, listed["api_keys"])

                renamed = step("Rename the new key", "update_api_key",
                               lambda: run("update_api_key", {"id": key["id"], "name": "n8n staging"}))
                out(f"   id {renamed['id']} is now {_name(renamed['name'])}")

                rotated = _rotate(step, out, run, key["id"])

                step("Show that the old key is refused", "get_me",
                     lambda: _refused(out, lambda: registry.run("get_me", {}, client=new_client)))

            preview = registry.preview("revoke_api_key", {"id": rotated["id"]}, client=client) or []
            revoked = step("Revoke its successor (destructive: the demo confirms for you)", "revoke_api_key",
                           lambda: run("revoke_api_key", {"id": rotated["id"]}))
            names = ", ".join(_name(item.get("name")) for item in preview) or "no key GEN listed"
            out(f"   revoked id {revoked['id']} ({names}): GEN confirmed it")

            active = registry.preview("revoke_all_api_keys", {}, client=client) or []
            step(f"Revoke all keys ({len(active)} active, including the one in use)", "revoke_all_api_keys",
                 lambda: run("revoke_all_api_keys"))
            out(f"   revoked all keys: {', '.join(_name(item.get('name')) for item in active) or 'none was active'}")
            step("Show that even the key in use is now refused", "list_api_keys",
                 lambda: _refused(out, lambda: run("list_api_keys")))
    out("\nDone: every step ran through the same engine your agents and workflows use.")
    return 0


def _rotate(step: "_Steps", out: Callable[[str], None], run: Callable[..., dict[str, Any]],
            key_id: Any) -> dict[str, Any]:
    """Find the keys about to expire, then rotate one: its successor first, then the old key revoked."""
    expiring = step("Find the keys expiring within 31 days", "list_api_keys",
                    lambda: run("list_api_keys", {"expiring_within": "31d"}))
    out("   " + (", ".join(f"id {k['id']} {_name(k.get('name'))}" for k in expiring["api_keys"]) or "none"))
    rotated = step("Rotate it (destructive: the demo confirms for you)", "rotate_api_key",
                   lambda: run("rotate_api_key", {"id": key_id}))
    new = rotated["new_key"]
    out(f"   {rotated['status']}: new key id {new['id']} {_name(new.get('name'))}, secret {mask(new['token'])} "
        f"(shown once), expires {new['expires_at']}; old key id {rotated['old_key']['id']} revoked")
    return new


class _Steps:
    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.number = 0

    def __call__(self, title: str, action: str, body: Callable[[], Any]) -> Any:
        self.number += 1
        self.out(f"{self.number}. {title}  [{action}]")
        return body()


def _refused(out: Callable[[str], None], call: Callable[[], Any]) -> None:
    try:
        call()
    except GenError as exc:
        out(f"   refused as expected: {exc.status} {exc.type} ({exc.message})")
        return
    raise RuntimeError("the sandbox accepted a key it should have refused")


def _name(value: Any) -> str:
    """A key's or user's name as the demo shows it: quoted and escaped, "(unnamed)" when it has none."""
    return "(unnamed)" if value is None else quoted(value)


def _table(out: Callable[[str], None], keys: list[dict[str, Any]]) -> None:
    for k in keys:
        out(f"   {str(k['id']):>4}  {_name(k.get('name')):<20} {k['status']:<8} "
            f"expires {k.get('expires_at') or 'never'}")
