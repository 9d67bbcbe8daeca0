"""How the plain-text secret of a created key reaches the user when an LLM sits in between.

A tool result goes into the model's context, and from there into transcripts and
logs, so by default the secret does not travel in it. Policies:

- ``file`` (default): the secret is written to a new file readable only by the
  user (mode 0600; a folder gen-nodes creates is 0700); the result carries its path
  and a masked form.
- ``mask``: the result carries only the masked form (the secret is then lost:
  use it only where another channel delivers it, or for dry runs).
- ``reveal``: the result carries the secret itself (still masked in ``repr()``).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gen_nodes.core.paths import private_folder, state_dir, write_private
from gen_nodes.core.redact import SECRET_FIELDS, Secret, holds_secrets, mask

POLICIES = ("file", "mask", "reveal")
DEFAULT_POLICY = "file"


def secrets_dir() -> Path:
    """``$GEN_NODES_SECRETS_DIR``, else ``$XDG_STATE_HOME/gen-nodes/secrets``, else ``~/.local/state/...``."""
    return state_dir("secrets", "GEN_NODES_SECRETS_DIR")


def deliver(output: Any, policy: str = DEFAULT_POLICY, folder: str | Path | None = None) -> Any:
    """``output`` with its secret fields, at any depth, following ``policy``: a copy if it holds
    any, else ``output`` itself (copying a 10,000-key list that holds none would cost ~20 ms)."""
    if policy not in POLICIES:
        raise ValueError(f"secret policy must be one of {POLICIES}, not {policy!r}")
    if not holds_secrets(output):
        return output
    return _delivered(output, policy, folder)


def _delivered(output: Any, policy: str, folder: str | Path | None) -> Any:
    if isinstance(output, list):
        return [_delivered(item, policy, folder) for item in output]
    if not isinstance(output, dict):
        return output
    result = {}
    for key, value in output.items():
        if key in SECRET_FIELDS and isinstance(value, str):
            if policy == "reveal":
                result[key] = Secret(value)
            else:
                result.update(_withheld(key, value, output.get("id"), policy, folder))
        else:
            result[key] = _delivered(value, policy, folder)
    return result


def _withheld(key: str, secret: str, key_id: Any, policy: str, folder: str | Path | None) -> dict[str, str]:
    """The fields that stand in for a withheld secret: its masked form, and a file and note."""
    secret = str.__str__(secret)
    out = {key: mask(secret)}
    if policy == "mask":
        out[f"{key}_note"] = "The full secret is withheld from this conversation (secret policy 'mask')."
        return out
    try:
        path = _write_secret(secret, key_id, Path(folder) if folder else secrets_dir())
    except OSError as exc:
        out[f"{key}_note"] = (
            f"The key was created, but saving its secret to a file failed ({exc.strerror}), and GEN "
            f"cannot show it again: make another key (once the folder is writable), then revoke key {key_id} "
            "with revoke_api_key."
        )
        return out
    out[f"{key}_file"] = str(path)
    out[f"{key}_note"] = f"The full secret was saved to {path} (readable only by you); it is not shown here."
    return out


def _write_secret(secret: str, key_id: Any, folder: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "_", str(key_id))[:40]
    return write_private(private_folder(folder) / f"gen-api-key-{safe_id}-{stamp}.txt", secret, exclusive=True)
