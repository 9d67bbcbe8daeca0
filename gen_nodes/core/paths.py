"""Where gen-nodes keeps files on the user's machine, how it writes private ones, and which it trusts.

A state file (the store's database, the key that encrypts its secrets) is used only when
it is a plain file owned by this user that no one else may read or write, in a folder no
one else may swap files in: another user who plants one in a shared folder (``/tmp``,
a group's project folder) would otherwise read what it keeps.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

from gen_nodes.core import settings


class UnsafePath(PermissionError):
    """A state file or folder another user could have planted, read or swapped: refused, never used.

    The message is one line: what is wrong with which path, and what to do.
    """


def state_dir(name: str, override_env: str) -> Path:
    """``$<override_env>``, else ``$XDG_STATE_HOME/gen-nodes/<name>``, else ``~/.local/state/gen-nodes/<name>``."""
    env = settings.current()
    explicit = env.value(override_env)
    if explicit:
        return Path(explicit)
    base = env.xdg_state_home or Path.home() / ".local" / "state"
    return Path(base) / "gen-nodes" / name


def private_folder(folder: Path) -> Path:
    """``folder``, created readable only by the user (0700) if it did not exist, with every missing
    parent 0700 too; an existing one is left as it is."""
    missing = []
    for ancestor in [folder, *folder.parents]:
        if ancestor.exists():
            break
        missing.append(ancestor)
    for created in reversed(missing):
        try:
            created.mkdir(mode=0o700)
        except FileExistsError:  # another process made it meanwhile
            continue
        os.chmod(created, 0o700)  # whatever the umask
    return folder


def check_state_folder(folder: Path) -> None:
    """Refuse a folder where another user could replace our files: one owned by someone else
    (root aside), or one others may write without the sticky bit (which keeps them off our files)."""
    info = os.stat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    if info.st_uid not in (os.geteuid(), 0):
        raise UnsafePath(f"Refusing the state folder {folder}: it belongs to another user (uid {info.st_uid}). "
                         "Keep gen-nodes' state in a folder of your own (e.g. GEN_NODES_STATE_DIR).")
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise UnsafePath(f"Refusing the state folder {folder}: other users may add and replace files in it "
                         f"(mode {stat.S_IMODE(info.st_mode):04o}). Use a folder of your own, "
                         f"or `chmod go-w {folder}`.")


def check_state_file(path: Path, info: os.stat_result | None = None) -> bool:
    """Refuse ``path`` (its ``lstat``, or ``info`` from ``fstat``) unless it is a plain file of this
    user's that no one else may read or write. False if there is no such file yet."""
    if info is None:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return False
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePath(f"Refusing the state file {path}: it is a symbolic link, which gen-nodes never follows. "
                         "Delete the link, or point the store at the real file.")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafePath(f"Refusing the state file {path}: it is not a plain file. Delete it or choose another path.")
    if info.st_uid != os.geteuid():
        raise UnsafePath(f"Refusing the state file {path}: it belongs to another user (uid {info.st_uid}), who "
                         "could read what it keeps. Delete it, or keep gen-nodes' state in a folder of your own.")
    if info.st_mode & 0o077:
        raise UnsafePath(f"Refusing the state file {path}: other users may read or write it "
                         f"(mode {stat.S_IMODE(info.st_mode):04o}). If only you ever had it, `chmod 600 {path}`; "
                         "otherwise delete it.")
    return True


def open_state_file(path: Path, flags: int) -> int:
    """A descriptor of the existing state file ``path``, opened without following a link and checked
    (:func:`check_state_file`) on the open file itself, so nothing can be swapped in between."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            check_state_file(path)  # raises: it is a link
        raise
    try:
        check_state_file(path, os.fstat(fd))
    except UnsafePath:
        os.close(fd)
        raise
    return fd


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
