"""Where gen-nodes keeps files on the user's machine, and how it writes private ones."""

from __future__ import annotations

import os
import secrets
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
    """Write ``text`` to ``path`` readable only by the user (0600), never through a link.

    ``exclusive``: a new file, never an existing one. Otherwise the text goes to a new 0600
    file beside ``path`` that then replaces it: whatever stood there (a symbolic link planted
    by someone else, a file with a wider mode) is replaced, never followed or reused.
    """
    if exclusive:
        return _write_new(path, text)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        _write_new(temporary, text)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def _write_new(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)  # whatever the umask
        fh.write(text + "\n")
    return path


def read_private(path: Path) -> str | None:
    """The text of ``path``; None if it is missing or a symbolic link (never followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, encoding="utf-8") as fh:
        return fh.read()
