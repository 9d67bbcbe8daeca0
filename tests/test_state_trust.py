"""The state folder is not trusted: a SQLite store and its key file are used only when they are
plain files of this user's that no one else may read or write, in a folder no one else may swap
files in. The other user here is real: a process running under another uid plants the files
(the tests that need one run as root, as CI does)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gen_nodes.safety.idempotency import IdempotencyRecords
from gen_nodes.state import StoreError, open_store
from gen_nodes.state.secretbox import SecretBoxError, box_for

#: What the other user knows: the secret in the key file they plant (with it they open every sealed value).
PLANTED_SECRET = "the-other-users-known-secret-0123456789"


def _unused_uid(start: int = 54321) -> int:
    uid = start
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


@pytest.fixture
def other_user() -> int:
    if os.geteuid() != 0:
        pytest.skip("acting as a second Unix user needs root (CI runs as root)")
    return _unused_uid()


@pytest.fixture
def shared_folder():
    """A folder like /tmp: everyone may create files in it, the sticky bit keeps them off each other's."""
    folder = Path(tempfile.mkdtemp(prefix="gen-nodes-shared-", dir="/tmp"))
    os.chmod(folder, 0o1777)
    yield folder
    shutil.rmtree(folder)


def as_user(uid: int, folder: Path, script: str) -> None:
    """Run a shell ``script`` in ``folder`` as the Unix user ``uid`` (with no supplementary groups)."""
    subprocess.run(["/bin/sh", "-c", script], cwd=folder, user=uid, group=uid, extra_groups=[], check=True)


def plant(uid: int, folder: Path) -> None:
    """What the attacker did: a key file they know, and an empty database anyone may write."""
    as_user(uid, folder, f"umask 000; printf '%s\\n' {PLANTED_SECRET} > state.db.key; : > state.db; "
                         "chmod 666 state.db state.db.key")
    assert os.stat(folder / "state.db").st_uid == uid and os.stat(folder / "state.db.key").st_uid == uid


def test_a_database_another_user_planted_in_a_shared_folder_is_refused(other_user, shared_folder):
    plant(other_user, shared_folder)
    with pytest.raises(StoreError, match=r"state\.db: it belongs to another user \(uid \d+\)") as info:
        open_store(f"sqlite:///{shared_folder}/state.db")
    assert "\n" not in str(info.value) and "Delete it" in str(info.value)
    assert (shared_folder / "state.db").stat().st_size == 0, "nothing was written into the planted file"


def test_a_key_file_another_user_planted_is_refused_so_they_cannot_open_the_secrets(other_user, shared_folder):
    plant(other_user, shared_folder)
    (shared_folder / "state.db").unlink()  # the victim's own database, beside the planted key
    store = open_store(f"sqlite:///{shared_folder}/state.db")
    try:
        assert os.stat(shared_folder / "state.db").st_uid == os.geteuid()
        with pytest.raises(SecretBoxError, match=r"state\.db\.key: it belongs to another user"):
            box_for(store)
        with pytest.raises(SecretBoxError, match="belongs to another user"):
            IdempotencyRecords(store)  # what the gateway keeps created keys' secrets in
    finally:
        store.close()


def test_sqlite_companion_files_another_user_planted_are_refused(other_user, shared_folder):
    as_user(other_user, shared_folder, "umask 000; : > state.db-wal")
    with pytest.raises(StoreError, match=r"state\.db-wal: it belongs to another user"):
        open_store(f"sqlite:///{shared_folder}/state.db")
    assert not (shared_folder / "state.db").exists()


def test_a_folder_others_may_swap_files_in_is_refused(tmp_path):
    folder = tmp_path / "open"
    folder.mkdir()
    os.chmod(folder, 0o777)  # world-writable without the sticky bit
    with pytest.raises(StoreError, match=r"other users may add and replace files in it \(mode 0777\)"):
        open_store(f"sqlite:///{folder}/state.db")


def test_a_symlinked_database_is_refused_and_its_target_left_alone(tmp_path):
    target = tmp_path / "real.db"
    open_store(f"sqlite:///{target}").close()  # a good store of ours: only the link is wrong
    before = target.read_bytes()
    os.symlink(target, tmp_path / "state.db")
    with pytest.raises(StoreError, match="it is a symbolic link"):
        open_store(f"sqlite:///{tmp_path}/state.db")
    assert target.read_bytes() == before


def test_a_symlinked_key_file_is_refused(tmp_path):
    (tmp_path / "elsewhere.key").write_text(PLANTED_SECRET + "\n")
    os.chmod(tmp_path / "elsewhere.key", 0o600)
    os.symlink(tmp_path / "elsewhere.key", tmp_path / "state.db.key")
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    try:
        with pytest.raises(SecretBoxError, match="it is a symbolic link"):
            box_for(store)
    finally:
        store.close()


@pytest.mark.parametrize("name, mode", [("state.db", 0o666), ("state.db", 0o640), ("state.db.key", 0o644)])
def test_state_files_others_may_read_or_write_are_refused(tmp_path, monkeypatch, name, mode):
    monkeypatch.delenv("GEN_NODES_STATE_SECRET", raising=False)
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    sealed = box_for(store).seal("gen_pat_secret")
    store.close()
    os.chmod(tmp_path / name, mode)
    with pytest.raises((StoreError, SecretBoxError), match=rf"{name}: other users may read or write it "
                                                           rf"\(mode 0{mode:o}\)\. If only you ever had it, "
                                                           rf"`chmod 600 "):
        box_for(open_store(f"sqlite:///{tmp_path}/state.db"))
    os.chmod(tmp_path / name, 0o600)  # the hint's fix works
    assert box_for(open_store(f"sqlite:///{tmp_path}/state.db")).open(sealed) == "gen_pat_secret"


def test_missing_folders_are_created_0700_parents_too(tmp_path):
    old_umask = os.umask(0o022)
    try:
        open_store(f"sqlite:///{tmp_path}/a/b/c/state.db").close()
    finally:
        os.umask(old_umask)
    for folder in ("a", "a/b", "a/b/c"):
        assert stat.S_IMODE(os.stat(tmp_path / folder).st_mode) == 0o700, folder
    assert stat.S_IMODE(os.stat(tmp_path / "a/b/c/state.db").st_mode) == 0o600


def test_the_gateway_refuses_planted_state_with_one_json_error(other_user, shared_folder):
    plant(other_user, shared_folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEN_")}
    done = subprocess.run([sys.executable, "-m", "gen_nodes.surfaces.cli", "serve", "--port", "0", "--store",
                           f"sqlite:///{shared_folder}/state.db"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert "Traceback" not in done.stderr
    error = json.loads(done.stderr)["error"]
    assert error["type"] == "cannot_serve" and "belongs to another user" in error["message"]

