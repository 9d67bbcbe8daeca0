"""How the plain-text secret of a created key reaches the user when an LLM sits in between.

A tool result goes into the model's context, and from there into transcripts and
logs, so by default the secret does not travel in it. Policies:

- ``file`` (default): the secret is written to a new file readable only by the
  user (mode 0600, folder 0700); the result carries its path and a masked form.
- ``mask``: the result carries only the masked form (the secret is then lost:
  use it only where another channel delivers it, or for dry runs).
- ``reveal``: the result carries the secret itself.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .redact import SECRET_FIELDS, mask

POLICIES = ("file", "mask", "reveal")
DEFAULT_POLICY = "file"


def secrets_dir() -> Path:
    """``$GEN_NODES_SECRETS_DIR``, else ``$XDG_STATE_HOME/gen-nodes/secrets``, else ``~/.local/state/...``."""
    explicit = os.environ.get("GEN_NODES_SECRETS_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "gen-nodes" / "secrets"


def deliver(output: dict[str, Any], policy: str = DEFAULT_POLICY, folder: str | Path | None = None) -> dict[str, Any]:
    """A copy of ``output`` whose secret fields follow ``policy``."""
    if policy not in POLICIES:
        raise ValueError(f"secret policy must be one of {POLICIES}, not {policy!r}")
    secret_keys = [k for k in output if k in SECRET_FIELDS and isinstance(output[k], str)]
    if policy == "reveal" or not secret_keys:
        return {k: (str.__str__(v) if isinstance(v, str) else v) for k, v in output.items()}
    result = dict(output)
    for key in secret_keys:
        secret = str.__str__(output[key])
        result[key] = mask(secret)
        if policy == "file":
            try:
                path = _write_secret(secret, output.get("id"), Path(folder) if folder else secrets_dir())
            except OSError as exc:
                result[f"{key}_note"] = (
                    f"The key was created, but saving its secret to a file failed ({exc.strerror}), and GEN "
                    f"cannot show it again: revoke key {output.get('id')} with revoke_api_key and create a new one."
                )
                continue
            result[f"{key}_file"] = str(path)
            result[f"{key}_note"] = f"The full secret was saved to {path} (readable only by you); it is not shown here."
        else:
            result[f"{key}_note"] = "The full secret is withheld from this conversation (secret policy 'mask')."
    return result


def _write_secret(secret: str, key_id: Any, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"gen-api-key-{key_id}-{stamp}.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return path
