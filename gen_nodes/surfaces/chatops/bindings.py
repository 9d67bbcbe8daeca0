"""Each chat user's own GEN key, sealed at rest with :class:`~gen_nodes.state.secretbox.SecretBox`, in the shared store."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Mapping

from gen_nodes.state.secretbox import SecretBox, SecretBoxError

log = logging.getLogger("gen_nodes.chatops")

_BINDING_PREFIX = "chatops:binding:"
#: Seconds a binding lasts without use: a year (every command that uses it renews it).
BINDING_TTL = 365 * 24 * 3600


class Bindings:
    """Each chat user's own GEN key, sealed at rest, in the shared store."""

    def __init__(self, store: Any, box: SecretBox) -> None:
        self.store = store
        self.box = box

    @staticmethod
    def _key(platform: str, user: str) -> str:
        return f"{_BINDING_PREFIX}{platform}:{user}"

    def bind(self, platform: str, user: str, api_key: str, gen_user: Mapping[str, Any]) -> None:
        self.store.set(self._key(platform, user), {
            "key": self.box.seal(api_key),
            "gen_user": gen_user.get("id"),
            "bound_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }, ttl=BINDING_TTL)
        from gen_nodes.surfaces.chatops.approver import remember_binding  # held calls of this GEN account find this person

        remember_binding(self.store, platform, user, gen_user.get("id"))

    def api_key(self, platform: str, user: str) -> str | None:
        """The user's GEN key, or None if unbound (or sealed with another secret)."""
        record = self.store.get(self._key(platform, user))
        if not record:
            return None
        try:
            key = self.box.open(record["key"])
        except (SecretBoxError, KeyError, TypeError):  # sealed under another secret: as good as unbound
            log.warning("a %s binding could not be opened (GEN_NODES_CHATOPS_SECRET changed?)", platform)
            return None
        self.store.replace(self._key(platform, user), record, record, ttl=BINDING_TTL)  # renew
        return key

    def unbind(self, platform: str, user: str) -> bool:
        return self.store.pop(self._key(platform, user)) is not None
