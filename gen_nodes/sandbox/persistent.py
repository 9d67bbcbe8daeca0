"""The file-backed sandbox behind ``gen-nodes --sandbox``: state that outlives one command.

Each command starts the sandbox on a free loopback port, backed by
``sandbox.sqlite3`` in :func:`state_dir`, and signs in with the key kept in
``bootstrap-key`` beside it (mode 0600; the database itself holds only hashes).
When that key no longer works (say, after ``revoke_all_api_keys``), a new one is
made for the same user. ``gen-nodes sandbox --reset`` deletes both files.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from gen_nodes.core import paths

DB_FILE = "sandbox.sqlite3"
KEY_FILE = "bootstrap-key"


def state_dir() -> Path:
    """``$GEN_NODES_SANDBOX_DIR``, else ``$XDG_STATE_HOME/gen-nodes/sandbox``, else ``~/.local/state/...``."""
    return paths.state_dir("sandbox", "GEN_NODES_SANDBOX_DIR")


def reset() -> Path:
    """Delete the persistent sandbox state; return the folder it lived in."""
    folder = state_dir()
    for name in (DB_FILE, KEY_FILE):
        (folder / name).unlink(missing_ok=True)
    return folder


@contextmanager
def running() -> Iterator[Any]:
    """The persistent sandbox, serving on a free loopback port for the block's duration."""
    from gen_nodes.sandbox import Sandbox

    folder = paths.private_folder(state_dir())
    key_path = folder / KEY_FILE
    stored = (paths.read_private(key_path) or "").strip() or None
    sandbox = Sandbox(db_path=str(folder / DB_FILE), api_key=stored).start()
    try:
        # Written each time: a new key, or the kept one put back 0600 if its file was widened or replaced.
        paths.write_private(key_path, sandbox.api_key)
        yield sandbox
    finally:
        sandbox.stop()
        sandbox.store.close()


@contextmanager
def open_client(**client_options: Any) -> Iterator[Any]:
    """A :class:`GenClient` signed in to the persistent sandbox, running for the block's duration."""
    from gen_nodes.client.http import GenClient

    with running() as sandbox:
        with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url, **client_options) as client:
            yield client
