"""The chat audit trail: one line per action on logger ``gen_nodes.chatops.audit`` (platform,
workspace, user, action, ids, outcome); never command text, arguments or secrets."""

from __future__ import annotations

import json
import logging
from typing import Any, Iterable, Mapping

from gen_nodes.surfaces.chatops.messages import ChatUser
from gen_nodes.surfaces.chatops.render import LIST_LIMIT

audit_log = logging.getLogger("gen_nodes.chatops.audit")


def write_audit(who: ChatUser, action: str, *, ids: Iterable[Any] = (), outcome: str) -> None:
    """One line per action: platform, workspace, user, action, ids, outcome. Never a secret."""
    audit_log.info(json.dumps({
        "platform": who.platform, "workspace": who.team, "user": who.user, "action": action,
        "ids": [str(i) for i in ids if i is not None][:LIST_LIMIT], "outcome": outcome,
    }, sort_keys=False))


def _ids(arguments: Mapping[str, Any], items: Iterable[Any] = ()) -> list[Any]:
    """Ids worth auditing: the id arguments, then the ids of the objects named (made, previewed)."""
    ids = [v for k, v in arguments.items() if k == "id" or k.endswith("_id")]
    for item in items:
        if isinstance(item, Mapping) and item.get("id") is not None and item["id"] not in ids:
            ids.append(item["id"])
    return ids
