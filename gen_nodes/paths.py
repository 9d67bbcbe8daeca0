"""Where gen-nodes keeps files on the user's machine, and how it writes private ones."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir(name: str, override_env: str) -> Path:
    """``$<override_env>``, else ``$XDG_STATE_HOME/gen-nodes/<name>``, else ``~/.local/state/gen-nodes/<name>``."""
    explicit = os.environ.get(override_env)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "gen-nodes" / name


def private_folder(folder: Path) -> Path:
    """``folder``, created readable only by the user (0700) if it did not exist; an existing one is left as it is."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def write_private(path: Path, text: str, *, exclusive: bool = False) -> Path:
    """Write ``text`` to ``path`` readable only by the user (0600); ``exclusive``: never overwrite."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    return path
